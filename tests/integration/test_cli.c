/* The `repoview` admin CLI against a private redis-server: what each command
 * prints and changes, its exit codes (0 done, 1 failure, 2 bad usage), the
 * coalescing a user sees with redis-cli, and watch's event lines. */
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/job.h"
#include "common/util.h"
#include "rvtest.h"

static struct rvt_redis redis;
static struct rv_rsync conn;
static char *tmp;

/* Runs `repoview ARGS` against the test's Redis. Its stdout goes to *out,
 * its stderr to *err (each malloc'd, may be NULL to discard). Returns the
 * exit code. */
static int cli(char **out, char **err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int cli(char **out, char **err, const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    char errpath[600];
    snprintf(errpath, sizeof(errpath), "%s/stderr", tmp);
    /* The repos of these tests live in tmp: the URL policy allows that
     * directory, and nothing else. */
    int rc = rvt_sh(out,
                    "REPOVIEW_REDIS_URL='%s' REPOVIEW_ALLOW_LOCAL_PATHS='%s' "
                    "'%s' %s 2>'%s'",
                    redis.url, tmp, rvt_bin("repoview"), args, errpath);
    if (err)
        rvt_sh(err, "cat '%s'", errpath);
    return rc;
}

static void flush(void)
{
    redisReply *r = rv_rsync_command(&conn, "FLUSHALL");
    if (r)
        freeReplyObject(r);
}

/* `repoview add` checks the URL policy before it touches Redis: outside
 * the allowed directory, an internal address or a credential is refused
 * with exit code 1 and the rule, and nothing is registered. */
static void test_add_refuses_what_the_url_policy_refuses(void)
{
    static const char *const urls[] = {
        "/etc/../etc/private.git", "file:///var/lib/x.git",
        "https://127.0.0.1/x.git", "http://git.example/x.git",
        "git@10.0.0.1:org/x.git", "https://git.example/x.git?token=Secret9",
    };
    flush();
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        char *err = NULL;
        rvt_current = urls[i];
        CHECK_INT(cli(NULL, &err, "add p%zu --url '%s'", i, urls[i]), 1);
        CHECK(rvt_contains(err, "url_not_allowed"));
        CHECK(!rvt_contains(err, "Secret9"));
        free(err);
    }
    rvt_current = NULL;
    redisReply *r = rv_rsync_command(&conn, "SCARD rv:repos");
    CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer == 0);
    if (r)
        freeReplyObject(r);
}

/* Parses text as JSON (NULL when it is not); the caller decrefs. */
static json_t *parse(const char *text)
{
    return text ? json_loads(text, 0, NULL) : NULL;
}

static const char *jstr(const json_t *o, const char *path1, const char *path2)
{
    const json_t *v = json_object_get(o, path1);
    if (path2)
        v = json_object_get(v, path2);
    return json_string_value(v);
}

static void test_add_list_status_remove_round_trip(void)
{
    flush();
    char *out = NULL, *err = NULL;
    CHECK_INT(cli(&out, NULL, "add demo --url %s/repo.git", tmp), 0);
    CHECK(rvt_contains(out, "added demo"));
    free(out);

    CHECK_INT(cli(&out, NULL, "list"), 0);
    CHECK(out && strncmp(out, "demo ", 5) == 0);
    CHECK(rvt_contains(out, "/repo.git"));
    CHECK(rvt_contains(out, "branches:queued"));
    free(out);

    CHECK_INT(cli(&out, NULL, "list --json"), 0);
    json_t *j = parse(out);
    json_t *repo = json_array_get(json_object_get(j, "repos"), 0);
    CHECK_STR(jstr(repo, "id", NULL), "demo");
    CHECK(json_is_null(json_object_get(repo, "github")));
    CHECK_INT(json_integer_value(json_object_get(repo, "version")), 0);
    CHECK_STR(jstr(repo, "freshness", "branchSyncStatus"), "queued");
    CHECK_STR(jstr(repo, "freshness", "prSyncStatus"), "idle");
    const json_t *fresh = json_object_get(repo, "freshness");
    CHECK(json_is_null(json_object_get(fresh, "prSyncAt")));
    CHECK(json_is_true(json_object_get(fresh, "stale")));
    CHECK_INT(json_integer_value(json_object_get(fresh, "staleAfterSeconds")),
              600);
    json_decref(j);
    free(out);

    CHECK_INT(cli(&out, NULL, "status demo"), 0);
    CHECK(rvt_contains(out, "version    0"));
    CHECK(rvt_contains(out, "queue position 1 of 1"));
    CHECK(rvt_contains(out, "no GitHub name"));
    free(out);

    CHECK_INT(cli(&out, NULL, "status demo --json"), 0);
    j = parse(out);
    CHECK_STR(jstr(j, "repo", "id"), "demo");
    json_t *q = json_array_get(json_object_get(j, "queued"), 0);
    CHECK_INT(json_integer_value(json_object_get(q, "position")), 1);
    CHECK_STR(jstr(q, "kind", NULL), "branches");
    CHECK_STR(jstr(q, "reason", NULL), "register");
    json_decref(j);
    free(out);

    CHECK_INT(cli(&out, &err, "remove demo"), 0);
    CHECK(rvt_contains(out, "removed demo"));
    free(out);
    free(err);
    CHECK_INT(cli(&out, NULL, "list"), 0);
    CHECK_STR(out, "");
    free(out);

    /* Nothing of the repo is left but its queued job (dropped when a worker
     * claims it). */
    redisReply *r = rv_rsync_command(&conn, "KEYS rv:{demo}:*");
    CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 0);
    if (r)
        freeReplyObject(r);
    CHECK_INT(rvt_redis_int(&conn, "ZCARD %s", "rv:schedule"), 0);
    CHECK_INT(rvt_redis_int(&conn, "SCARD %s", "rv:repos"), 0);

    CHECK_INT(cli(NULL, &err, "remove demo"), 1);
    CHECK(rvt_contains(err, "repo \"demo\" not found"));
    free(err);
}

static void test_add_twice_fails_with_exists(void)
{
    flush();
    char *out = NULL, *err = NULL;
    CHECK_INT(cli(NULL, NULL, "add twice --url https://git.example/twice.git"), 0);
    CHECK_INT(cli(&out, &err, "add twice --url https://git.example/other.git"), 1);
    CHECK_STR(out, "");
    CHECK(rvt_contains(err, "repoview: repo \"twice\" already exists"));
    free(out);
    free(err);
    redisReply *r = rv_rsync_command(&conn, "HGET rv:{twice}:meta url");
    CHECK(r && r->type == REDIS_REPLY_STRING &&
          strcmp(r->str, "https://git.example/twice.git") == 0);
    if (r)
        freeReplyObject(r);
}

static void test_invalid_ids_are_usage_errors(void)
{
    flush();
    char long_id[RV_REPO_ID_MAX + 2];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[RV_REPO_ID_MAX + 1] = '\0'; /* 101 characters */
    const char *ids[] = {"''", ".hidden", long_id, "a/b", "'a b'", "-x"};
    const char *cmds[] = {"add %s --url https://git.example/x.git", "remove %s",
                          "status %s", "refresh %s"};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
            char args[512];
            snprintf(args, sizeof(args), cmds[k], ids[i]);
            char *err = NULL;
            int rc = cli(NULL, &err, "%s", args);
            if (rc != 2)
                fprintf(stderr, "  repoview %s -> %d: %s", args, rc,
                        err ? err : "");
            CHECK_INT(rc, 2);
            free(err);
        }
    }
    char *err = NULL;
    CHECK_INT(cli(NULL, &err, "add .hidden --url https://git.example/x.git"), 2);
    CHECK(rvt_contains(err, "invalid repo id"));
    free(err);
    CHECK_INT(rvt_redis_int(&conn, "SCARD %s", "rv:repos"), 0);
    CHECK_INT(rvt_redis_int(&conn, "LLEN %s", "rv:queue"), 0);
}

static void test_bad_usage_exits_2(void)
{
    flush();
    char *err = NULL;
    CHECK_INT(cli(NULL, &err, "frobnicate"), 2);
    CHECK(rvt_contains(err, "unknown command \"frobnicate\""));
    free(err);
    CHECK_INT(cli(NULL, NULL, "%s", ""), 2);
    CHECK_INT(cli(NULL, NULL, "list --bogus"), 2);
    CHECK_INT(cli(NULL, NULL, "add x"), 2);
    CHECK_INT(cli(NULL, NULL, "add"), 2);
    CHECK_INT(cli(NULL, NULL, "remove"), 2);
    CHECK_INT(cli(NULL, NULL, "add x --url"), 2);
    CHECK_INT(cli(NULL, NULL, "add x y --url https://git.example/x.git"), 2);
    CHECK_INT(cli(NULL, NULL, "add x --url https://git.example/x.git --interval 5"), 2);
    CHECK_INT(cli(NULL, NULL, "add x --url https://git.example/x.git --interval 86401"), 2);
    CHECK_INT(cli(NULL, NULL, "add x --url https://git.example/x.git --interval 1m"), 2);
    CHECK_INT(cli(NULL, NULL, "add x --url relative/path"), 2);
    CHECK_INT(cli(NULL, NULL, "add x --url https://git.example/x.git --github nope"), 2);
    CHECK_INT(cli(NULL, NULL,
                  "add x --url https://git.example/x.git --default-branch 'a..b'"),
              2);
    CHECK_INT(cli(NULL, NULL, "refresh x --kind tags"), 2);
    CHECK_INT(cli(NULL, NULL, "watch --count 0"), 2);
    CHECK_INT(cli(NULL, NULL, "--no-such-setting 1 list"), 2);
    CHECK_INT(rvt_redis_int(&conn, "SCARD %s", "rv:repos"), 0);

    /* The accepted spellings do work. */
    CHECK_INT(cli(NULL, NULL,
                  "add x --url=https://git.example/x.git --interval=0 --default-branch main"),
              0);
    CHECK_INT(cli(NULL, NULL, "add y --url https://git.example/y.git --interval 10"), 0);
    redisReply *r = rv_rsync_command(&conn, "HGET rv:{y}:meta interval");
    CHECK(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "10") == 0);
    if (r)
        freeReplyObject(r);
}

static void test_help_prints_commands_and_settings(void)
{
    char *out = NULL;
    CHECK_INT(cli(&out, NULL, "--help"), 0);
    CHECK(rvt_contains(out, "repoview [SETTINGS] COMMAND"));
    CHECK(rvt_contains(out, "add ID --url URL"));
    CHECK(rvt_contains(out, "REPOVIEW_REDIS_URL"));
    free(out);
    CHECK_INT(cli(&out, NULL, "refresh --help"), 0);
    CHECK(rvt_contains(out, "--kind all|branches|prs"));
    free(out);
}

static void test_credential_urls_are_refused_and_never_echoed(void)
{
    flush();
    char *out = NULL, *err = NULL;
    int rc = cli(&out, &err,
                 "add leaky --url https://ada:hunter2secret@github.com/a/b");
    CHECK_INT(rc, 1); /* url_not_allowed, like any URL the policy refuses */
    CHECK(rvt_contains(err, "url_not_allowed"));
    CHECK(rvt_contains(err, "GITHUB_TOKEN"));
    CHECK(!rvt_contains(err, "hunter2secret"));
    CHECK(!rvt_contains(out, "hunter2secret"));
    free(out);
    free(err);
    CHECK_INT(cli(NULL, &err, "add leaky --url https://ghp_abcdef123@h/a/b"),
              1);
    CHECK(rvt_contains(err, "GITHUB_TOKEN"));
    CHECK(!rvt_contains(err, "ghp_abcdef123"));
    free(err);
    CHECK_INT(rvt_redis_int(&conn, "EXISTS %s", "rv:{leaky}:meta"), 0);
}

/* The acceptance scenario: five refreshes of a queued repo are one job, and
 * redis-cli shows the state in plain text. */
static void test_five_refreshes_make_one_queued_job(void)
{
    flush();
    char *out = NULL;
    CHECK_INT(cli(NULL, NULL, "add demo --url %s/repo.git", tmp), 0);
    for (int i = 0; i < 5; i++) {
        CHECK_INT(cli(&out, NULL, "refresh demo"), 0);
        CHECK_STR(out, "branches: coalesced\n");
        free(out);
    }
    if (redis.sock[0]) {
        CHECK_INT(rvt_sh(&out, "redis-cli -s '%s' HGETALL 'rv:{demo}:meta'",
                         redis.sock),
                  0);
        CHECK(rvt_contains(out, "branch_sync_status\nqueued\n"));
        free(out);
        CHECK_INT(rvt_sh(&out, "redis-cli -s '%s' LLEN rv:queue", redis.sock),
                  0);
        CHECK_STR(out, "1\n");
        free(out);
    }
    CHECK_INT(rvt_redis_int(&conn, "LLEN %s", "rv:queue"), 1);

    CHECK_INT(cli(&out, NULL, "queue"), 0);
    CHECK(rvt_contains(out, "waiting (1, next first):"));
    CHECK(rvt_contains(out, "demo"));
    CHECK(rvt_contains(out, "branches"));
    CHECK(rvt_contains(out, "dead letters: 0"));
    free(out);
    CHECK_INT(cli(&out, NULL, "queue --json"), 0);
    json_t *j = parse(out);
    json_t *w = json_object_get(j, "waiting");
    CHECK_INT(json_array_size(w), 1);
    CHECK_STR(jstr(json_array_get(w, 0), "repo", NULL), "demo");
    CHECK_STR(jstr(json_array_get(w, 0), "kind", NULL), "branches");
    CHECK_INT(json_integer_value(json_object_get(j, "deadLetters")), 0);
    json_decref(j);
    free(out);

    /* After a sync (idle, queue drained), the first of five refreshes
     * queues a user job and the other four coalesce with it. */
    redisReply *r = rv_rsync_command(
        &conn, "HSET rv:{demo}:meta branch_sync_status idle branch_job %s", "");
    if (r)
        freeReplyObject(r);
    r = rv_rsync_command(&conn, "DEL rv:queue");
    if (r)
        freeReplyObject(r);
    for (int i = 0; i < 5; i++) {
        CHECK_INT(cli(&out, NULL, "refresh demo --kind branches"), 0);
        CHECK_STR(out, i == 0 ? "branches: queued\n"
                              : "branches: coalesced\n");
        free(out);
    }
    CHECK_INT(rvt_redis_int(&conn, "LLEN %s", "rv:queue"), 1);
    CHECK_INT(cli(&out, NULL, "queue --json"), 0);
    j = parse(out);
    w = json_object_get(j, "waiting");
    CHECK_STR(jstr(json_array_get(w, 0), "reason", NULL), "user");
    json_decref(j);
    free(out);
}

static void test_refresh_explains_no_github_and_unknown_repos(void)
{
    flush();
    char *out = NULL, *err = NULL;
    CHECK_INT(cli(NULL, NULL, "add plain --url https://git.example/plain.git"), 0);
    CHECK_INT(cli(&out, &err, "refresh plain --kind prs"), 1);
    CHECK_STR(out, "");
    CHECK(rvt_contains(err, "no_github"));
    CHECK(rvt_contains(err, "--github"));
    free(out);
    free(err);
    /* "all" of a repo without GitHub refreshes its branches only. */
    CHECK_INT(cli(&out, NULL, "refresh plain"), 0);
    CHECK(rvt_contains(out, "branches:"));
    CHECK(!rvt_contains(out, "prs:"));
    free(out);

    CHECK_INT(cli(NULL, NULL, "add hub --url https://github.com/acme/hub.git "
                              "--github acme/hub"),
              0);
    CHECK_INT(cli(&out, NULL, "refresh hub --json"), 0);
    json_t *j = parse(out);
    CHECK_STR(jstr(j, "repo", NULL), "hub");
    CHECK_INT(json_array_size(json_object_get(j, "coalesced")), 2);
    CHECK_STR(jstr(j, "freshness", "prSyncStatus"), "queued");
    json_decref(j);
    free(out);

    CHECK_INT(cli(NULL, &err, "refresh ghost"), 1);
    CHECK(rvt_contains(err, "repoview: repo \"ghost\" not found"));
    free(err);
    CHECK_INT(cli(NULL, &err, "status ghost"), 1);
    CHECK(rvt_contains(err, "repoview: repo \"ghost\" not found"));
    free(err);
}

static void test_status_shows_running_worker_and_last_error(void)
{
    flush();
    char *out = NULL;
    CHECK_INT(cli(NULL, NULL, "add busy --url https://git.example/busy.git --github a/b"),
              0);
    redisReply *r = rv_rsync_command(
        &conn,
        "HSET rv:{busy}:meta branch_sync_status running branch_worker w-7 "
        "branch_started_at 1795428000000 pr_sync_status error "
        "pr_sync_error %s",
        "{\"code\":\"rate_limited\",\"message\":\"GitHub says wait\","
        "\"at\":\"2026-11-23T10:00:00.000Z\"}");
    if (r)
        freeReplyObject(r);
    CHECK_INT(cli(&out, NULL, "status busy"), 0);
    CHECK(rvt_contains(out, "running on worker w-7 since "
                        "2026-11-23T10:00:00.000Z"));
    CHECK(rvt_contains(out, "last error: rate_limited: GitHub says wait"));
    free(out);
    CHECK_INT(cli(&out, NULL, "status busy --json"), 0);
    json_t *j = parse(out);
    CHECK_STR(jstr(json_array_get(json_object_get(j, "running"), 0), "worker",
                   NULL),
              "w-7");
    const json_t *e =
        json_object_get(json_object_get(j, "freshness"), "prSyncError");
    CHECK_STR(jstr(e, "code", NULL), "rate_limited");
    CHECK_STR(jstr(j, "freshness", "prSyncStatus"), "error");
    json_decref(j);
    free(out);

    /* A malformed number in the hash is reported, not guessed at. */
    r = rv_rsync_command(&conn, "HSET rv:{busy}:meta version x1");
    if (r)
        freeReplyObject(r);
    char *err = NULL;
    CHECK_INT(cli(NULL, &err, "status busy"), 1);
    CHECK(rvt_contains(err, "protocol"));
    free(err);
}

static void test_queue_shows_running_jobs_and_undecodable_payloads(void)
{
    flush();
    struct rv_job job;
    CHECK_INT(rvt_push_job(&conn, "rv:processing:w-1", "widgets", RV_KIND_PRS,
                           RV_REASON_WEBHOOK, &job),
              RV_OK);
    redisReply *r = rv_rsync_command(&conn, "ZADD rv:leases 1795428030000 w-1");
    if (r)
        freeReplyObject(r);
    r = rv_rsync_command(&conn, "RPUSH rv:queue %b", "\xdd\xff\xff\xff\xff",
                         (size_t)5);
    if (r)
        freeReplyObject(r);
    r = rv_rsync_command(&conn, "LPUSH rv:deadletter {}");
    if (r)
        freeReplyObject(r);

    char *out = NULL;
    CHECK_INT(cli(&out, NULL, "queue"), 0);
    CHECK(rvt_contains(out, "<undecodable:"));
    CHECK(rvt_contains(out, "worker w-1 (lease until 2026-11-23T10:00:30.000Z)"));
    CHECK(rvt_contains(out, job.id));
    CHECK(rvt_contains(out, "webhook"));
    CHECK(rvt_contains(out, "dead letters: 1"));
    free(out);

    CHECK_INT(cli(&out, NULL, "queue --json"), 0);
    json_t *j = parse(out);
    json_t *w0 = json_array_get(json_object_get(j, "waiting"), 0);
    CHECK(jstr(w0, "undecodable", NULL) != NULL);
    CHECK_INT(json_integer_value(json_object_get(w0, "bytes")), 5);
    json_t *run = json_array_get(json_object_get(j, "running"), 0);
    CHECK_STR(jstr(run, "worker", NULL), "w-1");
    CHECK_STR(jstr(json_array_get(json_object_get(run, "jobs"), 0), "id",
                   NULL),
              job.id);
    json_decref(j);
    free(out);
}

static void test_unreachable_redis_is_named_without_its_password(void)
{
    int port = rvt_free_tcp_port();
    char *err = NULL;
    char path[600];
    snprintf(path, sizeof(path), "%s/stderr", tmp);
    int rc = rvt_sh(NULL,
                    "'%s' --redis-url redis://ada:pa55word-xyz@127.0.0.1:%d/0 "
                    "list 2>'%s'",
                    rvt_bin("repoview"), port, path);
    rvt_sh(&err, "cat '%s'", path);
    CHECK_INT(rc, 1);
    char where[64];
    snprintf(where, sizeof(where), "127.0.0.1:%d", port);
    CHECK(rvt_contains(err, where));
    CHECK(!rvt_contains(err, "pa55word-xyz"));
    free(err);
}

/* Starts `repoview ARGS` in the background with its stdout, stderr, pid
 * and exit code in files under tmp/<name>.*. */
static void start_background(const char *name, const char *args)
{
    rvt_sh(NULL,
           "rm -f '%s/%s'.*; (REPOVIEW_REDIS_URL='%s' '%s' %s >'%s/%s.out' "
           "2>'%s/%s.err' & echo $! >'%s/%s.pid'; wait $!; "
           "echo $? >'%s/%s.rc') >/dev/null 2>&1 &",
           tmp, name, redis.url, rvt_bin("repoview"), args, tmp, name, tmp,
           name, tmp, name, tmp, name);
}

/* Waits up to ms for tmp/<name>.rc and returns the exit code, or -1. */
static int wait_background(const char *name, int ms)
{
    for (int waited = 0; waited <= ms; waited += 50) {
        char *rc = NULL;
        if (rvt_sh(&rc, "cat '%s/%s.rc' 2>/dev/null", tmp, name) == 0 &&
            rc && *rc) {
            int v = (int)strtol(rc, NULL, 10);
            free(rc);
            return v;
        }
        free(rc);
        rvt_sleep_ms(50);
    }
    return -1;
}

/* Waits until n clients subscribe to rv:events. */
static bool wait_subscribers(long long n)
{
    for (int i = 0; i < 200; i++) {
        redisReply *r = rv_rsync_command(&conn, "PUBSUB NUMSUB rv:events");
        long long got = r && r->type == REDIS_REPLY_ARRAY &&
                                r->elements == 2 &&
                                r->element[1]->type == REDIS_REPLY_INTEGER
                            ? r->element[1]->integer
                            : -1;
        if (r)
            freeReplyObject(r);
        if (got >= n)
            return true;
        rvt_sleep_ms(25);
    }
    return false;
}

static void test_watch_prints_the_status_event_of_a_refresh(void)
{
    flush();
    CHECK_INT(cli(NULL, NULL, "add demo --url https://git.example/demo.git"), 0);
    CHECK_INT(cli(NULL, NULL, "add other --url https://git.example/other.git"), 0);
    redisReply *r = rv_rsync_command(
        &conn, "HSET rv:{demo}:meta branch_sync_status idle");
    if (r)
        freeReplyObject(r);
    r = rv_rsync_command(&conn,
                         "HSET rv:{other}:meta branch_sync_status idle");
    if (r)
        freeReplyObject(r);

    start_background("watch", "watch --count 1 demo");
    CHECK(wait_subscribers(1));
    /* other's event is filtered out; demo's is the one line printed. */
    CHECK_INT(cli(NULL, NULL, "refresh other"), 0);
    CHECK_INT(cli(NULL, NULL, "refresh demo"), 0);
    CHECK_INT(wait_background("watch", 10000), 0);

    char *out = NULL;
    rvt_sh(&out, "cat '%s/watch.out'", tmp);
    CHECK(out && strchr(out, '\n') == out + strlen(out) - 1); /* one line */
    json_t *ev = parse(out);
    CHECK_STR(jstr(ev, "type", NULL), "status");
    CHECK_STR(jstr(ev, "repo", NULL), "demo");
    CHECK_STR(jstr(ev, "kind", NULL), "branches");
    CHECK_STR(jstr(ev, "status", NULL), "queued");
    CHECK_STR(jstr(ev, "freshness", "branchSyncStatus"), "queued");
    CHECK(json_is_integer(json_object_get(ev, "version")));
    CHECK(json_object_get(ev, "meta") == NULL);
    json_decref(ev);
    free(out);
}

static void test_watch_stops_on_sigterm_and_survives_a_dropped_connection(void)
{
    flush();
    CHECK_INT(cli(NULL, NULL, "add demo --url https://git.example/demo.git"), 0);
    start_background("watch2", "watch");
    CHECK(wait_subscribers(1));

    /* Redis drops the subscriber: watch reconnects and subscribes again. */
    redisReply *r = rv_rsync_command(&conn, "CLIENT KILL TYPE pubsub");
    if (r)
        freeReplyObject(r);
    rvt_sleep_ms(100);
    CHECK(wait_subscribers(1));
    CHECK_INT(cli(NULL, NULL, "remove demo"), 0);
    char *out = NULL;
    for (int i = 0; i < 100; i++) {
        free(out);
        rvt_sh(&out, "cat '%s/watch2.out'", tmp);
        if (rvt_contains(out, "removed"))
            break;
        rvt_sleep_ms(50);
    }
    CHECK(rvt_contains(out, "\"type\":\"removed\""));
    free(out);

    char *pid = NULL;
    rvt_sh(&pid, "cat '%s/watch2.pid'", tmp);
    long p = pid ? strtol(pid, NULL, 10) : 0;
    free(pid);
    CHECK(p > 1);
    if (p > 1)
        kill((pid_t)p, SIGTERM);
    CHECK_INT(wait_background("watch2", 5000), 0);
    char *err = NULL;
    rvt_sh(&err, "cat '%s/watch2.err'", tmp);
    CHECK(rvt_contains(err, "reconnect"));
    free(err);
}

/* `up` itself is tested in test_up.c; here only its usage errors. */
static void test_up_with_bad_arguments_is_a_usage_error(void)
{
    char *err = NULL;
    CHECK_INT(cli(NULL, &err, "up --workers 0"), 2);
    CHECK(rvt_contains(err, "--workers"));
    free(err);
    CHECK_INT(cli(NULL, &err, "up --bogus"), 2);
    CHECK(rvt_contains(err, "unexpected argument"));
    free(err);
}

int main(void)
{
    tmp = rvt_tmpdir("rv-cli");
    if (!tmp || rvt_redis_start(&redis, NULL) != 0 ||
        rvt_redis_connect(&redis, &conn) != 0) {
        fprintf(stderr, "cannot start redis-server\n");
        return 1;
    }
    RUN(test_add_list_status_remove_round_trip);
    RUN(test_add_twice_fails_with_exists);
    RUN(test_add_refuses_what_the_url_policy_refuses);
    RUN(test_invalid_ids_are_usage_errors);
    RUN(test_bad_usage_exits_2);
    RUN(test_help_prints_commands_and_settings);
    RUN(test_credential_urls_are_refused_and_never_echoed);
    RUN(test_five_refreshes_make_one_queued_job);
    RUN(test_refresh_explains_no_github_and_unknown_repos);
    RUN(test_status_shows_running_worker_and_last_error);
    RUN(test_queue_shows_running_jobs_and_undecodable_payloads);
    RUN(test_unreachable_redis_is_named_without_its_password);
    RUN(test_watch_prints_the_status_event_of_a_refresh);
    RUN(test_watch_stops_on_sigterm_and_survives_a_dropped_connection);
    RUN(test_up_with_bad_arguments_is_a_usage_error);
    return rvt_finish(&conn, &redis, tmp);
}

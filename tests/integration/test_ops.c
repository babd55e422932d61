/*
 * The operations views end to end: GET /v1/queue, /v1/workers,
 * /v1/deadletters (and its retry and drop), /v1/stats through the real API
 * (curl as the client) against a private redis-server, first with jobs
 * placed by hand (waiting, running, dead), then with real workers syncing
 * real git repos (done and failed counts, a SIGKILLed worker leaving the
 * list when its lease lapses).
 */
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/errors.h"
#include "common/job.h"
#include "common/keys.h"
#include "common/registry.h"
#include "common/util.h"
#include "rvtest.h"

#define ADMIN "ops-admin-Qe8wR1"
#define READER "ops-reader-Tn3vB6"
#define LIMITED "ops-limited-Hs2mK9" /* admin, patterns other* */
#define LEASE_S 5

static struct rvt_redis redis;
static struct rv_rsync conn;
static char *tmp;
static struct rvt_api api;

static int status;
static char *body;
static char *headers;

static int curl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int curl(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    status = rvt_vcurl(tmp, &body, &headers, fmt, ap);
    va_end(ap);
    return status;
}

#define AS_ADMIN "-H 'Authorization: Bearer " ADMIN "'"
#define AS_READER "-H 'Authorization: Bearer " READER "'"
#define AS_LIMITED "-H 'Authorization: Bearer " LIMITED "'"

static json_t *body_json(void)
{
    json_t *j = json_loads(body ? body : "", 0, NULL);
    if (!j)
        fprintf(stderr, "not JSON (%d): %s\n", status, body ? body : "");
    return j;
}

/* The body as JSON, kept until body_json_drop (for chained lookups). */
static json_t *kept;
static json_t *body_json_keep(void)
{
    json_decref(kept);
    kept = body_json();
    return kept;
}

static void body_json_drop(void)
{
    json_decref(kept);
    kept = NULL;
}

static void redis_do(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = NULL;
    if (rv_rsync_ensure(&conn) == RV_OK)
        r = redisvCommand(conn.ctx, fmt, ap);
    va_end(ap);
    CHECK(r != NULL && r->type != REDIS_REPLY_ERROR);
    if (r)
        freeReplyObject(r);
}

static int add_repo(const char *id, const char *url)
{
    struct rv_repo_spec spec = {.id = id, .url = url};
    char err[256];
    int rc = rv_registry_add(&conn, &spec, err, sizeof(err));
    if (rc != RV_OK)
        fprintf(stderr, "add %s: %s\n", id, err);
    return rc;
}

/* A dead-letter entry for a job of repo, as the reaper writes it. */
static void push_dead(const char *repo, const char *reason)
{
    struct rv_job job;
    CHECK_INT(rv_job_init(&job, repo, RV_KIND_BRANCHES, RV_REASON_USER), RV_OK);
    json_t *j = rv_job_to_json(&job);
    json_t *e = json_pack("{s:s,s:s,s:s,s:o}", "reason", reason, "worker",
                          "w-gone", "at", "2026-12-07T10:00:00.000Z", "job", j);
    char *text = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    redis_do("LPUSH %s %s", RV_KEY_DEADLETTER, text);
    free(text);
}

static void test_queue_shows_waiting_running_and_dead_jobs(void)
{
    redis_do("FLUSHALL");
    CHECK_INT(add_repo("alpha", "https://example.com/alpha.git"), RV_OK);
    CHECK_INT(add_repo("beta", "https://example.com/beta.git"), RV_OK);
    CHECK_INT(add_repo("gamma", "https://example.com/gamma.git"), RV_OK);
    /* A worker runs gamma's job: it took it, claimed it 5 s ago. */
    char proc[RV_KEY_MAX], meta[RV_KEY_MAX];
    redis_do("RPOPLPUSH %s %s", RV_KEY_QUEUE,
             rv_key_processing(proc, "w-busy"));
    redis_do("ZADD %s %lld w-busy", RV_KEY_LEASES,
             (long long)(rv_now_ms() + 60000));
    redis_do("HSET %s branch_sync_status running branch_worker w-busy "
             "branch_started_at %lld",
             rv_key_meta(meta, "alpha"), (long long)(rv_now_ms() - 5000));
    push_dead("beta", "attempts exhausted");

    CHECK_INT(curl(AS_READER " %s/v1/queue", api.base), 200);
    json_t *q = body_json();
    json_t *waiting = json_object_get(q, "waiting");
    CHECK_INT((int)json_array_size(waiting), 2);
    CHECK_INT((int)json_integer_value(json_object_get(q, "waitingTotal")), 2);
    CHECK_INT((int)json_integer_value(json_object_get(q, "deadLetters")), 1);
    /* First in line first: beta was registered after alpha and went to the
     * front, so gamma (last, front-most) was taken; beta is next. */
    json_t *w0 = json_array_get(waiting, 0);
    CHECK_STR(json_string_value(json_object_get(w0, "repo")), "beta");
    CHECK_INT((int)json_integer_value(json_object_get(w0, "position")), 1);
    CHECK(json_is_integer(json_object_get(w0, "ageSeconds")));
    json_t *running = json_object_get(q, "running");
    CHECK_INT((int)json_array_size(running), 1);
    json_t *r0 = json_array_get(running, 0);
    CHECK_STR(json_string_value(json_object_get(r0, "worker")), "w-busy");
    CHECK_STR(json_string_value(json_object_get(r0, "repo")), "gamma");
    json_decref(q);

    /* alpha's meta names w-busy: a job of alpha there has a running time. */
    struct rv_job job;
    redis_do("DEL %s", proc);
    CHECK_INT(rvt_push_job(&conn, proc, "alpha", RV_KIND_BRANCHES,
                           RV_REASON_USER, &job),
              RV_OK);
    CHECK_INT(curl(AS_READER " %s/v1/queue", api.base), 200);
    q = body_json();
    r0 = json_array_get(json_object_get(q, "running"), 0);
    json_int_t secs = json_integer_value(json_object_get(r0, "runningSeconds"));
    CHECK(secs >= 4 && secs < 60);
    json_decref(q);

    /* A worker whose lease lapsed is not listed as running anything. */
    redis_do("ZADD %s %lld w-busy", RV_KEY_LEASES,
             (long long)(rv_now_ms() - 1000));
    CHECK_INT(curl(AS_READER " %s/v1/queue", api.base), 200);
    q = body_json();
    CHECK_INT((int)json_array_size(json_object_get(q, "running")), 0);
    json_decref(q);
}

/* GET /v1/deadletters' entry index's id, into id (41 bytes). */
static void dead_id(int index, char *id)
{
    CHECK_INT(curl(AS_READER " '%s/v1/deadletters?limit=100'", api.base), 200);
    json_t *d = body_json();
    json_t *e =
        json_array_get(json_object_get(d, "deadLetters"), (size_t)index);
    snprintf(id, 41, "%s",
             e ? json_string_value(json_object_get(e, "id")) : "");
    json_decref(d);
}

static void test_retry_puts_the_job_at_the_front_and_drop_removes(void)
{
    redis_do("FLUSHALL");
    CHECK_INT(add_repo("alpha", "https://example.com/alpha.git"), RV_OK);
    CHECK_INT(add_repo("beta", "https://example.com/beta.git"), RV_OK);
    char meta[RV_KEY_MAX];
    /* beta ended in error and its job was dead-lettered. */
    redis_do("HSET %s branch_sync_status error branch_job ''",
             rv_key_meta(meta, "beta"));
    push_dead("beta", "attempts exhausted");
    push_dead("alpha", "attempts exhausted"); /* newest: index 0 */

    CHECK_INT(curl(AS_READER " '%s/v1/deadletters?limit=1'", api.base), 200);
    json_t *d = body_json();
    CHECK_INT((int)json_integer_value(json_object_get(d, "total")), 2);
    CHECK_STR(json_string_value(json_object_get(d, "nextCursor")), "1");
    json_t *e = json_array_get(json_object_get(d, "deadLetters"), 0);
    CHECK_STR(json_string_value(json_object_get(
                  json_object_get(json_object_get(e, "entry"), "job"), "repo")),
              "alpha");
    json_decref(d);
    CHECK_INT(curl(AS_READER " '%s/v1/deadletters?cursor=1'", api.base), 200);
    d = body_json();
    CHECK(json_is_null(json_object_get(d, "nextCursor")));
    json_decref(d);

    char id[41], beta_id[41];
    dead_id(1, beta_id);
    CHECK_INT((int)strlen(beta_id), 40);
    /* The wrong id for index 1 (alpha's) is refused and changes nothing. */
    dead_id(0, id);
    CHECK_INT(curl("-X POST " AS_ADMIN " '%s/v1/deadletters/1/retry?id=%s'",
                   api.base, id),
              409);
    CHECK_INT((int)rvt_redis_int(&conn, "LLEN %s", RV_KEY_DEADLETTER), 2);
    /* Reading is not enough to retry. */
    CHECK_INT(curl("-X POST " AS_READER " '%s/v1/deadletters/1/retry?id=%s'",
                   api.base, beta_id),
              403);
    long long before = rvt_redis_int(&conn, "LLEN %s", RV_KEY_QUEUE);
    CHECK_INT(curl("-X POST " AS_ADMIN " '%s/v1/deadletters/1/retry?id=%s'",
                   api.base, beta_id),
              202);
    CHECK(rvt_contains(body, "\"outcome\":\"queued\""));
    CHECK_INT((int)rvt_redis_int(&conn, "LLEN %s", RV_KEY_DEADLETTER), 1);
    CHECK_INT((int)rvt_redis_int(&conn, "LLEN %s", RV_KEY_QUEUE),
              (int)before + 1);
    /* At the front: the right end, taken next. */
    redisReply *r = rv_rsync_command(&conn, "LINDEX %s -1", RV_KEY_QUEUE);
    struct rv_job job;
    CHECK(r && r->type == REDIS_REPLY_STRING &&
          rv_job_decode(r->str, r->len, &job, NULL, 0) == RV_OK);
    CHECK_STR(job.repo, "beta");
    CHECK_INT((int)job.reason, (int)RV_REASON_USER);
    if (r)
        freeReplyObject(r);
    char status_buf[32];
    CHECK_STR(rvt_meta_field(&conn, "beta", "branch_sync_status", status_buf,
                             sizeof(status_buf)),
              "queued");
    /* Retried again with the same id: gone from index 1 (404), and index
     * 0 holds another entry (409). */
    CHECK_INT(curl("-X POST " AS_ADMIN " '%s/v1/deadletters/1/retry?id=%s'",
                   api.base, beta_id),
              404);
    CHECK_INT(curl("-X POST " AS_ADMIN " '%s/v1/deadletters/0/retry?id=%s'",
                   api.base, beta_id),
              409);

    /* Drop: gone from the list, nothing queued. */
    dead_id(0, id);
    before = rvt_redis_int(&conn, "LLEN %s", RV_KEY_QUEUE);
    CHECK_INT(curl("-X DELETE " AS_ADMIN " '%s/v1/deadletters/0?id=%s'",
                   api.base, id),
              204);
    CHECK_INT((int)rvt_redis_int(&conn, "LLEN %s", RV_KEY_DEADLETTER), 0);
    CHECK_INT((int)rvt_redis_int(&conn, "LLEN %s", RV_KEY_QUEUE), (int)before);
    CHECK_INT(curl("-X DELETE " AS_ADMIN " '%s/v1/deadletters/0?id=%s'",
                   api.base, id),
              409);

    /* An entry with no job (a payload that did not decode) cannot be
     * retried, only dropped. */
    redis_do("LPUSH %s %s", RV_KEY_DEADLETTER,
             "{\"reason\":\"bad\",\"worker\":\"w\",\"payload\":\"00\"}");
    dead_id(0, id);
    CHECK_INT(curl("-X POST " AS_ADMIN " '%s/v1/deadletters/0/retry?id=%s'",
                   api.base, id),
              422);
    CHECK_INT(curl("-X DELETE " AS_ADMIN " '%s/v1/deadletters/0?id=%s'",
                   api.base, id),
              204);
}

static void test_hostile_requests_get_clear_errors_and_change_nothing(void)
{
    redis_do("FLUSHALL");
    push_dead("alpha", "attempts exhausted");
    char id[41];
    dead_id(0, id);
    char code[64];
    static const char *const reads[] = {
        "/v1/stats?window=1m",           "/v1/stats?window=25h",
        "/v1/stats?window=abc",          "/v1/stats?window=-5m",
        "/v1/stats?window=99999999999h", "/v1/stats?window=",
        "/v1/deadletters?limit=0",       "/v1/deadletters?limit=101",
        "/v1/deadletters?limit=x",       "/v1/deadletters?cursor=-1",
        "/v1/deadletters?cursor=1000"};
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        CHECK_INT(curl(AS_READER " '%s%s'", api.base, reads[i]), 400);
        CHECK_STR(rvt_error_code(body, code, sizeof(code)), "invalid");
    }
    static const char *const writes[] = {
        "/v1/deadletters/abc/retry?id=%s", "/v1/deadletters/-1/retry?id=%s",
        "/v1/deadletters/1000/retry?id=%s", "/v1/deadletters/0/retry?id=%sff",
        "/v1/deadletters/0/retry?x=%s"};
    for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
        char path[200];
        snprintf(path, sizeof(path), writes[i], id);
        CHECK_INT(curl("-X POST " AS_ADMIN " '%s%s'", api.base, path), 400);
    }
    CHECK_INT(curl("-X DELETE " AS_ADMIN " '%s/v1/deadletters/0'", api.base),
              400);
    /* Index 5 is not there. */
    CHECK_INT(curl("-X POST " AS_ADMIN " '%s/v1/deadletters/5/retry?id=%s'",
                   api.base, id),
              404);
    /* No token, or one limited to some repos: refused. */
    static const char *const routes[] = {"/v1/queue", "/v1/workers",
                                         "/v1/deadletters", "/v1/stats"};
    for (size_t i = 0; i < 4; i++) {
        CHECK_INT(curl("'%s%s'", api.base, routes[i]), 401);
        CHECK_INT(curl(AS_LIMITED " '%s%s'", api.base, routes[i]), 403);
    }
    CHECK_INT(curl("-X POST '%s/v1/deadletters/0/retry?id=%s'", api.base, id),
              401);
    CHECK_INT(curl("-X DELETE " AS_LIMITED " '%s/v1/deadletters/0?id=%s'",
                   api.base, id),
              403);
    CHECK_INT(curl("-X DELETE " AS_READER " '%s/v1/deadletters/0?id=%s'",
                   api.base, id),
              403);
    CHECK_INT((int)rvt_redis_int(&conn, "LLEN %s", RV_KEY_DEADLETTER), 1);
    /* Nothing was queued by any of it. */
    CHECK_INT((int)rvt_redis_int(&conn, "LLEN %s", RV_KEY_QUEUE), 0);
}

static pid_t start_worker(const char *name)
{
    char log[512], data[512], lease[48];
    snprintf(log, sizeof(log), "%s/%s.log", tmp, name);
    snprintf(data, sizeof(data), "%s/data-%s", tmp, name);
    snprintf(lease, sizeof(lease), "REPOVIEW_LEASE_SECONDS=%d", LEASE_S);
    const char *env[] = {lease, rvt_allow_local_env(), NULL};
    return rvt_spawn_worker(redis.url, data, log, env);
}

static char *make_repo(const char *name)
{
    char *path = malloc(512);
    if (!path)
        return NULL;
    snprintf(path, 512, "%s/%s", tmp, name);
    int rc = rvt_sh(NULL,
                    "set -e; git init -q -b main '%s'; cd '%s';"
                    "git config user.email t@example.com;"
                    "git config user.name Tester;"
                    "echo base > f; git add f; git commit -qm base;"
                    "git branch b1",
                    path, path);
    if (rc != 0) {
        free(path);
        return NULL;
    }
    return path;
}

/* Sums points[].<what>.branches of a /v1/stats answer. */
static long long sum_points(json_t *stats, const char *what)
{
    long long n = 0;
    json_t *points = json_object_get(stats, "points"), *p;
    size_t i;
    json_array_foreach(points, i, p) n += json_integer_value(
        json_object_get(json_object_get(p, what), "branches"));
    return n;
}

static bool has_point_with(json_t *stats, const char *field)
{
    json_t *points = json_object_get(stats, "points"), *p;
    size_t i;
    json_array_foreach(points, i, p) if (json_is_integer(json_object_get(
                                             p, field))) return true;
    return false;
}

static int worker_count(pid_t *pids, size_t n, bool *seen)
{
    CHECK_INT(curl(AS_READER " %s/v1/workers", api.base), 200);
    json_t *w = body_json();
    json_t *list = json_object_get(w, "workers"), *it;
    size_t i;
    for (size_t k = 0; k < n; k++)
        seen[k] = false;
    json_array_foreach(list, i, it)
    {
        json_int_t pid = json_integer_value(json_object_get(it, "pid"));
        for (size_t k = 0; k < n; k++)
            if (pid == pids[k])
                seen[k] = true;
        CHECK(json_is_string(json_object_get(it, "host")));
        CHECK(json_is_string(json_object_get(it, "leaseExpiresAt")));
    }
    int count = (int)json_array_size(list);
    json_decref(w);
    return count;
}

static void test_real_workers_count_syncs_and_a_killed_one_leaves(void)
{
    redis_do("FLUSHALL");
    char *good1 = make_repo("good1"), *good2 = make_repo("good2");
    CHECK(good1 && good2);
    char missing[600];
    snprintf(missing, sizeof(missing), "%s/missing-repo", tmp);
    CHECK_INT(add_repo("good1", good1), RV_OK);
    CHECK_INT(add_repo("good2", good2), RV_OK);
    CHECK_INT(add_repo("broken", missing), RV_OK);
    pid_t pids[2] = {start_worker("w1"), start_worker("w2")};
    CHECK(pids[0] > 0 && pids[1] > 0);
    CHECK(rvt_wait_field(&conn, "good1", "branch_sync_status", "idle", 20000));
    CHECK(rvt_wait_field(&conn, "good2", "branch_sync_status", "idle", 20000));
    CHECK(
        rvt_wait_field(&conn, "broken", "branch_sync_status", "error", 20000));

    bool seen[2];
    CHECK_INT(worker_count(pids, 2, seen), 2);
    CHECK(seen[0] && seen[1]);
    json_t *w = body_json();
    long long done = 0, failed = 0;
    json_t *it;
    size_t i;
    json_array_foreach(json_object_get(w, "workers"), i, it)
    {
        /* A live worker's hash outlives its lease (two leases, renewed
         * every third of one), so a reader that saw the lease live still
         * finds the hash a moment later. */
        char key[RV_KEY_MAX];
        const char *id = json_string_value(json_object_get(it, "id"));
        CHECK(id && rvt_redis_int(&conn, "PTTL %s", rv_key_worker(key, id)) >
                        LEASE_S * 1000);
        done += json_integer_value(json_object_get(it, "syncsDone"));
        failed += json_integer_value(json_object_get(it, "syncsFailed"));
    }
    json_decref(w);
    CHECK(done >= 2);
    CHECK(failed >= 1);

    CHECK_INT(curl(AS_READER " '%s/v1/stats?window=5m'", api.base), 200);
    json_t *st = body_json();
    CHECK_INT((int)json_array_size(json_object_get(st, "points")), 5);
    CHECK(sum_points(st, "done") >= 2);
    CHECK(sum_points(st, "failed") >= 1);
    CHECK(has_point_with(st, "p50Ms"));
    CHECK(has_point_with(st, "p95Ms"));
    CHECK(has_point_with(st, "queueDepth"));
    CHECK(json_is_array(json_object_get(st, "githubBudget")));
    json_decref(st);

    /* SIGKILL: no goodbye; the list drops it once its lease lapses. */
    kill(pids[0], SIGKILL);
    waitpid(pids[0], NULL, 0);
    int64_t deadline = rv_now_ms() + rvt_scale_ms((LEASE_S + 5) * 1000);
    int count = 2;
    while (rv_now_ms() < deadline) {
        count = worker_count(pids, 2, seen);
        if (count == 1)
            break;
        rvt_sleep_ms(250);
    }
    CHECK_INT(count, 1);
    CHECK(!seen[0] && seen[1]);
    /* A worker that stops on purpose leaves at once. */
    CHECK_INT(rvt_stop_process(pids[1], 10000), 0);
    CHECK_INT(worker_count(pids, 2, seen), 0);
    free(good1);
    free(good2);
}

/* Runs `repoview ARGS` against the test's Redis; stdout into *out
 * (malloc'd). Returns the exit code. */
static int cli(char **out, const char *args)
{
    return rvt_sh(out, "REPOVIEW_REDIS_URL='%s' '%s' %s 2>>'%s/cli.err'",
                  redis.url, rvt_bin("repoview"), args, tmp);
}

static void test_cli_lists_retries_and_drops_dead_letters(void)
{
    redis_do("FLUSHALL");
    CHECK_INT(add_repo("alpha", "https://example.com/alpha.git"), RV_OK);
    char meta[RV_KEY_MAX];
    redis_do("DEL %s", RV_KEY_QUEUE);
    redis_do("HSET %s branch_sync_status error branch_job ''",
             rv_key_meta(meta, "alpha"));
    push_dead("alpha", "attempts exhausted");
    push_dead("alpha", "attempts exhausted");
    char *out = NULL;
    CHECK_INT(cli(&out, "deadletters --json"), 0);
    json_t *j = json_loads(out ? out : "", 0, NULL);
    CHECK_INT((int)json_array_size(json_object_get(j, "deadLetters")), 2);
    json_decref(j);
    free(out);
    out = NULL;
    CHECK_INT(cli(&out, "deadletters"), 0);
    CHECK(rvt_contains(out, "alpha"));
    free(out);
    out = NULL;
    CHECK_INT(cli(NULL, "deadletters --retry x"), 2);
    CHECK_INT(cli(NULL, "deadletters --retry 1 --drop 0"), 2);
    CHECK_INT(cli(NULL, "deadletters --retry 7"), 1);
    CHECK_INT(cli(&out, "deadletters --retry 1"), 0);
    CHECK(rvt_contains(out, "retried: queued"));
    free(out);
    out = NULL;
    CHECK_INT((int)rvt_redis_int(&conn, "LLEN %s", RV_KEY_QUEUE), 1);
    CHECK_INT(cli(NULL, "deadletters --drop 0"), 0);
    CHECK_INT((int)rvt_redis_int(&conn, "LLEN %s", RV_KEY_DEADLETTER), 0);
    /* Workers: a live lease with its hash, a lapsed one left out. */
    char key[RV_KEY_MAX];
    redis_do("ZADD %s %lld w-live %lld w-dead", RV_KEY_LEASES,
             (long long)(rv_now_ms() + 60000), (long long)(rv_now_ms() - 1));
    redis_do("HSET %s host h1 pid 42 startedAt 1700000000000 syncsDone 7 "
             "syncsFailed 1",
             rv_key_worker(key, "w-live"));
    CHECK_INT(cli(&out, "workers --json"), 0);
    j = json_loads(out ? out : "", 0, NULL);
    json_t *list = json_object_get(j, "workers");
    CHECK_INT((int)json_array_size(list), 1);
    json_t *w = json_array_get(list, 0);
    CHECK_STR(json_string_value(json_object_get(w, "id")), "w-live");
    CHECK_INT((int)json_integer_value(json_object_get(w, "syncsDone")), 7);
    CHECK_INT((int)json_integer_value(json_object_get(w, "pid")), 42);
    json_decref(j);
    free(out);
    out = NULL;
    CHECK_INT(cli(&out, "workers"), 0);
    CHECK(rvt_contains(out, "w-live"));
    free(out);
}

/* What the views read may be anything (another tool, an old version, a
 * hand edit): garbage is shown as such or skipped, never trusted. */
static void test_garbage_in_redis_is_shown_or_skipped_never_trusted(void)
{
    redis_do("FLUSHALL");
    char key[RV_KEY_MAX], proc[RV_KEY_MAX];
    redis_do("RPUSH %s %b", RV_KEY_QUEUE, "\x87\xa1v\x01garbage", (size_t)12);
    redis_do("ZADD %s %lld w-odd", RV_KEY_LEASES,
             (long long)(rv_now_ms() + 60000));
    redis_do("RPUSH %s not-a-job", rv_key_processing(proc, "w-odd"));
    redis_do("HSET %s host h pid -5 startedAt soon syncsDone lots",
             rv_key_worker(key, "w-odd"));
    redis_do("HSET %s done:branches abc ms:branches:99 4 ms:branches:x 1 "
             "ms:nope:1 3 failed:prs -2 queue 7",
             rv_key_stats(key, rv_now_ms() / 60000));
    redis_do("LPUSH %s %s", RV_KEY_DEADLETTER, "not json at all");

    CHECK_INT(curl(AS_READER " %s/v1/queue", api.base), 200);
    json_t *q = body_json();
    json_t *w0 = json_array_get(json_object_get(q, "waiting"), 0);
    CHECK(json_is_string(json_object_get(w0, "undecodable")));
    json_t *r0 = json_array_get(json_object_get(q, "running"), 0);
    CHECK(json_is_string(json_object_get(r0, "undecodable")));
    CHECK_STR(json_string_value(json_object_get(r0, "worker")), "w-odd");
    json_decref(q);

    CHECK_INT(curl(AS_READER " %s/v1/workers", api.base), 200);
    json_t *w = json_array_get(json_object_get(body_json_keep(), "workers"), 0);
    CHECK_STR(json_string_value(json_object_get(w, "host")), "h");
    CHECK(json_is_null(json_object_get(w, "pid")));
    CHECK(json_is_null(json_object_get(w, "startedAt")));
    CHECK_INT((int)json_integer_value(json_object_get(w, "syncsDone")), 0);
    body_json_drop();

    CHECK_INT(curl(AS_READER " '%s/v1/stats?window=5m'", api.base), 200);
    json_t *st = body_json();
    json_t *last = json_array_get(json_object_get(st, "points"), 4);
    CHECK_INT((int)json_integer_value(
                  json_object_get(json_object_get(last, "done"), "branches")),
              0);
    CHECK_INT((int)json_integer_value(
                  json_object_get(json_object_get(last, "failed"), "prs")),
              0);
    CHECK(json_is_null(json_object_get(last, "p50Ms")));
    CHECK_INT((int)json_integer_value(json_object_get(last, "queueDepth")), 7);
    json_decref(st);

    CHECK_INT(curl(AS_READER " %s/v1/deadletters", api.base), 200);
    CHECK(rvt_contains(body, "\"raw\":\"not json at all\""));
    char id[41];
    dead_id(0, id);
    CHECK_INT(curl("-X POST " AS_ADMIN " '%s/v1/deadletters/0/retry?id=%s'",
                   api.base, id),
              422);
}

/* Found by review: each of these failed a whole view, or crashed it. */
static void test_hostile_bytes_and_types_fail_no_view(void)
{
    redis_do("FLUSHALL");
    char key[RV_KEY_MAX];
    /* A payload whose unknown key is not UTF-8. */
    redis_do("RPUSH %s %b", RV_KEY_QUEUE, "\x81\xa1\xff\x01", (size_t)4);
    /* A live worker whose hash and processing list are strings. */
    redis_do("ZADD %s %lld w-bad", RV_KEY_LEASES,
             (long long)(rv_now_ms() + 60000));
    redis_do("SET %s x", rv_key_worker(key, "w-bad"));
    redis_do("SET %s x", rv_key_processing(key, "w-bad"));
    /* Histogram counts whose sum overflows. */
    redis_do("HSET %s ms:branches:0 9223372036854775807 ms:branches:1 "
             "9223372036854775807",
             rv_key_stats(key, rv_now_ms() / 60000));
    /* A binary dead-letter entry. */
    redis_do("LPUSH %s %b", RV_KEY_DEADLETTER,
             "\xff\xfe\x00"
             "bin",
             (size_t)6);

    CHECK_INT(curl(AS_READER " %s/v1/queue", api.base), 200);
    CHECK(rvt_contains(body, "undecodable"));
    CHECK_INT(curl(AS_READER " %s/v1/workers", api.base), 200);
    CHECK_INT(curl(AS_READER " '%s/v1/stats?window=5m'", api.base), 200);
    CHECK_INT(curl(AS_READER " %s/v1/deadletters", api.base), 200);
    CHECK(rvt_contains(body, "\"rawHex\":\"fffe0062696e\""));
    /* The binary entry can be dropped from the page. */
    char id[41];
    dead_id(0, id);
    CHECK_INT(curl("-X DELETE " AS_ADMIN " '%s/v1/deadletters/0?id=%s'",
                   api.base, id),
              204);
    CHECK_INT((int)rvt_redis_int(&conn, "LLEN %s", RV_KEY_DEADLETTER), 0);

    /* A PR sync of a repo without GitHub is not retried. */
    CHECK_INT(add_repo("nogh", "https://example.com/nogh.git"), RV_OK);
    struct rv_job job;
    CHECK_INT(rv_job_init(&job, "nogh", RV_KIND_PRS, RV_REASON_USER), RV_OK);
    json_t *e = json_pack("{s:s,s:s,s:s,s:o}", "reason", "attempts exhausted",
                          "worker", "w-gone", "at", "2026-12-07T10:00:00.000Z",
                          "job", rv_job_to_json(&job));
    char *text = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    redis_do("LPUSH %s %s", RV_KEY_DEADLETTER, text);
    free(text);
    long long queued = rvt_redis_int(&conn, "LLEN %s", RV_KEY_QUEUE);
    dead_id(0, id);
    CHECK_INT(curl("-X POST " AS_ADMIN " '%s/v1/deadletters/0/retry?id=%s'",
                   api.base, id),
              400);
    CHECK(rvt_contains(body, "no_github"));
    CHECK_INT((int)rvt_redis_int(&conn, "LLEN %s", RV_KEY_DEADLETTER), 1);
    CHECK_INT(rvt_redis_int(&conn, "LLEN %s", RV_KEY_QUEUE), queued);
}

int main(void)
{
    tmp = rvt_tmpdir("rv-ops");
    if (!tmp || rvt_redis_start(&redis, NULL) != 0 ||
        rvt_redis_connect(&redis, &conn) != 0) {
        fprintf(stderr, "cannot start redis\n");
        return 1;
    }
    char tokens[600], env_tokens[700], log[600];
    snprintf(tokens, sizeof(tokens), "%s/tokens", tmp);
    snprintf(env_tokens, sizeof(env_tokens), "REPOVIEW_TOKENS_FILE=%s", tokens);
    snprintf(log, sizeof(log), "%s/api.log", tmp);
    char *hashes = NULL;
    rvt_sh(&hashes, "for t in " ADMIN " " READER " " LIMITED "; do "
                    "printf '%%s' $t | sha256sum | cut -c1-64; done");
    char h[3][65] = {"", "", ""};
    if (!hashes || sscanf(hashes, "%64s %64s %64s", h[0], h[1], h[2]) != 3) {
        fprintf(stderr, "cannot hash the tokens\n");
        return 1;
    }
    free(hashes);
    FILE *f = fopen(tokens, "w");
    if (!f)
        return 1;
    fprintf(f, "sha256:%s admin\nsha256:%s read\nsha256:%s admin other*\n",
            h[0], h[1], h[2]);
    fclose(f);
    const char *env[] = {env_tokens, NULL};
    if (rvt_api_start(&api, 0, redis.url, log, "/readyz", env) != 0) {
        fprintf(stderr, "cannot start the API\n");
        return 1;
    }
    RUN(test_queue_shows_waiting_running_and_dead_jobs);
    RUN(test_retry_puts_the_job_at_the_front_and_drop_removes);
    RUN(test_hostile_requests_get_clear_errors_and_change_nothing);
    RUN(test_garbage_in_redis_is_shown_or_skipped_never_trusted);
    RUN(test_hostile_bytes_and_types_fail_no_view);
    RUN(test_cli_lists_retries_and_drops_dead_letters);
    RUN(test_real_workers_count_syncs_and_a_killed_one_leaves);
    /* A clean exit: under ASan, also no leak in any path taken above. */
    CHECK_INT(rvt_api_stop(&api), 0);
    free(body);
    free(headers);
    return rvt_finish(&conn, &redis, tmp);
}

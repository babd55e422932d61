/*
 * Costs that must not grow with the number of repos, asserted on Redis
 * command counts (INFO stats), not on times: a webhook is routed to its
 * repo through the GitHub name index (lua/findByGithub) in the same number
 * of commands with 10 repos registered as with 2,000; a Redis written
 * before the index existed gets it built once, on the first webhook; the
 * index follows registrations and removals.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/keys.h"
#include "common/registry.h"
#include "common/util.h"
#include "rvtest.h"
#include "worker/housekeeping.h"
#include "worker/mirror.h"
#include "worker/reconcile.h"
#include "worker/scheduler.h"

#define SECRET "scale-webhook-secret"

static struct rvt_redis redis;
static struct rv_rsync conn;
static struct rvt_api api;
static char *tmp;
static int delivery;

/* A counter of INFO stats, e.g. "total_commands_processed" (which counts
 * the commands scripts run too) or "total_reads_processed" (the reads
 * Redis made from its clients' sockets); -1 when missing. */
static long long info_stat(const char *name)
{
    redisReply *r = rv_rsync_command(&conn, "INFO stats");
    char field[64];
    snprintf(field, sizeof(field), "\r\n%s:", name);
    long long n = -1;
    const char *p = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, field)
                                                       : NULL;
    if (p)
        n = strtoll(p + strlen(field), NULL, 10);
    if (r)
        freeReplyObject(r);
    return n;
}

static long long commands(void)
{
    return info_stat("total_commands_processed");
}

/* Registers n repos scale-<from>... named acme/scale-<i>. */
static void add_repos(int from, int n)
{
    char id[64], gh[64], err[256], url[600];
    snprintf(url, sizeof(url), "%s/repo", tmp);
    for (int i = from; i < from + n; i++) {
        snprintf(id, sizeof(id), "scale-%d", i);
        snprintf(gh, sizeof(gh), "acme/Scale-%d", i);
        struct rv_repo_spec spec = {.id = id, .url = url, .github = gh};
        if (rv_registry_add(&conn, &spec, err, sizeof(err)) != RV_OK) {
            CHECK(!"a repo registers");
            return;
        }
    }
}

static int curl(char **body, char **headers, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int curl(char **body, char **headers, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int st = rvt_vcurl(tmp, body, headers, fmt, ap);
    va_end(ap);
    return st;
}

/* Posts a signed push for full_name; the HTTP status, the answer in out
 * (malloc'd). */
static int push(const char *full_name, char **out)
{
    char path[600], sig[128], json[256];
    snprintf(path, sizeof(path), "%s/hook.json", tmp);
    snprintf(json, sizeof(json),
             "{\"ref\":\"refs/heads/main\",\"repository\":{\"full_name\":"
             "\"%s\"}}",
             full_name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    fputs(json, f);
    fclose(f);
    rvt_sign_file(path, SECRET, sig, sizeof(sig));
    char *body = NULL, *headers = NULL;
    int st = curl(&body, &headers,
                  "-X POST -H 'X-GitHub-Event: push' "
                  "-H 'X-GitHub-Delivery: scale-%d' "
                  "-H 'X-Hub-Signature-256: %s' --data-binary @'%s' "
                  "%s/v1/webhooks/github",
                  ++delivery, sig, path, api.base);
    free(headers);
    *out = body;
    return st;
}

/* The commands one routed webhook costs Redis: the least of three (the
 * API's own periodic samples may fall inside one; the second and third
 * coalesce with the first's job). */
static long long one_webhook_cost(const char *full_name, const char *want_id);
static long long webhook_cost(const char *full_name, const char *want_id)
{
    long long least = -1;
    for (int i = 0; i < 3; i++) {
        long long c = one_webhook_cost(full_name, want_id);
        if (least < 0 || c < least)
            least = c;
    }
    return least;
}

static long long one_webhook_cost(const char *full_name, const char *want_id)
{
    long long before = commands();
    char *body = NULL;
    CHECK_INT(push(full_name, &body), 202);
    long long cost = commands() - before - 1; /* this INFO's own */
    char want[96];
    snprintf(want, sizeof(want), "\"repo\":\"%s\"", want_id);
    CHECK(body && rvt_contains(body, want));
    free(body);
    return cost;
}

/* The HGETs one routed webhook for full_name costs Redis. */
static long long webhook_hgets(const char *full_name, const char *want_id)
{
    long long before = rvt_redis_calls(&conn, "hget");
    (void)one_webhook_cost(full_name, want_id);
    return rvt_redis_calls(&conn, "hget") - before;
}

static void test_a_fresh_redis_is_indexed_from_its_first_repo(void)
{
    CHECK_INT(rvt_redis_int(&conn, "SCARD %s", RV_KEY_REPOS), 0);
    add_repos(0, 10);
    /* The first registration into an empty registry marks the index
     * complete: no webhook then reads every repo to build it (with
     * 100,000 repos, a Redis stalled for most of a second). */
    CHECK_INT(rvt_redis_int(&conn, "EXISTS %s", RV_KEY_GHNAME_INDEXED), 1);
    long long first = webhook_hgets("acme/scale-1", "scale-1");
    long long next = webhook_hgets("acme/scale-2", "scale-2");
    CHECK(first >= 0);
    CHECK_INT(first, next);
}

static void test_a_redis_without_the_index_gets_it_on_the_first_webhook(void)
{
    /* As a Redis written before the index: no sets, no marker. */
    redisReply *r = rv_rsync_command(&conn, "EVAL %s 0",
                                     "for _, k in ipairs(redis.call('KEYS', "
                                     "'rv:ghname:*')) do redis.call('DEL', k) "
                                     "end return 1");
    if (r)
        freeReplyObject(r);
    CHECK_INT(rvt_redis_int(&conn, "EXISTS %s", RV_KEY_GHNAME_INDEXED), 0);
    char *body = NULL;
    CHECK_INT(push("ACME/scale-3", &body), 202);
    CHECK(body && rvt_contains(body, "\"repo\":\"scale-3\""));
    free(body);
    CHECK_INT(rvt_redis_int(&conn, "EXISTS %s", RV_KEY_GHNAME_INDEXED), 1);
    CHECK_INT(
        rvt_redis_int(&conn, "SISMEMBER rv:ghname:acme/scale-7 %s", "scale-7"),
        1);
}

static void test_the_index_follows_registration_and_removal(void)
{
    add_repos(10, 1);
    CHECK_INT(rvt_redis_int(&conn, "SISMEMBER rv:ghname:acme/scale-10 %s",
                            "scale-10"),
              1);
    CHECK_INT(rv_registry_remove(&conn, "scale-10"), RV_OK);
    CHECK_INT(rvt_redis_int(&conn, "EXISTS %s", "rv:ghname:acme/scale-10"), 0);
    /* No repo of that name any more: the webhook matches nothing. */
    char *body = NULL;
    CHECK_INT(push("acme/scale-10", &body), 202);
    CHECK(body && rvt_contains(body, "no registered repo"));
    free(body);
}

/* GET path of the API: status, body in *out (malloc'd). */
static int get(const char *path, char **out)
{
    char *headers = NULL;
    *out = NULL; /* rvt_vcurl frees what it is handed */
    int st = curl(out, &headers, "'%s%s'", api.base, path);
    free(headers);
    return st;
}

/* The commands one page of 5 costs Redis (least of three, as above). */
static long long page_cost(void)
{
    long long least = -1;
    for (int i = 0; i < 3; i++) {
        long long before = commands();
        char *body = NULL;
        CHECK_INT(get("/v1/repos?limit=5", &body), 200);
        long long c = commands() - before - 1;
        free(body);
        if (least < 0 || c < least)
            least = c;
    }
    return least;
}

static long long small_page_cost;

static void test_a_webhook_costs_the_same_with_2000_repos(void)
{
    small_page_cost = page_cost();
    long long small = webhook_cost("acme/scale-5", "scale-5");
    add_repos(11, 1990);
    CHECK_INT(rvt_redis_int(&conn, "SCARD %s", RV_KEY_REPOS), 2000);
    long long large = webhook_cost("acme/scale-1500", "scale-1500");
    CHECK(small > 0);
    CHECK_INT(large, small);
    CHECK(small_page_cost > 0);
    CHECK_INT(page_cost(), small_page_cost);
}

static void test_the_list_pages_in_id_order(void)
{
    /* 2,000 repos in pages of 1,000, then 700: each id once, in order. */
    int total = 0, pages = 0;
    char prev[128] = "", path[256] = "/v1/repos?limit=1000";
    for (;;) {
        char *body = NULL;
        CHECK_INT(get(path, &body), 200);
        json_t *doc = body ? json_loads(body, 0, NULL) : NULL;
        free(body);
        json_t *repos = json_object_get(doc, "repos");
        CHECK(json_is_array(repos));
        size_t i;
        json_t *r;
        json_array_foreach(repos, i, r)
        {
            const char *id = json_string_value(json_object_get(r, "id"));
            CHECK(id && strcmp(prev, id) < 0);
            rv_strlcpy(prev, id ? id : "", sizeof(prev));
            total++;
        }
        pages++;
        json_t *next = json_object_get(doc, "nextCursor");
        CHECK(next != NULL);
        if (!json_is_string(next) || pages > 5) {
            CHECK(json_is_null(next));
            json_decref(doc);
            break;
        }
        snprintf(path, sizeof(path), "/v1/repos?limit=1000&cursor=%s",
                 json_string_value(next));
        json_decref(doc);
    }
    CHECK_INT(total, 2000);
    CHECK_INT(pages, 2);
    /* The default page is 100, with a cursor. */
    char *body = NULL;
    CHECK_INT(get("/v1/repos", &body), 200);
    json_t *doc = body ? json_loads(body, 0, NULL) : NULL;
    CHECK_INT(json_array_size(json_object_get(doc, "repos")), 100);
    CHECK(json_is_string(json_object_get(doc, "nextCursor")));
    json_decref(doc);
    free(body);
    /* q matches id or github, ignoring case; one page ends the search. */
    CHECK_INT(get("/v1/repos?q=SCALE-1999", &body), 200);
    doc = body ? json_loads(body, 0, NULL) : NULL;
    CHECK_INT(json_array_size(json_object_get(doc, "repos")), 1);
    json_decref(doc);
    free(body);
    /* An org no repo has: nothing, but a cursor while ids remain. */
    CHECK_INT(get("/v1/repos?org=nobody&limit=10", &body), 200);
    doc = body ? json_loads(body, 0, NULL) : NULL;
    CHECK_INT(json_array_size(json_object_get(doc, "repos")), 0);
    CHECK(json_is_string(json_object_get(doc, "nextCursor")));
    json_decref(doc);
    free(body);
    static const char *const bad[] = {
        "/v1/repos?limit=0",      "/v1/repos?limit=1001", "/v1/repos?limit=x",
        "/v1/repos?cursor=..%2f", "/v1/repos?org=a%20b",  "/v1/repos?q=",
        "/v1/repos?q=%01",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        CHECK_INT(get(bad[i], &body), 400);
        CHECK(body && rvt_contains(body, "bad_request"));
        free(body);
    }
}

static void test_a_reconcile_pass_reads_a_chunk_and_a_cycle_heals(void)
{
    /* An orphan: queued, with its job in no list. */
    char key[RV_KEY_MAX];
    redisReply *r = rv_rsync_command(
        &conn, "HSET %s branch_sync_status queued branch_job j-lost",
        rv_key_meta(key, "scale-1234"));
    if (r)
        freeReplyObject(r);
    struct rv_reconcile *rec = rv_reconcile_new();
    CHECK(rec != NULL);
    if (!rec)
        return;
    int repaired = 0, passes = 0;
    long long most = 0;
    while (repaired == 0 && passes < 40) {
        long long before = commands();
        int n = 0;
        CHECK_INT(rv_reconcile_pass(rec, &conn, &n), RV_OK);
        long long cost = commands() - before - 1;
        if (cost > most)
            most = cost;
        repaired += n;
        passes++;
    }
    rv_reconcile_free(rec);
    CHECK_INT(repaired, 1);
    /* 2,000 repos take about 4 passes a cycle; healed in the second. */
    CHECK(passes > 2 && passes <= 12);
    /* A pass reads about one chunk (SSCAN's COUNT is a hint), far from
     * the 2,000 repos of a whole scan. */
    CHECK(most < 3 * RV_RECONCILE_CHUNK);
    char buf[64];
    CHECK(strcmp(rvt_meta_field(&conn, "scale-1234", "branch_job", buf,
                                sizeof(buf)),
                 "j-lost") != 0);
}

/* GET /v1/events without repo= reads no snapshot: 20 such streams opened
 * with 2,000 repos registered cost (almost) no Redis commands, and each is
 * told to read the list instead. A stream of named repos still gets their
 * snapshots. */
static void test_an_all_repos_stream_reads_nothing(void)
{
    CHECK(rvt_redis_int(&conn, "SCARD %s", RV_KEY_REPOS) >= 2000);
    enum { STREAMS = 20 };
    int fds[STREAMS];
    long long before = commands();
    for (int i = 0; i < STREAMS; i++) {
        fds[i] = rvt_tcp_connect(api.port);
        struct rvt_text got = {0};
        CHECK(fds[i] >= 0 &&
              rvt_send_str(fds[i], "GET /v1/events HTTP/1.1\r\n"
                                   "Host: localhost\r\n\r\n") &&
              rvt_read_until(fds[i], "\"reason\":\"connected\"",
                             rvt_scale_ms(5000), &got));
        CHECK(rvt_text_has(&got, "event: snapshot-needed\n"));
        CHECK(!rvt_text_has(&got, "event: snapshot\n"));
        free(got.s);
    }
    long long spent = commands() - before;
    /* The INFO of commands() itself, and room for the API's own
     * housekeeping meanwhile: nowhere near one read per repo. */
    CHECK(spent >= 1 && spent <= 6);
    int named = rvt_tcp_connect(api.port);
    struct rvt_text got = {0};
    CHECK(named >= 0 &&
          rvt_send_str(named, "GET /v1/events?repo=scale-1&repo=scale-2 "
                              "HTTP/1.1\r\nHost: localhost\r\n\r\n") &&
          rvt_read_until(named, "\"repo\":\"scale-2\"", rvt_scale_ms(5000),
                         &got));
    CHECK(rvt_text_has(&got, "event: snapshot\n"));
    CHECK(!rvt_text_has(&got, "snapshot-needed"));
    free(got.s);
    if (named >= 0)
        close(named);
    for (int i = 0; i < STREAMS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* The mirror clean-up asks Redis one SMISMEMBER per chunk of 500
 * mirrors, and removes the mirrors of repos that are gone: 1,100 mirrors
 * (about 1,000 of registered repos) are three steps and three commands. */
static void test_the_mirror_clean_up_asks_once_per_chunk(void)
{
    char data[600], path[1200];
    snprintf(data, sizeof(data), "%s/data", tmp);
    snprintf(path, sizeof(path), "%s/mirrors", data);
    CHECK_INT(rvt_sh(NULL, "mkdir -p '%s'", path), 0);
    for (int i = 0; i < 1100; i++) {
        char id[32];
        snprintf(id, sizeof(id), i < 1000 ? "scale-%d" : "gone-%d", i);
        CHECK_INT(rv_mirror_path(data, id, path, sizeof(path)), 0);
        CHECK_INT(rvt_sh(NULL, "mkdir '%s'", path), 0);
    }
    struct rv_mirror_scan scan = {0};
    bool done = false;
    int steps = 0;
    long long before = commands();
    while (!done && steps < 10) {
        steps++;
        CHECK_INT(rv_mirror_gc_step(&scan, data, rv_housekeeping_registered,
                                    &conn, &done),
                  RV_OK);
    }
    CHECK_INT((int)(commands() - before), steps + 1);
    CHECK_INT(steps, 3);
    int left = 0, registered = 0;
    for (int i = 0; i < 1100; i++) {
        char id[32];
        snprintf(id, sizeof(id), i < 1000 ? "scale-%d" : "gone-%d", i);
        rv_mirror_path(data, id, path, sizeof(path));
        bool kept = access(path, F_OK) == 0;
        bool member = rvt_redis_int(&conn, "SISMEMBER " RV_KEY_REPOS " %s",
                                    id) == 1;
        CHECK(kept == member);
        left += kept;
        registered += member;
    }
    CHECK_INT(left, registered);
    CHECK(registered >= 990);
    rv_mirror_scan_close(&scan);
}

/* A scheduler tick that finds a full batch due sends the batch in one
 * write: Redis reads the 100 scheduleTick calls in a few socket reads, not
 * 100 (on the old code it took one read and one round trip a call). The
 * tick queues exactly one batch, a malformed entry is dropped, and a
 * script cache Redis lost is loaded again within the batch. */
static void test_a_scheduler_tick_is_one_round_trip(void)
{
    struct rv_config cfg = {.sync_interval = 300};
    int64_t later = rv_now_ms() + 2 * 300 * 1000;
    char at[32];
    snprintf(at, sizeof(at), "%lld", (long long)later);
    CHECK(rvt_redis_int(&conn, "ZCOUNT " RV_KEY_SCHEDULE " -inf %s", at) >
          2 * RV_SCHEDULER_BATCH);
    /* Registration queued every repo: the first batch due is made idle,
     * as if its syncs had run. */
    redisReply *r = rv_rsync_command(
        &conn, "ZRANGEBYSCORE %s -inf %s LIMIT 0 %d", RV_KEY_SCHEDULE, at,
        RV_SCHEDULER_BATCH);
    CHECK(r && r->type == REDIS_REPLY_ARRAY &&
          r->elements == RV_SCHEDULER_BATCH);
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements;
         i++) {
        const char *member = r->element[i]->str, *colon = strchr(member, ':');
        char key[RV_KEY_MAX];
        redisReply *set = rv_rsync_command(
            &conn, "HSET %s %s idle", rv_key_meta(key, colon + 1),
            strncmp(member, "prs:", 4) == 0 ? "pr_sync_status"
                                            : "branch_sync_status");
        CHECK(set && set->type == REDIS_REPLY_INTEGER);
        if (set)
            freeReplyObject(set);
    }
    if (r)
        freeReplyObject(r);
    long long depth = rvt_redis_int(&conn, "LLEN %s", RV_KEY_QUEUE);
    /* The script cache is cold: the batch meets NOSCRIPT, the script is
     * loaded once, and the batch goes again. */
    long long before = info_stat("total_reads_processed");
    int queued = 0;
    CHECK_INT(rv_scheduler_tick(&conn, &cfg, later, &queued), RV_OK);
    long long spent = info_stat("total_reads_processed") - before;
    CHECK_INT(queued, RV_SCHEDULER_BATCH);
    CHECK_INT(rvt_redis_int(&conn, "LLEN %s", RV_KEY_QUEUE),
              depth + RV_SCHEDULER_BATCH);
    /* ZRANGEBYSCORE, the batch twice (about 40 KB, read 16 KB at a time),
     * SCRIPT LOAD and this INFO, with room for the API's own housekeeping
     * meanwhile. */
    if (spent < 3 || spent > 20)
        fprintf(stderr, "the tick took %lld socket reads\n", spent);
    CHECK(spent >= 3 && spent <= 20);

    /* A member that names no kind sorts first (score 0), and Redis has
     * forgotten every script. */
    CHECK_INT(rvt_redis_int(&conn, "ZADD " RV_KEY_SCHEDULE " 0 %s",
                            "nokind-at-all"),
              1);
    r = rv_rsync_command(&conn, "SCRIPT FLUSH");
    CHECK(r && r->type == REDIS_REPLY_STATUS);
    if (r)
        freeReplyObject(r);
    long long due = rvt_redis_int(&conn, "ZCOUNT " RV_KEY_SCHEDULE
                                         " -inf %s", at);
    CHECK_INT(rv_scheduler_tick(&conn, &cfg, later, &queued), RV_OK);
    /* Every call of the batch ran: the 99 entries are held past later
     * (queued, or already waiting), the malformed one is gone. */
    CHECK_INT(rvt_redis_int(&conn, "ZCOUNT " RV_KEY_SCHEDULE " -inf %s", at),
              due - RV_SCHEDULER_BATCH);
    r = rv_rsync_command(&conn, "ZSCORE %s nokind-at-all", RV_KEY_SCHEDULE);
    CHECK(r && r->type == REDIS_REPLY_NIL);
    if (r)
        freeReplyObject(r);
}

int main(void)
{
    tmp = rvt_tmpdir("rvtest-scale");
    if (!tmp || rvt_redis_start(&redis, NULL) != 0 ||
        rvt_redis_connect(&redis, &conn) != 0 ||
        rvt_sh(NULL, "git init -q -b main '%s/repo'", tmp) != 0) {
        fprintf(stderr, "cannot set up (redis or git)\n");
        return 1;
    }
    char log[600];
    snprintf(log, sizeof(log), "%s/api.log", tmp);
    const char *env[] = {"REPOVIEW_WEBHOOK_SECRET=" SECRET, NULL};
    if (rvt_api_start(&api, 0, redis.url, log, "/readyz", env) != 0) {
        fprintf(stderr, "cannot start the API\n");
        return 1;
    }
    RUN(test_a_fresh_redis_is_indexed_from_its_first_repo);
    RUN(test_a_redis_without_the_index_gets_it_on_the_first_webhook);
    RUN(test_the_index_follows_registration_and_removal);
    RUN(test_a_webhook_costs_the_same_with_2000_repos);
    RUN(test_an_all_repos_stream_reads_nothing);
    RUN(test_the_mirror_clean_up_asks_once_per_chunk);
    RUN(test_the_list_pages_in_id_order);
    RUN(test_a_reconcile_pass_reads_a_chunk_and_a_cycle_heals);
    RUN(test_a_scheduler_tick_is_one_round_trip);
    CHECK_INT(rvt_api_stop(&api), 0);
    return rvt_finish(&conn, &redis, tmp);
}

/*
 * GitHub budgets per token (worker/ghbudget.h): each token identity (an
 * installation, the PAT) gets its own budget in Redis with the values the
 * fake GitHub sent (headers, and GraphQL rateLimit alone when the headers
 * are missing), and a secondary rate limit on one installation holds only
 * that installation's PR syncs (no request sent while held) while the
 * PAT's go on. Four workers allowed two requests per token never have
 * more than two at the fake at once, and a slot held by a worker killed
 * with SIGKILL lapses so the token's syncs go on.
 */
#include <jansson.h>
#include <stdarg.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <string.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/keys.h"
#include "common/cmd.h"
#include "common/registry.h"
#include "common/scripts.h"
#include "common/util.h"
#include "fake_github.h"
#include "rvtest.h"
#include "worker/ghbudget.h"
#include "worker/prsync.h"

#define PAT "ghp_budgetTESTpat0123456789SECRETvalue"
#define APP_ID 4343

static struct rvt_redis redis;
static struct rv_rsync conn;
static char *tmp;
static struct rvt_fake_github fake;
static pid_t worker;
static char key_path[600], pub_path[600], rest[128];

#define control(...) rvt_fake_github_control(&fake, __VA_ARGS__)

#define fake_get(path) rvt_fake_github_get(&fake, path)

/* The last recorded GraphQL request of token label (new reference), or
 * NULL; *count is how many there were for owner (NULL: any). */
static json_t *last_request(const char *label, const char *owner, int *count)
{
    json_t *reqs = fake_get("/_requests"), *last = NULL, *r;
    size_t i;
    *count = 0;
    json_array_foreach(reqs, i, r)
    {
        const char *k = json_string_value(json_object_get(r, "kind"));
        const char *t = json_string_value(json_object_get(r, "token"));
        const char *o = json_string_value(json_object_get(r, "owner"));
        if (!k || strcmp(k, "graphql") || !t || strcmp(t, label))
            continue;
        if (owner && (!o || strcmp(o, owner)))
            continue;
        (*count)++;
        last = r;
    }
    json_incref(last);
    json_decref(reqs);
    return last;
}

static void add_repo(const char *id, const char *github)
{
    char path[600], err[256];
    snprintf(path, sizeof(path), "%s/repo", tmp);
    struct rv_repo_spec spec = {.id = id, .url = path, .github = github};
    CHECK_INT(rv_registry_add(&conn, &spec, err, sizeof(err)), RV_OK);
}

/* The reply of a command as an integer (integer or numeric string), or
 * -1. */
static long long redis_int(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(conn.ctx, fmt, ap);
    va_end(ap);
    long long v = -1;
    int64_t parsed;
    if (r && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r && r->type == REDIS_REPLY_STRING &&
             rv_parse_i64(r->str, INT64_MIN, INT64_MAX, &parsed) == 0)
        v = parsed;
    if (r)
        freeReplyObject(r);
    return v;
}

static long long hget_int(const char *key, const char *field)
{
    return redis_int("HGET %s %s", key, field);
}

static pid_t spawn(const char *name, const char *max_conc)
{
    char prefix[600], conc[96];
    snprintf(prefix, sizeof(prefix), "%s/%s", tmp, name);
    snprintf(conc, sizeof(conc), "REPOVIEW_GITHUB_MAX_CONCURRENCY=%s",
             max_conc);
    const char *extra[] = {conc, "REPOVIEW_GITHUB_TIMEOUT=3", NULL};
    return rvt_fake_github_worker(&fake, redis.url, prefix, PAT, APP_ID,
                                  key_path, extra);
}

static void start_worker(void)
{
    worker = spawn("worker", "10");
}

static void refresh_prs(const char *id)
{
    rv_refresh_outcome outcome;
    CHECK_INT(
        rv_registry_refresh(&conn, id, RV_KIND_PRS, RV_REASON_USER, &outcome),
        RV_OK);
}

static void test_each_token_has_its_own_budget_with_what_github_sent(void)
{
    add_repo("widgets", "acme/widgets"); /* installation 101 */
    add_repo("thing", "solo/thing");     /* GITHUB_TOKEN */
    start_worker();
    CHECK(rvt_wait_field(&conn, "widgets", "pr_sync_status", "idle", 30000));
    CHECK(rvt_wait_field(&conn, "thing", "pr_sync_status", "idle", 30000));
    int n = 0;
    json_t *inst = last_request("installation:101", NULL, &n);
    json_t *pat = last_request("pat", NULL, &n);
    CHECK(inst && pat);
    CHECK(json_is_true(json_object_get(inst, "queryMatches")));
    CHECK_INT(hget_int("rv:gh:budget:101", "remaining"),
              json_integer_value(json_object_get(inst, "budgetRemaining")));
    CHECK_INT(hget_int("rv:gh:budget:101", "limit"), 12500);
    CHECK_INT(hget_int("rv:gh:budget:pat", "remaining"),
              json_integer_value(json_object_get(pat, "budgetRemaining")));
    CHECK_INT(hget_int("rv:gh:budget:pat", "limit"), 5000);
    CHECK(hget_int("rv:gh:budget:pat", "resetAt") > rv_now_ms());
    CHECK(hget_int("rv:gh:budget:pat", "updatedAt") > rv_now_ms() - 60000);
    CHECK_INT(redis_int("SISMEMBER %s 101", RV_KEY_GH_TOKENS), 1);
    CHECK_INT(redis_int("SISMEMBER %s pat", RV_KEY_GH_TOKENS), 1);
    /* Kept a day after the last answer that told of it, not forever. */
    long long ttl = redis_int("PTTL rv:gh:budget:101");
    CHECK(ttl > RV_GHBUDGET_KEEP_MS - 120000 && ttl <= RV_GHBUDGET_KEEP_MS);
    json_decref(inst);
    json_decref(pat);
}

/* The hook sees GraphQL's rateLimit when the answer has no headers. */
struct seen_budget {
    int calls;
    struct rv_github_budget last;
};

static void remember_budget(void *ud, const struct rv_github_budget *b)
{
    struct seen_budget *s = ud;
    s->calls++;
    s->last = *b;
}

static void test_graphql_ratelimit_alone_is_read(void)
{
    CHECK_INT(control("{\"rateHeaders\":false}"), 0);
    struct seen_budget seen = {0};
    struct rv_prsync_hooks hooks = {.after_request = remember_budget,
                                    .ud = &seen};
    struct rv_prsync_opts opts = {.graphql_url = fake.url,
                                  .token = PAT,
                                  .owner_name = "solo/thing",
                                  .timeout_s = 5,
                                  .max_pages = 5,
                                  .hooks = &hooks};
    json_t *out = NULL;
    struct rv_sync_error err = {0};
    CHECK_INT(rv_prsync_run(&opts, &out, NULL, &err), RV_OK);
    json_decref(out);
    CHECK_INT(control("{\"rateHeaders\":true}"), 0);
    int n = 0;
    json_t *pat = last_request("pat", NULL, &n);
    CHECK(seen.calls >= 1);
    CHECK_INT(seen.last.status, 200);
    CHECK_INT(seen.last.limit, 5000);
    CHECK_INT(seen.last.cost, 1);
    CHECK_INT(seen.last.remaining,
              json_integer_value(json_object_get(pat, "budgetRemaining")));
    CHECK(seen.last.reset_ms > rv_now_ms());
    CHECK(!seen.last.secondary);
    json_decref(pat);
}

static void test_a_secondary_limit_holds_only_that_tokens_repos(void)
{
    CHECK_INT(control("{\"secondaryLimit\":{\"owner\":\"acme\","
                      "\"retryAfter\":120}}"),
              0);
    refresh_prs("widgets");
    CHECK(rvt_wait_field(&conn, "widgets", "pr_sync_status", "error", 20000));
    char buf[512];
    CHECK(rvt_contains(
        rvt_meta_field(&conn, "widgets", "pr_sync_error", buf, sizeof(buf)),
        "rate_limited"));
    long long pttl = redis_int("PTTL rv:gh:hold:101");
    CHECK(pttl > 100000 && pttl <= 120000);
    CHECK_INT(redis_int("EXISTS rv:gh:hold:pat"), 0);

    /* Held: a refresh of acme's repo sends nothing and fails at once. */
    int before = 0, after = 0;
    json_decref(last_request("installation:101", "acme", &before));
    refresh_prs("widgets");
    CHECK(rvt_wait_field(&conn, "widgets", "pr_sync_status", "error", 20000));
    /* The PAT's repo syncs meanwhile. */
    CHECK_INT(redis_int("HSET %s pr_sync_at 0", "rv:{thing}:meta"), 0);
    refresh_prs("thing");
    CHECK(rvt_wait_field(&conn, "thing", "pr_sync_status", "idle", 20000));
    CHECK(strcmp(rvt_meta_field(&conn, "thing", "pr_sync_at", buf, sizeof(buf)),
                 "0") != 0);
    json_decref(last_request("installation:101", "acme", &after));
    CHECK_INT(after, before);
    CHECK(rvt_contains(
        rvt_meta_field(&conn, "widgets", "pr_sync_error", buf, sizeof(buf)),
        "held after a secondary rate limit"));
    CHECK_INT(control("{\"secondaryLimit\":{\"owner\":\"acme\","
                      "\"off\":true}}"),
              0);
}

/* holdToken without retry-after: 60 s, then 120 s while they repeat; a
 * retry-after wins; a hold never shortens. */
static long long hold(const char *identity, int64_t now, int64_t retry_at)
{
    char k1[RV_KEY_MAX], k2[RV_KEY_MAX];
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_script_holdToken(&cmd,
                        &(struct rv_holdtoken_args){
                            .hold_key = rv_key_gh_hold(k1, identity),
                            .strikes_key = rv_key_gh_strikes(k2, identity),
                            .identity = identity,
                            .now_ms = now,
                            .retry_at_ms = retry_at,
                            .base_ms = 60000,
                            .cap_ms = 900000,
                            .retry_max_ms = RV_GHBUDGET_WINDOW_MAX_MS});
    redisReply *r = rv_rsync_run(&conn, &cmd);
    rv_cmd_free(&cmd);
    long long until = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2
                          ? r->element[1]->integer
                          : -1;
    if (r)
        freeReplyObject(r);
    return until;
}

static void test_repeated_secondary_limits_back_off_exponentially(void)
{
    int64_t now = rv_now_ms();
    CHECK_INT(hold("777", now, 0), now + 60000);
    CHECK_INT(hold("777", now, 0), now + 120000);
    CHECK_INT(hold("777", now, 0), now + 240000);
    /* GitHub's retry-after is shorter than the hold in place: kept. */
    long long until = hold("777", now, now + 5000);
    CHECK(until >= now + 239000);
    CHECK(redis_int("PTTL rv:gh:strikes:777") > 240000);
    CHECK_INT(redis_int("DEL rv:gh:hold:778"), 0);
    CHECK_INT(hold("778", now, now + 5000), now + 5000);
    /* A retry-after a year ahead is believed for GitHub's hour only. */
    CHECK_INT(redis_int("DEL rv:gh:hold:779"), 0);
    CHECK_INT(hold("779", now, now + 366LL * 24 * 3600 * 1000),
              now + RV_GHBUDGET_WINDOW_MAX_MS);
    CHECK(redis_int("PTTL rv:gh:hold:779") <= RV_GHBUDGET_WINDOW_MAX_MS);
    CHECK_INT(redis_int("SISMEMBER %s 778", RV_KEY_GH_TOKENS), 1);
    char log[600];
    snprintf(log, sizeof(log), "%s/worker.log", tmp);
    char *text = rvt_slurp(log);
    CHECK(rvt_contains(text, "GitHub secondary rate limit"));
    CHECK(!rvt_contains(text, PAT));
    free(text);
}

/* The most GraphQL requests the fake answered at once for label. */
static long long fake_max_in_flight(const char *label)
{
    json_t *doc = fake_get("/_inflight");
    long long n =
        json_integer_value(json_object_get(json_object_get(doc, "max"), label));
    json_decref(doc);
    return n;
}

static void test_never_more_concurrent_requests_per_token_than_allowed(void)
{
    if (worker > 0)
        rvt_stop_process(worker, 10000);
    worker = 0;
    CHECK_INT(control("{\"delayMs\":300,\"clearInFlight\":true}"), 0);
    char id[32], gh[64];
    for (int i = 0; i < 8; i++) {
        snprintf(gh, sizeof(gh), "solo/conc%d", i);
        CHECK_INT(control("{\"repo\":\"%s\",\"scenario\":\"mixed\"}", gh), 0);
        snprintf(id, sizeof(id), "conc%d", i);
        add_repo(id, gh);
    }
    pid_t pool[4];
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof(name), "pool%d", i);
        pool[i] = spawn(name, "2");
    }
    for (int i = 0; i < 8; i++) {
        snprintf(id, sizeof(id), "conc%d", i);
        CHECK(rvt_wait_field(&conn, id, "pr_sync_status", "idle", 60000));
    }
    /* 8 syncs on 4 workers did overlap, but never past 2 at GitHub. */
    CHECK_INT(fake_max_in_flight("pat"), 2);
    CHECK_INT(redis_int("ZCARD %s", "rv:gh:slots:pat") > 0 ? 1 : 0, 0);
    for (int i = 0; i < 4; i++)
        rvt_stop_process(pool[i], 10000);
    CHECK_INT(control("{\"delayMs\":0}"), 0);
}

static void test_a_slot_held_by_a_killed_worker_lapses(void)
{
    CHECK_INT(control("{\"delayMs\":2500,\"clearInFlight\":true}"), 0);
    pid_t a = spawn("victim", "1");
    refresh_prs("conc0");
    bool holding = false;
    for (int i = 0; i < 200 && !holding; i++) {
        holding = redis_int("ZCARD %s", "rv:gh:slots:pat") == 1;
        if (!holding)
            rvt_sleep_ms(25);
    }
    CHECK(holding);
    kill(a, SIGKILL);
    waitpid(a, NULL, 0);
    CHECK_INT(control("{\"delayMs\":0}"), 0);
    CHECK_INT(redis_int("ZCARD %s", "rv:gh:slots:pat"), 1);
    /* Another worker allowed one slot: the dead one's lapses (timeout +
     * 5 s) and the PAT's syncs go on. */
    pid_t b = spawn("survivor", "1");
    CHECK_INT(redis_int("HSET %s pr_sync_at 0", "rv:{conc1}:meta"), 0);
    refresh_prs("conc1");
    CHECK(rvt_wait_field(&conn, "conc1", "pr_sync_status", "idle", 40000));
    char buf[64];
    CHECK(strcmp(rvt_meta_field(&conn, "conc1", "pr_sync_at", buf, sizeof(buf)),
                 "0") != 0);
    CHECK(redis_int("ZCARD %s", "rv:gh:slots:pat") <= 0);
    rvt_stop_process(b, 10000);
}

static void test_metrics_show_each_tokens_budget_hold_and_slots(void)
{
    char log[600], zadd[128];
    struct rvt_api api;
    snprintf(log, sizeof(log), "%s/api.log", tmp);
    const char *env[] = {NULL};
    CHECK_INT(rvt_api_start(&api, 0, redis.url, log, "/readyz", env), 0);
    snprintf(zadd, sizeof(zadd), "%lld", (long long)rv_now_ms() + 60000);
    CHECK_INT(redis_int("ZADD rv:gh:slots:pat %s test:1", zadd), 1);
    CHECK_INT(redis_int("HSET rv:gh:budget:101 remaining %s", "4321"), 0);
    CHECK_INT(redis_int("SET rv:gh:hold:101 1 PX %s", "90000") == -1, 1);
    char want[160], *body = NULL;
    snprintf(want, sizeof(want),
             "repoview_github_ratelimit_remaining{token=\"101\"} 4321");
    bool seen = false;
    for (int i = 0; i < 150 && !seen; i++) {
        free(body);
        body = NULL;
        rvt_sh(&body, "curl -sf %s/metrics", api.base);
        seen = body && rvt_contains(body, want) &&
               rvt_contains(body, "repoview_github_requests_in_flight"
                                  "{token=\"pat\"} 1");
        if (!seen)
            rvt_sleep_ms(100);
    }
    CHECK(seen);
    CHECK(rvt_contains(body, "repoview_github_ratelimit_limit{token=\"101\"} "
                             "12500"));
    CHECK(rvt_contains(body, "repoview_github_ratelimit_limit{token=\"pat\"} "
                             "5000"));
    CHECK(rvt_contains(body, "repoview_github_held_seconds{token=\"101\"} 9"));
    CHECK(rvt_contains(body, "repoview_github_held_seconds{token=\"pat\"} 0"));
    CHECK(!rvt_contains(body, PAT));
    /* One HELP and TYPE per family. */
    const char *p = body ? strstr(body, "# TYPE repoview_github_ratelimit_"
                                        "remaining")
                         : NULL;
    CHECK(p && !strstr(p + 1, "# TYPE repoview_github_ratelimit_remaining"));
    free(body);
    CHECK_INT(redis_int("DEL rv:gh:slots:pat %s", "rv:gh:hold:101"), 2);
    rvt_api_stop(&api);
}

/* A spent budget holds its token until the reset, but a reset beyond
 * GitHub's hour is not believed: at most about an hour after it was told. */
static void test_a_spent_budget_holds_at_most_an_hour(void)
{
    int64_t now = rv_now_ms();
    struct rv_sync_error err = {0};
    redis_int("DEL rv:gh:budget:t-spent");
    redis_int("HSET rv:gh:budget:t-spent remaining 0 resetAt %lld "
              "updatedAt %lld",
              (long long)(now + 600000), (long long)now);
    CHECK_INT(rv_ghbudget_check(&conn, "t-spent", &err), RV_ERR_HTTP);
    CHECK_STR(rv_errname(err.code), "rate_limited");
    CHECK_INT(err.retry_at_ms, now + 600000);
    /* A year ahead, told just now: held for the hour only. */
    redis_int("HSET rv:gh:budget:t-spent resetAt %lld",
              (long long)(now + 366LL * 24 * 3600 * 1000));
    memset(&err, 0, sizeof(err));
    CHECK_INT(rv_ghbudget_check(&conn, "t-spent", &err), RV_ERR_HTTP);
    CHECK_INT(err.retry_at_ms, now + RV_GHBUDGET_WINDOW_MAX_MS);
    /* Told two hours ago: the token may try again. */
    redis_int("HSET rv:gh:budget:t-spent updatedAt %lld",
              (long long)(now - 2 * 3600 * 1000));
    memset(&err, 0, sizeof(err));
    CHECK_INT(rv_ghbudget_check(&conn, "t-spent", &err), RV_OK);
    redis_int("DEL rv:gh:budget:t-spent");
}

/* While Redis stalls, the API's 5 s samples of the token budgets do not
 * pile up: one sample's commands are awaited before the next is sent. */
static void test_a_stalled_redis_gets_one_budget_sample_at_a_time(void)
{
    if (worker > 0) {
        rvt_stop_process(worker, 10000);
        worker = 0;
    }
    char log[600];
    struct rvt_api api;
    snprintf(log, sizeof(log), "%s/api-stall.log", tmp);
    const char *env[] = {NULL};
    CHECK_INT(rvt_api_start(&api, 0, redis.url, log, "/readyz", env), 0);
    redis_int("DEL %s", RV_KEY_GH_TOKENS);
    redis_int("SADD %s t-one", RV_KEY_GH_TOKENS);
    rvt_sleep_ms(5500); /* one sample of t-one at least */
    redis_int("CONFIG RESETSTAT");
    redis_int("CLIENT PAUSE 16000 ALL");
    rvt_sleep_ms(16500);
    rvt_sleep_ms(300); /* the answers awaited arrive */
    long long zcounts = rvt_redis_calls(&conn, "zcount");
    /* Unguarded, three samples queue during the pause, each with its
     * ZCOUNT; guarded, the one sent first. */
    CHECK(zcounts >= 1 && zcounts <= 2);
    rvt_api_stop(&api);
}

int main(void)
{
    tmp = rvt_tmpdir("rvtest-budgets");
    if (tmp) {
        snprintf(key_path, sizeof(key_path), "%s/key.pem", tmp);
        snprintf(pub_path, sizeof(pub_path), "%s/pub.pem", tmp);
    }
    if (!tmp || rvt_redis_start(&redis, NULL) != 0 ||
        rvt_redis_connect(&redis, &conn) != 0 ||
        rvt_sh(NULL,
               "set -e; cd '%s'; umask 077;"
               "openssl genrsa -out key.pem 2048 2>/dev/null;"
               "openssl rsa -in key.pem -pubout -out pub.pem 2>/dev/null;"
               "git init -q -b main repo; cd repo;"
               "git -c user.name=T -c user.email=t@x commit -q "
               "--allow-empty -m one",
               tmp) != 0 ||
        rvt_fake_github_start(&fake, PAT) != 0) {
        fprintf(stderr, "cannot set up (redis, openssl, git or the fake)\n");
        return 1;
    }
    snprintf(rest, sizeof(rest), "http://127.0.0.1:%d", fake.port);
    CHECK_INT(control("{\"app\":{\"id\":\"%d\",\"publicKeyPath\":\"%s\","
                      "\"installations\":{\"acme\":101}}}",
                      APP_ID, pub_path),
              0);
    CHECK_INT(control("{\"repo\":\"acme/widgets\",\"scenario\":\"mixed\"}"), 0);
    CHECK_INT(control("{\"repo\":\"solo/thing\",\"scenario\":\"mixed\"}"), 0);
    RUN(test_each_token_has_its_own_budget_with_what_github_sent);
    RUN(test_graphql_ratelimit_alone_is_read);
    RUN(test_a_secondary_limit_holds_only_that_tokens_repos);
    RUN(test_repeated_secondary_limits_back_off_exponentially);
    RUN(test_never_more_concurrent_requests_per_token_than_allowed);
    RUN(test_a_slot_held_by_a_killed_worker_lapses);
    RUN(test_metrics_show_each_tokens_budget_hold_and_slots);
    RUN(test_a_spent_budget_holds_at_most_an_hour);
    RUN(test_a_stalled_redis_gets_one_budget_sample_at_a_time);
    if (worker > 0)
        rvt_stop_process(worker, 10000);
    rvt_fake_github_stop(&fake);
    return rvt_finish(&conn, &redis, tmp);
}

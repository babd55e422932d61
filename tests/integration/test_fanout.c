/*
 * Many processes on one Redis: 3 repoview-api and 4 repoview-worker, with
 * EventSource clients (tests/sse/record.mjs) spread over the three APIs.
 * Each client sees every event of its repos exactly once, in the same
 * order as every other client, and an API holds one subscription whatever
 * its number of streams. An API too slow to read its subscription passes
 * Redis's `client-output-buffer-limit pubsub` and is cut by Redis: it
 * resubscribes, its streams get fresh snapshots (and snapshot-needed), and
 * no state is lost.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/keys.h"
#include "common/registry.h"
#include "common/util.h"
#include "rvsse.h"
#include "rvtest.h"

#define APIS 3
#define WORKERS 4
#define REPOS 4
#define WATCH "?repo=g1&repo=g2&repo=g3&repo=g4"

static struct rvt_redis redis;
static struct rv_rsync conn;
static char *tmp;
static struct rvt_api apis[APIS];
static pid_t workers[WORKERS];
static pid_t recorders[2 * APIS];
static const char *const repos[REPOS] = {"g1", "g2", "g3", "g4"};

static void redis_do(const char *fmt, const char *arg)
{
    redisReply *r = rv_rsync_command(&conn, fmt, arg);
    if (r)
        freeReplyObject(r);
}

/* Subscribers of rv:events, from PUBSUB NUMSUB. */
static long long subscribers(void)
{
    redisReply *r =
        rv_rsync_command(&conn, "PUBSUB NUMSUB %s", RV_CHANNEL_EVENTS);
    long long n = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_INTEGER)
        n = r->element[1]->integer;
    if (r)
        freeReplyObject(r);
    return n;
}

static bool wait_subscribers(long long want, int timeout_ms)
{
    int64_t end = rv_mono_ms() + rvt_scale_ms(timeout_ms);
    while (rv_mono_ms() < end) {
        if (subscribers() == want)
            return true;
        rvt_sleep_ms(50);
    }
    fprintf(stderr, "wanted %lld subscribers, have %lld\n", want,
            subscribers());
    return false;
}

/* The repo's meta version, or -1. */
static long long version(const char *id)
{
    char buf[32];
    rvt_meta_field(&conn, id, "version", buf, sizeof(buf));
    return buf[0] ? strtoll(buf, NULL, 10) : -1;
}

/* Adds branch name to the source repo of id. */
static int add_branch(const char *id, const char *name)
{
    return rvt_sh(NULL,
                  "cd '%s/%s' && echo %s > %s.txt && git add . && "
                  "git commit -qm %s && git branch %s && git checkout -q main",
                  tmp, id, name, name, name, name);
}

static int refresh(int api, const char *id)
{
    return rvt_sh(NULL, "curl -sf -o /dev/null -X POST %s/v1/repos/%s/refresh",
                  apis[api].base, id);
}

/* The recorded events of one client for repo id, as "type:detail" lines
 * (status: its status; projection and snapshot: the version). */
static char *history(const char *client, const char *id)
{
    json_t *arr = rvt_sse_recorded(tmp, client);
    struct rvt_text t = {0};
    size_t i;
    json_t *ev;
    json_array_foreach(arr, i, ev)
    {
        const char *type = rvt_sse_type(ev);
        const char *repo = rvt_sse_repo(ev);
        if (!repo || strcmp(repo, id) != 0 || strcmp(type, "snapshot") == 0)
            continue;
        char line[128];
        const char *st = json_string_value(
            json_object_get(json_object_get(ev, "data"), "status"));
        if (strcmp(type, "status") == 0)
            snprintf(line, sizeof(line), "status:%s\n", st ? st : "?");
        else
            snprintf(line, sizeof(line), "%s:%lld\n", type,
                     rvt_sse_version(ev));
        rvt_text_adds(&t, line);
    }
    json_decref(arr);
    return t.s ? t.s : strdup("");
}

static void test_every_client_sees_every_event_of_its_repos_once(void)
{
    char name[32];
    for (int k = 0; k < APIS; k++) {
        snprintf(name, sizeof(name), "all%d", k);
        CHECK(rvt_sse_wait(tmp, name, "snapshot-needed", NULL, 1, 10000));
        snprintf(name, sizeof(name), "some%d", k);
        CHECK(rvt_sse_wait(tmp, name, "snapshot", NULL, REPOS, 10000));
    }
    /* One subscription per API, not per stream. */
    CHECK_INT(subscribers(), APIS);
    long long before[REPOS];
    for (int i = 0; i < REPOS; i++)
        before[i] = version(repos[i]);
    /* Two rounds: a new branch in every repo, refreshed through the APIs
     * in turn, picked up by whichever worker is free. */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < REPOS; i++) {
            snprintf(name, sizeof(name), "r%d", round);
            CHECK_INT(add_branch(repos[i], name), 0);
            CHECK_INT(refresh((i + round) % APIS, repos[i]), 0);
        }
        for (int i = 0; i < REPOS; i++) {
            int64_t end = rv_mono_ms() + rvt_scale_ms(30000);
            while (version(repos[i]) < before[i] + round + 1 &&
                   rv_mono_ms() < end)
                rvt_sleep_ms(50);
            CHECK_INT(version(repos[i]), before[i] + round + 1);
        }
    }
    for (int i = 0; i < REPOS; i++) {
        char *first = NULL;
        for (int k = 0; k < 2 * APIS; k++) {
            snprintf(name, sizeof(name), "%s%d", k < APIS ? "all" : "some",
                     k % APIS);
            /* The last event of a sync is its idle status. */
            CHECK(rvt_sse_wait(tmp, name, "projection", repos[i], 2, 10000));
            rvt_sleep_ms(200);
            char *h = history(name, repos[i]);
            char want[64];
            snprintf(want, sizeof(want), "projection:%lld\n", before[i] + 1);
            CHECK(rvt_contains(h, want));
            snprintf(want, sizeof(want), "projection:%lld\n", before[i] + 2);
            CHECK(rvt_contains(h, want));
            json_t *arr = rvt_sse_recorded(tmp, name);
            CHECK_INT(rvt_sse_count(arr, "projection", repos[i]), 2);
            json_decref(arr);
            if (!first) {
                first = h;
                continue;
            }
            /* Every client saw the same events of the repo, in order. */
            if (strcmp(first, h) != 0)
                fprintf(stderr, "%s on %s:\n%s\nvs\n%s\n", repos[i], name, h,
                        first);
            CHECK_STR(h, first);
            free(h);
        }
        free(first);
    }
    /* Still one subscription each. */
    CHECK_INT(subscribers(), APIS);
}

static void
test_an_api_cut_by_the_pubsub_limit_resubscribes_and_catches_up(void)
{
    /* Redis cuts a subscriber whose unsent output passes 256 KB. */
    redis_do("CONFIG SET client-output-buffer-limit %s",
             "pubsub 256kb 128kb 60");
    kill(apis[2].pid, SIGSTOP);
    /* While it sleeps, g1 changes for real... */
    long long v = version("g1");
    CHECK_INT(add_branch("g1", "while-away"), 0);
    CHECK_INT(refresh(0, "g1"), 0);
    int64_t end = rv_mono_ms() + rvt_scale_ms(30000);
    while (version("g1") <= v && rv_mono_ms() < end)
        rvt_sleep_ms(50);
    CHECK_INT(version("g1"), v + 1);
    /* ...and the channel floods: padding events of a repo nobody lists,
     * until Redis has cut the sleeping API (its socket buffers fill
     * first). */
    char pad[2048];
    int n = snprintf(pad, sizeof(pad),
                     "{\"type\":\"removed\","
                     "\"repo\":\"padding\",\"pad\":\"");
    memset(pad + n, 'x', sizeof(pad) - (size_t)n - 3);
    memcpy(pad + sizeof(pad) - 3, "\"}", 3);
    for (int i = 0; i < 40000 && subscribers() > APIS - 1; i++)
        redis_do("PUBLISH " RV_CHANNEL_EVENTS " %s", pad);
    CHECK_INT(subscribers(), APIS - 1);
    kill(apis[2].pid, SIGCONT);
    /* It finds the subscription gone, resubscribes... */
    CHECK(wait_subscribers(APIS, 15000));
    /* ...and its streams are brought up to date: the repo stream gets
     * g1's snapshot at the version it missed, the stream of every repo
     * is told to read the list again. */
    CHECK(rvt_sse_wait(tmp, "some2", "snapshot", "g1", 2, 15000));
    json_t *arr = rvt_sse_recorded(tmp, "some2");
    long long seen = 0;
    size_t i;
    json_t *ev;
    json_array_foreach(arr, i, ev)
    {
        const char *r = rvt_sse_repo(ev);
        if (r && strcmp(r, "g1") == 0 &&
            strcmp(rvt_sse_type(ev), "snapshot") == 0)
            seen = rvt_sse_version(ev);
    }
    json_decref(arr);
    CHECK_INT(seen, v + 1);
    CHECK(rvt_sse_wait(tmp, "all2", "snapshot-needed", NULL, 2, 15000));
    arr = rvt_sse_recorded(tmp, "all2");
    const json_t *last = NULL;
    json_array_foreach(arr, i,
                       ev) if (strcmp(rvt_sse_type(ev), "snapshot-needed") == 0)
        last = ev;
    CHECK_STR(json_string_value(
                  json_object_get(json_object_get(last, "data"), "reason")),
              "resubscribed");
    json_decref(arr);
    /* The other APIs were never cut: one hint each, from their connect. */
    for (int k = 0; k < 2; k++) {
        char name[16];
        snprintf(name, sizeof(name), "all%d", k);
        arr = rvt_sse_recorded(tmp, name);
        CHECK_INT(rvt_sse_count(arr, "snapshot-needed", NULL), 1);
        json_decref(arr);
    }
    /* And live events reach the resubscribed API's streams again. */
    CHECK_INT(add_branch("g2", "after"), 0);
    CHECK_INT(refresh(1, "g2"), 0);
    CHECK(rvt_sse_wait(tmp, "some2", "projection", "g2", 3, 30000));
}

int main(void)
{
    tmp = rvt_tmpdir("rv-fanout");
    if (!tmp || rvt_redis_start(&redis, NULL) != 0 ||
        rvt_redis_connect(&redis, &conn) != 0 ||
        rvt_sh(NULL, "node --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "cannot start redis, or no node\n");
        return 1;
    }
    for (int i = 0; i < REPOS; i++) {
        char path[600], err[256];
        snprintf(path, sizeof(path), "%s/%s", tmp, repos[i]);
        CHECK_INT(rvt_sh(NULL,
                         "set -e; git init -q -b main '%s'; cd '%s';"
                         "git config user.email t@example.com;"
                         "git config user.name Tester;"
                         "echo base > f; git add f; git commit -qm base",
                         path, path),
                  0);
        struct rv_repo_spec spec = {.id = repos[i], .url = path};
        CHECK_INT(rv_registry_add(&conn, &spec, err, sizeof(err)), RV_OK);
    }
    for (int k = 0; k < APIS; k++) {
        char log[600];
        snprintf(log, sizeof(log), "%s/api%d.log", tmp, k);
        CHECK_INT(rvt_api_start(&apis[k], 0, redis.url, log, "/readyz", NULL),
                  0);
    }
    const char *env[] = {rvt_allow_local_env(), NULL};
    for (int w = 0; w < WORKERS; w++) {
        char log[600], data[600];
        snprintf(log, sizeof(log), "%s/worker%d.log", tmp, w);
        snprintf(data, sizeof(data), "%s/data%d", tmp, w);
        workers[w] = rvt_spawn_worker(redis.url, data, log, env);
        CHECK(workers[w] > 0);
    }
    for (int i = 0; i < REPOS; i++)
        CHECK(rvt_wait_field(&conn, repos[i], "branch_sync_status", "idle",
                             rvt_scale_ms(30000)));
    for (int k = 0; k < APIS; k++) {
        char name[16];
        snprintf(name, sizeof(name), "all%d", k);
        recorders[k] = rvt_sse_record(tmp, apis[k].base, name, "/v1/events");
        snprintf(name, sizeof(name), "some%d", k);
        recorders[APIS + k] =
            rvt_sse_record(tmp, apis[k].base, name, "/v1/events" WATCH);
    }
    RUN(test_every_client_sees_every_event_of_its_repos_once);
    RUN(test_an_api_cut_by_the_pubsub_limit_resubscribes_and_catches_up);
    for (int k = 0; k < 2 * APIS; k++)
        rvt_stop_process(recorders[k], 5000);
    for (int w = 0; w < WORKERS; w++)
        CHECK_INT(rvt_stop_process(workers[w], 20000), 0);
    for (int k = 0; k < APIS; k++)
        CHECK_INT(rvt_api_stop(&apis[k]), 0);
    return rvt_finish(&conn, &redis, tmp);
}

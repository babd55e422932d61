/*
 * repoview-api's server-sent events, seen by Node's EventSource (the
 * `eventsource` package, as a browser would see them): this program drives
 * repoview (the registry, the worker's scripts, Redis itself) and
 * tests/sse/record.mjs records what each client receives.
 */
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/keys.h"
#include "common/registry.h"
#include "common/util.h"
#include "rvsse.h"
#include "rvtest.h"

static struct rvt_redis redis;
static struct rv_rsync conn;
static char *tmp;
static struct rvt_api api;

/* Starts repoview-api on api.port: a free one the first time, the same one
 * after, so that the EventSource clients find it again. Its small SSE
 * buffer lets a client that never reads be dropped quickly. */
static int spawn_api(void)
{
    static const char *const env[] = {"REPOVIEW_SSE_MAX_BUFFER=4096", NULL};
    char log[512];
    snprintf(log, sizeof(log), "%s/api.log", tmp);
    return rvt_api_start(&api, api.port, redis.url, log, "/readyz", env);
}

/* The recorder of path as <tmp>/<name>.jsonl, and what it has so far. */
static pid_t record(const char *name, const char *path)
{
    return rvt_sse_record(tmp, api.base, name, path);
}

static json_t *recorded(const char *name)
{
    return rvt_sse_recorded(tmp, name);
}

static bool wait_for(const char *name, const char *type, const char *repo,
                     int n, int timeout_ms)
{
    return rvt_sse_wait(tmp, name, type, repo, n, timeout_ms);
}

/* Plays a worker committing a one-branch fragment for repo and kind
 * (rvtest.h). Returns the version committed or -1. */
static long long fake_commit(const char *repo, rv_kind kind, const char *branch)
{
    char fragment[512];
    snprintf(fragment, sizeof(fragment),
             "\"counts\":{\"branches\":1,\"conflicting\":0,"
             "\"openPullRequests\":0},"
             "\"branches\":[{\"name\":\"%s\"}],\"pullRequests\":[]",
             branch);
    return rvt_fake_commit(&conn, "sse-worker", repo, kind, fragment,
                           "{\"branches\":{\"added\":[\"x\"],\"removed\":[],"
                           "\"updated\":[]}}");
}

static void add_repo(const char *id)
{
    char url[128], err[256];
    snprintf(url, sizeof(url), "https://example.com/%s.git", id);
    struct rv_repo_spec spec = {.id = id, .url = url};
    CHECK_INT(rv_registry_add(&conn, &spec, err, sizeof(err)), RV_OK);
}

static pid_t rec_one, rec_many;

static void test_snapshot_comes_first_then_status_and_projection_in_order(void)
{
    CHECK(wait_for("one", "snapshot", "alpha", 1, 10000));
    CHECK(wait_for("many", "snapshot", NULL, 3, 10000));
    CHECK_INT(fake_commit("alpha", RV_KIND_BRANCHES, "main"), 1);
    CHECK(wait_for("one", "status", "alpha", 2, 5000));
    json_t *arr = recorded("one");
    /* open, snapshot, status running, projection, status idle. */
    const char *want[] = {"open", "snapshot", "status", "projection", "status"};
    CHECK_INT(json_array_size(arr), 5);
    for (size_t i = 0; i < 5 && i < json_array_size(arr); i++)
        CHECK_STR(rvt_sse_type(json_array_get(arr, i)), want[i]);
    if (json_array_size(arr) >= 5) {
        const json_t *snap = json_array_get(arr, 1), *running = json_array_get(arr, 2);
        const json_t *proj = json_array_get(arr, 3), *idle = json_array_get(arr, 4);
        CHECK_INT(rvt_sse_version(snap), 0);
        CHECK(json_is_object(json_object_get(json_object_get(snap, "data"), "freshness")));
        CHECK_STR(json_string_value(json_object_get(json_object_get(running, "data"), "status")), "running");
        CHECK_STR(json_string_value(json_object_get(json_object_get(running, "data"), "kind")), "branches");
        CHECK_INT(rvt_sse_version(proj), 1);
        CHECK(json_is_object(json_object_get(json_object_get(proj, "data"), "changed")));
        CHECK_STR(json_string_value(json_object_get(json_object_get(idle, "data"), "status")), "idle");
        CHECK_STR(json_string_value(json_object_get(json_object_get(json_object_get(idle, "data"), "freshness"), "branchSyncStatus")), "idle");
        /* Every event has an id, and ids grow. */
        long long last = 0;
        for (size_t i = 1; i < 5; i++) {
            const char *id = json_string_value(json_object_get(json_array_get(arr, i), "id"));
            long long v = id ? strtoll(id, NULL, 10) : 0;
            CHECK(v > last);
            last = v;
        }
    }
    json_decref(arr);
}

static void test_one_connection_carries_events_of_three_repos(void)
{
    CHECK_INT(fake_commit("beta", RV_KIND_BRANCHES, "dev"), 1);
    CHECK(rvt_sh(NULL, "curl -sf -o /dev/null -X DELETE %s/v1/repos/gamma", api.base) == 0);
    CHECK(wait_for("many", "removed", "gamma", 1, 5000));
    CHECK(wait_for("many", "projection", "beta", 1, 5000));
    json_t *arr = recorded("many");
    /* The three snapshots come before any live event. */
    size_t i;
    const json_t *ev;
    int snapshots = 0;
    bool live_seen = false, snapshot_after_live = false;
    json_array_foreach(arr, i, ev) {
        const char *t = rvt_sse_type(ev);
        if (strcmp(t, "snapshot") == 0) {
            snapshots++;
            snapshot_after_live = snapshot_after_live || live_seen;
        } else if (strcmp(t, "open") != 0) {
            live_seen = true;
        }
    }
    CHECK_INT(snapshots, 3);
    CHECK(!snapshot_after_live);
    CHECK_INT(rvt_sse_count(arr, "projection", "alpha"), 1);
    CHECK_INT(rvt_sse_count(arr, "projection", "beta"), 1);
    CHECK_INT(rvt_sse_count(arr, "removed", "gamma"), 1);
    CHECK_INT(rvt_sse_count(arr, NULL, "other"), 0);
    json_decref(arr);
    /* The single-repo stream saw nothing of the others. */
    arr = recorded("one");
    CHECK_INT(rvt_sse_count(arr, NULL, "beta"), 0);
    CHECK_INT(rvt_sse_count(arr, NULL, "gamma"), 0);
    json_decref(arr);
    /* A stream naming a repo that is gone is refused (404) when it
     * reconnects; gamma comes back so that "many" can reconnect below. */
    add_repo("gamma");
}

static void test_reconnect_after_api_restart_gets_a_fresh_snapshot(void)
{
    CHECK_INT(rvt_api_stop(&api), 0);
    CHECK_INT(spawn_api(), 0);
    /* EventSource retries after `retry: 3000`. */
    CHECK(wait_for("one", "snapshot", "alpha", 2, 10000));
    json_t *arr = recorded("one");
    const json_t *last = json_array_get(arr, json_array_size(arr) - 1);
    CHECK_STR(rvt_sse_type(last), "snapshot");
    CHECK_INT(rvt_sse_version(last), 1);
    json_decref(arr);
}

static void test_redis_recovery_sends_every_stream_fresh_snapshots(void)
{
    CHECK(wait_for("many", "snapshot", NULL, 5, 10000)); /* after restart */
    json_t *arr = recorded("many");
    int before = rvt_sse_count(arr, "snapshot", NULL);
    json_decref(arr);
    rv_rsync_close(&conn);
    rvt_redis_kill(&redis);
    rvt_sleep_ms(300);
    CHECK_INT(rvt_redis_restart(&redis), 0);
    CHECK_INT(rvt_redis_connect(&redis, &conn), 0);
    CHECK(wait_for("many", "snapshot", NULL, before + 2, 10000));
    CHECK(wait_for("one", "snapshot", "alpha", 3, 10000));
    /* And live events flow again. */
    redisReply *r = rv_rsync_command(&conn, "PUBLISH %s %s", RV_CHANNEL_EVENTS,
                                     "{\"type\":\"removed\",\"repo\":\"alpha\"}");
    if (r)
        freeReplyObject(r);
    CHECK(wait_for("one", "removed", "alpha", 1, 5000));
}

/* Connects a client that asks for a stream and never reads. */
static int slow_client(const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)api.port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return -1;
    }
    return fd;
}

static long long metric(const char *name)
{
    return rvt_metric(api.base, name);
}

static void test_a_client_that_never_reads_is_dropped_others_go_on(void)
{
    int fd = slow_client("/v1/events?repo=flood");
    CHECK(fd >= 0);
    rvt_sleep_ms(300);
    long long clients = metric("repoview_sse_clients");
    CHECK(clients >= 3);
    char filler[4001];
    memset(filler, 'x', sizeof(filler) - 1);
    filler[sizeof(filler) - 1] = '\0';
    char *msg = malloc(sizeof(filler) + 256);
    snprintf(msg, sizeof(filler) + 256,
             "{\"type\":\"projection\",\"repo\":\"flood\",\"kind\":\"branches\","
             "\"meta\":{\"version\":\"1\"},\"changed\":{\"pad\":\"%s\"}}",
             filler);
    for (int i = 0; i < 3000 && metric("repoview_sse_dropped_total") < 1; i += 200) {
        for (int j = 0; j < 200; j++) {
            redisReply *r = rv_rsync_command(&conn, "PUBLISH %s %s", RV_CHANNEL_EVENTS, msg);
            if (r)
                freeReplyObject(r);
        }
        rvt_sleep_ms(50);
    }
    free(msg);
    CHECK(metric("repoview_sse_dropped_total") >= 1);
    CHECK_INT(metric("repoview_sse_clients"), clients - 1);
    /* The server closed it: reading drains to EOF. */
    bool eof = false;
    for (int i = 0; i < 200 && !eof; i++) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        char buf[65536];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        eof = n <= 0;
    }
    CHECK(eof);
    if (fd >= 0)
        close(fd);
    /* The readers still get events. */
    redisReply *r = rv_rsync_command(&conn, "PUBLISH %s %s", RV_CHANNEL_EVENTS,
                                     "{\"type\":\"removed\",\"repo\":\"beta\"}");
    if (r)
        freeReplyObject(r);
    CHECK(wait_for("many", "removed", "beta", 1, 5000));
}

int main(void)
{
    tmp = rvt_tmpdir("rv-sse");
    if (!tmp || rvt_redis_start(&redis, "--appendonly yes --appendfsync always") != 0 ||
        rvt_redis_connect(&redis, &conn) != 0) {
        fprintf(stderr, "cannot start redis\n");
        return 1;
    }
    if (rvt_sh(NULL, "node --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "node is required\n");
        return 1;
    }
    add_repo("alpha");
    add_repo("beta");
    add_repo("gamma");
    add_repo("other");
    add_repo("flood");
    CHECK_INT(spawn_api(), 0);
    rec_one = record("one", "/v1/repos/alpha/events");
    rec_many = record("many", "/v1/events?repo=alpha&repo=beta&repo=gamma");
    RUN(test_snapshot_comes_first_then_status_and_projection_in_order);
    RUN(test_one_connection_carries_events_of_three_repos);
    RUN(test_reconnect_after_api_restart_gets_a_fresh_snapshot);
    RUN(test_redis_recovery_sends_every_stream_fresh_snapshots);
    RUN(test_a_client_that_never_reads_is_dropped_others_go_on);
    rvt_stop_process(rec_one, 5000);
    rvt_stop_process(rec_many, 5000);
    CHECK_INT(rvt_api_stop(&api), 0);
    return rvt_finish(&conn, &redis, tmp);
}

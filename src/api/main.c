/*
 * repoview-api: the HTTP front. Reads projections from Redis, queues
 * refreshes, streams SSE, verifies webhooks, serves the dashboard. One
 * libevent loop on one thread does all of it.
 *
 * Redis down: every route that needs Redis answers 503 "unavailable" at
 * once (the API holds no copy it could serve instead), /readyz answers 503,
 * SSE streams stay open with pings; both connections reconnect with backoff
 * by themselves (common/rconn.c), the subscription is renewed, and every
 * stream then gets fresh snapshots.
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "api/api.h"
#include "common/errors.h"
#include "common/keys.h"
#include "common/log.h"

/* Bytes of overview fragments kept in memory. */
#define API_CACHE_BYTES (64u * 1024 * 1024)
/* The housekeeping timer's period and the multiples of it for its jobs. */
#define HOUSEKEEPING_MS 1000
#define PING_EVERY_TICKS 15
#define SAMPLE_EVERY_TICKS 5
/* Time given to streams to flush their last bytes at shutdown. */
#define SHUTDOWN_FLUSH_MS 300

#define RATELIMIT_KEY "rv:github:ratelimit"

struct main_state {
    struct api api;
    struct event *housekeeping;
    struct event *sigterm, *sigint;
    uint64_t ticks;
};

/* libevent's own messages, as our log lines: they are plain text on
 * stderr otherwise. At most one a second (with how many were left out),
 * as some can come once per connection. */
static void on_libevent_log(int severity, const char *msg)
{
    static int64_t last_ms;
    static uint64_t skipped;
    int64_t now = rv_mono_ms();
    if (last_ms && now - last_ms < 1000) {
        skipped++;
        return;
    }
    last_ms = now;
    rv_log_level level = severity >= EVENT_LOG_ERR    ? RV_LOG_ERROR
                         : severity >= EVENT_LOG_WARN ? RV_LOG_WARN
                         : severity >= EVENT_LOG_MSG  ? RV_LOG_INFO
                                                      : RV_LOG_DEBUG;
    LOGF(level, NULL, NULL,
         json_pack("{s:I}", "skipped", (json_int_t)skipped), "libevent: %s",
         msg);
    skipped = 0;
}

/* Many SSE clients need many descriptors: take all the hard limit allows. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        LOG(RV_LOG_WARN, NULL, NULL, "cannot raise the descriptor limit: %s",
            strerror(errno));
}

/* Every read allocates and frees buffers of the size of an overview (tens
 * of KiB, a 1,000-branch one a third of a MiB). glibc's defaults hand such
 * memory back to the kernel as soon as the top of the heap is free and take
 * it again on the next read: brk and page faults were a tenth of a read's
 * CPU. Keeping up to this much free memory in the heap avoids that. */
#define MALLOC_KEEP_BYTES (32 * 1024 * 1024)

static void tune_malloc(void)
{
    mallopt(M_TRIM_THRESHOLD, MALLOC_KEEP_BYTES);
    mallopt(M_TOP_PAD, 1024 * 1024);
    mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
}

static void on_queue_depth(struct rv_rasync *ra, redisReply *reply,
                           void *priv)
{
    (void)ra;
    struct api *api = priv;
    api->queue_depth = reply && reply->type == REDIS_REPLY_INTEGER
                           ? (int64_t)reply->integer
                           : -1;
}

static void on_org_count(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct api *api = priv;
    api->org_count = reply && reply->type == REDIS_REPLY_INTEGER
                         ? (int64_t)reply->integer
                         : -1;
}

static void on_ratelimit(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct api *api = priv;
    int64_t v;
    api->ratelimit_remaining =
        reply && reply->type == REDIS_REPLY_STRING &&
                rv_parse_i64(reply->str, 0, INT64_MAX, &v) == 0
            ? v
            : -1;
}

static void sample_redis(struct api *api)
{
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_cmd_add(&cmd, "LLEN");
    rv_cmd_add(&cmd, RV_KEY_QUEUE);
    if (rv_rasync_run(api->redis, &cmd, on_queue_depth, api) != RV_OK)
        api->queue_depth = -1;
    rv_cmd_init(&cmd);
    rv_cmd_add(&cmd, "SCARD");
    rv_cmd_add(&cmd, RV_KEY_ORGS);
    if (rv_rasync_run(api->redis, &cmd, on_org_count, api) != RV_OK)
        api->org_count = -1;
    rv_cmd_init(&cmd);
    rv_cmd_add(&cmd, "HGET");
    rv_cmd_add(&cmd, RATELIMIT_KEY);
    rv_cmd_add(&cmd, "remaining");
    if (rv_rasync_run(api->redis, &cmd, on_ratelimit, api) != RV_OK)
        api->ratelimit_remaining = -1;
    api_ghtokens_sample(api);
}

/* The loop's one housekeeping timer, every second. Its jobs:
 *   - every 15 s, `: ping` on every SSE stream (keeps proxies from closing
 *     idle streams and finds dead clients);
 *   - every tick, another try at SSE snapshots that failed while Redis was
 *     away;
 *   - every 5 s, sample LLEN rv:queue and the GitHub rate limit the workers
 *     store, for /metrics;
 *   - every tick, the counts of rate-limited connection log lines (refused
 *     at a cap, closed at a deadline) a flood left unwritten.
 * Redis reconnects are rconn.c's own timers. */
static void on_housekeeping(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct main_state *st = arg;
    st->ticks++;
    api_events_tick(st->api.events, st->ticks % PING_EVERY_TICKS == 0);
    api_conns_tick(&st->api);
    if (st->ticks % SAMPLE_EVERY_TICKS == 1)
        sample_redis(&st->api);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct main_state *st = arg;
    struct api *api = &st->api;
    if (api->stopping)
        return;
    api->stopping = true;
    LOG(RV_LOG_INFO, NULL, NULL, "stopping on signal %d", (int)sig);
    if (api->bound) {
        api_conns_unlisten(api);
        evhttp_del_accept_socket(api->http, api->bound);
        api->bound = NULL;
    }
    api_events_close_all(api->events);
    struct timeval tv = {0, SHUTDOWN_FLUSH_MS * 1000};
    event_base_loopexit(api->base, &tv);
}

/* The loop. With the change list, the epoll_ctl calls of one pass are
 * merged: a bufferevent that enables and disables writing around each
 * reply, and hiredis doing the same around each command, otherwise cost
 * two or more epoll_ctl per request (7% of a read's CPU, measured with
 * perf). Every descriptor here is a socket, never dup()ed, which is the
 * condition libevent sets for the change list. */
static struct event_base *new_event_base(void)
{
    struct event_config *ec = event_config_new();
    if (!ec)
        return NULL;
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *base = event_base_new_with_config(ec);
    event_config_free(ec);
    return base ? base : event_base_new();
}

/* Splits "host:port" ("[v6]:port" too) into host and port. */
static int split_listen(const char *listen, char *host, size_t hostlen,
                        int *port)
{
    const char *colon = strrchr(listen, ':');
    int64_t p;
    if (!colon || rv_parse_i64(colon + 1, 1, 65535, &p) != 0)
        return -1;
    const char *h = listen;
    size_t n = (size_t)(colon - listen);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n == 0 || n >= hostlen)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    *port = (int)p;
    return 0;
}

static int api_start(struct main_state *st)
{
    struct api *api = &st->api;
    char host[256];
    int port;
    if (split_listen(api->cfg->listen, host, sizeof(host), &port) != 0) {
        LOG(RV_LOG_ERROR, NULL, NULL, "cannot parse REPOVIEW_LISTEN %s",
            api->cfg->listen);
        return RV_ERR_CONFIG;
    }
    api->queue_depth = -1;
    api->org_count = -1;
    api->ratelimit_remaining = -1;
    if (!(api->base = new_event_base()) ||
        !(api->http = evhttp_new(api->base)) ||
        !(api->metrics = api_metrics_new()) ||
        !(api->cache = api_cache_new(API_CACHE_BYTES)) ||
        api_cors_init(api) != RV_OK || api_hosts_init(api) != RV_OK)
        return RV_ERR_NOMEM;
    /* conn.c sets each request's cap from its route; this one holds for a
     * connection it could not adopt. */
    evhttp_set_max_body_size(api->http, API_MAX_BODY);
    evhttp_set_max_headers_size(api->http, API_MAX_HEADERS);
    /* The read and write timeout of every connection (REPOVIEW_IO_TIMEOUT);
     * SSE streams keep only the write timeout (events.c). Every
     * connection's events share this one duration, so it is a libevent
     * "common timeout": a FIFO instead of the timer heap, where each
     * re-arm (several per request) was a heap update. */
    struct timeval io_tv = {(time_t)api->cfg->io_timeout, 0};
    const struct timeval *common =
        event_base_init_common_timeout(api->base, &io_tv);
    api->io_timeout = common ? *common : io_tv;
    evhttp_set_timeout_tv(api->http, &api->io_timeout);
    /* Every method reaches the dispatcher, which answers 405 itself. */
    evhttp_set_allowed_methods(
        api->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                       EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                       EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(api->http, api_dispatch, api);
    if (api_conns_init(api) != RV_OK || api_authfail_init(api) != RV_OK)
        return RV_ERR_NOMEM;
    api->bound = evhttp_bind_socket_with_handle(api->http, host,
                                                (ev_uint16_t)port);
    if (!api->bound) {
        LOG(RV_LOG_ERROR, NULL, NULL, "cannot listen on %s: %s",
            api->cfg->listen, strerror(errno));
        return RV_ERR_IO;
    }
    if (api_conns_listen(api) != RV_OK)
        return RV_ERR_IO;
    api->redis = rv_rasync_new(api->base, &api->redis_addr, NULL, NULL);
    api->events = api_events_new(api);
    st->housekeeping =
        event_new(api->base, -1, EV_PERSIST, on_housekeeping, st);
    st->sigterm = evsignal_new(api->base, SIGTERM, on_signal, st);
    st->sigint = evsignal_new(api->base, SIGINT, on_signal, st);
    if (!api->redis || !api->events || !st->housekeeping || !st->sigterm ||
        !st->sigint)
        return RV_ERR_NOMEM;
    struct timeval tick = {HOUSEKEEPING_MS / 1000,
                           (HOUSEKEEPING_MS % 1000) * 1000};
    event_add(st->housekeeping, &tick);
    event_add(st->sigterm, NULL);
    event_add(st->sigint, NULL);
    LOG(RV_LOG_INFO, NULL, NULL, "listening on %s", api->cfg->listen);
    return RV_OK;
}

/* Frees in dependency order: streams end first, then the command
 * connection (its pending callbacks answer their requests), then the
 * subscription, then HTTP (which closes every connection). */
static void api_stop(struct main_state *st)
{
    struct api *api = &st->api;
    api_overview_shutdown(api);
    if (api->events)
        api_events_close_all(api->events);
    if (api->redis)
        rv_rasync_free(api->redis);
    api->redis = NULL;
    api_events_free(api->events);
    api->events = NULL;
    if (api->http)
        evhttp_free(api->http);
    api_conns_free(api);
    api_authfail_free(api);
    api_cache_free(api->cache);
    api_metrics_free(api->metrics);
    api_cors_free(api);
    if (st->housekeeping)
        event_free(st->housekeeping);
    if (st->sigterm)
        event_free(st->sigterm);
    if (st->sigint)
        event_free(st->sigint);
    if (api->base)
        event_base_free(api->base);
}

int main(int argc, char **argv)
{
    struct rv_config cfg;
    struct main_state st;
    char err[512];
    int next = 0;
    memset(&st, 0, sizeof(st));
    rv_log_set_process("api");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: repoview-api [--flag value]...\n\n");
            rv_config_print_help(stdout);
            return 0;
        }
    }
    if (rv_config_load(&cfg, argc, argv, &next, err, sizeof(err)) != RV_OK) {
        fprintf(stderr, "repoview-api: %s\n", err);
        return 2;
    }
    if (next < argc) {
        fprintf(stderr, "repoview-api: unknown argument %s (see --help)\n",
                argv[next]);
        rv_config_free(&cfg);
        return 2;
    }
    rv_log_min_level = cfg.log_level;
    rv_config_register_secrets(&cfg);
    st.api.cfg = &cfg;
    if (rv_redis_parse_url(cfg.redis_url, &st.api.redis_addr, err,
                           sizeof(err)) != RV_OK) {
        fprintf(stderr, "repoview-api: %s\n", err);
        rv_config_free(&cfg);
        return 2;
    }
    if (rv_url_policy_load(&st.api.url_policy, &cfg, err, sizeof(err)) !=
        RV_OK) {
        fprintf(stderr, "repoview-api: %s\n", err);
        rv_config_free(&cfg);
        return 2;
    }
    if (api_access_init(&st.api, err, sizeof(err)) != RV_OK) {
        fprintf(stderr, "repoview-api: %s\n", err);
        rv_url_policy_free(&st.api.url_policy);
        rv_config_free(&cfg);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    event_set_log_callback(on_libevent_log);
    raise_fd_limit();
    tune_malloc();
    int rc = api_start(&st);
    if (rc == RV_OK) {
        event_base_dispatch(st.api.base);
        LOG(RV_LOG_INFO, NULL, NULL, "stopped");
    }
    api_stop(&st);
    memset(&st.api.redis_addr, 0, sizeof(st.api.redis_addr));
    rv_url_policy_free(&st.api.url_policy);
    api_access_free(&st.api);
    memset(&st.api.tokens, 0, sizeof(st.api.tokens));
    rv_config_free(&cfg);
    return rc == RV_OK ? 0 : 1;
}

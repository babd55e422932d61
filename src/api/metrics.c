/*
 * /metrics (Prometheus text format 0.0.4) and the counters behind it;
 * /healthz and /readyz are health.c's. Everything runs on the one event
 * loop thread, so the counters are plain integers.
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "common/log.h"

#define METRICS_MAX_ROUTES 32
#define METRICS_MAX_STATUSES 16

/* Upper bounds of the duration histogram, seconds. */
static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                 0.05,   0.1,   0.25,   0.5,   1,    2.5};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct route_metrics {
    const char *name; /* static storage: the route table's */
    struct {
        int status;
        uint64_t count;
    } statuses[METRICS_MAX_STATUSES];
    uint64_t bucket[NBUCKETS]; /* non-cumulative here; summed on output */
    uint64_t count;
    double sum_s;
};

struct api_metrics {
    struct route_metrics routes[METRICS_MAX_ROUTES];
    size_t nroutes;
    uint64_t sse_events;
    uint64_t sse_dropped;
    /* Overview and list bodies, by coding (enum api_encoding). */
    struct {
        uint64_t answers, bytes;           /* sent */
        uint64_t made, bytes_in, micros;   /* compressed */
    } coded[API_ENC_COUNT];
};

struct api_metrics *api_metrics_new(void)
{
    return calloc(1, sizeof(struct api_metrics));
}

void api_metrics_free(struct api_metrics *m)
{
    free(m);
}

static struct route_metrics *route_slot(struct api_metrics *m, const char *name)
{
    for (size_t i = 0; i < m->nroutes; i++)
        if (m->routes[i].name == name || strcmp(m->routes[i].name, name) == 0)
            return &m->routes[i];
    if (m->nroutes == METRICS_MAX_ROUTES)
        return NULL;
    m->routes[m->nroutes].name = name;
    return &m->routes[m->nroutes++];
}

void api_metrics_request(struct api_metrics *m, const char *route, int status,
                         int64_t micros)
{
    struct route_metrics *r = route_slot(m, route);
    if (!r)
        return;
    for (size_t i = 0; i < METRICS_MAX_STATUSES; i++) {
        if (r->statuses[i].status == status || r->statuses[i].status == 0) {
            r->statuses[i].status = status;
            r->statuses[i].count++;
            break;
        }
    }
    double s = (double)micros / 1e6;
    r->count++;
    r->sum_s += s;
    for (size_t i = 0; i < NBUCKETS; i++)
        if (s <= buckets[i]) {
            r->bucket[i]++;
            break;
        }
}

void api_metrics_sse_event(struct api_metrics *m, uint64_t n)
{
    m->sse_events += n;
}

void api_metrics_sse_dropped(struct api_metrics *m)
{
    m->sse_dropped++;
}

void api_metrics_coded(struct api_metrics *m, enum api_encoding e,
                       size_t bytes)
{
    m->coded[e].answers++;
    m->coded[e].bytes += bytes;
}

void api_metrics_compressed(struct api_metrics *m, enum api_encoding e,
                            size_t in, int64_t micros)
{
    m->coded[e].made++;
    m->coded[e].bytes_in += in;
    m->coded[e].micros += micros > 0 ? (uint64_t)micros : 0;
}

/* ---- the handler ---- */

static void family(struct evbuffer *b, const char *name, const char *type,
                   const char *help)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                        type);
}

/* One family of a single sample: its HELP, TYPE and value. */
static void sample(struct evbuffer *b, const char *name, const char *type,
                   const char *help, unsigned long long value)
{
    family(b, name, type, help);
    evbuffer_add_printf(b, "%s %llu\n", name, value);
}

void api_metrics_get(struct api_call *call)
{
    struct api *api = call->api;
    struct api_metrics *m = api->metrics;
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        api_reply_error(call, 500, "nomem", "out of memory");
        return;
    }
    family(b, "repoview_http_requests_total", "counter",
           "HTTP requests answered, by route and status.");
    for (size_t i = 0; i < m->nroutes; i++) {
        const struct route_metrics *r = &m->routes[i];
        for (size_t j = 0; j < METRICS_MAX_STATUSES && r->statuses[j].status;
             j++)
            evbuffer_add_printf(
                b,
                "repoview_http_requests_total{route=\"%s\",status=\"%d\"} "
                "%llu\n",
                r->name, r->statuses[j].status,
                (unsigned long long)r->statuses[j].count);
    }
    family(b, "repoview_http_request_duration_seconds", "histogram",
           "Time from a request's arrival to its answer, by route.");
    for (size_t i = 0; i < m->nroutes; i++) {
        const struct route_metrics *r = &m->routes[i];
        uint64_t cum = 0;
        for (size_t j = 0; j < NBUCKETS; j++) {
            cum += r->bucket[j];
            evbuffer_add_printf(b,
                                "repoview_http_request_duration_seconds_bucket"
                                "{route=\"%s\",le=\"%g\"} %llu\n",
                                r->name, buckets[j], (unsigned long long)cum);
        }
        evbuffer_add_printf(b,
                            "repoview_http_request_duration_seconds_bucket"
                            "{route=\"%s\",le=\"+Inf\"} %llu\n"
                            "repoview_http_request_duration_seconds_sum"
                            "{route=\"%s\"} %.6f\n"
                            "repoview_http_request_duration_seconds_count"
                            "{route=\"%s\"} %llu\n",
                            r->name, (unsigned long long)r->count, r->name,
                            r->sum_s, r->name, (unsigned long long)r->count);
    }
    sample(b, "repoview_http_connections", "gauge",
           "Open HTTP connections, counted from the accept, SSE included.",
           (unsigned long long)(api_conn_count(api)));
    struct api_conn_stats cs = api_conn_stats(api);
    sample(b, "repoview_http_refused_total", "counter",
           "Connections closed at the accept for a connection cap.",
           (unsigned long long)(cs.refused_at_accept));
    sample(b, "repoview_http_deadline_closed_total", "counter",
           "Connections closed at a request or keep-alive deadline.",
           (unsigned long long)(cs.closed_deadline));
    sample(b, "repoview_http_body_bytes", "gauge",
           "Bytes of requests held, counted against the body budget.",
           (unsigned long long)(api_conn_body_bytes(api)));
    sample(b, "repoview_http_body_refused_total", "counter",
           "Connections closed for the body budget.",
           (unsigned long long)(cs.refused_budget));
    sample(b, "repoview_http_auth_refused_total", "counter",
           "Requests refused after too many wrong credentials (429).",
           (unsigned long long)api_authfail_refused(api));
    sample(b, "repoview_http_accept_dropped_total", "counter",
           "Connections accepted and closed at once, out of descriptors.",
           (unsigned long long)(cs.dropped_no_fd));
    sample(b, "repoview_sse_clients", "gauge", "Open SSE streams.",
           (unsigned long long)(api_events_clients(api->events)));
    sample(b, "repoview_sse_events_total", "counter",
           "SSE events written to clients (snapshots included).",
           (unsigned long long)(m->sse_events));
    sample(b, "repoview_sse_dropped_total", "counter",
           "SSE clients dropped for not reading fast enough.",
           (unsigned long long)(m->sse_dropped));
    sample(b, "repoview_cache_hits_total", "counter",
           "Overview reads answered with a cached fragment.",
           (unsigned long long)(api_cache_hits(api->cache)));
    sample(b, "repoview_cache_misses_total", "counter",
           "Overview reads that fetched the fragment from Redis.",
           (unsigned long long)(api_cache_misses(api->cache)));
    sample(b, "repoview_cache_bytes", "gauge",
           "Bytes of cached overview fragments and heads.",
           (unsigned long long)(api_cache_bytes(api->cache)));
    static const struct {
        const char *name, *help;
        size_t field;
    } coded[] = {
        {"repoview_http_coded_answers_total",
         "Overview and list bodies sent, by content coding.", 0},
        {"repoview_http_coded_bytes_total",
         "Bytes of those bodies as sent, by content coding.", 1},
        {"repoview_http_compressions_total",
         "Bodies compressed (once per version and head for an overview).", 2},
        {"repoview_http_compressed_input_bytes_total",
         "Bytes fed to the compressor, by content coding.", 3},
        {"repoview_http_compress_seconds_total",
         "Time spent compressing, by content coding.", 4},
    };
    for (size_t f = 0; f < sizeof(coded) / sizeof(coded[0]); f++) {
        family(b, coded[f].name, "counter", coded[f].help);
        for (int e = f < 2 ? 0 : 1; e < API_ENC_COUNT; e++) {
            const uint64_t v[] = {m->coded[e].answers, m->coded[e].bytes,
                                  m->coded[e].made, m->coded[e].bytes_in,
                                  m->coded[e].micros};
            if (coded[f].field == 4)
                evbuffer_add_printf(b, "%s{encoding=\"%s\"} %.6f\n",
                                    coded[f].name, api_encoding_name(e),
                                    (double)v[4] / 1e6);
            else
                evbuffer_add_printf(b, "%s{encoding=\"%s\"} %llu\n",
                                    coded[f].name, api_encoding_name(e),
                                    (unsigned long long)v[coded[f].field]);
        }
    }
    family(b, "repoview_redis_connected", "gauge",
           "1 when the command connection to Redis is up.");
    evbuffer_add_printf(b, "repoview_redis_connected %d\n",
                        rv_rasync_connected(api->redis) ? 1 : 0);
    sample(b, "repoview_redis_reconnects_total", "counter",
           "Reconnections of the command connection to Redis.",
           (unsigned long long)(rv_rasync_reconnects(api->redis)));
    if (api->queue_depth >= 0) {
        family(b, "repoview_queue_depth", "gauge",
               "Jobs waiting in rv:queue (sampled every few seconds).");
        evbuffer_add_printf(b, "repoview_queue_depth %lld\n",
                            (long long)api->queue_depth);
    }
    if (api->org_count >= 0) {
        family(b, "repoview_orgs", "gauge",
               "Registered orgs (sampled with the queue depth).");
        evbuffer_add_printf(b, "repoview_orgs %lld\n",
                            (long long)api->org_count);
    }
    if (api->ratelimit_remaining >= 0 || api->gh_ntokens > 0)
        family(b, "repoview_github_ratelimit_remaining", "gauge",
               "GitHub API requests left, as the workers last saw it "
               "(unlabelled: the last answer, any token).");
    if (api->ratelimit_remaining >= 0)
        evbuffer_add_printf(b, "repoview_github_ratelimit_remaining %lld\n",
                            (long long)api->ratelimit_remaining);
    api_ghtokens_render(api, b);
    size_t n = evbuffer_get_length(b);
    api_reply_bytes(call, 200, "text/plain; version=0.0.4; charset=utf-8",
                    (const char *)evbuffer_pullup(b, -1), n);
    evbuffer_free(b);
}

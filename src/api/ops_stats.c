/*
 * GET /v1/stats?window=1h: the history the scripts that end a sync keep
 * per minute (rv:stats:<minute>, docs/redis.md), one point a minute of the
 * window, oldest first: syncs done and failed by kind, p50/p95 of their
 * durations (from the minute's histogram) and the queue depth (the
 * largest sampled that minute); and the GitHub budget of each token, as
 * the API samples it every 5 s (ghtokens.c). One HGETALL a minute,
 * pipelined: at most 1440 for the longest window, 60 for an hour.
 */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/ops_private.h"
#include "common/errors.h"
#include "common/keys.h"
#include "common/util.h"

#define WINDOW_MIN_S (5 * 60)
#define WINDOW_MAX_S (24 * 60 * 60)
#define WINDOW_DEFAULT_S (60 * 60)

static const int64_t bounds[RV_STATS_BUCKETS - 1] = RV_STATS_BOUNDS_MS;
static const char *const kinds[] = {"branches", "prs", "org"};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* "90m", "1h", "24h", "300s" or plain seconds; -1 when malformed. */
static int64_t parse_window(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 8)
        return -1;
    int64_t unit = 1;
    char digits[9];
    memcpy(digits, s, n + 1);
    char last = digits[n - 1];
    if (last == 's' || last == 'm' || last == 'h') {
        unit = last == 'h' ? 3600 : last == 'm' ? 60 : 1;
        digits[n - 1] = '\0';
    }
    int64_t v;
    if (rv_parse_i64(digits, 1, WINDOW_MAX_S, &v) != 0)
        return -1;
    return v * unit;
}

/* The upper bound (ms) of the bucket holding the p-th percentile of the
 * counts; the last bucket (longer than 60 s) answers its lower bound. */
static json_t *percentile(const int64_t *counts, int64_t total, double p)
{
    if (total <= 0)
        return json_null();
    int64_t rank = (int64_t)(p * (double)total + 0.999999);
    if (rank < 1)
        rank = 1;
    int64_t seen = 0;
    for (int i = 0; i < RV_STATS_BUCKETS; i++) {
        seen += counts[i];
        if (seen >= rank)
            return json_integer(i < RV_STATS_BUCKETS - 1
                                    ? bounds[i]
                                    : bounds[RV_STATS_BUCKETS - 2]);
    }
    return json_integer(bounds[RV_STATS_BUCKETS - 2]);
}

/* Fills one point from HGETALL of its minute. */
static void on_minute(struct ops_batch *b, const redisReply *reply, void *arg,
                      const char *tag)
{
    (void)tag;
    json_t *point = arg;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2) {
        ops_fail(b, RV_ERR_PROTOCOL);
        return;
    }
    json_t *done = json_object_get(point, "done");
    json_t *failed = json_object_get(point, "failed");
    int64_t counts[RV_STATS_BUCKETS] = {0}, total = 0;
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *f = reply->element[i], *v = reply->element[i + 1];
        int64_t n;
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            rv_parse_i64(v->str, 0, INT64_MAX, &n) != 0)
            continue; /* not ours: skipped, never trusted */
        if (strcmp(f->str, "queue") == 0) {
            ops_set(b, point, "queueDepth", json_integer(n));
            continue;
        }
        for (size_t k = 0; k < NKINDS; k++) {
            size_t kl = strlen(kinds[k]);
            if (strncmp(f->str, "done:", 5) == 0 &&
                strcmp(f->str + 5, kinds[k]) == 0)
                ops_set(b, done, kinds[k], json_integer(n));
            else if (strncmp(f->str, "failed:", 7) == 0 &&
                     strcmp(f->str + 7, kinds[k]) == 0)
                ops_set(b, failed, kinds[k], json_integer(n));
            else if (strncmp(f->str, "ms:", 3) == 0 &&
                     strncmp(f->str + 3, kinds[k], kl) == 0 &&
                     f->str[3 + kl] == ':') {
                int64_t bucket;
                /* Counts from Redis are not trusted to fit: a sum that
                 * would overflow leaves the sample out. */
                if (rv_parse_i64(f->str + 4 + kl, 0, RV_STATS_BUCKETS - 1,
                                 &bucket) == 0 &&
                    n <= INT64_MAX - total) {
                    counts[bucket] += n;
                    total += n;
                }
            }
        }
    }
    ops_set(b, point, "p50Ms", percentile(counts, total, 0.50));
    ops_set(b, point, "p95Ms", percentile(counts, total, 0.95));
}

/* The budgets the API last sampled from rv:gh:budget:* (ghtokens.c). */
static json_t *budgets(const struct api *api)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < api->gh_ntokens; i++) {
        const struct api_gh_token *t = &api->gh_tokens[i];
        json_t *o = json_pack(
            "{s:s,s:o,s:o,s:b}", "token", t->identity, "remaining",
            t->remaining >= 0 ? json_integer(t->remaining) : json_null(),
            "limit", t->limit >= 0 ? json_integer(t->limit) : json_null(),
            "held", t->held_ms > 0);
        if (!o || json_array_append_new(list, o) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

static void reply_stats(struct ops_batch *b)
{
    if (b->rc != RV_OK) {
        ops_reply_failed(b->call, b->rc);
        return;
    }
    ops_set(b, b->out, "githubBudget", budgets(b->call->api));
    if (b->rc != RV_OK) {
        ops_reply_failed(b->call, b->rc);
        return;
    }
    api_reply_json(b->call, 200, b->out);
    b->out = NULL;
}

void api_ops_stats(struct api_call *call)
{
    if (!ops_access_global(call))
        return;
    int64_t window = WINDOW_DEFAULT_S;
    char *w = api_query(call, "window");
    if (w) {
        window = parse_window(w);
        free(w);
        if (window < WINDOW_MIN_S || window > WINDOW_MAX_S) {
            api_reply_error(call, 400, "invalid",
                            "window must be from 5m to 24h (e.g. 15m, 1h, "
                            "24h)");
            return;
        }
    }
    int64_t minutes = window / 60;
    struct ops_batch *b = ops_batch_new(
        call,
        json_pack("{s:I,s:[]}", "windowSeconds", (json_int_t)window, "points"),
        reply_stats);
    if (!b)
        return;
    json_t *points = json_object_get(b->out, "points");
    int64_t last = b->now_ms / 60000;
    for (int64_t m = last - minutes + 1; m <= last && b->rc == RV_OK; m++) {
        char at[32], key[RV_KEY_MAX];
        rv_iso8601(m * 60000, at, sizeof(at));
        json_t *point =
            json_pack("{s:s,s:{},s:{},s:n,s:n,s:n}", "minute", at, "done",
                      "failed", "p50Ms", "p95Ms", "queueDepth");
        for (size_t k = 0; point && k < NKINDS; k++) {
            ops_set(b, json_object_get(point, "done"), kinds[k],
                    json_integer(0));
            ops_set(b, json_object_get(point, "failed"), kinds[k],
                    json_integer(0));
        }
        if (!point || json_array_append_new(points, point) != 0) {
            ops_fail(b, RV_ERR_NOMEM);
            break;
        }
        struct rv_cmd cmd;
        rv_cmd_init(&cmd);
        rv_cmd_add(&cmd, "HGETALL");
        rv_cmd_add(&cmd, rv_key_stats(key, (long long)m));
        ops_ask(b, &cmd, on_minute, point, NULL);
    }
    ops_release(b);
}

/* GitHub budgets per token identity for /metrics (docs/redis.md, "GitHub
 * budgets per token"). Every sample (the housekeeping timer, every 5 s)
 * reads SMEMBERS rv:gh:tokens, then per identity, at most
 * API_GH_TOKENS_MAX of them, HMGET of its budget, PTTL of its hold and
 * ZCOUNT of its live slots; each answer fills its entry when it arrives.
 * The set holds identities only (installation ids, "pat"), never tokens.
 * Async commands have no deadline: while a sample's answers are awaited
 * (Redis stalled, not gone) no new one is sent, so a stall cannot pile
 * up 1 + 3n commands every 5 s. Each callback runs exactly once, also on
 * disconnect, so the count always comes back to 0. */
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "common/cmd.h"
#include "common/errors.h"
#include "common/keys.h"
#include "common/util.h"

/* Identities become label values: only plain ones are taken. */
static bool identity_ok(const char *s, size_t n)
{
    if (n == 0 || n >= sizeof(((struct api_gh_token *)0)->identity))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

static int64_t reply_int(const redisReply *r)
{
    int64_t v;
    if (r && r->type == REDIS_REPLY_INTEGER)
        return (int64_t)r->integer;
    if (r && r->type == REDIS_REPLY_STRING &&
        rv_parse_i64(r->str, 0, INT64_MAX, &v) == 0)
        return v;
    return -1;
}

static void on_budget(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct api_gh_token *t = priv;
    bool ok = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2;
    t->remaining = ok ? reply_int(reply->element[0]) : -1;
    t->limit = ok ? reply_int(reply->element[1]) : -1;
    t->api->gh_pending--;
}

static void on_hold(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct api_gh_token *t = priv;
    t->held_ms = reply && reply->type == REDIS_REPLY_INTEGER
                     ? (int64_t)reply->integer
                     : -1;
    t->api->gh_pending--;
}

static void on_slots(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct api_gh_token *t = priv;
    t->in_flight = reply_int(reply);
    t->api->gh_pending--;
}

/* Sends one command for t; cb gets t (and counts the answer in). */
static void ask(struct api *api, struct api_gh_token *t, rv_rasync_reply_cb cb,
                const char *const *argv, size_t argc)
{
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    for (size_t i = 0; i < argc; i++)
        rv_cmd_add(&cmd, argv[i]);
    api->gh_pending++;
    if (rv_rasync_run(api->redis, &cmd, cb, t) != RV_OK)
        cb(NULL, NULL, t);
}

static void on_tokens(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct api *api = priv;
    api->gh_pending--;
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        return; /* keep the last sample; Redis is away */
    size_t n = 0;
    for (size_t i = 0; i < reply->elements && n < API_GH_TOKENS_MAX; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING || !identity_ok(e->str, e->len))
            continue;
        struct api_gh_token *t = &api->gh_tokens[n++];
        t->api = api;
        if (strcmp(t->identity, e->str) != 0) {
            rv_strlcpy(t->identity, e->str, sizeof(t->identity));
            t->remaining = t->limit = t->held_ms = t->in_flight = -1;
        }
        char budget[RV_KEY_MAX], hold[RV_KEY_MAX], slots[RV_KEY_MAX];
        char now[24];
        snprintf(now, sizeof(now), "%lld", (long long)rv_now_ms());
        const char *hm[] = {"HMGET", rv_key_gh_budget(budget, t->identity),
                            "remaining", "limit"};
        const char *pt[] = {"PTTL", rv_key_gh_hold(hold, t->identity)};
        const char *zc[] = {"ZCOUNT", rv_key_gh_slots(slots, t->identity), now,
                            "+inf"};
        ask(api, t, on_budget, hm, 4);
        ask(api, t, on_hold, pt, 2);
        ask(api, t, on_slots, zc, 4);
    }
    api->gh_ntokens = n;
}

void api_ghtokens_sample(struct api *api)
{
    if (api->gh_pending > 0)
        return; /* the last sample is still awaited */
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_cmd_add(&cmd, "SMEMBERS");
    rv_cmd_add(&cmd, RV_KEY_GH_TOKENS);
    api->gh_pending++;
    if (rv_rasync_run(api->redis, &cmd, on_tokens, api) != RV_OK) {
        api->gh_pending--;
        api->gh_ntokens = 0;
    }
}

/* One labelled line per token whose value is known (>= 0 after scale). */
static void lines(const struct api *api, struct evbuffer *b, const char *name,
                  int which)
{
    for (size_t i = 0; i < api->gh_ntokens; i++) {
        const struct api_gh_token *t = &api->gh_tokens[i];
        int64_t v = which == 0   ? t->remaining
                    : which == 1 ? t->limit
                    : which == 2
                        ? (t->held_ms > 0 ? (t->held_ms + 999) / 1000 : 0)
                        : t->in_flight;
        if (v >= 0)
            evbuffer_add_printf(b, "%s{token=\"%s\"} %lld\n", name, t->identity,
                                (long long)v);
    }
}

void api_ghtokens_render(const struct api *api, struct evbuffer *b)
{
    if (api->gh_ntokens == 0)
        return;
    /* The remaining family's header is metrics.c's (it shares it with the
     * unlabelled sample). */
    lines(api, b, "repoview_github_ratelimit_remaining", 0);
    evbuffer_add_printf(b, "# HELP repoview_github_ratelimit_limit GitHub "
                           "API budget per window, per token.\n"
                           "# TYPE repoview_github_ratelimit_limit gauge\n");
    lines(api, b, "repoview_github_ratelimit_limit", 1);
    evbuffer_add_printf(b, "# HELP repoview_github_held_seconds Seconds a "
                           "token's work is held after a secondary rate "
                           "limit.\n"
                           "# TYPE repoview_github_held_seconds gauge\n");
    lines(api, b, "repoview_github_held_seconds", 2);
    evbuffer_add_printf(b, "# HELP repoview_github_requests_in_flight GitHub "
                           "requests a token has in flight, all workers.\n"
                           "# TYPE repoview_github_requests_in_flight gauge\n");
    lines(api, b, "repoview_github_requests_in_flight", 3);
}

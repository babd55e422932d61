/*
 * POST /v1/webhooks/github. Answers 404 unless REPOVIEW_WEBHOOK_SECRET is
 * set. The signature is checked before anything else is looked at; then a
 * repeated X-GitHub-Delivery is dropped (SET NX, kept 3 days), the event is
 * routed (common/webhook.h) and a refresh of the matching kind is queued
 * for every repo whose `github` equals repository.full_name, ignoring case.
 *
 * Repos are matched by reading the `github` field of every registered repo
 * (one pipelined HGET each): fine for hundreds of repos; an index kept by
 * the registry scripts would make it one lookup.
 */
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "common/errors.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/registry.h"
#include "common/webhook.h"

/* How long a delivery id is remembered: GitHub redelivers for days. */
#define DELIVERY_TTL_S "259200"
#define DELIVERY_ID_MAX 128

struct hook {
    struct api_call *call;
    char full_name[RV_WEBHOOK_FULL_NAME_MAX];
    int kinds;              /* RV_WEBHOOK_* mask */
    size_t pending;
    int rc;                 /* first failure */
    json_t *queued;         /* [{"repo","kind","outcome"}] */
};

/* One command in flight for a repo. */
struct hook_step {
    struct hook *h;
    char id[RV_REPO_ID_MAX + 1];
    rv_kind kind;
};

static void hook_free(void *p)
{
    struct hook *h = p;
    json_decref(h->queued);
    free(h);
}

static void hook_done(struct hook *h)
{
    struct api_call *call = h->call;
    if (h->rc == RV_ERR_REDIS) {
        api_reply_unavailable(call);
        return;
    }
    if (h->rc != RV_OK) {
        api_reply_rv_error(call, h->rc, "cannot queue the refresh");
        return;
    }
    size_t n = json_array_size(h->queued);
    LOG(RV_LOG_INFO, NULL, NULL, "webhook for %s: %zu refresh(es)",
        h->full_name, n);
    json_t *body = n ? json_pack("{s:O}", "queued", h->queued)
                     : json_pack("{s:s,s:[]}", "ignored",
                                 "no registered repo has this github name",
                                 "queued");
    api_reply_json(call, 202, body);
}

static void on_refresh(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct hook_step *s = priv;
    struct hook *h = s->h;
    rv_refresh_outcome outcome;
    int rc = reply ? rv_registry_refresh_parse(reply, &outcome) : RV_ERR_REDIS;
    if (rc == RV_OK) {
        /* As in refresh.c: the status changed. */
        api_cache_announce(h->call->api->cache, s->id, -1);
        json_array_append_new(
            h->queued,
            json_pack("{s:s,s:s,s:s}", "repo", s->id, "kind",
                      rv_kind_name(s->kind), "outcome",
                      outcome == RV_REFRESH_QUEUED ? "queued" : "coalesced"));
    } else if (rc != RV_ERR_NOT_FOUND && rc != RV_ERR_NO_GITHUB &&
             h->rc == RV_OK)
        h->rc = rc;
    free(s);
    if (--h->pending == 0)
        hook_done(h);
}

static void queue_kind(struct hook *h, struct rv_rasync *ra, const char *id,
                       rv_kind kind)
{
    struct hook_step *s = calloc(1, sizeof(*s));
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    int rc = s ? rv_registry_refresh_cmd(&cmd, id, kind, RV_REASON_WEBHOOK,
                                         rv_now_ms())
               : RV_ERR_NOMEM;
    if (rc == RV_OK) {
        s->h = h;
        s->kind = kind;
        rv_strlcpy(s->id, id, sizeof(s->id));
        rc = rv_rasync_run(ra, &cmd, on_refresh, s);
    } else {
        rv_cmd_free(&cmd);
    }
    if (rc != RV_OK) {
        free(s);
        if (h->rc == RV_OK)
            h->rc = rc;
        return;
    }
    h->pending++;
}

static void on_github(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    struct hook_step *s = priv;
    struct hook *h = s->h;
    if (!reply) {
        if (h->rc == RV_OK)
            h->rc = RV_ERR_REDIS;
    } else if (reply->type == REDIS_REPLY_STRING &&
               strcasecmp(reply->str, h->full_name) == 0) {
        if (h->kinds & RV_WEBHOOK_BRANCHES)
            queue_kind(h, ra, s->id, RV_KIND_BRANCHES);
        if (h->kinds & RV_WEBHOOK_PRS)
            queue_kind(h, ra, s->id, RV_KIND_PRS);
    }
    free(s);
    if (--h->pending == 0)
        hook_done(h);
}

static void on_members(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    struct hook *h = priv;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        h->rc = reply ? RV_ERR_PROTOCOL : RV_ERR_REDIS;
        hook_done(h);
        return;
    }
    h->pending = 1; /* keeps h alive while the HGETs go out */
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING || !rv_repo_id_valid(e->str))
            continue;
        struct hook_step *s = calloc(1, sizeof(*s));
        if (!s) {
            h->rc = RV_ERR_NOMEM;
            break;
        }
        s->h = h;
        rv_strlcpy(s->id, e->str, sizeof(s->id));
        char meta[RV_KEY_MAX];
        struct rv_cmd cmd;
        rv_cmd_init(&cmd);
        rv_cmd_add(&cmd, "HGET");
        rv_cmd_add(&cmd, rv_key_meta(meta, e->str));
        rv_cmd_add(&cmd, "github");
        int rc = rv_rasync_run(ra, &cmd, on_github, s);
        if (rc != RV_OK) {
            free(s);
            h->rc = rc;
            break;
        }
        h->pending++;
    }
    if (--h->pending == 0)
        hook_done(h);
}

static void find_repos(struct hook *h)
{
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_cmd_add(&cmd, "SMEMBERS");
    rv_cmd_add(&cmd, RV_KEY_REPOS);
    int rc = rv_rasync_run(h->call->api->redis, &cmd, on_members, h);
    if (rc == RV_ERR_REDIS)
        api_reply_unavailable(h->call);
    else if (rc != RV_OK)
        api_reply_rv_error(h->call, rc, "cannot send the command");
}

static void on_delivery(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct hook *h = priv;
    if (!reply) {
        api_reply_unavailable(h->call);
        return;
    }
    if (reply->type == REDIS_REPLY_NIL) {
        api_reply_json(h->call, 202,
                       json_pack("{s:s,s:[]}", "ignored",
                                 "repeated delivery", "queued"));
        return;
    }
    find_repos(h);
}

static bool delivery_id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > DELIVERY_ID_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
              (*s >= 'A' && *s <= 'Z') || *s == '-' || *s == '_' ||
              *s == '.'))
            return false;
    return true;
}

void api_webhooks_github(struct api_call *call)
{
    struct api *api = call->api;
    const char *secret = api->cfg->webhook_secret;
    if (!secret || !*secret) {
        api_reply_error(call, 404, "not_found",
                        "webhooks are off (REPOVIEW_WEBHOOK_SECRET is unset)");
        return;
    }
    struct evkeyvalq *in = evhttp_request_get_input_headers(call->req);
    size_t len = 0;
    int rc = RV_OK;
    char *body = api_body(call, API_MAX_WEBHOOK_BODY, &len, &rc);
    if (!body) {
        api_reply_rv_error(call, rc, "the body is larger than %d bytes",
                           API_MAX_WEBHOOK_BODY);
        return;
    }
    if (!rv_webhook_signature_ok(secret, body, len,
                                 evhttp_find_header(in,
                                                    "X-Hub-Signature-256"))) {
        free(body);
        api_reply_error(call, 401, "unauthorized",
                        "X-Hub-Signature-256 is missing or wrong");
        return;
    }
    const char *event = evhttp_find_header(in, "X-GitHub-Event");
    struct hook *h = calloc(1, sizeof(*h));
    if (!h || !(h->queued = json_array())) {
        free(body);
        free(h);
        api_reply_rv_error(call, RV_ERR_NOMEM, "out of memory");
        return;
    }
    h->call = call;
    call->priv = h;
    call->priv_free = hook_free;
    rc = rv_webhook_route(event, body, len, h->full_name,
                          sizeof(h->full_name), &h->kinds);
    free(body);
    if (rc != RV_OK) {
        api_reply_rv_error(call, rc, "cannot route this delivery: %s",
                           event ? "bad payload" : "no X-GitHub-Event");
        return;
    }
    if (strcmp(event, "ping") == 0) {
        api_reply_json(call, 200, json_pack("{s:b}", "pong", 1));
        return;
    }
    if (!h->kinds) {
        api_reply_json(call, 202,
                       json_pack("{s:s,s:[]}", "ignored",
                                 "event not used", "queued"));
        return;
    }
    const char *delivery = evhttp_find_header(in, "X-GitHub-Delivery");
    if (!delivery) {
        find_repos(h);
        return;
    }
    if (!delivery_id_valid(delivery)) {
        api_reply_error(call, 400, "invalid", "malformed X-GitHub-Delivery");
        return;
    }
    char key[RV_KEY_MAX];
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_cmd_add(&cmd, "SET");
    rv_cmd_add(&cmd, rv_key_delivery(key, delivery));
    rv_cmd_add(&cmd, "1");
    rv_cmd_add(&cmd, "NX");
    rv_cmd_add(&cmd, "EX");
    rv_cmd_add(&cmd, DELIVERY_TTL_S);
    rc = rv_rasync_run(api->redis, &cmd, on_delivery, h);
    if (rc == RV_ERR_REDIS)
        api_reply_unavailable(call);
    else if (rc != RV_OK)
        api_reply_rv_error(call, rc, "cannot send the command");
}

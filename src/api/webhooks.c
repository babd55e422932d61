/*
 * POST /v1/webhooks/github. Answers 404 unless REPOVIEW_WEBHOOK_SECRET is
 * set. The signature is checked before anything else is looked at; then
 * X-GitHub-Delivery is required, the event is routed (common/webhook.h),
 * the repos whose `github` equals repository.full_name (ignoring case) are
 * found, and only when there are some is the delivery remembered (SET NX,
 * kept 3 days: a repeated one is dropped) and a refresh of the matching
 * kind queued for each. A delivery for no registered repo leaves nothing
 * in Redis, so unsigned-for repos cannot fill it with keys.
 *
 * installation, installation_repositories and some repository events
 * (common/webhook.h) ask for an org sync instead: their owners are looked
 * up in rv:orgs:owners, and the same delivery rule applies to the orgs
 * found (an owner of no org leaves nothing in Redis).
 *
 * Repos are found in one lookup (lua/findByGithub) of the index from
 * GitHub name to repo ids that the registry scripts keep (githubIndex),
 * whatever the number of repos.
 */
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "common/errors.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/org.h"
#include "common/registry.h"
#include "common/scripts.h"
#include "common/webhook.h"

/* How long a delivery id is remembered: GitHub redelivers for days. */
#define DELIVERY_TTL_S "259200"
#define DELIVERY_ID_MAX 128

struct hook {
    struct api_call *call;
    char full_name[RV_WEBHOOK_FULL_NAME_MAX];
    int kinds; /* RV_WEBHOOK_* mask */
    size_t pending;
    bool queuing;    /* matched and remembered: refreshes in flight */
    int rc;          /* first failure */
    json_t *matched; /* ids of the repos (orgs) it is for */
    bool is_org;     /* an org event: matched holds org ids */
    char owners[RV_WEBHOOK_OWNERS_MAX][RV_WEBHOOK_OWNER_SIZE];
    size_t nowners;
    json_t *queued; /* [{"repo","kind","outcome"}] */
    char delivery[DELIVERY_ID_MAX + 1];
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
    json_decref(h->matched);
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
        h->is_org ? h->owners[0] : h->full_name, n);
    json_t *body =
        n ? json_pack("{s:O}", "queued", h->queued)
          : json_pack("{s:s,s:[]}", "ignored",
                      h->is_org ? "no registered org has this owner"
                                : "no registered repo has this github "
                                  "name",
                      "queued");
    api_reply_json(call, 202, body);
}

static void remember_delivery(struct hook *h);

/* One reply of a step is in: the last one of the look-up remembers the
 * delivery, the last refresh answers. */
static void step_done(struct hook *h)
{
    if (--h->pending != 0)
        return;
    if (h->queuing || h->rc != RV_OK || json_array_size(h->matched) == 0)
        hook_done(h);
    else
        remember_delivery(h);
}

/* One refresh asked for: a repo's kind, or an org's sync. */
static void on_refresh(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct hook_step *s = priv;
    struct hook *h = s->h;
    bool org = s->kind == RV_KIND_ORG;
    rv_refresh_outcome outcome;
    int rc = reply ? rv_registry_refresh_parse(reply, &outcome) : RV_ERR_REDIS;
    if (rc == RV_OK) {
        /* As in refresh.c: the status changed. */
        if (!org)
            api_cache_announce(h->call->api->cache, s->id, -1);
        json_array_append_new(
            h->queued,
            json_pack("{s:s,s:s,s:s}", org ? "org" : "repo", s->id, "kind",
                      rv_kind_name(s->kind), "outcome",
                      outcome == RV_REFRESH_QUEUED ? "queued" : "coalesced"));
    } else if (rc != RV_ERR_NOT_FOUND && rc != RV_ERR_NO_GITHUB &&
               h->rc == RV_OK)
        h->rc = rc;
    free(s);
    step_done(h);
}

/* Asks for a refresh of id's kind (RV_KIND_ORG: the org's sync). */
static void queue_kind(struct hook *h, struct rv_rasync *ra, const char *id,
                       rv_kind kind)
{
    struct hook_step *s = calloc(1, sizeof(*s));
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    int rc = !s ? RV_ERR_NOMEM
             : kind == RV_KIND_ORG
                 ? rv_org_refresh_cmd(&cmd, id, RV_REASON_WEBHOOK)
                 : rv_registry_refresh_cmd(&cmd, id, kind, RV_REASON_WEBHOOK,
                                           rv_now_ms());
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

/* ---- org events ---- */

/* The HMGET of the owners: the orgs found, once each. */
static void on_owners(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct hook *h = priv;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        h->rc = reply ? RV_ERR_PROTOCOL : RV_ERR_REDIS;
        hook_done(h);
        return;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING || !rv_repo_id_valid(e->str))
            continue;
        bool seen = false;
        size_t j;
        json_t *id;
        json_array_foreach(h->matched, j, id)
        {
            seen = seen || strcmp(json_string_value(id), e->str) == 0;
        }
        if (!seen &&
            json_array_append_new(h->matched, json_string(e->str)) != 0) {
            h->rc = RV_ERR_NOMEM;
            break;
        }
    }
    h->pending = 1;
    step_done(h);
}

static void find_orgs(struct hook *h)
{
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_cmd_add(&cmd, "HMGET");
    rv_cmd_add(&cmd, RV_KEY_ORG_OWNERS);
    for (size_t i = 0; i < h->nowners; i++)
        rv_cmd_add(&cmd, h->owners[i]);
    api_send(h->call, &cmd, on_owners, h);
}

/* ---- repo events ---- */

/* findByGithub's answer: the repos of h->full_name. */
static void on_found(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct hook *h = priv;
    int rc = reply ? rv_script_reply_code(reply) : RV_ERR_REDIS;
    const redisReply *ids =
        rc == RV_OK && reply->elements >= 2 ? reply->element[1] : NULL;
    if (rc == RV_OK && (!ids || ids->type != REDIS_REPLY_ARRAY))
        rc = RV_ERR_PROTOCOL;
    for (size_t i = 0; rc == RV_OK && i < ids->elements; i++) {
        const redisReply *e = ids->element[i];
        if (e->type == REDIS_REPLY_STRING && rv_repo_id_valid(e->str) &&
            json_array_append_new(h->matched, json_string(e->str)) != 0)
            rc = RV_ERR_NOMEM;
    }
    h->rc = rc;
    h->pending = 1;
    step_done(h);
}

static void find_repos(struct hook *h)
{
    char key[RV_KEY_MAX];
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    if (!rv_key_ghname(key, h->full_name)) {
        h->pending = 1;
        step_done(h); /* no name that long is registered */
        return;
    }
    rv_script_findByGithub(&cmd, &(struct rv_findbygithub_args){
                                     .name_key = key, .github = h->full_name});
    api_send(h->call, &cmd, on_found, h);
}

static void on_delivery(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    struct hook *h = priv;
    if (!reply) {
        api_reply_unavailable(h->call);
        return;
    }
    if (reply->type == REDIS_REPLY_NIL) {
        api_reply_json(
            h->call, 202,
            json_pack("{s:s,s:[]}", "ignored", "repeated delivery", "queued"));
        return;
    }
    h->queuing = true;
    h->pending = 1; /* keeps h alive while the refreshes go out */
    size_t i;
    json_t *id;
    json_array_foreach(h->matched, i, id)
    {
        if (h->is_org)
            queue_kind(h, ra, json_string_value(id), RV_KIND_ORG);
        if (h->kinds & RV_WEBHOOK_BRANCHES)
            queue_kind(h, ra, json_string_value(id), RV_KIND_BRANCHES);
        if (h->kinds & RV_WEBHOOK_PRS)
            queue_kind(h, ra, json_string_value(id), RV_KIND_PRS);
    }
    step_done(h);
}

/* SET NX of the delivery id, once it matched a repo. */
static void remember_delivery(struct hook *h)
{
    char key[RV_KEY_MAX];
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_cmd_add(&cmd, "SET");
    rv_cmd_add(&cmd, rv_key_delivery(key, h->delivery));
    rv_cmd_add(&cmd, "1");
    rv_cmd_add(&cmd, "NX");
    rv_cmd_add(&cmd, "EX");
    rv_cmd_add(&cmd, DELIVERY_TTL_S);
    api_send(h->call, &cmd, on_delivery, h);
}

static bool delivery_id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > DELIVERY_ID_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
              (*s >= 'A' && *s <= 'Z') || *s == '-' || *s == '_' || *s == '.'))
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
    if (!rv_webhook_signature_ok(
            secret, body, len, evhttp_find_header(in, "X-Hub-Signature-256"))) {
        free(body);
        api_reply_error(call, 401, "unauthorized",
                        "X-Hub-Signature-256 is missing or wrong");
        return;
    }
    const char *delivery = evhttp_find_header(in, "X-GitHub-Delivery");
    if (!delivery || !delivery_id_valid(delivery)) {
        free(body);
        api_reply_error(call, 400, "invalid",
                        "X-GitHub-Delivery is missing or malformed");
        return;
    }
    const char *event = evhttp_find_header(in, "X-GitHub-Event");
    struct hook *h = calloc(1, sizeof(*h));
    if (!h || !(h->queued = json_array()) || !(h->matched = json_array())) {
        free(body);
        if (h)
            hook_free(h);
        api_reply_rv_error(call, RV_ERR_NOMEM, "out of memory");
        return;
    }
    h->call = call;
    rv_strlcpy(h->delivery, delivery, sizeof(h->delivery));
    call->priv = h;
    call->priv_free = hook_free;
    rc = rv_webhook_route(event, body, len, h->full_name, sizeof(h->full_name),
                          &h->kinds);
    if (rc == RV_OK && !h->kinds)
        rc = rv_webhook_org_owners(event, body, len, h->owners, &h->nowners);
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
    if (h->nowners) {
        h->is_org = true;
        find_orgs(h);
        return;
    }
    if (!h->kinds) {
        api_reply_json(
            call, 202,
            json_pack("{s:s,s:[]}", "ignored", "event not used", "queued"));
        return;
    }
    find_repos(h);
}

/*
 * The one subscription to rv:events (events.c has the streams), on a
 * connection of its own: each message is translated into the contract's
 * event, told to the fragment cache, and fanned out to every stream that
 * wants its repo. The subscription's state lives here too: when it comes
 * back after Redis was lost, every stream starts over from a snapshot.
 */
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/events_private.h"
#include "common/errors.h"
#include "common/freshness.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/org.h"
#include "common/registry.h"

/* ---- the subscription ---- */

/* Looks up meta fields of an event; "id" is the event's repo. */
struct event_meta {
    const json_t *meta;
    const char *repo;
};

static const char *event_field(void *ctx, const char *name)
{
    struct event_meta *m = ctx;
    if (strcmp(name, "id") == 0)
        return m->repo;
    return json_string_value(json_object_get(m->meta, name));
}

/* Sends one rendered event to every stream that wants repo; an org's
 * event (is_org) goes to the streams of every repo (not filtered to some)
 * whose principal may see the org's id. */
static void fan_out(struct api_events *ev, const char *repo, bool is_org,
                    struct evbuffer *text)
{
    size_t len = evbuffer_get_length(text);
    const unsigned char *data = evbuffer_pullup(text, -1);
    uint64_t written = 0;
    struct sse_client *next;
    char head[24];
    sse_chunk_head_for(head, len);
    for (struct sse_client *c = ev->head; c; c = next) {
        next = c->next;
        bool wants = is_org ? c->all && api_principal_sees(&c->who, repo)
                            : sse_client_wants(c, repo);
        if (c->closed || !wants)
            continue;
        if (c->state == SSE_SNAPSHOT) {
            evbuffer_add(c->backlog, data, len);
            if (c->started && evbuffer_get_length(c->backlog) >
                                  (size_t)ev->api->cfg->sse_max_buffer)
                sse_client_drop(c, "backlog passed REPOVIEW_SSE_MAX_BUFFER");
            continue;
        }
        written++;
        sse_client_write_chunk(c, head, data, len);
    }
    api_metrics_sse_event(ev->api->metrics, written);
}

/* An org's event (one that names "org", not "repo"): its status as the
 * SSE event `org` with the org's JSON, its removal as `org-removed` with
 * {"id"}; anything else about an org is not for streams. Nothing of an
 * org is cached. */
static void on_org_message(struct api_events *ev, const json_t *msg,
                           const char *type, const char *org_id)
{
    json_t *data = NULL;
    struct evbuffer *text = NULL;
    const char *sse_type = NULL;
    if (strcmp(type, "org-removed") == 0) {
        sse_type = "org-removed";
        data = json_pack("{s:s}", "id", org_id);
    } else if (strcmp(type, "status") == 0) {
        struct rv_org org;
        if (rv_org_from_event_meta(&org, org_id,
                                   json_object_get(msg, "meta")) != RV_OK) {
            LOG(RV_LOG_WARN, NULL, NULL,
                "ignoring a status event of org %s without usable meta",
                org_id);
            return;
        }
        sse_type = "org";
        data = rv_org_json(&org);
        rv_org_free(&org);
    } else {
        return;
    }
    if (data && ev->head && (text = evbuffer_new())) {
        sse_render_event(ev, text, sse_type, data);
        fan_out(ev, org_id, true, text);
    }
    if (text)
        evbuffer_free(text);
    json_decref(data);
}

/* Translates one message of rv:events (lua/includes/publish*.lua) into the
 * contract's event and fans it out. */
static void on_message(struct api_events *ev, const char *payload, size_t len)
{
    struct api *api = ev->api;
    json_t *msg = json_loadb(payload, len, 0, NULL);
    const char *type = json_string_value(json_object_get(msg, "type"));
    const char *repo_id = json_string_value(json_object_get(msg, "repo"));
    const char *org_id = json_string_value(json_object_get(msg, "org"));
    json_t *data = NULL;
    struct evbuffer *text = NULL;
    if (type && !repo_id && org_id && rv_repo_id_valid(org_id)) {
        on_org_message(ev, msg, type, org_id);
        goto out;
    }
    if (!type || !repo_id || !rv_repo_id_valid(repo_id)) {
        /* Something changed, and it cannot be told what: nothing cached
         * may be trusted to be current. */
        api_cache_clear(api->cache);
        LOG(RV_LOG_WARN, NULL, NULL, "ignoring a malformed event on %s",
            RV_CHANNEL_EVENTS);
        goto out;
    }
    /* Whatever the event is, its repo changed: every path below tells the
     * cache once, before the event reaches a stream. */
    if (strcmp(type, "removed") == 0) {
        api_cache_forget(api->cache, repo_id);
        data = json_pack("{s:s}", "repo", repo_id);
    } else if (strcmp(type, "status") == 0 ||
               strcmp(type, "projection") == 0) {
        struct event_meta m = {json_object_get(msg, "meta"), repo_id};
        struct rv_repo repo;
        if (!json_is_object(m.meta) ||
            rv_repo_from_fields(&repo, event_field, &m) != RV_OK) {
            api_cache_announce(api->cache, repo_id, -1);
            LOG(RV_LOG_WARN, repo_id, NULL, "ignoring a %s event without "
                "usable meta", type);
            goto out;
        }
        api_cache_announce(api->cache, repo_id, repo.version);
        if (type[0] == 's')
            data = json_pack("{s:s,s:O?,s:O?,s:I,s:o}", "repo", repo_id,
                             "kind", json_object_get(msg, "kind"), "status",
                             json_object_get(msg, "status"), "version",
                             (json_int_t)repo.version, "freshness",
                             rv_freshness_now(api->cfg, &repo));
        else
            data = json_pack("{s:s,s:I,s:o,s:O?}", "repo", repo_id,
                             "version", (json_int_t)repo.version,
                             "freshness", rv_freshness_now(api->cfg, &repo),
                             "changed", json_object_get(msg, "changed"));
        rv_repo_free(&repo);
    } else {
        /* A type this version does not know: its repo changed somehow. */
        api_cache_announce(api->cache, repo_id, -1);
        goto out;
    }
    if (!data || !ev->head || !(text = evbuffer_new()))
        goto out;
    sse_render_event(ev, text, type, data);
    fan_out(ev, repo_id, false, text);
out:
    if (text)
        evbuffer_free(text);
    json_decref(data);
    json_decref(msg);
}

/* The subscription is gone: announcements may be missed from here on. */
static void subscription_lost(struct api_events *ev)
{
    if (!ev->subscribed)
        return;
    ev->subscribed = false;
    api_cache_clear(ev->api->cache);
    if (!ev->api->stopping)
        LOG(RV_LOG_WARN, NULL, NULL, "lost the subscription to %s",
            RV_CHANNEL_EVENTS);
}

static void on_sub_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    struct api_events *ev = priv;
    redisReply *reply = r;
    if (!reply) {
        subscription_lost(ev);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    if (strcmp(kind, "message") == 0 &&
        reply->element[2]->type == REDIS_REPLY_STRING) {
        on_message(ev, reply->element[2]->str, reply->element[2]->len);
    } else if (strcmp(kind, "subscribe") == 0) {
        bool again = ev->next_id > 0 || ev->head;
        ev->subscribed = true;
        LOG(again ? RV_LOG_INFO : RV_LOG_DEBUG, NULL, NULL,
            "subscribed to %s", RV_CHANNEL_EVENTS);
        /* Events may have been missed while unsubscribed: every stream
         * starts over from a snapshot. */
        struct sse_client *next;
        for (struct sse_client *c = ev->head; c; c = next) {
            next = c->next;
            if (!c->closed && c->started)
                sse_snapshot_start(c);
        }
    }
}

static void on_sub_state(struct rv_rasync *ra, bool connected, void *priv)
{
    struct api_events *ev = priv;
    if (!connected) {
        subscription_lost(ev);
        return;
    }
    redisAsyncContext *ac = rv_rasync_context(ra);
    if (!ac || redisAsyncCommand(ac, on_sub_reply, ev, "SUBSCRIBE %s",
                                 RV_CHANNEL_EVENTS) != REDIS_OK)
        LOG(RV_LOG_ERROR, NULL, NULL, "cannot send SUBSCRIBE %s",
            RV_CHANNEL_EVENTS);
}

struct api_events *api_events_new(struct api *api)
{
    struct api_events *ev = calloc(1, sizeof(*ev));
    if (!ev)
        return NULL;
    ev->api = api;
    ev->sub = rv_rasync_new(api->base, &api->redis_addr, on_sub_state, ev);
    if (!ev->sub) {
        free(ev);
        return NULL;
    }
    return ev;
}

bool api_events_subscribed(const struct api_events *ev)
{
    return ev && ev->subscribed;
}

void api_events_free(struct api_events *ev)
{
    if (!ev)
        return;
    api_events_close_all(ev);
    rv_rasync_free(ev->sub);
    ev->sub = NULL;
    free(ev);
}

/*
 * The snapshots of server-sent events (events.c has the streams): what a
 * stream is sent first, per repo, from the fragment cache when it can be
 * trusted or else with one HGETALL each. GET /v1/events without repo=
 * reads nothing and sends one snapshot-needed hint instead, on connect and
 * after every resubscribe: the client reads the paged list. A snapshot that
 * fails before the stream starts answers the request with an error; after it,
 * housekeeping tries again.
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/events_private.h"
#include "common/errors.h"
#include "common/freshness.h"
#include "common/keys.h"
#include "common/registry.h"

/* One snapshot being read for a stream. */
struct snapshot {
    struct sse_client *c;
    unsigned gen;
    size_t n;
    size_t pending; /* commands in flight */
    int rc;         /* first failure */
    char (*ids)[RV_REPO_ID_MAX + 1];
    json_t **data; /* [n]: snapshot data, NULL if absent */
};

struct snapshot_get {
    struct snapshot *s;
    size_t index;
};

/* ---- snapshots ---- */

static void snapshot_free(struct snapshot *s)
{
    for (size_t i = 0; i < s->n; i++)
        json_decref(s->data[i]);
    free(s->data);
    free(s->ids);
    free(s);
}

/* Before a stream starts, a repo= that names no repo is refused (404)
 * rather than watched: the client learns of its typo, and an EventSource
 * does not reconnect to a 404 again and again. True when it answered. */
static bool snapshot_refuse_unknown(struct snapshot *s)
{
    struct sse_client *c = s->c;
    char names[256] = "";
    size_t missing = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->data[i])
            continue;
        size_t used = strlen(names);
        if (missing++ < 3)
            snprintf(names + used, sizeof(names) - used, "%s\"%s\"",
                     used ? ", " : "", s->ids[i]);
    }
    if (!missing)
        return false;
    c->closed = true;
    sse_client_unlink(c);
    api_reply_error(c->call, 404, "not_found", "no repo %s%s", names,
                    missing > 3 ? " and more" : "");
    c->call = NULL;
    c->req = NULL;
    return true;
}

/* Every read of a snapshot answered: write it (first starting the stream),
 * then the backlog. c->pending still counts s until the end, so a drop
 * while writing cannot free c under our feet. */
static void snapshot_done(struct snapshot *s)
{
    struct sse_client *c = s->c;
    struct api_events *ev = c->ev;
    struct evbuffer *b = NULL;
    uint64_t written = 0;
    if (c->closed || s->gen != c->gen)
        goto out;
    if (s->rc != RV_OK) {
        if (!c->started) {
            /* Nothing was sent yet: a plain error answer ends it. */
            c->closed = true;
            sse_client_unlink(c);
            if (s->rc == RV_ERR_REDIS)
                api_reply_unavailable(c->call);
            else
                api_reply_rv_error(c->call, s->rc, "cannot read snapshots");
            c->call = NULL;
            c->req = NULL;
        } else {
            /* A started stream keeps its backlog; housekeeping reads the
             * snapshot again once Redis answers. */
            c->needs_snapshot = true;
        }
        goto out;
    }
    if (!c->started && !c->all && snapshot_refuse_unknown(s))
        goto out;
    bool first = !c->started;
    if (first)
        sse_client_start(c);
    if (c->closed || !(b = evbuffer_new()))
        goto out;
    for (size_t i = 0; i < s->n; i++) {
        if (!s->data[i])
            continue;
        sse_render_event(ev, b, "snapshot", s->data[i]);
        written++;
    }
    if (c->all) {
        json_t *hint =
            json_pack("{s:s}", "reason", first ? "connected" : "resubscribed");
        if (hint) {
            sse_render_event(ev, b, "snapshot-needed", hint);
            json_decref(hint);
            written++;
        }
    }
    evbuffer_add_buffer(b, c->backlog);
    c->state = SSE_LIVE;
    api_metrics_sse_event(ev->api->metrics, written);
    size_t len = evbuffer_get_length(b);
    if (len)
        sse_client_write(c, evbuffer_pullup(b, -1), len);
out:
    if (b)
        evbuffer_free(b);
    snapshot_free(s);
    c->pending--;
    sse_client_release(c);
}

static json_t *snapshot_data(struct api *api, const struct rv_repo *repo)
{
    return json_pack("{s:s,s:I,s:o}", "repo", repo->id, "version",
                     (json_int_t)repo->version, "freshness",
                     rv_freshness_now(api->cfg, repo));
}

static void on_snapshot_get(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct snapshot_get *g = priv;
    struct snapshot *s = g->s;
    if (!reply) {
        s->rc = RV_ERR_REDIS;
    } else {
        struct rv_repo repo;
        int rc = rv_repo_from_hash(reply, &repo);
        if (rc == RV_OK) {
            s->data[g->index] = snapshot_data(s->c->ev->api, &repo);
            rv_repo_free(&repo);
        } else if (rc != RV_ERR_NOT_FOUND && s->rc == RV_OK) {
            s->rc = rc;
        }
    }
    free(g);
    if (--s->pending == 0)
        snapshot_done(s);
}

/* The snapshot of repo from the overview head the cache holds, or NULL
 * (not cached, or the cache cannot be trusted now). */
static json_t *cached_snapshot(struct api *api, const char *repo)
{
    if (!api_events_subscribed(api->events) || !rv_rasync_connected(api->redis))
        return NULL;
    struct api_blob *fragment = NULL;
    const struct api_head *h = api_cache_head(api->cache, repo, &fragment);
    if (!h)
        return NULL;
    const struct api_blob *b = h->snapshot[rv_now_ms() >= h->stale_from_ms];
    if (!b)
        return NULL;
    return json_loadb(api_blob_data(b), api_blob_len(b), 0, NULL);
}

/* Takes each snapshot of s (s->ids/s->n set) from the cache, or else with
 * one HGETALL. */
static void snapshot_read(struct snapshot *s)
{
    struct api *api = s->c->ev->api;
    struct rv_rasync *ra = api->redis;
    s->data = calloc(s->n + 1, sizeof(*s->data));
    if (!s->data) {
        s->rc = RV_ERR_NOMEM;
        snapshot_done(s);
        return;
    }
    s->pending = 1; /* keeps s alive while the commands go out */
    for (size_t i = 0; i < s->n; i++) {
        if ((s->data[i] = cached_snapshot(api, s->ids[i])))
            continue;
        struct snapshot_get *g = malloc(sizeof(*g));
        struct rv_cmd cmd;
        rv_cmd_init(&cmd);
        rv_registry_get_cmd(&cmd, s->ids[i]);
        int rc = g ? RV_OK : RV_ERR_NOMEM;
        if (g) {
            g->s = s;
            g->index = i;
            rc = rv_rasync_run(ra, &cmd, on_snapshot_get, g);
        } else {
            rv_cmd_free(&cmd);
        }
        if (rc != RV_OK) {
            free(g);
            s->rc = rc;
            break;
        }
        s->pending++;
    }
    if (--s->pending == 0)
        snapshot_done(s);
}

/* (Re)reads the snapshots of c; live events wait in the backlog. */
void sse_snapshot_start(struct sse_client *c)
{
    struct snapshot *s = calloc(1, sizeof(*s));
    c->state = SSE_SNAPSHOT;
    c->needs_snapshot = false;
    c->gen++;
    if (!s) {
        c->needs_snapshot = c->started;
        return;
    }
    s->c = c;
    s->gen = c->gen;
    c->pending++;
    if (!c->all) {
        s->ids = calloc(c->nrepos, sizeof(*s->ids));
        if (!s->ids) {
            s->rc = RV_ERR_NOMEM;
            snapshot_done(s);
            return;
        }
        memcpy(s->ids, c->repos, c->nrepos * sizeof(*s->ids));
        s->n = c->nrepos;
        snapshot_read(s);
        return;
    }
    /* A stream of every repo reads nothing: with 10,000 repos a snapshot
     * each, on every connect and on every resubscribe of every API, would
     * be a storm. Its one snapshot-needed hint tells the client to read
     * the (paged) list instead. */
    snapshot_done(s);
}

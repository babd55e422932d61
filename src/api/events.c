/*
 * Server-sent events: GET /v1/repos/{id}/events and GET /v1/events.
 *
 * The process holds one subscription to rv:events on a connection of its
 * own and fans each message out to every stream that wants the repo. A
 * stream starts with `retry:`, then one `snapshot` per repo read from
 * Redis, then live events. Live events that arrive while a snapshot is
 * being read are held in the stream's backlog and written after it, so a
 * client never sees a live event before its snapshot. When the
 * subscription comes back after Redis was lost, every stream gets fresh
 * snapshots, since events may have been missed meanwhile.
 *
 * Lifetime of a stream (struct sse_client): it is freed when it is closed
 * AND no Redis callback points at it any more (`pending`). It is closed
 * when its connection goes (evhttp's close callback, via http.c), when it
 * is dropped for not reading (its unsent output passed
 * REPOVIEW_SSE_MAX_BUFFER), or at shutdown.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "api/api.h"
#include "common/errors.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/registry.h"

#define SSE_RETRY_MS 3000
/* The kernel send buffer of a stream (Linux doubles it for overhead). */
#define SSE_SOCKET_SNDBUF (64 * 1024)

/* Where a stream is. */
enum sse_state {
    SSE_SNAPSHOT, /* reading snapshots; live events go to the backlog */
    SSE_LIVE,     /* live events are written as they come */
};

struct sse_client {
    struct api_events *ev;
    struct api_call *call;         /* until the stream starts, else NULL */
    struct evhttp_request *req;    /* NULL once closed */
    struct evhttp_connection *evcon;
    struct sse_client *prev, *next;
    bool all;                      /* every repo the principal sees */
    struct api_principal who;      /* whose stream it is */
    char (*repos)[RV_REPO_ID_MAX + 1];
    size_t nrepos;
    enum sse_state state;
    bool started;                  /* headers and retry: were sent */
    bool chunked;                  /* the body is chunked (HTTP/1.1) */
    bool closed;
    unsigned gen;                  /* of the snapshot being read */
    int pending;                   /* snapshots in flight pointing here */
    bool needs_snapshot;           /* the last one failed; retry */
    struct evbuffer *backlog;
};

struct api_events {
    struct api *api;
    struct rv_rasync *sub;         /* SUBSCRIBE only */
    bool subscribed;
    struct sse_client *head;
    size_t nclients;               /* streams started and not closed */
    uint64_t next_id;              /* the `id:` of the next event */
};

/* One snapshot being read for a stream. */
struct snapshot {
    struct sse_client *c;
    unsigned gen;
    size_t n;
    size_t pending;                /* commands in flight */
    int rc;                        /* first failure */
    char (*ids)[RV_REPO_ID_MAX + 1];
    json_t **data;                 /* [n]: snapshot data, NULL if absent */
};

struct snapshot_get {
    struct snapshot *s;
    size_t index;
};

static void snapshot_start(struct sse_client *c);

/* ---- clients ---- */

static void client_free(struct sse_client *c)
{
    if (c->backlog)
        evbuffer_free(c->backlog);
    free(c->repos);
    free(c);
}

static void client_unlink(struct sse_client *c)
{
    struct api_events *ev = c->ev;
    if (c->prev)
        c->prev->next = c->next;
    else if (ev->head == c)
        ev->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    if (c->started)
        ev->nclients--;
}

/* Frees c if it is closed and nothing refers to it any more. */
static void client_release(struct sse_client *c)
{
    if (c->closed && c->pending == 0)
        client_free(c);
}

/* http.c calls this from evhttp's close callback: the connection is being
 * freed. If the client went away, evhttp detached our request from the
 * connection and left it to us; if we freed the connection (a drop, or
 * shutdown), evhttp frees the request itself. */
static void client_on_close(void *arg)
{
    struct sse_client *c = arg;
    if (c->closed)
        return;
    c->closed = true;
    client_unlink(c);
    if (c->req && !evhttp_request_get_connection(c->req))
        evhttp_request_free(c->req);
    c->req = NULL;
    c->evcon = NULL;
    client_release(c);
}

/* Drops a stream whose client does not read. Not called from a callback of
 * this connection, so freeing it here is safe. */
static void client_drop(struct sse_client *c, const char *why)
{
    struct api_events *ev = c->ev;
    LOG(RV_LOG_WARN, c->nrepos == 1 ? c->repos[0] : NULL, NULL,
        "SSE client dropped: %s", why);
    api_metrics_sse_dropped(ev->api->metrics);
    /* Runs client_on_close through the close callback. */
    evhttp_connection_free(c->evcon);
}

/* Bytes written to the client's socket buffer and not yet sent. */
static size_t client_unsent(const struct sse_client *c)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
    return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

/* Writes bytes to a started stream; false if the client was dropped.
 *
 * The bytes go to the socket at once when nothing is waiting before them
 * (the usual case), with the chunk framing evhttp_send_reply_chunk would
 * add; only what the socket does not take is left in the connection's
 * output buffer for the loop to send. Handing every event to the
 * bufferevent instead cost, per client and event, an evbuffer, two
 * epoll_ctl calls and a pass of the loop before anything was sent: one
 * status event reached the last of 10,000 streams after 460 ms, the first
 * only after the loop over all of them. chunk_head is the chunk's size
 * line, "<hex len>\r\n" (chunk_head_for), made once for all streams. */
static bool client_write_chunk(struct sse_client *c, const char *chunk_head,
                               const void *data, size_t len)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
    if (!bev || !len)
        return true;
    struct evbuffer *out = bufferevent_get_output(bev);
    struct iovec iov[3];
    int niov = 0;
    if (c->chunked)
        iov[niov++] = (struct iovec){(void *)chunk_head, strlen(chunk_head)};
    iov[niov++] = (struct iovec){(void *)data, len};
    if (c->chunked)
        iov[niov++] = (struct iovec){(void *)"\r\n", 2};
    ssize_t sent = 0;
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (evbuffer_get_length(out) == 0 && fd >= 0) {
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
        sent = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent < 0)
            sent = 0; /* EAGAIN, or an error the bufferevent will see */
    }
    for (int i = 0; i < niov; i++) {
        size_t skip = (size_t)sent < iov[i].iov_len ? (size_t)sent
                                                      : iov[i].iov_len;
        sent -= (ssize_t)skip;
        if (skip < iov[i].iov_len)
            evbuffer_add(out, (const char *)iov[i].iov_base + skip,
                         iov[i].iov_len - skip);
    }
    if (client_unsent(c) > (size_t)c->ev->api->cfg->sse_max_buffer) {
        client_drop(c, "unsent output passed REPOVIEW_SSE_MAX_BUFFER");
        return false;
    }
    return true;
}

/* The size line of an HTTP/1.1 chunk of len bytes, into head (24 bytes
 * hold any size_t). */
static const char *chunk_head_for(char head[24], size_t len)
{
    snprintf(head, 24, "%zx\r\n", len);
    return head;
}

static bool client_write(struct sse_client *c, const void *data, size_t len)
{
    char head[24];
    return client_write_chunk(c, chunk_head_for(head, len), data, len);
}

static bool client_wants(const struct sse_client *c, const char *repo)
{
    if (c->all)
        return api_principal_sees(&c->who, repo);
    for (size_t i = 0; i < c->nrepos; i++)
        if (strcmp(c->repos[i], repo) == 0)
            return true;
    return false;
}

/* Sends the headers and `retry:`; the call is answered from here on. */
static void client_start(struct sse_client *c)
{
    struct api_events *ev = c->ev;
    struct evhttp_request *req = c->req;
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Content-Type", "text/event-stream");
    evhttp_add_header(out, "Cache-Control", "no-cache");
    evhttp_add_header(out, "X-Accel-Buffering", "no");
    api_cors_headers(ev->api, req);
    evhttp_send_reply_start(req, 200, "OK");
    /* evhttp chunks the body for HTTP/1.1 clients and says so here;
     * client_write frames the events itself. */
    c->chunked = evhttp_find_header(out, "Transfer-Encoding") != NULL;
    api_call_handed_over(c->call, 200);
    c->call = NULL;
    c->started = true;
    ev->nclients++;
    c->evcon = evhttp_request_get_connection(req);
    if (!api_conn_set_stream(ev->api, c->evcon, client_on_close, c)) {
        client_drop(c, "too many streams from its address");
        return;
    }
    /* A stream has no read timeout (clients send nothing); the write
     * timeout still ends a connection that takes nothing for that long. */
    struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
    bufferevent_set_timeouts(bev, NULL, &ev->api->io_timeout);
    /* client_write hands events straight to the socket, so the kernel's
     * send buffer is where a slow client's backlog starts; left to
     * autotuning it grows to 4 MiB per socket before the
     * REPOVIEW_SSE_MAX_BUFFER cap even sees a byte. A fixed size bounds
     * what a client that stopped reading can hold, kernel included. */
    int sndbuf = SSE_SOCKET_SNDBUF;
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    char retry[32];
    int n = snprintf(retry, sizeof(retry), "retry: %d\n\n", SSE_RETRY_MS);
    client_write(c, retry, (size_t)n);
}

/* Renders one event; appends to b. */
static void render_event(struct api_events *ev, struct evbuffer *b,
                         const char *type, const json_t *data)
{
    char *text = json_dumps(data, JSON_COMPACT);
    if (!text)
        return;
    evbuffer_add_printf(b, "id: %llu\nevent: %s\ndata: %s\n\n",
                        (unsigned long long)++ev->next_id, type, text);
    free(text);
}

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
    client_unlink(c);
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
            client_unlink(c);
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
    if (!c->started)
        client_start(c);
    if (c->closed || !(b = evbuffer_new()))
        goto out;
    for (size_t i = 0; i < s->n; i++) {
        if (!s->data[i])
            continue;
        render_event(ev, b, "snapshot", s->data[i]);
        written++;
    }
    evbuffer_add_buffer(b, c->backlog);
    c->state = SSE_LIVE;
    api_metrics_sse_event(ev->api->metrics, written);
    size_t len = evbuffer_get_length(b);
    if (len)
        client_write(c, evbuffer_pullup(b, -1), len);
out:
    if (b)
        evbuffer_free(b);
    snapshot_free(s);
    c->pending--;
    client_release(c);
}

static json_t *snapshot_data(struct api *api, const struct rv_repo *repo)
{
    return json_pack("{s:s,s:I,s:o}", "repo", repo->id, "version",
                     (json_int_t)repo->version, "freshness",
                     api_freshness(api, repo));
}

static void on_snapshot_get(struct rv_rasync *ra, redisReply *reply,
                            void *priv)
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
    if (!api_events_subscribed(api->events) ||
        !rv_rasync_connected(api->redis))
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

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void on_snapshot_members(struct rv_rasync *ra, redisReply *reply,
                                void *priv)
{
    (void)ra;
    struct snapshot *s = priv;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        s->rc = reply ? RV_ERR_PROTOCOL : RV_ERR_REDIS;
        snapshot_done(s);
        return;
    }
    s->ids = calloc(reply->elements + 1, sizeof(*s->ids));
    if (!s->ids) {
        s->rc = RV_ERR_NOMEM;
        snapshot_done(s);
        return;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type == REDIS_REPLY_STRING && rv_repo_id_valid(e->str) &&
            api_principal_sees(&s->c->who, e->str))
            rv_strlcpy(s->ids[s->n++], e->str, sizeof(s->ids[0]));
    }
    qsort(s->ids, s->n, sizeof(s->ids[0]), cmp_ids);
    snapshot_read(s);
}

/* (Re)reads the snapshots of c; live events wait in the backlog. */
static void snapshot_start(struct sse_client *c)
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
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_cmd_add(&cmd, "SMEMBERS");
    rv_cmd_add(&cmd, RV_KEY_REPOS);
    int rc = rv_rasync_run(c->ev->api->redis, &cmd, on_snapshot_members, s);
    if (rc != RV_OK) {
        s->rc = rc;
        snapshot_done(s);
    }
}

/* ---- handlers ---- */

static void events_open(struct api_call *call, bool all,
                        char (*repos)[RV_REPO_ID_MAX + 1], size_t nrepos)
{
    struct api_events *ev = call->api->events;
    struct sse_client *c = calloc(1, sizeof(*c));
    if (!c || !(c->backlog = evbuffer_new())) {
        free(c);
        free(repos);
        api_reply_rv_error(call, RV_ERR_NOMEM, "out of memory");
        return;
    }
    c->ev = ev;
    c->call = call;
    c->req = call->req;
    c->all = all;
    c->who = call->who;
    c->repos = repos;
    c->nrepos = nrepos;
    c->next = ev->head;
    if (ev->head)
        ev->head->prev = c;
    ev->head = c;
    snapshot_start(c);
}

void api_events_repo(struct api_call *call)
{
    char(*repos)[RV_REPO_ID_MAX + 1] = calloc(1, sizeof(*repos));
    if (!repos) {
        api_reply_rv_error(call, RV_ERR_NOMEM, "out of memory");
        return;
    }
    rv_strlcpy(repos[0], call->id, sizeof(repos[0]));
    events_open(call, false, repos, 1);
}

int api_events_parse_repos(const char *query,
                           char (*repos)[RV_REPO_ID_MAX + 1], size_t *n,
                           const char **why)
{
    struct evkeyvalq params;
    TAILQ_INIT(&params);
    *n = 0;
    *why = NULL;
    if (query && evhttp_parse_query_str(query, &params) != 0) {
        *why = "malformed query string";
        return RV_ERR_DECODE;
    }
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, &params, next) {
        if (strcmp(kv->key, "repo") != 0)
            continue;
        if (!rv_repo_id_valid(kv->value)) {
            *why = "repo must be a valid repo id";
            break;
        }
        bool dup = false;
        for (size_t i = 0; i < *n; i++)
            dup = dup || strcmp(repos[i], kv->value) == 0;
        if (dup)
            continue;
        if (*n == API_MAX_SSE_REPOS) {
            *why = "too many repo parameters";
            break;
        }
        rv_strlcpy(repos[(*n)++], kv->value, sizeof(repos[0]));
    }
    evhttp_clear_headers(&params);
    return *why ? RV_ERR_INVALID : RV_OK;
}

void api_events_many(struct api_call *call)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(call->req);
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
    char(*repos)[RV_REPO_ID_MAX + 1] =
        calloc(API_MAX_SSE_REPOS, sizeof(*repos));
    if (!repos) {
        api_reply_rv_error(call, RV_ERR_NOMEM, "out of memory");
        return;
    }
    size_t n = 0;
    const char *bad = NULL;
    int rc = api_events_parse_repos(q, repos, &n, &bad);
    if (rc != RV_OK) {
        free(repos);
        api_reply_error(call, 400, rc == RV_ERR_DECODE ? "bad_request"
                                                       : "invalid",
                        "%s", bad);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!api_access_repo(call, repos[i])) {
            free(repos);
            return;
        }
    }
    events_open(call, n == 0, repos, n);
}

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

/* Sends one rendered event to every stream that wants repo. */
static void fan_out(struct api_events *ev, const char *repo,
                    struct evbuffer *text)
{
    size_t len = evbuffer_get_length(text);
    const unsigned char *data = evbuffer_pullup(text, -1);
    uint64_t written = 0;
    struct sse_client *next;
    char head[24];
    chunk_head_for(head, len);
    for (struct sse_client *c = ev->head; c; c = next) {
        next = c->next;
        if (c->closed || !client_wants(c, repo))
            continue;
        if (c->state == SSE_SNAPSHOT) {
            evbuffer_add(c->backlog, data, len);
            if (c->started && evbuffer_get_length(c->backlog) >
                                  (size_t)ev->api->cfg->sse_max_buffer)
                client_drop(c, "backlog passed REPOVIEW_SSE_MAX_BUFFER");
            continue;
        }
        written++;
        client_write_chunk(c, head, data, len);
    }
    api_metrics_sse_event(ev->api->metrics, written);
}

/* Translates one message of rv:events (lua/includes/state.lua) into the
 * contract's event and fans it out. */
static void on_message(struct api_events *ev, const char *payload, size_t len)
{
    struct api *api = ev->api;
    json_t *msg = json_loadb(payload, len, 0, NULL);
    const char *type = json_string_value(json_object_get(msg, "type"));
    const char *repo_id = json_string_value(json_object_get(msg, "repo"));
    json_t *data = NULL;
    struct evbuffer *text = NULL;
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
                             api_freshness(api, &repo));
        else
            data = json_pack("{s:s,s:I,s:o,s:O?}", "repo", repo_id,
                             "version", (json_int_t)repo.version,
                             "freshness", api_freshness(api, &repo),
                             "changed", json_object_get(msg, "changed"));
        rv_repo_free(&repo);
    } else {
        /* A type this version does not know: its repo changed somehow. */
        api_cache_announce(api->cache, repo_id, -1);
        goto out;
    }
    if (!data || !ev->head || !(text = evbuffer_new()))
        goto out;
    render_event(ev, text, type, data);
    fan_out(ev, repo_id, text);
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
                snapshot_start(c);
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

size_t api_events_clients(const struct api_events *ev)
{
    return ev ? ev->nclients : 0;
}

void api_events_tick(struct api_events *ev, bool ping)
{
    static const char comment[] = ": ping\n\n";
    bool redis_up = rv_rasync_connected(ev->api->redis);
    struct sse_client *next;
    for (struct sse_client *c = ev->head; c; c = next) {
        next = c->next;
        if (c->closed || !c->started)
            continue;
        if (ping && !client_write(c, comment, sizeof(comment) - 1))
            continue;
        if (c->needs_snapshot && redis_up)
            snapshot_start(c);
    }
}

void api_events_close_all(struct api_events *ev)
{
    struct sse_client *next;
    for (struct sse_client *c = ev->head; c; c = next) {
        next = c->next;
        if (c->closed)
            continue;
        bool started = c->started;
        c->closed = true;
        client_unlink(c);
        if (started) {
            api_conn_set_stream(ev->api, c->evcon, NULL, NULL);
            /* Ends the chunked body; evhttp frees the request once it is
             * written. */
            evhttp_send_reply_end(c->req);
        } else {
            api_reply_rv_error(c->call, RV_ERR_SHUTDOWN,
                               "the server is stopping");
        }
        c->req = NULL;
        c->call = NULL;
        client_release(c);
    }
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

/*
 * Server-sent events: GET /v1/repos/{id}/events and GET /v1/events.
 *
 * The process holds one subscription to rv:events on a connection of its
 * own and fans each message out to every stream that wants the repo. A
 * stream starts with `retry:`, then one `snapshot` per repo read from
 * Redis (a stream of every repo gets one `snapshot-needed` hint instead),
 * then live events. Live events that arrive while a snapshot is
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
 *
 * This file holds the streams (their writes, start and end) and the two
 * handlers; events_snapshot.c reads the snapshots, events_sub.c holds the
 * subscription and fans its messages out. events_private.h is what the
 * three share.
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
#include "api/events_private.h"
#include "common/errors.h"
#include "common/log.h"

#define SSE_RETRY_MS 3000
/* The kernel send buffer of a stream (Linux doubles it for overhead). */
#define SSE_SOCKET_SNDBUF (64 * 1024)

/* ---- clients ---- */

static void client_free(struct sse_client *c)
{
    if (c->backlog)
        evbuffer_free(c->backlog);
    free(c->repos);
    free(c);
}

void sse_client_unlink(struct sse_client *c)
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
void sse_client_release(struct sse_client *c)
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
    sse_client_unlink(c);
    if (c->req && !evhttp_request_get_connection(c->req))
        evhttp_request_free(c->req);
    c->req = NULL;
    c->evcon = NULL;
    sse_client_release(c);
}

/* Drops a stream whose client does not read. Not called from a callback of
 * this connection, so freeing it here is safe. */
void sse_client_drop(struct sse_client *c, const char *why)
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
 * line, "<hex len>\r\n" (sse_chunk_head_for), made once for all streams. */
bool sse_client_write_chunk(struct sse_client *c, const char *chunk_head,
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
        sse_client_drop(c, "unsent output passed REPOVIEW_SSE_MAX_BUFFER");
        return false;
    }
    return true;
}

/* The size line of an HTTP/1.1 chunk of len bytes, into head (24 bytes
 * hold any size_t). */
const char *sse_chunk_head_for(char head[24], size_t len)
{
    snprintf(head, 24, "%zx\r\n", len);
    return head;
}

bool sse_client_write(struct sse_client *c, const void *data, size_t len)
{
    char head[24];
    return sse_client_write_chunk(c, sse_chunk_head_for(head, len), data, len);
}

bool sse_client_wants(const struct sse_client *c, const char *repo)
{
    if (c->all)
        return api_principal_sees(&c->who, repo);
    for (size_t i = 0; i < c->nrepos; i++)
        if (strcmp(c->repos[i], repo) == 0)
            return true;
    return false;
}

/* Sends the headers and `retry:`; the call is answered from here on. */
void sse_client_start(struct sse_client *c)
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
     * sse_client_write frames the events itself. */
    c->chunked = evhttp_find_header(out, "Transfer-Encoding") != NULL;
    api_call_handed_over(c->call, 200);
    c->call = NULL;
    c->started = true;
    ev->nclients++;
    c->evcon = evhttp_request_get_connection(req);
    if (!api_conn_set_stream(ev->api, c->evcon, client_on_close, c)) {
        sse_client_drop(c, "too many streams from its address");
        return;
    }
    /* A stream has no read timeout (clients send nothing); the write
     * timeout still ends a connection that takes nothing for that long. */
    struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
    bufferevent_set_timeouts(bev, NULL, &ev->api->io_timeout);
    /* sse_client_write hands events straight to the socket, so the kernel's
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
    sse_client_write(c, retry, (size_t)n);
}

/* Renders one event; appends to b. */
void sse_render_event(struct api_events *ev, struct evbuffer *b,
                      const char *type, const json_t *data)
{
    char *text = json_dumps(data, JSON_COMPACT);
    if (!text)
        return;
    evbuffer_add_printf(b, "id: %llu\nevent: %s\ndata: %s\n\n",
                        (unsigned long long)++ev->next_id, type, text);
    free(text);
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
    sse_snapshot_start(c);
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

/* ---- every stream ---- */

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
        if (ping && !sse_client_write(c, comment, sizeof(comment) - 1))
            continue;
        if (c->needs_snapshot && redis_up)
            sse_snapshot_start(c);
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
        sse_client_unlink(c);
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
        sse_client_release(c);
    }
}

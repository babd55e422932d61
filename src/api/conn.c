/*
 * Connections: every one counted from its accept, the caps on them
 * (REPOVIEW_MAX_CLIENTS, REPOVIEW_MAX_CLIENTS_PER_IP,
 * REPOVIEW_MAX_STREAMS_PER_IP), the deadlines of each request, the body
 * cap of each route and the budget of body bytes held at once, and the
 * listener's answer to running out of file descriptors.
 *
 * This file holds the records of connections and addresses, their
 * timers and the interface of api.h. conn_listen.c holds the accept
 * (adoption) and the listener's guard against running out of
 * descriptors; conn_body.c the cap of each request's body and the budget
 * of body bytes. conn_private.h is what the three share.
 *
 * Deadlines. evhttp's own timeouts restart on every byte, so a client
 * that trickles a byte now and then holds its connection for ever. Each
 * connection therefore has one timer of ours, by state:
 *
 *   CONN_FIRST    accepted: the first request must be in, in full, within
 *                 REPOVIEW_IO_TIMEOUT of the accept.
 *   CONN_IDLE     answered, kept alive: the first byte of the next request
 *                 must come within REPOVIEW_KEEPALIVE_TIMEOUT.
 *   CONN_READING  that byte came: the request must be in, in full, within
 *                 REPOVIEW_IO_TIMEOUT of it.
 *   CONN_BUSY     being answered: no read deadline (evhttp reads nothing
 *                 meanwhile); a client that does not take the answer is
 *                 closed by the bufferevent's write timeout, IO_TIMEOUT.
 *   CONN_STREAM   an SSE stream: no read deadline, the same write timeout.
 *
 * The first byte of a request is seen by a callback on the bufferevent's
 * input buffer, which runs as bytes are added, before evhttp parses them;
 * it is disabled while a request is answered. A request is known to begin
 * when the dispatcher calls api_conn_admit and to end when evhttp calls
 * the request's completion callback. evhttp's read timeout stays as a
 * backstop, set past both deadlines so that it never cuts one short.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/api.h"
#include "api/conn_private.h"
#include "common/errors.h"
#include "common/log.h"

/* ---- helpers ---- */

static int64_t mono_ms(void)
{
    return api_mono_us() / 1000;
}

static void ratelog_init(struct ratelog *r, rv_log_level level,
                         const char *field, const char *msg)
{
    r->level = level;
    r->field = field;
    r->msg = msg;
}

/* Writes the count left since the last line, once a second has passed. */
static void ratelog_flush(struct ratelog *r)
{
    int64_t now = mono_ms();
    if (!r->count || now - r->last_ms < 1000)
        return;
    LOGF(r->level, NULL, NULL,
         json_pack("{s:I}", r->field, (json_int_t)r->count), "%s", r->msg);
    r->last_ms = now;
    r->count = 0;
}

/* Counts one event; true (and the count since the last line in *n) when a
 * line is due: the caller writes it, with r->msg and r->field. */
bool conn_ratelog_due(struct ratelog *r, uint64_t *n)
{
    r->count++;
    int64_t now = mono_ms();
    if (r->last_ms && now - r->last_ms < 1000)
        return false;
    r->last_ms = now;
    *n = r->count;
    r->count = 0;
    return true;
}

static size_t hash_bytes(const void *p, size_t len)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return (size_t)(h ^ (h >> 29));
}

static size_t conn_hash(const struct api_conns *t,
                        const struct evhttp_connection *evcon)
{
    uintptr_t x = (uintptr_t)evcon;
    return hash_bytes(&x, sizeof(x)) & (t->nbuckets - 1);
}

struct api_conn **conn_slot(struct api_conns *t,
                            const struct evhttp_connection *evcon)
{
    struct api_conn **p = &t->buckets[conn_hash(t, evcon)];
    while (*p && (*p)->evcon != evcon)
        p = &(*p)->next;
    return p;
}

static struct api_conn *conn_find(struct api *api,
                                  const struct evhttp_connection *evcon)
{
    return api->conns && evcon ? *conn_slot(api->conns, evcon) : NULL;
}

/* The remote address of fd into addr (16 bytes); its length, 0 if none. */
static unsigned char peer_address(evutil_socket_t fd, unsigned char *addr)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET) {
        memcpy(addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        return 4;
    }
    if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            memcpy(addr, a->s6_addr + 12, 4);
            return 4;
        }
        memcpy(addr, a->s6_addr, 16);
        return 16;
    }
    return 0;
}

const char *conn_peer_text(const struct api_peer *p, char *buf,
                           size_t size)
{
    if (!p || !p->len ||
        !inet_ntop(p->len == 4 ? AF_INET : AF_INET6, p->addr, buf,
                   (socklen_t)size))
        snprintf(buf, size, "unknown");
    return buf;
}

static struct api_peer **peer_slot(struct api_conns *t,
                                   const unsigned char *addr,
                                   unsigned char len)
{
    struct api_peer **p = &t->peers[hash_bytes(addr, len) & (t->npeers - 1)];
    while (*p && ((*p)->len != len || memcmp((*p)->addr, addr, len) != 0))
        p = &(*p)->next;
    return p;
}

/* Frees p once it holds nothing. */
static void peer_release(struct api_conns *t, struct api_peer *p)
{
    if (p->conns || p->streams)
        return;
    struct api_peer **slot = peer_slot(t, p->addr, p->len);
    if (*slot == p)
        *slot = p->next;
    free(p);
}

/* ---- timers ---- */

void conn_arm(struct api_conn *c, const struct timeval *tv)
{
    if (c->timer)
        evtimer_add(c->timer, tv);
}

static void conn_disarm(struct api_conn *c)
{
    if (c->timer)
        evtimer_del(c->timer);
}

static void input_watch(struct api_conn *c, bool on)
{
    if (!c->input_cb)
        return;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    if (on)
        evbuffer_cb_set_flags(in, c->input_cb, EVBUFFER_CB_ENABLED);
    else
        evbuffer_cb_clear_flags(in, c->input_cb, EVBUFFER_CB_ENABLED);
}

/* A deadline passed, or the connection was refused: the request being
 * read was never handed to anyone, so freeing the connection here (a
 * timer's callback, outside evhttp's) frees that request with it. */
static void conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct api_conn *c = arg;
    struct api_conns *t = c->owner;
    /* A request handed to the dispatcher is someone's now: freeing the
     * connection would free it under them. (A refused connection's last
     * bytes may have completed its request in the same read.) */
    if (c->state != CONN_FIRST && c->state != CONN_IDLE &&
        c->state != CONN_READING)
        return;
    if (!c->refused) {
        uint64_t n;
        t->stats.closed_deadline++;
        if (conn_ratelog_due(&t->deadline_log, &n)) {
            char addr[INET6_ADDRSTRLEN];
            LOGF(t->deadline_log.level, NULL, NULL,
                 json_pack("{s:I,s:s,s:s}", t->deadline_log.field,
                           (json_int_t)n, "addr",
                           conn_peer_text(c->peer, addr, sizeof(addr)), "state",
                           c->state == CONN_IDLE ? "keepalive" : "request"),
                 "%s", t->deadline_log.msg);
        }
    }
    /* Runs conn_closed, which frees c and this timer. */
    evhttp_connection_free(c->evcon);
}

/* ---- records ---- */

/* evhttp calls this once when the connection goes, from inside
 * evhttp_connection_free; the stream's callback must not free evcon. */
static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    struct api_conn *c = arg;
    struct api_conns *t = c->owner;
    struct api_conn **slot = conn_slot(t, evcon);
    if (*slot == c) {
        *slot = c->next;
        t->count--;
    }
    conn_budget_release(c);
    if (c->input_cb)
        evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->input_cb);
    if (c->timer)
        event_free(c->timer);
    if (c->peer) {
        c->peer->conns--;
        if (c->has_stream)
            c->peer->streams--;
        peer_release(t, c->peer);
    }
    void (*on_close)(void *) = c->on_close;
    void *on_close_arg = c->arg;
    free(c);
    if (on_close)
        on_close(on_close_arg);
}

/* Socket settings of a new connection.
 *
 * bufferevents write at most 16 KiB per call by default, so a 17 KiB
 * overview went out as a full segment and a small tail. With Nagle on, the
 * tail waited for the ACK of the first part, which the client delays by up
 * to 40 ms: every keep-alive read took 44 ms. TCP_NODELAY sends the tail at
 * once (replies are whole buffers, so it adds no tiny packets), and a
 * larger single write puts a typical overview in one send. */
#define API_MAX_SINGLE_WRITE (256 * 1024)

static void conn_tune(struct api *api, struct bufferevent *bev)
{
    evutil_socket_t fd = bufferevent_getfd(bev);
    int on = 1;
    if (fd >= 0 &&
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0)
        LOG(RV_LOG_DEBUG, NULL, NULL, "cannot set TCP_NODELAY: %s",
            strerror(errno));
    bufferevent_set_max_single_write(bev, API_MAX_SINGLE_WRITE);
    /* evhttp's read timeout (main.c) is a backstop past our deadlines; a
     * client that stops taking our bytes is closed after IO_TIMEOUT. */
    struct timeval backstop = {
        (time_t)(api->cfg->io_timeout > api->cfg->keepalive_timeout
                     ? api->cfg->io_timeout
                     : api->cfg->keepalive_timeout) + 1,
        0};
    bufferevent_set_timeouts(bev, &backstop, &api->io_timeout);
}

static void refused_at_accept(struct api_conns *t, const struct api_peer *p,
                              const char *why)
{
    t->stats.refused_at_accept++;
    uint64_t n;
    if (!conn_ratelog_due(&t->refused_log, &n))
        return;
    char addr[INET6_ADDRSTRLEN];
    LOGF(t->refused_log.level, NULL, NULL,
         json_pack("{s:I,s:s,s:s}", t->refused_log.field, (json_int_t)n,
                   "addr", conn_peer_text(p, addr, sizeof(addr)), "limit", why),
         "%s", t->refused_log.msg);
}

/* Registers evcon, whose bufferevent is bev, in state; NULL when it was
 * refused (a cap, or no memory) and freed. */
struct api_conn *conn_register(struct api_conns *t,
                               struct evhttp_connection *evcon,
                               struct bufferevent *bev,
                               enum conn_state state)
{
    struct api *api = t->api;
    unsigned char addr[16];
    unsigned char len = peer_address(bufferevent_getfd(bev), addr);
    struct api_peer **pslot = peer_slot(t, addr, len);
    struct api_peer *p = *pslot;
    struct api_peer probe = {.len = len};
    memcpy(probe.addr, addr, len);
    const char *why = NULL;
    if (t->count >= (size_t)api->cfg->max_clients)
        why = "REPOVIEW_MAX_CLIENTS";
    else if (p && p->conns >= (size_t)api->cfg->max_clients_per_ip)
        why = "REPOVIEW_MAX_CLIENTS_PER_IP";
    if (why) {
        refused_at_accept(t, p ? p : &probe, why);
        return NULL;
    }
    struct api_conn *c = calloc(1, sizeof(*c));
    if (!p && c) {
        p = calloc(1, sizeof(*p));
        if (p) {
            *p = probe;
            p->next = *pslot;
            *pslot = p;
        }
    }
    if (!c || !p || !(c->timer = evtimer_new(api->base, conn_on_timer, c)) ||
        !(c->input_cb = evbuffer_add_cb(bufferevent_get_input(bev),
                                        conn_on_input, c))) {
        LOG(RV_LOG_WARN, NULL, NULL,
            "out of memory for a connection's record; closed it");
        if (c && c->timer)
            event_free(c->timer);
        free(c);
        if (p)
            peer_release(t, p);
        return NULL;
    }
    c->evcon = evcon;
    c->bev = bev;
    c->owner = t;
    c->peer = p;
    c->state = state;
    p->conns++;
    struct api_conn **slot = conn_slot(t, evcon);
    c->next = *slot;
    *slot = c;
    t->count++;
    evhttp_connection_set_closecb(evcon, conn_closed, c);
    /* Until the request line says otherwise, no body. */
    evhttp_connection_set_max_body_size(evcon, 0);
    conn_tune(api, bev);
    if (state == CONN_FIRST) {
        conn_arm(c, &api->io_timeout);
        struct evbuffer *in = bufferevent_get_input(bev);
        if (evbuffer_get_length(in)) {
            c->held = evbuffer_get_length(in);
            t->body_bytes += c->held;
            conn_choose_body_cap(c, in);
        }
    }
    return c;
}

/* ---- the interface ---- */

void api_conns_tick(struct api *api)
{
    struct api_conns *t = api->conns;
    if (!t)
        return;
    ratelog_flush(&t->refused_log);
    ratelog_flush(&t->budget_log);
    ratelog_flush(&t->deadline_log);
    ratelog_flush(&t->fd_log);
}

int api_conns_init(struct api *api)
{
    struct api_conns *t = calloc(1, sizeof(*t));
    if (!t)
        return RV_ERR_NOMEM;
    t->api = api;
    t->spare_fd = -1;
    t->nbuckets = 1024;
    while (t->nbuckets < (size_t)api->cfg->max_clients &&
           t->nbuckets < (1u << 20))
        t->nbuckets <<= 1;
    t->npeers = t->nbuckets;
    ratelog_init(&t->refused_log, RV_LOG_WARN, "refused",
                 "closed connections over a connection cap");
    ratelog_init(&t->budget_log, RV_LOG_WARN, "refused",
                 "closed connections whose requests would pass "
                 "REPOVIEW_MAX_BODY_MEMORY");
    ratelog_init(&t->deadline_log, RV_LOG_INFO, "closed",
                 "closed connections at their deadline "
                 "(REPOVIEW_IO_TIMEOUT, REPOVIEW_KEEPALIVE_TIMEOUT)");
    ratelog_init(&t->fd_log, RV_LOG_WARN, "refused",
                 "cannot accept connections (out of descriptors or "
                 "memory); closed the pending ones");
    struct timeval ka = {(time_t)api->cfg->keepalive_timeout, 0};
    const struct timeval *common =
        event_base_init_common_timeout(api->base, &ka);
    t->keepalive = common ? *common : ka;
    api->conns = t;
    if (!(t->buckets = calloc(t->nbuckets, sizeof(*t->buckets))) ||
        !(t->peers = calloc(t->npeers, sizeof(*t->peers))) ||
        !(t->adopt = event_new(api->base, -1, 0, conn_on_adopt, t)) ||
        !(t->relisten = evtimer_new(api->base, conn_on_relisten, t))) {
        api_conns_free(api);
        return RV_ERR_NOMEM;
    }
    /* Held so that running out of descriptors can still accept (and
     * close) what waits; without it the guard only pauses the listener. */
    t->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    evhttp_set_bevcb(api->http, conn_bevcb, t);
    return RV_OK;
}

/* After evhttp_free (which closed every connection, so the tables are
 * empty unless evhttp could not call back), before event_base_free. */
void api_conns_free(struct api *api)
{
    struct api_conns *t = api->conns;
    if (!t)
        return;
    conn_listener_forget(t);
    while (t->pending) {
        struct pending *p = t->pending;
        t->pending = p->next;
        bufferevent_decref(p->bev);
        free(p);
    }
    for (size_t i = 0; t->buckets && i < t->nbuckets; i++) {
        struct api_conn *c = t->buckets[i];
        while (c) {
            struct api_conn *next = c->next;
            if (c->timer)
                event_free(c->timer);
            free(c);
            c = next;
        }
    }
    for (size_t i = 0; t->peers && i < t->npeers; i++) {
        struct api_peer *p = t->peers[i];
        while (p) {
            struct api_peer *next = p->next;
            free(p);
            p = next;
        }
    }
    if (t->adopt)
        event_free(t->adopt);
    if (t->relisten)
        event_free(t->relisten);
    if (t->spare_fd >= 0)
        close(t->spare_fd);
    free(t->buckets);
    free(t->peers);
    free(t);
    api->conns = NULL;
}

size_t api_conn_count(const struct api *api)
{
    return api->conns ? api->conns->count : 0;
}

size_t api_conn_body_bytes(const struct api *api)
{
    return api->conns ? api->conns->body_bytes : 0;
}

struct api_conn_stats api_conn_stats(const struct api *api)
{
    struct api_conn_stats none = {0};
    return api->conns ? api->conns->stats : none;
}

/* The request is answered (its reply written) and about to be freed: the
 * connection waits for the next one, whose first bytes may be here. */
static void on_request_done(struct evhttp_request *req, void *arg)
{
    (void)req;
    struct api_conn *c = arg;
    struct api_conns *t = c->owner;
    conn_budget_release(c);
    if (c->has_stream) {
        c->has_stream = false;
        c->peer->streams--;
    }
    c->on_close = NULL;
    c->arg = NULL;
    c->line_seen = false;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t waiting = evbuffer_get_length(in);
    evhttp_connection_set_max_body_size(c->evcon, 0);
    input_watch(c, true);
    if (waiting) {
        /* Pipelined: the next request began already. */
        c->state = CONN_READING;
        c->held = waiting;
        t->body_bytes += waiting;
        conn_arm(c, &t->api->io_timeout);
        conn_choose_body_cap(c, in);
    } else {
        c->state = CONN_IDLE;
        conn_arm(c, &t->keepalive);
    }
}

bool api_conn_admit(struct api *api, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (!evcon || !api->conns)
        return true;
    struct api_conn *c = conn_find(api, evcon);
    if (!c) {
        /* Not adopted at accept (no memory then): counted from here. */
        struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
        if (!bev || !(c = conn_register(api->conns, evcon, bev, CONN_BUSY)))
            return false;
        /* It was not refused: the body it sent is in already. */
    }
    /* A request refused for the budget whose last bytes came in the same
     * read is complete: answering it costs nothing more. */
    c->refused = false;
    c->state = CONN_BUSY;
    conn_disarm(c);
    input_watch(c, false);
    evhttp_request_set_on_complete_cb(req, on_request_done, c);
    return true;
}

/* Counts a stream for c's address; false when it has as many as allowed. */
static bool stream_take(struct api *api, struct api_conn *c)
{
    if (c->has_stream)
        return true;
    if (c->peer->streams >= (size_t)api->cfg->max_streams_per_ip)
        return false;
    c->peer->streams++;
    c->has_stream = true;
    return true;
}

bool api_conn_stream_admit(struct api *api, struct evhttp_request *req)
{
    struct api_conn *c = conn_find(api, evhttp_request_get_connection(req));
    return !c || stream_take(api, c);
}

bool api_conn_set_stream(struct api *api, struct evhttp_connection *evcon,
                         void (*on_close)(void *arg), void *arg)
{
    struct api_conn *c = conn_find(api, evcon);
    if (!c)
        return true; /* not counted, nothing to refuse by */
    c->on_close = on_close;
    c->arg = arg;
    if (!on_close)
        return true;
    c->state = CONN_STREAM;
    conn_disarm(c);
    input_watch(c, false);
    conn_budget_release(c);
    return stream_take(api, c);
}

/*
 * Connections: every one counted from its accept, the caps on them
 * (REPOVIEW_MAX_CLIENTS, REPOVIEW_MAX_CLIENTS_PER_IP,
 * REPOVIEW_MAX_STREAMS_PER_IP), the deadlines of each request, the body
 * cap of each route and the budget of body bytes held at once, and the
 * listener's answer to running out of file descriptors.
 *
 * Accept. libevent 2.1.12's evhttp has no hook at accept but the one that
 * makes the bufferevent (evhttp_set_bevcb), which runs before evhttp has
 * a connection object. So the factory holds a reference on the new
 * bufferevent, queues it and activates one "adopt" event. By the time that
 * runs, evhttp's accept callback has returned: the bufferevent has its
 * socket and evhttp's callbacks, whose argument is the evhttp_connection
 * (evhttp_connection_base_bufferevent_new). A bufferevent whose callbacks
 * are gone was freed by evhttp meanwhile (bufferevent_free clears them;
 * our reference kept the memory). Adoption applies the caps (over one:
 * the connection is freed at once), and registers the record with the
 * close callback, which evhttp calls whenever it frees the connection.
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
 *
 * Bodies. evhttp refuses a body past the connection's max body size with
 * 413 before it buffers it, right after the headers. 2.1.12 offers no way
 * to reach an incoming request before its headers are in (no
 * evhttp_set_newreqcb; a request's header callback can only be set on a
 * request one already has), so the cap is chosen when the request line is
 * complete in the input buffer: the input callback copies that line, cuts
 * it where evhttp's own parser does (the first and the last space) and
 * looks the route up (api_route_find). Only the choice of a cap depends on
 * this reading; evhttp parses the request itself, and anything our reading
 * does not recognise gets the smallest cap. Every byte that arrives for a
 * request counts against REPOVIEW_MAX_BODY_MEMORY until the request is
 * answered or its connection closes; a connection whose request holds more
 * than the header cap and whose bytes pass the budget stops being read and
 * is closed (its body is half in: there is no clean answer left to give).
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/api.h"
#include "common/errors.h"
#include "common/log.h"

/* Where a connection is; see the top of the file. */
enum conn_state {
    CONN_FIRST,
    CONN_IDLE,
    CONN_READING,
    CONN_BUSY,
    CONN_STREAM,
};

/* One remote address (IPv4, or IPv6; a v4-mapped v6 address counts as
 * the v4 one) and what it holds. Freed when it holds nothing. */
struct api_peer {
    unsigned char addr[16];
    unsigned char len;       /* 4 or 16; 0 for a socket without one */
    size_t conns;            /* connections, from the accept */
    size_t streams;          /* requests on stream routes, started or not */
    struct api_peer *next;   /* hash chain */
};

struct api_conn {
    struct evhttp_connection *evcon;
    struct bufferevent *bev;
    struct api_conns *owner;
    struct api_conn *next;           /* hash chain */
    struct api_peer *peer;
    enum conn_state state;
    struct event *timer;             /* the state's deadline */
    struct evbuffer_cb_entry *input_cb;
    bool line_seen;                  /* this request's cap was chosen */
    bool has_stream;                 /* counted in peer->streams */
    bool refused;                    /* over the body budget: closing */
    size_t held;                     /* budget bytes of this request */
    void (*on_close)(void *arg);     /* an SSE stream on this connection */
    void *arg;
};

/* At most one log line a second for an event that can come in floods,
 * with how many happened since the line before. Counts left when the
 * flood stops are written by the housekeeping tick (api_conns_tick). */
struct ratelog {
    int64_t last_ms;
    uint64_t count;
    rv_log_level level;
    const char *field;  /* the count's name: "refused", "closed" */
    const char *msg;
};

/* A bufferevent made for an accepted connection, not adopted yet; holds a
 * reference on it. */
struct pending {
    struct bufferevent *bev;
    struct pending *next;
};

struct api_conns {
    struct api *api;
    struct api_conn **buckets;       /* by evcon */
    size_t nbuckets;                 /* a power of two */
    size_t count;
    struct api_peer **peers;         /* by address */
    size_t npeers;                   /* a power of two */
    size_t body_bytes;               /* sum of every record's held */
    struct pending *pending;
    size_t npending;
    struct event *adopt;
    struct timeval keepalive;        /* REPOVIEW_KEEPALIVE_TIMEOUT */
    /* The listener's guard: a spare descriptor given up to accept and
     * close connections when the process has none left, and the timer
     * that enables a listener paused because accepting kept failing. */
    struct evconnlistener *listener;
    int spare_fd;
    struct event *relisten;
    bool batch_paused;               /* until the pending are adopted */
    bool fd_paused;                  /* until relisten fires */
    struct api_conn_stats stats;     /* totals for /metrics */
    struct ratelog refused_log;      /* over a connection cap */
    struct ratelog budget_log;       /* over the body budget */
    struct ratelog deadline_log;     /* closed at a deadline */
    struct ratelog fd_log;           /* out of descriptors */
};

/* The one listener's owner: evconnlistener's error callback gets evhttp's
 * argument, not one of ours, and a process has one API listener. */
static struct api_conns *listener_owner;

#define RELISTEN_MS 100
/* Connections accepted before they are adopted. libevent accepts until the
 * queue is empty before anything else runs, so a burst of thousands took
 * every descriptor before the caps could close any; the listener pauses
 * after this many until the adopt event has run. */
#define ADOPT_BATCH 32
/* evhttp listens with a backlog of 128: past that, a burst has the kernel
 * drop SYNs, and those clients (anyone's) retry only a second later. The
 * kernel caps this at net.core.somaxconn. */
#define LISTEN_BACKLOG 4096
/* Connections accepted and closed per error callback when out of
 * descriptors; the rest wait for the next pass of the loop. */
#define EMFILE_DRAIN_MAX 64

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
static bool ratelog_due(struct ratelog *r, uint64_t *n)
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

static struct api_conn **conn_slot(struct api_conns *t,
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

static const char *peer_text(const struct api_peer *p, char *buf,
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

/* ---- the body budget ---- */

static void budget_release(struct api_conn *c)
{
    c->owner->body_bytes -= c->held;
    c->held = 0;
}

static void budget_refused(struct api_conn *c)
{
    struct api_conns *t = c->owner;
    t->stats.refused_budget++;
    uint64_t n;
    if (!ratelog_due(&t->budget_log, &n))
        return;
    char addr[INET6_ADDRSTRLEN];
    LOGF(t->budget_log.level, NULL, NULL,
         json_pack("{s:I,s:s,s:I}", t->budget_log.field, (json_int_t)n,
                   "addr", peer_text(c->peer, addr, sizeof(addr)), "limit",
                   (json_int_t)t->api->cfg->max_body_memory),
         "%s", t->budget_log.msg);
}

/* ---- timers ---- */

static void conn_arm(struct api_conn *c, const struct timeval *tv)
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
        if (ratelog_due(&t->deadline_log, &n)) {
            char addr[INET6_ADDRSTRLEN];
            LOGF(t->deadline_log.level, NULL, NULL,
                 json_pack("{s:I,s:s,s:s}", t->deadline_log.field,
                           (json_int_t)n, "addr",
                           peer_text(c->peer, addr, sizeof(addr)), "state",
                           c->state == CONN_IDLE ? "keepalive" : "request"),
                 "%s", t->deadline_log.msg);
        }
    }
    /* Runs conn_closed, which frees c and this timer. */
    evhttp_connection_free(c->evcon);
}

/* ---- the cap of a request's body ---- */

static size_t body_cap_of_line(char *line, bool webhook_enabled);

size_t api_body_cap(const char *request_line, size_t len,
                    bool webhook_enabled)
{
    char *line = malloc(len + 1);
    if (!line)
        return 0;
    memcpy(line, request_line, len);
    line[len] = '\0';
    size_t cap = strlen(line) == len ? body_cap_of_line(line, webhook_enabled)
                                     : 0; /* a NUL: evhttp refuses it */
    free(line);
    return cap;
}

/* The body cap of the request whose line (NUL-terminated, without its
 * end of line; cut up in place) is given: evhttp splits it at the first
 * space (method) and the last one (version); the target between is its
 * URI. */
static size_t body_cap_of_line(char *line, bool webhook_enabled)
{
    static const struct {
        const char *name;
        int method;
    } methods[] = {
        {"GET", EVHTTP_REQ_GET},         {"POST", EVHTTP_REQ_POST},
        {"HEAD", EVHTTP_REQ_HEAD},       {"PUT", EVHTTP_REQ_PUT},
        {"DELETE", EVHTTP_REQ_DELETE},   {"OPTIONS", EVHTTP_REQ_OPTIONS},
        {"PATCH", EVHTTP_REQ_PATCH},
    };
    char *sp = strchr(line, ' ');
    char *last = strrchr(line, ' ');
    if (!sp || last == sp)
        return 0;
    *sp = '\0';
    *last = '\0';
    int method = 0;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(line, methods[i].name) == 0)
            method = methods[i].method;
    /* Methods whose requests carry no body here: one is refused (413)
     * rather than read and ignored. */
    if (method != EVHTTP_REQ_POST && method != EVHTTP_REQ_PUT &&
        method != EVHTTP_REQ_PATCH)
        return 0;
    struct evhttp_uri *uri =
        evhttp_uri_parse_with_flags(sp + 1, EVHTTP_URI_NONCONFORMANT);
    if (!uri)
        return 0;
    const char *path = evhttp_uri_get_path(uri);
    char id[RV_REPO_ID_MAX + 1];
    int allowed = 0;
    bool too_long = false;
    const struct api_route *r =
        path ? api_route_find(method, path, id, sizeof(id), &allowed,
                              &too_long)
             : NULL;
    evhttp_uri_free(uri);
    if (!r || r->stream)
        return 0;
    if (r->handler == api_webhooks_github)
        return webhook_enabled ? API_MAX_WEBHOOK_BODY : 0;
    return API_MAX_BODY;
}

/* Sets the connection's body cap once the request line is complete at the
 * start of the input (evhttp consumes only whole lines). */
static void choose_body_cap(struct api_conn *c, struct evbuffer *in)
{
    size_t eol_len = 0;
    struct evbuffer_ptr at =
        evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
    size_t cap = 0;
    if (at.pos < 0) {
        /* Not yet; past the header limit evhttp refuses the line. */
        if (evbuffer_get_length(in) <= API_MAX_HEADERS)
            return;
    } else if ((size_t)at.pos <= API_MAX_HEADERS) {
        size_t len = (size_t)at.pos;
        const char *secret = c->owner->api->cfg->webhook_secret;
        char *line = malloc(len + 1);
        if (line && evbuffer_copyout(in, line, len) == (ev_ssize_t)len)
            cap = api_body_cap(line, len, secret && *secret);
        free(line);
    }
    c->line_seen = true;
    evhttp_connection_set_max_body_size(c->evcon, (ev_ssize_t)cap);
}

/* Bytes were added to (or taken from) the connection's input. */
static void on_input(struct evbuffer *in, const struct evbuffer_cb_info *info,
                     void *arg)
{
    struct api_conn *c = arg;
    struct api_conns *t = c->owner;
    if (!info->n_added || c->refused)
        return;
    switch (c->state) {
    case CONN_IDLE:
        c->state = CONN_READING;
        c->line_seen = false;
        conn_arm(c, &t->api->io_timeout);
        /* fall through */
    case CONN_FIRST:
    case CONN_READING:
        c->held += info->n_added;
        t->body_bytes += info->n_added;
        /* A request no larger than the header cap is never refused for
         * the budget (the connection caps bound those), so that a flood of
         * large bodies cannot shut out small requests. */
        if (t->body_bytes > (size_t)t->api->cfg->max_body_memory &&
            c->held > API_MAX_HEADERS) {
            /* Stop reading now; the connection goes on the next pass of
             * the loop, outside the bufferevent's callbacks. */
            c->refused = true;
            bufferevent_disable(c->bev, EV_READ);
            budget_refused(c);
            if (c->timer)
                event_active(c->timer, EV_TIMEOUT, 1);
            return;
        }
        if (!c->line_seen)
            choose_body_cap(c, in);
        break;
    case CONN_BUSY:
    case CONN_STREAM:
        break;
    }
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
    budget_release(c);
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
    if (!ratelog_due(&t->refused_log, &n))
        return;
    char addr[INET6_ADDRSTRLEN];
    LOGF(t->refused_log.level, NULL, NULL,
         json_pack("{s:I,s:s,s:s}", t->refused_log.field, (json_int_t)n,
                   "addr", peer_text(p, addr, sizeof(addr)), "limit", why),
         "%s", t->refused_log.msg);
}

/* Registers evcon, whose bufferevent is bev, in state; NULL when it was
 * refused (a cap, or no memory) and freed. */
static struct api_conn *conn_register(struct api_conns *t,
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
        !(c->input_cb = evbuffer_add_cb(bufferevent_get_input(bev), on_input,
                                        c))) {
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
            choose_body_cap(c, in);
        }
    }
    return c;
}

/* ---- accept ---- */

static void adopt_one(struct api_conns *t, struct bufferevent *bev)
{
    bufferevent_data_cb readcb = NULL;
    void *cbarg = NULL;
    bufferevent_getcb(bev, &readcb, NULL, NULL, &cbarg);
    /* No callbacks: evhttp already freed the connection. */
    if (readcb && cbarg) {
        struct evhttp_connection *evcon = cbarg;
        if (!*conn_slot(t, evcon) &&
            !conn_register(t, evcon, bev, CONN_FIRST))
            evhttp_connection_free(evcon);
    }
    bufferevent_decref(bev);
}

static void listener_resume(struct api_conns *t)
{
    if (t->listener && !t->batch_paused && !t->fd_paused)
        evconnlistener_enable(t->listener);
}

static void on_adopt(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct api_conns *t = arg;
    t->npending = 0;
    /* Oldest first, so that the caps keep the earlier connections. */
    struct pending *list = NULL;
    while (t->pending) {
        struct pending *p = t->pending;
        t->pending = p->next;
        p->next = list;
        list = p;
    }
    while (list) {
        struct pending *p = list;
        list = p->next;
        adopt_one(t, p->bev);
        free(p);
    }
    if (t->batch_paused) {
        t->batch_paused = false;
        listener_resume(t);
    }
}

/* evhttp's bufferevent factory: called for every accepted connection,
 * before evhttp has made the connection object. */
static struct bufferevent *conn_bevcb(struct event_base *base, void *arg)
{
    struct api_conns *t = arg;
    struct bufferevent *bev =
        bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev)
        return NULL; /* evhttp tries to make its own */
    struct pending *p = malloc(sizeof(*p));
    if (!p)
        return bev; /* api_conn_admit registers it at its first request */
    bufferevent_incref(bev);
    p->bev = bev;
    p->next = t->pending;
    t->pending = p;
    event_active(t->adopt, EV_READ, 1);
    if (++t->npending >= ADOPT_BATCH && t->listener && !t->batch_paused) {
        /* libevent's accept loop stops when its listener is disabled. */
        t->batch_paused = true;
        evconnlistener_disable(t->listener);
    }
    return bev;
}

/* ---- out of descriptors ---- */

static void on_relisten(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct api_conns *t = arg;
    t->fd_paused = false;
    listener_resume(t);
}

/* accept() failed with something other than "try again". For EMFILE and
 * ENFILE the pending connections are accepted on the spare descriptor and
 * closed, so that the listener does not stay readable (libevent would
 * call again at once, for ever); anything else, or a spare that cannot be
 * had back, pauses the listener for RELISTEN_MS. */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    (void)arg;
    struct api_conns *t = listener_owner;
    int err = errno;
    if (!t)
        return;
    evutil_socket_t lfd = evconnlistener_get_fd(lev);
    size_t dropped = 0;
    bool pause = true;
    if (err == EMFILE || err == ENFILE) {
        if (t->spare_fd >= 0) {
            close(t->spare_fd);
            t->spare_fd = -1;
        }
        pause = false;
        while (dropped < EMFILE_DRAIN_MAX) {
            int s = accept(lfd, NULL, NULL);
            if (s < 0) {
                pause = errno != EAGAIN && errno != EWOULDBLOCK &&
                        errno != EINTR && errno != ECONNABORTED;
                break;
            }
            close(s);
            dropped++;
        }
        t->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (t->spare_fd < 0)
            pause = true;
    }
    if (pause && t->relisten) {
        struct timeval tv = {0, RELISTEN_MS * 1000};
        t->fd_paused = true;
        evconnlistener_disable(lev);
        evtimer_add(t->relisten, &tv);
    }
    t->stats.dropped_no_fd += dropped;
    t->fd_log.count += dropped ? dropped - 1 : 0;
    uint64_t n;
    if (ratelog_due(&t->fd_log, &n))
        LOGF(t->fd_log.level, NULL, NULL,
             json_pack("{s:I,s:I,s:s,s:b}", t->fd_log.field, (json_int_t)n,
                       "connections", (json_int_t)t->count, "error",
                       strerror(err), "paused", pause),
             "%s", t->fd_log.msg);
}

int api_conns_listen(struct api *api)
{
    struct api_conns *t = api->conns;
    struct evconnlistener *lev =
        api->bound ? evhttp_bound_socket_get_listener(api->bound) : NULL;
    if (!t || !lev)
        return RV_ERR_INVALID;
    t->listener = lev;
    listener_owner = t;
    evconnlistener_set_error_cb(lev, on_accept_error);
    /* On Linux, listen() again sets the queue of a listening socket. */
    if (listen(evconnlistener_get_fd(lev), LISTEN_BACKLOG) != 0)
        LOG(RV_LOG_WARN, NULL, NULL, "cannot raise the listen backlog: %s",
            strerror(errno));
    return RV_OK;
}

void api_conns_unlisten(struct api *api)
{
    struct api_conns *t = api->conns;
    if (!t)
        return;
    t->listener = NULL;
    if (listener_owner == t)
        listener_owner = NULL;
    evtimer_del(t->relisten);
}

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

/* ---- the interface ---- */

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
        !(t->adopt = event_new(api->base, -1, 0, on_adopt, t)) ||
        !(t->relisten = evtimer_new(api->base, on_relisten, t))) {
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
    if (listener_owner == t)
        listener_owner = NULL;
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
    budget_release(c);
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
        choose_body_cap(c, in);
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
    budget_release(c);
    return stream_take(api, c);
}

/*
 * What the files of connections share (conn.c, conn_listen.c,
 * conn_body.c), as hiredis's async_private.h: the records of connections
 * and addresses, the table that holds them, and the helpers more than one
 * of those files calls. Nothing outside them includes it; their interface
 * is in api.h.
 */
#ifndef REPOVIEW_API_CONN_PRIVATE_H
#define REPOVIEW_API_CONN_PRIVATE_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "common/log.h"

/* Where a connection is; see the top of conn.c. */
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

/* ---- conn.c ---- */

/* Each of these is described where it is defined. */
bool conn_ratelog_due(struct ratelog *r, uint64_t *n);
struct api_conn **conn_slot(struct api_conns *t,
                            const struct evhttp_connection *evcon);
const char *conn_peer_text(const struct api_peer *p, char *buf,
                           size_t size);
void conn_arm(struct api_conn *c, const struct timeval *tv);
struct api_conn *conn_register(struct api_conns *t,
                               struct evhttp_connection *evcon,
                               struct bufferevent *bev,
                               enum conn_state state);

/* ---- conn_body.c: the body budget and the cap of each body ---- */

void conn_budget_release(struct api_conn *c);
void conn_choose_body_cap(struct api_conn *c, struct evbuffer *in);
/* The input callback of every connection (conn_register sets it). */
void conn_on_input(struct evbuffer *in, const struct evbuffer_cb_info *info,
                   void *arg);

/* ---- conn_listen.c: accept, adoption, out of descriptors ---- */

/* The adopt event (api_conns_init makes it). */
void conn_on_adopt(evutil_socket_t fd, short what, void *arg);
/* The relisten timer (api_conns_init makes it). */
void conn_on_relisten(evutil_socket_t fd, short what, void *arg);
struct bufferevent *conn_bevcb(struct event_base *base, void *arg);
/* t is going: the listener's error callback must not reach it any more. */
void conn_listener_forget(struct api_conns *t);

#endif

/*
 * The listener of connections (conn.c has the rest of them): the accept,
 * the adoption of each accepted connection, and the guard against running
 * out of file descriptors.
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
 */
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/api.h"
#include "api/conn_private.h"
#include "common/errors.h"
#include "common/log.h"

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

void conn_on_adopt(evutil_socket_t fd, short what, void *arg)
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
struct bufferevent *conn_bevcb(struct event_base *base, void *arg)
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

void conn_on_relisten(evutil_socket_t fd, short what, void *arg)
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
    if (conn_ratelog_due(&t->fd_log, &n))
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
    conn_listener_forget(t);
    evtimer_del(t->relisten);
}

void conn_listener_forget(struct api_conns *t)
{
    if (listener_owner == t)
        listener_owner = NULL;
}

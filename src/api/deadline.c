/*
 * The first-request deadline of every connection (slow-loris).
 *
 * evhttp's timeouts are idle timeouts: every byte that arrives restarts
 * them, so a client that trickles its request a byte at a time holds the
 * connection for as long as the header cap lasts (16 KiB at a byte every
 * 29 s is five days). And a connection counts against REPOVIEW_MAX_CLIENTS
 * only from its first request (http.c), so nothing else bounds how many of
 * those one client may open. So every accepted connection gets a deadline:
 * its first request must have arrived in full within REPOVIEW_IO_TIMEOUT
 * of the accept, or its socket is shut down, and evhttp, reading end of
 * file, frees the connection itself. From its first request on, the
 * connection is counted and the cap bounds it.
 *
 * evhttp has no hook at accept but the one that makes the bufferevent
 * (evhttp_set_bevcb), and none when it frees a connection that never made
 * a request. So each deadline holds a reference on its bufferevent: the
 * memory and the socket stay ours to look at until the deadline is done,
 * even if evhttp freed the connection meanwhile (it clears the callbacks
 * then, which is how a fired deadline tells).
 */
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "api/api.h"
#include "common/errors.h"
#include "common/log.h"

struct api_deadline {
    struct bufferevent *bev; /* referenced until the deadline is done */
    struct event *timer;
    struct api_deadlines *owner;
    struct api_deadline *prev, *next;
};

/* Connections that have not made their first request yet. A list: the
 * first request of a connection looks its deadline up once, and a healthy
 * server has few connections between accept and first request. */
struct api_deadlines {
    struct api *api;
    struct api_deadline *head;
    size_t count;
};

/* Unlinks d, drops its reference and frees it. */
static void deadline_release(struct api_deadline *d)
{
    struct api_deadlines *t = d->owner;
    if (d->prev)
        d->prev->next = d->next;
    else
        t->head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    t->count--;
    event_free(d->timer);
    bufferevent_decref(d->bev);
    free(d);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct api_deadline *d = arg;
    bufferevent_data_cb readcb = NULL;
    bufferevent_getcb(d->bev, &readcb, NULL, NULL, NULL);
    if (readcb) {
        /* Still evhttp's and still without a first request. */
        evutil_socket_t s = bufferevent_getfd(d->bev);
        if (s >= 0)
            shutdown(s, SHUT_RDWR);
        LOG(RV_LOG_DEBUG, NULL, NULL,
            "closed a connection whose first request did not arrive "
            "within REPOVIEW_IO_TIMEOUT");
    }
    deadline_release(d);
}

/* evhttp's bufferevent factory: the one made for every accepted
 * connection, with its deadline. Without memory for the deadline the
 * connection still works, only without it. */
static struct bufferevent *deadline_bevcb(struct event_base *base, void *arg)
{
    struct api_deadlines *t = arg;
    struct bufferevent *bev =
        bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev)
        return NULL; /* evhttp tries to make its own */
    struct api_deadline *d = calloc(1, sizeof(*d));
    if (!d)
        return bev;
    if (!(d->timer = evtimer_new(base, on_deadline, d))) {
        free(d);
        return bev;
    }
    d->bev = bev;
    d->owner = t;
    bufferevent_incref(bev);
    d->next = t->head;
    if (t->head)
        t->head->prev = d;
    t->head = d;
    t->count++;
    evtimer_add(d->timer, &t->api->io_timeout);
    return bev;
}

int api_deadlines_init(struct api *api)
{
    struct api_deadlines *t = calloc(1, sizeof(*t));
    if (!t)
        return RV_ERR_NOMEM;
    t->api = api;
    api->deadlines = t;
    evhttp_set_bevcb(api->http, deadline_bevcb, t);
    return RV_OK;
}

void api_deadline_met(struct api *api, struct evhttp_connection *evcon)
{
    struct api_deadlines *t = api->deadlines;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    if (!t || !bev)
        return;
    for (struct api_deadline *d = t->head; d; d = d->next) {
        if (d->bev == bev) {
            deadline_release(d);
            return;
        }
    }
}

void api_deadlines_free(struct api *api)
{
    struct api_deadlines *t = api->deadlines;
    if (!t)
        return;
    while (t->head)
        deadline_release(t->head);
    free(t);
    api->deadlines = NULL;
}

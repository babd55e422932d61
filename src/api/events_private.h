/*
 * What the files of server-sent events share (events.c,
 * events_snapshot.c, events_sub.c), as hiredis's async_private.h: a
 * stream, the registry of streams, and the helpers more than one of those
 * files calls. Nothing outside them includes it; their interface is in
 * api.h.
 */
#ifndef REPOVIEW_API_EVENTS_PRIVATE_H
#define REPOVIEW_API_EVENTS_PRIVATE_H

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"

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

/* ---- events.c: streams ---- */

/* Each of these is described where it is defined. */
void sse_client_unlink(struct sse_client *c);
void sse_client_release(struct sse_client *c);
void sse_client_drop(struct sse_client *c, const char *why);
bool sse_client_write_chunk(struct sse_client *c, const char *chunk_head,
                            const void *data, size_t len);
const char *sse_chunk_head_for(char head[24], size_t len);
bool sse_client_write(struct sse_client *c, const void *data, size_t len);
bool sse_client_wants(const struct sse_client *c, const char *repo);
void sse_client_start(struct sse_client *c);
void sse_render_event(struct api_events *ev, struct evbuffer *b,
                      const char *type, const json_t *data);

/* ---- events_snapshot.c ---- */

/* (Re)reads the snapshots of c; live events wait in its backlog. */
void sse_snapshot_start(struct sse_client *c);

#endif

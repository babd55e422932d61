/*
 * What rconn.c (the URL parsing and the blocking client) and
 * rconn_async.c (the async client) share, and nothing else includes: the
 * reconnect backoff and the small helpers both handshakes and both
 * NOSCRIPT retries use. Like hiredis's async_private.h: not part of the
 * API in rconn.h. The helpers are static inline, so each file keeps its
 * own copy and no symbol leaves either.
 *
 * Reconnect policy (both flavours): losing an established connection allows
 * an immediate reconnect; each failed connect attempt then doubles the wait
 * before the next one, from 100 ms up to 5 s, and a success resets it.
 *
 * hiredis writes to sockets without MSG_NOSIGNAL: every binary (and test)
 * must ignore SIGPIPE, or a write to a dead Redis kills the process.
 */
#ifndef REPOVIEW_COMMON_RCONN_PRIVATE_H
#define REPOVIEW_COMMON_RCONN_PRIVATE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/rconn.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

/* "host:port", "[v6]:port" or "unix:/path", for logs and errors. */
static inline void addr_text(const struct rv_redis_addr *a, char *buf,
                             size_t size)
{
    /* Truncation is fine here: the text is only shown. */
    int n;
    if (a->is_unix)
        n = snprintf(buf, size, "unix:%.200s", a->path);
    else if (strchr(a->host, ':'))
        n = snprintf(buf, size, "[%.200s]:%d", a->host, a->port);
    else
        n = snprintf(buf, size, "%.200s:%d", a->host, a->port);
    (void)n;
}

/* The AUTH command for addr into argv/lens (3 slots); returns argc, 0 when
 * no AUTH is needed. Borrowed pointers into addr. */
static inline int auth_argv(const struct rv_redis_addr *a, const char **argv,
                            size_t *lens)
{
    if (!a->user[0] && !a->pass[0])
        return 0;
    int n = 0;
    argv[n] = "AUTH";
    lens[n++] = 4;
    if (a->user[0]) {
        argv[n] = a->user;
        lens[n++] = strlen(a->user);
    }
    argv[n] = a->pass;
    lens[n++] = strlen(a->pass);
    return n;
}

/* Whether rep is Redis's NOSCRIPT error (its script cache lost the script). */
static inline bool is_noscript(const redisReply *rep)
{
    return rep && rep->type == REDIS_REPLY_ERROR && rep->str &&
           strncmp(rep->str, "NOSCRIPT", 8) == 0;
}

#endif

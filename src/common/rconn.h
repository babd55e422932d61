/*
 * Redis connections from REPOVIEW_REDIS_URL, in two flavours:
 *   rv_rsync  - blocking (CLI, worker job loop, tests); reconnects on the
 *               next command after a failure, with backoff between tries.
 *   rv_rasync - hiredis async on a libevent base (API); reconnects by itself
 *               on a timer with exponential backoff (capped at 5 s).
 * Both send AUTH (with user when given) and SELECT before anything else, and
 * both retry a script call once with SCRIPT LOAD when Redis says NOSCRIPT.
 */
#ifndef REPOVIEW_COMMON_RCONN_H
#define REPOVIEW_COMMON_RCONN_H

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/cmd.h"

struct rv_redis_addr {
    bool is_unix;
    char host[256];
    int port;
    char path[1024];  /* unix socket path */
    char user[128];   /* empty: AUTH with password only */
    char pass[256];   /* empty: no AUTH */
    int db;
};

/* Parses redis://[user:pass@]host[:port][/db] (also rediss is refused with
 * a clear error) or unix:///path[?db=N]. Returns RV_OK or RV_ERR_CONFIG with
 * a message in err (which never contains the password). */
int rv_redis_parse_url(const char *url, struct rv_redis_addr *out, char *err,
                       size_t errlen);

/* ---- blocking ---- */

struct rv_rsync {
    redisContext *ctx;           /* NULL while disconnected */
    struct rv_redis_addr addr;
    int timeout_ms;              /* connect and command timeout */
    int64_t next_try_ms;         /* monotonic; no reconnect before this */
    int backoff_ms;
    char err[256];               /* last connection error, no secrets */
};

/* Initialises r for addr and tries to connect once. Returns RV_OK, or
 * RV_ERR_REDIS (r is still usable: later calls reconnect). */
int rv_rsync_open(struct rv_rsync *r, const struct rv_redis_addr *addr,
                  int timeout_ms);
void rv_rsync_close(struct rv_rsync *r);

/* Runs cmd (handling NOSCRIPT) and returns the reply, owned by the caller
 * (freeReplyObject), or NULL when disconnected (r->err says why). A reply of
 * type REDIS_REPLY_ERROR is returned as a reply. */
redisReply *rv_rsync_run(struct rv_rsync *r, const struct rv_cmd *cmd);

/* Sends the n commands in one write and reads their n replies, so a batch
 * costs one round trip rather than n. replies[i] is cmds[i]'s (the
 * caller's, freeReplyObject; an error reply is a reply); a script the
 * server has lost is loaded and its calls run again. RV_OK; RV_ERR_NOMEM
 * when a command failed to build (nothing is sent); RV_ERR_REDIS when the
 * connection failed, and then every replies[i] is NULL. */
int rv_rsync_pipeline(struct rv_rsync *r, const struct rv_cmd *cmds, size_t n,
                      redisReply **replies);

/* printf-style convenience over redisCommand, with reconnect. */
redisReply *rv_rsync_command(struct rv_rsync *r, const char *fmt, ...);

/* Connects now if disconnected and the backoff allows; RV_OK if connected. */
int rv_rsync_ensure(struct rv_rsync *r);

/* ---- async (libevent) ---- */

struct rv_rasync;

/* Called on every (re)connection once AUTH and SELECT succeeded, and on
 * every loss of the connection (connected = false). */
typedef void (*rv_rasync_state_cb)(struct rv_rasync *ra, bool connected,
                                   void *priv);

/* Called exactly once per command: with the reply (borrowed; valid only
 * during the call) or with NULL when the connection was lost or is closing.
 */
typedef void (*rv_rasync_reply_cb)(struct rv_rasync *ra, redisReply *reply,
                                   void *priv);

/* Creates a connection that keeps itself connected on base. Returns NULL on
 * allocation failure. The first connect starts at once. */
struct rv_rasync *rv_rasync_new(struct event_base *base,
                                const struct rv_redis_addr *addr,
                                rv_rasync_state_cb state_cb, void *priv);

/* Disconnects (pending callbacks get NULL) and frees; safe from callbacks. */
void rv_rasync_free(struct rv_rasync *ra);

bool rv_rasync_connected(const struct rv_rasync *ra);

/* Number of successful reconnects after the first connect (metrics). */
uint64_t rv_rasync_reconnects(const struct rv_rasync *ra);

/* Sends cmd; takes ownership of cmd's contents (cmd is left empty). Returns
 * RV_OK and later calls cb exactly once, or returns RV_ERR_REDIS /
 * RV_ERR_NOMEM at once and never calls cb. */
int rv_rasync_run(struct rv_rasync *ra, struct rv_cmd *cmd,
                  rv_rasync_reply_cb cb, void *priv);

/* The underlying hiredis context while connected (for SUBSCRIBE), or NULL.
 */
redisAsyncContext *rv_rasync_context(struct rv_rasync *ra);

#endif

/*
 * See rconn.h: the async Redis client (rv_rasync), hiredis's async API on
 * a libevent base, reconnecting itself on a timer. The blocking client and
 * the URL parsing are in rconn.c; what both share in rconn_private.h.
 */
#include "common/rconn.h"

#include <hiredis/adapters/libevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/log.h"
#include "common/rconn_private.h"
#include "common/scripts.h"
#include "common/util.h"

/* ---- async (libevent) ---- */

/* Lifecycle of an async connection. */
enum rasync_state {
    RA_IDLE,       /* no context; the reconnect timer may be pending */
    RA_CONNECTING, /* non-blocking connect in progress */
    RA_HANDSHAKE,  /* connected; AUTH/SELECT/PING sent, not yet answered */
    RA_READY,      /* usable; state_cb(true) was called */
};

struct rv_rasync {
    struct event_base *base;     /* borrowed; outlives ra */
    struct rv_redis_addr addr;
    char where[300];             /* addr_text(addr), for logs */
    redisAsyncContext *ac;       /* owned by hiredis; NULL while idle */
    enum rasync_state state;
    struct event *timer;         /* reconnect timer, owned */
    int backoff_ms;              /* wait before the next connect attempt */
    uint64_t reconnects;
    bool ever_connected;
    bool handshake_failed;       /* this attempt's failure is logged */
    bool freeing;                /* rv_rasync_free was called */
    int in_callback;             /* depth of user callbacks on the stack */
    rv_rasync_state_cb state_cb;
    void *priv;
};

/* Where a command is in its NOSCRIPT dance. */
enum rasync_stage {
    REQ_SENT,    /* the command itself is in flight */
    REQ_LOADING, /* it got NOSCRIPT; SCRIPT LOAD is in flight */
    REQ_RETRIED, /* the script is loaded; the retry is in flight */
};

/* One command in flight, owning its argv for the retry. Freed right after
 * its callback ran. */
struct rasync_req {
    struct rv_rasync *ra;
    struct rv_cmd cmd;
    rv_rasync_reply_cb cb;
    void *priv;
    enum rasync_stage stage;
};

static void rasync_connect(struct rv_rasync *ra);

static void rasync_really_free(struct rv_rasync *ra)
{
    if (ra->timer)
        event_free(ra->timer);
    memset(&ra->addr, 0, sizeof(ra->addr));
    free(ra);
}

/* Frees ra if rv_rasync_free asked for it and nothing can call into it any
 * more: no user callback on the stack, and no hiredis context whose
 * disconnect callback still has to run. Returns true if ra is gone. */
static bool rasync_maybe_free(struct rv_rasync *ra)
{
    if (ra->freeing && ra->in_callback == 0 && !ra->ac) {
        rasync_really_free(ra);
        return true;
    }
    return false;
}

static void rasync_schedule(struct rv_rasync *ra)
{
    if (ra->freeing)
        return;
    struct timeval tv = {ra->backoff_ms / 1000,
                         (ra->backoff_ms % 1000) * 1000};
    evtimer_add(ra->timer, &tv);
    ra->backoff_ms = ra->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                         : ra->backoff_ms * 2;
}

static void rasync_report(struct rv_rasync *ra, bool connected)
{
    if (!ra->state_cb || ra->freeing)
        return;
    ra->in_callback++;
    ra->state_cb(ra, connected, ra->priv);
    ra->in_callback--;
}

static void rasync_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rasync_connect(arg);
}

/* hiredis calls this once for a context that was connected, after it ran
 * every pending callback with NULL, and frees the context afterwards. */
static void rasync_on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rv_rasync *ra = ac->data;
    if (!ra)
        return;
    bool was_ready = ra->state == RA_READY;
    ra->ac = NULL;
    ra->state = RA_IDLE;
    if (rasync_maybe_free(ra))
        return;
    if (ra->freeing)
        return; /* a callback up the stack frees ra when it returns */
    if (was_ready) {
        LOG(RV_LOG_WARN, NULL, NULL, "connection to Redis at %s lost: %s",
            ra->where,
            status == REDIS_OK ? "closed"
                               : (ac->errstr[0] ? ac->errstr : "I/O error"));
        rasync_report(ra, false);
        if (rasync_maybe_free(ra))
            return;
    }
    rasync_schedule(ra);
}

/* Logs the first failure of a handshake and closes the connection (once
 * the replies already asked for are in; the disconnect callback then
 * schedules the next attempt). */
static void rasync_handshake_failed(struct rv_rasync *ra,
                                    redisAsyncContext *ac,
                                    const redisReply *reply)
{
    if (ra->handshake_failed || ra->freeing)
        return;
    ra->handshake_failed = true;
    char msg[256];
    snprintf(msg, sizeof(msg), "%s",
             reply ? (reply->str ? reply->str : "") : "connection lost");
    rv_log_redact(msg);
    /* The first failure of a series at error (a wrong password needs a
     * human), the retries every few seconds after it at debug. */
    rv_log_level level = !reply ? RV_LOG_WARN
                         : ra->backoff_ms == BACKOFF_MIN_MS ? RV_LOG_ERROR
                                                            : RV_LOG_DEBUG;
    LOG(level, NULL, NULL, "Redis at %s refused the connection handshake: %s",
        ra->where, msg);
    if (reply)
        redisAsyncDisconnect(ac);
}

/* Replies to AUTH and SELECT. */
static void rasync_on_handshake_step(redisAsyncContext *ac, void *r,
                                     void *privdata)
{
    (void)privdata;
    struct rv_rasync *ra = ac->data;
    redisReply *reply = r;
    if (!ra || ra->state != RA_HANDSHAKE)
        return;
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        rasync_handshake_failed(ra, ac, reply);
}

/* The last reply of the handshake (replies come in order, so AUTH and
 * SELECT were answered): the connection is ready unless one failed. */
static void rasync_on_handshake_done(redisAsyncContext *ac, void *r,
                                     void *privdata)
{
    (void)privdata;
    struct rv_rasync *ra = ac->data;
    redisReply *reply = r;
    if (!ra || ra->state != RA_HANDSHAKE)
        return;
    if (!reply || reply->type == REDIS_REPLY_ERROR || ra->handshake_failed) {
        rasync_handshake_failed(ra, ac, reply);
        return;
    }
    ra->state = RA_READY;
    ra->backoff_ms = BACKOFF_MIN_MS;
    if (ra->ever_connected)
        ra->reconnects++;
    LOG(ra->ever_connected ? RV_LOG_INFO : RV_LOG_DEBUG, NULL, NULL,
        "connected to Redis at %s", ra->where);
    ra->ever_connected = true;
    rasync_report(ra, true);
}

static void rasync_on_connect(const redisAsyncContext *ac, int status)
{
    struct rv_rasync *ra = ac->data;
    if (!ra)
        return;
    redisAsyncContext *c = (redisAsyncContext *)ac;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback, without calling
         * the disconnect callback. */
        LOG(ra->backoff_ms == BACKOFF_MIN_MS ? RV_LOG_WARN : RV_LOG_DEBUG,
            NULL, NULL, "cannot connect to Redis at %s: %s; next try in %d ms",
            ra->where, ac->errstr[0] ? ac->errstr : "error", ra->backoff_ms);
        c->data = NULL;
        ra->ac = NULL;
        ra->state = RA_IDLE;
        if (!rasync_maybe_free(ra))
            rasync_schedule(ra);
        return;
    }
    ra->state = RA_HANDSHAKE;
    ra->handshake_failed = false;
    /* Pipelined: AUTH, SELECT, then PING, whose reply decides. An error in
     * one of the first two closes the connection. */
    const char *argv[3];
    size_t lens[3];
    int argc = auth_argv(&ra->addr, argv, lens);
    int ok = REDIS_OK;
    if (argc)
        ok |= redisAsyncCommandArgv(c, rasync_on_handshake_step, NULL, argc,
                                    argv, lens);
    if (ra->addr.db) {
        char db[8];
        snprintf(db, sizeof(db), "%d", ra->addr.db);
        const char *sel[2] = {"SELECT", db};
        size_t sel_lens[2] = {6, strlen(db)};
        ok |= redisAsyncCommandArgv(c, rasync_on_handshake_step, NULL, 2, sel,
                                    sel_lens);
    }
    const char *ping[1] = {"PING"};
    size_t ping_lens[1] = {4};
    ok |= redisAsyncCommandArgv(c, rasync_on_handshake_done, NULL, 1, ping,
                                ping_lens);
    if (ok != REDIS_OK)
        redisAsyncDisconnect(c);
}

static void rasync_connect(struct rv_rasync *ra)
{
    if (ra->freeing || ra->ac)
        return;
    redisAsyncContext *ac =
        ra->addr.is_unix ? redisAsyncConnectUnix(ra->addr.path)
                         : redisAsyncConnect(ra->addr.host, ra->addr.port);
    if (!ac || ac->err) {
        LOG(ra->backoff_ms == BACKOFF_MIN_MS ? RV_LOG_WARN : RV_LOG_DEBUG,
            NULL, NULL, "cannot connect to Redis at %s: %s; next try in %d ms",
            ra->where, ac ? ac->errstr : "out of memory", ra->backoff_ms);
        if (ac)
            redisAsyncFree(ac);
        rasync_schedule(ra);
        return;
    }
    if (redisLibeventAttach(ac, ra->base) != REDIS_OK) {
        redisAsyncFree(ac);
        rasync_schedule(ra);
        return;
    }
    ac->data = ra;
    ra->ac = ac;
    ra->state = RA_CONNECTING;
    redisAsyncSetConnectCallback(ac, rasync_on_connect);
    redisAsyncSetDisconnectCallback(ac, rasync_on_disconnect);
}

struct rv_rasync *rv_rasync_new(struct event_base *base,
                                const struct rv_redis_addr *addr,
                                rv_rasync_state_cb state_cb, void *priv)
{
    struct rv_rasync *ra = calloc(1, sizeof(*ra));
    if (!ra)
        return NULL;
    ra->base = base;
    ra->addr = *addr;
    addr_text(addr, ra->where, sizeof(ra->where));
    ra->state_cb = state_cb;
    ra->priv = priv;
    ra->backoff_ms = BACKOFF_MIN_MS;
    ra->timer = evtimer_new(base, rasync_on_timer, ra);
    if (!ra->timer) {
        free(ra);
        return NULL;
    }
    rasync_connect(ra);
    return ra;
}

void rv_rasync_free(struct rv_rasync *ra)
{
    if (!ra || ra->freeing)
        return;
    ra->freeing = true;
    evtimer_del(ra->timer);
    redisAsyncContext *ac = ra->ac;
    if (ac && ra->state == RA_CONNECTING) {
        /* Not connected yet: hiredis calls neither callback. */
        ac->data = NULL;
        ra->ac = NULL;
        redisAsyncFree(ac);
    } else if (ac) {
        /* hiredis runs pending callbacks with NULL and then the disconnect
         * callback, which frees ra; from inside a hiredis callback it does
         * all that when the callback returns. Do not touch ra after this. */
        redisAsyncFree(ac);
        return;
    }
    rasync_maybe_free(ra);
}

bool rv_rasync_connected(const struct rv_rasync *ra)
{
    return ra && !ra->freeing && ra->state == RA_READY;
}

uint64_t rv_rasync_reconnects(const struct rv_rasync *ra)
{
    return ra ? ra->reconnects : 0;
}

/* Borrowed: valid until state_cb(false) or rv_rasync_free; callers must not
 * free or disconnect it. A context that ran SUBSCRIBE accepts only
 * (un)subscribe commands (RESP2), so pub/sub wants an rv_rasync of its own,
 * and the subscriptions must be sent again in state_cb(true) after every
 * reconnect. */
redisAsyncContext *rv_rasync_context(struct rv_rasync *ra)
{
    return rv_rasync_connected(ra) ? ra->ac : NULL;
}

static void rasync_req_free(struct rasync_req *req)
{
    rv_cmd_free(&req->cmd);
    free(req);
}

/* Calls the user's callback (once per request) and frees the request. */
static void rasync_deliver(struct rasync_req *req, redisReply *reply)
{
    struct rv_rasync *ra = req->ra;
    ra->in_callback++;
    req->cb(ra, reply, req->priv);
    ra->in_callback--;
    rasync_req_free(req);
    /* ra->ac is still set here (hiredis calls the disconnect callback last),
     * so this never frees ra under hiredis's feet. */
    rasync_maybe_free(ra);
}

static void rasync_on_reply(redisAsyncContext *ac, void *r, void *privdata);

static void rasync_on_load(redisAsyncContext *ac, void *r, void *privdata)
{
    struct rasync_req *req = privdata;
    redisReply *reply = r;
    if (!reply || reply->type == REDIS_REPLY_ERROR || req->ra->freeing) {
        rasync_deliver(req, reply); /* NULL, or why it does not compile */
        return;
    }
    req->stage = REQ_RETRIED;
    if (redisAsyncCommandArgv(ac, rasync_on_reply, req, req->cmd.argc,
                              (const char **)req->cmd.argv,
                              req->cmd.lens) != REDIS_OK)
        rasync_deliver(req, NULL);
}

static void rasync_on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct rasync_req *req = privdata;
    redisReply *reply = r;
    if (req->stage == REQ_SENT && req->cmd.script && is_noscript(reply) &&
        !req->ra->freeing) {
        const char *argv[3] = {"SCRIPT", "LOAD", req->cmd.script->text};
        size_t lens[3] = {6, 4, req->cmd.script->len};
        if (redisAsyncCommandArgv(ac, rasync_on_load, req, 3, argv, lens) ==
            REDIS_OK) {
            req->stage = REQ_LOADING;
            return;
        }
    }
    rasync_deliver(req, reply);
}

int rv_rasync_run(struct rv_rasync *ra, struct rv_cmd *cmd,
                  rv_rasync_reply_cb cb, void *priv)
{
    if (!rv_rasync_connected(ra)) {
        rv_cmd_free(cmd);
        return RV_ERR_REDIS;
    }
    if (cmd->failed || cmd->argc == 0) {
        rv_cmd_free(cmd);
        return RV_ERR_NOMEM;
    }
    struct rasync_req *req = calloc(1, sizeof(*req));
    if (!req) {
        rv_cmd_free(cmd);
        return RV_ERR_NOMEM;
    }
    req->ra = ra;
    req->cmd = *cmd;
    rv_cmd_init(cmd);
    req->cb = cb;
    req->priv = priv;
    req->stage = REQ_SENT;
    /* Fails when the context is disconnecting (e.g. from a callback that
     * got NULL because the connection just broke). */
    if (redisAsyncCommandArgv(ra->ac, rasync_on_reply, req, req->cmd.argc,
                              (const char **)req->cmd.argv,
                              req->cmd.lens) != REDIS_OK) {
        rasync_req_free(req);
        return RV_ERR_REDIS;
    }
    return RV_OK;
}

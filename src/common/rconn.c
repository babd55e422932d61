/* See rconn.h. */
#include "common/rconn.h"

#include <ctype.h>
#include <errno.h>
#include <hiredis/adapters/libevent.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "common/errors.h"
#include "common/log.h"
#include "common/scripts.h"
#include "common/util.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

/* ---- URL parsing ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes [s, s+len) into out. 0, or -1 if malformed/too long. */
static int pct_decode(const char *s, size_t len, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (c == '\0' || o + 1 >= size)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return RV_ERR_CONFIG;
}

int rv_redis_parse_url(const char *url, struct rv_redis_addr *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (!url || !*url)
        return fail(err, errlen, "the Redis URL is empty");
    if (strncmp(url, "rediss://", 9) == 0)
        return fail(err, errlen, "rediss:// (TLS) is not supported; use redis:// or unix://");
    if (strncmp(url, "unix://", 7) == 0) {
        const char *path = url + 7;
        const char *q = strchr(path, '?');
        size_t plen = q ? (size_t)(q - path) : strlen(path);
        if (plen == 0 || path[0] != '/' || plen >= sizeof(out->path))
            return fail(err, errlen, "unix:// needs an absolute socket path, e.g. unix:///run/redis.sock");
        memcpy(out->path, path, plen);
        out->path[plen] = '\0';
        out->is_unix = true;
        while (q && *q) {
            q++;
            const char *amp = strchr(q, '&');
            size_t n = amp ? (size_t)(amp - q) : strlen(q);
            char param[512];
            if (n >= sizeof(param))
                return fail(err, errlen, "unix:// query parameter too long");
            memcpy(param, q, n);
            param[n] = '\0';
            int64_t db;
            if (strncmp(param, "db=", 3) == 0) {
                if (rv_parse_i64(param + 3, 0, 15, &db) != 0)
                    return fail(err, errlen, "db must be a number in 0..15");
                out->db = (int)db;
            } else if (strncmp(param, "password=", 9) == 0) {
                if (pct_decode(param + 9, strlen(param + 9), out->pass, sizeof(out->pass)) != 0)
                    return fail(err, errlen, "malformed password in the Redis URL");
            } else if (strncmp(param, "user=", 5) == 0) {
                if (pct_decode(param + 5, strlen(param + 5), out->user, sizeof(out->user)) != 0)
                    return fail(err, errlen, "malformed user in the Redis URL");
            } else {
                return fail(err, errlen, "unknown unix:// parameter (known: db, user, password)");
            }
            q = amp;
        }
        return RV_OK;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return fail(err, errlen, "the Redis URL must start with redis:// or unix://");
    const char *p = url + 8;
    const char *end = p + strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *c = p; c < end; c++)
        if (*c == '@')
            at = c;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (pct_decode(p, (size_t)(colon - p), out->user, sizeof(out->user)) != 0 ||
                pct_decode(colon + 1, (size_t)(at - colon - 1), out->pass, sizeof(out->pass)) != 0)
                return fail(err, errlen, "malformed user or password in the Redis URL");
        } else if (pct_decode(p, (size_t)(at - p), out->pass, sizeof(out->pass)) != 0) {
            return fail(err, errlen, "malformed password in the Redis URL");
        }
        p = at + 1;
    }
    const char *host_end;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb)
            return fail(err, errlen, "unterminated IPv6 address in the Redis URL");
        if ((size_t)(rb - p - 1) >= sizeof(out->host) || rb == p + 1)
            return fail(err, errlen, "bad IPv6 address in the Redis URL");
        memcpy(out->host, p + 1, (size_t)(rb - p - 1));
        out->host[rb - p - 1] = '\0';
        host_end = rb + 1;
    } else {
        host_end = p;
        while (host_end < end && *host_end != ':')
            host_end++;
        size_t hlen = (size_t)(host_end - p);
        if (hlen == 0 || hlen >= sizeof(out->host))
            return fail(err, errlen, "the Redis URL has no host");
        memcpy(out->host, p, hlen);
        out->host[hlen] = '\0';
    }
    for (const char *c = out->host; *c; c++)
        if (!(isalnum((unsigned char)*c) || *c == '.' || *c == '-' || *c == ':' || *c == '_'))
            return fail(err, errlen, "the Redis URL has an invalid host");
    if (host_end < end) {
        if (*host_end != ':')
            return fail(err, errlen, "malformed Redis URL");
        char port[8];
        size_t n = (size_t)(end - host_end - 1);
        int64_t v;
        if (n == 0 || n >= sizeof(port))
            return fail(err, errlen, "the Redis port must be a number in 1..65535");
        memcpy(port, host_end + 1, n);
        port[n] = '\0';
        if (rv_parse_i64(port, 1, 65535, &v) != 0)
            return fail(err, errlen, "the Redis port must be a number in 1..65535");
        out->port = (int)v;
    }
    if (*end == '/' && end[1]) {
        int64_t db;
        if (rv_parse_i64(end + 1, 0, 15, &db) != 0)
            return fail(err, errlen, "the Redis database must be a number in 0..15");
        out->db = (int)db;
    } else if (*end == '?' || *end == '#') {
        return fail(err, errlen, "query parameters are not supported in redis:// URLs");
    }
    return RV_OK;
}

static void addr_text(const struct rv_redis_addr *a, char *buf, size_t size)
{
    if (a->is_unix)
        snprintf(buf, size, "unix:%s", a->path);
    else
        snprintf(buf, size, "%s:%d", a->host, a->port);
}

/* ---- blocking ---- */

static int rsync_handshake(struct rv_rsync *r)
{
    redisReply *rep = NULL;
    if (r->addr.pass[0]) {
        if (r->addr.user[0])
            rep = redisCommand(r->ctx, "AUTH %s %s", r->addr.user, r->addr.pass);
        else
            rep = redisCommand(r->ctx, "AUTH %s", r->addr.pass);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            snprintf(r->err, sizeof(r->err), "AUTH refused: %s",
                     rep ? rep->str : "connection lost");
            rv_log_redact(r->err);
            goto fail;
        }
        freeReplyObject(rep);
    }
    if (r->addr.db) {
        rep = redisCommand(r->ctx, "SELECT %d", r->addr.db);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            snprintf(r->err, sizeof(r->err), "SELECT %d refused", r->addr.db);
            goto fail;
        }
        freeReplyObject(rep);
    }
    return RV_OK;
fail:
    if (rep)
        freeReplyObject(rep);
    redisFree(r->ctx);
    r->ctx = NULL;
    return RV_ERR_REDIS;
}

static void rsync_drop(struct rv_rsync *r)
{
    if (r->ctx) {
        char where[1100];
        addr_text(&r->addr, where, sizeof(where));
        snprintf(r->err, sizeof(r->err), "connection to Redis at %.120s lost: %.100s", where,
                 r->ctx->errstr[0] ? r->ctx->errstr : "I/O error");
        redisFree(r->ctx);
        r->ctx = NULL;
    }
    r->next_try_ms = rv_mono_ms() + r->backoff_ms;
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

int rv_rsync_ensure(struct rv_rsync *r)
{
    if (r->ctx)
        return RV_OK;
    if (rv_mono_ms() < r->next_try_ms)
        return RV_ERR_REDIS;
    struct timeval tv = {r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000};
    r->ctx = r->addr.is_unix ? redisConnectUnixWithTimeout(r->addr.path, tv)
                             : redisConnectWithTimeout(r->addr.host, r->addr.port, tv);
    char where[1100];
    addr_text(&r->addr, where, sizeof(where));
    if (!r->ctx || r->ctx->err) {
        snprintf(r->err, sizeof(r->err), "cannot connect to Redis at %.120s: %.100s", where,
                 r->ctx ? r->ctx->errstr : "out of memory");
        if (r->ctx)
            redisFree(r->ctx);
        r->ctx = NULL;
        rsync_drop(r);
        return RV_ERR_REDIS;
    }
    redisSetTimeout(r->ctx, tv);
    if (rsync_handshake(r) != RV_OK) {
        rsync_drop(r);
        return RV_ERR_REDIS;
    }
    r->backoff_ms = BACKOFF_MIN_MS;
    r->err[0] = '\0';
    return RV_OK;
}

int rv_rsync_open(struct rv_rsync *r, const struct rv_redis_addr *addr, int timeout_ms)
{
    memset(r, 0, sizeof(*r));
    r->addr = *addr;
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    r->backoff_ms = BACKOFF_MIN_MS;
    return rv_rsync_ensure(r);
}

void rv_rsync_close(struct rv_rsync *r)
{
    if (r->ctx)
        redisFree(r->ctx);
    r->ctx = NULL;
}

/* Sends argv; NULL (and the connection dropped) on an I/O error. */
static redisReply *rsync_argv(struct rv_rsync *r, int argc, const char **argv,
                              const size_t *lens)
{
    if (rv_rsync_ensure(r) != RV_OK)
        return NULL;
    redisReply *rep = redisCommandArgv(r->ctx, argc, argv, lens);
    if (!rep)
        rsync_drop(r);
    return rep;
}

static bool is_noscript(const redisReply *rep)
{
    return rep && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0;
}

redisReply *rv_rsync_run(struct rv_rsync *r, const struct rv_cmd *cmd)
{
    if (cmd->failed || cmd->argc == 0) {
        snprintf(r->err, sizeof(r->err), "out of memory building a Redis command");
        return NULL;
    }
    redisReply *rep = rsync_argv(r, cmd->argc, (const char **)cmd->argv, cmd->lens);
    if (is_noscript(rep) && cmd->script) {
        freeReplyObject(rep);
        const char *argv[3] = {"SCRIPT", "LOAD", cmd->script->text};
        size_t lens[3] = {6, 4, cmd->script->len};
        rep = rsync_argv(r, 3, argv, lens);
        if (!rep)
            return NULL;
        freeReplyObject(rep);
        rep = rsync_argv(r, cmd->argc, (const char **)cmd->argv, cmd->lens);
    }
    return rep;
}

redisReply *rv_rsync_command(struct rv_rsync *r, const char *fmt, ...)
{
    if (rv_rsync_ensure(r) != RV_OK)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(r->ctx, fmt, ap);
    va_end(ap);
    if (!rep)
        rsync_drop(r);
    return rep;
}

/* ---- async (libevent) ---- */

/* Lifecycle of an async connection. */
enum rasync_state {
    RA_IDLE,       /* not connected; a reconnect timer may be pending */
    RA_CONNECTING, /* TCP/unix connect in progress */
    RA_HANDSHAKE,  /* connected; AUTH/SELECT sent, not yet answered */
    RA_READY,      /* usable */
};

struct rv_rasync {
    struct event_base *base;
    struct rv_redis_addr addr;
    redisAsyncContext *ac;     /* NULL while idle */
    enum rasync_state state;
    struct event *timer;       /* reconnect timer */
    int backoff_ms;
    uint64_t reconnects;
    bool ever_connected;
    bool freeing;              /* rv_rasync_free was called */
    int in_callback;           /* depth of our callbacks on the stack */
    rv_rasync_state_cb state_cb;
    void *priv;
};

/* One command in flight: owns its argv for the NOSCRIPT retry. */
struct rasync_req {
    struct rv_rasync *ra;
    struct rv_cmd cmd;
    rv_rasync_reply_cb cb;
    void *priv;
    bool retried;
};

static void rasync_connect(struct rv_rasync *ra);

static void rasync_schedule(struct rv_rasync *ra)
{
    if (ra->freeing)
        return;
    struct timeval tv = {ra->backoff_ms / 1000, (ra->backoff_ms % 1000) * 1000};
    evtimer_add(ra->timer, &tv);
    ra->backoff_ms = ra->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ra->backoff_ms * 2;
}

static void rasync_really_free(struct rv_rasync *ra)
{
    if (ra->timer)
        event_free(ra->timer);
    free(ra);
}

static void rasync_report(struct rv_rasync *ra, bool connected)
{
    if (ra->state_cb && !ra->freeing) {
        ra->in_callback++;
        ra->state_cb(ra, connected, ra->priv);
        ra->in_callback--;
    }
}

static void rasync_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rasync_connect(arg);
}

static void rasync_on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rv_rasync *ra = ac->data;
    if (!ra)
        return;
    bool was_ready = ra->state == RA_READY;
    ra->ac = NULL;
    ra->state = RA_IDLE;
    if (ra->freeing) {
        if (ra->in_callback == 0)
            rasync_really_free(ra);
        return;
    }
    char where[1100];
    addr_text(&ra->addr, where, sizeof(where));
    if (was_ready)
        LOG(RV_LOG_WARN, NULL, NULL, "Redis connection to %.200s lost%s", where,
            status == REDIS_OK ? "" : "; reconnecting");
    if (was_ready)
        rasync_report(ra, false);
    rasync_schedule(ra);
}

static void rasync_on_handshake(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct rv_rasync *ra = ac->data;
    redisReply *reply = r;
    if (!ra || ra->state != RA_HANDSHAKE)
        return;
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", reply ? reply->str : "connection lost");
        rv_log_redact(msg);
        LOG(RV_LOG_ERROR, NULL, NULL, "Redis refused the handshake: %s", msg);
        if (reply)
            redisAsyncDisconnect(ac);
        return;
    }
    ra->state = RA_READY;
    ra->backoff_ms = BACKOFF_MIN_MS;
    if (ra->ever_connected)
        ra->reconnects++;
    ra->ever_connected = true;
    char where[1100];
    addr_text(&ra->addr, where, sizeof(where));
    LOG(RV_LOG_INFO, NULL, NULL, "connected to Redis at %.200s", where);
    rasync_report(ra, true);
}

/* AUTH and SELECT: an error closes the connection (the PING that follows
 * them then gets NULL and the disconnect callback reconnects later). */
static void rasync_on_handshake_step(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_ERROR) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", reply->str);
        rv_log_redact(msg);
        LOG(RV_LOG_ERROR, NULL, NULL, "Redis refused the handshake: %s", msg);
        redisAsyncDisconnect(ac);
    }
}

static void rasync_on_connect(const redisAsyncContext *ac, int status)
{
    struct rv_rasync *ra = ac->data;
    if (!ra)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        ra->ac = NULL;
        ra->state = RA_IDLE;
        if (ra->freeing) {
            if (ra->in_callback == 0)
                rasync_really_free(ra);
            return;
        }
        rasync_schedule(ra);
        return;
    }
    ra->state = RA_HANDSHAKE;
    redisAsyncContext *c = (redisAsyncContext *)ac;
    /* The last reply of the handshake decides: PING answers after AUTH and
     * SELECT, and an error in either closes the connection first. */
    if (ra->addr.pass[0]) {
        if (ra->addr.user[0])
            redisAsyncCommand(c, rasync_on_handshake_step, NULL, "AUTH %s %s", ra->addr.user,
                              ra->addr.pass);
        else
            redisAsyncCommand(c, rasync_on_handshake_step, NULL, "AUTH %s", ra->addr.pass);
    }
    if (ra->addr.db)
        redisAsyncCommand(c, rasync_on_handshake_step, NULL, "SELECT %d", ra->addr.db);
    redisAsyncCommand(c, rasync_on_handshake, NULL, "PING");
}

static void rasync_connect(struct rv_rasync *ra)
{
    if (ra->freeing || ra->ac)
        return;
    redisAsyncContext *ac = ra->addr.is_unix ? redisAsyncConnectUnix(ra->addr.path)
                                             : redisAsyncConnect(ra->addr.host, ra->addr.port);
    if (!ac || ac->err) {
        if (ac)
            redisAsyncFree(ac);
        rasync_schedule(ra);
        return;
    }
    ac->data = ra;
    ra->ac = ac;
    ra->state = RA_CONNECTING;
    redisLibeventAttach(ac, ra->base);
    redisAsyncSetConnectCallback(ac, rasync_on_connect);
    redisAsyncSetDisconnectCallback(ac, rasync_on_disconnect);
}

struct rv_rasync *rv_rasync_new(struct event_base *base, const struct rv_redis_addr *addr,
                                rv_rasync_state_cb state_cb, void *priv)
{
    struct rv_rasync *ra = calloc(1, sizeof(*ra));
    if (!ra)
        return NULL;
    ra->base = base;
    ra->addr = *addr;
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
    if (ra->ac) {
        /* Pending callbacks get NULL; the disconnect callback frees ra. */
        redisAsyncContext *ac = ra->ac;
        if (ra->state == RA_CONNECTING) {
            ac->data = NULL;
            ra->ac = NULL;
            redisAsyncFree(ac);
        } else {
            redisAsyncFree(ac);
            return;
        }
    }
    if (ra->in_callback == 0)
        rasync_really_free(ra);
}

bool rv_rasync_connected(const struct rv_rasync *ra)
{
    return ra && ra->state == RA_READY;
}

uint64_t rv_rasync_reconnects(const struct rv_rasync *ra)
{
    return ra ? ra->reconnects : 0;
}

redisAsyncContext *rv_rasync_context(struct rv_rasync *ra)
{
    return ra && ra->state == RA_READY ? ra->ac : NULL;
}

static void rasync_req_free(struct rasync_req *req)
{
    rv_cmd_free(&req->cmd);
    free(req);
}

static void rasync_on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct rasync_req *req = privdata;
    redisReply *reply = r;
    struct rv_rasync *ra = req->ra;
    if (reply && req->cmd.script && !req->retried && reply->type == REDIS_REPLY_ERROR &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0 && ra->state == RA_READY) {
        req->retried = true;
        const char *argv[3] = {"SCRIPT", "LOAD", req->cmd.script->text};
        size_t lens[3] = {6, 4, req->cmd.script->len};
        /* Replies come in order, so the retry runs after the load. */
        if (redisAsyncCommandArgv(ac, NULL, NULL, 3, argv, lens) == REDIS_OK &&
            redisAsyncCommandArgv(ac, rasync_on_reply, req, req->cmd.argc,
                                  (const char **)req->cmd.argv, req->cmd.lens) == REDIS_OK)
            return;
        reply = NULL;
    }
    ra->in_callback++;
    req->cb(ra, reply, req->priv);
    ra->in_callback--;
    rasync_req_free(req);
}

int rv_rasync_run(struct rv_rasync *ra, struct rv_cmd *cmd, rv_rasync_reply_cb cb, void *priv)
{
    if (!ra || ra->state != RA_READY || ra->freeing) {
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
    if (redisAsyncCommandArgv(ra->ac, rasync_on_reply, req, req->cmd.argc,
                              (const char **)req->cmd.argv, req->cmd.lens) != REDIS_OK) {
        rasync_req_free(req);
        return RV_ERR_REDIS;
    }
    return RV_OK;
}

/*
 * See rconn.h.
 *
 * URLs accepted by rv_redis_parse_url:
 *   redis://host, redis://host:port/db, redis://[::1]:6379/2
 *   redis://user:pass@host   AUTH user pass (Redis 6 ACL user)
 *   redis://:pass@host       AUTH pass
 *   redis://pass@host        AUTH pass (as redis-cli reads it)
 *   unix:///path/to.sock?db=N&user=U&password=P   (each parameter optional)
 * User and password are percent-decoded (a '/', '?' or '#' in either
 * must be written %2F, %3F, %23, a ':' in the user %3A; an '@' may stay,
 * since the userinfo ends at the authority's last '@'). The scheme is
 * case-insensitive. redis:// takes no
 * query parameters; rediss:// is refused since there is no TLS.
 * rv_url_parse (url.h, libevent's parser) splits the URL; this file
 * decodes and checks the parts.
 *
 * This file holds the URL parsing and the blocking client (rv_rsync);
 * the async client (rv_rasync) is in rconn_async.c, and what both share
 * (the reconnect backoff, AUTH, NOSCRIPT) in rconn_private.h.
 */
#include "common/rconn.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/errors.h"
#include "common/log.h"
#include "common/rconn_private.h"
#include "common/scripts.h"
#include "common/url.h"
#include "common/util.h"

/* ---- URL parsing ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes [s, s+len) into out (size bytes). Returns 0, or -1 when
 * malformed, too long, or decoding to a NUL byte. */
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

/* Sets err to msg (a fixed text: never any part of the URL, which may hold
 * a password) and returns RV_ERR_CONFIG. */
static int url_fail(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    return RV_ERR_CONFIG;
}

/* Parses the query of a unix:// URL: db=N, user=U, password=P joined by
 * '&'. q points just past the '?'. */
static int parse_unix_query(const char *q, struct rv_redis_addr *out,
                            char *err, size_t errlen)
{
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t n = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', n);
        if (!eq)
            return url_fail(err, errlen,
                            "unix:// parameters must be name=value");
        size_t nlen = (size_t)(eq - q);
        const char *val = eq + 1;
        size_t vlen = n - nlen - 1;
        if (nlen == 2 && strncmp(q, "db", 2) == 0) {
            char num[8];
            int64_t db;
            if (vlen == 0 || vlen >= sizeof(num))
                return url_fail(err, errlen,
                                "the Redis database must be a number in "
                                "0..15");
            memcpy(num, val, vlen);
            num[vlen] = '\0';
            if (rv_parse_i64(num, 0, 15, &db) != 0)
                return url_fail(err, errlen,
                                "the Redis database must be a number in "
                                "0..15");
            out->db = (int)db;
        } else if (nlen == 8 && strncmp(q, "password", 8) == 0) {
            if (pct_decode(val, vlen, out->pass, sizeof(out->pass)) != 0)
                return url_fail(err, errlen,
                                "malformed password in the Redis URL");
        } else if (nlen == 4 && strncmp(q, "user", 4) == 0) {
            if (pct_decode(val, vlen, out->user, sizeof(out->user)) != 0)
                return url_fail(err, errlen,
                                "malformed user in the Redis URL");
        } else {
            return url_fail(err, errlen,
                            "unknown unix:// parameter (known: db, user, "
                            "password)");
        }
        if (!amp)
            break;
        q = amp + 1;
    }
    return RV_OK;
}

/* The sentence for a URL rv_url_parse refused. */
static int parse_fail(enum rv_url_status st, char *err, size_t errlen)
{
    switch (st) {
    case RV_URL_BAD_HOST:
        return url_fail(err, errlen, "bad IPv6 address in the Redis URL");
    case RV_URL_BAD_PORT:
        return url_fail(err, errlen,
                        "the Redis port must be a number in 1..65535");
    case RV_URL_LONG_HOST:
        return url_fail(err, errlen, "the Redis host name is too long");
    case RV_URL_NOMEM:
        return url_fail(err, errlen, "out of memory reading the Redis URL");
    default: return url_fail(err, errlen, "malformed Redis URL");
    }
}

static int parse_unix_url(const struct rv_url *u, struct rv_redis_addr *out,
                          char *err, size_t errlen)
{
    size_t plen = strlen(u->path);
    if (u->has_userinfo || u->host[0] || u->has_port || plen < 2 ||
        u->path[0] != '/')
        return url_fail(err, errlen,
                        "unix:// needs an absolute socket path, e.g. "
                        "unix:///run/redis.sock");
    if (u->fragment)
        return url_fail(err, errlen, "unix:// URLs take no fragment (#)");
    /* sun_path holds 108 bytes on Linux, with the NUL. */
    if (plen >= 108 || plen >= sizeof(out->path))
        return url_fail(err, errlen,
                        "the Redis socket path is too long (107 bytes at "
                        "most)");
    memcpy(out->path, u->path, plen + 1);
    out->is_unix = true;
    return u->query ? parse_unix_query(u->query, out, err, errlen) : RV_OK;
}

/* Parses the userinfo "[user:]pass" p[0, len) into out. */
static int parse_userinfo(const char *p, size_t len, struct rv_redis_addr *out,
                          char *err, size_t errlen)
{
    const char *colon = memchr(p, ':', len);
    if (!colon) {
        if (pct_decode(p, len, out->pass, sizeof(out->pass)))
            return url_fail(err, errlen, "malformed password in the Redis URL");
        return RV_OK;
    }
    size_t ulen = (size_t)(colon - p);
    if (pct_decode(p, ulen, out->user, sizeof(out->user)))
        return url_fail(err, errlen, "malformed user in the Redis URL");
    if (pct_decode(colon + 1, len - ulen - 1, out->pass, sizeof(out->pass)))
        return url_fail(err, errlen, "malformed password in the Redis URL");
    return RV_OK;
}

/* A redis:// URL, split by rv_url_parse; url is its text. */
static int parse_redis_url(const char *url, const struct rv_url *u,
                           struct rv_redis_addr *out, char *err, size_t errlen)
{
    int rc;
    if (u->has_userinfo &&
        (rc = parse_userinfo(url + u->userinfo_at, u->userinfo_len, out, err,
                             errlen)) != RV_OK)
        return rc;
    if (!u->host[0])
        return url_fail(err, errlen, "the Redis URL has no host");
    for (const char *c = u->host; !u->is_ipv6 && *c; c++)
        if (!(isalnum((unsigned char)*c) || *c == '.' || *c == '-' ||
              *c == '_'))
            return url_fail(err, errlen, "the Redis URL has an invalid host");
    if (rv_strlcpy(out->host, u->host, sizeof(out->host)) != 0)
        return url_fail(err, errlen, "the Redis host name is too long");
    if (u->has_port) {
        if (u->port < 1)
            return url_fail(err, errlen,
                            "the Redis port must be a number in 1..65535");
        out->port = u->port;
    }
    if (u->query || u->fragment)
        return url_fail(err, errlen,
                        "query parameters are not supported in redis:// "
                        "URLs");
    if (u->path[0] == '/' && u->path[1]) {
        int64_t db;
        if (!isdigit((unsigned char)u->path[1]) ||
            rv_parse_i64(u->path + 1, 0, 15, &db) != 0)
            return url_fail(err, errlen,
                            "the Redis database must be a number in 0..15");
        out->db = (int)db;
    }
    return RV_OK;
}

static int parse_url(const char *url, struct rv_redis_addr *out, char *err,
                     size_t errlen)
{
    if (!url || !*url)
        return url_fail(err, errlen, "the Redis URL is empty");
    for (const char *c = url; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return url_fail(err, errlen,
                            "the Redis URL contains a blank or a control "
                            "character");
    if (strncasecmp(url, "rediss://", 9) == 0)
        return url_fail(err, errlen,
                        "TLS is not supported (rediss://); use redis:// or "
                        "unix://");
    bool is_unix = strncasecmp(url, "unix://", 7) == 0;
    if (!is_unix && strncasecmp(url, "redis://", 8) != 0)
        return url_fail(err, errlen,
                        "the Redis URL must start with redis:// or unix://");
    struct rv_url u;
    enum rv_url_status st = rv_url_parse(url, &u);
    if (st != RV_URL_OK)
        return is_unix ? url_fail(err, errlen,
                                  "unix:// needs an absolute socket path, "
                                  "e.g. unix:///run/redis.sock")
                       : parse_fail(st, err, errlen);
    int rc = is_unix ? parse_unix_url(&u, out, err, errlen)
                     : parse_redis_url(url, &u, out, err, errlen);
    rv_url_free(&u);
    return rc;
}

int rv_redis_parse_url(const char *url, struct rv_redis_addr *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (err && errlen)
        err[0] = '\0';
    int rc = parse_url(url, out, err, errlen);
    if (rc != RV_OK) {
        /* Leave no half-parsed credentials behind. */
        memset(out, 0, sizeof(*out));
        out->port = 6379;
    }
    return rc;
}

/* ---- blocking ---- */

/* Sends one handshake command; on refusal or I/O error writes why into
 * r->err and returns RV_ERR_REDIS. */
static int rsync_step(struct rv_rsync *r, const char *what, int argc,
                      const char **argv, const size_t *lens)
{
    redisReply *rep = redisCommandArgv(r->ctx, argc, argv, lens);
    int rc = RV_OK;
    char where[300];
    addr_text(&r->addr, where, sizeof(where));
    if (!rep) {
        snprintf(r->err, sizeof(r->err),
                 "connection to Redis at %.120s lost during %s: %.80s", where,
                 what, r->ctx->errstr[0] ? r->ctx->errstr : "I/O error");
        rc = RV_ERR_REDIS;
    } else if (rep->type == REDIS_REPLY_ERROR) {
        /* Redis's texts (WRONGPASS, NOAUTH, ERR DB index...) never echo
         * the password; redaction is a second line of defence. */
        snprintf(r->err, sizeof(r->err), "Redis at %.120s refused %s: %.100s",
                 where, what, rep->str ? rep->str : "");
        rv_log_redact(r->err);
        rc = RV_ERR_REDIS;
    }
    if (rep)
        freeReplyObject(rep);
    return rc;
}

/* AUTH, SELECT, or a PING when neither was needed, so that a server that
 * wants a password is reported at connect time, not at the first command. */
static int rsync_handshake(struct rv_rsync *r)
{
    const char *argv[3];
    size_t lens[3];
    int argc = auth_argv(&r->addr, argv, lens);
    if (argc && rsync_step(r, "AUTH", argc, argv, lens) != RV_OK)
        return RV_ERR_REDIS;
    if (r->addr.db) {
        char db[8];
        snprintf(db, sizeof(db), "%d", r->addr.db);
        const char *sel[2] = {"SELECT", db};
        size_t sel_lens[2] = {6, strlen(db)};
        return rsync_step(r, "SELECT", 2, sel, sel_lens);
    }
    if (!argc) {
        const char *ping[1] = {"PING"};
        size_t ping_lens[1] = {4};
        return rsync_step(r, "PING", 1, ping, ping_lens);
    }
    return RV_OK;
}

/* Frees the context after an I/O error on an established connection. The
 * next call may reconnect at once: a server that closed an idle client or
 * restarted is usually back. */
static void rsync_drop(struct rv_rsync *r)
{
    if (!r->ctx)
        return;
    char where[300];
    addr_text(&r->addr, where, sizeof(where));
    snprintf(r->err, sizeof(r->err),
             "connection to Redis at %.120s lost: %.100s", where,
             r->ctx->errstr[0] ? r->ctx->errstr : "I/O error");
    LOG(RV_LOG_WARN, NULL, NULL, "%s", r->err);
    redisFree(r->ctx);
    r->ctx = NULL;
    r->next_try_ms = 0;
    r->backoff_ms = BACKOFF_MIN_MS;
}

/* Records a failed connect attempt: no new try for backoff_ms, which then
 * doubles. Logs the first failure of a series at warn, later ones at debug
 * (a worker polls every second while Redis is down). */
static void rsync_connect_failed(struct rv_rsync *r)
{
    if (r->ctx) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
    LOG(r->backoff_ms == BACKOFF_MIN_MS ? RV_LOG_WARN : RV_LOG_DEBUG, NULL,
        NULL, "%s; next try in %d ms", r->err, r->backoff_ms);
    r->next_try_ms = rv_mono_ms() + r->backoff_ms;
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                       : r->backoff_ms * 2;
}

int rv_rsync_ensure(struct rv_rsync *r)
{
    if (r->ctx)
        return RV_OK;
    if (r->next_try_ms && rv_mono_ms() < r->next_try_ms) {
        if (!r->err[0])
            snprintf(r->err, sizeof(r->err), "Redis is unreachable");
        return RV_ERR_REDIS;
    }
    struct timeval tv = {r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000};
    char where[300];
    addr_text(&r->addr, where, sizeof(where));
    bool was_down = r->err[0] != '\0';
    r->ctx = r->addr.is_unix
                 ? redisConnectUnixWithTimeout(r->addr.path, tv)
                 : redisConnectWithTimeout(r->addr.host, r->addr.port, tv);
    if (!r->ctx || r->ctx->err) {
        snprintf(r->err, sizeof(r->err),
                 "cannot connect to Redis at %.120s: %.100s", where,
                 r->ctx ? r->ctx->errstr : "out of memory");
        rsync_connect_failed(r);
        return RV_ERR_REDIS;
    }
    if (redisSetTimeout(r->ctx, tv) != REDIS_OK) {
        snprintf(r->err, sizeof(r->err),
                 "cannot set the timeout on the connection to %.120s", where);
        rsync_connect_failed(r);
        return RV_ERR_REDIS;
    }
    if (!r->addr.is_unix)
        redisEnableKeepAlive(r->ctx);
    if (rsync_handshake(r) != RV_OK) {
        rsync_connect_failed(r);
        return RV_ERR_REDIS;
    }
    r->backoff_ms = BACKOFF_MIN_MS;
    r->next_try_ms = 0;
    r->err[0] = '\0';
    LOG(was_down ? RV_LOG_INFO : RV_LOG_DEBUG, NULL, NULL,
        "connected to Redis at %s", where);
    return RV_OK;
}

int rv_rsync_open(struct rv_rsync *r, const struct rv_redis_addr *addr,
                  int timeout_ms)
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

/* Sends argv and returns the reply (caller frees), or NULL with r->err set
 * and the connection dropped on an I/O error. */
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

/* SCRIPT LOAD of script: the reply (the caller's), NULL when disconnected. */
static redisReply *load_script(struct rv_rsync *r,
                               const struct rv_script *script)
{
    const char *argv[3] = {"SCRIPT", "LOAD", script->text};
    size_t lens[3] = {6, 4, script->len};
    return rsync_argv(r, 3, argv, lens);
}

redisReply *rv_rsync_run(struct rv_rsync *r, const struct rv_cmd *cmd)
{
    if (cmd->failed) {
        snprintf(r->err, sizeof(r->err), "out of memory");
        return NULL;
    }
    if (cmd->argc == 0) {
        snprintf(r->err, sizeof(r->err), "empty Redis command");
        return NULL;
    }
    redisReply *rep =
        rsync_argv(r, cmd->argc, (const char **)cmd->argv, cmd->lens);
    if (!is_noscript(rep) || !cmd->script)
        return rep;
    /* The server lost its script cache (restart, SCRIPT FLUSH, failover):
     * load the script and retry once. */
    freeReplyObject(rep);
    rep = load_script(r, cmd->script);
    if (!rep || rep->type == REDIS_REPLY_ERROR)
        return rep; /* NULL, or why the script does not compile */
    freeReplyObject(rep);
    return rsync_argv(r, cmd->argc, (const char **)cmd->argv, cmd->lens);
}

static void free_replies(redisReply **replies, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (replies[i])
            freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
}

/* Appends cmds[i] for every i with want[i] (every i when want is NULL) and
 * reads their replies into replies[i]. RV_OK, or RV_ERR_REDIS with the
 * connection dropped. */
static int pipeline_round(struct rv_rsync *r, const struct rv_cmd *cmds,
                          size_t n, const bool *want, redisReply **replies)
{
    for (size_t i = 0; i < n; i++) {
        if (want && !want[i])
            continue;
        if (redisAppendCommandArgv(r->ctx, cmds[i].argc,
                                   (const char **)cmds[i].argv,
                                   cmds[i].lens) != REDIS_OK)
            goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (want && !want[i])
            continue;
        void *rep = NULL;
        if (redisGetReply(r->ctx, &rep) != REDIS_OK || !rep)
            goto fail;
        replies[i] = rep;
    }
    return RV_OK;
fail:
    rsync_drop(r);
    return RV_ERR_REDIS;
}

int rv_rsync_pipeline(struct rv_rsync *r, const struct rv_cmd *cmds, size_t n,
                      redisReply **replies)
{
    for (size_t i = 0; i < n; i++) {
        replies[i] = NULL;
        if (cmds[i].failed || cmds[i].argc == 0) {
            snprintf(r->err, sizeof(r->err), "out of memory");
            return RV_ERR_NOMEM;
        }
    }
    if (n == 0)
        return RV_OK;
    bool *again = NULL;
    int rc = rv_rsync_ensure(r);
    if (rc == RV_OK)
        rc = pipeline_round(r, cmds, n, NULL, replies);
    /* Calls of a script the server has lost (a restart, SCRIPT FLUSH): each
     * such script is loaded once, and those calls go again in one batch. The
     * rest of the batch has already run and is not repeated. */
    bool lost = false;
    for (size_t i = 0; rc == RV_OK && i < n; i++)
        lost = lost || (cmds[i].script && is_noscript(replies[i]));
    if (rc == RV_OK && lost && !(again = calloc(n, sizeof(*again))))
        rc = RV_ERR_NOMEM;
    for (size_t i = 0; rc == RV_OK && lost && i < n; i++) {
        if (!cmds[i].script || !is_noscript(replies[i]))
            continue;
        bool loaded = false;
        for (size_t j = 0; j < i && !loaded; j++)
            loaded = again[j] && cmds[j].script == cmds[i].script;
        if (!loaded) {
            redisReply *rep = load_script(r, cmds[i].script);
            rc = rep && rep->type != REDIS_REPLY_ERROR ? RV_OK : RV_ERR_REDIS;
            if (rep)
                freeReplyObject(rep);
        }
        again[i] = true;
        freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
    if (rc == RV_OK && lost)
        rc = pipeline_round(r, cmds, n, again, replies);
    free(again);
    if (rc != RV_OK)
        free_replies(replies, n);
    return rc;
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

/*
 * One URL parser for every URL repoview reads: REPOVIEW_REDIS_URL
 * (rconn.c), remote git URLs (util.c, urlpolicy.c) and the GitHub API
 * base (config.c). libevent's evhttp_uri_parse_with_flags does the RFC
 * 3986 splitting (scheme, authority, host with [IPv6], port, path,
 * query, fragment); this wrapper adds what libevent does not:
 *   - the userinfo ends at the authority's last '@', as browsers, curl
 *     and rv_url_strip_credentials read it (libevent refuses a second
 *     '@'), so a password holding '@' is one userinfo, not a host;
 *   - an IPv6 literal is checked with inet_pton and handed out without
 *     its brackets (libevent keeps them and takes any [text]);
 *   - "host:" (an empty port, which libevent reads as no port) is told
 *     apart from "host", and a port of more than five digits is refused;
 *   - a control character (CR, LF, TAB, ...) anywhere is refused, which
 *     EVHTTP_URI_NONCONFORMANT would let through in a path or query;
 *   - a refusal says whether the host or the port was at fault.
 * NONCONFORMANT because git takes paths RFC 3986 does not ("a b", "%zz",
 * UTF-8 bytes); a blank in the path is the caller's to judge. The host
 * stays strict: libevent refuses any byte a reg-name may not hold.
 * Percent-decoding is the caller's: only rconn.c decodes (the Redis user
 * and password); a remote URL goes to git as written.
 */
#ifndef REPOVIEW_COMMON_URL_H
#define REPOVIEW_COMMON_URL_H

#include <stdbool.h>
#include <stddef.h>

#define RV_URL_HOST_MAX 256

struct evhttp_uri;

enum rv_url_status {
    RV_URL_OK = 0,
    RV_URL_MALFORMED, /* no scheme://authority, or libevent refuses it */
    RV_URL_BAD_HOST,  /* an unterminated [ or a [...] that is no IPv6 */
    RV_URL_BAD_PORT,  /* a port that is not 1 to 5 digits up to 65535 */
    RV_URL_LONG_HOST, /* a host of RV_URL_HOST_MAX bytes or more */
    RV_URL_NOMEM,
};

struct rv_url {
    const char *scheme; /* as written ("HTTPS" stays upper case) */
    bool has_userinfo;  /* "userinfo@" before the host, maybe empty */
    size_t userinfo_at; /* userinfo: url[at, at + len), without the '@' */
    size_t userinfo_len;
    char host[RV_URL_HOST_MAX]; /* "" when empty; IPv6 without brackets */
    bool is_ipv6;               /* the host was written [v6] */
    size_t host_at;             /* the host as written, brackets included, */
    size_t host_len;            /* is url[host_at, host_at + host_len) */
    bool has_port;              /* a ':' after the host, even with no digits */
    int port;                   /* 0..65535, or -1 when none or empty */
    const char *path;           /* never NULL, "" when empty; not decoded */
    const char *query;          /* after '?', NULL when none; not decoded */
    const char *fragment;       /* after '#', NULL when none */
    struct evhttp_uri *uri;     /* owns scheme, path, query and fragment */
};

/* Splits url, which must be scheme://authority[/path][?query][#fragment]
 * (scp-like user@host:path and local paths are the callers': they are no
 * URLs to RFC 3986). RV_URL_OK with *u filled, which the caller releases
 * with rv_url_free; the offsets point into url, the strings live until
 * rv_url_free. Any other status leaves *u empty (rv_url_free is then
 * harmless). The port is not range-checked beyond 65535: a caller that
 * needs 1..65535 checks port >= 1. */
enum rv_url_status rv_url_parse(const char *url, struct rv_url *u);

/* Releases what u owns and empties it. */
void rv_url_free(struct rv_url *u);

#endif

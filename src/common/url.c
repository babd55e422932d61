/* See url.h: libevent's URI parser, with the userinfo, IPv6 and port
 * rules it does not apply. */
#include "common/url.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* True for a port written as 1 to 5 digits, at most 65535. */
static bool port_text_ok(const char *s, size_t n)
{
    unsigned v = 0;
    if (n == 0 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v <= 65535;
}

/* Copies [s, s + n) into out (size bytes) when it is an IPv6 address
 * inet_pton takes (no zone: libevent refuses "%25eth0" already). */
static bool v6_literal(const char *s, size_t n, char *out, size_t size)
{
    struct in6_addr a;
    if (n == 0 || n >= size)
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    return inet_pton(AF_INET6, out, &a) == 1;
}

/* Why libevent refused a URL, judged by its host and port text hp[0, n):
 * a caller's message can then name the host or the port. */
static enum rv_url_status diagnose(const char *hp, size_t n)
{
    char v6[RV_URL_HOST_MAX];
    const char *colon;
    if (n > 0 && hp[0] == '[') {
        const char *close = memchr(hp, ']', n);
        if (!close ||
            !v6_literal(hp + 1, (size_t)(close - hp - 1), v6, sizeof(v6)))
            return RV_URL_BAD_HOST;
        colon = close + 1;
        if (colon == hp + n)
            return RV_URL_MALFORMED;
        if (*colon != ':')
            return RV_URL_BAD_PORT;
    } else if (!(colon = memchr(hp, ':', n))) {
        return RV_URL_MALFORMED;
    }
    size_t plen = n - (size_t)(colon + 1 - hp);
    return port_text_ok(colon + 1, plen) ? RV_URL_MALFORMED : RV_URL_BAD_PORT;
}

/* Fills the host and port of u from libevent's host (as written, brackets
 * kept) and the host and port text hp[0, n) it came from. */
static enum rv_url_status host_and_port(struct rv_url *u, const char *host,
                                        const char *hp, size_t n)
{
    size_t hlen = strlen(host);
    if (hlen > n || memcmp(hp, host, hlen) != 0)
        return RV_URL_MALFORMED; /* libevent read another host */
    if (hlen >= sizeof(u->host))
        return RV_URL_LONG_HOST;
    if (hlen > 0 && host[0] == '[') {
        if (hlen < 2 || host[hlen - 1] != ']' ||
            !v6_literal(host + 1, hlen - 2, u->host, sizeof(u->host)))
            return RV_URL_BAD_HOST; /* [v1.x], IPvFuture: no address */
        u->is_ipv6 = true;
    } else {
        memcpy(u->host, host, hlen + 1);
    }
    u->has_port = hlen < n && hp[hlen] == ':';
    /* libevent takes any number of leading zeros. */
    if (u->has_port && n - hlen - 1 > 5)
        return RV_URL_BAD_PORT;
    return RV_URL_OK;
}

enum rv_url_status rv_url_parse(const char *url, struct rv_url *u)
{
    memset(u, 0, sizeof(*u));
    u->port = -1;
    const char *sep = url ? strstr(url, "://") : NULL;
    if (!sep)
        return RV_URL_MALFORMED;
    /* EVHTTP_URI_NONCONFORMANT lets a path or query hold any byte, CR and
     * LF too (which would split an HTTP request line): no URL here may. */
    for (const char *c = url; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return RV_URL_MALFORMED;
    const char *auth = sep + 3, *hp = auth;
    size_t authlen = strcspn(auth, "/?#"), start, end;
    if (rv_url_userinfo(url, &start, &end)) {
        u->has_userinfo = true;
        u->userinfo_at = start;
        u->userinfo_len = end - 1 - start;
        hp = url + end;
    }
    size_t hplen = (size_t)(auth + authlen - hp);

    /* libevent sees the URL without its userinfo: it would refuse a
     * second '@' and escapes it does not like, which the caller judges. */
    size_t head = (size_t)(auth - url), tail = strlen(hp);
    char *text = malloc(head + tail + 1);
    if (!text)
        return RV_URL_NOMEM;
    memcpy(text, url, head);
    memcpy(text + head, hp, tail + 1);
    struct evhttp_uri *uri =
        evhttp_uri_parse_with_flags(text, EVHTTP_URI_NONCONFORMANT);
    free(text);
    if (!uri) {
        memset(u, 0, sizeof(*u));
        u->port = -1;
        return diagnose(hp, hplen);
    }
    u->uri = uri;
    const char *scheme = evhttp_uri_get_scheme(uri);
    const char *host = evhttp_uri_get_host(uri);
    enum rv_url_status st = RV_URL_MALFORMED;
    /* "a/b://x" is a path to libevent: no scheme, no authority. */
    if (!scheme || !host || strlen(scheme) != (size_t)(sep - url))
        goto fail;
    if ((st = host_and_port(u, host, hp, hplen)) != RV_URL_OK)
        goto fail;
    u->host_at = (size_t)(hp - url);
    u->host_len = strlen(host);
    u->scheme = scheme;
    u->port = evhttp_uri_get_port(uri);
    u->path = evhttp_uri_get_path(uri) ? evhttp_uri_get_path(uri) : "";
    u->query = evhttp_uri_get_query(uri);
    u->fragment = evhttp_uri_get_fragment(uri);
    return RV_URL_OK;
fail:
    rv_url_free(u);
    return st;
}

void rv_url_free(struct rv_url *u)
{
    if (u->uri)
        evhttp_uri_free(u->uri);
    memset(u, 0, sizeof(*u));
    u->port = -1;
}

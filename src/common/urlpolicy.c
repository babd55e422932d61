/* See urlpolicy.h. The address classes the checks refuse by are in
 * addrclass.c. */
#include "common/urlpolicy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/config.h"
#include "common/errors.h"
#include "common/url.h"
#include "common/util.h"

#define HOST_MAX 256
#define PATH_BUF 4096

static void say(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t whylen, const char *fmt, ...)
{
    if (!why || whylen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/* ---- lists and patterns ---- */

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

/* Splits a comma-separated text into trimmed, non-empty items. RV_OK or
 * RV_ERR_NOMEM; *out is NULL when there are none. */
static int split_list(const char *text, char ***out, size_t *count)
{
    *out = NULL;
    *count = 0;
    if (!text)
        return RV_OK;
    size_t cap = 1;
    for (const char *p = text; *p; p++)
        cap += *p == ',';
    char **list = calloc(cap, sizeof(*list));
    if (!list)
        return RV_ERR_NOMEM;
    size_t n = 0;
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *s = p, *e = end;
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        if (e > s) {
            if (!(list[n] = strndup(s, (size_t)(e - s)))) {
                free_list(list, n);
                return RV_ERR_NOMEM;
            }
            n++;
        }
        p = *end ? end + 1 : end;
    }
    if (n == 0) {
        free(list);
        list = NULL;
    }
    *out = list;
    *count = n;
    return RV_OK;
}

static bool host_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

/* A pattern is a host name, an address, or "*." before a host name. */
static bool pattern_valid(const char *pat)
{
    const char *p = strncmp(pat, "*.", 2) == 0 ? pat + 2 : pat;
    if (!*p)
        return false;
    struct in_addr v4;
    struct in6_addr v6;
    if (p == pat && rv_host_parse_addr(p, &v4, &v6))
        return true;
    for (; *p; p++)
        if (!host_char(*p))
            return false;
    return true;
}

/* An address matches as an address: "[2001:db8::1]", "2001:db8::1" and
 * "2001:db8:0::1" are one host, whichever of them the pattern or the URL
 * spells (URL hosts come bracketed from the scp form, bare from the
 * parser). */
static bool pattern_match(const char *pat, const char *host)
{
    struct in_addr pv4, hv4;
    struct in6_addr pv6, hv6;
    int pf = rv_host_parse_addr(pat, &pv4, &pv6);
    if (pf) {
        int hf = rv_host_parse_addr(host, &hv4, &hv6);
        if (hf != pf)
            return false;
        return pf == 4 ? memcmp(&pv4, &hv4, sizeof(pv4)) == 0
                       : memcmp(&pv6, &hv6, sizeof(pv6)) == 0;
    }
    if (strncmp(pat, "*.", 2) != 0)
        return strcasecmp(pat, host) == 0;
    size_t hl = strlen(host), sl = strlen(pat + 1); /* ".example.com" */
    return hl > sl && strcasecmp(host + hl - sl, pat + 1) == 0;
}

static bool any_match(char **pats, size_t n, const char *host)
{
    for (size_t i = 0; i < n; i++)
        if (pattern_match(pats[i], host))
            return true;
    return false;
}

/* ---- paths ---- */

/* Resolves ".", ".." and repeated '/' of an absolute path by its text
 * alone (no file system access). RV_OK or RV_ERR_INVALID. */
static int lexical_normalize(const char *path, char *out, size_t size)
{
    if (path[0] != '/' || size < 2)
        return RV_ERR_INVALID;
    size_t n = 0;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 1 && p[0] == '.') {
            /* nothing */
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            while (n > 0 && out[n - 1] != '/')
                n--;
            if (n > 0)
                n--; /* the '/' before the dropped component */
        } else {
            if (n + 1 + len + 1 > size)
                return RV_ERR_INVALID;
            out[n++] = '/';
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
    }
    if (n == 0)
        out[n++] = '/';
    out[n] = '\0';
    return RV_OK;
}

/* The canonical form of a configured directory: realpath when it exists,
 * else its lexical form. */
static int canonical_dir(const char *dir, char **out)
{
    char lex[PATH_BUF], real[PATH_MAX];
    if (lexical_normalize(dir, lex, sizeof(lex)) != RV_OK)
        return RV_ERR_CONFIG;
    const char *use = realpath(lex, real) ? real : lex;
    size_t n = strlen(use);
    if (n > 1 && use[n - 1] == '/')
        n--;
    *out = strndup(use, n);
    return *out ? RV_OK : RV_ERR_NOMEM;
}

static bool under_dir(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/')
        return path[0] == '/';
    return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static bool under_any(const struct rv_url_policy *p, const char *path)
{
    for (size_t i = 0; i < p->nlocal; i++)
        if (under_dir(path, p->local_dirs[i]))
            return true;
    return false;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

bool rv_url_is_local(const char *url)
{
    return url && (url[0] == '/' || strncasecmp(url, "file://", 7) == 0);
}

/* The path a local URL names: file:// URLs percent-decoded, as libgit2
 * reads them. RV_OK, or RV_ERR_INVALID (a host in a file URL, a NUL
 * escape, too long). */
static int local_path_of(const char *url, char *out, size_t size)
{
    const char *p = url;
    bool decode = false;
    if (strncasecmp(url, "file://", 7) == 0) {
        p = url + 7;
        decode = true;
        if (*p != '/')
            return RV_ERR_INVALID; /* file://host/... */
    }
    size_t n = 0;
    for (; *p; p++) {
        char c = *p;
        if (decode && c == '%') {
            int hi = hexval(p[1]), lo = hi >= 0 ? hexval(p[2]) : -1;
            if (lo < 0 || (hi == 0 && lo == 0))
                return RV_ERR_INVALID;
            c = (char)(hi * 16 + lo);
            p += 2;
        }
        if (n + 1 >= size)
            return RV_ERR_INVALID;
        out[n++] = c;
    }
    out[n] = '\0';
    return RV_OK;
}

/* ---- loading ---- */

int rv_url_policy_init(struct rv_url_policy *p, const char *schemes,
                       const char *local_dirs, bool allow_private,
                       const char *allowed_hosts, const char *blocked_hosts,
                       char *err, size_t errlen)
{
    char **items = NULL, **dirs = NULL;
    size_t n = 0, ndirs = 0;
    int rc;
    memset(p, 0, sizeof(*p));
    p->allow_private = allow_private;
    if ((rc = split_list(schemes ? schemes : "https,ssh,git", &items, &n)) !=
        RV_OK)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        static const struct {
            const char *name;
            unsigned bit;
        } known[] = {{"https", RV_SCHEME_HTTPS},
                     {"http", RV_SCHEME_HTTP},
                     {"ssh", RV_SCHEME_SSH},
                     {"git", RV_SCHEME_GIT}};
        unsigned bit = 0;
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
            if (strcasecmp(items[i], known[k].name) == 0)
                bit = known[k].bit;
        if (!bit) {
            say(err, errlen,
                "REPOVIEW_ALLOWED_SCHEMES (--allowed-schemes): \"%.40s\" is "
                "not one of https, "
                "http, ssh, git (local paths are opened by "
                "REPOVIEW_ALLOW_LOCAL_PATHS)",
                items[i]);
            free_list(items, n);
            rc = RV_ERR_CONFIG;
            goto fail;
        }
        p->schemes |= bit;
    }
    free_list(items, n);
    if ((rc = split_list(local_dirs, &dirs, &ndirs)) != RV_OK)
        goto nomem;
    if (ndirs) {
        p->local_dirs = calloc(ndirs, sizeof(*p->local_dirs));
        if (!p->local_dirs) {
            free_list(dirs, ndirs);
            goto nomem;
        }
    }
    for (size_t i = 0; i < ndirs; i++) {
        rc = canonical_dir(dirs[i], &p->local_dirs[p->nlocal]);
        if (rc != RV_OK) {
            if (rc == RV_ERR_CONFIG)
                say(err, errlen,
                    "REPOVIEW_ALLOW_LOCAL_PATHS (--allow-local-paths): "
                    "\"%.200s\" is not an "
                    "absolute directory",
                    dirs[i]);
            free_list(dirs, ndirs);
            if (rc == RV_ERR_NOMEM)
                goto nomem;
            goto fail;
        }
        p->nlocal++;
    }
    free_list(dirs, ndirs);
    const char *names[2] = {
        "REPOVIEW_ALLOWED_HOSTS_REMOTE (--allowed-hosts-remote)",
        "REPOVIEW_BLOCKED_HOSTS_REMOTE (--blocked-hosts-remote)"};
    const char *texts[2] = {allowed_hosts, blocked_hosts};
    char ***lists[2] = {&p->allowed_hosts, &p->blocked_hosts};
    size_t *counts[2] = {&p->nallowed, &p->nblocked};
    for (int k = 0; k < 2; k++) {
        if ((rc = split_list(texts[k], lists[k], counts[k])) != RV_OK)
            goto nomem;
        for (size_t i = 0; i < *counts[k]; i++) {
            char *pat = (*lists[k])[i];
            for (char *c = pat; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            if (!pattern_valid(pat)) {
                say(err, errlen,
                    "%s: \"%.100s\" is not a host, an address or *.domain",
                    names[k], pat);
                rc = RV_ERR_CONFIG;
                goto fail;
            }
        }
    }
    return RV_OK;
nomem:
    say(err, errlen, "out of memory reading the URL policy");
    rc = RV_ERR_NOMEM;
fail:
    rv_url_policy_free(p);
    return rc;
}

int rv_url_policy_load(struct rv_url_policy *p, const struct rv_config *cfg,
                       char *err, size_t errlen)
{
    return rv_url_policy_init(p, cfg->allowed_schemes, cfg->allow_local_paths,
                              cfg->allow_private_networks != 0,
                              cfg->allowed_hosts_remote,
                              cfg->blocked_hosts_remote, err, errlen);
}

void rv_url_policy_free(struct rv_url_policy *p)
{
    free_list(p->local_dirs, p->nlocal);
    free_list(p->allowed_hosts, p->nallowed);
    free_list(p->blocked_hosts, p->nblocked);
    memset(p, 0, sizeof(*p));
}

/* ---- checks ---- */

static const char *private_hint =
    "; set REPOVIEW_ALLOW_PRIVATE_NETWORKS=true to allow it";

int rv_url_policy_check_host(const struct rv_url_policy *p, const char *host,
                             char *why, size_t whylen)
{
    char h[HOST_MAX];
    size_t n = host ? strlen(host) : 0;
    if (n == 0 || n >= sizeof(h)) {
        say(why, whylen, "the URL names no usable host");
        return RV_ERR_URL_NOT_ALLOWED;
    }
    for (size_t i = 0; i <= n; i++)
        h[i] = (char)tolower((unsigned char)host[i]);
    if (n > 1 && h[n - 1] == '.')
        h[--n] = '\0'; /* "example.com." is example.com */
    struct in_addr v4;
    struct in6_addr v6;
    int family = rv_host_parse_addr(h, &v4, &v6);
    if (!family) {
        for (const char *c = h; *c; c++)
            if (!host_char(*c)) {
                say(why, whylen,
                    "the host name holds characters no host name has");
                return RV_ERR_URL_NOT_ALLOWED;
            }
    }
    if (any_match(p->blocked_hosts, p->nblocked, h)) {
        say(why, whylen,
            "the host is refused by REPOVIEW_BLOCKED_HOSTS_REMOTE");
        return RV_ERR_URL_NOT_ALLOWED;
    }
    if (p->nallowed && !any_match(p->allowed_hosts, p->nallowed, h)) {
        say(why, whylen,
            "the host is not in REPOVIEW_ALLOWED_HOSTS_REMOTE");
        return RV_ERR_URL_NOT_ALLOWED;
    }
    if (p->allow_private)
        return RV_OK;
    const char *klass = family == 4   ? rv_addr_class_v4(&v4)
                        : family == 6 ? rv_addr_class_v6(&v6)
                                      : NULL;
    size_t hl = strlen(h);
    if (!family && (strcmp(h, "localhost") == 0 ||
                    (hl > 10 && strcmp(h + hl - 10, ".localhost") == 0)))
        klass = "loopback";
    if (klass) {
        say(why, whylen, "the host is a %s address%s", klass, private_hint);
        return RV_ERR_URL_NOT_ALLOWED;
    }
    return RV_OK;
}

int rv_url_policy_check_addr(const struct rv_url_policy *p,
                             const struct sockaddr *sa, char *why,
                             size_t whylen)
{
    const char *klass = NULL;
    if (sa->sa_family == AF_INET)
        klass = rv_addr_class_v4(&((const struct sockaddr_in *)sa)->sin_addr);
    else if (sa->sa_family == AF_INET6)
        klass =
            rv_addr_class_v6(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    else
        klass = "non-IP";
    if (!klass || p->allow_private)
        return RV_OK;
    say(why, whylen, "the host resolves to a %s address%s", klass,
        private_hint);
    return RV_ERR_URL_NOT_ALLOWED;
}

/* The refusal of a path outside the allowed directories. */
static int outside(char *why, size_t whylen, const char *how)
{
    say(why, whylen,
        "the path leads%s outside the directories REPOVIEW_ALLOW_LOCAL_PATHS "
        "allows",
        how);
    return RV_ERR_URL_NOT_ALLOWED;
}

int rv_url_policy_local_path(const struct rv_url_policy *p, const char *url,
                             char *out, size_t outlen, char *why,
                             size_t whylen)
{
    char raw[PATH_BUF], lex[PATH_BUF], real[PATH_MAX];
    if (!rv_url_is_local(url) ||
        local_path_of(url, raw, sizeof(raw)) != RV_OK ||
        lexical_normalize(raw, lex, sizeof(lex)) != RV_OK) {
        say(why, whylen, "the URL is not a valid local path");
        return RV_ERR_INVALID;
    }
    if (p->nlocal == 0) {
        say(why, whylen,
            "local paths are not allowed; an operator allows directories "
            "with REPOVIEW_ALLOW_LOCAL_PATHS");
        return RV_ERR_URL_NOT_ALLOWED;
    }
    /* The text first, so nothing outside the directories is ever looked
     * at (an answer would tell which paths exist). */
    if (!under_any(p, lex))
        return outside(why, whylen, "");
    if (!realpath(lex, real)) {
        say(why, whylen, "the local path does not exist");
        return RV_ERR_NOT_FOUND;
    }
    if (!under_any(p, real))
        return outside(why, whylen, " (through a symbolic link)");
    if (out && rv_strlcpy(out, real, outlen) != 0) {
        say(why, whylen, "the local path is too long");
        return RV_ERR_INVALID;
    }
    return RV_OK;
}

/* The host of an scp-like [user@]host:path (or [user@][v6]:path) into h. */
static int scp_host(const char *url, char *h, size_t size)
{
    const char *at = strchr(url, '@');
    const char *colon = strchr(url, ':');
    const char *s = at && (!colon || at < colon) ? at + 1 : url;
    const char *e;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        e = close + 1;
    } else {
        e = strchr(s, ':');
    }
    if (!e || e == s || (size_t)(e - s) >= size)
        return -1;
    memcpy(h, s, (size_t)(e - s));
    h[e - s] = '\0';
    return 0;
}

/* rv_url_policy_check, and for a local URL the resolved path into out
 * (when out is not NULL), where a path that does not exist is
 * RV_ERR_NOT_FOUND instead of the worker's to judge. */
static int policy_check(const struct rv_url_policy *p, const char *url,
                        char *out, size_t outlen, char *why, size_t whylen)
{
    if (!rv_remote_url_valid(url)) {
        /* rv_remote_url_valid refuses credentials too: say so first. */
        char stripped[2100];
        if (url && strlen(url) < sizeof(stripped) &&
            rv_url_strip_credentials(url, stripped, sizeof(stripped)) == 0 &&
            strcmp(stripped, url) != 0) {
            say(why, whylen,
                "the URL must not contain a password or token; repoview "
                "never stores credentials: set GITHUB_TOKEN for HTTPS "
                "remotes instead");
            return RV_ERR_URL_NOT_ALLOWED;
        }
        say(why, whylen,
            "the URL must be https://, http://, ssh://, git:// or file:// "
            "with a host or path, user@host:path, or an absolute path");
        return RV_ERR_INVALID;
    }
    if (strchr(url, '#')) {
        say(why, whylen,
            "the URL must not have a fragment (#...): it can carry a token");
        return RV_ERR_URL_NOT_ALLOWED;
    }
    if (strchr(url, '?')) {
        say(why, whylen,
            "the URL must not have a query string (?...): it can carry a "
            "token");
        return RV_ERR_URL_NOT_ALLOWED;
    }
    if (rv_url_is_local(url)) {
        if (!p)
            return RV_OK;
        int rc = rv_url_policy_local_path(p, url, out, outlen, why, whylen);
        /* The API may run where the worker's directories are not: a path
         * that is not there yet is the worker's to judge. */
        return rc == RV_ERR_NOT_FOUND && !out ? RV_OK : rc;
    }
    unsigned scheme;
    const char *scheme_name;
    char h[HOST_MAX];
    if (strstr(url, "://")) {
        /* rv_remote_url_valid took the URL: its scheme is one of these,
         * in lower case, and rv_url_parse reads it. */
        struct rv_url u;
        if (rv_url_parse(url, &u) != RV_URL_OK || !u.host[0]) {
            rv_url_free(&u);
            say(why, whylen, "the URL names no usable host");
            return RV_ERR_INVALID;
        }
        scheme = !strcasecmp(u.scheme, "https")  ? RV_SCHEME_HTTPS
                 : !strcasecmp(u.scheme, "http") ? RV_SCHEME_HTTP
                 : !strcasecmp(u.scheme, "ssh")  ? RV_SCHEME_SSH
                                                 : RV_SCHEME_GIT;
        scheme_name = scheme == RV_SCHEME_HTTPS  ? "https"
                      : scheme == RV_SCHEME_HTTP ? "http"
                      : scheme == RV_SCHEME_SSH  ? "ssh"
                                                 : "git";
        /* A credential: a password, any userinfo on http(s) (a token),
         * any on git:// (which has no users). */
        bool has_credential =
            u.has_userinfo &&
            (scheme != RV_SCHEME_SSH ||
             memchr(url + u.userinfo_at, ':', u.userinfo_len) != NULL);
        rv_strlcpy(h, u.host, sizeof(h));
        rv_url_free(&u);
        if (has_credential) {
            say(why, whylen,
                "the URL must not contain a password or token; repoview "
                "never stores credentials: set GITHUB_TOKEN for HTTPS "
                "remotes instead");
            return RV_ERR_URL_NOT_ALLOWED;
        }
    } else {
        scheme = RV_SCHEME_SSH;
        scheme_name = "ssh";
        const char *at = strchr(url, '@');
        if (at && memchr(url, ':', (size_t)(at - url))) {
            say(why, whylen,
                "the URL must not contain a password or token; repoview "
                "never stores credentials");
            return RV_ERR_URL_NOT_ALLOWED;
        }
        if (scp_host(url, h, sizeof(h)) != 0) {
            say(why, whylen, "the URL names no usable host");
            return RV_ERR_INVALID;
        }
    }
    if (!p)
        return RV_OK;
    if (!(p->schemes & scheme)) {
        say(why, whylen,
            "the %s scheme is not allowed; REPOVIEW_ALLOWED_SCHEMES lists "
            "those that are",
            scheme_name);
        return RV_ERR_URL_NOT_ALLOWED;
    }
    return rv_url_policy_check_host(p, h, why, whylen);
}

int rv_url_policy_check(const struct rv_url_policy *p, const char *url,
                        char *why, size_t whylen)
{
    return policy_check(p, url, NULL, 0, why, whylen);
}

int rv_url_policy_resolve(const struct rv_url_policy *p, const char *url,
                          char *out, size_t outlen, char *why, size_t whylen)
{
    if (outlen)
        out[0] = '\0';
    return policy_check(p, url, outlen ? out : NULL, outlen, why, whylen);
}

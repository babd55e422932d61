/* See orglist.h. */
#include "worker/orglist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/dynbuf.h"
#include "common/errors.h"
#include "common/log.h"
#include "common/util.h"
#include "worker/prsync_private.h"

/* Entries at most, whatever the pages say. */
#define MAX_ENTRIES ((size_t)RV_ORGLIST_MAX_PAGES * 100)

void rv_org_listing_init(struct rv_org_listing *l)
{
    memset(l, 0, sizeof(*l));
    l->total = -1;
}

void rv_org_listing_free(struct rv_org_listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].clone_url);
    free(l->v);
    rv_org_listing_init(l);
}

/* A repository name as GitHub allows them: 1-100 of [A-Za-z0-9._-], not
 * "." or "..". */
static bool repo_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 100 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
            return false;
    return true;
}

/* A GitHub login: 1-39 of [A-Za-z0-9_-] (the hyphen rules are GitHub's
 * to keep; a name it sends is checked for shape only; Enterprise Managed
 * Users' logins end in _<shortcode>). */
static bool login_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 39)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return false;
    return true;
}

/* Reads one repository object (a GitHub answer's or a stored page's: the
 * names of the members differ) into e. 0, or -1 with what in why. */
static int read_entry(json_t *o, bool stored, struct rv_org_entry *e,
                      const char **why)
{
    json_t *id = json_object_get(o, "id");
    json_t *name = json_object_get(o, "name");
    json_t *owner = stored
                        ? json_object_get(o, "owner")
                        : json_object_get(json_object_get(o, "owner"), "login");
    json_t *archived = json_object_get(o, "archived");
    json_t *clone = json_object_get(o, stored ? "cloneUrl" : "clone_url");
    *why = "a repository is not an object";
    if (!json_is_object(o))
        return -1;
    *why = "a repository has no positive integer id";
    if (!json_is_integer(id) || json_integer_value(id) <= 0)
        return -1;
    *why = "a repository has a missing or invalid name";
    if (!json_is_string(name) || !repo_name_valid(json_string_value(name)))
        return -1;
    *why = "a repository has a missing or invalid owner login";
    if (!json_is_string(owner) || !login_valid(json_string_value(owner)))
        return -1;
    *why = "a repository's archived is not a boolean";
    if (!json_is_boolean(archived))
        return -1;
    *why = "a repository has no clone_url";
    if (!json_is_string(clone) || json_string_length(clone) == 0 ||
        json_string_length(clone) > 1000)
        return -1;
    e->github_id = json_integer_value(id);
    rv_strlcpy(e->name, json_string_value(name), sizeof(e->name));
    rv_strlcpy(e->owner, json_string_value(owner), sizeof(e->owner));
    e->archived = json_is_true(archived);
    e->clone_url = NULL;
    return 0;
}

/* Appends the repositories of array repos to out (and, when page is not
 * NULL, their stored form to page["repos"]). */
static int add_entries(json_t *repos, bool stored, struct rv_org_listing *out,
                       json_t *page, struct rv_sync_error *err)
{
    json_t *kept = page ? json_object_get(page, "repos") : NULL;
    size_t i;
    json_t *o;
    json_array_foreach(repos, i, o)
    {
        struct rv_org_entry e;
        const char *why;
        if (read_entry(o, stored, &e, &why) != 0) {
            rv_sync_error_set(err, RV_ERR_BAD_RESPONSE,
                              "GitHub's repository listing is malformed: %s",
                              why);
            return RV_ERR_DECODE;
        }
        int rc = rv_grow(&out->v, &out->cap, out->n + 1, sizeof(*out->v),
                         MAX_ENTRIES);
        if (rc == RV_ERR_TOO_LARGE) {
            rv_sync_error_set(err, RV_ERR_BAD_RESPONSE,
                              "GitHub's repository listing has more than %zu "
                              "repositories",
                              MAX_ENTRIES);
            return RV_ERR_TOO_LARGE;
        }
        const char *url = json_string_value(
            json_object_get(o, stored ? "cloneUrl" : "clone_url"));
        if (rc != RV_OK || !(e.clone_url = strdup(url)))
            return RV_ERR_NOMEM;
        out->v[out->n++] = e;
        if (kept && json_array_append_new(
                        kept, json_pack("{s:I,s:s,s:s,s:b,s:s}", "id",
                                        (json_int_t)e.github_id, "name", e.name,
                                        "owner", e.owner, "archived",
                                        e.archived, "cloneUrl", url)) != 0)
            return RV_ERR_NOMEM;
    }
    return RV_OK;
}

int rv_orglist_parse_page(const char *body, size_t len, bool installation,
                          struct rv_org_listing *out, json_t *page,
                          struct rv_sync_error *err)
{
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        rv_sync_error_set(err, RV_ERR_BAD_RESPONSE,
                          "GitHub's repository listing is not JSON");
        return RV_ERR_DECODE;
    }
    json_t *repos = installation ? json_object_get(doc, "repositories") : doc;
    json_t *total = installation ? json_object_get(doc, "total_count") : NULL;
    out->total = json_is_integer(total) && json_integer_value(total) >= 0
                     ? json_integer_value(total)
                     : -1;
    if (page)
        json_object_set_new(page, "total", json_integer(out->total));
    int rc;
    if (!json_is_array(repos)) {
        rv_sync_error_set(err, RV_ERR_BAD_RESPONSE,
                          "GitHub's repository listing has no %s",
                          installation ? "repositories array" : "array");
        rc = RV_ERR_DECODE;
    } else
        rc = add_entries(repos, false, out, page, err);
    json_decref(doc);
    return rc;
}

int rv_orglist_next_link(const char *link, const char *rest, char *buf,
                         size_t size)
{
    return rv_orglist_link(link, rest, "next", buf, size);
}

int rv_orglist_link(const char *link, const char *rest, const char *rel,
                    char *buf, size_t size)
{
    char want[32];
    size_t wl = (size_t)snprintf(want, sizeof(want), "rel=\"%s\"", rel);
    buf[0] = '\0';
    if (!link || !*link)
        return 0;
    /* link: <url>; rel="next", <url>; rel="last" (GitHub's form; a URL
     * holds no '>' and no ','). */
    const char *p = link;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        if (*p != '<')
            return -1;
        const char *end = strchr(p, '>');
        if (!end)
            return -1;
        const char *params = end + 1;
        const char *next = strchr(params, ',');
        size_t plen = next ? (size_t)(next - params) : strlen(params);
        bool is_next = false;
        for (size_t i = 0; wl < sizeof(want) && i + wl <= plen; i++)
            if (strncasecmp(params + i, want, wl) == 0)
                is_next = true;
        if (is_next) {
            size_t n = (size_t)(end - p - 1);
            size_t rl = strlen(rest);
            if (n + 1 > size || n <= rl || strncmp(p + 1, rest, rl) != 0 ||
                p[1 + rl] != '/')
                return -1;
            memcpy(buf, p + 1, n);
            buf[n] = '\0';
            for (size_t i = 0; i < n; i++)
                if ((unsigned char)buf[i] <= ' ' || buf[i] == 0x7f) {
                    buf[0] = '\0';
                    return -1;
                }
            return 1;
        }
        p = params + plen;
    }
    return 0;
}

/* The stored page n of opts->cached, when it was for url; else NULL. */
static json_t *cached_page(const struct rv_orglist_opts *opts, int n,
                           const char *url)
{
    char key[16];
    snprintf(key, sizeof(key), "%d", n);
    json_t *page = opts->cached ? json_object_get(opts->cached, key) : NULL;
    const char *was = json_string_value(json_object_get(page, "url"));
    const char *etag = json_string_value(json_object_get(page, "etag"));
    if (!was || strcmp(was, url) != 0 || !etag || !*etag ||
        !json_is_array(json_object_get(page, "repos")) ||
        !json_is_string(json_object_get(page, "next")))
        return NULL;
    return page;
}

/* One request of the listing, with the budget hooks around it. */
static int request(const struct rv_orglist_opts *opts, const char *url,
                   const char *etag, struct prsync_response *r,
                   struct rv_sync_error *err)
{
    const struct rv_prsync_hooks *h = opts->hooks;
    int rc;
    if (h && h->before_request && (rc = h->before_request(h->ud, err)) != 0)
        return rc;
    rc = github_http_get(url, opts->token, etag,
                         opts->timeout_s > 0 ? opts->timeout_s : 30, r, err);
    if (h && h->after_request) {
        struct rv_github_budget b = {.status = rc == RV_OK ? r->status : 0,
                                     .remaining = r->ratelimit_remaining,
                                     .limit = r->ratelimit_limit,
                                     .cost = -1,
                                     .reset_ms = r->ratelimit_reset_ms,
                                     .secondary = rc == RV_OK &&
                                                  prsync_is_secondary_limit(r),
                                     .retry_at_ms = r->retry_after_ms};
        h->after_request(h->ud, &b);
    }
    return rc;
}

/* Reads page n at url into out and *page (a new stored page, with its
 * rel="next" and rel="last", "" when absent); next_url gets its next ("" at
 * the end). */
static int read_page(const struct rv_orglist_opts *opts, int n, const char *url,
                     struct prsync_response *r, struct rv_org_listing *out,
                     json_t **page, char *next_url, size_t next_size,
                     bool *not_modified, struct rv_sync_error *err)
{
    json_t *old = cached_page(opts, n, url);
    const char *etag =
        old ? json_string_value(json_object_get(old, "etag")) : NULL;
    int rc = request(opts, url, etag, r, err);
    if (rc != RV_OK)
        return rc;
    *not_modified = r->status == 304 && old;
    if (*not_modified) {
        rv_strlcpy(next_url, json_string_value(json_object_get(old, "next")),
                   next_size);
        *page = json_incref(old);
        json_t *total = json_object_get(old, "total");
        out->total = json_is_integer(total) ? json_integer_value(total) : -1;
        return add_entries(json_object_get(old, "repos"), true, out, NULL, err);
    }
    if (r->status == 404 && n == 1) {
        rv_sync_error_set(err, RV_ERR_NOT_FOUND,
                          "GitHub has no such owner, or the token cannot "
                          "list its repositories (HTTP 404)");
        return RV_ERR_HTTP;
    }
    if (r->status != 200)
        return prsync_http_error(r, opts->token && *opts->token, err);
    int has = r->link_bad ? -1
                          : rv_orglist_next_link(r->link, opts->rest, next_url,
                                                 next_size);
    char last[2048];
    if (has >= 0 &&
        rv_orglist_link(r->link, opts->rest, "last", last, sizeof(last)) < 0)
        has = -1;
    if (has < 0) {
        rv_sync_error_set(err, RV_ERR_BAD_RESPONSE,
                          "GitHub's Link header is malformed or leads away "
                          "from the API");
        return RV_ERR_DECODE;
    }
    *page = json_pack("{s:s,s:s,s:s,s:[]}", "url", url, "etag", r->etag, "next",
                      next_url, "repos");
    if (!*page)
        return RV_ERR_NOMEM;
    return rv_orglist_parse_page(r->body.buf ? r->body.buf : "", r->body.len,
                                 opts->installation, out, *page, err);
}

int rv_orglist_fetch(const struct rv_orglist_opts *opts,
                     struct rv_org_listing *out, json_t **pages,
                     struct rv_orglist_stats *stats, struct rv_sync_error *err)
{
    memset(stats, 0, sizeof(*stats));
    *pages = json_object();
    char *url = malloc(2048), *next = malloc(2048);
    struct prsync_response r;
    memset(&r, 0, sizeof(r));
    rv_dynbuf_init(&r.body, RV_PRSYNC_MAX_BODY_DEFAULT);
    int rc = RV_OK;
    if (!*pages || !url || !next) {
        rc = RV_ERR_NOMEM;
        goto out;
    }
    int max = opts->max_pages > 0 ? opts->max_pages : RV_ORGLIST_MAX_PAGES;
    rv_strlcpy(url, opts->first_url, 2048);
    const char *last_said = NULL; /* page 1's rel="last", in *pages */
    for (int n = 1; url[0]; n++) {
        if (n > max) {
            rv_sync_error_set(err, RV_ERR_BAD_RESPONSE,
                              "the repository listing has more than %d "
                              "pages; nothing was changed",
                              max);
            rc = RV_ERR_TOO_LARGE;
            goto out;
        }
        if (opts->deadline_ms > 0 && rv_mono_ms() > opts->deadline_ms) {
            rv_sync_error_set(err, RV_ERR_GITHUB_UNAVAILABLE,
                              "the repository listing took too long (%d "
                              "pages read); nothing was changed",
                              n - 1);
            rc = RV_ERR_TIMEOUT;
            goto out;
        }
        json_t *page = NULL;
        bool not_modified = false;
        rc = read_page(opts, n, url, &r, out, &page, next, 2048, &not_modified,
                       err);
        char key[16];
        snprintf(key, sizeof(key), "%d", n);
        if (page && json_object_set_new(*pages, key, page) != 0 && rc == RV_OK)
            rc = RV_ERR_NOMEM;
        if (rc != RV_OK)
            goto out;
        stats->pages++;
        stats->not_modified += not_modified;
        if (n == 1)
            last_said = json_string_value(json_object_get(page, "last"));
        if (!next[0] && last_said && last_said[0] && n > 1 &&
            strcmp(url, last_said) != 0) {
            /* Page 1 said where the listing ends; it ended elsewhere, so
             * it grew or shrank while being read. */
            rv_sync_error_set(err, RV_ERR_GITHUB_UNAVAILABLE,
                              "the repository listing changed while it was "
                              "read; nothing was changed");
            rc = RV_ERR_RETRY;
            goto out;
        }
        rv_strlcpy(url, next, 2048);
    }
out:
    if (rc == RV_ERR_NOMEM && err->code == RV_OK)
        rv_sync_error_set(err, RV_ERR_INTERNAL, "out of memory");
    rv_dynbuf_free(&r.body);
    free(url);
    free(next);
    return rc;
}

int rv_orglist_unchanged(const struct rv_orglist_opts *opts,
                         const json_t *pages, bool *unchanged,
                         struct rv_sync_error *err)
{
    *unchanged = true;
    struct prsync_response r;
    memset(&r, 0, sizeof(r));
    rv_dynbuf_init(&r.body, RV_PRSYNC_MAX_BODY_DEFAULT);
    int rc = RV_OK;
    for (size_t n = 1; rc == RV_OK && *unchanged; n++) {
        if (opts->deadline_ms > 0 && rv_mono_ms() > opts->deadline_ms) {
            rv_sync_error_set(err, RV_ERR_GITHUB_UNAVAILABLE,
                              "the repository listing took too long; "
                              "nothing was changed");
            rc = RV_ERR_TIMEOUT;
            break;
        }
        char key[24];
        snprintf(key, sizeof(key), "%zu", n);
        json_t *page = json_object_get(pages, key);
        if (!page)
            break;
        const char *url = json_string_value(json_object_get(page, "url"));
        const char *etag = json_string_value(json_object_get(page, "etag"));
        if (!url || !etag || !etag[0]) {
            *unchanged = false; /* no ETag to ask with: cannot tell */
            break;
        }
        rc = request(opts, url, etag, &r, err);
        if (rc == RV_OK && r.status != 304)
            *unchanged = false;
    }
    rv_dynbuf_free(&r.body);
    return rc;
}

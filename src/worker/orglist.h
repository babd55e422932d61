/*
 * An org's repository listing from GitHub's REST API, paged and
 * conditional: GET /installation/repositories (an installation token) or
 * /orgs/{owner}/repos, /users/{owner}/repos (the PAT, or no token), 100 a
 * page, following the Link header's rel="next" (only to a URL under the
 * REST base the listing started from, so a token is never sent elsewhere).
 * Each page is asked with the ETag it had last time; a 304 (which GitHub
 * does not count against the rate limit) reuses the page as stored.
 *
 * The stored form of a page (the org's rv:org:{id}:pages hash, one value a
 * page) is compact JSON:
 *   {"url","etag","next","last","total",
 *    "repos":[{"id","name","owner","archived","cloneUrl"}]}
 * (total: the installation listing's total_count, -1 when not said).
 */
#ifndef REPOVIEW_WORKER_ORGLIST_H
#define REPOVIEW_WORKER_ORGLIST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/prsync.h"
#include "worker/sync.h"

/* Pages read at most (100 repos each); a longer listing fails the sync
 * rather than removing the repos it did not reach. */
#define RV_ORGLIST_MAX_PAGES 200

/* One repository of a listing. */
struct rv_org_entry {
    int64_t github_id;
    char name[101];  /* GitHub repository name */
    char owner[40];  /* its owner's login, as GitHub spells it */
    bool archived;
    char *clone_url; /* malloc'd */
};

/* Entries in listing order; zero it, free it with rv_org_listing_free. */
struct rv_org_listing {
    struct rv_org_entry *v;
    size_t n, cap;
    /* total_count of the last installation page read (stored or fresh);
     * -1 when not said (the PAT's listings never say). */
    int64_t total;
};

/* Empties l (total -1). */
void rv_org_listing_init(struct rv_org_listing *l);
void rv_org_listing_free(struct rv_org_listing *l);

/* Parses one 200 answer (body[0..len), any bytes): an object with a
 * "repositories" array when installation, else an array. Every repository
 * needs a positive integer id, a valid name, owner.login, a boolean
 * archived and a clone_url string; anything else is bad_response. Appends
 * to out (setting out->total) and, when page is not NULL, to the array
 * page["repos"] in the stored form. RV_OK, RV_ERR_DECODE (err filled)
 * or RV_ERR_NOMEM. */
int rv_orglist_parse_page(const char *body, size_t len, bool installation,
                          struct rv_org_listing *out, json_t *page,
                          struct rv_sync_error *err);

/* The rel="next" URL of a Link header value into buf. 1 when there is one
 * under rest (rest + "/..."), 0 when there is none, -1 when the header is
 * malformed or points elsewhere (or does not fit). */
int rv_orglist_next_link(const char *link, const char *rest, char *buf,
                         size_t size);

/* The URL of relation rel ("next", "last") of a Link header value, as
 * rv_orglist_next_link. */
int rv_orglist_link(const char *link, const char *rest, const char *rel,
                    char *buf, size_t size);

struct rv_orglist_opts {
    const char *rest;      /* REST base, no trailing slash. Borrowed. */
    const char *first_url; /* the listing's first page. Borrowed. */
    bool installation;     /* the answers are /installation/repositories' */
    const char *token;     /* bearer; NULL or "" = none. Borrowed. */
    int timeout_s;         /* per request; <= 0 = 30 */
    int max_pages;         /* <= 0 = RV_ORGLIST_MAX_PAGES */
    json_t *cached;        /* last pages: {"1":{page},...}, or NULL */
    const struct rv_prsync_hooks *hooks; /* budget and slots; may be NULL */
    int64_t deadline_ms; /* rv_mono_ms() by which the listing ends; 0 none */
    const char *repo_id, *job_id;        /* log lines; may be NULL */
};

struct rv_orglist_stats {
    int pages;        /* pages in the listing */
    int not_modified; /* of which answered 304 */
};

/* Reads the whole listing into out and the pages to store into *pages
 * (new object, as opts->cached). A 404 of the first page is not_found.
 * RV_OK, or a failure with err filled (as rv_prsync_run's), out and
 * *pages then partial or NULL (the caller frees out either way). */
int rv_orglist_fetch(const struct rv_orglist_opts *opts,
                     struct rv_org_listing *out, json_t **pages,
                     struct rv_orglist_stats *stats,
                     struct rv_sync_error *err);

/* Asks every page of pages (as rv_orglist_fetch stored them) again with
 * its ETag: *unchanged stays true only when every answer is a 304 (which
 * costs no budget), i.e. nothing moved while the listing was read. RV_OK,
 * or a failure as rv_orglist_fetch's. */
int rv_orglist_unchanged(const struct rv_orglist_opts *opts,
                         const json_t *pages, bool *unchanged,
                         struct rv_sync_error *err);

#endif

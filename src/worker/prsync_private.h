/*
 * What the files of a PR sync share, and nothing else includes:
 *   prsync.c       the driver (rv_prsync_run) and the GraphQL endpoint
 *   github_http.c  libcurl's options, body callback, the headers read after
 *                  it, and one REST request (used by ghauth.c too)
 *   prerror.c      GitHub's HTTP and GraphQL errors as rv_sync_error codes
 *   prparse.c      one answer: its shape, its PRs, its cursor
 * Like hiredis's async_private.h: not part of the worker's API.
 */
#ifndef REPOVIEW_WORKER_PRSYNC_PRIVATE_H
#define REPOVIEW_WORKER_PRSYNC_PRIVATE_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dynbuf.h"
#include "worker/prsync.h"
#include "worker/sync.h"

/* One HTTP answer: the body (capped) and the headers that matter. */
struct prsync_response {
    struct rv_dynbuf body; /* capped at the largest body we read */
    bool too_large;        /* the body passed body.max */
    bool nomem;            /* growing the body failed */
    long status;
    long ratelimit_remaining;   /* -1 when absent */
    long ratelimit_limit;       /* -1 when absent */
    int64_t ratelimit_reset_ms; /* 0 when absent */
    int64_t retry_after_ms;     /* absolute epoch ms; 0 when absent */
    /* ETag and Link of a REST answer, "" when absent or too long to be
     * GitHub's (then a listing is fetched unconditionally, or fails). */
    char etag[128];
    char link[2048];
    /* A Link header came but could not be kept (given twice, or longer
     * than link): a listing must not take it for "no next page". */
    bool link_bad;
};

/* ---- github_http.c ---- */

/* libcurl's CURLOPT_WRITEFUNCTION; ud is a struct prsync_response. Appends
 * to r->body, up to r->body.max bytes; returns 0,
 * which aborts the transfer, when it would pass max (too_large) or
 * memory runs out (nomem). */
size_t prsync_on_body(char *ptr, size_t size, size_t nmemb, void *ud);

/* Reads the rate-limit headers of the answer just received (the last
 * one of the transfer) with curl_easy_header, and Retry-After (seconds or
 * an HTTP date) with CURLINFO_RETRY_AFTER, into r. */
void prsync_read_headers(CURL *curl, struct prsync_response *r);

/* Sets r's rate-limit fields from header values (absent ones cleared;
 * unparsable ones taken as absent). */
void prsync_set_headers(struct prsync_response *r,
                        const struct rv_github_headers *h);

/* Empties r for the next request, keeping its body buffer and max. */
void prsync_response_reset(struct prsync_response *r);

/* Sets what every request to GitHub shares on curl: http(s) only, no
 * redirects, no signals, our User-Agent, any content encoding, the
 * deadline (timeout_s in all, min(10, timeout_s) to connect), r->max as
 * the body cap, errbuf (CURL_ERROR_SIZE bytes) and the body callback
 * filling r. headers (may be NULL) is borrowed until the transfer ends. */
void github_http_setup(CURL *curl, struct curl_slist *headers, int timeout_s,
                       struct prsync_response *r, char *errbuf);

/* Turns a transfer that curl_easy_perform failed (cc) into err: too large
 * or undecodable answers are bad_response, a timeout or no connection
 * github_unavailable. Returns the rv_err to hand back (RV_ERR_NOMEM
 * without touching err when r->nomem). */
int github_http_transfer_error(CURLcode cc, const struct prsync_response *r,
                               int timeout_s, const char *errbuf,
                               struct rv_sync_error *err);

/* Appends "Authorization: Bearer <bearer>" to *headers, clearing its
 * scratch copy (the slist keeps its own, cleared by
 * github_http_free_headers). RV_OK or RV_ERR_NOMEM. */
int github_http_bearer(struct curl_slist **headers, const char *bearer);

/* curl_slist_free_all, after clearing the text of every Authorization
 * line. That wipes our copies only: libcurl also copies the header into
 * the request it sends, in buffers of its own that it frees uncleared.
 * headers may be NULL. */
void github_http_free_headers(struct curl_slist *headers);

/* One REST request: method ("GET" or "POST", the latter with an empty
 * JSON body), url, and "Authorization: Bearer <bearer>" (bearer borrowed;
 * of ours it goes into that header line only, cleared afterwards; see
 * github_http_free_headers for libcurl's copies), with
 * GitHub's REST Accept and X-GitHub-Api-Version headers. r (zeroed or
 * reset, with r->max set) receives the status, headers and body. Returns
 * RV_OK when an answer arrived, whatever its status; otherwise as
 * github_http_transfer_error, or RV_ERR_NOMEM. */
int github_http_rest(const char *method, const char *url, const char *bearer,
                     int timeout_s, struct prsync_response *r,
                     struct rv_sync_error *err);

/* github_http_rest's GET with "If-None-Match: <if_none_match>" when that
 * is not NULL or "" (a 304 then arrives with an empty body). */
int github_http_get(const char *url, const char *bearer,
                    const char *if_none_match, int timeout_s,
                    struct prsync_response *r, struct rv_sync_error *err);

/* ---- prerror.c ---- */

/* Turns a non-200 answer into err; returns the rv_err to hand back. */
int prsync_http_error(const struct prsync_response *r, bool has_token,
                      struct rv_sync_error *err);

/* Looks at a 200 answer's "errors" array. Returns RV_OK when there is none,
 * else fills err and returns the rv_err to hand back. */
int prsync_graphql_errors(json_t *doc, int64_t ratelimit_reset_ms,
                          struct rv_sync_error *err);

/* Whether a 403/429 answer is a secondary rate limit: it has a
 * Retry-After, or its message says "secondary rate limit". */
bool prsync_is_secondary_limit(const struct prsync_response *r);

/* ---- prparse.c ---- */

/* Reads data.rateLimit {cost remaining resetAt limit} of a 200 answer into
 * b (fields it lacks untouched). Returns false when the answer is not JSON
 * or rateLimit is absent or not of that shape. */
bool prsync_graphql_budget(const char *body, size_t len,
                           struct rv_github_budget *b);

/* What rv_prsync_run makes of one complete answer: the error of a non-200,
 * or the page of a 200. *end_cursor as for rv_prsync_parse_page. */
int prsync_answer(const struct prsync_response *r, bool has_token, json_t *prs,
                  json_t *seen, bool *has_next, char **end_cursor,
                  struct rv_sync_error *err);

#endif

/*
 * PR sync: reads a repository's open pull requests from GitHub's GraphQL API
 * (the query in the contract, 100 a page, following pageInfo.endCursor) with
 * libcurl's easy interface. It runs inside a worker's job, which may block.
 *
 * It only fetches and validates; writing the projection is the job loop's
 * business. Every failure becomes a struct rv_sync_error whose code users see
 * (unauthorized, rate_limited, not_found, github_unavailable, bad_response).
 * The token goes into one request header (and libcurl's copy of the
 * request) and nowhere else: not into logs, not into error messages.
 */
#ifndef REPOVIEW_WORKER_PRSYNC_H
#define REPOVIEW_WORKER_PRSYNC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/sync.h"

/* Responses larger than this (after gzip decoding) are refused. */
#define RV_PRSYNC_MAX_BODY_DEFAULT ((size_t)32 * 1024 * 1024)

/* What one GitHub answer said about the budget of the token that asked:
 * the x-ratelimit headers, overridden by GraphQL's rateLimit when the
 * answer has one, and whether it was a secondary rate limit. */
struct rv_github_budget {
    long status;         /* HTTP status; 0 when no answer arrived */
    long remaining;      /* -1: not said */
    long limit;          /* -1: not said */
    long cost;           /* GraphQL rateLimit.cost; -1: not said */
    int64_t reset_ms;    /* when the window resets; 0: not said */
    bool secondary;      /* 403/429 naming a secondary limit or retry-after */
    int64_t retry_at_ms; /* Retry-After as a time; 0: none */
};

/* Called by rv_prsync_run around every request it sends (may be NULL):
 * before_request may refuse it (then it fills err and returns the rv_err
 * the run hands back, and nothing is sent); after_request is called once
 * for every request before_request let through, with what the answer said
 * (status 0: none arrived). ud is theirs. */
struct rv_prsync_hooks {
    int (*before_request)(void *ud, struct rv_sync_error *err);
    void (*after_request)(void *ud, const struct rv_github_budget *b);
    void *ud;
};

struct rv_prsync_opts {
    /* Resolved endpoint (see rv_prsync_graphql_url). Borrowed. */
    const char *graphql_url;
    /* GITHUB_TOKEN; NULL or "" sends no Authorization header (GitHub's
     * GraphQL API needs one, the test fake may not). Borrowed. */
    const char *token;
    /* "owner/name". Borrowed. */
    const char *owner_name;
    /* Seconds one request may take in total; the connect timeout is
     * min(10, timeout_s). <= 0 means 30. */
    int timeout_s;
    /* Pages of 100 PRs read at most; the rest is dropped (logged).
     * <= 0 means 1. */
    int max_pages;
    /* For log lines only; may be NULL. Borrowed. */
    const char *repo_id, *job_id;
    /* Body size limit per response; 0 means RV_PRSYNC_MAX_BODY_DEFAULT. */
    size_t max_body_bytes;
    /* Budget accounting and admission; NULL = none. Borrowed. */
    const struct rv_prsync_hooks *hooks;
};

struct rv_prsync_stats {
    int pages;                  /* pages read successfully */
    int pull_requests;          /* PRs in *out */
    long ratelimit_remaining;   /* last x-ratelimit-remaining; -1 unknown */
    int64_t ratelimit_reset_ms; /* last x-ratelimit-reset (ms); 0 unknown */
};

/* curl_global_init; call once from main before any thread starts.
 * Returns RV_OK or RV_ERR_HTTP. */
int rv_prsync_global_init(void);

/* curl_global_cleanup; call once at exit (optional). */
void rv_prsync_global_cleanup(void);

/* Derives the GraphQL endpoint into buf: graphql_override when it is not
 * NULL or empty; otherwise from api_url (NULL or "" = https://api.github.com)
 * without trailing slashes: ".../api/v3" (GitHub Enterprise) becomes
 * ".../api/graphql", anything else gets "/graphql" appended
 * (https://api.github.com -> https://api.github.com/graphql).
 * Returns RV_OK, RV_ERR_INVALID (buf NULL or size 0) or RV_ERR_TOO_LARGE
 * (buf too small; buf then holds ""). */
int rv_prsync_graphql_url(const char *api_url, const char *graphql_override,
                          char *buf, size_t size);

/* Validates one 200 answer of the GraphQL API (body[0..len), any bytes)
 * and maps its PRs, in the shape rv_prsync_run hands back, onto the array
 * prs, skipping numbers that are keys of the object seen (and adding the
 * new ones). ratelimit_reset_ms is the answer's x-ratelimit-reset (0:
 * none), used for a GraphQL RATE_LIMITED error. On RV_OK, *has_next is
 * pageInfo.hasNextPage and *end_cursor a malloc'd copy of
 * pageInfo.endCursor, or NULL when it is null (the caller frees it). On
 * failure err is filled, *end_cursor is NULL and the result is as for
 * rv_prsync_run; prs may have gained some of the page's PRs. */
int rv_prsync_parse_page(const char *body, size_t len,
                         int64_t ratelimit_reset_ms, json_t *prs, json_t *seen,
                         bool *has_next, char **end_cursor,
                         struct rv_sync_error *err);

/* The answer headers PR sync acts on, as libcurl reports them: the values
 * of x-ratelimit-remaining and x-ratelimit-reset (NULL when absent), and
 * Retry-After in seconds from now (CURLINFO_RETRY_AFTER; 0 when absent). */
struct rv_github_headers {
    const char *ratelimit_remaining, *ratelimit_reset;
    const char *ratelimit_limit; /* x-ratelimit-limit; NULL when absent */
    int64_t retry_after_s;
};

/* One complete answer as rv_prsync_run takes it after a transfer: the
 * HTTP status, its headers (h may be NULL: none) and the body. A 200 goes
 * to rv_prsync_parse_page (with the answer's x-ratelimit-reset); any other
 * status becomes err (unauthorized, rate_limited with retry_at_ms,
 * github_unavailable) and RV_ERR_HTTP. Outputs as for
 * rv_prsync_parse_page. */
int rv_prsync_parse_answer(long status, const struct rv_github_headers *h,
                           const char *body, size_t len, bool has_token,
                           json_t *prs, json_t *seen, bool *has_next,
                           char **end_cursor, struct rv_sync_error *err);

/* Fetches every open PR of opts->owner_name (up to max_pages pages).
 *
 * On RV_OK, *out is a new reference (the caller json_decref()s it) to
 *   {"pullRequests":[{number, title, state:"open", draft, url,
 *     author (login or null), headRef, headRepo (nameWithOwner or null),
 *     baseRef, isCrossRepository, ciStatus (lower-cased rollup or null),
 *     reviewDecision (lower-cased or null), updatedAt ("...T...000Z"),
 *     headSha (internal: headRefOid)}, ...]}
 * in GitHub's order (most recently updated first); a PR that shows up twice
 * because it moved between pages is kept once, where it was first seen.
 *
 * On failure *out is NULL, err is filled (code, message, retry_at_ms for
 * rate limits) and the return value is RV_ERR_HTTP (GitHub said no or could
 * not be reached), RV_ERR_TIMEOUT, RV_ERR_DECODE (bad_response),
 * RV_ERR_TOO_LARGE (bad_response), RV_ERR_INVALID (bad opts) or
 * RV_ERR_NOMEM. stats (may be NULL) is filled in both cases. */
int rv_prsync_run(const struct rv_prsync_opts *opts, json_t **out,
                  struct rv_prsync_stats *stats, struct rv_sync_error *err);

#endif

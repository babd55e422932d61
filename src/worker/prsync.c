/* See prsync.h. The driver of a PR sync: the contract's query, the
 * GraphQL endpoint, and the run that pages through the answers. The
 * libcurl callbacks live in github_http.c, the mapping of GitHub's errors
 * in prerror.c, the reading of an answer in prparse.c; prsync_private.h is
 * what they share. */
#include "worker/prsync.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/errors.h"
#include "common/log.h"
#include "common/util.h"
#include "worker/prsync_private.h"

#define PRSYNC_DEFAULT_API "https://api.github.com"

/* The contract's query, verbatim (tests/fake-github checks it), and the
 * token's budget asked in the same request (rateLimit costs nothing). */
static const char prsync_query[] =
    "query($owner: String!, $name: String!, $cursor: String) {\n"
    "  repository(owner: $owner, name: $name) {\n"
    "    pullRequests(states: OPEN, first: 100, after: $cursor,\n"
    "                 orderBy: {field: UPDATED_AT, direction: DESC}) {\n"
    "      pageInfo { hasNextPage endCursor }\n"
    "      nodes {\n"
    "        number title url isDraft state updatedAt\n"
    "        author { login }\n"
    "        headRefName headRefOid baseRefName isCrossRepository\n"
    "        headRepository { nameWithOwner }\n"
    "        reviewDecision\n"
    "        commits(last: 1) { nodes { commit { statusCheckRollup { state } } "
    "} }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "  rateLimit { cost remaining resetAt limit }\n"
    "}\n";

int rv_prsync_graphql_url(const char *api_url, const char *graphql_override,
                          char *buf, size_t size)
{
    if (!buf || size == 0)
        return RV_ERR_INVALID;
    buf[0] = '\0';
    if (graphql_override && *graphql_override) {
        if (rv_strlcpy(buf, graphql_override, size) != 0) {
            buf[0] = '\0';
            return RV_ERR_TOO_LARGE;
        }
        return RV_OK;
    }
    const char *api = api_url && *api_url ? api_url : PRSYNC_DEFAULT_API;
    size_t n = strlen(api);
    while (n > 0 && api[n - 1] == '/')
        n--;
    static const char v3[] = "/api/v3";
    size_t v3len = sizeof(v3) - 1;
    int w;
    if (n >= v3len && strncasecmp(api + n - v3len, v3, v3len) == 0)
        w = snprintf(buf, size, "%.*s/api/graphql", (int)(n - v3len), api);
    else
        w = snprintf(buf, size, "%.*s/graphql", (int)n, api);
    if (w < 0 || (size_t)w >= size) {
        buf[0] = '\0';
        return RV_ERR_TOO_LARGE;
    }
    return RV_OK;
}

/* ---- the run ---------------------------------------------------------- */

/* Splits "owner/name" into owner and name buffers. */
static bool prsync_split_name(const char *full, char *owner, size_t osize,
                              char *name, size_t nsize)
{
    if (!full || !rv_github_name_valid(full))
        return false;
    const char *slash = strchr(full, '/');
    if (!slash || (size_t)(slash - full) >= osize)
        return false;
    memcpy(owner, full, (size_t)(slash - full));
    owner[slash - full] = '\0';
    return rv_strlcpy(name, slash + 1, nsize) == 0;
}

/* Tells the hooks what the answer just received said about the budget. */
static void report_budget(const struct rv_prsync_hooks *hooks, CURLcode cc,
                          const struct prsync_response *r)
{
    struct rv_github_budget b = {
        .status = cc == CURLE_OK ? r->status : 0,
        .remaining = r->ratelimit_remaining,
        .limit = r->ratelimit_limit,
        .cost = -1,
        .reset_ms = r->ratelimit_reset_ms,
    };
    if (cc == CURLE_OK && r->status == 200)
        prsync_graphql_budget(r->body.buf, r->body.len, &b);
    if (cc == CURLE_OK && prsync_is_secondary_limit(r)) {
        b.secondary = true;
        b.retry_at_ms = r->retry_after_ms;
    }
    hooks->after_request(hooks->ud, &b);
}

int rv_prsync_run(const struct rv_prsync_opts *opts, json_t **out,
                  struct rv_prsync_stats *stats, struct rv_sync_error *err)
{
    int rc = RV_OK;
    CURL *curl = NULL;
    struct curl_slist *headers = NULL;
    json_t *prs = NULL, *seen = NULL;
    char *payload = NULL;    /* json_dumps; free() */
    char *cursor = NULL;     /* the endCursor asked after; free() */
    char *end_cursor = NULL; /* the last page's endCursor; free() */
    struct prsync_response resp = {0};
    struct rv_prsync_stats local_stats;
    char errbuf[CURL_ERROR_SIZE];
    char owner[128], name[128];
    int64_t started = rv_mono_ms();
    const struct rv_prsync_hooks *hooks = opts ? opts->hooks : NULL;

    if (!stats)
        stats = &local_stats;
    stats->pages = 0;
    stats->pull_requests = 0;
    stats->ratelimit_remaining = -1;
    stats->ratelimit_reset_ms = 0;
    err->code = RV_OK;
    err->message[0] = '\0';
    err->retry_at_ms = 0;
    if (out)
        *out = NULL;

    if (!out || !opts || !opts->graphql_url || !*opts->graphql_url ||
        !prsync_split_name(opts->owner_name, owner, sizeof(owner), name,
                           sizeof(name))) {
        rv_sync_error_set(err, RV_ERR_BAD_REQUEST,
                          "PR sync needs a GraphQL URL and an owner/name");
        return RV_ERR_INVALID;
    }
    bool has_token = opts->token && *opts->token;
    if (has_token && strpbrk(opts->token, "\r\n")) {
        rv_sync_error_set(err, RV_ERR_UNAUTHORIZED,
                          "GITHUB_TOKEN contains a line break");
        return RV_ERR_INVALID;
    }
    int timeout_s = opts->timeout_s > 0 ? opts->timeout_s : 30;
    int max_pages = opts->max_pages > 0 ? opts->max_pages : 1;
    rv_dynbuf_init(&resp.body, opts->max_body_bytes
                                   ? opts->max_body_bytes
                                   : RV_PRSYNC_MAX_BODY_DEFAULT);

    prs = json_array();
    seen = json_object();
    curl = curl_easy_init();
    if (!prs || !seen || !curl) {
        rc = RV_ERR_NOMEM;
        goto out;
    }

    /* The only place the token is written: one request header. */
    if (has_token && (rc = github_http_bearer(&headers, opts->token)) != RV_OK)
        goto out;
    static const char *const fixed_headers[] = {
        "Content-Type: application/json", "Accept: application/json",
        "Expect:", /* no "100 Continue" round trip */
    };
    size_t nfixed = sizeof(fixed_headers) / sizeof(*fixed_headers);
    for (size_t i = 0; i < nfixed; i++) {
        struct curl_slist *h = curl_slist_append(headers, fixed_headers[i]);
        if (!h) {
            rc = RV_ERR_NOMEM;
            goto out;
        }
        headers = h;
    }

    github_http_setup(curl, headers, timeout_s, &resp, errbuf);
    curl_easy_setopt(curl, CURLOPT_URL, opts->graphql_url);

    for (int page = 0;; page++) {
        json_t *req = json_pack("{s:s, s:{s:s, s:s, s:s?}}", "query",
                                prsync_query, "variables", "owner", owner,
                                "name", name, "cursor", cursor);
        free(payload);
        payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
        json_decref(req);
        if (!payload) {
            rc = RV_ERR_NOMEM;
            goto out;
        }
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)strlen(payload));
        prsync_response_reset(&resp);
        errbuf[0] = '\0';

        if (hooks && hooks->before_request &&
            (rc = hooks->before_request(hooks->ud, err)) != RV_OK)
            goto out;
        CURLcode cc = curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp.status);
        prsync_read_headers(curl, &resp);
        if (hooks && hooks->after_request)
            report_budget(hooks, cc, &resp);
        if (resp.ratelimit_remaining >= 0)
            stats->ratelimit_remaining = resp.ratelimit_remaining;
        if (resp.ratelimit_reset_ms > 0)
            stats->ratelimit_reset_ms = resp.ratelimit_reset_ms;
        LOGF(RV_LOG_DEBUG, opts->repo_id, opts->job_id,
             json_pack("{s:i, s:i, s:i, s:I}", "page", page + 1, "status",
                       (int)resp.status, "curl", (int)cc, "bytes",
                       (json_int_t)resp.body.len),
             "github graphql answered");

        if (cc != CURLE_OK) {
            rc = github_http_transfer_error(cc, &resp, timeout_s, errbuf, err);
            goto out;
        }
        bool has_next = false;
        rc = prsync_answer(&resp, has_token, prs, seen, &has_next, &end_cursor,
                           err);
        if (rc != RV_OK)
            goto out;
        stats->pages++;
        if (!has_next)
            break;
        if (stats->pages >= max_pages) {
            LOGF(RV_LOG_WARN, opts->repo_id, opts->job_id,
                 json_pack("{s:i}", "maxPages", max_pages),
                 "more open pull requests than the page cap; the rest are "
                 "left out");
            break;
        }
        if (!end_cursor || !*end_cursor ||
            (cursor && strcmp(cursor, end_cursor) == 0)) {
            rv_sync_error_set(err, RV_ERR_BAD_RESPONSE,
                              "GitHub's answer: data.repository.pullRequests"
                              ".pageInfo.endCursor does not move on while "
                              "hasNextPage is true");
            rc = RV_ERR_DECODE;
            goto out;
        }
        free(cursor);
        cursor = end_cursor;
        end_cursor = NULL;
    }

    stats->pull_requests = (int)json_array_size(prs);
    *out = json_pack("{s:O}", "pullRequests", prs);
    if (!*out) {
        rc = RV_ERR_NOMEM;
        goto out;
    }
    /* Debug only: the job loop logs the outcome of every job. */
    LOGF(RV_LOG_DEBUG, opts->repo_id, opts->job_id,
         json_pack("{s:i, s:i, s:I, s:I}", "pages", stats->pages,
                   "pullRequests", stats->pull_requests, "ratelimitRemaining",
                   (json_int_t)stats->ratelimit_remaining, "ms",
                   (json_int_t)(rv_mono_ms() - started)),
         "pull requests fetched");

out:
    if (rc == RV_ERR_NOMEM && err->code == RV_OK)
        rv_sync_error_set(err, RV_ERR_INTERNAL, "out of memory in PR sync");
    if (rc != RV_OK)
        LOGF(RV_LOG_DEBUG, opts ? opts->repo_id : NULL,
             opts ? opts->job_id : NULL,
             json_pack("{s:s, s:i}", "code", rv_errname(err->code), "pages",
                       stats->pages),
             "PR sync failed: %s", err->message);
    json_decref(prs);
    json_decref(seen);
    free(payload);
    free(cursor);
    free(end_cursor);
    rv_dynbuf_free(&resp.body);
    if (curl)
        curl_easy_cleanup(curl);
    github_http_free_headers(headers);
    return rc;
}

/* The HTTP side of talking to GitHub: libcurl's global init, the options
 * every request shares, the body callback that fills a struct
 * prsync_response (capped), the rate limit and Retry-After headers read
 * after the transfer with curl_easy_header and CURLINFO_RETRY_AFTER, and
 * one whole REST request. Declarations in prsync.h and prsync_private.h. */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/util.h"
#include "worker/prsync.h"
#include "worker/prsync_private.h"

#ifndef RV_VERSION
#define RV_VERSION "0.1.0"
#endif

#define GITHUB_USER_AGENT "repoview/" RV_VERSION

int rv_prsync_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? RV_OK
                                                             : RV_ERR_HTTP;
}

void rv_prsync_global_cleanup(void)
{
    curl_global_cleanup();
}

/* ---- libcurl callbacks ------------------------------------------------ */

size_t prsync_on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct prsync_response *r = ud;
    size_t n = size * nmemb;
    int rc = rv_dynbuf_add(&r->body, ptr, n);
    if (rc != RV_OK) {
        r->too_large = rc == RV_ERR_TOO_LARGE;
        r->nomem = rc == RV_ERR_NOMEM;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    return n;
}

void prsync_set_headers(struct prsync_response *r,
                        const struct rv_github_headers *h)
{
    int64_t v;
    r->ratelimit_remaining = -1;
    r->ratelimit_limit = -1;
    r->ratelimit_reset_ms = 0;
    r->retry_after_ms = 0;
    if (h->ratelimit_limit &&
        rv_parse_i64(h->ratelimit_limit, 0, INT32_MAX, &v) == 0)
        r->ratelimit_limit = (long)v;
    if (h->ratelimit_remaining &&
        rv_parse_i64(h->ratelimit_remaining, 0, INT32_MAX, &v) == 0)
        r->ratelimit_remaining = (long)v;
    if (h->ratelimit_reset &&
        rv_parse_i64(h->ratelimit_reset, 0, INT64_MAX / 1000, &v) == 0)
        r->ratelimit_reset_ms = v * 1000;
    /* Held to a year ahead: a later answer is nonsense, not a plan. */
    if (h->retry_after_s > 0 && h->retry_after_s <= 366LL * 24 * 3600)
        r->retry_after_ms = rv_now_ms() + h->retry_after_s * 1000;
}

/* The value of header name in the last answer of the transfer, or NULL
 * (absent, or given more than once: a duplicated limit is not trusted). */
static const char *last_header(CURL *curl, const char *name)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(curl, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
        return NULL;
    return h->amount == 1 ? h->value : NULL;
}

void prsync_read_headers(CURL *curl, struct prsync_response *r)
{
    curl_off_t retry = 0;
    if (curl_easy_getinfo(curl, CURLINFO_RETRY_AFTER, &retry) != CURLE_OK)
        retry = 0;
    struct rv_github_headers h = {
        .ratelimit_remaining = last_header(curl, "x-ratelimit-remaining"),
        .ratelimit_reset = last_header(curl, "x-ratelimit-reset"),
        .ratelimit_limit = last_header(curl, "x-ratelimit-limit"),
        .retry_after_s = (int64_t)retry,
    };
    prsync_set_headers(r, &h);
    const char *etag = last_header(curl, "etag");
    const char *link = last_header(curl, "link");
    r->etag[0] = r->link[0] = '\0';
    if (etag && strlen(etag) < sizeof(r->etag))
        rv_strlcpy(r->etag, etag, sizeof(r->etag));
    struct curl_header *any = NULL;
    r->link_bad = !link && curl_easy_header(curl, "link", 0, CURLH_HEADER, -1,
                                            &any) == CURLHE_OK;
    if (link && strlen(link) < sizeof(r->link))
        rv_strlcpy(r->link, link, sizeof(r->link));
    else if (link)
        r->link_bad = true;
}

void prsync_response_reset(struct prsync_response *r)
{
    rv_dynbuf_reset(&r->body);
    r->too_large = false;
    r->nomem = false;
    r->status = 0;
    r->ratelimit_remaining = -1;
    r->ratelimit_limit = -1;
    r->ratelimit_reset_ms = 0;
    r->retry_after_ms = 0;
    r->etag[0] = r->link[0] = '\0';
    r->link_bad = false;
}

void github_http_setup(CURL *curl, struct curl_slist *headers, int timeout_s,
                       struct prsync_response *r, char *errbuf)
{
    errbuf[0] = '\0';
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, GITHUB_USER_AGENT);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)timeout_s);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT,
                     (long)(timeout_s < 10 ? timeout_s : 10));
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->body.max);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, prsync_on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
}

int github_http_transfer_error(CURLcode cc, const struct prsync_response *r,
                               int timeout_s, const char *errbuf,
                               struct rv_sync_error *err)
{
    const char *why = errbuf && errbuf[0] ? errbuf : curl_easy_strerror(cc);
    if (r->nomem)
        return RV_ERR_NOMEM;
    if (r->too_large || cc == CURLE_FILESIZE_EXCEEDED) {
        rv_sync_error_set(err, RV_ERR_BAD_RESPONSE,
                          "GitHub's answer is larger than %zu bytes",
                          r->body.max);
        return RV_ERR_TOO_LARGE;
    }
    if (cc == CURLE_OPERATION_TIMEDOUT) {
        rv_sync_error_set(err, RV_ERR_GITHUB_UNAVAILABLE,
                          "GitHub did not answer within %d s", timeout_s);
        return RV_ERR_TIMEOUT;
    }
    if (cc == CURLE_BAD_CONTENT_ENCODING) {
        rv_sync_error_set(err, RV_ERR_BAD_RESPONSE,
                          "GitHub's answer could not be decoded: %s", why);
        return RV_ERR_DECODE;
    }
    rv_sync_error_set(err, RV_ERR_GITHUB_UNAVAILABLE,
                      "could not reach GitHub: %s", why);
    return RV_ERR_HTTP;
}

int github_http_bearer(struct curl_slist **headers, const char *bearer)
{
    size_t hlen = strlen(bearer) + 32;
    char *auth = malloc(hlen);
    if (!auth)
        return RV_ERR_NOMEM;
    snprintf(auth, hlen, "Authorization: Bearer %s", bearer);
    struct curl_slist *h = curl_slist_append(*headers, auth);
    explicit_bzero(auth, hlen);
    free(auth);
    if (!h)
        return RV_ERR_NOMEM;
    *headers = h;
    return RV_OK;
}

void github_http_free_headers(struct curl_slist *headers)
{
    for (struct curl_slist *h = headers; h; h = h->next)
        if (strncmp(h->data, "Authorization:", 14) == 0)
            explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(headers);
}

/* github_http_rest with one more header line (NULL = none). */
static int rest_request(const char *method, const char *url, const char *bearer,
                        const char *extra, int timeout_s,
                        struct prsync_response *r, struct rv_sync_error *err)
{
    static const char *const fixed[] = {
        "Accept: application/vnd.github+json",
        "X-GitHub-Api-Version: 2022-11-28",
        "Expect:", /* no "100 Continue" round trip */
    };
    int rc = RV_OK;
    struct curl_slist *headers = NULL;
    char errbuf[CURL_ERROR_SIZE];
    CURL *curl = curl_easy_init();
    if (!curl)
        return RV_ERR_NOMEM;
    if (bearer && *bearer &&
        (rc = github_http_bearer(&headers, bearer)) != RV_OK)
        goto out;
    for (size_t i = 0; i <= sizeof(fixed) / sizeof(*fixed); i++) {
        const char *line =
            i < sizeof(fixed) / sizeof(*fixed) ? fixed[i] : extra;
        if (!line)
            continue;
        struct curl_slist *h = curl_slist_append(headers, line);
        if (!h) {
            rc = RV_ERR_NOMEM;
            goto out;
        }
        headers = h;
    }
    prsync_response_reset(r);
    github_http_setup(curl, headers, timeout_s > 0 ? timeout_s : 30, r, errbuf);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    CURLcode cc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    prsync_read_headers(curl, r);
    if (cc != CURLE_OK)
        rc = github_http_transfer_error(cc, r, timeout_s > 0 ? timeout_s : 30,
                                        errbuf, err);
out:
    curl_easy_cleanup(curl);
    github_http_free_headers(headers);
    return rc;
}

int github_http_rest(const char *method, const char *url, const char *bearer,
                     int timeout_s, struct prsync_response *r,
                     struct rv_sync_error *err)
{
    return rest_request(method, url, bearer, NULL, timeout_s, r, err);
}

int github_http_get(const char *url, const char *bearer,
                    const char *if_none_match, int timeout_s,
                    struct prsync_response *r, struct rv_sync_error *err)
{
    char line[sizeof(r->etag) + 32];
    bool conditional = if_none_match && *if_none_match;
    if (conditional && (size_t)snprintf(line, sizeof(line), "If-None-Match: %s",
                                        if_none_match) >= sizeof(line))
        conditional = false; /* not one of ours: ask unconditionally */
    return rest_request("GET", url, bearer, conditional ? line : NULL,
                        timeout_s, r, err);
}

/* The HTTP side of a PR sync: libcurl's global init, the body callback
 * that fills a struct prsync_response (capped), and the rate limit and
 * Retry-After headers read after the transfer with curl_easy_header and
 * CURLINFO_RETRY_AFTER. Declarations in prsync.h and prsync_private.h. */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/util.h"
#include "worker/prsync.h"
#include "worker/prsync_private.h"

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
    r->ratelimit_reset_ms = 0;
    r->retry_after_ms = 0;
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
        .retry_after_s = (int64_t)retry,
    };
    prsync_set_headers(r, &h);
}

void prsync_response_reset(struct prsync_response *r)
{
    rv_dynbuf_reset(&r->body);
    r->too_large = false;
    r->nomem = false;
    r->status = 0;
    r->ratelimit_remaining = -1;
    r->ratelimit_reset_ms = 0;
    r->retry_after_ms = 0;
}

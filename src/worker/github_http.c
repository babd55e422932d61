/* The HTTP side of a PR sync: libcurl's global init, and the body and
 * header callbacks that fill a struct prsync_response (the body capped,
 * the rate limit and Retry-After headers read). Declarations in
 * prsync.h and prsync_private.h. */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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

size_t prsync_on_header(char *ptr, size_t size, size_t nitems, void *ud)
{
    struct prsync_response *r = ud;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
        /* A new response starts (e.g. after "100 Continue"). */
        r->ratelimit_remaining = -1;
        r->ratelimit_reset_ms = 0;
        r->retry_after_ms = 0;
        return n;
    }
    char line[256];
    if (n >= sizeof(line))
        return n; /* no header we read is this long */
    memcpy(line, ptr, n);
    line[n] = '\0';
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n' ||
                     line[n - 1] == ' ' || line[n - 1] == '\t'))
        line[--n] = '\0';
    char *colon = strchr(line, ':');
    if (!colon)
        return size * nitems;
    *colon = '\0';
    char *value = colon + 1;
    while (*value == ' ' || *value == '\t')
        value++;
    int64_t v;
    if (strcasecmp(line, "x-ratelimit-remaining") == 0) {
        if (rv_parse_i64(value, 0, INT32_MAX, &v) == 0)
            r->ratelimit_remaining = (long)v;
    } else if (strcasecmp(line, "x-ratelimit-reset") == 0) {
        if (rv_parse_i64(value, 0, INT64_MAX / 1000, &v) == 0)
            r->ratelimit_reset_ms = v * 1000;
    } else if (strcasecmp(line, "retry-after") == 0) {
        /* Either delay-seconds or an HTTP date (RFC 9110). */
        const int64_t year_s = 366LL * 24 * 3600;
        if (rv_parse_i64(value, 0, year_s, &v) == 0) {
            r->retry_after_ms = rv_now_ms() + v * 1000;
        } else {
            /* A date, held to the same year ahead as the seconds form
             * (curl_getdate accepts years far past what ms can hold). */
            time_t t = curl_getdate(value, NULL);
            if (t > 0 && (int64_t)t <= rv_now_ms() / 1000 + year_s)
                r->retry_after_ms = (int64_t)t * 1000;
        }
    }
    return size * nitems;
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

/*
 * The GitHub GraphQL answer parser (worker/prsync.c): what PR sync does
 * with an answer, the part of GitHub we do not control. Input: either a
 * bare body, taken as a 200 answer (rv_prsync_parse_page), or a whole
 * answer, "HTTP/1.1 403 ...", header lines, an empty line, the body
 * (rv_prsync_parse_answer: status, rate-limit headers, error bodies;
 * the headers picked out here as libcurl picks them out).
 *
 * Whatever the body, the parser either maps PRs of exactly the contract's
 * shape (lower-cased states, ISO times, unique numbers, serializable for
 * Redis) or fails with one of the documented codes and a message the job
 * loop can record: failSync gets it inside JSON, so it must be valid
 * UTF-8, or the failure would be lost.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/errors.h"
#include "common/log.h"
#include "common/util.h"
#include "fuzz.h"
#include "worker/prsync.h"

FUZZ_QUIET_INIT

/* The parser lower-cases GitHub's enum values without listing them, so a
 * value GitHub adds later passes through; "" passes too, as "". */
static bool is_lower_ascii(const json_t *v)
{
    const char *s = json_string_value(v);
    if (!s)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80 || (*s >= 'A' && *s <= 'Z'))
            return false;
    return true;
}

static bool string_or_null(const json_t *v)
{
    return json_is_string(v) || json_is_null(v);
}

/* One PR of rv_prsync_run's answer, as prsync.h documents it. */
static void check_pr(const json_t *pr)
{
    FUZZ_CHECK(json_is_object(pr));
    FUZZ_CHECK(json_object_size(pr) == 14);
    FUZZ_CHECK(json_integer_value(json_object_get(pr, "number")) > 0);
    FUZZ_CHECK(json_is_string(json_object_get(pr, "title")));
    FUZZ_CHECK(is_lower_ascii(json_object_get(pr, "state")));
    FUZZ_CHECK(json_is_boolean(json_object_get(pr, "draft")));
    FUZZ_CHECK(json_is_string(json_object_get(pr, "url")));
    FUZZ_CHECK(string_or_null(json_object_get(pr, "author")));
    FUZZ_CHECK(json_is_string(json_object_get(pr, "headRef")));
    FUZZ_CHECK(string_or_null(json_object_get(pr, "headRepo")));
    FUZZ_CHECK(json_is_string(json_object_get(pr, "baseRef")));
    FUZZ_CHECK(json_is_boolean(json_object_get(pr, "isCrossRepository")));
    const json_t *ci = json_object_get(pr, "ciStatus");
    FUZZ_CHECK(json_is_null(ci) || is_lower_ascii(ci));
    const json_t *review = json_object_get(pr, "reviewDecision");
    FUZZ_CHECK(json_is_null(review) || is_lower_ascii(review));
    const char *updated = json_string_value(json_object_get(pr, "updatedAt"));
    int64_t ms;
    FUZZ_CHECK(updated && strlen(updated) == 24 &&
               rv_parse_iso8601(updated, &ms) == 0);
    FUZZ_CHECK(json_is_string(json_object_get(pr, "headSha")));
}

static void check_error(int rc, const struct rv_sync_error *err)
{
    static const rv_err codes[] = {RV_ERR_RATE_LIMITED, RV_ERR_NOT_FOUND,
                                   RV_ERR_UNAUTHORIZED, RV_ERR_BAD_RESPONSE,
                                   RV_ERR_GITHUB_UNAVAILABLE,
                                   RV_ERR_INTERNAL};
    FUZZ_CHECK(rc == RV_ERR_DECODE || rc == RV_ERR_HTTP ||
               rc == RV_ERR_NOMEM);
    bool known = false;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        known = known || err->code == codes[i];
    FUZZ_CHECK(known);
    FUZZ_CHECK(err->message[0] != '\0');
    if (err->code == RV_ERR_RATE_LIMITED)
        FUZZ_CHECK(err->retry_at_ms > 0);
    /* What jobloop.c's record_failure builds for failSync. */
    json_t *ej = json_pack("{s:s,s:s,s:s}", "code", rv_errname(err->code),
                           "message", err->message, "at",
                           "2026-12-01T00:00:00.000Z");
    FUZZ_CHECK(ej != NULL);
    json_decref(ej);
}

/* Splits "HTTP/x NNN ...\r\nheaders\r\n\r\nbody" into the status, the head
 * (status line and header lines) and the body. false when data is no
 * such answer. */
static bool split_answer(const uint8_t *data, size_t size, long *status,
                         size_t *head_len, const uint8_t **body,
                         size_t *body_len)
{
    if (size < 12 || memcmp(data, "HTTP/", 5) != 0)
        return false;
    const uint8_t *sp = memchr(data, ' ', size < 16 ? size : 16);
    if (!sp || (size_t)(sp - data) + 4 > size)
        return false;
    long st = 0;
    for (int i = 1; i <= 3; i++) {
        if (sp[i] < '0' || sp[i] > '9')
            return false;
        st = st * 10 + (sp[i] - '0');
    }
    /* The head ends at the first empty line. */
    size_t pos = 0;
    while (pos < size) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        if (!nl)
            break;
        size_t line = (size_t)(nl - (data + pos));
        pos += line + 1;
        if (line == 0 || (line == 1 && data[pos - 2] == '\r'))
            break;
    }
    *status = st;
    *head_len = pos;
    *body = data + pos;
    *body_len = size - pos;
    return true;
}

/* The header values of a head, found as libcurl finds them for
 * curl_easy_header (name case-insensitive, value trimmed) and
 * CURLINFO_RETRY_AFTER (seconds, or an HTTP date made seconds from now). */
struct head_values {
    char remaining[64], reset[64];
    struct rv_github_headers h;
};

static void take_value(const char *line, size_t n, const char *name,
                       char *out, size_t outsize, bool *found)
{
    size_t nl = strlen(name);
    if (n <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
        return;
    const char *v = line + nl + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t len = (size_t)(end - v);
    if (len >= outsize || memchr(v, '\0', len))
        return;
    memcpy(out, v, len);
    out[len] = '\0';
    *found = true;
}

static void read_head(const uint8_t *head, size_t len, struct head_values *hv)
{
    char retry[64] = "";
    bool has_remaining = false, has_reset = false, has_retry = false;
    memset(hv, 0, sizeof(*hv));
    for (size_t pos = 0; pos < len;) {
        const uint8_t *nl = memchr(head + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (head + pos)) : len - pos;
        const char *line = (const char *)head + pos;
        take_value(line, n, "x-ratelimit-remaining", hv->remaining,
                   sizeof(hv->remaining), &has_remaining);
        take_value(line, n, "x-ratelimit-reset", hv->reset,
                   sizeof(hv->reset), &has_reset);
        take_value(line, n, "retry-after", retry, sizeof(retry), &has_retry);
        pos += n + 1;
    }
    hv->h.ratelimit_remaining = has_remaining ? hv->remaining : NULL;
    hv->h.ratelimit_reset = has_reset ? hv->reset : NULL;
    if (has_retry) {
        int64_t s;
        if (rv_parse_i64(retry, 0, INT64_MAX, &s) == 0) {
            hv->h.retry_after_s = s;
        } else {
            time_t t = curl_getdate(retry, NULL);
            time_t now = time(NULL);
            hv->h.retry_after_s = t > now ? (int64_t)(t - now) : 0;
        }
    }
}

/* A non-200 answer: one of the codes users are told about. */
static void check_http_error(long status, int rc,
                             const struct rv_sync_error *err)
{
    FUZZ_CHECK(rc == RV_ERR_HTTP);
    if (status == 401)
        FUZZ_CHECK(err->code == RV_ERR_UNAUTHORIZED);
    else if (status == 429)
        FUZZ_CHECK(err->code == RV_ERR_RATE_LIMITED);
    else if (status == 403)
        FUZZ_CHECK(err->code == RV_ERR_RATE_LIMITED ||
                   err->code == RV_ERR_UNAUTHORIZED);
    else
        FUZZ_CHECK(err->code == RV_ERR_GITHUB_UNAVAILABLE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *prs = json_array(), *seen = json_object();
    struct rv_sync_error err = {RV_OK, {0}, 0};
    bool has_next = true;
    char *cursor = (char *)"unset";
    FUZZ_CHECK(prs && seen);

    long status = 200;
    size_t head_len = 0;
    int rc;
    if (split_answer(data, size, &status, &head_len, &data, &size)) {
        struct head_values hv;
        read_head(data - head_len, head_len, &hv);
        /* With and without a token, by the status's parity. */
        rc = rv_prsync_parse_answer(status, &hv.h, (const char *)data, size,
                                    status % 2 == 0, prs, seen, &has_next,
                                    &cursor, &err);
        if (status != 200) {
            FUZZ_CHECK(cursor == NULL && !has_next);
            FUZZ_CHECK(json_array_size(prs) == 0);
            check_http_error(status, rc, &err);
            check_error(rc, &err);
            goto out;
        }
    } else {
        rc = rv_prsync_parse_page((const char *)data, size, 0, prs, seen,
                                  &has_next, &cursor, &err);
    }
    if (rc != RV_OK) {
        FUZZ_CHECK(cursor == NULL && !has_next);
        check_error(rc, &err);
        goto out;
    }
    FUZZ_CHECK(err.code == RV_OK);
    size_t i;
    json_t *pr;
    json_array_foreach(prs, i, pr) check_pr(pr);
    /* Numbers are unique and every one is remembered. */
    FUZZ_CHECK(json_object_size(seen) == json_array_size(prs));
    /* The projection goes to Redis as JSON text. */
    char *text = json_dumps(prs, JSON_COMPACT);
    FUZZ_CHECK(text != NULL);
    free(text);

    /* The same page again (it moved between pages) adds nothing. */
    size_t before = json_array_size(prs);
    char *cursor2 = NULL;
    bool next2 = false;
    FUZZ_CHECK(rv_prsync_parse_page((const char *)data, size, 0, prs, seen,
                                    &next2, &cursor2, &err) == RV_OK);
    FUZZ_CHECK(json_array_size(prs) == before && next2 == has_next);
    FUZZ_CHECK((cursor == NULL) == (cursor2 == NULL));
    FUZZ_CHECK(!cursor || strcmp(cursor, cursor2) == 0);
    free(cursor2);
    free(cursor);
out:
    json_decref(prs);
    json_decref(seen);
    return 0;
}

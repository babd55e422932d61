/* GitHub's errors as a PR sync reports them: a non-200 answer
 * (prsync_http_error) and the "errors" of a 200 GraphQL answer
 * (prsync_graphql_errors) become a struct rv_sync_error with the code
 * users see. Declarations in prsync_private.h. */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/errors.h"
#include "common/util.h"
#include "worker/prsync_private.h"

/* How long to wait after a rate limit that names no time (GitHub's advice
 * for secondary limits: at least a minute). */
#define PRSYNC_DEFAULT_BACKOFF_MS 60000
/* The longest GitHub error message quoted in our own messages. */
#define PRSYNC_QUOTE_MAX 160

/* ---- error helpers ---------------------------------------------------- */

/* Copies GitHub's "message" (from a JSON error body) into buf, shortened and
 * with control characters replaced, or "" when there is none. */
static void prsync_quote_message(const char *text, char *buf, size_t size)
{
    buf[0] = '\0';
    if (!text)
        return;
    size_t i = 0;
    for (; text[i] && i + 1 < size && i < PRSYNC_QUOTE_MAX; i++)
        buf[i] = iscntrl((unsigned char)text[i]) ? ' ' : text[i];
    /* A character cut in half here is cut off by rv_sync_error_set, which
     * every quoted message ends up in. */
    buf[i] = '\0';
}

static void prsync_body_message(const struct prsync_response *r, char *buf,
                                size_t size)
{
    buf[0] = '\0';
    if (r->body.len == 0)
        return;
    json_t *doc = json_loadb(r->body.buf, r->body.len, 0, NULL);
    if (doc)
        prsync_quote_message(json_string_value(json_object_get(doc, "message")),
                             buf, size);
    json_decref(doc);
}

static bool prsync_mentions_rate_limit(const char *s)
{
    static const char needle[] = "rate limit";
    size_t nl = sizeof(needle) - 1;
    for (; *s; s++)
        if (strncasecmp(s, needle, nl) == 0)
            return true;
    return false;
}

bool prsync_is_secondary_limit(const struct prsync_response *r)
{
    static const char needle[] = "secondary rate limit";
    if (r->status != 403 && r->status != 429)
        return false;
    if (r->retry_after_ms > 0)
        return true;
    char msg[PRSYNC_QUOTE_MAX + 1];
    prsync_body_message(r, msg, sizeof(msg));
    for (const char *s = msg; *s; s++)
        if (strncasecmp(s, needle, sizeof(needle) - 1) == 0)
            return true;
    return false;
}

static void prsync_set_rate_limited(struct rv_sync_error *err, int64_t at,
                                    const char *what)
{
    char iso[32];
    rv_iso8601(at, iso, sizeof(iso));
    rv_sync_error_set(err, RV_ERR_RATE_LIMITED,
                      "GitHub rate limit reached (%s); retrying after %s", what,
                      iso);
    err->retry_at_ms = at;
}

int prsync_http_error(const struct prsync_response *r, bool has_token,
                      struct rv_sync_error *err)
{
    char msg[PRSYNC_QUOTE_MAX + 1];
    prsync_body_message(r, msg, sizeof(msg));
    if (r->status == 401) {
        if (has_token)
            rv_sync_error_set(err, RV_ERR_UNAUTHORIZED,
                              "GitHub rejected the token (HTTP 401)%s%s",
                              msg[0] ? ": " : "", msg);
        else
            rv_sync_error_set(err, RV_ERR_UNAUTHORIZED,
                              "GitHub needs a token (HTTP 401); set "
                              "GITHUB_TOKEN");
        return RV_ERR_HTTP;
    }
    if (r->status == 403 || r->status == 429) {
        int64_t at = 0;
        if (r->retry_after_ms > 0)
            at = r->retry_after_ms;
        else if (r->ratelimit_remaining == 0 && r->ratelimit_reset_ms > 0)
            at = r->ratelimit_reset_ms;
        else if (r->status == 429 || prsync_mentions_rate_limit(msg))
            at = rv_now_ms() + PRSYNC_DEFAULT_BACKOFF_MS;
        if (at > 0) {
            char what[32];
            snprintf(what, sizeof(what), "HTTP %ld", r->status);
            prsync_set_rate_limited(err, at, what);
            return RV_ERR_HTTP;
        }
        rv_sync_error_set(err, RV_ERR_UNAUTHORIZED,
                          "GitHub refused access (HTTP 403)%s%s",
                          msg[0] ? ": " : "", msg);
        return RV_ERR_HTTP;
    }
    rv_sync_error_set(err, RV_ERR_GITHUB_UNAVAILABLE,
                      "GitHub answered HTTP %ld%s%s", r->status,
                      msg[0] ? ": " : "", msg);
    return RV_ERR_HTTP;
}

int prsync_graphql_errors(json_t *doc, int64_t ratelimit_reset_ms,
                          struct rv_sync_error *err)
{
    json_t *errors = json_object_get(doc, "errors");
    if (!errors || json_is_null(errors))
        return RV_OK;
    if (!json_is_array(errors) || json_array_size(errors) == 0) {
        rv_sync_error_set(err, RV_ERR_BAD_RESPONSE,
                          "GitHub's answer has a malformed errors member");
        return RV_ERR_DECODE;
    }
    bool not_found = false, forbidden = false;
    const char *first_type = NULL, *first_msg = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e) {
        const char *type = json_string_value(json_object_get(e, "type"));
        const char *m = json_string_value(json_object_get(e, "message"));
        if (i == 0) {
            first_type = type;
            first_msg = m;
        }
        if (!type)
            continue;
        if (strcmp(type, "RATE_LIMITED") == 0) {
            int64_t now = rv_now_ms();
            int64_t at = ratelimit_reset_ms > now
                             ? ratelimit_reset_ms
                             : now + PRSYNC_DEFAULT_BACKOFF_MS;
            prsync_set_rate_limited(err, at, "GraphQL RATE_LIMITED");
            return RV_ERR_HTTP;
        }
        if (strcmp(type, "NOT_FOUND") == 0)
            not_found = true;
        else if (strcmp(type, "FORBIDDEN") == 0)
            forbidden = true;
    }
    json_t *data = json_object_get(doc, "data");
    json_t *repo = json_is_object(data) ? json_object_get(data, "repository")
                                        : NULL;
    if (not_found && (!repo || json_is_null(repo))) {
        rv_sync_error_set(err, RV_ERR_NOT_FOUND,
                          "GitHub has no repository of that name, or the "
                          "token cannot see it");
        return RV_ERR_HTTP;
    }
    char msg[PRSYNC_QUOTE_MAX + 1];
    prsync_quote_message(first_msg, msg, sizeof(msg));
    if (forbidden) {
        rv_sync_error_set(err, RV_ERR_UNAUTHORIZED,
                          "GitHub refused access to the repository: %s", msg);
        return RV_ERR_HTTP;
    }
    rv_sync_error_set(err, RV_ERR_BAD_RESPONSE,
                      "GitHub reported an error (%s): %s",
                      first_type ? first_type : "no type", msg);
    return RV_ERR_DECODE;
}

/* See prsync.h. */
#include "worker/prsync.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/errors.h"
#include "common/log.h"
#include "common/util.h"

#ifndef RV_VERSION
#define RV_VERSION "0.1.0"
#endif

#define PRSYNC_USER_AGENT "repoview/" RV_VERSION
#define PRSYNC_DEFAULT_API "https://api.github.com"
/* How long to wait after a rate limit that names no time (GitHub's advice
 * for secondary limits: at least a minute). */
#define PRSYNC_DEFAULT_BACKOFF_MS 60000
/* The longest GitHub error message quoted in our own messages. */
#define PRSYNC_QUOTE_MAX 160

/* The contract's query, verbatim: tests/fake-github checks it. */
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
    "        commits(last: 1) { nodes { commit { statusCheckRollup { state } } } }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

/* One HTTP answer: the body (capped) and the headers that matter. */
struct prsync_response {
    char *body;               /* malloc'd, NUL-terminated; owned here */
    size_t len, cap, max;
    bool too_large;           /* the body passed max */
    bool nomem;               /* growing the body failed */
    long status;
    long ratelimit_remaining; /* -1 when absent */
    int64_t ratelimit_reset_ms; /* 0 when absent */
    int64_t retry_after_ms;   /* absolute epoch ms; 0 when absent */
};

int rv_prsync_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? RV_OK
                                                             : RV_ERR_HTTP;
}

void rv_prsync_global_cleanup(void)
{
    curl_global_cleanup();
}

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

/* ---- libcurl callbacks ------------------------------------------------ */

static size_t prsync_on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct prsync_response *r = ud;
    size_t n = size * nmemb;
    if (n > r->max - r->len) {
        r->too_large = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 16384;
        while (cap < r->len + n + 1)
            cap *= 2;
        if (cap > r->max + 1)
            cap = r->max + 1;
        char *nb = realloc(r->body, cap);
        if (!nb) {
            r->nomem = true;
            return 0;
        }
        r->body = nb;
        r->cap = cap;
    }
    memcpy(r->body + r->len, ptr, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

/* Called once per header line (not NUL-terminated, CRLF included). */
static size_t prsync_on_header(char *ptr, size_t size, size_t nitems, void *ud)
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
    if (!r->body || r->len == 0)
        return;
    json_t *doc = json_loadb(r->body, r->len, 0, NULL);
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

static void prsync_set_rate_limited(struct rv_sync_error *err, int64_t at,
                                    const char *what)
{
    char iso[32];
    rv_iso8601(at, iso, sizeof(iso));
    rv_sync_error_set(err, "rate_limited",
                      "GitHub rate limit reached (%s); retrying after %s",
                      what, iso);
    err->retry_at_ms = at;
}

/* Turns a non-200 answer into err; returns the rv_err to hand back. */
static int prsync_http_error(const struct prsync_response *r, bool has_token,
                             struct rv_sync_error *err)
{
    char msg[PRSYNC_QUOTE_MAX + 1];
    prsync_body_message(r, msg, sizeof(msg));
    if (r->status == 401) {
        if (has_token)
            rv_sync_error_set(err, "unauthorized",
                              "GitHub rejected the token (HTTP 401)%s%s",
                              msg[0] ? ": " : "", msg);
        else
            rv_sync_error_set(err, "unauthorized",
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
        rv_sync_error_set(err, "unauthorized",
                          "GitHub refused access (HTTP 403)%s%s",
                          msg[0] ? ": " : "", msg);
        return RV_ERR_HTTP;
    }
    rv_sync_error_set(err, "github_unavailable", "GitHub answered HTTP %ld%s%s",
                      r->status, msg[0] ? ": " : "", msg);
    return RV_ERR_HTTP;
}

/* Looks at a 200 answer's "errors" array. Returns RV_OK when there is none,
 * else fills err and returns the rv_err to hand back. */
static int prsync_graphql_errors(json_t *doc, int64_t ratelimit_reset_ms,
                                 struct rv_sync_error *err)
{
    json_t *errors = json_object_get(doc, "errors");
    if (!errors || json_is_null(errors))
        return RV_OK;
    if (!json_is_array(errors) || json_array_size(errors) == 0) {
        rv_sync_error_set(err, "bad_response",
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
        rv_sync_error_set(err, "not_found",
                          "GitHub has no repository of that name, or the "
                          "token cannot see it");
        return RV_ERR_HTTP;
    }
    char msg[PRSYNC_QUOTE_MAX + 1];
    prsync_quote_message(first_msg, msg, sizeof(msg));
    if (forbidden) {
        rv_sync_error_set(err, "unauthorized",
                          "GitHub refused access to the repository: %s", msg);
        return RV_ERR_HTTP;
    }
    rv_sync_error_set(err, "bad_response", "GitHub reported an error (%s): %s",
                      first_type ? first_type : "no type", msg);
    return RV_ERR_DECODE;
}

/* ---- shape validation ------------------------------------------------- */

enum prsync_shape { SH_OBJ, SH_ARR, SH_STR, SH_INT, SH_BOOL };

static bool prsync_shape_ok(const json_t *v, enum prsync_shape want)
{
    switch (want) {
    case SH_OBJ: return json_is_object(v);
    case SH_ARR: return json_is_array(v);
    case SH_STR: return json_is_string(v);
    case SH_INT: return json_is_integer(v);
    case SH_BOOL: return json_is_boolean(v);
    }
    return false;
}

static const char *prsync_shape_name(enum prsync_shape want)
{
    switch (want) {
    case SH_OBJ: return "an object";
    case SH_ARR: return "an array";
    case SH_STR: return "a string";
    case SH_INT: return "an integer";
    case SH_BOOL: return "a boolean";
    }
    return "?";
}

/* Returns obj[key] (borrowed) when it has the wanted type, NULL when it is
 * null and nullable is true. Otherwise sets *bad, fills err naming
 * path.key, and returns NULL. Does nothing once *bad is set, so a run of
 * calls reports the first problem. */
static json_t *prsync_member(const json_t *obj, const char *path,
                             const char *key, enum prsync_shape want,
                             bool nullable, struct rv_sync_error *err,
                             bool *bad)
{
    if (*bad)
        return NULL;
    json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    if (v && json_is_null(v) && nullable)
        return NULL;
    if (!v || !prsync_shape_ok(v, want)) {
        *bad = true;
        rv_sync_error_set(err, "bad_response",
                          "GitHub's answer: %s.%s is %s, expected %s%s", path,
                          key,
                          !v ? "missing" : json_is_null(v) ? "null"
                                                            : "of another type",
                          prsync_shape_name(want), nullable ? " or null" : "");
        return NULL;
    }
    return v;
}

/* Lower-cases an enum value ("CHANGES_REQUESTED") into buf; false when it
 * does not fit or is not plain ASCII. */
static bool prsync_lower(const char *s, char *buf, size_t size)
{
    size_t i = 0;
    for (; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i + 1 >= size || c >= 0x80 || iscntrl(c))
            return false;
        buf[i] = (char)tolower(c);
    }
    buf[i] = '\0';
    return true;
}

/* Converts one GraphQL PR node into the contract's PR object. Returns a new
 * reference, or NULL with *bad set and err filled (or NULL on NOMEM, with
 * *bad unset). */
static json_t *prsync_node_to_pr(const json_t *node, const char *path,
                                 struct rv_sync_error *err, bool *bad)
{
    if (!json_is_object(node)) {
        *bad = true;
        rv_sync_error_set(err, "bad_response",
                          "GitHub's answer: %s is not an object", path);
        return NULL;
    }
    /* Reads node.<key>; see prsync_member. */
#define NODE_MEMBER(key, shape, nullable)                                   \
    prsync_member(node, path, (key), (shape), (nullable), err, bad)
    json_t *number = NODE_MEMBER("number", SH_INT, false);
    json_t *title = NODE_MEMBER("title", SH_STR, false);
    json_t *url = NODE_MEMBER("url", SH_STR, false);
    json_t *draft = NODE_MEMBER("isDraft", SH_BOOL, false);
    json_t *state = NODE_MEMBER("state", SH_STR, false);
    json_t *updated = NODE_MEMBER("updatedAt", SH_STR, false);
    json_t *author = NODE_MEMBER("author", SH_OBJ, true);
    json_t *head_ref = NODE_MEMBER("headRefName", SH_STR, false);
    json_t *head_oid = NODE_MEMBER("headRefOid", SH_STR, false);
    json_t *base_ref = NODE_MEMBER("baseRefName", SH_STR, false);
    json_t *cross = NODE_MEMBER("isCrossRepository", SH_BOOL, false);
    json_t *head_repo = NODE_MEMBER("headRepository", SH_OBJ, true);
    json_t *review = NODE_MEMBER("reviewDecision", SH_STR, true);
    json_t *commits = NODE_MEMBER("commits", SH_OBJ, false);
#undef NODE_MEMBER
    if (*bad)
        return NULL;

    char sub[320];
    const char *login = NULL, *nwo = NULL, *rollup_state = NULL;
    if (author) {
        snprintf(sub, sizeof(sub), "%s.author", path);
        login = json_string_value(
            prsync_member(author, sub, "login", SH_STR, false, err, bad));
    }
    if (head_repo) {
        snprintf(sub, sizeof(sub), "%s.headRepository", path);
        nwo = json_string_value(prsync_member(head_repo, sub, "nameWithOwner",
                                              SH_STR, false, err, bad));
    }
    snprintf(sub, sizeof(sub), "%s.commits", path);
    json_t *cnodes =
        prsync_member(commits, sub, "nodes", SH_ARR, false, err, bad);
    if (*bad)
        return NULL;
    if (json_array_size(cnodes) > 0) {
        snprintf(sub, sizeof(sub), "%s.commits.nodes[0]", path);
        json_t *commit = prsync_member(json_array_get(cnodes, 0), sub, "commit",
                                       SH_OBJ, false, err, bad);
        snprintf(sub, sizeof(sub), "%s.commits.nodes[0].commit", path);
        json_t *rollup = prsync_member(commit, sub, "statusCheckRollup", SH_OBJ,
                                       true, err, bad);
        if (rollup) {
            snprintf(sub, sizeof(sub),
                     "%s.commits.nodes[0].commit.statusCheckRollup", path);
            rollup_state = json_string_value(
                prsync_member(rollup, sub, "state", SH_STR, false, err, bad));
        }
    }
    if (*bad)
        return NULL;

    json_int_t num = json_integer_value(number);
    int64_t updated_ms;
    char updated_iso[32], state_lc[32], ci_lc[32], review_lc[32];
    const char *bad_field = NULL;
    if (num <= 0)
        bad_field = "number";
    else if (rv_parse_iso8601(json_string_value(updated), &updated_ms) != 0)
        bad_field = "updatedAt";
    else if (!prsync_lower(json_string_value(state), state_lc,
                           sizeof(state_lc)))
        bad_field = "state";
    else if (rollup_state && !prsync_lower(rollup_state, ci_lc, sizeof(ci_lc)))
        bad_field = "commits.nodes[0].commit.statusCheckRollup.state";
    else if (review &&
             !prsync_lower(json_string_value(review), review_lc,
                           sizeof(review_lc)))
        bad_field = "reviewDecision";
    if (bad_field) {
        *bad = true;
        rv_sync_error_set(err, "bad_response",
                          "GitHub's answer: %s.%s has an unexpected value",
                          path, bad_field);
        return NULL;
    }
    rv_iso8601(updated_ms, updated_iso, sizeof(updated_iso));

    return json_pack("{s:I, s:O, s:s, s:O, s:O, s:s?, s:O, s:s?, s:O, s:O,"
                     " s:s?, s:s?, s:s, s:O}",
                     "number", num, "title", title, "state", state_lc,
                     "draft", draft, "url", url, "author", login,
                     "headRef", head_ref, "headRepo", nwo, "baseRef", base_ref,
                     "isCrossRepository", cross,
                     "ciStatus", rollup_state ? ci_lc : NULL,
                     "reviewDecision", review ? review_lc : NULL,
                     "updatedAt", updated_iso, "headSha", head_oid);
}

/* Validates one page and appends its PRs to prs (skipping numbers already
 * in seen). On RV_OK, *has_next and *end_cursor (borrowed from doc) are
 * set. */
static int prsync_take_page(json_t *doc, json_t *prs, json_t *seen,
                            bool *has_next, const char **end_cursor,
                            struct rv_sync_error *err)
{
    bool bad = false;
    if (!json_is_object(doc)) {
        rv_sync_error_set(err, "bad_response",
                          "GitHub's answer is not a JSON object");
        return RV_ERR_DECODE;
    }
    json_t *data =
        prsync_member(doc, "(answer)", "data", SH_OBJ, false, err, &bad);
    if (bad)
        return RV_ERR_DECODE;
    json_t *repo = json_object_get(data, "repository");
    if (!repo || json_is_null(repo)) {
        rv_sync_error_set(err, "not_found",
                          "GitHub has no repository of that name, or the "
                          "token cannot see it");
        return RV_ERR_HTTP;
    }
    json_t *pulls = prsync_member(data, "data", "repository", SH_OBJ, false,
                                  err, &bad);
    pulls = prsync_member(pulls, "data.repository", "pullRequests", SH_OBJ,
                          false, err, &bad);
    const char *pr_path = "data.repository.pullRequests";
    json_t *info = prsync_member(pulls, pr_path, "pageInfo", SH_OBJ, false, err,
                                 &bad);
    json_t *nodes = prsync_member(pulls, pr_path, "nodes", SH_ARR, false, err,
                                  &bad);
    const char *info_path = "data.repository.pullRequests.pageInfo";
    json_t *next = prsync_member(info, info_path, "hasNextPage", SH_BOOL,
                                 false, err, &bad);
    json_t *cursor = prsync_member(info, info_path, "endCursor", SH_STR, true,
                                   err, &bad);
    if (bad)
        return RV_ERR_DECODE;
    *has_next = json_is_true(next);
    *end_cursor = json_string_value(cursor);

    size_t i;
    json_t *node;
    json_array_foreach(nodes, i, node) {
        char path[96];
        snprintf(path, sizeof(path), "%s.nodes[%zu]", pr_path, i);
        json_t *pr = prsync_node_to_pr(node, path, err, &bad);
        if (!pr)
            return bad ? RV_ERR_DECODE : RV_ERR_NOMEM;
        char key[32];
        snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(pr, "number")));
        if (json_object_get(seen, key)) {
            json_decref(pr); /* moved between pages; the first one wins */
            continue;
        }
        if (json_object_set_new(seen, key, json_true()) != 0 ||
            json_array_append_new(prs, pr) != 0)
            return RV_ERR_NOMEM;
    }
    return RV_OK;
}

int rv_prsync_parse_page(const char *body, size_t len,
                         int64_t ratelimit_reset_ms, json_t *prs,
                         json_t *seen, bool *has_next, char **end_cursor,
                         struct rv_sync_error *err)
{
    json_error_t jerr;
    const char *cursor = NULL;
    *has_next = false;
    *end_cursor = NULL;
    json_t *doc = json_loadb(body ? body : "", body ? len : 0, 0, &jerr);
    if (!doc) {
        rv_sync_error_set(err, "bad_response",
                          "GitHub's answer is not valid JSON (%s, at "
                          "byte %d)",
                          jerr.text, jerr.position);
        return RV_ERR_DECODE;
    }
    int rc = RV_OK;
    if (json_is_object(doc))
        rc = prsync_graphql_errors(doc, ratelimit_reset_ms, err);
    if (rc == RV_OK)
        rc = prsync_take_page(doc, prs, seen, has_next, &cursor, err);
    if (rc == RV_OK && cursor && !(*end_cursor = strdup(cursor)))
        rc = RV_ERR_NOMEM;
    if (rc != RV_OK)
        *has_next = false;
    json_decref(doc);
    return rc;
}

/* What rv_prsync_run makes of one complete answer: the error of a non-200,
 * or the page of a 200. *end_cursor as for rv_prsync_parse_page. */
static int prsync_answer(const struct prsync_response *r, bool has_token,
                         json_t *prs, json_t *seen, bool *has_next,
                         char **end_cursor, struct rv_sync_error *err)
{
    *has_next = false;
    *end_cursor = NULL;
    if (r->status != 200)
        return prsync_http_error(r, has_token, err);
    return rv_prsync_parse_page(r->body, r->len, r->ratelimit_reset_ms, prs,
                                seen, has_next, end_cursor, err);
}

int rv_prsync_parse_answer(long status, const char *headers, size_t hlen,
                           const char *body, size_t len, bool has_token,
                           json_t *prs, json_t *seen, bool *has_next,
                           char **end_cursor, struct rv_sync_error *err)
{
    struct prsync_response r = {0};
    r.status = status;
    r.ratelimit_remaining = -1;
    /* Read only: prsync_answer never writes or frees the body. */
    r.body = (char *)(body ? body : "");
    r.len = body ? len : 0;
    size_t pos = 0;
    while (headers && pos < hlen) {
        const char *nl = memchr(headers + pos, '\n', hlen - pos);
        size_t n = nl ? (size_t)(nl - (headers + pos)) + 1 : hlen - pos;
        /* One line at a time, as libcurl hands them over. */
        prsync_on_header((char *)(headers + pos), 1, n, &r);
        pos += n;
    }
    return prsync_answer(&r, has_token, prs, seen, has_next, end_cursor, err);
}

/* ---- the run ---------------------------------------------------------- */

static void prsync_response_reset(struct prsync_response *r)
{
    r->len = 0;
    if (r->body)
        r->body[0] = '\0';
    r->too_large = false;
    r->nomem = false;
    r->status = 0;
    r->ratelimit_remaining = -1;
    r->ratelimit_reset_ms = 0;
    r->retry_after_ms = 0;
}

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

    if (!stats)
        stats = &local_stats;
    stats->pages = 0;
    stats->pull_requests = 0;
    stats->ratelimit_remaining = -1;
    stats->ratelimit_reset_ms = 0;
    err->code[0] = '\0';
    err->message[0] = '\0';
    err->retry_at_ms = 0;
    if (out)
        *out = NULL;

    if (!out || !opts || !opts->graphql_url || !*opts->graphql_url ||
        !prsync_split_name(opts->owner_name, owner, sizeof(owner), name,
                           sizeof(name))) {
        rv_sync_error_set(err, "bad_request",
                          "PR sync needs a GraphQL URL and an owner/name");
        return RV_ERR_INVALID;
    }
    bool has_token = opts->token && *opts->token;
    if (has_token && strpbrk(opts->token, "\r\n")) {
        rv_sync_error_set(err, "unauthorized",
                          "GITHUB_TOKEN contains a line break");
        return RV_ERR_INVALID;
    }
    int timeout_s = opts->timeout_s > 0 ? opts->timeout_s : 30;
    int max_pages = opts->max_pages > 0 ? opts->max_pages : 1;
    resp.max = opts->max_body_bytes ? opts->max_body_bytes
                                    : RV_PRSYNC_MAX_BODY_DEFAULT;

    prs = json_array();
    seen = json_object();
    curl = curl_easy_init();
    if (!prs || !seen || !curl) {
        rc = RV_ERR_NOMEM;
        goto out;
    }

    if (has_token) {
        /* The only place the token is written: one request header. */
        size_t hlen = strlen(opts->token) + 32;
        char *auth = malloc(hlen);
        if (!auth) {
            rc = RV_ERR_NOMEM;
            goto out;
        }
        snprintf(auth, hlen, "Authorization: bearer %s", opts->token);
        struct curl_slist *h = curl_slist_append(headers, auth);
        explicit_bzero(auth, hlen);
        free(auth);
        if (!h) {
            rc = RV_ERR_NOMEM;
            goto out;
        }
        headers = h;
    }
    static const char *const fixed_headers[] = {
        "Content-Type: application/json",
        "Accept: application/json",
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

    errbuf[0] = '\0';
    curl_easy_setopt(curl, CURLOPT_URL, opts->graphql_url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, PRSYNC_USER_AGENT);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)timeout_s);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT,
                     (long)(timeout_s < 10 ? timeout_s : 10));
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)resp.max);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, prsync_on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, prsync_on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &resp);

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

        CURLcode cc = curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp.status);
        if (resp.ratelimit_remaining >= 0)
            stats->ratelimit_remaining = resp.ratelimit_remaining;
        if (resp.ratelimit_reset_ms > 0)
            stats->ratelimit_reset_ms = resp.ratelimit_reset_ms;
        LOGF(RV_LOG_DEBUG, opts->repo_id, opts->job_id,
             json_pack("{s:i, s:i, s:i, s:I}", "page", page + 1, "status",
                       (int)resp.status, "curl", (int)cc, "bytes",
                       (json_int_t)resp.len),
             "github graphql answered");

        if (cc != CURLE_OK) {
            if (resp.nomem) {
                rc = RV_ERR_NOMEM;
            } else if (resp.too_large || cc == CURLE_FILESIZE_EXCEEDED) {
                rv_sync_error_set(err, "bad_response",
                                  "GitHub's answer is larger than %zu bytes",
                                  resp.max);
                rc = RV_ERR_TOO_LARGE;
            } else if (cc == CURLE_OPERATION_TIMEDOUT) {
                rv_sync_error_set(err, "github_unavailable",
                                  "GitHub did not answer within %d s",
                                  timeout_s);
                rc = RV_ERR_TIMEOUT;
            } else if (cc == CURLE_BAD_CONTENT_ENCODING) {
                rv_sync_error_set(err, "bad_response",
                                  "GitHub's answer could not be decoded: %s",
                                  errbuf[0] ? errbuf : curl_easy_strerror(cc));
                rc = RV_ERR_DECODE;
            } else {
                rv_sync_error_set(err, "github_unavailable",
                                  "could not reach GitHub: %s",
                                  errbuf[0] ? errbuf : curl_easy_strerror(cc));
                rc = RV_ERR_HTTP;
            }
            goto out;
        }
        bool has_next = false;
        rc = prsync_answer(&resp, has_token, prs, seen, &has_next,
                           &end_cursor, err);
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
            rv_sync_error_set(err, "bad_response",
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
    if (rc == RV_ERR_NOMEM && !err->code[0])
        rv_sync_error_set(err, "internal_error", "out of memory in PR sync");
    if (rc != RV_OK)
        LOGF(RV_LOG_DEBUG, opts ? opts->repo_id : NULL,
             opts ? opts->job_id : NULL,
             json_pack("{s:s, s:i}", "code", err->code, "pages",
                       stats->pages),
             "PR sync failed: %s", err->message);
    json_decref(prs);
    json_decref(seen);
    free(payload);
    free(cursor);
    free(end_cursor);
    free(resp.body);
    if (curl)
        curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
    return rc;
}

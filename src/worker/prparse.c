/* Reading one answer of GitHub's GraphQL API: its shape validated member
 * by member, its PR nodes mapped onto the contract's PR objects, and the
 * page's cursor (rv_prsync_parse_page, rv_prsync_parse_answer in
 * prsync.h; prsync_answer in prsync_private.h). */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/util.h"
#include "worker/prsync.h"
#include "worker/prsync_private.h"

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
        rv_sync_error_set(err, RV_ERR_BAD_RESPONSE,
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
        rv_sync_error_set(err, RV_ERR_BAD_RESPONSE,
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
        rv_sync_error_set(err, RV_ERR_BAD_RESPONSE,
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
        rv_sync_error_set(err, RV_ERR_BAD_RESPONSE,
                          "GitHub's answer is not a JSON object");
        return RV_ERR_DECODE;
    }
    json_t *data =
        prsync_member(doc, "(answer)", "data", SH_OBJ, false, err, &bad);
    if (bad)
        return RV_ERR_DECODE;
    json_t *rl = json_object_get(data, "rateLimit");
    if (rl && !json_is_null(rl)) {
        /* Optional (the contract's query lacks it), but never malformed. */
        const char *rl_path = "data.rateLimit";
        prsync_member(rl, rl_path, "cost", SH_INT, false, err, &bad);
        prsync_member(rl, rl_path, "remaining", SH_INT, false, err, &bad);
        prsync_member(rl, rl_path, "limit", SH_INT, false, err, &bad);
        prsync_member(rl, rl_path, "resetAt", SH_STR, false, err, &bad);
        if (bad)
            return RV_ERR_DECODE;
    }
    json_t *repo = json_object_get(data, "repository");
    if (!repo || json_is_null(repo)) {
        rv_sync_error_set(err, RV_ERR_NOT_FOUND,
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
                         int64_t ratelimit_reset_ms, json_t *prs, json_t *seen,
                         bool *has_next, char **end_cursor,
                         struct rv_sync_error *err)
{
    json_error_t jerr;
    const char *cursor = NULL;
    *has_next = false;
    *end_cursor = NULL;
    json_t *doc = json_loadb(body ? body : "", body ? len : 0, 0, &jerr);
    if (!doc) {
        rv_sync_error_set(err, RV_ERR_BAD_RESPONSE,
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

bool prsync_graphql_budget(const char *body, size_t len,
                           struct rv_github_budget *b)
{
    json_t *doc = body ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *data = json_is_object(doc) ? json_object_get(doc, "data") : NULL;
    json_t *rl =
        json_is_object(data) ? json_object_get(data, "rateLimit") : NULL;
    json_t *cost = json_object_get(rl, "cost");
    json_t *remaining = json_object_get(rl, "remaining");
    json_t *limit = json_object_get(rl, "limit");
    const char *reset = json_string_value(json_object_get(rl, "resetAt"));
    int64_t reset_ms = 0;
    bool ok = json_is_object(rl) && json_is_integer(cost) &&
              json_is_integer(remaining) && json_is_integer(limit) && reset &&
              rv_parse_iso8601(reset, &reset_ms) == 0 &&
              json_integer_value(remaining) >= 0 &&
              json_integer_value(remaining) <= INT32_MAX &&
              json_integer_value(limit) >= 0 &&
              json_integer_value(limit) <= INT32_MAX &&
              json_integer_value(cost) >= 0 &&
              json_integer_value(cost) <= INT32_MAX;
    if (ok) {
        b->cost = (long)json_integer_value(cost);
        b->remaining = (long)json_integer_value(remaining);
        b->limit = (long)json_integer_value(limit);
        b->reset_ms = reset_ms;
    }
    json_decref(doc);
    return ok;
}

int prsync_answer(const struct prsync_response *r, bool has_token, json_t *prs,
                  json_t *seen, bool *has_next, char **end_cursor,
                  struct rv_sync_error *err)
{
    *has_next = false;
    *end_cursor = NULL;
    if (r->status != 200)
        return prsync_http_error(r, has_token, err);
    return rv_prsync_parse_page(r->body.buf, r->body.len, r->ratelimit_reset_ms,
                                prs, seen, has_next, end_cursor, err);
}

int rv_prsync_parse_answer(long status, const struct rv_github_headers *h,
                           const char *body, size_t len, bool has_token,
                           json_t *prs, json_t *seen, bool *has_next,
                           char **end_cursor, struct rv_sync_error *err)
{
    static const struct rv_github_headers none = {0};
    struct prsync_response r = {0};
    r.status = status;
    prsync_set_headers(&r, h ? h : &none);
    /* Read only: prsync_answer never writes or frees the body. */
    r.body.buf = (char *)(body ? body : "");
    r.body.len = body ? len : 0;
    return prsync_answer(&r, has_token, prs, seen, has_next, end_cursor, err);
}

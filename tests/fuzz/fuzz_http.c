/*
 * The API's request path without a socket or Redis: the request URI as
 * evhttp parses it, the route table (api_route_find, what api_dispatch
 * uses), the repo id check, the query strings of refresh (?kind=) and
 * events (?repo=...), and the JSON body of POST /v1/repos
 * (api_repo_spec_parse), up to the registerRepo command it leads to, and
 * the body cap conn.c chooses from the same line (api_body_cap), and the
 * same line read as an Accept-Encoding header (api_encoding_pick).
 * Input: "METHOD URI" (anything after a second space is ignored), '\n',
 * the body.
 *
 * Properties: a route found for a path gives that path back when its
 * pattern is filled with the id it captured; an id the dispatcher accepts
 * is valid and is the path's own segment, never a cut-down copy; a parser
 * that accepts hands on only valid values, and never a remote URL with a
 * credential in it; every 400 message can be put into the JSON error
 * body.
 */
#include <event2/http.h>
#include <string.h>

#include "api/api.h"
#include "common/errors.h"
#include "common/log.h"
#include "common/registry.h"
#include "common/util.h"
#include "common/urlpolicy.h"
#include "fuzz.h"

FUZZ_QUIET_INIT

static const struct {
    const char *name;
    int method;
} methods_by_name[] = {
    {"GET", EVHTTP_REQ_GET},         {"POST", EVHTTP_REQ_POST},
    {"HEAD", EVHTTP_REQ_HEAD},       {"PUT", EVHTTP_REQ_PUT},
    {"DELETE", EVHTTP_REQ_DELETE},   {"OPTIONS", EVHTTP_REQ_OPTIONS},
    {"TRACE", EVHTTP_REQ_TRACE},     {"CONNECT", EVHTTP_REQ_CONNECT},
    {"PATCH", EVHTTP_REQ_PATCH},
};

/* The body api_reply_error sends for a 400 with this message, made as
 * reply_verror (http.c) makes it. */
static void check_error_body(const char *msg)
{
    char text[512];
    snprintf(text, sizeof(text), "%s", msg);
    rv_utf8_truncate(text);
    json_t *body = json_pack("{s:{s:s,s:s}}", "error", "code", "invalid",
                             "message", text);
    FUZZ_CHECK(body != NULL);
    json_decref(body);
}

/* The pattern with "{id}" replaced by id equals path. */
static void check_route_gives_path(const char *pattern, const char *id,
                                   const char *path)
{
    const char *slot = strstr(pattern, "{id}");
    if (!slot) {
        FUZZ_CHECK(strcmp(pattern, path) == 0);
        return;
    }
    size_t pre = (size_t)(slot - pattern), idlen = strlen(id);
    FUZZ_CHECK(strncmp(path, pattern, pre) == 0);
    FUZZ_CHECK(strncmp(path + pre, id, idlen) == 0);
    FUZZ_CHECK(strcmp(path + pre + idlen, slot + 4) == 0);
}

static void check_refresh_query(const char *query)
{
    char *kind = api_query_value(query, "kind");
    bool wanted[2], explicit_prs;
    int rc = api_refresh_kinds(kind, wanted, &explicit_prs);
    bool known = !kind || strcmp(kind, "all") == 0 ||
                 strcmp(kind, "branches") == 0 || strcmp(kind, "prs") == 0;
    FUZZ_CHECK((rc == 0) == known);
    if (rc == 0) {
        FUZZ_CHECK(wanted[RV_KIND_BRANCHES] || wanted[RV_KIND_PRS]);
        FUZZ_CHECK(explicit_prs == (kind && strcmp(kind, "prs") == 0));
    }
    free(kind);
}

static void check_events_query(const char *query)
{
    static char repos[API_MAX_SSE_REPOS][RV_REPO_ID_MAX + 1];
    size_t n = 0;
    const char *why = NULL;
    int rc = api_events_parse_repos(query, repos, &n, &why);
    if (rc != RV_OK) {
        FUZZ_CHECK(rc == RV_ERR_DECODE || rc == RV_ERR_INVALID);
        FUZZ_CHECK(why != NULL);
        return;
    }
    FUZZ_CHECK(why == NULL && n <= API_MAX_SSE_REPOS);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(rv_repo_id_valid(repos[i]));
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(repos[i], repos[j]) != 0);
    }
}

static void check_create_body(const uint8_t *body, size_t len)
{
    struct rv_repo_spec spec;
    json_t *doc = (json_t *)"unset";
    char msg[256];
    /* The handler hands over a NUL-terminated copy (api_body). */
    char *copy = malloc(len + 1);
    FUZZ_CHECK(copy != NULL);
    if (len)
        memcpy(copy, body, len);
    copy[len] = '\0';
    /* An open policy, so that every URL form gets past it to the rest. */
    static struct rv_url_policy policy;
    static bool have_policy;
    if (!have_policy) {
        FUZZ_CHECK(rv_url_policy_init(&policy, "https,http,ssh,git", "/",
                                      true, NULL, NULL, msg,
                                      sizeof(msg)) == RV_OK);
        have_policy = true;
    }
    int rc = api_repo_spec_parse(copy, len, &policy, &spec, &doc, msg,
                                 sizeof(msg));
    free(copy);
    if (rc != RV_OK) {
        FUZZ_CHECK(rc == RV_ERR_DECODE || rc == RV_ERR_INVALID ||
                   rc == RV_ERR_URL_NOT_ALLOWED);
        FUZZ_CHECK(doc == NULL);
        check_error_body(msg);
        return;
    }
    FUZZ_CHECK(doc != NULL);
    FUZZ_CHECK(rv_repo_id_valid(spec.id));
    FUZZ_CHECK(rv_remote_url_valid(spec.url));
    /* Contract 9: a URL carrying a credential is refused, never stored. */
    char stripped[4096];
    FUZZ_CHECK(rv_url_strip_credentials(spec.url, stripped,
                                        sizeof(stripped)) == 0 &&
               strcmp(stripped, spec.url) == 0);
    FUZZ_CHECK(!spec.github || !*spec.github ||
               rv_github_name_valid(spec.github));
    FUZZ_CHECK(spec.interval_s == 0 ||
               (spec.interval_s >= 10 && spec.interval_s <= 86400));
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    FUZZ_CHECK(rv_registry_add_cmd(&cmd, &spec, 1764547200000) == RV_OK);
    rv_cmd_free(&cmd);
    json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char line[API_MAX_HEADERS];
    const uint8_t *body;
    size_t len;
    fuzz_split_line(data, size, line, sizeof(line), &body, &len);

    /* The body cap conn.c picks from the line: one of three, and the
     * webhook's only when webhooks are on. */
    size_t line_len = strlen(line), spaces = 0;
    for (size_t i = 0; i < line_len; i++)
        spaces += line[i] == ' ';
    size_t cap = api_body_cap(line, line_len, true);
    size_t cap_off = api_body_cap(line, line_len, false);
    FUZZ_CHECK(cap == 0 || cap == API_MAX_BODY || cap == API_MAX_WEBHOOK_BODY);
    FUZZ_CHECK(cap_off == cap || (cap == API_MAX_WEBHOOK_BODY && cap_off == 0));

    /* The line as an Accept-Encoding header (encoding.c): one of the
     * codings, and never br once the header said br;q=0. */
    enum api_encoding enc = api_encoding_pick(line);
    FUZZ_CHECK(enc >= API_ENC_IDENTITY && enc < API_ENC_COUNT);
    char refused[API_MAX_HEADERS + 16];
    snprintf(refused, sizeof(refused), "br;q=0,%s", line);
    FUZZ_CHECK(api_encoding_pick(refused) != API_ENC_BR);

    char *sp = strchr(line, ' ');
    if (!sp)
        return 0;
    *sp = '\0';
    char *target = sp + 1;
    char *version = strchr(target, ' ');
    if (version)
        *version = '\0';
    int method = -1;
    for (size_t i = 0; i < sizeof(methods_by_name) / sizeof(*methods_by_name);
         i++)
        if (strcmp(line, methods_by_name[i].name) == 0)
            method = methods_by_name[i].method;
    if (method < 0)
        return 0; /* evhttp answers unknown methods itself */

    /* As evhttp_parse_request_line does it. */
    struct evhttp_uri *uri =
        evhttp_uri_parse_with_flags(target, EVHTTP_URI_NONCONFORMANT);
    if (!uri)
        return 0;
    const char *path = evhttp_uri_get_path(uri);
    const char *query = evhttp_uri_get_query(uri);
    if (!path || path[0] != '/')
        goto out; /* 400 in api_dispatch */

    char id[RV_REPO_ID_MAX + 1];
    int allowed = 0;
    bool too_long = false;
    const struct api_route *route =
        api_route_find(method, path, id, sizeof(id), &allowed, &too_long);
    /* "METHOD TARGET VERSION": conn.c read the same route. */
    if (spaces == 2) {
        bool takes_body = route && !route->stream &&
                          (method == EVHTTP_REQ_POST ||
                           method == EVHTTP_REQ_PUT ||
                           method == EVHTTP_REQ_PATCH);
        size_t want = !takes_body ? 0
                      : route->handler == api_webhooks_github
                          ? API_MAX_WEBHOOK_BODY
                          : API_MAX_BODY;
        FUZZ_CHECK(cap == want);
    }
    if (!route) {
        FUZZ_CHECK(id[0] == '\0' && !too_long);
        goto out; /* 404, 405, or an OPTIONS pre-flight */
    }
    FUZZ_CHECK(allowed & route->method);
    FUZZ_CHECK(method == route->method ||
               (method == EVHTTP_REQ_HEAD && route->method == EVHTTP_REQ_GET));
    FUZZ_CHECK(!(method == EVHTTP_REQ_HEAD && route->stream));
    bool has_id = strstr(route->pattern, "{id}") != NULL;
    FUZZ_CHECK(has_id || id[0] == '\0');
    if (has_id && (too_long || !rv_repo_id_valid(id)))
        goto out; /* 400: what api_dispatch refuses */
    check_route_gives_path(route->pattern, id, path);

    if (strcmp(route->name, "refresh") == 0)
        check_refresh_query(query);
    else if (strcmp(route->name, "events") == 0)
        check_events_query(query);
    else if (strcmp(route->name, "repos_create") == 0)
        check_create_body(body, len);
out:
    evhttp_uri_free(uri);
    return 0;
}

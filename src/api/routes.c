/*
 * The route table and the dispatcher. Every request goes through
 * api_dispatch: connection limit, framing, Host, route match (404/405),
 * CORS pre-flight, the Origin of writes, the caller's token and scope
 * (access.c), the {id} and whether the token may see it, then the
 * handler.
 */
#include <event2/http.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "common/errors.h"

#define GET EVHTTP_REQ_GET
#define POST EVHTTP_REQ_POST
#define DELETE EVHTTP_REQ_DELETE

/* What a route needs (access.c) and whether it is an SSE stream (no
 * HEAD). */
#define OPEN API_NEED_NONE, false
#define SIGNED API_NEED_SIGNED, false
#define READ API_NEED_READ, false
#define WRITE API_NEED_WRITE, false
#define ADMIN API_NEED_ADMIN, false
#define METRICS API_NEED_METRICS, false
#define STREAM API_NEED_READ, true

/* The whole API (one row a route, wider than 80 columns so that it reads
 * as a table). */
/* clang-format off */ /* checksrc: wide */
static const struct api_route routes[] = {
    {GET,    "/v1/repos",               api_repos_list,         "repos_list",    READ},
    {POST,   "/v1/repos",               api_repos_create,       "repos_create",  ADMIN},
    {GET,    "/v1/repos/{id}",          api_repos_get,          "repos_get",     READ},
    {DELETE, "/v1/repos/{id}",          api_repos_delete,       "repos_delete",  ADMIN},
    {GET,    "/v1/repos/{id}/overview", api_overview_get,       "overview",      READ},
    {POST,   "/v1/repos/{id}/refresh",  api_refresh_post,       "refresh",       WRITE},
    {GET,    "/v1/repos/{id}/events",   api_events_repo,        "events_repo",   STREAM},
    {GET,    "/v1/events",              api_events_many,        "events",        STREAM},
    {GET,    "/v1/orgs",                api_orgs_list,          "orgs_list",     READ},
    {POST,   "/v1/orgs",                api_orgs_create,        "orgs_create",   ADMIN},
    {GET,    "/v1/orgs/{id}",           api_orgs_get,           "orgs_get",      READ},
    {DELETE, "/v1/orgs/{id}",           api_orgs_delete,        "orgs_delete",   ADMIN},
    {POST,   "/v1/orgs/{id}/refresh",   api_orgs_refresh,       "orgs_refresh",  WRITE},
    {POST,   "/v1/webhooks/github",     api_webhooks_github,    "webhooks",      SIGNED},
    {GET,    "/v1/session",             api_session_get,        "session",       OPEN},
    {POST,   "/v1/session",             api_session_post,       "session",       OPEN},
    {DELETE, "/v1/session",             api_session_delete,     "session",       OPEN},
    {POST,   "/v1/stream-tokens",       api_stream_tokens_post, "stream_tokens", READ},
    {GET,    "/v1/queue",               api_ops_queue,          "queue",         READ},
    {GET,    "/v1/workers",             api_ops_workers,        "workers",       READ},
    {GET,    "/v1/deadletters",         api_ops_deadletters,    "deadletters",   READ},
    {POST,   "/v1/deadletters/{n}/retry", api_ops_deadletter_retry, "deadletters_retry", ADMIN},
    {DELETE, "/v1/deadletters/{n}",     api_ops_deadletter_drop, "deadletters_drop", ADMIN},
    {GET,    "/v1/stats",               api_ops_stats,          "stats",         READ},
    {GET,    "/v1/openapi.json",        api_openapi_get,        "openapi",       OPEN},
    {GET,    "/healthz",                api_healthz,            "healthz",       OPEN},
    {GET,    "/readyz",                 api_readyz,             "readyz",        OPEN},
    {GET,    "/metrics",                api_metrics_get,        "metrics",       METRICS},
    {GET,    "/",                       api_static_index,       "dashboard",     OPEN},
    {GET,    "/index.html",             api_static_index,       "dashboard",     OPEN},
    {GET,    "/app.js",                 api_static_index,       "dashboard",     OPEN},
    {GET,    "/app.css",                api_static_index,       "dashboard",     OPEN},
    {GET,    "/ops.js",                 api_static_index,       "dashboard",     OPEN},
    {GET,    "/repoview-client.js",     api_static_index,       "dashboard",     OPEN},
};
/* clang-format on */ /* checksrc: end */

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Matches path against pattern; "{id}" (and "{n}") matches one non-empty
 * segment, copied into id (truncated copies fail the id check later). */
static bool route_match(const char *pattern, const char *path, char *id,
                        size_t idlen, bool *id_too_long)
{
    while (*pattern && *path) {
        /* Every request walks the table: a placeholder is told by its
         * first character before any comparison of words. */
        size_t plen = *pattern != '{'                    ? 0
                      : strncmp(pattern, "{id}", 4) == 0 ? 4
                      : strncmp(pattern, "{n}", 3) == 0  ? 3
                                                         : 0;
        if (plen) {
            size_t n = strcspn(path, "/");
            if (n == 0)
                return false;
            *id_too_long = n >= idlen;
            size_t copy = n < idlen ? n : idlen - 1;
            memcpy(id, path, copy);
            id[copy] = '\0';
            pattern += plen;
            path += n;
            continue;
        }
        if (*pattern != *path)
            return false;
        pattern++;
        path++;
    }
    return *pattern == '\0' && *path == '\0';
}

const struct api_route *api_route_find(int method, const char *path,
                                       char *id, size_t idlen, int *methods,
                                       bool *id_too_long)
{
    const struct api_route *found = NULL;
    *methods = 0;
    *id_too_long = false;
    if (idlen)
        id[0] = '\0';
    for (size_t i = 0; i < NROUTES; i++) {
        char seg[RV_REPO_ID_MAX + 2];
        seg[0] = '\0';
        bool too_long = false;
        if (!route_match(routes[i].pattern, path, seg, sizeof(seg), &too_long))
            continue;
        *methods |= routes[i].method;
        if (routes[i].method == GET && !routes[i].stream)
            *methods |= EVHTTP_REQ_HEAD;
        bool wanted = method == routes[i].method ||
                      (method == EVHTTP_REQ_HEAD && routes[i].method == GET &&
                       !routes[i].stream);
        if (wanted && !found) {
            found = &routes[i];
            /* A segment that does not fit into id must not pass for the
             * shorter, valid id it would be cut to: that is another repo. */
            *id_too_long = too_long || rv_strlcpy(id, seg, idlen) != 0;
        }
    }
    return found;
}

static void allow_header(struct evhttp_request *req, int methods)
{
    char allow[64] = "";
    static const struct {
        int bit;
        const char *name;
    } names[] = {{GET, "GET"},
                 {EVHTTP_REQ_HEAD, "HEAD"},
                 {POST, "POST"},
                 {DELETE, "DELETE"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!(methods & names[i].bit))
            continue;
        size_t used = strlen(allow);
        snprintf(allow + used, sizeof(allow) - used, "%s%s", used ? ", " : "",
                 names[i].name);
    }
    size_t used = strlen(allow);
    snprintf(allow + used, sizeof(allow) - used, "%sOPTIONS",
             used ? ", " : "");
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Allow", allow);
    evhttp_add_header(out, "Access-Control-Allow-Methods", allow);
}

/* Answers an OPTIONS request (a CORS pre-flight or a plain query). */
static void preflight(struct api_call *call, int methods)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(call->req);
    allow_header(call->req, methods);
    evhttp_add_header(out, "Access-Control-Allow-Headers",
                      "Authorization, Content-Type, If-None-Match, "
                      "Last-Event-ID");
    evhttp_add_header(out, "Access-Control-Max-Age", "600");
    api_reply_bytes(call, 204, NULL, NULL, 0);
}

void api_dispatch(struct evhttp_request *req, void *arg)
{
    struct api *api = arg;
    struct api_call *call = calloc(1, sizeof(*call));
    if (!call) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    call->api = api;
    call->req = req;
    call->started_us = api_mono_us();

    if (!api_conn_admit(api, req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req),
                          "Connection", "close");
        api_reply_error(call, 503, "unavailable",
                        "too many connections (REPOVIEW_MAX_CLIENTS)");
        return;
    }
    if (api->stopping) {
        api_reply_rv_error(call, RV_ERR_SHUTDOWN, "the server is stopping");
        return;
    }
    const char *why = NULL;
    if (!api_framing_ok(req, &why)) {
        /* Closed, so that nothing after this request on the connection
         * (a smuggled second request) is ever read. */
        evhttp_add_header(evhttp_request_get_output_headers(req),
                          "Connection", "close");
        api_reply_error(call, 400, "bad_request", "ambiguous framing: %s",
                        why);
        return;
    }
    if (!api_host_allowed(api, req)) {
        api_reply_error(call, 421, "misdirected_request",
                        "the Host header names a host this server does not "
                        "answer for (REPOVIEW_ALLOWED_HOSTS)");
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || path[0] != '/') {
        api_reply_error(call, 400, "bad_request", "malformed request URI");
        return;
    }

    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    int methods = 0;
    bool id_too_long = false;
    const struct api_route *found = api_route_find(
        (int)method, path, call->id, sizeof(call->id), &methods, &id_too_long);
    if (!methods) {
        api_reply_error(call, 404, "not_found", "no such resource");
        return;
    }
    if (method == EVHTTP_REQ_OPTIONS) {
        preflight(call, methods);
        return;
    }
    if (!found) {
        allow_header(req, methods);
        api_reply_error(call, 405, "method_not_allowed",
                        "method not allowed here");
        return;
    }
    call->route = found;
    bool writes = method == EVHTTP_REQ_POST || method == EVHTTP_REQ_DELETE;
    if (writes && found->need != API_NEED_SIGNED &&
        !api_origin_allowed(api, req)) {
        call->id[0] = '\0';
        api_reply_error(call, 403, "forbidden",
                        "a page on another origin may not change anything "
                        "here (REPOVIEW_CORS_ORIGINS lists those that may)");
        return;
    }
    if (!api_access_check(call))
        return;
    if (strstr(found->pattern, "{id}")) {
        if (id_too_long || !rv_repo_id_valid(call->id)) {
            call->id[0] = '\0';
            api_reply_rv_error(
                call, RV_ERR_INVALID,
                "%s id must match "
                "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
                strncmp(found->pattern, "/v1/orgs/", 9) == 0 ? "org" : "repo");
            return;
        }
        if (!api_access_repo(call, call->id))
            return;
    }
    if (found->stream && !api_conn_stream_admit(api, req)) {
        api_reply_error(call, 429, "too_many_streams",
                        "this address has as many event streams open as "
                        "allowed (REPOVIEW_MAX_STREAMS_PER_IP)");
        return;
    }
    found->handler(call);
}

/* GET /, /app.js, /app.css, /repoview-client.js: the dashboard, and GET
 * /v1/openapi.json, embedded at build time (common/embedded.h), with the
 * headers that keep them to themselves: a
 * Content-Security-Policy that runs only its own script (no inline code,
 * so an injected <script> does nothing), no framing (clickjacking), no
 * Referer leaving it. */
#include <event2/http.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "common/embedded.h"

static const struct rv_embedded_file *find_file(const char *name)
{
    for (size_t i = 0; i < rv_embedded_files_count; i++)
        if (strcmp(rv_embedded_files[i].name, name) == 0)
            return &rv_embedded_files[i];
    return NULL;
}

/* A strong ETag from the bytes (FNV-1a 64); the page never changes while
 * the process runs. */
static void file_etag(const struct rv_embedded_file *f, char *buf,
                      size_t size)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < f->len; i++)
        h = (h ^ (unsigned char)f->data[i]) * 1099511628211ull;
    snprintf(buf, size, "\"%016llx\"", (unsigned long long)h);
}

#define CSP                                                                  \
    "default-src 'none'; script-src 'self'; style-src 'self'; "             \
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "           \
    "form-action 'self'; frame-ancestors 'none'"

/* Answers call with the embedded file name, or 404. */
static void serve_file(struct api_call *call, const char *name)
{
    /* One ETag per file, made on its first request. */
    static char etags[8][32];
    const struct rv_embedded_file *f = find_file(name);
    if (!f) {
        api_reply_error(call, 404, "not_found", "no dashboard was built in");
        return;
    }
    size_t slot = (size_t)(f - rv_embedded_files);
    char local[32];
    char *etag = slot < sizeof(etags) / sizeof(etags[0]) ? etags[slot] : local;
    if (etag == local || !etag[0])
        file_etag(f, etag, sizeof(etags[0]));
    struct evkeyvalq *out = evhttp_request_get_output_headers(call->req);
    evhttp_add_header(out, "ETag", etag);
    evhttp_add_header(out, "Content-Security-Policy", CSP);
    evhttp_add_header(out, "X-Frame-Options", "DENY");
    evhttp_add_header(out, "Referrer-Policy", "no-referrer");
    evhttp_add_header(out, "Cross-Origin-Opener-Policy", "same-origin");
    const char *inm = evhttp_find_header(
        evhttp_request_get_input_headers(call->req), "If-None-Match");
    if (inm && (strcmp(inm, "*") == 0 || strstr(inm, etag))) {
        api_reply_bytes(call, 304, NULL, NULL, 0);
        return;
    }
    api_reply_bytes(call, 200, f->content_type, f->data, f->len);
}

void api_static_index(struct api_call *call)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(call->req);
    const char *path = uri ? evhttp_uri_get_path(uri) : "/";
    serve_file(call, strcmp(path, "/") == 0 ? "index.html" : path + 1);
}

/* The OpenAPI document is open to all, like /healthz and the page: it
 * describes the routes, which the source does too, and holds no data. */
void api_openapi_get(struct api_call *call)
{
    serve_file(call, "openapi.json");
}

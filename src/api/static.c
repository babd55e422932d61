/* GET /: the dashboard page, embedded at build time (common/embedded.h). */
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

void api_static_index(struct api_call *call)
{
    static char etag[32];
    const struct rv_embedded_file *f = find_file("index.html");
    if (!f) {
        api_reply_error(call, 404, "not_found", "no dashboard was built in");
        return;
    }
    if (!etag[0])
        file_etag(f, etag, sizeof(etag));
    struct evkeyvalq *out = evhttp_request_get_output_headers(call->req);
    evhttp_add_header(out, "ETag", etag);
    const char *inm = evhttp_find_header(
        evhttp_request_get_input_headers(call->req), "If-None-Match");
    if (inm && (strcmp(inm, "*") == 0 || strstr(inm, etag))) {
        api_reply_bytes(call, 304, NULL, NULL, 0);
        return;
    }
    api_reply_bytes(call, 200, f->content_type, f->data, f->len);
}

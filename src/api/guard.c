/*
 * Request hygiene, checked by the dispatcher before any route runs and
 * whatever the tokens: strict framing (request smuggling), the Host
 * allow-list (DNS rebinding), the Origin of state-changing requests and
 * the Content-Type of JSON bodies (cross-site requests a page may send
 * without a CORS pre-flight).
 */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "api/api.h"
#include "common/errors.h"

/* Splits a comma-separated list (spaces around items dropped, empty
 * items skipped) onto *items and *n, which the caller frees with
 * api_list_free. RV_OK or RV_ERR_NOMEM. */
int api_list_add(const char *list, char ***items, size_t *n)
{
    const char *p = list ? list : "";
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *s = p;
        while (len && (*s == ' ' || *s == '\t')) {
            s++;
            len--;
        }
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        if (len) {
            char **grown = realloc(*items, (*n + 1) * sizeof(char *));
            if (!grown)
                return RV_ERR_NOMEM;
            *items = grown;
            if (!(grown[*n] = strndup(s, len)))
                return RV_ERR_NOMEM;
            (*n)++;
        }
        p = end ? end + 1 : p + strlen(p);
    }
    return RV_OK;
}

void api_list_free(char ***items, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*items)[i]);
    free(*items);
    *items = NULL;
    *n = 0;
}

/* The host part of a Host header or of "host:port" ("[v6]" keeps its
 * brackets) into buf. False when it does not fit or is empty. */
static bool host_part(const char *hostport, char *buf, size_t size)
{
    size_t n;
    if (hostport[0] == '[') {
        const char *close = strchr(hostport, ']');
        if (!close)
            return false;
        n = (size_t)(close - hostport) + 1;
    } else {
        n = strcspn(hostport, ":");
    }
    if (n == 0 || n >= size)
        return false;
    memcpy(buf, hostport, n);
    buf[n] = '\0';
    return true;
}

int api_hosts_init(struct api *api)
{
    const char *list = api->cfg->allowed_hosts;
    if (list && *list)
        return api_list_add(list, &api->allowed_hosts, &api->hosts_count);
    char listen[256];
    int rc = api_list_add("localhost,127.0.0.1,[::1]", &api->allowed_hosts,
                          &api->hosts_count);
    if (rc == RV_OK && api->cfg->listen &&
        host_part(api->cfg->listen, listen, sizeof(listen)))
        rc = api_list_add(listen, &api->allowed_hosts, &api->hosts_count);
    return rc;
}

bool api_framing_ok(struct evhttp_request *req, const char **why)
{
    const struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const struct evkeyval *h;
    int lengths = 0, encodings = 0;
    bool chunked = true;
    TAILQ_FOREACH(h, in, next)
    {
        if (!h->key[0] || strpbrk(h->key, " \t")) {
            *why = "a header name holds white space";
            return false;
        }
        if (strcasecmp(h->key, "Content-Length") == 0)
            lengths++;
        if (strcasecmp(h->key, "Transfer-Encoding") == 0) {
            encodings++;
            chunked = strcasecmp(h->value, "chunked") == 0;
        }
    }
    if (lengths > 1)
        *why = "more than one Content-Length";
    else if (encodings > 1 || !chunked)
        *why = "a Transfer-Encoding other than one \"chunked\"";
    else if (encodings && lengths)
        *why = "both Content-Length and Transfer-Encoding";
    else if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD &&
             (encodings ||
              (lengths && strcmp(evhttp_find_header(in, "Content-Length"),
                                 "0") != 0)))
        /* evhttp reads no body after a HEAD: a proxy that sent one would
         * see its bytes taken for the next request. */
        *why = "a HEAD request with a body";
    else
        return true;
    return false;
}

bool api_host_allowed(const struct api *api, struct evhttp_request *req)
{
    const char *host = evhttp_find_header(evhttp_request_get_input_headers(req),
                                          "Host");
    char name[256];
    if (!host)
        return true; /* HTTP/1.0: libevent refuses a 1.1 request without */
    if (!host_part(host, name, sizeof(name)))
        return false;
    size_t n = strlen(name);
    if (n > 1 && name[n - 1] == '.')
        name[n - 1] = '\0';
    for (size_t i = 0; i < api->hosts_count; i++)
        if (strcmp(api->allowed_hosts[i], "*") == 0 ||
            strcasecmp(api->allowed_hosts[i], name) == 0)
            return true;
    return false;
}

bool api_origin_allowed(const struct api *api, struct evhttp_request *req)
{
    const struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *origin = evhttp_find_header(in, "Origin");
    const char *host = evhttp_find_header(in, "Host");
    if (!origin)
        return true; /* not a browser, or a same-origin GET */
    /* Same origin: scheme://<the Host header>. */
    const char *rest = strncasecmp(origin, "http://", 7) == 0    ? origin + 7
                       : strncasecmp(origin, "https://", 8) == 0 ? origin + 8
                                                                 : NULL;
    if (rest && host && strcasecmp(rest, host) == 0)
        return true;
    for (size_t i = 0; i < api->cors_count; i++)
        if (strcmp(api->cors_origins[i], origin) == 0 ||
            strcmp(api->cors_origins[i], "*") == 0)
            return true;
    return false;
}

bool api_json_content_type(struct evhttp_request *req)
{
    const char *type = evhttp_find_header(
        evhttp_request_get_input_headers(req), "Content-Type");
    if (!type)
        return false;
    size_t n = strcspn(type, "; \t");
    return n == 16 && strncasecmp(type, "application/json", 16) == 0;
}

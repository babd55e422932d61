/*
 * The HTTP plumbing every handler shares: answering a call (JSON, bytes,
 * errors), the one mapping from rv_err to HTTP status, CORS, request
 * bodies and query strings (connections are conn.c's).
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <event2/http.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "api/api.h"
#include "common/errors.h"
#include "common/log.h"
#include "common/util.h"

int64_t api_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- errors ---- */

int api_http_status(int err)
{
    switch (err) {
    case RV_OK: return 200;
    case RV_ERR_INVALID:
    case RV_ERR_NO_GITHUB:
    case RV_ERR_DECODE:
    case RV_ERR_URL_NOT_ALLOWED: return 400;
    case RV_ERR_NOT_FOUND: return 404;
    case RV_ERR_EXISTS:
    case RV_ERR_FENCED:
    case RV_ERR_STALE_JOB:
    case RV_ERR_RETRY: return 409;
    case RV_ERR_TOO_LARGE: return 413;
    case RV_ERR_REDIS:
    case RV_ERR_SHUTDOWN: return 503;
    case RV_ERR_PROTOCOL: return 502;
    case RV_ERR_TIMEOUT: return 504;
    default: return 500;
    }
}

/* The JSON error code of an rv_err: its stable name, except for the codes
 * an HTTP client knows under a more common name. */
static const char *api_error_code(int err)
{
    switch (err) {
    case RV_ERR_REDIS:
    case RV_ERR_SHUTDOWN: return "unavailable";
    case RV_ERR_TOO_LARGE: return "payload_too_large";
    default: return rv_errname(err);
    }
}

/* ---- answering ---- */

static const char *method_name(enum evhttp_cmd_type m)
{
    switch (m) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    }
    return "?";
}

/* Records the request (metric, debug log line) while its request is
 * still there to read: evhttp_send_reply frees it when the client has
 * gone. */
static void call_record(struct api_call *call, int status)
{
    int64_t micros = api_mono_us() - call->started_us;
    if (micros < 0)
        micros = 0;
    api_metrics_request(call->api->metrics,
                        call->route ? call->route->name : "none", status,
                        micros);
    if (RV_LOG_DEBUG >= rv_log_min_level) {
        const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(call->req);
        const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
        LOGF(RV_LOG_DEBUG, call->id[0] ? call->id : NULL, NULL,
             json_pack("{s:s,s:s,s:i,s:I}", "method",
                       method_name(evhttp_request_get_command(call->req)),
                       "path", path ? path : "", "status", status, "ms",
                       (json_int_t)(micros / 1000)),
             "request");
    }
}

/* Frees call and what its handler hung on it. */
static void call_free(struct api_call *call)
{
    if (call->priv_free && call->priv)
        call->priv_free(call->priv);
    free(call);
}

void api_call_handed_over(struct api_call *call, int status)
{
    call_record(call, status);
    call_free(call);
}

/* Writes a reply in this pass of the loop instead of the next.
 *
 * evhttp_send_reply leaves the reply in the connection's bufferevent and
 * arms its write event; the write happens a pass later, when epoll_wait
 * reports the socket writable, and disarms it again. Two epoll_ctl per
 * reply were a tenth of the API's CPU on keep-alive reads. The socket is
 * almost always writable, so the bufferevent's own write callback is made
 * to run in this pass: it writes, finds the buffer empty and deletes the
 * event before the change list reaches the kernel, and neither change is
 * made. On a full socket it keeps the event armed, as without this.
 *
 * This reaches into struct bufferevent (bufferevent_struct.h), so it runs
 * only with the libevent it was compiled against, and only on a
 * bufferevent whose write event is the socket's. */
static void write_now(struct bufferevent *bev)
{
    static int is_same_libevent = -1;
    if (is_same_libevent < 0)
        is_same_libevent =
            (event_get_version_number() >> 8) == (LIBEVENT_VERSION_NUMBER >> 8);
    if (!is_same_libevent || event_get_callback_arg(&bev->ev_write) != bev ||
        event_get_fd(&bev->ev_write) != bufferevent_getfd(bev) ||
        !event_pending(&bev->ev_write, EV_WRITE, NULL))
        return;
    event_active(&bev->ev_write, EV_WRITE, 1);
}

/* The Date header of this second. evhttp formats one for every reply
 * that lacks it (time, gmtime_r and a printf); once a second is enough. */
static const char *date_now(void)
{
    static char date[40];
    static time_t at = (time_t)-1;
    time_t now = time(NULL);
    if (now != at) {
        struct tm tm;
        if (!gmtime_r(&now, &tm) ||
            strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
            return NULL;
        at = now;
    }
    return date;
}

static void send_buffer(struct api_call *call, int status, const char *type,
                        struct evbuffer *buf)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(call->req);
    const char *date = date_now();
    if (date)
        evhttp_add_header(out, "Date", date);
    if (type)
        evhttp_add_header(out, "Content-Type", type);
    if (!evhttp_find_header(out, "Cache-Control"))
        evhttp_add_header(out, "Cache-Control", "no-cache");
    evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
    api_cors_headers(call->api, call->req);
    if (evhttp_request_get_command(call->req) == EVHTTP_REQ_HEAD &&
        status >= 200 && status != 204 && status != 304) {
        /* The headers of the GET, without its body: evhttp would send the
         * body anyway, with no Content-Length, and the client would read
         * it as the start of the next answer. */
        struct evbuffer *body =
            buf ? buf : evhttp_request_get_output_buffer(call->req);
        char len[24];
        snprintf(len, sizeof(len), "%zu", evbuffer_get_length(body));
        evhttp_add_header(out, "Content-Length", len);
        evbuffer_drain(body, evbuffer_get_length(body));
    }
    /* Without a connection (the client left) evhttp_send_reply frees the
     * request; with one, the bufferevent outlives this call. */
    struct evhttp_connection *evcon = evhttp_request_get_connection(call->req);
    struct bufferevent *bev =
        evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    call_record(call, status);
    evhttp_send_reply(call->req, status, NULL, buf);
    if (bev)
        write_now(bev);
    call_free(call);
}

void api_reply_buffer(struct api_call *call, int status, const char *type,
                      struct evbuffer *body)
{
    send_buffer(call, status, type, body);
}

void api_reply_bytes(struct api_call *call, int status, const char *type,
                     const char *data, size_t len)
{
    struct evbuffer *buf = evbuffer_new();
    if (buf && len)
        evbuffer_add(buf, data, len);
    send_buffer(call, status, type, buf);
    if (buf)
        evbuffer_free(buf);
}

static void reply_nomem(struct api_call *call)
{
    static const char body[] =
        "{\"error\":{\"code\":\"nomem\",\"message\":\"out of memory\"}}";
    api_reply_bytes(call, 500, "application/json", body, sizeof(body) - 1);
}

void api_reply_json(struct api_call *call, int status, json_t *body)
{
    char *text = NULL;
    if (body) {
        text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        if (!text) {
            reply_nomem(call);
            return;
        }
    }
    api_reply_bytes(call, status, text ? "application/json" : NULL, text,
                    text ? strlen(text) : 0);
    free(text);
}

void api_reply_json_coded(struct api_call *call, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) {
        reply_nomem(call);
        return;
    }
    size_t len = strlen(text);
    enum api_encoding enc = api_encoding_of(call->req);
    struct api_blob *coded =
        enc == API_ENC_IDENTITY || len < API_ENC_MIN_BYTES
            ? NULL
            : api_encoding_compress(call->api->metrics, enc,
                                    enc == API_ENC_BR ? API_ENC_LIST_BR_QUALITY
                                                      : API_ENC_LIST_GZIP_LEVEL,
                                    text, len);
    if (!coded)
        enc = API_ENC_IDENTITY;
    api_encoding_headers(call->req, enc);
    const char *data = coded ? api_blob_data(coded) : text;
    size_t n = coded ? api_blob_len(coded) : len;
    api_metrics_coded(call->api->metrics, enc, n);
    api_reply_bytes(call, status, "application/json", data, n);
    api_blob_unref(coded);
    free(text);
}

static void reply_verror(struct api_call *call, int status, const char *code,
                         const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* json_pack refuses invalid UTF-8, and the reply would lose its body:
     * vsnprintf cuts by bytes, and library text (jansson's parse errors)
     * may quote raw bytes of the request. */
    rv_utf8_truncate(msg);
    rv_log_redact(msg);
    if (status >= 500)
        LOG(RV_LOG_WARN, call->id[0] ? call->id : NULL, NULL,
            "answering %d %s: %s", status, code, msg);
    api_reply_json(
        call, status,
        json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

void api_reply_error(struct api_call *call, int status, const char *code,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_verror(call, status, code, fmt, ap);
    va_end(ap);
}

void api_reply_rv_error(struct api_call *call, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_verror(call, api_http_status(err), api_error_code(err), fmt, ap);
    va_end(ap);
}

void api_reply_unavailable(struct api_call *call)
{
    /* Reads and writes both need Redis: the API keeps no copy of the data
     * it could answer from, so a client is told to retry. */
    evhttp_add_header(evhttp_request_get_output_headers(call->req),
                      "Retry-After", "1");
    api_reply_rv_error(call, RV_ERR_REDIS,
                       "Redis is unreachable; the API reconnects by itself, "
                       "retry shortly");
}

void api_reply_send_failed(struct api_call *call, int rc)
{
    if (rc == RV_ERR_REDIS)
        api_reply_unavailable(call);
    else
        api_reply_rv_error(call, rc, "cannot send the command");
}

bool api_send(struct api_call *call, struct rv_cmd *cmd, rv_rasync_reply_cb cb,
              void *priv)
{
    int rc = rv_rasync_run(call->api->redis, cmd, cb, priv);
    if (rc != RV_OK)
        api_reply_send_failed(call, rc);
    return rc == RV_OK;
}

/* ---- bodies and queries ---- */

char *api_body(struct api_call *call, size_t max, size_t *len, int *err)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(call->req);
    size_t n = evbuffer_get_length(in);
    if (n > max) {
        *err = RV_ERR_TOO_LARGE;
        return NULL;
    }
    char *s = malloc(n + 1);
    if (!s) {
        *err = RV_ERR_NOMEM;
        return NULL;
    }
    evbuffer_copyout(in, s, n);
    s[n] = '\0';
    *len = n;
    *err = RV_OK;
    return s;
}

char *api_query(struct api_call *call, const char *name)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(call->req);
    return api_query_value(uri ? evhttp_uri_get_query(uri) : NULL, name);
}

char *api_query_value(const char *q, const char *name)
{
    if (!q)
        return NULL;
    struct evkeyvalq params;
    TAILQ_INIT(&params);
    char *value = NULL;
    if (evhttp_parse_query_str(q, &params) == 0) {
        const char *v = evhttp_find_header(&params, name);
        if (v)
            value = strdup(v);
    }
    evhttp_clear_headers(&params);
    return value;
}

/* ---- CORS ---- */

int api_cors_init(struct api *api)
{
    return api_list_add(api->cfg->cors_origins, &api->cors_origins,
                        &api->cors_count);
}

void api_cors_free(struct api *api)
{
    api_list_free(&api->cors_origins, &api->cors_count);
    api_list_free(&api->allowed_hosts, &api->hosts_count);
}

void api_cors_headers(struct api *api, struct evhttp_request *req)
{
    const char *origin =
        evhttp_find_header(evhttp_request_get_input_headers(req), "Origin");
    if (!origin)
        return;
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    for (size_t i = 0; i < api->cors_count; i++) {
        if (strcmp(api->cors_origins[i], origin) == 0 ||
            strcmp(api->cors_origins[i], "*") == 0) {
            if (!evhttp_find_header(out, "Access-Control-Allow-Origin")) {
                evhttp_add_header(out, "Access-Control-Allow-Origin", origin);
                evhttp_add_header(out, "Access-Control-Expose-Headers", "ETag");
                evhttp_add_header(out, "Vary", "Origin");
            }
            return;
        }
    }
}

char *api_json_body(struct api_call *call, size_t max, size_t *len)
{
    if (!api_json_content_type(call->req)) {
        api_reply_error(call, 415, "unsupported_media_type",
                        "the body must be sent as Content-Type: "
                        "application/json");
        return NULL;
    }
    int rc = RV_OK;
    char *body = api_body(call, max, len, &rc);
    if (!body)
        api_reply_rv_error(call, rc, "the body is larger than %zu bytes", max);
    return body;
}

/*
 * The bodies of requests (conn.c has the rest of connections).
 *
 * evhttp refuses a body past the connection's max body size with 413
 * before it buffers it, right after the headers. 2.1.12 offers no way to
 * reach an incoming request before its headers are in (no
 * evhttp_set_newreqcb; a request's header callback can only be set on a
 * request one already has), so the cap is chosen when the request line is
 * complete in the input buffer: the input callback copies that line, cuts
 * it where evhttp's own parser does (the first and the last space) and
 * looks the route up (api_route_find). Only the choice of a cap depends on
 * this reading; evhttp parses the request itself, and anything our reading
 * does not recognise gets the smallest cap. Every byte that arrives for a
 * request counts against REPOVIEW_MAX_BODY_MEMORY until the request is
 * answered or its connection closes; a connection whose request holds more
 * than the header cap and whose bytes pass the budget stops being read and
 * is closed (its body is half in: there is no clean answer left to give).
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/conn_private.h"
#include "common/log.h"

/* ---- the body budget ---- */

void conn_budget_release(struct api_conn *c)
{
    c->owner->body_bytes -= c->held;
    c->held = 0;
}

static void budget_refused(struct api_conn *c)
{
    struct api_conns *t = c->owner;
    t->stats.refused_budget++;
    uint64_t n;
    if (!conn_ratelog_due(&t->budget_log, &n))
        return;
    char addr[INET6_ADDRSTRLEN];
    LOGF(t->budget_log.level, NULL, NULL,
         json_pack("{s:I,s:s,s:I}", t->budget_log.field, (json_int_t)n,
                   "addr", conn_peer_text(c->peer, addr, sizeof(addr)), "limit",
                   (json_int_t)t->api->cfg->max_body_memory),
         "%s", t->budget_log.msg);
}

/* ---- the cap of a request's body ---- */

static size_t body_cap_of_line(char *line, bool webhook_enabled);

size_t api_body_cap(const char *request_line, size_t len,
                    bool webhook_enabled)
{
    char *line = malloc(len + 1);
    if (!line)
        return 0;
    memcpy(line, request_line, len);
    line[len] = '\0';
    size_t cap = strlen(line) == len ? body_cap_of_line(line, webhook_enabled)
                                     : 0; /* a NUL: evhttp refuses it */
    free(line);
    return cap;
}

/* The body cap of the request whose line (NUL-terminated, without its
 * end of line; cut up in place) is given: evhttp splits it at the first
 * space (method) and the last one (version); the target between is its
 * URI. */
static size_t body_cap_of_line(char *line, bool webhook_enabled)
{
    static const struct {
        const char *name;
        int method;
    } methods[] = {
        {"GET", EVHTTP_REQ_GET},         {"POST", EVHTTP_REQ_POST},
        {"HEAD", EVHTTP_REQ_HEAD},       {"PUT", EVHTTP_REQ_PUT},
        {"DELETE", EVHTTP_REQ_DELETE},   {"OPTIONS", EVHTTP_REQ_OPTIONS},
        {"PATCH", EVHTTP_REQ_PATCH},
    };
    char *sp = strchr(line, ' ');
    char *last = strrchr(line, ' ');
    if (!sp || last == sp)
        return 0;
    *sp = '\0';
    *last = '\0';
    int method = 0;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(line, methods[i].name) == 0)
            method = methods[i].method;
    /* Methods whose requests carry no body here: one is refused (413)
     * rather than read and ignored. */
    if (method != EVHTTP_REQ_POST && method != EVHTTP_REQ_PUT &&
        method != EVHTTP_REQ_PATCH)
        return 0;
    struct evhttp_uri *uri =
        evhttp_uri_parse_with_flags(sp + 1, EVHTTP_URI_NONCONFORMANT);
    if (!uri)
        return 0;
    const char *path = evhttp_uri_get_path(uri);
    char id[RV_REPO_ID_MAX + 1];
    int allowed = 0;
    bool too_long = false;
    const struct api_route *r =
        path ? api_route_find(method, path, id, sizeof(id), &allowed,
                              &too_long)
             : NULL;
    evhttp_uri_free(uri);
    if (!r || r->stream)
        return 0;
    if (r->handler == api_webhooks_github)
        return webhook_enabled ? API_MAX_WEBHOOK_BODY : 0;
    return API_MAX_BODY;
}

/* Sets the connection's body cap once the request line is complete at the
 * start of the input (evhttp consumes only whole lines). */
void conn_choose_body_cap(struct api_conn *c, struct evbuffer *in)
{
    size_t eol_len = 0;
    struct evbuffer_ptr at =
        evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
    size_t cap = 0;
    if (at.pos < 0) {
        /* Not yet; past the header limit evhttp refuses the line. */
        if (evbuffer_get_length(in) <= API_MAX_HEADERS)
            return;
    } else if ((size_t)at.pos <= API_MAX_HEADERS) {
        size_t len = (size_t)at.pos;
        const char *secret = c->owner->api->cfg->webhook_secret;
        char *line = malloc(len + 1);
        if (line && evbuffer_copyout(in, line, len) == (ev_ssize_t)len)
            cap = api_body_cap(line, len, secret && *secret);
        free(line);
    }
    c->line_seen = true;
    evhttp_connection_set_max_body_size(c->evcon, (ev_ssize_t)cap);
}

/* Bytes were added to (or taken from) the connection's input. */
void conn_on_input(struct evbuffer *in, const struct evbuffer_cb_info *info,
                   void *arg)
{
    struct api_conn *c = arg;
    struct api_conns *t = c->owner;
    if (!info->n_added || c->refused)
        return;
    switch (c->state) {
    case CONN_IDLE:
        c->state = CONN_READING;
        c->line_seen = false;
        conn_arm(c, &t->api->io_timeout);
        /* fall through */
    case CONN_FIRST:
    case CONN_READING:
        c->held += info->n_added;
        t->body_bytes += info->n_added;
        /* A request no larger than the header cap is never refused for
         * the budget (the connection caps bound those), so that a flood of
         * large bodies cannot shut out small requests. */
        if (t->body_bytes > (size_t)t->api->cfg->max_body_memory &&
            c->held > API_MAX_HEADERS) {
            /* Stop reading now; the connection goes on the next pass of
             * the loop, outside the bufferevent's callbacks. */
            c->refused = true;
            bufferevent_disable(c->bev, EV_READ);
            budget_refused(c);
            if (c->timer)
                event_active(c->timer, EV_TIMEOUT, 1);
            return;
        }
        if (!c->line_seen)
            conn_choose_body_cap(c, in);
        break;
    case CONN_BUSY:
    case CONN_STREAM:
        break;
    }
}

/*
 * repoview-api internals: the server object every handler reaches, the
 * per-request call, and the entry points of each file of src/api/.
 *
 *   main.c             start-up, signals, the housekeeping timer, shutdown
 *   http.c             calls, replies, errors -> HTTP statuses (the one
 *                      mapping), CORS, bodies
 *   conn.c             connections: their records, caps and deadlines; the
 *                      interface
 *   conn_listen.c      the accept (adoption); the listener's guard against
 *                      running out of descriptors
 *   conn_body.c        the body cap of a request from its request line, the
 *                      budget of body bytes
 *   conn_private.h     what the conn*.c files share, and only they
 *   guard.c            request hygiene before any route: framing, Host,
 *                      Origin, Content-Type
 *   access.c           tokens, scopes and repo patterns; who a request is
 *   session.c          the dashboard's session cookie and SSE stream tokens
 *   routes.c           the route table and the dispatcher
 *   repos.c            GET/POST /v1/repos, GET/DELETE /v1/repos/{id}
 *   overview.c         GET /v1/repos/{id}/overview
 *   cache.c            the in-process fragment cache
 *   encoding.c         Accept-Encoding and compressed bodies (br, gzip)
 *   refresh.c          POST /v1/repos/{id}/refresh
 *   orgs.c             GET/POST /v1/orgs, GET/DELETE /v1/orgs/{id},
 *                      POST /v1/orgs/{id}/refresh
 *   ops.c              GET /v1/queue, GET /v1/workers; the command batch
 *                      of the operations views (ops_private.h)
 *   ops_dead.c         GET /v1/deadletters, POST .../{n}/retry, DELETE
 *   ops_stats.c        GET /v1/stats (the per-minute history)
 *   events.c           SSE: the streams and their two handlers
 *   events_snapshot.c  the snapshots a stream starts with
 *   events_sub.c       the one subscription to rv:events and its fan-out
 *   events_private.h   what the events*.c files share, and only they
 *   webhooks.c         POST /v1/webhooks/github
 *   health.c           GET /healthz and GET /readyz
 *   metrics.c          GET /metrics and the counters behind it
 *   static.c           GET / (the embedded dashboard), GET /v1/openapi.json
 */
#ifndef REPOVIEW_API_API_H
#define REPOVIEW_API_API_H

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/urlpolicy.h"
#include "common/rconn.h"
#include "common/util.h"

/* Bodies: JSON requests are capped here (413); webhooks get GitHub's own
 * cap on a delivery. Routes without a body take none. conn_body.c sets each
 * request's cap, which evhttp enforces (413) before it buffers the body. */
#define API_MAX_BODY (1024 * 1024)
#define API_MAX_WEBHOOK_BODY (25 * 1024 * 1024)
/* Request line plus headers. */
#define API_MAX_HEADERS (16 * 1024)
/* Most repo= parameters one SSE connection may name. */
#define API_MAX_SSE_REPOS 100

struct api_route;
struct api_cache;
struct api_events;
struct api_metrics;
struct api_conns;
struct api_batches;

/* What a token may do; each includes the ones before it. */
enum api_scope {
    API_SCOPE_NONE,
    API_SCOPE_READ,  /* reads and streams */
    API_SCOPE_WRITE, /* read + refresh */
    API_SCOPE_ADMIN, /* everything */
};

/* What a route needs. */
enum api_need {
    API_NEED_NONE,    /* nothing: health, the page, sign-in */
    API_NEED_SIGNED,  /* its own signature (webhooks): no Origin check */
    API_NEED_READ,
    API_NEED_WRITE,
    API_NEED_ADMIN,
    API_NEED_METRICS, /* admin, or REPOVIEW_METRICS_TOKEN */
};

/* One configured token: the SHA-256 of its text, never the text. */
struct api_token {
    unsigned char hash[32];
    enum api_scope scope;
    char **patterns; /* repo id patterns (fnmatch); none = every repo */
    size_t npatterns;
    char label[24];  /* "line N" of the file, or REPOVIEW_API_TOKEN: logs */
};

struct api_tokens {
    struct api_token *items;
    size_t n;
    bool read_open;               /* reads need no token */
    bool has_metrics;
    unsigned char metrics_hash[32];
    unsigned char key[32];        /* signs sessions and stream tokens */
};

/* Who made a request: the token it proved (NULL: anonymous) and what it
 * may do. Anonymous gets admin while no token is configured, read with
 * REPOVIEW_READ_OPEN, nothing otherwise. */
struct api_principal {
    const struct api_token *token;
    enum api_scope scope;
    bool metrics;                 /* presented REPOVIEW_METRICS_TOKEN */
    const char *via;              /* "bearer", "cookie", "stream-token" */
};

/* The process: one per repoview-api, owned by main.c. */
/* What /metrics shows of one GitHub token identity; -1 = unknown. */
#define API_GH_TOKENS_MAX 64
struct api_gh_token {
    struct api *api;   /* the owner, for the sample's callbacks */
    char identity[24]; /* installation id, "pat" or "none"; "" = free */
    int64_t remaining, limit;
    int64_t held_ms;   /* PTTL of rv:gh:hold:<identity>; <= 0: not held */
    int64_t in_flight; /* live slots in rv:gh:slots:<identity> */
};

struct api {
    const struct rv_config *cfg;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound; /* the listening socket */
    struct rv_redis_addr redis_addr;
    struct rv_rasync *redis;           /* commands (never SUBSCRIBE) */
    struct api_cache *cache;
    struct api_batches *batches;       /* overview.c: reads batched per pass */
    struct api_events *events;
    struct api_metrics *metrics;
    struct api_conns *conns;           /* every connection (conn.c) */
    struct api_authfail *authfail;     /* wrong credentials per address */
    /* REPOVIEW_IO_TIMEOUT as a libevent common timeout (main.c), for every
     * timer and timeout of that length: connections, streams, deadlines. */
    struct timeval io_timeout;
    struct rv_url_policy url_policy;   /* remotes repos may name, owned */
    char **cors_origins;               /* allow-list, owned */
    size_t cors_count;
    char **allowed_hosts;              /* Host values accepted, owned */
    size_t hosts_count;
    struct api_tokens tokens;          /* access.c, owned */
    bool stopping;                     /* SIGTERM/SIGINT seen */
    int64_t queue_depth;               /* LLEN rv:queue; -1 unknown */
    int64_t org_count;                 /* SCARD rv:orgs; -1 unknown */
    int64_t ratelimit_remaining;       /* rv:github:ratelimit; -1 unknown */
    /* GitHub budgets per token identity, sampled with the queue depth
     * (ghtokens.c): at most API_GH_TOKENS_MAX of rv:gh:tokens. */
    struct api_gh_token gh_tokens[API_GH_TOKENS_MAX];
    size_t gh_ntokens;
    size_t gh_pending; /* ghtokens.c answers awaited; none sent until 0 */
};

/* ---- ghtokens.c ---- */

/* Samples rv:gh:tokens and each identity's budget, hold and slots into
 * api->gh_tokens (answers arrive later, on the loop). */
void api_ghtokens_sample(struct api *api);

/* Appends the per-token families to b (Prometheus text). */
struct evbuffer;
void api_ghtokens_render(const struct api *api, struct evbuffer *b);

/* One request being answered. Created by the dispatcher, handed to the
 * route's handler, freed by the api_reply_* call that answers it (exactly
 * one per call). Handlers that wait for Redis keep it as their callback's
 * private data. */
struct api_call {
    struct api *api;
    struct evhttp_request *req;
    const struct api_route *route;
    int64_t started_us;          /* monotonic, for the duration metric */
    char id[RV_REPO_ID_MAX + 1]; /* the {id} of the path, "" if none */
    struct api_principal who;    /* set before the handler runs */
    void *priv;                  /* handler state, freed by priv_free */
    void (*priv_free)(void *priv);
};

typedef void (*api_handler)(struct api_call *call);

/* A route: method bit (EVHTTP_REQ_*), pattern with at most one "{id}"
 * or "{n}" segment (copied into call->id; only {id} is checked as a repo
 * id, {n} is the handler's to parse), handler. `name` labels metrics;
 * `need` is what the caller must hold (a route with an {id} also needs
 * the token to see that repo). */
struct api_route {
    int method;
    const char *pattern;
    api_handler handler;
    const char *name;
    enum api_need need;
    bool stream; /* SSE: no HEAD, no request timeout */
};

/* ---- http.c ---- */

/* Monotonic microseconds. */
int64_t api_mono_us(void);

/* HTTP status for an rv_err; the one place where the mapping lives. */
int api_http_status(int err);

/* Sends a JSON reply (steals body; NULL body = no body) and frees call. */
void api_reply_json(struct api_call *call, int status, json_t *body);
/* As api_reply_json for a body (not NULL) that may be large (lists): in
 * the coding the request accepts (encoding.c), compressed for this reply
 * alone, with Vary: Accept-Encoding. */
void api_reply_json_coded(struct api_call *call, int status, json_t *body);
/* Sends raw bytes with the given content type and frees call. */
void api_reply_bytes(struct api_call *call, int status, const char *type,
                     const char *data, size_t len);
/* Sends the bytes of body, which it drains (the caller still frees the
 * evbuffer), and frees call. Saves the copy api_reply_bytes makes. With
 * body NULL it sends what the caller put in the request's own output
 * buffer (evhttp_request_get_output_buffer). */
struct evbuffer;
void api_reply_buffer(struct api_call *call, int status, const char *type,
                      struct evbuffer *body);
/* Sends {"error":{"code","message"}} and frees call. */
void api_reply_error(struct api_call *call, int status, const char *code,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* As api_reply_error for an rv_err: status and code from the mapping. */
void api_reply_rv_error(struct api_call *call, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The reply for "Redis is down" (503 unavailable). */
void api_reply_unavailable(struct api_call *call);
/* Sends cmd (consumed) on the command connection; the reply goes to cb
 * with priv. false when it could not be sent: call was answered (503 for
 * Redis down, the error otherwise). */
struct rv_cmd;
bool api_send(struct api_call *call, struct rv_cmd *cmd,
              rv_rasync_reply_cb cb, void *priv);
/* The answer for a command that could not be sent or built (rc). */
void api_reply_send_failed(struct api_call *call, int rc);
/* Marks call as answered without a reply of ours (SSE takes over the
 * request): records the metric with status and frees call. */
void api_call_handed_over(struct api_call *call, int status);

/* The request body as a NUL-terminated copy (malloc'd, caller frees), or
 * NULL with *err set: RV_ERR_TOO_LARGE past max, RV_ERR_NOMEM. */
char *api_body(struct api_call *call, size_t max, size_t *len, int *err);
/* The body of a JSON write (POST /v1/repos, /v1/orgs, /v1/session): NULL
 * after answering 415 when it is not sent as application/json, or 413 /
 * 500 when it passes max bytes or memory runs out; else as api_body. */
char *api_json_body(struct api_call *call, size_t max, size_t *len);
/* A query parameter's first value (malloc'd, caller frees) or NULL. */
char *api_query(struct api_call *call, const char *name);
/* The same from a raw query string (NULL: none); NULL also when the query
 * string is malformed. */
char *api_query_value(const char *query, const char *name);

/* Adds Access-Control-Allow-Origin when the Origin is allowed. */
void api_cors_headers(struct api *api, struct evhttp_request *req);

/* ---- access.c ---- */

/* Loads REPOVIEW_TOKENS_FILE, REPOVIEW_API_TOKEN (admin) and
 * REPOVIEW_METRICS_TOKEN into api->tokens, and the signing key
 * (session.c). RV_OK, or RV_ERR_CONFIG / RV_ERR_NOMEM with err naming the
 * file and line (never a token). */
int api_access_init(struct api *api, char *err, size_t errlen);
void api_access_free(struct api *api);
/* Parses a tokens file's text (name labels errors) onto t. RV_OK, or
 * RV_ERR_CONFIG with err naming the line; t keeps what came before. */
int api_tokens_parse(const char *text, size_t len, const char *name,
                     struct api_tokens *t, char *err, size_t errlen);
void api_tokens_free(struct api_tokens *t);
/* The token whose text is text[0..len), or NULL; constant time in which. */
const struct api_token *api_token_find(const struct api_tokens *t,
                                       const char *text, size_t len);
/* "read", "write", "admin", or NULL for none. */
const char *api_scope_name(enum api_scope s);
/* Whether p may see repo (its token's patterns). */
bool api_principal_sees(const struct api_principal *p, const char *repo);
/* Sets call->who from the request's credentials and checks the route's
 * need; false when it answered 401 or 403 (call is gone). */
bool api_access_check(struct api_call *call);
/* Whether call->who may see repo; false when it answered 403. */
bool api_access_repo(struct api_call *call, const char *repo);

/* ---- session.c ---- */

int api_session_init(struct api *api, char *err, size_t errlen);
/* The token of a valid session cookie on req: RV_OK; RV_ERR_NOT_FOUND
 * without one, RV_ERR_INVALID for a bad or expired one. */
int api_session_from_cookie(const struct api *api, struct evhttp_request *req,
                            const struct api_token **tok);
/* The token of a valid, unexpired stream token: RV_OK or RV_ERR_INVALID. */
int api_stream_token_check(const struct api *api, const char *s,
                           const struct api_token **tok);
void api_session_get(struct api_call *call);
void api_session_post(struct api_call *call);
void api_session_delete(struct api_call *call);
void api_stream_tokens_post(struct api_call *call);

/* Pre-flight and CORS config. api_cors_free also frees the Host
 * allow-list of api_hosts_init. */
int api_cors_init(struct api *api);
void api_cors_free(struct api *api);

/* ---- conn*.c: connections, their caps, deadlines and body budget ---- */

/* Counts every accepted connection (REPOVIEW_MAX_CLIENTS,
 * REPOVIEW_MAX_CLIENTS_PER_IP: over a cap it is closed at once), gives
 * each request its deadlines (REPOVIEW_IO_TIMEOUT for the request,
 * REPOVIEW_KEEPALIVE_TIMEOUT between requests), its route's body cap and
 * the REPOVIEW_MAX_BODY_MEMORY budget; installs evhttp's bufferevent
 * factory. After evhttp_new. */
int api_conns_init(struct api *api);

/* ---- authfail.c: wrong credentials, limited per remote address ---- */

int api_authfail_init(struct api *api);
void api_authfail_free(struct api *api);
/* Answers 429 too_many_failures (with Retry-After) and returns true when
 * the request's address has used up its wrong credentials; the caller
 * then stops. Otherwise returns false and answers nothing. */
bool api_authfail_refuse(struct api_call *call);
/* Counts one wrong credential against the request's address. */
void api_authfail_count(struct api_call *call);
/* Requests api_authfail_refuse answered, for /metrics. */
uint64_t api_authfail_refused(const struct api *api);
/* The limiter's key for peer address host into buf: an IPv6 address by
 * its /64 ("2001:db8:1:2::/64"), an IPv4-mapped one as its IPv4, anything
 * else as it is. -1 when it does not fit (then nothing is limited). */
int api_authfail_key(const char *host, char *buf, size_t size);
/* Sets the listening socket's error callback, which survives running out
 * of descriptors (closes what waits, logs at most once a second). After
 * api->bound is set. RV_OK, or RV_ERR_INVALID without a listener. */
int api_conns_listen(struct api *api);
/* Forgets the listener, before it is freed (evhttp_del_accept_socket). */
void api_conns_unlisten(struct api *api);
/* Housekeeping: writes the counts of rate-limited log lines (refusals,
 * deadlines) that a flood left unwritten. */
void api_conns_tick(struct api *api);
/* After evhttp_free, before event_base_free. */
void api_conns_free(struct api *api);
/* The dispatcher's first call for every request: the request is being
 * answered (its read deadline is lifted until the reply is written).
 * false only for a connection not counted at accept (no memory then) that
 * is over a cap now: the caller answers 503 and closes. */
bool api_conn_admit(struct api *api, struct evhttp_request *req);
/* Counts a request on a stream route against REPOVIEW_MAX_STREAMS_PER_IP
 * until it is answered or its connection closes; false when its address
 * has as many streams as that already (the caller answers 429). */
bool api_conn_stream_admit(struct api *api, struct evhttp_request *req);
/* Ties an SSE client to its connection so that closing the connection
 * closes the client (events.c's close callback; NULL unties it), and
 * lifts the connection's read deadlines. false when the stream's address
 * already has REPOVIEW_MAX_STREAMS_PER_IP streams (not counted by
 * api_conn_stream_admit); on_close is registered all the same, so the
 * caller may drop the connection. */
bool api_conn_set_stream(struct api *api, struct evhttp_connection *evcon,
                         void (*on_close)(void *arg), void *arg);
size_t api_conn_count(const struct api *api);
/* Bytes counted against REPOVIEW_MAX_BODY_MEMORY now. */
size_t api_conn_body_bytes(const struct api *api);
/* What conn*.c refused and closed since the start, for /metrics. */
struct api_conn_stats {
    uint64_t refused_at_accept; /* over a connection cap */
    uint64_t refused_budget;    /* over REPOVIEW_MAX_BODY_MEMORY */
    uint64_t closed_deadline;   /* at a request or keep-alive deadline */
    uint64_t dropped_no_fd;     /* accepted and closed, out of descriptors */
};
struct api_conn_stats api_conn_stats(const struct api *api);

/* ---- guard.c: request hygiene, before any route ---- */

/* Appends the items of a comma-separated list (trimmed, empty ones
 * skipped) to *items and *n; free with api_list_free. RV_OK or RV_ERR_NOMEM. */
int api_list_add(const char *list, char ***items, size_t *n);
void api_list_free(char ***items, size_t *n);
/* Builds the Host allow-list: REPOVIEW_ALLOWED_HOSTS, or the listen
 * address, localhost, 127.0.0.1 and [::1]. RV_OK or RV_ERR_NOMEM. */
int api_hosts_init(struct api *api);
/* False (with *why) for framing a proxy and we could read differently:
 * two Content-Length headers, a Transfer-Encoding other than one
 * "chunked", both together, a header name with white space, a HEAD with
 * a body (evhttp reads none). */
bool api_framing_ok(struct evhttp_request *req, const char **why);
/* Whether the Host header names an allowed host ("*" allows any): a
 * DNS-rebinding page sends its own name. */
bool api_host_allowed(const struct api *api, struct evhttp_request *req);
/* Whether a state-changing request's Origin (absent = not a browser) is
 * this server's own or in REPOVIEW_CORS_ORIGINS. */
bool api_origin_allowed(const struct api *api, struct evhttp_request *req);
/* Whether Content-Type is application/json (parameters allowed). */
bool api_json_content_type(struct evhttp_request *req);

/* ---- routes.c ---- */

/* evhttp's generic callback: every request comes here. */
void api_dispatch(struct evhttp_request *req, void *arg);

/* The route table lookup api_dispatch makes, without a request: the first
 * route for method (an EVHTTP_REQ_* value; HEAD finds GET routes that are
 * not streams) and path, or NULL. *methods gets the method bits of every
 * route whose pattern matches path (0: 404; no route found: 405). The
 * {id} segment goes into id (idlen bytes, "" if none); *id_too_long is
 * set when it did not fit, so that a truncated copy is never taken for
 * the id. The route is static. */
const struct api_route *api_route_find(int method, const char *path,
                                       char *id, size_t idlen, int *methods,
                                       bool *id_too_long);

/* ---- lists gathered from a set (gather.c) ---- */

/* Called once with an item's JSON (a new reference) and RV_OK, or NULL
 * and the failure (RV_ERR_NOT_FOUND: gone meanwhile, left out). */
typedef void (*api_item_cb)(void *priv, int rc, json_t *item);
/* Reads item id for call on ra; calls cb exactly once, also when nothing
 * could be sent (then before returning). */
typedef void (*api_item_read)(struct api_call *call, struct rv_rasync *ra,
                              const char *id, api_item_cb cb, void *priv);

/* The handler of a list route: SMEMBERS set_key, read each valid id the
 * caller may see, reply 200 {member: [items sorted by "id"]}; a failure
 * replies 503 (Redis) or an error saying what ("cannot list the ..."). */
void api_gather_set(struct api_call *call, const char *set_key,
                    api_item_read read, const char *member, const char *what);
/* The same for one page: cmd (taken) is a script answering {RV_OK, next
 * cursor ('' at the end), {ids}} (lua/listRepos); the items keep its order
 * and the reply adds "nextCursor" (null at the end). */
void api_gather_page(struct api_call *call, struct rv_cmd *cmd,
                     api_item_read read, const char *member, const char *what);

/* ---- handlers ---- */

void api_repos_list(struct api_call *call);
void api_repos_create(struct api_call *call);
void api_repos_get(struct api_call *call);
void api_repos_delete(struct api_call *call);
void api_overview_get(struct api_call *call);
/* Starts the reads of batched overview requests still waiting and frees
 * the batching event; before the command connection goes at shutdown. */
void api_overview_shutdown(struct api *api);
void api_refresh_post(struct api_call *call);
void api_orgs_list(struct api_call *call);
void api_orgs_create(struct api_call *call);
void api_orgs_get(struct api_call *call);
void api_orgs_delete(struct api_call *call);
void api_orgs_refresh(struct api_call *call);
/* ops.c, ops_dead.c, ops_stats.c: the operations views. */
void api_ops_queue(struct api_call *call);
void api_ops_workers(struct api_call *call);
void api_ops_deadletters(struct api_call *call);
void api_ops_deadletter_retry(struct api_call *call);
void api_ops_deadletter_drop(struct api_call *call);
void api_ops_stats(struct api_call *call);
void api_events_repo(struct api_call *call);
void api_events_many(struct api_call *call);
void api_webhooks_github(struct api_call *call);
/* health.c */
void api_healthz(struct api_call *call);
void api_readyz(struct api_call *call);
void api_metrics_get(struct api_call *call);
void api_static_index(struct api_call *call);
void api_openapi_get(struct api_call *call);

/* ---- request parsers (pure, so tests/fuzz can drive them) ---- */

/* conn_body.c: the body cap of a request from its request line (len bytes,
 * without the end of line), as evhttp will read it: API_MAX_BODY for a
 * JSON route that takes a body, API_MAX_WEBHOOK_BODY for the webhook route
 * when webhook_enabled (0 otherwise), 0 for every other method, route or
 * line. */
size_t api_body_cap(const char *request_line, size_t len,
                    bool webhook_enabled);

/* refresh.c: the kinds ?kind= asks for (NULL: all), by rv_kind;
 * *explicit_prs for kind=prs. 0, or -1 for an unknown kind. */
int api_refresh_kinds(const char *kind, bool wanted[2], bool *explicit_prs);

/* events.c: the repo= parameters of GET /v1/events (query may be NULL),
 * without repeats, copied into repos (room for API_MAX_SSE_REPOS); *n of
 * them. RV_OK; RV_ERR_DECODE for a malformed query string or
 * RV_ERR_INVALID for a bad repo id or too many, with a static message in
 * *why. */
int api_events_parse_repos(const char *query,
                           char (*repos)[RV_REPO_ID_MAX + 1], size_t *n,
                           const char **why);

/* repos.c: parses and validates the body of POST /v1/repos into spec,
 * its URL against policy (borrowed for the call). On RV_OK, *doc is the
 * parsed body (the caller json_decref()s it after the last use of spec,
 * whose strings it holds). Otherwise *doc is NULL, msg says why, and the
 * result is RV_ERR_DECODE (not a JSON object), RV_ERR_INVALID (a field is
 * missing, unknown or wrong) or RV_ERR_URL_NOT_ALLOWED. */
struct rv_repo_spec;
int api_repo_spec_parse(const char *body, size_t len,
                        const struct rv_url_policy *policy,
                        struct rv_repo_spec *spec, json_t **doc, char *msg,
                        size_t msglen);

/* orgs.c: parses and validates the body of POST /v1/orgs ({"id",
 * "github"}, nothing else) into spec. On RV_OK *doc is the parsed body
 * (json_decref it after the last use of spec). Otherwise *doc is NULL,
 * msg says why, and the result is RV_ERR_DECODE (not a JSON object) or
 * RV_ERR_INVALID. */
struct rv_org_spec;
int api_org_spec_parse(const char *body, size_t len, struct rv_org_spec *spec,
                       json_t **doc, char *msg, size_t msglen);

/* ---- repos.c ---- */

/* The repo object of the registry answers:
 * {"id","url","github","defaultBranch","version","freshness"}.
 * New reference or NULL. */
struct rv_repo;
json_t *api_repo_summary(struct api *api, const struct rv_repo *repo);

/* ---- cache.c ---- */

struct api_cache *api_cache_new(size_t max_bytes);
void api_cache_free(struct api_cache *c);
/* A fragment shared between the cache and the replies still being sent,
 * so that neither copies it. Created with one reference; the last unref
 * frees it. */
struct api_blob;
/* A blob holding a copy of data, or NULL when out of memory. */
struct api_blob *api_blob_new(const char *data, size_t len);
/* A blob of the printf-formatted text, or NULL when out of memory. */
struct api_blob *api_blob_printf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
void api_blob_unref(struct api_blob *b);
const char *api_blob_data(const struct api_blob *b);
size_t api_blob_len(const struct api_blob *b);
/* Appends the blob's bytes to out without copying; out holds a reference
 * until they are sent or drained. 0, or -1 when out of memory. */
int api_blob_add_to(struct evbuffer *out, struct api_blob *b);

/* ---- encoding.c: content codings ---- */

/* The codings an answer goes out in; identity is none. */
enum api_encoding {
    API_ENC_IDENTITY,
    API_ENC_BR,
    API_ENC_GZIP,
    API_ENC_COUNT
};
/* Bodies shorter than this go out as they are: coding them would save
 * fewer bytes than the headers that say so cost. */
#define API_ENC_MIN_BYTES 256
/* The levels bodies are compressed at (docs/benchmarks.md, "Compression
 * levels"): a body is compressed on the event loop, once per version, so
 * the level is the best whose time on a 1,000-branch overview stays a
 * few milliseconds. */
#define API_ENC_BR_QUALITY 3
#define API_ENC_GZIP_LEVEL 5
/* List pages have no version to keep a body by (each is read and rendered
 * per request), so they are compressed per request, at the fastest levels
 * that still compress about as well (docs/benchmarks.md). */
#define API_ENC_LIST_BR_QUALITY 3
#define API_ENC_LIST_GZIP_LEVEL 4

/* The coding for a request whose Accept-Encoding is header (NULL: none):
 * of br, gzip and identity the one with the highest q above 0, br before
 * gzip before identity at equal q. "*" stands for every coding the header
 * does not name, x-gzip for gzip; a coding named twice keeps the smaller
 * q; an element with a malformed q or other junk is left out. Identity
 * when nothing is acceptable, also after "identity;q=0". */
enum api_encoding api_encoding_pick(const char *header);
/* The same for req's own Accept-Encoding header. */
enum api_encoding api_encoding_of(struct evhttp_request *req);
/* "br", "gzip", "identity". */
const char *api_encoding_name(enum api_encoding e);
/* The ETag of the representation in e of one whose ETag is etag
 * (a suffix inside the quotes: "v-h" -> "v-h-br", "v-h-gz"; unchanged for
 * identity), into buf. */
void api_encoding_etag(const char *etag, enum api_encoding e, char *buf,
                       size_t size);
/* Adds Vary: Accept-Encoding, and Content-Encoding unless e is identity,
 * to req's answer. */
void api_encoding_headers(struct evhttp_request *req, enum api_encoding e);
/* data[0..len) compressed in e (not identity) at level (a brotli quality
 * or a zlib level), counted in m (NULL: not counted): a new blob
 * (api_blob_unref), or NULL when out of memory. */
struct api_metrics;
struct api_blob *api_encoding_compress(struct api_metrics *m,
                                       enum api_encoding e, int level,
                                       const char *data, size_t len);

/* What an overview read renders from the meta hash: the head of the body
 * ({"repo":…,"version":…,"freshness":…,) and its ETag, once as fresh and
 * once as stale, and the moment the repo turns stale, so a read picks the
 * form by the clock without the hash. */
struct api_head {
    int64_t version;
    int64_t stale_from_ms;
    struct api_blob *text[2]; /* [stale], one reference each */
    /* The SSE snapshot of the same state, {"repo","version","freshness"},
     * so that a stream (re)connecting reads no Redis. */
    struct api_blob *snapshot[2];
    char etag[2][48];
};
void api_head_free(struct api_head *h);

/* The cached fragment of repo at exactly version (borrowed: take a
 * reference, e.g. with api_blob_add_to, to keep it past the next cache
 * call), or NULL; counts a hit or a miss. */
struct api_blob *api_cache_get(struct api_cache *c, const char *repo,
                               int64_t version);
/* The version cached for repo, or -1. */
int64_t api_cache_version(struct api_cache *c, const char *repo);
/* The cache's epoch: a read takes it when it sends its commands and hands
 * it to api_cache_put and api_cache_put_head, which keep what it read only
 * if nothing of the repo was announced or removed since (and nothing was
 * cleared). Creates nothing. */
uint64_t api_cache_epoch(const struct api_cache *c);
/* Keeps a reference to the fragment, read at epoch, unless a newer version
 * is cached or announced. */
void api_cache_put(struct api_cache *c, const char *repo, uint64_t epoch,
                   int64_t version, struct api_blob *fragment);
/* Something of repo was announced (a status or a projection at
 * version), or changed by this process: its head goes, and so does a
 * fragment older than version (-1 for none). */
void api_cache_announce(struct api_cache *c, const char *repo,
                        int64_t version);
/* Takes h, rendered by a read that took epoch: keeps it for repo when
 * that read is still current and the fragment of h->version is cached;
 * frees it otherwise. */
void api_cache_put_head(struct api_cache *c, const char *repo,
                        uint64_t epoch, struct api_head *h);
/* The head of repo and the fragment of the same version, both borrowed
 * until the next cache call, when both are cached, no announcement came
 * after the read that rendered the head and the head is under a second
 * old; counts a hit. NULL otherwise (the caller reads Redis, which
 * counts). */
const struct api_head *api_cache_head(struct api_cache *c, const char *repo,
                                      struct api_blob **fragment);
/* The highest version announced for repo since the subscription started,
 * or -1. */
int64_t api_cache_announced(struct api_cache *c, const char *repo);
/* The repo was removed: its entry and its announced version go. */
void api_cache_forget(struct api_cache *c, const char *repo);
/* The subscription was lost: everything goes. */
void api_cache_clear(struct api_cache *c);
uint64_t api_cache_hits(const struct api_cache *c);
uint64_t api_cache_misses(const struct api_cache *c);
size_t api_cache_bytes(const struct api_cache *c);

/* The body of repo's overview at version whose head is head_text (the
 * api_head's text[stale]), in coding e, as made before: borrowed until the
 * next cache call. NULL when none is kept; *keepable then says whether
 * api_cache_put_coded would keep one: only while the fragment of version
 * is cached, so that a body is compressed once per version and head, not
 * once per request. */
struct api_blob *api_cache_coded(struct api_cache *c, const char *repo,
                                 int64_t version,
                                 const struct api_blob *head_text,
                                 enum api_encoding e, bool *keepable);
/* Keeps a reference to body, the overview of repo at version with head
 * head_text in coding e; the body returned (borrowed as above), or NULL
 * when it was not kept. */
struct api_blob *api_cache_put_coded(struct api_cache *c, const char *repo,
                                     int64_t version,
                                     struct api_blob *head_text,
                                     enum api_encoding e,
                                     struct api_blob *body);

/* ---- events*.c ---- */

struct api_events *api_events_new(struct api *api);
/* Ends every stream (SIGTERM) and unsubscribes. */
void api_events_close_all(struct api_events *ev);
void api_events_free(struct api_events *ev);
bool api_events_subscribed(const struct api_events *ev);
size_t api_events_clients(const struct api_events *ev);
/* Housekeeping: a `: ping` to every stream when ping is set, and another
 * try at snapshots that failed. */
void api_events_tick(struct api_events *ev, bool ping);

/* ---- metrics.c ---- */

struct api_metrics *api_metrics_new(void);
void api_metrics_free(struct api_metrics *m);
/* One answered request: route name (or "none"), status, duration. */
void api_metrics_request(struct api_metrics *m, const char *route,
                         int status, int64_t micros);
void api_metrics_sse_event(struct api_metrics *m, uint64_t n);
void api_metrics_sse_dropped(struct api_metrics *m);
/* One overview or list body of bytes sent in coding e. */
void api_metrics_coded(struct api_metrics *m, enum api_encoding e,
                       size_t bytes);
/* One body of in bytes compressed in e, which took micros. */
void api_metrics_compressed(struct api_metrics *m, enum api_encoding e,
                            size_t in, int64_t micros);

#endif

/*
 * GET /v1/repos/{id}/overview: the repo, its version and freshness, and the
 * fragment the worker rendered (counts, branches, pullRequests), answered
 * from Redis only.
 *
 * Reads: when the cache holds the repo's head and fragment (cache.c: no
 * event of the repo came since they were read), the request is answered
 * from them at once, in the pass it arrived in; only "stale" is decided
 * by the clock. Otherwise, when the fragment cache holds the repo at a
 * version no older than the last one announced, only the meta hash is
 * read (HGETALL) and the cached fragment is used if the versions agree.
 * Otherwise the meta hash and the fragment are read together in one
 * MULTI/EXEC, so they always belong to the same commit. A reply older
 * than an announced version is read again (once).
 *
 * Batches: requests for the same repo that arrive in one pass of the event
 * loop share one read, sent at the end of that pass, and one rendered body.
 * The read goes out after every request of its batch arrived, so each
 * answer is as fresh as a read of its own would be; a request arriving
 * later starts the next batch. Under load this takes the Redis round trip,
 * the parsing of the meta hash and the JSON rendering off most requests.
 *
 * Codings: a request that accepts br or gzip (encoding.c) gets the body
 * compressed, made by the first such request of a version and head and
 * kept in the cache with the fragment (api_cache_coded), so every later
 * one refers to the same bytes. Each coding has its own ETag (a suffix),
 * and If-None-Match is compared with the ETag of the representation that
 * would be sent. A body the cache cannot keep (no fragment cached: no
 * subscription, a fragment too large) goes out uncompressed rather than
 * compressed per request.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "common/errors.h"
#include "common/freshness.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/registry.h"

/* The fragment before the first sync. */
static const char empty_fragment[] =
    "\"counts\":{\"branches\":0,\"conflicting\":0,\"openPullRequests\":0},"
    "\"branches\":[],\"pullRequests\":[]";

/* How often a read overtaken by an announcement is tried again. */
#define OVERVIEW_MAX_REREADS 2

/* Most requests one batch answers; a busier repo starts another batch. */
#define OVERVIEW_BATCH_MAX 256
/* Most batches open at once that a new request looks through. Past it a
 * request gets a batch of its own, so a pass over requests for thousands
 * of repos stays linear. */
#define OVERVIEW_OPEN_MAX 64

/* One read of a repo and the requests it answers. Owns the calls until
 * each is answered. */
struct overview_batch {
    struct api *api;
    char id[RV_REPO_ID_MAX + 1];
    struct api_call **calls;
    size_t n;
    int rereads;
    uint64_t epoch; /* the cache's epoch when the read left */
    struct overview_batch *next; /* in the list of open batches */
};

/* The batches waiting for the end of the loop's pass, one set per API
 * (api->batches, made on the first overview read). `flush` is an event
 * made active when the first batch opens; libevent runs it after the
 * callbacks already due in the same pass, so every request read in that
 * pass has joined by then. */
struct api_batches {
    struct event *flush;
    struct overview_batch *open;     /* searched by repo */
    size_t nopen;
    struct overview_batch *overflow; /* past OVERVIEW_OPEN_MAX, not */
};

static void read_full(struct overview_batch *b);

static void batch_free(struct overview_batch *b)
{
    free(b->calls);
    free(b);
}

/* Answers every call of b with the error of err (503 for Redis), then
 * frees b. */
static void batch_fail(struct overview_batch *b, int err, const char *msg)
{
    for (size_t i = 0; i < b->n; i++) {
        if (err == RV_ERR_REDIS)
            api_reply_unavailable(b->calls[i]);
        else
            api_reply_rv_error(b->calls[i], err, "%s", msg);
    }
    batch_free(b);
}

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (h ^ 0xff) * 1099511628211ull; /* field separator */
}

/* The hash behind the ETags (overview_etag) of repo: what the body shows
 * besides the fragment, which the version pins, and the stale flag:
 * statuses, sync times, errors. */
static uint64_t etag_hash(const struct rv_repo *repo)
{
    uint64_t h = 1469598103934665603ull;
    char num[32];
    for (int k = 0; k < 2; k++) {
        const struct rv_sync_state *s = &repo->sync[k];
        h = fnv(h, s->status);
        snprintf(num, sizeof(num), "%lld", (long long)s->at_ms);
        h = fnv(h, num);
        h = fnv(h, s->error_json);
    }
    return fnv(h, repo->github);
}

/* A strong ETag of the overview of repo, with etag_hash(repo) in h. */
static void overview_etag(const struct rv_repo *repo, uint64_t h, bool stale,
                          char *buf, size_t size)
{
    h = fnv(h, stale ? "stale" : "fresh");
    snprintf(buf, size, "\"%lld-%016llx\"", (long long)repo->version,
             (unsigned long long)h);
}

#define HEAD_FORMAT "{\"repo\":%s,\"version\":%lld,\"freshness\":%s,"

static bool etag_matches(const char *header, const char *etag)
{
    if (!header)
        return false;
    if (strcmp(header, "*") == 0)
        return true;
    return strstr(header, etag) != NULL;
}

/* The head of repo's overview in both forms, or NULL when out of memory. */
static struct api_head *head_render(struct api *api, const struct rv_repo *repo)
{
    int64_t stale_after = rv_freshness_stale_after(api->cfg, repo);
    uint64_t hash = etag_hash(repo);
    struct api_head *h = calloc(1, sizeof(*h));
    json_t *rj = rv_repo_json(repo);
    char *repo_text = rj ? json_dumps(rj, JSON_COMPACT) : NULL;
    json_decref(rj);
    bool ok = h && repo_text;
    for (int stale = 0; ok && stale < 2; stale++) {
        json_t *fresh = rv_freshness_json_as(repo, stale, stale_after);
        char *fresh_text = fresh ? json_dumps(fresh, JSON_COMPACT) : NULL;
        json_t *snap = fresh ? json_pack("{s:s,s:I,s:O}", "repo", repo->id,
                                         "version", (json_int_t)repo->version,
                                         "freshness", fresh)
                             : NULL;
        char *snap_text = snap ? json_dumps(snap, JSON_COMPACT) : NULL;
        json_decref(snap);
        json_decref(fresh);
        ok = fresh_text && snap_text &&
             (h->text[stale] = api_blob_printf(HEAD_FORMAT, repo_text,
                                               (long long)repo->version,
                                               fresh_text)) &&
             (h->snapshot[stale] = api_blob_new(snap_text, strlen(snap_text)));
        free(fresh_text);
        free(snap_text);
        overview_etag(repo, hash, stale, h->etag[stale],
                      sizeof(h->etag[stale]));
    }
    free(repo_text);
    if (!ok) {
        api_head_free(h);
        return NULL;
    }
    h->version = repo->version;
    h->stale_from_ms = rv_stale_from_ms(repo, stale_after);
    return h;
}

/* Appends the identity body of head's text and fragment (NULL = before
 * the first sync) to out by reference. 0, or -1 when out of memory. */
static int add_body(struct evbuffer *out, struct api_blob *text,
                    struct api_blob *fragment)
{
    static const char close_brace[] = "}";
    return api_blob_add_to(out, text) ||
                   (fragment ? api_blob_add_to(out, fragment)
                             : evbuffer_add_reference(
                                   out, empty_fragment,
                                   sizeof(empty_fragment) - 1, NULL, NULL)) ||
                   evbuffer_add_reference(out, close_brace, 1, NULL, NULL)
               ? -1
               : 0;
}

/* Whether the body of text and fragment is big enough to be sent
 * compressed (a body before the first sync never is). */
static bool compressible(const struct api_blob *text,
                         const struct api_blob *fragment)
{
    return fragment &&
           api_blob_len(text) + api_blob_len(fragment) + 1 >= API_ENC_MIN_BYTES;
}

/* Answers 304 with etag (the ETag and Vary a 200 would carry). */
static void not_modified(struct api_call *call, const char *etag)
{
    evhttp_add_header(evhttp_request_get_output_headers(call->req), "ETag",
                      etag);
    api_encoding_headers(call->req, API_ENC_IDENTITY); /* Vary only */
    api_reply_bytes(call, 304, NULL, NULL, 0);
}

/* The body of text and fragment in coding enc, borrowed from the cache
 * (until its next call): the one made before, or made now when the cache
 * can keep it. NULL when the body goes out uncompressed: too small, no
 * fragment of the version cached, out of memory. */
static struct api_blob *coded_body(struct api *api, const char *repo,
                                   int64_t version, struct api_blob *text,
                                   struct api_blob *fragment,
                                   enum api_encoding enc)
{
    bool keepable = false;
    struct api_blob *body = fragment ? api_cache_coded(api->cache, repo,
                                                       version, text, enc,
                                                       &keepable)
                                     : NULL;
    if (body || !keepable || !compressible(text, fragment))
        return body;
    struct evbuffer *plain = evbuffer_new();
    const char *data = NULL;
    size_t len = 0;
    if (plain && add_body(plain, text, fragment) == 0) {
        len = evbuffer_get_length(plain);
        data = (const char *)evbuffer_pullup(plain, -1);
    }
    struct api_blob *made =
        data ? api_encoding_compress(api->metrics, enc,
                                     enc == API_ENC_BR ? API_ENC_BR_QUALITY
                                                       : API_ENC_GZIP_LEVEL,
                                     data, len)
             : NULL;
    if (made)
        body = api_cache_put_coded(api->cache, repo, version, text, enc, made);
    api_blob_unref(made);
    if (plain)
        evbuffer_free(plain);
    return body;
}

/* Answers call with the overview of head and fragment (NULL = before the
 * first sync), in the coding the request prefers: the reply refers to
 * their bytes (or the cached compressed ones) instead of copying them. */
static void reply_one(struct api_call *call, const struct api_head *head,
                      struct api_blob *fragment)
{
    struct evhttp_request *req = call->req;
    int stale = rv_now_ms() >= head->stale_from_ms;
    enum api_encoding enc = api_encoding_of(req);
    const char *inm = evhttp_find_header(evhttp_request_get_input_headers(req),
                                         "If-None-Match");
    char etag[sizeof(head->etag[0]) + 4];
    /* A client that holds this version in its coding is answered before
     * anything is compressed: the cache may have let that body go. */
    if (inm && enc != API_ENC_IDENTITY &&
        compressible(head->text[stale], fragment)) {
        api_encoding_etag(head->etag[stale], enc, etag, sizeof(etag));
        if (etag_matches(inm, etag)) {
            not_modified(call, etag);
            return;
        }
    }
    struct api_blob *body =
        enc == API_ENC_IDENTITY
            ? NULL
            : coded_body(call->api, call->id, head->version,
                         head->text[stale], fragment, enc);
    if (!body)
        enc = API_ENC_IDENTITY;
    api_encoding_etag(head->etag[stale], enc, etag, sizeof(etag));
    if (etag_matches(inm, etag)) {
        not_modified(call, etag);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "ETag", etag);
    api_encoding_headers(req, enc);
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    if (body ? api_blob_add_to(out, body)
             : add_body(out, head->text[stale], fragment)) {
        evbuffer_drain(out, evbuffer_get_length(out));
        evhttp_remove_header(evhttp_request_get_output_headers(req),
                             "Content-Encoding");
        evhttp_remove_header(evhttp_request_get_output_headers(req), "ETag");
        api_reply_rv_error(call, RV_ERR_NOMEM, "out of memory");
        return;
    }
    api_metrics_coded(call->api->metrics, enc, evbuffer_get_length(out));
    api_reply_buffer(call, 200, "application/json", NULL);
}

/* Answers every call of b with the overview of repo and fragment (NULL =
 * before the first sync), keeps the head for the reads after them, and
 * frees b. */
static void batch_reply(struct overview_batch *b, const struct rv_repo *repo,
                        struct api_blob *fragment)
{
    struct api *api = b->api;
    struct api_head *head = head_render(api, repo);
    if (!head) {
        batch_fail(b, RV_ERR_NOMEM, "out of memory");
        return;
    }
    for (size_t i = 0; i < b->n; i++)
        reply_one(b->calls[i], head, fragment);
    if (fragment && api_events_subscribed(api->events))
        api_cache_put_head(api->cache, b->id, b->epoch, head);
    else
        api_head_free(head);
    batch_free(b);
}

/* Parses the meta hash; on failure answers every call, frees b and
 * returns false. */
static bool parse_meta(struct overview_batch *b, const redisReply *hash,
                       struct rv_repo *repo)
{
    int rc = rv_repo_from_hash(hash, repo);
    if (rc != RV_OK) {
        char msg[RV_REPO_ID_MAX + 16];
        snprintf(msg, sizeof(msg), "no repo \"%s\"", b->id);
        batch_fail(b, rc, rc == RV_ERR_NOT_FOUND
                              ? msg
                              : "the repo's meta hash is malformed");
        return false;
    }
    return true;
}

static void on_full(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct overview_batch *b = priv;
    struct api *api = b->api;
    if (!reply) {
        batch_fail(b, RV_ERR_REDIS, NULL);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        char msg[256];
        snprintf(msg, sizeof(msg), "MULTI/EXEC failed: %s",
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "no reply");
        batch_fail(b, RV_ERR_PROTOCOL, msg);
        return;
    }
    struct rv_repo repo;
    if (!parse_meta(b, reply->element[0], &repo))
        return;
    const redisReply *frag = reply->element[1];
    bool has_fragment = frag->type == REDIS_REPLY_STRING;
    if (repo.version < api_cache_announced(api->cache, b->id) &&
        b->rereads < OVERVIEW_MAX_REREADS) {
        rv_repo_free(&repo);
        b->rereads++;
        read_full(b);
        return;
    }
    struct api_blob *blob = NULL;
    if (has_fragment && !(blob = api_blob_new(frag->str, frag->len))) {
        rv_repo_free(&repo);
        batch_fail(b, RV_ERR_NOMEM, "out of memory");
        return;
    }
    if (blob && api_events_subscribed(api->events))
        api_cache_put(api->cache, b->id, b->epoch, repo.version, blob);
    batch_reply(b, &repo, blob);
    api_blob_unref(blob);
    rv_repo_free(&repo);
}

/* Ignores the replies to MULTI and the queued commands: EXEC's decides. */
static void on_queued(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    (void)reply;
    (void)priv;
}

static int send_argv(struct rv_rasync *ra, rv_rasync_reply_cb cb, void *priv,
                     const char *a, const char *b)
{
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_cmd_add(&cmd, a);
    if (b)
        rv_cmd_add(&cmd, b);
    return rv_rasync_run(ra, &cmd, cb, priv);
}

/* MULTI, HGETALL meta, GET overview, EXEC, pipelined on the command
 * connection (nothing else can be sent in between: the loop is single
 * threaded and these four go out in one go). */
static void read_full(struct overview_batch *b)
{
    struct rv_rasync *ra = b->api->redis;
    char meta[RV_KEY_MAX], ov[RV_KEY_MAX];
    rv_key_meta(meta, b->id);
    rv_key_overview(ov, b->id);
    b->epoch = api_cache_epoch(b->api->cache);
    int rc = send_argv(ra, on_queued, NULL, "MULTI", NULL);
    if (rc == RV_OK)
        rc = send_argv(ra, on_queued, NULL, "HGETALL", meta);
    if (rc == RV_OK)
        rc = send_argv(ra, on_queued, NULL, "GET", ov);
    if (rc == RV_OK)
        rc = send_argv(ra, on_full, b, "EXEC", NULL);
    else if (rc != RV_ERR_REDIS)
        send_argv(ra, on_queued, NULL, "DISCARD", NULL); /* MULTI went out */
    if (rc != RV_OK)
        batch_fail(b, rc, "cannot send the command");
}

static void on_meta(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct overview_batch *b = priv;
    struct api *api = b->api;
    if (!reply) {
        batch_fail(b, RV_ERR_REDIS, NULL);
        return;
    }
    struct rv_repo repo;
    if (!parse_meta(b, reply, &repo))
        return;
    struct api_blob *frag =
        repo.version >= api_cache_announced(api->cache, b->id)
            ? api_cache_get(api->cache, b->id, repo.version)
            : NULL;
    if (frag && api_events_subscribed(api->events)) {
        batch_reply(b, &repo, frag);
        rv_repo_free(&repo);
        return;
    }
    rv_repo_free(&repo);
    read_full(b);
}

/* Starts the read of a batch whose requests have all arrived. */
static void batch_start(struct overview_batch *b)
{
    struct api *api = b->api;
    int64_t cached = api_events_subscribed(api->events)
                         ? api_cache_version(api->cache, b->id)
                         : -1;
    if (cached < 0 || cached < api_cache_announced(api->cache, b->id)) {
        api_cache_get(api->cache, b->id, -1); /* counts a miss */
        read_full(b);
        return;
    }
    char meta[RV_KEY_MAX];
    b->epoch = api_cache_epoch(api->cache);
    int rc = send_argv(api->redis, on_meta, b, "HGETALL",
                       rv_key_meta(meta, b->id));
    if (rc != RV_OK)
        batch_fail(b, rc, "cannot send the command");
}

static void start_all(struct overview_batch *b)
{
    while (b) {
        struct overview_batch *next = b->next;
        b->next = NULL;
        batch_start(b);
        b = next;
    }
}

/* The end of the loop's pass: every open batch starts its read. */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct api_batches *batches = arg;
    struct overview_batch *open = batches->open;
    struct overview_batch *overflow = batches->overflow;
    batches->open = batches->overflow = NULL;
    batches->nopen = 0;
    start_all(open);
    start_all(overflow);
}

/* The open batch of call's repo with room for one more, or a new one. */
static struct overview_batch *batch_for(struct api_call *call)
{
    struct api *api = call->api;
    struct api_batches *batches = api->batches;
    if (!batches) {
        if (!(batches = calloc(1, sizeof(*batches))))
            return NULL;
        if (!(batches->flush =
                  event_new(api->base, -1, 0, on_flush, batches))) {
            free(batches);
            return NULL;
        }
        api->batches = batches;
    }
    for (struct overview_batch *b = batches->open; b; b = b->next)
        if (b->n < OVERVIEW_BATCH_MAX && strcmp(b->id, call->id) == 0)
            return b;
    struct overview_batch *b = calloc(1, sizeof(*b));
    if (!b || !(b->calls = calloc(OVERVIEW_BATCH_MAX, sizeof(*b->calls)))) {
        free(b);
        return NULL;
    }
    b->api = api;
    rv_strlcpy(b->id, call->id, sizeof(b->id));
    if (!batches->open && !batches->overflow)
        event_active(batches->flush, EV_TIMEOUT, 0);
    struct overview_batch **list = batches->nopen < OVERVIEW_OPEN_MAX
                                       ? &batches->open
                                       : &batches->overflow;
    if (list == &batches->open)
        batches->nopen++;
    b->next = *list;
    *list = b;
    return b;
}

void api_overview_get(struct api_call *call)
{
    struct api *api = call->api;
    if (api_events_subscribed(api->events) &&
        rv_rasync_connected(api->redis)) {
        struct api_blob *fragment = NULL;
        const struct api_head *head =
            api_cache_head(api->cache, call->id, &fragment);
        if (head) {
            reply_one(call, head, fragment);
            return;
        }
    }
    struct overview_batch *b = batch_for(call);
    if (!b) {
        api_reply_rv_error(call, RV_ERR_NOMEM, "out of memory");
        return;
    }
    b->calls[b->n++] = call;
}

void api_overview_shutdown(struct api *api)
{
    struct api_batches *batches = api->batches;
    if (!batches)
        return;
    on_flush(-1, 0, batches);
    event_free(batches->flush);
    free(batches);
    api->batches = NULL;
}

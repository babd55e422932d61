/*
 * GET /v1/repos/{id}/overview: the repo, its version and freshness, and the
 * fragment the worker rendered (counts, branches, pullRequests), answered
 * from Redis only.
 *
 * Reads: when the fragment cache holds the repo at a version no older than
 * the last one announced, only the meta hash is read (HGETALL) and the
 * cached fragment is used if the versions agree. Otherwise the meta hash
 * and the fragment are read together in one MULTI/EXEC, so they always
 * belong to the same commit. A reply older than an announced version is
 * read again (once).
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "common/errors.h"
#include "common/keys.h"
#include "common/registry.h"

/* The fragment before the first sync. */
static const char empty_fragment[] =
    "\"counts\":{\"branches\":0,\"conflicting\":0,\"openPullRequests\":0},"
    "\"branches\":[],\"pullRequests\":[]";

/* How often a read overtaken by an announcement is tried again. */
#define OVERVIEW_MAX_REREADS 2

struct overview_read {
    struct api_call *call;
    int rereads;
};

static void read_full(struct overview_read *r);

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (h ^ 0xff) * 1099511628211ull; /* field separator */
}

/* A strong ETag over what the body shows besides the fragment, which the
 * version pins: statuses, sync times, errors and the stale flag. */
static void overview_etag(const struct rv_repo *repo, bool stale, char *buf,
                          size_t size)
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
    h = fnv(h, repo->github);
    h = fnv(h, stale ? "stale" : "fresh");
    snprintf(buf, size, "\"%lld-%016llx\"", (long long)repo->version,
             (unsigned long long)h);
}

static bool etag_matches(const char *header, const char *etag)
{
    if (!header)
        return false;
    if (strcmp(header, "*") == 0)
        return true;
    return strstr(header, etag) != NULL;
}

/* Answers with the overview of repo and fragment (NULL = before the first
 * sync). */
static void overview_reply(struct api_call *call, const struct rv_repo *repo,
                           const char *fragment, size_t len)
{
    json_t *fresh = api_freshness(call->api, repo);
    json_t *rj = rv_repo_json(repo);
    char *fresh_text = fresh ? json_dumps(fresh, JSON_COMPACT) : NULL;
    char *repo_text = rj ? json_dumps(rj, JSON_COMPACT) : NULL;
    bool stale = json_is_true(json_object_get(fresh, "stale"));
    json_decref(fresh);
    json_decref(rj);
    if (!fresh_text || !repo_text) {
        free(fresh_text);
        free(repo_text);
        api_reply_rv_error(call, RV_ERR_NOMEM, "out of memory");
        return;
    }
    char etag[64];
    overview_etag(repo, stale, etag, sizeof(etag));
    struct evhttp_request *req = call->req;
    evhttp_add_header(evhttp_request_get_output_headers(req), "ETag", etag);
    const char *inm = evhttp_find_header(evhttp_request_get_input_headers(req),
                                         "If-None-Match");
    if (etag_matches(inm, etag)) {
        free(fresh_text);
        free(repo_text);
        api_reply_bytes(call, 304, NULL, NULL, 0);
        return;
    }
    if (!fragment) {
        fragment = empty_fragment;
        len = sizeof(empty_fragment) - 1;
    }
    struct evbuffer *b = evbuffer_new();
    if (!b || evbuffer_add_printf(b, "{\"repo\":%s,\"version\":%lld,"
                                     "\"freshness\":%s,",
                                  repo_text, (long long)repo->version,
                                  fresh_text) < 0 ||
        evbuffer_add(b, fragment, len) || evbuffer_add(b, "}", 1)) {
        if (b)
            evbuffer_free(b);
        free(fresh_text);
        free(repo_text);
        api_reply_rv_error(call, RV_ERR_NOMEM, "out of memory");
        return;
    }
    free(fresh_text);
    free(repo_text);
    size_t n = evbuffer_get_length(b);
    api_reply_bytes(call, 200, "application/json",
                    (const char *)evbuffer_pullup(b, -1), n);
    evbuffer_free(b);
}

/* Parses the meta hash; answers call and returns false on failure. */
static bool parse_meta(struct api_call *call, const redisReply *hash,
                       struct rv_repo *repo)
{
    int rc = rv_repo_from_hash(hash, repo);
    if (rc == RV_ERR_NOT_FOUND) {
        api_reply_error(call, 404, "not_found", "no repo \"%s\"", call->id);
        return false;
    }
    if (rc != RV_OK) {
        api_reply_rv_error(call, rc, "the repo's meta hash is malformed");
        return false;
    }
    return true;
}

static void on_full(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct overview_read *r = priv;
    struct api_call *call = r->call;
    struct api *api = call->api;
    if (!reply) {
        api_reply_unavailable(call);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        api_reply_rv_error(call, RV_ERR_PROTOCOL, "MULTI/EXEC failed: %s",
                           reply->type == REDIS_REPLY_ERROR ? reply->str
                                                            : "no reply");
        return;
    }
    struct rv_repo repo;
    if (!parse_meta(call, reply->element[0], &repo))
        return;
    const redisReply *frag = reply->element[1];
    bool has_fragment = frag->type == REDIS_REPLY_STRING;
    if (repo.version < api_cache_announced(api->cache, call->id) &&
        r->rereads < OVERVIEW_MAX_REREADS) {
        rv_repo_free(&repo);
        r->rereads++;
        read_full(r);
        return;
    }
    if (has_fragment && api_events_subscribed(api->events))
        api_cache_put(api->cache, call->id, repo.version, frag->str,
                      frag->len);
    overview_reply(call, &repo, has_fragment ? frag->str : NULL,
                   has_fragment ? frag->len : 0);
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
static void read_full(struct overview_read *r)
{
    struct api_call *call = r->call;
    struct rv_rasync *ra = call->api->redis;
    char meta[RV_KEY_MAX], ov[RV_KEY_MAX];
    rv_key_meta(meta, call->id);
    rv_key_overview(ov, call->id);
    int rc = send_argv(ra, on_queued, NULL, "MULTI", NULL);
    if (rc == RV_OK)
        rc = send_argv(ra, on_queued, NULL, "HGETALL", meta);
    if (rc == RV_OK)
        rc = send_argv(ra, on_queued, NULL, "GET", ov);
    if (rc == RV_OK)
        rc = send_argv(ra, on_full, r, "EXEC", NULL);
    else if (rc != RV_ERR_REDIS)
        send_argv(ra, on_queued, NULL, "DISCARD", NULL); /* MULTI went out */
    if (rc == RV_ERR_REDIS)
        api_reply_unavailable(call);
    else if (rc != RV_OK)
        api_reply_rv_error(call, rc, "cannot send the command");
}

static void on_meta(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct overview_read *r = priv;
    struct api_call *call = r->call;
    struct api *api = call->api;
    if (!reply) {
        api_reply_unavailable(call);
        return;
    }
    struct rv_repo repo;
    if (!parse_meta(call, reply, &repo))
        return;
    size_t len = 0;
    const char *frag = repo.version >= api_cache_announced(api->cache, call->id)
                           ? api_cache_get(api->cache, call->id, repo.version,
                                           &len)
                           : NULL;
    if (frag && api_events_subscribed(api->events)) {
        overview_reply(call, &repo, frag, len);
        rv_repo_free(&repo);
        return;
    }
    rv_repo_free(&repo);
    read_full(r);
}

void api_overview_get(struct api_call *call)
{
    struct api *api = call->api;
    struct overview_read *r = calloc(1, sizeof(*r));
    if (!r) {
        api_reply_rv_error(call, RV_ERR_NOMEM, "out of memory");
        return;
    }
    r->call = call;
    call->priv = r;
    call->priv_free = free;
    int64_t cached = api_events_subscribed(api->events)
                         ? api_cache_version(api->cache, call->id)
                         : -1;
    if (cached < 0 || cached < api_cache_announced(api->cache, call->id)) {
        size_t unused;
        api_cache_get(api->cache, call->id, -1, &unused); /* counts a miss */
        read_full(r);
        return;
    }
    char meta[RV_KEY_MAX];
    int rc = send_argv(api->redis, on_meta, r, "HGETALL",
                       rv_key_meta(meta, call->id));
    if (rc == RV_ERR_REDIS)
        api_reply_unavailable(call);
    else if (rc != RV_OK)
        api_reply_rv_error(call, rc, "cannot send the command");
}

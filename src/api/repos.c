/*
 * The registry resource: GET/POST /v1/repos, GET/DELETE /v1/repos/{id}.
 * Writes go through the shared command builders of common/registry.h, so
 * the API and the CLI send the same scripts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "common/errors.h"
#include "common/freshness.h"
#include "common/log.h"
#include "common/registry.h"
#include "common/scripts.h"

json_t *api_repo_summary(struct api *api, const struct rv_repo *repo)
{
    json_t *o = rv_repo_json(repo);
    json_t *f = rv_freshness_now(api->cfg, repo);
    if (!o || !f ||
        json_object_set_new(o, "version", json_integer(repo->version)) ||
        json_object_set_new(o, "freshness", f)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Sends an HGETALL of call->id's meta hash; the reply goes to cb with call.
 * On failure answers call (503) and returns false. */
static bool send_get(struct api_call *call, rv_rasync_reply_cb cb)
{
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_registry_get_cmd(&cmd, call->id);
    return api_send(call, &cmd, cb, call);
}

/* Answers call with the repo of an HGETALL reply, or the error. */
static void reply_repo(struct api_call *call, const redisReply *reply,
                       int status)
{
    if (!reply) {
        api_reply_unavailable(call);
        return;
    }
    struct rv_repo repo;
    int rc = rv_repo_from_hash(reply, &repo);
    if (rc == RV_ERR_NOT_FOUND) {
        api_reply_error(call, 404, "not_found", "no repo \"%s\"", call->id);
        return;
    }
    if (rc != RV_OK) {
        api_reply_rv_error(call, rc, "the repo's meta hash is malformed");
        return;
    }
    json_t *body = api_repo_summary(call->api, &repo);
    rv_repo_free(&repo);
    if (!body) {
        api_reply_rv_error(call, RV_ERR_NOMEM, "out of memory");
        return;
    }
    api_reply_json(call, status, body);
}

/* ---- GET /v1/repos/{id} ---- */

static void on_get(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    reply_repo(priv, reply, 200);
}

void api_repos_get(struct api_call *call)
{
    send_get(call, on_get);
}

/* ---- POST /v1/repos ---- */

static void on_created(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    reply_repo(priv, reply, 201);
}

static void on_register(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct api_call *call = priv;
    int rc = rv_script_reply_code(reply);
    if (rc == RV_ERR_REDIS) {
        api_reply_unavailable(call);
        return;
    }
    if (rc == RV_ERR_EXISTS) {
        api_reply_rv_error(call, rc, "repo \"%s\" already exists", call->id);
        return;
    }
    if (rc != RV_OK) {
        api_reply_rv_error(call, rc, "registerRepo failed: %s",
                           reply && reply->type == REDIS_REPLY_ERROR
                               ? reply->str
                               : rv_strerror(rc));
        return;
    }
    LOG(RV_LOG_INFO, call->id, NULL, "repo registered");
    send_get(call, on_created);
}

/* A value that may be absent, null or a string: its text, or NULL. False
 * for any other type. */
static bool opt_string(const json_t *v, const char **out)
{
    *out = json_string_value(v);
    return !v || json_is_null(v) || json_is_string(v);
}

int api_repo_spec_parse(const char *body, size_t len,
                        const struct rv_url_policy *policy,
                        struct rv_repo_spec *spec, json_t **doc_out, char *msg,
                        size_t msglen)
{
    int rc = RV_ERR_INVALID;
    json_error_t jerr;
    memset(spec, 0, sizeof(*spec));
    *doc_out = NULL;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(doc)) {
        snprintf(msg, msglen, "the body must be a JSON object: %s",
                 doc ? "not an object" : jerr.text);
        rc = RV_ERR_DECODE;
        goto out;
    }
    /* The shape, strictly: these fields and no other ("!"). */
    json_t *github = NULL, *branch = NULL, *interval = NULL;
    if (json_unpack_ex(doc, &jerr, 0, "{s:s, s:s, s?o, s?o, s?o !}", "id",
                       &spec->id, "url", &spec->url, "github", &github,
                       "defaultBranch", &branch, "syncIntervalSeconds",
                       &interval) != 0) {
        snprintf(msg, msglen,
                 "the body must be {\"id\",\"url\",\"github\"?,"
                 "\"defaultBranch\"?,\"syncIntervalSeconds\"?}: %s",
                 jerr.text);
        goto out;
    }
    if (!opt_string(github, &spec->github) ||
        !opt_string(branch, &spec->default_branch)) {
        snprintf(msg, msglen, "github and defaultBranch must be strings");
        goto out;
    }
    if (interval && !json_is_null(interval)) {
        if (!json_is_integer(interval)) {
            snprintf(msg, msglen, "syncIntervalSeconds must be an integer");
            goto out;
        }
        spec->interval_s = json_integer_value(interval);
    }
    rc = rv_repo_spec_validate(spec, policy, msg, msglen);
out:
    if (rc == RV_OK) {
        *doc_out = doc;
    } else {
        memset(spec, 0, sizeof(*spec));
        json_decref(doc);
    }
    return rc;
}

void api_repos_create(struct api_call *call)
{
    size_t len = 0;
    int rc = RV_OK;
    json_t *doc = NULL;
    char *body = api_json_body(call, API_MAX_BODY, &len);
    if (!body)
        return;
    struct rv_repo_spec spec;
    char err[256];
    rc = api_repo_spec_parse(body, len, &call->api->url_policy, &spec, &doc,
                             err, sizeof(err));
    free(body);
    if (rc != RV_OK) {
        api_reply_error(call, 400,
                        rc == RV_ERR_DECODE            ? "bad_request"
                        : rc == RV_ERR_URL_NOT_ALLOWED ? "url_not_allowed"
                                                       : "invalid",
                        "%s", err);
        return;
    }
    if (!api_access_repo(call, spec.id))
        goto out;
    rv_strlcpy(call->id, spec.id, sizeof(call->id));
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rc = rv_registry_add_cmd(&cmd, &spec, rv_now_ms());
    if (rc != RV_OK) {
        rv_cmd_free(&cmd);
        api_reply_rv_error(call, rc, "cannot build the command");
        goto out;
    }
    api_send(call, &cmd, on_register, call);
out:
    json_decref(doc);
}

/* ---- DELETE /v1/repos/{id} ---- */

static void on_removed(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct api_call *call = priv;
    int rc = rv_script_reply_code(reply);
    if (rc == RV_ERR_REDIS)
        api_reply_unavailable(call);
    else if (rc == RV_ERR_NOT_FOUND)
        api_reply_error(call, 404, "not_found", "no repo \"%s\"", call->id);
    else if (rc != RV_OK)
        api_reply_rv_error(call, rc, "removeRepo failed");
    else {
        LOG(RV_LOG_INFO, call->id, NULL, "repo removed");
        api_cache_forget(call->api->cache, call->id);
        api_reply_json(call, 204, NULL);
    }
}

void api_repos_delete(struct api_call *call)
{
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    int rc = rv_registry_remove_cmd(&cmd, call->id);
    if (rc == RV_OK) {
        api_send(call, &cmd, on_removed, call);
    } else {
        rv_cmd_free(&cmd);
        api_reply_send_failed(call, rc);
    }
}

/* ---- GET /v1/repos ---- */

/* GET /v1/repos pages: CONTRACT.md's default and largest limit. */
#define RV_LIST_DEFAULT 100
#define RV_LIST_MAX 1000

/* One repo's summary being read for api_gather_page. */
struct repo_item {
    struct api_call *call;
    api_item_cb cb;
    void *priv;
};

static void on_repo_hash(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct repo_item it = *(struct repo_item *)priv;
    free(priv);
    struct rv_repo repo;
    int rc = reply ? rv_repo_from_hash(reply, &repo) : RV_ERR_REDIS;
    json_t *item = NULL;
    if (rc == RV_OK) {
        item = api_repo_summary(it.call->api, &repo);
        rv_repo_free(&repo);
        if (!item)
            rc = RV_ERR_NOMEM;
    }
    it.cb(it.priv, rc, item);
}

static void repo_item(struct api_call *call, struct rv_rasync *ra,
                      const char *id, api_item_cb cb, void *priv)
{
    struct repo_item *it = malloc(sizeof(*it));
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    int rc = it ? rv_registry_get_cmd(&cmd, id) : RV_ERR_NOMEM;
    if (rc == RV_OK) {
        *it = (struct repo_item){.call = call, .cb = cb, .priv = priv};
        if ((rc = rv_rasync_run(ra, &cmd, on_repo_hash, it)) == RV_OK)
            return;
    } else {
        rv_cmd_free(&cmd);
    }
    free(it);
    cb(priv, rc, NULL);
}

/* The query of GET /v1/repos, checked. */
struct list_query {
    char *cursor, *org, *q, *limit; /* malloc'd or NULL */
    int64_t n;
};

static void list_query_free(struct list_query *lq)
{
    free(lq->cursor);
    free(lq->org);
    free(lq->q);
    free(lq->limit);
}

/* NULL when lq is good, else the sentence for a 400. q is lower-cased. */
static const char *list_query_check(struct list_query *lq)
{
    lq->n = RV_LIST_DEFAULT;
    if (lq->limit && rv_parse_i64(lq->limit, 1, RV_LIST_MAX, &lq->n) != 0)
        return "limit must be a whole number from 1 to 1000";
    if (lq->cursor && !rv_repo_id_valid(lq->cursor))
        return "cursor must be the nextCursor of an earlier page";
    if (lq->org && !rv_repo_id_valid(lq->org))
        return "org must be an org id";
    if (lq->q) {
        size_t n = strlen(lq->q);
        if (n == 0 || n > 100)
            return "q must be 1 to 100 characters";
        for (char *p = lq->q; *p; p++) {
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                return "q must not hold control characters";
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        }
    }
    return NULL;
}

void api_repos_list(struct api_call *call)
{
    struct list_query lq = {.cursor = api_query(call, "cursor"),
                            .org = api_query(call, "org"),
                            .q = api_query(call, "q"),
                            .limit = api_query(call, "limit")};
    const char *bad = list_query_check(&lq);
    if (bad) {
        api_reply_error(call, 400, "bad_request", "%s", bad);
        list_query_free(&lq);
        return;
    }
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_script_listRepos(&cmd,
                        &(struct rv_listrepos_args){
                            .cursor = lq.cursor ? lq.cursor : "",
                            .limit = lq.n,
                            .org = lq.org ? lq.org : "",
                            .q = lq.q ? lq.q : "",
                            /* A filter looks at most this many ids a page. */
                            .scan_max = lq.n * 10 < 2000 ? 2000 : lq.n * 10});
    list_query_free(&lq);
    api_gather_page(call, &cmd, repo_item, "repos", "cannot list the repos");
}

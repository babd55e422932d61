/*
 * The org registry resource: GET/POST /v1/orgs, GET/DELETE /v1/orgs/{id},
 * POST /v1/orgs/{id}/refresh. Writes go through the builders of
 * common/org.h, so the API and the CLI send the same scripts; reads answer
 * from Redis only: the org's hash, then the budget of the GitHub token its
 * syncs spend (rv:gh:budget:<installation id or "pat">), for the
 * dashboard.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "common/errors.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/org.h"
#include "common/scripts.h"

/* POST /v1/orgs takes {"id","github"}: anything longer is not one. */
#define ORG_MAX_BODY 4096

/* ---- reading one org: HGETALL, then the budget ---- */

/* Called once with the org's JSON (new reference) and RV_OK, or NULL and
 * the failure (RV_ERR_NOT_FOUND, RV_ERR_REDIS, ...). */
typedef api_item_cb org_read_cb;

struct org_read {
    org_read_cb cb;
    void *priv;
    json_t *org; /* built from the hash, waiting for the budget */
};

static void on_budget(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct org_read *rd = priv;
    json_t *org = rd->org;
    int rc = RV_OK;
    if (!reply) {
        rc = RV_ERR_REDIS;
    } else if (json_object_set_new(org, "budget", rv_org_budget_json(reply)) !=
               0) {
        rc = RV_ERR_NOMEM;
    }
    if (rc != RV_OK) {
        json_decref(org);
        org = NULL;
    }
    org_read_cb cb = rd->cb;
    void *cb_priv = rd->priv;
    free(rd);
    cb(cb_priv, rc, org);
}

static void on_org_hash(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    struct org_read *rd = priv;
    struct rv_org org;
    int rc = reply ? rv_org_from_hash(reply, &org) : RV_ERR_REDIS;
    if (rc == RV_OK) {
        char identity[24], key[RV_KEY_MAX];
        rd->org = rv_org_json(&org);
        rv_org_token_identity(&org, identity, sizeof(identity));
        rv_org_free(&org);
        struct rv_cmd cmd;
        rv_cmd_init(&cmd);
        rv_cmd_add(&cmd, "HMGET");
        rv_cmd_add(&cmd, rv_key_gh_budget(key, identity));
        rv_cmd_add(&cmd, "remaining");
        rv_cmd_add(&cmd, "limit");
        rv_cmd_add(&cmd, "resetAt");
        rc = rd->org ? rv_rasync_run(ra, &cmd, on_budget, rd) : RV_ERR_NOMEM;
        if (rc == RV_OK)
            return;
        if (!rd->org)
            rv_cmd_free(&cmd);
        json_decref(rd->org);
    }
    org_read_cb cb = rd->cb;
    void *cb_priv = rd->priv;
    free(rd);
    cb(cb_priv, rc, NULL);
}

/* Reads org id on ra; cb is called exactly once, also when nothing could
 * be sent (then before this returns). */
static void org_read(struct rv_rasync *ra, const char *id, org_read_cb cb,
                     void *priv)
{
    struct org_read *rd = calloc(1, sizeof(*rd));
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    int rc = rd ? rv_org_get_cmd(&cmd, id) : RV_ERR_NOMEM;
    if (rc == RV_OK) {
        rd->cb = cb;
        rd->priv = priv;
        rc = rv_rasync_run(ra, &cmd, on_org_hash, rd);
    } else {
        rv_cmd_free(&cmd);
    }
    if (rc != RV_OK) {
        free(rd);
        cb(priv, rc, NULL);
    }
}

/* Answers call with one org read, or its failure. */
static void reply_org(struct api_call *call, int status, int rc, json_t *org)
{
    if (rc == RV_OK)
        api_reply_json(call, status, org);
    else if (rc == RV_ERR_REDIS)
        api_reply_unavailable(call);
    else if (rc == RV_ERR_NOT_FOUND)
        api_reply_error(call, 404, "not_found", "no org \"%s\"", call->id);
    else if (rc == RV_ERR_PROTOCOL)
        api_reply_rv_error(call, rc, "the org's hash is malformed");
    else
        api_reply_rv_error(call, rc, "cannot read the org");
}

static void on_read_200(void *priv, int rc, json_t *org)
{
    reply_org(priv, 200, rc, org);
}

static void on_read_201(void *priv, int rc, json_t *org)
{
    reply_org(priv, 201, rc, org);
}

/* ---- GET /v1/orgs/{id} ---- */

void api_orgs_get(struct api_call *call)
{
    org_read(call->api->redis, call->id, on_read_200, call);
}

/* ---- POST /v1/orgs ---- */

int api_org_spec_parse(const char *body, size_t len, struct rv_org_spec *spec,
                       json_t **doc_out, char *msg, size_t msglen)
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
    /* The shape, strictly: these two strings and nothing else ("!"). */
    if (json_unpack_ex(doc, &jerr, 0, "{s:s, s:s !}", "id", &spec->id, "github",
                       &spec->github) != 0) {
        snprintf(msg, msglen, "the body must be {\"id\",\"github\"}: %s",
                 jerr.text);
        goto out;
    }
    rc = rv_org_spec_validate(spec, msg, msglen);
out:
    if (rc == RV_OK) {
        *doc_out = doc;
    } else {
        memset(spec, 0, sizeof(*spec));
        json_decref(doc);
    }
    return rc;
}

/* What a registration carries to its reply. */
struct org_create {
    struct api_call *call;
    char github[RV_ORG_OWNER_MAX + 1];
};

static void on_register(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    struct org_create *oc = priv;
    struct api_call *call = oc->call;
    bool owner_taken = false;
    char other[RV_REPO_ID_MAX + 1];
    int rc = reply ? rv_org_add_parse(reply, &owner_taken, other, sizeof(other))
                   : RV_ERR_REDIS;
    if (rc == RV_ERR_REDIS) {
        api_reply_unavailable(call);
    } else if (rc == RV_ERR_EXISTS && owner_taken) {
        api_reply_rv_error(call, rc,
                           "GitHub owner \"%s\" is already registered by "
                           "org \"%s\"",
                           oc->github, other);
    } else if (rc == RV_ERR_EXISTS) {
        api_reply_rv_error(call, rc, "org \"%s\" already exists", call->id);
    } else if (rc != RV_OK) {
        api_reply_rv_error(call, rc, "registerOrg failed: %s",
                           reply->type == REDIS_REPLY_ERROR ? reply->str
                                                            : rv_strerror(rc));
    } else {
        LOG(RV_LOG_INFO, call->id, NULL, "org registered for owner %s",
            oc->github);
        org_read(ra, call->id, on_read_201, call);
    }
}

void api_orgs_create(struct api_call *call)
{
    size_t len = 0;
    int rc = RV_OK;
    json_t *doc = NULL;
    char *body = api_json_body(call, ORG_MAX_BODY, &len);
    if (!body)
        return;
    struct rv_org_spec spec;
    char err[256];
    rc = api_org_spec_parse(body, len, &spec, &doc, err, sizeof(err));
    free(body);
    if (rc != RV_OK) {
        api_reply_error(call, 400,
                        rc == RV_ERR_DECODE ? "bad_request" : "invalid", "%s",
                        err);
        return;
    }
    struct org_create *oc = calloc(1, sizeof(*oc));
    if (!oc) {
        api_reply_rv_error(call, RV_ERR_NOMEM, "out of memory");
        goto out;
    }
    call->priv = oc;
    call->priv_free = free;
    oc->call = call;
    rv_strlcpy(oc->github, spec.github, sizeof(oc->github));
    if (!api_access_repo(call, spec.id))
        goto out;
    rv_strlcpy(call->id, spec.id, sizeof(call->id));
    spec.sync_interval_s = call->api->cfg->org_sync_interval;
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rc = rv_org_add_cmd(&cmd, &spec, rv_now_ms());
    if (rc != RV_OK) {
        rv_cmd_free(&cmd);
        api_reply_rv_error(call, rc, "cannot build the command");
        goto out;
    }
    api_send(call, &cmd, on_register, oc);
out:
    json_decref(doc);
}

/* ---- DELETE /v1/orgs/{id} ---- */

static void on_removed(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct api_call *call = priv;
    int64_t repos = 0;
    int rc = reply ? rv_org_remove_parse(reply, &repos) : RV_ERR_REDIS;
    if (rc == RV_ERR_REDIS) {
        api_reply_unavailable(call);
    } else if (rc == RV_ERR_NOT_FOUND) {
        api_reply_error(call, 404, "not_found", "no org \"%s\"", call->id);
    } else if (rc != RV_OK) {
        api_reply_rv_error(call, rc, "removeOrg failed");
    } else {
        /* The repos it took along: a read after this answer must not be
         * served a cached head while their events are on the way. */
        const redisReply *ids = reply->element[1];
        for (size_t i = 0; i < ids->elements; i++)
            if (ids->element[i]->type == REDIS_REPLY_STRING)
                api_cache_forget(call->api->cache, ids->element[i]->str);
        LOG(RV_LOG_INFO, call->id, NULL, "org removed with %lld repo(s)",
            (long long)repos);
        api_reply_json(call, 204, NULL);
    }
}

void api_orgs_delete(struct api_call *call)
{
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    int rc = rv_org_remove_cmd(&cmd, call->id);
    if (rc == RV_OK) {
        api_send(call, &cmd, on_removed, call);
    } else {
        rv_cmd_free(&cmd);
        api_reply_send_failed(call, rc);
    }
}

/* ---- POST /v1/orgs/{id}/refresh ---- */

static void on_refresh(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct api_call *call = priv;
    rv_refresh_outcome outcome = RV_REFRESH_QUEUED;
    int rc = reply ? rv_registry_refresh_parse(reply, &outcome) : RV_ERR_REDIS;
    if (rc == RV_ERR_REDIS) {
        api_reply_unavailable(call);
        return;
    }
    if (rc == RV_ERR_NOT_FOUND) {
        api_reply_error(call, 404, "not_found", "no org \"%s\"", call->id);
        return;
    }
    if (rc != RV_OK) {
        api_reply_rv_error(call, rc, "requestRefresh failed");
        return;
    }
    bool queued = outcome == RV_REFRESH_QUEUED;
    LOG(RV_LOG_DEBUG, call->id, NULL, "org refresh %s",
        queued ? "queued" : "coalesced");
    json_t *body = rv_org_refresh_json(call->id, outcome);
    if (!body)
        api_reply_rv_error(call, RV_ERR_NOMEM, "out of memory");
    else
        api_reply_json(call, 202, body);
}

void api_orgs_refresh(struct api_call *call)
{
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    int rc = rv_org_refresh_cmd(&cmd, call->id, RV_REASON_USER);
    if (rc == RV_OK) {
        api_send(call, &cmd, on_refresh, call);
    } else {
        rv_cmd_free(&cmd);
        api_reply_send_failed(call, rc);
    }
}

/* ---- GET /v1/orgs ---- */

/* org_read for api_gather_set. */
static void org_item(struct api_call *call, struct rv_rasync *ra,
                     const char *id, api_item_cb cb, void *priv)
{
    (void)call;
    org_read(ra, id, cb, priv);
}

void api_orgs_list(struct api_call *call)
{
    api_gather_set(call, RV_KEY_ORGS, org_item, "orgs", "cannot list the orgs");
}

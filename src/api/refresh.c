/*
 * POST /v1/repos/{id}/refresh?kind=all|branches|prs: asks for syncs and
 * answers 202 at once with what was queued and what coalesced with a job
 * already there, plus the freshness after the request.
 *
 * kind=all asks for both kinds; a repo without GitHub answers no_github for
 * PRs, which then simply is not listed. kind=prs on such a repo is a 400.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "common/errors.h"
#include "common/freshness.h"
#include "common/log.h"
#include "common/registry.h"

struct refresh {
    struct api_call *call;
    bool wanted[2];        /* by rv_kind */
    bool explicit_prs;     /* kind=prs: no_github is the caller's error */
    int rc[2];
    rv_refresh_outcome outcome[2];
    int pending;
};

/* One requestRefresh in flight. */
struct refresh_kind {
    struct refresh *r;
    rv_kind kind;
};

static void on_meta(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct refresh *r = priv;
    struct api_call *call = r->call;
    struct rv_repo repo;
    int rc = reply ? rv_repo_from_hash(reply, &repo) : RV_ERR_REDIS;
    if (rc == RV_ERR_REDIS) {
        api_reply_unavailable(call);
        return;
    }
    if (rc == RV_ERR_NOT_FOUND) {
        api_reply_error(call, 404, "not_found", "no repo \"%s\"", call->id);
        return;
    }
    if (rc != RV_OK) {
        api_reply_rv_error(call, rc, "the repo's meta hash is malformed");
        return;
    }
    json_t *queued = json_array(), *coalesced = json_array();
    for (int k = 0; k < 2; k++) {
        if (!r->wanted[k] || r->rc[k] != RV_OK)
            continue;
        json_array_append_new(r->outcome[k] == RV_REFRESH_QUEUED ? queued
                                                                 : coalesced,
                              json_string(rv_kind_name((rv_kind)k)));
    }
    json_t *body = json_pack("{s:s,s:o,s:o,s:o}", "repo", call->id, "queued",
                             queued, "coalesced", coalesced, "freshness",
                             rv_freshness_now(call->api->cfg, &repo));
    rv_repo_free(&repo);
    api_reply_json(call, 202, body);
}

/* Both kinds answered: report the first error, or read the freshness. */
static void refresh_done(struct refresh *r)
{
    struct api_call *call = r->call;
    for (int k = 0; k < 2; k++) {
        if (!r->wanted[k] || r->rc[k] == RV_OK)
            continue;
        int rc = r->rc[k];
        if (rc == RV_ERR_NO_GITHUB && !r->explicit_prs)
            continue;
        if (rc == RV_ERR_REDIS)
            api_reply_unavailable(call);
        else if (rc == RV_ERR_NOT_FOUND)
            api_reply_error(call, 404, "not_found", "no repo \"%s\"",
                            call->id);
        else if (rc == RV_ERR_NO_GITHUB)
            api_reply_rv_error(call, rc,
                               "repo \"%s\" has no github name, so it has no "
                               "pull requests to refresh",
                               call->id);
        else
            api_reply_rv_error(call, rc, "requestRefresh failed");
        return;
    }
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_registry_get_cmd(&cmd, call->id);
    api_send(call, &cmd, on_meta, r);
}

static void on_refresh(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct refresh_kind *rk = priv;
    struct refresh *r = rk->r;
    r->rc[rk->kind] = reply ? rv_registry_refresh_parse(
                                  reply, &r->outcome[rk->kind])
                            : RV_ERR_REDIS;
    if (r->rc[rk->kind] == RV_OK) {
        /* The status changed: a read after this answer must not be served
         * the cached head while the event is still on its way. */
        api_cache_announce(r->call->api->cache, r->call->id, -1);
        LOG(RV_LOG_DEBUG, r->call->id, NULL, "refresh of %s %s",
            rv_kind_name(rk->kind),
            r->outcome[rk->kind] == RV_REFRESH_QUEUED ? "queued"
                                                      : "coalesced");
    }
    free(rk);
    if (--r->pending == 0)
        refresh_done(r);
}

int api_refresh_kinds(const char *kind, bool wanted[2], bool *explicit_prs)
{
    wanted[RV_KIND_BRANCHES] = wanted[RV_KIND_PRS] = false;
    *explicit_prs = false;
    if (!kind || strcmp(kind, "all") == 0) {
        wanted[RV_KIND_BRANCHES] = wanted[RV_KIND_PRS] = true;
    } else if (strcmp(kind, "branches") == 0) {
        wanted[RV_KIND_BRANCHES] = true;
    } else if (strcmp(kind, "prs") == 0) {
        wanted[RV_KIND_PRS] = true;
        *explicit_prs = true;
    } else {
        return -1;
    }
    return 0;
}

void api_refresh_post(struct api_call *call)
{
    struct refresh *r = calloc(1, sizeof(*r));
    if (!r) {
        api_reply_rv_error(call, RV_ERR_NOMEM, "out of memory");
        return;
    }
    r->call = call;
    call->priv = r;
    call->priv_free = free;
    char *kind = api_query(call, "kind");
    int bad = api_refresh_kinds(kind, r->wanted, &r->explicit_prs);
    free(kind);
    if (bad) {
        api_reply_error(call, 400, "bad_request",
                        "kind must be all, branches or prs");
        return;
    }
    /* One extra count keeps r alive while both commands are sent. */
    r->pending = 1;
    int64_t now = rv_now_ms();
    for (int k = 0; k < 2; k++) {
        if (!r->wanted[k])
            continue;
        struct refresh_kind *rk = malloc(sizeof(*rk));
        struct rv_cmd cmd;
        rv_cmd_init(&cmd);
        int rc = rk ? rv_registry_refresh_cmd(&cmd, call->id, (rv_kind)k,
                                              RV_REASON_USER, now)
                    : RV_ERR_NOMEM;
        if (rc == RV_OK) {
            rk->r = r;
            rk->kind = (rv_kind)k;
            rc = rv_rasync_run(call->api->redis, &cmd, on_refresh, rk);
        } else {
            rv_cmd_free(&cmd);
        }
        if (rc != RV_OK) {
            free(rk);
            r->rc[k] = rc;
            continue;
        }
        r->pending++;
    }
    if (--r->pending == 0)
        refresh_done(r);
}

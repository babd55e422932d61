/* See reconcile.h. */
#include "worker/reconcile.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/cmd.h"
#include "common/errors.h"
#include "common/job.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/registry.h"
#include "common/scripts.h"
#include "common/util.h"

struct rv_reconcile {
    json_t *suspects; /* "kind:id" -> "status/job" seen on the last cycle */
    json_t *seen;     /* the same, gathered in this cycle */
    char cursor[32];  /* SSCAN cursor of rv:repos; "0" starts a cycle */
};

struct rv_reconcile *rv_reconcile_new(void)
{
    struct rv_reconcile *rc = calloc(1, sizeof(*rc));
    if (!rc)
        return NULL;
    rc->suspects = json_object();
    rc->seen = json_object();
    if (!rc->suspects || !rc->seen) {
        rv_reconcile_free(rc);
        return NULL;
    }
    rv_strlcpy(rc->cursor, "0", sizeof(rc->cursor));
    return rc;
}

void rv_reconcile_free(struct rv_reconcile *rc)
{
    if (!rc)
        return;
    json_decref(rc->suspects);
    json_decref(rc->seen);
    free(rc);
}

/* Adds the job ids found in list `key` to ids. */
static int collect_ids(struct rv_rsync *r, const char *key, json_t *ids)
{
    redisReply *list = rv_rsync_command(r, "LRANGE %s 0 -1", key);
    if (!list)
        return RV_ERR_REDIS;
    for (size_t i = 0; list->type == REDIS_REPLY_ARRAY && i < list->elements;
         i++) {
        struct rv_job job;
        const redisReply *p = list->element[i];
        if (p->type == REDIS_REPLY_STRING &&
            rv_job_decode(p->str, p->len, &job, NULL, 0) == RV_OK)
            json_object_set_new(ids, job.id, json_true());
    }
    freeReplyObject(list);
    return RV_OK;
}

/* Job ids that exist in the queue or in the processing list of a worker
 * that holds a lease (live or lapsed: the reaper handles lapsed ones). The
 * queue is read before the processing lists: a job moving from the queue
 * to a processing list (BLMOVE is atomic) is seen in one of them. */
static int snapshot(struct rv_rsync *r, json_t *ids)
{
    int rc = collect_ids(r, RV_KEY_QUEUE, ids);
    if (rc != RV_OK)
        return rc;
    redisReply *leases = rv_rsync_command(r, "ZRANGE %s 0 -1", RV_KEY_LEASES);
    if (!leases)
        return RV_ERR_REDIS;
    for (size_t i = 0;
         leases->type == REDIS_REPLY_ARRAY && i < leases->elements; i++) {
        const char *worker = leases->element[i]->str;
        char proc[RV_KEY_MAX];
        if (!worker)
            continue;
        rc = collect_ids(r, rv_key_processing(proc, worker), ids);
        if (rc != RV_OK)
            break;
    }
    freeReplyObject(leases);
    return rc;
}

static int repair(struct rv_rsync *r, const char *id, rv_kind kind,
                  const char *status, const char *job_id, bool *done)
{
    struct rv_job job;
    char *payload = NULL;
    size_t len = 0;
    char meta[RV_KEY_MAX];
    *done = false;
    int rc = rv_job_new(&job, id, kind, RV_REASON_FOLLOWUP, &payload, &len);
    if (rc != RV_OK)
        return rc;
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_script_reconcileSync(&cmd,
                            &(struct rv_reconcilesync_args){
                                .meta_key = rv_key_kind_meta(meta, kind, id),
                                .kind = rv_kind_name(kind),
                                .seen_status = status,
                                .seen_job_id = job_id,
                                .job_id = job.id,
                                .payload = payload,
                                .payload_len = len});
    free(payload);
    redisReply *reply = rv_rsync_run(r, &cmd);
    rv_cmd_free(&cmd);
    rc = rv_script_reply_code(reply);
    if (rc == RV_OK && reply->elements >= 2 &&
        reply->element[1]->integer == 1) {
        *done = true;
        LOG(RV_LOG_WARN, id, job.id,
            "%s sync was %s with nothing behind it; queued again",
            rv_kind_name(kind), status);
    }
    if (reply)
        freeReplyObject(reply);
    return rc;
}

/* One kind of one repo or org: an orphan seen twice in a row (same status,
 * same job) is repaired; one seen for the first time is remembered in
 * next. */
static void consider(struct rv_reconcile *st, struct rv_rsync *r,
                     json_t *present, json_t *next, const char *id,
                     rv_kind kind, const char *status, const char *job,
                     int *count)
{
    /* A queued job waits in rv:queue or a processing list; a running one
     * sits in its worker's processing list until the commit (a lapsed
     * lease there is the reaper's business). */
    bool orphan = (!strcmp(status, "queued") || !strcmp(status, "running")) &&
                  (!job[0] || !json_object_get(present, job));
    if (!orphan)
        return;
    char key[160], seen[80];
    snprintf(key, sizeof(key), "%s:%s", rv_kind_name(kind), id);
    snprintf(seen, sizeof(seen), "%s/%s", status, job);
    const char *before = json_string_value(json_object_get(st->suspects, key));
    if (before && !strcmp(before, seen)) {
        bool done = false;
        if (repair(r, id, kind, status, job, &done) == RV_OK && done)
            (*count)++;
    } else {
        json_object_set_new(next, key, json_string(seen));
    }
}

/* The org syncs, as consider does for repos. */
static int consider_orgs(struct rv_reconcile *st, struct rv_rsync *r,
                         json_t *present, json_t *next, int *count)
{
    redisReply *ids = rv_rsync_command(r, "SMEMBERS %s", RV_KEY_ORGS);
    if (!ids)
        return RV_ERR_REDIS;
    int rc = RV_OK;
    for (size_t i = 0; ids->type == REDIS_REPLY_ARRAY && i < ids->elements;
         i++) {
        const redisReply *id = ids->element[i];
        if (id->type != REDIS_REPLY_STRING || !rv_repo_id_valid(id->str))
            continue;
        char key[RV_KEY_MAX];
        redisReply *f = rv_rsync_command(r, "HMGET %s org_sync_status org_job",
                                         rv_key_org(key, id->str));
        if (!f) {
            rc = RV_ERR_REDIS;
            break;
        }
        if (f->type == REDIS_REPLY_ARRAY && f->elements == 2 &&
            f->element[0]->type == REDIS_REPLY_STRING &&
            f->element[1]->type == REDIS_REPLY_STRING &&
            f->element[1]->len < 64)
            consider(st, r, present, next, id->str, RV_KIND_ORG,
                     f->element[0]->str, f->element[1]->str, count);
        freeReplyObject(f);
    }
    freeReplyObject(ids);
    return rc;
}

/* The next chunk of rv:repos: ids (an SSCAN reply's array, owned by
 * *reply) and st->cursor moved on ("0" when the cycle is done). */
static int next_chunk(struct rv_reconcile *st, struct rv_rsync *r,
                      redisReply **reply, const redisReply **ids)
{
    *reply = rv_rsync_command(r, "SSCAN %s %s COUNT %d", RV_KEY_REPOS,
                              st->cursor, RV_RECONCILE_CHUNK);
    if (!*reply)
        return RV_ERR_REDIS;
    const redisReply *c =
        (*reply)->type == REDIS_REPLY_ARRAY && (*reply)->elements == 2
            ? (*reply)->element[0]
            : NULL;
    if (!c || c->type != REDIS_REPLY_STRING || c->len >= sizeof(st->cursor) ||
        (*reply)->element[1]->type != REDIS_REPLY_ARRAY) {
        rv_strlcpy(st->cursor, "0", sizeof(st->cursor));
        return RV_ERR_PROTOCOL;
    }
    memcpy(st->cursor, c->str, c->len + 1);
    *ids = (*reply)->element[1];
    return RV_OK;
}

int rv_reconcile_pass(struct rv_reconcile *st, struct rv_rsync *r,
                      int *repaired)
{
    int count = 0, rc;
    redisReply *chunk = NULL;
    const redisReply *ids = NULL;
    json_t *present = json_object();
    if (!present) {
        rc = RV_ERR_NOMEM;
        goto out;
    }
    rc = snapshot(r, present);
    if (rc == RV_OK)
        rc = next_chunk(st, r, &chunk, &ids);
    for (size_t i = 0; rc == RV_OK && i < ids->elements; i++) {
        const redisReply *id = ids->element[i];
        if (id->type != REDIS_REPLY_STRING || !rv_repo_id_valid(id->str))
            continue;
        struct rv_repo repo;
        int grc = rv_registry_get(r, id->str, &repo);
        if (grc == RV_ERR_REDIS) {
            rc = grc;
            break;
        }
        if (grc != RV_OK)
            continue;
        for (int k = 0; k < RV_REPO_KINDS; k++)
            consider(st, r, present, st->seen, repo.id, (rv_kind)k,
                     repo.sync[k].status, repo.sync[k].job, &count);
        rv_repo_free(&repo);
    }
    /* At the end of a cycle: the orgs (few), then this cycle's sightings
     * become the ones the next cycle compares with. */
    if (rc == RV_OK && strcmp(st->cursor, "0") == 0) {
        rc = consider_orgs(st, r, present, st->seen, &count);
        json_t *fresh = rc == RV_OK ? json_object() : NULL;
        if (fresh) {
            json_decref(st->suspects);
            st->suspects = st->seen;
            st->seen = fresh;
        } else if (rc == RV_OK) {
            rc = RV_ERR_NOMEM;
        }
    }
out:
    if (chunk)
        freeReplyObject(chunk);
    json_decref(present);
    if (repaired)
        *repaired = count;
    return rc;
}

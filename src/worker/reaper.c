/* See reaper.h. */
#include "worker/reaper.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cmd.h"
#include "common/errors.h"
#include "common/job.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/scripts.h"
#include "common/util.h"

/* Text for the dead-letter list and the kind's error. Malloc'd or NULL. */
static char *entry_json(const char *reason, const char *worker,
                        const struct rv_job *job)
{
    char at[32];
    rv_iso8601(rv_now_ms(), at, sizeof(at));
    json_t *j = job ? rv_job_to_json(job) : NULL;
    json_t *e = json_pack("{s:s,s:s,s:s,s:o*}", "reason", reason, "worker",
                          worker, "at", at, "job", j);
    char *text = e ? json_dumps(e, JSON_COMPACT) : NULL;
    json_decref(e);
    return text;
}

static char *error_json(const char *message)
{
    char at[32];
    rv_iso8601(rv_now_ms(), at, sizeof(at));
    json_t *e =
        json_pack("{s:s,s:s,s:s}", "code", rv_errname(RV_ERR_WORKER_LOST),
                  "message", message, "at", at);
    char *text = e ? json_dumps(e, JSON_COMPACT) : NULL;
    json_decref(e);
    return text;
}

/* Calls reapJob for one payload of `worker` (empty payload = clean-up).
 * bump_attempt is false when a worker hands back its own jobs. */
static int reap_payload(struct rv_rsync *r, const struct rv_config *cfg,
                        const char *worker, const char *payload, size_t len,
                        int64_t now, bool bump_attempt, const char **outcome)
{
    char proc[RV_KEY_MAX], meta[RV_KEY_MAX];
    struct rv_job job, next;
    char *requeue = NULL, *entry = NULL, *err = NULL;
    size_t requeue_len = 0;
    int rc = RV_OK;
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_key_processing(proc, worker);
    *outcome = "";

    if (len > 0) {
        char why[160];
        if (rv_job_decode(payload, len, &job, why, sizeof(why)) != RV_OK) {
            entry = entry_json(why, worker, NULL);
            if (!entry) {
                rc = RV_ERR_NOMEM;
                goto out;
            }
            rv_script_deadLetter(
                &cmd, &(struct rv_deadletter_args){.processing_key = proc,
                                                   .payload = payload,
                                                   .payload_len = len,
                                                   .entry = entry});
            redisReply *reply = rv_rsync_run(r, &cmd);
            rc = rv_script_reply_code(reply);
            if (reply)
                freeReplyObject(reply);
            *outcome = "deadlettered";
            goto out;
        }
        next = job;
        if (bump_attempt)
            next.attempt++;
        rc = rv_job_encode(&next, &requeue, &requeue_len);
        if (rc != RV_OK)
            goto out;
    }
    bool exhausted =
        len > 0 && bump_attempt && (int64_t)next.attempt >= cfg->max_attempts;
    char message[200];
    snprintf(message, sizeof(message),
             "the worker running this sync stopped responding %u time%s",
             len > 0 ? next.attempt : 0,
             len > 0 && next.attempt == 1 ? "" : "s");
    entry = entry_json("attempts exhausted", worker, len > 0 ? &job : NULL);
    err = error_json(message);
    if (!entry || !err) {
        rc = RV_ERR_NOMEM;
        goto out;
    }
    rv_script_reapJob(
        &cmd, &(struct rv_reapjob_args){
                  .processing_key = proc,
                  /* Without a payload the meta key is not touched; any
                     key will do. */
                  .meta_key = len > 0
                                  ? rv_key_kind_meta(meta, job.kind, job.repo)
                                  : rv_key_meta(meta, "-"),
                  .worker = worker,
                  .payload = payload,
                  .payload_len = len,
                  .now_ms = now,
                  .kind = len > 0 ? rv_kind_name(job.kind) : "",
                  .job_id = len > 0 ? job.id : "",
                  .requeue_payload = requeue ? requeue : "",
                  .requeue_payload_len = requeue_len,
                  .is_exhausted = exhausted,
                  .dead_entry = entry,
                  .error_json = err});
    redisReply *reply = rv_rsync_run(r, &cmd);
    rc = rv_script_reply_code(reply);
    if (rc == RV_OK && reply->elements >= 2 &&
        reply->element[1]->type == REDIS_REPLY_STRING) {
        static const char *const names[] = {"requeued", "deadlettered",
                                            "dropped", "cleaned"};
        for (size_t i = 0; i < 4; i++)
            if (strcmp(reply->element[1]->str, names[i]) == 0)
                *outcome = names[i];
    }
    if (reply)
        freeReplyObject(reply);
    if (len > 0 && **outcome)
        LOG(strcmp(*outcome, "deadlettered") == 0 ? RV_LOG_ERROR : RV_LOG_WARN,
            job.repo, job.id, "job of worker %s %s (attempt %u)", worker,
            *outcome, next.attempt);
out:
    rv_cmd_free(&cmd);
    free(requeue);
    free(entry);
    free(err);
    return rc;
}

/* Reaps every job in worker's processing list, then its lease. */
static int reap_worker(struct rv_rsync *r, const struct rv_config *cfg,
                       const char *worker, int64_t now, bool bump, int *count)
{
    char proc[RV_KEY_MAX];
    redisReply *list =
        rv_rsync_command(r, "LRANGE %s 0 99", rv_key_processing(proc, worker));
    if (!list)
        return RV_ERR_REDIS;
    int rc = RV_OK;
    const char *outcome;
    for (size_t i = 0; list->type == REDIS_REPLY_ARRAY && i < list->elements;
         i++) {
        const redisReply *p = list->element[i];
        if (p->type != REDIS_REPLY_STRING)
            continue;
        rc = reap_payload(r, cfg, worker, p->str, p->len, now, bump, &outcome);
        if (rc == RV_ERR_STALE_JOB) /* the worker came back */
            break;
        if (rc == RV_OK &&
            (!strcmp(outcome, "requeued") || !strcmp(outcome, "deadlettered")))
            (*count)++;
    }
    freeReplyObject(list);
    if (rc == RV_OK)
        rc = reap_payload(r, cfg, worker, "", 0, now, bump, &outcome);
    return rc == RV_ERR_REDIS ? rc : RV_OK;
}

int rv_reaper_run(struct rv_rsync *r, const struct rv_config *cfg,
                  const char *self_id, int64_t now_ms, int *reaped)
{
    int count = 0;
    redisReply *dead =
        rv_rsync_command(r, "ZRANGEBYSCORE %s -inf (%lld LIMIT 0 20",
                         RV_KEY_LEASES, (long long)now_ms);
    if (!dead)
        return RV_ERR_REDIS;
    int rc = RV_OK;
    for (size_t i = 0; dead->type == REDIS_REPLY_ARRAY && i < dead->elements;
         i++) {
        const redisReply *w = dead->element[i];
        if (w->type != REDIS_REPLY_STRING ||
            (self_id && !strcmp(w->str, self_id)))
            continue;
        LOG(RV_LOG_WARN, NULL, NULL, "lease of worker %s lapsed; reaping",
            w->str);
        rc = reap_worker(r, cfg, w->str, now_ms, true, &count);
        if (rc == RV_ERR_REDIS)
            break;
    }
    freeReplyObject(dead);
    if (reaped)
        *reaped = count;
    return rc;
}

int rv_reaper_hand_back(struct rv_rsync *r, const struct rv_config *cfg,
                        const char *self_id)
{
    redisReply *del = rv_rsync_command(r, "ZREM %s %s", RV_KEY_LEASES, self_id);
    if (!del)
        return RV_ERR_REDIS;
    freeReplyObject(del);
    /* A worker that leaves on purpose leaves the workers list now. */
    char key[RV_KEY_MAX];
    del = rv_rsync_command(r, "DEL %s", rv_key_worker(key, self_id));
    if (del)
        freeReplyObject(del);
    int count = 0;
    return reap_worker(r, cfg, self_id, rv_now_ms(), false, &count);
}

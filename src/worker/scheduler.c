/* See scheduler.h. */
#include "worker/scheduler.h"

#include <stdlib.h>
#include <string.h>

#include "common/cmd.h"
#include "common/errors.h"
#include "common/job.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/scripts.h"
#include "common/util.h"

/* Splits "kind:id" into its parts; 0, or -1 for a malformed member. */
static int parse_member(const char *member, rv_kind *kind, char *id,
                        size_t idlen)
{
    const char *colon = strchr(member, ':');
    if (!colon || (size_t)(colon - member) >= 16)
        return -1;
    char kname[16];
    memcpy(kname, member, (size_t)(colon - member));
    kname[colon - member] = '\0';
    if (rv_job_kind_parse(kname, kind) != 0 || !rv_repo_id_valid(colon + 1))
        return -1;
    return rv_strlcpy(id, colon + 1, idlen);
}

static int tick_one(struct rv_rsync *r, const struct rv_config *cfg,
                    const char *member, int64_t now, int *queued)
{
    rv_kind kind;
    char id[RV_REPO_ID_MAX + 1];
    if (parse_member(member, &kind, id, sizeof(id)) != 0) {
        LOG(RV_LOG_WARN, NULL, NULL, "dropping malformed schedule entry");
        redisReply *del =
            rv_rsync_command(r, "ZREM %s %s", RV_KEY_SCHEDULE, member);
        if (del)
            freeReplyObject(del);
        return RV_OK;
    }
    struct rv_job job;
    char *payload = NULL;
    size_t len = 0;
    int rc = rv_job_new(&job, id, kind, RV_REASON_SCHEDULE, &payload, &len);
    if (rc != RV_OK)
        return rc;
    char meta[RV_KEY_MAX];
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_script_scheduleTick(
        &cmd,
        &(struct rv_scheduletick_args){
            .meta_key = rv_key_kind_meta(meta, kind, id),
            .member = member,
            .kind = rv_kind_name(kind),
            .now_ms = now,
            .job_id = job.id,
            .payload = payload,
            .payload_len = len,
            /* While the job waits or runs, the entry is not due again for one
             * interval; the commit or fail script sets the real next time. */
            .hold_ms = cfg->sync_interval * 1000});
    free(payload);
    redisReply *reply = rv_rsync_run(r, &cmd);
    rv_cmd_free(&cmd);
    rc = rv_script_reply_code(reply);
    if (rc == RV_OK && reply->elements >= 2 &&
        reply->element[1]->integer == 1) {
        (*queued)++;
        LOG(RV_LOG_DEBUG, id, job.id, "scheduled %s sync queued",
            rv_kind_name(kind));
    }
    if (reply)
        freeReplyObject(reply);
    return rc;
}

int rv_scheduler_sample_queue(struct rv_rsync *r, int64_t now_ms)
{
    char stats[RV_KEY_MAX];
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_script_sampleQueue(
        &cmd, &(struct rv_samplequeue_args){
                  .stats_key = rv_key_stats(stats, (long long)(now_ms / 60000)),
                  .ttl_ms = RV_STATS_TTL_MS});
    redisReply *reply = rv_rsync_run(r, &cmd);
    rv_cmd_free(&cmd);
    int rc = rv_script_reply_code(reply);
    if (reply)
        freeReplyObject(reply);
    return rc;
}

int rv_scheduler_tick(struct rv_rsync *r, const struct rv_config *cfg,
                      int64_t now_ms, int *queued)
{
    int count = 0;
    redisReply *due =
        rv_rsync_command(r, "ZRANGEBYSCORE %s -inf %lld LIMIT 0 100",
                         RV_KEY_SCHEDULE, (long long)now_ms);
    if (!due)
        return RV_ERR_REDIS;
    int rc = RV_OK;
    if (due->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < due->elements && rc != RV_ERR_REDIS; i++) {
            if (due->element[i]->type == REDIS_REPLY_STRING)
                rc = tick_one(r, cfg, due->element[i]->str, now_ms, &count);
        }
    }
    freeReplyObject(due);
    if (queued)
        *queued = count;
    return rc == RV_ERR_REDIS ? rc : RV_OK;
}

/* See scheduler.h. */
#include "worker/scheduler.h"

#include <stdbool.h>
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

/* Builds the call that queues member's scheduled sync if it is still due,
 * or, for a malformed member, the ZREM that drops it. RV_OK or
 * RV_ERR_NOMEM; *kind is set for a well-formed member. */
static int tick_cmd(struct rv_cmd *cmd, const struct rv_config *cfg,
                    const char *member, int64_t now, rv_kind *kind,
                    bool *malformed)
{
    char id[RV_REPO_ID_MAX + 1];
    rv_cmd_init(cmd);
    *malformed = parse_member(member, kind, id, sizeof(id)) != 0;
    if (*malformed) {
        LOG(RV_LOG_WARN, NULL, NULL, "dropping malformed schedule entry");
        rv_cmd_add(cmd, "ZREM");
        rv_cmd_add(cmd, RV_KEY_SCHEDULE);
        rv_cmd_add(cmd, member);
        return cmd->failed ? RV_ERR_NOMEM : RV_OK;
    }
    struct rv_job job;
    char *payload = NULL;
    size_t len = 0;
    int rc = rv_job_new(&job, id, *kind, RV_REASON_SCHEDULE, &payload, &len);
    if (rc != RV_OK)
        return rc;
    char meta[RV_KEY_MAX];
    rv_script_scheduleTick(
        cmd,
        &(struct rv_scheduletick_args){
            .meta_key = rv_key_kind_meta(meta, *kind, id),
            .member = member,
            .kind = rv_kind_name(*kind),
            .now_ms = now,
            .job_id = job.id,
            .payload = payload,
            .payload_len = len,
            /* While the job waits or runs, the entry is not due again for one
             * interval; the commit or fail script sets the real next time. */
            .hold_ms = cfg->sync_interval * 1000});
    free(payload);
    return cmd->failed ? RV_ERR_NOMEM : RV_OK;
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
    if (queued)
        *queued = 0;
    redisReply *due = rv_rsync_command(
        r, "ZRANGEBYSCORE %s -inf %lld LIMIT 0 %d", RV_KEY_SCHEDULE,
        (long long)now_ms, RV_SCHEDULER_BATCH);
    if (!due)
        return RV_ERR_REDIS;
    size_t n = due->type == REDIS_REPLY_ARRAY ? due->elements : 0;
    struct rv_cmd cmds[RV_SCHEDULER_BATCH];
    redisReply *replies[RV_SCHEDULER_BATCH];
    rv_kind kinds[RV_SCHEDULER_BATCH];
    bool malformed[RV_SCHEDULER_BATCH];
    const char *members[RV_SCHEDULER_BATCH];
    size_t built = 0;
    int rc = RV_OK;
    for (size_t i = 0; i < n && built < RV_SCHEDULER_BATCH && rc == RV_OK;
         i++) {
        if (due->element[i]->type != REDIS_REPLY_STRING)
            continue;
        members[built] = due->element[i]->str;
        rc = tick_cmd(&cmds[built], cfg, members[built], now_ms,
                      &kinds[built], &malformed[built]);
        built++;
    }
    /* The batch goes in one round trip: a tick that finds 100 due costs
     * what Redis spends on them, not 100 waits for the network. */
    if (rc == RV_OK)
        rc = rv_rsync_pipeline(r, cmds, built, replies);
    for (size_t i = 0; rc == RV_OK && i < built; i++) {
        if (malformed[i])
            continue;
        int code = rv_script_reply_code(replies[i]);
        if (code == RV_OK && replies[i]->elements >= 2 &&
            replies[i]->element[1]->type == REDIS_REPLY_INTEGER &&
            replies[i]->element[1]->integer == 1) {
            count++;
            LOG(RV_LOG_DEBUG, NULL, NULL, "scheduled %s sync queued (%s)",
                rv_kind_name(kinds[i]), members[i]);
        }
    }
    for (size_t i = 0; i < built; i++) {
        if (rc == RV_OK && replies[i])
            freeReplyObject(replies[i]);
        rv_cmd_free(&cmds[i]);
    }
    freeReplyObject(due);
    if (queued)
        *queued = count;
    return rc;
}

/* See ghbudget.h. The writes are the scripts recordBudget and holdToken
 * (lua/), the reads single commands. */
#include "worker/ghbudget.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/cmd.h"
#include "common/errors.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/scripts.h"
#include "common/util.h"

static const char *identity_name(const char *identity)
{
    return identity && *identity ? identity : "none";
}

/* The integer value of a string reply, or def. */
static int64_t reply_i64(const redisReply *r, int64_t def)
{
    int64_t v;
    if (r && r->type == REDIS_REPLY_STRING &&
        rv_parse_i64(r->str, INT64_MIN, INT64_MAX, &v) == 0)
        return v;
    return def;
}

static int held(struct rv_sync_error *err, int64_t until, const char *why)
{
    char iso[32];
    rv_iso8601(until, iso, sizeof(iso));
    rv_sync_error_set(err, RV_ERR_RATE_LIMITED,
                      "GitHub rate limit of this token (%s); retrying "
                      "after %s",
                      why, iso);
    err->retry_at_ms = until;
    return RV_ERR_HTTP;
}

int rv_ghbudget_check(struct rv_rsync *r, const char *identity,
                      struct rv_sync_error *err)
{
    char hold[RV_KEY_MAX], budget[RV_KEY_MAX];
    int64_t now = rv_now_ms();
    redisReply *reply =
        rv_rsync_command(r, "GET %s", rv_key_gh_hold(hold, identity));
    int64_t until = reply_i64(reply, 0);
    if (reply)
        freeReplyObject(reply);
    if (until > now)
        return held(err, until, "held after a secondary rate limit");
    reply = rv_rsync_command(r, "HMGET %s remaining resetAt updatedAt",
                             rv_key_gh_budget(budget, identity));
    int64_t remaining = -1, reset = 0, updated = 0;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3) {
        remaining = reply_i64(reply->element[0], -1);
        reset = reply_i64(reply->element[1], 0);
        updated = reply_i64(reply->element[2], 0);
    }
    if (reply)
        freeReplyObject(reply);
    /* A reset far beyond GitHub's hour (a broken proxy, a bad clock) would
     * hold the token until then: nothing is sent while it is held, so no
     * answer would ever correct it. */
    if (updated > 0 && updated < INT64_MAX - RV_GHBUDGET_WINDOW_MAX_MS &&
        reset > updated + RV_GHBUDGET_WINDOW_MAX_MS)
        reset = updated + RV_GHBUDGET_WINDOW_MAX_MS;
    if (remaining == 0 && reset > now)
        return held(err, reset, "budget spent until its reset");
    return RV_OK;
}

static void run_script(struct rv_rsync *r, struct rv_cmd *cmd, int64_t *second)
{
    redisReply *reply = rv_rsync_run(r, cmd);
    rv_cmd_free(cmd);
    if (reply && rv_script_reply_code(reply) == RV_OK && second &&
        reply->elements >= 2 && reply->element[1]->type == REDIS_REPLY_INTEGER)
        *second = reply->element[1]->integer;
    if (reply)
        freeReplyObject(reply);
}

/* Slot holders of this process are told apart by a counter. */
static atomic_uint_fast64_t holder_seq;

int rv_ghbudget_before_request(void *ud, struct rv_sync_error *err)
{
    struct rv_ghbudget_ctx *c = ud;
    const char *id = identity_name(c->identity);
    char key[RV_KEY_MAX];
    c->holder[0] = '\0';
    if (c->max_concurrency <= 0)
        return RV_OK;
    char holder[sizeof(c->holder)];
    snprintf(holder, sizeof(holder), "%s:%llu", c->worker_id,
             (unsigned long long)atomic_fetch_add(&holder_seq, 1));
    int64_t deadline = rv_mono_ms() + c->wait_ms;
    int step = RV_GHBUDGET_WAIT_FIRST_MS;
    for (;;) {
        int64_t now = rv_now_ms(), taken = -1;
        struct rv_cmd cmd;
        rv_cmd_init(&cmd);
        rv_script_acquireSlot(&cmd, &(struct rv_acquireslot_args){
                                        .slots_key = rv_key_gh_slots(key, id),
                                        .identity = id,
                                        .holder = holder,
                                        .now_ms = now,
                                        .expires_at_ms = now + c->slot_ttl_ms,
                                        .max = c->max_concurrency});
        run_script(c->r, &cmd, &taken);
        if (taken == 1) {
            rv_strlcpy(c->holder, holder, sizeof(c->holder));
            return RV_OK;
        }
        if (taken < 0)
            return RV_OK; /* Redis is away: GitHub's own limits still hold */
        if (rv_mono_ms() + step > deadline)
            break;
        usleep((useconds_t)step * 1000);
        step = step * 2 > RV_GHBUDGET_WAIT_STEP_MAX_MS
                   ? RV_GHBUDGET_WAIT_STEP_MAX_MS
                   : step * 2;
    }
    LOGF(RV_LOG_INFO, c->repo_id, c->job_id,
         json_pack("{s:s, s:i}", "token", id, "maxConcurrency",
                   c->max_concurrency),
         "every GitHub request slot of this token is taken; retrying later");
    return held(err, rv_now_ms() + RV_GHBUDGET_SLOTS_RETRY_MS,
                "every concurrent request slot taken");
}

void rv_ghbudget_after_request(void *ud, const struct rv_github_budget *b)
{
    struct rv_ghbudget_ctx *c = ud;
    const char *id = identity_name(c->identity);
    char k1[RV_KEY_MAX], k2[RV_KEY_MAX];
    int64_t now = rv_now_ms();
    struct rv_cmd cmd;
    if (c->holder[0]) {
        redisReply *reply = rv_rsync_command(
            c->r, "ZREM %s %s", rv_key_gh_slots(k1, id), c->holder);
        if (reply)
            freeReplyObject(reply);
        c->holder[0] = '\0';
    }
    if (b->status == 0)
        return;
    if (b->remaining >= 0 || b->limit >= 0 || b->reset_ms > 0) {
        rv_cmd_init(&cmd);
        rv_script_recordBudget(&cmd, &(struct rv_recordbudget_args){
                                         .budget_key = rv_key_gh_budget(k1, id),
                                         .identity = id,
                                         .remaining = b->remaining,
                                         .limit = b->limit,
                                         .reset_at_ms = b->reset_ms,
                                         .now_ms = now,
                                         .ttl_ms = RV_GHBUDGET_KEEP_MS});
        run_script(c->r, &cmd, NULL);
    }
    if (!b->secondary)
        return;
    int64_t until = 0;
    rv_cmd_init(&cmd);
    rv_script_holdToken(&cmd, &(struct rv_holdtoken_args){
                                  .hold_key = rv_key_gh_hold(k1, id),
                                  .strikes_key = rv_key_gh_strikes(k2, id),
                                  .identity = id,
                                  .now_ms = now,
                                  .retry_at_ms = b->retry_at_ms,
                                  .base_ms = RV_GHBUDGET_HOLD_BASE_MS,
                                  .cap_ms = RV_GHBUDGET_HOLD_CAP_MS,
                                  .retry_max_ms = RV_GHBUDGET_WINDOW_MAX_MS});
    run_script(c->r, &cmd, &until);
    LOGF(RV_LOG_WARN, c->repo_id, c->job_id,
         json_pack("{s:s, s:I, s:I}", "token", id, "status",
                   (json_int_t)b->status, "holdMs",
                   (json_int_t)(until > now ? until - now : 0)),
         "GitHub secondary rate limit: this token's work is held");
}

/* See housekeeping.h. */
#include "worker/housekeeping.h"

#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/cmd.h"
#include "common/errors.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/util.h"
#include "worker/gitstream.h"
#include "worker/mirror.h"
#include "worker/reaper.h"
#include "worker/reconcile.h"
#include "worker/scheduler.h"

#define MIRROR_GC_EVERY_MS (10 * 60 * 1000)

/* Writes the worker's hash rv:worker:<id> again when it is missing (first
 * start, or lost with Redis's data). One transaction, so the hash never
 * exists without its expiry; the counters start at 0 only if absent. */
static void register_worker(struct rv_rsync *r, const struct rv_worker *w,
                            const char *key, int64_t lease_ms)
{
    redisReply *replies[6];
    replies[0] = rv_rsync_command(r, "MULTI");
    replies[1] =
        rv_rsync_command(r, "HSET %s host %s pid %ld startedAt %lld", key,
                         w->host, (long)getpid(), (long long)w->started_ms);
    replies[2] = rv_rsync_command(r, "HSETNX %s syncsDone 0", key);
    replies[3] = rv_rsync_command(r, "HSETNX %s syncsFailed 0", key);
    replies[4] =
        rv_rsync_command(r, "PEXPIRE %s %lld", key, (long long)lease_ms);
    /* After a dropped connection the transaction is gone with it, and an
     * EXEC on the new one only answers an error. */
    replies[5] = rv_rsync_command(r, "EXEC");
    for (size_t i = 0; i < 6; i++)
        if (replies[i])
            freeReplyObject(replies[i]);
}

int rv_housekeeping_renew_lease(struct rv_rsync *r, const struct rv_worker *w)
{
    int64_t lease_ms = w->cfg->lease_seconds * 1000;
    /* The worker's hash outlives its lease by one more lease, so a reader
     * that saw the lease live still finds the hash a moment later; a worker
     * killed with SIGKILL leaves GET /v1/workers when its lease lapses (the
     * API lists live leases only). The hash is written before the lease, so
     * a live lease always has one. */
    char key[RV_KEY_MAX];
    rv_key_worker(key, w->id);
    redisReply *reply =
        rv_rsync_command(r, "PEXPIRE %s %lld", key, (long long)(2 * lease_ms));
    if (!reply)
        return RV_ERR_REDIS;
    bool is_missing = reply->type == REDIS_REPLY_INTEGER && reply->integer == 0;
    freeReplyObject(reply);
    if (is_missing)
        register_worker(r, w, key, 2 * lease_ms);
    reply = rv_rsync_command(r, "ZADD %s %lld %s", RV_KEY_LEASES,
                             (long long)(rv_now_ms() + lease_ms), w->id);
    if (!reply)
        return RV_ERR_REDIS;
    freeReplyObject(reply);
    return RV_OK;
}

int rv_housekeeping_registered(void *arg, const char (*ids)[RV_REPO_ID_MAX + 1],
                               size_t n, bool *kept)
{
    struct rv_rsync *r = arg;
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_cmd_add(&cmd, "SMISMEMBER");
    rv_cmd_add(&cmd, RV_KEY_REPOS);
    for (size_t i = 0; i < n; i++)
        rv_cmd_add(&cmd, ids[i]);
    redisReply *reply = rv_rsync_run(r, &cmd);
    rv_cmd_free(&cmd);
    int rc = RV_OK;
    if (!reply)
        rc = RV_ERR_REDIS;
    else if (reply->type != REDIS_REPLY_ARRAY || reply->elements != n)
        rc = RV_ERR_PROTOCOL;
    for (size_t i = 0; rc == RV_OK && i < n; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_INTEGER)
            rc = RV_ERR_PROTOCOL;
        else
            kept[i] = e->integer != 0;
    }
    if (reply)
        freeReplyObject(reply);
    return rc;
}

/* One step of the mirror clean-up (mirror.h): the next chunk of mirrors. */
static bool mirror_gc_step(struct rv_rsync *r, const struct rv_worker *w,
                           struct rv_mirror_scan *scan)
{
    bool done = true;
    if (rv_mirror_gc_step(scan, w->cfg->data_dir, rv_housekeeping_registered, r,
                          &done) != RV_OK)
        LOG(RV_LOG_WARN, NULL, NULL, "mirror clean-up failed");
    return done;
}

/* Abandons the running fetch when its repo was removed (its commit would
 * be refused anyway, and a slow remote would hold the worker until the
 * fetch timeout). Called about once a second while a job runs; the lock
 * keeps the repo name and the abort about the same job. */
static void abandon_if_removed(struct rv_rsync *r, struct rv_worker *w)
{
    char key[RV_KEY_MAX];
    pthread_mutex_lock(&w->job_lock);
    if (w->job_repo[0]) {
        redisReply *reply =
            rv_rsync_command(r, "EXISTS %s", rv_key_meta(key, w->job_repo));
        if (reply && reply->type == REDIS_REPLY_INTEGER &&
            reply->integer == 0) {
            if (!rv_gitstream_aborted())
                LOG(RV_LOG_INFO, w->job_repo, NULL,
                    "the repo was removed; abandoning its sync");
            rv_gitstream_abort();
        }
        if (reply)
            freeReplyObject(reply);
    }
    pthread_mutex_unlock(&w->job_lock);
}

/* The grace period ran out with a job still running: give it back so
 * another worker takes it now rather than after the lease, then leave. */
static void hand_back_and_exit(struct rv_rsync *r, struct rv_worker *w)
{
    LOG(RV_LOG_WARN, NULL, NULL,
        "shutdown grace of %llds passed; handing the running job back",
        (long long)w->cfg->shutdown_grace);
    rv_reaper_hand_back(r, w->cfg, w->id);
    _exit(0);
}

static void *housekeeping_main(void *arg)
{
    struct rv_housekeeping *hk = arg;
    struct rv_worker *w = hk->worker;
    struct rv_rsync r;
    rv_rsync_open(&r, &hk->addr, 5000);
    int64_t lease_every = w->cfg->lease_seconds * 1000 / 3;
    int64_t reap_every = w->cfg->lease_seconds * 1000 / 2;
    int64_t next_lease = 0, next_tick = 0, next_reap = 0, next_removed = 0;
    int64_t next_gc = rv_mono_ms() + 30000;
    /* An orphan is repaired on its second sighting: passes half a lease
     * apart heal it within one lease period of the loss. */
    int64_t reconcile_every = w->cfg->lease_seconds * 1000 / 2;
    int64_t next_reconcile = rv_mono_ms() + reconcile_every;
    struct rv_reconcile *reconcile = rv_reconcile_new();
    struct rv_mirror_scan scan = {0};

    while (!atomic_load(&hk->quit)) {
        int64_t mono = rv_mono_ms();
        if (atomic_load(&w->stopping) && atomic_load(&w->job_running) &&
            mono - atomic_load(&w->stop_requested_ms) >
                w->cfg->shutdown_grace * 1000)
            hand_back_and_exit(&r, w);
        if (mono >= next_lease && rv_housekeeping_renew_lease(&r, w) == RV_OK)
            next_lease = mono + lease_every;
        rv_gitstream_watchdog();
        if (atomic_load(&w->job_running) && mono >= next_removed) {
            abandon_if_removed(&r, w);
            next_removed = mono + 1000;
        }
        if (!atomic_load(&w->stopping)) {
            int queued = 0, reaped = 0;
            if (mono >= next_tick) {
                rv_scheduler_tick(&r, w->cfg, rv_now_ms(), &queued);
                rv_scheduler_sample_queue(&r, rv_now_ms());
                next_tick = mono + 1000;
            }
            if (mono >= next_reap) {
                rv_reaper_run(&r, w->cfg, w->id, rv_now_ms(), &reaped);
                next_reap = mono + reap_every;
            }
            if (reconcile && mono >= next_reconcile) {
                int repaired = 0;
                rv_reconcile_pass(reconcile, &r, &repaired);
                next_reconcile = mono + reconcile_every;
            }
            /* A walk of the mirrors is a chunk a second; the next walk
             * starts MIRROR_GC_EVERY_MS after one ends. */
            if (mono >= next_gc)
                next_gc =
                    mono +
                    (mirror_gc_step(&r, w, &scan) ? MIRROR_GC_EVERY_MS : 1000);
        }
        usleep(200 * 1000);
    }
    rv_reconcile_free(reconcile);
    rv_mirror_scan_close(&scan);
    rv_rsync_close(&r);
    return NULL;
}

int rv_housekeeping_start(struct rv_housekeeping *hk, struct rv_worker *w,
                          const struct rv_redis_addr *addr)
{
    hk->worker = w;
    hk->addr = *addr;
    atomic_store(&hk->quit, 0);
    if (pthread_create(&hk->thread, NULL, housekeeping_main, hk) != 0)
        return RV_ERR_NOMEM;
    hk->started = true;
    return RV_OK;
}

void rv_housekeeping_stop(struct rv_housekeeping *hk)
{
    if (!hk->started)
        return;
    atomic_store(&hk->quit, 1);
    pthread_join(hk->thread, NULL);
    hk->started = false;
}

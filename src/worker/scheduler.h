/*
 * The scheduler tick: queues the periodic syncs that are due. Any number of
 * workers tick at once; scheduleTick-3.lua makes sure a due repo is queued
 * once.
 */
#ifndef REPOVIEW_WORKER_SCHEDULER_H
#define REPOVIEW_WORKER_SCHEDULER_H

#include <stdint.h>

#include "common/config.h"
#include "common/rconn.h"

/* The most (repo, kind) pairs one tick queues. */
#define RV_SCHEDULER_BATCH 100

/* Queues up to RV_SCHEDULER_BATCH due (repo, kind) pairs at the back of the
 * queue, in one round trip for all of them. *queued (may be NULL) counts
 * the jobs pushed. RV_OK, RV_ERR_REDIS, or RV_ERR_NOMEM (nothing sent). */
int rv_scheduler_tick(struct rv_rsync *r, const struct rv_config *cfg,
                      int64_t now_ms, int *queued);

/* Records the queue depth in the history of now_ms's minute (the largest
 * seen that minute, sampleQueue-2.lua). RV_OK, or the script's error. */
int rv_scheduler_sample_queue(struct rv_rsync *r, int64_t now_ms);

#endif

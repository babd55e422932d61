/*
 * The reaper: hands back the jobs of workers whose lease lapsed (killed,
 * hung, partitioned). Each job is queued again at the front with its
 * attempt count raised, or dead-lettered at the attempt limit
 * (REPOVIEW_MAX_ATTEMPTS); reapJob-5.lua bumps the kind's generation so the
 * lost worker can no longer commit. Every worker runs it; the script makes
 * concurrent reapers safe.
 */
#ifndef REPOVIEW_WORKER_REAPER_H
#define REPOVIEW_WORKER_REAPER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/rconn.h"

/* Reaps the workers whose lease ended before now_ms, except self_id (may
 * be NULL). *reaped (may be NULL) counts jobs requeued or dead-lettered.
 * RV_OK or RV_ERR_REDIS. */
int rv_reaper_run(struct rv_rsync *r, const struct rv_config *cfg,
                  const char *self_id, int64_t now_ms, int *reaped);

/* Hands back this worker's own jobs at shutdown (attempt unchanged): its
 * lease is removed first, so the jobs are requeued at once. */
int rv_reaper_hand_back(struct rv_rsync *r, const struct rv_config *cfg,
                        const char *self_id);

#endif

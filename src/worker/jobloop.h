/*
 * The job loop: take one job from rv:queue with a reliable move (BLMOVE into
 * this worker's processing list), claim it (claimJob: running + fencing
 * generation), run branch or PR sync, and commit (commitProjection) or
 * record the failure (failSync). A payload that does not decode goes to the
 * dead-letter list.
 */
#ifndef REPOVIEW_WORKER_JOBLOOP_H
#define REPOVIEW_WORKER_JOBLOOP_H

#include "common/rconn.h"
#include "worker/worker.h"

/* Waits up to wait_s seconds for a job and runs it to the end. Returns
 * RV_OK whether or not there was a job (failed syncs are recorded, not
 * returned), or RV_ERR_REDIS when Redis could not be reached (the caller
 * waits and retries; a job already moved stays in the processing list and
 * is reaped after the lease if this worker does not come back to it). */
int rv_jobloop_step(struct rv_worker *w, struct rv_rsync *r, int wait_s);

/* Runs one payload that is already in this worker's processing list (the
 * second half of rv_jobloop_step; exposed for tests). */
int rv_jobloop_run_payload(struct rv_worker *w, struct rv_rsync *r,
                           const char *payload, size_t len);

#endif

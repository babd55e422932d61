/*
 * The job loop: take one job from rv:queue with a reliable move (BLMOVE into
 * this worker's processing list), claim it (claimJob: running + fencing
 * generation), run branch or PR sync, and commit (commitProjection) or
 * record the failure (failSync). A payload that does not decode goes to the
 * dead-letter list.
 */
#ifndef REPOVIEW_WORKER_JOBLOOP_H
#define REPOVIEW_WORKER_JOBLOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rconn.h"
#include "worker/sync.h"
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

/* The steps every kind's job shares (the org sync, orgsync.c, too). */
struct rv_job;

/* claimJob of job (payload[0..len) as in this worker's processing list) on
 * its kind's hash; RV_OK with *gen, RV_ERR_NOT_FOUND, RV_ERR_STALE_JOB, or
 * RV_ERR_REDIS / RV_ERR_PROTOCOL. */
int rv_jobloop_claim(struct rv_worker *w, struct rv_rsync *r,
                     const struct rv_job *job, const char *payload, size_t len,
                     long long *gen);

/* failSync of a claimed job with err, backing off from interval_s (the
 * kind's interval, seconds): the script's code. */
int rv_jobloop_fail(struct rv_worker *w, struct rv_rsync *r,
                    const struct rv_job *job, const char *payload, size_t len,
                    long long gen, int64_t interval_s,
                    const struct rv_sync_error *err);

/* Whether err says GitHub (or its git host) refused the credential: an
 * installation token then is dropped and the sync tried once more. */
bool rv_jobloop_refused_credential(const struct rv_sync_error *err);

/* The budget and semaphore hooks (ghbudget.h) for job's GitHub requests
 * with tok: ctx is filled and hooks point at it. */
struct rv_gh_token;
struct rv_ghbudget_ctx;
struct rv_prsync_hooks;
void rv_jobloop_budget_hooks(struct rv_worker *w, struct rv_rsync *r,
                             const struct rv_gh_token *tok,
                             const struct rv_job *job,
                             struct rv_ghbudget_ctx *ctx,
                             struct rv_prsync_hooks *hooks);

#endif

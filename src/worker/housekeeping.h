/*
 * The housekeeping thread of a worker, with its own Redis connection. Once
 * a second it:
 *   - renews this worker's lease (every lease/3), so a long sync on the
 *     job-loop thread keeps its job;
 *   - runs the scheduler tick (due periodic syncs);
 *   - runs the reaper (every lease/2) for other workers' lapsed leases;
 *   - reconciles statuses with no job behind them (every lease period);
 *   - removes mirrors of removed repos: a walk of the mirrors, a chunk of
 *     500 a second (one SMISMEMBER each), every 10 minutes;
 *   - at shutdown, when the running job outlives the grace period, hands it
 *     back to the queue and ends the process.
 */
#ifndef REPOVIEW_WORKER_HOUSEKEEPING_H
#define REPOVIEW_WORKER_HOUSEKEEPING_H

#include <pthread.h>

#include "common/rconn.h"
#include "worker/worker.h"

struct rv_housekeeping {
    struct rv_worker *worker; /* borrowed */
    struct rv_redis_addr addr;
    pthread_t thread;
    atomic_int quit; /* set to end the thread */
    bool started;
};

/* Starts the thread. RV_OK or RV_ERR_NOMEM (thread creation failed). */
int rv_housekeeping_start(struct rv_housekeeping *hk, struct rv_worker *w,
                          const struct rv_redis_addr *addr);

/* Asks the thread to end and joins it. */
void rv_housekeeping_stop(struct rv_housekeeping *hk);

/* Renews the lease of worker w on r once (also used before the first
 * claim). */
int rv_housekeeping_renew_lease(struct rv_rsync *r, const struct rv_worker *w);

/* The mirror clean-up's keep (mirror.h) for a worker: which of ids are
 * members of rv:repos, with one SMISMEMBER on arg (a struct rv_rsync *). */
int rv_housekeeping_registered(void *arg, const char (*ids)[RV_REPO_ID_MAX + 1],
                               size_t n, bool *kept);

#endif

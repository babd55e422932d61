/*
 * Reconciliation: finds kinds whose status is "queued" or "running" with no
 * job or live lease behind them (Redis lost its last writes, or a worker
 * died between steps) and queues them again, so no repo stays stuck. An
 * orphan must be seen on two cycles over the repos (a pass runs every half
 * lease period and looks at RV_RECONCILE_CHUNK repos, so with up to that
 * many repos a loss heals within one lease period), which rules out jobs
 * that were merely moving between lists while one pass read them: the
 * statuses are read one after the other, but every move is atomic, so a
 * job is in some list when the next pass looks.
 */
#ifndef REPOVIEW_WORKER_RECONCILE_H
#define REPOVIEW_WORKER_RECONCILE_H

#include "common/rconn.h"

struct rv_reconcile; /* orphans seen on the previous pass */

struct rv_reconcile *rv_reconcile_new(void);
void rv_reconcile_free(struct rv_reconcile *rc);

/* Repos looked at per pass (an SSCAN COUNT hint): a pass costs the same
 * whatever the number of repos; a cycle over all of them takes
 * repos / RV_RECONCILE_CHUNK passes. */
#define RV_RECONCILE_CHUNK 500

/* One pass over the next chunk of repos (and, at the end of a cycle, the
 * orgs). An orphan is repaired on its second sighting, one cycle after
 * the first. *repaired (may be NULL) counts the kinds queued again.
 * RV_OK, RV_ERR_REDIS, RV_ERR_PROTOCOL or RV_ERR_NOMEM. */
int rv_reconcile_pass(struct rv_reconcile *rc, struct rv_rsync *r,
                      int *repaired);

#endif

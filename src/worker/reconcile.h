/*
 * Reconciliation: finds kinds whose status is "queued" or "running" with no
 * job or live lease behind them (Redis lost its last writes, or a worker
 * died between steps) and queues them again, so no repo stays stuck. An
 * orphan must be seen on two passes (run half a lease period apart, so a
 * loss heals within one lease period), which rules out jobs that were
 * merely moving between lists while one pass read them: the lists and the
 * statuses are read one after the other, but every move is atomic, so a
 * job is in some list when the next pass looks.
 */
#ifndef REPOVIEW_WORKER_RECONCILE_H
#define REPOVIEW_WORKER_RECONCILE_H

#include "common/rconn.h"

struct rv_reconcile; /* orphans seen on the previous pass */

struct rv_reconcile *rv_reconcile_new(void);
void rv_reconcile_free(struct rv_reconcile *rc);

/* One pass over every repo. *repaired (may be NULL) counts the kinds
 * queued again. RV_OK, RV_ERR_REDIS or RV_ERR_NOMEM. */
int rv_reconcile_pass(struct rv_reconcile *rc, struct rv_rsync *r,
                      int *repaired);

#endif

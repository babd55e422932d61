/*
 * GitHub budgets per token: what GitHub said about each token identity's
 * rate limit (installation id, "pat", or "none"; never the token itself)
 * kept in Redis for every worker and /metrics, and the hold a secondary
 * rate limit puts on that identity's work. One token's limits never hold
 * another's repos.
 *
 *   rv:gh:budget:<identity>   hash remaining, limit, resetAt, updatedAt
 *   rv:gh:hold:<identity>     hold end (ms), expiring with it (PX)
 *   rv:gh:strikes:<identity>  secondary limits in a row (backoff doubling)
 *   rv:gh:slots:<identity>    zset holder -> expiry: requests in flight
 *   rv:gh:tokens              set of identities seen (bounded by them)
 *
 * Every request goes through a slot of its token's semaphore (at most
 * max_concurrency at once across all workers); a slot lapses by itself
 * after slot_ttl_ms, so a worker killed holding one does not leak it.
 */
#ifndef REPOVIEW_WORKER_GHBUDGET_H
#define REPOVIEW_WORKER_GHBUDGET_H

#include "common/rconn.h"
#include "worker/prsync.h"
#include "worker/sync.h"

/* The first hold after a secondary limit without retry-after (GitHub: at
 * least a minute), doubled on each repeat up to the cap. */
#define RV_GHBUDGET_HOLD_BASE_MS 60000
#define RV_GHBUDGET_HOLD_CAP_MS (15 * 60 * 1000)

/* GitHub's rate limit windows are an hour long: a spent budget whose
 * reset lies further than this past the answer that told it is not
 * believed, and the token is tried again once this has passed since. */
#define RV_GHBUDGET_WINDOW_MAX_MS (61 * 60 * 1000)

/* A budget no answer has told of for this long (its installation removed,
 * its token retired) leaves Redis and /metrics. */
#define RV_GHBUDGET_KEEP_MS (24LL * 60 * 60 * 1000)

/* A request that finds every slot taken retries with a backoff growing
 * from the first to the last step until wait_ms has passed, then fails as
 * rate_limited, retried this much later. */
#define RV_GHBUDGET_WAIT_FIRST_MS 20
#define RV_GHBUDGET_WAIT_STEP_MAX_MS 500
#define RV_GHBUDGET_SLOTS_RETRY_MS 5000

/* What the PR sync hooks of one sync need; pointers borrowed for the
 * sync. */
struct rv_ghbudget_ctx {
    struct rv_rsync *r;
    const char *identity;         /* rv_gh_token.identity; "" = "none" */
    const char *worker_id;        /* makes slot holders unique */
    const char *repo_id, *job_id; /* log lines; may be NULL */
    int max_concurrency;          /* slots per token; <= 0: no semaphore */
    int64_t slot_ttl_ms;          /* a slot lapses unless released */
    int64_t wait_ms;              /* longest wait for a free slot */
    char holder[192];             /* the slot held by the hooks, or "" */
};

/* rv_prsync_hooks.before_request with a struct rv_ghbudget_ctx as ud:
 * takes a slot of the token's semaphore, waiting for one up to wait_ms.
 * RV_OK, or RV_ERR_HTTP with err rate_limited (retry in
 * RV_GHBUDGET_SLOTS_RETRY_MS). A Redis failure lets the request go. */
int rv_ghbudget_before_request(void *ud, struct rv_sync_error *err);

/* Whether identity may call GitHub now. RV_OK, or RV_ERR_HTTP with err
 * rate_limited and retry_at_ms when it is held (secondary limit) or its
 * budget is spent until its reset (at most RV_GHBUDGET_WINDOW_MAX_MS
 * after the budget was recorded). A Redis failure lets the call go. */
int rv_ghbudget_check(struct rv_rsync *r, const char *identity,
                      struct rv_sync_error *err);

/* rv_prsync_hooks.after_request with a struct rv_ghbudget_ctx as ud:
 * releases the slot, records the budget the answer told, and holds the
 * identity after a secondary rate limit (logged). */
void rv_ghbudget_after_request(void *ud, const struct rv_github_budget *b);

#endif

/*
 * The org sync: a job of kind org keeps an org's registered repos in step
 * with what GitHub lists for its owner (orglist.h). New repositories are
 * registered (ids <org>-<name>), renamed ones followed by GitHub's
 * repository id, removed, archived and transferred ones removed, in
 * batches of lua/commitOrgSync fenced like any commit. A listing that
 * fails, or is cut short, changes nothing.
 */
#ifndef REPOVIEW_WORKER_ORGSYNC_H
#define REPOVIEW_WORKER_ORGSYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/job.h"
#include "common/rconn.h"
#include "worker/orglist.h"
#include "worker/worker.h"

/* The longest an org sync may spend listing (every request has its own
 * deadline too; this bounds 200 pages of slow answers or slot waits). */
#define RV_ORGSYNC_DEADLINE_MS (10 * 60 * 1000)
/* Changes sent to Redis in one commitOrgSync call. */
#define RV_ORGSYNC_BATCH 200

/* Runs one org job (already in this worker's processing list) to the end:
 * claim, list, commit or fail. RV_OK, or RV_ERR_REDIS when Redis went
 * away (the job stays in the processing list). */
int rv_orgsync_run(struct rv_worker *w, struct rv_rsync *r,
                   const struct rv_job *job, const char *payload, size_t len);

/* The id an org registers repository name under: "<org>-<name>"
 * lower-cased, every character outside [a-z0-9._-] turned into '-', cut
 * to the longest id; with github_id > 0 that id gets "-<github_id>"
 * instead of its last characters. 0, or -1 when no valid id results. */
int rv_orgsync_repo_id(const char *org, const char *name, int64_t github_id,
                       char *buf, size_t size);

#endif

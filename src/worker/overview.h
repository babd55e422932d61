/*
 * Renders the overview fragment the API serves: the members of the overview
 * object that come from syncs (counts, branches with their PR joined,
 * pullRequests), without braces, so the API only adds repo, version and
 * freshness. Also computes what changed between two syncs for the
 * projection event.
 */
#ifndef REPOVIEW_WORKER_OVERVIEW_H
#define REPOVIEW_WORKER_OVERVIEW_H

#include <jansson.h>
#include <stddef.h>

#include "common/keys.h"

/* Most names listed per category in a projection event's "changed". */
#define RV_CHANGED_CAP 100

/* branches_doc is the stored branch document ({"defaultBranch",
 * "defaultSha","truncated","branches":[...]}) and prs_doc the stored PR
 * document ({"pullRequests":[...]}); either may be NULL (never synced).
 * Returns a malloc'd NUL-terminated fragment (caller frees), or NULL on
 * allocation failure. Internal fields (baseSha, headSha) are left out. */
char *rv_overview_render(const json_t *branches_doc, const json_t *prs_doc);

/* What changed in one kind between the previous and the new document
 * (either may be NULL): {"branches":{"added":[..],"removed":[..],
 * "updated":[..]}} for branches (by name), {"pullRequests":{...}} for PRs
 * (by number), each list capped at RV_CHANGED_CAP with "truncated":true
 * when cut. New reference, NULL on allocation failure. */
json_t *rv_overview_changed(rv_kind kind, const json_t *old_doc,
                            const json_t *new_doc);

#endif

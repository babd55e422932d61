/*
 * A repo's freshness with the configured stale-after, for every process
 * that answers with it (the API's replies and events). The rendering
 * itself is registry.h's rv_freshness_json; this file adds the
 * configuration: a repo's own interval, or REPOVIEW_STALE_AFTER.
 */
#ifndef REPOVIEW_COMMON_FRESHNESS_H
#define REPOVIEW_COMMON_FRESHNESS_H

#include <jansson.h>
#include <stdint.h>

#include "common/config.h"
#include "common/registry.h"

/* The configured stale-after of repo, in seconds. */
int64_t rv_freshness_stale_after(const struct rv_config *cfg,
                                 const struct rv_repo *repo);
/* The freshness of repo at now with the configured stale-after. New
 * reference or NULL. */
json_t *rv_freshness_now(const struct rv_config *cfg,
                         const struct rv_repo *repo);

#endif

/*
 * A repo's freshness with the configured stale-after (freshness.h).
 */
#include "common/freshness.h"

#include "common/util.h"

int64_t rv_freshness_stale_after(const struct rv_config *cfg,
                                 const struct rv_repo *repo)
{
    return rv_config_stale_after(cfg, repo->interval_s);
}

json_t *rv_freshness_now(const struct rv_config *cfg,
                         const struct rv_repo *repo)
{
    return rv_freshness_json(repo, rv_now_ms(),
                             rv_freshness_stale_after(cfg, repo));
}

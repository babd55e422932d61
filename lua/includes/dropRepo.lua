--- @include "rcall"
--- @include "eventsChannel"
--- @include "githubIndex"
--- @include "repoIds"

-- Deletes every key of repo id, its schedule entries and its id, and
-- publishes {"type":"removed","repo":id}. Jobs of it still queued are
-- dropped at claim; a running sync finds the meta hash gone.
local function drop_repo(metaKey, branchesKey, prsKey, overviewKey, reposKey,
                         scheduleKey, id)
  unindex_github(rcall('HGET', metaKey, 'github'), id)
  rcall('DEL', metaKey, branchesKey, prsKey, overviewKey)
  rcall('SREM', reposKey, id)
  unorder_repo(id)
  rcall('ZREM', scheduleKey, 'branches:' .. id, 'prs:' .. id)
  rcall('PUBLISH', RV_CHANNEL_EVENTS,
    cjson.encode({type = 'removed', repo = id}))
end

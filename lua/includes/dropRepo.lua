--- @include "rcall"
--- @include "eventsChannel"

-- Deletes every key of repo id, its schedule entries and its id, and
-- publishes {"type":"removed","repo":id}. Jobs of it still queued are
-- dropped at claim; a running sync finds the meta hash gone.
local function drop_repo(metaKey, branchesKey, prsKey, overviewKey, reposKey,
                         scheduleKey, id)
  rcall('DEL', metaKey, branchesKey, prsKey, overviewKey)
  rcall('SREM', reposKey, id)
  rcall('ZREM', scheduleKey, 'branches:' .. id, 'prs:' .. id)
  rcall('PUBLISH', RV_CHANNEL_EVENTS,
    cjson.encode({type = 'removed', repo = id}))
end

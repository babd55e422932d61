--[[
  Removes a repo: every key it has, its schedule entries, its id. Jobs of it
  still in the queue are dropped when a worker claims them; a sync still
  running finds the meta hash gone and writes nothing. Its mirror is removed
  later by a worker's housekeeping.

  KEYS[1] meta_key: rv:{id}:meta
  KEYS[2] branches_key: rv:{id}:branches
  KEYS[3] prs_key: rv:{id}:prs
  KEYS[4] overview_key: rv:{id}:overview
  KEYS[5] repos_key (const): rv:repos
  KEYS[6] schedule_key (const): rv:schedule

  ARGV[1] id: repo id

  Returns {RV_OK} or {RV_ERR_NOT_FOUND}.
  Publishes {"type":"removed","repo":id}.
]]
--- @include "codes"
--- @include "rcall"
--- @include "eventsChannel"
local metaKey, branchesKey = KEYS[1], KEYS[2]
local prsKey, overviewKey = KEYS[3], KEYS[4]
local reposKey, scheduleKey = KEYS[5], KEYS[6]
local id = ARGV[1]

if rcall('EXISTS', metaKey) == 0 then
  return {RV_ERR_NOT_FOUND}
end
rcall('DEL', metaKey, branchesKey, prsKey, overviewKey)
rcall('SREM', reposKey, id)
rcall('ZREM', scheduleKey, 'branches:' .. id, 'prs:' .. id)
rcall('PUBLISH', RV_CHANNEL_EVENTS, cjson.encode({type = 'removed', repo = id}))
return {RV_OK}

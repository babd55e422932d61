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
--- @include "dropRepo"
local metaKey = KEYS[1]

if rcall('EXISTS', metaKey) == 0 then
  return {RV_ERR_NOT_FOUND}
end
drop_repo(metaKey, KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], ARGV[1])
return {RV_OK}

--[[
  Registers a repo and queues its first sync (branches, and PRs when it has
  a GitHub name) at the front of the queue.

  KEYS[1] meta_key: rv:{id}:meta, the repo's hash (must not exist)
  KEYS[2] repos_key (const): rv:repos, set of ids
  KEYS[3] schedule_key (const): rv:schedule, zset "kind:id" -> next sync (ms)
  KEYS[4] queue_key (const): rv:queue, the job list

  ARGV[1]  id: repo id
  ARGV[2]  url: remote URL (already stripped of credentials)
  ARGV[3]  github: GitHub "owner/name" or ''
  ARGV[4]  default_branch: default branch or ''
  ARGV[5]  interval_s (int): interval in seconds ('0' = the workers' default)
  ARGV[6]  now_ms (int): now (ms)
  ARGV[7]  next_at_ms (int): next scheduled sync (ms)
  ARGV[8]  branch_job_id: branch job id
  ARGV[9]  branch_payload (bytes): branch job payload
  ARGV[10] pr_job_id: PR job id ('' without GitHub)
  ARGV[11] pr_payload (bytes): PR job payload ('' without GitHub)

  Returns {RV_OK} or {RV_ERR_EXISTS}.
  Publishes a status event per queued kind.
]]
--- @include "codes"
--- @include "rcall"
--- @include "newRepo"
local metaKey, reposKey = KEYS[1], KEYS[2]
local scheduleKey, queueKey = KEYS[3], KEYS[4]

if rcall('EXISTS', metaKey) == 1 then
  return {RV_ERR_EXISTS}
end
new_repo(metaKey, reposKey, scheduleKey, queueKey,
  {id = ARGV[1], url = ARGV[2], github = ARGV[3], default_branch = ARGV[4],
   interval = ARGV[5], org = '', github_id = ''},
  ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], true)
return {RV_OK}

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
--- @include "queueJob"
--- @include "publishStatus"
local metaKey, reposKey = KEYS[1], KEYS[2]
local scheduleKey, queueKey = KEYS[3], KEYS[4]
local id, url, github, defaultBranch = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local interval, now, nextAt = ARGV[5], ARGV[6], ARGV[7]
local branchJob, branchPayload = ARGV[8], ARGV[9]
local prJob, prPayload = ARGV[10], ARGV[11]

if rcall('EXISTS', metaKey) == 1 then
  return {RV_ERR_EXISTS}
end

local hasGithub = github ~= ''

rcall('HSET', metaKey, 'id', id, 'url', url, 'github', github,
  'default_branch', defaultBranch, 'interval', interval, 'created_at', now,
  'version', '0',
  'branch_sync_status', 'idle', 'branch_sync_at', '', 'branch_sync_error', '',
  'branch_gen', '0', 'branch_job', '', 'branch_job_end', '',
  'branch_pending', '0',
  'branch_fails', '0', 'branch_worker', '', 'branch_started_at', '',
  'branch_rev', '0',
  'pr_sync_status', 'idle', 'pr_sync_at', '', 'pr_sync_error', '',
  'pr_gen', '0', 'pr_job', '', 'pr_job_end', '', 'pr_pending', '0',
  'pr_fails', '0', 'pr_worker', '', 'pr_started_at', '', 'pr_rev', '0')
rcall('SADD', reposKey, id)

queue_job(metaKey, queueKey, 'branches', branchJob, branchPayload, true)
rcall('ZADD', scheduleKey, nextAt, 'branches:' .. id)
publish_status(metaKey, id, 'branches')
if hasGithub then
  queue_job(metaKey, queueKey, 'prs', prJob, prPayload, true)
  rcall('ZADD', scheduleKey, nextAt, 'prs:' .. id)
  publish_status(metaKey, id, 'prs')
end
return {RV_OK}

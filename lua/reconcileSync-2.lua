--[[
  Repairs a kind whose status has nothing behind it: "queued" with its job
  in no list, or "running" on a worker with no live lease. That happens when
  Redis loses its last writes (AOF everysec, a failover) or a worker dies
  between steps the reaper cannot see. The worker calls this only after it
  saw the same orphan on two passes half a lease period apart; the script checks
  that nothing moved meanwhile, queues a fresh job at the front and bumps
  the generation so a worker still holding the old job cannot commit.

  KEYS[1] meta_key: rv:{id}:meta (rv:org:{id} for kind org)
  KEYS[2] queue_key (const): rv:queue

  ARGV[1] kind: 'branches', 'prs' or 'org'
  ARGV[2] seen_status: status seen ('queued' or 'running')
  ARGV[3] seen_job_id: job id seen
  ARGV[4] job_id: new job id
  ARGV[5] payload (bytes): new job payload

  Returns {RV_OK, 1} when repaired, {RV_OK, 0} when the state moved on, or
  {RV_ERR_NOT_FOUND}.
  Publishes a status event when repaired.
]]
--- @include "codes"
--- @include "rcall"
--- @include "field"
--- @include "queueJob"
--- @include "publishStatus"
local metaKey, queueKey = KEYS[1], KEYS[2]
local kind, seenStatus, seenJob = ARGV[1], ARGV[2], ARGV[3]
local newJob, newPayload = ARGV[4], ARGV[5]

if rcall('EXISTS', metaKey) == 0 then
  return {RV_ERR_NOT_FOUND}
end
local current = rcall('HMGET', metaKey, field(kind, 'sync_status'),
  field(kind, 'job'))
if current[1] ~= seenStatus or (current[2] or '') ~= seenJob then
  return {RV_OK, 0}
end
rcall('HINCRBY', metaKey, field(kind, 'gen'), 1)
queue_job(metaKey, queueKey, kind, newJob, newPayload, true)
publish_status(metaKey, rcall('HGET', metaKey, 'id'), kind)
return {RV_OK, 1}

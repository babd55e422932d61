--[[
  Queues the scheduled sync of one repo and kind if it is due. Safe when
  several schedulers tick at once: the first pushes the due time forward by
  hold_ms, so the others find it not due. A kind that is queued or running
  is not queued again. The commit or fail script later sets the real next
  due time.

  KEYS[1] schedule_key (const): rv:schedule
  KEYS[2] meta_key: rv:{id}:meta (rv:org:{id} for kind org)
  KEYS[3] queue_key (const): rv:queue

  ARGV[1] member: "kind:id"
  ARGV[2] kind: 'branches', 'prs' or 'org'
  ARGV[3] now_ms (int): now (ms)
  ARGV[4] job_id: job id
  ARGV[5] payload (bytes): job payload (reason "schedule")
  ARGV[6] hold_ms (int): how far the due time moves while the job waits

  Returns {RV_OK, 1} when queued, {RV_OK, 0} otherwise.
  Publishes a status event when queued.
]]
--- @include "codes"
--- @include "rcall"
--- @include "field"
--- @include "queueJob"
--- @include "publishStatus"
local scheduleKey, metaKey, queueKey = KEYS[1], KEYS[2], KEYS[3]
local member, kind, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local jobId, payload, hold = ARGV[4], ARGV[5], tonumber(ARGV[6])

local due = rcall('ZSCORE', scheduleKey, member)
if not due or tonumber(due) > now then
  return {RV_OK, 0}
end
if rcall('EXISTS', metaKey) == 0 or
   (kind == 'prs' and rcall('HGET', metaKey, 'github') == '') then
  rcall('ZREM', scheduleKey, member)
  return {RV_OK, 0}
end
rcall('ZADD', scheduleKey, string.format('%d', now + hold), member)
local status = rcall('HGET', metaKey, field(kind, 'sync_status'))
if status == 'queued' or status == 'running' then
  return {RV_OK, 0}
end
queue_job(metaKey, queueKey, kind, jobId, payload, false)
publish_status(metaKey, rcall('HGET', metaKey, 'id'), kind)
return {RV_OK, 1}

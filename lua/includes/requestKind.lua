--- @include "rcall"
--- @include "field"
--- @include "queueJob"
--- @include "publishStatus"

-- Asks for a sync of one kind, coalescing with what is there (the table in
-- requestRefresh's header): returns 'queued' or 'coalesced'. front: the
-- job goes to the front of the queue, and overtakes one queued at the back.
local function request_kind(metaKey, queueKey, kind, jobId, payload, front)
  local current = rcall('HMGET', metaKey, field(kind, 'sync_status'),
    field(kind, 'pending'), field(kind, 'job_end'))
  local status, pending, jobEnd = current[1], current[2], current[3]
  if status == 'queued' and not (front and jobEnd ~= 'front') then
    return 'coalesced'
  end
  if status == 'running' then
    if pending == '1' then
      return 'coalesced'
    end
    rcall('HSET', metaKey, field(kind, 'pending'), '1')
    return 'queued'
  end
  -- idle, error, or queued at the back: this job takes over the kind.
  queue_job(metaKey, queueKey, kind, jobId, payload, front)
  publish_status(metaKey, rcall('HGET', metaKey, 'id'), kind)
  return 'queued'
end

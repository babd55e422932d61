--- @include "rcall"
--- @include "field"

-- Pushes a job payload: user-facing work at the front (the consuming end,
-- right), scheduled work at the back (left).
local function enqueue(queueKey, payload, front)
  if front then
    rcall('RPUSH', queueKey, payload)
  else
    rcall('LPUSH', queueKey, payload)
  end
end

-- Pushes the job of a kind and marks the kind queued with it. <p>job names
-- the one job that may claim the kind; <p>job_end remembers which end of
-- the queue it went to, so a user refresh can overtake a scheduled job
-- (requestRefresh). Clears the traces of a previous run.
local function queue_job(metaKey, queueKey, kind, jobId, payload, front)
  enqueue(queueKey, payload, front)
  local side = 'back'
  if front then
    side = 'front'
  end
  rcall('HSET', metaKey, field(kind, 'sync_status'), 'queued',
    field(kind, 'job'), jobId, field(kind, 'job_end'), side,
    field(kind, 'worker'), '', field(kind, 'started_at'), '')
end

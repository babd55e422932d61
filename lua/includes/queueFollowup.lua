--- @include "rcall"
--- @include "field"
--- @include "queueJob"

-- Ends a run: if a refresh was asked for while the sync ran, queues the one
-- follow-up at the front and returns true (the kind is then queued);
-- otherwise forgets the job and returns false (the caller has already set
-- the final status). The pending flag is cleared either way, so a request
-- is answered by exactly one follow-up.
local function queue_followup(metaKey, queueKey, kind, jobId, payload)
  local wanted = rcall('HGET', metaKey, field(kind, 'pending')) == '1'
  rcall('HSET', metaKey, field(kind, 'pending'), '0', field(kind, 'job'), '',
    field(kind, 'job_end'), '')
  if wanted and payload ~= '' and jobId ~= '' then
    queue_job(metaKey, queueKey, kind, jobId, payload, true)
    return true
  end
  return false
end

--[[
  Hands back one job of a worker whose lease lapsed (it died, or hung).
  The kind's generation is bumped so the lost worker can no longer commit.
  Below the attempt limit the job is queued again at the front with its
  attempt count raised (a follow-up flagged meanwhile is cleared: the rerun
  answers it); at the limit it goes to the dead-letter list and the
  kind shows an error. With an empty payload it only forgets the worker's
  lease once its processing list is empty.

  KEYS[1] leases_key (const): rv:leases
  KEYS[2] processing_key: rv:processing:<dead worker>
  KEYS[3] queue_key (const): rv:queue
  KEYS[4] meta_key: rv:{id}:meta (any key when the payload is '')
  KEYS[5] deadletter_key (const): rv:deadletter

  ARGV[1] worker: worker id
  ARGV[2] payload (bytes): job payload as in the processing list
          ('' = cleanup only)
  ARGV[3] now_ms (int): now (ms)
  ARGV[4] kind: 'branches', 'prs' or 'org' ('' for cleanup)
  ARGV[5] job_id: job id ('' for cleanup)
  ARGV[6] requeue_payload (bytes): requeue payload (attempt + 1)
  ARGV[7] is_exhausted (flag): '1' when the attempt limit is reached
  ARGV[8] dead_entry: dead-letter entry (JSON)
  ARGV[9] error_json: error JSON for the kind when dead-lettered

  Returns {RV_OK, 'requeued'|'deadlettered'|'dropped'|'cleaned'} or
  {RV_ERR_STALE_JOB} when the worker renewed its lease meanwhile.
  Publishes a status event when a kind's status changes.
]]
--- @include "codes"
--- @include "rcall"
--- @include "field"
--- @include "queueJob"
--- @include "publishStatus"
local leasesKey, processingKey, queueKey, metaKey, deadKey =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local worker, payload, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local kind, jobId, requeuePayload = ARGV[4], ARGV[5], ARGV[6]
local exhausted, deadEntry, errorJson = ARGV[7] == '1', ARGV[8], ARGV[9]

local expiry = rcall('ZSCORE', leasesKey, worker)
if expiry and tonumber(expiry) > now then
  return {RV_ERR_STALE_JOB}
end

if payload == '' then
  if rcall('LLEN', processingKey) == 0 then
    rcall('ZREM', leasesKey, worker)
  end
  return {RV_OK, 'cleaned'}
end

if rcall('LREM', processingKey, 1, payload) == 0 then
  return {RV_OK, 'dropped'}
end
if rcall('LLEN', processingKey) == 0 then
  rcall('ZREM', leasesKey, worker)
end
if rcall('EXISTS', metaKey) == 0 then
  return {RV_OK, 'dropped'}
end
local current = rcall('HMGET', metaKey, field(kind, 'job'),
  field(kind, 'sync_status'))
if current[1] ~= jobId or
   (current[2] ~= 'running' and current[2] ~= 'queued') then
  return {RV_OK, 'dropped'}
end

rcall('HINCRBY', metaKey, field(kind, 'gen'), 1)
local id = rcall('HGET', metaKey, 'id')
if exhausted then
  rcall('LPUSH', deadKey, deadEntry)
  rcall('LTRIM', deadKey, 0, 999)
  rcall('HSET', metaKey, field(kind, 'sync_status'), 'error',
    field(kind, 'sync_error'), errorJson, field(kind, 'worker'), '',
    field(kind, 'started_at'), '', field(kind, 'job'), '',
    field(kind, 'job_end'), '', field(kind, 'pending'), '0')
  publish_status(metaKey, id, kind)
  return {RV_OK, 'deadlettered'}
end
-- The requeued run starts after any refresh asked for while the lost one
-- ran, so it answers that request: no follow-up on top of it.
rcall('HSET', metaKey, field(kind, 'pending'), '0')
queue_job(metaKey, queueKey, kind, jobId, requeuePayload, true)
publish_status(metaKey, id, kind)
return {RV_OK, 'requeued'}

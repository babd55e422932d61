--[[
  Takes ownership of a job the worker has already moved from rv:queue into
  its own processing list with BLMOVE (the reliable move: the job is never
  only in the worker's memory). Marks the kind running and hands out a new
  generation, the fencing token every later commit or fail must present.
  A job that no longer matches the repo (repo removed, or a newer job owns
  the kind) is dropped from the processing list, and so is a job that is no
  longer in that list (the reaper took it back while this worker hung).
  A worker may claim again a job it already runs (the reply to its first
  claim was lost with the connection): it gets a new generation.

  KEYS[1] meta_key: rv:{id}:meta (rv:org:{id} for kind org)
  KEYS[2] processing_key: rv:processing:<worker>
  KEYS[3] leases_key (const): rv:leases

  ARGV[1] kind: 'branches', 'prs' or 'org'
  ARGV[2] job_id: job id
  ARGV[3] payload (bytes): job payload (as in the processing list)
  ARGV[4] worker: worker id
  ARGV[5] now_ms (int): now (ms)
  ARGV[6] lease_ms (int): lease (ms)

  Returns {RV_OK, generation}, {RV_ERR_NOT_FOUND} or {RV_ERR_STALE_JOB}.
  Also renews the worker's lease (score now + lease).
  Publishes a status event (running).
]]
--- @include "codes"
--- @include "rcall"
--- @include "field"
--- @include "publishStatus"
local metaKey, processingKey, leasesKey = KEYS[1], KEYS[2], KEYS[3]
local kind, jobId, payload, worker = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, lease = tonumber(ARGV[5]), tonumber(ARGV[6])

rcall('ZADD', leasesKey, string.format('%d', now + lease), worker)
if not rcall('LPOS', processingKey, payload) then
  return {RV_ERR_STALE_JOB}
end
if rcall('EXISTS', metaKey) == 0 then
  rcall('LREM', processingKey, 1, payload)
  return {RV_ERR_NOT_FOUND}
end
local current = rcall('HMGET', metaKey, field(kind, 'job'),
  field(kind, 'sync_status'), field(kind, 'worker'))
local isQueued = current[2] == 'queued'
local isOwnRun = current[2] == 'running' and current[3] == worker
if current[1] ~= jobId or not (isQueued or isOwnRun) then
  rcall('LREM', processingKey, 1, payload)
  return {RV_ERR_STALE_JOB}
end

local gen = rcall('HINCRBY', metaKey, field(kind, 'gen'), 1)
rcall('HSET', metaKey, field(kind, 'sync_status'), 'running',
  field(kind, 'worker'), worker, field(kind, 'started_at'), ARGV[5])
publish_status(metaKey, rcall('HGET', metaKey, 'id'), kind)
return {RV_OK, gen}

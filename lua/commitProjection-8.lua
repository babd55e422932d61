--[[
  Writes the result of a successful sync in one step, so a reader never sees
  half of it. Refused when a newer claim owns the kind (fencing: generation
  and job id must both match the kind's), and, when
  the worker rendered the overview with the other kind's data, when that data
  moved since (the worker reads it again and retries).

  KEYS[1] meta_key: rv:{id}:meta
  KEYS[2] data_key: rv:{id}:branches or rv:{id}:prs (the kind's data)
  KEYS[3] overview_key: rv:{id}:overview
  KEYS[4] processing_key: rv:processing:<worker>
  KEYS[5] queue_key (const): rv:queue
  KEYS[6] schedule_key (const): rv:schedule
  KEYS[7] stats_key: rv:stats:<minute of now_ms> (history, recordStats)
  KEYS[8] worker_key: rv:worker:<worker> (syncsDone, if it exists)

  ARGV[1]  kind: 'branches' or 'prs'
  ARGV[2]  job_id: job id
  ARGV[3]  gen (int): generation from claimJob
  ARGV[4]  payload (bytes): job payload (removed from the processing list)
  ARGV[5]  now_ms (int): now (ms)
  ARGV[6]  data: the kind's data (JSON)
  ARGV[7]  overview: the rendered overview fragment (JSON members)
  ARGV[8]  other_rev: the other kind's rev the overview was rendered with
           ('' = any)
  ARGV[9]  changed: what changed (JSON object) for the projection event
  ARGV[10] next_at_ms (int): next scheduled sync (ms)
  ARGV[11] followup_id: follow-up job id
  ARGV[12] followup_payload (bytes): follow-up payload

  Counts the sync as done in the minute's history, with its duration
  from the claim (started_at) to now_ms.

  Returns {RV_OK, version, changed (0|1)}, {RV_ERR_NOT_FOUND},
  {RV_ERR_FENCED} or {RV_ERR_RETRY} (the job stays in the processing list).
  Publishes a projection event when the overview changed, then a status
  event (idle, or queued when a follow-up was asked for).
]]
--- @include "codes"
--- @include "rcall"
--- @include "field"
--- @include "ownsKind"
--- @include "queueFollowup"
--- @include "publishProjection"
--- @include "publishStatus"
--- @include "recordStats"
local metaKey, dataKey, overviewKey = KEYS[1], KEYS[2], KEYS[3]
local processingKey, queueKey, scheduleKey = KEYS[4], KEYS[5], KEYS[6]
local statsKey, workerKey = KEYS[7], KEYS[8]
local kind, jobId, gen = ARGV[1], ARGV[2], ARGV[3]
local payload, now = ARGV[4], ARGV[5]
local data, overview, otherRev, changed = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local nextAt, followupId, followupPayload = ARGV[10], ARGV[11], ARGV[12]

if rcall('EXISTS', metaKey) == 0 then
  rcall('LREM', processingKey, 1, payload)
  return {RV_ERR_NOT_FOUND}
end
if not owns_kind(metaKey, kind, jobId, gen) then
  rcall('LREM', processingKey, 1, payload)
  return {RV_ERR_FENCED}
end
local other = 'branches'
if kind == 'branches' then
  other = 'prs'
end
if otherRev ~= '' and
   rcall('HGET', metaKey, field(other, 'rev')) ~= otherRev then
  return {RV_ERR_RETRY}
end

rcall('LREM', processingKey, 1, payload)
record_stats(statsKey, workerKey, kind, true, tonumber(now),
  rcall('HGET', metaKey, field(kind, 'started_at')))
rcall('SET', dataKey, data)
rcall('HINCRBY', metaKey, field(kind, 'rev'), 1)
local isChanged = rcall('GET', overviewKey) ~= overview
if isChanged then
  rcall('SET', overviewKey, overview)
  rcall('HINCRBY', metaKey, 'version', 1)
end
rcall('HSET', metaKey, field(kind, 'sync_status'), 'idle',
  field(kind, 'sync_at'), now, field(kind, 'sync_error'), '',
  field(kind, 'fails'), '0', field(kind, 'worker'), '',
  field(kind, 'started_at'), '')
rcall('ZADD', scheduleKey, nextAt, kind .. ':' .. rcall('HGET', metaKey, 'id'))
queue_followup(metaKey, queueKey, kind, followupId, followupPayload)

local id = rcall('HGET', metaKey, 'id')
if isChanged then
  publish_projection(metaKey, id, kind, changed)
end
publish_status(metaKey, id, kind)
local version = tonumber(rcall('HGET', metaKey, 'version'))
if isChanged then
  return {RV_OK, version, 1}
end
return {RV_OK, version, 0}

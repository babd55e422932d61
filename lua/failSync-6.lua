--[[
  Records a failed sync. The last good data stays untouched; the error is
  stored and the next scheduled try backs off exponentially (capped), or
  waits until retry_at (a rate limit). A refresh asked for while the sync
  ran is queued at once, bypassing the backoff.

  KEYS[1] meta_key: rv:{id}:meta (rv:org:{id} for kind org)
  KEYS[2] processing_key: rv:processing:<worker>
  KEYS[3] queue_key (const): rv:queue
  KEYS[4] schedule_key (const): rv:schedule
  KEYS[5] stats_key: rv:stats:<minute of now_ms> (history, recordStats)
  KEYS[6] worker_key: rv:worker:<worker> (syncsFailed, if it exists)

  ARGV[1]  kind: 'branches', 'prs' or 'org'
  ARGV[2]  job_id: job id
  ARGV[3]  gen (int): generation from claimJob
  ARGV[4]  payload (bytes): job payload (removed from the processing list)
  ARGV[5]  now_ms (int): now (ms)
  ARGV[6]  error_json: {"code","message","at"} (rendered by the worker)
  ARGV[7]  retry_at_ms (int): retry at (ms), '0' = use the backoff
  ARGV[8]  backoff_base_ms (int): backoff base (ms)
  ARGV[9]  backoff_cap_ms (int): backoff cap (ms)
  ARGV[10] followup_id: follow-up job id
  ARGV[11] followup_payload (bytes): follow-up payload

  Counts the sync as failed in the minute's history, with its duration
  from the claim (started_at) to now_ms.

  Returns {RV_OK, next try (ms)}, {RV_ERR_NOT_FOUND} or {RV_ERR_FENCED}
  (a newer claim owns the kind: generation or job id differ).
  Publishes a status event (error, or queued for a follow-up).
]]
--- @include "codes"
--- @include "rcall"
--- @include "field"
--- @include "ownsKind"
--- @include "queueFollowup"
--- @include "publishStatus"
--- @include "recordStats"
local metaKey, processingKey = KEYS[1], KEYS[2]
local queueKey, scheduleKey = KEYS[3], KEYS[4]
local statsKey, workerKey = KEYS[5], KEYS[6]
local kind, jobId, gen, payload = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, errorJson, retryAt = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local base, cap = tonumber(ARGV[8]), tonumber(ARGV[9])
local followupId, followupPayload = ARGV[10], ARGV[11]

rcall('LREM', processingKey, 1, payload)
if rcall('EXISTS', metaKey) == 0 then
  return {RV_ERR_NOT_FOUND}
end
if not owns_kind(metaKey, kind, jobId, gen) then
  return {RV_ERR_FENCED}
end

record_stats(statsKey, workerKey, kind, false, now,
  rcall('HGET', metaKey, field(kind, 'started_at')))
local fails = rcall('HINCRBY', metaKey, field(kind, 'fails'), 1)
local delay = cap
if fails <= 30 then
  delay = math.min(cap, base * (2 ^ (fails - 1)))
end
local nextAt = now + delay
if retryAt > 0 then
  nextAt = retryAt
end
rcall('HSET', metaKey, field(kind, 'sync_status'), 'error',
  field(kind, 'sync_error'), errorJson, field(kind, 'worker'), '',
  field(kind, 'started_at'), '')
local id = rcall('HGET', metaKey, 'id')
rcall('ZADD', scheduleKey, string.format('%d', nextAt), kind .. ':' .. id)
queue_followup(metaKey, queueKey, kind, followupId, followupPayload)
publish_status(metaKey, id, kind)
return {RV_OK, string.format('%d', nextAt)}

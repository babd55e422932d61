--[[
  Gives a dead-lettered job another go (POST /v1/deadletters/{n}/retry):
  only if the entry at index n is still the one the caller read (its SHA-1
  is expected), so an entry that moved or went meanwhile is never retried
  by mistake. The kind is then asked for at the front as requestRefresh
  would (idle or error -> queued with this job; queued at the back -> this
  job takes over at the front; queued at the front -> coalesced; running
  -> one follow-up), and the entry leaves the list.

  KEYS[1] deadletter_key (const): rv:deadletter
  KEYS[2] queue_key (const): rv:queue
  KEYS[3] meta_key: rv:{id}:meta of the entry's job (rv:org:{id} for org)

  ARGV[1] index (int): position in rv:deadletter (0 = newest)
  ARGV[2] expected: SHA-1 (hex) of the entry as the caller read it
  ARGV[3] kind: 'branches', 'prs' or 'org' (the entry's job's)
  ARGV[4] job_id: id of the new job
  ARGV[5] payload (bytes): the new job (MessagePack, reason user)

  Returns {RV_ERR_NO_GITHUB} for a PR sync of a repo without GitHub, or
  {RV_OK, 'queued'|'coalesced'}, {RV_ERR_STALE_JOB} (the entry at
  the index is another one, or none), {RV_ERR_NOT_FOUND} (the repo is gone;
  the entry stays, to be dropped) or {RV_ERR_INVALID} (a kind of no sync).
  Publishes a status event when the job is pushed.
]]
--- @include "codes"
--- @include "rcall"
--- @include "field"
--- @include "requestKind"
local deadKey, queueKey, metaKey = KEYS[1], KEYS[2], KEYS[3]
local index, expected = tonumber(ARGV[1]), ARGV[2]
local kind, jobId, payload = ARGV[3], ARGV[4], ARGV[5]

if kind ~= 'branches' and kind ~= 'prs' and kind ~= 'org' then
  return {RV_ERR_INVALID}
end
local entry = rcall('LINDEX', deadKey, index)
if not entry or redis.sha1hex(entry) ~= expected then
  return {RV_ERR_STALE_JOB}
end
if rcall('EXISTS', metaKey) == 0 then
  return {RV_ERR_NOT_FOUND}
end
if kind == 'prs' and rcall('HGET', metaKey, 'github') == '' then
  return {RV_ERR_NO_GITHUB}
end
-- Entries may repeat: mark this one, then remove exactly the mark.
local tombstone = 'rv:tombstone:' .. jobId
rcall('LSET', deadKey, index, tombstone)
rcall('LREM', deadKey, 1, tombstone)

return {RV_OK, request_kind(metaKey, queueKey, kind, jobId, payload, true)}

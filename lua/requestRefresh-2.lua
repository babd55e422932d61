--[[
  Asks for a sync of one kind of a repo, coalescing with what is already
  there:
    idle or error -> the job is pushed, status becomes queued   ("queued")
    queued        -> nothing changes                            ("coalesced")
    queued at the back (scheduled) and this request is for the front ->
                     the job is pushed at the front and becomes the
                     kind's job; the scheduled one is dropped when a
                     worker claims it (stale job id)               ("queued")
    running       -> a follow-up is flagged; the commit or fail
                     script queues exactly one after the sync    ("queued")
    running with the follow-up already flagged                  ("coalesced")

  KEYS[1] meta_key: rv:{id}:meta
  KEYS[2] queue_key (const): rv:queue

  ARGV[1] kind: 'branches', 'prs', or 'org' (meta_key is then rv:org:{id})
  ARGV[2] job_id: job id
  ARGV[3] payload (bytes): job payload (MessagePack)
  ARGV[4] is_front (flag): '1' to queue at the front (user, webhook), '0' at
          the back

  Returns {RV_OK, 'queued'|'coalesced'}, {RV_ERR_NOT_FOUND},
  {RV_ERR_NO_GITHUB} (PRs of a repo without GitHub) or {RV_ERR_INVALID}.
  Publishes a status event when a job is pushed.
]]
--- @include "codes"
--- @include "rcall"
--- @include "field"
--- @include "requestKind"
local metaKey, queueKey = KEYS[1], KEYS[2]
local kind, jobId, payload, front = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'

if kind ~= 'branches' and kind ~= 'prs' and kind ~= 'org' then
  return {RV_ERR_INVALID}
end
if rcall('EXISTS', metaKey) == 0 then
  return {RV_ERR_NOT_FOUND}
end
if kind == 'prs' and rcall('HGET', metaKey, 'github') == '' then
  return {RV_ERR_NO_GITHUB}
end

return {RV_OK, request_kind(metaKey, queueKey, kind, jobId, payload, front)}

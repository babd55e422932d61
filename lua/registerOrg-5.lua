--[[
  Registers an org (a GitHub owner whose repositories repoview keeps
  registered) and queues its first org sync at the front of the queue.
  One org per owner: an owner already in rv:orgs:owners is refused, so two
  orgs never register the same repositories.

  KEYS[1] org_key: rv:org:{id}, the org's hash (must not exist)
  KEYS[2] orgs_key (const): rv:orgs, set of org ids
  KEYS[3] owners_key (const): rv:orgs:owners, lower(owner) -> org id
  KEYS[4] schedule_key (const): rv:schedule, zset "kind:id" -> next sync (ms)
  KEYS[5] queue_key (const): rv:queue, the job list

  ARGV[1] id: org id
  ARGV[2] github: the owner's login as given
  ARGV[3] owner_lower: the login lower-cased (the owners index key)
  ARGV[4] now_ms (int): now (ms)
  ARGV[5] next_at_ms (int): first scheduled org sync (ms)
  ARGV[6] job_id: job id of the first org sync
  ARGV[7] payload (bytes): its payload (kind org, reason register)

  Returns {RV_OK}, {RV_ERR_EXISTS, 'id'} when the id is taken, or
  {RV_ERR_EXISTS, 'owner', other org id} when another org has the owner.
  Publishes a status event (queued) for the org.
]]
--- @include "codes"
--- @include "rcall"
--- @include "queueJob"
--- @include "publishStatus"
local orgKey, orgsKey, ownersKey = KEYS[1], KEYS[2], KEYS[3]
local scheduleKey, queueKey = KEYS[4], KEYS[5]
local id, github, ownerLower = ARGV[1], ARGV[2], ARGV[3]
local now, nextAt, jobId, payload = ARGV[4], ARGV[5], ARGV[6], ARGV[7]

if rcall('EXISTS', orgKey) == 1 or rcall('SISMEMBER', orgsKey, id) == 1 then
  return {RV_ERR_EXISTS, 'id'}
end
local other = rcall('HGET', ownersKey, ownerLower)
if other then
  return {RV_ERR_EXISTS, 'owner', other}
end
rcall('HSET', orgKey, 'id', id, 'github', github, 'created_at', now,
  'installation_id', '', 'repo_count', '0',
  'org_sync_status', 'idle', 'org_sync_at', '', 'org_sync_error', '',
  'org_gen', '0', 'org_job', '', 'org_job_end', '', 'org_pending', '0',
  'org_fails', '0', 'org_worker', '', 'org_started_at', '')
rcall('SADD', orgsKey, id)
rcall('HSET', ownersKey, ownerLower, id)
queue_job(orgKey, queueKey, 'org', jobId, payload, true)
rcall('ZADD', scheduleKey, nextAt, 'org:' .. id)
publish_status(orgKey, id, 'org')
return {RV_OK}

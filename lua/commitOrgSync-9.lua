--[[
  Applies one batch of an org sync's changes to the org's repos, fenced
  like a commit (generation and job id of the org's kind). The worker
  sends the changes in batches; the last one (is_final) also ends the run:
  the org becomes idle with the listing's pages, its repo count and next
  sync, and a refresh asked for meanwhile is queued.

  ops is a MessagePack array of changes, each an array:
    {'add', github_id, id, url, github, branch_job_id, branch_payload,
     pr_job_id, pr_payload}
        registers a repo under id (first syncs at the back of the queue);
        skipped when id is taken meanwhile (the worker chose it free)
    {'update', github_id, url, github}
        a known repo under a new name: its github and url follow
    {'remove', github_id}
        the repo of that GitHub id goes (only if this org registered it)
  A GitHub id already known is updated, not added again; an update of a
  repo that is gone or no longer this org's (removed by hand, perhaps
  registered again by hand) forgets it and leaves it alone (the next org
  sync adds the repository again under a free id).

  KEYS[1] org_key: rv:org:{id}
  KEYS[2] org_repos_key: rv:org:{id}:repos
  KEYS[3] org_pages_key: rv:org:{id}:pages
  KEYS[4] processing_key: rv:processing:<worker>
  KEYS[5] repos_key (const): rv:repos
  KEYS[6] schedule_key (const): rv:schedule
  KEYS[7] queue_key (const): rv:queue
  KEYS[8] stats_key: rv:stats:<minute of now_ms> (history, recordStats)
  KEYS[9] worker_key: rv:worker:<worker> (syncsDone, if it exists)

  ARGV[1]  job_id: the org sync's job id
  ARGV[2]  gen (int): generation from claimJob
  ARGV[3]  payload (bytes): job payload (removed from the processing list
           by the final batch)
  ARGV[4]  ops (bytes): the changes (MessagePack, above)
  ARGV[5]  now_ms (int): now (ms)
  ARGV[6]  repo_next_at_ms (int): first scheduled sync of an added repo
  ARGV[7]  is_final (flag): '1' on the last batch
  ARGV[8]  pages (bytes): final only: MessagePack array of page number,
           page JSON, ... (replaces rv:org:{id}:pages)
  ARGV[9]  installation_id: final only: the installation used, '' = none
  ARGV[10] next_at_ms (int): final only: the org's next scheduled sync
  ARGV[11] followup_id: final only: follow-up job id
  ARGV[12] followup_payload (bytes): final only: follow-up payload

  The final batch counts the run as a done sync of kind org in the
  minute's history, with its duration from the claim (org_started_at).

  Returns {RV_OK, added, updated, removed, skipped}, {RV_ERR_NOT_FOUND}
  (the org is gone) or {RV_ERR_FENCED}.
  Publishes the added, updated and removed repos' events, and on the
  final batch the org's status event.
]]
--- @include "codes"
--- @include "rcall"
--- @include "field"
--- @include "ownsKind"
--- @include "repoKeys"
--- @include "newRepo"
--- @include "dropRepo"
--- @include "queueFollowup"
--- @include "publishStatus"
--- @include "githubIndex"
--- @include "recordStats"
local orgKey, orgReposKey, orgPagesKey = KEYS[1], KEYS[2], KEYS[3]
local processingKey, reposKey = KEYS[4], KEYS[5]
local scheduleKey, queueKey = KEYS[6], KEYS[7]
local statsKey, workerKey = KEYS[8], KEYS[9]
local jobId, gen, payload = ARGV[1], ARGV[2], ARGV[3]
local now, repoNextAt, isFinal = ARGV[5], ARGV[6], ARGV[7] == '1'

if rcall('EXISTS', orgKey) == 0 then
  rcall('LREM', processingKey, 1, payload)
  return {RV_ERR_NOT_FOUND}
end
if not owns_kind(orgKey, 'org', jobId, gen) then
  rcall('LREM', processingKey, 1, payload)
  return {RV_ERR_FENCED}
end
local orgId = rcall('HGET', orgKey, 'id')
local ops = cmsgpack.unpack(ARGV[4])
local added, updated, removed, skipped = 0, 0, 0, 0

local function update(ghid, url, github)
  local rid = rcall('HGET', orgReposKey, ghid)
  if not rid then
    return false
  end
  local metaKey = repo_key(rid, 'meta')
  local current = rcall('HMGET', metaKey, 'url', 'github', 'org', 'github_id')
  if current[3] ~= orgId or current[4] ~= ghid then
    -- Gone, or no longer ours (removed by hand, and perhaps registered
    -- again by hand under the same id): forget it; the next sync adds the
    -- repository again under a free id.
    rcall('HDEL', orgReposKey, ghid)
    skipped = skipped + 1
    return true
  end
  if current[1] ~= url or current[2] ~= github then
    rcall('HSET', metaKey, 'url', url, 'github', github)
    unindex_github(current[2], rid)
    index_github(github, rid)
    publish_status(metaKey, rid, 'branches')
    updated = updated + 1
  end
  return true
end

local function add(op)
  local ghid, id = op[2], op[3]
  if update(ghid, op[4], op[5]) then
    return
  end
  if rcall('EXISTS', repo_key(id, 'meta')) == 1 then
    skipped = skipped + 1
    return
  end
  new_repo(repo_key(id, 'meta'), reposKey, scheduleKey, queueKey,
    {id = id, url = op[4], github = op[5], default_branch = '',
     interval = '0', org = orgId, github_id = ghid},
    now, repoNextAt, op[6], op[7], op[8], op[9], false)
  rcall('HSET', orgReposKey, ghid, id)
  added = added + 1
end

local function remove(ghid)
  local rid = rcall('HGET', orgReposKey, ghid)
  rcall('HDEL', orgReposKey, ghid)
  if not rid then
    return
  end
  local metaKey = repo_key(rid, 'meta')
  if rcall('HGET', metaKey, 'org') == orgId then
    drop_repo(metaKey, repo_key(rid, 'branches'), repo_key(rid, 'prs'),
      repo_key(rid, 'overview'), reposKey, scheduleKey, rid)
    removed = removed + 1
  end
end

for _, op in ipairs(ops) do
  if op[1] == 'add' then
    add(op)
  elseif op[1] == 'update' then
    if not update(op[2], op[3], op[4]) then
      skipped = skipped + 1
    end
  elseif op[1] == 'remove' then
    remove(op[2])
  else
    return redis.error_reply('commitOrgSync: unknown change ' ..
      tostring(op[1]))
  end
end

if isFinal then
  rcall('LREM', processingKey, 1, payload)
  rcall('DEL', orgPagesKey)
  local pages = cmsgpack.unpack(ARGV[8])
  for i = 1, #pages, 2 do
    rcall('HSET', orgPagesKey, pages[i], pages[i + 1])
  end
  record_stats(statsKey, workerKey, 'org', true, tonumber(now),
    rcall('HGET', orgKey, 'org_started_at'))
  rcall('HSET', orgKey, 'org_sync_status', 'idle', 'org_sync_at', now,
    'org_sync_error', '', 'org_fails', '0', 'org_worker', '',
    'org_started_at', '', 'installation_id', ARGV[9],
    'repo_count', rcall('HLEN', orgReposKey))
  rcall('ZADD', scheduleKey, ARGV[10], 'org:' .. orgId)
  queue_followup(orgKey, queueKey, 'org', ARGV[11], ARGV[12])
  publish_status(orgKey, orgId, 'org')
end
return {RV_OK, added, updated, removed, skipped}

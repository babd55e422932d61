--[[
  Removes an org and every repo it registered: the org's hash, its repo
  index and listing pages, its owner, its id, its schedule entry, and each
  repo named in its repo index exactly as removeRepo removes one (the repo
  keys are built from the ids found here: docs/redis.md, Topology). An org
  job still queued is dropped at claim; an org sync still running finds the
  hash gone and writes nothing.

  KEYS[1] org_key: rv:org:{id}
  KEYS[2] org_repos_key: rv:org:{id}:repos
  KEYS[3] org_pages_key: rv:org:{id}:pages
  KEYS[4] orgs_key (const): rv:orgs
  KEYS[5] owners_key (const): rv:orgs:owners
  KEYS[6] schedule_key (const): rv:schedule
  KEYS[7] repos_key (const): rv:repos

  ARGV[1] id: org id

  Returns {RV_OK, {ids of the repos removed}} or {RV_ERR_NOT_FOUND}.
  Publishes {"type":"removed","repo":id} per repo, then
  {"type":"org-removed","org":id}.
]]
--- @include "codes"
--- @include "rcall"
--- @include "eventsChannel"
--- @include "repoKeys"
--- @include "dropRepo"
local orgKey, orgReposKey, orgPagesKey = KEYS[1], KEYS[2], KEYS[3]
local orgsKey, ownersKey, scheduleKey = KEYS[4], KEYS[5], KEYS[6]
local reposKey = KEYS[7]
local id = ARGV[1]

if rcall('EXISTS', orgKey) == 0 then
  return {RV_ERR_NOT_FOUND}
end
local removed = {}
for _, repo in ipairs(rcall('HVALS', orgReposKey)) do
  -- Only a valid id of a repo this org registered goes: a hand-made or
  -- stale index entry must not take another repo, or another key, along.
  local valid = #repo <= 100 and
    string.match(repo, '^[A-Za-z0-9][A-Za-z0-9._-]*$') ~= nil
  local metaKey = repo_key(repo, 'meta')
  if valid and rcall('HGET', metaKey, 'org') == id then
    drop_repo(metaKey, repo_key(repo, 'branches'), repo_key(repo, 'prs'),
      repo_key(repo, 'overview'), reposKey, scheduleKey, repo)
    removed[#removed + 1] = repo
  end
end
local owner = string.lower(rcall('HGET', orgKey, 'github') or '')
if rcall('HGET', ownersKey, owner) == id then
  rcall('HDEL', ownersKey, owner)
end
rcall('DEL', orgKey, orgReposKey, orgPagesKey)
rcall('SREM', orgsKey, id)
rcall('ZREM', scheduleKey, 'org:' .. id)
rcall('PUBLISH', RV_CHANNEL_EVENTS,
  cjson.encode({type = 'org-removed', org = id}))
return {RV_OK, removed}

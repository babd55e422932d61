--[[
  The repos registered with one GitHub name (a webhook's
  repository.full_name), from the index the registry scripts keep
  (githubIndex). The first repo registered into an empty registry sets
  the marker; a Redis written by a version without the index has repos
  and no marker: the first call builds the index from every repo's github
  field, once, and sets the marker.

  KEYS[1] name_key: rv:ghname:<owner/name lower-cased>
  KEYS[2] marker_key (const): rv:ghname:indexed
  KEYS[3] repos_key (const): rv:repos

  ARGV[1] github: the name, as the webhook spelt it (for the log only)

  Returns {RV_OK, {repo ids}}.
]]
--- @include "codes"
--- @include "rcall"
--- @include "repoKeys"
--- @include "githubIndex"
local nameKey, markerKey, reposKey = KEYS[1], KEYS[2], KEYS[3]

if rcall('EXISTS', markerKey) == 0 then
  for _, id in ipairs(rcall('SMEMBERS', reposKey)) do
    index_github(rcall('HGET', repo_key(id, 'meta'), 'github'), id)
  end
  rcall('SET', markerKey, '1')
end
return {RV_OK, rcall('SMEMBERS', nameKey)}

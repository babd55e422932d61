--[[
  One page of the repo list, in id order (GET /v1/repos): up to limit ids
  after cursor, of org when org is given, whose id or github contains q
  (ignoring case) when q is given. At most scan_max ids are looked at per
  call, so a filter that matches little answers a short page with a
  cursor to go on from, never a scan of every repo. The ordered ids
  (repoIds) are rebuilt from rv:repos when the two disagree in size (a
  Redis from before they existed, or one an older version wrote to).

  KEYS[1] ids_key (const): rv:repos:ids
  KEYS[2] repos_key (const): rv:repos

  ARGV[1] cursor: the last id of the previous page ('' = from the start)
  ARGV[2] limit (int): ids at most (1-1000)
  ARGV[3] org: only this org's repos ('' = any)
  ARGV[4] q: lower-cased text the id or github must contain ('' = any)
  ARGV[5] scan_max (int): ids looked at at most

  Returns {RV_OK, next cursor ('' at the end), {ids}}.
]]
--- @include "codes"
--- @include "rcall"
--- @include "repoKeys"
local idsKey, reposKey = KEYS[1], KEYS[2]
local cursor, limit = ARGV[1], tonumber(ARGV[2])
local org, q, scanMax = ARGV[3], ARGV[4], tonumber(ARGV[5])

if rcall('ZCARD', idsKey) ~= rcall('SCARD', reposKey) then
  rcall('DEL', idsKey)
  local members = rcall('SMEMBERS', reposKey)
  for i = 1, #members, 500 do
    local args = {}
    for j = i, math.min(i + 499, #members) do
      args[#args + 1] = 0
      args[#args + 1] = members[j]
    end
    rcall('ZADD', idsKey, unpack(args))
  end
end

local from = '-'
if cursor ~= '' then
  from = '(' .. cursor
end
local filtered = org ~= '' or q ~= ''
local batch = limit + 1
if filtered then
  batch = scanMax
end
local candidates = rcall('ZRANGEBYLEX', idsKey, from, '+', 'LIMIT', 0, batch)
local page, last = {}, nil
for _, id in ipairs(candidates) do
  if #page == limit then
    break
  end
  local keep = true
  if filtered then
    local f = rcall('HMGET', repo_key(id, 'meta'), 'org', 'github')
    keep = (org == '' or f[1] == org) and
      (q == '' or string.find(string.lower(id), q, 1, true) ~= nil or
       (f[2] and string.find(string.lower(f[2]), q, 1, true) ~= nil))
  end
  if keep then
    page[#page + 1] = id
  end
  last = id
end
-- More may follow when the page filled before the candidates ran out, or
-- the scan stopped at its cap.
local next = ''
local exhausted = #candidates < batch and last == candidates[#candidates]
if last and not exhausted then
  next = last
end
return {RV_OK, next, page}

--- @include "rcall"

-- The index from GitHub name to repos: rv:ghname:<owner/name lower-cased>,
-- a set of repo ids (several repos may name one GitHub repository), kept
-- by every script that writes or drops a repo's github (src/common/keys.h
-- builds the same key).
local function github_key(github)
  return 'rv:ghname:' .. string.lower(github)
end

local function index_github(github, id)
  if github and github ~= '' then
    rcall('SADD', github_key(github), id)
  end
end

local function unindex_github(github, id)
  if github and github ~= '' then
    rcall('SREM', github_key(github), id)
  end
end

-- The marker findByGithub reads: every repo in the registry is indexed.
-- A registry that is empty when a repo is added is indexed from then on
-- (every script that adds a repo keeps the index); one written by a
-- version without the index has repos and no marker, and the first
-- webhook builds the index once.
local function mark_index_complete_if_empty(reposKey)
  if rcall('SCARD', reposKey) == 0 then
    rcall('SET', 'rv:ghname:indexed', '1')
  end
end

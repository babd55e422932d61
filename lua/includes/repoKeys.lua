-- A repo's key built from its id, as src/common/keys.c builds it: for the
-- scripts that reach repos they learn of inside the script (an org's), on
-- the one Redis primary repoview runs on (docs/redis.md, Topology).
local function repo_key(id, suffix)
  return 'rv:{' .. id .. '}:' .. suffix
end

-- The meta field of a kind: field('prs', 'sync_status') -> 'pr_sync_status'.
-- An org sync keeps the same fields, 'org_'-prefixed, in the org's hash.
local function field(kind, name)
  if kind == 'prs' then
    return 'pr_' .. name
  elseif kind == 'org' then
    return 'org_' .. name
  end
  return 'branch_' .. name
end

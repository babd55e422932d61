-- The meta field of a kind: field('prs', 'sync_status') -> 'pr_sync_status'.
local function field(kind, name)
  if kind == 'prs' then
    return 'pr_' .. name
  end
  return 'branch_' .. name
end

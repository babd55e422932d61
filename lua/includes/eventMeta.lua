--- @include "rcall"

-- The fields of the meta hash that an event carries, so a subscriber can
-- render freshness without reading Redis again. An org's hash carries its
-- own set.
local EVENT_FIELDS = {'version', 'github', 'interval',
  'branch_sync_status', 'branch_sync_at', 'branch_sync_error',
  'pr_sync_status', 'pr_sync_at', 'pr_sync_error'}
local ORG_EVENT_FIELDS = {'github', 'installation_id', 'repo_count',
  'org_sync_status', 'org_sync_at', 'org_sync_error'}

local function event_meta(metaKey, kind)
  local names = EVENT_FIELDS
  if kind == 'org' then
    names = ORG_EVENT_FIELDS
  end
  local values = rcall('HMGET', metaKey, unpack(names))
  local meta = {}
  for i, name in ipairs(names) do
    meta[name] = values[i] or ''
  end
  return meta
end

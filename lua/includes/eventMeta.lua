--- @include "rcall"

-- The fields of the meta hash that an event carries, so a subscriber can
-- render freshness without reading Redis again.
local EVENT_FIELDS = {'version', 'github', 'interval',
  'branch_sync_status', 'branch_sync_at', 'branch_sync_error',
  'pr_sync_status', 'pr_sync_at', 'pr_sync_error'}

local function event_meta(metaKey)
  local values = rcall('HMGET', metaKey, unpack(EVENT_FIELDS))
  local meta = {}
  for i, name in ipairs(EVENT_FIELDS) do
    meta[name] = values[i] or ''
  end
  return meta
end

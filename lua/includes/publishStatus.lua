--- @include "rcall"
--- @include "field"
--- @include "eventsChannel"
--- @include "eventMeta"

-- Publishes {"type":"status","repo","kind","status","meta":{...}}; for an
-- org sync (kind 'org') the id goes in "org" instead of "repo".
local function publish_status(metaKey, id, kind)
  local meta = event_meta(metaKey, kind)
  local event = {type = 'status', kind = kind,
    status = meta[field(kind, 'sync_status')], meta = meta}
  if kind == 'org' then
    event.org = id
  else
    event.repo = id
  end
  rcall('PUBLISH', RV_CHANNEL_EVENTS, cjson.encode(event))
end

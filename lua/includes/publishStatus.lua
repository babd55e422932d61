--- @include "rcall"
--- @include "field"
--- @include "eventsChannel"
--- @include "eventMeta"

-- Publishes {"type":"status","repo","kind","status","meta":{...}}.
local function publish_status(metaKey, repo, kind)
  local meta = event_meta(metaKey)
  rcall('PUBLISH', RV_CHANNEL_EVENTS, cjson.encode({type = 'status',
    repo = repo, kind = kind, status = meta[field(kind, 'sync_status')],
    meta = meta}))
end

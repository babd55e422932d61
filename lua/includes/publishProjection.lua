--- @include "rcall"
--- @include "eventsChannel"
--- @include "eventMeta"

-- Publishes {"type":"projection","repo","kind","meta":{...},"changed":...};
-- changed is JSON text built by the worker and spliced in as it is ('' is
-- sent as {} so the event stays valid JSON).
local function publish_projection(metaKey, repo, kind, changed)
  if changed == '' then
    changed = '{}'
  end
  local head = cjson.encode({type = 'projection', repo = repo, kind = kind,
    meta = event_meta(metaKey)})
  rcall('PUBLISH', RV_CHANNEL_EVENTS,
    string.sub(head, 1, -2) .. ',"changed":' .. changed .. '}')
end

-- Helpers for the per-repo meta hash and the events channel.
local rcall = redis.call

-- The meta field of a kind: field('prs', 'sync_status') -> 'pr_sync_status'.
local function field(kind, name)
  if kind == 'prs' then
    return 'pr_' .. name
  end
  return 'branch_' .. name
end

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

-- Publishes {"type":"status","repo","kind","status","meta":{...}}.
local function publish_status(metaKey, repo, kind)
  local meta = event_meta(metaKey)
  rcall('PUBLISH', 'rv:events', cjson.encode({type = 'status', repo = repo,
    kind = kind, status = meta[field(kind, 'sync_status')], meta = meta}))
end

-- Publishes {"type":"projection","repo","kind","meta":{...},"changed":...};
-- changed is JSON text built by the worker and spliced in as it is.
local function publish_projection(metaKey, repo, kind, changed)
  local head = cjson.encode({type = 'projection', repo = repo, kind = kind,
    meta = event_meta(metaKey)})
  rcall('PUBLISH', 'rv:events',
    string.sub(head, 1, -2) .. ',"changed":' .. changed .. '}')
end

-- Pushes a job payload: user-facing work at the front (the consuming end,
-- right), scheduled work at the back (left).
local function enqueue(queueKey, payload, front)
  if front then
    rcall('RPUSH', queueKey, payload)
  else
    rcall('LPUSH', queueKey, payload)
  end
end

-- If a refresh was asked for while the sync ran, queues the one follow-up
-- at the front and returns true; the kind's job field names what is queued.
local function queue_followup(metaKey, queueKey, kind, jobId, payload)
  if rcall('HGET', metaKey, field(kind, 'pending')) == '1' and payload ~= '' then
    enqueue(queueKey, payload, true)
    rcall('HSET', metaKey, field(kind, 'pending'), '0',
      field(kind, 'sync_status'), 'queued', field(kind, 'job'), jobId)
    return true
  end
  rcall('HSET', metaKey, field(kind, 'pending'), '0', field(kind, 'job'), '')
  return false
end

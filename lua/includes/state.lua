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
-- changed is JSON text built by the worker and spliced in as it is ('' is
-- sent as {} so the event stays valid JSON).
local function publish_projection(metaKey, repo, kind, changed)
  if changed == '' then
    changed = '{}'
  end
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

-- Pushes the job of a kind and marks the kind queued with it. <p>job names
-- the one job that may claim the kind; <p>job_end remembers which end of
-- the queue it went to, so a user refresh can overtake a scheduled job
-- (requestRefresh). Clears the traces of a previous run.
local function queue_job(metaKey, queueKey, kind, jobId, payload, front)
  enqueue(queueKey, payload, front)
  local side = 'back'
  if front then
    side = 'front'
  end
  rcall('HSET', metaKey, field(kind, 'sync_status'), 'queued',
    field(kind, 'job'), jobId, field(kind, 'job_end'), side,
    field(kind, 'worker'), '', field(kind, 'started_at'), '')
end

-- Ends a run: if a refresh was asked for while the sync ran, queues the one
-- follow-up at the front and returns true (the kind is then queued);
-- otherwise forgets the job and returns false (the caller has already set
-- the final status). The pending flag is cleared either way, so a request
-- is answered by exactly one follow-up.
local function queue_followup(metaKey, queueKey, kind, jobId, payload)
  local wanted = rcall('HGET', metaKey, field(kind, 'pending')) == '1'
  rcall('HSET', metaKey, field(kind, 'pending'), '0', field(kind, 'job'), '',
    field(kind, 'job_end'), '')
  if wanted and payload ~= '' and jobId ~= '' then
    queue_job(metaKey, queueKey, kind, jobId, payload, true)
    return true
  end
  return false
end

-- True when the claim that handed out gen for jobId still owns the kind.
-- The job id is checked too: a repo removed and registered again starts
-- its generations afresh, and only the job id tells its runs apart.
local function owns_kind(metaKey, kind, jobId, gen)
  local current = rcall('HMGET', metaKey, field(kind, 'gen'),
    field(kind, 'job'))
  return current[1] == gen and current[2] == jobId
end

--- @include "rcall"
--- @include "field"

-- Counts one ended sync in the minute's history hash rv:stats:<minute>
-- (docs/redis.md): done:<kind> or failed:<kind>, and its duration in the
-- histogram ms:<kind>:<bucket>. The duration runs from the claim
-- (<p>started_at, which the caller reads before clearing it) to now_ms,
-- both the same worker's clock; a negative or unknown one is not counted
-- in the histogram. The hash lives 24 h (plus two minutes, so the oldest
-- minute of a 24 h window is still whole), which bounds the history.
-- The worker's own hash (rv:worker:<id>) counts syncsDone/syncsFailed
-- only while it exists: it expires with the worker's lease, and a count
-- must not bring back a dead worker's hash without a TTL.
local RV_STATS_BOUNDS = {50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
  60000}
local RV_STATS_TTL_MS = 86400000 + 120000

local function record_stats(statsKey, workerKey, kind, isDone, now, startedAt)
  local outcome = isDone and 'done' or 'failed'
  rcall('HINCRBY', statsKey, outcome .. ':' .. kind, 1)
  local started = tonumber(startedAt or '')
  if started and now >= started then
    local ms = now - started
    local bucket = #RV_STATS_BOUNDS
    for i, bound in ipairs(RV_STATS_BOUNDS) do
      if ms <= bound then
        bucket = i - 1
        break
      end
    end
    rcall('HINCRBY', statsKey, 'ms:' .. kind .. ':' .. bucket, 1)
  end
  rcall('PEXPIRE', statsKey, RV_STATS_TTL_MS)
  if rcall('EXISTS', workerKey) == 1 then
    rcall('HINCRBY', workerKey, isDone and 'syncsDone' or 'syncsFailed', 1)
  end
end

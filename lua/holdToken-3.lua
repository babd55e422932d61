--[[
  Holds a token's work after a secondary rate limit: until retry-after when
  GitHub named it (believed up to retry_max_ms: a retry-after of days would
  stop the token for days), otherwise for at least a minute, doubling with
  each repeat while the strikes key lives (GitHub asks for an exponentially
  growing wait), capped. A hold never shortens one already in place.

  KEYS[1] hold_key: rv:gh:hold:<identity>
  KEYS[2] strikes_key: rv:gh:strikes:<identity>
  KEYS[3] tokens_key (const): rv:gh:tokens

  ARGV[1] identity: installation id, 'pat' or 'none' (never the token)
  ARGV[2] now_ms (int): now (ms)
  ARGV[3] retry_at_ms (int): GitHub's retry-after as a time (ms), 0 = none
  ARGV[4] base_ms (int): the first hold without retry-after (ms)
  ARGV[5] cap_ms (int): the longest hold without retry-after (ms)
  ARGV[6] retry_max_ms (int): the longest hold a retry-after gets (ms)

  Returns {RV_OK, hold end (ms)}. Publishes nothing.
]]
--- @include "codes"
--- @include "rcall"
local holdKey, strikesKey, tokensKey = KEYS[1], KEYS[2], KEYS[3]
local now, retryAt = tonumber(ARGV[2]), tonumber(ARGV[3])
local base, cap = tonumber(ARGV[4]), tonumber(ARGV[5])
local retryMax = tonumber(ARGV[6])

rcall('SADD', tokensKey, ARGV[1])
local strikes = rcall('INCR', strikesKey)
local wait = base * 2 ^ math.min(strikes - 1, 20)
if wait > cap then wait = cap end
if retryAt > now then wait = math.min(retryAt - now, retryMax) end
local prev = rcall('PTTL', holdKey)
if prev > wait then wait = prev end
wait = math.floor(wait)
local untilMs = now + wait
rcall('SET', holdKey, untilMs, 'PX', wait)
-- Strikes are forgotten after a quiet spell as long as the hold plus cap.
rcall('PEXPIRE', strikesKey, wait + cap)
return {RV_OK, untilMs}

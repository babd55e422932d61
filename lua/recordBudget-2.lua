--[[
  Records what one GitHub answer said about a token's budget, and names
  the token in the set of identities /metrics reads. Only what the answer
  said is written (a missing value keeps the last one). A budget no answer
  has told of for ttl_ms (an installation removed, a token retired) goes.

  KEYS[1] budget_key: rv:gh:budget:<identity>
  KEYS[2] tokens_key (const): rv:gh:tokens

  ARGV[1] identity: installation id, 'pat' or 'none' (never the token)
  ARGV[2] remaining (int): requests or points left, -1 = not said
  ARGV[3] limit (int): the budget per window, -1 = not said
  ARGV[4] reset_at_ms (int): when the window resets (ms), 0 = not said
  ARGV[5] now_ms (int): now (ms)
  ARGV[6] ttl_ms (int): how long the budget is kept after this answer (ms)

  Returns {RV_OK}. Publishes nothing.
]]
--- @include "codes"
--- @include "rcall"
local budgetKey, tokensKey = KEYS[1], KEYS[2]
local identity = ARGV[1]
local remaining, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local resetAt, now = tonumber(ARGV[4]), ARGV[5]

rcall('SADD', tokensKey, identity)
rcall('HSET', budgetKey, 'updatedAt', now)
if remaining >= 0 then rcall('HSET', budgetKey, 'remaining', remaining) end
if limit >= 0 then rcall('HSET', budgetKey, 'limit', limit) end
if resetAt > 0 then rcall('HSET', budgetKey, 'resetAt', resetAt) end
rcall('PEXPIRE', budgetKey, ARGV[6])
return {RV_OK}

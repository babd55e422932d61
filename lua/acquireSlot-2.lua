--[[
  Takes one of a token's request slots (a semaphore shared by all workers):
  drops holders whose slot expired (a worker that died holding one), then
  adds the holder when fewer than max hold one. A holder already in keeps
  its slot with the new expiry. Releasing is ZREM of the holder.

  KEYS[1] slots_key: rv:gh:slots:<identity> (zset holder -> expiry ms)
  KEYS[2] tokens_key (const): rv:gh:tokens

  ARGV[1] identity: installation id, 'pat' or 'none' (never the token)
  ARGV[2] holder: unique per request ('<worker id>:<n>')
  ARGV[3] now_ms (int): now (ms)
  ARGV[4] expires_at_ms (int): when the slot lapses unless released (ms)
  ARGV[5] max (int): slots of the token

  Returns {RV_OK, 1} (taken) or {RV_OK, 0} (all taken). Publishes nothing.
]]
--- @include "codes"
--- @include "rcall"
local slotsKey, tokensKey = KEYS[1], KEYS[2]
local holder, now = ARGV[2], tonumber(ARGV[3])
local expiresAt, max = tonumber(ARGV[4]), tonumber(ARGV[5])

rcall('SADD', tokensKey, ARGV[1])
rcall('ZREMRANGEBYSCORE', slotsKey, '-inf', now)
if not rcall('ZSCORE', slotsKey, holder) and
    rcall('ZCARD', slotsKey) >= max then
  return {RV_OK, 0}
end
rcall('ZADD', slotsKey, expiresAt, holder)
-- The key itself goes when its last slot would have lapsed.
local last = rcall('ZRANGE', slotsKey, -1, -1, 'WITHSCORES')
rcall('PEXPIREAT', slotsKey, math.floor(tonumber(last[2])) + 1000)
return {RV_OK, 1}

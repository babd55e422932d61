--[[
  Samples the queue depth into the minute's history: the field queue of
  rv:stats:<minute> keeps the largest LLEN rv:queue seen in that minute.
  Every worker's scheduler tick calls it (about once a second); a script
  so that two workers sampling at once cannot lower the maximum.

  KEYS[1] stats_key: rv:stats:<minute of now>
  KEYS[2] queue_key (const): rv:queue

  ARGV[1] ttl_ms (int): how long the minute's hash is kept (ms)

  Returns {RV_OK, depth}. Publishes nothing.
]]
--- @include "codes"
--- @include "rcall"
local statsKey, queueKey = KEYS[1], KEYS[2]
local ttl = ARGV[1]

local depth = rcall('LLEN', queueKey)
local seen = tonumber(rcall('HGET', statsKey, 'queue') or '-1')
if depth > seen then
  rcall('HSET', statsKey, 'queue', depth)
end
rcall('PEXPIRE', statsKey, ttl)
return {RV_OK, depth}

-- The one alias of redis.call that scripts and helpers use.
local rcall = redis.call

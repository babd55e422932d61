--[[
  Moves a job the worker cannot use (it does not decode) from the worker's
  processing list to the dead-letter list, which keeps the newest 1000.

  KEYS[1] processing_key: rv:processing:<worker>
  KEYS[2] deadletter_key (const): rv:deadletter

  ARGV[1] payload (bytes): job payload as in the processing list
  ARGV[2] entry: dead-letter entry (JSON: reason, worker, at, payload in hex)

  Returns {RV_OK}. Publishes nothing (no repo's status changes).
]]
--- @include "codes"
--- @include "rcall"
local processingKey, deadKey = KEYS[1], KEYS[2]

rcall('LREM', processingKey, 1, ARGV[1])
rcall('LPUSH', deadKey, ARGV[2])
rcall('LTRIM', deadKey, 0, 999)
return {RV_OK}

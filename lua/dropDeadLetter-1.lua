--[[
  Drops one dead-letter entry (DELETE /v1/deadletters/{n}), only if the
  entry at index n is still the one the caller read (its SHA-1 is
  expected). Entries may repeat, so the entry is first overwritten with a
  mark (LSET) and then exactly that mark is removed (LREM).

  KEYS[1] deadletter_key (const): rv:deadletter

  ARGV[1] index (int): position in rv:deadletter (0 = newest)
  ARGV[2] expected: SHA-1 (hex) of the entry as the caller read it
  ARGV[3] mark: a value no entry has (the API sends a fresh job id)

  Returns {RV_OK} or {RV_ERR_STALE_JOB} (the entry at the index is another
  one, or none). Publishes nothing.
]]
--- @include "codes"
--- @include "rcall"
local deadKey = KEYS[1]
local index, expected, mark = tonumber(ARGV[1]), ARGV[2], ARGV[3]

local entry = rcall('LINDEX', deadKey, index)
if not entry or redis.sha1hex(entry) ~= expected then
  return {RV_ERR_STALE_JOB}
end
local tombstone = 'rv:tombstone:' .. mark
rcall('LSET', deadKey, index, tombstone)
rcall('LREM', deadKey, 1, tombstone)
return {RV_OK}

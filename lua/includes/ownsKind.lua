--- @include "rcall"
--- @include "field"

-- True when the claim that handed out gen for jobId still owns the kind.
-- The job id is checked too: a repo removed and registered again starts
-- its generations afresh, and only the job id tells its runs apart.
local function owns_kind(metaKey, kind, jobId, gen)
  local current = rcall('HMGET', metaKey, field(kind, 'gen'),
    field(kind, 'job'))
  return current[1] == gen and current[2] == jobId
end

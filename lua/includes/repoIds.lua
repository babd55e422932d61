--- @include "rcall"

-- The repo ids in order (zset, every score 0, read with ZRANGEBYLEX), for
-- paged lists; kept beside rv:repos by newRepo and dropRepo. Its name is
-- RV_KEY_REPO_IDS of src/common/keys.h, put in by tools/embed.c.
local RV_KEY_REPO_IDS = '${RV_KEY_REPO_IDS}'

local function order_repo(id)
  rcall('ZADD', RV_KEY_REPO_IDS, 0, id)
end

local function unorder_repo(id)
  rcall('ZREM', RV_KEY_REPO_IDS, id)
end

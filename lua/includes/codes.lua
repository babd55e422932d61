-- Error codes shared with src/common/errors.h (tests/unit/test_errors.c
-- checks that both lists agree).
local RV_OK = 0
local RV_ERR_INVALID = 2
local RV_ERR_NOT_FOUND = 3
local RV_ERR_EXISTS = 4
local RV_ERR_NO_GITHUB = 5
local RV_ERR_FENCED = 6
local RV_ERR_STALE_JOB = 7
local RV_ERR_RETRY = 8

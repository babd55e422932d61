-- The error codes of src/common/errors.h, every one with the same number
-- (tests/unit/test_errors.c checks that both lists agree). A code's JSON
-- name is its constant without RV_ERR_, lower-cased: RV_ERR_WORKER_LOST is
-- 'worker_lost'. Codes from RV_ERR_UNREACHABLE on are reported by syncs
-- only; a script that writes one into a sync error uses that name.
local RV_OK = 0
local RV_ERR_NOMEM = 1
local RV_ERR_INVALID = 2
local RV_ERR_NOT_FOUND = 3
local RV_ERR_EXISTS = 4
local RV_ERR_NO_GITHUB = 5
local RV_ERR_FENCED = 6
local RV_ERR_STALE_JOB = 7
local RV_ERR_RETRY = 8
local RV_ERR_REDIS = 9
local RV_ERR_PROTOCOL = 10
local RV_ERR_CONFIG = 11
local RV_ERR_IO = 12
local RV_ERR_GIT = 13
local RV_ERR_HTTP = 14
local RV_ERR_TIMEOUT = 15
local RV_ERR_DECODE = 16
local RV_ERR_TOO_LARGE = 17
local RV_ERR_LEASE_LOST = 18
local RV_ERR_SHUTDOWN = 19
local RV_ERR_URL_NOT_ALLOWED = 20
local RV_ERR_UNREACHABLE = 21
local RV_ERR_AUTH_FAILED = 22
local RV_ERR_BAD_REMOTE = 23
local RV_ERR_CANCELLED = 24
local RV_ERR_NO_DEFAULT_BRANCH = 25
local RV_ERR_RATE_LIMITED = 26
local RV_ERR_UNAUTHORIZED = 27
local RV_ERR_GITHUB_UNAVAILABLE = 28
local RV_ERR_BAD_RESPONSE = 29
local RV_ERR_BAD_REQUEST = 30
local RV_ERR_INTERNAL = 31
local RV_ERR_WORKER_LOST = 32

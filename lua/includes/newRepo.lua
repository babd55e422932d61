--- @include "rcall"
--- @include "queueJob"
--- @include "publishStatus"
--- @include "githubIndex"
--- @include "repoIds"

-- Writes a new repo's meta hash (r: id, url, github, default_branch,
-- interval, org, github_id; now), names it in reposKey, queues its first
-- sync of branches and, with a GitHub name, of PRs (at the front of the
-- queue when front, else at the back), and schedules both at nextAt. The
-- caller has checked the hash is absent.
local function new_repo(metaKey, reposKey, scheduleKey, queueKey, r, now,
                        nextAt, branchJob, branchPayload, prJob, prPayload,
                        front)
  rcall('HSET', metaKey, 'id', r.id, 'url', r.url, 'github', r.github,
    'default_branch', r.default_branch, 'interval', r.interval,
    'org', r.org, 'github_id', r.github_id, 'created_at', now,
    'version', '0',
    'branch_sync_status', 'idle', 'branch_sync_at', '', 'branch_sync_error',
    '', 'branch_gen', '0', 'branch_job', '', 'branch_job_end', '',
    'branch_pending', '0', 'branch_fails', '0', 'branch_worker', '',
    'branch_started_at', '', 'branch_rev', '0',
    'pr_sync_status', 'idle', 'pr_sync_at', '', 'pr_sync_error', '',
    'pr_gen', '0', 'pr_job', '', 'pr_job_end', '', 'pr_pending', '0',
    'pr_fails', '0', 'pr_worker', '', 'pr_started_at', '', 'pr_rev', '0')
  mark_index_complete_if_empty(reposKey)
  rcall('SADD', reposKey, r.id)
  index_github(r.github, r.id)
  order_repo(r.id)
  queue_job(metaKey, queueKey, 'branches', branchJob, branchPayload, front)
  rcall('ZADD', scheduleKey, nextAt, 'branches:' .. r.id)
  publish_status(metaKey, r.id, 'branches')
  if r.github ~= '' then
    queue_job(metaKey, queueKey, 'prs', prJob, prPayload, front)
    rcall('ZADD', scheduleKey, nextAt, 'prs:' .. r.id)
    publish_status(metaKey, r.id, 'prs')
  end
end

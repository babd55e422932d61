/*
 * Bare mirrors of remotes, one per repo, under <data_dir>/mirrors/.
 *
 * Directory names: "<hex of the repo id>.git", e.g. id "a.b-c_d" lives in
 * mirrors/612e622d635f64.git. The id is validated first
 * (^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$) and then never used raw: the hex form
 * has only [0-9a-f], so no id can name "..", a '/', a dot file or another
 * repo's mirror, and ids that differ only in case ("Web" and "web") get
 * distinct directories even on a case-insensitive file system (a laptop
 * running `repoview up`). The cost is that an operator reads the id with
 * `echo 612e622d635f64 | xxd -r -p`.
 *
 * A first clone is made in a temporary directory (mirrors/.tmp-<hex>-XXXXXX)
 * and renamed into place only once its first fetch succeeded, so a half
 * clone is never used; the GC removes abandoned ones after an hour.
 *
 * Branches of the remote are fetched as the mirror's own branches (every
 * refs/heads/ ref maps to itself, forced), with prune, without tags. The
 * remote's HEAD, when the remote says it, is recorded in the mirror (its
 * HEAD symref and the config key repoview.remotehead), so a later fetch
 * from a remote that does not say it still knows the default branch.
 */
#ifndef REPOVIEW_WORKER_MIRROR_H
#define REPOVIEW_WORKER_MIRROR_H

#include <dirent.h>
#include <stdbool.h>
#include <git2.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "worker/sync.h"

struct rv_url_policy;

struct rv_mirror_opts {
    const char *data_dir;     /* borrowed for the call */
    const char *repo_id;      /* validated id; borrowed */
    const char *url;          /* remote URL or absolute path; borrowed */
    const char *github_token; /* NULL/"" = none; only sent to github_host
                               * over HTTPS, through the credentials callback */
    const char *github_host;  /* NULL/"" = github.com; rv_mirror_token_host */
    int timeout_s;            /* whole fetch (connect included); <= 0: none */
    const struct rv_url_policy *policy; /* checked before and while it
                                         * connects; NULL = none (tests and
                                         * benchmarks of trusted remotes) */
    const char *job_id;                 /* for logs; may be NULL */
};

/* Opens the mirror, cloning it when missing, and fetches with prune. A
 * mirror that cannot be opened, or whose fetch fails in the local object
 * database or refs (corruption, a stale lock left by a killed worker), is
 * deleted and cloned again, once. The URL is checked against the policy
 * first (a local path is fetched from its resolved form), and every
 * connection again (gitstream.h). On RV_OK *repo is open (the caller frees
 * it with git_repository_free) and remote_head holds the remote's default
 * branch name as said now or recorded before ("" if never known). On
 * failure *repo is NULL and err has code RV_ERR_URL_NOT_ALLOWED,
 * _UNREACHABLE, _TIMEOUT, _NOT_FOUND, _AUTH_FAILED, _BAD_REMOTE,
 * _CANCELLED (rv_gitstream_abort) or _GIT (the local mirror) and a
 * fixed sentence: what the remote or the file system said goes to the
 * log only. */
int rv_mirror_sync(const struct rv_mirror_opts *opts, git_repository **repo,
                   char *remote_head, size_t headlen,
                   struct rv_sync_error *err);

/* Writes <data_dir>/mirrors/<hex id>.git into buf. -1 for an invalid id or a
 * path that does not fit. */
int rv_mirror_path(const char *data_dir, const char *repo_id, char *buf,
                   size_t size);

/* The host GITHUB_TOKEN is offered to for HTTPS fetches, from the GitHub
 * API URL: github.com for api.github.com (or no URL), <name>.ghe.com for
 * api.<name>.ghe.com, else the API's own host (GitHub Enterprise Server
 * serves git and its API from one host). 0, or -1 when it does not fit in
 * buf. */
int rv_mirror_token_host(const char *github_api, char *buf, size_t size);

/* rm -rf path (never follows symlinks). 0 or -1. */
int rv_mirror_remove_tree(const char *path);

/* The mirror clean-up walks <data_dir>/mirrors a chunk at a time, so one
 * step costs the same with 100 repos as with 100,000: a step reads up to
 * RV_MIRROR_GC_CHUNK mirror names, asks keep which of their repos are
 * still registered (one Redis command for the worker) and removes the
 * others' mirrors, and abandoned partial clones on the way. */
#define RV_MIRROR_GC_CHUNK 500

/* Where a walk is: zero-initialise; rv_mirror_scan_close ends it early. */
struct rv_mirror_scan {
    DIR *dir;
};

/* Sets kept[i] for each of ids[0..n) whose repo is still registered.
 * RV_OK, or an error, and then nothing is removed. */
typedef int (*rv_mirror_keep_fn)(void *arg,
                                 const char (*ids)[RV_REPO_ID_MAX + 1],
                                 size_t n, bool *kept);

/* One step of the walk of s over data_dir's mirrors; *done when it reached
 * the end (the next step starts a new walk). RV_OK, RV_ERR_INVALID
 * (data_dir too long), RV_ERR_NOMEM, RV_ERR_IO (a removal failed), or
 * keep's error. */
int rv_mirror_gc_step(struct rv_mirror_scan *s, const char *data_dir,
                      rv_mirror_keep_fn keep, void *arg, bool *done);

void rv_mirror_scan_close(struct rv_mirror_scan *s);

#endif

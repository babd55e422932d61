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

#include <git2.h>
#include <stddef.h>
#include <stdint.h>

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
    const char *job_id;       /* for logs; may be NULL */
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

/* Removes the mirrors under data_dir whose repo id is not in keep (and
 * abandoned partial clones). keep and its strings are borrowed for the
 * call. RV_OK, RV_ERR_INVALID (data_dir too long) or RV_ERR_IO. */
int rv_mirror_gc(const char *data_dir, const char *const *keep, size_t nkeep);

#endif

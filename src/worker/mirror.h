/*
 * Bare mirrors of remotes, one per repo, at <data_dir>/mirrors/<id>.git.
 * The directory name is the repo id, which is validated
 * (^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$: no '/', never "." or ".."), so a
 * mirror can never be outside the mirrors directory. Branches of the remote
 * are fetched as the mirror's own branches (refs/heads), pruned.
 */
#ifndef REPOVIEW_WORKER_MIRROR_H
#define REPOVIEW_WORKER_MIRROR_H

#include <git2.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/sync.h"

struct rv_mirror_opts {
    const char *data_dir;
    const char *repo_id;
    const char *url;
    const char *github_token; /* NULL/"" = none */
    int timeout_s;
    const char *job_id;       /* for logs */
};

/* Opens the mirror, cloning it when missing and once more when it is
 * corrupt, and fetches with prune. On RV_OK *repo is open (caller frees with
 * git_repository_free) and remote_head holds the remote's default branch
 * name ("" if it did not say). On failure err is filled. */
int rv_mirror_sync(const struct rv_mirror_opts *opts, git_repository **repo,
                   char *remote_head, size_t headlen, struct rv_sync_error *err);

/* Writes <data_dir>/mirrors/<id>.git into buf. -1 for an invalid id or a
 * path that does not fit. */
int rv_mirror_path(const char *data_dir, const char *repo_id, char *buf, size_t size);

/* rm -rf path. 0 or -1. */
int rv_mirror_remove_tree(const char *path);

#endif

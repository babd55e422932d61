/*
 * Branch sync: keeps a bare mirror of a repo's remote under
 * REPOVIEW_DATA_DIR (mirror.h) and computes, for every branch, its state
 * against the default branch: tip, ahead/behind, whether a merge into the
 * default branch conflicts (and where), the diff stat from the merge base,
 * and the tip commit. Rows whose tip and base did not move are reused from
 * the previous document without reading the object database.
 *
 * The document stored in rv:{id}:branches:
 *   {"defaultBranch":"main"|null, "defaultSha":"<hex>"|null,
 *    "truncated":false, "branches":[ROW...]}
 * ROW has the contract's branch fields except "pr" (joined at render time),
 * plus "baseSha": the default-branch tip the row was computed against.
 *
 * What the fields mean, with the git CLI as the reference:
 *   ahead/behind   git rev-list --left-right --count DEFAULT...B (right, left)
 *   conflicts      git merge-tree --write-tree DEFAULT B exits 1
 *   conflictFiles  its --name-only paths: sorted, distinct, capped
 *   diffStat       git diff --shortstat DEFAULT...B (renames detected, a
 *                  binary file counts as changed with 0/0)
 *   commit         author name, author date (as git log shows), subject
 *                  (git's %s: the message's first paragraph); text that is
 *                  not UTF-8 gets U+FFFD, and is cut at 1 KiB
 * Where libgit2 and git differ (both known, neither common): libgit2 has
 * no directory rename detection, so a file a branch adds to a directory
 * the default branch renamed is clean here where git reports a "file
 * location" conflict; and a file that became a symlink counts as two files
 * in diffStat where git counts one.
 * Rows: default branch first, then newest commit first (by the date shown,
 * the author date), then name (bytewise). A branch whose name is not valid
 * UTF-8 is skipped with a warning. An empty remote (no branches at all) is
 * a success with "defaultBranch":null and no rows, whatever default branch
 * is registered.
 */
#ifndef REPOVIEW_WORKER_BRANCHSYNC_H
#define REPOVIEW_WORKER_BRANCHSYNC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/sync.h"

struct rv_url_policy;

struct rv_branchsync_opts {
    const char *data_dir; /* mirrors live under <data_dir>/mirrors/ */
    const char *repo_id;  /* validated id: names the mirror, and logs */
    const char *url; /* remote: https, http, ssh, git, file, scp-like, path */
    const char *
        default_branch; /* registered, or NULL/"" = remote HEAD, main, master */
    const char *github_token; /* NULL/"" = none; HTTPS only, via callback */
    const char *github_host;  /* where the token goes; NULL/"" = github.com */
    int fetch_timeout_s;    /* a clone or fetch that takes longer is aborted */
    int max_branches;       /* rows kept; the rest dropped, "truncated" set */
    int max_conflict_files; /* cap of each row's conflictFiles */
    int64_t now_ms;         /* firstSeenAt of new branches */
    const struct rv_url_policy *policy; /* checked before and while it
                                         * fetches; NULL = none */
    const char *job_id;                 /* for logs; may be NULL */
};

struct rv_branchsync_stats {
    int branches;   /* rows in the new document */
    int recomputed; /* rows computed from the object database */
    int reused;     /* rows copied from the previous document */
    int merged;     /* tree merges run; the other rows' changed paths decided */
    int64_t fetch_ms;
    int64_t compute_ms;
};

/* Initialises libgit2 once per process (from main). RV_OK or RV_ERR_GIT. */
int rv_branchsync_global_init(void);

/* Fetches the mirror (cloning it on first use; a corrupt mirror is cloned
 * again once) and computes the document. prev is the previous document or
 * NULL. On RV_OK *out is a new reference the caller releases; otherwise err
 * says what failed and *out is NULL. */
int rv_branchsync_run(const struct rv_branchsync_opts *opts, const json_t *prev,
                      json_t **out, struct rv_branchsync_stats *stats,
                      struct rv_sync_error *err);

#endif

/* The diff stat of a branch from its merge base (diff_stat), counted as
 * `git diff --shortstat` counts it: with libgit2's default Myers diff, as
 * git's default diff.algorithm is, and not the patience diff of the merge
 * check (mergecheck.c), which counts other lines (docs/api.md). Declared
 * in branchsync_private.h. */
#include <git2.h>
#include <stdbool.h>
#include <stdlib.h>

#include "worker/branchsync_private.h"

/* git's default diff.renameLimit, so diffStat counts renames as git does. */
#define RENAME_LIMIT 1000

int diff_renames(git_repository *repo, const git_tree *a, const git_tree *b,
                 const git_diff_options *dopts, unsigned int limit,
                 git_diff **out)
{
    git_diff_find_options fo;
    int rc = git_diff_tree_to_tree(out, repo, (git_tree *)a, (git_tree *)b,
                                   dopts);
    if (rc != 0)
        return rc;
    git_diff_find_options_init(&fo, GIT_DIFF_FIND_OPTIONS_VERSION);
    fo.flags = GIT_DIFF_FIND_RENAMES;
    fo.rename_threshold = RENAME_THRESHOLD;
    fo.rename_limit = limit;
    fo.metric = &git_similarity;
    return git_diff_find_similar(*out, &fo);
}

int diff_stat(git_repository *repo, const git_tree *base,
              const git_tree *tip, const struct changes *ch,
              json_t **out)
{
    int rc = 0;
    git_diff *diff = NULL;
    git_diff_stats *stats = NULL;
    git_diff_options dopts;
    size_t files = 0, additions = 0, deletions = 0;
    char **paths = NULL;
    bool narrow = !ch->incomplete && !ch->has_gitlink;
    if (narrow && ch->n == 0)
        goto done; /* an empty pathspec would mean every path */
    git_diff_options_init(&dopts, GIT_DIFF_OPTIONS_VERSION);
    if (narrow) {
        if (!(paths = malloc(ch->n * sizeof(*paths)))) {
            git_error_set_oom();
            return -1;
        }
        for (size_t i = 0; i < ch->n; i++)
            paths[i] = ch->v[i].path;
        dopts.flags |= GIT_DIFF_DISABLE_PATHSPEC_MATCH;
        dopts.pathspec.strings = paths;
        dopts.pathspec.count = ch->n;
    }
    if ((rc = diff_renames(repo, base, tip, &dopts, RENAME_LIMIT, &diff)) !=
        0)
        goto out;
    if ((rc = git_diff_get_stats(&stats, diff)) != 0)
        goto out;
    files = git_diff_stats_files_changed(stats);
    additions = git_diff_stats_insertions(stats);
    deletions = git_diff_stats_deletions(stats);
done:
    *out = json_pack("{s:I,s:I,s:I}", "files", (json_int_t)files,
                     "additions", (json_int_t)additions, "deletions",
                     (json_int_t)deletions);
    if (!*out) {
        git_error_set_oom();
        rc = -1;
    }
out:
    free(paths);
    git_diff_stats_free(stats);
    git_diff_free(diff);
    return rc;
}

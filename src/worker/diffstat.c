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

/* a - b, or 0 where b is larger (the counts come from two diffs, which
 * could judge a file binary differently). */
static size_t minus(size_t a, size_t b)
{
    return a > b ? a - b : 0;
}

/* The lines the diff from blob a at path pa to blob b at pb (NULL: none)
 * adds and deletes, added to (sign +1) or taken from (-1) the counts. */
static int count_lines(git_blob *a, const char *pa, git_blob *b,
                       const char *pb, int sign, size_t *additions,
                       size_t *deletions)
{
    git_patch *patch = NULL;
    size_t adds = 0, dels = 0;
    int rc = git_patch_from_blobs(&patch, a, pa, b, pb, NULL);
    if (rc == 0 &&
        (rc = git_patch_line_stats(NULL, &adds, &dels, patch)) == 0) {
        *additions = sign > 0 ? *additions + adds : minus(*additions, adds);
        *deletions = sign > 0 ? *deletions + dels : minus(*deletions, dels);
    }
    git_patch_free(patch);
    return rc;
}

/* Turns the counts of a diff without renames into those with the renames
 * f->gone_to pairs: each pair is one file, counted by its own diff in
 * place of a whole deletion and a whole addition. */
static int count_renames(git_repository *repo, const struct side_files *f,
                         size_t *files, size_t *additions, size_t *deletions)
{
    int rc = 0;
    for (size_t i = 0; i < f->ngone && rc == 0; i++) {
        const struct change *g = f->gone_by_name[i], *a = f->gone_to[i];
        git_blob *old = NULL, *new = NULL;
        if (!a)
            continue;
        *files = minus(*files, 1);
        if ((rc = git_blob_lookup(&old, repo, &g->old_id)) == 0 &&
            (rc = git_blob_lookup(&new, repo, &a->new_id)) == 0 &&
            (rc = count_lines(old, g->path, NULL, NULL, -1, additions,
                              deletions)) == 0 &&
            (rc = count_lines(NULL, NULL, new, a->path, -1, additions,
                              deletions)) == 0)
            rc = count_lines(old, g->path, new, a->path, 1, additions,
                             deletions);
        git_blob_free(old);
        git_blob_free(new);
    }
    return rc;
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
    struct side_files renames = {0};
    bool narrow = !ch->incomplete && !ch->has_gitlink, settled = false;
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
    /* The renames as git pairs them (renames.c) where the list is whole
     * and small enough, else libgit2's. */
    if (narrow && (side_files_index(&renames, ch, false) != 0 ||
                   (rc = side_settle(repo, &renames, &settled)) != 0)) {
        rc = rc ? rc : -1;
        goto out;
    }
    if ((rc = settled ? git_diff_tree_to_tree(&diff, repo, (git_tree *)base,
                                              (git_tree *)tip, &dopts)
                      : diff_renames(repo, base, tip, &dopts, RENAME_LIMIT,
                                     &diff)) != 0 ||
        (rc = git_diff_get_stats(&stats, diff)) != 0)
        goto out;
    files = git_diff_stats_files_changed(stats);
    additions = git_diff_stats_insertions(stats);
    deletions = git_diff_stats_deletions(stats);
    if (settled &&
        (rc = count_renames(repo, &renames, &files, &additions,
                            &deletions)) != 0)
        goto out;
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
    side_files_free(&renames);
    git_diff_stats_free(stats);
    git_diff_free(diff);
    return rc;
}

/*
 * What the files of a branch sync share, and nothing else includes:
 *   branchsync.c   the driver (rv_branchsync_run), listing the branches
 *   commitgraph.c  ahead/behind and the merge base (compare_tips)
 *   mergecheck.c   the paths a branch changed and its merge decision
 *   diffstat.c     the diff stat of a branch
 *   branchdoc.c    the rows and the document
 * Like hiredis's async_private.h: these are not part of the worker's API,
 * and may change with the files that use them.
 */
#ifndef REPOVIEW_WORKER_BRANCHSYNC_PRIVATE_H
#define REPOVIEW_WORKER_BRANCHSYNC_PRIVATE_H

#include <git2.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/branchsync.h"
#include "worker/sync.h"

/* One branch of the mirror. name is owned; reuse is borrowed from the
 * previous document (lives as long as the caller's prev). */
struct branch {
    char *name;
    git_oid oid;
    int64_t time_ms;     /* date shown in the row (author time): ordering */
    bool is_default;
    const json_t *reuse; /* previous row still valid, or NULL */
};

/* ---- branchsync.c ---- */

/* Fills err with code RV_ERR_GIT and "<what>: <libgit2's last error>." */
void set_git_error(struct rv_sync_error *err, const char *what);

/* ---- commitgraph.c ---- */

struct gnode;

/* The commit graph of one sync (commitgraph.c). Zero it but for repo
 * before first use ({.repo = repo}); graph_free releases what it grew. */
struct graph {
    git_repository *repo; /* borrowed */
    struct gnode *nodes;
    size_t n, cap;
    uint32_t *slots;      /* open addressing: node index + 1, 0 = empty */
    size_t nslots;
    uint32_t *parents;    /* parent node indexes, by gnode.parents */
    size_t nparents, cap_parents;
    uint32_t *heap;       /* the walk's queue: node indexes, newest first */
    size_t heap_n, heap_cap;
    uint32_t walk;
};

/* Releases the graph's memory (not repo) and zeroes it. */
void graph_free(struct graph *g);

/* ahead/behind and the merge base of b against def: from the graph, or
 * from libgit2 when the graph is unsure. *base_known says the merge base
 * is unique (*mb, NULL when there is none). 0 or a libgit2 error. */
int compare_tips(git_repository *repo, struct graph *g,
                 const git_oid *tip, const git_oid *def, size_t *ahead,
                 size_t *behind, bool *base_known, git_commit **mb);

/* ---- mergecheck.c ---- */

/* One path the branch changed: a leaf (file, link or submodule). A zero
 * mode means that side has nothing there; a file that became a directory
 * is its deletion and the additions of the directory's files. */
struct change {
    char *path;
    git_oid old_id, new_id;
    unsigned int old_mode, new_mode;
};

struct changes {
    struct change *v;
    size_t n, cap;
    bool incomplete; /* trees nested past TREE_DEPTH_MAX (mergecheck.c) were
                      * not walked */
    bool has_gitlink; /* a submodule entry changed (see diff_stat) */
};

/* git's rename similarity (50%) and merge.renameLimit (7000): merges pair
 * renames as `git merge-tree` does (mergecheck.c, dirrename.c). */
#define RENAME_THRESHOLD 50
#define MERGE_RENAME_LIMIT 7000

/* git's rename similarity (similarity.c), for git_diff_find_options and
 * git_merge_options: shared chunk bytes over the larger file's size, as
 * git's diffcore scores a rename. */
extern git_diff_similarity_metric git_similarity;

/* Appends a copy of path to the malloc'd array *paths of *n strings
 * (capacity *cap, grown as needed). -1 when out of memory. */
int paths_push(char ***paths, size_t *n, size_t *cap, const char *path);

/* Frees the paths and the list, and zeroes c. */
void changes_free(struct changes *c);

/* Appends to c every leaf that differs between trees a and b (NULL: an
 * empty tree) under prefix. 0 or a libgit2 error. */
int tree_changes(git_repository *repo, struct changes *c,
                 const char *prefix, const git_tree *a,
                 const git_tree *b, int depth);

/* Whether merging `theirs` into `ours` conflicts, and where: *has_conflicts
 * and files (both sides' paths of each conflict, sorted, distinct, at most
 * cap). ch holds theirs's changes since the merge base (tree_changes).
 * base_known: the merge base is the only one, and trees are the base's
 * (NULL: no base), ours's and theirs's, so the changed paths may decide
 * (merge_by_paths) or the trees are merged directly; otherwise libgit2
 * finds the bases (and builds a virtual one from several).
 * *merged counts the tree merges run (renames found as git does). Returns
 * 0 or a libgit2 error. */
int merge_conflicts(git_repository *repo, const git_commit *ours,
                    const git_commit *theirs, bool base_known,
                    const git_tree *const trees[3], const struct changes *ch,
                    int cap, bool *has_conflicts, json_t *files, int *merged);

/* ---- renames.c ---- */

/* The files one side added and deleted since the merge base, indexed by
 * name and blob id to find renames (side_follow, side_name_pairs). Zero
 * it before first use; side_files_load fills it once. */
struct side_files {
    bool loaded;
    const struct changes *ch;            /* base -> side: own, or borrowed */
    struct changes own;
    const struct change **added_by_name; /* additions by basename, path */
    const struct change **added_by_id;   /* additions by blob id, path */
    const struct change **gone_by_name;  /* deletions by basename, path */
    const struct change **gone_exact; /* by gone_by_name: its exact copy */
    const struct change **gone_to;    /* by gone_by_name: its rename found */
    size_t nadded, ngone;
    bool *claimed; /* by index in ch->v: an addition paired as a target */
    size_t scans_left; /* content comparisons side_follow may still make */
    size_t reads_left; /* and blob sizes it may still read */
    bool tried_matrix, settled; /* gone_to holds every inexact rename */
    /* Set before the first side_follow or side_settle: the paths whose
     * renames matter (merge-ort's "relevant" sources: the files the other
     * side changed), or NULL for every deletion (a diff). */
    const struct changes *relevant;
};

/* Lists the side's changes from base to side and indexes them for a
 * merge (side_files_index), unless loaded. 0 or a libgit2 error. */
int side_files_load(git_repository *repo, struct side_files *f,
                    const git_tree *base, const git_tree *side);

/* Indexes the side's changes ch (tree_changes), which must outlive f,
 * and pairs its exact renames. For a merge (merge), empty files are left
 * out, as merge-ort pairs none; a diff pairs them. -1 when out of
 * memory. */
int side_files_index(struct side_files *f, const struct changes *ch,
                     bool merge);

/* Frees what side_files_load or side_files_index made, and zeroes f. */
void side_files_free(struct side_files *f);

/* Where the side moved the file it deleted at path (blob id in the
 * base), found as git's diffcore-rename finds renames: *to is the
 * addition it became, or NULL when none is. Exact copies are paired at
 * the load (one named alike first). On the first call, a side with at
 * most a million (relevant deletion, addition) pairs and 8,000 additions
 * left is scored whole and paired best first; a larger one gives the
 * most similar unclaimed added file at RENAME_THRESHOLD or more, looked
 * for among the files of the same name first (where most renames land,
 * and where git looks first), then among all, within MERGE_RENAME_LIMIT
 * comparisons per load (past that, NULL: cannot tell). *to is then
 * claimed. 0 or a libgit2 error. */
int side_follow(git_repository *repo, struct side_files *f, const char *path,
                const git_oid *id, const struct change **to);

/* Pairs the side's renames as git's diffcore-rename does, where the side
 * is small enough: exact copies, then its basename step, then its matrix
 * of scores (at most a million pairs, 8,000 additions), best first, for
 * the relevant deletions. *settled says it was:
 * f->gone_to then holds every rename (NULL: a plain deletion). 0 or a
 * libgit2 error. */
int side_settle(git_repository *repo, struct side_files *f, bool *settled);

/* Calls pair(from, to, arg) for every deletion that has an exact copy
 * among the additions or shares its name with one addition alone (and no
 * other deletion): the renames a reorganised tree is voted from, with no
 * blob read. Stops at, and returns, pair's first non-zero. */
int side_name_pairs(const struct side_files *f,
                    int (*pair)(const char *from, const char *to, void *arg),
                    void *arg);

/* How similar blob b is to blob a (0-100, git's similarity: at least
 * RENAME_THRESHOLD makes a a rename source of b). 0 or a libgit2
 * error. */
int blob_score(git_repository *repo, const git_oid *a, const git_oid *b,
               int *score);

/* A regular or executable file's mode. */
bool is_file_mode(unsigned int mode);

/* ---- dirrename.c ---- */

/* The "CONFLICT (file location)"s of a merge, as `git merge-tree` reports
 * them: files one side added in a directory the other side renamed,
 * appended (at the path the rename gives them: git's new name) to *paths
 * (see paths_push). trees are the merge base's (NULL: none, then nothing
 * is found), ours's and theirs's; ch holds theirs's changes since the
 * base (tree_changes), ours the index of ours's (loaded here when
 * needed, and kept for the caller to free). A side's renames are
 * computed only when a directory is gone on it: by libgit2's rename
 * detection, or on a side that added more than MERGE_RENAME_LIMIT files,
 * voted from side_name_pairs. 0 or a libgit2 error. */
int dir_rename_conflicts(git_repository *repo, const git_tree *const trees[3],
                         const struct changes *ch, struct side_files *ours,
                         char ***paths, size_t *n, size_t *cap);

/* ---- diffstat.c ---- */

/* Files changed, insertions and deletions from base to tip (trees; NULL
 * base = the empty tree), as `git diff --shortstat base tip` counts them:
 * renames detected (git's default) and paired as git pairs them
 * (side_settle; libgit2's pairing where the list is not whole or the side
 * too large), binary files changed with 0/0. ch
 * lists the changed paths (tree_changes): the diff looks at those alone,
 * which finds the same renames (only added and deleted files pair up) and
 * reads no other tree. Not when the list is incomplete, nor when a
 * submodule entry changed: libgit2 matches a submodule's path as a
 * gitignore-style pattern even with GIT_DIFF_DISABLE_PATHSPEC_MATCH (a
 * name starting with '#' or ending in a space would match nothing), so
 * those diffs look at every path. *out is a new
 * {"files","additions","deletions"} object. Returns 0 or a libgit2
 * error. */
/* The diff from tree a to b (NULL: empty; dopts may be NULL) with renames
 * found as git finds them (RENAME_THRESHOLD, git_similarity, at most limit
 * sources tried per target). *out is the caller's (git_diff_free), also
 * on failure. 0 or a libgit2 error. */
int diff_renames(git_repository *repo, const git_tree *a, const git_tree *b,
                 const git_diff_options *dopts, unsigned int limit,
                 git_diff **out);

int diff_stat(git_repository *repo, const git_tree *base,
              const git_tree *tip, const struct changes *ch,
              json_t **out);

/* ---- branchdoc.c ---- */

/* A JSON string from repository bytes (author names, subjects, paths):
 * invalid UTF-8 becomes U+FFFD, ISO-8859-1 (when the commit says so) is
 * converted, and text past TEXT_MAX bytes is cut at a character boundary.
 * New reference, or NULL when out of memory. */
json_t *text_json(const char *s, bool latin1);

/* Indexes the rows of the previous document by name. New reference; its
 * values are borrowed from prev. */
json_t *index_prev(const json_t *prev);

/* Fills in which branches can reuse their previous row, and every
 * branch's date for ordering (from the previous row when reused, else from
 * the tip commit). */
int prepare_branches(git_repository *repo, struct branch *list,
                     size_t n, const struct branch *def,
                     const json_t *prev_idx, struct rv_sync_error *err);

/* Builds the document from the sorted branches (default first). Reused
 * rows are shared with prev; the others are computed. New reference or
 * NULL. */
json_t *
build_document(git_repository *repo, const struct rv_branchsync_opts *opts,
               const struct branch *list, size_t n, const json_t *prev_idx,
               struct rv_branchsync_stats *stats, struct rv_sync_error *err);

#endif

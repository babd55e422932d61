/* Directory renames in a merge (dir_rename_conflicts): a file one side
 * adds in a directory the other side renamed is, for `git merge-tree`, a
 * "CONFLICT (file location)" at the path the rename suggests. libgit2's
 * tree merge has no directory renames, so they are found here, in the
 * spirit of git's merge-ort: a side renamed directory D to E when D is
 * gone on that side and most of the files renamed out of D went to E.
 * Declarations in branchsync_private.h. */
#include <git2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/dynbuf.h"
#include "common/errors.h"
#include "worker/branchsync_private.h"

/* A directory and where one side moved it: from and to are malloc'd. */
struct dir_move {
    char *from, *to;
};

struct dir_moves {
    struct dir_move *v;
    size_t n, cap;
};

static void moves_free(struct dir_moves *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].from);
        free(m->v[i].to);
    }
    free(m->v);
    memset(m, 0, sizeof(*m));
}

/* Appends (from[0..lf), to[0..lt)). -1 when out of memory. */
static int moves_push(struct dir_moves *m, const char *from, size_t lf,
                      const char *to, size_t lt)
{
    if (m->n == m->cap &&
        rv_grow(&m->v, &m->cap, m->n + 1, sizeof(*m->v), SIZE_MAX) != RV_OK)
        return -1;
    char *f = strndup(from, lf), *t = strndup(to, lt);
    if (!f || !t) {
        free(f);
        free(t);
        return -1;
    }
    m->v[m->n].from = f;
    m->v[m->n].to = t;
    m->n++;
    return 0;
}

static int cmp_move(const void *a, const void *b)
{
    const struct dir_move *x = a, *y = b;
    int c = strcmp(x->from, y->from);
    return c ? c : strcmp(x->to, y->to);
}

/* The length of the directory part of path[0..len) (0: the root). */
static size_t dir_len(const char *path, size_t len)
{
    while (len > 0 && path[len - 1] != '/')
        len--;
    return len > 0 ? len - 1 : 0;
}

/* Whether path[0..len) is a directory in tree. 0 or a libgit2 error. */
static int dir_exists(const git_tree *tree, const char *path, size_t len,
                      bool *exists)
{
    git_tree_entry *e = NULL;
    char *dir = strndup(path, len);
    *exists = false;
    if (!dir) {
        git_error_set_oom();
        return -1;
    }
    int rc = git_tree_entry_bypath(&e, tree, dir);
    free(dir);
    if (rc == GIT_ENOTFOUND) {
        git_error_clear();
        return 0;
    }
    *exists = rc == 0 && git_tree_entry_type(e) == GIT_OBJECT_TREE;
    git_tree_entry_free(e);
    return rc;
}

/* Whether an ancestor directory of path exists in base and not in side
 * (the side removed or moved it). 0 or a libgit2 error. */
static int dir_left(const git_tree *base, const git_tree *side,
                    const char *path, bool *left)
{
    int rc = 0;
    bool in_base, in_side;
    *left = false;
    for (size_t l = dir_len(path, strlen(path)); l > 0 && !*left && rc == 0;
         l = dir_len(path, l)) {
        if ((rc = dir_exists(base, path, l, &in_base)) == 0 && in_base &&
            (rc = dir_exists(side, path, l, &in_side)) == 0)
            *left = !in_side;
    }
    return rc;
}

/* Keeps, for every directory of all (sorted), the destination most of
 * its renamed files went to; a tie is no rename (git calls it a split
 * and moves nothing). Moves the kept strings to out, frees the rest. */
static int pick_majority(struct dir_moves *all, struct dir_moves *out)
{
    if (all->n > 1)
        qsort(all->v, all->n, sizeof(*all->v), cmp_move);
    size_t i = 0;
    while (i < all->n) {
        size_t best = i, best_n = 0, j = i;
        bool tie = false;
        while (j < all->n && strcmp(all->v[j].from, all->v[i].from) == 0) {
            size_t k = j;
            while (k < all->n && !cmp_move(&all->v[k], &all->v[j]))
                k++;
            if (k - j > best_n) {
                best = j;
                best_n = k - j;
                tie = false;
            } else if (k - j == best_n) {
                tie = true;
            }
            j = k;
        }
        if (!tie) {
            if (out->n == out->cap &&
                rv_grow(&out->v, &out->cap, out->n + 1, sizeof(*out->v),
                        SIZE_MAX) != RV_OK)
                return -1;
            out->v[out->n++] = all->v[best];
            all->v[best].from = all->v[best].to = NULL;
        }
        i = j;
    }
    return 0;
}

/* Counts the file rename o -> w towards directory moves: o's directory
 * went to w's where it is gone on side, and so on up while the two paths
 * end alike ("a/x/f" -> "b/x/f" says a/x went to b/x and a to b). */
static int vote_moves(const git_tree *side, const char *o, const char *w,
                      struct dir_moves *all)
{
    int rc = 0;
    size_t lo = dir_len(o, strlen(o)), lw = dir_len(w, strlen(w));
    while (lo > 0 && lw > 0 && !(lo == lw && memcmp(o, w, lo) == 0)) {
        bool still = false;
        if ((rc = dir_exists(side, o, lo, &still)) != 0)
            break;
        if (!still && moves_push(all, o, lo, w, lw) != 0) {
            git_error_set_oom();
            return -1;
        }
        size_t po = dir_len(o, lo), pw = dir_len(w, lw);
        size_t no = lo - (po ? po + 1 : 0), nw = lw - (pw ? pw + 1 : 0);
        if (no != nw || memcmp(o + lo - no, w + lw - nw, no) != 0)
            break; /* the last names differ: the parents did not move */
        lo = po;
        lw = pw;
    }
    return rc;
}

/* vote_moves as a side_name_pairs callback. */
struct vote {
    const git_tree *side;
    struct dir_moves *all;
};

static int vote_pair(const char *from, const char *to, void *arg)
{
    struct vote *v = arg;
    return vote_moves(v->side, from, to, v->all);
}

/* The directories side renamed since base (sorted by from), voted by its
 * file renames (vote_moves). Renames found as `git merge-tree` finds
 * them (RENAME_THRESHOLD, MERGE_RENAME_LIMIT), but on a side indexed in
 * files (NULL: none) that added more files than that limit, where
 * libgit2's rename matrix would take a second a branch, from
 * side_name_pairs (exact copies and files that kept a unique name). */
static int side_dir_moves(git_repository *repo, const git_tree *base,
                          const git_tree *side, struct side_files *files,
                          struct dir_moves *out)
{
    struct dir_moves all = {0};
    git_diff *diff = NULL;
    int rc = files ? side_files_load(repo, files, base, side) : 0;
    if (rc != 0)
        goto out;
    if (files && !files->ch->incomplete && files->nadded > MERGE_RENAME_LIMIT) {
        struct vote v = {side, &all};
        rc = side_name_pairs(files, vote_pair, &v);
    } else if ((rc = diff_renames(repo, base, side, NULL, MERGE_RENAME_LIMIT,
                                  &diff)) == 0) {
        for (size_t i = 0; i < git_diff_num_deltas(diff) && rc == 0; i++) {
            const git_diff_delta *d = git_diff_get_delta(diff, i);
            if (d->status == GIT_DELTA_RENAMED)
                rc = vote_moves(side, d->old_file.path, d->new_file.path, &all);
        }
    }
    if (rc == 0 && pick_majority(&all, out) != 0) {
        git_error_set_oom();
        rc = -1;
    }
out:
    moves_free(&all);
    git_diff_free(diff);
    return rc;
}

/* Where path goes when the deepest of its directories that moves (in
 * moves, sorted) does: a malloc'd path in *out, or NULL when none moves.
 * -1 when out of memory. */
static int relocate(const struct dir_moves *moves, const char *path,
                    char **out)
{
    *out = NULL;
    for (size_t l = dir_len(path, strlen(path)); l > 0;
         l = dir_len(path, l)) {
        size_t lo = 0, hi = moves->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            const char *f = moves->v[mid].from;
            int c = strncmp(f, path, l);
            if (c == 0)
                c = f[l] ? 1 : 0;
            if (c == 0) {
                const char *to = moves->v[mid].to;
                size_t lt = strlen(to), rest = strlen(path + l);
                if (!(*out = malloc(lt + rest + 1)))
                    return -1;
                memcpy(*out, to, lt);
                memcpy(*out + lt, path + l, rest + 1);
                return 0;
            }
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    return 0;
}

/* Removes every copy of path from the n strings of paths (freed). */
static void paths_drop(char **paths, size_t *n, const char *path)
{
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(paths[i], path) == 0)
            free(paths[i]);
        else
            paths[kept++] = paths[i];
    }
    *n = kept;
}

/* Appends the new path of added to paths when moves relocates it. git
 * moves the file there and leaves nothing at added, so a conflict libgit2
 * reported at added (the other side renamed the same file too) is listed
 * at the new path alone. */
static int push_relocated(const struct dir_moves *moves, const char *added,
                          char ***paths, size_t *n, size_t *cap)
{
    char *to = NULL;
    if (relocate(moves, added, &to) != 0) {
        git_error_set_oom();
        return -1;
    }
    if (!to)
        return 0;
    paths_drop(*paths, n, added);
    int rc = paths_push(paths, n, cap, to);
    free(to);
    if (rc != 0)
        git_error_set_oom();
    return rc;
}

/* The files ours added under the moved directories of theirs_moves:
 * ours's subtree against base's at each, relocated. */
static int ours_added_under(git_repository *repo, const git_tree *base,
                            const git_tree *ours,
                            const struct dir_moves *moves, char ***paths,
                            size_t *n, size_t *cap)
{
    int rc = 0;
    for (size_t i = 0; i < moves->n && rc == 0; i++) {
        git_tree_entry *eb = NULL, *eo = NULL;
        git_tree *tb = NULL, *to = NULL;
        struct changes added = {0};
        const char *dir = moves->v[i].from;
        if (git_tree_entry_bypath(&eb, base, dir) != 0 ||
            git_tree_entry_bypath(&eo, ours, dir) != 0 ||
            git_tree_entry_type(eo) != GIT_OBJECT_TREE) {
            git_error_clear(); /* ours has no such directory: nothing */
        } else if ((rc = git_tree_lookup(&tb, repo, git_tree_entry_id(eb))) ==
                       0 &&
                   (rc = git_tree_lookup(&to, repo, git_tree_entry_id(eo))) ==
                       0 &&
                   (rc = tree_changes(repo, &added, dir, tb, to, 0)) == 0) {
            for (size_t k = 0; k < added.n && rc == 0; k++)
                if (added.v[k].old_mode == 0)
                    rc = push_relocated(moves, added.v[k].path, paths, n,
                                        cap);
        }
        changes_free(&added);
        git_tree_free(tb);
        git_tree_free(to);
        git_tree_entry_free(eb);
        git_tree_entry_free(eo);
    }
    return rc;
}

int dir_rename_conflicts(git_repository *repo, const git_tree *const trees[3],
                         const struct changes *ch,
                         struct side_files *ours_files, char ***paths,
                         size_t *n, size_t *cap)
{
    const git_tree *base = trees[0], *ours = trees[1], *theirs = trees[2];
    struct dir_moves moves = {0};
    bool ours_left = false, theirs_left = false, left;
    int rc = 0;
    if (!base)
        return 0;
    /* The renames of a side are looked for only when a directory the
     * other side added into (or, for theirs, removed from) is gone on it:
     * most branches pay a few tree lookups, no diff. */
    for (size_t i = 0; i < ch->n && rc == 0; i++) {
        const struct change *c = &ch->v[i];
        if (c->old_mode == 0 && !ours_left &&
            (rc = dir_left(base, ours, c->path, &left)) == 0)
            ours_left = left;
        if (c->new_mode == 0 && !theirs_left && rc == 0 &&
            (rc = dir_left(base, theirs, c->path, &left)) == 0)
            theirs_left = left;
    }
    if (rc == 0 && ours_left &&
        (rc = side_dir_moves(repo, base, ours, ours_files, &moves)) == 0) {
        for (size_t i = 0; i < ch->n && rc == 0; i++)
            if (ch->v[i].old_mode == 0)
                rc = push_relocated(&moves, ch->v[i].path, paths, n, cap);
    }
    moves_free(&moves);
    if (rc == 0 && theirs_left &&
        (rc = side_dir_moves(repo, base, theirs, NULL, &moves)) == 0)
        rc = ours_added_under(repo, base, ours, &moves, paths, n, cap);
    moves_free(&moves);
    return rc;
}

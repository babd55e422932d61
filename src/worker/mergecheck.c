/* What a branch changed since its merge base (tree_changes), and whether
 * merging it into the default branch conflicts (merge_conflicts): decided
 * from the changed paths where it can be, else by libgit2's tree merge.
 * Declarations in branchsync_private.h. */
#include <git2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/dynbuf.h"
#include "common/errors.h"
#include "common/util.h"
#include "worker/branchsync_private.h"

int paths_push(char ***paths, size_t *n, size_t *cap, const char *path)
{
    if ((*n == *cap &&
         rv_grow(paths, cap, *n + 1, sizeof(**paths), SIZE_MAX) != RV_OK) ||
        !((*paths)[*n] = strdup(path)))
        return -1;
    (*n)++;
    return 0;
}

/* The entry at path in tree (NULL tree = empty), or NULL when there is
 * none. 0 or a libgit2 error. *out is the caller's (git_tree_entry_free). */
static int entry_at(git_tree_entry **out, const git_tree *tree,
                    const char *path)
{
    *out = NULL;
    if (!tree)
        return 0;
    int rc = git_tree_entry_bypath(out, tree, path);
    if (rc == GIT_ENOTFOUND) {
        git_error_clear();
        return 0;
    }
    return rc;
}

static bool same_entry(const git_tree_entry *a, const git_tree_entry *b)
{
    if (!a || !b)
        return a == b;
    return git_tree_entry_filemode(a) == git_tree_entry_filemode(b) &&
           git_oid_equal(git_tree_entry_id(a), git_tree_entry_id(b));
}

/* ---- what a branch changed ----
 * The paths a branch changed since its merge base, found by walking both
 * trees and descending only into subtrees whose ids differ: a branch of a
 * few commits reads a few trees, where libgit2's tree diff reads every
 * tree and lists every file of both sides (on a 1,000-file repo that was
 * half of a sync's compute). The list then decides the merge
 * (merge_by_paths) and narrows the diff stat to these paths. */

/* The walk recurses, so it stops this deep (a hostile remote must not
 * exhaust the stack) and marks the list incomplete: that branch is then
 * merged and diffed by libgit2 as a whole. */
#define TREE_DEPTH_MAX 256

void changes_free(struct changes *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].path);
    free(c->v);
    memset(c, 0, sizeof(*c));
}

/* "prefix/name", or name at the root. malloc'd; NULL when out of memory. */
static char *path_join(const char *prefix, const char *name)
{
    size_t lp = strlen(prefix), ln = strlen(name);
    char *p = malloc(lp + ln + 2);
    if (!p)
        return NULL;
    memcpy(p, prefix, lp);
    if (lp)
        p[lp++] = '/';
    memcpy(p + lp, name, ln + 1);
    return p;
}

/* Records a change of the leaf at prefix/name: old and/or new entry (NULL:
 * none on that side). 0, or -1 when out of memory (libgit2 error set). */
static int changes_push(struct changes *c, const char *prefix,
                        const git_tree_entry *old, const git_tree_entry *new)
{
    if (c->n == c->cap &&
        rv_grow(&c->v, &c->cap, c->n + 1, sizeof(*c->v), SIZE_MAX) != RV_OK)
        goto oom;
    struct change *ch = &c->v[c->n];
    memset(ch, 0, sizeof(*ch));
    if (!(ch->path = path_join(prefix, git_tree_entry_name(old ? old : new))))
        goto oom;
    if (old) {
        git_oid_cpy(&ch->old_id, git_tree_entry_id(old));
        ch->old_mode = (unsigned int)git_tree_entry_filemode(old);
    }
    if (new) {
        git_oid_cpy(&ch->new_id, git_tree_entry_id(new));
        ch->new_mode = (unsigned int)git_tree_entry_filemode(new);
    }
    if (ch->old_mode == GIT_FILEMODE_COMMIT ||
        ch->new_mode == GIT_FILEMODE_COMMIT)
        c->has_gitlink = true;
    c->n++;
    return 0;
oom:
    git_error_set_oom();
    return -1;
}


/* Records entry e of the old (is_old) or new side, which the other side
 * lacks: a leaf as it is, a subtree as all of its leaves. */
static int changes_one_side(git_repository *repo, struct changes *c,
                            const char *prefix, const git_tree_entry *e,
                            bool is_old, int depth)
{
    if (git_tree_entry_type(e) != GIT_OBJECT_TREE)
        return changes_push(c, prefix, is_old ? e : NULL, is_old ? NULL : e);
    git_tree *t = NULL;
    char *path = path_join(prefix, git_tree_entry_name(e));
    int rc = path ? git_tree_lookup(&t, repo, git_tree_entry_id(e)) : -1;
    if (!path)
        git_error_set_oom();
    if (rc == 0)
        rc = tree_changes(repo, c, path, is_old ? t : NULL, is_old ? NULL : t,
                          depth + 1);
    git_tree_free(t);
    free(path);
    return rc;
}

int tree_changes(git_repository *repo, struct changes *c,
                 const char *prefix, const git_tree *a,
                 const git_tree *b, int depth)
{
    int rc = 0;
    if (depth > TREE_DEPTH_MAX) {
        c->incomplete = true;
        return 0;
    }
    size_t na = a ? git_tree_entrycount(a) : 0;
    size_t nb = b ? git_tree_entrycount(b) : 0;
    for (size_t i = 0; i < na && rc == 0; i++) {
        const git_tree_entry *ea = git_tree_entry_byindex(a, i);
        const git_tree_entry *eb =
            b ? git_tree_entry_byname(b, git_tree_entry_name(ea)) : NULL;
        if (eb && same_entry(ea, eb))
            continue;
        bool ta = git_tree_entry_type(ea) == GIT_OBJECT_TREE;
        bool tb = eb && git_tree_entry_type(eb) == GIT_OBJECT_TREE;
        if (ta && tb) {
            git_tree *sa = NULL, *sb = NULL;
            char *path = path_join(prefix, git_tree_entry_name(ea));
            if (!path) {
                git_error_set_oom();
                return -1;
            }
            if ((rc = git_tree_lookup(&sa, repo, git_tree_entry_id(ea))) ==
                    0 &&
                (rc = git_tree_lookup(&sb, repo, git_tree_entry_id(eb))) == 0)
                rc = tree_changes(repo, c, path, sa, sb, depth + 1);
            git_tree_free(sa);
            git_tree_free(sb);
            free(path);
        } else if (eb && !ta && !tb) {
            rc = changes_push(c, prefix, ea, eb); /* modified */
        } else {
            /* Only on the old side, or a file and a directory: the old
             * entry goes, the new one (if any) comes. */
            rc = changes_one_side(repo, c, prefix, ea, true, depth);
            if (rc == 0 && eb)
                rc = changes_one_side(repo, c, prefix, eb, false, depth);
        }
    }
    for (size_t i = 0; i < nb && rc == 0; i++) {
        const git_tree_entry *eb = git_tree_entry_byindex(b, i);
        if (!a || !git_tree_entry_byname(a, git_tree_entry_name(eb)))
            rc = changes_one_side(repo, c, prefix, eb, false, depth);
    }
    return rc;
}

/* Whether the default side (base to def) changed what lives at path: the
 * entry itself, or, where neither side has one, a parent directory that
 * became a file on the default side (a file/directory conflict). *was and
 * *now get the entries at path in base and def (NULL: none), the caller's
 * to free. 0 or a libgit2 error. */
static int default_changed(const git_tree *base, const git_tree *def,
                           const char *path, bool *changed,
                           git_tree_entry **was, git_tree_entry **now)
{
    git_tree_entry *pwas = NULL, *pnow = NULL;
    int rc;
    *changed = false;
    *was = *now = NULL;
    if ((rc = entry_at(was, base, path)) != 0 ||
        (rc = entry_at(now, def, path)) != 0)
        return rc;
    *changed = !same_entry(*was, *now);
    if (*changed || *now || *was)
        return 0;
    char prefix[4096];
    for (const char *slash = strchr(path, '/'); slash && !*changed;
         slash = strchr(slash + 1, '/')) {
        size_t len = (size_t)(slash - path);
        if (len >= sizeof(prefix)) {
            *changed = true; /* cannot tell: let the merge decide */
            break;
        }
        memcpy(prefix, path, len);
        prefix[len] = '\0';
        if ((rc = entry_at(&pnow, def, prefix)) != 0 ||
            (rc = entry_at(&pwas, base, prefix)) != 0)
            break;
        *changed = pnow && git_tree_entry_type(pnow) != GIT_OBJECT_TREE &&
                   !same_entry(pwas, pnow);
        git_tree_entry_free(pnow);
        git_tree_entry_free(pwas);
        pwas = pnow = NULL;
    }
    git_tree_entry_free(pnow);
    git_tree_entry_free(pwas);
    return rc;
}

/* The line diff of every file merge, here and in git_merge_trees. git's
 * merge-ort diffs with histogram, which libgit2 1.5 lacks; patience is the
 * algorithm histogram extends (both anchor on lines unique to each side,
 * where Myers pairs up any equal lines, such as "}" or a blank line, of
 * similar functions), and on random edits of repeated code it agrees
 * with `git merge-tree` more often than Myers does, never less (measured
 * in docs/api.md, "Branch facts"). */
#define MERGE_FILE_FLAGS GIT_MERGE_FILE_DIFF_PATIENCE

/* Whether the three versions of a file both sides modified merge cleanly,
 * by libgit2's file merge (the one git_merge_trees runs for such a path,
 * with the same flags). 0 or a libgit2 error. */
static int file_merges(git_repository *repo, const git_oid *base,
                       const git_oid *ours, const git_oid *theirs,
                       const char *path, unsigned int mode, bool *clean)
{
    int rc = 0;
    git_blob *blobs[3] = {NULL, NULL, NULL};
    const git_oid *ids[3] = {base, ours, theirs};
    git_merge_file_input in[3];
    git_merge_file_options fo;
    git_merge_file_result res;
    memset(&res, 0, sizeof(res));
    git_merge_file_options_init(&fo, GIT_MERGE_FILE_OPTIONS_VERSION);
    fo.flags = MERGE_FILE_FLAGS;
    for (int i = 0; i < 3; i++) {
        if ((rc = git_blob_lookup(&blobs[i], repo, ids[i])) != 0)
            goto out;
        git_merge_file_input_init(&in[i], GIT_MERGE_FILE_INPUT_VERSION);
        in[i].ptr = git_blob_rawcontent(blobs[i]);
        in[i].size = (size_t)git_blob_rawsize(blobs[i]);
        in[i].path = path;
        in[i].mode = mode;
    }
    if ((rc = git_merge_file(&res, &in[0], &in[1], &in[2], &fo)) == 0)
        *clean = res.automergeable != 0;
out:
    git_merge_file_result_free(&res);
    for (int i = 0; i < 3; i++)
        git_blob_free(blobs[i]);
    return rc;
}

/* One conflict of libgit2's index: its three stages, NULL where absent. */
struct conflict {
    const git_index_entry *anc, *our, *their;
};

/* Appends the paths of libgit2's conflicts (v, n of them) as `git
 * merge-tree --name-only` lists them. libgit2 splits a renamed file's
 * conflict (renamed on one side, changed or deleted on the other) in two:
 * the old path with the ancestor and the other side, and a lone stage of
 * the renaming side at the new path; git records all stages at the new
 * name, so a lone stage takes the old path's place when its content is
 * similar to that ancestor. A rename on both sides (libgit2 keeps one
 * conflict, or splits it in three: the ancestor alone and a lone stage
 * of each side) lists all three names, as git does. 0 or a libgit2
 * error. */
static int push_conflict_paths(git_repository *repo, struct conflict *v,
                               size_t nv, char ***paths, size_t *n,
                               size_t *cap)
{
    int rc = 0;
    /* Each pair reads two blobs: a branch with thousands of lone stages
     * would make this quadratic, so it compares at most as many pairs as
     * the merge's own rename limit, and past that lists libgit2's paths. */
    size_t budget = MERGE_RENAME_LIMIT;
    for (size_t i = 0; i < nv && rc == 0 && budget > 0; i++) {
        struct conflict *c = &v[i];
        if (!c->anc || (c->our && c->their))
            continue;
        /* An ancestor alone: both sides moved the file away. Renamed by
         * one and deleted by the other, git names the new path alone;
         * renamed by both (rename/rename), all three names. */
        bool both_gone = !c->our && !c->their;
        bool found_our = false, found_their = false;
        for (size_t j = 0; j < nv && rc == 0 && budget > 0; j++) {
            struct conflict *l = &v[j];
            const git_index_entry *lone = l->our ? l->our : l->their;
            int score = 0;
            if (l->anc || (l->our && l->their) || !lone ||
                (l->our && (c->our || found_our)) ||
                (l->their && (c->their || found_their)))
                continue; /* not a lone stage of a side c lacks */
            budget--;
            if ((rc = blob_score(repo, &c->anc->id, &lone->id, &score)) != 0 ||
                score < RENAME_THRESHOLD)
                continue;
            found_our = found_our || l->our;
            found_their = found_their || l->their;
            if (!both_gone || (found_our && found_their))
                break;
        }
        if (!(found_our || found_their) || (found_our && found_their))
            continue; /* no rename, or a rename/rename: all names */
        c->anc = NULL; /* listed at the new name alone */
        if (!c->our)
            c->their = NULL;
        else
            c->our = NULL;
    }
    for (size_t i = 0; i < nv && rc == 0; i++) {
        const git_index_entry *anc = v[i].anc, *our = v[i].our,
                              *their = v[i].their;
        if (anc && our && their && strcmp(our->path, their->path) != 0 &&
            strcmp(anc->path, our->path) != 0 &&
            strcmp(anc->path, their->path) != 0 &&
            paths_push(paths, n, cap, anc->path) != 0)
            goto oom;
        if ((our && paths_push(paths, n, cap, our->path) != 0) ||
            (their && paths_push(paths, n, cap, their->path) != 0) ||
            (!our && !their && anc &&
             paths_push(paths, n, cap, anc->path) != 0))
            goto oom;
    }
    return rc;
oom:
    git_error_set_oom();
    return -1;
}

/* Whether the branch has anything where the default side moved a file (a
 * rename/add clash: the tree merge decides). A file where a parent
 * directory would be is "nothing" here: that change of the branch sends
 * its own path to the tree merge. 0 or a libgit2 error. */
static int branch_has(const git_tree *branch, const char *path, bool *has)
{
    git_tree_entry *e = NULL;
    int rc = git_tree_entry_bypath(&e, branch, path);
    *has = rc == 0;
    git_tree_entry_free(e);
    if (rc == GIT_ENOTFOUND) {
        git_error_clear();
        rc = 0;
    }
    return rc;
}

/* libgit2's tree merge looks for renames only while the sides changed at
 * most MERGE_RENAME_LIMIT paths, and past that reports modify/delete
 * where git merges the edit into the moved file: merge-ort looks for
 * renames of such "relevant" files alone. merge_by_paths follows them
 * with side_follow, pairing as git pairs (renames.c); a file it cannot
 * place is left to the tree merge. */

/* One changed path's part in the merge (decide_path). */
struct path_merge {
    bool tree;      /* the tree merge must decide */
    bool merge;     /* else a file merge of these three, landing at at */
    const char *at, *apart[2]; /* or moved apart: conflicts at all three */
    git_oid base, ours, theirs;
    unsigned int mode;
};

/* What the merge does at c, a path the branch changed: nothing (the
 * default side left it alone, or made the same change), a file merge
 * (modified on both sides; modified by the branch and moved by the
 * default side; moved to the same path by both), or the tree merge.
 * def and br index the two sides' changes (loaded when a file the
 * default side deleted needs them; ch is the branch's); moved lists the
 * (sorted) paths both sides moved a file to, which pm takes as decided.
 * 0 or a libgit2 error. */
static int decide_path(git_repository *repo, const struct changes *ch,
                       const struct change *c,
                       const git_tree *const trees[3],
                       struct side_files *def, struct side_files *br,
                       char *const *moved, size_t nmoved,
                       struct path_merge *pm)
{
    git_tree_entry *was = NULL, *now = NULL;
    const struct change *to = NULL, *tb = NULL;
    bool changed = false, clash = false;
    unsigned int mode = c->new_mode ? c->new_mode : c->old_mode;
    int rc = default_changed(trees[0], trees[1], c->path, &changed, &was,
                             &now);
    memset(pm, 0, sizeof(*pm));
    pm->tree = true;
    pm->at = c->path;
    git_oid_cpy(&pm->base, &c->old_id);
    git_oid_cpy(&pm->theirs, &c->new_id);
    pm->mode = mode;
    if (rc != 0)
        goto out;
    /* A file in the base (was is that entry: c->old_id, c->old_mode)
     * that the branch kept a file of the same mode, or deleted. */
    bool file = is_file_mode(c->old_mode) && c->old_mode == mode;
    if (!changed ||
        (now && git_tree_entry_filemode(now) == (git_filemode_t)c->new_mode &&
         git_oid_equal(git_tree_entry_id(now), &c->new_id))) {
        pm->tree = false; /* left alone, or changed alike */
    } else if (c->old_mode == 0 && !was && now && nmoved > 0 &&
               bsearch(c->path, moved, nmoved, sizeof(*moved),
                       rv_cmp_str_key)) {
        pm->tree = false; /* decided with its source */
    } else if (file && now && c->new_mode == mode &&
               git_tree_entry_filemode(now) == (git_filemode_t)mode) {
        pm->tree = false; /* modified on both sides */
        pm->merge = true;
        git_oid_cpy(&pm->ours, git_tree_entry_id(now));
    } else if (file && !now &&
               (rc = side_files_load(repo, def, trees[0], trees[1])) == 0 &&
               !def->ch->incomplete &&
               (rc = side_follow(repo, def, c->path, &c->old_id, &to)) ==
                   0 &&
               to && to->new_mode == mode) {
        if (c->new_mode == mode) {
            /* Modified by the branch, moved by the default side. */
            if ((rc = branch_has(trees[2], to->path, &clash)) == 0 &&
                !clash) {
                pm->tree = false;
                pm->merge = true;
                pm->at = to->path;
                git_oid_cpy(&pm->ours, &to->new_id);
            }
        } else if (c->new_mode == 0 &&
                   (br->loaded ||
                    (rc = side_files_index(br, ch, true)) == 0) &&
                   !br->ch->incomplete &&
                   (rc = side_follow(repo, br, c->path, &c->old_id, &tb)) ==
                       0 &&
                   tb && tb->new_mode == mode &&
                   strcmp(tb->path, to->path) != 0) {
            /* Moved apart: git's rename/rename conflict, at the old path
             * and both new ones. */
            pm->tree = false;
            pm->apart[0] = to->path;
            pm->apart[1] = tb->path;
        } else if (tb && tb->new_mode == mode) {
            /* Both sides moved it to the same path (the branch's
             * addition there is then decided here). */
            pm->tree = false;
            pm->merge = true;
            pm->at = to->path;
            git_oid_cpy(&pm->ours, &to->new_id);
            git_oid_cpy(&pm->theirs, &tb->new_id);
        }
    }
out:
    git_tree_entry_free(was);
    git_tree_entry_free(now);
    return rc;
}

/* Decides the merge of the branch into the default tip from the paths the
 * branch changed since the merge base (ch, from tree_changes), without a
 * three-way merge of the trees (the costliest step of a sync), when
 * decide_path finds every path decided. Anything else (deletions,
 * additions or mode changes meeting a change of the other side,
 * file/directory clashes, a move not found) leaves *decided false: the
 * tree merge must decide. trees are the base's, the default tip's and
 * the branch's; def indexes the default side's changes (loaded here when
 * needed, the caller's to free). The branch's deletions go first, so that
 * a file both sides moved is decided at its source. When decided,
 * *has_conflicts and paths (the conflicting files, malloc'd strings
 * appended to *paths) are set; otherwise both are left as they were
 * (*has_conflicts false). 0 or a libgit2 error. */
static int merge_by_paths(git_repository *repo, const struct changes *ch,
                          const git_tree *const trees[3],
                          struct side_files *def, bool *decided,
                          bool *has_conflicts, char ***paths, size_t *npaths,
                          size_t *cap)
{
    int rc = 0;
    struct side_files br = {0};
    char **moved = NULL;
    size_t nmoved = 0, moved_cap = 0, before = *npaths;
    *decided = false;
    *has_conflicts = false;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < ch->n; i++) {
            const struct change *c = &ch->v[i];
            struct path_merge pm;
            bool clean = true;
            if ((c->new_mode == 0) != (pass == 0))
                continue;
            if ((rc = decide_path(repo, ch, c, trees, def, &br, moved, nmoved,
                                  &pm)) != 0)
                goto out;
            if (pm.tree)
                goto out; /* the tree merge decides */
            if (pm.at != c->path && c->new_mode == 0 &&
                paths_push(&moved, &nmoved, &moved_cap, pm.at) != 0)
                goto oom;
            if (pm.merge && !git_oid_equal(&pm.ours, &pm.theirs) &&
                !git_oid_equal(&pm.ours, &pm.base) &&
                !git_oid_equal(&pm.theirs, &pm.base) &&
                (rc = file_merges(repo, &pm.base, &pm.ours, &pm.theirs,
                                  pm.at, pm.mode, &clean)) != 0)
                goto out;
            if (!clean || pm.apart[0]) {
                *has_conflicts = true;
                if (paths_push(paths, npaths, cap, pm.at) != 0)
                    goto oom;
            }
            for (int k = 0; k < 2 && pm.apart[k]; k++)
                if (paths_push(paths, npaths, cap, pm.apart[k]) != 0)
                    goto oom;
        }
        if (nmoved > 1)
            qsort(moved, nmoved, sizeof(*moved), rv_cmp_str);
    }
    *decided = true;
    goto out;
oom:
    git_error_set_oom();
    rc = -1;
out:
    if (!*decided) { /* the tree merge decides alone */
        while (*npaths > before)
            free((*paths)[--*npaths]);
        *has_conflicts = false;
    }
    for (size_t i = 0; i < nmoved; i++)
        free(moved[i]);
    free(moved);
    side_files_free(&br);
    return rc;
}

/* libgit2's tree merge looks for no inexact renames once the two sides
 * changed more than MERGE_RENAME_LIMIT paths between them (its
 * target_limit counts the paths it merges), and reports a file the branch
 * edited and the default side moved as modify/delete at the old path;
 * git merges the edit into the moved file. For each such conflict of v
 * (n of them) whose move side_follow finds, the file merge at the new
 * path decides: the conflict is dropped from v (its stages cleared) and,
 * when the merge conflicts, the new path goes to *paths. ch, trees and
 * def as for merge_by_paths. 0 or a libgit2 error. */
static int follow_default_moves(git_repository *repo,
                                const struct changes *ch,
                                const git_tree *const trees[3],
                                struct side_files *def, struct conflict *v,
                                size_t nv, char ***paths, size_t *n,
                                size_t *cap)
{
    int rc = side_files_load(repo, def, trees[0], trees[1]);
    if (rc != 0 || def->ch->incomplete ||
        ch->n + def->ch->n <= MERGE_RENAME_LIMIT)
        return rc;
    for (size_t i = 0; i < nv && rc == 0; i++) {
        struct conflict *c = &v[i];
        const struct change *to = NULL;
        bool clean = false;
        if (!c->anc || c->our || !c->their || c->anc->mode != c->their->mode ||
            !is_file_mode(c->anc->mode) ||
            strcmp(c->anc->path, c->their->path) != 0 ||
            (rc = side_follow(repo, def, c->anc->path, &c->anc->id, &to)) !=
                0 ||
            !to || to->new_mode != c->anc->mode ||
            (rc = file_merges(repo, &c->anc->id, &to->new_id, &c->their->id,
                              to->path, to->new_mode, &clean)) != 0)
            continue;
        if (!clean && paths_push(paths, n, cap, to->path) != 0) {
            git_error_set_oom();
            return -1;
        }
        c->anc = c->their = NULL;
    }
    return rc;
}

int merge_conflicts(git_repository *repo, const git_commit *ours,
                    const git_commit *theirs, bool base_known,
                    const git_tree *const trees[3],
                    const struct changes *ch, int cap,
                    bool *has_conflicts, json_t *files, int *merged)
{
    int rc = 0;
    git_index *index = NULL;
    git_index_conflict_iterator *it = NULL;
    char **paths = NULL;
    size_t n = 0, paths_cap = 0, nconf = 0, conf_cap = 0;
    struct conflict *conf = NULL;
    struct side_files def = {.relevant = ch};
    bool decided = false;
    *has_conflicts = false;
    if (base_known && !ch->incomplete &&
        (rc = merge_by_paths(repo, ch, trees, &def, &decided, has_conflicts,
                             &paths, &n, &paths_cap)) != 0)
        goto out;
    if (decided)
        goto list;
    git_merge_options mo;
    git_merge_options_init(&mo, GIT_MERGE_OPTIONS_VERSION);
    mo.flags |= GIT_MERGE_FIND_RENAMES | GIT_MERGE_SKIP_REUC;
    mo.rename_threshold = RENAME_THRESHOLD;
    mo.target_limit = MERGE_RENAME_LIMIT;
    mo.metric = &git_similarity;
    mo.file_flags = MERGE_FILE_FLAGS;
    (*merged)++;
    if (base_known) {
        rc = git_merge_trees(&index, repo, trees[0], trees[1], trees[2], &mo);
    } else {
        rc = git_merge_commits(&index, repo, ours, theirs, &mo);
    }
    if (rc != 0)
        goto out;
    *has_conflicts = git_index_has_conflicts(index);
    if (!*has_conflicts)
        goto list;
    if ((rc = git_index_conflict_iterator_new(&it, index)) != 0)
        goto out;
    struct conflict c;
    while ((rc = git_index_conflict_next(&c.anc, &c.our, &c.their, it)) ==
           0) {
        if (nconf == conf_cap &&
            rv_grow(&conf, &conf_cap, nconf + 1, sizeof(*conf), SIZE_MAX) !=
                RV_OK) {
            git_error_set_oom();
            rc = -1;
            goto out;
        }
        conf[nconf++] = c;
    }
    if (rc != GIT_ITEROVER ||
        (base_known &&
         (rc = follow_default_moves(repo, ch, trees, &def, conf, nconf,
                                    &paths, &n, &paths_cap)) != 0) ||
        (rc = push_conflict_paths(repo, conf, nconf, &paths, &n,
                                  &paths_cap)) != 0)
        goto out;
    *has_conflicts = n > 0; /* what follow_default_moves left */
list:
    /* libgit2 has no directory renames: git's file location conflicts
     * are added to either decision. Not past a criss-cross (no single
     * base to compare with). */
    if (base_known) {
        size_t before = n;
        if ((rc = dir_rename_conflicts(repo, trees, ch, &def, &paths, &n,
                                       &paths_cap)) != 0)
            goto out;
        if (n > before)
            *has_conflicts = true;
    }
    if (n > 0)
        qsort(paths, n, sizeof(*paths), rv_cmp_str);
    for (size_t i = 0; i < n && (int)json_array_size(files) < cap; i++) {
        if (i > 0 && strcmp(paths[i], paths[i - 1]) == 0)
            continue;
        if (json_array_append_new(files, text_json(paths[i], false)) != 0) {
            git_error_set_oom();
            rc = -1;
            goto out;
        }
    }
out:
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    free(conf);
    side_files_free(&def);
    git_index_conflict_iterator_free(it);
    git_index_free(index);
    return rc;
}

/* Renames of one side of a merge found without libgit2's rename matrix
 * (side_files): libgit2's tree merge and diff look for renames among
 * every added and deleted file, which on a side that reorganised a tree
 * (libgit2's own main: 2,090 files deleted and 12,408 added since some
 * bases) is either skipped (past MERGE_RENAME_LIMIT) or takes a second
 * a branch. git's merge-ort looks only for what the merge needs, and
 * first at files of the same name (76-89% of renames in the projects its
 * authors measured keep their name). The index here answers those two
 * questions by binary search over the side's changed paths. Declarations
 * in branchsync_private.h. */
#include <git2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker/branchsync_private.h"

int blob_score(git_repository *repo, const git_oid *a, const git_oid *b,
               int *score)
{
    git_blob *ba = NULL, *bb = NULL;
    void *sa = NULL, *sb = NULL;
    int rc;
    *score = 0;
    if ((rc = git_blob_lookup(&ba, repo, a)) == 0 &&
        (rc = git_blob_lookup(&bb, repo, b)) == 0 &&
        (rc = git_similarity.buffer_signature(
             &sa, NULL, git_blob_rawcontent(ba), (size_t)git_blob_rawsize(ba),
             NULL)) == 0 &&
        (rc = git_similarity.buffer_signature(
             &sb, NULL, git_blob_rawcontent(bb), (size_t)git_blob_rawsize(bb),
             NULL)) == 0)
        rc = git_similarity.similarity(score, sa, sb, NULL);
    git_similarity.free_signature(sa, NULL);
    git_similarity.free_signature(sb, NULL);
    git_blob_free(ba);
    git_blob_free(bb);
    return rc;
}

void side_files_free(struct side_files *f)
{
    changes_free(&f->ch);
    free(f->added_by_name);
    free(f->added_by_id);
    free(f->gone_by_name);
    free(f->claimed);
    memset(f, 0, sizeof(*f));
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

bool is_file_mode(unsigned int mode)
{
    return mode == GIT_FILEMODE_BLOB || mode == GIT_FILEMODE_BLOB_EXECUTABLE;
}

static int cmp_change_name(const void *a, const void *b)
{
    const struct change *x = *(const struct change *const *)a,
                        *y = *(const struct change *const *)b;
    int c = strcmp(base_name(x->path), base_name(y->path));
    return c ? c : strcmp(x->path, y->path);
}

static int cmp_change_id(const void *a, const void *b)
{
    const struct change *x = *(const struct change *const *)a,
                        *y = *(const struct change *const *)b;
    int c = git_oid_cmp(&x->new_id, &y->new_id);
    return c ? c : strcmp(x->path, y->path);
}

/* The entries of v (n of them, sorted by cmp_change_name, or by
 * cmp_change_id when name is NULL) with basename name, or new blob id:
 * [*first, *first + *count). */
static void range(const struct change *const *v, size_t n, const char *name,
                  const git_oid *id, size_t *first, size_t *count)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = name ? strcmp(base_name(v[mid]->path), name)
                     : git_oid_cmp(&v[mid]->new_id, id);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < n && (name ? strcmp(base_name(v[end]->path), name) == 0
                            : git_oid_equal(&v[end]->new_id, id)))
        end++;
    *first = lo;
    *count = end - lo;
}

int side_files_load(git_repository *repo, struct side_files *f,
                    const git_tree *base, const git_tree *side)
{
    if (f->loaded)
        return 0;
    int rc = tree_changes(repo, &f->ch, "", base, side, 0);
    if (rc != 0)
        return rc;
    size_t n = f->ch.n ? f->ch.n : 1;
    f->added_by_name = calloc(n, sizeof(*f->added_by_name));
    f->added_by_id = calloc(n, sizeof(*f->added_by_id));
    f->gone_by_name = calloc(n, sizeof(*f->gone_by_name));
    f->claimed = calloc(n, sizeof(*f->claimed));
    if (!f->added_by_name || !f->added_by_id || !f->gone_by_name ||
        !f->claimed) {
        git_error_set_oom();
        return -1;
    }
    for (size_t i = 0; i < f->ch.n; i++) {
        const struct change *c = &f->ch.v[i];
        if (c->old_mode == 0 && is_file_mode(c->new_mode))
            f->added_by_name[f->nadded++] = c;
        else if (c->new_mode == 0 && is_file_mode(c->old_mode))
            f->gone_by_name[f->ngone++] = c;
    }
    memcpy(f->added_by_id, f->added_by_name,
           f->nadded * sizeof(*f->added_by_id));
    if (f->nadded > 1) {
        qsort(f->added_by_name, f->nadded, sizeof(*f->added_by_name),
              cmp_change_name);
        qsort(f->added_by_id, f->nadded, sizeof(*f->added_by_id),
              cmp_change_id);
    }
    if (f->ngone > 1)
        qsort(f->gone_by_name, f->ngone, sizeof(*f->gone_by_name),
              cmp_change_name);
    f->loaded = true;
    return 0;
}

/* An addition with blob id (unclaimed, if unclaimed), preferring one
 * named like path, or NULL. */
static const struct change *exact_target(const struct side_files *f,
                                         const char *path, const git_oid *id,
                                         bool unclaimed)
{
    size_t first, count;
    const struct change *to = NULL;
    range(f->added_by_id, f->nadded, NULL, id, &first, &count);
    for (size_t i = first; i < first + count; i++) {
        const struct change *a = f->added_by_id[i];
        if (!(unclaimed && f->claimed[a - f->ch.v]) &&
            (!to || strcmp(base_name(a->path), base_name(path)) == 0))
            to = a;
    }
    return to;
}

int side_follow(git_repository *repo, struct side_files *f, const char *path,
                const git_oid *id, const struct change **to)
{
    size_t first, count;
    int rc = 0, best = RENAME_THRESHOLD - 1;
    if (!(*to = exact_target(f, path, id, true))) {
        range(f->added_by_name, f->nadded, base_name(path), NULL, &first,
              &count);
        for (size_t i = first; i < first + count && rc == 0; i++) {
            const struct change *a = f->added_by_name[i];
            int score = 0;
            if (f->claimed[a - f->ch.v] ||
                (rc = blob_score(repo, id, &a->new_id, &score)) != 0 ||
                score <= best)
                continue;
            best = score;
            *to = a;
        }
    }
    if (rc == 0 && *to)
        f->claimed[*to - f->ch.v] = true;
    return rc;
}

int side_name_pairs(const struct side_files *f,
                    int (*pair)(const char *from, const char *to, void *arg),
                    void *arg)
{
    int rc = 0;
    for (size_t i = 0; i < f->ngone && rc == 0; i++) {
        const struct change *g = f->gone_by_name[i];
        const struct change *to = exact_target(f, g->path, &g->old_id, false);
        size_t first, count, gfirst, gcount;
        if (!to) {
            const char *name = base_name(g->path);
            range(f->gone_by_name, f->ngone, name, NULL, &gfirst, &gcount);
            range(f->added_by_name, f->nadded, name, NULL, &first, &count);
            if (gcount == 1 && count == 1)
                to = f->added_by_name[first];
        }
        if (to)
            rc = pair(g->path, to->path, arg);
    }
    return rc;
}

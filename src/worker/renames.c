/* Renames of one side of a merge or a diff, paired as git's
 * diffcore-rename pairs them (side_files): exact copies first, then files
 * whose name is unique among those left on both sides (75% alike), then
 * the best scores of the matrix of the rest, each file once. libgit2's
 * rename detection pairs the best scores only, and its tree merge looks
 * for none once a side added more than MERGE_RENAME_LIMIT files (libgit2's
 * own main: 2,090 files deleted and 12,408 added since some bases), where
 * git's merge-ort still follows the few files the merge needs. A side too
 * large for the matrix answers those files one at a time (side_follow).
 * Lookups are binary searches over the side's changed paths, sorted by
 * name and by blob id. Declarations in branchsync_private.h. */
#include <git2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/dynbuf.h"
#include "common/errors.h"
#include "worker/branchsync_private.h"

/* The signature of blob id (git_similarity), into *out. */
static int blob_signature(git_repository *repo, const git_oid *id, void **out)
{
    git_blob *b = NULL;
    int rc = git_blob_lookup(&b, repo, id);
    *out = NULL;
    if (rc == 0)
        rc = git_similarity.buffer_signature(out, NULL,
                                             git_blob_rawcontent(b),
                                             (size_t)git_blob_rawsize(b),
                                             NULL);
    git_blob_free(b);
    return rc;
}

int blob_score(git_repository *repo, const git_oid *a, const git_oid *b,
               int *score)
{
    void *sa = NULL, *sb = NULL;
    int rc;
    *score = 0;
    if ((rc = blob_signature(repo, a, &sa)) == 0 &&
        (rc = blob_signature(repo, b, &sb)) == 0)
        rc = git_similarity.similarity(score, sa, sb, NULL);
    git_similarity.free_signature(sa, NULL);
    git_similarity.free_signature(sb, NULL);
    return rc;
}

void side_files_free(struct side_files *f)
{
    changes_free(&f->own);
    free(f->added_by_name);
    free(f->added_by_id);
    free(f->gone_by_name);
    free(f->gone_to);
    free(f->gone_exact);
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

/* The unclaimed addition with blob id, preferring one named like path,
 * or NULL. */
static const struct change *exact_target(const struct side_files *f,
                                         const char *path, const git_oid *id)
{
    size_t first, count;
    const struct change *to = NULL;
    range(f->added_by_id, f->nadded, NULL, id, &first, &count);
    for (size_t i = first; i < first + count; i++) {
        const struct change *a = f->added_by_id[i];
        if (!f->claimed[a - f->ch->v] &&
            (!to || strcmp(base_name(a->path), base_name(path)) == 0))
            to = a;
    }
    return to;
}

int side_files_load(git_repository *repo, struct side_files *f,
                    const git_tree *base, const git_tree *side)
{
    if (f->loaded)
        return 0;
    int rc = tree_changes(repo, &f->own, "", base, side, 0);
    return rc != 0 ? rc : side_files_index(f, &f->own);
}

int side_files_index(struct side_files *f, const struct changes *ch)
{
    f->ch = ch;
    size_t n = ch->n ? ch->n : 1;
    f->added_by_name = calloc(n, sizeof(*f->added_by_name));
    f->added_by_id = calloc(n, sizeof(*f->added_by_id));
    f->gone_by_name = calloc(n, sizeof(*f->gone_by_name));
    f->gone_to = calloc(n, sizeof(*f->gone_to));
    f->gone_exact = calloc(n, sizeof(*f->gone_exact));
    f->claimed = calloc(n, sizeof(*f->claimed));
    if (!f->added_by_name || !f->added_by_id || !f->gone_by_name ||
        !f->gone_to || !f->gone_exact || !f->claimed) {
        git_error_set_oom();
        return -1;
    }
    for (size_t i = 0; i < ch->n; i++) {
        const struct change *c = &ch->v[i];
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
    /* git pairs exact renames first, for every deleted file: their
     * targets are then taken for the inexact ones. */
    for (size_t i = 0; i < f->ngone; i++) {
        const struct change *g = f->gone_by_name[i];
        if ((f->gone_to[i] = exact_target(f, g->path, &g->old_id)))
            f->claimed[f->gone_to[i] - ch->v] = true;
        f->gone_exact[i] = f->gone_to[i];
    }
    f->scans_left = MERGE_RENAME_LIMIT;
    f->loaded = true;
    return 0;
}

/* The size of blob id, or -1 when it cannot be read (then the scan
 * compares the contents, which reports the error). */
static int64_t blob_size(git_odb *odb, const git_oid *id)
{
    size_t len = 0;
    git_object_t type;
    if (git_odb_read_header(&len, &type, odb, id) != 0) {
        git_error_clear();
        return -1;
    }
    return (int64_t)len;
}

/* Keeps in *to the most similar of cands[0..n) to the blob of signature
 * sig and size size (-1: unknown), above *best: unclaimed, and not ruled
 * out by size alone (as git's diffcore does, and the score would: the
 * smaller under half the larger). Each comparison takes one of
 * f->scans_left; at none left *to is cleared (cannot tell). 0 or a
 * libgit2 error. */
static int most_similar(git_repository *repo, git_odb *odb,
                        struct side_files *f,
                        const struct change *const *cands, size_t n,
                        void *sig, int64_t size, int *best,
                        const struct change **to)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct change *a = cands[i];
        void *other_sig = NULL;
        int score = 0;
        if (f->claimed[a - f->ch->v])
            continue;
        int64_t other = size < 0 ? -1 : blob_size(odb, &a->new_id);
        if (other >= 0 && (size > 2 * other || other > 2 * size))
            continue;
        if (f->scans_left == 0) {
            *to = NULL;
            return 0;
        }
        f->scans_left--;
        if ((rc = blob_signature(repo, &a->new_id, &other_sig)) == 0 &&
            (rc = git_similarity.similarity(&score, sig, other_sig, NULL)) ==
                0 &&
            score > *best) {
            *best = score;
            *to = a;
        }
        git_similarity.free_signature(other_sig, NULL);
    }
    return rc;
}

/* The index in f->gone_by_name of the deletion at path, or f->ngone. */
static size_t gone_at(const struct side_files *f, const char *path)
{
    size_t first, count;
    range(f->gone_by_name, f->ngone, base_name(path), NULL, &first, &count);
    for (size_t i = first; i < first + count; i++)
        if (strcmp(f->gone_by_name[i]->path, path) == 0)
            return i;
    return f->ngone;
}

/* The matrix of a small side: every deletion left after the exact
 * renames against every unclaimed addition, at most this many pairs. */
#define MATRIX_PAIRS_MAX 1000000

/* One candidate pair of the matrix. */
struct pair_score {
    int score;
    size_t gone, added; /* indexes in gone_by_name, added_by_name */
};

static int cmp_pair_score(const void *a, const void *b)
{
    const struct pair_score *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->added != y->added)
        return x->added < y->added ? -1 : 1;
    return x->gone < y->gone ? -1 : x->gone > y->gone;
}


/* git's basename step: a deletion whose name no other remaining
 * deletion has, and exactly one unclaimed addition has, is paired with it
 * when at least BASENAME_SCORE similar. 0 or a libgit2 error. */
#define BASENAME_SCORE (RENAME_THRESHOLD + (100 - RENAME_THRESHOLD) / 2)

static int basename_step(git_repository *repo, struct side_files *f)
{
    int rc = 0;
    for (size_t i = 0; i < f->ngone && rc == 0; i++) {
        const char *name = base_name(f->gone_by_name[i]->path);
        size_t gfirst, gn, afirst, an, left = 0, free_at = 0, nfree = 0;
        int score = 0;
        if (f->gone_exact[i])
            continue;
        range(f->gone_by_name, f->ngone, name, NULL, &gfirst, &gn);
        for (size_t k = gfirst; k < gfirst + gn; k++)
            left += !f->gone_exact[k];
        range(f->added_by_name, f->nadded, name, NULL, &afirst, &an);
        for (size_t k = afirst; k < afirst + an; k++)
            if (!f->claimed[f->added_by_name[k] - f->ch->v]) {
                free_at = k;
                nfree++;
            }
        if (left != 1 || nfree != 1)
            continue;
        const struct change *a = f->added_by_name[free_at];
        if ((rc = blob_score(repo, &f->gone_by_name[i]->old_id, &a->new_id,
                             &score)) == 0 &&
            score >= BASENAME_SCORE) {
            f->gone_to[i] = a;
            f->claimed[a - f->ch->v] = true;
        }
    }
    return rc;
}

/* git's inexact rename step on a side small enough for it: scores every
 * remaining deletion against every unclaimed addition (each file signed
 * once) after its basename step, then pairs the best scores first,
 * each file once, down to
 * RENAME_THRESHOLD (diffcore-rename's matrix, without its cap of four
 * candidates per target). Sets f->settled: f->gone_to is then the whole
 * answer. A side past MATRIX_PAIRS_MAX stays unsettled. 0 or a libgit2
 * error. */
static int settle(git_repository *repo, struct side_files *f)
{
    size_t ng = 0, na = 0, np = 0, cap = 0;
    void **gsig = NULL, **asig = NULL;
    struct pair_score *pairs = NULL;
    int rc = 0;
    f->tried_matrix = true;
    for (size_t i = 0; i < f->ngone; i++)
        ng += !f->gone_to[i];
    for (size_t j = 0; j < f->nadded; j++)
        na += !f->claimed[f->added_by_name[j] - f->ch->v];
    if (ng > 0 && na > MATRIX_PAIRS_MAX / ng)
        return 0;
    if ((rc = basename_step(repo, f)) != 0)
        return rc;
    gsig = calloc(f->ngone ? f->ngone : 1, sizeof(*gsig));
    asig = calloc(f->nadded ? f->nadded : 1, sizeof(*asig));
    if (!gsig || !asig)
        goto oom;
    for (size_t i = 0; i < f->ngone && rc == 0; i++)
        if (!f->gone_to[i])
            rc = blob_signature(repo, &f->gone_by_name[i]->old_id, &gsig[i]);
    for (size_t j = 0; j < f->nadded && rc == 0; j++)
        if (!f->claimed[f->added_by_name[j] - f->ch->v])
            rc = blob_signature(repo, &f->added_by_name[j]->new_id, &asig[j]);
    for (size_t i = 0; i < f->ngone && rc == 0; i++) {
        for (size_t j = 0; gsig[i] && j < f->nadded && rc == 0; j++) {
            int score = 0;
            if (!asig[j] ||
                (rc = git_similarity.similarity(&score, gsig[i], asig[j],
                                                NULL)) != 0 ||
                score < RENAME_THRESHOLD)
                continue;
            if (np == cap && rv_grow(&pairs, &cap, np + 1, sizeof(*pairs),
                                     SIZE_MAX) != RV_OK)
                goto oom;
            pairs[np++] = (struct pair_score){score, i, j};
        }
    }
    if (rc != 0)
        goto out;
    if (np > 1)
        qsort(pairs, np, sizeof(*pairs), cmp_pair_score);
    for (size_t k = 0; k < np; k++) {
        const struct change *a = f->added_by_name[pairs[k].added];
        if (f->gone_to[pairs[k].gone] || f->claimed[a - f->ch->v])
            continue;
        f->gone_to[pairs[k].gone] = a;
        f->claimed[a - f->ch->v] = true;
    }
    f->settled = true;
    goto out;
oom:
    git_error_set_oom();
    rc = -1;
out:
    for (size_t i = 0; gsig && i < f->ngone; i++)
        git_similarity.free_signature(gsig[i], NULL);
    for (size_t j = 0; asig && j < f->nadded; j++)
        git_similarity.free_signature(asig[j], NULL);
    free(gsig);
    free(asig);
    free(pairs);
    return rc;
}

int side_settle(git_repository *repo, struct side_files *f, bool *settled)
{
    int rc = f->tried_matrix ? 0 : settle(repo, f);
    *settled = f->settled;
    return rc;
}

int side_follow(git_repository *repo, struct side_files *f, const char *path,
                const git_oid *id, const struct change **to)
{
    size_t first, count, k = gone_at(f, path);
    int rc = 0, best = RENAME_THRESHOLD - 1;
    git_odb *odb = NULL;
    *to = k < f->ngone ? f->gone_to[k] : NULL;
    if (*to)
        return 0;
    bool settled = false;
    if ((rc = side_settle(repo, f, &settled)) != 0)
        return rc;
    if (settled) {
        *to = k < f->ngone ? f->gone_to[k] : NULL;
        return 0;
    }
    /* Too large for the matrix: the most similar file of the same name,
     * else of any name, within the comparisons left. */
    void *sig = NULL;
    if ((rc = git_repository_odb(&odb, repo)) != 0 ||
        (rc = blob_signature(repo, id, &sig)) != 0)
        goto out;
    int64_t size = blob_size(odb, id);
    range(f->added_by_name, f->nadded, base_name(path), NULL, &first, &count);
    rc = most_similar(repo, odb, f, f->added_by_name + first, count, sig,
                      size, &best, to);
    if (rc == 0 && !*to)
        rc = most_similar(repo, odb, f, f->added_by_name, f->nadded, sig,
                          size, &best, to);
out:
    git_similarity.free_signature(sig, NULL);
    git_odb_free(odb);
    if (rc == 0 && *to) {
        f->claimed[*to - f->ch->v] = true;
        if (k < f->ngone)
            f->gone_to[k] = *to;
    }
    return rc;
}

int side_name_pairs(const struct side_files *f,
                    int (*pair)(const char *from, const char *to, void *arg),
                    void *arg)
{
    int rc = 0;
    for (size_t i = 0; i < f->ngone && rc == 0; i++) {
        const struct change *g = f->gone_by_name[i];
        const struct change *to = f->gone_exact[i];
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

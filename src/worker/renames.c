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
#include "common/util.h"
#include "worker/branchsync_private.h"

/* The blob sizes a side's one-file searches may read in all. */
#define READS_MAX 100000

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

/* The index in f->gone_by_name of the deletion at path, or f->ngone. */
static size_t gone_at(const struct side_files *f, const char *path)
{
    size_t lo = 0, hi = f->ngone;
    const char *name = base_name(path);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *p = f->gone_by_name[mid]->path;
        int c = strcmp(base_name(p), name);
        if (c == 0)
            c = strcmp(p, path);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return f->ngone;
}

static int cmp_change_old_id(const void *a, const void *b)
{
    const struct change *x = *(const struct change *const *)a,
                        *y = *(const struct change *const *)b;
    int c = git_oid_cmp(&x->old_id, &y->old_id);
    return c ? c : strcmp(x->path, y->path);
}

/* A group of identical files this large is paired in path order, not
 * name by name (a quadratic search). */
#define EXACT_GROUP_MAX 10000

/* git's exact step: every deletion whose blob some addition has is
 * paired with one, an addition of the same name first, each addition
 * once. gone_by_id is the deletions sorted by cmp_change_old_id. */
static void pair_exact(struct side_files *f, const struct change **gone_by_id)
{
    size_t i = 0, j = 0;
    while (i < f->ngone && j < f->nadded) {
        int c = git_oid_cmp(&gone_by_id[i]->old_id, &f->added_by_id[j]->new_id);
        if (c != 0) {
            if (c < 0)
                i++;
            else
                j++;
            continue;
        }
        size_t ie = i, je = j;
        while (ie < f->ngone &&
               git_oid_equal(&gone_by_id[ie]->old_id, &gone_by_id[i]->old_id))
            ie++;
        while (je < f->nadded && git_oid_equal(&f->added_by_id[je]->new_id,
                                               &gone_by_id[i]->old_id))
            je++;
        bool by_name = (ie - i) * (je - j) <= EXACT_GROUP_MAX;
        size_t next = j; /* past it, in path order: the first unclaimed */
        for (size_t g = i; g < ie; g++) {
            const struct change *to = NULL;
            for (size_t k = by_name ? j : next; k < je; k++) {
                const struct change *a = f->added_by_id[k];
                if (f->claimed[a - f->ch->v])
                    continue;
                if (!to)
                    to = a;
                next = k + 1;
                if (!by_name || strcmp(base_name(a->path),
                                       base_name(gone_by_id[g]->path)) == 0) {
                    to = a;
                    break;
                }
            }
            if (!to)
                break; /* every addition of this blob is taken */
            f->claimed[to - f->ch->v] = true;
            size_t at = gone_at(f, gone_by_id[g]->path);
            if (at < f->ngone)
                f->gone_to[at] = f->gone_exact[at] = to;
        }
        i = ie;
        j = je;
    }
}

int side_files_load(git_repository *repo, struct side_files *f,
                    const git_tree *base, const git_tree *side)
{
    if (f->loaded)
        return 0;
    int rc = tree_changes(repo, &f->own, "", base, side, 0);
    return rc != 0 ? rc : side_files_index(f, &f->own, true);
}

int side_files_index(struct side_files *f, const struct changes *ch,
                     bool merge)
{
    const struct change **gone_by_id = NULL;
    git_oid empty;
    f->ch = ch;
    size_t n = ch->n ? ch->n : 1;
    f->added_by_name = calloc(n, sizeof(*f->added_by_name));
    f->added_by_id = calloc(n, sizeof(*f->added_by_id));
    f->gone_by_name = calloc(n, sizeof(*f->gone_by_name));
    f->gone_to = calloc(n, sizeof(*f->gone_to));
    f->gone_exact = calloc(n, sizeof(*f->gone_exact));
    f->claimed = calloc(n, sizeof(*f->claimed));
    gone_by_id = calloc(n, sizeof(*gone_by_id));
    if (!f->added_by_name || !f->added_by_id || !f->gone_by_name ||
        !f->gone_to || !f->gone_exact || !f->claimed || !gone_by_id ||
        git_odb_hash(&empty, "", 0, GIT_OBJECT_BLOB) != 0) {
        free(gone_by_id);
        git_error_set_oom();
        return -1;
    }
    /* merge-ort never pairs an empty file (rename_empty off); git diff
     * does. */
    for (size_t i = 0; i < ch->n; i++) {
        const struct change *c = &ch->v[i];
        if (c->old_mode == 0 && is_file_mode(c->new_mode) &&
            !(merge && git_oid_equal(&c->new_id, &empty)))
            f->added_by_name[f->nadded++] = c;
        else if (c->new_mode == 0 && is_file_mode(c->old_mode) &&
                 !(merge && git_oid_equal(&c->old_id, &empty)))
            f->gone_by_name[f->ngone++] = c;
    }
    memcpy(f->added_by_id, f->added_by_name,
           f->nadded * sizeof(*f->added_by_id));
    memcpy(gone_by_id, f->gone_by_name, f->ngone * sizeof(*gone_by_id));
    if (f->nadded > 1) {
        qsort(f->added_by_name, f->nadded, sizeof(*f->added_by_name),
              cmp_change_name);
        qsort(f->added_by_id, f->nadded, sizeof(*f->added_by_id),
              cmp_change_id);
    }
    if (f->ngone > 1) {
        qsort(f->gone_by_name, f->ngone, sizeof(*f->gone_by_name),
              cmp_change_name);
        qsort(gone_by_id, f->ngone, sizeof(*gone_by_id), cmp_change_old_id);
    }
    pair_exact(f, gone_by_id);
    free(gone_by_id);
    f->scans_left = MERGE_RENAME_LIMIT;
    f->reads_left = READS_MAX;
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

/* Keeps in *to the most similar of cands[0..n) but [skip, skip_end) to
 * the blob of signature sig and size size (-1: unknown), above *best:
 * unclaimed, and not ruled out by size alone (as git's diffcore does,
 * and the score would: the smaller under half the larger). Each size
 * read takes one of f->reads_left and each comparison one of
 * f->scans_left; at none left *to is cleared (cannot tell). 0 or a
 * libgit2 error. */
static int most_similar(git_repository *repo, git_odb *odb,
                        struct side_files *f,
                        const struct change *const *cands, size_t n,
                        size_t skip, size_t skip_end, void *sig,
                        int64_t size, int *best, const struct change **to)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct change *a = cands[i];
        void *other_sig = NULL;
        int score = 0;
        if ((i >= skip && i < skip_end) || f->claimed[a - f->ch->v])
            continue;
        if (f->reads_left == 0 || f->scans_left == 0) {
            *to = NULL;
            return 0;
        }
        f->reads_left--;
        int64_t other = size < 0 ? -1 : blob_size(odb, &a->new_id);
        if (other >= 0 && ((uint64_t)size > 2 * (uint64_t)other ||
                           (uint64_t)other > 2 * (uint64_t)size))
            continue;
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

/* The matrix of a small side: every deletion left after the exact
 * renames against every unclaimed addition, at most this many pairs. */
#define MATRIX_PAIRS_MAX 1000000

/* Every unclaimed addition of a matrix is signed, for every branch that
 * needs the side: past this many, the side answers file by file. */
#define MATRIX_ADDED_MAX 8000

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

/* git's basename step: a relevant deletion (rel, by gone_by_name) whose
 * name no other remaining deletion has, and exactly one unclaimed
 * addition has, is paired with it when at least BASENAME_SCORE similar.
 * Each name is looked at once. 0 or a libgit2 error. */
#define BASENAME_SCORE (RENAME_THRESHOLD + (100 - RENAME_THRESHOLD) / 2)

static int basename_step(git_repository *repo, struct side_files *f,
                         const bool *rel)
{
    int rc = 0;
    size_t i = 0;
    while (i < f->ngone && rc == 0) {
        const char *name = base_name(f->gone_by_name[i]->path);
        size_t end = i, left = 0, only = 0, afirst, an, nfree = 0;
        const struct change *a = NULL;
        int score = 0;
        for (; end < f->ngone &&
               strcmp(base_name(f->gone_by_name[end]->path), name) == 0;
             end++)
            if (!f->gone_to[end]) {
                left++;
                only = end;
            }
        if (left == 1) {
            range(f->added_by_name, f->nadded, name, NULL, &afirst, &an);
            for (size_t k = afirst; k < afirst + an; k++)
                if (!f->claimed[f->added_by_name[k] - f->ch->v]) {
                    a = f->added_by_name[k];
                    nfree++;
                }
        }
        if (nfree == 1 && rel[only] &&
            (rc = blob_score(repo, &f->gone_by_name[only]->old_id,
                             &a->new_id, &score)) == 0 &&
            score >= BASENAME_SCORE) {
            f->gone_to[only] = a;
            f->claimed[a - f->ch->v] = true;
        }
        i = end;
    }
    return rc;
}

/* Marks in rel (by gone_by_name) the deletions f->relevant lists (all of
 * them without a list). -1 when out of memory. */
static int mark_relevant(const struct side_files *f, bool *rel)
{
    const struct changes *r = f->relevant;
    const char **paths = NULL;
    size_t n = 0;
    if (!r) {
        for (size_t i = 0; i < f->ngone; i++)
            rel[i] = true;
        return 0;
    }
    if (!(paths = calloc(r->n ? r->n : 1, sizeof(*paths))))
        return -1;
    for (size_t i = 0; i < r->n; i++)
        if (is_file_mode(r->v[i].old_mode))
            paths[n++] = r->v[i].path;
    if (n > 1)
        qsort(paths, n, sizeof(*paths), rv_cmp_str);
    for (size_t i = 0; i < f->ngone; i++)
        rel[i] = n > 0 && bsearch(f->gone_by_name[i]->path, paths, n,
                                  sizeof(*paths), rv_cmp_str_key) != NULL;
    free(paths);
    return 0;
}

/* git's inexact rename step on a side small enough for it: after its
 * basename step, scores every remaining relevant deletion (f->relevant)
 * against every unclaimed addition (each file signed once), then pairs
 * the best scores first, each file once, down to RENAME_THRESHOLD
 * (diffcore-rename's matrix, without its cap of four candidates per
 * target). Sets f->settled: f->gone_to is then the whole answer. A side
 * past MATRIX_PAIRS_MAX pairs or MATRIX_ADDED_MAX additions stays
 * unsettled. 0 or a libgit2 error. */
static int settle(git_repository *repo, struct side_files *f)
{
    size_t ng = 0, na = 0, np = 0, cap = 0;
    void **gsig = NULL, **asig = NULL;
    struct pair_score *pairs = NULL;
    bool *rel = calloc(f->ngone ? f->ngone : 1, sizeof(*rel));
    int rc = 0;
    f->tried_matrix = true;
    if (!rel || mark_relevant(f, rel) != 0)
        goto oom;
    for (size_t i = 0; i < f->ngone; i++)
        ng += !f->gone_to[i] && rel[i];
    for (size_t j = 0; j < f->nadded; j++)
        na += !f->claimed[f->added_by_name[j] - f->ch->v];
    if (ng == 0 || na == 0) {
        f->settled = true; /* nothing left to pair */
        goto out;
    }
    if (na > MATRIX_PAIRS_MAX / ng || na > MATRIX_ADDED_MAX ||
        (rc = basename_step(repo, f, rel)) != 0)
        goto out;
    gsig = calloc(f->ngone ? f->ngone : 1, sizeof(*gsig));
    asig = calloc(f->nadded ? f->nadded : 1, sizeof(*asig));
    if (!gsig || !asig)
        goto oom;
    for (size_t i = 0; i < f->ngone && rc == 0; i++)
        if (!f->gone_to[i] && rel[i])
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
    free(rel);
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
    bool settled = false;
    git_odb *odb = NULL;
    void *sig = NULL;
    *to = k < f->ngone ? f->gone_to[k] : NULL;
    if (*to || k == f->ngone)
        return 0; /* paired, or not a deletion this side pairs */
    if ((rc = side_settle(repo, f, &settled)) != 0 || settled) {
        *to = rc == 0 ? f->gone_to[k] : NULL;
        return rc;
    }
    /* Too large for the matrix: the most similar file of the same name,
     * else of any name, within the comparisons left. */
    if (f->scans_left == 0 || (rc = git_repository_odb(&odb, repo)) != 0 ||
        (rc = blob_signature(repo, id, &sig)) != 0)
        goto out;
    int64_t size = blob_size(odb, id);
    range(f->added_by_name, f->nadded, base_name(path), NULL, &first, &count);
    rc = most_similar(repo, odb, f, f->added_by_name + first, count, 0, 0,
                      sig, size, &best, to);
    if (rc == 0 && !*to)
        rc = most_similar(repo, odb, f, f->added_by_name, f->nadded, first,
                          first + count, sig, size, &best, to);
out:
    git_similarity.free_signature(sig, NULL);
    git_odb_free(odb);
    if (rc != 0)
        *to = NULL;
    if (*to) {
        f->claimed[*to - f->ch->v] = true;
        f->gone_to[k] = *to;
    }
    return rc;
}

int side_name_pairs(const struct side_files *f,
                    int (*pair)(const char *from, const char *to, void *arg),
                    void *arg)
{
    int rc = 0;
    size_t i = 0;
    while (i < f->ngone && rc == 0) {
        const char *name = base_name(f->gone_by_name[i]->path);
        size_t end = i, first, count;
        while (end < f->ngone &&
               strcmp(base_name(f->gone_by_name[end]->path), name) == 0)
            end++;
        range(f->added_by_name, f->nadded, name, NULL, &first, &count);
        for (size_t g = i; g < end && rc == 0; g++) {
            const struct change *to = f->gone_exact[g];
            if (!to && end - i == 1 && count == 1)
                to = f->added_by_name[first];
            if (to)
                rc = pair(f->gone_by_name[g]->path, to->path, arg);
        }
        i = end;
    }
    return rc;
}

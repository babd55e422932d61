/* The branches document of a branch sync: which rows of the previous
 * document are reused (prepare_branches), and the rows computed from the
 * commit graph, the merge check and the diff stat (build_document), each
 * with its tip commit's author, date and subject as JSON text.
 * Declarations in branchsync_private.h. */
#include <git2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/errors.h"
#include "common/log.h"
#include "common/util.h"
#include "worker/branchsync_private.h"

/* Author names, subjects and paths longer than this are cut (at a UTF-8
 * boundary): a document row must stay small whatever a commit says. */
#define TEXT_MAX 1024

json_t *text_json(const char *s, bool latin1)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    char *buf = malloc(3 * (n < TEXT_MAX ? n : TEXT_MAX) + 4);
    if (!buf)
        return NULL;
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (n > 0 && o < TEXT_MAX) {
        size_t k = latin1 ? 1 : rv_utf8_seq(p, n);
        if (latin1 && *p >= 0x80) {
            buf[o++] = (char)(0xc0 | (*p >> 6));
            buf[o++] = (char)(0x80 | (*p & 0x3f));
        } else if (k == 0) {
            memcpy(buf + o, "\xef\xbf\xbd", 3);
            o += 3;
            k = 1;
        } else {
            memcpy(buf + o, p, k);
            o += k;
        }
        p += k;
        n -= k;
    }
    json_t *j = json_stringn(buf, o);
    free(buf);
    return j;
}

static bool is_latin1(const char *encoding)
{
    return encoding && (!strcasecmp(encoding, "ISO-8859-1") ||
                        !strcasecmp(encoding, "latin1") ||
                        !strcasecmp(encoding, "ISO8859-1"));
}

/* True when prev_row has the shape this file writes, so it can be reused
 * as it is; *time_ms gets its commit date. A malformed row (a document from
 * an older version, say) is computed again instead. */
static bool row_reusable(const json_t *row, int64_t *time_ms)
{
    const json_t *stat = json_object_get(row, "diffStat");
    const json_t *commit = json_object_get(row, "commit");
    const json_t *unrelated = json_object_get(row, "unrelated");
    const char *date = json_string_value(json_object_get(commit, "date"));
    /* A row without "unrelated" predates it: computed again once (an
     * unrelated branch had a diff against the empty tree then). */
    return json_is_string(json_object_get(row, "name")) &&
           json_is_boolean(json_object_get(row, "isDefault")) &&
           json_is_integer(json_object_get(row, "ahead")) &&
           json_is_integer(json_object_get(row, "behind")) &&
           json_is_boolean(unrelated) &&
           json_is_boolean(json_object_get(row, "conflicts")) &&
           json_is_array(json_object_get(row, "conflictFiles")) &&
           (json_is_true(unrelated)
                ? json_is_null(stat)
                : json_is_integer(json_object_get(stat, "files")) &&
                      json_is_integer(json_object_get(stat, "additions")) &&
                      json_is_integer(json_object_get(stat, "deletions"))) &&
           json_is_string(json_object_get(commit, "author")) &&
           json_is_string(json_object_get(commit, "subject")) &&
           json_is_string(json_object_get(row, "firstSeenAt")) && date &&
           rv_parse_iso8601(date, time_ms) == 0;
}

json_t *index_prev(const json_t *prev)
{
    json_t *idx = json_object();
    const json_t *rows = prev ? json_object_get(prev, "branches") : NULL;
    size_t i;
    const json_t *row;
    if (!idx || !json_is_array(rows))
        return idx;
    json_array_foreach(rows, i, row) {
        const char *name = json_string_value(json_object_get(row, "name"));
        if (name && json_object_set(idx, name, (json_t *)row) != 0) {
            json_decref(idx);
            return NULL;
        }
    }
    return idx;
}

/* The row's "commit": author, author date (as `git log` shows it), and
 * subject (git's %s: the first paragraph of the message). New reference. */
static json_t *commit_json(const git_commit *c)
{
    char date[32];
    const git_signature *author = git_commit_author(c);
    bool latin1 = is_latin1(git_commit_message_encoding(c));
    rv_iso8601(author ? (int64_t)author->when.time * 1000 : 0, date,
               sizeof(date));
    return json_pack("{s:o,s:s,s:o}", "author",
                     text_json(author ? author->name : "", latin1), "date",
                     date, "subject",
                     text_json(git_commit_summary((git_commit *)c), latin1));
}

/* The default branch's tip and its tree, looked up by the first row that
 * needs them and shared by the rest of the document. */
struct def_objects {
    git_commit *tip;
    git_tree *tree;
};

static void def_objects_free(struct def_objects *d)
{
    git_tree_free(d->tree);
    git_commit_free(d->tip);
}

/* Computes one row from the object database against the default tip def
 * (its objects in dobj, filled when first needed); *merged counts the
 * tree merges it ran. New reference, or NULL with err filled. */
static json_t *compute_row(git_repository *repo, struct graph *g,
                           const struct branch *b, const struct branch *def,
                           struct def_objects *dobj,
                           const struct rv_branchsync_opts *opts,
                           const char *first_seen, int *merged,
                           struct rv_sync_error *err)
{
    git_commit *tip = NULL, *mb = NULL;
    git_tree *base_tree = NULL, *tip_tree = NULL;
    struct changes changes = {0};
    json_t *row = NULL, *files = json_array(), *stat = NULL;
    size_t ahead = 0, behind = 0;
    bool has_conflicts = false, base_known = false, unrelated = false;
    char sha[GIT_OID_HEXSZ + 1], base_sha[GIT_OID_HEXSZ + 1];
    git_oid_tostr(sha, sizeof(sha), &b->oid);
    git_oid_tostr(base_sha, sizeof(base_sha), &def->oid);
    if (!files) {
        rv_sync_error_set(err, RV_ERR_GIT, "Out of memory.");
        goto out;
    }
    if (git_commit_lookup(&tip, repo, &b->oid) != 0 ||
        (!dobj->tip && git_commit_lookup(&dobj->tip, repo, &def->oid) != 0)) {
        set_git_error(err, "Cannot read a branch tip");
        goto out;
    }
    if (!git_oid_equal(&b->oid, &def->oid) &&
        compare_tips(repo, g, &b->oid, &def->oid, &ahead, &behind,
                     &base_known, &mb) != 0) {
        set_git_error(err, "Cannot compare a branch with the default branch");
        goto out;
    }
    /* No merge base at all (a gh-pages branch, say): git refuses such a
     * merge, and a diff against the empty tree would list every file.
     * The row says so instead, with no conflict claim and no diff stat;
     * ahead and behind stay what `git rev-list --left-right --count`
     * says, each side's whole history. */
    unrelated = !git_oid_equal(&b->oid, &def->oid) && !mb;
    if (unrelated) {
        stat = json_null();
    } else if (ahead > 0) {
        if ((mb && git_commit_tree(&base_tree, mb) != 0) ||
            git_commit_tree(&tip_tree, tip) != 0 ||
            tree_changes(repo, &changes, "", base_tree, tip_tree, 0) != 0) {
            set_git_error(err, "Cannot diff a branch");
            goto out;
        }
        /* Only a branch that is both ahead and behind can conflict: one
         * that is just ahead fast-forwards. The trees are read once for
         * the walk, the merge and the diff stat. */
        if (behind > 0) {
            if (!dobj->tree && git_commit_tree(&dobj->tree, dobj->tip) != 0) {
                set_git_error(err, "Cannot merge a branch in memory");
                goto out;
            }
            const git_tree *trees[3] = {base_tree, dobj->tree, tip_tree};
            if (merge_conflicts(repo, dobj->tip, tip, base_known, trees,
                                &changes, opts->max_conflict_files,
                                &has_conflicts, files, merged) != 0) {
                set_git_error(err, "Cannot merge a branch in memory");
                goto out;
            }
        }
        if (diff_stat(repo, base_tree, tip_tree, &changes, &stat) != 0) {
            set_git_error(err, "Cannot diff a branch");
            goto out;
        }
    } else {
        /* Same commit, or behind only: the merge base is the tip itself. */
        stat = json_pack("{s:i,s:i,s:i}", "files", 0, "additions", 0,
                         "deletions", 0);
    }
    row = json_pack("{s:s,s:b,s:s,s:I,s:I,s:b,s:b,s:O,s:O,s:o,s:s,s:s}",
                    "name", b->name, "isDefault", b->is_default, "sha", sha,
                    "ahead", (json_int_t)ahead, "behind", (json_int_t)behind,
                    "unrelated", unrelated, "conflicts", has_conflicts,
                    "conflictFiles", files, "diffStat", stat, "commit",
                    commit_json(tip), "firstSeenAt", first_seen, "baseSha",
                    base_sha);
    if (!row)
        rv_sync_error_set(err, RV_ERR_GIT, "Out of memory building a row.");
out:
    json_decref(files);
    json_decref(stat);
    changes_free(&changes);
    git_tree_free(base_tree);
    git_tree_free(tip_tree);
    git_commit_free(tip);
    git_commit_free(mb);
    return row;
}

int prepare_branches(git_repository *repo, struct branch *list,
                     size_t n, const struct branch *def,
                     const json_t *prev_idx, struct rv_sync_error *err)
{
    char def_sha[GIT_OID_HEXSZ + 1];
    git_oid_tostr(def_sha, sizeof(def_sha), &def->oid);
    for (size_t i = 0; i < n; i++) {
        struct branch *b = &list[i];
        char sha[GIT_OID_HEXSZ + 1];
        git_oid_tostr(sha, sizeof(sha), &b->oid);
        const json_t *old = json_object_get(prev_idx, b->name);
        const char *old_sha = json_string_value(json_object_get(old, "sha"));
        const char *old_base =
            json_string_value(json_object_get(old, "baseSha"));
        if (old && old_sha && old_base && !strcmp(old_sha, sha) &&
            !strcmp(old_base, def_sha) &&
            json_is_true(json_object_get(old, "isDefault")) == b->is_default &&
            row_reusable(old, &b->time_ms)) {
            b->reuse = old;
            continue;
        }
        git_commit *c = NULL;
        if (git_commit_lookup(&c, repo, &b->oid) != 0) {
            set_git_error(err, "Cannot read a branch tip");
            return RV_ERR_GIT;
        }
        const git_signature *author = git_commit_author(c);
        b->time_ms = author ? (int64_t)author->when.time * 1000 : 0;
        git_commit_free(c);
    }
    return RV_OK;
}

json_t *build_document(git_repository *repo,
                       const struct rv_branchsync_opts *opts,
                       const struct branch *list, size_t n,
                       const json_t *prev_idx,
                       struct rv_branchsync_stats *stats,
                       struct rv_sync_error *err)
{
    const struct branch *def = &list[0];
    char def_sha[GIT_OID_HEXSZ + 1], now_iso[32];
    bool truncated = opts->max_branches > 0 && n > (size_t)opts->max_branches;
    size_t keep = truncated ? (size_t)opts->max_branches : n;
    json_t *rows = json_array(), *doc = NULL;
    struct graph g = {.repo = repo};
    struct def_objects dobj = {0};
    git_oid_tostr(def_sha, sizeof(def_sha), &def->oid);
    rv_iso8601(opts->now_ms, now_iso, sizeof(now_iso));
    if (!rows)
        goto oom;
    for (size_t i = 0; i < keep; i++) {
        const struct branch *b = &list[i];
        json_t *row;
        if (b->reuse) {
            /* Shared with the previous document, not copied: documents
             * are never changed once built (copying was a third of a
             * no-change re-sync). */
            row = json_incref((json_t *)b->reuse);
            stats->reused++;
        } else {
            const json_t *old = json_object_get(prev_idx, b->name);
            const char *seen =
                json_string_value(json_object_get(old, "firstSeenAt"));
            int64_t ignored;
            if (!seen || rv_parse_iso8601(seen, &ignored) != 0)
                seen = now_iso;
            row = compute_row(repo, &g, b, def, &dobj, opts, seen,
                              &stats->merged, err);
            if (!row) {
                json_decref(rows);
                graph_free(&g);
                def_objects_free(&dobj);
                return NULL;
            }
            stats->recomputed++;
        }
        if (json_array_append_new(rows, row) != 0)
            goto oom;
    }
    if (truncated)
        LOG(RV_LOG_WARN, opts->repo_id, opts->job_id,
            "%zu branches; keeping the first %d (REPOVIEW_MAX_BRANCHES)", n,
            opts->max_branches);
    doc = json_pack("{s:s,s:s,s:b,s:o}", "defaultBranch", def->name,
                    "defaultSha", def_sha, "truncated", truncated, "branches",
                    rows);
    if (!doc)
        goto oom;
    graph_free(&g);
    def_objects_free(&dobj);
    return doc;
oom:
    graph_free(&g);
    def_objects_free(&dobj);
    json_decref(rows);
    rv_sync_error_set(err, RV_ERR_GIT, "Out of memory building the rows.");
    return NULL;
}

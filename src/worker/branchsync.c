/* See branchsync.h. */
#include "worker/branchsync.h"

#include <git2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/log.h"
#include "common/util.h"
#include "worker/mirror.h"

/* One branch of the mirror. */
struct branch {
    char *name;
    git_oid oid;
    int64_t time_ms; /* commit time of the tip, for ordering */
    bool is_default;
};

int rv_branchsync_global_init(void)
{
    return git_libgit2_init() >= 1 ? RV_OK : RV_ERR_GIT;
}

static void git_err(struct rv_sync_error *err, const char *what)
{
    const git_error *e = git_error_last();
    rv_sync_error_set(err, "git_error", "%s: %s", what, e && e->message ? e->message : "unknown error");
}

/* A JSON string from repository bytes (author names, subjects): invalid
 * UTF-8 bytes become '?' rather than failing the sync. */
static json_t *text_json(const char *s)
{
    json_t *j = json_string(s ? s : "");
    if (j)
        return j;
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    for (unsigned char *p = (unsigned char *)copy; *p; p++)
        if (*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

static int cmp_branch(const void *a, const void *b)
{
    const struct branch *x = a, *y = b;
    if (x->is_default != y->is_default)
        return x->is_default ? -1 : 1;
    if (x->time_ms != y->time_ms)
        return x->time_ms > y->time_ms ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void free_branches(struct branch *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i].name);
    free(list);
}

/* Lists the branches (refs/heads) of the mirror. */
static int list_branches(git_repository *repo, struct branch **out, size_t *count,
                         struct rv_sync_error *err)
{
    git_branch_iterator *it = NULL;
    git_reference *ref = NULL;
    git_branch_t type;
    size_t n = 0, cap = 64;
    struct branch *list = calloc(cap, sizeof(*list));
    if (!list || git_branch_iterator_new(&it, repo, GIT_BRANCH_LOCAL) != 0) {
        free(list);
        git_err(err, "cannot list branches");
        return RV_ERR_GIT;
    }
    int rc = RV_OK;
    while (git_branch_next(&ref, &type, it) == 0) {
        const char *name = NULL;
        const git_oid *oid = git_reference_target(ref);
        git_commit *commit = NULL;
        if (git_branch_name(&name, ref) != 0 || !oid || !name) {
            git_reference_free(ref);
            continue;
        }
        json_t *probe = json_string(name);
        if (!probe) {
            LOG(RV_LOG_WARN, NULL, NULL, "skipping a branch whose name is not UTF-8");
            git_reference_free(ref);
            continue;
        }
        json_decref(probe);
        if (n == cap) {
            struct branch *bigger = realloc(list, cap * 2 * sizeof(*list));
            if (!bigger) {
                git_reference_free(ref);
                rc = RV_ERR_NOMEM;
                break;
            }
            list = bigger;
            cap *= 2;
        }
        list[n].name = strdup(name);
        git_oid_cpy(&list[n].oid, oid);
        list[n].is_default = false;
        list[n].time_ms = 0;
        if (git_commit_lookup(&commit, repo, oid) == 0) {
            list[n].time_ms = (int64_t)git_commit_time(commit) * 1000;
            git_commit_free(commit);
        }
        git_reference_free(ref);
        if (!list[n].name) {
            rc = RV_ERR_NOMEM;
            break;
        }
        n++;
    }
    git_branch_iterator_free(it);
    if (rc != RV_OK) {
        free_branches(list, n);
        rv_sync_error_set(err, "git_error", "out of memory listing branches");
        return rc;
    }
    *out = list;
    *count = n;
    return RV_OK;
}

static struct branch *find(struct branch *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].name, name) == 0)
            return &list[i];
    return NULL;
}

/* The default branch: registered, else the remote's HEAD, else main, else
 * master. NULL when none of them exists. */
static struct branch *pick_default(const struct rv_branchsync_opts *opts, struct branch *list,
                                   size_t n, const char *remote_head)
{
    if (opts->default_branch && *opts->default_branch)
        return find(list, n, opts->default_branch);
    struct branch *b = NULL;
    if (remote_head && *remote_head)
        b = find(list, n, remote_head);
    if (!b)
        b = find(list, n, "main");
    if (!b)
        b = find(list, n, "master");
    return b;
}

/* Indexes the rows of the previous document by name (borrowed rows). */
static json_t *index_prev(const json_t *prev)
{
    json_t *idx = json_object();
    const json_t *rows = prev ? json_object_get(prev, "branches") : NULL;
    size_t i;
    const json_t *row;
    if (!idx || !json_is_array(rows))
        return idx;
    json_array_foreach(rows, i, row) {
        const char *name = json_string_value(json_object_get(row, "name"));
        if (name)
            json_object_set(idx, name, (json_t *)row);
    }
    return idx;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Paths that conflict when merging `theirs` into `ours` (no working tree).
 * Sets *conflicts and fills files (sorted, capped). */
static int merge_conflicts(git_repository *repo, git_commit *ours, git_commit *theirs, int cap,
                           bool *conflicts, json_t *files)
{
    git_index *index = NULL;
    git_index_conflict_iterator *it = NULL;
    git_merge_options mo;
    git_merge_options_init(&mo, GIT_MERGE_OPTIONS_VERSION);
    int rc = git_merge_commits(&index, repo, ours, theirs, &mo);
    if (rc != 0)
        return rc;
    *conflicts = git_index_has_conflicts(index);
    if (*conflicts && git_index_conflict_iterator_new(&it, index) == 0) {
        const git_index_entry *anc, *our, *their;
        size_t n = 0, cap_paths = 16;
        char **paths = malloc(cap_paths * sizeof(*paths));
        while (paths && git_index_conflict_next(&anc, &our, &their, it) == 0) {
            const git_index_entry *e = our ? our : their ? their : anc;
            if (!e)
                continue;
            if (n == cap_paths) {
                char **bigger = realloc(paths, cap_paths * 2 * sizeof(*paths));
                if (!bigger)
                    break;
                paths = bigger;
                cap_paths *= 2;
            }
            paths[n++] = strdup(e->path);
        }
        if (paths) {
            qsort(paths, n, sizeof(*paths), cmp_str);
            for (size_t i = 0; i < n; i++) {
                bool dup = i > 0 && paths[i] && paths[i - 1] && !strcmp(paths[i], paths[i - 1]);
                if (paths[i] && !dup && (int)json_array_size(files) < cap) {
                    json_t *s = text_json(paths[i]);
                    if (s)
                        json_array_append_new(files, s);
                }
            }
            for (size_t i = 0; i < n; i++)
                free(paths[i]);
            free(paths);
        }
        git_index_conflict_iterator_free(it);
    }
    git_index_free(index);
    return 0;
}

/* Files changed, insertions and deletions from `base` (NULL = empty tree)
 * to `tip`, with rename detection as `git diff` does by default. */
static int diff_stat(git_repository *repo, git_commit *base, git_commit *tip, json_t **out)
{
    git_tree *a = NULL, *b = NULL;
    git_diff *diff = NULL;
    git_diff_stats *stats = NULL;
    int rc = 0;
    if (base)
        rc = git_commit_tree(&a, base);
    if (rc == 0)
        rc = git_commit_tree(&b, tip);
    if (rc == 0)
        rc = git_diff_tree_to_tree(&diff, repo, a, b, NULL);
    if (rc == 0) {
        git_diff_find_options fo;
        git_diff_find_options_init(&fo, GIT_DIFF_FIND_OPTIONS_VERSION);
        fo.flags = GIT_DIFF_FIND_RENAMES;
        rc = git_diff_find_similar(diff, &fo);
    }
    if (rc == 0)
        rc = git_diff_get_stats(&stats, diff);
    if (rc == 0)
        *out = json_pack("{s:I,s:I,s:I}", "files", (json_int_t)git_diff_stats_files_changed(stats),
                         "additions", (json_int_t)git_diff_stats_insertions(stats), "deletions",
                         (json_int_t)git_diff_stats_deletions(stats));
    git_diff_stats_free(stats);
    git_diff_free(diff);
    git_tree_free(a);
    git_tree_free(b);
    return rc;
}

/* Computes one row from the object database. New reference or NULL. */
static json_t *compute_row(git_repository *repo, const struct branch *b, const struct branch *def,
                           const struct rv_branchsync_opts *opts, const char *first_seen,
                           struct rv_sync_error *err)
{
    git_commit *tip = NULL, *base_tip = NULL, *mb_commit = NULL;
    json_t *row = NULL, *files = json_array(), *stat = NULL;
    size_t ahead = 0, behind = 0;
    bool conflicts = false;
    char sha[GIT_OID_HEXSZ + 1], base_sha[GIT_OID_HEXSZ + 1], date[32];
    git_oid_tostr(sha, sizeof(sha), &b->oid);
    git_oid_tostr(base_sha, sizeof(base_sha), &def->oid);
    if (!files || git_commit_lookup(&tip, repo, &b->oid) != 0 ||
        git_commit_lookup(&base_tip, repo, &def->oid) != 0) {
        git_err(err, "cannot read a branch tip");
        goto out;
    }
    if (!b->is_default && !git_oid_equal(&b->oid, &def->oid)) {
        git_oid mb;
        if (git_graph_ahead_behind(&ahead, &behind, repo, &b->oid, &def->oid) != 0) {
            git_err(err, "cannot count commits");
            goto out;
        }
        int mbrc = git_merge_base(&mb, repo, &b->oid, &def->oid);
        if (mbrc == 0 && git_commit_lookup(&mb_commit, repo, &mb) != 0) {
            git_err(err, "cannot read the merge base");
            goto out;
        }
        if (mbrc != 0 && mbrc != GIT_ENOTFOUND) {
            git_err(err, "cannot find the merge base");
            goto out;
        }
        /* A branch behind only, or fast-forwardable, merges cleanly. */
        if (ahead > 0 && behind > 0 &&
            merge_conflicts(repo, base_tip, tip, opts->max_conflict_files, &conflicts, files) != 0) {
            git_err(err, "cannot merge in memory");
            goto out;
        }
        if (diff_stat(repo, mb_commit, tip, &stat) != 0) {
            git_err(err, "cannot diff");
            goto out;
        }
    } else {
        stat = json_pack("{s:i,s:i,s:i}", "files", 0, "additions", 0, "deletions", 0);
    }
    const git_signature *author = git_commit_author(tip);
    rv_iso8601(author ? (int64_t)author->when.time * 1000 : 0, date, sizeof(date));
    json_t *commit = json_pack("{s:o,s:s,s:o}", "author", text_json(author ? author->name : ""),
                               "date", date, "subject", text_json(git_commit_summary(tip)));
    row = json_pack("{s:s,s:b,s:s,s:I,s:I,s:b,s:O,s:o,s:o,s:s,s:s}", "name", b->name,
                    "isDefault", b->is_default, "sha", sha, "ahead", (json_int_t)ahead,
                    "behind", (json_int_t)behind, "conflicts", conflicts, "conflictFiles", files,
                    "diffStat", stat, "commit", commit, "firstSeenAt", first_seen,
                    "baseSha", base_sha);
    stat = NULL; /* stolen by "o" */
    if (!row)
        rv_sync_error_set(err, "git_error", "out of memory building a branch row");
out:
    json_decref(files);
    json_decref(stat);
    git_commit_free(tip);
    git_commit_free(base_tip);
    git_commit_free(mb_commit);
    return row;
}

int rv_branchsync_run(const struct rv_branchsync_opts *opts, const json_t *prev, json_t **out,
                      struct rv_branchsync_stats *stats, struct rv_sync_error *err)
{
    git_repository *repo = NULL;
    struct branch *list = NULL;
    size_t n = 0;
    json_t *prev_idx = NULL, *rows = NULL, *doc = NULL;
    char remote_head[256];
    int rc;
    *out = NULL;
    memset(stats, 0, sizeof(*stats));
    memset(err, 0, sizeof(*err));

    struct rv_mirror_opts mo = {
        .data_dir = opts->data_dir, .repo_id = opts->repo_id, .url = opts->url,
        .github_token = opts->github_token, .timeout_s = opts->fetch_timeout_s,
        .job_id = opts->job_id,
    };
    int64_t started = rv_mono_ms();
    rc = rv_mirror_sync(&mo, &repo, remote_head, sizeof(remote_head), err);
    stats->fetch_ms = rv_mono_ms() - started;
    if (rc != RV_OK)
        return rc;
    started = rv_mono_ms();
    rc = list_branches(repo, &list, &n, err);
    if (rc != RV_OK)
        goto out;
    rows = json_array();
    prev_idx = index_prev(prev);
    if (!rows || !prev_idx) {
        rc = RV_ERR_NOMEM;
        rv_sync_error_set(err, "git_error", "out of memory");
        goto out;
    }
    if (n == 0) {
        /* An empty repository: nothing to compare, and that is fine. */
        doc = json_pack("{s:n,s:n,s:b,s:O}", "defaultBranch", "defaultSha", "truncated", 0,
                        "branches", rows);
        goto done;
    }
    struct branch *def = pick_default(opts, list, n, remote_head);
    if (!def) {
        if (opts->default_branch && *opts->default_branch)
            rv_sync_error_set(err, "no_default_branch",
                              "the default branch \"%s\" does not exist on the remote",
                              opts->default_branch);
        else
            rv_sync_error_set(err, "no_default_branch",
                              "the remote has no HEAD, main or master branch");
        rc = RV_ERR_NOT_FOUND;
        goto out;
    }
    def->is_default = true;
    char def_name[256], def_sha[GIT_OID_HEXSZ + 1];
    rv_strlcpy(def_name, def->name, sizeof(def_name));
    git_oid_tostr(def_sha, sizeof(def_sha), &def->oid);
    qsort(list, n, sizeof(*list), cmp_branch);
    def = &list[0];
    bool truncated = n > (size_t)opts->max_branches;
    size_t keep = truncated ? (size_t)opts->max_branches : n;
    char now_iso[32];
    rv_iso8601(opts->now_ms, now_iso, sizeof(now_iso));

    for (size_t i = 0; i < keep; i++) {
        const struct branch *b = &list[i];
        char sha[GIT_OID_HEXSZ + 1];
        git_oid_tostr(sha, sizeof(sha), &b->oid);
        const json_t *old = json_object_get(prev_idx, b->name);
        const char *old_sha = json_string_value(json_object_get(old, "sha"));
        const char *old_base = json_string_value(json_object_get(old, "baseSha"));
        const char *old_seen = json_string_value(json_object_get(old, "firstSeenAt"));
        json_t *row;
        if (old && old_sha && old_base && !strcmp(old_sha, sha) && !strcmp(old_base, def_sha) &&
            json_is_true(json_object_get(old, "isDefault")) == b->is_default) {
            row = json_deep_copy(old);
            stats->reused++;
        } else {
            row = compute_row(repo, b, def, opts, old_seen ? old_seen : now_iso, err);
            stats->recomputed++;
        }
        if (!row || json_array_append_new(rows, row) != 0) {
            if (!err->code[0])
                rv_sync_error_set(err, "git_error", "out of memory");
            rc = RV_ERR_GIT;
            goto out;
        }
    }
    if (truncated)
        LOG(RV_LOG_WARN, opts->repo_id, opts->job_id,
            "%zu branches; keeping the first %d (REPOVIEW_MAX_BRANCHES)", n, opts->max_branches);
    doc = json_pack("{s:s,s:s,s:b,s:O}", "defaultBranch", def_name, "defaultSha", def_sha,
                    "truncated", truncated, "branches", rows);
done:
    if (!doc) {
        rc = RV_ERR_NOMEM;
        rv_sync_error_set(err, "git_error", "out of memory");
        goto out;
    }
    stats->branches = (int)json_array_size(rows);
    stats->compute_ms = rv_mono_ms() - started;
    *out = doc;
    rc = RV_OK;
out:
    json_decref(rows);
    json_decref(prev_idx);
    free_branches(list, n);
    git_repository_free(repo);
    return rc;
}

/* See branchsync.h. The driver of a branch sync: fetch the mirror
 * (mirror.c), list its branches and pick the default one, then let
 * branchdoc.c build the document. What is computed per branch lives in
 * commitgraph.c (ahead/behind, merge base), mergecheck.c (changed paths,
 * conflicts) and diffstat.c; branchsync_private.h is what they share. */
#include "worker/branchsync.h"

#include <git2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dynbuf.h"
#include "common/errors.h"
#include "common/log.h"
#include "common/util.h"
#include "worker/branchsync_private.h"
#include "worker/gitstream.h"
#include "worker/mirror.h"

int rv_branchsync_global_init(void)
{
    if (git_libgit2_init() < 1)
        return RV_ERR_GIT;
    /* Objects are verified once, by the indexer, when a fetch brings them;
     * hashing them again on every read (libgit2's default, unlike git's)
     * costs a third of the compute time for nothing. */
    git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
    return rv_gitstream_register();
}

void set_git_error(struct rv_sync_error *err, const char *what)
{
    const git_error *e = git_error_last();
    rv_sync_error_set(err, RV_ERR_GIT, "%s: %s.", what,
                      e && e->message ? e->message : "unknown error");
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

/* Lists the branches (refs/heads) of the mirror from its refs alone (no
 * object is read). A name that is not valid UTF-8 cannot be shown in JSON:
 * it is skipped with a warning. *out is malloc'd (free_branches). */
static int list_branches(git_repository *repo,
                         const struct rv_branchsync_opts *opts,
                         struct branch **out, size_t *count,
                         struct rv_sync_error *err)
{
    int rc = RV_OK;
    git_reference_iterator *it = NULL;
    git_reference *ref = NULL;
    size_t n = 0, cap = 0;
    struct branch *list = NULL;
    *out = NULL;
    *count = 0;
    if (rv_grow(&list, &cap, 64, sizeof(*list), SIZE_MAX) != RV_OK) {
        rv_sync_error_set(err, RV_ERR_GIT, "Out of memory listing branches.");
        return RV_ERR_NOMEM;
    }
    if (git_reference_iterator_glob_new(&it, repo, "refs/heads/*") != 0) {
        set_git_error(err, "Cannot list the branches of the mirror");
        free(list);
        return RV_ERR_GIT;
    }
    int grc;
    while ((grc = git_reference_next(&ref, it)) == 0) {
        const char *full = git_reference_name(ref);
        const git_oid *oid = git_reference_target(ref); /* NULL: symbolic */
        const char *name = full + strlen("refs/heads/");
        if (!oid || rv_utf8_valid_prefix(name) != strlen(name)) {
            if (oid)
                LOG(RV_LOG_WARN, opts->repo_id, opts->job_id,
                    "skipping a branch whose name is not valid UTF-8");
            git_reference_free(ref);
            continue;
        }
        if (n == cap &&
            rv_grow(&list, &cap, n + 1, sizeof(*list), SIZE_MAX) != RV_OK) {
            git_reference_free(ref);
            rc = RV_ERR_NOMEM;
            break;
        }
        memset(&list[n], 0, sizeof(list[n]));
        list[n].name = strdup(name);
        git_oid_cpy(&list[n].oid, oid);
        git_reference_free(ref);
        if (!list[n].name) {
            rc = RV_ERR_NOMEM;
            break;
        }
        n++;
    }
    git_reference_iterator_free(it);
    if (rc == RV_OK && grc != GIT_ITEROVER) {
        set_git_error(err, "Cannot list the branches of the mirror");
        rc = RV_ERR_GIT;
    } else if (rc != RV_OK) {
        rv_sync_error_set(err, RV_ERR_GIT, "Out of memory listing branches.");
    }
    if (rc != RV_OK) {
        free_branches(list, n);
        return rc;
    }
    *out = list;
    *count = n;
    return RV_OK;
}

static struct branch *find_branch(struct branch *list, size_t n,
                                  const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].name, name) == 0)
            return &list[i];
    return NULL;
}

/* The default branch: the registered one (and nothing else when it is
 * missing), else the remote's HEAD, else main, else master. NULL when none
 * exists. Falling back from the remote's HEAD is not silent: *warning
 * gets a new {"code","message"} saying why (a HEAD naming a branch that
 * does not exist, or no HEAD said at all: git does not advertise a HEAD
 * whose branch is missing), else stays NULL. */
static struct branch *pick_default(const struct rv_branchsync_opts *opts,
                                   struct branch *list, size_t n,
                                   const char *remote_head, json_t **warning)
{
    *warning = NULL;
    if (opts->default_branch && *opts->default_branch)
        return find_branch(list, n, opts->default_branch);
    struct branch *b = NULL;
    if (remote_head && *remote_head)
        b = find_branch(list, n, remote_head);
    if (b)
        return b;
    b = find_branch(list, n, "main");
    if (!b)
        b = find_branch(list, n, "master");
    if (!b)
        return NULL;
    char msg[512];
    bool named = remote_head && *remote_head;
    if (named)
        snprintf(msg, sizeof(msg),
                 "The remote's HEAD names the branch \"%.200s\", which does "
                 "not exist; \"%s\" is shown as the default branch.",
                 remote_head, b->name);
    else
        snprintf(msg, sizeof(msg),
                 "The remote does not say which branch its HEAD is (a HEAD "
                 "naming a missing branch is not advertised); \"%s\" is "
                 "shown as the default branch.",
                 b->name);
    LOG(RV_LOG_WARN, opts->repo_id, opts->job_id, "%s", msg);
    *warning = json_pack("{s:s,s:s}", "code",
                         named ? "remote_head_missing" : "remote_head_unknown",
                         "message", msg);
    return b;
}

int rv_branchsync_run(const struct rv_branchsync_opts *opts, const json_t *prev,
                      json_t **out, struct rv_branchsync_stats *stats,
                      struct rv_sync_error *err)
{
    int rc = RV_OK;
    git_repository *repo = NULL;
    struct branch *list = NULL;
    size_t n = 0;
    json_t *prev_idx = NULL, *doc = NULL, *warning = NULL;
    char remote_head[256];
    *out = NULL;
    memset(stats, 0, sizeof(*stats));
    memset(err, 0, sizeof(*err));

    struct rv_mirror_opts mo = {
        .data_dir = opts->data_dir,
        .repo_id = opts->repo_id,
        .url = opts->url,
        .github_token = opts->github_token,
        .github_host = opts->github_host,
        .timeout_s = opts->fetch_timeout_s,
        .policy = opts->policy,
        .job_id = opts->job_id,
    };
    int64_t started = rv_mono_ms();
    rc = rv_mirror_sync(&mo, &repo, remote_head, sizeof(remote_head), err);
    stats->fetch_ms = rv_mono_ms() - started;
    if (rc != RV_OK)
        return rc;
    started = rv_mono_ms();
    if ((rc = list_branches(repo, opts, &list, &n, err)) != RV_OK)
        goto out;
    if (n == 0) {
        /* An empty repository: nothing to compare, and that is fine; the
         * overview shows no branches until something is pushed. */
        doc = json_pack("{s:n,s:n,s:b,s:[]}", "defaultBranch", "defaultSha",
                        "truncated", 0, "branches");
        if (!doc) {
            rv_sync_error_set(err, RV_ERR_GIT, "Out of memory.");
            rc = RV_ERR_NOMEM;
        }
        goto out;
    }
    struct branch *def = pick_default(opts, list, n, remote_head, &warning);
    if (!def) {
        if (opts->default_branch && *opts->default_branch)
            rv_sync_error_set(err, RV_ERR_NO_DEFAULT_BRANCH,
                              "The default branch \"%s\" does not exist on "
                              "the remote.",
                              opts->default_branch);
        else
            rv_sync_error_set(err, RV_ERR_NO_DEFAULT_BRANCH,
                              "The remote has no HEAD branch, no main and no "
                              "master; register a default branch.");
        rc = RV_ERR_NOT_FOUND;
        goto out;
    }
    def->is_default = true;
    if (!(prev_idx = index_prev(prev))) {
        rv_sync_error_set(err, RV_ERR_GIT, "Out of memory.");
        rc = RV_ERR_NOMEM;
        goto out;
    }
    if ((rc = prepare_branches(repo, list, n, def, prev_idx, err)) != RV_OK)
        goto out;
    qsort(list, n, sizeof(*list), cmp_branch);
    if (!(doc = build_document(repo, opts, list, n, prev_idx, stats, err))) {
        rc = RV_ERR_GIT;
    } else if (json_object_set_new(doc, "warnings",
                                   warning ? json_pack("[O]", warning)
                                           : json_array()) != 0) {
        rv_sync_error_set(err, RV_ERR_GIT, "Out of memory.");
        rc = RV_ERR_NOMEM;
    }
out:
    json_decref(warning);
    if (rc == RV_OK) {
        stats->branches =
            (int)json_array_size(json_object_get(doc, "branches"));
        stats->compute_ms = rv_mono_ms() - started;
        *out = doc;
    } else {
        json_decref(doc);
    }
    json_decref(prev_idx);
    free_branches(list, n);
    git_repository_free(repo);
    return rc;
}

/* See mirror.h. */
#define _XOPEN_SOURCE 700
#include "worker/mirror.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/log.h"
#include "common/util.h"
#include "worker/branchsync.h"

#define FETCH_REFSPEC "+refs/heads/*:refs/heads/*"
/* A partial clone older than this is abandoned and removed by the GC. */
#define STALE_TMP_SECONDS 3600

/* Per-fetch state handed to libgit2's callbacks. */
struct fetch_ctx {
    int64_t deadline_ms; /* monotonic */
    bool timed_out;
    const char *token;
    int cred_calls;
    bool auth_tried;
};

int rv_mirror_path(const char *data_dir, const char *repo_id, char *buf, size_t size)
{
    if (!rv_repo_id_valid(repo_id))
        return -1;
    int n = snprintf(buf, size, "%s/mirrors/%s.git", data_dir, repo_id);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return (flag == FTW_DP ? rmdir(path) : unlink(path)) == 0 || errno == ENOENT ? 0 : -1;
}

int rv_mirror_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int make_dir(const char *path)
{
    char buf[4096];
    if (rv_strlcpy(buf, path, sizeof(buf)) != 0)
        return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static bool past_deadline(struct fetch_ctx *ctx)
{
    if (rv_mono_ms() > ctx->deadline_ms) {
        ctx->timed_out = true;
        return true;
    }
    return false;
}

static int on_transfer(const git_indexer_progress *stats, void *payload)
{
    (void)stats;
    return past_deadline(payload) ? -1 : 0;
}

static int on_sideband(const char *str, int len, void *payload)
{
    (void)str;
    (void)len;
    return past_deadline(payload) ? -1 : 0;
}

static int on_update_tips(const char *refname, const git_oid *a, const git_oid *b, void *payload)
{
    (void)refname;
    (void)a;
    (void)b;
    return past_deadline(payload) ? -1 : 0;
}

/* Credentials: the GitHub token for HTTPS (as x-access-token), the SSH
 * agent for ssh. Each is offered once, so a refusal ends the fetch with an
 * authentication error rather than a loop. */
static int on_credentials(git_credential **out, const char *url, const char *username,
                          unsigned int allowed, void *payload)
{
    (void)url;
    struct fetch_ctx *ctx = payload;
    if (ctx->cred_calls++ > 0) {
        ctx->auth_tried = true;
        git_error_set_str(GIT_ERROR_NET, "authentication failed");
        return GIT_EAUTH;
    }
    if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && ctx->token && *ctx->token)
        return git_credential_userpass_plaintext_new(out, "x-access-token", ctx->token);
    if (allowed & GIT_CREDENTIAL_SSH_KEY)
        return git_credential_ssh_key_from_agent(out, username ? username : "git");
    if (allowed & GIT_CREDENTIAL_USERNAME)
        return git_credential_username_new(out, username ? username : "git");
    ctx->auth_tried = true;
    git_error_set_str(GIT_ERROR_NET, "the remote asks for credentials and none are configured");
    return GIT_EAUTH;
}

/* Turns the last libgit2 error into a sync error. */
static void git_failure(struct rv_sync_error *err, int code, const struct fetch_ctx *ctx,
                        const char *url, const char *what)
{
    const git_error *e = git_error_last();
    char shown[2100];
    rv_url_strip_credentials(url, shown, sizeof(shown));
    const char *msg = e && e->message ? e->message : "unknown error";
    if (ctx && ctx->timed_out) {
        rv_sync_error_set(err, "timeout", "%s %s took longer than the fetch timeout", what, shown);
    } else if (code == GIT_EAUTH || (ctx && ctx->auth_tried) ||
               (e && e->klass == GIT_ERROR_SSH && strstr(msg, "auth"))) {
        rv_sync_error_set(err, "auth_failed", "%s %s: authentication failed: %s", what, shown, msg);
    } else if ((e && (e->klass == GIT_ERROR_NET || e->klass == GIT_ERROR_SSH ||
                      e->klass == GIT_ERROR_HTTP || e->klass == GIT_ERROR_OS)) ||
               code == GIT_ENOTFOUND) {
        rv_sync_error_set(err, "unreachable", "%s %s: %s", what, shown, msg);
    } else {
        rv_sync_error_set(err, "git_error", "%s %s: %s", what, shown, msg);
    }
}

/* The remote URL as libgit2 wants it: plain paths become file:// URLs. */
static void remote_url(const char *url, char *buf, size_t size)
{
    if (url[0] == '/')
        snprintf(buf, size, "file://%s", url);
    else
        snprintf(buf, size, "%s", url);
}

/* Connects, learns the remote HEAD, downloads, updates tips and prunes. */
static int fetch(git_repository *repo, const struct rv_mirror_opts *opts, char *remote_head,
                 size_t headlen, struct rv_sync_error *err)
{
    git_remote *remote = NULL;
    git_buf head = {NULL, 0, 0};
    struct fetch_ctx ctx = {
        .deadline_ms = rv_mono_ms() + (int64_t)opts->timeout_s * 1000,
        .token = opts->github_token,
    };
    char url[2200];
    remote_url(opts->url, url, sizeof(url));
    int rc = git_remote_lookup(&remote, repo, "origin");
    if (rc == 0 && strcmp(git_remote_url(remote), url) != 0) {
        /* The registered URL changed (re-registered): follow it. */
        git_remote_free(remote);
        remote = NULL;
        rc = git_remote_set_url(repo, "origin", url);
        if (rc == 0)
            rc = git_remote_lookup(&remote, repo, "origin");
    }
    if (rc != 0) {
        git_failure(err, rc, NULL, opts->url, "cannot open the mirror of");
        goto out;
    }
    git_remote_callbacks cbs;
    git_remote_init_callbacks(&cbs, GIT_REMOTE_CALLBACKS_VERSION);
    cbs.credentials = on_credentials;
    cbs.transfer_progress = on_transfer;
    cbs.sideband_progress = on_sideband;
    cbs.update_tips = on_update_tips;
    cbs.payload = &ctx;
    rc = git_remote_connect(remote, GIT_DIRECTION_FETCH, &cbs, NULL, NULL);
    if (rc != 0) {
        git_failure(err, rc, &ctx, opts->url, "cannot reach");
        goto out;
    }
    remote_head[0] = '\0';
    if (git_remote_default_branch(&head, remote) == 0 &&
        strncmp(head.ptr, "refs/heads/", 11) == 0)
        rv_strlcpy(remote_head, head.ptr + 11, headlen);
    git_fetch_options fo;
    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    fo.callbacks = cbs;
    fo.prune = GIT_FETCH_PRUNE;
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    char *spec = FETCH_REFSPEC;
    git_strarray refspecs = {&spec, 1};
    rc = git_remote_download(remote, &refspecs, &fo);
    if (rc == 0)
        rc = git_remote_update_tips(remote, &cbs, 0, GIT_REMOTE_DOWNLOAD_TAGS_NONE, NULL);
    if (rc == 0)
        rc = git_remote_prune(remote, &cbs);
    if (rc != 0)
        git_failure(err, rc, &ctx, opts->url, "cannot fetch");
    git_remote_disconnect(remote);
out:
    git_buf_dispose(&head);
    git_remote_free(remote);
    return rc == 0 ? RV_OK : RV_ERR_GIT;
}

/* Creates an empty bare mirror in a temporary directory and renames it into
 * place once the first fetch succeeded, so a half clone is never used. */
static int clone_mirror(const struct rv_mirror_opts *opts, const char *path, git_repository **out,
                        char *remote_head, size_t headlen, struct rv_sync_error *err)
{
    char tmp[4200], url[2200];
    snprintf(tmp, sizeof(tmp), "%s/mirrors/.tmp-%s-%ld", opts->data_dir, opts->repo_id,
             (long)getpid());
    rv_mirror_remove_tree(tmp);
    git_repository *repo = NULL;
    git_remote *remote = NULL;
    remote_url(opts->url, url, sizeof(url));
    int rc = git_repository_init(&repo, tmp, 1);
    if (rc == 0)
        rc = git_remote_create_with_fetchspec(&remote, repo, "origin", url, FETCH_REFSPEC);
    git_remote_free(remote);
    if (rc != 0) {
        git_failure(err, rc, NULL, opts->url, "cannot create a mirror of");
        goto fail;
    }
    if (fetch(repo, opts, remote_head, headlen, err) != RV_OK)
        goto fail;
    git_repository_free(repo);
    repo = NULL;
    if (rename(tmp, path) != 0) {
        rv_sync_error_set(err, "git_error", "cannot move the new mirror into place: %s",
                          strerror(errno));
        goto fail;
    }
    if (git_repository_open_bare(out, path) != 0) {
        git_failure(err, -1, NULL, opts->url, "cannot open the new mirror of");
        return RV_ERR_GIT;
    }
    return RV_OK;
fail:
    git_repository_free(repo);
    rv_mirror_remove_tree(tmp);
    return RV_ERR_GIT;
}

int rv_mirror_sync(const struct rv_mirror_opts *opts, git_repository **repo, char *remote_head,
                   size_t headlen, struct rv_sync_error *err)
{
    char path[4096], dir[4096];
    *repo = NULL;
    remote_head[0] = '\0';
    if (rv_mirror_path(opts->data_dir, opts->repo_id, path, sizeof(path)) != 0) {
        rv_sync_error_set(err, "git_error", "invalid repo id for a mirror");
        return RV_ERR_INVALID;
    }
    snprintf(dir, sizeof(dir), "%s/mirrors", opts->data_dir);
    if (make_dir(dir) != 0) {
        rv_sync_error_set(err, "git_error", "cannot create %s: %s", dir, strerror(errno));
        return RV_ERR_IO;
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return clone_mirror(opts, path, repo, remote_head, headlen, err);

    int rc = git_repository_open_bare(repo, path);
    if (rc == 0) {
        rc = fetch(*repo, opts, remote_head, headlen, err);
        if (rc == RV_OK)
            return RV_OK;
        /* Network and credential failures say nothing about the mirror. */
        if (!strcmp(err->code, "unreachable") || !strcmp(err->code, "auth_failed") ||
            !strcmp(err->code, "timeout")) {
            git_repository_free(*repo);
            *repo = NULL;
            return rc;
        }
        git_repository_free(*repo);
        *repo = NULL;
    }
    LOG(RV_LOG_WARN, opts->repo_id, opts->job_id, "mirror looks corrupt; cloning it again");
    if (rv_mirror_remove_tree(path) != 0) {
        rv_sync_error_set(err, "git_error", "cannot remove the corrupt mirror: %s", strerror(errno));
        return RV_ERR_IO;
    }
    return clone_mirror(opts, path, repo, remote_head, headlen, err);
}

static bool kept(const char *id, const char *const *keep, size_t nkeep)
{
    for (size_t i = 0; i < nkeep; i++)
        if (strcmp(id, keep[i]) == 0)
            return true;
    return false;
}

int rv_mirror_gc(const char *data_dir, const char *const *keep, size_t nkeep)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/mirrors", data_dir);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? RV_OK : RV_ERR_IO;
    int rc = RV_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[4400];
        const char *name = e->d_name;
        if (!strcmp(name, ".") || !strcmp(name, ".."))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        bool remove = false;
        if (strncmp(name, ".tmp-", 5) == 0) {
            struct stat st;
            remove = stat(path, &st) == 0 && time(NULL) - st.st_mtime > STALE_TMP_SECONDS;
        } else {
            size_t n = strlen(name);
            if (n > 4 && strcmp(name + n - 4, ".git") == 0) {
                char id[128];
                snprintf(id, sizeof(id), "%.*s", (int)(n - 4), name);
                remove = rv_repo_id_valid(id) && !kept(id, keep, nkeep);
            }
        }
        if (remove) {
            LOG(RV_LOG_INFO, NULL, NULL, "removing mirror %s", name);
            if (rv_mirror_remove_tree(path) != 0)
                rc = RV_ERR_IO;
        }
    }
    closedir(d);
    return rc;
}

/* See mirror.h. The fetch: the URL policy checked before it, the
 * credentials and progress callbacks libgit2 calls during it, what its
 * failure means, the refs it writes, the first clone and rv_mirror_sync.
 * The mirrors' directories (names, removal, the GC walk) are managed in
 * mirrordir.c. */
#define _XOPEN_SOURCE 700
#include "worker/mirror.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/log.h"
#include "common/urlpolicy.h"
#include "common/util.h"
#include "worker/gitstream.h"
#include "worker/mirror_private.h"

#define FETCH_REFSPEC "+refs/heads/*:refs/heads/*"
#define HEAD_CONFIG_KEY "repoview.remotehead"
#define URL_MAX 2200

/* Per-fetch state handed to libgit2's callbacks; lives on fetch()'s stack
 * for the duration of one connect/download. */
struct fetch_ctx {
    int64_t deadline_ms; /* monotonic; 0 = none */
    bool timed_out;
    const char *token;   /* borrowed from the options */
    const char *token_host; /* ditto */
    int cred_calls;
    bool auth_refused;
};

/* How a fetch failed, which decides whether the mirror is cloned again. */
enum fetch_failure {
    FETCH_REMOTE, /* network, credentials, timeout: the mirror is fine */
    FETCH_LOCAL,  /* the mirror's objects, refs or config: clone again */
};


/* Also true for a fetch abandoned by rv_gitstream_abort. */
static bool past_deadline(struct fetch_ctx *ctx)
{
    if (rv_gitstream_aborted())
        return true;
    if (ctx->deadline_ms > 0 && rv_mono_ms() >= ctx->deadline_ms) {
        ctx->timed_out = true;
        return true;
    }
    return false;
}

/* libgit2 calls these while objects arrive; a negative return aborts the
 * transfer (GIT_EUSER), which is how a slow fetch is stopped. */
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

int rv_mirror_token_host(const char *github_api, char *buf, size_t size)
{
    const char *host;
    size_t len;
    if (!rv_url_host(github_api, &host, &len) ||
        (len == 14 && strncasecmp(host, "api.github.com", 14) == 0))
        return rv_strlcpy(buf, "github.com", size);
    /* GHE.com (data residency) serves its API from api.<name>.ghe.com and
     * git from <name>.ghe.com. */
    if (len > 12 && strncasecmp(host, "api.", 4) == 0 &&
        strncasecmp(host + len - 8, ".ghe.com", 8) == 0) {
        host += 4;
        len -= 4;
    }
    if (len >= size)
        return -1;
    memcpy(buf, host, len);
    buf[len] = '\0';
    return 0;
}

/* True when url is https://[userinfo@]<token_host>[:port]/... */
static bool token_applies(const char *url, const char *token_host)
{
    static const char scheme[] = "https://";
    const char *host;
    size_t len;
    if (!url || strncasecmp(url, scheme, sizeof(scheme) - 1) != 0)
        return false;
    if (!token_host || !*token_host)
        token_host = "github.com";
    return rv_url_host(url, &host, &len) && len == strlen(token_host) &&
           strncasecmp(host, token_host, len) == 0;
}

/* Credentials: the GitHub token for HTTPS to GitHub's host (github.com,
 * or a GitHub Enterprise server: rv_mirror_token_host) (user
 * x-access-token), the SSH agent for ssh. Offered once: a second call means
 * the remote refused them, which ends the fetch with an authentication
 * error rather than a loop. The token never goes anywhere else, and never
 * into a URL. */
static int on_credentials(git_credential **out, const char *url,
                          const char *username, unsigned int allowed,
                          void *payload)
{
    struct fetch_ctx *ctx = payload;
    if (past_deadline(ctx))
        return -1;
    if (ctx->cred_calls++ > 0) {
        ctx->auth_refused = true;
        git_error_set_str(GIT_ERROR_NET, "the remote refused the credentials");
        return GIT_EAUTH;
    }
    if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && ctx->token &&
        *ctx->token && token_applies(url, ctx->token_host))
        return git_credential_userpass_plaintext_new(out, "x-access-token",
                                                     ctx->token);
    if (allowed & GIT_CREDENTIAL_SSH_KEY)
        return git_credential_ssh_key_from_agent(out,
                                                 username ? username : "git");
    if (allowed & GIT_CREDENTIAL_USERNAME)
        return git_credential_username_new(out, username ? username : "git");
    ctx->auth_refused = true;
    git_error_set_str(GIT_ERROR_NET,
                      "the remote asks for credentials and none apply");
    return GIT_EAUTH;
}

/* Removes "user[:pass]@" after every "://" in s, in place: libgit2's
 * messages may quote a URL, and a credential must not reach a message. */
static void scrub_userinfo(char *s)
{
    char *p = s;
    while ((p = strstr(p, "://")) != NULL) {
        p += 3;
        size_t auth = strcspn(p, "/ \t'\"?#");
        char *at = NULL;
        for (size_t i = 0; i < auth; i++)
            if (p[i] == '@')
                at = p + i;
        if (at)
            memmove(p, at + 1, strlen(at + 1) + 1);
    }
}

/* True when msg (libgit2's, lower-cased) quotes an HTTP status code. */
static bool says_status(const char *msg, const char *code)
{
    const char *p = strstr(msg, "status code");
    return p && strstr(p, code) != NULL;
}

/* Turns the last libgit2 error into a sync error: a class and a fixed
 * sentence, since what a remote or the file system says tells an attacker
 * which ports are open and which paths exist. The details go to the log
 * (credentials scrubbed). Returns how it failed. connecting: the failure
 * happened before any object was written. */
static enum fetch_failure fetch_failure(struct rv_sync_error *err, int code,
                                        struct fetch_ctx *ctx,
                                        const struct rv_mirror_opts *opts,
                                        bool connecting)
{
    const git_error *e = git_error_last();
    int klass = e ? e->klass : GIT_ERROR_NONE;
    char shown[URL_MAX], msg[400], lower[400];
    rv_url_strip_credentials(opts->url, shown, sizeof(shown));
    rv_strlcpy(msg, e && e->message ? e->message : "unknown error",
               sizeof(msg));
    scrub_userinfo(msg);
    /* libgit2 sometimes ends with ": " and an empty OS error. */
    for (size_t n = strlen(msg); n > 0 && strchr(" :.\n", msg[n - 1]); n--)
        msg[n - 1] = '\0';
    for (size_t i = 0; i <= strlen(msg); i++)
        lower[i] = (char)tolower((unsigned char)msg[i]);
    LOG(RV_LOG_WARN, opts->repo_id, opts->job_id,
        "fetching %s failed: %s (libgit2 class %d, code %d)", shown, msg,
        klass, code);
    const char *refused = rv_gitstream_refused();
    enum fetch_failure remote = FETCH_REMOTE;
    if (rv_gitstream_aborted()) {
        rv_sync_error_set(err, RV_ERR_CANCELLED,
                          "The sync was abandoned: the repo was removed.");
    } else if (refused) {
        rv_sync_error_set(err, RV_ERR_URL_NOT_ALLOWED,
                          "The remote's address is refused by the URL "
                          "policy: %s.",
                          refused);
    } else if (ctx && (ctx->timed_out || past_deadline(ctx))) {
        rv_sync_error_set(err, RV_ERR_TIMEOUT,
                          "Fetching took longer than the fetch timeout "
                          "(%d s).",
                          opts->timeout_s);
    } else if (code == GIT_EAUTH || (ctx && ctx->auth_refused) ||
               (klass == GIT_ERROR_SSH && strstr(lower, "auth")) ||
               (klass == GIT_ERROR_HTTP &&
                (says_status(lower, "401") || says_status(lower, "403")))) {
        rv_sync_error_set(err, RV_ERR_AUTH_FAILED,
                          "The remote refused access: check GITHUB_TOKEN "
                          "for HTTPS or the SSH agent's key for ssh.");
    } else if (says_status(lower, "404") ||
               strstr(lower, "could not find repository") ||
               strstr(lower, "repository not found") ||
               strstr(lower, "does not appear to be a git repository") ||
               strstr(lower, "no such file")) {
        rv_sync_error_set(err, RV_ERR_NOT_FOUND,
                          "The remote has no repository at this URL.");
    } else if (code == GIT_ECERTIFICATE || klass == GIT_ERROR_SSL) {
        rv_sync_error_set(err, RV_ERR_BAD_REMOTE,
                          "The remote's TLS certificate or handshake is not "
                          "valid.");
    } else if (connecting &&
               (klass == GIT_ERROR_OS || strstr(lower, "resolve") ||
                strstr(lower, "connect"))) {
        rv_sync_error_set(err, RV_ERR_UNREACHABLE,
                          "Cannot reach the remote: its name does not "
                          "resolve, or nothing accepts the connection.");
    } else if (connecting || klass == GIT_ERROR_NET ||
               klass == GIT_ERROR_SSH || klass == GIT_ERROR_HTTP ||
               klass == GIT_ERROR_CALLBACK) {
        rv_sync_error_set(err, RV_ERR_BAD_REMOTE,
                          "The remote did not answer as a git server does.");
    } else {
        rv_sync_error_set(err, RV_ERR_GIT,
                          "Writing the fetched data into the mirror failed.");
        remote = FETCH_LOCAL;
    }
    return remote;
}

/* The remote URL as libgit2 wants it: an absolute path becomes a file://
 * URL, percent-encoding anything but unreserved characters (libgit2
 * decodes %XX in file URLs). Returns -1 if it does not fit. */
static int remote_url(const char *url, char *buf, size_t size)
{
    if (url[0] != '/')
        return rv_strlcpy(buf, url, size);
    static const char digits[] = "0123456789ABCDEF";
    size_t n = (size_t)snprintf(buf, size, "file://");
    for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || strchr("/-._~", *p);
        if (n + 4 >= size)
            return -1;
        if (plain) {
            buf[n++] = (char)*p;
        } else {
            buf[n++] = '%';
            buf[n++] = digits[*p >> 4];
            buf[n++] = digits[*p & 15];
        }
    }
    buf[n] = '\0';
    return 0;
}

/* Records the remote's HEAD branch in the mirror (config and HEAD symref),
 * or, when the remote did not say, reads what was recorded before. */
static void remember_remote_head(git_repository *repo, char *remote_head,
                                 size_t headlen)
{
    git_config *cfg = NULL;
    git_buf recorded = {NULL, 0, 0};
    if (git_repository_config(&cfg, repo) != 0)
        return;
    if (remote_head[0]) {
        char ref[300];
        git_config_set_string(cfg, HEAD_CONFIG_KEY, remote_head);
        /* Only for people looking at the mirror with git; best effort. */
        if (snprintf(ref, sizeof(ref), "refs/heads/%s", remote_head) <
            (int)sizeof(ref))
            git_repository_set_head(repo, ref);
    } else if (git_config_get_string_buf(&recorded, cfg, HEAD_CONFIG_KEY) ==
               0) {
        rv_strlcpy(remote_head, recorded.ptr, headlen);
    }
    git_buf_dispose(&recorded);
    git_config_free(cfg);
    git_error_clear();
}

static int cmp_head_name(const void *a, const void *b)
{
    const git_remote_head *x = *(const git_remote_head *const *)a;
    const git_remote_head *y = *(const git_remote_head *const *)b;
    return strcmp(x->name, y->name);
}

/* The branches the connected remote advertised (refs/heads/ with a valid
 * name), sorted by name, each name once (a server sending one twice gets
 * one of them). *out is malloc'd (free it); its elements are
 * libgit2's, valid while the remote stays connected. 0, or -1 with a
 * libgit2 error set. */
static int advertised_heads(git_remote *remote, const git_remote_head ***out,
                            size_t *count)
{
    const git_remote_head **ls = NULL;
    size_t n = 0, k = 0;
    *out = NULL;
    *count = 0;
    if (git_remote_ls(&ls, &n, remote) != 0)
        return -1;
    const git_remote_head **heads = malloc((n ? n : 1) * sizeof(*heads));
    if (!heads) {
        git_error_set_oom();
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int valid = 0;
        if (strncmp(ls[i]->name, "refs/heads/", 11) == 0 &&
            git_reference_name_is_valid(&valid, ls[i]->name) == 0 && valid)
            heads[k++] = ls[i];
    }
    git_error_clear();
    if (k > 0)
        qsort(heads, k, sizeof(*heads), cmp_head_name);
    size_t distinct = 0;
    for (size_t i = 0; i < k; i++)
        if (distinct == 0 ||
            strcmp(heads[distinct - 1]->name, heads[i]->name) != 0)
            heads[distinct++] = heads[i];
    *out = heads;
    *count = distinct;
    return 0;
}

/* Whether the mirror's branches are exactly the advertised heads (sorted,
 * from advertised_heads): then a fetch has nothing to download, update or
 * prune, and skipping it saves a lookup of every branch (a stat of its
 * loose file and of packed-refs each, 40% of a no-change re-sync of 1,000
 * branches). Any error answers false: the full fetch then decides. */
static bool mirror_matches(git_repository *repo,
                           const git_remote_head **heads, size_t n)
{
    git_reference_iterator *it = NULL;
    git_reference *ref = NULL;
    size_t seen = 0;
    bool same = true;
    if (git_reference_iterator_glob_new(&it, repo, "refs/heads/*") != 0) {
        git_error_clear();
        return false;
    }
    int grc;
    while (same && (grc = git_reference_next(&ref, it)) == 0) {
        git_remote_head key, *kp = &key;
        key.name = (char *)git_reference_name(ref);
        const git_remote_head **hit =
            n ? bsearch(&kp, heads, n, sizeof(*heads), cmp_head_name) : NULL;
        const git_oid *oid = git_reference_target(ref);
        same = hit && oid && git_oid_equal(oid, &(*hit)->oid);
        seen++;
        git_reference_free(ref);
    }
    git_reference_iterator_free(it);
    git_error_clear();
    return same && grc == GIT_ITEROVER && seen == n;
}

/* Writes the advertised heads (sorted, from advertised_heads) into a new
 * mirror's packed-refs file at once, as git clone does, instead of one
 * loose ref file (and its lock file) per branch through
 * git_remote_update_tips: on a 1,000-branch remote those file creations
 * were most of the clone's local time. Only for a mirror with no refs
 * yet, after the download brought every object; later fetches update refs
 * through libgit2 as usual, which reads and rewrites packed-refs itself.
 * The file holds "<hex id> <refname>" lines, sorted, without the optional
 * traits header. 0, or -1 with a libgit2 error set. */
static int write_packed_heads(git_repository *repo,
                              const git_remote_head **heads, size_t n)
{
    int rc = -1;
    git_odb *odb = NULL;
    FILE *f = NULL;
    char path[4200], tmp[4200];
    if (git_repository_odb(&odb, repo) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (!git_odb_exists(odb, &heads[i]->oid)) {
            git_error_set_str(GIT_ERROR_REFERENCE,
                              "the download lacks an advertised branch tip");
            goto out;
        }
    }
    const char *gitdir = git_repository_path(repo);
    if (snprintf(path, sizeof(path), "%spacked-refs", gitdir) >=
            (int)sizeof(path) ||
        snprintf(tmp, sizeof(tmp), "%spacked-refs.lock", gitdir) >=
            (int)sizeof(tmp)) {
        git_error_set_str(GIT_ERROR_OS, "the mirror path is too long");
        goto out;
    }
    if (!(f = fopen(tmp, "wx"))) {
        git_error_set_str(GIT_ERROR_OS, "cannot create packed-refs.lock");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char hex[GIT_OID_HEXSZ + 1];
        git_oid_tostr(hex, sizeof(hex), &heads[i]->oid);
        if (fprintf(f, "%s %s\n", hex, heads[i]->name) < 0)
            break;
    }
    bool written = !ferror(f);
    if (fclose(f) != 0 || !written || rename(tmp, path) != 0) {
        unlink(tmp);
        git_error_set_str(GIT_ERROR_OS, "cannot write packed-refs");
        goto out;
    }
    rc = 0;
out:
    git_odb_free(odb);
    return rc;
}

/* The monotonic time a fetch or clone starting now must end by; 0 for
 * none. */
static int64_t deadline_of(const struct rv_mirror_opts *opts)
{
    return opts->timeout_s > 0
               ? rv_mono_ms() + (int64_t)opts->timeout_s * 1000
               : 0;
}

/* Connects, learns the remote HEAD, downloads, updates tips and prunes
 * (is_new: a mirror with no refs yet, whose branches are written at once;
 * after a copy of a local path (clone_local) the download then finds
 * every tip present and transfers nothing, unless the source moved
 * meanwhile). Ends by deadline_ms (monotonic, 0 = none). RV_OK, or
 * RV_ERR_GIT with err filled and *failure saying whose fault. */
static int fetch(git_repository *repo, const struct rv_mirror_opts *opts,
                 bool is_new, int64_t deadline_ms, char *remote_head,
                 size_t headlen, struct rv_sync_error *err,
                 enum fetch_failure *failure)
{
    int rc = RV_OK;
    git_remote *remote = NULL;
    git_buf head = {NULL, 0, 0};
    const git_remote_head **heads = NULL;
    size_t nheads = 0;
    struct fetch_ctx ctx = {
        .deadline_ms = deadline_ms,
        .token = opts->github_token,
        .token_host = opts->github_host,
    };
    char url[URL_MAX];
    *failure = FETCH_LOCAL;
    remote_head[0] = '\0';
    if (remote_url(opts->url, url, sizeof(url)) != 0) {
        rv_sync_error_set(err, RV_ERR_GIT, "The remote URL is too long.");
        *failure = FETCH_REMOTE;
        return RV_ERR_INVALID;
    }
    /* An in-memory remote for the registered URL: nothing about the remote
     * lives in the mirror's config, so a changed URL is simply followed,
     * and no insteadOf rewriting from a user's ~/.gitconfig applies (which
     * also avoids libgit2 1.5's leak of PCRE2 match data for every config
     * entry a remote lookup scans). */
    git_remote_create_options co;
    git_remote_create_options_init(&co, GIT_REMOTE_CREATE_OPTIONS_VERSION);
    co.repository = repo;
    co.fetchspec = FETCH_REFSPEC;
    co.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
    /* Connects, reads and writes of this fetch fail once it is due, and
     * every connection (a redirect's too) is checked against the policy. */
    rv_gitstream_set_deadline(ctx.deadline_ms);
    rv_gitstream_set_policy(opts->policy);
    int grc = git_remote_create_with_opts(&remote, url, &co);
    if (grc != 0) {
        /* The mirror's own config is broken: clone again. */
        (void)fetch_failure(err, grc, NULL, opts, false);
        *failure = FETCH_LOCAL;
        rc = RV_ERR_GIT;
        goto out;
    }
    git_remote_callbacks cbs;
    git_remote_init_callbacks(&cbs, GIT_REMOTE_CALLBACKS_VERSION);
    cbs.credentials = on_credentials;
    cbs.transfer_progress = on_transfer;
    cbs.sideband_progress = on_sideband;
    cbs.payload = &ctx;
    git_proxy_options proxy;
    git_proxy_options_init(&proxy, GIT_PROXY_OPTIONS_VERSION);
    /* No proxy: the policy judges the address a connection really goes
     * to, and through a proxy (taken from the environment or git's
     * config) that would be the proxy's, while the proxy reached the
     * refused host for us. */
    proxy.type = GIT_PROXY_NONE;
    grc = git_remote_connect(remote, GIT_DIRECTION_FETCH, &cbs, &proxy, NULL);
    if (grc != 0) {
        *failure = fetch_failure(err, grc, &ctx, opts, true);
        rc = RV_ERR_GIT;
        goto out;
    }
    if (git_remote_default_branch(&head, remote) == 0 &&
        strncmp(head.ptr, "refs/heads/", 11) == 0)
        rv_strlcpy(remote_head, head.ptr + 11, headlen);
    git_error_clear();
    git_fetch_options fo;
    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    fo.callbacks = cbs;
    fo.proxy_opts = proxy;
    fo.prune = GIT_FETCH_PRUNE;
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    char *spec = FETCH_REFSPEC;
    git_strarray refspecs = {&spec, 1};
    if ((grc = advertised_heads(remote, &heads, &nheads)) != 0) {
        *failure = fetch_failure(err, grc, &ctx, opts, false);
        rc = RV_ERR_GIT;
        goto disconnect;
    }
    if (!is_new && mirror_matches(repo, heads, nheads))
        goto disconnect; /* nothing moved */
    grc = git_remote_download(remote, &refspecs, &fo);
    if (grc == 0 && is_new) {
        grc = write_packed_heads(repo, heads, nheads);
    } else if (grc == 0) {
        grc = git_remote_update_tips(remote, &cbs, 0,
                                     GIT_REMOTE_DOWNLOAD_TAGS_NONE, NULL);
        if (grc == 0)
            grc = git_remote_prune(remote, &cbs);
    }
    if (grc != 0) {
        *failure = fetch_failure(err, grc, &ctx, opts, false);
        rc = RV_ERR_GIT;
    }
disconnect:
    git_remote_disconnect(remote);
    if (rc == RV_OK)
        remember_remote_head(repo, remote_head, headlen);
out:
    rv_gitstream_set_deadline(0);
    rv_gitstream_set_policy(NULL);
    free(heads);
    git_buf_dispose(&head);
    git_remote_free(remote);
    return rc;
}

/* An empty bare repository at tmp, an existing empty directory. */
static int init_mirror(const char *tmp, git_repository **repo,
                       struct rv_sync_error *err)
{
    if (git_repository_init(repo, tmp, 1) == 0)
        return RV_OK;
    const git_error *e = git_error_last();
    rv_sync_error_set(err, RV_ERR_GIT, "Cannot create a mirror: %s.",
                      e && e->message ? e->message : "unknown error");
    return RV_ERR_GIT;
}

static bool copy_should_stop(void *arg)
{
    return past_deadline(arg);
}

/* The first clone of a local path: the source's objects are copied into
 * the new mirror at tmp (*repo) without building a pack
 * (mirrorlocal.c), and the fetch that follows only writes the refs. A
 * source the copy cannot do, or a copy that failed, is fetched as any
 * remote is, into a mirror made again from nothing (the copy may have
 * left verified objects, and a tip already present would not be
 * fetched, its history unchecked). A source whose object store holds a
 * link or a special file is refused: libgit2's fetch would follow or
 * open it by name; so is one whose objects are corrupt (see
 * mirrorlocal.c). RV_OK (fetch next), or an error with err set. */
static int clone_local(const struct rv_mirror_opts *opts, const char *tmp,
                       git_repository **repo, int64_t deadline_ms,
                       struct rv_sync_error *err)
{
    struct fetch_ctx ctx = {.deadline_ms = deadline_ms};
    struct mirror_local_stats stats;
    int64_t started = rv_mono_ms();
    /* The sync's transfer starts here: this clears an abort left from an
     * earlier one, as fetch() does for a remote. */
    rv_gitstream_set_deadline(deadline_ms);
    int how = mirror_local_copy(*repo, opts->url, opts->policy,
                                copy_should_stop, &ctx, &stats);
    rv_gitstream_set_deadline(0);
    long long took = (long long)(rv_mono_ms() - started);
    if (how == MIRROR_LOCAL_COPIED && rv_gitstream_aborted())
        how = MIRROR_LOCAL_STOPPED; /* fetch() would clear it */
    switch (how) {
    case MIRROR_LOCAL_COPIED:
        LOG(RV_LOG_INFO, opts->repo_id, opts->job_id,
            "copied the local repository: %zu packs (%zu objects) and %zu "
            "loose objects, each hashed, in %lld ms",
            stats.packs, stats.objects, stats.loose, took);
        return RV_OK;
    case MIRROR_LOCAL_REFUSED:
    case MIRROR_LOCAL_CORRUPT: {
        /* Neither is fetched instead: what the copy saw is the reason. */
        static const struct {
            rv_err code;
            const char *state; /* for the log */
            const char *message;
        } ends[] = {
            {RV_ERR_URL_NOT_ALLOWED, "refused",
             "The local repository is refused: its object store holds a "
             "symbolic link or a special file, or its path left the allowed "
             "directories."},
            {RV_ERR_BAD_REMOTE, "corrupt",
             "The local repository's objects are corrupt: git fsck in it "
             "says which."},
        };
        size_t i = how == MIRROR_LOCAL_CORRUPT;
        LOG(RV_LOG_WARN, opts->repo_id, opts->job_id,
            "the local repository is %s: %s", ends[i].state, stats.why);
        rv_sync_error_set(err, ends[i].code, "%s", ends[i].message);
        return ends[i].code;
    }
    case MIRROR_LOCAL_STOPPED:
        git_error_set_str(GIT_ERROR_CALLBACK, "the copy was stopped");
        (void)fetch_failure(err, GIT_EUSER, &ctx, opts, false);
        return RV_ERR_GIT;
    default:
        break;
    }
    LOG(RV_LOG_INFO, opts->repo_id, opts->job_id,
        "the local repository is fetched instead of copied (%s)", stats.why);
    git_repository_free(*repo);
    *repo = NULL;
    if (rv_mirror_remove_tree(tmp) != 0 || mkdir(tmp, 0700) != 0) {
        rv_sync_error_set(err, RV_ERR_GIT,
                          "Cannot create a directory for the mirror: %s.",
                          strerror(errno));
        return RV_ERR_IO;
    }
    return init_mirror(tmp, repo, err);
}

/* Creates an empty bare mirror in a temporary directory next to path and
 * renames it into place once the first fetch succeeded, so a half clone is
 * never used. On RV_OK *out is the open mirror (caller frees). */
static int clone_mirror(const struct rv_mirror_opts *opts, const char *path,
                        git_repository **out, char *remote_head,
                        size_t headlen, struct rv_sync_error *err)
{
    int rc = RV_OK;
    char tmp[4200], hex[2 * RV_REPO_ID_MAX + 1];
    git_repository *repo = NULL;
    enum fetch_failure failure;
    int64_t deadline_ms = deadline_of(opts);
    mirror_hex_encode(opts->repo_id, hex);
    snprintf(tmp, sizeof(tmp), "%s/mirrors/.tmp-%s-XXXXXX", opts->data_dir,
             hex);
    if (!mkdtemp(tmp)) {
        rv_sync_error_set(err, RV_ERR_GIT,
                          "Cannot create a directory for the mirror: %s.",
                          strerror(errno));
        return RV_ERR_IO;
    }
    if ((rc = init_mirror(tmp, &repo, err)) != RV_OK)
        goto out;
    /* A local path: checked and resolved by the policy (check_policy). */
    if (opts->url[0] == '/' &&
        (rc = clone_local(opts, tmp, &repo, deadline_ms, err)) != RV_OK)
        goto out;
    rc = fetch(repo, opts, true, deadline_ms, remote_head, headlen, err,
               &failure);
    if (rc != RV_OK)
        goto out;
    git_repository_free(repo);
    repo = NULL;
    if (rename(tmp, path) != 0) {
        /* ENOTEMPTY/EEXIST: another worker put a mirror there meanwhile
         * (a lapsed lease); use theirs. */
        if (errno != ENOTEMPTY && errno != EEXIST) {
            rv_sync_error_set(err, RV_ERR_GIT,
                              "Cannot move the new mirror into place: %s.",
                              strerror(errno));
            rc = RV_ERR_IO;
            goto out;
        }
    }
    if (git_repository_open_bare(out, path) != 0) {
        const git_error *e = git_error_last();
        rv_sync_error_set(err, RV_ERR_GIT, "Cannot open the new mirror: %s.",
                          e && e->message ? e->message : "unknown error");
        rc = RV_ERR_GIT;
    }
out:
    git_repository_free(repo);
    rv_mirror_remove_tree(tmp); /* gone already after a rename */
    return rc;
}

/* Checks the URL against the policy before anything is fetched, so that
 * a refused remote leaves the mirror as it was. A local path is resolved:
 * *resolved receives its real path ("" for a remote URL), which is what is
 * then fetched, so a symbolic link swapped after the check leads nowhere
 * new. RV_OK, RV_ERR_URL_NOT_ALLOWED or RV_ERR_NOT_FOUND with err set. */
static int check_policy(const struct rv_mirror_opts *opts, char *resolved,
                        size_t size, struct rv_sync_error *err)
{
    char why[256];
    int rc = rv_url_policy_resolve(opts->policy, opts->url, resolved, size,
                                   why, sizeof(why));
    if (rc == RV_OK)
        return RV_OK;
    resolved[0] = '\0';
    LOG(RV_LOG_WARN, opts->repo_id, opts->job_id,
        "the URL policy refuses the remote: %s", why);
    if (rc == RV_ERR_NOT_FOUND) {
        rv_sync_error_set(err, RV_ERR_NOT_FOUND,
                          "The remote has no repository at this URL.");
        return rc;
    }
    rv_sync_error_set(err, RV_ERR_URL_NOT_ALLOWED,
                      "The remote URL is refused by the URL policy: %s.",
                      why);
    return RV_ERR_URL_NOT_ALLOWED;
}

int rv_mirror_sync(const struct rv_mirror_opts *opts, git_repository **repo,
                   char *remote_head, size_t headlen,
                   struct rv_sync_error *err)
{
    char path[4096], dir[4096];
    struct stat st;
    enum fetch_failure failure = FETCH_LOCAL;
    char resolved[PATH_MAX];
    struct rv_mirror_opts checked = *opts;
    *repo = NULL;
    remote_head[0] = '\0';
    if (opts->policy) {
        int rc = check_policy(opts, resolved, sizeof(resolved), err);
        if (rc != RV_OK)
            return rc;
        if (resolved[0])
            checked.url = resolved; /* what was checked is what is fetched */
    }
    opts = &checked;
    if (rv_mirror_path(opts->data_dir, opts->repo_id, path, sizeof(path)) !=
        0) {
        rv_sync_error_set(err, RV_ERR_GIT,
                          "The repo id cannot name a mirror directory.");
        return RV_ERR_INVALID;
    }
    snprintf(dir, sizeof(dir), "%s/mirrors", opts->data_dir);
    if (rv_mkdirs(dir) != 0) {
        rv_sync_error_set(err, RV_ERR_GIT, "Cannot create %s: %s.", dir,
                          strerror(errno));
        return RV_ERR_IO;
    }
    if (lstat(path, &st) != 0)
        return clone_mirror(opts, path, repo, remote_head, headlen, err);

    int rc = RV_ERR_GIT;
    if (S_ISDIR(st.st_mode) && git_repository_open_bare(repo, path) == 0) {
        rc = fetch(*repo, opts, false, deadline_of(opts), remote_head,
                   headlen, err, &failure);
        if (rc == RV_OK)
            return RV_OK;
        git_repository_free(*repo);
        *repo = NULL;
        if (failure == FETCH_REMOTE)
            return rc;
    }
    LOG(RV_LOG_WARN, opts->repo_id, opts->job_id,
        "the mirror is unusable (%s); cloning it again",
        rc == RV_ERR_GIT && err->message[0] ? err->message : "cannot open");
    if (rv_mirror_remove_tree(path) != 0) {
        rv_sync_error_set(err, RV_ERR_GIT,
                          "Cannot remove the unusable mirror: %s.",
                          strerror(errno));
        return RV_ERR_IO;
    }
    memset(err, 0, sizeof(*err));
    return clone_mirror(opts, path, repo, remote_head, headlen, err);
}

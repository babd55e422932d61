/* See jobloop.h. */
#include "worker/jobloop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cmd.h"
#include "common/errors.h"
#include "common/job.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/registry.h"
#include "common/scripts.h"
#include "common/util.h"
#include "worker/branchsync.h"
#include "worker/ghbudget.h"
#include "worker/orgsync.h"
#include "worker/overview.h"
#include "worker/prsync.h"
#include "worker/sync.h"

/* How often a commit is retried when the other kind's data moved while
 * this sync rendered the overview. */
#define COMMIT_RETRIES 5

/* The last GitHub answer's rate limit, any token (the API's older
 * repoview_github_ratelimit_remaining): hash with "remaining" and
 * "reset_ms". Per-token budgets, which workers act on, are ghbudget.h's. */
#define RATELIMIT_KEY "rv:github:ratelimit"

/* One claimed job and what the loop learns while running it. */
struct job_run {
    struct rv_job job;
    const char *payload; /* as in the processing list; borrowed */
    size_t payload_len;
    long long gen; /* fencing generation from claimJob */
    struct rv_repo repo;
    bool has_repo;
    json_t *prev; /* the kind's previous document, or NULL */
    json_t *doc;  /* the new document after a successful sync */
};

static redisReply *run_cmd(struct rv_rsync *r, struct rv_cmd *cmd)
{
    redisReply *reply = rv_rsync_run(r, cmd);
    rv_cmd_free(cmd);
    return reply;
}

/* Reads a string key as JSON. NULL when absent or not JSON (logged). */
static json_t *get_json(struct rv_rsync *r, const char *key, const char *repo)
{
    redisReply *reply = rv_rsync_command(r, "GET %s", key);
    json_t *doc = NULL;
    if (reply && reply->type == REDIS_REPLY_STRING) {
        json_error_t jerr;
        doc = json_loadb(reply->str, reply->len, 0, &jerr);
        if (!doc)
            LOG(RV_LOG_WARN, repo, NULL, "stored document %s is not JSON: %s",
                key, jerr.text);
    }
    if (reply)
        freeReplyObject(reply);
    return doc;
}

/* Builds {"reason","worker","at","payload":hex} for the dead-letter list. */
static char *dead_entry(const char *reason, const char *worker,
                        const char *payload, size_t len)
{
    char at[32];
    rv_iso8601(rv_now_ms(), at, sizeof(at));
    size_t hexlen = len > 2048 ? 2048 : len;
    char *hex = malloc(hexlen * 2 + 1);
    if (!hex)
        return NULL;
    for (size_t i = 0; i < hexlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)payload[i]);
    json_t *entry =
        json_pack("{s:s,s:s,s:s,s:s,s:I}", "reason", reason, "worker", worker,
                  "at", at, "payload", hex, "bytes", (json_int_t)len);
    free(hex);
    char *text = entry ? json_dumps(entry, JSON_COMPACT) : NULL;
    json_decref(entry);
    return text;
}

static int dead_letter(struct rv_worker *w, struct rv_rsync *r,
                       const char *payload, size_t len, const char *why)
{
    char proc[RV_KEY_MAX];
    int rc = RV_ERR_NOMEM;
    char *entry = dead_entry(why, w->id, payload, len);
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    if (!entry)
        goto out;
    rv_script_deadLetter(&cmd,
                         &(struct rv_deadletter_args){
                             .processing_key = rv_key_processing(proc, w->id),
                             .payload = payload,
                             .payload_len = len,
                             .entry = entry});
    redisReply *reply = run_cmd(r, &cmd);
    rc = reply ? rv_script_reply_code(reply) : RV_ERR_REDIS;
    if (reply)
        freeReplyObject(reply);
    LOG(RV_LOG_WARN, NULL, NULL, "malformed job dead-lettered: %s", why);
out:
    rv_cmd_free(&cmd);
    free(entry);
    return rc;
}

/* Next scheduled sync: the repo's interval with +-10% jitter, so repos
 * registered together do not stay in lock-step. */
static int64_t next_due(const struct rv_worker *w, const struct rv_repo *repo,
                        int64_t now)
{
    int64_t interval_ms =
        (repo->interval_s > 0 ? repo->interval_s : w->cfg->sync_interval) *
        1000;
    int64_t span = interval_ms / 5;
    int64_t jitter = span > 0 ? (int64_t)(random() % span) - span / 2 : 0;
    return now + interval_ms + jitter;
}

/* A follow-up job of job, offered to the commit or fail script (queued
 * only if a refresh was asked for while this sync ran). See rv_job_new;
 * the caller frees *payload. Out of memory there is none: next->id and
 * *payload are "" (a static string), which the scripts' queueFollowup
 * takes as no follow-up, so the job still ends; a refresh asked for
 * meanwhile is then left to the next scheduled sync. */
static char no_followup[] = "";

static void new_followup(const struct rv_job *job, struct rv_job *next,
                         char **payload, size_t *len)
{
    if (rv_job_new(next, job->repo, job->kind, RV_REASON_FOLLOWUP, payload,
                   len) == RV_OK)
        return;
    LOG(RV_LOG_WARN, job->repo, job->id,
        "out of memory for the follow-up job; ending this one without");
    next->id[0] = '\0';
    *payload = no_followup;
    *len = 0;
}

static void free_followup(char *payload)
{
    if (payload != no_followup)
        free(payload);
}

int rv_jobloop_claim(struct rv_worker *w, struct rv_rsync *r,
                     const struct rv_job *job, const char *payload, size_t len,
                     long long *gen)
{
    char meta[RV_KEY_MAX], proc[RV_KEY_MAX];
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_script_claimJob(
        &cmd, &(struct rv_claimjob_args){
                  .meta_key = rv_key_kind_meta(meta, job->kind, job->repo),
                  .processing_key = rv_key_processing(proc, w->id),
                  .kind = rv_kind_name(job->kind),
                  .job_id = job->id,
                  .payload = payload,
                  .payload_len = len,
                  .worker = w->id,
                  .now_ms = rv_now_ms(),
                  .lease_ms = w->cfg->lease_seconds * 1000});
    redisReply *reply = run_cmd(r, &cmd);
    int rc = rv_script_reply_code(reply);
    if (rc == RV_OK) {
        if (reply->elements >= 2 &&
            reply->element[1]->type == REDIS_REPLY_INTEGER)
            *gen = reply->element[1]->integer;
        else
            rc = RV_ERR_PROTOCOL;
    }
    if (reply)
        freeReplyObject(reply);
    return rc;
}

int rv_jobloop_fail(struct rv_worker *w, struct rv_rsync *r,
                    const struct rv_job *job, const char *payload, size_t len,
                    long long gen, int64_t interval_s,
                    const struct rv_sync_error *err)
{
    char meta[RV_KEY_MAX], proc[RV_KEY_MAX], stats[RV_KEY_MAX],
        self[RV_KEY_MAX], at[32];
    int64_t now = rv_now_ms();
    rv_iso8601(now, at, sizeof(at));
    json_t *ej = json_pack("{s:s,s:s,s:s}", "code", rv_errname(err->code),
                           "message", err->message, "at", at);
    char *error_json = ej ? json_dumps(ej, JSON_COMPACT) : NULL;
    json_decref(ej);
    /* Out of memory the failure is still recorded, without its message,
     * so the job ends (both values are plain names, no escaping). */
    char fallback[160];
    snprintf(fallback, sizeof(fallback),
             "{\"code\":\"%s\",\"message\":\"out of memory\",\"at\":\"%s\"}",
             rv_errname(err->code), at);

    int64_t interval_ms = interval_s * 1000;
    int64_t cap = interval_ms * 4 < RV_BACKOFF_MAX_MS ? interval_ms * 4
                                                      : RV_BACKOFF_MAX_MS;
    struct rv_job next;
    char *next_payload;
    size_t next_len;
    new_followup(job, &next, &next_payload, &next_len);
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_script_failSync(
        &cmd, &(struct rv_failsync_args){
                  .meta_key = rv_key_kind_meta(meta, job->kind, job->repo),
                  .processing_key = rv_key_processing(proc, w->id),
                  .stats_key = rv_key_stats(stats, (long long)(now / 60000)),
                  .worker_key = rv_key_worker(self, w->id),
                  .kind = rv_kind_name(job->kind),
                  .job_id = job->id,
                  .gen = gen,
                  .payload = payload,
                  .payload_len = len,
                  .now_ms = now,
                  .error_json = error_json ? error_json : fallback,
                  .retry_at_ms = err->retry_at_ms > now ? err->retry_at_ms : 0,
                  .backoff_base_ms = RV_BACKOFF_BASE_MS,
                  .backoff_cap_ms =
                      cap < RV_BACKOFF_BASE_MS ? RV_BACKOFF_BASE_MS : cap,
                  .followup_id = next.id,
                  .followup_payload = next_payload,
                  .followup_payload_len = next_len});
    free(error_json);
    free_followup(next_payload);
    redisReply *reply = run_cmd(r, &cmd);
    int rc = rv_script_reply_code(reply);
    if (reply)
        freeReplyObject(reply);
    LOGF(RV_LOG_WARN, job->repo, job->id,
         json_pack("{s:s,s:s,s:s}", "kind", rv_kind_name(job->kind), "code",
                   rv_errname(err->code), "result", rv_errname(rc)),
         "sync failed: %s", err->message);
    return rc;
}

/* Reads the other kind's document and its rev in one transaction, so the
 * rev can never be newer than the data it is sent with. */
static int read_other(struct rv_rsync *r, const struct job_run *run,
                      json_t **other, char *rev, size_t revlen)
{
    char meta[RV_KEY_MAX], data[RV_KEY_MAX];
    bool other_is_prs = run->job.kind == RV_KIND_BRANCHES;
    rv_key_meta(meta, run->job.repo);
    if (other_is_prs)
        rv_key_prs(data, run->job.repo);
    else
        rv_key_branches(data, run->job.repo);
    *other = NULL;
    redisReply *reply = rv_rsync_command(r, "MULTI");
    if (!reply)
        return RV_ERR_REDIS;
    freeReplyObject(reply);
    reply = rv_rsync_command(r, "HGET %s %s", meta,
                             other_is_prs ? "pr_rev" : "branch_rev");
    if (reply)
        freeReplyObject(reply);
    reply = rv_rsync_command(r, "GET %s", data);
    if (reply)
        freeReplyObject(reply);
    reply = rv_rsync_command(r, "EXEC");
    int rc = RV_OK;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        rc = reply ? RV_ERR_PROTOCOL : RV_ERR_REDIS;
        goto out;
    }
    const redisReply *rrev = reply->element[0], *rdata = reply->element[1];
    rv_strlcpy(rev, rrev->type == REDIS_REPLY_STRING ? rrev->str : "", revlen);
    if (rdata->type == REDIS_REPLY_STRING)
        *other = json_loadb(rdata->str, rdata->len, 0, NULL);
out:
    if (reply)
        freeReplyObject(reply);
    return rc;
}

/* Renders and commits; retries when the other kind's data moved. */
static int commit(struct rv_worker *w, struct rv_rsync *r, struct job_run *run,
                  long long *version, bool *changed_out)
{
    int rc = RV_ERR_RETRY;
    json_t *changed = rv_overview_changed(run->job.kind, run->prev, run->doc);
    char *changed_text = changed ? json_dumps(changed, JSON_COMPACT) : NULL;
    char *data_text = json_dumps(run->doc, JSON_COMPACT);
    json_decref(changed);
    if (!changed_text || !data_text) {
        rc = RV_ERR_NOMEM;
        goto out;
    }
    for (int attempt = 0; attempt < COMMIT_RETRIES && rc == RV_ERR_RETRY;
         attempt++) {
        json_t *other = NULL;
        char rev[32];
        rc = read_other(r, run, &other, rev, sizeof(rev));
        if (rc != RV_OK)
            break;
        bool is_branches = run->job.kind == RV_KIND_BRANCHES;
        char *fragment = rv_overview_render(is_branches ? run->doc : other,
                                            is_branches ? other : run->doc);
        json_decref(other);
        if (!fragment) {
            rc = RV_ERR_NOMEM;
            break;
        }
        struct rv_job next;
        char *next_payload;
        size_t next_len;
        new_followup(&run->job, &next, &next_payload, &next_len);
        char meta[RV_KEY_MAX], data[RV_KEY_MAX], ov[RV_KEY_MAX],
            proc[RV_KEY_MAX], stats[RV_KEY_MAX], self[RV_KEY_MAX];
        int64_t now = rv_now_ms();
        struct rv_cmd cmd;
        rv_cmd_init(&cmd);
        rv_script_commitProjection(
            &cmd,
            &(struct rv_commitprojection_args){
                .meta_key = rv_key_meta(meta, run->job.repo),
                .data_key = is_branches ? rv_key_branches(data, run->job.repo)
                                        : rv_key_prs(data, run->job.repo),
                .overview_key = rv_key_overview(ov, run->job.repo),
                .processing_key = rv_key_processing(proc, w->id),
                .stats_key = rv_key_stats(stats, (long long)(now / 60000)),
                .worker_key = rv_key_worker(self, w->id),
                .kind = rv_kind_name(run->job.kind),
                .job_id = run->job.id,
                .gen = run->gen,
                .payload = run->payload,
                .payload_len = run->payload_len,
                .now_ms = now,
                .data = data_text,
                .overview = fragment,
                .other_rev = rev,
                .changed = changed_text,
                .next_at_ms = next_due(w, &run->repo, now),
                .followup_id = next.id,
                .followup_payload = next_payload,
                .followup_payload_len = next_len});
        free(fragment);
        free_followup(next_payload);
        redisReply *reply = run_cmd(r, &cmd);
        rc = rv_script_reply_code(reply);
        if (rc == RV_OK && reply->elements >= 3 &&
            reply->element[1]->type == REDIS_REPLY_INTEGER &&
            reply->element[2]->type == REDIS_REPLY_INTEGER) {
            *version = reply->element[1]->integer;
            *changed_out = reply->element[2]->integer == 1;
        }
        if (reply)
            freeReplyObject(reply);
    }
out:
    free(changed_text);
    free(data_text);
    return rc;
}

static void store_ratelimit(struct rv_rsync *r,
                            const struct rv_prsync_stats *st)
{
    if (st->ratelimit_remaining < 0)
        return;
    redisReply *reply = rv_rsync_command(
        r, "HSET %s remaining %ld reset_ms %lld", RATELIMIT_KEY,
        st->ratelimit_remaining, (long long)st->ratelimit_reset_ms);
    if (reply)
        freeReplyObject(reply);
}

/* Tells the housekeeping thread which repo the running job is for. */
static void set_job_repo(struct rv_worker *w, const char *repo)
{
    pthread_mutex_lock(&w->job_lock);
    rv_strlcpy(w->job_repo, repo, sizeof(w->job_repo));
    pthread_mutex_unlock(&w->job_lock);
}

void rv_jobloop_budget_hooks(struct rv_worker *w, struct rv_rsync *r,
                             const struct rv_gh_token *tok,
                             const struct rv_job *job,
                             struct rv_ghbudget_ctx *ctx,
                             struct rv_prsync_hooks *hooks)
{
    /* A slot lapses a little after curl's deadline for the request. */
    int64_t timeout_ms = w->cfg->github_timeout * 1000;
    *ctx = (struct rv_ghbudget_ctx){
        .r = r,
        .identity = tok->identity,
        .worker_id = w->id,
        .repo_id = job->repo,
        .job_id = job->id,
        .max_concurrency = (int)w->cfg->github_max_concurrency,
        .slot_ttl_ms = timeout_ms + 5000,
        .wait_ms = timeout_ms < 30000 ? timeout_ms : 30000};
    *hooks =
        (struct rv_prsync_hooks){.before_request = rv_ghbudget_before_request,
                                 .after_request = rv_ghbudget_after_request,
                                 .ud = ctx};
}

/* Runs the sync of the claimed job with tok (value NULL = none). RV_OK
 * with run->doc set, or a failure described in err. A PR sync of a token
 * that is held or whose budget is spent fails at once, sending nothing. */
static int sync_with(struct rv_worker *w, struct rv_rsync *r,
                     struct job_run *run, const struct rv_gh_token *tok,
                     struct rv_sync_error *err)
{
    const char *token = tok->value;
    int64_t started = rv_mono_ms();
    int rc;
    if (run->job.kind == RV_KIND_BRANCHES) {
        struct rv_branchsync_opts opts = {
            .data_dir = w->cfg->data_dir,
            .repo_id = run->job.repo,
            .url = run->repo.url,
            .default_branch = run->repo.default_branch,
            .github_token = token,
            .github_host = w->token_host,
            .fetch_timeout_s = (int)w->cfg->fetch_timeout,
            .max_branches = (int)w->cfg->max_branches,
            .max_conflict_files = 50,
            .now_ms = rv_now_ms(),
            .policy = &w->url_policy,
            .job_id = run->job.id,
        };
        struct rv_branchsync_stats stats;
        memset(&stats, 0, sizeof(stats));
        rc = rv_branchsync_run(&opts, run->prev, &run->doc, &stats, err);
        if (rc == RV_OK)
            LOGF(RV_LOG_INFO, run->job.repo, run->job.id,
                 json_pack("{s:s,s:i,s:i,s:i,s:i,s:I,s:I}", "kind", "branches",
                           "branches", stats.branches, "recomputed",
                           stats.recomputed, "reused", stats.reused, "merged",
                           stats.merged, "fetch_ms", (json_int_t)stats.fetch_ms,
                           "ms", (json_int_t)(rv_mono_ms() - started)),
                 "branch sync done");
        return rc;
    }
    if ((rc = rv_ghbudget_check(r, tok->identity, err)) != RV_OK)
        return rc;
    struct rv_ghbudget_ctx budget;
    struct rv_prsync_hooks hooks;
    rv_jobloop_budget_hooks(w, r, tok, &run->job, &budget, &hooks);
    struct rv_prsync_opts opts = {
        .graphql_url = w->graphql_url,
        .token = token,
        .owner_name = run->repo.github,
        .timeout_s = (int)w->cfg->github_timeout,
        .max_pages = (int)w->cfg->github_max_pages,
        .repo_id = run->job.repo,
        .job_id = run->job.id,
        .hooks = &hooks,
    };
    struct rv_prsync_stats stats;
    memset(&stats, 0, sizeof(stats));
    stats.ratelimit_remaining = -1;
    rc = rv_prsync_run(&opts, &run->doc, &stats, err);
    store_ratelimit(r, &stats);
    if (rc == RV_OK)
        LOGF(RV_LOG_INFO, run->job.repo, run->job.id,
             json_pack("{s:s,s:i,s:i,s:I}", "kind", "prs", "pages", stats.pages,
                       "pullRequests", stats.pull_requests, "ms",
                       (json_int_t)(rv_mono_ms() - started)),
             "PR sync done");
    return rc;
}

bool rv_jobloop_refused_credential(const struct rv_sync_error *err)
{
    return err->code == RV_ERR_UNAUTHORIZED || err->code == RV_ERR_AUTH_FAILED;
}

/* Runs the sync of the claimed job with the repo's token (ghauth.h),
 * trying once more when the installation token is the problem: one that
 * GitHub refuses (revoked, or expired early) is dropped and a new one
 * asked for; one that answers not_found (an installation on selected
 * repositories, this repo not among them) gives way to the PAT, which the
 * holder keeps for this repo a while. If the PAT cannot see the repo
 * either, the installation gets it back. */
static int sync_kind(struct rv_worker *w, struct rv_rsync *r,
                     struct job_run *run, struct rv_sync_error *err)
{
    char from_url[256];
    const char *name =
        run->repo.github && *run->repo.github ? run->repo.github : NULL;
    if (!name && rv_ghauth_name_from_url(run->repo.url, w->token_host, from_url,
                                         sizeof(from_url)) == 0)
        name = from_url;
    bool pinned = false;
    for (int attempt = 0;; attempt++) {
        struct rv_gh_token tok;
        int rc = rv_ghauth_token(w->auth, name, run->job.repo, run->job.id,
                                 &tok, err);
        if (rc != RV_OK)
            return rc;
        rc = sync_with(w, r, run, &tok, err);
        if (pinned && rc != RV_OK && err->code == RV_ERR_NOT_FOUND)
            rv_ghauth_prefer_pat(w->auth, name, false);
        if (rc == RV_OK || attempt > 0 || tok.installation_id == 0)
            return rc;
        const char *why;
        if (rv_jobloop_refused_credential(err)) {
            why = "GitHub refused the installation token; renewing it once";
            rv_ghauth_drop(w->auth, name);
        } else if (err->code == RV_ERR_NOT_FOUND &&
                   rv_ghauth_has_pat(w->auth)) {
            why = "the installation token cannot see this repo; trying "
                  "GITHUB_TOKEN";
            rv_ghauth_prefer_pat(w->auth, name, true);
            pinned = true;
        } else {
            return rc;
        }
        LOGF(RV_LOG_INFO, run->job.repo, run->job.id,
             json_pack("{s:I,s:s}", "installation",
                       (json_int_t)tok.installation_id, "code",
                       rv_errname(err->code)),
             "%s", why);
        json_decref(run->doc);
        run->doc = NULL;
        memset(err, 0, sizeof(*err));
    }
}

int rv_jobloop_run_payload(struct rv_worker *w, struct rv_rsync *r,
                           const char *payload, size_t len)
{
    struct job_run run;
    memset(&run, 0, sizeof(run));
    run.payload = payload;
    run.payload_len = len;
    char why[160];
    int rc = rv_job_decode(payload, len, &run.job, why, sizeof(why));
    if (rc != RV_OK)
        return dead_letter(w, r, payload, len, why);

    if (run.job.kind == RV_KIND_ORG)
        return rv_orgsync_run(w, r, &run.job, payload, len);
    rc = rv_jobloop_claim(w, r, &run.job, payload, len, &run.gen);
    if (rc == RV_ERR_NOT_FOUND || rc == RV_ERR_STALE_JOB) {
        LOG(RV_LOG_INFO, run.job.repo, run.job.id, "job dropped: %s",
            rv_strerror(rc));
        return RV_OK;
    }
    if (rc != RV_OK)
        return rc;
    set_job_repo(w, run.job.repo);
    atomic_store(&w->job_running, 1);

    char data[RV_KEY_MAX];
    struct rv_cmd get;
    rv_cmd_init(&get);
    rv_registry_get_cmd(&get, run.job.repo);
    redisReply *reply = run_cmd(r, &get);
    rc = reply ? rv_repo_from_hash(reply, &run.repo) : RV_ERR_REDIS;
    if (reply)
        freeReplyObject(reply);
    if (rc != RV_OK)
        goto out; /* removed meanwhile: the commit would be refused anyway */
    run.has_repo = true;
    run.prev = get_json(r,
                        run.job.kind == RV_KIND_BRANCHES
                            ? rv_key_branches(data, run.job.repo)
                            : rv_key_prs(data, run.job.repo),
                        run.job.repo);

    struct rv_sync_error err;
    memset(&err, 0, sizeof(err));
    rc = sync_kind(w, r, &run, &err);
    if (rc != RV_OK) {
        if (err.code == RV_OK)
            rv_sync_error_set(&err, RV_ERR_INTERNAL, "%s", rv_strerror(rc));
        rc = rv_jobloop_fail(w, r, &run.job, payload, len, run.gen,
                             run.repo.interval_s > 0 ? run.repo.interval_s
                                                     : w->cfg->sync_interval,
                             &err);
        goto out;
    }
    long long version = 0;
    bool changed = false;
    rc = commit(w, r, &run, &version, &changed);
    LOGF(rc == RV_OK ? RV_LOG_INFO : RV_LOG_WARN, run.job.repo, run.job.id,
         json_pack("{s:s,s:I,s:b,s:s}", "kind", rv_kind_name(run.job.kind),
                   "version", (json_int_t)version, "changed", changed, "result",
                   rv_errname(rc)),
         "commit %s", rc == RV_OK ? "done" : "refused");
    if (rc == RV_ERR_FENCED || rc == RV_ERR_NOT_FOUND)
        rc = RV_OK; /* a newer claim or a removal won; nothing to do */
out:
    atomic_store(&w->job_running, 0);
    set_job_repo(w, "");
    json_decref(run.prev);
    json_decref(run.doc);
    if (run.has_repo)
        rv_repo_free(&run.repo);
    return rc;
}

/* Runs the payloads found in this worker's own processing list. */
static int run_own_list(struct rv_worker *w, struct rv_rsync *r)
{
    char proc[RV_KEY_MAX];
    redisReply *list =
        rv_rsync_command(r, "LRANGE %s 0 99", rv_key_processing(proc, w->id));
    if (!list)
        return RV_ERR_REDIS;
    int rc = RV_OK;
    for (size_t i = 0; list->type == REDIS_REPLY_ARRAY && i < list->elements;
         i++) {
        const redisReply *p = list->element[i];
        if (p->type != REDIS_REPLY_STRING)
            continue;
        LOG(RV_LOG_INFO, NULL, NULL,
            "resuming a job left in this worker's list");
        rc = rv_jobloop_run_payload(w, r, p->str, p->len);
        if (rc == RV_ERR_REDIS)
            break;
    }
    freeReplyObject(list);
    return rc;
}

int rv_jobloop_step(struct rv_worker *w, struct rv_rsync *r, int wait_s)
{
    char proc[RV_KEY_MAX];
    if (w->check_own_list) {
        int rc = run_own_list(w, r);
        if (rc == RV_ERR_REDIS)
            return rc;
        w->check_own_list = false;
    }
    redisReply *reply =
        rv_rsync_command(r, "BLMOVE %s %s RIGHT LEFT %d", RV_KEY_QUEUE,
                         rv_key_processing(proc, w->id), wait_s);
    if (!reply) {
        w->check_own_list = true;
        return RV_ERR_REDIS;
    }
    int rc = RV_OK;
    if (reply->type == REDIS_REPLY_STRING)
        rc = rv_jobloop_run_payload(w, r, reply->str, reply->len);
    else if (reply->type == REDIS_REPLY_ERROR) {
        LOG(RV_LOG_ERROR, NULL, NULL, "BLMOVE failed: %s", reply->str);
        rc = RV_ERR_PROTOCOL;
    }
    freeReplyObject(reply);
    if (rc == RV_ERR_REDIS)
        w->check_own_list = true;
    return rc;
}

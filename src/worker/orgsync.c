/* See orgsync.h. */
#include "worker/orgsync.h"

#include <ctype.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cmd.h"
#include "common/dynbuf.h"
#include "common/errors.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/registry.h"
#include "common/scripts.h"
#include "common/util.h"
#include "worker/ghauth.h"
#include "worker/ghbudget.h"
#include "worker/jobloop.h"

/* One change for commitOrgSync. */
struct org_op {
    char kind; /* 'a' add, 'u' update, 'r' remove */
    char ghid[24];
    char id[RV_REPO_ID_MAX + 1]; /* add: the repo id chosen */
    char github[160];            /* add, update: "owner/name" */
    const char *url;             /* add, update: borrowed from the listing */
};

/* What one run holds; freed by run_free. */
struct org_run {
    const struct rv_job *job;
    const char *payload;
    size_t payload_len;
    long long gen;
    char owner[64];
    char last_installation[24]; /* installation_id the last run used */
    bool installation;          /* this run lists an installation's repos */
    struct rv_org_listing listing;
    json_t *pages; /* the listing's pages, to store */
    json_t *known; /* rv:org:{id}:repos: github id -> repo id */
    struct org_op *ops;
    size_t nops, cap;
    int skipped;         /* refused by the URL policy, or no free id */
    bool keep_removals;  /* the token changed: removals wait a run */
    int64_t deadline_ms; /* rv_mono_ms() by which the listing must end */
};

static void run_free(struct org_run *run)
{
    rv_org_listing_free(&run->listing);
    json_decref(run->pages);
    json_decref(run->known);
    free(run->ops);
}

int rv_orgsync_repo_id(const char *org, const char *name, int64_t github_id,
                       char *buf, size_t size)
{
    char id[RV_REPO_ID_MAX + 1];
    char suffix[24] = "";
    if (github_id > 0)
        snprintf(suffix, sizeof(suffix), "-%lld", (long long)github_id);
    size_t room = RV_REPO_ID_MAX - strlen(suffix);
    int n = snprintf(id, sizeof(id), "%s-%s", org, name);
    if (n < 0)
        return -1;
    if ((size_t)n > room)
        id[room] = '\0';
    for (char *p = id; *p; p++) {
        *p = (char)tolower((unsigned char)*p);
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            *p = '-';
    }
    if (github_id > 0)
        rv_strlcpy(id + strlen(id), suffix, sizeof(id) - strlen(id));
    if (!rv_repo_id_valid(id) || strlen(id) + 1 > size)
        return -1;
    memcpy(buf, id, strlen(id) + 1);
    return 0;
}

static redisReply *run_cmd(struct rv_rsync *r, struct rv_cmd *cmd)
{
    redisReply *reply = rv_rsync_run(r, cmd);
    rv_cmd_free(cmd);
    return reply;
}

/* Reads a hash as a JSON object of strings (values parsed as JSON when
 * parse). NULL on a Redis failure or when out of memory. */
static json_t *read_hash(struct rv_rsync *r, const char *key, bool parse)
{
    redisReply *reply = rv_rsync_command(r, "HGETALL %s", key);
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        if (reply)
            freeReplyObject(reply);
        return NULL;
    }
    json_t *o = json_object();
    for (size_t i = 0; o && i + 1 < reply->elements; i += 2) {
        const redisReply *k = reply->element[i], *v = reply->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        json_t *value = parse ? json_loadb(v->str, v->len, 0, NULL)
                              : json_stringn(v->str, v->len);
        if (value)
            json_object_set_new(o, k->str, value); /* unparsable: re-read */
    }
    freeReplyObject(reply);
    return o;
}

static int add_op(struct org_run *run, struct org_op op)
{
    int rc = rv_grow(&run->ops, &run->cap, run->nops + 1, sizeof(*run->ops),
                     (size_t)RV_ORGLIST_MAX_PAGES * 200);
    if (rc != RV_OK)
        return rc;
    run->ops[run->nops++] = op;
    return RV_OK;
}

/* Whether repo id exists. */
static int repo_exists(struct rv_rsync *r, const char *id, bool *exists)
{
    char key[RV_KEY_MAX];
    redisReply *reply = rv_rsync_command(r, "EXISTS %s", rv_key_meta(key, id));
    if (!reply)
        return RV_ERR_REDIS;
    *exists = reply->type != REDIS_REPLY_INTEGER || reply->integer != 0;
    freeReplyObject(reply);
    return RV_OK;
}

/* Checks a listed repository as a registration would (its URL against the
 * policy, its name); fills op's github. */
static bool entry_acceptable(struct rv_worker *w, const struct org_run *run,
                             const struct rv_org_entry *e, const char *id,
                             struct org_op *op)
{
    char why[256];
    snprintf(op->github, sizeof(op->github), "%s/%s", e->owner, e->name);
    struct rv_repo_spec spec = {.id = id,
                                .url = e->clone_url,
                                .github = op->github,
                                .default_interval_s = w->cfg->sync_interval};
    if (rv_repo_spec_validate(&spec, &w->url_policy, why, sizeof(why)) == RV_OK)
        return true;
    LOGF(RV_LOG_WARN, run->job->repo, run->job->id,
         json_pack("{s:s,s:I}", "github", op->github, "github_id",
                   (json_int_t)e->github_id),
         "org sync: skipping a repository: %s", why);
    return false;
}

/* Picks a free id for a new repository (the plain one, else with its
 * GitHub id), not in Redis and not planned already in this run. */
static int free_id(struct rv_rsync *r, const struct org_run *run,
                   const struct rv_org_entry *e, json_t *planned, char *id,
                   size_t size, bool *found)
{
    *found = false;
    for (int attempt = 0; attempt < 2 && !*found; attempt++) {
        if (rv_orgsync_repo_id(run->job->repo, e->name,
                               attempt ? e->github_id : 0, id, size) != 0)
            return RV_OK;
        bool taken = json_object_get(planned, id) != NULL;
        int rc = taken ? RV_OK : repo_exists(r, id, &taken);
        if (rc != RV_OK)
            return rc;
        *found = !taken;
    }
    if (*found && json_object_set_new(planned, id, json_true()) != 0)
        return RV_ERR_NOMEM;
    return RV_OK;
}

/* Whether the listing speaks of this org's owner: an installation's
 * listing always does (the installation is the owner's, even after the
 * owner was renamed); the PAT's must name the owner at least once when it
 * lists anything, or it is not the listing we asked for. */
static bool listing_is_the_owners(const struct org_run *run)
{
    if (run->installation || run->listing.n == 0)
        return true;
    for (size_t i = 0; i < run->listing.n; i++)
        if (strcasecmp(run->listing.v[i].owner, run->owner) == 0)
            return true;
    return false;
}

static int changed_while_read(struct rv_sync_error *err)
{
    rv_sync_error_set(err, RV_ERR_GITHUB_UNAVAILABLE,
                      "the repository listing changed while it was read; "
                      "nothing was changed");
    return RV_ERR_RETRY;
}

/* Turns the listing into changes: every listed, unarchived repository of
 * the owner is added or updated; every known one not among them removed
 * (unless keep_removals). A listing that names a repository twice changed
 * while it was read: RV_ERR_RETRY. */
static int plan(struct rv_worker *w, struct rv_rsync *r, struct org_run *run,
                struct rv_sync_error *err)
{
    if (!listing_is_the_owners(run)) {
        rv_sync_error_set(err, RV_ERR_BAD_RESPONSE,
                          "GitHub listed no repository of %s; nothing was "
                          "changed",
                          run->owner);
        return RV_ERR_DECODE;
    }
    json_t *seen = json_object(), *wanted = json_object(),
           *planned = json_object();
    int rc = seen && wanted && planned ? RV_OK : RV_ERR_NOMEM;
    for (size_t i = 0; rc == RV_OK && i < run->listing.n; i++) {
        const struct rv_org_entry *e = &run->listing.v[i];
        struct org_op op = {.url = e->clone_url};
        snprintf(op.ghid, sizeof(op.ghid), "%lld", (long long)e->github_id);
        if (json_object_get(seen, op.ghid)) {
            rc = changed_while_read(err);
            break;
        }
        if (json_object_set_new(seen, op.ghid, json_true()) != 0) {
            rc = RV_ERR_NOMEM;
            break;
        }
        /* Archived, or (in the PAT's listing) another owner's now:
         * transferred. Either goes, if we had it. */
        if (e->archived ||
            (!run->installation && strcasecmp(e->owner, run->owner) != 0))
            continue;
        if (json_object_set_new(wanted, op.ghid, json_true()) != 0) {
            rc = RV_ERR_NOMEM;
            break;
        }
        const char *had =
            json_string_value(json_object_get(run->known, op.ghid));
        if (had) {
            op.kind = 'u';
            if (entry_acceptable(w, run, e, had, &op))
                rc = add_op(run, op);
            continue;
        }
        op.kind = 'a';
        bool found = false;
        rc = free_id(r, run, e, planned, op.id, sizeof(op.id), &found);
        if (rc == RV_OK && found && entry_acceptable(w, run, e, op.id, &op))
            rc = add_op(run, op);
        else if (rc == RV_OK)
            run->skipped++;
    }
    const char *ghid;
    json_t *v;
    json_object_foreach(run->known, ghid, v)
    {
        if (rc != RV_OK || run->keep_removals)
            break;
        if (!json_object_get(wanted, ghid)) {
            struct org_op op = {.kind = 'r'};
            rv_strlcpy(op.ghid, ghid, sizeof(op.ghid));
            rc = add_op(run, op);
        }
    }
    json_decref(seen);
    json_decref(wanted);
    json_decref(planned);
    if (rc == RV_ERR_TOO_LARGE)
        rv_sync_error_set(err, RV_ERR_BAD_RESPONSE,
                          "the org has too many repositories");
    return rc;
}

/* Whether the plan removes anything. */
static bool plans_removals(const struct org_run *run)
{
    for (size_t i = 0; i < run->nops; i++)
        if (run->ops[i].kind == 'r')
            return true;
    return false;
}

static void pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    pack_str(pk, s, strlen(s));
}

/* Packs ops[from, to) for commitOrgSync, with the first-sync jobs of the
 * added repos. */
static int pack_ops(const struct org_run *run, size_t from, size_t to,
                    msgpack_sbuffer *sbuf)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, to - from);
    for (size_t i = from; i < to; i++) {
        const struct org_op *op = &run->ops[i];
        if (op->kind == 'r') {
            msgpack_pack_array(&pk, 2);
            pack_cstr(&pk, "remove");
            pack_cstr(&pk, op->ghid);
            continue;
        }
        if (op->kind == 'u') {
            msgpack_pack_array(&pk, 4);
            pack_cstr(&pk, "update");
            pack_cstr(&pk, op->ghid);
            pack_cstr(&pk, op->url);
            pack_cstr(&pk, op->github);
            continue;
        }
        struct rv_job bj, pj;
        char *bp = NULL, *pp = NULL;
        size_t bl = 0, pl = 0;
        int rc = rv_job_new(&bj, op->id, RV_KIND_BRANCHES, RV_REASON_REGISTER,
                            &bp, &bl);
        if (rc == RV_OK)
            rc = rv_job_new(&pj, op->id, RV_KIND_PRS, RV_REASON_REGISTER, &pp,
                            &pl);
        if (rc == RV_OK) {
            msgpack_pack_array(&pk, 9);
            pack_cstr(&pk, "add");
            pack_cstr(&pk, op->ghid);
            pack_cstr(&pk, op->id);
            pack_cstr(&pk, op->url);
            pack_cstr(&pk, op->github);
            pack_cstr(&pk, bj.id);
            pack_str(&pk, bp, bl);
            pack_cstr(&pk, pj.id);
            pack_str(&pk, pp, pl);
        }
        free(bp);
        free(pp);
        if (rc != RV_OK)
            return rc;
    }
    return RV_OK;
}

/* The pages to store, packed as page number, page JSON, ... */
static int pack_pages(const json_t *pages, msgpack_sbuffer *sbuf)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, json_object_size(pages) * 2);
    const char *n;
    json_t *page;
    json_object_foreach((json_t *)pages, n, page)
    {
        char *text = json_dumps(page, JSON_COMPACT);
        if (!text)
            return RV_ERR_NOMEM;
        pack_cstr(&pk, n);
        pack_cstr(&pk, text);
        free(text);
    }
    return RV_OK;
}

/* Sends ops[from, to) (the last batch when final); counts[4] gathers
 * added, updated, removed, skipped. */
static int commit_batch(struct rv_worker *w, struct rv_rsync *r,
                        struct org_run *run, size_t from, size_t to, bool final,
                        int64_t installation_id, long long *counts)
{
    char org[RV_KEY_MAX], repos[RV_KEY_MAX], pages[RV_KEY_MAX],
        proc[RV_KEY_MAX], stats[RV_KEY_MAX], self[RV_KEY_MAX], inst[24] = "";
    msgpack_sbuffer ops, packed_pages;
    msgpack_sbuffer_init(&ops);
    msgpack_sbuffer_init(&packed_pages);
    struct rv_job next;
    char *next_payload = NULL;
    size_t next_len = 0;
    int rc = pack_ops(run, from, to, &ops);
    if (rc == RV_OK && final)
        rc = pack_pages(run->pages, &packed_pages);
    if (rc == RV_OK && final)
        rc = rv_job_new(&next, run->job->repo, RV_KIND_ORG, RV_REASON_FOLLOWUP,
                        &next_payload, &next_len);
    if (rc != RV_OK)
        goto out;
    if (installation_id > 0)
        snprintf(inst, sizeof(inst), "%lld", (long long)installation_id);
    int64_t now = rv_now_ms();
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_script_commitOrgSync(
        &cmd, &(struct rv_commitorgsync_args){
                  .org_key = rv_key_org(org, run->job->repo),
                  .org_repos_key = rv_key_org_repos(repos, run->job->repo),
                  .org_pages_key = rv_key_org_pages(pages, run->job->repo),
                  .processing_key = rv_key_processing(proc, w->id),
                  .stats_key = rv_key_stats(stats, (long long)(now / 60000)),
                  .worker_key = rv_key_worker(self, w->id),
                  .job_id = run->job->id,
                  .gen = run->gen,
                  .payload = run->payload,
                  .payload_len = run->payload_len,
                  .ops = ops.data ? ops.data : "",
                  .ops_len = ops.size,
                  .now_ms = now,
                  .repo_next_at_ms = now + w->cfg->sync_interval * 1000,
                  .is_final = final,
                  .pages = packed_pages.data ? packed_pages.data : "",
                  .pages_len = packed_pages.size,
                  .installation_id = inst,
                  .next_at_ms = now + w->cfg->org_sync_interval * 1000,
                  .followup_id = final ? next.id : "",
                  .followup_payload = next_payload ? next_payload : "",
                  .followup_payload_len = next_len});
    redisReply *reply = run_cmd(r, &cmd);
    rc = reply ? rv_script_reply_code(reply) : RV_ERR_REDIS;
    if (rc == RV_OK && reply->elements >= 5)
        for (int i = 0; i < 4; i++)
            counts[i] += reply->element[i + 1]->type == REDIS_REPLY_INTEGER
                             ? reply->element[i + 1]->integer
                             : 0;
    if (reply)
        freeReplyObject(reply);
out:
    msgpack_sbuffer_destroy(&ops);
    msgpack_sbuffer_destroy(&packed_pages);
    free(next_payload);
    return rc;
}

/* What every listing request of the run shares: the REST base, the token
 * and the budget hooks (budget and hooks filled here, borrowed by opts). */
static void
listing_opts(struct rv_worker *w, struct rv_rsync *r, const struct org_run *run,
             const struct rv_gh_token *tok, struct rv_ghbudget_ctx *budget,
             struct rv_prsync_hooks *hooks, struct rv_orglist_opts *opts)
{
    rv_jobloop_budget_hooks(w, r, tok, run->job, budget, hooks);
    *opts = (struct rv_orglist_opts){.rest = w->rest_url,
                                     .installation = tok->installation_id > 0,
                                     .token = tok->value,
                                     .timeout_s = (int)w->cfg->github_timeout,
                                     .hooks = hooks,
                                     .repo_id = run->job->repo,
                                     .job_id = run->job->id,
                                     .deadline_ms = run->deadline_ms};
}

/* Before anything is removed: every page asked again with its new ETag
 * must answer 304, or a repository may have slid between two pages while
 * they were read (offset paging), and would be taken for gone. */
static int check_unchanged(struct rv_worker *w, struct rv_rsync *r,
                           const struct org_run *run,
                           const struct rv_gh_token *tok,
                           struct rv_sync_error *err)
{
    struct rv_ghbudget_ctx budget;
    struct rv_prsync_hooks hooks;
    struct rv_orglist_opts opts;
    listing_opts(w, r, run, tok, &budget, &hooks, &opts);
    bool unchanged = false;
    int rc = rv_orglist_unchanged(&opts, run->pages, &unchanged, err);
    if (rc == RV_OK && !unchanged)
        rc = changed_while_read(err);
    return rc;
}

/* Lists the owner's repositories with tok: the installation's, or the
 * org's (then the user's) with the PAT or none. */
static int list_repos(struct rv_worker *w, struct rv_rsync *r,
                      struct org_run *run, const struct rv_gh_token *tok,
                      struct rv_orglist_stats *stats, struct rv_sync_error *err)
{
    char key[RV_KEY_MAX], url[1400];
    json_t *cached = read_hash(r, rv_key_org_pages(key, run->job->repo), true);
    if (!cached)
        return RV_ERR_REDIS;
    struct rv_ghbudget_ctx budget;
    struct rv_prsync_hooks hooks;
    struct rv_orglist_opts opts;
    listing_opts(w, r, run, tok, &budget, &hooks, &opts);
    opts.first_url = url;
    opts.cached = cached;
    int rc = RV_OK;
    static const char *const paths[] = {
        "/orgs/%s/repos?per_page=100&type=all",
        "/users/%s/repos?per_page=100&type=owner"};
    for (int i = 0; i < 2; i++) {
        if (opts.installation)
            snprintf(url, sizeof(url),
                     "%s/installation/repositories?per_page=100", w->rest_url);
        else {
            int n = snprintf(url, sizeof(url), "%s", w->rest_url);
            snprintf(url + n, sizeof(url) - (size_t)n, paths[i], run->owner);
        }
        rv_org_listing_free(&run->listing);
        json_decref(run->pages);
        run->pages = NULL;
        memset(err, 0, sizeof(*err));
        rc = rv_orglist_fetch(&opts, &run->listing, &run->pages, stats, err);
        if (opts.installation || rc == RV_OK || err->code != RV_ERR_NOT_FOUND)
            break;
    }
    json_decref(cached);
    return rc;
}

/* The org's owner into run->owner and the installation its last sync
 * used into run->last_installation. RV_ERR_NOT_FOUND when it is gone. */
static int read_owner(struct rv_rsync *r, struct org_run *run)
{
    char key[RV_KEY_MAX];
    redisReply *reply = rv_rsync_command(r, "HMGET %s github installation_id",
                                         rv_key_org(key, run->job->repo));
    if (!reply)
        return RV_ERR_REDIS;
    int rc = RV_ERR_NOT_FOUND;
    const redisReply *owner =
        reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
            ? reply->element[0]
            : NULL;
    const redisReply *inst = owner ? reply->element[1] : NULL;
    if (owner && owner->type == REDIS_REPLY_STRING && owner->len > 0 &&
        owner->len < sizeof(run->owner)) {
        memcpy(run->owner, owner->str, owner->len + 1);
        if (inst->type == REDIS_REPLY_STRING &&
            inst->len < sizeof(run->last_installation))
            memcpy(run->last_installation, inst->str, inst->len + 1);
        rc = RV_OK;
    }
    freeReplyObject(reply);
    return rc;
}

/* Lists, plans and commits; err says why not. */
static int sync_org(struct rv_worker *w, struct rv_rsync *r,
                    struct org_run *run, struct rv_sync_error *err)
{
    int64_t started = rv_mono_ms();
    run->deadline_ms = started + RV_ORGSYNC_DEADLINE_MS;
    struct rv_gh_token tok;
    struct rv_orglist_stats stats = {0};
    int rc;
    for (int attempt = 0;; attempt++) {
        rc = rv_ghauth_token(w->auth, run->owner, run->job->repo, run->job->id,
                             &tok, err);
        if (rc == RV_OK)
            rc = rv_ghbudget_check(r, tok.identity, err);
        if (rc == RV_OK)
            rc = list_repos(w, r, run, &tok, &stats, err);
        if (rc == RV_OK || attempt > 0 || tok.installation_id == 0 ||
            !rv_jobloop_refused_credential(err))
            break;
        LOGF(
            RV_LOG_INFO, run->job->repo, run->job->id,
            json_pack("{s:I}", "installation", (json_int_t)tok.installation_id),
            "GitHub refused the installation token; renewing it once");
        rv_ghauth_drop(w->auth, run->owner);
        memset(err, 0, sizeof(*err));
    }
    if (rc != RV_OK)
        return rc;
    run->installation = tok.installation_id > 0;
    if (run->installation && run->listing.total >= 0 &&
        (size_t)run->listing.total != run->listing.n) {
        rv_sync_error_set(err, RV_ERR_GITHUB_UNAVAILABLE,
                          "the repository listing changed while it was read "
                          "(%lld said, %zu listed); nothing was changed",
                          (long long)run->listing.total, run->listing.n);
        return RV_ERR_RETRY;
    }
    char key[RV_KEY_MAX], inst[24] = "";
    run->known = read_hash(r, rv_key_org_repos(key, run->job->repo), false);
    if (!run->known)
        return RV_ERR_REDIS;
    if (run->installation)
        snprintf(inst, sizeof(inst), "%lld", (long long)tok.installation_id);
    if (strcmp(inst, run->last_installation) != 0 &&
        json_object_size(run->known) > 0) {
        /* Another token sees other repositories (an installation on
         * selected ones, the PAT without the private ones): add what it
         * sees, but remove nothing until a second run with it agrees. */
        run->keep_removals = true;
        LOGF(RV_LOG_INFO, run->job->repo, run->job->id,
             json_pack("{s:s,s:s}", "installation", inst, "was",
                       run->last_installation),
             "org sync: the token changed; removals wait for the next sync");
    }
    if ((rc = plan(w, r, run, err)) != RV_OK)
        return rc;
    if (plans_removals(run) &&
        (rc = check_unchanged(w, r, run, &tok, err)) != RV_OK)
        return rc;
    long long counts[4] = {0};
    size_t from = 0;
    do {
        size_t to = run->nops - from > RV_ORGSYNC_BATCH
                        ? from + RV_ORGSYNC_BATCH
                        : run->nops;
        rc = commit_batch(w, r, run, from, to, to == run->nops,
                          tok.installation_id, counts);
        from = to;
    } while (rc == RV_OK && from < run->nops);
    LOGF(rc == RV_OK ? RV_LOG_INFO : RV_LOG_WARN, run->job->repo, run->job->id,
         json_pack("{s:s,s:s,s:i,s:i,s:I,s:I,s:I,s:I,s:s,s:I}", "kind", "org",
                   "owner", run->owner, "pages", stats.pages, "notModified",
                   stats.not_modified, "added", (json_int_t)counts[0],
                   "updated", (json_int_t)counts[1], "removed",
                   (json_int_t)counts[2], "skipped",
                   (json_int_t)(counts[3] + run->skipped), "result",
                   rv_errname(rc), "ms", (json_int_t)(rv_mono_ms() - started)),
         "org sync %s", rc == RV_OK ? "done" : "refused");
    if (rc == RV_ERR_FENCED || rc == RV_ERR_NOT_FOUND)
        return RV_ERR_FENCED; /* a newer claim or a removal won */
    return rc;
}

int rv_orgsync_run(struct rv_worker *w, struct rv_rsync *r,
                   const struct rv_job *job, const char *payload, size_t len)
{
    struct org_run run = {.job = job, .payload = payload, .payload_len = len};
    rv_org_listing_init(&run.listing);
    int rc = rv_jobloop_claim(w, r, job, payload, len, &run.gen);
    if (rc == RV_ERR_NOT_FOUND || rc == RV_ERR_STALE_JOB) {
        LOG(RV_LOG_INFO, job->repo, job->id, "org job dropped: %s",
            rv_strerror(rc));
        return RV_OK;
    }
    if (rc != RV_OK)
        return rc;
    atomic_store(&w->job_running, 1);
    struct rv_sync_error err;
    memset(&err, 0, sizeof(err));
    rc = read_owner(r, &run);
    if (rc == RV_OK)
        rc = sync_org(w, r, &run, &err);
    if (rc == RV_ERR_FENCED)
        rc = RV_OK; /* commitOrgSync took the job off our list */
    else if (rc != RV_OK && rc != RV_ERR_REDIS) {
        /* failSync takes the job off our list, and answers not_found when
         * the org went meanwhile. */
        if (err.code == RV_OK)
            rv_sync_error_set(&err, RV_ERR_INTERNAL, "%s", rv_strerror(rc));
        rc = rv_jobloop_fail(w, r, job, payload, len, run.gen,
                             w->cfg->org_sync_interval, &err);
        if (rc == RV_ERR_FENCED || rc == RV_ERR_NOT_FOUND)
            rc = RV_OK;
    }
    atomic_store(&w->job_running, 0);
    run_free(&run);
    return rc;
}

/* See registry.h. */
#include "common/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/job.h"
#include "common/scripts.h"
#include "common/urlpolicy.h"
#include "common/util.h"

void rv_repo_free(struct rv_repo *repo)
{
    free(repo->url);
    free(repo->github);
    free(repo->default_branch);
    for (int k = 0; k < 2; k++)
        free(repo->sync[k].error_json);
    memset(repo, 0, sizeof(*repo));
}

/* ---- validation ---- */

/* A branch name a user may register: git's check-ref-format rules for a
 * branch (no spaces or control characters, no "..", no leading '-', none of
 * ~^:?*[\, no "@{", no empty path component, no ".lock" ending), and at most
 * 255 bytes. */
static bool branch_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255 || s[0] == '-' || s[0] == '/' || s[0] == '.' ||
        s[n - 1] == '/' || s[n - 1] == '.' || strstr(s, "..") ||
        strstr(s, "//") || strstr(s, "/.") || strstr(s, "@{") ||
        strcmp(s, "@") == 0 || (n >= 5 && strcmp(s + n - 5, ".lock") == 0))
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f || strchr("~^:?*[\\", *p))
            return false;
    return true;
}

int rv_repo_spec_validate(const struct rv_repo_spec *spec,
                          const struct rv_url_policy *policy, char *err,
                          size_t errlen)
{
    if (!rv_repo_id_valid(spec->id)) {
        snprintf(err, errlen,
                 "invalid repo id: it must match "
                 "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$");
        return RV_ERR_INVALID;
    }
    if (!spec->url || !*spec->url) {
        snprintf(err, errlen, "a remote URL is required");
        return RV_ERR_INVALID;
    }
    int rc = rv_url_policy_check(policy, spec->url, err, errlen);
    if (rc != RV_OK)
        return rc;
    if (spec->github && *spec->github && !rv_github_name_valid(spec->github)) {
        snprintf(err, errlen, "github must be OWNER/NAME");
        return RV_ERR_INVALID;
    }
    if (spec->default_branch && *spec->default_branch &&
        !branch_name_valid(spec->default_branch)) {
        snprintf(err, errlen,
                 "the default branch is not a valid git branch name");
        return RV_ERR_INVALID;
    }
    if (spec->interval_s != 0 &&
        (spec->interval_s < 10 || spec->interval_s > 86400)) {
        snprintf(err, errlen,
                 "the sync interval must be 0 (the default) or 10..86400 "
                 "seconds");
        return RV_ERR_INVALID;
    }
    return RV_OK;
}

/* ---- reading meta fields ---- */

/* An absent or empty number reads as 0. */
static int field_i64(rv_field_get get, void *ctx, const char *name,
                     int64_t *out)
{
    const char *v = get(ctx, name);
    *out = 0;
    if (!v || !*v)
        return 0;
    return rv_parse_i64(v, INT64_MIN, INT64_MAX, out);
}

static bool status_known(const char *s)
{
    return strcmp(s, "idle") == 0 || strcmp(s, "queued") == 0 ||
           strcmp(s, "running") == 0 || strcmp(s, "error") == 0;
}

int rv_sync_state_read(struct rv_sync_state *s, const char *prefix,
                       rv_field_get get, void *ctx)
{
    char name[32];
    snprintf(name, sizeof(name), "%ssync_status", prefix);
    const char *v = get(ctx, name);
    if (!v || !*v)
        v = "idle";
    if (!status_known(v))
        return RV_ERR_PROTOCOL;
    rv_strlcpy(s->status, v, sizeof(s->status));

    snprintf(name, sizeof(name), "%ssync_at", prefix);
    if (field_i64(get, ctx, name, &s->at_ms) != 0)
        return RV_ERR_PROTOCOL;
    snprintf(name, sizeof(name), "%sfails", prefix);
    if (field_i64(get, ctx, name, &s->fails) != 0)
        return RV_ERR_PROTOCOL;
    snprintf(name, sizeof(name), "%sstarted_at", prefix);
    if (field_i64(get, ctx, name, &s->started_ms) != 0)
        return RV_ERR_PROTOCOL;

    snprintf(name, sizeof(name), "%sjob", prefix);
    v = get(ctx, name);
    if (v && rv_strlcpy(s->job, v, sizeof(s->job)) != 0)
        return RV_ERR_PROTOCOL;
    snprintf(name, sizeof(name), "%sworker", prefix);
    v = get(ctx, name);
    if (v && rv_strlcpy(s->worker, v, sizeof(s->worker)) != 0)
        return RV_ERR_PROTOCOL;
    snprintf(name, sizeof(name), "%spending", prefix);
    v = get(ctx, name);
    s->pending = v && strcmp(v, "1") == 0;

    snprintf(name, sizeof(name), "%ssync_error", prefix);
    v = get(ctx, name);
    if (v && *v && !(s->error_json = strdup(v)))
        return RV_ERR_NOMEM;
    return RV_OK;
}

static int dup_field(char **out, rv_field_get get, void *ctx,
                     const char *name)
{
    const char *v = get(ctx, name);
    *out = strdup(v ? v : "");
    return *out ? RV_OK : RV_ERR_NOMEM;
}

/* The url field without any credential. Registration refuses URLs with
 * one, but a URL can reach Redis another way (an older version, a
 * hand-written HSET, a restored dump); stripped here, no reader can show,
 * log or fetch with it. */
static int dup_url(char **out, rv_field_get get, void *ctx)
{
    const char *v = get(ctx, "url");
    if (!v)
        v = "";
    size_t size = strlen(v) + 1; /* stripping never makes it longer */
    if (!(*out = malloc(size)))
        return RV_ERR_NOMEM;
    rv_url_strip_credentials(v, *out, size);
    return RV_OK;
}

int rv_repo_from_fields(struct rv_repo *repo, rv_field_get get, void *ctx)
{
    int rc = RV_OK;
    memset(repo, 0, sizeof(*repo));
    const char *id = get(ctx, "id");
    if (!id || !rv_repo_id_valid(id)) {
        rc = RV_ERR_PROTOCOL;
        goto out;
    }
    rv_strlcpy(repo->id, id, sizeof(repo->id));
    if ((rc = dup_url(&repo->url, get, ctx)) != RV_OK ||
        (rc = dup_field(&repo->github, get, ctx, "github")) != RV_OK ||
        (rc = dup_field(&repo->default_branch, get, ctx, "default_branch")) !=
            RV_OK)
        goto out;
    if (field_i64(get, ctx, "interval", &repo->interval_s) != 0 ||
        field_i64(get, ctx, "created_at", &repo->created_ms) != 0 ||
        field_i64(get, ctx, "version", &repo->version) != 0 ||
        field_i64(get, ctx, "github_id", &repo->github_id) != 0) {
        rc = RV_ERR_PROTOCOL;
        goto out;
    }
    /* An org id that is not one reads as none: it names no org to show. */
    const char *org = get(ctx, "org");
    if (org && rv_repo_id_valid(org))
        rv_strlcpy(repo->org, org, sizeof(repo->org));
    rc = rv_sync_state_read(&repo->sync[RV_KIND_BRANCHES], "branch_", get, ctx);
    if (rc == RV_OK)
        rc = rv_sync_state_read(&repo->sync[RV_KIND_PRS], "pr_", get, ctx);
out:
    if (rc != RV_OK)
        rv_repo_free(repo);
    return rc;
}

const char *rv_hash_field(void *ctx, const char *name)
{
    const redisReply *r = ctx;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
            strcmp(k->str, name) == 0)
            return v->str;
    }
    return NULL;
}

int rv_repo_from_hash(const redisReply *reply, struct rv_repo *repo)
{
    memset(repo, 0, sizeof(*repo));
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements % 2)
        return RV_ERR_PROTOCOL;
    if (reply->elements == 0)
        return RV_ERR_NOT_FOUND;
    return rv_repo_from_fields(repo, rv_hash_field, (void *)reply);
}

/* A field source over an event's "meta" object, with the repo id beside. */
struct event_meta {
    const char *id;
    const json_t *meta;
};

static const char *event_get(void *ctx, const char *name)
{
    const struct event_meta *e = ctx;
    if (strcmp(name, "id") == 0)
        return e->id;
    return json_string_value(json_object_get(e->meta, name));
}

int rv_repo_from_event_meta(struct rv_repo *repo, const char *id,
                            const json_t *meta)
{
    memset(repo, 0, sizeof(*repo));
    if (!json_is_object(meta))
        return RV_ERR_PROTOCOL;
    struct event_meta e = {id, meta};
    return rv_repo_from_fields(repo, event_get, &e);
}

/* ---- JSON ---- */

json_t *rv_repo_json(const struct rv_repo *repo)
{
    const char *github = repo->github && *repo->github ? repo->github : NULL;
    const char *branch = repo->default_branch && *repo->default_branch
                             ? repo->default_branch
                             : NULL;
    json_t *o = json_pack("{s:s,s:s,s:s?,s:s?}", "id", repo->id, "url",
                          repo->url ? repo->url : "", "github", github,
                          "defaultBranch", branch);
    if (o && repo->org[0] &&
        json_object_set_new(o, "org", json_string(repo->org)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *rv_time_json(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char buf[32];
    rv_iso8601(ms, buf, sizeof(buf));
    return json_string(buf);
}

/* Never passed through as text: what is not an object is not shown. */
json_t *rv_error_json(const char *text)
{
    json_t *e = text && *text ? json_loads(text, 0, NULL) : NULL;
    if (json_is_object(e))
        return e;
    json_decref(e);
    return json_null();
}

/* When one kind's last success turns stale: past at_ms + the limit. */
static int64_t kind_stale_from(int64_t at_ms, int64_t stale_after_s)
{
    if (at_ms <= 0)
        return INT64_MIN;
    if (stale_after_s < 0)
        stale_after_s = 0;
    if (stale_after_s > (INT64_MAX - 1) / 1000 ||
        at_ms > INT64_MAX - 1 - stale_after_s * 1000)
        return INT64_MAX;
    return at_ms + stale_after_s * 1000 + 1;
}

int64_t rv_stale_from_ms(const struct rv_repo *repo, int64_t stale_after_s)
{
    int64_t from =
        kind_stale_from(repo->sync[RV_KIND_BRANCHES].at_ms, stale_after_s);
    if (repo->github && *repo->github) {
        int64_t prs =
            kind_stale_from(repo->sync[RV_KIND_PRS].at_ms, stale_after_s);
        if (prs < from)
            from = prs;
    }
    return from;
}

json_t *rv_freshness_json(const struct rv_repo *repo, int64_t now_ms,
                          int64_t stale_after_s)
{
    return rv_freshness_json_as(
        repo, now_ms >= rv_stale_from_ms(repo, stale_after_s), stale_after_s);
}

json_t *rv_freshness_json_as(const struct rv_repo *repo, bool stale,
                             int64_t stale_after_s)
{
    const struct rv_sync_state *b = &repo->sync[RV_KIND_BRANCHES];
    const struct rv_sync_state *p = &repo->sync[RV_KIND_PRS];
    bool has_github = repo->github && *repo->github;
    return json_pack(
        "{s:s,s:o,s:o,s:s,s:o,s:o,s:b,s:I}", "branchSyncStatus", b->status,
        "branchSyncAt", rv_time_json(b->at_ms), "branchSyncError",
        rv_error_json(b->error_json), "prSyncStatus",
        has_github ? p->status : "idle", "prSyncAt",
        rv_time_json(has_github ? p->at_ms : 0), "prSyncError",
        rv_error_json(has_github ? p->error_json : NULL), "stale", stale,
        "staleAfterSeconds", (json_int_t)stale_after_s);
}

/* ---- builders ---- */

int rv_registry_add_cmd(struct rv_cmd *cmd, const struct rv_repo_spec *spec,
                        int64_t now_ms)
{
    char meta[RV_KEY_MAX];
    if (!rv_repo_id_valid(spec->id) || !spec->url)
        return RV_ERR_INVALID;
    bool has_github = spec->github && *spec->github;
    int64_t first = spec->interval_s > 0 ? spec->interval_s
                    : spec->default_interval_s > 0
                        ? spec->default_interval_s
                        : RV_REGISTRY_DEFAULT_INTERVAL_S;
    struct rv_job bjob, pjob;
    char *bpayload = NULL, *ppayload = NULL; /* malloc'd, freed here */
    size_t blen = 0, plen = 0;
    int rc = rv_job_new(&bjob, spec->id, RV_KIND_BRANCHES, RV_REASON_REGISTER,
                        &bpayload, &blen);
    if (rc == RV_OK && has_github)
        rc = rv_job_new(&pjob, spec->id, RV_KIND_PRS, RV_REASON_REGISTER,
                        &ppayload, &plen);
    if (rc == RV_OK)
        rc = rv_script_registerRepo(cmd, &(struct rv_registerrepo_args){
            .meta_key = rv_key_meta(meta, spec->id),
            .id = spec->id,
            .url = spec->url,
            .github = has_github ? spec->github : "",
            .default_branch = spec->default_branch ? spec->default_branch : "",
            .interval_s = spec->interval_s,
            .now_ms = now_ms,
            .next_at_ms = now_ms + first * 1000,
            .branch_job_id = bjob.id,
            .branch_payload = bpayload, .branch_payload_len = blen,
            .pr_job_id = has_github ? pjob.id : "",
            .pr_payload = has_github ? ppayload : "", .pr_payload_len = plen});
    free(bpayload);
    free(ppayload);
    return rc;
}

int rv_registry_remove_cmd(struct rv_cmd *cmd, const char *id)
{
    char k[4][RV_KEY_MAX];
    if (!rv_repo_id_valid(id))
        return RV_ERR_INVALID;
    return rv_script_removeRepo(cmd, &(struct rv_removerepo_args){
        .meta_key = rv_key_meta(k[0], id),
        .branches_key = rv_key_branches(k[1], id),
        .prs_key = rv_key_prs(k[2], id),
        .overview_key = rv_key_overview(k[3], id),
        .id = id});
}

int rv_registry_refresh_cmd(struct rv_cmd *cmd, const char *id, rv_kind kind,
                            rv_reason reason, int64_t now_ms)
{
    /* The job carries its own enqueue time (rv_job_init); now_ms is kept
     * in the signature for builders that need it. */
    (void)now_ms;
    char meta[RV_KEY_MAX];
    if (!rv_repo_id_valid(id))
        return RV_ERR_INVALID;
    struct rv_job job;
    char *payload; /* malloc'd by rv_job_new, freed here */
    size_t len;
    int rc = rv_job_new(&job, id, kind, reason, &payload, &len);
    if (rc == RV_OK)
        rc = rv_script_requestRefresh(cmd, &(struct rv_requestrefresh_args){
            .meta_key = rv_key_meta(meta, id),
            .kind = rv_kind_name(kind),
            .job_id = job.id,
            .payload = payload, .payload_len = len,
            .is_front = reason != RV_REASON_SCHEDULE});
    free(payload);
    return rc;
}

int rv_registry_get_cmd(struct rv_cmd *cmd, const char *id)
{
    char meta[RV_KEY_MAX];
    if (!rv_repo_id_valid(id))
        return RV_ERR_INVALID;
    rv_cmd_add(cmd, "HGETALL");
    rv_cmd_add(cmd, rv_key_meta(meta, id));
    return cmd->failed ? RV_ERR_NOMEM : RV_OK;
}

int rv_registry_refresh_parse(const redisReply *reply,
                              rv_refresh_outcome *outcome)
{
    int rc = rv_script_reply_code(reply);
    if (rc != RV_OK)
        return rc;
    if (reply->elements < 2 || reply->element[1]->type != REDIS_REPLY_STRING)
        return RV_ERR_PROTOCOL;
    if (strcmp(reply->element[1]->str, "queued") == 0)
        *outcome = RV_REFRESH_QUEUED;
    else if (strcmp(reply->element[1]->str, "coalesced") == 0)
        *outcome = RV_REFRESH_COALESCED;
    else
        return RV_ERR_PROTOCOL;
    return RV_OK;
}

/* ---- blocking wrappers ---- */

/* Runs a built script command and returns the code at the head of its
 * reply. cmd is freed here in every case. */
static int run_script(struct rv_rsync *r, struct rv_cmd *cmd, int build_rc)
{
    int rc = build_rc;
    redisReply *reply = NULL;
    if (rc != RV_OK)
        goto out;
    reply = rv_rsync_run(r, cmd);
    rc = rv_script_reply_code(reply);
out:
    rv_cmd_free(cmd);
    if (reply)
        freeReplyObject(reply);
    return rc;
}

int rv_registry_add(struct rv_rsync *r, const struct rv_repo_spec *spec,
                    char *err, size_t errlen)
{
    int rc = rv_repo_spec_validate(spec, NULL, err, errlen);
    if (rc != RV_OK)
        return rc;
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rc = run_script(r, &cmd, rv_registry_add_cmd(&cmd, spec, rv_now_ms()));
    if (rc == RV_ERR_EXISTS)
        snprintf(err, errlen, "repo \"%s\" already exists", spec->id);
    else if (rc == RV_ERR_REDIS)
        snprintf(err, errlen, "%s", r->err);
    else if (rc != RV_OK)
        snprintf(err, errlen, "%s", rv_strerror(rc));
    return rc;
}

int rv_registry_remove(struct rv_rsync *r, const char *id)
{
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    return run_script(r, &cmd, rv_registry_remove_cmd(&cmd, id));
}

int rv_registry_get(struct rv_rsync *r, const char *id, struct rv_repo *out)
{
    int rc;
    redisReply *reply = NULL;
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    memset(out, 0, sizeof(*out));
    if ((rc = rv_registry_get_cmd(&cmd, id)) != RV_OK)
        goto out;
    reply = rv_rsync_run(r, &cmd);
    if (!reply) {
        rc = RV_ERR_REDIS;
        goto out;
    }
    rc = rv_repo_from_hash(reply, out);
out:
    rv_cmd_free(&cmd);
    if (reply)
        freeReplyObject(reply);
    return rc;
}

int rv_registry_refresh(struct rv_rsync *r, const char *id, rv_kind kind,
                        rv_reason reason, rv_refresh_outcome *outcome)
{
    int rc;
    redisReply *reply = NULL;
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    if ((rc = rv_registry_refresh_cmd(&cmd, id, kind, reason,
                                      rv_now_ms())) != RV_OK)
        goto out;
    reply = rv_rsync_run(r, &cmd);
    rc = reply ? rv_registry_refresh_parse(reply, outcome) : RV_ERR_REDIS;
out:
    rv_cmd_free(&cmd);
    if (reply)
        freeReplyObject(reply);
    return rc;
}

int rv_registry_list_ids(struct rv_rsync *r, char ***ids, size_t *count)
{
    return rv_registry_sorted_members(r, RV_KEY_REPOS, ids, count);
}

int rv_registry_sorted_members(struct rv_rsync *r, const char *key,
                               char ***ids, size_t *count)
{
    int rc = RV_OK;
    char **list = NULL; /* handed to the caller on success */
    size_t n = 0;
    *ids = NULL;
    *count = 0;
    redisReply *reply = rv_rsync_command(r, "SMEMBERS %s", key);
    if (!reply)
        return RV_ERR_REDIS;
    if (reply->type != REDIS_REPLY_ARRAY) {
        rc = RV_ERR_PROTOCOL;
        goto out;
    }
    list = calloc(reply->elements + 1, sizeof(*list));
    if (!list) {
        rc = RV_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING)
            continue;
        if (!(list[n] = strdup(reply->element[i]->str))) {
            rc = RV_ERR_NOMEM;
            goto out;
        }
        n++;
    }
    qsort(list, n, sizeof(*list), rv_cmp_str);
    *ids = list;
    *count = n;
    list = NULL;
out:
    if (list)
        rv_registry_free_ids(list, n);
    freeReplyObject(reply);
    return rc;
}

void rv_registry_free_ids(char **ids, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(ids[i]);
    free(ids);
}

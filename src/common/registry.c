/* See registry.h. */
#include "common/registry.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/job.h"
#include "common/scripts.h"

/* Next scheduled sync after registration when the repo has no interval of
 * its own; the workers reschedule with their configured interval after the
 * first sync. */
#define DEFAULT_FIRST_INTERVAL_S 300

void rv_repo_free(struct rv_repo *repo)
{
    free(repo->url);
    free(repo->github);
    free(repo->default_branch);
    for (int k = 0; k < 2; k++)
        free(repo->sync[k].error_json);
    memset(repo, 0, sizeof(*repo));
}

/* A git branch name a user may register (a subset of check-ref-format). */
static bool branch_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255 || s[0] == '-' || s[0] == '/' || s[n - 1] == '/' ||
        s[n - 1] == '.' || strstr(s, "..") || strstr(s, "//") || strstr(s, "@{") ||
        (n >= 5 && strcmp(s + n - 5, ".lock") == 0))
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f || strchr("~^:?*[\\", *p))
            return false;
    return true;
}

int rv_repo_spec_validate(const struct rv_repo_spec *spec, char *err, size_t errlen)
{
    if (!rv_repo_id_valid(spec->id)) {
        snprintf(err, errlen, "id must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$");
        return RV_ERR_INVALID;
    }
    if (!spec->url || !*spec->url) {
        snprintf(err, errlen, "url is required");
        return RV_ERR_INVALID;
    }
    char stripped[2100];
    if (rv_url_strip_credentials(spec->url, stripped, sizeof(stripped)) == 0 &&
        strcmp(stripped, spec->url) != 0) {
        snprintf(err, errlen, "url must not contain credentials; set GITHUB_TOKEN for HTTPS instead");
        return RV_ERR_INVALID;
    }
    if (!rv_remote_url_valid(spec->url)) {
        snprintf(err, errlen, "url must be https://, http://, ssh://, git://, file://, "
                              "user@host:path or an absolute path");
        return RV_ERR_INVALID;
    }
    if (spec->github && *spec->github && !rv_github_name_valid(spec->github)) {
        snprintf(err, errlen, "github must be OWNER/NAME");
        return RV_ERR_INVALID;
    }
    if (spec->default_branch && *spec->default_branch && !branch_name_valid(spec->default_branch)) {
        snprintf(err, errlen, "defaultBranch is not a valid branch name");
        return RV_ERR_INVALID;
    }
    if (spec->interval_s != 0 && (spec->interval_s < 10 || spec->interval_s > 86400)) {
        snprintf(err, errlen, "syncIntervalSeconds must be 0 (default) or 10..86400");
        return RV_ERR_INVALID;
    }
    return RV_OK;
}

/* ---- reading the meta hash ---- */

struct hash_view {
    const redisReply *reply;
};

static const char *hash_get(void *ctx, const char *name)
{
    const redisReply *r = ((struct hash_view *)ctx)->reply;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
            strcmp(k->str, name) == 0)
            return v->str;
    }
    return NULL;
}

static int get_i64(const char *v, int64_t *out)
{
    if (!v || !*v) {
        *out = 0;
        return 0;
    }
    return rv_parse_i64(v, INT64_MIN, INT64_MAX, out);
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

int rv_repo_from_fields(struct rv_repo *repo, rv_field_get get, void *ctx)
{
    memset(repo, 0, sizeof(*repo));
    const char *id = get(ctx, "id");
    if (!id || rv_strlcpy(repo->id, id, sizeof(repo->id)) != 0)
        return RV_ERR_PROTOCOL;
    repo->url = dup_or_empty(get(ctx, "url"));
    repo->github = dup_or_empty(get(ctx, "github"));
    repo->default_branch = dup_or_empty(get(ctx, "default_branch"));
    if (!repo->url || !repo->github || !repo->default_branch)
        goto nomem;
    if (get_i64(get(ctx, "interval"), &repo->interval_s) ||
        get_i64(get(ctx, "created_at"), &repo->created_ms) ||
        get_i64(get(ctx, "version"), &repo->version))
        goto bad;
    static const char *const prefix[2] = {"branch_", "pr_"};
    for (int k = 0; k < 2; k++) {
        struct rv_sync_state *s = &repo->sync[k];
        char name[32];
        snprintf(name, sizeof(name), "%ssync_status", prefix[k]);
        const char *st = get(ctx, name);
        rv_strlcpy(s->status, st && *st ? st : "idle", sizeof(s->status));
        snprintf(name, sizeof(name), "%ssync_at", prefix[k]);
        if (get_i64(get(ctx, name), &s->at_ms))
            goto bad;
        snprintf(name, sizeof(name), "%ssync_error", prefix[k]);
        const char *e = get(ctx, name);
        if (e && *e && !(s->error_json = strdup(e)))
            goto nomem;
        snprintf(name, sizeof(name), "%sjob", prefix[k]);
        const char *j = get(ctx, name);
        rv_strlcpy(s->job, j ? j : "", sizeof(s->job));
        snprintf(name, sizeof(name), "%spending", prefix[k]);
        const char *p = get(ctx, name);
        s->pending = p && strcmp(p, "1") == 0;
        snprintf(name, sizeof(name), "%sfails", prefix[k]);
        if (get_i64(get(ctx, name), &s->fails))
            goto bad;
    }
    return RV_OK;
nomem:
    rv_repo_free(repo);
    return RV_ERR_NOMEM;
bad:
    rv_repo_free(repo);
    return RV_ERR_PROTOCOL;
}

int rv_repo_from_hash(const redisReply *reply, struct rv_repo *repo)
{
    memset(repo, 0, sizeof(*repo));
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements % 2)
        return RV_ERR_PROTOCOL;
    if (reply->elements == 0)
        return RV_ERR_NOT_FOUND;
    struct hash_view view = {reply};
    return rv_repo_from_fields(repo, hash_get, &view);
}

json_t *rv_repo_json(const struct rv_repo *repo)
{
    return json_pack("{s:s,s:s,s:s?,s:s?}", "id", repo->id, "url", repo->url, "github",
                     repo->github && *repo->github ? repo->github : NULL, "defaultBranch",
                     repo->default_branch && *repo->default_branch ? repo->default_branch : NULL);
}

static json_t *time_or_null(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char buf[32];
    rv_iso8601(ms, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *error_or_null(const char *text)
{
    json_t *e = text && *text ? json_loads(text, 0, NULL) : NULL;
    return json_is_object(e) ? e : (json_decref(e), json_null());
}

json_t *rv_freshness_json(const struct rv_repo *repo, int64_t now_ms, int64_t stale_after_s)
{
    const struct rv_sync_state *b = &repo->sync[RV_KIND_BRANCHES];
    const struct rv_sync_state *p = &repo->sync[RV_KIND_PRS];
    bool has_github = repo->github && *repo->github;
    int64_t limit = stale_after_s * 1000;
    bool stale = b->at_ms <= 0 || now_ms - b->at_ms > limit;
    if (has_github && (p->at_ms <= 0 || now_ms - p->at_ms > limit))
        stale = true;
    return json_pack("{s:s,s:o,s:o,s:s,s:o,s:o,s:b,s:I}",
                     "branchSyncStatus", b->status, "branchSyncAt", time_or_null(b->at_ms),
                     "branchSyncError", error_or_null(b->error_json),
                     "prSyncStatus", has_github ? p->status : "idle",
                     "prSyncAt", time_or_null(has_github ? p->at_ms : 0),
                     "prSyncError", error_or_null(has_github ? p->error_json : NULL),
                     "stale", stale, "staleAfterSeconds", (json_int_t)stale_after_s);
}

/* ---- builders ---- */

static int add_job(struct rv_cmd *cmd, const char *id, rv_kind kind, rv_reason reason)
{
    struct rv_job job;
    char *payload = NULL;
    size_t len = 0;
    int rc = rv_job_init(&job, id, kind, reason);
    if (rc == RV_OK)
        rc = rv_job_encode(&job, &payload, &len);
    if (rc != RV_OK)
        return rc;
    rv_cmd_add(cmd, job.id);
    rv_cmd_addlen(cmd, payload, len);
    free(payload);
    return RV_OK;
}

int rv_registry_add_cmd(struct rv_cmd *cmd, const struct rv_repo_spec *spec, int64_t now_ms)
{
    char meta[RV_KEY_MAX];
    bool has_github = spec->github && *spec->github;
    int64_t interval = spec->interval_s > 0 ? spec->interval_s : DEFAULT_FIRST_INTERVAL_S;
    rv_cmd_script(cmd, "registerRepo");
    rv_cmd_add(cmd, rv_key_meta(meta, spec->id));
    rv_cmd_add(cmd, RV_KEY_REPOS);
    rv_cmd_add(cmd, RV_KEY_SCHEDULE);
    rv_cmd_add(cmd, RV_KEY_QUEUE);
    rv_cmd_add(cmd, spec->id);
    rv_cmd_add(cmd, spec->url);
    rv_cmd_add(cmd, has_github ? spec->github : "");
    rv_cmd_add(cmd, spec->default_branch ? spec->default_branch : "");
    rv_cmd_addi64(cmd, spec->interval_s);
    rv_cmd_addi64(cmd, now_ms);
    rv_cmd_addi64(cmd, now_ms + interval * 1000);
    int rc = add_job(cmd, spec->id, RV_KIND_BRANCHES, RV_REASON_REGISTER);
    if (rc != RV_OK)
        return rc;
    if (has_github)
        return add_job(cmd, spec->id, RV_KIND_PRS, RV_REASON_REGISTER);
    rv_cmd_add(cmd, "");
    rv_cmd_add(cmd, "");
    return cmd->failed ? RV_ERR_NOMEM : RV_OK;
}

int rv_registry_remove_cmd(struct rv_cmd *cmd, const char *id)
{
    char k[4][RV_KEY_MAX];
    rv_cmd_script(cmd, "removeRepo");
    rv_cmd_add(cmd, rv_key_meta(k[0], id));
    rv_cmd_add(cmd, rv_key_branches(k[1], id));
    rv_cmd_add(cmd, rv_key_prs(k[2], id));
    rv_cmd_add(cmd, rv_key_overview(k[3], id));
    rv_cmd_add(cmd, RV_KEY_REPOS);
    rv_cmd_add(cmd, RV_KEY_SCHEDULE);
    rv_cmd_add(cmd, id);
    return cmd->failed ? RV_ERR_NOMEM : RV_OK;
}

int rv_registry_refresh_cmd(struct rv_cmd *cmd, const char *id, rv_kind kind, rv_reason reason,
                            int64_t now_ms)
{
    (void)now_ms;
    char meta[RV_KEY_MAX];
    rv_cmd_script(cmd, "requestRefresh");
    rv_cmd_add(cmd, rv_key_meta(meta, id));
    rv_cmd_add(cmd, RV_KEY_QUEUE);
    rv_cmd_add(cmd, rv_kind_name(kind));
    int rc = add_job(cmd, id, kind, reason);
    if (rc != RV_OK)
        return rc;
    rv_cmd_add(cmd, reason == RV_REASON_SCHEDULE ? "0" : "1");
    return cmd->failed ? RV_ERR_NOMEM : RV_OK;
}

int rv_registry_get_cmd(struct rv_cmd *cmd, const char *id)
{
    char meta[RV_KEY_MAX];
    rv_cmd_add(cmd, "HGETALL");
    rv_cmd_add(cmd, rv_key_meta(meta, id));
    return cmd->failed ? RV_ERR_NOMEM : RV_OK;
}

int rv_registry_refresh_parse(const redisReply *reply, rv_refresh_outcome *outcome)
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

static int run_code(struct rv_rsync *r, struct rv_cmd *cmd, int build_rc)
{
    if (build_rc != RV_OK) {
        rv_cmd_free(cmd);
        return build_rc;
    }
    redisReply *reply = rv_rsync_run(r, cmd);
    rv_cmd_free(cmd);
    int rc = rv_script_reply_code(reply);
    if (reply)
        freeReplyObject(reply);
    return rc;
}

int rv_registry_add(struct rv_rsync *r, const struct rv_repo_spec *spec, char *err, size_t errlen)
{
    int rc = rv_repo_spec_validate(spec, err, errlen);
    if (rc != RV_OK)
        return rc;
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rc = run_code(r, &cmd, rv_registry_add_cmd(&cmd, spec, rv_now_ms()));
    if (rc == RV_ERR_EXISTS)
        snprintf(err, errlen, "repo \"%s\" already exists", spec->id);
    else if (rc != RV_OK)
        snprintf(err, errlen, "%s", rc == RV_ERR_REDIS ? r->err : rv_strerror(rc));
    return rc;
}

int rv_registry_remove(struct rv_rsync *r, const char *id)
{
    if (!rv_repo_id_valid(id))
        return RV_ERR_INVALID;
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    return run_code(r, &cmd, rv_registry_remove_cmd(&cmd, id));
}

int rv_registry_get(struct rv_rsync *r, const char *id, struct rv_repo *out)
{
    memset(out, 0, sizeof(*out));
    if (!rv_repo_id_valid(id))
        return RV_ERR_INVALID;
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_registry_get_cmd(&cmd, id);
    redisReply *reply = rv_rsync_run(r, &cmd);
    rv_cmd_free(&cmd);
    if (!reply)
        return RV_ERR_REDIS;
    int rc = rv_repo_from_hash(reply, out);
    freeReplyObject(reply);
    return rc;
}

int rv_registry_refresh(struct rv_rsync *r, const char *id, rv_kind kind, rv_reason reason,
                        rv_refresh_outcome *outcome)
{
    if (!rv_repo_id_valid(id))
        return RV_ERR_INVALID;
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    int rc = rv_registry_refresh_cmd(&cmd, id, kind, reason, rv_now_ms());
    if (rc != RV_OK) {
        rv_cmd_free(&cmd);
        return rc;
    }
    redisReply *reply = rv_rsync_run(r, &cmd);
    rv_cmd_free(&cmd);
    rc = reply ? rv_registry_refresh_parse(reply, outcome) : RV_ERR_REDIS;
    if (reply)
        freeReplyObject(reply);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int rv_registry_list_ids(struct rv_rsync *r, char ***ids, size_t *count)
{
    *ids = NULL;
    *count = 0;
    redisReply *reply = rv_rsync_command(r, "SMEMBERS %s", RV_KEY_REPOS);
    if (!reply)
        return RV_ERR_REDIS;
    int rc = RV_OK;
    if (reply->type != REDIS_REPLY_ARRAY) {
        rc = RV_ERR_PROTOCOL;
        goto out;
    }
    char **list = calloc(reply->elements + 1, sizeof(*list));
    if (!list) {
        rc = RV_ERR_NOMEM;
        goto out;
    }
    size_t n = 0;
    for (size_t i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING)
            continue;
        if (!(list[n] = strdup(reply->element[i]->str))) {
            rv_registry_free_ids(list, n);
            rc = RV_ERR_NOMEM;
            goto out;
        }
        n++;
    }
    qsort(list, n, sizeof(*list), cmp_str);
    *ids = list;
    *count = n;
out:
    freeReplyObject(reply);
    return rc;
}

void rv_registry_free_ids(char **ids, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(ids[i]);
    free(ids);
}

/* See org.h. */
#include "common/org.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/keys.h"
#include "common/scripts.h"
#include "common/util.h"

/* ---- validation ---- */

bool rv_org_owner_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > RV_ORG_OWNER_MAX || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '-') {
            if (s[i + 1] == '-')
                return false;
        } else if (c == '_') {
            /* Enterprise Managed Users: <name>_<shortcode>. */
            if (i == 0 || s[i + 1] == '\0')
                return false;
        } else if (!(c < 0x80 && isalnum(c))) {
            return false;
        }
    }
    return true;
}

int rv_org_spec_validate(const struct rv_org_spec *spec, char *err,
                         size_t errlen)
{
    if (!spec->id || !rv_repo_id_valid(spec->id)) {
        snprintf(err, errlen,
                 "invalid org id: it must match "
                 "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$");
        return RV_ERR_INVALID;
    }
    if (!rv_org_owner_valid(spec->github)) {
        snprintf(err, errlen,
                 "github must be a GitHub owner's login: 1 to 39 letters, "
                 "digits and single hyphens, not starting or ending with "
                 "a hyphen");
        return RV_ERR_INVALID;
    }
    if (spec->sync_interval_s < 0) {
        snprintf(err, errlen, "the org sync interval cannot be negative");
        return RV_ERR_INVALID;
    }
    return RV_OK;
}

/* ---- reading ---- */

void rv_org_free(struct rv_org *org)
{
    free(org->sync.error_json);
    memset(org, 0, sizeof(*org));
}

/* An absent or empty number reads as 0; a negative one is malformed. */
static int field_count(rv_field_get get, void *ctx, const char *name,
                       int64_t *out)
{
    const char *v = get(ctx, name);
    *out = 0;
    if (!v || !*v)
        return 0;
    return rv_parse_i64(v, 0, INT64_MAX, out);
}

int rv_org_from_fields(struct rv_org *org, rv_field_get get, void *ctx)
{
    int rc = RV_ERR_PROTOCOL;
    memset(org, 0, sizeof(*org));
    const char *id = get(ctx, "id");
    const char *github = get(ctx, "github");
    if (!id || !rv_repo_id_valid(id) || !rv_org_owner_valid(github))
        goto out;
    rv_strlcpy(org->id, id, sizeof(org->id));
    rv_strlcpy(org->github, github, sizeof(org->github));
    if (field_count(get, ctx, "installation_id", &org->installation_id) ||
        field_count(get, ctx, "repo_count", &org->repo_count) ||
        field_count(get, ctx, "created_at", &org->created_ms))
        goto out;
    rc = rv_sync_state_read(&org->sync, "org_", get, ctx);
out:
    if (rc != RV_OK)
        rv_org_free(org);
    return rc;
}

int rv_org_from_hash(const redisReply *reply, struct rv_org *org)
{
    memset(org, 0, sizeof(*org));
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements % 2)
        return RV_ERR_PROTOCOL;
    if (reply->elements == 0)
        return RV_ERR_NOT_FOUND;
    return rv_org_from_fields(org, rv_hash_field, (void *)reply);
}

/* A field source over an event's "meta", with the org id beside. */
struct org_event {
    const char *id;
    const json_t *meta;
};

static const char *org_event_get(void *ctx, const char *name)
{
    const struct org_event *e = ctx;
    if (strcmp(name, "id") == 0)
        return e->id;
    return json_string_value(json_object_get(e->meta, name));
}

int rv_org_from_event_meta(struct rv_org *org, const char *id,
                           const json_t *meta)
{
    memset(org, 0, sizeof(*org));
    if (!json_is_object(meta))
        return RV_ERR_PROTOCOL;
    struct org_event e = {id, meta};
    return rv_org_from_fields(org, org_event_get, &e);
}

/* ---- JSON ---- */

json_t *rv_org_json(const struct rv_org *org)
{
    return json_pack("{s:s,s:s,s:o,s:I,s:s,s:o,s:o}", "id", org->id, "github",
                     org->github, "installationId",
                     org->installation_id > 0
                         ? json_integer((json_int_t)org->installation_id)
                         : json_null(),
                     "repoCount", (json_int_t)org->repo_count, "syncStatus",
                     org->sync.status, "syncAt", rv_time_json(org->sync.at_ms),
                     "syncError", rv_error_json(org->sync.error_json));
}

const char *rv_org_token_identity(const struct rv_org *org, char *buf,
                                  size_t size)
{
    if (org->installation_id > 0)
        snprintf(buf, size, "%lld", (long long)org->installation_id);
    else
        rv_strlcpy(buf, "pat", size);
    return buf;
}

/* One value of the budget's HMGET: a number, or null when unset or not
 * a number. */
static json_t *budget_value(const redisReply *e, bool is_time)
{
    int64_t v;
    if (!e || e->type != REDIS_REPLY_STRING ||
        rv_parse_i64(e->str, 0, INT64_MAX, &v) != 0)
        return json_null();
    return is_time ? rv_time_json(v) : json_integer((json_int_t)v);
}

json_t *rv_org_budget_json(const redisReply *hmget)
{
    if (!hmget || hmget->type != REDIS_REPLY_ARRAY || hmget->elements != 3)
        return json_null();
    bool any = false;
    for (size_t i = 0; i < 3; i++)
        any = any || hmget->element[i]->type == REDIS_REPLY_STRING;
    if (!any)
        return json_null();
    return json_pack("{s:o,s:o,s:o}", "remaining",
                     budget_value(hmget->element[0], false), "limit",
                     budget_value(hmget->element[1], false), "resetAt",
                     budget_value(hmget->element[2], true));
}

/* ---- builders and parsers ---- */

int rv_org_add_cmd(struct rv_cmd *cmd, const struct rv_org_spec *spec,
                   int64_t now_ms)
{
    char key[RV_KEY_MAX], lower[RV_ORG_OWNER_MAX + 1];
    char err[256];
    if (rv_org_spec_validate(spec, err, sizeof(err)) != RV_OK)
        return RV_ERR_INVALID;
    size_t n = strlen(spec->github);
    for (size_t i = 0; i <= n; i++)
        lower[i] = (char)tolower((unsigned char)spec->github[i]);
    int64_t interval = spec->sync_interval_s > 0
                           ? spec->sync_interval_s
                           : RV_ORG_DEFAULT_SYNC_INTERVAL_S;
    struct rv_job job;
    char *payload = NULL; /* malloc'd by rv_job_new, freed here */
    size_t len = 0;
    int rc = rv_job_new(&job, spec->id, RV_KIND_ORG, RV_REASON_REGISTER,
                        &payload, &len);
    if (rc == RV_OK)
        rc = rv_script_registerOrg(cmd,
                                   &(struct rv_registerorg_args){
                                       .org_key = rv_key_org(key, spec->id),
                                       .id = spec->id,
                                       .github = spec->github,
                                       .owner_lower = lower,
                                       .now_ms = now_ms,
                                       .next_at_ms = now_ms + interval * 1000,
                                       .job_id = job.id,
                                       .payload = payload,
                                       .payload_len = len});
    free(payload);
    return rc;
}

int rv_org_add_parse(const redisReply *reply, bool *owner_taken, char *other,
                     size_t otherlen)
{
    *owner_taken = false;
    if (otherlen)
        other[0] = '\0';
    int rc = rv_script_reply_code(reply);
    if (rc != RV_ERR_EXISTS)
        return rc;
    if (reply->elements >= 3 && reply->element[1]->type == REDIS_REPLY_STRING &&
        strcmp(reply->element[1]->str, "owner") == 0 &&
        reply->element[2]->type == REDIS_REPLY_STRING) {
        *owner_taken = true;
        rv_strlcpy(other, reply->element[2]->str, otherlen);
    }
    return rc;
}

int rv_org_remove_cmd(struct rv_cmd *cmd, const char *id)
{
    char k[3][RV_KEY_MAX];
    if (!rv_repo_id_valid(id))
        return RV_ERR_INVALID;
    return rv_script_removeOrg(
        cmd,
        &(struct rv_removeorg_args){.org_key = rv_key_org(k[0], id),
                                    .org_repos_key = rv_key_org_repos(k[1], id),
                                    .org_pages_key = rv_key_org_pages(k[2], id),
                                    .id = id});
}

int rv_org_remove_parse(const redisReply *reply, int64_t *repos)
{
    int rc = rv_script_reply_code(reply);
    if (rc != RV_OK)
        return rc;
    if (reply->elements < 2 || reply->element[1]->type != REDIS_REPLY_ARRAY)
        return RV_ERR_PROTOCOL;
    if (repos)
        *repos = (int64_t)reply->element[1]->elements;
    return RV_OK;
}

int rv_org_refresh_cmd(struct rv_cmd *cmd, const char *id, rv_reason reason)
{
    char key[RV_KEY_MAX];
    if (!rv_repo_id_valid(id))
        return RV_ERR_INVALID;
    struct rv_job job;
    char *payload = NULL; /* malloc'd by rv_job_new, freed here */
    size_t len = 0;
    int rc = rv_job_new(&job, id, RV_KIND_ORG, reason, &payload, &len);
    if (rc == RV_OK)
        rc = rv_script_requestRefresh(
            cmd, &(struct rv_requestrefresh_args){
                     .meta_key = rv_key_org(key, id),
                     .kind = rv_kind_name(RV_KIND_ORG),
                     .job_id = job.id,
                     .payload = payload,
                     .payload_len = len,
                     .is_front = reason != RV_REASON_SCHEDULE});
    free(payload);
    return rc;
}

int rv_org_get_cmd(struct rv_cmd *cmd, const char *id)
{
    char key[RV_KEY_MAX];
    if (!rv_repo_id_valid(id))
        return RV_ERR_INVALID;
    rv_cmd_add(cmd, "HGETALL");
    rv_cmd_add(cmd, rv_key_org(key, id));
    return cmd->failed ? RV_ERR_NOMEM : RV_OK;
}

/* ---- blocking wrappers ---- */

/* Sends cmd once built (build_rc RV_OK) and returns its reply, or NULL
 * with *rc set. cmd is freed here in every case. */
static redisReply *run(struct rv_rsync *r, struct rv_cmd *cmd, int build_rc,
                       int *rc)
{
    redisReply *reply = NULL;
    *rc = build_rc;
    if (build_rc == RV_OK && !(reply = rv_rsync_run(r, cmd)))
        *rc = RV_ERR_REDIS;
    rv_cmd_free(cmd);
    return reply;
}

int rv_org_add(struct rv_rsync *r, const struct rv_org_spec *spec, char *err,
               size_t errlen)
{
    int rc = rv_org_spec_validate(spec, err, errlen);
    if (rc != RV_OK)
        return rc;
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    redisReply *reply =
        run(r, &cmd, rv_org_add_cmd(&cmd, spec, rv_now_ms()), &rc);
    bool owner_taken = false;
    char other[RV_REPO_ID_MAX + 1] = "";
    if (reply)
        rc = rv_org_add_parse(reply, &owner_taken, other, sizeof(other));
    if (rc == RV_ERR_EXISTS && owner_taken)
        snprintf(err, errlen,
                 "GitHub owner \"%s\" is already registered by org \"%s\"",
                 spec->github, other);
    else if (rc == RV_ERR_EXISTS)
        snprintf(err, errlen, "org \"%s\" already exists", spec->id);
    else if (rc == RV_ERR_REDIS)
        snprintf(err, errlen, "%s",
                 r->err[0] ? r->err : "Redis is unreachable");
    else if (rc != RV_OK)
        snprintf(err, errlen, "%s", rv_strerror(rc));
    if (reply)
        freeReplyObject(reply);
    return rc;
}

int rv_org_remove(struct rv_rsync *r, const char *id, int64_t *repos)
{
    int rc;
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    redisReply *reply = run(r, &cmd, rv_org_remove_cmd(&cmd, id), &rc);
    if (reply) {
        rc = rv_org_remove_parse(reply, repos);
        freeReplyObject(reply);
    }
    return rc;
}

int rv_org_get(struct rv_rsync *r, const char *id, struct rv_org *out)
{
    int rc;
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    memset(out, 0, sizeof(*out));
    redisReply *reply = run(r, &cmd, rv_org_get_cmd(&cmd, id), &rc);
    if (reply) {
        rc = rv_org_from_hash(reply, out);
        freeReplyObject(reply);
    }
    return rc;
}

int rv_org_refresh(struct rv_rsync *r, const char *id, rv_reason reason,
                   rv_refresh_outcome *outcome)
{
    int rc;
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    redisReply *reply = run(r, &cmd, rv_org_refresh_cmd(&cmd, id, reason), &rc);
    if (reply) {
        rc = rv_registry_refresh_parse(reply, outcome);
        freeReplyObject(reply);
    }
    return rc;
}

int rv_org_list_ids(struct rv_rsync *r, char ***ids, size_t *count)
{
    return rv_registry_sorted_members(r, RV_KEY_ORGS, ids, count);
}

json_t *rv_org_refresh_json(const char *id, rv_refresh_outcome outcome)
{
    bool queued = outcome == RV_REFRESH_QUEUED;
    json_t *kinds = json_pack("[s]", rv_kind_name(RV_KIND_ORG));
    json_t *none = json_array();
    json_t *body = kinds && none ? json_pack("{s:s,s:O,s:O}", "org", id,
                                             "queued", queued ? kinds : none,
                                             "coalesced", queued ? none : kinds)
                                 : NULL;
    json_decref(kinds);
    json_decref(none);
    return body;
}

/*
 * The org registry (docs/redis.md, "Organisations"): an org is a GitHub
 * owner whose repositories repoview keeps registered. As in registry.h,
 * each operation is a command builder plus a reply parser, shared by the
 * API (async) and the CLI (the blocking wrappers at the end), so both send
 * the same scripts. The org sync itself is the worker's (worker/orgsync.c).
 */
#ifndef REPOVIEW_COMMON_ORG_H
#define REPOVIEW_COMMON_ORG_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/cmd.h"
#include "common/job.h"
#include "common/rconn.h"
#include "common/registry.h"

/* GitHub's longest login. */
#define RV_ORG_OWNER_MAX 39
/* REPOVIEW_ORG_SYNC_INTERVAL's default, for a caller that passes none. */
#define RV_ORG_DEFAULT_SYNC_INTERVAL_S 3600

/* True for a GitHub login: 1..39 letters, digits and single hyphens, not
 * starting or ending with a hyphen. */
bool rv_org_owner_valid(const char *s);

/* What a user registers. Strings are borrowed for the call. */
struct rv_org_spec {
    const char *id;          /* an id as a repo's (rv_repo_id_valid) */
    const char *github;      /* the owner's login */
    int64_t sync_interval_s; /* REPOVIEW_ORG_SYNC_INTERVAL: the first
                              * scheduled sync is now + this; 0 = default */
};

/* Validates spec. RV_OK, or RV_ERR_INVALID with a sentence in err. */
int rv_org_spec_validate(const struct rv_org_spec *spec, char *err,
                         size_t errlen);

/* An org as read from its hash. Owns sync.error_json. */
struct rv_org {
    char id[RV_REPO_ID_MAX + 1];
    char github[RV_ORG_OWNER_MAX + 1];
    int64_t installation_id; /* the App installation of the last sync, 0 */
    int64_t repo_count;
    int64_t created_ms;
    struct rv_sync_state sync; /* the org_ fields */
};

void rv_org_free(struct rv_org *org);

/* Fills org from any source of its fields (id, github, installation_id,
 * repo_count, created_at and the org_ sync fields): one parser for the
 * hash and for the "meta" of an org's status event. Absent or empty fields
 * read as empty, 0 or "idle". RV_OK; RV_ERR_PROTOCOL when the id is
 * missing or invalid, the login is not one, a number is malformed or a
 * status unknown; RV_ERR_NOMEM. On failure org holds nothing to free. */
int rv_org_from_fields(struct rv_org *org, rv_field_get get, void *ctx);
/* The same from an HGETALL reply: RV_ERR_NOT_FOUND for an empty one. */
int rv_org_from_hash(const redisReply *reply, struct rv_org *org);
/* The same from an event's "meta" object for the org named id (borrowed). */
int rv_org_from_event_meta(struct rv_org *org, const char *id,
                           const json_t *meta);

/* The contract's org object: {"id","github","installationId","repoCount",
 * "syncStatus","syncAt","syncError"}, installationId and syncAt null when
 * unknown, syncError null or {"code","message","at"}. New reference or
 * NULL. */
json_t *rv_org_json(const struct rv_org *org);

/* The GitHub token identity whose budget the org's syncs spend: its
 * installation id in decimal, or "pat" before any App installation was
 * used. Into buf (>= 24 bytes); returns buf. */
const char *rv_org_token_identity(const struct rv_org *org, char *buf,
                                  size_t size);

/* The budget object of an HMGET of rv:gh:budget:<identity> for remaining,
 * limit, resetAt (borrowed): {"remaining","limit","resetAt"} with unknown
 * values null, or null when nothing was ever recorded. New reference or
 * NULL. */
json_t *rv_org_budget_json(const redisReply *hmget);

/* ---- builders and parsers ---- */

/* registerOrg: writes the org's hash, indexes id and owner, queues the
 * first org sync (reason register) at the front and schedules the next.
 * spec must have passed rv_org_spec_validate. */
int rv_org_add_cmd(struct rv_cmd *cmd, const struct rv_org_spec *spec,
                   int64_t now_ms);
/* Parses a registerOrg reply: RV_OK; RV_ERR_EXISTS with *owner_taken false
 * (the id is taken) or true (other, of otherlen bytes, names the org that
 * has the owner); RV_ERR_PROTOCOL / RV_ERR_REDIS. */
int rv_org_add_parse(const redisReply *reply, bool *owner_taken, char *other,
                     size_t otherlen);
/* removeOrg: the org, its keys and every repo it registered. */
int rv_org_remove_cmd(struct rv_cmd *cmd, const char *id);
/* Parses a removeOrg reply: RV_OK with *repos (how many repos went; may
 * be NULL; their ids are the strings of reply->element[1]),
 * RV_ERR_NOT_FOUND, RV_ERR_PROTOCOL / RV_ERR_REDIS. */
int rv_org_remove_parse(const redisReply *reply, int64_t *repos);
/* requestRefresh of kind org on the org's hash; the reply parses with
 * rv_registry_refresh_parse. Reasons as there (schedule at the back). */
int rv_org_refresh_cmd(struct rv_cmd *cmd, const char *id, rv_reason reason);
/* The answer to an org refresh (POST /v1/orgs/{id}/refresh, and the CLI's
 * --json): {"org","queued":[kinds],"coalesced":[kinds]}. New reference, or
 * NULL when out of memory. */
json_t *rv_org_refresh_json(const char *id, rv_refresh_outcome outcome);
/* HGETALL of the org's hash. */
int rv_org_get_cmd(struct rv_cmd *cmd, const char *id);

/* ---- blocking wrappers (CLI, tests) ----
 * Each returns RV_OK, the script's code, RV_ERR_INVALID for a bad id,
 * RV_ERR_REDIS (r->err says why) or RV_ERR_PROTOCOL. */

/* Validates and registers spec; on failure err holds a sentence for the
 * user (what was invalid, which org has the owner, r->err). */
int rv_org_add(struct rv_rsync *r, const struct rv_org_spec *spec, char *err,
               size_t errlen);
/* *repos (may be NULL) gets the number of repos removed with the org. */
int rv_org_remove(struct rv_rsync *r, const char *id, int64_t *repos);
/* On RV_OK out is filled (free with rv_org_free). */
int rv_org_get(struct rv_rsync *r, const char *id, struct rv_org *out);
int rv_org_refresh(struct rv_rsync *r, const char *id, rv_reason reason,
                   rv_refresh_outcome *outcome);
/* Sorted ids of all orgs; free with rv_registry_free_ids. */
int rv_org_list_ids(struct rv_rsync *r, char ***ids, size_t *count);

#endif

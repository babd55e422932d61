/*
 * Repo registry operations shared by the CLI (blocking) and the API (async).
 * Each operation is a command builder plus a reply parser, so both
 * transports send the same scripts; the rv_registry_* functions at the end
 * run them over a blocking connection.
 */
#ifndef REPOVIEW_COMMON_REGISTRY_H
#define REPOVIEW_COMMON_REGISTRY_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/cmd.h"
#include "common/job.h"
#include "common/keys.h"
#include "common/rconn.h"
#include "common/util.h"

/* Seconds to the first scheduled sync of a repo registered with no interval
 * of its own when the caller passes no default either. */
#define RV_REGISTRY_DEFAULT_INTERVAL_S 300

/* What a user registers. Strings are borrowed for the call.
 *
 * interval_s is stored as given: 0 stays 0 in the meta hash and means "the
 * workers' REPOVIEW_SYNC_INTERVAL", so changing that setting applies to every
 * repo that did not choose its own. Only the first scheduled sync is timed
 * at registration (now + interval): for that, the caller passes its own
 * REPOVIEW_SYNC_INTERVAL in default_interval_s (0 = 300 s); after the first
 * sync the workers schedule with their setting. */
struct rv_repo_spec {
    const char *id;
    const char *url;            /* credentials are refused, not stored */
    const char *github;         /* "owner/name" or NULL/"" */
    const char *default_branch; /* NULL/"" = the remote's HEAD */
    int64_t interval_s;         /* 0 = REPOVIEW_SYNC_INTERVAL */
    int64_t default_interval_s; /* the caller's REPOVIEW_SYNC_INTERVAL */
};

/* Freshness of one kind, as stored in the meta hash. */
struct rv_sync_state {
    char status[16];             /* idle, queued, running, error */
    int64_t at_ms;               /* last success, 0 = never */
    char *error_json;            /* {"code","message","at"} text, or NULL */
    char job[RV_JOB_ID_MAX + 1]; /* queued or running job, may be "" */
    bool pending;       /* a follow-up is wanted after the running sync */
    int64_t fails;      /* consecutive failures */
    char worker[128];   /* the worker running it, "" when not running */
    int64_t started_ms; /* when the running sync started, 0 = not running */
};

/* A repo as read from its meta hash. Owns its strings. */
struct rv_repo {
    char id[RV_REPO_ID_MAX + 1];
    char *url;
    char *github;         /* "" when none */
    char *default_branch; /* "" when not set */
    int64_t interval_s;   /* 0 = default */
    int64_t created_ms;
    int64_t version;
    char org[RV_REPO_ID_MAX + 1]; /* the org that registered it, or "" */
    int64_t github_id;            /* GitHub's repository id, 0 = unknown */
    struct rv_sync_state sync[2]; /* by rv_kind */
};

void rv_repo_free(struct rv_repo *repo);

struct rv_url_policy;

/* Validates spec (id, the URL against policy: see rv_url_policy_check,
 * github name, branch name, interval range). Returns RV_OK, or
 * RV_ERR_INVALID or RV_ERR_URL_NOT_ALLOWED with a user-facing message in
 * err. */
int rv_repo_spec_validate(const struct rv_repo_spec *spec,
                          const struct rv_url_policy *policy, char *err,
                          size_t errlen);

/* Looks up one meta field by name; NULL when absent. The string must stay
 * valid until rv_repo_from_fields returns. */
typedef const char *(*rv_field_get)(void *ctx, const char *name);

/* Fills repo from any source of meta fields (the names registerRepo writes:
 * id, url, github, default_branch, interval, created_at, version, org,
 * github_id, and per
 * kind <p>sync_status, <p>sync_at, <p>sync_error, <p>job, <p>pending,
 * <p>fails, <p>worker, <p>started_at with <p> = "branch_" or "pr_"). One
 * parser for two sources: the hash in Redis and the "meta" object of an
 * event. Absent or empty fields read as empty, 0 or "idle". Returns RV_OK;
 * RV_ERR_PROTOCOL when "id" is missing or invalid, a number is malformed
 * or a status is unknown; RV_ERR_NOMEM. On failure repo holds nothing to
 * free. On success free it with rv_repo_free. */
int rv_repo_from_fields(struct rv_repo *repo, rv_field_get get, void *ctx);

/* Fills repo from an HGETALL reply of the meta hash. RV_ERR_NOT_FOUND for
 * an empty reply, RV_ERR_PROTOCOL for a malformed one. */
int rv_repo_from_hash(const redisReply *reply, struct rv_repo *repo);

/* Fills repo from the "meta" object of an rv:events message (lua/includes/
 * eventMeta.lua: version, github, interval and the six freshness fields, all
 * strings) for the repo named id (the event's "repo"), so a subscriber can
 * render freshness without reading Redis. url and default_branch are "".
 * Same results as rv_repo_from_fields; meta is borrowed. */
int rv_repo_from_event_meta(struct rv_repo *repo, const char *id,
                            const json_t *meta);

/* {"id","url","github","defaultBranch"} (github/defaultBranch null when
 * unset), and "org" for a repo an org registered (absent otherwise); new
 * reference, NULL on allocation failure. */
json_t *rv_repo_json(const struct rv_repo *repo);

/* The contract's freshness object at time now_ms. A repo with no github has
 * PR sync idle and never stale on PRs. New reference or NULL. */
json_t *rv_freshness_json(const struct rv_repo *repo, int64_t now_ms,
                          int64_t stale_after_s);
/* The same with "stale" given, for a caller that renders both forms once
 * and picks one at each read by rv_stale_from_ms. */
json_t *rv_freshness_json_as(const struct rv_repo *repo, bool stale,
                             int64_t stale_after_s);
/* The first moment (epoch ms) at which repo reads as stale: "stale" is
 * now_ms >= this. INT64_MIN when a kind it looks at never synced;
 * INT64_MAX when it cannot go stale by age. Only a new sync moves it. */
int64_t rv_stale_from_ms(const struct rv_repo *repo, int64_t stale_after_s);

/* ---- pieces shared with the org registry (org.c) ---- */

/* Reads the freshness fields of one kind, named <prefix>sync_status and so
 * on ("branch_", "pr_", "org_"), into s (zeroed by the caller). RV_OK,
 * RV_ERR_PROTOCOL for a malformed value or RV_ERR_NOMEM; s->error_json is
 * the caller's to free in every case. */
int rv_sync_state_read(struct rv_sync_state *s, const char *prefix,
                       rv_field_get get, void *ctx);
/* A field source over an HGETALL reply (ctx: the redisReply, borrowed). */
const char *rv_hash_field(void *ctx, const char *name);
/* ISO-8601 text of ms, or null for ms <= 0. New reference or NULL. */
json_t *rv_time_json(int64_t ms);
/* The stored error text {"code","message","at"} as an object, or null when
 * there is none or it is not an object. New reference or NULL. */
json_t *rv_error_json(const char *text);

/* ---- builders and parsers ---- */

/* registerRepo: writes the meta hash and queues the first sync(s), with
 * reason "register". spec must have passed rv_repo_spec_validate. */
int rv_registry_add_cmd(struct rv_cmd *cmd, const struct rv_repo_spec *spec,
                        int64_t now_ms);
/* removeRepo: deletes every key of the repo. */
int rv_registry_remove_cmd(struct rv_cmd *cmd, const char *id);
/* requestRefresh for one kind. Reasons user, webhook, followup and register
 * queue at the front (the consuming end), schedule at the back. */
int rv_registry_refresh_cmd(struct rv_cmd *cmd, const char *id, rv_kind kind,
                            rv_reason reason, int64_t now_ms);
/* HGETALL of the meta hash. */
int rv_registry_get_cmd(struct rv_cmd *cmd, const char *id);

/* Result of one requestRefresh: queued (a job was pushed, or a follow-up
 * was arranged) or coalesced (an equivalent job already exists). */
typedef enum rv_refresh_outcome {
    RV_REFRESH_QUEUED = 0,
    RV_REFRESH_COALESCED = 1,
} rv_refresh_outcome;

/* Parses a requestRefresh reply: RV_OK with *outcome, or the script's error
 * code (RV_ERR_NOT_FOUND, RV_ERR_NO_GITHUB) / RV_ERR_PROTOCOL. */
int rv_registry_refresh_parse(const redisReply *reply,
                              rv_refresh_outcome *outcome);

/* ---- blocking wrappers (CLI, tests, `up --demo`) ----
 * Each returns RV_OK, the script's code, RV_ERR_INVALID for a bad id,
 * RV_ERR_REDIS when Redis is unreachable (r->err says why) or
 * RV_ERR_PROTOCOL. */

/* Validates spec (its URL's form and credentials only: the caller checks
 * the URL policy, as the CLI and the API do) and registers it. On failure
 * err holds a sentence for the user (the validation message, "repo "x" already
 * exists", r->err). */
int rv_registry_add(struct rv_rsync *r, const struct rv_repo_spec *spec,
                    char *err, size_t errlen);
int rv_registry_remove(struct rv_rsync *r, const char *id);
/* On RV_OK out is filled (free with rv_repo_free); otherwise out holds
 * nothing to free. */
int rv_registry_get(struct rv_rsync *r, const char *id, struct rv_repo *out);
int rv_registry_refresh(struct rv_rsync *r, const char *id, rv_kind kind,
                        rv_reason reason, rv_refresh_outcome *outcome);
/* Sorted ids of all repos; *ids is a malloc'd array of malloc'd strings,
 * freed with rv_registry_free_ids. */
int rv_registry_list_ids(struct rv_rsync *r, char ***ids, size_t *count);
/* The same for the set at key (rv:orgs). */
int rv_registry_sorted_members(struct rv_rsync *r, const char *key,
                               char ***ids, size_t *count);
void rv_registry_free_ids(char **ids, size_t count);

#endif

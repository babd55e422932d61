/*
 * Redis key names (docs/redis.md describes each). Per-repo keys share the
 * hash tag {id}. Every builder writes into buf and returns buf; buf must
 * hold RV_KEY_MAX bytes (ids are validated before they get here).
 */
#ifndef REPOVIEW_COMMON_KEYS_H
#define REPOVIEW_COMMON_KEYS_H

#define RV_KEY_MAX 192

#define RV_KEY_REPOS "rv:repos"           /* set of repo ids */
#define RV_KEY_REPO_IDS "rv:repos:ids"    /* the same ids, a zset by id */
#define RV_KEY_QUEUE "rv:queue"           /* list of job payloads */
#define RV_KEY_LEASES "rv:leases"         /* zset worker id -> lease expiry */
#define RV_KEY_SCHEDULE "rv:schedule"     /* zset "kind:id" -> next due ms */
#define RV_KEY_DEADLETTER "rv:deadletter" /* list of JSON entries */
#define RV_CHANNEL_EVENTS "rv:events"     /* pub/sub channel, JSON */
#define RV_KEY_GH_TOKENS "rv:gh:tokens"   /* set of GitHub token identities */
#define RV_KEY_ORGS "rv:orgs"             /* set of org ids */
#define RV_KEY_ORG_OWNERS "rv:orgs:owners" /* hash lower(owner) -> org id */
/* Set once the GitHub name index (rv_key_ghname) covers every repo. */
#define RV_KEY_GHNAME_INDEXED "rv:ghname:indexed"

/* Kinds of sync. The names are the JSON/Redis spelling. A repo has the
 * first two (RV_REPO_KINDS); an org sync (kind org) is a job whose "repo"
 * field names an org, with its state in the org's hash. */
typedef enum rv_kind {
    RV_KIND_BRANCHES = 0,
    RV_KIND_PRS = 1,
    RV_KIND_ORG = 2,
} rv_kind;
#define RV_REPO_KINDS 2

const char *rv_kind_name(rv_kind k); /* "branches" / "prs" / "org" */
/* A repo's kind (branches, prs): 0, or -1 (org is refused here). */
int rv_kind_parse(const char *s, rv_kind *out);
/* Any job kind (branches, prs, org): 0, or -1. */
int rv_job_kind_parse(const char *s, rv_kind *out);

char *rv_key_meta(char *buf, const char *id);     /* rv:{id}:meta */
char *rv_key_branches(char *buf, const char *id); /* rv:{id}:branches */
char *rv_key_prs(char *buf, const char *id);      /* rv:{id}:prs */
char *rv_key_overview(char *buf, const char *id); /* rv:{id}:overview */
/* The hash holding the sync state of a job's kind: rv_key_meta for a repo
 * kind, rv_key_org for kind org. */
char *rv_key_kind_meta(char *buf, rv_kind kind, const char *id);
/* Per org (the hash tag {id} again; org and repo ids are separate names): */
char *rv_key_org(char *buf, const char *id);       /* rv:org:{id} */
char *rv_key_org_repos(char *buf, const char *id); /* rv:org:{id}:repos */
char *rv_key_org_pages(char *buf, const char *id); /* rv:org:{id}:pages */
/* rv:ghname:<github lower-cased>: the ids of the repos with that GitHub
 * name; NULL when github does not fit. */
char *rv_key_ghname(char *buf, const char *github);
char *rv_key_processing(char *buf, const char *worker_id); /* rv:processing:W */
char *rv_key_delivery(char *buf, const char *delivery_id); /* rv:delivery:D */
/* A worker's own hash {host,pid,startedAt,syncsDone,syncsFailed}, which
 * expires with its lease: rv:worker:W. */
char *rv_key_worker(char *buf, const char *worker_id);
/* The history of one minute (minute = epoch ms / 60000): rv:stats:M. */
char *rv_key_stats(char *buf, long long minute);
/* How long a minute's history is kept (ms): 24 h and two minutes, so a
 * 24 h window still has its oldest minute. */
#define RV_STATS_TTL_MS (86400000LL + 120000LL)
/* Upper bounds (ms) of the sync duration histogram ms:<kind>:<i> in a
 * minute's hash; bucket RV_STATS_BUCKETS - 1 is everything longer. Kept
 * in step with lua/includes/recordStats.lua. */
#define RV_STATS_BUCKETS 11
#define RV_STATS_BOUNDS_MS                                                     \
    {                                                                          \
        50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000               \
    }
/* Per GitHub token identity (installation id, "pat" or "none"): */
char *rv_key_gh_budget(char *buf, const char *identity);  /* rv:gh:budget:I */
char *rv_key_gh_hold(char *buf, const char *identity);    /* rv:gh:hold:I */
char *rv_key_gh_strikes(char *buf, const char *identity); /* rv:gh:strikes:I */
char *rv_key_gh_slots(char *buf, const char *identity);   /* rv:gh:slots:I */

#endif

/*
 * State shared by the threads of one repoview-worker process: the job-loop
 * thread (main) and the housekeeping thread (lease renewal, scheduler tick,
 * reaper, mirror clean-up).
 */
#ifndef REPOVIEW_WORKER_WORKER_H
#define REPOVIEW_WORKER_WORKER_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/urlpolicy.h"
#include "common/util.h"
#include "worker/ghauth.h"

struct rv_worker {
    const struct rv_config *cfg; /* borrowed for the process lifetime */
    char id[128];                /* "<host>-<pid>-<random>": lease member */
    char host[64];               /* gethostname(), for rv:worker:<id> */
    int64_t started_ms;          /* process start (epoch ms) */
    char graphql_url[1024];      /* resolved GitHub GraphQL endpoint */
    char rest_url[1024];         /* GitHub's REST base, no trailing slash */
    char token_host[256];        /* where HTTPS fetches get GITHUB_TOKEN */
    /* Which token each repo's GitHub calls and HTTPS fetches use (the
     * App's installation tokens, or GITHUB_TOKEN); job-loop thread only.
     * Owned by main. */
    struct rv_ghauth *auth;
    atomic_int stopping;         /* set by SIGTERM/SIGINT: claim no more */
    atomic_int job_running;      /* 1 while the job loop runs a job */
    atomic_llong stop_requested_ms; /* monotonic time of the stop request */
    struct rv_url_policy url_policy; /* remotes a fetch may reach; owned */
    /* The repo of the running job ("" = none), for the housekeeping
     * thread, which abandons the fetch when that repo is removed. */
    pthread_mutex_t job_lock;
    char job_repo[RV_REPO_ID_MAX + 1];
    /* Job-loop thread only: look in our own processing list before taking
     * a new job. Set at start and after a Redis error, because a BLMOVE
     * whose reply was lost still moved the job into our list, where the
     * reaper never looks while our lease is alive. */
    bool check_own_list;
};

/* Backoff after failed syncs: first retry after this, doubling. */
#define RV_BACKOFF_BASE_MS 10000
/* Longest backoff, whatever the interval. */
#define RV_BACKOFF_MAX_MS 3600000

#endif

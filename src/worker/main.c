/*
 * repoview-worker: consumes the job list and keeps projections true to the
 * remotes and GitHub. Any number may run against one Redis.
 *
 * Threads: the job loop (here) and housekeeping (housekeeping.c). SIGTERM or
 * SIGINT stops claiming; the running job may finish within
 * REPOVIEW_SHUTDOWN_GRACE seconds, after which it is handed back.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/errors.h"
#include "common/log.h"
#include "common/rconn.h"
#include "common/util.h"
#include "worker/branchsync.h"
#include "worker/ghapp.h"
#include "worker/ghauth.h"
#include "worker/housekeeping.h"
#include "worker/jobloop.h"
#include "worker/mirror.h"
#include "worker/prsync.h"
#include "worker/reaper.h"
#include "worker/worker.h"

static struct rv_worker worker;

static void on_signal(int sig)
{
    (void)sig;
    if (!atomic_load(&worker.stopping)) {
        atomic_store(&worker.stop_requested_ms, rv_mono_ms());
        atomic_store(&worker.stopping, 1);
    }
}

static void usage(FILE *out)
{
    fputs("usage: repoview-worker [--setting value ...]\n\n"
          "Consumes refresh jobs from Redis: branch sync (libgit2) and PR\n"
          "sync (GitHub GraphQL). Settings (flag or environment variable):\n\n",
          out);
    rv_config_print_help(out);
}

int main(int argc, char **argv)
{
    struct rv_config cfg;
    char err[512];
    int next = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    }
    if (rv_config_load(&cfg, argc, argv, &next, err, sizeof(err)) != RV_OK) {
        fprintf(stderr, "repoview-worker: %s\n", err);
        return 2;
    }
    if (next < argc) {
        fprintf(stderr,
                "repoview-worker: unexpected argument \"%s\" (see --help)\n",
                argv[next]);
        rv_config_free(&cfg);
        return 2;
    }
    rv_log_min_level = cfg.log_level;
    rv_log_set_process("worker");
    rv_config_register_secrets(&cfg);

    struct rv_redis_addr addr;
    if (rv_redis_parse_url(cfg.redis_url, &addr, err, sizeof(err)) != RV_OK) {
        fprintf(stderr, "repoview-worker: REPOVIEW_REDIS_URL: %s\n", err);
        return 2;
    }
    if (rv_mkdirs(cfg.data_dir) != 0) {
        fprintf(stderr,
                "repoview-worker: cannot create REPOVIEW_DATA_DIR %s: %s\n",
                cfg.data_dir, strerror(errno));
        return 1;
    }
    if (rv_branchsync_global_init() != RV_OK ||
        rv_prsync_global_init() != RV_OK) {
        fprintf(stderr, "repoview-worker: cannot initialise libgit2/libcurl\n");
        return 1;
    }

    worker.cfg = &cfg;
    worker.check_own_list = true;
    char host[64] = "worker";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    char rnd[RV_JOB_ID_MAX + 1];
    rv_job_id_new(rnd, sizeof(rnd));
    snprintf(worker.id, sizeof(worker.id), "%s-%ld-%s", host, (long)getpid(),
             rnd + strlen(rnd) - 8);
    rv_strlcpy(worker.host, host, sizeof(worker.host));
    worker.started_ms = rv_now_ms();
    if (rv_prsync_graphql_url(cfg.github_api, cfg.github_graphql,
                              worker.graphql_url,
                              sizeof(worker.graphql_url)) != RV_OK) {
        fprintf(stderr,
                "repoview-worker: cannot derive the GraphQL URL from %s\n",
                cfg.github_api);
        return 2;
    }
    if (rv_mirror_token_host(cfg.github_api, worker.token_host,
                             sizeof(worker.token_host)) != 0) {
        fprintf(stderr, "repoview-worker: the host of %s is too long\n",
                cfg.github_api);
        return 2;
    }
    /* The App's key is checked here, at start, so a wrong path or a file
     * that is not an RSA key stops the worker with the reason instead of
     * failing every sync later. */
    struct rv_ghapp app = {0};
    bool has_app = cfg.github_app_id > 0 ||
                   (cfg.github_app_key_file && *cfg.github_app_key_file);
    if (has_app &&
        rv_ghapp_load(&app, cfg.github_app_id, cfg.github_app_key_file, err,
                      sizeof(err)) != RV_OK) {
        fprintf(stderr, "repoview-worker: %s\n", err);
        rv_config_free(&cfg);
        return 2;
    }
    if (rv_ghauth_rest_url(cfg.github_api, worker.rest_url,
                           sizeof(worker.rest_url)) != RV_OK ||
        !(worker.auth = rv_ghauth_new(&(struct rv_ghauth_opts){
              .rest_url = worker.rest_url,
              .pat = cfg.github_token,
              .app = has_app ? &app : NULL,
              .timeout_s = (int)cfg.github_timeout,
          }))) {
        fprintf(stderr, "repoview-worker: cannot set up GitHub auth for %s\n",
                cfg.github_api);
        rv_ghapp_free(&app);
        rv_config_free(&cfg);
        return 2;
    }
    if (rv_url_policy_load(&worker.url_policy, &cfg, err, sizeof(err)) !=
        RV_OK) {
        fprintf(stderr, "repoview-worker: %s\n", err);
        return 2;
    }
    pthread_mutex_init(&worker.job_lock, NULL);
    srandom((unsigned)(rv_now_ms() ^ getpid()));

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct rv_rsync r;
    if (rv_rsync_open(&r, &addr, 10000) != RV_OK)
        LOG(RV_LOG_WARN, NULL, NULL, "Redis not reachable yet (%s); retrying",
            r.err);
    rv_housekeeping_renew_lease(&r, &worker);
    struct rv_housekeeping hk;
    memset(&hk, 0, sizeof(hk));
    if (rv_housekeeping_start(&hk, &worker, &addr) != RV_OK) {
        fprintf(stderr,
                "repoview-worker: cannot start the housekeeping thread\n");
        return 1;
    }
    LOGF(RV_LOG_INFO, NULL, NULL,
         json_pack("{s:s,s:s,s:I}", "worker", worker.id, "data_dir",
                   cfg.data_dir, "githubApp", (json_int_t)app.app_id),
         "worker started");

    while (!atomic_load(&worker.stopping)) {
        int rc = rv_jobloop_step(&worker, &r, 1);
        if (rc == RV_ERR_REDIS) {
            LOG(RV_LOG_WARN, NULL, NULL, "Redis unavailable: %s", r.err);
            usleep(500 * 1000);
        }
    }

    LOG(RV_LOG_INFO, NULL, NULL, "worker stopping");
    rv_housekeeping_stop(&hk);
    rv_reaper_hand_back(&r, &cfg, worker.id);
    rv_rsync_close(&r);
    rv_url_policy_free(&worker.url_policy);
    rv_ghauth_free(worker.auth);
    rv_ghapp_free(&app);
    pthread_mutex_destroy(&worker.job_lock);
    rv_config_free(&cfg);
    LOG(RV_LOG_INFO, NULL, NULL, "worker stopped");
    return 0;
}

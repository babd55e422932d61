/*
 * Driver of bench/bench_scale.sh: registers many repos, writes their
 * projections through the real scripts, and times the workers' housekeeping
 * passes, against the Redis of REPOVIEW_REDIS_URL. Built and run by the
 * script against a non-sanitizer build.
 *
 *   scale_driver register N URL_PREFIX   repos s000000.. with github
 *                                        acme/s000000.., url
 *                                        URL_PREFIX<id>.git (registerRepo)
 *   scale_driver refresh N K             a user refresh of both kinds of K
 *                                        repos spread over the N
 *   scale_driver drain BRANCHES PRS      every queued job, as a worker runs
 *                                        it, with the sync replaced by the
 *                                        documents in the two JSON files
 *   scale_driver mirrors DATA_DIR N      an empty mirror directory per repo
 *   scale_driver housekeeping DATA_DIR RUNS GC_RUNS
 *                                        times a reconcile pass, a mirror
 *                                        clean-up step and a whole walk of
 *                                        them (GC_RUNS walks) and a
 *                                        scheduler tick (nothing due, then
 *                                        100 due)
 *
 * Figures go to stdout, one "name value" pair a line (times in ms).
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/cmd.h"
#include "common/config.h"
#include "common/errors.h"
#include "common/job.h"
#include "common/keys.h"
#include "common/registry.h"
#include "common/scripts.h"
#include "common/util.h"
#include "worker/housekeeping.h"
#include "worker/jobloop.h"
#include "worker/mirror.h"
#include "worker/overview.h"
#include "worker/reconcile.h"
#include "worker/scheduler.h"
#include "worker/worker.h"

static struct rv_config cfg;
static struct rv_rsync conn;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void repo_id(char *buf, size_t size, long i)
{
    snprintf(buf, size, "s%06ld", i);
}

static int do_register(long n, const char *prefix)
{
    char id[32], gh[64], url[1200], err[256];
    double start = now_ms();
    for (long i = 0; i < n; i++) {
        repo_id(id, sizeof(id), i);
        snprintf(gh, sizeof(gh), "acme/%s", id);
        snprintf(url, sizeof(url), "%s%s.git", prefix, id);
        struct rv_repo_spec spec = {.id = id, .url = url, .github = gh};
        int rc = rv_registry_add(&conn, &spec, err, sizeof(err));
        if (rc != RV_OK) {
            fprintf(stderr, "register %s: %s %s\n", id, rv_strerror(rc), err);
            return 1;
        }
    }
    printf("register_ms %.0f\n", now_ms() - start);
    return 0;
}

static int do_refresh(long n, long k)
{
    char id[32];
    for (long j = 0; j < k; j++) {
        repo_id(id, sizeof(id), k >= n ? j : j * (n / k));
        for (int kind = 0; kind < 2; kind++) {
            rv_refresh_outcome out;
            int rc = rv_registry_refresh(&conn, id,
                                         kind ? RV_KIND_PRS : RV_KIND_BRANCHES,
                                         RV_REASON_USER, &out);
            if (rc != RV_OK) {
                fprintf(stderr, "refresh %s: %s\n", id, rv_strerror(rc));
                return 1;
            }
        }
    }
    return 0;
}

/* One job as rv_jobloop_run_payload runs it, sync aside: claim, read the
 * repo and the kind's previous document, read the other kind's rev and
 * document (one transaction), commit. */
static int run_job(struct rv_worker *w, const char *payload, size_t len,
                   json_t *const docs[2])
{
    struct rv_job job;
    char why[160];
    long long gen = 0;
    if (rv_job_decode(payload, len, &job, why, sizeof(why)) != RV_OK)
        return RV_ERR_DECODE;
    int rc = rv_jobloop_claim(w, &conn, &job, payload, len, &gen);
    if (rc != RV_OK)
        return rc == RV_ERR_STALE_JOB || rc == RV_ERR_NOT_FOUND ? RV_OK : rc;
    bool is_branches = job.kind == RV_KIND_BRANCHES;
    char meta[RV_KEY_MAX], data[RV_KEY_MAX], other[RV_KEY_MAX], ov[RV_KEY_MAX],
        proc[RV_KEY_MAX], stats[RV_KEY_MAX], self[RV_KEY_MAX];
    rv_key_meta(meta, job.repo);
    rv_key_branches(is_branches ? data : other, job.repo);
    rv_key_prs(is_branches ? other : data, job.repo);
    static const char *const reads[] = {"HGETALL %s", "GET %s", "MULTI",
                                        "HGET %s %s", "GET %s", "EXEC"};
    const char *args[][2] = {
        {meta},  {data}, {NULL}, {meta, is_branches ? "pr_rev" : "branch_rev"},
        {other}, {NULL}};
    char rev[32] = "";
    for (size_t i = 0; i < sizeof(reads) / sizeof(*reads); i++) {
        redisReply *reply =
            rv_rsync_command(&conn, reads[i], args[i][0], args[i][1]);
        if (!reply)
            return RV_ERR_REDIS;
        if (i == 5 && reply->type == REDIS_REPLY_ARRAY &&
            reply->elements == 2 &&
            reply->element[0]->type == REDIS_REPLY_STRING)
            rv_strlcpy(rev, reply->element[0]->str, sizeof(rev));
        freeReplyObject(reply);
    }
    char *fragment = rv_overview_render(docs[0], docs[1]);
    struct rv_job next;
    char *next_payload = NULL;
    size_t next_len = 0;
    if (!fragment || rv_job_new(&next, job.repo, job.kind, RV_REASON_FOLLOWUP,
                                &next_payload, &next_len) != RV_OK) {
        free(fragment);
        return RV_ERR_NOMEM;
    }
    char *doc = json_dumps(docs[is_branches ? 0 : 1], JSON_COMPACT);
    int64_t now = rv_now_ms();
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_script_commitProjection(
        &cmd, &(struct rv_commitprojection_args){
                  .meta_key = meta,
                  .data_key = data,
                  .overview_key = rv_key_overview(ov, job.repo),
                  .processing_key = rv_key_processing(proc, w->id),
                  .stats_key = rv_key_stats(stats, (long long)(now / 60000)),
                  .worker_key = rv_key_worker(self, w->id),
                  .kind = rv_kind_name(job.kind),
                  .job_id = job.id,
                  .gen = gen,
                  .payload = payload,
                  .payload_len = len,
                  .now_ms = now,
                  .data = doc ? doc : "{}",
                  .overview = fragment,
                  .other_rev = rev,
                  .changed = is_branches
                                 ? "{\"branches\":{\"added\":[],\"removed\":[],"
                                   "\"updated\":[]}}"
                                 : "{\"pullRequests\":{\"added\":[],"
                                   "\"removed\":[],\"updated\":[]}}",
                  .next_at_ms = now + cfg.sync_interval * 1000 -
                                (int64_t)(random() % (cfg.sync_interval * 200)),
                  .followup_id = next.id,
                  .followup_payload = next_payload,
                  .followup_payload_len = next_len});
    redisReply *reply = rv_rsync_run(&conn, &cmd);
    rc = reply ? rv_script_reply_code(reply) : RV_ERR_REDIS;
    if (reply)
        freeReplyObject(reply);
    rv_cmd_free(&cmd);
    free(doc);
    free(fragment);
    free(next_payload);
    return rc;
}

static int do_drain(const char *branches_file, const char *prs_file)
{
    json_error_t jerr;
    json_t *docs[2] = {json_load_file(branches_file, 0, &jerr),
                       json_load_file(prs_file, 0, &jerr)};
    if (!docs[0] || !docs[1]) {
        fprintf(stderr, "cannot read the documents: %s\n", jerr.text);
        return 1;
    }
    struct rv_worker w = {.cfg = &cfg, .id = "scale-driver"};
    char proc[RV_KEY_MAX];
    rv_key_processing(proc, w.id);
    long syncs = 0;
    double start = now_ms();
    int rc = RV_OK;
    for (;;) {
        redisReply *job = rv_rsync_command(&conn, "LMOVE %s %s RIGHT LEFT",
                                           RV_KEY_QUEUE, proc);
        if (!job || job->type != REDIS_REPLY_STRING) {
            rc = job && job->type == REDIS_REPLY_NIL ? RV_OK : RV_ERR_REDIS;
            if (job)
                freeReplyObject(job);
            break;
        }
        rc = run_job(&w, job->str, job->len, docs);
        freeReplyObject(job);
        if (rc != RV_OK) {
            fprintf(stderr, "a job failed: %s\n", rv_strerror(rc));
            break;
        }
        syncs++;
    }
    printf("drain_syncs %ld\ndrain_ms %.0f\n", syncs, now_ms() - start);
    json_decref(docs[0]);
    json_decref(docs[1]);
    return rc == RV_OK ? 0 : 1;
}

static int do_mirrors(const char *data_dir, long n)
{
    char path[4096], id[32];
    snprintf(path, sizeof(path), "%s/mirrors", data_dir);
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST)
        return 1;
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return 1;
    for (long i = 0; i < n; i++) {
        repo_id(id, sizeof(id), i);
        if (rv_mirror_path(data_dir, id, path, sizeof(path)) != 0 ||
            (mkdir(path, 0700) != 0 && errno != EEXIST))
            return 1;
    }
    return 0;
}

/* A whole walk of the mirror clean-up (rv_mirror_gc_step with the
 * worker's keep, rv_housekeeping_registered, until done), its steps'
 * times in steps[0..*nsteps) (at most max). */
static int mirror_gc_walk(const char *data_dir, double *steps, int max,
                          int *nsteps)
{
    struct rv_mirror_scan scan = {0};
    bool done = false;
    int rc = RV_OK;
    *nsteps = 0;
    while (!done && rc == RV_OK) {
        double s = now_ms();
        rc = rv_mirror_gc_step(&scan, data_dir, rv_housekeeping_registered,
                               &conn, &done);
        if (*nsteps < max)
            steps[(*nsteps)++] = now_ms() - s;
    }
    rv_mirror_scan_close(&scan);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Prints "<name>_ms <median>" and "<name>_p95_ms <p95>" of t[0..n). */
static void report(const char *name, double *t, int n)
{
    qsort(t, (size_t)n, sizeof(*t), cmp_double);
    int p95 = (int)((double)(n - 1) * 0.95 + 0.5);
    printf("%s_ms %.3f\n%s_p95_ms %.3f\n", name, t[(n - 1) / 2], name, t[p95]);
}

static int do_housekeeping(const char *data_dir, int runs, int gc_runs)
{
    if (runs < 1 || gc_runs < 1 || gc_runs > runs)
        return 2;
    double *t = calloc((size_t)runs, sizeof(*t));
    struct rv_reconcile *rec = rv_reconcile_new();
    if (!t || !rec)
        return 1;
    int rc = RV_OK;
    for (int i = 0; i < runs && rc == RV_OK; i++) {
        double s = now_ms();
        rc = rv_reconcile_pass(rec, &conn, NULL);
        t[i] = now_ms() - s;
    }
    report("reconcile", t, runs);
    /* The worker runs one step a second; a walk is every step once. */
    enum { MAX_STEPS = 4096 };
    double *steps = calloc(MAX_STEPS, sizeof(*steps));
    if (!steps)
        return 1;
    int nsteps = 0;
    for (int i = 0; i < gc_runs && rc == RV_OK; i++) {
        double s = now_ms();
        rc = mirror_gc_walk(data_dir, steps, MAX_STEPS, &nsteps);
        t[i] = now_ms() - s;
    }
    report("mirror_walk", t, gc_runs);
    if (nsteps > 0)
        report("mirror_gc", steps, nsteps);
    free(steps);
    for (int i = 0; i < runs && rc == RV_OK; i++) {
        double s = now_ms();
        rc = rv_scheduler_tick(&conn, &cfg, rv_now_ms(), NULL);
        t[i] = now_ms() - s;
    }
    report("tick_idle", t, runs);
    /* As if a whole interval had passed: every entry is due, and each tick
     * queues the first 100 of them. */
    int64_t later = rv_now_ms() + 2 * cfg.sync_interval * 1000;
    for (int i = 0; i < runs && rc == RV_OK; i++) {
        double s = now_ms();
        rc = rv_scheduler_tick(&conn, &cfg, later, NULL);
        t[i] = now_ms() - s;
    }
    report("tick_due", t, runs);
    rv_reconcile_free(rec);
    free(t);
    if (rc != RV_OK)
        fprintf(stderr, "housekeeping: %s\n", rv_strerror(rc));
    return rc == RV_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    char err[512];
    int next = 1;
    /* Only the environment: the subcommand's words are not flags. */
    if (rv_config_load(&cfg, 1, argv, &next, err, sizeof(err)) != RV_OK) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    struct rv_redis_addr addr;
    if (rv_redis_parse_url(cfg.redis_url, &addr, err, sizeof(err)) != RV_OK ||
        rv_rsync_open(&conn, &addr, 60000) != RV_OK) {
        fprintf(stderr, "cannot reach Redis\n");
        return 1;
    }
    const char *cmd = argc > 1 ? argv[1] : "";
    int rc = 2;
    if (!strcmp(cmd, "register") && argc == 4)
        rc = do_register(strtol(argv[2], NULL, 10), argv[3]);
    else if (!strcmp(cmd, "refresh") && argc == 4)
        rc = do_refresh(strtol(argv[2], NULL, 10), strtol(argv[3], NULL, 10));
    else if (!strcmp(cmd, "drain") && argc == 4)
        rc = do_drain(argv[2], argv[3]);
    else if (!strcmp(cmd, "mirrors") && argc == 4)
        rc = do_mirrors(argv[2], strtol(argv[3], NULL, 10));
    else if (!strcmp(cmd, "housekeeping") && argc == 5)
        rc = do_housekeeping(argv[2], (int)strtol(argv[3], NULL, 10),
                             (int)strtol(argv[4], NULL, 10));
    else
        fprintf(stderr, "usage: see the comment at the top of %s\n", __FILE__);
    rv_rsync_close(&conn);
    rv_config_free(&cfg);
    return rc;
}

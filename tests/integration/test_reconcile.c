/*
 * Reconcile, deterministically: the states Redis is left in when it loses
 * its last writes (AOF everysec, a failover to a lagging replica), written
 * by hand, are repaired by a worker within one lease period, and a
 * kind that a live worker is really running is left alone. test_chaos
 * shows the same under random faults; this shows each case on its own and
 * how long the repair takes.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/keys.h"
#include "common/registry.h"
#include "common/util.h"
#include "rvtest.h"

#define LEASE_S 5

static struct rvt_redis redis;
static struct rv_rsync conn;
static char *tmp;
static char remote[512];
static pid_t worker;
static char worker_log[600];

static void redis_do(const char *fmt, const char *a, const char *b)
{
    redisReply *r = rv_rsync_command(&conn, fmt, a, b);
    if (r)
        freeReplyObject(r);
}

static int branch_rows(const char *id)
{
    json_t *ov = rvt_overview(&conn, id);
    int n = ov ? (int)json_array_size(json_object_get(ov, "branches")) : -1;
    json_decref(ov);
    return n;
}

/* Checks that id's branch sync is idle again within six lease periods;
 * returns (and prints, as what) the ms it waited. */
static int64_t ms_until_idle(const char *id, const char *what)
{
    int64_t t0 = rv_mono_ms();
    CHECK(rvt_wait_field(&conn, id, "branch_sync_status", "idle",
                         6 * LEASE_S * 1000));
    int64_t took = rv_mono_ms() - t0;
    fprintf(stderr, "  %s: idle after %lld ms\n", what, (long long)took);
    return took;
}

static void register_repo(const char *id)
{
    struct rv_repo_spec spec = {.id = id, .url = remote};
    char err[256];
    CHECK_INT(rv_registry_add(&conn, &spec, err, sizeof(err)), RV_OK);
}

/* The queue was lost after registration: `queued`, and its job nowhere. */
static void test_a_queued_kind_whose_job_was_lost_is_queued_again(void)
{
    register_repo("lostjob");
    redis_do("DEL %s%s", RV_KEY_QUEUE, "");
    char buf[64];
    CHECK_STR(rvt_meta_field(&conn, "lostjob", "branch_sync_status", buf,
                             sizeof(buf)),
              "queued");
    int64_t took = ms_until_idle("lostjob", "queued with no job");
    /* Two passes half a lease apart: never at once, and within one lease
     * period plus the sync. */
    CHECK(took >= LEASE_S * 1000 / 2);
    CHECK(took < rvt_scale_ms(LEASE_S * 1000 + 3000));
    CHECK_INT(branch_rows("lostjob"), 2);
}

/* The claim's writes survived but not the worker's: `running` on a worker
 * that holds no lease and has nothing in its processing list. */
static void test_a_running_kind_with_no_worker_behind_it_is_queued_again(void)
{
    char before[64], after[64], key[RV_KEY_MAX];
    rvt_meta_field(&conn, "lostjob", "branch_sync_at", before,
                   sizeof(before));
    rv_key_meta(key, "lostjob");
    redis_do("HSET %s branch_sync_status running branch_worker %s", key,
             "ghost-1-dead");
    redis_do("HSET %s branch_job %s", key, "j-ghost-0000");
    int64_t took = ms_until_idle("lostjob", "running with no worker");
    CHECK(took < rvt_scale_ms(LEASE_S * 1000 + 3000));
    rvt_meta_field(&conn, "lostjob", "branch_sync_at", after, sizeof(after));
    CHECK(strtoll(after, NULL, 10) > strtoll(before, NULL, 10));
    char *out = NULL;
    CHECK_INT(rvt_sh(&out, "grep -c 'nothing behind it' '%s'", worker_log),
              0);
    CHECK(out && strtol(out, NULL, 10) >= 2);
    free(out);
}

/* A kind that a worker with a live lease is running (its job in that
 * worker's processing list) is not an orphan: it stays running, however
 * many passes see it. */
static void test_a_kind_a_leased_worker_runs_is_left_alone(void)
{
    char key[RV_KEY_MAX], buf[64];
    register_repo("leased");
    CHECK(rvt_wait_field(&conn, "leased", "branch_sync_status", "idle",
                         rvt_scale_ms(30000)));
    struct rv_job job;
    CHECK_INT(rvt_push_job(&conn, "rv:processing:busy-1", "leased",
                           RV_KIND_BRANCHES, RV_REASON_USER, &job),
              RV_OK);
    rv_key_meta(key, "leased");
    redis_do("HSET %s branch_sync_status running branch_worker %s", key,
             "busy-1");
    redis_do("HSET %s branch_job %s", key, job.id);
    /* busy-1 keeps renewing its lease for three reconcile periods. */
    int64_t t0 = rv_mono_ms();
    while (rv_mono_ms() - t0 < 3 * LEASE_S * 1000) {
        char exp[32];
        snprintf(exp, sizeof(exp), "%lld",
                 (long long)(rv_now_ms() + LEASE_S * 1000));
        redis_do("ZADD %s %s busy-1", RV_KEY_LEASES, exp);
        rvt_sleep_ms(500);
    }
    CHECK_STR(rvt_meta_field(&conn, "leased", "branch_sync_status", buf,
                             sizeof(buf)),
              "running");
    CHECK_STR(rvt_meta_field(&conn, "leased", "branch_job", buf,
                             sizeof(buf)),
              job.id);
    /* Left alone by a worker that is still there to reconcile, not by
     * one that died. */
    CHECK(worker > 0 && waitpid(worker, NULL, WNOHANG) == 0);
    redis_do("ZREM %s %s", RV_KEY_LEASES, "busy-1");
}

int main(void)
{
    tmp = rvt_tmpdir("rvtest-reconcile");
    if (!tmp || rvt_redis_start(&redis, NULL) != 0 ||
        rvt_redis_connect(&redis, &conn) != 0)
        return 1;
    snprintf(remote, sizeof(remote), "%s/remote", tmp);
    if (rvt_sh(NULL,
               "set -e; git init -q -b main '%s'; cd '%s'; "
               "git -c user.name=T -c user.email=t@x commit -q "
               "--allow-empty -m one; git branch other",
               remote, remote) != 0)
        return 1;
    char data[600], lease[48];
    snprintf(worker_log, sizeof(worker_log), "%s/worker.log", tmp);
    snprintf(data, sizeof(data), "%s/data", tmp);
    snprintf(lease, sizeof(lease), "REPOVIEW_LEASE_SECONDS=%d", LEASE_S);
    const char *env[] = {lease, "REPOVIEW_SYNC_INTERVAL=3600",
                         rvt_allow_local_env(), NULL};
    worker = rvt_spawn_worker(redis.url, data, worker_log, env);
    if (worker <= 0) {
        fprintf(stderr, "cannot start the worker\n");
        return 1;
    }

    RUN(test_a_queued_kind_whose_job_was_lost_is_queued_again);
    RUN(test_a_running_kind_with_no_worker_behind_it_is_queued_again);
    RUN(test_a_kind_a_leased_worker_runs_is_left_alone);

    rvt_stop_process(worker, 10000);
    return rvt_finish(&conn, &redis, tmp);
}

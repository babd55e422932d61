/*
 * Chaos: three workers and twenty repos under a stream of refreshes for
 * 20 s, while workers are SIGKILLed and restarted at random and Redis itself
 * is SIGKILLed once and restarted from its AOF (appendfsync everysec, so it
 * may lose its last second of writes). At the end every repo is idle with a
 * complete, correct projection, nothing is queued or running, and every
 * refresh asked for after Redis came back was honoured by a later sync.
 * Loopback only; bounded in time.
 */
#include <jansson.h>
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

#define NREPOS 20
#define NWORKERS 3
#define STORM_MS 20000
#define BRANCHES 4

static struct rvt_redis redis;
static struct rv_rsync conn;
static char *tmp;
static pid_t workers[NWORKERS];
static int spawned;

static pid_t start_worker(void)
{
    char log[512], data[512];
    snprintf(log, sizeof(log), "%s/worker-%d.log", tmp, spawned++);
    snprintf(data, sizeof(data), "%s/data", tmp);
    const char *env[] = {"REPOVIEW_LEASE_SECONDS=5", "REPOVIEW_SYNC_INTERVAL=3600",
                         rvt_allow_local_env(), NULL};
    return rvt_spawn_worker(redis.url, data, log, env);
}

static void repo_id(int i, char *buf, size_t size)
{
    snprintf(buf, size, "chaos-%02d", i);
}

static bool all_settled(int64_t *last_asked, int64_t redis_back, int *unsettled)
{
    *unsettled = 0;
    for (int i = 0; i < NREPOS; i++) {
        char id[32], key[RV_KEY_MAX];
        repo_id(i, id, sizeof(id));
        redisReply *rep = rv_rsync_command(&conn, "HMGET %s branch_sync_status branch_sync_at",
                                           rv_key_meta(key, id));
        bool ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
                  rep->element[0]->type == REDIS_REPLY_STRING &&
                  !strcmp(rep->element[0]->str, "idle") &&
                  rep->element[1]->type == REDIS_REPLY_STRING;
        if (ok && last_asked[i] > redis_back)
            ok = strtoll(rep->element[1]->str, NULL, 10) >= last_asked[i];
        if (rep)
            freeReplyObject(rep);
        if (!ok)
            (*unsettled)++;
    }
    return *unsettled == 0;
}

static int branch_rows(const char *id)
{
    json_t *ov = rvt_overview(&conn, id);
    int n = ov ? (int)json_array_size(json_object_get(ov, "branches")) : -1;
    json_decref(ov);
    return n;
}

static void test_no_repo_stuck_or_wrong_after_workers_and_redis_are_killed(void)
{
    char src[600];
    snprintf(src, sizeof(src), "%s/src", tmp);
    CHECK_INT(rvt_sh(NULL, "set -e; git init -q -b main '%s'; cd '%s';"
                     "git -c user.name=T -c user.email=t@x commit -q --allow-empty -m one;"
                     "for b in a b c; do git branch $b; done", src, src), 0);
    for (int i = 0; i < NREPOS; i++) {
        char id[32], err[256];
        repo_id(i, id, sizeof(id));
        struct rv_repo_spec spec = {.id = id, .url = src};
        CHECK_INT(rv_registry_add(&conn, &spec, err, sizeof(err)), RV_OK);
    }
    for (int w = 0; w < NWORKERS; w++)
        workers[w] = start_worker();

    int64_t last_asked[NREPOS] = {0};
    int64_t start = rv_mono_ms(), redis_back = 0;
    int kills = 0, requests = 0, refused = 0;
    bool redis_killed = false;
    srandom(42);
    while (rv_mono_ms() - start < STORM_MS) {
        int i = (int)(random() % NREPOS);
        char id[32];
        repo_id(i, id, sizeof(id));
        rv_refresh_outcome outcome;
        int64_t asked = rv_now_ms();
        int rc = rv_registry_refresh(&conn, id, RV_KIND_BRANCHES, RV_REASON_USER, &outcome);
        if (rc == RV_OK) {
            last_asked[i] = asked;
            requests++;
        } else {
            refused++;
        }
        if (random() % 30 == 0) {
            int w = (int)(random() % NWORKERS);
            kill(workers[w], SIGKILL);
            waitpid(workers[w], NULL, 0);
            workers[w] = start_worker();
            kills++;
        }
        if (!redis_killed && rv_mono_ms() - start > STORM_MS / 2) {
            rvt_redis_kill(&redis);
            rvt_sleep_ms(500);
            CHECK_INT(rvt_redis_restart(&redis), 0);
            redis_back = rv_now_ms();
            redis_killed = true;
        }
        rvt_sleep_ms(50);
    }
    fprintf(stderr, "storm: %d refreshes, %d refused while Redis was down, %d workers killed\n",
            requests, refused, kills);
    CHECK(kills >= 3);
    CHECK(redis_killed);

    /* Reconciliation runs every lease period (5 s) and repairs an orphan
     * on its second sighting, so 60 s is ample. */
    int unsettled = NREPOS;
    int64_t settle_start = rv_mono_ms();
    while (!all_settled(last_asked, redis_back, &unsettled) && rv_mono_ms() - settle_start < 60000)
        rvt_sleep_ms(200);
    fprintf(stderr, "settled in %lld ms, %d unsettled\n",
            (long long)(rv_mono_ms() - settle_start), unsettled);
    CHECK_INT(unsettled, 0);
    for (int i = 0; i < NREPOS; i++) {
        char id[32];
        repo_id(i, id, sizeof(id));
        CHECK_INT(branch_rows(id), BRANCHES);
    }
    redisReply *q = rv_rsync_command(&conn, "LLEN %s", RV_KEY_QUEUE);
    CHECK(q && q->type == REDIS_REPLY_INTEGER && q->integer == 0);
    if (q)
        freeReplyObject(q);
}

int main(void)
{
    tmp = rvt_tmpdir("rvtest-chaos");
    if (!tmp || rvt_redis_start(&redis, "--appendonly yes --appendfsync everysec") != 0 ||
        rvt_redis_connect(&redis, &conn) != 0) {
        fprintf(stderr, "cannot start the test redis\n");
        return 1;
    }
    RUN(test_no_repo_stuck_or_wrong_after_workers_and_redis_are_killed);
    for (int w = 0; w < NWORKERS; w++) {
        if (workers[w] > 0) {
            kill(workers[w], SIGTERM);
            waitpid(workers[w], NULL, 0);
        }
    }
    return rvt_finish(&conn, &redis, tmp);
}

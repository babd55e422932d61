/*
 * The worker pool under load and faults: three workers on one Redis and 50
 * repos with repeated refreshes; a worker SIGKILLed mid-sync; a hung worker
 * whose late commit is fenced off. Real redis-server, real git repos, the
 * worker binary as child processes.
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

#define NREPOS 50

static struct rvt_redis redis;
static struct rv_rsync conn;
static char *tmp;

static pid_t start_worker(const char *name, int lease_s)
{
    char log[512], data[512], lease[48];
    snprintf(log, sizeof(log), "%s/%s.log", tmp, name);
    snprintf(data, sizeof(data), "%s/data-%s", tmp, name);
    snprintf(lease, sizeof(lease), "REPOVIEW_LEASE_SECONDS=%d", lease_s);
    const char *env[] = {lease, "REPOVIEW_SHUTDOWN_GRACE=5", rvt_allow_local_env(),
                         NULL};
    return rvt_spawn_worker(redis.url, data, log, env);
}

static long branch_count(const char *id)
{
    json_t *ov = rvt_overview(&conn, id);
    long n = ov ? (long)json_array_size(json_object_get(ov, "branches")) : -1;
    json_decref(ov);
    return n;
}

/* A repo with main and `branches` branches of one commit each. */
static char *make_repo(const char *name, int branches)
{
    char *path = malloc(512);
    snprintf(path, 512, "%s/%s", tmp, name);
    int rc = rvt_sh(NULL,
        "set -e; git init -q -b main '%s'; cd '%s';"
        "git config user.email t@example.com; git config user.name Tester;"
        "echo base > f; git add f; git commit -qm base;"
        "i=0; while [ $i -lt %d ]; do git branch b$i; i=$((i+1)); done",
        path, path, branches);
    if (rc != 0) {
        free(path);
        return NULL;
    }
    return path;
}

/* A repo whose sync takes a while: many branches, each a commit of its
 * own (built with fast-import so the test stays quick to set up). */
static char *make_slow_repo(const char *name, int branches)
{
    char *path = malloc(512);
    snprintf(path, 512, "%s/%s", tmp, name);
    int rc = rvt_sh(NULL,
        "set -e; git init -q -b main '%s'; cd '%s';"
        "{ echo 'commit refs/heads/main'; echo 'mark :1';"
        "  echo 'committer T <t@example.com> 1700000000 +0000'; echo 'data 4'; echo base;"
        "  echo 'M 644 inline f'; echo 'data 5'; echo base;"
        "  i=0; while [ $i -lt %d ]; do"
        "    echo \"commit refs/heads/b$i\"; echo 'committer T <t@example.com> 1700000001 +0000';"
        "    echo 'data 2'; echo c; echo 'from :1'; echo \"M 644 inline f$i\"; echo 'data 2'; echo x;"
        "    i=$((i+1)); done; } | git fast-import --quiet",
        path, path, branches);
    if (rc != 0) {
        free(path);
        return NULL;
    }
    return path;
}

static int add_repo(const char *id, const char *url)
{
    struct rv_repo_spec spec = {.id = id, .url = url};
    char err[256];
    return rv_registry_add(&conn, &spec, err, sizeof(err));
}

/* Reads the events channel on its own connection and checks that no
 * (repo, kind) ever reports "running" twice without a terminal status in
 * between: two syncs of one repo and kind at once would show that. */
struct watcher {
    pid_t pid;
    char path[512];
};

static void start_watch(struct watcher *wt)
{
    snprintf(wt->path, sizeof(wt->path), "%s/events.txt", tmp);
    wt->pid = fork();
    if (wt->pid == 0) {
        execlp("sh", "sh", "-c", "exec redis-cli -s \"$0\" SUBSCRIBE rv:events > \"$1\"",
               redis.sock, wt->path, (char *)NULL);
        _exit(127);
    }
    rvt_sleep_ms(300);
}

static int count_double_runs(struct watcher *wt, int *events)
{
    kill(wt->pid, SIGTERM);
    waitpid(wt->pid, NULL, 0);
    FILE *f = fopen(wt->path, "r");
    json_t *running = json_object();
    int doubles = 0;
    *events = 0;
    char line[65536];
    while (f && fgets(line, sizeof(line), f)) {
        if (line[0] != '{')
            continue;
        json_t *ev = json_loads(line, 0, NULL);
        const char *type = json_string_value(json_object_get(ev, "type"));
        if (type && !strcmp(type, "status")) {
            (*events)++;
            char key[160];
            snprintf(key, sizeof(key), "%s/%s",
                     json_string_value(json_object_get(ev, "repo")),
                     json_string_value(json_object_get(ev, "kind")));
            const char *st = json_string_value(json_object_get(ev, "status"));
            /* Only claimJob announces "running"; every other status
             * event ends the run (commit, fail, reap, follow-up queued). */
            bool is_running = st && !strcmp(st, "running");
            if (is_running && json_is_true(json_object_get(running, key)))
                doubles++;
            json_object_set_new(running, key, json_boolean(is_running));
        }
        json_decref(ev);
    }
    if (f)
        fclose(f);
    json_decref(running);
    return doubles;
}

static void test_three_workers_fifty_repos_end_idle_and_correct_never_doubled(void)
{
    char *src = make_repo("pool-src", 5);
    CHECK(src != NULL);
    struct watcher wt;
    start_watch(&wt);
    char id[32];
    for (int i = 0; i < NREPOS; i++) {
        snprintf(id, sizeof(id), "repo-%02d", i);
        CHECK_INT(add_repo(id, src), RV_OK);
    }
    pid_t w[3];
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "pool-%d", i);
        w[i] = start_worker(name, 10);
    }
    /* Three rounds of refreshes while the pool works. */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < NREPOS; i++) {
            snprintf(id, sizeof(id), "repo-%02d", i);
            rv_refresh_outcome outcome;
            CHECK_INT(rv_registry_refresh(&conn, id, RV_KIND_BRANCHES, RV_REASON_USER, &outcome), RV_OK);
        }
        rvt_sleep_ms(200);
    }
    int idle = 0;
    for (int i = 0; i < NREPOS; i++) {
        snprintf(id, sizeof(id), "repo-%02d", i);
        if (rvt_wait_field(&conn, id, "branch_sync_status", "idle", 60000))
            idle++;
        CHECK_INT(branch_count(id), 6);
    }
    CHECK_INT(idle, NREPOS);
    redisReply *q = rv_rsync_command(&conn, "LLEN %s", RV_KEY_QUEUE);
    CHECK(q && q->integer == 0);
    if (q)
        freeReplyObject(q);
    for (int i = 0; i < 3; i++)
        rvt_stop_process(w[i], 10000);
    int events = 0;
    CHECK_INT(count_double_runs(&wt, &events), 0);
    CHECK(events >= NREPOS * 3);
    free(src);
}

static void test_a_worker_killed_mid_sync_has_its_job_finished_by_another(void)
{
    char *src = make_slow_repo("slow", 3000);
    CHECK(src != NULL);
    CHECK_INT(add_repo("slow", src), RV_OK);
    pid_t a = start_worker("kill-a", 5);
    CHECK(rvt_wait_field(&conn, "slow", "branch_sync_status", "running", 20000));
    kill(a, SIGKILL);
    waitpid(a, NULL, 0);
    char buf[64];
    CHECK_STR(rvt_meta_field(&conn, "slow", "branch_sync_status", buf, sizeof(buf)), "running");
    pid_t b = start_worker("kill-b", 5);
    CHECK(rvt_wait_field(&conn, "slow", "branch_sync_status", "idle", 90000));
    CHECK_INT(branch_count("slow"), 3001);
    /* Claimed twice: by the killed worker, then by the one that finished. */
    CHECK(strtol(rvt_meta_field(&conn, "slow", "branch_gen", buf, sizeof(buf)), NULL, 10) >= 2);
    rvt_stop_process(b, 10000);
    free(src);
}

static void test_a_hung_worker_cannot_overwrite_a_newer_sync(void)
{
    char *src = make_slow_repo("hung", 3000);
    CHECK(src != NULL);
    CHECK_INT(add_repo("hung", src), RV_OK);
    pid_t a = start_worker("hung-a", 5);
    CHECK(rvt_wait_field(&conn, "hung", "branch_sync_status", "running", 20000));
    kill(a, SIGSTOP);
    /* While A hangs, the source gains a branch; B takes over after A's
     * lease lapses and commits the newer state. */
    CHECK_INT(rvt_sh(NULL, "cd '%s' && git branch extra main", src), 0);
    pid_t b = start_worker("hung-b", 5);
    CHECK(rvt_wait_field(&conn, "hung", "branch_sync_status", "idle", 90000));
    char version[32], buf[32];
    rvt_meta_field(&conn, "hung", "version", version, sizeof(version));
    CHECK_INT(branch_count("hung"), 3002);
    rvt_stop_process(b, 10000);
    /* A wakes up and finishes its older sync: its commit is fenced off. */
    kill(a, SIGCONT);
    rvt_sleep_ms(4000);
    CHECK_STR(rvt_meta_field(&conn, "hung", "version", buf, sizeof(buf)), version);
    CHECK_INT(branch_count("hung"), 3002);
    rvt_stop_process(a, 10000);
    free(src);
}

int main(void)
{
    tmp = rvt_tmpdir("rvtest-pool");
    if (!tmp || rvt_redis_start(&redis, NULL) != 0 || rvt_redis_connect(&redis, &conn) != 0) {
        fprintf(stderr, "cannot start the test redis\n");
        return 1;
    }
    RUN(test_three_workers_fifty_repos_end_idle_and_correct_never_doubled);
    RUN(test_a_worker_killed_mid_sync_has_its_job_finished_by_another);
    RUN(test_a_hung_worker_cannot_overwrite_a_newer_sync);
    return rvt_finish(&conn, &redis, tmp);
}

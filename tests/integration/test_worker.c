/*
 * repoview-worker end to end: real redis-server, real git repositories built
 * with the git CLI, the worker binary as a child process.
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/keys.h"
#include "common/registry.h"
#include "common/util.h"
#include "rvtest.h"

static struct rvt_redis redis;
static struct rv_rsync conn;
static char *tmp;

/* Starts repoview-worker with the test Redis; returns its pid. Its log goes
 * to <tmp>/<name>.log. grace and fetch_timeout are NAME=value settings,
 * NULL for REPOVIEW_SHUTDOWN_GRACE=5 and the default fetch timeout. */
static pid_t start_worker(const char *name, int lease_s, const char *grace,
                          const char *fetch_timeout)
{
    char log[512], data[512], lease[48];
    snprintf(log, sizeof(log), "%s/%s.log", tmp, name);
    snprintf(data, sizeof(data), "%s/data-%s", tmp, name);
    snprintf(lease, sizeof(lease), "REPOVIEW_LEASE_SECONDS=%d", lease_s);
    const char *env[] = {lease, grace ? grace : "REPOVIEW_SHUTDOWN_GRACE=5",
                         rvt_allow_local_env(), RVT_ALLOW_LOOPBACK_ENV,
                         fetch_timeout, NULL};
    return rvt_spawn_worker(redis.url, data, log, env);
}

/* Creates a repository at <tmp>/<name> with main and some branches:
 * ahead (2 commits), behind (main moved on), diverged, conflict (edits the
 * same line as main), same (identical to main). */
static char *make_repo(const char *name)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmp, name);
    int rc = rvt_sh(NULL,
        "set -e; git init -q -b main '%s'; cd '%s';"
        "git config user.email t@example.com; git config user.name Tester;"
        "printf 'a\\nb\\nc\\n' > f.txt; git add f.txt; git commit -qm base;"
        "git branch behind;"
        "git checkout -qb ahead; echo x > x.txt; git add x.txt; git commit -qm 'ahead 1';"
        "echo y >> x.txt; git commit -qam 'ahead 2';"
        "git checkout -q main; git checkout -qb conflict; printf 'a\\nB\\nc\\n' > f.txt; git commit -qam conflict;"
        "git checkout -q main; printf 'a\\nmain\\nc\\n' > f.txt; git commit -qam 'main moves';"
        "git checkout -qb diverged; echo d > d.txt; git add d.txt; git commit -qm diverged;"
        "git checkout -q main; git branch same",
        path, path);
    return rc == 0 ? path : NULL;
}

static const json_t *find_branch(const json_t *ov, const char *name)
{
    size_t i;
    const json_t *row;
    json_array_foreach(json_object_get(ov, "branches"), i, row) {
        if (strcmp(json_string_value(json_object_get(row, "name")), name) == 0)
            return row;
    }
    return NULL;
}

static int add_repo(const char *id, const char *url)
{
    struct rv_repo_spec spec = {.id = id, .url = url};
    char err[256];
    int rc = rv_registry_add(&conn, &spec, err, sizeof(err));
    if (rc != RV_OK)
        fprintf(stderr, "add %s: %s\n", id, err);
    return rc;
}

/* Compares one branch row with the git CLI. */
static void check_branch_against_git(const char *repo, const json_t *ov, const char *name)
{
    const json_t *row = find_branch(ov, name);
    CHECK(row != NULL);
    if (!row)
        return;
    char *out = NULL;
    rvt_sh(&out, "cd '%s' && git rev-list --left-right --count main...'%s'", repo, name);
    long behind = -1, ahead = -1;
    if (out)
        sscanf(out, "%ld %ld", &behind, &ahead);
    free(out);
    CHECK_INT(json_integer_value(json_object_get(row, "ahead")), ahead);
    CHECK_INT(json_integer_value(json_object_get(row, "behind")), behind);
    int conflict = rvt_sh(NULL, "cd '%s' && git merge-tree --write-tree main '%s' >/dev/null", repo, name);
    CHECK_INT(json_is_true(json_object_get(row, "conflicts")), conflict == 1);
    rvt_sh(&out, "cd '%s' && git rev-parse '%s'", repo, name);
    CHECK(out && strncmp(out, json_string_value(json_object_get(row, "sha")), 40) == 0);
    free(out);
}

static void test_worker_syncs_a_registered_repo_like_the_git_cli(void)
{
    char *repo = make_repo("oracle");
    CHECK(repo != NULL);
    CHECK_INT(add_repo("oracle", repo), RV_OK);
    pid_t w = start_worker("w-oracle", 30, NULL, NULL);
    CHECK(rvt_wait_field(&conn, "oracle", "branch_sync_status", "idle", 20000));
    json_t *ov = rvt_overview(&conn, "oracle");
    CHECK(ov != NULL);
    if (ov) {
        CHECK_INT(json_integer_value(json_object_get(json_object_get(ov, "counts"), "branches")), 6);
        CHECK_INT(json_integer_value(json_object_get(json_object_get(ov, "counts"), "conflicting")), 1);
        const json_t *first = json_array_get(json_object_get(ov, "branches"), 0);
        CHECK_STR(json_string_value(json_object_get(first, "name")), "main");
        CHECK(json_is_true(json_object_get(first, "isDefault")));
        const char *names[] = {"ahead", "behind", "diverged", "conflict", "same"};
        for (size_t i = 0; i < 5; i++)
            check_branch_against_git(repo, ov, names[i]);
        json_decref(ov);
    }
    char buf[32];
    CHECK_STR(rvt_meta_field(&conn, "oracle", "version", buf, sizeof(buf)), "1");
    rvt_stop_process(w, 5000);
}

static void test_refresh_after_a_push_updates_the_projection(void)
{
    char repo[512];
    snprintf(repo, sizeof(repo), "%s/oracle", tmp);
    pid_t w = start_worker("w-push", 30, NULL, NULL);
    CHECK_INT(rvt_sh(NULL, "cd '%s' && git checkout -q ahead && echo z >> x.txt && "
                     "git commit -qam 'ahead 3' && git checkout -q main", repo), 0);
    rv_refresh_outcome outcome;
    CHECK_INT(rv_registry_refresh(&conn, "oracle", RV_KIND_BRANCHES, RV_REASON_USER, &outcome), RV_OK);
    char buf[32];
    for (int i = 0; i < 500 && strcmp(rvt_meta_field(&conn, "oracle", "version", buf, sizeof(buf)), "2") != 0; i++)
        rvt_sleep_ms(20);
    CHECK_STR(buf, "2");
    CHECK(rvt_wait_field(&conn, "oracle", "branch_sync_status", "idle", 10000));
    json_t *ov = rvt_overview(&conn, "oracle");
    if (ov) {
        check_branch_against_git(repo, ov, "ahead");
        CHECK_INT(json_integer_value(json_object_get(find_branch(ov, "ahead"), "ahead")), 3);
        json_decref(ov);
    }
    rvt_stop_process(w, 5000);
}

static void test_a_failed_sync_keeps_the_last_good_projection(void)
{
    char repo[512], moved[560], buf[512];
    snprintf(repo, sizeof(repo), "%s/oracle", tmp);
    snprintf(moved, sizeof(moved), "%s/oracle-away", tmp);
    json_t *before = rvt_overview(&conn, "oracle");
    CHECK_INT(rename(repo, moved), 0);
    pid_t w = start_worker("w-fail", 30, NULL, NULL);
    rv_refresh_outcome outcome;
    CHECK_INT(rv_registry_refresh(&conn, "oracle", RV_KIND_BRANCHES, RV_REASON_USER, &outcome), RV_OK);
    CHECK(rvt_wait_field(&conn, "oracle", "branch_sync_status", "error", 20000));
    rvt_meta_field(&conn, "oracle", "branch_sync_error", buf, sizeof(buf));
    json_t *err = json_loads(buf, 0, NULL);
    CHECK(err && json_string_value(json_object_get(err, "code")) != NULL);
    json_decref(err);
    json_t *after = rvt_overview(&conn, "oracle");
    CHECK(before && after && json_equal(before, after));
    json_decref(before);
    json_decref(after);
    CHECK_INT(rename(moved, repo), 0);
    rvt_stop_process(w, 5000);
}

/* Registers repo id on the remote at port (git://), starts a worker with
 * the given grace and a 120 s fetch timeout, waits until the sync runs and
 * sends SIGTERM. Returns the worker's exit code (-1: it had to be killed);
 * *took_ms says how long it took to exit. */
static int sigterm_while_running(const char *id, int port, const char *grace,
                                 int wait_ms, int64_t *took_ms)
{
    char url[128], name[64];
    snprintf(url, sizeof(url), "git://127.0.0.1:%d/%s.git", port, id);
    snprintf(name, sizeof(name), "w-%s", id);
    CHECK_INT(add_repo(id, url), RV_OK);
    pid_t w = start_worker(name, 30, grace, "REPOVIEW_FETCH_TIMEOUT=120");
    CHECK(rvt_wait_field(&conn, id, "branch_sync_status", "running",
                         rvt_scale_ms(10000)));
    int64_t start = rv_mono_ms();
    int rc = rvt_stop_process(w, wait_ms);
    *took_ms = rv_mono_ms() - start;
    return rc;
}

/* SIGTERM while a job is stuck past REPOVIEW_SHUTDOWN_GRACE: the worker
 * hands the job back and exits 0 at the grace, and the job is queued again
 * at once, so another worker runs it long before the 30 s lease would have
 * lapsed (no status stays running). */
static void test_sigterm_hands_back_a_job_stuck_past_the_grace(void)
{
    int port = 0, ls = rvt_silent_listener(&port);
    CHECK(ls >= 0);
    int64_t took = 0;
    CHECK_INT(sigterm_while_running("hung", port, "REPOVIEW_SHUTDOWN_GRACE=2",
                                    10000, &took),
              0);
    CHECK(took >= 1800);
    char buf[64];
    CHECK_STR(rvt_meta_field(&conn, "hung", "branch_sync_status", buf,
                             sizeof(buf)),
              "queued");
    /* Another worker takes it now; its own fetch timeout ends it. */
    int64_t started = rv_mono_ms();
    pid_t w2 = start_worker("w-grace-2", 30, NULL, "REPOVIEW_FETCH_TIMEOUT=5");
    CHECK(rvt_wait_field(&conn, "hung", "branch_sync_status", "error",
                         rvt_scale_ms(15000)));
    CHECK(rv_mono_ms() - started < rvt_scale_ms(15000));
    rvt_meta_field(&conn, "hung", "branch_sync_error", buf, sizeof(buf));
    CHECK(strstr(buf, "\"timeout\"") != NULL);
    rvt_stop_process(w2, 5000);
    close(ls);
}

/* SIGTERM while a job runs that ends within the grace: the worker stops
 * claiming, lets the job finish (here the remote hangs up after a second:
 * the job fails and records it), and exits 0 without waiting for the
 * grace. */
static void test_sigterm_lets_a_running_job_finish(void)
{
    int port = 0, ls = rvt_silent_listener(&port);
    CHECK(ls >= 0);
    pid_t closer = fork();
    if (closer == 0) {
        int c = accept(ls, NULL, NULL);
        sleep(1);
        close(c);
        _exit(0);
    }
    int64_t took = 0;
    CHECK_INT(sigterm_while_running("late", port, "REPOVIEW_SHUTDOWN_GRACE=20",
                                    15000, &took),
              0);
    CHECK(took < rvt_scale_ms(10000)); /* well before the 20 s grace */
    char buf[64];
    CHECK_STR(rvt_meta_field(&conn, "late", "branch_sync_status", buf,
                             sizeof(buf)),
              "error");
    waitpid(closer, NULL, 0);
    close(ls);
}

int main(void)
{
    tmp = rvt_tmpdir("rvtest-worker");
    if (!tmp || rvt_redis_start(&redis, NULL) != 0 || rvt_redis_connect(&redis, &conn) != 0) {
        fprintf(stderr, "cannot start the test redis\n");
        return 1;
    }
    RUN(test_worker_syncs_a_registered_repo_like_the_git_cli);
    RUN(test_refresh_after_a_push_updates_the_projection);
    RUN(test_a_failed_sync_keeps_the_last_good_projection);
    RUN(test_sigterm_hands_back_a_job_stuck_past_the_grace);
    RUN(test_sigterm_lets_a_running_job_finish);
    return rvt_finish(&conn, &redis, tmp);
}

/* The URL policy and the fetch deadline, seen from a real worker facing
 * hostile remotes on loopback: a silent SSH port, an HTTP server that
 * trickles, a silent git:// server, a redirect to a refused host, and
 * localhost by name. Each sync ends within REPOVIEW_FETCH_TIMEOUT (plus a
 * few seconds) with its class of error, the worker's lease holds no job,
 * and the worker goes on to sync the next repo. Removing a repo whose
 * fetch hangs frees the worker at once. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/registry.h"
#include "common/util.h"
#include "rvtest.h"

#define FETCH_TIMEOUT_S 5

static struct rvt_redis redis;
static struct rv_rsync conn;
static char *tmp;
static char good[600]; /* a local bare repo every worker may fetch */
static int serial;

static pid_t start_worker(const char *name, const char *const *extra)
{
    char log[600], data[600], timeout[64];
    snprintf(log, sizeof(log), "%s/%s.log", tmp, name);
    snprintf(data, sizeof(data), "%s/data-%s", tmp, name);
    snprintf(timeout, sizeof(timeout), "REPOVIEW_FETCH_TIMEOUT=%d",
             FETCH_TIMEOUT_S);
    /* tests/support/lsan-libgit2-ssh.supp, found from this file's path:
     * libgit2's own leak on a failed SSH handshake (see there). */
    char lsan[700];
    const char *here = __FILE__;
    const char *cut = strstr(here, "/integration/");
    snprintf(lsan, sizeof(lsan),
             "LSAN_OPTIONS=suppressions=%.*s/support/lsan-libgit2-ssh.supp",
             cut ? (int)(cut - here) : 0, here);
    const char *env[12] = {timeout, "REPOVIEW_LEASE_SECONDS=5",
                           "REPOVIEW_SYNC_INTERVAL=3600",
                           "REPOVIEW_MAX_ATTEMPTS=1", rvt_allow_local_env(),
                           lsan};
    size_t n = 6;
    for (size_t i = 0; extra && extra[i] && n < 11; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    return rvt_spawn_worker(redis.url, data, log, env);
}

/* Jobs held by any worker (its processing list): 0 when leases are free. */
static long long held_jobs(void)
{
    return rvt_redis_int(&conn, "EVAL %s 0",
                         "local n = 0 for _, k in ipairs(redis.call('KEYS', "
                         "'rv:processing:*')) do n = n + redis.call('LLEN', "
                         "k) end return n");
}

/* The code of the repo's last branch sync error, into buf. */
static const char *error_code(const char *id, char *buf, size_t size)
{
    char raw[1024];
    rvt_meta_field(&conn, id, "branch_sync_error", raw, sizeof(raw));
    json_t *j = json_loads(raw, 0, NULL);
    rv_strlcpy(buf, json_string_value(json_object_get(j, "code")) ?: "",
               size);
    json_decref(j);
    return buf;
}

/* Registers url, waits for the failed sync, checks its code, how long it
 * took, that no lease holds it, and that the worker then syncs a good
 * repo. */
static void expect_failure(const char *url, const char *code)
{
    char id[32], ok_id[32], got[64], msg[1024];
    snprintf(id, sizeof(id), "hostile-%d", serial);
    snprintf(ok_id, sizeof(ok_id), "good-%d", serial++);
    rvt_current = url;
    struct rv_repo_spec spec = {.id = id, .url = url};
    char err[256];
    int64_t started = rv_mono_ms();
    CHECK_INT(rv_registry_add(&conn, &spec, err, sizeof(err)), RV_OK);
    CHECK(rvt_wait_field(&conn, id, "branch_sync_status", "error",
                         rvt_scale_ms((FETCH_TIMEOUT_S + 10) * 1000)));
    int64_t took = rv_mono_ms() - started;
    fprintf(stderr, "  %s: %s after %lld ms\n", url, error_code(id, got,
            sizeof(got)), (long long)took);
    CHECK_STR(error_code(id, got, sizeof(got)), code);
    CHECK(took < rvt_scale_ms((FETCH_TIMEOUT_S + 4) * 1000));
    /* A fixed sentence: nothing the remote said, no port, no address. */
    rvt_meta_field(&conn, id, "branch_sync_error", msg, sizeof(msg));
    CHECK(!rvt_contains(msg, "127.0.0") && !rvt_contains(msg, "EOF") &&
          !rvt_contains(msg, "Connection"));
    /* Removed, so that its retry (the backoff of a failed sync) does not
     * come between the next checks. The job leaves the worker's list just
     * after its status is written. */
    CHECK_INT(rv_registry_remove(&conn, id), RV_OK);
    for (int i = 0; i < 40 && held_jobs() != 0; i++)
        rvt_sleep_ms(50);
    CHECK_INT(held_jobs(), 0);
    struct rv_repo_spec next = {.id = ok_id, .url = good};
    CHECK_INT(rv_registry_add(&conn, &next, err, sizeof(err)), RV_OK);
    CHECK(rvt_wait_field(&conn, ok_id, "branch_sync_status", "idle",
                         rvt_scale_ms(20000)));
    rvt_current = NULL;
}

/* node servers/helper: "trickle" (HTTP headers, then a byte every 5 s)
 * or "redirect <host:port>" (302 to there); writes its port to portfile. */
static pid_t start_node(const char *mode, const char *arg, int *port)
{
    char script[600], portfile[600];
    snprintf(script, sizeof(script), "%s/hostile.js", tmp);
    snprintf(portfile, sizeof(portfile), "%s/%s.port", tmp, mode);
    FILE *f = fopen(script, "w");
    if (!f)
        return -1;
    fputs("const [mode, arg, portfile] = process.argv.slice(2);\n"
          "const s = require('http').createServer((q, r) => {\n"
          "  if (mode === 'redirect') {\n"
          "    r.writeHead(302, {Location: 'http://' + arg + q.url});\n"
          "    return r.end();\n"
          "  }\n"
          "  r.writeHead(200, {'Content-Type':\n"
          "    'application/x-git-upload-pack-advertisement'});\n"
          "  r.write('0');\n"
          "  const t = setInterval(() => r.write('0'), 5000);\n"
          "  r.on('close', () => clearInterval(t));\n"
          "});\n"
          "s.listen(0, '127.0.0.1', () => require('fs').writeFileSync(\n"
          "  portfile, String(s.address().port)));\n"
          "setTimeout(() => process.exit(0), 300000);\n",
          f);
    fclose(f);
    unlink(portfile);
    pid_t pid = fork();
    if (pid == 0) {
        execlp("node", "node", script, mode, arg, portfile, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        char *p = rvt_slurp(portfile);
        if (p && *p) {
            *port = (int)strtol(p, NULL, 10);
            free(p);
            return pid;
        }
        free(p);
        rvt_sleep_ms(25);
    }
    return -1;
}

static void test_hostile_remotes_end_at_the_deadline_with_their_class(void)
{
    int silent_port = 0, ls = rvt_silent_listener(&silent_port);
    CHECK(ls >= 0);
    int trickle_port = 0, redirect_port = 0;
    pid_t trickle = start_node("trickle", "-", &trickle_port);
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.2:%d", trickle_port);
    pid_t redirect = start_node("redirect", target, &redirect_port);
    CHECK(trickle > 0 && redirect > 0);
    /* Loopback opened (the servers are there), one host blocked: the
     * redirect's target. */
    static const char *const open[] = {
        RVT_ALLOW_LOOPBACK_ENV, "REPOVIEW_ALLOWED_SCHEMES=https,http,ssh,git",
        "REPOVIEW_BLOCKED_HOSTS_REMOTE=127.0.0.2", NULL};
    pid_t w = start_worker("worker-open", open);
    CHECK(w > 0);
    char url[128];
    snprintf(url, sizeof(url), "ssh://git@127.0.0.1:%d/x.git", silent_port);
    expect_failure(url, "timeout");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x.git", trickle_port);
    expect_failure(url, "timeout");
    snprintf(url, sizeof(url), "git://127.0.0.1:%d/x.git", silent_port);
    expect_failure(url, "timeout");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x.git", redirect_port);
    expect_failure(url, "url_not_allowed");
    CHECK_INT(rvt_stop_process(w, 15000), 0);

    /* The default policy: localhost by name, and any loopback address,
     * never reach a connect (the listener would see it). */
    w = start_worker("worker-closed", NULL);
    CHECK(w > 0);
    snprintf(url, sizeof(url), "git://localhost:%d/x.git", silent_port);
    expect_failure(url, "url_not_allowed");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x.git", trickle_port);
    expect_failure(url, "url_not_allowed");
    snprintf(url, sizeof(url), "ssh://git@[::ffff:127.0.0.1]:%d/x.git",
             silent_port);
    expect_failure(url, "url_not_allowed");
    CHECK_INT(rvt_stop_process(w, 15000), 0);
    rvt_stop_process(trickle, 5000);
    rvt_stop_process(redirect, 5000);
    close(ls);
}

static void test_removing_a_repo_abandons_its_hung_fetch(void)
{
    int port = 0, ls = rvt_silent_listener(&port);
    CHECK(ls >= 0);
    static const char *const open[] = {
        RVT_ALLOW_LOOPBACK_ENV, "REPOVIEW_FETCH_TIMEOUT=120", NULL};
    pid_t w = start_worker("worker-remove", open);
    CHECK(w > 0);
    char url[128], err[256];
    snprintf(url, sizeof(url), "ssh://git@127.0.0.1:%d/x.git", port);
    struct rv_repo_spec spec = {.id = "doomed", .url = url};
    CHECK_INT(rv_registry_add(&conn, &spec, err, sizeof(err)), RV_OK);
    bool held = false;
    for (int i = 0; i < rvt_scale_ms(10000) / 50 && !held; i++) {
        held = held_jobs() == 1;
        if (!held)
            rvt_sleep_ms(50);
    }
    CHECK(held);
    rvt_sleep_ms(1000); /* well inside the fetch */
    int64_t removed = rv_mono_ms();
    CHECK_INT(rv_registry_remove(&conn, "doomed"), RV_OK);
    while (held_jobs() != 0 && rv_mono_ms() - removed < rvt_scale_ms(30000))
        rvt_sleep_ms(50);
    int64_t took = rv_mono_ms() - removed;
    fprintf(stderr, "  freed %lld ms after the removal\n", (long long)took);
    CHECK_INT(held_jobs(), 0);
    CHECK(took < rvt_scale_ms(4000)); /* not the 120 s fetch timeout */
    /* The worker goes on. */
    struct rv_repo_spec next = {.id = "after", .url = good};
    CHECK_INT(rv_registry_add(&conn, &next, err, sizeof(err)), RV_OK);
    CHECK(rvt_wait_field(&conn, "after", "branch_sync_status", "idle",
                         rvt_scale_ms(20000)));
    CHECK_INT(rvt_stop_process(w, 15000), 0);
    char path[600];
    snprintf(path, sizeof(path), "%s/worker-remove.log", tmp);
    char *log = rvt_slurp(path);
    CHECK(rvt_contains(log, "abandoning"));
    free(log);
    close(ls);
}

int main(void)
{
    tmp = rvt_tmpdir("rvtest-hostile");
    if (!tmp || rvt_redis_start(&redis, NULL) != 0 ||
        rvt_redis_connect(&redis, &conn) != 0) {
        fprintf(stderr, "cannot start the test redis\n");
        return 1;
    }
    snprintf(good, sizeof(good), "%s/good.git", tmp);
    if (rvt_sh(NULL,
               "git init -q --bare -b main '%s' && git clone -q '%s' "
               "'%s/work' 2>/dev/null && cd '%s/work' && git -c "
               "user.name=T -c user.email=t@x commit -q --allow-empty -m one "
               "&& git push -q origin HEAD:main",
               good, good, tmp, tmp) != 0) {
        fprintf(stderr, "cannot build the good repo\n");
        return 1;
    }
    RUN(test_hostile_remotes_end_at_the_deadline_with_their_class);
    RUN(test_removing_a_repo_abandons_its_hung_fetch);
    return rvt_finish(&conn, &redis, tmp);
}

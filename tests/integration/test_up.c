/*
 * `repoview up`: starts Redis, the API and workers, serves the demo repo,
 * restarts a killed worker, and stops everything cleanly on SIGTERM.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "rvtest.h"

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Pids of the children of `parent` running `name`, space-separated. */
static char *children_named(pid_t parent, const char *name)
{
    char *out = NULL;
    rvt_sh(&out, "pgrep -P %ld -x %s | tr '\\n' ' '", (long)parent, name);
    return out;
}

static bool all_dead(const char *pids)
{
    const char *p = pids;
    while (*p) {
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        if (pid > 0 && kill((pid_t)pid, 0) == 0)
            return false;
        p = end;
    }
    return true;
}

static void test_up_serves_the_demo_restarts_a_killed_worker_and_stops_cleanly(void)
{
    char *tmp = rvt_tmpdir("rvtest-up");
    CHECK(tmp != NULL);
    /* The demo repo is the checkout `up` runs in: make one. */
    CHECK_INT(rvt_sh(NULL, "set -e; cd '%s'; git init -q -b main checkout; cd checkout;"
                     "git -c user.name=T -c user.email=t@x commit -q --allow-empty -m one;"
                     "git branch topic", tmp), 0);
    int port = free_port();
    char log[600];
    snprintf(log, sizeof(log), "%s/up.log", tmp);
    pid_t up = fork();
    if (up == 0) {
        char dir[600], data[600], listen[64];
        snprintf(dir, sizeof(dir), "%s/checkout", tmp);
        snprintf(data, sizeof(data), "%s/var", tmp);
        snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
        if (chdir(dir) != 0 || !freopen(log, "w", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(126);
        setenv("REPOVIEW_DATA_DIR", data, 1);
        setenv("REPOVIEW_LOG", "warn", 1);
        execl(rvt_bin("repoview"), "repoview", "up", "--demo", "--workers", "2",
              "--listen", listen, (char *)NULL);
        _exit(127);
    }
    /* The demo overview shows both branches once a worker synced it. */
    char *body = NULL;
    bool synced = false;
    for (int i = 0; i < 300 && !synced; i++) {
        rvt_sleep_ms(100);
        free(body);
        body = NULL;
        rvt_sh(&body, "curl -s http://127.0.0.1:%d/v1/repos/demo/overview", port);
        synced = body && strstr(body, "\"topic\"") && strstr(body, "\"branchSyncStatus\":\"idle\"");
    }
    CHECK(synced);
    free(body);

    char *workers = children_named(up, "repoview-worker");
    CHECK(workers && strlen(workers) > 2);
    pid_t victim = workers ? (pid_t)strtol(workers, NULL, 10) : 0;
    CHECK(victim > 0 && kill(victim, SIGKILL) == 0);
    bool replaced = false;
    for (int i = 0; i < 100 && !replaced; i++) {
        rvt_sleep_ms(100);
        char *now = children_named(up, "repoview-worker");
        int count = 0;
        for (char *p = now; p && *p; p++)
            if (*p == ' ')
                count++;
        char vs[32];
        snprintf(vs, sizeof(vs), "%ld ", (long)victim);
        replaced = now && count == 2 && !strstr(now, vs);
        free(now);
    }
    CHECK(replaced);

    char *all = NULL;
    rvt_sh(&all, "pgrep -P %ld | tr '\\n' ' '", (long)up);
    CHECK(kill(up, SIGTERM) == 0);
    int status = -1;
    bool exited = false;
    for (int i = 0; i < 300 && !exited; i++) {
        rvt_sleep_ms(100);
        exited = waitpid(up, &status, WNOHANG) == up;
    }
    CHECK(exited);
    if (!exited) {
        kill(up, SIGKILL);
        waitpid(up, &status, 0);
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(all && all_dead(all));
    free(all);
    free(workers);
    if (rvt_failures == 0)
        rvt_rmrf(tmp);
    else
        fprintf(stderr, "kept %s (see up.log)\n", tmp);
    free(tmp);
}

int main(void)
{
    RUN(test_up_serves_the_demo_restarts_a_killed_worker_and_stops_cleanly);
    return rvt_done();
}

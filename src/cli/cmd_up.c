/*
 * `repoview up`: everything on one machine, for a laptop or a demo. Starts a
 * private redis-server (unix socket and AOF under REPOVIEW_DATA_DIR, no TCP
 * port unless --redis-port is given), the API and N workers as child
 * processes; prints the URL; restarts a child that dies; on SIGINT or
 * SIGTERM stops the API and workers, then Redis, and exits 0.
 *
 * With --demo it registers the git checkout it is run from as repo "demo",
 * so the dashboard shows real branches with no network.
 *
 * The API and the workers get every setting `repoview` was started with
 * (flags included) through their environment, never on their command
 * lines: a command line is visible to every local user in ps, while a
 * process's environment is readable only by its owner.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/config.h"
#include "common/errors.h"
#include "common/log.h"
#include "common/rconn.h"
#include "common/registry.h"
#include "common/util.h"

#define UP_MAX_WORKERS 64
/* A child that keeps dying is restarted at most this often. */
#define UP_RESTART_MIN_MS 1000
/* How long children get to stop before SIGKILL. */
#define UP_STOP_GRACE_MS 15000

enum child_role { ROLE_REDIS, ROLE_API, ROLE_WORKER };

struct child {
    enum child_role role;
    int index;          /* worker number */
    pid_t pid;          /* 0 when not running */
    int64_t started_ms; /* monotonic */
    int restarts;
};

static volatile sig_atomic_t up_stopping;

static void up_on_signal(int sig)
{
    (void)sig;
    up_stopping = 1;
}

static const char *role_name(enum child_role role)
{
    return role == ROLE_REDIS ? "redis-server"
           : role == ROLE_API ? "repoview-api"
                              : "repoview-worker";
}

/* The directory of the running executable, where the other binaries are
 * built and installed next to it. */
static int self_dir(char *buf, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    return 0;
}

struct up_env {
    const struct rv_config *cfg; /* what the API and workers run with */
    char bindir[PATH_MAX];
    char data_dir[PATH_MAX];
    char sock[PATH_MAX + 16];
    char redis_url[PATH_MAX + 32];
    char redis_log[PATH_MAX + 16];
    char listen[256];
    int redis_port; /* 0 = unix socket only */
    /* REPOVIEW_ALLOW_LOCAL_PATHS for the children ("" = cfg's), which
     * --demo widens by its checkout. */
    char allow_local[2 * PATH_MAX + 2];
};

static pid_t spawn(const struct up_env *env, struct child *c)
{
    pid_t pid = fork();
    if (pid != 0) {
        if (pid > 0) {
            c->pid = pid;
            c->started_ms = rv_mono_ms();
        }
        return pid;
    }
    /* Child: die with the supervisor, whatever kills it. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    /* Our settings, secrets included, go by the environment; then what
     * `up` itself decides for its children. Redis needs none of them. */
    if (c->role != ROLE_REDIS &&
        (rv_config_export_env(env->cfg) != RV_OK ||
         (env->allow_local[0] &&
          setenv("REPOVIEW_ALLOW_LOCAL_PATHS", env->allow_local, 1) != 0))) {
        fprintf(stderr, "repoview up: cannot pass the settings to %s\n",
                role_name(c->role));
        _exit(126);
    }
    setenv("REPOVIEW_REDIS_URL", env->redis_url, 1);
    setenv("REPOVIEW_DATA_DIR", env->data_dir, 1);
    setenv("REPOVIEW_LISTEN", env->listen, 1);
    char path[PATH_MAX + 32];
    if (c->role == ROLE_REDIS) {
        char port[16];
        snprintf(port, sizeof(port), "%d", env->redis_port);
        execlp("redis-server", "redis-server", "--port", port, "--bind",
               "127.0.0.1", "--unixsocket", env->sock, "--unixsocketperm",
               "700", "--dir", env->data_dir, "--appendonly", "yes",
               "--appendfsync", "everysec", "--save", "", "--logfile",
               env->redis_log, (char *)NULL);
        _exit(127);
    }
    snprintf(path, sizeof(path), "%s/%s", env->bindir, role_name(c->role));
    execl(path, role_name(c->role), (char *)NULL);
    _exit(127);
}

/* Waits until Redis answers PING, up to timeout_ms. */
static int wait_redis(const struct up_env *env, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms && !up_stopping; waited += 50) {
        redisContext *c = redisConnectUnix(env->sock);
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            bool ok = r && r->type == REDIS_REPLY_STATUS;
            if (r)
                freeReplyObject(r);
            redisFree(c);
            if (ok)
                return 0;
        } else if (c) {
            redisFree(c);
        }
        usleep(50 * 1000);
    }
    return -1;
}

/* The top directory of the git checkout of the current directory, into
 * top (PATH_MAX bytes). RV_OK or RV_ERR_INVALID. */
static int demo_checkout(char *top)
{
    FILE *p = popen("git rev-parse --show-toplevel 2>/dev/null", "r");
    if (!p || !fgets(top, PATH_MAX, p)) {
        if (p)
            pclose(p);
        fprintf(stderr,
                "repoview up: --demo needs to run inside a git checkout\n");
        return RV_ERR_INVALID;
    }
    pclose(p);
    top[strcspn(top, "\n")] = '\0';
    return RV_OK;
}

/* Opens the URL policy for the demo: the checkout's directory joins the
 * local paths the API and the workers allow (env->allow_local, set in every
 * child), and nothing else is opened. */
static int allow_demo_path(struct up_env *env, const char *top)
{
    const char *had = env->cfg->allow_local_paths;
    size_t size = sizeof(env->allow_local);
    int n = had && *had ? snprintf(env->allow_local, size, "%s,%s", had, top)
                        : snprintf(env->allow_local, size, "%s", top);
    if (n < 0 || (size_t)n >= size) {
        env->allow_local[0] = '\0';
        return RV_ERR_CONFIG;
    }
    return RV_OK;
}

/* Registers the git checkout top as "demo" (or just refreshes it when it
 * is there already). */
static int register_demo(const struct up_env *env, const char *top)
{
    struct rv_redis_addr addr;
    char err[256];
    if (rv_redis_parse_url(env->redis_url, &addr, err, sizeof(err)) != RV_OK)
        return RV_ERR_CONFIG;
    struct rv_rsync r;
    int rc = rv_rsync_open(&r, &addr, 5000);
    if (rc != RV_OK)
        goto out;
    struct rv_repo_spec spec = {
        .id = "demo", .url = top, .default_interval_s = 300};
    rc = rv_registry_add(&r, &spec, err, sizeof(err));
    if (rc == RV_ERR_EXISTS) {
        rv_refresh_outcome outcome;
        rc = rv_registry_refresh(&r, "demo", RV_KIND_BRANCHES, RV_REASON_USER,
                                 &outcome);
    }
    if (rc == RV_OK)
        fprintf(stderr, "repoview up: demo repo is %s\n", top);
    else
        fprintf(stderr, "repoview up: cannot register the demo repo: %s\n",
                rc == RV_ERR_INVALID ? err : rv_strerror(rc));
out:
    rv_rsync_close(&r);
    return rc;
}

/* Sends sig to every running child of the given role. */
static void signal_role(struct child *kids, int n, enum child_role role,
                        int sig)
{
    for (int i = 0; i < n; i++)
        if (kids[i].role == role && kids[i].pid > 0)
            kill(kids[i].pid, sig);
}

/* Reaps exited children; returns how many of `role` are still running
 * after waiting up to timeout_ms. */
static int wait_role(struct child *kids, int n, enum child_role role,
                     int timeout_ms)
{
    int running = 0;
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        running = 0;
        for (int i = 0; i < n; i++) {
            if (kids[i].role != role || kids[i].pid <= 0)
                continue;
            if (waitpid(kids[i].pid, NULL, WNOHANG) == kids[i].pid)
                kids[i].pid = 0;
            else
                running++;
        }
        if (running == 0)
            break;
        usleep(50 * 1000);
    }
    return running;
}

static void stop_all(struct child *kids, int n)
{
    fprintf(stderr, "repoview up: stopping\n");
    signal_role(kids, n, ROLE_API, SIGTERM);
    signal_role(kids, n, ROLE_WORKER, SIGTERM);
    if (wait_role(kids, n, ROLE_API, UP_STOP_GRACE_MS) > 0)
        signal_role(kids, n, ROLE_API, SIGKILL);
    if (wait_role(kids, n, ROLE_WORKER, UP_STOP_GRACE_MS) > 0)
        signal_role(kids, n, ROLE_WORKER, SIGKILL);
    wait_role(kids, n, ROLE_API, 2000);
    wait_role(kids, n, ROLE_WORKER, 2000);
    /* Redis last, so the others could hand back their jobs. */
    signal_role(kids, n, ROLE_REDIS, SIGTERM);
    if (wait_role(kids, n, ROLE_REDIS, UP_STOP_GRACE_MS) > 0) {
        signal_role(kids, n, ROLE_REDIS, SIGKILL);
        wait_role(kids, n, ROLE_REDIS, 2000);
    }
}

static void up_usage(FILE *out)
{
    fputs(
        "usage: repoview up [--demo] [--workers N] [--listen ADDR] "
        "[--redis-port PORT]\n"
        "  Starts a private redis-server (unix socket and AOF under\n"
        "  REPOVIEW_DATA_DIR), repoview-api and N repoview-worker processes\n"
        "  (default 2), restarts any that die, and stops them all on Ctrl-C.\n"
        "  --demo        register this git checkout as repo \"demo\"\n"
        "  --workers N   number of workers, 1..64\n"
        "  --listen ADDR API address (default REPOVIEW_LISTEN)\n"
        "  --redis-port  also listen on 127.0.0.1:PORT (default: no TCP)\n",
        out);
}

int cli_cmd_up(struct cli *c, int argc, char **argv)
{
    const struct rv_config *cfg = &c->cfg;
    bool demo = false;
    int64_t workers = 2, redis_port = 0;
    struct up_env env;
    memset(&env, 0, sizeof(env));
    env.cfg = cfg;
    rv_strlcpy(env.listen, cfg->listen, sizeof(env.listen));
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--demo")) {
            demo = true;
        } else if (!strcmp(a, "--workers") && i + 1 < argc) {
            if (rv_parse_i64(argv[++i], 1, UP_MAX_WORKERS, &workers) != 0) {
                fprintf(stderr, "repoview up: --workers takes 1..%d\n",
                        UP_MAX_WORKERS);
                return 2;
            }
        } else if (!strcmp(a, "--listen") && i + 1 < argc) {
            if (rv_strlcpy(env.listen, argv[++i], sizeof(env.listen)) != 0)
                return 2;
        } else if (!strcmp(a, "--redis-port") && i + 1 < argc) {
            if (rv_parse_i64(argv[++i], 1, 65535, &redis_port) != 0) {
                fprintf(stderr, "repoview up: --redis-port takes 1..65535\n");
                return 2;
            }
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            up_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "repoview up: unexpected argument \"%s\"\n", a);
            up_usage(stderr);
            return 2;
        }
    }
    env.redis_port = (int)redis_port;
    if (self_dir(env.bindir, sizeof(env.bindir)) != 0) {
        fprintf(stderr, "repoview up: cannot find the repoview binaries\n");
        return 1;
    }
    if (rv_mkdirs(cfg->data_dir) != 0 ||
        !realpath(cfg->data_dir, env.data_dir)) {
        fprintf(stderr, "repoview up: cannot create REPOVIEW_DATA_DIR %s: %s\n",
                cfg->data_dir, strerror(errno));
        return 1;
    }
    snprintf(env.sock, sizeof(env.sock), "%s/redis.sock", env.data_dir);
    if (strlen(env.sock) >= 100) {
        fprintf(
            stderr,
            "repoview up: the socket path %s is too long for a unix socket\n",
            env.sock);
        return 1;
    }
    snprintf(env.redis_url, sizeof(env.redis_url), "unix://%s", env.sock);
    snprintf(env.redis_log, sizeof(env.redis_log), "%s/redis.log",
             env.data_dir);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = up_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int n = 2 + (int)workers;
    struct child kids[2 + UP_MAX_WORKERS];
    memset(kids, 0, sizeof(kids));
    kids[0].role = ROLE_REDIS;
    kids[1].role = ROLE_API;
    for (int i = 2; i < n; i++) {
        kids[i].role = ROLE_WORKER;
        kids[i].index = i - 2;
    }

    if (spawn(&env, &kids[0]) < 0 || wait_redis(&env, 10000) != 0) {
        fprintf(stderr,
                "repoview up: redis-server did not start; see %s/redis.log\n",
                env.data_dir);
        stop_all(kids, n);
        return 1;
    }
    char top[PATH_MAX];
    if (demo &&
        (demo_checkout(top) != RV_OK || allow_demo_path(&env, top) != RV_OK))
        demo = false;
    for (int i = 1; i < n; i++)
        spawn(&env, &kids[i]);
    if (demo)
        register_demo(&env, top);
    printf("repoview is up: http://%s/\n", env.listen);
    printf("  redis: %s   data: %s   workers: %d\n", env.redis_url,
           env.data_dir, (int)workers);
    printf("  CLI:   REPOVIEW_REDIS_URL=%s %s/repoview list\n", env.redis_url,
           env.bindir);
    fflush(stdout);

    while (!up_stopping) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < n; i++) {
            struct child *c = &kids[i];
            if (c->pid != pid)
                continue;
            c->pid = 0;
            if (up_stopping)
                break;
            fprintf(stderr, "repoview up: %s (pid %ld) %s %d; restarting\n",
                    role_name(c->role), (long)pid,
                    WIFSIGNALED(status) ? "killed by signal" : "exited with",
                    WIFSIGNALED(status) ? WTERMSIG(status)
                                        : WEXITSTATUS(status));
            int64_t alive = rv_mono_ms() - c->started_ms;
            if (alive < UP_RESTART_MIN_MS)
                usleep((useconds_t)(UP_RESTART_MIN_MS - alive) * 1000);
            c->restarts++;
            if (!up_stopping)
                spawn(&env, c);
            if (c->role == ROLE_REDIS)
                wait_redis(&env, 10000);
        }
    }
    stop_all(kids, n);
    fprintf(stderr, "repoview up: stopped\n");
    return 0;
}

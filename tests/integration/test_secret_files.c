/*
 * Secrets from files: repoview-api and repoview-worker started with
 * REPOVIEW_API_TOKEN_FILE, REPOVIEW_WEBHOOK_SECRET_FILE, GITHUB_TOKEN_FILE
 * and REPOVIEW_REDIS_URL_FILE (a Redis with a password) use what the files
 * hold, so does the `repoview` CLI, and `repoview up` given secret files
 * hands them on to its children. No secret is ever on a command line (/proc/PID/cmdline, what ps
 * shows every local user) of any process started here, nor in a log.
 *
 * The Redis password is set with CONFIG SET over the test's own
 * connection, so that not even redis-server's command line holds it.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/util.h"
#include "rvtest.h"

#define API_TOKEN "apiTokFromFile-3f9K2"
#define HOOK_SECRET "hookSecretFromFile-Q8z"
#define GH_TOKEN "ghp_fromfile_7Lm2Xc"
#define REDIS_PASS "redisPwFromFile-5Vt"

static const char *const secrets[] = {API_TOKEN, HOOK_SECRET, GH_TOKEN,
                                      REDIS_PASS};
#define NSECRETS (sizeof(secrets) / sizeof(secrets[0]))

static struct rvt_redis redis;
static struct rv_rsync conn;
static char *tmp;
static char *body, *headers;

/* tmp/name holding content and a newline, mode 0600; path into buf. */
static const char *write_secret(const char *name, const char *content,
                                char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", tmp, name);
    int fd = open(buf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(write(fd, content, strlen(content)) ==
              (ssize_t)strlen(content));
        CHECK(write(fd, "\n", 1) == 1);
        close(fd);
    }
    return buf;
}

static int http(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int http(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int status = rvt_vcurl(tmp, &body, &headers, fmt, ap);
    va_end(ap);
    return status;
}

/* Asserts that the command line of pid (which must be running) holds no
 * secret; what names it in a failure. */
static void check_cmdline_clean(pid_t pid, const char *what)
{
    char path[64], args[8192];
    snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    ssize_t n = fd >= 0 ? read(fd, args, sizeof(args) - 1) : -1;
    if (fd >= 0)
        close(fd);
    rvt_current = what;
    CHECK(n > 0);
    if (n <= 0)
        return;
    for (ssize_t i = 0; i < n; i++)
        if (args[i] == '\0')
            args[i] = ' ';
    args[n] = '\0';
    for (size_t i = 0; i < NSECRETS; i++) {
        if (strstr(args, secrets[i]))
            fprintf(stderr, "  %s has a secret on its command line: %s\n",
                    what, args);
        CHECK(strstr(args, secrets[i]) == NULL);
    }
}

/* Asserts that the file at path (a log) shows no secret. */
static void check_log_clean(const char *path)
{
    char *log = rvt_slurp(path);
    CHECK(log != NULL);
    for (size_t i = 0; log && i < NSECRETS; i++)
        CHECK(!rvt_contains(log, secrets[i]));
    free(log);
}

/* The files every test here gives, as "NAME=path" settings. */
static char env_api[700], env_hook[700], env_gh[700], env_url[700];
static char path_api[600], path_hook[600], path_gh[600], path_url[600];
static char hdr_good[600], hdr_bad[600];

static void make_secret_files(void)
{
    char url[256];
    snprintf(url, sizeof(url), "redis://:%s@127.0.0.1:%d/0", REDIS_PASS,
             redis.port);
    write_secret("api-token", API_TOKEN, path_api, sizeof(path_api));
    write_secret("webhook-secret", HOOK_SECRET, path_hook, sizeof(path_hook));
    write_secret("github-token", GH_TOKEN, path_gh, sizeof(path_gh));
    write_secret("redis-url", url, path_url, sizeof(path_url));
    snprintf(env_api, sizeof(env_api), "REPOVIEW_API_TOKEN_FILE=%s",
             path_api);
    snprintf(env_hook, sizeof(env_hook), "REPOVIEW_WEBHOOK_SECRET_FILE=%s",
             path_hook);
    snprintf(env_gh, sizeof(env_gh), "GITHUB_TOKEN_FILE=%s", path_gh);
    snprintf(env_url, sizeof(env_url), "REPOVIEW_REDIS_URL_FILE=%s",
             path_url);
    /* curl reads the Authorization header from a file (-H @file), so the
     * token is not on curl's command line either. */
    char line[128];
    snprintf(line, sizeof(line), "Authorization: Bearer %s", API_TOKEN);
    write_secret("hdr-good", line, hdr_good, sizeof(hdr_good));
    write_secret("hdr-bad", "Authorization: Bearer apiTokFromFile-wrong",
                 hdr_bad, sizeof(hdr_bad));
}

/* POSTs a signed ping webhook to base; the signature is made with secret.
 * Returns the HTTP status. */
static int ping_webhook(const char *base, const char *secret)
{
    char payload[600], sig[128];
    snprintf(payload, sizeof(payload), "%s/ping.json", tmp);
    FILE *f = fopen(payload, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("{\"zen\":\"Keep it logically awesome.\",\"hook_id\":1}", f);
        fclose(f);
    }
    rvt_sign_file(payload, secret, sig, sizeof(sig));
    return http("-X POST -H 'Content-Type: application/json' "
                "-H 'X-GitHub-Event: ping' -H 'X-GitHub-Delivery: d-1' "
                "-H 'X-Hub-Signature-256: %s' --data-binary @'%s' "
                "%s/v1/webhooks/github",
                sig, payload, base);
}

static void test_api_and_worker_run_on_secrets_read_from_files(void)
{
    /* A repo for the worker to sync: the sync proves that the worker
     * reached the password-protected Redis with the URL from its file. */
    char repo[600];
    snprintf(repo, sizeof(repo), "%s/widgets", tmp);
    CHECK_INT(rvt_sh(NULL,
                     "set -e; git init -q -b main '%s'; cd '%s';"
                     "git -c user.name=T -c user.email=t@x commit -q "
                     "--allow-empty -m one; git branch topic",
                     repo, repo),
              0);
    const char *env[] = {env_api, env_hook, env_gh, env_url,
                         rvt_allow_local_env(), NULL};
    char log[600], wlog[600], data[600];
    snprintf(log, sizeof(log), "%s/api.log", tmp);
    snprintf(wlog, sizeof(wlog), "%s/worker.log", tmp);
    snprintf(data, sizeof(data), "%s/var", tmp);
    struct rvt_api api;
    memset(&api, 0, sizeof(api));
    /* /readyz: Redis answers, so the password from the file worked. */
    CHECK_INT(rvt_api_start(&api, 0, NULL, log, "/readyz", env), 0);
    pid_t worker = rvt_spawn_worker(NULL, data, wlog, env);
    CHECK(worker > 0);

    /* The token from the file is the one that counts. */
    CHECK_INT(http("-X POST -H 'Content-Type: application/json' -d "
                   "'{\"id\":\"widgets\",\"url\":\"%s\"}' %s/v1/repos",
                   repo, api.base),
              401);
    CHECK_INT(http("-X POST -H @'%s' -H 'Content-Type: application/json' -d "
                   "'{\"id\":\"widgets\",\"url\":\"%s\"}' %s/v1/repos",
                   hdr_bad, repo, api.base),
              401);
    CHECK_INT(http("-X POST -H @'%s' -H 'Content-Type: application/json' -d "
                   "'{\"id\":\"widgets\",\"url\":\"%s\"}' %s/v1/repos",
                   hdr_good, repo, api.base),
              201);
    /* So is the webhook secret. */
    CHECK_INT(ping_webhook(api.base, "hookSecretFromFile-nope"), 401);
    CHECK_INT(ping_webhook(api.base, HOOK_SECRET), 200);
    CHECK(rvt_wait_field(&conn, "widgets", "branch_sync_status", "idle",
                         rvt_scale_ms(20000)));
    char at[64];
    CHECK(rvt_meta_field(&conn, "widgets", "branch_sync_at", at,
                         sizeof(at))[0] != '\0');

    check_cmdline_clean(api.pid, "repoview-api");
    check_cmdline_clean(worker, "repoview-worker");
    check_cmdline_clean(redis.pid, "redis-server");
    rvt_current = NULL;
    CHECK(kill(worker, 0) == 0); /* still running: it started fine */
    CHECK_INT(rvt_stop_process(worker, 15000), 0);
    CHECK_INT(rvt_api_stop(&api), 0);
    check_log_clean(log);
    check_log_clean(wlog);
}

static void test_a_missing_secret_file_stops_the_api_naming_the_path(void)
{
    char missing[600], env_missing[700], log[600];
    snprintf(missing, sizeof(missing), "%s/no-such-token", tmp);
    snprintf(env_missing, sizeof(env_missing), "REPOVIEW_API_TOKEN_FILE=%s",
             missing);
    snprintf(log, sizeof(log), "%s/api-missing.log", tmp);
    char *out = NULL;
    /* Both forms at once is refused too, without either value. */
    int rc = rvt_sh(&out,
                    "env %s REPOVIEW_REDIS_URL_FILE='%s' '%s' 2>&1; "
                    "echo rc=$?; REPOVIEW_API_TOKEN_FILE='%s' "
                    "REPOVIEW_API_TOKEN=\"$(cat '%s')\" "
                    "REPOVIEW_REDIS_URL_FILE='%s' '%s' 2>&1; echo rc=$?",
                    env_missing, path_url, rvt_bin("repoview-api"), path_api,
                    path_api, path_url, rvt_bin("repoview-api"));
    CHECK_INT(rc, 0);
    CHECK(rvt_contains(out, "REPOVIEW_API_TOKEN_FILE"));
    CHECK(rvt_contains(out, missing));
    CHECK(rvt_contains(out, "are both given"));
    CHECK(!rvt_contains(out, "rc=0"));
    for (size_t i = 0; i < NSECRETS; i++)
        CHECK(!rvt_contains(out, secrets[i]));
    free(out);
}

static void test_the_cli_reads_the_redis_url_from_its_file(void)
{
    /* By flag and by environment; the repo registered above is there. */
    char *out = NULL;
    CHECK_INT(rvt_sh(&out, "'%s' --redis-url-file '%s' list 2>&1",
                     rvt_bin("repoview"), path_url),
              0);
    CHECK(rvt_contains(out, "widgets"));
    CHECK(!rvt_contains(out, REDIS_PASS));
    free(out);
    out = NULL;
    CHECK_INT(rvt_sh(&out, "REPOVIEW_REDIS_URL_FILE='%s' '%s' status widgets "
                           "2>&1",
                     path_url, rvt_bin("repoview")),
              0);
    CHECK(rvt_contains(out, "widgets"));
    free(out);
    /* A file the CLI cannot read is bad usage (2), with the path named. */
    out = NULL;
    CHECK_INT(rvt_sh(&out, "'%s' --redis-url-file '%s/none' list 2>&1",
                     rvt_bin("repoview"), tmp),
              2);
    CHECK(rvt_contains(out, "REPOVIEW_REDIS_URL_FILE"));
    CHECK(rvt_contains(out, "/none"));
    free(out);
}

/* The pids of parent's children, into pids (at most max); returns how
 * many. */
static int children_of(pid_t parent, pid_t *pids, int max)
{
    char *out = NULL;
    rvt_sh(&out, "pgrep -P %ld", (long)parent);
    int n = 0;
    for (char *p = out; p && *p && n < max;) {
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        pids[n++] = (pid_t)pid;
        p = end;
    }
    free(out);
    return n;
}

static void test_up_hands_secret_files_on_without_command_lines(void)
{
    int port = rvt_free_tcp_port();
    char log[600], data[600], listen[64], base[80];
    snprintf(log, sizeof(log), "%s/up.log", tmp);
    snprintf(data, sizeof(data), "%s/up-var", tmp);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    snprintf(base, sizeof(base), "http://%s", listen);
    pid_t up = fork();
    if (up == 0) {
        if (!freopen(log, "w", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(126);
        setenv("REPOVIEW_DATA_DIR", data, 1);
        setenv("REPOVIEW_LOG", "info", 1);
        /* The GitHub token and the (unused: up runs its own Redis) Redis
         * URL by environment, the others by flag: all must arrive. */
        setenv("GITHUB_TOKEN_FILE", path_gh, 1);
        setenv("REPOVIEW_REDIS_URL_FILE", path_url, 1);
        unsetenv("REPOVIEW_API_TOKEN");
        unsetenv("REPOVIEW_WEBHOOK_SECRET");
        unsetenv("REPOVIEW_API_TOKEN_FILE");
        unsetenv("REPOVIEW_WEBHOOK_SECRET_FILE");
        execl(rvt_bin("repoview"), "repoview", "--api-token-file", path_api,
              "--webhook-secret-file", path_hook, "up", "--workers", "1",
              "--listen", listen, (char *)NULL);
        _exit(127);
    }
    CHECK(up > 0);
    bool ready = false;
    for (int i = 0; i < rvt_scale_ms(15000) / 100 && !ready; i++) {
        rvt_sleep_ms(100);
        ready = rvt_sh(NULL, "curl -sf -m 2 -o /dev/null %s/readyz", base) ==
                0;
    }
    CHECK(ready);
    /* The API that up started enforces the token from the file. */
    CHECK_INT(http("-X POST -H 'Content-Type: application/json' -d "
                   "'{\"id\":\"up1\",\"url\":\"https://git.example/x.git\"}' "
                   "%s/v1/repos",
                   base),
              401);
    CHECK_INT(http("-X POST -H @'%s' -H 'Content-Type: application/json' -d "
                   "'{\"id\":\"up1\",\"url\":\"https://git.example/x.git\"}' "
                   "%s/v1/repos",
                   hdr_good, base),
              201);
    CHECK_INT(ping_webhook(base, HOOK_SECRET), 200);

    pid_t kids[16];
    int n = children_of(up, kids, 16);
    CHECK_INT(n, 3); /* redis-server, the API, one worker */
    check_cmdline_clean(up, "repoview up");
    for (int i = 0; i < n; i++) {
        char what[64];
        snprintf(what, sizeof(what), "child %ld of repoview up",
                 (long)kids[i]);
        check_cmdline_clean(kids[i], what);
    }
    rvt_current = NULL;

    CHECK(kill(up, SIGTERM) == 0);
    int status = -1;
    bool exited = false;
    for (int i = 0; i < rvt_scale_ms(30000) / 100 && !exited; i++) {
        rvt_sleep_ms(100);
        exited = waitpid(up, &status, WNOHANG) == up;
    }
    CHECK(exited);
    if (!exited) {
        kill(up, SIGKILL);
        waitpid(up, &status, 0);
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    check_log_clean(log);
}

int main(void)
{
    tmp = rvt_tmpdir("rvtest-secrets");
    if (!tmp || rvt_redis_start_tcp(&redis, NULL) != 0 ||
        rvt_redis_connect(&redis, &conn) != 0) {
        fprintf(stderr, "cannot start redis-server\n");
        return 1;
    }
    /* From now on only a client that knows the password gets in. */
    redisReply *r =
        rv_rsync_command(&conn, "CONFIG SET requirepass %s", REDIS_PASS);
    CHECK(r && r->type == REDIS_REPLY_STATUS);
    if (r)
        freeReplyObject(r);
    rv_rsync_close(&conn);
    CHECK_INT(rvt_sh(NULL, "redis-cli -s '%s' PING | grep -q NOAUTH",
                     redis.sock),
              0);
    char err[256];
    char url[256];
    snprintf(url, sizeof(url), "redis://:%s@127.0.0.1:%d/0", REDIS_PASS,
             redis.port);
    CHECK_INT(rv_redis_parse_url(url, &redis.addr, err, sizeof(err)), RV_OK);
    CHECK_INT(rvt_redis_connect(&redis, &conn), 0);
    make_secret_files();

    RUN(test_api_and_worker_run_on_secrets_read_from_files);
    RUN(test_the_cli_reads_the_redis_url_from_its_file);
    RUN(test_a_missing_secret_file_stops_the_api_naming_the_path);
    RUN(test_up_hands_secret_files_on_without_command_lines);
    free(body);
    free(headers);
    return rvt_finish(&conn, &redis, tmp);
}

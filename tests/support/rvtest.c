/* The test harness; see rvtest.h. */
#include "rvtest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cmd.h"
#include "common/errors.h"
#include "common/job.h"
#include "common/keys.h"
#include "common/scripts.h"
#include "common/util.h"

int rvt_checks;
int rvt_failures;
const char *rvt_current = "";

int rvt_done(void)
{
    int passed = rvt_checks - rvt_failures;
    printf("%d passed, %d failed\n", passed, rvt_failures);
    if (rvt_checks == 0) {
        fprintf(stderr, "no check ran\n");
        return 1;
    }
    return rvt_failures ? 1 : 0;
}

int rvt_finish(struct rv_rsync *conn, struct rvt_redis *redis, char *tmp)
{
    rv_rsync_close(conn);
    rvt_redis_stop(redis);
    if (rvt_failures == 0)
        rvt_rmrf(tmp);
    else if (tmp)
        fprintf(stderr, "kept %s for inspection\n", tmp);
    free(tmp);
    return rvt_done();
}

char *rvt_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)(n > 0 ? n : 0) + 1);
    if (!s) {
        fclose(f);
        return NULL;
    }
    size_t got = n > 0 ? fread(s, 1, (size_t)n, f) : 0;
    s[got] = '\0';
    fclose(f);
    return s;
}

/* $RV_RECORD_FILE is emptied when the test program starts, so that it
 * holds this run's answers only (tests/sse/record.mjs appends too). */
__attribute__((constructor)) static void record_reset(void)
{
    const char *path = getenv("RV_RECORD_FILE");
    FILE *f = path && *path ? fopen(path, "w") : NULL;
    if (f)
        fclose(f);
}

/* Appends one answer to $RV_RECORD_FILE, a JSON object a line, for the
 * OpenAPI check (tests/openapi): what was asked (method, URL) and what came
 * back (status, Content-Type, body). Bodies that are not UTF-8 (compressed
 * ones) are recorded as "binary". */
static void record_answer(const char *method, const char *url, int status,
                          const char *type, const char *body)
{
    const char *path = getenv("RV_RECORD_FILE");
    if (!path || !*path || !method || !url)
        return;
    FILE *f = fopen(path, "a");
    if (!f)
        return;
    json_t *b = body ? json_string(body) : NULL;
    json_t *rec = json_pack("{s:s,s:s,s:i,s:s?,s:o?,s:b}", "method", method,
                            "url", url, "status", status, "contentType",
                            type && *type ? type : NULL, "body", b, "binary",
                            body && !b);
    char *line = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    if (line)
        fprintf(f, "%s\n", line);
    free(line);
    json_decref(rec);
    fclose(f);
}

int rvt_vcurl(const char *dir, char **body, char **headers, const char *fmt,
              va_list ap)
{
    char args[4096];
    vsnprintf(args, sizeof(args), fmt, ap);
    free(*body);
    free(*headers);
    char *out = NULL;
    rvt_sh(&out,
           "rm -f '%s/h.txt' '%s/b.txt'; curl -s -m %d -D '%s/h.txt' "
           "-o '%s/b.txt' -w '%%{http_code}\\n%%{method}\\n%%{url_effective}"
           "\\n%%{content_type}' %s",
           dir, dir, rvt_scale_ms(10000) / 1000, dir, dir, args);
    int status = out ? (int)strtol(out, NULL, 10) : 0;
    char path[600];
    snprintf(path, sizeof(path), "%s/b.txt", dir);
    *body = rvt_slurp(path);
    snprintf(path, sizeof(path), "%s/h.txt", dir);
    *headers = rvt_slurp(path);
    /* out: status, method, URL and Content-Type, a line each. */
    char *method = out ? strchr(out, '\n') : NULL;
    char *url = method ? strchr(++method, '\n') : NULL;
    char *type = url ? strchr(++url, '\n') : NULL;
    if (type) {
        method[strcspn(method, "\n")] = '\0';
        url[strcspn(url, "\n")] = '\0';
        type++;
        if (status > 0)
            record_answer(method, url, status, type, *body);
    }
    free(out);
    return status;
}

const char *rvt_http_header(const char *headers, const char *name, char *buf,
                            size_t size)
{
    size_t n = strlen(name);
    for (const char *p = headers; p && *p;) {
        const char *eol = strstr(p, "\r\n");
        if (!eol)
            break;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            size_t len = (size_t)(eol - v);
            if (len >= size)
                len = size - 1;
            memcpy(buf, v, len);
            buf[len] = '\0';
            return buf;
        }
        p = eol + 2;
    }
    return NULL;
}

void rvt_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

char *rvt_tmpdir(const char *prefix)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof(tmpl), "%s/%s-XXXXXX", base && *base ? base : "/tmp",
             prefix);
    if (!mkdtemp(tmpl))
        return NULL;
    return strdup(tmpl);
}

void rvt_git_env(const char *home)
{
    setenv("HOME", home, 1);
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    setenv("GIT_AUTHOR_NAME", "Ada Lovelace", 1);
    setenv("GIT_AUTHOR_EMAIL", "ada@example.com", 1);
    setenv("GIT_COMMITTER_NAME", "Charles Babbage", 1);
    setenv("GIT_COMMITTER_EMAIL", "cb@example.com", 1);
}

const char *rvt_allow_local_env(void)
{
    static char env[PATH_MAX + 40];
    const char *base = getenv("TMPDIR");
    char real[PATH_MAX];
    if (!base || !*base)
        base = "/tmp";
    snprintf(env, sizeof(env), "REPOVIEW_ALLOW_LOCAL_PATHS=%s",
             realpath(base, real) ? real : base);
    return env;
}

void rvt_rmrf(const char *path)
{
    if (path && *path && strcmp(path, "/") != 0)
        rvt_sh(NULL, "rm -rf '%s'", path);
}

int rvt_sh(char **out, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(cmd))
        return -1;
    if (out)
        *out = NULL;
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        pclose(p);
        return -1;
    }
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                pclose(p);
                return -1;
            }
            buf = nb;
            cap *= 2;
        }
    }
    buf[len] = '\0';
    int st = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    if (st == -1)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int rvt_scale_ms(int ms)
{
    const char *s = getenv("RV_TEST_TIME_SCALE");
    long f = s && *s ? strtol(s, NULL, 10) : 1;
    if (f < 1 || f > 1000)
        f = 1;
    return ms > 0 && (long)ms * f < 2000000000L ? (int)(ms * f) : ms;
}

/* Writes dir/name, a script that runs RV_TEST_WRAPPER with the real binary
 * and its arguments, so that every way a test starts a binary (exec, a
 * shell line) goes through the wrapper. Written to a temp file and renamed:
 * several test programs may write the same script at once. */
static int write_wrapper(const char *dir, const char *name, const char *real,
                         const char *wrapper, char *out, size_t size)
{
    char tmpf[1100];
    if (snprintf(out, size, "%s/%s", dir, name) >= (int)size ||
        snprintf(tmpf, sizeof(tmpf), "%s.%ld.tmp", out, (long)getpid()) >=
            (int)sizeof(tmpf))
        return -1;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return -1;
    FILE *f = fopen(tmpf, "w");
    if (!f)
        return -1;
    /* RV_TEST_BIN names the binary for the wrapper, e.g. in valgrind's
     * --log-file=%q{RV_TEST_BIN}.%p.log. */
    fprintf(f, "#!/bin/sh\nRV_TEST_BIN=%s\nexport RV_TEST_BIN\n"
               "exec %s '%s' \"$@\"\n",
            name, wrapper, real);
    if (fclose(f) != 0 || chmod(tmpf, 0755) != 0 || rename(tmpf, out) != 0) {
        unlink(tmpf);
        return -1;
    }
    return 0;
}

const char *rvt_bin(const char *name)
{
    static char path[8][1024];
    static int next;
    const char *dir = getenv("RV_BIN_DIR");
    char *p = path[next++ % 8];
    snprintf(p, sizeof(path[0]), "%s/%s", dir && *dir ? dir : RV_BINARY_DIR,
             name);
    const char *wrapper = getenv("RV_TEST_WRAPPER");
    if (wrapper && *wrapper) {
        char real[1024], wdir[1024];
        snprintf(real, sizeof(real), "%s", p);
        snprintf(wdir, sizeof(wdir), "%s/test-wrappers", RV_BINARY_DIR);
        if (write_wrapper(wdir, name, real, wrapper, p, sizeof(path[0])) != 0)
            fprintf(stderr, "cannot write the RV_TEST_WRAPPER script %s\n", p);
    }
    return p;
}

static int spawn_redis(struct rvt_redis *r)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "exec redis-server --port 0 --unixsocket %s --unixsocketperm 700 "
             "--dir %s --save '' --appendonly no --logfile %s/redis.log %s",
             r->sock, r->dir, r->dir, r->extra);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    r->pid = pid;
    /* Wait until it answers PING (up to 10 s). */
    for (int i = 0; i < 200; i++) {
        redisContext *c = redisConnectUnix(r->sock);
        if (c && !c->err) {
            /* Up means answering; a server started with --requirepass
             * answers NOAUTH, one still loading its AOF answers LOADING. */
            redisReply *rep = redisCommand(c, "PING");
            bool ok = rep && (rep->type == REDIS_REPLY_STATUS ||
                              (rep->type == REDIS_REPLY_ERROR &&
                               strncmp(rep->str, "NOAUTH", 6) == 0));
            if (rep)
                freeReplyObject(rep);
            redisFree(c);
            if (ok)
                return 0;
        } else if (c) {
            redisFree(c);
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "redis-server exited; see %s/redis.log\n", r->dir);
            r->pid = 0;
            return -1;
        }
        rvt_sleep_ms(50);
    }
    fprintf(stderr, "redis-server did not answer in 10 s; see %s/redis.log\n",
            r->dir);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    r->pid = 0;
    return -1;
}

int rvt_redis_start(struct rvt_redis *r, const char *extra_args)
{
    memset(r, 0, sizeof(*r));
    /* hiredis writes without MSG_NOSIGNAL: a test that kills its Redis
     * must not die of SIGPIPE on the next write. */
    signal(SIGPIPE, SIG_IGN);
    const char *ext = getenv("RV_TEST_REDIS_URL");
    if (ext && *ext) {
        char err[256];
        snprintf(r->url, sizeof(r->url), "%s", ext);
        if (rv_redis_parse_url(ext, &r->addr, err, sizeof(err)) != 0) {
            fprintf(stderr, "RV_TEST_REDIS_URL: %s\n", err);
            return -1;
        }
        struct rv_rsync c;
        if (rvt_redis_connect(r, &c) != 0)
            return -1;
        redisReply *rep = rv_rsync_command(&c, "FLUSHALL");
        if (rep)
            freeReplyObject(rep);
        rv_rsync_close(&c);
        return 0;
    }
    char *dir = rvt_tmpdir("rvtest-redis");
    if (!dir)
        return -1;
    /* A unix socket path holds 107 bytes; a deep $TMPDIR would not fit. */
    if (strlen(dir) + sizeof("/redis.sock") > 104) {
        rvt_rmrf(dir);
        free(dir);
        const char *saved = getenv("TMPDIR");
        char *keep = saved ? strdup(saved) : NULL;
        setenv("TMPDIR", "/tmp", 1);
        dir = rvt_tmpdir("rvtest-redis");
        if (keep) {
            setenv("TMPDIR", keep, 1);
            free(keep);
        }
        if (!dir)
            return -1;
    }
    snprintf(r->dir, sizeof(r->dir), "%s", dir);
    free(dir);
    snprintf(r->sock, sizeof(r->sock), "%s/redis.sock", r->dir);
    snprintf(r->url, sizeof(r->url), "unix://%s", r->sock);
    snprintf(r->extra, sizeof(r->extra), "%s", extra_args ? extra_args : "");
    char err[256];
    if (rv_redis_parse_url(r->url, &r->addr, err, sizeof(err)) != 0) {
        fprintf(stderr, "bad test redis url: %s\n", err);
        return -1;
    }
    return spawn_redis(r);
}

int rvt_redis_restart(struct rvt_redis *r)
{
    if (!r->dir[0])
        return -1;
    return spawn_redis(r);
}

void rvt_redis_kill(struct rvt_redis *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
}

void rvt_redis_stop(struct rvt_redis *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
    if (r->dir[0]) {
        rvt_rmrf(r->dir);
        r->dir[0] = '\0';
    }
}

int rvt_redis_connect(struct rvt_redis *r, struct rv_rsync *out)
{
    return rv_rsync_open(out, &r->addr, 5000) == 0 ? 0 : -1;
}

int rvt_free_tcp_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    socklen_t len = sizeof(sa);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

int rvt_tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

bool rvt_send_str(int fd, const char *s)
{
    return rvt_send_all(fd, s, strlen(s));
}

bool rvt_send_all(int fd, const char *s, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        off += (size_t)n;
    }
    return true;
}

bool rvt_read_until(int fd, const char *needle, int limit_ms,
                    struct rvt_text *seen)
{
    int64_t start = rv_mono_ms();
    struct rvt_text local = {0};
    struct rvt_text *t = seen ? seen : &local;
    size_t from = t->len;
    bool ok = false;
    for (;;) {
        if (t->s && strstr(t->s + from, needle)) {
            ok = true;
            break;
        }
        int64_t left = limit_ms - (rv_mono_ms() - start);
        if (left <= 0)
            break;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0)
            break;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            break;
        rvt_text_add(t, buf, (size_t)n);
    }
    free(local.s);
    return ok;
}

int rvt_silent_listener(int *port)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(ls, 8) != 0 ||
        getsockname(ls, (struct sockaddr *)&sa, &len) != 0) {
        if (ls >= 0)
            close(ls);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return ls;
}

int rvt_redis_start_tcp(struct rvt_redis *r, const char *extra_args)
{
    const char *ext = getenv("RV_TEST_REDIS_URL");
    if (ext && *ext)
        return rvt_redis_start(r, extra_args);
    char args[512];
    /* Another process may grab the port between the probe and the start;
     * try a few. */
    for (int attempt = 0; attempt < 5; attempt++) {
        int port = rvt_free_tcp_port();
        if (port <= 0)
            return -1;
        snprintf(args, sizeof(args), "--port %d --bind 127.0.0.1 %s", port,
                 extra_args ? extra_args : "");
        if (rvt_redis_start(r, args) == 0) {
            r->port = port;
            snprintf(r->tcp_url, sizeof(r->tcp_url), "redis://127.0.0.1:%d",
                     port);
            return 0;
        }
        rvt_redis_stop(r);
    }
    return -1;
}

/* Sets each "NAME=value" of env (NULL or NULL-terminated) in this (child)
 * process; an entry without '=' or with a name too long is skipped. The
 * URL policy starts closed, whatever the developer's shell says. */
static void apply_env(const char *const *env)
{
    static const char *const policy[] = {
        "REPOVIEW_ALLOWED_SCHEMES", "REPOVIEW_ALLOW_LOCAL_PATHS",
        "REPOVIEW_ALLOW_PRIVATE_NETWORKS", "REPOVIEW_ALLOWED_HOSTS_REMOTE",
        "REPOVIEW_BLOCKED_HOSTS_REMOTE"};
    for (size_t i = 0; i < sizeof(policy) / sizeof(policy[0]); i++)
        unsetenv(policy[i]);
    /* Secret files from the developer's shell would clash with the
     * settings a test gives. */
    static const char *const files[] = {
        "GITHUB_TOKEN_FILE", "REPOVIEW_WEBHOOK_SECRET_FILE",
        "REPOVIEW_API_TOKEN_FILE", "REPOVIEW_REDIS_URL_FILE"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        unsetenv(files[i]);
    for (size_t i = 0; env && env[i]; i++) {
        const char *eq = strchr(env[i], '=');
        char name[128];
        if (!eq || (size_t)(eq - env[i]) >= sizeof(name))
            continue;
        memcpy(name, env[i], (size_t)(eq - env[i]));
        name[eq - env[i]] = '\0';
        setenv(name, eq + 1, 1);
    }
}

pid_t rvt_spawn_worker(const char *redis_url, const char *data_dir,
                       const char *log_path, const char *const *env)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    if (redis_url)
        setenv("REPOVIEW_REDIS_URL", redis_url, 1);
    else
        unsetenv("REPOVIEW_REDIS_URL");
    setenv("REPOVIEW_DATA_DIR", data_dir, 1);
    setenv("REPOVIEW_LOG", "info", 1);
    unsetenv("GITHUB_TOKEN");
    apply_env(env);
    if (!freopen(log_path, "a", stderr))
        _exit(126);
    execl(rvt_bin("repoview-worker"), "repoview-worker", (char *)NULL);
    _exit(127);
}

int rvt_api_start(struct rvt_api *a, int port, const char *redis_url,
                  const char *log_path, const char *ready_path,
                  const char *const *env)
{
    a->port = port > 0 ? port : rvt_free_tcp_port();
    snprintf(a->base, sizeof(a->base), "http://127.0.0.1:%d", a->port);
    rv_strlcpy(a->log, log_path, sizeof(a->log));
    a->pid = fork();
    if (a->pid < 0)
        return -1;
    if (a->pid == 0) {
        char listen[64];
        snprintf(listen, sizeof(listen), "127.0.0.1:%d", a->port);
        if (redis_url)
            setenv("REPOVIEW_REDIS_URL", redis_url, 1);
        else
            unsetenv("REPOVIEW_REDIS_URL");
        setenv("REPOVIEW_LISTEN", listen, 1);
        setenv("REPOVIEW_LOG", "debug", 1);
        /* Settings from the developer's shell must not change what a test
         * sees; a test that wants one passes it in env. */
        unsetenv("REPOVIEW_API_TOKEN");
        unsetenv("REPOVIEW_CORS_ORIGINS");
        unsetenv("REPOVIEW_WEBHOOK_SECRET");
        apply_env(env);
        if (!freopen(a->log, "a", stderr))
            _exit(126);
        execl(rvt_bin("repoview-api"), "repoview-api", (char *)NULL);
        _exit(127);
    }
    int tries = rvt_scale_ms(10000) / 50;
    for (int i = 0; i < tries; i++) {
        if (rvt_sh(NULL, "curl -sf -m 2 -o /dev/null %s%s", a->base,
                   ready_path) == 0)
            return 0;
        rvt_sleep_ms(50);
    }
    fprintf(stderr, "repoview-api did not answer %s (see %s)\n", ready_path,
            a->log);
    return -1;
}

int rvt_api_stop(struct rvt_api *a)
{
    int status = rvt_stop_process(a->pid, 10000);
    a->pid = 0;
    return status;
}

int rvt_stop_process(pid_t pid, int timeout_ms)
{
    int status = 0;
    if (pid <= 0)
        return -1;
    kill(pid, SIGCONT);
    kill(pid, SIGTERM);
    timeout_ms = rvt_scale_ms(timeout_ms);
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        rvt_sleep_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

const char *rvt_meta_field(struct rv_rsync *r, const char *id,
                           const char *field, char *buf, size_t size)
{
    char key[RV_KEY_MAX];
    redisReply *rep = rv_rsync_command(r, "HGET %s %s", rv_key_meta(key, id), field);
    buf[0] = '\0';
    if (rep && rep->type == REDIS_REPLY_STRING)
        rv_strlcpy(buf, rep->str, size);
    if (rep)
        freeReplyObject(rep);
    return buf;
}

bool rvt_wait_field(struct rv_rsync *r, const char *id, const char *field,
                    const char *want, int timeout_ms)
{
    char buf[128];
    timeout_ms = rvt_scale_ms(timeout_ms);
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (strcmp(rvt_meta_field(r, id, field, buf, sizeof(buf)), want) == 0)
            return true;
        rvt_sleep_ms(10);
    }
    fprintf(stderr, "%s %s is \"%s\", wanted \"%s\"\n", id, field, buf, want);
    return false;
}

bool rvt_contains(const char *s, const char *needle)
{
    return s && needle && strstr(s, needle) != NULL;
}

const char *rvt_error_code(const char *body, char *buf, size_t size)
{
    json_t *doc = body ? json_loads(body, 0, NULL) : NULL;
    const char *c = json_string_value(
        json_object_get(json_object_get(doc, "error"), "code"));
    rv_strlcpy(buf, c ? c : "(none)", size);
    json_decref(doc);
    return buf;
}

long long rvt_redis_calls(struct rv_rsync *conn, const char *command)
{
    redisReply *r = rv_rsync_command(conn, "INFO commandstats");
    char key[96];
    long long n = -1;
    snprintf(key, sizeof(key), "\r\ncmdstat_%s:calls=", command);
    if (r && r->type == REDIS_REPLY_STRING) {
        const char *at = strstr(r->str, key);
        n = at ? strtoll(at + strlen(key), NULL, 10) : 0;
    }
    if (r)
        freeReplyObject(r);
    return n;
}

long long rvt_redis_int(struct rv_rsync *conn, const char *fmt,
                        const char *arg)
{
    redisReply *r = rv_rsync_command(conn, fmt, arg);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    return v;
}

void rvt_sign_file(const char *path, const char *secret, char *sig,
                   size_t size)
{
    char *out = NULL;
    rvt_sh(&out, "openssl dgst -sha256 -hmac '%s' '%s' | sed 's/.*= //'",
           secret, path);
    snprintf(sig, size, "sha256=%.64s", out ? out : "");
    free(out);
}

long long rvt_metric(const char *base, const char *name)
{
    char *out = NULL;
    rvt_sh(&out, "curl -s %s/metrics | grep '^%s ' | cut -d' ' -f2", base,
           name);
    long long v = out && *out ? strtoll(out, NULL, 10) : -1;
    free(out);
    return v;
}

json_t *rvt_overview(struct rv_rsync *r, const char *id)
{
    char key[RV_KEY_MAX];
    redisReply *rep = rv_rsync_command(r, "GET %s", rv_key_overview(key, id));
    json_t *doc = NULL;
    if (rep && rep->type == REDIS_REPLY_STRING) {
        size_t n = rep->len + 3;
        char *text = malloc(n);
        if (text) {
            snprintf(text, n, "{%s}", rep->str);
            doc = json_loads(text, 0, NULL);
            free(text);
        }
    }
    if (rep)
        freeReplyObject(rep);
    return doc;
}

int rvt_push_job(struct rv_rsync *conn, const char *list, const char *repo,
                 rv_kind kind, rv_reason reason, struct rv_job *job)
{
    char *payload = NULL;
    size_t len = 0;
    int rc = rv_job_init(job, repo, kind, reason);
    if (rc == RV_OK)
        rc = rv_job_encode(job, &payload, &len);
    if (rc != RV_OK)
        return rc;
    redisReply *r = rv_rsync_command(conn, "RPUSH %s %b", list, payload, len);
    free(payload);
    if (!r || r->type != REDIS_REPLY_INTEGER)
        rc = RV_ERR_REDIS;
    if (r)
        freeReplyObject(r);
    return rc;
}

/* ---- a worker played by the test ---- */

/* Runs claimJob for the job in payload; the fencing generation, or -1. */
static long long fake_claim(struct rv_rsync *conn, const char *worker,
                            const char *proc, const char *meta,
                            rv_kind kind, const struct rv_job *job,
                            const char *payload, size_t plen)
{
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_script_claimJob(&cmd, &(struct rv_claimjob_args){
        .meta_key = meta,
        .processing_key = proc,
        .kind = rv_kind_name(kind),
        .job_id = job->id,
        .payload = payload, .payload_len = plen,
        .worker = worker,
        .now_ms = rv_now_ms(),
        .lease_ms = 30000});
    redisReply *r = rv_rsync_run(conn, &cmd);
    rv_cmd_free(&cmd);
    long long gen = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER &&
        r->element[0]->integer == 0)
        gen = r->element[1]->integer;
    if (r)
        freeReplyObject(r);
    return gen;
}

/* Runs commitProjection for a claimed job; the new version, or -1. */
static long long fake_commit_claimed(struct rv_rsync *conn, const char *proc,
                                     const char *repo, rv_kind kind,
                                     const struct rv_job *job, long long gen,
                                     const char *payload, size_t plen,
                                     const char *fragment,
                                     const char *changed)
{
    char meta[RV_KEY_MAX], data[RV_KEY_MAX], ov[RV_KEY_MAX];
    char stats[RV_KEY_MAX], self[RV_KEY_MAX];
    rv_key_meta(meta, repo);
    rv_key_overview(ov, repo);
    if (kind == RV_KIND_BRANCHES)
        rv_key_branches(data, repo);
    else
        rv_key_prs(data, repo);
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    int64_t now = rv_now_ms();
    rv_script_commitProjection(&cmd, &(struct rv_commitprojection_args){
        .meta_key = meta,
        .data_key = data,
        .overview_key = ov,
        .processing_key = proc,
        .stats_key = rv_key_stats(stats, now / 60000),
        /* The worker's name is the processing list's suffix. */
        .worker_key = rv_key_worker(self, strrchr(proc, ':') + 1),
        .kind = rv_kind_name(kind),
        .job_id = job->id,
        .gen = gen,
        .payload = payload, .payload_len = plen,
        .now_ms = now,
        .data = "{}",
        .overview = fragment,
        .other_rev = "",
        .changed = changed,
        .next_at_ms = now + 300000,
        .followup_id = "",
        .followup_payload = "", .followup_payload_len = 0});
    redisReply *r = rv_rsync_run(conn, &cmd);
    rv_cmd_free(&cmd);
    long long version = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER &&
        r->element[0]->integer == 0)
        version = r->element[1]->integer;
    if (r)
        freeReplyObject(r);
    return version;
}

long long rvt_fake_commit(struct rv_rsync *conn, const char *worker,
                          const char *repo, rv_kind kind,
                          const char *fragment, const char *changed)
{
    char proc[RV_KEY_MAX];
    snprintf(proc, sizeof(proc), "rv:processing:%s", worker);
    for (int i = 0; i < 50; i++) {
        redisReply *r = rv_rsync_command(conn, "LMOVE %s %s RIGHT LEFT",
                                         RV_KEY_QUEUE, proc);
        if (!r || r->type != REDIS_REPLY_STRING) {
            if (r)
                freeReplyObject(r);
            return -1;
        }
        size_t plen = r->len;
        char *payload = malloc(plen ? plen : 1);
        if (!payload) {
            freeReplyObject(r);
            return -1;
        }
        memcpy(payload, r->str, plen);
        freeReplyObject(r);
        struct rv_job job;
        if (rv_job_decode(payload, plen, &job, NULL, 0) != RV_OK ||
            strcmp(job.repo, repo) != 0 || job.kind != kind) {
            /* Not ours: back to the far end of the queue, so the real
             * owner (another test's repo) still finds it. */
            redisReply *d = rv_rsync_command(conn, "LREM %s 1 %b", proc,
                                             payload, plen);
            if (d)
                freeReplyObject(d);
            d = rv_rsync_command(conn, "LPUSH %s %b", RV_KEY_QUEUE, payload,
                                 plen);
            if (d)
                freeReplyObject(d);
            free(payload);
            continue;
        }
        char meta[RV_KEY_MAX];
        rv_key_meta(meta, repo);
        long long version = -1;
        long long gen = fake_claim(conn, worker, proc, meta, kind, &job,
                                   payload, plen);
        if (gen >= 0)
            version = fake_commit_claimed(conn, proc, repo, kind, &job, gen,
                                          payload, plen, fragment, changed);
        free(payload);
        return version;
    }
    return -1;
}

/* ---- text collected for scans ---- */

void rvt_text_add(struct rvt_text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *ns = realloc(t->s, cap);
        if (!ns)
            return;
        t->s = ns;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

void rvt_text_adds(struct rvt_text *t, const char *s)
{
    rvt_text_add(t, s, strlen(s));
}

bool rvt_text_has(const struct rvt_text *t, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t at = 0; t->s && at + n <= t->len; at++)
        if (memcmp(t->s + at, needle, n) == 0)
            return true;
    return false;
}

void rvt_reply_text(const redisReply *r, struct rvt_text *t)
{
    if (!r)
        return;
    char num[32];
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        rvt_text_add(t, r->str, r->len);
        rvt_text_adds(t, "\n");
        break;
    case REDIS_REPLY_INTEGER:
        snprintf(num, sizeof(num), "%lld\n", r->integer);
        rvt_text_adds(t, num);
        break;
    case REDIS_REPLY_ARRAY:
        for (size_t i = 0; i < r->elements; i++)
            rvt_reply_text(r->element[i], t);
        break;
    default:
        break;
    }
}

size_t rvt_redis_all_values(struct rv_rsync *conn, struct rvt_text *t,
                            bool dump)
{
    size_t keys = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = rv_rsync_command(conn, "SCAN %s COUNT 500", cursor);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r)
                freeReplyObject(r);
            break;
        }
        rv_strlcpy(cursor, r->element[0]->str, sizeof(cursor));
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *k = r->element[1]->element[i]->str;
            keys++;
            rvt_text_adds(t, k);
            rvt_text_adds(t, "\n");
            redisReply *ty = rv_rsync_command(conn, "TYPE %s", k);
            const char *type = ty && ty->type == REDIS_REPLY_STATUS
                                   ? ty->str
                                   : "";
            redisReply *v = NULL;
            if (!strcmp(type, "string"))
                v = rv_rsync_command(conn, "GET %s", k);
            else if (!strcmp(type, "hash"))
                v = rv_rsync_command(conn, "HGETALL %s", k);
            else if (!strcmp(type, "list"))
                v = rv_rsync_command(conn, "LRANGE %s 0 -1", k);
            else if (!strcmp(type, "set"))
                v = rv_rsync_command(conn, "SMEMBERS %s", k);
            else if (!strcmp(type, "zset"))
                v = rv_rsync_command(conn, "ZRANGE %s 0 -1 WITHSCORES", k);
            rvt_reply_text(v, t);
            if (v)
                freeReplyObject(v);
            /* DUMP compresses long strings, so it proves little alone;
             * it covers types the reads above do not know. */
            if (dump && (v = rv_rsync_command(conn, "DUMP %s", k))) {
                rvt_reply_text(v, t);
                freeReplyObject(v);
            }
            if (ty)
                freeReplyObject(ty);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return keys;
}

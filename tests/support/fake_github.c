/* See fake_github.h. */
#include "fake_github.h"

#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "rvtest.h"

static void set_cloexec(int fd)
{
    fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
}

int rvt_fake_github_start(struct rvt_fake_github *f, const char *token)
{
    int in[2], outp[2];
    memset(f, 0, sizeof(*f));
    if (pipe(in) != 0)
        return -1;
    if (pipe(outp) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    char script[1024];
    snprintf(script, sizeof(script), "%s/tests/fake-github/server.mjs",
             RV_SOURCE_DIR);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(outp[1], 1);
        close(in[0]);
        close(in[1]);
        close(outp[0]);
        close(outp[1]);
        execlp("node", "node", script, "--token", token ? token : "",
               "--lifetime-minutes", "5", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(outp[1]);
    set_cloexec(in[1]);
    set_cloexec(outp[0]);
    f->pid = pid;
    f->stdin_fd = in[1];
    f->stdout_fd = outp[0];

    char line[256];
    size_t len = 0;
    int64_t deadline = rv_mono_ms() + 15000;
    while (len < sizeof(line) - 1 && (len == 0 || line[len - 1] != '\n')) {
        struct pollfd p = {.fd = f->stdout_fd, .events = POLLIN};
        int left = (int)(deadline - rv_mono_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return -1;
        ssize_t n = read(f->stdout_fd, line + len, sizeof(line) - 1 - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
    }
    line[len] = '\0';
    json_t *doc = json_loads(line, 0, NULL);
    f->port = (int)json_integer_value(json_object_get(doc, "port"));
    json_decref(doc);
    if (f->port <= 0)
        return -1;
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/graphql", f->port);
    return 0;
}

void rvt_fake_github_stop(struct rvt_fake_github *f)
{
    if (f->pid <= 0)
        return;
    close(f->stdin_fd);
    for (int i = 0; i < 100; i++) {
        if (waitpid(f->pid, NULL, WNOHANG) == f->pid) {
            f->pid = 0;
            break;
        }
        rvt_sleep_ms(50);
    }
    if (f->pid > 0) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, NULL, 0);
        f->pid = 0;
    }
    close(f->stdout_fd);
}

int rvt_fake_github_control(const struct rvt_fake_github *f, const char *fmt,
                            ...)
{
    char json[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(json, sizeof(json), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(json) || strchr(json, '\''))
        return -1;
    return rvt_sh(NULL,
                  "curl -sf -X POST -d '%s' http://127.0.0.1:%d/_control "
                  ">/dev/null",
                  json, f->port) == 0
               ? 0
               : -1;
}

json_t *rvt_fake_github_get(const struct rvt_fake_github *f, const char *path)
{
    char *out = NULL;
    json_t *doc = NULL;
    if (rvt_sh(&out, "curl -sf http://127.0.0.1:%d%s", f->port, path) == 0)
        doc = json_loads(out, 0, NULL);
    free(out);
    return doc;
}

pid_t rvt_fake_github_worker(const struct rvt_fake_github *f,
                             const char *redis_url, const char *prefix,
                             const char *pat, int app_id, const char *key_path,
                             const char *const *extra)
{
    char log[600], data[600], api[160], token[160], id[64], kf[700];
    snprintf(log, sizeof(log), "%s.log", prefix);
    snprintf(data, sizeof(data), "%s-data", prefix);
    snprintf(api, sizeof(api), "REPOVIEW_GITHUB_API=http://127.0.0.1:%d",
             f->port);
    snprintf(token, sizeof(token), "GITHUB_TOKEN=%s", pat);
    snprintf(id, sizeof(id), "REPOVIEW_GITHUB_APP_ID=%d", app_id);
    snprintf(kf, sizeof(kf), "REPOVIEW_GITHUB_APP_KEY_FILE=%s", key_path);
    const char *env[16] = {api,
                           token,
                           id,
                           kf,
                           "REPOVIEW_GITHUB_TIMEOUT=5",
                           "REPOVIEW_LOG=debug",
                           rvt_allow_local_env()};
    size_t n = 7;
    for (size_t i = 0; extra && extra[i] && n + 1 < 16; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    return rvt_spawn_worker(redis_url, data, log, env);
}

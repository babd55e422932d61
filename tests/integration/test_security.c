/*
 * The security review, one behaviour per test: secrets never reach logs,
 * Redis or responses; remote URLs are shown without credentials; repo ids
 * stay inside the data directory; webhook signatures and bearer tokens are
 * refused whatever byte differs; stalled requests are closed after the I/O
 * timeout; the connection cap holds and frees; Redis AUTH as an ACL user
 * works for every binary and never shows the password.
 *
 * One Redis for the whole program, on TCP, with the default user switched
 * off: only the ACL user rvapp may connect, so every binary that works at
 * all has authenticated. SLOWLOG records every command (threshold 0), which
 * lets the scan see every argument our code ever sent to Redis.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/keys.h"
#include "common/registry.h"
#include "common/util.h"
#include "fake_github.h"
#include "rvtest.h"

/* Every secret has a distinct 8-byte head, so the scan also catches one
 * that was cut short. None needs shell quoting. */
#define REDIS_USER "rvapp"
#define REDIS_PASS "rpwZ8kQ4vN2xL7mH"
#define GH_TOKEN "ghp_tokY3mR8sW1qT6pB9cK5"
#define HOOK_SECRET "whkJ5nC2vX8zQ4gF7"
#define API_TOKEN "apiH7dL3fK9wE2sA4"
#define URL_PASS "urlP4sS9wQ2rD6yU1"

static const char *const secrets[] = {REDIS_PASS, GH_TOKEN, HOOK_SECRET,
                                      API_TOKEN, URL_PASS};
#define NSECRETS (sizeof(secrets) / sizeof(secrets[0]))

static struct rvt_redis redis;
static struct rv_rsync conn;
static struct rvt_fake_github fake;
static char *tmp;
static char redis_url[256]; /* redis://rvapp:<pass>@127.0.0.1:<port>/0 */
static char data_dir[512];
static char remote[512];    /* a git repo with main and feature/x */

/* ---- small helpers ---- */

/* Counts the secrets (whole, or their first 8 bytes) in the n bytes of s,
 * naming each find and where. Binary-safe. */
static int secrets_in(const char *s, size_t n, const char *where)
{
    int found = 0;
    for (size_t i = 0; i < NSECRETS; i++) {
        for (size_t at = 0; at + 8 <= n; at++) {
            if (memcmp(s + at, secrets[i], 8) == 0) {
                fprintf(stderr, "  secret %.4s... found in %s: \"%.60s\"\n",
                        secrets[i], where, s + (at > 20 ? at - 20 : 0));
                found++;
                break;
            }
        }
    }
    return found;
}

/* ---- processes ---- */

/* Starts repoview-api with its log in <tmp>/<name>.log and the settings
 * in env; waits for /healthz (not /readyz: a test starts one with a wrong
 * password). */
static int api_start(struct rvt_api *p, const char *name, const char *url,
                     const char *const *env)
{
    char log[512];
    snprintf(log, sizeof(log), "%s/%s.log", tmp, name);
    return rvt_api_start(p, 0, url, log, "/healthz", env);
}

/* All secrets, as a deployment that shares one environment file gives
 * them to every binary. */
static char env_redis[300], env_gql[200], env_local[PATH_MAX + 40];
/* The remotes here are bare repos in tmp and http servers on loopback:
 * the URL policy is opened for just those. */
#define POLICY_SCHEMES "REPOVIEW_ALLOWED_SCHEMES=https,http,ssh,git"
static const char *all_env[] = {
    env_redis,
    env_gql,
    env_local,
    POLICY_SCHEMES,
    RVT_ALLOW_LOOPBACK_ENV,
    "GITHUB_TOKEN=" GH_TOKEN,
    "REPOVIEW_WEBHOOK_SECRET=" HOOK_SECRET,
    "REPOVIEW_API_TOKEN=" API_TOKEN,
    "REPOVIEW_LOG=debug",
    "REPOVIEW_GITHUB_TIMEOUT=5",
    "REPOVIEW_IO_TIMEOUT=2",
    "REPOVIEW_KEEPALIVE_TIMEOUT=2",
    NULL,
};

/* Runs the CLI with every secret in its environment; stdout and stderr
 * both go to *out. Returns the exit status. */
static int cli(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int cli(char **out, const char *fmt, ...)
{
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    return rvt_sh(out,
                  "REPOVIEW_REDIS_URL='%s' GITHUB_TOKEN='%s' "
                  "REPOVIEW_WEBHOOK_SECRET='%s' REPOVIEW_API_TOKEN='%s' "
                  "REPOVIEW_LOG=debug %s %s %s '%s' %s 2>&1",
                  redis_url, GH_TOKEN, HOOK_SECRET, API_TOKEN, env_local,
                  POLICY_SCHEMES, RVT_ALLOW_LOOPBACK_ENV,
                  rvt_bin("repoview"), args);
}

/* ---- HTTP ---- */

static int status;
static char *body, *headers;
static struct rvt_text responses; /* every header and body, for the scan */

/* Runs curl ARGS (the URL included); keeps status, body and headers and
 * adds them to `responses`. */
static int http(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int http(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    status = rvt_vcurl(tmp, &body, &headers, fmt, ap);
    va_end(ap);
    rvt_text_adds(&responses, headers);
    rvt_text_adds(&responses, body);
    return status;
}

/* A header of the last answer (static buffer), "" when absent. */
static const char *header_value(const char *name)
{
    static char value[256];
    const char *v = rvt_http_header(headers, name, value, sizeof(value));
    return v ? v : "";
}

static const char *error_code(void)
{
    static char code[64];
    return rvt_error_code(body, code, sizeof(code));
}

/* Writes a push to main of GitHub repo full_name as tmp/name and puts
 * its path in path. */
static void write_push(char *path, size_t size, const char *name,
                       const char *full_name)
{
    snprintf(path, size, "%s/%s", tmp, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    fprintf(f,
            "{\"ref\":\"refs/heads/main\",\"repository\":"
            "{\"full_name\":\"%s\"}}",
            full_name);
    fclose(f);
}

/* Posts json as a GitHub delivery with the given signature header. */
static int post_hook(const struct rvt_api *api, const char *event,
                     const char *delivery, const char *path, const char *sig)
{
    return http("-X POST -H 'X-GitHub-Event: %s' -H 'X-GitHub-Delivery: %s' "
                "-H 'X-Hub-Signature-256: %s' --data-binary @'%s' "
                "%s/v1/webhooks/github",
                event, delivery, sig, path, api->base);
}

/* ---- raw sockets ---- */

/* Reads (and keeps, up to size) until the server closes; returns the ms
 * that took, or -1 when it stayed open for limit_ms. */
static int wait_closed(int fd, int limit_ms, char *got, size_t size)
{
    int64_t start = rv_mono_ms();
    size_t used = 0;
    if (got && size)
        got[0] = '\0';
    for (;;) {
        int64_t left = limit_ms - (rv_mono_ms() - start);
        if (left <= 0)
            return -1;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0)
            return -1;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            return (int)(rv_mono_ms() - start);
        if (got && used + 1 < size) {
            size_t take = (size_t)n < size - 1 - used ? (size_t)n
                                                      : size - 1 - used;
            memcpy(got + used, buf, take);
            used += take;
            got[used] = '\0';
        }
    }
}

/* True when the server has not closed fd: whatever arrived is read and
 * dropped, without waiting. */
static bool still_open(int fd)
{
    for (;;) {
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0)
            continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
}

/* Opens an SSE stream on /v1/events; returns the fd once `retry:` came,
 * or -1. */
static int sse_open(const struct rvt_api *api, const char *query)
{
    int fd = rvt_tcp_connect(api->port);
    if (fd < 0)
        return -1;
    char req[4096];
    snprintf(req, sizeof(req),
             "GET /v1/events%s HTTP/1.1\r\nHost: localhost\r\n"
             "Authorization: Bearer " API_TOKEN "\r\n"
             "Accept: text/event-stream\r\n\r\n",
             query ? query : "");
    if (!rvt_send_str(fd, req) ||
        !rvt_read_until(fd, "retry:", rvt_scale_ms(5000), NULL)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- Redis ---- */

static redisReply *redis_cmd(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static redisReply *redis_cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = NULL;
    if (conn.ctx)
        r = redisvCommand(conn.ctx, fmt, ap);
    va_end(ap);
    return r;
}

/* Every key and value in Redis (rvt_redis_all_values, with DUMP), the
 * client list and the whole slow log (every command sent). Returns the
 * number of keys. */
static size_t redis_everything(struct rvt_text *t)
{
    size_t keys = rvt_redis_all_values(&conn, t, true);
    redisReply *extra[] = {redis_cmd("CLIENT LIST"),
                           redis_cmd("SLOWLOG GET -1"), redis_cmd("ACL LOG"),
                           redis_cmd("PUBSUB CHANNELS")};
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
        rvt_reply_text(extra[i], t);
        if (extra[i])
            freeReplyObject(extra[i]);
    }
    return keys;
}

/* ---- the realistic flow ----
 *
 * A repo with a GitHub name is added with the CLI, synced by a worker
 * (branches from a local remote, PRs from the fake GitHub, which requires
 * the token), read and refreshed through the API (with and without the
 * bearer token), poked by a signed and a forged webhook, watched over SSE
 * and with `repoview watch`, and listed and inspected with the CLI. Then
 * everything written anywhere is scanned. */

static struct rvt_api flow_api;
static pid_t flow_worker;
static struct rvt_text flow_cli;   /* every CLI output */
static char flow_events[600];  /* the redis-cli subscriber's output */
static char flow_watch[600];   /* repoview watch's output */
static bool flow_ran;

static bool wait_idle(const char *id, int ms)
{
    return rvt_wait_field(&conn, id, "branch_sync_status", "idle", ms) &&
           rvt_wait_field(&conn, id, "pr_sync_status", "idle", ms);
}

static void run_flow(void)
{
    char *out = NULL;
    /* Listeners first, so they see every event of the flow. */
    snprintf(flow_events, sizeof(flow_events), "%s/events.txt", tmp);
    snprintf(flow_watch, sizeof(flow_watch), "%s/watch.txt", tmp);
    rvt_sh(NULL,
           "(redis-cli -h 127.0.0.1 -p %d --user %s --pass %s "
           "--no-auth-warning SUBSCRIBE rv:events >'%s' 2>&1 & "
           "echo $! >'%s/events.pid') ",
           redis.port, REDIS_USER, REDIS_PASS, flow_events, tmp);
    rvt_sh(NULL,
           "(REPOVIEW_REDIS_URL='%s' GITHUB_TOKEN='%s' REPOVIEW_LOG=debug "
           "'%s' watch >'%s' 2>&1 & echo $! >'%s/watch.pid')",
           redis_url, GH_TOKEN, rvt_bin("repoview"), flow_watch, tmp);

    CHECK_INT(api_start(&flow_api, "api", redis_url, all_env), 0);
    char wlog[600];
    snprintf(wlog, sizeof(wlog), "%s/worker.log", tmp);
    flow_worker = rvt_spawn_worker(redis_url, data_dir, wlog, all_env);
    CHECK(flow_worker > 0);

    CHECK_INT(cli(&out, "add widgets --url 'file://%s' --github acme/widgets",
                  remote),
              0);
    rvt_text_adds(&flow_cli, out ? out : "");
    free(out);
    int sse = sse_open(&flow_api, "?repo=widgets");
    CHECK(sse >= 0);
    CHECK(wait_idle("widgets", 60000));

    /* Reads. */
    CHECK_INT(http("-H 'Authorization: Bearer " API_TOKEN "' %s/v1/repos", flow_api.base), 200);
    CHECK(rvt_contains(body, "widgets"));
    CHECK_INT(http("-H 'Authorization: Bearer " API_TOKEN "' %s/v1/repos/widgets", flow_api.base), 200);
    CHECK_INT(http("-H 'Authorization: Bearer " API_TOKEN "' %s/v1/repos/widgets/overview", flow_api.base), 200);
    CHECK(rvt_contains(body, "feature/x"));
    CHECK(rvt_contains(body, "\"pullRequests\""));
    char etag[64];
    rv_strlcpy(etag, header_value("ETag"), sizeof(etag));
    CHECK(etag[0] != '\0');
    CHECK_INT(http("-H 'Authorization: Bearer " API_TOKEN "' -H 'If-None-Match: %s' %s/v1/repos/widgets/overview",
                   etag, flow_api.base),
              304);
    CHECK_INT(http("-H 'Authorization: Bearer " API_TOKEN "' %s/", flow_api.base), 200);
    CHECK_INT(http("-H 'Authorization: Bearer " API_TOKEN "' %s/healthz", flow_api.base), 200);
    CHECK_INT(http("-H 'Authorization: Bearer " API_TOKEN "' %s/readyz", flow_api.base), 200);
    CHECK_INT(http("-H 'Authorization: Bearer " API_TOKEN "' %s/metrics", flow_api.base), 200);
    CHECK_INT(http("-X OPTIONS -H 'Origin: http://evil.example' "
                   "%s/v1/repos",
                   flow_api.base),
              204);
    CHECK_INT(http("-H 'Authorization: Bearer " API_TOKEN "' %s/v1/repos/nope/overview", flow_api.base), 404);

    /* Writes: refused without the token or with a wrong one, then done. */
    CHECK_INT(http("-X POST %s/v1/repos/widgets/refresh", flow_api.base),
              401);
    CHECK_INT(http("-X POST -H 'Authorization: Bearer %.8s' "
                   "%s/v1/repos/widgets/refresh",
                   API_TOKEN, flow_api.base),
              401);
    CHECK_INT(http("-X POST -H 'Authorization: Bearer %s' "
                   "%s/v1/repos/widgets/refresh?kind=all",
                   API_TOKEN, flow_api.base),
              202);
    CHECK(wait_idle("widgets", 60000));
    /* A registration with a credential in its URL: refused, not echoed. */
    CHECK_INT(http("-X POST -H 'Authorization: Bearer %s' "
                   "-H 'Content-Type: application/json' -d "
                   "'{\"id\":\"leaky\",\"url\":\"https://ada:%s@github.com/"
                   "a/b.git\"}' %s/v1/repos",
                   API_TOKEN, URL_PASS, flow_api.base),
              400);
    CHECK_INT(http("-X POST -H 'Authorization: Bearer %s' "
                   "-H 'Content-Type: application/json' -d "
                   "'{\"id\":\"leaky\",\"url\":\"https://%s@github.com/"
                   "a/b.git\"}' %s/v1/repos",
                   API_TOKEN, URL_PASS, flow_api.base),
              400);
    CHECK_INT(rvt_redis_int(&conn, "EXISTS %s", "rv:{leaky}:meta"), 0);

    /* Webhooks: forged, then signed. */
    char path[600], sig[128];
    write_push(path, sizeof(path), "push.json", "acme/widgets");
    rvt_sign_file(path, "not-the-secret", sig, sizeof(sig));
    CHECK_INT(post_hook(&flow_api, "push", "flow-1", path, sig), 401);
    rvt_sign_file(path, HOOK_SECRET, sig, sizeof(sig));
    CHECK_INT(post_hook(&flow_api, "push", "flow-2", path, sig), 202);
    CHECK(wait_idle("widgets", 60000));

    /* The CLI's read commands. */
    const char *cmds[] = {"list", "status widgets", "queue",
                          "refresh widgets --kind prs"};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        CHECK_INT(cli(&out, "%s", cmds[i]), 0);
        rvt_text_adds(&flow_cli, out ? out : "");
        free(out);
    }
    CHECK(rvt_contains(flow_cli.s, "widgets"));
    CHECK(wait_idle("widgets", 60000));

    /* What the stream carried. */
    struct rvt_text stream = {0};
    CHECK(rvt_read_until(sse, "event: status", rvt_scale_ms(2000), &stream));
    rvt_sleep_ms(300);
    rvt_read_until(sse, "never-arrives", 300, &stream);
    rvt_text_add(&responses, stream.s ? stream.s : "", stream.len);
    free(stream.s);
    close(sse);

    rvt_api_stop(&flow_api);
    rvt_stop_process(flow_worker, 30000);
    flow_worker = 0;
    rvt_sh(NULL, "kill $(cat '%s/events.pid') $(cat '%s/watch.pid') "
                 "2>/dev/null; sleep 0.3",
           tmp, tmp);
    flow_ran = true;
}

static void test_no_secret_in_any_log_line_or_cli_output(void)
{
    run_flow();
    const char *logs[] = {"api.log", "worker.log", "watch.txt", "events.txt"};
    size_t total_lines = 0;
    for (size_t i = 0; i < sizeof(logs) / sizeof(logs[0]); i++) {
        char path[600];
        snprintf(path, sizeof(path), "%s/%s", tmp, logs[i]);
        char *text = rvt_slurp(path);
        for (const char *p = text; *p; p++)
            total_lines += *p == '\n';
        /* Each log saw the flow (the scan would be vacuous otherwise). */
        CHECK(rvt_contains(text, "widgets"));
        CHECK_INT(secrets_in(text, strlen(text), logs[i]), 0);
        free(text);
    }
    CHECK(total_lines > 20);
    CHECK_INT(secrets_in(flow_cli.s ? flow_cli.s : "", flow_cli.len, "cli"),
              0);
    /* The scan finds what it looks for. */
    char planted[64];
    snprintf(planted, sizeof(planted), "x%.8sx", GH_TOKEN);
    fprintf(stderr, "  (a planted secret must be found:)\n");
    CHECK_INT(secrets_in(planted, strlen(planted), "a planted string"), 1);
}

static void test_no_secret_in_any_redis_key_value_or_command(void)
{
    struct rvt_text t = {0};
    size_t keys = redis_everything(&t);
    /* meta, branches, prs, overview, repos, schedule, leases, deliveries */
    CHECK(keys >= 6);
    CHECK(rvt_text_has(&t, "feature/x"));   /* a projection was read */
    CHECK(rvt_text_has(&t, "EVALSHA"));     /* the slow log has our commands */
    CHECK(rvt_text_has(&t, "BLMOVE"));
    CHECK(rvt_text_has(&t, "user=" REDIS_USER));
    CHECK_INT(secrets_in(t.s ? t.s : "", t.len, "Redis"), 0);
    free(t.s);
}

static void test_no_secret_in_any_http_response_or_sse_event(void)
{
    CHECK(flow_ran);
    CHECK(responses.len > 2000);
    CHECK(rvt_text_has(&responses, "event: status"));
    CHECK(rvt_text_has(&responses, "\"unauthorized\""));
    CHECK_INT(secrets_in(responses.s ? responses.s : "", responses.len,
                         "HTTP responses"),
              0);
}

/* Every process of the flow authenticated as rvapp (the default user is
 * off, so nothing else could have worked); a wrong password is refused
 * with an error that does not show it, by all three binaries. */
static void test_acl_user_works_for_api_worker_and_cli_and_hides_password(void)
{
    CHECK(flow_ran);
    CHECK(rvt_contains(flow_cli.s, "widgets"));
    char buf[64];
    CHECK_STR(rvt_meta_field(&conn, "widgets", "branch_sync_status", buf,
                             sizeof(buf)),
              "idle");
    CHECK(rvt_meta_field(&conn, "widgets", "pr_sync_at", buf,
                         sizeof(buf))[0] != '\0');

    const char *wrong = "WRONGpw-7Yt3Kd9Q";
    char bad_url[256];
    snprintf(bad_url, sizeof(bad_url), "redis://%s:%s@127.0.0.1:%d/0",
             REDIS_USER, wrong, redis.port);
    char *out = NULL;
    int rc = rvt_sh(&out, "'%s' --redis-url '%s' list 2>&1",
                    rvt_bin("repoview"), bad_url);
    CHECK_INT(rc, 1);
    CHECK(rvt_contains(out, "127.0.0.1"));
    CHECK(rvt_contains(out, "WRONGPASS") || rvt_contains(out, "AUTH"));
    CHECK(!rvt_contains(out, wrong));
    free(out);

    struct rvt_api bad;
    const char *env[] = {NULL};
    CHECK_INT(api_start(&bad, "api-wrongpass", bad_url, env), 0);
    CHECK_INT(http("%s/readyz", bad.base), 503);
    CHECK(!rvt_contains(body, wrong) && !rvt_contains(headers, wrong));
    rvt_api_stop(&bad);
    char *log = rvt_slurp(bad.log);
    CHECK(rvt_contains(log, "WRONGPASS"));
    CHECK(!rvt_contains(log, wrong));
    free(log);

    char wlog[600];
    snprintf(wlog, sizeof(wlog), "%s/worker-wrongpass.log", tmp);
    pid_t w = rvt_spawn_worker(bad_url, data_dir, wlog, NULL);
    for (int i = 0; i < rvt_scale_ms(5000) / 100; i++) {
        log = rvt_slurp(wlog);
        bool said = rvt_contains(log, "WRONGPASS");
        free(log);
        if (said)
            break;
        rvt_sleep_ms(100);
    }
    rvt_stop_process(w, 10000);
    log = rvt_slurp(wlog);
    CHECK(rvt_contains(log, "WRONGPASS"));
    CHECK(!rvt_contains(log, wrong));
    free(log);
}

/* The worker offers GITHUB_TOKEN only to https://github.com: a remote
 * elsewhere that asks for a password gets no credential at all. */
static void test_token_is_never_offered_to_a_remote_that_is_not_github(void)
{
    char hdrs[600], portfile[600];
    snprintf(hdrs, sizeof(hdrs), "%s/probe-headers.txt", tmp);
    snprintf(portfile, sizeof(portfile), "%s/probe.port", tmp);
    /* A remote that answers every request with a Basic challenge and
     * records the headers it was sent (it exits after two minutes should
     * the test die). */
    char script[600];
    snprintf(script, sizeof(script), "%s/probe.js", tmp);
    FILE *f = fopen(script, "w");
    fputs("const fs = require('fs');\n"
          "const [hdrs, portfile] = process.argv.slice(2);\n"
          "const s = require('http').createServer((q, r) => {\n"
          "  fs.appendFileSync(hdrs, JSON.stringify(q.headers) + '\\n');\n"
          "  r.writeHead(401, {'WWW-Authenticate': 'Basic realm=x'});\n"
          "  r.end();\n"
          "});\n"
          "s.listen(0, '127.0.0.1', () =>\n"
          "  fs.writeFileSync(portfile, String(s.address().port)));\n"
          "setTimeout(() => process.exit(0), 120000);\n",
          f);
    fclose(f);
    rvt_sh(NULL,
           "(node '%s' '%s' '%s' </dev/null >/dev/null 2>&1 & "
           "echo $! >'%s/probe.pid')",
           script, hdrs, portfile, tmp);
    char *port = NULL;
    for (int i = 0; i < 100 && (!port || !*port); i++) {
        free(port);
        rvt_sleep_ms(50);
        port = rvt_slurp(portfile);
    }
    CHECK(port && *port);
    char wlog[600];
    snprintf(wlog, sizeof(wlog), "%s/worker-probe.log", tmp);
    pid_t w = rvt_spawn_worker(redis_url, data_dir, wlog, all_env);
    char *out = NULL;
    CHECK_INT(cli(&out, "add probe --url http://127.0.0.1:%s/r.git",
                  port ? port : "1"),
              0);
    free(out);
    CHECK(rvt_wait_field(&conn, "probe", "branch_sync_status", "error",
                         60000));
    rvt_stop_process(w, 10000);
    rvt_sh(NULL, "kill $(cat '%s/probe.pid') 2>/dev/null", tmp);
    char *seen = rvt_slurp(hdrs);
    CHECK(rvt_contains(seen, "git/")); /* libgit2 did ask */
    CHECK(!rvt_contains(seen, "authorization"));
    /* base64 of "x-access-token:ghp_tokY..." starts with this. */
    CHECK(!rvt_contains(seen, "eC1hY2Nlc3MtdG9rZW46"));
    CHECK_INT(secrets_in(seen, strlen(seen), "the remote's request"), 0);
    free(seen);
    char err[512];
    rvt_meta_field(&conn, "probe", "branch_sync_error", err, sizeof(err));
    CHECK(rvt_contains(err, "refused access"));
    free(port);
    CHECK_INT(cli(&out, "remove probe"), 0);
    free(out);
}

/* A credential URL that reached Redis some other way than registration
 * (an older version, a hand-written HSET, a restored dump) is shown by the
 * API and the CLI, and used by the worker, without its credential. */
static void test_a_credential_url_already_in_redis_is_never_shown(void)
{
    char *out = NULL;
    CHECK_INT(cli(&out, "add planted --url 'file://%s'", remote), 0);
    free(out);
    char url[700];
    snprintf(url, sizeof(url), "https://ada:%s@127.0.0.1:1/x.git", URL_PASS);
    redisReply *r = redis_cmd("HSET %s url %s", "rv:{planted}:meta", url);
    if (r)
        freeReplyObject(r);
    struct rvt_api api;
    CHECK_INT(api_start(&api, "api-planted", redis_url, all_env), 0);
    CHECK_INT(http("-H 'Authorization: Bearer " API_TOKEN "' %s/v1/repos/planted", api.base), 200);
    CHECK(rvt_contains(body, "https://127.0.0.1:1/x.git"));
    CHECK(!rvt_contains(body, URL_PASS));
    CHECK_INT(http("-H 'Authorization: Bearer " API_TOKEN "' %s/v1/repos", api.base), 200);
    CHECK(!rvt_contains(body, URL_PASS));
    CHECK_INT(cli(&out, "status planted"), 0);
    CHECK(rvt_contains(out, "https://127.0.0.1:1/x.git"));
    CHECK(!rvt_contains(out, URL_PASS));
    free(out);
    CHECK_INT(cli(&out, "list"), 0);
    CHECK(!rvt_contains(out, URL_PASS));
    free(out);

    char wlog[600];
    snprintf(wlog, sizeof(wlog), "%s/worker-planted.log", tmp);
    pid_t w = rvt_spawn_worker(redis_url, data_dir, wlog, all_env);
    CHECK_INT(http("-X POST -H 'Authorization: Bearer %s' "
                   "%s/v1/repos/planted/refresh?kind=branches",
                   API_TOKEN, api.base),
              202);
    CHECK(rvt_wait_field(&conn, "planted", "branch_sync_status", "error",
                         60000));
    CHECK_INT(http("-H 'Authorization: Bearer %s' "
                   "%s/v1/repos/planted/overview",
                   API_TOKEN, api.base),
              200);
    CHECK(rvt_contains(body, "127.0.0.1:1"));
    CHECK(!rvt_contains(body, URL_PASS));
    rvt_stop_process(w, 10000);
    rvt_api_stop(&api);
    char *log = rvt_slurp(wlog);
    CHECK(rvt_contains(log, "planted"));
    CHECK(!rvt_contains(log, URL_PASS));
    free(log);
    char err[512];
    rvt_meta_field(&conn, "planted", "branch_sync_error", err, sizeof(err));
    CHECK(err[0] != '\0');
    CHECK(!rvt_contains(err, URL_PASS));
    CHECK_INT(cli(&out, "remove planted"), 0);
    free(out);
}

/* Ids that name a path are refused by the API; the ids that are allowed,
 * even 100 bytes long or differing only in case, each get their own
 * mirror inside the data directory. */
static void test_repo_ids_cannot_escape_the_data_dir(void)
{
    struct rvt_api api;
    CHECK_INT(api_start(&api, "api-ids", redis_url, all_env), 0);
    char long_id[RV_REPO_ID_MAX + 2];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[RV_REPO_ID_MAX + 1] = '\0'; /* 101 bytes */
    const char *bad[] = {"..", ".", "a/../b", "../x", "a/b", "..%2fx",
                         "%2e%2e", ".git", "-rf", "a\\\\b", "", long_id};
    long long before = rvt_redis_int(&conn, "SCARD %s", RV_KEY_REPOS);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        http("-X POST -H 'Authorization: Bearer %s' "
                   "-H 'Content-Type: application/json' -d "
             "'{\"id\":\"%s\",\"url\":\"file://%s\"}' %s/v1/repos",
             API_TOKEN, bad[i], remote, api.base);
        if (status != 400)
            fprintf(stderr, "  POST id \"%s\" -> %d\n", bad[i], status);
        CHECK_INT(status, 400);
    }
    CHECK_INT(rvt_redis_int(&conn, "SCARD %s", RV_KEY_REPOS), before);
    /* In a path, encoded or not: never a repo, never a file. */
    const char *paths[] = {"%2e%2e", "..%2f..%2fetc", "%2e", "a%2f..%2fb",
                           long_id};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        http("--path-as-is -H 'Authorization: Bearer %s' "
             "%s/v1/repos/%s/overview",
             API_TOKEN, api.base, paths[i]);
        if (status != 400 && status != 404)
            fprintf(stderr, "  GET %s -> %d\n", paths[i], status);
        CHECK(status == 400 || status == 404);
    }
    rvt_api_stop(&api);

    /* Allowed ids, synced for real. */
    char remote2[600];
    snprintf(remote2, sizeof(remote2), "%s/remote2", tmp);
    CHECK_INT(rvt_sh(NULL,
                     "set -e; git init -q -b main '%s'; cd '%s'; "
                     "git -c user.name=T -c user.email=t@x commit -q "
                     "--allow-empty -m one; git branch only-in-two",
                     remote2, remote2),
              0);
    char id100[RV_REPO_ID_MAX + 1];
    memset(id100, 'b', sizeof(id100) - 1);
    id100[RV_REPO_ID_MAX] = '\0';
    id100[0] = 'Z';
    char *out = NULL;
    CHECK_INT(cli(&out, "add Case --url 'file://%s'", remote), 0);
    free(out);
    CHECK_INT(cli(&out, "add case --url 'file://%s'", remote2), 0);
    free(out);
    CHECK_INT(cli(&out, "add %s --url 'file://%s'", id100, remote), 0);
    free(out);
    CHECK_INT(cli(&out, "add ..a --url 'file://%s'", remote), 2);
    free(out);
    char wlog[600], ddir[600];
    snprintf(wlog, sizeof(wlog), "%s/worker-ids.log", tmp);
    snprintf(ddir, sizeof(ddir), "%s/ids-data", tmp);
    pid_t w = rvt_spawn_worker(redis_url, ddir, wlog, all_env);
    CHECK(rvt_wait_field(&conn, "Case", "branch_sync_status", "idle", 60000));
    CHECK(rvt_wait_field(&conn, "case", "branch_sync_status", "idle", 60000));
    CHECK(rvt_wait_field(&conn, id100, "branch_sync_status", "idle", 60000));
    rvt_stop_process(w, 10000);
    /* Case and case are different repos with different data. */
    json_t *a = rvt_overview(&conn, "Case"), *b = rvt_overview(&conn, "case");
    char *ta = a ? json_dumps(a, 0) : NULL, *tb = b ? json_dumps(b, 0) : NULL;
    CHECK(rvt_contains(ta, "feature/x") && !rvt_contains(ta, "only-in-two"));
    CHECK(rvt_contains(tb, "only-in-two") && !rvt_contains(tb, "feature/x"));
    free(ta);
    free(tb);
    json_decref(a);
    json_decref(b);
    /* Three mirrors, all directly under <data>/mirrors, none elsewhere. */
    char real_data[PATH_MAX];
    CHECK(realpath(ddir, real_data) != NULL);
    CHECK_INT(rvt_sh(&out, "cd '%s' && find . -name '*.git' -prune | awk -F/ "
                           "'$2 != \"mirrors\" || NF != 3 {bad++} "
                           "END {print NR, bad+0}'",
                     ddir),
              0);
    CHECK_STR(out, "3 0\n");
    free(out);
    CHECK_INT(rvt_sh(&out, "ls -A '%s'", tmp), 0);
    CHECK(!rvt_contains(out, "escape") && !rvt_contains(out, ".git\n"));
    free(out);
    const char *ids[] = {"Case", "case", id100};
    for (size_t i = 0; i < 3; i++) {
        CHECK_INT(cli(&out, "remove %s", ids[i]), 0);
        free(out);
    }
}

/* The webhook signature and the bearer token: a value that differs only in
 * its first byte, only in its last, or in length is refused, and a refused
 * delivery queues nothing. (Both are compared with OpenSSL's
 * CRYPTO_memcmp, which reads every byte; no timing is measured here.) */
static void test_signatures_and_tokens_differing_anywhere_are_refused(void)
{
    struct rvt_api api;
    CHECK_INT(api_start(&api, "api-sig", redis_url, all_env), 0);
    char *out = NULL;
    CHECK_INT(cli(&out, "add hooked --url 'file://%s' --github acme/hooked",
                  remote),
              0);
    free(out);
    /* No worker runs: the first sync stays queued, so a push coalesces
     * and the queue length tells whether a delivery got through. */
    char path[600], good[128], sig[160];
    write_push(path, sizeof(path), "hooked.json", "acme/hooked");
    rvt_sign_file(path, HOOK_SECRET, good, sizeof(good));
    CHECK_INT(strlen(good), 7 + 64);
    long long queued = rvt_redis_int(&conn, "LLEN %s", RV_KEY_QUEUE);
    struct {
        const char *what;
        int at;          /* hex digit to change, -1 none */
        int cut, extra;  /* digits removed from the end, "0"s appended */
    } cases[] = {{"first digit", 7, 0, 0},     {"last digit", 7 + 63, 0, 0},
                 {"one digit short", -1, 1, 0}, {"one byte short", -1, 2, 0},
                 {"one byte long", -1, 0, 2},   {"empty", -1, 64, 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rv_strlcpy(sig, good, sizeof(sig));
        if (cases[i].at >= 0)
            sig[cases[i].at] = sig[cases[i].at] == '0' ? '1' : '0';
        sig[strlen(sig) - (size_t)cases[i].cut] = '\0';
        for (int k = 0; k < cases[i].extra; k++)
            snprintf(sig + strlen(sig), sizeof(sig) - strlen(sig), "0");
        char delivery[32];
        snprintf(delivery, sizeof(delivery), "bad-%zu", i);
        post_hook(&api, "push", delivery, path, sig);
        if (status != 401)
            fprintf(stderr, "  signature with %s -> %d\n", cases[i].what,
                    status);
        CHECK_INT(status, 401);
        CHECK_STR(error_code(), "unauthorized");
    }
    CHECK_INT(rvt_redis_int(&conn, "LLEN %s", RV_KEY_QUEUE), queued);
    CHECK_INT(rvt_redis_int(&conn, "EXISTS %s", "rv:delivery:bad-0"), 0);
    /* The untouched signature passes (so the cases above were close). */
    CHECK_INT(post_hook(&api, "push", "good-1", path, good), 202);
    CHECK(rvt_contains(body, "hooked"));

    /* The bearer token, the same way. */
    char tok[64];
    const char *variants[] = {"first", "last", "short", "long", "prefix"};
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        rv_strlcpy(tok, API_TOKEN, sizeof(tok));
        size_t n = strlen(tok);
        if (i == 0)
            tok[0] = tok[0] == 'x' ? 'y' : 'x';
        else if (i == 1)
            tok[n - 1] = tok[n - 1] == 'x' ? 'y' : 'x';
        else if (i == 2)
            tok[n - 1] = '\0';
        else if (i == 3)
            snprintf(tok + n, sizeof(tok) - n, "x");
        else
            tok[1] = '\0';
        CHECK_INT(http("-X DELETE -H 'Authorization: Bearer %s' "
                       "%s/v1/repos/hooked",
                       tok, api.base),
                  401);
    }
    CHECK_INT(rvt_redis_int(&conn, "EXISTS %s", "rv:{hooked}:meta"), 1);
    CHECK_INT(http("-X DELETE -H 'Authorization: Bearer %s' "
                   "%s/v1/repos/hooked",
                   API_TOKEN, api.base),
              204);
    rvt_api_stop(&api);
}

/* REPOVIEW_IO_TIMEOUT=2: a request line, headers or a body that stop
 * half-way are closed after about two seconds, and so is an idle
 * keep-alive connection (REPOVIEW_KEEPALIVE_TIMEOUT=2), while other
 * clients are answered at once. */
static void test_stalled_requests_are_closed_after_the_io_timeout(void)
{
    struct rvt_api api;
    CHECK_INT(api_start(&api, "api-stall", redis_url, all_env), 0);
    const char *partial[] = {
        "GET /heal",
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: a",
        "POST /v1/repos HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " API_TOKEN
        "\r\nContent-Length: 100\r\n\r\n{\"id\":",
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n", /* then idle */
    };
    size_t n = sizeof(partial) / sizeof(partial[0]);
    int fds[8];
    for (size_t i = 0; i < n; i++) {
        fds[i] = rvt_tcp_connect(api.port);
        CHECK(fds[i] >= 0 && rvt_send_str(fds[i], partial[i]));
    }
    /* Stalled clients do not hold up the loop. */
    int64_t t0 = rv_mono_ms();
    CHECK_INT(http("%s/healthz", api.base), 200);
    CHECK(rv_mono_ms() - t0 < rvt_scale_ms(1500));
    for (size_t i = 0; i < n; i++) {
        char got[512];
        int ms = wait_closed(fds[i], rvt_scale_ms(8000), got, sizeof(got));
        if (ms < 0)
            fprintf(stderr, "  case %zu stayed open\n", i);
        CHECK(ms >= 0);
        close(fds[i]);
        /* The last case was answered first, then closed when idle. */
        if (i + 1 == n)
            CHECK(strncmp(got, "HTTP/1.1 200", 12) == 0);
        else
            CHECK(strstr(got, " 200 ") == NULL);
    }
    int64_t total = rv_mono_ms() - t0;
    /* Closed by the timeout, not at once and not by the test's limit. */
    CHECK(total >= 1500);
    CHECK(total < rvt_scale_ms(8000));
    CHECK_INT(http("%s/healthz", api.base), 200);
    rvt_api_stop(&api);
}

/* A request trickled a byte at a time never lets the idle timeout fire;
 * the first-request deadline closes it REPOVIEW_IO_TIMEOUT (2 s) after the
 * accept all the same. */
static void test_a_trickled_request_is_closed_at_the_first_request_deadline(
    void)
{
    struct rvt_api api;
    CHECK_INT(api_start(&api, "api-trickle", redis_url, all_env), 0);
    int fd = rvt_tcp_connect(api.port);
    CHECK(fd >= 0);
    int64_t t0 = rv_mono_ms();
    const char *req = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
    int limit = rvt_scale_ms(10000);
    bool closed = false;
    size_t i = 0;
    while (fd >= 0 && rv_mono_ms() - t0 < limit) {
        char c[2] = {i < strlen(req) ? req[i] : 'a', '\0'};
        i++;
        if (!rvt_send_str(fd, c)) {
            closed = true;
            break;
        }
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 300) > 0) {
            char buf[512];
            if (recv(fd, buf, sizeof(buf), 0) <= 0) {
                closed = true;
                break;
            }
        }
    }
    int64_t took = rv_mono_ms() - t0;
    CHECK(closed);
    CHECK(i > 5); /* bytes kept arriving, so no idle timeout fired */
    CHECK(took >= 1500);
    CHECK(took < limit);
    if (fd >= 0)
        close(fd);
    /* A connection that sends its request at once is not affected, even
     * when it stays open longer than the deadline (an SSE stream). */
    int s = sse_open(&api, NULL);
    CHECK(s >= 0);
    rvt_sleep_ms(2600);
    CHECK(s >= 0 && still_open(s));
    if (s >= 0)
        close(s);
    CHECK_INT(http("%s/healthz", api.base), 200);
    rvt_api_stop(&api);
}

/* REPOVIEW_MAX_CLIENTS=3 with three SSE streams open: a fourth connection
 * is closed as it is accepted (and logged), the streams go on receiving
 * events, and when one closes its slot serves a new client. */
static void test_connection_cap_refuses_one_over_and_reuses_a_freed_slot(void)
{
    char *out = NULL;
    CHECK_INT(cli(&out, "add capped --url 'file://%s'", remote), 0);
    free(out);
    const char *env[] = {env_redis,
                         "REPOVIEW_MAX_CLIENTS=3",
                         "REPOVIEW_IO_TIMEOUT=2",
                         "REPOVIEW_LOG=debug",
                         NULL};
    struct rvt_api api;
    CHECK_INT(api_start(&api, "api-cap", redis_url, env), 0);
    /* Wait until the start-up probe's connection has gone. */
    rvt_sleep_ms(rvt_scale_ms(500));
    int s[3];
    for (int i = 0; i < 3; i++) {
        s[i] = sse_open(&api, "?repo=capped");
        CHECK(s[i] >= 0);
    }
    CHECK_INT(http("%s/healthz", api.base), 0);
    char *log = rvt_slurp(api.log);
    CHECK(rvt_contains(log, "over a connection cap") &&
          rvt_contains(log, "\"limit\":\"REPOVIEW_MAX_CLIENTS\""));
    free(log);
    /* The three streams still work: a change made through Redis (the API
     * has no slot left) reaches each. */
    CHECK_INT(cli(&out, "remove capped"), 0);
    free(out);
    for (int i = 0; i < 3; i++)
        CHECK(rvt_read_until(s[i], "event: removed", rvt_scale_ms(5000), NULL));
    /* A freed slot serves the next client. */
    close(s[0]);
    bool served = false;
    for (int i = 0; i < rvt_scale_ms(5000) / 100 && !served; i++) {
        served = http("%s/healthz", api.base) == 200;
        if (!served)
            rvt_sleep_ms(100);
    }
    CHECK(served);
    /* A stream names a repo that exists (an unknown one is refused). */
    CHECK_INT(cli(&out, "add capped --url 'file://%s'", remote), 0);
    free(out);
    /* curl closed; its slot frees too (once the API has read the close),
     * and a new stream fits. */
    int again = -1;
    for (int i = 0; i < rvt_scale_ms(5000) / 100 && again < 0; i++) {
        again = sse_open(&api, "?repo=capped");
        if (again < 0)
            rvt_sleep_ms(100);
    }
    CHECK(again >= 0);
    /* The streams that were never touched are still open. */
    CHECK(still_open(s[1]) && still_open(s[2]));
    close(again);
    close(s[1]);
    close(s[2]);
    rvt_api_stop(&api);
}

/* One stream names at most 100 repos: the 101st is refused with a 400, a
 * hundred are served, and one that does not exist fails the stream (404)
 * before anything is streamed. */
static void test_sse_repo_list_is_capped_at_100(void)
{
    struct rvt_api api;
    CHECK_INT(api_start(&api, "api-sse-cap", redis_url, all_env), 0);
    for (int i = 0; i < 100; i++) {
        char id[16], url[64], err[256];
        snprintf(id, sizeof(id), "r%d", i);
        snprintf(url, sizeof(url), "https://example.com/r%d.git", i);
        struct rv_repo_spec spec = {.id = id, .url = url};
        CHECK_INT(rv_registry_add(&conn, &spec, err, sizeof(err)), RV_OK);
    }
    CHECK_INT(http("-H 'Authorization: Bearer %s' '%s/v1/events?repo=r1&repo=nope'",
                   API_TOKEN, api.base),
              404);
    CHECK(rvt_contains(body, "nope"));
    char q[4096] = "?";
    for (int i = 0; i < 101; i++) {
        size_t used = strlen(q);
        snprintf(q + used, sizeof(q) - used, "%srepo=r%d", i ? "&" : "", i);
    }
    CHECK_INT(http("-H 'Authorization: Bearer %s' '%s/v1/events%s'", API_TOKEN,
                   api.base, q),
              400);
    CHECK(rvt_contains(body, "too many repo"));
    *strrchr(q, '&') = '\0';
    int fd = sse_open(&api, q);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    rvt_api_stop(&api);
}

int main(void)
{
    tmp = rvt_tmpdir("rvtest-security");
    if (!tmp)
        return 1;
    snprintf(data_dir, sizeof(data_dir), "%s/data", tmp);
    snprintf(remote, sizeof(remote), "%s/remote", tmp);
    /* Only rvapp may connect; every command is in the slow log. */
    if (rvt_redis_start_tcp(&redis,
                            "--user default off --user " REDIS_USER
                            " on '>" REDIS_PASS "' '~*' '&*' '+@all' "
                            "--slowlog-log-slower-than 0 "
                            "--slowlog-max-len 1000000") != 0 ||
        !redis.port) {
        fprintf(stderr, "cannot start redis-server on TCP\n");
        return 1;
    }
    snprintf(redis_url, sizeof(redis_url), "redis://%s:%s@127.0.0.1:%d/0",
             REDIS_USER, REDIS_PASS, redis.port);
    snprintf(env_local, sizeof(env_local), "%s", rvt_allow_local_env());
    snprintf(env_redis, sizeof(env_redis), "REPOVIEW_REDIS_URL=%s",
             redis_url);
    struct rv_redis_addr addr;
    char err[256];
    if (rv_redis_parse_url(redis_url, &addr, err, sizeof(err)) != 0 ||
        rv_rsync_open(&conn, &addr, 5000) != 0 ||
        rvt_sh(NULL,
               "set -e; git init -q -b main '%s'; cd '%s';"
               "git -c user.name=T -c user.email=t@x commit -q "
               "--allow-empty -m one; git branch feature/x",
               remote, remote) != 0 ||
        rvt_fake_github_start(&fake, GH_TOKEN) != 0) {
        fprintf(stderr, "cannot set up (redis auth, git or fake GitHub)\n");
        return 1;
    }
    snprintf(env_gql, sizeof(env_gql),
             "REPOVIEW_GITHUB_GRAPHQL=http://127.0.0.1:%d/graphql",
             fake.port);
    rvt_sh(NULL,
           "curl -sf -X POST -d '{\"repo\":\"acme/widgets\",\"scenario\":"
           "\"ok\",\"prs\":[{\"number\":7,\"title\":\"X\",\"headRef\":"
           "\"feature/x\"}]}' http://127.0.0.1:%d/_control >/dev/null",
           fake.port);

    RUN(test_no_secret_in_any_log_line_or_cli_output);
    RUN(test_no_secret_in_any_redis_key_value_or_command);
    RUN(test_no_secret_in_any_http_response_or_sse_event);
    RUN(test_acl_user_works_for_api_worker_and_cli_and_hides_password);
    RUN(test_token_is_never_offered_to_a_remote_that_is_not_github);
    RUN(test_a_credential_url_already_in_redis_is_never_shown);
    RUN(test_repo_ids_cannot_escape_the_data_dir);
    RUN(test_signatures_and_tokens_differing_anywhere_are_refused);
    RUN(test_stalled_requests_are_closed_after_the_io_timeout);
    RUN(test_a_trickled_request_is_closed_at_the_first_request_deadline);
    RUN(test_connection_cap_refuses_one_over_and_reuses_a_freed_slot);
    RUN(test_sse_repo_list_is_capped_at_100);

    rvt_fake_github_stop(&fake);
    free(body);
    free(headers);
    free(responses.s);
    free(flow_cli.s);
    return rvt_finish(&conn, &redis, tmp);
}

/*
 * Access control through the real API: tokens with scopes and repo
 * patterns from REPOVIEW_TOKENS_FILE, REPOVIEW_API_TOKEN as admin,
 * REPOVIEW_METRICS_TOKEN, closed and open reads, the dashboard's session
 * cookie, stream tokens, and SSE streams that carry only the repos a
 * token may see. A private redis-server, repoview-api as a child, curl as
 * the client; commits are faked through the worker's own scripts.
 */
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/api.h"
#include "common/errors.h"
#include "common/keys.h"
#include "common/registry.h"
#include "rvtest.h"

#define ADMIN "adm-Qe8vN2xLw5"
#define API_TOKEN "env-admin-Rk3pZ7"
#define WRITER "wr-acme-Hd6sK1"
#define READER "rd-acme-Yt4mB9"
#define READ_ALL "rd-all-Vc2nJ8"
#define METRICS "met-Lp0aX3"

static struct rvt_redis redis;
static struct rv_rsync conn;
static char *tmp;
static char redis_url[400];
static char tokens_path[600];
static struct rvt_api api;      /* tokens, reads closed */
static struct rvt_api api_open; /* tokens, REPOVIEW_READ_OPEN */

static int status;
static char *body;
static char *headers;

static int curl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int curl(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    status = rvt_vcurl(tmp, &body, &headers, fmt, ap);
    va_end(ap);
    return status;
}

/* The -H argument of a bearer ("" for none). */
static const char *auth(const char *token, char *buf, size_t size)
{
    if (!token)
        return "";
    snprintf(buf, size, "-H 'Authorization: Bearer %s'", token);
    return buf;
}

static void sha256_hex(const char *text, char out[65])
{
    char *o = NULL;
    rvt_sh(&o, "printf '%%s' '%s' | sha256sum | cut -c1-64", text);
    snprintf(out, 65, "%s", o ? o : "");
    free(o);
}

static void add_repo(const char *id)
{
    char url[128], err[256];
    snprintf(url, sizeof(url), "https://example.com/%s.git", id);
    struct rv_repo_spec spec = {.id = id, .url = url};
    CHECK_INT(rv_registry_add(&conn, &spec, err, sizeof(err)), RV_OK);
}

/* Queues a branch sync of repo and plays the worker that does it. */
static long long commit(const char *repo, const char *branch)
{
    rv_refresh_outcome outcome;
    if (rv_registry_refresh(&conn, repo, RV_KIND_BRANCHES, RV_REASON_USER,
                            &outcome) != RV_OK)
        return -1;
    char fragment[256];
    snprintf(fragment, sizeof(fragment),
             "\"defaultBranch\":\"main\",\"truncated\":false,"
             "\"branches\":[{\"name\":\"%s\"}],\"pullRequests\":[]",
             branch);
    return rvt_fake_commit(&conn, "access-worker", repo, RV_KIND_BRANCHES,
                           fragment, "{\"branches\":{\"added\":[\"x\"]}}");
}

static int start(struct rvt_api *a, const char *name, const char *extra)
{
    char log[600], env_tokens[700], env_extra[200];
    snprintf(log, sizeof(log), "%s/%s.log", tmp, name);
    snprintf(env_tokens, sizeof(env_tokens), "REPOVIEW_TOKENS_FILE=%s",
             tokens_path);
    snprintf(env_extra, sizeof(env_extra), "%s", extra ? extra : "");
    const char *env[] = {env_tokens, "REPOVIEW_API_TOKEN=" API_TOKEN,
                         "REPOVIEW_METRICS_TOKEN=" METRICS,
                         extra ? env_extra : NULL, NULL};
    return rvt_api_start(a, 0, redis_url, log, "/readyz", env);
}

/* ---- every route, every kind of caller ---- */

struct row {
    const char *what;
    const char *args; /* curl arguments after the auth; %s = base */
    /* expected status for: none, bad, reader(acme-*), writer(acme-*),
     * read-all, admin, REPOVIEW_API_TOKEN, metrics token */
    int want[8];
};

static const char *const callers[8] = {
    NULL, "not-a-token", READER, WRITER, READ_ALL, ADMIN, API_TOKEN, METRICS};

static void test_every_route_allows_or_refuses_each_scope_and_pattern(void)
{
    static const struct row rows[] = {
        {"list", "%s/v1/repos", {401, 401, 200, 200, 200, 200, 200, 401}},
        {"get acme",
         "%s/v1/repos/acme-one",
         {401, 401, 200, 200, 200, 200, 200, 401}},
        {"get other",
         "%s/v1/repos/other",
         {401, 401, 403, 403, 200, 200, 200, 401}},
        {"overview acme",
         "%s/v1/repos/acme-one/overview",
         {401, 401, 200, 200, 200, 200, 200, 401}},
        {"overview other",
         "%s/v1/repos/other/overview",
         {401, 401, 403, 403, 200, 200, 200, 401}},
        {"refresh acme",
         "-X POST %s/v1/repos/acme-one/refresh",
         {401, 401, 403, 202, 403, 202, 202, 401}},
        {"refresh other",
         "-X POST %s/v1/repos/other/refresh",
         {401, 401, 403, 403, 403, 202, 202, 401}},
        {"create",
         "-X POST -H 'Content-Type: application/json' -d "
         "'{\"id\":\"made\",\"url\":\"https://example.com/m.git\"}' "
         "%s/v1/repos",
         {401, 401, 403, 403, 403, 201, 201, 401}},
        {"delete acme",
         "-X DELETE %s/v1/repos/acme-gone",
         {401, 401, 403, 403, 403, 204, 204, 401}},
        {"stream acme",
         "-m 1 %s/v1/repos/acme-one/events",
         {401, 401, 200, 200, 200, 200, 200, 401}},
        {"stream other",
         "-m 1 '%s/v1/events?repo=other'",
         {401, 401, 403, 403, 200, 200, 200, 401}},
        {"stream all",
         "-m 1 %s/v1/events",
         {401, 401, 200, 200, 200, 200, 200, 401}},
        {"stream token",
         "-X POST %s/v1/stream-tokens",
         {401, 401, 201, 201, 201, 201, 201, 401}},
        {"metrics", "%s/metrics", {401, 401, 403, 403, 403, 200, 200, 200}},
        {"healthz", "%s/healthz", {200, 200, 200, 200, 200, 200, 200, 200}},
        {"readyz", "%s/readyz", {200, 200, 200, 200, 200, 200, 200, 200}},
        {"dashboard", "%s/", {200, 200, 200, 200, 200, 200, 200, 200}},
        {"session", "%s/v1/session", {200, 200, 200, 200, 200, 200, 200, 200}},
    };
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        for (int c = 0; c < 8; c++) {
            /* Put back what an earlier caller changed. */
            char err[256];
            struct rv_repo_spec gone = {.id = "acme-gone",
                                        .url = "https://example.com/g.git"};
            rv_registry_add(&conn, &gone, err, sizeof(err));
            rv_registry_remove(&conn, "made");
            char a[128], fmt[600];
            snprintf(fmt, sizeof(fmt), "%%s %s", rows[r].args);
            curl(fmt, auth(callers[c], a, sizeof(a)), api.base);
            if (status != rows[r].want[c])
                fprintf(stderr, "  %s as %s: %d, expected %d\n", rows[r].what,
                        callers[c] ? callers[c] : "(none)", status,
                        rows[r].want[c]);
            CHECK_INT(status, rows[r].want[c]);
            if (status == 401)
                CHECK(rvt_contains(headers, "WWW-Authenticate: Bearer"));
        }
    }
}

static void test_a_list_shows_only_the_repos_a_token_may_see(void)
{
    char a[128];
    CHECK_INT(curl("%s %s/v1/repos", auth(READER, a, sizeof(a)), api.base),
              200);
    CHECK(rvt_contains(body, "\"acme-one\""));
    CHECK(rvt_contains(body, "\"acme-two\""));
    CHECK(!rvt_contains(body, "\"other\""));
    CHECK_INT(curl("%s %s/v1/repos", auth(ADMIN, a, sizeof(a)), api.base), 200);
    CHECK(rvt_contains(body, "\"acme-one\""));
    CHECK(rvt_contains(body, "\"other\""));
}

static void test_read_open_keeps_reads_open_and_writes_closed(void)
{
    char a[128];
    CHECK_INT(curl("%s/v1/repos", api_open.base), 200);
    CHECK(rvt_contains(body, "\"other\""));
    CHECK_INT(curl("%s/v1/repos/other/overview", api_open.base), 200);
    CHECK_INT(curl("-X POST %s/v1/repos/other/refresh", api_open.base), 401);
    /* A token still limits what its holder sees. */
    CHECK_INT(
        curl("%s %s/v1/repos/other", auth(READER, a, sizeof(a)), api_open.base),
        403);
    CHECK_INT(curl("%s/metrics", api_open.base), 401);
}

/* A stream limited to acme-* never carries another repo's event, while
 * both change; the admin's stream of everything sees both. */
static void test_a_limited_stream_never_carries_another_repos_events(void)
{
    char limited[600], everything[600], reader_log[600], admin_log[600];
    snprintf(limited, sizeof(limited), "%s/limited.sse", tmp);
    snprintf(everything, sizeof(everything), "%s/everything.sse", tmp);
    snprintf(reader_log, sizeof(reader_log), "%s/limited.err", tmp);
    snprintf(admin_log, sizeof(admin_log), "%s/everything.err", tmp);
    CHECK_INT(rvt_sh(NULL,
                     "curl -sN -m 30 -H 'Authorization: Bearer " READER
                     "' %s/v1/events > %s 2>%s & "
                     "curl -sN -m 30 -H 'Authorization: Bearer " ADMIN
                     "' %s/v1/events > %s 2>%s &",
                     api.base, limited, reader_log, api.base, everything,
                     admin_log),
              0);
    /* Both streams are up once each has its retry: line. */
    for (int i = 0; i < 100; i++) {
        char *l = rvt_slurp(limited), *e = rvt_slurp(everything);
        bool up = rvt_contains(l, "retry:") && rvt_contains(e, "retry:");
        free(l);
        free(e);
        if (up)
            break;
        rvt_sleep_ms(50);
    }
    for (int i = 0; i < 3; i++) {
        /* A new branch each time, so that each commit is a new version. */
        char branch[16];
        snprintf(branch, sizeof(branch), "b%d", i);
        CHECK(commit("other", branch) > 0);
        CHECK(commit("acme-one", branch) > 0);
    }
    bool done = false;
    for (int i = 0; i < 200 && !done; i++) {
        char *e = rvt_slurp(everything);
        char *l = rvt_slurp(limited);
        /* The last acme-one projection reached both. */
        const char *last = "\"repo\":\"acme-one\",\"version\":3";
        done = rvt_contains(e, last) && rvt_contains(l, last) &&
               rvt_contains(e, "\"repo\":\"other\",\"version\":3");
        free(e);
        free(l);
        if (!done)
            rvt_sleep_ms(50);
    }
    CHECK(done);
    char *l = rvt_slurp(limited);
    char *e = rvt_slurp(everything);
    CHECK(rvt_contains(l, "event: projection"));
    CHECK(!rvt_contains(l, "\"other\""));
    CHECK(rvt_contains(e, "\"other\""));
    free(l);
    free(e);
    rvt_sh(NULL, "pkill -f 'curl -sN -m 30 -H Authorization' 2>/dev/null; "
                 "true");
}

static void test_stream_tokens_open_a_stream_and_nothing_else(void)
{
    char a[128];
    CHECK_INT(curl("-X POST %s %s/v1/stream-tokens", auth(READER, a, sizeof(a)),
                   api.base),
              201);
    json_t *doc = json_loads(body, 0, NULL);
    const char *t = json_string_value(json_object_get(doc, "token"));
    CHECK(t != NULL);
    CHECK_INT(json_integer_value(json_object_get(doc, "expiresIn")), 300);
    char token[200] = "";
    snprintf(token, sizeof(token), "%s", t ? t : "");
    json_decref(doc);
    CHECK(!rvt_contains(token, READER));
    CHECK_INT(curl("-m 1 '%s/v1/events?repo=acme-one&access_token=%s'",
                   api.base, token),
              200);
    CHECK(rvt_contains(body, "event: snapshot"));
    /* Its token's patterns still hold. */
    CHECK_INT(
        curl("-m 1 '%s/v1/events?repo=other&access_token=%s'", api.base, token),
        403);
    /* Only streams take it. */
    CHECK_INT(curl("'%s/v1/repos?access_token=%s'", api.base, token), 401);
    /* Changed anywhere (the expiry, the signature, the id): refused. */
    char forged[200];
    snprintf(forged, sizeof(forged), "%s", token);
    char *dot = strrchr(forged, '.');
    if (dot && dot[1])
        dot[1] = dot[1] == '0' ? '1' : '0';
    CHECK_INT(curl("-m 1 '%s/v1/events?access_token=%s'", api.base, forged),
              401);
    snprintf(forged, sizeof(forged), "%s", token);
    char *exp = strchr(strchr(forged, '.') + 1, '.') + 1;
    exp[0] = exp[0] == '9' ? '8' : (char)(exp[0] + 1);
    CHECK_INT(curl("-m 1 '%s/v1/events?access_token=%s'", api.base, forged),
              401);
    CHECK_INT(
        curl("-m 1 '%s/v1/events?access_token=s1.%s'", api.base, token + 3),
        401);
    /* The token never reaches the log. */
    char *log = rvt_slurp(api.log);
    CHECK(!rvt_contains(log, token));
    CHECK(!rvt_contains(log, READER));
    free(log);
}

static void test_a_session_cookie_is_httponly_strict_and_works(void)
{
    CHECK_INT(curl("-X POST -H 'Content-Type: application/json' -d "
                   "'{\"token\":\"wrong\"}' %s/v1/session",
                   api.base),
              401);
    CHECK(!rvt_contains(headers, "Set-Cookie"));
    CHECK_INT(curl("-X POST -H 'Content-Type: text/plain' -d "
                   "'{\"token\":\"" READER "\"}' %s/v1/session",
                   api.base),
              415);
    CHECK_INT(curl("-X POST -H 'Origin: http://evil.example' -H "
                   "'Content-Type: application/json' -d "
                   "'{\"token\":\"" READER "\"}' %s/v1/session",
                   api.base),
              403);
    CHECK_INT(curl("-X POST -H 'Content-Type: application/json' -d "
                   "'{\"token\":\"" READER "\"}' %s/v1/session",
                   api.base),
              200);
    char cookie[400];
    CHECK(rvt_http_header(headers, "Set-Cookie", cookie, sizeof(cookie)));
    CHECK(rvt_contains(cookie, "HttpOnly"));
    CHECK(rvt_contains(cookie, "SameSite=Strict"));
    CHECK(rvt_contains(cookie, "Path=/"));
    CHECK(!rvt_contains(cookie, READER));
    char value[300] = "";
    sscanf(cookie, "repoview_session=%299[^;]", value);
    CHECK(value[0] != '\0');
    CHECK_INT(curl("-b 'repoview_session=%s' %s/v1/repos", value, api.base),
              200);
    CHECK(rvt_contains(body, "acme-one"));
    CHECK(!rvt_contains(body, "\"other\""));
    CHECK_INT(curl("-b 'repoview_session=%s' %s/v1/session", value, api.base),
              200);
    CHECK(rvt_contains(body, "\"scope\":\"read\""));
    CHECK_INT(
        curl("-m 1 -b 'repoview_session=%s' %s/v1/events", value, api.base),
        200);
    /* A forged cookie is no cookie. */
    value[strlen(value) - 1] = value[strlen(value) - 1] == 'a' ? 'b' : 'a';
    CHECK_INT(curl("-b 'repoview_session=%s' %s/v1/repos", value, api.base),
              401);
    CHECK_INT(curl("-X DELETE %s/v1/session", api.base), 204);
    CHECK(rvt_http_header(headers, "Set-Cookie", cookie, sizeof(cookie)));
    CHECK(rvt_contains(cookie, "Max-Age=0"));
}

static void test_the_dashboard_has_its_security_headers(void)
{
    CHECK_INT(curl("%s/", api.base), 200);
    char csp[600];
    CHECK(
        rvt_http_header(headers, "Content-Security-Policy", csp, sizeof(csp)));
    CHECK(rvt_contains(csp, "script-src 'self'"));
    CHECK(!rvt_contains(csp, "unsafe-inline"));
    CHECK(rvt_contains(csp, "frame-ancestors 'none'"));
    CHECK(rvt_contains(headers, "X-Content-Type-Options: nosniff"));
    CHECK(rvt_contains(headers, "Referrer-Policy: no-referrer"));
    CHECK(!rvt_contains(body, "<script>"));
    CHECK(rvt_contains(body, "<script src=\"/app.js\"></script>"));
    CHECK_INT(curl("%s/app.js", api.base), 200);
    CHECK(rvt_contains(headers, "text/javascript"));
}

/* A tokens file that is wrong stops the API at start, naming the line. */
static void test_a_bad_tokens_file_stops_the_start(void)
{
    static const char *const bad[] = {
        "sha256:abc read\n",
        "sha256:%s reader\n",
        "sha256:%s read acme/*\n",
        "%s read\n",
    };
    char hash[65];
    sha256_hex("x", hash);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char path[700], line[200];
        snprintf(path, sizeof(path), "%s/bad-tokens-%zu", tmp, i);
        snprintf(line, sizeof(line), bad[i], hash);
        FILE *f = fopen(path, "w");
        CHECK(f != NULL);
        if (!f)
            continue;
        fprintf(f, "# a comment\n\n%s", line);
        fclose(f);
        char *out = NULL;
        int rc = rvt_sh(&out,
                        "REPOVIEW_REDIS_URL=%s REPOVIEW_TOKENS_FILE=%s "
                        "REPOVIEW_LISTEN=127.0.0.1:1 %s 2>&1",
                        redis_url, path, rvt_bin("repoview-api"));
        CHECK_INT(rc, 2);
        CHECK(rvt_contains(out, "line 3"));
        free(out);
    }
    char *out = NULL;
    CHECK_INT(rvt_sh(&out,
                     "REPOVIEW_REDIS_URL=%s REPOVIEW_TOKENS_FILE=%s/none "
                     "%s 2>&1",
                     redis_url, tmp, rvt_bin("repoview-api")),
              2);
    CHECK(rvt_contains(out, "REPOVIEW_TOKENS_FILE"));
    free(out);
}

/* Wrong credentials cost: 60 from one address are answered 401, the next
 * 429 before the credential is looked at (a right one too), while routes
 * that judge no credential and other addresses go on as before. */
static void test_guessing_tokens_is_limited_per_address(void)
{
    struct rvt_api limited;
    if (start(&limited, "api-limited", NULL) != 0) {
        CHECK(!"the API starts");
        return;
    }
    /* 60 at once, plus the one a second the bucket refills meanwhile. */
    int unauthorized = 0, refused = 0;
    int64_t t0 = rv_mono_ms();
    for (int i = 0; i < 120 && !refused; i++) {
        int st = curl("-H 'Authorization: Bearer guess-%d' %s/v1/repos", i,
                      limited.base);
        unauthorized += st == 401;
        refused = st == 429;
    }
    int64_t secs = (rv_mono_ms() - t0) / 1000 + 1;
    CHECK(refused);
    CHECK(unauthorized >= 60 && unauthorized <= 60 + secs);
    CHECK(rvt_contains(body, "\"too_many_failures\""));
    CHECK(rvt_contains(headers, "Retry-After: "));
    /* A right credential is refused too while the bucket is empty. The
     * bucket refills one a second, so on a loaded machine the next request
     * may find a token again: empty it, then ask at once, a few times. */
    int admin = 0, session = 0;
    for (int i = 0; i < 5 && (admin != 429 || session != 429); i++) {
        while (curl("-H 'Authorization: Bearer guess-more' %s/v1/repos",
                    limited.base) != 429)
            ;
        if (admin != 429)
            admin = curl("-H 'Authorization: Bearer " ADMIN "' %s/v1/repos",
                         limited.base);
        else {
            session = curl("-X POST -H 'Content-Type: application/json' -d "
                           "'{\"token\":\"" READER "\"}' %s/v1/session",
                           limited.base);
            if (session == 429)
                CHECK(!rvt_contains(headers, "Set-Cookie"));
        }
    }
    CHECK_INT(admin, 429);
    CHECK_INT(session, 429);
    /* No credential judged: /healthz with a stale bearer, anonymous. */
    CHECK_INT(curl("-H 'Authorization: Bearer stale' %s/healthz", limited.base),
              200);
    CHECK_INT(curl("%s/v1/repos", limited.base), 401);
    /* Another address keeps its own budget. */
    CHECK_INT(curl("--interface 127.0.0.2 -H 'Authorization: Bearer nope' "
                   "%s/v1/repos",
                   limited.base),
              401);
    CHECK_INT(curl("--interface 127.0.0.2 -H 'Authorization: Bearer " ADMIN
                   "' %s/v1/repos",
                   limited.base),
              200);
    CHECK_INT(curl("--interface 127.0.0.2 -H 'Authorization: Bearer " METRICS
                   "' %s/metrics",
                   limited.base),
              200);
    /* At least the three refusals above (a retry counts more). */
    const char *m =
        strstr(body ? body : "", "\nrepoview_http_auth_refused_total ");
    CHECK(m && strtoll(m + 34, NULL, 10) >= 3);
    rvt_api_stop(&limited);
}

int main(void)
{
    tmp = rvt_tmpdir("rv-access");
    if (!tmp || rvt_redis_start(&redis, NULL) != 0 ||
        rvt_redis_connect(&redis, &conn) != 0) {
        fprintf(stderr, "cannot start redis\n");
        return 1;
    }
    snprintf(redis_url, sizeof(redis_url), "%s", redis.url);
    snprintf(tokens_path, sizeof(tokens_path), "%s/tokens", tmp);
    char h_admin[65], h_writer[65], h_reader[65], h_all[65];
    sha256_hex(ADMIN, h_admin);
    sha256_hex(WRITER, h_writer);
    sha256_hex(READER, h_reader);
    sha256_hex(READ_ALL, h_all);
    FILE *f = fopen(tokens_path, "w");
    if (!f)
        return 1;
    fprintf(f,
            "# repoview tokens\n"
            "sha256:%s admin\n"
            "sha256:%s  write   acme-*\r\n"
            "   sha256:%s\tread acme-one acme-two acme-*\n"
            "\n"
            "sha256:%s read\n",
            h_admin, h_writer, h_reader, h_all);
    fclose(f);
    add_repo("acme-one");
    add_repo("acme-two");
    add_repo("other");
    if (start(&api, "api", NULL) != 0 ||
        start(&api_open, "api-open", "REPOVIEW_READ_OPEN=true") != 0) {
        fprintf(stderr, "cannot start the API\n");
        return 1;
    }
    RUN(test_every_route_allows_or_refuses_each_scope_and_pattern);
    RUN(test_a_list_shows_only_the_repos_a_token_may_see);
    RUN(test_read_open_keeps_reads_open_and_writes_closed);
    RUN(test_a_limited_stream_never_carries_another_repos_events);
    RUN(test_stream_tokens_open_a_stream_and_nothing_else);
    RUN(test_a_session_cookie_is_httponly_strict_and_works);
    RUN(test_the_dashboard_has_its_security_headers);
    RUN(test_a_bad_tokens_file_stops_the_start);
    RUN(test_guessing_tokens_is_limited_per_address);
    CHECK_INT(rvt_api_stop(&api), 0);
    CHECK_INT(rvt_api_stop(&api_open), 0);
    free(body);
    free(headers);
    return rvt_finish(&conn, &redis, tmp);
}

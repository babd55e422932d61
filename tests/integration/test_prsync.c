/*
 * PR sync against tests/fake-github/server.mjs: paging, the mapping of each
 * GraphQL field to the contract's PR object, every failure GitHub can hand
 * us mapped to its error code, timeouts, and the token never leaking.
 */
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/log.h"
#include "common/util.h"
#include "fake_github.h"
#include "rvtest.h"
#include "worker/prsync.h"

/* A token that only this test knows; it must show up nowhere. */
#define TEST_TOKEN "ghp_rvtestTOKEN0123456789abcdefSECRET"

static struct rvt_fake_github fake;
static char *log_path;     /* malloc'd; captured log lines */
static char *tmp_dir;      /* malloc'd */
/* Every error message seen, for the leak check. */
static char all_messages[65536];

/* The fake's record of requests (a new reference), or NULL. */
static json_t *fake_requests(void)
{
    char *out = NULL;
    int st = rvt_sh(&out, "curl -s http://127.0.0.1:%d/_requests", fake.port);
    json_t *doc = st == 0 && out ? json_loads(out, 0, NULL) : NULL;
    free(out);
    return doc;
}

static void fake_reset(void)
{
    rvt_sh(NULL, "curl -s -d '{\"reset\":true}' http://127.0.0.1:%d/_control",
           fake.port);
}

static struct rv_prsync_opts opts_for(const char *owner_name)
{
    struct rv_prsync_opts o = {
        .graphql_url = fake.url,
        .token = TEST_TOKEN,
        .owner_name = owner_name,
        .timeout_s = 10,
        .max_pages = 10,
        .repo_id = "test-repo",
        .job_id = "j-test",
    };
    return o;
}

/* Runs a sync expected to fail; checks *out stays NULL and keeps the
 * message for the leak check. */
static int run_failing(const struct rv_prsync_opts *o,
                       struct rv_sync_error *err,
                       struct rv_prsync_stats *stats)
{
    json_t *out = (json_t *)1;
    int rc = rv_prsync_run(o, &out, stats, err);
    CHECK(rc != RV_OK);
    CHECK(out == NULL);
    CHECK(err->message[0] != '\0');
    size_t used = strlen(all_messages);
    snprintf(all_messages + used, sizeof(all_messages) - used, "%s\n",
             err->message);
    return rc;
}

static json_t *pr_at(json_t *doc, size_t i)
{
    return json_array_get(json_object_get(doc, "pullRequests"), i);
}

static const char *str_of(json_t *pr, const char *key)
{
    return json_string_value(json_object_get(pr, key));
}

/* ---- tests ------------------------------------------------------------ */

static void test_graphql_url_is_derived_from_the_api_url(void)
{
    static const struct {
        const char *api, *override, *want;
    } table[] = {
        {"https://api.github.com", NULL, "https://api.github.com/graphql"},
        {"https://api.github.com/", "", "https://api.github.com/graphql"},
        {NULL, NULL, "https://api.github.com/graphql"},
        {"", "", "https://api.github.com/graphql"},
        {"https://ghe.example.com/api/v3", NULL,
         "https://ghe.example.com/api/graphql"},
        {"https://ghe.example.com/api/v3/", NULL,
         "https://ghe.example.com/api/graphql"},
        {"http://127.0.0.1:9999", NULL, "http://127.0.0.1:9999/graphql"},
        {"https://api.github.com", "https://proxy.internal/gql",
         "https://proxy.internal/gql"},
    };
    char buf[256];
    for (size_t i = 0; i < sizeof(table) / sizeof(*table); i++) {
        CHECK_INT(rv_prsync_graphql_url(table[i].api, table[i].override, buf,
                                        sizeof(buf)),
                  RV_OK);
        CHECK_STR(buf, table[i].want);
    }
    char small[10];
    CHECK_INT(rv_prsync_graphql_url("https://api.github.com", NULL, small,
                                    sizeof(small)),
              RV_ERR_TOO_LARGE);
    CHECK_STR(small, "");
}

static void test_three_pages_are_collected_in_order(void)
{
    fake_reset();
    struct rv_prsync_opts o = opts_for("acme/three-pages");
    struct rv_sync_error err;
    struct rv_prsync_stats stats;
    json_t *out = NULL;
    CHECK_INT(rv_prsync_run(&o, &out, &stats, &err), RV_OK);
    CHECK_INT(stats.pages, 3);
    CHECK_INT(stats.pull_requests, 250);
    json_t *prs = json_object_get(out, "pullRequests");
    CHECK_INT(json_array_size(prs), 250);
    CHECK_INT(json_object_size(out), 1);
    bool ordered = true;
    for (size_t i = 0; i < json_array_size(prs); i++)
        if (json_integer_value(json_object_get(json_array_get(prs, i),
                                               "number")) != 250 - (int)i)
            ordered = false;
    CHECK(ordered);
    CHECK_STR(str_of(pr_at(out, 0), "updatedAt"), "2026-11-20T12:00:00.000Z");
    CHECK_STR(str_of(pr_at(out, 249), "headRef"), "feature/pr-1");
    /* Rate-limit headers of the last answer are recorded. */
    CHECK(stats.ratelimit_remaining >= 0 && stats.ratelimit_remaining < 5000);
    CHECK(stats.ratelimit_reset_ms > rv_now_ms());
    json_decref(out);

    /* The fake saw three requests: no cursor, then the two end cursors. */
    json_t *reqs = fake_requests();
    CHECK_INT(json_array_size(reqs), 3);
    CHECK(json_is_null(json_object_get(json_array_get(reqs, 0), "cursor")));
    CHECK(json_is_string(json_object_get(json_array_get(reqs, 1), "cursor")));
    CHECK(json_is_string(json_object_get(json_array_get(reqs, 2), "cursor")));
    json_decref(reqs);
}

static void test_requests_send_contract_query_token_agent_and_gzip(void)
{
    fake_reset();
    struct rv_prsync_opts o = opts_for("acme/mixed");
    struct rv_sync_error err;
    json_t *out = NULL;
    CHECK_INT(rv_prsync_run(&o, &out, NULL, &err), RV_OK);
    json_decref(out);
    json_t *reqs = fake_requests();
    json_t *r = json_array_get(reqs, 0);
    CHECK_INT(json_array_size(reqs), 1);
    CHECK(json_is_true(json_object_get(r, "queryMatches")));
    CHECK(json_is_true(json_object_get(r, "authorized")));
    CHECK_STR(str_of(r, "owner"), "acme");
    CHECK_STR(str_of(r, "name"), "mixed");
    const char *ua = str_of(r, "userAgent");
    CHECK(ua && strncmp(ua, "repoview/", 9) == 0);
    const char *ae = str_of(r, "acceptEncoding");
    CHECK(ae && strstr(ae, "gzip"));
    CHECK_STR(str_of(r, "contentType"), "application/json");
    json_decref(reqs);
}

static void test_page_cap_stops_reading(void)
{
    struct rv_prsync_opts o = opts_for("acme/three-pages");
    o.max_pages = 2;
    struct rv_sync_error err;
    struct rv_prsync_stats stats;
    json_t *out = NULL;
    CHECK_INT(rv_prsync_run(&o, &out, &stats, &err), RV_OK);
    CHECK_INT(stats.pages, 2);
    CHECK_INT(json_array_size(json_object_get(out, "pullRequests")), 200);
    json_decref(out);
}

static void test_empty_repo_gives_an_empty_list(void)
{
    struct rv_prsync_opts o = opts_for("acme/empty");
    struct rv_sync_error err;
    struct rv_prsync_stats stats;
    json_t *out = NULL;
    CHECK_INT(rv_prsync_run(&o, &out, &stats, &err), RV_OK);
    CHECK_INT(stats.pages, 1);
    CHECK(json_is_array(json_object_get(out, "pullRequests")));
    CHECK_INT(json_array_size(json_object_get(out, "pullRequests")), 0);
    json_decref(out);
}

/* One PR's expected mapping. NULL strings mean JSON null. */
struct want_pr {
    int number;
    const char *ci, *review, *author, *head_repo, *base_ref;
    bool draft, cross;
};

static void check_nullable(json_t *pr, const char *key, const char *want,
                           int number)
{
    json_t *v = json_object_get(pr, key);
    if (want) {
        CHECK_STR(json_string_value(v), want);
    } else {
        if (!json_is_null(v))
            fprintf(stderr, "  PR %d: %s should be null\n", number, key);
        CHECK(json_is_null(v));
    }
}

static void test_mixed_prs_map_every_field_lower_cased(void)
{
    /* One row per PR; wider than 80 columns so it reads as a table. */
    static const struct want_pr want[] = {
        {11, "success", "approved", "Codertocat", "acme/mixed", "main", false, false},
        {12, "failure", "changes_requested", "Codertocat", "acme/mixed", "main", true, false},
        {13, "pending", "review_required", "forker", "forker/mixed", "main", false, true},
        {14, "error", NULL, "Codertocat", "acme/mixed", "main", false, false},
        {15, "expected", "approved", "Codertocat", "acme/mixed", "release", false, false},
        {16, NULL, NULL, "Codertocat", "acme/mixed", "main", false, false},
        {17, "success", NULL, NULL, NULL, "main", false, true},
        {18, NULL, NULL, "Codertocat", "acme/mixed", "main", false, false},
    };
    static const char *const fields[] = {
        "number", "title", "state", "draft", "url", "author", "headRef",
        "headRepo", "baseRef", "isCrossRepository", "ciStatus",
        "reviewDecision", "updatedAt", "headSha",
    };
    struct rv_prsync_opts o = opts_for("acme/mixed");
    struct rv_sync_error err;
    json_t *out = NULL;
    CHECK_INT(rv_prsync_run(&o, &out, NULL, &err), RV_OK);
    json_t *prs = json_object_get(out, "pullRequests");
    CHECK_INT(json_array_size(prs), sizeof(want) / sizeof(*want));
    for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++) {
        json_t *pr = json_array_get(prs, i);
        const struct want_pr *w = &want[i];
        CHECK_INT(json_integer_value(json_object_get(pr, "number")), w->number);
        /* Exactly the contract's fields plus the internal headSha. */
        CHECK_INT(json_object_size(pr), sizeof(fields) / sizeof(*fields));
        for (size_t f = 0; f < sizeof(fields) / sizeof(*fields); f++)
            CHECK(json_object_get(pr, fields[f]) != NULL);
        CHECK_STR(str_of(pr, "state"), "open");
        CHECK(json_is_boolean(json_object_get(pr, "draft")));
        CHECK_INT(json_is_true(json_object_get(pr, "draft")), w->draft);
        CHECK_INT(json_is_true(json_object_get(pr, "isCrossRepository")),
                  w->cross);
        check_nullable(pr, "ciStatus", w->ci, w->number);
        check_nullable(pr, "reviewDecision", w->review, w->number);
        check_nullable(pr, "author", w->author, w->number);
        check_nullable(pr, "headRepo", w->head_repo, w->number);
        CHECK_STR(str_of(pr, "baseRef"), w->base_ref);
        const char *sha = str_of(pr, "headSha");
        CHECK(sha && strlen(sha) == 40);
        const char *url = str_of(pr, "url");
        CHECK(url && strncmp(url, "https://github.com/", 19) == 0);
        int64_t ms;
        const char *updated = str_of(pr, "updatedAt");
        CHECK(updated && strlen(updated) == 24 &&
              rv_parse_iso8601(updated, &ms) == 0);
    }
    CHECK_STR(str_of(json_array_get(prs, 2), "headRef"), "main");
    CHECK_STR(str_of(json_array_get(prs, 7), "title"),
              "\xc3\x9cn\xc3\xaf""c\xc3\xb6""d\xc3\xa9 \xe2\x80\x94 "
              "\"quoted\" \\ title");
    json_decref(out);
}

static void expect_code(const char *owner_name, const char *code, int want_rc)
{
    struct rv_prsync_opts o = opts_for(owner_name);
    struct rv_sync_error err;
    struct rv_prsync_stats stats;
    int rc = run_failing(&o, &err, &stats);
    if (strcmp(rv_errname(err.code), code) != 0)
        fprintf(stderr, "  %s: %s (%s)\n", owner_name, rv_errname(err.code),
                err.message);
    CHECK_STR(rv_errname(err.code), code);
    CHECK_INT(rc, want_rc);
}

static void test_missing_repo_is_not_found(void)
{
    expect_code("acme/missing", "not_found", RV_ERR_HTTP);
    expect_code("someone/unknown-repo", "not_found", RV_ERR_HTTP);
}

static void test_bad_or_missing_token_is_unauthorized(void)
{
    struct rv_prsync_opts o = opts_for("acme/mixed");
    struct rv_sync_error err;
    o.token = "wrong-token-value";
    CHECK_INT(run_failing(&o, &err, NULL), RV_ERR_HTTP);
    CHECK_STR(rv_errname(err.code), "unauthorized");
    CHECK(strstr(err.message, "401") != NULL);
    o.token = NULL;
    CHECK_INT(run_failing(&o, &err, NULL), RV_ERR_HTTP);
    CHECK_STR(rv_errname(err.code), "unauthorized");
    CHECK(strstr(err.message, "GITHUB_TOKEN") != NULL);
    expect_code("acme/unauthorized", "unauthorized", RV_ERR_HTTP);
    /* 403 without any sign of a rate limit: the token may not read it. */
    expect_code("acme/forbidden", "unauthorized", RV_ERR_HTTP);
}

static void expect_rate_limited(const char *owner_name, int64_t min_delay_ms,
                                int64_t max_delay_ms)
{
    struct rv_prsync_opts o = opts_for(owner_name);
    struct rv_sync_error err;
    struct rv_prsync_stats stats;
    int64_t before = rv_now_ms();
    CHECK_INT(run_failing(&o, &err, &stats), RV_ERR_HTTP);
    int64_t after = rv_now_ms();
    CHECK_STR(rv_errname(err.code), "rate_limited");
    CHECK(err.retry_at_ms >= before + min_delay_ms);
    CHECK(err.retry_at_ms <= after + max_delay_ms);
    if (err.retry_at_ms < before + min_delay_ms ||
        err.retry_at_ms > after + max_delay_ms)
        fprintf(stderr, "  %s: retry in %lld ms\n", owner_name,
                (long long)(err.retry_at_ms - before));
}

static void test_rate_limits_give_a_retry_time(void)
{
    /* retry-after: 30 on a 403 (secondary limit). */
    expect_rate_limited("acme/forbidden-retry-after", 30000, 30000);
    /* 403, x-ratelimit-remaining 0, reset in 120 s (whole seconds). */
    expect_rate_limited("acme/forbidden-exhausted", 118000, 121000);
    /* 429 with retry-after: 7. */
    expect_rate_limited("acme/too-many", 7000, 7000);
    /* 429 with retry-after as an HTTP date 20 s ahead (whole seconds). */
    expect_rate_limited("acme/too-many-date", 18000, 21000);
    /* GraphQL errors[].type RATE_LIMITED, reset in 90 s. */
    expect_rate_limited("acme/graphql-rate-limited", 88000, 91000);

    struct rv_prsync_opts o = opts_for("acme/forbidden-exhausted");
    struct rv_sync_error err;
    struct rv_prsync_stats stats;
    run_failing(&o, &err, &stats);
    CHECK_INT(stats.ratelimit_remaining, 0);
    CHECK(stats.ratelimit_reset_ms > rv_now_ms());
}

static void test_server_errors_are_github_unavailable(void)
{
    expect_code("acme/bad-gateway", "github_unavailable", RV_ERR_HTTP);
    /* A failure on page 2 fails the whole sync: no half list. */
    struct rv_prsync_opts o = opts_for("acme/second-page-fails");
    struct rv_sync_error err;
    struct rv_prsync_stats stats;
    CHECK_INT(run_failing(&o, &err, &stats), RV_ERR_HTTP);
    CHECK_STR(rv_errname(err.code), "github_unavailable");
    CHECK_INT(stats.pages, 1);
    /* Nobody listens on port 1. */
    o = opts_for("acme/mixed");
    o.graphql_url = "http://127.0.0.1:1/graphql";
    CHECK_INT(run_failing(&o, &err, NULL), RV_ERR_HTTP);
    CHECK_STR(rv_errname(err.code), "github_unavailable");
}

static void test_hanging_server_times_out(void)
{
    struct rv_prsync_opts o = opts_for("acme/hang");
    o.timeout_s = 2;
    struct rv_sync_error err;
    int64_t t0 = rv_mono_ms();
    CHECK_INT(run_failing(&o, &err, NULL), RV_ERR_TIMEOUT);
    int64_t took = rv_mono_ms() - t0;
    CHECK_STR(rv_errname(err.code), "github_unavailable");
    CHECK(took >= 1900);
    CHECK(took < 2000 + 3000);
}

static void test_bad_answers_are_bad_response(void)
{
    expect_code("acme/truncated", "bad_response", RV_ERR_DECODE);
    expect_code("acme/stuck-cursor", "bad_response", RV_ERR_DECODE);
    expect_code("acme/other-graphql-error", "bad_response", RV_ERR_DECODE);

    /* The message names the offending path. */
    struct rv_prsync_opts o = opts_for("acme/malformed");
    struct rv_sync_error err;
    CHECK_INT(run_failing(&o, &err, NULL), RV_ERR_DECODE);
    CHECK_STR(rv_errname(err.code), "bad_response");
    CHECK(strstr(err.message, "data.repository.pullRequests.nodes[2].number"));

    /* An answer past the size cap. */
    o = opts_for("acme/three-pages");
    o.max_body_bytes = 4096;
    CHECK_INT(run_failing(&o, &err, NULL), RV_ERR_TOO_LARGE);
    CHECK_STR(rv_errname(err.code), "bad_response");
}

static void test_bad_options_are_refused(void)
{
    struct rv_prsync_opts o = opts_for("not-a-github-name");
    struct rv_sync_error err;
    CHECK_INT(run_failing(&o, &err, NULL), RV_ERR_INVALID);
    o = opts_for("acme/mixed");
    o.token = "abc\r\nX-Injected: 1";
    CHECK_INT(run_failing(&o, &err, NULL), RV_ERR_INVALID);
}

/* Last: every message and log line so far, with the token not registered
 * as a log secret, so redaction cannot hide a leak. */
static void test_token_never_appears_in_messages_or_logs(void)
{
    rv_log_set_fd(-1);
    char *logs = NULL;
    CHECK_INT(rvt_sh(&logs, "cat '%s'", log_path), 0);
    CHECK(logs && strstr(logs, "pull requests fetched") != NULL);
    CHECK(logs && strstr(logs, "PR sync failed") != NULL);
    CHECK(logs && strstr(logs, TEST_TOKEN) == NULL);
    CHECK(logs && strstr(logs, "rvtestTOKEN") == NULL);
    CHECK(strstr(all_messages, "rate limit") != NULL);
    CHECK(strstr(all_messages, TEST_TOKEN) == NULL);
    CHECK(strstr(all_messages, "rvtestTOKEN") == NULL);
    free(logs);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    CHECK_INT(rv_prsync_global_init(), RV_OK);
    rv_log_clear_secrets();
    rv_log_min_level = RV_LOG_DEBUG;
    tmp_dir = rvt_tmpdir("rvtest-prsync");
    CHECK(tmp_dir != NULL);
    if (!tmp_dir)
        return rvt_done();
    size_t plen = strlen(tmp_dir) + 16;
    log_path = malloc(plen);
    snprintf(log_path, plen, "%s/log", tmp_dir);
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(log_fd >= 0);
    rv_log_set_fd(log_fd);

    RUN(test_graphql_url_is_derived_from_the_api_url);
    if (rvt_fake_github_start(&fake, TEST_TOKEN) != 0) {
        fprintf(stderr, "could not start the fake GitHub (node %s)\n",
                "tests/fake-github/server.mjs");
        CHECK(!"fake GitHub started");
    } else {
        RUN(test_three_pages_are_collected_in_order);
        RUN(test_requests_send_contract_query_token_agent_and_gzip);
        RUN(test_page_cap_stops_reading);
        RUN(test_empty_repo_gives_an_empty_list);
        RUN(test_mixed_prs_map_every_field_lower_cased);
        RUN(test_missing_repo_is_not_found);
        RUN(test_bad_or_missing_token_is_unauthorized);
        RUN(test_rate_limits_give_a_retry_time);
        RUN(test_server_errors_are_github_unavailable);
        RUN(test_hanging_server_times_out);
        RUN(test_bad_answers_are_bad_response);
        RUN(test_bad_options_are_refused);
        RUN(test_token_never_appears_in_messages_or_logs);
        rvt_fake_github_stop(&fake);
    }
    rv_log_set_fd(-1);
    if (log_fd >= 0)
        close(log_fd);
    rvt_rmrf(tmp_dir);
    free(tmp_dir);
    free(log_path);
    rv_prsync_global_cleanup();
    return rvt_done();
}

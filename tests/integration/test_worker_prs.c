/*
 * The worker's PR sync end to end: a fake GitHub GraphQL server on
 * loopback, a real git repo, a real Redis, the worker binary. PRs are joined
 * to their branches; a failure keeps the last good PR data; a rate limit
 * holds the schedule until GitHub's reset; the token shows up nowhere.
 */
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/keys.h"
#include "common/registry.h"
#include "common/util.h"
#include "fake_github.h"
#include "rvtest.h"

#define TOKEN "ghp_workerTESTtoken0123456789SECRETvalue"

static struct rvt_redis redis;
static struct rv_rsync conn;
static char *tmp;
static struct rvt_fake_github fake;
static pid_t worker;

#define control(json) rvt_fake_github_control(&fake, "%s", json)

static pid_t start_worker(void)
{
    char log[512], data[512], gql[160], token[128];
    snprintf(log, sizeof(log), "%s/worker.log", tmp);
    snprintf(data, sizeof(data), "%s/data", tmp);
    snprintf(gql, sizeof(gql), "REPOVIEW_GITHUB_GRAPHQL=http://127.0.0.1:%d/graphql", fake.port);
    snprintf(token, sizeof(token), "GITHUB_TOKEN=%s", TOKEN);
    const char *env[] = {gql, token, "REPOVIEW_GITHUB_TIMEOUT=5", "REPOVIEW_LOG=debug",
                         rvt_allow_local_env(), NULL};
    return rvt_spawn_worker(redis.url, data, log, env);
}

static const json_t *branch(const json_t *ov, const char *name)
{
    size_t i;
    const json_t *row;
    json_array_foreach(json_object_get(ov, "branches"), i, row) {
        if (!strcmp(json_string_value(json_object_get(row, "name")), name))
            return row;
    }
    return NULL;
}

static void test_prs_are_listed_and_joined_to_their_branches(void)
{
    CHECK_INT(control("{\"repo\":\"acme/widgets\",\"scenario\":\"ok\",\"prs\":["
                      "{\"number\":12,\"title\":\"Feature X\",\"headRef\":\"feature/x\","
                      "\"ci\":\"SUCCESS\",\"review\":\"APPROVED\"},"
                      "{\"number\":13,\"title\":\"From a fork\",\"headRef\":\"feature/x\","
                      "\"isCrossRepository\":true,\"ci\":\"FAILURE\"},"
                      "{\"number\":14,\"title\":\"Draft\",\"headRef\":\"gone\",\"draft\":true}]}"),
              0);
    struct rv_repo_spec spec = {.id = "widgets", .url = NULL, .github = "acme/widgets"};
    char path[600], err[256];
    snprintf(path, sizeof(path), "%s/repo", tmp);
    spec.url = path;
    CHECK_INT(rv_registry_add(&conn, &spec, err, sizeof(err)), RV_OK);
    worker = start_worker();
    CHECK(rvt_wait_field(&conn, "widgets", "branch_sync_status", "idle", 30000));
    CHECK(rvt_wait_field(&conn, "widgets", "pr_sync_status", "idle", 30000));
    /* Both kinds commit; the second render sees the first's data. */
    json_t *ov = rvt_overview(&conn, "widgets");
    CHECK(ov != NULL);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(ov, "counts"), "openPullRequests")), 3);
    CHECK_INT(json_array_size(json_object_get(ov, "pullRequests")), 3);
    const json_t *pr = json_object_get(branch(ov, "feature/x"), "pr");
    CHECK_INT(json_integer_value(json_object_get(pr, "number")), 12);
    CHECK_STR(json_string_value(json_object_get(pr, "ciStatus")), "success");
    CHECK_STR(json_string_value(json_object_get(pr, "reviewDecision")), "approved");
    CHECK(json_is_null(json_object_get(branch(ov, "main"), "pr")));
    const json_t *fork = json_array_get(json_object_get(ov, "pullRequests"), 1);
    CHECK(json_is_true(json_object_get(fork, "isCrossRepository")));
    CHECK(json_object_get(fork, "headSha") == NULL);
    json_decref(ov);
}

static void test_a_github_failure_keeps_the_last_good_prs(void)
{
    json_t *before = rvt_overview(&conn, "widgets");
    CHECK_INT(control("{\"repo\":\"acme/widgets\",\"scenario\":\"bad-gateway\"}"), 0);
    rv_refresh_outcome outcome;
    CHECK_INT(rv_registry_refresh(&conn, "widgets", RV_KIND_PRS, RV_REASON_USER, &outcome), RV_OK);
    CHECK(rvt_wait_field(&conn, "widgets", "pr_sync_status", "error", 20000));
    char buf[512];
    json_t *e = json_loads(rvt_meta_field(&conn, "widgets", "pr_sync_error", buf, sizeof(buf)), 0, NULL);
    CHECK_STR(json_string_value(json_object_get(e, "code")), "github_unavailable");
    json_decref(e);
    json_t *after = rvt_overview(&conn, "widgets");
    CHECK(before && after && json_equal(before, after));
    json_decref(before);
    json_decref(after);
}

static void test_a_rate_limit_holds_the_schedule_until_the_reset(void)
{
    CHECK_INT(control("{\"repo\":\"acme/widgets\",\"scenario\":\"forbidden-retry-after\"}"), 0);
    rv_refresh_outcome outcome;
    int64_t asked = rv_now_ms();
    CHECK_INT(rv_registry_refresh(&conn, "widgets", RV_KIND_PRS, RV_REASON_USER, &outcome), RV_OK);
    rvt_sleep_ms(300);
    CHECK(rvt_wait_field(&conn, "widgets", "pr_sync_status", "error", 20000));
    char buf[512];
    json_t *e = json_loads(rvt_meta_field(&conn, "widgets", "pr_sync_error", buf, sizeof(buf)), 0, NULL);
    CHECK_STR(json_string_value(json_object_get(e, "code")), "rate_limited");
    json_decref(e);
    redisReply *rep = rv_rsync_command(&conn, "ZSCORE %s prs:widgets", RV_KEY_SCHEDULE);
    CHECK(rep && rep->type == REDIS_REPLY_STRING);
    /* retry-after is at least a second in the fake; the backoff base would
     * be 10 s, so the schedule must follow GitHub's time, not ours. */
    if (rep && rep->type == REDIS_REPLY_STRING)
        CHECK(strtoll(rep->str, NULL, 10) > asked);
    if (rep)
        freeReplyObject(rep);
}

static void test_the_token_appears_nowhere(void)
{
    char *out = NULL;
    CHECK_INT(rvt_sh(&out, "grep -c '%s' '%s/worker.log'", TOKEN, tmp), 1);
    free(out);
    /* Every key and value in Redis, whatever its type. */
    struct rvt_text t = {0};
    size_t keys = rvt_redis_all_values(&conn, &t, true);
    CHECK(keys > 3);                      /* the scan saw the data */
    CHECK(rvt_text_has(&t, "widgets"));
    CHECK(!rvt_text_has(&t, TOKEN));
    free(t.s);
}

int main(void)
{
    tmp = rvt_tmpdir("rvtest-wprs");
    if (!tmp || rvt_redis_start(&redis, NULL) != 0 || rvt_redis_connect(&redis, &conn) != 0 ||
        rvt_sh(NULL, "set -e; cd '%s'; git init -q -b main repo; cd repo;"
                     "git -c user.name=T -c user.email=t@x commit -q --allow-empty -m one;"
                     "git branch feature/x", tmp) != 0 ||
        rvt_fake_github_start(&fake, TOKEN) != 0) {
        fprintf(stderr, "cannot set up (redis, git or the fake GitHub)\n");
        return 1;
    }
    RUN(test_prs_are_listed_and_joined_to_their_branches);
    RUN(test_a_github_failure_keeps_the_last_good_prs);
    RUN(test_a_rate_limit_holds_the_schedule_until_the_reset);
    RUN(test_the_token_appears_nowhere);
    if (worker > 0) {
        kill(worker, SIGTERM);
        waitpid(worker, NULL, 0);
    }
    rvt_fake_github_stop(&fake);
    return rvt_finish(&conn, &redis, tmp);
}

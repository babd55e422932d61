/*
 * The org sync (worker/orgsync.h, worker/orglist.h) end to end: a real
 * worker lists an org's repositories at the fake GitHub, through the App's
 * installation token or GITHUB_TOKEN, over several pages with ETags, and
 * keeps the registered repos in step: 250 repos over 3 pages registered;
 * a second sync all 304s, spending no budget; a repository added, one
 * removed, one renamed (followed by GitHub's id), one archived and one
 * transferred all followed; a page that fails changes nothing; tokens
 * appear nowhere.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/job.h"
#include "common/keys.h"
#include "common/org.h"
#include "common/registry.h"
#include "common/util.h"
#include "fake_github.h"
#include "rvtest.h"
#include "worker/reconcile.h"

#define PAT "ghp_orgTESTpat0123456789SECRETvalueXYZ"
#define APP_ID 4343

static struct rvt_redis redis;
static struct rv_rsync conn;
static char *tmp;
static struct rvt_fake_github fake;
static pid_t worker;
static char rest[128];

#define control(...) rvt_fake_github_control(&fake, __VA_ARGS__)

#define fake_get(path) rvt_fake_github_get(&fake, path)

/* Listing requests recorded since the last clear: total, and how many
 * were answered status (0: any) with token label token (NULL: any). */
static int listings(int status, const char *token)
{
    json_t *reqs = fake_get("/_requests");
    int n = 0;
    size_t i;
    json_t *r;
    json_array_foreach(reqs, i, r)
    {
        const char *k = json_string_value(json_object_get(r, "kind"));
        const char *t = json_string_value(json_object_get(r, "token"));
        long long s = json_integer_value(json_object_get(r, "status"));
        if (k && !strcmp(k, "listing") && (!status || s == status) &&
            (!token || (t && !strcmp(t, token))))
            n++;
    }
    json_decref(reqs);
    return n;
}

/* An org field, "" when absent. */
static const char *org_field(const char *org, const char *field, char *buf,
                             size_t size)
{
    char key[RV_KEY_MAX];
    redisReply *r =
        rv_rsync_command(&conn, "HGET %s %s", rv_key_org(key, org), field);
    buf[0] = '\0';
    if (r && r->type == REDIS_REPLY_STRING)
        rv_strlcpy(buf, r->str, size);
    if (r)
        freeReplyObject(r);
    return buf;
}

/* Waits until the org's sync has ended after at_least (org_sync_at moved
 * past it, or the status is error); the final status. */
static const char *wait_org_sync(const char *org, long long at_least,
                                 char *status, size_t size)
{
    char at[32];
    for (int i = 0; i < 1200; i++) {
        org_field(org, "org_sync_status", status, size);
        org_field(org, "org_sync_at", at, sizeof(at));
        if ((!strcmp(status, "idle") && strtoll(at, NULL, 10) > at_least) ||
            !strcmp(status, "error"))
            return status;
        rvt_sleep_ms(50);
    }
    return status;
}

/* Registers org (registerOrg queues its first sync); the time just
 * before. */
static long long add_org(const char *org, const char *owner)
{
    long long before = rv_now_ms() - 1;
    char err[256];
    struct rv_org_spec spec = {.id = org, .github = owner};
    CHECK_INT(rv_org_add(&conn, &spec, err, sizeof(err)), RV_OK);
    return before;
}

/* Queues an org sync as a user's refresh does; the time just before. */
static long long refresh_org(const char *org)
{
    long long before = rv_now_ms() - 1;
    rv_refresh_outcome outcome;
    CHECK_INT(rv_org_refresh(&conn, org, RV_REASON_USER, &outcome), RV_OK);
    return before;
}

static long long org_repo_count(const char *org)
{
    char key[RV_KEY_MAX];
    return rvt_redis_int(&conn, "HLEN %s", rv_key_org_repos(key, org));
}

static bool repo_exists(const char *id)
{
    char key[RV_KEY_MAX];
    return rvt_redis_int(&conn, "EXISTS %s", rv_key_meta(key, id)) == 1;
}

static void start_worker(void)
{
    char prefix[600], key[600];
    snprintf(prefix, sizeof(prefix), "%s/worker", tmp);
    snprintf(key, sizeof(key), "%s/key.pem", tmp);
    worker = rvt_fake_github_worker(&fake, redis.url, prefix, PAT, APP_ID, key,
                                    NULL);
    CHECK(worker > 0);
}

static void test_250_repos_over_3_pages_are_registered(void)
{
    CHECK_INT(control("{\"orgRepos\":{\"owner\":\"acme\",\"count\":250,"
                      "\"cloneUrl\":\"file://%s/bare.git\",\"firstId\":7000}}",
                      tmp),
              0);
    CHECK_INT(control("{\"clearRequests\":true}"), 0);
    long long before = add_org("acme", "acme");
    start_worker();
    char status[32], buf[256];
    CHECK_STR(wait_org_sync("acme", before, status, sizeof(status)), "idle");
    CHECK_STR(org_field("acme", "org_sync_error", buf, sizeof(buf)), "");
    CHECK_INT(org_repo_count("acme"), 250);
    CHECK_STR(org_field("acme", "repo_count", buf, sizeof(buf)), "250");
    CHECK_STR(org_field("acme", "installation_id", buf, sizeof(buf)), "101");
    CHECK_INT(rvt_redis_int(&conn, "SCARD %s", RV_KEY_REPOS), 250);
    /* The run counts as a done org sync in this minute's history (or the
     * last one's, when the minute turned meanwhile). */
    long long done_org = 0;
    for (int back = 0; back < 2; back++) {
        char key[RV_KEY_MAX];
        rv_key_stats(key, rv_now_ms() / 60000 - back);
        redisReply *r = rv_rsync_command(&conn, "HGET %s done:org", key);
        if (r && r->type == REDIS_REPLY_STRING)
            done_org += strtoll(r->str, NULL, 10);
        if (r)
            freeReplyObject(r);
    }
    CHECK_INT((int)done_org, 1);
    /* Three pages of the installation's listing, as the installation. */
    CHECK_INT(listings(200, "installation:101"), 3);
    CHECK_INT(listings(0, NULL), 3);
    CHECK_STR(
        rvt_meta_field(&conn, "acme-repo-000", "github", buf, sizeof(buf)),
        "acme/repo-000");
    CHECK_STR(rvt_meta_field(&conn, "acme-repo-249", "org", buf, sizeof(buf)),
              "acme");
    CHECK_STR(
        rvt_meta_field(&conn, "acme-repo-249", "github_id", buf, sizeof(buf)),
        "7249");
    char want[700];
    snprintf(want, sizeof(want), "file://%s/bare.git", tmp);
    CHECK_STR(rvt_meta_field(&conn, "acme-repo-123", "url", buf, sizeof(buf)),
              want);
    /* Their first syncs run like any repo's. */
    CHECK(rvt_wait_field(&conn, "acme-repo-000", "branch_sync_status", "idle",
                         60000));
}

static void test_an_unchanged_listing_is_all_304s(void)
{
    CHECK_INT(control("{\"clearRequests\":true}"), 0);
    char status[32];
    long long before = refresh_org("acme");
    CHECK_STR(wait_org_sync("acme", before, status, sizeof(status)), "idle");
    CHECK_INT(listings(304, "installation:101"), 3);
    CHECK_INT(listings(0, NULL), 3);
    CHECK_INT(org_repo_count("acme"), 250);
}

static void test_added_removed_renamed_archived_transferred(void)
{
    CHECK_INT(control("{\"orgRepoOp\":{\"owner\":\"acme\",\"op\":\"add\","
                      "\"name\":\"Brand.New_one\"}}"),
              0);
    CHECK_INT(control("{\"orgRepoOp\":{\"owner\":\"acme\",\"op\":\"remove\","
                      "\"name\":\"repo-010\"}}"),
              0);
    CHECK_INT(control("{\"orgRepoOp\":{\"owner\":\"acme\",\"op\":\"rename\","
                      "\"name\":\"repo-020\",\"to\":\"renamed\"}}"),
              0);
    CHECK_INT(control("{\"orgRepoOp\":{\"owner\":\"acme\",\"op\":\"archive\","
                      "\"name\":\"repo-030\"}}"),
              0);
    CHECK_INT(control("{\"orgRepoOp\":{\"owner\":\"acme\",\"op\":\"transfer\","
                      "\"name\":\"repo-040\",\"to\":\"elsewhere\"}}"),
              0);
    CHECK_INT(control("{\"clearRequests\":true}"), 0);
    char status[32], buf[256];
    long long before = refresh_org("acme");
    CHECK_STR(wait_org_sync("acme", before, status, sizeof(status)), "idle");
    CHECK_INT(org_repo_count("acme"), 248);
    CHECK(repo_exists("acme-brand.new_one"));
    CHECK_STR(
        rvt_meta_field(&conn, "acme-brand.new_one", "github", buf, sizeof(buf)),
        "acme/Brand.New_one");
    CHECK(!repo_exists("acme-repo-010"));
    CHECK(!repo_exists("acme-repo-030"));
    CHECK(!repo_exists("acme-repo-040"));
    /* The rename keeps the repo (and its id), under its new name. */
    CHECK(repo_exists("acme-repo-020"));
    CHECK(!repo_exists("acme-renamed"));
    CHECK_STR(
        rvt_meta_field(&conn, "acme-repo-020", "github", buf, sizeof(buf)),
        "acme/renamed");
    CHECK_STR(
        rvt_meta_field(&conn, "acme-repo-020", "github_id", buf, sizeof(buf)),
        "7020");
    /* The GitHub name index follows the rename. */
    CHECK_INT(rvt_redis_int(&conn, "SISMEMBER rv:ghname:acme/renamed %s",
                            "acme-repo-020"),
              1);
    CHECK_INT(rvt_redis_int(&conn, "EXISTS %s", "rv:ghname:acme/repo-020"), 0);
    CHECK_INT(rvt_redis_int(&conn, "SCARD %s", RV_KEY_REPOS), 248);
    /* Every page moved (the listing shifted), so none was a 304. */
    CHECK_INT(listings(200, "installation:101"), 3);
}

static void test_a_failing_page_changes_nothing(void)
{
    CHECK_INT(control("{\"orgRepoOp\":{\"owner\":\"acme\",\"op\":\"remove\","
                      "\"name\":\"repo-050\"}}"),
              0);
    CHECK_INT(control("{\"listingStatus\":{\"owner\":\"acme\",\"page\":2,"
                      "\"status\":502}}"),
              0);
    char status[32], buf[512];
    long long before = refresh_org("acme");
    CHECK_STR(wait_org_sync("acme", before, status, sizeof(status)), "error");
    CHECK(rvt_contains(org_field("acme", "org_sync_error", buf, sizeof(buf)),
                       "\"code\":\"github_unavailable\""));
    CHECK(repo_exists("acme-repo-050"));
    CHECK_INT(org_repo_count("acme"), 248);
    CHECK_INT(control("{\"listingStatus\":{\"owner\":\"acme\",\"page\":2,"
                      "\"status\":0}}"),
              0);
    before = refresh_org("acme");
    CHECK_STR(wait_org_sync("acme", before, status, sizeof(status)), "idle");
    CHECK(!repo_exists("acme-repo-050"));
    CHECK_INT(org_repo_count("acme"), 247);
}

#define SECRET "org-hook-secret"

/* A recorded installation_repositories delivery (webhooks-examples),
 * its account made acme, signed and posted to a real API; its status. */
static int post_recorded_hook(const struct rvt_api *a, const char *delivery)
{
    char path[600], sig[128];
    snprintf(path, sizeof(path), "%s/hook.json", tmp);
    if (rvt_sh(NULL,
               "cd '%s/tests' && node -e \""
               "const ex=require('@octokit/webhooks-examples');"
               "const e=ex.find(x=>x.name==='installation_repositories')"
               ".examples[0];e.installation.account.login='acme';"
               "process.stdout.write(JSON.stringify(e))\" > '%s'",
               RV_SOURCE_DIR, path) != 0)
        return -1;
    rvt_sign_file(path, SECRET, sig, sizeof(sig));
    char *out = NULL;
    int rc = rvt_sh(&out,
                    "curl -s -o /dev/null -w '%%{http_code}' -X POST "
                    "-H 'X-GitHub-Event: installation_repositories' "
                    "-H 'X-GitHub-Delivery: %s' -H 'X-Hub-Signature-256: %s' "
                    "--data-binary @'%s' %s/v1/webhooks/github",
                    delivery, sig, path, a->base);
    int status = rc == 0 && out ? (int)strtol(out, NULL, 10) : -1;
    free(out);
    return status;
}

static void test_a_webhook_brings_the_change_in(void)
{
    struct rvt_api a;
    char log[600], status[32], buf[128];
    snprintf(log, sizeof(log), "%s/api.log", tmp);
    const char *env[] = {"REPOVIEW_WEBHOOK_SECRET=" SECRET, NULL};
    CHECK_INT(rvt_api_start(&a, 0, redis.url, log, "/readyz", env), 0);
    CHECK_INT(control("{\"orgRepoOp\":{\"owner\":\"acme\",\"op\":\"add\","
                      "\"name\":\"hooked-in\"}}"),
              0);
    CHECK_INT(control("{\"orgRepoOp\":{\"owner\":\"acme\",\"op\":\"rename\","
                      "\"name\":\"repo-060\",\"to\":\"moved\"}}"),
              0);
    long long before = rv_now_ms() - 1;
    CHECK_INT(post_recorded_hook(&a, "d-orgsync-1"), 202);
    CHECK_STR(wait_org_sync("acme", before, status, sizeof(status)), "idle");
    CHECK(repo_exists("acme-hooked-in"));
    CHECK_STR(
        rvt_meta_field(&conn, "acme-repo-060", "github", buf, sizeof(buf)),
        "acme/moved");
    CHECK_INT(rvt_api_stop(&a), 0);
}

static void test_a_repo_registered_by_hand_is_left_alone(void)
{
    /* acme-repo-070 removed by hand, and its id registered by hand for
     * something else: the org's stale entry must not rewrite it. */
    char status[32], buf[700], err[256];
    CHECK_INT(rv_registry_remove(&conn, "acme-repo-070"), RV_OK);
    char url[700];
    snprintf(url, sizeof(url), "%s/work", tmp);
    struct rv_repo_spec spec = {.id = "acme-repo-070", .url = url};
    CHECK_INT(rv_registry_add(&conn, &spec, err, sizeof(err)), RV_OK);
    long long before = refresh_org("acme");
    CHECK_STR(wait_org_sync("acme", before, status, sizeof(status)), "idle");
    CHECK_STR(rvt_meta_field(&conn, "acme-repo-070", "url", buf, sizeof(buf)),
              url);
    CHECK_STR(
        rvt_meta_field(&conn, "acme-repo-070", "github", buf, sizeof(buf)), "");
    /* The next sync registers the repository again, under a free id. */
    before = refresh_org("acme");
    CHECK_STR(wait_org_sync("acme", before, status, sizeof(status)), "idle");
    CHECK(repo_exists("acme-repo-070-7070"));
    CHECK_STR(rvt_meta_field(&conn, "acme-repo-070", "url", buf, sizeof(buf)),
              url);
}

static void test_an_org_renamed_keeps_its_repos(void)
{
    /* The installation stays the owner's: its listing now names the new
     * login, and no repo goes; they follow the new name. */
    long long count = org_repo_count("acme");
    char status[32], buf[256];
    CHECK_INT(control("{\"orgRepoOp\":{\"owner\":\"acme\",\"op\":"
                      "\"renameOwner\",\"to\":\"acme-inc\"}}"),
              0);
    long long before = refresh_org("acme");
    CHECK_STR(wait_org_sync("acme", before, status, sizeof(status)), "idle");
    CHECK_INT(org_repo_count("acme"), count);
    CHECK_STR(
        rvt_meta_field(&conn, "acme-repo-000", "github", buf, sizeof(buf)),
        "acme-inc/repo-000");
    CHECK_INT(control("{\"orgRepoOp\":{\"owner\":\"acme\",\"op\":"
                      "\"renameOwner\",\"to\":\"acme\"}}"),
              0);
    before = refresh_org("acme");
    CHECK_STR(wait_org_sync("acme", before, status, sizeof(status)), "idle");
    CHECK_STR(
        rvt_meta_field(&conn, "acme-repo-000", "github", buf, sizeof(buf)),
        "acme/repo-000");
}

static void test_a_listing_that_shifts_while_read_removes_nothing(void)
{
    /* repo-005 goes right after page 1 is served: the repository at the
     * top of page 2 slides onto page 1, unseen. Nothing may go for it. */
    long long count = org_repo_count("acme");
    char status[32], buf[512];
    CHECK_INT(control("{\"removeAfterPage\":{\"owner\":\"acme\",\"page\":1,"
                      "\"name\":\"repo-005\"}}"),
              0);
    long long before = refresh_org("acme");
    CHECK_STR(wait_org_sync("acme", before, status, sizeof(status)), "error");
    CHECK(rvt_contains(org_field("acme", "org_sync_error", buf, sizeof(buf)),
                       "changed while it was read"));
    CHECK_INT(org_repo_count("acme"), count);
    CHECK(repo_exists("acme-repo-005"));
    /* Read again once it stands still: only repo-005 goes. */
    before = refresh_org("acme");
    CHECK_STR(wait_org_sync("acme", before, status, sizeof(status)), "idle");
    CHECK_INT(org_repo_count("acme"), count - 1);
    CHECK(!repo_exists("acme-repo-005"));
}

static void test_an_unreadable_link_header_is_an_error(void)
{
    long long count = org_repo_count("acme");
    char status[32], buf[512];
    static const char *const modes[] = {"duplicate", "long"};
    for (size_t i = 0; i < 2; i++) {
        CHECK_INT(control("{\"linkMode\":{\"owner\":\"acme\",\"mode\":"
                          "\"%s\"}}",
                          modes[i]),
                  0);
        CHECK_INT(control("{\"orgRepoOp\":{\"owner\":\"acme\",\"op\":"
                          "\"remove\",\"name\":\"repo-0%zu9\"}}",
                          8 + i),
                  0);
        long long before = refresh_org("acme");
        CHECK_STR(wait_org_sync("acme", before, status, sizeof(status)),
                  "error");
        CHECK(
            rvt_contains(org_field("acme", "org_sync_error", buf, sizeof(buf)),
                         "\"code\":\"bad_response\""));
        CHECK_INT(org_repo_count("acme"), count);
    }
    CHECK_INT(control("{\"linkMode\":{\"owner\":\"acme\",\"mode\":\"\"}}"), 0);
    long long before = refresh_org("acme");
    CHECK_STR(wait_org_sync("acme", before, status, sizeof(status)), "idle");
    CHECK_INT(org_repo_count("acme"), count - 2);
}

static void test_an_owner_without_the_app_is_listed_with_the_pat(void)
{
    CHECK_INT(control("{\"orgRepos\":{\"owner\":\"solo\",\"count\":5,"
                      "\"cloneUrl\":\"file://%s/bare.git\",\"firstId\":9000}}",
                      tmp),
              0);
    CHECK_INT(control("{\"clearRequests\":true}"), 0);
    char status[32], buf[64];
    long long before = add_org("solo", "Solo");
    CHECK_STR(wait_org_sync("solo", before, status, sizeof(status)), "idle");
    CHECK_INT(org_repo_count("solo"), 5);
    CHECK_INT(listings(200, "pat"), 1);
    CHECK_STR(org_field("solo", "installation_id", buf, sizeof(buf)), "");
    CHECK(repo_exists("solo-repo-004"));
}

static void test_an_org_sync_with_nothing_behind_it_is_requeued(void)
{
    /* A queued org whose job is in no list (the queue was lost): the
     * reconciler queues it again on its second sighting, and the worker
     * runs it. */
    char key[RV_KEY_MAX], status[32];
    redisReply *r =
        rv_rsync_command(&conn, "HSET %s org_sync_status queued org_job j-lost",
                         rv_key_org(key, "solo"));
    if (r)
        freeReplyObject(r);
    long long before = rv_now_ms();
    struct rv_reconcile *rec = rv_reconcile_new();
    int repaired = -1;
    CHECK_INT(rv_reconcile_pass(rec, &conn, &repaired), RV_OK);
    CHECK_INT(repaired, 0);
    CHECK_INT(rv_reconcile_pass(rec, &conn, &repaired), RV_OK);
    CHECK_INT(repaired, 1);
    rv_reconcile_free(rec);
    CHECK_STR(wait_org_sync("solo", before, status, sizeof(status)), "idle");
    /* The run scheduled the next one, about an hour ahead. */
    redisReply *z =
        rv_rsync_command(&conn, "ZSCORE %s org:solo", RV_KEY_SCHEDULE);
    long long due =
        z && z->type == REDIS_REPLY_STRING ? strtoll(z->str, NULL, 10) : -1;
    if (z)
        freeReplyObject(z);
    CHECK(due > before + 3500 * 1000LL && due < rv_now_ms() + 3700 * 1000LL);
}

static void test_tokens_appear_nowhere(void)
{
    if (worker > 0) {
        rvt_stop_process(worker, 10000);
        worker = 0;
    }
    char log[600];
    snprintf(log, sizeof(log), "%s/worker.log", tmp);
    char *text = rvt_slurp(log);
    CHECK(text && rvt_contains(text, "org sync done"));
    struct rvt_text t = {0};
    CHECK(rvt_redis_all_values(&conn, &t, true) > 250);
    json_t *tokens = fake_get("/_tokens");
    CHECK(json_array_size(tokens) >= 1);
    size_t i;
    json_t *v;
    json_array_foreach(tokens, i, v)
    {
        CHECK(!rvt_contains(text, json_string_value(v)));
        CHECK(!rvt_text_has(&t, json_string_value(v)));
    }
    CHECK(!rvt_contains(text, PAT));
    CHECK(!rvt_text_has(&t, PAT));
    json_decref(tokens);
    free(t.s);
    free(text);
}

int main(void)
{
    tmp = rvt_tmpdir("rvtest-orgsync");
    if (!tmp || rvt_redis_start(&redis, NULL) != 0 ||
        rvt_redis_connect(&redis, &conn) != 0 ||
        rvt_sh(NULL,
               "set -e; cd '%s'; umask 077;"
               "openssl genrsa -out key.pem 2048 2>/dev/null;"
               "openssl rsa -in key.pem -pubout -out pub.pem 2>/dev/null;"
               "git init -q -b main work; cd work;"
               "git -c user.name=T -c user.email=t@x commit -q "
               "--allow-empty -m one; cd ..;"
               "git clone -q --bare work bare.git",
               tmp) != 0 ||
        rvt_fake_github_start(&fake, PAT) != 0) {
        fprintf(stderr, "cannot set up (redis, openssl, git or the fake)\n");
        return 1;
    }
    snprintf(rest, sizeof(rest), "http://127.0.0.1:%d", fake.port);
    CHECK_INT(
        control("{\"app\":{\"id\":\"%d\",\"publicKeyPath\":\"%s/pub.pem\","
                "\"installations\":{\"acme\":101}}}",
                APP_ID, tmp),
        0);
    RUN(test_250_repos_over_3_pages_are_registered);
    RUN(test_an_unchanged_listing_is_all_304s);
    RUN(test_added_removed_renamed_archived_transferred);
    RUN(test_a_failing_page_changes_nothing);
    RUN(test_a_webhook_brings_the_change_in);
    RUN(test_a_repo_registered_by_hand_is_left_alone);
    RUN(test_an_org_renamed_keeps_its_repos);
    RUN(test_a_listing_that_shifts_while_read_removes_nothing);
    RUN(test_an_unreadable_link_header_is_an_error);
    RUN(test_an_owner_without_the_app_is_listed_with_the_pat);
    RUN(test_an_org_sync_with_nothing_behind_it_is_requeued);
    RUN(test_tokens_appear_nowhere);
    if (worker > 0)
        rvt_stop_process(worker, 10000);
    rvt_fake_github_stop(&fake);
    return rvt_finish(&conn, &redis, tmp);
}

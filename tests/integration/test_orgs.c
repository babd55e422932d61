/*
 * The org registry end to end: /v1/orgs through the real API (curl as the
 * client), `repoview org` through the real CLI, the registerOrg and
 * removeOrg scripts' effects in Redis, webhooks that queue an org sync,
 * and org events on SSE streams. A private redis-server; no worker runs,
 * so what is queued stays queued and can be counted.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/job.h"
#include "common/keys.h"
#include "common/org.h"
#include "common/registry.h"
#include "common/util.h"
#include "rvtest.h"

#define ADMIN "org-admin-Wq7rT2"
#define WRITER "org-writer-Jm4kD8"
#define READER "org-reader-Bz5nC1"
#define LIMITED "org-limited-Pv6hS3" /* read, patterns other* */
#define SECRET "org-hook-secret-Xy3"

static struct rvt_redis redis;
static struct rv_rsync conn;
static char *tmp;
static struct rvt_api api;

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

#define AS_ADMIN "-H 'Authorization: Bearer " ADMIN "'"
#define JSON_CT "-H 'Content-Type: application/json'"

/* POST /v1/orgs with json as the body, as token (NULL: none). */
static int post_org(const char *token, const char *json)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/org.json", tmp);
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fputs(json, f);
    fclose(f);
    char auth[128] = "";
    if (token)
        snprintf(auth, sizeof(auth), "-H 'Authorization: Bearer %s'", token);
    return curl("-X POST %s " JSON_CT " --data-binary @'%s' %s/v1/orgs", auth,
                path, api.base);
}

static json_t *body_json(void)
{
    return json_loads(body ? body : "", 0, NULL);
}

static long long redis_int(const char *fmt, const char *arg)
{
    return rvt_redis_int(&conn, fmt, arg);
}

static const char *org_field(const char *id, const char *field, char *buf,
                             size_t size)
{
    char key[RV_KEY_MAX];
    buf[0] = '\0';
    redisReply *r =
        rv_rsync_command(&conn, "HGET %s %s", rv_key_org(key, id), field);
    if (r && r->type == REDIS_REPLY_STRING)
        snprintf(buf, size, "%s", r->str);
    if (r)
        freeReplyObject(r);
    return buf;
}

/* Clears the queue and marks org id idle, as after a finished sync. */
static void settle(const char *id)
{
    char key[RV_KEY_MAX];
    freeReplyObject(rv_rsync_command(&conn, "DEL %s", RV_KEY_QUEUE));
    freeReplyObject(rv_rsync_command(
        &conn, "HSET %s org_sync_status idle org_job %s org_job_end %s",
        rv_key_org(key, id), "", ""));
}

static void add_org(const char *id, const char *github)
{
    char err[256] = "";
    struct rv_org_spec spec = {.id = id, .github = github};
    int rc = rv_org_add(&conn, &spec, err, sizeof(err));
    if (rc != RV_OK)
        fprintf(stderr, "add_org %s: %s\n", id, err);
    CHECK_INT(rc, RV_OK);
}

/* A repo registered as org's would be: meta "org" set, named in the
 * org's repo index under github_id. */
static void add_org_repo(const char *org, const char *id, int github_id)
{
    char url[128], err[256], key[RV_KEY_MAX], gid[16];
    snprintf(url, sizeof(url), "https://github.com/%s/%s.git", org, id);
    snprintf(gid, sizeof(gid), "%d", github_id);
    struct rv_repo_spec spec = {.id = id, .url = url};
    CHECK_INT(rv_registry_add(&conn, &spec, err, sizeof(err)), RV_OK);
    freeReplyObject(rv_rsync_command(&conn, "HSET %s org %s github_id %s",
                                     rv_key_meta(key, id), org, gid));
    freeReplyObject(rv_rsync_command(&conn, "HSET %s %s %s",
                                     rv_key_org_repos(key, org), gid, id));
}

/* ---- the registry through the API ---- */

static void test_register_get_list_refresh_remove_through_the_api(void)
{
    int64_t before = rv_now_ms();
    CHECK_INT(post_org(ADMIN, "{\"id\":\"acme\",\"github\":\"Acme-Corp\"}"),
              201);
    json_t *o = body_json();
    CHECK_STR(json_string_value(json_object_get(o, "id")), "acme");
    CHECK_STR(json_string_value(json_object_get(o, "github")), "Acme-Corp");
    CHECK(json_is_null(json_object_get(o, "installationId")));
    CHECK_INT(json_integer_value(json_object_get(o, "repoCount")), 0);
    CHECK_STR(json_string_value(json_object_get(o, "syncStatus")), "queued");
    CHECK(json_is_null(json_object_get(o, "syncAt")));
    CHECK(json_is_null(json_object_get(o, "syncError")));
    CHECK(json_is_null(json_object_get(o, "budget")));
    json_decref(o);

    /* The documented state: every field, both indexes, the schedule one
     * interval ahead and the first org job at the front of the queue. */
    char buf[64];
    static const char *const empty[] = {"installation_id", "org_sync_at",
                                        "org_sync_error", "org_worker",
                                        "org_started_at"};
    for (size_t i = 0; i < sizeof(empty) / sizeof(*empty); i++)
        CHECK_STR(org_field("acme", empty[i], buf, sizeof(buf)), "");
    CHECK_STR(org_field("acme", "repo_count", buf, sizeof(buf)), "0");
    CHECK_STR(org_field("acme", "org_gen", buf, sizeof(buf)), "0");
    CHECK_STR(org_field("acme", "org_pending", buf, sizeof(buf)), "0");
    CHECK_STR(org_field("acme", "org_fails", buf, sizeof(buf)), "0");
    CHECK_STR(org_field("acme", "org_job_end", buf, sizeof(buf)), "front");
    CHECK(org_field("acme", "created_at", buf, sizeof(buf))[0] != '\0');
    CHECK_INT(redis_int("SISMEMBER " RV_KEY_ORGS " %s", "acme"), 1);
    redisReply *r =
        rv_rsync_command(&conn, "HGET %s %s", RV_KEY_ORG_OWNERS, "acme-corp");
    CHECK(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "acme") == 0);
    freeReplyObject(r);
    r = rv_rsync_command(&conn, "ZSCORE %s %s", RV_KEY_SCHEDULE, "org:acme");
    int64_t due = 0;
    CHECK(r && r->type == REDIS_REPLY_STRING &&
          rv_parse_i64(r->str, 0, INT64_MAX, &due) == 0);
    CHECK(due >= before + 3600 * 1000 && due <= rv_now_ms() + 3600 * 1000);
    freeReplyObject(r);
    r = rv_rsync_command(&conn, "LINDEX %s -1", RV_KEY_QUEUE);
    struct rv_job job;
    char why[128];
    bool decoded =
        r && r->type == REDIS_REPLY_STRING &&
        rv_job_decode(r->str, r->len, &job, why, sizeof(why)) == RV_OK;
    CHECK(decoded);
    if (decoded) {
        CHECK_STR(job.repo, "acme");
        CHECK_INT(job.kind, RV_KIND_ORG);
        CHECK_INT(job.reason, RV_REASON_REGISTER);
        CHECK_STR(org_field("acme", "org_job", buf, sizeof(buf)), job.id);
    }
    freeReplyObject(r);

    CHECK_INT(curl(AS_ADMIN " %s/v1/orgs/acme", api.base), 200);
    CHECK(rvt_contains(body, "\"github\":\"Acme-Corp\""));
    CHECK_INT(curl(AS_ADMIN " %s/v1/orgs", api.base), 200);
    o = body_json();
    json_t *orgs = json_object_get(o, "orgs");
    CHECK_INT(json_array_size(orgs), 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(orgs, 0), "id")),
              "acme");
    json_decref(o);

    /* Queued: a refresh coalesces; idle: it queues one, then coalesces. */
    CHECK_INT(curl("-X POST " AS_ADMIN " %s/v1/orgs/acme/refresh", api.base),
              202);
    CHECK(rvt_contains(body, "\"coalesced\":[\"org\"]"));
    settle("acme");
    CHECK_INT(curl("-X POST " AS_ADMIN " %s/v1/orgs/acme/refresh", api.base),
              202);
    CHECK(rvt_contains(body, "\"queued\":[\"org\"]"));
    CHECK_INT(curl("-X POST " AS_ADMIN " %s/v1/orgs/acme/refresh", api.base),
              202);
    CHECK(rvt_contains(body, "\"coalesced\":[\"org\"]"));
    CHECK_INT(redis_int("LLEN %s", RV_KEY_QUEUE), 1);
    CHECK_STR(org_field("acme", "org_sync_status", buf, sizeof(buf)), "queued");

    CHECK_INT(curl("-X DELETE " AS_ADMIN " %s/v1/orgs/acme", api.base), 204);
    CHECK_INT(curl(AS_ADMIN " %s/v1/orgs/acme", api.base), 404);
    CHECK_INT(curl("-X DELETE " AS_ADMIN " %s/v1/orgs/acme", api.base), 404);
    CHECK_INT(curl("-X POST " AS_ADMIN " %s/v1/orgs/acme/refresh", api.base),
              404);
    CHECK_INT(redis_int("EXISTS %s", "rv:org:{acme}"), 0);
    CHECK_INT(redis_int("SCARD %s", RV_KEY_ORGS), 0);
    CHECK_INT(redis_int("HLEN %s", RV_KEY_ORG_OWNERS), 0);
    CHECK_INT(redis_int("ZCARD %s", RV_KEY_SCHEDULE), 0);
    CHECK_INT(curl(AS_ADMIN " %s/v1/orgs", api.base), 200);
    CHECK_STR(body, "{\"orgs\":[]}");
    freeReplyObject(rv_rsync_command(&conn, "DEL %s", RV_KEY_QUEUE));
}

static void test_an_org_shows_the_budget_of_the_token_it_spends(void)
{
    add_org("budgeted", "budget-owner");
    freeReplyObject(rv_rsync_command(
        &conn, "HSET rv:gh:budget:pat remaining 4000 limit 5000 resetAt %s",
        "1796000000000"));
    CHECK_INT(curl(AS_ADMIN " %s/v1/orgs/budgeted", api.base), 200);
    json_t *o = body_json();
    json_t *b = json_object_get(o, "budget");
    CHECK_INT(json_integer_value(json_object_get(b, "remaining")), 4000);
    CHECK_INT(json_integer_value(json_object_get(b, "limit")), 5000);
    CHECK(json_is_string(json_object_get(b, "resetAt")));
    json_decref(o);
    /* Once a sync used an App installation, that installation's budget. */
    freeReplyObject(
        rv_rsync_command(&conn, "HSET rv:org:{budgeted} installation_id 101"));
    freeReplyObject(
        rv_rsync_command(&conn, "HSET rv:gh:budget:101 remaining 12"));
    CHECK_INT(curl(AS_ADMIN " %s/v1/orgs", api.base), 200);
    o = body_json();
    json_t *first = json_array_get(json_object_get(o, "orgs"), 0);
    CHECK_INT(json_integer_value(json_object_get(first, "installationId")),
              101);
    b = json_object_get(first, "budget");
    CHECK_INT(json_integer_value(json_object_get(b, "remaining")), 12);
    CHECK(json_is_null(json_object_get(b, "limit")));
    json_decref(o);
    /* /metrics counts the orgs (sampled every few seconds). */
    bool counted = false;
    for (int i = 0; i < 100 && !counted; i++) {
        curl(AS_ADMIN " %s/metrics", api.base);
        counted = rvt_contains(body, "\nrepoview_orgs 1\n");
        if (!counted)
            rvt_sleep_ms(100);
    }
    CHECK(counted);
    CHECK_INT(rv_org_remove(&conn, "budgeted", NULL), RV_OK);
    freeReplyObject(rv_rsync_command(&conn, "DEL %s %s", "rv:gh:budget:pat",
                                     "rv:gh:budget:101"));
    freeReplyObject(rv_rsync_command(&conn, "DEL %s", RV_KEY_QUEUE));
}

/* Every key and value of the database, for "changed nothing". */
static char *snapshot(void)
{
    struct rvt_text t = {0};
    rvt_redis_all_values(&conn, &t, false);
    return t.s ? t.s : strdup("");
}

static void test_hostile_requests_change_nothing(void)
{
    add_org("taken", "Taken-Owner");
    char *before = snapshot();
    static const char *const bad_bodies[] = {
        "",
        "[]",
        "nonsense",
        "{\"id\":\"x\"}",
        "{\"github\":\"x\"}",
        "{\"id\":\"x\",\"github\":\"x\",\"extra\":1}",
        "{\"id\":\"x\",\"id\":\"y\",\"github\":\"x\"}",
        "{\"id\":1,\"github\":\"x\"}",
        "{\"id\":\"x\",\"github\":null}",
        "{\"id\":\"bad id\",\"github\":\"x\"}",
        "{\"id\":\"-x\",\"github\":\"x\"}",
        "{\"id\":\"x\",\"github\":\"-x\"}",
        "{\"id\":\"x\",\"github\":\"x-\"}",
        "{\"id\":\"x\",\"github\":\"a--b\"}",
        "{\"id\":\"x\",\"github\":\"a/b\"}",
        "{\"id\":\"x\",\"github\":\"\"}",
        "{\"id\":\"x\",\"github\":"
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
        "{\"id\":\"x\",\"github\":\"\\u00e9t\\u00e9\"}",
        "{\"id\":\"x}:meta\",\"github\":\"x\"}",
    };
    for (size_t i = 0; i < sizeof(bad_bodies) / sizeof(*bad_bodies); i++) {
        int st = post_org(ADMIN, bad_bodies[i]);
        if (st != 400)
            fprintf(stderr, "body %s: %d %s\n", bad_bodies[i], st, body);
        CHECK_INT(st, 400);
        char code[64];
        rvt_error_code(body, code, sizeof(code));
        CHECK(strcmp(code, "invalid") == 0 || strcmp(code, "bad_request") == 0);
    }
    /* Too large for an org body, and not JSON by its type. */
    char *huge = malloc(20000);
    if (huge) {
        memset(huge, ' ', 19999);
        huge[19999] = '\0';
        memcpy(huge, "{\"id\":\"x\",\"github\":\"x\"}", 23);
        CHECK_INT(post_org(ADMIN, huge), 413);
        free(huge);
    }
    CHECK_INT(curl("-X POST " AS_ADMIN " -d '{\"id\":\"x\",\"github\":\"x\"}' "
                   "-H 'Content-Type: text/plain' %s/v1/orgs",
                   api.base),
              415);
    /* Taken: the id, and the owner in any case under another id. */
    CHECK_INT(post_org(ADMIN, "{\"id\":\"taken\",\"github\":\"other\"}"), 409);
    CHECK(rvt_contains(body, "already exists"));
    CHECK_INT(post_org(ADMIN, "{\"id\":\"second\",\"github\":\"taken-OWNER\"}"),
              409);
    char code[64];
    CHECK_STR(rvt_error_code(body, code, sizeof(code)), "exists");
    CHECK(rvt_contains(body, "already registered by org \\\"taken\\\""));
    /* Bad ids in the path. */
    CHECK_INT(curl(AS_ADMIN " %s/v1/orgs/-bad", api.base), 400);
    CHECK(rvt_contains(body, "org id must match"));
    CHECK_INT(curl("-X DELETE " AS_ADMIN " %s/v1/orgs/%%2e%%2e", api.base),
              400);
    CHECK_INT(curl(AS_ADMIN " %s/v1/orgs/nobody", api.base), 404);
    /* Without a token, with a read token, with a write token. */
    CHECK_INT(post_org(NULL, "{\"id\":\"anon\",\"github\":\"anon\"}"), 401);
    CHECK_INT(post_org(READER, "{\"id\":\"anon\",\"github\":\"anon\"}"), 403);
    CHECK_INT(post_org(WRITER, "{\"id\":\"anon\",\"github\":\"anon\"}"), 403);
    CHECK_INT(curl("-X DELETE %s/v1/orgs/taken", api.base), 401);
    CHECK_INT(curl("-X DELETE -H 'Authorization: Bearer " WRITER "' "
                   "%s/v1/orgs/taken",
                   api.base),
              403);
    CHECK_INT(curl("-X POST %s/v1/orgs/taken/refresh", api.base), 401);
    CHECK_INT(curl("-X POST -H 'Authorization: Bearer " READER "' "
                   "%s/v1/orgs/taken/refresh",
                   api.base),
              403);
    CHECK_INT(curl("%s/v1/orgs", api.base), 401);
    /* A token limited to patterns sees the orgs whose ids match. */
    CHECK_INT(curl("-H 'Authorization: Bearer " LIMITED "' %s/v1/orgs/taken",
                   api.base),
              403);
    CHECK(rvt_contains(body, "may not see org"));
    CHECK_INT(
        curl("-H 'Authorization: Bearer " LIMITED "' %s/v1/orgs", api.base),
        200);
    CHECK_STR(body, "{\"orgs\":[]}");
    char *after = snapshot();
    CHECK(strcmp(before, after) == 0);
    free(before);
    free(after);
    /* What may read, reads; what may refresh, refreshes. */
    CHECK_INT(curl("-H 'Authorization: Bearer " READER "' %s/v1/orgs/taken",
                   api.base),
              200);
    CHECK_INT(curl("-X POST -H 'Authorization: Bearer " WRITER "' "
                   "%s/v1/orgs/taken/refresh",
                   api.base),
              202);
    CHECK_INT(rv_org_remove(&conn, "taken", NULL), RV_OK);
    freeReplyObject(rv_rsync_command(&conn, "DEL %s", RV_KEY_QUEUE));
}

static void test_removing_an_org_removes_its_repos_and_only_those(void)
{
    add_org("rm", "rm-owner");
    add_org_repo("rm", "rm-one", 11);
    add_org_repo("rm", "rm-two", 12);
    char url[] = "https://example.com/lone.git", err[256];
    struct rv_repo_spec lone = {.id = "lone", .url = url};
    CHECK_INT(rv_registry_add(&conn, &lone, err, sizeof(err)), RV_OK);
    /* A stale index entry naming a repo the org did not register. */
    freeReplyObject(rv_rsync_command(&conn, "HSET %s %s %s",
                                     "rv:org:{rm}:repos", "13", "lone"));
    /* A repo's JSON names its org; a repo of no org has no "org". */
    CHECK_INT(curl(AS_ADMIN " %s/v1/repos/rm-one", api.base), 200);
    CHECK(rvt_contains(body, "\"org\":\"rm\""));
    CHECK_INT(curl(AS_ADMIN " %s/v1/repos/lone", api.base), 200);
    CHECK(!rvt_contains(body, "\"org\""));
    CHECK_INT(curl(AS_ADMIN " %s/v1/repos", api.base), 200);
    CHECK(rvt_contains(body, "\"org\":\"rm\""));

    CHECK_INT(curl("-X DELETE " AS_ADMIN " %s/v1/orgs/rm", api.base), 204);
    CHECK_INT(redis_int("SISMEMBER " RV_KEY_REPOS " %s", "rm-one"), 0);
    CHECK_INT(redis_int("SISMEMBER " RV_KEY_REPOS " %s", "rm-two"), 0);
    CHECK_INT(redis_int("EXISTS %s", "rv:{rm-one}:meta"), 0);
    CHECK_INT(redis_int("EXISTS %s", "rv:{rm-two}:meta"), 0);
    CHECK_INT(redis_int("EXISTS %s", "rv:org:{rm}:repos"), 0);
    CHECK_INT(redis_int("ZRANK %s branches:rm-one", RV_KEY_SCHEDULE), -1);
    CHECK_INT(redis_int("SISMEMBER " RV_KEY_REPOS " %s", "lone"), 1);
    CHECK_INT(curl(AS_ADMIN " %s/v1/repos/rm-one", api.base), 404);
    CHECK_INT(curl(AS_ADMIN " %s/v1/repos/lone", api.base), 200);
    CHECK_INT(rv_registry_remove(&conn, "lone"), RV_OK);
    freeReplyObject(rv_rsync_command(&conn, "DEL %s", RV_KEY_QUEUE));
}

/* ---- the CLI ---- */

/* Runs `repoview ARGS` (stderr with stdout into *out, replacing what
 * it held). Returns the exit status. */
static int cli(char **out, const char *args)
{
    free(*out);
    *out = NULL;
    return rvt_sh(out, "REPOVIEW_REDIS_URL='%s' %s %s 2>&1", redis.url,
                  rvt_bin("repoview"), args);
}

static void test_cli_org_commands_and_their_exit_codes(void)
{
    char *out = NULL;
    CHECK_INT(cli(&out, "org add cli-org --github Cli-Owner"), 0);
    CHECK(rvt_contains(out, "added org cli-org"));
    CHECK_INT(cli(&out, "org add cli-org --github someone"), 1);
    CHECK(rvt_contains(out, "already exists"));
    CHECK_INT(cli(&out, "org add cli-two --github cli-owner"), 1);
    CHECK(rvt_contains(out, "already registered by org \"cli-org\""));
    CHECK_INT(cli(&out, "org add 'bad id' --github x"), 2);
    CHECK_INT(cli(&out, "org add ok --github 'no/slash'"), 2);
    CHECK_INT(cli(&out, "org add ok"), 2);
    CHECK_INT(cli(&out, "org frobnicate"), 2);
    CHECK_INT(cli(&out, "org"), 2);
    CHECK_INT(cli(&out, "org list --json"), 0);
    json_t *j = json_loads(out ? out : "", 0, NULL);
    json_t *first = json_array_get(json_object_get(j, "orgs"), 0);
    CHECK_STR(json_string_value(json_object_get(first, "id")), "cli-org");
    CHECK_STR(json_string_value(json_object_get(first, "syncStatus")),
              "queued");
    json_decref(j);
    CHECK_INT(cli(&out, "org list"), 0);
    CHECK(rvt_contains(out, "Cli-Owner"));
    CHECK_INT(cli(&out, "org refresh cli-org --json"), 0);
    CHECK(rvt_contains(out, "\"coalesced\":[\"org\"]"));
    CHECK_INT(cli(&out, "org refresh nobody"), 1);
    CHECK(rvt_contains(out, "not found"));
    CHECK_INT(cli(&out, "org remove cli-org"), 0);
    CHECK_INT(cli(&out, "org remove cli-org"), 1);
    CHECK_INT(redis_int("SCARD %s", RV_KEY_ORGS), 0);
    free(out);
    freeReplyObject(rv_rsync_command(&conn, "DEL %s", RV_KEY_QUEUE));
}

/* ---- webhooks ---- */

/* How many keys match pattern. */
static long long count_keys(const char *pattern)
{
    redisReply *r = rv_rsync_command(
        &conn, "EVAL %s 0 %s", "return #redis.call('KEYS', ARGV[1])", pattern);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    return n;
}

static int post_hook(const char *event, const char *delivery, const char *json)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/hook.json", tmp);
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fputs(json, f);
    fclose(f);
    char sig[128];
    rvt_sign_file(path, SECRET, sig, sizeof(sig));
    return curl("-X POST -H 'X-GitHub-Event: %s' -H 'X-GitHub-Delivery: %s' "
                "-H 'X-Hub-Signature-256: %s' --data-binary @'%s' "
                "%s/v1/webhooks/github",
                event, delivery, sig, path, api.base);
}

static void test_a_webhook_queues_one_org_sync_and_a_second_coalesces(void)
{
    char buf[64];
    add_org("hooked", "Hook-Owner");
    settle("hooked");
    const char *install = "{\"action\":\"created\",\"installation\":{\"id\":7,"
                          "\"account\":{\"login\":\"HOOK-owner\"}}}";
    CHECK_INT(post_hook("installation", "d-org-1", install), 202);
    CHECK(rvt_contains(body, "\"org\":\"hooked\""));
    CHECK(rvt_contains(body, "\"outcome\":\"queued\""));
    CHECK_INT(redis_int("LLEN %s", RV_KEY_QUEUE), 1);
    CHECK_STR(org_field("hooked", "org_sync_status", buf, sizeof(buf)),
              "queued");
    /* Another delivery coalesces; the same one again is dropped. */
    const char *repo_event =
        "{\"action\":\"deleted\",\"repository\":{\"full_name\":"
        "\"Hook-Owner/x\",\"owner\":{\"login\":\"Hook-Owner\"}}}";
    CHECK_INT(post_hook("repository", "d-org-2", repo_event), 202);
    CHECK(rvt_contains(body, "\"outcome\":\"coalesced\""));
    CHECK_INT(post_hook("repository", "d-org-2", repo_event), 202);
    CHECK(rvt_contains(body, "repeated delivery"));
    CHECK_INT(redis_int("LLEN %s", RV_KEY_QUEUE), 1);
    /* A transfer away from the owner syncs the org it left. */
    settle("hooked");
    CHECK_INT(post_hook("repository", "d-org-3",
                        "{\"action\":\"transferred\",\"repository\":{"
                        "\"full_name\":\"elsewhere/x\",\"owner\":{\"login\":"
                        "\"elsewhere\"}},\"changes\":{\"owner\":{\"from\":{"
                        "\"organization\":{\"login\":\"hook-owner\"}}}}}"),
              202);
    CHECK(rvt_contains(body, "\"outcome\":\"queued\""));
    CHECK_INT(redis_int("LLEN %s", RV_KEY_QUEUE), 1);
    /* installation_repositories too. */
    settle("hooked");
    CHECK_INT(post_hook("installation_repositories", "d-org-4",
                        "{\"action\":\"added\",\"installation\":{\"account\":"
                        "{\"login\":\"Hook-Owner\"}}}"),
              202);
    CHECK_INT(redis_int("LLEN %s", RV_KEY_QUEUE), 1);
    /* An owner of no org, an action that changes no listing, a body
     * without the owner: nothing queued, nothing remembered. */
    settle("hooked");
    long long deliveries = count_keys("rv:delivery:*");
    CHECK_INT(post_hook("installation", "d-org-5",
                        "{\"action\":\"created\",\"installation\":{"
                        "\"account\":{\"login\":\"stranger\"}}}"),
              202);
    CHECK(rvt_contains(body, "no registered org has this owner"));
    CHECK_INT(post_hook("repository", "d-org-6",
                        "{\"action\":\"starred\",\"repository\":{"
                        "\"full_name\":\"Hook-Owner/x\",\"owner\":{"
                        "\"login\":\"Hook-Owner\"}}}"),
              202);
    CHECK(rvt_contains(body, "event not used"));
    CHECK_INT(post_hook("installation", "d-org-7",
                        "{\"action\":\"created\",\"installation\":{}}"),
              400);
    CHECK_INT(post_hook("installation", "d-org-8",
                        "{\"action\":\"created\",\"installation\":{"
                        "\"account\":{\"login\":\"bad login!\"}}}"),
              400);
    CHECK_INT(redis_int("LLEN %s", RV_KEY_QUEUE), 0);
    CHECK_INT(count_keys("rv:delivery:*"), deliveries);
    CHECK_STR(org_field("hooked", "org_sync_status", buf, sizeof(buf)), "idle");
    CHECK_INT(rv_org_remove(&conn, "hooked", NULL), RV_OK);
}

/* ---- events ---- */

/* Starts `curl -N` on path in the background, its output in
 * <tmp>/<name>.sse, for at most seconds; waits until it is connected. */
static void stream(const char *name, const char *path, int seconds)
{
    char file[600];
    snprintf(file, sizeof(file), "%s/%s.sse", tmp, name);
    rvt_sh(NULL,
           "(timeout %d curl -sN -H 'Authorization: Bearer " ADMIN
           "' '%s%s' > '%s' 2>/dev/null &)",
           seconds, api.base, path, file);
    for (int i = 0; i < 100; i++) {
        char *text = rvt_slurp(file);
        bool up = rvt_contains(text, "retry:");
        free(text);
        if (up)
            return;
        rvt_sleep_ms(50);
    }
    fprintf(stderr, "stream %s did not start\n", name);
}

static char *streamed(const char *name)
{
    char file[600];
    snprintf(file, sizeof(file), "%s/%s.sse", tmp, name);
    return rvt_slurp(file);
}

static void test_org_events_reach_unfiltered_streams_only(void)
{
    char url[] = "https://example.com/watched.git", err[256];
    struct rv_repo_spec spec = {.id = "watched", .url = url};
    CHECK_INT(rv_registry_add(&conn, &spec, err, sizeof(err)), RV_OK);
    add_org("evorg", "ev-owner");
    settle("evorg");
    stream("all", "/v1/events", 6);
    stream("some", "/v1/events?repo=watched", 6);
    stream("one", "/v1/repos/watched/events", 6);
    /* Let the streams' snapshots go out before anything happens. */
    rvt_sleep_ms(300);
    CHECK_INT(curl("-X POST " AS_ADMIN " %s/v1/orgs/evorg/refresh", api.base),
              202);
    CHECK_INT(curl("-X DELETE " AS_ADMIN " %s/v1/orgs/evorg", api.base), 204);
    char *all = NULL;
    for (int i = 0; i < 60; i++) {
        free(all);
        all = streamed("all");
        if (rvt_contains(all, "event: org-removed"))
            break;
        rvt_sleep_ms(100);
    }
    CHECK(rvt_contains(all, "event: org\ndata: {\"id\":\"evorg\""));
    CHECK(rvt_contains(all, "\"syncStatus\":\"queued\""));
    CHECK(rvt_contains(all, "event: org-removed\ndata: {\"id\":\"evorg\"}"));
    /* Give the filtered streams the same time, then look. */
    rvt_sleep_ms(300);
    char *some = streamed("some"), *one = streamed("one");
    CHECK(rvt_contains(some, "retry:"));
    CHECK(rvt_contains(one, "retry:"));
    CHECK(!rvt_contains(some, "event: org"));
    CHECK(!rvt_contains(one, "event: org"));
    free(all);
    free(some);
    free(one);
    CHECK_INT(rv_registry_remove(&conn, "watched"), RV_OK);
    freeReplyObject(rv_rsync_command(&conn, "DEL %s", RV_KEY_QUEUE));
}

int main(void)
{
    tmp = rvt_tmpdir("rv-orgs");
    if (!tmp || rvt_redis_start(&redis, NULL) != 0 ||
        rvt_redis_connect(&redis, &conn) != 0) {
        fprintf(stderr, "cannot start redis\n");
        return 1;
    }
    char tokens[600], env_tokens[700], log[600];
    snprintf(tokens, sizeof(tokens), "%s/tokens", tmp);
    snprintf(env_tokens, sizeof(env_tokens), "REPOVIEW_TOKENS_FILE=%s", tokens);
    snprintf(log, sizeof(log), "%s/api.log", tmp);
    char *hashes = NULL;
    rvt_sh(&hashes, "for t in " ADMIN " " WRITER " " READER " " LIMITED "; do "
                    "printf '%%s' $t | sha256sum | cut -c1-64; done");
    char h[4][65] = {"", "", "", ""};
    if (!hashes ||
        sscanf(hashes, "%64s %64s %64s %64s", h[0], h[1], h[2], h[3]) != 4) {
        fprintf(stderr, "cannot hash the tokens\n");
        return 1;
    }
    free(hashes);
    FILE *f = fopen(tokens, "w");
    if (!f)
        return 1;
    fprintf(f,
            "sha256:%s admin\nsha256:%s write\nsha256:%s read\n"
            "sha256:%s read other*\n",
            h[0], h[1], h[2], h[3]);
    fclose(f);
    const char *env[] = {env_tokens, "REPOVIEW_WEBHOOK_SECRET=" SECRET, NULL};
    if (rvt_api_start(&api, 0, redis.url, log, "/readyz", env) != 0) {
        fprintf(stderr, "cannot start the API\n");
        return 1;
    }
    RUN(test_register_get_list_refresh_remove_through_the_api);
    RUN(test_an_org_shows_the_budget_of_the_token_it_spends);
    RUN(test_hostile_requests_change_nothing);
    RUN(test_removing_an_org_removes_its_repos_and_only_those);
    RUN(test_cli_org_commands_and_their_exit_codes);
    RUN(test_a_webhook_queues_one_org_sync_and_a_second_coalesces);
    RUN(test_org_events_reach_unfiltered_streams_only);
    /* A clean exit: under ASan, also no leak in any path taken above. */
    CHECK_INT(rvt_api_stop(&api), 0);
    free(body);
    free(headers);
    return rvt_finish(&conn, &redis, tmp);
}

/*
 * The org model (common/org.c): owner logins, the one parser for the
 * org's hash and an event's meta, the contract's JSON, and the budget
 * object. No Redis: the integration test test_orgs covers the scripts.
 */
#include <jansson.h>
#include <string.h>

#include "common/errors.h"
#include "common/org.h"
#include "rvtest.h"

static void test_owner_logins_follow_githubs_rules(void)
{
    static const char *const good[] = {"a",
                                       "acme",
                                       "Acme-Corp",
                                       "a-b-c",
                                       "0",
                                       "a1b2",
                                       "jdoe_acme",
                                       "abcdefghijabcdefghijabcdefghijabcdefgh"
                                       "i"};
    static const char *const bad[] = {
        "",
        "-a",
        "a-",
        "a--b",
        "_ab",
        "ab_",
        "a.b",
        "a/b",
        "a b",
        "\xc3\xa9t",
        NULL,
        "abcdefghijabcdefghijabcdefghijabcdefghij"};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
        CHECK(rv_org_owner_valid(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        CHECK(!rv_org_owner_valid(bad[i]));
}

static void test_spec_validation_names_what_is_wrong(void)
{
    char err[256];
    struct rv_org_spec ok = {.id = "acme", .github = "acme"};
    CHECK_INT(rv_org_spec_validate(&ok, err, sizeof(err)), RV_OK);
    struct rv_org_spec bad_id = {.id = "a b", .github = "acme"};
    CHECK_INT(rv_org_spec_validate(&bad_id, err, sizeof(err)), RV_ERR_INVALID);
    CHECK(strstr(err, "org id") != NULL);
    struct rv_org_spec bad_owner = {.id = "acme", .github = "a/b"};
    CHECK_INT(rv_org_spec_validate(&bad_owner, err, sizeof(err)),
              RV_ERR_INVALID);
    CHECK(strstr(err, "github") != NULL);
}

static void test_event_meta_renders_the_contract_shape(void)
{
    json_t *meta = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:s}", "github", "Acme", "installation_id", "101",
        "repo_count", "250", "org_sync_status", "error", "org_sync_at",
        "1796000000000", "org_sync_error",
        "{\"code\":\"rate_limited\",\"message\":\"m\",\"at\":\"t\"}");
    struct rv_org org;
    CHECK_INT(rv_org_from_event_meta(&org, "acme", meta), RV_OK);
    json_t *j = rv_org_json(&org);
    char *text = json_dumps(j, JSON_COMPACT);
    CHECK_STR(text, "{\"id\":\"acme\",\"github\":\"Acme\","
                    "\"installationId\":101,\"repoCount\":250,"
                    "\"syncStatus\":\"error\","
                    "\"syncAt\":\"2026-11-30T00:53:20.000Z\","
                    "\"syncError\":{\"code\":\"rate_limited\","
                    "\"message\":\"m\",\"at\":\"t\"}}");
    free(text);
    json_decref(j);
    char id[24];
    CHECK_STR(rv_org_token_identity(&org, id, sizeof(id)), "101");
    rv_org_free(&org);

    /* Malformed: a bad id, a bad login, a bad number or status. */
    CHECK_INT(rv_org_from_event_meta(&org, "a b", meta), RV_ERR_PROTOCOL);
    json_object_set_new(meta, "repo_count", json_string("-1"));
    CHECK_INT(rv_org_from_event_meta(&org, "acme", meta), RV_ERR_PROTOCOL);
    json_object_set_new(meta, "repo_count", json_string(""));
    json_object_set_new(meta, "org_sync_status", json_string("weird"));
    CHECK_INT(rv_org_from_event_meta(&org, "acme", meta), RV_ERR_PROTOCOL);
    json_object_set_new(meta, "org_sync_status", json_string(""));
    json_object_set_new(meta, "installation_id", json_string(""));
    json_object_set_new(meta, "org_sync_at", json_string(""));
    json_object_set_new(meta, "org_sync_error", json_string(""));
    CHECK_INT(rv_org_from_event_meta(&org, "acme", meta), RV_OK);
    j = rv_org_json(&org);
    text = json_dumps(j, JSON_COMPACT);
    CHECK_STR(text, "{\"id\":\"acme\",\"github\":\"Acme\","
                    "\"installationId\":null,\"repoCount\":0,"
                    "\"syncStatus\":\"idle\",\"syncAt\":null,"
                    "\"syncError\":null}");
    free(text);
    json_decref(j);
    CHECK_STR(rv_org_token_identity(&org, id, sizeof(id)), "pat");
    rv_org_free(&org);
    json_object_set_new(meta, "github", json_string("no/slash"));
    CHECK_INT(rv_org_from_event_meta(&org, "acme", meta), RV_ERR_PROTOCOL);
    json_decref(meta);
}

static void test_budget_is_null_until_something_was_recorded(void)
{
    redisReply nil = {.type = REDIS_REPLY_NIL};
    redisReply rem = {.type = REDIS_REPLY_STRING, .str = "12", .len = 2};
    redisReply junk = {.type = REDIS_REPLY_STRING, .str = "x", .len = 1};
    redisReply *none[] = {&nil, &nil, &nil};
    redisReply *some[] = {&rem, &junk, &nil};
    redisReply arr = {
        .type = REDIS_REPLY_ARRAY, .elements = 3, .element = none};
    json_t *b = rv_org_budget_json(&arr);
    CHECK(json_is_null(b));
    json_decref(b);
    arr.element = some;
    b = rv_org_budget_json(&arr);
    char *text = json_dumps(b, JSON_COMPACT);
    CHECK_STR(text, "{\"remaining\":12,\"limit\":null,\"resetAt\":null}");
    free(text);
    json_decref(b);
    CHECK(json_is_null(rv_org_budget_json(NULL)));
}

int main(void)
{
    RUN(test_owner_logins_follow_githubs_rules);
    RUN(test_spec_validation_names_what_is_wrong);
    RUN(test_event_meta_renders_the_contract_shape);
    RUN(test_budget_is_null_until_something_was_recorded);
    return rvt_done();
}

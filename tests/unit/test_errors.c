/* The error codes: every code has its own name and sentence, the sync codes
 * keep the names users see, and the Lua scripts list every code of the C
 * enum under the same number. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/util.h"
#include "rvtest.h"

static void test_every_code_has_a_distinct_name_and_sentence(void)
{
    for (int i = 0; i < RV_ERR__COUNT; i++) {
        const char *name = rv_errname(i), *text = rv_strerror(i);
        CHECK(name && *name);
        CHECK(text && *text);
        /* "internal" also names unknown codes, so a code missing from the
         * table would pass as RV_ERR_INTERNAL but for this. */
        CHECK(i == RV_ERR_INTERNAL || strcmp(name, "internal") != 0);
        for (const char *p = name; p && *p; p++)
            CHECK(islower((unsigned char)*p) || *p == '_');
        for (int j = 0; j < i; j++) {
            CHECK(strcmp(name, rv_errname(j)) != 0);
            CHECK(strcmp(text, rv_strerror(j)) != 0);
        }
    }
}

static void test_names_match_the_json_spelling(void)
{
    CHECK_STR(rv_errname(RV_OK), "ok");
    CHECK_STR(rv_errname(RV_ERR_NOT_FOUND), "not_found");
    CHECK_STR(rv_errname(RV_ERR_NO_GITHUB), "no_github");
    CHECK_STR(rv_errname(RV_ERR_STALE_JOB), "stale_job");
    CHECK_STR(rv_errname(RV_ERR_TOO_LARGE), "too_large");
    CHECK_STR(rv_errname(RV_ERR_LEASE_LOST), "lease_lost");
    CHECK_STR(rv_errname(RV_ERR_SHUTDOWN), "shutdown");
}

/* The `code` of branchSyncError and prSyncError: the contract and
 * docs/reliability.md promise these spellings. */
static void test_sync_codes_keep_the_names_users_see(void)
{
    static const struct {
        int code;
        const char *name;
    } sync[] = {
        {RV_ERR_NOT_FOUND, "not_found"},
        {RV_ERR_GIT, "git"},
        {RV_ERR_TIMEOUT, "timeout"},
        {RV_ERR_URL_NOT_ALLOWED, "url_not_allowed"},
        {RV_ERR_UNREACHABLE, "unreachable"},
        {RV_ERR_AUTH_FAILED, "auth_failed"},
        {RV_ERR_BAD_REMOTE, "bad_remote"},
        {RV_ERR_CANCELLED, "cancelled"},
        {RV_ERR_NO_DEFAULT_BRANCH, "no_default_branch"},
        {RV_ERR_RATE_LIMITED, "rate_limited"},
        {RV_ERR_UNAUTHORIZED, "unauthorized"},
        {RV_ERR_GITHUB_UNAVAILABLE, "github_unavailable"},
        {RV_ERR_BAD_RESPONSE, "bad_response"},
        {RV_ERR_BAD_REQUEST, "bad_request"},
        {RV_ERR_INTERNAL, "internal"},
        {RV_ERR_WORKER_LOST, "worker_lost"},
    };
    for (size_t i = 0; i < sizeof(sync) / sizeof(sync[0]); i++)
        CHECK_STR(rv_errname(sync[i].code), sync[i].name);
}

static void test_unknown_codes_get_a_generic_name_and_sentence(void)
{
    int unknown[] = {-1, RV_ERR__COUNT, 1000, -2147483647 - 1};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        CHECK_STR(rv_errname(unknown[i]), "internal");
        CHECK_STR(rv_strerror(unknown[i]), "unknown error");
    }
}

/* "RV_ERR_NOT_FOUND" for "not_found", "RV_OK" for "ok"; static buffer. */
static const char *c_constant(int code)
{
    static char buf[64];
    if (code == RV_OK)
        return "RV_OK";
    int n = snprintf(buf, sizeof(buf), "RV_ERR_%s", rv_errname(code));
    for (int i = 7; i < n; i++)
        buf[i] = (char)toupper((unsigned char)buf[i]);
    return buf;
}

static void test_lua_codes_list_every_code_of_the_c_enum(void)
{
    const char *path = RV_SOURCE_DIR "/lua/includes/codes.lua";
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f)
        return;
    char line[256];
    bool seen[RV_ERR__COUNT] = {false};
    while (fgets(line, sizeof(line), f)) {
        char name[64], value[32];
        if (sscanf(line, " local %63[A-Z_] = %31[0-9]", name, value) != 2)
            continue;
        if (strncmp(name, "RV_", 3) != 0)
            continue;
        int64_t v;
        CHECK(rv_parse_i64(value, 0, 1000, &v) == 0);
        int found = -1;
        for (int i = 0; i < RV_ERR__COUNT; i++)
            if (strcmp(c_constant(i), name) == 0)
                found = i;
        if (found < 0)
            fprintf(stderr, "codes.lua names %s, which errors.h lacks\n", name);
        CHECK(found >= 0);
        CHECK_INT(v, found);
        if (found >= 0) {
            CHECK(!seen[found]);
            seen[found] = true;
        }
    }
    fclose(f);
    /* One list: every code of errors.h is in codes.lua too. */
    for (int i = 0; i < RV_ERR__COUNT; i++) {
        if (!seen[i])
            fprintf(stderr, "codes.lua lacks %s\n", c_constant(i));
        CHECK(seen[i]);
    }
}

int main(void)
{
    RUN(test_every_code_has_a_distinct_name_and_sentence);
    RUN(test_names_match_the_json_spelling);
    RUN(test_unknown_codes_get_a_generic_name_and_sentence);
    RUN(test_sync_codes_keep_the_names_users_see);
    RUN(test_lua_codes_list_every_code_of_the_c_enum);
    return rvt_done();
}

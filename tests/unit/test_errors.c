/* The error codes: every code has its own name and sentence, and the Lua
 * scripts use the same numbers as the C enum. */
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
        CHECK(strcmp(name, "internal") != 0);
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

static void test_lua_codes_equal_the_c_enum(void)
{
    const char *path = RV_SOURCE_DIR "/lua/includes/codes.lua";
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f)
        return;
    char line[256];
    int seen = 0;
    bool has_ok = false;
    while (fgets(line, sizeof(line), f)) {
        char name[64], value[32];
        if (sscanf(line, " local %63[A-Z_] = %31[0-9]", name, value) != 2)
            continue;
        if (strncmp(name, "RV_", 3) != 0)
            continue;
        int64_t v;
        CHECK(rv_parse_i64(value, 0, 1000, &v) == 0);
        seen++;
        has_ok |= strcmp(name, "RV_OK") == 0;
        int found = -1;
        for (int i = 0; i < RV_ERR__COUNT; i++)
            if (strcmp(c_constant(i), name) == 0)
                found = i;
        if (found < 0)
            fprintf(stderr, "codes.lua names %s, which errors.h lacks\n",
                    name);
        CHECK(found >= 0);
        CHECK_INT(v, found);
    }
    fclose(f);
    CHECK(seen >= 2); /* the file was read, not silently skipped */
    CHECK(has_ok);
}

int main(void)
{
    RUN(test_every_code_has_a_distinct_name_and_sentence);
    RUN(test_names_match_the_json_spelling);
    RUN(test_unknown_codes_get_a_generic_name_and_sentence);
    RUN(test_lua_codes_equal_the_c_enum);
    return rvt_done();
}

/* util.c: ids, names, URLs, credential stripping, times, numbers, job ids,
 * constant-time comparison. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>

#include "common/util.h"
#include "rvtest.h"

static void test_repo_id_accepts_only_the_documented_pattern(void)
{
    char id[RV_REPO_ID_MAX + 2];
    memset(id, 'a', sizeof(id));
    id[RV_REPO_ID_MAX] = '\0';
    CHECK(rv_repo_id_valid(id)); /* 100 characters */
    id[RV_REPO_ID_MAX] = 'a';
    id[RV_REPO_ID_MAX + 1] = '\0';
    CHECK(!rv_repo_id_valid(id)); /* 101 */

    CHECK(rv_repo_id_valid("w"));
    CHECK(rv_repo_id_valid("widgets"));
    CHECK(rv_repo_id_valid("A1.b_c-d"));
    CHECK(rv_repo_id_valid("9lives"));
    CHECK(!rv_repo_id_valid(NULL));
    CHECK(!rv_repo_id_valid(""));
    CHECK(!rv_repo_id_valid(".hidden"));
    CHECK(!rv_repo_id_valid("-x"));
    CHECK(!rv_repo_id_valid("_x"));
    CHECK(!rv_repo_id_valid(".."));
    CHECK(!rv_repo_id_valid("a/b"));
    CHECK(!rv_repo_id_valid("a/../b"));
    CHECK(!rv_repo_id_valid("a b"));
    CHECK(!rv_repo_id_valid("a{b}"));    /* would break the hash tag */
    CHECK(!rv_repo_id_valid("a:b"));
    CHECK(!rv_repo_id_valid("caf\xc3\xa9")); /* "café" */
    CHECK(!rv_repo_id_valid("\xc3\xa9t\xc3\xa9"));
    CHECK(!rv_repo_id_valid("a\nb"));
}

static void test_github_names_are_owner_slash_name(void)
{
    CHECK(rv_github_name_valid("acme/widgets"));
    CHECK(rv_github_name_valid("Acme-Co/my_repo.js"));
    CHECK(rv_github_name_valid("a/.github"));
    CHECK(!rv_github_name_valid(NULL));
    CHECK(!rv_github_name_valid(""));
    CHECK(!rv_github_name_valid("acme"));
    CHECK(!rv_github_name_valid("acme/"));
    CHECK(!rv_github_name_valid("/widgets"));
    CHECK(!rv_github_name_valid("acme/widgets/x"));
    CHECK(!rv_github_name_valid("acme/.."));
    CHECK(!rv_github_name_valid("../widgets"));
    CHECK(!rv_github_name_valid("acme/wid gets"));
    CHECK(!rv_github_name_valid("acme/caf\xc3\xa9"));
    char long_name[300];
    memset(long_name, 'a', sizeof(long_name));
    long_name[3] = '/';
    long_name[sizeof(long_name) - 1] = '\0';
    CHECK(!rv_github_name_valid(long_name));
}

/* The host of a URL, as the worker decides where a token may go: past
 * the authority's last '@', as rv_url_strip_credentials reads it. */
static void test_url_host_is_read_past_the_last_at(void)
{
    static const char *const cases[][2] = {
        {"https://github.com/o/r.git", "github.com"},
        {"https://x@github.com:443/o/r", "github.com"},
        {"https://a@evil.example@github.com/o/r", "github.com"},
        {"https://github.com@evil.example/o/r", "evil.example"},
        {"https://[::1]:8443/api", "[::1]"},
        {"git://h?x", "h"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *host = NULL;
        size_t len = 0;
        char got[64] = "";
        CHECK(rv_url_host(cases[i][0], &host, &len));
        if (host && len < sizeof(got))
            memcpy(got, host, len);
        CHECK_STR(got, cases[i][1]);
    }
    const char *host;
    size_t len;
    CHECK(!rv_url_host("https:///o/r", &host, &len));
    CHECK(!rv_url_host("https://u@:80/o", &host, &len));
    CHECK(!rv_url_host("https://[::1/o", &host, &len));
    CHECK(!rv_url_host("github.com/o/r", &host, &len));
    CHECK(!rv_url_host(NULL, &host, &len));
}

static void test_remote_urls_the_worker_can_fetch_are_accepted(void)
{
    CHECK(rv_remote_url_valid("https://github.com/acme/widgets.git"));
    CHECK(rv_remote_url_valid("http://git.local:8080/x"));
    CHECK(rv_remote_url_valid("ssh://git@github.com/acme/widgets.git"));
    CHECK(rv_remote_url_valid("git://git.kernel.org/pub/x.git"));
    CHECK(rv_remote_url_valid("git@github.com:acme/widgets.git"));
    CHECK(rv_remote_url_valid("github.com:acme/widgets.git"));
    CHECK(rv_remote_url_valid("file:///srv/git/x.git"));
    CHECK(rv_remote_url_valid("/srv/git/x.git"));
}

static void test_remote_urls_that_are_unsafe_or_malformed_are_refused(void)
{
    CHECK(!rv_remote_url_valid(NULL));
    CHECK(!rv_remote_url_valid(""));
    CHECK(!rv_remote_url_valid("https://"));
    CHECK(!rv_remote_url_valid("https:///path"));
    CHECK(!rv_remote_url_valid("ssh://git@/path"));
    CHECK(!rv_remote_url_valid("relative/path"));
    CHECK(!rv_remote_url_valid("-oProxyCommand=evil:x"));
    CHECK(!rv_remote_url_valid("--upload-pack=touch /tmp/x"));
    CHECK(!rv_remote_url_valid("https://github.com/a\nb"));
    CHECK(!rv_remote_url_valid("https://github.com/a\x7f"));
    CHECK(!rv_remote_url_valid("ftp://host/x"));
    CHECK(!rv_remote_url_valid("file://relative"));
    CHECK(!rv_remote_url_valid(":path"));
    CHECK(!rv_remote_url_valid("host:"));
    /* Credentials in the URL: users set GITHUB_TOKEN instead. */
    CHECK(!rv_remote_url_valid("https://user:pass@github.com/a/b"));
    CHECK(!rv_remote_url_valid("https://ghp_abc123@github.com/a/b"));
    CHECK(!rv_remote_url_valid("ssh://git:pw@github.com/a/b"));
    char *big = malloc(2100);
    CHECK(big != NULL);
    if (big) {
        memcpy(big, "https://h/", 10);
        memset(big + 10, 'a', 2100 - 11);
        big[2099] = '\0';
        CHECK(!rv_remote_url_valid(big));
        big[2048] = '\0';
        CHECK(rv_remote_url_valid(big));
        free(big);
    }
}

static const char *stripped(const char *url)
{
    static char buf[256];
    CHECK_INT(rv_url_strip_credentials(url, buf, sizeof(buf)), 0);
    return buf;
}

static void test_credentials_are_stripped_and_ssh_users_kept(void)
{
    CHECK_STR(stripped("https://user:pass@github.com/x"), "https://github.com/x");
    CHECK_STR(stripped("https://ghp_token@github.com/x"), "https://github.com/x");
    CHECK_STR(stripped("http://a:b@h:8080/x?y=1"), "http://h:8080/x?y=1");
    CHECK_STR(stripped("https://u:p@ss@h/x"), "https://h/x");
    CHECK_STR(stripped("ssh://git:pw@github.com/o/r"), "ssh://github.com/o/r");
    CHECK_STR(stripped("ssh://git@github.com/o/r.git"),
              "ssh://git@github.com/o/r.git");
    CHECK_STR(stripped("git@github.com:o/r.git"), "git@github.com:o/r.git");
    CHECK_STR(stripped("https://github.com/a@b"), "https://github.com/a@b");
    CHECK_STR(stripped("/srv/git/x"), "/srv/git/x");

    char small[12];
    CHECK_INT(rv_url_strip_credentials("https://a:b@github.com/x", small,
                                       sizeof(small)), -1);
    CHECK_STR(small, ""); /* never a cut URL that may hold part of a secret */
    CHECK_INT(rv_url_strip_credentials("https://github.com/long", small,
                                       sizeof(small)), -1);
}

static void test_iso8601_formats_utc_with_milliseconds(void)
{
    char buf[32];
    rv_iso8601(0, buf, sizeof(buf));
    CHECK_STR(buf, "1970-01-01T00:00:00.000Z");
    rv_iso8601(1795428000123LL, buf, sizeof(buf));
    CHECK_STR(buf, "2026-11-23T10:00:00.123Z");
    rv_iso8601(-1, buf, sizeof(buf));
    CHECK_STR(buf, "1969-12-31T23:59:59.999Z");
    rv_iso8601(951782400000LL, buf, sizeof(buf)); /* leap day 2000 */
    CHECK_STR(buf, "2000-02-29T00:00:00.000Z");
    /* Out-of-range values are clamped, never undefined behaviour. */
    rv_iso8601(INT64_MAX, buf, sizeof(buf));
    CHECK_STR(buf, "9999-12-31T23:59:59.999Z");
    rv_iso8601(INT64_MIN, buf, sizeof(buf));
    CHECK_STR(buf, "0001-01-01T00:00:00.000Z");
    char tiny[8];
    rv_iso8601(0, tiny, sizeof(tiny));
    CHECK_STR(tiny, "1970-01");
}

static void test_iso8601_parse_round_trips_and_refuses_junk(void)
{
    int64_t samples[] = {0, 1, 999, 1795428000123LL, -1, -86400001LL,
                         951782400000LL, 253402300799999LL};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        char buf[32];
        int64_t back = 42;
        rv_iso8601(samples[i], buf, sizeof(buf));
        CHECK_INT(rv_parse_iso8601(buf, &back), 0);
        CHECK_INT(back, samples[i]);
    }
    int64_t ms;
    CHECK_INT(rv_parse_iso8601("2026-11-23T10:00:00Z", &ms), 0);
    CHECK_INT(ms, 1795428000000LL);
    CHECK_INT(rv_parse_iso8601("2026-11-23T10:00:00.5Z", &ms), 0);
    CHECK_INT(ms, 1795428000500LL);
    CHECK_INT(rv_parse_iso8601("2026-11-23T10:00:00.123456Z", &ms), 0);
    CHECK_INT(ms, 1795428000123LL);
    const char *bad[] = {NULL, "", "2026", "2026-11-23", "2026-11-23T10:00:00",
                         "2026-11-23T10:00:00+01:00", "2026-11-23 10:00:00Z",
                         "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
                         "2026-04-31T00:00:00Z", "2026-11-23T24:00:00Z",
                         "2026-11-23T10:60:00Z", "2026-11-23T10:00:00.Z",
                         "2026-11-23T10:00:00ZZ", "x026-11-23T10:00:00Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_INT(rv_parse_iso8601(bad[i], &ms), -1);
}

static void test_parse_i64_is_strict_about_form_and_range(void)
{
    int64_t v = 0;
    CHECK_INT(rv_parse_i64("42", 0, 100, &v), 0);
    CHECK_INT(v, 42);
    CHECK_INT(rv_parse_i64("-5", -10, 10, &v), 0);
    CHECK_INT(v, -5);
    CHECK_INT(rv_parse_i64("9223372036854775807", INT64_MIN, INT64_MAX, &v), 0);
    CHECK_INT(v, INT64_MAX);
    CHECK_INT(rv_parse_i64("-9223372036854775808", INT64_MIN, INT64_MAX, &v),
              0);
    CHECK_INT(v, INT64_MIN);
    v = 7;
    CHECK_INT(rv_parse_i64("9223372036854775808", INT64_MIN, INT64_MAX, &v),
              -1);
    CHECK_INT(rv_parse_i64("-9223372036854775809", INT64_MIN, INT64_MAX, &v),
              -1);
    CHECK_INT(rv_parse_i64("99999999999999999999999", 0, INT64_MAX, &v), -1);
    CHECK_INT(rv_parse_i64("101", 0, 100, &v), -1);
    CHECK_INT(rv_parse_i64("-1", 0, 100, &v), -1);
    CHECK_INT(rv_parse_i64("12abc", 0, 100, &v), -1);
    CHECK_INT(rv_parse_i64("12 ", 0, 100, &v), -1);
    CHECK_INT(rv_parse_i64(" 12", 0, 100, &v), -1);
    CHECK_INT(rv_parse_i64("", 0, 100, &v), -1);
    CHECK_INT(rv_parse_i64("-", 0, 100, &v), -1);
    CHECK_INT(rv_parse_i64("0x10", 0, 100, &v), -1);
    CHECK_INT(rv_parse_i64("1.5", 0, 100, &v), -1);
    CHECK_INT(rv_parse_i64(NULL, 0, 100, &v), -1);
    CHECK_INT(v, 7); /* failures leave the output alone */
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_job_ids_are_unique_and_well_formed(void)
{
    enum { N = 10000 };
    char (*ids)[RV_JOB_ID_MAX] = malloc(sizeof(*ids) * N);
    CHECK(ids != NULL);
    if (!ids)
        return;
    for (int i = 0; i < N; i++) {
        rv_job_id_new(ids[i], RV_JOB_ID_MAX);
        const char *id = ids[i];
        CHECK(strncmp(id, "j-", 2) == 0);
        const char *dash = strchr(id + 2, '-');
        CHECK(dash != NULL);
        if (!dash)
            continue;
        CHECK(strlen(dash + 1) == 16);
        CHECK(strspn(id + 2, "0123456789abcdef") == (size_t)(dash - id - 2));
        CHECK(strspn(dash + 1, "0123456789abcdef") == 16);
    }
    qsort(ids, N, sizeof(*ids), compare_ids);
    int dups = 0;
    for (int i = 1; i < N; i++)
        dups += strcmp(ids[i - 1], ids[i]) == 0;
    CHECK_INT(dups, 0);
    free(ids);
}

static void test_strlcpy_always_terminates_and_reports_truncation(void)
{
    char buf[4];
    CHECK_INT(rv_strlcpy(buf, "abc", sizeof(buf)), 0);
    CHECK_STR(buf, "abc");
    CHECK_INT(rv_strlcpy(buf, "abcd", sizeof(buf)), -1);
    CHECK_STR(buf, "abc");
    CHECK_INT(rv_strlcpy(buf, "", sizeof(buf)), 0);
    CHECK_STR(buf, "");
    CHECK_INT(rv_strlcpy(buf, "x", 0), -1);
}

/* rv_utf8_truncate(in) must give want, which jansson (what failSync's
 * and the API's JSON go through) accepts. */
static bool utf8_cut_is(const char *in, const char *want)
{
    char buf[64];
    rv_strlcpy(buf, in, sizeof(buf));
    size_t n = rv_utf8_truncate(buf);
    json_t *j = json_string(buf);
    bool ok = j && n == strlen(want) && strcmp(buf, want) == 0;
    json_decref(j);
    return ok;
}

static void test_utf8_truncate_keeps_valid_text_and_cuts_at_the_first_bad_byte(void)
{
    CHECK(utf8_cut_is("", ""));
    CHECK(utf8_cut_is("h\xc3\xa9llo \xe2\x9c\xa8 \xe6\x97\xa5 \xf0\x9f\x9a\x80",
                      "h\xc3\xa9llo \xe2\x9c\xa8 \xe6\x97\xa5 \xf0\x9f\x9a\x80"));
    /* Half a character at the end, as a cut by bytes leaves it. */
    CHECK(utf8_cut_is("ab\xc3", "ab"));
    CHECK(utf8_cut_is("ab\xe6\x97", "ab"));
    CHECK(utf8_cut_is("ab\xf0\x9f\x9a", "ab"));
    /* What jansson's error text quotes: a lead byte and then more text. */
    CHECK(utf8_cut_is("near '\"x\\\xc3'", "near '\"x\\"));
    CHECK(utf8_cut_is("a\xc3\xa9\xff b", "a\xc3\xa9"));
    CHECK(utf8_cut_is("\x80" "abc", ""));
    /* Forms jansson refuses: overlong, surrogate, past U+10FFFF. */
    CHECK(utf8_cut_is("x\xc0\xaf", "x"));
    CHECK(utf8_cut_is("x\xe0\x80\xaf", "x"));
    CHECK(utf8_cut_is("x\xed\xa0\x80", "x"));
    CHECK(utf8_cut_is("x\xf4\x90\x80\x80", "x"));
    CHECK(utf8_cut_is("x\xf4\x8f\xbf\xbf", "x\xf4\x8f\xbf\xbf"));
}

/* A byte limit falls back to the start of the character it splits. */
static void test_utf8_boundary_never_splits_a_character(void)
{
    const char *s = "a\xc3\xa9\xe2\x9c\xa8z"; /* a, é, ✨, z */
    CHECK_INT(rv_utf8_boundary(s, 0), 0);
    CHECK_INT(rv_utf8_boundary(s, 1), 1);
    CHECK_INT(rv_utf8_boundary(s, 2), 1); /* inside é */
    CHECK_INT(rv_utf8_boundary(s, 3), 3);
    CHECK_INT(rv_utf8_boundary(s, 4), 3); /* inside ✨ */
    CHECK_INT(rv_utf8_boundary(s, 5), 3);
    CHECK_INT(rv_utf8_boundary(s, 6), 6);
    CHECK_INT(rv_utf8_boundary(s, 7), 7); /* the end */
}

static void test_mkdirs_makes_every_missing_parent(void)
{
    char *tmp = rvt_tmpdir("rv-mkdirs");
    CHECK(tmp != NULL);
    if (!tmp)
        return;
    char path[600], file[600];
    snprintf(path, sizeof(path), "%s/a/b/c", tmp);
    CHECK_INT(rv_mkdirs(path), 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK_INT(rv_mkdirs(path), 0); /* already there */
    snprintf(file, sizeof(file), "%s/a/file", tmp);
    FILE *f = fopen(file, "w");
    if (f)
        fclose(f);
    snprintf(path, sizeof(path), "%s/a/file/d", tmp);
    CHECK_INT(rv_mkdirs(path), -1); /* a file is in the way */
    rvt_rmrf(tmp);
    free(tmp);
}

static void test_kinds_are_branches_and_prs(void)
{
    CHECK(rv_kind_valid("branches"));
    CHECK(rv_kind_valid("prs"));
    CHECK(!rv_kind_valid("all"));
    CHECK(!rv_kind_valid("Branches"));
    CHECK(!rv_kind_valid(""));
    CHECK(!rv_kind_valid(NULL));
}

static void test_clocks_move_forward(void)
{
    int64_t now = rv_now_ms(), mono = rv_mono_ms();
    CHECK(now > 1700000000000LL); /* after Nov 2023 */
    rvt_sleep_ms(20);
    CHECK(rv_mono_ms() - mono >= 15);
    CHECK(rv_now_ms() >= now);
}

int main(void)
{
    RUN(test_repo_id_accepts_only_the_documented_pattern);
    RUN(test_github_names_are_owner_slash_name);
    RUN(test_url_host_is_read_past_the_last_at);
    RUN(test_remote_urls_the_worker_can_fetch_are_accepted);
    RUN(test_remote_urls_that_are_unsafe_or_malformed_are_refused);
    RUN(test_credentials_are_stripped_and_ssh_users_kept);
    RUN(test_iso8601_formats_utc_with_milliseconds);
    RUN(test_iso8601_parse_round_trips_and_refuses_junk);
    RUN(test_parse_i64_is_strict_about_form_and_range);
    RUN(test_job_ids_are_unique_and_well_formed);
    RUN(test_strlcpy_always_terminates_and_reports_truncation);
    RUN(test_mkdirs_makes_every_missing_parent);
    RUN(test_utf8_truncate_keeps_valid_text_and_cuts_at_the_first_bad_byte);
    RUN(test_utf8_boundary_never_splits_a_character);
    RUN(test_kinds_are_branches_and_prs);
    RUN(test_clocks_move_forward);
    return rvt_done();
}

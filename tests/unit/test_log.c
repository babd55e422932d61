/* log.c: one JSON object per line, level filtering, secrets never written,
 * any bytes still give valid JSON. Output is captured in a temp file. */
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "rvtest.h"

static char capture_path[512];
static int capture_fd = -1;

/* Sends log output to a fresh temp file. */
static void capture_start(void)
{
    snprintf(capture_path, sizeof(capture_path), "%s/rvlog-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    capture_fd = mkstemp(capture_path);
    CHECK(capture_fd >= 0);
    rv_log_set_fd(capture_fd);
}

/* Restores stderr and returns everything written (malloc'd; the caller
 * frees it). */
static char *capture_stop(void)
{
    rv_log_set_fd(-1);
    char *text = NULL;
    if (capture_fd < 0)
        return strdup("");
    off_t size = lseek(capture_fd, 0, SEEK_END);
    text = calloc(1, (size_t)size + 1);
    if (text && size > 0 && pread(capture_fd, text, (size_t)size, 0) != size)
        text[0] = '\0';
    close(capture_fd);
    unlink(capture_path);
    capture_fd = -1;
    return text;
}

/* Parses each line as a JSON object into lines[] (new references); checks
 * every line parses. Returns the count. */
static int parse_lines(char *text, json_t **lines, int max)
{
    int n = 0;
    char *save = NULL;
    CHECK(text[0] == '\0' || text[strlen(text) - 1] == '\n');
    for (char *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        json_error_t error;
        json_t *j = json_loads(line, JSON_ALLOW_NUL, &error);
        if (!j)
            fprintf(stderr, "not JSON: %s (%s)\n", line, error.text);
        CHECK(json_is_object(j));
        if (n < max)
            lines[n++] = j;
        else
            json_decref(j);
    }
    return n;
}

static const char *field(json_t *line, const char *key)
{
    return json_string_value(json_object_get(line, key));
}

static void test_each_line_is_a_json_object_with_context(void)
{
    rv_log_min_level = RV_LOG_INFO;
    rv_log_set_process("test");
    capture_start();
    LOG(RV_LOG_INFO, "widgets", "j-1-abc", "sync done in %d ms", 12);
    LOG(RV_LOG_WARN, NULL, NULL, "no context");
    LOGF(RV_LOG_ERROR, "widgets", NULL,
         json_pack("{s:i, s:s, s:b}", "ms", 12, "kind", "prs", "ok", 0),
         "failed");
    char *text = capture_stop();
    json_t *lines[8];
    int n = parse_lines(text, lines, 8);
    CHECK_INT(n, 3);
    if (n == 3) {
        int64_t ts;
        CHECK_INT(rv_parse_iso8601(field(lines[0], "ts"), &ts), 0);
        CHECK(ts > rv_now_ms() - 60000 && ts <= rv_now_ms());
        CHECK_STR(field(lines[0], "level"), "info");
        CHECK_STR(field(lines[0], "proc"), "test");
        CHECK_STR(field(lines[0], "msg"), "sync done in 12 ms");
        CHECK_STR(field(lines[0], "repo"), "widgets");
        CHECK_STR(field(lines[0], "job"), "j-1-abc");
        CHECK_STR(field(lines[1], "level"), "warn");
        CHECK(json_object_get(lines[1], "repo") == NULL);
        CHECK(json_object_get(lines[1], "job") == NULL);
        CHECK_STR(field(lines[2], "level"), "error");
        CHECK_INT(json_integer_value(json_object_get(lines[2], "ms")), 12);
        CHECK_STR(field(lines[2], "kind"), "prs");
        CHECK(json_is_false(json_object_get(lines[2], "ok")));
    }
    for (int i = 0; i < n; i++)
        json_decref(lines[i]);
    free(text);
    rv_log_set_process(NULL);
}

static void test_fields_cannot_overwrite_the_message_or_context(void)
{
    capture_start();
    LOGF(RV_LOG_INFO, "widgets", NULL,
         json_pack("{s:s, s:s, s:s}", "msg", "forged", "level", "debug",
                   "repo", "other"),
         "real");
    char *text = capture_stop();
    json_t *lines[2];
    int n = parse_lines(text, lines, 2);
    CHECK_INT(n, 1);
    if (n == 1) {
        CHECK_STR(field(lines[0], "msg"), "real");
        CHECK_STR(field(lines[0], "level"), "info");
        CHECK_STR(field(lines[0], "repo"), "widgets");
        json_decref(lines[0]);
    }
    free(text);
}

static void test_levels_below_the_minimum_are_suppressed(void)
{
    rv_log_min_level = RV_LOG_INFO;
    capture_start();
    LOG(RV_LOG_DEBUG, NULL, NULL, "hidden debug");
    LOGF(RV_LOG_DEBUG, NULL, NULL, json_pack("{s:i}", "x", 1), "hidden too");
    LOG(RV_LOG_INFO, NULL, NULL, "shown info");
    rv_log_min_level = RV_LOG_ERROR;
    LOG(RV_LOG_WARN, NULL, NULL, "hidden warn");
    LOG(RV_LOG_ERROR, NULL, NULL, "shown error");
    rv_log_min_level = RV_LOG_DEBUG;
    LOG(RV_LOG_DEBUG, NULL, NULL, "shown debug");
    rv_log_min_level = RV_LOG_INFO;
    char *text = capture_stop();
    CHECK(strstr(text, "hidden") == NULL);
    json_t *lines[8];
    int n = parse_lines(text, lines, 8);
    CHECK_INT(n, 3);
    for (int i = 0; i < n; i++)
        json_decref(lines[i]);
    free(text);
}

static void test_level_names_parse(void)
{
    rv_log_level l = RV_LOG_ERROR;
    CHECK_INT(rv_log_parse_level("debug", &l), 0);
    CHECK_INT(l, RV_LOG_DEBUG);
    CHECK_INT(rv_log_parse_level("warn", &l), 0);
    CHECK_INT(l, RV_LOG_WARN);
    CHECK_INT(rv_log_parse_level("error", &l), 0);
    CHECK_INT(l, RV_LOG_ERROR);
    CHECK_INT(rv_log_parse_level("info", &l), 0);
    CHECK_INT(l, RV_LOG_INFO);
    CHECK_INT(rv_log_parse_level("INFO", &l), -1);
    CHECK_INT(rv_log_parse_level("verbose", &l), -1);
    CHECK_INT(rv_log_parse_level("", &l), -1);
    CHECK_INT(rv_log_parse_level(NULL, &l), -1);
}

static void test_registered_secrets_never_reach_the_output(void)
{
    const char *token = "ghp_SuperSecretToken123";
    rv_log_clear_secrets();
    rv_log_add_secret(token);
    rv_log_add_secret("hunter2pw"); /* a Redis password, 9 bytes */
    rv_log_add_secret("abc");       /* too short to redact: ignored */
    capture_start();
    LOG(RV_LOG_ERROR, "widgets", NULL,
        "fetch https://x:%s@github.com/a failed; twice: %s%s", token, token,
        token);
    LOGF(RV_LOG_INFO, NULL, NULL,
         json_pack("{s:s, s:[s, {s:s}], s:s}", "url", "https://hunter2pw@h/x",
                   "nested", token, "deep", token, "plain", "abc"),
         "auth with hunter2pw");
    char *text = capture_stop();
    CHECK(strstr(text, token) == NULL);
    CHECK(strstr(text, "SuperSecret") == NULL);
    CHECK(strstr(text, "hunter2") == NULL);
    json_t *lines[4];
    int n = parse_lines(text, lines, 4);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_STR(field(lines[0], "msg"),
                  "fetch https://x:[redacted]@github.com/a failed; twice: "
                  "[redacted][redacted]");
        CHECK_STR(field(lines[1], "msg"), "auth with [redacted]");
        CHECK_STR(field(lines[1], "url"), "https://[redacted]@h/x");
        CHECK_STR(field(lines[1], "plain"), "abc");
    }
    for (int i = 0; i < n; i++)
        json_decref(lines[i]);
    free(text);
    rv_log_clear_secrets();
}

static void test_a_secret_past_the_message_limit_is_not_cut_in_half(void)
{
    /* A long message with the token at the very end: cutting before
     * redacting would print the token's first bytes. */
    const char *token = "ghp_TailTokenABCDEFGH";
    rv_log_clear_secrets();
    rv_log_add_secret(token);
    size_t pad = 70000;
    char *msg = malloc(pad + 1);
    CHECK(msg != NULL);
    if (!msg)
        return;
    memset(msg, 'x', pad);
    msg[pad] = '\0';
    capture_start();
    /* Around every limit a logger is likely to have. */
    const size_t limits[] = {1024, 2048, 4096, 8192, 16384, 65536};
    int logged = 0;
    for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++) {
        for (size_t cut = limits[l] - 24; cut < limits[l] + 2; cut += 2) {
            msg[cut] = '\0';
            LOG(RV_LOG_INFO, NULL, NULL, "%s%s", msg, token);
            msg[cut] = 'x';
            logged++;
        }
    }
    char *text = capture_stop();
    CHECK(strstr(text, "ghp_") == NULL);
    CHECK(strstr(text, "TailToken") == NULL);
    json_t *lines[128];
    int n = parse_lines(text, lines, 128);
    CHECK_INT(n, logged);
    for (int i = 0; i < n; i++)
        json_decref(lines[i]);
    free(text);
    free(msg);
    rv_log_clear_secrets();
}

static void test_a_longer_secret_containing_a_shorter_one_is_redacted_whole(void)
{
    rv_log_clear_secrets();
    rv_log_add_secret("pass");
    rv_log_add_secret("password1234");
    capture_start();
    LOG(RV_LOG_INFO, NULL, NULL, "pw=password1234 p=pass");
    char *text = capture_stop();
    CHECK(strstr(text, "1234") == NULL);
    CHECK(strstr(text, "pw=[redacted] p=[redacted]") != NULL);
    free(text);
    rv_log_clear_secrets();
}

static void test_redact_in_place_never_grows_the_string(void)
{
    rv_log_clear_secrets();
    rv_log_add_secret("s3cr");              /* 4 bytes: becomes "***" */
    rv_log_add_secret("long-secret-value"); /* becomes "[redacted]" */
    rv_log_add_secret("[redacted]");        /* must not loop forever */
    char buf[64] = "a s3cr b long-secret-value c s3crs3cr";
    size_t before = strlen(buf);
    rv_log_redact(buf);
    CHECK_STR(buf, "a *** b [redacted] c ******");
    CHECK(strlen(buf) <= before);
    char exact[] = "s3cr";
    rv_log_redact(exact);
    CHECK_STR(exact, "***");
    char nothing[] = "nothing to hide";
    rv_log_redact(nothing);
    CHECK_STR(nothing, "nothing to hide");
    rv_log_redact(NULL);
    rv_log_clear_secrets();
    char after_clear[] = "s3cr";
    rv_log_redact(after_clear);
    CHECK_STR(after_clear, "s3cr");
}

static void test_any_bytes_in_a_message_still_give_valid_json(void)
{
    capture_start();
    LOG(RV_LOG_INFO, "re\"po", NULL, "quote \" backslash \\ newline \n tab \t"
        " bell \a esc \x1b end");
    LOG(RV_LOG_INFO, NULL, "\xff\xfe", "bad utf8 \xc3\x28 and \xed\xa0\x80 "
        "and \xf8\x88\x80\x80\x80 and cut \xe2\x82");
    LOG(RV_LOG_INFO, NULL, NULL, "good utf8 caf\xc3\xa9 \xe2\x82\xac");
    /* A caller may build strings jansson did not check. */
    LOGF(RV_LOG_INFO, NULL, NULL,
         json_pack("{s:o, s:o}", "nul", json_stringn("a\0b", 3), "bin",
                   json_stringn_nocheck("x\xffy", 3)),
         "binary fields");
    char *text = capture_stop();
    /* One physical line per call: the newline is escaped. */
    int newlines = 0;
    for (const char *p = text; *p; p++)
        newlines += *p == '\n';
    CHECK_INT(newlines, 4);
    json_t *lines[8];
    int n = parse_lines(text, lines, 8);
    CHECK_INT(n, 4);
    if (n == 4) {
        CHECK_STR(field(lines[0], "msg"),
                  "quote \" backslash \\ newline \n tab \t bell \a esc \x1b "
                  "end");
        CHECK_STR(field(lines[0], "repo"), "re\"po");
        /* Invalid bytes become U+FFFD: visible, not silently dropped. */
        const char *m = field(lines[1], "msg");
        CHECK(m && strstr(m, "bad utf8 \xef\xbf\xbd(") != NULL);
        CHECK(m && strstr(m, "cut \xef\xbf\xbd") != NULL);
        CHECK_STR(field(lines[1], "job"), "\xef\xbf\xbd\xef\xbf\xbd");
        CHECK_STR(field(lines[2], "msg"),
                  "good utf8 caf\xc3\xa9 \xe2\x82\xac");
        json_t *nul = json_object_get(lines[3], "nul");
        CHECK_INT(json_string_length(nul), 3);
        CHECK(memcmp(json_string_value(nul), "a\0b", 3) == 0);
        CHECK_STR(field(lines[3], "bin"), "x\xef\xbf\xbdy");
    }
    for (int i = 0; i < n; i++)
        json_decref(lines[i]);
    free(text);
}

static void *log_many(void *arg)
{
    const char *who = arg;
    for (int i = 0; i < 300; i++)
        LOG(RV_LOG_INFO, who, NULL, "line %d %s", i,
            "padding padding padding padding padding padding padding");
    return NULL;
}

static void test_lines_from_several_threads_never_interleave(void)
{
    capture_start();
    pthread_t t[4];
    const char *names[4] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, log_many, (void *)names[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    char *text = capture_stop();
    static json_t *lines[1300];
    int n = parse_lines(text, lines, 1300);
    CHECK_INT(n, 1200);
    for (int i = 0; i < n; i++)
        json_decref(lines[i]);
    free(text);
}

int main(void)
{
    RUN(test_each_line_is_a_json_object_with_context);
    RUN(test_fields_cannot_overwrite_the_message_or_context);
    RUN(test_levels_below_the_minimum_are_suppressed);
    RUN(test_level_names_parse);
    RUN(test_registered_secrets_never_reach_the_output);
    RUN(test_a_secret_past_the_message_limit_is_not_cut_in_half);
    RUN(test_a_longer_secret_containing_a_shorter_one_is_redacted_whole);
    RUN(test_redact_in_place_never_grows_the_string);
    RUN(test_any_bytes_in_a_message_still_give_valid_json);
    RUN(test_lines_from_several_threads_never_interleave);
    return rvt_done();
}

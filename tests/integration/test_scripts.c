/*
 * The script loading machinery (common/scripts.c and the NOSCRIPT fallback
 * of common/rconn.c): SHA-1s that match Redis's, header comments that match
 * numkeys, EVALSHA that survives SCRIPT FLUSH over both connection flavours,
 * and rv_script_reply_code on real replies. What the scripts do is tested
 * elsewhere.
 */
#include <ctype.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/cmd.h"
#include "common/embedded.h"
#include "common/errors.h"
#include "common/log.h"
#include "common/rconn.h"
#include "common/scripts.h"
#include "common/util.h"
#include "rvtest.h"

static struct rvt_redis redis;

/* ---- helpers ---- */

static void flush_scripts(struct rv_rsync *rs)
{
    redisReply *rep = rv_rsync_command(rs, "SCRIPT FLUSH");
    CHECK(rep && rep->type == REDIS_REPLY_STATUS);
    if (rep)
        freeReplyObject(rep);
}

/* 1 if Redis has sha in its script cache, 0 if not, -1 on failure. */
static int script_exists(struct rv_rsync *rs, const char *sha)
{
    redisReply *rep = rv_rsync_command(rs, "SCRIPT EXISTS %s", sha);
    int v = -1;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1)
        v = (int)rep->element[0]->integer;
    if (rep)
        freeReplyObject(rep);
    return v;
}

/* A script the test makes up, with its SHA-1 computed independently of
 * scripts.c. */
static void make_script(struct rv_script *s, const char *name,
                        const char *text, int numkeys)
{
    memset(s, 0, sizeof(*s));
    s->name = name;
    s->text = text;
    s->len = strlen(text);
    s->numkeys = numkeys;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(text, s->len, md, &n, EVP_sha1(), NULL);
    for (unsigned i = 0; i < n && i < 20; i++)
        snprintf(s->sha + 2 * i, 3, "%02x", md[i]);
}

/* EVALSHA of a made-up script with one key and one argument. */
static void make_cmd(struct rv_cmd *cmd, const struct rv_script *s,
                     const char *key, const char *arg)
{
    rv_cmd_init(cmd);
    rv_cmd_add(cmd, "EVALSHA");
    rv_cmd_add(cmd, s->sha);
    rv_cmd_addi64(cmd, s->numkeys);
    rv_cmd_add(cmd, key);
    rv_cmd_add(cmd, arg);
    cmd->script = s;
}

/* Counts the distinct KEYS[n] lines of the header comment (between the
 * leading "--[[" and the first "]]"), and checks they are numbered 1..n.
 * Returns the count, or -1 if there is no header or the numbering has
 * gaps. */
static int header_keys(const char *text)
{
    const char *start = strstr(text, "--[[");
    if (!start || start != text + strspn(text, " \t\r\n"))
        return -1;
    const char *end = strstr(start, "]]");
    if (!end)
        return -1;
    bool seen[64] = {false};
    int max = 0, count = 0;
    const char *line = start;
    while (line && line < end) {
        const char *p = line + strspn(line, " \t");
        if (strncmp(p, "KEYS[", 5) == 0) {
            char *num_end = NULL;
            long n = strtol(p + 5, &num_end, 10);
            if (n < 1 || n >= 64 || !num_end || *num_end != ']')
                return -1;
            if (!seen[n]) {
                seen[n] = true;
                count++;
            }
            if (n > max)
                max = (int)n;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return count == max ? count : -1;
}

/* ---- tests ---- */

static void *get_from_thread(void *arg)
{
    (void)arg;
    return (void *)rv_script_get("claimJob");
}

/* Runs first, so the lazy table is built while threads race for it. */
static void test_script_table_is_built_once_across_threads(void)
{
    pthread_t t[8];
    void *got[8];
    for (int i = 0; i < 8; i++)
        CHECK_INT(pthread_create(&t[i], NULL, get_from_thread, NULL), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], &got[i]);
    const struct rv_script *s = rv_script_get("claimJob");
    CHECK(s != NULL);
    for (int i = 0; i < 8; i++)
        CHECK(got[i] == s);
    CHECK(rv_script_get("noSuchScript") == NULL);
    CHECK(rv_script_get("") == NULL);
}

static void test_every_script_sha_matches_script_load(void)
{
    struct rv_rsync rs;
    CHECK_INT(rvt_redis_connect(&redis, &rs), 0);
    CHECK(rv_embedded_scripts_count >= 10);
    for (size_t i = 0; i < rv_embedded_scripts_count; i++) {
        const struct rv_embedded_script *e = &rv_embedded_scripts[i];
        const struct rv_script *s = rv_script_get(e->name);
        CHECK(s != NULL);
        if (!s)
            continue;
        CHECK_STR(s->name, e->name);
        CHECK_INT(s->numkeys, e->numkeys);
        CHECK(s->text == e->text && s->len == e->len);
        CHECK_INT(strlen(s->sha), 40);
        for (int j = 0; j < 40; j++)
            CHECK(isxdigit((unsigned char)s->sha[j]) &&
                  !isupper((unsigned char)s->sha[j]));
        redisReply *rep = rv_rsync_command(&rs, "SCRIPT LOAD %b", s->text,
                                           s->len);
        CHECK(rep && rep->type == REDIS_REPLY_STRING);
        if (rep && rep->type == REDIS_REPLY_STRING)
            CHECK_STR(rep->str, s->sha);
        else if (rep && rep->type == REDIS_REPLY_ERROR)
            fprintf(stderr, "  %s does not load: %s\n", e->name, rep->str);
        if (rep)
            freeReplyObject(rep);
    }
    rv_rsync_close(&rs);
}

static void test_each_script_header_lists_as_many_keys_as_numkeys(void)
{
    for (size_t i = 0; i < rv_embedded_scripts_count; i++) {
        const struct rv_embedded_script *e = &rv_embedded_scripts[i];
        int keys = header_keys(e->text);
        if (keys != e->numkeys)
            fprintf(stderr, "  %s-%d.lua: header lists %d KEYS\n", e->name,
                    e->numkeys, keys);
        CHECK_INT(keys, e->numkeys);
    }
    /* The parser itself: a header that skips a number is caught. */
    CHECK_INT(header_keys("--[[\n  KEYS[1] a\n  KEYS[3] c\n]]\n"), -1);
    CHECK_INT(header_keys("--[[\n  KEYS[1] a\n  KEYS[2] b\n]]\nKEYS[3]\n"),
              2);
    CHECK_INT(header_keys("local x = 1\n"), -1);
}

static void test_sync_evalsha_reloads_after_script_flush(void)
{
    struct rv_rsync rs;
    CHECK_INT(rvt_redis_connect(&redis, &rs), 0);
    struct rv_script echo;
    make_script(&echo, "echo", "return {0, KEYS[1], ARGV[1]}", 1);
    flush_scripts(&rs);
    CHECK_INT(script_exists(&rs, echo.sha), 0);

    struct rv_cmd cmd;
    make_cmd(&cmd, &echo, "k", "hello");
    redisReply *rep = rv_rsync_run(&rs, &cmd);
    CHECK_INT(rv_script_reply_code(rep), RV_OK);
    CHECK(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3);
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3) {
        CHECK_STR(rep->element[1]->str, "k");
        CHECK_STR(rep->element[2]->str, "hello");
    }
    if (rep)
        freeReplyObject(rep);
    CHECK_INT(script_exists(&rs, echo.sha), 1);

    /* Without a script attached, NOSCRIPT is the caller's answer. */
    flush_scripts(&rs);
    cmd.script = NULL;
    rep = rv_rsync_run(&rs, &cmd);
    CHECK(rep && rep->type == REDIS_REPLY_ERROR &&
          strncmp(rep->str, "NOSCRIPT", 8) == 0);
    if (rep)
        freeReplyObject(rep);
    rv_cmd_free(&cmd);

    /* An embedded script through its generated builder runs after the
     * flush and is cached again. */
    const struct rv_script *real = rv_script_get("requestRefresh");
    CHECK(real != NULL);
    if (real) {
        rv_cmd_init(&cmd);
        CHECK_INT(rv_script_requestRefresh(&cmd,
                      &(struct rv_requestrefresh_args){
                          .meta_key = "rv:{probe}:meta",
                          .kind = "branches",
                          .job_id = "j-probe",
                          .payload = "payload", .payload_len = 7,
                          .is_front = false}),
                  RV_OK);
        rep = rv_rsync_run(&rs, &cmd);
        /* No such repo: the script ran and said so. */
        CHECK_INT(rv_script_reply_code(rep), RV_ERR_NOT_FOUND);
        if (rep)
            freeReplyObject(rep);
        CHECK_INT(script_exists(&rs, real->sha), 1);
        rv_cmd_free(&cmd);
    }
    rv_rsync_close(&rs);
}

static void test_sync_reload_reports_a_script_that_does_not_compile(void)
{
    struct rv_rsync rs;
    CHECK_INT(rvt_redis_connect(&redis, &rs), 0);
    struct rv_script broken;
    make_script(&broken, "broken", "return {0,", 1);
    struct rv_cmd cmd;
    make_cmd(&cmd, &broken, "k", "v");
    redisReply *rep = rv_rsync_run(&rs, &cmd);
    /* The compile error, not a second NOSCRIPT. */
    CHECK(rep && rep->type == REDIS_REPLY_ERROR);
    if (rep && rep->type == REDIS_REPLY_ERROR) {
        CHECK(strncmp(rep->str, "NOSCRIPT", 8) != 0);
        CHECK(strstr(rep->str, "compil") != NULL);
    }
    CHECK_INT(rv_script_reply_code(rep), RV_ERR_PROTOCOL);
    if (rep)
        freeReplyObject(rep);
    rv_cmd_free(&cmd);
    rv_rsync_close(&rs);
}

struct async_run {
    bool up;
    bool done;
    int calls;
    int code;
    char echoed[64];
};

static void on_state(struct rv_rasync *ra, bool connected, void *priv)
{
    (void)ra;
    struct async_run *run = priv;
    run->up = connected;
}

static void on_reply(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct async_run *run = priv;
    run->calls++;
    run->done = true;
    run->code = rv_script_reply_code(reply);
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
        reply->element[2]->str)
        snprintf(run->echoed, sizeof(run->echoed), "%s",
                 reply->element[2]->str);
}

static void loop_until(struct event_base *base, const bool *cond, int max_ms)
{
    int64_t deadline = rv_mono_ms() + max_ms;
    while (!(cond && *cond) && rv_mono_ms() < deadline) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
}

static void test_async_evalsha_reloads_after_script_flush(void)
{
    struct rv_rsync rs;
    CHECK_INT(rvt_redis_connect(&redis, &rs), 0);
    struct rv_script echo;
    make_script(&echo, "echo2", "return {0, KEYS[1], ARGV[1] .. '!'}", 1);
    flush_scripts(&rs);

    struct event_base *base = event_base_new();
    struct async_run run = {0};
    struct rv_rasync *ra = rv_rasync_new(base, &redis.addr, on_state, &run);
    loop_until(base, &run.up, 3000);
    CHECK(run.up);

    struct rv_cmd cmd;
    make_cmd(&cmd, &echo, "k", "async");
    CHECK_INT(rv_rasync_run(ra, &cmd, on_reply, &run), RV_OK);
    loop_until(base, &run.done, 3000);
    loop_until(base, NULL, 100);
    CHECK_INT(run.calls, 1);
    CHECK_INT(run.code, RV_OK);
    CHECK_STR(run.echoed, "async!");
    CHECK_INT(script_exists(&rs, echo.sha), 1);

    /* A script that does not compile: one callback, with the error. */
    struct rv_script broken;
    make_script(&broken, "broken2", "return {0,,}", 1);
    struct async_run bad = {0};
    make_cmd(&cmd, &broken, "k", "v");
    CHECK_INT(rv_rasync_run(ra, &cmd, on_reply, &bad), RV_OK);
    loop_until(base, &bad.done, 3000);
    loop_until(base, NULL, 100);
    CHECK_INT(bad.calls, 1);
    CHECK_INT(bad.code, RV_ERR_PROTOCOL);

    rv_rasync_free(ra);
    event_base_free(base);
    rv_rsync_close(&rs);
}

/* The EVAL reply of body on a fresh connection (caller frees). */
static redisReply *eval(struct rv_rsync *rs, const char *body)
{
    return rv_rsync_command(rs, "EVAL %s 0", body);
}

static void test_reply_code_reads_integer_and_digit_string_heads(void)
{
    struct rv_rsync rs;
    CHECK_INT(rvt_redis_connect(&redis, &rs), 0);
    static const struct {
        const char *body;
        int code;
    } cases[] = {
        {"return {0}", RV_OK},
        {"return {3, 'x'}", RV_ERR_NOT_FOUND},
        {"return {'7', 'x'}", RV_ERR_STALE_JOB},
        {"return {'12'}", RV_ERR_IO},
        {"return {'', 1}", RV_ERR_PROTOCOL},
        {"return {'3x'}", RV_ERR_PROTOCOL},
        {"return {'-1'}", RV_ERR_PROTOCOL},
        {"return {-1}", RV_ERR_PROTOCOL},
        {"return {999}", RV_ERR_PROTOCOL},
        {"return {'ok'}", RV_ERR_PROTOCOL},
        {"return {}", RV_ERR_PROTOCOL},
        {"return 0", RV_ERR_PROTOCOL},
        {"return 'x'", RV_ERR_PROTOCOL},
        {"return {{0}}", RV_ERR_PROTOCOL},
        {"return redis.status_reply('5')", RV_ERR_PROTOCOL},
        {"return redis.error_reply('boom')", RV_ERR_PROTOCOL},
        {"error('a Lua runtime error')", RV_ERR_PROTOCOL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        redisReply *rep = eval(&rs, cases[i].body);
        CHECK(rep != NULL);
        int code = rv_script_reply_code(rep);
        if (code != cases[i].code)
            fprintf(stderr, "  %s\n", cases[i].body);
        CHECK_INT(code, cases[i].code);
        if (rep)
            freeReplyObject(rep);
    }
    CHECK_INT(rv_script_reply_code(NULL), RV_ERR_REDIS);
    rv_rsync_close(&rs);
}

static void test_lua_runtime_error_is_logged_at_error_level(void)
{
    struct rv_rsync rs;
    CHECK_INT(rvt_redis_connect(&redis, &rs), 0);
    char *dir = rvt_tmpdir("rvtest-scripts");
    char path[600];
    snprintf(path, sizeof(path), "%s/log", dir ? dir : "/tmp");
    FILE *f = fopen(path, "w+");
    CHECK(f != NULL);
    if (!f) {
        free(dir);
        rv_rsync_close(&rs);
        return;
    }
    rv_log_set_fd(fileno(f));
    redisReply *rep = eval(&rs, "error('kaboom-in-lua')");
    CHECK_INT(rv_script_reply_code(rep), RV_ERR_PROTOCOL);
    if (rep)
        freeReplyObject(rep);
    rv_log_set_fd(-1);
    char buf[2048] = "";
    rewind(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    CHECK(strstr(buf, "kaboom-in-lua") != NULL);
    CHECK(strstr(buf, "\"level\":\"error\"") != NULL);
    rvt_rmrf(dir);
    free(dir);
    rv_rsync_close(&rs);
}

int main(void)
{
    rv_log_min_level = RV_LOG_WARN;
    RUN(test_script_table_is_built_once_across_threads);
    if (rvt_redis_start(&redis, NULL) != 0) {
        fprintf(stderr, "cannot start redis-server\n");
        return 1;
    }
    RUN(test_every_script_sha_matches_script_load);
    RUN(test_each_script_header_lists_as_many_keys_as_numkeys);
    RUN(test_sync_evalsha_reloads_after_script_flush);
    RUN(test_sync_reload_reports_a_script_that_does_not_compile);
    RUN(test_async_evalsha_reloads_after_script_flush);
    RUN(test_reply_code_reads_integer_and_digit_string_heads);
    RUN(test_lua_runtime_error_is_logged_at_error_level);
    rvt_redis_stop(&redis);
    return rvt_done();
}

/* config.c: defaults, environment, flags (which win), validation messages
 * that name the variable and its flag, secrets read from files, --help, the
 * export to children, and stale-after. */
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/errors.h"
#include "common/log.h"
#include "rvtest.h"

/* Every variable of CONTRACT.md and config.h. */
static const char *const all_vars[] = {
    "REPOVIEW_REDIS_URL",      "REPOVIEW_LISTEN",
    "REPOVIEW_DATA_DIR",       "REPOVIEW_SYNC_INTERVAL",
    "REPOVIEW_STALE_AFTER",    "REPOVIEW_GITHUB_API",
    "REPOVIEW_GITHUB_GRAPHQL", "GITHUB_TOKEN",
    "REPOVIEW_WEBHOOK_SECRET", "REPOVIEW_API_TOKEN",
    "REPOVIEW_LEASE_SECONDS",  "REPOVIEW_LOG",
    "REPOVIEW_MAX_ATTEMPTS",   "REPOVIEW_MAX_BRANCHES",
    "REPOVIEW_FETCH_TIMEOUT",  "REPOVIEW_GITHUB_TIMEOUT",
    "REPOVIEW_GITHUB_MAX_PAGES", "REPOVIEW_GITHUB_MAX_CONCURRENCY",
    "REPOVIEW_MAX_CLIENTS",
    "REPOVIEW_SSE_MAX_BUFFER", "REPOVIEW_CORS_ORIGINS",
    "REPOVIEW_SHUTDOWN_GRACE", "REPOVIEW_IO_TIMEOUT",
    "REPOVIEW_ALLOWED_HOSTS",  "REPOVIEW_MAX_CLIENTS_PER_IP",
    "REPOVIEW_KEEPALIVE_TIMEOUT", "REPOVIEW_MAX_BODY_MEMORY",
    "REPOVIEW_MAX_STREAMS_PER_IP",
    "REPOVIEW_ALLOWED_SCHEMES", "REPOVIEW_ALLOW_LOCAL_PATHS",
    "REPOVIEW_ALLOW_PRIVATE_NETWORKS", "REPOVIEW_ALLOWED_HOSTS_REMOTE",
    "REPOVIEW_BLOCKED_HOSTS_REMOTE", "REPOVIEW_TOKENS_FILE",
    "REPOVIEW_READ_OPEN",      "REPOVIEW_METRICS_TOKEN",
    "REPOVIEW_SESSION_SECRET", "REPOVIEW_GITHUB_APP_ID",
    "REPOVIEW_GITHUB_APP_KEY_FILE", "REPOVIEW_ORG_SYNC_INTERVAL",
    "GITHUB_TOKEN_FILE", "REPOVIEW_WEBHOOK_SECRET_FILE",
    "REPOVIEW_API_TOKEN_FILE", "REPOVIEW_REDIS_URL_FILE",
    "REPOVIEW_METRICS_TOKEN_FILE", "REPOVIEW_SESSION_SECRET_FILE",
};
#define NVARS (sizeof(all_vars) / sizeof(all_vars[0]))

/* REPOVIEW_REDIS_URL -> --redis-url, GITHUB_TOKEN -> --github-token. */
static void flag_of(const char *env, char *buf, size_t size)
{
    if (strncmp(env, "REPOVIEW_", 9) == 0)
        env += 9;
    size_t n = 0;
    buf[n++] = '-';
    buf[n++] = '-';
    for (; *env && n + 1 < size; env++)
        buf[n++] = *env == '_' ? '-' : (char)tolower((unsigned char)*env);
    buf[n] = '\0';
}

static void clear_env(void)
{
    for (size_t i = 0; i < NVARS; i++)
        unsetenv(all_vars[i]);
}

/* Loads with argv = {"prog", args..., NULL}; fills err. */
static int load(struct rv_config *cfg, char **args, int nargs, int *next,
                char *err, size_t errlen)
{
    char *argv[16] = {"prog"};
    for (int i = 0; i < nargs && i < 14; i++)
        argv[i + 1] = args[i];
    return rv_config_load(cfg, nargs + 1, argv, next, err, errlen);
}

static void test_defaults_follow_the_contract(void)
{
    clear_env();
    struct rv_config cfg;
    char err[256] = "";
    int next = -1;
    CHECK_INT(load(&cfg, NULL, 0, &next, err, sizeof(err)), RV_OK);
    CHECK_INT(next, 1);
    CHECK_STR(cfg.redis_url, "redis://127.0.0.1:6379/0");
    CHECK_STR(cfg.listen, "127.0.0.1:8080");
    CHECK_STR(cfg.data_dir, "./var");
    CHECK_INT(cfg.sync_interval, 300);
    CHECK_INT(cfg.org_sync_interval, 3600);
    CHECK_INT(cfg.stale_after, 0);
    CHECK_STR(cfg.github_api, "https://api.github.com");
    CHECK_STR(cfg.github_graphql, "");
    CHECK_STR(cfg.github_token, "");
    CHECK_STR(cfg.webhook_secret, "");
    CHECK_STR(cfg.api_token, "");
    CHECK_INT(cfg.lease_seconds, 30);
    CHECK_INT(cfg.log_level, RV_LOG_INFO);
    CHECK_INT(cfg.max_attempts, 3);
    CHECK_INT(cfg.max_branches, 5000);
    CHECK_INT(cfg.fetch_timeout, 300);
    CHECK_INT(cfg.github_timeout, 30);
    CHECK_INT(cfg.github_max_pages, 50);
    CHECK_INT(cfg.github_max_concurrency, 10);
    CHECK_INT(cfg.max_clients, 20000);
    CHECK_INT(cfg.sse_max_buffer, 262144);
    CHECK_INT(cfg.io_timeout, 30);
    CHECK_INT(cfg.max_clients_per_ip, 256);
    CHECK_INT(cfg.keepalive_timeout, 75);
    CHECK_INT(cfg.max_body_memory, 64 * 1024 * 1024);
    CHECK_INT(cfg.max_streams_per_ip, 64);
    CHECK_STR(cfg.cors_origins, "");
    CHECK_INT(cfg.shutdown_grace, 20);
    rv_config_free(&cfg);
    CHECK(cfg.redis_url == NULL); /* free clears, so a double free is safe */
    rv_config_free(&cfg);
}

static void test_environment_overrides_defaults(void)
{
    clear_env();
    setenv("REPOVIEW_REDIS_URL", "unix:///tmp/r.sock?db=3", 1);
    setenv("REPOVIEW_LISTEN", "0.0.0.0:9090", 1);
    setenv("REPOVIEW_SYNC_INTERVAL", "60", 1);
    setenv("REPOVIEW_STALE_AFTER", "900", 1);
    setenv("REPOVIEW_GITHUB_API", "https://ghe.example.com/api/v3", 1);
    setenv("REPOVIEW_GITHUB_GRAPHQL", "https://ghe.example.com/api/graphql",
           1);
    setenv("GITHUB_TOKEN", "ghp_envtoken", 1);
    setenv("REPOVIEW_LOG", "debug", 1);
    setenv("REPOVIEW_LEASE_SECONDS", "5", 1);       /* the minimum */
    setenv("REPOVIEW_SSE_MAX_BUFFER", "67108864", 1); /* the maximum */
    setenv("REPOVIEW_CORS_ORIGINS", "https://a.example,https://b.example", 1);
    struct rv_config cfg;
    char err[256] = "";
    CHECK_INT(load(&cfg, NULL, 0, NULL, err, sizeof(err)), RV_OK);
    CHECK_STR(err, "");
    CHECK_STR(cfg.redis_url, "unix:///tmp/r.sock?db=3");
    CHECK_STR(cfg.listen, "0.0.0.0:9090");
    CHECK_INT(cfg.sync_interval, 60);
    CHECK_INT(cfg.stale_after, 900);
    CHECK_STR(cfg.github_api, "https://ghe.example.com/api/v3");
    CHECK_STR(cfg.github_graphql, "https://ghe.example.com/api/graphql");
    CHECK_STR(cfg.github_token, "ghp_envtoken");
    CHECK_INT(cfg.log_level, RV_LOG_DEBUG);
    CHECK_INT(cfg.lease_seconds, 5);
    CHECK_INT(cfg.sse_max_buffer, 67108864);
    CHECK_STR(cfg.cors_origins, "https://a.example,https://b.example");
    rv_config_free(&cfg);
    clear_env();
}

static void test_flags_beat_the_environment_in_both_forms(void)
{
    clear_env();
    setenv("REPOVIEW_SYNC_INTERVAL", "60", 1);
    setenv("REPOVIEW_LISTEN", "0.0.0.0:9090", 1);
    setenv("GITHUB_TOKEN", "from-env", 1);
    char *args[] = {"--sync-interval", "120", "--listen=127.0.0.1:1",
                    "--github-token=from-flag", "--log", "error"};
    struct rv_config cfg;
    char err[256] = "";
    int next = -1;
    CHECK_INT(load(&cfg, args, 6, &next, err, sizeof(err)), RV_OK);
    CHECK_INT(next, 7);
    CHECK_INT(cfg.sync_interval, 120);
    CHECK_STR(cfg.listen, "127.0.0.1:1");
    CHECK_STR(cfg.github_token, "from-flag");
    CHECK_INT(cfg.log_level, RV_LOG_ERROR);
    rv_config_free(&cfg);

    /* The later of two flags wins; "--x=" sets an empty value. */
    char *twice[] = {"--data-dir", "/a", "--data-dir=/b", "--cors-origins="};
    CHECK_INT(load(&cfg, twice, 4, &next, err, sizeof(err)), RV_OK);
    CHECK_STR(cfg.data_dir, "/b");
    CHECK_STR(cfg.cors_origins, "");
    rv_config_free(&cfg);
    clear_env();
}

static void test_parsing_stops_at_the_first_argument_that_is_not_a_flag(void)
{
    clear_env();
    struct rv_config cfg;
    char err[256] = "";
    int next = -1;
    char *cmd[] = {"--lease-seconds", "10", "add", "widgets", "--url", "x",
                   "--sync-interval", "20"};
    CHECK_INT(load(&cfg, cmd, 8, &next, err, sizeof(err)), RV_OK);
    CHECK_INT(next, 3); /* argv[3] == "add" */
    CHECK_INT(cfg.lease_seconds, 10);
    CHECK_INT(cfg.sync_interval, 300); /* after the command: not read */
    rv_config_free(&cfg);

    char *help[] = {"--help"};
    CHECK_INT(load(&cfg, help, 1, &next, err, sizeof(err)), RV_OK);
    CHECK_INT(next, 1);
    rv_config_free(&cfg);

    /* A flag that merely starts like a known one is not that flag. */
    char *prefix[] = {"--listenx=1", "--log"};
    CHECK_INT(load(&cfg, prefix, 2, &next, err, sizeof(err)), RV_OK);
    CHECK_INT(next, 1);
    rv_config_free(&cfg);
}

/* Loads with one flag and expects a refusal naming env and flag. */
static void expect_refused(const char *env, const char *value)
{
    char flag[64], arg[256], err[512] = "";
    flag_of(env, flag, sizeof(flag));
    snprintf(arg, sizeof(arg), "%s=%s", flag, value);
    char *args[] = {arg};
    struct rv_config cfg;
    int rc = load(&cfg, args, 1, NULL, err, sizeof(err));
    if (rc != RV_ERR_CONFIG)
        fprintf(stderr, "  %s accepted \"%s\"\n", flag, value);
    CHECK_INT(rc, RV_ERR_CONFIG);
    CHECK(strstr(err, env) != NULL);
    CHECK(strstr(err, flag) != NULL);

    /* The same value from the environment is refused the same way. */
    clear_env();
    setenv(env, value, 1);
    char err2[512] = "";
    CHECK_INT(load(&cfg, NULL, 0, NULL, err2, sizeof(err2)), RV_ERR_CONFIG);
    CHECK_STR(err2, err);
    clear_env();
}

static void test_invalid_values_are_refused_naming_variable_and_flag(void)
{
    clear_env();
    expect_refused("REPOVIEW_LEASE_SECONDS", "abc");
    expect_refused("REPOVIEW_LEASE_SECONDS", "4");
    expect_refused("REPOVIEW_LEASE_SECONDS", "3601");
    expect_refused("REPOVIEW_LEASE_SECONDS", "30s");
    expect_refused("REPOVIEW_LEASE_SECONDS", "");
    expect_refused("REPOVIEW_SYNC_INTERVAL", "9");
    expect_refused("REPOVIEW_SYNC_INTERVAL", "99999999999999999999");
    expect_refused("REPOVIEW_ORG_SYNC_INTERVAL", "59");
    expect_refused("REPOVIEW_ORG_SYNC_INTERVAL", "604801");
    expect_refused("REPOVIEW_STALE_AFTER", "-1");
    expect_refused("REPOVIEW_MAX_ATTEMPTS", "0");
    expect_refused("REPOVIEW_MAX_BRANCHES", "100001");
    expect_refused("REPOVIEW_FETCH_TIMEOUT", "1.5");
    expect_refused("REPOVIEW_GITHUB_TIMEOUT", "601");
    expect_refused("REPOVIEW_GITHUB_MAX_PAGES", "0");
    expect_refused("REPOVIEW_GITHUB_MAX_CONCURRENCY", "0");
    expect_refused("REPOVIEW_MAX_CLIENTS", "1000001");
    expect_refused("REPOVIEW_SSE_MAX_BUFFER", "4095");
    expect_refused("REPOVIEW_MAX_CLIENTS_PER_IP", "0");
    expect_refused("REPOVIEW_MAX_CLIENTS_PER_IP", "1000001");
    expect_refused("REPOVIEW_KEEPALIVE_TIMEOUT", "0");
    expect_refused("REPOVIEW_KEEPALIVE_TIMEOUT", "3601");
    expect_refused("REPOVIEW_MAX_BODY_MEMORY", "1048575");
    expect_refused("REPOVIEW_MAX_STREAMS_PER_IP", "0");
    expect_refused("REPOVIEW_SHUTDOWN_GRACE", "3601");
    expect_refused("REPOVIEW_LISTEN", "8080");
    expect_refused("REPOVIEW_LISTEN", "localhost:0");
    expect_refused("REPOVIEW_LISTEN", "localhost:65536");
    expect_refused("REPOVIEW_LISTEN", ":8080");
    expect_refused("REPOVIEW_LISTEN", "local host:80");
    expect_refused("REPOVIEW_REDIS_URL", "http://127.0.0.1:6379");
    expect_refused("REPOVIEW_REDIS_URL", "redis://host:notaport/0");
    expect_refused("REPOVIEW_REDIS_URL", "");
    expect_refused("REPOVIEW_LOG", "verbose");
    expect_refused("REPOVIEW_LOG", "");
    expect_refused("REPOVIEW_GITHUB_API", "api.github.com");
    expect_refused("REPOVIEW_GITHUB_API", "ftp://api.github.com");
    expect_refused("REPOVIEW_GITHUB_API", "https://");
    expect_refused("REPOVIEW_GITHUB_API", "");
    expect_refused("REPOVIEW_GITHUB_GRAPHQL", "graphql");

    /* The documented message, word for word. */
    char err[256] = "";
    char *args[] = {"--lease-seconds", "abc"};
    struct rv_config cfg;
    CHECK_INT(load(&cfg, args, 2, NULL, err, sizeof(err)), RV_ERR_CONFIG);
    CHECK_STR(err, "REPOVIEW_LEASE_SECONDS (--lease-seconds): \"abc\" is not "
                   "a whole number in 5..3600");
    /* A flag with no value. */
    char *dangling[] = {"--lease-seconds"};
    CHECK_INT(load(&cfg, dangling, 1, NULL, err, sizeof(err)), RV_ERR_CONFIG);
    CHECK(strstr(err, "--lease-seconds") != NULL);
}

static void test_errors_never_show_the_redis_password(void)
{
    clear_env();
    char err[512] = "";
    char *args[] = {"--redis-url=redis://u:topsecretpw@host:bad/0"};
    struct rv_config cfg;
    CHECK_INT(load(&cfg, args, 1, NULL, err, sizeof(err)), RV_ERR_CONFIG);
    CHECK(strstr(err, "REPOVIEW_REDIS_URL") != NULL);
    CHECK(strstr(err, "topsecretpw") == NULL);
}

static char *help_text(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL);
    if (!f)
        return strdup("");
    rv_config_print_help(f);
    fclose(f);
    return text;
}

static void test_help_lists_every_variable_and_hides_secret_values(void)
{
    clear_env();
    setenv("GITHUB_TOKEN", "ghp_helptoken123", 1);
    setenv("REPOVIEW_API_TOKEN", "apitoken-value", 1);
    char *text = help_text();
    for (size_t i = 0; i < NVARS; i++) {
        char flag[64];
        flag_of(all_vars[i], flag, sizeof(flag));
        if (!strstr(text, all_vars[i]))
            fprintf(stderr, "  help lacks %s\n", all_vars[i]);
        CHECK(strstr(text, all_vars[i]) != NULL);
        CHECK(strstr(text, flag) != NULL);
    }
    CHECK(strstr(text, "ghp_helptoken123") == NULL);
    CHECK(strstr(text, "apitoken-value") == NULL);
    CHECK(strstr(text, "(set)") != NULL);
    CHECK(strstr(text, "(unset)") != NULL); /* the webhook secret */
    CHECK(strstr(text, "5..3600") != NULL); /* ranges are shown */
    CHECK(strstr(text, "redis://127.0.0.1:6379/0") != NULL);
    free(text);
    clear_env();
}

/* The URL policy's settings: closed defaults, booleans spelled either
 * way, and a bad value refused at start-up with the setting named. */
static void test_url_policy_settings_default_closed_and_are_checked(void)
{
    clear_env();
    struct rv_config cfg;
    char err[256] = "";
    int next = -1;
    CHECK_INT(load(&cfg, NULL, 0, &next, err, sizeof(err)), RV_OK);
    CHECK_STR(cfg.allowed_schemes, "https,ssh,git");
    CHECK_STR(cfg.allow_local_paths, "");
    CHECK_INT(cfg.allow_private_networks, 0);
    CHECK_STR(cfg.allowed_hosts_remote, "");
    CHECK_STR(cfg.blocked_hosts_remote, "");
    rv_config_free(&cfg);
    static const char *const yes[] = {"true", "TRUE", "yes", "1", "on"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        setenv("REPOVIEW_ALLOW_PRIVATE_NETWORKS", yes[i], 1);
        CHECK_INT(load(&cfg, NULL, 0, &next, err, sizeof(err)), RV_OK);
        CHECK_INT(cfg.allow_private_networks, 1);
        rv_config_free(&cfg);
    }
    setenv("REPOVIEW_ALLOW_PRIVATE_NETWORKS", "off", 1);
    CHECK_INT(load(&cfg, NULL, 0, &next, err, sizeof(err)), RV_OK);
    CHECK_INT(cfg.allow_private_networks, 0);
    rv_config_free(&cfg);
    static const char *const bad[][2] = {
        {"REPOVIEW_ALLOW_PRIVATE_NETWORKS", "maybe"},
        {"REPOVIEW_ALLOWED_SCHEMES", "https,ftp"},
        {"REPOVIEW_ALLOWED_SCHEMES", "file"},
        {"REPOVIEW_ALLOW_LOCAL_PATHS", "relative/dir"},
        {"REPOVIEW_ALLOWED_HOSTS_REMOTE", "exa mple.com"},
        {"REPOVIEW_BLOCKED_HOSTS_REMOTE", "*"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        clear_env();
        rvt_current = bad[i][1];
        setenv(bad[i][0], bad[i][1], 1);
        err[0] = '\0';
        CHECK_INT(load(&cfg, NULL, 0, &next, err, sizeof(err)),
                  RV_ERR_CONFIG);
        CHECK(strstr(err, bad[i][0]) != NULL);
    }
    rvt_current = NULL;
    clear_env();
}

static void test_github_app_settings_default_off_and_are_checked(void)
{
    struct rv_config cfg;
    char err[256];
    int next;
    clear_env();
    CHECK_INT(load(&cfg, NULL, 0, &next, err, sizeof(err)), RV_OK);
    CHECK_INT(cfg.github_app_id, 0);
    CHECK_STR(cfg.github_app_key_file, "");
    rv_config_free(&cfg);
    /* The key file is a path (the worker reads and checks the key), not a
     * secret setting of its own. */
    char *args[] = {"--github-app-id", "123456", "--github-app-key-file",
                    "/etc/repoview/app.pem"};
    CHECK_INT(load(&cfg, args, 4, &next, err, sizeof(err)), RV_OK);
    CHECK_INT(cfg.github_app_id, 123456);
    CHECK_STR(cfg.github_app_key_file, "/etc/repoview/app.pem");
    rv_config_free(&cfg);
    setenv("REPOVIEW_GITHUB_APP_ID", "-1", 1);
    err[0] = '\0';
    CHECK_INT(load(&cfg, NULL, 0, &next, err, sizeof(err)), RV_ERR_CONFIG);
    CHECK(strstr(err, "--github-app-id") != NULL);
    clear_env();
}

static void test_every_listed_flag_is_accepted(void)
{
    /* Whatever --help advertises, rv_config_load takes. */
    clear_env();
    char *text = help_text();
    int seen = 0;
    for (char *p = strstr(text, "  --"); p; p = strstr(p + 1, "  --")) {
        char flag[64];
        size_t n = strcspn(p + 2, " \n");
        if (n >= sizeof(flag))
            continue;
        memcpy(flag, p + 2, n);
        flag[n] = '\0';
        char *args[] = {flag, "x"};
        struct rv_config cfg;
        char err[256] = "";
        int next = -1;
        int rc = load(&cfg, args, 2, &next, err, sizeof(err));
        /* Either accepted (next past the value) or refused by validation
         * (an error naming the flag), never treated as a command. */
        if (rc == RV_OK) {
            CHECK_INT(next, 3);
            rv_config_free(&cfg);
        } else {
            CHECK(strstr(err, flag) != NULL);
        }
        seen++;
    }
    CHECK_INT(seen, (int)NVARS);
    free(text);
}

static void test_secrets_are_registered_with_the_logger(void)
{
    clear_env();
    char *args[] = {"--github-token=ghp_registered1",
                    "--webhook-secret=whsecret-xyz",
                    "--api-token=api-tok-123",
                    "--redis-url=redis://user:redispw99@127.0.0.1:6379/1"};
    struct rv_config cfg;
    char err[256] = "";
    CHECK_INT(load(&cfg, args, 4, NULL, err, sizeof(err)), RV_OK);
    rv_log_clear_secrets();
    rv_config_register_secrets(&cfg);
    char text[] = "ghp_registered1 whsecret-xyz api-tok-123 redispw99 user";
    rv_log_redact(text);
    CHECK(strstr(text, "registered") == NULL);
    CHECK(strstr(text, "whsecret") == NULL);
    CHECK(strstr(text, "api-tok") == NULL);
    CHECK(strstr(text, "redispw") == NULL);
    CHECK(strstr(text, "user") != NULL); /* the user name is no secret */
    rv_log_clear_secrets();
    rv_config_free(&cfg);
}

/* ---- secrets from files ---- */

static char *secret_dir;

/* Writes len bytes of content to secret_dir/name with mode; returns the
 * path (static, overwritten by the next call). */
static const char *secret_file(const char *name, const char *content,
                               size_t len, mode_t mode)
{
    static char path[600];
    snprintf(path, sizeof(path), "%s/%s", secret_dir, name);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(write(fd, content, len) == (ssize_t)len);
        close(fd);
    }
    CHECK(chmod(path, mode) == 0);
    return path;
}

/* The field of cfg that the secret env holds. */
static const char *secret_field(const struct rv_config *cfg, const char *env)
{
    if (!strcmp(env, "GITHUB_TOKEN"))
        return cfg->github_token;
    if (!strcmp(env, "REPOVIEW_WEBHOOK_SECRET"))
        return cfg->webhook_secret;
    if (!strcmp(env, "REPOVIEW_API_TOKEN"))
        return cfg->api_token;
    return cfg->redis_url;
}

static const char *const secret_vars[] = {
    "GITHUB_TOKEN", "REPOVIEW_WEBHOOK_SECRET", "REPOVIEW_API_TOKEN",
    "REPOVIEW_REDIS_URL"};
#define NSECRETS (sizeof(secret_vars) / sizeof(secret_vars[0]))

/* A value each secret accepts, and one that differs by a trailing byte. */
static const char *secret_value(const char *env)
{
    return !strcmp(env, "REPOVIEW_REDIS_URL")
               ? "redis://app:filepw-77Q@127.0.0.1:6390/2"
               : "filesecret-9Kx";
}

static void test_every_secret_reads_from_its_file_by_env_and_by_flag(void)
{
    for (size_t i = 0; i < NSECRETS; i++) {
        clear_env();
        rvt_current = secret_vars[i];
        const char *want = secret_value(secret_vars[i]);
        char content[256], fenv[96], fflag[96], arg[700];
        snprintf(content, sizeof(content), "%s\n", want);
        const char *path =
            secret_file("s", content, strlen(content), 0600);
        snprintf(fenv, sizeof(fenv), "%s_FILE", secret_vars[i]);
        flag_of(fenv, fflag, sizeof(fflag));
        struct rv_config cfg;
        char err[512] = "";

        setenv(fenv, path, 1);
        CHECK_INT(load(&cfg, NULL, 0, NULL, err, sizeof(err)), RV_OK);
        CHECK_STR(err, "");
        CHECK_STR(secret_field(&cfg, secret_vars[i]), want);
        rv_config_free(&cfg);
        unsetenv(fenv);

        /* Both flag spellings. */
        snprintf(arg, sizeof(arg), "%s=%s", fflag, path);
        char *eq[] = {arg};
        int next = -1;
        CHECK_INT(load(&cfg, eq, 1, &next, err, sizeof(err)), RV_OK);
        CHECK_INT(next, 2);
        CHECK_STR(secret_field(&cfg, secret_vars[i]), want);
        rv_config_free(&cfg);
        char *sep[] = {fflag, (char *)path, "list"};
        CHECK_INT(load(&cfg, sep, 3, &next, err, sizeof(err)), RV_OK);
        CHECK_INT(next, 3); /* "list" is the command */
        CHECK_STR(secret_field(&cfg, secret_vars[i]), want);

        /* What was read is a secret like any other: the logger hides it. */
        rv_log_clear_secrets();
        rv_config_register_secrets(&cfg);
        char text[128];
        snprintf(text, sizeof(text), "x %s y",
                 i == 3 ? "filepw-77Q" : "filesecret-9Kx");
        rv_log_redact(text);
        CHECK(strstr(text, "77Q") == NULL && strstr(text, "9Kx") == NULL);
        rv_log_clear_secrets();
        rv_config_free(&cfg);
    }
    rvt_current = NULL;
    clear_env();
}

static void test_a_secret_file_loses_exactly_one_trailing_newline(void)
{
    static const struct {
        const char *content, *want;
    } cases[] = {
        {"tok-abcd", "tok-abcd"},         {"tok-abcd\n", "tok-abcd"},
        {"tok-abcd\r\n", "tok-abcd"},     {"tok-abcd\n\n", "tok-abcd\n"},
        {"tok-abcd\r", "tok-abcd\r"},     {" tok-abcd \n", " tok-abcd "},
        {"line1\nline2\n", "line1\nline2"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        clear_env();
        rvt_current = cases[i].content;
        setenv("REPOVIEW_API_TOKEN_FILE",
               secret_file("t", cases[i].content, strlen(cases[i].content),
                           0600),
               1);
        struct rv_config cfg;
        char err[512] = "";
        CHECK_INT(load(&cfg, NULL, 0, NULL, err, sizeof(err)), RV_OK);
        if (err[0] == '\0') {
            CHECK_STR(cfg.api_token, cases[i].want);
            rv_config_free(&cfg);
        }
    }
    rvt_current = NULL;
    clear_env();
}

/* Loads with fenv=path in the environment and expects a refusal that
 * names fenv, its flag and path and never shows secret. Then the same by
 * flag. */
static void expect_file_refused(const char *fenv, const char *path,
                                const char *why, const char *secret)
{
    char fflag[96], arg[700], err[768] = "";
    flag_of(fenv, fflag, sizeof(fflag));
    struct rv_config cfg;
    rvt_current = why;
    clear_env();
    setenv(fenv, path, 1);
    CHECK_INT(load(&cfg, NULL, 0, NULL, err, sizeof(err)), RV_ERR_CONFIG);
    if (!strstr(err, why))
        fprintf(stderr, "  got: %s\n", err);
    CHECK(strstr(err, fenv) != NULL);
    CHECK(strstr(err, fflag) != NULL);
    CHECK(strstr(err, path) != NULL);
    CHECK(strstr(err, why) != NULL);
    if (secret)
        CHECK(strstr(err, secret) == NULL);
    clear_env();
    snprintf(arg, sizeof(arg), "%s=%s", fflag, path);
    char *args[] = {arg};
    char err2[768] = "";
    CHECK_INT(load(&cfg, args, 1, NULL, err2, sizeof(err2)), RV_ERR_CONFIG);
    CHECK_STR(err2, err);
    rvt_current = NULL;
}

static void test_bad_secret_files_are_refused_naming_variable_and_path(void)
{
    char missing[600];
    snprintf(missing, sizeof(missing), "%s/no-such-file", secret_dir);
    expect_file_refused("GITHUB_TOKEN_FILE", missing, "No such file", NULL);
    char notdir[600];
    snprintf(notdir, sizeof(notdir), "%s/x/y",
             secret_file("x", "a", 1, 0600));
    expect_file_refused("REPOVIEW_API_TOKEN_FILE", notdir, "cannot open",
                        NULL);
    if (geteuid() != 0) { /* root reads a file of mode 0 anyway */
        const char *locked = secret_file("locked", "lockedpw-1", 10, 0000);
        expect_file_refused("REPOVIEW_API_TOKEN_FILE", locked,
                            "Permission denied", "lockedpw");
    }
    expect_file_refused("REPOVIEW_WEBHOOK_SECRET_FILE", secret_dir,
                        "is a directory", NULL);
    expect_file_refused("REPOVIEW_WEBHOOK_SECRET_FILE",
                        secret_file("e", "", 0, 0600), "is empty", NULL);
    /* A lone newline is empty once it is dropped. */
    expect_file_refused("REPOVIEW_API_TOKEN_FILE",
                        secret_file("nl", "\r\n", 2, 0600), "is empty", NULL);
    expect_file_refused("GITHUB_TOKEN_FILE",
                        secret_file("nul", "nulpw-ab\0cd\n", 12, 0600),
                        "NUL byte", "nulpw");

    /* The cap is 64 KiB of content, its newline not counted. */
    size_t big = RV_CONFIG_FILE_MAX + 2;
    char *blob = malloc(big);
    CHECK(blob != NULL);
    if (blob) {
        memset(blob, 'k', big);
        blob[RV_CONFIG_FILE_MAX] = '\r';
        blob[RV_CONFIG_FILE_MAX + 1] = '\n';
        clear_env();
        setenv("REPOVIEW_API_TOKEN_FILE", secret_file("cap", blob, big, 0600),
               1);
        struct rv_config cfg;
        char err[512] = "";
        CHECK_INT(load(&cfg, NULL, 0, NULL, err, sizeof(err)), RV_OK);
        if (err[0] == '\0') {
            CHECK_INT(strlen(cfg.api_token), RV_CONFIG_FILE_MAX);
            rv_config_free(&cfg);
        }
        memset(blob, 'k', big);
        expect_file_refused("REPOVIEW_API_TOKEN_FILE",
                            secret_file("big", blob, RV_CONFIG_FILE_MAX + 1,
                                        0600),
                            "larger than 65536 bytes", "kkkkkkkk");
        free(blob);
    }

    /* What is read is validated as the direct form, and the refusal shows
     * neither the URL's password nor the rest of the file. */
    const char *bad = "redis://u:urlfilepw-42@host:notaport/0\n";
    expect_file_refused("REPOVIEW_REDIS_URL_FILE",
                        secret_file("url", bad, strlen(bad), 0600),
                        "is refused", "urlfilepw");
    const char *http = "http://127.0.0.1:6379\n";
    expect_file_refused("REPOVIEW_REDIS_URL_FILE",
                        secret_file("url", http, strlen(http), 0600),
                        "is refused", NULL);
    clear_env();
}

static void test_a_secret_and_its_file_together_are_refused(void)
{
    const char *path = secret_file("both", "fromfile-xyz\n", 13, 0600);
    char fflagarg[700];
    for (size_t i = 0; i < NSECRETS; i++) {
        const char *env = secret_vars[i];
        const char *direct = secret_value(env);
        char fenv[96], flag[96], fflag[96], directarg[300];
        snprintf(fenv, sizeof(fenv), "%s_FILE", env);
        flag_of(env, flag, sizeof(flag));
        flag_of(fenv, fflag, sizeof(fflag));
        snprintf(directarg, sizeof(directarg), "%s=%s", flag, direct);
        snprintf(fflagarg, sizeof(fflagarg), "%s=%s", fflag, path);
        /* env+env, env+flag, flag+env, flag+flag. */
        for (int how = 0; how < 4; how++) {
            clear_env();
            rvt_current = env;
            char *args[2];
            int n = 0;
            if (how & 1)
                args[n++] = directarg;
            else
                setenv(env, direct, 1);
            if (how & 2)
                args[n++] = fflagarg;
            else
                setenv(fenv, path, 1);
            struct rv_config cfg;
            char err[768] = "";
            CHECK_INT(load(&cfg, args, n, NULL, err, sizeof(err)),
                      RV_ERR_CONFIG);
            CHECK(strstr(err, env) != NULL);
            CHECK(strstr(err, fenv) != NULL);
            CHECK(strstr(err, path) != NULL);
            CHECK(strstr(err, "both") != NULL);
            CHECK(strstr(err, "fromfile") == NULL);
            CHECK(strstr(err, "filesecret") == NULL);
            CHECK(strstr(err, "filepw") == NULL);
        }
    }
    /* An empty direct form is no value, so the file alone counts (an env
     * file may carry `GITHUB_TOKEN=`); an empty file form is no file. */
    clear_env();
    rvt_current = "empty direct form";
    setenv("GITHUB_TOKEN", "", 1);
    setenv("GITHUB_TOKEN_FILE", path, 1);
    setenv("REPOVIEW_API_TOKEN", "direct-tok", 1);
    setenv("REPOVIEW_API_TOKEN_FILE", "", 1);
    struct rv_config cfg;
    char err[512] = "";
    CHECK_INT(load(&cfg, NULL, 0, NULL, err, sizeof(err)), RV_OK);
    if (!err[0]) {
        CHECK_STR(cfg.github_token, "fromfile-xyz");
        CHECK_STR(cfg.api_token, "direct-tok");
        rv_config_free(&cfg);
    }
    /* A file flag with no value names the file form. */
    char *dangling[] = {"--api-token-file"};
    CHECK_INT(load(&cfg, dangling, 1, NULL, err, sizeof(err)), RV_ERR_CONFIG);
    CHECK(strstr(err, "REPOVIEW_API_TOKEN_FILE (--api-token-file) needs a "
                      "value") != NULL);
    /* Two file flags: the later wins, as for every flag. */
    const char *other = secret_file("other", "second-file\n", 12, 0600);
    char second[700];
    snprintf(second, sizeof(second), "--github-token-file=%s", other);
    char *twice[] = {"--github-token-file", "/nonexistent/first", second};
    unsetenv("GITHUB_TOKEN_FILE");
    CHECK_INT(load(&cfg, twice, 3, NULL, err, sizeof(err)), RV_OK);
    if (!err[0]) {
        CHECK_STR(cfg.github_token, "second-file");
        rv_config_free(&cfg);
    }
    rvt_current = NULL;
    clear_env();
}

/* Runs load with the logger writing into a file; returns what it logged
 * (malloc'd) and the load's result in *rc. */
static char *logged_load(char **args, int nargs, int *rc)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/log.txt", secret_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    rv_log_set_fd(fd);
    struct rv_config cfg;
    char err[512] = "";
    *rc = load(&cfg, args, nargs, NULL, err, sizeof(err));
    if (*rc == RV_OK)
        rv_config_free(&cfg);
    rv_log_set_fd(-1);
    if (fd >= 0)
        close(fd);
    return rvt_slurp(path);
}

static void test_warnings_name_the_risk_but_never_the_secret(void)
{
    clear_env();
    int rc;
    /* A secret on the command line: ps shows it to everyone. */
    char *flag[] = {"--api-token=flagtok-5521"};
    char *log = logged_load(flag, 1, &rc);
    CHECK_INT(rc, RV_OK);
    CHECK(rvt_contains(log, "\"level\":\"warn\""));
    CHECK(rvt_contains(log, "REPOVIEW_API_TOKEN_FILE"));
    CHECK(rvt_contains(log, "(ps)"));
    CHECK(!rvt_contains(log, "flagtok"));
    free(log);
    char *pw[] = {"--redis-url=redis://:flagpw-8812@127.0.0.1:6379/0"};
    log = logged_load(pw, 1, &rc);
    CHECK(rvt_contains(log, "REPOVIEW_REDIS_URL_FILE"));
    CHECK(!rvt_contains(log, "flagpw"));
    free(log);
    /* No secret on the command line, nothing to warn about. */
    char *nopw[] = {"--redis-url=redis://127.0.0.1:6379/0", "--log=debug"};
    log = logged_load(nopw, 2, &rc);
    CHECK_INT(rc, RV_OK);
    CHECK_STR(log, "");
    free(log);
    setenv("REPOVIEW_API_TOKEN", "envtok-1234", 1);
    log = logged_load(NULL, 0, &rc);
    CHECK_STR(log, "");
    free(log);
    clear_env();

    /* A secret file others may read is used, with a warning naming it. */
    const char *open_file = secret_file("open", "openfile-tok\n", 13, 0644);
    char path[600];
    snprintf(path, sizeof(path), "%s", open_file);
    setenv("REPOVIEW_API_TOKEN_FILE", path, 1);
    log = logged_load(NULL, 0, &rc);
    CHECK_INT(rc, RV_OK);
    CHECK(rvt_contains(log, "REPOVIEW_API_TOKEN_FILE"));
    CHECK(rvt_contains(log, path));
    CHECK(rvt_contains(log, "others may read"));
    CHECK(!rvt_contains(log, "openfile"));
    free(log);
    CHECK(chmod(path, 0640) == 0);
    log = logged_load(NULL, 0, &rc);
    CHECK(rvt_contains(log, "group may read"));
    free(log);
    CHECK(chmod(path, 0600) == 0);
    log = logged_load(NULL, 0, &rc);
    CHECK_INT(rc, RV_OK);
    CHECK_STR(log, "");
    free(log);
    clear_env();
}

static void test_export_hands_children_the_same_settings_without_files(void)
{
    clear_env();
    const char *path = secret_file("exp", "exported-tok\n", 13, 0600);
    setenv("REPOVIEW_API_TOKEN_FILE", path, 1);
    setenv("REPOVIEW_SYNC_INTERVAL", "60", 1);
    char *args[] = {"--webhook-secret-file", (char *)path, "--log", "warn",
                    "--allow-private-networks=yes", "--lease-seconds=7",
                    "--cors-origins=https://a.example"};
    struct rv_config cfg, again;
    char err[512] = "";
    CHECK_INT(load(&cfg, args, 7, NULL, err, sizeof(err)), RV_OK);
    CHECK_INT(rv_config_export_env(&cfg), RV_OK);
    CHECK(getenv("REPOVIEW_API_TOKEN_FILE") == NULL);
    CHECK(getenv("REPOVIEW_WEBHOOK_SECRET_FILE") == NULL);
    CHECK_STR(getenv("REPOVIEW_API_TOKEN"), "exported-tok");
    CHECK_STR(getenv("REPOVIEW_LOG"), "warn");
    /* A child that reads only the environment sees what the parent had. */
    CHECK_INT(load(&again, NULL, 0, NULL, err, sizeof(err)), RV_OK);
    CHECK_STR(err, "");
    if (!err[0]) {
        CHECK_STR(again.api_token, "exported-tok");
        CHECK_STR(again.webhook_secret, "exported-tok");
        CHECK_INT(again.sync_interval, 60);
        CHECK_INT(again.lease_seconds, 7);
        CHECK_INT(again.log_level, RV_LOG_WARN);
        CHECK_INT(again.allow_private_networks, 1);
        CHECK_STR(again.cors_origins, "https://a.example");
        CHECK_STR(again.redis_url, cfg.redis_url);
        CHECK_STR(again.allowed_schemes, cfg.allowed_schemes);
        rv_config_free(&again);
    }
    rv_config_free(&cfg);
    clear_env();
}

static void test_stale_after_defaults_to_twice_the_interval(void)
{
    struct rv_config cfg = {.sync_interval = 300, .stale_after = 0};
    CHECK_INT(rv_config_stale_after(&cfg, 0), 600);
    CHECK_INT(rv_config_stale_after(&cfg, 60), 120);
    cfg.stale_after = 1000;
    CHECK_INT(rv_config_stale_after(&cfg, 60), 1000);
    CHECK_INT(rv_config_stale_after(&cfg, 0), 1000);
}

int main(void)
{
    RUN(test_defaults_follow_the_contract);
    RUN(test_environment_overrides_defaults);
    RUN(test_flags_beat_the_environment_in_both_forms);
    RUN(test_parsing_stops_at_the_first_argument_that_is_not_a_flag);
    RUN(test_invalid_values_are_refused_naming_variable_and_flag);
    RUN(test_errors_never_show_the_redis_password);
    RUN(test_help_lists_every_variable_and_hides_secret_values);
    RUN(test_every_listed_flag_is_accepted);
    RUN(test_github_app_settings_default_off_and_are_checked);
    RUN(test_url_policy_settings_default_closed_and_are_checked);
    RUN(test_secrets_are_registered_with_the_logger);
    secret_dir = rvt_tmpdir("rv-config");
    CHECK(secret_dir != NULL);
    if (secret_dir) {
        RUN(test_every_secret_reads_from_its_file_by_env_and_by_flag);
        RUN(test_a_secret_file_loses_exactly_one_trailing_newline);
        RUN(test_bad_secret_files_are_refused_naming_variable_and_path);
        RUN(test_a_secret_and_its_file_together_are_refused);
        RUN(test_warnings_name_the_risk_but_never_the_secret);
        RUN(test_export_hands_children_the_same_settings_without_files);
        rvt_rmrf(secret_dir);
        free(secret_dir);
    }
    RUN(test_stale_after_defaults_to_twice_the_interval);
    return rvt_done();
}

/* See config.h. */
#include "common/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/rconn.h"
#include "common/url.h"
#include "common/urlpolicy.h"
#include "common/util.h"

enum setting_type {
    SET_STRING,  /* any text */
    SET_SECRET,  /* text never printed, not even in errors */
    SET_INT,     /* whole number in [min, max] */
    SET_LEVEL,   /* log level */
    SET_URL,     /* http:// or https:// URL */
    SET_URL_OPT, /* as SET_URL, or empty */
    SET_LISTEN,  /* host:port */
    SET_REDIS,   /* a Redis URL as rv_redis_parse_url takes it (it may
                  * carry a password, so it is treated as a secret) */
    SET_BOOL,    /* true/false, yes/no, 1/0: stored as int64 1 or 0 */
};

struct setting {
    const char *env;  /* environment variable */
    const char *flag; /* the variable without REPOVIEW_, lower, '-' for '_' */
    enum setting_type type;
    int64_t min, max; /* SET_INT only */
    size_t offset;    /* of the field in struct rv_config */
    const char *def;  /* default, as text */
    const char *help;
};

#define F(field) offsetof(struct rv_config, field)

/* The one table: defaults, environment, flags, validation and --help. */
static const struct setting settings[] = {
    {"REPOVIEW_REDIS_URL", "--redis-url", SET_REDIS, 0, 0, F(redis_url),
     "redis://127.0.0.1:6379/0",
     "redis://[user:pass@]host:port[/db] or unix:///path/to.sock[?db=N]"},
    {"REPOVIEW_LISTEN", "--listen", SET_LISTEN, 0, 0, F(listen),
     "127.0.0.1:8080", "address the API listens on (host:port)"},
    {"REPOVIEW_DATA_DIR", "--data-dir", SET_STRING, 0, 0, F(data_dir),
     "./var", "worker mirrors and `repoview up`'s Redis data"},
    {"REPOVIEW_SYNC_INTERVAL", "--sync-interval", SET_INT, 10, 86400,
     F(sync_interval), "300", "seconds between background syncs of a repo"},
    {"REPOVIEW_ORG_SYNC_INTERVAL", "--org-sync-interval", SET_INT, 60, 604800,
     F(org_sync_interval), "3600", "seconds between syncs of an org's list"},
    {"REPOVIEW_STALE_AFTER", "--stale-after", SET_INT, 0, 604800,
     F(stale_after), "0",
     "seconds after which a projection is stale; 0 = twice the interval"},
    {"REPOVIEW_GITHUB_API", "--github-api", SET_URL, 0, 0, F(github_api),
     "https://api.github.com", "GitHub or GitHub Enterprise API base URL"},
    {"REPOVIEW_GITHUB_GRAPHQL", "--github-graphql", SET_URL_OPT, 0, 0,
     F(github_graphql), "",
     "GraphQL endpoint; empty = derived from the API URL"},
    {"GITHUB_TOKEN", "--github-token", SET_SECRET, 0, 0, F(github_token), "",
     "token for PR sync and HTTPS fetch; never logged or stored"},
    {"REPOVIEW_GITHUB_APP_ID", "--github-app-id", SET_INT, 0,
     9007199254740991, F(github_app_id), "0",
     "GitHub App id; with the key file, installation tokens; 0 = no App"},
    {"REPOVIEW_GITHUB_APP_KEY_FILE", "--github-app-key-file", SET_STRING, 0, 0,
     F(github_app_key_file), "", "the GitHub App's private key (PEM file)"},
    {"REPOVIEW_WEBHOOK_SECRET", "--webhook-secret", SET_SECRET, 0, 0,
     F(webhook_secret), "", "enables POST /v1/webhooks/github"},
    {"REPOVIEW_API_TOKEN", "--api-token", SET_SECRET, 0, 0, F(api_token), "",
     "an admin token (Authorization: Bearer <token>)"},
    {"REPOVIEW_LEASE_SECONDS", "--lease-seconds", SET_INT, 5, 3600,
     F(lease_seconds), "30",
     "a worker's job lease; a dead worker's job is retried after it lapses"},
    {"REPOVIEW_LOG", "--log", SET_LEVEL, 0, 0, F(log_level), "info",
     "log level: debug, info, warn or error"},
    {"REPOVIEW_MAX_ATTEMPTS", "--max-attempts", SET_INT, 1, 100,
     F(max_attempts), "3",
     "tries of a job whose worker died before it is dead-lettered"},
    {"REPOVIEW_MAX_BRANCHES", "--max-branches", SET_INT, 1, 100000,
     F(max_branches), "5000",
     "branch rows kept per repo; more are dropped and marked truncated"},
    {"REPOVIEW_FETCH_TIMEOUT", "--fetch-timeout", SET_INT, 5, 7200,
     F(fetch_timeout), "300", "seconds a clone or fetch may take"},
    {"REPOVIEW_GITHUB_TIMEOUT", "--github-timeout", SET_INT, 1, 600,
     F(github_timeout), "30", "seconds one GitHub request may take"},
    {"REPOVIEW_GITHUB_MAX_PAGES", "--github-max-pages", SET_INT, 1, 1000,
     F(github_max_pages), "50", "pages of 100 pull requests read per sync"},
    {"REPOVIEW_GITHUB_MAX_CONCURRENCY", "--github-max-concurrency", SET_INT, 1,
     100, F(github_max_concurrency), "10",
     "GitHub requests at once per token, across all workers"},
    {"REPOVIEW_MAX_CLIENTS", "--max-clients", SET_INT, 1, 1000000,
     F(max_clients), "20000", "concurrent HTTP connections, SSE included"},
    {"REPOVIEW_IO_TIMEOUT", "--io-timeout", SET_INT, 1, 3600, F(io_timeout),
     "30",
     "seconds an HTTP connection may stay silent (a stalled request is "
     "closed)"},
    {"REPOVIEW_SSE_MAX_BUFFER", "--sse-max-buffer", SET_INT, 4096, 67108864,
     F(sse_max_buffer), "262144",
     "bytes of unsent SSE output before a slow client is dropped"},
    {"REPOVIEW_MAX_CLIENTS_PER_IP", "--max-clients-per-ip", SET_INT, 1,
     1000000, F(max_clients_per_ip), "256",
     "concurrent connections from one address; more are closed at accept"},
    {"REPOVIEW_KEEPALIVE_TIMEOUT", "--keepalive-timeout", SET_INT, 1, 3600,
     F(keepalive_timeout), "75",
     "seconds an idle keep-alive connection is kept for its next request"},
    {"REPOVIEW_MAX_BODY_MEMORY", "--max-body-memory", SET_INT, 1048576,
     17179869184, F(max_body_memory), "67108864",
     "bytes of request bodies held at once; past it a connection is closed"},
    {"REPOVIEW_MAX_STREAMS_PER_IP", "--max-streams-per-ip", SET_INT, 1,
     1000000, F(max_streams_per_ip), "64",
     "concurrent SSE streams from one address (429 past it)"},
    {"REPOVIEW_CORS_ORIGINS", "--cors-origins", SET_STRING, 0, 0,
     F(cors_origins), "",
     "comma-separated origins allowed to call the API from a browser"},
    {"REPOVIEW_SHUTDOWN_GRACE", "--shutdown-grace", SET_INT, 0, 3600,
     F(shutdown_grace), "20",
     "seconds a stopping worker may finish its job before handing it back"},
    {"REPOVIEW_ALLOWED_HOSTS", "--allowed-hosts", SET_STRING, 0, 0,
     F(allowed_hosts), "",
     "Host header values the API answers (421 otherwise); empty = the listen "
     "address, localhost, 127.0.0.1, [::1]; * = any"},
    {"REPOVIEW_ALLOWED_SCHEMES", "--allowed-schemes", SET_STRING, 0, 0,
     F(allowed_schemes), "https,ssh,git",
     "schemes a remote URL may use (https, http, ssh, git)"},
    {"REPOVIEW_ALLOW_LOCAL_PATHS", "--allow-local-paths", SET_STRING, 0, 0,
     F(allow_local_paths), "",
     "comma-separated directories file:// URLs and paths may point under; "
     "empty = none"},
    {"REPOVIEW_ALLOW_PRIVATE_NETWORKS", "--allow-private-networks", SET_BOOL,
     0, 0, F(allow_private_networks), "false",
     "allow remotes on loopback, private, link-local and other non-public "
     "addresses"},
    {"REPOVIEW_ALLOWED_HOSTS_REMOTE", "--allowed-hosts-remote", SET_STRING, 0,
     0, F(allowed_hosts_remote), "",
     "host patterns (github.com, *.example.com) that alone may be remotes"},
    {"REPOVIEW_BLOCKED_HOSTS_REMOTE", "--blocked-hosts-remote", SET_STRING, 0,
     0, F(blocked_hosts_remote), "", "host patterns never used as remotes"},
    {"REPOVIEW_TOKENS_FILE", "--tokens-file", SET_STRING, 0, 0,
     F(tokens_file), "",
     "file of tokens: sha256:<hex> read|write|admin [repo pattern ...]"},
    {"REPOVIEW_READ_OPEN", "--read-open", SET_BOOL, 0, 0, F(read_open),
     "false", "keep reads open to everyone while tokens are configured"},
    {"REPOVIEW_METRICS_TOKEN", "--metrics-token", SET_SECRET, 0, 0,
     F(metrics_token), "", "a bearer token that may read /metrics"},
    {"REPOVIEW_SESSION_SECRET", "--session-secret", SET_SECRET, 0, 0,
     F(session_secret), "",
     "keys dashboard sessions and stream tokens; empty = random per process"},
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* Longest variable or flag name, with room for the "_FILE" suffix. */
#define SETTING_NAME_MAX 96

/* Settings that hold a secret. Each of them can also be read from a file,
 * <env>_FILE or <flag>-file (GITHUB_TOKEN_FILE, --github-token-file), so
 * that a secret need not sit in the environment or, worse, on a command
 * line, which `ps` shows to every local user. A new row of a secret type
 * gets its file variant, its --help line and its wiping from this one
 * predicate; a secret that must only come from a file (a PEM key, say)
 * would be a SET_SECRET row whose direct form is simply not documented. */
static bool holds_secret(enum setting_type t)
{
    return t == SET_SECRET || t == SET_REDIS;
}

/* "<env>_FILE" into buf (SETTING_NAME_MAX bytes). */
static const char *file_env(const struct setting *s, char *buf)
{
    snprintf(buf, SETTING_NAME_MAX, "%s_FILE", s->env);
    return buf;
}

/* "<flag>-file" into buf (SETTING_NAME_MAX bytes). */
static const char *file_flag(const struct setting *s, char *buf)
{
    snprintf(buf, SETTING_NAME_MAX, "%s-file", s->flag);
    return buf;
}

/* Overwrites n bytes at p in a way the compiler may not drop, so a secret
 * read from a file does not linger in freed memory. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

static bool is_string_type(enum setting_type t)
{
    return t != SET_INT && t != SET_LEVEL && t != SET_BOOL;
}

static char **str_field(struct rv_config *cfg, const struct setting *s)
{
    return (char **)((char *)cfg + s->offset);
}

static bool listen_valid(const char *v)
{
    const char *colon = strrchr(v, ':');
    int64_t port;
    if (!colon || colon == v || rv_parse_i64(colon + 1, 1, 65535, &port) != 0)
        return false;
    for (const char *p = v; p < colon; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

/* An http:// or https:// URL with a host, as rv_url_parse reads it. */
static bool http_url_valid(const char *v)
{
    if (strncmp(v, "https://", 8) != 0 && strncmp(v, "http://", 7) != 0)
        return false;
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return false;
    struct rv_url u;
    bool ok = rv_url_parse(v, &u) == RV_URL_OK && u.host[0];
    rv_url_free(&u);
    return ok;
}

/* Validates value for s and stores it in cfg. On failure, err names the
 * variable, its flag and what is accepted (never a secret's value). */
static int apply(struct rv_config *cfg, const struct setting *s,
                 const char *value, char *err, size_t errlen)
{
    const char *shown = s->type == SET_SECRET ? "(hidden)" : value;
    switch (s->type) {
    case SET_INT: {
        int64_t v;
        if (rv_parse_i64(value, s->min, s->max, &v) != 0) {
            snprintf(err, errlen,
                     "%s (%s): \"%s\" is not a whole number in %lld..%lld",
                     s->env, s->flag, shown, (long long)s->min,
                     (long long)s->max);
            return RV_ERR_CONFIG;
        }
        *(int64_t *)((char *)cfg + s->offset) = v;
        return RV_OK;
    }
    case SET_BOOL: {
        static const char *const yes[] = {"true", "yes", "1", "on"};
        static const char *const no[] = {"false", "no", "0", "off", ""};
        int64_t v = -1;
        for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
            if (strcasecmp(value, yes[i]) == 0)
                v = 1;
        for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
            if (strcasecmp(value, no[i]) == 0)
                v = 0;
        if (v < 0) {
            snprintf(err, errlen, "%s (%s): \"%s\" is not true or false",
                     s->env, s->flag, shown);
            return RV_ERR_CONFIG;
        }
        *(int64_t *)((char *)cfg + s->offset) = v;
        return RV_OK;
    }
    case SET_LEVEL: {
        rv_log_level level;
        if (rv_log_parse_level(value, &level) != 0) {
            snprintf(err, errlen,
                     "%s (%s): \"%s\" is not one of debug, info, warn, error",
                     s->env, s->flag, shown);
            return RV_ERR_CONFIG;
        }
        *(rv_log_level *)((char *)cfg + s->offset) = level;
        return RV_OK;
    }
    case SET_URL_OPT:
        if (!*value)
            break;
        /* fall through */
    case SET_URL:
        if (!http_url_valid(value)) {
            snprintf(err, errlen,
                     "%s (%s): \"%s\" is not an http:// or https:// URL",
                     s->env, s->flag, shown);
            return RV_ERR_CONFIG;
        }
        break;
    case SET_LISTEN:
        if (!listen_valid(value)) {
            snprintf(err, errlen,
                     "%s (%s): \"%s\" is not host:port with a port in "
                     "1..65535",
                     s->env, s->flag, shown);
            return RV_ERR_CONFIG;
        }
        break;
    case SET_REDIS: {
        struct rv_redis_addr addr;
        char why[256] = "";
        /* rv_redis_parse_url keeps the password out of its message. */
        if (rv_redis_parse_url(value, &addr, why, sizeof(why)) != RV_OK) {
            snprintf(err, errlen, "%s (%s): %s", s->env, s->flag,
                     why[0] ? why : "not a Redis URL");
            return RV_ERR_CONFIG;
        }
        break;
    }
    case SET_STRING:
    case SET_SECRET:
        break;
    }
    char *copy = strdup(value);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return RV_ERR_NOMEM;
    }
    char **field = str_field(cfg, s);
    free(*field);
    *field = copy;
    return RV_OK;
}

/* The setting whose flag arg is ("--x" or "--x=v", or for a secret also
 * "--x-file" and "--x-file=path"), or NULL; *value is set to the text after
 * '=' or NULL, *is_file to whether it was the file variant. */
static const struct setting *find_flag(const char *arg, const char **value,
                                       bool *is_file)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        size_t n = strlen(settings[i].flag);
        if (strncmp(arg, settings[i].flag, n) != 0)
            continue;
        const char *rest = arg + n;
        *is_file = false;
        if (holds_secret(settings[i].type) && strncmp(rest, "-file", 5) == 0 &&
            (rest[5] == '\0' || rest[5] == '=')) {
            rest += 5;
            *is_file = true;
        }
        if (*rest == '\0' || *rest == '=') {
            *value = *rest == '=' ? rest + 1 : NULL;
            return &settings[i];
        }
    }
    return NULL;
}

/* Whether a Redis URL carries a password (an unparsable one is refused
 * elsewhere, so it counts as none here). */
static bool redis_url_has_password(const char *url)
{
    struct rv_redis_addr addr;
    char why[256];
    bool has = rv_redis_parse_url(url, &addr, why, sizeof(why)) == RV_OK &&
               addr.pass[0] != '\0';
    wipe(&addr, sizeof(addr));
    return has;
}

/* A secret given as a flag is readable by every local user (ps,
 * /proc/PID/cmdline): say so, once, without its value. */
static void warn_secret_flag(const struct setting *s, const char *value)
{
    if (!*value || (s->type == SET_REDIS && !redis_url_has_password(value)))
        return;
    char fflag[SETTING_NAME_MAX], fenv[SETTING_NAME_MAX];
    LOGF(RV_LOG_WARN, NULL, NULL,
         json_pack("{s:s,s:s}", "setting", s->env, "flag", s->flag),
         "%s was given on the command line, which every local user can read "
         "(ps); give it as %s (%s) or in the environment instead",
         s->flag, file_env(s, fenv), file_flag(s, fflag));
}

/* Reads the secret file at path for s and stores its content (less one
 * trailing "\n" or "\r\n") through apply, so it is validated like the
 * direct form. The file must exist, be readable, hold 1..RV_CONFIG_FILE_MAX
 * bytes after the strip and no NUL byte. Errors name the variable, its flag
 * and the path, never the content. A file that group or others may read is
 * accepted with a warning. */
static int apply_file(struct rv_config *cfg, const struct setting *s,
                      const char *path, char *err, size_t errlen)
{
    char fenv[SETTING_NAME_MAX], fflag[SETTING_NAME_MAX];
    file_env(s, fenv);
    file_flag(s, fflag);
    int rc = RV_ERR_CONFIG;
    /* Room for the cap, a "\r\n" after it and one byte more to see that the
     * file is too large; pipes (a shell's <(...)) are read to their end. */
    const size_t cap = RV_CONFIG_FILE_MAX + 3;
    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    char why[512] = "";
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "%s (%s): cannot open %s: %s", fenv, fflag, path,
                 strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s (%s): cannot stat %s: %s", fenv, fflag, path,
                 strerror(errno));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s (%s): %s is a directory, not a file", fenv,
                 fflag, path);
        goto out;
    }
    buf = malloc(cap);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        rc = RV_ERR_NOMEM;
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "%s (%s): cannot read %s: %s", fenv, fflag,
                     path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == cap)
            break;
    }
    if (len >= 2 && buf[len - 2] == '\r' && buf[len - 1] == '\n')
        len -= 2;
    else if (len >= 1 && buf[len - 1] == '\n')
        len -= 1;
    if (len > RV_CONFIG_FILE_MAX) {
        snprintf(err, errlen, "%s (%s): %s is larger than %d bytes", fenv,
                 fflag, path, RV_CONFIG_FILE_MAX);
        goto out;
    }
    if (len == 0) {
        snprintf(err, errlen, "%s (%s): %s is empty", fenv, fflag, path);
        goto out;
    }
    if (memchr(buf, '\0', len)) {
        snprintf(err, errlen, "%s (%s): %s contains a NUL byte", fenv, fflag,
                 path);
        goto out;
    }
    buf[len] = '\0';
    rc = apply(cfg, s, buf, why, sizeof(why));
    if (rc != RV_OK) {
        /* apply names the direct form; name the file instead. */
        char prefix[2 * SETTING_NAME_MAX];
        snprintf(prefix, sizeof(prefix), "%s (%s): ", s->env, s->flag);
        const char *reason = why;
        if (strncmp(why, prefix, strlen(prefix)) == 0)
            reason += strlen(prefix);
        if (rc == RV_ERR_NOMEM)
            snprintf(err, errlen, "out of memory");
        else
            snprintf(err, errlen, "%s (%s): the content of %s is refused: %s",
                     fenv, fflag, path, reason);
        goto out;
    }
    if (S_ISREG(st.st_mode) && (st.st_mode & (S_IRGRP | S_IROTH)))
        LOGF(RV_LOG_WARN, NULL, NULL,
             json_pack("{s:s,s:s,s:s}", "setting", fenv, "path", path, "mode",
                       (st.st_mode & S_IROTH) ? "others may read"
                                              : "group may read"),
             "%s %s may be read by other users; chmod 0600 (or 0400) it", fenv,
             path);
    rc = RV_OK;
out:
    if (buf) {
        wipe(buf, cap);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

int rv_config_load(struct rv_config *cfg, int argc, char **argv,
                   int *next_arg, char *err, size_t errlen)
{
    char scratch[8];
    if (!err || errlen == 0) {
        err = scratch;
        errlen = sizeof(scratch);
    }
    err[0] = '\0';
    memset(cfg, 0, sizeof(*cfg));
    /* Per secret setting: whether the direct form was given a non-empty
     * value (env or flag, the later wins), and the file to read it from
     * (borrowed from environ or argv; NULL = none). Empty counts as not
     * given, so an env file may carry `GITHUB_TOKEN=` next to
     * GITHUB_TOKEN_FILE. */
    bool direct_given[NSETTINGS];
    const char *file_path[NSETTINGS];
    memset(direct_given, 0, sizeof(direct_given));
    memset(file_path, 0, sizeof(file_path));
    int rc = RV_OK;
    for (size_t i = 0; i < NSETTINGS && rc == RV_OK; i++)
        rc = apply(cfg, &settings[i], settings[i].def, err, errlen);
    for (size_t i = 0; i < NSETTINGS && rc == RV_OK; i++) {
        const char *v = getenv(settings[i].env);
        if (v) {
            rc = apply(cfg, &settings[i], v, err, errlen);
            direct_given[i] = *v != '\0';
        }
        if (holds_secret(settings[i].type)) {
            char name[SETTING_NAME_MAX];
            const char *path = getenv(file_env(&settings[i], name));
            file_path[i] = path && *path ? path : NULL;
        }
    }
    int a = 1;
    while (rc == RV_OK && a < argc && argv[a]) {
        const char *value = NULL;
        bool is_file = false;
        const struct setting *s = find_flag(argv[a], &value, &is_file);
        if (!s)
            break; /* the first argument that is not ours */
        char fenv[SETTING_NAME_MAX], fflag[SETTING_NAME_MAX];
        if (!value) {
            if (a + 1 >= argc || !argv[a + 1]) {
                snprintf(err, errlen, "%s (%s) needs a value",
                         is_file ? file_env(s, fenv) : s->env,
                         is_file ? file_flag(s, fflag) : s->flag);
                rc = RV_ERR_CONFIG;
                break;
            }
            value = argv[++a];
        }
        size_t i = (size_t)(s - settings);
        if (is_file) {
            file_path[i] = *value ? value : NULL;
        } else {
            rc = apply(cfg, s, value, err, errlen);
            direct_given[i] = *value != '\0';
            if (rc == RV_OK && holds_secret(s->type))
                warn_secret_flag(s, value);
        }
        a++;
    }
    if (next_arg)
        *next_arg = a < argc ? a : argc;
    /* Secret files last: both forms at once is a mistake, whichever source
     * each came from, because neither can be said to win. */
    for (size_t i = 0; i < NSETTINGS && rc == RV_OK; i++) {
        if (!file_path[i])
            continue;
        const struct setting *s = &settings[i];
        char fenv[SETTING_NAME_MAX], fflag[SETTING_NAME_MAX];
        if (direct_given[i]) {
            snprintf(err, errlen,
                     "%s (%s) and %s (%s, here %s) are both given; give only "
                     "one",
                     s->env, s->flag, file_env(s, fenv), file_flag(s, fflag),
                     file_path[i]);
            rc = RV_ERR_CONFIG;
            break;
        }
        rc = apply_file(cfg, s, file_path[i], err, errlen);
    }
    if (rc == RV_OK) {
        /* The URL policy's settings are checked together, at start-up. */
        struct rv_url_policy policy;
        rc = rv_url_policy_load(&policy, cfg, err, errlen);
        if (rc == RV_OK)
            rv_url_policy_free(&policy);
    }
    if (rc != RV_OK) {
        rv_config_free(cfg);
        return rc == RV_ERR_NOMEM ? RV_ERR_NOMEM : RV_ERR_CONFIG;
    }
    return RV_OK;
}

void rv_config_free(struct rv_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (is_string_type(settings[i].type)) {
            char **field = str_field(cfg, &settings[i]);
            if (*field && holds_secret(settings[i].type))
                wipe(*field, strlen(*field));
            free(*field);
            *field = NULL;
        }
    }
}

void rv_config_print_help(FILE *out)
{
    fprintf(out,
            "Settings (a flag wins over its environment variable).\n"
            "Secrets: a command line is visible to every local user (ps), so\n"
            "give a secret in the environment or, better, as a *_FILE setting\n"
            "naming a file of mode 0600 (one trailing newline is dropped).\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *s = &settings[i];
        char range[64] = "";
        if (s->type == SET_INT)
            snprintf(range, sizeof(range), " [%lld..%lld]",
                     (long long)s->min, (long long)s->max);
        const char *def;
        if (s->type == SET_SECRET) {
            /* Whether it is set, never what it is. */
            const char *v = getenv(s->env);
            def = v && *v ? "(set)" : "(unset)";
        } else {
            def = *s->def ? s->def : "(empty)";
        }
        fprintf(out, "  %-20s %-26s default %s%s\n      %s\n", s->flag,
                s->env, def, range, s->help);
        if (holds_secret(s->type)) {
            char fenv[SETTING_NAME_MAX], fflag[SETTING_NAME_MAX];
            const char *v = getenv(file_env(s, fenv));
            fprintf(out,
                    "  %-20s %-26s default %s\n      the value of %s, read "
                    "from this file (not both)\n",
                    file_flag(s, fflag), fenv, v && *v ? "(set)" : "(unset)",
                    s->env);
        }
    }
}

int rv_config_export_env(const struct rv_config *cfg)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *s = &settings[i];
        const char *p = (const char *)cfg + s->offset;
        char num[32];
        /* No default: -Wswitch names a type added later and not handled. */
        const char *text = "";
        switch (s->type) {
        case SET_INT:
            snprintf(num, sizeof(num), "%lld", (long long)*(const int64_t *)p);
            text = num;
            break;
        case SET_BOOL:
            text = *(const int64_t *)p ? "true" : "false";
            break;
        case SET_LEVEL: {
            static const char *const names[] = {"debug", "info", "warn",
                                                "error"};
            text = names[*(const rv_log_level *)p & 3];
            break;
        }
        case SET_STRING:
        case SET_SECRET:
        case SET_URL:
        case SET_URL_OPT:
        case SET_LISTEN:
        case SET_REDIS:
            text = *(char *const *)p ? *(char *const *)p : "";
            break;
        }
        if (setenv(s->env, text, 1) != 0)
            return RV_ERR_NOMEM;
        if (holds_secret(s->type)) {
            /* The value is exported already; a file as well would be both
             * forms at once. */
            char fenv[SETTING_NAME_MAX];
            if (unsetenv(file_env(s, fenv)) != 0)
                return RV_ERR_NOMEM;
        }
    }
    return RV_OK;
}

void rv_config_register_secrets(const struct rv_config *cfg)
{
    rv_log_add_secret(cfg->github_token);
    rv_log_add_secret(cfg->webhook_secret);
    rv_log_add_secret(cfg->api_token);
    rv_log_add_secret(cfg->metrics_token);
    rv_log_add_secret(cfg->session_secret);
    struct rv_redis_addr addr;
    char err[256];
    if (cfg->redis_url &&
        rv_redis_parse_url(cfg->redis_url, &addr, err, sizeof(err)) == RV_OK)
        rv_log_add_secret(addr.pass);
}

int64_t rv_config_stale_after(const struct rv_config *cfg, int64_t interval_s)
{
    if (cfg->stale_after > 0)
        return cfg->stale_after;
    return 2 * (interval_s > 0 ? interval_s : cfg->sync_interval);
}

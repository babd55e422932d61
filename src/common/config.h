/*
 * Configuration. One table (config.c) drives environment variables,
 * command-line flags, defaults, validation and --help. A flag wins over its
 * variable. Every binary accepts every setting, so one deployment can share
 * one environment file.
 *
 * Every setting that holds a secret (the tokens, the webhook secret, the
 * Redis URL, which may carry a password) can also be read from a file:
 * <VARIABLE>_FILE or --<flag>-file, e.g. GITHUB_TOKEN_FILE or
 * --github-token-file. The file's content less one trailing newline is the
 * value, validated as the direct form is. Giving both forms is an error.
 */
#ifndef REPOVIEW_COMMON_CONFIG_H
#define REPOVIEW_COMMON_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/log.h"

struct rv_config {
    /* REPOVIEW_REDIS_URL: redis://[user:pass@]host:port[/db] or
     * unix:///path/to.sock[?db=N]. */
    char *redis_url;
    /* REPOVIEW_LISTEN: host:port the API listens on. */
    char *listen;
    /* REPOVIEW_DATA_DIR: worker mirrors and `up`'s Redis data. */
    char *data_dir;
    /* REPOVIEW_SYNC_INTERVAL: seconds between background syncs of a repo. */
    int64_t sync_interval;
    /* REPOVIEW_ORG_SYNC_INTERVAL: seconds between syncs of an org's list
     * of repositories (the first one is queued at registration). */
    int64_t org_sync_interval;
    /* REPOVIEW_STALE_AFTER: seconds after which a projection is stale;
     * 0 means twice the repo's interval. */
    int64_t stale_after;
    /* REPOVIEW_GITHUB_API: GitHub or GitHub Enterprise REST base URL. */
    char *github_api;
    /* REPOVIEW_GITHUB_GRAPHQL: GraphQL endpoint; empty = derived from the
     * API URL (api.github.com -> /graphql, GHE /api/v3 -> /api/graphql). */
    char *github_graphql;
    /* GITHUB_TOKEN: secret; never logged, never stored in Redis. */
    char *github_token;
    /* REPOVIEW_GITHUB_APP_ID: the GitHub App's id; 0 = no App. With the
     * key file, workers use installation tokens (worker/ghapp.h). */
    int64_t github_app_id;
    /* REPOVIEW_GITHUB_APP_KEY_FILE: path of the App's PEM RSA private key;
     * a path, not a secret: the key itself is read by the worker only. */
    char *github_app_key_file;
    /* REPOVIEW_WEBHOOK_SECRET: secret; enables POST /v1/webhooks/github. */
    char *webhook_secret;
    /* REPOVIEW_API_TOKEN: secret; an admin token (access.c). */
    char *api_token;
    /* REPOVIEW_LEASE_SECONDS: a worker's lease; retried after it lapses. */
    int64_t lease_seconds;
    /* REPOVIEW_LOG: debug, info, warn or error. */
    rv_log_level log_level;
    /* REPOVIEW_MAX_ATTEMPTS: tries of a job whose worker died before it is
     * dead-lettered. */
    int64_t max_attempts;
    /* REPOVIEW_MAX_BRANCHES: branch rows kept per repo; more are dropped
     * and the overview is marked truncated. */
    int64_t max_branches;
    /* REPOVIEW_FETCH_TIMEOUT: seconds a clone or fetch may take. */
    int64_t fetch_timeout;
    /* REPOVIEW_GITHUB_TIMEOUT: seconds one GitHub request may take. */
    int64_t github_timeout;
    /* REPOVIEW_GITHUB_MAX_PAGES: pages of 100 PRs read per sync. */
    int64_t github_max_pages;
    /* REPOVIEW_GITHUB_MAX_CONCURRENCY: GitHub requests at once per token
     * identity across all workers (a semaphore in Redis). */
    int64_t github_max_concurrency;
    /* REPOVIEW_MAX_CLIENTS: concurrent HTTP connections, SSE included. */
    int64_t max_clients;
    /* REPOVIEW_IO_TIMEOUT: seconds the API waits for a client's next bytes
     * (and for a client to take ours) before it closes the connection, so
     * a request that stalls half-sent cannot hold a connection for long. */
    int64_t io_timeout;
    /* REPOVIEW_SSE_MAX_BUFFER: bytes of unsent SSE output before a slow
     * client is dropped. */
    int64_t sse_max_buffer;
    /* REPOVIEW_MAX_CLIENTS_PER_IP: concurrent connections from one
     * address, counted from the accept; more are closed at once. */
    int64_t max_clients_per_ip;
    /* REPOVIEW_KEEPALIVE_TIMEOUT: seconds an idle keep-alive connection
     * waits for the first byte of its next request. */
    int64_t keepalive_timeout;
    /* REPOVIEW_MAX_BODY_MEMORY: bytes of requests being received (and of
     * those received but not answered yet) the API holds at once; a
     * connection that would pass it is closed. */
    int64_t max_body_memory;
    /* REPOVIEW_MAX_STREAMS_PER_IP: concurrent SSE streams from one
     * address; one more gets 429 too_many_streams. */
    int64_t max_streams_per_ip;
    /* REPOVIEW_CORS_ORIGINS: comma-separated origins allowed to call the
     * API from a browser; empty = same origin only. */
    char *cors_origins;
    /* REPOVIEW_SHUTDOWN_GRACE: seconds a stopping worker may spend finishing
     * its job before it hands it back. */
    int64_t shutdown_grace;
    /* REPOVIEW_ALLOWED_HOSTS: comma-separated Host values the API
     * answers; empty = the listen address, localhost, 127.0.0.1, [::1]. */
    char *allowed_hosts;
    /* REPOVIEW_ALLOWED_SCHEMES: comma-separated schemes a remote may use
     * (https, http, ssh, git). */
    char *allowed_schemes;
    /* REPOVIEW_ALLOW_LOCAL_PATHS: comma-separated directories under which
     * file:// URLs and plain paths may point; empty = none. */
    char *allow_local_paths;
    /* REPOVIEW_ALLOW_PRIVATE_NETWORKS: 1 allows loopback, private,
     * link-local, unique-local, CGNAT, multicast and unspecified addresses. */
    int64_t allow_private_networks;
    /* REPOVIEW_ALLOWED_HOSTS_REMOTE: host patterns that alone may be used
     * when set (github.com, *.example.com). */
    char *allowed_hosts_remote;
    /* REPOVIEW_BLOCKED_HOSTS_REMOTE: host patterns always refused. */
    char *blocked_hosts_remote;
    /* REPOVIEW_TOKENS_FILE: one token a line, "sha256:<hex> <scope>
     * [repo pattern ...]"; empty = none. */
    char *tokens_file;
    /* REPOVIEW_READ_OPEN: 1 keeps reads open to everyone while tokens are
     * configured (with none, everything is open). */
    int64_t read_open;
    /* REPOVIEW_METRICS_TOKEN: secret; a bearer that may read /metrics. */
    char *metrics_token;
    /* REPOVIEW_SESSION_SECRET: secret; keys the dashboard's sessions and
     * stream tokens; empty = a random key per process. */
    char *session_secret;
};

/* Largest secret file read (bytes after the trailing newline is dropped). */
#define RV_CONFIG_FILE_MAX 65536

/* Fills cfg with defaults, then the environment, then flags from argv
 * (`--name value` or `--name=value`; names are in the table, e.g.
 * --redis-url). Parsing stops at the first argument that is not a known
 * flag; its index is stored in *next_arg (argc when all were consumed).
 * --help is not handled here (see rv_config_print_help).
 * Secret files (<VARIABLE>_FILE, --<flag>-file) are read after every other
 * source; a missing, unreadable, empty, oversized or NUL-holding file, or
 * both the direct form and the file form given (from any source), is
 * refused. A secret given as a flag, or a secret file that others may read,
 * is accepted with a warning log line (neither shows the value).
 * Returns RV_OK, or RV_ERR_CONFIG with a message naming the variable, the
 * flag and the accepted range (or the file's path) in err; never a
 * secret's value. The strings in cfg are owned by cfg;
 * release them with rv_config_free. */
int rv_config_load(struct rv_config *cfg, int argc, char **argv,
                   int *next_arg, char *err, size_t errlen);

/* Frees the strings of cfg (cfg itself is the caller's); secrets are
 * overwritten first. */
void rv_config_free(struct rv_config *cfg);

/* Prints every setting: flag, variable, default, range, meaning. */
void rv_config_print_help(FILE *out);

/* Sets every setting's variable in this process's environment to cfg's
 * value and unsets the *_FILE variables, so that a child started after it
 * (fork, then exec) runs with exactly cfg, flags included, and no secret on
 * its command line. Meant for the child between fork and exec. RV_OK or
 * RV_ERR_NOMEM. */
int rv_config_export_env(const struct rv_config *cfg);

/* Registers the secrets in cfg with the logger (rv_log_add_secret), and the
 * password of the Redis URL. */
void rv_config_register_secrets(const struct rv_config *cfg);

/* Stale-after seconds for a repo whose interval is interval_s. */
int64_t rv_config_stale_after(const struct rv_config *cfg, int64_t interval_s);

#endif

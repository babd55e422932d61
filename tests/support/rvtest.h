/*
 * The test harness: checks that count and report, a private redis-server
 * per test program (unix socket in a temp dir), temp dirs, and a way to run
 * shell commands (the git CLI oracle, the binaries under test).
 *
 * Set RV_TEST_REDIS_URL to run against a Redis you started yourself (for
 * debugging); the harness then FLUSHALLs it at start.
 */
#ifndef REPOVIEW_TESTS_RVTEST_H
#define REPOVIEW_TESTS_RVTEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "common/rconn.h"

extern int rvt_checks;
extern int rvt_failures;
extern const char *rvt_current;

#define CHECK(cond)                                                          \
    do {                                                                     \
        rvt_checks++;                                                        \
        if (!(cond)) {                                                       \
            rvt_failures++;                                                  \
            fprintf(stderr, "FAIL %s:%d [%s]: %s\n", __FILE__, __LINE__,     \
                    rvt_current, #cond);                                     \
        }                                                                    \
    } while (0)

#define CHECK_INT(a, b)                                                      \
    do {                                                                     \
        long long rvt_a_ = (long long)(a), rvt_b_ = (long long)(b);          \
        rvt_checks++;                                                        \
        if (rvt_a_ != rvt_b_) {                                              \
            rvt_failures++;                                                  \
            fprintf(stderr, "FAIL %s:%d [%s]: %s == %lld, expected %lld\n",  \
                    __FILE__, __LINE__, rvt_current, #a, rvt_a_, rvt_b_);    \
        }                                                                    \
    } while (0)

#define CHECK_STR(a, b)                                                      \
    do {                                                                     \
        const char *rvt_a_ = (a), *rvt_b_ = (b);                             \
        rvt_checks++;                                                        \
        if (!rvt_a_ || !rvt_b_ || strcmp(rvt_a_, rvt_b_) != 0) {             \
            rvt_failures++;                                                  \
            fprintf(stderr,                                                  \
                    "FAIL %s:%d [%s]: %s == \"%s\", expected \"%s\"\n",     \
                    __FILE__, __LINE__, rvt_current, #a,                     \
                    rvt_a_ ? rvt_a_ : "(null)", rvt_b_ ? rvt_b_ : "(null)"); \
        }                                                                    \
    } while (0)

/* Runs one named test function and reports it. */
#define RUN(fn)                                                              \
    do {                                                                     \
        int rvt_before_ = rvt_failures;                                      \
        rvt_current = #fn;                                                   \
        fn();                                                                \
        fprintf(stderr, "%s %s\n",                                          \
                rvt_failures == rvt_before_ ? "ok  " : "FAIL", #fn);         \
    } while (0)

/* Prints the summary; returns the process exit code (1 if anything failed
 * or nothing was checked). */
int rvt_done(void);

/* A private redis-server. */
struct rvt_redis {
    pid_t pid;
    char dir[256];          /* temp dir holding socket, log, AOF */
    char sock[320];
    char url[400];          /* unix://<sock> */
    char extra[512];        /* extra redis-server arguments */
    struct rv_redis_addr addr;
    int port;               /* TCP port (rvt_redis_start_tcp), else 0 */
    char tcp_url[64];       /* redis://127.0.0.1:<port>, or "" */
};

/* Starts redis-server in a new temp dir; extra_args (may be NULL) are
 * appended to its command line, e.g. "--appendonly yes". Returns 0 or -1. */
int rvt_redis_start(struct rvt_redis *r, const char *extra_args);
/* As rvt_redis_start, also listening on 127.0.0.1 on a free TCP port
 * (r->port, r->tcp_url); r->addr and r->url still name the unix socket. */
int rvt_redis_start_tcp(struct rvt_redis *r, const char *extra_args);
/* A TCP port on 127.0.0.1 that was free a moment ago, or -1. */
int rvt_free_tcp_port(void);
/* A blocking TCP connection to 127.0.0.1:port (the caller closes it), or
 * -1. */
int rvt_tcp_connect(int port);
/* A socket listening on a free port on 127.0.0.1 (its number in *port)
 * that nobody accepts on: the kernel completes connections from the
 * backlog and nothing is ever said, a hung remote. Returns the listening
 * socket (the caller closes it), or -1. */
int rvt_silent_listener(int *port);
/* Stops it (SIGTERM, wait) and removes its dir. */
void rvt_redis_stop(struct rvt_redis *r);
/* SIGKILLs it, keeping its dir (for restart from AOF). */
void rvt_redis_kill(struct rvt_redis *r);
/* Starts it again in the same dir with the same arguments. */
int rvt_redis_restart(struct rvt_redis *r);
/* Opens a blocking connection to it; returns 0 or -1. */
int rvt_redis_connect(struct rvt_redis *r, struct rv_rsync *out);

/* The end of a test program's main: closes conn, stops redis, removes tmp
 * unless a check failed (then says where it was kept, for the logs), frees
 * tmp (malloc'd, may be NULL) and returns rvt_done(). */
int rvt_finish(struct rv_rsync *conn, struct rvt_redis *redis, char *tmp);

/* Creates a temp dir (under $TMPDIR or /tmp) and returns a malloc'd path. */
char *rvt_tmpdir(const char *prefix);

/* Gives the git CLI and libgit2 a clean, fixed identity: HOME is home (a
 * temp dir, so no user config is read), no system config, and fixed
 * author and committer names, so that commits hash the same each run. */
void rvt_git_env(const char *home);

/* "REPOVIEW_ALLOW_LOCAL_PATHS=<$TMPDIR or /tmp>" (static): the URL policy
 * setting a test passes (in env, or with setenv for the CLI) when its
 * repos are local bare repositories in temp dirs. Spawned services
 * otherwise get the default, closed policy. */
const char *rvt_allow_local_env(void);

/* "REPOVIEW_ALLOW_PRIVATE_NETWORKS=true": for tests whose remotes are
 * servers on loopback. */
#define RVT_ALLOW_LOOPBACK_ENV "REPOVIEW_ALLOW_PRIVATE_NETWORKS=true"
/* rm -rf path. */
void rvt_rmrf(const char *path);

/* The whole file as a malloc'd NUL-terminated string the caller frees: ""
 * when it cannot be read, NULL only when out of memory. */
char *rvt_slurp(const char *path);

/* Runs `curl -s ARGS` (ARGS formatted from fmt and ap, the URL included;
 * 10 s, scaled) with the answer's header block and body kept in dir/h.txt
 * and dir/b.txt. Frees *body and *headers (NULL or earlier answers) and
 * stores the new ones (malloc'd, "" when there was none). Returns the HTTP
 * status, 0 when curl failed. */
int rvt_vcurl(const char *dir, char **body, char **headers, const char *fmt,
              va_list ap);

/* The value of header name (case-insensitive) in headers (a response's
 * CRLF-separated header block, may be NULL), copied into buf and cut to
 * size - 1 bytes. Returns buf, or NULL when the header is absent. */
const char *rvt_http_header(const char *headers, const char *name, char *buf,
                            size_t size);

/* Runs `sh -c cmd`; stores its stdout (malloc'd, NUL-terminated, trailing
 * newline kept) in *out if out is not NULL. Returns the exit status, or -1
 * when it could not run. */
int rvt_sh(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Path of a built binary ("repoview", "repoview-worker", ...), static.
 * When RV_TEST_WRAPPER is set (e.g. "valgrind -q --log-file=..."), the
 * path of a generated script that runs the binary under that command. */
const char *rvt_bin(const char *name);

/* ms times RV_TEST_TIME_SCALE (a whole factor, default 1): timeouts that
 * must stretch when the binaries run under a slow wrapper such as
 * valgrind. */
int rvt_scale_ms(int ms);

/* Sleeps ms milliseconds. */
void rvt_sleep_ms(int ms);


/* ---- repoview processes and state, shared by the worker tests ---- */

#include <jansson.h>

/* Starts repoview-worker against redis_url with its data in data_dir and
 * its stderr appended to log_path. env is NULL or a NULL-terminated list
 * of "NAME=value" settings applied in the child; the URL policy is the
 * default one unless env opens it (the shell's settings, *_FILE ones
 * included, do not leak in). redis_url NULL leaves REPOVIEW_REDIS_URL
 * unset, for env to give REPOVIEW_REDIS_URL_FILE. Returns the pid or -1. */
pid_t rvt_spawn_worker(const char *redis_url, const char *data_dir,
                       const char *log_path, const char *const *env);

/* SIGCONT then SIGTERM; SIGKILL when still alive after timeout_ms
 * (scaled). Returns its exit status, or -1 when it was killed, died of a
 * signal or pid is not a process. */
int rvt_stop_process(pid_t pid, int timeout_ms);

/* A repoview-api child process. */
struct rvt_api {
    pid_t pid;
    int port;       /* on 127.0.0.1 */
    char base[64];  /* http://127.0.0.1:<port> */
    char log[512];  /* its stderr */
};

/* Starts repoview-api on port (0: a free one; a restart passes the old one
 * so that clients can reconnect) against redis_url, its stderr appended to
 * log_path, with REPOVIEW_LOG=debug, no API token, CORS origins or webhook
 * secret unless env (as for rvt_spawn_worker, redis_url NULL included)
 * sets them. Waits until
 * ready_path ("/readyz", or "/healthz" for one that cannot reach Redis)
 * answers 2xx. Returns 0, or -1 (a->pid may still need rvt_api_stop). */
int rvt_api_start(struct rvt_api *a, int port, const char *redis_url,
                  const char *log_path, const char *ready_path,
                  const char *const *env);

/* rvt_stop_process with a 10 s limit; clears a->pid. Returns its exit
 * status, or -1. Once it returns, its log is complete. */
int rvt_api_stop(struct rvt_api *a);

/* HGET of a repo's meta field into buf ("" when absent); returns buf. */
const char *rvt_meta_field(struct rv_rsync *r, const char *id,
                           const char *field, char *buf, size_t size);

/* Waits until the meta field equals want; false (and a message) on
 * timeout. */
bool rvt_wait_field(struct rv_rsync *r, const char *id, const char *field,
                    const char *want, int timeout_ms);

/* A growing text buffer (what a test collects to scan); zero-initialise,
 * free t->s. Appends that run out of memory are dropped. */
struct rvt_text {
    char *s;
    size_t len, cap;
};
void rvt_text_add(struct rvt_text *t, const char *s, size_t n);
void rvt_text_adds(struct rvt_text *t, const char *s);
/* Binary-safe: whether the text holds needle. */
bool rvt_text_has(const struct rvt_text *t, const char *needle);
/* Appends every string of reply (nested arrays too), a line each, with
 * integers in decimal. */
void rvt_reply_text(const redisReply *r, struct rvt_text *t);
/* Appends every key of the database and every value, read by its type
 * (string, hash, list, set, zset; with dump, DUMP of each key too, which
 * covers the other types); returns the number of keys. */
size_t rvt_redis_all_values(struct rv_rsync *conn, struct rvt_text *t,
                            bool dump);

/* Sends all of s (len bytes) on fd; false when the peer is gone. */
bool rvt_send_str(int fd, const char *s);
bool rvt_send_all(int fd, const char *s, size_t len);

/* Reads fd until needle arrived after what seen already held (true), the
 * peer closed or limit_ms passed; what came is appended to seen (NULL:
 * dropped). */
bool rvt_read_until(int fd, const char *needle, int limit_ms,
                    struct rvt_text *seen);

/* True when s (may be NULL) contains needle. */
bool rvt_contains(const char *s, const char *needle);

/* error.code of a JSON error body, into buf ("(none)" when it has none). */
const char *rvt_error_code(const char *body, char *buf, size_t size);

/* How many times Redis has run command (lower case, e.g. "hget"), the
 * scripts' own calls included (INFO commandstats): 0 before its first,
 * -1 when INFO fails. */
long long rvt_redis_calls(struct rv_rsync *conn, const char *command);

/* The integer reply of the command fmt with one string argument, or -1. */
long long rvt_redis_int(struct rv_rsync *conn, const char *fmt,
                        const char *arg);

/* The X-Hub-Signature-256 value ("sha256=<hex>") of the file at path
 * under secret, computed by the openssl CLI (the test's oracle for the
 * API's HMAC), into sig. */
void rvt_sign_file(const char *path, const char *secret, char *sig,
                   size_t size);

/* The value of one sample of base's /metrics (e.g. "repoview_sse_clients"),
 * or -1 when it cannot be read. */
long long rvt_metric(const char *base, const char *name);

/* The repo's overview fragment parsed as an object (new reference), or
 * NULL before the first sync. */
json_t *rvt_overview(struct rv_rsync *r, const char *id);

/* Makes a new job (rv_job_init) for repo, kind and reason into *job and
 * RPUSHes its encoded payload onto list, e.g. rv:processing:<worker> to
 * fake a job a worker is running. Returns RV_OK, the init or encode error,
 * or RV_ERR_REDIS when the push was not answered with a length. */
#include "common/job.h"
int rvt_push_job(struct rv_rsync *conn, const char *list, const char *repo,
                 rv_kind kind, rv_reason reason, struct rv_job *job);

/* Plays a worker named worker (its processing list is
 * rv:processing:<worker>) for one job of repo and kind, through the
 * worker's own scripts: takes jobs off rv:queue until it finds that one
 * (putting others back at the far end), claims it and commits fragment
 * (the overview fragment's text) with changed (the event's JSON). Returns
 * the version committed, or -1. */
#include "common/keys.h"
long long rvt_fake_commit(struct rv_rsync *conn, const char *worker,
                          const char *repo, rv_kind kind,
                          const char *fragment, const char *changed);

#endif

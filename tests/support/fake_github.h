/*
 * A fake GitHub GraphQL server for tests (tests/fake-github/server.mjs) run
 * as a child process: it listens on a loopback port it picks and stops when
 * its stdin closes, so a test that dies takes it along.
 */
#ifndef REPOVIEW_TESTS_FAKE_GITHUB_H
#define REPOVIEW_TESTS_FAKE_GITHUB_H

#include <sys/types.h>

struct rvt_fake_github {
    pid_t pid;
    int stdin_fd;  /* closing it stops the fake */
    int stdout_fd;
    int port;
    char url[128]; /* http://127.0.0.1:N/graphql */
};

/* Spawns node on the fake; token (may be "") is the bearer it requires.
 * Reads its {"port":N} line. Returns 0 or -1. */
int rvt_fake_github_start(struct rvt_fake_github *f, const char *token);

/* POSTs the JSON fmt makes to the fake's /_control (at most 2 KiB; no
 * single quotes, it goes through the shell). Returns 0, or -1 when the
 * fake refused it. */
int rvt_fake_github_control(const struct rvt_fake_github *f, const char *fmt,
                            ...) __attribute__((format(printf, 2, 3)));

/* GET path of the fake, parsed (a new reference), or NULL. */
struct json_t;
struct json_t *rvt_fake_github_get(const struct rvt_fake_github *f,
                                   const char *path);

/* The worker of an App test: rvt_spawn_worker (its log and data dir
 * named by prefix, e.g. "<tmp>/worker" -> .log and -data) talking to the
 * fake's REST base with GITHUB_TOKEN pat and the App app_id/key_path,
 * a 5 s GitHub timeout, debug logs and local remotes allowed; extra (NULL
 * or NULL-terminated "NAME=value"s) comes last and so wins. The pid or -1. */
pid_t rvt_fake_github_worker(const struct rvt_fake_github *f,
                             const char *redis_url, const char *prefix,
                             const char *pat, int app_id,
                             const char *key_path, const char *const *extra);

/* Closes its stdin and waits for it (SIGKILL after 5 s). */
void rvt_fake_github_stop(struct rvt_fake_github *f);

#endif

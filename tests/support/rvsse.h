/*
 * Server-sent events as Node's EventSource sees them: a test starts
 * tests/sse/record.mjs on a URL, which writes each event it receives as a
 * JSON line into <dir>/<name>.jsonl, and reads the file back.
 */
#ifndef RVSSE_H
#define RVSSE_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

/* Starts a recorder of base+path into <dir>/<name>.jsonl (its stderr into
 * <dir>/<name>.log). Returns its pid, or -1. */
pid_t rvt_sse_record(const char *dir, const char *base, const char *name,
                     const char *path);

/* The events recorded so far in <dir>/<name>.jsonl, as a new JSON array
 * (empty when there are none yet). */
json_t *rvt_sse_recorded(const char *dir, const char *name);

/* An event's type ("open", "error" or the event name), data.repo and
 * data.version (0 when absent). */
const char *rvt_sse_type(const json_t *ev);
const char *rvt_sse_repo(const json_t *ev);
long long rvt_sse_version(const json_t *ev);

/* How many data events of type (NULL: any) for repo (NULL: any) arr
 * holds; open and error are not counted. */
int rvt_sse_count(const json_t *arr, const char *type, const char *repo);

/* Waits (timeout scaled) until <dir>/<name> has at least n events of type
 * for repo; false, with a message, on timeout. */
bool rvt_sse_wait(const char *dir, const char *name, const char *type,
                  const char *repo, int n, int timeout_ms);

#endif

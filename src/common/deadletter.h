/*
 * The dead-letter list (rv:deadletter, newest first; docs/redis.md) as
 * the API and the CLI act on it: an entry is named by its index and its
 * id, the SHA-1 of its text, which the scripts retryDeadLetter and
 * dropDeadLetter compare (redis.sha1hex) before they change anything, so
 * an entry that moved meanwhile is never retried or dropped by mistake.
 */
#ifndef REPOVIEW_COMMON_DEADLETTER_H
#define REPOVIEW_COMMON_DEADLETTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cmd.h"
#include "common/job.h"

#define RV_DEAD_ID_LEN 40     /* hex digits of an entry's id */
#define RV_DEAD_INDEX_MAX 999 /* the list keeps 1000 entries */

/* The id of the entry text[0..len) into id (RV_DEAD_ID_LEN + 1 bytes).
 * false when the digest failed (id is then ""). */
bool rv_dead_id(const char *text, size_t len, char *id);

/* Whether s is an entry id as rv_dead_id writes it. */
bool rv_dead_id_valid(const char *s);

/* The repo (or org) and kind of the job an entry holds ("job" member).
 * false when it holds none a sync can run (a payload that did not
 * decode, or anything malformed). */
bool rv_dead_job(const char *text, size_t len, char *repo, size_t repolen,
                 rv_kind *kind);

/* Builds retryDeadLetter for entry index with id expected, whose job is
 * for repo and kind: a fresh job (reason user) goes into *job. RV_OK, or
 * the job's error (cmd is then empty). */
int rv_dead_retry_cmd(struct rv_cmd *cmd, int64_t index, const char *expected,
                      const char *repo, rv_kind kind, struct rv_job *job);

/* Builds dropDeadLetter for entry index with id expected. */
void rv_dead_drop_cmd(struct rv_cmd *cmd, int64_t index, const char *expected);

#endif

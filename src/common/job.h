/*
 * Job payloads: MessagePack maps (msgpack-c), versioned.
 *   {"v":1, "id":"j-...", "repo":"widgets", "kind":"branches",
 *    "reason":"user", "at":<enqueued epoch ms>, "attempt":0}
 * Decoding is strict: every field present exactly once with its type, no
 * unknown field, known version, no trailing bytes, at most RV_JOB_MAX_BYTES.
 */
#ifndef REPOVIEW_COMMON_JOB_H
#define REPOVIEW_COMMON_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "common/keys.h"
#include "common/util.h"

#define RV_JOB_VERSION 1
#define RV_JOB_MAX_BYTES 1024

typedef enum rv_reason {
    RV_REASON_USER = 0,     /* an API or CLI refresh */
    RV_REASON_WEBHOOK = 1,  /* a GitHub webhook */
    RV_REASON_SCHEDULE = 2, /* the periodic scheduler */
    RV_REASON_FOLLOWUP = 3, /* a refresh asked for while a sync ran */
    RV_REASON_REGISTER = 4, /* the first sync of a new repo */
} rv_reason;

struct rv_job {
    int version;
    char id[RV_JOB_ID_MAX + 1];
    char repo[RV_REPO_ID_MAX + 1];
    rv_kind kind;
    rv_reason reason;
    int64_t enqueued_at; /* epoch ms */
    uint32_t attempt;    /* 0 on the first try; the reaper adds one */
};

const char *rv_reason_name(rv_reason r);        /* "user", ... */
int rv_reason_parse(const char *s, rv_reason *out); /* 0, or -1 */

/* Fills job with a fresh id, version, the given fields, now and attempt 0.
 * Returns RV_OK or RV_ERR_INVALID (bad repo id). */
int rv_job_init(struct rv_job *job, const char *repo, rv_kind kind,
                rv_reason reason);

/* Encodes job. On RV_OK *out is a malloc'd buffer of *len bytes the caller
 * frees. RV_ERR_INVALID if a field is out of range, RV_ERR_NOMEM. */
int rv_job_encode(const struct rv_job *job, char **out, size_t *len);

/* rv_job_init, then rv_job_encode: a fresh job and the payload to queue.
 * On RV_OK *out is malloc'd (the caller frees); otherwise it is NULL. */
int rv_job_new(struct rv_job *job, const char *repo, rv_kind kind,
               rv_reason reason, char **out, size_t *len);

/* Decodes buf strictly into job. Returns RV_OK, or RV_ERR_DECODE /
 * RV_ERR_TOO_LARGE with a reason in why (may be NULL). */
int rv_job_decode(const char *buf, size_t len, struct rv_job *job, char *why,
                  size_t whylen);

/* Renders job as a JSON object (for `repoview queue`); new reference. */
struct json_t;
struct json_t *rv_job_to_json(const struct rv_job *job);

#endif

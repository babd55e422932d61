/*
 * What the operations views (ops.c, ops_dead.c, ops_stats.c) share: a
 * batch of Redis commands answered together. A handler sends a phase of
 * commands, each callback adds its part to the answer (and may send more),
 * and when the last answer is in, the batch's done callback replies once.
 */
#ifndef REPOVIEW_API_OPS_PRIVATE_H
#define REPOVIEW_API_OPS_PRIVATE_H

#include <jansson.h>
#include <stddef.h>

#include "api/api.h"
#include "common/cmd.h"
#include "common/job.h"
#include "common/rconn.h"

/* Most jobs listed as waiting, and most workers a view reads. */
#define OPS_WAITING_MAX 100
#define OPS_WORKERS_MAX 200

struct ops_batch;
/* Gets one command's reply (NULL: Redis went away, which the batch has
 * already noted in rc), with the arg and tag given to ops_ask. */
typedef void (*ops_reply_fn)(struct ops_batch *b, const redisReply *reply,
                             void *arg, const char *tag);

struct ops_batch {
    struct api_call *call; /* answered by done, exactly once */
    size_t pending;        /* answers awaited, plus one while sending */
    int rc;                /* RV_OK, or the first failure */
    json_t *out;           /* the answer being built; done takes it */
    void (*done)(struct ops_batch *b); /* replies; then the batch is freed */
    int64_t now_ms;                    /* when the request came in */
};

/* A batch for call whose answer starts as out (stolen), held open until
 * ops_release. NULL when out of memory (call was answered, out freed). */
struct ops_batch *ops_batch_new(struct api_call *call, json_t *out,
                                void (*done)(struct ops_batch *b));
/* Sends cmd (consumed) as part of b; fn is called once with its reply.
 * tag (may be NULL) is copied, up to 159 bytes. A send that fails marks
 * b failed and calls nothing. */
void ops_ask(struct ops_batch *b, struct rv_cmd *cmd, ops_reply_fn fn,
             void *arg, const char *tag);
/* Ends the sending phase ops_batch_new opened: done runs (and b is freed)
 * once every answer is in, possibly right now. */
void ops_release(struct ops_batch *b);
/* Marks b failed with rc unless it already failed. */
void ops_fail(struct ops_batch *b, int rc);
/* Answers call for a batch that failed with rc (503 when Redis is away). */
void ops_reply_failed(struct api_call *call, int rc);

/* The operations views show every repo's jobs: a token limited to some
 * repos (patterns) may not read them. false when it answered 403. */
bool ops_access_global(struct api_call *call);
/* A job payload as JSON (rv_job_to_json), or {"undecodable","bytes"};
 * new reference or NULL (out of memory). *job gets the decoded job when
 * job is not NULL; *decoded says whether it decoded. */
json_t *ops_payload_json(const char *payload, size_t len, struct rv_job *job,
                         bool *decoded);
/* Sets key to a new value, noting out of memory in b. */
void ops_set(struct ops_batch *b, json_t *obj, const char *key, json_t *v);

#endif

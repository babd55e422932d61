/*
 * Operations views: GET /v1/queue and GET /v1/workers, and the batch of
 * Redis commands every operations view is built on (ops_private.h).
 * Everything comes from Redis, in at most three round trips, and is
 * bounded however many repos are registered: the first OPS_WAITING_MAX
 * waiting jobs, the live leases (at most OPS_WORKERS_MAX) and each one's
 * processing list (normally one job).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/ops_private.h"
#include "common/errors.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/util.h"

/* ---- the batch ---- */

struct ops_ask {
    struct ops_batch *b;
    ops_reply_fn fn;
    void *arg;
    char tag[160];
};

struct ops_batch *ops_batch_new(struct api_call *call, json_t *out,
                                void (*done)(struct ops_batch *b))
{
    struct ops_batch *b = out ? calloc(1, sizeof(*b)) : NULL;
    if (!b) {
        json_decref(out);
        api_reply_rv_error(call, RV_ERR_NOMEM, "out of memory");
        return NULL;
    }
    b->call = call;
    b->out = out;
    b->done = done;
    b->pending = 1;
    b->now_ms = rv_now_ms();
    return b;
}

void ops_fail(struct ops_batch *b, int rc)
{
    if (b->rc == RV_OK)
        b->rc = rc;
}

void ops_release(struct ops_batch *b)
{
    if (--b->pending > 0)
        return;
    b->done(b);
    json_decref(b->out);
    free(b);
}

static void on_reply(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct ops_ask *a = priv;
    struct ops_batch *b = a->b;
    /* A key of the wrong type (garbage written by hand, or by another
     * version) is left out like a missing one; any other error fails the
     * view. */
    bool wrongtype = reply && reply->type == REDIS_REPLY_ERROR &&
                     strncmp(reply->str, "WRONGTYPE", 9) == 0;
    if (!reply)
        ops_fail(b, RV_ERR_REDIS);
    else if (reply->type == REDIS_REPLY_ERROR && !wrongtype)
        ops_fail(b, RV_ERR_PROTOCOL);
    if (b->rc == RV_OK && !wrongtype)
        a->fn(b, reply, a->arg, a->tag);
    free(a);
    ops_release(b);
}

void ops_ask(struct ops_batch *b, struct rv_cmd *cmd, ops_reply_fn fn,
             void *arg, const char *tag)
{
    struct ops_ask *a = calloc(1, sizeof(*a));
    if (!a) {
        rv_cmd_free(cmd);
        ops_fail(b, RV_ERR_NOMEM);
        return;
    }
    *a = (struct ops_ask){.b = b, .fn = fn, .arg = arg};
    if (tag)
        rv_strlcpy(a->tag, tag, sizeof(a->tag));
    b->pending++;
    int rc = rv_rasync_run(b->call->api->redis, cmd, on_reply, a);
    if (rc != RV_OK) {
        rv_cmd_free(cmd);
        free(a);
        b->pending--;
        ops_fail(b, rc);
    }
}

void ops_reply_failed(struct api_call *call, int rc)
{
    if (rc == RV_ERR_REDIS)
        api_reply_unavailable(call);
    else if (rc == RV_ERR_PROTOCOL)
        api_reply_rv_error(call, rc, "Redis answered unexpectedly");
    else
        api_reply_rv_error(call, rc, "cannot read the operations view");
}

void ops_set(struct ops_batch *b, json_t *obj, const char *key, json_t *v)
{
    if (!obj)
        json_decref(v); /* set_new would have taken it */
    if (!v || !obj || json_object_set_new(obj, key, v) != 0)
        ops_fail(b, RV_ERR_NOMEM);
}

bool ops_access_global(struct api_call *call)
{
    if (call->who.token && call->who.token->npatterns > 0) {
        api_reply_error(call, 403, "forbidden",
                        "the operations views show every repo's jobs; this "
                        "token is limited to some repos");
        return false;
    }
    return true;
}

json_t *ops_payload_json(const char *payload, size_t len, struct rv_job *job,
                         bool *decoded)
{
    struct rv_job local;
    char why[160];
    struct rv_job *j = job ? job : &local;
    *decoded = rv_job_decode(payload, len, j, why, sizeof(why)) == RV_OK;
    /* The reason may quote the payload's bytes: keep it printable ASCII,
     * which JSON takes whatever they were. */
    for (char *p = why; !*decoded && *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    if (!*decoded)
        return json_pack("{s:s,s:I}", "undecodable", why, "bytes",
                         (json_int_t)len);
    return rv_job_to_json(j);
}

static void add_cmd(struct rv_cmd *cmd, const char *const *argv, size_t argc)
{
    rv_cmd_init(cmd);
    for (size_t i = 0; i < argc; i++)
        rv_cmd_add(cmd, argv[i]);
}

/* Seconds from ms to now, never negative. */
static json_t *seconds_since(int64_t now, int64_t ms)
{
    return json_integer(now > ms ? (now - ms) / 1000 : 0);
}

/* The live leases, at most OPS_WORKERS_MAX (soonest to lapse first). */
static void ask_live_leases(struct ops_batch *b, ops_reply_fn fn,
                            bool with_scores)
{
    char now[24], max[16];
    snprintf(now, sizeof(now), "%lld", (long long)b->now_ms);
    snprintf(max, sizeof(max), "%d", OPS_WORKERS_MAX);
    const char *argv[] = {"ZRANGEBYSCORE", RV_KEY_LEASES, now, "+inf",
                          "LIMIT",         "0",           max, "WITHSCORES"};
    struct rv_cmd cmd;
    add_cmd(&cmd, argv, with_scores ? 8 : 7);
    ops_ask(b, &cmd, fn, NULL, NULL);
}

/* ---- GET /v1/queue ---- */

static void on_waiting(struct ops_batch *b, const redisReply *reply, void *arg,
                       const char *tag)
{
    (void)arg;
    (void)tag;
    json_t *waiting = json_object_get(b->out, "waiting");
    if (reply->type != REDIS_REPLY_ARRAY) {
        ops_fail(b, RV_ERR_PROTOCOL);
        return;
    }
    /* Workers take from the right: the last element goes first. */
    for (size_t i = reply->elements; i-- > 0;) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        struct rv_job job;
        bool decoded;
        json_t *j = ops_payload_json(e->str, e->len, &job, &decoded);
        if (j && decoded)
            ops_set(b, j, "ageSeconds",
                    seconds_since(b->now_ms, job.enqueued_at));
        ops_set(b, j, "position",
                json_integer((json_int_t)json_array_size(waiting) + 1));
        if (!j || json_array_append_new(waiting, j) != 0)
            ops_fail(b, RV_ERR_NOMEM);
    }
}

static void on_count(struct ops_batch *b, const redisReply *reply, void *arg,
                     const char *tag)
{
    (void)arg;
    if (reply->type != REDIS_REPLY_INTEGER) {
        ops_fail(b, RV_ERR_PROTOCOL);
        return;
    }
    ops_set(b, b->out, tag, json_integer(reply->integer));
}

/* HMGET <p>started_at <p>worker of a running job's kind: its running time
 * when this worker holds the claim (null while the claim is in flight). */
static void on_started(struct ops_batch *b, const redisReply *reply, void *arg,
                       const char *tag)
{
    json_t *j = arg;
    int64_t started;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING &&
        strcmp(reply->element[1]->str, tag) == 0 &&
        rv_parse_i64(reply->element[0]->str, 0, INT64_MAX, &started) == 0)
        ops_set(b, j, "runningSeconds", seconds_since(b->now_ms, started));
}

static void on_processing(struct ops_batch *b, const redisReply *reply,
                          void *arg, const char *worker)
{
    (void)arg;
    json_t *running = json_object_get(b->out, "running");
    if (reply->type != REDIS_REPLY_ARRAY)
        return; /* not a list: nothing runs there */
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        struct rv_job job;
        bool decoded;
        json_t *j = ops_payload_json(e->str, e->len, &job, &decoded);
        ops_set(b, j, "worker", json_string(worker));
        ops_set(b, j, "runningSeconds", json_null());
        if (!j || json_array_append_new(running, j) != 0) {
            ops_fail(b, RV_ERR_NOMEM);
            return;
        }
        if (!decoded)
            continue;
        char meta[RV_KEY_MAX], f1[32], f2[32];
        const char *p = job.kind == RV_KIND_BRANCHES ? "branch"
                        : job.kind == RV_KIND_PRS    ? "pr"
                                                     : "org";
        snprintf(f1, sizeof(f1), "%s_started_at", p);
        snprintf(f2, sizeof(f2), "%s_worker", p);
        const char *argv[] = {
            "HMGET", rv_key_kind_meta(meta, job.kind, job.repo), f1, f2};
        struct rv_cmd cmd;
        add_cmd(&cmd, argv, 4);
        ops_ask(b, &cmd, on_started, j, worker);
    }
}

static void on_queue_leases(struct ops_batch *b, const redisReply *reply,
                            void *arg, const char *tag)
{
    (void)arg;
    (void)tag;
    if (reply->type != REDIS_REPLY_ARRAY) {
        ops_fail(b, RV_ERR_PROTOCOL);
        return;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING || e->len >= 128)
            continue;
        char proc[RV_KEY_MAX];
        const char *argv[] = {"LRANGE", rv_key_processing(proc, e->str), "0",
                              "9"};
        struct rv_cmd cmd;
        add_cmd(&cmd, argv, 4);
        ops_ask(b, &cmd, on_processing, NULL, e->str);
    }
}

static void reply_built(struct ops_batch *b)
{
    if (b->rc != RV_OK) {
        ops_reply_failed(b->call, b->rc);
        return;
    }
    api_reply_json(b->call, 200, b->out);
    b->out = NULL;
}

void api_ops_queue(struct api_call *call)
{
    if (!ops_access_global(call))
        return;
    struct ops_batch *b = ops_batch_new(
        call,
        json_pack("{s:[],s:I,s:[],s:I}", "waiting", "waitingTotal",
                  (json_int_t)0, "running", "deadLetters", (json_int_t)0),
        reply_built);
    if (!b)
        return;
    char first[16];
    snprintf(first, sizeof(first), "-%d", OPS_WAITING_MAX);
    const char *range[] = {"LRANGE", RV_KEY_QUEUE, first, "-1"};
    const char *depth[] = {"LLEN", RV_KEY_QUEUE};
    const char *dead[] = {"LLEN", RV_KEY_DEADLETTER};
    struct rv_cmd cmd;
    add_cmd(&cmd, range, 4);
    ops_ask(b, &cmd, on_waiting, NULL, NULL);
    add_cmd(&cmd, depth, 2);
    ops_ask(b, &cmd, on_count, NULL, "waitingTotal");
    add_cmd(&cmd, dead, 2);
    ops_ask(b, &cmd, on_count, NULL, "deadLetters");
    ask_live_leases(b, on_queue_leases, false);
    ops_release(b);
}

/* ---- GET /v1/workers ---- */

static void on_worker_hash(struct ops_batch *b, const redisReply *reply,
                           void *arg, const char *tag)
{
    (void)tag;
    json_t *w = arg;
    static const char *const names[] = {"host", "pid", "startedAt", "syncsDone",
                                        "syncsFailed"};
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 5)
        return;
    for (size_t i = 0; i < 5; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        int64_t v;
        if (i == 0) {
            ops_set(b, w, names[i], json_string(e->str));
        } else if (rv_parse_i64(e->str, 0, INT64_MAX, &v) == 0) {
            if (i == 2) {
                char at[32];
                rv_iso8601(v, at, sizeof(at));
                ops_set(b, w, names[i], json_string(at));
            } else {
                ops_set(b, w, names[i], json_integer(v));
            }
        }
    }
}

static void on_worker_job(struct ops_batch *b, const redisReply *reply,
                          void *arg, const char *tag)
{
    (void)tag;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    bool decoded;
    ops_set(b, arg, "job",
            ops_payload_json(reply->element[0]->str, reply->element[0]->len,
                             NULL, &decoded));
}

static void on_worker_leases(struct ops_batch *b, const redisReply *reply,
                             void *arg, const char *tag)
{
    (void)arg;
    (void)tag;
    json_t *workers = json_object_get(b->out, "workers");
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2) {
        ops_fail(b, RV_ERR_PROTOCOL);
        return;
    }
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *id = reply->element[i];
        const redisReply *score = reply->element[i + 1];
        int64_t expiry;
        if (id->type != REDIS_REPLY_STRING || id->len >= 128 ||
            score->type != REDIS_REPLY_STRING ||
            rv_parse_i64(score->str, 0, INT64_MAX, &expiry) != 0)
            continue;
        char at[32];
        rv_iso8601(expiry, at, sizeof(at));
        json_t *w =
            json_pack("{s:s,s:n,s:n,s:s,s:n,s:n,s:i,s:i}", "id", id->str,
                      "host", "pid", "leaseExpiresAt", at, "job", "startedAt",
                      "syncsDone", 0, "syncsFailed", 0);
        if (!w || json_array_append_new(workers, w) != 0) {
            ops_fail(b, RV_ERR_NOMEM);
            return;
        }
        char key[RV_KEY_MAX], proc[RV_KEY_MAX];
        const char *hm[] = {"HMGET",      rv_key_worker(key, id->str),
                            "host",       "pid",
                            "startedAt",  "syncsDone",
                            "syncsFailed"};
        const char *lr[] = {"LRANGE", rv_key_processing(proc, id->str), "0",
                            "0"};
        struct rv_cmd cmd;
        add_cmd(&cmd, hm, 7);
        ops_ask(b, &cmd, on_worker_hash, w, NULL);
        add_cmd(&cmd, lr, 4);
        ops_ask(b, &cmd, on_worker_job, w, NULL);
    }
}

void api_ops_workers(struct api_call *call)
{
    if (!ops_access_global(call))
        return;
    struct ops_batch *b =
        ops_batch_new(call, json_pack("{s:[]}", "workers"), reply_built);
    if (!b)
        return;
    ask_live_leases(b, on_worker_leases, true);
    ops_release(b);
}

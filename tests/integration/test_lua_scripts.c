/*
 * The Redis state machine of lua/, driven the way the binaries drive it:
 * scripts through their generated builders and rv_rsync_run, job payloads from the
 * job codec, keys from keys.h, on a private redis-server. A second plain
 * hiredis connection subscribes to rv:events so each test can assert what
 * was published, in order.
 *
 * Times are fixed round numbers (1.7e12 ms) so a script that lets Lua print
 * a timestamp as a float ("1.7e+12") fails the checks on the stored text.
 */
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cmd.h"
#include "common/errors.h"
#include "common/job.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/rconn.h"
#include "common/scripts.h"
#include "rvtest.h"

#define T0 INT64_C(1700000000000)
#define LEASE_MS 30000
#define BASE_MS 10000
#define CAP_MS 60000

static struct rvt_redis redis;
static struct rv_rsync rs;
static redisContext *sub;

/* ---- jobs ---- */

/* A job as the test holds it: the decoded fields and the exact payload. */
struct tjob {
    struct rv_job job;
    char *payload; /* malloc'd */
    size_t len;
};

static void tjob_free(struct tjob *j)
{
    free(j->payload);
    memset(j, 0, sizeof(*j));
}

static void tjob_new(struct tjob *j, const char *repo, rv_kind kind,
                     rv_reason reason)
{
    memset(j, 0, sizeof(*j));
    CHECK_INT(rv_job_init(&j->job, repo, kind, reason), RV_OK);
    CHECK_INT(rv_job_encode(&j->job, &j->payload, &j->len), RV_OK);
}

static bool tjob_decode(struct tjob *j, const char *buf, size_t len)
{
    memset(j, 0, sizeof(*j));
    if (rv_job_decode(buf, len, &j->job, NULL, 0) != RV_OK)
        return false;
    j->payload = malloc(len);
    if (!j->payload)
        return false;
    memcpy(j->payload, buf, len);
    j->len = len;
    return true;
}

/* ---- plain Redis helpers ---- */

/* hiredis formats (%b takes a pointer and a length), so no printf
 * attribute here. */
static redisReply *cmdf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *reply = NULL;
    if (rv_rsync_ensure(&rs) == RV_OK)
        reply = redisvCommand(rs.ctx, fmt, ap);
    va_end(ap);
    CHECK(reply != NULL);
    return reply;
}

static long long intf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Runs a command answering an integer; -1 on anything else. */
static long long intf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *reply = NULL;
    if (rv_rsync_ensure(&rs) == RV_OK)
        reply = redisvCommand(rs.ctx, fmt, ap);
    va_end(ap);
    long long v = reply && reply->type == REDIS_REPLY_INTEGER
                      ? reply->integer : -1;
    if (reply)
        freeReplyObject(reply);
    return v;
}

/* A field of the repo's meta hash, in a static ring of buffers (valid for
 * the next 7 calls); "(nil)" when absent. */
static const char *meta(const char *id, const char *field)
{
    static char ring[8][512];
    static int next;
    char *out = ring[next++ % 8];
    char key[RV_KEY_MAX];
    redisReply *r = cmdf("HGET %s %s", rv_key_meta(key, id), field);
    snprintf(out, 512, "%s",
             r && r->type == REDIS_REPLY_STRING ? r->str : "(nil)");
    if (r)
        freeReplyObject(r);
    return out;
}

/* A string key's value, "(nil)" when absent; same ring rules as meta. */
static const char *get(const char *key)
{
    static char ring[4][1024];
    static int next;
    char *out = ring[next++ % 4];
    redisReply *r = cmdf("GET %s", key);
    snprintf(out, 1024, "%s",
             r && r->type == REDIS_REPLY_STRING ? r->str : "(nil)");
    if (r)
        freeReplyObject(r);
    return out;
}

/* A zset score as text exactly as Redis stores it, "(nil)" when absent. */
static const char *zscore(const char *key, const char *member)
{
    static char ring[4][64];
    static int next;
    char *out = ring[next++ % 4];
    redisReply *r = cmdf("ZSCORE %s %s", key, member);
    snprintf(out, 64, "%s",
             r && r->type == REDIS_REPLY_STRING ? r->str : "(nil)");
    if (r)
        freeReplyObject(r);
    return out;
}

static long long llen(const char *key)
{
    return intf("LLEN %s", key);
}

static const char *proc(const char *worker)
{
    static char ring[4][RV_KEY_MAX];
    static int next;
    return rv_key_processing(ring[next++ % 4], worker);
}

/* Whether the list holds exactly this payload. */
static bool list_has(const char *key, const struct tjob *j)
{
    redisReply *r = cmdf("LPOS %s %b", key, j->payload, j->len);
    bool has = r && r->type == REDIS_REPLY_INTEGER;
    if (r)
        freeReplyObject(r);
    return has;
}

/* Decodes the list element at index (LINDEX); false if none or garbage. */
static bool list_job(const char *key, long index, struct tjob *j)
{
    redisReply *r = cmdf("LINDEX %s %ld", key, index);
    bool ok = r && r->type == REDIS_REPLY_STRING &&
              tjob_decode(j, r->str, r->len);
    if (r)
        freeReplyObject(r);
    return ok;
}

/* Every key of the repo, counted with SCAN (what an operator would do). */
static long repo_key_count(const char *id)
{
    char pattern[RV_KEY_MAX];
    snprintf(pattern, sizeof(pattern), "rv:{%s}:*", id);
    long count = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = cmdf("SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r)
                freeReplyObject(r);
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        count += (long)r->element[1]->elements;
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return count;
}

/* The meta hash as one "field=value;" string, sorted by Redis's order of
 * HGETALL (stable while the hash does not change). */
static char *meta_dump(const char *id)
{
    char key[RV_KEY_MAX];
    redisReply *r = cmdf("HGETALL %s", rv_key_meta(key, id));
    size_t cap = 8192, n = 0;
    char *out = calloc(1, cap);
    for (size_t i = 0; out && r && r->type == REDIS_REPLY_ARRAY &&
                       i + 1 < r->elements; i += 2)
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s=%s;",
                              r->element[i]->str, r->element[i + 1]->str);
    if (r)
        freeReplyObject(r);
    return out;
}

/* ---- events ---- */

static void sub_open(void)
{
    sub = redisConnectUnix(redis.sock);
    CHECK(sub && !sub->err);
    if (!sub || sub->err)
        return;
    struct timeval tv = {5, 0};
    redisSetTimeout(sub, tv);
    redisReply *r = redisCommand(sub, "SUBSCRIBE %s", RV_CHANNEL_EVENTS);
    CHECK(r && r->type == REDIS_REPLY_ARRAY);
    if (r)
        freeReplyObject(r);
}

/* Every event published since the last call, oldest first: a PING on the
 * subscribed connection answers after every message published before it,
 * so no sleeping is needed. New reference (an array, maybe empty). */
static json_t *events(void)
{
    json_t *all = json_array();
    if (!sub || redisAppendCommand(sub, "PING") != REDIS_OK)
        return all;
    for (;;) {
        void *v = NULL;
        if (redisGetReply(sub, &v) != REDIS_OK || !v) {
            CHECK(!"no reply on the subscribed connection");
            break;
        }
        redisReply *r = v;
        bool is_pong = r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
                       r->element[0]->type == REDIS_REPLY_STRING &&
                       strcmp(r->element[0]->str, "pong") == 0;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
            strcmp(r->element[0]->str, "message") == 0) {
            json_error_t jerr;
            json_t *ev = json_loadb(r->element[2]->str, r->element[2]->len, 0,
                                    &jerr);
            CHECK(ev != NULL); /* every event is valid JSON */
            json_array_append_new(all, ev ? ev : json_null());
        }
        freeReplyObject(r);
        if (is_pong)
            break;
    }
    return all;
}

/* The events as "type kind status|..." (projection: "projection kind"),
 * e.g. "status branches running|projection branches|status branches idle".
 * Malloc'd. */
static char *trace(const json_t *evs)
{
    size_t cap = 4096, n = 0;
    char *out = calloc(1, cap);
    size_t i;
    json_t *ev;
    json_array_foreach(evs, i, ev) {
        const char *type = json_string_value(json_object_get(ev, "type"));
        const char *kind = json_string_value(json_object_get(ev, "kind"));
        const char *status = json_string_value(json_object_get(ev, "status"));
        const char *repo = json_string_value(json_object_get(ev, "repo"));
        if (type && strcmp(type, "removed") == 0)
            n += (size_t)snprintf(out + n, cap - n, "%sremoved %s",
                                  n ? "|" : "", repo ? repo : "?");
        else
            n += (size_t)snprintf(out + n, cap - n, "%s%s %s%s%s",
                                  n ? "|" : "", type ? type : "?",
                                  kind ? kind : "?", status ? " " : "",
                                  status ? status : "");
    }
    return out;
}

#define CHECK_TRACE(expected)                                                \
    do {                                                                     \
        json_t *evs_ = events();                                             \
        char *t_ = trace(evs_);                                              \
        CHECK_STR(t_, expected);                                             \
        free(t_);                                                            \
        json_decref(evs_);                                                   \
    } while (0)

/* ---- the scripts, argument for argument ---- */

static redisReply *run(struct rv_cmd *cmd)
{
    redisReply *reply = rv_rsync_run(&rs, cmd);
    rv_cmd_free(cmd);
    CHECK(reply != NULL);
    if (reply && reply->type == REDIS_REPLY_ERROR)
        fprintf(stderr, "script error: %s\n", reply->str);
    return reply;
}

/* The reply's code; the reply is freed unless out is given. */
static int code(redisReply *reply, redisReply **out)
{
    int rc = rv_script_reply_code(reply);
    if (out)
        *out = reply;
    else if (reply)
        freeReplyObject(reply);
    return rc;
}

/* registerRepo with interval 0, first schedule at now + 300 s. Fills the
 * jobs it queued (pj is left empty without github). */
static int do_register(const char *id, const char *github, int64_t now,
                       struct tjob *bj, struct tjob *pj)
{
    char k[RV_KEY_MAX];
    bool has_github = github && *github;
    tjob_new(bj, id, RV_KIND_BRANCHES, RV_REASON_REGISTER);
    memset(pj, 0, sizeof(*pj));
    if (has_github)
        tjob_new(pj, id, RV_KIND_PRS, RV_REASON_REGISTER);
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    char url[RV_KEY_MAX];
    snprintf(url, sizeof(url), "https://example.com/%s.git", id);
    rv_script_registerRepo(&cmd, &(struct rv_registerrepo_args){
        .meta_key = rv_key_meta(k, id),
        .id = id,
        .url = url,
        .github = has_github ? github : "",
        .default_branch = "",
        .interval_s = 0,
        .now_ms = now,
        .next_at_ms = now + 300000,
        .branch_job_id = bj->job.id,
        .branch_payload = bj->payload, .branch_payload_len = bj->len,
        .pr_job_id = has_github ? pj->job.id : "",
        .pr_payload = has_github ? pj->payload : "",
        .pr_payload_len = has_github ? pj->len : 0});
    return code(run(&cmd), NULL);
}

/* Registers and forgets the jobs (they stay in rv:queue). */
static int do_register_quiet(const char *id, const char *github)
{
    struct tjob bj, pj;
    int rc = do_register(id, github, T0, &bj, &pj);
    tjob_free(&bj);
    tjob_free(&pj);
    return rc;
}

/* requestRefresh; fills j with the job sent and outcome with the answer. */
static int do_refresh(const char *id, rv_kind kind, bool front,
                      struct tjob *j, char *outcome, size_t outlen)
{
    char k[RV_KEY_MAX];
    tjob_new(j, id, kind, front ? RV_REASON_USER : RV_REASON_SCHEDULE);
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_script_requestRefresh(&cmd, &(struct rv_requestrefresh_args){
        .meta_key = rv_key_meta(k, id),
        .kind = rv_kind_name(kind),
        .job_id = j->job.id,
        .payload = j->payload, .payload_len = j->len,
        .is_front = front});
    redisReply *reply;
    int rc = code(run(&cmd), &reply);
    if (outcome)
        snprintf(outcome, outlen, "%s",
                 rc == RV_OK && reply->elements >= 2 &&
                         reply->element[1]->type == REDIS_REPLY_STRING
                     ? reply->element[1]->str : "-");
    if (reply)
        freeReplyObject(reply);
    return rc;
}

/* A user refresh whose job the test does not keep; returns the outcome. */
static const char *refresh_outcome(const char *id, rv_kind kind)
{
    static char ring[4][32];
    static int next;
    char *out = ring[next++ % 4];
    struct tjob j;
    int rc = do_refresh(id, kind, true, &j, out, 32);
    if (rc != RV_OK)
        snprintf(out, 32, "%s", rv_errname(rc));
    tjob_free(&j);
    return out;
}

/* What BLMOVE rv:queue rv:processing:W RIGHT LEFT does, without blocking. */
static bool take(const char *worker, struct tjob *j)
{
    redisReply *r = cmdf("LMOVE %s %s RIGHT LEFT", RV_KEY_QUEUE, proc(worker));
    bool ok = r && r->type == REDIS_REPLY_STRING &&
              tjob_decode(j, r->str, r->len);
    if (r)
        freeReplyObject(r);
    return ok;
}

static int do_claim(const char *worker, const struct tjob *j, int64_t now,
                    long long *gen)
{
    char k[RV_KEY_MAX];
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_script_claimJob(&cmd, &(struct rv_claimjob_args){
        .meta_key = rv_key_meta(k, j->job.repo),
        .processing_key = proc(worker),
        .kind = rv_kind_name(j->job.kind),
        .job_id = j->job.id,
        .payload = j->payload, .payload_len = j->len,
        .worker = worker,
        .now_ms = now,
        .lease_ms = LEASE_MS});
    redisReply *reply;
    int rc = code(run(&cmd), &reply);
    if (gen)
        *gen = rc == RV_OK && reply->elements >= 2 ? reply->element[1]->integer
                                                    : -1;
    if (reply)
        freeReplyObject(reply);
    return rc;
}

/* Set by a test: commits and failures offer no follow-up job (id and
 * payload ""), as the job loop does when it has no memory for one. */
static bool offer_no_followup;

struct commit_in {
    const char *data;      /* the kind's document */
    const char *overview;  /* the rendered fragment */
    const char *other_rev; /* '' = any */
    const char *changed;   /* JSON for the projection event */
    int64_t next_at;       /* 0 = now + 1000 */
};

/* commitProjection. followup (may be NULL) receives the follow-up job
 * offered to the script. */
static int do_commit(const char *worker, const struct tjob *j, long long gen,
                     int64_t now, const struct commit_in *in,
                     long long *version, int *changed, struct tjob *followup)
{
    char k[5][RV_KEY_MAX];
    const char *id = j->job.repo;
    bool is_branches = j->job.kind == RV_KIND_BRANCHES;
    struct tjob f;
    tjob_new(&f, id, j->job.kind, RV_REASON_FOLLOWUP);
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_script_commitProjection(&cmd, &(struct rv_commitprojection_args){
        .meta_key = rv_key_meta(k[0], id),
        .data_key = is_branches ? rv_key_branches(k[1], id)
                                : rv_key_prs(k[1], id),
        .overview_key = rv_key_overview(k[2], id),
        .processing_key = proc(worker),
        .stats_key = rv_key_stats(k[3], now / 60000),
        .worker_key = rv_key_worker(k[4], worker),
        .kind = rv_kind_name(j->job.kind),
        .job_id = j->job.id,
        .gen = gen,
        .payload = j->payload, .payload_len = j->len,
        .now_ms = now,
        .data = in->data,
        .overview = in->overview,
        .other_rev = in->other_rev ? in->other_rev : "",
        .changed = in->changed ? in->changed : "{}",
        .next_at_ms = in->next_at ? in->next_at : now + 1000,
        .followup_id = offer_no_followup ? "" : f.job.id,
        .followup_payload = offer_no_followup ? "" : f.payload,
        .followup_payload_len = offer_no_followup ? 0 : f.len});
    redisReply *reply;
    int rc = code(run(&cmd), &reply);
    if (rc == RV_OK && reply->elements >= 3) {
        if (version)
            *version = reply->element[1]->integer;
        if (changed)
            *changed = (int)reply->element[2]->integer;
    }
    if (reply)
        freeReplyObject(reply);
    if (followup)
        *followup = f;
    else
        tjob_free(&f);
    return rc;
}

/* A commit with plain data (the same overview text as the data). */
static int commit_data(const char *worker, const struct tjob *j,
                       long long gen, int64_t now, const char *data)
{
    struct commit_in in = {.data = data, .overview = data};
    return do_commit(worker, j, gen, now, &in, NULL, NULL, NULL);
}

#define ERROR_JSON "{\"code\":\"fetch_failed\",\"message\":\"no route\"," \
                   "\"at\":\"2023-11-14T22:13:20.000Z\"}"

/* failSync with the test's backoff (base 10 s, cap 60 s). next_at gets the
 * next try as the script answers it. */
static int do_fail(const char *worker, const struct tjob *j, long long gen,
                   int64_t now, int64_t retry_at, char *next_at, size_t nlen)
{
    char k[RV_KEY_MAX], stats[RV_KEY_MAX], self[RV_KEY_MAX];
    struct tjob f;
    tjob_new(&f, j->job.repo, j->job.kind, RV_REASON_FOLLOWUP);
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_script_failSync(&cmd, &(struct rv_failsync_args){
        .meta_key = rv_key_meta(k, j->job.repo),
        .processing_key = proc(worker),
        .stats_key = rv_key_stats(stats, now / 60000),
        .worker_key = rv_key_worker(self, worker),
        .kind = rv_kind_name(j->job.kind),
        .job_id = j->job.id,
        .gen = gen,
        .payload = j->payload, .payload_len = j->len,
        .now_ms = now,
        .error_json = ERROR_JSON,
        .retry_at_ms = retry_at,
        .backoff_base_ms = BASE_MS,
        .backoff_cap_ms = CAP_MS,
        .followup_id = offer_no_followup ? "" : f.job.id,
        .followup_payload = offer_no_followup ? "" : f.payload,
        .followup_payload_len = offer_no_followup ? 0 : f.len});
    tjob_free(&f);
    redisReply *reply;
    int rc = code(run(&cmd), &reply);
    if (next_at)
        snprintf(next_at, nlen, "%s",
                 rc == RV_OK && reply->elements >= 2 &&
                         reply->element[1]->type == REDIS_REPLY_STRING
                     ? reply->element[1]->str : "-");
    if (reply)
        freeReplyObject(reply);
    return rc;
}

#define DEAD_ENTRY "{\"reason\":\"attempts exhausted\",\"worker\":\"w-a\"}"
#define LOST_JSON "{\"code\":\"worker_lost\",\"message\":\"gone\"," \
                  "\"at\":\"2023-11-14T22:13:20.000Z\"}"

/* reapJob for one payload of worker (j NULL: clean-up only); the requeue
 * payload is j with attempt + 1, as the reaper builds it. outcome gets
 * the second element of the answer. */
static int do_reap(const char *worker, const struct tjob *j, int64_t now,
                   bool exhausted, char *outcome, size_t outlen)
{
    char k[RV_KEY_MAX];
    struct rv_job next;
    char *requeue = NULL;
    size_t requeue_len = 0;
    if (j) {
        next = j->job;
        next.attempt++;
        CHECK_INT(rv_job_encode(&next, &requeue, &requeue_len), RV_OK);
    }
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_script_reapJob(&cmd, &(struct rv_reapjob_args){
        .processing_key = proc(worker),
        .meta_key = rv_key_meta(k, j ? j->job.repo : "-"),
        .worker = worker,
        .payload = j ? j->payload : "", .payload_len = j ? j->len : 0,
        .now_ms = now,
        .kind = j ? rv_kind_name(j->job.kind) : "",
        .job_id = j ? j->job.id : "",
        .requeue_payload = requeue ? requeue : "",
        .requeue_payload_len = requeue_len,
        .is_exhausted = exhausted,
        .dead_entry = DEAD_ENTRY,
        .error_json = LOST_JSON});
    free(requeue);
    redisReply *reply;
    int rc = code(run(&cmd), &reply);
    if (outcome)
        snprintf(outcome, outlen, "%s",
                 rc == RV_OK && reply->elements >= 2 &&
                         reply->element[1]->type == REDIS_REPLY_STRING
                     ? reply->element[1]->str : "-");
    if (reply)
        freeReplyObject(reply);
    return rc;
}

static int do_dead_letter(const char *worker, const char *payload,
                          size_t len, const char *entry)
{
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_script_deadLetter(&cmd, &(struct rv_deadletter_args){
        .processing_key = proc(worker),
        .payload = payload, .payload_len = len, .entry = entry});
    return code(run(&cmd), NULL);
}

/* scheduleTick of "kind:id" at now with a 300 s hold. Returns 1 when it
 * queued, 0 when not, -1 on an error answer. */
static int do_tick(const char *id, rv_kind kind, int64_t now)
{
    char k[RV_KEY_MAX], member[RV_KEY_MAX];
    snprintf(member, sizeof(member), "%s:%s", rv_kind_name(kind), id);
    struct tjob j;
    tjob_new(&j, id, kind, RV_REASON_SCHEDULE);
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_script_scheduleTick(&cmd, &(struct rv_scheduletick_args){
        .meta_key = rv_key_meta(k, id),
        .member = member,
        .kind = rv_kind_name(kind),
        .now_ms = now,
        .job_id = j.job.id,
        .payload = j.payload, .payload_len = j.len,
        .hold_ms = 300000});
    tjob_free(&j);
    redisReply *reply;
    int rc = code(run(&cmd), &reply);
    int queued = rc == RV_OK && reply->elements >= 2
                     ? (int)reply->element[1]->integer : -1;
    if (reply)
        freeReplyObject(reply);
    return queued;
}

static int do_remove(const char *id)
{
    char k[4][RV_KEY_MAX];
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_script_removeRepo(&cmd, &(struct rv_removerepo_args){
        .meta_key = rv_key_meta(k[0], id),
        .branches_key = rv_key_branches(k[1], id),
        .prs_key = rv_key_prs(k[2], id),
        .overview_key = rv_key_overview(k[3], id),
        .id = id});
    return code(run(&cmd), NULL);
}

/* Runs every job in rv:queue to a successful commit (next sync at
 * T0 + 1000), so the tests start from idle repos. */
static void drain_queue(void)
{
    struct tjob j;
    while (take("w-drain", &j)) {
        long long gen;
        if (do_claim("w-drain", &j, T0, &gen) == RV_OK)
            CHECK_INT(commit_data("w-drain", &j, gen, T0, "{\"n\":0}"), RV_OK);
        tjob_free(&j);
    }
    CHECK_INT(llen(RV_KEY_QUEUE), 0);
}

/* Empties Redis and the event stream. */
static void reset(void)
{
    redisReply *r = cmdf("FLUSHALL");
    if (r)
        freeReplyObject(r);
    json_decref(events());
}

/* ---- tests ---- */

static void test_register_queues_the_first_sync_and_refuses_a_second(void)
{
    reset();
    char k[RV_KEY_MAX];
    struct tjob bj, pj;
    CHECK_INT(do_register("demo", "acme/demo", T0, &bj, &pj), RV_OK);
    CHECK_TRACE("status branches queued|status prs queued");

    /* Plain text an operator reads with HGETALL. */
    char *dump = meta_dump("demo");
    CHECK(strstr(dump, "branch_sync_status=queued;") != NULL);
    CHECK(strstr(dump, "pr_sync_status=queued;") != NULL);
    CHECK(strstr(dump, "version=0;") != NULL);
    CHECK(strstr(dump, "branch_sync_at=;") != NULL);
    CHECK(strstr(dump, "github=acme/demo;") != NULL);
    CHECK(strstr(dump, "created_at=1700000000000;") != NULL);
    CHECK_STR(meta("demo", "branch_job"), bj.job.id);
    CHECK_STR(meta("demo", "pr_job"), pj.job.id);

    /* Both first syncs wait in the queue, and the schedule has both. */
    CHECK_INT(llen(RV_KEY_QUEUE), 2);
    CHECK(list_has(RV_KEY_QUEUE, &bj));
    CHECK(list_has(RV_KEY_QUEUE, &pj));
    CHECK_STR(zscore(RV_KEY_SCHEDULE, "branches:demo"), "1700000300000");
    CHECK_STR(zscore(RV_KEY_SCHEDULE, "prs:demo"), "1700000300000");
    CHECK_INT(intf("SISMEMBER %s demo", RV_KEY_REPOS), 1);

    /* Without github: only branches; PRs stay idle, unscheduled. */
    struct tjob sb, sp;
    CHECK_INT(do_register("solo", "", T0, &sb, &sp), RV_OK);
    CHECK_TRACE("status branches queued");
    CHECK_STR(meta("solo", "branch_sync_status"), "queued");
    CHECK_STR(meta("solo", "pr_sync_status"), "idle");
    CHECK_STR(meta("solo", "pr_job"), "");
    CHECK_STR(zscore(RV_KEY_SCHEDULE, "prs:solo"), "(nil)");
    CHECK_INT(llen(RV_KEY_QUEUE), 3);

    /* A second registration changes nothing and publishes nothing. */
    struct tjob b2, p2;
    CHECK_INT(do_register("demo", "other/name", T0 + 5, &b2, &p2),
              RV_ERR_EXISTS);
    char *after = meta_dump("demo");
    CHECK_STR(after, dump);
    CHECK_INT(llen(RV_KEY_QUEUE), 3);
    CHECK_INT(intf("HLEN %s", rv_key_meta(k, "demo")) > 0, 1);
    CHECK_TRACE("");
    free(dump);
    free(after);
    tjob_free(&bj);
    tjob_free(&pj);
    tjob_free(&sb);
    tjob_free(&sp);
    tjob_free(&b2);
    tjob_free(&p2);
}

static void test_refreshes_while_queued_coalesce_into_one_job(void)
{
    reset();
    CHECK_INT(do_register_quiet("solo", ""), RV_OK);
    drain_queue();
    json_decref(events());

    struct tjob first;
    char outcome[32];
    CHECK_INT(do_refresh("solo", RV_KIND_BRANCHES, true, &first, outcome,
                         sizeof(outcome)), RV_OK);
    CHECK_STR(outcome, "queued");
    for (int i = 0; i < 4; i++)
        CHECK_STR(refresh_outcome("solo", RV_KIND_BRANCHES), "coalesced");
    CHECK_INT(llen(RV_KEY_QUEUE), 1);
    CHECK(list_has(RV_KEY_QUEUE, &first));
    CHECK_STR(meta("solo", "branch_job"), first.job.id);
    CHECK_STR(meta("solo", "branch_sync_status"), "queued");
    CHECK_TRACE("status branches queued");

    /* PRs of a repo without github are refused, not queued. */
    CHECK_STR(refresh_outcome("solo", RV_KIND_PRS), "no_github");
    CHECK_STR(refresh_outcome("nope", RV_KIND_BRANCHES), "not_found");
    CHECK_INT(llen(RV_KEY_QUEUE), 1);
    tjob_free(&first);
}

/* Claims a job, asks three refreshes while it runs, and returns the gen;
 * `other` registers a second repo so "front" is measurable. */
static long long run_with_three_refreshes(struct tjob *j)
{
    reset();
    CHECK_INT(do_register_quiet("solo", ""), RV_OK);
    CHECK(take("w-a", j));
    long long gen = 0;
    CHECK_INT(do_claim("w-a", j, T0, &gen), RV_OK);
    CHECK_INT(do_register_quiet("other", ""), RV_OK);
    json_decref(events());

    CHECK_STR(refresh_outcome("solo", RV_KIND_BRANCHES), "queued");
    CHECK_STR(refresh_outcome("solo", RV_KIND_BRANCHES), "coalesced");
    CHECK_STR(refresh_outcome("solo", RV_KIND_BRANCHES), "coalesced");
    CHECK_STR(meta("solo", "branch_pending"), "1");
    CHECK_STR(meta("solo", "branch_sync_status"), "running");
    CHECK_INT(llen(RV_KEY_QUEUE), 1); /* only other's first sync */
    CHECK_TRACE("");
    return gen;
}

/* After the run ended: exactly one follow-up, at the front; running it to
 * `finish` leaves nothing more queued. */
static void check_one_followup(const struct tjob *followup_offered,
                               bool finish_with_fail)
{
    CHECK_INT(llen(RV_KEY_QUEUE), 2);
    struct tjob f;
    CHECK(list_job(RV_KEY_QUEUE, -1, &f)); /* the consuming end */
    CHECK_STR(f.job.repo, "solo");
    CHECK_INT(f.job.reason, RV_REASON_FOLLOWUP);
    CHECK_STR(f.job.id, followup_offered->job.id);
    CHECK_STR(meta("solo", "branch_sync_status"), "queued");
    CHECK_STR(meta("solo", "branch_job"), f.job.id);
    CHECK_STR(meta("solo", "branch_pending"), "0");
    tjob_free(&f);

    struct tjob g;
    CHECK(take("w-b", &g));
    long long gen = 0;
    CHECK_INT(do_claim("w-b", &g, T0 + 100, &gen), RV_OK);
    json_decref(events());
    if (finish_with_fail) {
        CHECK_INT(do_fail("w-b", &g, gen, T0 + 200, 0, NULL, 0), RV_OK);
        CHECK_STR(meta("solo", "branch_sync_status"), "error");
        CHECK_TRACE("status branches error");
    } else {
        CHECK_INT(commit_data("w-b", &g, gen, T0 + 200, "{\"n\":1}"), RV_OK);
        CHECK_STR(meta("solo", "branch_sync_status"), "idle");
        CHECK_TRACE("projection branches|status branches idle");
    }
    CHECK_INT(llen(RV_KEY_QUEUE), 1); /* other's job only: nothing more */
    CHECK_INT(llen(proc("w-b")), 0);
    CHECK_STR(meta("solo", "branch_job"), "");
    tjob_free(&g);
}

static void test_refresh_while_running_queues_exactly_one_followup(void)
{
    struct tjob j, offered;
    long long gen = run_with_three_refreshes(&j);
    struct commit_in in = {.data = "{\"n\":0}", .overview = "{\"n\":0}"};
    CHECK_INT(do_commit("w-a", &j, gen, T0 + 50, &in, NULL, NULL, &offered),
              RV_OK);
    CHECK_TRACE("projection branches|status branches queued");
    CHECK_INT(llen(proc("w-a")), 0);
    check_one_followup(&offered, false);
    tjob_free(&offered);
    tjob_free(&j);
}

/* Without a follow-up to offer (out of memory) the run still ends: the job
 * leaves the processing list, the refresh asked for meanwhile is dropped
 * with the pending flag, and nothing is queued. */
static void test_a_run_without_a_followup_still_ends(void)
{
    for (int fail = 0; fail < 2; fail++) {
        struct tjob j;
        long long gen = run_with_three_refreshes(&j);
        offer_no_followup = true;
        if (fail)
            CHECK_INT(do_fail("w-a", &j, gen, T0 + 50, 0, NULL, 0), RV_OK);
        else
            CHECK_INT(commit_data("w-a", &j, gen, T0 + 50, "{\"n\":0}"),
                      RV_OK);
        offer_no_followup = false;
        CHECK_INT(llen(proc("w-a")), 0);
        CHECK_INT(llen(RV_KEY_QUEUE), 1); /* other's first sync only */
        CHECK_STR(meta("solo", "branch_pending"), "0");
        CHECK_STR(meta("solo", "branch_job"), "");
        CHECK_STR(meta("solo", "branch_sync_status"), fail ? "error" : "idle");
        json_decref(events());
        tjob_free(&j);
    }
}

static void test_refresh_while_running_queues_one_followup_after_a_failure(void)
{
    struct tjob j;
    long long gen = run_with_three_refreshes(&j);
    /* failSync builds its own follow-up job; read it back from the queue. */
    CHECK_INT(do_fail("w-a", &j, gen, T0 + 50, 0, NULL, 0), RV_OK);
    CHECK_TRACE("status branches queued");
    CHECK_STR(meta("solo", "branch_sync_error"), ERROR_JSON);
    struct tjob offered;
    CHECK(list_job(RV_KEY_QUEUE, -1, &offered));
    check_one_followup(&offered, true);
    tjob_free(&offered);
    tjob_free(&j);
}

static void test_user_refreshes_go_ahead_of_scheduled_ticks(void)
{
    reset();
    CHECK_INT(do_register_quiet("a", ""), RV_OK);
    CHECK_INT(do_register_quiet("b", ""), RV_OK);
    CHECK_INT(do_register_quiet("c", ""), RV_OK);
    CHECK_INT(do_register_quiet("d", ""), RV_OK);
    drain_queue(); /* every repo next due at T0 + 1000 */

    CHECK_INT(do_tick("a", RV_KIND_BRANCHES, T0 + 2000), 1);
    CHECK_STR(refresh_outcome("b", RV_KIND_BRANCHES), "queued");
    CHECK_INT(do_tick("c", RV_KIND_BRANCHES, T0 + 2000), 1);
    CHECK_STR(refresh_outcome("d", RV_KIND_BRANCHES), "queued");

    /* Workers take from the right: user work first, newest user first,
     * then scheduled work oldest first. */
    char order[16] = "";
    struct tjob j;
    while (take("w-a", &j)) {
        size_t used = strlen(order);
        rv_strlcpy(order + used, j.job.repo, sizeof(order) - used);
        tjob_free(&j);
    }
    CHECK_STR(order, "dbac");
}

static void test_user_refresh_overtakes_a_scheduled_job(void)
{
    reset();
    CHECK_INT(do_register_quiet("a", ""), RV_OK);
    CHECK_INT(do_register_quiet("b", ""), RV_OK);
    drain_queue();
    CHECK_INT(do_tick("b", RV_KIND_BRANCHES, T0 + 2000), 1);
    CHECK_INT(do_tick("a", RV_KIND_BRANCHES, T0 + 2000), 1);
    json_decref(events());

    /* a is queued at the back behind b; a user asks for it. */
    struct tjob user;
    char outcome[32];
    CHECK_INT(do_refresh("a", RV_KIND_BRANCHES, true, &user, outcome,
                         sizeof(outcome)), RV_OK);
    CHECK_STR(outcome, "queued");
    CHECK_STR(meta("a", "branch_job"), user.job.id);
    CHECK_STR(meta("a", "branch_job_end"), "front");
    CHECK_TRACE("status branches queued");
    /* A second user refresh coalesces with the promoted job. */
    CHECK_STR(refresh_outcome("a", RV_KIND_BRANCHES), "coalesced");

    struct tjob first, second, third;
    CHECK(take("w-a", &first));
    CHECK_STR(first.job.id, user.job.id);
    long long gen;
    CHECK_INT(do_claim("w-a", &first, T0 + 3000, &gen), RV_OK);
    CHECK(take("w-b", &second));
    CHECK_STR(second.job.repo, "b");
    CHECK(take("w-c", &third));
    CHECK_STR(third.job.repo, "a"); /* the superseded scheduled job */
    CHECK_INT(do_claim("w-c", &third, T0 + 3000, NULL), RV_ERR_STALE_JOB);
    CHECK_INT(llen(proc("w-c")), 0);
    CHECK_STR(meta("a", "branch_worker"), "w-a");
    tjob_free(&user);
    tjob_free(&first);
    tjob_free(&second);
    tjob_free(&third);
}

static void test_claims_hand_out_increasing_generations_and_fence_stale_ones(
    void)
{
    reset();
    char k[RV_KEY_MAX];
    CHECK_INT(do_register_quiet("solo", ""), RV_OK);
    struct tjob j1, j2, unused;
    long long g1 = 0, g2 = 0, version = 0;
    CHECK(take("w-a", &j1));
    CHECK_INT(do_claim("w-a", &j1, T0, &g1), RV_OK);
    CHECK_INT(g1, 1);
    CHECK_STR(zscore(RV_KEY_LEASES, "w-a"), "1700000030000");
    struct commit_in in = {.data = "{\"d\":1}", .overview = "{\"d\":1}"};
    CHECK_INT(do_commit("w-a", &j1, g1, T0, &in, &version, NULL, NULL), RV_OK);
    CHECK_INT(version, 1);

    CHECK_STR(refresh_outcome("solo", RV_KIND_BRANCHES), "queued");
    CHECK(take("w-b", &j2));
    CHECK_INT(do_claim("w-b", &j2, T0 + 10, &g2), RV_OK);
    CHECK(g2 > g1);
    json_decref(events());

    /* The first claim's generation no longer commits nor fails. */
    struct commit_in late = {.data = "{\"d\":\"old\"}",
                             .overview = "{\"d\":\"old\"}"};
    CHECK_INT(do_commit("w-b", &j2, g1, T0 + 20, &late, NULL, NULL, NULL),
              RV_ERR_FENCED);
    CHECK_STR(get(rv_key_branches(k, "solo")), "{\"d\":1}");
    CHECK_STR(get(rv_key_overview(k, "solo")), "{\"d\":1}");
    CHECK_STR(meta("solo", "version"), "1");
    CHECK_INT(do_fail("w-b", &j2, g1, T0 + 20, 0, NULL, 0), RV_ERR_FENCED);
    CHECK_STR(meta("solo", "branch_sync_status"), "running");
    CHECK_STR(meta("solo", "branch_sync_error"), "");
    CHECK_STR(meta("solo", "branch_fails"), "0");
    CHECK_TRACE("");

    /* The current one does. */
    in.data = in.overview = "{\"d\":2}";
    CHECK_INT(do_commit("w-b", &j2, g2, T0 + 30, &in, &version, NULL, NULL),
              RV_OK);
    CHECK_INT(version, 2);
    tjob_free(&j1);
    tjob_free(&j2);
    (void)unused;
}

static void test_commit_bumps_version_only_when_the_overview_changed(void)
{
    reset();
    char k[RV_KEY_MAX];
    CHECK_INT(do_register_quiet("solo", ""), RV_OK);
    json_decref(events());
    struct tjob j;
    long long gen, version = -1;
    int changed = -1;
    CHECK(take("w-a", &j));
    CHECK_INT(do_claim("w-a", &j, T0, &gen), RV_OK);
    struct commit_in in = {.data = "{\"b\":[1]}", .overview = "{\"o\":1}",
                           .changed = "{\"branches\":{\"added\":[\"main\"]}}",
                           .next_at = T0 + 300000};
    CHECK_INT(do_commit("w-a", &j, gen, T0 + 5, &in, &version, &changed,
                        NULL), RV_OK);
    CHECK_INT(version, 1);
    CHECK_INT(changed, 1);
    CHECK_STR(get(rv_key_branches(k, "solo")), "{\"b\":[1]}");
    CHECK_STR(get(rv_key_overview(k, "solo")), "{\"o\":1}");
    CHECK_STR(meta("solo", "branch_sync_at"), "1700000000005");
    CHECK_STR(meta("solo", "branch_rev"), "1");
    CHECK_STR(meta("solo", "branch_worker"), "");
    CHECK_STR(zscore(RV_KEY_SCHEDULE, "branches:solo"), "1700000300000");
    CHECK_INT(llen(proc("w-a")), 0);

    /* running, then the projection, then the status, each with meta. */
    json_t *evs = events();
    char *t = trace(evs);
    CHECK_STR(t, "status branches running|projection branches|"
                 "status branches idle");
    free(t);
    json_t *running = json_array_get(evs, 0);
    json_t *proj = json_array_get(evs, 1);
    json_t *idle = json_array_get(evs, 2);
    CHECK_STR(json_string_value(json_object_get(running, "repo")), "solo");
    CHECK_STR(json_string_value(json_object_get(
                  json_object_get(running, "meta"), "version")), "0");
    json_t *pm = json_object_get(proj, "meta");
    CHECK_STR(json_string_value(json_object_get(pm, "version")), "1");
    CHECK_STR(json_string_value(json_object_get(pm, "branch_sync_at")),
              "1700000000005");
    json_t *ch = json_object_get(json_object_get(proj, "changed"), "branches");
    CHECK_STR(json_string_value(json_array_get(json_object_get(ch, "added"),
                                               0)), "main");
    json_t *im = json_object_get(idle, "meta");
    CHECK_STR(json_string_value(json_object_get(im, "branch_sync_status")),
              "idle");
    CHECK_STR(json_string_value(json_object_get(im, "pr_sync_status")),
              "idle");
    CHECK_STR(json_string_value(json_object_get(im, "github")), "");
    json_decref(evs);
    tjob_free(&j);

    /* New data, same overview: the data is stored, the version stays. */
    CHECK_STR(refresh_outcome("solo", RV_KIND_BRANCHES), "queued");
    CHECK(take("w-a", &j));
    CHECK_INT(do_claim("w-a", &j, T0 + 10, &gen), RV_OK);
    in.data = "{\"b\":[2]}";
    CHECK_INT(do_commit("w-a", &j, gen, T0 + 15, &in, &version, &changed,
                        NULL), RV_OK);
    CHECK_INT(version, 1);
    CHECK_INT(changed, 0);
    CHECK_STR(get(rv_key_branches(k, "solo")), "{\"b\":[2]}");
    CHECK_STR(meta("solo", "branch_rev"), "2");
    CHECK_TRACE("status branches queued|status branches running|"
                "status branches idle");
    tjob_free(&j);

    /* A new overview: version 2. */
    CHECK_STR(refresh_outcome("solo", RV_KIND_BRANCHES), "queued");
    CHECK(take("w-a", &j));
    CHECK_INT(do_claim("w-a", &j, T0 + 20, &gen), RV_OK);
    in.overview = "{\"o\":2}";
    CHECK_INT(do_commit("w-a", &j, gen, T0 + 25, &in, &version, &changed,
                        NULL), RV_OK);
    CHECK_INT(version, 2);
    CHECK_INT(changed, 1);
    CHECK_STR(meta("solo", "version"), "2");
    tjob_free(&j);
}

static void test_commit_asks_for_a_retry_when_the_other_kind_moved(void)
{
    reset();
    char k[RV_KEY_MAX];
    struct tjob bj, pj, got1, got2;
    CHECK_INT(do_register("demo", "acme/demo", T0, &bj, &pj), RV_OK);
    CHECK(take("w-a", &got1));
    CHECK(take("w-b", &got2));
    /* Whichever order they were queued in, w-br runs branches. */
    struct tjob *branches = got1.job.kind == RV_KIND_BRANCHES ? &got1 : &got2;
    struct tjob *prs = branches == &got1 ? &got2 : &got1;
    const char *wbr = branches == &got1 ? "w-a" : "w-b";
    const char *wpr = branches == &got1 ? "w-b" : "w-a";
    long long gb, gp;
    CHECK_INT(do_claim(wbr, branches, T0, &gb), RV_OK);
    CHECK_INT(do_claim(wpr, prs, T0, &gp), RV_OK);

    /* The branch sync rendered with pr_rev 0; the PR sync commits first. */
    CHECK_STR(meta("demo", "pr_rev"), "0");
    struct commit_in pin = {.data = "{\"prs\":[]}", .overview = "{\"p\":1}",
                            .other_rev = "0"};
    CHECK_INT(do_commit(wpr, prs, gp, T0 + 1, &pin, NULL, NULL, NULL), RV_OK);
    CHECK_STR(meta("demo", "pr_rev"), "1");
    json_decref(events());

    struct commit_in bin = {.data = "{\"b\":1}", .overview = "{\"bp\":0}",
                            .other_rev = "0"};
    CHECK_INT(do_commit(wbr, branches, gb, T0 + 2, &bin, NULL, NULL, NULL),
              RV_ERR_RETRY);
    CHECK(list_has(proc(wbr), branches)); /* still owned by its worker */
    CHECK_STR(meta("demo", "branch_sync_status"), "running");
    CHECK_STR(get(rv_key_branches(k, "demo")), "(nil)");
    CHECK_STR(get(rv_key_overview(k, "demo")), "{\"p\":1}");
    CHECK_STR(meta("demo", "version"), "1");
    CHECK_TRACE("");

    /* Rendered again with the new rev, it goes through. */
    bin.other_rev = "1";
    bin.overview = "{\"bp\":1}";
    long long version;
    CHECK_INT(do_commit(wbr, branches, gb, T0 + 3, &bin, &version, NULL,
                        NULL), RV_OK);
    CHECK_INT(version, 2);
    CHECK_INT(llen(proc(wbr)), 0);
    tjob_free(&bj);
    tjob_free(&pj);
    tjob_free(&got1);
    tjob_free(&got2);
}

static void test_fail_keeps_the_data_and_backs_off_exponentially(void)
{
    reset();
    char k[RV_KEY_MAX];
    CHECK_INT(do_register_quiet("solo", ""), RV_OK);
    drain_queue(); /* good data {"n":0}, synced at T0 */
    CHECK_STR(meta("solo", "version"), "1");

    /* base 10 s doubling, capped at 60 s. */
    static const int64_t delays[] = {10000, 20000, 40000, 60000, 60000};
    for (int i = 0; i < 5; i++) {
        int64_t now = T0 + 1000000 * (i + 1);
        struct tjob j;
        long long gen;
        char next_at[32], expect[32];
        CHECK_STR(refresh_outcome("solo", RV_KIND_BRANCHES), "queued");
        CHECK(take("w-a", &j));
        CHECK_INT(do_claim("w-a", &j, now, &gen), RV_OK);
        json_decref(events());
        CHECK_INT(do_fail("w-a", &j, gen, now, 0, next_at, sizeof(next_at)),
                  RV_OK);
        snprintf(expect, sizeof(expect), "%lld",
                 (long long)(now + delays[i]));
        CHECK_STR(next_at, expect);
        CHECK_STR(zscore(RV_KEY_SCHEDULE, "branches:solo"), expect);
        char fails[8];
        snprintf(fails, sizeof(fails), "%d", i + 1);
        CHECK_STR(meta("solo", "branch_fails"), fails);
        CHECK_STR(meta("solo", "branch_sync_status"), "error");
        CHECK_STR(meta("solo", "branch_sync_error"), ERROR_JSON);
        CHECK_STR(meta("solo", "branch_sync_at"), "1700000000000");
        CHECK_STR(meta("solo", "branch_worker"), "");
        CHECK_STR(meta("solo", "version"), "1");
        CHECK_STR(get(rv_key_branches(k, "solo")), "{\"n\":0}");
        CHECK_INT(llen(proc("w-a")), 0);
        CHECK_INT(llen(RV_KEY_QUEUE), 0);
        json_t *evs = events();
        char *t = trace(evs);
        CHECK_STR(t, "status branches error");
        CHECK_STR(json_string_value(json_object_get(
                      json_object_get(json_array_get(evs, 0), "meta"),
                      "branch_sync_error")), ERROR_JSON);
        free(t);
        json_decref(evs);
        tjob_free(&j);
    }

    /* A success clears the error and the count. */
    struct tjob j;
    long long gen;
    CHECK_STR(refresh_outcome("solo", RV_KIND_BRANCHES), "queued");
    CHECK(take("w-a", &j));
    CHECK_INT(do_claim("w-a", &j, T0 + 9000000, &gen), RV_OK);
    CHECK_INT(commit_data("w-a", &j, gen, T0 + 9000000, "{\"n\":9}"), RV_OK);
    CHECK_STR(meta("solo", "branch_fails"), "0");
    CHECK_STR(meta("solo", "branch_sync_error"), "");
    CHECK_STR(meta("solo", "branch_sync_status"), "idle");
    tjob_free(&j);
}

static void test_fail_waits_until_retry_at(void)
{
    reset();
    CHECK_INT(do_register_quiet("solo", ""), RV_OK);
    struct tjob j;
    long long gen;
    char next_at[32];
    CHECK(take("w-a", &j));
    CHECK_INT(do_claim("w-a", &j, T0, &gen), RV_OK);
    CHECK_INT(do_fail("w-a", &j, gen, T0, T0 + 3600000, next_at,
                      sizeof(next_at)), RV_OK);
    CHECK_STR(next_at, "1700003600000");
    CHECK_STR(zscore(RV_KEY_SCHEDULE, "branches:solo"), "1700003600000");
    /* Past the plain backoff, the scheduler still waits. */
    CHECK_INT(do_tick("solo", RV_KIND_BRANCHES, T0 + 60000), 0);
    CHECK_INT(do_tick("solo", RV_KIND_BRANCHES, T0 + 3600000), 1);
    tjob_free(&j);
}

static void test_reaper_requeues_a_lapsed_workers_job_and_fences_it(void)
{
    reset();
    char k[RV_KEY_MAX];
    CHECK_INT(do_register_quiet("solo", ""), RV_OK);
    struct tjob j;
    long long g1, g2;
    CHECK(take("w-a", &j));
    CHECK_INT(do_claim("w-a", &j, T0, &g1), RV_OK);
    CHECK_STR(refresh_outcome("solo", RV_KIND_BRANCHES), "queued");
    json_decref(events());

    /* w-a's lease lapsed at T0 + 30 s. */
    char outcome[32];
    CHECK_INT(do_reap("w-a", &j, T0 + 31000, false, outcome,
                      sizeof(outcome)), RV_OK);
    CHECK_STR(outcome, "requeued");
    CHECK_TRACE("status branches queued");
    CHECK_INT(llen(proc("w-a")), 0);
    CHECK_STR(zscore(RV_KEY_LEASES, "w-a"), "(nil)");
    CHECK_STR(meta("solo", "branch_sync_status"), "queued");
    CHECK_STR(meta("solo", "branch_gen"), "2");
    CHECK_STR(meta("solo", "branch_worker"), "");
    /* The rerun starts after the refresh, so it answers it. */
    CHECK_STR(meta("solo", "branch_pending"), "0");
    CHECK_INT(llen(RV_KEY_QUEUE), 1);
    struct tjob again;
    CHECK(list_job(RV_KEY_QUEUE, -1, &again));
    CHECK_STR(again.job.id, j.job.id);
    CHECK_INT(again.job.attempt, 1);
    tjob_free(&again);

    /* Another worker runs it; the dead one's late commit is fenced. */
    CHECK(take("w-b", &again));
    CHECK_INT(do_claim("w-b", &again, T0 + 32000, &g2), RV_OK);
    CHECK_INT(g2, 3);
    CHECK_INT(commit_data("w-b", &again, g2, T0 + 33000, "{\"by\":\"b\"}"),
              RV_OK);
    CHECK_INT(commit_data("w-a", &j, g1, T0 + 34000, "{\"by\":\"a\"}"),
              RV_ERR_FENCED);
    CHECK_STR(get(rv_key_branches(k, "solo")), "{\"by\":\"b\"}");
    CHECK_STR(meta("solo", "version"), "1");
    CHECK_STR(meta("solo", "branch_sync_status"), "idle");
    CHECK_INT(llen(RV_KEY_QUEUE), 0);
    tjob_free(&again);
    tjob_free(&j);
}

static void test_reaper_spares_a_worker_that_renewed_its_lease(void)
{
    reset();
    CHECK_INT(do_register_quiet("solo", ""), RV_OK);
    struct tjob j;
    CHECK(take("w-a", &j));
    CHECK_INT(do_claim("w-a", &j, T0, NULL), RV_OK);
    /* The heartbeat (housekeeping.c) renews with a plain ZADD. */
    CHECK_INT(intf("ZADD %s %lld w-a", RV_KEY_LEASES,
                   (long long)(T0 + 40000)), 0);
    json_decref(events());
    char outcome[32];
    CHECK_INT(do_reap("w-a", &j, T0 + 31000, false, outcome,
                      sizeof(outcome)), RV_ERR_STALE_JOB);
    CHECK(list_has(proc("w-a"), &j));
    CHECK_STR(meta("solo", "branch_sync_status"), "running");
    CHECK_STR(meta("solo", "branch_gen"), "1");
    CHECK_INT(llen(RV_KEY_QUEUE), 0);
    CHECK_TRACE("");
    tjob_free(&j);
}

static void test_reaper_dead_letters_a_job_at_the_attempt_limit(void)
{
    reset();
    CHECK_INT(do_register_quiet("solo", ""), RV_OK);
    struct tjob j;
    long long gen;
    CHECK(take("w-a", &j));
    CHECK_INT(do_claim("w-a", &j, T0, &gen), RV_OK);
    json_decref(events());
    char outcome[32];
    CHECK_INT(do_reap("w-a", &j, T0 + 31000, true, outcome, sizeof(outcome)),
              RV_OK);
    CHECK_STR(outcome, "deadlettered");
    CHECK_TRACE("status branches error");
    CHECK_INT(llen(RV_KEY_DEADLETTER), 1);
    redisReply *r = cmdf("LINDEX %s 0", RV_KEY_DEADLETTER);
    CHECK(r && r->type == REDIS_REPLY_STRING);
    if (r && r->type == REDIS_REPLY_STRING)
        CHECK_STR(r->str, DEAD_ENTRY);
    if (r)
        freeReplyObject(r);
    CHECK_STR(meta("solo", "branch_sync_status"), "error");
    CHECK_STR(meta("solo", "branch_sync_error"), LOST_JSON);
    CHECK_STR(meta("solo", "branch_job"), "");
    CHECK_INT(llen(RV_KEY_QUEUE), 0);
    CHECK_INT(llen(proc("w-a")), 0);
    CHECK_INT(commit_data("w-a", &j, gen, T0 + 40000, "{}"), RV_ERR_FENCED);
    /* The scheduler still owns the kind: the next tick retries it. */
    CHECK_INT(do_tick("solo", RV_KIND_BRANCHES, T0 + 400000), 1);
    tjob_free(&j);
}

static void test_reaper_forgets_the_lease_of_an_empty_processing_list(void)
{
    reset();
    char outcome[32];
    CHECK_INT(intf("ZADD %s %lld w-gone", RV_KEY_LEASES, (long long)T0), 1);
    CHECK_INT(do_reap("w-gone", NULL, T0 + 1, false, outcome,
                      sizeof(outcome)), RV_OK);
    CHECK_STR(outcome, "cleaned");
    CHECK_STR(zscore(RV_KEY_LEASES, "w-gone"), "(nil)");

    /* With jobs still listed the lease stays, so they can be reaped. */
    CHECK_INT(intf("ZADD %s %lld w-busy", RV_KEY_LEASES, (long long)T0), 1);
    CHECK_INT(intf("LPUSH %s x", proc("w-busy")), 1);
    CHECK_INT(do_reap("w-busy", NULL, T0 + 1, false, NULL, 0), RV_OK);
    CHECK_STR(zscore(RV_KEY_LEASES, "w-busy"), "1700000000000");
}

static void test_dead_letter_moves_a_malformed_payload_out(void)
{
    reset();
    static const char junk[] = "\x93\xff\x00not msgpack";
    redisReply *r = cmdf("LPUSH %s %b", proc("w-a"), junk, sizeof(junk) - 1);
    if (r)
        freeReplyObject(r);
    CHECK_INT(do_dead_letter("w-a", junk, sizeof(junk) - 1,
                             "{\"reason\":\"bad\"}"), RV_OK);
    CHECK_INT(llen(proc("w-a")), 0);
    CHECK_INT(llen(RV_KEY_DEADLETTER), 1);
    CHECK_TRACE("");
    /* The list keeps the newest 1000. */
    for (int i = 0; i < 1005; i++)
        do_dead_letter("w-a", "", 0, "{\"reason\":\"more\"}");
    CHECK_INT(llen(RV_KEY_DEADLETTER), 1000);
}

static void test_schedule_tick_queues_a_due_repo_exactly_once(void)
{
    reset();
    CHECK_INT(do_register_quiet("solo", ""), RV_OK);
    CHECK_INT(do_register_quiet("gh", "acme/gh"), RV_OK);
    drain_queue(); /* everything next due at T0 + 1000 */
    json_decref(events());

    /* Not due yet. */
    CHECK_INT(do_tick("solo", RV_KIND_BRANCHES, T0 + 999), 0);
    /* Two schedulers tick at the same instant: one job. */
    CHECK_INT(do_tick("solo", RV_KIND_BRANCHES, T0 + 2000), 1);
    CHECK_INT(do_tick("solo", RV_KIND_BRANCHES, T0 + 2000), 0);
    CHECK_INT(llen(RV_KEY_QUEUE), 1);
    CHECK_STR(zscore(RV_KEY_SCHEDULE, "branches:solo"), "1700000302000");
    CHECK_STR(meta("solo", "branch_job_end"), "back");
    CHECK_TRACE("status branches queued");

    /* Due again while queued, then while running: not queued again. */
    CHECK_INT(intf("ZADD %s %lld branches:solo", RV_KEY_SCHEDULE,
                   (long long)T0), 0);
    CHECK_INT(do_tick("solo", RV_KIND_BRANCHES, T0 + 3000), 0);
    CHECK_INT(llen(RV_KEY_QUEUE), 1);
    struct tjob j;
    CHECK(take("w-a", &j));
    CHECK_INT(do_claim("w-a", &j, T0 + 3000, NULL), RV_OK);
    CHECK_INT(intf("ZADD %s %lld branches:solo", RV_KEY_SCHEDULE,
                   (long long)T0), 0);
    CHECK_INT(do_tick("solo", RV_KIND_BRANCHES, T0 + 4000), 0);
    CHECK_INT(llen(RV_KEY_QUEUE), 0);
    tjob_free(&j);
    json_decref(events());

    /* PRs of a repo without github: the member goes. */
    CHECK_INT(intf("ZADD %s %lld prs:solo", RV_KEY_SCHEDULE, (long long)T0),
              1);
    CHECK_INT(do_tick("solo", RV_KIND_PRS, T0 + 5000), 0);
    CHECK_STR(zscore(RV_KEY_SCHEDULE, "prs:solo"), "(nil)");
    /* A removed repo's member goes too. */
    CHECK_INT(intf("ZADD %s %lld branches:gone", RV_KEY_SCHEDULE,
                   (long long)T0), 1);
    CHECK_INT(do_tick("gone", RV_KIND_BRANCHES, T0 + 5000), 0);
    CHECK_STR(zscore(RV_KEY_SCHEDULE, "branches:gone"), "(nil)");
    /* PRs of a repo with github are scheduled like branches. */
    CHECK_INT(do_tick("gh", RV_KIND_PRS, T0 + 5000), 1);
    CHECK_INT(llen(RV_KEY_QUEUE), 1);
    CHECK_TRACE("status prs queued");
}

static void test_remove_leaves_nothing_and_late_work_recreates_nothing(void)
{
    reset();
    CHECK_INT(do_register_quiet("gh", "acme/gh"), RV_OK);
    CHECK_INT(do_register_quiet("keep", ""), RV_OK);
    drain_queue(); /* data, overview, meta for both */
    CHECK_INT(repo_key_count("gh"), 4);

    /* A branch sync queued, a PR sync running when the repo goes. */
    CHECK_STR(refresh_outcome("gh", RV_KIND_BRANCHES), "queued");
    CHECK_STR(refresh_outcome("gh", RV_KIND_PRS), "queued");
    struct tjob prs, branches;
    CHECK(take("w-a", &prs));
    CHECK_INT(prs.job.kind, RV_KIND_PRS);
    long long gen;
    CHECK_INT(do_claim("w-a", &prs, T0 + 10, &gen), RV_OK);
    json_decref(events());

    CHECK_INT(do_remove("gh"), RV_OK);
    CHECK_TRACE("removed gh");
    CHECK_INT(repo_key_count("gh"), 0);
    CHECK_STR(zscore(RV_KEY_SCHEDULE, "branches:gh"), "(nil)");
    CHECK_STR(zscore(RV_KEY_SCHEDULE, "prs:gh"), "(nil)");
    CHECK_INT(intf("SISMEMBER %s gh", RV_KEY_REPOS), 0);
    CHECK_INT(intf("SISMEMBER %s keep", RV_KEY_REPOS), 1);
    CHECK_INT(repo_key_count("keep"), 3);
    CHECK_INT(do_remove("gh"), RV_ERR_NOT_FOUND);

    /* The running sync finishes: refused, nothing written back. */
    CHECK_INT(commit_data("w-a", &prs, gen, T0 + 20, "{\"prs\":[]}"),
              RV_ERR_NOT_FOUND);
    CHECK_INT(do_fail("w-a", &prs, gen, T0 + 20, 0, NULL, 0),
              RV_ERR_NOT_FOUND);
    CHECK_INT(llen(proc("w-a")), 0);
    /* The queued job is dropped at claim. */
    CHECK(take("w-b", &branches));
    CHECK_STR(branches.job.repo, "gh");
    CHECK_INT(do_claim("w-b", &branches, T0 + 30, NULL), RV_ERR_NOT_FOUND);
    CHECK_INT(llen(proc("w-b")), 0);
    CHECK_INT(repo_key_count("gh"), 0);
    CHECK_STR(zscore(RV_KEY_SCHEDULE, "prs:gh"), "(nil)");
    CHECK_TRACE("");
    tjob_free(&prs);
    tjob_free(&branches);
}

static void test_claim_drops_a_job_the_kind_no_longer_names(void)
{
    reset();
    CHECK_INT(do_register_quiet("solo", ""), RV_OK);
    /* A payload for the right repo and kind but another job id, as a
     * duplicate left behind would be. */
    struct tjob stray;
    tjob_new(&stray, "solo", RV_KIND_BRANCHES, RV_REASON_USER);
    redisReply *r = cmdf("LPUSH %s %b", proc("w-a"), stray.payload,
                         stray.len);
    if (r)
        freeReplyObject(r);
    json_decref(events());
    CHECK_INT(do_claim("w-a", &stray, T0, NULL), RV_ERR_STALE_JOB);
    CHECK_INT(llen(proc("w-a")), 0);
    CHECK_STR(meta("solo", "branch_sync_status"), "queued");
    CHECK_STR(meta("solo", "branch_gen"), "0");
    CHECK_TRACE("");
    /* The real job still runs. */
    struct tjob j;
    CHECK(take("w-b", &j));
    CHECK_INT(do_claim("w-b", &j, T0, NULL), RV_OK);
    tjob_free(&j);
    tjob_free(&stray);
}

static void test_a_worker_claims_again_after_losing_the_reply(void)
{
    reset();
    CHECK_INT(do_register_quiet("solo", ""), RV_OK);
    struct tjob j;
    long long g1, g2;
    CHECK(take("w-a", &j));
    CHECK_INT(do_claim("w-a", &j, T0, &g1), RV_OK);
    /* The reply was lost with the connection; the worker resumes the job
     * found in its own processing list. */
    CHECK_INT(do_claim("w-a", &j, T0 + 10, &g2), RV_OK);
    CHECK(g2 > g1);
    /* No other worker can take it over. */
    CHECK_INT(do_claim("w-b", &j, T0 + 10, NULL), RV_ERR_STALE_JOB);
    CHECK_INT(commit_data("w-a", &j, g2, T0 + 20, "{\"n\":1}"), RV_OK);
    CHECK_STR(meta("solo", "branch_sync_status"), "idle");
    tjob_free(&j);
}

static void test_a_job_the_reaper_took_back_cannot_be_claimed(void)
{
    reset();
    CHECK_INT(do_register_quiet("solo", ""), RV_OK);
    struct tjob j, again;
    /* w-a moved the job but hung before claiming it; its lease lapsed. */
    CHECK(take("w-a", &j));
    CHECK_INT(intf("ZADD %s %lld w-a", RV_KEY_LEASES, (long long)T0), 1);
    CHECK_INT(do_reap("w-a", &j, T0 + 1, false, NULL, 0), RV_OK);
    CHECK(take("w-b", &again));
    /* w-a wakes up: its job is gone from its list, so it cannot claim. */
    CHECK_INT(do_claim("w-a", &j, T0 + 2, NULL), RV_ERR_STALE_JOB);
    CHECK_INT(do_claim("w-b", &again, T0 + 2, NULL), RV_OK);
    CHECK_STR(meta("solo", "branch_worker"), "w-b");
    tjob_free(&j);
    tjob_free(&again);
}

static void test_a_repo_registered_again_fences_syncs_of_the_old_one(void)
{
    reset();
    char k[RV_KEY_MAX];
    CHECK_INT(do_register_quiet("solo", ""), RV_OK);
    struct tjob old, fresh;
    long long gold, gnew;
    CHECK(take("w-a", &old));
    CHECK_INT(do_claim("w-a", &old, T0, &gold), RV_OK);
    CHECK_INT(do_remove("solo"), RV_OK);
    CHECK_INT(do_register_quiet("solo", ""), RV_OK);
    CHECK(take("w-b", &fresh));
    CHECK_INT(do_claim("w-b", &fresh, T0 + 10, &gnew), RV_OK);
    CHECK_INT(gold, gnew); /* generations start again from 0 */
    CHECK_INT(commit_data("w-a", &old, gold, T0 + 20, "{\"old\":1}"),
              RV_ERR_FENCED);
    CHECK_INT(do_fail("w-a", &old, gold, T0 + 20, 0, NULL, 0),
              RV_ERR_FENCED);
    CHECK_STR(get(rv_key_branches(k, "solo")), "(nil)");
    CHECK_STR(meta("solo", "branch_sync_status"), "running");
    CHECK_INT(commit_data("w-b", &fresh, gnew, T0 + 30, "{\"new\":1}"),
              RV_OK);
    CHECK_STR(get(rv_key_branches(k, "solo")), "{\"new\":1}");
    tjob_free(&old);
    tjob_free(&fresh);
}

/* A hash field as a number; -1 when absent. */
static long long hget_num(const char *key, const char *field)
{
    redisReply *r = cmdf("HGET %s %s", key, field);
    long long v = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10)
                                                : -1;
    freeReplyObject(r);
    return v;
}

static void test_ended_syncs_count_in_the_minutes_history(void)
{
    reset();
    char stats[RV_KEY_MAX], later[RV_KEY_MAX], self[RV_KEY_MAX];
    rv_key_stats(stats, (T0 + 300) / 60000);
    rv_key_stats(later, (T0 + 71000) / 60000);
    rv_key_worker(self, "w-a");
    CHECK_INT(do_register_quiet("solo", ""), RV_OK);
    struct tjob j;
    long long gen;
    /* A worker without its hash (lease lapsed): counted in the history,
     * and its hash is not brought back without an expiry. */
    CHECK(take("w-a", &j));
    CHECK_INT(do_claim("w-a", &j, T0, &gen), RV_OK);
    CHECK_INT(commit_data("w-a", &j, gen, T0 + 300, "{\"n\":1}"), RV_OK);
    tjob_free(&j);
    CHECK_INT(hget_num(stats, "done:branches"), 1);
    CHECK_INT(hget_num(stats, "ms:branches:3"), 1); /* 300 ms: <= 500 */
    CHECK_INT(hget_num(stats, "failed:branches"), -1);
    CHECK(intf("PTTL %s", stats) > 86400000);
    CHECK_INT(intf("EXISTS %s", self), 0);

    /* A live worker's hash counts its failures; 70 s lands past 60 s. */
    CHECK_INT(intf("HSET %s syncsDone 0 syncsFailed 0", self), 2);
    CHECK_STR(refresh_outcome("solo", RV_KIND_BRANCHES), "queued");
    CHECK(take("w-a", &j));
    CHECK_INT(do_claim("w-a", &j, T0 + 1000, &gen), RV_OK);
    CHECK_INT(do_fail("w-a", &j, gen, T0 + 71000, 0, NULL, 0), RV_OK);
    tjob_free(&j);
    CHECK_INT(hget_num(later, "failed:branches"), 1);
    CHECK_INT(hget_num(later, "ms:branches:10"), 1);
    CHECK_INT(hget_num(self, "syncsFailed"), 1);
    CHECK_INT(hget_num(self, "syncsDone"), 0);
    json_decref(events());
}

/* sampleQueue keeps the largest depth seen in the minute. */
static void test_queue_samples_keep_the_minutes_maximum(void)
{
    reset();
    char stats[RV_KEY_MAX];
    rv_key_stats(stats, T0 / 60000);
    for (int i = 0; i < 3; i++)
        CHECK(intf("RPUSH %s x%d", RV_KEY_QUEUE, i) > 0);
    for (int pass = 0; pass < 2; pass++) {
        struct rv_cmd cmd;
        rv_cmd_init(&cmd);
        rv_script_sampleQueue(&cmd, &(struct rv_samplequeue_args){
            .stats_key = stats, .ttl_ms = RV_STATS_TTL_MS});
        CHECK_INT(code(run(&cmd), NULL), RV_OK);
        CHECK(intf("DEL %s", RV_KEY_QUEUE) >= 0);
    }
    CHECK_INT(hget_num(stats, "queue"), 3);
    CHECK(intf("PTTL %s", stats) > 86400000);
}

int main(void)
{
    rv_log_min_level = RV_LOG_WARN;
    if (rvt_redis_start(&redis, NULL) != 0 ||
        rvt_redis_connect(&redis, &rs) != 0) {
        fprintf(stderr, "cannot start redis-server\n");
        return 1;
    }
    sub_open();
    RUN(test_register_queues_the_first_sync_and_refuses_a_second);
    RUN(test_refreshes_while_queued_coalesce_into_one_job);
    RUN(test_refresh_while_running_queues_exactly_one_followup);
    RUN(test_refresh_while_running_queues_one_followup_after_a_failure);
    RUN(test_a_run_without_a_followup_still_ends);
    RUN(test_user_refreshes_go_ahead_of_scheduled_ticks);
    RUN(test_user_refresh_overtakes_a_scheduled_job);
    RUN(test_claims_hand_out_increasing_generations_and_fence_stale_ones);
    RUN(test_commit_bumps_version_only_when_the_overview_changed);
    RUN(test_commit_asks_for_a_retry_when_the_other_kind_moved);
    RUN(test_fail_keeps_the_data_and_backs_off_exponentially);
    RUN(test_fail_waits_until_retry_at);
    RUN(test_ended_syncs_count_in_the_minutes_history);
    RUN(test_queue_samples_keep_the_minutes_maximum);
    RUN(test_reaper_requeues_a_lapsed_workers_job_and_fences_it);
    RUN(test_reaper_spares_a_worker_that_renewed_its_lease);
    RUN(test_reaper_dead_letters_a_job_at_the_attempt_limit);
    RUN(test_reaper_forgets_the_lease_of_an_empty_processing_list);
    RUN(test_dead_letter_moves_a_malformed_payload_out);
    RUN(test_schedule_tick_queues_a_due_repo_exactly_once);
    RUN(test_remove_leaves_nothing_and_late_work_recreates_nothing);
    RUN(test_claim_drops_a_job_the_kind_no_longer_names);
    RUN(test_a_worker_claims_again_after_losing_the_reply);
    RUN(test_a_job_the_reaper_took_back_cannot_be_claimed);
    RUN(test_a_repo_registered_again_fences_syncs_of_the_old_one);
    if (sub)
        redisFree(sub);
    rv_rsync_close(&rs);
    rvt_redis_stop(&redis);
    return rvt_done();
}

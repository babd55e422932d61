/*
 * The dead-letter list (rv:deadletter, newest first): GET /v1/deadletters
 * pages it; POST /v1/deadletters/{n}/retry and DELETE /v1/deadletters/{n}
 * act on entry n, but only when it is still the entry the caller saw: each
 * entry is listed with "id", the SHA-1 of its text, which both writes take
 * as ?id= and their scripts (retryDeadLetter, dropDeadLetter) compare
 * before they change anything (409 otherwise).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/ops_private.h"
#include "common/deadletter.h"
#include "common/errors.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/scripts.h"
#include "common/util.h"

#define DEAD_LIMIT_DEFAULT 20
#define DEAD_LIMIT_MAX 100
#define DEAD_INDEX_MAX RV_DEAD_INDEX_MAX
#define SHA1_HEX RV_DEAD_ID_LEN

/* A query parameter as an integer in [min, max], def when absent. false
 * when it answered 400. */
static bool query_int(struct api_call *call, const char *name, int64_t min,
                      int64_t max, int64_t def, int64_t *out)
{
    char *s = api_query(call, name);
    *out = def;
    if (!s)
        return true;
    bool ok = rv_parse_i64(s, min, max, out) == 0;
    free(s);
    if (!ok)
        api_reply_error(call, 400, "invalid",
                        "%s must be an integer from %lld to %lld", name,
                        (long long)min, (long long)max);
    return ok;
}

/* ---- GET /v1/deadletters?limit=&cursor= ---- */

struct dead_page {
    int64_t cursor, limit;
};

static void on_total(struct ops_batch *b, const redisReply *reply, void *arg,
                     const char *tag)
{
    (void)tag;
    const struct dead_page *pg = arg;
    if (reply->type != REDIS_REPLY_INTEGER) {
        ops_fail(b, RV_ERR_PROTOCOL);
        return;
    }
    ops_set(b, b->out, "total", json_integer(reply->integer));
    int64_t next = pg->cursor + pg->limit;
    char text[24];
    snprintf(text, sizeof(text), "%lld", (long long)next);
    ops_set(b, b->out, "nextCursor",
            next < reply->integer ? json_string(text) : json_null());
}

/* An entry that is not a JSON object, shown as its first 2 KiB: as text
 * when that is UTF-8 (cut at a character), else as hex of its first
 * 1 KiB, so one binary entry cannot fail the whole page. */
static json_t *raw_entry(const char *s, size_t len)
{
    size_t n = len > 2048 ? 2048 : len;
    while (n > 0 && n < len && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--; /* do not cut a character in two */
    json_t *text = json_stringn(s, n);
    if (text)
        return json_pack("{s:o}", "raw", text);
    size_t h = len > 1024 ? 1024 : len;
    char hex[2 * 1024 + 1];
    rv_hex_encode(s, h, hex);
    return json_pack("{s:s,s:I}", "rawHex", hex, "bytes", (json_int_t)len);
}

static void on_entries(struct ops_batch *b, const redisReply *reply, void *arg,
                       const char *tag)
{
    (void)tag;
    const struct dead_page *pg = arg;
    json_t *list = json_object_get(b->out, "deadLetters");
    if (reply->type != REDIS_REPLY_ARRAY) {
        ops_fail(b, RV_ERR_PROTOCOL);
        return;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        char hex[SHA1_HEX + 1];
        if (e->type != REDIS_REPLY_STRING || !rv_dead_id(e->str, e->len, hex))
            continue;
        json_t *entry = json_loadb(e->str, e->len, 0, NULL);
        if (!json_is_object(entry)) {
            json_decref(entry);
            entry = raw_entry(e->str, e->len);
        }
        json_t *item = json_pack("{s:I,s:s,s:o}", "index",
                                 (json_int_t)(pg->cursor + (int64_t)i), "id",
                                 hex, "entry", entry);
        if (!item || json_array_append_new(list, item) != 0) {
            ops_fail(b, RV_ERR_NOMEM);
            return;
        }
    }
}

static void reply_page(struct ops_batch *b)
{
    if (b->rc != RV_OK) {
        ops_reply_failed(b->call, b->rc);
        return;
    }
    api_reply_json(b->call, 200, b->out);
    b->out = NULL;
}

struct dead_list {
    struct ops_batch *b;
    struct dead_page page;
};

void api_ops_deadletters(struct api_call *call)
{
    if (!ops_access_global(call))
        return;
    int64_t limit, cursor;
    if (!query_int(call, "limit", 1, DEAD_LIMIT_MAX, DEAD_LIMIT_DEFAULT,
                   &limit) ||
        !query_int(call, "cursor", 0, DEAD_INDEX_MAX, 0, &cursor))
        return;
    /* The page lives with the call (freed with it), which outlives the
     * batch's callbacks. */
    struct dead_page *pg = malloc(sizeof(*pg));
    if (!pg) {
        api_reply_rv_error(call, RV_ERR_NOMEM, "out of memory");
        return;
    }
    *pg = (struct dead_page){.cursor = cursor, .limit = limit};
    call->priv = pg;
    call->priv_free = free;
    struct ops_batch *b = ops_batch_new(
        call,
        json_pack("{s:[],s:i,s:n}", "deadLetters", "total", 0, "nextCursor"),
        reply_page);
    if (!b)
        return;
    char from[24], to[24];
    snprintf(from, sizeof(from), "%lld", (long long)cursor);
    snprintf(to, sizeof(to), "%lld", (long long)(cursor + limit - 1));
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_cmd_add(&cmd, "LRANGE");
    rv_cmd_add(&cmd, RV_KEY_DEADLETTER);
    rv_cmd_add(&cmd, from);
    rv_cmd_add(&cmd, to);
    ops_ask(b, &cmd, on_entries, pg, NULL);
    rv_cmd_init(&cmd);
    rv_cmd_add(&cmd, "LLEN");
    rv_cmd_add(&cmd, RV_KEY_DEADLETTER);
    ops_ask(b, &cmd, on_total, pg, NULL);
    ops_release(b);
}

/* ---- POST /v1/deadletters/{n}/retry, DELETE /v1/deadletters/{n} ---- */

/* What a write on entry n carries from its check to its script. */
struct dead_write {
    int64_t index;
    char expected[SHA1_HEX + 1];
    struct rv_job job; /* the new job (retry) */
};

/* Reads {n} and ?id=; false when it answered 400. */
static bool parse_target(struct api_call *call, struct dead_write *w)
{
    if (rv_parse_i64(call->id, 0, DEAD_INDEX_MAX, &w->index) != 0) {
        api_reply_error(call, 400, "invalid",
                        "the dead letter's index must be an integer from 0 "
                        "to %d",
                        DEAD_INDEX_MAX);
        return false;
    }
    char *id = api_query(call, "id");
    bool ok = rv_dead_id_valid(id);
    if (ok)
        memcpy(w->expected, id, SHA1_HEX + 1);
    free(id);
    if (!ok)
        api_reply_error(call, 400, "invalid",
                        "?id= must be the entry's id from GET "
                        "/v1/deadletters (40 lower-case hex digits)");
    return ok;
}

static void on_write(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct api_call *call = priv;
    struct dead_write *w = call->priv;
    int rc = reply ? rv_script_reply_code(reply) : RV_ERR_REDIS;
    bool is_retry = evhttp_request_get_command(call->req) == EVHTTP_REQ_POST;
    if (rc == RV_ERR_REDIS) {
        api_reply_unavailable(call);
    } else if (rc == RV_ERR_STALE_JOB) {
        api_reply_error(call, 409, "conflict",
                        "dead letter %lld is no longer the entry with that "
                        "id (the list moved); read it again",
                        (long long)w->index);
    } else if (rc == RV_ERR_NO_GITHUB) {
        api_reply_error(call, 400, "no_github",
                        "repo \"%s\" has no GitHub name, so no PR sync; "
                        "drop the entry instead",
                        w->job.repo);
    } else if (rc == RV_ERR_NOT_FOUND) {
        api_reply_error(call, 404, "not_found",
                        "the job's %s \"%s\" is gone; drop the entry instead",
                        w->job.kind == RV_KIND_ORG ? "org" : "repo",
                        w->job.repo);
    } else if (rc != RV_OK) {
        api_reply_rv_error(call, rc, "cannot change the dead letter");
    } else if (!is_retry) {
        LOG(RV_LOG_INFO, NULL, NULL, "dead letter %lld dropped",
            (long long)w->index);
        api_reply_json(call, 204, NULL);
    } else {
        const redisReply *o = reply->elements >= 2 ? reply->element[1] : NULL;
        const char *outcome =
            o && o->type == REDIS_REPLY_STRING ? o->str : "queued";
        LOG(RV_LOG_INFO, w->job.repo, w->job.id,
            "dead letter %lld retried (%s %s)", (long long)w->index,
            rv_kind_name(w->job.kind), outcome);
        api_reply_json(call, 202,
                       json_pack("{s:I,s:s,s:s,s:o*}", "retried",
                                 (json_int_t)w->index, "outcome", outcome,
                                 "kind", rv_kind_name(w->job.kind), "job",
                                 rv_job_to_json(&w->job)));
    }
}

static void on_checked(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    (void)ra;
    struct api_call *call = priv;
    struct dead_write *w = call->priv;
    char hex[SHA1_HEX + 1], repo[RV_REPO_ID_MAX + 1];
    rv_kind kind;
    if (!reply) {
        api_reply_unavailable(call);
        return;
    }
    if (reply->type != REDIS_REPLY_STRING) {
        api_reply_error(call, 404, "not_found", "no dead letter %lld",
                        (long long)w->index);
        return;
    }
    if (!rv_dead_id(reply->str, reply->len, hex) ||
        strcmp(hex, w->expected) != 0) {
        api_reply_error(call, 409, "conflict",
                        "dead letter %lld is no longer the entry with that "
                        "id (the list moved); read it again",
                        (long long)w->index);
        return;
    }
    if (!rv_dead_job(reply->str, reply->len, repo, sizeof(repo), &kind)) {
        api_reply_error(call, 422, "not_retryable",
                        "dead letter %lld holds no job that can run (a "
                        "payload that does not decode); drop it instead",
                        (long long)w->index);
        return;
    }
    struct rv_cmd cmd;
    int rc =
        rv_dead_retry_cmd(&cmd, w->index, w->expected, repo, kind, &w->job);
    if (rc != RV_OK) {
        api_reply_rv_error(call, rc, "cannot build the job");
        return;
    }
    api_send(call, &cmd, on_write, call);
}

static struct dead_write *dead_write_new(struct api_call *call)
{
    if (!ops_access_global(call))
        return NULL;
    struct dead_write *w = calloc(1, sizeof(*w));
    if (!w) {
        api_reply_rv_error(call, RV_ERR_NOMEM, "out of memory");
        return NULL;
    }
    call->priv = w;
    call->priv_free = free;
    return parse_target(call, w) ? w : NULL;
}

void api_ops_deadletter_retry(struct api_call *call)
{
    struct dead_write *w = dead_write_new(call);
    if (!w)
        return;
    char index[24];
    snprintf(index, sizeof(index), "%lld", (long long)w->index);
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_cmd_add(&cmd, "LINDEX");
    rv_cmd_add(&cmd, RV_KEY_DEADLETTER);
    rv_cmd_add(&cmd, index);
    api_send(call, &cmd, on_checked, call);
}

void api_ops_deadletter_drop(struct api_call *call)
{
    struct dead_write *w = dead_write_new(call);
    if (!w)
        return;
    struct rv_cmd cmd;
    rv_dead_drop_cmd(&cmd, w->index, w->expected);
    api_send(call, &cmd, on_write, call);
}

/* `repoview workers` (the live workers, their counts and current job) and
 * `repoview deadletters [--retry N | --drop N]`: what GET /v1/workers and
 * /v1/deadletters show, read from Redis directly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/deadletter.h"
#include "common/errors.h"
#include "common/keys.h"
#include "common/scripts.h"
#include "common/util.h"

/* Most workers and dead letters listed. */
#define WORKERS_MAX 200
#define DEAD_LIST_MAX 100

/* The string member name of o, or dflt. */
static const char *str_or(const json_t *o, const char *name, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, name));
    return s ? s : dflt;
}

/* A hash field of reply (HMGET order) as text, "" when absent. */
static const char *field_at(const redisReply *r, size_t i)
{
    return r && r->type == REDIS_REPLY_ARRAY && i < r->elements &&
                   r->element[i]->type == REDIS_REPLY_STRING
               ? r->element[i]->str
               : "";
}

/* One live worker as JSON: {id, host, pid, leaseExpiresAt, startedAt,
 * syncsDone, syncsFailed, job}; NULL on a Redis failure (printed). */
static json_t *worker_json(struct cli *c, const char *id, int64_t lease_ms)
{
    char key[RV_KEY_MAX], proc[RV_KEY_MAX], lease[32], started[32];
    redisReply *h = rv_rsync_command(
        &c->r, "HMGET %s host pid startedAt syncsDone syncsFailed",
        rv_key_worker(key, id));
    if (!h) {
        cli_fail_rc(c, RV_ERR_REDIS, "");
        return NULL;
    }
    struct cli_queued *items = NULL;
    size_t n = 0;
    if (cli_queue_load(c, rv_key_processing(proc, id), &items, &n) != CLI_OK) {
        freeReplyObject(h);
        return NULL;
    }
    int64_t pid = -1, at = 0, done = 0, failed = 0;
    rv_parse_i64(field_at(h, 1), 0, INT64_MAX, &pid);
    rv_parse_i64(field_at(h, 2), 0, INT64_MAX, &at);
    rv_parse_i64(field_at(h, 3), 0, INT64_MAX, &done);
    rv_parse_i64(field_at(h, 4), 0, INT64_MAX, &failed);
    rv_iso8601(lease_ms, lease, sizeof(lease));
    rv_iso8601(at, started, sizeof(started));
    json_t *w = json_pack(
        "{s:s,s:s,s:o,s:s,s:o,s:I,s:I,s:o}", "id", id, "host", field_at(h, 0),
        "pid", pid >= 0 ? json_integer(pid) : json_null(), "leaseExpiresAt",
        lease, "startedAt", at > 0 ? json_string(started) : json_null(),
        "syncsDone", (json_int_t)done, "syncsFailed", (json_int_t)failed, "job",
        n > 0 ? cli_queued_json(&items[n - 1]) : json_null());
    free(items);
    freeReplyObject(h);
    if (!w)
        cli_fail("out of memory");
    return w;
}

int cli_cmd_workers(struct cli *c, int argc, char **args)
{
    bool as_json = false;
    const struct cli_opt opts[] = {{"--json", NULL, &as_json},
                                   {NULL, NULL, NULL}};
    int npos;
    bool help;
    int rc = cli_parse("workers", argc, args, opts, NULL, 0, &npos, &help);
    if (rc != CLI_OK || help)
        return help ? cli_command_help("workers") : rc;
    if ((rc = cli_connect(c)) != CLI_OK)
        return rc;
    redisReply *leases = rv_rsync_command(
        &c->r, "ZRANGEBYSCORE %s %lld +inf WITHSCORES LIMIT 0 %d",
        RV_KEY_LEASES, (long long)rv_now_ms(), WORKERS_MAX);
    if (!leases)
        return cli_fail_rc(c, RV_ERR_REDIS, "");
    json_t *list = json_array();
    if (leases->type != REDIS_REPLY_ARRAY || leases->elements % 2 || !list) {
        rc = cli_fail("unexpected answer to ZRANGEBYSCORE %s", RV_KEY_LEASES);
        goto out;
    }
    for (size_t i = 0; i + 1 < leases->elements; i += 2) {
        const redisReply *m = leases->element[i], *s = leases->element[i + 1];
        if (m->type != REDIS_REPLY_STRING || s->type != REDIS_REPLY_STRING ||
            m->len >= 128)
            continue;
        json_t *w = worker_json(c, m->str, (int64_t)strtod(s->str, NULL));
        if (!w || json_array_append_new(list, w) != 0) {
            rc = CLI_FAIL;
            goto out;
        }
    }
    if (as_json) {
        rc = cli_print_json(json_pack("{s:O}", "workers", list));
        goto out;
    }
    printf("%zu live worker%s\n", json_array_size(list),
           json_array_size(list) == 1 ? "" : "s");
    size_t k;
    json_t *w;
    json_array_foreach(list, k, w)
    {
        const json_t *job = json_object_get(w, "job");
        const char *repo = str_or(job, "repo", NULL);
        printf("  %s  pid %lld  done %lld  failed %lld  lease until %s  "
               "%s%s %s\n",
               str_or(w, "id", "?"),
               (long long)json_integer_value(json_object_get(w, "pid")),
               (long long)json_integer_value(json_object_get(w, "syncsDone")),
               (long long)json_integer_value(json_object_get(w, "syncsFailed")),
               str_or(w, "leaseExpiresAt", "?"), repo ? "running " : "idle",
               repo ? repo : "", repo ? str_or(job, "kind", "") : "");
    }
out:
    json_decref(list);
    freeReplyObject(leases);
    return rc;
}

/* Reads entry index; its text into *text (malloc'd, the caller frees; an
 * entry holding a NUL byte is cut there, and then holds no job) and its id.
 * CLI_OK, or CLI_FAIL when there is none (printed). */
static int read_entry(struct cli *c, int64_t index, char **text, char *id)
{
    redisReply *r = rv_rsync_command(&c->r, "LINDEX %s %lld", RV_KEY_DEADLETTER,
                                     (long long)index);
    if (!r)
        return cli_fail_rc(c, RV_ERR_REDIS, "");
    int rc = CLI_OK;
    if (r->type != REDIS_REPLY_STRING)
        rc = cli_fail("no dead letter %lld", (long long)index);
    else if (!rv_dead_id(r->str, r->len, id) || !(*text = malloc(r->len + 1)))
        rc = cli_fail("out of memory");
    else
        memcpy(*text, r->str, r->len + 1); /* hiredis NUL-terminates */
    freeReplyObject(r);
    return rc;
}

/* Runs a retry or drop script built for entry index; CLI_OK or CLI_FAIL. */
static int act(struct cli *c, struct rv_cmd *cmd, int64_t index,
               const char *what)
{
    redisReply *r = rv_rsync_run(&c->r, cmd);
    rv_cmd_free(cmd);
    int rc = r ? rv_script_reply_code(r) : RV_ERR_REDIS;
    const char *outcome = r && r->type == REDIS_REPLY_ARRAY &&
                                  r->elements >= 2 &&
                                  r->element[1]->type == REDIS_REPLY_STRING
                              ? r->element[1]->str
                              : "";
    int out = CLI_OK;
    if (rc == RV_ERR_STALE_JOB)
        out = cli_fail("dead letter %lld moved meanwhile; list them again",
                       (long long)index);
    else if (rc == RV_ERR_NOT_FOUND)
        out = cli_fail("the job's repo is gone; drop the entry instead");
    else if (rc != RV_OK)
        out = cli_fail_rc(c, rc, "");
    else
        printf("dead letter %lld %s%s%s\n", (long long)index, what,
               *outcome ? ": " : "", outcome);
    if (r)
        freeReplyObject(r);
    return out;
}

static int retry_or_drop(struct cli *c, int64_t index, bool is_retry)
{
    char *text = NULL, id[RV_DEAD_ID_LEN + 1];
    int rc = read_entry(c, index, &text, id);
    if (rc != CLI_OK)
        return rc;
    struct rv_cmd cmd;
    if (!is_retry) {
        free(text);
        rv_dead_drop_cmd(&cmd, index, id);
        return act(c, &cmd, index, "dropped");
    }
    char repo[RV_REPO_ID_MAX + 1];
    rv_kind kind;
    bool has_job = rv_dead_job(text, strlen(text), repo, sizeof(repo), &kind);
    free(text);
    if (!has_job)
        return cli_fail("dead letter %lld holds no job that can run; drop it "
                        "with --drop %lld",
                        (long long)index, (long long)index);
    struct rv_job job;
    if (rv_dead_retry_cmd(&cmd, index, id, repo, kind, &job) != RV_OK)
        return cli_fail("out of memory");
    return act(c, &cmd, index, "retried");
}

int cli_cmd_deadletters(struct cli *c, int argc, char **args)
{
    bool as_json = false;
    const char *retry = NULL, *drop = NULL;
    const struct cli_opt opts[] = {{"--json", NULL, &as_json},
                                   {"--retry", &retry, NULL},
                                   {"--drop", &drop, NULL},
                                   {NULL, NULL, NULL}};
    int npos;
    bool help;
    int rc = cli_parse("deadletters", argc, args, opts, NULL, 0, &npos, &help);
    if (rc != CLI_OK || help)
        return help ? cli_command_help("deadletters") : rc;
    int64_t index = 0;
    const char *which = retry ? retry : drop;
    if (retry && drop)
        return cli_usage_error("deadletters", "--retry and --drop exclude "
                                              "each other");
    if (which && rv_parse_i64(which, 0, RV_DEAD_INDEX_MAX, &index) != 0)
        return cli_usage_error("deadletters",
                               "N must be an index from 0 to %d (0 = newest)",
                               RV_DEAD_INDEX_MAX);
    if ((rc = cli_connect(c)) != CLI_OK)
        return rc;
    if (which)
        return retry_or_drop(c, index, retry != NULL);

    redisReply *r = rv_rsync_command(&c->r, "LRANGE %s 0 %d", RV_KEY_DEADLETTER,
                                     DEAD_LIST_MAX - 1);
    if (!r)
        return cli_fail_rc(c, RV_ERR_REDIS, "");
    json_t *list = json_array();
    if (r->type != REDIS_REPLY_ARRAY || !list) {
        rc = cli_fail("unexpected answer to LRANGE %s", RV_KEY_DEADLETTER);
        goto out;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        char id[RV_DEAD_ID_LEN + 1];
        if (e->type != REDIS_REPLY_STRING || !rv_dead_id(e->str, e->len, id))
            continue;
        json_t *entry = json_loadb(e->str, e->len, 0, NULL);
        if (!json_is_object(entry)) {
            json_decref(entry);
            entry = json_pack("{s:s%}", "raw", e->str, e->len);
        }
        if (as_json) {
            json_array_append_new(list, json_pack("{s:I,s:s,s:o*}", "index",
                                                  (json_int_t)i, "id", id,
                                                  "entry", entry));
            continue;
        }
        json_t *job = json_object_get(entry, "job");
        printf("%4zu  %s  %-20s %-8s %s\n", i, str_or(entry, "at", "?"),
               job ? str_or(job, "repo", "?") : "<no job>",
               str_or(job, "kind", ""), str_or(entry, "reason", ""));
        json_decref(entry);
    }
    if (as_json)
        rc = cli_print_json(json_pack("{s:O}", "deadLetters", list));
    else if (r->elements == 0)
        printf("no dead letters\n");
out:
    json_decref(list);
    freeReplyObject(r);
    return rc;
}

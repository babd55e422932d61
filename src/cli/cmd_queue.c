/* `repoview queue`: the jobs waiting in rv:queue and running in the
 * workers' processing lists, decoded; and the list reader `status` shares. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/errors.h"
#include "common/keys.h"
#include "common/util.h"

int cli_queue_load(struct cli *c, const char *key, struct cli_queued **items,
                   size_t *n)
{
    int rc = CLI_OK;
    *items = NULL;
    *n = 0;
    redisReply *reply = rv_rsync_command(&c->r, "LRANGE %s 0 -1", key);
    if (!reply)
        return cli_fail_rc(c, RV_ERR_REDIS, "");
    if (reply->type != REDIS_REPLY_ARRAY) {
        rc = cli_fail("unexpected answer to LRANGE %s: %s", key,
                      reply->type == REDIS_REPLY_ERROR ? reply->str
                                                       : "not a list");
        goto out;
    }
    struct cli_queued *list = calloc(reply->elements + 1, sizeof(*list));
    if (!list) {
        rc = cli_fail("out of memory");
        goto out;
    }
    /* Workers consume from the right: the last element comes first. */
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[reply->elements - 1 - i];
        struct cli_queued *q = &list[i];
        q->position = (int64_t)i + 1;
        if (e->type != REDIS_REPLY_STRING) {
            rv_strlcpy(q->why, "not a string", sizeof(q->why));
            continue;
        }
        q->bytes = e->len;
        q->decoded = rv_job_decode(e->str, e->len, &q->job, q->why,
                                   sizeof(q->why)) == RV_OK;
    }
    *items = list;
    *n = reply->elements;
out:
    freeReplyObject(reply);
    return rc;
}

json_t *cli_queued_json(const struct cli_queued *q)
{
    if (!q->decoded)
        return json_pack("{s:I,s:s,s:I}", "position", (json_int_t)q->position,
                         "undecodable", q->why, "bytes", (json_int_t)q->bytes);
    json_t *j = rv_job_to_json(&q->job);
    if (j && json_object_set_new(j, "position", json_integer(q->position))) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* "demo  branches  user  j-...  queued 2026-...  attempt 0" */
static void print_queued(const struct cli_queued *q, const char *indent)
{
    if (!q->decoded) {
        printf("%s%4lld  <undecodable: %s> (%zu bytes)\n", indent,
               (long long)q->position, q->why, q->bytes);
        return;
    }
    char t[32];
    rv_iso8601(q->job.enqueued_at, t, sizeof(t));
    printf("%s%4lld  %-20s %-8s %-8s %s  queued %s  attempt %u\n", indent,
           (long long)q->position, q->job.repo, rv_kind_name(q->job.kind),
           rv_reason_name(q->job.reason), q->job.id, t,
           (unsigned)q->job.attempt);
}

/* One worker with a lease and the jobs of its processing list. */
struct worker_jobs {
    char id[256];
    int64_t lease_ms;
    struct cli_queued *items; /* owned */
    size_t n;
};

static void free_workers(struct worker_jobs *w, size_t n)
{
    for (size_t i = 0; w && i < n; i++)
        free(w[i].items);
    free(w);
}

/* Reads rv:leases and each worker's processing list. CLI_OK or CLI_FAIL;
 * *out is freed with free_workers. */
static int load_workers(struct cli *c, struct worker_jobs **out, size_t *n)
{
    int rc = CLI_OK;
    struct worker_jobs *w = NULL;
    size_t count = 0;
    *out = NULL;
    *n = 0;
    redisReply *reply =
        rv_rsync_command(&c->r, "ZRANGE %s 0 -1 WITHSCORES", RV_KEY_LEASES);
    if (!reply)
        return cli_fail_rc(c, RV_ERR_REDIS, "");
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2) {
        rc = cli_fail("unexpected answer to ZRANGE %s", RV_KEY_LEASES);
        goto out;
    }
    w = calloc(reply->elements / 2 + 1, sizeof(*w));
    if (!w) {
        rc = cli_fail("out of memory");
        goto out;
    }
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *m = reply->element[i], *s = reply->element[i + 1];
        if (m->type != REDIS_REPLY_STRING || s->type != REDIS_REPLY_STRING)
            continue;
        struct worker_jobs *wj = &w[count];
        rv_strlcpy(wj->id, m->str, sizeof(wj->id));
        /* Scores come back as text, possibly "1.7e+12" style. */
        wj->lease_ms = (int64_t)strtod(s->str, NULL);
        char key[RV_KEY_MAX];
        if (strlen(wj->id) + 16 >= RV_KEY_MAX)
            continue; /* no such key could have been built */
        rv_key_processing(key, wj->id);
        count++;
        rc = cli_queue_load(c, key, &wj->items, &wj->n);
        if (rc != CLI_OK)
            goto out;
    }
out:
    freeReplyObject(reply);
    if (rc != CLI_OK) {
        free_workers(w, count);
        return rc;
    }
    *out = w;
    *n = count;
    return CLI_OK;
}

int cli_cmd_queue(struct cli *c, int argc, char **args)
{
    bool as_json = false;
    const struct cli_opt opts[] = {{"--json", NULL, &as_json},
                                   {NULL, NULL, NULL}};
    int npos;
    bool help;
    int rc = cli_parse("queue", argc, args, opts, NULL, 0, &npos, &help);
    if (rc != CLI_OK || help)
        return help ? cli_command_help("queue") : rc;
    if ((rc = cli_connect(c)) != CLI_OK)
        return rc;

    struct cli_queued *waiting = NULL; /* all freed at out */
    size_t nwaiting = 0;
    struct worker_jobs *workers = NULL;
    size_t nworkers = 0;
    long long dead = 0;
    if ((rc = cli_queue_load(c, RV_KEY_QUEUE, &waiting, &nwaiting)) != CLI_OK)
        goto out;
    if ((rc = load_workers(c, &workers, &nworkers)) != CLI_OK)
        goto out;
    redisReply *reply = rv_rsync_command(&c->r, "LLEN %s", RV_KEY_DEADLETTER);
    if (!reply) {
        rc = cli_fail_rc(c, RV_ERR_REDIS, "");
        goto out;
    }
    dead = reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
    freeReplyObject(reply);

    if (as_json) {
        json_t *jw = json_array(), *jr = json_array();
        for (size_t i = 0; i < nwaiting; i++)
            json_array_append_new(jw, cli_queued_json(&waiting[i]));
        for (size_t i = 0; i < nworkers; i++) {
            json_t *jobs = json_array();
            for (size_t k = 0; k < workers[i].n; k++)
                json_array_append_new(jobs,
                                      cli_queued_json(&workers[i].items[k]));
            char t[32];
            rv_iso8601(workers[i].lease_ms, t, sizeof(t));
            json_array_append_new(jr, json_pack("{s:s,s:s,s:o*}", "worker",
                                                workers[i].id, "leaseExpiresAt",
                                                t, "jobs", jobs));
        }
        rc = cli_print_json(json_pack("{s:o*,s:o*,s:I}", "waiting", jw,
                                      "running", jr, "deadLetters",
                                      (json_int_t)dead));
        goto out;
    }

    printf("waiting (%zu, next first):\n", nwaiting);
    for (size_t i = 0; i < nwaiting; i++)
        print_queued(&waiting[i], "  ");
    printf("running (%zu worker%s):\n", nworkers, nworkers == 1 ? "" : "s");
    for (size_t i = 0; i < nworkers; i++) {
        char t[32];
        rv_iso8601(workers[i].lease_ms, t, sizeof(t));
        printf("  worker %s (lease until %s)%s\n", workers[i].id, t,
               workers[i].n ? "" : ": idle");
        for (size_t k = 0; k < workers[i].n; k++)
            print_queued(&workers[i].items[k], "    ");
    }
    printf("dead letters: %lld\n", dead);
out:
    free(waiting);
    free_workers(workers, nworkers);
    return rc;
}

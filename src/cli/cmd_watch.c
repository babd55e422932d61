/*
 * `repoview watch [ID...] [--count N]`: prints every event on rv:events as
 * one JSON line, shaped like the API's SSE events (status and projection
 * events carry "version" and "freshness" instead of the raw meta fields).
 * Runs until SIGINT or SIGTERM, or until N events were printed. A blocking
 * hiredis context in subscribe mode, polled so a signal stops it at once;
 * when Redis drops the connection it reconnects and subscribes again.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/errors.h"
#include "common/keys.h"
#include "common/registry.h"
#include "common/util.h"

#define WATCH_MAX_IDS 64
#define WATCH_POLL_MS 500
#define WATCH_RETRY_MS 250

static volatile sig_atomic_t watch_stop;

static void watch_on_signal(int sig)
{
    (void)sig;
    watch_stop = 1;
}

/* Sleeps ms unless a signal arrives first. */
static void nap(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool wanted(const char *repo, const char **ids, int nids)
{
    if (nids == 0)
        return true;
    for (int i = 0; repo && i < nids; i++)
        if (strcmp(repo, ids[i]) == 0)
            return true;
    return false;
}

/* The event as a subscriber of the API would see it: for status and
 * projection events, meta becomes version and freshness. Other events,
 * and events whose meta does not parse, are passed on as they are.
 * Takes the reference to ev; returns a new one or NULL. */
static json_t *shape_event(struct cli *c, json_t *ev)
{
    const char *repo_id = json_string_value(json_object_get(ev, "repo"));
    json_t *meta = json_object_get(ev, "meta");
    struct rv_repo repo;
    if (!repo_id || !json_is_object(meta) ||
        rv_repo_from_event_meta(&repo, repo_id, meta) != RV_OK)
        return ev;
    json_t *fresh = rv_freshness_json(
        &repo, rv_now_ms(), rv_config_stale_after(&c->cfg, repo.interval_s));
    json_t *out = json_pack("{s:O?,s:s,s:O*,s:O*,s:I,s:o*,s:O*}", "type",
                            json_object_get(ev, "type"), "repo", repo_id,
                            "kind", json_object_get(ev, "kind"), "status",
                            json_object_get(ev, "status"), "version",
                            (json_int_t)repo.version, "freshness", fresh,
                            "changed", json_object_get(ev, "changed"));
    rv_repo_free(&repo);
    json_decref(ev);
    return out;
}

/* Handles one reply of the subscription. Returns 1 when an event was
 * printed, 0 when not, -1 when stdout is gone. */
static int handle_reply(struct cli *c, const redisReply *reply,
                        const char **ids, int nids)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(reply->element[0]->str, "message") != 0 ||
        reply->element[2]->type != REDIS_REPLY_STRING)
        return 0; /* subscribe confirmations */
    const redisReply *payload = reply->element[2];
    json_error_t jerr;
    json_t *ev = json_loadb(payload->str, payload->len, 0, &jerr);
    if (!json_is_object(ev)) {
        json_decref(ev);
        fprintf(stderr, "repoview: skipped an event that is not a JSON "
                        "object\n");
        return 0;
    }
    if (!wanted(json_string_value(json_object_get(ev, "repo")), ids, nids)) {
        json_decref(ev);
        return 0;
    }
    json_t *out = shape_event(c, ev);
    char *text = out ? json_dumps(out, JSON_COMPACT) : NULL;
    json_decref(out);
    if (!text)
        return 0;
    int n = printf("%s\n", text);
    free(text);
    if (n < 0 || fflush(stdout) != 0)
        return -1;
    return 1;
}

/* Connects and subscribes. RV_OK, or RV_ERR_REDIS with c->r.err set. */
static int subscribe(struct cli *c)
{
    if (rv_rsync_ensure(&c->r) != RV_OK)
        return RV_ERR_REDIS;
    redisReply *reply =
        redisCommand(c->r.ctx, "SUBSCRIBE %s", RV_CHANNEL_EVENTS);
    bool ok = reply && reply->type == REDIS_REPLY_ARRAY;
    if (!ok)
        snprintf(c->r.err, sizeof(c->r.err), "SUBSCRIBE %s failed: %.100s",
                 RV_CHANNEL_EVENTS,
                 reply && reply->type == REDIS_REPLY_ERROR ? reply->str
                                                           : c->r.ctx->errstr);
    if (reply)
        freeReplyObject(reply);
    if (!ok) {
        rv_rsync_close(&c->r);
        return RV_ERR_REDIS;
    }
    return RV_OK;
}

/* Reads and handles what the server sent. Returns the events printed, or
 * -1 when the connection broke, -2 when stdout is gone. */
static int pump(struct cli *c, const char **ids, int nids, int64_t budget)
{
    int printed = 0;
    struct pollfd pfd = {.fd = c->r.ctx->fd, .events = POLLIN};
    int pr = poll(&pfd, 1, WATCH_POLL_MS);
    if (pr < 0)
        return errno == EINTR ? 0 : -1;
    if (pr == 0)
        return 0;
    if (redisBufferRead(c->r.ctx) != REDIS_OK)
        return -1;
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(c->r.ctx->reader, &reply) != REDIS_OK)
            return -1;
        if (!reply)
            return printed;
        int h = handle_reply(c, reply, ids, nids);
        freeReplyObject(reply);
        if (h < 0)
            return -2;
        printed += h;
        if (budget > 0 && printed >= budget)
            return printed;
    }
}

int cli_cmd_watch(struct cli *c, int argc, char **args)
{
    const char *count_text = NULL;
    const struct cli_opt opts[] = {{"--count", &count_text, NULL},
                                   {NULL, NULL, NULL}};
    const char *ids[WATCH_MAX_IDS];
    int nids;
    bool help;
    int rc =
        cli_parse("watch", argc, args, opts, ids, WATCH_MAX_IDS, &nids, &help);
    if (rc != CLI_OK || help)
        return help ? cli_command_help("watch") : rc;
    for (int i = 0; i < nids; i++)
        if ((rc = cli_check_id("watch", ids[i])) != CLI_OK)
            return rc;
    int64_t count = 0; /* 0 = until a signal */
    if (count_text && rv_parse_i64(count_text, 1, INT64_MAX, &count) != 0)
        return cli_usage_error("watch", "--count must be a positive number");

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = watch_on_signal; /* no SA_RESTART: poll wakes up */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if ((rc = cli_connect(c)) != CLI_OK)
        return rc;
    if (subscribe(c) != RV_OK)
        return cli_fail_rc(c, RV_ERR_REDIS, "");
    fprintf(stderr, "repoview: watching %s\n", RV_CHANNEL_EVENTS);

    int64_t seen = 0;
    bool lost = false;
    while (!watch_stop && (count == 0 || seen < count)) {
        if (lost) {
            if (subscribe(c) != RV_OK) {
                nap(WATCH_RETRY_MS);
                continue;
            }
            fprintf(stderr, "repoview: reconnected; watching %s\n",
                    RV_CHANNEL_EVENTS);
            lost = false;
        }
        int n = pump(c, ids, nids, count ? count - seen : 0);
        if (n == -2)
            break; /* the reader went away: nothing left to do */
        if (n == -1) {
            fprintf(stderr,
                    "repoview: lost the connection to Redis (%s); "
                    "reconnecting\n",
                    c->r.ctx && c->r.ctx->errstr[0] ? c->r.ctx->errstr
                                                    : "closed");
            rv_rsync_close(&c->r);
            lost = true;
            continue;
        }
        seen += n;
    }
    return CLI_OK;
}

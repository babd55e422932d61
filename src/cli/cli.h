/*
 * The `repoview` admin CLI: what the command files share. main.c loads the
 * settings, dispatches to one cli_cmd_* per command and turns its result
 * into the exit code; each command parses its own options with cli_parse.
 * Results go to stdout, errors to stderr.
 */
#ifndef REPOVIEW_CLI_CLI_H
#define REPOVIEW_CLI_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/job.h"
#include "common/rconn.h"

/* Exit codes (CONTRACT.md). */
#define CLI_OK 0    /* success */
#define CLI_FAIL 1  /* a failure explained on stderr */
#define CLI_USAGE 2 /* bad usage: unknown command or flag, bad argument */

/* What every command gets. */
struct cli {
    struct rv_config cfg;      /* settings from the environment and flags */
    struct rv_redis_addr addr; /* parsed cfg.redis_url */
    struct rv_rsync r;         /* opened by cli_connect */
    bool connected;            /* r is open and must be closed */
};

/* A command option. Exactly one of value (for "--name VALUE" or
 * "--name=VALUE") and flag (for "--name") is set; both point at the
 * command's locals. */
struct cli_opt {
    const char *name; /* with the dashes: "--url" */
    const char **value;
    bool *flag;
};

/* Parses args[0..argc) (the words after the command name) into opts and
 * positionals (at most maxpos, borrowed from args). "-h"/"--help" sets
 * *help. Returns CLI_OK, or CLI_USAGE after printing why. */
int cli_parse(const char *cmd, int argc, char **args,
              const struct cli_opt *opts, const char **pos, int maxpos,
              int *npos, bool *help);

/* Prints "repoview: <message>" on stderr; returns CLI_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "repoview <cmd>: <message>" and a hint on stderr; returns
 * CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints "usage: repoview <synopsis>" of a command to stdout (for
 * `repoview CMD --help`); returns CLI_OK. */
int cli_command_help(const char *cmd);

/* Checks a repo id argument; prints why and returns CLI_USAGE if bad. */
int cli_check_id(const char *cmd, const char *id);

/* Connects to Redis; on failure prints why (the address, never the
 * password) and returns CLI_FAIL. */
int cli_connect(struct cli *c);

/* Explains an rv_err from a registry call about repo id on stderr;
 * returns CLI_FAIL. */
int cli_fail_rc(struct cli *c, int rc, const char *id);

/* Prints j compactly on one line of stdout and releases it. CLI_OK, or
 * CLI_FAIL when j is NULL (out of memory). */
int cli_print_json(json_t *j);

/* A list command (`list`, `org list`): its ids, then each item printed
 * as a table row, or with --json gathered into {member: [...]}. */
struct cli_lister {
    const char *cmd;    /* for usage and help */
    const char *member; /* the JSON array's name */
    int (*list_ids)(struct rv_rsync *r, char ***ids, size_t *count);
    /* Reads id: with out NULL prints its row, else *out = its JSON (new
     * reference). RV_OK, RV_ERR_NOT_FOUND (left out) or a failure. */
    int (*item)(struct cli *c, const char *id, json_t **out);
    /* Explains a failure of item about id; returns CLI_FAIL. */
    int (*fail)(struct cli *c, int rc, const char *id);
};

/* Runs a list command (options: --json). */
int cli_list(struct cli *c, int argc, char **args, const struct cli_lister *l);

/* "2026-11-23T10:00:00.000Z" or "never" for 0, into buf (>= 32 bytes). */
const char *cli_time(int64_t ms, char *buf, size_t size);

/* One payload of a job list, decoded when possible. */
struct cli_queued {
    int64_t position; /* 1 = the next to be consumed */
    bool decoded;     /* job is valid; else why says what is wrong */
    struct rv_job job;
    char why[128];
    size_t bytes; /* payload size */
};

/* Reads the list at key (LRANGE 0 -1) in consumption order (the right end
 * first). On CLI_OK *items is a malloc'd array of *n the caller frees; on
 * failure the reason is printed and *items is NULL. */
int cli_queue_load(struct cli *c, const char *key, struct cli_queued **items,
                   size_t *n);

/* A decoded entry as JSON: the job's fields plus "position", or
 * {"position","undecodable","bytes"}. New reference or NULL. */
json_t *cli_queued_json(const struct cli_queued *q);

/* The commands. args are the words after the command name. */
int cli_cmd_add(struct cli *c, int argc, char **args);
int cli_cmd_remove(struct cli *c, int argc, char **args);
int cli_cmd_list(struct cli *c, int argc, char **args);
int cli_cmd_refresh(struct cli *c, int argc, char **args);
int cli_cmd_status(struct cli *c, int argc, char **args);
int cli_cmd_queue(struct cli *c, int argc, char **args);
int cli_cmd_watch(struct cli *c, int argc, char **args);
int cli_cmd_up(struct cli *c, int argc, char **args);
int cli_cmd_org(struct cli *c, int argc, char **args);
int cli_cmd_workers(struct cli *c, int argc, char **args);
int cli_cmd_deadletters(struct cli *c, int argc, char **args);

#endif

/*
 * repoview: the admin CLI. Talks to Redis directly (REPOVIEW_REDIS_URL), so
 * it works with no API running.
 *
 *   repoview [SETTINGS] COMMAND [ARGS]
 *
 * Settings (--redis-url and the rest of config.c's table) come before the
 * command. Exit codes: 0 success, 1 a failure explained on stderr, 2 bad
 * usage.
 */
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/errors.h"
#include "common/log.h"
#include "common/util.h"

/* Connect and command timeout for the CLI's blocking connection. */
#define CLI_REDIS_TIMEOUT_MS 5000

struct command {
    const char *name;
    int (*run)(struct cli *c, int argc, char **args);
    const char *synopsis;
};

/* The command table: dispatch and the usage text in one place. */
static const struct command commands[] = {
    {"add", cli_cmd_add,
     "add ID --url URL [--github OWNER/NAME] [--default-branch NAME] "
     "[--interval SECONDS]"},
    {"remove", cli_cmd_remove, "remove ID"},
    {"list", cli_cmd_list, "list [--json]"},
    {"refresh", cli_cmd_refresh,
     "refresh ID [--kind all|branches|prs] "
     "[--json]"},
    {"status", cli_cmd_status, "status ID [--json]"},
    {"queue", cli_cmd_queue, "queue [--json]"},
    {"workers", cli_cmd_workers, "workers [--json]"},
    {"deadletters", cli_cmd_deadletters,
     "deadletters [--json] [--retry N | --drop N]"},
    {"watch", cli_cmd_watch, "watch [ID...] [--count N]"},
    {"up", cli_cmd_up, "up [--demo] [--workers N] [--listen ADDR]"},
    {"org", cli_cmd_org,
     "org add ID --github OWNER | org list [--json] | org remove ID | "
     "org refresh ID [--json]"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fputs("usage: repoview [SETTINGS] COMMAND [ARGS]\n\n"
          "Administers repoview's repos and orgs in Redis (no API "
          "needed).\n\n"
          "Commands:\n",
          out);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  repoview %s\n", commands[i].synopsis);
    fputs("\nA repo ID matches ^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$.\n"
          "Exit codes: 0 success, 1 failure (explained on stderr), "
          "2 bad usage.\n\n",
          out);
    rv_config_print_help(out);
}

/* ---- helpers shared by the commands (cli.h) ---- */

int cli_fail(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rv_log_redact(msg);
    fprintf(stderr, "repoview: %s\n", msg);
    return CLI_FAIL;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rv_log_redact(msg);
    if (cmd) {
        fprintf(stderr, "repoview %s: %s\n", cmd, msg);
        fprintf(stderr, "Run 'repoview %s --help' for its usage.\n", cmd);
    } else {
        fprintf(stderr, "repoview: %s\n", msg);
        fprintf(stderr, "Run 'repoview --help' for usage.\n");
    }
    return CLI_USAGE;
}

int cli_command_help(const char *cmd)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, cmd) == 0)
            printf("usage: repoview [SETTINGS] %s\n", commands[i].synopsis);
    return CLI_OK;
}

int cli_check_id(const char *cmd, const char *id)
{
    if (rv_repo_id_valid(id))
        return CLI_OK;
    return cli_usage_error(cmd,
                           "invalid repo id \"%.120s\": it must match "
                           "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
                           id);
}

static const struct cli_opt *find_opt(const struct cli_opt *opts,
                                      const char *name, size_t len)
{
    for (; opts && opts->name; opts++)
        if (strlen(opts->name) == len && strncmp(opts->name, name, len) == 0)
            return opts;
    return NULL;
}

int cli_parse(const char *cmd, int argc, char **args,
              const struct cli_opt *opts, const char **pos, int maxpos,
              int *npos, bool *help)
{
    bool only_positionals = false;
    *npos = 0;
    *help = false;
    for (int i = 0; i < argc; i++) {
        const char *a = args[i];
        if (!only_positionals && strcmp(a, "--") == 0) {
            only_positionals = true;
            continue;
        }
        if (!only_positionals &&
            (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
            *help = true;
            return CLI_OK;
        }
        if (only_positionals || a[0] != '-' || a[1] == '\0') {
            if (*npos >= maxpos)
                return cli_usage_error(cmd, "unexpected argument \"%.120s\"",
                                       a);
            pos[(*npos)++] = a;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const struct cli_opt *o = find_opt(opts, a, len);
        if (!o)
            return cli_usage_error(cmd, "unknown option \"%.*s\"",
                                   (int)(len > 120 ? 120 : len), a);
        if (o->flag) {
            if (eq)
                return cli_usage_error(cmd, "%s takes no value", o->name);
            *o->flag = true;
        } else if (eq) {
            *o->value = eq + 1;
        } else if (i + 1 < argc) {
            *o->value = args[++i];
        } else {
            return cli_usage_error(cmd, "%s needs a value", o->name);
        }
    }
    return CLI_OK;
}

int cli_connect(struct cli *c)
{
    if (c->connected)
        return CLI_OK;
    int rc = rv_rsync_open(&c->r, &c->addr, CLI_REDIS_TIMEOUT_MS);
    c->connected = true; /* closed in main even when the open failed */
    if (rc != RV_OK)
        return cli_fail("%s", c->r.err[0] ? c->r.err : "Redis is unreachable");
    return CLI_OK;
}

int cli_fail_rc(struct cli *c, int rc, const char *id)
{
    switch (rc) {
    case RV_ERR_NOT_FOUND: return cli_fail("repo \"%s\" not found", id);
    case RV_ERR_EXISTS: return cli_fail("repo \"%s\" already exists", id);
    case RV_ERR_NO_GITHUB:
        return cli_fail("repo \"%s\" has no GitHub name, so it has no PR "
                        "sync (no_github); register it with --github "
                        "OWNER/NAME",
                        id);
    case RV_ERR_REDIS:
        return cli_fail("%s", c->r.err[0] ? c->r.err : "Redis is unreachable");
    default: return cli_fail("%s (%s)", rv_strerror(rc), rv_errname(rc));
    }
}

int cli_print_json(json_t *j)
{
    if (!j)
        return cli_fail("out of memory");
    char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    if (!text)
        return cli_fail("out of memory");
    puts(text);
    free(text);
    return CLI_OK;
}

const char *cli_time(int64_t ms, char *buf, size_t size)
{
    if (ms <= 0)
        rv_strlcpy(buf, "never", size);
    else
        rv_iso8601(ms, buf, size);
    return buf;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    /* hiredis writes without MSG_NOSIGNAL: a dead Redis must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    struct cli c;
    char err[512];
    int next = 0;
    int rc = CLI_OK;
    memset(&c, 0, sizeof(c));

    /* Settings end at the first word that is not one; --help there is ours,
     * not the config table's. */
    if (rv_config_load(&c.cfg, argc, argv, &next, err, sizeof(err)) != RV_OK) {
        fprintf(stderr, "repoview: %s\n", err);
        return CLI_USAGE;
    }
    /* The CLI explains failures itself; library logs would repeat them. */
    rv_log_min_level =
        c.cfg.log_level == RV_LOG_DEBUG ? RV_LOG_DEBUG : RV_LOG_ERROR;
    rv_log_set_process("cli");
    rv_config_register_secrets(&c.cfg);

    if (next >= argc) {
        usage(stderr);
        rc = CLI_USAGE;
        goto out;
    }
    const char *name = argv[next];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
        strcmp(name, "help") == 0) {
        usage(stdout);
        goto out;
    }
    const struct command *cmd = NULL;
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            cmd = &commands[i];
    if (!cmd) {
        rc = cli_usage_error(NULL,
                             name[0] == '-' ? "unknown setting \"%.120s\""
                                            : "unknown command \"%.120s\"",
                             name);
        goto out;
    }
    if (rv_redis_parse_url(c.cfg.redis_url, &c.addr, err, sizeof(err)) !=
        RV_OK) {
        fprintf(stderr, "repoview: REPOVIEW_REDIS_URL: %s\n", err);
        rc = CLI_USAGE;
        goto out;
    }
    rc = cmd->run(&c, argc - next - 1, argv + next + 1);
out:
    if (c.connected)
        rv_rsync_close(&c.r);
    rv_config_free(&c.cfg);
    return rc;
}

/*
 * The org commands: `repoview org add|list|remove|refresh`. An org is a
 * GitHub owner whose repositories the workers register (common/org.h);
 * these commands only change the registry, as the API's /v1/orgs routes
 * do, with the same scripts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/errors.h"
#include "common/org.h"
#include "common/util.h"

/* Parses the single ID positional of a subcommand. CLI_OK or CLI_USAGE. */
static int one_org_id(const char *cmd, const char **pos, int npos)
{
    if (npos == 0)
        return cli_usage_error(cmd, "missing org ID");
    if (rv_repo_id_valid(pos[0]))
        return CLI_OK;
    return cli_usage_error(cmd,
                           "invalid org id \"%.120s\": it must match "
                           "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
                           pos[0]);
}

/* Explains an rv_err of an org call about id; returns CLI_FAIL. */
static int org_fail(struct cli *c, int rc, const char *id)
{
    if (rc == RV_ERR_NOT_FOUND)
        return cli_fail("org \"%s\" not found", id);
    if (rc == RV_ERR_EXISTS)
        return cli_fail("org \"%s\" already exists", id);
    return cli_fail_rc(c, rc, id);
}

static int org_add(struct cli *c, int argc, char **args)
{
    const char *github = NULL;
    const struct cli_opt opts[] = {{"--github", &github, NULL},
                                   {NULL, NULL, NULL}};
    const char *pos[1];
    int npos;
    bool help;
    int rc = cli_parse("org", argc, args, opts, pos, 1, &npos, &help);
    if (rc != CLI_OK || help)
        return help ? cli_command_help("org") : rc;
    if ((rc = one_org_id("org", pos, npos)) != CLI_OK)
        return rc;
    if (!github || !*github)
        return cli_usage_error("org", "--github OWNER is required");
    struct rv_org_spec spec = {.id = pos[0],
                               .github = github,
                               .sync_interval_s = c->cfg.org_sync_interval};
    char err[512];
    if (rv_org_spec_validate(&spec, err, sizeof(err)) != RV_OK)
        return cli_usage_error("org", "%s", err);
    if ((rc = cli_connect(c)) != CLI_OK)
        return rc;
    int err_rc = rv_org_add(&c->r, &spec, err, sizeof(err));
    if (err_rc != RV_OK)
        return cli_fail("%s", err);
    printf("added org %s for GitHub owner %s; first org sync queued\n", spec.id,
           spec.github);
    return CLI_OK;
}

static int org_remove(struct cli *c, int argc, char **args)
{
    const char *pos[1];
    int npos;
    bool help;
    int rc = cli_parse("org", argc, args, NULL, pos, 1, &npos, &help);
    if (rc != CLI_OK || help)
        return help ? cli_command_help("org") : rc;
    if ((rc = one_org_id("org", pos, npos)) != CLI_OK)
        return rc;
    if ((rc = cli_connect(c)) != CLI_OK)
        return rc;
    int64_t repos = 0;
    int err_rc = rv_org_remove(&c->r, pos[0], &repos);
    if (err_rc != RV_OK)
        return org_fail(c, err_rc, pos[0]);
    printf("removed org %s and its %lld repo(s)\n", pos[0], (long long)repos);
    return CLI_OK;
}

static int org_refresh(struct cli *c, int argc, char **args)
{
    bool as_json = false;
    const struct cli_opt opts[] = {{"--json", NULL, &as_json},
                                   {NULL, NULL, NULL}};
    const char *pos[1];
    int npos;
    bool help;
    int rc = cli_parse("org", argc, args, opts, pos, 1, &npos, &help);
    if (rc != CLI_OK || help)
        return help ? cli_command_help("org") : rc;
    if ((rc = one_org_id("org", pos, npos)) != CLI_OK)
        return rc;
    if ((rc = cli_connect(c)) != CLI_OK)
        return rc;
    rv_refresh_outcome outcome;
    int err_rc = rv_org_refresh(&c->r, pos[0], RV_REASON_USER, &outcome);
    if (err_rc != RV_OK)
        return org_fail(c, err_rc, pos[0]);
    bool queued = outcome == RV_REFRESH_QUEUED;
    if (!as_json) {
        printf("org: %s\n", queued ? "queued" : "coalesced");
        return CLI_OK;
    }
    return cli_print_json(rv_org_refresh_json(pos[0], outcome)); /* as 202 */
}

static int org_item(struct cli *c, const char *id, json_t **out)
{
    struct rv_org org;
    int rc = rv_org_get(&c->r, id, &org);
    if (rc != RV_OK)
        return rc;
    if (out) {
        *out = rv_org_json(&org);
    } else {
        char t[32];
        printf("%-20s %-39s repos:%-6lld sync:%-8s last success %s\n", org.id,
               org.github, (long long)org.repo_count, org.sync.status,
               cli_time(org.sync.at_ms, t, sizeof(t)));
    }
    rv_org_free(&org);
    return RV_OK;
}

static int org_list(struct cli *c, int argc, char **args)
{
    static const struct cli_lister lister = {.cmd = "org",
                                             .member = "orgs",
                                             .list_ids = rv_org_list_ids,
                                             .item = org_item,
                                             .fail = org_fail};
    return cli_list(c, argc, args, &lister);
}

int cli_cmd_org(struct cli *c, int argc, char **args)
{
    static const struct {
        const char *name;
        int (*run)(struct cli *c, int argc, char **args);
    } subs[] = {{"add", org_add},
                {"list", org_list},
                {"remove", org_remove},
                {"refresh", org_refresh}};
    if (argc == 0)
        return cli_usage_error("org", "missing subcommand: add, list, "
                                      "remove or refresh");
    if (strcmp(args[0], "-h") == 0 || strcmp(args[0], "--help") == 0)
        return cli_command_help("org");
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
        if (strcmp(args[0], subs[i].name) == 0)
            return subs[i].run(c, argc - 1, args + 1);
    return cli_usage_error("org",
                           "unknown subcommand \"%.120s\": use add, "
                           "list, remove or refresh",
                           args[0]);
}

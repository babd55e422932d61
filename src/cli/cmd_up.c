/*
 * `repoview up`: the all-in-one mode (a private redis-server, the API and
 * workers). Its own issue implements it here; until then it says so.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int cli_cmd_up(struct cli *c, int argc, char **args)
{
    (void)c;
    for (int i = 0; i < argc; i++)
        if (strcmp(args[i], "-h") == 0 || strcmp(args[i], "--help") == 0)
            return cli_command_help("up");
    return cli_fail("up is not yet available; start redis-server, "
                    "repoview-api and repoview-worker yourself");
}

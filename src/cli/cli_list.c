/* See cli.h, cli_list. */
#include <stdio.h>

#include "cli/cli.h"
#include "common/errors.h"
#include "common/registry.h"

int cli_list(struct cli *c, int argc, char **args, const struct cli_lister *l)
{
    bool as_json = false;
    const struct cli_opt opts[] = {{"--json", NULL, &as_json},
                                   {NULL, NULL, NULL}};
    int npos;
    bool help;
    int rc = cli_parse(l->cmd, argc, args, opts, NULL, 0, &npos, &help);
    if (rc != CLI_OK || help)
        return help ? cli_command_help(l->cmd) : rc;
    if ((rc = cli_connect(c)) != CLI_OK)
        return rc;
    char **ids = NULL; /* freed at out */
    size_t nids = 0;
    json_t *list = NULL;
    int err_rc = l->list_ids(&c->r, &ids, &nids);
    if (err_rc != RV_OK) {
        rc = cli_fail_rc(c, err_rc, "");
        goto out;
    }
    if (!(list = json_array())) {
        rc = cli_fail("out of memory");
        goto out;
    }
    for (size_t i = 0; i < nids && rc == CLI_OK; i++) {
        json_t *item = NULL;
        err_rc = l->item(c, ids[i], as_json ? &item : NULL);
        if (err_rc == RV_ERR_NOT_FOUND)
            continue; /* removed since SMEMBERS */
        if (err_rc != RV_OK)
            rc = l->fail(c, err_rc, ids[i]);
        else if (as_json && (!item || json_array_append_new(list, item) != 0))
            rc = cli_fail("out of memory");
    }
    if (rc == CLI_OK && as_json)
        rc = cli_print_json(json_pack("{s:O}", l->member, list));
out:
    json_decref(list);
    rv_registry_free_ids(ids, nids);
    return rc;
}

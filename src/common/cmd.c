/* See cmd.h. */
#include "common/cmd.h"

#include <assert.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dynbuf.h"
#include "common/errors.h"
#include "common/scripts.h"

void rv_cmd_init(struct rv_cmd *cmd)
{
    memset(cmd, 0, sizeof(*cmd));
}

void rv_cmd_free(struct rv_cmd *cmd)
{
    for (int i = 0; i < cmd->argc; i++)
        free(cmd->argv[i]);
    free(cmd->argv);
    free(cmd->lens);
    rv_cmd_init(cmd);
}

int rv_cmd_addlen(struct rv_cmd *cmd, const char *s, size_t len)
{
    if (cmd->failed)
        return RV_ERR_NOMEM;
    /* argv and lens grow alike (the same capacity and need give the same
     * new capacity); cap moves only once both have grown. */
    size_t need = (size_t)cmd->argc + 1, argv_cap = cmd->cap;
    size_t lens_cap = cmd->cap;
    if (rv_grow(&cmd->argv, &argv_cap, need, sizeof(*cmd->argv), INT_MAX) !=
            RV_OK ||
        rv_grow(&cmd->lens, &lens_cap, need, sizeof(*cmd->lens), INT_MAX) !=
            RV_OK) {
        cmd->failed = 1;
        return RV_ERR_NOMEM;
    }
    cmd->cap = argv_cap < lens_cap ? argv_cap : lens_cap;
    char *copy = malloc(len + 1);
    if (!copy) {
        cmd->failed = 1;
        return RV_ERR_NOMEM;
    }
    if (len)
        memcpy(copy, s, len);
    copy[len] = '\0';
    cmd->argv[cmd->argc] = copy;
    cmd->lens[cmd->argc] = len;
    cmd->argc++;
    return RV_OK;
}

int rv_cmd_add(struct rv_cmd *cmd, const char *s)
{
    return rv_cmd_addlen(cmd, s ? s : "", s ? strlen(s) : 0);
}

int rv_cmd_addi64(struct rv_cmd *cmd, int64_t v)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%lld", (long long)v);
    return rv_cmd_addlen(cmd, buf, (size_t)n);
}

int rv_cmd_addf(struct rv_cmd *cmd, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    if (!s) {
        cmd->failed = 1;
        return RV_ERR_NOMEM;
    }
    int rc = rv_cmd_addlen(cmd, s, (size_t)n);
    free(s);
    return rc;
}

int rv_cmd_evalsha(struct rv_cmd *cmd, const struct rv_script *script)
{
    assert(cmd->argc == 0);
    if (!script) {
        cmd->failed = 1;
        return RV_ERR_NOMEM;
    }
    cmd->script = script;
    rv_cmd_add(cmd, "EVALSHA");
    rv_cmd_add(cmd, script->sha);
    return rv_cmd_addi64(cmd, script->numkeys);
}

/*
 * A Redis command as an argument vector that owns copies of its arguments.
 * Commands are built once and run over either connection flavour (sync for
 * the CLI and worker, async for the API), so the code that knows what to send
 * is shared and the transport is not.
 */
#ifndef REPOVIEW_COMMON_CMD_H
#define REPOVIEW_COMMON_CMD_H

#include <stddef.h>
#include <stdint.h>

struct rv_script;

struct rv_cmd {
    int argc;
    size_t cap;    /* of argv and of lens */
    char **argv;   /* each owned, NUL-terminated (binary safe with lens) */
    size_t *lens;
    const struct rv_script *script; /* set by rv_cmd_evalsha, for NOSCRIPT */
    int failed;    /* an add ran out of memory: running the cmd fails */
};

void rv_cmd_init(struct rv_cmd *cmd);
void rv_cmd_free(struct rv_cmd *cmd);

/* Each add copies its argument. An allocation failure is remembered in
 * cmd->failed (so builders need not check every call) and returned. */
int rv_cmd_add(struct rv_cmd *cmd, const char *s);
int rv_cmd_addlen(struct rv_cmd *cmd, const char *s, size_t len);
int rv_cmd_addi64(struct rv_cmd *cmd, int64_t v);
int rv_cmd_addf(struct rv_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Starts cmd as `EVALSHA <sha> <numkeys>` of script (cmd must be empty;
 * script is borrowed and must outlive cmd). The caller then adds exactly
 * numkeys KEYS, then ARGV; the generated rv_script_<name> builders
 * (scripts.h) do all of it. A NULL script (the table could not be built)
 * fails the command. Returns RV_OK or RV_ERR_NOMEM. */
int rv_cmd_evalsha(struct rv_cmd *cmd, const struct rv_script *script);

#endif

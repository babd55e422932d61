/*
 * The Lua scripts of lua/, embedded at build time. Each is called with
 * EVALSHA of its SHA-1 (computed locally); on NOSCRIPT the connection code
 * sends SCRIPT LOAD and retries once (rconn.c).
 *
 * Every script answers an array whose first element is an rv_err code
 * (0 = RV_OK), followed by script-specific values.
 *
 * Callers build a script's command with its generated builder,
 * rv_script_<name>(cmd, &args) from script_calls.h (tools/embed.c writes
 * it from the KEYS/ARGV lines of each script's header), so a misspelt
 * script or argument name does not compile.
 */
#ifndef REPOVIEW_COMMON_SCRIPTS_H
#define REPOVIEW_COMMON_SCRIPTS_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "script_calls.h" /* generated */

struct rv_script {
    const char *name;  /* e.g. "claimJob" */
    int numkeys;
    const char *text;
    size_t len;
    char sha[41];      /* hex SHA-1 of text */
};

/* Looks up an embedded script by name; NULL if there is none.
 * Computes the SHA-1s on first use (thread-safe). */
const struct rv_script *rv_script_get(const char *name);

/* The script at index i of rv_embedded_scripts (the generated builders use
 * it); NULL if i is out of range or the table could not be built. */
const struct rv_script *rv_script_at(size_t i);

/* The rv_err code at the head of a script reply, RV_ERR_PROTOCOL if the
 * reply is not such an array, or RV_ERR_REDIS for a NULL reply. */
int rv_script_reply_code(const redisReply *reply);

#endif

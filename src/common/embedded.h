/* Files embedded into the binaries at build time by tools/embed.c. */
#ifndef REPOVIEW_COMMON_EMBEDDED_H
#define REPOVIEW_COMMON_EMBEDDED_H

#include <stddef.h>

/* A Lua script from lua/, with its includes expanded. */
struct rv_embedded_script {
    const char *name; /* file name without "-N.lua", e.g. "claimJob" */
    int numkeys;      /* N: how many KEYS the script takes */
    const char *text; /* NUL-terminated source */
    size_t len;
};

/* A static file served by the API (the dashboard). */
struct rv_embedded_file {
    const char *name;         /* base name, e.g. "index.html" */
    const char *content_type; /* MIME type with charset */
    const char *data;
    size_t len;
};

extern const struct rv_embedded_script rv_embedded_scripts[];
extern const size_t rv_embedded_scripts_count;
extern const struct rv_embedded_file rv_embedded_files[];
extern const size_t rv_embedded_files_count;

#endif

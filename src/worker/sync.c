/* See sync.h. */
#include "worker/sync.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/log.h"
#include "common/util.h"

void rv_sync_error_set(struct rv_sync_error *err, rv_err code, const char *fmt,
                       ...)
{
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    /* The message is stored as JSON (failSync), which refuses invalid
     * UTF-8: vsnprintf cuts by bytes, and library text (jansson's errors,
     * libgit2's paths) may quote raw bytes. */
    rv_utf8_truncate(err->message);
    rv_log_redact(err->message);
}

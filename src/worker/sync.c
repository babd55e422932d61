/* See sync.h. */
#include "worker/sync.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/log.h"
#include "common/util.h"

/* Drops a UTF-8 character that vsnprintf cut short at the end of s (len
 * bytes): the message is stored as JSON, which must be valid UTF-8. */
static void sync_cut_partial_utf8(char *s, size_t len)
{
    size_t lead = len;
    while (lead > 0 && len - lead < 4 &&
           ((unsigned char)s[lead - 1] & 0xc0) == 0x80)
        lead--;
    if (lead == 0)
        return;
    unsigned char c = (unsigned char)s[--lead];
    size_t want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    if (len - lead < want)
        s[lead] = '\0';
}

void rv_sync_error_set(struct rv_sync_error *err, const char *code,
                       const char *fmt, ...)
{
    rv_strlcpy(err->code, code, sizeof(err->code));
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(err->message))
        sync_cut_partial_utf8(err->message, sizeof(err->message) - 1);
    rv_log_redact(err->message);
}

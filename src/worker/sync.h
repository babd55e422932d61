/*
 * What branch sync and PR sync have in common: the error they report. The
 * job loop turns it into the kind's `…SyncError` {"code","message","at"} via
 * the failSync script.
 */
#ifndef REPOVIEW_WORKER_SYNC_H
#define REPOVIEW_WORKER_SYNC_H

#include <stdint.h>

#include "common/errors.h"

struct rv_sync_error {
    /* What went wrong, one of the sync codes of common/errors.h; users see
     * its rv_errname() ("unreachable", "rate_limited"). RV_OK until set. */
    rv_err code;
    /* One sentence for people; never contains a secret or a credential. */
    char message[512];
    /* When a retry may happen (epoch ms), e.g. after a rate limit; 0 = use
     * the usual backoff. */
    int64_t retry_at_ms;
};

/* Fills err (message printf-style, truncated to fit, secrets redacted). */
void rv_sync_error_set(struct rv_sync_error *err, rv_err code, const char *fmt,
                       ...) __attribute__((format(printf, 3, 4)));

#endif

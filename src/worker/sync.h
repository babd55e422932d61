/*
 * What branch sync and PR sync have in common: the error they report. The
 * job loop turns it into the kind's `…SyncError` {"code","message","at"} via
 * the failSync script.
 */
#ifndef REPOVIEW_WORKER_SYNC_H
#define REPOVIEW_WORKER_SYNC_H

#include <stdint.h>

struct rv_sync_error {
    /* Stable snake_case code shown to users, e.g. "unreachable",
     * "auth_failed", "no_default_branch", "timeout", "git_error",
     * "rate_limited", "unauthorized", "not_found", "github_unavailable",
     * "bad_response". */
    char code[32];
    /* One sentence for people; never contains a secret or a credential. */
    char message[512];
    /* When a retry may happen (epoch ms), e.g. after a rate limit; 0 = use
     * the usual backoff. */
    int64_t retry_at_ms;
};

/* Fills err (message printf-style, truncated to fit, secrets redacted). */
void rv_sync_error_set(struct rv_sync_error *err, const char *code,
                       const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

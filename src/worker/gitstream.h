/*
 * The TCP stream libgit2 uses for git://, http:// and (under TLS)
 * https:// remotes, replaced by one that honours a deadline: libgit2 1.5
 * has no connect or read timeout, so a server that accepts and then goes
 * silent would hold a fetch (and the worker, renewing its lease) forever.
 * With the deadline set, a connect or a read that would wait past it fails
 * with a libgit2 network error instead.
 */
#ifndef REPOVIEW_WORKER_GITSTREAM_H
#define REPOVIEW_WORKER_GITSTREAM_H

#include <stdint.h>

/* Registers the stream with libgit2 (once per process, after
 * git_libgit2_init). RV_OK, or RV_ERR_GIT when libgit2 refused it. On a
 * libgit2 other than 1.5 it registers nothing (see gitstream.c) and
 * answers RV_OK: fetches then run without the deadline. */
int rv_gitstream_register(void);

/* Sets the calling thread's deadline (monotonic ms, rv_mono_ms; 0 =
 * none) for the streams it connects, reads and writes from now on. */
void rv_gitstream_set_deadline(int64_t deadline_ms);

#endif

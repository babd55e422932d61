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

#include <stdbool.h>
#include <stdint.h>

/* Registers the stream with libgit2 (once per process, after
 * git_libgit2_init). RV_OK, or RV_ERR_GIT when libgit2 refused it. On a
 * libgit2 other than 1.5 it registers nothing (see gitstream.c) and
 * answers RV_OK: fetches then run without the deadline. */
int rv_gitstream_register(void);

/* Sets the calling thread's deadline (monotonic ms, rv_mono_ms; 0 =
 * none) for the streams it connects, reads and writes from now on: the
 * name lookup, each connect and every read and write end at it. A
 * non-zero deadline also starts a new fetch: it clears an earlier
 * rv_gitstream_abort and the refusal of rv_gitstream_refused. */
void rv_gitstream_set_deadline(int64_t deadline_ms);

struct rv_url_policy;

/* Sets the URL policy (borrowed; NULL = none) the calling thread's
 * streams check before they connect: the host name (a redirect's target
 * too, since every connection comes through here) and every address it
 * resolves to. A refused address is never connected to. */
void rv_gitstream_set_policy(const struct rv_url_policy *policy);

/* After a failed fetch: the policy's sentence when a connection was
 * refused by it (static per thread, valid until the next fetch), else
 * NULL. */
const char *rv_gitstream_refused(void);

/* Abandons the fetch running in this process now (its next wait fails,
 * and the watchdog shuts its sockets down): for a repo removed while it
 * syncs. Any thread may call it. */
void rv_gitstream_abort(void);

/* True after rv_gitstream_abort until the next fetch starts. */
bool rv_gitstream_aborted(void);

/* The watchdog, run every few hundred ms by the housekeeping thread:
 * shuts down (never closes) the sockets of fetches past their deadline or
 * abandoned. It is what bounds an SSH fetch, whose socket libssh2 reads
 * itself, blocking, without any deadline of ours. */
void rv_gitstream_watchdog(void);

#endif

/*
 * What mirror.c (the fetch) and mirrordir.c (the mirrors' directories)
 * share, and nothing else includes. Not part of the worker's API.
 */
#ifndef REPOVIEW_WORKER_MIRROR_PRIVATE_H
#define REPOVIEW_WORKER_MIRROR_PRIVATE_H

#include <git2.h>
#include <stdbool.h>
#include <stddef.h>

struct rv_url_policy;

/* Writes the lower-case hex of the bytes of s into out, NUL-terminated:
 * out must hold 2 * strlen(s) + 1 bytes. */
void mirror_hex_encode(const char *s, char *out);

/* How mirror_local_copy ended. */
enum mirror_local_result {
    MIRROR_LOCAL_COPIED = 0, /* every object of the source is in the
                              * mirror, each one hashed on the way */
    MIRROR_LOCAL_FALLBACK,   /* not done (a source the copy cannot
                              * reproduce, or a failure on the way):
                              * start from an empty mirror and fetch */
    MIRROR_LOCAL_REFUSED,    /* the source's object store holds a symbolic
                              * link or a special file, or its path left
                              * the policy: fetch nothing from it */
    MIRROR_LOCAL_CORRUPT,    /* an object did not inflate or hash to its
                              * name, or a pack did not index: fetch
                              * nothing from it */
    MIRROR_LOCAL_STOPPED,    /* the stop callback said so (the deadline, or
                              * rv_gitstream_abort) */
};

/* Asked between files and chunks: true ends the copy. */
typedef bool (*mirror_local_stop_fn)(void *arg);

/* What mirror_local_copy did, for the log. */
struct mirror_local_stats {
    size_t packs;   /* packs indexed into the mirror */
    size_t objects; /* objects in them */
    size_t loose;   /* loose objects copied */
    char why[300];  /* why it did not end MIRROR_LOCAL_COPIED */
};

/* The first clone of a mirror from a local path (mirrorlocal.c): copies
 * every object of the git repository at src_path (an absolute path, the
 * real path the policy resolved) into the new, empty mirror dst without
 * building a pack: each pack of the source goes through libgit2's
 * indexer, each loose object is inflated and hashed against its name. The
 * source is opened once, from "/" without following links, and read only
 * through descriptors opened beneath it (O_NOFOLLOW, O_NONBLOCK, checked
 * with fstat). policy (NULL = none) must still allow src_path. stop (NULL
 * = never) is asked as the copy goes. Returns a mirror_local_result; on
 * anything but MIRROR_LOCAL_COPIED the mirror may hold some verified
 * objects, so the caller starts again from an empty one before it
 * fetches. stats is filled in either case. */
int mirror_local_copy(git_repository *dst, const char *src_path,
                      const struct rv_url_policy *policy,
                      mirror_local_stop_fn stop, void *stop_arg,
                      struct mirror_local_stats *stats);

#endif

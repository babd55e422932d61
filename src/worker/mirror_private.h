/*
 * What mirror.c (the fetch) and mirrordir.c (the mirrors' directories)
 * share, and nothing else includes. Not part of the worker's API.
 */
#ifndef REPOVIEW_WORKER_MIRROR_PRIVATE_H
#define REPOVIEW_WORKER_MIRROR_PRIVATE_H

#include <git2.h>

/* Writes the lower-case hex of the bytes of s into out, NUL-terminated:
 * out must hold 2 * strlen(s) + 1 bytes. */
void mirror_hex_encode(const char *s, char *out);

/* Hard-links (or copies) every pack and loose object of the repository at
 * src_path (a local path, already checked against the URL policy) into
 * the new mirror dst, so that a first clone from a local path needs no
 * pack built in the process (mirrorlocal.c). 0, or a libgit2 error (the
 * source has alternates, a file is not a regular file, a copy failed):
 * then the caller fetches as usual; what was linked does no harm. */
int mirror_copy_local_objects(git_repository *dst, const char *src_path);

#endif

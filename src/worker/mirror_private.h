/*
 * What mirror.c (the fetch) and mirrordir.c (the mirrors' directories)
 * share, and nothing else includes. Not part of the worker's API.
 */
#ifndef REPOVIEW_WORKER_MIRROR_PRIVATE_H
#define REPOVIEW_WORKER_MIRROR_PRIVATE_H

/* Writes the lower-case hex of the bytes of s into out, NUL-terminated:
 * out must hold 2 * strlen(s) + 1 bytes. */
void mirror_hex_encode(const char *s, char *out);

#endif

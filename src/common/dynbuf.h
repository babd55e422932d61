/*
 * Growable memory with a hard cap, in one place instead of a doubling loop
 * per call site (curl's dynbuf is the model).
 *
 * rv_grow makes room in an array of any element type; struct rv_dynbuf is
 * a byte buffer on top of it that is always NUL-terminated and refuses to
 * pass the maximum it was given at init. Neither changes anything when it
 * fails, so the caller still owns, and can free, what it had.
 */
#ifndef REPOVIEW_COMMON_DYNBUF_H
#define REPOVIEW_COMMON_DYNBUF_H

#include <stddef.h>

/* Makes room for need elements of elem bytes in the malloc'd array at pp,
 * which is the address of the array's pointer (a T ** passed as void *;
 * *pp may be NULL) holding *cap elements. The capacity doubles (from 16
 * when it is 0) until it holds need, but never past max elements; hot
 * loops call it only when the array is full. Returns RV_OK (also when
 * need already fits), RV_ERR_TOO_LARGE when need passes max or need * elem
 * passes SIZE_MAX, RV_ERR_NOMEM; on failure *pp and *cap are unchanged. */
int rv_grow(void *pp, size_t *cap, size_t need, size_t elem, size_t max);

/* A byte buffer of at most max bytes (not counting the NUL that always
 * follows them). Read buf and len; change them only through the
 * functions below. buf is NULL until the first add. */
struct rv_dynbuf {
    char *buf;  /* malloc'd, NUL-terminated; owned by the dynbuf */
    size_t len; /* bytes in buf, not counting the NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* the most len may reach */
};

/* Starts b empty, allocating nothing. */
void rv_dynbuf_init(struct rv_dynbuf *b, size_t max);

/* Appends n bytes at p (p may be NULL when n is 0). RV_OK,
 * RV_ERR_TOO_LARGE when len would pass max, or RV_ERR_NOMEM; on failure
 * the buffer is unchanged. */
int rv_dynbuf_add(struct rv_dynbuf *b, const void *p, size_t n);

/* Allocates room for n bytes (and the NUL) at once, so that adds up to n
 * bytes never move the contents: a buffer that will hold a secret can
 * then be wiped in one place, with no stale copy left by realloc. RV_OK
 * (also when there is room already), RV_ERR_TOO_LARGE (n passes max) or
 * RV_ERR_NOMEM. */
int rv_dynbuf_reserve(struct rv_dynbuf *b, size_t n);

/* Empties b but keeps its memory for reuse (buf stays NUL-terminated). */
void rv_dynbuf_reset(struct rv_dynbuf *b);

/* Hands out the contents (the caller frees them; "" when nothing was
 * added) and their length in *len (may be NULL), leaving b empty with the
 * same max. NULL when out of memory. */
char *rv_dynbuf_take(struct rv_dynbuf *b, size_t *len);

/* Releases the memory and leaves b empty with the same max. */
void rv_dynbuf_free(struct rv_dynbuf *b);

#endif

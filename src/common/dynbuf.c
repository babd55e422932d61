/* See dynbuf.h. */
#include "common/dynbuf.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"

#define GROW_FIRST_CAP 16 /* elements of an array's first allocation */

int rv_grow(void *pp, size_t *cap, size_t need, size_t elem, size_t max)
{
    assert(pp && cap && elem > 0);
    if (need <= *cap)
        return RV_OK;
    if (max > SIZE_MAX / elem)
        max = SIZE_MAX / elem; /* so that ncap * elem cannot overflow */
    if (need > max)
        return RV_ERR_TOO_LARGE;
    size_t ncap = *cap ? *cap : GROW_FIRST_CAP;
    while (ncap < need)
        ncap = ncap > max / 2 ? max : ncap * 2;
    if (ncap > max)
        ncap = max;
    /* The pointer is read and written as bytes: *pp is some T *, which
     * C does not let us access through a void * lvalue. */
    void *p, *np;
    memcpy(&p, pp, sizeof(p));
    if (!(np = realloc(p, ncap * elem)))
        return RV_ERR_NOMEM;
    memcpy(pp, &np, sizeof(np));
    *cap = ncap;
    return RV_OK;
}

void rv_dynbuf_init(struct rv_dynbuf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    /* One byte is always the NUL's. */
    b->max = max < SIZE_MAX ? max : SIZE_MAX - 1;
}

int rv_dynbuf_add(struct rv_dynbuf *b, const void *p, size_t n)
{
    if (n > b->max - b->len)
        return RV_ERR_TOO_LARGE;
    int rc = rv_grow(&b->buf, &b->cap, b->len + n + 1, 1, b->max + 1);
    if (rc != RV_OK)
        return rc;
    if (n)
        memcpy(b->buf + b->len, p, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return RV_OK;
}

int rv_dynbuf_reserve(struct rv_dynbuf *b, size_t n)
{
    if (n > b->max)
        return RV_ERR_TOO_LARGE;
    int rc = rv_grow(&b->buf, &b->cap, n + 1, 1, b->max + 1);
    if (rc == RV_OK && b->len == 0)
        b->buf[0] = '\0';
    return rc;
}

void rv_dynbuf_reset(struct rv_dynbuf *b)
{
    b->len = 0;
    if (b->buf)
        b->buf[0] = '\0';
}

char *rv_dynbuf_take(struct rv_dynbuf *b, size_t *len)
{
    if (!b->buf && rv_dynbuf_add(b, NULL, 0) != RV_OK)
        return NULL;
    char *s = b->buf;
    if (len)
        *len = b->len;
    rv_dynbuf_init(b, b->max);
    return s;
}

void rv_dynbuf_free(struct rv_dynbuf *b)
{
    free(b->buf);
    rv_dynbuf_init(b, b->max);
}

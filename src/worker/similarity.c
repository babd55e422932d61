/* git's rename similarity as a libgit2 similarity metric (git_similarity):
 * libgit2's own (hashsig) keeps a sample of line hashes, skips files under
 * a few hundred bytes in merges, and so pairs renames differently from
 * git. This one counts what git's diffcore counts: a file is cut into
 * chunks ending at a newline or after 64 bytes (a CR before LF ignored in
 * text), and two files share the bytes of the chunks they have in common;
 * the score is the shared bytes over the larger size, 0 when the sizes
 * alone rule out the threshold. A chunk is known by git's own hash of it
 * reduced modulo HASHBASE, as diffcore-delta's span hash keeps it: chunks
 * that collide there count as shared, which lifts git's scores a little,
 * and a rename git scores at exactly 50% must score so here too (libgit2's
 * maint/v1.1 has one). Declared in branchsync_private.h. */
#include <git2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dynbuf.h"
#include "common/errors.h"
#include "worker/branchsync_private.h"

#define CHUNK_MAX 64
#define BINARY_PROBE 8000 /* git looks this far for a NUL */
#define HASHBASE 107927   /* diffcore-delta's span hash buckets, a prime */

/* One distinct chunk: its hash and how many bytes it accounts for. */
struct chunk {
    uint64_t hash;
    uint64_t bytes;
};

/* A file's signature: its chunks sorted by hash, equal hashes merged. */
struct signature {
    struct chunk *v;
    size_t n;
    uint64_t size;
};

static int cmp_chunk(const void *a, const void *b)
{
    const struct chunk *x = a, *y = b;
    return x->hash < y->hash ? -1 : x->hash > y->hash;
}

static int sign_buffer(void **out, const char *buf, size_t len)
{
    struct signature *s = calloc(1, sizeof(*s));
    size_t cap = 0;
    if (!s)
        goto oom;
    bool text = !memchr(buf, '\0', len < BINARY_PROBE ? len : BINARY_PROBE);
    uint32_t acc1 = 0, acc2 = 0; /* git's rolling 64-bit hash, in halves */
    size_t in_chunk = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (text && c == '\r' && i + 1 < len && buf[i + 1] == '\n')
            continue;
        uint32_t old1 = acc1;
        acc1 = (acc1 << 7) ^ (acc2 >> 25);
        acc2 = (acc2 << 7) ^ (old1 >> 25);
        acc1 += c;
        in_chunk++;
        if (c != '\n' && in_chunk < CHUNK_MAX && i + 1 < len)
            continue;
        if (s->n == cap &&
            rv_grow(&s->v, &cap, s->n + 1, sizeof(*s->v), SIZE_MAX) != RV_OK)
            goto oom;
        s->v[s->n].hash = (uint32_t)(acc1 + acc2 * 0x61u) % HASHBASE;
        s->v[s->n].bytes = in_chunk;
        s->n++;
        acc1 = acc2 = 0;
        in_chunk = 0;
    }
    s->size = len; /* git divides by the file's size, CRs included */
    if (s->n > 1)
        qsort(s->v, s->n, sizeof(*s->v), cmp_chunk);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (k > 0 && s->v[k - 1].hash == s->v[i].hash)
            s->v[k - 1].bytes += s->v[i].bytes;
        else
            s->v[k++] = s->v[i];
    }
    s->n = k;
    *out = s;
    return 0;
oom:
    if (s)
        free(s->v);
    free(s);
    git_error_set_oom();
    return -1;
}

static int sign_buf(void **out, const git_diff_file *file, const char *buf,
                    size_t len, void *payload)
{
    (void)file;
    (void)payload;
    return sign_buffer(out, buf ? buf : "", buf ? len : 0);
}

/* Work-tree files (never diffed by the worker, which has no work tree):
 * read whole, signed like a blob. */
static int sign_file(void **out, const git_diff_file *file,
                     const char *fullpath, void *payload)
{
    (void)file;
    (void)payload;
    FILE *f = fopen(fullpath, "rb");
    struct rv_dynbuf b;
    char chunk[8192];
    size_t got;
    int rc = -1;
    rv_dynbuf_init(&b, (size_t)1 << 30);
    if (!f) {
        git_error_set(GIT_ERROR_OS, "cannot open '%s'", fullpath);
        return -1;
    }
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (rv_dynbuf_add(&b, chunk, got) != RV_OK)
            goto out;
    rc = sign_buffer(out, b.buf ? b.buf : "", b.len);
out:
    fclose(f);
    free(b.buf);
    if (rc != 0)
        git_error_set_oom();
    return rc;
}

static void sign_free(void *sig, void *payload)
{
    (void)payload;
    struct signature *s = sig;
    if (s)
        free(s->v);
    free(s);
}

static int similarity(int *score, void *siga, void *sigb, void *payload)
{
    (void)payload;
    const struct signature *a = siga, *b = sigb;
    uint64_t max = a->size > b->size ? a->size : b->size;
    uint64_t min = a->size > b->size ? b->size : a->size;
    *score = 0;
    if (max == 0) {
        *score = 100; /* two empty files */
        return 0;
    }
    /* Sharing at most min bytes of max cannot reach the threshold. */
    if ((max - min) * 100 > max * (100 - RENAME_THRESHOLD))
        return 0;
    uint64_t shared = 0;
    for (size_t i = 0, j = 0; i < a->n && j < b->n;) {
        if (a->v[i].hash < b->v[j].hash) {
            i++;
        } else if (a->v[i].hash > b->v[j].hash) {
            j++;
        } else {
            shared += a->v[i].bytes < b->v[j].bytes ? a->v[i].bytes
                                                    : b->v[j].bytes;
            i++;
            j++;
        }
    }
    *score = (int)(shared * 100 / max);
    return 0;
}

git_diff_similarity_metric git_similarity = {
    .file_signature = sign_file,
    .buffer_signature = sign_buf,
    .free_signature = sign_free,
    .similarity = similarity,
    .payload = NULL,
};

/*
 * The in-process cache of overview fragments, one per repo at the version
 * it was read at, bounded in bytes with least-recently-used eviction.
 *
 * Besides the fragment an entry holds the head a read rendered from the
 * meta hash (api_head). Every change of a repo's meta hash is published on
 * rv:events by the script that makes it (lua/includes/publishStatus.lua,
 * publishProjection.lua), and every event of a repo drops its head
 * (api_cache_announce). So while the subscription lasts, a head in the cache is
 * the hash as it is now, give or take the delivery of an event still on its
 * way, and a read answers from memory in the pass it arrived in. A change made
 * around the scripts (a hand-written HSET, FLUSHALL, a restored dump) publishes
 * nothing: a head is therefore kept for at most HEAD_MAX_AGE_MS, which bounds
 * how long such a change goes unseen.
 *
 * A read from Redis keeps what it read only if nothing of its repo was
 * announced or removed while it was out, since its reply may predate
 * that: it takes the cache's epoch when it sends (api_cache_epoch), every
 * event stamps its repo's entry with a new one, and every removal and
 * clear stamps the cache. Reads do not create entries, so ids that name
 * no repo leave nothing behind.
 *
 * With the fragment an entry keeps the overview bodies compressed from it
 * (api_cache_coded): one set per head text, for the fresh and the stale
 * form, so a body is compressed once per version and head rather than per
 * request. They go with the fragment; a head read again with the same
 * text finds them still there.
 *
 * It also remembers the highest version announced per repo, so a read
 * whose reply was already overtaken by an announcement is done again
 * rather than served (events.c feeds it; a lost subscription clears
 * everything, since announcements may have been missed).
 */
#include <event2/buffer.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "common/util.h"

#define CACHE_BUCKETS 4096
/* The longest a head is served without reading the meta hash again. */
#define HEAD_MAX_AGE_MS 1000

/* A fragment shared by the cache and the replies still being sent. */
struct api_blob {
    size_t refs;
    size_t len;
    char data[]; /* len bytes and a NUL */
};

struct api_blob *api_blob_new(const char *data, size_t len)
{
    struct api_blob *b = malloc(sizeof(*b) + len + 1);
    if (!b)
        return NULL;
    b->refs = 1;
    b->len = len;
    memcpy(b->data, data, len);
    b->data[len] = '\0';
    return b;
}

struct api_blob *api_blob_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    struct api_blob *b = n < 0 ? NULL : malloc(sizeof(*b) + (size_t)n + 1);
    if (!b)
        return NULL;
    b->refs = 1;
    b->len = (size_t)n;
    va_start(ap, fmt);
    vsnprintf(b->data, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return b;
}

void api_blob_unref(struct api_blob *b)
{
    if (b && --b->refs == 0)
        free(b);
}

const char *api_blob_data(const struct api_blob *b)
{
    return b->data;
}

size_t api_blob_len(const struct api_blob *b)
{
    return b->len;
}

static void blob_release(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    api_blob_unref(arg);
}

int api_blob_add_to(struct evbuffer *out, struct api_blob *b)
{
    b->refs++;
    if (evbuffer_add_reference(out, b->data, b->len, blob_release, b) != 0) {
        b->refs--;
        return -1;
    }
    return 0;
}

void api_head_free(struct api_head *h)
{
    if (!h)
        return;
    for (int i = 0; i < 2; i++) {
        api_blob_unref(h->text[i]);
        api_blob_unref(h->snapshot[i]);
    }
    free(h);
}

static size_t head_bytes(const struct api_head *h)
{
    size_t n = 0;
    for (int i = 0; i < 2; i++)
        n += (h->text[i] ? h->text[i]->len : 0) +
             (h->snapshot[i] ? h->snapshot[i]->len : 0);
    return n;
}

/* The compressed bodies of one head text at the fragment's version. */
#define CODED_SLOTS 2 /* a head's fresh and stale text */
struct coded {
    struct api_blob *head;                /* one reference, or NULL */
    struct api_blob *body[API_ENC_COUNT]; /* one reference each, or NULL */
    uint64_t used;                        /* api_cache.uses at last use */
};

struct cache_entry {
    char repo[RV_REPO_ID_MAX + 1];
    int64_t version;           /* of the fragment; -1 when none is held */
    int64_t announced;         /* highest announced version; -1 none */
    uint64_t stamp;            /* epoch of the last event of the repo; 0 */
    struct api_blob *fragment; /* one reference, or NULL */
    struct api_head *head;     /* owned, only with the fragment */
    int64_t head_until_ms;     /* rv_mono_ms past which head is not used */
    struct coded coded[CODED_SLOTS]; /* only with the fragment */
    struct cache_entry *next;  /* hash chain */
    struct cache_entry *lru_prev, *lru_next; /* only entries with data */
};

struct api_cache {
    struct cache_entry *buckets[CACHE_BUCKETS];
    struct cache_entry *lru_head, *lru_tail; /* head = most recent */
    size_t bytes, max_bytes;
    uint64_t hits, misses;
    uint64_t epoch;   /* the last stamp handed out; never reused */
    uint64_t removed; /* epoch of the last forget or clear */
    uint64_t uses;    /* coded bodies looked up or kept, for their LRU */
};

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h % CACHE_BUCKETS;
}

static struct cache_entry *find(struct api_cache *c, const char *repo,
                                bool create)
{
    size_t b = hash_str(repo);
    for (struct cache_entry *e = c->buckets[b]; e; e = e->next)
        if (strcmp(e->repo, repo) == 0)
            return e;
    if (!create)
        return NULL;
    struct cache_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    rv_strlcpy(e->repo, repo, sizeof(e->repo));
    e->version = -1;
    e->announced = -1;
    e->next = c->buckets[b];
    c->buckets[b] = e;
    return e;
}

static void lru_unlink(struct api_cache *c, struct cache_entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else if (c->lru_head == e)
        c->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else if (c->lru_tail == e)
        c->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push(struct api_cache *c, struct cache_entry *e)
{
    e->lru_next = c->lru_head;
    e->lru_prev = NULL;
    if (c->lru_head)
        c->lru_head->lru_prev = e;
    c->lru_head = e;
    if (!c->lru_tail)
        c->lru_tail = e;
}

static void drop_head(struct api_cache *c, struct cache_entry *e)
{
    if (!e->head)
        return;
    c->bytes -= head_bytes(e->head);
    api_head_free(e->head);
    e->head = NULL;
}

/* Releases what slot k of e holds; returns the bytes it counted. */
static size_t coded_release(struct cache_entry *e, int k)
{
    struct coded *cd = &e->coded[k];
    size_t n = cd->head ? cd->head->len : 0;
    for (int i = 0; i < API_ENC_COUNT; i++) {
        n += cd->body[i] ? cd->body[i]->len : 0;
        api_blob_unref(cd->body[i]);
    }
    api_blob_unref(cd->head);
    memset(cd, 0, sizeof(*cd));
    return n;
}

static void drop_data(struct api_cache *c, struct cache_entry *e)
{
    drop_head(c, e);
    for (int k = 0; k < CODED_SLOTS; k++)
        c->bytes -= coded_release(e, k);
    if (!e->fragment)
        return;
    lru_unlink(c, e);
    c->bytes -= e->fragment->len;
    api_blob_unref(e->fragment);
    e->fragment = NULL;
    e->version = -1;
}

static void remove_entry(struct api_cache *c, const char *repo)
{
    struct cache_entry **p = &c->buckets[hash_str(repo)];
    while (*p && strcmp((*p)->repo, repo) != 0)
        p = &(*p)->next;
    struct cache_entry *e = *p;
    if (!e)
        return;
    drop_data(c, e);
    *p = e->next;
    free(e);
}

struct api_cache *api_cache_new(size_t max_bytes)
{
    struct api_cache *c = calloc(1, sizeof(*c));
    if (c)
        c->max_bytes = max_bytes;
    return c;
}

void api_cache_clear(struct api_cache *c)
{
    for (size_t b = 0; b < CACHE_BUCKETS; b++) {
        struct cache_entry *e = c->buckets[b];
        while (e) {
            struct cache_entry *next = e->next;
            api_head_free(e->head);
            api_blob_unref(e->fragment);
            for (int k = 0; k < CODED_SLOTS; k++)
                coded_release(e, k);
            free(e);
            e = next;
        }
        c->buckets[b] = NULL;
    }
    c->lru_head = c->lru_tail = NULL;
    c->bytes = 0;
    c->removed = ++c->epoch;
}

void api_cache_free(struct api_cache *c)
{
    if (!c)
        return;
    api_cache_clear(c);
    free(c);
}

struct api_blob *api_cache_get(struct api_cache *c, const char *repo,
                               int64_t version)
{
    struct cache_entry *e = find(c, repo, false);
    if (!e || !e->fragment || e->version != version) {
        c->misses++;
        return NULL;
    }
    c->hits++;
    lru_unlink(c, e);
    lru_push(c, e);
    return e->fragment;
}

int64_t api_cache_version(struct api_cache *c, const char *repo)
{
    struct cache_entry *e = find(c, repo, false);
    return e && e->fragment ? e->version : -1;
}

/* Whether a read that took epoch may keep what it read of the repo of e
 * (NULL: a repo with no entry). */
static bool read_current(const struct api_cache *c, const struct cache_entry *e,
                         uint64_t epoch)
{
    return epoch >= c->removed && (!e || e->stamp <= epoch);
}

uint64_t api_cache_epoch(const struct api_cache *c)
{
    return c->epoch;
}

void api_cache_put(struct api_cache *c, const char *repo, uint64_t epoch,
                   int64_t version, struct api_blob *fragment)
{
    size_t len = fragment->len;
    if (len > c->max_bytes / 4)
        return; /* one huge repo must not flush everything else */
    struct cache_entry *e = find(c, repo, false);
    if (!read_current(c, e, epoch) || (!e && !(e = find(c, repo, true))))
        return;
    if (version < e->announced || (e->fragment && e->version >= version))
        return;
    drop_data(c, e);
    fragment->refs++;
    e->fragment = fragment;
    e->version = version;
    c->bytes += len;
    lru_push(c, e);
    while (c->bytes > c->max_bytes && c->lru_tail && c->lru_tail != e)
        drop_data(c, c->lru_tail);
}

void api_cache_announce(struct api_cache *c, const char *repo, int64_t version)
{
    struct cache_entry *e = find(c, repo, true);
    if (!e)
        return;
    e->stamp = ++c->epoch;
    drop_head(c, e);
    if (version > e->announced)
        e->announced = version;
    if (e->fragment && e->version < version)
        drop_data(c, e);
}

void api_cache_put_head(struct api_cache *c, const char *repo, uint64_t epoch,
                        struct api_head *h)
{
    struct cache_entry *e = find(c, repo, false);
    if (!e || !read_current(c, e, epoch) || !e->fragment ||
        e->version != h->version || h->version < e->announced) {
        api_head_free(h);
        return;
    }
    drop_head(c, e);
    e->head = h;
    e->head_until_ms = rv_mono_ms() + HEAD_MAX_AGE_MS;
    c->bytes += head_bytes(h);
    lru_unlink(c, e);
    lru_push(c, e);
    while (c->bytes > c->max_bytes && c->lru_tail && c->lru_tail != e)
        drop_data(c, c->lru_tail);
}

const struct api_head *api_cache_head(struct api_cache *c, const char *repo,
                                      struct api_blob **fragment)
{
    struct cache_entry *e = find(c, repo, false);
    if (!e || !e->head)
        return NULL;
    if (rv_mono_ms() >= e->head_until_ms) {
        drop_head(c, e);
        return NULL;
    }
    c->hits++;
    lru_unlink(c, e);
    lru_push(c, e);
    *fragment = e->fragment;
    return e->head;
}

int64_t api_cache_announced(struct api_cache *c, const char *repo)
{
    struct cache_entry *e = find(c, repo, false);
    return e ? e->announced : -1;
}

void api_cache_forget(struct api_cache *c, const char *repo)
{
    remove_entry(c, repo);
    c->removed = ++c->epoch;
}

uint64_t api_cache_hits(const struct api_cache *c)
{
    return c->hits;
}

uint64_t api_cache_misses(const struct api_cache *c)
{
    return c->misses;
}

size_t api_cache_bytes(const struct api_cache *c)
{
    return c->bytes;
}

static bool same_text(const struct api_blob *a, const struct api_blob *b)
{
    return a == b || (a && b && a->len == b->len &&
                      memcmp(a->data, b->data, a->len) == 0);
}

/* The slot of e made from head text, or NULL. */
static struct coded *coded_find(struct cache_entry *e,
                                const struct api_blob *head)
{
    for (int k = 0; k < CODED_SLOTS; k++)
        if (e->coded[k].head && same_text(e->coded[k].head, head))
            return &e->coded[k];
    return NULL;
}

struct api_blob *api_cache_coded(struct api_cache *c, const char *repo,
                                 int64_t version,
                                 const struct api_blob *head_text,
                                 enum api_encoding enc, bool *keepable)
{
    struct cache_entry *e = find(c, repo, false);
    *keepable = e && e->fragment && e->version == version;
    if (!*keepable)
        return NULL;
    struct coded *cd = coded_find(e, head_text);
    if (!cd)
        return NULL;
    /* In use even when this coding is not made yet: the slot being read
     * must not be the one put_coded throws away for it. */
    cd->used = ++c->uses;
    return cd->body[enc];
}

struct api_blob *api_cache_put_coded(struct api_cache *c, const char *repo,
                                     int64_t version,
                                     struct api_blob *head_text,
                                     enum api_encoding enc,
                                     struct api_blob *body)
{
    struct cache_entry *e = find(c, repo, false);
    if (!e || !e->fragment || e->version != version)
        return NULL;
    struct coded *cd = coded_find(e, head_text);
    if (!cd) {
        /* A new head text: an empty slot, else the one used longest ago
         * (a head's other form, or an older head of the version). */
        int k = e->coded[0].used <= e->coded[1].used ? 0 : 1;
        c->bytes -= coded_release(e, k);
        cd = &e->coded[k];
        head_text->refs++;
        cd->head = head_text;
        c->bytes += head_text->len;
    }
    cd->used = ++c->uses;
    if (cd->body[enc])
        return cd->body[enc];
    body->refs++;
    cd->body[enc] = body;
    c->bytes += body->len;
    lru_unlink(c, e);
    lru_push(c, e);
    while (c->bytes > c->max_bytes && c->lru_tail && c->lru_tail != e)
        drop_data(c, c->lru_tail);
    return body;
}

/*
 * The in-process cache of overview fragments, one per repo at the version
 * it was read at, bounded in bytes with least-recently-used eviction.
 *
 * It never decides freshness on its own: a read always asks Redis for the
 * meta hash and uses the cached fragment only when the versions agree. It
 * also remembers the highest version announced on rv:events per repo, so
 * a read whose reply was already overtaken by an announcement is done
 * again rather than served (events.c feeds it; a lost subscription clears
 * everything, since announcements may have been missed).
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

#define CACHE_BUCKETS 4096

struct cache_entry {
    char repo[RV_REPO_ID_MAX + 1];
    int64_t version;        /* of the fragment; -1 when none is held */
    int64_t announced;      /* highest announced version; -1 none */
    char *fragment;         /* owned, or NULL */
    size_t len;
    struct cache_entry *next;                 /* hash chain */
    struct cache_entry *lru_prev, *lru_next;  /* only entries with data */
};

struct api_cache {
    struct cache_entry *buckets[CACHE_BUCKETS];
    struct cache_entry *lru_head, *lru_tail;  /* head = most recent */
    size_t bytes, max_bytes;
    uint64_t hits, misses;
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

static void drop_data(struct api_cache *c, struct cache_entry *e)
{
    if (!e->fragment)
        return;
    lru_unlink(c, e);
    c->bytes -= e->len;
    free(e->fragment);
    e->fragment = NULL;
    e->len = 0;
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
            free(e->fragment);
            free(e);
            e = next;
        }
        c->buckets[b] = NULL;
    }
    c->lru_head = c->lru_tail = NULL;
    c->bytes = 0;
}

void api_cache_free(struct api_cache *c)
{
    if (!c)
        return;
    api_cache_clear(c);
    free(c);
}

const char *api_cache_get(struct api_cache *c, const char *repo,
                          int64_t version, size_t *len)
{
    struct cache_entry *e = find(c, repo, false);
    if (!e || !e->fragment || e->version != version) {
        c->misses++;
        return NULL;
    }
    c->hits++;
    lru_unlink(c, e);
    lru_push(c, e);
    *len = e->len;
    return e->fragment;
}

int64_t api_cache_version(struct api_cache *c, const char *repo)
{
    struct cache_entry *e = find(c, repo, false);
    return e && e->fragment ? e->version : -1;
}

void api_cache_put(struct api_cache *c, const char *repo, int64_t version,
                   const char *fragment, size_t len)
{
    if (len > c->max_bytes / 4)
        return; /* one huge repo must not flush everything else */
    struct cache_entry *e = find(c, repo, true);
    if (!e || version < e->announced ||
        (e->fragment && e->version >= version))
        return;
    char *copy = malloc(len + 1);
    if (!copy)
        return;
    memcpy(copy, fragment, len);
    copy[len] = '\0';
    drop_data(c, e);
    e->fragment = copy;
    e->len = len;
    e->version = version;
    c->bytes += len;
    lru_push(c, e);
    while (c->bytes > c->max_bytes && c->lru_tail && c->lru_tail != e)
        drop_data(c, c->lru_tail);
}

void api_cache_announce(struct api_cache *c, const char *repo,
                        int64_t version)
{
    struct cache_entry *e = find(c, repo, true);
    if (!e)
        return;
    if (version > e->announced)
        e->announced = version;
    if (e->fragment && e->version < version)
        drop_data(c, e);
}

int64_t api_cache_announced(struct api_cache *c, const char *repo)
{
    struct cache_entry *e = find(c, repo, false);
    return e ? e->announced : -1;
}

void api_cache_forget(struct api_cache *c, const char *repo)
{
    remove_entry(c, repo);
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

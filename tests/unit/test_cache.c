/*
 * The API's in-process cache (src/api/cache.c): a head is served only while
 * no event of its repo came after the read that rendered it, it never
 * outlives its fragment, and the byte bound covers heads too. And the
 * clock rule the cached heads rely on (rv_stale_from_ms), against the
 * formula the contract states: stale when a kind never synced or its last
 * success is older than staleAfterSeconds.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "common/registry.h"
#include "common/util.h"
#include "rvtest.h"

static struct api_blob *blob(const char *s)
{
    return api_blob_new(s, strlen(s));
}

/* A head of version with texts of n bytes each. */
static struct api_head *head_of(int64_t version, size_t n)
{
    struct api_head *h = calloc(1, sizeof(*h));
    char *text = malloc(n + 1);
    if (!h || !text) {
        free(h);
        free(text);
        return NULL;
    }
    memset(text, 'h', n);
    text[n] = '\0';
    h->version = version;
    h->stale_from_ms = 1000;
    h->text[0] = api_blob_new(text, n);
    h->text[1] = api_blob_new(text, n);
    rv_strlcpy(h->etag[0], "\"fresh\"", sizeof(h->etag[0]));
    rv_strlcpy(h->etag[1], "\"stale\"", sizeof(h->etag[1]));
    free(text);
    return h;
}

/* Caches fragment text at version for repo, as a read sent now would
 * (the cache takes its own reference). */
static void put_fragment(struct api_cache *c, const char *repo,
                         int64_t version, const char *text)
{
    struct api_blob *b = blob(text);
    api_cache_put(c, repo, api_cache_epoch(c), version, b);
    api_blob_unref(b);
}

static void test_a_head_is_served_with_the_fragment_of_its_version(void)
{
    struct api_cache *c = api_cache_new(1 << 20);
    struct api_blob *frag = NULL;
    CHECK(api_cache_head(c, "w", &frag) == NULL);
    put_fragment(c, "w", 3, "F3");
    CHECK(api_cache_head(c, "w", &frag) == NULL); /* no head yet */
    api_cache_put_head(c, "w", api_cache_epoch(c), head_of(3, 10));
    const struct api_head *h = api_cache_head(c, "w", &frag);
    CHECK(h != NULL);
    CHECK(h && h->version == 3);
    CHECK(frag && strcmp(api_blob_data(frag), "F3") == 0);
    CHECK_INT(api_cache_hits(c), 1);
    CHECK_INT(api_cache_bytes(c), 2 + 20);
    /* A head of another version than the fragment is not kept. */
    api_cache_put_head(c, "w", api_cache_epoch(c), head_of(2, 10));
    h = api_cache_head(c, "w", &frag);
    CHECK(h && h->version == 3);
    /* Nor one for a repo without a fragment. */
    api_cache_put_head(c, "other", api_cache_epoch(c), head_of(1, 4));
    CHECK(api_cache_head(c, "other", &frag) == NULL);
    api_cache_free(c);
}

static void test_an_event_drops_the_head_and_outdates_reads_in_flight(void)
{
    struct api_cache *c = api_cache_new(1 << 20);
    struct api_blob *frag = NULL;
    put_fragment(c, "w", 3, "F3");
    uint64_t before = api_cache_epoch(c);
    api_cache_put_head(c, "w", before, head_of(3, 10));
    /* A status event (same version): the head goes, the fragment stays. */
    api_cache_announce(c, "w", 3);
    CHECK(api_cache_head(c, "w", &frag) == NULL);
    CHECK(api_cache_get(c, "w", 3) != NULL);
    CHECK_INT(api_cache_bytes(c), 2);
    /* A read sent before the event must not bring its head back. */
    uint64_t after = api_cache_epoch(c);
    CHECK(after > before);
    api_cache_put_head(c, "w", before, head_of(3, 10));
    CHECK(api_cache_head(c, "w", &frag) == NULL);
    /* One sent after it may. */
    api_cache_put_head(c, "w", after, head_of(3, 10));
    CHECK(api_cache_head(c, "w", &frag) != NULL);
    /* A change this process made itself (-1) counts the same. */
    api_cache_announce(c, "w", -1);
    CHECK(api_cache_head(c, "w", &frag) == NULL);
    CHECK(api_cache_epoch(c) > after);
    /* A projection event: fragment and head both go. */
    api_cache_put_head(c, "w", api_cache_epoch(c), head_of(3, 10));
    api_cache_announce(c, "w", 4);
    CHECK(api_cache_head(c, "w", &frag) == NULL);
    CHECK(api_cache_get(c, "w", 3) == NULL);
    CHECK_INT(api_cache_bytes(c), 0);
    api_cache_free(c);
}

static void test_reads_out_across_a_removal_or_clear_keep_nothing(void)
{
    struct api_cache *c = api_cache_new(1 << 20);
    struct api_blob *frag = NULL;
    /* A read sent, then the repo removed (and maybe registered again):
     * neither its fragment nor its head may come back. */
    uint64_t before = api_cache_epoch(c);
    api_cache_forget(c, "w");
    struct api_blob *old = blob("OLD");
    api_cache_put(c, "w", before, 5, old);
    CHECK(api_cache_get(c, "w", 5) == NULL);
    /* Another repo's read is refused too: a removal is not tracked per
     * repo once its entry is gone. */
    api_cache_put(c, "x", before, 1, old);
    CHECK(api_cache_get(c, "x", 1) == NULL);
    /* The same after a clear (the subscription was lost). */
    put_fragment(c, "w", 1, "F1");
    before = api_cache_epoch(c);
    api_cache_clear(c);
    api_cache_put(c, "w", before, 1, old);
    CHECK(api_cache_get(c, "w", 1) == NULL);
    /* An event of a repo with no entry yet outdates reads sent before. */
    before = api_cache_epoch(c);
    api_cache_announce(c, "fresh", 2);
    api_cache_put(c, "fresh", before, 2, old);
    CHECK(api_cache_get(c, "fresh", 2) == NULL);
    /* Reads create no entries: ids of no repo leave nothing behind. */
    for (int i = 0; i < 1000; i++) {
        char id[16];
        snprintf(id, sizeof(id), "nope%d", i);
        CHECK(api_cache_head(c, id, &frag) == NULL);
        api_cache_put_head(c, id, api_cache_epoch(c), head_of(1, 4));
    }
    CHECK_INT(api_cache_bytes(c), 0);
    /* A read sent now is kept. */
    put_fragment(c, "w", 1, "F1");
    api_cache_put_head(c, "w", api_cache_epoch(c), head_of(1, 4));
    CHECK(api_cache_head(c, "w", &frag) != NULL);
    api_blob_unref(old);
    api_cache_free(c);
}

static void test_a_head_is_served_for_a_second_at_most(void)
{
    /* A change made around the scripts publishes nothing: a head is read
     * again after a second. */
    struct api_cache *c = api_cache_new(1 << 20);
    struct api_blob *frag = NULL;
    put_fragment(c, "w", 1, "F1");
    api_cache_put_head(c, "w", api_cache_epoch(c), head_of(1, 4));
    CHECK(api_cache_head(c, "w", &frag) != NULL);
    rvt_sleep_ms(1050);
    CHECK(api_cache_head(c, "w", &frag) == NULL);
    CHECK_INT(api_cache_bytes(c), 2); /* the fragment stays */
    CHECK(api_cache_get(c, "w", 1) != NULL);
    api_cache_free(c);
}

static void test_heads_count_against_the_bound_and_leave_with_fragments(void)
{
    /* Room for two fragments of 100 bytes and a little more. */
    struct api_cache *c = api_cache_new(1000);
    struct api_blob *frag = NULL;
    char hundred[101];
    memset(hundred, 'f', 100);
    hundred[100] = '\0';
    put_fragment(c, "a", 1, hundred);
    api_cache_put_head(c, "a", api_cache_epoch(c), head_of(1, 200));
    put_fragment(c, "b", 1, hundred);
    CHECK_INT(api_cache_bytes(c), 100 + 400 + 100);
    CHECK(api_cache_head(c, "a", &frag) != NULL); /* a is now the newest */
    /* b's head passes the bound: the least recently used goes, head and
     * fragment together. */
    api_cache_put_head(c, "b", api_cache_epoch(c), head_of(1, 201));
    CHECK(api_cache_head(c, "a", &frag) == NULL);
    CHECK(api_cache_get(c, "a", 1) == NULL);
    CHECK(api_cache_head(c, "b", &frag) != NULL);
    CHECK_INT(api_cache_bytes(c), 100 + 402);
    /* A newer fragment replaces the old one and its head. */
    put_fragment(c, "b", 2, "F2");
    CHECK(api_cache_head(c, "b", &frag) == NULL);
    CHECK_INT(api_cache_bytes(c), 2);
    api_cache_free(c);
}

/* The contract's rule, written out as the test's oracle. */
static bool stale_by_contract(const struct rv_repo *r, int64_t now,
                              int64_t after_s)
{
    int64_t limit = after_s * 1000;
    const struct rv_sync_state *b = &r->sync[RV_KIND_BRANCHES];
    const struct rv_sync_state *p = &r->sync[RV_KIND_PRS];
    bool stale = b->at_ms <= 0 || now - b->at_ms > limit;
    if (r->github && *r->github && (p->at_ms <= 0 || now - p->at_ms > limit))
        stale = true;
    return stale;
}

static void test_stale_from_agrees_with_the_contract_at_every_edge(void)
{
    struct rv_repo r;
    memset(&r, 0, sizeof(r));
    char none[] = "", gh[] = "acme/widgets";
    const int64_t at[] = {0, -5, 1, 1700000000000LL, 1700000000500LL};
    const int64_t after[] = {0, 1, 600};
    for (int g = 0; g < 2; g++) {
        r.github = g ? gh : none;
        for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++)
            for (size_t j = 0; j < sizeof(at) / sizeof(at[0]); j++)
                for (size_t k = 0; k < sizeof(after) / sizeof(after[0]); k++) {
                    r.sync[RV_KIND_BRANCHES].at_ms = at[i];
                    r.sync[RV_KIND_PRS].at_ms = at[j];
                    int64_t from = rv_stale_from_ms(&r, after[k]);
                    for (int64_t d = -2; d <= 2; d++) {
                        int64_t now = 1700000000000LL + after[k] * 1000 + d;
                        CHECK_INT(now >= from,
                                  stale_by_contract(&r, now, after[k]));
                        now = 1700000000500LL + after[k] * 1000 + d;
                        CHECK_INT(now >= from,
                                  stale_by_contract(&r, now, after[k]));
                    }
                }
    }
    r.github = none;
    r.sync[RV_KIND_BRANCHES].at_ms = 0;
    CHECK_INT(rv_stale_from_ms(&r, 600), INT64_MIN);
    /* No overflow at the far end: a time that far off never goes stale. */
    r.sync[RV_KIND_BRANCHES].at_ms = INT64_MAX - 10;
    CHECK_INT(rv_stale_from_ms(&r, 600), INT64_MAX);
    r.sync[RV_KIND_BRANCHES].at_ms = 1700000000000LL;
    CHECK_INT(rv_stale_from_ms(&r, 600), 1700000000000LL + 600000 + 1);
}

int main(void)
{
    RUN(test_a_head_is_served_with_the_fragment_of_its_version);
    RUN(test_an_event_drops_the_head_and_outdates_reads_in_flight);
    RUN(test_reads_out_across_a_removal_or_clear_keep_nothing);
    RUN(test_a_head_is_served_for_a_second_at_most);
    RUN(test_heads_count_against_the_bound_and_leave_with_fragments);
    RUN(test_stale_from_agrees_with_the_contract_at_every_edge);
    return rvt_done();
}

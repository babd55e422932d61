/* dynbuf.c: the capped byte buffer and the array grow helper. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/dynbuf.h"
#include "common/errors.h"
#include "rvtest.h"

static void test_adds_grow_the_buffer_and_keep_every_byte(void)
{
    struct rv_dynbuf b;
    rv_dynbuf_init(&b, 1 << 20);
    CHECK(b.buf == NULL);
    CHECK_INT(b.len, 0);
    char want[10000];
    for (size_t i = 0; i < sizeof(want); i++)
        want[i] = (char)('a' + i % 26);
    for (size_t at = 0; at < sizeof(want); at += 100)
        CHECK_INT(rv_dynbuf_add(&b, want + at, 100), RV_OK);
    CHECK_INT(b.len, sizeof(want));
    CHECK(b.cap > b.len);
    CHECK(memcmp(b.buf, want, sizeof(want)) == 0);
    rv_dynbuf_free(&b);
    CHECK(b.buf == NULL);
    CHECK_INT(b.len, 0);
    CHECK_INT(b.max, 1 << 20); /* free keeps the cap for reuse */
}

static void test_the_buffer_is_always_nul_terminated(void)
{
    struct rv_dynbuf b;
    rv_dynbuf_init(&b, 100);
    CHECK_INT(rv_dynbuf_add(&b, "abc", 3), RV_OK);
    CHECK_STR(b.buf, "abc");
    CHECK_INT(rv_dynbuf_add(&b, NULL, 0), RV_OK);
    CHECK_STR(b.buf, "abc");
    CHECK_INT(rv_dynbuf_add(&b, "defg", 2), RV_OK);
    CHECK_STR(b.buf, "abcde");
    rv_dynbuf_reset(&b);
    CHECK_INT(b.len, 0);
    CHECK_STR(b.buf, "");
    CHECK_INT(rv_dynbuf_add(&b, "x", 1), RV_OK);
    CHECK_STR(b.buf, "x");
    rv_dynbuf_free(&b);
}

static void test_exactly_max_is_accepted_and_one_more_refused(void)
{
    char data[65];
    memset(data, 'z', sizeof(data));
    struct rv_dynbuf b;
    rv_dynbuf_init(&b, 64);
    CHECK_INT(rv_dynbuf_add(&b, data, 60), RV_OK);
    CHECK_INT(rv_dynbuf_add(&b, data, 4), RV_OK); /* 64: exactly max */
    CHECK_INT(b.len, 64);
    CHECK(b.cap <= 65); /* never allocated past max and its NUL */
    char *before = b.buf;
    CHECK_INT(rv_dynbuf_add(&b, "!", 1), RV_ERR_TOO_LARGE);
    CHECK(b.buf == before);
    CHECK_INT(b.len, 64);
    CHECK(b.buf[63] == 'z' && b.buf[64] == '\0');
    CHECK_INT(rv_dynbuf_add(&b, NULL, 0), RV_OK); /* still full, still ok */
    rv_dynbuf_free(&b);

    /* One add past max at once, on an empty buffer. */
    rv_dynbuf_init(&b, 64);
    CHECK_INT(rv_dynbuf_add(&b, data, 65), RV_ERR_TOO_LARGE);
    CHECK(b.buf == NULL);
    CHECK_INT(b.len, 0);
    CHECK_INT(rv_dynbuf_add(&b, data, SIZE_MAX), RV_ERR_TOO_LARGE);
    rv_dynbuf_free(&b);

    /* A max of 0 holds only the empty string. */
    rv_dynbuf_init(&b, 0);
    CHECK_INT(rv_dynbuf_add(&b, "", 0), RV_OK);
    CHECK_STR(b.buf, "");
    CHECK_INT(rv_dynbuf_add(&b, "a", 1), RV_ERR_TOO_LARGE);
    rv_dynbuf_free(&b);
}

static void test_take_hands_out_the_string_and_empties_the_buffer(void)
{
    struct rv_dynbuf b;
    rv_dynbuf_init(&b, 32);
    CHECK_INT(rv_dynbuf_add(&b, "hello", 5), RV_OK);
    size_t len = 0;
    char *s = rv_dynbuf_take(&b, &len);
    CHECK_STR(s, "hello");
    CHECK_INT(len, 5);
    CHECK(b.buf == NULL);
    CHECK_INT(b.len, 0);
    CHECK_INT(b.cap, 0);
    CHECK_INT(b.max, 32);
    free(s);

    /* Nothing added: still a string the caller owns. */
    s = rv_dynbuf_take(&b, &len);
    CHECK(s != NULL);
    CHECK_STR(s, "");
    CHECK_INT(len, 0);
    free(s);
    CHECK_INT(rv_dynbuf_add(&b, "again", 5), RV_OK);
    s = rv_dynbuf_take(&b, NULL);
    CHECK_STR(s, "again");
    free(s);
    rv_dynbuf_free(&b); /* frees nothing, twice is fine */
    rv_dynbuf_free(&b);
}

static void test_grow_doubles_an_array_and_keeps_its_elements(void)
{
    uint32_t *v = NULL;
    size_t cap = 0, n = 0;
    for (uint32_t i = 0; i < 1000; i++) {
        if (n == cap) {
            size_t old = cap;
            CHECK_INT(rv_grow(&v, &cap, n + 1, sizeof(*v), SIZE_MAX), RV_OK);
            CHECK(cap >= n + 1);
            CHECK(old == 0 || cap == old * 2);
        }
        v[n++] = i * 7;
    }
    int same = 1;
    for (uint32_t i = 0; i < 1000; i++)
        same &= v[i] == i * 7;
    CHECK(same);
    /* Already room: nothing moves. */
    uint32_t *before = v;
    size_t before_cap = cap;
    CHECK_INT(rv_grow(&v, &cap, cap, sizeof(*v), SIZE_MAX), RV_OK);
    CHECK(v == before && cap == before_cap);
    /* A need far past the doubling is met at once. */
    CHECK_INT(rv_grow(&v, &cap, 100000, sizeof(*v), SIZE_MAX), RV_OK);
    CHECK(cap >= 100000);
    CHECK(v[999] == 999 * 7);
    free(v);
}

static void test_grow_stops_at_max_and_leaves_the_array_alone(void)
{
    int *v = NULL;
    size_t cap = 0;
    CHECK_INT(rv_grow(&v, &cap, 10, sizeof(*v), 20), RV_OK);
    CHECK_INT(cap, 16);
    CHECK_INT(rv_grow(&v, &cap, 17, sizeof(*v), 20), RV_OK);
    CHECK_INT(cap, 20); /* doubling clamped to max */
    CHECK_INT(rv_grow(&v, &cap, 20, sizeof(*v), 20), RV_OK);
    int *before = v;
    CHECK_INT(rv_grow(&v, &cap, 21, sizeof(*v), 20), RV_ERR_TOO_LARGE);
    CHECK(v == before);
    CHECK_INT(cap, 20);
    free(v);
}

static void test_grow_refuses_sizes_whose_bytes_overflow(void)
{
    char *v = NULL;
    size_t cap = 0;
    /* need * elem passes SIZE_MAX: refused before any multiplication. */
    CHECK_INT(rv_grow(&v, &cap, SIZE_MAX / 8 + 1, 8, SIZE_MAX),
              RV_ERR_TOO_LARGE);
    CHECK(v == NULL);
    CHECK_INT(cap, 0);
    CHECK_INT(rv_grow(&v, &cap, SIZE_MAX, 2, SIZE_MAX), RV_ERR_TOO_LARGE);
    CHECK(v == NULL);
    /* An element count near max / 2 doubles to max, not past it. */
    CHECK_INT(rv_grow(&v, &cap, 3, 1, 5), RV_OK);
    CHECK_INT(cap, 5);
    free(v);
}

/* A buffer that will hold a secret is reserved whole, so no realloc
 * leaves a copy of its first bytes behind in freed memory. */
static void test_reserve_keeps_the_contents_in_place_up_to_n(void)
{
    struct rv_dynbuf b;
    rv_dynbuf_init(&b, 4096);
    CHECK_INT(rv_dynbuf_reserve(&b, 4097), RV_ERR_TOO_LARGE);
    CHECK(b.buf == NULL);
    CHECK_INT(rv_dynbuf_reserve(&b, 4096), RV_OK);
    CHECK_STR(b.buf, "");
    CHECK(b.cap >= 4097);
    const char *at = b.buf;
    for (int i = 0; i < 4096; i++)
        CHECK_INT(rv_dynbuf_add(&b, "x", 1), RV_OK);
    CHECK(b.buf == at);
    CHECK_INT(b.len, 4096);
    CHECK_INT(rv_dynbuf_add(&b, "x", 1), RV_ERR_TOO_LARGE);
    rv_dynbuf_free(&b);
}

int main(void)
{
    RUN(test_adds_grow_the_buffer_and_keep_every_byte);
    RUN(test_the_buffer_is_always_nul_terminated);
    RUN(test_exactly_max_is_accepted_and_one_more_refused);
    RUN(test_take_hands_out_the_string_and_empties_the_buffer);
    RUN(test_grow_doubles_an_array_and_keeps_its_elements);
    RUN(test_grow_stops_at_max_and_leaves_the_array_alone);
    RUN(test_grow_refuses_sizes_whose_bytes_overflow);
    RUN(test_reserve_keeps_the_contents_in_place_up_to_n);
    return rvt_done();
}

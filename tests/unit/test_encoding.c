/*
 * Content codings (src/api/encoding.c): which coding an Accept-Encoding
 * header gets, hostile headers included; that each compressed body decodes
 * to its input; and that the cache keeps a compressed body per version and
 * head text (src/api/cache.c), only while the fragment of that version is
 * cached.
 */
#include <brotli/decode.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "api/api.h"
#include "rvtest.h"

#define PICK(header, want) CHECK_STR(api_encoding_name(api_encoding_pick(header)), want)

static void test_no_header_or_empty_one_gets_identity(void)
{
    PICK(NULL, "identity");
    PICK("", "identity");
    PICK("   ,  , ", "identity");
    PICK("identity", "identity");
    PICK("deflate, compress", "identity");
}

static void test_q_values_pick_the_preferred_coding(void)
{
    PICK("gzip, deflate, br", "br");
    PICK("gzip", "gzip");
    PICK("x-gzip", "gzip");
    PICK("br;q=0, gzip", "gzip");
    PICK("br;q=0", "identity");
    PICK("gzip;q=0.5, br;q=0.9", "br");
    PICK("gzip;q=0.9, br;q=0.5", "gzip");
    PICK("gzip;q=0.5", "gzip"); /* identity unnamed ranks last */
    PICK("gzip;q=0.5, identity", "identity");
    PICK("gzip;q=1.0, br;q=1", "br");
    PICK("gzip;q=0.001, br;q=0.000", "gzip");
    PICK("br;q=1., gzip", "br");
}

static void test_tokens_are_case_insensitive_and_white_space_is_skipped(void)
{
    PICK("GZIP", "gzip");
    PICK("Br", "br");
    PICK(" \t gzip \t ; \t Q = 0.5 \t, br;q=0", "gzip");
    PICK("BR;Q=0.001 , GZIP ; q=0.002", "gzip");
}

static void test_star_stands_for_every_coding_not_named(void)
{
    PICK("*", "br");
    PICK("*;q=0, gzip", "gzip");
    PICK("br;q=0, *", "gzip");
    PICK("*;q=0", "identity"); /* nothing acceptable: identity anyway */
    PICK("identity;q=0", "identity");
    PICK("identity;q=0, *;q=0.1", "br");
}

static void test_malformed_elements_are_left_out(void)
{
    PICK("gzip;q=2", "identity");
    PICK("gzip;q=1.5", "identity");
    PICK("gzip;q=0.0001", "identity");
    PICK("gzip;q=abc", "identity");
    PICK("gzip;q=", "identity");
    PICK("gzip;q=-1", "identity");
    PICK("gzip;q=1e0", "identity");
    PICK("gzip junk", "identity");
    PICK("br;q=0.5x, gzip;q=0.1", "gzip");
    PICK("br;;q=1", "identity");
    PICK("gzip;level=\"a, b\";q=0.3, br;q=0.2", "gzip");
    PICK("gzip;x=\"never closed, br", "identity");
    PICK(";q=1, br", "br");
    PICK("\x01\x02\xff, gzip", "gzip");
}

static void test_a_coding_named_twice_keeps_its_smaller_q(void)
{
    PICK("br, br;q=0, gzip;q=0.1", "gzip");
    PICK("br;q=0, br", "identity");
}

static void test_huge_headers_take_one_pass(void)
{
    size_t n = 15 * 1024;
    char *h = malloc(n + 32);
    CHECK(h != NULL);
    if (!h)
        return;
    size_t len = 0;
    for (int i = 0; len + 8 < n; i++)
        len += (size_t)snprintf(h + len, n + 32 - len, "t%d,", i % 1000);
    snprintf(h + len, n + 32 - len, "gzip");
    PICK(h, "gzip");
    memset(h, ';', n);
    h[n] = '\0';
    PICK(h, "identity");
    memset(h, '"', n);
    PICK(h, "identity");
    for (size_t i = 0; i + 1 < n; i += 2)
        memcpy(h + i, "q=", 2);
    PICK(h, "identity");
    free(h);
}

static void test_etags_get_a_suffix_inside_the_quotes(void)
{
    char buf[64];
    api_encoding_etag("\"7-abc\"", API_ENC_BR, buf, sizeof(buf));
    CHECK_STR(buf, "\"7-abc-br\"");
    api_encoding_etag("\"7-abc\"", API_ENC_GZIP, buf, sizeof(buf));
    CHECK_STR(buf, "\"7-abc-gz\"");
    api_encoding_etag("\"7-abc\"", API_ENC_IDENTITY, buf, sizeof(buf));
    CHECK_STR(buf, "\"7-abc\"");
}

/* n bytes of overview-like JSON (malloc'd). */
static char *sample(size_t n)
{
    char *s = malloc(n + 1);
    size_t len = 0;
    for (int i = 0; s && len < n; i++)
        len += (size_t)snprintf(s + len, n + 1 - len,
                                "{\"name\":\"feature/branch-%d\",\"ahead\":%d},",
                                i, i % 7);
    return s;
}

static void test_compressed_bodies_decode_to_their_input(void)
{
    size_t n = 200000;
    char *in = sample(n);
    char *out = malloc(n);
    CHECK(in && out);
    if (!in || !out)
        goto out;
    struct api_blob *br = api_encoding_compress(NULL, API_ENC_BR,
                                                API_ENC_BR_QUALITY, in, n);
    struct api_blob *gz = api_encoding_compress(NULL, API_ENC_GZIP,
                                                API_ENC_GZIP_LEVEL, in, n);
    CHECK(br && gz);
    if (br) {
        size_t got = n;
        CHECK(BrotliDecoderDecompress(api_blob_len(br),
                                      (const uint8_t *)api_blob_data(br), &got,
                                      (uint8_t *)out) == BROTLI_DECODER_RESULT_SUCCESS);
        CHECK_INT(got, n);
        CHECK(memcmp(in, out, n) == 0);
        CHECK(api_blob_len(br) < n / 5);
    }
    if (gz) {
        const unsigned char *g = (const unsigned char *)api_blob_data(gz);
        CHECK(api_blob_len(gz) > 2 && g[0] == 0x1f && g[1] == 0x8b);
        z_stream z = {0};
        CHECK(inflateInit2(&z, 15 + 16) == Z_OK);
        z.next_in = (unsigned char *)(uintptr_t)g;
        z.avail_in = (uInt)api_blob_len(gz);
        z.next_out = (unsigned char *)out;
        z.avail_out = (uInt)n;
        CHECK(inflate(&z, Z_FINISH) == Z_STREAM_END);
        CHECK_INT(z.total_out, n);
        inflateEnd(&z);
        CHECK(memcmp(in, out, n) == 0);
        CHECK(api_blob_len(gz) < n / 5);
    }
    CHECK(api_encoding_compress(NULL, API_ENC_IDENTITY, 0, in, n) == NULL);
    api_blob_unref(br);
    api_blob_unref(gz);
out:
    free(in);
    free(out);
}

static void test_cache_keeps_coded_bodies_per_version_and_head(void)
{
    struct api_cache *c = api_cache_new(1 << 20);
    struct api_blob *frag = api_blob_new("\"counts\":{}", 11);
    struct api_blob *head = api_blob_new("{\"h\":1,", 7);
    struct api_blob *same = api_blob_new("{\"h\":1,", 7);
    struct api_blob *other = api_blob_new("{\"h\":2,", 7);
    struct api_blob *body = api_blob_new("coded", 5);
    bool keepable = true;
    /* No fragment cached: nothing kept, and the caller is told so. */
    CHECK(api_cache_coded(c, "r", 3, head, API_ENC_BR, &keepable) == NULL);
    CHECK(!keepable);
    CHECK(api_cache_put_coded(c, "r", 3, head, API_ENC_BR, body) == NULL);
    api_cache_put(c, "r", api_cache_epoch(c), 3, frag);
    CHECK(api_cache_coded(c, "r", 3, head, API_ENC_BR, &keepable) == NULL);
    CHECK(keepable);
    CHECK(api_cache_put_coded(c, "r", 3, head, API_ENC_BR, body) == body);
    /* The same text in another blob finds it; another coding, another
     * version or another head does not. */
    CHECK(api_cache_coded(c, "r", 3, same, API_ENC_BR, &keepable) == body);
    CHECK(api_cache_coded(c, "r", 3, same, API_ENC_GZIP, &keepable) == NULL);
    CHECK(api_cache_coded(c, "r", 2, same, API_ENC_BR, &keepable) == NULL);
    CHECK(!keepable);
    CHECK(api_cache_coded(c, "r", 3, other, API_ENC_BR, &keepable) == NULL);
    /* A newer version announced drops the fragment and its coded bodies. */
    api_cache_announce(c, "r", 4);
    CHECK(api_cache_coded(c, "r", 3, head, API_ENC_BR, &keepable) == NULL);
    CHECK(!keepable);
    CHECK_INT(api_cache_bytes(c), 0);
    api_blob_unref(frag);
    api_blob_unref(head);
    api_blob_unref(same);
    api_blob_unref(other);
    api_blob_unref(body);
    api_cache_free(c);
}

int main(void)
{
    RUN(test_no_header_or_empty_one_gets_identity);
    RUN(test_q_values_pick_the_preferred_coding);
    RUN(test_tokens_are_case_insensitive_and_white_space_is_skipped);
    RUN(test_star_stands_for_every_coding_not_named);
    RUN(test_malformed_elements_are_left_out);
    RUN(test_a_coding_named_twice_keeps_its_smaller_q);
    RUN(test_huge_headers_take_one_pass);
    RUN(test_etags_get_a_suffix_inside_the_quotes);
    RUN(test_compressed_bodies_decode_to_their_input);
    RUN(test_cache_keeps_coded_bodies_per_version_and_head);
    return rvt_done();
}

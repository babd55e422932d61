/* job.c: the MessagePack job codec round-trips every kind and reason, and
 * its strict decoder refuses every malformed payload without crashing or
 * leaking (run under ASan). */
#include <inttypes.h>
#include <jansson.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/errors.h"
#include "common/job.h"
#include "rvtest.h"

/* ---- building payloads by hand ---- */

static void put_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* How hand-built payloads deviate from a valid one. */
enum mutation {
    M_NONE,
    M_V_AS_STRING,
    M_V_TWO,
    M_V_NEGATIVE,
    M_ID_AS_INT,
    M_ID_EMPTY,
    M_ID_TOO_LONG,
    M_ID_WITH_SPACE,
    M_ID_WITH_NUL,
    M_REPO_INVALID,
    M_REPO_AS_BIN,
    M_KIND_UNKNOWN,
    M_REASON_UNKNOWN,
    M_AT_NEGATIVE,
    M_AT_AS_FLOAT,
    M_AT_AS_STRING,
    M_ATTEMPT_TOO_BIG,
    M_MISSING_ATTEMPT,
    M_DUPLICATE_KIND,
    M_UNKNOWN_KEY,
    M_INT_KEY,
    M_AT_SIGNED_WIDTHS, /* valid: wide and signed encodings of ints */
};

/* Packs a payload with the given mutation into sbuf (initialised here). */
static void build(msgpack_sbuffer *sbuf, enum mutation m)
{
    msgpack_sbuffer_init(sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
    uint32_t n = 7;
    if (m == M_MISSING_ATTEMPT)
        n = 6;
    if (m == M_UNKNOWN_KEY || m == M_INT_KEY)
        n = 8;
    msgpack_pack_map(&pk, n);

    put_str(&pk, "v");
    if (m == M_V_AS_STRING)
        put_str(&pk, "1");
    else if (m == M_V_TWO)
        msgpack_pack_uint8(&pk, 2);
    else if (m == M_V_NEGATIVE)
        msgpack_pack_int8(&pk, -1);
    else if (m == M_AT_SIGNED_WIDTHS)
        msgpack_sbuffer_write(sbuf, "\xd3\0\0\0\0\0\0\0\x01", 9);
    else
        msgpack_pack_uint32(&pk, 1);

    put_str(&pk, "id");
    if (m == M_ID_AS_INT)
        msgpack_pack_int(&pk, 7);
    else if (m == M_ID_EMPTY)
        put_str(&pk, "");
    else if (m == M_ID_TOO_LONG)
        put_str(&pk, "j-0123456789012345678901234567890123456789"); /* 42 */
    else if (m == M_ID_WITH_SPACE)
        put_str(&pk, "j-1 2");
    else if (m == M_ID_WITH_NUL) {
        msgpack_pack_str(&pk, 3);
        msgpack_pack_str_body(&pk, "j\0x", 3);
    } else
        put_str(&pk, "j-abc");

    put_str(&pk, "repo");
    if (m == M_REPO_INVALID)
        put_str(&pk, "../etc");
    else if (m == M_REPO_AS_BIN) {
        msgpack_pack_bin(&pk, 4);
        msgpack_pack_bin_body(&pk, "demo", 4);
    } else
        put_str(&pk, "demo");

    put_str(&pk, "kind");
    put_str(&pk, m == M_KIND_UNKNOWN ? "tags" : "branches");
    if (m == M_DUPLICATE_KIND) {
        /* Replaces "reason" with a second "kind": still seven entries. */
        put_str(&pk, "kind");
        put_str(&pk, "prs");
    } else {
        put_str(&pk, "reason");
        put_str(&pk, m == M_REASON_UNKNOWN ? "cron" : "user");
    }

    put_str(&pk, "at");
    if (m == M_AT_NEGATIVE)
        msgpack_pack_int64(&pk, -5);
    else if (m == M_AT_AS_FLOAT)
        msgpack_pack_double(&pk, 1.5);
    else if (m == M_AT_AS_STRING)
        put_str(&pk, "1700000000000");
    else if (m == M_AT_SIGNED_WIDTHS)
        msgpack_sbuffer_write(sbuf, "\xd2\x00\x19\xf0\xa0", 5);
    else
        msgpack_pack_uint64(&pk, 1700000000000ULL);

    if (m != M_MISSING_ATTEMPT) {
        put_str(&pk, "attempt");
        if (m == M_ATTEMPT_TOO_BIG)
            msgpack_pack_uint64(&pk, 1ULL << 32);
        else if (m == M_AT_SIGNED_WIDTHS)
            msgpack_sbuffer_write(sbuf, "\xd1\x00\x02", 3);
        else
            msgpack_pack_uint8(&pk, 0);
    }
    if (m == M_UNKNOWN_KEY) {
        put_str(&pk, "priority");
        msgpack_pack_uint8(&pk, 1);
    }
    if (m == M_INT_KEY) {
        msgpack_pack_uint8(&pk, 9);
        msgpack_pack_uint8(&pk, 1);
    }
}

static int decode_mutation(enum mutation m, char *why, size_t whylen)
{
    msgpack_sbuffer sbuf;
    build(&sbuf, m);
    struct rv_job job;
    int rc = rv_job_decode(sbuf.data, sbuf.size, &job, why, whylen);
    msgpack_sbuffer_destroy(&sbuf);
    return rc;
}

/* ---- tests ---- */

static void test_every_kind_and_reason_round_trips(void)
{
    const rv_reason reasons[] = {RV_REASON_USER, RV_REASON_WEBHOOK,
                                 RV_REASON_SCHEDULE, RV_REASON_FOLLOWUP,
                                 RV_REASON_REGISTER};
    for (int k = 0; k < 2; k++) {
        for (size_t r = 0; r < sizeof(reasons) / sizeof(reasons[0]); r++) {
            struct rv_job in, out;
            CHECK_INT(rv_job_init(&in, "widgets", (rv_kind)k, reasons[r]),
                      RV_OK);
            in.attempt = (uint32_t)r;
            char *buf = NULL;
            size_t len = 0;
            CHECK_INT(rv_job_encode(&in, &buf, &len), RV_OK);
            CHECK(len > 0 && len <= RV_JOB_MAX_BYTES);
            char why[128];
            CHECK_INT(rv_job_decode(buf, len, &out, why, sizeof(why)), RV_OK);
            CHECK_INT(out.version, RV_JOB_VERSION);
            CHECK_STR(out.id, in.id);
            CHECK_STR(out.repo, "widgets");
            CHECK_INT(out.kind, k);
            CHECK_INT(out.reason, reasons[r]);
            CHECK_INT(out.enqueued_at, in.enqueued_at);
            CHECK_INT(out.attempt, r);
            free(buf);
        }
    }
    rv_reason parsed;
    CHECK_INT(rv_reason_parse("followup", &parsed), 0);
    CHECK_INT(parsed, RV_REASON_FOLLOWUP);
    CHECK_INT(rv_reason_parse("later", &parsed), -1);
    CHECK_INT(rv_reason_parse(NULL, &parsed), -1);
    CHECK_STR(rv_reason_name(RV_REASON_REGISTER), "register");
}

static void test_edge_values_round_trip(void)
{
    struct rv_job in, out;
    char longest[RV_REPO_ID_MAX + 1];
    memset(longest, 'r', RV_REPO_ID_MAX);
    longest[RV_REPO_ID_MAX] = '\0';
    CHECK_INT(rv_job_init(&in, longest, RV_KIND_PRS, RV_REASON_SCHEDULE),
              RV_OK);
    memset(in.id, '~', RV_JOB_ID_MAX); /* longest id, last printable char */
    in.id[RV_JOB_ID_MAX] = '\0';
    in.enqueued_at = INT64_MAX;
    in.attempt = UINT32_MAX;
    char *buf = NULL;
    size_t len = 0;
    CHECK_INT(rv_job_encode(&in, &buf, &len), RV_OK);
    CHECK_INT(rv_job_decode(buf, len, &out, NULL, 0), RV_OK);
    CHECK_STR(out.repo, longest);
    CHECK_STR(out.id, in.id);
    CHECK(out.enqueued_at == INT64_MAX);
    CHECK(out.attempt == UINT32_MAX);
    free(buf);

    in.enqueued_at = 0;
    in.attempt = 0;
    CHECK_INT(rv_job_encode(&in, &buf, &len), RV_OK);
    CHECK_INT(rv_job_decode(buf, len, &out, NULL, 0), RV_OK);
    CHECK_INT(out.enqueued_at, 0);
    free(buf);

    /* Every integer width and the signed encodings of small values. */
    char why[128];
    CHECK_INT(decode_mutation(M_AT_SIGNED_WIDTHS, why, sizeof(why)), RV_OK);
}

static void test_encode_refuses_fields_out_of_range(void)
{
    struct rv_job job;
    char *buf = (char *)"untouched";
    size_t len = 0;
    CHECK_INT(rv_job_init(&job, "bad/id", RV_KIND_BRANCHES, RV_REASON_USER),
              RV_ERR_INVALID);
    CHECK_INT(rv_job_init(&job, "ok", RV_KIND_BRANCHES, RV_REASON_USER),
              RV_OK);
    job.kind = (rv_kind)7;
    CHECK_INT(rv_job_encode(&job, &buf, &len), RV_ERR_INVALID);
    CHECK(buf == NULL);
    job.kind = RV_KIND_BRANCHES;
    job.reason = (rv_reason)9;
    CHECK_INT(rv_job_encode(&job, &buf, &len), RV_ERR_INVALID);
    job.reason = RV_REASON_USER;
    job.enqueued_at = -1;
    CHECK_INT(rv_job_encode(&job, &buf, &len), RV_ERR_INVALID);
    job.enqueued_at = 0;
    job.id[0] = '\0';
    CHECK_INT(rv_job_encode(&job, &buf, &len), RV_ERR_INVALID);
}

static void test_decode_refuses_each_malformed_field(void)
{
    struct {
        enum mutation m;
        const char *why;
    } cases[] = {
        {M_V_AS_STRING, "\"v\" is not a version number"},
        {M_V_TWO, "unknown version 2"},
        {M_V_NEGATIVE, "\"v\" is not a version number"},
        {M_ID_AS_INT, "\"id\" is not a job id"},
        {M_ID_EMPTY, "\"id\" is not a job id"},
        {M_ID_TOO_LONG, "\"id\" is not a job id"},
        {M_ID_WITH_SPACE, "\"id\" is not a job id"},
        {M_ID_WITH_NUL, "\"id\" is not a job id"},
        {M_REPO_INVALID, "\"repo\" is not a valid repo id"},
        {M_REPO_AS_BIN, "\"repo\" is not a valid repo id"},
        {M_KIND_UNKNOWN, "\"kind\" is not branches, prs or org"},
        {M_REASON_UNKNOWN, "\"reason\" is not a known reason"},
        {M_AT_NEGATIVE, "\"at\" is not a time in epoch ms"},
        {M_AT_AS_FLOAT, "\"at\" is not a time in epoch ms"},
        {M_AT_AS_STRING, "\"at\" is not a time in epoch ms"},
        {M_ATTEMPT_TOO_BIG, "\"attempt\" is not a count"},
        {M_MISSING_ATTEMPT, "missing field \"attempt\""},
        {M_DUPLICATE_KIND, "duplicate field \"kind\""},
        {M_UNKNOWN_KEY, "unknown field \"priority\""},
        {M_INT_KEY, "a key is not a field name"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char why[128] = "";
        int rc = decode_mutation(cases[i].m, why, sizeof(why));
        CHECK_INT(rc, RV_ERR_DECODE);
        CHECK_STR(why, cases[i].why);
    }
    char why[128];
    CHECK_INT(decode_mutation(M_NONE, why, sizeof(why)), RV_OK);
}

static void test_decode_refuses_wrong_shapes(void)
{
    struct rv_job job;
    char why[128];
    msgpack_sbuffer sbuf;
    msgpack_packer pk;

    /* Trailing bytes after a valid job. */
    build(&sbuf, M_NONE);
    msgpack_sbuffer_write(&sbuf, "\xc0", 1);
    CHECK_INT(rv_job_decode(sbuf.data, sbuf.size, &job, why, sizeof(why)),
              RV_ERR_DECODE);
    CHECK_STR(why, "trailing bytes after the job");
    /* A second complete job counts as trailing bytes too. */
    msgpack_sbuffer second;
    build(&second, M_NONE);
    sbuf.size--;
    msgpack_sbuffer_write(&sbuf, second.data, second.size);
    CHECK_INT(rv_job_decode(sbuf.data, sbuf.size, &job, why, sizeof(why)),
              RV_ERR_DECODE);
    CHECK_STR(why, "trailing bytes after the job");
    msgpack_sbuffer_destroy(&second);
    msgpack_sbuffer_destroy(&sbuf);

    /* Not a map: an array of the right values, a string, nil. */
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    put_str(&pk, "v");
    msgpack_pack_uint8(&pk, 1);
    CHECK_INT(rv_job_decode(sbuf.data, sbuf.size, &job, why, sizeof(why)),
              RV_ERR_DECODE);
    CHECK_STR(why, "the job is not a map");
    msgpack_sbuffer_destroy(&sbuf);
    CHECK_INT(rv_job_decode("\xc0", 1, &job, why, sizeof(why)),
              RV_ERR_DECODE);
    CHECK_STR(why, "the job is not a map");
    CHECK_INT(rv_job_decode("\xa3" "abc", 4, &job, why, sizeof(why)),
              RV_ERR_DECODE);

    /* A nested map as a value. */
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    put_str(&pk, "repo");
    msgpack_pack_map(&pk, 1);
    put_str(&pk, "id");
    put_str(&pk, "demo");
    CHECK_INT(rv_job_decode(sbuf.data, sbuf.size, &job, why, sizeof(why)),
              RV_ERR_DECODE);
    CHECK_STR(why, "\"repo\" is not a valid repo id");
    msgpack_sbuffer_destroy(&sbuf);

    /* An empty map names the first missing field. */
    CHECK_INT(rv_job_decode("\x80", 1, &job, why, sizeof(why)),
              RV_ERR_DECODE);
    CHECK_STR(why, "missing field \"v\"");

    /* Empty and NULL input; why may be NULL. */
    CHECK_INT(rv_job_decode("", 0, &job, why, sizeof(why)), RV_ERR_DECODE);
    CHECK_STR(why, "empty payload");
    CHECK_INT(rv_job_decode(NULL, 0, &job, NULL, 0), RV_ERR_DECODE);
    /* The never-used byte 0xc1. */
    CHECK_INT(rv_job_decode("\xc1", 1, &job, NULL, 0), RV_ERR_DECODE);
}

static void test_decode_refuses_oversize_payloads(void)
{
    struct rv_job job;
    char why[128];
    size_t len = RV_JOB_MAX_BYTES + 1;
    char *big = malloc(len);
    CHECK(big != NULL);
    if (!big)
        return;
    memset(big, 0xc0, len);
    CHECK_INT(rv_job_decode(big, len, &job, why, sizeof(why)),
              RV_ERR_TOO_LARGE);
    CHECK_STR(why, "payload larger than 1024 bytes");
    /* A valid job padded past the limit with a long unknown field is too
     * large before it is anything else. */
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    put_str(&pk, "pad");
    memset(big, 'x', len);
    msgpack_pack_str(&pk, len);
    msgpack_pack_str_body(&pk, big, len);
    CHECK_INT(rv_job_decode(sbuf.data, sbuf.size, &job, NULL, 0),
              RV_ERR_TOO_LARGE);
    msgpack_sbuffer_destroy(&sbuf);
    free(big);
}

static void test_huge_announced_counts_are_refused_without_allocating(void)
{
    /* Five bytes announcing 4 billion array elements or map entries: the
     * unpacker would reserve 64 GB for them if asked. */
    struct rv_job job;
    char why[128];
    CHECK_INT(rv_job_decode("\xdd\xff\xff\xff\xff", 5, &job, why,
                            sizeof(why)),
              RV_ERR_DECODE);
    CHECK_INT(rv_job_decode("\xdf\xff\xff\xff\xff", 5, &job, why,
                            sizeof(why)),
              RV_ERR_DECODE);
    CHECK_INT(rv_job_decode("\x81\xa1v\xdd\x7f\xff\xff\xff", 8, &job, why,
                            sizeof(why)),
              RV_ERR_DECODE);
    CHECK_INT(rv_job_decode("\xdb\xff\xff\xff\xff", 5, &job, why,
                            sizeof(why)),
              RV_ERR_DECODE);
}

static void test_every_truncation_of_a_valid_job_is_refused(void)
{
    struct rv_job in, out;
    char *buf = NULL;
    size_t len = 0;
    CHECK_INT(rv_job_init(&in, "demo", RV_KIND_PRS, RV_REASON_WEBHOOK),
              RV_OK);
    CHECK_INT(rv_job_encode(&in, &buf, &len), RV_OK);
    int refused = 0;
    for (size_t n = 0; n < len; n++) {
        /* A copy of exactly n bytes, so ASan sees any overread. */
        char *cut = malloc(n ? n : 1);
        memcpy(cut, buf, n);
        if (rv_job_decode(cut, n, &out, NULL, 0) != RV_OK)
            refused++;
        free(cut);
    }
    CHECK_INT(refused, len);
    free(buf);
}

/* xorshift64*: deterministic, so a failure can be replayed by its seed. */
static uint64_t prng_state;
static uint64_t prng_next(void)
{
    prng_state ^= prng_state >> 12;
    prng_state ^= prng_state << 25;
    prng_state ^= prng_state >> 27;
    return prng_state * 2685821657736338717ULL;
}

static void test_random_and_mutated_buffers_never_crash(void)
{
    const char *env = getenv("RV_TEST_SEED");
    uint64_t seed = env && *env ? strtoull(env, NULL, 10)
                                : (uint64_t)time(NULL);
    if (seed == 0)
        seed = 1;
    prng_state = seed;
    fprintf(stderr, "test_job: PRNG seed %" PRIu64
                    " (set RV_TEST_SEED to replay)\n", seed);

    struct rv_job in, out;
    char *valid = NULL;
    size_t vlen = 0;
    CHECK_INT(rv_job_init(&in, "demo", RV_KIND_BRANCHES, RV_REASON_USER),
              RV_OK);
    CHECK_INT(rv_job_encode(&in, &valid, &vlen), RV_OK);

    int decoded_ok = 0;
    for (int i = 0; i < 4000; i++) {
        size_t len;
        char *b;
        if (i % 2 == 0) {
            /* Pure noise, biased to MessagePack's container headers. */
            len = (size_t)(prng_next() % 64);
            b = malloc(len ? len : 1);
            for (size_t j = 0; j < len; j++) {
                uint64_t r = prng_next();
                b[j] = (char)(r % 4 == 0 ? 0x80 | (r >> 8 & 0x1f) : r >> 16);
            }
        } else {
            /* A valid job with a few bytes flipped. */
            len = vlen;
            b = malloc(len);
            memcpy(b, valid, len);
            int flips = 1 + (int)(prng_next() % 3);
            for (int f = 0; f < flips; f++)
                b[prng_next() % len] = (char)prng_next();
        }
        char why[128];
        int rc = rv_job_decode(b, len, &out, why, sizeof(why));
        if (rc == RV_OK) {
            decoded_ok++;
            /* Whatever decodes must be a job we could encode again. */
            char *again = NULL;
            size_t alen = 0;
            CHECK_INT(rv_job_encode(&out, &again, &alen), RV_OK);
            free(again);
        } else {
            CHECK(rc == RV_ERR_DECODE);
            CHECK(why[0] != '\0');
        }
        free(b);
    }
    fprintf(stderr, "test_job: %d of 4000 random buffers decoded\n",
            decoded_ok);
    free(valid);
}

static void test_job_json_names_every_field(void)
{
    struct rv_job job;
    CHECK_INT(rv_job_init(&job, "demo", RV_KIND_PRS, RV_REASON_REGISTER),
              RV_OK);
    job.enqueued_at = 1795428000000LL; /* 2026-11-23T10:00:00.000Z */
    job.attempt = 2;
    json_t *j = rv_job_to_json(&job);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(j, "repo")), "demo");
    CHECK_STR(json_string_value(json_object_get(j, "kind")), "prs");
    CHECK_STR(json_string_value(json_object_get(j, "reason")), "register");
    CHECK_STR(json_string_value(json_object_get(j, "id")), job.id);
    CHECK_STR(json_string_value(json_object_get(j, "at")),
              "2026-11-23T10:00:00.000Z");
    CHECK_INT(json_integer_value(json_object_get(j, "attempt")), 2);
    CHECK_INT(json_integer_value(json_object_get(j, "v")), 1);
    json_decref(j);
}

int main(void)
{
    RUN(test_every_kind_and_reason_round_trips);
    RUN(test_edge_values_round_trip);
    RUN(test_encode_refuses_fields_out_of_range);
    RUN(test_decode_refuses_each_malformed_field);
    RUN(test_decode_refuses_wrong_shapes);
    RUN(test_decode_refuses_oversize_payloads);
    RUN(test_huge_announced_counts_are_refused_without_allocating);
    RUN(test_every_truncation_of_a_valid_job_is_refused);
    RUN(test_random_and_mutated_buffers_never_crash);
    RUN(test_job_json_names_every_field);
    return rvt_done();
}

/* See job.h. */
#include "common/job.h"

#include <jansson.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"

static const char *const reason_names[] = {"user", "webhook", "schedule",
                                           "followup", "register"};
#define NREASONS (sizeof(reason_names) / sizeof(reason_names[0]))

/* The fields of a job, in the order they are encoded. */
enum job_field {
    F_V,
    F_ID,
    F_REPO,
    F_KIND,
    F_REASON,
    F_AT,
    F_ATTEMPT,
    F_COUNT
};
static const char *const field_names[F_COUNT] = {
    "v", "id", "repo", "kind", "reason", "at", "attempt"};

const char *rv_reason_name(rv_reason r)
{
    return (size_t)r < NREASONS ? reason_names[r] : "unknown";
}

int rv_reason_parse(const char *s, rv_reason *out)
{
    for (size_t i = 0; s && i < NREASONS; i++) {
        if (strcmp(s, reason_names[i]) == 0) {
            *out = (rv_reason)i;
            return 0;
        }
    }
    return -1;
}

int rv_job_init(struct rv_job *job, const char *repo, rv_kind kind,
                rv_reason reason)
{
    memset(job, 0, sizeof(*job));
    if (!rv_repo_id_valid(repo))
        return RV_ERR_INVALID;
    job->version = RV_JOB_VERSION;
    rv_job_id_new(job->id, sizeof(job->id));
    rv_strlcpy(job->repo, repo, sizeof(job->repo));
    job->kind = kind;
    job->reason = reason;
    job->enqueued_at = rv_now_ms();
    job->attempt = 0;
    return RV_OK;
}

/* A job id is 1..RV_JOB_ID_MAX printable ASCII characters, no spaces. */
static bool job_id_valid(const char *s, size_t len)
{
    if (len == 0 || len > RV_JOB_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e)
            return false;
    }
    return true;
}

static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    if (msgpack_pack_str(pk, n) != 0)
        return -1;
    return msgpack_pack_str_body(pk, s, n);
}

int rv_job_encode(const struct rv_job *job, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (job->version != RV_JOB_VERSION || !rv_repo_id_valid(job->repo) ||
        !job_id_valid(job->id, strnlen(job->id, sizeof(job->id))) ||
        (job->kind != RV_KIND_BRANCHES && job->kind != RV_KIND_PRS &&
         job->kind != RV_KIND_ORG) ||
        (size_t)job->reason >= NREASONS || job->enqueued_at < 0)
        return RV_ERR_INVALID;

    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    /* Every pack call fails only when the buffer cannot grow. */
    int bad = msgpack_pack_map(&pk, F_COUNT);
    bad |= pack_str(&pk, field_names[F_V]);
    bad |= msgpack_pack_uint32(&pk, (uint32_t)job->version);
    bad |= pack_str(&pk, field_names[F_ID]);
    bad |= pack_str(&pk, job->id);
    bad |= pack_str(&pk, field_names[F_REPO]);
    bad |= pack_str(&pk, job->repo);
    bad |= pack_str(&pk, field_names[F_KIND]);
    bad |= pack_str(&pk, rv_kind_name(job->kind));
    bad |= pack_str(&pk, field_names[F_REASON]);
    bad |= pack_str(&pk, rv_reason_name(job->reason));
    bad |= pack_str(&pk, field_names[F_AT]);
    bad |= msgpack_pack_uint64(&pk, (uint64_t)job->enqueued_at);
    bad |= pack_str(&pk, field_names[F_ATTEMPT]);
    bad |= msgpack_pack_uint32(&pk, job->attempt);
    if (bad || !sbuf.data) {
        msgpack_sbuffer_destroy(&sbuf);
        return RV_ERR_NOMEM;
    }
    /* The sbuffer's malloc'd data becomes the caller's. */
    *out = sbuf.data;
    *len = sbuf.size;
    return RV_OK;
}

/* ---- decoding ---- */

/* Reads an n-byte big-endian unsigned number at p. */
static uint64_t read_be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/*
 * Walks the first MessagePack object of buf[0..len) without allocating and
 * returns its length in bytes, or 0 when it is malformed or truncated.
 * Every element still announced needs at least one byte, so an array or map
 * header claiming more elements than bytes remain is refused here: the
 * unpacker allocates room for the announced count up front, and this keeps
 * its zone within a small multiple of len (a 5-byte "array of 4 billion"
 * would otherwise ask for 64 GB).
 */
static size_t scan_object(const unsigned char *buf, size_t len)
{
    size_t pos = 0;
    uint64_t pending = 1; /* objects still to read */
    while (pending > 0) {
        if (pos >= len)
            return 0;
        pending--;
        unsigned char b = buf[pos++];
        uint64_t skip = 0;  /* payload bytes after the header */
        uint64_t items = 0; /* elements the header announces */
        size_t lenbytes = 0;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
            continue; /* fixint, nil, bool */
        if (b >= 0x80 && b <= 0x8f) {
            items = 2u * (b & 0x0f);
        } else if (b >= 0x90 && b <= 0x9f) {
            items = b & 0x0f;
        } else if (b >= 0xa0 && b <= 0xbf) {
            skip = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4: case 0xd9: lenbytes = 1; break; /* bin8, str8 */
            case 0xc5: case 0xda: lenbytes = 2; break;
            case 0xc6: case 0xdb: lenbytes = 4; break;
            case 0xc7: lenbytes = 1; skip = 1; break; /* ext: +type */
            case 0xc8: lenbytes = 2; skip = 1; break;
            case 0xc9: lenbytes = 4; skip = 1; break;
            case 0xca: skip = 4; break; /* float32 */
            case 0xcb: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break; /* fixext: type + data */
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: case 0xdd: case 0xde: case 0xdf: {
                size_t n = (b == 0xdc || b == 0xde) ? 2 : 4;
                if (len - pos < n)
                    return 0;
                items = read_be(buf + pos, n);
                if (b >= 0xde)
                    items *= 2;
                pos += n;
                break;
            }
            default: /* 0xc1 is never used */
                return 0;
            }
        }
        if (lenbytes) {
            if (len - pos < lenbytes)
                return 0;
            skip += read_be(buf + pos, lenbytes);
            pos += lenbytes;
        }
        if (skip > len - pos)
            return 0;
        pos += (size_t)skip;
        pending += items;
        if (pending > len - pos)
            return 0;
    }
    return pos;
}

static int decode_fail(char *why, size_t whylen, int rc, const char *fmt,
                       const char *arg)
{
    if (why && whylen)
        snprintf(why, whylen, fmt, arg);
    return rc;
}

/* Copies a MessagePack string of at most max bytes without NULs into buf
 * (which holds max + 1). -1 for any other object. */
static int obj_str(const msgpack_object *o, char *buf, size_t max)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > max)
        return -1;
    /* msgpack-c gives an empty string a NULL ptr, which memchr and memcpy
     * must not see even with a length of 0. */
    size_t n = o->via.str.size;
    if (n && memchr(o->via.str.ptr, '\0', n))
        return -1;
    if (n)
        memcpy(buf, o->via.str.ptr, n);
    buf[n] = '\0';
    return 0;
}

/* A non-negative integer of any width up to max. msgpack-c reports every
 * non-negative value, whatever its encoding, as POSITIVE_INTEGER. */
static int obj_uint(const msgpack_object *o, uint64_t max, uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
        return -1;
    *out = o->via.u64;
    return 0;
}

/* Checks one value and stores it into job. RV_OK or RV_ERR_DECODE. */
static int decode_field(enum job_field f, const msgpack_object *v,
                        struct rv_job *job, char *why, size_t whylen)
{
    char text[RV_REPO_ID_MAX + 1];
    uint64_t u;
    switch (f) {
    case F_V:
        if (obj_uint(v, UINT64_MAX, &u) != 0)
            return decode_fail(why, whylen, RV_ERR_DECODE, "%s",
                               "\"v\" is not a version number");
        if (u != RV_JOB_VERSION) {
            char n[24];
            snprintf(n, sizeof(n), "%llu", (unsigned long long)u);
            return decode_fail(why, whylen, RV_ERR_DECODE,
                               "unknown version %s", n);
        }
        job->version = (int)u;
        return RV_OK;
    case F_ID:
        if (obj_str(v, text, RV_JOB_ID_MAX) != 0 ||
            !job_id_valid(text, strlen(text)))
            return decode_fail(why, whylen, RV_ERR_DECODE, "%s",
                               "\"id\" is not a job id");
        rv_strlcpy(job->id, text, sizeof(job->id));
        return RV_OK;
    case F_REPO:
        if (obj_str(v, text, RV_REPO_ID_MAX) != 0 || !rv_repo_id_valid(text))
            return decode_fail(why, whylen, RV_ERR_DECODE, "%s",
                               "\"repo\" is not a valid repo id");
        rv_strlcpy(job->repo, text, sizeof(job->repo));
        return RV_OK;
    case F_KIND:
        if (obj_str(v, text, RV_REPO_ID_MAX) != 0 ||
            rv_job_kind_parse(text, &job->kind) != 0)
            return decode_fail(why, whylen, RV_ERR_DECODE, "%s",
                               "\"kind\" is not branches, prs or org");
        return RV_OK;
    case F_REASON:
        if (obj_str(v, text, RV_REPO_ID_MAX) != 0 ||
            rv_reason_parse(text, &job->reason) != 0)
            return decode_fail(why, whylen, RV_ERR_DECODE, "%s",
                               "\"reason\" is not a known reason");
        return RV_OK;
    case F_AT:
        if (obj_uint(v, INT64_MAX, &u) != 0)
            return decode_fail(why, whylen, RV_ERR_DECODE, "%s",
                               "\"at\" is not a time in epoch ms");
        job->enqueued_at = (int64_t)u;
        return RV_OK;
    case F_ATTEMPT:
        if (obj_uint(v, UINT32_MAX, &u) != 0)
            return decode_fail(why, whylen, RV_ERR_DECODE, "%s",
                               "\"attempt\" is not a count");
        job->attempt = (uint32_t)u;
        return RV_OK;
    case F_COUNT:
        break;
    }
    return RV_ERR_DECODE;
}

int rv_job_decode(const char *buf, size_t len, struct rv_job *job, char *why,
                  size_t whylen)
{
    int rc = RV_ERR_DECODE;
    msgpack_unpacked msg;
    msgpack_unpacked_init(&msg); /* owns the zone; destroyed at out */
    memset(job, 0, sizeof(*job));
    if (why && whylen)
        why[0] = '\0';

    if (len > RV_JOB_MAX_BYTES) {
        char n[24];
        snprintf(n, sizeof(n), "%d", RV_JOB_MAX_BYTES);
        rc = decode_fail(why, whylen, RV_ERR_TOO_LARGE,
                         "payload larger than %s bytes", n);
        goto out;
    }
    if (!buf || len == 0) {
        decode_fail(why, whylen, rc, "%s", "empty payload");
        goto out;
    }
    size_t end = scan_object((const unsigned char *)buf, len);
    if (end == 0) {
        decode_fail(why, whylen, rc, "%s",
                    "not MessagePack, or truncated");
        goto out;
    }
    if (end != len) {
        decode_fail(why, whylen, rc, "%s", "trailing bytes after the job");
        goto out;
    }
    size_t off = 0;
    if (msgpack_unpack_next(&msg, buf, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != len) {
        decode_fail(why, whylen, rc, "%s", "not MessagePack");
        goto out;
    }
    const msgpack_object *root = &msg.data;
    if (root->type != MSGPACK_OBJECT_MAP) {
        decode_fail(why, whylen, rc, "%s", "the job is not a map");
        goto out;
    }
    bool seen[F_COUNT] = {false};
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object *k = &root->via.map.ptr[i].key;
        char key[16];
        if (obj_str(k, key, sizeof(key) - 1) != 0) {
            decode_fail(why, whylen, rc, "%s",
                        "a key is not a field name");
            goto out;
        }
        int f = -1;
        for (int n = 0; n < F_COUNT; n++)
            if (strcmp(key, field_names[n]) == 0)
                f = n;
        if (f < 0) {
            decode_fail(why, whylen, rc, "unknown field \"%s\"", key);
            goto out;
        }
        if (seen[f]) {
            decode_fail(why, whylen, rc, "duplicate field \"%s\"", key);
            goto out;
        }
        seen[f] = true;
        if (decode_field((enum job_field)f, &root->via.map.ptr[i].val, job,
                         why, whylen) != RV_OK)
            goto out;
    }
    for (int n = 0; n < F_COUNT; n++) {
        if (!seen[n]) {
            decode_fail(why, whylen, rc, "missing field \"%s\"",
                        field_names[n]);
            goto out;
        }
    }
    rc = RV_OK;
out:
    msgpack_unpacked_destroy(&msg);
    if (rc != RV_OK)
        memset(job, 0, sizeof(*job));
    return rc;
}

json_t *rv_job_to_json(const struct rv_job *job)
{
    char at[32];
    rv_iso8601(job->enqueued_at, at, sizeof(at));
    return json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "v", job->version,
                     "id", job->id, "repo", job->repo, "kind",
                     rv_kind_name(job->kind), "reason",
                     rv_reason_name(job->reason), "at", at, "atMs",
                     (json_int_t)job->enqueued_at, "attempt",
                     (json_int_t)job->attempt);
}

int rv_job_new(struct rv_job *job, const char *repo, rv_kind kind,
               rv_reason reason, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int rc = rv_job_init(job, repo, kind, reason);
    return rc == RV_OK ? rv_job_encode(job, out, len) : rc;
}

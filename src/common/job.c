/* See job.h. */
#include "common/job.h"

#include <jansson.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"

static const char *const reason_names[] = {"user", "webhook", "schedule", "followup", "register"};
#define NREASONS (sizeof(reason_names) / sizeof(reason_names[0]))

const char *rv_reason_name(rv_reason r)
{
    return (size_t)r < NREASONS ? reason_names[r] : "unknown";
}

int rv_reason_parse(const char *s, rv_reason *out)
{
    for (size_t i = 0; i < NREASONS; i++) {
        if (s && strcmp(s, reason_names[i]) == 0) {
            *out = (rv_reason)i;
            return 0;
        }
    }
    return -1;
}

int rv_job_init(struct rv_job *job, const char *repo, rv_kind kind, rv_reason reason)
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

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static bool id_printable(const char *s)
{
    if (!*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return false;
    return true;
}

int rv_job_encode(const struct rv_job *job, char **out, size_t *len)
{
    if (job->version != RV_JOB_VERSION || !rv_repo_id_valid(job->repo) ||
        !id_printable(job->id) || strlen(job->id) > RV_JOB_ID_MAX ||
        (job->kind != RV_KIND_BRANCHES && job->kind != RV_KIND_PRS) ||
        (size_t)job->reason >= NREASONS || job->enqueued_at < 0)
        return RV_ERR_INVALID;
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 7);
    pack_str(&pk, "v");
    msgpack_pack_uint32(&pk, (uint32_t)job->version);
    pack_str(&pk, "id");
    pack_str(&pk, job->id);
    pack_str(&pk, "repo");
    pack_str(&pk, job->repo);
    pack_str(&pk, "kind");
    pack_str(&pk, rv_kind_name(job->kind));
    pack_str(&pk, "reason");
    pack_str(&pk, rv_reason_name(job->reason));
    pack_str(&pk, "at");
    msgpack_pack_uint64(&pk, (uint64_t)job->enqueued_at);
    pack_str(&pk, "attempt");
    msgpack_pack_uint32(&pk, job->attempt);
    if (!sbuf.data) {
        msgpack_sbuffer_destroy(&sbuf);
        return RV_ERR_NOMEM;
    }
    *out = sbuf.data; /* the sbuffer's malloc'd data becomes the caller's */
    *len = sbuf.size;
    return RV_OK;
}

static int why_fail(char *why, size_t whylen, int rc, const char *fmt, const char *arg)
{
    if (why && whylen)
        snprintf(why, whylen, fmt, arg);
    return rc;
}

/* Copies a msgpack string into buf (NUL-terminated). -1 if not a string,
 * too long or containing NUL. */
static int obj_str(const msgpack_object *o, char *buf, size_t size)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= size ||
        memchr(o->via.str.ptr, '\0', o->via.str.size))
        return -1;
    memcpy(buf, o->via.str.ptr, o->via.str.size);
    buf[o->via.str.size] = '\0';
    return 0;
}

static int obj_uint(const msgpack_object *o, uint64_t max, uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
        return -1;
    *out = o->via.u64;
    return 0;
}

int rv_job_decode(const char *buf, size_t len, struct rv_job *job, char *why, size_t whylen)
{
    memset(job, 0, sizeof(*job));
    if (len > RV_JOB_MAX_BYTES)
        return why_fail(why, whylen, RV_ERR_TOO_LARGE, "payload larger than %s bytes", "1024");
    if (!buf || len == 0)
        return why_fail(why, whylen, RV_ERR_DECODE, "%s", "empty payload");

    msgpack_unpacked msg;
    msgpack_unpacked_init(&msg);
    size_t off = 0;
    int rc = RV_ERR_DECODE;
    msgpack_unpack_return ur = msgpack_unpack_next(&msg, buf, len, &off);
    if (ur != MSGPACK_UNPACK_SUCCESS) {
        why_fail(why, whylen, rc, "%s", ur == MSGPACK_UNPACK_CONTINUE ? "truncated payload" : "not MessagePack");
        goto out;
    }
    if (off != len) {
        why_fail(why, whylen, rc, "%s", "trailing bytes after the job");
        goto out;
    }
    const msgpack_object *root = &msg.data;
    if (root->type != MSGPACK_OBJECT_MAP) {
        why_fail(why, whylen, rc, "%s", "the job is not a map");
        goto out;
    }
    enum { F_V, F_ID, F_REPO, F_KIND, F_REASON, F_AT, F_ATTEMPT, F_COUNT };
    static const char *const names[F_COUNT] = {"v", "id", "repo", "kind", "reason", "at", "attempt"};
    bool seen[F_COUNT] = {false};
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object *k = &root->via.map.ptr[i].key;
        const msgpack_object *v = &root->via.map.ptr[i].val;
        char key[16], text[RV_JOB_ID_MAX + RV_REPO_ID_MAX + 2];
        if (obj_str(k, key, sizeof(key)) != 0) {
            why_fail(why, whylen, rc, "%s", "a key is not a short string");
            goto out;
        }
        int f = -1;
        for (int n = 0; n < F_COUNT; n++)
            if (strcmp(key, names[n]) == 0)
                f = n;
        if (f < 0) {
            why_fail(why, whylen, rc, "unknown field \"%s\"", key);
            goto out;
        }
        if (seen[f]) {
            why_fail(why, whylen, rc, "duplicate field \"%s\"", key);
            goto out;
        }
        seen[f] = true;
        uint64_t u;
        switch (f) {
        case F_V:
            if (obj_uint(v, UINT32_MAX, &u) != 0) {
                why_fail(why, whylen, rc, "%s", "\"v\" is not a version number");
                goto out;
            }
            if (u != RV_JOB_VERSION) {
                char n[24];
                snprintf(n, sizeof(n), "%llu", (unsigned long long)u);
                why_fail(why, whylen, rc, "unknown version %s", n);
                goto out;
            }
            job->version = (int)u;
            break;
        case F_ID:
            if (obj_str(v, text, RV_JOB_ID_MAX + 1) != 0 || !id_printable(text)) {
                why_fail(why, whylen, rc, "%s", "\"id\" is not a job id");
                goto out;
            }
            rv_strlcpy(job->id, text, sizeof(job->id));
            break;
        case F_REPO:
            if (obj_str(v, text, RV_REPO_ID_MAX + 1) != 0 || !rv_repo_id_valid(text)) {
                why_fail(why, whylen, rc, "%s", "\"repo\" is not a valid repo id");
                goto out;
            }
            rv_strlcpy(job->repo, text, sizeof(job->repo));
            break;
        case F_KIND:
            if (obj_str(v, text, sizeof(text)) != 0 || rv_kind_parse(text, &job->kind) != 0) {
                why_fail(why, whylen, rc, "%s", "\"kind\" is not branches or prs");
                goto out;
            }
            break;
        case F_REASON:
            if (obj_str(v, text, sizeof(text)) != 0 || rv_reason_parse(text, &job->reason) != 0) {
                why_fail(why, whylen, rc, "%s", "\"reason\" is not a known reason");
                goto out;
            }
            break;
        case F_AT:
            if (obj_uint(v, INT64_MAX, &u) != 0) {
                why_fail(why, whylen, rc, "%s", "\"at\" is not a time");
                goto out;
            }
            job->enqueued_at = (int64_t)u;
            break;
        case F_ATTEMPT:
            if (obj_uint(v, UINT32_MAX, &u) != 0) {
                why_fail(why, whylen, rc, "%s", "\"attempt\" is not a count");
                goto out;
            }
            job->attempt = (uint32_t)u;
            break;
        }
    }
    for (int n = 0; n < F_COUNT; n++) {
        if (!seen[n]) {
            why_fail(why, whylen, rc, "missing field \"%s\"", names[n]);
            goto out;
        }
    }
    rc = RV_OK;
out:
    msgpack_unpacked_destroy(&msg);
    if (rc != RV_OK) {
        struct rv_job empty;
        memset(&empty, 0, sizeof(empty));
        *job = empty;
    }
    return rc;
}

json_t *rv_job_to_json(const struct rv_job *job)
{
    char at[32];
    rv_iso8601(job->enqueued_at, at, sizeof(at));
    return json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:i}", "v", job->version, "id", job->id,
                     "repo", job->repo, "kind", rv_kind_name(job->kind), "reason",
                     rv_reason_name(job->reason), "at", at, "attempt", (int)job->attempt);
}

/*
 * The job decoder (common/job.c): what a worker does with whatever it pops
 * off rv:queue. Any bytes must decode or fail cleanly, never crash or
 * allocate without bound; a job that decodes must be valid in every field
 * and survive an encode/decode round trip unchanged; a failure leaves the
 * job zeroed and says why.
 */
#include <jansson.h>
#include <string.h>

#include "common/errors.h"
#include "common/job.h"
#include "common/log.h"
#include "fuzz.h"

FUZZ_QUIET_INIT

static bool job_is_zero(const struct rv_job *job)
{
    static const struct rv_job zero;
    return memcmp(job, &zero, sizeof(zero)) == 0;
}

static bool job_equal(const struct rv_job *a, const struct rv_job *b)
{
    return a->version == b->version && strcmp(a->id, b->id) == 0 &&
           strcmp(a->repo, b->repo) == 0 && a->kind == b->kind &&
           a->reason == b->reason && a->enqueued_at == b->enqueued_at &&
           a->attempt == b->attempt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rv_job job, again;
    char why[128], tiny[6];
    int rc = rv_job_decode((const char *)data, size, &job, why, sizeof(why));

    /* The reason buffer is optional and may be too small. */
    FUZZ_CHECK(rv_job_decode((const char *)data, size, &again, NULL, 0) ==
               rc);
    FUZZ_CHECK(rv_job_decode((const char *)data, size, &again, tiny,
                             sizeof(tiny)) == rc);
    FUZZ_CHECK(memchr(tiny, '\0', sizeof(tiny)) != NULL);

    if (size > RV_JOB_MAX_BYTES)
        FUZZ_CHECK(rc == RV_ERR_TOO_LARGE);
    if (rc != RV_OK) {
        FUZZ_CHECK(rc == RV_ERR_DECODE || rc == RV_ERR_TOO_LARGE);
        FUZZ_CHECK(job_is_zero(&job));
        FUZZ_CHECK(why[0] != '\0');
        return 0;
    }

    FUZZ_CHECK(why[0] == '\0');
    FUZZ_CHECK(job.version == RV_JOB_VERSION);
    FUZZ_CHECK(rv_repo_id_valid(job.repo));
    FUZZ_CHECK(job.id[0] != '\0');
    FUZZ_CHECK(job.kind == RV_KIND_BRANCHES || job.kind == RV_KIND_PRS ||
               job.kind == RV_KIND_ORG);
    FUZZ_CHECK(strcmp(rv_reason_name(job.reason), "unknown") != 0);
    FUZZ_CHECK(job.enqueued_at >= 0);

    /* What the worker may put back (the reaper re-encodes) reads the same. */
    char *enc = NULL;
    size_t enclen = 0;
    FUZZ_CHECK(rv_job_encode(&job, &enc, &enclen) == RV_OK);
    FUZZ_CHECK(enclen <= RV_JOB_MAX_BYTES);
    FUZZ_CHECK(rv_job_decode(enc, enclen, &again, why, sizeof(why)) ==
               RV_OK);
    FUZZ_CHECK(job_equal(&job, &again));
    free(enc);

    /* `repoview queue` renders it. */
    json_t *o = rv_job_to_json(&job);
    FUZZ_CHECK(o != NULL);
    json_decref(o);
    return 0;
}

/* See deadletter.h. */
#include "common/deadletter.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/keys.h"
#include "common/scripts.h"
#include "common/util.h"

bool rv_dead_id(const char *text, size_t len, char *id)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    id[0] = '\0';
    if (EVP_Digest(text, len, md, &mdlen, EVP_sha1(), NULL) != 1 ||
        mdlen * 2 != RV_DEAD_ID_LEN)
        return false;
    for (unsigned int i = 0; i < mdlen; i++)
        snprintf(id + 2 * i, 3, "%02x", md[i]);
    return true;
}

bool rv_dead_id_valid(const char *s)
{
    return s && strlen(s) == RV_DEAD_ID_LEN &&
           strspn(s, "0123456789abcdef") == RV_DEAD_ID_LEN;
}

bool rv_dead_job(const char *text, size_t len, char *repo, size_t repolen,
                 rv_kind *kind)
{
    json_t *entry = json_loadb(text, len, 0, NULL);
    json_t *job = json_object_get(entry, "job");
    const char *r = json_string_value(json_object_get(job, "repo"));
    const char *k = json_string_value(json_object_get(job, "kind"));
    bool ok = r && k && rv_job_kind_parse(k, kind) == 0 &&
              rv_repo_id_valid(r) && rv_strlcpy(repo, r, repolen) == 0;
    json_decref(entry);
    return ok;
}

int rv_dead_retry_cmd(struct rv_cmd *cmd, int64_t index, const char *expected,
                      const char *repo, rv_kind kind, struct rv_job *job)
{
    char *payload = NULL;
    size_t len = 0;
    rv_cmd_init(cmd);
    int rc = rv_job_new(job, repo, kind, RV_REASON_USER, &payload, &len);
    if (rc != RV_OK)
        return rc;
    char meta[RV_KEY_MAX];
    rv_script_retryDeadLetter(
        cmd, &(struct rv_retrydeadletter_args){
                 .meta_key = rv_key_kind_meta(meta, kind, repo),
                 .index = index,
                 .expected = expected,
                 .kind = rv_kind_name(kind),
                 .job_id = job->id,
                 .payload = payload,
                 .payload_len = len});
    free(payload);
    return RV_OK;
}

void rv_dead_drop_cmd(struct rv_cmd *cmd, int64_t index, const char *expected)
{
    /* A fresh job id is a mark no entry holds. */
    char mark[RV_JOB_ID_MAX + 1];
    rv_job_id_new(mark, sizeof(mark));
    rv_cmd_init(cmd);
    rv_script_dropDeadLetter(
        cmd, &(struct rv_dropdeadletter_args){
                 .index = index, .expected = expected, .mark = mark});
}

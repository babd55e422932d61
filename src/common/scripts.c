/* See scripts.h. */
#include "common/scripts.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/embedded.h"
#include "common/errors.h"
#include "common/log.h"

static struct rv_script *scripts;
static size_t nscripts;
static pthread_once_t scripts_once = PTHREAD_ONCE_INIT;

static void sha1_hex(const char *text, size_t len, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    out[0] = '\0';
    if (!EVP_Digest(text, len, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
        return;
    for (unsigned i = 0; i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void scripts_init(void)
{
    scripts = calloc(rv_embedded_scripts_count, sizeof(*scripts));
    if (!scripts)
        return;
    for (size_t i = 0; i < rv_embedded_scripts_count; i++) {
        const struct rv_embedded_script *e = &rv_embedded_scripts[i];
        scripts[i].name = e->name;
        scripts[i].numkeys = e->numkeys;
        scripts[i].text = e->text;
        scripts[i].len = e->len;
        sha1_hex(e->text, e->len, scripts[i].sha);
    }
    nscripts = rv_embedded_scripts_count;
}

const struct rv_script *rv_script_get(const char *name)
{
    pthread_once(&scripts_once, scripts_init);
    for (size_t i = 0; i < nscripts; i++)
        if (strcmp(scripts[i].name, name) == 0)
            return &scripts[i];
    return NULL;
}

int rv_script_reply_code(const redisReply *reply)
{
    if (!reply)
        return RV_ERR_REDIS;
    if (reply->type == REDIS_REPLY_ERROR) {
        LOG(RV_LOG_ERROR, NULL, NULL, "script failed: %s", reply->str);
        return RV_ERR_PROTOCOL;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1)
        return RV_ERR_PROTOCOL;
    const redisReply *head = reply->element[0];
    if (head->type == REDIS_REPLY_INTEGER) {
        if (head->integer < 0 || head->integer >= RV_ERR__COUNT)
            return RV_ERR_PROTOCOL;
        return (int)head->integer;
    }
    return RV_ERR_PROTOCOL;
}

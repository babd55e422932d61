/* See scripts.h. */
#include "common/scripts.h"
#include "common/util.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/embedded.h"
#include "common/errors.h"
#include "common/log.h"

/* Built once by scripts_init and never freed: the table lives as long as
 * the process, and rv_script_get hands out pointers into it. */
static struct rv_script *scripts;
static size_t nscripts;
static pthread_once_t scripts_once = PTHREAD_ONCE_INIT;

/* Writes the lower-case hex SHA-1 of text into out, or "" if OpenSSL fails
 * (EVALSHA of "" then fails with NOSCRIPT and the caller reloads). */
static void sha1_hex(const char *text, size_t len, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    out[0] = '\0';
    if (!EVP_Digest(text, len, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
        return;
    rv_hex_encode(md, 20, out);
}

static void scripts_init(void)
{
    if (rv_embedded_scripts_count == 0)
        return;
    scripts = calloc(rv_embedded_scripts_count, sizeof(*scripts));
    if (!scripts) {
        LOG(RV_LOG_ERROR, NULL, NULL, "out of memory loading the Lua scripts");
        return;
    }
    for (size_t i = 0; i < rv_embedded_scripts_count; i++) {
        const struct rv_embedded_script *e = &rv_embedded_scripts[i];
        scripts[i].name = e->name;
        scripts[i].numkeys = e->numkeys;
        scripts[i].text = e->text;
        scripts[i].len = e->len;
        sha1_hex(e->text, e->len, scripts[i].sha);
        if (!scripts[i].sha[0])
            LOG(RV_LOG_ERROR, NULL, NULL, "cannot compute the SHA-1 of %s",
                e->name);
    }
    nscripts = rv_embedded_scripts_count;
}

const struct rv_script *rv_script_get(const char *name)
{
    pthread_once(&scripts_once, scripts_init);
    if (!name)
        return NULL;
    for (size_t i = 0; i < nscripts; i++)
        if (strcmp(scripts[i].name, name) == 0)
            return &scripts[i];
    return NULL;
}

const struct rv_script *rv_script_at(size_t i)
{
    pthread_once(&scripts_once, scripts_init);
    return i < nscripts ? &scripts[i] : NULL;
}

/* Parses a string of 1..9 decimal digits (no sign, no blanks) into *out.
 * Returns 0, or -1 if it is anything else. */
static int parse_code(const char *s, size_t len, long long *out)
{
    if (len == 0 || len > 9)
        return -1;
    long long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int rv_script_reply_code(const redisReply *reply)
{
    if (!reply)
        return RV_ERR_REDIS;
    if (reply->type == REDIS_REPLY_ERROR) {
        /* A Lua runtime error (a bug in a script, or a wrong key type) comes
         * back as an error reply, not as a code: it needs a human. The
         * logger redacts registered secrets from the text. */
        LOG(RV_LOG_ERROR, NULL, NULL, "Lua script failed: %.*s",
            (int)(reply->len < 500 ? reply->len : 500),
            reply->str ? reply->str : "");
        return RV_ERR_PROTOCOL;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        !reply->element[0])
        return RV_ERR_PROTOCOL;
    const redisReply *head = reply->element[0];
    long long code;
    switch (head->type) {
    case REDIS_REPLY_INTEGER:
        code = head->integer;
        break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        if (parse_code(head->str, head->len, &code) != 0)
            return RV_ERR_PROTOCOL;
        break;
    default:
        return RV_ERR_PROTOCOL;
    }
    if (code < 0 || code >= RV_ERR__COUNT)
        return RV_ERR_PROTOCOL;
    return (int)code;
}

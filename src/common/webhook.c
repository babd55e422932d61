/* See webhook.h. */
#include "common/webhook.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "common/errors.h"
#include "common/util.h"

#define WEBHOOK_SIG_PREFIX "sha256="
#define WEBHOOK_DIGEST_LEN 32

bool rv_webhook_signature_ok(const char *secret, const char *body, size_t len,
                             const char *header)
{
    size_t plen = sizeof(WEBHOOK_SIG_PREFIX) - 1;
    unsigned char want[WEBHOOK_DIGEST_LEN];
    unsigned char got[EVP_MAX_MD_SIZE];
    unsigned int got_len = 0;

    if (!secret || !*secret || !header ||
        strncmp(header, WEBHOOK_SIG_PREFIX, plen) != 0 ||
        !rv_hex_decode(header + plen, strlen(header + plen), want,
                       WEBHOOK_DIGEST_LEN))
        return false;
    if (!body && len > 0)
        return false;
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret),
              (const unsigned char *)(body ? body : ""), len, got, &got_len) ||
        got_len != WEBHOOK_DIGEST_LEN)
        return false;
    return CRYPTO_memcmp(want, got, WEBHOOK_DIGEST_LEN) == 0;
}

/* Which events ask for what; everything else is answered and ignored. */
static const struct {
    const char *event;
    int kinds;
} webhook_routes[] = {
    {"push", RV_WEBHOOK_BRANCHES},
    {"pull_request", RV_WEBHOOK_PRS},
    {"pull_request_review", RV_WEBHOOK_PRS},
    {"check_suite", RV_WEBHOOK_PRS},
    {"check_run", RV_WEBHOOK_PRS},
    {"status", RV_WEBHOOK_PRS},
};

int rv_webhook_event_kinds(const char *event)
{
    if (!event)
        return 0;
    for (size_t i = 0; i < sizeof(webhook_routes) / sizeof(*webhook_routes);
         i++)
        if (strcmp(event, webhook_routes[i].event) == 0)
            return webhook_routes[i].kinds;
    return 0;
}

int rv_webhook_route(const char *event, const char *body, size_t len,
                     char *full_name, size_t fnlen, int *kinds_mask)
{
    int rc = RV_OK;
    json_t *doc = NULL;

    if (kinds_mask)
        *kinds_mask = 0;
    if (!full_name || fnlen == 0 || !kinds_mask)
        return RV_ERR_INVALID;
    full_name[0] = '\0';
    if (!event || !*event || (!body && len > 0))
        return RV_ERR_INVALID;

    doc = json_loadb(body ? body : "", len, 0, NULL);
    if (!json_is_object(doc)) {
        rc = RV_ERR_INVALID;
        goto out;
    }
    int kinds = rv_webhook_event_kinds(event);
    json_t *repo = json_object_get(doc, "repository");
    const char *name = json_is_object(repo)
        ? json_string_value(json_object_get(repo, "full_name"))
        : NULL;
    if (name && !rv_github_name_valid(name))
        name = NULL;
    if (!name) {
        /* Only the events we act on need to say which repo they are for. */
        rc = kinds ? RV_ERR_INVALID : RV_OK;
        goto out;
    }
    if (rv_strlcpy(full_name, name, fnlen) != 0) {
        full_name[0] = '\0';
        rc = kinds ? RV_ERR_TOO_LARGE : RV_OK;
        goto out;
    }
    *kinds_mask = kinds;

out:
    json_decref(doc);
    return rc;
}

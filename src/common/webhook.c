/* See webhook.h. */
#include "common/webhook.h"

#include <ctype.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "common/errors.h"
#include "common/org.h"
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

bool rv_webhook_is_org_event(const char *event, const char *action)
{
    static const char *const repo_actions[] = {
        "created",     "deleted", "archived",   "unarchived", "renamed",
        "transferred", "edited",  "privatized", "publicized"};
    if (!event)
        return false;
    if (strcmp(event, "installation") == 0 ||
        strcmp(event, "installation_repositories") == 0)
        return true;
    if (strcmp(event, "repository") != 0 || !action)
        return false;
    for (size_t i = 0; i < sizeof(repo_actions) / sizeof(*repo_actions); i++)
        if (strcmp(action, repo_actions[i]) == 0)
            return true;
    return false;
}

/* The login at object.key.login, or NULL. */
static const char *login_of(const json_t *object, const char *key)
{
    return json_string_value(
        json_object_get(json_object_get(object, key), "login"));
}

/* Appends login lower-cased unless it is there already. false for a
 * login that is not one. */
static bool add_owner(const char *login, char owners[][RV_WEBHOOK_OWNER_SIZE],
                      size_t *n)
{
    char lower[RV_WEBHOOK_OWNER_SIZE];
    if (!rv_org_owner_valid(login))
        return false;
    size_t len = strlen(login);
    for (size_t i = 0; i <= len; i++)
        lower[i] = (char)tolower((unsigned char)login[i]);
    for (size_t i = 0; i < *n; i++)
        if (strcmp(owners[i], lower) == 0)
            return true;
    if (*n < RV_WEBHOOK_OWNERS_MAX)
        memcpy(owners[(*n)++], lower, len + 1);
    return true;
}

int rv_webhook_org_owners(const char *event, const char *body, size_t len,
                          char owners[][RV_WEBHOOK_OWNER_SIZE], size_t *n)
{
    int rc = RV_ERR_INVALID;
    *n = 0;
    if (!event || (!body && len > 0))
        return RV_ERR_INVALID;
    json_t *doc = json_loadb(body ? body : "", len, 0, NULL);
    if (!json_is_object(doc))
        goto out;
    const char *action = json_string_value(json_object_get(doc, "action"));
    if (!rv_webhook_is_org_event(event, action)) {
        rc = RV_OK;
        goto out;
    }
    if (strcmp(event, "repository") != 0) {
        if (!add_owner(
                login_of(json_object_get(doc, "installation"), "account"),
                owners, n))
            goto out;
        rc = RV_OK;
        goto out;
    }
    if (!add_owner(login_of(json_object_get(doc, "repository"), "owner"),
                   owners, n))
        goto out;
    const json_t *from = json_object_get(
        json_object_get(json_object_get(doc, "changes"), "owner"), "from");
    if (strcmp(action, "transferred") == 0 && json_is_object(from)) {
        const char *old = login_of(from, "organization");
        if (!old)
            old = login_of(from, "user");
        if (old && !add_owner(old, owners, n))
            goto out;
    }
    rc = RV_OK;
out:
    if (rc != RV_OK)
        *n = 0;
    json_decref(doc);
    return rc;
}

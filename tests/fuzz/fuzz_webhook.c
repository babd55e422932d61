/*
 * The webhook core (common/webhook.c) that POST /v1/webhooks/github runs
 * on a delivery before it touches Redis. Input: the X-GitHub-Event value,
 * '\n', the X-Hub-Signature-256 value (an empty line: no header), '\n',
 * the raw body.
 *
 * The signature check is held against an independent oracle (OpenSSL's
 * HMAC, hex compared ignoring case): it accepts exactly the right header,
 * whatever the fuzzer sends, and always accepts the right one for the body.
 * Routing must fail cleanly on any body and, when it queues something,
 * name a valid repo and exactly the kinds of the event.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>
#include <strings.h>

#include "common/errors.h"
#include "common/log.h"
#include "common/org.h"
#include "common/util.h"
#include "common/webhook.h"
#include "fuzz.h"

#define SECRET "fuzz-webhook-secret"

FUZZ_QUIET_INIT

/* "sha256=" and the lower-case hex HMAC of body: the header GitHub sends. */
static void sign(const uint8_t *body, size_t len, char out[72])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    static const char hex[] = "0123456789abcdef";
    FUZZ_CHECK(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), body, len, mac,
                    &maclen) != NULL &&
               maclen == 32);
    memcpy(out, "sha256=", 7);
    for (unsigned int i = 0; i < 32; i++) {
        out[7 + 2 * i] = hex[mac[i] >> 4];
        out[8 + 2 * i] = hex[mac[i] & 15];
    }
    out[71] = '\0';
}

static void check_signature(const char *header, const uint8_t *body,
                            size_t len)
{
    char want[72];
    sign(body, len, want);
    const char *b = (const char *)body;
    bool ok = rv_webhook_signature_ok(SECRET, b, len, header);
    bool right = header && strlen(header) == 71 &&
                 strncmp(header, "sha256=", 7) == 0 &&
                 strcasecmp(header + 7, want + 7) == 0;
    FUZZ_CHECK(ok == right);
    FUZZ_CHECK(rv_webhook_signature_ok(SECRET, b, len, want));
    /* Upper-case hex is GitHub's too. */
    for (size_t i = 7; i < 71; i++)
        if (want[i] >= 'a' && want[i] <= 'f')
            want[i] = (char)(want[i] - 'a' + 'A');
    FUZZ_CHECK(rv_webhook_signature_ok(SECRET, b, len, want));
    /* No secret, no delivery accepted. */
    FUZZ_CHECK(!rv_webhook_signature_ok("", b, len, want));
    FUZZ_CHECK(!rv_webhook_signature_ok(NULL, b, len, want));
}

static void check_route(const char *event, const uint8_t *body, size_t len,
                        size_t fnlen)
{
    char full_name[RV_WEBHOOK_FULL_NAME_MAX];
    int kinds = -1;
    int rc = rv_webhook_route(event, (const char *)body, len, full_name,
                              fnlen, &kinds);
    FUZZ_CHECK(rc == RV_OK || rc == RV_ERR_INVALID ||
               rc == RV_ERR_TOO_LARGE);
    FUZZ_CHECK(memchr(full_name, '\0', fnlen) != NULL);
    if (rc != RV_OK) {
        FUZZ_CHECK(kinds == 0);
        return;
    }
    FUZZ_CHECK(kinds == 0 || kinds == rv_webhook_event_kinds(event));
    if (kinds)
        FUZZ_CHECK(rv_github_name_valid(full_name));
    else
        FUZZ_CHECK(full_name[0] == '\0' || rv_github_name_valid(full_name));
}

/* The owners of an org event are logins, lower-cased, at most two. */
static void check_org_owners(const char *event, const uint8_t *body, size_t len)
{
    char owners[RV_WEBHOOK_OWNERS_MAX][RV_WEBHOOK_OWNER_SIZE];
    size_t n = 99;
    int rc = rv_webhook_org_owners(event, (const char *)body, len, owners, &n);
    FUZZ_CHECK(rc == RV_OK || rc == RV_ERR_INVALID);
    FUZZ_CHECK(n <= RV_WEBHOOK_OWNERS_MAX && (rc == RV_OK || n == 0));
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(rv_org_owner_valid(owners[i]));
        for (const char *p = owners[i]; *p; p++)
            FUZZ_CHECK(!(*p >= 'A' && *p <= 'Z'));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char event[128], header[256];
    const uint8_t *rest, *body;
    size_t restlen, len;
    fuzz_split_line(data, size, event, sizeof(event), &rest, &restlen);
    fuzz_split_line(rest, restlen, header, sizeof(header), &body, &len);

    check_signature(header[0] ? header : NULL, body, len);
    check_route(event, body, len, RV_WEBHOOK_FULL_NAME_MAX);
    /* A buffer too small for the name must say so, not truncate. */
    check_route(event, body, len, 8);
    check_org_owners(event, body, len);
    return 0;
}

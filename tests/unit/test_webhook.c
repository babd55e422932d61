/*
 * The webhook core: X-Hub-Signature-256 checks (GitHub's published test
 * vector and the openssl CLI as oracles) and event routing, including every
 * recorded payload in @octokit/webhooks-examples.
 */
#include <jansson.h>
#include <stdlib.h>

#include "common/errors.h"
#include "common/webhook.h"
#include "rvtest.h"

/* From GitHub's "Validating webhook deliveries" documentation. */
#define DOC_SECRET "It's a Secret to Everybody"
#define DOC_BODY "Hello, World!"
#define DOC_SIG                                                              \
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

#define EXAMPLES_INDEX                                                       \
    RV_SOURCE_DIR "/tests/node_modules/@octokit/webhooks-examples/"          \
                  "api.github.com/index.json"

static bool sig_ok(const char *secret, const char *body, const char *header)
{
    return rv_webhook_signature_ok(secret, body, strlen(body), header);
}

static void test_signature_matches_githubs_published_vector(void)
{
    CHECK(sig_ok(DOC_SECRET, DOC_BODY, DOC_SIG));
}

static void test_signature_rejects_wrong_secret_and_changed_body(void)
{
    CHECK(!sig_ok("It's a Secret to Everybody!", DOC_BODY, DOC_SIG));
    CHECK(!sig_ok(DOC_SECRET, "Hello, World?", DOC_SIG));
    CHECK(!sig_ok(DOC_SECRET, "Hello, World! ", DOC_SIG));
    /* The signature covers exactly len bytes. */
    CHECK(!rv_webhook_signature_ok(DOC_SECRET, DOC_BODY, strlen(DOC_BODY) - 1,
                                   DOC_SIG));
    /* Every single flipped bit of the body is caught. */
    char body[] = DOC_BODY;
    bool all_caught = true;
    for (size_t i = 0; i < sizeof(body) - 1; i++)
        for (int bit = 0; bit < 8; bit++) {
            body[i] ^= (char)(1 << bit);
            if (rv_webhook_signature_ok(DOC_SECRET, body, sizeof(body) - 1,
                                        DOC_SIG))
                all_caught = false;
            body[i] ^= (char)(1 << bit);
        }
    CHECK(all_caught);
    CHECK(sig_ok(DOC_SECRET, body, DOC_SIG));
}

static void test_signature_rejects_any_flipped_digit(void)
{
    char sig[] = DOC_SIG;
    bool all_caught = true;
    for (size_t i = 7; i < sizeof(sig) - 1; i++) {
        char was = sig[i];
        sig[i] = was == '0' ? '1' : '0';
        if (sig_ok(DOC_SECRET, DOC_BODY, sig))
            all_caught = false;
        sig[i] = was;
    }
    CHECK(all_caught);
    CHECK(sig_ok(DOC_SECRET, DOC_BODY, sig));
}

static void test_signature_rejects_malformed_headers(void)
{
    const char *hex = DOC_SIG + 7;
    char buf[160];
    CHECK(!sig_ok(DOC_SECRET, DOC_BODY, hex)); /* no prefix */
    snprintf(buf, sizeof(buf), "sha1=%s", hex);
    CHECK(!sig_ok(DOC_SECRET, DOC_BODY, buf));
    snprintf(buf, sizeof(buf), "SHA256=%s", hex);
    CHECK(!sig_ok(DOC_SECRET, DOC_BODY, buf));
    snprintf(buf, sizeof(buf), " sha256=%s", hex);
    CHECK(!sig_ok(DOC_SECRET, DOC_BODY, buf));
    snprintf(buf, sizeof(buf), "sha256=%.63s", hex); /* odd length */
    CHECK(!sig_ok(DOC_SECRET, DOC_BODY, buf));
    snprintf(buf, sizeof(buf), "sha256=%.62s", hex); /* short */
    CHECK(!sig_ok(DOC_SECRET, DOC_BODY, buf));
    snprintf(buf, sizeof(buf), "sha256=%s0", hex); /* long */
    CHECK(!sig_ok(DOC_SECRET, DOC_BODY, buf));
    snprintf(buf, sizeof(buf), "sha256=%s00", hex); /* long, even */
    CHECK(!sig_ok(DOC_SECRET, DOC_BODY, buf));
    snprintf(buf, sizeof(buf), "sha256=%s ", hex); /* trailing space */
    CHECK(!sig_ok(DOC_SECRET, DOC_BODY, buf));
    snprintf(buf, sizeof(buf), "%s", DOC_SIG);
    buf[20] = 'g'; /* not hex */
    CHECK(!sig_ok(DOC_SECRET, DOC_BODY, buf));
    CHECK(!sig_ok(DOC_SECRET, DOC_BODY, "sha256="));
    CHECK(!sig_ok(DOC_SECRET, DOC_BODY, ""));
    CHECK(!sig_ok(DOC_SECRET, DOC_BODY, NULL));
    /* No secret configured: nothing verifies. */
    CHECK(!sig_ok("", DOC_BODY, DOC_SIG));
    CHECK(!sig_ok(NULL, DOC_BODY, DOC_SIG));
}

static void test_signature_accepts_uppercase_hex(void)
{
    /* Hex digits are case-insensitive; the digest is the same. */
    char buf[160];
    snprintf(buf, sizeof(buf), "%s", DOC_SIG);
    for (char *p = buf + 7; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    CHECK(strcmp(buf, DOC_SIG) != 0);
    CHECK(sig_ok(DOC_SECRET, DOC_BODY, buf));
}

static void test_signature_agrees_with_openssl_cli(void)
{
    /* An empty body, and a body with a NUL byte and non-ASCII bytes. */
    char *out = NULL;
    CHECK_INT(rvt_sh(&out, "printf '' | openssl dgst -sha256 -hmac s3cret "
                           "| sed 's/.*= //'"),
              0);
    char sig[128];
    if (out) {
        out[strcspn(out, "\n")] = '\0';
        snprintf(sig, sizeof(sig), "sha256=%s", out);
        CHECK(rv_webhook_signature_ok("s3cret", NULL, 0, sig));
        CHECK(rv_webhook_signature_ok("s3cret", "", 0, sig));
        CHECK(!rv_webhook_signature_ok("s3cret", "x", 1, sig));
    }
    free(out);
    out = NULL;
    CHECK_INT(rvt_sh(&out, "printf 'a\\000b\\303\\251' | openssl dgst -sha256 "
                           "-hmac s3cret | sed 's/.*= //'"),
              0);
    if (out) {
        out[strcspn(out, "\n")] = '\0';
        snprintf(sig, sizeof(sig), "sha256=%s", out);
        CHECK(rv_webhook_signature_ok("s3cret", "a\0b\xc3\xa9", 5, sig));
        CHECK(!rv_webhook_signature_ok("s3cret", "a\0b\xc3\xa9", 1, sig));
    }
    free(out);
}

static void test_each_event_routes_to_its_kind(void)
{
    static const struct {
        const char *event;
        int kinds;
    } table[] = {
        {"push", RV_WEBHOOK_BRANCHES},
        {"pull_request", RV_WEBHOOK_PRS},
        {"pull_request_review", RV_WEBHOOK_PRS},
        {"check_suite", RV_WEBHOOK_PRS},
        {"check_run", RV_WEBHOOK_PRS},
        {"status", RV_WEBHOOK_PRS},
        {"ping", 0},
        {"issues", 0},
        {"pull_request_review_comment", 0},
        {"create", 0},
        {"PUSH", 0},
        {"pushx", 0},
    };
    const char *body = "{\"repository\":{\"full_name\":\"Acme/Widgets\"}}";
    for (size_t i = 0; i < sizeof(table) / sizeof(*table); i++) {
        char name[RV_WEBHOOK_FULL_NAME_MAX];
        int mask = -1;
        int rc = rv_webhook_route(table[i].event, body, strlen(body), name,
                                  sizeof(name), &mask);
        CHECK_INT(rc, RV_OK);
        CHECK_INT(mask, table[i].kinds);
        CHECK_INT(rv_webhook_event_kinds(table[i].event), table[i].kinds);
        CHECK_STR(name, "Acme/Widgets"); /* case kept; matching ignores it */
    }
}

static int route(const char *event, const char *body, char *name, size_t size,
                 int *mask)
{
    return rv_webhook_route(event, body, body ? strlen(body) : 0, name, size,
                            mask);
}

static void test_routing_rejects_bad_payloads(void)
{
    char name[RV_WEBHOOK_FULL_NAME_MAX];
    int mask = -1;
    CHECK_INT(route("push", "{\"repository\":", name, sizeof(name), &mask),
              RV_ERR_INVALID);
    CHECK_INT(mask, 0);
    CHECK_INT(route("push", "", name, sizeof(name), &mask), RV_ERR_INVALID);
    CHECK_INT(route("push", "[]", name, sizeof(name), &mask), RV_ERR_INVALID);
    CHECK_INT(route("push", "{}", name, sizeof(name), &mask), RV_ERR_INVALID);
    CHECK_INT(route("pull_request", "{\"repository\":{}}", name, sizeof(name),
                    &mask),
              RV_ERR_INVALID);
    CHECK_INT(route("pull_request", "{\"repository\":{\"full_name\":7}}", name,
                    sizeof(name), &mask),
              RV_ERR_INVALID);
    CHECK_INT(route("status", "{\"repository\":{\"full_name\":\"no-slash\"}}",
                    name, sizeof(name), &mask),
              RV_ERR_INVALID);
    CHECK_INT(route("check_run",
                    "{\"repository\":{\"full_name\":\"a/b c\"}}", name,
                    sizeof(name), &mask),
              RV_ERR_INVALID);
    CHECK_INT(mask, 0);
    CHECK_INT(route(NULL, "{}", name, sizeof(name), &mask), RV_ERR_INVALID);
    CHECK_INT(route("", "{}", name, sizeof(name), &mask), RV_ERR_INVALID);
    /* The name does not fit. */
    char small[4];
    CHECK_INT(route("push", "{\"repository\":{\"full_name\":\"acme/widgets\"}}",
                    small, sizeof(small), &mask),
              RV_ERR_TOO_LARGE);
    CHECK_INT(mask, 0);
    CHECK_STR(small, "");
    /* A body with a NUL inside is not JSON. */
    CHECK_INT(rv_webhook_route("push",
                               "{\"repository\":{\"full_name\":\"a/b\"}}\0x",
                               36, name, sizeof(name), &mask),
              RV_ERR_INVALID);
}

static void test_ping_and_unused_events_need_no_repository(void)
{
    char name[RV_WEBHOOK_FULL_NAME_MAX];
    int mask = -1;
    CHECK_INT(route("ping", "{\"zen\":\"Keep it logically awesome.\"}", name,
                    sizeof(name), &mask),
              RV_OK);
    CHECK_INT(mask, 0);
    CHECK_STR(name, "");
    mask = -1;
    CHECK_INT(route("installation", "{\"action\":\"created\"}", name,
                    sizeof(name), &mask),
              RV_OK);
    CHECK_INT(mask, 0);
    /* Still JSON, though. */
    CHECK_INT(route("ping", "not json", name, sizeof(name), &mask),
              RV_ERR_INVALID);
}

/* Every recorded example of every event: routed events give their kind and
 * the payload's repository.full_name; everything else is answered and
 * ignored. */
static void test_every_recorded_example_routes_correctly(void)
{
    json_error_t jerr;
    json_t *index = json_load_file(EXAMPLES_INDEX, 0, &jerr);
    CHECK(json_is_array(index));
    if (!index) {
        fprintf(stderr, "  %s: %s\n", EXAMPLES_INDEX, jerr.text);
        return;
    }
    int routed[3] = {0}, pushes = 0, pulls = 0, mismatches = 0;
    size_t i;
    json_t *group;
    json_array_foreach(index, i, group) {
        const char *event = json_string_value(json_object_get(group, "name"));
        int want = rv_webhook_event_kinds(event);
        size_t j;
        json_t *example;
        json_array_foreach(json_object_get(group, "examples"), j, example) {
            char *body = json_dumps(example, JSON_COMPACT);
            const char *want_name = json_string_value(json_object_get(
                json_object_get(example, "repository"), "full_name"));
            char name[RV_WEBHOOK_FULL_NAME_MAX];
            int mask = -1;
            int rc = rv_webhook_route(event, body, strlen(body), name,
                                      sizeof(name), &mask);
            bool ok = rc == RV_OK && mask == want &&
                      (want_name ? strcmp(name, want_name) == 0 : !want);
            if (!ok) {
                mismatches++;
                fprintf(stderr, "  %s example %zu: rc %d mask %d name %s\n",
                        event, j, rc, mask, name);
            }
            if (ok && mask)
                routed[mask]++;
            if (ok && strcmp(event, "push") == 0)
                pushes++;
            if (ok && strcmp(event, "pull_request") == 0)
                pulls++;
            free(body);
        }
    }
    CHECK_INT(mismatches, 0);
    /* The package holds 7 push and 29 pull_request examples (7.6.1). */
    CHECK(pushes >= 7);
    CHECK(pulls >= 29);
    CHECK(routed[RV_WEBHOOK_BRANCHES] == pushes);
    CHECK(routed[RV_WEBHOOK_PRS] > pulls); /* reviews, checks, statuses too */
    json_decref(index);
}

static void test_org_events_name_their_owners_lower_cased(void)
{
    char owners[RV_WEBHOOK_OWNERS_MAX][RV_WEBHOOK_OWNER_SIZE];
    size_t n = 0;
    const char *install = "{\"action\":\"deleted\",\"installation\":{"
                          "\"account\":{\"login\":\"Acme-Corp\"}}}";
    CHECK_INT(rv_webhook_org_owners("installation", install, strlen(install),
                                    owners, &n),
              RV_OK);
    CHECK_INT(n, 1);
    CHECK_STR(owners[0], "acme-corp");
    const char *moved =
        "{\"action\":\"transferred\",\"repository\":{\"owner\":{"
        "\"login\":\"New\"}},\"changes\":{\"owner\":{\"from\":{"
        "\"user\":{\"login\":\"Old\"}}}}}";
    CHECK_INT(
        rv_webhook_org_owners("repository", moved, strlen(moved), owners, &n),
        RV_OK);
    CHECK_INT(n, 2);
    CHECK_STR(owners[0], "new");
    CHECK_STR(owners[1], "old");
    /* Not an org event, or an action that changes no listing: none. */
    const char *starred = "{\"action\":\"starred\",\"repository\":{"
                          "\"owner\":{\"login\":\"x\"}}}";
    CHECK_INT(rv_webhook_org_owners("repository", starred, strlen(starred),
                                    owners, &n),
              RV_OK);
    CHECK_INT(n, 0);
    CHECK_INT(
        rv_webhook_org_owners("push", install, strlen(install), owners, &n),
        RV_OK);
    CHECK_INT(n, 0);
    CHECK(!rv_webhook_is_org_event("repository", NULL));
    /* An org event without a usable owner is refused. */
    static const char *const bad[] = {
        "{\"action\":\"created\"}",
        "{\"installation\":{\"account\":{\"login\":7}}}",
        "{\"installation\":{\"account\":{\"login\":\"-x\"}}}",
        "{\"installation\":{\"account\":{\"login\":\"a b\"}}}",
        "[]",
        "{",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        CHECK_INT(rv_webhook_org_owners("installation", bad[i], strlen(bad[i]),
                                        owners, &n),
                  RV_ERR_INVALID);
        CHECK_INT(n, 0);
    }
    const char *bad_from =
        "{\"action\":\"transferred\",\"repository\":{\"owner\":{"
        "\"login\":\"ok\"}},\"changes\":{\"owner\":{\"from\":{"
        "\"user\":{\"login\":\"not ok\"}}}}}";
    CHECK_INT(rv_webhook_org_owners("repository", bad_from, strlen(bad_from),
                                    owners, &n),
              RV_ERR_INVALID);
}

int main(void)
{
    RUN(test_signature_matches_githubs_published_vector);
    RUN(test_signature_rejects_wrong_secret_and_changed_body);
    RUN(test_signature_rejects_any_flipped_digit);
    RUN(test_signature_rejects_malformed_headers);
    RUN(test_signature_accepts_uppercase_hex);
    RUN(test_signature_agrees_with_openssl_cli);
    RUN(test_each_event_routes_to_its_kind);
    RUN(test_routing_rejects_bad_payloads);
    RUN(test_ping_and_unused_events_need_no_repository);
    RUN(test_every_recorded_example_routes_correctly);
    RUN(test_org_events_name_their_owners_lower_cased);
    return rvt_done();
}

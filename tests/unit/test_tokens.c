/*
 * The tokens file (src/api/access.c): the line format, what is refused
 * with the line named, patterns, and finding a token by its text.
 */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "common/errors.h"
#include "rvtest.h"

static void hex_of(const char *text, char out[65])
{
    unsigned char h[32];
    SHA256((const unsigned char *)text, strlen(text), h);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static int parse(const char *text, struct api_tokens *t, char *err,
                 size_t errlen)
{
    memset(t, 0, sizeof(*t));
    return api_tokens_parse(text, strlen(text), "tokens", t, err, errlen);
}

static void test_lines_give_scopes_and_patterns(void)
{
    char a[65], b[65], c[65], text[1024], err[256] = "";
    hex_of("alpha", a);
    hex_of("beta", b);
    hex_of("gamma", c);
    snprintf(text, sizeof(text),
             "# comment\n\n  sha256:%s admin\r\nsha256:%s\twrite acme-* "
             "x.y\nsha256:%s read  \n   # indented comment\n",
             a, b, c);
    struct api_tokens t;
    CHECK_INT(parse(text, &t, err, sizeof(err)), RV_OK);
    CHECK_INT((int)t.n, 3);
    if (t.n == 3) {
        CHECK_INT(t.items[0].scope, API_SCOPE_ADMIN);
        CHECK_INT((int)t.items[0].npatterns, 0);
        CHECK_INT(t.items[1].scope, API_SCOPE_WRITE);
        CHECK_INT((int)t.items[1].npatterns, 2);
        CHECK_STR(t.items[1].patterns[0], "acme-*");
        CHECK_STR(t.items[1].patterns[1], "x.y");
        CHECK_INT(t.items[2].scope, API_SCOPE_READ);
        CHECK_STR(t.items[1].label, "line 4");
        CHECK(api_token_find(&t, "beta", 4) == &t.items[1]);
        CHECK(api_token_find(&t, "bet", 3) == NULL);
        CHECK(api_token_find(&t, "betaa", 5) == NULL);
        struct api_principal p = {.token = &t.items[1]};
        CHECK(api_principal_sees(&p, "acme-web"));
        CHECK(api_principal_sees(&p, "x.y"));
        CHECK(!api_principal_sees(&p, "acme"));
        CHECK(!api_principal_sees(&p, "x-y"));
        CHECK(!api_principal_sees(&p, "other-acme-web"));
        p.token = &t.items[0];
        CHECK(api_principal_sees(&p, "anything"));
    }
    api_tokens_free(&t);
}

static void test_bad_lines_are_refused_naming_the_line(void)
{
    char h[65];
    hex_of("x", h);
    static const char *const bad[] = {
        "sha256:%s\n",                 /* no scope */
        "sha256:%s owner\n",           /* unknown scope */
        "sha256:%s READ\n",            /* scopes are lower case */
        "sha256:%.63s read\n",         /* short hash */
        "sha256:%sa read\n",           /* long hash */
        "sha256:%.63sg read\n",        /* not hex */
        "%s read\n",                   /* no sha256: prefix */
        "sha1:%s read\n",
        "sha256:%s read acme/*\n",     /* '/' is not in a repo id */
        "sha256:%s read a[b]\n",       /* no other glob syntax */
        "sha256:%s read ../x\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512], err[256] = "";
        int n = snprintf(text, sizeof(text), "# first\n");
        snprintf(text + n, sizeof(text) - (size_t)n, bad[i], h);
        struct api_tokens t;
        int rc = parse(text, &t, err, sizeof(err));
        if (rc != RV_ERR_CONFIG)
            fprintf(stderr, "  accepted: %s", text + n);
        CHECK_INT(rc, RV_ERR_CONFIG);
        CHECK(strstr(err, "line 2") != NULL);
        api_tokens_free(&t);
    }
    /* A NUL byte anywhere. */
    char text[80];
    snprintf(text, sizeof(text), "sha256:%s read\n", h);
    text[3] = '\0';
    struct api_tokens t;
    char err[256];
    memset(&t, 0, sizeof(t));
    CHECK_INT(api_tokens_parse(text, strlen(text + 4) + 4, "tokens", &t, err,
                               sizeof(err)),
              RV_ERR_CONFIG);
    api_tokens_free(&t);
    /* An empty file and a file of comments hold no token. */
    CHECK_INT(parse("", &t, err, sizeof(err)), RV_OK);
    CHECK_INT((int)t.n, 0);
    CHECK_INT(parse("# nothing\n\n", &t, err, sizeof(err)), RV_OK);
    CHECK_INT((int)t.n, 0);
    api_tokens_free(&t);
}

/* The wrong-credential limiter (authfail.c) counts an IPv6 peer by its
 * /64, so a host cannot take a fresh bucket per address of its prefix. */
static void test_wrong_credentials_count_per_ipv4_or_ipv6_64(void)
{
    char a[48], b[48];
    CHECK_INT(api_authfail_key("192.0.2.7", a, sizeof(a)), 0);
    CHECK_STR(a, "192.0.2.7");
    CHECK_INT(api_authfail_key("2001:db8:1:2::1", a, sizeof(a)), 0);
    CHECK_INT(api_authfail_key("2001:db8:1:2:ffff:1:2:3", b, sizeof(b)), 0);
    CHECK_STR(a, "2001:db8:1:2::/64");
    CHECK_STR(b, a);
    CHECK_INT(api_authfail_key("2001:db8:1:3::1", b, sizeof(b)), 0);
    CHECK(strcmp(a, b) != 0);
    CHECK_INT(api_authfail_key("::ffff:192.0.2.7", a, sizeof(a)), 0);
    CHECK_STR(a, "192.0.2.7");
    CHECK_INT(api_authfail_key("::1", a, sizeof(a)), 0);
    CHECK_STR(a, "0:0:0:0::/64");
    CHECK_INT(api_authfail_key("2001:db8:1:2::1", a, 8), -1);
    CHECK_INT(api_authfail_key("fe80::1%eth0", a, sizeof(a)), 0);
    CHECK_STR(a, "fe80::1%eth0"); /* not parsed: as it is */
}

int main(void)
{
    RUN(test_lines_give_scopes_and_patterns);
    RUN(test_wrong_credentials_count_per_ipv4_or_ipv6_64);
    RUN(test_bad_lines_are_refused_naming_the_line);
    return rvt_done();
}

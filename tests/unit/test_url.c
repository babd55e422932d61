/* url.c: the one URL parser (libevent's, with the userinfo, IPv6 and port
 * rules url.h lists), on well-formed and hostile input. */
#include <string.h>

#include "common/url.h"
#include "rvtest.h"

/* The status of url, and its parts in *u (released by the caller). */
static enum rv_url_status parse(const char *url, struct rv_url *u)
{
    rvt_current = url;
    return rv_url_parse(url, u);
}

static void test_parts_of_a_full_url_are_split(void)
{
    static const char url[] = "https://git@[2001:db8::1]:8443/o/r.git?x=1#f";
    struct rv_url u;
    CHECK_INT(parse(url, &u), RV_URL_OK);
    CHECK_STR(u.scheme, "https");
    CHECK(u.has_userinfo);
    CHECK_INT((int)u.userinfo_len, 3);
    CHECK(strncmp(url + u.userinfo_at, "git", 3) == 0);
    CHECK_STR(u.host, "2001:db8::1");
    CHECK(u.is_ipv6);
    CHECK(strncmp(url + u.host_at, "[2001:db8::1]", u.host_len) == 0);
    CHECK_INT((int)u.host_len, 13);
    CHECK(u.has_port);
    CHECK_INT(u.port, 8443);
    CHECK_STR(u.path, "/o/r.git");
    CHECK_STR(u.query, "x=1");
    CHECK_STR(u.fragment, "f");
    rv_url_free(&u);

    CHECK_INT(parse("redis://h", &u), RV_URL_OK);
    CHECK(!u.has_userinfo && !u.has_port && !u.is_ipv6);
    CHECK_INT(u.port, -1);
    CHECK_STR(u.path, "");
    CHECK(u.query == NULL && u.fragment == NULL);
    rv_url_free(&u);
}

/* The userinfo ends at the authority's last '@' (as browsers and
 * rv_url_strip_credentials read it), and may hold ':' and bad escapes,
 * which the caller judges; an '@' in the path is no userinfo. */
static void test_userinfo_ends_at_the_last_at_of_the_authority(void)
{
    static const char url[] = "http://a@b@c/";
    struct rv_url u;
    CHECK_INT(parse(url, &u), RV_URL_OK);
    CHECK_STR(u.host, "c");
    CHECK_INT((int)u.userinfo_len, 3);
    CHECK(strncmp(url + u.userinfo_at, "a@b", 3) == 0);
    rv_url_free(&u);

    static const char pw[] = "redis://us:er:p%zz@h:1";
    CHECK_INT(parse(pw, &u), RV_URL_OK);
    CHECK_INT((int)u.userinfo_len, 10);
    CHECK(strncmp(pw + u.userinfo_at, "us:er:p%zz", 10) == 0);
    CHECK_STR(u.host, "h");
    CHECK_INT(u.port, 1);
    rv_url_free(&u);

    CHECK_INT(parse("https://h/a@b", &u), RV_URL_OK);
    CHECK(!u.has_userinfo);
    CHECK_STR(u.host, "h");
    CHECK_STR(u.path, "/a@b");
    rv_url_free(&u);

    CHECK_INT(parse("https://@h/", &u), RV_URL_OK);
    CHECK(u.has_userinfo);
    CHECK_INT((int)u.userinfo_len, 0);
    rv_url_free(&u);
}

static void test_ports_are_digits_up_to_65535(void)
{
    struct rv_url u;
    CHECK_INT(parse("http://h:65535/", &u), RV_URL_OK);
    CHECK_INT(u.port, 65535);
    rv_url_free(&u);
    CHECK_INT(parse("http://h:0/", &u), RV_URL_OK); /* the caller's call */
    CHECK_INT(u.port, 0);
    rv_url_free(&u);
    /* An empty port is told apart from none. */
    CHECK_INT(parse("http://h:/", &u), RV_URL_OK);
    CHECK(u.has_port);
    CHECK_INT(u.port, -1);
    rv_url_free(&u);

    static const char *const bad[] = {
        "http://h:65536/",  "http://h:99999999999/", "http://h:4294967297/",
        "http://h:000080/", "http://h:+80/",         "http://h:-1/",
        "http://h:8o/",     "http://h:1:2/",         "http://[::1]:x/",
        "http://[::1]x/",   "http://h: 80/",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(parse(bad[i], &u), RV_URL_BAD_PORT);
        CHECK(u.uri == NULL && u.host[0] == '\0');
    }
}

static void test_ipv6_literals_must_be_addresses(void)
{
    struct rv_url u;
    CHECK_INT(parse("ssh://[::ffff:127.0.0.1]/x", &u), RV_URL_OK);
    CHECK_STR(u.host, "::ffff:127.0.0.1");
    rv_url_free(&u);
    static const char *const bad[] = {
        "http://[::1",   "http://[::1/x",  "http://[]/",
        "http://[g::1]", "http://[v1.x]/", "http://[1.2.3.4]/",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_INT(parse(bad[i], &u), RV_URL_BAD_HOST);
}

/* Text no URL holds is refused, never read around. */
static void test_hostile_text_is_refused(void)
{
    static const char *const bad[] = {
        "http://a b/",
        "http://h/a\nb",
        "http://h\r\n/",
        "http://h/\r\nX: y",
        "http://\xc3\xa9.example/",
        "git@github.com:o/r",
        "/srv/git/r.git",
        "",
        "://h/",
        "a/b://h/",
        "http//h/",
        "1http://h/",
        "http://h\t/",
    };
    struct rv_url u;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(parse(bad[i], &u) != RV_URL_OK);
        rv_url_free(&u);
    }
    CHECK_INT(rv_url_parse(NULL, &u), RV_URL_MALFORMED);

    /* A blank or UTF-8 bytes in a path are git's (and the caller's) to
     * judge; the host is ASCII. */
    CHECK_INT(parse("https://h/a b", &u), RV_URL_OK);
    CHECK_STR(u.path, "/a b");
    rv_url_free(&u);
    /* Unicode bytes in a path are git's to judge; the host is ASCII. */
    CHECK_INT(parse("https://h/\xc3\xa9", &u), RV_URL_OK);
    CHECK_STR(u.path, "/\xc3\xa9");
    rv_url_free(&u);

    char long_host[300] = "http://";
    memset(long_host + 7, 'a', 260);
    long_host[267] = '\0';
    CHECK_INT(parse(long_host, &u), RV_URL_LONG_HOST);
}

/* An empty authority parses with an empty host: file:///, unix:///, and
 * https:/// which the callers refuse for naming no host. */
static void test_an_empty_authority_has_an_empty_host(void)
{
    struct rv_url u;
    CHECK_INT(parse("unix:///run/r.sock?db=2", &u), RV_URL_OK);
    CHECK_STR(u.host, "");
    CHECK_STR(u.path, "/run/r.sock");
    CHECK_STR(u.query, "db=2");
    rv_url_free(&u);
    CHECK_INT(parse("https://u@:80/o", &u), RV_URL_OK);
    CHECK_STR(u.host, "");
    CHECK_INT(u.port, 80);
    rv_url_free(&u);
}

int main(void)
{
    RUN(test_parts_of_a_full_url_are_split);
    RUN(test_userinfo_ends_at_the_last_at_of_the_authority);
    RUN(test_ports_are_digits_up_to_65535);
    RUN(test_ipv6_literals_must_be_addresses);
    RUN(test_hostile_text_is_refused);
    RUN(test_an_empty_authority_has_an_empty_host);
    return rvt_done();
}

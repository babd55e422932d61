/* urlpolicy.c: the remote URL policy, as a table of URLs and verdicts
 * under the default (closed) policy and under opened ones, plus the
 * address classes the worker checks at connect time. */
#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/urlpolicy.h"
#include "rvtest.h"

#define OK RV_OK
#define NO RV_ERR_URL_NOT_ALLOWED
#define BAD RV_ERR_INVALID

struct verdict {
    const char *url;
    int rc;
    const char *says; /* a word of the reason, or NULL */
};

static void check_table(const struct rv_url_policy *p,
                        const struct verdict *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char why[256] = "";
        rvt_current = t[i].url;
        CHECK_INT(rv_url_policy_check(p, t[i].url, why, sizeof(why)),
                  t[i].rc);
        if (t[i].rc != OK) {
            CHECK(why[0] != '\0');
            /* The reason names the rule, never the URL's secrets. */
            CHECK(strstr(why, "Secret") == NULL);
            CHECK(strstr(why, "tok3n") == NULL);
        }
        if (t[i].says)
            CHECK(strstr(why, t[i].says) != NULL);
    }
    rvt_current = NULL;
}

static void test_default_policy_verdicts(void)
{
    static const struct verdict t[] = {
        /* public remotes over the default schemes */
        {"https://github.com/acme/widgets.git", OK, NULL},
        {"https://GitHub.com/acme/widgets", OK, NULL},
        {"ssh://git@github.com/acme/widgets.git", OK, NULL},
        {"git@github.com:acme/widgets.git", OK, NULL},
        {"git://git.kernel.org/pub/scm/git/git.git", OK, NULL},
        {"https://8.8.8.8/r.git", OK, NULL},
        {"https://[2001:4860:4860::8888]/r.git", OK, NULL},
        {"https://gitlab.example.com:8443/group/r.git", OK, NULL},
        /* schemes */
        {"http://github.com/acme/widgets.git", NO, "http scheme"},
        {"ftp://github.com/r.git", BAD, NULL},
        {"file:///srv/git/r.git", NO, "local paths"},
        {"/srv/git/r.git", NO, "local paths"},
        {"/etc/../srv/git/r.git", NO, "local paths"},
        {"relative/path.git", BAD, NULL},
        {"-oProxyCommand=evil", BAD, NULL},
        /* loopback in every form a resolver takes */
        {"https://127.0.0.1/r.git", NO, "loopback"},
        {"https://127.1/r.git", NO, "loopback"},
        {"https://127.0.1/r.git", NO, "loopback"},
        {"https://0x7f000001/r.git", NO, "loopback"},
        {"https://0x7f.0x0.0x0.0x1/r.git", NO, "loopback"},
        {"https://2130706433/r.git", NO, "loopback"},
        {"https://0177.0.0.1/r.git", NO, "loopback"},
        {"https://017700000001/r.git", NO, "loopback"},
        {"https://127.255.255.254/r.git", NO, "loopback"},
        {"https://[::1]/r.git", NO, "loopback"},
        {"https://[0:0:0:0:0:0:0:1]/r.git", NO, "loopback"},
        {"https://[::ffff:127.0.0.1]/r.git", NO, "loopback"},
        {"https://[::ffff:7f00:1]/r.git", NO, "loopback"},
        {"https://[::127.0.0.1]/r.git", NO, "loopback"},
        {"https://[64:ff9b::127.0.0.1]/r.git", NO, "loopback"},
        {"https://[2002:7f00:1::]/r.git", NO, "loopback"},
        {"https://localhost/r.git", NO, "loopback"},
        {"https://LOCALHOST./r.git", NO, "loopback"},
        {"https://evil.localhost/r.git", NO, "loopback"},
        {"git://127.0.0.1:9418/r.git", NO, "loopback"},
        {"ssh://git@127.0.0.1:2222/r.git", NO, "loopback"},
        {"git@127.0.0.1:org/r.git", NO, "loopback"},
        {"git@[::1]:org/r.git", NO, "loopback"},
        /* other non-public classes */
        {"https://0.0.0.0/r.git", NO, "unspecified"},
        {"https://0/r.git", NO, "unspecified"},
        {"https://[::]/r.git", NO, "unspecified"},
        {"https://10.0.0.1/r.git", NO, "private"},
        {"https://10.255.255.255/r.git", NO, "private"},
        {"https://172.16.0.1/r.git", NO, "private"},
        {"https://172.31.255.1/r.git", NO, "private"},
        {"https://172.32.0.1/r.git", OK, NULL},
        {"https://192.168.1.1/r.git", NO, "private"},
        {"https://3232235777/r.git", NO, "private"}, /* 192.168.1.1 */
        {"https://100.64.0.1/r.git", NO, "CGNAT"},
        {"https://169.254.169.254/latest/meta-data", NO, "link-local"},
        {"https://0xa9fea9fe/r.git", NO, "link-local"},
        {"https://[fe80::1]/r.git", NO, "link-local"},
        {"https://[fc00::1]/r.git", NO, "unique-local"},
        {"https://[fd12:3456::1]/r.git", NO, "unique-local"},
        {"https://[ff02::1]/r.git", NO, "multicast"},
        {"https://224.0.0.1/r.git", NO, "multicast"},
        {"https://[::ffff:10.0.0.1]/r.git", NO, "private"},
        {"https://[::ffff:169.254.169.254]/r.git", NO, "link-local"},
        {"https://240.0.0.1/r.git", NO, NULL},
        {"https://255.255.255.255/r.git", NO, NULL},
        /* credentials in every form */
        {"https://user:Secret@github.com/acme/r.git", NO, "password"},
        {"https://tok3n@github.com/acme/r.git", NO, "password"},
        {"https://x-access-token:tok3n@github.com/r.git", NO, "password"},
        {"ssh://git:Secret@github.com/acme/r.git", NO, "password"},
        {"git://user@github.com/r.git", NO, "password"},
        {"user:Secret@github.com:acme/r.git", NO, "password"},
        {"https://github.com/acme/r.git?access_token=tok3n", NO, "query"},
        {"https://github.com/acme/r.git#tok3n", NO, "fragment"},
        {"git@github.com:acme/r.git#tok3n", NO, "fragment"},
        {"", BAD, NULL},
    };
    struct rv_url_policy p;
    char err[256];
    CHECK_INT(rv_url_policy_init(&p, NULL, NULL, false, NULL, NULL, err,
                                 sizeof(err)),
              RV_OK);
    check_table(&p, t, sizeof(t) / sizeof(t[0]));
    rv_url_policy_free(&p);
}

static void test_opened_policy_verdicts(void)
{
    struct rv_url_policy p;
    char err[256];
    CHECK_INT(rv_url_policy_init(&p, "https,http,ssh,git", NULL, true,
                                 NULL, "*.internal.example,10.9.9.9", err,
                                 sizeof(err)),
              RV_OK);
    static const struct verdict open[] = {
        {"http://127.0.0.1:8080/r.git", OK, NULL},
        {"https://[::1]/r.git", OK, NULL},
        {"git://localhost/r.git", OK, NULL},
        {"https://169.254.169.254/r.git", OK, NULL},
        {"https://git.internal.example/r.git", NO, "BLOCKED"},
        {"https://a.b.internal.example/r.git", NO, "BLOCKED"},
        {"https://internal.example/r.git", OK, NULL},
        {"https://10.9.9.9/r.git", NO, "BLOCKED"},
        /* credentials stay refused however open the policy is */
        {"http://u:Secret@127.0.0.1/r.git", NO, "password"},
        {"file:///tmp/r.git", NO, "local paths"},
    };
    check_table(&p, open, sizeof(open) / sizeof(open[0]));
    rv_url_policy_free(&p);

    CHECK_INT(rv_url_policy_init(&p, NULL, NULL, false,
                                 "github.com,*.corp.example", NULL, err,
                                 sizeof(err)),
              RV_OK);
    static const struct verdict allow[] = {
        {"https://github.com/a/b.git", OK, NULL},
        {"git@github.com:a/b.git", OK, NULL},
        {"https://git.corp.example/a.git", OK, NULL},
        {"https://gitlab.com/a/b.git", NO, "ALLOWED_HOSTS_REMOTE"},
        {"https://github.com.evil.example/a.git", NO, "ALLOWED_HOSTS_REMOTE"},
        {"https://corp.example/a.git", NO, "ALLOWED_HOSTS_REMOTE"},
    };
    check_table(&p, allow, sizeof(allow) / sizeof(allow[0]));
    rv_url_policy_free(&p);
}

/* A blocked address is blocked however the URL or the list spells it:
 * bracketed or not, URL or scp form, in a non-canonical spelling. */
static void test_blocked_addresses_match_in_every_spelling(void)
{
    struct rv_url_policy p;
    char err[256];
    CHECK_INT(rv_url_policy_init(&p, "https,http,ssh,git", NULL, true, NULL,
                                 "[2001:db8::1],2001:db8::2,10.0.0.5", err,
                                 sizeof(err)),
              RV_OK);
    static const struct verdict blocked[] = {
        {"https://[2001:db8::1]/x.git", NO, "BLOCKED_HOSTS_REMOTE"},
        {"ssh://git@[2001:db8::1]/x.git", NO, "BLOCKED_HOSTS_REMOTE"},
        {"git@[2001:db8::1]:x.git", NO, "BLOCKED_HOSTS_REMOTE"},
        {"https://[2001:db8:0::1]/x.git", NO, "BLOCKED_HOSTS_REMOTE"},
        {"https://[2001:db8::2]/x.git", NO, "BLOCKED_HOSTS_REMOTE"},
        {"git@[2001:db8::2]:x.git", NO, "BLOCKED_HOSTS_REMOTE"},
        {"https://10.0.0.5/x.git", NO, "BLOCKED_HOSTS_REMOTE"},
        {"https://[2001:db8::3]/x.git", OK, NULL},
        {"https://10.0.0.6/x.git", OK, NULL},
    };
    check_table(&p, blocked, sizeof(blocked) / sizeof(blocked[0]));
    rv_url_policy_free(&p);
}

static void test_local_paths_only_under_allowed_directories(void)
{
    char *tmp = rvt_tmpdir("rv-urlpolicy");
    CHECK(tmp != NULL);
    char real[PATH_MAX];
    CHECK(realpath(tmp, real) != NULL);
    CHECK_INT(rvt_sh(NULL,
                     "mkdir -p '%s/allowed/repo.git' '%s/allowed-not' "
                     "'%s/outside.git' && ln -s '%s/outside.git' "
                     "'%s/allowed/escape.git' && ln -s repo.git "
                     "'%s/allowed/inside.git'",
                     real, real, real, real, real, real),
              0);
    char dirs[PATH_MAX + 16];
    snprintf(dirs, sizeof(dirs), "%s/allowed/", real);
    struct rv_url_policy p;
    char err[256];
    CHECK_INT(rv_url_policy_init(&p, NULL, dirs, false, NULL, NULL, err,
                                 sizeof(err)),
              RV_OK);
    struct {
        const char *fmt;
        int rc;
        const char *says;
    } t[] = {
        {"%s/allowed/repo.git", OK, NULL},
        {"file://%s/allowed/repo.git", OK, NULL},
        {"%s/allowed/./repo.git/", OK, NULL},
        {"%s/allowed/inside.git", OK, NULL},
        {"%s/allowed/not-yet.git", OK, NULL}, /* the worker judges later */
        {"%s/allowed/../outside.git", NO, "outside"},
        {"%s/allowed/repo.git/../../outside.git", NO, "outside"},
        {"%s/allowed-not/x.git", NO, "outside"},
        {"%s/allowed/escape.git", NO, "symbolic link"},
        {"file://%s/allowed/escape.git", NO, "symbolic link"},
        {"%s/outside.git", NO, "outside"},
        {"file://%s/allowed/repo.git?x=1", NO, "query"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char url[PATH_MAX + 64], why[256] = "";
        snprintf(url, sizeof(url), t[i].fmt, real);
        rvt_current = t[i].fmt;
        int rc = rv_url_policy_check(&p, url, why, sizeof(why));
        if (t[i].rc == BAD)
            CHECK(rc != OK);
        else
            CHECK_INT(rc, t[i].rc);
        if (t[i].says)
            CHECK(strstr(why, t[i].says) != NULL);
        CHECK(strstr(why, real) == NULL); /* paths are never echoed */
    }
    rvt_current = NULL;
    /* The worker fetches the resolved path; a missing one is not_found. */
    char url[PATH_MAX + 64], out[PATH_MAX], why[256];
    snprintf(url, sizeof(url), "%s/allowed/inside.git", real);
    CHECK_INT(rv_url_policy_local_path(&p, url, out, sizeof(out), why,
                                       sizeof(why)),
              RV_OK);
    char want[PATH_MAX + 32];
    snprintf(want, sizeof(want), "%s/allowed/repo.git", real);
    CHECK_STR(out, want);
    snprintf(url, sizeof(url), "%s/allowed/not-yet.git", real);
    CHECK_INT(rv_url_policy_local_path(&p, url, out, sizeof(out), why,
                                       sizeof(why)),
              RV_ERR_NOT_FOUND);
    rv_url_policy_free(&p);
    rvt_rmrf(tmp);
    free(tmp);
}

static void test_connect_time_checks_judge_the_real_address(void)
{
    struct rv_url_policy closed, open;
    char err[256], why[256];
    CHECK_INT(rv_url_policy_init(&closed, NULL, NULL, false, NULL, NULL,
                                 err, sizeof(err)),
              RV_OK);
    CHECK_INT(rv_url_policy_init(&open, NULL, NULL, true, NULL, NULL, err,
                                 sizeof(err)),
              RV_OK);
    static const struct {
        const char *addr;
        bool public_;
    } t[] = {
        {"127.0.0.1", false}, {"10.1.1.1", false}, {"192.168.0.1", false},
        {"169.254.1.1", false}, {"100.100.1.1", false}, {"0.0.0.0", false},
        {"8.8.8.8", true},      {"140.82.112.3", true}, {"::1", false},
        {"::ffff:127.0.0.1", false}, {"fe80::1", false}, {"fd00::1", false},
        {"2606:50c0:8000::153", true}, {"::ffff:8.8.8.8", true},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        rvt_current = t[i].addr;
        if (strchr(t[i].addr, ':')) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            s6->sin6_family = AF_INET6;
            CHECK_INT(inet_pton(AF_INET6, t[i].addr, &s6->sin6_addr), 1);
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            s4->sin_family = AF_INET;
            CHECK_INT(inet_pton(AF_INET, t[i].addr, &s4->sin_addr), 1);
        }
        CHECK_INT(rv_url_policy_check_addr(&closed, (struct sockaddr *)&ss,
                                           why, sizeof(why)),
                  t[i].public_ ? RV_OK : RV_ERR_URL_NOT_ALLOWED);
        CHECK_INT(rv_url_policy_check_addr(&open, (struct sockaddr *)&ss,
                                           why, sizeof(why)),
                  RV_OK);
    }
    rvt_current = NULL;
    /* A redirect's target host is checked by name too. */
    CHECK_INT(rv_url_policy_check_host(&closed, "localhost", why,
                                       sizeof(why)),
              RV_ERR_URL_NOT_ALLOWED);
    CHECK_INT(rv_url_policy_check_host(&closed, "0x7f.1", why, sizeof(why)),
              RV_ERR_URL_NOT_ALLOWED);
    CHECK_INT(rv_url_policy_check_host(&closed, "github.com", why,
                                       sizeof(why)),
              RV_OK);
    rv_url_policy_free(&closed);
    rv_url_policy_free(&open);
}

static void test_bad_settings_are_refused(void)
{
    struct rv_url_policy p;
    char err[256];
    CHECK_INT(rv_url_policy_init(&p, "https,gopher", NULL, false, NULL, NULL,
                                 err, sizeof(err)),
              RV_ERR_CONFIG);
    CHECK(strstr(err, "gopher") != NULL);
    CHECK_INT(rv_url_policy_init(&p, NULL, "not/absolute", false, NULL, NULL,
                                 err, sizeof(err)),
              RV_ERR_CONFIG);
    CHECK_INT(rv_url_policy_init(&p, NULL, NULL, false, "a b", NULL, err,
                                 sizeof(err)),
              RV_ERR_CONFIG);
}

int main(void)
{
    RUN(test_default_policy_verdicts);
    RUN(test_opened_policy_verdicts);
    RUN(test_blocked_addresses_match_in_every_spelling);
    RUN(test_local_paths_only_under_allowed_directories);
    RUN(test_connect_time_checks_judge_the_real_address);
    RUN(test_bad_settings_are_refused);
    return rvt_done();
}

/*
 * GitHub App authentication (worker/ghapp.h, worker/ghauth.h): the JWT's
 * shape and RS256 signature (checked with the openssl CLI and by the fake
 * GitHub, which verifies it with node:crypto), the installation lookup and
 * token exchange, renewal before expiry and after a 401, the fallback to
 * GITHUB_TOKEN for owners without the App, a bad key refused at start, and
 * neither the installation tokens nor the key anywhere in the worker's log
 * or in Redis.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/keys.h"
#include "common/registry.h"
#include "common/util.h"
#include "fake_github.h"
#include "rvtest.h"
#include "worker/ghapp.h"
#include "worker/ghauth.h"
#include "worker/prsync.h"

#define PAT "ghp_appTESTpat0123456789SECRETvalueXYZ"
#define APP_ID 4242

static struct rvt_redis redis;
static struct rv_rsync conn;
static char *tmp;
static struct rvt_fake_github fake;
static pid_t worker;
static char key_path[600], pub_path[600], rest[128];

#define control(...) rvt_fake_github_control(&fake, __VA_ARGS__)

/* The App as the fake knows it: acme has installation 101. */
static int configure_app(int lifetime_s, int exchange_status, const char *pub)
{
    return control("{\"app\":{\"id\":\"%d\",\"publicKeyPath\":\"%s\","
                   "\"installations\":{\"acme\":101},"
                   "\"tokenLifetimeSeconds\":%d,\"exchangeStatus\":%d}}",
                   APP_ID, pub, lifetime_s, exchange_status);
}

#define fake_get(path) rvt_fake_github_get(&fake, path)

/* Recorded requests of kind (and, when auth is not NULL, of that auth). */
static int count_requests(const char *kind, const char *auth)
{
    json_t *reqs = fake_get("/_requests");
    int n = 0;
    size_t i;
    json_t *r;
    json_array_foreach(reqs, i, r)
    {
        const char *k = json_string_value(json_object_get(r, "kind"));
        const char *a = json_string_value(json_object_get(r, "auth"));
        if (k && !strcmp(k, kind) && (!auth || (a && !strcmp(a, auth))))
            n++;
    }
    json_decref(reqs);
    return n;
}

/* Installation lookups at endpoint ("repos", "orgs", "users") answered
 * with status. */
static int count_lookups(const char *endpoint, int status)
{
    json_t *reqs = fake_get("/_requests");
    int n = 0;
    size_t i;
    json_t *r;
    json_array_foreach(reqs, i, r)
    {
        const char *k = json_string_value(json_object_get(r, "kind"));
        const char *e = json_string_value(json_object_get(r, "endpoint"));
        if (k && !strcmp(k, "installation") && e && !strcmp(e, endpoint) &&
            json_integer_value(json_object_get(r, "status")) == status)
            n++;
    }
    json_decref(reqs);
    return n;
}

/* GraphQL requests for repo name of acme, with (unselected) an
 * installation token whose installation does not cover it, or else with
 * auth ("pat", "installation"). */
static int count_graphql(const char *name, const char *auth, bool unselected)
{
    json_t *reqs = fake_get("/_requests");
    int n = 0;
    size_t i;
    json_t *r;
    json_array_foreach(reqs, i, r)
    {
        const char *k = json_string_value(json_object_get(r, "kind"));
        const char *a = json_string_value(json_object_get(r, "auth"));
        const char *nm = json_string_value(json_object_get(r, "name"));
        bool un = json_is_true(json_object_get(r, "unselected"));
        if (k && !strcmp(k, "graphql") && nm && !strcmp(nm, name) &&
            un == unselected && (!auth || (a && !strcmp(a, auth))))
            n++;
    }
    json_decref(reqs);
    return n;
}

static void clear_requests(void)
{
    CHECK_INT(control("{\"clearRequests\":true}"), 0);
}

static bool load_app(struct rv_ghapp *app)
{
    char err[512];
    return rv_ghapp_load(app, APP_ID, key_path, err, sizeof(err)) == RV_OK;
}

static struct rv_ghauth *new_holder(const struct rv_ghapp *app)
{
    return rv_ghauth_new(&(struct rv_ghauth_opts){
        .rest_url = rest, .pat = PAT, .app = app, .timeout_s = 5});
}

/* base64url (no padding) decoded into a malloc'd buffer; *n its length. */
static unsigned char *b64url_decode(const char *s, size_t len, size_t *n)
{
    size_t padded = (len + 3) / 4 * 4;
    char *b = malloc(padded + 1);
    unsigned char *out = malloc(padded);
    for (size_t i = 0; i < padded; i++)
        b[i] = i >= len ? '=' : s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    b[padded] = '\0';
    int w = EVP_DecodeBlock(out, (unsigned char *)b, (int)padded);
    free(b);
    *n = w < 0 ? 0 : (size_t)w - (padded - len);
    return out;
}

static void test_the_jwt_is_rs256_with_the_claims_github_wants(void)
{
    struct rv_ghapp app;
    CHECK(load_app(&app));
    int64_t now = rv_now_ms() / 1000;
    char *jwt = NULL;
    CHECK_INT(rv_ghapp_jwt(&app, now, &jwt), RV_OK);
    const char *d1 = jwt ? strchr(jwt, '.') : NULL;
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    CHECK(d1 && d2 && !strchr(d2 + 1, '.'));
    if (!d1 || !d2) {
        free(jwt);
        rv_ghapp_free(&app);
        return;
    }
    CHECK(strspn(jwt, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      "0123456789-_.") == strlen(jwt));
    size_t n;
    unsigned char *h = b64url_decode(jwt, (size_t)(d1 - jwt), &n);
    CHECK(n == 27 && memcmp(h, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", 27) == 0);
    free(h);
    unsigned char *p = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &n);
    json_t *claims = json_loadb((const char *)p, n, 0, NULL);
    free(p);
    CHECK_INT(json_integer_value(json_object_get(claims, "iat")), now - 60);
    CHECK_INT(json_integer_value(json_object_get(claims, "exp")), now + 540);
    CHECK_STR(json_string_value(json_object_get(claims, "iss")), "4242");
    json_decref(claims);

    /* The signature over "header.payload", checked by openssl. */
    char path[700];
    unsigned char *sig = b64url_decode(d2 + 1, strlen(d2 + 1), &n);
    CHECK_INT(n, 256); /* RSA-2048 */
    snprintf(path, sizeof(path), "%s/sig.bin", tmp);
    FILE *f = fopen(path, "wb");
    fwrite(sig, 1, n, f);
    fclose(f);
    free(sig);
    snprintf(path, sizeof(path), "%s/signed.txt", tmp);
    f = fopen(path, "wb");
    fwrite(jwt, 1, (size_t)(d2 - jwt), f);
    fclose(f);
    CHECK_INT(rvt_sh(NULL,
                     "cd '%s' && openssl dgst -sha256 -verify pub.pem "
                     "-signature sig.bin signed.txt >/dev/null",
                     tmp),
              0);
    CHECK(rvt_sh(NULL,
                 "cd '%s' && openssl dgst -sha256 -verify other.pub "
                 "-signature sig.bin signed.txt >/dev/null 2>&1",
                 tmp) != 0);
    explicit_bzero(jwt, strlen(jwt));
    free(jwt);
    rv_ghapp_free(&app);
}

/* The fake (node:crypto) takes a fresh JWT and refuses an expired one, one
 * from the future and one signed with another key, with GitHub's 401. */
static void test_the_fake_verifies_the_jwt(void)
{
    struct rv_ghapp app, other;
    char err[512], other_key[700];
    snprintf(other_key, sizeof(other_key), "%s/other.pem", tmp);
    CHECK(load_app(&app));
    CHECK_INT(rv_ghapp_load(&other, APP_ID, other_key, err, sizeof(err)),
              RV_OK);
    struct {
        const struct rv_ghapp *app;
        int64_t skew_s;
        int status;
    } cases[] = {
        {&app, 0, 200},
        {&app, -1000, 401},
        {&app, 200, 401},
        {&other, 0, 401},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *jwt = NULL, *out = NULL;
        CHECK_INT(rv_ghapp_jwt(cases[i].app,
                               rv_now_ms() / 1000 + cases[i].skew_s, &jwt),
                  RV_OK);
        rvt_sh(&out,
               "curl -s -o '%s/b.txt' -w '%%{http_code}' -H 'Authorization: "
               "Bearer %s' %s/repos/acme/widgets/installation",
               tmp, jwt ? jwt : "", rest);
        CHECK_INT(out ? strtol(out, NULL, 10) : 0, cases[i].status);
        free(out);
        free(jwt);
        if (cases[i].status == 401) {
            char path[700];
            snprintf(path, sizeof(path), "%s/b.txt", tmp);
            char *body = rvt_slurp(path);
            json_t *doc = json_loads(body ? body : "", 0, NULL);
            CHECK(json_string_value(json_object_get(doc, "message")) != NULL);
            CHECK(json_string_value(
                      json_object_get(doc, "documentation_url")) != NULL);
            json_decref(doc);
            free(body);
        }
    }
    rv_ghapp_free(&app);
    rv_ghapp_free(&other);
}

static void test_bad_key_files_are_refused_with_the_reason(void)
{
    struct rv_ghapp app;
    char err[512], path[700];
    snprintf(path, sizeof(path), "%s/nope.pem", tmp);
    CHECK_INT(rv_ghapp_load(&app, APP_ID, path, err, sizeof(err)),
              RV_ERR_CONFIG);
    CHECK(rvt_contains(err, "REPOVIEW_GITHUB_APP_KEY_FILE"));
    CHECK(rvt_contains(err, "cannot open"));
    snprintf(path, sizeof(path), "%s/garbage.pem", tmp);
    CHECK_INT(rv_ghapp_load(&app, APP_ID, path, err, sizeof(err)),
              RV_ERR_CONFIG);
    CHECK(rvt_contains(err, "does not hold"));
    snprintf(path, sizeof(path), "%s/ec.pem", tmp);
    CHECK_INT(rv_ghapp_load(&app, APP_ID, path, err, sizeof(err)),
              RV_ERR_CONFIG);
    CHECK(rvt_contains(err, "not an RSA key"));
    CHECK_INT(rv_ghapp_load(&app, 0, key_path, err, sizeof(err)),
              RV_ERR_CONFIG);
    CHECK(rvt_contains(err, "REPOVIEW_GITHUB_APP_ID"));
    /* GitHub's download is PKCS#1 ("BEGIN RSA PRIVATE KEY"). */
    snprintf(path, sizeof(path), "%s/key-pkcs1.pem", tmp);
    CHECK_INT(rv_ghapp_load(&app, APP_ID, path, err, sizeof(err)), RV_OK);
    rv_ghapp_free(&app);

    /* The worker stops at start, saying which setting and why. */
    char log[600], data[600], id[64], kf[700];
    snprintf(log, sizeof(log), "%s/badkey.log", tmp);
    snprintf(data, sizeof(data), "%s/data-badkey", tmp);
    snprintf(id, sizeof(id), "REPOVIEW_GITHUB_APP_ID=%d", APP_ID);
    snprintf(kf, sizeof(kf), "REPOVIEW_GITHUB_APP_KEY_FILE=%s/garbage.pem",
             tmp);
    const char *env[] = {id, kf, NULL};
    pid_t pid = rvt_spawn_worker(redis.url, data, log, env);
    int status = -1;
    for (int i = 0; i < 200 && pid > 0; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            break;
        rvt_sleep_ms(50);
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    char *text = rvt_slurp(log);
    CHECK(rvt_contains(text, "REPOVIEW_GITHUB_APP_KEY_FILE"));
    CHECK(rvt_contains(text, "garbage.pem"));
    free(text);
}

static void test_an_installation_token_is_exchanged_and_kept(void)
{
    struct rv_ghapp app;
    CHECK(load_app(&app));
    CHECK_INT(configure_app(3600, 0, pub_path), 0);
    clear_requests();
    struct rv_ghauth *a = new_holder(&app);
    struct rv_gh_token tok;
    struct rv_sync_error err = {0};
    CHECK_INT(rv_ghauth_token(a, "acme/widgets", NULL, NULL, &tok, &err),
              RV_OK);
    CHECK_INT(tok.installation_id, 101);
    CHECK_STR(tok.identity, "101");
    CHECK(tok.value && strncmp(tok.value, "ghs_", 4) == 0);
    char first[128] = "";
    rv_strlcpy(first, tok.value ? tok.value : "", sizeof(first));
    /* Another repo of the same owner: the same token, nothing asked. */
    CHECK_INT(rv_ghauth_token(a, "ACME/gadgets", NULL, NULL, &tok, &err),
              RV_OK);
    CHECK_STR(tok.value, first);
    CHECK_INT(count_requests("installation", NULL), 1);
    CHECK_INT(count_requests("access_tokens", NULL), 1);
    json_t *reqs = fake_get("/_requests");
    json_t *r0 = json_array_get(reqs, 0);
    CHECK_STR(json_string_value(json_object_get(r0, "accept")),
              "application/vnd.github+json");
    CHECK_STR(json_string_value(json_object_get(r0, "apiVersion")),
              "2022-11-28");
    json_t *jwt = json_object_get(r0, "jwt");
    CHECK_INT(json_integer_value(json_object_get(jwt, "exp")) -
                  json_integer_value(json_object_get(jwt, "iat")),
              600);
    json_decref(reqs);

    /* The token opens PR sync of acme's repos at the fake. */
    char gql[160];
    rv_prsync_graphql_url(rest, NULL, gql, sizeof(gql));
    CHECK_INT(control("{\"repo\":\"acme/widgets\",\"scenario\":\"mixed\"}"), 0);
    json_t *out = NULL;
    CHECK_INT(
        rv_prsync_run(&(struct rv_prsync_opts){.graphql_url = gql,
                                               .token = first,
                                               .owner_name = "acme/widgets",
                                               .timeout_s = 5},
                      &out, NULL, &err),
        RV_OK);
    CHECK_INT(json_array_size(json_object_get(out, "pullRequests")), 8);
    json_decref(out);
    CHECK_INT(count_requests("graphql", "installation"), 1);
    rv_ghauth_free(a);
    rv_ghapp_free(&app);
}

static void test_a_token_is_renewed_before_it_expires(void)
{
    struct rv_ghapp app;
    CHECK(load_app(&app));
    /* 302 s: inside the 5-minute renewal margin two seconds from now. */
    CHECK_INT(configure_app(302, 0, pub_path), 0);
    clear_requests();
    struct rv_ghauth *a = new_holder(&app);
    struct rv_gh_token tok;
    struct rv_sync_error err = {0};
    char first[128] = "";
    CHECK_INT(rv_ghauth_token(a, "acme/widgets", NULL, NULL, &tok, &err),
              RV_OK);
    rv_strlcpy(first, tok.value ? tok.value : "", sizeof(first));
    CHECK_INT(rv_ghauth_token(a, "acme/widgets", NULL, NULL, &tok, &err),
              RV_OK);
    CHECK_STR(tok.value, first);
    CHECK_INT(count_requests("access_tokens", NULL), 1);
    rvt_sleep_ms(2300);
    CHECK_INT(rv_ghauth_token(a, "acme/widgets", NULL, NULL, &tok, &err),
              RV_OK);
    CHECK(tok.value && strcmp(tok.value, first) != 0);
    CHECK_INT(count_requests("access_tokens", NULL), 2);
    CHECK_INT(count_requests("installation", NULL), 1);
    rv_ghauth_free(a);
    rv_ghapp_free(&app);
    CHECK_INT(configure_app(3600, 0, pub_path), 0);
}

static void test_an_owner_without_the_app_gets_github_token(void)
{
    struct rv_ghapp app;
    CHECK(load_app(&app));
    clear_requests();
    struct rv_ghauth *a = new_holder(&app);
    struct rv_gh_token tok;
    struct rv_sync_error err = {0};
    for (int i = 0; i < 3; i++) {
        CHECK_INT(rv_ghauth_token(a, "solo/thing", NULL, NULL, &tok, &err),
                  RV_OK);
        CHECK_STR(tok.value, PAT);
        CHECK_STR(tok.identity, "pat");
        CHECK_INT(tok.installation_id, 0);
    }
    /* The 404 is remembered: asked once, not every sync. */
    CHECK_INT(count_requests("installation", NULL), 1);
    CHECK_INT(count_requests("access_tokens", NULL), 0);
    /* Without an App every repo gets the PAT and nothing is asked. */
    struct rv_ghauth *plain = new_holder(NULL);
    CHECK_INT(rv_ghauth_token(plain, "acme/widgets", NULL, NULL, &tok, &err),
              RV_OK);
    CHECK_STR(tok.value, PAT);
    CHECK_INT(count_requests("installation", NULL), 1);
    rv_ghauth_free(plain);
    rv_ghauth_free(a);
    rv_ghapp_free(&app);
}

static void test_a_failed_exchange_is_a_sync_error(void)
{
    struct rv_ghapp app;
    CHECK(load_app(&app));
    struct rv_gh_token tok;
    struct rv_sync_error err = {0};
    CHECK_INT(configure_app(3600, 502, pub_path), 0);
    struct rv_ghauth *a = new_holder(&app);
    CHECK(rv_ghauth_token(a, "acme/widgets", NULL, NULL, &tok, &err) != RV_OK);
    CHECK_STR(rv_errname(err.code), "github_unavailable");
    CHECK(rvt_contains(err.message, "exchanging installation 101"));
    rv_ghauth_free(a);

    /* The fake knows another public key: our JWT is refused. */
    char other_pub[700];
    snprintf(other_pub, sizeof(other_pub), "%s/other.pub", tmp);
    CHECK_INT(configure_app(3600, 0, other_pub), 0);
    a = new_holder(&app);
    memset(&err, 0, sizeof(err));
    CHECK(rv_ghauth_token(a, "acme/widgets", NULL, NULL, &tok, &err) != RV_OK);
    CHECK_STR(rv_errname(err.code), "unauthorized");
    CHECK(rvt_contains(err.message, "JWT"));
    CHECK(rvt_contains(err.message, "REPOVIEW_GITHUB_APP_ID"));
    rv_ghauth_free(a);
    rv_ghapp_free(&app);
    CHECK_INT(configure_app(3600, 0, pub_path), 0);
}

/* An org sync asks for the owner alone: an organisation's installation
 * is found at /orgs, a user's at /users after the /orgs 404, an owner
 * without the App gets the PAT after both 404 (remembered), and a repo of
 * the owner shares the owner's cached token. */
static void test_an_owner_alone_finds_an_org_or_a_user_installation(void)
{
    struct rv_ghapp app;
    CHECK(load_app(&app));
    CHECK_INT(control("{\"app\":{\"id\":\"%d\",\"publicKeyPath\":\"%s\","
                      "\"installations\":{\"acme\":101,\"bob\":202},"
                      "\"users\":[\"bob\"]}}",
                      APP_ID, pub_path),
              0);
    clear_requests();
    struct rv_ghauth *a = new_holder(&app);
    struct rv_gh_token tok;
    struct rv_sync_error err = {0};
    char first[128] = "";
    CHECK_INT(rv_ghauth_token(a, "Acme", NULL, NULL, &tok, &err), RV_OK);
    CHECK_INT(tok.installation_id, 101);
    CHECK_STR(tok.identity, "101");
    CHECK(tok.value && strncmp(tok.value, "ghs_", 4) == 0);
    rv_strlcpy(first, tok.value ? tok.value : "", sizeof(first));
    CHECK_INT(count_lookups("orgs", 200), 1);
    CHECK_INT(count_lookups("users", 200) + count_lookups("users", 404), 0);
    /* The owner's repos use the same entry: nothing more is asked. */
    CHECK_INT(rv_ghauth_token(a, "acme/widgets", NULL, NULL, &tok, &err),
              RV_OK);
    CHECK_STR(tok.value, first);
    CHECK_INT(count_requests("installation", NULL), 1);
    CHECK_INT(count_requests("access_tokens", NULL), 1);

    CHECK_INT(rv_ghauth_token(a, "bob", NULL, NULL, &tok, &err), RV_OK);
    CHECK_INT(tok.installation_id, 202);
    CHECK(tok.value && strncmp(tok.value, "ghs_", 4) == 0);
    CHECK_INT(count_lookups("orgs", 404), 1);
    CHECK_INT(count_lookups("users", 200), 1);

    for (int i = 0; i < 2; i++) {
        CHECK_INT(rv_ghauth_token(a, "nobody", NULL, NULL, &tok, &err), RV_OK);
        CHECK_STR(tok.value, PAT);
        CHECK_STR(tok.identity, "pat");
    }
    CHECK_INT(count_lookups("orgs", 404), 2);
    CHECK_INT(count_lookups("users", 404), 1);

    /* Not a login: the PAT, nothing asked. */
    CHECK_INT(rv_ghauth_token(a, "no such/owner", NULL, NULL, &tok, &err),
              RV_OK);
    CHECK_STR(tok.value, PAT);
    CHECK_INT(rv_ghauth_token(a, "..", NULL, NULL, &tok, &err), RV_OK);
    CHECK_STR(tok.value, PAT);
    CHECK_INT(count_requests("installation", NULL), 5);

    /* Dropping by owner renews the token without a new lookup. */
    rv_ghauth_drop(a, "acme");
    CHECK_INT(rv_ghauth_token(a, "acme", NULL, NULL, &tok, &err), RV_OK);
    CHECK(tok.value && strcmp(tok.value, first) != 0);
    CHECK_INT(count_requests("access_tokens", NULL), 3);
    CHECK_INT(count_requests("installation", NULL), 5);
    CHECK_INT(err.code, RV_OK);
    rv_ghauth_free(a);
    rv_ghapp_free(&app);
    CHECK_INT(configure_app(3600, 0, pub_path), 0);
}

/* A repo pinned to the PAT gets it, its owner's other repos keep the
 * installation token, and the pin ends when lifted or after the TTL. */
static void test_a_repo_can_prefer_the_pat_for_a_while(void)
{
    struct rv_ghapp app;
    CHECK(load_app(&app));
    struct rv_ghauth *a =
        rv_ghauth_new(&(struct rv_ghauth_opts){.rest_url = rest,
                                               .pat = PAT,
                                               .app = &app,
                                               .timeout_s = 5,
                                               .no_install_ttl_ms = 400});
    struct rv_gh_token tok;
    struct rv_sync_error err = {0};
    CHECK(rv_ghauth_has_pat(a));
    rv_ghauth_prefer_pat(a, "ACME/Secret", true);
    CHECK_INT(rv_ghauth_token(a, "acme/secret", NULL, NULL, &tok, &err), RV_OK);
    CHECK_STR(tok.value, PAT);
    CHECK_INT(tok.installation_id, 0);
    CHECK_INT(rv_ghauth_token(a, "acme/widgets", NULL, NULL, &tok, &err),
              RV_OK);
    CHECK_INT(tok.installation_id, 101);
    rv_ghauth_prefer_pat(a, "acme/secret", false);
    CHECK_INT(rv_ghauth_token(a, "acme/secret", NULL, NULL, &tok, &err), RV_OK);
    CHECK_INT(tok.installation_id, 101);
    rv_ghauth_prefer_pat(a, "acme/secret", true);
    rv_ghauth_prefer_pat(a, "acme", true); /* an owner alone: ignored */
    CHECK_INT(rv_ghauth_token(a, "acme", NULL, NULL, &tok, &err), RV_OK);
    CHECK_INT(tok.installation_id, 101);
    rvt_sleep_ms(500);
    CHECK_INT(rv_ghauth_token(a, "acme/secret", NULL, NULL, &tok, &err), RV_OK);
    CHECK_INT(tok.installation_id, 101);
    /* More pins than slots: the oldest go, nothing breaks. */
    for (int i = 0; i < RV_GHAUTH_SLOTS + 5; i++) {
        char name[64];
        snprintf(name, sizeof(name), "acme/r%d", i);
        rv_ghauth_prefer_pat(a, name, true);
    }
    CHECK_INT(rv_ghauth_token(a, "acme/r0", NULL, NULL, &tok, &err), RV_OK);
    CHECK_INT(tok.installation_id, 101);
    CHECK_INT(rv_ghauth_token(a, "acme/r68", NULL, NULL, &tok, &err), RV_OK);
    CHECK_STR(tok.value, PAT);
    rv_ghauth_free(a);
    CHECK(!rv_ghauth_has_pat(NULL));
    rv_ghapp_free(&app);
}

/* Renewal finds the installation gone (404): the old token, though not
 * expired, is not served; the PAT is, and the owner is looked up again. */
static void test_an_installation_gone_at_renewal_drops_its_token(void)
{
    struct rv_ghapp app;
    CHECK(load_app(&app));
    CHECK_INT(configure_app(3600, 0, pub_path), 0);
    clear_requests();
    /* A margin longer than the token's life: every call renews. */
    struct rv_ghauth *a =
        rv_ghauth_new(&(struct rv_ghauth_opts){.rest_url = rest,
                                               .pat = PAT,
                                               .app = &app,
                                               .timeout_s = 5,
                                               .renew_before_ms = 4000 * 1000});
    struct rv_gh_token tok;
    struct rv_sync_error err = {0};
    CHECK_INT(rv_ghauth_token(a, "acme/widgets", NULL, NULL, &tok, &err),
              RV_OK);
    CHECK_INT(tok.installation_id, 101);
    CHECK_INT(control("{\"app\":{\"id\":\"%d\",\"publicKeyPath\":\"%s\","
                      "\"installations\":{}}}",
                      APP_ID, pub_path),
              0);
    CHECK_INT(rv_ghauth_token(a, "acme/widgets", NULL, NULL, &tok, &err),
              RV_OK);
    CHECK_STR(tok.value, PAT);
    CHECK_STR(tok.identity, "pat");
    CHECK_INT(tok.installation_id, 0);
    CHECK_INT(err.code, RV_OK);
    CHECK_INT(count_requests("access_tokens", NULL), 2);
    CHECK_INT(count_requests("installation", NULL), 1);
    /* Looked up again: no installation now, so the PAT stays. */
    CHECK_INT(rv_ghauth_token(a, "acme/widgets", NULL, NULL, &tok, &err),
              RV_OK);
    CHECK_STR(tok.value, PAT);
    CHECK_INT(count_requests("installation", NULL), 2);
    CHECK_INT(count_requests("access_tokens", NULL), 2);
    rv_ghauth_free(a);
    rv_ghapp_free(&app);
    CHECK_INT(configure_app(3600, 0, pub_path), 0);
}

static void test_names_from_urls(void)
{
    char buf[256];
    CHECK_INT(rv_ghauth_name_from_url("https://github.com/acme/widgets.git",
                                      "github.com", buf, sizeof(buf)),
              0);
    CHECK_STR(buf, "acme/widgets");
    CHECK_INT(rv_ghauth_name_from_url("https://x@github.com/acme/w/",
                                      "github.com", buf, sizeof(buf)),
              0);
    CHECK_STR(buf, "acme/w");
    CHECK_INT(rv_ghauth_name_from_url("https://gitlab.com/acme/widgets",
                                      "github.com", buf, sizeof(buf)),
              -1);
    CHECK_INT(rv_ghauth_name_from_url("ssh://git@github.com/acme/widgets",
                                      "github.com", buf, sizeof(buf)),
              -1);
    CHECK_INT(
        rv_ghauth_rest_url("https://ghe.example.com/api/v3/", buf, sizeof(buf)),
        RV_OK);
    CHECK_STR(buf, "https://ghe.example.com/api/v3");
    CHECK_INT(rv_ghauth_rest_url(NULL, buf, sizeof(buf)), RV_OK);
    CHECK_STR(buf, "https://api.github.com");
}

/* ---- the worker --------------------------------------------------------- */

static void add_repo(const char *id, const char *github)
{
    char path[600], err[256];
    snprintf(path, sizeof(path), "%s/repo", tmp);
    struct rv_repo_spec spec = {.id = id, .url = path, .github = github};
    CHECK_INT(rv_registry_add(&conn, &spec, err, sizeof(err)), RV_OK);
}

static bool wait_requests(const char *kind, const char *auth, int want)
{
    for (int i = 0; i < 400; i++) {
        if (count_requests(kind, auth) >= want)
            return true;
        rvt_sleep_ms(50);
    }
    fprintf(stderr, "no %d %s requests (%s) at the fake\n", want, kind,
            auth ? auth : "any");
    return false;
}

static void test_the_worker_syncs_prs_through_the_app(void)
{
    CHECK_INT(configure_app(3600, 0, pub_path), 0);
    CHECK_INT(control("{\"repo\":\"acme/widgets\",\"scenario\":\"ok\","
                      "\"prs\":[{\"number\":12,\"headRef\":\"main\"}]}"),
              0);
    CHECK_INT(control("{\"repo\":\"solo/thing\",\"scenario\":\"mixed\"}"), 0);
    clear_requests();
    char prefix[600];
    snprintf(prefix, sizeof(prefix), "%s/worker", tmp);
    add_repo("widgets", "acme/widgets");
    add_repo("thing", "solo/thing");
    worker = rvt_fake_github_worker(&fake, redis.url, prefix, PAT, APP_ID,
                                    key_path, NULL);
    CHECK(rvt_wait_field(&conn, "widgets", "pr_sync_status", "idle", 30000));
    CHECK(rvt_wait_field(&conn, "thing", "pr_sync_status", "idle", 30000));
    CHECK(
        rvt_wait_field(&conn, "widgets", "branch_sync_status", "idle", 30000));
    json_t *ov = rvt_overview(&conn, "widgets");
    CHECK_INT(json_array_size(json_object_get(ov, "pullRequests")), 1);
    json_decref(ov);
    ov = rvt_overview(&conn, "thing");
    CHECK_INT(json_array_size(json_object_get(ov, "pullRequests")), 8);
    json_decref(ov);
    /* acme's PRs through the installation, solo's with GITHUB_TOKEN. */
    CHECK(count_requests("graphql", "installation") >= 1);
    CHECK(count_requests("graphql", "pat") >= 1);
    CHECK_INT(count_requests("graphql", "bad-installation"), 0);
    CHECK_INT(count_requests("access_tokens", NULL), 1);
}

static void test_a_refused_token_is_renewed_once_and_the_sync_succeeds(void)
{
    CHECK_INT(control("{\"revokeTokens\":true}"), 0);
    clear_requests();
    rv_refresh_outcome outcome;
    CHECK_INT(rv_registry_refresh(&conn, "widgets", RV_KIND_PRS, RV_REASON_USER,
                                  &outcome),
              RV_OK);
    CHECK(wait_requests("graphql", "installation", 1));
    CHECK(rvt_wait_field(&conn, "widgets", "pr_sync_status", "idle", 20000));
    CHECK_INT(count_requests("graphql", "bad-installation"), 1);
    CHECK_INT(count_requests("access_tokens", NULL), 1);
    char buf[512];
    CHECK_STR(
        rvt_meta_field(&conn, "widgets", "pr_sync_error", buf, sizeof(buf)),
        "");
}

/* acme's installation covers widgets only: a repo outside it answers
 * not_found to the installation token, is synced with GITHUB_TOKEN right
 * away, and keeps the PAT for its next syncs. A repo the PAT cannot see
 * either fails not_found and goes back to the installation. */
static void test_a_repo_outside_a_selected_installation_uses_the_pat(void)
{
    CHECK_INT(control("{\"app\":{\"id\":\"%d\",\"publicKeyPath\":\"%s\","
                      "\"installations\":{\"acme\":101},"
                      "\"selected\":{\"acme\":[\"widgets\"]}}}",
                      APP_ID, pub_path),
              0);
    CHECK_INT(control("{\"repo\":\"acme/secret\",\"scenario\":\"mixed\"}"), 0);
    clear_requests();
    add_repo("secret", "acme/secret");
    CHECK(rvt_wait_field(&conn, "secret", "pr_sync_status", "idle", 30000));
    json_t *ov = rvt_overview(&conn, "secret");
    CHECK_INT(json_array_size(json_object_get(ov, "pullRequests")), 8);
    json_decref(ov);
    char buf[512];
    CHECK_STR(
        rvt_meta_field(&conn, "secret", "pr_sync_error", buf, sizeof(buf)), "");
    CHECK_INT(count_graphql("secret", "installation", true), 1);
    CHECK(count_graphql("secret", "pat", false) >= 1);

    /* The next sync goes to the PAT without asking the installation. */
    int pats = count_graphql("secret", "pat", false);
    rv_refresh_outcome outcome;
    CHECK_INT(rv_registry_refresh(&conn, "secret", RV_KIND_PRS, RV_REASON_USER,
                                  &outcome),
              RV_OK);
    for (int i = 0; i < 400 && count_graphql("secret", "pat", false) <= pats;
         i++)
        rvt_sleep_ms(50);
    CHECK_INT(count_graphql("secret", "pat", false), pats + 1);
    CHECK_INT(count_graphql("secret", "installation", true), 1);

    /* ghost exists for neither token. */
    add_repo("ghost", "acme/ghost");
    CHECK(rvt_wait_field(&conn, "ghost", "pr_sync_status", "error", 30000));
    CHECK(rvt_contains(
        rvt_meta_field(&conn, "ghost", "pr_sync_error", buf, sizeof(buf)),
        "not_found"));
    CHECK_INT(count_graphql("ghost", "installation", true), 1);
    CHECK_INT(count_graphql("ghost", "pat", false), 1);
    CHECK_INT(rv_registry_refresh(&conn, "ghost", RV_KIND_PRS, RV_REASON_USER,
                                  &outcome),
              RV_OK);
    for (int i = 0; i < 400 && count_graphql("ghost", "pat", false) < 2; i++)
        rvt_sleep_ms(50);
    CHECK_INT(count_graphql("ghost", "installation", true), 2);
    CHECK_INT(count_graphql("ghost", "pat", false), 2);
    /* widgets, inside the selection, stays on the installation. */
    CHECK_INT(count_graphql("widgets", "pat", false), 0);
    CHECK_INT(configure_app(3600, 0, pub_path), 0);
}

static void test_tokens_and_key_appear_nowhere(void)
{
    if (worker > 0) {
        rvt_stop_process(worker, 10000);
        worker = 0;
    }
    char log[600];
    snprintf(log, sizeof(log), "%s/worker.log", tmp);
    char *text = rvt_slurp(log);
    char *key = rvt_slurp(key_path);
    struct rvt_text t = {0};
    size_t keys = rvt_redis_all_values(&conn, &t, true);
    CHECK(keys > 3);
    CHECK(rvt_text_has(&t, "widgets"));
    CHECK(rvt_contains(text, "GitHub App installation token issued"));
    json_t *tokens = fake_get("/_tokens");
    CHECK(json_array_size(tokens) >= 2);
    size_t i;
    json_t *v;
    json_array_foreach(tokens, i, v)
    {
        const char *tk = json_string_value(v);
        CHECK(!rvt_contains(text, tk));
        CHECK(!rvt_text_has(&t, tk));
    }
    json_decref(tokens);
    CHECK(!rvt_contains(text, PAT));
    CHECK(!rvt_text_has(&t, PAT));
    CHECK(!rvt_contains(text, "PRIVATE KEY"));
    CHECK(!rvt_contains(text, "eyJ")); /* no JWT either */
    /* A line from the middle of the key's PEM body. */
    char *line = key ? strchr(key, '\n') : NULL;
    if (line) {
        char piece[65] = "";
        rv_strlcpy(piece, line + 1, sizeof(piece));
        piece[strcspn(piece, "\n")] = '\0';
        CHECK(strlen(piece) >= 40);
        CHECK(!rvt_contains(text, piece));
        CHECK(!rvt_text_has(&t, piece));
    }
    free(t.s);
    free(key);
    free(text);
}

int main(void)
{
    tmp = rvt_tmpdir("rvtest-ghapp");
    if (tmp) {
        snprintf(key_path, sizeof(key_path), "%s/key.pem", tmp);
        snprintf(pub_path, sizeof(pub_path), "%s/pub.pem", tmp);
    }
    if (!tmp || rvt_redis_start(&redis, NULL) != 0 ||
        rvt_redis_connect(&redis, &conn) != 0 ||
        rvt_sh(NULL,
               "set -e; cd '%s'; umask 077;"
               "openssl genrsa -out key.pem 2048 2>/dev/null;"
               "openssl rsa -in key.pem -pubout -out pub.pem 2>/dev/null;"
               "openssl rsa -in key.pem -traditional -out key-pkcs1.pem "
               "2>/dev/null;"
               "openssl genrsa -out other.pem 2048 2>/dev/null;"
               "openssl rsa -in other.pem -pubout -out other.pub 2>/dev/null;"
               "openssl ecparam -genkey -name prime256v1 -out ec.pem;"
               "echo 'not a key' > garbage.pem;"
               "git init -q -b main repo; cd repo;"
               "git -c user.name=T -c user.email=t@x commit -q "
               "--allow-empty -m one",
               tmp) != 0 ||
        rvt_fake_github_start(&fake, PAT) != 0) {
        fprintf(stderr, "cannot set up (redis, openssl, git or the fake)\n");
        return 1;
    }
    snprintf(rest, sizeof(rest), "http://127.0.0.1:%d", fake.port);
    CHECK_INT(configure_app(3600, 0, pub_path), 0);
    RUN(test_the_jwt_is_rs256_with_the_claims_github_wants);
    RUN(test_the_fake_verifies_the_jwt);
    RUN(test_bad_key_files_are_refused_with_the_reason);
    RUN(test_an_installation_token_is_exchanged_and_kept);
    RUN(test_a_token_is_renewed_before_it_expires);
    RUN(test_an_owner_without_the_app_gets_github_token);
    RUN(test_a_failed_exchange_is_a_sync_error);
    RUN(test_an_owner_alone_finds_an_org_or_a_user_installation);
    RUN(test_a_repo_can_prefer_the_pat_for_a_while);
    RUN(test_an_installation_gone_at_renewal_drops_its_token);
    RUN(test_names_from_urls);
    RUN(test_the_worker_syncs_prs_through_the_app);
    RUN(test_a_refused_token_is_renewed_once_and_the_sync_succeeds);
    RUN(test_a_repo_outside_a_selected_installation_uses_the_pat);
    RUN(test_tokens_and_key_appear_nowhere);
    if (worker > 0)
        rvt_stop_process(worker, 10000);
    rvt_fake_github_stop(&fake);
    return rvt_finish(&conn, &redis, tmp);
}

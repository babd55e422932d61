/* See ghapp.h. The key is read and the JWT signed with OpenSSL's EVP
 * interface (PEM_read_bio_PrivateKey, EVP_DigestSign with SHA-256): no
 * RSA or hashing of our own. */
#include "worker/ghapp.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"

/* An encrypted key would make OpenSSL ask for a passphrase on the
 * terminal; a service has none to give, so it is refused instead. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int rv_ghapp_load(struct rv_ghapp *app, int64_t app_id, const char *key_path,
                  char *err, size_t errlen)
{
    static const char setting[] =
        "REPOVIEW_GITHUB_APP_KEY_FILE (--github-app-key-file)";
    memset(app, 0, sizeof(*app));
    if (app_id <= 0) {
        snprintf(err, errlen,
                 "REPOVIEW_GITHUB_APP_ID (--github-app-id) is needed with %s",
                 setting);
        return RV_ERR_CONFIG;
    }
    if (!key_path || !*key_path) {
        snprintf(err, errlen,
                 "%s is needed with REPOVIEW_GITHUB_APP_ID (--github-app-id)",
                 setting);
        return RV_ERR_CONFIG;
    }
    FILE *f = fopen(key_path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open %s: %s", setting, key_path,
                 strerror(errno));
        return RV_ERR_CONFIG;
    }
    /* Unbuffered, so the key's text is not left behind in a stdio buffer
     * that fclose frees uncleared. What OpenSSL's PEM decoder holds while
     * it reads is its own (3.x reads private keys with PEM_FLAG_SECURE,
     * clearing that memory); we keep no copy of the text. */
    setvbuf(f, NULL, _IONBF, 0);
    BIO *bio = BIO_new_fp(f, BIO_CLOSE);
    if (!bio) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return RV_ERR_CONFIG;
    }
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    /* OpenSSL's own reason would only say which PEM line it disliked. */
    ERR_clear_error();
    if (!key) {
        snprintf(err, errlen,
                 "%s: %s does not hold an unencrypted PEM private key (the "
                 "\".pem\" file GitHub offers for the App)",
                 setting, key_path);
        return RV_ERR_CONFIG;
    }
    if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
        EVP_PKEY_free(key);
        snprintf(err, errlen,
                 "%s: the key in %s is not an RSA key (GitHub Apps sign "
                 "with RS256)",
                 setting, key_path);
        return RV_ERR_CONFIG;
    }
    app->app_id = app_id;
    app->key = key;
    return RV_OK;
}

void rv_ghapp_free(struct rv_ghapp *app)
{
    if (!app)
        return;
    EVP_PKEY_free(app->key);
    app->key = NULL;
}

size_t rv_ghapp_base64url(const unsigned char *in, size_t n, char *out)
{
    int len = n ? EVP_EncodeBlock((unsigned char *)out, in, (int)n) : 0;
    out[len] = '\0';
    while (len > 0 && out[len - 1] == '=')
        out[--len] = '\0';
    for (int i = 0; i < len; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    return (size_t)len;
}

int rv_ghapp_jwt(const struct rv_ghapp *app, int64_t now_s, char **out)
{
    static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    char payload[128];
    *out = NULL;
    if (!app || !app->key)
        return RV_ERR_INVALID;
    int plen = snprintf(payload, sizeof(payload),
                        "{\"iat\":%lld,\"exp\":%lld,\"iss\":\"%lld\"}",
                        (long long)(now_s - RV_GHAPP_JWT_BACKDATE_S),
                        (long long)(now_s + RV_GHAPP_JWT_LIFETIME_S),
                        (long long)app->app_id);
    if (plen < 0 || (size_t)plen >= sizeof(payload))
        return RV_ERR_INVALID;
    size_t sig_max = (size_t)EVP_PKEY_get_size(app->key);
    size_t hlen = sizeof(header) - 1;
    /* header.payload.signature, each base64url. */
    size_t cap = 4 * ((hlen + 2) / 3) + 4 * (((size_t)plen + 2) / 3) +
                 4 * ((sig_max + 2) / 3) + 3;
    char *jwt = malloc(cap);
    unsigned char *sig = malloc(sig_max);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = RV_ERR_NOMEM;
    if (!jwt || !sig || !md)
        goto out;
    size_t n = rv_ghapp_base64url((const unsigned char *)header, hlen, jwt);
    jwt[n++] = '.';
    n += rv_ghapp_base64url((const unsigned char *)payload, (size_t)plen,
                            jwt + n);
    size_t siglen = sig_max;
    rc = RV_ERR_INVALID;
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, app->key) != 1 ||
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)jwt, n) != 1) {
        ERR_clear_error();
        goto out;
    }
    jwt[n++] = '.';
    rv_ghapp_base64url(sig, siglen, jwt + n);
    *out = jwt;
    jwt = NULL;
    rc = RV_OK;
out:
    EVP_MD_CTX_free(md);
    free(sig);
    if (jwt) {
        explicit_bzero(jwt, cap);
        free(jwt);
    }
    return rc;
}

/*
 * A GitHub App's own credential: its id and RSA private key, and the JSON
 * Web Token (RS256) it signs to speak as the App. The JWT only serves to
 * find installations and to exchange them for installation tokens
 * (ghauth.h); it is never logged and lives for at most ten minutes.
 */
#ifndef REPOVIEW_WORKER_GHAPP_H
#define REPOVIEW_WORKER_GHAPP_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

/* GitHub takes a JWT whose exp is at most 10 minutes after its iat. iat
 * is set 60 s in the past against clock drift, exp 9 minutes ahead. */
#define RV_GHAPP_JWT_BACKDATE_S 60
#define RV_GHAPP_JWT_LIFETIME_S 540

struct rv_ghapp {
    int64_t app_id; /* the App's id (the JWT's iss) */
    EVP_PKEY *key;  /* the RSA private key; owned, rv_ghapp_free */
};

/* Reads the PEM RSA private key at key_path for App app_id into app. The
 * file must be readable and hold an unencrypted RSA private key (PKCS#1
 * "BEGIN RSA PRIVATE KEY" or PKCS#8 "BEGIN PRIVATE KEY"). Returns RV_OK,
 * or RV_ERR_CONFIG with a sentence naming the setting and the path in err
 * (never any of the key's content). */
int rv_ghapp_load(struct rv_ghapp *app, int64_t app_id, const char *key_path,
                  char *err, size_t errlen);

/* Releases the key (OpenSSL clears it). app may be NULL. */
void rv_ghapp_free(struct rv_ghapp *app);

/* Signs a JWT for app at now_s (Unix seconds): header
 * {"alg":"RS256","typ":"JWT"}, payload {"iat":now-60,"exp":now+540,
 * "iss":"<app id>"}, each base64url without padding. On RV_OK *out is a
 * malloc'd string the caller clears with explicit_bzero and frees. Returns
 * RV_OK, RV_ERR_NOMEM or RV_ERR_INVALID (OpenSSL refused to sign). */
int rv_ghapp_jwt(const struct rv_ghapp *app, int64_t now_s, char **out);

/* Encodes n bytes as base64url without padding into out, which has room
 * for 4 * ((n + 2) / 3) + 1 bytes; returns the length written. */
size_t rv_ghapp_base64url(const unsigned char *in, size_t n, char *out);

#endif

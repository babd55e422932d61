/*
 * The token holder: which credential a worker sends to GitHub for a repo
 * or an owner. With a GitHub App (ghapp.h) configured, an owner the App is
 * installed on gets an installation token: the installation is looked up
 * once per owner (as the App: GET /repos/{owner}/{repo}/installation for
 * a repo; GET /orgs/{owner}/installation, then on 404
 * GET /users/{owner}/installation, for an owner alone), the token
 * exchanged for it (POST /app/installations/{id}/access_tokens, valid an
 * hour) and kept in this process's memory only, renewed 5 minutes before
 * it expires or when GitHub refuses it (rv_ghauth_drop). An owner without
 * the App (404), an installation gone at renewal (404), and every repo
 * when there is no App, get GITHUB_TOKEN; the 404 of a lookup is
 * remembered for a while so it is not asked every sync. A repo that an
 * installation on selected repositories cannot see can be pinned to the
 * PAT for as long (rv_ghauth_prefer_pat).
 *
 * Tokens are never written to Redis, logs or error messages. What is
 * cleared with explicit_bzero: the holder's copy when dropped, renewed or
 * evicted, the buffer the exchange answer was read into, jansson's string
 * of the token in the parsed answer, and the Authorization header lines
 * (github_http.c). What is not: copies libcurl makes inside its own
 * request and receive buffers, and the scratch copy jansson's parser
 * makes of each string while it reads; both are freed without clearing.
 * A holder belongs to one thread (the job loop); it takes no lock.
 */
#ifndef REPOVIEW_WORKER_GHAUTH_H
#define REPOVIEW_WORKER_GHAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/ghapp.h"
#include "worker/sync.h"

/* An installation token is renewed this long before its expires_at. */
#define RV_GHAUTH_RENEW_BEFORE_MS (5 * 60 * 1000)
/* An owner without the App is asked about again after this; a repo
 * pinned to the PAT (rv_ghauth_prefer_pat) goes back after it too. */
#define RV_GHAUTH_NO_INSTALL_TTL_MS (10 * 60 * 1000)
/* Owners remembered at once; the least recently used is forgotten. */
#define RV_GHAUTH_SLOTS 64

struct rv_ghauth_opts {
    /* REST base URL without trailing slash (rv_ghauth_rest_url). Copied. */
    const char *rest_url;
    /* GITHUB_TOKEN; NULL or "" = none. Borrowed for the holder's life. */
    const char *pat;
    /* The App; NULL = none (every repo gets the PAT). Borrowed. */
    const struct rv_ghapp *app;
    /* Seconds one request may take (<= 0: 30). */
    int timeout_s;
    /* 0 = RV_GHAUTH_RENEW_BEFORE_MS, RV_GHAUTH_NO_INSTALL_TTL_MS. */
    int64_t renew_before_ms, no_install_ttl_ms;
};

/* The credential for one request. */
struct rv_gh_token {
    /* The token; NULL when there is none. Borrowed from the holder until
     * its next call. */
    const char *value;
    /* Which budget it spends: the installation id in decimal, "pat", or
     * "" (no token). Stable while the installation is. */
    char identity[24];
    /* The installation it belongs to; 0 for the PAT or none. */
    int64_t installation_id;
};

struct rv_ghauth;

/* A new holder (the caller frees it with rv_ghauth_free), or NULL when
 * out of memory or rest_url is missing. */
struct rv_ghauth *rv_ghauth_new(const struct rv_ghauth_opts *opts);

/* Clears every token and frees the holder. a may be NULL. */
void rv_ghauth_free(struct rv_ghauth *a);

/* The token for repository owner_name ("owner/name"), or for an owner's
 * own calls when owner_name is a login without a slash (an org sync);
 * NULL or not a GitHub name: the PAT, no App. May call GitHub (lookup,
 * exchange). repo_id and job_id are for log lines (may be NULL). Returns
 * RV_OK with *tok filled, or a failure with err filled: unauthorized (the
 * App's JWT or the exchange refused), rate_limited, github_unavailable,
 * bad_response; the rv_err is RV_ERR_HTTP, RV_ERR_TIMEOUT, RV_ERR_DECODE,
 * RV_ERR_TOO_LARGE or RV_ERR_NOMEM. */
int rv_ghauth_token(struct rv_ghauth *a, const char *owner_name,
                    const char *repo_id, const char *job_id,
                    struct rv_gh_token *tok, struct rv_sync_error *err);

/* Forgets the installation token of owner_name's owner ("owner/name" or
 * "owner"; GitHub refused it), so the next rv_ghauth_token exchanges a
 * new one. */
void rv_ghauth_drop(struct rv_ghauth *a, const char *owner_name);

/* Whether the holder has a GITHUB_TOKEN to fall back on. a may be NULL. */
bool rv_ghauth_has_pat(const struct rv_ghauth *a);

/* With prefer, rv_ghauth_token hands out the PAT for repository
 * owner_name ("owner/name") for the next RV_GHAUTH_NO_INSTALL_TTL_MS (the
 * holder's no_install_ttl_ms): its owner's installation, limited to
 * selected repositories, answered not_found for it. Without, the
 * installation token serves it again. The RV_GHAUTH_SLOTS most recent
 * repos are remembered. */
void rv_ghauth_prefer_pat(struct rv_ghauth *a, const char *owner_name,
                          bool prefer);

/* The REST base for api_url (NULL or "" = https://api.github.com) without
 * trailing slashes: GitHub's API URL is its REST base already
 * (https://api.github.com, https://ghe.example.com/api/v3). RV_OK or
 * RV_ERR_TOO_LARGE (buf then ""). */
int rv_ghauth_rest_url(const char *api_url, char *buf, size_t size);

/* "owner/name" of url when it is https://<host>/owner/name[.git][/] on
 * host (rv_mirror_token_host), into buf; -1 when it is not. */
int rv_ghauth_name_from_url(const char *url, const char *host, char *buf,
                            size_t size);

#endif

/*
 * Credentials a browser can carry: the dashboard's session cookie
 * (POST /v1/session) and short-lived stream tokens for a cross-origin
 * EventSource (POST /v1/stream-tokens), which cannot send headers.
 *
 * Both are "<kind>.<token id>.<expiry>.<signature>": the id is the first
 * 16 hex digits of the token's SHA-256, the expiry a Unix time, and the
 * signature HMAC-SHA256 over the kind, the token's whole hash and the
 * expiry, keyed with REPOVIEW_SESSION_SECRET (or a random key of this
 * process). A removed token's sessions end with it: its hash is no longer
 * there to sign against. Neither form holds the token itself.
 */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "common/errors.h"
#include "common/log.h"
#include "common/util.h"

#define SESSION_COOKIE "repoview_session"
#define SESSION_KIND "s1"
#define STREAM_KIND "t1"
/* How long a dashboard session and a stream token last. */
#define SESSION_SECONDS (12 * 3600)
#define STREAM_TOKEN_SECONDS 300
/* "t1." + 16 + "." + 20 digits + "." + 64, with room. */
#define SIGNED_MAX 128

int api_session_init(struct api *api, char *err, size_t errlen)
{
    const char *secret = api->cfg->session_secret;
    if (secret && *secret) {
        /* A fixed key, so that every API instance behind one name accepts
         * the others' sessions. */
        SHA256((const unsigned char *)secret, strlen(secret), api->tokens.key);
        return RV_OK;
    }
    if (RAND_bytes(api->tokens.key, sizeof(api->tokens.key)) != 1) {
        snprintf(err, errlen, "cannot draw a random session key");
        return RV_ERR_CONFIG;
    }
    return RV_OK;
}

/* The signature of kind, tok and exp, as 64 hex digits. */
static bool sign(const struct api *api, const char *kind,
                 const struct api_token *tok, int64_t exp, char out[65])
{
    char hash[65], msg[128];
    rv_hex_encode(tok->hash, 32, hash);
    int n = snprintf(msg, sizeof(msg), "%s.%s.%" PRId64, kind, hash, exp);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (n < 0 || (size_t)n >= sizeof(msg) ||
        !HMAC(EVP_sha256(), api->tokens.key, sizeof(api->tokens.key),
              (const unsigned char *)msg, (size_t)n, mac, &maclen) ||
        maclen != 32)
        return false;
    rv_hex_encode(mac, 32, out);
    return true;
}

/* Makes "<kind>.<id>.<exp>.<sig>" for tok, valid for ttl seconds. */
static bool mint(const struct api *api, const char *kind,
                 const struct api_token *tok, int64_t ttl, char *out,
                 size_t size, int64_t *exp_out)
{
    char id[33], sig[65];
    int64_t exp = (int64_t)time(NULL) + ttl;
    rv_hex_encode(tok->hash, 8, id);
    if (!sign(api, kind, tok, exp, sig))
        return false;
    int n = snprintf(out, size, "%s.%s.%" PRId64 ".%s", kind, id, exp, sig);
    if (exp_out)
        *exp_out = exp;
    return n > 0 && (size_t)n < size;
}

/* Checks a signed credential of kind; *tok is its token. RV_OK, or
 * RV_ERR_INVALID for anything else (malformed, expired, forged, a token
 * that is gone). */
static int verify(const struct api *api, const char *kind, const char *s,
                  size_t len, const struct api_token **tok)
{
    char buf[SIGNED_MAX];
    size_t klen = strlen(kind);
    if (len >= sizeof(buf) || len < klen + 1 || strncmp(s, kind, klen) != 0 ||
        s[klen] != '.')
        return RV_ERR_INVALID;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *id = buf + klen + 1;
    char *dot = strchr(id, '.');
    if (!dot || dot - id != 16)
        return RV_ERR_INVALID;
    *dot = '\0';
    char *exps = dot + 1;
    char *sig = strchr(exps, '.');
    if (!sig)
        return RV_ERR_INVALID;
    *sig++ = '\0';
    int64_t exp;
    if (rv_parse_i64(exps, 1, INT64_MAX / 2, &exp) != 0 || strlen(sig) != 64 ||
        exp < (int64_t)time(NULL))
        return RV_ERR_INVALID;
    const struct api_tokens *t = &api->tokens;
    const struct api_token *found = NULL;
    for (size_t i = 0; i < t->n; i++) {
        char tid[17], want[65];
        rv_hex_encode(t->items[i].hash, 8, tid);
        if (strcmp(tid, id) != 0 || !sign(api, kind, &t->items[i], exp, want))
            continue;
        if (CRYPTO_memcmp(want, sig, 64) == 0 && !found)
            found = &t->items[i];
    }
    if (!found)
        return RV_ERR_INVALID;
    *tok = found;
    return RV_OK;
}

int api_session_from_cookie(const struct api *api, struct evhttp_request *req,
                            const struct api_token **tok)
{
    const char *h =
        evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");
    if (!h || api->tokens.n == 0)
        return RV_ERR_NOT_FOUND;
    /* "a=b; c=d": the one of ours. */
    const char *p = h;
    size_t nlen = strlen(SESSION_COOKIE);
    while (*p) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nlen && strncmp(p, SESSION_COOKIE, nlen) == 0 &&
            p[nlen] == '=')
            return verify(api, SESSION_KIND, p + nlen + 1, len - nlen - 1, tok);
        p += len;
    }
    return RV_ERR_NOT_FOUND;
}

int api_stream_token_check(const struct api *api, const char *s,
                           const struct api_token **tok)
{
    return verify(api, STREAM_KIND, s, strlen(s), tok);
}

/* ---- handlers ---- */

static json_t *session_json(const struct api_call *call)
{
    const struct api_principal *who = &call->who;
    const char *scope = api_scope_name(who->scope);
    json_t *patterns = json_array();
    if (who->token)
        for (size_t i = 0; patterns && i < who->token->npatterns; i++)
            json_array_append_new(patterns,
                                  json_string(who->token->patterns[i]));
    return json_pack("{s:s?,s:s?,s:o,s:b,s:b}", "scope", scope, "via", who->via,
                     "repos", patterns ? patterns : json_null(),
                     "tokensConfigured", call->api->tokens.n > 0, "readOpen",
                     call->api->tokens.read_open);
}

/* GET /v1/session: what the request's credentials allow, so that the
 * dashboard knows whether to ask for a token. */
void api_session_get(struct api_call *call)
{
    api_reply_json(call, 200, session_json(call));
}

/* The cookie's attributes; Secure when a proxy says it serves HTTPS. */
static void set_cookie(struct api_call *call, const char *value,
                       int64_t max_age)
{
    const char *proto = evhttp_find_header(
        evhttp_request_get_input_headers(call->req), "X-Forwarded-Proto");
    bool secure = proto && strcmp(proto, "https") == 0;
    char cookie[SIGNED_MAX + 160];
    snprintf(cookie, sizeof(cookie),
             SESSION_COOKIE "=%s; Path=/; Max-Age=%" PRId64
                            "; HttpOnly; SameSite=Strict%s",
             value, max_age, secure ? "; Secure" : "");
    evhttp_add_header(evhttp_request_get_output_headers(call->req),
                      "Set-Cookie", cookie);
}

/* POST /v1/session {"token":"..."}: a valid token gets the cookie. */
void api_session_post(struct api_call *call)
{
    struct api *api = call->api;
    if (api->tokens.n == 0) {
        api_reply_error(call, 409, "conflict",
                        "no tokens are configured: there is nothing to sign "
                        "in to");
        return;
    }
    size_t len = 0;
    char *body = api_json_body(call, API_MAX_BODY, &len);
    if (!body)
        return;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    free(body);
    const char *text = json_string_value(json_object_get(doc, "token"));
    if (!json_is_object(doc) || !text || json_object_size(doc) != 1) {
        json_decref(doc);
        api_reply_error(call, 400, "invalid",
                        "the body must be {\"token\":\"...\"}");
        return;
    }
    if (api_authfail_refuse(call)) {
        json_decref(doc);
        return;
    }
    const struct api_token *tok = api_token_find(
        &api->tokens, text, json_string_length(json_object_get(doc, "token")));
    json_decref(doc);
    char value[SIGNED_MAX];
    if (!tok) {
        api_authfail_count(call);
        LOG(RV_LOG_INFO, NULL, NULL, "sign-in refused: unknown token");
        evhttp_add_header(evhttp_request_get_output_headers(call->req),
                          "WWW-Authenticate", "Bearer");
        api_reply_error(call, 401, "unauthorized", "not a valid token");
        return;
    }
    if (!mint(api, SESSION_KIND, tok, SESSION_SECONDS, value, sizeof(value),
              NULL)) {
        api_reply_error(call, 500, "internal", "cannot sign a session");
        return;
    }
    LOG(RV_LOG_INFO, NULL, NULL, "signed in with the token of %s", tok->label);
    set_cookie(call, value, SESSION_SECONDS);
    call->who.token = tok;
    call->who.scope = tok->scope;
    call->who.via = "cookie";
    api_reply_json(call, 200, session_json(call));
}

/* DELETE /v1/session: signs out (the cookie goes). */
void api_session_delete(struct api_call *call)
{
    set_cookie(call, "", 0);
    api_reply_bytes(call, 204, NULL, NULL, 0);
}

/* POST /v1/stream-tokens: a token for ?access_token= on the SSE routes,
 * with the scope and repos of the caller's token. */
void api_stream_tokens_post(struct api_call *call)
{
    const struct api_token *tok = call->who.token;
    if (!tok) {
        api_reply_error(call, 409, "conflict",
                        call->api->tokens.n
                            ? "a stream token is made from a token; "
                              "authenticate with one"
                            : "no tokens are configured: streams need none");
        return;
    }
    char value[SIGNED_MAX];
    int64_t exp = 0;
    if (!mint(call->api, STREAM_KIND, tok, STREAM_TOKEN_SECONDS, value,
              sizeof(value), &exp)) {
        api_reply_error(call, 500, "internal", "cannot sign a token");
        return;
    }
    api_reply_json(call, 201,
                   json_pack("{s:s,s:I,s:i}", "token", value, "expiresAt",
                             (json_int_t)exp, "expiresIn",
                             STREAM_TOKEN_SECONDS));
}

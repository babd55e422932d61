/*
 * Who may do what: the tokens (REPOVIEW_TOKENS_FILE and
 * REPOVIEW_API_TOKEN), the principal of each request, and the check the
 * dispatcher makes before a handler runs.
 *
 * A token is kept only as the SHA-256 of its text, and a presented token
 * is hashed and compared with every stored hash in constant time, so
 * neither the file nor the timing tells a token. A request names its
 * token with `Authorization: Bearer`, with the dashboard's session cookie
 * or, on SSE routes only, with a short-lived stream token in
 * ?access_token= (session.c signs both). Without any configured token the
 * API is what it always was on loopback: open. With tokens, reads need one
 * too unless REPOVIEW_READ_OPEN, and a token with repo patterns sees only
 * the repos they match.
 */
#include <errno.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fnmatch.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "api/api.h"
#include "common/dynbuf.h"
#include "common/errors.h"
#include "common/log.h"
#include "common/util.h"

/* A tokens file larger than this is refused (a million tokens is far
 * past what one file should hold). */
#define TOKENS_FILE_MAX (64 * 1024 * 1024)
/* Repo patterns one token may carry. */
#define TOKEN_MAX_PATTERNS 256

const char *api_scope_name(enum api_scope s)
{
    switch (s) {
    case API_SCOPE_READ: return "read";
    case API_SCOPE_WRITE: return "write";
    case API_SCOPE_ADMIN: return "admin";
    case API_SCOPE_NONE: break;
    }
    return NULL;
}

static bool scope_parse(const char *s, size_t len, enum api_scope *out)
{
    static const enum api_scope all[] = {API_SCOPE_READ, API_SCOPE_WRITE,
                                         API_SCOPE_ADMIN};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        const char *name = api_scope_name(all[i]);
        if (strlen(name) == len && strncmp(s, name, len) == 0) {
            *out = all[i];
            return true;
        }
    }
    return false;
}

/* A repo pattern: the characters of a repo id and '*', at most as long
 * as an id. */
static bool pattern_valid(const char *s, size_t len)
{
    if (len == 0 || len > RV_REPO_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
              c == '*'))
            return false;
    }
    return true;
}

static void token_clear(struct api_token *t)
{
    for (size_t i = 0; i < t->npatterns; i++)
        free(t->patterns[i]);
    free(t->patterns);
    t->patterns = NULL;
    t->npatterns = 0;
}

void api_tokens_free(struct api_tokens *t)
{
    for (size_t i = 0; i < t->n; i++)
        token_clear(&t->items[i]);
    free(t->items);
    t->items = NULL;
    t->n = 0;
}

static int tokens_append(struct api_tokens *t, struct api_token *tok)
{
    struct api_token *grown =
        realloc(t->items, (t->n + 1) * sizeof(*t->items));
    if (!grown)
        return RV_ERR_NOMEM;
    t->items = grown;
    t->items[t->n++] = *tok;
    return RV_OK;
}

/* The next white-space separated word of line[*pos..len), or NULL. */
static const char *next_word(const char *line, size_t len, size_t *pos,
                             size_t *wlen)
{
    while (*pos < len && (line[*pos] == ' ' || line[*pos] == '\t'))
        (*pos)++;
    if (*pos >= len)
        return NULL;
    size_t start = *pos;
    while (*pos < len && line[*pos] != ' ' && line[*pos] != '\t')
        (*pos)++;
    *wlen = *pos - start;
    return line + start;
}

/* One non-empty, non-comment line: "sha256:<hex> <scope> [pattern ...]". */
static int token_line(const char *line, size_t len, const char *name,
                      size_t lineno, struct api_token *tok, char *err,
                      size_t errlen)
{
    size_t pos = 0, wlen = 0;
    const char *w = next_word(line, len, &pos, &wlen);
    memset(tok, 0, sizeof(*tok));
    snprintf(tok->label, sizeof(tok->label), "line %zu", lineno);
    if (!w || wlen < 7 || strncmp(w, "sha256:", 7) != 0 ||
        !rv_hex_decode(w + 7, wlen - 7, tok->hash, 32)) {
        snprintf(err, errlen,
                 "%s, line %zu: expected sha256:<64 hex digits of the "
                 "token's SHA-256>",
                 name, lineno);
        return RV_ERR_CONFIG;
    }
    w = next_word(line, len, &pos, &wlen);
    if (!w || !scope_parse(w, wlen, &tok->scope)) {
        snprintf(err, errlen,
                 "%s, line %zu: the scope must be read, write or admin",
                 name, lineno);
        return RV_ERR_CONFIG;
    }
    while ((w = next_word(line, len, &pos, &wlen))) {
        if (!pattern_valid(w, wlen)) {
            snprintf(err, errlen,
                     "%s, line %zu: a repo pattern is made of repo id "
                     "characters and '*'",
                     name, lineno);
            token_clear(tok);
            return RV_ERR_CONFIG;
        }
        if (tok->npatterns == TOKEN_MAX_PATTERNS) {
            snprintf(err, errlen, "%s, line %zu: more than %d patterns",
                     name, lineno, TOKEN_MAX_PATTERNS);
            token_clear(tok);
            return RV_ERR_CONFIG;
        }
        char **grown = realloc(tok->patterns,
                               (tok->npatterns + 1) * sizeof(char *));
        char *copy = grown ? strndup(w, wlen) : NULL;
        if (grown)
            tok->patterns = grown;
        if (!copy) {
            token_clear(tok);
            snprintf(err, errlen, "out of memory");
            return RV_ERR_NOMEM;
        }
        tok->patterns[tok->npatterns++] = copy;
    }
    return RV_OK;
}

int api_tokens_parse(const char *text, size_t len, const char *name,
                     struct api_tokens *t, char *err, size_t errlen)
{
    size_t lineno = 0;
    const char *p = text, *end = text + len;
    if (memchr(text, '\0', len)) {
        snprintf(err, errlen, "%s: contains a NUL byte", name);
        return RV_ERR_CONFIG;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        lineno++;
        const char *line = p;
        p = nl ? nl + 1 : end;
        if (n && line[n - 1] == '\r')
            n--;
        size_t lead = 0;
        while (lead < n && (line[lead] == ' ' || line[lead] == '\t'))
            lead++;
        if (lead == n || line[lead] == '#')
            continue;
        struct api_token tok;
        int rc = token_line(line, n, name, lineno, &tok, err, errlen);
        if (rc == RV_OK && (rc = tokens_append(t, &tok)) != RV_OK) {
            token_clear(&tok);
            snprintf(err, errlen, "out of memory");
        }
        if (rc != RV_OK)
            return rc;
    }
    return RV_OK;
}

/* Reads path whole into a NUL-terminated buffer (caller frees). */
static char *read_file(const char *path, size_t *len, char *err,
                       size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "REPOVIEW_TOKENS_FILE: cannot open %s: %s",
                 path, strerror(errno));
        return NULL;
    }
    struct rv_dynbuf b;
    rv_dynbuf_init(&b, TOKENS_FILE_MAX);
    char chunk[4096];
    size_t got;
    int rc = RV_OK;
    while (rc == RV_OK && (got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = rv_dynbuf_add(&b, chunk, got);
    bool failed = ferror(f);
    fclose(f);
    char *text = NULL;
    if (rc == RV_ERR_TOO_LARGE)
        snprintf(err, errlen, "REPOVIEW_TOKENS_FILE: %s is too large", path);
    else if (failed)
        snprintf(err, errlen, "REPOVIEW_TOKENS_FILE: cannot read %s", path);
    else if (rc != RV_OK || !(text = rv_dynbuf_take(&b, len)))
        snprintf(err, errlen, "REPOVIEW_TOKENS_FILE: %s: out of memory", path);
    if (!text)
        rv_dynbuf_free(&b);
    return text;
}

static void hash_text(const char *s, unsigned char out[32])
{
    SHA256((const unsigned char *)s, strlen(s), out);
}

int api_access_init(struct api *api, char *err, size_t errlen)
{
    struct api_tokens *t = &api->tokens;
    const struct rv_config *cfg = api->cfg;
    memset(t, 0, sizeof(*t));
    if (cfg->tokens_file && *cfg->tokens_file) {
        size_t len = 0;
        char *text = read_file(cfg->tokens_file, &len, err, errlen);
        if (!text)
            return RV_ERR_CONFIG;
        char name[320];
        snprintf(name, sizeof(name), "REPOVIEW_TOKENS_FILE %s",
                 cfg->tokens_file);
        int rc = api_tokens_parse(text, len, name, t, err, errlen);
        free(text);
        if (rc != RV_OK) {
            api_tokens_free(t);
            return rc;
        }
    }
    if (cfg->api_token && *cfg->api_token) {
        struct api_token tok = {.scope = API_SCOPE_ADMIN};
        hash_text(cfg->api_token, tok.hash);
        snprintf(tok.label, sizeof(tok.label), "REPOVIEW_API_TOKEN");
        if (tokens_append(t, &tok) != RV_OK) {
            api_tokens_free(t);
            snprintf(err, errlen, "out of memory");
            return RV_ERR_NOMEM;
        }
    }
    if (cfg->metrics_token && *cfg->metrics_token) {
        hash_text(cfg->metrics_token, t->metrics_hash);
        t->has_metrics = true;
    }
    t->read_open = t->n == 0 || cfg->read_open;
    LOGF(RV_LOG_INFO, NULL, NULL,
         json_pack("{s:I,s:b,s:b}", "tokens", (json_int_t)t->n, "readOpen",
                   t->read_open, "metricsToken", t->has_metrics),
         t->n ? "access: tokens required%s"
              : "access: no tokens configured, the API is open to whoever "
                "reaches it%s",
         t->n && t->read_open ? " for writes (REPOVIEW_READ_OPEN)" : "");
    return api_session_init(api, err, errlen);
}

void api_access_free(struct api *api)
{
    api_tokens_free(&api->tokens);
}

const struct api_token *api_token_find(const struct api_tokens *t,
                                       const char *text, size_t len)
{
    unsigned char h[32];
    SHA256((const unsigned char *)text, len, h);
    const struct api_token *found = NULL;
    /* Every stored hash is compared, so the time does not say which. */
    for (size_t i = 0; i < t->n; i++)
        if (CRYPTO_memcmp(h, t->items[i].hash, 32) == 0 && !found)
            found = &t->items[i];
    return found;
}

bool api_principal_sees(const struct api_principal *p, const char *repo)
{
    if (!p->token || p->token->npatterns == 0)
        return true;
    for (size_t i = 0; i < p->token->npatterns; i++)
        if (fnmatch(p->token->patterns[i], repo, 0) == 0)
            return true;
    return false;
}

/* The bearer token of the request: NULL when there is no Authorization
 * header; "" for one that is not a bearer. */
static const char *bearer(struct evhttp_request *req)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req),
                                       "Authorization");
    if (!h)
        return NULL;
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return "";
    h += 7;
    while (*h == ' ')
        h++;
    return h;
}

/* The scope of a request without credentials. */
static enum api_scope anonymous_scope(const struct api_tokens *t)
{
    /* No token at all: everything is open, as on a laptop. */
    if (t->n == 0)
        return API_SCOPE_ADMIN;
    return t->read_open ? API_SCOPE_READ : API_SCOPE_NONE;
}

/* What the dispatcher does with a request, after authenticating it. */
enum verdict { ALLOWED, UNAUTHORIZED, FORBIDDEN };

/* Fills who from the request's credentials: a bearer, else the session
 * cookie, else (stream routes) ?access_token=. UNAUTHORIZED for
 * credentials that are presented and wrong; an absent one leaves the
 * anonymous principal. */
static enum verdict authenticate(struct api_call *call)
{
    struct api *api = call->api;
    const struct api_tokens *t = &api->tokens;
    struct api_principal *who = &call->who;
    memset(who, 0, sizeof(*who));
    who->scope = anonymous_scope(t);
    const char *b = bearer(call->req);
    if (t->n == 0 && !t->has_metrics)
        return ALLOWED; /* nothing to check a credential against */
    if (b) {
        size_t len = strlen(b);
        if (t->has_metrics) {
            unsigned char h[32];
            SHA256((const unsigned char *)b, len, h);
            if (CRYPTO_memcmp(h, t->metrics_hash, 32) == 0) {
                who->metrics = true;
                return ALLOWED;
            }
        }
        const struct api_token *tok = api_token_find(t, b, len);
        if (!tok)
            return t->n ? UNAUTHORIZED : ALLOWED;
        who->token = tok;
        who->scope = tok->scope;
        who->via = "bearer";
        return ALLOWED;
    }
    const struct api_token *tok = NULL;
    int rc = api_session_from_cookie(api, call->req, &tok);
    if (rc == RV_OK) {
        who->token = tok;
        who->scope = tok->scope;
        who->via = "cookie";
        return ALLOWED;
    }
    /* A stale cookie is not an error: it is as if there were none, and
     * the dashboard asks to sign in again. */
    if (call->route && call->route->stream) {
        char *st = api_query(call, "access_token");
        if (st) {
            rc = api_stream_token_check(api, st, &tok);
            free(st);
            if (rc != RV_OK)
                return UNAUTHORIZED;
            who->token = tok;
            who->scope = tok->scope;
            who->via = "stream-token";
        }
    }
    return ALLOWED;
}

static enum verdict authorize(const struct api_call *call)
{
    const struct api_principal *who = &call->who;
    enum api_scope need;
    switch (call->route->need) {
    case API_NEED_NONE:
    case API_NEED_SIGNED:
        return ALLOWED;
    case API_NEED_METRICS:
        if (who->metrics || who->scope == API_SCOPE_ADMIN)
            return ALLOWED;
        /* Open only while no token of any kind is configured. */
        if (!who->token && call->api->tokens.n == 0 &&
            !call->api->tokens.has_metrics)
            return ALLOWED;
        return who->token || who->metrics ? FORBIDDEN : UNAUTHORIZED;
    case API_NEED_READ: need = API_SCOPE_READ; break;
    case API_NEED_WRITE: need = API_SCOPE_WRITE; break;
    case API_NEED_ADMIN: need = API_SCOPE_ADMIN; break;
    default: return FORBIDDEN;
    }
    if (who->scope >= need)
        return ALLOWED;
    /* Anonymous (or the metrics token) is told to authenticate; a token
     * that is simply not enough is told so. */
    return who->token ? FORBIDDEN : UNAUTHORIZED;
}

/* Whether the request presents a credential this route judges: a bearer,
 * or a stream token on a stream route (a cookie is signed, not guessed). */
static bool judged_credential(const struct api_call *call)
{
    if (call->route->need == API_NEED_NONE ||
        call->route->need == API_NEED_SIGNED)
        return false;
    if (bearer(call->req))
        return true;
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(
        call->req));
    return call->route->stream && q && strstr(q, "access_token=");
}

bool api_access_check(struct api_call *call)
{
    bool judged = judged_credential(call);
    if (judged && api_authfail_refuse(call))
        return false;
    enum verdict v = authenticate(call);
    if (v == UNAUTHORIZED && judged)
        api_authfail_count(call);
    if (v == UNAUTHORIZED && (call->route->need == API_NEED_NONE ||
                              call->route->need == API_NEED_SIGNED)) {
        /* A route open to all does not judge credentials: a wrong one is
         * the same as none (a stale bearer must not break /healthz). */
        memset(&call->who, 0, sizeof(call->who));
        call->who.scope = anonymous_scope(&call->api->tokens);
        v = ALLOWED;
    }
    if (v == ALLOWED)
        v = authorize(call);
    if (v == UNAUTHORIZED) {
        evhttp_add_header(evhttp_request_get_output_headers(call->req),
                          "WWW-Authenticate", "Bearer");
        call->id[0] = '\0';
        api_reply_error(call, 401, "unauthorized",
                        "a valid token is required (Authorization: Bearer, "
                        "the dashboard's session, or a stream token)");
        return false;
    }
    if (v == FORBIDDEN) {
        call->id[0] = '\0';
        api_reply_error(call, 403, "forbidden",
                        "this token's scope does not allow this");
        return false;
    }
    return true;
}

bool api_access_repo(struct api_call *call, const char *repo)
{
    if (api_principal_sees(&call->who, repo))
        return true;
    char name[RV_REPO_ID_MAX + 1];
    rv_strlcpy(name, repo, sizeof(name)); /* repo may be call->id */
    call->id[0] = '\0';
    /* The org routes match an org's id against the same patterns. */
    bool is_org =
        call->route && strncmp(call->route->pattern, "/v1/orgs", 8) == 0;
    api_reply_error(call, 403, "forbidden", "this token may not see %s \"%s\"",
                    is_org ? "org" : "repo", name);
    return false;
}

/* See ghauth.h. The REST calls go through github_http_rest (github_http.c),
 * the same transport, deadline and body cap as PR sync. */
#include "worker/ghauth.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/errors.h"
#include "common/log.h"
#include "common/util.h"
#include "worker/prsync_private.h"

#define GHAUTH_DEFAULT_API "https://api.github.com"
/* Installation and token answers are small; anything larger is wrong. */
#define GHAUTH_MAX_BODY ((size_t)64 * 1024)
/* GitHub's tokens are far shorter; a longer one is refused. */
#define GHAUTH_TOKEN_MAX 1024

/* What is known about one owner. */
struct ghauth_entry {
    char owner[64];          /* lower-cased login; "" = free slot */
    int64_t installation_id; /* 0 = unknown, or none (see lookup_again_ms) */
    int64_t lookup_again_ms; /* no installation: the PAT until then */
    char *token;             /* installation token; malloc'd, or NULL */
    size_t token_cap;        /* bytes allocated for token (for the wipe) */
    int64_t expires_ms;      /* the token's expires_at */
    int64_t used_ms;         /* least recently used goes first */
};

/* A repo its owner's installation cannot see (an App installed on
 * selected repositories only answers not_found for the others): it gets
 * the PAT until until_ms. */
struct ghauth_pin {
    char name[201];   /* lower-cased "owner/name"; "" = free slot */
    int64_t until_ms; /* the installation is tried again after this */
    uint64_t seq;     /* when it was pinned; the oldest goes first */
};

struct rv_ghauth {
    char rest[1024];
    const char *pat;
    const struct rv_ghapp *app;
    int timeout_s;
    int64_t renew_before_ms, no_install_ttl_ms;
    struct ghauth_entry slots[RV_GHAUTH_SLOTS];
    struct ghauth_pin pins[RV_GHAUTH_SLOTS];
    uint64_t pin_seq; /* the last ghauth_pin.seq handed out */
};

int rv_ghauth_rest_url(const char *api_url, char *buf, size_t size)
{
    const char *api = api_url && *api_url ? api_url : GHAUTH_DEFAULT_API;
    size_t n = strlen(api);
    while (n > 0 && api[n - 1] == '/')
        n--;
    if (!buf || n >= size) {
        if (buf && size)
            buf[0] = '\0';
        return RV_ERR_TOO_LARGE;
    }
    memcpy(buf, api, n);
    buf[n] = '\0';
    return RV_OK;
}

int rv_ghauth_name_from_url(const char *url, const char *host, char *buf,
                            size_t size)
{
    static const char scheme[] = "https://";
    const char *h;
    size_t hlen;
    if (!url || !host || strncasecmp(url, scheme, sizeof(scheme) - 1) != 0 ||
        !rv_url_host(url, &h, &hlen) || hlen != strlen(host) ||
        strncasecmp(h, host, hlen) != 0)
        return -1;
    const char *path = strchr(h + hlen, '/');
    if (!path)
        return -1;
    path++;
    size_t n = strlen(path);
    while (n > 0 && path[n - 1] == '/')
        n--;
    if (n > 4 && strncmp(path + n - 4, ".git", 4) == 0)
        n -= 4;
    if (n >= size)
        return -1;
    memcpy(buf, path, n);
    buf[n] = '\0';
    return rv_github_name_valid(buf) ? 0 : -1;
}

struct rv_ghauth *rv_ghauth_new(const struct rv_ghauth_opts *opts)
{
    if (!opts || !opts->rest_url || !*opts->rest_url)
        return NULL;
    struct rv_ghauth *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    if (rv_strlcpy(a->rest, opts->rest_url, sizeof(a->rest)) != 0) {
        free(a);
        return NULL;
    }
    a->pat = opts->pat && *opts->pat ? opts->pat : NULL;
    a->app = opts->app && opts->app->key ? opts->app : NULL;
    a->timeout_s = opts->timeout_s > 0 ? opts->timeout_s : 30;
    a->renew_before_ms = opts->renew_before_ms > 0 ? opts->renew_before_ms
                                                   : RV_GHAUTH_RENEW_BEFORE_MS;
    a->no_install_ttl_ms = opts->no_install_ttl_ms > 0
                               ? opts->no_install_ttl_ms
                               : RV_GHAUTH_NO_INSTALL_TTL_MS;
    return a;
}

static void entry_drop_token(struct ghauth_entry *e)
{
    if (e->token) {
        explicit_bzero(e->token, e->token_cap);
        free(e->token);
    }
    e->token = NULL;
    e->token_cap = 0;
    e->expires_ms = 0;
}

void rv_ghauth_free(struct rv_ghauth *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < RV_GHAUTH_SLOTS; i++)
        entry_drop_token(&a->slots[i]);
    free(a);
}

static char lower(char c)
{
    return (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
}

/* Splits "owner/name", or a login "owner" alone (name then ""), into a
 * lower-cased owner and the name; false when it is not a GitHub name or
 * does not fit. */
static bool split_name(const char *full, char *owner, size_t osize, char *name,
                       size_t nsize)
{
    char probe[80];
    const char *slash = full ? strchr(full, '/') : NULL;
    if (!full)
        return false;
    if (!slash) {
        /* A login is what rv_github_name_valid takes before the slash. */
        int n = snprintf(probe, sizeof(probe), "%s/x", full);
        if (n < 0 || (size_t)n >= sizeof(probe) || !rv_github_name_valid(probe))
            return false;
        slash = full + strlen(full);
    } else if (!rv_github_name_valid(full)) {
        return false;
    }
    size_t olen = (size_t)(slash - full);
    if (olen >= osize)
        return false;
    for (size_t i = 0; i < olen; i++)
        owner[i] = lower(full[i]);
    owner[olen] = '\0';
    return rv_strlcpy(name, *slash ? slash + 1 : "", nsize) == 0;
}

/* The pin of owner/name (lower-cased into key, which has room for a
 * ghauth_pin name); with create, a free or the oldest slot. NULL when
 * absent or the name does not fit. */
static struct ghauth_pin *find_pin(struct rv_ghauth *a, const char *owner,
                                   const char *name, bool create)
{
    char key[sizeof(a->pins[0].name)];
    int n = snprintf(key, sizeof(key), "%s/%s", owner, name);
    if (n < 0 || (size_t)n >= sizeof(key))
        return NULL;
    for (char *p = key; *p; p++)
        *p = lower(*p);
    struct ghauth_pin *victim = &a->pins[0];
    for (size_t i = 0; i < RV_GHAUTH_SLOTS; i++) {
        struct ghauth_pin *p = &a->pins[i];
        if (p->name[0] && strcmp(p->name, key) == 0)
            return p;
        if (!p->name[0] ? victim->name[0] != '\0'
                        : victim->name[0] && p->seq < victim->seq)
            victim = p;
    }
    if (!create)
        return NULL;
    rv_strlcpy(victim->name, key, sizeof(victim->name));
    victim->until_ms = 0;
    victim->seq = ++a->pin_seq;
    return victim;
}

bool rv_ghauth_has_pat(const struct rv_ghauth *a)
{
    return a && a->pat;
}

void rv_ghauth_prefer_pat(struct rv_ghauth *a, const char *owner_name,
                          bool prefer)
{
    char owner[64], name[128];
    if (!a ||
        !split_name(owner_name, owner, sizeof(owner), name, sizeof(name)) ||
        !name[0])
        return;
    struct ghauth_pin *p = find_pin(a, owner, name, prefer);
    if (p && prefer)
        p->until_ms = rv_now_ms() + a->no_install_ttl_ms;
    else if (p)
        memset(p, 0, sizeof(*p));
}

/* The owner's entry; with create, a new one in a free or the least
 * recently used slot (whose token is cleared). NULL when absent. */
static struct ghauth_entry *find_entry(struct rv_ghauth *a, const char *owner,
                                       bool create)
{
    struct ghauth_entry *victim = &a->slots[0];
    for (size_t i = 0; i < RV_GHAUTH_SLOTS; i++) {
        struct ghauth_entry *e = &a->slots[i];
        if (e->owner[0] && strcmp(e->owner, owner) == 0)
            return e;
        if (!e->owner[0] ? victim->owner[0] != '\0'
                         : victim->owner[0] && e->used_ms < victim->used_ms)
            victim = e;
    }
    if (!create)
        return NULL;
    entry_drop_token(victim);
    memset(victim, 0, sizeof(*victim));
    rv_strlcpy(victim->owner, owner, sizeof(victim->owner));
    return victim;
}

static void use_pat(const struct rv_ghauth *a, struct rv_gh_token *tok)
{
    tok->value = a->pat;
    tok->installation_id = 0;
    rv_strlcpy(tok->identity, a->pat ? "pat" : "", sizeof(tok->identity));
}

/* GitHub's "message" of an error answer, for our own message ("" when
 * none); control characters become spaces. */
static void answer_message(const struct prsync_response *r, char *buf,
                           size_t size)
{
    buf[0] = '\0';
    json_t *doc =
        r->body.buf ? json_loadb(r->body.buf, r->body.len, 0, NULL) : NULL;
    const char *m = json_string_value(json_object_get(doc, "message"));
    if (m) {
        rv_strlcpy(buf, m, size);
        for (char *p = buf; *p; p++)
            if ((unsigned char)*p < 0x20)
                *p = ' ';
    }
    json_decref(doc);
}

/* err for an answer of status the App did not want from step ("looking
 * up the installation of acme", ...). */
static int answer_error(const struct prsync_response *r, const char *step,
                        struct rv_sync_error *err)
{
    char msg[200];
    answer_message(r, msg, sizeof(msg));
    if (r->status == 401) {
        rv_sync_error_set(err, RV_ERR_UNAUTHORIZED,
                          "GitHub refused the App's JWT %s (HTTP 401)%s%s; "
                          "check REPOVIEW_GITHUB_APP_ID and the key file",
                          step, msg[0] ? ": " : "", msg);
        return RV_ERR_HTTP;
    }
    int rc = prsync_http_error(r, true, err);
    char first[sizeof(err->message)];
    rv_strlcpy(first, err->message, sizeof(first));
    int64_t retry = err->retry_at_ms;
    rv_sync_error_set(err, err->code, "GitHub App: %s failed: %s", step, first);
    err->retry_at_ms = retry;
    return rc;
}

/* Signs a JWT and makes one REST request as the App. */
static int app_request(struct rv_ghauth *a, const char *method, const char *url,
                       struct prsync_response *r, struct rv_sync_error *err)
{
    char *jwt = NULL;
    int rc = rv_ghapp_jwt(a->app, rv_now_ms() / 1000, &jwt);
    if (rc != RV_OK) {
        rv_sync_error_set(err, RV_ERR_INTERNAL,
                          "the GitHub App's JWT could not be signed");
        return rc;
    }
    rc = github_http_rest(method, url, jwt, a->timeout_s, r, err);
    explicit_bzero(jwt, strlen(jwt));
    free(jwt);
    return rc;
}

/* Asks GitHub for the installation of owner/name, or with name "" of the
 * owner alone: GET /orgs/{owner}/installation finds an organisation's
 * and, when that is 404, GET /users/{owner}/installation a user's. RV_OK
 * with e updated: installation_id set, or 0 with lookup_again_ms when
 * there is none. */
static int lookup(struct rv_ghauth *a, struct ghauth_entry *e,
                  const char *owner, const char *name,
                  struct prsync_response *r, const char *repo_id,
                  const char *job_id, struct rv_sync_error *err)
{
    char url[1400], step[200];
    snprintf(step, sizeof(step), "looking up the installation of %s", owner);
    if (name[0])
        snprintf(url, sizeof(url), "%s/repos/%s/%s/installation", a->rest,
                 owner, name);
    else
        snprintf(url, sizeof(url), "%s/orgs/%s/installation", a->rest, owner);
    int rc = app_request(a, "GET", url, r, err);
    if (rc == RV_OK && !name[0] && r->status == 404) {
        snprintf(url, sizeof(url), "%s/users/%s/installation", a->rest, owner);
        rc = app_request(a, "GET", url, r, err);
    }
    if (rc != RV_OK)
        return rc;
    if (r->status == 404) {
        e->installation_id = 0;
        e->lookup_again_ms = rv_now_ms() + a->no_install_ttl_ms;
        LOGF(RV_LOG_INFO, repo_id, job_id,
             json_pack("{s:s,s:b}", "owner", owner, "pat", a->pat != NULL),
             "the GitHub App is not installed on this owner; using "
             "GITHUB_TOKEN");
        return RV_OK;
    }
    if (r->status != 200)
        return answer_error(r, step, err);
    json_t *doc =
        json_loadb(r->body.buf ? r->body.buf : "", r->body.len, 0, NULL);
    json_t *id = json_object_get(doc, "id");
    int64_t v = json_is_integer(id) ? (int64_t)json_integer_value(id) : 0;
    json_decref(doc);
    if (v <= 0) {
        rv_sync_error_set(err, RV_ERR_BAD_RESPONSE,
                          "GitHub App: %s: the answer has no installation id",
                          step);
        return RV_ERR_DECODE;
    }
    e->installation_id = v;
    LOGF(RV_LOG_INFO, repo_id, job_id,
         json_pack("{s:s,s:I}", "owner", owner, "installation", (json_int_t)v),
         "GitHub App installation found");
    return RV_OK;
}

/* Exchanges e's installation for a token. */
static int exchange(struct rv_ghauth *a, struct ghauth_entry *e,
                    struct prsync_response *r, const char *repo_id,
                    const char *job_id, struct rv_sync_error *err)
{
    char url[1200], step[120];
    snprintf(url, sizeof(url), "%s/app/installations/%lld/access_tokens",
             a->rest, (long long)e->installation_id);
    snprintf(step, sizeof(step), "exchanging installation %lld for a token",
             (long long)e->installation_id);
    int rc = app_request(a, "POST", url, r, err);
    if (rc != RV_OK)
        return rc;
    if (r->status == 404) {
        /* Uninstalled meanwhile: the token it gave must not serve any
         * longer (GitHub revokes it). The PAT now, and the owner is looked
         * up again on the next call. */
        LOGF(RV_LOG_WARN, repo_id, job_id,
             json_pack("{s:I,s:b}", "installation",
                       (json_int_t)e->installation_id, "pat", a->pat != NULL),
             "the GitHub App installation is gone; using GITHUB_TOKEN");
        entry_drop_token(e);
        e->installation_id = 0;
        e->lookup_again_ms = 0;
        return RV_OK;
    }
    if (r->status != 201 && r->status != 200)
        return answer_error(r, step, err);
    json_t *doc =
        json_loadb(r->body.buf ? r->body.buf : "", r->body.len, 0, NULL);
    json_t *tv = json_object_get(doc, "token");
    const char *token = json_string_value(tv);
    const char *exp = json_string_value(json_object_get(doc, "expires_at"));
    int64_t exp_ms = 0;
    size_t tlen = token ? json_string_length(tv) : 0;
    bool usable = tlen > 0 && tlen < GHAUTH_TOKEN_MAX &&
                  strlen(token) == tlen && !strpbrk(token, "\r\n ") && exp &&
                  rv_parse_iso8601(exp, &exp_ms) == 0;
    char *copy = usable ? malloc(tlen + 1) : NULL;
    if (copy)
        memcpy(copy, token, tlen + 1);
    char exp_text[40];
    rv_strlcpy(exp_text, exp ? exp : "", sizeof(exp_text));
    /* jansson's string goes with the document; clear it first, used or
     * not. The parser's own scratch copy is already freed, uncleared
     * (ghauth.h). */
    if (token)
        explicit_bzero((char *)token, tlen);
    json_decref(doc);
    if (!usable) {
        rv_sync_error_set(err, RV_ERR_BAD_RESPONSE,
                          "GitHub App: %s: the answer has no token or no "
                          "valid expires_at",
                          step);
        return RV_ERR_DECODE;
    }
    if (!copy)
        return RV_ERR_NOMEM;
    entry_drop_token(e);
    e->token = copy;
    e->token_cap = tlen + 1;
    e->expires_ms = exp_ms;
    LOGF(RV_LOG_INFO, repo_id, job_id,
         json_pack("{s:I,s:s}", "installation", (json_int_t)e->installation_id,
                   "expiresAt", exp_text),
         "GitHub App installation token issued");
    return RV_OK;
}

int rv_ghauth_token(struct rv_ghauth *a, const char *owner_name,
                    const char *repo_id, const char *job_id,
                    struct rv_gh_token *tok, struct rv_sync_error *err)
{
    char owner[64], name[128];
    use_pat(a, tok);
    if (!a->app ||
        !split_name(owner_name, owner, sizeof(owner), name, sizeof(name)))
        return RV_OK;
    int64_t now = rv_now_ms();
    struct ghauth_pin *pin = name[0] ? find_pin(a, owner, name, false) : NULL;
    if (pin && now < pin->until_ms)
        return RV_OK;
    struct ghauth_entry *e = find_entry(a, owner, true);
    e->used_ms = now;
    if (e->installation_id == 0 && now < e->lookup_again_ms)
        return RV_OK;
    if (e->token && now < e->expires_ms - a->renew_before_ms)
        goto have;

    struct prsync_response r = {0};
    rv_dynbuf_init(&r.body, GHAUTH_MAX_BODY);
    /* Reserved whole, so realloc leaves no copy of a token answer behind
     * and the one wipe below covers every byte curl handed us. */
    int rc = rv_dynbuf_reserve(&r.body, GHAUTH_MAX_BODY);
    if (rc != RV_OK)
        goto out;
    if (e->installation_id == 0) {
        rc = lookup(a, e, owner, name, &r, repo_id, job_id, err);
        if (rc != RV_OK || e->installation_id == 0)
            goto out;
    }
    rc = exchange(a, e, &r, repo_id, job_id, err);
out:
    /* The answer held a token: wiped, not just freed. */
    if (r.body.buf)
        explicit_bzero(r.body.buf, r.body.cap);
    rv_dynbuf_free(&r.body);
    if (rc != RV_OK && e->token && now < e->expires_ms - 60000) {
        /* Renewal failed early enough that the old token still serves. */
        LOGF(RV_LOG_WARN, repo_id, job_id,
             json_pack("{s:s,s:s}", "owner", owner, "code",
                       rv_errname(err->code)),
             "renewing the GitHub App token failed; using the current one: "
             "%s",
             err->message);
        memset(err, 0, sizeof(*err));
        rc = RV_OK;
    }
    if (rc == RV_ERR_NOMEM && err->code == RV_OK)
        rv_sync_error_set(err, RV_ERR_INTERNAL,
                          "out of memory asking for a GitHub App token");
    if (rc != RV_OK || !e->token)
        return rc;
have:
    tok->value = e->token;
    tok->installation_id = e->installation_id;
    snprintf(tok->identity, sizeof(tok->identity), "%lld",
             (long long)e->installation_id);
    return RV_OK;
}

void rv_ghauth_drop(struct rv_ghauth *a, const char *owner_name)
{
    char owner[64], name[128];
    if (!a || !split_name(owner_name, owner, sizeof(owner), name, sizeof(name)))
        return;
    struct ghauth_entry *e = find_entry(a, owner, false);
    if (e)
        entry_drop_token(e);
}

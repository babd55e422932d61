/*
 * Failed credentials, counted per remote address: a token bucket of
 * AUTHFAIL_BURST failures that refills at one a second. An address whose
 * bucket is empty is answered 429 before its next credential is even
 * looked at, so guessing tokens (with a bearer, a stream token or
 * POST /v1/session) costs at most 60 tries a minute, and a flood of bad
 * tokens costs neither SHA-256 work nor log lines.
 *
 * The table is a fixed array of AUTHFAIL_SLOTS, direct-mapped by a hash
 * of the address: memory is bounded whatever the number of addresses. An
 * address that lands on a slot held by another takes it over, so many
 * addresses can wash out each other's counts, never grow the table.
 * An IPv6 peer is counted by its /64: one host commonly holds a whole
 * /64 and would otherwise get a fresh bucket with every address.
 * Behind a reverse proxy every client has the proxy's address: the proxy
 * should limit sign-in attempts itself (docs/deploy.md).
 */
#include <arpa/inet.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "common/errors.h"
#include "common/util.h"

#define AUTHFAIL_SLOTS 1024
#define AUTHFAIL_BURST 60.0
#define AUTHFAIL_REFILL_PER_S 1.0

struct authfail_slot {
    char addr[48]; /* the peer's api_authfail_key; "" free */
    double tokens; /* failures it may still make */
    int64_t at_ms; /* when tokens was last brought up to date */
};

struct api_authfail {
    struct authfail_slot slots[AUTHFAIL_SLOTS];
    uint64_t refused; /* requests answered 429 by this limiter */
};

int api_authfail_init(struct api *api)
{
    api->authfail = calloc(1, sizeof(*api->authfail));
    return api->authfail ? RV_OK : RV_ERR_NOMEM;
}

void api_authfail_free(struct api *api)
{
    free(api->authfail);
    api->authfail = NULL;
}

uint64_t api_authfail_refused(const struct api *api)
{
    return api->authfail ? api->authfail->refused : 0;
}

int api_authfail_key(const char *host, char *buf, size_t size)
{
    static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0,    0,
                                                0, 0, 0, 0, 0xff, 0xff};
    unsigned char a[16];
    int n;
    if (inet_pton(AF_INET6, host, a) != 1)
        return rv_strlcpy(buf, host, size);
    if (memcmp(a, v4_mapped, sizeof(v4_mapped)) == 0)
        n = snprintf(buf, size, "%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
    else
        n = snprintf(buf, size, "%x:%x:%x:%x::/64", a[0] << 8 | a[1],
                     a[2] << 8 | a[3], a[4] << 8 | a[5], a[6] << 8 | a[7]);
    return n >= 0 && (size_t)n < size ? 0 : -1;
}

/* The slot of the request's peer, brought up to date; NULL when the
 * request has no peer address (then nothing is limited). */
static struct authfail_slot *slot_of(struct api *api,
                                     struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    char *host = NULL;
    ev_uint16_t port = 0;
    if (!api->authfail || !evcon)
        return NULL;
    evhttp_connection_get_peer(evcon, &host, &port);
    char key[sizeof(api->authfail->slots[0].addr)];
    if (!host || !*host || api_authfail_key(host, key, sizeof(key)) != 0)
        return NULL;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    struct authfail_slot *s = &api->authfail->slots[h % AUTHFAIL_SLOTS];
    int64_t now = rv_mono_ms();
    if (strcmp(s->addr, key) != 0) {
        rv_strlcpy(s->addr, key, sizeof(s->addr));
        s->tokens = AUTHFAIL_BURST;
        s->at_ms = now;
    }
    s->tokens += (double)(now - s->at_ms) / 1000.0 * AUTHFAIL_REFILL_PER_S;
    if (s->tokens > AUTHFAIL_BURST)
        s->tokens = AUTHFAIL_BURST;
    s->at_ms = now;
    return s;
}

bool api_authfail_refuse(struct api_call *call)
{
    struct authfail_slot *s = slot_of(call->api, call->req);
    if (!s || s->tokens >= 1.0)
        return false;
    call->api->authfail->refused++;
    int wait_s = (int)((1.0 - s->tokens) / AUTHFAIL_REFILL_PER_S) + 1;
    char retry[16];
    snprintf(retry, sizeof(retry), "%d", wait_s);
    evhttp_add_header(evhttp_request_get_output_headers(call->req),
                      "Retry-After", retry);
    call->id[0] = '\0';
    api_reply_error(call, 429, "too_many_failures",
                    "too many wrong credentials from this address; try "
                    "again later");
    return true;
}

void api_authfail_count(struct api_call *call)
{
    struct authfail_slot *s = slot_of(call->api, call->req);
    if (s && s->tokens >= 1.0)
        s->tokens -= 1.0;
}

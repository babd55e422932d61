/*
 * Compressed answers end to end: a private redis-server, the API binary,
 * curl as the client. Each coding decodes (with libbrotli's and zlib's own
 * decoders) to exactly the identity bytes; each has its own ETag and 304;
 * the Accept-Encoding header decides, hostile ones included; a body is
 * compressed once per version, not per request.
 */
#include <brotli/decode.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <zlib.h>

#include "common/keys.h"
#include "common/util.h"
#include "rvtest.h"

static struct rvt_redis redis;
static struct rv_rsync conn;
static char *tmp;
static struct rvt_api api;

/* The last answer: status, headers, body (with its length: it may be
 * binary). */
static int status;
static char *headers;
static char *body;
static size_t body_len;

/* GET (or HEAD with -I among args) of path with the curl arguments args
 * (may be ""), keeping the answer. Returns the status. */
static int get(const char *path, const char *fmt, ...)
{
    char args[20000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    char *out = NULL;
    int rc = rvt_sh(&out,
                    "rm -f '%s/b.bin' '%s/h.txt'; "
                    "curl -s -m 10 -o '%s/b.bin' -D '%s/h.txt' "
                    "-w '%%{http_code}' %s '%s%s'",
                    tmp, tmp, tmp, tmp, args, api.base, path);
    status = rc == 0 && out ? (int)strtol(out, NULL, 10) : 0;
    free(out);
    char p[512];
    free(headers);
    snprintf(p, sizeof(p), "%s/h.txt", tmp);
    headers = rvt_slurp(p);
    free(body);
    body = NULL;
    body_len = 0;
    snprintf(p, sizeof(p), "%s/b.bin", tmp);
    FILE *f = fopen(p, "rb");
    if (f) {
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        rewind(f);
        body = malloc((size_t)(n > 0 ? n : 0) + 1);
        if (body && n > 0 && fread(body, 1, (size_t)n, f) == (size_t)n)
            body_len = (size_t)n;
        if (body)
            body[body_len] = '\0';
        fclose(f);
    }
    return status;
}

static const char *header(const char *name)
{
    static char value[512];
    return rvt_http_header(headers, name, value, sizeof(value));
}

static bool varies_on_accept_encoding(void)
{
    /* Vary may come more than once (CORS adds Origin): look at them all,
     * in a lower-cased copy. */
    char *h = strdup(headers ? headers : "");
    bool found = false;
    for (char *c = h; c && *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    for (const char *p = h; p && (p = strstr(p, "\nvary:")); p++) {
        const char *end = strchr(p + 1, '\n');
        const char *ae = strstr(p, "accept-encoding");
        if (ae && (!end || ae < end))
            found = true;
    }
    free(h);
    return found;
}

/* The last body decoded from its Content-Encoding into a malloc'd buffer
 * (*len bytes), or NULL when it does not decode. */
static char *decoded(size_t *len)
{
    const char *ce = header("Content-Encoding");
    size_t room = 8 * 1024 * 1024;
    char *out = malloc(room);
    if (!out)
        return NULL;
    if (!ce) {
        memcpy(out, body, body_len);
        *len = body_len;
        return out;
    }
    if (strcmp(ce, "br") == 0) {
        *len = room;
        if (BrotliDecoderDecompress(body_len, (const uint8_t *)body, len,
                                    (uint8_t *)out) ==
            BROTLI_DECODER_RESULT_SUCCESS)
            return out;
    } else if (strcmp(ce, "gzip") == 0) {
        z_stream z = {0};
        if (inflateInit2(&z, 15 + 16) == Z_OK) {
            z.next_in = (unsigned char *)body;
            z.avail_in = (uInt)body_len;
            z.next_out = (unsigned char *)out;
            z.avail_out = (uInt)room;
            int zrc = inflate(&z, Z_FINISH);
            *len = z.total_out;
            inflateEnd(&z);
            if (zrc == Z_STREAM_END && z.avail_in == 0)
                return out;
        }
    }
    free(out);
    return NULL;
}

/* The identity bytes of the overview, kept by the first test. */
static char *identity;
static size_t identity_len;
static char identity_etag[128];

/* Keeps the last body as the identity bytes to compare with. */
static void keep_identity(void)
{
    free(identity);
    identity = malloc(body_len + 1);
    if (identity && body)
        memcpy(identity, body, body_len);
    identity_len = identity ? body_len : 0;
}

static bool same_as_identity(void)
{
    size_t n = 0;
    char *d = decoded(&n);
    bool same = d && n == identity_len && memcmp(d, identity, n) == 0;
    free(d);
    return same;
}

/* A counter of /metrics with the encoding label, or -1. */
static long long metric(const char *name, const char *enc)
{
    if (get("/metrics", "") != 200 || !body)
        return -1;
    char want[160];
    snprintf(want, sizeof(want), "%s{encoding=\"%s\"} ", name, enc);
    const char *p = strstr(body, want);
    return p ? strtoll(p + strlen(want), NULL, 10) : -1;
}

#define OVERVIEW "/v1/repos/big/overview"

/* A fragment of n branches, like the worker's. */
static char *fragment(int n)
{
    size_t room = (size_t)n * 300 + 256, len = 0;
    char *f = malloc(room);
    if (!f)
        return NULL;
    len += (size_t)snprintf(f, room,
                            "\"counts\":{\"branches\":%d,\"conflicting\":0,"
                            "\"openPullRequests\":0},\"branches\":[",
                            n);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(
            f + len, room - len,
            "%s{\"name\":\"feature/branch-%d\",\"isDefault\":false,"
            "\"sha\":\"%040x\",\"ahead\":%d,\"behind\":0,\"conflicts\":false,"
            "\"commit\":{\"author\":\"B\",\"subject\":\"work on %05d\"}}",
            i ? "," : "", i, (unsigned)(i * 2654435761u), i % 9, i);
    snprintf(f + len, room - len, "],\"pullRequests\":[]");
    return f;
}

static long long commit_branches(int n)
{
    char *f = fragment(n);
    long long v = f ? rvt_fake_commit(&conn, "test-worker", "big",
                                      RV_KIND_BRANCHES, f,
                                      "{\"branches\":{\"added\":[\"main\"]}}")
                    : -1;
    free(f);
    return v;
}

/* ---- tests ---- */

/* The overview asked for in coding enc: that coding, a fifth of the size
 * or less, the identity bytes once decoded, and the identity ETag with
 * suffix. */
static void check_coded(const char *enc, const char *suffix)
{
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: %s'", enc), 200);
    CHECK_STR(header("Content-Encoding"), enc);
    CHECK(varies_on_accept_encoding());
    CHECK(body_len > 0 && body_len < identity_len / 5);
    CHECK(same_as_identity());
    char want[160];
    snprintf(want, sizeof(want), "%.*s%s\"", (int)strlen(identity_etag) - 1,
             identity_etag, suffix);
    CHECK_STR(header("ETag"), want);
}

static void test_each_coding_decodes_to_the_identity_bytes(void)
{
    CHECK_INT(get(OVERVIEW, ""), 200);
    CHECK(header("Content-Encoding") == NULL);
    CHECK(varies_on_accept_encoding());
    keep_identity();
    CHECK(identity_len > 30000);
    rv_strlcpy(identity_etag, header("ETag") ? header("ETag") : "",
               sizeof(identity_etag));
    CHECK(identity_etag[0] == '"');

    check_coded("br", "-br");
    check_coded("gzip", "-gz");

    /* A browser's header. */
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: gzip, deflate, br'"), 200);
    CHECK_STR(header("Content-Encoding"), "br");
    CHECK(same_as_identity());
}

static void test_curl_compressed_gets_the_identity_bytes(void)
{
    CHECK_INT(get(OVERVIEW, "--compressed"), 200);
    CHECK(header("Content-Encoding") != NULL);
    /* curl decoded it: what it saved is the identity body. */
    CHECK(body_len == identity_len && body &&
          memcmp(body, identity, identity_len) == 0);
}

static void test_each_coding_has_its_own_etag_and_304(void)
{
    char br_etag[160], gz_etag[160];
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: br'"), 200);
    rv_strlcpy(br_etag, header("ETag") ? header("ETag") : "", sizeof(br_etag));
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: gzip'"), 200);
    rv_strlcpy(gz_etag, header("ETag") ? header("ETag") : "", sizeof(gz_etag));
    CHECK(strcmp(br_etag, gz_etag) != 0);
    CHECK(strcmp(br_etag, identity_etag) != 0);

    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: br' -H 'If-None-Match: %s'",
                  br_etag), 304);
    CHECK_INT(body_len, 0);
    CHECK_STR(header("ETag"), br_etag);
    CHECK(varies_on_accept_encoding());
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: gzip' -H 'If-None-Match: %s'",
                  gz_etag), 304);
    CHECK_INT(get(OVERVIEW, "-H 'If-None-Match: %s'", identity_etag), 304);
    CHECK(varies_on_accept_encoding());
    /* An ETag of another coding is not the representation that would be
     * sent: the full answer, in the coding asked for. */
    CHECK_INT(get(OVERVIEW, "-H 'If-None-Match: %s'", gz_etag), 200);
    CHECK(header("Content-Encoding") == NULL);
    CHECK(same_as_identity());
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: gzip' -H 'If-None-Match: %s'",
                  br_etag), 200);
    CHECK_STR(header("Content-Encoding"), "gzip");
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: br' -H 'If-None-Match: %s'",
                  identity_etag), 200);
    CHECK_STR(header("Content-Encoding"), "br");
    /* A client holding several finds its own among them. */
    CHECK_INT(get(OVERVIEW,
                  "-H 'Accept-Encoding: gzip' -H 'If-None-Match: %s, %s'",
                  br_etag, gz_etag), 304);
}

static void test_q_values_decide_and_br_q0_gets_gzip(void)
{
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: br;q=0, gzip'"), 200);
    CHECK_STR(header("Content-Encoding"), "gzip");
    CHECK(same_as_identity());
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: gzip;q=0.4, br;q=0.8'"), 200);
    CHECK_STR(header("Content-Encoding"), "br");
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: GZIP ; Q=0.9, Br;q=0.1'"), 200);
    CHECK_STR(header("Content-Encoding"), "gzip");
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: *'"), 200);
    CHECK_STR(header("Content-Encoding"), "br");
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: identity'"), 200);
    CHECK(header("Content-Encoding") == NULL);
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: br;q=0, gzip;q=0'"), 200);
    CHECK(header("Content-Encoding") == NULL);
    CHECK(same_as_identity());
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: identity;q=0'"), 200);
    CHECK(header("Content-Encoding") == NULL);
}

static void test_hostile_accept_encoding_headers_are_survived(void)
{
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: gzip;q=2'"), 200);
    CHECK(header("Content-Encoding") == NULL);
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: gzip;q=abc, br;q=0.0001'"),
              200);
    CHECK(header("Content-Encoding") == NULL);
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: ;;;,,,=\"\"\",gzip'"), 200);
    /* A thousand codings we do not make, then one we do. */
    char *many = malloc(16000);
    size_t len = 0;
    for (int i = 0; many && i < 1000; i++)
        len += (size_t)snprintf(many + len, 16000 - len, "x%d,", i);
    if (many) {
        snprintf(many + len, 16000 - len, "gzip");
        CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: %s'", many), 200);
        CHECK_STR(header("Content-Encoding"), "gzip");
        CHECK(same_as_identity());
        /* Past the header cap (16 KB): refused, and the server lives. */
        memset(many, 'q', 15999);
        many[15999] = '\0';
        int st = get(OVERVIEW, "-H 'Accept-Encoding: %s%s'", many, many);
        CHECK(st >= 400 || st == 0);
    }
    free(many);
    CHECK(waitpid(api.pid, NULL, WNOHANG) == 0);
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: br'"), 200);
    CHECK(same_as_identity());
}

static void test_a_body_is_compressed_once_per_version(void)
{
    long long br0 = metric("repoview_http_compressions_total", "br");
    long long gz0 = metric("repoview_http_compressions_total", "gzip");
    CHECK(br0 >= 1 && gz0 >= 1);
    for (int i = 0; i < 20; i++) {
        get(OVERVIEW, "-H 'Accept-Encoding: br'");
        get(OVERVIEW, "-H 'Accept-Encoding: gzip'");
    }
    CHECK_INT(metric("repoview_http_compressions_total", "br"), br0);
    CHECK_INT(metric("repoview_http_compressions_total", "gzip"), gz0);
    /* A new version: compressed once more, and the new bytes. */
    CHECK_INT(get("/v1/repos/big/refresh?kind=branches", "-X POST"), 202);
    CHECK_INT(commit_branches(400), 2);
    for (int i = 0; i < 100; i++) {
        if (get(OVERVIEW, "") == 200 && body && strstr(body, "\"version\":2"))
            break;
        rvt_sleep_ms(50);
    }
    keep_identity();
    for (int i = 0; i < 10; i++) {
        CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: br'"), 200);
        CHECK(same_as_identity());
    }
    CHECK_INT(metric("repoview_http_compressions_total", "br"), br0 + 1);
    CHECK(metric("repoview_http_coded_answers_total", "br") >= 10);
}

/* A client that holds the coded body gets its 304 without anything being
 * compressed, even after the cache let the body go (a malformed event on
 * the channel clears the cache: it cannot be told what changed). The 200
 * after it compresses once, which shows the body was really gone. */
static void test_a_304_compresses_nothing(void)
{
    char gz_etag[160];
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: gzip'"), 200);
    rv_strlcpy(gz_etag, header("ETag") ? header("ETag") : "", sizeof(gz_etag));
    long long gz0 = metric("repoview_http_compressions_total", "gzip");
    redisReply *r =
        rv_rsync_command(&conn, "PUBLISH %s %s", RV_CHANNEL_EVENTS, "{}");
    CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer >= 1);
    if (r)
        freeReplyObject(r);
    rvt_sleep_ms(300);
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: gzip' -H 'If-None-Match: %s'",
                  gz_etag),
              304);
    CHECK_STR(header("ETag"), gz_etag);
    CHECK(varies_on_accept_encoding());
    CHECK_INT(metric("repoview_http_compressions_total", "gzip"), gz0);
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: gzip'"), 200);
    CHECK_STR(header("ETag"), gz_etag);
    CHECK_INT(metric("repoview_http_compressions_total", "gzip"), gz0 + 1);
}

static void test_head_sends_the_length_of_the_coded_body(void)
{
    CHECK_INT(get(OVERVIEW, "-H 'Accept-Encoding: gzip'"), 200);
    size_t gz_len = body_len;
    CHECK_INT(get(OVERVIEW, "-I -H 'Accept-Encoding: gzip'"), 200);
    CHECK_STR(header("Content-Encoding"), "gzip");
    char want[32];
    snprintf(want, sizeof(want), "%zu", gz_len);
    CHECK_STR(header("Content-Length"), want);
}

static void test_small_bodies_go_out_as_they_are_with_vary(void)
{
    /* Before its first sync an overview is a few hundred bytes at most;
     * an error is smaller still. */
    CHECK_INT(get("/v1/repos/tiny/overview", "-H 'Accept-Encoding: br'"), 200);
    CHECK(header("Content-Encoding") == NULL);
    CHECK(varies_on_accept_encoding());
    CHECK_INT(get("/v1/repos/nosuch/overview", "-H 'Accept-Encoding: br'"),
              404);
    CHECK(header("Content-Encoding") == NULL);
}

static void test_list_pages_are_compressed_too(void)
{
    char path[64];
    for (int i = 0; i < 30; i++) {
        char id[16];
        snprintf(id, sizeof(id), "list-%02d", i);
        snprintf(path, sizeof(path), "/v1/repos");
        get(path,
            "-X POST -H 'Content-Type: application/json' -d "
            "'{\"id\":\"%s\",\"url\":\"https://github.com/acme/%s.git\","
            "\"syncIntervalSeconds\":3600}'",
            id, id);
    }
    CHECK_INT(get("/v1/repos?limit=100", ""), 200);
    CHECK(header("Content-Encoding") == NULL);
    CHECK(varies_on_accept_encoding());
    keep_identity();
    CHECK(identity_len > 2000);
    CHECK_INT(get("/v1/repos?limit=100", "-H 'Accept-Encoding: br'"), 200);
    CHECK_STR(header("Content-Encoding"), "br");
    CHECK(varies_on_accept_encoding());
    CHECK(same_as_identity());
    CHECK_INT(get("/v1/repos?limit=100", "-H 'Accept-Encoding: br;q=0,gzip'"),
              200);
    CHECK_STR(header("Content-Encoding"), "gzip");
    CHECK(same_as_identity());
    CHECK(body_len < identity_len / 3);
}

int main(void)
{
    tmp = rvt_tmpdir("rv-compress");
    if (!tmp || rvt_redis_start(&redis, NULL) != 0 ||
        rvt_redis_connect(&redis, &conn) != 0) {
        fprintf(stderr, "cannot start redis\n");
        return 1;
    }
    char log[512];
    snprintf(log, sizeof(log), "%s/api.log", tmp);
    if (rvt_api_start(&api, 0, redis.url, log, "/readyz", NULL) != 0) {
        rvt_api_stop(&api);
        rvt_redis_stop(&redis);
        return 1;
    }
    get("/v1/repos", "-X POST -H 'Content-Type: application/json' -d "
                     "'{\"id\":\"big\",\"url\":\"https://github.com/acme/"
                     "big.git\",\"syncIntervalSeconds\":3600}'");
    CHECK_INT(status, 201);
    get("/v1/repos", "-X POST -H 'Content-Type: application/json' -d "
                     "'{\"id\":\"tiny\",\"url\":\"https://github.com/acme/"
                     "tiny.git\"}'");
    CHECK_INT(commit_branches(300), 1);
    for (int i = 0; i < 100; i++) {
        if (get(OVERVIEW, "") == 200 && body && strstr(body, "\"version\":1"))
            break;
        rvt_sleep_ms(50);
    }
    RUN(test_each_coding_decodes_to_the_identity_bytes);
    RUN(test_curl_compressed_gets_the_identity_bytes);
    RUN(test_each_coding_has_its_own_etag_and_304);
    RUN(test_q_values_decide_and_br_q0_gets_gzip);
    RUN(test_hostile_accept_encoding_headers_are_survived);
    RUN(test_a_body_is_compressed_once_per_version);
    RUN(test_a_304_compresses_nothing);
    RUN(test_head_sends_the_length_of_the_coded_body);
    RUN(test_small_bodies_go_out_as_they_are_with_vary);
    RUN(test_list_pages_are_compressed_too);
    rvt_api_stop(&api);
    free(identity);
    free(headers);
    free(body);
    return rvt_finish(&conn, &redis, tmp);
}

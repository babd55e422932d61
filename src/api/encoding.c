/*
 * Content codings: which one a request accepts (Accept-Encoding, RFC 9110
 * section 12.5.3), and compressing a body in it with libbrotli or zlib.
 *
 * The parser reads the header once, left to right, without allocating, so
 * a header of thousands of elements costs one pass over at most
 * API_MAX_HEADERS bytes. An element it cannot read (a malformed q, junk
 * after the coding) is left out, as if the client had not sent it: the
 * worst a broken header gets is identity.
 */
#include <brotli/encode.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "api/api.h"

/* What is known of one coding after the header: its q in thousandths, or
 * -1 when the header did not name it. */
struct accept_q {
    int q[API_ENC_COUNT];
    int star; /* "*": every coding not named; -1 when absent */
};

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 9110's tchar. */
static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The qvalue s[0..n) in thousandths: "0" ["." 0*3DIGIT] or "1" ["."
 * 0*3"0"]; -1 for anything else. */
static int parse_q(const char *s, size_t n)
{
    if (n == 0 || (s[0] != '0' && s[0] != '1'))
        return -1;
    int q = (s[0] - '0') * 1000;
    if (n == 1)
        return q;
    if (s[1] != '.' || n > 5)
        return -1;
    int scale = 100;
    for (size_t i = 2; i < n; i++, scale /= 10) {
        if (s[i] < '0' || s[i] > '9' || (q == 1000 && s[i] != '0'))
            return -1;
        q += (s[i] - '0') * scale;
    }
    return q;
}

/* Which coding token s[0..n) names: an enum api_encoding, API_ENC_COUNT
 * for "*", -1 for one we do not make. */
static int coding_of(const char *s, size_t n)
{
    static const struct {
        const char *name;
        int coding;
    } names[] = {
        {"br", API_ENC_BR},       {"gzip", API_ENC_GZIP},
        {"x-gzip", API_ENC_GZIP}, {"identity", API_ENC_IDENTITY},
        {"*", API_ENC_COUNT},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i].name) == n && strncasecmp(s, names[i].name, n) == 0)
            return names[i].coding;
    return -1;
}

/* Skips one parameter value at p: a token or a quoted string. The end of
 * it, or NULL when a quoted string is not closed. */
static const char *skip_value(const char *p)
{
    if (*p != '"') {
        while (is_tchar(*p))
            p++;
        return p;
    }
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && p[1])
            p++;
    return *p == '"' ? p + 1 : NULL;
}

/* Reads the element at p (after its leading white space) into *coding and
 * *q. Returns the end of the element (a ',' or the NUL); *coding is -2
 * when the element is malformed. */
static const char *parse_element(const char *p, int *coding, int *q)
{
    const char *tok = p;
    while (is_tchar(*p))
        p++;
    *coding = p > tok ? coding_of(tok, (size_t)(p - tok)) : -2;
    *q = 1000;
    for (;;) {
        while (is_ows(*p))
            p++;
        if (*p == ',' || *p == '\0')
            return p;
        if (*p != ';')
            break;
        for (p++; is_ows(*p); p++)
            ;
        const char *name = p;
        while (is_tchar(*p))
            p++;
        size_t nlen = (size_t)(p - name);
        while (is_ows(*p))
            p++;
        if (nlen == 0 || *p != '=')
            break;
        for (p++; is_ows(*p); p++)
            ;
        const char *val = p;
        if (!(p = skip_value(p)))
            break;
        if (nlen == 1 && (name[0] == 'q' || name[0] == 'Q') &&
            (*q = parse_q(val, (size_t)(p - val))) < 0)
            break;
    }
    /* Malformed: skip to the next element. */
    *coding = -2;
    while (p && *p && *p != ',')
        p++;
    return p ? p : "";
}

/* The q a request gives coding e: its own, else that of "*", else 0 (an
 * identity not named is acceptable, but last, api_encoding_pick). */
static int q_of(const struct accept_q *a, enum api_encoding e)
{
    return a->q[e] >= 0 ? a->q[e] : a->star >= 0 ? a->star : 0;
}

enum api_encoding api_encoding_pick(const char *header)
{
    if (!header)
        return API_ENC_IDENTITY;
    struct accept_q a = {.q = {-1, -1, -1}, .star = -1};
    const char *p = header;
    while (*p) {
        while (is_ows(*p) || *p == ',')
            p++;
        if (!*p)
            break;
        int coding, q;
        p = parse_element(p, &coding, &q);
        if (coding < 0)
            continue;
        /* A coding named twice keeps its smaller q: a client that said
         * "not this" once did not mean it as a preference. */
        int *slot = coding == API_ENC_COUNT ? &a.star : &a.q[coding];
        if (*slot < 0 || q < *slot)
            *slot = q;
    }
    /* The smallest body first at equal q: br, then gzip, then none. */
    static const enum api_encoding order[] = {API_ENC_BR, API_ENC_GZIP,
                                              API_ENC_IDENTITY};
    enum api_encoding best = API_ENC_IDENTITY;
    int best_q = 0;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        int q = q_of(&a, order[i]);
        if (q > best_q) {
            best = order[i];
            best_q = q;
        }
    }
    /* Nothing acceptable (identity;q=0 and no coding we make): identity
     * all the same, which RFC 9110 allows instead of a 406 that no browser
     * could do anything with. */
    return best;
}

const char *api_encoding_name(enum api_encoding e)
{
    switch (e) {
    case API_ENC_BR: return "br";
    case API_ENC_GZIP: return "gzip";
    default: return "identity";
    }
}

void api_encoding_etag(const char *etag, enum api_encoding e, char *buf,
                       size_t size)
{
    static const char *const suffix[API_ENC_COUNT] = {
        [API_ENC_IDENTITY] = "", [API_ENC_BR] = "-br", [API_ENC_GZIP] = "-gz"};
    size_t n = strlen(etag);
    if (e == API_ENC_IDENTITY || n < 2 || etag[n - 1] != '"') {
        rv_strlcpy(buf, etag, size);
        return;
    }
    snprintf(buf, size, "%.*s%s\"", (int)(n - 1), etag, suffix[e]);
}

void api_encoding_headers(struct evhttp_request *req, enum api_encoding e)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Vary", "Accept-Encoding");
    if (e != API_ENC_IDENTITY)
        evhttp_add_header(out, "Content-Encoding", api_encoding_name(e));
}

enum api_encoding api_encoding_of(struct evhttp_request *req)
{
    return api_encoding_pick(evhttp_find_header(
        evhttp_request_get_input_headers(req), "Accept-Encoding"));
}

/* gzip of data at level into out (room for *outlen bytes; *outlen gets
 * the length written). */
static bool gzip_into(int level, const char *data, size_t len,
                      unsigned char *out, size_t *outlen)
{
    z_stream z = {0};
    /* 15 + 16: the largest window, with the gzip header and trailer. */
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return false;
    z.next_in = (unsigned char *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)*outlen;
    int zrc = deflate(&z, Z_FINISH);
    *outlen = z.total_out;
    deflateEnd(&z);
    return zrc == Z_STREAM_END;
}

struct api_blob *api_encoding_compress(struct api_metrics *m,
                                       enum api_encoding e, int level,
                                       const char *data, size_t len)
{
    /* zlib counts in uInt; bodies are far smaller than that. */
    if (e == API_ENC_IDENTITY || len > 0x7fffffffu)
        return NULL;
    size_t room = e == API_ENC_BR ? BrotliEncoderMaxCompressedSize(len)
                                  : compressBound((uLong)len) + 32;
    unsigned char *out = room ? malloc(room) : NULL;
    if (!out)
        return NULL;
    size_t n = room;
    int64_t t0 = api_mono_us();
    bool ok = e == API_ENC_BR
                  ? BrotliEncoderCompress(level, BROTLI_DEFAULT_WINDOW,
                                          BROTLI_MODE_TEXT, len,
                                          (const uint8_t *)data, &n, out)
                  : gzip_into(level, data, len, out, &n);
    if (ok && m)
        api_metrics_compressed(m, e, len, api_mono_us() - t0);
    struct api_blob *b = ok ? api_blob_new((const char *)out, n) : NULL;
    free(out);
    return b;
}

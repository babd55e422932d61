/* See util.h. */
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/url.h"

int64_t rv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rv_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rv_iso8601(int64_t ms, char *buf, size_t size)
{
    /* Clamp to years 0001..9999 so the arithmetic below cannot overflow and
     * the year always has four digits. */
    const int64_t min_ms = -62135596800000LL, max_ms = 253402300799999LL;
    if (!buf || size == 0)
        return;
    if (ms < min_ms)
        ms = min_ms;
    if (ms > max_ms)
        ms = max_ms;
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000; /* floor */
    int millis = (int)(ms - secs * 1000);
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, size, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, millis);
}

/* Days from 1970-01-01 to the given civil date (proleptic Gregorian;
 * H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* Reads exactly n decimal digits. */
static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int rv_parse_iso8601(const char *s, int64_t *out_ms)
{
    int y, mo, d, h, mi, se, ms = 0;
    /* Each check runs only if the ones before passed, so the fixed offsets
     * never read past the NUL of a short string. */
    if (!s || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
        s[7] != '-' || digits(s + 8, 2, &d) || s[10] != 'T' ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) ||
        s[16] != ':' || digits(s + 17, 2, &se))
        return -1;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        int n = 0, frac = 0;
        while (isdigit((unsigned char)*p)) {
            if (n < 3)
                frac = frac * 10 + (*p - '0');
            n++;
            p++;
        }
        if (n == 0)
            return -1;
        for (int i = n; i < 3; i++)
            frac *= 10;
        ms = frac;
    }
    if (strcmp(p, "Z") != 0 || mo < 1 || mo > 12 || d < 1 ||
        d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 60)
        return -1;
    int64_t days = days_from_civil(y, mo, d);
    *out_ms = ((days * 24 + h) * 60 + mi) * 60000LL + se * 1000LL + ms;
    return 0;
}

static bool id_char(char c, bool first)
{
    /* isalnum() in the C locale is ASCII only; say so explicitly anyway,
     * so a locale change can never let UTF-8 bytes through. */
    if ((unsigned char)c > 127)
        return false;
    if (isalnum((unsigned char)c))
        return true;
    return !first && (c == '.' || c == '_' || c == '-');
}

int rv_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int rv_cmp_str_key(const void *key, const void *elem)
{
    return strcmp(key, *(const char *const *)elem);
}

bool rv_repo_id_valid(const char *id)
{
    if (!id || !*id)
        return false;
    size_t n = 0;
    for (const char *p = id; *p; p++, n++) {
        if (n >= RV_REPO_ID_MAX || !id_char(*p, p == id))
            return false;
    }
    return true;
}

bool rv_github_name_valid(const char *s)
{
    if (!s || strlen(s) > 200)
        return false;
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || !slash[1] || strchr(slash + 1, '/'))
        return false;
    for (const char *p = s; *p; p++) {
        if (p == slash)
            continue;
        if ((unsigned char)*p > 127 ||
            !(isalnum((unsigned char)*p) || *p == '.' || *p == '_' ||
              *p == '-'))
            return false;
    }
    /* "." and ".." are path tricks, not names. */
    size_t owner_len = (size_t)(slash - s);
    if ((owner_len == 1 && s[0] == '.') ||
        (owner_len == 2 && s[0] == '.' && s[1] == '.') ||
        !strcmp(slash + 1, ".") || !strcmp(slash + 1, ".."))
        return false;
    return true;
}

bool rv_url_userinfo(const char *url, size_t *start, size_t *end)
{
    const char *scheme = strstr(url, "://");
    if (!scheme)
        return false;
    const char *auth = scheme + 3;
    size_t authlen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < authlen; i++)
        if (auth[i] == '@')
            at = auth + i;
    if (!at)
        return false;
    *start = (size_t)(auth - url);
    *end = (size_t)(at - url) + 1;
    return true;
}

static bool is_http(const char *url)
{
    return strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0;
}

/* True when the userinfo is a credential: it has a password, or it is a
 * bare name on http(s), where it can only be a token (ssh needs its user
 * name, so "ssh://git@host" keeps it). */
static bool userinfo_is_secret(const char *url, size_t start, size_t end)
{
    if (memchr(url + start, ':', end - start))
        return true;
    return is_http(url);
}

bool rv_url_host(const char *url, const char **host, size_t *len)
{
    struct rv_url u;
    if (rv_url_parse(url, &u) != RV_URL_OK)
        return false;
    *host = url + u.host_at;
    *len = u.host_len;
    rv_url_free(&u);
    return *len > 0;
}

bool rv_remote_url_valid(const char *url)
{
    if (!url || !*url || strlen(url) > 2048)
        return false;
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    /* A leading '-' would be read as an option by git or ssh. */
    if (url[0] == '-')
        return false;
    size_t s, e;
    if (rv_url_userinfo(url, &s, &e) && userinfo_is_secret(url, s, e))
        return false;
    if (is_http(url) || !strncmp(url, "ssh://", 6) ||
        !strncmp(url, "git://", 6)) {
        const char *host;
        size_t len;
        return rv_url_host(url, &host, &len);
    }
    if (!strncmp(url, "file://", 7))
        return url[7] == '/';
    if (strstr(url, "://"))
        return false; /* an unknown scheme */
    if (url[0] == '/')
        return true;
    /* scp-like: [user@]host:path, with a ':' before any '/'. */
    const char *colon = strchr(url, ':');
    const char *slash = strchr(url, '/');
    return colon && colon != url && colon[-1] != '@' &&
           (!slash || colon < slash) && colon[1];
}

int rv_url_strip_credentials(const char *url, char *buf, size_t size)
{
    size_t s, e;
    if (!buf || size == 0)
        return -1;
    if (!url)
        url = "";
    if (rv_url_userinfo(url, &s, &e) && userinfo_is_secret(url, s, e)) {
        int n = snprintf(buf, size, "%.*s%s", (int)s, url, url + e);
        if (n < 0 || (size_t)n >= size) {
            buf[0] = '\0'; /* never hand back a cut URL */
            return -1;
        }
        return 0;
    }
    if (rv_strlcpy(buf, url, size) != 0) {
        buf[0] = '\0';
        return -1;
    }
    return 0;
}

bool rv_kind_valid(const char *kind)
{
    return kind && (!strcmp(kind, "branches") || !strcmp(kind, "prs"));
}

int rv_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    /* strtoll skips leading blanks; a setting of " 5" is a typo, refuse. */
    if (!s || !*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Fills buf with random bytes: getrandom, then /dev/urandom, then a PRNG
 * seeded from time, pid and the address space (unique enough for ids,
 * which need not be secret). */
static void random_bytes(unsigned char *buf, size_t len)
{
    ssize_t got = getrandom(buf, len, GRND_NONBLOCK);
    if (got == (ssize_t)len)
        return;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, len);
        close(fd);
        if (n == (ssize_t)len)
            return;
    }
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static uint64_t state;
    pthread_mutex_lock(&lock);
    if (state == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        state = ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)ts.tv_nsec ^
                ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)&ts;
        state |= 1;
    }
    for (size_t i = 0; i < len; i++) {
        /* splitmix64 */
        uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        buf[i] = (unsigned char)(z ^ (z >> 31));
    }
    pthread_mutex_unlock(&lock);
}

void rv_job_id_new(char *buf, size_t size)
{
    unsigned char rnd[8];
    random_bytes(rnd, sizeof(rnd));
    snprintf(buf, size, "j-%llx-%02x%02x%02x%02x%02x%02x%02x%02x",
             (unsigned long long)rv_now_ms(), rnd[0], rnd[1], rnd[2], rnd[3],
             rnd[4], rnd[5], rnd[6], rnd[7]);
}

int rv_strlcpy(char *dst, const char *src, size_t size)
{
    if (size == 0)
        return -1;
    size_t n = strlen(src);
    if (n >= size) {
        memcpy(dst, src, size - 1);
        dst[size - 1] = '\0';
        return -1;
    }
    memcpy(dst, src, n + 1);
    return 0;
}

void rv_hex_encode(const void *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *b = bytes;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool rv_hex_decode(const char *hex, size_t len, unsigned char *out, size_t n)
{
    if (len != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

int rv_mkdirs(const char *path)
{
    char buf[PATH_MAX];
    if (rv_strlcpy(buf, path, sizeof(buf)) != 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

size_t rv_utf8_seq(const unsigned char *s, size_t len)
{
    unsigned c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0; /* a continuation byte, or never valid */
    }
    if (n > len)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return n;
}

size_t rv_utf8_boundary(const char *s, size_t n)
{
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    return n;
}

size_t rv_utf8_valid_prefix(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s), i = 0;
    while (i < len) {
        size_t n = rv_utf8_seq(p + i, len - i);
        if (n == 0)
            break;
        i += n;
    }
    return i;
}

size_t rv_utf8_truncate(char *s)
{
    size_t i = rv_utf8_valid_prefix(s);
    s[i] = '\0';
    return i;
}

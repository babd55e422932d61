/* See log.h. */
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"

#define LOG_MAX_SECRETS 16
#define LOG_MIN_SECRET 4          /* shorter values would hit plain words */
#define LOG_REDACTED "[redacted]"
#define LOG_REDACTED_SHORT "***"  /* in place, for secrets under 10 bytes */
#define LOG_MSG_MAX 16384         /* longer strings are cut, after redaction */
#define LOG_MAX_DEPTH 16          /* deeper field values are not copied */

rv_log_level rv_log_min_level = RV_LOG_INFO;

/* log_lock guards everything below, and the write of each line, so lines
 * from threads of one process never interleave. Lines from several
 * processes do not either: each is sent with one write(2). */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char *log_secrets[LOG_MAX_SECRETS]; /* longest first; owned */
static size_t log_secret_lens[LOG_MAX_SECRETS];
static int log_nsecrets;
static char log_process[32];
static int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int rv_log_parse_level(const char *s, rv_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (s && strcmp(s, level_names[i]) == 0) {
            *out = (rv_log_level)i;
            return 0;
        }
    }
    if (s && strcmp(s, "warning") == 0) {
        *out = RV_LOG_WARN;
        return 0;
    }
    return -1;
}

void rv_log_set_process(const char *name)
{
    pthread_mutex_lock(&log_lock);
    rv_strlcpy(log_process, name ? name : "", sizeof(log_process));
    pthread_mutex_unlock(&log_lock);
}

void rv_log_add_secret(const char *secret)
{
    if (!secret || strlen(secret) < LOG_MIN_SECRET)
        return;
    size_t len = strlen(secret);
    pthread_mutex_lock(&log_lock);
    bool known = false;
    for (int i = 0; i < log_nsecrets && !known; i++)
        known = strcmp(log_secrets[i], secret) == 0;
    char *copy = NULL;
    if (!known && log_nsecrets < LOG_MAX_SECRETS)
        copy = strdup(secret);
    if (copy) {
        /* Keep the longest first, so a secret that contains another is
         * replaced whole rather than leaving its tail visible. */
        int i = log_nsecrets++;
        while (i > 0 && log_secret_lens[i - 1] < len) {
            log_secrets[i] = log_secrets[i - 1];
            log_secret_lens[i] = log_secret_lens[i - 1];
            i--;
        }
        log_secrets[i] = copy;
        log_secret_lens[i] = len;
    }
    pthread_mutex_unlock(&log_lock);
}

void rv_log_clear_secrets(void)
{
    pthread_mutex_lock(&log_lock);
    for (int i = 0; i < log_nsecrets; i++) {
        free(log_secrets[i]);
        log_secrets[i] = NULL;
    }
    log_nsecrets = 0;
    pthread_mutex_unlock(&log_lock);
}

void rv_log_set_fd(int fd)
{
    pthread_mutex_lock(&log_lock);
    log_fd = fd < 0 ? 2 : fd;
    pthread_mutex_unlock(&log_lock);
}

/* Caller holds log_lock. The length of the registered secret that starts
 * at s (at most len bytes available), or 0. */
static size_t secret_at_locked(const char *s, size_t len)
{
    for (int i = 0; i < log_nsecrets; i++) {
        size_t n = log_secret_lens[i];
        if (n <= len && memcmp(s, log_secrets[i], n) == 0)
            return n;
    }
    return 0;
}

/* Caller holds log_lock. Copies len bytes of s into out, replacing each
 * secret by "[redacted]"; out must hold redact_bound(len) bytes. One pass,
 * so a marker is never searched again. Returns the bytes written. */
static size_t redact_into_locked(const char *s, size_t len, char *out)
{
    size_t w = 0;
    for (size_t r = 0; r < len;) {
        size_t n = log_nsecrets ? secret_at_locked(s + r, len - r) : 0;
        if (n) {
            memcpy(out + w, LOG_REDACTED, strlen(LOG_REDACTED));
            w += strlen(LOG_REDACTED);
            r += n;
        } else {
            out[w++] = s[r++];
        }
    }
    return w;
}

/* Every secret has at least LOG_MIN_SECRET bytes and becomes a 10-byte
 * marker, so output grows at most 10/4 times. */
static size_t redact_bound(size_t len)
{
    return len / LOG_MIN_SECRET * strlen(LOG_REDACTED) + len % LOG_MIN_SECRET +
           1;
}

void rv_log_redact(char *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&log_lock);
    /* In place, the writer never passes the reader: a secret of 10 bytes
     * or more becomes "[redacted]", a shorter one "***". */
    size_t len = strlen(s), w = 0, r = 0;
    while (r < len) {
        size_t n = secret_at_locked(s + r, len - r);
        if (n) {
            const char *mark =
                n >= strlen(LOG_REDACTED) ? LOG_REDACTED : LOG_REDACTED_SHORT;
            memmove(s + w, mark, strlen(mark));
            w += strlen(mark);
            r += n;
        } else {
            s[w++] = s[r++];
        }
    }
    s[w] = '\0';
    pthread_mutex_unlock(&log_lock);
}

/* Caller holds log_lock. A JSON string of len bytes of s with secrets
 * redacted and every byte that is not valid UTF-8 replaced by U+FFFD, so
 * jansson accepts it and nothing vanishes silently. New reference, or NULL
 * when out of memory. */
static json_t *clean_string_locked(const char *s, size_t len)
{
    char *red = malloc(redact_bound(len));
    if (!red)
        return NULL;
    size_t rlen = redact_into_locked(s, len, red);
    if (rlen > LOG_MSG_MAX)
        rlen = LOG_MSG_MAX; /* a cut sequence at the end becomes U+FFFD */
    char *out = malloc(rlen * 3 + 1);
    json_t *j = NULL;
    if (out) {
        size_t w = 0;
        for (size_t r = 0; r < rlen;) {
            size_t n = rv_utf8_seq((const unsigned char *)red + r, rlen - r);
            if (n == 0) {
                memcpy(out + w, "\xef\xbf\xbd", 3);
                w += 3;
                r++;
            } else {
                memcpy(out + w, red + r, n);
                w += n;
                r += n;
            }
        }
        j = json_stringn(out, w);
        free(out);
    }
    free(red);
    return j;
}

/* Caller holds log_lock. A copy of a field value with every string in it
 * cleaned (the caller's value may be shared, so it is never changed in
 * place). New reference, or NULL when out of memory. */
static json_t *clean_value_locked(json_t *v, int depth)
{
    if (depth > LOG_MAX_DEPTH)
        return json_string("(too deep)");
    if (json_is_string(v))
        return clean_string_locked(json_string_value(v), json_string_length(v));
    if (json_is_object(v)) {
        json_t *copy = json_object();
        const char *key;
        json_t *member;
        json_object_foreach(v, key, member) {
            if (copy)
                json_object_set_new(copy, key,
                                    clean_value_locked(member, depth + 1));
        }
        return copy;
    }
    if (json_is_array(v)) {
        json_t *copy = json_array();
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) {
            if (copy)
                json_array_append_new(copy,
                                      clean_value_locked(item, depth + 1));
        }
        return copy;
    }
    return json_incref(v);
}

static bool is_reserved_key(const char *key)
{
    static const char *const reserved[] = {"ts", "level", "proc",
                                           "msg", "repo", "job"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcmp(key, reserved[i]) == 0)
            return true;
    return false;
}

/* Formats fmt into a malloc'd string (freed by the caller), or NULL. */
static char *format_message(const char *fmt, va_list ap, size_t *out_len)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *msg = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (msg)
        vsnprintf(msg, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    *out_len = msg ? (size_t)n : 0;
    return msg;
}

/* Caller holds log_lock. Sends len bytes with one write(2) unless the
 * kernel takes only part (then the rest follows). */
static void write_all_locked(const char *text, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(log_fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
}

void rv_log_write(rv_log_level level, const char *repo, const char *job,
                  json_t *fields, const char *fmt, ...)
{
    char ts[32];
    if (level < rv_log_min_level) {
        json_decref(fields);
        return;
    }
    size_t msglen;
    va_list ap;
    va_start(ap, fmt);
    char *msg = format_message(fmt, ap, &msglen);
    va_end(ap);
    rv_iso8601(rv_now_ms(), ts, sizeof(ts));

    json_t *line = json_object();
    if (!line)
        goto out;
    json_object_set_new(line, "ts", json_string(ts));
    json_object_set_new(line, "level", json_string(level_names[level & 3]));
    pthread_mutex_lock(&log_lock);
    if (log_process[0])
        json_object_set_new(line, "proc", json_string(log_process));
    json_object_set_new(line, "msg",
                        msg ? clean_string_locked(msg, msglen)
                            : json_string("(message lost: out of memory)"));
    if (repo)
        json_object_set_new(line, "repo",
                            clean_string_locked(repo, strlen(repo)));
    if (job)
        json_object_set_new(line, "job", clean_string_locked(job, strlen(job)));
    if (json_is_object(fields)) {
        const char *key;
        json_t *value;
        json_object_foreach(fields, key, value) {
            if (!is_reserved_key(key))
                json_object_set_new(line, key, clean_value_locked(value, 0));
        }
    }
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text) {
        /* json_dumps allocates strlen + 1 bytes: the NUL becomes the
         * newline, so the line goes out in one write. */
        size_t len = strlen(text);
        text[len] = '\n';
        write_all_locked(text, len + 1);
        free(text);
    }
    pthread_mutex_unlock(&log_lock);

out:
    json_decref(line);
    json_decref(fields);
    free(msg);
}

/* See log.h. */
#include "common/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"

#define LOG_MAX_SECRETS 16
#define LOG_REDACTED "[redacted]"

rv_log_level rv_log_min_level = RV_LOG_INFO;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char *log_secrets[LOG_MAX_SECRETS];
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
    rv_strlcpy(log_process, name ? name : "", sizeof(log_process));
}

void rv_log_add_secret(const char *secret)
{
    /* Very short values would redact ordinary words; they are no secret
     * worth the name and are refused by nothing else, so skip them. */
    if (!secret || strlen(secret) < 4)
        return;
    pthread_mutex_lock(&log_lock);
    if (log_nsecrets < LOG_MAX_SECRETS) {
        char *copy = strdup(secret);
        if (copy)
            log_secrets[log_nsecrets++] = copy;
    }
    pthread_mutex_unlock(&log_lock);
}

void rv_log_clear_secrets(void)
{
    pthread_mutex_lock(&log_lock);
    for (int i = 0; i < log_nsecrets; i++)
        free(log_secrets[i]);
    log_nsecrets = 0;
    pthread_mutex_unlock(&log_lock);
}

void rv_log_set_fd(int fd)
{
    log_fd = fd < 0 ? 2 : fd;
}

/* Caller holds log_lock. The marker replaces a secret only where it fits
 * (every secret is at least 4 bytes, the marker is cut to the secret's
 * length), so the string never grows. */
static void redact_locked(char *s)
{
    for (int i = 0; i < log_nsecrets; i++) {
        const char *sec = log_secrets[i];
        size_t slen = strlen(sec);
        char *hit;
        while ((hit = strstr(s, sec)) != NULL) {
            size_t mlen = strlen(LOG_REDACTED) < slen ? strlen(LOG_REDACTED) : slen;
            memcpy(hit, LOG_REDACTED, mlen);
            memmove(hit + mlen, hit + slen, strlen(hit + slen) + 1);
        }
    }
}

void rv_log_redact(char *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&log_lock);
    redact_locked(s);
    pthread_mutex_unlock(&log_lock);
}

/* A JSON string from arbitrary bytes: invalid UTF-8 bytes become '?', so
 * nothing is dropped silently and jansson always accepts it. */
static json_t *safe_string(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    char *copy = strdup(s);
    if (!copy)
        return json_string("(unprintable)");
    for (unsigned char *p = (unsigned char *)copy; *p; p++)
        if (*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

void rv_log_write(rv_log_level level, const char *repo, const char *job,
                  json_t *fields, const char *fmt, ...)
{
    char msg[2048], ts[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rv_iso8601(rv_now_ms(), ts, sizeof(ts));

    json_t *line = json_object();
    if (!line) {
        json_decref(fields);
        return;
    }
    json_object_set_new(line, "ts", json_string(ts));
    json_object_set_new(line, "level", json_string(level_names[level & 3]));
    if (log_process[0])
        json_object_set_new(line, "proc", json_string(log_process));
    pthread_mutex_lock(&log_lock);
    redact_locked(msg);
    json_object_set_new(line, "msg", safe_string(msg));
    if (repo)
        json_object_set_new(line, "repo", safe_string(repo));
    if (job)
        json_object_set_new(line, "job", safe_string(job));
    if (json_is_object(fields)) {
        const char *key;
        json_t *value;
        json_object_foreach(fields, key, value) {
            if (json_is_string(value)) {
                char *copy = strdup(json_string_value(value));
                if (!copy)
                    continue;
                redact_locked(copy);
                json_object_set_new(line, key, safe_string(copy));
                free(copy);
            } else {
                json_object_set(line, key, value);
            }
        }
    }
    pthread_mutex_unlock(&log_lock);
    json_decref(fields);

    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(line);
    if (!text)
        return;
    size_t len = strlen(text);
    text[len] = '\n'; /* json_dumps leaves room only for the NUL: reuse it */
    ssize_t off = 0;
    while ((size_t)off < len + 1) {
        ssize_t n = write(log_fd, text + off, len + 1 - (size_t)off);
        if (n <= 0)
            break;
        off += n;
    }
    free(text);
}

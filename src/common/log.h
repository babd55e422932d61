/*
 * Structured logging: one JSON object per line on stderr, e.g.
 *   {"ts":"2026-11-24T09:00:00.000Z","level":"info","msg":"sync done",
 *    "repo":"widgets","job":"j-...","ms":12}
 * LOG() checks the level before formatting anything. Registered secrets are
 * replaced by "[redacted]" in every message and field value, so a token that
 * slips into a message (e.g. inside an error from a library) is never
 * written.
 */
#ifndef REPOVIEW_COMMON_LOG_H
#define REPOVIEW_COMMON_LOG_H

#include <jansson.h>
#include <stdarg.h>

typedef enum rv_log_level {
    RV_LOG_DEBUG = 0,
    RV_LOG_INFO = 1,
    RV_LOG_WARN = 2,
    RV_LOG_ERROR = 3,
} rv_log_level;

extern rv_log_level rv_log_min_level;

/* Parses "debug", "info", "warn", "error"; returns 0, or -1 if unknown. */
int rv_log_parse_level(const char *s, rv_log_level *out);

/* Sets the component name written as "proc" on every line ("api", ...). */
void rv_log_set_process(const char *name);

/* Registers a secret that must never be printed (copied). Values shorter
 * than 4 bytes are ignored (they would redact ordinary words), and so are
 * repeats. At most 16 secrets. */
void rv_log_add_secret(const char *secret);

/* Forgets every registered secret (tests). */
void rv_log_clear_secrets(void);

/* Sends log lines to `fd` instead of stderr (tests); -1 restores stderr. */
void rv_log_set_fd(int fd);

/* Writes one line. repo and job may be NULL. `fields`, if not NULL, is an
 * object whose members are added to the line; the reference is stolen. */
void rv_log_write(rv_log_level level, const char *repo, const char *job,
                  json_t *fields, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#define LOG(level, repo, job, ...)                                          \
    do {                                                                    \
        if ((level) >= rv_log_min_level)                                    \
            rv_log_write((level), (repo), (job), NULL, __VA_ARGS__);        \
    } while (0)

/* As LOG, with extra fields (a json object, stolen even when filtered). */
#define LOGF(level, repo, job, fields, ...)                                 \
    do {                                                                    \
        if ((level) >= rv_log_min_level)                                    \
            rv_log_write((level), (repo), (job), (fields), __VA_ARGS__);    \
        else                                                                \
            json_decref(fields);                                            \
    } while (0)

/* Replaces every registered secret in `s` in place. The result is never
 * longer than `s`: a secret of 10 bytes or more becomes "[redacted]", a
 * shorter one (secrets have at least 4 bytes) becomes "***". Log lines
 * always use "[redacted]". Exposed for code that must put library text in
 * a response or in Redis. */
void rv_log_redact(char *s);

#endif

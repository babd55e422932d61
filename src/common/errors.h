/*
 * One error enum for the whole project. The Lua scripts return the same
 * numbers (lua/includes/codes.lua; tests/unit/test_errors.c keeps the two in
 * step), and the API maps them to HTTP statuses in one place (api/http.c).
 */
#ifndef REPOVIEW_COMMON_ERRORS_H
#define REPOVIEW_COMMON_ERRORS_H

typedef enum rv_err {
    RV_OK = 0,
    RV_ERR_NOMEM = 1,        /* an allocation failed */
    RV_ERR_INVALID = 2,      /* bad input: id, URL, kind, JSON, value range */
    RV_ERR_NOT_FOUND = 3,    /* no such repo (or job, or key) */
    RV_ERR_EXISTS = 4,       /* a repo with this id is already registered */
    RV_ERR_NO_GITHUB = 5,    /* PR work asked of a repo with no github name */
    RV_ERR_FENCED = 6,       /* a newer claim owns this repo and kind */
    RV_ERR_STALE_JOB = 7,    /* the job no longer matches the repo's state */
    RV_ERR_RETRY = 8,        /* the other kind's data moved; render again */
    RV_ERR_REDIS = 9,        /* Redis unreachable or the connection broke */
    RV_ERR_PROTOCOL = 10,    /* Redis or a script answered something unexpected */
    RV_ERR_CONFIG = 11,      /* a setting is invalid */
    RV_ERR_IO = 12,          /* a file system or socket operation failed */
    RV_ERR_GIT = 13,         /* libgit2 failed */
    RV_ERR_HTTP = 14,        /* an HTTP exchange failed */
    RV_ERR_TIMEOUT = 15,     /* an operation ran out of time */
    RV_ERR_DECODE = 16,      /* a job payload or response could not be decoded */
    RV_ERR_TOO_LARGE = 17,   /* input past a size limit */
    RV_ERR_LEASE_LOST = 18,  /* the worker's lease lapsed; it must stop */
    RV_ERR_SHUTDOWN = 19,    /* the process is stopping */
    RV_ERR_URL_NOT_ALLOWED = 20, /* the remote URL policy refuses a URL */
    RV_ERR__COUNT
} rv_err;

/* A sentence describing the code; never NULL, static storage. */
const char *rv_strerror(int code);

/* The stable snake_case name used in JSON errors ("not_found"); static. */
const char *rv_errname(int code);

#endif

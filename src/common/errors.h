/*
 * One error vocabulary for the whole project: the codes functions return
 * and the codes a failed sync reports to users (`branchSyncError.code`,
 * `prSyncError.code`) are one list, each with one stable snake_case name.
 * The Lua scripts use the same numbers (lua/includes/codes.lua;
 * tests/unit/test_errors.c keeps the two in step), and the API maps them to
 * HTTP statuses in one place (api/http.c).
 *
 * The codes a sync reports are marked "sync:" below; docs/reliability.md
 * lists them for users. A constant is RV_ERR_ and its name upper-cased.
 */
#ifndef REPOVIEW_COMMON_ERRORS_H
#define REPOVIEW_COMMON_ERRORS_H

typedef enum rv_err {
    RV_OK = 0,
    RV_ERR_NOMEM = 1,        /* an allocation failed */
    RV_ERR_INVALID = 2,      /* bad input: id, URL, kind, JSON, value range */
    RV_ERR_NOT_FOUND = 3,    /* no such repo (or job, or key); sync: the
                              * remote or GitHub has no such repository */
    RV_ERR_EXISTS = 4,       /* a repo with this id is already registered */
    RV_ERR_NO_GITHUB = 5,    /* PR work asked of a repo with no github name */
    RV_ERR_FENCED = 6,       /* a newer claim owns this repo and kind */
    RV_ERR_STALE_JOB = 7,    /* the job no longer matches the repo's state */
    RV_ERR_RETRY = 8,        /* the other kind's data moved; render again */
    RV_ERR_REDIS = 9,        /* Redis unreachable or the connection broke */
    RV_ERR_PROTOCOL = 10,    /* Redis or a script answered oddly */
    RV_ERR_CONFIG = 11,      /* a setting is invalid */
    RV_ERR_IO = 12,          /* a file system or socket operation failed */
    RV_ERR_GIT = 13,         /* libgit2 failed; sync: the local mirror */
    RV_ERR_HTTP = 14,        /* an HTTP exchange failed */
    RV_ERR_TIMEOUT = 15,     /* an operation ran out of time; sync: the
                              * fetch passed REPOVIEW_FETCH_TIMEOUT */
    RV_ERR_DECODE = 16,      /* a job payload or answer would not decode */
    RV_ERR_TOO_LARGE = 17,   /* input past a size limit */
    RV_ERR_LEASE_LOST = 18,  /* the worker's lease lapsed; it must stop */
    RV_ERR_SHUTDOWN = 19,    /* the process is stopping */
    RV_ERR_URL_NOT_ALLOWED = 20, /* the remote URL policy refuses a URL;
                                  * sync: also the address connected to */
    /* Sync codes only. Branch sync (the remote): */
    RV_ERR_UNREACHABLE = 21, /* the name does not resolve or nothing listens */
    RV_ERR_AUTH_FAILED = 22, /* the remote refused the credentials */
    RV_ERR_BAD_REMOTE = 23,  /* TLS failed or the server speaks no git */
    RV_ERR_CANCELLED = 24,   /* the repo was removed while it synced */
    RV_ERR_NO_DEFAULT_BRANCH = 25, /* the remote names no usable default */
    /* PR sync (GitHub): */
    RV_ERR_RATE_LIMITED = 26,       /* retry after the rate limit's reset */
    RV_ERR_UNAUTHORIZED = 27,       /* GitHub refused the token */
    RV_ERR_GITHUB_UNAVAILABLE = 28, /* GitHub answered 5xx or not at all */
    RV_ERR_BAD_RESPONSE = 29,       /* GitHub's answer could not be used */
    RV_ERR_BAD_REQUEST = 30,        /* the repo's github name is unusable */
    /* Either kind: */
    RV_ERR_INTERNAL = 31,    /* any other failure; also what rv_errname()
                              * calls an unknown code */
    RV_ERR_WORKER_LOST = 32, /* the worker died or hung; the reaper gave up */
    RV_ERR__COUNT
} rv_err;

/* A sentence describing the code; never NULL, static storage. */
const char *rv_strerror(int code);

/* The stable snake_case name used in JSON errors ("not_found"), "internal"
 * for an unknown code; static storage. */
const char *rv_errname(int code);

#endif

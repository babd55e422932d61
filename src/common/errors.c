/* See errors.h. */
#include "common/errors.h"

/* Indexed by code; a code missing here would show as "internal" (and
 * tests/unit/test_errors.c fails). The names of the sync codes are shown to
 * users and promised by the contract: never rename one lightly. */
static const struct {
    const char *name;
    const char *text;
} rv_errors[RV_ERR__COUNT] = {
    [RV_OK] = {"ok", "success"},
    [RV_ERR_NOMEM] = {"nomem", "out of memory"},
    [RV_ERR_INVALID] = {"invalid", "invalid input"},
    [RV_ERR_NOT_FOUND] = {"not_found", "not found"},
    [RV_ERR_EXISTS] = {"exists", "already exists"},
    [RV_ERR_NO_GITHUB] = {"no_github", "the repo has no GitHub name, so it "
                                       "has no pull requests to sync"},
    [RV_ERR_FENCED] = {"fenced", "a newer sync owns this repo and kind"},
    [RV_ERR_STALE_JOB] = {"stale_job",
                          "the job no longer matches the repo's state"},
    [RV_ERR_RETRY] = {"retry", "the data changed meanwhile; try again"},
    [RV_ERR_REDIS] = {"redis", "Redis is unreachable"},
    [RV_ERR_PROTOCOL] = {"protocol", "unexpected answer from Redis"},
    [RV_ERR_CONFIG] = {"config", "invalid configuration"},
    [RV_ERR_IO] = {"io", "input/output error"},
    [RV_ERR_GIT] = {"git", "git operation failed"},
    [RV_ERR_HTTP] = {"http", "HTTP request failed"},
    [RV_ERR_TIMEOUT] = {"timeout", "timed out"},
    [RV_ERR_DECODE] = {"decode", "could not decode the data"},
    [RV_ERR_TOO_LARGE] = {"too_large", "input too large"},
    [RV_ERR_LEASE_LOST] = {"lease_lost", "the worker's lease lapsed"},
    [RV_ERR_SHUTDOWN] = {"shutdown", "the process is stopping"},
    [RV_ERR_URL_NOT_ALLOWED] = {"url_not_allowed",
                                "the remote URL policy refuses the URL"},
    [RV_ERR_UNREACHABLE] = {"unreachable", "the remote cannot be reached"},
    [RV_ERR_AUTH_FAILED] = {"auth_failed",
                            "the remote refused the credentials"},
    [RV_ERR_BAD_REMOTE] = {"bad_remote",
                           "the remote did not answer as a git server"},
    [RV_ERR_CANCELLED] = {"cancelled", "the sync was cancelled"},
    [RV_ERR_NO_DEFAULT_BRANCH] = {"no_default_branch",
                                  "the remote has no default branch"},
    [RV_ERR_RATE_LIMITED] = {"rate_limited",
                             "GitHub's rate limit is exhausted"},
    [RV_ERR_UNAUTHORIZED] = {"unauthorized", "GitHub refused the token"},
    [RV_ERR_GITHUB_UNAVAILABLE] = {"github_unavailable",
                                   "GitHub is unavailable"},
    [RV_ERR_BAD_RESPONSE] = {"bad_response",
                             "GitHub's answer could not be used"},
    [RV_ERR_BAD_REQUEST] = {"bad_request",
                            "the request to GitHub cannot be made"},
    [RV_ERR_INTERNAL] = {"internal", "internal error"},
    [RV_ERR_WORKER_LOST] = {"worker_lost",
                            "the worker running the sync was lost"},
};

const char *rv_strerror(int code)
{
    if (code < 0 || code >= RV_ERR__COUNT || !rv_errors[code].text)
        return "unknown error";
    return rv_errors[code].text;
}

const char *rv_errname(int code)
{
    if (code < 0 || code >= RV_ERR__COUNT || !rv_errors[code].name)
        return "internal";
    return rv_errors[code].name;
}

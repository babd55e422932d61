/*
 * The remote URL policy: which remotes a repo may name, checked in one
 * place by the API and the CLI at registration and by the worker again
 * before and while it fetches (on the name it connects to, on every
 * address that name resolves to, and on every host a redirect leads to).
 *
 * Closed by default, as GitLab, Gitea and git itself are: https, ssh and
 * git only; no local paths; no loopback, private, link-local,
 * unique-local, CGNAT, multicast, reserved or unspecified address; no
 * credential anywhere in the URL. The settings (REPOVIEW_ALLOWED_SCHEMES,
 * REPOVIEW_ALLOW_LOCAL_PATHS, REPOVIEW_ALLOW_PRIVATE_NETWORKS,
 * REPOVIEW_ALLOWED_HOSTS_REMOTE, REPOVIEW_BLOCKED_HOSTS_REMOTE) open it.
 * docs/reliability.md explains each rule.
 */
#ifndef REPOVIEW_COMMON_URLPOLICY_H
#define REPOVIEW_COMMON_URLPOLICY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* rv_addr_class_v4/v6 and rv_host_parse_addr, which the checks use. */
#include "common/addrclass.h"

struct rv_config;

/* Schemes as bits of rv_url_policy.schemes. */
enum {
    RV_SCHEME_HTTPS = 1 << 0,
    RV_SCHEME_HTTP = 1 << 1,
    RV_SCHEME_SSH = 1 << 2, /* ssh:// and scp-like user@host:path */
    RV_SCHEME_GIT = 1 << 3,
};

struct rv_url_policy {
    unsigned schemes;    /* RV_SCHEME_* bits allowed */
    char **local_dirs;   /* canonical absolute directories, no trailing '/' */
    size_t nlocal;
    bool allow_private;  /* non-public address classes allowed */
    char **allowed_hosts; /* lower-case patterns; none = any host */
    size_t nallowed;
    char **blocked_hosts; /* lower-case patterns always refused */
    size_t nblocked;
};

/* Builds the policy from the five settings of cfg. RV_OK, or RV_ERR_CONFIG
 * (an unknown scheme, a relative directory, a bad pattern) or RV_ERR_NOMEM
 * with a sentence in err. The policy owns its strings: release it with
 * rv_url_policy_free. */
int rv_url_policy_load(struct rv_url_policy *p, const struct rv_config *cfg,
                       char *err, size_t errlen);

/* Builds a policy from the settings' texts directly (NULL = the default),
 * as rv_url_policy_load does; for tests and for `repoview up --demo`. */
int rv_url_policy_init(struct rv_url_policy *p, const char *schemes,
                       const char *local_dirs, bool allow_private,
                       const char *allowed_hosts, const char *blocked_hosts,
                       char *err, size_t errlen);

/* Releases what p owns and zeroes it. */
void rv_url_policy_free(struct rv_url_policy *p);

/* Checks a remote URL as registered: its form (rv_remote_url_valid), no
 * credential (password, token userinfo, query string, fragment), the
 * scheme, the host patterns, the address class of a host written as an
 * address (in any form a resolver takes: 2130706433, 0x7f.1, 127.1,
 * [::ffff:127.0.0.1]) or of a name that is local by definition
 * (localhost), and for a local path the allowed directories, after ".."
 * and symbolic links are resolved. RV_OK, or RV_ERR_URL_NOT_ALLOWED (or
 * RV_ERR_INVALID for a URL that is no URL at all) with a sentence in why
 * naming the rule, which never quotes the URL. A NULL policy checks the
 * form and the credentials only (callers that checked the policy
 * already, and tests of trusted local remotes). */
/* As rv_url_policy_check, for the worker about to fetch: a local URL's
 * path must exist (RV_ERR_NOT_FOUND otherwise) and its real path goes
 * into out ("" for other URLs), so that what was checked is what is
 * fetched. */
int rv_url_policy_resolve(const struct rv_url_policy *p, const char *url,
                          char *out, size_t outlen, char *why, size_t whylen);
int rv_url_policy_check(const struct rv_url_policy *p, const char *url,
                        char *why, size_t whylen);

/* For a URL that is a local path (an absolute path or file:///...) that
 * the policy allows: writes the path, resolved (realpath) into out. RV_OK;
 * RV_ERR_NOT_FOUND when it does not exist; RV_ERR_URL_NOT_ALLOWED when it
 * is refused or resolves outside every allowed directory; RV_ERR_INVALID
 * when url is no local path. why says which, without the path. */
int rv_url_policy_local_path(const struct rv_url_policy *p, const char *url,
                             char *out, size_t outlen, char *why,
                             size_t whylen);

/* True when url names a local path (absolute, or file://). */
bool rv_url_is_local(const char *url);

/* Checks a host name the worker is about to connect to (a redirect's
 * target too): host patterns and, when it is written as an address or is
 * localhost, its class. RV_OK or RV_ERR_URL_NOT_ALLOWED with why. */
int rv_url_policy_check_host(const struct rv_url_policy *p, const char *host,
                             char *why, size_t whylen);

/* Checks an address the worker is about to connect to. RV_OK or
 * RV_ERR_URL_NOT_ALLOWED with why. */
int rv_url_policy_check_addr(const struct rv_url_policy *p,
                             const struct sockaddr *sa, char *why,
                             size_t whylen);

#endif

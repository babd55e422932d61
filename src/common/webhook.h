/*
 * GitHub webhooks, the pure part: checking X-Hub-Signature-256 and deciding
 * what a delivery asks for. The API's handler (POST /v1/webhooks/github)
 * adds the I/O: reading the body, matching full_name against the repos'
 * `github` names (case-insensitive), dropping repeated X-GitHub-Delivery
 * ids, and queueing refreshes.
 */
#ifndef REPOVIEW_COMMON_WEBHOOK_H
#define REPOVIEW_COMMON_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>

/* Bits of the kinds mask rv_webhook_route hands back. */
#define RV_WEBHOOK_BRANCHES 1 /* queue a branch sync */
#define RV_WEBHOOK_PRS 2      /* queue a PR sync */

/* Longest "owner/name" GitHub allows is well under this. */
#define RV_WEBHOOK_FULL_NAME_MAX 256

/* True when header is "sha256=<64 hex digits>" (either case) and the digits
 * are the HMAC-SHA256 of body[0..len) keyed with secret. Compared in
 * constant time. False for a NULL or empty secret, a NULL header, or any
 * malformed header. body may be NULL when len is 0. */
bool rv_webhook_signature_ok(const char *secret, const char *body, size_t len,
                             const char *header);

/* The kinds an event name asks for: "push" -> RV_WEBHOOK_BRANCHES;
 * "pull_request", "pull_request_review", "check_suite", "check_run",
 * "status" -> RV_WEBHOOK_PRS; anything else (ping included) -> 0. */
int rv_webhook_event_kinds(const char *event);

/* Routes one delivery. event is the X-GitHub-Event header; body the raw
 * payload (JSON). On RV_OK, *kinds_mask holds the kinds to queue (0: answer
 * without queueing, e.g. ping or an event we do not use) and full_name the
 * payload's repository.full_name ("" when the event is not routed and has
 * none). Returns RV_ERR_INVALID for a missing event name, a body that is
 * not a JSON object, or a routed event without a valid
 * repository.full_name; RV_ERR_TOO_LARGE when full_name does not fit in
 * fnlen; RV_ERR_NOMEM. */
int rv_webhook_route(const char *event, const char *body, size_t len,
                     char *full_name, size_t fnlen, int *kinds_mask);

/* Most owners one delivery names: a transferred repository's new and old
 * owner. */
#define RV_WEBHOOK_OWNERS_MAX 2
/* A GitHub login, lower-cased, and its NUL. */
#define RV_WEBHOOK_OWNER_SIZE 40

/* Whether event asks for an org sync: "installation" (any action),
 * "installation_repositories", and "repository" with action created,
 * deleted, archived, unarchived, renamed, transferred, edited, privatized
 * or publicized. */
bool rv_webhook_is_org_event(const char *event, const char *action);

/* The owners whose org should sync after one delivery, lower-cased:
 * installation.account.login for the installation events,
 * repository.owner.login for a repository event, and for a transfer also
 * changes.owner.from.user.login or .organization.login when present.
 * RV_OK with *n owners (0: not an org event, or an action not listed);
 * RV_ERR_INVALID for a body that is not a JSON object, or an org event
 * whose owner logins are missing or not logins; RV_ERR_NOMEM. */
int rv_webhook_org_owners(const char *event, const char *body, size_t len,
                          char owners[][RV_WEBHOOK_OWNER_SIZE], size_t *n);

#endif

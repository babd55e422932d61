/* Small helpers shared by every binary: time, ids, URLs, strings. */
#ifndef REPOVIEW_COMMON_UTIL_H
#define REPOVIEW_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RV_REPO_ID_MAX 100
#define RV_JOB_ID_MAX 40

/* Wall-clock time in milliseconds since the epoch. */
int64_t rv_now_ms(void);

/* Monotonic time in milliseconds (for timeouts and durations). */
int64_t rv_mono_ms(void);

/* Formats epoch ms as "2026-11-23T10:00:00.000Z" into buf (>= 25 bytes). */
void rv_iso8601(int64_t ms, char *buf, size_t size);

/* Parses an ISO-8601 UTC time ("...Z", optional fraction) to epoch ms.
 * Returns 0, or -1 when malformed. */
int rv_parse_iso8601(const char *s, int64_t *out_ms);

/* qsort comparator for an array of strings (char *), in strcmp order. */
int rv_cmp_str(const void *a, const void *b);

/* bsearch comparator: the string key against an element of such an
 * array. */
int rv_cmp_str_key(const void *key, const void *elem);

/* True when id matches ^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$. */
bool rv_repo_id_valid(const char *id);

/* True when s is "owner/name" as GitHub allows (letters, digits, . _ -). */
bool rv_github_name_valid(const char *s);

/* True for a remote URL the worker can fetch: https://, http://, ssh://,
 * git:// (each with a host), file:///path, scp-like [user@]host:path, or an
 * absolute local path. No control characters, no leading '-', at most 2048
 * bytes. A URL carrying a credential (see rv_url_strip_credentials) is
 * refused: users set GITHUB_TOKEN instead. */
bool rv_remote_url_valid(const char *url);

/* The host of scheme://[userinfo@]host[:port]/... as rv_url_parse
 * (url.h) reads it (the userinfo ends at the authority's last '@', as in
 * rv_url_strip_credentials; an IPv6 literal keeps its brackets): *host
 * points into url, *len its length. False when url is no URL to
 * rv_url_parse or names no host. */
bool rv_url_host(const char *url, const char **host, size_t *len);

/* The userinfo of scheme://userinfo@host..., as [start, end) offsets (end
 * includes the '@'); false when there is none. The last '@' of the
 * authority counts, as in browsers, so a password holding '@' is covered.
 * A scan of the text, not a parse: it finds a credential in a URL that no
 * parser accepts, so that one can be removed before it is shown, and
 * rv_url_parse splits the userinfo with it. */
bool rv_url_userinfo(const char *url, size_t *start, size_t *end);

/* Copies url into buf with any credential in its userinfo removed. A
 * credential is userinfo with a password ("user:pass@", any scheme) or any
 * userinfo on http(s) ("token@", which can only be a token there):
 *   https://x:y@h/p  -> https://h/p      https://tok@h/p -> https://h/p
 *   ssh://git:pw@h/p -> ssh://h/p
 * A plain user name for ssh is kept, since ssh needs it:
 *   ssh://git@h/p and scp-like git@github.com:o/r.git are unchanged.
 * Returns 0, or -1 (buf set to "") if buf is too small. Used before a URL
 * is stored, logged or shown. */
int rv_url_strip_credentials(const char *url, char *buf, size_t size);

/* True when kind is "branches" or "prs". */
bool rv_kind_valid(const char *kind);

/* Parses a decimal int64 in [min, max] with no trailing text.
 * Returns 0, or -1 when malformed or out of range. */
int rv_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Writes a fresh job id ("j-<ms hex>-<random hex>") into buf (>= 40 bytes). */
void rv_job_id_new(char *buf, size_t size);

/* Bounded copy that always terminates; returns -1 if truncated. */
int rv_strlcpy(char *dst, const char *src, size_t size);

/* Lower-case hex of the n bytes at bytes into out (2 * n + 1 bytes). */
void rv_hex_encode(const void *bytes, size_t n, char *out);
/* Exactly 2 * n hex digits (either case) of hex[0..len) into out; false
 * for any other length or a character that is not a hex digit. */
bool rv_hex_decode(const char *hex, size_t len, unsigned char *out, size_t n);

/* mkdir -p with mode 0755: path and every missing parent. 0, or -1 with
 * errno set. */
int rv_mkdirs(const char *path);

/* The length of the valid UTF-8 character at s (len bytes available,
 * len > 0), or 0 when the bytes there are not one: overlong forms,
 * surrogates and code points past U+10FFFF are invalid, as jansson
 * requires. */
size_t rv_utf8_seq(const unsigned char *s, size_t len);

/* The largest n' <= n at which s can be cut without splitting a UTF-8
 * character (s has at least n bytes; s[n] is read when n is inside s):
 * n itself unless s[n] continues a character. For cutting text to a byte
 * limit that stays valid wherever it was valid. */
size_t rv_utf8_boundary(const char *s, size_t n);

/* The length of the longest prefix of s that is valid UTF-8 (as
 * rv_utf8_seq judges it); strlen(s) when all of s is. */
size_t rv_utf8_valid_prefix(const char *s);

/* Cuts s at its first byte that does not start a complete, valid UTF-8
 * character (no overlong forms, surrogates or code points past U+10FFFF,
 * as jansson checks), so that s can go into JSON: a message cut by bytes,
 * or library text quoting raw input, may end in half a character. Returns
 * the new length. */
size_t rv_utf8_truncate(char *s);

#endif

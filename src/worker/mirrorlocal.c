/* The first clone of a mirror from a local path (mirror_local_copy, see
 * mirror_private.h). libgit2's local transport builds a pack of every
 * object in the process (revwalk, delta search, then indexing its own
 * pack: 132 s and 808 MB for libgit2's own history), where the source
 * already holds packs. Here the source's packs are streamed through
 * libgit2's indexer into the mirror, which hashes every object and writes
 * its own index, and its loose objects are inflated, hashed against their
 * names and written; nothing of the source is linked or trusted as it is.
 *
 * The source belongs to someone else and may change under us, so it is
 * read as git clone --no-local would not guard against: its directory is
 * reached from "/" one component at a time with O_NOFOLLOW (its path is
 * the policy's resolved real path, so no symbolic link may appear on the
 * way), and from there every directory and file is opened with openat
 * relative to its parent, never by name again, with O_NOFOLLOW and
 * O_NONBLOCK (a FIFO opens at once instead of blocking), and judged by
 * fstat of what was opened. A symbolic link or a special file anywhere
 * the copy looks refuses the clone outright: the slow fetch would follow
 * or open it by name. A source the copy cannot do right (alternates,
 * shallow, partial, a worktree's git dir, any unexpected configuration)
 * or that fails on the way (corruption, a file vanished in a repack)
 * falls back to the slow fetch. An object that does not inflate or hash
 * to its name, or a pack the indexer rejects, fails the clone: the slow
 * fetch would pack what the source's store says without hashing it
 * (strict hash verification is off in the worker), and the mirror's
 * indexer would then file it under its true name, so the mirror would
 * silently lack the object the refs need. */
#define _GNU_SOURCE /* O_PATH */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/errors.h"
#include "common/urlpolicy.h"
#include "common/util.h"
#include "worker/mirror_private.h"

/* Bytes of a pack handed to the indexer at a time. */
#define PACK_CHUNK (1 << 20)
/* The smallest pack: a 12-byte header and a 20-byte trailer. */
#define PACK_MIN 32
/* A loose object is inflated in memory; a bigger one (git packs those
 * soon) is left to the slow fetch. */
#define LOOSE_MAX ((size_t)64 << 20)
/* The source's config is read to refuse what the copy cannot honour. */
#define CONFIG_MAX (1 << 20)
/* How deep unknown directories under objects/ are checked. */
#define CHECK_DEPTH 3

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define FILE_FLAGS (O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
#ifdef O_PATH
#define WALK_FLAGS (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#else
#define WALK_FLAGS DIR_FLAGS
#endif

/* One copy: what it writes to, how it stops, what it says. */
struct copy {
    git_odb *odb;              /* the mirror's; owned */
    char pack_dir[4200];       /* the mirror's objects/pack */
    mirror_local_stop_fn stop; /* deadline and abort; NULL = none */
    void *stop_arg;
    struct mirror_local_stats *stats; /* the caller's */
    unsigned char *buf;               /* PACK_CHUNK bytes; owned */
};

/* Records why the copy ends and returns how. */
static int verdict(struct copy *c, int how, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int verdict(struct copy *c, int how, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->stats->why, sizeof(c->stats->why), fmt, ap);
    va_end(ap);
    return how;
}

static bool stopped(struct copy *c)
{
    return c->stop && c->stop(c->stop_arg);
}

/* What an openat or fstatat failure means: a symbolic link met with
 * O_NOFOLLOW refuses, anything else (a file gone in a repack, a
 * permission) falls back. */
static int open_failure(struct copy *c, const char *what)
{
    if (errno == ELOOP)
        return verdict(c, MIRROR_LOCAL_REFUSED, "%s is a symbolic link", what);
    return verdict(c, MIRROR_LOCAL_FALLBACK, "cannot open %s: %s", what,
                   strerror(errno));
}

/* Checks that name in dfd is a regular file or a directory (not followed
 * if it is a link) and puts its type into *st. MIRROR_LOCAL_COPIED (go
 * on), or how to end: REFUSED for a link or a special file, FALLBACK for
 * an error. *gone is set for an entry that vanished meanwhile (a
 * temporary file), which is no error. */
static int check_entry(struct copy *c, int dfd, const char *name,
                       struct stat *st, bool *gone)
{
    *gone = false;
    if (fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
            *gone = true;
            return MIRROR_LOCAL_COPIED;
        }
        return verdict(c, MIRROR_LOCAL_FALLBACK, "cannot stat %s: %s", name,
                       strerror(errno));
    }
    if (S_ISLNK(st->st_mode))
        return verdict(c, MIRROR_LOCAL_REFUSED,
                       "the object store holds a symbolic link (%s)", name);
    if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode))
        return verdict(c, MIRROR_LOCAL_REFUSED,
                       "the object store holds a special file (%s)", name);
    return MIRROR_LOCAL_COPIED;
}

/* Opens the regular file name in dfd for reading and checks, on what was
 * opened, that it is a regular file of at most max bytes. The descriptor
 * goes to *fd (the caller closes it), its size to *size. */
static int open_file(struct copy *c, int dfd, const char *name, off_t max,
                     int *fd, off_t *size)
{
    struct stat st;
    *fd = openat(dfd, name, FILE_FLAGS);
    if (*fd < 0)
        return open_failure(c, name);
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(*fd);
        *fd = -1;
        return verdict(c, MIRROR_LOCAL_REFUSED, "%s is not a regular file",
                       name);
    }
    if (st.st_size > max) {
        close(*fd);
        *fd = -1;
        return verdict(c, MIRROR_LOCAL_FALLBACK, "%s is too large", name);
    }
    *size = st.st_size;
    return MIRROR_LOCAL_COPIED;
}

/* Reads exactly n bytes from fd into buf: a short file (truncated since
 * its fstat) is an error. */
static bool read_exact(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

/* Opens the directory at path, a real path (no symbolic link, no "." or
 * ".." component), from "/" one component at a time, so that a link
 * swapped in since the path was resolved and checked is refused rather
 * than followed. The descriptor goes to *out. */
static int open_root(struct copy *c, const char *path, int *out)
{
    int fd = open("/", WALK_FLAGS);
    const char *p = path;
    char comp[NAME_MAX + 1];
    *out = -1;
    if (fd < 0 || path[0] != '/')
        goto fail;
    while (*p == '/')
        p++;
    while (*p) {
        size_t n = strcspn(p, "/");
        if (n > NAME_MAX || (n == 1 && p[0] == '.') ||
            (n == 2 && p[0] == '.' && p[1] == '.')) {
            errno = EINVAL;
            goto fail;
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        p += n;
        while (*p == '/')
            p++;
        /* The last component is read (listed); the others only walked. */
        int next = openat(fd, comp, *p ? WALK_FLAGS : DIR_FLAGS);
        close(fd);
        fd = next;
        if (fd < 0)
            return open_failure(c, "a component of the source's path");
    }
    if (fd >= 0 && path[1] == '\0') {
        /* "/" itself was opened for walking only. */
        int next = openat(fd, ".", DIR_FLAGS & ~O_NOFOLLOW);
        close(fd);
        fd = next;
    }
    if (fd < 0)
        goto fail;
    *out = fd;
    return MIRROR_LOCAL_COPIED;
fail:
    if (fd >= 0)
        close(fd);
    return verdict(c, MIRROR_LOCAL_FALLBACK, "cannot open the source: %s",
                   strerror(errno));
}

/* The git directory of the source open at root: root itself for a bare
 * repository (objects/ and HEAD in it), else its .git directory. */
static int open_gitdir(struct copy *c, int root, int *out)
{
    struct stat st;
    *out = -1;
    if (fstatat(root, "objects", &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISDIR(st.st_mode))
            return verdict(c, MIRROR_LOCAL_REFUSED,
                           "objects is not a directory");
        /* What libgit2 takes for a git directory: objects, refs, HEAD. */
        if (fstatat(root, "refs", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISDIR(st.st_mode) &&
            fstatat(root, "HEAD", &st, AT_SYMLINK_NOFOLLOW) == 0) {
            *out = openat(root, ".", DIR_FLAGS & ~O_NOFOLLOW);
            return *out >= 0 ? MIRROR_LOCAL_COPIED
                             : open_failure(c, "the source");
        }
    }
    if (fstatat(root, ".git", &st, AT_SYMLINK_NOFOLLOW) != 0)
        return verdict(c, MIRROR_LOCAL_FALLBACK, "no git directory found");
    if (S_ISLNK(st.st_mode))
        return verdict(c, MIRROR_LOCAL_REFUSED, ".git is a symbolic link");
    if (!S_ISDIR(st.st_mode))
        return verdict(c, MIRROR_LOCAL_FALLBACK,
                       ".git is a file (a linked worktree or submodule)");
    *out = openat(root, ".git", DIR_FLAGS);
    return *out >= 0 ? MIRROR_LOCAL_COPIED : open_failure(c, ".git");
}

/* Case-insensitive search of needle in the n bytes at s. */
static bool has_word(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++) {
        size_t j = 0;
        while (j < k && tolower((unsigned char)s[i + j]) == needle[j])
            j++;
        if (j == k)
            return true;
    }
    return false;
}

/* Whether the source is one the copy can reproduce: not shallow (the
 * mirror would lack the cut history's parents, which git records in a
 * file the copy does not bring), not sharing a common dir, and with no
 * configuration that changes what its object store means (a partial
 * clone's promisor remote, extensions such as another object format, an
 * include that could say either). Cheap, and before anything is read. */
static int check_eligible(struct copy *c, int gitdir)
{
    static const char *const absent[] = {"shallow", "commondir"};
    static const char *const refused[] = {"partialclone", "promisor",
                                          "extensions", "include"};
    struct stat st;
    for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
        if (fstatat(gitdir, absent[i], &st, AT_SYMLINK_NOFOLLOW) == 0 ||
            errno != ENOENT)
            return verdict(c, MIRROR_LOCAL_FALLBACK, "the source has %s",
                           absent[i]);
    int fd;
    off_t size;
    if (fstatat(gitdir, "config", &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? MIRROR_LOCAL_COPIED
                               : open_failure(c, "config");
    int rc = open_file(c, gitdir, "config", CONFIG_MAX, &fd, &size);
    if (rc != MIRROR_LOCAL_COPIED)
        return rc;
    char *text = malloc((size_t)size + 1);
    if (!text || !read_exact(fd, text, (size_t)size)) {
        free(text);
        close(fd);
        return verdict(c, MIRROR_LOCAL_FALLBACK, "cannot read config");
    }
    close(fd);
    rc = MIRROR_LOCAL_COPIED;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (has_word(text, (size_t)size, refused[i])) {
            rc = verdict(c, MIRROR_LOCAL_FALLBACK,
                         "the source's config mentions %s", refused[i]);
            break;
        }
    free(text);
    return rc;
}

/* Opens the directory name in dfd for listing. *dir is NULL and the
 * result says why when it cannot. */
static int open_dir(struct copy *c, int dfd, const char *name, DIR **dir)
{
    *dir = NULL;
    int fd = openat(dfd, name, DIR_FLAGS);
    if (fd < 0)
        return open_failure(c, name);
    if (!(*dir = fdopendir(fd))) {
        close(fd);
        return verdict(c, MIRROR_LOCAL_FALLBACK, "cannot list %s", name);
    }
    return MIRROR_LOCAL_COPIED;
}

static bool is_dot(const char *name)
{
    return name[0] == '.' &&
           (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

/* Called by each_entry for an entry name of the directory open as dfd
 * that check_entry passed (its type in *st); MIRROR_LOCAL_COPIED goes on. */
typedef int (*entry_fn)(struct copy *c, int dfd, const char *name,
                        const struct stat *st, void *arg);

/* Lists the directory name in dfd and hands fn every entry but "." and
 * "..", each checked first for links and special files; an entry that
 * vanished meanwhile is skipped. Ends at the first answer other than
 * MIRROR_LOCAL_COPIED, or when the copy is stopped. */
static int each_entry(struct copy *c, int dfd, const char *name, entry_fn fn,
                      void *arg)
{
    DIR *d;
    int rc = open_dir(c, dfd, name, &d);
    struct dirent *e;
    while (rc == MIRROR_LOCAL_COPIED && (e = readdir(d)) != NULL) {
        struct stat st;
        bool gone;
        if (is_dot(e->d_name))
            continue;
        if (stopped(c))
            rc = verdict(c, MIRROR_LOCAL_STOPPED, "stopped");
        else
            rc = check_entry(c, dirfd(d), e->d_name, &st, &gone);
        if (rc == MIRROR_LOCAL_COPIED && !gone)
            rc = fn(c, dirfd(d), e->d_name, &st, arg);
    }
    if (d)
        closedir(d);
    return rc;
}

static int check_tree(struct copy *c, int dfd, const char *name, int depth);

/* each_entry's step for check_tree: arg is the depth left. */
static int check_subtree(struct copy *c, int dfd, const char *name,
                         const struct stat *st, void *arg)
{
    int depth = *(const int *)arg;
    if (!S_ISDIR(st->st_mode))
        return MIRROR_LOCAL_COPIED;
    if (depth <= 1)
        return verdict(c, MIRROR_LOCAL_FALLBACK,
                       "the object store nests too deep");
    return check_tree(c, dfd, name, depth - 1);
}

/* Checks every entry under the directory name in dfd, depth levels down,
 * for links and special files, without reading any file. */
static int check_tree(struct copy *c, int dfd, const char *name, int depth)
{
    return each_entry(c, dfd, name, check_subtree, &depth);
}

static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
            return false;
    return s[n] == '\0';
}

/* The type named by a loose object's header ("blob 12"), or
 * GIT_OBJECT_INVALID; *rest points past the space. */
static git_object_t header_type(const char *h, const char **rest)
{
    static const struct {
        const char *name;
        git_object_t type;
    } types[] = {{"blob ", GIT_OBJECT_BLOB},
                 {"tree ", GIT_OBJECT_TREE},
                 {"commit ", GIT_OBJECT_COMMIT},
                 {"tag ", GIT_OBJECT_TAG}};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t n = strlen(types[i].name);
        if (strncmp(h, types[i].name, n) == 0) {
            *rest = h + n;
            return types[i].type;
        }
    }
    return GIT_OBJECT_INVALID;
}

/* Inflates the loose object in[0..n) completely and strictly: a header
 * "<type> <decimal size>\0", then exactly size bytes, then the end of the
 * zlib stream and of the file. *body is malloc'd (the caller frees it).
 * False for anything else. */
static bool inflate_loose(const unsigned char *in, size_t n, git_object_t *type,
                          unsigned char **body, size_t *size)
{
    z_stream z;
    unsigned char hdr[64];
    bool ok = false;
    *body = NULL;
    memset(&z, 0, sizeof(z));
    if (n > UINT_MAX || inflateInit(&z) != Z_OK)
        return false;
    z.next_in = (unsigned char *)in;
    z.avail_in = (unsigned)n;
    z.next_out = hdr;
    z.avail_out = sizeof(hdr);
    int zrc = inflate(&z, Z_NO_FLUSH);
    size_t got = sizeof(hdr) - z.avail_out;
    unsigned char *nul = memchr(hdr, '\0', got);
    if ((zrc != Z_OK && zrc != Z_STREAM_END) || !nul)
        goto out;
    const char *digits;
    *type = header_type((const char *)hdr, &digits);
    if (*type == GIT_OBJECT_INVALID || digits >= (const char *)nul ||
        (digits[0] == '0' && digits + 1 != (const char *)nul))
        goto out;
    size_t want = 0;
    for (const char *p = digits; p < (const char *)nul; p++) {
        if (*p < '0' || *p > '9' || want > LOOSE_MAX)
            goto out;
        want = want * 10 + (size_t)(*p - '0');
    }
    size_t hlen = (size_t)(nul - hdr) + 1, extra = got - hlen;
    if (want > LOOSE_MAX || extra > want || !(*body = malloc(want + 1)))
        goto out;
    memcpy(*body, nul + 1, extra);
    if (zrc != Z_STREAM_END) {
        /* One byte more than the header says, to see a longer stream. */
        z.next_out = *body + extra;
        z.avail_out = (unsigned)(want - extra + 1);
        zrc = inflate(&z, Z_FINISH);
    }
    ok = zrc == Z_STREAM_END && z.total_out == hlen + want && z.avail_in == 0;
    *size = want;
out:
    inflateEnd(&z);
    if (!ok) {
        free(*body);
        *body = NULL;
    }
    return ok;
}

/* Copies the loose object name in the directory dir (open as dfd) into
 * the mirror: inflated, its header checked, its hash compared with its
 * name, then written through the mirror's object database. */
static int copy_loose(struct copy *c, int dfd, const char *dir,
                      const char *name)
{
    char hex[GIT_OID_HEXSZ + 1];
    git_oid want, got, written;
    int fd;
    off_t n;
    snprintf(hex, sizeof(hex), "%s%s", dir, name);
    if (git_oid_fromstr(&want, hex) != 0)
        return verdict(c, MIRROR_LOCAL_FALLBACK, "a loose object's name");
    int rc = open_file(c, dfd, name, (off_t)LOOSE_MAX, &fd, &n);
    if (rc != MIRROR_LOCAL_COPIED)
        return rc;
    unsigned char *in = malloc(n > 0 ? (size_t)n : 1), *body = NULL;
    git_object_t type;
    size_t size;
    if (!in || !read_exact(fd, in, (size_t)n)) {
        rc = verdict(c, MIRROR_LOCAL_FALLBACK, "cannot read object %s", hex);
    } else if (!inflate_loose(in, (size_t)n, &type, &body, &size)) {
        rc = verdict(c, MIRROR_LOCAL_CORRUPT, "object %s is corrupt", hex);
    } else if (git_odb_hash(&got, body, size, type) != 0 ||
               !git_oid_equal(&got, &want)) {
        rc = verdict(c, MIRROR_LOCAL_CORRUPT,
                     "object %s does not hash to its name", hex);
    } else if (git_odb_write(&written, c->odb, body, size, type) != 0) {
        rc = verdict(c, MIRROR_LOCAL_FALLBACK, "cannot write object %s", hex);
    } else {
        c->stats->loose++;
    }
    free(in);
    free(body);
    close(fd);
    return rc;
}

/* each_entry's step for a fan-out directory (arg, its name): anything
 * but a loose object there (tmp_obj_*, a directory) is git's own scratch,
 * checked by each_entry and not copied. */
static int copy_loose_entry(struct copy *c, int dfd, const char *name,
                            const struct stat *st, void *arg)
{
    if (!S_ISREG(st->st_mode) || !is_hex(name, GIT_OID_HEXSZ - 2))
        return MIRROR_LOCAL_COPIED;
    return copy_loose(c, dfd, arg, name);
}

/* The indexer calls this while it works; a nonzero answer stops it. */
static int on_index_progress(const git_indexer_progress *stats, void *arg)
{
    (void)stats;
    return stopped(arg) ? -1 : 0;
}

/* Streams the pack name in the source's pack directory dfd through
 * libgit2's indexer into the mirror's pack directory: the indexer hashes
 * every object, resolves every delta within the pack and checks the
 * pack's trailer, then writes the pack and an index of its own. */
static int index_pack(struct copy *c, int dfd, const char *name)
{
    git_indexer *idx = NULL;
    git_indexer_options io;
    git_indexer_progress progress;
    int fd;
    off_t left;
    int rc = open_file(c, dfd, name, (off_t)INT64_MAX, &fd, &left);
    if (rc != MIRROR_LOCAL_COPIED)
        return rc;
    git_indexer_options_init(&io, GIT_INDEXER_OPTIONS_VERSION);
    io.progress_cb = on_index_progress;
    io.progress_cb_payload = c;
    memset(&progress, 0, sizeof(progress));
    if (left < PACK_MIN) {
        rc = verdict(c, MIRROR_LOCAL_FALLBACK, "%s is too short", name);
        goto out;
    }
    /* No object database: a pack at rest is never thin, and a delta
     * against anything outside it is an error. */
    if (git_indexer_new(&idx, c->pack_dir, 0, NULL, &io) != 0) {
        rc = verdict(c, MIRROR_LOCAL_FALLBACK, "cannot start the indexer");
        goto out;
    }
    while (left > 0) {
        size_t want = left < PACK_CHUNK ? (size_t)left : PACK_CHUNK;
        if (stopped(c)) {
            rc = verdict(c, MIRROR_LOCAL_STOPPED, "stopped");
            goto out;
        }
        if (!read_exact(fd, c->buf, want)) {
            rc = verdict(c, MIRROR_LOCAL_FALLBACK, "cannot read %s", name);
            goto out;
        }
        if (git_indexer_append(idx, c->buf, want, &progress) != 0) {
            rc = verdict(c, MIRROR_LOCAL_CORRUPT, "%s does not index", name);
            goto out;
        }
        left -= (off_t)want;
    }
    if (git_indexer_commit(idx, &progress) != 0) {
        rc = stopped(c)
                 ? verdict(c, MIRROR_LOCAL_STOPPED, "stopped")
                 : verdict(c, MIRROR_LOCAL_CORRUPT, "%s does not index", name);
        goto out;
    }
    c->stats->packs++;
    c->stats->objects += progress.indexed_objects;
out:
    if (rc != MIRROR_LOCAL_COPIED) {
        const git_error *e = git_error_last();
        size_t len = strlen(c->stats->why);
        if (e && e->message && len + 3 < sizeof(c->stats->why))
            snprintf(c->stats->why + len, sizeof(c->stats->why) - len, ": %s",
                     e->message);
    }
    git_indexer_free(idx);
    close(fd);
    return rc;
}

/* Whether name ends in suffix, with something before it. */
static bool ends_with(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);
    return n > k && strcmp(name + n - k, suffix) == 0;
}

/* each_entry's step for the source's pack directory: a promisor pack (a
 * partial clone) falls back, a directory is checked, and when *arg (index)
 * is set every pack that has an index beside it (git's sign that it is
 * complete) is indexed into the mirror. */
static int pack_entry(struct copy *c, int dfd, const char *name,
                      const struct stat *st, void *arg)
{
    bool index = *(const bool *)arg;
    char idx_name[NAME_MAX + 1];
    size_t n = strlen(name);
    struct stat ist;
    bool no_idx;
    if (ends_with(name, ".promisor"))
        return verdict(c, MIRROR_LOCAL_FALLBACK,
                       "the source is a partial clone");
    if (S_ISDIR(st->st_mode))
        return check_tree(c, dfd, name, CHECK_DEPTH);
    if (!index || strncmp(name, "pack-", 5) != 0 || !ends_with(name, ".pack") ||
        n - 5 + 4 >= sizeof(idx_name))
        return MIRROR_LOCAL_COPIED;
    snprintf(idx_name, sizeof(idx_name), "%.*s.idx", (int)(n - 5), name);
    int rc = check_entry(c, dfd, idx_name, &ist, &no_idx);
    if (rc == MIRROR_LOCAL_COPIED && !no_idx && S_ISREG(ist.st_mode))
        rc = index_pack(c, dfd, name);
    return rc;
}

/* Walks the source's pack directory (objfd's "pack"), checking every
 * entry, and indexing the complete packs when index is set. */
static int walk_packs(struct copy *c, int objfd, bool index)
{
    return each_entry(c, objfd, "pack", pack_entry, &index);
}

/* Checks objects/info of the source (objfd): borrowed objects
 * (alternates) would be missing from the copy, so such a source falls
 * back; its other files (commit-graph, packs) are not read. */
static int check_info(struct copy *c, int objfd)
{
    struct stat st;
    int fd = openat(objfd, "info", DIR_FLAGS);
    if (fd < 0)
        return open_failure(c, "objects/info");
    bool has_alternates =
        fstatat(fd, "alternates", &st, AT_SYMLINK_NOFOLLOW) == 0 ||
        errno != ENOENT;
    close(fd);
    if (has_alternates)
        return verdict(c, MIRROR_LOCAL_FALLBACK, "the source has alternates");
    return check_tree(c, objfd, "info", CHECK_DEPTH);
}

/* each_entry's first step over the source's objects directory: only
 * checks, so that nothing is copied from a store that is then refused.
 * *arg (a bool) is set when there is a pack directory. */
static int check_objects_entry(struct copy *c, int dfd, const char *name,
                               const struct stat *st, void *arg)
{
    if (!S_ISDIR(st->st_mode))
        return MIRROR_LOCAL_COPIED;
    if (strcmp(name, "pack") == 0) {
        *(bool *)arg = true;
        return walk_packs(c, dfd, false);
    }
    if (strcmp(name, "info") == 0)
        return check_info(c, dfd);
    if (!is_hex(name, 2))
        return check_tree(c, dfd, name, CHECK_DEPTH);
    return MIRROR_LOCAL_COPIED;
}

/* each_entry's second step: copies the loose objects of a fan-out
 * directory (two hex digits). */
static int copy_objects_entry(struct copy *c, int dfd, const char *name,
                              const struct stat *st, void *arg)
{
    (void)arg;
    if (!S_ISDIR(st->st_mode) || !is_hex(name, 2))
        return MIRROR_LOCAL_COPIED;
    char dir[3] = {name[0], name[1], '\0'};
    return each_entry(c, dfd, name, copy_loose_entry, dir);
}

/* Copies the source's object store (open as objfd): every entry checked,
 * then the loose objects, then the packs, listed again after the loose
 * objects so that an object a concurrent repack moves from loose to a
 * pack is found in one or the other. */
static int copy_objects(struct copy *c, int objfd)
{
    bool has_pack = false;
    int rc = each_entry(c, objfd, ".", check_objects_entry, &has_pack);
    if (rc == MIRROR_LOCAL_COPIED)
        rc = each_entry(c, objfd, ".", copy_objects_entry, NULL);
    if (rc == MIRROR_LOCAL_COPIED && has_pack)
        rc = walk_packs(c, objfd, true);
    return rc;
}

int mirror_local_copy(git_repository *dst, const char *src_path,
                      const struct rv_url_policy *policy,
                      mirror_local_stop_fn stop, void *stop_arg,
                      struct mirror_local_stats *stats)
{
    struct copy c = {.stop = stop, .stop_arg = stop_arg, .stats = stats};
    char real[PATH_MAX], why[256];
    int root = -1, gitdir = -1, objfd = -1;
    int rc;
    memset(stats, 0, sizeof(*stats));
    /* The path once more through the policy: it must still resolve to
     * itself (the caller passes the resolved path it checked) inside the
     * allowed directories. Without a policy (tests, benchmarks) the path
     * is only resolved. */
    if (policy) {
        if (rv_url_policy_local_path(policy, src_path, real, sizeof(real), why,
                                     sizeof(why)) != RV_OK) {
            rc = verdict(&c, MIRROR_LOCAL_REFUSED, "%s", why);
            goto out;
        }
        if (strcmp(real, src_path) != 0) {
            rc = verdict(&c, MIRROR_LOCAL_REFUSED,
                         "the source's path changed since it was checked");
            goto out;
        }
    } else if (!realpath(src_path, real)) {
        rc = verdict(&c, MIRROR_LOCAL_FALLBACK, "cannot resolve the source");
        goto out;
    }
    if (snprintf(c.pack_dir, sizeof(c.pack_dir), "%sobjects/pack",
                 git_repository_path(dst)) >= (int)sizeof(c.pack_dir)) {
        rc = verdict(&c, MIRROR_LOCAL_FALLBACK, "the mirror path is long");
        goto out;
    }
    if (!(c.buf = malloc(PACK_CHUNK)) || git_repository_odb(&c.odb, dst) != 0) {
        rc = verdict(&c, MIRROR_LOCAL_FALLBACK, "out of memory");
        goto out;
    }
    if ((rc = open_root(&c, real, &root)) != MIRROR_LOCAL_COPIED ||
        (rc = open_gitdir(&c, root, &gitdir)) != MIRROR_LOCAL_COPIED ||
        (rc = check_eligible(&c, gitdir)) != MIRROR_LOCAL_COPIED)
        goto out;
    if ((objfd = openat(gitdir, "objects", DIR_FLAGS)) < 0) {
        rc = open_failure(&c, "objects");
        goto out;
    }
    if ((rc = copy_objects(&c, objfd)) != MIRROR_LOCAL_COPIED)
        goto out;
    if (git_odb_refresh(c.odb) != 0)
        rc = verdict(&c, MIRROR_LOCAL_FALLBACK, "cannot reload the mirror");
out:
    git_error_clear();
    if (objfd >= 0)
        close(objfd);
    if (gitdir >= 0)
        close(gitdir);
    if (root >= 0)
        close(root);
    git_odb_free(c.odb);
    free(c.buf);
    return rc;
}

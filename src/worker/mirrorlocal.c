/* The first clone of a mirror from a local path (mirror_copy_local_objects):
 * libgit2's local transport builds a pack of every object in the process
 * (revwalk, delta search, then indexing its own pack: 56 s and 425 MB for
 * libgit2's own history), where the source already holds packs with their
 * indexes. Like `git clone --local`, the source's pack files and loose
 * objects are hard-linked into the mirror (copied, a buffer at a time,
 * across file systems); later fetches, which send only what is new, go
 * through libgit2 as before. Declared in mirror_private.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "worker/mirror_private.h"

#define COPY_BUF 65536

/* Puts the regular file src at dst: a hard link, else a copy written to a
 * temporary name and renamed (a reader never sees half a file). Anything
 * but a regular file (a symlink planted in the source) is refused. 0 or
 * -1 with a libgit2 error set. */
static int link_or_copy(const char *src, const char *dst)
{
    struct stat st;
    char tmp[4200];
    char *buf = NULL;
    int in = -1, out = -1, rc = -1;
    if (lstat(src, &st) != 0 || !S_ISREG(st.st_mode)) {
        git_error_set(GIT_ERROR_OS, "not a regular file: %s", src);
        return -1;
    }
    if (link(src, dst) == 0 || errno == EEXIST)
        return 0;
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", dst) >= (int)sizeof(tmp) ||
        !(buf = malloc(COPY_BUF)) ||
        (in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
        (out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444)) < 0)
        goto out;
    ssize_t got;
    while ((got = read(in, buf, COPY_BUF)) > 0) {
        for (ssize_t off = 0; off < got;) {
            ssize_t put = write(out, buf + off, (size_t)(got - off));
            if (put < 0)
                goto out;
            off += put;
        }
    }
    if (got == 0 && close(out) == 0) {
        out = -1;
        rc = rename(tmp, dst) == 0 ? 0 : -1;
    }
out:
    if (rc != 0) {
        git_error_set(GIT_ERROR_OS, "cannot copy %s: %s", src,
                      strerror(errno));
        unlink(tmp);
    }
    free(buf);
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

static int too_long(void)
{
    git_error_set_str(GIT_ERROR_OS, "an object path is too long");
    return -1;
}

/* Whether name is n hex digits and nothing else. */
static bool is_hex(const char *name, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789abcdef", name[i]))
            return false;
    return name[n] == '\0';
}

/* Links the loose objects of src (an objects directory) into dst. */
static int link_loose(const char *src, const char *dst)
{
    char sdir[4200], ddir[4200], sf[4600], df[4600];
    int rc = 0;
    for (int b = 0; b < 256 && rc == 0; b++) {
        if (snprintf(sdir, sizeof(sdir), "%s/%02x", src, b) >=
                (int)sizeof(sdir) ||
            snprintf(ddir, sizeof(ddir), "%s/%02x", dst, b) >=
                (int)sizeof(ddir))
            return too_long();
        DIR *d = opendir(sdir);
        if (!d)
            continue; /* no object starts with these two digits */
        if (mkdir(ddir, 0755) != 0 && errno != EEXIST)
            rc = -1;
        struct dirent *e;
        while (rc == 0 && (e = readdir(d)) != NULL) {
            if (!is_hex(e->d_name, GIT_OID_HEXSZ - 2))
                continue;
            if (snprintf(sf, sizeof(sf), "%s/%s", sdir, e->d_name) >=
                    (int)sizeof(sf) ||
                snprintf(df, sizeof(df), "%s/%s", ddir, e->d_name) >=
                    (int)sizeof(df))
                rc = too_long();
            else
                rc = link_or_copy(sf, df);
        }
        closedir(d);
    }
    if (rc != 0 && !git_error_last())
        git_error_set(GIT_ERROR_OS, "cannot link loose objects");
    return rc;
}

/* Links the packs of src into dst: each .pack before its .idx, since the
 * index is what makes a pack visible. */
static int link_packs(const char *src, const char *dst)
{
    char sdir[4200], ddir[4200], sf[4400], df[4400];
    int rc = 0;
    if (snprintf(sdir, sizeof(sdir), "%s/pack", src) >= (int)sizeof(sdir) ||
        snprintf(ddir, sizeof(ddir), "%s/pack", dst) >= (int)sizeof(ddir))
        return too_long();
    DIR *d = opendir(sdir);
    if (!d)
        return 0; /* no packs, only loose objects */
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 10 || strncmp(e->d_name, "pack-", 5) != 0 ||
            strcmp(e->d_name + len - 4, ".idx") != 0 || len > 200)
            continue;
        const char *ext[2] = {".pack", ".idx"};
        for (int i = 0; i < 2 && rc == 0; i++) {
            if (snprintf(sf, sizeof(sf), "%s/%.*s%s", sdir, (int)(len - 4),
                         e->d_name, ext[i]) >= (int)sizeof(sf) ||
                snprintf(df, sizeof(df), "%s/%.*s%s", ddir, (int)(len - 4),
                         e->d_name, ext[i]) >= (int)sizeof(df))
                rc = too_long();
            else
                rc = link_or_copy(sf, df);
        }
    }
    closedir(d);
    return rc;
}

int mirror_copy_local_objects(git_repository *dst, const char *src_path)
{
    git_repository *src = NULL;
    git_odb *odb = NULL;
    char sobj[4200], dobj[4200], alt[4300];
    struct stat st;
    int rc = git_repository_open_ext(&src, src_path,
                                     GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
    if (rc != 0)
        return rc;
    if (snprintf(sobj, sizeof(sobj), "%sobjects",
                 git_repository_commondir(src)) >= (int)sizeof(sobj) ||
        snprintf(dobj, sizeof(dobj), "%sobjects", git_repository_path(dst)) >=
            (int)sizeof(dobj)) {
        git_error_set_str(GIT_ERROR_OS, "the object path is too long");
        rc = -1;
        goto out;
    }
    /* Objects borrowed from elsewhere would be missing from the copy:
     * such a source is fetched the slow way. */
    if (snprintf(alt, sizeof(alt), "%s/info/alternates", sobj) >=
            (int)sizeof(alt) ||
        lstat(alt, &st) == 0) {
        git_error_set_str(GIT_ERROR_ODB, "the source has alternates");
        rc = -1;
        goto out;
    }
    /* Loose objects first: one that a repack moves meanwhile is then in a
     * pack that exists by the time the packs are listed. */
    if ((rc = link_loose(sobj, dobj)) == 0 &&
        (rc = link_packs(sobj, dobj)) == 0 &&
        (rc = git_repository_odb(&odb, dst)) == 0)
        rc = git_odb_refresh(odb);
out:
    git_odb_free(odb);
    git_repository_free(src);
    return rc;
}

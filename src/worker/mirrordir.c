/* See mirror.h: the mirrors' directories under <data_dir>/mirrors/, named
 * by the hex of the repo id (rv_mirror_path), removed without following
 * symlinks (rv_mirror_remove_tree), and collected (rv_mirror_gc): the
 * mirrors of repos no longer registered, and abandoned partial clones. */
#define _XOPEN_SOURCE 700
#include "worker/mirror.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/log.h"
#include "common/util.h"
#include "worker/mirror_private.h"

/* A partial clone older than this is abandoned and removed by the GC. */
#define STALE_TMP_SECONDS 3600

void mirror_hex_encode(const char *s, char *out)
{
    rv_hex_encode(s, strlen(s), out);
}

/* Decodes a mirror directory name ("<hex>.git") into id (>= 101 bytes).
 * Returns 0 only for the name of a valid id's mirror. */
static int mirror_name_decode(const char *name, char *id, size_t size)
{
    size_t n = strlen(name);
    if (n < 6 || strcmp(name + n - 4, ".git") != 0 || (n - 4) % 2 != 0 ||
        (n - 4) / 2 >= size)
        return -1;
    size_t len = (n - 4) / 2;
    for (size_t i = 0; i < len; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = name[2 * i + (size_t)k];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                           : -1;
            if (d < 0)
                return -1;
            v = v * 16 + d;
        }
        id[i] = (char)v;
    }
    id[len] = '\0';
    return rv_repo_id_valid(id) ? 0 : -1;
}

int rv_mirror_path(const char *data_dir, const char *repo_id, char *buf,
                   size_t size)
{
    char hex[2 * RV_REPO_ID_MAX + 1];
    if (!data_dir || !*data_dir || !rv_repo_id_valid(repo_id))
        return -1;
    mirror_hex_encode(repo_id, hex);
    int n = snprintf(buf, size, "%s/mirrors/%s.git", data_dir, hex);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = flag == FTW_DP ? rmdir(path) : unlink(path);
    return rc == 0 || errno == ENOENT ? 0 : -1;
}

int rv_mirror_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static bool is_kept(const char *id, const char *const *keep, size_t nkeep)
{
    for (size_t i = 0; i < nkeep; i++)
        if (keep[i] && strcmp(id, keep[i]) == 0)
            return true;
    return false;
}

int rv_mirror_gc(const char *data_dir, const char *const *keep, size_t nkeep)
{
    char dir[4096];
    int n = snprintf(dir, sizeof(dir), "%s/mirrors", data_dir);
    if (n < 0 || (size_t)n >= sizeof(dir))
        return RV_ERR_INVALID;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? RV_OK : RV_ERR_IO;
    int rc = RV_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[4400], id[RV_REPO_ID_MAX + 1];
        const char *name = e->d_name;
        struct stat st;
        bool remove = false;
        if (!strcmp(name, ".") || !strcmp(name, ".."))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (strncmp(name, ".tmp-", 5) == 0)
            remove = lstat(path, &st) == 0 &&
                     time(NULL) - st.st_mtime > STALE_TMP_SECONDS;
        else if (mirror_name_decode(name, id, sizeof(id)) == 0)
            remove = !is_kept(id, keep, nkeep);
        /* Anything else is not ours to delete. */
        if (!remove)
            continue;
        LOG(RV_LOG_INFO, NULL, NULL, "removing mirror %s", name);
        if (rv_mirror_remove_tree(path) != 0)
            rc = RV_ERR_IO;
    }
    closedir(d);
    return rc;
}

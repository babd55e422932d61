/* See mirror.h: the mirrors' directories under <data_dir>/mirrors/, named
 * by the hex of the repo id (rv_mirror_path), removed without following
 * symlinks (rv_mirror_remove_tree), and collected (rv_mirror_gc_step): the
 * mirrors of repos no longer registered, and abandoned partial clones. */
#define _XOPEN_SOURCE 700
#include "worker/mirror.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
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

void rv_mirror_scan_close(struct rv_mirror_scan *s)
{
    if (s->dir)
        closedir(s->dir);
    s->dir = NULL;
}

/* The next up to max mirror ids of s's directory into ids (*n of them),
 * removing abandoned partial clones on the way; *done at its end. */
static int scan_ids(struct rv_mirror_scan *s, const char *dir, size_t max,
                    char (*ids)[RV_REPO_ID_MAX + 1], size_t *n, bool *done)
{
    int rc = RV_OK;
    *n = 0;
    *done = false;
    if (!s->dir && !(s->dir = opendir(dir))) {
        *done = true;
        return errno == ENOENT ? RV_OK : RV_ERR_IO;
    }
    while (*n < max) {
        struct dirent *e = readdir(s->dir);
        if (!e) {
            *done = true;
            break;
        }
        const char *name = e->d_name;
        if (strncmp(name, ".tmp-", 5) == 0) {
            char path[4400];
            struct stat st;
            snprintf(path, sizeof(path), "%s/%s", dir, name);
            if (lstat(path, &st) == 0 &&
                time(NULL) - st.st_mtime > STALE_TMP_SECONDS) {
                LOG(RV_LOG_INFO, NULL, NULL, "removing partial clone %s", name);
                if (rv_mirror_remove_tree(path) != 0)
                    rc = RV_ERR_IO;
            }
        } else if (mirror_name_decode(name, ids[*n], sizeof(ids[0])) == 0) {
            (*n)++;
        }
        /* Anything else is not ours to delete. */
    }
    return rc;
}

int rv_mirror_gc_step(struct rv_mirror_scan *s, const char *data_dir,
                      rv_mirror_keep_fn keep, void *arg, bool *done)
{
    char dir[4096];
    char(*ids)[RV_REPO_ID_MAX + 1] = NULL;
    bool kept[RV_MIRROR_GC_CHUNK];
    size_t n = 0;
    *done = true;
    int len = snprintf(dir, sizeof(dir), "%s/mirrors", data_dir);
    if (len < 0 || (size_t)len >= sizeof(dir))
        return RV_ERR_INVALID;
    if (!(ids = calloc(RV_MIRROR_GC_CHUNK, sizeof(*ids))))
        return RV_ERR_NOMEM;
    int rc = scan_ids(s, dir, RV_MIRROR_GC_CHUNK, ids, &n, done);
    /* Nothing is removed unless every id of the chunk was answered. */
    int krc =
        n ? keep(arg, (const char(*)[RV_REPO_ID_MAX + 1]) ids, n, kept) : RV_OK;
    for (size_t i = 0; krc == RV_OK && i < n; i++) {
        char path[4400];
        if (kept[i] ||
            rv_mirror_path(data_dir, ids[i], path, sizeof(path)) != 0)
            continue;
        LOG(RV_LOG_INFO, ids[i], NULL,
            "removing the mirror of a repo no "
            "longer registered");
        if (rv_mirror_remove_tree(path) != 0)
            rc = RV_ERR_IO;
    }
    free(ids);
    if (*done)
        rv_mirror_scan_close(s);
    return krc != RV_OK ? krc : rc;
}

/*
 * Runs a fuzz target over files instead of under libFuzzer, so that the
 * seed corpus and every regression input run in each ordinary (gcc,
 * ASan/UBSan) build: `fuzz_replay_<target> DIR_OR_FILE...`. Each file is
 * one input, fed in name order. Exits 0 when every input ran (a crash or
 * a violated property aborts), 1 when a path cannot be read or nothing
 * was found at all, so an emptied corpus cannot pass unnoticed.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int replay_file(const char *path, size_t *count)
{
    int rc = 1;
    unsigned char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0) {
        perror(path);
        goto out;
    }
    size_t len = (size_t)st.st_size;
    /* One more byte, so that an empty file still gets a buffer. */
    buf = malloc(len + 1);
    if (!buf || fread(buf, 1, len, f) != len) {
        fprintf(stderr, "%s: cannot read\n", path);
        goto out;
    }
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
    LLVMFuzzerTestOneInput(buf, len);
    (*count)++;
    rc = 0;
out:
    free(buf);
    fclose(f);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *dir, size_t *count)
{
    int rc = 0;
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return 1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue; /* ., .. and .gitkeep */
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, cap * sizeof(*names));
            if (!grown) {
                rc = 1;
                goto out;
            }
            names = grown;
        }
        size_t plen = strlen(dir) + strlen(e->d_name) + 2;
        if (!(names[n] = malloc(plen))) {
            rc = 1;
            goto out;
        }
        snprintf(names[n++], plen, "%s/%s", dir, e->d_name);
    }
    if (n > 1)
        qsort(names, n, sizeof(*names), by_name);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = replay_file(names[i], count);
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    size_t count = 0;
    LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        int rc = S_ISDIR(st.st_mode) ? replay_dir(argv[i], &count)
                                     : replay_file(argv[i], &count);
        if (rc != 0)
            return 1;
    }
    fprintf(stderr, "replay: %zu inputs, all passed\n", count);
    return count > 0 ? 0 : 1;
}

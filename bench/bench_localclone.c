/*
 * Benchmark driver for the first clone of a local path (issue 19): one
 * rv_mirror_sync into an empty data dir, as branch sync calls it, with
 * the URL policy of REPOVIEW_ALLOW_LOCAL_PATHS (none when unset), and
 * its time on stdout as one JSON line. Run it under /usr/bin/time -v for
 * the peak RSS; docs/benchmarks.md has the commands.
 *
 *   bench_localclone DATA_DIR PATH
 */
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/errors.h"
#include "common/urlpolicy.h"
#include "common/util.h"
#include "worker/branchsync.h"
#include "worker/mirror.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s DATA_DIR PATH\n", argv[0]);
        return 2;
    }
    struct rv_url_policy policy;
    char why[256], head[256];
    const char *dirs = getenv("REPOVIEW_ALLOW_LOCAL_PATHS");
    if (dirs && rv_url_policy_init(&policy, NULL, dirs, false, NULL, NULL,
                                   why, sizeof(why)) != RV_OK) {
        fprintf(stderr, "policy: %s\n", why);
        return 2;
    }
    if (rv_branchsync_global_init() != RV_OK)
        return 1;
    struct rv_mirror_opts opts = {
        .data_dir = argv[1],
        .repo_id = "bench",
        .url = argv[2],
        .timeout_s = 600,
        .policy = dirs ? &policy : NULL,
    };
    struct rv_sync_error err;
    git_repository *repo = NULL;
    int64_t started = rv_mono_ms();
    int rc = rv_mirror_sync(&opts, &repo, head, sizeof(head), &err);
    int64_t took = rv_mono_ms() - started;
    git_repository_free(repo);
    if (rc != RV_OK)
        fprintf(stderr, "clone failed: %s: %s\n", rv_errname(err.code),
                err.message);
    else
        printf("{\"clone_ms\":%lld}\n", (long long)took);
    if (dirs)
        rv_url_policy_free(&policy);
    git_libgit2_shutdown();
    return rc == RV_OK ? 0 : 1;
}

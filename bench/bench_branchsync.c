/*
 * Benchmark driver for branch sync: one rv_branchsync_run, as the job loop
 * calls it, and its figures on stdout as one JSON line. Built and run by
 * bench/bench_branchsync.sh against a non-sanitizer build.
 *
 *   bench_branchsync DATA_DIR URL [PREV_JSON [OUT_JSON]]
 *
 * PREV_JSON is the document of an earlier sync ("-" = none); OUT_JSON, if
 * given, receives the new document.
 */
#include <git2.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/util.h"
#include "worker/branchsync.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s DATA_DIR URL [PREV_JSON [OUT_JSON]]\n",
                argv[0]);
        return 2;
    }
    json_t *prev = NULL;
    if (argc > 3 && strcmp(argv[3], "-") != 0) {
        json_error_t jerr;
        if (!(prev = json_load_file(argv[3], 0, &jerr))) {
            fprintf(stderr, "%s: %s\n", argv[3], jerr.text);
            return 1;
        }
    }
    if (rv_branchsync_global_init() != RV_OK)
        return 1;
    struct rv_branchsync_opts opts = {
        .data_dir = argv[1],
        .repo_id = "bench",
        .url = argv[2],
        .fetch_timeout_s = 600,
        .max_branches = 5000,
        .max_conflict_files = 50,
        .now_ms = rv_now_ms(),
    };
    struct rv_branchsync_stats stats;
    struct rv_sync_error err;
    json_t *doc = NULL;
    int64_t started = rv_mono_ms();
    int rc = rv_branchsync_run(&opts, prev, &doc, &stats, &err);
    int64_t total = rv_mono_ms() - started;
    if (rc != RV_OK) {
        fprintf(stderr, "sync failed: %s: %s\n", rv_errname(err.code),
                err.message);
        json_decref(prev);
        return 1;
    }
    size_t conflicting = 0, i;
    json_t *row;
    json_array_foreach(json_object_get(doc, "branches"), i, row)
        conflicting += json_is_true(json_object_get(row, "conflicts"));
    printf("{\"total_ms\":%lld,\"fetch_ms\":%lld,\"compute_ms\":%lld,"
           "\"branches\":%d,\"recomputed\":%d,\"reused\":%d,\"merged\":%d,"
           "\"conflicting\":%zu}\n",
           (long long)total, (long long)stats.fetch_ms,
           (long long)stats.compute_ms, stats.branches, stats.recomputed,
           stats.reused, stats.merged, conflicting);
    if (argc > 4 && json_dump_file(doc, argv[4], JSON_COMPACT) != 0) {
        fprintf(stderr, "cannot write %s\n", argv[4]);
        rc = 1;
    }
    json_decref(doc);
    json_decref(prev);
    git_libgit2_shutdown();
    return rc == RV_OK ? 0 : 1;
}

/*
 * The first clone of a local path (src/worker/mirrorlocal.c) against real
 * repositories made with the git CLI in temp dirs, through rv_mirror_sync
 * with a URL policy that allows one directory. The git CLI is the oracle:
 * the mirror's branches (git for-each-ref) and objects (git cat-file
 * --batch-all-objects) equal the source's, and git fsck passes. Which way
 * a clone went shows in the mirror: the copy keeps the source's packs
 * (one indexed pack each) and loose objects, libgit2's fetch writes one
 * pack and no loose object.
 *
 * Hostile and unusual sources: a symbolic link where a pack should be, a
 * FIFO in objects/pack and as a loose object, an objects directory linked
 * outside the allowed directory, alternates, a shallow source, a loose
 * object with other content under its name, a garbled loose object and a
 * pack with one byte changed. Each is refused, fails or falls back at
 * once, and no mirror holds what it should not.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/urlpolicy.h"
#include "common/util.h"
#include "rvtest.h"
#include "worker/branchsync.h"
#include "worker/gitstream.h"
#include "worker/mirror.h"
#include "worker/mirror_private.h"

static char *tmp;         /* malloc'd; one temp dir for the program */
static char allowed[600]; /* the directory the policy allows */
static char outside[600]; /* a directory it does not */
static struct rv_url_policy policy;
static int seq;

/* Runs a shell command and checks that it succeeded. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = rvt_sh(NULL, "%s", cmd);
    CHECK_INT(st, 0);
    return st;
}

/* Makes the bare repository <allowed>/<name>.git from a work tree
 * <tmp>/work-<name> (kept, for later commits): two branches, two packs
 * (the clone's and a repack of a push) and loose objects (a later push,
 * below git's unpack limit), the last of them the blob "loose blob\n".
 * Its path goes into out. */
static void make_source(const char *name, char *out, size_t size)
{
    int w = snprintf(out, size, "%s/%s.git", allowed, name);
    CHECK(w > 0 && (size_t)w < size);
    sh("set -e; w='%s/work-%s'; b='%s'\n"
       "git init -q -b main \"$w\"; cd \"$w\"\n"
       "for i in $(seq 1 12); do echo \"line $i\" > f$i.txt;"
       " mkdir -p d$i; echo $i > d$i/x; git add -A;"
       " git commit -q -m \"commit $i\"; done\n"
       "git clone -q --bare --no-local \"$w\" \"$b\"\n"
       "git checkout -q -b topic\n"
       "for i in $(seq 1 4); do echo \"topic $i\" > t$i.txt; git add -A;"
       " git commit -q -m \"topic $i\"; done\n"
       "git push -q \"$b\" topic\n"
       "git -C \"$b\" repack -q -d\n"
       "git checkout -q main; echo 'loose blob' > loose.txt; git add -A;"
       " git commit -q -m loose; git push -q \"$b\" main\n",
       tmp, name, out);
}

/* The oid of the blob make_source leaves loose. */
static void loose_blob_path(const char *src, char *out, size_t size)
{
    char *oid = NULL;
    CHECK_INT(rvt_sh(&oid, "printf 'loose blob\\n' | git hash-object --stdin"),
              0);
    snprintf(out, size, "%s/objects/%.2s/%.38s", src, oid ? oid : "",
             oid ? oid + 2 : "");
    free(oid);
}

/* Syncs url into a fresh data dir (its path into data); returns the
 * result, with err filled. */
static int sync_url(const char *url, char *data, size_t size,
                    struct rv_sync_error *err)
{
    git_repository *repo = NULL;
    char head[256];
    if (!data[0]) {
        snprintf(data, size, "%s/data-%d", tmp, ++seq);
    }
    struct rv_mirror_opts o = {
        .data_dir = data,
        .repo_id = "r",
        .url = url,
        .timeout_s = 60,
        .policy = &policy,
        .job_id = "j-test",
    };
    memset(err, 0, sizeof(*err));
    int rc = rv_mirror_sync(&o, &repo, head, sizeof(head), err);
    git_repository_free(repo);
    return rc;
}

static void mirror_of(const char *data, char *out, size_t size)
{
    CHECK_INT(rv_mirror_path(data, "r", out, size), 0);
}

/* `git count-objects -v`'s "packs" and "count" (loose objects). */
static void count_objects(const char *gitdir, int *packs, int *loose)
{
    char *out = NULL;
    *packs = *loose = -1;
    CHECK_INT(rvt_sh(&out,
                     "git --git-dir='%s' count-objects -v | "
                     "awk '/^packs:/{p=$2} /^count:/{c=$2} END{print p, c}'",
                     gitdir),
              0);
    if (out && sscanf(out, "%d %d", packs, loose) != 2)
        *packs = *loose = -1;
    free(out);
}

/* The mirror a sync into data made (its path into mirror) and its
 * packs and loose objects, as count_objects says. */
static void mirror_objects(const char *data, char *mirror, size_t size,
                           int *packs, int *loose)
{
    mirror_of(data, mirror, size);
    count_objects(mirror, packs, loose);
}

/* What the git CLI says about both: the same branches at the same
 * commits, and (all_objects) the same set of objects. */
static void expect_same(const char *src, const char *mirror, bool all_objects)
{
    char *a = NULL, *b = NULL;
    static const char refs[] =
        "git --git-dir='%s' for-each-ref "
        "--format='%%(objectname) %%(refname)' refs/heads";
    CHECK_INT(rvt_sh(&a, refs, src), 0);
    CHECK_INT(rvt_sh(&b, refs, mirror), 0);
    CHECK(a && b && a[0] && strcmp(a, b) == 0);
    free(a);
    free(b);
    a = b = NULL;
    if (all_objects) {
        static const char objs[] =
            "git --git-dir='%s' cat-file --batch-all-objects "
            "--batch-check='%%(objectname) %%(objecttype)'";
        CHECK_INT(rvt_sh(&a, objs, src), 0);
        CHECK_INT(rvt_sh(&b, objs, mirror), 0);
        CHECK(a && b && a[0] && strcmp(a, b) == 0);
        free(a);
        free(b);
    }
    CHECK_INT(rvt_sh(NULL,
                     "git --git-dir='%s' fsck --full --strict "
                     "--no-dangling 2>&1",
                     mirror),
              0);
    CHECK_INT(rvt_sh(NULL,
                     "git --git-dir='%s' fsck --connectivity-only "
                     "2>&1",
                     mirror),
              0);
}

/* Nothing of a refused clone is left: no mirror, no temporary one. */
static void expect_no_mirror(const char *data)
{
    char mirror[700], *out = NULL;
    struct stat st;
    mirror_of(data, mirror, sizeof(mirror));
    CHECK(lstat(mirror, &st) != 0);
    CHECK_INT(rvt_sh(&out, "ls -A '%s/mirrors' 2>/dev/null | wc -l", data), 0);
    CHECK(out && strtol(out, NULL, 10) == 0);
    free(out);
}

static void test_copy_of_a_local_path_equals_the_source(void)
{
    char src[600], data[700] = "", mirror[700];
    struct rv_sync_error err;
    int packs, loose, src_packs, src_loose;
    make_source("plain", src, sizeof(src));
    count_objects(src, &src_packs, &src_loose);
    CHECK_INT(src_packs, 2);
    CHECK(src_loose > 0);
    CHECK_INT(sync_url(src, data, sizeof(data), &err), RV_OK);
    mirror_objects(data, mirror, sizeof(mirror), &packs, &loose);
    /* The copy, not libgit2's fetch (one pack, nothing loose). */
    CHECK_INT(packs, src_packs);
    CHECK_INT(loose, src_loose);
    expect_same(src, mirror, true);
    /* Written by the mirror, never linked to the source's files. */
    char *linked = NULL;
    CHECK_INT(
        rvt_sh(&linked, "find '%s/objects' -type f -links +1 | wc -l", mirror),
        0);
    CHECK(linked && strtol(linked, NULL, 10) == 0);
    free(linked);

    /* A second sync finds nothing to fetch. */
    CHECK_INT(sync_url(src, data, sizeof(data), &err), RV_OK);
    int packs2, loose2;
    count_objects(mirror, &packs2, &loose2);
    CHECK_INT(packs2, packs);
    CHECK_INT(loose2, loose);

    /* A later commit is fetched as usual, incrementally. */
    sh("cd '%s/work-plain' && echo more > more.txt && git add -A && "
       "git commit -q -m more && git push -q '%s' main",
       tmp, src);
    CHECK_INT(sync_url(src, data, sizeof(data), &err), RV_OK);
    expect_same(src, mirror, false);
}

static void test_copy_of_a_work_tree_takes_its_git_dir(void)
{
    char src[600], work[700], data[700] = "", mirror[700];
    struct rv_sync_error err;
    int packs, loose;
    make_source("worktree", src, sizeof(src));
    snprintf(work, sizeof(work), "%s/work-worktree", tmp);
    /* Inside the allowed directory, to be allowed. */
    char moved[700];
    snprintf(moved, sizeof(moved), "%s/worktree-src", allowed);
    sh("mv '%s' '%s'", work, moved);
    CHECK_INT(sync_url(moved, data, sizeof(data), &err), RV_OK);
    mirror_objects(data, mirror, sizeof(mirror), &packs, &loose);
    /* The work tree's repository has only loose objects. */
    CHECK_INT(packs, 0);
    CHECK(loose > 0);
    char gitdir[800];
    snprintf(gitdir, sizeof(gitdir), "%s/.git", moved);
    expect_same(gitdir, mirror, true);
}

static void test_symlink_for_a_pack_is_refused(void)
{
    char src[600], data[700] = "";
    struct rv_sync_error err;
    make_source("packlink", src, sizeof(src));
    sh("set -e; cd '%s/objects/pack'; p=$(ls pack-*.pack | head -1);"
       " mv \"$p\" '%s/'; ln -s '%s/'\"$p\" \"$p\"",
       src, outside, outside);
    CHECK_INT(sync_url(src, data, sizeof(data), &err), RV_ERR_URL_NOT_ALLOWED);
    CHECK_INT(err.code, RV_ERR_URL_NOT_ALLOWED);
    expect_no_mirror(data);
}

static void test_fifos_in_the_object_store_are_refused_at_once(void)
{
    char src[600], src2[600], data[700] = "", data2[700] = "";
    struct rv_sync_error err;
    make_source("fifopack", src, sizeof(src));
    sh("mkfifo '%s/objects/pack/pack-%040d.pack' && "
       "touch '%s/objects/pack/pack-%040d.idx'",
       src, 0, src, 0);
    int64_t started = rv_mono_ms();
    CHECK_INT(sync_url(src, data, sizeof(data), &err), RV_ERR_URL_NOT_ALLOWED);
    expect_no_mirror(data);

    make_source("fifoloose", src2, sizeof(src2));
    sh("mkdir -p '%s/objects/ab' && mkfifo '%s/objects/ab/%038d'", src2, src2,
       0);
    CHECK_INT(sync_url(src2, data2, sizeof(data2), &err),
              RV_ERR_URL_NOT_ALLOWED);
    expect_no_mirror(data2);
    CHECK(rv_mono_ms() - started < rvt_scale_ms(10000));
}

static void test_objects_linked_outside_are_refused(void)
{
    char src[600], victim[700], data[700] = "", data2[700] = "";
    char link[700];
    struct rv_sync_error err;
    /* A repository outside with a commit nothing inside has. */
    snprintf(victim, sizeof(victim), "%s/victim.git", outside);
    sh("set -e; git init -q --bare '%s'; w='%s/work-victim';"
       " git init -q -b main \"$w\"; cd \"$w\"; echo secret > s.txt;"
       " git add -A; git commit -q -m secret; git push -q '%s' main",
       victim, tmp, victim);
    make_source("objlink", src, sizeof(src));
    sh("set -e; rm -rf '%s/objects'; ln -s '%s/objects' '%s/objects'", src,
       victim, src);
    CHECK_INT(sync_url(src, data, sizeof(data), &err), RV_ERR_URL_NOT_ALLOWED);
    expect_no_mirror(data);

    /* The whole repository linked outside: the policy refuses it. */
    snprintf(link, sizeof(link), "%s/link.git", allowed);
    sh("ln -s '%s' '%s'", victim, link);
    CHECK_INT(sync_url(link, data2, sizeof(data2), &err),
              RV_ERR_URL_NOT_ALLOWED);
    expect_no_mirror(data2);
}

static void test_alternates_fall_back_to_the_fetch(void)
{
    char base[600], src[700], data[700] = "", mirror[700];
    struct rv_sync_error err;
    int packs, loose;
    make_source("altbase", base, sizeof(base));
    snprintf(src, sizeof(src), "%s/alt.git", allowed);
    sh("set -e; git clone -q --bare --shared '%s' '%s';"
       " cd '%s/work-altbase'; echo alt > alt.txt; git add -A;"
       " git commit -q -m alt; git push -q '%s' main",
       base, src, tmp, src);
    CHECK_INT(rvt_sh(NULL, "test -s '%s/objects/info/alternates'", src), 0);
    CHECK_INT(sync_url(src, data, sizeof(data), &err), RV_OK);
    mirror_objects(data, mirror, sizeof(mirror), &packs, &loose);
    CHECK_INT(packs, 1); /* libgit2's fetch */
    CHECK_INT(loose, 0);
    expect_same(src, mirror, false);
}

static void test_shallow_source_is_not_copied(void)
{
    char full[600], src[700], data[700] = "", mirror[700];
    struct rv_sync_error err;
    int packs, loose;
    make_source("shallowbase", full, sizeof(full));
    snprintf(src, sizeof(src), "%s/shallow.git", allowed);
    sh("git clone -q --bare --depth 1 'file://%s' '%s'", full, src);
    CHECK_INT(rvt_sh(NULL, "test -s '%s/shallow'", src), 0);
    int rc = sync_url(src, data, sizeof(data), &err);
    fprintf(stderr, "  shallow source: %s\n", rv_errname(rc));
    if (rc == RV_OK) {
        mirror_objects(data, mirror, sizeof(mirror), &packs, &loose);
        CHECK_INT(packs, 1); /* libgit2's fetch, not the copy */
        CHECK_INT(loose, 0);
    } else {
        expect_no_mirror(data);
    }
}

static void test_loose_object_with_other_content_is_never_accepted(void)
{
    char src[600], obj[800], data[700] = "";
    char scratch[700];
    struct rv_sync_error err;
    make_source("badloose", src, sizeof(src));
    loose_blob_path(src, obj, sizeof(obj));
    CHECK_INT(rvt_sh(NULL, "test -f '%s'", obj), 0);
    /* A valid loose object of other content, under the blob's name. */
    snprintf(scratch, sizeof(scratch), "%s/scratch.git", tmp);
    sh("set -e; git init -q --bare '%s'; o=$(printf 'evil\\n' |"
       " git --git-dir='%s' hash-object -w --stdin);"
       " chmod u+w '%s'; cp '%s/objects/'$(echo $o | cut -c1-2)/$(echo $o |"
       " cut -c3-) '%s'",
       scratch, scratch, obj, scratch, obj);
    CHECK_INT(sync_url(src, data, sizeof(data), &err), RV_ERR_BAD_REMOTE);
    CHECK_INT(err.code, RV_ERR_BAD_REMOTE);
    expect_no_mirror(data);

    /* Bytes that do not inflate at all. */
    char data2[700] = "";
    sh("printf 'not zlib at all' > '%s'", obj);
    CHECK_INT(sync_url(src, data2, sizeof(data2), &err), RV_ERR_BAD_REMOTE);
    expect_no_mirror(data2);
}

static void test_pack_with_a_changed_byte_is_never_accepted(void)
{
    char src[600], data[700] = "", *pack = NULL;
    struct rv_sync_error err;
    make_source("badpack", src, sizeof(src));
    CHECK_INT(
        rvt_sh(&pack, "ls -S '%s'/objects/pack/pack-*.pack | head -1", src), 0);
    if (pack)
        pack[strcspn(pack, "\n")] = '\0';
    CHECK_INT(rvt_sh(NULL, "chmod u+w '%s'", pack ? pack : ""), 0);
    int fd = pack ? open(pack, O_RDWR) : -1;
    CHECK(fd >= 0);
    if (fd >= 0) {
        off_t size = lseek(fd, 0, SEEK_END);
        unsigned char byte = 0;
        CHECK_INT(pread(fd, &byte, 1, size / 2), 1);
        byte ^= 0x40;
        CHECK_INT(pwrite(fd, &byte, 1, size / 2), 1);
        close(fd);
    }
    free(pack);
    CHECK_INT(sync_url(src, data, sizeof(data), &err), RV_ERR_BAD_REMOTE);
    expect_no_mirror(data);
}

/* Stops the copy at the stop callback's third question. */
static bool stop_at_third(void *arg)
{
    int *calls = arg;
    return ++*calls >= 3;
}

static void test_copy_stops_when_asked(void)
{
    char src[600], dir[700];
    git_repository *repo = NULL;
    struct mirror_local_stats stats;
    int calls = 0;
    make_source("stop", src, sizeof(src));
    snprintf(dir, sizeof(dir), "%s/stop-mirror.git", tmp);
    CHECK_INT(git_repository_init(&repo, dir, 1), 0);
    CHECK_INT(
        mirror_local_copy(repo, src, &policy, stop_at_third, &calls, &stats),
        MIRROR_LOCAL_STOPPED);
    CHECK_INT(calls, 3);
    git_repository_free(repo);
    /* An abort left from an earlier sync (its repo removed after it
     * ended) does not stop the next one's copy. */
    char data[700] = "", mirror[700];
    struct rv_sync_error err;
    int packs, loose;
    rv_gitstream_abort();
    CHECK_INT(sync_url(src, data, sizeof(data), &err), RV_OK);
    mirror_objects(data, mirror, sizeof(mirror), &packs, &loose);
    CHECK_INT(packs, 2); /* copied */
    CHECK(loose > 0);
}

int main(void)
{
    char why[256];
    tmp = rvt_tmpdir("rv-localclone");
    if (!tmp)
        return 1;
    rvt_git_env(tmp);
    snprintf(allowed, sizeof(allowed), "%s/allowed", tmp);
    snprintf(outside, sizeof(outside), "%s/outside", tmp);
    if (rvt_sh(NULL, "mkdir -p '%s' '%s'", allowed, outside) != 0 ||
        rv_url_policy_init(&policy, NULL, allowed, false, NULL, NULL, why,
                           sizeof(why)) != RV_OK ||
        rv_branchsync_global_init() != RV_OK)
        return 1;

    RUN(test_copy_of_a_local_path_equals_the_source);
    RUN(test_copy_of_a_work_tree_takes_its_git_dir);
    RUN(test_symlink_for_a_pack_is_refused);
    RUN(test_fifos_in_the_object_store_are_refused_at_once);
    RUN(test_objects_linked_outside_are_refused);
    RUN(test_alternates_fall_back_to_the_fetch);
    RUN(test_shallow_source_is_not_copied);
    RUN(test_loose_object_with_other_content_is_never_accepted);
    RUN(test_pack_with_a_changed_byte_is_never_accepted);
    RUN(test_copy_stops_when_asked);

    rv_url_policy_free(&policy);
    git_libgit2_shutdown();
    if (rvt_failures == 0)
        rvt_rmrf(tmp);
    else
        fprintf(stderr, "kept %s for inspection\n", tmp);
    free(tmp);
    return rvt_done();
}

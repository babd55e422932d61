/*
 * Branch sync against real repositories made with the git CLI in temp
 * dirs. The git CLI is the oracle: every row is compared with
 *   git rev-list --left-right --count DEFAULT...B
 *   git merge-tree --write-tree --name-only --no-messages DEFAULT B
 *     (where git moves one side of a file/directory clash to
 *     "path~refs_heads_B", the row names the path itself)
 *   git diff --shortstat DEFAULT...B
 * and with the tip's sha, author, author date and subject. Also: the
 * incremental reuse of rows, prune, force pushes, a renamed default branch,
 * an empty remote, the error codes, secrets in messages, the mirror
 * directory, the GC and a corrupt mirror.
 */
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/util.h"
#include "rvtest.h"
#include "worker/branchsync.h"
#include "worker/mirror.h"

#define NOW_1 1795000000000LL /* firstSeenAt of a first sync */
#define NOW_2 1795000600000LL /* ... of a later one */
#define SECRET "s3cr3tPassw0rdThatMustNotLeak"

static char *tmp;       /* malloc'd; one temp dir for the whole program */
static int repo_seq;    /* names the remotes and data dirs */
static int commit_time = 1700000000; /* increases with every commit */

/* A remote: a non-bare repo the tests commit to, and the data dir of the
 * worker that mirrors it. */
struct remote {
    char src[512];
    char data[512];
    char id[64];
};

static void remote_new(struct remote *r, const char *initial_branch)
{
    repo_seq++;
    snprintf(r->src, sizeof(r->src), "%s/src%d", tmp, repo_seq);
    snprintf(r->data, sizeof(r->data), "%s/data%d", tmp, repo_seq);
    snprintf(r->id, sizeof(r->id), "repo-%d", repo_seq);
    CHECK_INT(rvt_sh(NULL, "git init -q -b '%s' '%s'", initial_branch, r->src),
              0);
}

/* Runs a git command in the remote's work tree with a fresh commit date. */
static int git(const struct remote *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int git(const struct remote *r, const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    commit_time += 60;
    int st = rvt_sh(NULL,
                    "cd '%s' && GIT_AUTHOR_DATE='@%d +0000' "
                    "GIT_COMMITTER_DATE='@%d +0000' git %s >/dev/null 2>&1",
                    r->src, commit_time, commit_time, args);
    CHECK_INT(st, 0);
    return st;
}

/* Writes content (printf escapes allowed) to path in the work tree and
 * commits everything on the current branch. */
static void commit_file(const struct remote *r, const char *path,
                        const char *content, const char *subject)
{
    CHECK_INT(rvt_sh(NULL, "cd '%s' && mkdir -p \"$(dirname '%s')\" && "
                           "printf '%s' > '%s'",
                     r->src, path, content, path),
              0);
    git(r, "add -A");
    git(r, "commit -q -m '%s'", subject);
}

/* The lines of the rename tests' files, each after the file's own path:
 * files that rename detection pairs one way only. */
#define GREEK_LINES                                                        \
    "alpha\\nbeta\\ngamma\\ndelta\\nepsilon\\nzeta\\neta\\ntheta\\niota\\n" \
    "kappa\\nlambda\\nmu\\n"

/* Commits each of the n files: its path as its first line, then
 * GREEK_LINES. */
static void commit_greek_files(const struct remote *r,
                               const char *const *files, size_t n)
{
    char text[512];
    for (size_t i = 0; i < n; i++) {
        snprintf(text, sizeof(text), "%s\\n%s", files[i], GREEK_LINES);
        commit_file(r, files[i], text, "Base");
    }
}

/* Checks out branch and commits an edit of path: its line `from` becomes
 * `to`. */
static void commit_line_edit(const struct remote *r, const char *branch,
                             const char *path, const char *from,
                             const char *to)
{
    git(r, "checkout -q %s", branch);
    CHECK_INT(rvt_sh(NULL,
                     "cd '%s' && sed -i 's/^%s$/%s/' '%s' && "
                     "git commit -q -a -m 'Edit %s'",
                     r->src, from, to, path, path),
              0);
}

/* Runs the shell command change in the work tree and commits everything
 * dated a day before the last commit: clock skew, which the commit graph
 * cannot order by dates (libgit2 then decides). */
static void commit_from_the_past(const struct remote *r, const char *change)
{
    CHECK_INT(rvt_sh(NULL,
                     "cd '%s' && %s && git add -A && "
                     "GIT_AUTHOR_DATE='@%d +0000' "
                     "GIT_COMMITTER_DATE='@%d +0000' "
                     "git commit -q -m 'From the past' >/dev/null",
                     r->src, change, commit_time - 86400,
                     commit_time - 86400),
              0);
}

static struct rv_branchsync_opts opts_for(const struct remote *r,
                                          const char *def, int64_t now)
{
    struct rv_branchsync_opts o = {
        .data_dir = r->data,
        .repo_id = r->id,
        .url = r->src,
        .default_branch = def,
        .github_token = NULL,
        .fetch_timeout_s = 60,
        .max_branches = 1000,
        .max_conflict_files = 50,
        .now_ms = now,
        .job_id = "j-test",
    };
    return o;
}

/* Syncs and expects success; returns the document (new reference). */
static json_t *sync_ok(const struct rv_branchsync_opts *o, const json_t *prev,
                       struct rv_branchsync_stats *stats)
{
    struct rv_sync_error err;
    json_t *doc = NULL;
    int rc = rv_branchsync_run(o, prev, &doc, stats, &err);
    CHECK_INT(rc, RV_OK);
    if (rc != RV_OK)
        fprintf(stderr, "  sync failed: %s: %s\n", rv_errname(err.code),
                err.message);
    CHECK(doc != NULL);
    return doc;
}

/* A decimal at the start of s (-1 for NULL or no digits). */
static long long to_ll(const char *s)
{
    char *end;
    if (!s)
        return -1;
    long long v = strtoll(s, &end, 10);
    return end == s ? -1 : v;
}

static json_t *rows_of(const json_t *doc)
{
    return json_object_get(doc, "branches");
}

static const json_t *row_named(const json_t *doc, const char *name)
{
    size_t i;
    const json_t *row;
    json_array_foreach(rows_of(doc), i, row) {
        const char *n = json_string_value(json_object_get(row, "name"));
        if (n && strcmp(n, name) == 0)
            return row;
    }
    return NULL;
}

static long long int_at(const json_t *obj, const char *key)
{
    return (long long)json_integer_value(json_object_get(obj, key));
}

/* Trims a trailing newline in place. */
static char *chomp(char *s)
{
    size_t n = s ? strlen(s) : 0;
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Parses git's --shortstat line ("" = nothing changed). */
static void parse_shortstat(const char *s, long long *files, long long *add,
                            long long *del)
{
    *files = *add = *del = 0;
    const char *p = strstr(s, "file");
    if (p)
        *files = strtoll(s, NULL, 10);
    if ((p = strstr(s, "changed, ")) != NULL) {
        p += 9;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (strncmp(end, " insertion", 10) == 0) {
            *add = v;
            if ((p = strstr(end, ", ")) != NULL)
                *del = strtoll(p + 2, NULL, 10);
        } else if (strncmp(end, " deletion", 9) == 0) {
            *del = v;
        }
    }
}

/* Compares the row of branch b with what the git CLI says in the remote. */
static void check_row_matches_git(const struct remote *r, const json_t *doc,
                                  const char *def, const char *b)
{
    char *out = NULL;
    const json_t *row = row_named(doc, b);
    CHECK(row != NULL);
    if (!row) {
        fprintf(stderr, "  no row for %s\n", b);
        return;
    }
    rvt_current = b; /* failures below name the branch */

    CHECK_INT(rvt_sh(&out, "git -C '%s' rev-parse 'refs/heads/%s'", r->src, b),
              0);
    CHECK_STR(json_string_value(json_object_get(row, "sha")), chomp(out));
    free(out);
    CHECK_STR(json_string_value(json_object_get(row, "baseSha")),
              json_string_value(json_object_get(doc, "defaultSha")));
    CHECK(json_is_true(json_object_get(row, "isDefault")) ==
          (strcmp(b, def) == 0));

    /* No merge base: git refuses the merge; the row says "unrelated",
     * claims no conflict and has no diff stat. */
    bool unrelated = rvt_sh(NULL,
                            "git -C '%s' merge-base 'refs/heads/%s' "
                            "'refs/heads/%s' >/dev/null 2>&1",
                            r->src, def, b) != 0;
    CHECK(json_is_true(json_object_get(row, "unrelated")) == unrelated);
    long long behind = -1, ahead = -1;
    CHECK_INT(rvt_sh(&out,
                     "git -C '%s' rev-list --left-right --count "
                     "'refs/heads/%s...refs/heads/%s'",
                     r->src, def, b),
              0);
    if (out && sscanf(out, "%lld %lld", &behind, &ahead) == 2) {
        CHECK_INT(int_at(row, "ahead"), ahead);
        CHECK_INT(int_at(row, "behind"), behind);
    } else {
        CHECK(!"rev-list output");
    }
    free(out);

    if (unrelated) {
        CHECK(json_is_false(json_object_get(row, "conflicts")));
        CHECK_INT(json_array_size(json_object_get(row, "conflictFiles")), 0);
        CHECK(json_is_null(json_object_get(row, "diffStat")));
        return;
    }
    int st = rvt_sh(&out,
                    "git -C '%s' merge-tree --write-tree --name-only "
                    "--no-messages 'refs/heads/%s' 'refs/heads/%s' "
                    "| tail -n +2 | sed 's/~refs_heads_.*$//' "
                    "| LC_ALL=C sort -u",
                    r->src, def, b);
    char *merge_status = NULL;
    rvt_sh(&merge_status,
           "git -C '%s' merge-tree --write-tree 'refs/heads/%s' "
           "'refs/heads/%s' >/dev/null 2>&1; echo $?",
           r->src, def, b);
    CHECK_INT(st, 0);
    bool git_conflicts = to_ll(merge_status) == 1;
    CHECK(json_is_true(json_object_get(row, "conflicts")) == git_conflicts);
    /* Join the row's files with newlines and compare with git's list. */
    char files[4096] = "";
    size_t i;
    const json_t *f;
    json_array_foreach(json_object_get(row, "conflictFiles"), i, f) {
        size_t used = strlen(files);
        snprintf(files + used, sizeof(files) - used, "%s\n",
                 json_string_value(f));
    }
    CHECK_STR(files, git_conflicts ? out : "");
    free(out);
    free(merge_status);

    long long gf, ga, gd;
    CHECK_INT(rvt_sh(&out,
                     "git -C '%s' diff --shortstat "
                     "'refs/heads/%s...refs/heads/%s'",
                     r->src, def, b),
              0);
    parse_shortstat(out ? out : "", &gf, &ga, &gd);
    free(out);
    const json_t *stat = json_object_get(row, "diffStat");
    CHECK_INT(int_at(stat, "files"), gf);
    CHECK_INT(int_at(stat, "additions"), ga);
    CHECK_INT(int_at(stat, "deletions"), gd);

    const json_t *commit = json_object_get(row, "commit");
    CHECK_INT(rvt_sh(&out, "git -C '%s' log -1 --format=%%an 'refs/heads/%s'",
                     r->src, b),
              0);
    CHECK_STR(json_string_value(json_object_get(commit, "author")),
              chomp(out));
    free(out);
    CHECK_INT(rvt_sh(&out, "git -C '%s' log -1 --format=%%s 'refs/heads/%s'",
                     r->src, b),
              0);
    CHECK_STR(json_string_value(json_object_get(commit, "subject")),
              chomp(out));
    free(out);
    CHECK_INT(rvt_sh(&out, "git -C '%s' log -1 --format=%%at 'refs/heads/%s'",
                     r->src, b),
              0);
    char date[32];
    rv_iso8601((int64_t)strtoll(out ? out : "0", NULL, 10) * 1000, date,
               sizeof(date));
    CHECK_STR(json_string_value(json_object_get(commit, "date")), date);
    free(out);
}

/* Checks every branch of the remote against git, the document's header,
 * and the row order (default first, newest first, then name). */
static void check_doc_matches_git(const struct remote *r, const json_t *doc,
                                  const char *def)
{
    const char *saved = rvt_current;
    char *out = NULL;
    CHECK_STR(json_string_value(json_object_get(doc, "defaultBranch")), def);
    CHECK_INT(rvt_sh(&out, "git -C '%s' rev-parse 'refs/heads/%s'", r->src,
                     def),
              0);
    CHECK_STR(json_string_value(json_object_get(doc, "defaultSha")),
              chomp(out));
    free(out);
    CHECK(json_is_false(json_object_get(doc, "truncated")));
    CHECK_INT(rvt_sh(&out,
                     "git -C '%s' for-each-ref --format='%%(refname:strip=2)' "
                     "refs/heads/ | wc -l",
                     r->src),
              0);
    CHECK_INT(json_array_size(rows_of(doc)), to_ll(out));
    free(out);
    size_t i;
    const json_t *row, *prev_row = NULL;
    json_array_foreach(rows_of(doc), i, row) {
        const char *name = json_string_value(json_object_get(row, "name"));
        check_row_matches_git(r, doc, def, name ? name : "");
        rvt_current = saved;
        CHECK(json_is_true(json_object_get(row, "isDefault")) == (i == 0));
        if (prev_row && i > 1) {
            const char *d0 = json_string_value(json_object_get(
                json_object_get(prev_row, "commit"), "date"));
            const char *d1 = json_string_value(
                json_object_get(json_object_get(row, "commit"), "date"));
            const char *n0 =
                json_string_value(json_object_get(prev_row, "name"));
            int by_date = strcmp(d0, d1);
            CHECK(by_date > 0 || (by_date == 0 && strcmp(n0, name) < 0));
        }
        prev_row = row;
    }
}

/* A remote with a branch of every kind. Branch names are returned in
 * `names` (static strings). */
static const char *const kinds[] = {
    "ahead",         "behind",          "diverged",     "conflict-content",
    "conflict-add",  "identical",       "feature/deep/slashes",
    "fix/ünïcode-☃", "renamed-file",    "binary",
};

static void make_every_kind(struct remote *r)
{
    remote_new(r, "main");
    commit_file(r, "a.txt", "1\\n2\\n3\\n4\\n5\\n6\\n7\\n8\\n9\\n10\\n",
                "Initial commit");
    commit_file(r, "src/b.c", "int b;\\n", "Add b.c");
    git(r, "branch behind");
    commit_file(r, "src/c.c", "int c;\\n", "Add c.c");
    git(r, "branch identical");
    git(r, "branch conflict-content");
    git(r, "branch conflict-add");
    git(r, "branch diverged");
    git(r, "branch ahead");
    git(r, "branch feature/deep/slashes");
    git(r, "branch 'fix/ünïcode-☃'");
    git(r, "branch renamed-file");
    git(r, "branch binary");

    git(r, "checkout -q ahead");
    commit_file(r, "ahead.txt", "x\\ny\\n", "Ahead: add a file");
    commit_file(r, "ahead.txt", "x\\nz\\nw\\n", "Ahead: change it");

    git(r, "checkout -q diverged");
    commit_file(r, "diverged.txt", "d\\n", "Diverged: its own file");

    git(r, "checkout -q conflict-content");
    commit_file(r, "a.txt", "ONE\\n2\\n3\\n4\\n5\\n6\\n7\\n8\\n9\\n10\\n",
                "Conflict: change line 1");
    commit_file(r, "clean.txt", "fine\\n", "Conflict: and a clean file");

    git(r, "checkout -q conflict-add");
    commit_file(r, "added.txt", "from the branch\\n", "Add/add: branch side");

    git(r, "checkout -q feature/deep/slashes");
    commit_file(r, "deep/x.txt", "deep\\n", "Slashes: a deep file");

    git(r, "checkout -q 'fix/ünïcode-☃'");
    commit_file(r, "ü.txt", "ü\\n", "Ünïcode: subject ☃");

    git(r, "checkout -q renamed-file");
    git(r, "mv src/b.c src/renamed_b.c");
    git(r, "commit -q -m 'Rename b.c'");

    git(r, "checkout -q binary");
    commit_file(r, "blob.bin", "\\000\\001\\002\\003binary", "Binary file");

    git(r, "checkout -q main");
    commit_file(r, "a.txt", "one\\n2\\n3\\n4\\n5\\n6\\n7\\n8\\n9\\n10\\n",
                "Main: change line 1");
    commit_file(r, "added.txt", "from main\\n", "Add/add: main side");
    commit_file(r, "main-only.txt", "m\\n", "Main moves on");
    git(r, "branch same-as-main");
}

static void test_every_row_matches_the_git_cli(void)
{
    struct remote r;
    struct rv_branchsync_stats stats;
    make_every_kind(&r);
    struct rv_branchsync_opts o = opts_for(&r, NULL, NOW_1);
    json_t *doc = sync_ok(&o, NULL, &stats);
    if (!doc)
        return;
    check_doc_matches_git(&r, doc, "main");
    CHECK_INT(stats.branches, 12);
    CHECK_INT(stats.recomputed, 12);
    CHECK_INT(stats.reused, 0);

    /* The oracle agreeing is not enough: the repo must have made every
     * case happen. */
    const json_t *row = row_named(doc, "conflict-content");
    CHECK(json_is_true(json_object_get(row, "conflicts")));
    CHECK_INT(json_array_size(json_object_get(row, "conflictFiles")), 1);
    CHECK_STR(json_string_value(
                  json_array_get(json_object_get(row, "conflictFiles"), 0)),
              "a.txt");
    row = row_named(doc, "conflict-add");
    CHECK(json_is_true(json_object_get(row, "conflicts")));
    CHECK_STR(json_string_value(
                  json_array_get(json_object_get(row, "conflictFiles"), 0)),
              "added.txt");
    row = row_named(doc, "diverged");
    CHECK(json_is_false(json_object_get(row, "conflicts")));
    CHECK_INT(int_at(row, "ahead"), 1);
    CHECK_INT(int_at(row, "behind"), 3);
    row = row_named(doc, "behind");
    CHECK_INT(int_at(row, "ahead"), 0);
    CHECK_INT(int_at(row, "behind"), 4);
    row = row_named(doc, "ahead");
    CHECK_INT(int_at(row, "ahead"), 2);
    CHECK_INT(int_at(json_object_get(row, "diffStat"), "additions"), 3);
    row = row_named(doc, "identical");
    CHECK_INT(int_at(row, "ahead") + int_at(row, "behind"), 3);
    row = row_named(doc, "same-as-main");
    CHECK_INT(int_at(row, "ahead") + int_at(row, "behind"), 0);
    CHECK_STR(json_string_value(json_object_get(row, "sha")),
              json_string_value(json_object_get(doc, "defaultSha")));
    row = row_named(doc, "renamed-file");
    CHECK_INT(int_at(json_object_get(row, "diffStat"), "files"), 1);
    CHECK_INT(int_at(json_object_get(row, "diffStat"), "additions"), 0);
    row = row_named(doc, "binary");
    CHECK_INT(int_at(json_object_get(row, "diffStat"), "files"), 1);
    row = row_named(doc, "fix/ünïcode-☃");
    CHECK(row != NULL);
    CHECK_STR(json_string_value(
                  json_object_get(json_object_get(row, "commit"), "subject")),
              "Ünïcode: subject ☃");
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        CHECK(row_named(doc, kinds[i]) != NULL);
    char now[32];
    rv_iso8601(NOW_1, now, sizeof(now));
    CHECK_STR(json_string_value(json_object_get(row, "firstSeenAt")), now);
    /* Exactly the document's shape: no "pr", the internal baseSha. */
    CHECK_INT(json_object_size(doc), 5);
    CHECK_INT(json_array_size(json_object_get(doc, "warnings")), 0);
    CHECK_INT(json_object_size(json_array_get(rows_of(doc), 0)), 12);
    CHECK(json_object_get(json_array_get(rows_of(doc), 0), "pr") == NULL);
    json_decref(doc);
}

/* The mirror's branches are exactly the remote's (names and tips). */
static void check_mirror_refs(const struct remote *r)
{
    char mirror[4096], *refs[2] = {NULL, NULL};
    CHECK_INT(rv_mirror_path(r->data, r->id, mirror, sizeof(mirror)), 0);
    const char *dirs[2] = {r->src, mirror};
    for (int i = 0; i < 2; i++)
        CHECK_INT(rvt_sh(&refs[i],
                         "git -C '%s' for-each-ref "
                         "--format='%%(objectname) %%(refname)' refs/heads/",
                         dirs[i]),
                  0);
    CHECK_STR(refs[1] ? refs[1] : "", refs[0] ? refs[0] : "-");
    free(refs[0]);
    free(refs[1]);
}

static void test_second_sync_recomputes_only_what_moved(void)
{
    struct remote r;
    struct rv_branchsync_stats stats;
    make_every_kind(&r);
    struct rv_branchsync_opts o = opts_for(&r, NULL, NOW_1);
    json_t *doc1 = sync_ok(&o, NULL, &stats);
    if (!doc1)
        return;
    /* The clone wrote every branch into packed-refs at once, no loose
     * ref files. */
    check_mirror_refs(&r);
    char mirror[4096], *loose = NULL;
    CHECK_INT(rv_mirror_path(r.data, r.id, mirror, sizeof(mirror)), 0);
    CHECK_INT(rvt_sh(&loose, "find '%s/refs/heads' -type f | wc -l", mirror),
              0);
    CHECK_INT(to_ll(loose), 0);
    free(loose);

    /* Nothing moved: every row is reused as it was. */
    o.now_ms = NOW_2;
    json_t *doc2 = sync_ok(&o, doc1, &stats);
    CHECK_INT(stats.recomputed, 0);
    CHECK_INT(stats.reused, 12);
    CHECK(json_equal(doc1, doc2));

    /* A push to one branch recomputes that branch only. */
    git(&r, "checkout -q diverged");
    commit_file(&r, "diverged.txt", "d\\ne\\n", "Diverged: one more");
    git(&r, "checkout -q main");
    json_t *doc3 = sync_ok(&o, doc2, &stats);
    CHECK_INT(stats.recomputed, 1);
    CHECK_INT(stats.reused, 11);
    check_doc_matches_git(&r, doc3, "main");
    check_mirror_refs(&r);
    char first[32];
    rv_iso8601(NOW_1, first, sizeof(first));
    CHECK_STR(json_string_value(
                  json_object_get(row_named(doc3, "diverged"), "firstSeenAt")),
              first);
    CHECK_INT(int_at(row_named(doc3, "diverged"), "ahead"), 2);

    /* A new branch is new: firstSeenAt is now. */
    git(&r, "branch brand-new");
    /* A push to main recomputes every row. */
    commit_file(&r, "main-only.txt", "m\\nn\\n", "Main moves again");
    json_t *doc4 = sync_ok(&o, doc3, &stats);
    CHECK_INT(stats.recomputed, 13);
    CHECK_INT(stats.reused, 0);
    check_doc_matches_git(&r, doc4, "main");
    check_mirror_refs(&r);
    CHECK_STR(json_string_value(
                  json_object_get(row_named(doc4, "ahead"), "firstSeenAt")),
              first);
    char second[32];
    rv_iso8601(NOW_2, second, sizeof(second));
    CHECK_STR(json_string_value(json_object_get(row_named(doc4, "brand-new"),
                                                "firstSeenAt")),
              second);
    json_decref(doc1);
    json_decref(doc2);
    json_decref(doc3);
    json_decref(doc4);
}

static void test_deleted_and_force_pushed_branches_follow_the_remote(void)
{
    struct remote r;
    struct rv_branchsync_stats stats;
    make_every_kind(&r);
    struct rv_branchsync_opts o = opts_for(&r, NULL, NOW_1);
    json_t *doc1 = sync_ok(&o, NULL, &stats);
    git(&r, "branch -D identical");
    /* Force-push: rewrite "ahead" to a different history. */
    git(&r, "checkout -q ahead");
    git(&r, "reset -q --hard HEAD~2");
    commit_file(&r, "a.txt", "uno\\n2\\n3\\n4\\n5\\n6\\n7\\n8\\n9\\n10\\n",
                "Ahead, rewritten to conflict");
    git(&r, "checkout -q main");
    json_t *doc2 = sync_ok(&o, doc1, &stats);
    CHECK(row_named(doc2, "identical") == NULL);
    CHECK_INT(stats.branches, 11);
    CHECK_INT(stats.recomputed, 1);
    check_doc_matches_git(&r, doc2, "main");
    check_mirror_refs(&r); /* prune and force push reach packed-refs */
    CHECK(json_is_true(json_object_get(row_named(doc2, "ahead"), "conflicts")));
    /* Prune really removed the ref from the mirror. */
    char path[1024];
    CHECK_INT(rv_mirror_path(r.data, r.id, path, sizeof(path)), 0);
    CHECK(rvt_sh(NULL, "git -C '%s' rev-parse -q --verify refs/heads/identical",
                 path) != 0);
    json_decref(doc1);
    json_decref(doc2);
}

static void test_renamed_default_branch_is_followed(void)
{
    struct remote r;
    struct rv_branchsync_stats stats;
    make_every_kind(&r);
    struct rv_branchsync_opts o = opts_for(&r, NULL, NOW_1);
    json_t *doc1 = sync_ok(&o, NULL, &stats);
    CHECK_STR(json_string_value(json_object_get(doc1, "defaultBranch")),
              "main");
    git(&r, "branch -m main trunk"); /* HEAD follows the rename */
    json_t *doc2 = sync_ok(&o, doc1, &stats);
    check_doc_matches_git(&r, doc2, "trunk");
    CHECK(row_named(doc2, "main") == NULL);
    json_decref(doc1);
    json_decref(doc2);

    /* A remote whose HEAD is neither main nor master, on a first sync. */
    struct remote r2;
    remote_new(&r2, "develop");
    commit_file(&r2, "f", "f\\n", "First");
    git(&r2, "branch master");
    commit_file(&r2, "f", "g\\n", "Second");
    o = opts_for(&r2, NULL, NOW_1);
    json_t *doc3 = sync_ok(&o, NULL, &stats);
    check_doc_matches_git(&r2, doc3, "develop");
    /* A registered default branch wins over the remote's HEAD. */
    o.default_branch = "master";
    json_t *doc4 = sync_ok(&o, doc3, &stats);
    check_doc_matches_git(&r2, doc4, "master");
    CHECK_INT(int_at(row_named(doc4, "develop"), "ahead"), 1);
    json_decref(doc3);
    json_decref(doc4);
}

static void test_empty_remote_gives_no_rows(void)
{
    struct remote r;
    struct rv_branchsync_stats stats;
    remote_new(&r, "main");
    struct rv_branchsync_opts o = opts_for(&r, NULL, NOW_1);
    json_t *doc = sync_ok(&o, NULL, &stats);
    CHECK(json_is_null(json_object_get(doc, "defaultBranch")));
    CHECK(json_is_null(json_object_get(doc, "defaultSha")));
    CHECK(json_is_false(json_object_get(doc, "truncated")));
    CHECK_INT(json_array_size(rows_of(doc)), 0);
    CHECK(json_is_array(rows_of(doc)));
    CHECK_INT(stats.branches, 0);
    /* Then the first push shows up. */
    commit_file(&r, "f", "f\\n", "First");
    json_t *doc2 = sync_ok(&o, doc, &stats);
    check_doc_matches_git(&r, doc2, "main");
    json_decref(doc);
    json_decref(doc2);
}

static void test_missing_registered_default_branch_is_an_error(void)
{
    struct remote r;
    struct rv_branchsync_stats stats;
    struct rv_sync_error err;
    make_every_kind(&r);
    struct rv_branchsync_opts o = opts_for(&r, "release", NOW_1);
    json_t *doc = (json_t *)&o; /* must be reset to NULL */
    CHECK(rv_branchsync_run(&o, NULL, &doc, &stats, &err) != RV_OK);
    CHECK(doc == NULL);
    CHECK_STR(rv_errname(err.code), "no_default_branch");
    CHECK(strstr(err.message, "release") != NULL);

    /* No HEAD branch, no main, no master, nothing registered. */
    struct remote r2;
    remote_new(&r2, "dev");
    commit_file(&r2, "f", "f\\n", "First");
    git(&r2, "branch other");
    git(&r2, "checkout -q other");
    git(&r2, "branch -D dev");
    git(&r2, "symbolic-ref HEAD refs/heads/gone");
    o = opts_for(&r2, NULL, NOW_1);
    doc = (json_t *)&o;
    CHECK(rv_branchsync_run(&o, NULL, &doc, &stats, &err) != RV_OK);
    CHECK(doc == NULL);
    CHECK_STR(rv_errname(err.code), "no_default_branch");
}

static void test_unreachable_remote_reports_a_class_without_details(void)
{
    struct remote r;
    struct rv_branchsync_stats stats;
    struct rv_sync_error err;
    remote_new(&r, "main");
    struct rv_branchsync_opts o = opts_for(&r, NULL, NOW_1);
    char url[1024];
    snprintf(url, sizeof(url), "file://%s/does-not-exist", tmp);
    o.url = url;
    json_t *doc = (json_t *)&o;
    CHECK(rv_branchsync_run(&o, NULL, &doc, &stats, &err) != RV_OK);
    CHECK(doc == NULL);
    /* What the file system said stays in the log: the sentence is the
     * same whether or not the path exists. */
    CHECK_STR(rv_errname(err.code), "not_found");
    CHECK(strstr(err.message, "does-not-exist") == NULL);
    CHECK(strstr(err.message, "No such file") == NULL);

    /* Nothing listens on port 1; the password in the URL and the token
     * must not reach the message. */
    o.url = "http://user:" SECRET "@127.0.0.1:1/x.git";
    o.github_token = "ghp_" SECRET;
    CHECK(rv_branchsync_run(&o, NULL, &doc, &stats, &err) != RV_OK);
    CHECK_STR(rv_errname(err.code), "unreachable");
    CHECK(strstr(err.message, SECRET) == NULL);
    /* No port scanner: nothing of what the connection met is shown. */
    CHECK(strstr(err.message, "127.0.0.1") == NULL);
    CHECK(strstr(err.message, "refused") == NULL);
    /* A failed first clone leaves nothing behind. */
    char *out = NULL;
    rvt_sh(&out, "ls -A '%s/mirrors' | wc -l", r.data);
    CHECK_INT(to_ll(out), 0);
    free(out);
}

/* A remote that accepts the connection and then says nothing (a hung
 * server, a black-holing proxy): the fetch gives up at its timeout with
 * the "timeout" code, over git:// and http:// alike, instead of holding
 * the worker forever. */
static void test_silent_remote_times_out(void)
{
    struct remote r;
    struct rv_branchsync_stats stats;
    struct rv_sync_error err;
    remote_new(&r, "main");
    int port = 0, ls = rvt_silent_listener(&port); /* nobody answers */
    CHECK(ls >= 0);
    static const char *const schemes[] = {"git", "http"};
    for (size_t i = 0; i < 2; i++) {
        char url[128];
        snprintf(url, sizeof(url), "%s://127.0.0.1:%d/x.git", schemes[i],
                 port);
        rvt_current = schemes[i];
        struct rv_branchsync_opts o = opts_for(&r, NULL, NOW_1);
        o.url = url;
        o.fetch_timeout_s = 1;
        json_t *doc = NULL;
        int64_t started = rv_mono_ms();
        CHECK(rv_branchsync_run(&o, NULL, &doc, &stats, &err) != RV_OK);
        int64_t took = rv_mono_ms() - started;
        CHECK(doc == NULL);
        CHECK_STR(rv_errname(err.code), "timeout");
        CHECK(took >= 900 && took < rvt_scale_ms(10000));
    }
    rvt_current = NULL;
    close(ls);
}

/* GITHUB_TOKEN goes to github.com for the public API, and to a GitHub
 * Enterprise server's own host when the API URL names one. */
static void test_token_host_follows_the_github_api(void)
{
    static const char *const cases[][2] = {
        {"https://api.github.com", "github.com"},
        {"https://API.GitHub.com/", "github.com"},
        {"https://ghe.example.com/api/v3", "ghe.example.com"},
        {"https://ghe.example.com:8443/api/v3", "ghe.example.com"},
        {"http://127.0.0.1:9999", "127.0.0.1"},
        {"https://[fd00::1]:8443/api/v3", "[fd00::1]"},
        {"https://api.octocorp.ghe.com", "octocorp.ghe.com"},
        {"", "github.com"},
        {"not a url", "github.com"},
    };
    char host[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        rvt_current = cases[i][0];
        CHECK_INT(rv_mirror_token_host(cases[i][0], host, sizeof(host)), 0);
        CHECK_STR(host, cases[i][1]);
    }
    rvt_current = NULL;
    CHECK_INT(rv_mirror_token_host("https://ghe.example.com/", host, 8), -1);
}

static void test_mirror_stays_inside_data_dir(void)
{
    struct remote r;
    struct rv_branchsync_stats stats;
    char path[1024], real_data[PATH_MAX], real_path[PATH_MAX];
    make_every_kind(&r);
    snprintf(r.id, sizeof(r.id), "a.b-c_d");
    struct rv_branchsync_opts o = opts_for(&r, NULL, NOW_1);
    json_t *doc = sync_ok(&o, NULL, &stats);
    json_decref(doc);
    CHECK_INT(rv_mirror_path(r.data, "a.b-c_d", path, sizeof(path)), 0);
    char expected[1024];
    snprintf(expected, sizeof(expected), "%s/mirrors/612e622d635f64.git",
             r.data);
    CHECK_STR(path, expected);
    CHECK(realpath(r.data, real_data) != NULL);
    CHECK(realpath(path, real_path) != NULL);
    CHECK(strncmp(real_path, real_data, strlen(real_data)) == 0);
    CHECK(rvt_sh(NULL, "git --git-dir='%s' rev-parse -q --verify "
                       "refs/heads/main >/dev/null",
                 path) == 0);
    /* Ids that could escape are refused before any path is made. */
    const char *bad[] = {"..", "..a", "../x", "a/b", "", ".hidden", "-x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_INT(rv_mirror_path(r.data, bad[i], path, sizeof(path)), -1);
    o.repo_id = "../escape";
    struct rv_sync_error err;
    CHECK(rv_branchsync_run(&o, NULL, &doc, &stats, &err) != RV_OK);
    CHECK(access(r.data, F_OK) == 0);
    char escaped[1024];
    snprintf(escaped, sizeof(escaped), "%s/escape.git", r.data);
    CHECK(access(escaped, F_OK) != 0);
}

/* What the GC tests keep, and what they were asked. */
struct gc_keep {
    const char *keep[4];
    size_t nkeep;
    bool fail;
    size_t asked, most;
};

static int gc_keep_fn(void *arg, const char (*ids)[RV_REPO_ID_MAX + 1],
                      size_t n, bool *kept)
{
    struct gc_keep *k = arg;
    if (k->fail)
        return RV_ERR_REDIS;
    k->asked += n;
    k->most = n > k->most ? n : k->most;
    for (size_t i = 0; i < n; i++) {
        kept[i] = false;
        for (size_t j = 0; j < k->nkeep; j++)
            kept[i] = kept[i] || strcmp(ids[i], k->keep[j]) == 0;
    }
    return RV_OK;
}

/* Walks data's mirrors to the end; the number of steps, or -1 when one
 * failed. */
static int gc_walk(const char *data, struct gc_keep *keep)
{
    struct rv_mirror_scan scan = {0};
    bool done = false;
    int steps = 0;
    while (!done && steps < 100) {
        steps++;
        if (rv_mirror_gc_step(&scan, data, gc_keep_fn, keep, &done) != RV_OK) {
            rv_mirror_scan_close(&scan);
            return -1;
        }
    }
    return steps;
}

static void test_gc_removes_only_unregistered_mirrors(void)
{
    struct remote r;
    struct rv_branchsync_stats stats;
    char kept[1024], gone[1024], foreign[1024];
    make_every_kind(&r);
    struct rv_branchsync_opts o = opts_for(&r, NULL, NOW_1);
    json_decref(sync_ok(&o, NULL, &stats));
    o.repo_id = "Other";
    json_decref(sync_ok(&o, NULL, &stats));
    rv_mirror_path(r.data, r.id, kept, sizeof(kept));
    rv_mirror_path(r.data, "Other", gone, sizeof(gone));
    snprintf(foreign, sizeof(foreign), "%s/mirrors/not-ours", r.data);
    CHECK_INT(mkdir(foreign, 0755), 0);
    struct gc_keep keep = {.keep = {r.id, "never-synced"}, .nkeep = 2};
    CHECK_INT(gc_walk(r.data, &keep), 1);
    CHECK(access(kept, F_OK) == 0);
    CHECK(access(gone, F_OK) != 0);
    CHECK(access(foreign, F_OK) == 0);
    /* GC of a data dir that has no mirrors yet is fine. */
    char empty[1024];
    snprintf(empty, sizeof(empty), "%s/no-such-data", tmp);
    CHECK_INT(gc_walk(empty, &keep), 1);
    /* A keep that cannot answer removes nothing. */
    keep.fail = true;
    o.repo_id = "Other";
    json_decref(sync_ok(&o, NULL, &stats));
    CHECK_INT(gc_walk(r.data, &keep), -1);
    CHECK(access(gone, F_OK) == 0);
}

/* A walk over 1,200 mirrors goes a chunk at a time: three steps, none
 * asking about more than a chunk, and removes exactly the unkept ones. */
static void test_gc_walks_a_chunk_per_step(void)
{
    char data[1024], path[1400];
    snprintf(data, sizeof(data), "%s/gc-chunks", tmp);
    snprintf(path, sizeof(path), "%s/mirrors", data);
    CHECK_INT(rvt_sh(NULL, "mkdir -p '%s'", path), 0);
    struct gc_keep keep = {.keep = {"r-7", "r-1199"}, .nkeep = 2};
    for (int i = 0; i < 1200; i++) {
        char id[32];
        snprintf(id, sizeof(id), "r-%d", i);
        CHECK_INT(rv_mirror_path(data, id, path, sizeof(path)), 0);
        CHECK_INT(mkdir(path, 0755), 0);
    }
    CHECK_INT(gc_walk(data, &keep), 3);
    CHECK(keep.most <= RV_MIRROR_GC_CHUNK);
    CHECK_INT((int)keep.asked, 1200);
    int left = 0;
    for (int i = 0; i < 1200; i++) {
        char id[32];
        snprintf(id, sizeof(id), "r-%d", i);
        rv_mirror_path(data, id, path, sizeof(path));
        left += access(path, F_OK) == 0;
    }
    CHECK_INT(left, 2);
    rv_mirror_path(data, "r-1199", path, sizeof(path));
    CHECK(access(path, F_OK) == 0);
}

static void test_corrupt_mirror_is_cloned_again(void)
{
    struct remote r;
    struct rv_branchsync_stats stats;
    char path[1024];
    make_every_kind(&r);
    struct rv_branchsync_opts o = opts_for(&r, NULL, NOW_1);
    json_t *doc1 = sync_ok(&o, NULL, &stats);
    rv_mirror_path(r.data, r.id, path, sizeof(path));

    /* A worker killed mid-fetch leaves a lock; the next fetch cannot
     * update main. */
    commit_file(&r, "main-only.txt", "m\\nn\\n", "Main moves again");
    CHECK_INT(rvt_sh(NULL, "touch '%s/refs/heads/main.lock'", path), 0);
    json_t *doc2 = sync_ok(&o, doc1, &stats);
    check_doc_matches_git(&r, doc2, "main");

    /* Objects gone: not a repository any more. */
    CHECK_INT(rvt_sh(NULL, "rm -rf '%s/objects' '%s/HEAD'", path, path), 0);
    json_t *doc3 = sync_ok(&o, doc2, &stats);
    check_doc_matches_git(&r, doc3, "main");
    json_decref(doc1);
    json_decref(doc2);
    json_decref(doc3);
}

static void test_unusual_names_and_caps(void)
{
    struct remote r;
    struct rv_branchsync_stats stats;
    remote_new(&r, "main");
    commit_file(&r, "a", "a\\n", "First");
    commit_file(&r, "b", "b\\n", "Second");
    git(&r, "branch three-conflicts HEAD~1");
    git(&r, "update-ref \"refs/heads/bad-$(printf '\\377')-name\" HEAD");
    commit_file(&r, "x", "main\\n", "Main x");
    commit_file(&r, "y", "main\\n", "Main y");
    commit_file(&r, "z", "main\\n", "Main z");
    git(&r, "checkout -q three-conflicts");
    commit_file(&r, "x", "br\\n", "Branch x");
    commit_file(&r, "y", "br\\n", "Branch y");
    commit_file(&r, "z", "br\\n", "Branch z");
    git(&r, "checkout -q main");
    for (int i = 0; i < 5; i++)
        git(&r, "branch extra-%d HEAD~%d", i, i);
    struct rv_branchsync_opts o = opts_for(&r, NULL, NOW_1);
    o.max_conflict_files = 2;
    json_t *doc = sync_ok(&o, NULL, &stats);
    /* The name that is not UTF-8 is skipped, the rest are there. */
    CHECK_INT(stats.branches, 7);
    const json_t *row = row_named(doc, "three-conflicts");
    CHECK(json_is_true(json_object_get(row, "conflicts")));
    const json_t *files = json_object_get(row, "conflictFiles");
    CHECK_INT(json_array_size(files), 2);
    CHECK_STR(json_string_value(json_array_get(files, 0)), "x");
    CHECK_STR(json_string_value(json_array_get(files, 1)), "y");
    json_decref(doc);

    o.max_branches = 3;
    doc = sync_ok(&o, NULL, &stats);
    CHECK(json_is_true(json_object_get(doc, "truncated")));
    CHECK_INT(json_array_size(rows_of(doc)), 3);
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(rows_of(doc), 0), "name")),
              "main");
    /* The newest commits win the remaining places. */
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(rows_of(doc), 1), "name")),
              "three-conflicts");
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(rows_of(doc), 2), "name")),
              "extra-0");
    json_decref(doc);
}

/* Merge commits, a criss-cross (two merge bases: libgit2 decides) and a
 * commit dated before its parent (clock skew: libgit2 decides too) all
 * agree with git. */
static void test_merges_and_clock_skew_match_git(void)
{
    struct remote r;
    struct rv_branchsync_stats stats;
    remote_new(&r, "main");
    commit_file(&r, "a.txt", "1\\n2\\n3\\n", "First");
    git(&r, "branch topic");
    git(&r, "branch cross");
    git(&r, "checkout -q topic");
    commit_file(&r, "t.txt", "t\\n", "Topic work");
    git(&r, "checkout -q main");
    commit_file(&r, "m.txt", "m\\n", "Main work");
    git(&r, "merge -q --no-edit topic");
    git(&r, "checkout -q topic");
    commit_file(&r, "t.txt", "t\\nu\\n", "Topic after the merge");
    /* Criss-cross: cross and main each merge the other's old tip. */
    git(&r, "checkout -q cross");
    commit_file(&r, "c.txt", "c\\n", "Cross work");
    git(&r, "branch cross-old");
    git(&r, "merge -q --no-edit main~1");
    git(&r, "checkout -q main");
    git(&r, "merge -q --no-edit cross-old");
    commit_file(&r, "a.txt", "1\\n2\\nmain\\n", "Main after the criss-cross");
    git(&r, "checkout -q cross");
    commit_file(&r, "a.txt", "1\\n2\\ncross\\n", "Cross conflicts");
    /* Skew: a commit dated a day before its parent. */
    git(&r, "checkout -q -b skewed main~2");
    commit_from_the_past(&r, "printf 'old\\n' > s.txt");
    commit_file(&r, "s.txt", "old\\nnew\\n", "Back to the present");
    git(&r, "checkout -q main");
    struct rv_branchsync_opts o = opts_for(&r, NULL, NOW_1);
    json_t *doc = sync_ok(&o, NULL, &stats);
    check_doc_matches_git(&r, doc, "main");
    CHECK(json_is_true(json_object_get(row_named(doc, "cross"), "conflicts")));
    CHECK_INT(int_at(row_named(doc, "topic"), "ahead"), 1);
    json_decref(doc);
}

/* The merge is decided from the paths a branch changed where that is safe,
 * and by libgit2's tree merge everywhere else: file/directory clashes both
 * ways, a file that became a directory, a file added to a directory main
 * deleted, a rename of a file main modified, a mode change meeting a
 * content change, modify/delete, both sides making the same change, a
 * clean and a conflicting edit of one file. Every row agrees with git, and
 * exactly the shapes that need the tree merge ran one. */
static void test_merge_shapes_decided_by_paths_match_git(void)
{
    struct remote r;
    struct rv_branchsync_stats stats;
    remote_new(&r, "main");
    commit_file(&r, "m.txt", "1\\n2\\n3\\n4\\n5\\n6\\n7\\n8\\n9\\n10\\n",
                "Base: m");
    commit_file(&r, "c.txt", "one\\ntwo\\nthree\\n", "Base: c");
    commit_file(&r, "s.txt", "same\\n", "Base: s");
    commit_file(&r, "d.txt", "delete me?\\n", "Base: d");
    commit_file(&r, "tool", "#!/bin/sh\\n", "Base: tool");
    commit_file(&r, "exe.sh", "echo 1\\necho 2\\necho 3\\n", "Base: exe");
    commit_file(&r, "dir/x.txt", "x\\n", "Base: dir x");
    commit_file(&r, "dir/y.txt", "y\\n", "Base: dir y");
    commit_file(&r, "r.txt",
                "alpha\\nbeta\\ngamma\\ndelta\\nepsilon\\nzeta\\neta\\n"
                "theta\\niota\\nkappa\\n",
                "Base: r");
    static const char *const shapes[] = {
        "df-dir",    "df-file",      "file-to-dir", "add-in-deleted-dir",
        "rename",    "mode-vs-edit", "delete-vs-edit", "same-change",
        "automerge", "conflict",
    };
    for (size_t i = 0; i < sizeof(shapes) / sizeof(*shapes); i++)
        git(&r, "branch %s", shapes[i]);

    git(&r, "checkout -q df-dir"); /* main adds the file "df" */
    commit_file(&r, "df/inner.txt", "in\\n", "Dir where main adds a file");
    git(&r, "checkout -q df-file"); /* main adds "fd/inner.txt" */
    commit_file(&r, "fd", "file\\n", "File where main adds a dir");
    git(&r, "checkout -q file-to-dir");
    git(&r, "rm -q tool");
    commit_file(&r, "tool/main.c", "int main;\\n", "Tool becomes a dir");
    git(&r, "checkout -q add-in-deleted-dir");
    commit_file(&r, "dir/z.txt", "z\\n", "Add to the dir main deletes");
    git(&r, "checkout -q rename");
    git(&r, "mv r.txt r2.txt");
    git(&r, "commit -q -m 'Rename r'");
    git(&r, "checkout -q mode-vs-edit");
    CHECK_INT(rvt_sh(NULL, "chmod +x '%s/exe.sh'", r.src), 0);
    git(&r, "commit -q -a -m 'exe.sh executable'");
    git(&r, "checkout -q delete-vs-edit");
    git(&r, "rm -q d.txt");
    git(&r, "commit -q -m 'Delete d'");
    git(&r, "checkout -q same-change");
    commit_file(&r, "s.txt", "changed alike\\n", "Same change");
    git(&r, "checkout -q automerge");
    commit_file(&r, "m.txt", "1\\n2\\n3\\n4\\n5\\n6\\n7\\n8\\n9\\nTEN\\n",
                "Edit the end of m");
    git(&r, "checkout -q conflict");
    commit_file(&r, "c.txt", "one\\nTWO (branch)\\nthree\\n", "Edit c");

    git(&r, "checkout -q main");
    commit_file(&r, "df", "file\\n", "Main: a file where a branch adds dir");
    commit_file(&r, "fd/inner.txt", "in\\n", "Main: a dir where a branch adds file");
    git(&r, "rm -q -r dir");
    git(&r, "commit -q -m 'Main: delete dir'");
    commit_file(&r, "r.txt",
                "alpha\\nbeta\\ngamma\\ndelta\\nepsilon\\nzeta\\neta\\n"
                "theta\\niota\\nKAPPA\\n",
                "Main: edit r");
    commit_file(&r, "exe.sh", "echo 1\\necho 2\\necho THREE\\n", "Main: exe");
    commit_file(&r, "d.txt", "kept and edited\\n", "Main: edit d");
    commit_file(&r, "s.txt", "changed alike\\n", "Main: same change");
    commit_file(&r, "m.txt", "ONE\\n2\\n3\\n4\\n5\\n6\\n7\\n8\\n9\\n10\\n",
                "Main: edit the start of m");
    commit_file(&r, "c.txt", "one\\nTWO (main)\\nthree\\n", "Main: edit c");

    struct rv_branchsync_opts o = opts_for(&r, NULL, NOW_1);
    json_t *doc = sync_ok(&o, NULL, &stats);
    if (!doc)
        return;
    check_doc_matches_git(&r, doc, "main");
    /* The repo made the interesting cases happen (git agreed above). */
    CHECK(json_is_true(json_object_get(row_named(doc, "conflict"),
                                       "conflicts")));
    CHECK(json_is_false(json_object_get(row_named(doc, "automerge"),
                                        "conflicts")));
    CHECK(json_is_true(json_object_get(row_named(doc, "delete-vs-edit"),
                                       "conflicts")));
    CHECK(json_is_false(json_object_get(row_named(doc, "rename"),
                                        "conflicts")));
    /* df-dir, df-file, rename, mode-vs-edit and delete-vs-edit need the
     * tree merge; the other five are decided by their paths. */
    CHECK_INT(stats.merged, 5);
    CHECK_INT(stats.recomputed, 11);
    json_decref(doc);
}

/* Paths the pruned tree walk does not take the short way: a branch
 * touching a file 300 directories deep (past the walk's depth limit: the
 * row is computed by libgit2 as a whole, and the rest of the repo still
 * syncs), and submodule entries whose names libgit2 would read as
 * gitignore patterns ("#sub", "sub "). Every row agrees with git. */
static void test_deep_trees_and_odd_submodule_names_match_git(void)
{
    struct remote r;
    struct rv_branchsync_stats stats;
    char deep[1024] = "";
    size_t used = 0;
    for (int i = 0; i < 300; i++)
        used += (size_t)snprintf(deep + used, sizeof(deep) - used, "d/");
    snprintf(deep + used, sizeof(deep) - used, "f.txt");
    remote_new(&r, "main");
    commit_file(&r, "base.txt", "1\\n2\\n3\\n", "Base");
    git(&r, "branch deep");
    git(&r, "branch gitlinks");
    git(&r, "checkout -q deep");
    commit_file(&r, deep, "deep\\n", "A file 300 directories down");
    git(&r, "checkout -q gitlinks");
    commit_file(&r, "base.txt", "1\\n2\\nthree\\n", "An edit");
    char *head = NULL;
    CHECK_INT(rvt_sh(&head, "git -C '%s' rev-parse HEAD", r.src), 0);
    chomp(head);
    /* Index entries only (no work tree dirs): commit without add -A. */
    git(&r, "update-index --add --cacheinfo '160000,%s,#sub'", head);
    git(&r, "update-index --add --cacheinfo '160000,%s,sub '", head);
    git(&r, "commit -q -m 'Two submodules with odd names'");
    free(head);
    git(&r, "checkout -q main");
    commit_file(&r, "main.txt", "m\\n", "Main moves on");

    struct rv_branchsync_opts o = opts_for(&r, NULL, NOW_1);
    json_t *doc = sync_ok(&o, NULL, &stats);
    if (!doc)
        return;
    check_doc_matches_git(&r, doc, "main");
    CHECK_INT(int_at(json_object_get(row_named(doc, "gitlinks"), "diffStat"),
                     "files"),
              3);
    CHECK_INT(int_at(json_object_get(row_named(doc, "deep"), "diffStat"),
                     "files"),
              1);
    json_decref(doc);
}

/* Renames as git's merge-ort and diff see them: the default branch moves
 * a file one branch edits (clean) and one branch edits it the other way
 * (a conflict at the new name), renames a directory one branch adds into
 * (git's "CONFLICT (file location)" at the new path); a branch renames a
 * directory the default branch adds into, and one renames a file with a
 * few edits (one file in the diff stat, git's 50% similarity); an
 * orphan branch has no merge base at all. Every row agrees with git. */
static void test_renames_match_git(void)
{
    struct remote r;
    struct rv_branchsync_stats stats;
    remote_new(&r, "main");
    static const char *const files[] = {
        "r.txt", "q.txt", "big.txt", "lib/a.txt", "lib/b.txt", "lib/c.txt",
        "old/a.c", "old/b.c", "old/c.c",
    };
    commit_greek_files(&r, files, sizeof(files) / sizeof(*files));
    static const char *const shapes[] = {
        "edit-moved", "conflict-moved", "add-in-renamed-dir",
        "rename-dir", "rename-with-edits",
    };
    for (size_t i = 0; i < sizeof(shapes) / sizeof(*shapes); i++)
        git(&r, "branch %s", shapes[i]);
    commit_line_edit(&r, "edit-moved", "r.txt", "beta", "BETA");
    commit_line_edit(&r, "conflict-moved", "q.txt", "alpha", "ALPHA");
    git(&r, "checkout -q add-in-renamed-dir");
    commit_file(&r, "lib/new.txt", "new\\n", "Add to lib");
    git(&r, "checkout -q rename-dir");
    git(&r, "mv old new");
    git(&r, "commit -q -m 'Rename old/ to new/'");
    git(&r, "checkout -q rename-with-edits");
    git(&r, "mv big.txt big2.txt");
    CHECK_INT(rvt_sh(NULL, "cd '%s' && sed -i 's/^mu$/MU/' big2.txt", r.src),
              0);
    git(&r, "commit -q -a -m 'Rename big, edit it'");
    git(&r, "checkout -q --orphan gh-pages");
    git(&r, "rm -q -r -f .");
    commit_file(&r, "index.html", "<p>pages</p>\\n", "Pages");

    git(&r, "checkout -q main");
    git(&r, "mv r.txt moved.txt");
    git(&r, "commit -q -m 'Move r'");
    git(&r, "mv q.txt q2.txt");
    CHECK_INT(rvt_sh(NULL, "cd '%s' && sed -i 's/^alpha$/Alpha/' q2.txt",
                     r.src),
              0);
    git(&r, "commit -q -a -m 'Move q, edit it'");
    git(&r, "mv lib core");
    git(&r, "commit -q -m 'Rename lib/ to core/'");
    commit_file(&r, "old/extra.c", "extra\\n", "Add to old/");

    struct rv_branchsync_opts o = opts_for(&r, NULL, NOW_1);
    json_t *doc = sync_ok(&o, NULL, &stats);
    if (!doc)
        return;
    check_doc_matches_git(&r, doc, "main");
    /* The repo made the cases happen (git agreed above). */
    const json_t *row = row_named(doc, "edit-moved");
    CHECK(json_is_false(json_object_get(row, "conflicts")));
    row = row_named(doc, "conflict-moved");
    CHECK_STR(json_string_value(
                  json_array_get(json_object_get(row, "conflictFiles"), 0)),
              "q2.txt");
    row = row_named(doc, "add-in-renamed-dir");
    CHECK_STR(json_string_value(
                  json_array_get(json_object_get(row, "conflictFiles"), 0)),
              "core/new.txt");
    row = row_named(doc, "rename-dir");
    CHECK_STR(json_string_value(
                  json_array_get(json_object_get(row, "conflictFiles"), 0)),
              "new/extra.c");
    row = row_named(doc, "rename-with-edits");
    CHECK_INT(int_at(json_object_get(row, "diffStat"), "files"), 1);
    CHECK_INT(int_at(json_object_get(row, "diffStat"), "additions"), 1);
    row = row_named(doc, "gh-pages");
    CHECK(json_is_true(json_object_get(row, "unrelated")));
    CHECK(int_at(row, "ahead") == 1 && int_at(row, "behind") == 13);
    json_decref(doc);
}

/* The default branch reorganises the tree: it adds more files than the
 * merge's rename limit (libgit2's tree merge then looks for no renames
 * and reports modify/delete, as libgit2's own history did for
 * cmn/sortedcache-close) and moves files whose names are not unique
 * (src/cache.c and tests/core/cache.c). Branches that edit the moved
 * files merge into their new paths as git does: cleanly, or with the
 * conflict at the new path; a file added in a moved directory is a file
 * location conflict; a file both sides moved to one place merges there,
 * and one they moved apart conflicts at all three names; renames pair as
 * git's pairs them (exact, same name, then best score) where two moved
 * files are alike; and a branch whose commit is dated before its parent
 * (the commit graph defers to libgit2) is decided the same way. All but
 * one are decided without the tree merge. */
static void test_edits_follow_a_reorganised_default_branch(void)
{
    struct remote r;
    struct rv_branchsync_stats stats;
    char text[512];
    remote_new(&r, "main");
    static const char *const files[] = {
        "src/cache.c", "tests/core/cache.c", "lib/util.c", "old/a.c",
        "old/b.c",     "keep.txt",
    };
    commit_greek_files(&r, files, sizeof(files) / sizeof(*files));
    static const char *const shapes[] = {
        "edit-moved", "conflict-moved", "add-in-moved-dir", "skewed",
        "moved-alike", "moved-apart", "moved-and-renamed",
    };
    /* Two files alike but for their last line: a rename of either scores
     * high against both. */
    snprintf(text, sizeof(text), "%sx\n", GREEK_LINES);
    commit_file(&r, "t/x", text, "Base: t/x");
    snprintf(text, sizeof(text), "%scached\n", GREEK_LINES);
    commit_file(&r, "t/x_cached", text, "Base: t/x_cached");
    for (size_t i = 0; i < sizeof(shapes) / sizeof(*shapes); i++)
        git(&r, "branch %s", shapes[i]);
    /* Both sides rename t/x_cached to n/x and t/x to n/x_nocache; the
     * branch edits both. On the default side both are exact renames; on
     * the branch git's basename step pairs t/x with n/x (the one file of
     * that name, 75% alike), so the two sides moved t/x apart: a
     * rename/rename conflict, and a diff stat of two edited files that
     * libgit2's best-score pairing would count as two small edits. */
    git(&r, "checkout -q moved-and-renamed");
    CHECK_INT(rvt_sh(NULL,
                     "cd '%s' && mkdir n && git mv t/x_cached n/x && "
                     "git mv t/x n/x_nocache && "
                     "sed -i 's/^alpha$/ALPHA/' n/x_nocache && "
                     "sed -i 's/^mu$/MU/' n/x && "
                     "git commit -q -a -m 'Rename t/, edit both'",
                     r.src),
              0);
    commit_line_edit(&r, "edit-moved", "src/cache.c", "kappa", "KAPPA");
    commit_line_edit(&r, "conflict-moved", "lib/util.c", "mu", "MU");
    git(&r, "checkout -q add-in-moved-dir");
    commit_file(&r, "old/extra.c", "extra\\n", "Add to old/");
    git(&r, "checkout -q skewed");
    commit_from_the_past(&r, "sed -i 's/^gamma$/GAMMA/' tests/core/cache.c");
    git(&r, "checkout -q moved-alike");
    CHECK_INT(rvt_sh(NULL,
                     "cd '%s' && git mv old new && "
                     "sed -i 's/^kappa$/KAPPA/' new/b.c && "
                     "git commit -q -a -m 'Move old/ as main does, edit b.c'",
                     r.src),
              0);
    git(&r, "checkout -q moved-apart");
    CHECK_INT(rvt_sh(NULL,
                     "cd '%s' && mkdir kept && git mv keep.txt kept/ && "
                     "git commit -q -m 'Move keep.txt elsewhere'",
                     r.src),
              0);

    git(&r, "checkout -q main");
    CHECK_INT(rvt_sh(NULL,
                     "cd '%s' && mkdir -p other n && git mv keep.txt other/ && "
                     "git mv t/x_cached n/x && git mv t/x n/x_nocache && "
                     "mkdir -p gen src/util tests/util lib/x && "
                     "for i in $(seq 1 7050); do echo \"generated $i\" "
                     "> gen/f$i.txt; done && "
                     "git mv src/cache.c src/util/cache.c && "
                     "git mv tests/core/cache.c tests/util/cache.c && "
                     "git mv lib/util.c lib/x/util.c && git mv old new && "
                     "sed -i 's/^alpha$/Alpha/' src/util/cache.c && "
                     "sed -i 's/^mu$/Mu/' lib/x/util.c && git add -A && "
                     "git commit -q -m 'Reorganise'",
                     r.src),
              0);

    struct rv_branchsync_opts o = opts_for(&r, NULL, NOW_1);
    json_t *doc = sync_ok(&o, NULL, &stats);
    if (!doc)
        return;
    check_doc_matches_git(&r, doc, "main");
    /* The repo made the cases happen (git agreed above). */
    CHECK(json_is_false(
        json_object_get(row_named(doc, "edit-moved"), "conflicts")));
    CHECK(json_is_false(
        json_object_get(row_named(doc, "skewed"), "conflicts")));
    CHECK(json_is_false(
        json_object_get(row_named(doc, "moved-alike"), "conflicts")));
    CHECK(json_is_true(
        json_object_get(row_named(doc, "moved-and-renamed"), "conflicts")));
    CHECK_INT((int)json_array_size(json_object_get(
                  row_named(doc, "moved-apart"), "conflictFiles")),
              3);
    CHECK_STR(json_string_value(json_array_get(
                  json_object_get(row_named(doc, "conflict-moved"),
                                  "conflictFiles"),
                  0)),
              "lib/x/util.c");
    CHECK_STR(json_string_value(json_array_get(
                  json_object_get(row_named(doc, "add-in-moved-dir"),
                                  "conflictFiles"),
                  0)),
              "new/extra.c");
    CHECK_INT(stats.merged, 1); /* moved-and-renamed */
    json_decref(doc);
}

/* printf text of a function of the shape the line-diff tests use: a loop
 * and a blank line, so that functions share every line but two. */
static void similar_function(char *buf, size_t size, const char *name,
                             int k, const char *extra)
{
    snprintf(buf, size,
             "int %s(int x)\\n{\\n    int a = x;\\n"
             "    for (int i = 0; i < x; i++) {\\n        a++;\\n    }\\n\\n"
             "    a *= %d;\\n%s    return a;\\n}\\n",
             name, k, extra);
}

/* A merge that git's histogram diff makes clean and a Myers diff makes
 * conflict: the default branch deletes the first of two similar functions
 * and appends a third, and the branch adds a line to the second. Myers
 * pairs the default side's new function with the base's second one, so
 * the branch's line lands in a changed region; patience and histogram
 * anchor on the lines unique to each function ("a *= 1;") and merge. The
 * git CLI's own Myers merge (git merge-file) conflicts here, so the shape
 * depends on the algorithm. One branch is decided by its paths (a file
 * merge) and is clean, as git says; one by the tree merge (the default
 * branch also deleted a file the branch edits) conflicts at that file
 * alone, as git says, not at f.c. */
static void test_histogram_only_clean_merge_is_clean(void)
{
    struct remote r;
    struct rv_branchsync_stats stats;
    char f0[512], f1[512], f1_log[512], g1[512], text[2048];
    similar_function(f0, sizeof(f0), "f0", 0, "");
    similar_function(f1, sizeof(f1), "f1", 1, "");
    similar_function(f1_log, sizeof(f1_log), "f1", 1, "    log(3);\\n");
    similar_function(g1, sizeof(g1), "g1", 3, "");
    remote_new(&r, "main");
    snprintf(text, sizeof(text), "%s\\n%s", f0, f1);
    commit_file(&r, "f.c", text, "Base: two similar functions");
    commit_file(&r, "r.txt", "r\\n1\\n2\\n3\\n4\\n5\\n6\\n7\\n8\\n", "Base: r");
    git(&r, "branch by-paths");
    git(&r, "branch by-tree");
    git(&r, "checkout -q by-paths");
    snprintf(text, sizeof(text), "%s\\n%s", f0, f1_log);
    commit_file(&r, "f.c", text, "Log in f1");
    git(&r, "checkout -q by-tree");
    commit_file(&r, "f.c", text, "Log in f1");
    commit_file(&r, "r.txt", "r\\n1\\n2\\n3\\n4\\n5\\n6\\n7\\nEIGHT\\n",
                "Edit r");
    git(&r, "checkout -q main");
    snprintf(text, sizeof(text), "%s\\n%s", f1, g1);
    commit_file(&r, "f.c", text, "Drop f0, add g1");
    git(&r, "rm -q r.txt");
    git(&r, "commit -q -m 'Delete r'");

    /* The shape is one where the algorithm matters: git's Myers merge
     * of the same three versions conflicts. */
    CHECK(rvt_sh(NULL,
                 "cd '%s' && git show main:f.c > ours && "
                 "git show main~2:f.c > base && "
                 "git show by-paths:f.c > theirs && "
                 "git merge-file -q ours base theirs",
                 r.src) != 0);
    char *listed = NULL;
    rvt_sh(&listed,
           "git -C '%s' merge-tree --write-tree --name-only main by-tree | "
           "sed -n '2,/^$/p'",
           r.src);
    CHECK_STR(listed, "r.txt\n\n"); /* git merges f.c */
    free(listed);
    CHECK_INT(rvt_sh(NULL, "cd '%s' && rm -f ours base theirs", r.src), 0);

    struct rv_branchsync_opts o = opts_for(&r, NULL, NOW_1);
    json_t *doc = sync_ok(&o, NULL, &stats);
    if (!doc)
        return;
    check_doc_matches_git(&r, doc, "main");
    CHECK(json_is_false(json_object_get(row_named(doc, "by-paths"),
                                        "conflicts")));
    const json_t *files =
        json_object_get(row_named(doc, "by-tree"), "conflictFiles");
    CHECK_INT((int)json_array_size(files), 1);
    CHECK_STR(json_string_value(json_array_get(files, 0)), "r.txt");
    CHECK_INT(stats.merged, 1); /* by-tree alone needed the tree merge */
    json_decref(doc);
}

/* The directories of the generated repo, SCALE_FILES files each. */
static const char *const scale_dirs[] = {
    "src/core", "src/net", "src/ui", "lib/util",
    "lib/fmt",  "docs",    "tools",  "tests",
};
#define SCALE_FILES 40
#define SCALE_RANDOM_BRANCHES 12 /* besides the table's branches */

/* Shell functions the generated repo's edits use, in the work tree:
 *   e PATH J TAG  appends "+ TAG" to the return line of function J
 *                 (the one line holding "J<J>;"), so two sides editing
 *                 one function conflict and different functions merge;
 *   n PATH [WHO]  adds a small file of its own at PATH (WHO tells two
 *                 sides' files at one path apart). */
#define SCALE_SH                                                         \
    "e() { sed -i \"s/J$2;/J$2 + $3;/\" \"$1\"; }; "                       \
    "n() { mkdir -p \"$(dirname \"$1\")\" && "                             \
    "printf '/* added as %%s by %%s */\\nint added;\\n' \"$1\" \"$2\" " \
    "> \"$1\"; }; "

/* One branch of the generated repo: what it does to the base, in SCALE_SH
 * shell, and whether git says it conflicts (a check that the repo made
 * the case happen; the rows are compared with git either way). */
struct scale_branch {
    const char *name;
    const char *sh;
    bool conflicts;
};

static const struct scale_branch scale_branches[] = {
    {"edit-in-renamed-dir", "e lib/util/f20.c 2 b", false},
    {"conflict-in-renamed-dir", "e lib/util/f3.c 1 b", true},
    {"edit-beside-main-in-renamed-dir", "e lib/util/f8.c 3 b", false},
    {"add-to-renamed-dir", "n lib/util/new.c", true},
    {"add-to-moved-dir", "n src/net/extra.c", true},
    {"edit-moved-files", "e src/ui/f3.c 2 b && e src/ui/f15.c 2 b", false},
    {"edit-renamed-edited", "e docs/f2.c 3 b", false},
    {"conflict-renamed-edited", "e docs/f4.c 0 b", true},
    {"edit-in-place", "e src/core/f5.c 3 b", false},
    {"conflict-in-place", "e src/core/f6.c 0 b", true},
    {"modify-deleted", "e tools/f31.c 2 b", true},
    {"rename-edited", "git mv src/core/f10.c src/core/g10.c", false},
    {"rename-renamed", "git mv docs/f5.c docs/five.c", true},
    {"rename-dir-main-adds-to", "git mv tests test", true},
    {"rename-untouched-dir", "git mv lib/fmt lib/format", false},
    {"move-into-renamed-dir", "git mv src/core/f30.c lib/util/f30b.c", true},
    {"add-elsewhere", "n newdir/a.c && n newdir/b.c && e src/net/f1.c 2 b",
     false},
    {"edit-moved-dir", "for i in 1 2 3 4 5; do e src/net/f$i.c 3 b; done",
     false},
    {"add-add", "n src/core/new0.c branch", true},
    {"mode-of-renamed", "chmod +x lib/util/f7.c", false},
    {"delete-and-edit", "git rm -q src/core/f25.c && e lib/fmt/f2.c 1 b",
     false},
    {"many-edits",
     "for d in src/core src/net src/ui lib/util lib/fmt docs tools tests; do "
     "for i in 0 7 14 21 28; do e $d/f$i.c 3 b; done; done",
     false},
    {"many-conflicts",
     "for i in 0 1 2 3 4; do e src/core/f$i.c 0 b; done && "
     "for i in 0 1 2; do e lib/util/f$i.c 1 b; done",
     true},
    {"delete-in-renamed-dir", "git rm -q lib/util/f11.c", true},
    {"rename-in-renamed-dir", "git mv lib/util/f25.c lib/util/f25x.c", true},
    {"delete-partly-moved-dir", "git rm -q -r src/ui", true},
};

/* Appends to sh (size bytes) the SCALE_SH commands of n random edits of
 * distinct base files, drawn from *seed (a fixed LCG: the same repo every
 * run): an edit of one function, a rename within the directory, a
 * deletion, or a new file beside it. */
static void scale_random_edits(char *sh, size_t size, unsigned *seed, int n,
                               int branch)
{
    const size_t ndirs = sizeof(scale_dirs) / sizeof(*scale_dirs);
    bool used[sizeof(scale_dirs) / sizeof(*scale_dirs)][SCALE_FILES] = {{0}};
    size_t len = strlen(sh);
    for (int k = 0; k < n && len < size; k++) {
        size_t d;
        int i;
        do {
            *seed = *seed * 1103515245u + 12345u;
            d = (*seed >> 16) % ndirs;
            i = (int)((*seed >> 8) % SCALE_FILES);
        } while (used[d][i]);
        used[d][i] = true;
        const char *dir = scale_dirs[d];
        switch ((*seed >> 24) % 4) {
        case 0:
            len += (size_t)snprintf(sh + len, size - len,
                                    "e %s/f%d.c %u b && ", dir, i,
                                    (*seed >> 4) % 5);
            break;
        case 1:
            len += (size_t)snprintf(sh + len, size - len,
                                    "git mv %s/f%d.c %s/r%d_%d.c && ", dir,
                                    i, dir, i, branch);
            break;
        case 2:
            len += (size_t)snprintf(sh + len, size - len,
                                    "git rm -q %s/f%d.c && ", dir, i);
            break;
        default:
            len += (size_t)snprintf(sh + len, size - len,
                                    "n %s/new%d_%d.c && ", dir, i, branch);
        }
    }
    if (len < size)
        snprintf(sh + len, size - len, "true");
}

/* Writes the base text of the file at path: a first line naming it and
 * five functions whose return lines hold "F<id>J<j>;", so that no two
 * files look alike to rename detection. */
static void scale_write(const struct remote *r, const char *path, int id)
{
    char full[1024];
    int w = snprintf(full, sizeof(full), "%s/%s", r->src, path);
    CHECK(w > 0 && (size_t)w < sizeof(full));
    FILE *f = w > 0 && (size_t)w < sizeof(full) ? fopen(full, "w") : NULL;
    CHECK(f != NULL);
    if (!f)
        return;
    fprintf(f, "/* %s */\n#include \"common.h\"\n", path);
    for (int j = 0; j < 5; j++)
        fprintf(f, "\nint fn_%d_%d(int x)\n{\n    return x + F%dJ%d;\n}\n",
                id, j, id, j);
    fclose(f);
}

/* A generated repo of 320 files in 8 directories, where the default
 * branch renames two directories (lib/util to lib/common, src/net to
 * net), moves part of a third, renames and edits ten files, edits others
 * in place (some inside the renamed directories), deletes ten and adds a
 * few; 26 branches forked before all that edit renamed and unrenamed
 * files, add files to renamed directories, rename files and directories
 * themselves, delete, change modes, some cleanly and some in conflict,
 * and 12 more make random edits, renames, deletions and additions.
 * Every row (conflicts, conflictFiles, diffStat) agrees with git
 * merge-tree and git diff --shortstat. */
static void test_generated_repo_with_renames_matches_git(void)
{
    struct remote r;
    struct rv_branchsync_stats stats;
    const size_t ndirs = sizeof(scale_dirs) / sizeof(*scale_dirs);
    const size_t nbranches = sizeof(scale_branches) / sizeof(*scale_branches);
    char path[1024];
    remote_new(&r, "main");
    for (size_t d = 0; d < ndirs; d++) {
        snprintf(path, sizeof(path), "%s/%s", r.src, scale_dirs[d]);
        CHECK_INT(rv_mkdirs(path), 0);
        for (int i = 0; i < SCALE_FILES; i++) {
            snprintf(path, sizeof(path), "%s/f%d.c", scale_dirs[d], i);
            scale_write(&r, path, (int)d * SCALE_FILES + i);
        }
    }
    git(&r, "add -A");
    git(&r, "commit -q -m 'Base: 320 files'");
    for (size_t b = 0; b < nbranches; b++) {
        const struct scale_branch *sb = &scale_branches[b];
        git(&r, "checkout -q -b '%s' main", sb->name);
        CHECK_INT(rvt_sh(NULL, "cd '%s' && " SCALE_SH "%s", r.src, sb->sh),
                  0);
        git(&r, "add -A");
        git(&r, "commit -q -m '%s'", sb->name);
    }
    unsigned seed = 19;
    for (int b = 0; b < SCALE_RANDOM_BRANCHES; b++) {
        char sh[2048] = "";
        scale_random_edits(sh, sizeof(sh), &seed, 6, b);
        git(&r, "checkout -q -b 'random-%d' main", b);
        CHECK_INT(rvt_sh(NULL, "cd '%s' && " SCALE_SH "%s", r.src, sh), 0);
        git(&r, "add -A");
        git(&r, "commit -q -m 'Random edits %d'", b);
    }
    git(&r, "checkout -q main");
    CHECK_INT(rvt_sh(NULL,
                     "cd '%s' && " SCALE_SH
                     "git mv lib/util lib/common && git mv src/net net && "
                     "mkdir src/view && "
                     "for i in 0 1 2 3 4 5 6 7 8 9; do "
                     "git mv src/ui/f$i.c src/view/f$i.c; done",
                     r.src),
              0);
    git(&r, "commit -q -m 'Main: rename lib/util and src/net, move ui'");
    CHECK_INT(rvt_sh(NULL,
                     "cd '%s' && " SCALE_SH
                     "for i in 0 1 2 3 4 5 6 7 8 9; do "
                     "git mv docs/f$i.c docs/f$i.txt && e docs/f$i.txt 0 m; "
                     "done",
                     r.src),
              0);
    git(&r, "commit -q -a -m 'Main: docs become text, edited'");
    CHECK_INT(rvt_sh(NULL,
                     "cd '%s' && " SCALE_SH
                     "for i in $(seq 0 19); do e src/core/f$i.c 0 m; done && "
                     "for i in $(seq 0 9); do e lib/common/f$i.c 1 m; done && "
                     "git rm -q tools/f3?.c && "
                     "for i in 0 1 2 3 4; do n src/core/new$i.c; done && "
                     "n tests/main_new.c",
                     r.src),
              0);
    git(&r, "add -A");
    git(&r, "commit -q -m 'Main: edits, deletions, additions'");

    struct rv_branchsync_opts o = opts_for(&r, NULL, NOW_1);
    json_t *doc = sync_ok(&o, NULL, &stats);
    if (!doc)
        return;
    check_doc_matches_git(&r, doc, "main");
    for (size_t b = 0; b < nbranches; b++) {
        rvt_current = scale_branches[b].name;
        CHECK(json_is_true(json_object_get(
                  row_named(doc, scale_branches[b].name), "conflicts")) ==
              scale_branches[b].conflicts);
    }
    rvt_current = "test_generated_repo_with_renames_matches_git";
    CHECK_INT(stats.recomputed,
              (long long)nbranches + SCALE_RANDOM_BRANCHES + 1);
    json_decref(doc);
}

/* The warning code of the document's only warning ("" when none). */
static const char *warning_code(const json_t *doc)
{
    const json_t *w = json_object_get(doc, "warnings");
    if (json_array_size(w) != 1)
        return "";
    return json_string_value(json_object_get(json_array_get(w, 0), "code"));
}

/* A remote HEAD that names no branch falls back to main or master, and
 * says so: git does not advertise such a HEAD ("unknown"), and the HEAD
 * recorded by an earlier sync names a branch deleted since ("missing"). */
static void test_missing_remote_head_is_reported(void)
{
    struct remote r;
    struct rv_branchsync_stats stats;
    remote_new(&r, "trunk");
    commit_file(&r, "a.txt", "a\\n", "First");
    git(&r, "branch master");
    git(&r, "branch dev");
    struct rv_branchsync_opts o = opts_for(&r, NULL, NOW_1);
    json_t *doc = sync_ok(&o, NULL, &stats);
    CHECK_STR(json_string_value(json_object_get(doc, "defaultBranch")),
              "trunk");
    CHECK_STR(warning_code(doc), "");
    json_decref(doc);
    git(&r, "checkout -q dev");
    git(&r, "branch -D trunk");
    git(&r, "symbolic-ref HEAD refs/heads/gone");
    doc = sync_ok(&o, NULL, &stats);
    CHECK_STR(json_string_value(json_object_get(doc, "defaultBranch")),
              "master");
    CHECK_STR(warning_code(doc), "remote_head_missing");
    json_decref(doc);
    struct remote fresh;
    remote_new(&fresh, "master");
    commit_file(&fresh, "a.txt", "a\\n", "First");
    git(&fresh, "symbolic-ref HEAD refs/heads/gone");
    o = opts_for(&fresh, NULL, NOW_1);
    doc = sync_ok(&o, NULL, &stats);
    CHECK_STR(json_string_value(json_object_get(doc, "defaultBranch")),
              "master");
    CHECK_STR(warning_code(doc), "remote_head_unknown");
    json_decref(doc);
}

int main(void)
{
    tmp = rvt_tmpdir("rv-branchsync");
    if (!tmp)
        return 1;
    rvt_git_env(tmp);
    if (rv_branchsync_global_init() != RV_OK)
        return 1;

    RUN(test_every_row_matches_the_git_cli);
    RUN(test_second_sync_recomputes_only_what_moved);
    RUN(test_deleted_and_force_pushed_branches_follow_the_remote);
    RUN(test_renamed_default_branch_is_followed);
    RUN(test_empty_remote_gives_no_rows);
    RUN(test_missing_registered_default_branch_is_an_error);
    RUN(test_unreachable_remote_reports_a_class_without_details);
    RUN(test_silent_remote_times_out);
    RUN(test_token_host_follows_the_github_api);
    RUN(test_mirror_stays_inside_data_dir);
    RUN(test_gc_removes_only_unregistered_mirrors);
    RUN(test_gc_walks_a_chunk_per_step);
    RUN(test_corrupt_mirror_is_cloned_again);
    RUN(test_unusual_names_and_caps);
    RUN(test_merges_and_clock_skew_match_git);
    RUN(test_merge_shapes_decided_by_paths_match_git);
    RUN(test_deep_trees_and_odd_submodule_names_match_git);
    RUN(test_renames_match_git);
    RUN(test_edits_follow_a_reorganised_default_branch);
    RUN(test_histogram_only_clean_merge_is_clean);
    RUN(test_generated_repo_with_renames_matches_git);
    RUN(test_missing_remote_head_is_reported);

    git_libgit2_shutdown();
    rvt_rmrf(tmp);
    free(tmp);
    return rvt_done();
}

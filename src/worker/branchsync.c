/* See branchsync.h. */
#include "worker/branchsync.h"

#include <git2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/errors.h"
#include "common/log.h"
#include "common/util.h"
#include "worker/gitstream.h"
#include "worker/mirror.h"

/* Author names, subjects and paths longer than this are cut (at a UTF-8
 * boundary): a document row must stay small whatever a commit says. */
#define TEXT_MAX 1024
/* git's default diff.renameLimit, so diffStat counts renames as git does. */
#define RENAME_LIMIT 1000

/* One branch of the mirror. name is owned; reuse is borrowed from the
 * previous document (lives as long as the caller's prev). */
struct branch {
    char *name;
    git_oid oid;
    int64_t time_ms;     /* date shown in the row (author time): ordering */
    bool is_default;
    const json_t *reuse; /* previous row still valid, or NULL */
};

int rv_branchsync_global_init(void)
{
    if (git_libgit2_init() < 1)
        return RV_ERR_GIT;
    /* Objects are verified once, by the indexer, when a fetch brings them;
     * hashing them again on every read (libgit2's default, unlike git's)
     * costs a third of the compute time for nothing. */
    git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
    return rv_gitstream_register();
}

static void set_git_error(struct rv_sync_error *err, const char *what)
{
    const git_error *e = git_error_last();
    rv_sync_error_set(err, "git_error", "%s: %s.", what,
                      e && e->message ? e->message : "unknown error");
}

/* A JSON string from repository bytes (author names, subjects, paths):
 * invalid UTF-8 becomes U+FFFD, ISO-8859-1 (when the commit says so) is
 * converted, and text past TEXT_MAX bytes is cut at a character boundary.
 * New reference, or NULL when out of memory. */
static json_t *text_json(const char *s, bool latin1)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    char *buf = malloc(3 * (n < TEXT_MAX ? n : TEXT_MAX) + 4);
    if (!buf)
        return NULL;
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (n > 0 && o < TEXT_MAX) {
        size_t k = latin1 ? 1 : rv_utf8_seq(p, n);
        if (latin1 && *p >= 0x80) {
            buf[o++] = (char)(0xc0 | (*p >> 6));
            buf[o++] = (char)(0x80 | (*p & 0x3f));
        } else if (k == 0) {
            memcpy(buf + o, "\xef\xbf\xbd", 3);
            o += 3;
            k = 1;
        } else {
            memcpy(buf + o, p, k);
            o += k;
        }
        p += k;
        n -= k;
    }
    json_t *j = json_stringn(buf, o);
    free(buf);
    return j;
}

static bool is_latin1(const char *encoding)
{
    return encoding && (!strcasecmp(encoding, "ISO-8859-1") ||
                        !strcasecmp(encoding, "latin1") ||
                        !strcasecmp(encoding, "ISO8859-1"));
}

static int cmp_branch(const void *a, const void *b)
{
    const struct branch *x = a, *y = b;
    if (x->is_default != y->is_default)
        return x->is_default ? -1 : 1;
    if (x->time_ms != y->time_ms)
        return x->time_ms > y->time_ms ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void free_branches(struct branch *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i].name);
    free(list);
}

/* Lists the branches (refs/heads) of the mirror from its refs alone (no
 * object is read). A name that is not valid UTF-8 cannot be shown in JSON:
 * it is skipped with a warning. *out is malloc'd (free_branches). */
static int list_branches(git_repository *repo,
                         const struct rv_branchsync_opts *opts,
                         struct branch **out, size_t *count,
                         struct rv_sync_error *err)
{
    int rc = RV_OK;
    git_reference_iterator *it = NULL;
    git_reference *ref = NULL;
    size_t n = 0, cap = 64;
    struct branch *list = calloc(cap, sizeof(*list));
    *out = NULL;
    *count = 0;
    if (!list) {
        rv_sync_error_set(err, "git_error", "Out of memory listing branches.");
        return RV_ERR_NOMEM;
    }
    if (git_reference_iterator_glob_new(&it, repo, "refs/heads/*") != 0) {
        set_git_error(err, "Cannot list the branches of the mirror");
        free(list);
        return RV_ERR_GIT;
    }
    int grc;
    while ((grc = git_reference_next(&ref, it)) == 0) {
        const char *full = git_reference_name(ref);
        const git_oid *oid = git_reference_target(ref); /* NULL: symbolic */
        const char *name = full + strlen("refs/heads/");
        if (!oid || rv_utf8_valid_prefix(name) != strlen(name)) {
            if (oid)
                LOG(RV_LOG_WARN, opts->repo_id, opts->job_id,
                    "skipping a branch whose name is not valid UTF-8");
            git_reference_free(ref);
            continue;
        }
        if (n == cap) {
            struct branch *bigger = realloc(list, cap * 2 * sizeof(*list));
            if (!bigger) {
                git_reference_free(ref);
                rc = RV_ERR_NOMEM;
                break;
            }
            list = bigger;
            cap *= 2;
        }
        memset(&list[n], 0, sizeof(list[n]));
        list[n].name = strdup(name);
        git_oid_cpy(&list[n].oid, oid);
        git_reference_free(ref);
        if (!list[n].name) {
            rc = RV_ERR_NOMEM;
            break;
        }
        n++;
    }
    git_reference_iterator_free(it);
    if (rc == RV_OK && grc != GIT_ITEROVER) {
        set_git_error(err, "Cannot list the branches of the mirror");
        rc = RV_ERR_GIT;
    } else if (rc != RV_OK) {
        rv_sync_error_set(err, "git_error", "Out of memory listing branches.");
    }
    if (rc != RV_OK) {
        free_branches(list, n);
        return rc;
    }
    *out = list;
    *count = n;
    return RV_OK;
}

static struct branch *find_branch(struct branch *list, size_t n,
                                  const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].name, name) == 0)
            return &list[i];
    return NULL;
}

/* The default branch: the registered one (and nothing else when it is
 * missing), else the remote's HEAD, else main, else master. NULL when none
 * exists. */
static struct branch *pick_default(const struct rv_branchsync_opts *opts,
                                   struct branch *list, size_t n,
                                   const char *remote_head)
{
    if (opts->default_branch && *opts->default_branch)
        return find_branch(list, n, opts->default_branch);
    struct branch *b = NULL;
    if (remote_head && *remote_head)
        b = find_branch(list, n, remote_head);
    if (!b)
        b = find_branch(list, n, "main");
    if (!b)
        b = find_branch(list, n, "master");
    return b;
}

/* True when prev_row has the shape this file writes, so it can be reused
 * as it is; *time_ms gets its commit date. A malformed row (a document from
 * an older version, say) is computed again instead. */
static bool row_reusable(const json_t *row, int64_t *time_ms)
{
    const json_t *stat = json_object_get(row, "diffStat");
    const json_t *commit = json_object_get(row, "commit");
    const char *date = json_string_value(json_object_get(commit, "date"));
    return json_is_string(json_object_get(row, "name")) &&
           json_is_boolean(json_object_get(row, "isDefault")) &&
           json_is_integer(json_object_get(row, "ahead")) &&
           json_is_integer(json_object_get(row, "behind")) &&
           json_is_boolean(json_object_get(row, "conflicts")) &&
           json_is_array(json_object_get(row, "conflictFiles")) &&
           json_is_integer(json_object_get(stat, "files")) &&
           json_is_integer(json_object_get(stat, "additions")) &&
           json_is_integer(json_object_get(stat, "deletions")) &&
           json_is_string(json_object_get(commit, "author")) &&
           json_is_string(json_object_get(commit, "subject")) &&
           json_is_string(json_object_get(row, "firstSeenAt")) && date &&
           rv_parse_iso8601(date, time_ms) == 0;
}

/* Indexes the rows of the previous document by name. New reference; its
 * values are borrowed from prev. */
static json_t *index_prev(const json_t *prev)
{
    json_t *idx = json_object();
    const json_t *rows = prev ? json_object_get(prev, "branches") : NULL;
    size_t i;
    const json_t *row;
    if (!idx || !json_is_array(rows))
        return idx;
    json_array_foreach(rows, i, row) {
        const char *name = json_string_value(json_object_get(row, "name"));
        if (name && json_object_set(idx, name, (json_t *)row) != 0) {
            json_decref(idx);
            return NULL;
        }
    }
    return idx;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends a copy of path to *paths (growing it); -1 when out of memory. */
static int push_path(char ***paths, size_t *n, size_t *cap, const char *path)
{
    if (*n == *cap) {
        size_t bigger_cap = *cap ? *cap * 2 : 16;
        char **bigger = realloc(*paths, bigger_cap * sizeof(**paths));
        if (!bigger)
            return -1;
        *paths = bigger;
        *cap = bigger_cap;
    }
    if (!((*paths)[*n] = strdup(path)))
        return -1;
    (*n)++;
    return 0;
}

/* ---- commit graph ----
 * ahead/behind and the merge base of every branch against the default tip,
 * from one in-memory graph per sync: each commit is read from the object
 * database once, where libgit2's git_graph_ahead_behind and git_merge_base
 * read every commit again on every call (for 1,000 branches on a 2,000
 * commit main, that was 80% of the compute time).
 *
 * The walk is git's paint-down-to-common: newest commit first, marking
 * what each side reaches, until every commit left in the queue is below a
 * common ancestor and older than everything counted. Like git without a
 * commit-graph file it trusts commit dates; when it meets a parent newer
 * than its child (clock skew), or finds more than one merge base
 * (criss-cross merges), the branch is left to libgit2's own functions. */

#define SIDE_DEF 1u    /* reachable from the default tip */
#define SIDE_BRANCH 2u /* reachable from the branch tip */
#define STALE 4u       /* below a common ancestor already found */
#define RESULT 8u      /* a merge base candidate */

struct gnode {
    git_oid oid;
    int64_t time;      /* committer time, seconds */
    uint32_t parents;  /* offset in graph.parents */
    uint32_t nparents;
    uint32_t walk;     /* flags and processed are valid for this walk only */
    uint8_t flags;
    bool processed;
    bool parsed;
};

struct graph {
    git_repository *repo; /* borrowed */
    struct gnode *nodes;
    size_t n, cap;
    uint32_t *slots;      /* open addressing: node index + 1, 0 = empty */
    size_t nslots;
    uint32_t *parents;    /* parent node indexes, by gnode.parents */
    size_t nparents, cap_parents;
    uint32_t *heap;       /* the walk's queue: node indexes, newest first */
    size_t heap_n, heap_cap;
    uint32_t walk;
};

static void graph_free(struct graph *g)
{
    free(g->nodes);
    free(g->slots);
    free(g->parents);
    free(g->heap);
    memset(g, 0, sizeof(*g));
}

static size_t oid_hash(const git_oid *oid)
{
    size_t h;
    memcpy(&h, oid->id, sizeof(h));
    return h;
}

static int graph_rehash(struct graph *g)
{
    size_t nslots = g->nslots ? g->nslots * 2 : 1024;
    uint32_t *slots = calloc(nslots, sizeof(*slots));
    if (!slots)
        return -1;
    for (size_t i = 0; i < g->n; i++) {
        size_t k = oid_hash(&g->nodes[i].oid) & (nslots - 1);
        while (slots[k])
            k = (k + 1) & (nslots - 1);
        slots[k] = (uint32_t)i + 1;
    }
    free(g->slots);
    g->slots = slots;
    g->nslots = nslots;
    return 0;
}

/* The index of oid's node, created unparsed if new; -1 when out of
 * memory. */
static int64_t graph_node(struct graph *g, const git_oid *oid)
{
    if (g->nslots) {
        size_t k = oid_hash(oid) & (g->nslots - 1);
        for (; g->slots[k]; k = (k + 1) & (g->nslots - 1))
            if (git_oid_equal(&g->nodes[g->slots[k] - 1].oid, oid))
                return g->slots[k] - 1;
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 1024;
        struct gnode *nodes = realloc(g->nodes, cap * sizeof(*nodes));
        if (!nodes)
            return -1;
        g->nodes = nodes;
        g->cap = cap;
    }
    struct gnode *node = &g->nodes[g->n];
    memset(node, 0, sizeof(*node));
    git_oid_cpy(&node->oid, oid);
    g->n++;
    /* Keep the table at most half full. */
    if (g->n * 2 > g->nslots)
        return graph_rehash(g) == 0 ? (int64_t)g->n - 1 : -1;
    size_t k = oid_hash(oid) & (g->nslots - 1);
    while (g->slots[k])
        k = (k + 1) & (g->nslots - 1);
    g->slots[k] = (uint32_t)g->n;
    return (int64_t)g->n - 1;
}

/* Reads the commit of node i once: its time and parents. 0 or -1 (libgit2
 * error set). */
static int graph_parse(struct graph *g, uint32_t i)
{
    if (g->nodes[i].parsed)
        return 0;
    git_commit *c = NULL;
    git_oid oid = g->nodes[i].oid;
    if (git_commit_lookup(&c, g->repo, &oid) != 0)
        return -1;
    unsigned int np = git_commit_parentcount(c);
    if (g->nparents + np > g->cap_parents) {
        size_t cap = (g->cap_parents + np) * 2;
        uint32_t *p = realloc(g->parents, cap * sizeof(*p));
        if (!p) {
            git_commit_free(c);
            git_error_set_oom();
            return -1;
        }
        g->parents = p;
        g->cap_parents = cap;
    }
    size_t base = g->nparents;
    for (unsigned int k = 0; k < np; k++) {
        int64_t pi = graph_node(g, git_commit_parent_id(c, k));
        if (pi < 0) {
            git_commit_free(c);
            git_error_set_oom();
            return -1;
        }
        g->parents[base + k] = (uint32_t)pi;
    }
    g->nparents += np;
    /* graph_node may have moved the nodes. */
    g->nodes[i].parents = (uint32_t)base;
    g->nodes[i].nparents = np;
    g->nodes[i].time = (int64_t)git_commit_time(c);
    g->nodes[i].parsed = true;
    git_commit_free(c);
    return 0;
}

static uint8_t *walk_flags(struct graph *g, uint32_t i)
{
    struct gnode *node = &g->nodes[i];
    if (node->walk != g->walk) {
        node->walk = g->walk;
        node->flags = 0;
        node->processed = false;
    }
    return &node->flags;
}

static bool heap_newer(const struct graph *g, uint32_t a, uint32_t b)
{
    return g->nodes[a].time > g->nodes[b].time;
}

static int heap_push(struct graph *g, uint32_t i)
{
    if (g->heap_n == g->heap_cap) {
        size_t cap = g->heap_cap ? g->heap_cap * 2 : 256;
        uint32_t *h = realloc(g->heap, cap * sizeof(*h));
        if (!h)
            return -1;
        g->heap = h;
        g->heap_cap = cap;
    }
    size_t k = g->heap_n++;
    while (k > 0 && heap_newer(g, i, g->heap[(k - 1) / 2])) {
        g->heap[k] = g->heap[(k - 1) / 2];
        k = (k - 1) / 2;
    }
    g->heap[k] = i;
    return 0;
}

static uint32_t heap_pop(struct graph *g)
{
    uint32_t top = g->heap[0], last = g->heap[--g->heap_n];
    size_t k = 0;
    for (;;) {
        size_t c = 2 * k + 1;
        if (c >= g->heap_n)
            break;
        if (c + 1 < g->heap_n && heap_newer(g, g->heap[c + 1], g->heap[c]))
            c++;
        if (!heap_newer(g, g->heap[c], last))
            break;
        g->heap[k] = g->heap[c];
        k = c;
    }
    if (g->heap_n > 0)
        g->heap[k] = last;
    return top;
}

/* True while the walk must go on: something in the queue is not below a
 * common ancestor, or is not older than every one-sided commit counted
 * (a commit dated like that could still be an ancestor of the queue). */
static bool walk_goes_on(struct graph *g, int64_t oldest_counted)
{
    for (size_t k = 0; k < g->heap_n; k++) {
        uint32_t i = g->heap[k];
        if (!(*walk_flags(g, i) & STALE) ||
            g->nodes[i].time >= oldest_counted)
            return true;
    }
    return false;
}

/* What graph_compare found. */
struct comparison {
    size_t ahead, behind;
    bool has_base;
    git_oid base;
};

/* Compares the branch tip with the default tip. Returns 0 with *out
 * filled, 1 when the graph cannot answer for sure (clock skew, several
 * merge bases: ask libgit2), or -1 on a libgit2 error. */
static int graph_compare(struct graph *g, const git_oid *def,
                         const git_oid *tip, struct comparison *out)
{
    int64_t d = graph_node(g, def), t = graph_node(g, tip);
    if (d < 0 || t < 0) {
        git_error_set_oom();
        return -1;
    }
    if (graph_parse(g, (uint32_t)d) != 0 || graph_parse(g, (uint32_t)t) != 0)
        return -1;
    g->walk++;
    g->heap_n = 0;
    *walk_flags(g, (uint32_t)d) |= SIDE_DEF;
    *walk_flags(g, (uint32_t)t) |= SIDE_BRANCH;
    if (heap_push(g, (uint32_t)d) != 0 || heap_push(g, (uint32_t)t) != 0) {
        git_error_set_oom();
        return -1;
    }
    size_t ahead = 0, behind = 0, nbases = 0;
    uint32_t base = 0;
    int64_t oldest_counted = INT64_MAX;
    bool unsure = false;
    while (g->heap_n > 0 && walk_goes_on(g, oldest_counted)) {
        uint32_t i = heap_pop(g);
        uint8_t f = *walk_flags(g, i);
        if (g->nodes[i].processed)
            continue; /* queued twice */
        g->nodes[i].processed = true;
        uint8_t sides = f & (SIDE_DEF | SIDE_BRANCH);
        if (sides == SIDE_BRANCH || sides == SIDE_DEF) {
            if (sides == SIDE_BRANCH)
                ahead++;
            else
                behind++;
            if (g->nodes[i].time < oldest_counted)
                oldest_counted = g->nodes[i].time;
        } else if (!(f & STALE)) {
            /* Reached from both sides first here: a merge base. */
            *walk_flags(g, i) |= RESULT;
            nbases++;
            base = i;
            f |= STALE;
        }
        if (graph_parse(g, i) != 0)
            return -1;
        for (uint32_t k = 0; k < g->nodes[i].nparents; k++) {
            uint32_t p = g->parents[g->nodes[i].parents + k];
            if (graph_parse(g, p) != 0)
                return -1;
            uint8_t *pf = walk_flags(g, p);
            uint8_t nf = *pf | (f & (SIDE_DEF | SIDE_BRANCH | STALE));
            if (nf == *pf)
                continue;
            if (g->nodes[p].processed || g->nodes[p].time > g->nodes[i].time)
                unsure = true; /* flags arrive after it was counted */
            *pf = nf;
            if (heap_push(g, p) != 0) {
                git_error_set_oom();
                return -1;
            }
        }
    }
    if (unsure || nbases > 1)
        return 1;
    out->ahead = ahead;
    out->behind = behind;
    out->has_base = nbases == 1;
    if (out->has_base)
        git_oid_cpy(&out->base, &g->nodes[base].oid);
    return 0;
}

/* The entry at path in tree (NULL tree = empty), or NULL when there is
 * none. 0 or a libgit2 error. *out is the caller's (git_tree_entry_free). */
static int entry_at(git_tree_entry **out, const git_tree *tree,
                    const char *path)
{
    *out = NULL;
    if (!tree)
        return 0;
    int rc = git_tree_entry_bypath(out, tree, path);
    if (rc == GIT_ENOTFOUND) {
        git_error_clear();
        return 0;
    }
    return rc;
}

static bool same_entry(const git_tree_entry *a, const git_tree_entry *b)
{
    if (!a || !b)
        return a == b;
    return git_tree_entry_filemode(a) == git_tree_entry_filemode(b) &&
           git_oid_equal(git_tree_entry_id(a), git_tree_entry_id(b));
}

/* ---- what a branch changed ----
 * The paths a branch changed since its merge base, found by walking both
 * trees and descending only into subtrees whose ids differ: a branch of a
 * few commits reads a few trees, where libgit2's tree diff reads every
 * tree and lists every file of both sides (on a 1,000-file repo that was
 * half of a sync's compute). The list then decides the merge
 * (merge_by_paths) and narrows the diff stat to these paths. */

/* The walk recurses, so it stops this deep (a hostile remote must not
 * exhaust the stack) and marks the list incomplete: that branch is then
 * merged and diffed by libgit2 as a whole. */
#define TREE_DEPTH_MAX 256

/* One path the branch changed: a leaf (file, link or submodule). A zero
 * mode means that side has nothing there; a file that became a directory
 * is its deletion and the additions of the directory's files. */
struct change {
    char *path;
    git_oid old_id, new_id;
    unsigned int old_mode, new_mode;
};

struct changes {
    struct change *v;
    size_t n, cap;
    bool incomplete; /* trees nested past TREE_DEPTH_MAX were not walked */
    bool has_gitlink; /* a submodule entry changed (see diff_stat) */
};

static void changes_free(struct changes *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].path);
    free(c->v);
    memset(c, 0, sizeof(*c));
}

/* "prefix/name", or name at the root. malloc'd; NULL when out of memory. */
static char *path_join(const char *prefix, const char *name)
{
    size_t lp = strlen(prefix), ln = strlen(name);
    char *p = malloc(lp + ln + 2);
    if (!p)
        return NULL;
    memcpy(p, prefix, lp);
    if (lp)
        p[lp++] = '/';
    memcpy(p + lp, name, ln + 1);
    return p;
}

/* Records a change of the leaf at prefix/name: old and/or new entry (NULL:
 * none on that side). 0, or -1 when out of memory (libgit2 error set). */
static int changes_push(struct changes *c, const char *prefix,
                        const git_tree_entry *old, const git_tree_entry *new)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct change *v = realloc(c->v, cap * sizeof(*v));
        if (!v)
            goto oom;
        c->v = v;
        c->cap = cap;
    }
    struct change *ch = &c->v[c->n];
    memset(ch, 0, sizeof(*ch));
    if (!(ch->path = path_join(prefix, git_tree_entry_name(old ? old : new))))
        goto oom;
    if (old) {
        git_oid_cpy(&ch->old_id, git_tree_entry_id(old));
        ch->old_mode = (unsigned int)git_tree_entry_filemode(old);
    }
    if (new) {
        git_oid_cpy(&ch->new_id, git_tree_entry_id(new));
        ch->new_mode = (unsigned int)git_tree_entry_filemode(new);
    }
    if (ch->old_mode == GIT_FILEMODE_COMMIT ||
        ch->new_mode == GIT_FILEMODE_COMMIT)
        c->has_gitlink = true;
    c->n++;
    return 0;
oom:
    git_error_set_oom();
    return -1;
}

static int tree_changes(git_repository *repo, struct changes *c,
                        const char *prefix, const git_tree *a,
                        const git_tree *b, int depth);

/* Records entry e of the old (is_old) or new side, which the other side
 * lacks: a leaf as it is, a subtree as all of its leaves. */
static int changes_one_side(git_repository *repo, struct changes *c,
                            const char *prefix, const git_tree_entry *e,
                            bool is_old, int depth)
{
    if (git_tree_entry_type(e) != GIT_OBJECT_TREE)
        return changes_push(c, prefix, is_old ? e : NULL, is_old ? NULL : e);
    git_tree *t = NULL;
    char *path = path_join(prefix, git_tree_entry_name(e));
    int rc = path ? git_tree_lookup(&t, repo, git_tree_entry_id(e)) : -1;
    if (!path)
        git_error_set_oom();
    if (rc == 0)
        rc = tree_changes(repo, c, path, is_old ? t : NULL, is_old ? NULL : t,
                          depth + 1);
    git_tree_free(t);
    free(path);
    return rc;
}

/* Appends to c every leaf that differs between trees a and b (NULL: an
 * empty tree) under prefix. 0 or a libgit2 error. */
static int tree_changes(git_repository *repo, struct changes *c,
                        const char *prefix, const git_tree *a,
                        const git_tree *b, int depth)
{
    int rc = 0;
    if (depth > TREE_DEPTH_MAX) {
        c->incomplete = true;
        return 0;
    }
    size_t na = a ? git_tree_entrycount(a) : 0;
    size_t nb = b ? git_tree_entrycount(b) : 0;
    for (size_t i = 0; i < na && rc == 0; i++) {
        const git_tree_entry *ea = git_tree_entry_byindex(a, i);
        const git_tree_entry *eb =
            b ? git_tree_entry_byname(b, git_tree_entry_name(ea)) : NULL;
        if (eb && same_entry(ea, eb))
            continue;
        bool ta = git_tree_entry_type(ea) == GIT_OBJECT_TREE;
        bool tb = eb && git_tree_entry_type(eb) == GIT_OBJECT_TREE;
        if (ta && tb) {
            git_tree *sa = NULL, *sb = NULL;
            char *path = path_join(prefix, git_tree_entry_name(ea));
            if (!path) {
                git_error_set_oom();
                return -1;
            }
            if ((rc = git_tree_lookup(&sa, repo, git_tree_entry_id(ea))) ==
                    0 &&
                (rc = git_tree_lookup(&sb, repo, git_tree_entry_id(eb))) == 0)
                rc = tree_changes(repo, c, path, sa, sb, depth + 1);
            git_tree_free(sa);
            git_tree_free(sb);
            free(path);
        } else if (eb && !ta && !tb) {
            rc = changes_push(c, prefix, ea, eb); /* modified */
        } else {
            /* Only on the old side, or a file and a directory: the old
             * entry goes, the new one (if any) comes. */
            rc = changes_one_side(repo, c, prefix, ea, true, depth);
            if (rc == 0 && eb)
                rc = changes_one_side(repo, c, prefix, eb, false, depth);
        }
    }
    for (size_t i = 0; i < nb && rc == 0; i++) {
        const git_tree_entry *eb = git_tree_entry_byindex(b, i);
        if (!a || !git_tree_entry_byname(a, git_tree_entry_name(eb)))
            rc = changes_one_side(repo, c, prefix, eb, false, depth);
    }
    return rc;
}

/* Whether the default side (base to def) changed what lives at path: the
 * entry itself, or, where neither side has one, a parent directory that
 * became a file on the default side (a file/directory conflict). *was and
 * *now get the entries at path in base and def (NULL: none), the caller's
 * to free. 0 or a libgit2 error. */
static int default_changed(const git_tree *base, const git_tree *def,
                           const char *path, bool *changed,
                           git_tree_entry **was, git_tree_entry **now)
{
    git_tree_entry *pwas = NULL, *pnow = NULL;
    int rc;
    *changed = false;
    *was = *now = NULL;
    if ((rc = entry_at(was, base, path)) != 0 ||
        (rc = entry_at(now, def, path)) != 0)
        return rc;
    *changed = !same_entry(*was, *now);
    if (*changed || *now || *was)
        return 0;
    char prefix[4096];
    for (const char *slash = strchr(path, '/'); slash && !*changed;
         slash = strchr(slash + 1, '/')) {
        size_t len = (size_t)(slash - path);
        if (len >= sizeof(prefix)) {
            *changed = true; /* cannot tell: let the merge decide */
            break;
        }
        memcpy(prefix, path, len);
        prefix[len] = '\0';
        if ((rc = entry_at(&pnow, def, prefix)) != 0 ||
            (rc = entry_at(&pwas, base, prefix)) != 0)
            break;
        *changed = pnow && git_tree_entry_type(pnow) != GIT_OBJECT_TREE &&
                   !same_entry(pwas, pnow);
        git_tree_entry_free(pnow);
        git_tree_entry_free(pwas);
        pwas = pnow = NULL;
    }
    git_tree_entry_free(pnow);
    git_tree_entry_free(pwas);
    return rc;
}

/* Whether the three versions of a file both sides modified merge cleanly,
 * by libgit2's file merge (the one git_merge_trees runs for such a path).
 * 0 or a libgit2 error. */
static int file_merges(git_repository *repo, const git_oid *base,
                       const git_oid *ours, const git_oid *theirs,
                       const char *path, unsigned int mode, bool *clean)
{
    int rc = 0;
    git_blob *blobs[3] = {NULL, NULL, NULL};
    const git_oid *ids[3] = {base, ours, theirs};
    git_merge_file_input in[3];
    git_merge_file_result res;
    memset(&res, 0, sizeof(res));
    for (int i = 0; i < 3; i++) {
        if ((rc = git_blob_lookup(&blobs[i], repo, ids[i])) != 0)
            goto out;
        git_merge_file_input_init(&in[i], GIT_MERGE_FILE_INPUT_VERSION);
        in[i].ptr = git_blob_rawcontent(blobs[i]);
        in[i].size = (size_t)git_blob_rawsize(blobs[i]);
        in[i].path = path;
        in[i].mode = mode;
    }
    if ((rc = git_merge_file(&res, &in[0], &in[1], &in[2], NULL)) == 0)
        *clean = res.automergeable != 0;
out:
    git_merge_file_result_free(&res);
    for (int i = 0; i < 3; i++)
        git_blob_free(blobs[i]);
    return rc;
}

/* Decides the merge of the branch into the default tip from the paths the
 * branch changed since the merge base (ch, from tree_changes), without a
 * three-way merge of the trees (the costliest step
 * of a sync), when every path either was left alone on the default side
 * (the merge takes the branch's version) or is a file modified on both
 * sides with the same mode (libgit2's file merge decides). Anything else
 * (deletions, additions or mode changes meeting a change of the other
 * side, file/directory clashes) leaves *decided false: the tree merge,
 * with its rename detection, must decide. When decided, *has_conflicts and
 * paths (the conflicting files, malloc'd strings appended to *paths) are
 * set. 0 or a libgit2 error. */
static int merge_by_paths(git_repository *repo, const struct changes *ch,
                          const git_tree *base_tree, const git_tree *def_tree,
                          bool *decided, bool *has_conflicts, char ***paths,
                          size_t *npaths, size_t *cap)
{
    int rc = 0;
    git_tree_entry *was = NULL, *now = NULL;
    *decided = false;
    *has_conflicts = false;
    for (size_t i = 0; i < ch->n; i++) {
        const struct change *c = &ch->v[i];
        bool changed = false;
        git_tree_entry_free(was);
        git_tree_entry_free(now);
        if ((rc = default_changed(base_tree, def_tree, c->path, &changed,
                                  &was, &now)) != 0)
            goto out;
        if (!changed)
            continue;
        unsigned int mode = c->new_mode;
        bool both_modified =
            c->old_mode == mode && was && now &&
            git_tree_entry_filemode(was) == (git_filemode_t)mode &&
            git_tree_entry_filemode(now) == (git_filemode_t)mode &&
            (mode == GIT_FILEMODE_BLOB ||
             mode == GIT_FILEMODE_BLOB_EXECUTABLE) &&
            git_oid_equal(git_tree_entry_id(was), &c->old_id);
        if (!both_modified)
            goto out; /* the tree merge decides */
        if (git_oid_equal(git_tree_entry_id(now), &c->new_id))
            continue; /* the same change on both sides */
        bool clean = false;
        if ((rc = file_merges(repo, &c->old_id, git_tree_entry_id(now),
                              &c->new_id, c->path, mode, &clean)) != 0)
            goto out;
        if (!clean) {
            *has_conflicts = true;
            if (push_path(paths, npaths, cap, c->path) != 0) {
                git_error_set_oom();
                rc = -1;
                goto out;
            }
        }
    }
    *decided = true;
out:
    git_tree_entry_free(was);
    git_tree_entry_free(now);
    return rc;
}

/* Whether merging `theirs` into `ours` conflicts, and where: *has_conflicts
 * and files (both sides' paths of each conflict, sorted, distinct, at most
 * cap). ch holds theirs's changes since the merge base (tree_changes).
 * base_known: the merge base is the only one, and trees are the base's
 * (NULL: no base), ours's and theirs's, so the changed paths may decide
 * (merge_by_paths) or the trees are merged directly; otherwise libgit2
 * finds the bases (and builds a virtual one from several).
 * *merged counts the tree merges run (renames found as git does). Returns
 * 0 or a libgit2 error. */
static int merge_conflicts(git_repository *repo, const git_commit *ours,
                           const git_commit *theirs, bool base_known,
                           const git_tree *const trees[3],
                           const struct changes *ch, int cap,
                           bool *has_conflicts, json_t *files, int *merged)
{
    int rc = 0;
    git_index *index = NULL;
    git_index_conflict_iterator *it = NULL;
    char **paths = NULL;
    size_t n = 0, paths_cap = 0;
    bool decided = false;
    *has_conflicts = false;
    if (base_known && !ch->incomplete &&
        (rc = merge_by_paths(repo, ch, trees[0], trees[1], &decided,
                             has_conflicts, &paths, &n, &paths_cap)) != 0)
        goto out;
    if (decided)
        goto list;
    git_merge_options mo;
    git_merge_options_init(&mo, GIT_MERGE_OPTIONS_VERSION);
    mo.flags |= GIT_MERGE_SKIP_REUC;
    (*merged)++;
    if (base_known) {
        rc = git_merge_trees(&index, repo, trees[0], trees[1], trees[2], &mo);
    } else {
        rc = git_merge_commits(&index, repo, ours, theirs, &mo);
    }
    if (rc != 0)
        goto out;
    *has_conflicts = git_index_has_conflicts(index);
    if (!*has_conflicts)
        goto out;
    if ((rc = git_index_conflict_iterator_new(&it, index)) != 0)
        goto out;
    const git_index_entry *anc, *our, *their;
    while ((rc = git_index_conflict_next(&anc, &our, &their, it)) == 0) {
        if ((our && push_path(&paths, &n, &paths_cap, our->path) != 0) ||
            (their && push_path(&paths, &n, &paths_cap, their->path) != 0) ||
            (!our && !their && anc &&
             push_path(&paths, &n, &paths_cap, anc->path) != 0)) {
            git_error_set_oom();
            rc = -1;
            goto out;
        }
    }
    if (rc != GIT_ITEROVER)
        goto out;
    rc = 0;
list:
    if (n > 0)
        qsort(paths, n, sizeof(*paths), cmp_str);
    for (size_t i = 0; i < n && (int)json_array_size(files) < cap; i++) {
        if (i > 0 && strcmp(paths[i], paths[i - 1]) == 0)
            continue;
        if (json_array_append_new(files, text_json(paths[i], false)) != 0) {
            git_error_set_oom();
            rc = -1;
            goto out;
        }
    }
out:
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    git_index_conflict_iterator_free(it);
    git_index_free(index);
    return rc;
}

/* Files changed, insertions and deletions from base to tip (trees; NULL
 * base = the empty tree), as `git diff --shortstat base tip` counts them:
 * renames detected (git's default), binary files changed with 0/0. ch
 * lists the changed paths (tree_changes): the diff looks at those alone,
 * which finds the same renames (only added and deleted files pair up) and
 * reads no other tree. Not when the list is incomplete, nor when a
 * submodule entry changed: libgit2 matches a submodule's path as a
 * gitignore-style pattern even with GIT_DIFF_DISABLE_PATHSPEC_MATCH (a
 * name starting with '#' or ending in a space would match nothing), so
 * those diffs look at every path. *out is a new
 * {"files","additions","deletions"} object. Returns 0 or a libgit2
 * error. */
static int diff_stat(git_repository *repo, const git_tree *base,
                     const git_tree *tip, const struct changes *ch,
                     json_t **out)
{
    int rc = 0;
    git_diff *diff = NULL;
    git_diff_stats *stats = NULL;
    git_diff_options dopts;
    git_diff_find_options fo;
    size_t files = 0, additions = 0, deletions = 0;
    char **paths = NULL;
    bool narrow = !ch->incomplete && !ch->has_gitlink;
    if (narrow && ch->n == 0)
        goto done; /* an empty pathspec would mean every path */
    git_diff_options_init(&dopts, GIT_DIFF_OPTIONS_VERSION);
    if (narrow) {
        if (!(paths = malloc(ch->n * sizeof(*paths)))) {
            git_error_set_oom();
            return -1;
        }
        for (size_t i = 0; i < ch->n; i++)
            paths[i] = ch->v[i].path;
        dopts.flags |= GIT_DIFF_DISABLE_PATHSPEC_MATCH;
        dopts.pathspec.strings = paths;
        dopts.pathspec.count = ch->n;
    }
    if ((rc = git_diff_tree_to_tree(&diff, repo, (git_tree *)base,
                                    (git_tree *)tip, &dopts)) != 0)
        goto out;
    git_diff_find_options_init(&fo, GIT_DIFF_FIND_OPTIONS_VERSION);
    fo.flags = GIT_DIFF_FIND_RENAMES;
    fo.rename_limit = RENAME_LIMIT;
    if ((rc = git_diff_find_similar(diff, &fo)) != 0)
        goto out;
    if ((rc = git_diff_get_stats(&stats, diff)) != 0)
        goto out;
    files = git_diff_stats_files_changed(stats);
    additions = git_diff_stats_insertions(stats);
    deletions = git_diff_stats_deletions(stats);
done:
    *out = json_pack("{s:I,s:I,s:I}", "files", (json_int_t)files,
                     "additions", (json_int_t)additions, "deletions",
                     (json_int_t)deletions);
    if (!*out) {
        git_error_set_oom();
        rc = -1;
    }
out:
    free(paths);
    git_diff_stats_free(stats);
    git_diff_free(diff);
    return rc;
}

/* The row's "commit": author, author date (as `git log` shows it), and
 * subject (git's %s: the first paragraph of the message). New reference. */
static json_t *commit_json(const git_commit *c)
{
    char date[32];
    const git_signature *author = git_commit_author(c);
    bool latin1 = is_latin1(git_commit_message_encoding(c));
    rv_iso8601(author ? (int64_t)author->when.time * 1000 : 0, date,
               sizeof(date));
    return json_pack("{s:o,s:s,s:o}", "author",
                     text_json(author ? author->name : "", latin1), "date",
                     date, "subject",
                     text_json(git_commit_summary((git_commit *)c), latin1));
}

/* ahead/behind and the merge base of b against def: from the graph, or
 * from libgit2 when the graph is unsure. *base_known says the merge base
 * is unique (*mb, NULL when there is none). 0 or a libgit2 error. */
static int compare_tips(git_repository *repo, struct graph *g,
                        const git_oid *tip, const git_oid *def, size_t *ahead,
                        size_t *behind, bool *base_known, git_commit **mb)
{
    struct comparison cmp;
    int rc = graph_compare(g, def, tip, &cmp);
    *mb = NULL;
    if (rc < 0)
        return rc;
    if (rc == 0) {
        *ahead = cmp.ahead;
        *behind = cmp.behind;
        *base_known = true;
        return cmp.has_base ? git_commit_lookup(mb, repo, &cmp.base) : 0;
    }
    git_oid base;
    *base_known = false;
    if ((rc = git_graph_ahead_behind(ahead, behind, repo, tip, def)) != 0)
        return rc;
    rc = git_merge_base(&base, repo, tip, def);
    if (rc == GIT_ENOTFOUND) {
        git_error_clear();
        return 0;
    }
    return rc == 0 ? git_commit_lookup(mb, repo, &base) : rc;
}

/* The default branch's tip and its tree, looked up by the first row that
 * needs them and shared by the rest of the document. */
struct def_objects {
    git_commit *tip;
    git_tree *tree;
};

static void def_objects_free(struct def_objects *d)
{
    git_tree_free(d->tree);
    git_commit_free(d->tip);
}

/* Computes one row from the object database against the default tip def
 * (its objects in dobj, filled when first needed); *merged counts the
 * tree merges it ran. New reference, or NULL with err filled. */
static json_t *compute_row(git_repository *repo, struct graph *g,
                           const struct branch *b, const struct branch *def,
                           struct def_objects *dobj,
                           const struct rv_branchsync_opts *opts,
                           const char *first_seen, int *merged,
                           struct rv_sync_error *err)
{
    git_commit *tip = NULL, *mb = NULL;
    git_tree *base_tree = NULL, *tip_tree = NULL;
    struct changes changes = {0};
    json_t *row = NULL, *files = json_array(), *stat = NULL;
    size_t ahead = 0, behind = 0;
    bool has_conflicts = false, base_known = false;
    char sha[GIT_OID_HEXSZ + 1], base_sha[GIT_OID_HEXSZ + 1];
    git_oid_tostr(sha, sizeof(sha), &b->oid);
    git_oid_tostr(base_sha, sizeof(base_sha), &def->oid);
    if (!files) {
        rv_sync_error_set(err, "git_error", "Out of memory.");
        goto out;
    }
    if (git_commit_lookup(&tip, repo, &b->oid) != 0 ||
        (!dobj->tip && git_commit_lookup(&dobj->tip, repo, &def->oid) != 0)) {
        set_git_error(err, "Cannot read a branch tip");
        goto out;
    }
    if (!git_oid_equal(&b->oid, &def->oid) &&
        compare_tips(repo, g, &b->oid, &def->oid, &ahead, &behind,
                     &base_known, &mb) != 0) {
        set_git_error(err, "Cannot compare a branch with the default branch");
        goto out;
    }
    if (ahead > 0) {
        if ((mb && git_commit_tree(&base_tree, mb) != 0) ||
            git_commit_tree(&tip_tree, tip) != 0 ||
            tree_changes(repo, &changes, "", base_tree, tip_tree, 0) != 0) {
            set_git_error(err, "Cannot diff a branch");
            goto out;
        }
        /* Only a branch that is both ahead and behind can conflict: one
         * that is just ahead fast-forwards. The trees are read once for
         * the walk, the merge and the diff stat. */
        if (behind > 0) {
            if (!dobj->tree && git_commit_tree(&dobj->tree, dobj->tip) != 0) {
                set_git_error(err, "Cannot merge a branch in memory");
                goto out;
            }
            const git_tree *trees[3] = {base_tree, dobj->tree, tip_tree};
            if (merge_conflicts(repo, dobj->tip, tip, base_known, trees,
                                &changes, opts->max_conflict_files,
                                &has_conflicts, files, merged) != 0) {
                set_git_error(err, "Cannot merge a branch in memory");
                goto out;
            }
        }
        if (diff_stat(repo, base_tree, tip_tree, &changes, &stat) != 0) {
            set_git_error(err, "Cannot diff a branch");
            goto out;
        }
    } else {
        /* Same commit, or behind only: the merge base is the tip itself. */
        stat = json_pack("{s:i,s:i,s:i}", "files", 0, "additions", 0,
                         "deletions", 0);
    }
    row = json_pack("{s:s,s:b,s:s,s:I,s:I,s:b,s:O,s:O,s:o,s:s,s:s}", "name",
                    b->name, "isDefault", b->is_default, "sha", sha, "ahead",
                    (json_int_t)ahead, "behind", (json_int_t)behind,
                    "conflicts", has_conflicts, "conflictFiles", files,
                    "diffStat", stat, "commit", commit_json(tip),
                    "firstSeenAt", first_seen, "baseSha", base_sha);
    if (!row)
        rv_sync_error_set(err, "git_error", "Out of memory building a row.");
out:
    json_decref(files);
    json_decref(stat);
    changes_free(&changes);
    git_tree_free(base_tree);
    git_tree_free(tip_tree);
    git_commit_free(tip);
    git_commit_free(mb);
    return row;
}

/* Fills in which branches can reuse their previous row, and every
 * branch's date for ordering (from the previous row when reused, else from
 * the tip commit). */
static int prepare_branches(git_repository *repo, struct branch *list,
                            size_t n, const struct branch *def,
                            const json_t *prev_idx, struct rv_sync_error *err)
{
    char def_sha[GIT_OID_HEXSZ + 1];
    git_oid_tostr(def_sha, sizeof(def_sha), &def->oid);
    for (size_t i = 0; i < n; i++) {
        struct branch *b = &list[i];
        char sha[GIT_OID_HEXSZ + 1];
        git_oid_tostr(sha, sizeof(sha), &b->oid);
        const json_t *old = json_object_get(prev_idx, b->name);
        const char *old_sha = json_string_value(json_object_get(old, "sha"));
        const char *old_base =
            json_string_value(json_object_get(old, "baseSha"));
        if (old && old_sha && old_base && !strcmp(old_sha, sha) &&
            !strcmp(old_base, def_sha) &&
            json_is_true(json_object_get(old, "isDefault")) == b->is_default &&
            row_reusable(old, &b->time_ms)) {
            b->reuse = old;
            continue;
        }
        git_commit *c = NULL;
        if (git_commit_lookup(&c, repo, &b->oid) != 0) {
            set_git_error(err, "Cannot read a branch tip");
            return RV_ERR_GIT;
        }
        const git_signature *author = git_commit_author(c);
        b->time_ms = author ? (int64_t)author->when.time * 1000 : 0;
        git_commit_free(c);
    }
    return RV_OK;
}

/* Builds the document from the sorted branches (default first). Reused
 * rows are shared with prev; the others are computed. New reference or
 * NULL. */
static json_t *build_document(git_repository *repo,
                              const struct rv_branchsync_opts *opts,
                              const struct branch *list, size_t n,
                              const json_t *prev_idx,
                              struct rv_branchsync_stats *stats,
                              struct rv_sync_error *err)
{
    const struct branch *def = &list[0];
    char def_sha[GIT_OID_HEXSZ + 1], now_iso[32];
    bool truncated = opts->max_branches > 0 && n > (size_t)opts->max_branches;
    size_t keep = truncated ? (size_t)opts->max_branches : n;
    json_t *rows = json_array(), *doc = NULL;
    struct graph g = {.repo = repo};
    struct def_objects dobj = {0};
    git_oid_tostr(def_sha, sizeof(def_sha), &def->oid);
    rv_iso8601(opts->now_ms, now_iso, sizeof(now_iso));
    if (!rows)
        goto oom;
    for (size_t i = 0; i < keep; i++) {
        const struct branch *b = &list[i];
        json_t *row;
        if (b->reuse) {
            /* Shared with the previous document, not copied: documents
             * are never changed once built (copying was a third of a
             * no-change re-sync). */
            row = json_incref((json_t *)b->reuse);
            stats->reused++;
        } else {
            const json_t *old = json_object_get(prev_idx, b->name);
            const char *seen =
                json_string_value(json_object_get(old, "firstSeenAt"));
            int64_t ignored;
            if (!seen || rv_parse_iso8601(seen, &ignored) != 0)
                seen = now_iso;
            row = compute_row(repo, &g, b, def, &dobj, opts, seen,
                              &stats->merged, err);
            if (!row) {
                json_decref(rows);
                graph_free(&g);
                def_objects_free(&dobj);
                return NULL;
            }
            stats->recomputed++;
        }
        if (json_array_append_new(rows, row) != 0)
            goto oom;
    }
    if (truncated)
        LOG(RV_LOG_WARN, opts->repo_id, opts->job_id,
            "%zu branches; keeping the first %d (REPOVIEW_MAX_BRANCHES)", n,
            opts->max_branches);
    doc = json_pack("{s:s,s:s,s:b,s:o}", "defaultBranch", def->name,
                    "defaultSha", def_sha, "truncated", truncated, "branches",
                    rows);
    if (!doc)
        goto oom;
    graph_free(&g);
    def_objects_free(&dobj);
    return doc;
oom:
    graph_free(&g);
    def_objects_free(&dobj);
    json_decref(rows);
    rv_sync_error_set(err, "git_error", "Out of memory building the rows.");
    return NULL;
}

int rv_branchsync_run(const struct rv_branchsync_opts *opts,
                      const json_t *prev, json_t **out,
                      struct rv_branchsync_stats *stats,
                      struct rv_sync_error *err)
{
    int rc = RV_OK;
    git_repository *repo = NULL;
    struct branch *list = NULL;
    size_t n = 0;
    json_t *prev_idx = NULL, *doc = NULL;
    char remote_head[256];
    *out = NULL;
    memset(stats, 0, sizeof(*stats));
    memset(err, 0, sizeof(*err));

    struct rv_mirror_opts mo = {
        .data_dir = opts->data_dir,
        .repo_id = opts->repo_id,
        .url = opts->url,
        .github_token = opts->github_token,
        .github_host = opts->github_host,
        .timeout_s = opts->fetch_timeout_s,
        .policy = opts->policy,
        .job_id = opts->job_id,
    };
    int64_t started = rv_mono_ms();
    rc = rv_mirror_sync(&mo, &repo, remote_head, sizeof(remote_head), err);
    stats->fetch_ms = rv_mono_ms() - started;
    if (rc != RV_OK)
        return rc;
    started = rv_mono_ms();
    if ((rc = list_branches(repo, opts, &list, &n, err)) != RV_OK)
        goto out;
    if (n == 0) {
        /* An empty repository: nothing to compare, and that is fine; the
         * overview shows no branches until something is pushed. */
        doc = json_pack("{s:n,s:n,s:b,s:[]}", "defaultBranch", "defaultSha",
                        "truncated", 0, "branches");
        if (!doc) {
            rv_sync_error_set(err, "git_error", "Out of memory.");
            rc = RV_ERR_NOMEM;
        }
        goto out;
    }
    struct branch *def = pick_default(opts, list, n, remote_head);
    if (!def) {
        if (opts->default_branch && *opts->default_branch)
            rv_sync_error_set(err, "no_default_branch",
                              "The default branch \"%s\" does not exist on "
                              "the remote.",
                              opts->default_branch);
        else
            rv_sync_error_set(err, "no_default_branch",
                              "The remote has no HEAD branch, no main and no "
                              "master; register a default branch.");
        rc = RV_ERR_NOT_FOUND;
        goto out;
    }
    def->is_default = true;
    if (!(prev_idx = index_prev(prev))) {
        rv_sync_error_set(err, "git_error", "Out of memory.");
        rc = RV_ERR_NOMEM;
        goto out;
    }
    if ((rc = prepare_branches(repo, list, n, def, prev_idx, err)) != RV_OK)
        goto out;
    qsort(list, n, sizeof(*list), cmp_branch);
    if (!(doc = build_document(repo, opts, list, n, prev_idx, stats, err)))
        rc = RV_ERR_GIT;
out:
    if (rc == RV_OK) {
        stats->branches = (int)json_array_size(json_object_get(doc, "branches"));
        stats->compute_ms = rv_mono_ms() - started;
        *out = doc;
    } else {
        json_decref(doc);
    }
    json_decref(prev_idx);
    free_branches(list, n);
    git_repository_free(repo);
    return rc;
}

/* The commit graph of a branch sync: ahead/behind and the merge base of
 * every branch against the default tip (compare_tips), the walk itself
 * and the graph's node table and queue. Declarations in
 * branchsync_private.h. */
#include <git2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/dynbuf.h"
#include "common/errors.h"
#include "worker/branchsync_private.h"

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

/* Node indexes are uint32_t, and the hash slots hold index + 1. */
#define NODES_MAX (UINT32_MAX - 1)

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

void graph_free(struct graph *g)
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
    if (g->n == g->cap && rv_grow(&g->nodes, &g->cap, g->n + 1,
                                  sizeof(*g->nodes), NODES_MAX) != RV_OK)
        return -1;
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
    if (g->nparents + np > g->cap_parents &&
        rv_grow(&g->parents, &g->cap_parents, g->nparents + np,
                sizeof(*g->parents), UINT32_MAX) != RV_OK) {
        git_commit_free(c);
        git_error_set_oom();
        return -1;
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
    if (g->heap_n == g->heap_cap &&
        rv_grow(&g->heap, &g->heap_cap, g->heap_n + 1, sizeof(*g->heap),
                SIZE_MAX) != RV_OK)
        return -1;
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

int compare_tips(git_repository *repo, struct graph *g,
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
    /* libgit2 walks by generation where the dates mislead. Its bases, all
     * of them: a unique one is as good as the graph's (the changed paths
     * may decide the merge), where several need its virtual base. */
    git_oidarray bases = {NULL, 0};
    *base_known = false;
    if ((rc = git_graph_ahead_behind(ahead, behind, repo, tip, def)) != 0)
        return rc;
    rc = git_merge_bases(&bases, repo, tip, def);
    if (rc == GIT_ENOTFOUND) {
        git_error_clear();
        return 0;
    }
    if (rc == 0 && bases.count > 0) {
        *base_known = bases.count == 1;
        rc = git_commit_lookup(mb, repo, &bases.ids[0]);
    }
    git_oidarray_dispose(&bases);
    return rc;
}

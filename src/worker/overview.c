/* See overview.h. */
#include "worker/overview.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* The PR fields a branch row carries in its "pr" member. */
static const char *const branch_pr_fields[] = {
    "number", "title",    "state",          "draft",     "url",
    "author", "ciStatus", "reviewDecision", "updatedAt",
};

static const json_t *doc_array(const json_t *doc, const char *name)
{
    const json_t *arr = doc ? json_object_get(doc, name) : NULL;
    return json_is_array(arr) ? arr : NULL;
}

/* The open PR whose head is branch `name` of this repo: the first match in
 * GitHub's order (most recently updated first). Borrowed, or NULL. */
static const json_t *pr_for_branch(const json_t *prs, const char *name)
{
    size_t i;
    const json_t *pr;
    json_array_foreach(prs, i, pr)
    {
        if (json_is_true(json_object_get(pr, "isCrossRepository")))
            continue;
        const char *head = json_string_value(json_object_get(pr, "headRef"));
        if (head && strcmp(head, name) == 0)
            return pr;
    }
    return NULL;
}

static json_t *branch_pr_json(const json_t *pr)
{
    json_t *out = json_object();
    if (!out)
        return NULL;
    for (size_t i = 0; i < sizeof(branch_pr_fields) / sizeof(*branch_pr_fields);
         i++) {
        json_t *v = json_object_get(pr, branch_pr_fields[i]);
        if (json_object_set(out, branch_pr_fields[i], v ? v : json_null()) !=
            0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* A copy of obj without the member `internal`. New reference or NULL. */
static json_t *public_copy(const json_t *obj, const char *internal)
{
    json_t *copy = json_copy((json_t *)obj);
    if (copy)
        json_object_del(copy, internal);
    return copy;
}

/* The branch sync's repo-level warnings (the document's "warnings", an
 * array of {"code","message"}), or [] for a document without. New
 * reference (NULL when out of memory). */
static json_t *doc_warnings(const json_t *branches_doc)
{
    const json_t *w =
        branches_doc ? json_object_get(branches_doc, "warnings") : NULL;
    return json_is_array(w) ? json_deep_copy(w) : json_array();
}

char *rv_overview_render(const json_t *branches_doc, const json_t *prs_doc)
{
    char *text = NULL;
    json_t *root = json_object();
    json_t *counts = json_object();
    json_t *branches = json_array();
    json_t *prs = json_array();
    if (!root || !counts || !branches || !prs)
        goto out;

    const json_t *rows = doc_array(branches_doc, "branches");
    const json_t *pr_rows = doc_array(prs_doc, "pullRequests");
    json_int_t conflicting = 0;
    size_t i;
    const json_t *row;
    if (rows) {
        json_array_foreach(rows, i, row)
        {
            json_t *b = public_copy(row, "baseSha");
            if (!b || json_array_append_new(branches, b) != 0)
                goto out;
            if (json_is_true(json_object_get(row, "conflicts")))
                conflicting++;
            const char *name = json_string_value(json_object_get(row, "name"));
            const json_t *pr =
                name && pr_rows ? pr_for_branch(pr_rows, name) : NULL;
            json_t *prj = pr ? branch_pr_json(pr) : json_null();
            if (!prj || json_object_set_new(b, "pr", prj) != 0)
                goto out;
        }
    }
    if (pr_rows) {
        json_array_foreach(pr_rows, i, row)
        {
            json_t *p = public_copy(row, "headSha");
            if (!p || json_array_append_new(prs, p) != 0)
                goto out;
        }
    }
    const json_t *truncated =
        branches_doc ? json_object_get(branches_doc, "truncated") : NULL;
    if (json_object_set_new(
            counts, "branches",
            json_integer((json_int_t)json_array_size(branches))) ||
        json_object_set_new(counts, "conflicting", json_integer(conflicting)) ||
        json_object_set_new(counts, "openPullRequests",
                            json_integer((json_int_t)json_array_size(prs))) ||
        json_object_set(root, "counts", counts) ||
        json_object_set_new(root, "truncated",
                            json_boolean(json_is_true(truncated))) ||
        json_object_set_new(root, "warnings", doc_warnings(branches_doc)) ||
        json_object_set(root, "branches", branches) ||
        json_object_set(root, "pullRequests", prs))
        goto out;

    char *full = json_dumps(root, JSON_COMPACT);
    if (!full)
        goto out;
    /* Drop the outer braces: the API wraps the members with its own. */
    size_t len = strlen(full);
    memmove(full, full + 1, len - 2);
    full[len - 2] = '\0';
    text = full;
out:
    json_decref(root);
    json_decref(counts);
    json_decref(branches);
    json_decref(prs);
    return text;
}

/* Appends s to arr unless the cap is reached (then marks truncated). */
static int add_capped(json_t *group, const char *list, json_t *value)
{
    json_t *arr = json_object_get(group, list);
    if (json_array_size(arr) >= RV_CHANGED_CAP) {
        json_decref(value);
        return json_object_set_new(group, "truncated", json_true());
    }
    return json_array_append_new(arr, value);
}

/* Key of a row: branch name or PR number, as a string for lookup. */
static int row_key(rv_kind kind, const json_t *row, char *buf, size_t size)
{
    if (kind == RV_KIND_BRANCHES) {
        const char *name = json_string_value(json_object_get(row, "name"));
        if (!name)
            return -1;
        return rv_strlcpy(buf, name, size);
    }
    json_t *num = json_object_get(row, "number");
    if (!json_is_integer(num))
        return -1;
    snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(num));
    return 0;
}

/* Indexes the rows of doc[list] by key into a new object (borrowing rows). */
static json_t *index_rows(rv_kind kind, const json_t *doc, const char *list)
{
    json_t *idx = json_object();
    const json_t *rows = doc_array(doc, list);
    if (!idx || !rows)
        return idx;
    size_t i;
    const json_t *row;
    char key[512];
    json_array_foreach(rows, i, row)
    {
        if (row_key(kind, row, key, sizeof(key)) == 0 &&
            json_object_set(idx, key, (json_t *)row) != 0) {
            json_decref(idx);
            return NULL;
        }
    }
    return idx;
}

/* Rows are equal for clients when their public fields are. */
static int rows_equal(const json_t *a, const json_t *b, const char *internal)
{
    json_t *pa = public_copy(a, internal);
    json_t *pb = public_copy(b, internal);
    int eq = pa && pb && json_equal(pa, pb);
    json_decref(pa);
    json_decref(pb);
    return eq;
}

static json_t *key_json(rv_kind kind, const char *key)
{
    if (kind == RV_KIND_BRANCHES)
        return json_string(key);
    return json_integer(strtoll(key, NULL, 10));
}

json_t *rv_overview_changed(rv_kind kind, const json_t *old_doc,
                            const json_t *new_doc)
{
    const char *list = kind == RV_KIND_BRANCHES ? "branches" : "pullRequests";
    const char *internal = kind == RV_KIND_BRANCHES ? "baseSha" : "headSha";
    json_t *result = NULL;
    json_t *old_idx = index_rows(kind, old_doc, list);
    json_t *new_idx = index_rows(kind, new_doc, list);
    json_t *group =
        json_pack("{s:[],s:[],s:[]}", "added", "removed", "updated");
    if (!old_idx || !new_idx || !group)
        goto out;

    const char *key;
    json_t *row;
    json_object_foreach(new_idx, key, row)
    {
        json_t *before = json_object_get(old_idx, key);
        int rc = 0;
        if (!before)
            rc = add_capped(group, "added", key_json(kind, key));
        else if (!rows_equal(before, row, internal))
            rc = add_capped(group, "updated", key_json(kind, key));
        if (rc != 0)
            goto out;
    }
    json_object_foreach(old_idx, key, row)
    {
        if (!json_object_get(new_idx, key) &&
            add_capped(group, "removed", key_json(kind, key)) != 0)
            goto out;
    }
    result = json_object();
    if (result && json_object_set(result, list, group) != 0) {
        json_decref(result);
        result = NULL;
    }
out:
    json_decref(old_idx);
    json_decref(new_idx);
    json_decref(group);
    return result;
}

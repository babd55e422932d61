/* See api.h, "Lists gathered from a set". */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "common/errors.h"
#include "common/scripts.h"
#include "common/util.h"

/* The list being gathered: the set's members, then one read per id. */
struct gather {
    struct api_call *call;
    api_item_read read;
    const char *member, *what; /* static strings */
    size_t n;                  /* slots */
    size_t pending; /* reads in flight, plus one while they are sent */
    int rc;         /* first failure */
    json_t **items; /* [n], NULL for an item removed meanwhile */
    bool paged;     /* a listRepos page: keep its order, add nextCursor */
    char *next;     /* the page's next cursor, or NULL at the end */
};

/* One read in flight, knowing its slot. */
struct gather_get {
    struct gather *g;
    size_t index;
};

static void gather_free(void *p)
{
    struct gather *g = p;
    for (size_t i = 0; i < g->n; i++)
        json_decref(g->items[i]);
    free(g->items);
    free(g->next);
    free(g);
}

static int cmp_items(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    if (!x || !y)
        return !x - !y;
    const char *xi = json_string_value(json_object_get(x, "id"));
    const char *yi = json_string_value(json_object_get(y, "id"));
    return strcmp(xi ? xi : "", yi ? yi : "");
}

static void finish(struct gather *g)
{
    struct api_call *call = g->call;
    if (g->rc == RV_ERR_REDIS) {
        api_reply_unavailable(call);
        return;
    }
    if (g->rc != RV_OK) {
        api_reply_rv_error(call, g->rc, "%s", g->what);
        return;
    }
    if (g->items && !g->paged)
        qsort(g->items, g->n, sizeof(*g->items), cmp_items);
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < g->n; i++)
        if (g->items[i]) {
            if (json_array_append_new(arr, g->items[i]) != 0) {
                json_decref(arr);
                arr = NULL;
            }
            g->items[i] = NULL;
        }
    json_t *body = !arr       ? NULL
                   : g->paged ? json_pack("{s:o,s:s?}", g->member, arr,
                                          "nextCursor", g->next)
                              : json_pack("{s:o}", g->member, arr);
    if (!body) {
        api_reply_rv_error(call, RV_ERR_NOMEM, "out of memory");
        return;
    }
    api_reply_json_coded(call, 200, body);
}

static void on_item(void *priv, int rc, json_t *item)
{
    struct gather_get *gg = priv;
    struct gather *g = gg->g;
    if (rc == RV_OK)
        g->items[gg->index] = item;
    else if (rc != RV_ERR_NOT_FOUND && g->rc == RV_OK)
        g->rc = rc;
    free(gg);
    if (--g->pending == 0)
        finish(g);
}

static void on_members(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    struct gather *g = priv;
    if (reply && g->paged) {
        /* {RV_OK, next cursor, {ids}} */
        int rc = rv_script_reply_code(reply);
        const redisReply *next =
            rc == RV_OK && reply->elements == 3 ? reply->element[1] : NULL;
        if (rc == RV_OK && (!next || next->type != REDIS_REPLY_STRING))
            rc = RV_ERR_PROTOCOL;
        if (rc == RV_OK && next->len > 0 &&
            (!rv_repo_id_valid(next->str) || !(g->next = strdup(next->str))))
            rc = rv_repo_id_valid(next->str) ? RV_ERR_NOMEM : RV_ERR_PROTOCOL;
        if (rc != RV_OK) {
            g->rc = rc;
            finish(g);
            return;
        }
        reply = reply->element[2];
    }
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        g->rc = reply ? RV_ERR_PROTOCOL : RV_ERR_REDIS;
        finish(g);
        return;
    }
    if (!(g->items = calloc(reply->elements + 1, sizeof(*g->items)))) {
        g->rc = RV_ERR_NOMEM;
        finish(g);
        return;
    }
    g->n = reply->elements;
    g->pending = 1;
    for (size_t i = 0; i < reply->elements && g->rc == RV_OK; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING || !rv_repo_id_valid(e->str) ||
            !api_principal_sees(&g->call->who, e->str))
            continue;
        struct gather_get *gg = malloc(sizeof(*gg));
        if (!gg) {
            g->rc = RV_ERR_NOMEM;
            break;
        }
        gg->g = g;
        gg->index = i;
        g->pending++;
        g->read(g->call, ra, e->str, on_item, gg);
    }
    if (--g->pending == 0)
        finish(g);
}

void api_gather_set(struct api_call *call, const char *set_key,
                    api_item_read read, const char *member, const char *what)
{
    struct gather *g = calloc(1, sizeof(*g));
    if (!g) {
        api_reply_rv_error(call, RV_ERR_NOMEM, "out of memory");
        return;
    }
    *g = (struct gather){
        .call = call, .read = read, .member = member, .what = what};
    call->priv = g;
    call->priv_free = gather_free;
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_cmd_add(&cmd, "SMEMBERS");
    rv_cmd_add(&cmd, set_key);
    api_send(call, &cmd, on_members, g);
}

void api_gather_page(struct api_call *call, struct rv_cmd *cmd,
                     api_item_read read, const char *member, const char *what)
{
    struct gather *g = calloc(1, sizeof(*g));
    if (!g) {
        rv_cmd_free(cmd);
        api_reply_rv_error(call, RV_ERR_NOMEM, "out of memory");
        return;
    }
    *g = (struct gather){.call = call,
                         .read = read,
                         .member = member,
                         .what = what,
                         .paged = true};
    call->priv = g;
    call->priv_free = gather_free;
    api_send(call, cmd, on_members, g);
}

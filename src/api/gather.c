/* See api.h, "Lists gathered from a set". */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "common/errors.h"
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
    if (g->items)
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
    json_t *body = arr ? json_pack("{s:o}", g->member, arr) : NULL;
    if (!body) {
        api_reply_rv_error(call, RV_ERR_NOMEM, "out of memory");
        return;
    }
    api_reply_json(call, 200, body);
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

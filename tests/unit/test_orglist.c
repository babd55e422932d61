/* orglist.c and orgsync.c's pure parts: the ids an org gives its repos,
 * the Link header's next page (never off the API), and one listing page
 * parsed strictly, on well-formed and hostile input. */
#include <jansson.h>
#include <string.h>

#include "common/errors.h"
#include "common/util.h"
#include "rvtest.h"
#include "worker/orglist.h"
#include "worker/orgsync.h"

static const char *repo_id(const char *org, const char *name, long long gh)
{
    static char buf[RV_REPO_ID_MAX + 1];
    rvt_current = name;
    if (rv_orgsync_repo_id(org, name, gh, buf, sizeof(buf)) != 0)
        return "(none)";
    return buf;
}

static void test_repo_ids_are_lower_cased_and_made_valid(void)
{
    CHECK_STR(repo_id("acme", "Widgets", 0), "acme-widgets");
    CHECK_STR(repo_id("acme", ".github", 0), "acme-.github");
    CHECK_STR(repo_id("Acme", "a_b.c-D", 0), "acme-a_b.c-d");
    CHECK_STR(repo_id("acme", "Widgets", 42), "acme-widgets-42");
    char name[101];
    memset(name, 'x', 100);
    name[100] = '\0';
    const char *id = repo_id("acme", name, 0);
    CHECK_INT((int)strlen(id), RV_REPO_ID_MAX);
    CHECK(rv_repo_id_valid(id));
    id = repo_id("acme", name, 123456789);
    CHECK_INT((int)strlen(id), RV_REPO_ID_MAX);
    CHECK(strcmp(id + strlen(id) - 10, "-123456789") == 0);
    /* Anything outside [a-z0-9._-] becomes '-' (GitHub never sends it,
     * but the id must be valid whatever comes). */
    CHECK_STR(repo_id("acme", "na me/\xc3\xa9", 0), "acme-na-me---");
    char small[8];
    CHECK_INT(rv_orgsync_repo_id("acme", "widgets", 0, small, sizeof(small)),
              -1);
}

static int next(const char *link, char *buf, size_t size)
{
    rvt_current = link;
    return rv_orglist_next_link(link, "https://api.example.com", buf, size);
}

static void test_the_next_page_comes_from_the_link_header(void)
{
    char buf[256];
    CHECK_INT(next("<https://api.example.com/installation/repositories?page=2>"
                   "; rel=\"next\", <https://api.example.com/x?page=3>; "
                   "rel=\"last\"",
                   buf, sizeof(buf)),
              1);
    CHECK_STR(buf, "https://api.example.com/installation/repositories?page=2");
    CHECK_INT(next("<https://api.example.com/x?page=1>; rel=\"prev\", "
                   "<https://api.example.com/x?page=1>; rel=\"first\"",
                   buf, sizeof(buf)),
              0);
    CHECK_STR(buf, "");
    CHECK_INT(next("", buf, sizeof(buf)), 0);
    CHECK_INT(next(NULL, buf, sizeof(buf)), 0);
    /* Never to another host, nor to one that merely starts like ours. */
    CHECK_INT(next("<https://evil.example.com/x?page=2>; rel=\"next\"", buf,
                   sizeof(buf)),
              -1);
    CHECK_INT(next("<https://api.example.com.evil.net/x>; rel=\"next\"", buf,
                   sizeof(buf)),
              -1);
    CHECK_INT(next("<https://api.example.com>; rel=\"next\"", buf, sizeof(buf)),
              -1);
    /* Malformed. */
    CHECK_INT(next("https://api.example.com/x; rel=\"next\"", buf, sizeof(buf)),
              -1);
    CHECK_INT(
        next("<https://api.example.com/x; rel=\"next\"", buf, sizeof(buf)), -1);
    CHECK_INT(
        next("<https://api.example.com/a b>; rel=\"next\"", buf, sizeof(buf)),
        -1);
    char tiny[16];
    CHECK_INT(
        next("<https://api.example.com/xyz>; rel=\"next\"", tiny, sizeof(tiny)),
        -1);
}

static int parse(const char *body, bool installation, struct rv_org_listing *l,
                 json_t *page, char *code, size_t size)
{
    struct rv_sync_error err;
    memset(&err, 0, sizeof(err));
    rvt_current = body;
    int rc =
        rv_orglist_parse_page(body, strlen(body), installation, l, page, &err);
    rv_strlcpy(code, rc == RV_OK ? "" : rv_errname(err.code), size);
    return rc;
}

#define REPO(id, name, archived)                                               \
    "{\"id\":" #id ",\"name\":\"" name "\",\"owner\":{\"login\":\"acme\"},"    \
    "\"archived\":" #archived ",\"clone_url\":\"https://github.com/acme/" name \
    ".git\",\"extra\":[1,2]}"

static void test_a_listing_page_is_read_strictly(void)
{
    struct rv_org_listing l;
    rv_org_listing_init(&l);
    char code[32];
    json_t *page = json_pack("{s:[]}", "repos");
    CHECK_INT(parse("{\"total_count\":2,\"repositories\":[" REPO(
                        5, "one", false) "," REPO(6, "two", true) "]}",
                    true, &l, page, code, sizeof(code)),
              RV_OK);
    CHECK_INT((int)l.n, 2);
    CHECK_INT((int)l.total, 2);
    CHECK_INT((int)l.v[0].github_id, 5);
    CHECK_STR(l.v[0].name, "one");
    CHECK_STR(l.v[0].owner, "acme");
    CHECK(!l.v[0].archived && l.v[1].archived);
    CHECK_STR(l.v[1].clone_url, "https://github.com/acme/two.git");
    CHECK_INT((int)json_array_size(json_object_get(page, "repos")), 2);
    CHECK_INT((int)json_integer_value(json_object_get(page, "total")), 2);
    /* The PAT's listing is a bare array, without a total. */
    CHECK_INT(parse("[" REPO(7, "three", false) "]", false, &l, NULL, code,
                    sizeof(code)),
              RV_OK);
    CHECK_INT((int)l.n, 3);
    CHECK_INT((int)l.total, -1);
    rv_org_listing_free(&l);

    static const char *const bad[] = {
        "",
        "not json",
        "{}",
        "{\"repositories\":{}}",
        "{\"repositories\":[1]}",
        "{\"repositories\":[{\"id\":0,\"name\":\"x\",\"owner\":{\"login\":"
        "\"a\"},\"archived\":false,\"clone_url\":\"u\"}]}",
        "{\"repositories\":[{\"id\":1.5,\"name\":\"x\",\"owner\":{\"login\":"
        "\"a\"},\"archived\":false,\"clone_url\":\"u\"}]}",
        "{\"repositories\":[{\"id\":1,\"name\":\"../x\",\"owner\":{\"login\":"
        "\"a\"},\"archived\":false,\"clone_url\":\"u\"}]}",
        "{\"repositories\":[{\"id\":1,\"name\":\"..\",\"owner\":{\"login\":"
        "\"a\"},\"archived\":false,\"clone_url\":\"u\"}]}",
        "{\"repositories\":[{\"id\":1,\"name\":\"x\",\"owner\":{\"login\":"
        "\"a/b\"},\"archived\":false,\"clone_url\":\"u\"}]}",
        "{\"repositories\":[{\"id\":1,\"name\":\"x\",\"owner\":\"a\","
        "\"archived\":false,\"clone_url\":\"u\"}]}",
        "{\"repositories\":[{\"id\":1,\"name\":\"x\",\"owner\":{\"login\":"
        "\"a\"},\"archived\":\"no\",\"clone_url\":\"u\"}]}",
        "{\"repositories\":[{\"id\":1,\"name\":\"x\",\"owner\":{\"login\":"
        "\"a\"},\"archived\":false,\"clone_url\":\"\"}]}",
        "{\"repositories\":[{\"id\":1,\"name\":\"x\",\"owner\":{\"login\":"
        "\"a\"},\"archived\":false}]}",
        "{\"repositories\":[],\"repositories\":[]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        rv_org_listing_init(&l);
        CHECK_INT(parse(bad[i], true, &l, NULL, code, sizeof(code)),
                  RV_ERR_DECODE);
        CHECK_STR(code, "bad_response");
        rv_org_listing_free(&l);
    }
    json_decref(page);
}

static void test_a_listing_past_its_deadline_sends_nothing(void)
{
    /* A port nothing listens on: a request would fail as unreachable,
     * so a timeout proves none was sent. */
    struct rv_orglist_opts opts = {
        .rest = "http://127.0.0.1:9",
        .first_url = "http://127.0.0.1:9/orgs/acme/repos?per_page=100",
        .timeout_s = 1,
        .deadline_ms = rv_mono_ms() - 1};
    struct rv_org_listing l;
    rv_org_listing_init(&l);
    json_t *pages = NULL;
    struct rv_orglist_stats st;
    struct rv_sync_error err;
    memset(&err, 0, sizeof(err));
    CHECK_INT(rv_orglist_fetch(&opts, &l, &pages, &st, &err), RV_ERR_TIMEOUT);
    CHECK_STR(rv_errname(err.code), "github_unavailable");
    CHECK(strstr(err.message, "took too long") != NULL);
    CHECK_INT(st.pages, 0);
    CHECK_INT((int)l.n, 0);
    json_decref(pages);
    rv_org_listing_free(&l);
}

int main(void)
{
    RUN(test_repo_ids_are_lower_cased_and_made_valid);
    RUN(test_the_next_page_comes_from_the_link_header);
    RUN(test_a_listing_page_is_read_strictly);
    RUN(test_a_listing_past_its_deadline_sends_nothing);
    return rvt_done();
}

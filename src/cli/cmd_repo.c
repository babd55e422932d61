/* The repo commands: add, remove, list, refresh, status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/errors.h"
#include "common/keys.h"
#include "common/registry.h"
#include "common/urlpolicy.h"
#include "common/util.h"

/* Parses the single ID positional of a command. CLI_OK or CLI_USAGE. */
static int one_id(const char *cmd, const char **pos, int npos)
{
    if (npos == 0)
        return cli_usage_error(cmd, "missing repo ID");
    return cli_check_id(cmd, pos[0]);
}

/* ---- add ---- */

int cli_cmd_add(struct cli *c, int argc, char **args)
{
    const char *url = NULL, *github = NULL, *branch = NULL, *interval = NULL;
    const struct cli_opt opts[] = {{"--url", &url, NULL},
                                   {"--github", &github, NULL},
                                   {"--default-branch", &branch, NULL},
                                   {"--interval", &interval, NULL},
                                   {NULL, NULL, NULL}};
    const char *pos[1];
    int npos;
    bool help;
    int rc = cli_parse("add", argc, args, opts, pos, 1, &npos, &help);
    if (rc != CLI_OK || help)
        return help ? cli_command_help("add") : rc;
    if ((rc = one_id("add", pos, npos)) != CLI_OK)
        return rc;
    if (!url || !*url)
        return cli_usage_error("add", "--url URL is required");
    int64_t interval_s = 0;
    if (interval && (rv_parse_i64(interval, 0, 86400, &interval_s) != 0 ||
                     (interval_s != 0 && interval_s < 10)))
        return cli_usage_error("add", "--interval must be 0 (the default) or "
                                      "10..86400 seconds");

    struct rv_repo_spec spec = {.id = pos[0],
                                .url = url,
                                .github = github,
                                .default_branch = branch,
                                .interval_s = interval_s,
                                .default_interval_s = c->cfg.sync_interval};
    char err[512];
    struct rv_url_policy policy;
    if (rv_url_policy_load(&policy, &c->cfg, err, sizeof(err)) != RV_OK)
        return cli_fail("%s", err);
    int valid = rv_repo_spec_validate(&spec, &policy, err, sizeof(err));
    rv_url_policy_free(&policy);
    if (valid == RV_ERR_URL_NOT_ALLOWED)
        return cli_fail("url_not_allowed: %s", err);
    if (valid != RV_OK)
        return cli_usage_error("add", "%s", err);
    if ((rc = cli_connect(c)) != CLI_OK)
        return rc;
    int err_rc = rv_registry_add(&c->r, &spec, err, sizeof(err));
    if (err_rc == RV_ERR_EXISTS || err_rc == RV_ERR_REDIS)
        return cli_fail_rc(c, err_rc, spec.id);
    if (err_rc != RV_OK)
        return cli_fail("%s", err);
    printf("added %s; first sync queued (%s)\n", spec.id,
           github && *github ? "branches, prs" : "branches");
    return CLI_OK;
}

/* ---- remove ---- */

int cli_cmd_remove(struct cli *c, int argc, char **args)
{
    const char *pos[1];
    int npos;
    bool help;
    int rc = cli_parse("remove", argc, args, NULL, pos, 1, &npos, &help);
    if (rc != CLI_OK || help)
        return help ? cli_command_help("remove") : rc;
    if ((rc = one_id("remove", pos, npos)) != CLI_OK)
        return rc;
    if ((rc = cli_connect(c)) != CLI_OK)
        return rc;
    int err_rc = rv_registry_remove(&c->r, pos[0]);
    if (err_rc != RV_OK)
        return cli_fail_rc(c, err_rc, pos[0]);
    printf("removed %s\n", pos[0]);
    return CLI_OK;
}

/* ---- list ---- */

/* {"id","url","github","defaultBranch","version","freshness"}, as the API's
 * GET /v1/repos lists them. New reference or NULL. */
static json_t *repo_summary_json(struct cli *c, const struct rv_repo *repo)
{
    json_t *j = rv_repo_json(repo);
    json_t *fresh = rv_freshness_json(
        repo, rv_now_ms(), rv_config_stale_after(&c->cfg, repo->interval_s));
    if (!j || !fresh ||
        json_object_set_new(j, "version", json_integer(repo->version)) ||
        json_object_set_new(j, "freshness", fresh)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static int repo_item(struct cli *c, const char *id, json_t **out)
{
    struct rv_repo repo;
    int rc = rv_registry_get(&c->r, id, &repo);
    if (rc != RV_OK)
        return rc;
    bool has_github = repo.github[0] != '\0';
    if (out) {
        *out = repo_summary_json(c, &repo);
    } else {
        printf("%-20s %-40s %-24s branches:%-8s prs:%-8s version:%lld\n",
               repo.id, repo.url, has_github ? repo.github : "-",
               repo.sync[RV_KIND_BRANCHES].status,
               has_github ? repo.sync[RV_KIND_PRS].status : "-",
               (long long)repo.version);
    }
    rv_repo_free(&repo);
    return RV_OK;
}

int cli_cmd_list(struct cli *c, int argc, char **args)
{
    static const struct cli_lister lister = {.cmd = "list",
                                             .member = "repos",
                                             .list_ids = rv_registry_list_ids,
                                             .item = repo_item,
                                             .fail = cli_fail_rc};
    return cli_list(c, argc, args, &lister);
}

/* ---- refresh ---- */

int cli_cmd_refresh(struct cli *c, int argc, char **args)
{
    const char *kind = "all";
    bool as_json = false;
    const struct cli_opt opts[] = {{"--kind", &kind, NULL},
                                   {"--json", NULL, &as_json},
                                   {NULL, NULL, NULL}};
    const char *pos[1];
    int npos;
    bool help;
    int rc = cli_parse("refresh", argc, args, opts, pos, 1, &npos, &help);
    if (rc != CLI_OK || help)
        return help ? cli_command_help("refresh") : rc;
    if ((rc = one_id("refresh", pos, npos)) != CLI_OK)
        return rc;
    bool want[2] = {false, false};
    bool all = strcmp(kind, "all") == 0;
    rv_kind k;
    if (all)
        want[RV_KIND_BRANCHES] = want[RV_KIND_PRS] = true;
    else if (rv_kind_parse(kind, &k) == 0)
        want[k] = true;
    else
        return cli_usage_error("refresh",
                               "--kind must be all, branches or prs");
    if ((rc = cli_connect(c)) != CLI_OK)
        return rc;

    const char *id = pos[0];
    struct rv_repo repo;
    int err_rc = rv_registry_get(&c->r, id, &repo);
    if (err_rc != RV_OK)
        return cli_fail_rc(c, err_rc, id);
    bool has_github = repo.github[0] != '\0';
    rv_repo_free(&repo);
    if (!has_github && !all && want[RV_KIND_PRS])
        return cli_fail_rc(c, RV_ERR_NO_GITHUB, id);
    if (!has_github) /* "all" of a repo without GitHub is its branches */
        want[RV_KIND_PRS] = false;

    json_t *queued = json_array(), *coalesced = json_array();
    for (int i = 0; i < 2 && rc == CLI_OK; i++) {
        if (!want[i])
            continue;
        rv_refresh_outcome outcome;
        err_rc = rv_registry_refresh(&c->r, id, (rv_kind)i, RV_REASON_USER,
                                     &outcome);
        if (err_rc != RV_OK) {
            rc = cli_fail_rc(c, err_rc, id);
            break;
        }
        const char *what =
            outcome == RV_REFRESH_QUEUED ? "queued" : "coalesced";
        json_array_append_new(outcome == RV_REFRESH_QUEUED ? queued : coalesced,
                              json_string(rv_kind_name((rv_kind)i)));
        if (!as_json)
            printf("%s: %s\n", rv_kind_name((rv_kind)i), what);
    }
    if (rc == CLI_OK && as_json) {
        /* The API's 202 body: the freshness after the request. */
        err_rc = rv_registry_get(&c->r, id, &repo);
        if (err_rc != RV_OK) {
            rc = cli_fail_rc(c, err_rc, id);
        } else {
            json_t *fresh = rv_freshness_json(
                &repo, rv_now_ms(),
                rv_config_stale_after(&c->cfg, repo.interval_s));
            rc = cli_print_json(json_pack("{s:s,s:O,s:O,s:o*}", "repo", id,
                                          "queued", queued, "coalesced",
                                          coalesced, "freshness", fresh));
            rv_repo_free(&repo);
        }
    }
    json_decref(queued);
    json_decref(coalesced);
    return rc;
}

/* ---- status ---- */

/* Prints one kind's state as readable lines. */
static void print_kind(const struct rv_repo *repo, rv_kind kind,
                       const struct cli_queued *items, size_t n)
{
    const struct rv_sync_state *s = &repo->sync[kind];
    char t[32];
    const char *label = kind == RV_KIND_BRANCHES ? "branches" : "prs";
    if (kind == RV_KIND_PRS && !repo->github[0]) {
        printf("%-10s idle (no GitHub name, no PR sync)\n", label);
        return;
    }
    printf("%-10s %s, last success %s\n", label, s->status,
           cli_time(s->at_ms, t, sizeof(t)));
    for (size_t i = 0; i < n; i++) {
        const struct rv_job *j = &items[i].job;
        if (!items[i].decoded || j->kind != kind ||
            strcmp(j->repo, repo->id) != 0)
            continue;
        printf("%-10s job %s (%s) at queue position %lld of %zu\n", "", j->id,
               rv_reason_name(j->reason), (long long)items[i].position, n);
    }
    if (strcmp(s->status, "running") == 0)
        printf("%-10s running on worker %s since %s%s\n", "",
               s->worker[0] ? s->worker : "?",
               cli_time(s->started_ms, t, sizeof(t)),
               s->pending ? "; a follow-up sync is asked for" : "");
    if (s->error_json) {
        json_t *e = json_loads(s->error_json, 0, NULL);
        const char *code = json_string_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        const char *at = json_string_value(json_object_get(e, "at"));
        printf("%-10s last error: %s: %s (at %s)\n", "", code ? code : "?",
               msg ? msg : s->error_json, at ? at : "?");
        json_decref(e);
    }
}

/* The status as JSON: repo, version, freshness, the repo's jobs in the
 * queue with their positions, the running syncs. New reference or NULL. */
static json_t *status_json(struct cli *c, const struct rv_repo *repo,
                           const struct cli_queued *items, size_t n)
{
    json_t *queued = json_array(), *running = json_array();
    for (size_t i = 0; queued && i < n; i++) {
        if (items[i].decoded && strcmp(items[i].job.repo, repo->id) == 0)
            json_array_append_new(queued, cli_queued_json(&items[i]));
    }
    for (int k = 0; running && k < 2; k++) {
        const struct rv_sync_state *s = &repo->sync[k];
        if (strcmp(s->status, "running") != 0)
            continue;
        char t[32];
        rv_iso8601(s->started_ms, t, sizeof(t));
        json_array_append_new(running,
                              json_pack("{s:s,s:s,s:s,s:s,s:b}", "kind",
                                        rv_kind_name((rv_kind)k), "job", s->job,
                                        "worker", s->worker, "startedAt", t,
                                        "followupPending", s->pending));
    }
    json_t *fresh = rv_freshness_json(
        repo, rv_now_ms(), rv_config_stale_after(&c->cfg, repo->interval_s));
    return json_pack("{s:o*,s:I,s:I,s:o*,s:I,s:o*,s:o*}", "repo",
                     rv_repo_json(repo), "version", (json_int_t)repo->version,
                     "syncIntervalSeconds", (json_int_t)repo->interval_s,
                     "freshness", fresh, "queueLength", (json_int_t)n, "queued",
                     queued, "running", running);
}

int cli_cmd_status(struct cli *c, int argc, char **args)
{
    bool as_json = false;
    const struct cli_opt opts[] = {{"--json", NULL, &as_json},
                                   {NULL, NULL, NULL}};
    const char *pos[1];
    int npos;
    bool help;
    int rc = cli_parse("status", argc, args, opts, pos, 1, &npos, &help);
    if (rc != CLI_OK || help)
        return help ? cli_command_help("status") : rc;
    if ((rc = one_id("status", pos, npos)) != CLI_OK)
        return rc;
    if ((rc = cli_connect(c)) != CLI_OK)
        return rc;

    struct rv_repo repo;
    int err_rc = rv_registry_get(&c->r, pos[0], &repo);
    if (err_rc != RV_OK)
        return cli_fail_rc(c, err_rc, pos[0]);
    struct cli_queued *items = NULL; /* freed below */
    size_t n = 0;
    rc = cli_queue_load(c, RV_KEY_QUEUE, &items, &n);
    if (rc == CLI_OK && as_json) {
        rc = cli_print_json(status_json(c, &repo, items, n));
    } else if (rc == CLI_OK) {
        int64_t stale_after = rv_config_stale_after(&c->cfg, repo.interval_s);
        json_t *fresh = rv_freshness_json(&repo, rv_now_ms(), stale_after);
        bool stale = json_is_true(json_object_get(fresh, "stale"));
        json_decref(fresh);
        printf("%-10s %s\n", "repo", repo.id);
        printf("%-10s %s\n", "url", repo.url);
        printf("%-10s %s\n", "github", repo.github[0] ? repo.github : "-");
        printf("%-10s %s\n", "branch",
               repo.default_branch[0] ? repo.default_branch
                                      : "(the remote's HEAD)");
        if (repo.interval_s > 0)
            printf("%-10s %lld s\n", "interval", (long long)repo.interval_s);
        else
            printf("%-10s default (%lld s)\n", "interval",
                   (long long)c->cfg.sync_interval);
        printf("%-10s %lld\n", "version", (long long)repo.version);
        print_kind(&repo, RV_KIND_BRANCHES, items, n);
        print_kind(&repo, RV_KIND_PRS, items, n);
        printf("%-10s %s (after %lld s)\n", "stale", stale ? "yes" : "no",
               (long long)stale_after);
    }
    free(items);
    rv_repo_free(&repo);
    return rc;
}

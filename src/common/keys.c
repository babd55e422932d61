/* See keys.h. */
#include "common/keys.h"

#include <stdio.h>
#include <string.h>

const char *rv_kind_name(rv_kind k)
{
    return k == RV_KIND_ORG ? "org" : k == RV_KIND_PRS ? "prs" : "branches";
}

int rv_kind_parse(const char *s, rv_kind *out)
{
    if (s && strcmp(s, "branches") == 0) {
        *out = RV_KIND_BRANCHES;
        return 0;
    }
    if (s && strcmp(s, "prs") == 0) {
        *out = RV_KIND_PRS;
        return 0;
    }
    return -1;
}

int rv_job_kind_parse(const char *s, rv_kind *out)
{
    if (s && strcmp(s, "org") == 0) {
        *out = RV_KIND_ORG;
        return 0;
    }
    return rv_kind_parse(s, out);
}

static char *repo_key(char *buf, const char *id, const char *suffix)
{
    snprintf(buf, RV_KEY_MAX, "rv:{%s}:%s", id, suffix);
    return buf;
}

char *rv_key_meta(char *buf, const char *id)
{
    return repo_key(buf, id, "meta");
}

char *rv_key_branches(char *buf, const char *id)
{
    return repo_key(buf, id, "branches");
}

char *rv_key_prs(char *buf, const char *id)
{
    return repo_key(buf, id, "prs");
}

char *rv_key_overview(char *buf, const char *id)
{
    return repo_key(buf, id, "overview");
}

char *rv_key_processing(char *buf, const char *worker_id)
{
    snprintf(buf, RV_KEY_MAX, "rv:processing:%s", worker_id);
    return buf;
}

char *rv_key_delivery(char *buf, const char *delivery_id)
{
    snprintf(buf, RV_KEY_MAX, "rv:delivery:%s", delivery_id);
    return buf;
}

char *rv_key_worker(char *buf, const char *worker_id)
{
    snprintf(buf, RV_KEY_MAX, "rv:worker:%s", worker_id);
    return buf;
}

char *rv_key_stats(char *buf, long long minute)
{
    snprintf(buf, RV_KEY_MAX, "rv:stats:%lld", minute);
    return buf;
}

static char *gh_key(char *buf, const char *what, const char *identity)
{
    snprintf(buf, RV_KEY_MAX, "rv:gh:%s:%s", what,
             identity && *identity ? identity : "none");
    return buf;
}

char *rv_key_gh_budget(char *buf, const char *identity)
{
    return gh_key(buf, "budget", identity);
}

char *rv_key_gh_hold(char *buf, const char *identity)
{
    return gh_key(buf, "hold", identity);
}

char *rv_key_gh_strikes(char *buf, const char *identity)
{
    return gh_key(buf, "strikes", identity);
}

char *rv_key_gh_slots(char *buf, const char *identity)
{
    return gh_key(buf, "slots", identity);
}

char *rv_key_kind_meta(char *buf, rv_kind kind, const char *id)
{
    return kind == RV_KIND_ORG ? rv_key_org(buf, id) : rv_key_meta(buf, id);
}

char *rv_key_org(char *buf, const char *id)
{
    snprintf(buf, RV_KEY_MAX, "rv:org:{%s}", id);
    return buf;
}

char *rv_key_org_repos(char *buf, const char *id)
{
    snprintf(buf, RV_KEY_MAX, "rv:org:{%s}:repos", id);
    return buf;
}

char *rv_key_org_pages(char *buf, const char *id)
{
    snprintf(buf, RV_KEY_MAX, "rv:org:{%s}:pages", id);
    return buf;
}

char *rv_key_ghname(char *buf, const char *github)
{
    int n = snprintf(buf, RV_KEY_MAX, "rv:ghname:%s", github);
    if (n < 0 || n >= RV_KEY_MAX)
        return NULL;
    for (char *p = buf + strlen("rv:ghname:"); *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return buf;
}

/* See rvsse.h. */
#include "rvsse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rvtest.h"

pid_t rvt_sse_record(const char *dir, const char *base, const char *name,
                     const char *path)
{
    char out[512], url[512], log[512];
    snprintf(out, sizeof(out), "%s/%s.jsonl", dir, name);
    snprintf(url, sizeof(url), "%s%s", base, path);
    snprintf(log, sizeof(log), "%s/%s.log", dir, name);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(log, "a", stderr))
            _exit(126);
        execlp("node", "node", RV_SOURCE_DIR "/tests/sse/record.mjs", url, out,
               (char *)NULL);
        _exit(127);
    }
    return pid;
}

json_t *rvt_sse_recorded(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.jsonl", dir, name);
    json_t *arr = json_array();
    FILE *f = fopen(path, "r");
    if (!f)
        return arr;
    char line[65536];
    while (fgets(line, sizeof(line), f)) {
        json_t *ev = json_loads(line, 0, NULL);
        if (ev)
            json_array_append_new(arr, ev);
    }
    fclose(f);
    return arr;
}

const char *rvt_sse_type(const json_t *ev)
{
    return json_string_value(json_object_get(ev, "type"));
}

const char *rvt_sse_repo(const json_t *ev)
{
    return json_string_value(
        json_object_get(json_object_get(ev, "data"), "repo"));
}

long long rvt_sse_version(const json_t *ev)
{
    return json_integer_value(
        json_object_get(json_object_get(ev, "data"), "version"));
}

int rvt_sse_count(const json_t *arr, const char *type, const char *repo)
{
    int n = 0;
    size_t i;
    const json_t *ev;
    json_array_foreach(arr, i, ev)
    {
        const char *t = rvt_sse_type(ev);
        if (!t || strcmp(t, "open") == 0 || strcmp(t, "error") == 0)
            continue;
        if (type && strcmp(t, type) != 0)
            continue;
        if (repo && (!rvt_sse_repo(ev) || strcmp(rvt_sse_repo(ev), repo) != 0))
            continue;
        n++;
    }
    return n;
}

bool rvt_sse_wait(const char *dir, const char *name, const char *type,
                  const char *repo, int n, int timeout_ms)
{
    int limit = rvt_scale_ms(timeout_ms);
    for (int waited = 0; waited <= limit; waited += 50) {
        json_t *arr = rvt_sse_recorded(dir, name);
        int got = rvt_sse_count(arr, type, repo);
        json_decref(arr);
        if (got >= n)
            return true;
        rvt_sleep_ms(50);
    }
    fprintf(stderr, "%s: wanted %d %s events for %s\n", name, n,
            type ? type : "any", repo ? repo : "any repo");
    return false;
}

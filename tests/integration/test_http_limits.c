/*
 * Connection limits that hold (issue 13), against a real repoview-api on
 * real sockets: trickling keep-alive clients are closed at their deadline
 * and cannot starve a fresh client; floods of idle sockets, under a
 * per-address cap or until the process runs out of descriptors, leave the
 * API answering with a small, all-JSON log; half-sent bodies hold memory
 * within the body budget and oversized or unexpected bodies get 413 before
 * they are sent; the keep-alive timeout is what holds between requests;
 * one address cannot open more than its share of SSE streams.
 *
 * Per-address caps apply, so the "fresh client" connects from 127.0.0.2
 * (all of 127/8 is loopback on Linux) while the attackers use 127.0.0.1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "rvtest.h"

static struct rvt_redis redis;
static char *tmp;
static char env_redis[600];

/* ---- sockets ---- */

/* A blocking TCP connection from src (an address on lo) to 127.0.0.1:port,
 * or -1. */
static int connect_from(const char *src, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, src, &a.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        goto fail;
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        goto fail;
    return fd;
fail:
    close(fd);
    return -1;
}

/* Reads into buf (NUL-terminated) until needle arrived, the peer closed
 * or limit_ms passed. true when needle arrived. */
static bool read_until(int fd, const char *needle, char *buf, size_t size,
                       int limit_ms)
{
    int64_t start = rv_mono_ms();
    size_t used = 0;
    buf[0] = '\0';
    while (!strstr(buf, needle)) {
        int64_t left = limit_ms - (rv_mono_ms() - start);
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0 || used + 1 >= size)
            return false;
        ssize_t n = recv(fd, buf + used, size - 1 - used, 0);
        if (n <= 0)
            return false;
        used += (size_t)n;
        buf[used] = '\0';
    }
    return true;
}

/* Waits until the peer closes fd (reading and dropping what comes); the
 * ms that took, or -1 after limit_ms. */
static int wait_closed(int fd, int limit_ms)
{
    int64_t start = rv_mono_ms();
    for (;;) {
        int64_t left = limit_ms - (rv_mono_ms() - start);
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return -1;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            return (int)(rv_mono_ms() - start);
    }
}

/* True when the peer closed fd; what arrived is dropped, nothing waits. */
static bool is_closed(int fd)
{
    for (;;) {
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0)
            continue;
        return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
    }
}

/* The status of GET path from src on a connection of its own (0: no
 * answer within limit_ms); *ms how long it took. */
static int get_from(const char *src, int port, const char *path,
                    int limit_ms, int *ms)
{
    int64_t t0 = rv_mono_ms();
    int status = 0;
    int fd = connect_from(src, port);
    if (fd >= 0) {
        char req[512], buf[8192];
        snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: localhost\r\n"
                 "Connection: close\r\n\r\n",
                 path);
        if (rvt_send_str(fd, req) &&
            read_until(fd, "\r\n\r\n", buf, sizeof(buf), limit_ms) &&
            strncmp(buf, "HTTP/1.1 ", 9) == 0)
            status = (int)strtol(buf + 9, NULL, 10);
        close(fd);
    }
    if (ms)
        *ms = (int)(rv_mono_ms() - t0);
    return status;
}

/* Retries GET /healthz from src until it answers 200 or limit_ms
 * passed; the ms until it did, or -1. */
static int first_healthy(const char *src, int port, int limit_ms)
{
    int64_t t0 = rv_mono_ms();
    while (rv_mono_ms() - t0 < limit_ms) {
        if (get_from(src, port, "/healthz", 1000, NULL) == 200)
            return (int)(rv_mono_ms() - t0);
        rvt_sleep_ms(100);
    }
    return -1;
}

/* ---- the API process ---- */

static int api_start(struct rvt_api *api, const char *name,
                     const char *const *extra)
{
    const char *env[24];
    size_t n = 0;
    env[n++] = env_redis;
    for (; extra && *extra && n + 1 < sizeof(env) / sizeof(env[0]); extra++)
        env[n++] = *extra;
    env[n] = NULL;
    char log[512];
    snprintf(log, sizeof(log), "%s/%s.log", tmp, name);
    return rvt_api_start(api, 0, redis.url, log, "/readyz", env);
}

/* Stops the API: it must exit 0 with nothing from the sanitizers (leaks,
 * bad accesses, undefined behaviour) in its log. */
static void api_stop(struct rvt_api *api)
{
    char path[512];
    snprintf(path, sizeof(path), "%s", api->log);
    CHECK_INT(rvt_api_stop(api), 0);
    char *log = rvt_slurp(path);
    CHECK(log && !rvt_contains(log, "Sanitizer") &&
          !rvt_contains(log, "runtime error"));
    free(log);
}

/* Lowers the API's descriptor limit (soft and hard) to n. */
static bool limit_fds(pid_t pid, rlim_t n)
{
    struct rlimit rl = {n, n};
    return prlimit(pid, RLIMIT_NOFILE, &rl, NULL) == 0;
}

/* A /proc file of pid into buf (NUL-terminated; /proc files have no
 * size, so rvt_slurp does not read them); false when it cannot. */
static bool proc_read(pid_t pid, const char *name, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return true;
}

/* VmRSS of pid in KiB, or -1. */
static long rss_kb(pid_t pid)
{
    char s[4096];
    const char *at =
        proc_read(pid, "status", s, sizeof(s)) ? strstr(s, "VmRSS:") : NULL;
    return at ? strtol(at + 6, NULL, 10) : -1;
}

/* CPU time (user + system) of pid in ms, or -1. */
static long cpu_ms(pid_t pid)
{
    char s[1024];
    long ms = -1;
    if (!proc_read(pid, "stat", s, sizeof(s)))
        return -1;
    const char *p = strrchr(s, ')');
    if (p) {
        /* Fields after the command: state is the 3rd, utime the 14th. */
        unsigned long ut = 0, st = 0;
        if (sscanf(p + 2,
                   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                   &ut, &st) == 2)
            ms = (long)((ut + st) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
    }
    return ms;
}

/* The log is at most max bytes and every line is a JSON object; prints
 * what it is otherwise. */
static bool log_small_and_json(const char *path, size_t max, size_t *size)
{
    char *s = rvt_slurp(path);
    if (!s)
        return false;
    *size = strlen(s);
    bool ok = *size <= max;
    size_t bad = 0;
    for (char *line = s; *line;) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        json_t *j = json_loadb(line, len, 0, NULL);
        if (!json_is_object(j)) {
            if (bad++ < 3)
                fprintf(stderr, "  not a JSON line: %.*s\n", (int)len, line);
            ok = false;
        }
        json_decref(j);
        line += len + (end ? 1 : 0);
    }
    if (*size > max)
        fprintf(stderr, "  log %s has %zu bytes\n", path, *size);
    free(s);
    return ok;
}

/* ---- the tests ---- */

#define TRICKLERS 50

/* 50 clients make one request each and then trickle a byte a second, the
 * whole REPOVIEW_MAX_CLIENTS: each is closed REPOVIEW_IO_TIMEOUT after its
 * next request's first byte, and a fresh client is then served. (Before,
 * every byte restarted evhttp's idle timeout: they held every slot.) */
static void test_trickling_keepalive_clients_cannot_starve_a_fresh_one(void)
{
    const char *env[] = {"REPOVIEW_IO_TIMEOUT=2",
                         "REPOVIEW_KEEPALIVE_TIMEOUT=3",
                         "REPOVIEW_MAX_CLIENTS=" "50", NULL};
    struct rvt_api api;
    CHECK_INT(api_start(&api, "api-trickle", env), 0);
    rvt_sleep_ms(rvt_scale_ms(300)); /* the start-up probe's slot frees */
    int fds[TRICKLERS];
    int answered = 0;
    for (int i = 0; i < TRICKLERS; i++) {
        char buf[4096];
        fds[i] = connect_from("127.0.0.1", api.port);
        if (fds[i] >= 0 &&
            rvt_send_str(fds[i], "GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
                             "\r\n") &&
            read_until(fds[i], "\"ok\"", buf, sizeof(buf),
                       rvt_scale_ms(3000)))
            answered++;
    }
    CHECK_INT(answered, TRICKLERS);
    /* Every slot is taken: a fresh client is refused at the accept. */
    CHECK_INT(get_from("127.0.0.2", api.port, "/healthz", 1000, NULL), 0);

    /* Trickle: a byte a second of a request that never ends. */
    const char *req = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
    int64_t first_byte = rv_mono_ms();
    int64_t closed_at[TRICKLERS] = {0};
    int open = TRICKLERS;
    int fresh_ms = -1;
    size_t sent = 0;
    int64_t next = first_byte;
    while (open > 0 && rv_mono_ms() - first_byte < rvt_scale_ms(10000)) {
        if (rv_mono_ms() >= next) {
            char c[2] = {sent < strlen(req) ? req[sent] : 'a', '\0'};
            sent++;
            for (int i = 0; i < TRICKLERS; i++)
                if (fds[i] >= 0 && !closed_at[i] && !rvt_send_str(fds[i], c))
                    closed_at[i] = rv_mono_ms();
            next += 1000;
        }
        for (int i = 0; i < TRICKLERS; i++) {
            if (fds[i] >= 0 && !closed_at[i] && is_closed(fds[i]))
                closed_at[i] = rv_mono_ms();
        }
        open = 0;
        for (int i = 0; i < TRICKLERS; i++)
            open += fds[i] >= 0 && !closed_at[i];
        if (fresh_ms < 0 && open < TRICKLERS &&
            get_from("127.0.0.2", api.port, "/healthz", 1000, NULL) == 200)
            fresh_ms = (int)(rv_mono_ms() - first_byte);
        rvt_sleep_ms(50);
    }
    CHECK_INT(open, 0);
    int64_t last = 0;
    for (int i = 0; i < TRICKLERS; i++) {
        CHECK(closed_at[i] != 0);
        if (closed_at[i] - first_byte > last)
            last = closed_at[i] - first_byte;
    }
    /* Closed at the request deadline (2 s), with bytes still coming. */
    CHECK(sent >= 2);
    CHECK(last >= 1500);
    CHECK(last < rvt_scale_ms(4000));
    if (fresh_ms < 0)
        fresh_ms = first_healthy("127.0.0.2", api.port, rvt_scale_ms(3000));
    CHECK(fresh_ms >= 0 && fresh_ms < rvt_scale_ms(5000));
    fprintf(stderr, "  tricklers closed within %lld ms of their first byte;"
                    " fresh client served after %d ms\n",
            (long long)last, fresh_ms);
    for (int i = 0; i < TRICKLERS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    api_stop(&api);
}

#define FLOOD 2000

/* Opens FLOOD non-blocking connections from 127.0.0.1 (the kernel queues
 * or refuses what the API does not take); fds[i] is -1 where socket()
 * failed. */
static int flood_open(int port, int *fds)
{
    int opened = 0;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    for (int i = 0; i < FLOOD; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        0);
        if (fds[i] < 0)
            continue;
        if (connect(fds[i], (struct sockaddr *)&a, sizeof(a)) == 0 ||
            errno == EINPROGRESS)
            opened++;
    }
    return opened;
}

static void flood_close(int *fds)
{
    for (int i = 0; i < FLOOD; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* One flood: per_ip is REPOVIEW_MAX_CLIENTS_PER_IP, nofile the API's
 * descriptor limit; a client from 127.0.0.2 must be answered within
 * answer_within_ms throughout, and the log must stay small JSON. */
static void flood_run(const char *name, const char *per_ip, rlim_t nofile,
                      int answer_within_ms, const char *metric)
{
    const char *env[] = {"REPOVIEW_IO_TIMEOUT=2", per_ip, NULL};
    struct rvt_api api;
    CHECK_INT(api_start(&api, name, env), 0);
    CHECK(limit_fds(api.pid, nofile));
    static int fds[FLOOD];
    long cpu0 = cpu_ms(api.pid);
    int64_t t0 = rv_mono_ms();
    CHECK(flood_open(api.port, fds) > FLOOD / 2);
    /* While the flood is fresh, and again after its connections met
     * their first-request deadline. */
    int worst = 0, failed = 0;
    int first = first_healthy("127.0.0.2", api.port, answer_within_ms);
    CHECK(first >= 0);
    while (rv_mono_ms() - t0 < rvt_scale_ms(4000)) {
        int ms = 0;
        if (get_from("127.0.0.2", api.port, "/healthz", 3000, &ms) != 200)
            failed++;
        else if (ms > worst)
            worst = ms;
        rvt_sleep_ms(200);
    }
    long cpu = cpu_ms(api.pid) - cpu0;
    int64_t wall = rv_mono_ms() - t0;
    CHECK_INT(failed, 0);
    CHECK(worst < answer_within_ms);
    /* No spin: the loop does not burn a core on accept errors. */
    CHECK(cpu >= 0 && cpu < wall * 3 / 4);
    flood_close(fds);
    /* Once the API has read the closes, the flooding address is served. */
    CHECK(first_healthy("127.0.0.1", api.port, rvt_scale_ms(3000)) >= 0);
    /* What was closed at once shows in /metrics. */
    long long closed = rvt_metric(api.base, metric);
    CHECK(closed > FLOOD / 4);
    size_t size = 0;
    char log[512];
    snprintf(log, sizeof(log), "%s", api.log);
    api_stop(&api);
    CHECK(log_small_and_json(log, 16 * 1024, &size));
    fprintf(stderr,
            "  %s: first answer after %d ms, worst %d ms, API CPU %ld ms in "
            "%lld ms, log %zu bytes, %s %lld\n",
            name, first, worst, cpu, (long long)wall, size, metric, closed);
}

/* 2,000 idle sockets from one address against REPOVIEW_MAX_CLIENTS_PER_IP
 * 20 and 256 descriptors: the 21st on are closed at the accept, a client
 * from another address is answered within a second throughout, and the
 * log stays a few KB of JSON lines. */
static void test_idle_socket_flood_is_capped_per_address(void)
{
    flood_run("api-flood-ip", "REPOVIEW_MAX_CLIENTS_PER_IP=20", 256,
              rvt_scale_ms(1000), "repoview_http_refused_total");
}

/* The same flood with the per-address cap out of the way, so the API
 * really runs out of descriptors (EMFILE): what waits is accepted on the
 * spare descriptor and closed, without a busy loop and with one JSON line
 * a second at most. The idle connections it did accept hold every
 * descriptor until their first-request deadline (2 s), so a fresh client
 * may wait that long, and no more. */
static void test_running_out_of_descriptors_neither_spins_nor_floods_the_log(
    void)
{
    flood_run("api-flood-emfile", "REPOVIEW_MAX_CLIENTS_PER_IP=1000000", 256,
              rvt_scale_ms(3500), "repoview_http_accept_dropped_total");
}

#define HALF_BODIES 80
#define HOOK_BODY (20 * 1024 * 1024)
#define BUDGET_MB 16
/* What ASan's redzones and shadow, evbuffer chains and the allocator's
 * rounding add on top of the budget (measured: +28 MiB peak for the 16 MiB
 * budget under ASan). */
#define RSS_SLACK_MB 32

/* 80 connections send the headers of a 20 MiB webhook delivery and half
 * its body: the API's RSS grows by no more than REPOVIEW_MAX_BODY_MEMORY
 * and the slack above (before: by every byte sent, 800 MiB), it keeps
 * answering, and bodies past a route's cap or on routes without one are
 * refused with 413 before they are sent. */
static void test_half_sent_bodies_stay_within_the_body_budget(void)
{
    char budget[64];
    snprintf(budget, sizeof(budget), "REPOVIEW_MAX_BODY_MEMORY=%d",
             BUDGET_MB * 1024 * 1024);
    /* ASan keeps freed memory in a 256 MiB quarantine by default, which
     * would measure ASan rather than the API. */
    const char *env[] = {"REPOVIEW_IO_TIMEOUT=10", budget,
                         "REPOVIEW_WEBHOOK_SECRET=whsec-limits",
                         "ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=4",
                         NULL};
    struct rvt_api api;
    CHECK_INT(api_start(&api, "api-bodies", env), 0);
    char buf[8192];

    /* A JSON route: 2 MiB announced is refused before a byte of it. */
    int fd = connect_from("127.0.0.1", api.port);
    CHECK(fd >= 0 && rvt_send_str(fd, "POST /v1/repos HTTP/1.1\r\nHost: localhost\r\n"
                                  "Content-Type: application/json\r\n"
                                  "Content-Length: 2097152\r\n\r\n"));
    CHECK(fd >= 0 && read_until(fd, "\r\n\r\n", buf, sizeof(buf),
                                rvt_scale_ms(2000)));
    CHECK(strncmp(buf, "HTTP/1.1 413", 12) == 0);
    if (fd >= 0)
        close(fd);
    /* A GET with a body, chunked or not. */
    const char *gets[] = {
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n"
        "\r\n",
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
        "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    };
    for (size_t i = 0; i < sizeof(gets) / sizeof(gets[0]); i++) {
        fd = connect_from("127.0.0.1", api.port);
        CHECK(fd >= 0 && rvt_send_str(fd, gets[i]));
        CHECK(fd >= 0 && read_until(fd, "\r\n\r\n", buf, sizeof(buf),
                                    rvt_scale_ms(2000)));
        CHECK(strncmp(buf, "HTTP/1.1 413", 12) == 0);
        if (fd >= 0)
            close(fd);
    }

    long base_kb = rss_kb(api.pid);
    char head[512];
    snprintf(head, sizeof(head),
             "POST /v1/webhooks/github HTTP/1.1\r\nHost: localhost\r\n"
             "Content-Type: application/json\r\nX-GitHub-Event: push\r\n"
             "Content-Length: %d\r\n\r\n",
             HOOK_BODY);
    int fds[HALF_BODIES];
    size_t sent[HALF_BODIES] = {0};
    for (int i = 0; i < HALF_BODIES; i++) {
        fds[i] = connect_from("127.0.0.1", api.port);
        CHECK(fds[i] >= 0 && rvt_send_str(fds[i], head));
        if (fds[i] >= 0)
            fcntl(fds[i], F_SETFL, O_NONBLOCK);
    }
    /* The webhook route takes 20 MiB: no 413 for these. */
    rvt_sleep_ms(200);
    CHECK(fds[0] >= 0 && !is_closed(fds[0]));
    static char chunk[256 * 1024];
    memset(chunk, 'x', sizeof(chunk));
    long peak_kb = base_kb;
    int64_t t0 = rv_mono_ms();
    int healthy = 0, probes = 0, refused = 0;
    bool busy = true;
    while (busy && rv_mono_ms() - t0 < rvt_scale_ms(8000)) {
        busy = false;
        for (int i = 0; i < HALF_BODIES; i++) {
            if (fds[i] < 0 || sent[i] >= HOOK_BODY / 2)
                continue;
            size_t want = HOOK_BODY / 2 - sent[i];
            ssize_t n = send(fds[i], chunk,
                             want < sizeof(chunk) ? want : sizeof(chunk),
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                sent[i] += (size_t)n;
                busy = true;
            } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                close(fds[i]); /* the API closed it: over the budget */
                fds[i] = -1;
                refused++;
            } else {
                busy = true; /* the socket is full for now */
            }
        }
        long kb = rss_kb(api.pid);
        if (kb > peak_kb)
            peak_kb = kb;
        if (++probes % 20 == 0)
            healthy += get_from("127.0.0.2", api.port, "/healthz", 2000,
                                NULL) == 200;
        rvt_sleep_ms(5);
    }
    size_t total = 0;
    for (int i = 0; i < HALF_BODIES; i++)
        total += sent[i];
    long grown_mb = (peak_kb - base_kb) / 1024;
    CHECK(base_kb > 0);
    CHECK(grown_mb < BUDGET_MB + RSS_SLACK_MB);
    /* The attack did send far more than the budget, and the API kept
     * answering others meanwhile. */
    CHECK(total > (size_t)4 * BUDGET_MB * 1024 * 1024);
    CHECK(refused > 0);
    CHECK(probes < 20 || healthy > 0);
    CHECK_INT(get_from("127.0.0.2", api.port, "/healthz", 2000, NULL), 200);
    fprintf(stderr,
            "  %zu MiB sent on %d connections (%d closed over the budget); "
            "RSS %ld -> peak %ld MiB (+%ld, budget %d + slack %d)\n",
            total >> 20, HALF_BODIES, refused, base_kb / 1024,
            peak_kb / 1024, grown_mb, BUDGET_MB, RSS_SLACK_MB);
    for (int i = 0; i < HALF_BODIES; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    api_stop(&api);
}

/* Without REPOVIEW_WEBHOOK_SECRET the webhook route takes no body at all,
 * a DELETE with one is refused too, and a HEAD with one (whose body
 * evhttp would take for the next request) is refused and closed before
 * that "next request" runs. */
static void test_a_webhook_without_a_secret_takes_no_body(void)
{
    struct rvt_api api;
    CHECK_INT(api_start(&api, "api-nosecret", NULL), 0);
    const char *reqs[] = {
        "POST /v1/webhooks/github HTTP/1.1\r\nHost: localhost\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        "DELETE /v1/repos/x HTTP/1.1\r\nHost: localhost\r\n"
        "Content-Length: 100\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        char buf[4096];
        int fd = connect_from("127.0.0.1", api.port);
        CHECK(fd >= 0 && rvt_send_str(fd, reqs[i]));
        CHECK(fd >= 0 && read_until(fd, "\r\n\r\n", buf, sizeof(buf),
                                    rvt_scale_ms(2000)));
        CHECK(strncmp(buf, "HTTP/1.1 413", 12) == 0);
        if (fd >= 0)
            close(fd);
    }
    const char *smuggle = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n";
    char head[256], buf[8192];
    snprintf(head, sizeof(head),
             "HEAD /healthz HTTP/1.1\r\nHost: localhost\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             strlen(smuggle), smuggle);
    int fd = connect_from("127.0.0.1", api.port);
    CHECK(fd >= 0 && rvt_send_str(fd, head));
    CHECK(fd >= 0 && read_until(fd, "\r\n\r\n", buf, sizeof(buf),
                                rvt_scale_ms(2000)));
    CHECK(strncmp(buf, "HTTP/1.1 400", 12) == 0);
    CHECK(fd >= 0 && wait_closed(fd, rvt_scale_ms(2000)) >= 0);
    if (fd >= 0)
        close(fd);
    CHECK_INT(rvt_metric(api.base, "repoview_http_requests_total{route=\"metrics\",status=\"200\"}"), -1);
    api_stop(&api);
}

/* REPOVIEW_IO_TIMEOUT=1, REPOVIEW_KEEPALIVE_TIMEOUT=3: an idle keep-alive
 * connection stays open past the (shorter) I/O timeout and is closed at
 * the keep-alive timeout; a request on a kept connection that is then
 * trickled is closed IO_TIMEOUT after its first byte, like the first. */
static void test_keepalive_timeout_is_what_holds_between_requests(void)
{
    const char *env[] = {"REPOVIEW_IO_TIMEOUT=1",
                         "REPOVIEW_KEEPALIVE_TIMEOUT=3", NULL};
    struct rvt_api api;
    CHECK_INT(api_start(&api, "api-keepalive", env), 0);
    const char *req = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    char buf[4096];

    int fd = connect_from("127.0.0.1", api.port);
    CHECK(fd >= 0 && rvt_send_str(fd, req) &&
          read_until(fd, "\"ok\"", buf, sizeof(buf), rvt_scale_ms(2000)));
    int ms = fd >= 0 ? wait_closed(fd, rvt_scale_ms(8000)) : -1;
    fprintf(stderr, "  idle keep-alive closed after %d ms\n", ms);
    CHECK(ms >= 2700);
    CHECK(ms < rvt_scale_ms(4500));
    if (fd >= 0)
        close(fd);

    /* Idle for 2 s (past IO_TIMEOUT), then a second request that works,
     * then a third one trickled a byte every 300 ms. */
    fd = connect_from("127.0.0.1", api.port);
    CHECK(fd >= 0 && rvt_send_str(fd, req) &&
          read_until(fd, "\"ok\"", buf, sizeof(buf), rvt_scale_ms(2000)));
    rvt_sleep_ms(2000);
    CHECK(fd >= 0 && rvt_send_str(fd, req) &&
          read_until(fd, "\"ok\"", buf, sizeof(buf), rvt_scale_ms(2000)));
    int64_t t0 = rv_mono_ms();
    bool closed = false;
    for (size_t i = 0; fd >= 0 && rv_mono_ms() - t0 < rvt_scale_ms(6000);
         i++) {
        char c[2] = {i < strlen(req) - 4 ? req[i] : 'a', '\0'};
        if (!rvt_send_str(fd, c) || is_closed(fd)) {
            closed = true;
            break;
        }
        rvt_sleep_ms(300);
    }
    int64_t took = rv_mono_ms() - t0;
    fprintf(stderr, "  trickled third request closed after %lld ms\n",
            (long long)took);
    CHECK(closed);
    CHECK(took >= 700);
    CHECK(took < rvt_scale_ms(2500));
    if (fd >= 0)
        close(fd);
    api_stop(&api);
}

/* Opens an SSE stream from src; the fd once `retry:` came, else -1 with
 * the answer's status line in status (may be NULL). */
static int sse_from(const char *src, int port, char *status, size_t size)
{
    int fd = connect_from(src, port);
    char buf[4096];
    if (fd < 0)
        return -1;
    if (rvt_send_str(fd, "GET /v1/events HTTP/1.1\r\nHost: localhost\r\n"
                     "Accept: text/event-stream\r\n\r\n") &&
        read_until(fd, "retry:", buf, sizeof(buf), rvt_scale_ms(3000)))
        return fd;
    if (status)
        snprintf(status, size, "%s", buf);
    close(fd);
    return -1;
}

/* REPOVIEW_MAX_STREAMS_PER_IP=3: the fourth stream from one address gets
 * 429 too_many_streams; another address still gets one, and a closed
 * stream's slot serves the first address again. */
static void test_streams_are_capped_per_address(void)
{
    const char *env[] = {"REPOVIEW_MAX_STREAMS_PER_IP=3", NULL};
    struct rvt_api api;
    CHECK_INT(api_start(&api, "api-streams", env), 0);
    int s[3];
    for (int i = 0; i < 3; i++) {
        s[i] = sse_from("127.0.0.1", api.port, NULL, 0);
        CHECK(s[i] >= 0);
    }
    char got[4096] = "";
    CHECK_INT(sse_from("127.0.0.1", api.port, got, sizeof(got)), -1);
    CHECK(strncmp(got, "HTTP/1.1 429", 12) == 0);
    CHECK(rvt_contains(got, "too_many_streams"));
    /* Plain requests from the same address are not streams. */
    CHECK_INT(get_from("127.0.0.1", api.port, "/healthz", 2000, NULL), 200);
    int other = sse_from("127.0.0.2", api.port, NULL, 0);
    CHECK(other >= 0);
    close(s[0]);
    int again = -1;
    for (int i = 0; i < rvt_scale_ms(3000) / 100 && again < 0; i++) {
        again = sse_from("127.0.0.1", api.port, NULL, 0);
        if (again < 0)
            rvt_sleep_ms(100);
    }
    CHECK(again >= 0);
    for (int i = 1; i < 3; i++)
        if (s[i] >= 0)
            close(s[i]);
    if (other >= 0)
        close(other);
    if (again >= 0)
        close(again);
    api_stop(&api);
}

int main(void)
{
    /* The floods need a few thousand descriptors of their own. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    tmp = rvt_tmpdir("rv-limits");
    if (!tmp || rvt_redis_start(&redis, NULL) != 0) {
        fprintf(stderr, "cannot start redis-server\n");
        free(tmp);
        return 1;
    }
    snprintf(env_redis, sizeof(env_redis), "REPOVIEW_REDIS_URL=%s",
             redis.url);
    RUN(test_trickling_keepalive_clients_cannot_starve_a_fresh_one);
    RUN(test_idle_socket_flood_is_capped_per_address);
    RUN(test_running_out_of_descriptors_neither_spins_nor_floods_the_log);
    RUN(test_half_sent_bodies_stay_within_the_body_budget);
    RUN(test_a_webhook_without_a_secret_takes_no_body);
    RUN(test_keepalive_timeout_is_what_holds_between_requests);
    RUN(test_streams_are_capped_per_address);
    struct rv_rsync none = {0};
    return rvt_finish(&none, &redis, tmp);
}

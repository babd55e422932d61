/*
 * SSE fan-out load client for bench/bench_sse.sh.
 *
 * Opens N streams to one repoview-api (epoll, non-blocking sockets, one
 * thread), waits until every stream has its `snapshot`, reads the API's
 * VmRSS before and after, then runs a trigger command (e.g. `repoview
 * refresh ID`, which publishes one `status` event through Redis) and
 * measures, per stream, the time from just before the trigger started to
 * the arrival of the `status` event. With -s it also subscribes to
 * rv:events on that Redis socket itself, so the time of the change (the
 * moment the script published it) is known, and reports latencies from
 * there too: that is the API's share, without the trigger command's own
 * start-up. Prints one `key=value` line per figure on stdout; progress and
 * errors go to stderr.
 *
 *   sse_fanout -p PORT -n CLIENTS -r REPO [-P API_PID] [-t "COMMAND"]
 *              [-s REDIS_SOCKET] [-w SECONDS]
 *
 * The stream is not parsed as HTTP: the client looks for "event: snapshot"
 * and "event: status" in the raw bytes (chunk headers never split them,
 * since the API writes each event as one chunk; a short tail is kept so
 * that a read boundary does not either).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Connections in progress at once: more would overflow the API's accept
 * backlog and cost SYN retries of a second or more. */
#define SSE_CONNECTING_MAX 256
/* Bytes of the previous read kept to find a marker split by a read. */
#define SSE_TAIL 24

enum sse_phase {
    PHASE_IDLE,       /* not started */
    PHASE_CONNECTING, /* connect() in progress */
    PHASE_WAITING,    /* request sent; no snapshot yet */
    PHASE_SNAPSHOT,   /* snapshot seen; waiting for the status event */
    PHASE_DONE,       /* status event seen */
    PHASE_FAILED,     /* closed or refused */
};

struct sse_conn {
    int fd;
    enum sse_phase phase;
    int64_t got_us;         /* status arrival, µs after the trigger */
    unsigned char tail_len;
    char tail[SSE_TAIL];
};

struct sse_run {
    int port;
    long nclients;
    const char *repo;
    long api_pid;
    const char *trigger;
    const char *redis_sock;
    int sub_fd;             /* our own SUBSCRIBE rv:events, or -1 */
    int64_t published_us;   /* when the first message arrived on it */
    long wait_s;
    int ep;
    struct sse_conn *conns;
    long started, connecting, snapshots, done, failed;
    char request[512];
    size_t request_len;
};

static int64_t sse_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool sse_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* VmRSS of pid in KiB, or -1. */
static long sse_rss_kib(long pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            char *p = line + 6;
            while (*p == ' ' || *p == '\t')
                p++;
            char *end;
            kib = strtol(p, &end, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

/* Many streams need many descriptors: take what the hard limit allows. */
static void sse_raise_fd_limit(long need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if ((long)rl.rlim_cur < need + 16)
        fprintf(stderr, "sse_fanout: descriptor limit %ld is below %ld\n",
                (long)rl.rlim_cur, need + 16);
}

static void sse_close(struct sse_run *r, struct sse_conn *c, bool failed)
{
    if (c->fd >= 0) {
        epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    if (c->phase == PHASE_CONNECTING)
        r->connecting--;
    if (failed && c->phase != PHASE_DONE) {
        c->phase = PHASE_FAILED;
        r->failed++;
    }
}

static void sse_start_one(struct sse_run *r, long i)
{
    struct sse_conn *c = &r->conns[i];
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)r->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    r->started++;
    c->phase = PHASE_CONNECTING;
    r->connecting++;
    if (c->fd < 0) {
        sse_close(r, c, true);
        return;
    }
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
        errno != EINPROGRESS) {
        sse_close(r, c, true);
        return;
    }
    struct epoll_event e = {.events = EPOLLOUT | EPOLLIN,
                            .data.u64 = (uint64_t)i};
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &e) != 0)
        sse_close(r, c, true);
}

/* The socket became writable: the connection is up; send the request. */
static void sse_on_connected(struct sse_run *r, long i)
{
    struct sse_conn *c = &r->conns[i];
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err ||
        write(c->fd, r->request, r->request_len) !=
            (ssize_t)r->request_len) {
        sse_close(r, c, true);
        return;
    }
    r->connecting--;
    c->phase = PHASE_WAITING;
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
    epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &e);
}

/* True when marker is in tail+data (data is NUL-terminated). */
static bool sse_seen(const struct sse_conn *c, const char *data, size_t n,
                     const char *marker)
{
    if (memmem(data, n, marker, strlen(marker)))
        return true;
    if (!c->tail_len)
        return false;
    char join[2 * SSE_TAIL];
    size_t head = n < SSE_TAIL ? n : SSE_TAIL;
    memcpy(join, c->tail, c->tail_len);
    memcpy(join + c->tail_len, data, head);
    return memmem(join, c->tail_len + head, marker, strlen(marker)) != NULL;
}

static void sse_on_readable(struct sse_run *r, long i, int64_t t0)
{
    static char buf[65536];
    struct sse_conn *c = &r->conns[i];
    for (;;) {
        ssize_t n = read(c->fd, buf, sizeof(buf));
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            sse_close(r, c, true);
            return;
        }
        if (c->phase == PHASE_WAITING &&
            sse_seen(c, buf, (size_t)n, "event: snapshot")) {
            c->phase = PHASE_SNAPSHOT;
            r->snapshots++;
        }
        if (c->phase == PHASE_SNAPSHOT && t0 > 0 &&
            sse_seen(c, buf, (size_t)n, "event: status")) {
            c->got_us = sse_now_us() - t0;
            c->phase = PHASE_DONE;
            r->done++;
        }
        size_t keep = (size_t)n < SSE_TAIL ? (size_t)n : SSE_TAIL;
        memcpy(c->tail, buf + n - keep, keep);
        c->tail_len = (unsigned char)keep;
    }
}

/* The index epoll reports for the subscriber connection. */
#define SSE_SUB_INDEX UINT64_MAX

/* SUBSCRIBE rv:events in plain RESP on the Redis unix socket. */
static int sse_subscribe(struct sse_run *r)
{
    static const char cmd[] = "*2\r\n$9\r\nSUBSCRIBE\r\n$9\r\nrv:events\r\n";
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(r->redis_sock) >= sizeof(sa.sun_path))
        return -1;
    memcpy(sa.sun_path, r->redis_sock, strlen(r->redis_sock) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    char buf[256];
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        write(fd, cmd, sizeof(cmd) - 1) != (ssize_t)(sizeof(cmd) - 1) ||
        read(fd, buf, sizeof(buf)) <= 0) { /* the subscribe confirmation */
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = SSE_SUB_INDEX};
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
        close(fd);
        return -1;
    }
    r->sub_fd = fd;
    return 0;
}

static void sse_on_published(struct sse_run *r, int64_t t0)
{
    char buf[4096];
    ssize_t n;
    bool any = false;
    while ((n = read(r->sub_fd, buf, sizeof(buf))) > 0)
        any = true;
    if (any && t0 > 0 && !r->published_us)
        r->published_us = sse_now_us();
}

/* One pass of the loop: starts connections while there is room, waits up
 * to timeout_ms, handles what is ready. */
static void sse_poll(struct sse_run *r, int timeout_ms, int64_t t0)
{
    static struct epoll_event evs[1024];
    while (r->started < r->nclients && r->connecting < SSE_CONNECTING_MAX)
        sse_start_one(r, r->started);
    int n = epoll_wait(r->ep, evs, 1024, timeout_ms);
    /* The publication first, so that it is never timed after an arrival
     * it caused. */
    for (int k = 0; k < n; k++)
        if (evs[k].data.u64 == SSE_SUB_INDEX)
            sse_on_published(r, t0);
    for (int k = 0; k < n; k++) {
        if (evs[k].data.u64 == SSE_SUB_INDEX)
            continue;
        long i = (long)evs[k].data.u64;
        struct sse_conn *c = &r->conns[i];
        if (c->fd < 0)
            continue;
        if (c->phase == PHASE_CONNECTING) {
            if (evs[k].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                sse_on_connected(r, i);
            continue;
        }
        sse_on_readable(r, i, t0);
    }
}

static pid_t sse_spawn(const char *cmd)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int sse_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The nearest-rank percentile of sorted v[n]. */
static int64_t sse_pct(const int64_t *v, long n, double p)
{
    long k = (long)(p / 100.0 * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

static void sse_usage(void)
{
    fprintf(stderr, "usage: sse_fanout -p PORT -n CLIENTS -r REPO "
                    "[-P API_PID] [-t COMMAND] [-s REDIS_SOCKET] "
                    "[-w SECONDS]\n");
}

int main(int argc, char **argv)
{
    struct sse_run r;
    int rc = 1;
    int64_t *lat = NULL;
    memset(&r, 0, sizeof(r));
    r.wait_s = 120;
    r.ep = -1;
    r.sub_fd = -1;
    long port = 0;
    int opt;
    while ((opt = getopt(argc, argv, "p:n:r:P:t:s:w:")) != -1) {
        bool ok = true;
        switch (opt) {
        case 'p': ok = sse_parse_long(optarg, 1, 65535, &port); break;
        case 'n': ok = sse_parse_long(optarg, 1, 1000000, &r.nclients); break;
        case 'r': r.repo = optarg; break;
        case 'P': ok = sse_parse_long(optarg, 1, 1L << 30, &r.api_pid); break;
        case 't': r.trigger = optarg; break;
        case 's': r.redis_sock = optarg; break;
        case 'w': ok = sse_parse_long(optarg, 1, 3600, &r.wait_s); break;
        default: ok = false;
        }
        if (!ok) {
            sse_usage();
            return 2;
        }
    }
    if (!port || !r.nclients || !r.repo) {
        sse_usage();
        return 2;
    }
    r.port = (int)port;
    signal(SIGPIPE, SIG_IGN);
    sse_raise_fd_limit(r.nclients);
    int n = snprintf(r.request, sizeof(r.request),
                     "GET /v1/repos/%s/events HTTP/1.1\r\n"
                     "Host: 127.0.0.1:%d\r\nAccept: text/event-stream\r\n\r\n",
                     r.repo, r.port);
    if (n < 0 || (size_t)n >= sizeof(r.request)) {
        fprintf(stderr, "sse_fanout: repo id too long\n");
        return 2;
    }
    r.request_len = (size_t)n;
    r.conns = calloc((size_t)r.nclients, sizeof(*r.conns));
    lat = calloc((size_t)r.nclients, sizeof(*lat));
    if (!r.conns || !lat || (r.ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        perror("sse_fanout");
        goto out;
    }
    for (long i = 0; i < r.nclients; i++)
        r.conns[i].fd = -1;
    if (r.redis_sock && sse_subscribe(&r) != 0) {
        fprintf(stderr, "sse_fanout: cannot subscribe on %s\n", r.redis_sock);
        goto out;
    }

    long rss_before = r.api_pid ? sse_rss_kib(r.api_pid) : -1;
    int64_t start = sse_now_us();
    int64_t deadline = start + (int64_t)r.wait_s * 1000000;
    while (r.snapshots + r.failed < r.nclients && sse_now_us() < deadline)
        sse_poll(&r, 100, 0);
    int64_t connect_us = sse_now_us() - start;
    fprintf(stderr, "sse_fanout: %ld streams with a snapshot, %ld failed, "
                    "in %.1f s\n",
            r.snapshots, r.failed, (double)connect_us / 1e6);
    /* Let the API finish writing and freeing what the connects took
     * (request parsing, snapshot reads) before its RSS is read. */
    int64_t settle = sse_now_us() + 1000000;
    while (sse_now_us() < settle)
        sse_poll(&r, 100, 0);
    long rss_after = r.api_pid ? sse_rss_kib(r.api_pid) : -1;

    int64_t t0 = 0, cli_us = -1;
    if (r.trigger) {
        t0 = sse_now_us();
        pid_t child = sse_spawn(r.trigger);
        deadline = t0 + 30 * 1000000LL;
        while (r.done + r.failed < r.nclients && sse_now_us() < deadline) {
            sse_poll(&r, 50, t0);
            int status;
            if (child > 0 && waitpid(child, &status, WNOHANG) == child) {
                cli_us = sse_now_us() - t0;
                child = -1;
            }
        }
        if (child > 0 && waitpid(child, NULL, 0) == child)
            cli_us = sse_now_us() - t0;
    }

    long nlat = 0;
    for (long i = 0; i < r.nclients; i++)
        if (r.conns[i].phase == PHASE_DONE)
            lat[nlat++] = r.conns[i].got_us;
    qsort(lat, (size_t)nlat, sizeof(*lat), sse_cmp_i64);
    printf("clients=%ld\nsnapshots=%ld\nfailed=%ld\nconnect_s=%.2f\n",
           r.nclients, r.snapshots, r.failed, (double)connect_us / 1e6);
    printf("rss_before_kib=%ld\nrss_after_kib=%ld\n", rss_before, rss_after);
    if (rss_before >= 0 && rss_after >= 0 && r.snapshots > 0)
        printf("rss_per_client_bytes=%.0f\n",
               (double)(rss_after - rss_before) * 1024.0 /
                   (double)r.snapshots);
    if (r.trigger) {
        printf("received=%ld\ntrigger_ms=%.1f\n", nlat,
               (double)cli_us / 1000.0);
        if (nlat > 0)
            printf("first_ms=%.1f\np50_ms=%.1f\np99_ms=%.1f\nmax_ms=%.1f\n",
                   (double)lat[0] / 1000.0,
                   (double)sse_pct(lat, nlat, 50) / 1000.0,
                   (double)sse_pct(lat, nlat, 99) / 1000.0,
                   (double)lat[nlat - 1] / 1000.0);
        /* The same, from the moment the change was published. */
        double pub = (double)(r.published_us - t0);
        if (nlat > 0 && r.published_us)
            printf("published_ms=%.1f\npub_first_ms=%.1f\npub_p50_ms=%.1f\n"
                   "pub_p99_ms=%.1f\npub_max_ms=%.1f\n",
                   pub / 1000.0, ((double)lat[0] - pub) / 1000.0,
                   ((double)sse_pct(lat, nlat, 50) - pub) / 1000.0,
                   ((double)sse_pct(lat, nlat, 99) - pub) / 1000.0,
                   ((double)lat[nlat - 1] - pub) / 1000.0);
    }
    rc = r.snapshots == r.nclients && (!r.trigger || nlat == r.nclients)
             ? 0
             : 1;
out:
    if (r.conns)
        for (long i = 0; i < r.nclients; i++)
            if (r.conns[i].fd >= 0)
                close(r.conns[i].fd);
    if (r.sub_fd >= 0)
        close(r.sub_fd);
    if (r.ep >= 0)
        close(r.ep);
    free(r.conns);
    free(lat);
    return rc;
}

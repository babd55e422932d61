/* See gitstream.h. */
#include "worker/gitstream.h"

#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <git2/sys/stream.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/urlpolicy.h"
#include "common/util.h"

/* The deadline of the fetch running on this thread (0 = none). */
static _Thread_local int64_t thread_deadline_ms;
/* The policy its connections are checked against, and why one was
 * refused (empty when none was). */
static _Thread_local const struct rv_url_policy *thread_policy;
static _Thread_local char thread_refused[256];
/* Set by rv_gitstream_abort; a worker runs one fetch at a time. */
static atomic_int abort_requested;

/* The sockets of running fetches, for the watchdog. A socket leaves the
 * table before it is closed, under the lock, so the watchdog never shuts
 * down a descriptor that was closed and handed out again. */
#define WATCH_MAX 32
static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int fd;              /* -1 = free slot */
    int64_t deadline_ms; /* 0 = none */
    bool shut;           /* shut down already */
} watched[WATCH_MAX] = {[0 ... WATCH_MAX - 1] = {-1, 0, false}};

void rv_gitstream_set_deadline(int64_t deadline_ms)
{
    thread_deadline_ms = deadline_ms;
    if (deadline_ms > 0) {
        atomic_store(&abort_requested, 0);
        thread_refused[0] = '\0';
    }
}

void rv_gitstream_set_policy(const struct rv_url_policy *policy)
{
    thread_policy = policy;
}

const char *rv_gitstream_refused(void)
{
    return thread_refused[0] ? thread_refused : NULL;
}

void rv_gitstream_abort(void)
{
    atomic_store(&abort_requested, 1);
}

bool rv_gitstream_aborted(void)
{
    return atomic_load(&abort_requested) != 0;
}

__attribute__((unused)) static void watch_add(int fd)
{
    pthread_mutex_lock(&watch_lock);
    for (int i = 0; i < WATCH_MAX; i++) {
        if (watched[i].fd < 0) {
            watched[i].fd = fd;
            watched[i].deadline_ms = thread_deadline_ms;
            watched[i].shut = false;
            break;
        }
    }
    pthread_mutex_unlock(&watch_lock);
}

__attribute__((unused)) static void watch_remove(int fd)
{
    pthread_mutex_lock(&watch_lock);
    for (int i = 0; i < WATCH_MAX; i++)
        if (watched[i].fd == fd)
            watched[i].fd = -1;
    pthread_mutex_unlock(&watch_lock);
}

void rv_gitstream_watchdog(void)
{
    int64_t now = rv_mono_ms();
    bool aborted = rv_gitstream_aborted();
    pthread_mutex_lock(&watch_lock);
    for (int i = 0; i < WATCH_MAX; i++) {
        if (watched[i].fd < 0 || watched[i].shut)
            continue;
        if (aborted ||
            (watched[i].deadline_ms > 0 && now >= watched[i].deadline_ms)) {
            shutdown(watched[i].fd, SHUT_RDWR);
            watched[i].shut = true;
        }
    }
    pthread_mutex_unlock(&watch_lock);
}

#if LIBGIT2_VER_MAJOR == 1 && LIBGIT2_VER_MINOR == 5

/* The first members repeat libgit2 1.5's own socket stream
 * (streams/socket.h), because its SSH transport takes the socket from
 * there to hand it to libssh2 (which then reads it without our deadline).
 * That layout is why this stream is only registered on 1.5. */
struct stream {
    git_stream parent;
    char *host;
    char *port;
    int s;
};

/* Milliseconds poll may wait before the deadline: -1 = no deadline, 0 =
 * past it. */
static int wait_ms(void)
{
    if (rv_gitstream_aborted())
        return 0;
    if (thread_deadline_ms <= 0)
        return -1;
    int64_t left = thread_deadline_ms - rv_mono_ms();
    if (left <= 0)
        return 0;
    return left > 60000 ? 60000 : (int)left;
}

/* Waits until fd is ready for events or the deadline passes (in polls of
 * at most a minute, each measured again against the deadline). 0 when
 * ready, -1 with a libgit2 error set. */
static int wait_for(int fd, short events, const char *what)
{
    for (;;) {
        int ms = wait_ms();
        if (ms == 0) {
            git_error_set(GIT_ERROR_NET,
                          "timed out %s (the fetch timeout passed)", what);
            return -1;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, ms);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR) {
            git_error_set(GIT_ERROR_OS, "poll failed %s", what);
            return -1;
        }
    }
}

/* Connects s to addr before the deadline: a non-blocking connect, then
 * back to blocking (libssh2 expects a blocking socket). */
static int connect_one(int s, const struct addrinfo *addr)
{
    int flags = fcntl(s, F_GETFL);
    if (flags < 0 || fcntl(s, F_SETFL, flags | O_NONBLOCK) < 0)
        return -1;
    if (connect(s, addr->ai_addr, addr->ai_addrlen) != 0) {
        if (errno != EINPROGRESS)
            return -1;
        int err = 0;
        socklen_t len = sizeof(err);
        if (wait_for(s, POLLOUT, "connecting") != 0)
            return -1;
        git_error_clear();
        if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
            errno = err;
            return -1;
        }
    }
    return fcntl(s, F_SETFL, flags) < 0 ? -1 : 0;
}

/* A name lookup on a thread of its own, so that it ends at the deadline
 * (getaddrinfo has none). Whoever finishes last frees it: the lookup when
 * the caller gave up waiting, else the caller. */
struct lookup {
    pthread_mutex_t lock;
    pthread_cond_t done_cv;
    bool done, abandoned;
    char *host, *port;
    struct addrinfo *info;
    int rc;
};

static void lookup_free(struct lookup *l)
{
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->done_cv);
    free(l->host);
    free(l->port);
    free(l);
}

static void *lookup_main(void *arg)
{
    struct lookup *l = arg;
    struct addrinfo hints, *info = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    int rc = getaddrinfo(l->host, l->port, &hints, &info);
    pthread_mutex_lock(&l->lock);
    bool abandoned = l->abandoned;
    l->rc = rc;
    l->info = info;
    l->done = true;
    pthread_cond_signal(&l->done_cv);
    pthread_mutex_unlock(&l->lock);
    if (abandoned) {
        if (info)
            freeaddrinfo(info);
        lookup_free(l);
    }
    return NULL;
}

/* Resolves host:port before the deadline. 0 with *out set (freeaddrinfo
 * it), or -1 with a libgit2 error set. */
static int resolve(const char *host, const char *port, struct addrinfo **out)
{
    struct lookup *l = calloc(1, sizeof(*l));
    pthread_condattr_t ca;
    pthread_attr_t ta;
    pthread_t t;
    *out = NULL;
    if (!l || !(l->host = strdup(host)) ||
        (port && !(l->port = strdup(port)))) {
        if (l) {
            free(l->host);
            free(l);
        }
        git_error_set_oom();
        return -1;
    }
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->done_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&l->lock, NULL);
    pthread_attr_init(&ta);
    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
    int prc = pthread_create(&t, &ta, lookup_main, l);
    pthread_attr_destroy(&ta);
    if (prc != 0) {
        lookup_free(l);
        git_error_set(GIT_ERROR_OS, "cannot start a name lookup");
        return -1;
    }
    pthread_mutex_lock(&l->lock);
    while (!l->done) {
        int ms = wait_ms();
        if (ms == 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        /* Woken at least every 200 ms to notice an abort. */
        int64_t ns = (int64_t)ts.tv_nsec +
                     (int64_t)(ms < 0 || ms > 200 ? 200 : ms) * 1000000;
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&l->done_cv, &l->lock, &ts);
    }
    if (!l->done) {
        l->abandoned = true; /* the lookup thread frees it */
        pthread_mutex_unlock(&l->lock);
        git_error_set(GIT_ERROR_NET,
                      "timed out resolving %s (the fetch timeout passed)",
                      host);
        return -1;
    }
    pthread_mutex_unlock(&l->lock);
    int rc = l->rc;
    *out = l->info;
    lookup_free(l);
    if (rc != 0) {
        git_error_set(GIT_ERROR_NET, "failed to resolve address for %s: %s",
                      host, gai_strerror(rc));
        return -1;
    }
    return 0;
}

/* Notes why the policy refused a connection and sets the libgit2 error. */
static void refuse(const char *why)
{
    snprintf(thread_refused, sizeof(thread_refused), "%s", why);
    git_error_set(GIT_ERROR_NET, "refused by the URL policy: %s", why);
}

static int stream_connect(git_stream *gs)
{
    struct stream *st = (struct stream *)gs;
    struct addrinfo *info = NULL;
    char why[256];
    if (thread_policy && rv_url_policy_check_host(thread_policy, st->host, why,
                                                  sizeof(why)) != RV_OK) {
        refuse(why);
        return -1;
    }
    if (resolve(st->host, st->port, &info) != 0)
        return -1;
    int s = -1;
    bool refused = false;
    for (const struct addrinfo *p = info; p; p = p->ai_next) {
        if (thread_policy &&
            rv_url_policy_check_addr(thread_policy, p->ai_addr, why,
                                     sizeof(why)) != RV_OK) {
            refused = true; /* never connected to, whatever else is there */
            continue;
        }
        s = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol);
        if (s < 0)
            continue;
        watch_add(s);
        if (connect_one(s, p) == 0)
            break;
        watch_remove(s);
        close(s);
        s = -1;
        if (wait_ms() == 0)
            break; /* no time left for the next address */
    }
    freeaddrinfo(info);
    if (s < 0) {
        if (wait_ms() == 0)
            git_error_set(GIT_ERROR_NET,
                          "timed out connecting to %s (the fetch timeout "
                          "passed)",
                          st->host);
        else if (refused)
            refuse(why);
        else
            git_error_set(GIT_ERROR_OS, "failed to connect to %s", st->host);
        return -1;
    }
    st->s = s;
    return 0;
}

static ssize_t stream_write(git_stream *gs, const char *data, size_t len,
                            int flags)
{
    struct stream *st = (struct stream *)gs;
    (void)flags;
    for (;;) {
        if (wait_for(st->s, POLLOUT, "sending to the remote") != 0)
            return -1;
        ssize_t n = send(st->s, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0)
            return n;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            git_error_set(GIT_ERROR_OS, "error sending data");
            return -1;
        }
    }
}

static ssize_t stream_read(git_stream *gs, void *data, size_t len)
{
    struct stream *st = (struct stream *)gs;
    for (;;) {
        if (wait_for(st->s, POLLIN, "waiting for the remote") != 0)
            return -1;
        ssize_t n = recv(st->s, data, len, MSG_DONTWAIT);
        if (n >= 0)
            return n;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            git_error_set(GIT_ERROR_OS, "error receiving socket data");
            return -1;
        }
    }
}

static int stream_close(git_stream *gs)
{
    struct stream *st = (struct stream *)gs;
    int rc = 0;
    if (st->s >= 0) {
        watch_remove(st->s);
        rc = close(st->s);
    }
    st->s = -1;
    return rc;
}

static void stream_free(git_stream *gs)
{
    struct stream *st = (struct stream *)gs;
    if (st->s >= 0) {
        watch_remove(st->s);
        close(st->s);
    }
    free(st->host);
    free(st->port);
    free(st);
}

static int stream_new(git_stream **out, const char *host, const char *port)
{
    struct stream *st = calloc(1, sizeof(*st));
    if (!st || !(st->host = strdup(host)) ||
        (port && !(st->port = strdup(port)))) {
        if (st)
            free(st->host);
        free(st);
        git_error_set_oom();
        return -1;
    }
    st->parent.version = GIT_STREAM_VERSION;
    st->parent.connect = stream_connect;
    st->parent.read = stream_read;
    st->parent.write = stream_write;
    st->parent.close = stream_close;
    st->parent.free = stream_free;
    st->s = -1;
    *out = &st->parent;
    return 0;
}

int rv_gitstream_register(void)
{
    int major = 0, minor = 0, rev = 0;
    /* The layout above is 1.5's: a different libgit2 at run time (a
     * library upgraded under the binary) keeps its own stream. */
    if (git_libgit2_version(&major, &minor, &rev) != 0 || major != 1 ||
        minor != 5)
        return RV_OK;
    git_stream_registration reg = {
        .version = GIT_STREAM_VERSION,
        .init = stream_new,
    };
    return git_stream_register(GIT_STREAM_STANDARD, &reg) == 0 ? RV_OK
                                                               : RV_ERR_GIT;
}

#else

int rv_gitstream_register(void)
{
    return RV_OK;
}

#endif

/* See gitstream.h. */
#include "worker/gitstream.h"

#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <git2/sys/stream.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/util.h"

/* The deadline of the fetch running on this thread (0 = none). */
static _Thread_local int64_t thread_deadline_ms;

void rv_gitstream_set_deadline(int64_t deadline_ms)
{
    thread_deadline_ms = deadline_ms;
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

static int stream_connect(git_stream *gs)
{
    struct stream *st = (struct stream *)gs;
    struct addrinfo hints, *info = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    int rc = getaddrinfo(st->host, st->port, &hints, &info);
    if (rc != 0) {
        git_error_set(GIT_ERROR_NET, "failed to resolve address for %s: %s",
                      st->host, gai_strerror(rc));
        return -1;
    }
    int s = -1;
    for (const struct addrinfo *p = info; p; p = p->ai_next) {
        s = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC,
                   p->ai_protocol);
        if (s < 0)
            continue;
        if (connect_one(s, p) == 0)
            break;
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
    int rc = st->s >= 0 ? close(st->s) : 0;
    st->s = -1;
    return rc;
}

static void stream_free(git_stream *gs)
{
    struct stream *st = (struct stream *)gs;
    if (st->s >= 0)
        close(st->s);
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

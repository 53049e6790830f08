#include "sources/local.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/fileio.h"
#include "lib/log.h"
#include "lib/util.h"

struct local_listener {
    struct ev_loop *loop;
    ev_io io;
    int fd;
    char *path;
    dev_t dev; /* what bind() made at path */
    ino_t ino;
    local_cb cb;
    void *userdata;
};

static int make_addr(const char *path, struct sockaddr_un *sa)
{
    *sa = (struct sockaddr_un){.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(sa->sun_path))
        return -ENAMETOOLONG;
    memcpy(sa->sun_path, path, len);
    return 0;
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct local_listener *l = w->data;
    char msg[LOCAL_MSG_MAX + 1];
    for (;;) {
        ssize_t n = recv(l->fd, msg, LOCAL_MSG_MAX, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                log_warn("local socket %s: recv", l->path);
            return;
        }
        if (n > LOCAL_MSG_MAX) {
            log_warnx("local socket %s: dropped a %zd-byte message (limit %d)", l->path, n,
                      LOCAL_MSG_MAX);
            continue;
        }
        msg[n] = '\0';
        l->cb(msg, l->userdata);
    }
}

/* Makes room at path for a new socket: nothing there, or a socket nobody listens on (a
 * previous run's), which is removed. Anything else stays where it is. */
static int clear_path(const char *path, const struct sockaddr_un *sa, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        int r = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-r));
        return r;
    }
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen,
                 "%s exists and is %s, not a socket: it is left alone (set local.socket to a "
                 "path of its own)",
                 path, fileio_type(st.st_mode));
        return -EEXIST;
    }
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0) {
        snprintf(err, errlen, "another process listens on %s: it is left alone", path);
        return -EADDRINUSE;
    }
    if (errno == ENOENT)
        return 0; /* gone meanwhile */
    if (errno != ECONNREFUSED) {
        int r = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-r));
        return r;
    }
    /* A stale socket: still the same one? Then it goes. */
    struct stat again;
    if (lstat(path, &again) == 0 && S_ISSOCK(again.st_mode) && again.st_ino == st.st_ino &&
        again.st_dev == st.st_dev && unlink(path) < 0 && errno != ENOENT) {
        int r = -errno;
        snprintf(err, errlen, "%s: cannot remove the stale socket: %s", path, strerror(-r));
        return r;
    }
    return 0;
}

int local_listen(struct ev_loop *loop, const char *path, local_cb cb, void *userdata,
                 struct local_listener **ret, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    int r = make_addr(path, &sa);
    if (r < 0) {
        snprintf(err, errlen, "%s: longer than the %zu bytes a socket's path may have", path,
                 sizeof(sa.sun_path) - 1);
        return r;
    }
    struct local_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    l->path = strdup(path);
    if (l->fd < 0 || !l->path) {
        r = l->fd < 0 ? -errno : -ENOMEM;
        snprintf(err, errlen, "%s: %s", path, strerror(-r));
        goto fail;
    }
    r = clear_path(path, &sa, err, errlen);
    if (r < 0)
        goto fail;
    if (bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        r = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-r));
        goto fail;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        l->dev = st.st_dev;
        l->ino = st.st_ino;
    }
    (void)chmod(path, 0660);
    l->loop = loop;
    l->cb = cb;
    l->userdata = userdata;
    ev_io_init(&l->io, on_readable, l->fd, EV_READ);
    l->io.data = l;
    ev_io_start(loop, &l->io);
    *ret = l;
    return 0;
fail:
    if (l->fd >= 0)
        close(l->fd);
    free(l->path);
    free(l);
    return r;
}

struct local_listener *local_listener_free(struct local_listener *l)
{
    if (!l)
        return NULL;
    ev_io_stop(l->loop, &l->io);
    close(l->fd);
    /* Only the socket this listener made: whatever replaced it since stays. */
    struct stat st;
    if (lstat(l->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == l->dev &&
        st.st_ino == l->ino)
        (void)unlink(l->path);
    free(l->path);
    free(l);
    return NULL;
}

int local_send(const char *path, const char *msg)
{
    struct sockaddr_un sa;
    int r = make_addr(path, &sa);
    if (r < 0)
        return r;
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (sendto(fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa,
               sizeof(sa)) < 0) {
        if (errno == ECONNREFUSED || errno == ENOENT)
            return 0;
        return -errno;
    }
    return 1;
}

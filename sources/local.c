#include "sources/local.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

struct local_listener {
    struct ev_loop *loop;
    ev_io io;
    int fd;
    char *path;
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

int local_listen(struct ev_loop *loop, const char *path, local_cb cb, void *userdata,
                 struct local_listener **ret)
{
    struct sockaddr_un sa;
    int r = make_addr(path, &sa);
    if (r < 0)
        return r;
    struct local_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    l->path = strdup(path);
    if (l->fd < 0 || !l->path) {
        r = l->fd < 0 ? -errno : -ENOMEM;
        goto fail;
    }
    (void)unlink(path); /* a stale socket of a previous run */
    if (bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        r = -errno;
        goto fail;
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

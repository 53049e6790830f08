#include "lib/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/util.h"

const char *fileio_type(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG:
        return "a regular file";
    case S_IFDIR:
        return "a directory";
    case S_IFLNK:
        return "a symbolic link";
    case S_IFIFO:
        return "a FIFO";
    case S_IFCHR:
        return "a character device";
    case S_IFBLK:
        return "a block device";
    case S_IFSOCK:
        return "a socket";
    default:
        return "not a regular file";
    }
}

static int failf(char *err, size_t errlen, int r, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int failf(char *err, size_t errlen, int r, const char *path, const char *fmt, ...)
{
    if (errlen) {
        int n = snprintf(err, errlen, "%.200s%s: ", path, strlen(path) > 200 ? "..." : "");
        if (n >= 0 && (size_t)n < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return r;
}

int fileio_read(const char *path, size_t max, char **ret_data, size_t *ret_len, char *err,
                size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    size_t plen = strnlen(path, FILEIO_PATH_MAX + 1);
    if (plen > FILEIO_PATH_MAX)
        return failf(err, errlen, -ENAMETOOLONG, path,
                     "the path is longer than %d bytes (it is refused, not cut)", FILEIO_PATH_MAX);
    if (plen == 0)
        return failf(err, errlen, -ENOENT, path, "an empty path");
    /* O_NONBLOCK: opening a FIFO for reading would wait for a writer. */
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return failf(err, errlen, -errno, path, "%s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return failf(err, errlen, S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL, path,
                     "is %s, not a regular file", fileio_type(st.st_mode));
    if ((uint64_t)st.st_size > max)
        return failf(err, errlen, -EFBIG, path, "larger than %zu bytes", max);
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    /* The file may grow while we read: never read more than max (+1 to notice). */
    struct buf b = BUF_INIT(max);
    char chunk[8192];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int r = -errno;
            buf_release(&b);
            return failf(err, errlen, r, path, "%s", strerror(-r));
        }
        if (n == 0)
            break;
        int r = buf_append(&b, chunk, (size_t)n);
        if (r == -EMSGSIZE)
            return failf(err, errlen, -EFBIG, path, "larger than %zu bytes", max);
        if (r < 0)
            return failf(err, errlen, r, path, "%s", strerror(-r));
    }
    size_t len;
    char *data = buf_detach(&b, &len);
    if (!data)
        return failf(err, errlen, -ENOMEM, path, "out of memory");
    *ret_data = data;
    *ret_len = len;
    return 0;
}

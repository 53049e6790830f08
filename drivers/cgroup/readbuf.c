#include "drivers/cgroup/readbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

int readbuf_init(struct readbuf *b, size_t cap, size_t max)
{
    if (cap < 64)
        cap = 64;
    if (max < cap)
        max = cap;
    b->data = malloc(cap);
    if (!b->data)
        return -ENOMEM;
    b->data[0] = '\0';
    b->cap = cap;
    b->max = max;
    return 0;
}

void readbuf_release(struct readbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->cap = 0;
}

int readbuf_pread(struct readbuf *b, int fd, size_t *ret_len)
{
    for (;;) {
        ssize_t n = pread(fd, b->data, b->cap - 1, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        /* A read that leaves room proves the file ended: one syscall per file. */
        if ((size_t)n < b->cap - 1) {
            b->data[n] = '\0';
            *ret_len = (size_t)n;
            return 0;
        }
        if (b->cap >= b->max)
            return -EMSGSIZE;
        size_t cap = b->cap * 2 > b->max ? b->max : b->cap * 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return -ENOMEM;
        b->data = d;
        b->cap = cap;
    }
}

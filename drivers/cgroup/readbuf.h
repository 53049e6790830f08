/* A scratch buffer for reading whole small kernel files (/proc, cgroupfs) with one pread at
 * offset 0. It only grows, up to a hard maximum, so a steady-state cycle allocates nothing. The
 * text read is NUL-terminated. */
#pragma once

#include <stddef.h>

struct readbuf {
    char *data;
    size_t cap;
    size_t max;
};

#define READBUF_DEFAULT_MAX ((size_t)4 << 20)

/* Allocates the first cap bytes (at least 64). Returns 0 or -ENOMEM. */
int readbuf_init(struct readbuf *b, size_t cap, size_t max);
void readbuf_release(struct readbuf *b);

/* Reads the whole file open at fd from offset 0 into b->data; *ret_len gets its length.
 * seq_file and kernfs files regenerate their text on every read at offset 0, so the same fd
 * gives fresh values each time. Returns 0, -EMSGSIZE when the file is larger than the maximum,
 * -ENOMEM, or the negative errno of pread (-ENODEV: the cgroup was removed). */
int readbuf_pread(struct readbuf *b, int fd, size_t *ret_len);

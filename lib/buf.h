/* A growable byte buffer with a hard maximum (after git's strbuf and curl's dynbuf).
 * data is never NULL and always NUL-terminated. An append that would pass the maximum or
 * cannot allocate frees the buffer and returns -EMSGSIZE or -ENOMEM: the caller has one error
 * to handle, and nothing half-written to look at. */
#pragma once

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

#define BUF_INIT(maximum)                                                                          \
    {                                                                                              \
        .data = (char *)buf_empty, .len = 0, .cap = 0, .max = (maximum)                            \
    }
extern const char buf_empty[1];

void buf_init(struct buf *b, size_t max);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);
int buf_append(struct buf *b, const void *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Hands the bytes to the caller (malloc'ed, NUL-terminated, never NULL unless out of memory)
 * and leaves the buffer empty. */
char *buf_detach(struct buf *b, size_t *ret_len);
/* Drops the first n bytes. */
void buf_consume(struct buf *b, size_t n);

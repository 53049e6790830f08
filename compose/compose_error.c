#include "compose/compose_error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

int compose_error_set(struct compose_error *err, const char *file, unsigned line, unsigned col,
                      const char *path, const char *fmt, ...)
{
    if (!err)
        return -EINVAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
    snprintf(err->path, sizeof(err->path), "%s", path ? path : "");
    err->line = line;
    err->col = col;
    int n = 0;
    size_t sz = sizeof(err->text);
    if (err->file[0] && line)
        n = snprintf(err->text, sz, "%s:%u:%u: ", err->file, line, col);
    else if (err->file[0])
        n = snprintf(err->text, sz, "%s: ", err->file);
    if (n < 0 || (size_t)n >= sz)
        n = 0;
    if (err->path[0])
        snprintf(err->text + n, sz - (size_t)n, "%s: %s", err->path, err->msg);
    else
        snprintf(err->text + n, sz - (size_t)n, "%s", err->msg);
    return -EINVAL;
}

#include "compose/compose_load.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Appends text to the path (cut at its size) and returns the old length. */
static size_t path_add(struct compose_loader *l, int n)
{
    size_t old = l->path_len;
    if (n > 0)
        l->path_len = old + (size_t)n < sizeof(l->path) ? old + (size_t)n : sizeof(l->path) - 1;
    return old;
}

size_t compose_load_push(struct compose_loader *l, const char *key)
{
    size_t old = l->path_len;
    return path_add(l, snprintf(l->path + old, sizeof(l->path) - old, "%s%s", old ? "." : "", key));
}

size_t compose_load_push_index(struct compose_loader *l, size_t i)
{
    size_t old = l->path_len;
    return path_add(l, snprintf(l->path + old, sizeof(l->path) - old, "[%zu]", i));
}

void compose_load_pop(struct compose_loader *l, size_t old)
{
    l->path_len = old;
    l->path[old] = '\0';
}

int compose_load_fail_at(struct compose_loader *l, struct compose_pos pos, const char *path,
                         const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return compose_error_set(l->err, l->file, pos.line, pos.col, path ? path : l->path, "%s", msg);
}

int compose_load_fail(struct compose_loader *l, const struct compose_ynode *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return compose_load_fail_at(l, compose_load_pos(n), NULL, "%s", msg);
}

void *compose_load_append(struct compose_loader *l, void **arr, size_t *n, size_t *cap, size_t size)
{
    if (*n == *cap) {
        size_t ncap = *cap * 2 + 4;
        void *nv = compose_arena_grow(l->a, *arr, *n, ncap, size);
        if (!nv)
            return NULL;
        *arr = nv;
        *cap = ncap;
    }
    void *e = (char *)*arr + *n * size;
    memset(e, 0, size);
    (*n)++;
    return e;
}

int compose_load_strv_add(struct compose_loader *l, struct compose_strv *sv, size_t *cap, char *s)
{
    char **e = COMPOSE_LOAD_APPEND(l, sv->v, sv->n, *cap);
    if (!e)
        return -ENOMEM;
    *e = s;
    return 0;
}

/* "file:line:col: path: msg" into a list of the project. */
static int add_line(struct compose_loader *l, struct compose_strv *list, size_t *cap,
                    const struct compose_ynode *n, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    struct compose_pos pos = compose_load_pos(n);
    char *line =
        compose_arena_printf(l->a, "%s:%u:%u: %s: %s", l->file, pos.line, pos.col, l->path, msg);
    if (!line)
        return -ENOMEM;
    return compose_load_strv_add(l, list, cap, line);
}

int compose_load_warn(struct compose_loader *l, const struct compose_ynode *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = add_line(l, &l->p->warnings, &l->warn_cap, n, fmt, ap);
    va_end(ap);
    return r;
}

int compose_load_note(struct compose_loader *l, const struct compose_ynode *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = add_line(l, &l->p->notes, &l->note_cap, n, fmt, ap);
    va_end(ap);
    return r;
}

struct compose_pos compose_load_pos(const struct compose_ynode *n)
{
    return n ? (struct compose_pos){n->line, n->col} : (struct compose_pos){0, 0};
}

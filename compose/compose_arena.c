#include "compose/compose_arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK (64 * 1024)
#define ARENA_ALIGN 16
#define ALIGN_UP(n) (((n) + (ARENA_ALIGN - 1)) & ~(size_t)(ARENA_ALIGN - 1))

struct arena_block {
    struct arena_block *next;
    size_t used;
    size_t size;
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

struct compose_arena {
    struct arena_block *head;
    size_t total;
};

struct compose_arena *compose_arena_new(void)
{
    return calloc(1, sizeof(struct compose_arena));
}

struct compose_arena *compose_arena_free(struct compose_arena *a)
{
    if (!a)
        return NULL;
    struct arena_block *b = a->head;
    while (b) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
    return NULL;
}

void *compose_arena_alloc(struct compose_arena *a, size_t size)
{
    if (size > SIZE_MAX - ARENA_BLOCK)
        return NULL;
    size = ALIGN_UP(size ? size : 1);
    struct arena_block *b = a->head;
    if (!b || b->size - b->used < size) {
        size_t bsize = size > ARENA_BLOCK / 4 ? size : ARENA_BLOCK;
        struct arena_block *n = malloc(sizeof(*n) + bsize);
        if (!n)
            return NULL;
        n->used = 0;
        n->size = bsize;
        if (b && size > ARENA_BLOCK / 4) {
            /* A big allocation gets its own block behind the current one, so the space left
             * in the current block is not wasted. */
            n->next = b->next;
            b->next = n;
            b = n;
        } else {
            n->next = b;
            a->head = n;
            b = n;
        }
    }
    void *p = b->data + b->used;
    b->used += size;
    a->total += size;
    memset(p, 0, size);
    return p;
}

void *compose_arena_array(struct compose_arena *a, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    return compose_arena_alloc(a, n * size);
}

void *compose_arena_grow(struct compose_arena *a, void *old, size_t n, size_t new_n, size_t size)
{
    void *p = compose_arena_array(a, new_n, size);
    if (p && old && n)
        memcpy(p, old, (n < new_n ? n : new_n) * size);
    return p;
}

char *compose_arena_strndup(struct compose_arena *a, const char *s, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *p = compose_arena_alloc(a, len + 1);
    if (!p)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *compose_arena_strdup(struct compose_arena *a, const char *s)
{
    return compose_arena_strndup(a, s, strlen(s));
}

char *compose_arena_printf(struct compose_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = compose_arena_alloc(a, (size_t)n + 1);
    if (!p)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

size_t compose_arena_used(const struct compose_arena *a)
{
    return a->total;
}

/* A bump allocator for the compose model: every node, string and array of one parse lives in
 * one arena and goes away with it, so the model needs no per-field destructor. Allocation
 * failure returns NULL (out of memory); the arena stays usable and is still freed whole. */
#pragma once

#include <stddef.h>

struct compose_arena;

struct compose_arena *compose_arena_new(void);
/* Frees every block; accepts NULL; returns NULL. */
struct compose_arena *compose_arena_free(struct compose_arena *a);

/* Zeroed memory, aligned for any type. */
void *compose_arena_alloc(struct compose_arena *a, size_t size);
/* n elements of size each, zeroed; NULL on overflow. */
void *compose_arena_array(struct compose_arena *a, size_t n, size_t size);
/* Grows an arena array: returns a new array of new_n elements holding the old n elements. */
void *compose_arena_grow(struct compose_arena *a, void *old, size_t n, size_t new_n, size_t size);
char *compose_arena_strndup(struct compose_arena *a, const char *s, size_t len);
char *compose_arena_strdup(struct compose_arena *a, const char *s);
char *compose_arena_printf(struct compose_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Bytes handed out so far (for limits and tests). */
size_t compose_arena_used(const struct compose_arena *a);

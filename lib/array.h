/* A growable array: a plain C array (items, n) with its capacity beside it, grown by doubling.
 * The fields stay the caller's own (a struct keeps `struct x *items; size_t n, cap;`), so
 * arrays keep their natural types and indexing; these helpers only do the growing.
 *
 *   struct item *v = NULL;
 *   size_t n = 0, cap = 0;
 *   struct item *it = ARRAY_PUSH(&v, &n, &cap);   // zeroed, n counted; NULL: out of memory
 *   if (!it) return -ENOMEM;
 *   ...
 *   free(v);
 *
 * On failure nothing changes: the array keeps its items and its capacity. Sizes are checked
 * for overflow; a limit on the number of items that come from outside stays the caller's (the
 * caller knows what is too many). An array built with calloc/malloc elsewhere can be grown too
 * when its capacity is known (cap = n is always safe). */
#pragma once

#include <stddef.h>

/* items_p points at the array pointer (T **). Makes room for extra more items after the first
 * n: afterwards *cap >= n + extra. 0, or -ENOMEM (out of memory, or the size overflows). */
int array_reserve(void *items_p, size_t n, size_t *cap, size_t extra, size_t size);

/* Appends one zeroed item and counts it in *n: returns it, or NULL when out of memory. */
void *array_push(void *items_p, size_t *n, size_t *cap, size_t size);

/* The same with the item size taken from the array's type. */
#define ARRAY_RESERVE(items_p, n, cap, extra)                                                      \
    array_reserve((items_p), (n), (cap), (extra), sizeof(**(items_p)))
#define ARRAY_PUSH(items_p, n_p, cap) array_push((items_p), (n_p), (cap), sizeof(**(items_p)))

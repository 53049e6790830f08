#include "lib/array.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_MIN_CAP 8

/* The array pointer is read and written through memcpy: items_p is a T ** of the caller's
 * type, which must not be accessed as a void **. */
int array_reserve(void *items_p, size_t n, size_t *cap, size_t extra, size_t size)
{
    if (size == 0 || n > SIZE_MAX / size || extra > SIZE_MAX / size - n)
        return -ENOMEM;
    size_t need = n + extra;
    if (need <= *cap)
        return 0;
    size_t ncap = *cap < ARRAY_MIN_CAP ? ARRAY_MIN_CAP : *cap;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (ncap > SIZE_MAX / size)
        ncap = need;
    void *items;
    memcpy(&items, items_p, sizeof(items));
    void *p = realloc(items, ncap * size);
    if (!p)
        return -ENOMEM;
    memcpy(items_p, &p, sizeof(p));
    *cap = ncap;
    return 0;
}

void *array_push(void *items_p, size_t *n, size_t *cap, size_t size)
{
    if (array_reserve(items_p, *n, cap, 1, size) < 0)
        return NULL;
    char *items;
    memcpy(&items, items_p, sizeof(items));
    char *it = items + *n * size;
    memset(it, 0, size);
    (*n)++;
    return it;
}

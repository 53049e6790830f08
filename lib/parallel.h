/* parallel_for: a loop whose iterations run on several cores at once, for pure work (no store,
 * no loop state) that one caller hands out in a batch and needs back whole before it goes on.
 *
 *   static void compile_one(void *ud, size_t i) { ... items[i] ... }
 *   parallel_for(n, parallel_threads(4), compile_one, items);
 *
 * fn(ud, i) runs once for every i < n: on the calling thread and on up to threads - 1 helper
 * threads made for this call and joined before it returns. Each thread claims the next index
 * when it is done with its last one, so uneven items spread by themselves. With n < 2 or
 * threads < 2, or when no helper can start, everything runs on the caller's thread: the result
 * is the same, only slower. Helpers block every signal. fn must be safe to run on any thread
 * and on different i at the same time. */
#pragma once

#include <stddef.h>

#define PARALLEL_THREADS_MAX 8u

/* The threads worth using: the cores online, at most max (and PARALLEL_THREADS_MAX), at
 * least 1. */
unsigned parallel_threads(unsigned max);

void parallel_for(size_t n, unsigned threads, void (*fn)(void *ud, size_t i), void *ud);

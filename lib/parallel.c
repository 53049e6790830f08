#include "lib/parallel.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

struct job {
    atomic_size_t next;
    size_t n;
    void (*fn)(void *ud, size_t i);
    void *ud;
};

unsigned parallel_threads(unsigned max)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned t = cpus > 0 ? (unsigned)cpus : 1;
    if (max && t > max)
        t = max;
    return t > PARALLEL_THREADS_MAX ? PARALLEL_THREADS_MAX : t;
}

static void *work(void *arg)
{
    struct job *j = arg;
    for (size_t i; (i = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed)) < j->n;)
        j->fn(j->ud, i);
    return NULL;
}

void parallel_for(size_t n, unsigned threads, void (*fn)(void *ud, size_t i), void *ud)
{
    struct job j = {.n = n, .fn = fn, .ud = ud};
    atomic_init(&j.next, 0);
    if (threads > PARALLEL_THREADS_MAX)
        threads = PARALLEL_THREADS_MAX;
    if (threads > n)
        threads = (unsigned)n;
    pthread_t helpers[PARALLEL_THREADS_MAX];
    unsigned started = 0;
    if (threads > 1) {
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        while (started < threads - 1 && pthread_create(&helpers[started], NULL, work, &j) == 0)
            started++;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    work(&j);
    /* pthread_join orders the helpers' writes before the caller's reads. */
    for (unsigned i = 0; i < started; i++)
        pthread_join(helpers[i], NULL);
}

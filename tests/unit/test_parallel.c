/* lib/parallel: every index runs exactly once whatever the threads and the count, the helpers
 * block every signal, and the caller's own thread takes part. */
#include "support/testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "lib/parallel.h"

struct run {
    atomic_int *seen;
    pthread_t caller;
    atomic_int on_caller, on_helpers, helper_signals_open;
};

static void visit(void *ud, size_t i)
{
    struct run *r = ud;
    atomic_fetch_add(&r->seen[i], 1);
    if (pthread_equal(pthread_self(), r->caller)) {
        atomic_fetch_add(&r->on_caller, 1);
        return;
    }
    atomic_fetch_add(&r->on_helpers, 1);
    sigset_t mask;
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    if (!sigismember(&mask, SIGTERM) || !sigismember(&mask, SIGINT) || !sigismember(&mask, SIGHUP))
        atomic_fetch_add(&r->helper_signals_open, 1);
    /* a little work, so that the helpers get some of it */
    unsigned x = 0;
    for (unsigned k = 0; k < 2000; k++)
        x += k;
    __asm__ volatile("" : : "r"(x));
}

static void test_every_index_once(void **state)
{
    const size_t counts[] = {0, 1, 2, 3, 7, 64, 5000};
    const unsigned threads[] = {0, 1, 2, 3, 8, 100};
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++)
        for (size_t t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
            size_t n = counts[c];
            struct run r = {.caller = pthread_self()};
            r.seen = calloc(n + 1, sizeof(*r.seen));
            assert_non_null(r.seen);
            parallel_for(n, threads[t], visit, &r);
            for (size_t i = 0; i < n; i++)
                if (atomic_load(&r.seen[i]) != 1)
                    fail_msg("n %zu, threads %u: index %zu ran %d times", n, threads[t], i,
                             atomic_load(&r.seen[i]));
            assert_int_equal(atomic_load(&r.seen[n]), 0);
            assert_int_equal(atomic_load(&r.on_caller) + atomic_load(&r.on_helpers), (int)n);
            assert_int_equal(atomic_load(&r.helper_signals_open), 0);
            if (threads[t] < 2 || n < 2)
                assert_int_equal(atomic_load(&r.on_helpers), 0); /* no thread made for it */
            free(r.seen);
        }
}

static void test_threads(void **state)
{
    assert_int_equal(parallel_threads(1), 1);
    unsigned all = parallel_threads(0);
    assert_true(all >= 1 && all <= PARALLEL_THREADS_MAX);
    assert_true(parallel_threads(2) <= 2);
    assert_true(parallel_threads(1000) <= PARALLEL_THREADS_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_index_once),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#include "support/testutil.h"

#include <stdint.h>

#include "lib/backoff.h"

static void test_reconcile_policy_doubles_to_a_minute(void **state)
{
    struct backoff_policy p = BACKOFF_POLICY_RECONCILE;
    /* rnd 0.5: no spread */
    assert_int_equal(backoff_delay_ms(&p, 1, 0.5), 1000);
    assert_int_equal(backoff_delay_ms(&p, 2, 0.5), 2000);
    assert_int_equal(backoff_delay_ms(&p, 3, 0.5), 4000);
    assert_int_equal(backoff_delay_ms(&p, 6, 0.5), 32000);
    assert_int_equal(backoff_delay_ms(&p, 7, 0.5), 60000);
    assert_int_equal(backoff_delay_ms(&p, 1000, 0.5), 60000);
    assert_int_equal(backoff_delay_ms(&p, UINT32_MAX, 0.5), 60000);
    assert_int_equal(backoff_delay_ms(&p, 0, 0.5), 1000); /* 0 is taken as the first */
    /* ±20 %: the ends of the spread */
    assert_int_equal(backoff_delay_ms(&p, 1, 0.0), 800);
    assert_in_range(backoff_delay_ms(&p, 1, 0.999999), 1199, 1200);
    assert_int_equal(backoff_delay_ms(&p, 50, 0.0), 48000);
    assert_in_range(backoff_delay_ms(&p, 50, 0.999999), 71999, 72000);
}

static void test_grpc_policy(void **state)
{
    struct backoff_policy p = BACKOFF_POLICY_GRPC;
    assert_int_equal(backoff_delay_ms(&p, 1, 0.5), 1000);
    assert_int_equal(backoff_delay_ms(&p, 2, 0.5), 1600);
    assert_int_equal(backoff_delay_ms(&p, 3, 0.5), 2560);
    assert_int_equal(backoff_delay_ms(&p, 4, 0.5), 4096);
    /* 1.6^11 = 176: capped at 120 s */
    assert_int_equal(backoff_delay_ms(&p, 12, 0.5), 120000);
    assert_int_equal(backoff_delay_ms(&p, 12, 0.0), 96000);
}

static void test_odd_policies_stay_sane(void **state)
{
    struct backoff_policy shrink = {.initial_ms = 1000, .multiplier = 0.5, .max_ms = 60000};
    assert_int_equal(backoff_delay_ms(&shrink, 5, 0.5), 1000); /* never shrinks */
    struct backoff_policy wild = {
        .initial_ms = 1000, .multiplier = 2, .max_ms = 8000, .jitter = 5.0};
    uint64_t d = backoff_delay_ms(&wild, 4, 0.0); /* jitter clamped below 1: never 0 or less */
    assert_true(d > 0 && d <= 8000);
    struct backoff_policy fixed = {.initial_ms = 500, .multiplier = 1, .max_ms = 500};
    assert_int_equal(backoff_delay_ms(&fixed, 9, 0.5), 500);
    /* a random number out of range means "no spread" */
    struct backoff_policy p = BACKOFF_POLICY_RECONCILE;
    assert_int_equal(backoff_delay_ms(&p, 1, 1.5), 1000);
    assert_int_equal(backoff_delay_ms(&p, 1, -1), 1000);
}

static void test_random_is_uniform_enough(void **state)
{
    uint64_t s = 42;
    unsigned buckets[10] = {0};
    for (int i = 0; i < 100000; i++) {
        double r = backoff_random(&s);
        assert_true(r >= 0.0 && r < 1.0);
        buckets[(int)(r * 10)]++;
    }
    for (int i = 0; i < 10; i++)
        assert_in_range(buckets[i], 9000, 11000);
    uint64_t a = 7, b = 7;
    assert_true(backoff_random(&a) == backoff_random(&b)); /* reproducible */
    uint64_t z = 0;
    double r = backoff_random(&z); /* a zero state is seeded */
    assert_true(z != 0 && r >= 0.0 && r < 1.0);
}

static void test_stateful_backoff(void **state)
{
    struct backoff b;
    struct backoff_policy p = BACKOFF_POLICY_RECONCILE;
    backoff_init(&b, &p, 1);
    uint64_t lo[] = {800, 1600, 3200, 6400}, hi[] = {1200, 2400, 4800, 9600};
    for (int i = 0; i < 4; i++) {
        uint64_t d = backoff_fail(&b);
        assert_in_range(d, lo[i], hi[i]);
    }
    assert_int_equal(b.failures, 4);
    backoff_reset(&b);
    assert_in_range(backoff_fail(&b), 800, 1200);
    /* jitter spreads: many draws of the first delay are not all alike */
    uint64_t first = backoff_delay_ms(&p, 1, backoff_random(&b.rng));
    bool differs = false;
    for (int i = 0; i < 20 && !differs; i++)
        differs = backoff_delay_ms(&p, 1, backoff_random(&b.rng)) != first;
    assert_true(differs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reconcile_policy_doubles_to_a_minute),
        cmocka_unit_test(test_grpc_policy),
        cmocka_unit_test(test_odd_policies_stay_sane),
        cmocka_unit_test(test_random_is_uniform_enough),
        cmocka_unit_test(test_stateful_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

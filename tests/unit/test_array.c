#include "support/testutil.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"

struct item {
    int a;
    char name[12];
};

static void test_push_grows_and_zeroes(void **state)
{
    struct item *v = NULL;
    size_t n = 0, cap = 0;
    for (int i = 0; i < 1000; i++) {
        struct item *it = ARRAY_PUSH(&v, &n, &cap);
        assert_non_null(it);
        assert_int_equal(it->a, 0);
        assert_int_equal(it->name[0], '\0');
        assert_ptr_equal(it, &v[i]);
        it->a = i;
        assert_int_equal(n, (size_t)i + 1);
        assert_true(cap >= n);
    }
    for (int i = 0; i < 1000; i++)
        assert_int_equal(v[i].a, i);
    /* doubling: 8, 16, ... 1024 */
    assert_int_equal(cap, 1024);
    free(v);
}

static void test_push_after_removal_zeroes_reused_slot(void **state)
{
    int *v = NULL;
    size_t n = 0, cap = 0;
    for (int i = 0; i < 3; i++)
        *(int *)ARRAY_PUSH(&v, &n, &cap) = 7;
    n--; /* drop the last one, as a swap-remove does */
    int *it = ARRAY_PUSH(&v, &n, &cap);
    assert_int_equal(*it, 0);
    assert_int_equal(n, 3);
    free(v);
}

static void test_reserve(void **state)
{
    char **v = NULL;
    size_t n = 0, cap = 0;
    assert_int_equal(ARRAY_RESERVE(&v, n, &cap, 0), 0);
    assert_null(v); /* nothing asked, nothing allocated */
    assert_int_equal(ARRAY_RESERVE(&v, n, &cap, 100), 0);
    assert_non_null(v);
    assert_true(cap >= 100);
    size_t was = cap;
    char **before = v;
    assert_int_equal(ARRAY_RESERVE(&v, 50, &cap, 50), 0); /* fits: no move */
    assert_int_equal(cap, was);
    assert_ptr_equal(v, before);
    assert_int_equal(ARRAY_RESERVE(&v, 100, &cap, 1), 0);
    assert_true(cap >= 101);
    free(v);
}

static void test_array_from_calloc(void **state)
{
    /* An array made elsewhere with its count as its capacity grows the same way. */
    size_t n = 5, cap = 5;
    long *v = calloc(n, sizeof(*v));
    assert_non_null(v);
    v[4] = 44;
    long *it = ARRAY_PUSH(&v, &n, &cap);
    assert_non_null(it);
    assert_int_equal(v[4], 44);
    assert_int_equal(n, 6);
    free(v);
}

static void test_overflow_is_refused_and_changes_nothing(void **state)
{
    struct item *v = NULL;
    size_t n = 0, cap = 0;
    assert_non_null(ARRAY_PUSH(&v, &n, &cap));
    struct item *before = v;
    size_t cap_before = cap;
    assert_int_equal(ARRAY_RESERVE(&v, n, &cap, SIZE_MAX / sizeof(*v)), -ENOMEM);
    assert_int_equal(ARRAY_RESERVE(&v, SIZE_MAX, &cap, 1), -ENOMEM);
    assert_ptr_equal(v, before);
    assert_int_equal(cap, cap_before);
    assert_int_equal(n, 1);
    /* a push whose size overflows */
    size_t big_n = SIZE_MAX / sizeof(*v), big_cap = big_n;
    assert_null(ARRAY_PUSH(&v, &big_n, &big_cap));
    assert_int_equal(big_n, SIZE_MAX / sizeof(*v));
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_grows_and_zeroes),
        cmocka_unit_test(test_push_after_removal_zeroes_reused_slot),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_array_from_calloc),
        cmocka_unit_test(test_overflow_is_refused_and_changes_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#include "support/testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"

static void test_append_and_printf(void **state)
{
    struct buf b = BUF_INIT(1024);
    assert_string_equal(b.data, "");
    assert_int_equal(buf_puts(&b, "hello"), 0);
    assert_int_equal(buf_printf(&b, " %d", 42), 0);
    assert_string_equal(b.data, "hello 42");
    assert_int_equal(b.len, 8);
    buf_consume(&b, 6);
    assert_string_equal(b.data, "42");
    buf_release(&b);
    assert_string_equal(b.data, "");
}

static void test_limit_frees(void **state)
{
    struct buf b = BUF_INIT(8);
    assert_int_equal(buf_puts(&b, "12345678"), 0);
    assert_int_equal(buf_putc(&b, '9'), -EMSGSIZE);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
}

static void test_detach(void **state)
{
    struct buf b = BUF_INIT(64);
    size_t n;
    char *s = buf_detach(&b, &n);
    assert_non_null(s);
    assert_int_equal(n, 0);
    free(s);
    buf_puts(&b, "abc");
    s = buf_detach(&b, &n);
    assert_string_equal(s, "abc");
    assert_int_equal(n, 3);
    assert_int_equal(b.len, 0);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_printf),
        cmocka_unit_test(test_limit_frees),
        cmocka_unit_test(test_detach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

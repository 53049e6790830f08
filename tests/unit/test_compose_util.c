#include "support/testutil.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compose/compose_arena.h"
#include "compose/compose_util.h"

static void test_decimal(void **state)
{
    int64_t v;
    assert_int_equal(compose_util_decimal("42", &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(compose_util_decimal("-7", &v), 0);
    assert_int_equal(v, -7);
    assert_int_equal(compose_util_decimal("+3", &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(compose_util_decimal("9223372036854775807", &v), 0);
    assert_int_equal(compose_util_decimal("-9223372036854775808", &v), 0);
    assert_true(v == INT64_MIN);
    assert_int_equal(compose_util_decimal("9223372036854775808", &v), -EINVAL);
    assert_int_equal(compose_util_decimal("", &v), -EINVAL);
    assert_int_equal(compose_util_decimal("-", &v), -EINVAL);
    assert_int_equal(compose_util_decimal("1.5", &v), -EINVAL);
    assert_int_equal(compose_util_decimal("0x10", &v), -EINVAL);
    assert_int_equal(compose_util_decimal(" 1", &v), -EINVAL);
}

static int64_t dur(const char *s)
{
    int64_t v = -1;
    assert_int_equal(compose_util_duration(s, &v), 0);
    return v;
}

static void test_duration(void **state)
{
    assert_true(dur("0") == 0);
    assert_true(dur("10s") == 10000000000LL);
    assert_true(dur("1m30s") == 90000000000LL);
    assert_true(dur("1h2m3s") == 3723000000000LL);
    assert_true(dur("1.5s") == 1500000000LL);
    assert_true(dur(".5s") == 500000000LL);
    assert_true(dur("300ms") == 300000000LL);
    assert_true(dur("2us") == 2000LL);
    assert_true(dur("2\xc2\xb5s") == 2000LL);
    assert_true(dur("7ns") == 7LL);
    assert_true(dur("-1m") == -60000000000LL);
    assert_true(dur("+2h") == 7200000000000LL);
    assert_true(dur("1h1h") == 7200000000000LL);
    int64_t v;
    const char *bad[] = {
        "", "10", "s", "1x", "1.s.", "1 s", "-", ".s", "1e3s", "99999999999999999999h", "3000000h"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (compose_util_duration(bad[i], &v) != -EINVAL)
            fail_msg("\"%s\" should not parse", bad[i]);
}

static void test_ram_bytes(void **state)
{
    int64_t v;
    assert_int_equal(compose_util_ram_bytes("512", &v), 0);
    assert_int_equal(v, 512);
    assert_int_equal(compose_util_ram_bytes("64M", &v), 0);
    assert_int_equal(v, 64 << 20);
    assert_int_equal(compose_util_ram_bytes("64m", &v), 0);
    assert_int_equal(v, 64 << 20);
    assert_int_equal(compose_util_ram_bytes("1.5G", &v), 0);
    assert_int_equal(v, 1610612736);
    assert_int_equal(compose_util_ram_bytes("2 kb", &v), 0);
    assert_int_equal(v, 2048);
    assert_int_equal(compose_util_ram_bytes("1KiB", &v), 0);
    assert_int_equal(v, 1024);
    assert_int_equal(compose_util_ram_bytes("1t", &v), 0);
    assert_true(v == 1099511627776LL);
    const char *bad[] = {"", "M", "1.2.3M", "1X", "-1", "1 MBB", "1  M", "1e3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (compose_util_ram_bytes(bad[i], &v) == 0)
            fail_msg("\"%s\" should not parse", bad[i]);
}

static void test_nano_cpus(void **state)
{
    int64_t v;
    assert_int_equal(compose_util_nano_cpus("0.5", &v), 0);
    assert_int_equal(v, 500000000);
    assert_int_equal(compose_util_nano_cpus("2", &v), 0);
    assert_true(v == 2000000000LL);
    assert_int_equal(compose_util_nano_cpus("0.000000001", &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(compose_util_nano_cpus("1e-3", &v), 0);
    assert_int_equal(v, 1000000);
    assert_int_equal(compose_util_nano_cpus("3/2", &v), 0);
    assert_int_equal(v, 1500000000);
    assert_int_equal(compose_util_nano_cpus(".25", &v), 0);
    assert_int_equal(v, 250000000);
    assert_int_equal(compose_util_nano_cpus("0.0000000001", &v), -ERANGE);
    assert_int_equal(compose_util_nano_cpus("1/3", &v), -ERANGE);
    assert_int_equal(compose_util_nano_cpus("lots", &v), -EINVAL);
    assert_int_equal(compose_util_nano_cpus("-1", &v), -EINVAL);
    assert_int_equal(compose_util_nano_cpus("", &v), -EINVAL);
    assert_int_equal(compose_util_nano_cpus("1/0", &v), -EINVAL);
}

static void split(const char *s, const char *const *want, size_t n)
{
    struct compose_arena *a = compose_arena_new();
    struct compose_strv sv;
    const char *msg = NULL;
    assert_int_equal(compose_util_shlex(a, s, &sv, &msg), 0);
    assert_int_equal(sv.n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(sv.v[i], want[i]);
    compose_arena_free(a);
}

static void test_shlex(void **state)
{
    split("", NULL, 0);
    split("   ", NULL, 0);
    split("sleep 10", (const char *[]){"sleep", "10"}, 2);
    split("  a\tb\nc  ", (const char *[]){"a", "b", "c"}, 3);
    split("sh -c 'echo \"hi\" $HOME'", (const char *[]){"sh", "-c", "echo \"hi\" $HOME"}, 3);
    split("\"a \\\"b\\\" \\x\"", (const char *[]){"a \"b\" x"}, 1);
    split("a\\ b c", (const char *[]){"a b", "c"}, 2);
    split("x'y'\"z\"", (const char *[]){"xyz"}, 1);
    split("a '' b", (const char *[]){"a", "", "b"}, 3);
    split("# all comment", NULL, 0);
    split("a #comment\nb", (const char *[]){"a", "b"}, 2);
    split("a#b", (const char *[]){"a#b"}, 1);
    struct compose_arena *a = compose_arena_new();
    struct compose_strv sv;
    const char *msg = NULL;
    assert_int_equal(compose_util_shlex(a, "'open", &sv, &msg), -EINVAL);
    assert_string_equal(msg, "EOF found when expecting closing quote");
    assert_int_equal(compose_util_shlex(a, "x\\", &sv, &msg), -EINVAL);
    assert_string_equal(msg, "EOF found after escape character");
    compose_arena_free(a);
}

static void fmt(double v, const char *want)
{
    char buf[64];
    compose_util_format_float(v, buf, sizeof(buf));
    assert_string_equal(buf, want);
}

static void test_format_float(void **state)
{
    fmt(0, "0");
    fmt(1, "1");
    fmt(2.5, "2.5");
    fmt(-0.25, "-0.25");
    fmt(0.1, "0.1");
    fmt(123456, "123456");
    fmt(1e6, "1e+06");
    fmt(1.5e6, "1.5e+06");
    fmt(1234567, "1.234567e+06");
    fmt(0.0001, "0.0001");
    fmt(0.00001, "1e-05");
    fmt(1e21, "1e+21");
    fmt(1.0 / 3, "0.3333333333333333");
    fmt(INFINITY, "+Inf");
    fmt(-INFINITY, "-Inf");
    fmt(NAN, "NaN");
}

static void image(const char *in, const char *want)
{
    char *out = NULL;
    int r = compose_util_image_with_tag(in, &out);
    if (!want) {
        assert_int_equal(r, -EINVAL);
        return;
    }
    assert_int_equal(r, 0);
    assert_string_equal(out, want);
    free(out);
}

static void test_image(void **state)
{
    image("busybox", "busybox:latest");
    image("busybox:1.36", "busybox:1.36");
    image("library/busybox", "busybox:latest");
    image("docker.io/library/busybox:1", "busybox:1");
    image("index.docker.io/library/busybox", "busybox:latest");
    image("docker.io/foo/bar", "foo/bar:latest");
    image("axion-test/busybox:1", "axion-test/busybox:1");
    image("registry.example.com:5000/team/app", "registry.example.com:5000/team/app:latest");
    image("localhost/app:dev", "localhost/app:dev");
    image("localhost:5000/app", "localhost:5000/app:latest");
    image("a__b/c-d---e.f:tag_1.2-x", "a__b/c-d---e.f:tag_1.2-x");
    image("app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
          "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    image("app:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
          "app:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    image("", NULL);
    image("Busybox", NULL);
    image("busybox:", NULL);
    image("busy box", NULL);
    image("a/-b", NULL);
    image("a..b", NULL);
    image("app@sha256:123", NULL);
    image("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", NULL);
    image("busybox:-tag", NULL);
}

static void test_arena(void **state)
{
    struct compose_arena *a = compose_arena_new();
    char *s = compose_arena_strdup(a, "hello");
    assert_string_equal(s, "hello");
    char *big = compose_arena_alloc(a, 1 << 20);
    assert_non_null(big);
    memset(big, 'x', 1 << 20);
    int *arr = compose_arena_array(a, 4, sizeof(int));
    arr[3] = 7;
    int *grown = compose_arena_grow(a, arr, 4, 8, sizeof(int));
    assert_int_equal(grown[3], 7);
    assert_int_equal(grown[7], 0);
    assert_null(compose_arena_array(a, SIZE_MAX / 2, 4));
    assert_string_equal(compose_arena_printf(a, "%d-%s", 3, "x"), "3-x");
    assert_true(compose_arena_used(a) >= (1 << 20));
    assert_string_equal(s, "hello");
    assert_null(compose_arena_free(a));
    assert_null(compose_arena_free(NULL));
}

static void test_path_join(void **state)
{
    struct compose_arena *a = compose_arena_new();
    assert_non_null(a);
    static const char *const cases[][3] = {
        {"/home/u/p", "./prometheus", "/home/u/p/prometheus"},
        {"/home/u/p", "prometheus/", "/home/u/p/prometheus"},
        {"/home/u/p/", "../x", "/home/u/x"},
        {"/home/u/p", ".", "/home/u/p"},
        {"/home/u/p", "./a//b/./c/..", "/home/u/p/a/b"},
        {"/a", "../../../x", "/x"},
        {"/", "..", "/"},
        {"/a", "~/x", "/a/~/x"},
        {"/a", "C:data", "/a/C:data"},
        {"", "a/../..", ".."},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = compose_util_path_join(a, cases[i][0], cases[i][1]);
        assert_non_null(got);
        if (strcmp(got, cases[i][2]) != 0)
            fail_msg("join(%s, %s) = %s, want %s", cases[i][0], cases[i][1], got, cases[i][2]);
    }
    compose_arena_free(a);
}

static void test_windows_abs(void **state)
{
    assert_true(compose_util_windows_abs("C:\\data"));
    assert_true(compose_util_windows_abs("c:/data"));
    assert_true(compose_util_windows_abs("\\\\server\\share\\x"));
    assert_false(compose_util_windows_abs("C:data"));
    assert_false(compose_util_windows_abs("C:"));
    assert_false(compose_util_windows_abs("./data"));
    assert_false(compose_util_windows_abs("/data"));
    assert_false(compose_util_windows_abs("\\\\.\\pipe"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decimal),     cmocka_unit_test(test_duration),
        cmocka_unit_test(test_ram_bytes),   cmocka_unit_test(test_nano_cpus),
        cmocka_unit_test(test_shlex),       cmocka_unit_test(test_path_join),
        cmocka_unit_test(test_windows_abs), cmocka_unit_test(test_format_float),
        cmocka_unit_test(test_image),       cmocka_unit_test(test_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

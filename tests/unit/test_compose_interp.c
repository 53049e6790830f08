#include "support/testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compose/compose_interp.h"

static const struct compose_var var_list[] = {
    {"NAME", "world"}, {"EMPTY", ""}, {"lower_case", "lc"}, {"_U1", "u1"}, {"NAME", "again"},
};
static const struct compose_vars vars = {var_list, 4};

static char *expand(const char *in, int *ret_r, char *msg, size_t msglen)
{
    char *out = NULL;
    *ret_r = compose_interp_expand(in, strlen(in), &vars, 1 << 20, &out, NULL, msg, msglen);
    return out;
}

static void check(const char *in, const char *want)
{
    char msg[512] = "";
    int r;
    char *out = expand(in, &r, msg, sizeof(msg));
    if (r != 0)
        fail_msg("%s: %s", in, msg);
    assert_string_equal(out, want);
    free(out);
}

static void check_error(const char *in, const char *want_msg)
{
    char msg[512] = "";
    int r;
    char *out = expand(in, &r, msg, sizeof(msg));
    assert_null(out);
    assert_int_equal(r, -EINVAL);
    if (!strstr(msg, want_msg))
        fail_msg("%s: message \"%s\" lacks \"%s\"", in, msg, want_msg);
}

static void test_plain(void **state)
{
    check("", "");
    check("no variables", "no variables");
    check("$NAME", "world");
    check("${NAME}", "world");
    check("hello $NAME!", "hello world!");
    check("a${NAME}b", "aworldb");
    check("$lower_case/${_U1}", "lc/u1");
    check("$UNSET", "");
    check("${UNSET}x", "x");
    check("$NAME$NAME", "worldworld");
    check("$NAMEX", ""); /* the longest name */
    check("$NAME.x", "world.x");
}

static void test_escape(void **state)
{
    check("$$", "$");
    check("$$NAME", "$NAME");
    check("$${NAME}", "${NAME}");
    check("a $$ b $$$NAME", "a $ b $world");
}

static void test_defaults(void **state)
{
    check("${NAME:-d}", "world");
    check("${EMPTY:-d}", "d");
    check("${UNSET:-d}", "d");
    check("${NAME-d}", "world");
    check("${EMPTY-d}", "");
    check("${UNSET-d}", "d");
    check("${UNSET:-}", "");
    check("${UNSET:-a b:c/d}", "a b:c/d");
    check("${UNSET:-$NAME}", "$NAME"); /* defaults are not interpolated again */
    /* docker's unbraced form takes an operator too, up to the end or a } */
    check("$UNSET:-dflt", "dflt");
    check("$UNSET-x}y", "x}y");
    check("$NAME-suffix", "world");
}

static void test_required(void **state)
{
    check("${NAME:?need it}", "world");
    check("${NAME?need it}", "world");
    check("${EMPTY?need it}", "");
    check_error("${EMPTY:?need it}", "required variable EMPTY is missing a value: need it");
    check_error("${UNSET?must be set}", "required variable UNSET is missing a value: must be set");
    check_error("${UNSET:?}", "required variable UNSET is missing a value: ");
}

static void test_invalid(void **state)
{
    check_error("$", "invalid interpolation format");
    check_error("a $ b", "invalid interpolation format");
    check_error("${", "invalid interpolation format");
    check_error("${}", "invalid interpolation format");
    check_error("${NAME", "invalid interpolation format");
    check_error("${1X}", "invalid interpolation format");
    check_error("$1", "invalid interpolation format");
    check_error("${NAME:x}", "invalid interpolation format");
    check_error("${NAME/a/b}", "invalid interpolation format");
    check_error("${UNSET:-no close", "invalid interpolation format");
}

static void test_last_wins_and_limit(void **state)
{
    struct compose_vars all = {var_list, 5};
    char *out = NULL, msg[256];
    assert_int_equal(compose_interp_expand("$NAME", 5, &all, 100, &out, NULL, msg, sizeof(msg)), 0);
    assert_string_equal(out, "again");
    free(out);
    out = NULL;
    assert_int_equal(
        compose_interp_expand("$NAME$NAME$NAME", 15, &vars, 12, &out, NULL, msg, sizeof(msg)),
        -E2BIG);
    assert_null(out);
    assert_true(compose_interp_needed("a$b", 3));
    assert_false(compose_interp_needed("abc", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),    cmocka_unit_test(test_escape),
        cmocka_unit_test(test_defaults), cmocka_unit_test(test_required),
        cmocka_unit_test(test_invalid),  cmocka_unit_test(test_last_wins_and_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

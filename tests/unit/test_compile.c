#include "support/testutil.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "compose/compile.h"

static void test_compiles_and_reports_files(void **state)
{
    const char *y = "services:\n"
                    "  web: {image: x, secrets: [pw], env_file: [./web.env]}\n"
                    "secrets: {pw: {file: ./pw.txt}}\n";
    const struct spec_file attached[] = {
        {"pw.txt", "s3cr3t", 6},
        {"web.env", "A=1\n", 4},
        {"unused", "x", 1},
    };
    struct compile_file_array arr = {attached, 3};
    struct compile_input in = {
        .stack = "st",
        .text = y,
        .len = strlen(y),
        .files = {compile_files_from_array, &arr},
    };
    struct compile_result *res = NULL;
    struct compose_error err;
    int r = compile_stack(&in, &res, &err);
    if (r < 0)
        fail_msg("%s", err.text);
    assert_int_equal(res->n_files_used, 2);
    assert_string_equal(res->files_used[0], "./pw.txt");
    assert_string_equal(res->files_used[1], "./web.env");
    assert_non_null(spec_stack_find(res->spec, SPEC_SERVICE, "st_web"));
    assert_non_null(res->project);

    /* spec_only: the same specs, the same files and notes, no model */
    in.spec_only = true;
    struct compile_result *lean = NULL;
    assert_int_equal(compile_stack(&in, &lean, &err), 0);
    assert_null(lean->project);
    assert_int_equal(lean->spec->n_objects, res->spec->n_objects);
    for (size_t i = 0; i < res->spec->n_objects; i++) {
        assert_string_equal(lean->spec->objects[i].name, res->spec->objects[i].name);
        assert_string_equal(lean->spec->objects[i].hash, res->spec->objects[i].hash);
        assert_true(json_equal(lean->spec->objects[i].spec, res->spec->objects[i].spec));
    }
    assert_int_equal(lean->n_files_used, res->n_files_used);
    compile_result_free(lean);
    compile_result_free(res);
}

static void test_missing_file_and_policy(void **state)
{
    const char *y = "services: {web: {image: x, secrets: [pw]}}\n"
                    "secrets: {pw: {file: ./pw.txt}}\n";
    struct compile_input in = {.stack = "st", .filename = "m.yml", .text = y, .len = strlen(y)};
    struct compile_result *res = NULL;
    struct compose_error err;
    assert_int_equal(compile_stack(&in, &res, &err), -EINVAL);
    assert_null(res);
    assert_non_null(strstr(err.text, "pw.txt"));

    const char *p = "services: {web: {image: x, privileged: true}}\n";
    struct policy_rules deny = {0};
    struct compile_input in2 = {
        .stack = "st", .filename = "m.yml", .text = p, .len = strlen(p), .policy = &deny};
    assert_int_equal(compile_stack(&in2, &res, &err), -EPERM);
    assert_non_null(strstr(err.text, "m.yml:1:"));
}

static void test_file_rule(void **state)
{
    assert_true(compile_file_matches("./a.txt", "a.txt"));
    assert_true(compile_file_matches("a.txt", ".//a.txt"));
    assert_false(compile_file_matches("a.txt", "/prod/a.txt"));
    assert_false(compile_file_matches("dir/a.txt", "a.txt"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compiles_and_reports_files),
        cmocka_unit_test(test_missing_file_and_policy),
        cmocka_unit_test(test_file_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

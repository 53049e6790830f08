/* Bind sources on this node (issue 9, item 8): a source with a directory (the CLI) resolves
 * "./x", "x" in the long syntax and "~/x" as `docker stack deploy` does, says so in the notes,
 * and the policy sees the absolute path; a source without one (remote) refuses them with the
 * message it always had. */
#include "support/testutil.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "compose/compile.h"

static const char *prom = "services:\n"
                          "  prom:\n"
                          "    image: x\n"
                          "    volumes:\n"
                          "      - ./prometheus:/etc/prometheus\n"
                          "      - data:/data\n"
                          "volumes: {data: {}}\n";

static int compile(const char *y, const char *base, const char *home, const struct compose_var *v,
                   size_t nv, const struct policy_rules *pol, struct compile_result **res,
                   struct compose_error *err)
{
    struct compile_input in = {.stack = "st",
                               .filename = "m.yml",
                               .text = y,
                               .len = strlen(y),
                               .vars = v,
                               .n_vars = nv,
                               .base_dir = base,
                               .home_dir = home,
                               .policy = pol};
    *res = NULL;
    return compile_stack(&in, res, err);
}

/* The Source of the service's mount i in the Engine body. */
static const char *body_source(const struct compile_result *res, size_t i)
{
    const struct spec_object *o = spec_stack_find(res->spec, SPEC_SERVICE, "st_prom");
    assert_non_null(o);
    json_t *mounts = json_object_get(
        json_object_get(json_object_get(o->spec, "TaskTemplate"), "ContainerSpec"), "Mounts");
    return json_string_value(json_object_get(json_array_get(mounts, i), "Source"));
}

static void test_relative_bind_with_base_dir(void **state)
{
    struct compile_result *res;
    struct compose_error err;
    if (compile(prom, "/home/u/p", NULL, NULL, 0, NULL, &res, &err) < 0)
        fail_msg("%s", err.text);
    const struct compose_service *s = &res->project->services[0];
    assert_string_equal(s->mounts[0].type, "bind");
    assert_string_equal(s->mounts[0].source, "/home/u/p/prometheus");
    /* "data:/data" is a named volume, not a path: untouched */
    assert_string_equal(s->mounts[1].type, "volume");
    assert_string_equal(s->mounts[1].source, "data");
    assert_string_equal(body_source(res, 0), "/home/u/p/prometheus");
    assert_int_equal(res->n_notes, 1);
    assert_string_equal(res->notes[0], "m.yml:5:9: services.prom.volumes[0]: ./prometheus "
                                       "resolved against /home/u/p: /home/u/p/prometheus");
    compile_result_free(res);
}

static void test_relative_bind_refused_without_base_dir(void **state)
{
    struct compile_result *res;
    struct compose_error err;
    assert_int_equal(compile(prom, NULL, "/home/u", NULL, 0, NULL, &res, &err), -EINVAL);
    assert_null(res);
    assert_string_equal(err.text, "m.yml:5:9: services.prom.volumes[0]: bind source "
                                  "\"./prometheus\" must be an absolute path (a manifest has no "
                                  "working directory on the node)");
}

static void test_long_syntax_and_cleaning(void **state)
{
    const char *y = "services:\n"
                    "  prom:\n"
                    "    image: x\n"
                    "    volumes:\n"
                    "      - {type: bind, source: data, target: /a}\n"
                    "      - ../shared:/b\n"
                    "      - ./a/./b/../c/:/c\n"
                    "      - /abs/../kept:/d\n"
                    "      - .:/e\n";
    struct compile_result *res;
    struct compose_error err;
    if (compile(y, "/home/u/p/", NULL, NULL, 0, NULL, &res, &err) < 0)
        fail_msg("%s", err.text);
    const struct compose_mount *m = res->project->services[0].mounts;
    assert_string_equal(m[0].source, "/home/u/p/data");
    assert_string_equal(m[1].source, "/home/u/shared");
    assert_string_equal(m[2].source, "/home/u/p/a/c");
    assert_string_equal(m[3].source, "/abs/../kept"); /* absolute: as written, as docker */
    assert_string_equal(m[4].source, "/home/u/p");
    assert_int_equal(res->n_notes, 4);
    assert_string_equal(res->notes[0], "m.yml:5:9: services.prom.volumes[0]: data resolved "
                                       "against /home/u/p/: /home/u/p/data");
    compile_result_free(res);

    /* the long syntax without a directory: today's refusal */
    assert_int_equal(compile(y, NULL, NULL, NULL, 0, NULL, &res, &err), -EINVAL);
    assert_non_null(strstr(err.text, "bind source \"data\" must be an absolute path"));
    /* a Windows path stays refused */
    const char *w = "services: {prom: {image: x, volumes: ['C:\\\\data:/data']}}";
    assert_int_equal(compile(w, "/home/u/p", NULL, NULL, 0, NULL, &res, &err), -EINVAL);
    assert_non_null(strstr(err.text, "is a Windows path"));
    /* the directory must be absolute */
    assert_int_equal(compile(prom, "rel/dir", NULL, NULL, 0, NULL, &res, &err), -EINVAL);
    assert_string_equal(err.text, "m.yml: the manifest's directory \"rel/dir\" is not an "
                                  "absolute path");
}

static void test_home(void **state)
{
    const char *y = "services:\n"
                    "  prom:\n"
                    "    image: x\n"
                    "    volumes: ['~/minecraft_data:/data', '~:/home']\n";
    struct compile_result *res;
    struct compose_error err;
    /* with a home directory */
    if (compile(y, NULL, "/home/u", NULL, 0, NULL, &res, &err) < 0)
        fail_msg("%s", err.text);
    assert_string_equal(res->project->services[0].mounts[0].source, "/home/u/minecraft_data");
    assert_string_equal(res->project->services[0].mounts[1].source, "/home/u");
    assert_string_equal(body_source(res, 0), "/home/u/minecraft_data");
    assert_int_equal(res->n_notes, 2);
    assert_string_equal(res->notes[0], "m.yml:4:15: services.prom.volumes[0]: ~/minecraft_data "
                                       "resolved against /home/u: /home/u/minecraft_data");
    compile_result_free(res);

    /* the variable HOME wins, as docker's lookup in the environment it interpolates with */
    const struct compose_var home[] = {{"HOME", "/home/v"}};
    if (compile(y, "/p", "/home/u", home, 1, NULL, &res, &err) < 0)
        fail_msg("%s", err.text);
    assert_string_equal(res->project->services[0].mounts[0].source, "/home/v/minecraft_data");
    compile_result_free(res);

    /* without a home: today's refusal */
    assert_int_equal(compile(y, "/p", NULL, NULL, 0, NULL, &res, &err), -EINVAL);
    assert_string_equal(err.text, "m.yml:4:15: services.prom.volumes[0]: bind source "
                                  "\"~/minecraft_data\" starts with ~ but no HOME variable was "
                                  "supplied");
}

static void test_policy_sees_the_resolved_path(void **state)
{
    char *inside[] = {"/home/u/p"}, *elsewhere[] = {"/srv"};
    struct policy_rules allow = {.bind_allow = inside, .n_bind_allow = 1};
    struct policy_rules deny = {.bind_allow = elsewhere, .n_bind_allow = 1};
    struct compile_result *res;
    struct compose_error err;
    if (compile(prom, "/home/u/p", NULL, NULL, 0, &allow, &res, &err) < 0)
        fail_msg("%s", err.text);
    compile_result_free(res);
    assert_int_equal(compile(prom, "/home/u/p", NULL, NULL, 0, &deny, &res, &err), -EPERM);
    assert_non_null(strstr(err.text, "/home/u/p/prometheus"));
    /* ".." cannot step out of an allowed directory unseen */
    const char *y = "services: {prom: {image: x, volumes: ['./../../etc:/etc']}}";
    assert_int_equal(compile(y, "/home/u/p", NULL, NULL, 0, &allow, &res, &err), -EPERM);
    assert_non_null(strstr(err.text, "/home/etc"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relative_bind_with_base_dir),
        cmocka_unit_test(test_relative_bind_refused_without_base_dir),
        cmocka_unit_test(test_long_syntax_and_cleaning),
        cmocka_unit_test(test_home),
        cmocka_unit_test(test_policy_sees_the_resolved_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

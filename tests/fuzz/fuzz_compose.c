/* libFuzzer harness for the compose parser and converter: any bytes go through compose_parse,
 * policy_check (with nothing and with everything allowed), spec_convert, the hash and
 * spec_diff_fields (an object never differs from itself). Sanitizers judge the rest. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compose/compose.h"
#include "compose/policy.h"
#include "compose/spec.h"
#include "reconciler/spec_diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct compose_var var_list[] = {
        {"A", "1"},   {"EMPTY", ""},    {"HOME", "/home/u"},  {"N", "3"},
        {"T", "yes"}, {"PORT", "8080"}, {"IMG", "busybox:1"}, {"AXT_STACK", "fz"},
    };
    static const struct compose_vars vars = {var_list, sizeof(var_list) / sizeof(var_list[0])};
    static const struct spec_file files[] = {
        {"files/app.env", "A=1\n# c\nB\n  C=x y\n", 19},
        {"files/extra.env", "\xEF\xBB\xBFX=\r\n", 7},
        {"files/db-password.txt", "pw", 2},
        {"files/api-key.txt", "key", 3},
        {"files/app.conf", "[x]\n", 4},
        {"files/templated.conf", "{{.Service.Name}}", 17},
        {"a.txt", "", 0},
    };
    static char *allow_paths[] = {"/srv", "/tmp"};
    static const struct policy_rules deny = {0};
    static char *drivers[] = {"local", "rexray"};
    static const struct policy_rules allow = {.allow_privileged = true,
                                              .allow_host_namespaces = true,
                                              .allow_cap_add = true,
                                              .allow_devices = true,
                                              .bind_allow = allow_paths,
                                              .n_bind_allow = 2,
                                              .volume_drivers = {drivers, 2}};
    static const struct policy_rules restricted = {.level = POLICY_RESTRICTED};

    struct compose_project *p = NULL;
    struct compose_error err;
    if (compose_parse((const char *)data, size, "fuzz.yml", &vars, &p, &err) < 0)
        return 0;
    policy_check(p, &deny, &err);
    policy_check(p, &allow, &err);
    policy_check(p, &restricted, &err);
    struct spec_input in = {.stack = "fz",
                            .agent_id = "fuzz-agent",
                            .files = files,
                            .n_files = sizeof(files) / sizeof(files[0])};
    struct spec_stack *st = NULL;
    if (spec_convert(p, &in, &st, &err) == 0) {
        for (size_t i = 0; i < st->n_objects; i++) {
            struct spec_object *o = &st->objects[i];
            char **paths = NULL;
            size_t n = 0;
            if (spec_diff_fields(o->spec, o->spec, NULL, &paths, &n) == 0) {
                if (n)
                    abort(); /* an object differs from itself */
                spec_diff_free(paths, n);
            }
            char before[SPEC_HASH_HEX + 1];
            memcpy(before, o->hash, sizeof(before));
            if (spec_stamp(o) == 0 && strcmp(before, o->hash) != 0)
                abort(); /* the hash is not stable */
        }
        spec_stack_free(st);
    }
    compose_project_free(p);
    return 0;
}

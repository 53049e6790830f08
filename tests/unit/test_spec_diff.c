#include "support/testutil.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler/spec_diff.h"

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        fail_msg("bad JSON in the test: %s", e.text);
    return j;
}

/* Diffs desired and live; the paths joined by " ". */
static char *diff_opts(const char *desired, const char *live, const struct spec_diff_opts *opts)
{
    json_t *d = load(desired), *l = load(live);
    char **paths = NULL;
    size_t n = 0;
    assert_int_equal(spec_diff_fields(d, l, opts, &paths, &n), 0);
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(paths[i]) + 1;
    char *out = calloc(1, len);
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(out, " ");
        strcat(out, paths[i]);
    }
    spec_diff_free(paths, n);
    json_decref(d);
    json_decref(l);
    return out;
}

static void check(const char *desired, const char *live, const char *want)
{
    char *got = diff_opts(desired, live, NULL);
    assert_string_equal(got, want);
    free(got);
}

static const char *desired_web =
    "{\"Name\":\"st_web\",\"Labels\":{\"a\":\"1\"},"
    "\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"nginx:latest\",\"Env\":[\"A=1\"],"
    "\"Privileges\":{\"CredentialSpec\":null,\"SELinuxContext\":null},"
    "\"Secrets\":[{\"File\":{\"Name\":\"s\",\"UID\":\"0\",\"GID\":\"0\",\"Mode\":292},"
    "\"SecretID\":\"\",\"SecretName\":\"st_s_1234abcd\"}]},"
    "\"Resources\":{},\"Placement\":{},\"ForceUpdate\":0,"
    "\"Networks\":[{\"Target\":\"st_default\",\"Aliases\":[\"web\"]}]},"
    "\"Mode\":{\"Replicated\":{}},\"EndpointSpec\":{\"Ports\":[{\"Protocol\":\"tcp\","
    "\"TargetPort\":80,\"PublishedPort\":8080,\"PublishMode\":\"ingress\"}]},"
    "\"UpdateConfig\":{\"Parallelism\":2,\"MaxFailureRatio\":0,\"Order\":\"\"}}";

/* What the Engine gives back for desired_web (with insertDefaults). */
static const char *live_web =
    "{\"Name\":\"st_web\",\"Labels\":{\"a\":\"1\"},"
    "\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"nginx:latest@sha256:0123\","
    "\"Env\":[\"A=1\"],"
    "\"Privileges\":{\"CredentialSpec\":null,\"SELinuxContext\":null,"
    "\"NoNewPrivileges\":false},\"StopGracePeriod\":10000000000,\"DNSConfig\":{},"
    "\"Isolation\":\"default\","
    "\"Secrets\":[{\"File\":{\"Name\":\"s\",\"UID\":\"0\",\"GID\":\"0\",\"Mode\":292},"
    "\"SecretID\":\"q1w2e3\",\"SecretName\":\"st_s_1234abcd\"}]},"
    "\"Resources\":{},\"RestartPolicy\":{\"Condition\":\"any\",\"Delay\":5000000000,"
    "\"MaxAttempts\":0},\"Placement\":{},\"ForceUpdate\":0,\"Runtime\":\"container\","
    "\"Networks\":[{\"Target\":\"abcdefghij0123456789klmno\",\"Aliases\":[\"web\"]}]},"
    "\"Mode\":{\"Replicated\":{\"Replicas\":1}},"
    "\"UpdateConfig\":{\"Parallelism\":2,\"FailureAction\":\"pause\",\"Monitor\":5000000000,"
    "\"MaxFailureRatio\":0,\"Order\":\"stop-first\"},"
    "\"RollbackConfig\":{\"Parallelism\":1,\"FailureAction\":\"pause\",\"Monitor\":5000000000,"
    "\"MaxFailureRatio\":0,\"Order\":\"stop-first\"},"
    "\"EndpointSpec\":{\"Mode\":\"vip\",\"Ports\":[{\"Protocol\":\"tcp\",\"TargetPort\":80,"
    "\"PublishedPort\":8080,\"PublishMode\":\"ingress\"}]}}";

static void test_defaults_are_not_drift(void **state)
{
    check(desired_web, desired_web, "");
    check(desired_web, live_web, "");
}

static void test_drift(void **state)
{
    char *live = strdup(live_web);
    char *p = strstr(live, "\"A=1\"");
    p[3] = '2';
    p = strstr(live, "\"Replicas\":1");
    p[11] = '3';
    check(desired_web, live, "Mode.Replicated.Replicas TaskTemplate.ContainerSpec.Env[0]");
    free(live);
    /* a label added by hand, a field removed by hand, a list that grew */
    check("{\"Labels\":{\"a\":\"1\"},\"H\":\"h\",\"L\":[1]}",
          "{\"Labels\":{\"a\":\"1\",\"b\":\"2\"},\"L\":[1,2]}", "H L Labels.b");
    /* a default is drift where the desired spec says something else */
    check("{\"UpdateConfig\":{\"Order\":\"start-first\"}}",
          "{\"UpdateConfig\":{\"Order\":\"stop-first\"}}", "UpdateConfig.Order");
    check("{\"Mode\":{\"Replicated\":{\"Replicas\":0}}}", "{\"Mode\":{\"Replicated\":{}}}", "");
    check("{\"Mode\":{\"Replicated\":{\"Replicas\":2}}}", "{\"Mode\":{\"Replicated\":{}}}",
          "Mode.Replicated.Replicas");
    /* a non-default value the desired spec leaves out */
    check("{}", "{\"TaskTemplate\":{\"RestartPolicy\":{\"Condition\":\"none\"}}}",
          "TaskTemplate.RestartPolicy.Condition");
    check("{}", "{\"RollbackConfig\":{\"Parallelism\":1,\"Monitor\":1}}", "RollbackConfig.Monitor");
    check("{}", "{\"EndpointSpec\":{\"Mode\":\"dnsrr\"}}", "EndpointSpec.Mode");
    /* types */
    check("{\"A\":1}", "{\"A\":1.0}", "");
    check("{\"A\":1}", "{\"A\":\"1\"}", "A");
    check("[1]", "{}", "(root)");
    /* another image, not a digest of the same */
    check("{\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"nginx:1\"}}}",
          "{\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"nginx:12@sha256:0\"}}}",
          "TaskTemplate.ContainerSpec.Image");
}

static const char *names(void *ud, const char *id)
{
    return strcmp(id, "abcdefghij0123456789klmno") == 0 ? "st_default" : "other";
}

static void test_network_resolver(void **state)
{
    struct spec_diff_opts opts = {.network_name = names};
    char *got = diff_opts(desired_web, live_web, &opts);
    assert_string_equal(got, "");
    free(got);
    const char *d = "{\"TaskTemplate\":{\"Networks\":[{\"Target\":\"st_back\"}]}}";
    const char *l =
        "{\"TaskTemplate\":{\"Networks\":[{\"Target\":\"abcdefghij0123456789klmno\"}]}}";
    got = diff_opts(d, l, &opts);
    assert_string_equal(got, "TaskTemplate.Networks[0].Target");
    free(got);
    /* a name that is not an ID is compared as it is */
    check(d, "{\"TaskTemplate\":{\"Networks\":[{\"Target\":\"st_front\"}]}}",
          "TaskTemplate.Networks[0].Target");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_not_drift),
        cmocka_unit_test(test_drift),
        cmocka_unit_test(test_network_resolver),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

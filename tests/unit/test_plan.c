#include "support/testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler/plan.h"

#define AGENT "agent-1"

static json_t *svc_spec(const char *name, int replicas, const char *env)
{
    return json_pack("{s:s, s:{s:s, s:s}, s:{s:{s:s, s:[s]}}, s:{s:{s:i}}, s:{s:s}}", "Name", name,
                     "Labels", "io.axion.managed", "true", "io.axion.spec-hash", "h",
                     "TaskTemplate", "ContainerSpec", "Image", "axion-test/busybox:1", "Env", env,
                     "Mode", "Replicated", "Replicas", replicas, "EndpointSpec", "Mode", "vip");
}

/* What Docker returns: our spec plus defaults it fills in. */
static json_t *live_of(json_t *desired)
{
    json_t *l = json_deep_copy(desired);
    json_object_set_new(json_object_get(l, "TaskTemplate"), "ForceUpdate", json_integer(0));
    json_object_set_new(json_object_get(json_object_get(l, "TaskTemplate"), "ContainerSpec"),
                        "Isolation", json_string("default"));
    json_object_set_new(l, "UpdateConfig",
                        json_pack("{s:i, s:s}", "Parallelism", 1, "Order", "stop-first"));
    return l;
}

static const struct plan_step *find_step(const struct plan *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->steps[i].name, name) == 0)
            return &p->steps[i];
    return NULL;
}

static void test_create_when_missing(void **state)
{
    json_t *spec = svc_spec("s_web", 2, "A=1");
    json_t *net = json_pack("{s:s}", "Name", "s_default");
    struct desired_obj d[] = {
        {SPEC_SERVICE, "s", "s_web", spec, "h1"},
        {SPEC_NETWORK, "s", "s_default", net, "n1"},
    };
    struct plan_input in = {.desired = d, .n_desired = 2, .agent_id = AGENT, .prune = true};
    struct plan p;
    assert_int_equal(plan_compute(&in, &p), 0);
    assert_int_equal(p.n, 2);
    /* networks first */
    assert_int_equal(p.steps[0].kind, SPEC_NETWORK);
    assert_int_equal(p.steps[0].phase, PHASE_DEPS);
    assert_int_equal(p.steps[1].kind, SPEC_SERVICE);
    assert_int_equal(p.steps[1].action, PLAN_CREATE);
    assert_string_equal(p.steps[1].reason, "missing");
    assert_int_equal(plan_changes(&p), 2);
    plan_release(&p);
    json_decref(spec);
    json_decref(net);
}

static void test_noop_when_equal_with_docker_defaults(void **state)
{
    json_t *spec = svc_spec("s_web", 2, "A=1");
    json_t *live = live_of(spec);
    struct desired_obj d = {SPEC_SERVICE, "s", "s_web", spec, "h1"};
    struct live_obj l = {SPEC_SERVICE, "id1", "s_web", 7, live, true, AGENT, "s", "h1"};
    struct plan_input in = {&d, 1, &l, 1, .agent_id = AGENT, .prune = true};
    struct plan p;
    assert_int_equal(plan_compute(&in, &p), 0);
    assert_int_equal(plan_changes(&p), 0);
    assert_int_equal(p.n_noop, 1);
    plan_release(&p);
    json_decref(spec);
    json_decref(live);
}

static void test_update_env_rolls_tasks(void **state)
{
    json_t *spec = svc_spec("s_web", 2, "A=2");
    json_t *old = svc_spec("s_web", 2, "A=1");
    json_t *live = live_of(old);
    struct desired_obj d = {SPEC_SERVICE, "s", "s_web", spec, "h2"};
    struct live_obj l = {SPEC_SERVICE, "id1", "s_web", 7, live, true, AGENT, "s", "h1"};
    struct plan_input in = {&d, 1, &l, 1, .agent_id = AGENT, .prune = true};
    struct plan p;
    assert_int_equal(plan_compute(&in, &p), 0);
    assert_int_equal(p.n, 1);
    const struct plan_step *s = &p.steps[0];
    assert_int_equal(s->action, PLAN_UPDATE);
    assert_string_equal(s->reason, "spec changed");
    assert_true(s->rolls_tasks);
    assert_int_equal(s->version, 7);
    assert_string_equal(s->live_id, "id1");
    assert_int_equal(s->n_fields, 1);
    assert_string_equal(s->fields[0], "TaskTemplate.ContainerSpec.Env[0]");
    plan_release(&p);
    json_decref(spec);
    json_decref(old);
    json_decref(live);
}

static void test_replicas_in_place(void **state)
{
    json_t *spec = svc_spec("s_web", 3, "A=1");
    json_t *old = svc_spec("s_web", 2, "A=1");
    json_t *live = live_of(old);
    struct desired_obj d = {SPEC_SERVICE, "s", "s_web", spec, "h2"};
    struct live_obj l = {SPEC_SERVICE, "id1", "s_web", 7, live, true, AGENT, "s", "h1"};
    struct plan_input in = {&d, 1, &l, 1, .agent_id = AGENT, .prune = true};
    struct plan p;
    assert_int_equal(plan_compute(&in, &p), 0);
    assert_int_equal(p.n, 1);
    assert_false(p.steps[0].rolls_tasks);
    assert_string_equal(p.steps[0].fields[0], "Mode.Replicated.Replicas");
    plan_release(&p);
    json_decref(spec);
    json_decref(old);
    json_decref(live);
}

static void test_drift_same_hash(void **state)
{
    json_t *spec = svc_spec("s_web", 2, "A=1");
    json_t *scaled = svc_spec("s_web", 5, "A=1"); /* docker service scale by hand */
    json_t *live = live_of(scaled);
    struct desired_obj d = {SPEC_SERVICE, "s", "s_web", spec, "h1"};
    struct live_obj l = {SPEC_SERVICE, "id1", "s_web", 9, live, true, AGENT, "s", "h1"};
    struct plan_input in = {&d, 1, &l, 1, .agent_id = AGENT, .prune = true};
    struct plan p;
    assert_int_equal(plan_compute(&in, &p), 0);
    assert_int_equal(p.n, 1);
    assert_string_equal(p.steps[0].reason, "drift");
    assert_string_equal(p.steps[0].fields[0], "Mode.Replicated.Replicas");
    plan_release(&p);
    json_decref(spec);
    json_decref(scaled);
    json_decref(live);
}

static void test_prune_only_ours(void **state)
{
    json_t *sp = json_object();
    struct live_obj l[] = {
        {SPEC_SERVICE, "a", "s_old", 1, sp, true, AGENT, "s", "h"},
        {SPEC_SERVICE, "b", "handmade", 1, sp, false, NULL, NULL, NULL},
        {SPEC_SERVICE, "c", "t_other", 1, sp, true, "agent-2", "t", "h"},
        {SPEC_CONFIG, "d", "s_cfg_0123abcd", 1, sp, true, AGENT, "s", "h"},
        {SPEC_SERVICE, "e", "frozen_web", 1, sp, true, AGENT, "frozen", "h"},
    };
    const char *frozen[] = {"frozen"};
    const char *known[] = {"s", "t", "frozen"};
    struct plan_input in = {.live = l,
                            .n_live = 5,
                            .agent_id = AGENT,
                            .prune = true,
                            .frozen_stacks = frozen,
                            .n_frozen = 1,
                            .known_stacks = known,
                            .n_known = 3};
    struct plan p;
    assert_int_equal(plan_compute(&in, &p), 0);
    assert_int_equal(p.n, 2);
    assert_int_equal(p.steps[0].action, PLAN_REMOVE);
    assert_string_equal(p.steps[0].name, "s_old");
    assert_int_equal(p.steps[0].phase, PHASE_REMOVE_SERVICES);
    assert_string_equal(p.steps[1].name, "s_cfg_0123abcd");
    assert_int_equal(p.steps[1].phase, PHASE_REMOVE_DEPS);
    assert_null(find_step(&p, "handmade"));
    assert_null(find_step(&p, "t_other"));
    plan_release(&p);

    /* prune off: only removed stacks lose their objects */
    in.prune = false;
    assert_int_equal(plan_compute(&in, &p), 0);
    assert_int_equal(p.n, 0);
    plan_release(&p);
    const char *removed[] = {"s"};
    in.removed_stacks = removed;
    in.n_removed = 1;
    assert_int_equal(plan_compute(&in, &p), 0);
    assert_int_equal(p.n, 2);
    plan_release(&p);

    /* a stack the store does not know (lost or reset store): nothing is pruned */
    in.n_known = 0;
    in.prune = true;
    assert_int_equal(plan_compute(&in, &p), 0);
    assert_int_equal(p.n, 0);
    plan_release(&p);
    json_decref(sp);
}

static void test_conflict_with_unmanaged(void **state)
{
    json_t *spec = svc_spec("s_web", 1, "A=1");
    json_t *other = json_pack("{s:s}", "Name", "s_web");
    struct desired_obj d = {SPEC_SERVICE, "s", "s_web", spec, "h"};
    struct live_obj l = {SPEC_SERVICE, "x", "s_web", 1, other, false, NULL, NULL, NULL};
    struct plan_input in = {&d, 1, &l, 1, .agent_id = AGENT, .prune = true};
    struct plan p;
    assert_int_equal(plan_compute(&in, &p), 0);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.steps[0].action, PLAN_CONFLICT);
    assert_int_equal(plan_changes(&p), 0);
    plan_release(&p);
    json_decref(spec);
    json_decref(other);
}

static void test_only_stack(void **state)
{
    json_t *a = svc_spec("a_web", 1, "A=1"), *b = svc_spec("b_web", 1, "A=1");
    struct desired_obj d[] = {{SPEC_SERVICE, "a", "a_web", a, "h"},
                              {SPEC_SERVICE, "b", "b_web", b, "h"}};
    struct plan_input in = {d, 2, .agent_id = AGENT, .prune = true, .only_stack = "b"};
    struct plan p;
    assert_int_equal(plan_compute(&in, &p), 0);
    assert_int_equal(p.n, 1);
    assert_string_equal(p.steps[0].name, "b_web");
    plan_release(&p);
    json_decref(a);
    json_decref(b);
}

static void test_output(void **state)
{
    json_t *spec = svc_spec("s_web", 3, "A=1");
    json_t *old = svc_spec("s_web", 2, "A=1");
    struct desired_obj d = {SPEC_SERVICE, "s", "s_web", spec, "h2"};
    struct live_obj l = {SPEC_SERVICE, "id1", "s_web", 7, old, true, AGENT, "s", "h1"};
    struct plan_input in = {&d, 1, &l, 1, .agent_id = AGENT, .prune = true};
    struct plan p;
    assert_int_equal(plan_compute(&in, &p), 0);
    struct buf text = BUF_INIT(4096);
    assert_int_equal(plan_format_text(&p, &text), 0);
    assert_string_equal(text.data, "~ update service s_web (spec changed, in place)\n"
                                   "    ~ Mode.Replicated.Replicas\n"
                                   "Plan: 0 to create, 1 to update, 0 to remove, 0 in sync.\n");
    buf_release(&text);
    struct buf tiny = BUF_INIT(16); /* over its limit: an error, nothing half-written */
    assert_int_equal(plan_format_text(&p, &tiny), -EMSGSIZE);
    assert_string_equal(tiny.data, "");
    json_t *j = plan_to_json(&p);
    assert_false(json_is_true(json_object_get(j, "in_sync")));
    assert_int_equal(json_integer_value(json_object_get(j, "changes")), 1);
    json_decref(j);
    plan_release(&p);
    json_decref(spec);
    json_decref(old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_when_missing),
        cmocka_unit_test(test_noop_when_equal_with_docker_defaults),
        cmocka_unit_test(test_update_env_rolls_tasks),
        cmocka_unit_test(test_replicas_in_place),
        cmocka_unit_test(test_drift_same_hash),
        cmocka_unit_test(test_prune_only_ours),
        cmocka_unit_test(test_conflict_with_unmanaged),
        cmocka_unit_test(test_only_stack),
        cmocka_unit_test(test_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The membership plan (reconciler/membership.h), pure: every wanted membership against every
 * state of the node (the table in the header), the Engine request bodies (the CLI's defaults,
 * the token only in the join body), the renderings (never the token) and the masking of join
 * tokens in messages. */
#include "support/testutil.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "reconciler/membership.h"

#define TOKEN                                                                                      \
    "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx"

static struct live_state node(const char *state, bool manager)
{
    return (struct live_state){
        .swarm_state = (char *)state,
        .swarm_active = streq(state, "active"),
        .is_manager = manager && streq(state, "active"),
        .swarm_error = "",
        .node_id = streq(state, "active") ? "n1" : NULL,
    };
}

static struct store_swarm want_none(bool force)
{
    return (struct store_swarm){
        .desired_role = STORE_SWARM_NONE, .join_addrs_json = "[]", .force = force};
}

static struct store_swarm want_init(void)
{
    return (struct store_swarm){.desired_role = STORE_SWARM_MANAGER,
                                .join_addrs_json = "[]",
                                .advertise_addr = "10.231.0.1",
                                .default_addr_pools_json = "[\"10.232.0.0/16\"]"};
}

static struct store_swarm want_join(enum store_swarm_role role)
{
    return (struct store_swarm){.desired_role = role,
                                .join_addrs_json = "[\"10.231.0.1:2377\",\"10.231.0.3\"]",
                                .join_token = TOKEN};
}

static struct membership_plan plan(const struct store_swarm *d, const char *state, bool manager,
                                   size_t held, size_t removing, int64_t pending_ms)
{
    struct live_state lv = node(state, manager);
    struct membership_input in = {d, &lv, held, removing, pending_ms};
    struct membership_plan p;
    membership_plan(&in, &p);
    assert_null(strstr(p.what, "SWMTKN"));
    assert_null(strstr(p.why, "SWMTKN"));
    return p;
}

static void expect(const struct membership_plan *p, enum membership_action a, bool converged,
                   const char *part)
{
    if (p->action != a || p->converged != converged ||
        (part && !strstr(p->why, part) && !strstr(p->what, part)))
        print_error("got %s%s: what \"%s\" why \"%s\"; want %s%s with \"%s\"\n",
                    membership_action_name(p->action), p->converged ? " (converged)" : "", p->what,
                    p->why, membership_action_name(a), converged ? " (converged)" : "",
                    part ? part : "");
    assert_int_equal(p->action, a);
    assert_int_equal(p->converged, converged);
    if (part)
        assert_true(strstr(p->why, part) || strstr(p->what, part));
}

static void test_unmanaged(void **state)
{
    struct membership_plan p = plan(NULL, "active", true, 0, 0, 0);
    expect(&p, MEMBERSHIP_NOOP, false, "no membership is wanted");
    assert_false(membership_pending(&p));
}

static void test_none(void **state)
{
    struct store_swarm d = want_none(false);
    struct membership_plan p = plan(&d, "inactive", false, 0, 0, 0);
    expect(&p, MEMBERSHIP_NOOP, true, "in no swarm");
    p = plan(&d, "pending", false, 0, 0, 0);
    expect(&p, MEMBERSHIP_CANCEL, false, "cancel the join in progress");
    assert_true(p.force);
    p = plan(&d, "active", false, 0, 0, 0);
    expect(&p, MEMBERSHIP_LEAVE, false, "an active worker");
    assert_false(p.force);
    assert_true(membership_pending(&p));
    /* A manager leaves only when forced. */
    p = plan(&d, "active", true, 0, 0, 0);
    expect(&p, MEMBERSHIP_BLOCKED, false, "leaves only when forced");
    assert_false(membership_pending(&p));
    p = plan(&d, "locked", false, 0, 0, 0);
    expect(&p, MEMBERSHIP_BLOCKED, false, "locked");
    /* Stacks deployed after the leave block it, forced or not. */
    p = plan(&d, "active", false, 2, 0, 0);
    expect(&p, MEMBERSHIP_BLOCKED, false, "manages 2 stacks deployed after the leave");

    d = want_none(true);
    p = plan(&d, "active", true, 0, 1, 0);
    expect(&p, MEMBERSHIP_WAIT, false, "removing the objects of 1 stack before the node leaves");
    assert_true(membership_pending(&p));
    p = plan(&d, "active", true, 0, 0, 0);
    expect(&p, MEMBERSHIP_LEAVE, false, "leave the swarm (forced)");
    assert_true(p.force);
    /* A worker cannot remove objects: it does not wait for them. */
    p = plan(&d, "active", false, 0, 1, 0);
    expect(&p, MEMBERSHIP_LEAVE, false, NULL);
    p = plan(&d, "locked", false, 0, 0, 0);
    expect(&p, MEMBERSHIP_LEAVE, false, NULL);
    assert_true(p.force);
    p = plan(&d, "active", true, 1, 0, 0);
    expect(&p, MEMBERSHIP_BLOCKED, false, "ask to leave again with force");
}

static void test_init(void **state)
{
    struct store_swarm d = want_init();
    struct membership_plan p = plan(&d, "inactive", false, 0, 0, 0);
    expect(&p, MEMBERSHIP_INIT, false,
           "init a swarm of its own, advertised on 10.231.0.1, address pools 10.232.0.0/16");
    assert_string_equal(p.why, "the node is in no swarm");
    p = plan(&d, "active", true, 3, 0, 0);
    expect(&p, MEMBERSHIP_NOOP, true, "an active manager");
    assert_false(membership_pending(&p));
    p = plan(&d, "active", false, 0, 0, 0);
    expect(&p, MEMBERSHIP_BLOCKED, false, "the node is a worker of a swarm");
    p = plan(&d, "pending", false, 0, 0, 0);
    expect(&p, MEMBERSHIP_CANCEL, false, "cancel the join in progress");
    struct live_state lv = node("error", false);
    lv.swarm_error = "certificate expired";
    struct membership_input in = {&d, &lv, 0, 0, 0};
    membership_plan(&in, &p);
    expect(&p, MEMBERSHIP_BLOCKED, false, "the node's swarm state is error: certificate expired");
}

static void test_join(void **state)
{
    struct store_swarm d = want_join(STORE_SWARM_WORKER);
    struct membership_plan p = plan(&d, "inactive", false, 0, 0, 0);
    expect(&p, MEMBERSHIP_JOIN, false, "join the swarm at 10.231.0.1:2377, 10.231.0.3 as a worker");
    p = plan(&d, "pending", false, 0, 0, MEMBERSHIP_PENDING_MAX_MS - 1);
    expect(&p, MEMBERSHIP_WAIT, false, "joining: the Engine is still trying to reach");
    assert_true(membership_pending(&p));
    p = plan(&d, "pending", false, 0, 0, MEMBERSHIP_PENDING_MAX_MS);
    expect(&p, MEMBERSHIP_CANCEL, false, "did not complete within 60 s");
    assert_true(p.force);
    p = plan(&d, "active", false, 0, 0, 0);
    expect(&p, MEMBERSHIP_NOOP, true, "worker of the swarm at 10.231.0.1:2377, 10.231.0.3");
    p = plan(&d, "active", true, 0, 0, 0);
    expect(&p, MEMBERSHIP_BLOCKED, false, "demote it on a manager");

    d = want_join(STORE_SWARM_MANAGER);
    p = plan(&d, "inactive", false, 0, 0, 0);
    expect(&p, MEMBERSHIP_JOIN, false, "as a manager");
    p = plan(&d, "active", true, 0, 0, 0);
    expect(&p, MEMBERSHIP_NOOP, true, NULL);
    p = plan(&d, "active", false, 0, 0, 0);
    expect(&p, MEMBERSHIP_BLOCKED, false, "the join token was a worker's");
}

static void test_bodies(void **state)
{
    struct store_swarm d = want_init();
    json_t *b = membership_init_request(&d);
    char *s = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"AdvertiseAddr\":\"10.231.0.1\",\"Availability\":\"active\","
                           "\"DefaultAddrPool\":[\"10.232.0.0/16\"],\"ListenAddr\":"
                           "\"0.0.0.0:2377\",\"SubnetSize\":24}");
    free(s);
    json_decref(b);
    d.listen_addr = "10.231.0.1:2377";
    d.data_path_addr = "10.231.0.1";
    d.data_path_port = 4790;
    d.subnet_size = 26;
    b = membership_init_request(&d);
    s = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"AdvertiseAddr\":\"10.231.0.1\",\"Availability\":\"active\","
                           "\"DataPathAddr\":\"10.231.0.1\",\"DataPathPort\":4790,"
                           "\"DefaultAddrPool\":[\"10.232.0.0/16\"],\"ListenAddr\":"
                           "\"10.231.0.1:2377\",\"SubnetSize\":26}");
    free(s);
    json_decref(b);

    d = want_join(STORE_SWARM_WORKER);
    b = membership_join_request(&d);
    s = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"Availability\":\"active\",\"JoinToken\":\"" TOKEN "\","
                           "\"ListenAddr\":\"0.0.0.0:2377\",\"RemoteAddrs\":[\"10.231.0.1:2377\","
                           "\"10.231.0.3\"]}");
    free(s);
    json_decref(b);
}

static void test_renderings(void **state)
{
    struct store_swarm d = want_join(STORE_SWARM_WORKER);
    d.revision = 3;
    json_t *j = membership_desired_json(&d);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_null(strstr(s, "SWMTKN"));
    assert_non_null(strstr(s, "\"join_token_set\":true"));
    assert_non_null(strstr(s, "\"text\":\"worker of the swarm at 10.231.0.1:2377, 10.231.0.3\""));
    free(s);
    json_decref(j);
    j = membership_desired_json(NULL);
    assert_true(json_is_null(j));
    json_decref(j);

    char text[256];
    membership_describe(NULL, text, sizeof(text));
    assert_string_equal(text, "not managed (never asked: left as it is)");
    struct store_swarm none = want_none(true);
    membership_describe(&none, text, sizeof(text));
    assert_string_equal(text, "in no swarm (leave forced)");

    struct membership_plan p = plan(&d, "inactive", false, 0, 0, 0);
    j = membership_plan_to_json(&p);
    s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"action\":\"join\",\"force\":false,\"in_sync\":false,\"what\":"
                           "\"join the swarm at 10.231.0.1:2377, 10.231.0.3 as a worker\","
                           "\"why\":\"the node is in no swarm\"}");
    free(s);
    json_decref(j);
}

static void test_mask(void **state)
{
    char a[] = "join failed: token SWMTKN-1-abc-def was refused; SWMTKN-1-x and SWMTKN- end";
    membership_mask(a);
    assert_string_equal(a, "join failed: token SWMTKN-*** was refused; SWMTKN-*** and SWMTKN- end");
    char b[] = "SWMTKN-1";
    membership_mask(b);
    assert_string_equal(b, "SWMTKN-*");
    char c[] = "nothing secret";
    membership_mask(c);
    assert_string_equal(c, "nothing secret");
    char d[] = "{\"t\":\"" TOKEN "\"}";
    membership_mask(d);
    assert_string_equal(d, "{\"t\":\"SWMTKN-***\"}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unmanaged), cmocka_unit_test(test_none),
        cmocka_unit_test(test_init),      cmocka_unit_test(test_join),
        cmocka_unit_test(test_bodies),    cmocka_unit_test(test_renderings),
        cmocka_unit_test(test_mask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

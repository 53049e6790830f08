/* live_same(): two observations saw the same Swarm when their membership matches and every list
 * holds the same items, byte for byte, in any order (the Engine lists networks in an order of
 * its own). */
#include "support/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "reconciler/live.h"

static void set(struct live_state *st, const char *services, const char *networks)
{
    *st = (struct live_state){.swarm_active = true, .is_manager = true, .node_id = "n1"};
    const char *lists[_LIVE_MAX] = {services, networks, "[]", "[]", "[]"};
    for (int i = 0; i < _LIVE_MAX; i++) {
        st->raw[i] = (char *)lists[i];
        st->raw_len[i] = strlen(lists[i]);
    }
}

static bool same(const char *s1, const char *n1, const char *s2, const char *n2)
{
    struct live_state a, b;
    set(&a, s1, n1);
    set(&b, s2, n2);
    return live_same(&a, &b);
}

static void test_bytes_and_order(void **state)
{
    const char *svc = "[{\"ID\":\"a\",\"Spec\":{\"Name\":\"x\"}},{\"ID\":\"b\"}]";
    assert_true(same(svc, "[]", svc, "[]"));
    /* the same networks in another order */
    assert_true(same(svc, "[{\"Name\":\"n1\",\"Id\":\"1\"},{\"Name\":\"n2\",\"Id\":\"2\"}]", svc,
                     "[{\"Name\":\"n2\",\"Id\":\"2\"},{\"Name\":\"n1\",\"Id\":\"1\"}]"));
    assert_true(same(svc, "[ {\"a\":1} ,\n {\"b\":2} ]", svc, "[{\"b\":2},{\"a\":1}]"));
    /* strings with brackets, commas and escaped quotes do not split items */
    assert_true(same(svc, "[{\"L\":\"x],[{\\\"y\"},{\"L\":\"z\"}]", svc,
                     "[{\"L\":\"z\"},{\"L\":\"x],[{\\\"y\"}]"));
    /* an item that differs, one more, one less, a repeated one */
    assert_false(same(svc, "[{\"a\":1},{\"b\":2}]", svc, "[{\"b\":2},{\"a\":3}]"));
    assert_false(same(svc, "[{\"a\":1}]", svc, "[{\"a\":1},{\"a\":1}]"));
    assert_false(same(svc, "[{\"a\":1},{\"b\":2}]", svc, "[{\"a\":1},{\"a\":1}]"));
    assert_true(same(svc, "[]", svc, "[ ]")); /* no items either way */
    /* another services list */
    assert_false(
        same(svc, "[]", "[{\"ID\":\"b\"},{\"ID\":\"a\",\"Spec\":{\"Name\":\"y\"}}]", "[]"));
    /* not an array, or unbalanced: only equal bytes are the same */
    assert_true(same(svc, "{\"a\":1}", svc, "{\"a\":1}"));
    assert_false(same(svc, "[{\"a\":1},{\"b\":2}", svc, "[{\"b\":2},{\"a\":1}"));
    assert_false(same(svc, "[{\"a\":1}}]", svc, "[}{\"a\":1}]"));
}

static void test_membership(void **state)
{
    struct live_state a, b;
    set(&a, "[]", "[]");
    set(&b, "[]", "[]");
    assert_true(live_same(&a, &b));
    b.is_manager = false;
    assert_false(live_same(&a, &b));
    set(&b, "[]", "[]");
    b.node_id = "n2";
    assert_false(live_same(&a, &b));
    /* a worker reads no lists */
    set(&b, "[]", "[]");
    b.raw[LIVE_TASKS] = NULL;
    b.raw_len[LIVE_TASKS] = 0;
    assert_false(live_same(&a, &b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_and_order),
        cmocka_unit_test(test_membership),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

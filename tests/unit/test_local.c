#include "support/testutil.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sources/local.h"

struct got {
    char msg[LOCAL_MSG_MAX + 1];
    int count;
};

static void on_msg(const char *msg, void *ud)
{
    struct got *g = ud;
    snprintf(g->msg, sizeof(g->msg), "%s", msg);
    g->count++;
    ev_break(EV_DEFAULT, EVBREAK_ALL);
}

static void test_wake_roundtrip(void **state)
{
    char *dir = tu_mkdtemp();
    char path[512];
    snprintf(path, sizeof(path), "%s/agent.sock", dir);

    /* nobody listens yet: not an error, just not delivered */
    assert_int_equal(local_send(path, "wake"), 0);

    struct got g = {0};
    struct local_listener *l;
    assert_int_equal(local_listen(EV_DEFAULT, path, on_msg, &g, &l), 0);
    assert_int_equal(local_send(path, "wake web"), 1);
    ev_run(EV_DEFAULT, 0);
    assert_int_equal(g.count, 1);
    assert_string_equal(g.msg, "wake web");

    /* oversize messages are dropped, the next one still arrives */
    char big[LOCAL_MSG_MAX + 50];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(local_send(path, big), 1);
    assert_int_equal(local_send(path, "wake"), 1);
    ev_run(EV_DEFAULT, 0);
    assert_int_equal(g.count, 2);
    assert_string_equal(g.msg, "wake");

    l = local_listener_free(l);
    assert_int_equal(local_send(path, "wake"), 0);
    tu_rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wake_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

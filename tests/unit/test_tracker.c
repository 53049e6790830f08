/* The tracker: a command accepted by the intake gets exactly one final result, from the loop's
 * pass reports (done, failed, superseded), or from its deadline (still converging); the result
 * is recorded in the command log and handed to the sink of its source; after a restart the
 * accepted commands are tracked again. Against a real store in a temporary directory. */
#include "support/testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "sources/intake.h"
#include "sources/tracker.h"
#include "store/store.h"

struct got {
    char id[64];
    enum tracker_result result;
    char error[256];
};

struct fixture {
    char *dir;
    struct store *s;
    struct intake *in;
    struct tracker *t;
    struct policy_rules policy;
    struct got got[16];
    size_t n_got;
};

static void sink(const struct tracker_final *f, void *ud)
{
    struct fixture *fx = ud;
    assert_true(fx->n_got < 16);
    struct got *g = &fx->got[fx->n_got++];
    snprintf(g->id, sizeof(g->id), "%s", f->command_id);
    g->result = f->result;
    snprintf(g->error, sizeof(g->error), "%s", f->error ? f->error : "");
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = tu_mkdtemp();
    char path[512], err[512];
    snprintf(path, sizeof(path), "%s/store.db", f->dir);
    assert_int_equal(store_open(path, 0, &f->s, err, sizeof(err)), 0);
    struct intake_opts o = {.agent_id = "t1", .policy = &f->policy};
    assert_int_equal(intake_new(f->s, &o, &f->in), 0);
    assert_int_equal(tracker_new(f->s, 30000, &f->t), 0);
    assert_int_equal(tracker_set_sink(f->t, "grpc", sink, f), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tracker_free(f->t);
    intake_free(f->in);
    store_close(f->s);
    tu_rm_rf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static const char yaml[] = "services: {web: {image: busybox}}\n";

/* Submits a command from grpc and tracks it as accepted at `at`. */
static void accept(struct fixture *f, enum intake_kind kind, const char *id, const char *stack,
                   int64_t generation, int64_t at)
{
    struct intake_request rq = {
        .kind = kind,
        .source = "grpc",
        .command_id = id,
        .stack = stack,
        .generation = generation,
        .service = "",
        .compose = yaml,
        .compose_len = strlen(yaml),
    };
    struct intake_result res;
    assert_int_equal(intake_submit(f->in, &rq, &res), 0);
    if (res.outcome != INTAKE_ACCEPTED)
        fail_msg("%s: %s", id, res.error);
    assert_int_equal(tracker_add(f->t, &rq, &res, at), 0);
    intake_result_release(&res);
}

static enum store_command_status status_of(struct fixture *f, const char *id)
{
    enum store_command_status s;
    assert_int_equal(store_command_status(f->s, id, &s), 0);
    return s;
}

static void test_done_failed_superseded(void **state)
{
    struct fixture *f = *state;
    accept(f, INTAKE_DEPLOY, "c1", "web", 1, 1000);
    accept(f, INTAKE_RESTART, "c2", "web", 0, 1000);
    accept(f, INTAKE_DEPLOY, "c3", "api", 1, 1000);
    assert_int_equal(tracker_pending(f->t), 3);

    /* A pass that started before the commands were written says nothing of them. */
    struct tracker_stack_state early[] = {{"web", 1, STORE_STATE_CONVERGED, ""}};
    tracker_on_pass(f->t, 999, early, 1);
    assert_int_equal(f->n_got, 0);

    /* Progressing is not final; converged is, for both commands on web. */
    struct tracker_stack_state p1[] = {{"web", 1, STORE_STATE_PROGRESSING, "web: 0/1"},
                                       {"api", 1, STORE_STATE_FAILED, "image not found"}};
    tracker_on_pass(f->t, 1001, p1, 2);
    assert_int_equal(f->n_got, 1);
    assert_string_equal(f->got[0].id, "c3");
    assert_int_equal(f->got[0].result, TRACKER_FAILED);
    assert_string_equal(f->got[0].error, "image not found");
    assert_int_equal(status_of(f, "c3"), STORE_COMMAND_FAILED);

    struct tracker_stack_state p2[] = {{"web", 1, STORE_STATE_CONVERGED, ""}};
    tracker_on_pass(f->t, 1002, p2, 1);
    assert_int_equal(f->n_got, 3);
    assert_int_equal(f->got[1].result, TRACKER_DONE);
    assert_int_equal(f->got[2].result, TRACKER_DONE);
    assert_int_equal(status_of(f, "c1"), STORE_COMMAND_APPLIED);
    assert_int_equal(status_of(f, "c2"), STORE_COMMAND_APPLIED);
    assert_int_equal(tracker_pending(f->t), 0);

    /* A deploy the stack moved past before it converged. */
    accept(f, INTAKE_DEPLOY, "c4", "web", 2, 2000);
    accept(f, INTAKE_DEPLOY, "c5", "web", 3, 2000);
    struct tracker_stack_state p3[] = {{"web", 3, STORE_STATE_CONVERGED, ""}};
    tracker_on_pass(f->t, 2001, p3, 1);
    assert_int_equal(f->n_got, 5);
    assert_int_equal(status_of(f, "c4"), STORE_COMMAND_SUPERSEDED);
    assert_int_equal(status_of(f, "c5"), STORE_COMMAND_APPLIED);
}

static void test_remove_and_reconcile_now(void **state)
{
    struct fixture *f = *state;
    accept(f, INTAKE_DEPLOY, "d1", "web", 1, 1000);
    accept(f, INTAKE_REMOVE, "r1", "web", 0, 1100);
    accept(f, INTAKE_RECONCILE_NOW, "n1", NULL, 0, 1100);
    struct tracker_stack_state p[] = {{"web", 2, STORE_STATE_PROGRESSING, "removing"}};
    tracker_on_pass(f->t, 1200, p, 1);
    /* reconcile-now is done after the pass; the deploy was overtaken by the remove. */
    assert_int_equal(f->n_got, 1);
    assert_string_equal(f->got[0].id, "n1");
    struct tracker_stack_state gone[] = {{"web", 2, STORE_STATE_REMOVED, ""}};
    tracker_on_pass(f->t, 1300, gone, 1);
    assert_int_equal(f->n_got, 3);
    assert_int_equal(status_of(f, "d1"), STORE_COMMAND_SUPERSEDED);
    assert_int_equal(status_of(f, "r1"), STORE_COMMAND_APPLIED);
}

static void test_deadline_and_restart(void **state)
{
    struct fixture *f = *state;
    accept(f, INTAKE_DEPLOY, "s2", "web", 0, 10000);
    accept(f, INTAKE_STOP, "s1", "web", 0, 0);
    assert_int_equal(tracker_expire(f->t, 1000), 30000);
    assert_int_equal(f->n_got, 0);
    assert_int_equal(tracker_expire(f->t, 30000), 40000);
    assert_int_equal(f->n_got, 1);
    assert_string_equal(f->got[0].id, "s1");
    assert_int_equal(f->got[0].result, TRACKER_STILL_CONVERGING);
    assert_int_equal(status_of(f, "s1"), STORE_COMMAND_STILL_CONVERGING);

    /* A restart: the command still accepted in the store is tracked again, once. */
    struct tracker *t2;
    assert_int_equal(tracker_new(f->s, 30000, &t2), 0);
    assert_int_equal(tracker_set_sink(t2, "grpc", sink, f), 0);
    assert_int_equal(tracker_load(t2), 0);
    assert_int_equal(tracker_pending(t2), 1);
    struct tracker_stack_state p[] = {{"web", 1, STORE_STATE_CONVERGED, ""}};
    tracker_on_pass(t2, INT64_MAX / 2, p, 1);
    assert_int_equal(f->n_got, 2);
    assert_string_equal(f->got[1].id, "s2");
    assert_int_equal(f->got[1].result, TRACKER_DONE);
    tracker_free(t2);

    /* A source without a sink: the result is still recorded. */
    struct tracker *t3;
    assert_int_equal(tracker_new(f->s, 1, &t3), 0);
    struct intake_request rq = {
        .kind = INTAKE_RESTART, .source = "kafka", .command_id = "k1", .stack = "web"};
    struct intake_result res;
    assert_int_equal(intake_submit(f->in, &rq, &res), 0);
    assert_int_equal(tracker_add(t3, &rq, &res, 5), 0);
    intake_result_release(&res);
    tracker_expire(t3, 10);
    assert_int_equal(status_of(f, "k1"), STORE_COMMAND_STILL_CONVERGING);
    tracker_free(t3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_done_failed_superseded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_and_reconcile_now, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_and_restart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

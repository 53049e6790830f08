/* The tracker and the swarm commands: a swarm-init, -join or -leave the intake accepted gets its
 * final result from the membership the loop's passes report (tracker_on_membership): done at
 * the revision it wrote converged, failed when blocked or retrying (with the loop's error),
 * superseded by a later membership command, open while waiting; and again after a restart
 * (tracker_load). Against a real store. */
#include "support/testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "sources/intake.h"
#include "sources/tracker.h"
#include "store/store.h"

#define TOKEN                                                                                      \
    "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx"

struct fixture {
    char *dir;
    struct store *s;
    struct intake *in;
    struct tracker *t;
    char got[8][128];
    enum tracker_result result[8];
    size_t n_got;
};

static void sink(const struct tracker_final *f, void *ud)
{
    struct fixture *fx = ud;
    assert_true(fx->n_got < 8);
    snprintf(fx->got[fx->n_got], sizeof(fx->got[0]), "%s %s", f->command_id,
             f->error ? f->error : "-");
    fx->result[fx->n_got++] = f->result;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = tu_mkdtemp();
    char path[512], err[512];
    snprintf(path, sizeof(path), "%s/store.db", f->dir);
    assert_int_equal(store_open(path, 0, &f->s, err, sizeof(err)), 0);
    struct intake_opts o = {.agent_id = "t1"};
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

static const char *const managers[] = {"10.231.0.1:2377"};

/* Submits a membership command from grpc, tracks it as accepted at `at`; returns the revision. */
static int64_t accept(struct fixture *f, enum intake_kind kind, const char *id, int64_t at)
{
    struct intake_request rq = {.kind = kind, .source = "grpc", .command_id = id};
    if (kind == INTAKE_SWARM_JOIN)
        rq.swarm = (struct intake_swarm){.remote_addrs = managers,
                                         .n_remote_addrs = 1,
                                         .join_token = TOKEN,
                                         .role = STORE_SWARM_WORKER};
    struct intake_result res;
    assert_int_equal(intake_submit(f->in, &rq, &res), 0);
    assert_int_equal(res.outcome, INTAKE_ACCEPTED);
    assert_true(res.generation > 0);
    assert_int_equal(tracker_add(f->t, &rq, &res, at), 0);
    intake_result_release(&res);
    return res.generation;
}

static enum store_command_status status(struct fixture *f, const char *id)
{
    enum store_command_status st;
    assert_int_equal(store_command_status(f->s, id, &st), 0);
    return st;
}

static void test_results(void **state)
{
    struct fixture *f = *state;
    int64_t r1 = accept(f, INTAKE_SWARM_INIT, "init-1", 1000);
    assert_int_equal(r1, 1);
    /* A pass that started before the command, or that saw an older revision: nothing. */
    tracker_on_membership(f->t, 999, "converged", "", 1);
    tracker_on_membership(f->t, 1001, "converged", "", 0);
    /* Under way: nothing yet. */
    tracker_on_membership(f->t, 1001, "initializing", "", 1);
    tracker_on_membership(f->t, 1001, "waiting", "", 1);
    assert_int_equal(f->n_got, 0);
    tracker_on_membership(f->t, 1002, "converged", "", 1);
    assert_int_equal(f->n_got, 1);
    assert_string_equal(f->got[0], "init-1 -");
    assert_int_equal(f->result[0], TRACKER_DONE);
    assert_int_equal(status(f, "init-1"), STORE_COMMAND_APPLIED);

    /* A join that fails: failed, with the loop's error; the loop goes on retrying. */
    int64_t r2 = accept(f, INTAKE_SWARM_JOIN, "join-1", 2000);
    assert_int_equal(r2, 2);
    tracker_on_membership(f->t, 2001, "retrying", "failed to join: a valid join token ...", 2);
    assert_int_equal(f->n_got, 2);
    assert_string_equal(f->got[1], "join-1 failed to join: a valid join token ...");
    assert_int_equal(f->result[1], TRACKER_FAILED);
    assert_int_equal(status(f, "join-1"), STORE_COMMAND_FAILED);

    /* A join replaced by a leave before it converged: superseded; the leave blocked: failed. */
    accept(f, INTAKE_SWARM_JOIN, "join-2", 3000);
    accept(f, INTAKE_SWARM_LEAVE, "leave-1", 3001);
    tracker_on_membership(f->t, 3002, "blocked", "not leaving: this node is a swarm manager", 4);
    assert_int_equal(f->n_got, 4);
    size_t join = streq(f->got[2], "join-2 -") ? 2 : 3, leave = 5 - join;
    assert_string_equal(f->got[join], "join-2 -");
    assert_int_equal(f->result[join], TRACKER_SUPERSEDED);
    assert_string_equal(f->got[leave], "leave-1 not leaving: this node is a swarm manager");
    assert_int_equal(f->result[leave], TRACKER_FAILED);
    assert_int_equal(tracker_pending(f->t), 0);
}

static void test_after_restart(void **state)
{
    struct fixture *f = *state;
    accept(f, INTAKE_SWARM_JOIN, "join-1", 1000);
    tracker_free(f->t);
    assert_int_equal(tracker_new(f->s, 30000, &f->t), 0);
    assert_int_equal(tracker_set_sink(f->t, "grpc", sink, f), 0);
    assert_int_equal(tracker_load(f->t), 0);
    assert_int_equal(tracker_pending(f->t), 1);
    /* Stack reports say nothing of it. */
    tracker_on_pass(f->t, INT64_MAX / 2, NULL, 0);
    assert_int_equal(tracker_pending(f->t), 1);
    tracker_on_membership(f->t, INT64_MAX / 2, "converged", "", 1);
    assert_int_equal(f->n_got, 1);
    assert_int_equal(f->result[0], TRACKER_DONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_results, setup, teardown),
        cmocka_unit_test_setup_teardown(test_after_restart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

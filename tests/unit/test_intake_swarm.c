/* The intake's swarm kinds (swarm-init, swarm-join, swarm-leave): what each writes into the
 * store's swarm row, what each refuses and why, that a leave is refused while the node holds
 * stacks and that a forced one marks them removed in the same transaction, dedupe by command
 * id, and that the join token never appears in any message. Against a real store file. */
#include "support/testutil.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "lib/util.h"
#include "sources/intake.h"
#include "store/store.h"

#define TOKEN                                                                                      \
    "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx"

struct fixture {
    char *dir;
    struct store *s;
    struct intake *in;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = tu_mkdtemp();
    assert_non_null(f->dir);
    char path[4096], err[512];
    snprintf(path, sizeof(path), "%s/store.db", f->dir);
    assert_int_equal(store_open(path, 0, &f->s, err, sizeof(err)), 0);
    struct intake_opts o = {.agent_id = "t1"};
    assert_int_equal(intake_new(f->s, &o, &f->in), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    intake_free(f->in);
    store_close(f->s);
    tu_rm_rf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

#define F(state) ((struct fixture *)*(state))

static const char *const a_manager[] = {"10.231.0.1:2377"};

static struct intake_request join_rq(void)
{
    return (struct intake_request){
        .kind = INTAKE_SWARM_JOIN,
        .source = "grpc",
        .swarm = {.remote_addrs = a_manager,
                  .n_remote_addrs = 1,
                  .join_token = TOKEN,
                  .role = STORE_SWARM_WORKER},
    };
}

/* Submits and expects 0 and the outcome; a message never holds the token. */
static struct intake_result submit(struct intake *in, const struct intake_request *rq,
                                   enum intake_outcome want)
{
    struct intake_result res;
    int r = intake_submit(in, rq, &res);
    if (r < 0 || res.outcome != want)
        print_error("intake_submit = %d, outcome %s (want %s): %s\n", r,
                    intake_outcome_to_string(res.outcome), intake_outcome_to_string(want),
                    res.error);
    assert_int_equal(r, 0);
    assert_int_equal(res.outcome, want);
    assert_null(strstr(res.error, "SWMTKN-1-3pu6"));
    for (size_t i = 0; i < res.n_notes; i++)
        assert_null(strstr(res.notes[i], "SWMTKN-1-3pu6"));
    return res;
}

static void rejected(struct intake *in, const struct intake_request *rq, const char *part)
{
    struct intake_result res = submit(in, rq, INTAKE_REJECTED);
    if (!strstr(res.error, part))
        print_error("error \"%s\" does not contain \"%s\"\n", res.error, part);
    assert_non_null(strstr(res.error, part));
    intake_result_release(&res);
}

static struct store_swarm *row(struct store *s)
{
    struct store_swarm *sw = NULL;
    assert_int_equal(store_get_swarm(s, &sw), 0);
    return sw;
}

static void put_stack(struct store *s, const char *name)
{
    struct store_stack st = {
        .name = (char *)name, .compose = "services: {}\n", .compose_len = strlen("services: {}\n")};
    assert_int_equal(store_put_stack(s, &st, NULL), 0);
}

/* ---- init ---- */

static void test_init(void **state)
{
    struct fixture *f = *state;
    const char *pools[] = {"10.232.0.0/16", "10.240.0.0/12"};
    struct intake_request rq = {
        .kind = INTAKE_SWARM_INIT,
        .source = "cli",
        .command_id = "c-init",
        .swarm = {.advertise_addr = "10.231.0.1",
                  .listen_addr = "10.231.0.1:2377",
                  .data_path_addr = "eth0",
                  .default_addr_pools = pools,
                  .n_default_addr_pools = 2,
                  .subnet_size = 24,
                  .data_path_port = 4790},
    };
    struct intake_result res = submit(f->in, &rq, INTAKE_ACCEPTED);
    intake_result_release(&res);
    struct store_swarm *sw = row(f->s);
    assert_int_equal(sw->desired_role, STORE_SWARM_MANAGER);
    assert_string_equal(sw->join_addrs_json, "[]");
    assert_null(sw->join_token);
    assert_string_equal(sw->advertise_addr, "10.231.0.1");
    assert_string_equal(sw->listen_addr, "10.231.0.1:2377");
    assert_string_equal(sw->data_path_addr, "eth0");
    assert_string_equal(sw->default_addr_pools_json, "[\"10.232.0.0/16\",\"10.240.0.0/12\"]");
    assert_int_equal(sw->subnet_size, 24);
    assert_int_equal(sw->data_path_port, 4790);
    assert_false(sw->force);
    assert_string_equal(sw->source, "cli");
    assert_int_equal(sw->revision, 1);
    store_swarm_free(sw);

    struct store_command *c = NULL;
    assert_int_equal(store_get_command(f->s, "c-init", &c), 0);
    assert_string_equal(c->kind, "swarm-init");
    assert_null(c->stack);
    assert_int_equal(c->status, STORE_COMMAND_ACCEPTED);
    store_command_free(c);

    /* The same id again: nothing written again. */
    rq.swarm.advertise_addr = "10.231.0.9";
    res = submit(f->in, &rq, INTAKE_DUPLICATE);
    assert_int_equal(res.first, INTAKE_ACCEPTED);
    intake_result_release(&res);
    sw = row(f->s);
    assert_string_equal(sw->advertise_addr, "10.231.0.1");
    assert_int_equal(sw->revision, 1);
    store_swarm_free(sw);

    /* Nothing but the role: the Engine's defaults. */
    struct intake_request bare = {.kind = INTAKE_SWARM_INIT, .source = "cli"};
    res = submit(f->in, &bare, INTAKE_ACCEPTED);
    intake_result_release(&res);
    sw = row(f->s);
    assert_null(sw->advertise_addr);
    assert_null(sw->listen_addr);
    assert_string_equal(sw->default_addr_pools_json, "[]");
    assert_int_equal(sw->revision, 2);
    store_swarm_free(sw);
}

static void test_init_refused(void **state)
{
    struct fixture *f = *state;
    struct intake_request rq = {.kind = INTAKE_SWARM_INIT, .source = "cli"};
    const char *bad_pool[] = {"10.232.0.0"};
    const char *wide_pool[] = {"10.232.0.0/33"};
    const char *v6_pool[] = {"fd00:10::/48"};
    const char *pools[] = {"10.232.0.0/16"};
    const char *many[INTAKE_SWARM_ADDRS_MAX + 1];
    for (size_t i = 0; i < ARRAY_SIZE(many); i++)
        many[i] = "10.232.0.0/16";

    rq.swarm.advertise_addr = "10.0.0.1 ; rm";
    rejected(f->in, &rq, "swarm init: advertise address \"10.0.0.1 ; rm\": holds a character");
    rq.swarm.advertise_addr = "10.0.0.1:99999";
    rejected(f->in, &rq, "the port is not from 1 to 65535");
    rq.swarm.advertise_addr = "[fd00::1";
    rejected(f->in, &rq, "lacks its ]");
    rq.swarm.advertise_addr = "[fd00::1]:2377";
    rq.swarm.data_path_addr = "10.0.0.1:4789";
    rejected(f->in, &rq, "data path address \"10.0.0.1:4789\": takes no port");
    rq.swarm.data_path_addr = NULL;
    rq.swarm.default_addr_pools = bad_pool;
    rq.swarm.n_default_addr_pools = 1;
    rejected(f->in, &rq, "default address pool \"10.232.0.0\": expected ADDRESS/PREFIX-LENGTH");
    rq.swarm.default_addr_pools = wide_pool;
    rejected(f->in, &rq, "the prefix length is more than 32");
    rq.swarm.default_addr_pools = v6_pool;
    rejected(f->in, &rq, "an IPv6 pool: the swarm's address pools are IPv4");
    rq.swarm.default_addr_pools = many;
    rq.swarm.n_default_addr_pools = ARRAY_SIZE(many);
    rejected(f->in, &rq, "17 default address pools, more than 16");
    rq.swarm.default_addr_pools = pools;
    rq.swarm.n_default_addr_pools = 1;
    rq.swarm.subnet_size = 8;
    rejected(f->in, &rq, "subnet size 8 is shorter than the prefix of default address pool");
    rq.swarm.subnet_size = 0;
    rq.swarm.data_path_port = 80;
    rejected(f->in, &rq, "data path port 80 is not from 1024 to 49151");
    rq.swarm.data_path_port = 0;
    rq.swarm.join_token = TOKEN;
    rejected(f->in, &rq, "swarm init: does not take a join token");
    rq.swarm.join_token = NULL;
    rq.swarm.force = true;
    rejected(f->in, &rq, "swarm init: does not take force");
    rq.swarm.force = false;
    rq.stack = "web";
    rejected(f->in, &rq, "swarm init: does not take a stack or service");
    rq.stack = NULL;

    /* Nothing of the refused ones was written. */
    struct store_swarm *sw = NULL;
    assert_int_equal(store_get_swarm(f->s, &sw), -ENOENT);
    struct intake_result res = submit(f->in, &rq, INTAKE_ACCEPTED);
    intake_result_release(&res);
}

/* ---- join ---- */

static void test_join(void **state)
{
    struct fixture *f = *state;
    const char *addrs[] = {"10.231.0.1:2377", "manager-2", "[fd00::1]:2377", "fd00::2"};
    struct intake_request rq = join_rq();
    rq.swarm.remote_addrs = addrs;
    rq.swarm.n_remote_addrs = ARRAY_SIZE(addrs);
    rq.swarm.role = STORE_SWARM_MANAGER;
    rq.swarm.advertise_addr = "10.231.0.2";
    struct intake_result res = submit(f->in, &rq, INTAKE_ACCEPTED);
    intake_result_release(&res);
    struct store_swarm *sw = row(f->s);
    assert_int_equal(sw->desired_role, STORE_SWARM_MANAGER);
    assert_string_equal(sw->join_addrs_json,
                        "[\"10.231.0.1:2377\",\"manager-2\",\"[fd00::1]:2377\",\"fd00::2\"]");
    assert_string_equal(sw->join_token, TOKEN);
    assert_string_equal(sw->advertise_addr, "10.231.0.2");
    assert_string_equal(sw->source, "grpc");
    store_swarm_free(sw);

    /* A leave afterwards forgets the token. */
    struct intake_request leave = {.kind = INTAKE_SWARM_LEAVE, .source = "cli"};
    res = submit(f->in, &leave, INTAKE_ACCEPTED);
    intake_result_release(&res);
    sw = row(f->s);
    assert_int_equal(sw->desired_role, STORE_SWARM_NONE);
    assert_null(sw->join_token);
    assert_string_equal(sw->join_addrs_json, "[]");
    assert_int_equal(sw->revision, 2);
    store_swarm_free(sw);
}

static void test_join_refused(void **state)
{
    struct fixture *f = *state;
    struct intake_request rq = join_rq();
    const char *token_as_addr[] = {TOKEN};
    const char *empty_addr[] = {""};
    const char *many[INTAKE_SWARM_ADDRS_MAX + 1];
    for (size_t i = 0; i < ARRAY_SIZE(many); i++)
        many[i] = "10.0.0.1";
    char long_token[INTAKE_SWARM_TOKEN_MAX + 2];
    memset(long_token, 'a', sizeof(long_token) - 1);
    memcpy(long_token, "SWMTKN-", 7);
    long_token[sizeof(long_token) - 1] = '\0';

    rq.swarm.role = STORE_SWARM_NONE;
    rejected(f->in, &rq, "swarm join: the role must be worker or manager");
    rq.swarm.role = STORE_SWARM_WORKER;
    rq.swarm.n_remote_addrs = 0;
    rejected(f->in, &rq, "swarm join: no manager address to join");
    rq.swarm.remote_addrs = many;
    rq.swarm.n_remote_addrs = ARRAY_SIZE(many);
    rejected(f->in, &rq, "17 manager addresses, more than 16");
    rq.swarm.remote_addrs = empty_addr;
    rq.swarm.n_remote_addrs = 1;
    rejected(f->in, &rq, "manager address \"\": empty");
    /* A token typed where an address belongs is refused without being echoed. */
    rq.swarm.remote_addrs = token_as_addr;
    rejected(f->in, &rq, "manager address 1 is a join token");
    rq.swarm.remote_addrs = a_manager;
    rq.swarm.join_token = NULL;
    rejected(f->in, &rq, "swarm join: no join token");
    rq.swarm.join_token = "abc";
    rejected(f->in, &rq, "not a swarm join token (those start with SWMTKN-)");
    rq.swarm.join_token = long_token;
    rejected(f->in, &rq, "the join token is longer than 512 bytes");
    rq.swarm.join_token = "SWMTKN-1-abc def";
    rejected(f->in, &rq, "the join token holds a character no join token has");
    rq.swarm.join_token = TOKEN;
    rq.swarm.listen_addr = "0.0.0.0:0";
    rejected(f->in, &rq, "swarm join: listen address \"0.0.0.0:0\": the port is not from 1");
    rq.swarm.listen_addr = NULL;
    rq.swarm.subnet_size = 24;
    rejected(f->in, &rq, "swarm join: does not take a subnet size");
    rq.swarm.subnet_size = 0;
    rq.swarm.force = true;
    rejected(f->in, &rq, "swarm join: does not take force");
    rq.swarm.force = false;
    /* The token never reached the store through a refused request. */
    struct store_swarm *sw = NULL;
    assert_int_equal(store_get_swarm(f->s, &sw), -ENOENT);
    /* Nor the command log: a refused request's record names the cause only. */
    rq.command_id = "c-bad";
    rq.swarm.join_token = "SWMTKN-1-3pu6 not a token";
    rejected(f->in, &rq, "holds a character");
    struct store_command *c = NULL;
    assert_int_equal(store_get_command(f->s, "c-bad", &c), 0);
    assert_int_equal(c->status, STORE_COMMAND_REJECTED);
    assert_string_equal(c->kind, "swarm-join");
    assert_null(strstr(c->error, "3pu6"));
    store_command_free(c);
}

/* ---- leave ---- */

static void test_leave_with_stacks(void **state)
{
    struct fixture *f = *state;
    struct intake_result res;
    struct intake_request j = join_rq();
    res = submit(f->in, &j, INTAKE_ACCEPTED);
    intake_result_release(&res);
    put_stack(f->s, "db");
    put_stack(f->s, "web");
    put_stack(f->s, "gone");
    assert_int_equal(store_mark_stack_removed(f->s, "gone", 0, "cli"), 0);

    struct intake_request rq = {.kind = INTAKE_SWARM_LEAVE, .source = "cli"};
    rejected(f->in, &rq,
             "swarm leave: refused: this node manages 2 stacks (db, web); leaving the swarm "
             "would lose them");
    rejected(f->in, &rq, "or leave with force (--force): that removes their objects, then leaves");
    /* Nothing changed. */
    struct store_swarm *sw = row(f->s);
    assert_int_equal(sw->desired_role, STORE_SWARM_WORKER);
    assert_int_equal(sw->revision, 1);
    store_swarm_free(sw);
    struct store_stack *stacks = NULL;
    size_t n = 0;
    assert_int_equal(store_list_stacks(f->s, STORE_LIST_SUMMARY, &stacks, &n), 0);
    assert_int_equal(n, 2);
    store_stack_array_free(stacks, n);

    /* Forced: the stacks are marked removed in the same transaction. */
    rq.swarm.force = true;
    res = submit(f->in, &rq, INTAKE_ACCEPTED);
    assert_int_equal(res.n_notes, 2);
    assert_non_null(strstr(res.notes[0], "note: stack db marked removed"));
    assert_non_null(strstr(res.notes[1], "note: stack web marked removed"));
    intake_result_release(&res);
    assert_int_equal(store_list_stacks(f->s, STORE_LIST_SUMMARY, &stacks, &n), 0);
    assert_int_equal(n, 0);
    struct store_stack *web = NULL;
    assert_int_equal(store_get_stack(f->s, "web", &web), 0);
    assert_true(web->removed);
    assert_int_equal(web->generation, 2);
    store_stack_free(web);
    sw = row(f->s);
    assert_int_equal(sw->desired_role, STORE_SWARM_NONE);
    assert_true(sw->force);
    assert_int_equal(sw->revision, 2);
    store_swarm_free(sw);

    /* A leave takes no address, token or role. */
    struct intake_request stray = {
        .kind = INTAKE_SWARM_LEAVE, .source = "cli", .swarm = {.join_token = TOKEN}};
    rejected(f->in, &stray, "swarm leave: does not take a join token");
    stray = (struct intake_request){
        .kind = INTAKE_SWARM_LEAVE, .source = "cli", .swarm = {.advertise_addr = "10.0.0.1"}};
    rejected(f->in, &stray, "swarm leave: does not take an address");
}

/* A leave inside the caller's batch (the Kafka source's transaction): refused or not, the
 * batch goes on. */
static void test_leave_in_batch(void **state)
{
    struct fixture *f = *state;
    put_stack(f->s, "web");
    assert_int_equal(store_begin(f->s), 0);
    struct intake_request rq = {.kind = INTAKE_SWARM_LEAVE, .source = "kafka", .command_id = "k1"};
    rejected(f->in, &rq, "this node manages 1 stack (web)");
    rq.command_id = "k2";
    rq.swarm.force = true;
    struct intake_result res = submit(f->in, &rq, INTAKE_ACCEPTED);
    intake_result_release(&res);
    assert_int_equal(store_commit(f->s), 0);
    struct store_command *c = NULL;
    assert_int_equal(store_get_command(f->s, "k1", &c), 0);
    assert_int_equal(c->status, STORE_COMMAND_REJECTED);
    c = store_command_free(c);
    assert_int_equal(store_get_command(f->s, "k2", &c), 0);
    assert_int_equal(c->status, STORE_COMMAND_ACCEPTED);
    store_command_free(c);
}

/* Migration 3 on a version-2 store that holds a swarm row: the row stays, the new columns
 * take their defaults. */
static void test_migration_3(void **state)
{
    struct fixture *f = *state;
    struct intake_request rq = join_rq();
    struct intake_result res = submit(f->in, &rq, INTAKE_ACCEPTED);
    intake_result_release(&res);
    intake_free(f->in);
    f->in = NULL;
    f->s = store_close(f->s);
    char path[4096], err[512];
    snprintf(path, sizeof(path), "%s/store.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    const char *cols[] = {"listen_addr", "data_path_addr", "default_addr_pools",
                          "subnet_size", "data_path_port", "leave_force",
                          "source",      "revision"};
    for (size_t i = 0; i < ARRAY_SIZE(cols); i++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "ALTER TABLE swarm DROP COLUMN %s", cols[i]);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 2", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    assert_int_equal(store_open(path, 0, &f->s, err, sizeof(err)), 0);
    struct store_swarm *sw = row(f->s);
    assert_int_equal(sw->desired_role, STORE_SWARM_WORKER);
    assert_string_equal(sw->join_addrs_json, "[\"10.231.0.1:2377\"]");
    assert_string_equal(sw->join_token, TOKEN);
    assert_string_equal(sw->default_addr_pools_json, "[]");
    assert_null(sw->listen_addr);
    assert_null(sw->source);
    assert_false(sw->force);
    assert_int_equal(sw->revision, 1);
    store_swarm_free(sw);
    struct intake_opts o = {.agent_id = "t1"};
    assert_int_equal(intake_new(f->s, &o, &f->in), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leave_with_stacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leave_in_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_3, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* grpc_command: a Command of the protocol as the gRPC channel takes it — its envelope, then
 * every limit of commands.proto checked (by the Kafka channel's own conversion,
 * envelope_from_command(): the same words) with an error that names the field, the limit and
 * the size; the conversion to the intake's request; the kind of a body this agent does not know;
 * the error code of an intake refusal; the CommandResult bytes (the error cut at 4 KiB on a UTF-8
 * boundary). Also the Hello and Heartbeat of grpc_report against a real store. */
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sources/grpc_command.h"
#include "sources/grpc_report.h"

#define CODE(x) AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_##x
#define K(x)    AXION__AGENT__V1__COMMAND_KIND__COMMAND_KIND_##x

static Axion__Agent__V1__Command *decode(const uint8_t *data, size_t len)
{
    return axion__agent__v1__command__unpack(NULL, len, data);
}

static void test_envelope(void **state)
{
    struct grpc_command_refusal why;
    Axion__Agent__V1__Command c = AXION__AGENT__V1__COMMAND__INIT;
    c.command_id = "";
    assert_int_equal(grpc_command_check_envelope(&c, "a1", &why), -1);
    assert_int_equal(why.code, CODE(MALFORMED));
    assert_non_null(strstr(why.error, "command_id: missing"));
    char longid[200];
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    c.command_id = longid;
    assert_int_equal(grpc_command_check_envelope(&c, "a1", &why), -1);
    assert_int_equal(why.code, CODE(LIMIT));
    assert_non_null(strstr(why.error, "command_id: longer than 128 bytes"));
    c.command_id = "a b";
    assert_int_equal(grpc_command_check_envelope(&c, "a1", &why), -1);
    assert_non_null(strstr(why.error, "command_id: a character other than"));
    c.command_id = "cmd-1:x.y_z";
    assert_int_equal(grpc_command_check_envelope(&c, "a1", &why), 0);
    c.agent_id = "a2";
    assert_int_equal(grpc_command_check_envelope(&c, "a1", &why), -1);
    assert_int_equal(why.code, CODE(WRONG_AGENT));
    c.agent_id = "a1";
    assert_int_equal(grpc_command_check_envelope(&c, "a1", &why), 0);
}

static void test_scale_and_names(void **state)
{
    struct grpc_command_refusal why;
    struct grpc_command_request req;
    Axion__Agent__V1__Scale sc = AXION__AGENT__V1__SCALE__INIT;
    Axion__Agent__V1__Command c = AXION__AGENT__V1__COMMAND__INIT;
    c.command_id = "c1";
    c.body_case = AXION__AGENT__V1__COMMAND__BODY_SCALE;
    c.scale = &sc;
    sc.stack = "web";
    sc.service = "api";
    sc.replicas = 3;
    assert_int_equal(grpc_command_request(&c, &req, &why), 0);
    assert_int_equal(req.rq.kind, INTAKE_SCALE);
    assert_string_equal(req.rq.source, "grpc");
    assert_string_equal(req.rq.command_id, "c1");
    assert_string_equal(req.rq.stack, "web");
    assert_string_equal(req.rq.service, "api");
    assert_int_equal(req.rq.replicas, 3);
    grpc_command_request_release(&req);

    sc.replicas = 10001;
    assert_int_equal(grpc_command_request(&c, &req, &why), -1);
    assert_int_equal(why.code, CODE(LIMIT));
    assert_string_equal(why.error, "scale.replicas: 10001, more than 10000");
    sc.replicas = 1;
    sc.service = "";
    assert_int_equal(grpc_command_request(&c, &req, &why), -1);
    assert_int_equal(why.code, CODE(UNSUPPORTED));
    sc.service = "api";
    sc.stack = "-web";
    assert_int_equal(grpc_command_request(&c, &req, &why), -1);
    assert_int_equal(why.code, CODE(MALFORMED));
    assert_non_null(strstr(why.error, "scale.stack \"-web\": must start with a letter or a digit"));
    char longname[70];
    memset(longname, 'a', 69);
    longname[69] = '\0';
    sc.stack = longname;
    assert_int_equal(grpc_command_request(&c, &req, &why), -1);
    assert_string_equal(why.error, "scale.stack: 69 bytes, more than 63");
    sc.stack = "web";
    sc.service = "a/b";
    assert_int_equal(grpc_command_request(&c, &req, &why), -1);
    assert_non_null(strstr(why.error, "scale.service \"a/b\": only letters, digits"));
}

static void test_deploy_limits(void **state)
{
    struct grpc_command_refusal why;
    struct grpc_command_request req;
    Axion__Agent__V1__Deploy d = AXION__AGENT__V1__DEPLOY__INIT;
    Axion__Agent__V1__Command c = AXION__AGENT__V1__COMMAND__INIT;
    c.command_id = "c1";
    c.body_case = AXION__AGENT__V1__COMMAND__BODY_DEPLOY;
    c.deploy = &d;
    d.stack = "web";
    d.generation = 2;
    d.compose = "services: {}\n";
    Axion__Agent__V1__File f1 = AXION__AGENT__V1__FILE__INIT, f2 = AXION__AGENT__V1__FILE__INIT;
    f1.name = "a.conf";
    f1.content.data = (uint8_t *)"x";
    f1.content.len = 1;
    f2 = f1;
    Axion__Agent__V1__File *files[] = {&f1, &f2};
    d.files = files;
    d.n_files = 1;
    Axion__Agent__V1__Variable v1 = AXION__AGENT__V1__VARIABLE__INIT;
    v1.name = "TAG";
    v1.value = "1.2";
    Axion__Agent__V1__Variable *vars[] = {&v1, &v1};
    d.variables = vars;
    d.n_variables = 1;
    assert_int_equal(grpc_command_request(&c, &req, &why), 0);
    assert_int_equal(req.rq.kind, INTAKE_DEPLOY);
    assert_int_equal(req.rq.generation, 2);
    assert_int_equal(req.rq.n_files, 1);
    assert_string_equal(req.rq.files[0].name, "a.conf");
    assert_int_equal(req.rq.files[0].len, 1);
    assert_string_equal(req.rq.vars[0].value, "1.2");
    assert_null(req.rq.filename);
    grpc_command_request_release(&req);

    d.n_files = 2;
    assert_int_equal(grpc_command_request(&c, &req, &why), -1);
    assert_string_equal(why.error, "deploy.files[1].name: \"a.conf\" is given twice");
    d.n_files = 1;
    d.n_variables = 2;
    assert_int_equal(grpc_command_request(&c, &req, &why), -1);
    assert_string_equal(why.error, "deploy.variables[1].name: TAG is given twice");
    d.n_variables = 1;
    v1.name = "1X";
    assert_int_equal(grpc_command_request(&c, &req, &why), -1);
    assert_int_equal(why.code, CODE(MALFORMED));
    v1.name = "TAG";
    d.generation = 0;
    assert_int_equal(grpc_command_request(&c, &req, &why), -1);
    assert_non_null(strstr(why.error, "deploy.generation: missing"));
    d.generation = 1;
    size_t big = (1u << 20) + 1;
    char *compose = malloc(big + 1);
    memset(compose, '#', big);
    compose[big] = '\0';
    d.compose = compose;
    assert_int_equal(grpc_command_request(&c, &req, &why), -1);
    assert_int_equal(why.code, CODE(LIMIT));
    assert_string_equal(why.error,
                        "deploy.compose: 1048577 bytes, more than the 1048576 a manifest may have");
    free(compose);
    d.compose = "x: 1\n";
    /* 8 MiB of files in all */
    uint8_t *blob = calloc(1, 5u << 20);
    f1.content.data = blob;
    f1.content.len = 5u << 20;
    f2.name = "b.conf";
    f2.content.data = blob;
    f2.content.len = 5u << 20;
    d.n_files = 2;
    assert_int_equal(grpc_command_request(&c, &req, &why), -1);
    assert_int_equal(why.code, CODE(LIMIT));
    assert_non_null(
        strstr(why.error, "deploy.files: 10485760 bytes of content, more than 8388608"));
    free(blob);
}

static void test_unknown_kind(void **state)
{
    /* A Command (id "c9") whose body is field 99: a newer Control Plane's command. */
    static const uint8_t raw[] = {0x0a, 0x02, 'c', '9', 0x9a, 0x06, 0x03, 0x0a, 0x01, 'x'};
    Axion__Agent__V1__Command *c = decode(raw, sizeof(raw));
    assert_non_null(c);
    assert_int_equal(c->body_case, AXION__AGENT__V1__COMMAND__BODY__NOT_SET);
    assert_int_equal((int)grpc_command_kind(c), 99);
    struct grpc_command_refusal why;
    struct grpc_command_request req;
    assert_int_equal(grpc_command_request(c, &req, &why), -1);
    assert_int_equal(why.code, CODE(UNSUPPORTED));
    axion__agent__v1__command__free_unpacked(c, NULL);
}

static void test_refusal_codes(void **state)
{
    assert_int_equal(grpc_command_refusal_code(INTAKE_DEPLOY,
                                               "m.yml:4:5: services.x.privileged: refused by "
                                               "policy: privileged containers are not allowed"),
                     CODE(POLICY));
    assert_int_equal(grpc_command_refusal_code(INTAKE_STOP, "no stack named \"web\""),
                     CODE(NOT_FOUND));
    assert_int_equal(grpc_command_refusal_code(INTAKE_SCALE, "stack \"web\" has no service \"x\""),
                     CODE(NOT_FOUND));
    assert_int_equal(
        grpc_command_refusal_code(INTAKE_DEPLOY, "m.yml:2:3: services: expected a mapping"),
        CODE(MANIFEST));
    assert_int_equal(grpc_command_refusal_code(INTAKE_DEPLOY,
                                               "m.yml: the variables take 2000000 bytes, more "
                                               "than 1048576"),
                     CODE(LIMIT));
}

static void test_logs(void **state)
{
    struct grpc_command_refusal why;
    Axion__Agent__V1__Logs l = AXION__AGENT__V1__LOGS__INIT;
    l.stack = "web";
    l.service = "";
    assert_int_equal(grpc_command_check_logs(&l, &why), -1);
    assert_string_equal(why.error, "logs.service: missing");
    l.service = "api";
    l.limit_bytes = (64u << 20) + 1;
    assert_int_equal(grpc_command_check_logs(&l, &why), -1);
    assert_int_equal(why.code, CODE(LIMIT));
    l.limit_bytes = 0;
    l.tail = 100001;
    assert_int_equal(grpc_command_check_logs(&l, &why), -1);
    l.tail = 10;
    assert_int_equal(grpc_command_check_logs(&l, &why), 0);
}

static void test_result_cut(void **state)
{
    /* 5000 bytes of "é" (2 bytes each): cut to at most 4096 on a character boundary. */
    size_t n = 5000;
    char *err = malloc(n + 1);
    for (size_t i = 0; i < n; i += 2) {
        err[i] = (char)0xc3;
        err[i + 1] = (char)0xa9;
    }
    err[n] = '\0';
    struct grpc_result r = {.command_id = "c1",
                            .outcome = AXION__AGENT__V1__OUTCOME__OUTCOME_REJECTED,
                            .error = err,
                            .kind = K(DEPLOY)};
    uint8_t *data;
    size_t len;
    assert_int_equal(grpc_command_result_pack(&r, &data, &len), 0);
    Axion__Agent__V1__AgentMessage *m = axion__agent__v1__agent_message__unpack(NULL, len, data);
    assert_non_null(m);
    assert_int_equal(m->body_case, AXION__AGENT__V1__AGENT_MESSAGE__BODY_RESULT);
    size_t el = strlen(m->result->error);
    assert_true(el <= 4096);
    assert_string_equal(m->result->error + el - 3, "...");
    assert_int_equal((el - 3) % 2, 0);
    assert_string_equal(m->result->command_id, "c1");
    axion__agent__v1__agent_message__free_unpacked(m, NULL);
    free(data);
    free(err);
}

static void test_reports(void **state)
{
    char *dir = tu_mkdtemp();
    char path[512], err[512];
    snprintf(path, sizeof(path), "%s/store.db", dir);
    struct store *st;
    assert_int_equal(store_open(path, 0, &st, err, sizeof(err)), 0);
    struct store_stack s = {.name = "web", .compose = "services: {}\n", .compose_len = 13};
    assert_int_equal(store_put_stack(st, &s, NULL), 0);
    struct store_stack_status ss = {
        .stack = "web",
        .state = STORE_STATE_CONVERGED,
        .reason = "",
        .services_json =
            "[{\"name\":\"a\",\"running\":2,\"desired\":3},{\"name\":\"b\",\"running\":1,"
            "\"desired\":1}]"};
    assert_int_equal(store_set_stack_status(st, &ss), 0);
    struct store_command done = {
        .command_id = "c-done", .source = "grpc", .kind = "scale", .status = STORE_COMMAND_APPLIED};
    struct store_command pend = {.command_id = "c-pend",
                                 .source = "kafka",
                                 .kind = "deploy",
                                 .status = STORE_COMMAND_ACCEPTED};
    assert_int_equal(store_record_command(st, &done), 0);
    assert_int_equal(store_record_command(st, &pend), 0);
    /* The shape sources/kafka_status.c writes. */
    assert_int_equal(
        store_put_state(st, "channel.kafka",
                        "{\"state\":\"connected\",\"error\":\"\",\"commands_topic\":\"t\","
                        "\"lag\":7,\"partitions\":[{\"partition\":0,\"next_offset\":3,"
                        "\"high_watermark\":10,\"lag\":7,\"last_error\":\"\"}],"
                        "\"outbox\":{\"pending\":2},\"telemetry\":{\"dropped\":5}}"),
        0);
    struct grpc_report_info in = {.agent_id = "a1",
                                  .version = "v",
                                  .hostname = "h",
                                  .started_at_ms = 1000,
                                  .heartbeat_interval_ms = 5000,
                                  .kafka_on = true,
                                  .pending_commands = 1};
    in.node.swarm_state = "active";
    in.node.swarm_role = "manager";
    in.node.node_id = "n1";
    uint8_t *data;
    size_t len;
    assert_int_equal(grpc_report_hello(st, &in, &data, &len), 0);
    Axion__Agent__V1__AgentMessage *m = axion__agent__v1__agent_message__unpack(NULL, len, data);
    assert_non_null(m);
    Axion__Agent__V1__Hello *h = m->hello;
    assert_string_equal(h->agent_id, "a1");
    assert_int_equal(h->n_stacks, 1);
    assert_int_equal(h->stacks[0]->services, 2);
    assert_int_equal(h->stacks[0]->replicas_desired, 4);
    assert_int_equal(h->stacks[0]->replicas_running, 3);
    assert_int_equal(h->stacks[0]->state, AXION__AGENT__V1__STACK_STATE__STACK_STATE_CONVERGED);
    assert_int_equal(h->n_finished_command_ids, 1);
    assert_string_equal(h->finished_command_ids[0], "c-done");
    assert_int_equal(h->n_pending_command_ids, 1);
    assert_string_equal(h->pending_command_ids[0], "c-pend");
    assert_int_equal(h->swarm->role, AXION__AGENT__V1__SWARM_ROLE__SWARM_ROLE_MANAGER);
    assert_true(h->swarm->control_available);
    axion__agent__v1__agent_message__free_unpacked(m, NULL);
    free(data);

    assert_int_equal(grpc_report_heartbeat(st, &in, 7, 6000, &data, &len), 0);
    m = axion__agent__v1__agent_message__unpack(NULL, len, data);
    assert_non_null(m);
    Axion__Agent__V1__Heartbeat *hb = m->heartbeat;
    assert_int_equal(hb->seq, 7);
    assert_int_equal(hb->uptime_ms, 5000);
    assert_non_null(hb->kafka);
    assert_true(hb->kafka->connected);
    assert_int_equal(hb->kafka->lag, 7);
    assert_int_equal(hb->kafka->n_partitions, 1);
    assert_string_equal(hb->kafka->partitions[0]->topic, "t");
    assert_int_equal(hb->kafka->partitions[0]->next_offset, 3);
    assert_int_equal(hb->kafka->partitions[0]->high_watermark, 10);
    assert_int_equal(hb->kafka->outbox_pending, 2);
    assert_int_equal(hb->kafka->telemetry_dropped, 5);
    assert_int_equal(hb->pending_commands, 1);
    axion__agent__v1__agent_message__free_unpacked(m, NULL);
    free(data);
    in.kafka_on = false;
    assert_int_equal(grpc_report_heartbeat(st, &in, 8, 6000, &data, &len), 0);
    m = axion__agent__v1__agent_message__unpack(NULL, len, data);
    assert_null(m->heartbeat->kafka);
    axion__agent__v1__agent_message__free_unpacked(m, NULL);
    free(data);
    store_close(st);
    tu_rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope),      cmocka_unit_test(test_scale_and_names),
        cmocka_unit_test(test_deploy_limits), cmocka_unit_test(test_unknown_kind),
        cmocka_unit_test(test_refusal_codes), cmocka_unit_test(test_logs),
        cmocka_unit_test(test_result_cut),    cmocka_unit_test(test_reports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The wire protocol's generated C code (protobuf-c, proto/axion/agent/v1/): one message of each
 * file packed and unpacked, and the two decoding facts the agent's channels rely on: a command
 * body the agent does not know decodes with no body set (answered REJECTED/UNSUPPORTED), and
 * bytes that are not a message do not decode at all (answered REJECTED/MALFORMED). */
#include "support/testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "axion/agent/v1/commands.pb-c.h"
#include "axion/agent/v1/control.pb-c.h"
#include "axion/agent/v1/deploy.pb-c.h"
#include "telemetry.pb-c.h"

/* Packs m into a fresh buffer; *ret_len is its size. */
static uint8_t *pack(const ProtobufCMessage *m, size_t *ret_len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    assert_int_equal(protobuf_c_message_pack(m, buf), n);
    *ret_len = n;
    return buf;
}

/* commands.proto: a CommandResult with every kind of field. */
static void test_command_result(void **state)
{
    Axion__Agent__V1__CommandResult r = AXION__AGENT__V1__COMMAND_RESULT__INIT;
    r.command_id = "c-1";
    r.outcome = AXION__AGENT__V1__OUTCOME__OUTCOME_DUPLICATE;
    r.original_outcome = AXION__AGENT__V1__OUTCOME__OUTCOME_DONE;
    r.error_code = AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_UNSPECIFIED;
    r.kind = AXION__AGENT__V1__COMMAND_KIND__COMMAND_KIND_SCALE;
    r.stack = "web";
    r.generation = 7;
    r.finished_at_ms = 1700000000123;

    size_t n;
    uint8_t *buf = pack(&r.base, &n);
    Axion__Agent__V1__CommandResult *u = axion__agent__v1__command_result__unpack(NULL, n, buf);
    assert_non_null(u);
    assert_string_equal(u->command_id, "c-1");
    assert_int_equal(u->outcome, AXION__AGENT__V1__OUTCOME__OUTCOME_DUPLICATE);
    assert_int_equal(u->original_outcome, AXION__AGENT__V1__OUTCOME__OUTCOME_DONE);
    /* A kind's value is the field number of its body in Command. */
    assert_int_equal(u->kind, AXION__AGENT__V1__COMMAND__BODY_SCALE);
    assert_string_equal(u->stack, "web");
    assert_string_equal(u->service, "");
    assert_int_equal(u->generation, 7);
    assert_int_equal(u->finished_at_ms, 1700000000123);
    axion__agent__v1__command_result__free_unpacked(u, NULL);
    free(buf);
}

/* deploy.proto: the Kafka envelope with a Deploy, its files (binary) and variables. */
static void test_command_deploy(void **state)
{
    static const uint8_t bin[] = {0x00, 0xff, 'x', 0x00};
    Axion__Agent__V1__File f = AXION__AGENT__V1__FILE__INIT;
    f.name = "./nginx.conf";
    f.content.data = (uint8_t *)bin;
    f.content.len = sizeof(bin);
    Axion__Agent__V1__File *files[] = {&f};
    Axion__Agent__V1__Variable v1 = AXION__AGENT__V1__VARIABLE__INIT;
    v1.name = "TAG";
    v1.value = "1.25";
    Axion__Agent__V1__Variable v2 = AXION__AGENT__V1__VARIABLE__INIT;
    v2.name = "EMPTY";
    v2.value = "";
    Axion__Agent__V1__Variable *vars[] = {&v1, &v2};
    Axion__Agent__V1__Deploy d = AXION__AGENT__V1__DEPLOY__INIT;
    d.stack = "web";
    d.generation = 3;
    d.compose = "services:\n  nginx:\n    image: nginx:${TAG}\n";
    d.n_files = 1;
    d.files = files;
    d.n_variables = 2;
    d.variables = vars;
    Axion__Agent__V1__Command c = AXION__AGENT__V1__COMMAND__INIT;
    c.command_id = "d-3";
    c.issued_at_ms = 1700000000000;
    c.body_case = AXION__AGENT__V1__COMMAND__BODY_DEPLOY;
    c.deploy = &d;

    size_t n;
    uint8_t *buf = pack(&c.base, &n);
    Axion__Agent__V1__Command *u = axion__agent__v1__command__unpack(NULL, n, buf);
    assert_non_null(u);
    assert_string_equal(u->command_id, "d-3");
    assert_string_equal(u->agent_id, "");
    assert_int_equal(u->body_case, AXION__AGENT__V1__COMMAND__BODY_DEPLOY);
    assert_int_equal(u->body_case, AXION__AGENT__V1__COMMAND_KIND__COMMAND_KIND_DEPLOY);
    assert_string_equal(u->deploy->stack, "web");
    assert_int_equal(u->deploy->generation, 3);
    assert_string_equal(u->deploy->compose, d.compose);
    assert_int_equal(u->deploy->n_files, 1);
    assert_string_equal(u->deploy->files[0]->name, "./nginx.conf");
    assert_int_equal(u->deploy->files[0]->content.len, sizeof(bin));
    assert_memory_equal(u->deploy->files[0]->content.data, bin, sizeof(bin));
    assert_int_equal(u->deploy->n_variables, 2);
    assert_string_equal(u->deploy->variables[1]->name, "EMPTY");
    assert_string_equal(u->deploy->variables[1]->value, "");
    axion__agent__v1__command__free_unpacked(u, NULL);
    free(buf);
}

/* deploy.proto: a status event for the status topic. */
static void test_status_event(void **state)
{
    Axion__Agent__V1__StackSummary s = AXION__AGENT__V1__STACK_SUMMARY__INIT;
    s.stack = "web";
    s.generation = 3;
    s.state = AXION__AGENT__V1__STACK_STATE__STACK_STATE_CONVERGED;
    s.replicas_running = 2;
    Axion__Agent__V1__StatusEvent e = AXION__AGENT__V1__STATUS_EVENT__INIT;
    e.agent_id = "agent-1";
    e.event_id = 42;
    e.event_case = AXION__AGENT__V1__STATUS_EVENT__EVENT_STACK_STATUS;
    e.stack_status = &s;

    size_t n;
    uint8_t *buf = pack(&e.base, &n);
    Axion__Agent__V1__StatusEvent *u = axion__agent__v1__status_event__unpack(NULL, n, buf);
    assert_non_null(u);
    assert_int_equal(u->event_id, 42);
    assert_null(u->position);
    assert_int_equal(u->event_case, AXION__AGENT__V1__STATUS_EVENT__EVENT_STACK_STATUS);
    assert_int_equal(u->stack_status->state, AXION__AGENT__V1__STACK_STATE__STACK_STATE_CONVERGED);
    assert_int_equal(u->stack_status->replicas_running, 2);
    axion__agent__v1__status_event__free_unpacked(u, NULL);
    free(buf);
}

/* control.proto: a heartbeat on the stream, and an enrollment request. */
static void test_agent_message(void **state)
{
    Axion__Agent__V1__SwarmSummary sw = AXION__AGENT__V1__SWARM_SUMMARY__INIT;
    sw.role = AXION__AGENT__V1__SWARM_ROLE__SWARM_ROLE_MANAGER;
    sw.node_state = "active";
    Axion__Agent__V1__Heartbeat hb = AXION__AGENT__V1__HEARTBEAT__INIT;
    hb.agent_id = "agent-1";
    hb.seq = 9;
    hb.uptime_ms = 45000;
    hb.swarm = &sw;
    Axion__Agent__V1__AgentMessage m = AXION__AGENT__V1__AGENT_MESSAGE__INIT;
    m.body_case = AXION__AGENT__V1__AGENT_MESSAGE__BODY_HEARTBEAT;
    m.heartbeat = &hb;

    size_t n;
    uint8_t *buf = pack(&m.base, &n);
    Axion__Agent__V1__AgentMessage *u = axion__agent__v1__agent_message__unpack(NULL, n, buf);
    assert_non_null(u);
    assert_int_equal(u->body_case, AXION__AGENT__V1__AGENT_MESSAGE__BODY_HEARTBEAT);
    assert_int_equal(u->heartbeat->seq, 9);
    assert_int_equal(u->heartbeat->swarm->role, AXION__AGENT__V1__SWARM_ROLE__SWARM_ROLE_MANAGER);
    assert_string_equal(u->heartbeat->swarm->node_state, "active");
    assert_null(u->heartbeat->kafka); /* absent when Kafka is off */
    axion__agent__v1__agent_message__free_unpacked(u, NULL);
    free(buf);

    Axion__Agent__V1__EnrollRequest er = AXION__AGENT__V1__ENROLL_REQUEST__INIT;
    er.token = "axt_secret";
    er.csr_pem = "-----BEGIN CERTIFICATE REQUEST-----\n...";
    er.hostname = "node-1";
    buf = pack(&er.base, &n);
    Axion__Agent__V1__EnrollRequest *eu = axion__agent__v1__enroll_request__unpack(NULL, n, buf);
    assert_non_null(eu);
    assert_string_equal(eu->token, "axt_secret");
    assert_string_equal(eu->hostname, "node-1");
    assert_null(eu->facts);
    axion__agent__v1__enroll_request__free_unpacked(eu, NULL);
    free(buf);
}

/* The two decoding facts of the header comment, on a ControlMessage. */
static void test_unknown_and_undecodable(void **state)
{
    /* ControlMessage{command(1): Command{command_id(1): "u-1", field 99: ""}} by hand: a
     * command body from a newer Control Plane. */
    static const uint8_t unknown[] = {0x0a, 0x08, 0x0a, 0x03, 'u', '-', '1', 0x9a, 0x06, 0x00};
    Axion__Agent__V1__ControlMessage *u =
        axion__agent__v1__control_message__unpack(NULL, sizeof(unknown), unknown);
    assert_non_null(u);
    assert_int_equal(u->body_case, AXION__AGENT__V1__CONTROL_MESSAGE__BODY_COMMAND);
    assert_string_equal(u->command->command_id, "u-1");
    assert_int_equal(u->command->body_case, AXION__AGENT__V1__COMMAND__BODY__NOT_SET);
    assert_int_equal(u->command->base.n_unknown_fields, 1);
    assert_int_equal(u->command->base.unknown_fields[0].tag, 99);
    axion__agent__v1__control_message__free_unpacked(u, NULL);

    /* Field 1, length 0x7fffffff, and 2 bytes: truncated. */
    static const uint8_t bad[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x07, 'x', 'y'};
    assert_null(axion__agent__v1__control_message__unpack(NULL, sizeof(bad), bad));

    /* A CancelLogs round trip, so every ControlMessage body was packed once. */
    Axion__Agent__V1__CancelLogs cl = AXION__AGENT__V1__CANCEL_LOGS__INIT;
    cl.command_id = "logs-1";
    Axion__Agent__V1__ControlMessage m = AXION__AGENT__V1__CONTROL_MESSAGE__INIT;
    m.body_case = AXION__AGENT__V1__CONTROL_MESSAGE__BODY_CANCEL_LOGS;
    m.cancel_logs = &cl;
    size_t n;
    uint8_t *buf = pack(&m.base, &n);
    u = axion__agent__v1__control_message__unpack(NULL, n, buf);
    assert_non_null(u);
    assert_int_equal(u->body_case, AXION__AGENT__V1__CONTROL_MESSAGE__BODY_CANCEL_LOGS);
    assert_string_equal(u->cancel_logs->command_id, "logs-1");
    axion__agent__v1__control_message__free_unpacked(u, NULL);
    free(buf);
}

/* The telemetry proto still generates at its old place beside the new package. */
static void test_telemetry_still_there(void **state)
{
    Axion__Agent__V1__TelemetryBatch b = AXION__AGENT__V1__TELEMETRY_BATCH__INIT;
    b.agent_id = "agent-1";
    b.seq = 1;
    size_t n;
    uint8_t *buf = pack(&b.base, &n);
    Axion__Agent__V1__TelemetryBatch *u = axion__agent__v1__telemetry_batch__unpack(NULL, n, buf);
    assert_non_null(u);
    assert_string_equal(u->agent_id, "agent-1");
    axion__agent__v1__telemetry_batch__free_unpacked(u, NULL);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_result),
        cmocka_unit_test(test_command_deploy),
        cmocka_unit_test(test_status_event),
        cmocka_unit_test(test_agent_message),
        cmocka_unit_test(test_unknown_and_undecodable),
        cmocka_unit_test(test_telemetry_still_there),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

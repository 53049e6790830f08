/* Fuzzes what the gRPC channel does with a ControlMessage from the Control Plane
 * (sources/grpc_command.c, as sources/grpc_source.c calls it): the bytes are decoded as a
 * ControlMessage; a Command's envelope is checked (for agent "agent-1"), then a state command
 * becomes an intake request and a Logs command is checked. A request that is made keeps every
 * limit of commands.proto (checked here again); the CommandResult that answers it is packed and
 * must decode again with the same command id, and its error text cut to the protocol's 4 KiB at
 * a UTF-8 boundary. Sanitizers judge the rest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sources/envelope.h"
#include "sources/grpc_command.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_grpc_command: %s:%d: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Reads n bytes, for ASan to see that they are there. */
static volatile uint8_t sink;
static void touch(const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sink ^= ((const uint8_t *)p)[i];
}

static size_t len_of(const char *s)
{
    return s ? strlen(s) : 0;
}

static void check_request(const grpc_pb_command *cmd, const struct intake_request *rq)
{
    CHECK(rq->kind < _INTAKE_KIND_MAX);
    CHECK(rq->source && strcmp(rq->source, "grpc") == 0);
    CHECK(rq->command_id == cmd->command_id);
    CHECK(!rq->refused);
    CHECK(len_of(rq->stack) <= ENVELOPE_NAME_MAX && len_of(rq->service) <= ENVELOPE_NAME_MAX);
    switch (rq->kind) {
    case INTAKE_DEPLOY: {
        CHECK(len_of(rq->stack) >= 1 && rq->generation >= 1);
        CHECK(rq->compose && rq->compose_len >= 1 && rq->compose_len <= ENVELOPE_COMPOSE_MAX);
        CHECK(strlen(rq->compose) == rq->compose_len);
        CHECK(len_of(rq->filename) <= ENVELOPE_FILE_NAME_MAX);
        CHECK(rq->n_files <= ENVELOPE_FILES_MAX && rq->n_vars <= ENVELOPE_VARS_MAX);
        uint64_t bytes = 0;
        for (size_t i = 0; i < rq->n_files; i++) {
            size_t n = strlen(rq->files[i].name);
            CHECK(n >= 1 && n <= ENVELOPE_FILE_NAME_MAX);
            touch(rq->files[i].data, rq->files[i].len);
            bytes += rq->files[i].len;
        }
        CHECK(bytes <= ENVELOPE_FILES_BYTES_MAX);
        bytes = 0;
        for (size_t i = 0; i < rq->n_vars; i++) {
            size_t n = strlen(rq->vars[i].name), vl = strlen(rq->vars[i].value);
            CHECK(n >= 1 && n <= ENVELOPE_VAR_NAME_MAX && vl <= ENVELOPE_VAR_VALUE_MAX);
            bytes += vl;
        }
        CHECK(bytes <= ENVELOPE_VARS_BYTES_MAX);
        break;
    }
    case INTAKE_SCALE:
        CHECK(len_of(rq->stack) >= 1 && len_of(rq->service) >= 1);
        CHECK(rq->replicas <= ENVELOPE_REPLICAS_MAX);
        break;
    case INTAKE_REMOVE:
    case INTAKE_STOP:
    case INTAKE_START:
    case INTAKE_RESTART:
        CHECK(len_of(rq->stack) >= 1 && rq->generation >= 0);
        break;
    default: {
        const struct intake_swarm *sw = &rq->swarm;
        (void)(len_of(sw->advertise_addr) + len_of(sw->listen_addr) + len_of(sw->data_path_addr) +
               len_of(sw->join_token));
        for (size_t i = 0; i < sw->n_remote_addrs; i++)
            (void)len_of(sw->remote_addrs[i]);
        for (size_t i = 0; i < sw->n_default_addr_pools; i++)
            (void)len_of(sw->default_addr_pools[i]);
        break;
    }
    }
}

/* Packs the result the channel would send and decodes it again. */
static void answer(const char *command_id, grpc_pb_kind kind, grpc_pb_error_code code,
                   const char *error, const struct intake_request *rq)
{
    struct grpc_result res = {
        .command_id = command_id,
        .outcome = error ? AXION__AGENT__V1__OUTCOME__OUTCOME_REJECTED
                         : AXION__AGENT__V1__OUTCOME__OUTCOME_ACCEPTED,
        .error_code = code,
        .error = error,
        .kind = kind,
        .stack = rq ? rq->stack : NULL,
        .service = rq ? rq->service : NULL,
    };
    uint8_t *buf = NULL;
    size_t len = 0;
    if (grpc_command_result_pack(&res, &buf, &len) < 0)
        return;
    Axion__Agent__V1__AgentMessage *m = axion__agent__v1__agent_message__unpack(NULL, len, buf);
    CHECK(m && m->result);
    CHECK(strcmp(m->result->command_id, command_id ? command_id : "") == 0);
    CHECK(strlen(m->result->error) <= GRPC_COMMAND_ERROR_MAX);
    axion__agent__v1__agent_message__free_unpacked(m, NULL);
    free(buf);
}

static void on_command(const grpc_pb_command *cmd)
{
    grpc_pb_kind kind = grpc_command_kind(cmd);
    struct grpc_command_refusal why = {0};
    if (grpc_command_check_envelope(cmd, "agent-1", &why) < 0) {
        CHECK(why.code != 0 && why.error[0]);
        answer(why.code == AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_WRONG_AGENT ? cmd->command_id
                                                                                : "",
               kind, why.code, why.error, NULL);
        return;
    }
    CHECK(len_of(cmd->command_id) >= 1 && len_of(cmd->command_id) <= ENVELOPE_ID_MAX);
    if (cmd->body_case == AXION__AGENT__V1__COMMAND__BODY_LOGS) {
        if (grpc_command_check_logs(cmd->logs, &why) < 0)
            answer(cmd->command_id, kind, why.code, why.error, NULL);
        else
            CHECK(cmd->logs->tail <= GRPC_COMMAND_TAIL_MAX &&
                  cmd->logs->limit_bytes <= GRPC_COMMAND_LOGS_MAX && cmd->logs->since_at_ms >= 0);
        return;
    }
    struct grpc_command_request req;
    int r = grpc_command_request(cmd, &req, &why);
    if (r == -1) {
        CHECK(why.code != 0 && why.error[0]);
        answer(cmd->command_id, kind, why.code, why.error, NULL);
        (void)grpc_command_refusal_code(INTAKE_DEPLOY, why.error);
        return;
    }
    if (r < 0)
        return; /* out of memory */
    check_request(cmd, &req.rq);
    CHECK(grpc_command_kind_of(req.rq.kind) == kind);
    answer(cmd->command_id, kind, 0, NULL, &req.rq);
    grpc_command_request_release(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Axion__Agent__V1__ControlMessage *m =
        axion__agent__v1__control_message__unpack(NULL, size, data);
    if (!m)
        return 0;
    if (m->body_case == AXION__AGENT__V1__CONTROL_MESSAGE__BODY_COMMAND)
        on_command(m->command);
    else if (m->body_case == AXION__AGENT__V1__CONTROL_MESSAGE__BODY_CANCEL_LOGS)
        (void)len_of(m->cancel_logs->command_id);
    axion__agent__v1__control_message__free_unpacked(m, NULL);

    /* The text cut at a UTF-8 boundary, whatever the bytes. */
    char text[600], out[64];
    size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    grpc_command_cut_text(text, out, sizeof(out));
    CHECK(strlen(out) < sizeof(out));
    return 0;
}

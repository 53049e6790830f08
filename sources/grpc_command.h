/* grpc_command: a Command of the protocol (deploy.proto) as the gRPC channel takes it — its
 * envelope (id, addressee) checked, its body turned into the intake's request by the Kafka
 * channel's own conversion (envelope_from_command(): the same checks and limits, the same
 * words) — and the CommandResult that answers it. It knows the proto and the intake, no gRPC.
 *
 * Who may call it: sources/ (gRPC today), on the loop thread; pure apart from allocation. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "axion/agent/v1/control.pb-c.h"
#include "sources/intake.h"
#include "sources/tracker.h"

typedef Axion__Agent__V1__Command grpc_pb_command;
typedef Axion__Agent__V1__Outcome grpc_pb_outcome;
typedef Axion__Agent__V1__ErrorCode grpc_pb_error_code;
typedef Axion__Agent__V1__CommandKind grpc_pb_kind;

/* Limits of commands.proto: those of the state commands are envelope.h's (ENVELOPE_*: the
 * conversion is envelope_from_command()'s, one rule for both channels); Logs and the result's. */
#define GRPC_COMMAND_TAIL_MAX       100000u
#define GRPC_COMMAND_LOGS_DEFAULT   (1u << 20)
#define GRPC_COMMAND_LOGS_MAX       (64u << 20)
#define GRPC_COMMAND_TIMEOUT_MAX_MS 3600000u
#define GRPC_COMMAND_ERROR_MAX      4096u /* error texts the agent sends */

/* Why a command was refused: the proto's ErrorCode and a text that names field, limit, size. */
struct grpc_command_refusal {
    grpc_pb_error_code code;
    char error[1024];
};

/* What the intake needs, with the arrays it points into (release it). */
struct grpc_command_request {
    struct intake_request rq;
    struct compose_var *vars;
    struct spec_file *files;
};
void grpc_command_request_release(struct grpc_command_request *r);

/* The command's kind: the body's field number, also for a body this agent does not know (found
 * among the unknown fields); UNSPECIFIED when there is no body at all. */
grpc_pb_kind grpc_command_kind(const grpc_pb_command *cmd);

/* Checks the envelope: the command id and the addressee (agent_id NULL: not checked). 0, or -1
 * with why. */
int grpc_command_check_envelope(const grpc_pb_command *cmd, const char *agent_id,
                                struct grpc_command_refusal *why);

/* Turns a state command (Deploy, RemoveStack, Stop, Start, Restart, Scale, ReconcileNow,
 * SwarmInit, SwarmJoin, SwarmLeave) into an intake request with source "grpc": 0 with *ret (its
 * strings point into cmd: keep cmd until the intake has answered), -1 with why when a field breaks
 * a rule or a limit or the kind is not one the intake takes, -ENOMEM. */
int grpc_command_request(const grpc_pb_command *cmd, struct grpc_command_request *ret,
                         struct grpc_command_refusal *why);

/* Checks a Logs body: 0, or -1 with why. */
int grpc_command_check_logs(const Axion__Agent__V1__Logs *logs, struct grpc_command_refusal *why);

/* The ErrorCode of an intake refusal of a request of kind (its error text says where the
 * refusal came from: the compiler's place, the policy, a missing stack or service). */
grpc_pb_error_code grpc_command_refusal_code(enum intake_kind kind, const char *error);

/* The CommandKind of an intake kind. */
grpc_pb_kind grpc_command_kind_of(enum intake_kind kind);

/* The outcome a command record stands for (a DUPLICATE's original_outcome). */
grpc_pb_outcome grpc_command_outcome_of_status(enum store_command_status st);

/* A command id seen before, sent again with another body (another kind or stack than the record
 * of the first): false with a text for the DUPLICATE's error saying what the id was used for and
 * that this one was not run; true when they agree (or the record does not say). kind is the
 * record's word ("deploy", "logs", intake_kind_to_string). */
bool grpc_command_same_as_recorded(const struct store_command *rec, const char *kind,
                                   const char *stack, char *out, size_t outlen);

/* One result to send. */
struct grpc_result {
    const char *command_id; /* "" when none could be read */
    grpc_pb_outcome outcome;
    grpc_pb_error_code error_code;
    const char *error; /* NULL: none */
    grpc_pb_kind kind;
    const char *stack, *service;
    uint64_t generation, stored_generation;
    grpc_pb_outcome original_outcome;
    int64_t received_at_ms, finished_at_ms;
};

/* The AgentMessage carrying the result, packed (malloc'ed); the error cut to 4 KiB at a UTF-8
 * boundary, ending in "...". */
int grpc_command_result_pack(const struct grpc_result *res, uint8_t **ret, size_t *ret_len);

/* Copies text into out (outlen > 4) as valid UTF-8: a byte that does not start a valid UTF-8
 * sequence becomes '?'; cut at a sequence boundary so that it fits, ending in "..." when cut.
 * Every text that may carry bytes of the Control Plane goes through it before it is sent in a
 * proto string or written to the status JSON. */
void grpc_command_cut_text(const char *text, char *out, size_t outlen);

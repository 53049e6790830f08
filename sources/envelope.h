/* envelope: the Command envelope of the wire protocol (proto/axion/agent/v1/deploy.proto) as a
 * channel receives it, and the CommandResult it sends back. docs/PROTOCOL.md is the contract.
 *
 * envelope_decode() unpacks one Command, checks it against the protocol's limits (command id,
 * names, manifest, files, variables, replicas, the addressee) and turns it into an intake
 * request (sources/intake.h). What the channel must refuse itself (bytes that are no Command,
 * a limit, a command this channel does not carry, another agent's command) still becomes a
 * request, with `refused` set: the intake records it as REJECTED and stores its position, so a
 * bad record never blocks a partition. The envelope_result_*() functions fill a CommandResult
 * for an intake outcome or a tracker's final result.
 *
 * Pure: no store, no I/O, no global state. Any channel that carries Commands may use it (the
 * Kafka consumer does; gRPC can). One thread per envelope.
 *
 *   struct envelope e;
 *   if (envelope_decode(buf, len, ENVELOPE_KAFKA, agent_id, &e) < 0) → out of memory
 *   e.rq.source = "kafka"; e.rq.position = &pos;
 *   if (!e.rq.command_id) e.rq.command_id = <an id of the position>;
 *   intake_submit(in, &e.rq, &res);
 *   envelope_result_from_intake(&e, &res, now, &result);   (strings borrowed from e and res)
 *   envelope_release(&e); */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "axion/agent/v1/commands.pb-c.h"
#include "axion/agent/v1/deploy.pb-c.h"
#include "sources/intake.h"
#include "sources/tracker.h"

/* The protocol's limits (commands.proto, deploy.proto). */
#define ENVELOPE_MAX             (16u << 20) /* one Command record / ControlMessage */
#define ENVELOPE_ID_MAX          128u        /* command_id: [A-Za-z0-9._:-] */
#define ENVELOPE_NAME_MAX        63u         /* stack and service names */
#define ENVELOPE_COMPOSE_MAX     (1u << 20)  /* Deploy.compose */
#define ENVELOPE_FILES_MAX       256u        /* Deploy.files */
#define ENVELOPE_FILE_NAME_MAX   255u
#define ENVELOPE_FILES_BYTES_MAX (8u << 20) /* contents of all files */
#define ENVELOPE_VARS_MAX        1024u      /* Deploy.variables */
#define ENVELOPE_VAR_NAME_MAX    256u
#define ENVELOPE_VAR_VALUE_MAX   (64u << 10)
#define ENVELOPE_VARS_BYTES_MAX  (1u << 20) /* all values */
#define ENVELOPE_FILENAME_MAX    255u       /* Deploy.filename */
#define ENVELOPE_REPLICAS_MAX    10000u     /* Scale.replicas */
#define ENVELOPE_ERROR_MAX       4096u      /* error text the agent sends */
/* Fields of one Command in all (every element of a repeated field, nested and unknown ones
 * too), counted on the wire before anything is allocated: a Deploy at its limits has ~4,000. */
#define ENVELOPE_FIELDS_MAX 8192u

/* The channel a Command came on: Logs is carried by gRPC only. */
enum envelope_channel {
    ENVELOPE_KAFKA,
    ENVELOPE_GRPC,
};

struct envelope {
    Axion__Agent__V1__Command *cmd; /* NULL when the bytes did not decode */
    /* The body's field number (its CommandKind); 0 when there is none. An unknown body: the
     * field number that carried it. */
    int kind;
    /* The command's id as the result names it: "" when the record has none, or one the
     * protocol does not allow (then rq.command_id is NULL: the channel records the refusal
     * under an id of its own, e.g. the record's position). */
    const char *command_id;
    /* The channel's own refusal (also in rq.refused): an ErrorCode (MALFORMED, LIMIT,
     * UNSUPPORTED, WRONG_AGENT) and its text; 0 and "" when the intake decides. */
    Axion__Agent__V1__ErrorCode error_code;
    char error[1024];
    char id[ENVELOPE_ID_MAX + 1]; /* command_id of a record refused before it was decoded */
    /* What the intake gets: kind, command id, names, generation, manifest, files, variables.
     * The caller sets source and position. It borrows from cmd and the arrays below. */
    struct intake_request rq;
    struct compose_var *vars;
    struct spec_file *files;
};

/* Decodes len bytes of a Command for the agent agent_id (NULL: any). 0 with *ret filled (also
 * for a refused command: see error_code), -ENOMEM. Release it with envelope_release(). */
int envelope_decode(const void *buf, size_t len, enum envelope_channel channel,
                    const char *agent_id, struct envelope *ret);
void envelope_release(struct envelope *e);

/* The body of a Command a channel has decoded itself (gRPC: inside a ControlMessage) as the
 * intake's request, with every check and limit envelope_decode() applies to it: 0 with *ret
 * filled (refused: see error_code), -ENOMEM. The id and the addressee are the channel's to
 * check (envelope_id_problem()); ret borrows c (keep it until the intake has answered) and its
 * rq has no command id or source yet. Release it with envelope_release(). */
int envelope_from_command(const Axion__Agent__V1__Command *c, enum envelope_channel channel,
                          struct envelope *ret);

/* command_id: 1..128 bytes of [A-Za-z0-9._:-]. NULL when it is one, else why not. */
const char *envelope_id_problem(const char *id);

/* A stack or service name: 1..63 bytes, a letter or digit, then letters, digits, _ - .
 * 0 when it is one (or empty and not required), else the ErrorCode with why ("field: ..."). */
Axion__Agent__V1__ErrorCode envelope_check_name(const char *field, const char *v, bool required,
                                                char *why, size_t whylen);

/* The CommandKind of an intake kind (COMMAND_KIND_UNSPECIFIED when none). */
Axion__Agent__V1__CommandKind envelope_kind_of(enum intake_kind kind);
/* The outcome a stored command status stands for (a duplicate's original_outcome). */
Axion__Agent__V1__Outcome envelope_outcome_of_status(enum store_command_status status);

/* A CommandResult for what the intake answered (res) to the envelope e; now: finished_at_ms.
 * r's strings are borrowed from e and res: r must not outlive them. */
void envelope_result_from_intake(const struct envelope *e, const struct intake_result *res,
                                 int64_t now, Axion__Agent__V1__CommandResult *r);
/* A CommandResult for a tracker's final result; strings borrowed from f. */
void envelope_result_from_final(const struct tracker_final *f, int64_t now,
                                Axion__Agent__V1__CommandResult *r);

/* s as text a message may carry: at most max bytes of it (cut at a character, "..." added),
 * valid UTF-8, control bytes (but newline and tab) and bytes that are no UTF-8 shown as '?'; into
 * buf (len >= 4). */
const char *envelope_text(const char *s, size_t max, char *buf, size_t len);

/* Packs m into a malloc'ed buffer: 0, -ENOMEM, or -EMSGSIZE past ENVELOPE_MAX. */
int envelope_pack(const ProtobufCMessage *m, uint8_t **ret, size_t *ret_len);

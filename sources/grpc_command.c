#include "sources/grpc_command.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "sources/envelope.h"

#define K(x)    AXION__AGENT__V1__COMMAND_KIND__COMMAND_KIND_##x
#define CODE(x) AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_##x
#define OUT(x)  AXION__AGENT__V1__OUTCOME__OUTCOME_##x

static int refuse(struct grpc_command_refusal *why, grpc_pb_error_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(struct grpc_command_refusal *why, grpc_pb_error_code code, const char *fmt, ...)
{
    char text[sizeof(why->error)];
    va_list ap;
    va_start(ap, fmt);
    why->code = code;
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    /* The texts quote the Control Plane's fields: valid UTF-8 whatever they held. */
    grpc_command_cut_text(text, why->error, sizeof(why->error));
    return -1;
}

void grpc_command_request_release(struct grpc_command_request *r)
{
    free(r->vars);
    free(r->files);
    *r = (struct grpc_command_request){0};
}

grpc_pb_kind grpc_command_kind(const grpc_pb_command *cmd)
{
    if (cmd->body_case != AXION__AGENT__V1__COMMAND__BODY__NOT_SET)
        return (grpc_pb_kind)cmd->body_case;
    /* A body from a newer Control Plane: a field number this agent lacks (21-99). */
    for (unsigned i = 0; i < cmd->base.n_unknown_fields; i++) {
        uint32_t tag = cmd->base.unknown_fields[i].tag;
        if (tag >= 10 && tag < 100)
            return (grpc_pb_kind)tag;
    }
    return K(UNSPECIFIED);
}

int grpc_command_check_envelope(const grpc_pb_command *cmd, const char *agent_id,
                                struct grpc_command_refusal *why)
{
    const char *id = cmd->command_id ? cmd->command_id : "";
    const char *problem = envelope_id_problem(id);
    if (problem)
        return refuse(why, strlen(id) > ENVELOPE_ID_MAX ? CODE(LIMIT) : CODE(MALFORMED),
                      "command_id: %s", *id ? problem : "missing (a command needs one)");
    if (agent_id && cmd->agent_id && *cmd->agent_id && !streq(cmd->agent_id, agent_id)) {
        char theirs[ENVELOPE_ID_MAX + 4];
        return refuse(
            why, CODE(WRONG_AGENT), "agent_id: the command is for agent \"%s\", this is \"%s\"",
            envelope_text(cmd->agent_id, ENVELOPE_ID_MAX, theirs, sizeof(theirs)), agent_id);
    }
    return 0;
}

int grpc_command_request(const grpc_pb_command *cmd, struct grpc_command_request *ret,
                         struct grpc_command_refusal *why)
{
    /* The same conversion and checks as a Command read from Kafka: one rule for both. */
    struct envelope e;
    int r = envelope_from_command(cmd, ENVELOPE_GRPC, &e);
    if (r < 0)
        return r;
    if (e.error_code) {
        refuse(why, e.error_code, "%s", e.error);
        envelope_release(&e);
        return -1;
    }
    *ret = (struct grpc_command_request){.rq = e.rq, .vars = e.vars, .files = e.files};
    ret->rq.source = "grpc";
    ret->rq.command_id = cmd->command_id;
    return 0;
}

static int check_name(const char *field, const char *v, bool required,
                      struct grpc_command_refusal *why)
{
    char text[sizeof(why->error)];
    grpc_pb_error_code code = envelope_check_name(field, v ? v : "", required, text, sizeof(text));
    return code ? refuse(why, code, "%s", text) : 0;
}

int grpc_command_check_logs(const Axion__Agent__V1__Logs *l, struct grpc_command_refusal *why)
{
    if (check_name("logs.stack", l->stack, true, why) < 0 ||
        check_name("logs.service", l->service, true, why) < 0)
        return -1;
    if (l->tail > GRPC_COMMAND_TAIL_MAX)
        return refuse(why, CODE(LIMIT), "logs.tail: %" PRIu32 " lines, more than %u", l->tail,
                      GRPC_COMMAND_TAIL_MAX);
    if (l->limit_bytes > GRPC_COMMAND_LOGS_MAX)
        return refuse(why, CODE(LIMIT), "logs.limit_bytes: %" PRIu64 ", more than %u",
                      l->limit_bytes, GRPC_COMMAND_LOGS_MAX);
    if (l->since_at_ms < 0)
        return refuse(why, CODE(MALFORMED), "logs.since_at_ms: %" PRId64 " is negative",
                      l->since_at_ms);
    return 0;
}

grpc_pb_error_code grpc_command_refusal_code(enum intake_kind kind, const char *error)
{
    if (!error)
        return CODE(MALFORMED);
    /* The intake's and the compiler's texts (sources/intake.c, compose/policy.c). */
    if (strstr(error, "refused by policy"))
        return CODE(POLICY);
    if (strncmp(error, "no stack named", 14) == 0 || strstr(error, "\" has no service \""))
        return CODE(NOT_FOUND);
    if (strstr(error, "more than") || strstr(error, "longer than") || strstr(error, "too large"))
        return CODE(LIMIT);
    if (kind == INTAKE_DEPLOY)
        return CODE(MANIFEST);
    return CODE(MALFORMED);
}

grpc_pb_kind grpc_command_kind_of(enum intake_kind kind)
{
    switch (kind) {
    case INTAKE_DEPLOY:
        return K(DEPLOY);
    case INTAKE_REMOVE:
        return K(REMOVE_STACK);
    case INTAKE_SCALE:
        return K(SCALE);
    case INTAKE_STOP:
        return K(STOP);
    case INTAKE_START:
        return K(START);
    case INTAKE_RESTART:
        return K(RESTART);
    case INTAKE_RECONCILE_NOW:
        return K(RECONCILE_NOW);
    case INTAKE_SWARM_INIT:
        return K(SWARM_INIT);
    case INTAKE_SWARM_JOIN:
        return K(SWARM_JOIN);
    case INTAKE_SWARM_LEAVE:
        return K(SWARM_LEAVE);
    default:
        return K(UNSPECIFIED);
    }
}

grpc_pb_outcome grpc_command_outcome_of_status(enum store_command_status st)
{
    switch (st) {
    case STORE_COMMAND_APPLIED:
        return OUT(DONE);
    case STORE_COMMAND_FAILED:
        return OUT(FAILED);
    case STORE_COMMAND_SUPERSEDED:
        return OUT(SUPERSEDED);
    case STORE_COMMAND_REJECTED:
        return OUT(REJECTED);
    case STORE_COMMAND_STILL_CONVERGING:
        return OUT(STILL_CONVERGING);
    case STORE_COMMAND_CANCELLED:
        return OUT(CANCELLED);
    default:
        return OUT(ACCEPTED);
    }
}

bool grpc_command_same_as_recorded(const struct store_command *rec, const char *kind,
                                   const char *stack, char *out, size_t outlen)
{
    const char *rk = rec->kind ? rec->kind : "";
    const char *rs = rec->stack ? rec->stack : "";
    const char *k = kind ? kind : "";
    const char *st = stack ? stack : "";
    if ((!*rk || streq(rk, k)) && streq(rs, st))
        return true;
    char text[512];
    snprintf(text, sizeof(text),
             "the command id %.128s was used before for %s%s%.63s%s (this %s%s%.63s%s was not "
             "run: a command id names one command)",
             rec->command_id ? rec->command_id : "", *rk ? rk : "a command",
             *rs ? " of stack \"" : "", rs, *rs ? "\"" : "", *k ? k : "command",
             *st ? " of stack \"" : "", st, *st ? "\"" : "");
    grpc_command_cut_text(text, out, outlen);
    return false;
}

/* The length of the valid UTF-8 sequence at p (at most n bytes), 0 when it is not one. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80; /* no overlong form */
        hi = c == 0xed ? 0x9f : 0xbf; /* no surrogate */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf; /* not beyond U+10FFFF */
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

void grpc_command_cut_text(const char *text, char *out, size_t outlen)
{
    /* Text the Control Plane sent comes back in errors, status and results: whatever its bytes,
     * what leaves is valid UTF-8 (a proto3 string the peer can decode, a JSON string). */
    const unsigned char *p = (const unsigned char *)text;
    size_t n = strlen(text), at = 0, o = 0;
    bool cut = false;
    while (at < n) {
        size_t k = utf8_seq(p + at, n - at);
        size_t w = k ? k : 1;
        if (o + w >= outlen) { /* and the NUL */
            cut = true;
            break;
        }
        if (k)
            memcpy(out + o, p + at, k);
        else
            out[o] = '?';
        o += w;
        at += w;
    }
    if (cut) {
        /* Back to the start of a sequence that leaves room for "...". */
        while (o > 0 && o + 4 > outlen) {
            o--;
            while (o > 0 && ((unsigned char)out[o] & 0xc0) == 0x80)
                o--;
        }
        memcpy(out + o, "...", 4);
        return;
    }
    out[o] = '\0';
}

int grpc_command_result_pack(const struct grpc_result *res, uint8_t **ret, size_t *ret_len)
{
    static char empty[] = "";
    char error[GRPC_COMMAND_ERROR_MAX + 1];
    grpc_command_cut_text(res->error ? res->error : "", error, sizeof(error));
    Axion__Agent__V1__CommandResult cr = AXION__AGENT__V1__COMMAND_RESULT__INIT;
    cr.command_id = res->command_id ? (char *)res->command_id : empty;
    cr.outcome = res->outcome;
    cr.error = error;
    cr.error_code = res->error_code;
    cr.kind = res->kind;
    cr.stack = res->stack ? (char *)res->stack : empty;
    cr.service = res->service ? (char *)res->service : empty;
    cr.generation = res->generation;
    cr.stored_generation = res->stored_generation;
    cr.original_outcome = res->original_outcome;
    cr.received_at_ms = res->received_at_ms;
    cr.finished_at_ms = res->finished_at_ms;
    Axion__Agent__V1__AgentMessage m = AXION__AGENT__V1__AGENT_MESSAGE__INIT;
    m.body_case = AXION__AGENT__V1__AGENT_MESSAGE__BODY_RESULT;
    m.result = &cr;
    size_t n = axion__agent__v1__agent_message__get_packed_size(&m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return -ENOMEM;
    axion__agent__v1__agent_message__pack(&m, buf);
    *ret = buf;
    *ret_len = n;
    return 0;
}

#include "sources/grpc_command.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

#define K(x)    AXION__AGENT__V1__COMMAND_KIND__COMMAND_KIND_##x
#define BODY(x) AXION__AGENT__V1__COMMAND__BODY_##x
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

static bool id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
}

int grpc_command_check_envelope(const grpc_pb_command *cmd, const char *agent_id,
                                struct grpc_command_refusal *why)
{
    const char *id = cmd->command_id ? cmd->command_id : "";
    size_t n = strlen(id);
    if (n == 0)
        return refuse(why, CODE(MALFORMED), "Command.command_id: missing (1 to %u bytes)",
                      GRPC_COMMAND_ID_MAX);
    if (n > GRPC_COMMAND_ID_MAX)
        return refuse(why, CODE(LIMIT), "Command.command_id: %zu bytes, more than %u", n,
                      GRPC_COMMAND_ID_MAX);
    for (size_t i = 0; i < n; i++)
        if (!id_char(id[i]))
            return refuse(why, CODE(MALFORMED),
                          "Command.command_id: byte %zu (0x%02x) is not one of A-Z a-z 0-9 . _ : -",
                          i + 1, (unsigned char)id[i]);
    if (agent_id && cmd->agent_id && *cmd->agent_id && !streq(cmd->agent_id, agent_id))
        return refuse(why, CODE(WRONG_AGENT),
                      "Command.agent_id: the command is for agent \"%.128s\", this is \"%s\"",
                      cmd->agent_id, agent_id);
    return 0;
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

/* A stack or service name: 1..63 bytes, a letter or digit, then letters, digits, _ - . */
static int check_name(const char *field, const char *v, bool required,
                      struct grpc_command_refusal *why)
{
    size_t n = v ? strlen(v) : 0;
    if (n == 0)
        return required ? refuse(why, CODE(MALFORMED), "%s: missing", field) : 0;
    if (n > GRPC_COMMAND_NAME_MAX)
        return refuse(why, CODE(LIMIT), "%s: %zu bytes, more than %u", field, n,
                      GRPC_COMMAND_NAME_MAX);
    if (!name_char(v[0]) || v[0] == '_' || v[0] == '-' || v[0] == '.')
        return refuse(why, CODE(MALFORMED), "%s: \"%s\" does not start with a letter or digit",
                      field, v);
    for (size_t i = 0; i < n; i++)
        if (!name_char(v[i]))
            return refuse(why, CODE(MALFORMED),
                          "%s: \"%.63s\": byte %zu (0x%02x) is not a letter, digit, _, - or .",
                          field, v, i + 1, (unsigned char)v[i]);
    return 0;
}

static bool var_name_ok(const char *v)
{
    if (!v || !*v || (*v >= '0' && *v <= '9'))
        return false;
    for (const char *p = v; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return false;
    return true;
}

static int deploy_request(const Axion__Agent__V1__Deploy *d, struct grpc_command_request *out,
                          struct grpc_command_refusal *why)
{
    if (check_name("Deploy.stack", d->stack, true, why) < 0)
        return -1;
    if (d->generation < 1 || d->generation > INT64_MAX)
        return refuse(why, CODE(MALFORMED),
                      "Deploy.generation: %" PRIu64 " is not from 1 to %" PRId64, d->generation,
                      INT64_MAX);
    size_t clen = d->compose ? strlen(d->compose) : 0;
    if (clen == 0)
        return refuse(why, CODE(MALFORMED), "Deploy.compose: empty (1 byte to %u)",
                      GRPC_COMMAND_COMPOSE_MAX);
    if (clen > GRPC_COMMAND_COMPOSE_MAX)
        return refuse(why, CODE(LIMIT), "Deploy.compose: %zu bytes, more than %u", clen,
                      GRPC_COMMAND_COMPOSE_MAX);
    size_t flen = d->filename ? strlen(d->filename) : 0;
    if (flen > GRPC_COMMAND_FILE_NAME_MAX)
        return refuse(why, CODE(LIMIT), "Deploy.filename: %zu bytes, more than %u", flen,
                      GRPC_COMMAND_FILE_NAME_MAX);
    if (d->n_files > GRPC_COMMAND_FILES_MAX)
        return refuse(why, CODE(LIMIT), "Deploy.files: %zu files, more than %u", d->n_files,
                      GRPC_COMMAND_FILES_MAX);
    size_t total = 0;
    for (size_t i = 0; i < d->n_files; i++) {
        const Axion__Agent__V1__File *f = d->files[i];
        size_t n = f->name ? strlen(f->name) : 0;
        if (n == 0 || n > GRPC_COMMAND_FILE_NAME_MAX)
            return refuse(why, n ? CODE(LIMIT) : CODE(MALFORMED),
                          "Deploy.files[%zu].name: %zu bytes, expected 1 to %u", i, n,
                          GRPC_COMMAND_FILE_NAME_MAX);
        for (size_t j = 0; j < i; j++)
            if (streq(d->files[j]->name, f->name))
                return refuse(why, CODE(MALFORMED),
                              "Deploy.files[%zu].name: \"%.255s\" is given twice", i, f->name);
        total += f->content.len;
        if (total > GRPC_COMMAND_FILES_BYTES)
            return refuse(why, CODE(LIMIT),
                          "Deploy.files: the contents take more than %u bytes (at files[%zu])",
                          GRPC_COMMAND_FILES_BYTES, i);
    }
    if (d->n_variables > GRPC_COMMAND_VARS_MAX)
        return refuse(why, CODE(LIMIT), "Deploy.variables: %zu variables, more than %u",
                      d->n_variables, GRPC_COMMAND_VARS_MAX);
    total = 0;
    for (size_t i = 0; i < d->n_variables; i++) {
        const Axion__Agent__V1__Variable *v = d->variables[i];
        size_t n = v->name ? strlen(v->name) : 0;
        if (n > GRPC_COMMAND_VAR_NAME_MAX)
            return refuse(why, CODE(LIMIT), "Deploy.variables[%zu].name: %zu bytes, more than %u",
                          i, n, GRPC_COMMAND_VAR_NAME_MAX);
        if (!var_name_ok(v->name))
            return refuse(why, CODE(MALFORMED),
                          "Deploy.variables[%zu].name: \"%.256s\" is not a name of A-Z a-z 0-9 _ "
                          "that does not start with a digit",
                          i, v->name ? v->name : "");
        for (size_t j = 0; j < i; j++)
            if (streq(d->variables[j]->name, v->name))
                return refuse(why, CODE(MALFORMED), "Deploy.variables[%zu].name: %s is given twice",
                              i, v->name);
        size_t vl = v->value ? strlen(v->value) : 0;
        if (vl > GRPC_COMMAND_VAR_VALUE_MAX)
            return refuse(why, CODE(LIMIT), "Deploy.variables[%zu] (%s): %zu bytes, more than %u",
                          i, v->name, vl, GRPC_COMMAND_VAR_VALUE_MAX);
        total += vl;
        if (total > GRPC_COMMAND_VARS_BYTES)
            return refuse(why, CODE(LIMIT),
                          "Deploy.variables: the values take more than %u bytes (at %s)",
                          GRPC_COMMAND_VARS_BYTES, v->name);
    }
    out->vars = d->n_variables ? calloc(d->n_variables, sizeof(*out->vars)) : NULL;
    out->files = d->n_files ? calloc(d->n_files, sizeof(*out->files)) : NULL;
    if ((d->n_variables && !out->vars) || (d->n_files && !out->files))
        return -ENOMEM;
    for (size_t i = 0; i < d->n_variables; i++)
        out->vars[i] = (struct compose_var){d->variables[i]->name,
                                            d->variables[i]->value ? d->variables[i]->value : ""};
    for (size_t i = 0; i < d->n_files; i++)
        out->files[i] = (struct spec_file){d->files[i]->name, d->files[i]->content.data,
                                           d->files[i]->content.len};
    out->rq.kind = INTAKE_DEPLOY;
    out->rq.stack = d->stack;
    out->rq.generation = (int64_t)d->generation;
    out->rq.compose = d->compose;
    out->rq.compose_len = clen;
    out->rq.filename = flen ? d->filename : NULL;
    out->rq.vars = out->vars;
    out->rq.n_vars = d->n_variables;
    out->rq.files = out->files;
    out->rq.n_files = d->n_files;
    return 0;
}

int grpc_command_request(const grpc_pb_command *cmd, struct grpc_command_request *ret,
                         struct grpc_command_refusal *why)
{
    struct grpc_command_request out = {0};
    int r = 0;
    switch (cmd->body_case) {
    case BODY(DEPLOY):
        r = deploy_request(cmd->deploy, &out, why);
        break;
    case BODY(REMOVE_STACK):
        if ((r = check_name("RemoveStack.stack", cmd->remove_stack->stack, true, why)) < 0)
            break;
        if (cmd->remove_stack->generation > INT64_MAX) {
            r = refuse(why, CODE(MALFORMED), "RemoveStack.generation: %" PRIu64 " is too large",
                       cmd->remove_stack->generation);
            break;
        }
        out.rq.kind = INTAKE_REMOVE;
        out.rq.stack = cmd->remove_stack->stack;
        out.rq.generation = (int64_t)cmd->remove_stack->generation;
        break;
    case BODY(STOP):
    case BODY(START):
    case BODY(RESTART): {
        /* The three share their shape: stack and an optional service. */
        const char *what = cmd->body_case == BODY(STOP)    ? "Stop"
                           : cmd->body_case == BODY(START) ? "Start"
                                                           : "Restart";
        const char *stack = cmd->body_case == BODY(STOP)    ? cmd->stop->stack
                            : cmd->body_case == BODY(START) ? cmd->start->stack
                                                            : cmd->restart->stack;
        const char *service = cmd->body_case == BODY(STOP)    ? cmd->stop->service
                              : cmd->body_case == BODY(START) ? cmd->start->service
                                                              : cmd->restart->service;
        char f1[32], f2[32];
        snprintf(f1, sizeof(f1), "%s.stack", what);
        snprintf(f2, sizeof(f2), "%s.service", what);
        if ((r = check_name(f1, stack, true, why)) < 0 ||
            (r = check_name(f2, service, false, why)) < 0)
            break;
        out.rq.kind = cmd->body_case == BODY(STOP)    ? INTAKE_STOP
                      : cmd->body_case == BODY(START) ? INTAKE_START
                                                      : INTAKE_RESTART;
        out.rq.stack = stack;
        out.rq.service = service && *service ? service : NULL;
        break;
    }
    case BODY(SCALE):
        if ((r = check_name("Scale.stack", cmd->scale->stack, true, why)) < 0)
            break;
        if (!cmd->scale->service || !*cmd->scale->service) {
            /* Every replicated service of the stack at once is not a request the intake takes
             * yet (one command id, one override). */
            r = refuse(why, CODE(UNSUPPORTED),
                       "Scale.service: required by this agent (scaling every service of a stack at "
                       "once is not supported yet)");
            break;
        }
        if ((r = check_name("Scale.service", cmd->scale->service, true, why)) < 0)
            break;
        if (cmd->scale->replicas > GRPC_COMMAND_REPLICAS_MAX) {
            r = refuse(why, CODE(LIMIT), "Scale.replicas: %" PRIu32 " is more than %u",
                       cmd->scale->replicas, GRPC_COMMAND_REPLICAS_MAX);
            break;
        }
        out.rq.kind = INTAKE_SCALE;
        out.rq.stack = cmd->scale->stack;
        out.rq.service = cmd->scale->service;
        out.rq.replicas = cmd->scale->replicas;
        break;
    case BODY(SWARM_INIT): {
        const Axion__Agent__V1__SwarmInit *si = cmd->swarm_init;
        out.rq.kind = INTAKE_SWARM_INIT;
        out.rq.swarm.advertise_addr = si->advertise_addr;
        out.rq.swarm.listen_addr = si->listen_addr;
        out.rq.swarm.data_path_addr = si->data_path_addr;
        out.rq.swarm.default_addr_pools = (const char *const *)si->default_addr_pools;
        out.rq.swarm.n_default_addr_pools = si->n_default_addr_pools;
        out.rq.swarm.subnet_size = si->subnet_size;
        out.rq.swarm.data_path_port = si->data_path_port;
        break;
    }
    case BODY(SWARM_JOIN): {
        /* The intake checks the addresses, the token and their limits (intake_swarm.c); the
         * token is a secret it never puts in a message. */
        const Axion__Agent__V1__SwarmJoin *sj = cmd->swarm_join;
        out.rq.kind = INTAKE_SWARM_JOIN;
        out.rq.swarm.remote_addrs = (const char *const *)sj->remote_addrs;
        out.rq.swarm.n_remote_addrs = sj->n_remote_addrs;
        out.rq.swarm.join_token = sj->join_token;
        out.rq.swarm.role =
            sj->role == AXION__AGENT__V1__SWARM_ROLE__SWARM_ROLE_MANAGER  ? STORE_SWARM_MANAGER
            : sj->role == AXION__AGENT__V1__SWARM_ROLE__SWARM_ROLE_WORKER ? STORE_SWARM_WORKER
                                                                          : STORE_SWARM_NONE;
        out.rq.swarm.advertise_addr = sj->advertise_addr;
        out.rq.swarm.listen_addr = sj->listen_addr;
        out.rq.swarm.data_path_addr = sj->data_path_addr;
        break;
    }
    case BODY(SWARM_LEAVE):
        out.rq.kind = INTAKE_SWARM_LEAVE;
        out.rq.swarm.force = cmd->swarm_leave->force;
        break;
    case BODY(RECONCILE_NOW):
        if ((r = check_name("ReconcileNow.stack", cmd->reconcile_now->stack, false, why)) < 0)
            break;
        out.rq.kind = INTAKE_RECONCILE_NOW;
        out.rq.stack = cmd->reconcile_now->stack && *cmd->reconcile_now->stack
                           ? cmd->reconcile_now->stack
                           : NULL;
        break;
    default:
        r = refuse(why, CODE(UNSUPPORTED), "command kind %d is not a change of desired state",
                   (int)grpc_command_kind(cmd));
        break;
    }
    if (r < 0) {
        grpc_command_request_release(&out);
        return r == -ENOMEM ? -ENOMEM : -1;
    }
    out.rq.source = "grpc";
    out.rq.command_id = cmd->command_id;
    *ret = out;
    return 0;
}

int grpc_command_check_logs(const Axion__Agent__V1__Logs *l, struct grpc_command_refusal *why)
{
    if (check_name("Logs.stack", l->stack, true, why) < 0 ||
        check_name("Logs.service", l->service, true, why) < 0)
        return -1;
    if (l->tail > GRPC_COMMAND_TAIL_MAX)
        return refuse(why, CODE(LIMIT), "Logs.tail: %" PRIu32 " lines, more than %u", l->tail,
                      GRPC_COMMAND_TAIL_MAX);
    if (l->limit_bytes > GRPC_COMMAND_LOGS_MAX)
        return refuse(why, CODE(LIMIT), "Logs.limit_bytes: %" PRIu64 ", more than %u",
                      l->limit_bytes, GRPC_COMMAND_LOGS_MAX);
    if (l->since_at_ms < 0)
        return refuse(why, CODE(MALFORMED), "Logs.since_at_ms: %" PRId64 " is negative",
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

#include "sources/envelope.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

/* ---- refusals ---------------------------------------------------------------------------------
 */

__attribute__((format(printf, 3, 4))) static int
refuse(struct envelope *e, Axion__Agent__V1__ErrorCode code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->error, sizeof(e->error), fmt, ap);
    va_end(ap);
    e->error_code = code;
    e->rq.refused = e->error;
    return 1;
}

#define MALFORMED AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_MALFORMED
#define LIMIT     AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_LIMIT

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* command_id: 1..128 bytes of [A-Za-z0-9._:-]. NULL when fine, else why not. */
static const char *id_problem(const char *id)
{
    size_t n = strlen(id);
    if (n == 0)
        return "empty";
    if (n > ENVELOPE_ID_MAX)
        return "longer than 128 bytes";
    for (const char *p = id; *p; p++)
        if (!is_alnum(*p) && !strchr("._:-", *p))
            return "a character other than A-Z a-z 0-9 . _ : -";
    return NULL;
}

/* A stack or service name: 1..63 bytes, a letter or digit, then letters, digits, _ - . */
static int check_name(struct envelope *e, const char *field, const char *v, bool required)
{
    size_t n = strlen(v);
    if (n == 0)
        return required ? refuse(e, MALFORMED, "%s: missing", field) : 0;
    if (n > ENVELOPE_NAME_MAX)
        return refuse(e, LIMIT, "%s: %zu bytes, more than %u", field, n, ENVELOPE_NAME_MAX);
    if (!is_alnum(v[0]))
        return refuse(e, MALFORMED, "%s \"%s\": must start with a letter or a digit", field, v);
    for (const char *p = v; *p; p++)
        if (!is_alnum(*p) && !strchr("_-.", *p))
            return refuse(e, MALFORMED,
                          "%s \"%.63s\": only letters, digits, '_', '-' and '.' are allowed", field,
                          v);
    return 0;
}

static bool var_name_ok(const char *v)
{
    if (!*v || (*v >= '0' && *v <= '9'))
        return false;
    for (const char *p = v; *p; p++)
        if (!is_alnum(*p) && *p != '_')
            return false;
    return true;
}

static int generation_of(struct envelope *e, const char *field, uint64_t g, int64_t *ret)
{
    if (g > (uint64_t)INT64_MAX)
        return refuse(e, LIMIT, "%s: %" PRIu64 " is more than %" PRId64, field, g, INT64_MAX);
    *ret = (int64_t)g;
    return 0;
}

/* ---- the bodies --------------------------------------------------------------------------------
 */

static int deploy(struct envelope *e, const Axion__Agent__V1__Deploy *d)
{
    struct intake_request *rq = &e->rq;
    rq->kind = INTAKE_DEPLOY;
    rq->stack = d->stack;
    if (check_name(e, "deploy.stack", d->stack, true))
        return 1;
    if (generation_of(e, "deploy.generation", d->generation, &rq->generation))
        return 1;
    if (d->generation == 0)
        return refuse(e, MALFORMED, "deploy.generation: missing (a deploy needs one >= 1)");
    size_t n = strlen(d->compose);
    if (n == 0)
        return refuse(e, MALFORMED, "deploy.compose: empty");
    if (n > ENVELOPE_COMPOSE_MAX)
        return refuse(e, LIMIT, "deploy.compose: %zu bytes, more than the %u a manifest may have",
                      n, ENVELOPE_COMPOSE_MAX);
    rq->compose = d->compose;
    rq->compose_len = n;
    size_t fl = strlen(d->filename);
    if (fl > ENVELOPE_FILENAME_MAX)
        return refuse(e, LIMIT, "deploy.filename: %zu bytes, more than %u", fl,
                      ENVELOPE_FILENAME_MAX);
    rq->filename = fl ? d->filename : NULL;

    if (d->n_files > ENVELOPE_FILES_MAX)
        return refuse(e, LIMIT, "deploy.files: %zu files, more than %u", d->n_files,
                      ENVELOPE_FILES_MAX);
    uint64_t bytes = 0;
    for (size_t i = 0; i < d->n_files; i++) {
        const Axion__Agent__V1__File *f = d->files[i];
        size_t nl = strlen(f->name);
        if (nl == 0)
            return refuse(e, MALFORMED, "deploy.files[%zu].name: empty", i);
        if (nl > ENVELOPE_FILE_NAME_MAX)
            return refuse(e, LIMIT, "deploy.files[%zu].name: %zu bytes, more than %u", i, nl,
                          ENVELOPE_FILE_NAME_MAX);
        for (size_t j = 0; j < i; j++)
            if (streq(d->files[j]->name, f->name))
                return refuse(e, MALFORMED, "deploy.files[%zu].name: \"%.255s\" is given twice", i,
                              f->name);
        bytes += f->content.len;
    }
    if (bytes > ENVELOPE_FILES_BYTES_MAX)
        return refuse(e, LIMIT, "deploy.files: %" PRIu64 " bytes of content, more than %u", bytes,
                      ENVELOPE_FILES_BYTES_MAX);

    if (d->n_variables > ENVELOPE_VARS_MAX)
        return refuse(e, LIMIT, "deploy.variables: %zu variables, more than %u", d->n_variables,
                      ENVELOPE_VARS_MAX);
    bytes = 0;
    for (size_t i = 0; i < d->n_variables; i++) {
        const Axion__Agent__V1__Variable *v = d->variables[i];
        size_t nl = strlen(v->name), vl = strlen(v->value);
        if (nl > ENVELOPE_VAR_NAME_MAX)
            return refuse(e, LIMIT, "deploy.variables[%zu].name: %zu bytes, more than %u", i, nl,
                          ENVELOPE_VAR_NAME_MAX);
        if (!var_name_ok(v->name))
            return refuse(e, MALFORMED,
                          "deploy.variables[%zu].name \"%.256s\": expected letters, digits and "
                          "'_', not starting with a digit",
                          i, v->name);
        for (size_t j = 0; j < i; j++)
            if (streq(d->variables[j]->name, v->name))
                return refuse(e, MALFORMED, "deploy.variables[%zu].name: %.256s is given twice", i,
                              v->name);
        if (vl > ENVELOPE_VAR_VALUE_MAX)
            return refuse(e, LIMIT, "deploy.variables[%zu] (%s): value of %zu bytes, more than %u",
                          i, v->name, vl, ENVELOPE_VAR_VALUE_MAX);
        bytes += vl;
    }
    if (bytes > ENVELOPE_VARS_BYTES_MAX)
        return refuse(e, LIMIT, "deploy.variables: %" PRIu64 " bytes of values, more than %u",
                      bytes, ENVELOPE_VARS_BYTES_MAX);

    e->files = calloc(d->n_files + 1, sizeof(*e->files));
    e->vars = calloc(d->n_variables + 1, sizeof(*e->vars));
    if (!e->files || !e->vars)
        return -ENOMEM;
    for (size_t i = 0; i < d->n_files; i++)
        e->files[i] = (struct spec_file){d->files[i]->name, (const char *)d->files[i]->content.data,
                                         d->files[i]->content.len};
    for (size_t i = 0; i < d->n_variables; i++)
        e->vars[i] = (struct compose_var){d->variables[i]->name, d->variables[i]->value};
    rq->files = e->files;
    rq->n_files = d->n_files;
    rq->vars = e->vars;
    rq->n_vars = d->n_variables;
    return 0;
}

/* stop, start, restart: a stack and an optional service. */
static int target(struct envelope *e, enum intake_kind kind, const char *what, const char *stack,
                  const char *service)
{
    char field[32];
    e->rq.kind = kind;
    e->rq.stack = stack;
    e->rq.service = *service ? service : NULL;
    snprintf(field, sizeof(field), "%s.stack", what);
    if (check_name(e, field, stack, true))
        return 1;
    snprintf(field, sizeof(field), "%s.service", what);
    return check_name(e, field, service, false);
}

/* Swarm membership: the intake checks the addresses, the token and the pools itself
 * (sources/intake_swarm.c); here only what the wire form needs. */
static int swarm(struct envelope *e, const Axion__Agent__V1__Command *c)
{
    struct intake_request *rq = &e->rq;
    struct intake_swarm *sw = &rq->swarm;
    if (c->body_case == AXION__AGENT__V1__COMMAND__BODY_SWARM_INIT) {
        const Axion__Agent__V1__SwarmInit *in = c->swarm_init;
        rq->kind = INTAKE_SWARM_INIT;
        sw->advertise_addr = in->advertise_addr;
        sw->listen_addr = in->listen_addr;
        sw->data_path_addr = in->data_path_addr;
        sw->default_addr_pools = (const char *const *)in->default_addr_pools;
        sw->n_default_addr_pools = in->n_default_addr_pools;
        sw->subnet_size = in->subnet_size;
        sw->data_path_port = in->data_path_port;
    } else if (c->body_case == AXION__AGENT__V1__COMMAND__BODY_SWARM_JOIN) {
        const Axion__Agent__V1__SwarmJoin *j = c->swarm_join;
        rq->kind = INTAKE_SWARM_JOIN;
        sw->remote_addrs = (const char *const *)j->remote_addrs;
        sw->n_remote_addrs = j->n_remote_addrs;
        sw->join_token = j->join_token;
        sw->advertise_addr = j->advertise_addr;
        sw->listen_addr = j->listen_addr;
        sw->data_path_addr = j->data_path_addr;
        switch (j->role) {
        case AXION__AGENT__V1__SWARM_ROLE__SWARM_ROLE_WORKER:
            sw->role = STORE_SWARM_WORKER;
            break;
        case AXION__AGENT__V1__SWARM_ROLE__SWARM_ROLE_MANAGER:
            sw->role = STORE_SWARM_MANAGER;
            break;
        default:
            return refuse(e, MALFORMED, "swarm_join.role: expected WORKER or MANAGER, got %d",
                          (int)j->role);
        }
    } else {
        rq->kind = INTAKE_SWARM_LEAVE;
        sw->force = c->swarm_leave->force;
    }
    return 0;
}

static int body(struct envelope *e, enum envelope_channel channel)
{
    const Axion__Agent__V1__Command *c = e->cmd;
    struct intake_request *rq = &e->rq;
    switch (c->body_case) {
    case AXION__AGENT__V1__COMMAND__BODY_DEPLOY:
        return deploy(e, c->deploy);
    case AXION__AGENT__V1__COMMAND__BODY_REMOVE_STACK:
        rq->kind = INTAKE_REMOVE;
        rq->stack = c->remove_stack->stack;
        if (check_name(e, "remove_stack.stack", c->remove_stack->stack, true))
            return 1;
        return generation_of(e, "remove_stack.generation", c->remove_stack->generation,
                             &rq->generation);
    case AXION__AGENT__V1__COMMAND__BODY_STOP:
        return target(e, INTAKE_STOP, "stop", c->stop->stack, c->stop->service);
    case AXION__AGENT__V1__COMMAND__BODY_START:
        return target(e, INTAKE_START, "start", c->start->stack, c->start->service);
    case AXION__AGENT__V1__COMMAND__BODY_RESTART:
        return target(e, INTAKE_RESTART, "restart", c->restart->stack, c->restart->service);
    case AXION__AGENT__V1__COMMAND__BODY_SCALE:
        if (target(e, INTAKE_SCALE, "scale", c->scale->stack, c->scale->service))
            return 1;
        if (!*c->scale->service)
            return refuse(e, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_UNSUPPORTED,
                          "scale.service: missing (scaling every service of a stack at once is "
                          "not supported by this agent)");
        if (c->scale->replicas > ENVELOPE_REPLICAS_MAX)
            return refuse(e, LIMIT, "scale.replicas: %" PRIu32 ", more than %u", c->scale->replicas,
                          ENVELOPE_REPLICAS_MAX);
        rq->replicas = c->scale->replicas;
        return 0;
    case AXION__AGENT__V1__COMMAND__BODY_RECONCILE_NOW:
        rq->kind = INTAKE_RECONCILE_NOW;
        rq->stack = *c->reconcile_now->stack ? c->reconcile_now->stack : NULL;
        return check_name(e, "reconcile_now.stack", c->reconcile_now->stack, false);
    case AXION__AGENT__V1__COMMAND__BODY_LOGS:
        /* Not desired state: a channel that carries Logs streams them itself. */
        return refuse(e, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_UNSUPPORTED, "%s",
                      channel == ENVELOPE_KAFKA
                          ? "logs: not carried by Kafka (use the gRPC control channel)"
                          : "logs: not an intake request (the channel streams logs itself)");
    case AXION__AGENT__V1__COMMAND__BODY_SWARM_INIT:
    case AXION__AGENT__V1__COMMAND__BODY_SWARM_JOIN:
    case AXION__AGENT__V1__COMMAND__BODY_SWARM_LEAVE:
        return swarm(e, c);
    case AXION__AGENT__V1__COMMAND__BODY__NOT_SET:
        if (e->kind)
            return refuse(e, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_UNSUPPORTED,
                          "command kind %d: not known to this agent", e->kind);
        return refuse(e, MALFORMED, "no command in the envelope (no body is set)");
    default:
        return refuse(e, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_UNSUPPORTED,
                      "command kind %d: not supported by this agent", (int)c->body_case);
    }
}

/* The field number of an unknown body (21..99 are for new commands), or 0. */
static int unknown_body(const Axion__Agent__V1__Command *c)
{
    for (unsigned i = 0; i < c->base.n_unknown_fields; i++) {
        uint32_t tag = c->base.unknown_fields[i].tag;
        if (tag >= 10 && tag <= 99)
            return (int)tag;
    }
    return 0;
}

int envelope_decode(const void *buf, size_t len, enum envelope_channel channel,
                    const char *agent_id, struct envelope *ret)
{
    struct envelope *e = ret;
    *e = (struct envelope){.command_id = "", .rq.kind = _INTAKE_KIND_MAX};
    if (len > ENVELOPE_MAX) {
        refuse(e, LIMIT, "the command is %zu bytes, more than the %u a command may have", len,
               ENVELOPE_MAX);
        return 0;
    }
    e->cmd = axion__agent__v1__command__unpack(NULL, len, buf);
    if (!e->cmd) {
        /* protobuf-c says only that it failed (and -ENOMEM looks the same): bytes that are
         * not a Command, or a message cut short. */
        refuse(e, MALFORMED,
               "not a Command: %zu bytes that do not decode as "
               "axion.agent.v1.Command (deploy.proto)",
               len);
        return 0;
    }
    const Axion__Agent__V1__Command *c = e->cmd;
    const char *problem = id_problem(c->command_id);
    if (!problem) {
        e->command_id = c->command_id;
        e->rq.command_id = c->command_id;
    }
    e->kind = c->body_case != AXION__AGENT__V1__COMMAND__BODY__NOT_SET ? (int)c->body_case
                                                                       : unknown_body(c);
    int r = body(e, channel);
    if (r < 0) {
        envelope_release(e);
        return r;
    }
    /* A later refusal wins: the addressee over the id over the body. */
    if (problem)
        refuse(e, MALFORMED, "command_id: %s", problem);
    if (*c->agent_id && agent_id && !streq(c->agent_id, agent_id))
        refuse(e, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_WRONG_AGENT,
               "agent_id: the command is for agent \"%.128s\", this is \"%.128s\"", c->agent_id,
               agent_id);
    return 0;
}

void envelope_release(struct envelope *e)
{
    if (!e)
        return;
    if (e->cmd)
        axion__agent__v1__command__free_unpacked(e->cmd, NULL);
    free(e->vars);
    free(e->files);
    *e = (struct envelope){.command_id = ""};
}

/* ---- results -----------------------------------------------------------------------------------
 */

Axion__Agent__V1__CommandKind envelope_kind_of(enum intake_kind kind)
{
    switch (kind) {
    case INTAKE_DEPLOY:
        return AXION__AGENT__V1__COMMAND_KIND__COMMAND_KIND_DEPLOY;
    case INTAKE_REMOVE:
        return AXION__AGENT__V1__COMMAND_KIND__COMMAND_KIND_REMOVE_STACK;
    case INTAKE_SCALE:
        return AXION__AGENT__V1__COMMAND_KIND__COMMAND_KIND_SCALE;
    case INTAKE_STOP:
        return AXION__AGENT__V1__COMMAND_KIND__COMMAND_KIND_STOP;
    case INTAKE_START:
        return AXION__AGENT__V1__COMMAND_KIND__COMMAND_KIND_START;
    case INTAKE_RESTART:
        return AXION__AGENT__V1__COMMAND_KIND__COMMAND_KIND_RESTART;
    case INTAKE_RECONCILE_NOW:
        return AXION__AGENT__V1__COMMAND_KIND__COMMAND_KIND_RECONCILE_NOW;
    case INTAKE_SWARM_INIT:
        return AXION__AGENT__V1__COMMAND_KIND__COMMAND_KIND_SWARM_INIT;
    case INTAKE_SWARM_JOIN:
        return AXION__AGENT__V1__COMMAND_KIND__COMMAND_KIND_SWARM_JOIN;
    case INTAKE_SWARM_LEAVE:
        return AXION__AGENT__V1__COMMAND_KIND__COMMAND_KIND_SWARM_LEAVE;
    default:
        return AXION__AGENT__V1__COMMAND_KIND__COMMAND_KIND_UNSPECIFIED;
    }
}

Axion__Agent__V1__Outcome envelope_outcome_of_status(enum store_command_status status)
{
    switch (status) {
    case STORE_COMMAND_RECEIVED:
    case STORE_COMMAND_ACCEPTED:
        return AXION__AGENT__V1__OUTCOME__OUTCOME_ACCEPTED;
    case STORE_COMMAND_APPLIED:
        return AXION__AGENT__V1__OUTCOME__OUTCOME_DONE;
    case STORE_COMMAND_FAILED:
        return AXION__AGENT__V1__OUTCOME__OUTCOME_FAILED;
    case STORE_COMMAND_SUPERSEDED:
        return AXION__AGENT__V1__OUTCOME__OUTCOME_SUPERSEDED;
    case STORE_COMMAND_REJECTED:
        return AXION__AGENT__V1__OUTCOME__OUTCOME_REJECTED;
    case STORE_COMMAND_STILL_CONVERGING:
        return AXION__AGENT__V1__OUTCOME__OUTCOME_STILL_CONVERGING;
    case STORE_COMMAND_CANCELLED:
        return AXION__AGENT__V1__OUTCOME__OUTCOME_CANCELLED;
    default:
        return AXION__AGENT__V1__OUTCOME__OUTCOME_UNSPECIFIED;
    }
}

/* A rejection's ErrorCode (one without a cause is the request's own: MALFORMED). */
static Axion__Agent__V1__ErrorCode code_of_cause(enum intake_cause cause)
{
    switch (cause) {
    case INTAKE_CAUSE_LIMIT:
        return AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_LIMIT;
    case INTAKE_CAUSE_MANIFEST:
        return AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_MANIFEST;
    case INTAKE_CAUSE_POLICY:
        return AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_POLICY;
    case INTAKE_CAUSE_NOT_FOUND:
        return AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_NOT_FOUND;
    default:
        return MALFORMED;
    }
}

/* Whether a result's generation means one (deploy, remove), not a membership revision. */
static bool has_generation(enum intake_kind kind)
{
    return kind == INTAKE_DEPLOY || kind == INTAKE_REMOVE;
}

static const char *service_of(const struct envelope *e)
{
    return e->rq.service ? e->rq.service : "";
}

void envelope_result_from_intake(const struct envelope *e, const struct intake_result *res,
                                 int64_t now, Axion__Agent__V1__CommandResult *r)
{
    axion__agent__v1__command_result__init(r);
    r->command_id = (char *)e->command_id;
    r->kind = (Axion__Agent__V1__CommandKind)e->kind;
    r->stack = (char *)(e->rq.stack ? e->rq.stack : "");
    r->service = (char *)service_of(e);
    r->generation = e->rq.generation > 0 ? (uint64_t)e->rq.generation : 0;
    r->received_at_ms = now;
    r->finished_at_ms = now;
    switch (res->outcome) {
    case INTAKE_ACCEPTED:
        r->outcome = AXION__AGENT__V1__OUTCOME__OUTCOME_ACCEPTED;
        if (has_generation(e->rq.kind) && res->generation > 0)
            r->generation = (uint64_t)res->generation;
        break;
    case INTAKE_DUPLICATE:
        r->outcome = AXION__AGENT__V1__OUTCOME__OUTCOME_DUPLICATE;
        r->original_outcome = envelope_outcome_of_status(res->first_status);
        r->error = (char *)res->error;
        break;
    case INTAKE_SUPERSEDED:
        r->outcome = AXION__AGENT__V1__OUTCOME__OUTCOME_SUPERSEDED;
        r->stored_generation = res->stored_generation > 0 ? (uint64_t)res->stored_generation : 0;
        r->error = (char *)res->error;
        break;
    default:
        r->outcome = AXION__AGENT__V1__OUTCOME__OUTCOME_REJECTED;
        r->error_code =
            res->cause == INTAKE_CAUSE_REFUSED ? e->error_code : code_of_cause(res->cause);
        r->error = (char *)res->error;
        break;
    }
}

void envelope_result_from_final(const struct tracker_final *f, int64_t now,
                                Axion__Agent__V1__CommandResult *r)
{
    axion__agent__v1__command_result__init(r);
    r->command_id = (char *)f->command_id;
    r->kind = envelope_kind_of(f->kind);
    r->stack = (char *)(f->stack ? f->stack : "");
    r->generation = has_generation(f->kind) && f->generation > 0 ? (uint64_t)f->generation : 0;
    r->finished_at_ms = now;
    switch (f->result) {
    case TRACKER_DONE:
        r->outcome = AXION__AGENT__V1__OUTCOME__OUTCOME_DONE;
        break;
    case TRACKER_FAILED:
        r->outcome = AXION__AGENT__V1__OUTCOME__OUTCOME_FAILED;
        r->error_code = AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_ENGINE;
        break;
    case TRACKER_SUPERSEDED:
        r->outcome = AXION__AGENT__V1__OUTCOME__OUTCOME_SUPERSEDED;
        break;
    default:
        r->outcome = AXION__AGENT__V1__OUTCOME__OUTCOME_STILL_CONVERGING;
        break;
    }
    if (f->error)
        r->error = (char *)f->error;
}

int envelope_pack(const ProtobufCMessage *m, uint8_t **ret, size_t *ret_len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    if (n > ENVELOPE_MAX)
        return -EMSGSIZE;
    uint8_t *b = malloc(n ? n : 1);
    if (!b)
        return -ENOMEM;
    protobuf_c_message_pack(m, b);
    *ret = b;
    *ret_len = n;
    return 0;
}

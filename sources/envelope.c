#include "sources/envelope.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/toml.h"
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

const char *envelope_id_problem(const char *id)
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

Axion__Agent__V1__ErrorCode envelope_check_name(const char *field, const char *v, bool required,
                                                char *why, size_t whylen)
{
    size_t n = strlen(v);
    if (n == 0) {
        if (!required)
            return 0;
        snprintf(why, whylen, "%s: missing", field);
        return MALFORMED;
    }
    if (n > ENVELOPE_NAME_MAX) {
        snprintf(why, whylen, "%s: %zu bytes, more than %u", field, n, ENVELOPE_NAME_MAX);
        return LIMIT;
    }
    char shown[ENVELOPE_NAME_MAX + 4];
    if (!is_alnum(v[0])) {
        snprintf(why, whylen, "%s \"%s\": must start with a letter or a digit", field,
                 envelope_text(v, ENVELOPE_NAME_MAX, shown, sizeof(shown)));
        return MALFORMED;
    }
    for (const char *p = v; *p; p++)
        if (!is_alnum(*p) && !strchr("_-.", *p)) {
            snprintf(why, whylen, "%s \"%s\": only letters, digits, '_', '-' and '.' are allowed",
                     field, envelope_text(v, ENVELOPE_NAME_MAX, shown, sizeof(shown)));
            return MALFORMED;
        }
    return 0;
}

static int check_name(struct envelope *e, const char *field, const char *v, bool required)
{
    char why[sizeof(e->error)];
    Axion__Agent__V1__ErrorCode code = envelope_check_name(field, v, required, why, sizeof(why));
    return code ? refuse(e, code, "%s", why) : 0;
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

/* ---- the bytes before they are decoded ---------------------------------------------------------
 *
 * protobuf-c allocates a struct for every element of a repeated field and copies every unknown
 * field: a 16 MiB record of empty elements would cost hundreds of MiB. So the wire form is
 * walked first, by the descriptors, and refused before anything is allocated when it holds more
 * than ENVELOPE_FIELDS_MAX fields in all, nests deeper than the schema does, or has a string
 * field that is not UTF-8 text without NUL bytes (proto3 strings are UTF-8; a NUL would cut the
 * string short unseen). */

#define SCAN_DEPTH_MAX 8
#define NOT_A_COMMAND                                                                              \
    "not a Command: %zu bytes that do not decode as axion.agent.v1.Command (deploy.proto): "

struct scan {
    struct envelope *e;
    size_t fields;
    size_t len;        /* of the whole record */
    const uint8_t *id; /* the last top-level command_id (field 1), for the refusal's result */
    size_t id_len;
};

/* A varint at *p (before end): 0, or -1 when cut short or longer than 10 bytes. */
static int scan_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *ret = v;
            return 0;
        }
    }
    return -1;
}

static bool text_ok(const uint8_t *s, size_t len)
{
    return !memchr(s, '\0', len) && toml_utf8_valid((const char *)s, len);
}

static int scan_message(struct scan *sc, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                        size_t len, const char *path, unsigned depth)
{
    const uint8_t *end = p + len;
    unsigned seen[32] = {0}; /* occurrences of each known field, for the element's index */
    if (depth > SCAN_DEPTH_MAX)
        return refuse(sc->e, LIMIT, "%s: nested more than %u deep", path, SCAN_DEPTH_MAX);
    while (p < end) {
        size_t at = (size_t)(p - (end - len));
        uint64_t tag, n;
        if (scan_varint(&p, end, &tag) < 0 || (tag >> 3) == 0 || (tag >> 3) > 536870911u)
            return refuse(sc->e, MALFORMED, NOT_A_COMMAND "%s: a bad field tag at byte %zu",
                          sc->len, *path ? path : "the envelope", at);
        uint32_t num = (uint32_t)(tag >> 3);
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, num);
        char here[160];
        size_t idx = f ? (size_t)(f - d->fields) : 0;
        unsigned nth = f && idx < ARRAY_SIZE(seen) ? seen[idx]++ : 0;
        if (!f)
            snprintf(here, sizeof(here), "%s%sfield %" PRIu32, path, *path ? "." : "", num);
        else if (f->label == PROTOBUF_C_LABEL_REPEATED)
            snprintf(here, sizeof(here), "%s%s%s[%u]", path, *path ? "." : "", f->name, nth);
        else
            snprintf(here, sizeof(here), "%s%s%s", path, *path ? "." : "", f->name);
        if (++sc->fields > ENVELOPE_FIELDS_MAX)
            return refuse(sc->e, LIMIT, "%s: the command has more than %u fields in all", here,
                          ENVELOPE_FIELDS_MAX);
        switch (tag & 7) {
        case 0:
            if (scan_varint(&p, end, &n) < 0)
                return refuse(sc->e, MALFORMED, NOT_A_COMMAND "%s: a number cut short", sc->len,
                              here);
            break;
        case 1:
        case 5: {
            size_t w = (tag & 7) == 1 ? 8 : 4;
            if ((size_t)(end - p) < w)
                return refuse(sc->e, MALFORMED, NOT_A_COMMAND "%s: a number cut short", sc->len,
                              here);
            p += w;
            break;
        }
        case 2:
            if (scan_varint(&p, end, &n) < 0 || n > (uint64_t)(end - p))
                return refuse(sc->e, MALFORMED,
                              NOT_A_COMMAND "%s: its length runs past the end of the record",
                              sc->len, here);
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                int r = scan_message(sc, f->descriptor, p, (size_t)n, here, depth + 1);
                if (r)
                    return r;
            } else if (f && f->type == PROTOBUF_C_TYPE_STRING) {
                if (!text_ok(p, (size_t)n))
                    return refuse(sc->e, MALFORMED, "%s: not UTF-8 text (or holds a NUL byte)",
                                  here);
                if (depth == 0 && num == 1) {
                    sc->id = p;
                    sc->id_len = (size_t)n;
                }
            }
            p += n;
            break;
        default:
            return refuse(sc->e, MALFORMED,
                          NOT_A_COMMAND "%s: wire type %u is not supported (groups are not used)",
                          sc->len, here, (unsigned)(tag & 7));
        }
    }
    return 0;
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
            if (streq(d->files[j]->name, f->name)) {
                char shown[ENVELOPE_FILE_NAME_MAX + 4];
                return refuse(e, MALFORMED, "deploy.files[%zu].name: \"%s\" is given twice", i,
                              envelope_text(f->name, ENVELOPE_FILE_NAME_MAX, shown, sizeof(shown)));
            }
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
        char shown[ENVELOPE_VAR_NAME_MAX + 4];
        if (nl > ENVELOPE_VAR_NAME_MAX)
            return refuse(e, LIMIT, "deploy.variables[%zu].name: %zu bytes, more than %u", i, nl,
                          ENVELOPE_VAR_NAME_MAX);
        if (!var_name_ok(v->name))
            return refuse(e, MALFORMED,
                          "deploy.variables[%zu].name \"%s\": expected letters, digits and "
                          "'_', not starting with a digit",
                          i, envelope_text(v->name, ENVELOPE_VAR_NAME_MAX, shown, sizeof(shown)));
        for (size_t j = 0; j < i; j++)
            if (streq(d->variables[j]->name, v->name))
                return refuse(e, MALFORMED, "deploy.variables[%zu].name: %s is given twice", i,
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

static int body(struct envelope *e, const Axion__Agent__V1__Command *c,
                enum envelope_channel channel)
{
    struct intake_request *rq = &e->rq;
    e->kind = c->body_case != AXION__AGENT__V1__COMMAND__BODY__NOT_SET ? (int)c->body_case
                                                                       : unknown_body(c);
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
    struct scan sc = {.e = e, .len = len};
    if (scan_message(&sc, &axion__agent__v1__command__descriptor, buf, len, "", 0)) {
        /* Refused before decoding: the result still names the command when its id is good. */
        if (sc.id && sc.id_len <= ENVELOPE_ID_MAX) {
            memcpy(e->id, sc.id, sc.id_len);
            e->id[sc.id_len] = '\0';
            if (!envelope_id_problem(e->id)) {
                e->command_id = e->id;
                e->rq.command_id = e->id;
            }
        }
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
    const char *problem = envelope_id_problem(c->command_id);
    if (!problem) {
        e->command_id = c->command_id;
        e->rq.command_id = c->command_id;
    }
    int r = body(e, c, channel);
    if (r < 0) {
        envelope_release(e);
        return r;
    }
    /* A later refusal wins: the addressee over the id over the body. */
    if (problem)
        refuse(e, MALFORMED, "command_id: %s", problem);
    if (*c->agent_id && agent_id && !streq(c->agent_id, agent_id)) {
        char theirs[ENVELOPE_ID_MAX + 4], ours[ENVELOPE_ID_MAX + 4];
        refuse(e, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_WRONG_AGENT,
               "agent_id: the command is for agent \"%s\", this is \"%s\"",
               envelope_text(c->agent_id, ENVELOPE_ID_MAX, theirs, sizeof(theirs)),
               envelope_text(agent_id, ENVELOPE_ID_MAX, ours, sizeof(ours)));
    }
    return 0;
}

int envelope_from_command(const Axion__Agent__V1__Command *c, enum envelope_channel channel,
                          struct envelope *ret)
{
    struct envelope *e = ret;
    *e = (struct envelope){.command_id = "", .rq.kind = _INTAKE_KIND_MAX};
    int r = body(e, c, channel);
    if (r < 0) {
        envelope_release(e);
        return r;
    }
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

/* A name the result may echo: one the checks took, else "" (a refused record's stack may be
 * megabytes of anything). */
static bool echo_ok(const char *v)
{
    size_t n = v ? strnlen(v, ENVELOPE_NAME_MAX + 1) : 0;
    if (n == 0 || n > ENVELOPE_NAME_MAX || !is_alnum(v[0]))
        return false;
    for (const char *p = v; *p; p++)
        if (!is_alnum(*p) && !strchr("_-.", *p))
            return false;
    return true;
}

static const char *service_of(const struct envelope *e)
{
    return echo_ok(e->rq.service) ? e->rq.service : "";
}

void envelope_result_from_intake(const struct envelope *e, const struct intake_result *res,
                                 int64_t now, Axion__Agent__V1__CommandResult *r)
{
    axion__agent__v1__command_result__init(r);
    r->command_id = (char *)e->command_id;
    r->kind = (Axion__Agent__V1__CommandKind)e->kind;
    r->stack = (char *)(echo_ok(e->rq.stack) ? e->rq.stack : "");
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

const char *envelope_text(const char *s, size_t max, char *buf, size_t len)
{
    if (!len)
        return "";
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strnlen((const char *)p, max + 1), o = 0;
    bool cut = n > max;
    if (cut)
        n = max;
    size_t room = len - 1 - (cut && len > 4 ? 3 : 0);
    for (size_t i = 0; i < n && o < room;) {
        /* the longest valid UTF-8 sequence at i, within n */
        size_t k = 1;
        if (p[i] >= 0xc0 && p[i] < 0xf8)
            k = p[i] >= 0xf0 ? 4 : p[i] >= 0xe0 ? 3 : 2;
        if (k > 1 && (i + k > n || !toml_utf8_valid((const char *)p + i, k)))
            k = 0; /* invalid or cut: one byte, shown as '?' */
        if (k == 0 || (k == 1 && ((p[i] < 0x20 && p[i] != '\n' && p[i] != '\t') || p[i] >= 0x7f))) {
            buf[o++] = '?';
            i++;
            continue;
        }
        if (o + k > room)
            break;
        memcpy(buf + o, p + i, k);
        o += k;
        i += k;
    }
    if (cut && len > 4) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

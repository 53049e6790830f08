#include "sources/grpc_report.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "axion/agent/v1/control.pb-c.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sources/grpc_command.h"

#define ROLE(x)  AXION__AGENT__V1__SWARM_ROLE__SWARM_ROLE_##x
#define STATE(x) AXION__AGENT__V1__STACK_STATE__STACK_STATE_##x
#define K(x)     AXION__AGENT__V1__COMMAND_KIND__COMMAND_KIND_##x

static char empty[] = "";

/* Everything a report points into, freed after packing. */
struct parts {
    struct store_stack *stacks;
    size_t n_stacks;
    struct store_stack_status *status;
    size_t n_status;
    Axion__Agent__V1__StackSummary *sums;
    Axion__Agent__V1__StackSummary **sum_ptrs;
    size_t n_sums;
    uint32_t omitted;
    char **reasons;

    Axion__Agent__V1__SwarmSummary swarm;

    struct store_command *cmds;
    size_t n_cmds;
    char *finished[GRPC_REPORT_IDS_MAX];
    size_t n_finished;
    char *pending[GRPC_REPORT_IDS_MAX];
    size_t n_pending;

    json_t *kafka_json;
    Axion__Agent__V1__KafkaSummary kafka;
    Axion__Agent__V1__KafkaPartition *parts;
    Axion__Agent__V1__KafkaPartition **part_ptrs;
};

static void parts_release(struct parts *p)
{
    store_stack_array_free(p->stacks, p->n_stacks);
    store_stack_status_array_free(p->status, p->n_status);
    for (size_t i = 0; p->reasons && i < p->n_sums; i++)
        free(p->reasons[i]);
    free(p->reasons);
    free(p->sums);
    free(p->sum_ptrs);
    store_command_array_free(p->cmds, p->n_cmds);
    json_decref(p->kafka_json);
    free(p->parts);
    free(p->part_ptrs);
}

static Axion__Agent__V1__StackState stack_state(enum store_stack_state s)
{
    switch (s) {
    case STORE_STATE_PENDING:
        return STATE(PENDING);
    case STORE_STATE_PROGRESSING:
        return STATE(PROGRESSING);
    case STORE_STATE_CONVERGED:
        return STATE(CONVERGED);
    case STORE_STATE_DEGRADED:
        return STATE(DEGRADED);
    case STORE_STATE_FAILED:
        return STATE(FAILED);
    case STORE_STATE_REMOVED:
        return STATE(REMOVED);
    default:
        return STATE(UNSPECIFIED);
    }
}

static char *cut(const char *text, size_t max)
{
    char *out = malloc(max + 1);
    if (out)
        grpc_command_cut_text(text ? text : "", out, max + 1);
    return out;
}

/* Every stack (also removed ones the loop has not pruned yet), with its status. */
static int build_stacks(struct store *st, struct parts *p)
{
    int r =
        store_list_stacks(st, STORE_LIST_SUMMARY | STORE_LIST_REMOVED, &p->stacks, &p->n_stacks);
    if (r < 0)
        return r;
    r = store_list_stack_status(st, &p->status, &p->n_status);
    if (r < 0)
        return r;
    size_t n = p->n_stacks < GRPC_REPORT_STACKS_MAX ? p->n_stacks : GRPC_REPORT_STACKS_MAX;
    p->omitted = (uint32_t)(p->n_stacks - n);
    if (!n)
        return 0;
    p->sums = calloc(n, sizeof(*p->sums));
    p->sum_ptrs = calloc(n, sizeof(*p->sum_ptrs));
    p->reasons = calloc(n, sizeof(*p->reasons));
    if (!p->sums || !p->sum_ptrs || !p->reasons)
        return -ENOMEM;
    size_t j = 0; /* both lists are sorted by name */
    for (size_t i = 0; i < n; i++) {
        const struct store_stack *s = &p->stacks[i];
        Axion__Agent__V1__StackSummary *sum = &p->sums[i];
        axion__agent__v1__stack_summary__init(sum);
        p->sum_ptrs[i] = sum;
        p->n_sums = i + 1;
        sum->stack = s->name;
        sum->generation = (uint64_t)s->generation;
        while (j < p->n_status && strcmp(p->status[j].stack, s->name) < 0)
            j++;
        const struct store_stack_status *ss =
            j < p->n_status && streq(p->status[j].stack, s->name) ? &p->status[j] : NULL;
        sum->state = ss ? stack_state(ss->state) : STATE(PENDING);
        p->reasons[i] = cut(ss ? ss->reason : "not reconciled yet", GRPC_REPORT_REASON_MAX);
        if (!p->reasons[i])
            return -ENOMEM;
        sum->reason = p->reasons[i];
        sum->updated_at_ms = ss ? ss->updated_at : s->updated_at;
        struct store_apply *ap = NULL;
        if (store_last_apply(st, s->name, &ap) == 0)
            sum->applied_generation = (uint64_t)ap->generation;
        store_apply_free(ap);
        json_t *services = ss && ss->services_json ? json_loads(ss->services_json, 0, NULL) : NULL;
        size_t k;
        json_t *svc;
        json_array_foreach(services, k, svc)
        {
            sum->services++;
            json_int_t d = json_integer_value(json_object_get(svc, "desired"));
            json_int_t run = json_integer_value(json_object_get(svc, "running"));
            sum->replicas_desired += d > 0 ? (uint32_t)d : 0;
            sum->replicas_running += run > 0 ? (uint32_t)run : 0;
        }
        json_decref(services);
    }
    return 0;
}

static Axion__Agent__V1__SwarmRole role_of(const char *role, const char *state)
{
    if (state && streq(state, "inactive"))
        return ROLE(NONE);
    if (role && streq(role, "manager"))
        return ROLE(MANAGER);
    if (role && streq(role, "worker"))
        return ROLE(WORKER);
    return ROLE(UNSPECIFIED);
}

static void build_swarm(struct store *st, const struct grpc_report_info *in, struct parts *p)
{
    Axion__Agent__V1__SwarmSummary *s = &p->swarm;
    axion__agent__v1__swarm_summary__init(s);
    s->role = role_of(in->node.swarm_role, in->node.swarm_state);
    s->node_state = in->node.swarm_state ? (char *)in->node.swarm_state : empty;
    s->node_id = in->node.node_id ? (char *)in->node.node_id : empty;
    s->control_available =
        s->role == ROLE(MANAGER) && in->node.swarm_state && streq(in->node.swarm_state, "active");
    struct store_swarm *sw = NULL;
    if (store_get_swarm(st, &sw) == 0) {
        s->desired_role = sw->desired_role == STORE_SWARM_MANAGER  ? ROLE(MANAGER)
                          : sw->desired_role == STORE_SWARM_WORKER ? ROLE(WORKER)
                                                                   : ROLE(NONE);
    }
    store_swarm_free(sw);
}

static int build_commands(struct store *st, struct parts *p)
{
    /* Enough of the log to find 100 of each, newest first. */
    int r = store_list_commands(st, 2000, &p->cmds, &p->n_cmds);
    if (r < 0)
        return r;
    for (size_t i = 0; i < p->n_cmds; i++) {
        switch (p->cmds[i].status) {
        case STORE_COMMAND_RECEIVED:
        case STORE_COMMAND_ACCEPTED:
            if (p->n_pending < GRPC_REPORT_IDS_MAX)
                p->pending[p->n_pending++] = p->cmds[i].command_id;
            break;
        default:
            if (p->n_finished < GRPC_REPORT_IDS_MAX)
                p->finished[p->n_finished++] = p->cmds[i].command_id;
            break;
        }
    }
    return 0;
}

static int64_t jint(json_t *o, const char *k, int64_t dflt)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static char *jstr(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? (char *)v : empty;
}

/* What the Kafka channel said of itself (store key "channel.kafka", written by
 * sources/kafka_status.c): "state" ("connected"), "lag", "error", "commands_topic",
 * "partitions" [{partition, next_offset, high_watermark, lag, last_error}],
 * "outbox" {"pending"}, "telemetry" {"dropped"}. */
static int build_kafka(struct store *st, struct parts *p)
{
    Axion__Agent__V1__KafkaSummary *k = &p->kafka;
    axion__agent__v1__kafka_summary__init(k);
    k->lag = -1;
    struct store_state *v = NULL;
    size_t n = 0;
    if (store_list_state(st, "channel.kafka", &v, &n) < 0)
        return 0;
    for (size_t i = 0; i < n && !p->kafka_json; i++)
        if (streq(v[i].key, "channel.kafka"))
            p->kafka_json = json_loads(v[i].value, 0, NULL);
    store_state_array_free(v, n);
    json_t *o = p->kafka_json;
    if (!json_is_object(o))
        return 0;
    const char *state = json_string_value(json_object_get(o, "state"));
    k->connected =
        json_is_true(json_object_get(o, "connected")) || (state && streq(state, "connected"));
    k->lag = jint(o, "lag", -1);
    k->last_error = *jstr(o, "last_error") ? jstr(o, "last_error") : jstr(o, "error");
    k->outbox_pending = (uint64_t)jint(json_object_get(o, "outbox"), "pending", 0);
    k->telemetry_dropped = (uint64_t)jint(json_object_get(o, "telemetry"), "dropped", 0);
    json_t *parts = json_object_get(o, "partitions");
    size_t np = json_array_size(parts);
    if (np > 1000)
        np = 1000;
    if (!np)
        return 0;
    p->parts = calloc(np, sizeof(*p->parts));
    p->part_ptrs = calloc(np, sizeof(*p->part_ptrs));
    if (!p->parts || !p->part_ptrs)
        return -ENOMEM;
    for (size_t i = 0; i < np; i++) {
        json_t *e = json_array_get(parts, i);
        Axion__Agent__V1__KafkaPartition *kp = &p->parts[i];
        axion__agent__v1__kafka_partition__init(kp);
        kp->topic = *jstr(e, "topic") ? jstr(e, "topic") : jstr(o, "commands_topic");
        kp->partition = (int32_t)jint(e, "partition", 0);
        kp->next_offset = jint(e, "next_offset", -1);
        kp->high_watermark = jint(e, "high_watermark", -1);
        kp->lag = jint(e, "lag", -1);
        kp->last_error = jstr(e, "last_error");
        p->part_ptrs[i] = kp;
    }
    k->partitions = p->part_ptrs;
    k->n_partitions = np;
    return 0;
}

static int pack(const Axion__Agent__V1__AgentMessage *m, uint8_t **ret, size_t *ret_len)
{
    size_t n = axion__agent__v1__agent_message__get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return -ENOMEM;
    axion__agent__v1__agent_message__pack(m, buf);
    *ret = buf;
    *ret_len = n;
    return 0;
}

int grpc_report_hello(struct store *st, const struct grpc_report_info *in, uint8_t **ret,
                      size_t *ret_len)
{
    static Axion__Agent__V1__CommandKind supported[] = {
        K(DEPLOY), K(REMOVE_STACK), K(STOP),       K(START),       K(RESTART),       K(SCALE),
        K(LOGS),   K(SWARM_INIT),   K(SWARM_JOIN), K(SWARM_LEAVE), K(RECONCILE_NOW),
    };
    struct parts p = {0};
    int r = build_stacks(st, &p);
    if (r >= 0)
        r = build_commands(st, &p);
    if (r < 0) {
        parts_release(&p);
        return r;
    }
    build_swarm(st, in, &p);
    Axion__Agent__V1__Hello h = AXION__AGENT__V1__HELLO__INIT;
    h.agent_id = (char *)in->agent_id;
    h.version = (char *)in->version;
    h.hostname = in->hostname ? (char *)in->hostname : empty;
    h.started_at_ms = in->started_at_ms;
    h.heartbeat_interval_ms = in->heartbeat_interval_ms;
    h.stacks = p.sum_ptrs;
    h.n_stacks = p.n_sums;
    h.stacks_omitted = p.omitted;
    h.finished_command_ids = p.finished;
    h.n_finished_command_ids = p.n_finished;
    h.pending_command_ids = p.pending;
    h.n_pending_command_ids = p.n_pending;
    h.swarm = &p.swarm;
    h.supported_commands = supported;
    h.n_supported_commands = ARRAY_SIZE(supported);
    Axion__Agent__V1__AgentMessage m = AXION__AGENT__V1__AGENT_MESSAGE__INIT;
    m.body_case = AXION__AGENT__V1__AGENT_MESSAGE__BODY_HELLO;
    m.hello = &h;
    r = pack(&m, ret, ret_len);
    parts_release(&p);
    return r;
}

int grpc_report_heartbeat(struct store *st, const struct grpc_report_info *in, uint64_t seq,
                          int64_t now_ms, uint8_t **ret, size_t *ret_len)
{
    struct parts p = {0};
    int r = build_stacks(st, &p);
    if (r >= 0 && in->kafka_on)
        r = build_kafka(st, &p);
    if (r < 0) {
        parts_release(&p);
        return r;
    }
    build_swarm(st, in, &p);
    Axion__Agent__V1__ReconcileSummary rs = AXION__AGENT__V1__RECONCILE_SUMMARY__INIT;
    rs.last_pass_at_ms = in->node.last_pass_at;
    rs.ok = in->node.last_pass_at && in->node.last_pass_result == 0;
    char *err = cut(in->node.last_pass_error, GRPC_REPORT_REASON_MAX);
    rs.error = err ? err : empty;
    rs.duration_ms = in->last_pass_ms;
    rs.passes = in->passes;
    Axion__Agent__V1__Heartbeat hb = AXION__AGENT__V1__HEARTBEAT__INIT;
    hb.agent_id = (char *)in->agent_id;
    hb.version = (char *)in->version;
    hb.seq = seq;
    hb.sent_at_ms = now_ms;
    hb.uptime_ms = now_ms > in->started_at_ms ? (uint64_t)(now_ms - in->started_at_ms) : 0;
    hb.swarm = &p.swarm;
    hb.stacks = p.sum_ptrs;
    hb.n_stacks = p.n_sums;
    hb.stacks_omitted = p.omitted;
    hb.reconcile = &rs;
    hb.kafka = in->kafka_on ? &p.kafka : NULL;
    hb.pending_commands = in->pending_commands;
    hb.log_streams = in->log_streams;
    Axion__Agent__V1__AgentMessage m = AXION__AGENT__V1__AGENT_MESSAGE__INIT;
    m.body_case = AXION__AGENT__V1__AGENT_MESSAGE__BODY_HEARTBEAT;
    m.heartbeat = &hb;
    r = pack(&m, ret, ret_len);
    free(err);
    parts_release(&p);
    return r;
}

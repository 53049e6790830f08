/* kafka_report: the status events of {prefix}.status (StatusEvent, deploy.proto), written to the
 * store's outbox in the transaction of what they report:
 *   - a command's intake outcome (ACCEPTED, DUPLICATE, SUPERSEDED, REJECTED): in the consumer's
 *     batch transaction, with the record's position;
 *   - a command's final result (DONE, FAILED, SUPERSEDED, STILL_CONVERGING): the tracker's sink,
 *     inside the transaction that records the result;
 *   - a stack's state change and a finished apply: from the loop's pass reports.
 * kafka_producer.c takes them from the outbox to Kafka. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "axion/agent/v1/commands.pb-c.h"
#include "lib/array.h"
#include "lib/log.h"
#include "lib/util.h"
#include "reconciler/reconciler.h"
#include "sources/kafka_internal.h"

#define REASON_MAX 1024u /* StackSummary.reason, ServiceState.reason */

/* Packs ev (agent id and time filled in here) into the outbox. */
static int put_event(struct kafka *k, Axion__Agent__V1__StatusEvent *ev)
{
    ev->agent_id = k->agent_id;
    if (!ev->at_ms)
        ev->at_ms = kafka_now_ms();
    uint8_t *buf = NULL;
    size_t len = 0;
    int r = envelope_pack(&ev->base, &buf, &len);
    if (r < 0)
        return r;
    r = store_outbox_add(k->store, k->status_topic, k->agent_id, buf, len, NULL);
    free(buf);
    return r;
}

/* s as bounded valid UTF-8 text (envelope_text()) in buf of max + 4 bytes. */
static const char *cut(const char *s, size_t max, char *buf)
{
    return envelope_text(s, max, buf, max + 4);
}

/* ---- commands ----------------------------------------------------------------------------------
 */

int kafka_report_outcome(struct kafka *k, const struct envelope *e, const struct intake_result *res,
                         const rd_kafka_message_t *m)
{
    Axion__Agent__V1__CommandResult r;
    char error[ENVELOPE_ERROR_MAX];
    envelope_result_from_intake(e, res, kafka_now_ms(), &r);
    /* Bounded valid text whatever the intake's message quotes: a status event that does not
     * encode or that a reader cannot parse would hold the batch or the status topic. */
    r.error = (char *)cut(r.error, ENVELOPE_ERROR_MAX - 4, error);
    Axion__Agent__V1__KafkaPosition pos = AXION__AGENT__V1__KAFKA_POSITION__INIT;
    pos.topic = (char *)rd_kafka_topic_name(m->rkt);
    pos.partition = m->partition;
    pos.offset = m->offset;
    Axion__Agent__V1__StatusEvent ev = AXION__AGENT__V1__STATUS_EVENT__INIT;
    ev.position = &pos;
    ev.event_case = AXION__AGENT__V1__STATUS_EVENT__EVENT_COMMAND_RESULT;
    ev.command_result = &r;
    return put_event(k, &ev);
}

void kafka_report_final(const struct tracker_final *f, void *userdata)
{
    struct kafka *k = userdata;
    Axion__Agent__V1__CommandResult r;
    int64_t now = kafka_now_ms();
    envelope_result_from_final(f, now, &r);
    char buf[ENVELOPE_ERROR_MAX];
    r.error = (char *)cut(r.error, ENVELOPE_ERROR_MAX - 4, buf);
    struct store_command *c = NULL;
    if (store_get_command(k->store, f->command_id, &c) == 0)
        r.received_at_ms = c->received_at;
    Axion__Agent__V1__StatusEvent ev = AXION__AGENT__V1__STATUS_EVENT__INIT;
    ev.event_case = AXION__AGENT__V1__STATUS_EVENT__EVENT_COMMAND_RESULT;
    ev.command_result = &r;
    ev.at_ms = now;
    int e = put_event(k, &ev);
    store_command_free(c);
    if (e < 0)
        log_warnx("kafka: the result %s of command %s is not reported: %s",
                  tracker_result_to_string(f->result), f->command_id, store_errmsg(k->store));
    else
        log_info("kafka: command %s: %s%s%s", f->command_id, tracker_result_to_string(f->result),
                 f->error ? ": " : "", f->error ? f->error : "");
    kafka_producer_kick(k); /* runs after the tracker's commit */
}

/* ---- stacks ---------------------------------------------------------------------------------- */

static Axion__Agent__V1__StackState stack_state_of(enum store_stack_state s)
{
    switch (s) {
    case STORE_STATE_PENDING:
        return AXION__AGENT__V1__STACK_STATE__STACK_STATE_PENDING;
    case STORE_STATE_PROGRESSING:
        return AXION__AGENT__V1__STACK_STATE__STACK_STATE_PROGRESSING;
    case STORE_STATE_CONVERGED:
        return AXION__AGENT__V1__STACK_STATE__STACK_STATE_CONVERGED;
    case STORE_STATE_DEGRADED:
        return AXION__AGENT__V1__STACK_STATE__STACK_STATE_DEGRADED;
    case STORE_STATE_FAILED:
        return AXION__AGENT__V1__STACK_STATE__STACK_STATE_FAILED;
    case STORE_STATE_REMOVED:
        return AXION__AGENT__V1__STACK_STATE__STACK_STATE_REMOVED;
    default:
        return AXION__AGENT__V1__STACK_STATE__STACK_STATE_UNSPECIFIED;
    }
}

static struct kafka_stack_seen *seen_get(struct kafka *k, const char *stack)
{
    for (size_t i = 0; i < k->n_seen; i++)
        if (streq(k->seen[i].stack, stack))
            return &k->seen[i];
    return NULL;
}

static void seen_clear(struct kafka_stack_seen *s)
{
    free(s->stack);
    free(s->reason);
}

static void seen_remove(struct kafka *k, struct kafka_stack_seen *s)
{
    seen_clear(s);
    *s = k->seen[--k->n_seen];
}

/* Opens a transaction on the first write of a pass's events. */
static int begin_once(struct kafka *k, bool *open)
{
    if (*open || store_in_transaction(k->store))
        return 0;
    int r = store_begin(k->store);
    if (r == 0)
        *open = true;
    return r;
}

/* A StackSummary with the stack's services as its status row has them. */
static int report_stack(struct kafka *k, const struct reconciler_stack_report *sr,
                        const struct store_apply *last)
{
    Axion__Agent__V1__StackSummary s = AXION__AGENT__V1__STACK_SUMMARY__INIT;
    char reason[REASON_MAX + 4];
    s.stack = (char *)sr->stack;
    s.generation = sr->generation > 0 ? (uint64_t)sr->generation : 0;
    s.applied_generation = last && last->generation > 0 ? (uint64_t)last->generation : 0;
    s.state = stack_state_of(sr->state);
    s.reason = (char *)cut(sr->reason, REASON_MAX - 3, reason);
    s.updated_at_ms = kafka_now_ms();

    struct store_stack_status *st = NULL;
    json_t *services = NULL;
    if (store_get_stack_status(k->store, sr->stack, &st) == 0 && st->services_json)
        services = json_loads(st->services_json, 0, NULL);
    size_t n = json_is_array(services) ? json_array_size(services) : 0;
    Axion__Agent__V1__ServiceState *svc = calloc(n + 1, sizeof(*svc));
    Axion__Agent__V1__ServiceState **ptrs = calloc(n + 1, sizeof(*ptrs));
    int r = 0;
    if (!svc || !ptrs) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(services, i);
        axion__agent__v1__service_state__init(&svc[i]);
        const char *name = json_string_value(json_object_get(o, "name"));
        json_int_t want = json_integer_value(json_object_get(o, "desired"));
        json_int_t running = json_integer_value(json_object_get(o, "running"));
        svc[i].name = (char *)(name ? name : "");
        svc[i].replicas_desired = want > 0 ? (uint32_t)want : 0;
        svc[i].replicas_running = running > 0 ? (uint32_t)running : 0;
        s.replicas_desired += svc[i].replicas_desired;
        s.replicas_running += svc[i].replicas_running;
        ptrs[i] = &svc[i];
    }
    s.services = (uint32_t)n;
    s.n_service_states = n;
    s.service_states = ptrs;
    Axion__Agent__V1__StatusEvent ev = AXION__AGENT__V1__STATUS_EVENT__INIT;
    ev.event_case = AXION__AGENT__V1__STATUS_EVENT__EVENT_STACK_STATUS;
    ev.stack_status = &s;
    r = put_event(k, &ev);
out:
    free(svc);
    free(ptrs);
    json_decref(services);
    store_stack_status_free(st);
    return r;
}

static unsigned count_steps(json_t *plan, const char *action)
{
    unsigned n = 0;
    size_t i;
    json_t *step;
    json_array_foreach(json_object_get(plan, "steps"), i, step)
    {
        const char *a = json_string_value(json_object_get(step, "action"));
        if (a && streq(a, action))
            n++;
    }
    return n;
}

static int report_apply(struct kafka *k, const struct store_apply *a)
{
    Axion__Agent__V1__ApplyResult ar = AXION__AGENT__V1__APPLY_RESULT__INIT;
    char error[ENVELOPE_ERROR_MAX];
    ar.stack = a->stack;
    ar.generation = a->generation > 0 ? (uint64_t)a->generation : 0;
    ar.started_at_ms = a->started_at;
    ar.finished_at_ms = a->finished_at;
    ar.ok = a->result && streq(a->result, "ok");
    if (!ar.ok && a->result)
        ar.error = (char *)cut(strncmp(a->result, "failed: ", 8) == 0 ? a->result + 8 : a->result,
                               ENVELOPE_ERROR_MAX - 4, error);
    json_t *plan = a->plan_json ? json_loads(a->plan_json, 0, NULL) : NULL;
    ar.creates = count_steps(plan, "create");
    ar.updates = count_steps(plan, "update");
    ar.removes = count_steps(plan, "remove");
    json_decref(plan);
    Axion__Agent__V1__StatusEvent ev = AXION__AGENT__V1__STATUS_EVENT__INIT;
    ev.event_case = AXION__AGENT__V1__STATUS_EVENT__EVENT_APPLY_RESULT;
    ev.apply_result = &ar;
    return put_event(k, &ev);
}

/* One stack of a pass: a status event when its state, generation or reason changed, an apply
 * result when an apply finished since the last one reported. */
static int pass_stack(struct kafka *k, const struct reconciler_stack_report *sr, bool *open)
{
    struct kafka_stack_seen *seen = seen_get(k, sr->stack);
    const char *reason = sr->reason ? sr->reason : "";
    struct store_apply *last = NULL;
    int r = store_last_apply(k->store, sr->stack, &last);
    if (r < 0 && r != -ENOENT)
        return r;
    bool fresh = !seen;
    if (!seen) {
        seen = ARRAY_PUSH(&k->seen, &k->n_seen, &k->cap_seen);
        if (!seen || !(seen->stack = strdup(sr->stack))) {
            if (seen)
                k->n_seen--;
            store_apply_free(last);
            return -ENOMEM;
        }
        /* An apply that ended before the channel started was reported then (or is old). */
        seen->apply_id =
            last && last->finished_at && last->finished_at < k->started_at_ms ? last->id : 0;
    }
    bool changed = fresh || seen->state != sr->state || seen->generation != sr->generation ||
                   !seen->reason || !streq(seen->reason, reason);
    r = 0;
    if (last && last->finished_at && last->id != seen->apply_id) {
        r = begin_once(k, open);
        if (r == 0)
            r = report_apply(k, last);
        if (r == 0)
            seen->apply_id = last->id;
    }
    if (r == 0 && changed) {
        r = begin_once(k, open);
        if (r == 0)
            r = report_stack(k, sr, last);
        if (r == 0) {
            char *dup = strdup(reason);
            if (dup) {
                free(seen->reason);
                seen->reason = dup;
            }
            seen->state = sr->state;
            seen->generation = sr->generation;
        }
    }
    store_apply_free(last);
    if (r == 0 && sr->state == STORE_STATE_REMOVED)
        seen_remove(k, seen);
    return r;
}

void kafka_report_pass(const struct reconciler_pass_report *rep, void *userdata)
{
    struct kafka *k = userdata;
    if (!rep->n_stacks)
        return;
    bool open = false;
    int r = 0;
    for (size_t i = 0; i < rep->n_stacks && r == 0; i++)
        r = pass_stack(k, &rep->stacks[i], &open);
    if (open)
        r = r < 0 ? (store_rollback(k->store), r) : store_commit(k->store);
    if (r < 0) {
        /* The next change reports the state again; forget what this pass said. */
        log_warnx("kafka: the stack states of a pass are not reported: %s",
                  r == -ENOMEM ? "out of memory" : store_errmsg(k->store));
        for (size_t i = 0; i < k->n_seen; i++)
            seen_clear(&k->seen[i]);
        k->n_seen = 0;
        return;
    }
    if (open)
        kafka_producer_kick(k);
}

void kafka_report_release(struct kafka *k)
{
    for (size_t i = 0; i < k->n_seen; i++)
        seen_clear(&k->seen[i]);
    free(k->seen);
    k->seen = NULL;
    k->n_seen = k->cap_seen = 0;
}

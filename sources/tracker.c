#include "sources/tracker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"

struct pending {
    char *command_id;
    char *source;
    char *stack; /* NULL: every stack (reconcile-now) */
    enum intake_kind kind;
    int64_t generation;
    int64_t accepted_at;
    int64_t deadline;
};

struct sink {
    char *source;
    tracker_sink fn;
    void *userdata;
};

struct tracker {
    struct store *store;
    uint64_t timeout_ms;
    struct pending *pending;
    size_t n_pending, cap_pending;
    struct sink *sinks;
    size_t n_sinks;
};

static const char *const results[_TRACKER_RESULT_MAX] = {
    [TRACKER_DONE] = "done",
    [TRACKER_FAILED] = "failed",
    [TRACKER_STILL_CONVERGING] = "still_converging",
    [TRACKER_SUPERSEDED] = "superseded",
};

const char *tracker_result_to_string(enum tracker_result result)
{
    return (unsigned)result < _TRACKER_RESULT_MAX ? results[result] : NULL;
}

static void pending_clear(struct pending *p)
{
    free(p->command_id);
    free(p->source);
    free(p->stack);
}

int tracker_new(struct store *st, uint64_t timeout_ms, struct tracker **ret)
{
    struct tracker *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->store = st;
    t->timeout_ms = timeout_ms;
    *ret = t;
    return 0;
}

struct tracker *tracker_free(struct tracker *t)
{
    if (!t)
        return NULL;
    for (size_t i = 0; i < t->n_pending; i++)
        pending_clear(&t->pending[i]);
    free(t->pending);
    for (size_t i = 0; i < t->n_sinks; i++)
        free(t->sinks[i].source);
    free(t->sinks);
    free(t);
    return NULL;
}

int tracker_set_sink(struct tracker *t, const char *source, tracker_sink sink, void *userdata)
{
    for (size_t i = 0; i < t->n_sinks; i++)
        if (streq(t->sinks[i].source, source)) {
            t->sinks[i].fn = sink;
            t->sinks[i].userdata = userdata;
            return 0;
        }
    struct sink *n = realloc(t->sinks, (t->n_sinks + 1) * sizeof(*n));
    if (!n)
        return -ENOMEM;
    t->sinks = n;
    char *dup = strdup(source);
    if (!dup)
        return -ENOMEM;
    n[t->n_sinks++] = (struct sink){.source = dup, .fn = sink, .userdata = userdata};
    return 0;
}

size_t tracker_pending(const struct tracker *t)
{
    return t->n_pending;
}

static int push(struct tracker *t, const char *command_id, const char *source, const char *stack,
                enum intake_kind kind, int64_t generation, int64_t accepted_at)
{
    if (t->n_pending == t->cap_pending) {
        size_t cap = t->cap_pending ? 2 * t->cap_pending : 16;
        struct pending *n = realloc(t->pending, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        t->pending = n;
        t->cap_pending = cap;
    }
    struct pending p = {
        .command_id = strdup(command_id),
        .source = strdup(source ? source : ""),
        .stack = stack && *stack ? strdup(stack) : NULL,
        .kind = kind,
        .generation = generation,
        .accepted_at = accepted_at,
        .deadline = accepted_at + (int64_t)t->timeout_ms,
    };
    if (!p.command_id || !p.source || (stack && *stack && !p.stack)) {
        pending_clear(&p);
        return -ENOMEM;
    }
    t->pending[t->n_pending++] = p;
    return 0;
}

int tracker_add(struct tracker *t, const struct intake_request *req,
                const struct intake_result *res, int64_t accepted_at)
{
    if (!req->command_id || res->outcome != INTAKE_ACCEPTED)
        return 0;
    return push(t, req->command_id, req->source, req->stack, req->kind, res->generation,
                accepted_at);
}

static int kind_from_string(const char *s)
{
    for (int k = 0; k < _INTAKE_KIND_MAX; k++) {
        const char *n = intake_kind_to_string((enum intake_kind)k);
        if (n && s && streq(n, s))
            return k;
    }
    return -EINVAL;
}

int tracker_load(struct tracker *t)
{
    struct store_command *c = NULL;
    size_t n = 0;
    int r = store_list_commands(t->store, 0, &c, &n);
    if (r < 0)
        return r;
    /* Oldest first, so results go out in the order the commands came. */
    for (size_t i = n; i-- > 0 && r == 0;) {
        if (c[i].status != STORE_COMMAND_ACCEPTED)
            continue;
        int k = kind_from_string(c[i].kind);
        if (k < 0)
            continue;
        r = push(t, c[i].command_id, c[i].source, c[i].stack, (enum intake_kind)k, c[i].generation,
                 c[i].received_at);
    }
    store_command_array_free(c, n);
    return r;
}

static enum store_command_status status_of(enum tracker_result r)
{
    switch (r) {
    case TRACKER_DONE:
        return STORE_COMMAND_APPLIED;
    case TRACKER_FAILED:
        return STORE_COMMAND_FAILED;
    case TRACKER_SUPERSEDED:
        return STORE_COMMAND_SUPERSEDED;
    default:
        return STORE_COMMAND_STILL_CONVERGING;
    }
}

/* Records the final result, hands it to its source's sink and forgets the command (the entry
 * at index i is replaced by the last one: callers walk backwards). */
static void finish(struct tracker *t, size_t i, enum tracker_result result, const char *error)
{
    struct pending p = t->pending[i];
    t->pending[i] = t->pending[--t->n_pending];
    /* The record and what the sink writes with it (an outbox message) in one transaction. */
    bool own = !store_in_transaction(t->store) && store_begin(t->store) == 0;
    int r = store_update_command(t->store, p.command_id, status_of(result), error);
    if (r < 0 && r != -ENOENT)
        log_warnx("failed to record the result of command %s: %s", p.command_id,
                  store_errmsg(t->store));
    struct tracker_final f = {
        .command_id = p.command_id,
        .source = p.source,
        .kind = p.kind,
        .stack = p.stack,
        .generation = p.generation,
        .result = result,
        .error = error,
    };
    for (size_t s = 0; s < t->n_sinks; s++)
        if (streq(t->sinks[s].source, p.source) && t->sinks[s].fn)
            t->sinks[s].fn(&f, t->sinks[s].userdata);
    if (own && store_commit(t->store) < 0)
        log_warnx("failed to record the result of command %s: %s", p.command_id,
                  store_errmsg(t->store));
    pending_clear(&p);
}

/* The verdict for one command from its stack's state in a pass, or -1 while it is open. */
static int verdict(const struct pending *p, const struct tracker_stack_state *s,
                   const char **ret_error)
{
    *ret_error = NULL;
    if (p->kind == INTAKE_REMOVE)
        return s->state == STORE_STATE_REMOVED ? TRACKER_DONE : -1;
    if (s->state == STORE_STATE_REMOVED)
        return TRACKER_SUPERSEDED;
    if (p->kind == INTAKE_DEPLOY && s->generation < p->generation)
        return -1; /* the pass did not see it yet */
    switch (s->state) {
    case STORE_STATE_CONVERGED:
        return p->kind == INTAKE_DEPLOY && s->generation > p->generation ? TRACKER_SUPERSEDED
                                                                         : TRACKER_DONE;
    case STORE_STATE_FAILED:
    case STORE_STATE_DEGRADED:
        if (p->kind == INTAKE_DEPLOY && s->generation > p->generation)
            return TRACKER_SUPERSEDED;
        *ret_error = s->reason && *s->reason ? s->reason : store_stack_state_to_string(s->state);
        return TRACKER_FAILED;
    default:
        return -1;
    }
}

void tracker_on_pass(struct tracker *t, int64_t pass_started_at,
                     const struct tracker_stack_state *stacks, size_t n)
{
    for (size_t i = t->n_pending; i-- > 0;) {
        const struct pending *p = &t->pending[i];
        if (p->accepted_at > pass_started_at)
            continue; /* the pass may have read the store before the command was written */
        if (p->kind == INTAKE_RECONCILE_NOW) {
            finish(t, i, TRACKER_DONE, NULL);
            continue;
        }
        const struct tracker_stack_state *s = NULL;
        for (size_t j = 0; j < n && !s; j++)
            if (p->stack && streq(stacks[j].stack, p->stack))
                s = &stacks[j];
        if (!s) {
            /* A removed stack the loop has pruned and forgotten is as done as a remove gets. */
            struct store_stack *row = NULL;
            if (p->kind == INTAKE_REMOVE && store_get_stack(t->store, p->stack, &row) == -ENOENT)
                finish(t, i, TRACKER_DONE, NULL);
            store_stack_free(row);
            continue;
        }
        const char *error;
        int v = verdict(p, s, &error);
        if (v >= 0)
            finish(t, i, (enum tracker_result)v, error);
    }
}

static bool swarm_kind(enum intake_kind k)
{
    return k == INTAKE_SWARM_INIT || k == INTAKE_SWARM_JOIN || k == INTAKE_SWARM_LEAVE;
}

void tracker_on_membership(struct tracker *t, int64_t pass_started_at, const char *verdict,
                           const char *error, int64_t revision)
{
    if (!verdict || !*verdict)
        return;
    for (size_t i = t->n_pending; i-- > 0;) {
        const struct pending *p = &t->pending[i];
        if (!swarm_kind(p->kind) || p->accepted_at > pass_started_at)
            continue;
        if (revision > p->generation)
            finish(t, i, TRACKER_SUPERSEDED, NULL);
        else if (revision < p->generation)
            continue; /* the pass read the store before the command was written */
        else if (streq(verdict, "converged"))
            finish(t, i, TRACKER_DONE, NULL);
        else if (streq(verdict, "blocked") || streq(verdict, "retrying"))
            finish(t, i, TRACKER_FAILED, error && *error ? error : verdict);
    }
}

int64_t tracker_expire(struct tracker *t, int64_t now)
{
    int64_t next = 0;
    for (size_t i = t->n_pending; i-- > 0;) {
        if (t->pending[i].deadline <= now) {
            finish(t, i, TRACKER_STILL_CONVERGING, "accepted; not converged yet");
            continue;
        }
        if (!next || t->pending[i].deadline < next)
            next = t->pending[i].deadline;
    }
    return next;
}

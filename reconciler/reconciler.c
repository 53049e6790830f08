#include "reconciler/reconciler.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drivers/docker/docker_api.h"
#include "lib/array.h"
#include "lib/backoff.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"
#include "reconciler/apply.h"
#include "reconciler/desired.h"
#include "reconciler/live.h"
#include "reconciler/swarm.h"

#define DEBOUNCE_S         0.15 /* Docker events and wake-ups within this window make one pass */
#define CONVERGE_WATCH_S   1.0  /* re-check period while something is settling */
#define SETTLE_PASSES      2    /* passes in a row that see nothing change end the watch */
#define DEGRADED_FAILURES  3    /* failed tasks of a service before the stack is degraded */
#define OBSERVE_BACKOFF_MS 2000

/* An object whose last step failed: it waits for its backoff before it is tried again. */
struct retry {
    enum spec_kind kind;
    char *name;
    char *stack;
    char *error; /* the last failure, for the stack's status while it waits */
    unsigned failures;
    int64_t not_before;
};

struct pass {
    struct live_state *live;
    struct plan plan;
    bool *skip;
    int64_t *apply_ids; /* per desired stack, 0 when nothing applied */
    struct apply_run *apply;
    bool same;     /* desired and live as the previous pass saw them */
    size_t sent;   /* steps sent to the Engine */
    bool complete; /* planned, applied and recorded: its verdicts stand */
    int64_t started_at;
    int error;                               /* the pass failed: negative errno (r->err says why) */
    struct reconciler_stack_report *reports; /* owned strings */
    size_t n_reports, cap_reports;
    struct membership_plan ms; /* the membership step's plan (reconciler/swarm.h) */
    bool ms_done;              /* its call was made: the Swarm was observed again */
    bool ms_watch;             /* a membership change is under way: look again soon */
};

struct idle_waiter {
    void (*cb)(void *);
    void *userdata;
};

struct reconciler {
    struct ev_loop *loop;
    struct store *store;
    struct docker *docker;
    struct reconciler_opts opts;
    char *agent_id;
    char *only_stack;

    ev_timer kick;   /* debounced "run a pass" */
    ev_timer resync; /* periodic full pass */
    ev_timer retry;  /* earliest backoff expiry */
    struct docker_events *events;
    bool started;

    struct pass *pass; /* the running pass, or NULL */
    bool again;        /* a trigger came during the pass */

    /* Kept across passes. */
    struct desired_state desired; /* the compiled stacks (desired.h) */
    struct swarm_step *swarm;     /* the membership step and what it keeps (swarm.h) */
    uint64_t desired_seen;        /* desired.version the last pass planned with */
    struct live_state *last_live; /* the last observation (unparsed), to compare with */
    bool last_clean;              /* the last full pass planned no change */
    bool progressing;             /* a stack was not settled at the last full pass */
    unsigned quiet;               /* passes in a row that saw nothing change */

    struct retry *retries;
    size_t n_retries, cap_retries;
    uint64_t rng;
    char **prev_services; /* services that existed at the previous observation */
    size_t n_prev;

    struct idle_waiter *waiters;
    size_t n_waiters, cap_waiters;

    /* one-pass mode */
    bool once;
    struct reconciler_result *result_out;

    reconciler_observer observer;
    void *observer_data;
    int result;
    char err[1024];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void event(struct reconciler *r, enum log_level lvl, const char *stack, const char *object,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Says what happened: in the log and in the store's event ring (what `axion-agent events`
 * shows). A dry run only logs. */
static void event(struct reconciler *r, enum log_level lvl, const char *stack, const char *object,
                  const char *fmt, ...)
{
    char msg[STORE_EVENT_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char fields[512];
    snprintf(fields, sizeof(fields), "stack=%s object=%s", stack ? stack : "-",
             object ? object : "-");
    log_msg(lvl, fields, "%s", msg);
    if (!r->opts.dry_run) {
        int e = store_add_event(r->store, lvl, stack, object, msg, NULL);
        if (e < 0)
            log_warnx("failed to record event: %s", store_errmsg(r->store));
    }
}

/* A failure of the pass (one-pass mode: what reconciler_run_once returns), logged. */
static void pass_error(struct reconciler *r, int e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void pass_error(struct reconciler *r, int e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
    log_error("%s", r->err);
    r->result = e;
    if (r->pass)
        r->pass->error = e;
}

/* --- retries ------------------------------------------------------------------------------- */

static struct retry *retry_find(struct reconciler *r, enum spec_kind kind, const char *name)
{
    for (size_t i = 0; i < r->n_retries; i++)
        if (r->retries[i].kind == kind && streq(r->retries[i].name, name))
            return &r->retries[i];
    return NULL;
}

static void retry_clear(struct reconciler *r, enum spec_kind kind, const char *name)
{
    struct retry *b = retry_find(r, kind, name);
    if (!b)
        return;
    free(b->name);
    free(b->stack);
    free(b->error);
    *b = r->retries[--r->n_retries];
}

/* Counts a failure of the step's object; returns the delay before it is tried again. */
static int64_t retry_fail(struct reconciler *r, const struct plan_step *st, const char *error)
{
    static const struct backoff_policy policy = BACKOFF_POLICY_RECONCILE;
    struct retry *b = retry_find(r, st->kind, st->name);
    if (!b) {
        char *dup = strdup(st->name);
        b = dup ? ARRAY_PUSH(&r->retries, &r->n_retries, &r->cap_retries) : NULL;
        if (!b) {
            free(dup);
            return (int64_t)policy.initial_ms;
        }
        *b = (struct retry){.kind = st->kind, .name = dup};
    }
    free(b->stack);
    free(b->error);
    b->stack = st->stack ? strdup(st->stack) : NULL;
    b->error = error ? strdup(error) : NULL;
    b->failures++;
    int64_t delay = (int64_t)backoff_delay_ms(&policy, b->failures, backoff_random(&r->rng));
    b->not_before = now_ms() + delay;
    return delay;
}

/* The last failure of an object of this stack that waits for its retry, or NULL. */
static const char *retry_stack_error(struct reconciler *r, const char *stack)
{
    for (size_t i = 0; i < r->n_retries; i++)
        if (r->retries[i].stack && streq(r->retries[i].stack, stack))
            return r->retries[i].error ? r->retries[i].error : "failed; retrying";
    return NULL;
}

static void schedule_retry(struct reconciler *r)
{
    if (r->once)
        return;
    int64_t soonest = swarm_step_retry_at(r->swarm);
    for (size_t i = 0; i < r->n_retries; i++)
        if (!soonest || r->retries[i].not_before < soonest)
            soonest = r->retries[i].not_before;
    ev_timer_stop(r->loop, &r->retry);
    if (!soonest)
        return;
    double in = (double)(soonest - now_ms()) / 1000.0;
    ev_timer_set(&r->retry, in > 0.01 ? in : 0.01, 0.);
    ev_timer_start(r->loop, &r->retry);
}

/* --- scheduling ---------------------------------------------------------------------------- */

static void pass_start(struct reconciler *r);

static void schedule(struct reconciler *r, double delay)
{
    if (r->once)
        return;
    if (r->pass) {
        r->again = true;
        return;
    }
    /* Keep the earliest of what is asked. */
    if (ev_is_active(&r->kick) && ev_timer_remaining(r->loop, &r->kick) <= delay)
        return;
    ev_timer_stop(r->loop, &r->kick);
    ev_timer_set(&r->kick, delay, 0.);
    ev_timer_start(r->loop, &r->kick);
}

void reconciler_trigger(struct reconciler *r, const char *why)
{
    log_debug("reconcile triggered: %s", why);
    schedule(r, DEBOUNCE_S);
}

static void on_kick(struct ev_loop *loop, ev_timer *w, int revents)
{
    pass_start(w->data);
}

static void on_resync(struct ev_loop *loop, ev_timer *w, int revents)
{
    reconciler_trigger(w->data, "periodic resync");
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    reconciler_trigger(w->data, "retry");
}

static void on_docker_event(json_t *ev, void *userdata)
{
    struct reconciler *r = userdata;
    const char *type = json_string_value(json_object_get(ev, "Type"));
    const char *action = json_string_value(json_object_get(ev, "Action"));
    const char *name = json_string_value(
        json_object_get(json_object_get(json_object_get(ev, "Actor"), "Attributes"), "name"));
    char why[256];
    snprintf(why, sizeof(why), "docker event %s %s %s", type ? type : "?", action ? action : "?",
             name ? name : "?");
    reconciler_trigger(r, why);
}

static void on_events_state(enum docker_events_state state, const char *why, void *userdata)
{
    struct reconciler *r = userdata;
    if (state == DOCKER_EVENTS_CONNECTED) {
        /* Whatever happened while the stream was down is unknown: look at everything. */
        reconciler_trigger(r, "docker events stream (re)connected");
    } else {
        log_warnx("docker events stream lost (%s); reconnecting", why ? why : "?");
    }
}

/* --- status -------------------------------------------------------------------------------- */

static const char *task_state(json_t *t)
{
    const char *s = json_string_value(json_object_get(json_object_get(t, "Status"), "State"));
    return s ? s : "";
}

struct svc_status {
    int64_t desired, running, completed, failed;
    const char *last_error;
    const char *last_error_at;
};

static void service_status(const struct live_state *live, json_t *svc, struct svc_status *ret)
{
    *ret = (struct svc_status){0};
    json_t *st = json_object_get(svc, "ServiceStatus");
    ret->desired = json_integer_value(json_object_get(st, "DesiredTasks"));
    ret->running = json_integer_value(json_object_get(st, "RunningTasks"));
    ret->completed = json_integer_value(json_object_get(st, "CompletedTasks"));
    const char *id = json_string_value(json_object_get(svc, "ID"));
    const char *updated = json_string_value(json_object_get(svc, "UpdatedAt"));
    size_t i;
    json_t *t;
    json_array_foreach(live->tasks, i, t)
    {
        const char *sid = json_string_value(json_object_get(t, "ServiceID"));
        if (!id || !sid || !streq(id, sid))
            continue;
        const char *state = task_state(t);
        if (!streq(state, "failed") && !streq(state, "rejected"))
            continue;
        /* Only failures of the current spec count (RFC 3339 times compare as strings). */
        const char *at = json_string_value(json_object_get(t, "CreatedAt"));
        if (updated && at && strcmp(at, updated) < 0)
            continue;
        ret->failed++;
        if (!ret->last_error_at || (at && strcmp(at, ret->last_error_at) > 0)) {
            ret->last_error_at = at;
            ret->last_error =
                json_string_value(json_object_get(json_object_get(t, "Status"), "Err"));
        }
    }
}

static void set_status(struct reconciler *r, const char *stack, enum store_stack_state state,
                       const char *reason, json_t *services)
{
    if (r->opts.dry_run)
        return;
    struct pass *p = r->pass;
    if (p && !r->once) {
        struct reconciler_stack_report *rep =
            ARRAY_PUSH(&p->reports, &p->n_reports, &p->cap_reports);
        const struct desired_stack *ds = desired_find(&r->desired, stack);
        if (rep) {
            rep->stack = strdup(stack);
            rep->reason = strdup(reason ? reason : "");
            rep->state = state;
            rep->generation = ds ? ds->generation : 0;
            if (!rep->stack || !rep->reason)
                log_warnx("out of memory: the report of %s is incomplete", stack);
        }
    }
    _cleanup_free_ char *sj = services ? json_dumps(services, JSON_COMPACT) : NULL;
    struct store_stack_status *old = NULL;
    bool changed_state = true;
    if (store_get_stack_status(r->store, stack, &old) == 0) {
        bool same = old->state == state && streq(old->reason ? old->reason : "", reason) &&
                    streq(old->services_json ? old->services_json : "", sj ? sj : "");
        changed_state = old->state != state;
        store_stack_status_free(old);
        if (same)
            return;
    }
    if (changed_state)
        event(r,
              state == STORE_STATE_DEGRADED || state == STORE_STATE_FAILED ? LOG_LEVEL_WARN
                                                                           : LOG_LEVEL_INFO,
              stack, NULL, "stack %s is %s%s%s", stack, store_stack_state_to_string(state),
              *reason ? ": " : "", reason);
    struct store_stack_status st = {
        .stack = (char *)stack, .state = state, .reason = (char *)reason, .services_json = sj};
    if (store_set_stack_status(r->store, &st) < 0)
        log_warnx("failed to record status of %s: %s", stack, store_errmsg(r->store));
}

static bool live_has_stack(const struct live_state *live, const char *agent, const char *stack)
{
    for (size_t i = 0; i < live->n_objs; i++) {
        const struct live_obj *o = &live->objs[i];
        if (o->managed && o->agent && streq(o->agent, agent) && o->stack && streq(o->stack, stack))
            return true;
    }
    return false;
}

/* The verdict for each stack from what was observed (no change pending for it). */
static void stack_status(struct reconciler *r, const struct pass *p, const struct desired_stack *s,
                         bool changed, const char *apply_error)
{
    if (s->removed) {
        if (live_has_stack(p->live, r->agent_id, s->name)) {
            set_status(r, s->name, STORE_STATE_PROGRESSING, "removing", NULL);
            r->progressing = true;
            return;
        }
        int e = store_delete_stack(r->store, s->name, s->generation);
        if (e == 0)
            event(r, LOG_LEVEL_INFO, s->name, NULL, "stack %s removed", s->name);
        set_status(r, s->name, STORE_STATE_REMOVED, "", NULL);
        return;
    }
    if (s->error) {
        set_status(r, s->name, STORE_STATE_FAILED, s->error, NULL);
        return;
    }
    /* A failed step keeps the stack failed until it succeeds: no flapping meanwhile. */
    if (!apply_error)
        apply_error = retry_stack_error(r, s->name);
    if (apply_error) {
        set_status(r, s->name, STORE_STATE_FAILED, apply_error, NULL);
        return; /* the retry timer brings the next pass */
    }
    json_t *services = json_array();
    struct buf reason = BUF_INIT(4096);
    enum store_stack_state state = STORE_STATE_CONVERGED;
    for (size_t i = 0; i < s->n_services; i++) {
        const struct desired_service *ds = &s->services[i];
        json_t *svc = live_service_json(p->live, ds->name);
        struct svc_status ss = {0};
        if (svc)
            service_status(p->live, svc, &ss);
        int64_t want = ds->replicas >= 0 ? ds->replicas : ss.desired;
        bool ok = svc && (ds->job ? (ss.running == 0 && ss.completed >= (want > 0 ? want : 1))
                                  : ss.running == want);
        if (ds->job && want == 0 && svc)
            ok = true;
        json_array_append_new(services, json_pack("{s:s, s:I, s:I, s:I, s:b}", "name",
                                                  ds->short_name, "desired", (json_int_t)want,
                                                  "running", (json_int_t)ss.running, "failed",
                                                  (json_int_t)ss.failed, "job", ds->job));
        if (ok)
            continue;
        if (ss.failed >= DEGRADED_FAILURES) {
            state = STORE_STATE_DEGRADED;
            buf_printf(&reason, "%s%s: %s", reason.len ? "; " : "", ds->short_name,
                       ss.last_error && *ss.last_error ? ss.last_error : "tasks keep failing");
        } else {
            if (state == STORE_STATE_CONVERGED)
                state = STORE_STATE_PROGRESSING;
            if (state == STORE_STATE_PROGRESSING)
                buf_printf(&reason, "%s%s: %lld/%lld %s", reason.len ? "; " : "", ds->short_name,
                           (long long)(ds->job ? ss.completed : ss.running), (long long)want,
                           ds->job ? "completed" : "running");
        }
    }
    if (changed && state == STORE_STATE_CONVERGED)
        state = STORE_STATE_PROGRESSING; /* just changed: let the next look say */
    if (state != STORE_STATE_CONVERGED)
        r->progressing = true;
    set_status(r, s->name, state, reason.data, services);
    buf_release(&reason);
    json_decref(services);
}

/* --- the pass ------------------------------------------------------------------------------ */

static void pass_free(struct pass *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_reports; i++) {
        free((char *)p->reports[i].stack);
        free((char *)p->reports[i].reason);
    }
    free(p->reports);
    apply_free(p->apply);
    plan_release(&p->plan);
    live_state_free(p->live);
    free(p->skip);
    free(p->apply_ids);
    free(p);
}

static void remember_services(struct reconciler *r, const struct live_state *live)
{
    for (size_t i = 0; i < r->n_prev; i++)
        free(r->prev_services[i]);
    free(r->prev_services);
    r->prev_services = NULL;
    r->n_prev = 0;
    r->prev_services = calloc(live->n_objs + 1, sizeof(char *));
    if (!r->prev_services)
        return;
    for (size_t i = 0; i < live->n_objs; i++)
        if (live->objs[i].kind == SPEC_SERVICE && live->objs[i].managed)
            r->prev_services[r->n_prev++] = strdup(live->objs[i].name);
}

static bool existed_before(struct reconciler *r, const char *name)
{
    for (size_t i = 0; i < r->n_prev; i++)
        if (r->prev_services[i] && streq(r->prev_services[i], name))
            return true;
    return false;
}

static void pass_finish(struct reconciler *r)
{
    struct pass *p = r->pass;
    bool watch = false;
    if (p && p->complete) {
        /* Its verdicts stand: keep what the next pass compares with. */
        r->quiet = p->same && p->sent == 0 ? r->quiet + 1 : 0;
        watch = r->progressing || r->quiet < SETTLE_PASSES;
        r->desired_seen = r->desired.version;
        if (p->live->parsed)
            remember_services(r, p->live);
        live_state_trim(p->live);
        live_state_free(r->last_live);
        r->last_live = TAKE_PTR(p->live);
    } else {
        /* Failed or cut short: the next pass looks at everything again. */
        r->last_clean = false;
        r->quiet = 0;
        r->last_live = live_state_free(r->last_live);
    }
    if (p && p->ms_watch && !r->once)
        watch = true;
    if (p && r->once && r->result_out) {
        r->result_out->plan = p->plan;
        p->plan = (struct plan){0};
        r->result_out->membership = p->ms;
        if (p->ms_done)
            snprintf(r->result_out->membership_error, sizeof(r->result_out->membership_error), "%s",
                     swarm_step_last_failure(r->swarm));
    }
    if (p && !r->once && r->observer) {
        /* Reports whose strings could not be copied are left out. */
        size_t n = 0;
        for (size_t i = 0; i < p->n_reports; i++)
            if (p->reports[i].stack && p->reports[i].reason)
                p->reports[n++] = p->reports[i];
            else {
                free((char *)p->reports[i].stack);
                free((char *)p->reports[i].reason);
            }
        p->n_reports = n;
        const struct live_state *lv = p->live ? p->live : p->complete ? r->last_live : NULL;
        struct reconciler_pass_report rep = {
            .swarm_known = lv != NULL,
            .swarm_active = lv && lv->swarm_active,
            .is_manager = lv && lv->is_manager,
            .node_id = lv ? lv->node_id : NULL,
            .swarm_state = lv && lv->swarm_state ? lv->swarm_state : "",
            .membership = swarm_step_state(r->swarm),
            .membership_error = swarm_step_error(r->swarm),
            .membership_revision = swarm_step_revision(r->swarm),
            .started_at = p->started_at,
            .finished_at = now_ms(),
            .unchanged = p->complete && p->same && n == 0 && !p->error,
            .result = p->error,
            .error = p->error ? r->err : NULL,
            .stacks = p->reports,
            .n_stacks = n,
        };
        r->observer(&rep, r->observer_data);
    }
    pass_free(p);
    r->pass = NULL;
    schedule_retry(r);
    if (r->once) {
        ev_break(r->loop, EVBREAK_ONE);
        return;
    }
    if (r->again) {
        r->again = false;
        schedule(r, DEBOUNCE_S);
    } else if (watch) {
        schedule(r, CONVERGE_WATCH_S);
    }
    size_t n = r->n_waiters;
    struct idle_waiter *w = r->waiters;
    r->waiters = NULL;
    r->n_waiters = r->cap_waiters = 0;
    for (size_t i = 0; i < n; i++)
        w[i].cb(w[i].userdata);
    free(w);
}

static void announce_step(struct reconciler *r, const struct plan_step *s)
{
    const char *kind = spec_kind_to_string(s->kind);
    switch (s->action) {
    case PLAN_CREATE:
        if (s->kind == SPEC_SERVICE && existed_before(r, s->name))
            event(r, LOG_LEVEL_WARN, s->stack, s->name,
                  "drift: %s %s was removed outside axion; recreating it", kind, s->name);
        else
            event(r, LOG_LEVEL_INFO, s->stack, s->name, "creating %s %s", kind, s->name);
        break;
    case PLAN_UPDATE: {
        struct buf f = BUF_INIT(2048);
        for (size_t i = 0; i < s->n_fields; i++)
            buf_printf(&f, "%s%s", i ? ", " : "", s->fields[i]);
        if (streq(s->reason, "drift"))
            event(r, LOG_LEVEL_WARN, s->stack, s->name,
                  "drift: %s %s changed outside axion (%s); putting it back (%s)", kind, s->name,
                  f.data, s->rolls_tasks ? "rolls tasks" : "in place");
        else
            event(r, LOG_LEVEL_INFO, s->stack, s->name, "updating %s %s (%s; %s)", kind, s->name,
                  f.len ? f.data : "spec changed", s->rolls_tasks ? "rolls tasks" : "in place");
        buf_release(&f);
        break;
    }
    case PLAN_REMOVE:
        event(r, LOG_LEVEL_INFO, s->stack, s->name, "removing %s %s (no longer desired)", kind,
              s->name);
        break;
    case PLAN_CONFLICT:
        event(r, LOG_LEVEL_WARN, s->stack, s->name, "%s %s left alone: %s", kind, s->name,
              s->reason);
        break;
    case PLAN_NOOP:
        break;
    }
}

/* The plan steps of one stack as JSON, for the applies record. */
static char *stack_plan_json(const struct plan *plan, const char *stack)
{
    struct plan sub = {0};
    sub.steps = calloc(plan->n ? plan->n : 1, sizeof(*sub.steps));
    if (!sub.steps)
        return NULL;
    for (size_t i = 0; i < plan->n; i++)
        if (plan->steps[i].stack && streq(plan->steps[i].stack, stack))
            sub.steps[sub.n++] = plan->steps[i];
    json_t *j = plan_to_json(&sub);
    free(sub.steps);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

static void after_apply(struct reconciler *r, struct pass *p)
{
    /* Outcomes: retries, events, the applies record, then status per stack. */
    r->progressing = false;
    for (size_t si = 0; si < r->desired.n_stacks; si++) {
        const struct desired_stack *s = &r->desired.stacks[si];
        bool changed = false;
        const char *first_error = NULL;
        for (size_t i = 0; i < p->plan.n; i++) {
            const struct plan_step *st = &p->plan.steps[i];
            if (!st->stack || !streq(st->stack, s->name) || st->action == PLAN_CONFLICT ||
                st->action == PLAN_NOOP)
                continue;
            if (p->skip[i]) {
                changed = true;
                continue;
            }
            const struct apply_outcome *o = apply_outcome(p->apply, i);
            changed = true;
            if (o->r == 0) {
                retry_clear(r, st->kind, st->name);
                continue;
            }
            int64_t delay = retry_fail(r, st, o->error);
            event(r, LOG_LEVEL_ERROR, s->name, st->name, "failed to %s %s %s: %s; retry in %.1fs",
                  plan_action_name(st->action), spec_kind_to_string(st->kind), st->name, o->error,
                  (double)delay / 1000.0);
            if (!first_error)
                first_error = o->error;
        }
        if (p->apply_ids[si]) {
            _cleanup_free_ char *pj = stack_plan_json(&p->plan, s->name);
            char result[1024];
            if (first_error)
                snprintf(result, sizeof(result), "failed: %s", first_error);
            else
                snprintf(result, sizeof(result), "ok");
            if (store_apply_finish(r->store, p->apply_ids[si], result, pj) < 0)
                log_warnx("failed to record apply of %s: %s", s->name, store_errmsg(r->store));
        }
        stack_status(r, p, s, changed, first_error);
    }
    if (r->once && r->result_out)
        r->result_out->failed = apply_failed(p->apply);
    r->last_clean = plan_changes(&p->plan) == 0;
    p->complete = true;
}

static void on_applied(struct apply_run *run, void *userdata)
{
    struct reconciler *r = userdata;
    struct pass *p = r->pass;
    p->apply = run;
    after_apply(r, p);
    pass_finish(r);
}

static const char *lookup_live(void *userdata, enum spec_kind kind, const char *name)
{
    struct reconciler *r = userdata;
    const struct live_obj *o =
        r->pass && r->pass->live ? live_find(r->pass->live, kind, name) : NULL;
    return o ? o->id : NULL;
}

static void plan_and_apply(struct reconciler *r, struct pass *p)
{
    struct live_state *live = p->live;
    char perr[256];
    int e = live_parse(live, perr, sizeof(perr));
    if (e < 0) {
        pass_error(r, e, "cannot read the Swarm's state: %s", perr);
        pass_finish(r);
        return;
    }
    const struct desired_state *ds = &r->desired;
    struct plan_input in = {
        .desired = ds->objs,
        .n_desired = ds->n_objs,
        .live = live->objs,
        .n_live = live->n_objs,
        .agent_id = r->agent_id,
        .only_stack = r->only_stack,
        .frozen_stacks = ds->frozen,
        .n_frozen = ds->n_frozen,
        .known_stacks = ds->known,
        .n_known = ds->n_known,
        .prune = r->opts.prune,
        .removed_stacks = ds->removed,
        .n_removed = ds->n_removed,
    };
    e = plan_compute(&in, &p->plan);
    if (e < 0) {
        pass_error(r, e, "failed to compute the plan: %s", strerror(-e));
        pass_finish(r);
        return;
    }
    if (r->once && r->opts.dry_run) {
        pass_finish(r);
        return;
    }

    p->skip = calloc(p->plan.n + 1, sizeof(bool));
    p->apply_ids = calloc(ds->n_stacks + 1, sizeof(int64_t));
    if (!p->skip || !p->apply_ids) {
        pass_error(r, -ENOMEM, "out of memory");
        pass_finish(r);
        return;
    }
    int64_t now = now_ms();
    for (size_t i = 0; i < p->plan.n; i++) {
        const struct plan_step *s = &p->plan.steps[i];
        if (s->action == PLAN_NOOP || s->action == PLAN_CONFLICT) {
            p->skip[i] = true;
            if (s->action == PLAN_CONFLICT && !r->once)
                log_warnx("%s %s left alone: %s", spec_kind_to_string(s->kind), s->name, s->reason);
            continue;
        }
        const struct retry *b = retry_find(r, s->kind, s->name);
        if (b && b->not_before > now && !r->once) {
            p->skip[i] = true; /* waits for its retry timer */
            continue;
        }
        p->sent++;
        announce_step(r, s);
    }

    /* One applies record per stack that changes. */
    for (size_t si = 0; si < ds->n_stacks && p->sent; si++) {
        const struct desired_stack *s = &ds->stacks[si];
        for (size_t i = 0; i < p->plan.n; i++)
            if (!p->skip[i] && p->plan.steps[i].stack && streq(p->plan.steps[i].stack, s->name)) {
                if (store_apply_begin(r->store, s->name, s->generation, &p->apply_ids[si]) < 0)
                    log_warnx("failed to record apply of %s: %s", s->name, store_errmsg(r->store));
                break;
            }
    }
    struct apply_run *run;
    e = apply_start(r->docker, &p->plan, p->skip, r->opts.concurrency, lookup_live, on_applied, r,
                    &run);
    if (e < 0) {
        pass_error(r, e, "failed to apply the plan: %s", strerror(-e));
        pass_finish(r);
    }
}

/* A stack marked removed on a node in no swarm: nothing of it can be left to remove (a forced
 * leave removed its objects, or took them with the swarm). */
static void forget_stack(struct reconciler *r, const struct desired_stack *s)
{
    int e = store_delete_stack(r->store, s->name, s->generation);
    if (e == 0)
        event(r, LOG_LEVEL_INFO, s->name, NULL,
              "stack %s removed: the node is in no swarm, so none of its objects is left", s->name);
    else if (e != -ENOENT && e != -ESTALE)
        log_warnx("failed to forget stack %s: %s", s->name, store_errmsg(r->store));
    if (e == 0 || e == -ENOENT)
        set_status(r, s->name, STORE_STATE_REMOVED, "", NULL);
}

static void on_live(int e, struct live_state *live, const char *err, void *userdata);

static void on_membership_done(void *userdata)
{
    struct reconciler *r = userdata;
    struct pass *p = r->pass;
    /* The membership changed (or not): look at the node again before the stacks. */
    p->live = live_state_free(p->live);
    int e = live_observe(r->docker, on_live, r);
    if (e < 0) {
        pass_error(r, e, "cannot read the Swarm's state: %s", strerror(-e));
        pass_finish(r);
    }
}

/* The membership step, first in every pass (reconciler/swarm.h): plans, and makes its call when
 * one is due (true: the pass goes on in on_membership_done), else reports. */
static bool membership(struct reconciler *r, struct pass *p)
{
    if (r->only_stack)
        return false; /* one stack's pass (reconcile --stack): the membership is not its own */
    size_t held = 0, removing = 0;
    for (size_t i = 0; i < r->desired.n_stacks; i++)
        r->desired.stacks[i].removed ? removing++ : held++;
    int64_t now = now_ms();
    swarm_step_plan(r->swarm, p->live, held, removing, now, &p->ms);
    if (!p->ms_done && swarm_step_due(r->swarm, &p->ms, now)) {
        int e = swarm_step_apply(r->swarm, &p->ms, on_membership_done, r);
        if (e == 0) {
            p->ms_done = true;
            p->ms_watch = true;
            return true;
        }
        log_warnx("cannot make the swarm's call: %s", strerror(-e));
    }
    swarm_step_report(r->swarm, &p->ms, p->live);
    if (p->ms.action == MEMBERSHIP_WAIT)
        p->ms_watch = true;
    return false;
}

static void on_live(int e, struct live_state *live, const char *err, void *userdata)
{
    struct reconciler *r = userdata;
    struct pass *p = r->pass;
    if (e < 0) {
        pass_error(r, e, "cannot read the Swarm's state: %s", err);
        if (!r->once) {
            ev_timer_stop(r->loop, &r->kick);
            ev_timer_set(&r->kick, OBSERVE_BACKOFF_MS / 1000.0, 0.);
            ev_timer_start(r->loop, &r->kick);
        }
        pass_finish(r);
        return;
    }
    p->live = live;
    p->same =
        r->desired.version == r->desired_seen && r->last_live && live_same(r->last_live, live);
    if (membership(r, p))
        return; /* its call is under way: the pass goes on when it ended */

    if (!live->is_manager) {
        const char *why = live->swarm_active ? "node is not a manager" : "node is not in a swarm";
        bool no_swarm = live->swarm_state && streq(live->swarm_state, "inactive");
        for (size_t i = 0; i < r->desired.n_stacks; i++) {
            const struct desired_stack *s = &r->desired.stacks[i];
            if (!s->removed)
                set_status(r, s->name, STORE_STATE_PENDING, why, NULL);
            else if (no_swarm && !r->opts.dry_run)
                forget_stack(r, s);
        }
        if (r->once && r->result_out)
            r->result_out->pending = why;
        r->progressing = false;
        r->last_clean = false;
        p->complete = true;
        pass_finish(r);
        return;
    }
    /* Nothing changed since a pass that found nothing to do, and nothing waits for a retry:
     * its plan and its verdicts stand. Nothing to parse, plan or record. */
    if (p->same && r->last_clean && r->n_retries == 0 && !r->once) {
        log_debug("reconcile: nothing changed since the last pass");
        p->complete = true;
        pass_finish(r);
        return;
    }
    plan_and_apply(r, p);
}

static void pass_start(struct reconciler *r)
{
    if (r->pass) {
        r->again = true;
        return;
    }
    struct pass *p = calloc(1, sizeof(*p));
    if (!p) {
        r->result = -ENOMEM;
        return;
    }
    r->pass = p;
    p->started_at = now_ms();
    char err[512] = "";
    struct desired_opts dopts = {.agent_id = r->agent_id, .policy = r->opts.policy};
    uint64_t compiles = r->desired.compiles;
    int e = desired_refresh(&r->desired, r->store, &dopts, err, sizeof(err));
    if (e < 0) {
        pass_error(r, e, "cannot load desired state: %s", err);
        pass_finish(r);
        return;
    }
    if (r->desired.compiles != compiles)
        log_debug("reconcile: %llu stacks compiled",
                  (unsigned long long)(r->desired.compiles - compiles));
    e = swarm_step_load(r->swarm, err, sizeof(err));
    if (e < 0) {
        pass_error(r, e, "cannot load the wanted swarm membership: %s", err);
        pass_finish(r);
        return;
    }
    e = live_observe(r->docker, on_live, r);
    if (e < 0) {
        pass_error(r, e, "cannot read the Swarm's state: %s", strerror(-e));
        pass_finish(r);
    }
}

/* --- lifecycle ----------------------------------------------------------------------------- */

void reconciler_set_observer(struct reconciler *r, reconciler_observer fn, void *userdata)
{
    r->observer = fn;
    r->observer_data = userdata;
}

int reconciler_new(struct ev_loop *loop, struct store *store, struct docker *docker,
                   const struct reconciler_opts *opts, struct reconciler **ret)
{
    struct reconciler *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->loop = loop;
    r->store = store;
    r->docker = docker;
    r->opts = *opts;
    r->agent_id = strdup(opts->agent_id ? opts->agent_id : "");
    r->only_stack = opts->only_stack ? strdup(opts->only_stack) : NULL;
    if (!r->agent_id || (opts->only_stack && !r->only_stack)) {
        reconciler_free(r);
        return -ENOMEM;
    }
    r->opts.agent_id = r->agent_id;
    r->opts.only_stack = r->only_stack;
    if (swarm_step_new(store, docker, opts->dry_run, &r->swarm) < 0) {
        reconciler_free(r);
        return -ENOMEM;
    }
    if (!r->opts.concurrency)
        r->opts.concurrency = 4;
    ev_timer_init(&r->kick, on_kick, 0., 0.);
    ev_timer_init(&r->resync, on_resync, 0., 0.);
    ev_timer_init(&r->retry, on_retry, 0., 0.);
    r->kick.data = r->resync.data = r->retry.data = r;
    r->rng = 0; /* seeded from the clock at the first draw */
    *ret = r;
    return 0;
}

struct reconciler *reconciler_free(struct reconciler *r)
{
    if (!r)
        return NULL;
    ev_timer_stop(r->loop, &r->kick);
    ev_timer_stop(r->loop, &r->resync);
    ev_timer_stop(r->loop, &r->retry);
    docker_events_close(r->events);
    pass_free(r->pass);
    desired_release(&r->desired);
    swarm_step_free(r->swarm);
    live_state_free(r->last_live);
    for (size_t i = 0; i < r->n_retries; i++) {
        free(r->retries[i].name);
        free(r->retries[i].stack);
        free(r->retries[i].error);
    }
    free(r->retries);
    for (size_t i = 0; i < r->n_prev; i++)
        free(r->prev_services[i]);
    free(r->prev_services);
    free(r->waiters);
    free(r->agent_id);
    free(r->only_stack);
    free(r);
    return NULL;
}

int reconciler_start(struct reconciler *r)
{
    json_t *filters = json_object();
    if (!filters)
        return -ENOMEM;
    const char *types[] = {"service", "network", "config", "secret", "node"};
    for (size_t i = 0; i < ARRAY_SIZE(types); i++)
        docker_filters_add(filters, "type", types[i]);
    r->events = docker_events_open(r->docker, filters, on_docker_event, on_events_state, r);
    json_decref(filters);
    if (!r->events)
        return -ENOMEM;
    if (r->opts.resync_ms) {
        double every = (double)r->opts.resync_ms / 1000.0;
        ev_timer_set(&r->resync, every, every);
        ev_timer_start(r->loop, &r->resync);
    }
    r->started = true;
    /* The events stream reports CONNECTED, which triggers the first pass; run one now too, so
     * that a daemon without Docker events still converges from the store. */
    schedule(r, 0.);
    return 0;
}

void reconciler_when_idle(struct reconciler *r, void (*cb)(void *), void *userdata)
{
    if (!r->pass) {
        cb(userdata);
        return;
    }
    struct idle_waiter *w = ARRAY_PUSH(&r->waiters, &r->n_waiters, &r->cap_waiters);
    if (!w) {
        cb(userdata);
        return;
    }
    *w = (struct idle_waiter){cb, userdata};
}

int reconciler_run_once(struct reconciler *r, struct reconciler_result *ret, char *err,
                        size_t errlen)
{
    struct reconciler_result res = {.dry_run = r->opts.dry_run};
    r->once = true;
    r->result_out = &res;
    r->result = 0;
    *r->err = '\0';
    pass_start(r);
    while (r->pass)
        ev_run(r->loop, EVRUN_ONCE);
    r->result_out = NULL;
    if (r->result < 0) {
        snprintf(err, errlen, "%s", *r->err ? r->err : strerror(-r->result));
        reconciler_result_release(&res);
        return r->result;
    }
    *ret = res;
    return 0;
}

void reconciler_result_release(struct reconciler_result *res)
{
    plan_release(&res->plan);
    *res = (struct reconciler_result){0};
}

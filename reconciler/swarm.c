#include "reconciler/swarm.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drivers/docker/docker_api.h"
#include "lib/backoff.h"
#include "lib/log.h"
#include "lib/util.h"

#define STATE_KEY "swarm"

struct swarm_step {
    struct store *store;
    struct docker *docker;
    bool dry_run;

    struct store_swarm *desired; /* as the last load read it; NULL: never told */
    int64_t revision;            /* the wanted membership the backoff counts for */
    struct backoff backoff;
    int64_t not_before; /* no call before this (a failure's backoff); 0: any time */
    char failure[1024]; /* the last failed call, "" when the last one succeeded */
    int64_t pending_since;

    /* The call in flight. */
    struct membership_plan call;
    void (*done)(void *);
    void *done_userdata;

    /* What was last reported. */
    bool read_back; /* the entry of a previous run was read */
    char *reported; /* the JSON last written */
    char state[32];
    char error[1024];
    char last_failure[1024]; /* of the last call made, for the CLI's one pass */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Logs and records an event (object "swarm"), masked. Nothing in a dry run. */
__attribute__((format(printf, 3, 4))) static void event(struct swarm_step *s, enum log_level lvl,
                                                        const char *fmt, ...)
{
    char msg[STORE_EVENT_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    membership_mask(msg);
    log_msg(lvl, "stack=- object=swarm", "%s", msg);
    if (!s->dry_run && store_add_event(s->store, lvl, NULL, "swarm", msg, NULL) < 0)
        log_warnx("failed to record event: %s", store_errmsg(s->store));
}

int swarm_step_new(struct store *st, struct docker *d, bool dry_run, struct swarm_step **ret)
{
    struct swarm_step *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->store = st;
    s->docker = d;
    s->dry_run = dry_run;
    static const struct backoff_policy policy = BACKOFF_POLICY_RECONCILE;
    backoff_init(&s->backoff, &policy, 0);
    *ret = s;
    return 0;
}

struct swarm_step *swarm_step_free(struct swarm_step *s)
{
    if (s) {
        store_swarm_free(s->desired);
        free(s->reported);
        free(s);
    }
    return NULL;
}

int swarm_step_load(struct swarm_step *s, char *err, size_t errlen)
{
    struct store_swarm *d = NULL;
    int r = store_get_swarm(s->store, &d);
    if (r < 0 && r != -ENOENT) {
        snprintf(err, errlen, "%s", store_errmsg(s->store));
        return r;
    }
    store_swarm_free(s->desired);
    s->desired = d;
    int64_t rev = d ? d->revision : 0;
    if (rev != s->revision) {
        /* A new wanted membership: its first call is made at once. */
        s->revision = rev;
        backoff_reset(&s->backoff);
        s->not_before = 0;
        *s->failure = '\0';
    }
    return 0;
}

static bool joining(const struct store_swarm *d)
{
    return d && d->desired_role != STORE_SWARM_NONE && d->join_addrs_json &&
           !streq(d->join_addrs_json, "[]");
}

void swarm_step_plan(struct swarm_step *s, const struct live_state *live, size_t held,
                     size_t removing, int64_t now, struct membership_plan *ret)
{
    if (live && live->swarm_state && streq(live->swarm_state, "pending")) {
        if (!s->pending_since)
            s->pending_since = now;
    } else {
        s->pending_since = 0;
    }
    struct membership_input in = {
        .desired = s->desired,
        .live = live,
        .stacks_held = held,
        .stacks_removing = removing,
        .pending_ms = s->pending_since ? now - s->pending_since : 0,
    };
    membership_plan(&in, ret);
    membership_mask(ret->what);
    membership_mask(ret->why);
}

static bool is_call(enum membership_action a)
{
    return a == MEMBERSHIP_INIT || a == MEMBERSHIP_JOIN || a == MEMBERSHIP_LEAVE ||
           a == MEMBERSHIP_CANCEL;
}

bool swarm_step_due(const struct swarm_step *s, const struct membership_plan *p, int64_t now)
{
    return !s->dry_run && is_call(p->action) && now >= s->not_before;
}

/* A word on what may help, after what the Engine said. */
static const char *hint(const char *msg)
{
    if (strstr(msg, "valid join token"))
        return " (the join token is wrong, or was rotated: ask a manager for the current one)";
    if (strstr(msg, "connection refused") || strstr(msg, "Unavailable") ||
        strstr(msg, "no route to host") || strstr(msg, "Timeout was reached"))
        return " (is a manager listening there, and reachable from this node?)";
    return "";
}

static void on_call(struct docker_result *res, void *userdata)
{
    struct swarm_step *s = userdata;
    const struct membership_plan *p = &s->call;
    int64_t now = now_ms();
    if (res->error == DOCKER_OK) {
        event(s, LOG_LEVEL_INFO, "swarm: %s: done", p->what);
        *s->last_failure = '\0';
        if (p->action == MEMBERSHIP_CANCEL && joining(s->desired)) {
            /* A join that never completed counts as a failed one: tried again after the
             * backoff. */
            snprintf(s->failure, sizeof(s->failure), "%s; it was cancelled", p->why);
            uint64_t delay = backoff_fail(&s->backoff);
            s->not_before = now + (int64_t)delay;
            event(s, LOG_LEVEL_ERROR, "swarm: %s; retry in %.1fs", s->failure,
                  (double)delay / 1000.0);
            snprintf(s->last_failure, sizeof(s->last_failure), "%s", s->failure);
        } else {
            backoff_reset(&s->backoff);
            s->not_before = 0;
            *s->failure = '\0';
        }
    } else {
        char msg[768];
        snprintf(msg, sizeof(msg), "%s",
                 *res->message ? res->message : docker_error_to_string(res->error));
        membership_mask(msg);
        snprintf(s->failure, sizeof(s->failure), "failed to %s: %s%s", p->what, msg, hint(msg));
        uint64_t delay = backoff_fail(&s->backoff);
        s->not_before = now + (int64_t)delay;
        event(s, LOG_LEVEL_ERROR, "swarm: %s; retry in %.1fs", s->failure, (double)delay / 1000.0);
        snprintf(s->last_failure, sizeof(s->last_failure), "%s", s->failure);
    }
    void (*done)(void *) = s->done;
    s->done = NULL;
    done(s->done_userdata);
}

int swarm_step_apply(struct swarm_step *s, const struct membership_plan *p,
                     void (*done)(void *userdata), void *userdata)
{
    if (!is_call(p->action) || !s->desired || s->done)
        return -EINVAL;
    s->call = *p;
    struct docker_request *req = NULL;
    event(s, LOG_LEVEL_INFO, "swarm: %s (%s)", p->what, p->why);
    switch (p->action) {
    case MEMBERSHIP_INIT: {
        json_t *body = membership_init_request(s->desired);
        req = body ? docker_swarm_init(s->docker, body, on_call, s) : NULL;
        break;
    }
    case MEMBERSHIP_JOIN: {
        json_t *body = membership_join_request(s->desired);
        req = body ? docker_swarm_join(s->docker, body, on_call, s) : NULL;
        s->pending_since = now_ms(); /* a join that ends pending counts from here */
        break;
    }
    default:
        req = docker_swarm_leave(s->docker, p->force, on_call, s);
        break;
    }
    if (!req)
        return -ENOMEM;
    s->done = done;
    s->done_userdata = userdata;
    return 0;
}

/* ---- the report ----------------------------------------------------------------------------- */

static const char *verdict(const struct swarm_step *s, const struct membership_plan *p)
{
    if (!s->desired)
        return "unmanaged";
    if (p->converged)
        return "converged";
    switch (p->action) {
    case MEMBERSHIP_BLOCKED:
        return "blocked";
    case MEMBERSHIP_WAIT:
        return "waiting";
    case MEMBERSHIP_NOOP:
        return "converged";
    default:
        if (s->not_before > now_ms())
            return "retrying";
        return p->action == MEMBERSHIP_INIT    ? "initializing"
               : p->action == MEMBERSHIP_JOIN  ? "joining"
               : p->action == MEMBERSHIP_LEAVE ? "leaving"
                                               : "cancelling";
    }
}

static json_t *managers_json(const struct live_state *lv)
{
    json_t *a = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(lv ? lv->remote_managers : NULL, i, m)
    {
        const char *addr = json_string_value(json_object_get(m, "Addr"));
        if (addr && *addr)
            json_array_append_new(a, json_string(addr));
    }
    return a;
}

/* The entry a previous run left, read once: an unchanged verdict after a restart is neither
 * written nor told again. */
static void read_back(struct swarm_step *s)
{
    s->read_back = true;
    struct store_state *v = NULL;
    size_t n = 0;
    if (store_list_state(s->store, STATE_KEY, &v, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (!streq(v[i].key, STATE_KEY))
            continue;
        json_t *j = json_loads(v[i].value, 0, NULL);
        const char *state = json_string_value(json_object_get(j, "state"));
        const char *error = json_string_value(json_object_get(j, "error"));
        snprintf(s->state, sizeof(s->state), "%s", state ? state : "");
        snprintf(s->error, sizeof(s->error), "%s", error ? error : "");
        json_decref(j);
        free(s->reported);
        s->reported = strdup(v[i].value);
    }
    store_state_array_free(v, n);
}

void swarm_step_report(struct swarm_step *s, const struct membership_plan *p,
                       const struct live_state *live)
{
    if (s->dry_run)
        return;
    if (!s->read_back)
        read_back(s);
    const char *state = verdict(s, p);
    const char *error = streq(state, "blocked") ? p->why : s->failure;
    if (streq(state, "converged") || streq(state, "unmanaged"))
        error = "";
    char wanted[1024];
    membership_describe(s->desired, wanted, sizeof(wanted));
    const struct live_state *lv = live;
    const char *node_state = lv && lv->swarm_state ? lv->swarm_state : "";
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:I}", "state",
        state, "error", error, "wanted", wanted, "desired_role",
        s->desired ? store_swarm_role_to_string(s->desired->desired_role) : "", "revision",
        (json_int_t)s->revision, "action", membership_action_name(p->action), "what", p->what,
        "why", p->why, "node_state", node_state, "role",
        lv && lv->swarm_active ? (lv->is_manager ? "manager" : "worker") : "", "node_id",
        lv && lv->node_id ? lv->node_id : "", "node_addr", lv && lv->node_addr ? lv->node_addr : "",
        "managers", managers_json(lv), "manager_count", (json_int_t)(lv ? lv->managers : 0),
        "node_count", (json_int_t)(lv ? lv->nodes : 0), "failures",
        (json_int_t)s->backoff.failures);
    if (j && s->not_before > now_ms())
        json_object_set_new(j, "retry_at", json_integer(s->not_before));
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (!text) {
        log_warnx("out of memory: the swarm's state is not reported");
        return;
    }
    membership_mask(text);
    bool told = streq(s->state, state) && streq(s->error, error);
    if (!s->reported || !streq(s->reported, text)) {
        if (store_put_state(s->store, STATE_KEY, text) < 0)
            log_warnx("failed to record the swarm's state: %s", store_errmsg(s->store));
        free(s->reported);
        s->reported = text;
    } else {
        free(text);
    }
    if (told)
        return;
    snprintf(s->state, sizeof(s->state), "%s", state);
    snprintf(s->error, sizeof(s->error), "%s", error);
    if (streq(state, "converged"))
        event(s, LOG_LEVEL_INFO, "swarm: converged: %s%s%s%s", wanted,
              lv && lv->node_id ? " (node id " : "", lv && lv->node_id ? lv->node_id : "",
              lv && lv->node_id ? ")" : "");
    else if (streq(state, "blocked"))
        event(s, LOG_LEVEL_WARN, "swarm: blocked: %s", error);
    else if (streq(state, "waiting"))
        event(s, LOG_LEVEL_INFO, "swarm: waiting: %s", p->why);
}

const char *swarm_step_state(const struct swarm_step *s)
{
    return s->state;
}

const char *swarm_step_error(const struct swarm_step *s)
{
    return s->error;
}

int64_t swarm_step_revision(const struct swarm_step *s)
{
    return s->revision;
}

int64_t swarm_step_retry_at(const struct swarm_step *s)
{
    return s->failure[0] ? s->not_before : 0;
}

const char *swarm_step_last_failure(const struct swarm_step *s)
{
    return s->last_failure;
}

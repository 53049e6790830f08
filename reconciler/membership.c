#include "reconciler/membership.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/util.h"

static const char *const actions[_MEMBERSHIP_ACTION_MAX] = {
    [MEMBERSHIP_NOOP] = "noop",       [MEMBERSHIP_INIT] = "init",     [MEMBERSHIP_JOIN] = "join",
    [MEMBERSHIP_LEAVE] = "leave",     [MEMBERSHIP_CANCEL] = "cancel", [MEMBERSHIP_WAIT] = "wait",
    [MEMBERSHIP_BLOCKED] = "blocked",
};

const char *membership_action_name(enum membership_action a)
{
    return (unsigned)a < _MEMBERSHIP_ACTION_MAX ? actions[a] : "?";
}

/* The strings of a JSON array text joined by ", " into out ("" when none or not an array). */
static void join_list(const char *json, char *out, size_t len)
{
    json_t *a = json ? json_loads(json, 0, NULL) : NULL;
    size_t i, n = 0;
    json_t *v;
    *out = '\0';
    json_array_foreach(a, i, v)
    {
        const char *s = json_string_value(v);
        if (!s)
            continue;
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%s", n++ ? ", " : "", s);
    }
    json_decref(a);
}

static bool has_join_addrs(const struct store_swarm *d)
{
    char list[8];
    join_list(d->join_addrs_json, list, sizeof(list));
    return *list != '\0';
}

void membership_describe(const struct store_swarm *d, char *out, size_t len)
{
    if (!d) {
        snprintf(out, len, "not managed (never asked: left as it is)");
        return;
    }
    char addrs[512];
    switch (d->desired_role) {
    case STORE_SWARM_NONE:
        snprintf(out, len, "in no swarm%s", d->force ? " (leave forced)" : "");
        return;
    case STORE_SWARM_MANAGER:
    case STORE_SWARM_WORKER:
        join_list(d->join_addrs_json, addrs, sizeof(addrs));
        if (!*addrs)
            snprintf(out, len, "manager of a swarm of its own%s%s",
                     d->advertise_addr ? ", advertised on " : "",
                     d->advertise_addr ? d->advertise_addr : "");
        else
            snprintf(out, len, "%s of the swarm at %s",
                     d->desired_role == STORE_SWARM_MANAGER ? "manager" : "worker", addrs);
        return;
    default:
        snprintf(out, len, "unknown");
    }
}

static const char *state_of(const struct live_state *lv)
{
    return lv && lv->swarm_state && *lv->swarm_state ? lv->swarm_state : "unknown";
}

/* What the node is, for people: "in no swarm", "an active worker", "joining a swarm". */
static void node_is(const struct live_state *lv, char *out, size_t len)
{
    const char *s = state_of(lv);
    if (streq(s, "inactive"))
        snprintf(out, len, "the node is in no swarm");
    else if (streq(s, "pending"))
        snprintf(out, len, "the node is joining a swarm");
    else if (streq(s, "active"))
        snprintf(out, len, "the node is an active %s", lv->is_manager ? "manager" : "worker");
    else if (streq(s, "locked"))
        snprintf(out, len, "the node's swarm is locked (autolock: `docker swarm unlock`)");
    else
        snprintf(out, len, "the node's swarm state is %s%s%s", s,
                 lv && lv->swarm_error && *lv->swarm_error ? ": " : "",
                 lv && lv->swarm_error ? lv->swarm_error : "");
}

__attribute__((format(printf, 3, 4))) static void set(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, len, fmt, ap);
    va_end(ap);
}

static void plan_none(const struct membership_input *in, struct membership_plan *p)
{
    const struct store_swarm *d = in->desired;
    const struct live_state *lv = in->live;
    const char *s = state_of(lv);
    if (streq(s, "inactive")) {
        p->converged = true;
        return;
    }
    if (streq(s, "pending")) {
        p->action = MEMBERSHIP_CANCEL;
        p->force = true;
        set(p->what, sizeof(p->what), "cancel the join in progress");
        return;
    }
    if (in->stacks_held) {
        p->action = MEMBERSHIP_BLOCKED;
        set(p->why, sizeof(p->why),
            "not leaving: this node manages %zu stack%s deployed after the leave was asked; "
            "remove %s, or ask to leave again with force (--force)",
            in->stacks_held, in->stacks_held == 1 ? "" : "s", in->stacks_held == 1 ? "it" : "them");
        return;
    }
    bool manager = lv->is_manager;
    if ((manager || streq(s, "locked")) && !d->force) {
        p->action = MEMBERSHIP_BLOCKED;
        if (manager)
            set(p->why, sizeof(p->why),
                "not leaving: this node is a swarm manager, which leaves only when forced "
                "(--force): the last manager's leave erases the swarm");
        else
            set(p->why, sizeof(p->why),
                "not leaving: the node's swarm is locked; unlock it (`docker swarm unlock`) or "
                "leave with force (--force)");
        return;
    }
    if (manager && in->stacks_removing) {
        p->action = MEMBERSHIP_WAIT;
        set(p->what, sizeof(p->what), "leave the swarm");
        set(p->why, sizeof(p->why),
            "removing the objects of %zu stack%s before the node leaves the swarm",
            in->stacks_removing, in->stacks_removing == 1 ? "" : "s");
        return;
    }
    p->action = MEMBERSHIP_LEAVE;
    p->force = d->force || manager || !streq(s, "active");
    set(p->what, sizeof(p->what), "leave the swarm%s", p->force ? " (forced)" : "");
}

static void plan_init(const struct membership_input *in, struct membership_plan *p)
{
    const struct store_swarm *d = in->desired;
    const struct live_state *lv = in->live;
    const char *s = state_of(lv);
    if (streq(s, "inactive")) {
        p->action = MEMBERSHIP_INIT;
        char pools[512];
        join_list(d->default_addr_pools_json, pools, sizeof(pools));
        set(p->what, sizeof(p->what), "init a swarm of its own%s%s%s%s",
            d->advertise_addr ? ", advertised on " : "", d->advertise_addr ? d->advertise_addr : "",
            *pools ? ", address pools " : "", pools);
    } else if (streq(s, "pending")) {
        p->action = MEMBERSHIP_CANCEL;
        p->force = true;
        set(p->what, sizeof(p->what), "cancel the join in progress (a swarm of its own is wanted)");
    } else if (streq(s, "active") && lv->is_manager) {
        p->converged = true;
    } else if (streq(s, "active")) {
        p->action = MEMBERSHIP_BLOCKED;
        set(p->why, sizeof(p->why),
            "the node is a worker of a swarm, and a swarm of its own is wanted: leave first "
            "(swarm leave), or promote it on a manager and ask to join as a manager");
    } else {
        p->action = MEMBERSHIP_BLOCKED;
        node_is(lv, p->why, sizeof(p->why));
    }
}

static void plan_join(const struct membership_input *in, struct membership_plan *p)
{
    const struct store_swarm *d = in->desired;
    const struct live_state *lv = in->live;
    const char *s = state_of(lv);
    const char *role = d->desired_role == STORE_SWARM_MANAGER ? "manager" : "worker";
    char addrs[512];
    join_list(d->join_addrs_json, addrs, sizeof(addrs));
    if (streq(s, "inactive")) {
        p->action = MEMBERSHIP_JOIN;
        set(p->what, sizeof(p->what), "join the swarm at %s as a %s", addrs, role);
    } else if (streq(s, "pending")) {
        if (in->pending_ms < MEMBERSHIP_PENDING_MAX_MS) {
            p->action = MEMBERSHIP_WAIT;
            set(p->what, sizeof(p->what), "join the swarm at %s as a %s", addrs, role);
            set(p->why, sizeof(p->why), "joining: the Engine is still trying to reach %s%s%s",
                addrs, lv->swarm_error && *lv->swarm_error ? ": " : "",
                lv->swarm_error ? lv->swarm_error : "");
        } else {
            p->action = MEMBERSHIP_CANCEL;
            p->force = true;
            set(p->what, sizeof(p->what), "cancel the join in progress");
            set(p->why, sizeof(p->why), "the join of the swarm at %s did not complete within %d s",
                addrs, MEMBERSHIP_PENDING_MAX_MS / 1000);
        }
    } else if (streq(s, "active") && lv->is_manager == (d->desired_role == STORE_SWARM_MANAGER)) {
        p->converged = true;
    } else if (streq(s, "active")) {
        p->action = MEMBERSHIP_BLOCKED;
        if (lv->is_manager)
            set(p->why, sizeof(p->why),
                "the node is a manager, and a worker is wanted: demote it on a manager "
                "(`docker node demote`), or ask to join as a manager");
        else
            set(p->why, sizeof(p->why),
                "the node is a worker, and a manager is wanted: the join token was a worker's; "
                "promote it on a manager (`docker node promote`), or leave and join with a "
                "manager's token");
    } else {
        p->action = MEMBERSHIP_BLOCKED;
        node_is(lv, p->why, sizeof(p->why));
    }
}

void membership_plan(const struct membership_input *in, struct membership_plan *ret)
{
    *ret = (struct membership_plan){.action = MEMBERSHIP_NOOP};
    const struct store_swarm *d = in->desired;
    if (!d || !in->live) {
        set(ret->why, sizeof(ret->why), "no membership is wanted: the node is left as it is");
        return;
    }
    char was[512];
    node_is(in->live, was, sizeof(was));
    switch (d->desired_role) {
    case STORE_SWARM_NONE:
        plan_none(in, ret);
        break;
    case STORE_SWARM_MANAGER: /* without join addresses: a swarm of its own */
    case STORE_SWARM_WORKER:
        if (d->desired_role == STORE_SWARM_MANAGER && !has_join_addrs(d))
            plan_init(in, ret);
        else
            plan_join(in, ret);
        break;
    default:
        ret->action = MEMBERSHIP_BLOCKED;
        set(ret->why, sizeof(ret->why), "unknown wanted role");
        break;
    }
    if (!*ret->why)
        snprintf(ret->why, sizeof(ret->why), "%s", was);
    if (ret->converged)
        membership_describe(d, ret->what, sizeof(ret->what));
}

bool membership_pending(const struct membership_plan *p)
{
    switch (p->action) {
    case MEMBERSHIP_INIT:
    case MEMBERSHIP_JOIN:
    case MEMBERSHIP_LEAVE:
    case MEMBERSHIP_CANCEL:
    case MEMBERSHIP_WAIT:
        return true;
    default:
        return false;
    }
}

/* ---- request bodies ----------------------------------------------------------------------
 *
 * As `docker swarm init` and `join` send them, with the CLI's defaults where the wanted
 * membership says nothing: ListenAddr 0.0.0.0:2377, Availability "active" and, with default
 * address pools, SubnetSize 24. Without the last two the Engine makes a swarm whose scheduler
 * never places a task (no availability; subnets of size 0 that no network is allocated in). */

static int set_str(json_t *o, const char *key, const char *v)
{
    if (!v || !*v)
        return 0;
    return json_object_set_new(o, key, json_string(v));
}

static int set_array(json_t *o, const char *key, const char *json)
{
    json_t *a = json ? json_loads(json, 0, NULL) : NULL;
    if (!json_is_array(a) || json_array_size(a) == 0) {
        json_decref(a);
        return 0;
    }
    return json_object_set_new(o, key, a);
}

/* What init and join both send: the node's addresses and its availability. NULL on -ENOMEM. */
static json_t *node_request(const struct store_swarm *d)
{
    json_t *o = json_object();
    if (!o ||
        json_object_set_new(o, "ListenAddr",
                            json_string(d->listen_addr ? d->listen_addr : "0.0.0.0:2377")) < 0 ||
        set_str(o, "AdvertiseAddr", d->advertise_addr) < 0 ||
        set_str(o, "DataPathAddr", d->data_path_addr) < 0 ||
        set_str(o, "Availability", "active") < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *membership_init_request(const struct store_swarm *d)
{
    json_t *o = node_request(d);
    if (!o || set_array(o, "DefaultAddrPool", d->default_addr_pools_json) < 0 ||
        (json_object_get(o, "DefaultAddrPool") &&
         json_object_set_new(o, "SubnetSize", json_integer(d->subnet_size ? d->subnet_size : 24)) <
             0) ||
        (d->data_path_port &&
         json_object_set_new(o, "DataPathPort", json_integer(d->data_path_port)) < 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *membership_join_request(const struct store_swarm *d)
{
    json_t *o = node_request(d);
    if (!o || set_array(o, "RemoteAddrs", d->join_addrs_json) < 0 ||
        set_str(o, "JoinToken", d->join_token) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- renderings ------------------------------------------------------------------------- */

static json_t *array_or_empty(const char *json)
{
    json_t *a = json ? json_loads(json, 0, NULL) : NULL;
    if (json_is_array(a))
        return a;
    json_decref(a);
    return json_array();
}

json_t *membership_desired_json(const struct store_swarm *d)
{
    if (!d)
        return json_null();
    char text[1024];
    membership_describe(d, text, sizeof(text));
    return json_pack("{s:s, s:s, s:o, s:b, s:s?, s:s?, s:s?, s:o, s:I, s:I, s:b, s:s?, s:I, s:I}",
                     "role", store_swarm_role_to_string(d->desired_role), "text", text,
                     "join_addrs", array_or_empty(d->join_addrs_json), "join_token_set",
                     d->join_token && *d->join_token, "advertise_addr", d->advertise_addr,
                     "listen_addr", d->listen_addr, "data_path_addr", d->data_path_addr,
                     "default_addr_pools", array_or_empty(d->default_addr_pools_json),
                     "subnet_size", (json_int_t)d->subnet_size, "data_path_port",
                     (json_int_t)d->data_path_port, "force", d->force, "source", d->source,
                     "revision", (json_int_t)d->revision, "updated_at", (json_int_t)d->updated_at);
}

json_t *membership_plan_to_json(const struct membership_plan *p)
{
    return json_pack("{s:s, s:b, s:b, s:s, s:s}", "action", membership_action_name(p->action),
                     "in_sync", !membership_pending(p) && p->action != MEMBERSHIP_BLOCKED, "force",
                     p->force, "what", p->what, "why", p->why);
}

void membership_mask(char *text)
{
    static const char mark[] = "SWMTKN-";
    for (char *p = text; (p = strstr(p, mark));) {
        char *start = p + sizeof(mark) - 1, *end = start;
        while ((*end >= 'a' && *end <= 'z') || (*end >= 'A' && *end <= 'Z') ||
               (*end >= '0' && *end <= '9') || *end == '-')
            end++;
        if (end - start >= 3) {
            memcpy(start, "***", 3);
            memmove(start + 3, end, strlen(end) + 1);
        } else {
            memset(start, '*', (size_t)(end - start));
        }
        p = start;
    }
}

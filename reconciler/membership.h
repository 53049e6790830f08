/* membership: the node's Swarm membership, desired against live. membership_plan() is pure:
 * the wanted membership (the store's swarm row, written by the intake), what GET /info said
 * (reconciler/live.h) and what the loop knows (stacks held, how long a join has been pending)
 * give one action. The Engine request bodies and the renderings for people (dry run, status,
 * events) are here too; reconciler.c makes the calls through the Docker driver. The join token
 * goes into the join body and nowhere else: no rendering here ever holds it.
 *
 *   wanted \ node     inactive   pending            active (as wanted)  active (other role)
 *   none              -          cancel (leave -f)  leave [1]           leave [1]
 *   manager (init)    init       cancel             -                   blocked
 *   worker/manager    join       wait, then cancel  -                   blocked
 *   (join addresses)             after a deadline
 *
 *   [1] a manager leaves only when forced, and only once the stacks it held (a forced leave
 *       marked them removed) have no objects left; stacks deployed after the leave block it.
 *   error, locked: blocked, naming the Engine's error (a forced leave still leaves).
 * docs/internals/reconciler.md ("Membership") has the rules. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reconciler/live.h"
#include "store/store.h"

/* How long a join may stay pending in the Engine (it keeps trying in the background after its
 * own 20 s) before the loop cancels it and tries again after its backoff. */
#define MEMBERSHIP_PENDING_MAX_MS 60000

enum membership_action {
    MEMBERSHIP_NOOP,    /* as wanted, or nothing wanted */
    MEMBERSHIP_INIT,    /* POST /swarm/init */
    MEMBERSHIP_JOIN,    /* POST /swarm/join */
    MEMBERSHIP_LEAVE,   /* POST /swarm/leave (force: ?force=true) */
    MEMBERSHIP_CANCEL,  /* POST /swarm/leave?force=true on a pending node: stops a join */
    MEMBERSHIP_WAIT,    /* a change under way: a pending join, stacks removed before a leave */
    MEMBERSHIP_BLOCKED, /* not without a decision of the operator: why says which */
    _MEMBERSHIP_ACTION_MAX,
};
/* "noop", "init", "join", "leave", "cancel", "wait", "blocked". */
const char *membership_action_name(enum membership_action a);

struct membership_input {
    const struct store_swarm *desired; /* NULL: never told, left as it is */
    const struct live_state *live;     /* after GET /info */
    size_t stacks_held;                /* stacks of the store not marked removed */
    size_t stacks_removing;            /* stacks marked removed the store still holds */
    int64_t pending_ms;                /* how long the node has been seen pending */
};

struct membership_plan {
    enum membership_action action;
    bool force;     /* leave, cancel: ?force=true */
    bool converged; /* the node is as wanted (NOOP with a wanted membership) */
    char what[512]; /* the change, for people ("join the swarm at 10.0.0.1:2377 as a worker") */
    char why[1024]; /* the node's state, or what a wait waits for, or what blocks and what to do */
};

/* Computes the plan. Pure. */
void membership_plan(const struct membership_input *in, struct membership_plan *ret);
/* Whether the plan leaves the node short of what is wanted (a change to make or under way):
 * init, join, leave, cancel, wait. */
bool membership_pending(const struct membership_plan *p);

/* The body of POST /swarm/init or /swarm/join for the wanted membership (join: with the token);
 * NULL when out of memory. */
json_t *membership_init_request(const struct store_swarm *d);
json_t *membership_join_request(const struct store_swarm *d);

/* The wanted membership for people, never the token: "worker of the swarm at 10.0.0.1:2377",
 * "manager of a swarm of its own", "in no swarm", "not managed". */
void membership_describe(const struct store_swarm *d, char *out, size_t len);
/* The wanted membership as JSON ({role, join_addrs, join_token_set, advertise_addr, ...}), the
 * token only as join_token_set. NULL d: null. */
json_t *membership_desired_json(const struct store_swarm *d);
/* The plan as JSON: {action, in_sync, force, what, why}. */
json_t *membership_plan_to_json(const struct membership_plan *p);

/* Masks join tokens in text, in place: each "SWMTKN-..." becomes "SWMTKN-***". For every
 * message that passes on what the Engine or a peer said. */
void membership_mask(char *text);

/* reconciler: the loop. A pass brings the desired state up to date with the store (compiling
 * only the stacks whose input changed, desired.h), observes the live Swarm, computes the plan,
 * applies it, and records what happened (applies, events, stack status). A pass starts with
 * the node's Swarm membership (reconciler/swarm.h): init, join or leave when the wanted
 * membership says so, then the stacks.
 *
 * Triggers only mark work and schedule a pass: a desired-state change (reconciler_trigger),
 * Docker events (debounced), a periodic resync, retry timers (per-object backoff), and a full
 * resync after the events stream reconnects. One pass runs at a time; a trigger during a pass
 * schedules another one after it. While something is settling (a stack progressing, or a change
 * less than two quiet passes ago), passes repeat every second to watch it converge; a converged
 * node waits for the triggers. A pass that finds the store and the Swarm as the last pass left
 * them, after a pass that had nothing to do, ends there: it parses, plans and writes nothing. */
#pragma once

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "drivers/docker/docker.h"
#include "reconciler/membership.h"
#include "reconciler/plan.h"
#include "compose/policy.h"
#include "store/store.h"

struct reconciler_opts {
    const char *agent_id;
    unsigned concurrency;
    bool prune;
    uint64_t resync_ms;
    const struct policy_rules *policy;
    /* One-pass mode (CLI): */
    bool dry_run;
    const char *only_stack;
};

struct reconciler;

int reconciler_new(struct ev_loop *loop, struct store *store, struct docker *docker,
                   const struct reconciler_opts *opts, struct reconciler **ret);
struct reconciler *reconciler_free(struct reconciler *r);

/* Daemon mode: opens the Docker events stream, starts the resync timer and runs a first pass. */
int reconciler_start(struct reconciler *r);
/* Something changed (why is logged): a pass runs soon. */
void reconciler_trigger(struct reconciler *r, const char *why);
/* Calls cb once no pass runs (at once when idle); used to stop after the in-flight pass. */
void reconciler_when_idle(struct reconciler *r, void (*cb)(void *), void *userdata);

/* What a pass found for one stack. */
struct reconciler_stack_report {
    const char *stack;
    int64_t generation;
    enum store_stack_state state;
    const char *reason; /* "" when none */
};

/* One pass, told to the observer when it ends (daemon mode). started_at is CLOCK_REALTIME ms
 * taken before the pass read the store: a change committed before it is in what it saw. A pass
 * that found the store and the Swarm as the last one left them reports no stacks (unchanged);
 * a pass that failed reports its error and the stacks it got to. Borrowed for the call. */
struct reconciler_pass_report {
    int64_t started_at, finished_at;
    bool unchanged;
    int result;        /* 0, or the pass's negative errno */
    const char *error; /* result < 0: why */
    const struct reconciler_stack_report *stacks;
    size_t n_stacks;
    /* The node as the pass read it (GET /info); swarm_known false when it could not. */
    bool swarm_known, swarm_active, is_manager;
    const char *node_id; /* NULL when unknown */
    /* Membership as the pass left it (reconciler/swarm.h): the Engine's LocalNodeState ("" when
     * unknown); the loop's verdict ("converged", "unmanaged", "joining", "initializing",
     * "leaving", "cancelling", "waiting", "retrying", "blocked"; "" before the first) and its
     * error ("" when none); the revision of the wanted membership it is about (0: never told).
     * A pass that made a membership call observed the node again after it: the fields above
     * say what the node is after the call. */
    const char *swarm_state;
    const char *membership;
    const char *membership_error;
    int64_t membership_revision;
};
typedef void (*reconciler_observer)(const struct reconciler_pass_report *rep, void *userdata);
/* One observer (NULL: none); the daemon fans it out. */
void reconciler_set_observer(struct reconciler *r, reconciler_observer fn, void *userdata);

/* What one pass of reconciler_run_once() found. */
struct reconciler_result {
    struct plan plan; /* the plan of the pass (owned) */
    /* The membership step's plan (reconciler/membership.h), made before the stacks'; after a
     * membership call (not in a dry run) the plan for the node as the call left it, and the
     * call's failure ("" when none). */
    struct membership_plan membership;
    char membership_error[1024];
    const char *pending; /* NULL, or why nothing can be managed on this node (a static text) */
    bool dry_run;        /* the plan was only computed */
    size_t failed;       /* steps that failed to apply (not in a dry run) */
};

/* CLI: one pass, run on the loop until it is done. With opts.dry_run nothing is changed.
 * 0 with *ret (release it with reconciler_result_release()), or a negative errno with err
 * saying what failed ("cannot read the Swarm's state: ..."). Prints nothing: the caller
 * renders the plan. */
int reconciler_run_once(struct reconciler *r, struct reconciler_result *ret, char *err,
                        size_t errlen);
void reconciler_result_release(struct reconciler_result *res);

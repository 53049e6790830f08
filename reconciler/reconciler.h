/* reconciler: the loop. A pass loads desired state from the store, observes the live Swarm,
 * computes the plan, applies it, and records what happened (applies, events, stack status).
 *
 * Triggers only mark work and schedule a pass: a desired-state change (reconciler_trigger),
 * Docker events (debounced), a periodic resync, retry timers (per-object backoff), and a full
 * resync after the events stream reconnects. One pass runs at a time; a trigger during a pass
 * schedules another one after it. While a stack is progressing, passes repeat every second to
 * watch it converge (read-only when nothing differs). */
#pragma once

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "drivers/docker/docker.h"
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

/* CLI: one pass, run on the loop until it is done. With opts.dry_run nothing is changed.
 * Returns 0 and the number of changes planned (dry run) or still pending after the pass in
 * *ret_changes, or -errno with the error printed to err_out. The plan is printed to out as
 * text or JSON. */
int reconciler_run_once(struct reconciler *r, FILE *out, bool json, size_t *ret_changes);

/* tracker: what became of a command after the intake accepted it. The gRPC and Kafka sources
 * owe every command exactly one final result; for a change of desired state that result is
 * known only when the loop has converged it (done), given up on it (failed), or a deadline has
 * passed (still converging). The tracker holds the accepted commands, listens to the loop's
 * reports after each pass, and when a command's result is final it records it in the store's
 * command log (store_update_command: applied / failed) and hands it to the sink of its source.
 *
 * After a restart the commands the store still lists as accepted are tracked again (their
 * deadline counts from when they were received), so a result owed before the restart is still
 * given once.
 *
 * Rules: a command counts as converged by the first pass that started after it was accepted
 * and that reports its stack converged (a deploy: at its generation or a newer one; a remove:
 * the stack removed); failed when that pass reports the stack failed or degraded; a
 * reconcile-now is done after the next pass. A swarm command (swarm-init, swarm-join,
 * swarm-leave) is done when a pass that started after it was accepted reports the membership
 * revision it wrote converged, failed when that pass reports it blocked or retrying (the loop
 * goes on trying), superseded when a later membership command was written. One thread: the
 * loop's. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sources/intake.h"
#include "store/store.h"

enum tracker_result {
    TRACKER_DONE,             /* converged (remove: the stack is gone) */
    TRACKER_FAILED,           /* the loop failed it; error says why */
    TRACKER_STILL_CONVERGING, /* accepted, not converged before the deadline */
    TRACKER_SUPERSEDED,       /* a deploy the stack moved past (a newer generation converged,
                               * or the stack was removed) before it converged */
    _TRACKER_RESULT_MAX,
};
const char *tracker_result_to_string(enum tracker_result result);

/* A final result, given to the sink of the command's source. Borrowed for the call. */
struct tracker_final {
    const char *command_id;
    const char *source; /* "grpc", "kafka", ... */
    enum intake_kind kind;
    const char *stack;
    int64_t generation; /* deploy, remove; swarm kinds: the membership revision; else 0 */
    enum tracker_result result;
    const char *error; /* FAILED: the loop's reason; else NULL */
};
/* Called inside the store transaction that records the result: what the sink writes to the
 * store (an outbox message) commits with it. It must not open a transaction of its own. */
typedef void (*tracker_sink)(const struct tracker_final *final, void *userdata);

/* What the loop found for one stack in a pass (the reconciler's report). */
struct tracker_stack_state {
    const char *stack;
    int64_t generation;
    enum store_stack_state state;
    const char *reason;
};

struct tracker;

/* The store is borrowed. timeout_ms: how long a command may take to converge before its result
 * is "still converging". */
int tracker_new(struct store *st, uint64_t timeout_ms, struct tracker **ret);
struct tracker *tracker_free(struct tracker *t);

/* Results of commands from source go to sink (one sink per source; NULL removes it). A final
 * result for a source without a sink is still recorded in the store. */
int tracker_set_sink(struct tracker *t, const char *source, tracker_sink sink, void *userdata);

/* Tracks a command the intake has just accepted (res->outcome INTAKE_ACCEPTED; others are final
 * at once and are not tracked). accepted_at: CLOCK_REALTIME ms of the commit. */
int tracker_add(struct tracker *t, const struct intake_request *req,
                const struct intake_result *res, int64_t accepted_at);

/* Loads the commands the store lists as accepted (after a restart). */
int tracker_load(struct tracker *t);

/* A pass that started at pass_started_at (CLOCK_REALTIME ms) reported these stacks. */
void tracker_on_pass(struct tracker *t, int64_t pass_started_at,
                     const struct tracker_stack_state *stacks, size_t n);

/* A pass that started at pass_started_at left the node's membership so (reconciler/reconciler.h,
 * struct reconciler_pass_report: membership, membership_error, membership_revision). */
void tracker_on_membership(struct tracker *t, int64_t pass_started_at, const char *verdict,
                           const char *error, int64_t revision);

/* Gives "still converging" to commands past their deadline; returns the earliest deadline
 * still pending (CLOCK_REALTIME ms), or 0 when none is. The caller runs it from a timer. */
int64_t tracker_expire(struct tracker *t, int64_t now);

/* How many commands wait for a result. */
size_t tracker_pending(const struct tracker *t);

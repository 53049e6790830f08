/* swarm: the loop's membership step. Every pass of the reconciler starts with it, before the
 * stacks: it reads the wanted membership from the store, plans against what GET /info said
 * (reconciler/membership.h, pure), makes the one Engine call the plan asks for (init, join,
 * leave) through the Docker driver, and says what came of it: events, and the "swarm" entry of
 * the store's agent state that `axion-agent status` shows. It keeps across passes what a pass
 * alone cannot know: the backoff after a failed call (lib/backoff.h, the reconciler's policy;
 * a new wanted membership starts it over), since when a join has been pending, and what it last
 * reported (an unchanged verdict is not written again).
 *
 * The join token is read from the store into the join body and nowhere else; every message
 * that passes on what the Engine said is masked (membership_mask()).
 *
 * Who calls it: reconciler.c, on the loop's thread. In a dry run it plans and reports nothing. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drivers/docker/docker.h"
#include "reconciler/live.h"
#include "reconciler/membership.h"
#include "store/store.h"

struct swarm_step;

/* The store and the client are borrowed. */
int swarm_step_new(struct store *st, struct docker *d, bool dry_run, struct swarm_step **ret);
struct swarm_step *swarm_step_free(struct swarm_step *s);

/* Reads the wanted membership (once per pass). 0, or a negative errno with err. */
int swarm_step_load(struct swarm_step *s, char *err, size_t errlen);

/* The plan for this observation. held / removing: the stacks of the store that are not / are
 * marked removed. now: CLOCK_REALTIME ms. */
void swarm_step_plan(struct swarm_step *s, const struct live_state *live, size_t held,
                     size_t removing, int64_t now, struct membership_plan *ret);

/* Whether the plan's call is to be made now: init, join, leave or cancel, not in a dry run, and
 * past the backoff of the last failure. */
bool swarm_step_due(const struct swarm_step *s, const struct membership_plan *p, int64_t now);

/* Makes the plan's call; done(userdata) runs on the loop when it ended, after its outcome was
 * recorded (an event; on failure the backoff). 0 or -ENOMEM (done is not called). */
int swarm_step_apply(struct swarm_step *s, const struct membership_plan *p,
                     void (*done)(void *userdata), void *userdata);

/* Says what the pass found: writes the "swarm" agent state when it changed, with an event when
 * the verdict (state, error) changed. Not in a dry run. */
void swarm_step_report(struct swarm_step *s, const struct membership_plan *p,
                       const struct live_state *live);

/* The verdict of the last report: "converged", "unmanaged", "joining", "initializing",
 * "leaving", "cancelling", "waiting", "retrying", "blocked", or "" before the first. error is ""
 * when none. Borrowed until the next report. */
const char *swarm_step_state(const struct swarm_step *s);
const char *swarm_step_error(const struct swarm_step *s);
/* The wanted membership's revision (0: never told). */
int64_t swarm_step_revision(const struct swarm_step *s);

/* When the next call may be made after a failure (CLOCK_REALTIME ms), 0 when none waits. */
int64_t swarm_step_retry_at(const struct swarm_step *s);
/* The last call's failure ("" when it succeeded, or none was made), for the CLI's one pass. */
const char *swarm_step_last_failure(const struct swarm_step *s);

/* apply: carries out a plan through the Docker driver. Phases run one after another (networks,
 * configs, secrets → services → removals of services → removals of the rest); the steps of a
 * phase run in parallel, at most `concurrency` at once. A service update carries the version it
 * was planned against; on a version conflict the service is read again and the update retried
 * with the new version. Every step's outcome is kept for the caller. */
#pragma once

#include <stdbool.h>

#include "drivers/docker/docker.h"
#include "reconciler/plan.h"

#define APPLY_CONFLICT_RETRIES 3

struct apply_outcome {
    int r;       /* 0, or negative errno */
    char *error; /* what Docker said, when r < 0 */
    bool done;
};

struct apply_run;
typedef void (*apply_cb)(struct apply_run *run, void *userdata);
/* The ID of an existing network, config or secret by name, or NULL: services name their
 * configs and secrets by ID. Objects the run itself created are known without it. */
typedef const char *(*apply_lookup)(void *userdata, enum spec_kind kind, const char *name);

/* Starts applying plan (borrowed until cb has been called). Steps with skip[i] set (may be
 * NULL) are not applied. cb is called once when every step has finished: from the loop, or
 * before apply_start returns when there was nothing to send. */
int apply_start(struct docker *d, const struct plan *plan, const bool *skip, unsigned concurrency,
                apply_lookup lookup, apply_cb cb, void *userdata, struct apply_run **ret);
/* The outcome of step i (valid in and after cb). */
const struct apply_outcome *apply_outcome(const struct apply_run *run, size_t i);
size_t apply_failed(const struct apply_run *run);
/* Frees a finished run (or cancels a running one: no callback then). Accepts NULL. */
struct apply_run *apply_free(struct apply_run *run);

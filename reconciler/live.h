/* live: what the Swarm holds right now, read through the Docker driver. One observation is a
 * GET /info, then (on a manager) the services (with their task counts), networks, configs,
 * secrets and tasks lists in parallel. Read-only: never a mutating call. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "drivers/docker/docker.h"
#include "reconciler/plan.h"

struct live_state {
    bool swarm_active;
    bool is_manager;
    char *node_id;
    struct live_obj *objs; /* borrow from the JSON lists below */
    size_t n_objs;
    json_t *services; /* the raw answers, owned */
    json_t *networks;
    json_t *configs;
    json_t *secrets;
    json_t *tasks;
};

/* r is 0 or a negative errno with err saying what failed. st is owned by the callee of cb
 * (free it with live_state_free) and is NULL on failure. */
typedef void (*live_cb)(int r, struct live_state *st, const char *err, void *userdata);

/* Starts one observation; cb is called once, from the loop. 0 or -ENOMEM. */
int live_observe(struct docker *d, live_cb cb, void *userdata);
struct live_state *live_state_free(struct live_state *st);

/* Convenience lookups on an observation. */
const struct live_obj *live_find(const struct live_state *st, enum spec_kind kind,
                                 const char *name);
/* The raw JSON of a service by name (borrowed), or NULL. */
json_t *live_service_json(const struct live_state *st, const char *name);
/* Label value of a JSON labels object, or NULL. */
const char *live_label(const json_t *labels, const char *key);

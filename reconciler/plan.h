/* plan: the pure heart of the reconciler. plan_compute(desired, live) says what to create,
 * update and remove to make the live Swarm equal to the desired state. No I/O: easy to test.
 *
 * Ownership: a plan borrows nothing from its inputs; it copies names and takes its own
 * references on JSON specs, so inputs may be freed before the plan. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compose/spec.h"
#include "lib/buf.h"

enum plan_action {
    PLAN_NOOP,
    PLAN_CREATE,
    PLAN_UPDATE,
    PLAN_REMOVE,
    PLAN_CONFLICT, /* the name is taken by an object axion does not manage: left alone */
};

/* Apply order: every step of a phase may run in parallel, phases run one after another. */
enum plan_phase {
    PHASE_DEPS,     /* create networks, configs, secrets */
    PHASE_SERVICES, /* create and update services */
    PHASE_REMOVE_SERVICES,
    PHASE_REMOVE_DEPS, /* remove networks, configs, secrets no longer used */
    PHASE_MAX
};

struct desired_obj {
    enum spec_kind kind;
    const char *stack;
    const char *name;
    json_t *spec; /* the Engine API create body (borrowed) */
    const char *hash;
};

struct live_obj {
    enum spec_kind kind;
    const char *id;
    const char *name;
    uint64_t version;  /* Version.Index, for optimistic concurrency */
    json_t *spec;      /* the live Spec (borrowed) */
    bool managed;      /* io.axion.managed=true */
    const char *agent; /* io.axion.agent */
    const char *stack; /* io.axion.stack, or com.docker.stack.namespace */
    const char *hash;  /* io.axion.spec-hash */
};

struct plan_input {
    const struct desired_obj *desired;
    size_t n_desired;
    const struct live_obj *live;
    size_t n_live;
    const char *agent_id;
    /* Only look at this stack's objects (NULL: all). */
    const char *only_stack;
    /* Stacks whose objects must be left alone this pass (e.g. their manifest could not be
     * converted): never removed, never updated. */
    const char *const *frozen_stacks;
    size_t n_frozen;
    /* Stacks the store knows (desired, frozen or removed). Objects of other stacks are never
     * removed: a lost or reset store must not prune what it forgot. */
    const char *const *known_stacks;
    size_t n_known;
    /* Remove managed objects of known stacks that no desired stack holds. */
    bool prune;
    /* With prune off, objects of these stacks are still removed (the stack was removed). */
    const char *const *removed_stacks;
    size_t n_removed;
};

struct plan_step {
    enum plan_action action;
    enum spec_kind kind;
    enum plan_phase phase;
    char *name;
    char *stack;
    char *live_id;    /* update, remove */
    uint64_t version; /* update */
    json_t *spec;     /* create, update (own reference) */
    char *hash;
    bool rolls_tasks; /* an update that replaces tasks (task template changed) */
    char *reason;     /* "missing", "spec changed", "drift", "not desired" */
    char **fields;    /* changed field paths (update) */
    size_t n_fields;
};

struct plan {
    struct plan_step *steps;
    size_t n;
    size_t n_noop; /* objects already in sync */
    size_t cap;    /* room in steps (lib/array.h) */
};

/* Computes the plan. Returns 0, or -ENOMEM. Steps come sorted by phase, then kind, name. */
int plan_compute(const struct plan_input *in, struct plan *ret);
void plan_release(struct plan *p);

/* Number of steps that change something. */
size_t plan_changes(const struct plan *p);

/* True when a change of this spec path replaces the service's tasks. */
bool plan_field_rolls_tasks(const char *path);

const char *plan_action_name(enum plan_action a);

/* Renders the plan for people (`+ create`, `~ update`, `- remove`, then a summary line) into
 * out: 0, or -ENOMEM/-EMSGSIZE (the buffer freed itself); or as JSON (NULL: out of memory).
 * Pure: printing is the caller's. */
int plan_format_text(const struct plan *p, struct buf *out);
json_t *plan_to_json(const struct plan *p);

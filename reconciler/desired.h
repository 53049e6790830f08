/* desired: the desired state, built from the store and kept across passes. Each stack's compose
 * text is compiled (compose/compile.h: parse, policy, files, convert, hashes); then the
 * overrides (scale, stop, restart) are laid over copies of its services, and the copies get
 * their own spec-hash label. A stack that cannot be built is "frozen": the loop leaves its live
 * objects alone and reports it failed.
 *
 * The cache: desired_refresh() reads one summary of every stack per pass (name, generation,
 * removed, overrides revision: store_list_stack_revisions()). A stack is compiled again only
 * when its generation or removed flag changed, or the agent id or the policy did; its overrides
 * are read again only when their revision changed. A refresh that finds nothing changed reads
 * no compose text, parses nothing and builds nothing. The compiled specs stay pristine: what
 * the plan sees of a service with overrides is a copy. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "compose/compile.h"
#include "compose/policy.h"
#include "reconciler/plan.h"
#include "store/store.h"

struct desired_opts {
    const char *agent_id;
    const struct policy_rules *policy;
};

struct desired_service {
    char *name; /* STACK_svc */
    char *short_name;
    int64_t replicas; /* -1: global mode */
    bool job;
};

/* One stack of the store, as of the last refresh. */
struct desired_stack {
    char *name;
    int64_t generation;
    bool removed;
    char *error; /* set when the stack could not be built (frozen) */
    struct desired_service *services;
    size_t n_services;

    /* What it was built from and of (desired.c's own). */
    char *overrides_rev;             /* the store's revision of its overrides, NULL: none */
    struct compile_result *compiled; /* NULL when removed or frozen; never changed once built */
    json_t **overlay;                /* per compiled object: its spec with overrides, or NULL */
    char (*overlay_hash)[SPEC_HASH_HEX + 1];
    bool dirty; /* built again by this refresh */
};

struct desired_state {
    struct desired_stack *stacks; /* by name */
    size_t n_stacks, cap_stacks;

    /* What the plan reads, rebuilt when a stack changed; borrowed from the stacks above. */
    struct desired_obj *objs;
    size_t n_objs, cap_objs;
    const char **known; /* names of every stack of the store */
    size_t n_known, cap_known;
    const char **removed; /* names of stacks marked removed */
    size_t n_removed, cap_removed;
    const char **frozen; /* names of stacks that could not be built */
    size_t n_frozen, cap_frozen;

    char *inputs_key; /* the agent id and policy the stacks were compiled with */
    uint64_t version; /* moves whenever anything above changes */
    /* Counters, for the logs and the tests: compiles done, overrides lists read. */
    uint64_t compiles;
    uint64_t overlays;
};

/* Brings ds (zeroed the first time) up to date with the store. Errors of one stack freeze that
 * stack; only store errors and -ENOMEM fail the refresh (err says what), and leave ds usable
 * for the next refresh, which tries again. */
int desired_refresh(struct desired_state *ds, struct store *st, const struct desired_opts *o,
                    char *err, size_t errlen);
/* Frees everything; ds is zeroed (ready for a new refresh). */
void desired_release(struct desired_state *ds);

/* The stack's entry by name, or NULL. */
const struct desired_stack *desired_find(const struct desired_state *ds, const char *name);

/* desired: the desired state, built from the store. Each stack's compose text is parsed,
 * checked against the policy and converted to Engine API objects; then the overrides
 * (scale, stop, restart) are laid over the services and every service's spec-hash label is
 * computed from its final spec. A stack that cannot be built is "frozen": the loop leaves its
 * live objects alone and reports it failed. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "reconciler/plan.h"
#include "compose/policy.h"
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

struct desired_stack {
    char *name;
    int64_t generation;
    bool removed;
    char *error; /* set when the stack could not be built */
    struct desired_service *services;
    size_t n_services;
};

struct desired_state {
    struct desired_stack *stacks;
    size_t n_stacks;
    struct desired_obj *objs; /* borrow from specs below */
    size_t n_objs;
    const char **known; /* names of every stack of the store */
    size_t n_known;
    const char **removed; /* names of stacks marked removed */
    size_t n_removed;
    const char **frozen; /* names of stacks that could not be built */
    size_t n_frozen;
    void **specs; /* struct spec_stack *, owned */
    size_t n_specs;
};

/* Loads every stack of the store. Errors of one stack freeze that stack, they do not fail the
 * load: only store errors and -ENOMEM do (err says what). */
int desired_load(struct store *st, const struct desired_opts *o, struct desired_state *ret,
                 char *err, size_t errlen);
void desired_release(struct desired_state *ds);

/* Validates a manifest the way the loop will build it (parse, policy, convert), without the
 * store: what `apply` runs before it writes. filename names the manifest in messages. 0, or
 * -EINVAL with the error in err. Warnings (keys
 * Swarm ignores) are printed to warn_out when it is not NULL. */
int desired_validate(const char *stack, const char *filename, const char *compose, size_t len,
                     const char *vars_json, const char *files_json, const struct desired_opts *o,
                     FILE *warn_out, char *err, size_t errlen);

/* The files a manifest names (configs'/secrets' `file:`, services' `env_file`), as written, for
 * the CLI to attach. 0, or the parse error's negative errno. */
int desired_referenced_files(const char *compose, size_t len, const char *vars_json, char ***ret,
                             size_t *ret_n);
/* 1 when the manifest has the service, 0 when not, negative errno when it does not parse. */
int desired_has_service(const char *compose, size_t len, const char *vars_json,
                        const char *service);

/* Compose model → Engine API objects, the way `docker stack deploy` converts a stack
 * (docker/cli cli/compose/convert): the same names (STACK_key, or the `name:` given), the same
 * labels (com.docker.stack.namespace on every object and container, com.docker.stack.image on
 * services), the stack's default network, the service's short name as a network alias, the
 * same ordering of env, ports, networks, secrets and configs, so the result is deterministic.
 *
 * On top of docker's objects:
 * - configs and secrets are content-addressed: NAME_<first 8 hex of sha256(content)>, where
 *   NAME is the name docker would give (STACK_key or `name:`), so a change makes a new object;
 * - every network, config, secret and service carries io.axion.managed=true,
 *   io.axion.agent=<agent id>, io.axion.stack=<stack> and io.axion.spec-hash=<sha256 of the
 *   canonical JSON of the body without that label> (see spec_hash.h).
 *
 * spec_convert() is pure: no I/O. A service body names its secrets and configs (SecretName,
 * ConfigName) with empty IDs: spec_resolve_ids() fills the IDs in once they are known, just
 * before the body is sent (the hash does not cover IDs). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "compose/compose.h"
#include "compose/spec_hash.h"

/* The kinds of Swarm object a stack is made of: the one name for them in the whole agent (the
 * reconciler's plan and the Docker driver's table of Engine paths use it too). */
enum spec_kind {
    SPEC_NETWORK,
    SPEC_CONFIG,
    SPEC_SECRET,
    SPEC_SERVICE,
    _SPEC_KIND_MAX,
};

/* "network", "config", "secret", "service" ("?" for anything else). */
const char *spec_kind_to_string(enum spec_kind kind);

/* A file that came with the manifest: a config's or secret's `file:`, or an `env_file`. name is
 * the path as the manifest writes it (a leading "./" does not matter). */
struct spec_file {
    const char *name;
    const void *data;
    size_t len;
};

/* The file of files[0..n) that answers the manifest's reference name: the same name, else the
 * first that is the same without leading "./" ("./pw.txt" and "pw.txt"); NULL when none. */
const struct spec_file *spec_file_find(const struct spec_file *files, size_t n, const char *name);

struct spec_input {
    const char *stack;    /* the stack name: the namespace of every object */
    const char *agent_id; /* io.axion.agent; NULL leaves the label out */
    const struct spec_file *files;
    size_t n_files;
    /* Leave every object's hash (and its io.axion.spec-hash label) unset: for a caller that
     * only checks the manifest (the intake), a quarter of the conversion's cost. */
    bool no_hashes;
};

/* A network, config or secret a service uses. */
struct spec_ref {
    enum spec_kind kind;
    char *name;    /* its name in Swarm */
    bool external; /* declared external: must exist, the stack does not create it */
};

struct spec_object {
    enum spec_kind kind;
    char *key;         /* the compose key: service name, network/config/secret key */
    char *name;        /* the object's name in Swarm */
    char *docker_name; /* the name docker stack deploy gives it (differs for configs, secrets) */
    json_t *spec;      /* exactly the Engine API create body */
    char hash[SPEC_HASH_HEX + 1]; /* the io.axion.spec-hash label */
    struct spec_ref *refs;        /* services only */
    size_t n_refs;
};

struct spec_stack {
    char *stack;
    /* networks, configs, secrets, services: the order they are created in; by name within */
    struct spec_object *objects;
    size_t n_objects;
    /* external networks, configs and secrets the stack uses: they must exist */
    struct spec_ref *externals;
    size_t n_externals;
    /* keys ignored on the way, one line each ("file:line:col: path: why") */
    char **warnings;
    size_t n_warnings;
};

#define SPEC_LABEL_NAMESPACE "com.docker.stack.namespace"
#define SPEC_LABEL_IMAGE     "com.docker.stack.image"
#define SPEC_LABEL_MANAGED   "io.axion.managed"
#define SPEC_LABEL_AGENT     "io.axion.agent"
#define SPEC_LABEL_STACK     "io.axion.stack"
#define SPEC_LABEL_HASH      "io.axion.spec-hash"

/* Converts a project for stack in->stack. On error returns a negative errno with err set
 * (-EINVAL: a file missing from the attached files, a bad env file, a bad stack name). */
int spec_convert(const struct compose_project *p, const struct spec_input *in,
                 struct spec_stack **ret_stack, struct compose_error *err);

struct spec_stack *spec_stack_free(struct spec_stack *s);

const struct spec_object *spec_stack_find(const struct spec_stack *s, enum spec_kind kind,
                                          const char *name);

/* The labels object of a create body (ServiceSpec.Labels, NetworkCreate.Labels, ...). */
json_t *spec_labels(json_t *spec);

/* Recomputes o->hash and the io.axion.spec-hash label after o->spec was changed (an override
 * of replicas, say). 0 or -ENOMEM. */
int spec_stamp(struct spec_object *o);

/* Fills SecretID and ConfigID of a service body: lookup(ud, kind, name) returns the ID of the
 * secret or config with that name, or NULL (→ -ENOENT, naming it in *ret_missing). */
int spec_resolve_ids(json_t *service_spec,
                     const char *(*lookup)(void *ud, enum spec_kind kind, const char *name),
                     void *ud, const char **ret_missing);

/* Replaces each TaskTemplate.Networks[].Target (a network's name) with the ID lookup(ud,
 * SPEC_NETWORK, name) returns, or -ENOENT naming it in *ret_missing. The Engine reads a Target
 * it does not know by name as a prefix of a network's ID, which could be the host network's:
 * a name is sent only once this node has a network of exactly that name. */
int spec_resolve_network_ids(json_t *service_spec,
                             const char *(*lookup)(void *ud, enum spec_kind kind, const char *name),
                             void *ud, const char **ret_missing);

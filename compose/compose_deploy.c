#include "compose/compose_deploy.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "lib/util.h"
#include "compose/compose_value.h"

/* ---- update_config and rollback_config -------------------------------------------------- */

static const char *const failure_actions[] = {"pause", "continue", "rollback", NULL};
static const char *const orders[] = {"start-first", "stop-first", NULL};

static const struct compose_key update_keys[] = {
    {KEY("parallelism", KEY_U64, KEY_AT(compose_update_config, parallelism))},
    {KEY("delay", KEY_DURATION, KEY_AT(compose_update_config, delay_ns))},
    {KEY("failure_action", KEY_STR, KEY_AT(compose_update_config, failure_action)),
     .one_of = failure_actions, .expect = "pause, continue or rollback"},
    {KEY("monitor", KEY_DURATION, KEY_AT(compose_update_config, monitor_ns))},
    {KEY("max_failure_ratio", KEY_NUMBER, KEY_AT(compose_update_config, max_failure_ratio)),
     .limit = "a ratio between 0 and 1", .min = 0, .max = 1},
    {KEY("order", KEY_STR, KEY_AT(compose_update_config, order)), .one_of = orders,
     .expect = "start-first or stop-first"},
};
static const struct compose_keys update_table = COMPOSE_KEYS(update_keys);

/* ---- resources -------------------------------------------------------------------------- */

static const struct compose_key discrete_keys[] = {
    {KEY("kind", KEY_STR, KEY_AT(compose_generic_resource, kind))},
    {KEY("value", KEY_INT, KEY_AT(compose_generic_resource, value)), .limit = "0 or more", .min = 0,
     .max = INT64_MAX},
};
static const struct compose_keys discrete_table = COMPOSE_KEYS(discrete_keys);

static const struct compose_key generic_keys[] = {
    {KEY("discrete_resource_spec", KEY_MAP, KEY_SELF), .sub = &discrete_table},
};
static const struct compose_keys generic_table = COMPOSE_KEYS(generic_keys);

/* reservations.generic_resources: [{discrete_resource_spec: {kind: gpu, value: 2}}] */
static int read_generic(struct compose_loader *l, const struct compose_ynode *n, void *field,
                        const struct compose_key *k)
{
    struct compose_resource *res = field;
    if (n->kind != COMPOSE_YSEQ)
        return compose_value_expected(l, n, NULL, "a list");
    size_t cap = 0;
    for (size_t j = 0; j < n->n; j++) {
        size_t old = compose_load_push_index(l, j);
        struct compose_generic_resource *g =
            COMPOSE_LOAD_APPEND(l, res->generic, res->n_generic, cap);
        if (!g)
            return -ENOMEM;
        int r = compose_keys_read(l, n->vals[j], &generic_table, g);
        if (r < 0)
            return r;
        compose_load_pop(l, old);
    }
    return 0;
}

static const struct compose_key limits_keys[] = {
    {KEY("cpus", KEY_CPUS, KEY_AT(compose_resource, cpus))},
    {KEY("memory", KEY_SIZE, KEY_AT(compose_resource, memory))},
    {KEY("pids", KEY_INT, KEY_AT(compose_resource, pids)),
     .limit = "a process limit of -1 or more (-1 and 0: none)", .min = -1, .max = INT64_MAX},
};
static const struct compose_keys limits_table = COMPOSE_KEYS(limits_keys);

static const struct compose_key reservations_keys[] = {
    {KEY("cpus", KEY_CPUS, KEY_AT(compose_resource, cpus))},
    {KEY("memory", KEY_SIZE, KEY_AT(compose_resource, memory))},
    {KEY("generic_resources", KEY_READ, KEY_SELF), .read = read_generic},
};
static const struct compose_keys reservations_table = COMPOSE_KEYS(reservations_keys);

static const struct compose_key resources_keys[] = {
    {KEY("limits", KEY_MAP, KEY_AT(compose_deploy, limits)),
     .present = KEY_AT(compose_deploy, limits.set), .sub = &limits_table},
    {KEY("reservations", KEY_MAP, KEY_AT(compose_deploy, reservations)),
     .present = KEY_AT(compose_deploy, reservations.set), .sub = &reservations_table},
};
static const struct compose_keys resources_table = COMPOSE_KEYS(resources_keys);

/* ---- restart_policy, placement ---------------------------------------------------------- */

static const char *const conditions[] = {"none", "on-failure", "any", NULL};

static const struct compose_key restart_policy_keys[] = {
    {KEY("condition", KEY_STR, KEY_AT(compose_restart_policy, condition)), .one_of = conditions,
     .expect = "none, on-failure or any"},
    {KEY("delay", KEY_DUR, KEY_AT(compose_restart_policy, delay))},
    {KEY("max_attempts", KEY_U64, KEY_AT(compose_restart_policy, max_attempts))},
    {KEY("window", KEY_DUR, KEY_AT(compose_restart_policy, window))},
};
static const struct compose_keys restart_policy_table = COMPOSE_KEYS(restart_policy_keys);

static const struct compose_key placement_keys[] = {
    {KEY("constraints", KEY_LIST, KEY_AT(compose_deploy, constraints))},
    {KEY("preferences", KEY_READ, KEY_AT(compose_deploy, preferences)),
     .read = compose_keys_keyed_list, .arg = "spread"},
    {KEY("max_replicas_per_node", KEY_UINT, KEY_AT(compose_deploy, max_replicas_per_node))},
};
static const struct compose_keys placement_table = COMPOSE_KEYS(placement_keys);

/* ---- deploy ----------------------------------------------------------------------------- */

static int read_mode(struct compose_loader *l, const struct compose_ynode *n, void *field,
                     const struct compose_key *k)
{
    static const char *const modes[] = {
        [COMPOSE_MODE_REPLICATED] = "replicated",
        [COMPOSE_MODE_GLOBAL] = "global",
        [COMPOSE_MODE_REPLICATED_JOB] = "replicated-job",
        [COMPOSE_MODE_GLOBAL_JOB] = "global-job",
    };
    char *mode = NULL;
    int r = compose_value_str(l, n, &mode);
    if (r < 0)
        return r;
    for (size_t i = 0; i < ARRAY_SIZE(modes); i++)
        if (streq(mode, modes[i])) {
            *(enum compose_mode *)field = (enum compose_mode)i;
            return 0;
        }
    return compose_load_fail(
        l, n, "expected replicated, global, replicated-job or global-job, got \"%s\"", mode);
}

/* vip or dnsrr, in any case. */
static int read_endpoint_mode(struct compose_loader *l, const struct compose_ynode *n, void *field,
                              const struct compose_key *k)
{
    char *mode = NULL;
    int r = compose_value_str(l, n, &mode);
    if (r < 0)
        return r;
    mode = compose_arena_strdup(l->a, mode);
    if (!mode)
        return -ENOMEM;
    for (char *p = mode; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    *(char **)field = mode;
    if (!streq(mode, "vip") && !streq(mode, "dnsrr"))
        return compose_load_fail(l, n, "expected vip or dnsrr, got \"%s\"", mode);
    return 0;
}

static int deploy_finish(struct compose_loader *l, const struct compose_ynode *map, void *obj)
{
    const struct compose_deploy *d = obj;
    const struct compose_ynode *replicas = compose_yaml_get(map, "replicas");
    if (!replicas || (d->mode != COMPOSE_MODE_GLOBAL && d->mode != COMPOSE_MODE_GLOBAL_JOB))
        return 0;
    size_t old = compose_load_push(l, "replicas");
    int r = compose_load_fail(l, replicas,
                              "replicas can only be used with replicated or replicated-job mode");
    compose_load_pop(l, old);
    return r;
}

static const struct compose_key deploy_keys[] = {
    {KEY("mode", KEY_READ, KEY_AT(compose_deploy, mode)), .read = read_mode},
    {KEY("replicas", KEY_U64, KEY_AT(compose_deploy, replicas)),
     .limit = "a number of replicas from 0 to 100000", .min = 0, .max = COMPOSE_MAX_REPLICAS,
     .flags = KEY_GOT},
    {KEY("endpoint_mode", KEY_READ, KEY_AT(compose_deploy, endpoint_mode)),
     .read = read_endpoint_mode},
    {KEY("labels", KEY_LABELS, KEY_AT(compose_deploy, labels))},
    {KEY("update_config", KEY_MAP, KEY_AT(compose_deploy, update_config)),
     .present = KEY_AT(compose_deploy, update_config.set), .sub = &update_table},
    {KEY("rollback_config", KEY_MAP, KEY_AT(compose_deploy, rollback_config)),
     .present = KEY_AT(compose_deploy, rollback_config.set), .sub = &update_table},
    {KEY("resources", KEY_MAP, KEY_SELF), .sub = &resources_table},
    {KEY("restart_policy", KEY_MAP, KEY_AT(compose_deploy, restart_policy)),
     .present = KEY_AT(compose_deploy, restart_policy.set), .sub = &restart_policy_table},
    {KEY("placement", KEY_MAP, KEY_SELF), .sub = &placement_table},
};
const struct compose_keys compose_deploy_keys =
    COMPOSE_KEYS(deploy_keys, .null_ok = true, .finish = deploy_finish);

#include "compose/compose_service.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "compose/compose_deploy.h"
#include "compose/compose_mounts.h"
#include "compose/compose_ports.h"
#include "compose/compose_util.h"
#include "compose/compose_value.h"

/* ---- secrets and configs of a service --------------------------------------------------- */

static const struct compose_key file_ref_keys[] = {
    {KEY("source", KEY_STR, KEY_AT(compose_file_ref, source))},
    {KEY("target", KEY_STR, KEY_AT(compose_file_ref, target))},
    {KEY("uid", KEY_STR, KEY_AT(compose_file_ref, uid))},
    {KEY("gid", KEY_STR, KEY_AT(compose_file_ref, gid))},
    /* Permission bits only: the Engine reads larger numbers as Go's own mode bits (setuid is
     * 1 << 23 there), which a file in a container has no business asking for. */
    {KEY("mode", KEY_U32, KEY_AT(compose_file_ref, mode)),
     .present = KEY_AT(compose_file_ref, has_mode), .limit = "a file mode from 0 to 0777", .min = 0,
     .max = 0777},
};
static const struct compose_keys file_ref_table = COMPOSE_KEYS(file_ref_keys);

/* [name, {source: name, target: ..., uid, gid, mode}] */
static int read_file_refs(struct compose_loader *l, const struct compose_ynode *n,
                          struct compose_file_ref **ret, size_t *ret_n)
{
    if (n->kind != COMPOSE_YSEQ)
        return compose_value_expected(l, n, NULL, "a list");
    struct compose_file_ref *v = NULL;
    size_t cnt = 0, cap = 0;
    for (size_t i = 0; i < n->n; i++) {
        const struct compose_ynode *e = n->vals[i];
        size_t old = compose_load_push_index(l, i);
        struct compose_file_ref *f = COMPOSE_LOAD_APPEND(l, v, cnt, cap);
        if (!f)
            return -ENOMEM;
        f->pos = compose_load_pos(e);
        int r;
        if (e->kind == COMPOSE_YMAP) {
            r = compose_keys_read(l, e, &file_ref_table, f);
            if (r == 0 && (!f->source || !*f->source))
                r = compose_load_fail(l, e, "a source is required");
        } else {
            r = compose_value_str(l, e, &f->source);
        }
        if (r < 0)
            return r;
        compose_load_pop(l, old);
    }
    *ret = v;
    *ret_n = cnt;
    return 0;
}

static int read_secrets(struct compose_loader *l, const struct compose_ynode *n, void *field,
                        const struct compose_key *k)
{
    struct compose_service *s = field;
    return read_file_refs(l, n, &s->secrets, &s->n_secrets);
}

static int read_configs(struct compose_loader *l, const struct compose_ynode *n, void *field,
                        const struct compose_key *k)
{
    struct compose_service *s = field;
    return read_file_refs(l, n, &s->configs, &s->n_configs);
}

/* ---- networks of a service -------------------------------------------------------------- */

static const struct compose_key network_keys[] = {
    {KEY("aliases", KEY_LIST, KEY_AT(compose_service_network, aliases)), .flags = KEY_UNIQUE,
     .present = KEY_AT(compose_service_network, has_aliases)},
    {KEY("ipv4_address", KEY_STR, KEY_AT(compose_service_network, ipv4_address)),
     .ignored = "Swarm assigns service addresses"},
    {KEY("ipv6_address", KEY_STR, KEY_AT(compose_service_network, ipv6_address)),
     .ignored = "Swarm assigns service addresses"},
};
static const struct compose_keys network_table =
    COMPOSE_KEYS(network_keys, .want = "a mapping or null", .null_ok = true);

/* [name, ...] or {name: {aliases: [...]} or null, ...} */
static int read_networks(struct compose_loader *l, const struct compose_ynode *n, void *field,
                         const struct compose_key *k)
{
    struct compose_service *s = field;
    size_t cap = 0;
    if (n->kind == COMPOSE_YSEQ) {
        struct compose_strv names;
        int r = compose_value_list(l, n, true, &names);
        if (r < 0)
            return r;
        for (size_t i = 0; i < names.n; i++) {
            struct compose_service_network *sn =
                COMPOSE_LOAD_APPEND(l, s->networks, s->n_networks, cap);
            if (!sn)
                return -ENOMEM;
            sn->name = names.v[i];
            sn->pos = compose_load_pos(n->vals[i]);
        }
        return 0;
    }
    if (n->kind != COMPOSE_YMAP)
        return compose_value_expected(l, n, NULL, "a list of network names or a mapping");
    for (size_t i = 0; i < n->n; i++) {
        size_t old = compose_load_push(l, n->keys[i]->str);
        if (!compose_value_valid_name(n->keys[i]->str))
            return compose_load_fail(l, n->keys[i],
                                     "invalid network name (letters, digits, '.', '_', '-')");
        struct compose_service_network *sn =
            COMPOSE_LOAD_APPEND(l, s->networks, s->n_networks, cap);
        if (!sn)
            return -ENOMEM;
        sn->name = (char *)n->keys[i]->str;
        sn->pos = compose_load_pos(n->keys[i]);
        int r = compose_keys_read(l, n->vals[i], &network_table, sn);
        if (r < 0)
            return r;
        compose_load_pop(l, old);
    }
    return 0;
}

/* ---- healthcheck, logging, ulimits ------------------------------------------------------ */

/* test: ["CMD", ...] as it is, or a string run by the shell. */
static int read_test(struct compose_loader *l, const struct compose_ynode *n, void *field,
                     const struct compose_key *k)
{
    struct compose_strv *test = field;
    if (n->kind == COMPOSE_YSEQ)
        return compose_value_list(l, n, false, test);
    char *cmd = NULL;
    int r = compose_value_str(l, n, &cmd);
    if (r < 0)
        return r;
    char **t = compose_arena_array(l->a, 2, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t[0] = "CMD-SHELL";
    t[1] = cmd;
    *test = (struct compose_strv){.v = t, .n = 2};
    return 0;
}

static int healthcheck_finish(struct compose_loader *l, const struct compose_ynode *map, void *obj)
{
    const struct compose_healthcheck *h = obj;
    if (h->disable && compose_yaml_get(map, "test") && h->test.n)
        return compose_load_fail(l, map, "test and disable can't be set at the same time");
    /* The Engine takes 0 (its default) or at least 1ms for these. */
    const struct {
        const char *key;
        const struct compose_duration *d;
    } mins[] = {
        {"interval", &h->interval}, {"timeout", &h->timeout}, {"start_period", &h->start_period}};
    for (size_t i = 0; i < ARRAY_SIZE(mins); i++) {
        if (!mins[i].d->set || mins[i].d->ns == 0 || mins[i].d->ns >= 1000000)
            continue;
        size_t old = compose_load_push(l, mins[i].key);
        int r = compose_load_fail(l, compose_yaml_get(map, mins[i].key),
                                  "expected 0 or at least 1ms (the Engine's minimum)");
        compose_load_pop(l, old);
        return r;
    }
    return 0;
}

static const struct compose_key healthcheck_keys[] = {
    {KEY("test", KEY_READ, KEY_AT(compose_healthcheck, test)), .read = read_test},
    {KEY("disable", KEY_BOOL, KEY_AT(compose_healthcheck, disable))},
    {KEY("interval", KEY_DUR, KEY_AT(compose_healthcheck, interval))},
    {KEY("timeout", KEY_DUR, KEY_AT(compose_healthcheck, timeout))},
    {KEY("start_period", KEY_DUR, KEY_AT(compose_healthcheck, start_period))},
    /* The Engine keeps retries as a 32-bit integer (swarmkit's HealthConfig). */
    {KEY("retries", KEY_U64, KEY_AT(compose_healthcheck, retries)),
     .limit = "a number of retries from 0 to 2147483647", .min = 0, .max = INT32_MAX,
     .flags = KEY_GOT},
};
static const struct compose_keys healthcheck_table =
    COMPOSE_KEYS(healthcheck_keys, .finish = healthcheck_finish);

static const struct compose_key logging_keys[] = {
    {KEY("driver", KEY_STR, KEY_AT(compose_logging, driver))},
    {KEY("options", KEY_OPTS, KEY_AT(compose_logging, options)), .flags = KEY_NULL},
};
static const struct compose_keys logging_table = COMPOSE_KEYS(logging_keys);

static const struct compose_key ulimit_keys[] = {
    {KEY("soft", KEY_INT, KEY_AT(compose_ulimit, soft)),
     .required = "a ulimit needs both soft and hard"},
    {KEY("hard", KEY_INT, KEY_AT(compose_ulimit, hard)),
     .required = "a ulimit needs both soft and hard"},
};
static const struct compose_keys ulimit_table = COMPOSE_KEYS(ulimit_keys);

/* {nofile: {soft: 1024, hard: 2048}, nproc: 512} */
static int read_ulimits(struct compose_loader *l, const struct compose_ynode *n, void *field,
                        const struct compose_key *k)
{
    struct compose_service *s = field;
    if (n->kind != COMPOSE_YMAP)
        return compose_value_expected(l, n, NULL, "a mapping");
    size_t cap = 0;
    for (size_t i = 0; i < n->n; i++) {
        const char *name = n->keys[i]->str;
        const struct compose_ynode *v = n->vals[i];
        size_t old = compose_load_push(l, name);
        for (const char *p = name; *p; p++)
            if (*p < 'a' || *p > 'z')
                return compose_load_fail(l, n->keys[i], "invalid ulimit name (lower-case letters)");
        struct compose_ulimit *u = COMPOSE_LOAD_APPEND(l, s->ulimits, s->n_ulimits, cap);
        if (!u)
            return -ENOMEM;
        u->name = (char *)name;
        int r;
        if (v->kind == COMPOSE_YMAP) {
            r = compose_keys_read(l, v, &ulimit_table, u);
        } else {
            r = compose_value_int(l, v, &u->soft);
            u->hard = u->soft;
        }
        /* -1 is "unlimited" (the kernel's RLIM_INFINITY once the runtime has it as unsigned) */
        if (r == 0 && (u->soft < -1 || u->hard < -1))
            r = compose_load_fail(l, v, "expected limits of -1 (unlimited) or more");
        if (r == 0 && u->hard != -1 && (u->soft == -1 || u->soft > u->hard))
            r = compose_load_fail(l, v, "the soft limit %lld is above the hard limit %lld",
                                  (long long)u->soft, (long long)u->hard);
        if (r < 0)
            return r;
        compose_load_pop(l, old);
    }
    return 0;
}

/* ---- small values of a service ---------------------------------------------------------- */

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ["host:ip", ...] or {host: ip} (→ sorted "host:ip", as docker turns a mapping into a list). */
static int read_extra_hosts(struct compose_loader *l, const struct compose_ynode *n, void *field,
                            const struct compose_key *k)
{
    struct compose_strv *hosts = field;
    if (n->kind != COMPOSE_YMAP)
        return compose_value_list(l, n, true, hosts);
    struct compose_map m;
    int r = compose_value_list_or_dict(l, n, COMPOSE_VALUE_NIL_KEEP, &m);
    size_t cap = 0;
    for (size_t j = 0; r == 0 && j < m.n; j++) {
        if (!m.v[j].value)
            continue;
        char *e = compose_arena_printf(l->a, "%s:%s", m.v[j].key, m.v[j].value);
        r = e ? compose_load_strv_add(l, hosts, &cap, e) : -ENOMEM;
    }
    if (r == 0 && hosts->n)
        qsort(hosts->v, hosts->n, sizeof(char *), cmp_strp);
    return r;
}

/* restart: no, always, unless-stopped, on-failure[:N] (used when deploy.restart_policy is not
 * set). */
static int read_restart(struct compose_loader *l, const struct compose_ynode *n, void *field,
                        const struct compose_key *k)
{
    char **ret = field;
    int r = compose_value_str(l, n, ret);
    if (r < 0)
        return r;
    const char *s = *ret;
    const char *colon = strchr(s, ':');
    size_t nl = colon ? (size_t)(colon - s) : strlen(s);
    if (colon) {
        int64_t count;
        if (strchr(colon + 1, ':'))
            return compose_load_fail(l, n, "invalid restart policy format \"%s\"", s);
        if (compose_util_decimal(colon + 1, &count) < 0)
            return compose_load_fail(l, n, "maximum retry count must be an integer, got \"%s\"",
                                     colon + 1);
    }
    static const char *const names[] = {"", "no", "always", "unless-stopped", "on-failure"};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        if (strlen(names[i]) == nl && strncmp(s, names[i], nl) == 0)
            return 0;
    return compose_load_fail(
        l, n, "unknown restart policy \"%s\" (no, always, unless-stopped, on-failure[:N])", s);
}

/* ---- a service -------------------------------------------------------------------------- */

#define SVC(field) KEY_AT(compose_service, field)

/* Keys docker stack deploy refuses. */
#define RESOURCES_HINT "set resource limits with deploy.resources"
/* Keys docker stack deploy ignores with a warning (docker's unsupported and deprecated
 * properties, and a few it ignores without a word). */
#define NOT_IN_SWARM "not supported by Swarm services"

static const struct compose_key service_keys[] = {
    {KEY("image", KEY_STR, SVC(image))},
    {KEY("command", KEY_WORDS, SVC(command))},
    {KEY("entrypoint", KEY_WORDS, SVC(entrypoint))},
    {KEY("environment", KEY_ENV, SVC(environment))},
    {KEY("env_file", KEY_STR_OR_LIST, SVC(env_file)), .pos = SVC(env_file_pos),
     .flags = KEY_VALUE_POS},
    {KEY("labels", KEY_LABELS, SVC(labels))},
    {KEY("hostname", KEY_STR, SVC(hostname))},
    {KEY("extra_hosts", KEY_READ, SVC(extra_hosts)), .read = read_extra_hosts},
    {KEY("dns", KEY_STR_OR_LIST, SVC(dns)), .present = SVC(has_dns)},
    {KEY("dns_search", KEY_STR_OR_LIST, SVC(dns_search)), .present = SVC(has_dns_search)},
    {KEY("healthcheck", KEY_MAP, SVC(healthcheck)), .present = SVC(healthcheck.set),
     .sub = &healthcheck_table},
    {KEY("working_dir", KEY_STR, SVC(working_dir))},
    {KEY("user", KEY_STR, SVC(user)), .pos = SVC(user_pos)},
    {KEY("volumes", KEY_READ, KEY_SELF), .read = compose_mounts_read},
    {KEY("stop_grace_period", KEY_DUR, SVC(stop_grace_period))},
    {KEY("stop_signal", KEY_STR, SVC(stop_signal))},
    {KEY("tty", KEY_BOOL, SVC(tty))},
    {KEY("stdin_open", KEY_BOOL, SVC(stdin_open))},
    {KEY("read_only", KEY_BOOL, SVC(read_only))},
    {KEY("init", KEY_BOOL, SVC(init)), .present = SVC(has_init)},
    {KEY("sysctls", KEY_LABELS, SVC(sysctls)), .pos = SVC(sysctls_pos)},
    {KEY("cap_add", KEY_LIST, SVC(cap_add)), .flags = KEY_UNIQUE, .pos = SVC(cap_add_pos)},
    {KEY("cap_drop", KEY_LIST, SVC(cap_drop)), .flags = KEY_UNIQUE, .pos = SVC(cap_drop_pos)},
    {KEY("ulimits", KEY_READ, KEY_SELF), .read = read_ulimits, .pos = SVC(ulimits_pos)},
    {KEY("logging", KEY_MAP, SVC(logging)), .present = SVC(logging.set), .sub = &logging_table,
     .pos = SVC(logging_pos)},
    {KEY("secrets", KEY_READ, KEY_SELF), .read = read_secrets},
    {KEY("configs", KEY_READ, KEY_SELF), .read = read_configs},
    {KEY("ports", KEY_READ, KEY_SELF), .read = compose_ports_read},
    {KEY("networks", KEY_READ, KEY_SELF), .read = read_networks},
    {KEY("isolation", KEY_STR, SVC(isolation))},
    {KEY("restart", KEY_READ, SVC(restart)), .read = read_restart},
    {KEY("deploy", KEY_MAP, SVC(deploy)), .sub = &compose_deploy_keys, .pos = SVC(deploy_pos)},

    /* refused by docker stack deploy */
    {KEY("extends", KEY_ANY, 0), .refused = "extends is not supported"},
    {KEY("volume_driver", KEY_ANY, 0),
     .refused = "define the volume in the top-level volumes with its driver"},
    {KEY("volumes_from", KEY_ANY, 0), .refused = "share a volume through the top-level volumes"},
    {KEY("cpu_quota", KEY_ANY, 0), .refused = RESOURCES_HINT},
    {KEY("cpu_shares", KEY_ANY, 0), .refused = RESOURCES_HINT},
    {KEY("cpuset", KEY_ANY, 0), .refused = RESOURCES_HINT},
    {KEY("mem_limit", KEY_ANY, 0), .refused = RESOURCES_HINT},
    {KEY("memswap_limit", KEY_ANY, 0), .refused = RESOURCES_HINT},

    /* ignored by Swarm: read all the same, the policy looks at some of them */
    {KEY("build", KEY_ANY, 0), .ignored = "Swarm runs images: build and push them first"},
    {KEY("cgroup_parent", KEY_STR, SVC(cgroup_parent)), .pos = SVC(cgroup_parent_pos),
     .ignored = NOT_IN_SWARM},
    {KEY("cgroupns_mode", KEY_STR, SVC(cgroupns_mode)), .pos = SVC(cgroupns_mode_pos),
     .ignored = NOT_IN_SWARM},
    {KEY("container_name", KEY_ANY, 0), .ignored = "Swarm names the containers of a service"},
    {KEY("credential_spec", KEY_ANY, 0), .ignored = "Windows only"},
    {KEY("depends_on", KEY_ANY, 0), .ignored = "Swarm starts services in no particular order"},
    {KEY("devices", KEY_LIST, SVC(devices)), .flags = KEY_UNIQUE, .pos = SVC(devices_pos),
     .ignored = NOT_IN_SWARM},
    {KEY("domainname", KEY_ANY, 0), .ignored = NOT_IN_SWARM},
    {KEY("expose", KEY_ANY, 0), .ignored = "services on one network reach each other on any port"},
    {KEY("external_links", KEY_ANY, 0), .ignored = NOT_IN_SWARM},
    {KEY("ipc", KEY_STR, SVC(ipc)), .pos = SVC(ipc_pos), .ignored = NOT_IN_SWARM},
    {KEY("links", KEY_ANY, 0), .ignored = "services on one network reach each other by name"},
    {KEY("mac_address", KEY_ANY, 0), .ignored = NOT_IN_SWARM},
    {KEY("network_mode", KEY_STR, SVC(network_mode)), .pos = SVC(network_mode_pos),
     .ignored = "not supported by Swarm services; use networks"},
    {KEY("pid", KEY_STR, SVC(pid)), .flags = KEY_NULL, .pos = SVC(pid_pos),
     .ignored = NOT_IN_SWARM},
    {KEY("privileged", KEY_BOOL, SVC(privileged)), .pos = SVC(privileged_pos),
     .ignored = NOT_IN_SWARM},
    {KEY("security_opt", KEY_LIST, SVC(security_opt)), .pos = SVC(security_opt_pos),
     .ignored = NOT_IN_SWARM},
    {KEY("shm_size", KEY_ANY, 0), .ignored = NOT_IN_SWARM},
    {KEY("tmpfs", KEY_ANY, 0),
     .ignored = "not supported by docker stack deploy; use a volume of type tmpfs"},
    {KEY("userns_mode", KEY_STR, SVC(userns_mode)), .pos = SVC(userns_mode_pos),
     .ignored = NOT_IN_SWARM},
};

static int service_finish(struct compose_loader *l, const struct compose_ynode *map, void *obj)
{
    const struct compose_service *s = obj;
    const struct compose_ynode *restart = compose_yaml_key(map, "restart");
    if (restart && s->deploy.restart_policy.set) {
        size_t old = compose_load_push(l, "restart");
        int r = compose_load_warn(l, restart, "ignored: deploy.restart_policy is set");
        compose_load_pop(l, old);
        if (r < 0)
            return r;
    }
    if (!s->image || !*s->image)
        return compose_load_fail_at(
            l, s->pos, NULL,
            "a service needs an image (Swarm runs images; build is not supported)");
    return 0;
}

static const struct compose_keys service_table =
    COMPOSE_KEYS(service_keys, .extensions = true, .finish = service_finish);

int compose_service_read(struct compose_loader *l, const struct compose_ynode *key,
                         const struct compose_ynode *n, struct compose_service *s)
{
    s->name = (char *)key->str;
    s->pos = compose_load_pos(key);
    if (!compose_value_valid_name(s->name))
        return compose_load_fail(l, key, "invalid service name (letters, digits, '.', '_', '-')");
    return compose_keys_read(l, n, &service_table, s);
}

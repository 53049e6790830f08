#include "compose/policy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/util.h"

/* ---- the rules ---------------------------------------------------------------------------- */

static const struct rule_def {
    const char *name;
    const char *knob; /* what allows it, beside policy.exceptions */
} rule_defs[_POLICY_RULE_MAX] = {
    [POLICY_RULE_PRIVILEGED] = {"privileged", "policy.allow_privileged"},
    [POLICY_RULE_HOST_NAMESPACES] = {"host-namespaces", "policy.allow_host_namespaces"},
    [POLICY_RULE_CAPABILITIES] = {"capabilities", "policy.cap_add"},
    [POLICY_RULE_DEVICES] = {"devices", "policy.allow_devices"},
    [POLICY_RULE_BIND_MOUNTS] = {"bind-mounts", "policy.bind_allow"},
    [POLICY_RULE_BIND_PROPAGATION] = {"bind-propagation", "policy.exceptions"},
    [POLICY_RULE_ENGINE_SOCKET] = {"engine-socket", "policy.exceptions"},
    [POLICY_RULE_VOLUME_DRIVERS] = {"volume-drivers", "policy.volume_drivers"},
    [POLICY_RULE_NETWORK_DRIVERS] = {"network-drivers", "policy.network_drivers"},
    [POLICY_RULE_LOG_DRIVERS] = {"log-drivers", "policy.log_drivers"},
    [POLICY_RULE_SECRET_DRIVERS] = {"secret-drivers", "policy.secret_drivers"},
    [POLICY_RULE_SYSCTLS] = {"sysctls", "policy.sysctls"},
    [POLICY_RULE_ULIMITS] = {"ulimits", "policy.exceptions"},
    [POLICY_RULE_SECURITY_OPT] = {"security-opt", "policy.exceptions"},
    [POLICY_RULE_CGROUP_PARENT] = {"cgroup-parent", "policy.exceptions"},
    [POLICY_RULE_NON_ROOT] = {"non-root", "policy.exceptions"},
    [POLICY_RULE_DROP_ALL_CAPABILITIES] = {"drop-all-capabilities", "policy.exceptions"},
    [POLICY_RULE_NO_NEW_PRIVILEGES] = {"no-new-privileges", "policy.exceptions"},
    [POLICY_RULE_MEMORY_LIMIT] = {"memory-limit", "policy.exceptions"},
    [POLICY_RULE_PIDS_LIMIT] = {"pids-limit", "policy.exceptions"},
};

const char *policy_rule_to_string(enum policy_rule rule)
{
    return (unsigned)rule < _POLICY_RULE_MAX ? rule_defs[rule].name : "?";
}

int policy_rule_from_string(const char *name)
{
    for (size_t i = 0; name && i < _POLICY_RULE_MAX; i++)
        if (streq(rule_defs[i].name, name))
            return (int)i;
    return -ENOENT;
}

const char *policy_level_to_string(enum policy_level level)
{
    return level == POLICY_RESTRICTED ? "restricted" : level == POLICY_BASELINE ? "baseline" : "?";
}

int policy_level_from_string(const char *name)
{
    if (name && streq(name, "baseline"))
        return POLICY_BASELINE;
    if (name && streq(name, "restricted"))
        return POLICY_RESTRICTED;
    return -ENOENT;
}

static bool excepted(const struct policy_rules *r, enum policy_rule rule)
{
    if (r->exceptions & POLICY_EXCEPT(rule))
        return true;
    switch (rule) {
    case POLICY_RULE_PRIVILEGED:
        return r->allow_privileged;
    case POLICY_RULE_HOST_NAMESPACES:
        return r->allow_host_namespaces;
    case POLICY_RULE_CAPABILITIES:
        return r->allow_cap_add;
    case POLICY_RULE_DEVICES:
        return r->allow_devices;
    case POLICY_RULE_BIND_PROPAGATION:
        /* Kubernetes lets only privileged containers propagate mounts both ways. */
        return r->allow_privileged || (r->exceptions & POLICY_EXCEPT(POLICY_RULE_PRIVILEGED));
    default:
        return false;
    }
}

/* ---- what the baseline allows --------------------------------------------------------------- */

/* Docker's default capabilities as Kubernetes' baseline profile lists them (NET_RAW, which
 * Docker also grants, is left out there and here). */
static const char *const baseline_caps[] = {
    "AUDIT_WRITE",      "CHOWN",   "DAC_OVERRIDE", "FOWNER",  "FSETID", "KILL",       "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID",       "SETPCAP", "SETUID", "SYS_CHROOT",
};

/* The baseline profile's safe sysctls: namespaced, and isolated from the host and the other
 * containers. */
static const char *const safe_sysctls[] = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
};

/* Resource caps; rtprio and nice are left out: they let a container raise its scheduling
 * priority over the host's own processes without CAP_SYS_NICE. */
static const char *const safe_ulimits[] = {
    "as",       "core",   "cpu",   "data", "fsize",  "locks",      "memlock",
    "msgqueue", "nofile", "nproc", "rss",  "rttime", "sigpending", "stack",
};

/* Log drivers that write on this node only; the others (syslog, gelf, fluentd, awslogs, splunk,
 * gcplogs, ...) run inside dockerd, with the host's network and credentials. */
static const char *const local_log_drivers[] = {"json-file", "local", "journald", "none"};
/* Options of those drivers: what may go to the Engine's default driver when none is named. */
static const char *const local_log_options[] = {
    "max-size", "max-file", "compress",     "mode", "max-buffer-size",
    "tag",      "labels",   "labels-regex", "env",  "env-regex",
};

/* Sockets whose holder controls the node: a bind of them, or of a directory above them, is a
 * bind of root. */
static const char *const engine_sockets[] = {
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
};

static bool in_array(const char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (streq(v[i], s))
            return true;
    return false;
}

static bool in_list(const struct policy_list *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] && streq(l->v[i], s))
            return true;
    return false;
}

/* ---- refusing ----------------------------------------------------------------------------- */

struct check {
    const struct compose_project *p;
    const struct policy_rules *rules;
    struct compose_error *err;
    char path[400];
};

static int refuse(struct check *c, enum policy_rule rule, struct compose_pos pos, const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));

static int refuse(struct check *c, enum policy_rule rule, struct compose_pos pos, const char *fmt,
                  ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    compose_error_set(c->err, c->p->filename, pos.line, pos.col, c->path,
                      "refused by policy: %s (rule %s: %s)", msg, rule_defs[rule].name,
                      rule_defs[rule].knob);
    return -EPERM;
}

__attribute__((format(printf, 2, 3))) static const char *at(struct check *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->path, sizeof(c->path), fmt, ap);
    va_end(ap);
    return c->path;
}

/* ---- host paths --------------------------------------------------------------------------- */

enum path_verdict { PATH_OK, PATH_RELATIVE, PATH_DOTDOT, PATH_TOO_LONG };

/* Lexical normalisation of an absolute path into out: no ".", "//" or trailing "/". A ".."
 * component is not resolved: the path is refused. */
static enum path_verdict normalize(const char *path, char *out, size_t len)
{
    if (path[0] != '/')
        return PATH_RELATIVE;
    size_t k = 0;
    out[k++] = '/';
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t cl = e ? (size_t)(e - p) : strlen(p);
        if (cl == 2 && p[0] == '.' && p[1] == '.')
            return PATH_DOTDOT;
        if (!(cl == 1 && p[0] == '.')) {
            if (k > 1) {
                if (k + 1 >= len)
                    return PATH_TOO_LONG;
                out[k++] = '/';
            }
            if (k + cl >= len)
                return PATH_TOO_LONG;
            memcpy(out + k, p, cl);
            k += cl;
        }
        p += cl;
    }
    out[k] = '\0';
    return PATH_OK;
}

/* Whether the normalised path np is prefix (normalised) or below it. */
static bool under(const char *np, const char *prefix)
{
    char pp[4096];
    if (!prefix || normalize(prefix, pp, sizeof(pp)) != PATH_OK)
        return false;
    if (streq(pp, "/"))
        return true;
    size_t pl = strlen(pp);
    return strncmp(np, pp, pl) == 0 && (np[pl] == '\0' || np[pl] == '/');
}

bool policy_path_allowed(const char *path, char *const *prefixes, size_t n_prefixes)
{
    char np[4096];
    if (!path || normalize(path, np, sizeof(np)) != PATH_OK)
        return false;
    for (size_t i = 0; i < n_prefixes; i++)
        if (under(np, prefixes[i]))
            return true;
    return false;
}

/* A host path a container is to see (a bind source, a local volume's bind device): inside
 * bind_allow, without "..", and not the Engine's socket or a directory above it. what names it
 * in the message ("bind mount of", "volume data binds"). */
static int check_host_path(struct check *c, struct compose_pos pos, const char *what,
                           const char *path)
{
    const struct policy_rules *r = c->rules;
    char np[4096];
    enum path_verdict v = normalize(path, np, sizeof(np));
    if (!excepted(r, POLICY_RULE_BIND_MOUNTS)) {
        if (v == PATH_DOTDOT)
            return refuse(c, POLICY_RULE_BIND_MOUNTS, pos,
                          "%s %s: a host path with \"..\" is refused (the kernel resolves it "
                          "after symbolic links; write the path without it)",
                          what, path);
        if (v != PATH_OK)
            return refuse(c, POLICY_RULE_BIND_MOUNTS, pos, "%s %s: %s", what, path,
                          v == PATH_RELATIVE ? "not an absolute host path"
                                             : "the host path is longer than 4095 bytes");
        bool ok = false;
        for (size_t i = 0; !ok && i < r->n_bind_allow; i++)
            ok = under(np, r->bind_allow[i]);
        if (!ok)
            return refuse(c, POLICY_RULE_BIND_MOUNTS, pos,
                          "%s %s is outside the allowed host paths", what, path);
    }
    if (v != PATH_OK || excepted(r, POLICY_RULE_ENGINE_SOCKET))
        return 0;
    const char *socks[ARRAY_SIZE(engine_sockets) + 1];
    size_t n = 0;
    for (size_t i = 0; i < ARRAY_SIZE(engine_sockets); i++)
        socks[n++] = engine_sockets[i];
    if (r->engine_socket && r->engine_socket[0] == '/')
        socks[n++] = r->engine_socket;
    for (size_t i = 0; i < n; i++) {
        char ns[4096];
        if (normalize(socks[i], ns, sizeof(ns)) == PATH_OK && under(ns, np))
            return refuse(c, POLICY_RULE_ENGINE_SOCKET, pos,
                          "%s %s hands the container %s: whoever holds it is root on the host",
                          what, path, socks[i]);
    }
    return 0;
}

/* ---- names as the Engine reads them ---------------------------------------------------------- */

/* A capability as the Engine reads it: trimmed, upper case, without "CAP_". */
static void cap_name(const char *in, char *out, size_t len)
{
    while (*in == ' ' || *in == '\t')
        in++;
    if (strncasecmp(in, "CAP_", 4) == 0)
        in += 4;
    size_t k = 0;
    for (; *in && k + 1 < len; in++)
        out[k++] = (char)((*in >= 'a' && *in <= 'z') ? *in - 32 : *in);
    while (k && (out[k - 1] == ' ' || out[k - 1] == '\t'))
        k--;
    out[k] = '\0';
}

static bool cap_listed(const struct policy_list *l, const char *cap)
{
    char c[64];
    for (size_t i = 0; i < l->n; i++) {
        if (!l->v[i])
            continue;
        cap_name(l->v[i], c, sizeof(c));
        if (streq(c, cap))
            return true;
    }
    return false;
}

/* A sysctl as the runtime reads it: "net/ipv4/x" is "net.ipv4.x". */
static void sysctl_name(const char *in, char *out, size_t len)
{
    size_t k = 0;
    for (; *in && k + 1 < len; in++)
        out[k++] = *in == '/' ? '.' : *in;
    out[k] = '\0';
}

static bool sysctl_allowed(const struct policy_list *l, const char *name)
{
    if (in_array(safe_sysctls, ARRAY_SIZE(safe_sysctls), name))
        return true;
    for (size_t i = 0; i < l->n; i++) {
        const char *e = l->v[i];
        size_t el = e ? strlen(e) : 0;
        if (!el)
            continue;
        if (e[el - 1] == '*' ? strncmp(name, e, el - 1) == 0 : streq(name, e))
            return true;
    }
    return false;
}

static bool is_host(const char *s)
{
    return s && streq(s, "host");
}

/* "no-new-privileges", with ":true", "=true" (or false, which asks for nothing). */
static bool no_new_privileges(const char *opt, bool *ret_on)
{
    static const char word[] = "no-new-privileges";
    size_t wl = sizeof(word) - 1;
    if (strncmp(opt, word, wl) != 0)
        return false;
    const char *v = opt + wl;
    if (!*v) {
        *ret_on = true;
        return true;
    }
    if (*v != ':' && *v != '=')
        return false;
    if (streq(v + 1, "true"))
        *ret_on = true;
    else if (streq(v + 1, "false"))
        *ret_on = false;
    else
        return false;
    return true;
}

/* The options' keys, for a message: "device, o, type". */
static void option_keys(const struct compose_map *m, char *out, size_t len)
{
    size_t k = 0;
    out[0] = '\0';
    for (size_t i = 0; i < m->n && k + 1 < len; i++) {
        int w = snprintf(out + k, len - k, "%s%s", i ? ", " : "", m->v[i].key);
        if (w < 0 || (size_t)w >= len - k)
            break;
        k += (size_t)w;
    }
}

/* ---- top-level objects ---------------------------------------------------------------------- */

/* A local volume with o=bind (or rbind) binds its device: a host path. NULL when it does not. */
static const char *volume_bind_device(const struct compose_volume *v)
{
    const char *o = compose_map_get(&v->driver_opts, "o");
    if (!o)
        return NULL;
    for (const char *s = o; *s;) {
        size_t l = strcspn(s, ",");
        if ((l == 4 && strncmp(s, "bind", 4) == 0) || (l == 5 && strncmp(s, "rbind", 5) == 0)) {
            const char *dev = compose_map_get(&v->driver_opts, "device");
            return dev ? dev : "";
        }
        s += l;
        if (*s == ',')
            s++;
    }
    return NULL;
}

static int check_volume(struct check *c, const struct compose_volume *v)
{
    const struct policy_rules *r = c->rules;
    if (v->external)
        return 0; /* it exists already: the stack does not create it */
    const char *driver = v->driver && *v->driver ? v->driver : "local";
    bool local = streq(driver, "local");
    at(c, "volumes.%s", v->key);
    if (!excepted(r, POLICY_RULE_VOLUME_DRIVERS) && !in_list(&r->volume_drivers, driver)) {
        if (!local)
            return refuse(c, POLICY_RULE_VOLUME_DRIVERS, v->pos,
                          "the volume driver \"%s\" is not allowed (the local driver without "
                          "options is)",
                          driver);
        if (v->driver_opts.n) {
            char keys[200];
            option_keys(&v->driver_opts, keys, sizeof(keys));
            return refuse(c, POLICY_RULE_VOLUME_DRIVERS, v->pos,
                          "the local driver with options (%s) mounts whatever they name, a host "
                          "disk or directory too; only the local driver without options is "
                          "allowed",
                          keys);
        }
    }
    /* The local driver's options allowed: a bind still answers to the bind rules. */
    const char *dev = local ? volume_bind_device(v) : NULL;
    if (dev) {
        char what[300];
        snprintf(what, sizeof(what), "volume %s: bind of", v->key);
        return check_host_path(c, v->pos, what, dev);
    }
    return 0;
}

static int check_network(struct check *c, const struct compose_network *n)
{
    const struct policy_rules *r = c->rules;
    if (n->external || !n->driver || !*n->driver || streq(n->driver, "overlay"))
        return 0;
    if (excepted(r, POLICY_RULE_NETWORK_DRIVERS) || in_list(&r->network_drivers, n->driver))
        return 0;
    at(c, "networks.%s.driver", n->key);
    return refuse(c, POLICY_RULE_NETWORK_DRIVERS, n->pos,
                  "the network driver \"%s\" is not allowed (overlay is; macvlan and ipvlan put "
                  "containers on the host's own interfaces)",
                  n->driver);
}

static int check_secret(struct check *c, const struct compose_fileobj *s)
{
    const struct policy_rules *r = c->rules;
    if (s->external || !s->driver || !*s->driver)
        return 0;
    if (excepted(r, POLICY_RULE_SECRET_DRIVERS) || in_list(&r->secret_drivers, s->driver))
        return 0;
    at(c, "secrets.%s.driver", s->key);
    return refuse(c, POLICY_RULE_SECRET_DRIVERS, s->pos,
                  "the secret driver \"%s\" is not allowed (it hands out what it holds, other "
                  "stacks' secrets too)",
                  s->driver);
}

/* ---- a service ------------------------------------------------------------------------------ */

static int check_namespaces(struct check *c, const struct compose_service *s)
{
    if (excepted(c->rules, POLICY_RULE_HOST_NAMESPACES))
        return 0;
    const struct {
        const char *key, *what, *value;
        struct compose_pos pos;
    } ns[] = {
        {"network_mode", "network", s->network_mode, s->network_mode_pos},
        {"pid", "PID", s->pid, s->pid_pos},
        {"ipc", "IPC", s->ipc, s->ipc_pos},
        {"userns_mode", "user", s->userns_mode, s->userns_mode_pos},
        {"cgroupns_mode", "cgroup", s->cgroupns_mode, s->cgroupns_mode_pos},
    };
    for (size_t i = 0; i < ARRAY_SIZE(ns); i++)
        if (is_host(ns[i].value)) {
            at(c, "services.%s.%s", s->name, ns[i].key);
            return refuse(c, POLICY_RULE_HOST_NAMESPACES, ns[i].pos,
                          "the host %s namespace is not allowed", ns[i].what);
        }
    for (size_t j = 0; j < s->n_networks; j++) {
        const struct compose_network *n = compose_project_network(c->p, s->networks[j].name);
        if (n && n->external && is_host(n->name)) {
            at(c, "services.%s.networks", s->name);
            return refuse(c, POLICY_RULE_HOST_NAMESPACES, s->networks[j].pos,
                          "attaching to the host network (\"%s\") is not allowed",
                          s->networks[j].name);
        }
    }
    return 0;
}

static int check_caps(struct check *c, const struct compose_service *s)
{
    const struct policy_rules *r = c->rules;
    for (size_t i = 0; i < s->cap_add.n; i++) {
        char cap[64];
        cap_name(s->cap_add.v[i], cap, sizeof(cap));
        if (streq(cap, "RESET"))
            continue;
        at(c, "services.%s.cap_add", s->name);
        if (!excepted(r, POLICY_RULE_CAPABILITIES) && !cap_listed(&r->cap_add, cap) &&
            !in_array(baseline_caps, ARRAY_SIZE(baseline_caps), cap))
            return refuse(c, POLICY_RULE_CAPABILITIES, s->cap_add_pos,
                          "adding the capability %s is not allowed (only Docker's default set "
                          "may be added: CHOWN, KILL, NET_BIND_SERVICE, SETUID, ...)",
                          cap);
        if (r->level == POLICY_RESTRICTED && !excepted(r, POLICY_RULE_DROP_ALL_CAPABILITIES) &&
            !streq(cap, "NET_BIND_SERVICE") && !cap_listed(&r->cap_add, cap))
            return refuse(c, POLICY_RULE_DROP_ALL_CAPABILITIES, s->cap_add_pos,
                          "level restricted: only NET_BIND_SERVICE may be added, not %s", cap);
    }
    if (r->level != POLICY_RESTRICTED || excepted(r, POLICY_RULE_DROP_ALL_CAPABILITIES))
        return 0;
    for (size_t i = 0; i < s->cap_drop.n; i++) {
        char cap[64];
        cap_name(s->cap_drop.v[i], cap, sizeof(cap));
        if (streq(cap, "ALL"))
            return 0;
    }
    at(c, "services.%s.cap_drop", s->name);
    return refuse(c, POLICY_RULE_DROP_ALL_CAPABILITIES, s->cap_drop.n ? s->cap_drop_pos : s->pos,
                  "level restricted: a service drops every capability (cap_drop: [ALL])");
}

static int check_security_opt(struct check *c, const struct compose_service *s, bool *ret_nnp)
{
    *ret_nnp = false;
    for (size_t i = 0; i < s->security_opt.n; i++) {
        const char *o = s->security_opt.v[i];
        bool on = false;
        if (no_new_privileges(o, &on)) {
            *ret_nnp = *ret_nnp || on;
            continue;
        }
        if (excepted(c->rules, POLICY_RULE_SECURITY_OPT))
            continue;
        at(c, "services.%s.security_opt", s->name);
        return refuse(c, POLICY_RULE_SECURITY_OPT, s->security_opt_pos,
                      "\"%s\" is not allowed (only no-new-privileges is; seccomp, AppArmor and "
                      "SELinux stay as the Engine sets them)",
                      o);
    }
    return 0;
}

static int check_sysctls(struct check *c, const struct compose_service *s)
{
    if (excepted(c->rules, POLICY_RULE_SYSCTLS))
        return 0;
    for (size_t i = 0; i < s->sysctls.n; i++) {
        char name[256];
        sysctl_name(s->sysctls.v[i].key, name, sizeof(name));
        if (sysctl_allowed(&c->rules->sysctls, name))
            continue;
        at(c, "services.%s.sysctls", s->name);
        return refuse(c, POLICY_RULE_SYSCTLS, s->sysctls_pos,
                      "the sysctl %s is not in the safe set (kernel.shm_rmid_forced, "
                      "net.ipv4.ip_local_port_range, net.ipv4.ip_unprivileged_port_start, "
                      "net.ipv4.tcp_syncookies, net.ipv4.ping_group_range, ...)",
                      name);
    }
    return 0;
}

static int check_ulimits(struct check *c, const struct compose_service *s)
{
    if (excepted(c->rules, POLICY_RULE_ULIMITS))
        return 0;
    for (size_t i = 0; i < s->n_ulimits; i++) {
        if (in_array(safe_ulimits, ARRAY_SIZE(safe_ulimits), s->ulimits[i].name))
            continue;
        at(c, "services.%s.ulimits.%s", s->name, s->ulimits[i].name);
        return refuse(c, POLICY_RULE_ULIMITS, s->ulimits_pos, "the ulimit %s is not allowed (%s)",
                      s->ulimits[i].name,
                      streq(s->ulimits[i].name, "rtprio") || streq(s->ulimits[i].name, "nice")
                          ? "it raises the scheduling priority over the host's processes"
                          : "not a resource cap the policy knows");
    }
    return 0;
}

static int check_mounts(struct check *c, const struct compose_service *s)
{
    const struct policy_rules *r = c->rules;
    for (size_t j = 0; j < s->n_mounts; j++) {
        const struct compose_mount *m = &s->mounts[j];
        if (!streq(m->type, "bind") && !streq(m->type, "npipe"))
            continue; /* named volumes were checked at the top level; tmpfs holds no host data */
        at(c, "services.%s.volumes[%zu]", s->name, j);
        int q = check_host_path(c, m->pos, "bind mount of", m->source ? m->source : "");
        if (q < 0)
            return q;
        const char *prop = m->bind_propagation;
        if (prop && (streq(prop, "shared") || streq(prop, "rshared")) &&
            !excepted(r, POLICY_RULE_BIND_PROPAGATION))
            return refuse(c, POLICY_RULE_BIND_PROPAGATION, m->pos,
                          "bind mount of %s: %s propagation would carry mounts made in the "
                          "container to the host",
                          m->source, prop);
    }
    return 0;
}

static int check_logging(struct check *c, const struct compose_service *s)
{
    const struct policy_rules *r = c->rules;
    const struct compose_logging *lg = &s->logging;
    if (!lg->set || excepted(r, POLICY_RULE_LOG_DRIVERS))
        return 0;
    const char *d = lg->driver && *lg->driver ? lg->driver : NULL;
    if (d) {
        if (in_array(local_log_drivers, ARRAY_SIZE(local_log_drivers), d) ||
            in_list(&r->log_drivers, d))
            return 0;
        at(c, "services.%s.logging.driver", s->name);
        return refuse(c, POLICY_RULE_LOG_DRIVERS, s->logging_pos,
                      "the log driver \"%s\" is not allowed (json-file, local, journald and none "
                      "are: the others run inside dockerd with the host's network and "
                      "credentials)",
                      d);
    }
    /* No driver: the options go to the Engine's default driver, whichever it is. */
    for (size_t i = 0; i < lg->options.n; i++) {
        const char *k = lg->options.v[i].key;
        if (in_array(local_log_options, ARRAY_SIZE(local_log_options), k))
            continue;
        at(c, "services.%s.logging.options.%s", s->name, k);
        return refuse(c, POLICY_RULE_LOG_DRIVERS, s->logging_pos,
                      "the option %s for the Engine's default log driver is not allowed (name the "
                      "driver; options of json-file, local and journald may go without one)",
                      k);
    }
    return 0;
}

/* user: "name", "uid", "name:group", "uid:gid"; root is "root" or a uid of 0. */
static bool runs_as_root(const char *user)
{
    if (!user || !*user)
        return true;
    size_t n = strcspn(user, ":");
    if (n == 4 && strncmp(user, "root", 4) == 0)
        return true;
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++)
        if (user[i] != '0')
            return false;
    return true; /* "0", "00", ... */
}

static int check_restricted(struct check *c, const struct compose_service *s, bool nnp)
{
    const struct policy_rules *r = c->rules;
    if (r->level != POLICY_RESTRICTED)
        return 0;
    if (!excepted(r, POLICY_RULE_NON_ROOT) && runs_as_root(s->user)) {
        at(c, "services.%s.user", s->name);
        return refuse(c, POLICY_RULE_NON_ROOT, s->user ? s->user_pos : s->pos,
                      s->user && *s->user
                          ? "level restricted: \"%s\" is root; run as a user other than uid 0"
                          : "level restricted: set user to a user other than root%s (the "
                            "image's own USER cannot be seen here)",
                      s->user ? s->user : "");
    }
    if (!excepted(r, POLICY_RULE_NO_NEW_PRIVILEGES) && !nnp) {
        at(c, "services.%s.security_opt", s->name);
        return refuse(c, POLICY_RULE_NO_NEW_PRIVILEGES,
                      s->security_opt.n ? s->security_opt_pos : s->pos,
                      "level restricted: say security_opt: [\"no-new-privileges:true\"]");
    }
    const struct compose_resource *lim = &s->deploy.limits;
    if (!excepted(r, POLICY_RULE_MEMORY_LIMIT) && lim->memory <= 0) {
        at(c, "services.%s.deploy.resources.limits.memory", s->name);
        return refuse(c, POLICY_RULE_MEMORY_LIMIT, s->deploy.limits.set ? s->deploy_pos : s->pos,
                      "level restricted: a service sets a memory limit");
    }
    if (!excepted(r, POLICY_RULE_PIDS_LIMIT) && lim->pids <= 0) {
        at(c, "services.%s.deploy.resources.limits.pids", s->name);
        return refuse(c, POLICY_RULE_PIDS_LIMIT, s->deploy.limits.set ? s->deploy_pos : s->pos,
                      "level restricted: a service sets a limit on its processes");
    }
    return 0;
}

static int check_service(struct check *c, const struct compose_service *s)
{
    const struct policy_rules *r = c->rules;
    if (s->privileged && !excepted(r, POLICY_RULE_PRIVILEGED)) {
        at(c, "services.%s.privileged", s->name);
        return refuse(c, POLICY_RULE_PRIVILEGED, s->privileged_pos,
                      "privileged containers are not allowed");
    }
    int q = check_namespaces(c, s);
    if (q < 0)
        return q;
    if (s->cgroup_parent && *s->cgroup_parent && !excepted(r, POLICY_RULE_CGROUP_PARENT)) {
        at(c, "services.%s.cgroup_parent", s->name);
        return refuse(c, POLICY_RULE_CGROUP_PARENT, s->cgroup_parent_pos,
                      "a cgroup parent (%s) would place the container outside Docker's cgroups "
                      "and their limits",
                      s->cgroup_parent);
    }
    bool nnp = false;
    if ((q = check_security_opt(c, s, &nnp)) < 0 || (q = check_caps(c, s)) < 0)
        return q;
    if (s->devices.n && !excepted(r, POLICY_RULE_DEVICES)) {
        at(c, "services.%s.devices", s->name);
        return refuse(c, POLICY_RULE_DEVICES, s->devices_pos, "devices (%s) are not allowed",
                      s->devices.v[0]);
    }
    if ((q = check_sysctls(c, s)) < 0 || (q = check_ulimits(c, s)) < 0 ||
        (q = check_mounts(c, s)) < 0 || (q = check_logging(c, s)) < 0)
        return q;
    return check_restricted(c, s, nnp);
}

int policy_check(const struct compose_project *p, const struct policy_rules *rules,
                 struct compose_error *err)
{
    static const struct policy_rules none;
    struct compose_error dummy;
    struct check c = {.p = p, .rules = rules ? rules : &none, .err = err ? err : &dummy};
    int r = 0;
    for (size_t i = 0; r == 0 && i < p->n_networks; i++)
        r = check_network(&c, &p->networks[i]);
    for (size_t i = 0; r == 0 && i < p->n_volumes; i++)
        r = check_volume(&c, &p->volumes[i]);
    for (size_t i = 0; r == 0 && i < p->n_secrets; i++)
        r = check_secret(&c, &p->secrets[i]);
    for (size_t i = 0; r == 0 && i < p->n_services; i++)
        r = check_service(&c, &p->services[i]);
    return r;
}

/* ---- the rules as a key ------------------------------------------------------------------- */

static int key_list(struct buf *b, const char *what, const struct policy_list *l)
{
    int r = buf_printf(b, "%s %zu\n", what, l->n);
    for (size_t i = 0; r >= 0 && i < l->n; i++)
        r = buf_printf(b, "%zu:%s\n", l->v[i] ? strlen(l->v[i]) : 0, l->v[i] ? l->v[i] : "");
    return r;
}

char *policy_rules_key(const struct policy_rules *r)
{
    struct buf b = BUF_INIT(4u << 20);
    uint32_t ex = 0;
    for (int i = 0; i < _POLICY_RULE_MAX; i++)
        if (excepted(r, (enum policy_rule)i))
            ex |= POLICY_EXCEPT(i);
    int q = buf_printf(&b, "level %d exceptions %" PRIu32 "\n", (int)r->level, ex);
    if (q >= 0)
        q = key_list(&b, "bind_allow", &(struct policy_list){r->bind_allow, r->n_bind_allow});
    if (q >= 0)
        q = key_list(&b, "cap_add", &r->cap_add);
    if (q >= 0)
        q = key_list(&b, "volume_drivers", &r->volume_drivers);
    if (q >= 0)
        q = key_list(&b, "network_drivers", &r->network_drivers);
    if (q >= 0)
        q = key_list(&b, "log_drivers", &r->log_drivers);
    if (q >= 0)
        q = key_list(&b, "secret_drivers", &r->secret_drivers);
    if (q >= 0)
        q = key_list(&b, "sysctls", &r->sysctls);
    if (q >= 0)
        q = buf_printf(&b, "engine_socket %s\n", r->engine_socket ? r->engine_socket : "");
    if (q < 0) {
        buf_release(&b);
        return NULL;
    }
    return buf_detach(&b, NULL);
}

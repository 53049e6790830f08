/* The policy a manifest passes before it becomes desired state (DESIGN.md §8, docs/SECURITY.md):
 * membership of the docker group is root-equivalent, so what would hand the host to a container
 * is refused unless the agent's config allows it. The rules mirror the `policy` section of
 * agent/config.h; docs/SECURITY.md lists them with what each guarantees and what it cannot.
 *
 * Every rule has a name, said in the message that refuses ("... (rule volume-drivers:
 * policy.volume_drivers)"), and can be waived by naming it in policy.exceptions. What a
 * manifest may carry is decided by allow-lists, never by spotting one bad word:
 *
 *   level baseline (the default; Kubernetes Pod Security "baseline"):
 *   privileged          privileged: true                                 allow_privileged
 *   host-namespaces     network_mode/pid/ipc/userns_mode/cgroupns_mode:
 *                       host, an external network named "host"           allow_host_namespaces
 *   capabilities        cap_add beyond Docker's default set as the
 *                       baseline profile lists it (AUDIT_WRITE, CHOWN,
 *                       DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD,
 *                       NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP,
 *                       SETUID, SYS_CHROOT)                              cap_add, allow_cap_add
 *   devices             devices (any)                                    allow_devices
 *   bind-mounts         a bind source (or a local volume's o=bind
 *                       device) outside bind_allow, or with ".."         bind_allow
 *   bind-propagation    shared or rshared bind propagation (mounts made
 *                       in the container would reach the host)           exceptions
 *   engine-socket       a bind of the Engine's or containerd's socket or
 *                       of a directory that holds it, even inside
 *                       bind_allow                                       exceptions
 *   volume-drivers      a volume other than the local driver without
 *                       options                                          volume_drivers
 *   network-drivers     a network driver other than overlay              network_drivers
 *   log-drivers         a log driver other than json-file, local,
 *                       journald, none (others run in dockerd with its
 *                       network and files: syslog-address, ...)          log_drivers
 *   secret-drivers      a secret with a driver (a plugin that hands out
 *                       what it holds)                                   secret_drivers
 *   sysctls             a sysctl outside the baseline's safe set         sysctls
 *   ulimits             ulimits other than the resource caps (rtprio and
 *                       nice raise the scheduling priority over the
 *                       host's)                                          exceptions
 *   security-opt        security_opt other than no-new-privileges
 *                       (seccomp/apparmor unconfined, label disable)     exceptions
 *   cgroup-parent       cgroup_parent (the container outside Docker's
 *                       cgroups and their limits)                        exceptions
 *
 *   level restricted adds (Kubernetes "restricted"):
 *   non-root                user: set, and not root / uid 0
 *   drop-all-capabilities   cap_drop: [ALL]; cap_add only NET_BIND_SERVICE (and policy.cap_add)
 *   no-new-privileges       security_opt: [no-new-privileges:true]
 *   memory-limit            deploy.resources.limits.memory
 *   pids-limit              deploy.resources.limits.pids
 *
 * Swarm ignores privileged, network_mode, pid, ipc, userns_mode, cgroupns_mode, cgroup_parent,
 * security_opt and devices (the converter drops them with a warning); they are refused anyway:
 * the manifest asked for them. Host paths are compared after removing "." and repeated or
 * trailing "/"; a path with ".." is refused (the kernel resolves ".." after symbolic links, so
 * a lexical answer could be wrong). Symbolic links on the host are not seen. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compose/compose.h"

enum policy_level {
    POLICY_BASELINE,
    POLICY_RESTRICTED,
};

enum policy_rule {
    POLICY_RULE_PRIVILEGED,
    POLICY_RULE_HOST_NAMESPACES,
    POLICY_RULE_CAPABILITIES,
    POLICY_RULE_DEVICES,
    POLICY_RULE_BIND_MOUNTS,
    POLICY_RULE_BIND_PROPAGATION,
    POLICY_RULE_ENGINE_SOCKET,
    POLICY_RULE_VOLUME_DRIVERS,
    POLICY_RULE_NETWORK_DRIVERS,
    POLICY_RULE_LOG_DRIVERS,
    POLICY_RULE_SECRET_DRIVERS,
    POLICY_RULE_SYSCTLS,
    POLICY_RULE_ULIMITS,
    POLICY_RULE_SECURITY_OPT,
    POLICY_RULE_CGROUP_PARENT,
    /* restricted */
    POLICY_RULE_NON_ROOT,
    POLICY_RULE_DROP_ALL_CAPABILITIES,
    POLICY_RULE_NO_NEW_PRIVILEGES,
    POLICY_RULE_MEMORY_LIMIT,
    POLICY_RULE_PIDS_LIMIT,
    _POLICY_RULE_MAX,
};

/* "privileged", "host-namespaces", ... ("?" for anything else). */
const char *policy_rule_to_string(enum policy_rule rule);
/* The rule of that name, or -ENOENT. */
int policy_rule_from_string(const char *name);
/* "baseline", "restricted"; and back (-ENOENT). */
const char *policy_level_to_string(enum policy_level level);
int policy_level_from_string(const char *name);
/* The bit of a rule in policy_rules.exceptions. */
#define POLICY_EXCEPT(rule) (UINT32_C(1) << (rule))
/* Every rule waived (tests: "no policy", but checked). */
#define POLICY_EXCEPT_ALL ((UINT32_C(1) << _POLICY_RULE_MAX) - 1)

/* A list of strings the rules borrow (from the config). */
struct policy_list {
    char *const *v;
    size_t n;
};

struct policy_rules {
    enum policy_level level;
    uint32_t exceptions; /* POLICY_EXCEPT(rule): the rule is not enforced */
    /* The same as the exception of privileged, host-namespaces, capabilities, devices. */
    bool allow_privileged;
    bool allow_host_namespaces;
    bool allow_cap_add;
    bool allow_devices;
    char *const *bind_allow; /* host path prefixes bind mounts may use */
    size_t n_bind_allow;
    struct policy_list cap_add;         /* capabilities allowed beyond the level's set */
    struct policy_list volume_drivers;  /* drivers whose volumes may carry options ("local") */
    struct policy_list network_drivers; /* besides overlay */
    struct policy_list log_drivers;     /* besides json-file, local, journald, none */
    struct policy_list secret_drivers;
    struct policy_list sysctls; /* besides the safe set; "net.core.*" is a prefix */
    const char *engine_socket;  /* the Engine's socket as the config names it; may be NULL */
};

/* 0 when the project passes; -EPERM with err naming the place, the key, what is refused, the
 * rule and what would allow it:
 *   m.yml:3:5: volumes.disk: refused by policy: the local driver with options (device, type)
 *   mounts what the options say, a host disk too (rule volume-drivers: policy.volume_drivers) */
int policy_check(const struct compose_project *p, const struct policy_rules *rules,
                 struct compose_error *err);

/* Whether path is prefix or below it, after normalising both; false for a path with "..", a
 * relative path, or one longer than 4095 bytes. */
bool policy_path_allowed(const char *path, char *const *prefixes, size_t n_prefixes);

/* The rules as one canonical text (malloc'ed; NULL on -ENOMEM): two rule sets give the same
 * text exactly when they decide alike. The reconciler compiles stored stacks again when it
 * changes. */
char *policy_rules_key(const struct policy_rules *rules);

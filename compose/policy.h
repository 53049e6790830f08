/* The policy a manifest passes before it becomes desired state (DESIGN.md §8): membership of
 * the docker group is root-equivalent, so what would hand the host to a container is refused
 * unless the agent's config allows it. The rules mirror the `policy` section of agent/config.h.
 *
 * Refused unless allowed:
 *   privileged: true                                     allow_privileged
 *   network_mode/pid/ipc: host, a service on the host
 *   network (an external network named "host")           allow_host_namespaces
 *   cap_add (any)                                        allow_cap_add
 *   devices (any)                                        allow_devices
 *   a bind mount, or a local volume bound to a host path
 *   (driver_opts o=bind, device=...), whose host path is
 *   not under one of bind_allow                          bind_allow prefixes
 *
 * Swarm ignores privileged, network_mode, pid, ipc and devices (spec_convert drops them with a
 * warning); they are refused anyway: the manifest asked for them. Paths are compared after
 * removing ".", ".." and repeated "/" (lexically: symbolic links on the host are not seen). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "compose/compose.h"

struct policy_rules {
    bool allow_privileged;
    bool allow_host_namespaces;
    bool allow_cap_add;
    bool allow_devices;
    char *const *bind_allow; /* host path prefixes bind mounts may use */
    size_t n_bind_allow;
};

/* 0 when the project passes; -EPERM with err naming the place, the key and the rule that would
 * allow it. */
int policy_check(const struct compose_project *p, const struct policy_rules *rules,
                 struct compose_error *err);

/* Whether path is prefix or below it, after normalising both. */
bool policy_path_allowed(const char *path, char *const *prefixes, size_t n_prefixes);

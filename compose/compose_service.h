/* compose_service: one entry of `services` and the small objects inside it (healthcheck,
 * logging, ulimits, its secrets and configs, its networks), as key tables; ports, mounts and
 * deploy have their own files. Keys Swarm ignores are read (the policy looks at some of them)
 * and warned about; keys docker stack deploy refuses are refused. */
#pragma once

#include "compose/compose_keys.h"

/* Reads the service named by key from n into s. */
int compose_service_read(struct compose_loader *l, const struct compose_ynode *key,
                         const struct compose_ynode *n, struct compose_service *s);

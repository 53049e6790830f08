/* compose_ports: a service's `ports`, in the short syntax ([[ip:]published:]target[/protocol],
 * with ranges, as docker's nat.ParsePortSpec and opts.ConvertPortToPortConfig read it) and the
 * long one (mode, target, published, protocol). Ranges are expanded here, counted against
 * COMPOSE_MAX_PORTS over the whole project. */
#pragma once

#include "compose/compose_keys.h"

/* A KEY_READ reader: the list at v into the struct compose_service at field. */
compose_key_read_fn compose_ports_read;

/* compose_deploy: a service's `deploy` (mode, replicas, endpoint_mode, labels, update_config,
 * rollback_config, resources, restart_policy, placement), as key tables. */
#pragma once

#include "compose/compose_keys.h"

/* The table of `deploy`, read into a struct compose_deploy; null is an empty deploy. */
extern const struct compose_keys compose_deploy_keys;

/* The daemon: one libev loop that owns the store, the reconciler and the Docker client. */
#pragma once

#include "agent/config.h"

#include <stdbool.h>

/* Runs until SIGTERM or SIGINT. config_path is what SIGHUP reloads ("" for defaults only).
 * reset_corrupt: a corrupt store is moved aside and a new one started (else it is an error).
 * Returns 0 after a graceful stop, negative errno when start-up failed. */
int daemon_run(struct config *cfg, const char *config_path, bool reset_corrupt);

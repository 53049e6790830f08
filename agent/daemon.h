/* The daemon: one libev loop that owns the store, the reconciler and the Docker client. */
#pragma once

#include "agent/config.h"

#include <stdbool.h>

/* In the state dir: the daemon holds an exclusive flock on it while it runs (one daemon per
 * state dir; the holder's pid is written in it). */
#define DAEMON_LOCK_FILE "agent.lock"

/* Runs until SIGTERM or SIGINT. src is what cfg was loaded from (file and flags; the
 * environment is read again): SIGHUP reloads it and applies the log level, which log_level
 * (--log-level, or NULL) overrides for the whole run. src must outlive the call.
 * reset_corrupt: a corrupt store is moved aside and a new one started (else it is an error).
 * Returns 0 after a graceful stop, negative errno when start-up failed (-EBUSY: another daemon
 * holds the state dir; the message names its pid). */
int daemon_run(struct config *cfg, const struct config_source *src, const char *log_level,
               bool reset_corrupt);

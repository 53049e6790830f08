/* collector: runs the telemetry collector inside the daemon. It keeps the container set of
 * agent/telemetry current from the Docker driver (a list of running containers, each
 * inspected for its pid, at start and every resync; container events in between), runs one
 * telemetry_collect() every telemetry.interval on the loop, and keeps the latest sample in the
 * store for `axion-agent top`. */
#pragma once

#include <ev.h>

#include "agent/config.h"
#include "drivers/docker/docker.h"
#include "store/store.h"

struct collector;

int collector_new(struct ev_loop *loop, const struct config *cfg, struct docker *docker,
                  struct store *store, struct collector **ret);
/* Starts the container events stream, the list and the cycle timer. */
int collector_start(struct collector *c);
struct collector *collector_free(struct collector *c);
/* Adds a sink that gets every encoded batch too (the Kafka producer's telemetry). */
struct telemetry_sink;
int collector_add_sink(struct collector *c, const struct telemetry_sink *sink);

/* The telemetry collector: host and container metrics read straight from /proc and the cgroup
 * hierarchy (drivers/cgroup), never from the Docker stats API.
 *
 * It schedules nothing itself. The daemon keeps the container set current (from the Docker
 * driver's list and events: telemetry_set_containers / _add_container / _remove_container) and
 * calls telemetry_collect() every telemetry.interval; each call reads the files, computes rates
 * from the previous cycle, encodes one TelemetryBatch (proto/telemetry.proto) and hands it to
 * every sink. A cycle only reads files already open (pread) and allocates nothing once the set
 * of containers and devices is stable. Only the loop thread may call these functions.
 * Invariants and costs: docs/internals/telemetry.md. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "telemetry.pb-c.h"

#define TELEMETRY_DEFAULT_DETAIL_EVERY   6
#define TELEMETRY_DEFAULT_LIMITS_FACTOR  10 /* limits_every = 10 x detail_every */
#define TELEMETRY_DEFAULT_MAX_CONTAINERS 4096
#define TELEMETRY_MAX_SINKS              8
#define TELEMETRY_MAX_DEVICES            256 /* disks, and host network interfaces */
#define TELEMETRY_MAX_PRINT_BYTES        ((size_t)64 << 20)

struct telemetry_options {
    const char *cgroup_root; /* telemetry.cgroup_root; NULL: /sys/fs/cgroup */
    const char *proc_root;   /* telemetry.proc_root; NULL: /proc */
    const char *docker_root; /* Docker data root for filesystem usage; NULL: /var/lib/docker,
                                "": none */
    const char *agent_id;    /* NULL: "" */
    const char *hostname;    /* NULL: gethostname() */
    /* What a cycle reads (docs/internals/telemetry.md): CPU usage, memory usage and network
     * every cycle; the detail files (memory.stat, io, PSI, pids, OOM events, /proc/vmstat)
     * every detail_every cycles, staggered over the containers (memory.stat sooner when memory
     * usage moves); the limits (CPU quota, memory and pids limits) every limits_every cycles.
     * 1 and 1: everything every cycle. 0: the defaults (6, and 10 times detail_every). */
    unsigned detail_every;
    unsigned limits_every;
    size_t max_containers; /* 0: TELEMETRY_DEFAULT_MAX_CONTAINERS */
};

/* A running container, as the caller knows it. Strings are copied. */
struct telemetry_container_info {
    const char *id;      /* full container id (its cgroup is found with pid, or by id) */
    const char *name;    /* may be NULL */
    pid_t pid;           /* State.Pid: its cgroup and network namespace; 0 if unknown */
    const char *service; /* Swarm labels; NULL when none */
    const char *task;
    const char *stack;
};

/* One cycle's sample, valid during the emit call (and until the next telemetry_collect). */
struct telemetry_sample {
    int64_t timestamp_ms;
    uint64_t seq;
    size_t n_containers; /* containers in the batch */
    size_t n_skipped;    /* containers of the set that could not be read (gone) */
    uint64_t cpu_ns;     /* CPU time of the cycle on the calling thread, before encoding */
    uint64_t wall_ns;
    const Axion__Agent__V1__TelemetryBatch *batch; /* the decoded form of the bytes */
};

/* Where samples go (the store's latest sample, the Kafka producer). emit must not call back
 * into the collector; buf is only valid during the call. */
struct telemetry_sink {
    void (*emit)(void *ud, const uint8_t *buf, size_t len, const struct telemetry_sample *s);
    void *ud;
};

struct telemetry;

/* Opens the host files and looks at the cgroup hierarchy. A host without cgroups still gives
 * host samples. Returns 0, -EINVAL for a bad option, -ENOMEM. */
int telemetry_new(const struct telemetry_options *o, struct telemetry **ret);
struct telemetry *telemetry_free(struct telemetry *t);

int telemetry_add_sink(struct telemetry *t, const struct telemetry_sink *s);

/* Adds a container, or updates the one with the same id: labels; a new pid finds its cgroup and
 * network namespace again (a restarted container); the same pid has every file read at the next
 * cycle (call it on a Docker "update" event so new limits show at once). Returns 0; -ENOENT when
 * its cgroup cannot be found (it is not added); -EINVAL for a bad id; -ENOSPC past
 * max_containers; -ENOMEM.
 * The collector holds the container's network namespace open until it is removed: remove
 * containers when they stop. */
int telemetry_add_container(struct telemetry *t, const struct telemetry_container_info *c);
/* Returns 0 or -ENOENT. */
int telemetry_remove_container(struct telemetry *t, const char *id);
/* Makes the set exactly v[0..n): others are removed, known ones keep their state (rates and
 * tiers go on; labels and pids are updated as by telemetry_add_container). Returns the number of
 * containers whose cgroup could not be found (left out), or a negative errno (-EINVAL, -ENOSPC,
 * -ENOMEM: the set is then partly updated). */
int telemetry_set_containers(struct telemetry *t, const struct telemetry_container_info *v,
                             size_t n);
size_t telemetry_container_count(const struct telemetry *t);

/* One cycle at now_ms (Unix time in ms, e.g. ev_now() * 1000; rates use the difference with
 * the previous cycle, none when time did not move forward). Emits the encoded batch to every
 * sink and, when ret is not NULL, points *ret at the sample. Containers that vanished are left
 * out of the batch (n_skipped) until re-added or removed. Returns 0 or -ENOMEM (the encoding
 * buffer could not grow). */
int telemetry_collect(struct telemetry *t, int64_t now_ms, const struct telemetry_sample **ret);

/* Renders an encoded TelemetryBatch like `docker stats --no-stream` (CONTAINER ID, NAME,
 * CPU %, MEM USAGE / LIMIT, MEM %, NET I/O, BLOCK I/O, PIDS) after a host summary, or as one
 * JSON object. Returns 0, -EBADMSG when pb is not a TelemetryBatch, -EMSGSIZE past
 * TELEMETRY_MAX_PRINT_BYTES, -ENOMEM, -EIO when out could not be written. */
int telemetry_print(const uint8_t *pb, size_t len, FILE *out, bool json);

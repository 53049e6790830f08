/* source: what the daemon lends a channel (gRPC, Kafka) that runs in its process. A channel
 * turns what it receives into intake requests (sources/intake.h), tracks the accepted ones
 * (sources/tracker.h), wakes the loop, and reports what the node is doing; it never writes the
 * store's desired state any other way and never calls a driver. Everything here belongs to the
 * loop's thread and outlives the channel.
 *
 *   struct intake_result res;
 *   int64_t at = source_now_ms();
 *   if (intake_submit(ctx->intake, &rq, &res) == 0 && res.outcome == INTAKE_ACCEPTED) {
 *       tracker_add(ctx->tracker, &rq, &res, at);
 *       ctx->wake(ctx->userdata, "deploy from kafka");
 *   } */
#pragma once

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/config.h"
#include "sources/intake.h"
#include "sources/tracker.h"
#include "store/store.h"

/* The node as the daemon last saw it, for heartbeats and hellos. Borrowed for the call. */
struct source_node_state {
    int64_t started_at;   /* CLOCK_REALTIME ms the daemon started */
    int64_t last_pass_at; /* the last reconcile pass's end, 0 before the first */
    int last_pass_result; /* 0, or its negative errno */
    const char *last_pass_error;
    /* Swarm membership as the last pass read it: "" while unknown. */
    const char *swarm_state; /* inactive, pending, active, error, locked */
    const char *swarm_role;  /* manager, worker, "" */
    const char *node_id;
};

/* A pass of the loop has ended (reconciler/reconciler.h says what the report holds). */
struct reconciler_pass_report;
typedef void (*source_pass_fn)(const struct reconciler_pass_report *rep, void *userdata);

/* Logs are not state: the daemon streams a service's logs from the Docker driver for a channel
 * (a source never calls a driver itself). */
struct source_logs_request {
    const char *stack;
    const char *service; /* the name in the manifest: the Swarm service is STACK_service */
    int64_t since_ms;    /* only lines written at or after this time; 0: from the start */
    int64_t tail;        /* the last N lines of each task; < 0: every line */
    bool follow;         /* keep streaming new lines */
    bool timestamps;     /* prefix each line with its RFC 3339 time */
};
enum source_logs_kind { SOURCE_LOGS_STDOUT, SOURCE_LOGS_STDERR };
struct source_logs_cbs {
    /* Output in order (a TTY's output counts as stdout); borrowed for the call. */
    void (*data)(enum source_logs_kind kind, const char *data, size_t len, void *userdata);
    /* Once, when the logs ended (error NULL) or failed (why); not after logs_close. */
    void (*end)(const char *error, void *userdata);
};
struct source_logs;

struct source_ctx {
    struct ev_loop *loop;
    const struct config *cfg;
    struct store *store;
    struct intake *intake;
    struct tracker *tracker;
    /* Something changed in desired state: a reconcile pass runs soon. */
    void (*wake)(void *userdata, const char *why);
    /* The node as the daemon sees it now. */
    void (*node_state)(void *userdata, struct source_node_state *ret);
    /* Tells fn of every pass of the loop (after the tracker heard of it); NULL fn removes. */
    int (*observe)(void *userdata, source_pass_fn fn, void *fn_userdata);
    /* Streams a service's logs to cbs (called on the loop, never from inside logs_open); NULL
     * when out of memory. logs_hold(l, true) stops the output for now (a slow reader: what
     * the driver buffers stays bounded), false lets it go on; logs_close stops it for good (no
     * callback after it; may be called from the callbacks). */
    struct source_logs *(*logs_open)(void *userdata, const struct source_logs_request *rq,
                                     const struct source_logs_cbs *cbs, void *cb_userdata);
    void (*logs_hold)(void *userdata, struct source_logs *l, bool hold);
    void (*logs_close)(void *userdata, struct source_logs *l);
    /* The agent must start again to take a change it cannot make while running (the agent id
     * the Control Plane assigned at enrollment): the daemon stops as on SIGTERM and executes
     * itself again. why is logged. */
    void (*restart)(void *userdata, const char *why);
    void *userdata;
};

/* CLOCK_REALTIME in ms: what tracker_add() wants as the time a command was accepted. */
int64_t source_now_ms(void);

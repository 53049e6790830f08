/* grpc_logs: one Logs command running — a service's output streamed from the Docker driver
 * (through the daemon: source_ctx.logs_open) to the control stream as LogChunk messages.
 *
 *   - Chunks: at most 64 KiB of data, one source (stdout/stderr) each, cut after the last
 *     whole line that fits where possible; a partial line goes out after 100 ms at the latest.
 *   - Bounded: the data stops at limit_bytes (the last chunk is cut there, end LIMIT); and
 *     while more than 256 KiB of its chunks wait in the stream's queue the Docker output is
 *     held (the driver pauses the transfer), so a slow Control Plane costs a bounded buffer,
 *     never a stalled loop or a growing one.
 *   - Ends: the logs ended (EOF, not following), the limit, CancelLogs (CANCELLED), the
 *     Engine failed (ERROR), or the control stream ended (no more chunks: FAILED, not
 *     resumed). The last chunk carries `last` and the end; host->done runs once that chunk has
 *     left the queue (so the result, which has a higher priority, never overtakes it), or at
 *     once when no chunk can go.
 *
 * Who may call it: sources/grpc_source.c, on the loop thread. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "axion/agent/v1/control.pb-c.h"
#include "sources/grpc_stream.h"
#include "sources/source.h"

#define GRPC_LOGS_CHUNK_MAX (64u << 10)
#define GRPC_LOGS_QUEUE_MAX (256u << 10) /* queued chunk bytes before the output is held */

struct grpc_logs;

/* What the run needs of the channel. */
struct grpc_logs_host {
    const struct source_ctx *ctx;
    /* The control stream to send chunks on; NULL when it is down. */
    struct grpc_stream *(*stream)(void *userdata);
    /* The run is over (grpc_logs_outcome says how): the host sends the result and frees it. */
    void (*done)(struct grpc_logs *l, void *userdata);
    void *userdata;
};

enum grpc_logs_end {
    GRPC_LOGS_RUNNING,
    GRPC_LOGS_EOF,       /* DONE */
    GRPC_LOGS_LIMIT,     /* DONE */
    GRPC_LOGS_CANCELLED, /* CANCELLED */
    GRPC_LOGS_ERROR,     /* FAILED: the Engine */
    GRPC_LOGS_CUT,       /* FAILED: the control stream ended */
};

/* Starts the logs of rq (checked by grpc_command_check_logs) for command_id. The host is
 * borrowed and must outlive the run. -ENOMEM, or 0 with *ret. */
int grpc_logs_start(const struct grpc_logs_host *host, const char *command_id,
                    const Axion__Agent__V1__Logs *rq, int64_t received_at, struct grpc_logs **ret);

const char *grpc_logs_command_id(const struct grpc_logs *l);
const char *grpc_logs_stack(const struct grpc_logs *l);
const char *grpc_logs_service(const struct grpc_logs *l);
int64_t grpc_logs_received_at(const struct grpc_logs *l);
/* How it ended, and why (ERROR, CUT); bytes of data sent. */
enum grpc_logs_end grpc_logs_outcome(const struct grpc_logs *l, const char **ret_error,
                                     uint64_t *ret_bytes);

/* CancelLogs: stops the output; the last chunk says CANCELLED. No effect once it is ending. */
void grpc_logs_cancel(struct grpc_logs *l);
/* The agent stops: the output ends with an ERROR chunk saying why (FAILED). */
void grpc_logs_stop(struct grpc_logs *l, const char *why);
/* The control stream ended: stops the output; done follows at once (FAILED). */
void grpc_logs_stream_ended(struct grpc_logs *l);

/* Frees a run that is over (after done), or stops and frees one that is not (shutdown: done
 * does not run). Accepts NULL. */
void grpc_logs_free(struct grpc_logs *l);

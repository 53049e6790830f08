/* grpc_stream: one Connect call, the long-lived bidirectional stream to the Control Plane, and
 * its outbound queue.
 *
 * gRPC allows one SEND_MESSAGE and one RECV_MESSAGE in flight per call. A receive is always
 * posted (each message is handed to ops->message, then the next receive is posted), and so is
 * RECV_STATUS_ON_CLIENT, which is how any end of the call is learnt (the server's status, a
 * broken connection, a keepalive timeout, a cancel). What the agent sends waits in a queue with
 * three priorities — control (Hello, Heartbeat), results, log chunks — and the next message to
 * go is always the first of the highest priority waiting, so a heartbeat never waits behind
 * queued log chunks (only behind the one message in flight, at most 64 KiB of log data).
 *
 * Every message can carry a callback that says what became of it: handed to the transport,
 * lost in flight when the call broke, or never sent (still queued when the call ended) — the
 * channel puts unsent results back into its backlog, and a Logs command counts its queued bytes.
 *
 * Who may call it: sources/grpc*.c, on the loop thread. */
#pragma once

#include <grpc/grpc.h>
#include <stdbool.h>
#include <stddef.h>

#include "sources/grpc_pump.h"
#include "sources/grpc_wire.h"

enum grpc_stream_prio {
    GRPC_STREAM_PRIO_CONTROL, /* Hello, Heartbeat */
    GRPC_STREAM_PRIO_RESULT,  /* CommandResult, StatusEvent */
    GRPC_STREAM_PRIO_LOG,     /* LogChunk */
    _GRPC_STREAM_PRIO_MAX,
};

enum grpc_stream_sent {
    GRPC_STREAM_SENT,   /* handed to the transport */
    GRPC_STREAM_LOST,   /* in flight when the call broke: it may or may not have arrived */
    GRPC_STREAM_UNSENT, /* still queued when the call ended: it never left */
};

typedef void (*grpc_stream_sent_fn)(enum grpc_stream_sent how, void *userdata);

struct grpc_stream_ops {
    /* The Control Plane's headers arrived: the stream is up. */
    void (*ready)(void *userdata);
    /* One message (a ControlMessage's bytes), borrowed for the call. */
    void (*message)(const void *data, size_t len, void *userdata);
    /* The call is over: end says how. The stream is freed right after; every queued message's
     * callback has run. */
    void (*ended)(const struct grpc_wire_end *end, void *userdata);
};

struct grpc_stream;

/* Opens the call (fail fast: UNAVAILABLE at once when the channel cannot connect). The ops run
 * on the loop; none runs from inside this function. */
int grpc_stream_open(grpc_channel *ch, struct grpc_pump *pump, const char *method,
                     const struct grpc_stream_ops *ops, void *userdata, struct grpc_stream **ret);

/* Queues a message (bb stolen). front: before the others of its priority (the Hello). sent
 * (may be NULL) runs once, later, on the loop. -EPIPE (bb freed, sent not called) when the
 * stream is closing or has ended. */
int grpc_stream_send(struct grpc_stream *s, enum grpc_stream_prio prio, grpc_byte_buffer *bb,
                     bool front, grpc_stream_sent_fn sent, void *userdata);

/* Bytes queued (not yet in flight) at a priority. */
size_t grpc_stream_queued(const struct grpc_stream *s, enum grpc_stream_prio prio);

/* Whether the headers arrived and the call has not ended. */
bool grpc_stream_ready(const struct grpc_stream *s);

/* Half-closes once the queue has drained (no more sends); the Control Plane then ends the
 * call. */
void grpc_stream_close(struct grpc_stream *s);

/* Ends the call now (CANCELLED); ops->ended still runs, on the loop. */
void grpc_stream_cancel(struct grpc_stream *s);

/* grpc_unary: one unary call (Enroll, Renew) on the loop: the request goes out in one batch
 * (initial metadata, the message, the half-close, and the receive of the answer and the
 * status); done runs once on the loop when it has completed, with the answer's bytes or how the
 * call failed. Cancelling runs done too (with CANCELLED).
 *
 * Who may call it: sources/grpc*.c, on the loop thread. */
#pragma once

#include <grpc/grpc.h>
#include <stdint.h>

#include "sources/grpc_pump.h"
#include "sources/grpc_wire.h"

struct grpc_unary;

/* end: how it ended (status OK: data/len is the answer; may be empty). Borrowed for the call;
 * the call is freed after done returns. */
typedef void (*grpc_unary_done)(const struct grpc_wire_end *end, const void *data, size_t len,
                                void *userdata);

/* Starts method ("/axion.agent.v1.Control/Enroll") on ch with the packed request (stolen) and a
 * deadline of timeout_ms. NULL when out of memory or gRPC refused the batch (bb freed). */
struct grpc_unary *grpc_unary_start(grpc_channel *ch, struct grpc_pump *pump, const char *method,
                                    grpc_byte_buffer *request, int64_t timeout_ms,
                                    grpc_unary_done done, void *userdata);

/* Cancels a call in flight: done still runs, with CANCELLED (or the call's real end when it
 * finished first). */
void grpc_unary_cancel(struct grpc_unary *u);

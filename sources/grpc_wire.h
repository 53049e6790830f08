/* grpc_wire: what every call of the gRPC channel shares — protobuf-c messages in and out of
 * gRPC byte buffers, and how a call ended (status, details, the transport's error string and
 * the Control Plane's "axion-reason"), told apart into the causes the agent reports: a refused
 * or unverifiable TLS handshake, the network, or an answer of the Control Plane.
 *
 * Who may call it: sources/grpc*.c, on the loop thread. */
#pragma once

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

/* The largest message the agent accepts from the Control Plane (control.proto). */
#define GRPC_WIRE_RECV_MAX (16u << 20)
/* The largest message the agent sends (what the Control Plane must accept). */
#define GRPC_WIRE_SEND_MAX (4u << 20)

/* A byte buffer holding the packed message; NULL when out of memory (or, with ret_size set,
 * when it is larger than max: *ret_size says how large). */
grpc_byte_buffer *grpc_wire_pack(const ProtobufCMessage *msg, size_t max, size_t *ret_size);

/* The bytes of a received buffer, contiguous (malloc'ed, freed by the caller); NULL when out
 * of memory or the buffer cannot be read (a compression it does not know). */
void *grpc_wire_bytes(grpc_byte_buffer *bb, size_t *ret_len);

/* How a call ended. */
struct grpc_wire_end {
    grpc_status_code status;
    char *details;      /* the status message (malloc'ed; "" when none) */
    char *error_string; /* the transport's own description (malloc'ed, may be NULL) */
    char *reason;       /* the trailing metadata "axion-reason" (malloc'ed, may be NULL) */
};

enum grpc_wire_cause {
    GRPC_WIRE_OK,
    GRPC_WIRE_TLS_SERVER,  /* the Control Plane's certificate did not verify (wrong CA, name) */
    GRPC_WIRE_TLS_REFUSED, /* the Control Plane refused our client certificate in the handshake */
    GRPC_WIRE_TLS_OTHER,   /* another TLS handshake failure */
    GRPC_WIRE_NETWORK,     /* not reached, the connection broke, a silent peer (keepalive) */
    GRPC_WIRE_ANSWER,      /* the Control Plane answered with an error status */
};

/* What kind of failure the end is. */
enum grpc_wire_cause grpc_wire_cause(const struct grpc_wire_end *e);

/* "UNAVAILABLE" for GRPC_STATUS_UNAVAILABLE. */
const char *grpc_wire_status_name(grpc_status_code s);

/* Takes what a RECV_STATUS_ON_CLIENT op filled in (details slice, error string, trailing
 * metadata) into e, and releases them. */
void grpc_wire_end_take(struct grpc_wire_end *e, grpc_status_code status, grpc_slice *details,
                        const char **error_string, grpc_metadata_array *trailing);
void grpc_wire_end_release(struct grpc_wire_end *e);

/* One line for a log or an error: "UNAVAILABLE: failed to connect to all addresses; last
 * error: ... Connection refused" (the status and its details). */
void grpc_wire_end_describe(const struct grpc_wire_end *e, char *out, size_t outlen);

/* A deadline ms milliseconds from now. */
gpr_timespec grpc_wire_deadline(int64_t ms);

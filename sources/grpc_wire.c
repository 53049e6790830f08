#include "sources/grpc_wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "lib/util.h"

grpc_byte_buffer *grpc_wire_pack(const ProtobufCMessage *msg, size_t max, size_t *ret_size)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    if (ret_size)
        *ret_size = n;
    if (max && n > max)
        return NULL;
    grpc_slice s = grpc_slice_malloc(n);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

void *grpc_wire_bytes(grpc_byte_buffer *bb, size_t *ret_len)
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb))
        return NULL;
    size_t n = grpc_byte_buffer_length(bb);
    /* One byte more, so that an empty message is not a NULL. */
    char *out = malloc(n + 1);
    if (!out) {
        grpc_byte_buffer_reader_destroy(&r);
        return NULL;
    }
    size_t at = 0;
    grpc_slice s;
    while (grpc_byte_buffer_reader_next(&r, &s)) {
        size_t len = GRPC_SLICE_LENGTH(s);
        if (at + len > n)
            len = n - at;
        memcpy(out + at, GRPC_SLICE_START_PTR(s), len);
        at += len;
        grpc_slice_unref(s);
    }
    grpc_byte_buffer_reader_destroy(&r);
    *ret_len = at;
    return out;
}

static const char *const status_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *grpc_wire_status_name(grpc_status_code s)
{
    return (unsigned)s < ARRAY_SIZE(status_names) ? status_names[s] : "UNKNOWN";
}

static char *slice_dup(grpc_slice s)
{
    size_t n = GRPC_SLICE_LENGTH(s);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    memcpy(out, GRPC_SLICE_START_PTR(s), n);
    out[n] = '\0';
    return out;
}

void grpc_wire_end_take(struct grpc_wire_end *e, grpc_status_code status, grpc_slice *details,
                        const char **error_string, grpc_metadata_array *trailing)
{
    grpc_wire_end_release(e);
    e->status = status;
    e->details = details ? slice_dup(*details) : NULL;
    if (details)
        grpc_slice_unref(*details);
    if (error_string && *error_string) {
        e->error_string = strdup(*error_string);
        gpr_free((void *)*error_string);
        *error_string = NULL;
    }
    for (size_t i = 0; trailing && i < trailing->count; i++) {
        grpc_slice k = trailing->metadata[i].key;
        if (GRPC_SLICE_LENGTH(k) == 12 &&
            memcmp(GRPC_SLICE_START_PTR(k), "axion-reason", 12) == 0) {
            free(e->reason);
            e->reason = slice_dup(trailing->metadata[i].value);
        }
    }
    if (!e->details)
        e->details = strdup("");
}

void grpc_wire_end_release(struct grpc_wire_end *e)
{
    free(e->details);
    free(e->error_string);
    free(e->reason);
    *e = (struct grpc_wire_end){0};
}

static bool has(const char *hay, const char *needle)
{
    return hay && strcasestr(hay, needle);
}

static bool any(const struct grpc_wire_end *e, const char *needle)
{
    return has(e->details, needle) || has(e->error_string, needle);
}

enum grpc_wire_cause grpc_wire_cause(const struct grpc_wire_end *e)
{
    if (e->status == GRPC_STATUS_OK)
        return GRPC_WIRE_OK;
    if (e->status != GRPC_STATUS_UNAVAILABLE || e->reason)
        return e->status == GRPC_STATUS_DEADLINE_EXCEEDED && !e->reason ? GRPC_WIRE_NETWORK
                                                                        : GRPC_WIRE_ANSWER;
    /* UNAVAILABLE from the transport. The handshake's verdict is in the text: OpenSSL's
     * verification of the server's certificate, or the alert the server sent about ours. */
    if (any(e, "CERTIFICATE_VERIFY_FAILED") || any(e, "certificate verify failed") ||
        any(e, "Cert verification failed") || any(e, "Peer name") ||
        any(e, "SSL_ERROR_SSL: error:1416F086"))
        return GRPC_WIRE_TLS_SERVER;
    if (any(e, "alert certificate required") || any(e, "alert bad certificate") ||
        any(e, "alert unknown ca") || any(e, "alert certificate unknown") ||
        any(e, "alert certificate expired") || any(e, "alert certificate revoked") ||
        any(e, "alert handshake failure") || any(e, "alert access denied") ||
        any(e, "alert decrypt error") || any(e, "CERTIFICATE_REQUIRED") ||
        any(e, "BAD_CERTIFICATE") || any(e, "UNKNOWN_CA"))
        return GRPC_WIRE_TLS_REFUSED;
    /* A peer that takes the TCP connection and closes it in the TLS handshake, before HTTP/2
     * starts: that is how a server refuses a client certificate (gRPC servers send no alert;
     * with TLS 1.3 the client sees it only after its side of the handshake is done). A peer
     * that is down refuses the connection; one that dies on an open stream closes a
     * connection that was set up. */
    if (any(e, "failed to connect") &&
        (any(e, "Socket closed") || any(e, "unexpected eof") || any(e, "Handshake read failed") ||
         any(e, "Ssl handshake failed")))
        return GRPC_WIRE_TLS_REFUSED;
    if (any(e, "handshake") || any(e, "SSL_ERROR") || any(e, "tsi_"))
        return GRPC_WIRE_TLS_OTHER;
    return GRPC_WIRE_NETWORK;
}

void grpc_wire_end_describe(const struct grpc_wire_end *e, char *out, size_t outlen)
{
    /* The details say it; the error string repeats them with gRPC's internals around. */
    const char *d = e->details && *e->details ? e->details : NULL;
    if (!d && e->error_string && *e->error_string)
        d = e->error_string;
    snprintf(out, outlen, "%s: %s", grpc_wire_status_name(e->status), d ? d : "no details");
}

gpr_timespec grpc_wire_deadline(int64_t ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

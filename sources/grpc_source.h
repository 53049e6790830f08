/* grpc_source: the gRPC control channel to the Control Plane (DESIGN.md §6, docs/PROTOCOL.md,
 * docs/internals/grpc.md).
 *
 *   - Identity: the enrolled one of the store, or control_plane.cert_file/key_file. Without
 *     one and with agent.token set it enrolls first: an EC P-256 key made here (0600 in the
 *     state dir), a CSR, Enroll over server-authenticated TLS (control_plane.enroll_url, else
 *     grpc_url; the CA of control_plane.ca_file), the answer stored. Then every connection is
 *     mTLS and the token is not used again. At 2/3 of the certificate's lifetime it renews
 *     (Renew over the same mTLS channel, with a new key); the open stream stays up, the next
 *     connection presents the new certificate.
 *   - The stream: Connect, opened with a Hello; a Heartbeat every heartbeat_interval once the
 *     headers arrived; commands in, results, log chunks out (grpc_stream.h: one send and one
 *     receive in flight, an outbound queue with priorities).
 *   - Commands: all but Logs go through the intake (sources/intake.h) and the tracker; their
 *     final result comes back through the tracker's sink and is sent, or kept in a backlog
 *     while the stream is down and sent after the next Hello. Logs streams from the daemon's
 *     Docker driver (source_ctx.logs_open, grpc_logs.h).
 *   - Reconnects with the gRPC backoff (1 s x1.6, jitter 0.2, at most 120 s) and keepalive
 *     pings; the stream is reopened as soon as the channel is ready.
 *   - What it is doing goes to the store as "channel.grpc" ({"state", "error", ...}), shown by
 *     `axion-agent status`. Tokens and key material never appear in logs or errors.
 *
 * Threads: gRPC's own, and the pump's (grpc_pump.h), which only hands events to the loop. All
 * of this module runs on the loop thread.
 *
 * Who may call it: agent/daemon.c. */
#pragma once

#include <stdbool.h>

#include "agent/config.h"
#include "sources/source.h"
#include "store/store.h"

struct grpc_source;

/* Whether the config asks for the channel: control_plane.grpc_url set and not local mode. */
bool grpc_source_configured(const struct config *cfg);

/* The agent id of the identity the store holds (enrolled before), malloc'ed; -ENOENT when
 * none. The daemon takes it as the agent id when agent.id was left to its default. */
int grpc_source_enrolled_id(struct store *st, char **ret);

/* Sets the channel up from ctx->cfg (copied: ctx must outlive it) and calls grpc_init(). No
 * network yet. -EINVAL with a logged reason when the config cannot work (a bad URL). */
int grpc_source_new(const struct source_ctx *ctx, struct grpc_source **ret);
/* Enrolls if needed, connects; runs until stopped. */
int grpc_source_start(struct grpc_source *g);
/* SIGTERM: no new stream; running Logs end; the stream is half-closed once what is queued has
 * gone. */
void grpc_source_stop(struct grpc_source *g);
/* Waits a moment (2 s at most) for a closing stream to end cleanly, cancels what is left, stops
 * gRPC. Runs on the loop thread but outside the loop (after ev_run returned). Accepts NULL. */
struct grpc_source *grpc_source_free(struct grpc_source *g);

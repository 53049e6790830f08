/* grpc_report: what the agent says of itself on the control stream — the Hello that opens every
 * stream and the Heartbeat sent every heartbeat_interval — built from the store (stacks, their
 * status and last apply, the command log, the desired swarm membership, what the Kafka channel
 * said of itself under "channel.kafka") and the node as the daemon last saw it. Packed
 * protobuf bytes; no gRPC here.
 *
 * Limits (control.proto): at most 1000 stacks (the rest counted in stacks_omitted), 100
 * finished and 100 pending command ids, newest first; texts cut to 1 KiB.
 *
 * Who may call it: sources/grpc*.c, on the loop thread (it reads the store). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sources/source.h"
#include "store/store.h"

#define GRPC_REPORT_STACKS_MAX 1000u
#define GRPC_REPORT_IDS_MAX    100u
#define GRPC_REPORT_REASON_MAX 1024u

struct grpc_report_info {
    const char *agent_id;
    const char *version;
    const char *hostname;
    int64_t started_at_ms;
    uint32_t heartbeat_interval_ms;
    struct source_node_state node;
    uint64_t passes;       /* reconcile passes seen since start */
    uint32_t last_pass_ms; /* the last pass's duration */
    bool kafka_on;         /* Kafka is configured: report what it said */
    uint32_t pending_commands;
    uint32_t log_streams;
};

/* An AgentMessage with a Hello / a Heartbeat (seq, sent at now_ms), packed (malloc'ed). */
int grpc_report_hello(struct store *st, const struct grpc_report_info *in, uint8_t **ret,
                      size_t *ret_len);
int grpc_report_heartbeat(struct store *st, const struct grpc_report_info *in, uint64_t seq,
                          int64_t now_ms, uint8_t **ret, size_t *ret_len);

/* kafka: the Kafka channels of the daemon (DESIGN.md §6, docs/internals/kafka.md).
 *
 *   - the deployment channel, a consumer of {kafka.topic_prefix}.commands.{agent id}: every
 *     record is a Command (sources/envelope.h) that goes through the intake; the records of one
 *     poll go into ONE store transaction with their positions, and only then is the Kafka
 *     commit made. On assignment the consumer seeks to the positions in the store, so a commit
 *     that failed or never happened (kill -9) costs nothing: effectively once.
 *   - the data channel, an idempotent producer (acks=all): status events (command outcomes,
 *     final results, stack state changes, apply results) to {prefix}.status through the
 *     store's outbox (written in the same transaction as what they report, deleted after the
 *     delivery report), telemetry batches to {prefix}.telemetry best effort.
 *
 * Both run on the daemon's libev loop (librdkafka's queues wake an ev_io; every poll has timeout
 * 0): no thread of ours, and nothing here ever waits on Docker or blocks the loop. What the
 * channel says of itself goes to the store's agent state "channel.kafka" (`axion-agent status`).
 * Only the loop's thread calls these. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/config.h"
#include "sources/source.h"

struct kafka;
struct telemetry_sample;

/* Whether the config asks for Kafka: brokers given and not local mode. */
bool kafka_wanted(const struct config *cfg);

/* Creates the consumer and the producer from ctx->cfg (the ctx is borrowed and must outlive
 * the channel) and registers the "kafka" result sink and a pass observer. A config Kafka
 * cannot work with (ssl without its files, a file that cannot be read) is -EINVAL, said in the
 * log and in channel.kafka. */
int kafka_new(const struct source_ctx *ctx, struct kafka **ret);
/* Subscribes and starts serving both queues on the loop. */
int kafka_start(struct kafka *k);
/* The daemon is stopping: no new command is taken (the producer goes on until kafka_free). */
void kafka_stop_consuming(struct kafka *k);
/* Closes cleanly within a deadline (KAFKA_CLOSE_MS): commits the stored positions, closes the
 * consumer, flushes the producer (what was not delivered stays in the outbox for the next
 * start). Call it after the loop stopped, before the store closes. Accepts NULL. */
struct kafka *kafka_free(struct kafka *k);

#define KAFKA_CLOSE_MS 5000

/* A telemetry sink (agent/telemetry.h): the batch is queued for {prefix}.telemetry, best
 * effort (a bounded queue; the oldest is dropped and counted while the broker is away). */
void kafka_telemetry_emit(void *userdata, const uint8_t *buf, size_t len,
                          const struct telemetry_sample *sample);

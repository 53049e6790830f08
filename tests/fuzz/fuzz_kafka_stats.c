/* Fuzzes the Kafka channel's reading of librdkafka's statistics JSON (sources/kafka_status.c,
 * kafka_status_stats: the brokers' states and the high watermarks of the commands topic's
 * partitions, which a broker reports) and what follows it: channel.kafka written to a store,
 * then read back into a gRPC Heartbeat's KafkaSummary (sources/grpc_report.c). The bytes are
 * the statistics of the consumer and of the producer; the channel tracks partitions 0-3 of
 * "axion.commands" with stored positions. The Heartbeat must decode again. Sanitizers judge
 * the rest. The store lives in a temporary directory for the process. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/config.h"
#include "lib/log.h"
#include "axion/agent/v1/control.pb-c.h"
#include "sources/grpc_report.h"
#include "sources/kafka_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_kafka_stats: %s:%d: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static struct store *st;
static struct config cfg;
static struct kafka k;
static char dir[] = "/tmp/fuzz-kafka-stats-XXXXXX";
static char path[64], key[64];

static void cleanup(void)
{
    store_close(st);
    unlink(path);
    unlink(key);
    rmdir(dir);
}

static void setup(void)
{
    char err[512];
    log_init(LOG_LEVEL_ERROR);
    CHECK(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/store.db", dir);
    snprintf(key, sizeof(key), "%s/store.key", dir);
    if (store_open(path, 0, &st, err, sizeof(err)) < 0) {
        fprintf(stderr, "fuzz_kafka_stats: %s\n", err);
        abort();
    }
    atexit(cleanup);
    CHECK(config_init(&cfg) == 0);
    k.cfg = &cfg;
    k.store = st;
    k.commands_topic = "axion.commands";
    k.status_topic = "axion.status";
    k.telemetry_topic = "axion.telemetry";
    k.group = "axion-agent";
    k.brokers = "127.0.0.1:9092";
    k.started = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!st)
        setup();
    /* The same channel for every input: four partitions, the first two with positions. */
    free(k.parts);
    k.parts = NULL;
    k.n_parts = 0;
    for (int32_t i = 0; i < 4; i++) {
        struct kafka_partition *p = kafka_partition_get(&k, i, true);
        CHECK(p);
        p->assigned = true;
        p->next = i < 2 ? 10 * i : -1;
    }
    k.consumer_up = k.producer_up = false;
    k.cerr.text[0] = k.perr.text[0] = '\0';

    kafka_status_stats(&k, 'c', (const char *)data, size);
    kafka_status_stats(&k, 'p', (const char *)data, size);
    kafka_status_write(&k, true);

    struct grpc_report_info in = {
        .agent_id = "agent-1",
        .version = "fuzz",
        .hostname = "h",
        .kafka_on = true,
    };
    uint8_t *buf = NULL;
    size_t len = 0;
    if (grpc_report_heartbeat(st, &in, 1, 1000, &buf, &len) == 0) {
        Axion__Agent__V1__AgentMessage *m = axion__agent__v1__agent_message__unpack(NULL, len, buf);
        CHECK(m && m->heartbeat && m->heartbeat->kafka);
        CHECK(m->heartbeat->kafka->n_partitions == 4);
        axion__agent__v1__agent_message__free_unpacked(m, NULL);
        free(buf);
    }
    return 0;
}

/* Fuzzes the gRPC channel's reading of what the Kafka channel said of itself (the store's
 * agent state "channel.kafka", JSON: sources/grpc_report.c, build_kafka) into a Heartbeat's
 * KafkaSummary. The bytes are the JSON document (cut at a NUL); the store takes only valid JSON
 * of its size limit, as it does from sources/kafka_status.c. The Heartbeat must decode again and
 * keep the protocol's bounds (at most 1000 partitions). Sanitizers judge the rest. The store
 * lives in a temporary directory for the process. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "axion/agent/v1/control.pb-c.h"
#include "sources/grpc_report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_kafka_summary: %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static struct store *st;
static char dir[] = "/tmp/fuzz-kafka-summary-XXXXXX";
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
        fprintf(stderr, "fuzz_kafka_summary: %s\n", err);
        abort();
    }
    atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!st)
        setup();
    char *json = malloc(size + 1);
    if (!json)
        return 0;
    memcpy(json, data, size);
    json[size] = '\0';
    if (store_put_state(st, "channel.kafka", json) < 0)
        (void)store_delete_state(st, "channel.kafka");
    free(json);

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
        CHECK(m->heartbeat->kafka->n_partitions <= 1000);
        axion__agent__v1__agent_message__free_unpacked(m, NULL);
        free(buf);
    }
    return 0;
}

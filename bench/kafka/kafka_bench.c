/* kafka-bench: the references of the Kafka ingest benchmark (bench/kafka/bench.py), reading the
 * same records the agent reads, from the beginning of one partition, with the agent's consumer
 * settings (read_committed, the same fetch sizes), in one process:
 *
 *   --mode bare         librdkafka alone: each record is polled and dropped (the ceiling)
 *   --mode per-message  each record through the agent's envelope and intake, with its
 *                       position and its ACCEPTED status event, in ONE store transaction per
 *                       record (what the agent would do without batching)
 *   --mode batched      the same, one transaction per poll batch of up to --batch records, the
 *                       batch's manifests compiled ahead on --threads threads (what the agent's
 *                       consumer does: as many as there are cores, at most 4)
 *
 * The store is a fresh one in --dir with the agent's settings (WAL, synchronous=FULL). Prints
 * one JSON line: records, seconds from the first record to the last one handled (durably in the
 * store for the intake modes), records/s, transactions and peak RSS. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/parallel.h"
#include "sources/envelope.h"
#include "sources/intake.h"
#include "store/store.h"

enum mode { BARE, PER_MESSAGE, BATCHED };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long peak_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static void set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[512];
    if (rd_kafka_conf_set(c, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka-bench: %s=%s: %s\n", k, v, err);
        exit(2);
    }
}

struct ingest {
    struct store *st;
    struct intake *in;
    const char *agent_id;
    unsigned threads; /* batched: threads the manifests compile on */
    uint64_t txns, accepted;
};

struct item {
    struct envelope e;
    struct intake_compiled *compiled;
    struct intake_position pos;
    char id[64];
};

static int decode(struct ingest *g, const rd_kafka_message_t *m, struct item *it)
{
    if (envelope_decode(m->payload, m->len, ENVELOPE_KAFKA, g->agent_id, &it->e) < 0)
        return -ENOMEM;
    it->pos = (struct intake_position){rd_kafka_topic_name(m->rkt), m->partition, m->offset + 1};
    it->e.rq.source = "kafka";
    it->e.rq.position = &it->pos;
    if (!it->e.rq.command_id) {
        snprintf(it->id, sizeof(it->id), "kafka/%" PRId32 "/%" PRId64, m->partition, m->offset);
        it->e.rq.command_id = it->id;
    }
    return 0;
}

/* One record through the intake, with its status event (inside a transaction the caller
 * opened). */
static int submit(struct ingest *g, const rd_kafka_message_t *m, struct item *it)
{
    struct intake_result res;
    int r = intake_submit(g->in, &it->e.rq, &res);
    if (r == 0) {
        Axion__Agent__V1__CommandResult cr;
        envelope_result_from_intake(&it->e, &res, 0, &cr);
        Axion__Agent__V1__StatusEvent ev = AXION__AGENT__V1__STATUS_EVENT__INIT;
        ev.agent_id = (char *)g->agent_id;
        ev.event_case = AXION__AGENT__V1__STATUS_EVENT__EVENT_COMMAND_RESULT;
        ev.command_result = &cr;
        uint8_t *buf;
        size_t len;
        r = envelope_pack(&ev.base, &buf, &len);
        if (r == 0) {
            r = store_outbox_add(g->st, "bench.status", g->agent_id, buf, len, NULL);
            free(buf);
        }
        if (res.outcome == INTAKE_ACCEPTED)
            g->accepted++;
        else if (g->accepted == 0 && res.outcome == INTAKE_REJECTED)
            fprintf(stderr, "kafka-bench: record %" PRId64 " rejected: %s\n", m->offset, res.error);
    } else {
        fprintf(stderr, "kafka-bench: intake: %s\n", res.error);
    }
    intake_result_release(&res);
    return r;
}

struct compile_job {
    struct ingest *g;
    struct item *items;
};

static void compile_one(void *ud, size_t i)
{
    struct compile_job *j = ud;
    intake_compile(j->g->in, &j->items[i].e.rq, &j->items[i].compiled);
    j->items[i].e.rq.compiled = j->items[i].compiled;
}

/* The batch as the agent's consumer takes it (sources/kafka_consumer.c): every record decoded,
 * the manifests compiled on g->threads threads, then one transaction (batched) or one per
 * record (per-message, which compiles inside each, as a consumer without batches would). */
static int flush(struct ingest *g, rd_kafka_message_t **batch, size_t n, enum mode mode)
{
    struct item *items = calloc(n, sizeof(*items));
    int r = items ? 0 : -ENOMEM;
    for (size_t i = 0; i < n && r == 0; i++)
        r = decode(g, batch[i], &items[i]);
    if (r == 0 && mode == BATCHED) {
        struct compile_job j = {g, items};
        parallel_for(n, g->threads, compile_one, &j);
        if ((r = store_begin(g->st)) == 0) {
            for (size_t i = 0; i < n && r == 0; i++)
                r = submit(g, batch[i], &items[i]);
            r = r < 0 ? (store_rollback(g->st), r) : store_commit(g->st);
            g->txns++;
        }
    } else if (r == 0) {
        for (size_t i = 0; i < n && r == 0; i++) {
            if ((r = store_begin(g->st)) < 0)
                break;
            r = submit(g, batch[i], &items[i]);
            r = r < 0 ? (store_rollback(g->st), r) : store_commit(g->st);
            g->txns++;
        }
    }
    for (size_t i = 0; items && i < n; i++) {
        intake_compiled_free(items[i].compiled);
        envelope_release(&items[i].e);
    }
    free(items);
    return r;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"count", required_argument, NULL, 'n'},
        {"mode", required_argument, NULL, 'm'},
        {"dir", required_argument, NULL, 'd'},
        {"batch", required_argument, NULL, 'B'},
        {"agent-id", required_argument, NULL, 'a'},
        {"threads", required_argument, NULL, 'T'},
        {0},
    };
    const char *brokers = NULL, *topic = NULL, *dir = NULL, *agent_id = "bench";
    long count = 0, batch_max = 500, threads = 4;
    enum mode mode = BARE;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            brokers = optarg;
            break;
        case 't':
            topic = optarg;
            break;
        case 'n':
            count = strtol(optarg, NULL, 10);
            break;
        case 'm':
            mode = strcmp(optarg, "bare") == 0          ? BARE
                   : strcmp(optarg, "per-message") == 0 ? PER_MESSAGE
                                                        : BATCHED;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'B':
            batch_max = strtol(optarg, NULL, 10);
            break;
        case 'a':
            agent_id = optarg;
            break;
        case 'T':
            threads = strtol(optarg, NULL, 10);
            break;
        default:
            return 2;
        }
    }
    if (!brokers || !topic || count <= 0 || batch_max <= 0 || threads <= 0 ||
        (mode != BARE && !dir)) {
        fprintf(stderr, "usage: kafka-bench --brokers B --topic T --count N --mode "
                        "bare|per-message|batched [--dir STATE_DIR] [--batch N] [--threads N]\n");
        return 2;
    }

    struct ingest g = {.agent_id = agent_id, .threads = parallel_threads((unsigned)threads)};
    if (mode != BARE) {
        char path[4096], err[512];
        snprintf(path, sizeof(path), "%s/store.db", dir);
        if (store_open(path, 0, &g.st, err, sizeof(err)) < 0) {
            fprintf(stderr, "kafka-bench: %s\n", err);
            return 1;
        }
        struct policy_rules pol = {0};
        struct intake_opts o = {.agent_id = agent_id, .policy = &pol};
        if (intake_new(g.st, &o, &g.in) < 0)
            return 1;
    }

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[512];
    set(conf, "bootstrap.servers", brokers);
    set(conf, "group.id", "axion-kafka-bench");
    set(conf, "enable.auto.commit", "false");
    set(conf, "enable.auto.offset.store", "false");
    set(conf, "isolation.level", "read_committed");
    set(conf, "enable.partition.eof", "false");
    set(conf, "fetch.max.bytes", "52428800");
    set(conf, "receive.message.max.bytes", "60000000");
    set(conf, "queued.max.messages.kbytes", "32768");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "kafka-bench: %s\n", err);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);

    rd_kafka_message_t **batch = calloc((size_t)batch_max, sizeof(*batch));
    long seen = 0;
    uint64_t bytes = 0;
    double start = now_s(), first = 0, deadline = start + 600;
    int r = 0;
    while (seen < count && r == 0 && now_s() < deadline) {
        size_t n = 0;
        /* One poll round, as the agent's: what is there now, up to a batch. */
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        while (m) {
            if (m->err) {
                fprintf(stderr, "kafka-bench: %s\n", rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
            } else {
                if (!first)
                    first = now_s();
                bytes += m->len;
                batch[n++] = m;
            }
            if ((long)n == batch_max || seen + (long)n == count)
                break;
            m = rd_kafka_consumer_poll(rk, 0);
        }
        if (mode != BARE && n)
            r = flush(&g, batch, n, mode);
        for (size_t i = 0; i < n; i++)
            rd_kafka_message_destroy(batch[i]);
        seen += (long)n;
    }
    double end = now_s();
    free(batch);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    const char *names[] = {"bare", "per-message", "batched"};
    double secs = first ? end - first : 0;
    printf("{\"mode\": \"%s\", \"records\": %ld, \"bytes\": %" PRIu64 ", \"seconds\": %.3f, "
           "\"seconds_from_start\": %.3f, \"records_per_s\": %.1f, \"accepted\": %" PRIu64
           ", \"transactions\": %" PRIu64 ", \"compile_threads\": %u, \"peak_rss_kb\": %ld, "
           "\"error\": %d}\n",
           names[mode], seen, bytes, secs, end - start, secs > 0 ? (double)seen / secs : 0,
           g.accepted, g.txns, mode == BATCHED ? g.threads : 1, peak_rss_kb(), r);
    intake_free(g.in);
    store_close(g.st);
    return r < 0 || seen < count ? 1 : 0;
}

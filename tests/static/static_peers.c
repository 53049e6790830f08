/* static_peers: a test client, linked fully static exactly as the static axion-agent is (the
 * same archives, agent/static_link.c), that reaches a peer by name the way the agent's channels
 * do, so that tests/static/test_static_dns.py can show which names a static binary
 * resolves:
 *
 *   static_peers resolve HOST                      getaddrinfo(3), as librdkafka resolves
 *   static_peers grpc HOST:PORT CA_PEM [TLS_NAME]  a gRPC channel with TLS until READY
 *                                                  (gRPC's own resolver: c-ares by default)
 *   static_peers kafka BOOTSTRAP [CA CERT KEY]     librdkafka: the cluster's metadata
 *   static_peers hold GRPC_TARGET CA_PEM BOOTSTRAP CA CERT KEY
 *       for bench/static/rss.py: prints "idle", waits for a line on stdin, then brings up what
 *       the agent's channels hold (a gRPC TLS channel READY; a Kafka producer and a consumer
 *       in a group, over TLS, with metadata), prints "up" and holds them until stdin closes
 *
 * Prints what it found and exits 0, or prints why not and exits 1 (deadline 10 s). Not a mock
 * of anything: the peers are the test Kafka broker and the Control Plane simulator. */
#include <arpa/inet.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <librdkafka/rdkafka.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEADLINE_S 10

static int resolve(const char *host)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    int r = getaddrinfo(host, NULL, &hints, &res);
    if (r) {
        printf("resolve %s: %s\n", host, gai_strerror(r));
        return 1;
    }
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        char buf[INET6_ADDRSTRLEN];
        const void *addr = a->ai_family == AF_INET
                               ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
                               : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
        printf("resolve %s: %s\n", host, inet_ntop(a->ai_family, addr, buf, sizeof(buf)));
    }
    freeaddrinfo(res);
    return 0;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf && !n) {
        free(buf);
        return NULL;
    }
    return buf;
}

struct grpc_peer {
    char *ca;
    grpc_channel_credentials *creds;
    grpc_channel *ch;
    grpc_completion_queue *cq;
};

static void grpc_peer_close(struct grpc_peer *g)
{
    grpc_channel_destroy(g->ch);
    grpc_completion_queue_shutdown(g->cq);
    while (grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(g->cq);
    grpc_channel_credentials_release(g->creds);
    grpc_shutdown();
    free(g->ca);
}

static int grpc_open(struct grpc_peer *g, const char *target, const char *ca_file,
                     const char *tls_name)
{
    char *ca = read_file(ca_file);
    if (!ca) {
        printf("grpc %s: cannot read %s\n", target, ca_file);
        return 1;
    }
    grpc_init();
    grpc_channel_credentials *creds = grpc_ssl_credentials_create(ca, NULL, NULL, NULL);
    grpc_arg arg = {.type = GRPC_ARG_STRING,
                    .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
                    .value.string = (char *)tls_name};
    grpc_channel_args args = {.num_args = tls_name ? 1 : 0, .args = &arg};
    grpc_channel *ch = grpc_channel_create(target, creds, &args);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(DEADLINE_S, GPR_TIMESPAN));
    grpc_connectivity_state st = grpc_channel_check_connectivity_state(ch, 1);
    while (st != GRPC_CHANNEL_READY) {
        grpc_channel_watch_connectivity_state(ch, st, deadline, cq, NULL);
        grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type != GRPC_OP_COMPLETE || !ev.success)
            break; /* the deadline */
        st = grpc_channel_check_connectivity_state(ch, 1);
    }
    int ok = st == GRPC_CHANNEL_READY;
    printf("grpc %s: %s\n", target, ok ? "READY" : "not ready within the deadline");
    *g = (struct grpc_peer){ca, creds, ch, cq};
    return ok ? 0 : 1;
}

static int grpc_ready(const char *target, const char *ca_file, const char *tls_name)
{
    struct grpc_peer g = {0};
    int r = grpc_open(&g, target, ca_file, tls_name);
    if (g.ch)
        grpc_peer_close(&g);
    return r;
}

static int kafka_open(rd_kafka_type_t type, const char *bootstrap, const char *ca, const char *cert,
                      const char *key, rd_kafka_t **ret)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *kv[][2] = {
        {"bootstrap.servers", bootstrap},
        {"group.id", type == RD_KAFKA_CONSUMER ? "axion-static-peers" : NULL},
        {"enable.idempotence", type == RD_KAFKA_PRODUCER ? "true" : NULL},
        {"security.protocol", ca ? "ssl" : "plaintext"},
        {"ssl.ca.location", ca},
        {"ssl.certificate.location", cert},
        {"ssl.key.location", key},
        {"ssl.endpoint.identification.algorithm", "https"},
    };
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) {
        if (!kv[i][1])
            continue;
        if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], err, sizeof(err)) != RD_KAFKA_CONF_OK) {
            printf("kafka %s: %s\n", bootstrap, err);
            rd_kafka_conf_destroy(conf);
            return 1;
        }
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
    if (!rk) {
        printf("kafka %s: %s\n", bootstrap, err);
        return 1;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t r = rd_kafka_metadata(rk, 0, NULL, &md, DEADLINE_S * 1000);
    if (r == RD_KAFKA_RESP_ERR_NO_ERROR) {
        printf("kafka %s: metadata from broker %d (%d brokers)\n", bootstrap, md->orig_broker_id,
               md->broker_cnt);
        rd_kafka_metadata_destroy(md);
    } else {
        printf("kafka %s: %s\n", bootstrap, rd_kafka_err2str(r));
    }
    *ret = rk;
    return r == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : 1;
}

static int kafka_metadata(const char *bootstrap, const char *ca, const char *cert, const char *key)
{
    rd_kafka_t *rk = NULL;
    int r = kafka_open(RD_KAFKA_PRODUCER, bootstrap, ca, cert, key, &rk);
    if (rk)
        rd_kafka_destroy(rk);
    return r;
}

static int hold(char **argv)
{
    char line[64];
    printf("idle\n");
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin))
        return 1;
    struct grpc_peer g = {0};
    rd_kafka_t *producer = NULL, *consumer = NULL;
    int r = grpc_open(&g, argv[0], argv[1], NULL);
    r |= kafka_open(RD_KAFKA_PRODUCER, argv[2], argv[3], argv[4], argv[5], &producer);
    r |= kafka_open(RD_KAFKA_CONSUMER, argv[2], argv[3], argv[4], argv[5], &consumer);
    if (consumer) {
        rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(topics, "axion-static-peers", RD_KAFKA_PARTITION_UA);
        rd_kafka_subscribe(consumer, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, 2000);
        if (m)
            rd_kafka_message_destroy(m);
    }
    printf("%s\n", r ? "failed" : "up");
    fflush(stdout);
    while (fgets(line, sizeof(line), stdin)) {
        if (consumer) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, 0);
            if (m)
                rd_kafka_message_destroy(m);
        }
    }
    if (consumer) {
        rd_kafka_consumer_close(consumer);
        rd_kafka_destroy(consumer);
    }
    if (producer)
        rd_kafka_destroy(producer);
    if (g.ch)
        grpc_peer_close(&g);
    return r;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "resolve") == 0)
        return resolve(argv[2]);
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "grpc") == 0)
        return grpc_ready(argv[2], argv[3], argc == 5 ? argv[4] : NULL);
    if (argc == 3 && strcmp(argv[1], "kafka") == 0)
        return kafka_metadata(argv[2], NULL, NULL, NULL);
    if (argc == 6 && strcmp(argv[1], "kafka") == 0)
        return kafka_metadata(argv[2], argv[3], argv[4], argv[5]);
    if (argc == 8 && strcmp(argv[1], "hold") == 0)
        return hold(argv + 2);
    fprintf(stderr, "usage: static_peers resolve HOST | grpc HOST:PORT CA_PEM [TLS_NAME] |\n"
                    "       kafka BOOTSTRAP [CA CERT KEY] |\n"
                    "       hold GRPC_TARGET CA_PEM BOOTSTRAP CA CERT KEY\n");
    return 2;
}

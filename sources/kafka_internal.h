/* The parts of sources/kafka* and what they share. Not for use outside sources/kafka*.c.
 *
 *   kafka.c           set-up, librdkafka configuration, the callbacks of both handles, close
 *   kafka_consumer.c  the deployment channel: rebalance, batches, positions, Kafka commits
 *   kafka_producer.c  the data channel: outbox → {prefix}.status, telemetry queue
 *   kafka_report.c    status events: intake outcomes, final results, stack states, applies
 *   kafka_status.c    what the channel says of itself (channel.kafka), errors in words */
#pragma once

#include <ev.h>
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "axion/agent/v1/deploy.pb-c.h"
#include "lib/backoff.h"
#include "sources/envelope.h"
#include "sources/kafka.h"

#define KAFKA_BATCH_MAX          500         /* records in one store transaction */
#define KAFKA_COMPILE_THREADS    4           /* threads a batch's manifests compile on, at most */
#define KAFKA_BATCH_BYTES        (32u << 20) /* record bytes in one store transaction */
#define KAFKA_PARTITIONS_MAX     1024        /* partitions of the commands topic we track */
#define KAFKA_INFLIGHT_MAX       1000        /* outbox messages handed to librdkafka at once */
#define KAFKA_ACKS_EVERY_S       0.1         /* delivered rows leave the outbox at most this late */
#define KAFKA_TELEMETRY_QUEUE    8           /* telemetry batches kept while the broker is away */
#define KAFKA_TELEMETRY_BYTES    (8u << 20)  /* ... and their bytes */
#define KAFKA_TELEMETRY_INFLIGHT 2
#define KAFKA_COMMIT_RETRY_S     5.0 /* a failed Kafka commit is made again after this */
#define KAFKA_STATE_EVERY_S                                                                        \
    5.0 /* channel.kafka is written at most this often when only                                   \
         * counters changed */
#define KAFKA_ERROR_MAX 1024

/* One partition of the commands topic. */
struct kafka_partition {
    int32_t partition;
    bool assigned;
    int64_t next;      /* the next offset to handle: what the store holds; -1 unknown */
    int64_t committed; /* what Kafka last confirmed; -1 unknown */
    int64_t high;      /* the high watermark last seen; -1 unknown */
    uint64_t records;  /* handled since start */
    char last_error[256];
    int64_t last_error_at;
};

/* A stack as the last status event said it. */
struct kafka_stack_seen {
    char *stack;
    int64_t generation;
    enum store_stack_state state;
    char *reason;
    int64_t apply_id; /* the last apply reported */
};

/* A telemetry batch waiting for the producer. */
struct kafka_tel {
    uint8_t *buf;
    size_t len;
};

/* A librdkafka handle's error, kept for the log and channel.kafka. */
struct kafka_error {
    char text[KAFKA_ERROR_MAX];
    int64_t at;
    /* Not a broker's absence (a topic that does not exist, an authorization): a broker that
     * answers does not clear it; an assignment (consumer) or a delivery (producer) does. */
    bool sticky;
};

struct kafka {
    const struct source_ctx *ctx;
    const struct config *cfg;
    struct store *store;
    char *agent_id;
    char *commands_topic, *status_topic, *telemetry_topic, *group;
    char *brokers;

    /* the consumer */
    rd_kafka_t *rk;
    rd_kafka_queue_t *cq; /* its consumer queue (the main queue is forwarded to it) */
    int cfd[2];           /* librdkafka writes to cfd[1] when cq turns non-empty */
    ev_io cio;
    ev_timer cagain; /* another round at once: the last one stopped at a batch limit */
    ev_timer cretry; /* a batch the store refused is tried again */
    ev_timer commit_timer;
    bool consuming, stopping, started;
    rd_kafka_message_t **batch; /* records polled, not yet in the store */
    size_t n_batch, batch_bytes;
    unsigned store_failures;
    struct kafka_partition *parts;
    size_t n_parts;
    unsigned commits_in_flight;
    uint64_t batches; /* store transactions made */
    long kill_after;  /* test hook: kill -9 after this many batches (0: never) */

    /* the producer */
    rd_kafka_t *rp;
    rd_kafka_queue_t *pq;
    int pfd[2];
    ev_io pio;
    ev_timer pkick;  /* drain the outbox soon */
    ev_timer packs;  /* delete the delivered rows soon: one transaction for many reports */
    ev_timer pretry; /* after failed deliveries: start again from the oldest row */
    rd_kafka_topic_t *status_rkt, *telemetry_rkt;
    int64_t sent_upto; /* the newest outbox id handed to librdkafka */
    unsigned in_flight;
    bool resend; /* a delivery failed: hand everything again once in_flight is 0 */
    struct backoff resend_backoff;
    int64_t *acks;
    size_t n_acks, cap_acks;
    uint64_t delivered, delivery_failures;
    struct kafka_tel tel[KAFKA_TELEMETRY_QUEUE];
    size_t tel_head, tel_n, tel_bytes;
    unsigned tel_in_flight;
    uint64_t tel_sent, tel_dropped;

    /* what the reports said */
    struct kafka_stack_seen *seen;
    size_t n_seen, cap_seen;
    uint64_t outcomes[_INTAKE_OUTCOME_MAX];

    /* what the channel says of itself */
    int64_t started_at_ms;
    struct kafka_error cerr, perr; /* the consumer's and the producer's last error */
    /* OpenSSL's verdict on a broker's certificate, per handle (0 consumer, 1 producer): written
     * by the verify callback on a broker thread. */
    _Atomic int x509_error[2], x509_depth[2];
    bool consumer_up, producer_up; /* a broker answered (statistics, assignment, delivery) */
    bool state_dirty;
    char final_state[16]; /* "error" (the config), "stopped": said as it is */
    char final_error[KAFKA_ERROR_MAX];
    ev_timer state_timer;
};

/* kafka.c */
int64_t kafka_now_ms(void);
/* A new handle of the given type with the channel's config (common, TLS, callbacks). */
int kafka_handle_new(struct kafka *k, rd_kafka_type_t type, rd_kafka_conf_t *conf,
                     rd_kafka_t **ret);
int kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value);
/* Turns q's wake-ups into readable fds[0] on the loop: ev_io w calls cb. */
int kafka_queue_watch(struct kafka *k, rd_kafka_queue_t *q, int fds[2], ev_io *w,
                      void (*cb)(struct ev_loop *, ev_io *, int));
void kafka_queue_drain_fd(int fd);

/* kafka_consumer.c */
int kafka_consumer_new(struct kafka *k);
int kafka_consumer_start(struct kafka *k);
void kafka_consumer_stop(struct kafka *k);
/* Commits the stored positions and closes, until deadline (CLOCK_MONOTONIC ms). */
void kafka_consumer_close(struct kafka *k, int64_t deadline);
struct kafka_partition *kafka_partition_get(struct kafka *k, int32_t partition, bool create);

/* kafka_producer.c */
int kafka_producer_new(struct kafka *k);
int kafka_producer_start(struct kafka *k);
/* Something was written to the outbox: hand it to librdkafka soon. */
void kafka_producer_kick(struct kafka *k);
void kafka_producer_close(struct kafka *k, int64_t deadline);

/* kafka_report.c: each writes one status event to the outbox (inside the caller's
 * transaction, or its own); 0 or a negative errno with the store's message. */
int kafka_report_outcome(struct kafka *k, const struct envelope *e, const struct intake_result *res,
                         const rd_kafka_message_t *m);
void kafka_report_final(const struct tracker_final *f, void *userdata);
void kafka_report_pass(const struct reconciler_pass_report *rep, void *userdata);
void kafka_report_release(struct kafka *k);

/* kafka_status.c */
/* Records an error of a handle (which: 'c' consumer, 'p' producer) in words and logs it once
 * (again when it changes). */
void kafka_status_error(struct kafka *k, char which, rd_kafka_resp_err_t err, const char *reason);
/* Whether a broker answers the handle; one that does clears its error (not a sticky one). */
void kafka_status_up(struct kafka *k, char which, bool up);
/* The handle did its job (an assignment, a delivery): every error of it is cleared. */
void kafka_status_clear(struct kafka *k, char which);
/* The statistics JSON of a handle: whether a broker is up. */
void kafka_status_stats(struct kafka *k, char which, const char *json, size_t len);
/* Writes channel.kafka now when something a reader cares about changed (or force); inside an
 * open transaction it joins it. */
void kafka_status_write(struct kafka *k, bool force);
void kafka_status_mark(struct kafka *k);
int kafka_status_start(struct kafka *k);
void kafka_status_stop(struct kafka *k);
/* "stopped", with no error: the channel closed cleanly. */
void kafka_status_final(struct kafka *k, const char *state, const char *error);

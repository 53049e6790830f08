/* kafka_consumer: the deployment channel. Records of {prefix}.commands.{agent id} go through
 * the intake in batches: every record one poll returned (up to KAFKA_BATCH_MAX records or
 * KAFKA_BATCH_BYTES) goes into ONE store transaction with its position and its status event;
 * only after that transaction committed are the positions committed to Kafka (asynchronously).
 * On assignment the consumer seeks to the positions the store holds, so a Kafka commit that
 * failed or never happened is harmless. docs/internals/kafka.md has the order and the states. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/parallel.h"
#include "lib/util.h"
#include "sources/kafka_internal.h"

static void round_(struct kafka *k);

struct kafka_partition *kafka_partition_get(struct kafka *k, int32_t partition, bool create)
{
    for (size_t i = 0; i < k->n_parts; i++)
        if (k->parts[i].partition == partition)
            return &k->parts[i];
    if (!create || k->n_parts >= KAFKA_PARTITIONS_MAX)
        return NULL;
    struct kafka_partition *n = realloc(k->parts, (k->n_parts + 1) * sizeof(*n));
    if (!n)
        return NULL;
    k->parts = n;
    struct kafka_partition *p = &n[k->n_parts++];
    *p = (struct kafka_partition){.partition = partition, .next = -1, .committed = -1, .high = -1};
    return p;
}

static void partition_error(struct kafka *k, int32_t partition, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void partition_error(struct kafka *k, int32_t partition, const char *fmt, ...)
{
    struct kafka_partition *p = kafka_partition_get(k, partition, true);
    if (!p)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->last_error, sizeof(p->last_error), fmt, ap);
    va_end(ap);
    p->last_error_at = kafka_now_ms();
    kafka_status_mark(k);
}

/* ---- Kafka commits: after the store's ------------------------------------------------------ */

/* Commits every assigned partition whose stored position is ahead of what Kafka confirmed. */
static void commit_positions(struct kafka *k)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)k->n_parts + 1);
    for (size_t i = 0; i < k->n_parts; i++) {
        const struct kafka_partition *p = &k->parts[i];
        if (p->assigned && p->next >= 0 && p->next > p->committed)
            rd_kafka_topic_partition_list_add(l, k->commands_topic, p->partition)->offset = p->next;
    }
    if (l->cnt > 0) {
        rd_kafka_resp_err_t err = rd_kafka_commit(k->rk, l, 1);
        if (err)
            log_debug("kafka: commit not sent: %s", rd_kafka_err2str(err));
        else
            k->commits_in_flight++;
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    struct kafka *k = opaque;
    if (k->commits_in_flight)
        k->commits_in_flight--;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    if (err) {
        /* Harmless: the store holds the positions; the timer commits them again. */
        log_debug("kafka: commit failed (%s); the positions are in the store, it is made again",
                  rd_kafka_err2str(err));
        return;
    }
    for (int i = 0; offsets && i < offsets->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &offsets->elems[i];
        struct kafka_partition *p = kafka_partition_get(k, tp->partition, false);
        if (!p)
            continue;
        if (tp->err)
            partition_error(k, tp->partition, "commit: %s", rd_kafka_err2str(tp->err));
        else if (tp->offset > p->committed)
            p->committed = tp->offset;
    }
    kafka_status_mark(k);
}

static void on_commit_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct kafka *k = w->data;
    if (k->consuming && !k->commits_in_flight)
        commit_positions(k);
}

/* ---- one batch: one store transaction ------------------------------------------------------- */

static void batch_clear(struct kafka *k)
{
    for (size_t i = 0; i < k->n_batch; i++)
        rd_kafka_message_destroy(k->batch[i]);
    k->n_batch = 0;
    k->batch_bytes = 0;
}

/* The id a record without a usable command id is recorded under: the characters '/' never
 * appear in a command id, so it cannot meet one. */
static void position_id(const rd_kafka_message_t *m, char *buf, size_t len)
{
    snprintf(buf, len, "kafka/%" PRId32 "/%" PRId64 "/%.200s", m->partition, m->offset,
             rd_kafka_topic_name(m->rkt));
}

struct item {
    struct envelope env;
    struct intake_compiled *compiled;
    struct intake_result res;
    struct intake_position pos;
    char synthetic_id[256];
};

/* The batch's records as requests: decoded, with their positions and ids. 0 or -ENOMEM. */
static int batch_decode(struct kafka *k, struct item *items)
{
    for (size_t i = 0; i < k->n_batch; i++) {
        const rd_kafka_message_t *m = k->batch[i];
        struct item *it = &items[i];
        int r = envelope_decode(m->payload, m->len, ENVELOPE_KAFKA, k->agent_id, &it->env);
        if (r < 0)
            return r;
        struct intake_request *rq = &it->env.rq;
        it->pos =
            (struct intake_position){rd_kafka_topic_name(m->rkt), m->partition, m->offset + 1};
        rq->source = "kafka";
        rq->position = &it->pos;
        if (!rq->command_id) {
            position_id(m, it->synthetic_id, sizeof(it->synthetic_id));
            rq->command_id = it->synthetic_id;
        }
    }
    return 0;
}

struct kafka_compile {
    struct kafka *k;
    struct item *items;
};

static void compile_item(void *ud, size_t i)
{
    struct kafka_compile *kc = ud;
    struct item *it = &kc->items[i];
    /* Out of memory here leaves it NULL: intake_submit() then compiles it itself. */
    intake_compile(kc->k->ctx->intake, &it->env.rq, &it->compiled);
    it->env.rq.compiled = it->compiled;
}

/* The batch's manifests compile before its transaction, on the cores there are: compiling is
 * most of what a deploy costs, and needs nothing of the store. */
static void batch_compile(struct kafka *k, struct item *items)
{
    struct kafka_compile kc = {k, items};
    parallel_for(k->n_batch, parallel_threads(KAFKA_COMPILE_THREADS), compile_item, &kc);
}

/* Everything of the batch through the intake, in one transaction. 0, or a negative errno: the
 * store refused it (nothing of the batch is kept; the records are tried again). */
static int batch_store(struct kafka *k, struct item *items)
{
    struct store *st = k->store;
    int r = batch_decode(k, items);
    if (r < 0)
        return log_errno(r, "kafka: out of memory reading a batch of %zu records; it waits",
                         k->n_batch);
    batch_compile(k, items);
    r = store_begin(st);
    if (r < 0)
        return log_errno(r,
                         "kafka: cannot begin a store transaction (%s); the batch of %zu "
                         "records waits",
                         store_errmsg(st), k->n_batch);
    for (size_t i = 0; i < k->n_batch; i++) {
        const rd_kafka_message_t *m = k->batch[i];
        struct item *it = &items[i];
        r = intake_submit(k->ctx->intake, &it->env.rq, &it->res);
        if (r < 0) {
            log_error("kafka: the store refused record %s/%" PRId32 "@%" PRId64 ": %s",
                      rd_kafka_topic_name(m->rkt), m->partition, m->offset, it->res.error);
            break;
        }
        r = kafka_report_outcome(k, &it->env, &it->res, m);
        if (r < 0) {
            log_error("kafka: cannot write the status of record %" PRId32 "@%" PRId64 ": %s",
                      m->partition, m->offset, store_errmsg(st));
            break;
        }
    }
    if (r == 0) {
        kafka_status_write(k, true); /* joins the transaction: no commit of its own */
        r = store_commit(st);
        if (r < 0)
            log_error("kafka: store commit of a batch of %zu records failed: %s", k->n_batch,
                      store_errmsg(st));
    } else {
        store_rollback(st);
    }
    return r;
}

static void log_outcome(const rd_kafka_message_t *m, const struct item *it)
{
    const char *id = it->env.command_id;
    switch (it->res.outcome) {
    case INTAKE_ACCEPTED:
        log_info("kafka: command %s (%s %s) accepted at %" PRId32 "@%" PRId64, id,
                 intake_kind_to_string(it->env.rq.kind), it->env.rq.stack ? it->env.rq.stack : "",
                 m->partition, m->offset);
        break;
    case INTAKE_REJECTED:
        log_warnx("kafka: record %" PRId32 "@%" PRId64 " (command %s) rejected: %s", m->partition,
                  m->offset, *id ? id : "without an id", it->res.error);
        break;
    default:
        log_info("kafka: command %s at %" PRId32 "@%" PRId64 ": %s%s%s", id, m->partition,
                 m->offset, intake_outcome_to_string(it->res.outcome), *it->res.error ? ": " : "",
                 it->res.error);
        break;
    }
}

/* Handles the records collected: the store first, then the tracker, the loop, Kafka. */
static int batch_flush(struct kafka *k)
{
    if (!k->n_batch)
        return 0;
    struct item *items = calloc(k->n_batch, sizeof(*items));
    if (!items)
        return -ENOMEM;
    int r = batch_store(k, items);
    int64_t at = source_now_ms();
    bool wake = false;
    if (r == 0) {
        k->batches++;
        if (k->store_failures)
            kafka_status_clear(k, 'c'); /* the store takes batches again */
        k->store_failures = 0;
        if (k->kill_after && (long)k->batches >= k->kill_after) {
            /* The test of effectively once: dead after the store's commit, before Kafka's. */
            log_warnx("kafka: test hook: kill -9 after the store commit of batch %" PRIu64,
                      k->batches);
            raise(SIGKILL);
        }
        for (size_t i = 0; i < k->n_batch; i++) {
            const rd_kafka_message_t *m = k->batch[i];
            struct item *it = &items[i];
            log_outcome(m, it);
            k->outcomes[it->res.outcome]++;
            if (it->res.outcome == INTAKE_ACCEPTED) {
                if (tracker_add(k->ctx->tracker, &it->env.rq, &it->res, at) < 0)
                    log_warnx("kafka: out of memory: command %s gets no final result",
                              it->env.command_id);
                wake = true;
            }
            struct kafka_partition *p = kafka_partition_get(k, m->partition, true);
            if (p && m->offset + 1 > p->next) {
                p->next = m->offset + 1;
                p->records++;
            }
        }
    }
    for (size_t i = 0; i < k->n_batch; i++) {
        intake_result_release(&items[i].res);
        intake_compiled_free(items[i].compiled);
        envelope_release(&items[i].env);
    }
    free(items);
    if (r < 0)
        return r;
    log_debug("kafka: %zu records stored in one transaction", k->n_batch);
    batch_clear(k);
    if (wake)
        k->ctx->wake(k->ctx->userdata, "commands from kafka");
    commit_positions(k);
    kafka_producer_kick(k);
    return 0;
}

/* The store refused a batch: no new records until it takes it (with a backoff). */
static void batch_failed(struct kafka *k, int r)
{
    k->store_failures++;
    double in = k->store_failures < 7 ? 0.1 * (double)(1u << k->store_failures) : 10.0;
    if (in > 10.0)
        in = 10.0;
    ev_io_stop(k->ctx->loop, &k->cio);
    ev_timer_stop(k->ctx->loop, &k->cretry);
    ev_timer_set(&k->cretry, in, 0.);
    ev_timer_start(k->ctx->loop, &k->cretry);
    char why[160];
    snprintf(why, sizeof(why), "the store refused a batch of records (%s); retrying", strerror(-r));
    kafka_status_error(k, 'c', RD_KAFKA_RESP_ERR__FAIL, why);
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct kafka *k = w->data;
    int r = batch_flush(k);
    if (r < 0) {
        batch_failed(k, r);
        return;
    }
    if (k->consuming) {
        ev_io_start(loop, &k->cio);
        round_(k);
    }
}

/* ---- rebalance: positions from the store ------------------------------------------------------
 */

static void assign(struct kafka *k, rd_kafka_topic_partition_list_t *parts)
{
    for (size_t i = 0; i < k->n_parts; i++)
        k->parts[i].assigned = false;
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        struct kafka_partition *p = kafka_partition_get(k, tp->partition, true);
        int64_t next = -1;
        int r = store_get_offset(k->store, tp->topic, tp->partition, &next);
        if (r == 0) {
            tp->offset = next;
        } else {
            if (r != -ENOENT)
                log_warnx("kafka: cannot read the stored position of %s/%" PRId32
                          " (%s): starting from Kafka's committed offset",
                          tp->topic, tp->partition, store_errmsg(k->store));
            next = -1;
            tp->offset = RD_KAFKA_OFFSET_INVALID; /* committed, else earliest */
        }
        if (p) {
            p->assigned = true;
            p->next = next;
        }
        log_info("kafka: assigned %s/%" PRId32 ", from %s", tp->topic, tp->partition,
                 next >= 0 ? "the position in the store" : "Kafka's committed offset");
        if (next >= 0)
            log_debug("kafka: %s/%" PRId32 " starts at offset %" PRId64, tp->topic, tp->partition,
                      next);
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(k->rk, parts);
    if (err)
        kafka_status_error(k, 'c', err, "assign");
    else
        kafka_status_clear(k, 'c');
    kafka_status_mark(k);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct kafka *k = opaque;
    /* What was polled before goes to the store first, under the old assignment. */
    int r = batch_flush(k);
    if (r < 0) {
        log_warnx("kafka: %zu records polled before a rebalance are dropped (the store refused "
                  "them); Kafka delivers them again",
                  k->n_batch);
        batch_clear(k);
    }
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && !k->stopping) {
        assign(k, parts);
        return;
    }
    if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        kafka_status_error(k, 'c', err, "rebalance");
    for (size_t i = 0; i < k->n_parts; i++)
        k->parts[i].assigned = false;
    rd_kafka_assign(rk, NULL);
    kafka_status_mark(k);
}

/* ---- polling ------------------------------------------------------------------------------------
 */

static void consumer_message_error(struct kafka *k, rd_kafka_message_t *m)
{
    const char *what = rd_kafka_message_errstr(m);
    if (m->rkt && m->partition >= 0)
        partition_error(k, m->partition, "%s", what);
    kafka_status_error(k, 'c', m->err, what);
}

/* Polls (timeout 0) until the queue is empty or a batch is full, then stores the batch. */
static void round_(struct kafka *k)
{
    if (!k->consuming || ev_is_active(&k->cretry))
        return;
    bool full = false;
    while (!full) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(k->rk, 0);
        if (!m)
            break;
        if (!k->consuming) { /* stopped from a callback */
            rd_kafka_message_destroy(m);
            break;
        }
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                consumer_message_error(k, m);
            rd_kafka_message_destroy(m);
            continue;
        }
        struct kafka_partition *p = kafka_partition_get(k, m->partition, true);
        if (p && p->next >= 0 && m->offset < p->next) {
            /* Already in the store (delivered again after a lost commit): nothing to do. */
            rd_kafka_message_destroy(m);
            continue;
        }
        if (k->n_batch == KAFKA_BATCH_MAX) {
            rd_kafka_message_destroy(m); /* cannot happen: full stops the loop */
            break;
        }
        k->batch[k->n_batch++] = m;
        k->batch_bytes += m->len;
        kafka_status_up(k, 'c', true);
        full = k->n_batch == KAFKA_BATCH_MAX || k->batch_bytes >= KAFKA_BATCH_BYTES;
    }
    int r = batch_flush(k);
    if (r < 0) {
        batch_failed(k, r);
        return;
    }
    if (full && !ev_is_active(&k->cagain))
        ev_timer_start(k->ctx->loop, &k->cagain); /* the fd only fires on the next new event */
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct kafka *k = w->data;
    kafka_queue_drain_fd(w->fd);
    round_(k);
}

static void on_again(struct ev_loop *loop, ev_timer *w, int revents)
{
    round_(w->data);
}

/* ---- set-up and tear-down -------------------------------------------------------------------- */

int kafka_consumer_new(struct kafka *k)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int r = 0;
    r |= kafka_conf_set(conf, "group.id", k->group);
    r |= kafka_conf_set(conf, "group.instance.id", k->agent_id);
    r |= kafka_conf_set(conf, "enable.auto.commit", "false");
    r |= kafka_conf_set(conf, "enable.auto.offset.store", "false");
    r |= kafka_conf_set(conf, "isolation.level", "read_committed");
    r |= kafka_conf_set(conf, "auto.offset.reset", "earliest");
    r |= kafka_conf_set(conf, "enable.partition.eof", "false");
    /* A record over the protocol's 16 MiB must still arrive, to be refused in words. */
    r |= kafka_conf_set(conf, "fetch.max.bytes", "52428800");
    r |= kafka_conf_set(conf, "receive.message.max.bytes", "60000000");
    r |= kafka_conf_set(conf, "queued.max.messages.kbytes", "32768");
    if (r) {
        rd_kafka_conf_destroy(conf);
        return -EINVAL;
    }
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
    r = kafka_handle_new(k, RD_KAFKA_CONSUMER, conf, &k->rk);
    if (r < 0)
        return r;
    k->batch = calloc(KAFKA_BATCH_MAX, sizeof(*k->batch));
    if (!k->batch)
        return -ENOMEM;
    rd_kafka_poll_set_consumer(k->rk); /* the main queue (errors, logs, stats) goes there too */
    k->cq = rd_kafka_queue_get_consumer(k->rk);
    rd_kafka_set_log_queue(k->rk, NULL);
    r = kafka_queue_watch(k, k->cq, k->cfd, &k->cio, on_readable);
    if (r < 0)
        return r;
    ev_timer_init(&k->cagain, on_again, 0., 0.);
    ev_timer_init(&k->cretry, on_retry, 0., 0.);
    ev_timer_init(&k->commit_timer, on_commit_timer, KAFKA_COMMIT_RETRY_S, KAFKA_COMMIT_RETRY_S);
    k->cagain.data = k->cretry.data = k->commit_timer.data = k;
    return 0;
}

int kafka_consumer_start(struct kafka *k)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, k->commands_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(k->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        kafka_status_error(k, 'c', err, "subscribe");
        return -EINVAL;
    }
    k->consuming = true;
    ev_io_start(k->ctx->loop, &k->cio);
    ev_timer_start(k->ctx->loop, &k->commit_timer);
    round_(k); /* whatever is queued already (the fd fires only on the next one) */
    return 0;
}

void kafka_consumer_stop(struct kafka *k)
{
    if (!k->consuming)
        return;
    /* What was polled is stored (it normally was, each round stores its batch). */
    if (batch_flush(k) < 0)
        batch_clear(k);
    k->consuming = false;
    k->stopping = true;
    ev_io_stop(k->ctx->loop, &k->cio);
    ev_timer_stop(k->ctx->loop, &k->cagain);
    ev_timer_stop(k->ctx->loop, &k->cretry);
    ev_timer_stop(k->ctx->loop, &k->commit_timer);
    log_info("kafka: no more commands are taken (stopping)");
}

static int64_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kafka_consumer_close(struct kafka *k, int64_t deadline)
{
    kafka_consumer_stop(k);
    if (k->cq)
        rd_kafka_queue_io_event_enable(k->cq, -1, NULL, 0);
    if (k->consuming || k->stopping) {
        /* The last positions to Kafka, waited for until half the deadline: the store has them
         * anyway. Records polled meanwhile are dropped unhandled (delivered again). */
        commit_positions(k);
        int64_t until = mono_now() + (deadline - mono_now()) / 2;
        while (k->commits_in_flight && mono_now() < until) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(k->rk, 50);
            if (m)
                rd_kafka_message_destroy(m);
        }
        /* Static membership: closing does not leave the group, a restart takes its place. */
        rd_kafka_error_t *e = rd_kafka_consumer_close_queue(k->rk, k->cq);
        if (e) {
            log_debug("kafka: consumer close: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
        while (!rd_kafka_consumer_closed(k->rk) && mono_now() < deadline) {
            rd_kafka_event_t *ev = rd_kafka_queue_poll(k->cq, 50);
            if (!ev)
                continue;
            if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
                rd_kafka_assign(k->rk, NULL);
            rd_kafka_event_destroy(ev);
        }
        if (!rd_kafka_consumer_closed(k->rk))
            log_warnx("kafka: the consumer did not close within %d ms", KAFKA_CLOSE_MS);
    }
    batch_clear(k);
    free(k->batch);
    k->batch = NULL;
    if (k->cq)
        rd_kafka_queue_destroy(k->cq);
    k->cq = NULL;
    rd_kafka_destroy_flags(k->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    k->rk = NULL;
    for (size_t i = 0; i < k->n_parts; i++)
        k->parts[i].assigned = false;
}

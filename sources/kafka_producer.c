/* kafka_producer: the data channel. An idempotent producer (acks=all, no message timeout) takes
 * the status events of the store's outbox, oldest first, to {prefix}.status keyed by the agent
 * id; an outbox row is deleted only after its delivery report said it was written. Telemetry
 * batches go to {prefix}.telemetry from a small queue of our own: at most
 * KAFKA_TELEMETRY_INFLIGHT in librdkafka at once, the oldest queued one dropped (and counted)
 * when the queue is full, so a broker that is away costs bounded memory and never blocks. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/array.h"
#include "lib/backoff.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sources/kafka_internal.h"

static void drain(struct kafka *k);
static void acks_flush(struct kafka *k);

/* ---- status events from the outbox ----------------------------------------------------------- */

/* The outbox row with its event_id (StatusEvent field 2, the row's id) appended: a field given
 * twice counts with its last value in protobuf, so the payload written before the id was known
 * needs no re-encoding. */
static uint8_t *with_event_id(const void *payload, size_t len, int64_t id, size_t *ret_len)
{
    uint8_t *b = malloc(len + 11);
    if (!b)
        return NULL;
    if (len)
        memcpy(b, payload, len);
    size_t n = len;
    b[n++] = 0x10; /* field 2, varint */
    uint64_t v = (uint64_t)id;
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        b[n++] = v ? (uint8_t)(byte | 0x80) : byte;
    } while (v);
    *ret_len = n;
    return b;
}

/* Errors that handing the same bytes again can never cure: the row is dropped (logged and
 * counted as a delivery failure) instead of holding every later status event behind it. */
static bool undeliverable(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || err == RD_KAFKA_RESP_ERR_INVALID_MSG ||
           err == RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE || err == RD_KAFKA_RESP_ERR_INVALID_RECORD ||
           err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
}

static void drop_row(struct kafka *k, int64_t id, size_t len, rd_kafka_resp_err_t err)
{
    log_error("kafka: status event %" PRId64 " (%zu bytes) can never be written to %s (%s); it "
              "is dropped from the outbox so that the events after it are delivered",
              id, len, k->status_topic, rd_kafka_err2str(err));
    k->delivery_failures++;
    int64_t *slot = ARRAY_PUSH(&k->acks, &k->n_acks, &k->cap_acks);
    if (slot)
        *slot = id;
}

/* Hands outbox rows after sent_upto to librdkafka, up to KAFKA_INFLIGHT_MAX in flight. */
static void drain(struct kafka *k)
{
    if (!k->rp || k->resend || k->in_flight >= KAFKA_INFLIGHT_MAX)
        return;
    struct store_outbox_msg *msgs = NULL;
    size_t n = 0, want = KAFKA_INFLIGHT_MAX - k->in_flight;
    if (want > 256)
        want = 256;
    if (store_outbox_peek_after(k->store, k->sent_upto, k->status_topic, want, &msgs, &n) < 0) {
        log_warnx("kafka: cannot read the outbox: %s", store_errmsg(k->store));
        return;
    }
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        const struct store_outbox_msg *m = &msgs[i];
        size_t len = 0;
        uint8_t *value = with_event_id(m->payload, m->payload_len, m->id, &len);
        if (!value)
            break;
        rd_kafka_resp_err_t err = rd_kafka_producev(
            k->rp, RD_KAFKA_V_RKT(k->status_rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_KEY(m->key ? m->key : k->agent_id, strlen(m->key ? m->key : k->agent_id)),
            RD_KAFKA_V_VALUE(value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
            RD_KAFKA_V_OPAQUE((void *)(intptr_t)m->id), RD_KAFKA_V_END);
        if (err) {
            free(value);
            if (undeliverable(err)) {
                drop_row(k, m->id, len, err);
                k->sent_upto = m->id;
                continue;
            }
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                kafka_status_error(k, 'p', err, "produce");
            break;
        }
        k->sent_upto = m->id;
        k->in_flight++;
        sent++;
    }
    store_outbox_msg_array_free(msgs, n);
    if (k->n_acks && !k->in_flight)
        acks_flush(k); /* rows dropped with nothing in flight: no delivery report comes */
    /* More rows than one peek: the next delivery reports call drain() again. */
    if (sent)
        kafka_status_mark(k);
}

/* The delivered rows leave the outbox, all in one transaction. */
static void acks_flush(struct kafka *k)
{
    if (!k->n_acks)
        return;
    struct store *st = k->store;
    bool own = !store_in_transaction(st);
    if (own && store_begin(st) < 0) {
        log_warnx("kafka: cannot delete %zu delivered status events from the outbox yet: %s",
                  k->n_acks, store_errmsg(st));
        return; /* kept: tried again after the next delivery */
    }
    int r = 0;
    for (size_t i = 0; i < k->n_acks && r >= 0; i++) {
        r = store_outbox_ack(st, k->acks[i]);
        if (r == -ENOENT) /* dropped by the outbox's bounds, or delivered twice */
            r = 0;
    }
    if (own)
        r = r < 0 ? (store_rollback(st), r) : store_commit(st);
    if (r < 0) {
        log_warnx("kafka: cannot delete delivered status events from the outbox: %s",
                  store_errmsg(st));
        return;
    }
    k->delivered += k->n_acks;
    k->n_acks = 0;
    kafka_status_mark(k);
}

/* ---- telemetry --------------------------------------------------------------------------------
 */

static void tel_pop(struct kafka *k, bool dropped)
{
    struct kafka_tel *t = &k->tel[k->tel_head];
    k->tel_bytes -= t->len;
    free(t->buf);
    *t = (struct kafka_tel){0};
    k->tel_head = (k->tel_head + 1) % KAFKA_TELEMETRY_QUEUE;
    k->tel_n--;
    if (dropped)
        k->tel_dropped++;
}

static void tel_send(struct kafka *k)
{
    while (k->rp && k->tel_n && k->tel_in_flight < KAFKA_TELEMETRY_INFLIGHT) {
        struct kafka_tel *t = &k->tel[k->tel_head];
        rd_kafka_resp_err_t err = rd_kafka_producev(
            k->rp, RD_KAFKA_V_RKT(k->telemetry_rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_KEY(k->agent_id, strlen(k->agent_id)), RD_KAFKA_V_VALUE(t->buf, t->len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_OPAQUE(NULL), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return;
        if (err) {
            log_debug("kafka: telemetry batch dropped: %s", rd_kafka_err2str(err));
            tel_pop(k, true);
            continue;
        }
        t->buf = NULL; /* librdkafka's now */
        k->tel_bytes -= t->len;
        t->len = 0;
        tel_pop(k, false);
        k->tel_in_flight++;
    }
}

void kafka_telemetry_emit(void *userdata, const uint8_t *buf, size_t len,
                          const struct telemetry_sample *sample)
{
    struct kafka *k = userdata;
    if (!k->rp || len > KAFKA_TELEMETRY_BYTES) {
        k->tel_dropped++;
        return;
    }
    while (k->tel_n == KAFKA_TELEMETRY_QUEUE ||
           (k->tel_n && k->tel_bytes + len > KAFKA_TELEMETRY_BYTES))
        tel_pop(k, true); /* the oldest goes: the newest sample says more */
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        k->tel_dropped++;
        return;
    }
    memcpy(copy, buf, len);
    size_t at = (k->tel_head + k->tel_n) % KAFKA_TELEMETRY_QUEUE;
    k->tel[at] = (struct kafka_tel){copy, len};
    k->tel_n++;
    k->tel_bytes += len;
    tel_send(k);
}

/* ---- delivery reports --------------------------------------------------------------------------
 */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct kafka *k = opaque;
    int64_t id = (int64_t)(intptr_t)m->_private;
    if (!id) { /* telemetry */
        if (k->tel_in_flight)
            k->tel_in_flight--;
        if (m->err) {
            k->tel_dropped++;
            log_debug("kafka: telemetry batch not delivered: %s", rd_kafka_err2str(m->err));
        } else {
            k->tel_sent++;
        }
        return;
    }
    if (k->in_flight)
        k->in_flight--;
    if (m->err && undeliverable(m->err)) {
        drop_row(k, id, m->len, m->err);
        return;
    }
    if (m->err) {
        /* Kept in the outbox: handed again, in order, once nothing is in flight. */
        k->resend = true;
        if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
            return; /* closing */
        k->delivery_failures++;
        char why[512];
        snprintf(why, sizeof(why), "status event %" PRId64 " not delivered to %s: %s", id,
                 k->status_topic, rd_kafka_err2str(m->err));
        kafka_status_error(k, 'p', m->err, why);
        return;
    }
    int64_t *slot = ARRAY_PUSH(&k->acks, &k->n_acks, &k->cap_acks);
    if (slot)
        *slot = id;
    backoff_reset(&k->resend_backoff);
    kafka_status_clear(k, 'p');
}

static void on_resend(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct kafka *k = w->data;
    ev_timer_stop(loop, &k->packs);
    acks_flush(k); /* what was delivered is not handed again */
    k->resend = false;
    k->sent_upto = 0;
    drain(k);
}

static void on_acks(struct ev_loop *loop, ev_timer *w, int revents)
{
    acks_flush(w->data);
}

/* Delivery reports come a few at a time (one per produce request): their rows are deleted
 * together, KAFKA_ACKS_EVERY_S later or once KAFKA_INFLIGHT_MAX wait, instead of a store commit
 * for each handful. A crash meanwhile sends them again at the next start (same event ids). */
static void acks_soon(struct kafka *k)
{
    if (k->n_acks >= KAFKA_INFLIGHT_MAX) {
        ev_timer_stop(k->ctx->loop, &k->packs);
        acks_flush(k);
    } else if (k->n_acks && !ev_is_active(&k->packs)) {
        ev_timer_start(k->ctx->loop, &k->packs);
    }
}

static void serve(struct kafka *k)
{
    while (rd_kafka_poll(k->rp, 0) > 0)
        ;
    acks_soon(k);
    if (k->resend && !k->in_flight && !ev_is_active(&k->pretry)) {
        double in = (double)backoff_fail(&k->resend_backoff) / 1000.0;
        ev_timer_set(&k->pretry, in, 0.);
        ev_timer_start(k->ctx->loop, &k->pretry);
    }
    drain(k);
    tel_send(k);
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct kafka *k = w->data;
    kafka_queue_drain_fd(w->fd);
    serve(k);
}

static void on_kick(struct ev_loop *loop, ev_timer *w, int revents)
{
    drain(w->data);
}

void kafka_producer_kick(struct kafka *k)
{
    if (k->rp && !ev_is_active(&k->pkick))
        ev_timer_start(k->ctx->loop, &k->pkick);
}

/* ---- set-up and tear-down -----------------------------------------------------------------------
 */

int kafka_producer_new(struct kafka *k)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int r = 0;
    r |= kafka_conf_set(conf, "enable.idempotence", "true");
    r |= kafka_conf_set(conf, "acks", "all");
    r |= kafka_conf_set(conf, "linger.ms", "5");
    /* Never given up: an event waits for the broker (the outbox holds it across restarts). */
    r |= kafka_conf_set(conf, "message.timeout.ms", "0");
    if (r) {
        rd_kafka_conf_destroy(conf);
        return -EINVAL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    r = kafka_handle_new(k, RD_KAFKA_PRODUCER, conf, &k->rp);
    if (r < 0)
        return r;
    k->status_rkt = rd_kafka_topic_new(k->rp, k->status_topic, NULL);
    k->telemetry_rkt = rd_kafka_topic_new(k->rp, k->telemetry_topic, NULL);
    if (!k->status_rkt || !k->telemetry_rkt)
        return -ENOMEM;
    k->pq = rd_kafka_queue_get_main(k->rp);
    rd_kafka_set_log_queue(k->rp, NULL);
    r = kafka_queue_watch(k, k->pq, k->pfd, &k->pio, on_readable);
    if (r < 0)
        return r;
    ev_timer_init(&k->pkick, on_kick, 0., 0.);
    ev_timer_init(&k->pretry, on_resend, 1., 0.);
    ev_timer_init(&k->packs, on_acks, KAFKA_ACKS_EVERY_S, 0.);
    k->packs.data = k;
    struct backoff_policy bp = {
        .initial_ms = 1000, .multiplier = 2.0, .max_ms = 60000, .jitter = 0.2};
    backoff_init(&k->resend_backoff, &bp, 0);
    k->pkick.data = k->pretry.data = k;
    return 0;
}

int kafka_producer_start(struct kafka *k)
{
    ev_io_start(k->ctx->loop, &k->pio);
    serve(k);
    return 0;
}

static int64_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kafka_producer_close(struct kafka *k, int64_t deadline)
{
    struct ev_loop *loop = k->ctx->loop;
    ev_io_stop(loop, &k->pio);
    ev_timer_stop(loop, &k->pkick);
    ev_timer_stop(loop, &k->pretry);
    ev_timer_stop(loop, &k->packs);
    if (k->pq)
        rd_kafka_queue_io_event_enable(k->pq, -1, NULL, 0);
    /* The results of the last moments too, if the broker takes them in time. */
    drain(k);
    int64_t left = deadline - mono_now();
    rd_kafka_resp_err_t err = rd_kafka_flush(k->rp, (int)(left > 100 ? left : 100));
    acks_flush(k);
    if (err)
        log_warnx("kafka: %d messages not delivered within the close deadline; the status "
                  "events stay in the outbox for the next start",
                  rd_kafka_outq_len(k->rp));
    rd_kafka_purge(k->rp, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    while (rd_kafka_poll(k->rp, 0) > 0)
        ;
    k->n_acks = 0; /* a purged message is no ack */
    if (k->status_rkt)
        rd_kafka_topic_destroy(k->status_rkt);
    if (k->telemetry_rkt)
        rd_kafka_topic_destroy(k->telemetry_rkt);
    if (k->pq)
        rd_kafka_queue_destroy(k->pq);
    rd_kafka_destroy(k->rp);
    k->rp = NULL;
    k->status_rkt = k->telemetry_rkt = NULL;
    k->pq = NULL;
    free(k->acks);
    k->acks = NULL;
    while (k->tel_n)
        tel_pop(k, true);
}

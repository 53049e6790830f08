/* kafka: set-up and tear-down of both handles, their librdkafka configuration and the
 * callbacks they share. The consumer is in kafka_consumer.c, the producer in kafka_producer.c. */
#include "sources/kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/x509_vfy.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sources/kafka_internal.h"

int64_t kafka_now_ms(void)
{
    return source_now_ms();
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool kafka_wanted(const struct config *cfg)
{
    return !cfg->local.enabled && cfg->kafka.brokers.n > 0;
}

int kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
    char err[512];
    if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        log_error("kafka: librdkafka refused %s=%s: %s", key, value, err);
        return -EINVAL;
    }
    return 0;
}

/* ---- callbacks (on the loop's thread, served by our polls, unless said otherwise) ---------- */

static char which_of(rd_kafka_t *rk)
{
    return rd_kafka_type(rk) == RD_KAFKA_CONSUMER ? 'c' : 'p';
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kafka_status_error(opaque, which_of(rk), (rd_kafka_resp_err_t)err, reason);
}

/* librdkafka's own lines are for debugging: what matters comes through on_error, in words. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (log_get_level() < LOG_LEVEL_DEBUG)
        return;
    char fields[160];
    snprintf(fields, sizeof(fields), "rdkafka=%s facility=%s level=%d", rd_kafka_name(rk), fac,
             level);
    log_msg(LOG_LEVEL_DEBUG, fields, "%s", buf);
}

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    kafka_status_stats(opaque, which_of(rk), json, len);
    return 0; /* librdkafka frees json */
}

/* Runs on a broker thread during the TLS handshake: only OpenSSL's verdict is kept (atomics),
 * so that the error the loop reports names the cause (a CA that did not sign the broker's
 * certificate, a name it does not carry), which librdkafka's own error does not. */
static int on_verify(rd_kafka_t *rk, const char *broker_name, int32_t broker_id, int *x509_error,
                     int depth, const char *buf, size_t size, char *errstr, size_t errstr_size,
                     void *opaque)
{
    struct kafka *k = opaque;
    if (*x509_error == X509_V_OK)
        return 1;
    int h = which_of(rk) == 'c' ? 0 : 1;
    atomic_store(&k->x509_depth[h], depth);
    atomic_store(&k->x509_error[h], *x509_error);
    snprintf(errstr, errstr_size, "%s: certificate at depth %d: %s", broker_name, depth,
             X509_verify_cert_error_string(*x509_error));
    return 0;
}

/* ---- handles ----------------------------------------------------------------------------------
 */

static int conf_common(struct kafka *k, rd_kafka_conf_t *conf, const char *role)
{
    const struct config *cfg = k->cfg;
    char id[320];
    snprintf(id, sizeof(id), "axion-agent-%s-%s", k->agent_id, role);
    int r = 0;
    r |= kafka_conf_set(conf, "bootstrap.servers", k->brokers);
    r |= kafka_conf_set(conf, "client.id", id);
    r |= kafka_conf_set(conf, "reconnect.backoff.ms", "100");
    r |= kafka_conf_set(conf, "reconnect.backoff.max.ms", "5000");
    r |= kafka_conf_set(conf, "socket.keepalive.enable", "true");
    r |= kafka_conf_set(conf, "statistics.interval.ms", "5000");
    /* A topic created after the start (or one that went away) is seen within a minute. */
    r |= kafka_conf_set(conf, "topic.metadata.refresh.interval.ms", "60000");
    r |= kafka_conf_set(conf, "log.queue", "true");
    r |= kafka_conf_set(conf, "log.connection.close", "false");
    if (streq(cfg->kafka.security, "ssl")) {
        r |= kafka_conf_set(conf, "security.protocol", "ssl");
        r |= kafka_conf_set(conf, "ssl.ca.location", cfg->kafka.ca_file);
        r |= kafka_conf_set(conf, "ssl.certificate.location", cfg->kafka.cert_file);
        r |= kafka_conf_set(conf, "ssl.key.location", cfg->kafka.key_file);
        /* librdkafka 2.0's default, said here: it is what verifies the broker's name. */
        r |= kafka_conf_set(conf, "ssl.endpoint.identification.algorithm", "https");
        rd_kafka_conf_set_ssl_cert_verify_cb(conf, on_verify);
    } else {
        r |= kafka_conf_set(conf, "security.protocol", "plaintext");
    }
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    return r ? -EINVAL : 0;
}

int kafka_handle_new(struct kafka *k, rd_kafka_type_t type, rd_kafka_conf_t *conf, rd_kafka_t **ret)
{
    int r = conf_common(k, conf, type == RD_KAFKA_CONSUMER ? "consumer" : "producer");
    if (r < 0) {
        rd_kafka_conf_destroy(conf);
        return r;
    }
    /* librdkafka's threads inherit the mask: every signal stays with the loop (ev_signal). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        kafka_status_error(k, type == RD_KAFKA_CONSUMER ? 'c' : 'p', RD_KAFKA_RESP_ERR__INVALID_ARG,
                           err);
        return -EINVAL;
    }
    *ret = rk;
    return 0;
}

void kafka_queue_drain_fd(int fd)
{
    char buf[256];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

int kafka_queue_watch(struct kafka *k, rd_kafka_queue_t *q, int fds[2], ev_io *w,
                      void (*cb)(struct ev_loop *, ev_io *, int))
{
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return -errno;
    rd_kafka_queue_io_event_enable(q, fds[1], "1", 1);
    ev_io_init(w, cb, fds[0], EV_READ);
    w->data = k;
    return 0;
}

/* ---- the channel ------------------------------------------------------------------------------
 */

static char *join_brokers(const struct config_strv *v)
{
    struct buf b = BUF_INIT(64 << 10);
    for (size_t i = 0; i < v->n; i++)
        if ((i && buf_putc(&b, ',') < 0) || buf_puts(&b, v->v[i]) < 0)
            return NULL;
    return buf_detach(&b, NULL);
}

/* What a TLS config needs, checked before librdkafka reads the files: the error names the key. */
static int check_tls(struct kafka *k)
{
    const struct config *cfg = k->cfg;
    if (!streq(cfg->kafka.security, "ssl"))
        return 0;
    static const struct {
        const char *key;
        size_t off;
    } files[] = {
        {"kafka.ca_file", offsetof(struct config, kafka.ca_file)},
        {"kafka.cert_file", offsetof(struct config, kafka.cert_file)},
        {"kafka.key_file", offsetof(struct config, kafka.key_file)},
    };
    char why[1024];
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        const char *path = *(char *const *)((const char *)cfg + files[i].off);
        if (!path || !*path)
            snprintf(why, sizeof(why),
                     "kafka.security = ssl needs %s (and kafka.ca_file, kafka.cert_file, "
                     "kafka.key_file in all)",
                     files[i].key);
        else if (access(path, R_OK) < 0)
            snprintf(why, sizeof(why), "%s %s: %s", files[i].key, path, strerror(errno));
        else
            continue;
        kafka_status_final(k, "error", why);
        log_error("kafka: %s; the Kafka channels stay off", why);
        return -EINVAL;
    }
    return 0;
}

int kafka_new(const struct source_ctx *ctx, struct kafka **ret)
{
    const struct config *cfg = ctx->cfg;
    struct kafka *k = calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    k->ctx = ctx;
    k->cfg = cfg;
    k->store = ctx->store;
    k->started_at_ms = source_now_ms();
    k->cfd[0] = k->cfd[1] = k->pfd[0] = k->pfd[1] = -1;
    const char *prefix = cfg->kafka.topic_prefix;
    k->agent_id = strdup(cfg->agent.id);
    k->brokers = join_brokers(&cfg->kafka.brokers);
    if (!k->agent_id || !k->brokers ||
        asprintf(&k->commands_topic, "%s.commands.%s", prefix, cfg->agent.id) < 0 ||
        asprintf(&k->status_topic, "%s.status", prefix) < 0 ||
        asprintf(&k->telemetry_topic, "%s.telemetry", prefix) < 0 ||
        asprintf(&k->group, "%s.agent.%s", prefix, cfg->agent.id) < 0) {
        k->commands_topic = k->status_topic = k->telemetry_topic = k->group = NULL;
        kafka_free(k);
        return -ENOMEM;
    }
    const char *hook = getenv("AXION_TEST_KAFKA_KILL_AFTER_STORE_COMMIT");
    if (hook && *hook) {
        k->kill_after = strtol(hook, NULL, 10);
        log_warnx("kafka: test hook armed: this process kills itself after the store commit of "
                  "batch %ld",
                  k->kill_after);
    }
    int r = check_tls(k);
    if (r == 0)
        r = kafka_status_start(k);
    if (r == 0)
        r = kafka_consumer_new(k);
    if (r == 0)
        r = kafka_producer_new(k);
    if (r < 0) {
        kafka_status_write(k, true);
        kafka_free(k);
        return r;
    }
    tracker_set_sink(ctx->tracker, "kafka", kafka_report_final, k);
    r = ctx->observe(ctx->userdata, kafka_report_pass, k);
    if (r < 0) {
        kafka_free(k);
        return r;
    }
    log_info("kafka: brokers %s (%s), commands from %s (group %s), status to %s", k->brokers,
             cfg->kafka.security, k->commands_topic, k->group, k->status_topic);
    *ret = k;
    return 0;
}

int kafka_start(struct kafka *k)
{
    int r = kafka_producer_start(k);
    if (r == 0)
        r = kafka_consumer_start(k);
    if (r == 0) {
        k->started = true;
        kafka_status_write(k, true);
    }
    return r;
}

void kafka_stop_consuming(struct kafka *k)
{
    if (k)
        kafka_consumer_stop(k);
}

static void close_fds(int fds[2])
{
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
}

struct kafka *kafka_free(struct kafka *k)
{
    if (!k)
        return NULL;
    if (k->ctx) {
        tracker_set_sink(k->ctx->tracker, "kafka", NULL, NULL);
        k->ctx->observe(k->ctx->userdata, NULL, k);
    }
    int64_t deadline = mono_ms() + KAFKA_CLOSE_MS;
    if (k->rk)
        kafka_consumer_close(k, deadline);
    if (k->rp)
        kafka_producer_close(k, deadline);
    if (k->started)
        kafka_status_final(k, "stopped", NULL);
    kafka_status_stop(k);
    close_fds(k->cfd);
    close_fds(k->pfd);
    kafka_report_release(k);
    free(k->parts);
    free(k->agent_id);
    free(k->brokers);
    free(k->commands_topic);
    free(k->status_topic);
    free(k->telemetry_topic);
    free(k->group);
    free(k);
    return NULL;
}

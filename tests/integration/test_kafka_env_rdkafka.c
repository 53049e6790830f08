/* Debian's librdkafka (the one the agent links) against the test broker of
 * tests/env/kafka-up.sh: topics made with its admin API, an idempotent acks=all producer and a
 * consumer configured the way the agent's will be (classic group protocol, static membership,
 * read_committed, no auto commit, no auto offset store, synchronous commit), over plaintext and
 * over TLS with the test client certificate and server name verification on; and the TLS
 * failures the agent must report clearly: a CA that is not the broker's, a broker certificate
 * for another name, a client certificate the broker does not know. What was learnt is in
 * docs/internals/kafka-env.md. Needs $AXION_ENV_DIR/kafka.env (tests/env/up.sh). */
#include "support/testutil.h"

#include <librdkafka/rdkafka.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEADLINE_MS 60000
#define N_MSGS      100

/* ---- the env file ------------------------------------------------------------------------- */

#define MAX_ENV 32
static struct {
    char key[64];
    char value[512];
} env[MAX_ENV];
static size_t n_env;

static const char *env_get(const char *key)
{
    for (size_t i = 0; i < n_env; i++)
        if (strcmp(env[i].key, key) == 0)
            return env[i].value;
    fail_msg("kafka.env has no %s", key);
    return NULL;
}

static int load_env(void **state)
{
    const char *dir = getenv("AXION_ENV_DIR");
    char path[512], line[700];
    snprintf(path, sizeof path, "%s/kafka.env", dir && *dir ? dir : "/tmp/axion-env");
    FILE *f = fopen(path, "re");
    if (!f) {
        fprintf(stderr, "%s: cannot open (%m): the test broker is not up (tests/env/up.sh)\n",
                path);
        return -1;
    }
    while (fgets(line, sizeof line, f) && n_env < MAX_ENV) {
        line[strcspn(line, "\n")] = '\0';
        char *eq = strchr(line, '=');
        if (line[0] == '#' || !eq || (size_t)(eq - line) >= sizeof env[0].key ||
            strlen(eq + 1) >= sizeof env[0].value)
            continue;
        *eq = '\0';
        snprintf(env[n_env].key, sizeof env[0].key, "%s", line);
        snprintf(env[n_env].value, sizeof env[0].value, "%s", eq + 1);
        n_env++;
    }
    fclose(f);
    return 0;
}

/* ---- clients -------------------------------------------------------------------------------- */

/* What a client's error and log callbacks saw. */
struct seen {
    int n_errors;
    rd_kafka_resp_err_t first_err;
    char first_reason[512];
    char log[4096];
    int x509_error; /* the first certificate verification error, from the verify callback */
    int x509_depth;
};

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct seen *s = opaque;
    if (s->n_errors++ == 0) {
        s->first_err = err;
        snprintf(s->first_reason, sizeof s->first_reason, "%s", reason);
    }
}

/* librdkafka logs from its own threads. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    struct seen *s = rd_kafka_opaque(rk);
    if (!s)
        return;
    pthread_mutex_lock(&log_lock);
    size_t len = strlen(s->log);
    if (len + 2 < sizeof s->log)
        snprintf(s->log + len, sizeof s->log - len, "%s: %s\n", fac, buf);
    pthread_mutex_unlock(&log_lock);
}

/* Without it librdkafka says "certificate verify failed" for every cause; OpenSSL's own code
 * tells "unable to get local issuer certificate" (20) from "hostname mismatch" (62). Runs on a
 * broker thread, during the handshake. */
static int on_verify(rd_kafka_t *rk, const char *broker_name, int32_t broker_id, int *x509_error,
                     int depth, const char *buf, size_t size, char *errstr, size_t errstr_size,
                     void *opaque)
{
    struct seen *s = opaque;
    if (*x509_error == X509_V_OK)
        return 1;
    pthread_mutex_lock(&log_lock);
    if (!s->x509_error) {
        s->x509_error = *x509_error;
        s->x509_depth = depth;
    }
    pthread_mutex_unlock(&log_lock);
    snprintf(errstr, errstr_size, "%s: certificate at depth %d: %s", broker_name, depth,
             X509_verify_cert_error_string(*x509_error));
    return 0;
}

enum listener {
    PLAIN,
    TLS,
    TLS_OTHER_CA,
    TLS_OTHER_CLIENT,
    TLS_WRONG_NAME,
    TLS_WRONG_NAME_NOVERIFY
};

static void set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
    char err[512];
    if (rd_kafka_conf_set(conf, key, value, err, sizeof err) != RD_KAFKA_CONF_OK)
        fail_msg("%s=%s: %s", key, value, err);
}

/* The TLS settings the agent's kafka.security = ssl will need (docs/internals/kafka-env.md). */
static rd_kafka_conf_t *client_conf(enum listener l, struct seen *seen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_opaque(conf, seen);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    set(conf, "client.id", "axion-test-rdkafka");
    set(conf, "reconnect.backoff.ms", "50");
    set(conf, "reconnect.backoff.max.ms", "500");
    if (l == PLAIN) {
        set(conf, "bootstrap.servers", env_get("KAFKA_BOOTSTRAP"));
        return conf;
    }
    bool wrong_name = l == TLS_WRONG_NAME || l == TLS_WRONG_NAME_NOVERIFY;
    set(conf, "bootstrap.servers",
        env_get(wrong_name ? "KAFKA_BOOTSTRAP_TLS_WRONG_NAME" : "KAFKA_BOOTSTRAP_TLS"));
    set(conf, "security.protocol", "ssl");
    set(conf, "ssl.ca.location",
        env_get(l == TLS_OTHER_CA ? "KAFKA_TLS_OTHER_CA" : "KAFKA_TLS_CA"));
    bool other = l == TLS_OTHER_CLIENT;
    set(conf, "ssl.certificate.location",
        env_get(other ? "KAFKA_TLS_OTHER_CLIENT_CERT" : "KAFKA_TLS_CLIENT_CERT"));
    set(conf, "ssl.key.location",
        env_get(other ? "KAFKA_TLS_OTHER_CLIENT_KEY" : "KAFKA_TLS_CLIENT_KEY"));
    set(conf, "ssl.endpoint.identification.algorithm",
        l == TLS_WRONG_NAME_NOVERIFY ? "none" : "https");
    assert_int_equal(rd_kafka_conf_set_ssl_cert_verify_cb(conf, on_verify), RD_KAFKA_CONF_OK);
    return conf;
}

static rd_kafka_t *client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
    if (!rk)
        fail_msg("rd_kafka_new: %s", err);
    return rk;
}

static void topic_name(char *out, size_t n, const char *what)
{
    snprintf(out, n, "axt-rdkafka-%d-%s-%u", (int)getpid(), what, (unsigned)(tu_now_ms() % 100000));
}

/* Creates a topic with the admin API and waits for its leader. */
static void create_topic(enum listener l, const char *name, int partitions)
{
    struct seen seen = {0};
    rd_kafka_t *rk = client_new(RD_KAFKA_PRODUCER, client_conf(l, &seen));
    char err[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, partitions, 1, err, sizeof err);
    assert_non_null(nt);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, DEADLINE_MS);
    if (!ev)
        fail_msg("CreateTopics %s: no answer within %d ms (%s)", name, DEADLINE_MS,
                 seen.first_reason);
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    assert_non_null(res);
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
    assert_int_equal(n, 1);
    if (rd_kafka_topic_result_error(tr[0]))
        fail_msg("CreateTopics %s: %s", name, rd_kafka_topic_result_error_string(tr[0]));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);

    /* The leader is known once the metadata says so. */
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, name, NULL);
    uint64_t end = tu_now_ms() + DEADLINE_MS;
    bool ready = false;
    while (!ready && tu_now_ms() < end) {
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(rk, 0, rkt, &md, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            ready = md->topic_cnt == 1 && !md->topics[0].err &&
                    md->topics[0].partition_cnt == partitions;
            for (int i = 0; ready && i < md->topics[0].partition_cnt; i++)
                ready = md->topics[0].partitions[i].leader >= 0;
            rd_kafka_metadata_destroy(md);
        }
        if (!ready)
            usleep(50 * 1000);
    }
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    if (!ready)
        fail_msg("topic %s has no leader after %d ms", name, DEADLINE_MS);
}

/* ---- produce ----------------------------------------------------------------------------------
 */

static int delivered, delivery_failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    if (m->err) {
        if (delivery_failed++ == 0)
            fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
    } else {
        delivered++;
    }
}

static void produce(enum listener l, const char *topic, int n)
{
    struct seen seen = {0};
    rd_kafka_conf_t *conf = client_conf(l, &seen);
    set(conf, "enable.idempotence", "true");
    set(conf, "acks", "all");
    set(conf, "linger.ms", "5");
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = client_new(RD_KAFKA_PRODUCER, conf);
    delivered = delivery_failed = 0;
    for (int i = 0; i < n; i++) {
        char key[32], value[64];
        snprintf(key, sizeof key, "agent-%d", i % 4);
        snprintf(value, sizeof value, "message %d", i);
        rd_kafka_resp_err_t err =
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                              RD_KAFKA_V_VALUE(value, strlen(value)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err)
            fail_msg("produce to %s: %s", topic, rd_kafka_err2str(err));
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_resp_err_t err = rd_kafka_flush(rk, DEADLINE_MS);
    rd_kafka_destroy(rk);
    if (err || delivered != n || delivery_failed || seen.n_errors)
        fail_msg("produce to %s: %d of %d delivered, %d failed (%s; first error: %s)", topic,
                 delivered, n, delivery_failed, rd_kafka_err2str(err), seen.first_reason);
}

/* ---- consume like the agent --------------------------------------------------------------------
 */

static void consume_as_group(enum listener l, const char *topic, int n)
{
    struct seen seen = {0};
    char group[128];
    snprintf(group, sizeof group, "%s-group", topic);
    rd_kafka_conf_t *conf = client_conf(l, &seen);
    set(conf, "group.id", group);
    set(conf, "group.instance.id", "axion-test-agent-1"); /* static membership */
    set(conf, "enable.auto.commit", "false");
    set(conf, "enable.auto.offset.store", "false");
    set(conf, "isolation.level", "read_committed");
    set(conf, "auto.offset.reset", "earliest");
    rd_kafka_t *rk = client_new(RD_KAFKA_CONSUMER, conf);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    assert_int_equal(rd_kafka_subscribe(rk, sub), 0);
    rd_kafka_topic_partition_list_destroy(sub);

    int got = 0, in_order = 1;
    int64_t next_offset[8] = {0};
    int last_per_key[4] = {-1, -1, -1, -1};
    uint64_t end = tu_now_ms() + DEADLINE_MS;
    while (got < n && tu_now_ms() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "consume %s: %s\n", topic, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        int key = m->key_len > 6 ? atoi((const char *)m->key + 6) : -1;
        char value[64] = "";
        snprintf(value, sizeof value, "%.*s", (int)m->len, (const char *)m->payload);
        int i = atoi(value + 8);
        if (key < 0 || key > 3 || i <= last_per_key[key])
            in_order = 0;
        else
            last_per_key[key] = i;
        if (m->partition >= 0 && m->partition < 8)
            next_offset[m->partition] = m->offset + 1;
        /* What the agent does after its store transaction: store the offset, then commit. */
        assert_int_equal(rd_kafka_offset_store(m->rkt, m->partition, m->offset), 0);
        got++;
        rd_kafka_message_destroy(m);
    }
    assert_int_equal(rd_kafka_commit(rk, NULL, 0), 0);

    rd_kafka_topic_partition_list_t *parts = NULL;
    assert_int_equal(rd_kafka_assignment(rk, &parts), 0);
    assert_int_equal(rd_kafka_committed(rk, parts, DEADLINE_MS), 0);
    for (int i = 0; i < parts->cnt; i++) {
        int p = parts->elems[i].partition;
        if (p >= 0 && p < 8 && next_offset[p] && parts->elems[i].offset != next_offset[p])
            fail_msg("%s [%d]: committed %lld, expected %lld", topic, p,
                     (long long)parts->elems[i].offset, (long long)next_offset[p]);
    }
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    /* A healthy broker gives the agent nothing to report. */
    if (seen.n_errors)
        fail_msg("consume %s: %d errors, the first: %s\nlog:\n%s", topic, seen.n_errors,
                 seen.first_reason, seen.log);
    if (got != n)
        fail_msg("consumed %d of %d messages from %s within %d ms (first error: %s)", got, n, topic,
                 DEADLINE_MS, seen.first_reason);
    assert_true(in_order);
}

static void round_trip(enum listener l, const char *what)
{
    char topic[128];
    topic_name(topic, sizeof topic, what);
    uint64_t t0 = tu_now_ms();
    create_topic(l, topic, 2);
    uint64_t t1 = tu_now_ms();
    produce(l, topic, N_MSGS);
    uint64_t t2 = tu_now_ms();
    consume_as_group(l, topic, N_MSGS);
    printf("%s: topic created in %llu ms, %d messages produced in %llu ms, consumed and "
           "committed by a group in %llu ms\n",
           what, (unsigned long long)(t1 - t0), N_MSGS, (unsigned long long)(t2 - t1),
           (unsigned long long)(tu_now_ms() - t2));
}

static void test_plaintext_round_trip(void **state)
{
    round_trip(PLAIN, "plain");
}

static void test_tls_round_trip(void **state)
{
    round_trip(TLS, "tls");
}

/* ---- refused TLS connections -------------------------------------------------------------------
 */

/* Connects and returns whether metadata came back before the first error or the deadline. */
static bool connects(enum listener l, struct seen *seen)
{
    rd_kafka_t *rk = client_new(RD_KAFKA_PRODUCER, client_conf(l, seen));
    bool ok = false;
    uint64_t end = tu_now_ms() + 20000;
    while (!ok && seen->n_errors == 0 && tu_now_ms() < end) {
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(rk, 0, NULL, &md, 500) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            ok = true;
            rd_kafka_metadata_destroy(md);
        }
        rd_kafka_poll(rk, 50);
    }
    rd_kafka_destroy(rk);
    return ok;
}

static void expect_refused(enum listener l, const char *what, const char *needle, int x509_error)
{
    struct seen seen = {0};
    bool ok = connects(l, &seen);
    printf("%s: %s (%s; x509 error %d)\n", what, ok ? "ACCEPTED" : "refused", seen.first_reason,
           seen.x509_error);
    assert_int_equal(seen.x509_error, x509_error);
    printf("%s", seen.log); /* what the agent's log would show */
    assert_false(ok);
    assert_true(seen.n_errors > 0);
    if (!strstr(seen.first_reason, needle) && !strstr(seen.log, needle))
        fail_msg("%s: the error does not say \"%s\": %s\nlog:\n%s", what, needle, seen.first_reason,
                 seen.log);
}

static void test_other_ca_refused(void **state)
{
    expect_refused(TLS_OTHER_CA, "a CA that is not the broker's", "certificate verify failed",
                   X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
}

static void test_wrong_name_refused(void **state)
{
    expect_refused(TLS_WRONG_NAME, "a broker certificate for another name", "IP address mismatch",
                   X509_V_ERR_IP_ADDRESS_MISMATCH);
    struct seen seen = {0};
    assert_true(connects(TLS_WRONG_NAME_NOVERIFY, &seen)); /* only the name was wrong */
}

static void test_other_client_cert_refused(void **state)
{
    expect_refused(TLS_OTHER_CLIENT, "a client certificate from another CA", "certificate unknown",
                   X509_V_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plaintext_round_trip),      cmocka_unit_test(test_tls_round_trip),
        cmocka_unit_test(test_other_ca_refused),          cmocka_unit_test(test_wrong_name_refused),
        cmocka_unit_test(test_other_client_cert_refused),
    };
    printf("librdkafka %s\n", rd_kafka_version_str());
    return cmocka_run_group_tests(tests, load_env, NULL);
}

/* kafka_status: what the Kafka channels say of themselves, in the log and in the store's agent
 * state "channel.kafka" (`axion-agent status`): the state (connecting, connected, error,
 * stopped), the last error in words that name the cause and the config key to look at, and per
 * partition of the commands topic the stored position, what Kafka confirmed, the high watermark
 * and the lag. librdkafka's own errors are vague about TLS ("certificate verify failed" for a
 * wrong CA and a wrong name alike): OpenSSL's code from the verify callback says which. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"
#include "sources/kafka_internal.h"

static const char *handle_name(char which)
{
    return which == 'c' ? "consumer" : "producer";
}

static bool contains(const char *s, const char *what)
{
    return s && strstr(s, what);
}

/* The error in words: what failed, why, and where to look. */
static void describe(struct kafka *k, char which, rd_kafka_resp_err_t err, const char *reason,
                     char *out, size_t len)
{
    const struct config *cfg = k->cfg;
    int h = which == 'c' ? 0 : 1;
    int x509 = atomic_load(&k->x509_error[h]);
    int depth = atomic_load(&k->x509_depth[h]);
    const char *ca = cfg->kafka.ca_file ? cfg->kafka.ca_file : "(unset)";
    const char *cert = cfg->kafka.cert_file ? cfg->kafka.cert_file : "(unset)";
    if (err == RD_KAFKA_RESP_ERR__SSL && x509) {
        const char *what = X509_verify_cert_error_string(x509);
        switch (x509) {
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_CERT_UNTRUSTED:
        case X509_V_ERR_CERT_SIGNATURE_FAILURE:
            snprintf(out, len,
                     "TLS: the broker's certificate is not signed by the CA of kafka.ca_file "
                     "(%s): %s (OpenSSL verify error %d at depth %d)",
                     ca, what, x509, depth);
            return;
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH:
            snprintf(out, len,
                     "TLS: the broker's certificate does not name the address the agent "
                     "connected to (kafka.brokers %s, and the addresses the brokers advertise): "
                     "%s (OpenSSL verify error %d)",
                     k->brokers, what, x509);
            return;
        case X509_V_ERR_CERT_HAS_EXPIRED:
        case X509_V_ERR_CERT_NOT_YET_VALID:
            snprintf(out, len,
                     "TLS: a certificate of the broker's chain is outside its validity: %s "
                     "(OpenSSL verify error %d at depth %d)",
                     what, x509, depth);
            return;
        default:
            snprintf(out, len,
                     "TLS: the broker's certificate was refused: %s (OpenSSL verify error %d at "
                     "depth %d; kafka.ca_file %s)",
                     what, x509, depth, ca);
            return;
        }
    }
    if (err == RD_KAFKA_RESP_ERR__SSL) {
        snprintf(out, len, "TLS handshake with the broker failed: %s", reason);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT &&
        (contains(reason, "certificate unknown") || contains(reason, "bad certificate") ||
         contains(reason, "certificate required") || contains(reason, "unknown ca"))) {
        snprintf(out, len,
                 "TLS: the broker refused the agent's client certificate (kafka.cert_file %s): %s",
                 cert, reason);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT && contains(reason, "Connect to")) {
        snprintf(out, len, "cannot connect to a broker of kafka.brokers (%s): %s", k->brokers,
                 reason);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT) {
        snprintf(out, len, "the connection to a broker failed: %s", reason);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        snprintf(out, len, "no broker of kafka.brokers (%s) answers: %s", k->brokers, reason);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__RESOLVE) {
        snprintf(out, len, "cannot resolve a broker of kafka.brokers (%s): %s", k->brokers, reason);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__INVALID_ARG) {
        snprintf(out, len, "the Kafka client cannot start with this config: %s", reason);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
        snprintf(out, len, "%s: %s (the topic must exist: the agent creates none)", reason,
                 rd_kafka_err2str(err));
        return;
    }
    snprintf(out, len, "%s: %s", rd_kafka_err2name(err), reason);
}

/* librdkafka counts the repeats of an error inside its text ("..., 30 identical error(s)
 * suppressed)"): without the count, a repeat reads the same and is not logged again. */
static const char *plain_reason(const char *reason, char *buf, size_t len)
{
    static const char phrase[] = " identical error(s) suppressed";
    if (!reason)
        return "";
    const char *at = strstr(reason, phrase);
    if (!at)
        return reason;
    const char *start = at, *rest = at + strlen(phrase);
    while (start > reason && start[-1] >= '0' && start[-1] <= '9')
        start--;
    if (start - reason >= 2 && start[-2] == ',' && start[-1] == ' ') {
        start -= 2; /* "(after 0ms in state CONNECT, 30 identical error(s) suppressed)" */
    } else if (start > reason && start[-1] == '(' && *rest == ')') {
        start -= 1; /* "... (30 identical error(s) suppressed)" */
        rest++;
        if (start > reason && start[-1] == ' ')
            start--;
    }
    snprintf(buf, len, "%.*s%s", (int)(start - reason), reason, rest);
    return buf;
}

void kafka_status_error(struct kafka *k, char which, rd_kafka_resp_err_t err, const char *reason)
{
    struct kafka_error *e = which == 'c' ? &k->cerr : &k->perr;
    bool down = err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT ||
                err == RD_KAFKA_RESP_ERR__SSL || err == RD_KAFKA_RESP_ERR__RESOLVE;
    if (down) {
        if (which == 'c')
            k->consumer_up = false;
        else
            k->producer_up = false;
    }
    /* "All brokers are down" follows every failed connection: the cause before it says more. */
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && e->text[0] &&
        kafka_now_ms() - e->at < 60000) {
        e->at = kafka_now_ms();
        return;
    }
    char text[KAFKA_ERROR_MAX], why[KAFKA_ERROR_MAX];
    describe(k, which, err, plain_reason(reason, why, sizeof(why)), text, sizeof(text));
    e->at = kafka_now_ms();
    if (streq(e->text, text))
        return;
    snprintf(e->text, sizeof(e->text), "%s", text);
    e->sticky = !down;
    log_error("kafka %s: %s", handle_name(which), text);
    kafka_status_write(k, true);
}

void kafka_status_up(struct kafka *k, char which, bool up)
{
    bool *flag = which == 'c' ? &k->consumer_up : &k->producer_up;
    struct kafka_error *e = which == 'c' ? &k->cerr : &k->perr;
    bool was = *flag;
    *flag = up;
    if (!up) {
        if (was)
            kafka_status_mark(k);
        return;
    }
    bool cleared = e->text[0] != '\0' && !e->sticky;
    if (cleared) {
        log_info("kafka %s: a broker answers again (the last error was: %s)", handle_name(which),
                 e->text);
        e->text[0] = '\0';
        atomic_store(&k->x509_error[which == 'c' ? 0 : 1], 0);
    } else if (!was) {
        log_info("kafka %s: connected to %s", handle_name(which), k->brokers);
    }
    if (!was || cleared)
        kafka_status_write(k, true);
}

void kafka_status_stats(struct kafka *k, char which, const char *json, size_t len)
{
    json_t *o = json_loadb(json, len, 0, NULL);
    if (!o)
        return;
    bool up = false;
    const char *name;
    json_t *b;
    json_object_foreach(json_object_get(o, "brokers"), name, b)
    {
        const char *state = json_string_value(json_object_get(b, "state"));
        if (state && streq(state, "UP"))
            up = true;
    }
    if (which == 'c') {
        json_t *parts = json_object_get(
            json_object_get(json_object_get(o, "topics"), k->commands_topic), "partitions");
        json_t *p;
        json_object_foreach(parts, name, p)
        {
            json_int_t id = json_integer_value(json_object_get(p, "partition"));
            json_int_t hi = json_integer_value(json_object_get(p, "hi_offset"));
            struct kafka_partition *kp =
                id >= 0 && id <= INT32_MAX ? kafka_partition_get(k, (int32_t)id, false) : NULL;
            if (kp && hi >= 0 && hi != kp->high) {
                kp->high = hi;
                kafka_status_mark(k);
            }
        }
    }
    json_decref(o);
    kafka_status_up(k, which, up);
}

void kafka_status_clear(struct kafka *k, char which)
{
    struct kafka_error *e = which == 'c' ? &k->cerr : &k->perr;
    if (e->sticky && e->text[0]) {
        log_info("kafka %s: working again (the last error was: %s)", handle_name(which), e->text);
        e->text[0] = '\0';
        e->sticky = false;
        kafka_status_write(k, true);
    }
    kafka_status_up(k, which, true);
}

/* ---- channel.kafka --------------------------------------------------------------------------- */

static const char *state_of(const struct kafka *k, const char **ret_error)
{
    *ret_error = "";
    if (k->final_state[0]) {
        *ret_error = k->final_error;
        return k->final_state;
    }
    if (k->cerr.text[0] || k->perr.text[0]) {
        *ret_error = k->cerr.text[0] ? k->cerr.text : k->perr.text;
        return "error";
    }
    if (!k->started)
        return "starting";
    return k->consumer_up && k->producer_up ? "connected" : "connecting";
}

static json_t *partitions_json(struct kafka *k, json_int_t *ret_lag)
{
    json_t *a = json_array();
    json_int_t total = 0;
    bool known = true;
    for (size_t i = 0; a && i < k->n_parts; i++) {
        struct kafka_partition *p = &k->parts[i];
        /* Between two statistics: the end librdkafka saw with its last fetch (no request). */
        int64_t lo = -1, hi = -1;
        if (k->rk && p->assigned &&
            rd_kafka_get_watermark_offsets(k->rk, k->commands_topic, p->partition, &lo, &hi) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            hi > p->high)
            p->high = hi;
        json_int_t lag = p->high >= 0 && p->next >= 0 ? p->high - p->next : -1;
        if (lag < 0)
            known = false;
        else if (total > INT64_MAX - lag)
            total = INT64_MAX; /* the offsets are what brokers report: the sum saturates */
        else
            total += lag;
        json_array_append_new(
            a, json_pack("{s:I, s:b, s:I, s:I, s:I, s:I, s:I, s:s, s:I}", "partition",
                         (json_int_t)p->partition, "assigned", p->assigned, "next_offset",
                         (json_int_t)p->next, "committed_offset", (json_int_t)p->committed,
                         "high_watermark", (json_int_t)p->high, "lag", lag, "records",
                         (json_int_t)p->records, "last_error", p->last_error, "last_error_at",
                         (json_int_t)p->last_error_at));
    }
    *ret_lag = known && k->n_parts ? total : -1;
    return a;
}

static char *state_json(struct kafka *k)
{
    const char *error;
    const char *state = state_of(k, &error);
    struct store_outbox_stats os = {0};
    store_outbox_stats(k->store, &os);
    json_int_t lag = -1;
    json_t *parts = partitions_json(k, &lag);
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:b, s:b,"
        " s:{s:I, s:I, s:I, s:I, s:I},"
        " s:{s:I, s:I, s:I},"
        " s:{s:I, s:I, s:I, s:I}}",
        "state", state, "error", error, "brokers", k->brokers ? k->brokers : "", "security",
        k->cfg->kafka.security, "commands_topic", k->commands_topic ? k->commands_topic : "",
        "group", k->group ? k->group : "", "status_topic", k->status_topic ? k->status_topic : "",
        "telemetry_topic", k->telemetry_topic ? k->telemetry_topic : "", "partitions",
        parts ? parts : json_array(), "lag", lag, "consumer_up", k->consumer_up, "producer_up",
        k->producer_up, "outbox", "pending", (json_int_t)os.rows, "in_flight",
        (json_int_t)k->in_flight, "delivered", (json_int_t)k->delivered, "failures",
        (json_int_t)k->delivery_failures, "dropped", (json_int_t)os.dropped, "telemetry", "sent",
        (json_int_t)k->tel_sent, "dropped", (json_int_t)k->tel_dropped, "queued",
        (json_int_t)k->tel_n, "commands", "accepted", (json_int_t)k->outcomes[INTAKE_ACCEPTED],
        "duplicate", (json_int_t)k->outcomes[INTAKE_DUPLICATE], "superseded",
        (json_int_t)k->outcomes[INTAKE_SUPERSEDED], "rejected",
        (json_int_t)k->outcomes[INTAKE_REJECTED]);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

void kafka_status_write(struct kafka *k, bool force)
{
    if (!force && !k->state_dirty)
        return;
    char *s = state_json(k);
    if (!s)
        return;
    if (store_put_state(k->store, "channel.kafka", s) < 0)
        log_warnx("kafka: cannot write channel.kafka: %s", store_errmsg(k->store));
    else
        k->state_dirty = false;
    free(s);
}

void kafka_status_mark(struct kafka *k)
{
    k->state_dirty = true;
}

static void on_state_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    kafka_status_write(w->data, false);
}

int kafka_status_start(struct kafka *k)
{
    ev_timer_init(&k->state_timer, on_state_timer, KAFKA_STATE_EVERY_S, KAFKA_STATE_EVERY_S);
    k->state_timer.data = k;
    ev_timer_start(k->ctx->loop, &k->state_timer);
    return 0;
}

void kafka_status_stop(struct kafka *k)
{
    if (k->ctx)
        ev_timer_stop(k->ctx->loop, &k->state_timer);
}

void kafka_status_final(struct kafka *k, const char *state, const char *error)
{
    snprintf(k->final_state, sizeof(k->final_state), "%s", state);
    snprintf(k->final_error, sizeof(k->final_error), "%s", error ? error : "");
    kafka_status_write(k, true);
}

#include "sources/grpc_source.h"

#include <errno.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "axion/agent/v1/control.pb-c.h"
#include "lib/array.h"
#include "lib/backoff.h"
#include "lib/log.h"
#include "lib/util.h"
#include "reconciler/reconciler.h"
#include "sources/grpc_command.h"
#include "sources/grpc_identity.h"
#include "sources/grpc_logs.h"
#include "sources/grpc_pump.h"
#include "sources/grpc_report.h"
#include "sources/grpc_stream.h"
#include "sources/grpc_unary.h"
#include "sources/grpc_wire.h"

#define METHOD_ENROLL  "/axion.agent.v1.Control/Enroll"
#define METHOD_RENEW   "/axion.agent.v1.Control/Renew"
#define METHOD_CONNECT "/axion.agent.v1.Control/Connect"

#define UNARY_TIMEOUT_MS  30000
#define STOP_GRACE_MS     2000 /* a closing stream's time to end cleanly at shutdown */
#define BACKLOG_MAX       10000u
#define BACKLOG_BYTES_MAX (16u << 20)
#define LOGS_MAX          16u        /* Logs commands streaming at once */
#define RESULT_QUEUE_MAX  (1u << 20) /* result bytes in the stream's queue; the rest wait here */
#define PENDING_MAX       10000u     /* commands accepted and waiting for their final result */
#define WATCH_DEADLINE_MS (3600 * 1000)
#define TEXT_MAX          1024

#define OUT(x)  AXION__AGENT__V1__OUTCOME__OUTCOME_##x
#define CODE(x) AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_##x
#define K(x)    AXION__AGENT__V1__COMMAND_KIND__COMMAND_KIND_##x

enum state {
    ST_IDLE,       /* not started */
    ST_ENROLLING,  /* Enroll in flight */
    ST_CONNECTING, /* the stream is opening */
    ST_CONNECTED,  /* the headers arrived */
    ST_RETRYING,   /* an attempt failed; the next one is due */
    ST_ERROR,      /* given up: the operator must act (error says what) */
    ST_STOPPED,
};

static const char *const state_names[] = {
    [ST_IDLE] = "idle",           [ST_ENROLLING] = "enrolling", [ST_CONNECTING] = "connecting",
    [ST_CONNECTED] = "connected", [ST_RETRYING] = "retrying",   [ST_ERROR] = "error",
    [ST_STOPPED] = "stopped",
};

struct grpc_source;

/* One gRPC channel and its connectivity watch. A destroyed one is freed when its watch ends. */
struct chan {
    struct grpc_pump_tag watch;
    struct grpc_source *g;
    grpc_channel *ch;
    grpc_connectivity_state state;
    bool watching;
    bool destroyed;
};

/* A result waiting for a stream (or in a stream's queue: back here if it never left). */
struct backlog_item {
    struct backlog_item *next;
    struct grpc_source *g;
    uint8_t *data;
    size_t len;
};

/* What a final result needs that the tracker does not keep. */
struct cmd_note {
    char *command_id;
    char *service;
    int64_t received_at;
};

struct grpc_source {
    struct source_ctx ctx;
    const struct config *cfg;
    struct grpc_pump *pump;
    bool grpc_up; /* grpc_init() was called */

    char *target, *enroll_target; /* "host:port" */
    bool insecure, enroll_insecure;
    char *hostname;

    struct grpc_identity *id;
    struct chan *chan; /* mTLS, for the identity it was made with */
    bool chan_stale;   /* the identity changed (renewal): a new channel for the next stream */
    struct chan *enroll_chan; /* server-TLS, while Enroll is in flight */
    struct chan *renew_chan;  /* mTLS with the current identity, while Renew is in flight */
    struct grpc_stream *stream;
    struct grpc_unary *enroll_call;
    struct grpc_unary *renew_call;
    char *renew_key_file;
    char *renew_key_pem; /* secret */

    ev_timer retry, heartbeat, renew;
    struct backoff backoff, renew_backoff;
    uint64_t hb_seq;

    enum state state;
    char error[TEXT_MAX];
    int64_t state_since;
    int64_t connected_since;
    uint64_t streams; /* streams that got their headers */
    int64_t next_attempt_at;
    bool started, stopping;

    struct backlog_item *bl_head, *bl_tail;
    size_t bl_n, bl_bytes;
    uint64_t bl_dropped;

    struct grpc_logs **logs;
    size_t n_logs, cap_logs;
    struct grpc_logs_host logs_host;

    struct cmd_note *notes;
    size_t n_notes, cap_notes;

    uint64_t passes;
    uint32_t last_pass_ms;
};

static void connect_now(struct grpc_source *g);
static void enroll(struct grpc_source *g);
static void schedule_retry(struct grpc_source *g);
static void arm_renewal(struct grpc_source *g);

static int64_t now_ms(void)
{
    return source_now_ms();
}

/* ---- status ------------------------------------------------------------------------------ */

static void write_status(struct grpc_source *g)
{
    json_t *o = json_pack("{s:s, s:s, s:s?, s:s, s:I, s:I}", "state", state_names[g->state],
                          "error", g->error, "agent_id", g->id ? g->id->agent_id : NULL, "endpoint",
                          g->target ? g->target : "", "since", (json_int_t)g->state_since,
                          "streams", (json_int_t)g->streams);
    if (!o)
        return;
    if (g->state == ST_CONNECTED)
        json_object_set_new(o, "connected_since", json_integer(g->connected_since));
    if (g->state == ST_RETRYING && g->next_attempt_at)
        json_object_set_new(o, "next_attempt_at", json_integer(g->next_attempt_at));
    if (g->id) {
        json_object_set_new(o, "certificate",
                            json_pack("{s:I, s:I, s:b}", "not_after", (json_int_t)g->id->not_after,
                                      "renew_at", (json_int_t)grpc_identity_renew_at(g->id),
                                      "from_files", g->id->from_files));
    }
    if (g->bl_dropped)
        json_object_set_new(o, "results_dropped", json_integer((json_int_t)g->bl_dropped));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text && store_put_state(g->ctx.store, "channel.grpc", text) < 0)
        log_debug("grpc: cannot record the channel's state: %s", store_errmsg(g->ctx.store));
    free(text);
}

/* The Control Plane's own message may quote the token: mask any run of 6 or more of its
 * leading characters. */
static void mask_token(char *text, const char *token)
{
    size_t tl = token ? strlen(token) : 0;
    if (tl < 6)
        return;
    for (char *p = text; *p; p++) {
        size_t n = 0;
        while (n < tl && p[n] && p[n] == token[n])
            n++;
        if (n >= 6) {
            memset(p, '*', n);
            p += n - 1;
        }
    }
}

/* Changes state and error (fmt NULL: no error). Logs a change once, not every retry. */
static void set_state(struct grpc_source *g, enum state st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_state(struct grpc_source *g, enum state st, const char *fmt, ...)
{
    char error[TEXT_MAX] = "";
    if (fmt) {
        char raw[TEXT_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(raw, sizeof(raw), fmt, ap);
        va_end(ap);
        /* The Control Plane's words are in it: never the token, and valid UTF-8 (else the
         * status JSON could not be written at all). */
        mask_token(raw, g->cfg->agent.token);
        grpc_command_cut_text(raw, error, sizeof(error));
    }
    bool changed = st != g->state || !streq(error, g->error);
    if (st != g->state)
        g->state_since = now_ms();
    bool was_error_same = streq(error, g->error);
    g->state = st;
    snprintf(g->error, sizeof(g->error), "%s", error);
    if (changed) {
        if (*error && !was_error_same)
            log_msg(st == ST_ERROR ? LOG_LEVEL_ERROR : LOG_LEVEL_WARN, NULL, "grpc: %s: %s",
                    state_names[st], error);
        else if (!*error) {
            const char *t = st == ST_ENROLLING ? g->enroll_target : g->target;
            log_info("grpc: %s%s%s", state_names[st], t ? " " : "", t ? t : "");
        }
    }
    write_status(g);
}

/* ---- the endpoint and the channels --------------------------------------------------------- */

/* "https://host[:port][/]" → "host:port" (443 by default); http:// (tests only): insecure, 80. */
static int parse_url(const char *url, char **ret_target, bool *ret_insecure, char *err,
                     size_t errlen)
{
    bool insecure = strncmp(url, "http://", 7) == 0;
    const char *rest = insecure ? url + 7 : strncmp(url, "https://", 8) == 0 ? url + 8 : NULL;
    if (!rest || !*rest) {
        snprintf(err, errlen, "%s: expected https://HOST[:PORT]", url);
        return -EINVAL;
    }
    size_t n = strcspn(rest, "/");
    if (rest[n] && !streq(rest + n, "/")) {
        snprintf(err, errlen, "%s: a path is not allowed (the gRPC service has its own)", url);
        return -EINVAL;
    }
    const char *close = rest[0] == '[' ? memchr(rest, ']', n) : NULL;
    const char *colon =
        close ? (close + 1 < rest + n && close[1] == ':' ? close + 1 : NULL) : memchr(rest, ':', n);
    char *t = NULL;
    int k = colon ? asprintf(&t, "%.*s", (int)n, rest)
                  : asprintf(&t, "%.*s:%s", (int)n, rest, insecure ? "80" : "443");
    if (k < 0)
        t = NULL;
    if (!t)
        return -ENOMEM;
    *ret_target = t;
    *ret_insecure = insecure;
    return 0;
}

static void on_watch(struct grpc_pump_tag *tag, bool ok);

static void watch(struct chan *c)
{
    if (c->destroyed || c->watching)
        return;
    c->watching = true;
    grpc_channel_watch_connectivity_state(c->ch, c->state, grpc_wire_deadline(WATCH_DEADLINE_MS),
                                          grpc_pump_cq(c->g->pump), &c->watch);
}

static void on_watch(struct grpc_pump_tag *tag, bool ok)
{
    struct chan *c = (struct chan *)tag;
    c->watching = false;
    if (c->destroyed) {
        free(c);
        return;
    }
    struct grpc_source *g = c->g;
    c->state = grpc_channel_check_connectivity_state(c->ch, 0);
    /* The channel connected while we wait out the backoff: open the stream now. */
    if (c == g->chan && !g->stream && !g->stopping && g->state == ST_RETRYING &&
        c->state == GRPC_CHANNEL_READY) {
        log_debug("grpc: the channel is ready: opening the stream now");
        ev_timer_stop(g->ctx.loop, &g->retry);
        connect_now(g);
    } else if (c == g->chan && !g->stream && !g->stopping && g->state == ST_RETRYING &&
               c->state == GRPC_CHANNEL_IDLE) {
        /* Keep it trying (within gRPC's own backoff), so that READY comes as soon as it can. */
        c->state = grpc_channel_check_connectivity_state(c->ch, 1);
    }
    watch(c);
}

static struct chan *chan_new(struct grpc_source *g, const char *target,
                             grpc_channel_credentials *creds)
{
    struct chan *c = calloc(1, sizeof(*c));
    if (!c) {
        grpc_channel_credentials_release(creds);
        return NULL;
    }
    c->g = g;
    c->watch.fn = on_watch;
    const struct config *cfg = g->cfg;
    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_KEEPALIVE_TIME_MS,
         .value.integer = (int)cfg->control_plane.keepalive_time_ms},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
         .value.integer = (int)cfg->control_plane.keepalive_timeout_ms},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
         .value.integer = 1},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA,
         .value.integer = 0},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
         .value.integer = 1000},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
         .value.integer = 120000},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = GRPC_WIRE_RECV_MAX},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
         .value.integer = GRPC_WIRE_SEND_MAX},
        {.type = GRPC_ARG_STRING,
         .key = GRPC_ARG_PRIMARY_USER_AGENT_STRING,
         .value.string = "axion-agent/" AXION_VERSION},
        /* Each channel its own connection: a renewed identity must not share the old one's. */
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, .value.integer = 1},
    };
    grpc_channel_args ca = {.num_args = ARRAY_SIZE(args), .args = args};
    sigset_t old;
    grpc_pump_signals_block(&old);
    c->ch = grpc_channel_create(target, creds, &ca);
    grpc_pump_signals_restore(&old);
    grpc_channel_credentials_release(creds);
    if (!c->ch) {
        free(c);
        return NULL;
    }
    c->state = grpc_channel_check_connectivity_state(c->ch, 0);
    watch(c);
    return c;
}

static struct chan *chan_destroy(struct chan *c)
{
    if (!c)
        return NULL;
    c->destroyed = true;
    grpc_channel_destroy(c->ch); /* completes the watch, which frees c */
    if (!c->watching)
        free(c);
    return NULL;
}

/* A new mTLS channel with the current identity. */
static struct chan *identity_chan(struct grpc_source *g)
{
    grpc_channel_credentials *creds;
    if (g->insecure) {
        creds = grpc_insecure_credentials_create();
    } else {
        grpc_ssl_pem_key_cert_pair pair = {.private_key = g->id->key_pem,
                                           .cert_chain = g->id->chain_pem};
        creds = grpc_ssl_credentials_create(g->id->ca_pem && *g->id->ca_pem ? g->id->ca_pem : NULL,
                                            &pair, NULL, NULL);
    }
    return creds ? chan_new(g, g->target, creds) : NULL;
}

/* The channel of the stream: the current identity's. */
static int ensure_chan(struct grpc_source *g)
{
    if (g->chan && !g->chan_stale)
        return 0;
    g->chan = chan_destroy(g->chan);
    g->chan_stale = false;
    g->chan = identity_chan(g);
    return g->chan ? 0 : -ENOMEM;
}

/* ---- results: the backlog and the stream ---------------------------------------------------- */

static void backlog_push(struct grpc_source *g, struct backlog_item *it, bool front)
{
    it->next = NULL;
    if (front) {
        it->next = g->bl_head;
        g->bl_head = it;
        if (!g->bl_tail)
            g->bl_tail = it;
    } else {
        if (g->bl_tail)
            g->bl_tail->next = it;
        else
            g->bl_head = it;
        g->bl_tail = it;
    }
    g->bl_n++;
    g->bl_bytes += it->len;
    /* Bounded: the oldest go first (the Hello's finished ids still name them). */
    while (g->bl_head && (g->bl_n > BACKLOG_MAX || g->bl_bytes > BACKLOG_BYTES_MAX)) {
        struct backlog_item *old = g->bl_head;
        g->bl_head = old->next;
        if (!g->bl_head)
            g->bl_tail = NULL;
        g->bl_n--;
        g->bl_bytes -= old->len;
        g->bl_dropped++;
        free(old->data);
        free(old);
        log_warnx("grpc: the backlog of results is full; the oldest was dropped (%" PRIu64
                  " so far)",
                  g->bl_dropped);
    }
}

static struct backlog_item *backlog_pop(struct grpc_source *g)
{
    struct backlog_item *it = g->bl_head;
    if (!it)
        return NULL;
    g->bl_head = it->next;
    if (!g->bl_head)
        g->bl_tail = NULL;
    g->bl_n--;
    g->bl_bytes -= it->len;
    it->next = NULL;
    return it;
}

static void backlog_flush(struct grpc_source *g);

static void on_result_sent(enum grpc_stream_sent how, void *userdata)
{
    struct backlog_item *it = userdata;
    struct grpc_source *g = it->g;
    if (how == GRPC_STREAM_UNSENT && !g->stopping) {
        backlog_push(g, it, false);
        return;
    }
    free(it->data);
    free(it);
    /* Room in the stream's queue: the results that waited for it follow. */
    if (how == GRPC_STREAM_SENT && !g->stopping && g->bl_head)
        backlog_flush(g);
}

/* Hands a result to the stream when it is up and its queue of results has room (a Control
 * Plane that sends commands and reads no results costs the bounded backlog, not a queue that
 * grows with every command). */
static bool result_send(struct grpc_source *g, struct backlog_item *it)
{
    if (!g->stream || !grpc_stream_ready(g->stream) ||
        grpc_stream_queued(g->stream, GRPC_STREAM_PRIO_RESULT) >= RESULT_QUEUE_MAX)
        return false;
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)it->data, it->len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb &&
           grpc_stream_send(g->stream, GRPC_STREAM_PRIO_RESULT, bb, false, on_result_sent, it) == 0;
}

/* Sends a result, or keeps it (behind those already kept: they go first). */
static void result_out(struct grpc_source *g, struct backlog_item *it)
{
    if (!g->bl_head && result_send(g, it))
        return;
    backlog_push(g, it, false);
}

static void backlog_flush(struct grpc_source *g)
{
    struct backlog_item *it;
    while ((it = backlog_pop(g))) {
        if (!result_send(g, it)) {
            backlog_push(g, it, true);
            break;
        }
    }
}

static void send_result(struct grpc_source *g, const struct grpc_result *res)
{
    struct backlog_item *it = calloc(1, sizeof(*it));
    if (!it || grpc_command_result_pack(res, &it->data, &it->len) < 0) {
        free(it);
        log_warnx("grpc: out of memory: the result of command %s is not sent",
                  res->command_id && *res->command_id ? res->command_id : "\"\"");
        return;
    }
    it->g = g;
    const char *oc = protobuf_c_enum_descriptor_get_value(&axion__agent__v1__outcome__descriptor,
                                                          (int)res->outcome)
                         ? protobuf_c_enum_descriptor_get_value(
                               &axion__agent__v1__outcome__descriptor, (int)res->outcome)
                               ->name
                         : "?";
    log_debug("grpc: result %s %s%s%s",
              res->command_id && *res->command_id ? res->command_id : "\"\"", oc,
              res->error && *res->error ? ": " : "", res->error ? res->error : "");
    result_out(g, it);
}

static void reject(struct grpc_source *g, const char *command_id, grpc_pb_kind kind,
                   grpc_pb_error_code code, const char *error, int64_t received_at)
{
    struct grpc_result res = {
        .command_id = command_id,
        .outcome = OUT(REJECTED),
        .error_code = code,
        .error = error,
        .kind = kind,
        .received_at_ms = received_at,
        .finished_at_ms = now_ms(),
    };
    send_result(g, &res);
}

/* ---- notes on commands in flight (for their final result) -------------------------------- */

static void note_add(struct grpc_source *g, const char *id, const char *service, int64_t at)
{
    struct cmd_note *n = ARRAY_PUSH(&g->notes, &g->n_notes, &g->cap_notes);
    if (!n)
        return;
    n->command_id = strdup(id);
    n->service = service ? strdup(service) : NULL;
    n->received_at = at;
    if (!n->command_id) {
        free(n->service);
        g->n_notes--;
    }
}

/* Takes the note of a command (zeroed when there is none); free its strings. */
static struct cmd_note note_take(struct grpc_source *g, const char *id)
{
    for (size_t i = 0; i < g->n_notes; i++)
        if (streq(g->notes[i].command_id, id)) {
            struct cmd_note n = g->notes[i];
            g->notes[i] = g->notes[--g->n_notes];
            return n;
        }
    return (struct cmd_note){0};
}

/* ---- the tracker's sink: final results of state commands ---------------------------------- */

static void on_final(const struct tracker_final *f, void *userdata)
{
    struct grpc_source *g = userdata;
    struct cmd_note note = note_take(g, f->command_id);
    int64_t received = note.received_at;
    if (!received) {
        struct store_command *c = NULL;
        if (store_get_command(g->ctx.store, f->command_id, &c) == 0)
            received = c->received_at;
        store_command_free(c);
    }
    grpc_pb_outcome oc = f->result == TRACKER_DONE         ? OUT(DONE)
                         : f->result == TRACKER_FAILED     ? OUT(FAILED)
                         : f->result == TRACKER_SUPERSEDED ? OUT(SUPERSEDED)
                                                           : OUT(STILL_CONVERGING);
    struct grpc_result res = {
        .command_id = f->command_id,
        .outcome = oc,
        .error = f->error,
        .kind = grpc_command_kind_of(f->kind),
        .stack = f->stack,
        .service = note.service,
        .generation = f->generation > 0 && (f->kind == INTAKE_DEPLOY || f->kind == INTAKE_REMOVE)
                          ? (uint64_t)f->generation
                          : 0,
        .received_at_ms = received,
        .finished_at_ms = now_ms(),
    };
    send_result(g, &res);
    free(note.command_id);
    free(note.service);
}

/* ---- Logs --------------------------------------------------------------------------------- */

static struct grpc_stream *logs_stream(void *userdata)
{
    struct grpc_source *g = userdata;
    return g->stream && grpc_stream_ready(g->stream) ? g->stream : NULL;
}

static void logs_done(struct grpc_logs *l, void *userdata)
{
    struct grpc_source *g = userdata;
    const char *error = NULL;
    uint64_t bytes = 0;
    enum grpc_logs_end end = grpc_logs_outcome(l, &error, &bytes);
    grpc_pb_outcome oc = end == GRPC_LOGS_EOF || end == GRPC_LOGS_LIMIT ? OUT(DONE)
                         : end == GRPC_LOGS_CANCELLED                   ? OUT(CANCELLED)
                                                                        : OUT(FAILED);
    enum store_command_status st = oc == OUT(DONE)        ? STORE_COMMAND_APPLIED
                                   : oc == OUT(CANCELLED) ? STORE_COMMAND_CANCELLED
                                                          : STORE_COMMAND_FAILED;
    if (store_update_command(g->ctx.store, grpc_logs_command_id(l), st, error) < 0)
        log_warnx("grpc: cannot record the end of Logs %s: %s", grpc_logs_command_id(l),
                  store_errmsg(g->ctx.store));
    log_info("grpc: Logs %s of %s/%s ended (%s, %" PRIu64 " bytes)%s%s", grpc_logs_command_id(l),
             grpc_logs_stack(l), grpc_logs_service(l),
             end == GRPC_LOGS_EOF         ? "end of the logs"
             : end == GRPC_LOGS_LIMIT     ? "byte limit"
             : end == GRPC_LOGS_CANCELLED ? "cancelled"
                                          : "failed",
             bytes, error ? ": " : "", error ? error : "");
    struct grpc_result res = {
        .command_id = grpc_logs_command_id(l),
        .outcome = oc,
        .error = error,
        .error_code = end == GRPC_LOGS_ERROR ? CODE(ENGINE) : CODE(UNSPECIFIED),
        .kind = K(LOGS),
        .stack = grpc_logs_stack(l),
        .service = grpc_logs_service(l),
        .received_at_ms = grpc_logs_received_at(l),
        .finished_at_ms = now_ms(),
    };
    send_result(g, &res);
    for (size_t i = 0; i < g->n_logs; i++)
        if (g->logs[i] == l) {
            g->logs[i] = g->logs[--g->n_logs];
            break;
        }
    grpc_logs_free(l);
}

static void start_logs(struct grpc_source *g, const grpc_pb_command *cmd, int64_t received)
{
    const Axion__Agent__V1__Logs *rq = cmd->logs;
    struct grpc_command_refusal why;
    if (grpc_command_check_logs(rq, &why) < 0) {
        reject(g, cmd->command_id, K(LOGS), why.code, why.error, received);
        return;
    }
    /* A Logs id is remembered like any other: a repeat is a duplicate, not a second stream. */
    struct store_command *prev = NULL;
    if (store_get_command(g->ctx.store, cmd->command_id, &prev) == 0) {
        char other[512];
        bool same = grpc_command_same_as_recorded(prev, "logs", rq->stack, other, sizeof(other));
        struct grpc_result res = {
            .command_id = cmd->command_id,
            .outcome = OUT(DUPLICATE),
            .original_outcome = grpc_command_outcome_of_status(prev->status),
            .error = same ? prev->error : other,
            .kind = K(LOGS),
            .stack = rq->stack,
            .service = rq->service,
            .received_at_ms = prev->received_at,
            .finished_at_ms = now_ms(),
        };
        send_result(g, &res);
        store_command_free(prev);
        return;
    }
    struct store_stack *stack = NULL;
    int r = store_get_stack(g->ctx.store, rq->stack, &stack);
    bool held = r == 0 && !stack->removed;
    store_stack_free(stack);
    if (!held) {
        char e[256];
        snprintf(e, sizeof(e), "no stack named \"%s\"", rq->stack);
        reject(g, cmd->command_id, K(LOGS), CODE(NOT_FOUND), e, received);
        return;
    }
    if (g->n_logs >= LOGS_MAX) {
        char e[256];
        snprintf(e, sizeof(e), "%u Logs commands are streaming already (the most at once)",
                 LOGS_MAX);
        reject(g, cmd->command_id, K(LOGS), CODE(LIMIT), e, received);
        return;
    }
    struct store_command rec = {
        .command_id = cmd->command_id,
        .source = "grpc",
        .kind = "logs",
        .stack = rq->stack,
        .received_at = received,
        .status = STORE_COMMAND_ACCEPTED,
    };
    if (store_record_command(g->ctx.store, &rec) < 0) {
        reject(g, cmd->command_id, K(LOGS), CODE(INTERNAL), store_errmsg(g->ctx.store), received);
        return;
    }
    struct grpc_logs *l = NULL;
    struct grpc_logs **slot = ARRAY_PUSH(&g->logs, &g->n_logs, &g->cap_logs);
    if (!slot || grpc_logs_start(&g->logs_host, cmd->command_id, rq, received, &l) < 0) {
        if (slot)
            g->n_logs--;
        store_update_command(g->ctx.store, cmd->command_id, STORE_COMMAND_FAILED, "out of memory");
        reject(g, cmd->command_id, K(LOGS), CODE(INTERNAL), "out of memory", received);
        return;
    }
    *slot = l;
    log_info("grpc: Logs %s of %s/%s (tail %" PRIu32 ", follow %s, limit %" PRIu64 " bytes)",
             cmd->command_id, rq->stack, rq->service, rq->tail, rq->follow ? "on" : "off",
             rq->limit_bytes ? rq->limit_bytes : (uint64_t)GRPC_COMMAND_LOGS_DEFAULT);
}

static void cancel_logs(struct grpc_source *g, const char *command_id)
{
    for (size_t i = 0; i < g->n_logs; i++)
        if (streq(grpc_logs_command_id(g->logs[i]), command_id)) {
            grpc_logs_cancel(g->logs[i]);
            return;
        }
    log_debug("grpc: CancelLogs %s: no such Logs command runs", command_id);
}

/* ---- commands ----------------------------------------------------------------------------- */

static void state_command(struct grpc_source *g, const grpc_pb_command *cmd, grpc_pb_kind kind,
                          int64_t received)
{
    struct grpc_command_request req;
    struct grpc_command_refusal why;
    size_t pending = tracker_pending(g->ctx.tracker);
    if (pending >= PENDING_MAX) {
        /* Nothing is written: the Control Plane may send it again once results came. */
        char e[160];
        snprintf(e, sizeof(e),
                 "%zu commands are waiting for their result already (the most at once): send it "
                 "again later",
                 pending);
        reject(g, cmd->command_id, kind, CODE(LIMIT), e, received);
        return;
    }
    int r = grpc_command_request(cmd, &req, &why);
    if (r == -ENOMEM) {
        reject(g, cmd->command_id, kind, CODE(INTERNAL), "out of memory", received);
        return;
    }
    if (r < 0) {
        reject(g, cmd->command_id, kind, why.code, why.error, received);
        return;
    }
    struct intake_result res;
    r = intake_submit(g->ctx.intake, &req.rq, &res);
    int64_t at = now_ms();
    struct grpc_result out = {
        .command_id = cmd->command_id,
        .kind = kind,
        .stack = req.rq.stack,
        .service = req.rq.service,
        .generation =
            res.generation > 0 && (req.rq.kind == INTAKE_DEPLOY || req.rq.kind == INTAKE_REMOVE)
                ? (uint64_t)res.generation
                : 0,
        .received_at_ms = received,
        .finished_at_ms = at,
    };
    if (r < 0) {
        /* Nothing was written: the Control Plane may send it again. */
        char e[INTAKE_ERROR_MAX + 64];
        snprintf(e, sizeof(e), "the agent's store failed: %s", res.error);
        out.outcome = OUT(REJECTED);
        out.error_code = CODE(INTERNAL);
        out.error = e;
        send_result(g, &out);
        intake_result_release(&res);
        grpc_command_request_release(&req);
        return;
    }
    switch (res.outcome) {
    case INTAKE_ACCEPTED: {
        uint64_t timeout = cmd->result_timeout_ms;
        if (timeout > GRPC_COMMAND_TIMEOUT_MAX_MS)
            timeout = GRPC_COMMAND_TIMEOUT_MAX_MS;
        if (tracker_add_timeout(g->ctx.tracker, &req.rq, &res, at, timeout) < 0)
            log_warnx("grpc: out of memory: command %s is not tracked (no final result)",
                      cmd->command_id);
        else
            note_add(g, cmd->command_id, req.rq.service, received);
        for (size_t i = 0; i < res.n_notes; i++)
            log_info("grpc: command %s: %s", cmd->command_id, res.notes[i]);
        out.outcome = OUT(ACCEPTED);
        send_result(g, &out);
        char why_wake[160];
        snprintf(why_wake, sizeof(why_wake), "%s from the Control Plane (%s)",
                 intake_kind_to_string(req.rq.kind), cmd->command_id);
        g->ctx.wake(g->ctx.userdata, why_wake);
        break;
    }
    case INTAKE_DUPLICATE: {
        out.outcome = OUT(DUPLICATE);
        out.original_outcome = grpc_command_outcome_of_status(res.first_status);
        out.error = res.error[0] ? res.error : NULL;
        /* The same id with another body: say so (the first one's result stands). */
        struct store_command *first = NULL;
        char other[512];
        if (store_get_command(g->ctx.store, cmd->command_id, &first) == 0 &&
            !grpc_command_same_as_recorded(first, intake_kind_to_string(req.rq.kind), req.rq.stack,
                                           other, sizeof(other))) {
            out.error = other;
            log_warnx("grpc: %s", other);
        }
        store_command_free(first);
        send_result(g, &out);
        break;
    }
    case INTAKE_SUPERSEDED: {
        struct store_stack *s = NULL;
        if (req.rq.stack && store_get_stack(g->ctx.store, req.rq.stack, &s) == 0)
            out.stored_generation = (uint64_t)s->generation;
        store_stack_free(s);
        out.outcome = OUT(SUPERSEDED);
        out.error = res.error;
        send_result(g, &out);
        break;
    }
    default: {
        grpc_pb_error_code code = grpc_command_refusal_code(req.rq.kind, res.error);
        if (req.rq.kind == INTAKE_REMOVE && code == CODE(NOT_FOUND)) {
            /* A stack the agent does not hold: nothing to remove (commands.proto). */
            out.outcome = OUT(DONE);
        } else {
            out.outcome = OUT(REJECTED);
            out.error_code = code;
            out.error = res.error;
        }
        send_result(g, &out);
        break;
    }
    }
    intake_result_release(&res);
    grpc_command_request_release(&req);
}

static void on_command(struct grpc_source *g, const grpc_pb_command *cmd, int64_t received)
{
    grpc_pb_kind kind = grpc_command_kind(cmd);
    struct grpc_command_refusal why;
    if (grpc_command_check_envelope(cmd, g->id ? g->id->agent_id : NULL, &why) < 0) {
        /* An id that breaks the rules is not echoed back as one. */
        bool id_ok = why.code == CODE(WRONG_AGENT);
        reject(g, id_ok ? cmd->command_id : "", kind, why.code, why.error, received);
        return;
    }
    log_debug("grpc: command %s (kind %d)", cmd->command_id, (int)kind);
    switch (cmd->body_case) {
    case AXION__AGENT__V1__COMMAND__BODY_LOGS:
        start_logs(g, cmd, received);
        return;
    case AXION__AGENT__V1__COMMAND__BODY_DEPLOY:
    case AXION__AGENT__V1__COMMAND__BODY_REMOVE_STACK:
    case AXION__AGENT__V1__COMMAND__BODY_STOP:
    case AXION__AGENT__V1__COMMAND__BODY_START:
    case AXION__AGENT__V1__COMMAND__BODY_RESTART:
    case AXION__AGENT__V1__COMMAND__BODY_SCALE:
    case AXION__AGENT__V1__COMMAND__BODY_RECONCILE_NOW:
    case AXION__AGENT__V1__COMMAND__BODY_SWARM_INIT:
    case AXION__AGENT__V1__COMMAND__BODY_SWARM_JOIN:
    case AXION__AGENT__V1__COMMAND__BODY_SWARM_LEAVE:
        state_command(g, cmd, kind, received);
        return;
    default: {
        char e[160];
        if (kind == K(UNSPECIFIED))
            snprintf(e, sizeof(e), "the Command has no body");
        else
            snprintf(e, sizeof(e),
                     "command kind %d (Command field %d) is not known to this agent (version %s)",
                     (int)kind, (int)kind, AXION_VERSION);
        reject(g, cmd->command_id, kind,
               kind == K(UNSPECIFIED) ? CODE(MALFORMED) : CODE(UNSUPPORTED), e, received);
        return;
    }
    }
}

static void on_message(const void *data, size_t len, void *userdata)
{
    struct grpc_source *g = userdata;
    int64_t received = now_ms();
    Axion__Agent__V1__ControlMessage *m =
        axion__agent__v1__control_message__unpack(NULL, len, data);
    if (!m) {
        char e[160];
        snprintf(e, sizeof(e),
                 "a message of %zu bytes from the Control Plane does not decode as "
                 "axion.agent.v1.ControlMessage",
                 len);
        log_warnx("grpc: %s", e);
        reject(g, "", K(UNSPECIFIED), CODE(MALFORMED), e, received);
        return;
    }
    switch (m->body_case) {
    case AXION__AGENT__V1__CONTROL_MESSAGE__BODY_COMMAND:
        on_command(g, m->command, received);
        break;
    case AXION__AGENT__V1__CONTROL_MESSAGE__BODY_CANCEL_LOGS:
        cancel_logs(g, m->cancel_logs->command_id);
        break;
    default: {
        char e[160];
        unsigned field = m->base.n_unknown_fields ? m->base.unknown_fields[0].tag : 0;
        if (field)
            snprintf(e, sizeof(e),
                     "a ControlMessage with field %u, which this agent (version %s) does not know",
                     field, AXION_VERSION);
        else
            snprintf(e, sizeof(e), "an empty ControlMessage");
        log_warnx("grpc: %s", e);
        reject(g, "", K(UNSPECIFIED), CODE(UNSUPPORTED), e, received);
        break;
    }
    }
    axion__agent__v1__control_message__free_unpacked(m, NULL);
}

/* ---- reports -------------------------------------------------------------------------------- */

static void report_info(struct grpc_source *g, struct grpc_report_info *in)
{
    *in = (struct grpc_report_info){
        .agent_id = g->id->agent_id,
        .version = AXION_VERSION,
        .hostname = g->hostname,
        .heartbeat_interval_ms = (uint32_t)g->cfg->control_plane.heartbeat_interval_ms,
        .passes = g->passes,
        .last_pass_ms = g->last_pass_ms,
        .kafka_on = g->cfg->kafka.brokers.n > 0 && !g->cfg->local.enabled,
        .pending_commands = (uint32_t)tracker_pending(g->ctx.tracker),
        .log_streams = (uint32_t)g->n_logs,
    };
    g->ctx.node_state(g->ctx.userdata, &in->node);
    in->started_at_ms = in->node.started_at;
}

static grpc_byte_buffer *take_bytes(uint8_t *data, size_t len)
{
    grpc_slice s = grpc_slice_new(data, len, free);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

static void on_heartbeat(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct grpc_source *g = w->data;
    if (!g->stream || !grpc_stream_ready(g->stream))
        return;
    /* One waiting is enough: a stalled connection does not pile them up. */
    if (grpc_stream_queued(g->stream, GRPC_STREAM_PRIO_CONTROL) > 0) {
        log_debug("grpc: the previous heartbeat is still queued; skipping one");
        return;
    }
    struct grpc_report_info in;
    report_info(g, &in);
    uint8_t *data = NULL;
    size_t len = 0;
    int r = grpc_report_heartbeat(g->ctx.store, &in, ++g->hb_seq, now_ms(), &data, &len);
    if (r < 0) {
        log_warnx("grpc: cannot build the heartbeat: %s",
                  r == -ENOMEM ? "out of memory" : store_errmsg(g->ctx.store));
        return;
    }
    grpc_byte_buffer *bb = take_bytes(data, len);
    if (bb)
        grpc_stream_send(g->stream, GRPC_STREAM_PRIO_CONTROL, bb, false, NULL, NULL);
}

static void on_pass(const struct reconciler_pass_report *rep, void *userdata);

/* ---- the stream ----------------------------------------------------------------------------- */

static void on_ready(void *userdata)
{
    struct grpc_source *g = userdata;
    g->streams++;
    g->connected_since = now_ms();
    backoff_reset(&g->backoff);
    g->next_attempt_at = 0;
    set_state(g, ST_CONNECTED, NULL);
    double iv = (double)g->cfg->control_plane.heartbeat_interval_ms / 1000.0;
    ev_timer_set(&g->heartbeat, iv, iv);
    ev_timer_start(g->ctx.loop, &g->heartbeat);
    backlog_flush(g);
}

/* The words of the Control Plane's refusals (control.proto), for people. */
static const char *reason_text(const char *reason)
{
    static const struct {
        const char *reason, *text;
    } texts[] = {
        {"cert-revoked",
         "the Control Plane revoked this agent's certificate: enroll again with a new "
         "agent.token"},
        {"no-identity", "the Control Plane finds no agent id (common name) in this agent's "
                        "certificate"},
        {"agent-id-mismatch", "the Control Plane says a message named another agent than the "
                              "certificate"},
        {"hello-expected", "the Control Plane expected a Hello first"},
        {"stream-replaced", "another connection with this agent's identity replaced this stream "
                            "(two agents with one identity?)"},
        {"bad-message", "the Control Plane could not decode a message of this agent"},
        {"wrong-endpoint", "this endpoint does not serve the call (control_plane.grpc_url and "
                           "enroll_url swapped?)"},
    };
    for (size_t i = 0; reason && i < ARRAY_SIZE(texts); i++)
        if (streq(texts[i].reason, reason))
            return texts[i].text;
    return NULL;
}

/* Why a connection attempt or a stream failed, for the log and status. */
static void describe_failure(struct grpc_source *g, const struct grpc_wire_end *e, const char *what,
                             const char *target, const char *ca_hint, char *out, size_t outlen)
{
    char raw[700];
    grpc_wire_end_describe(e, raw, sizeof(raw));
    switch (grpc_wire_cause(e)) {
    case GRPC_WIRE_TLS_SERVER:
        snprintf(
            out, outlen,
            "%s %s: the Control Plane's server certificate is not trusted: it is not signed by "
            "%s (TLS handshake: %s)",
            what, target, ca_hint, raw);
        break;
    case GRPC_WIRE_TLS_REFUSED:
        snprintf(out, outlen,
                 "%s %s: the Control Plane refused this agent's client certificate: it closed the "
                 "connection in the TLS handshake (a certificate it does not trust: signed by "
                 "another CA, expired or revoked) (%s)",
                 what, target, raw);
        break;
    case GRPC_WIRE_TLS_OTHER:
        snprintf(out, outlen, "%s %s: the TLS handshake failed: %s", what, target, raw);
        break;
    case GRPC_WIRE_NETWORK:
        if (strstr(raw, "keepalive"))
            snprintf(out, outlen,
                     "%s %s: the Control Plane stopped answering (no answer to a keepalive ping "
                     "within %" PRIu64 " ms): %s",
                     what, target, g->cfg->control_plane.keepalive_timeout_ms, raw);
        else
            snprintf(out, outlen, "%s %s: cannot reach the Control Plane (network): %s", what,
                     target, raw);
        break;
    default: {
        const char *t = reason_text(e->reason);
        if (t)
            snprintf(out, outlen, "%s %s: %s (%s %s)", what, target, t,
                     grpc_wire_status_name(e->status), e->reason);
        else
            snprintf(out, outlen, "%s %s: the Control Plane answered %s", what, target, raw);
        break;
    }
    }
}

static void on_ended(const struct grpc_wire_end *end, void *userdata)
{
    struct grpc_source *g = userdata;
    g->stream = NULL;
    ev_timer_stop(g->ctx.loop, &g->heartbeat);
    /* Logs do not outlive their stream (a Logs command is never resumed). */
    for (size_t i = g->n_logs; i-- > 0;)
        grpc_logs_stream_ended(g->logs[i]);
    if (g->stopping) {
        char raw[700];
        grpc_wire_end_describe(end, raw, sizeof(raw));
        log_info("grpc: the stream ended: %s", raw);
        return;
    }
    char why[TEXT_MAX];
    describe_failure(g, end, "stream to", g->target,
                     g->id && g->id->from_files
                         ? "control_plane.ca_file"
                         : "the CA bundle the Control Plane gave at enrollment",
                     why, sizeof(why));
    if (g->chan_stale)
        g->chan = chan_destroy(g->chan);
    schedule_retry(g);
    set_state(g, ST_RETRYING, "%s", why);
}

static const struct grpc_stream_ops stream_ops = {
    .ready = on_ready,
    .message = on_message,
    .ended = on_ended,
};

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct grpc_source *g = w->data;
    g->next_attempt_at = 0;
    if (g->stopping)
        return;
    if (!g->id)
        enroll(g);
    else
        connect_now(g);
}

static void schedule_retry(struct grpc_source *g)
{
    uint64_t ms = backoff_fail(&g->backoff);
    g->next_attempt_at = now_ms() + (int64_t)ms;
    ev_timer_stop(g->ctx.loop, &g->retry);
    ev_timer_set(&g->retry, (double)ms / 1000.0, 0.);
    ev_timer_start(g->ctx.loop, &g->retry);
    log_debug("grpc: next attempt in %" PRIu64 " ms", ms);
    /* Meanwhile the channel tries to connect by itself; READY opens the stream at once. */
    if (g->chan && !g->chan_stale)
        g->chan->state = grpc_channel_check_connectivity_state(g->chan->ch, 1);
}

static bool identity_expired(struct grpc_source *g)
{
    return g->id && g->id->not_after <= now_ms();
}

static void connect_now(struct grpc_source *g)
{
    if (g->stream || g->stopping)
        return;
    if (identity_expired(g)) {
        char when[32];
        time_t t = (time_t)(g->id->not_after / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (!g->id->from_files && g->cfg->agent.token) {
            log_warnx("grpc: the client certificate expired at %s: enrolling again with "
                      "agent.token",
                      when);
            grpc_identity_free(g->id);
            g->id = NULL;
            g->chan = chan_destroy(g->chan);
            enroll(g);
            return;
        }
        set_state(g, ST_ERROR, "the client certificate expired at %s%s: %s", when,
                  g->id->from_files ? " (control_plane.cert_file)" : "",
                  g->id->from_files ? "put a valid certificate there and restart the agent"
                                    : "the agent could not renew it in time; set agent.token to a "
                                      "new enrollment token and restart the agent");
        return;
    }
    if (ensure_chan(g) < 0) {
        schedule_retry(g);
        set_state(g, ST_RETRYING, "out of memory creating the channel");
        return;
    }
    int r = grpc_stream_open(g->chan->ch, g->pump, METHOD_CONNECT, &stream_ops, g, &g->stream);
    if (r < 0) {
        g->stream = NULL;
        schedule_retry(g);
        set_state(g, ST_RETRYING, "cannot open the stream: %s", strerror(-r));
        return;
    }
    struct grpc_report_info in;
    report_info(g, &in);
    uint8_t *data = NULL;
    size_t len = 0;
    r = grpc_report_hello(g->ctx.store, &in, &data, &len);
    if (r < 0) {
        log_warnx("grpc: cannot build the Hello: %s",
                  r == -ENOMEM ? "out of memory" : store_errmsg(g->ctx.store));
        grpc_stream_cancel(g->stream);
        return;
    }
    grpc_byte_buffer *bb = take_bytes(data, len);
    if (!bb || grpc_stream_send(g->stream, GRPC_STREAM_PRIO_CONTROL, bb, true, NULL, NULL) < 0) {
        grpc_stream_cancel(g->stream);
        return;
    }
    if (g->state != ST_RETRYING)
        set_state(g, ST_CONNECTING, NULL);
}

/* ---- identity: enrollment and renewal ------------------------------------------------------ */

static void fact(char *dst, size_t dstlen, const char *src)
{
    /* Facts are at most 256 bytes (control.proto). */
    grpc_command_cut_text(src ? src : "", dst, dstlen < 257 ? dstlen : 257);
}

static void read_line_file(const char *path, const char *key, char *out, size_t outlen)
{
    out[0] = '\0';
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!key) {
            snprintf(out, outlen, "%s", line);
            break;
        }
        size_t k = strlen(key);
        if (strncmp(line, key, k) == 0 && line[k] == '=') {
            const char *v = line + k + 1;
            size_t n = strlen(v);
            if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
                snprintf(out, outlen, "%.*s", (int)(n - 2), v + 1);
            else
                snprintf(out, outlen, "%s", v);
            break;
        }
    }
    fclose(f);
}

/* Checks an identity the Control Plane sent (grpc_identity_check_issued: sizes, every block a
 * certificate, the chain for our key and the id, valid now). */
static int check_issued(const char *what, const char *agent_id, const char *chain,
                        const char *ca_bundle, const char *key_pem, struct grpc_cert_info *info,
                        char *err, size_t errlen)
{
    char why[TEXT_MAX - 64];
    int r = grpc_identity_check_issued(agent_id, chain, ca_bundle, key_pem, now_ms(), info, why,
                                       sizeof(why));
    if (r < 0)
        snprintf(err, errlen, "the %s answer of the Control Plane: %s", what, why);
    return r;
}

/* Whether the agent's id is what the identity says; else the channel stays down. */
static bool agent_id_agrees(struct grpc_source *g)
{
    const char *cfg_id = g->cfg->agent.id ? g->cfg->agent.id : "";
    if (streq(cfg_id, g->id->agent_id))
        return true;
    if (g->cfg->origin[CONFIG_AGENT_ID].origin == CONFIG_ORIGIN_DEFAULT) {
        char why[256];
        snprintf(why, sizeof(why), "enrolled as agent \"%s\" (this run used the hostname \"%s\")",
                 g->id->agent_id, cfg_id);
        set_state(g, ST_STOPPED,
                  "restarting to take the agent id \"%s\" the Control Plane "
                  "assigned (agent.id is unset)",
                  g->id->agent_id);
        if (g->ctx.restart)
            g->ctx.restart(g->ctx.userdata, why);
        return false;
    }
    set_state(
        g, ST_ERROR,
        "agent.id is \"%s\" but the Control Plane enrolled this agent as \"%s\": set agent.id "
        "= \"%s\" (or remove it) and restart the agent",
        cfg_id, g->id->agent_id, g->id->agent_id);
    return false;
}

static void after_identity(struct grpc_source *g)
{
    if (!agent_id_agrees(g))
        return;
    arm_renewal(g);
    connect_now(g);
}

static const char *enroll_reason_text(const char *reason)
{
    static const struct {
        const char *reason, *text;
    } texts[] = {
        {"token-unknown", "the enrollment token (agent.token) is unknown to the Control Plane: "
                          "check that it was copied whole, or get a new one"},
        {"token-used", "the enrollment token (agent.token) was used before: a token enrolls one "
                       "agent once; get a new token"},
        {"token-expired", "the enrollment token (agent.token) has expired: get a new one"},
        {"bad-csr", "the Control Plane refused the agent's certificate request"},
        {"bad-request", "the Control Plane refused the enrollment request"},
        {"wrong-endpoint", "this endpoint does not serve Enroll: set control_plane.enroll_url to "
                           "the enrollment endpoint"},
    };
    for (size_t i = 0; reason && i < ARRAY_SIZE(texts); i++)
        if (streq(texts[i].reason, reason))
            return texts[i].text;
    return NULL;
}

static void enroll_done(const struct grpc_wire_end *end, const void *data, size_t len,
                        void *userdata)
{
    struct grpc_source *g = userdata;
    g->enroll_call = NULL;
    _cleanup_free_ char *key_file = TAKE_PTR(g->renew_key_file);
    char *key_pem = TAKE_PTR(g->renew_key_pem);
    g->enroll_chan = chan_destroy(g->enroll_chan);
    if (g->stopping) {
        if (key_file)
            unlink(key_file);
        grpc_identity_free_secret(key_pem);
        return;
    }
    if (end->status != GRPC_STATUS_OK) {
        if (key_file)
            unlink(key_file);
        grpc_identity_free_secret(key_pem);
        const char *known = enroll_reason_text(end->reason);
        if (known && grpc_wire_cause(end) == GRPC_WIRE_ANSWER) {
            set_state(g, ST_ERROR, "enrollment at %s refused: %s (%s %s)", g->enroll_target, known,
                      grpc_wire_status_name(end->status), end->reason);
            return;
        }
        char why[TEXT_MAX];
        describe_failure(g, end, "enrollment at", g->enroll_target,
                         g->cfg->control_plane.ca_file ? "the CA of control_plane.ca_file"
                                                       : "a CA of the system's trust store",
                         why, sizeof(why));
        mask_token(why, g->cfg->agent.token);
        schedule_retry(g);
        set_state(g, ST_RETRYING, "%s", why);
        return;
    }
    Axion__Agent__V1__EnrollResponse *resp =
        axion__agent__v1__enroll_response__unpack(NULL, len, data);
    char err[TEXT_MAX] = "";
    struct grpc_cert_info info;
    int r = resp ? 0 : -EBADMSG;
    if (!resp)
        snprintf(err, sizeof(err), "the Enroll answer (%zu bytes) does not decode", len);
    if (r == 0)
        r = check_issued("Enroll", resp->agent_id, resp->cert_chain_pem, resp->ca_bundle_pem,
                         key_pem, &info, err, sizeof(err));
    _cleanup_free_ char *ca = NULL;
    if (r == 0) {
        /* The bundle to trust for the control endpoint; without one, what enrolled us. */
        if (resp->ca_bundle_pem && *resp->ca_bundle_pem)
            ca = strdup(resp->ca_bundle_pem);
        else if (g->cfg->control_plane.ca_file)
            grpc_identity_read_file(g->cfg->control_plane.ca_file, &ca, err, sizeof(err));
        else
            ca = strdup("");
        if (!ca) {
            r = -ENOMEM;
            if (!*err)
                snprintf(err, sizeof(err), "out of memory");
        }
    }
    if (r == 0) {
        int64_t t = now_ms();
        struct store_identity row = {
            .agent_id = resp->agent_id,
            .key_file = key_file,
            .cert_chain_pem = resp->cert_chain_pem,
            .ca_bundle_pem = *ca ? ca : resp->cert_chain_pem,
            .not_before = info.not_before,
            .not_after = info.not_after,
            .enrolled_at = t,
        };
        r = store_put_identity(g->ctx.store, &row);
        if (r < 0)
            snprintf(err, sizeof(err), "cannot store the identity: %s", store_errmsg(g->ctx.store));
    }
    if (resp)
        axion__agent__v1__enroll_response__free_unpacked(resp, NULL);
    if (r < 0) {
        /* The token is spent: say so, the operator needs a new one. */
        unlink(key_file);
        grpc_identity_free_secret(key_pem);
        set_state(g, ST_ERROR, "enrollment at %s: %s (the token is spent: a new one is needed)",
                  g->enroll_target, err);
        return;
    }
    grpc_identity_free_secret(key_pem);
    grpc_identity_prune_keys(g->cfg->agent.state_dir, key_file);
    r = grpc_identity_load(g->ctx.store, NULL, NULL, NULL, &g->id, err, sizeof(err));
    if (r < 0) {
        set_state(g, ST_ERROR, "the identity just enrolled does not load: %s", err);
        return;
    }
    log_info("grpc: enrolled at %s as agent %s (certificate valid until %" PRId64 " ms)",
             g->enroll_target, g->id->agent_id, g->id->not_after);
    backoff_reset(&g->backoff);
    after_identity(g);
}

static void enroll(struct grpc_source *g)
{
    const char *token = g->cfg->agent.token;
    if (!token || !*token) {
        set_state(g, ST_ERROR,
                  "not enrolled: set agent.token to an enrollment token of the Control Plane (or "
                  "control_plane.cert_file and key_file to an identity made by hand)");
        return;
    }
    if (strlen(token) > 512) {
        set_state(g, ST_ERROR, "agent.token: longer than 512 bytes (the protocol's limit)");
        return;
    }
    char err[TEXT_MAX] = "";
    _cleanup_free_ char *ca = NULL;
    if (g->cfg->control_plane.ca_file &&
        grpc_identity_read_file(g->cfg->control_plane.ca_file, &ca, err, sizeof(err)) < 0) {
        set_state(g, ST_ERROR, "control_plane.ca_file: %s", err);
        return;
    }
    char *key_pem = NULL, *csr = NULL, *key_file = NULL;
    int r = grpc_identity_keygen(&key_pem, err, sizeof(err));
    if (r == 0)
        r = grpc_identity_write_key(g->cfg->agent.state_dir, key_pem, &key_file, err, sizeof(err));
    if (r == 0)
        r = grpc_identity_csr(key_pem, g->hostname, &csr, err, sizeof(err));
    if (r < 0) {
        if (key_file)
            unlink(key_file);
        free(key_file);
        grpc_identity_free_secret(key_pem);
        set_state(g, ST_ERROR, "cannot make the agent's key: %s", err);
        return;
    }
    struct utsname u;
    uname(&u);
    char os[257], kernel[257], arch[257], machine[257], line[512];
    read_line_file("/etc/os-release", "PRETTY_NAME", line, sizeof(line));
    fact(os, sizeof(os), line);
    fact(kernel, sizeof(kernel), u.release);
    fact(arch, sizeof(arch), u.machine);
    read_line_file("/etc/machine-id", NULL, line, sizeof(line));
    fact(machine, sizeof(machine), line);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    static char empty[] = "";
    Axion__Agent__V1__HostFacts facts = AXION__AGENT__V1__HOST_FACTS__INIT;
    facts.os = os;
    facts.kernel = kernel;
    facts.arch = arch;
    facts.cpus = cpus > 0 ? (uint32_t)cpus : 0;
    facts.memory_bytes = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    facts.docker_version = empty;
    facts.agent_version = AXION_VERSION;
    facts.machine_id = machine;
    Axion__Agent__V1__EnrollRequest req = AXION__AGENT__V1__ENROLL_REQUEST__INIT;
    req.token = (char *)token;
    req.csr_pem = csr;
    req.hostname = g->hostname;
    req.facts = &facts;
    grpc_byte_buffer *bb = grpc_wire_pack(&req.base, 0, NULL);
    free(csr);
    grpc_channel_credentials *creds =
        g->enroll_insecure ? grpc_insecure_credentials_create()
                           : grpc_ssl_credentials_create(ca && *ca ? ca : NULL, NULL, NULL, NULL);
    g->enroll_chan = chan_destroy(g->enroll_chan);
    g->enroll_chan = creds ? chan_new(g, g->enroll_target, creds) : NULL;
    g->renew_key_file = key_file;
    g->renew_key_pem = key_pem;
    if (!bb || !g->enroll_chan ||
        !(g->enroll_call = grpc_unary_start(g->enroll_chan->ch, g->pump, METHOD_ENROLL, bb,
                                            UNARY_TIMEOUT_MS, enroll_done, g))) {
        if (g->renew_key_file)
            unlink(g->renew_key_file);
        free(TAKE_PTR(g->renew_key_file));
        grpc_identity_free_secret(TAKE_PTR(g->renew_key_pem));
        g->enroll_chan = chan_destroy(g->enroll_chan);
        schedule_retry(g);
        set_state(g, ST_RETRYING, "out of memory starting the enrollment");
        return;
    }
    set_state(g, ST_ENROLLING, NULL);
}

static void renew_done(const struct grpc_wire_end *end, const void *data, size_t len,
                       void *userdata)
{
    struct grpc_source *g = userdata;
    g->renew_call = NULL;
    g->renew_chan = chan_destroy(g->renew_chan);
    _cleanup_free_ char *key_file = TAKE_PTR(g->renew_key_file);
    char *key_pem = TAKE_PTR(g->renew_key_pem);
    char err[TEXT_MAX] = "";
    int r = 0;
    Axion__Agent__V1__RenewResponse *resp = NULL;
    struct grpc_cert_info info;
    if (g->stopping) {
        r = -ECANCELED;
    } else if (end->status != GRPC_STATUS_OK) {
        describe_failure(g, end, "renewal at", g->target, "the CA bundle of the identity", err,
                         sizeof(err));
        r = -EIO;
    } else if (!(resp = axion__agent__v1__renew_response__unpack(NULL, len, data))) {
        snprintf(err, sizeof(err), "the Renew answer (%zu bytes) does not decode", len);
        r = -EBADMSG;
    } else {
        r = check_issued("Renew", g->id->agent_id, resp->cert_chain_pem, resp->ca_bundle_pem,
                         key_pem, &info, err, sizeof(err));
    }
    if (r == 0) {
        const char *ca =
            resp->ca_bundle_pem && *resp->ca_bundle_pem ? resp->ca_bundle_pem : g->id->ca_pem;
        struct store_identity row = {
            .agent_id = g->id->agent_id,
            .key_file = key_file,
            .cert_chain_pem = resp->cert_chain_pem,
            .ca_bundle_pem = (char *)ca,
            .not_before = info.not_before,
            .not_after = info.not_after,
            .enrolled_at = g->id->enrolled_at,
            .renewed_at = now_ms(),
        };
        r = store_put_identity(g->ctx.store, &row);
        if (r < 0)
            snprintf(err, sizeof(err), "cannot store the renewed identity: %s",
                     store_errmsg(g->ctx.store));
    }
    if (resp)
        axion__agent__v1__renew_response__free_unpacked(resp, NULL);
    if (r < 0) {
        if (key_file)
            unlink(key_file);
        grpc_identity_free_secret(key_pem);
        if (r == -ECANCELED)
            return;
        /* Try again before it expires: the backoff, but never later than a quarter of what is
         * left. */
        uint64_t ms = backoff_fail(&g->renew_backoff);
        int64_t left = g->id->not_after - now_ms();
        if (left > 0 && (int64_t)ms > left / 4)
            ms = (uint64_t)(left / 4 > 1000 ? left / 4 : 1000);
        log_warnx("grpc: renewing the certificate failed, trying again in %" PRIu64 " ms: %s", ms,
                  err);
        ev_timer_set(&g->renew, (double)ms / 1000.0, 0.);
        ev_timer_start(g->ctx.loop, &g->renew);
        return;
    }
    grpc_identity_free_secret(key_pem);
    struct grpc_identity *next = NULL;
    r = grpc_identity_load(g->ctx.store, NULL, NULL, NULL, &next, err, sizeof(err));
    if (r < 0) {
        /* The stream keeps the identity it has; renewal is tried again (never left unarmed). */
        uint64_t ms = backoff_fail(&g->renew_backoff);
        log_error("grpc: the renewed identity does not load (trying again in %" PRIu64 " ms): %s",
                  ms, err);
        ev_timer_set(&g->renew, (double)ms / 1000.0, 0.);
        ev_timer_start(g->ctx.loop, &g->renew);
        return;
    }
    grpc_identity_prune_keys(g->cfg->agent.state_dir, next->key_file);
    grpc_identity_free(g->id);
    g->id = next;
    /* The open stream stays on its connection; the next one presents the new certificate. */
    g->chan_stale = true;
    if (!g->stream)
        g->chan = chan_destroy(g->chan);
    backoff_reset(&g->renew_backoff);
    log_info("grpc: certificate renewed (valid until %" PRId64 " ms)", g->id->not_after);
    write_status(g);
    arm_renewal(g);
}

static void on_renew(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct grpc_source *g = w->data;
    if (g->stopping || !g->id || g->id->from_files || g->renew_call)
        return;
    if (identity_expired(g))
        return; /* too late: the next connection attempt says so */
    /* A channel of its own: the stream's may still present an older certificate. */
    g->renew_chan = chan_destroy(g->renew_chan);
    g->renew_chan = identity_chan(g);
    if (!g->renew_chan) {
        ev_timer_set(&g->renew, 5., 0.);
        ev_timer_start(loop, &g->renew);
        return;
    }
    char err[TEXT_MAX] = "";
    char *key_pem = NULL, *csr = NULL, *key_file = NULL;
    int r = grpc_identity_keygen(&key_pem, err, sizeof(err));
    if (r == 0)
        r = grpc_identity_write_key(g->cfg->agent.state_dir, key_pem, &key_file, err, sizeof(err));
    if (r == 0)
        r = grpc_identity_csr(key_pem, g->id->agent_id, &csr, err, sizeof(err));
    if (r < 0) {
        if (key_file)
            unlink(key_file);
        free(key_file);
        grpc_identity_free_secret(key_pem);
        log_error("grpc: cannot make a key to renew the certificate: %s", err);
        ev_timer_set(&g->renew, 60., 0.);
        ev_timer_start(loop, &g->renew);
        return;
    }
    Axion__Agent__V1__RenewRequest req = AXION__AGENT__V1__RENEW_REQUEST__INIT;
    req.csr_pem = csr;
    grpc_byte_buffer *bb = grpc_wire_pack(&req.base, 0, NULL);
    free(csr);
    g->renew_key_file = key_file;
    g->renew_key_pem = key_pem;
    log_info("grpc: renewing the certificate (valid until %" PRId64 " ms)", g->id->not_after);
    g->renew_call = bb ? grpc_unary_start(g->renew_chan->ch, g->pump, METHOD_RENEW, bb,
                                          UNARY_TIMEOUT_MS, renew_done, g)
                       : NULL;
    if (!g->renew_call) {
        g->renew_chan = chan_destroy(g->renew_chan);
        unlink(key_file);
        free(TAKE_PTR(g->renew_key_file));
        grpc_identity_free_secret(TAKE_PTR(g->renew_key_pem));
        ev_timer_set(&g->renew, 5., 0.);
        ev_timer_start(loop, &g->renew);
    }
}

static void arm_renewal(struct grpc_source *g)
{
    ev_timer_stop(g->ctx.loop, &g->renew);
    if (!g->id || g->id->from_files)
        return;
    int64_t in = grpc_identity_renew_at(g->id) - now_ms();
    ev_timer_set(&g->renew, in > 0 ? (double)in / 1000.0 : 0., 0.);
    ev_timer_start(g->ctx.loop, &g->renew);
}

/* ---- the loop's reports ------------------------------------------------------------------- */

static void on_pass(const struct reconciler_pass_report *rep, void *userdata)
{
    struct grpc_source *g = userdata;
    g->passes++;
    int64_t d = rep->finished_at - rep->started_at;
    g->last_pass_ms = d > 0 ? (uint32_t)d : 0;
}

/* ---- life cycle ----------------------------------------------------------------------------- */

bool grpc_source_configured(const struct config *cfg)
{
    return cfg->control_plane.grpc_url && *cfg->control_plane.grpc_url && !cfg->local.enabled;
}

int grpc_source_enrolled_id(struct store *st, char **ret)
{
    struct store_identity *id = NULL;
    int r = store_get_identity(st, &id);
    if (r < 0)
        return r;
    *ret = TAKE_PTR(id->agent_id);
    store_identity_free(id);
    return *ret ? 0 : -ENOMEM;
}

/* Logs commands that were streaming when the agent stopped ended with it. */
static void close_stale_logs(struct grpc_source *g)
{
    struct store_command *c = NULL;
    size_t n = 0;
    if (store_list_commands(g->ctx.store, 0, &c, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (c[i].status == STORE_COMMAND_ACCEPTED && c[i].kind && streq(c[i].kind, "logs") &&
            c[i].source && streq(c[i].source, "grpc"))
            store_update_command(g->ctx.store, c[i].command_id, STORE_COMMAND_FAILED,
                                 "the agent stopped while the logs streamed");
    store_command_array_free(c, n);
}

int grpc_source_new(const struct source_ctx *ctx, struct grpc_source **ret)
{
    const struct config *cfg = ctx->cfg;
    struct grpc_source *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->ctx = *ctx;
    g->cfg = cfg;
    g->state_since = now_ms();
    char err[512];
    int r = parse_url(cfg->control_plane.grpc_url, &g->target, &g->insecure, err, sizeof(err));
    if (r == 0)
        r = parse_url(cfg->control_plane.enroll_url ? cfg->control_plane.enroll_url
                                                    : cfg->control_plane.grpc_url,
                      &g->enroll_target, &g->enroll_insecure, err, sizeof(err));
    if (r < 0) {
        if (r == -EINVAL)
            log_error("grpc: control_plane: %s", err);
        grpc_source_free(g);
        return r;
    }
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
        snprintf(host, sizeof(host), "unknown");
    g->hostname = strdup(host);
    if (!g->hostname) {
        grpc_source_free(g);
        return -ENOMEM;
    }
    ev_timer_init(&g->retry, on_retry, 0., 0.);
    ev_timer_init(&g->heartbeat, on_heartbeat, 0., 0.);
    ev_timer_init(&g->renew, on_renew, 0., 0.);
    g->retry.data = g->heartbeat.data = g->renew.data = g;
    backoff_init(&g->backoff, &BACKOFF_POLICY_GRPC, 0);
    backoff_init(&g->renew_backoff, &BACKOFF_POLICY_GRPC, 0);
    g->logs_host = (struct grpc_logs_host){
        .ctx = &g->ctx, .stream = logs_stream, .done = logs_done, .userdata = g};

    /* gRPC's threads (started here and when channels are made) get no signals: the loop's
     * ev_signal watchers take them. */
    sigset_t old;
    grpc_pump_signals_block(&old);
    grpc_init();
    grpc_pump_signals_restore(&old);
    g->grpc_up = true;
    r = grpc_pump_new(ctx->loop, &g->pump);
    if (r < 0) {
        grpc_source_free(g);
        return r;
    }
    *ret = g;
    return 0;
}

int grpc_source_start(struct grpc_source *g)
{
    if (g->started)
        return 0;
    g->started = true;
    int r = tracker_set_sink(g->ctx.tracker, "grpc", on_final, g);
    if (r == 0 && g->ctx.observe)
        r = g->ctx.observe(g->ctx.userdata, on_pass, g);
    if (r < 0)
        return r;
    close_stale_logs(g);
    const struct config *cfg = g->cfg;
    char err[TEXT_MAX] = "";
    r = grpc_identity_load(g->ctx.store, cfg->control_plane.cert_file, cfg->control_plane.key_file,
                           cfg->control_plane.ca_file, &g->id, err, sizeof(err));
    if (r == -ENOENT && !(cfg->control_plane.cert_file && cfg->control_plane.key_file)) {
        enroll(g);
        return 0;
    }
    if (r < 0) {
        set_state(g, ST_ERROR, "the agent's identity: %s", err);
        return 0;
    }
    if (!g->id->from_files)
        grpc_identity_prune_keys(cfg->agent.state_dir, g->id->key_file);
    after_identity(g);
    return 0;
}

void grpc_source_stop(struct grpc_source *g)
{
    if (!g || g->stopping)
        return;
    g->stopping = true;
    ev_timer_stop(g->ctx.loop, &g->retry);
    ev_timer_stop(g->ctx.loop, &g->heartbeat);
    ev_timer_stop(g->ctx.loop, &g->renew);
    grpc_unary_cancel(g->enroll_call);
    grpc_unary_cancel(g->renew_call);
    for (size_t i = g->n_logs; i-- > 0;)
        grpc_logs_stop(g->logs[i], "the agent is stopping");
    if (g->stream)
        grpc_stream_close(g->stream);
    if (g->state != ST_ERROR)
        set_state(g, ST_STOPPED, NULL);
}

struct grpc_source *grpc_source_free(struct grpc_source *g)
{
    if (!g)
        return NULL;
    if (g->started) {
        tracker_set_sink(g->ctx.tracker, "grpc", NULL, NULL);
        if (g->ctx.observe)
            g->ctx.observe(g->ctx.userdata, NULL, g);
    }
    grpc_source_stop(g);
    if (g->pump) {
        /* A closing stream gets a moment to end cleanly (its half-close and the status). */
        int64_t until = now_ms() + STOP_GRACE_MS;
        while (g->stream && now_ms() < until)
            grpc_pump_wait(g->pump, 100);
        if (g->stream)
            grpc_stream_cancel(g->stream);
        until = now_ms() + 5000;
        while ((g->stream || g->enroll_call || g->renew_call) && now_ms() < until)
            grpc_pump_wait(g->pump, 100);
    }
    for (size_t i = 0; i < g->n_logs; i++)
        grpc_logs_free(g->logs[i]);
    free(g->logs);
    g->chan = chan_destroy(g->chan);
    g->enroll_chan = chan_destroy(g->enroll_chan);
    g->renew_chan = chan_destroy(g->renew_chan);
    g->pump = grpc_pump_free(g->pump);
    struct backlog_item *it;
    while ((it = backlog_pop(g))) {
        free(it->data);
        free(it);
    }
    for (size_t i = 0; i < g->n_notes; i++) {
        free(g->notes[i].command_id);
        free(g->notes[i].service);
    }
    free(g->notes);
    if (g->renew_key_file)
        unlink(g->renew_key_file);
    free(g->renew_key_file);
    grpc_identity_free_secret(g->renew_key_pem);
    grpc_identity_free(g->id);
    free(g->target);
    free(g->enroll_target);
    free(g->hostname);
    if (g->grpc_up)
        grpc_shutdown();
    free(g);
    return NULL;
}

#include "sources/grpc_logs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "sources/grpc_wire.h"

#define FLUSH_AFTER 0.1 /* s: a partial line waits at most this long */

#define END(x) AXION__AGENT__V1__LOG_END__LOG_END_##x
#define SRC(x) AXION__AGENT__V1__LOG_SOURCE__LOG_SOURCE_##x

struct grpc_logs {
    const struct grpc_logs_host *host;
    char *command_id, *stack, *service;
    int64_t received_at;
    uint64_t limit;
    struct source_logs *src; /* the Docker output, NULL once stopped */
    bool held;

    struct buf pending; /* data not yet in a chunk, all of one source */
    enum source_logs_kind pending_kind;
    ev_timer flush;

    uint64_t taken;  /* data bytes taken from the output (at most limit) */
    uint64_t sent;   /* data bytes put into chunks */
    uint64_t seq;    /* the next chunk's */
    size_t queued;   /* bytes of chunks in the stream's queue or in flight */
    unsigned chunks; /* chunks not yet called back */

    enum grpc_logs_end end; /* RUNNING until it ends */
    char *error;
    bool last_queued; /* the last chunk is in the queue: done when it is called back */
    bool done_called;
};

static void finish(struct grpc_logs *l, enum grpc_logs_end end, const char *error);

const char *grpc_logs_command_id(const struct grpc_logs *l)
{
    return l->command_id;
}

const char *grpc_logs_stack(const struct grpc_logs *l)
{
    return l->stack;
}

const char *grpc_logs_service(const struct grpc_logs *l)
{
    return l->service;
}

int64_t grpc_logs_received_at(const struct grpc_logs *l)
{
    return l->received_at;
}

enum grpc_logs_end grpc_logs_outcome(const struct grpc_logs *l, const char **ret_error,
                                     uint64_t *ret_bytes)
{
    if (ret_error)
        *ret_error = l->error;
    if (ret_bytes)
        *ret_bytes = l->sent;
    return l->end;
}

static void call_done(struct grpc_logs *l)
{
    if (l->done_called)
        return;
    l->done_called = true;
    l->host->done(l, l->host->userdata);
}

static void stop_output(struct grpc_logs *l)
{
    if (l->src) {
        struct source_logs *src = l->src;
        l->src = NULL;
        l->host->ctx->logs_close(l->host->ctx->userdata, src);
    }
    ev_timer_stop(l->host->ctx->loop, &l->flush);
}

static void update_hold(struct grpc_logs *l)
{
    bool hold = l->queued > GRPC_LOGS_QUEUE_MAX;
    bool release = l->queued <= GRPC_LOGS_QUEUE_MAX / 2;
    if (!l->src || (hold == l->held) || (!hold && !release))
        return;
    l->held = hold;
    l->host->ctx->logs_hold(l->host->ctx->userdata, l->src, hold);
}

struct chunk_ref {
    struct grpc_logs *l;
    size_t size;
    bool last;
};

static void on_chunk(enum grpc_stream_sent how, void *userdata)
{
    struct chunk_ref *c = userdata;
    struct grpc_logs *l = c->l;
    l->queued -= c->size;
    l->chunks--;
    bool last = c->last;
    free(c);
    if (how != GRPC_STREAM_SENT) {
        if (l->end == GRPC_LOGS_RUNNING) {
            finish(l, GRPC_LOGS_CUT, "the control stream ended");
        } else if (last && l->end != GRPC_LOGS_CUT) {
            /* The Control Plane never saw the end: the command did not run to it. */
            l->end = GRPC_LOGS_CUT;
            free(l->error);
            l->error = strdup("the control stream ended");
        }
    }
    if (last || (l->end == GRPC_LOGS_CUT && !l->chunks))
        call_done(l);
    else
        update_hold(l);
}

/* Queues one chunk; false when it cannot go (the stream is down). */
static bool send_chunk(struct grpc_logs *l, enum source_logs_kind kind, const char *data,
                       size_t len, bool last)
{
    struct grpc_stream *s = l->host->stream(l->host->userdata);
    if (!s)
        return false;
    Axion__Agent__V1__LogChunk c = AXION__AGENT__V1__LOG_CHUNK__INIT;
    c.command_id = l->command_id;
    c.seq = l->seq;
    c.data.data = (uint8_t *)data;
    c.data.len = len;
    c.source = kind == SOURCE_LOGS_STDERR ? SRC(STDERR) : SRC(STDOUT);
    c.total_bytes = l->sent + len;
    static char empty[] = "";
    if (last) {
        c.last = true;
        c.end = l->end == GRPC_LOGS_EOF         ? END(EOF)
                : l->end == GRPC_LOGS_LIMIT     ? END(LIMIT)
                : l->end == GRPC_LOGS_CANCELLED ? END(CANCELLED)
                                                : END(ERROR);
        c.error = l->error && l->end == GRPC_LOGS_ERROR ? l->error : empty;
    }
    Axion__Agent__V1__AgentMessage m = AXION__AGENT__V1__AGENT_MESSAGE__INIT;
    m.body_case = AXION__AGENT__V1__AGENT_MESSAGE__BODY_LOG_CHUNK;
    m.log_chunk = &c;
    grpc_byte_buffer *bb = grpc_wire_pack(&m.base, 0, NULL);
    struct chunk_ref *ref = calloc(1, sizeof(*ref));
    if (!bb || !ref) {
        if (bb)
            grpc_byte_buffer_destroy(bb);
        free(ref);
        return false;
    }
    *ref = (struct chunk_ref){.l = l, .size = grpc_byte_buffer_length(bb), .last = last};
    size_t size = ref->size;
    if (grpc_stream_send(s, GRPC_STREAM_PRIO_LOG, bb, false, on_chunk, ref) < 0) {
        free(ref);
        return false;
    }
    l->queued += size;
    l->chunks++;
    l->seq++;
    l->sent += len;
    return true;
}

/* Sends the pending data whole (all = true) or up to its last line (all = false), in chunks
 * of at most 64 KiB. The very last one is marked last when last is set. False when the stream
 * is down. */
static bool flush(struct grpc_logs *l, bool all, bool last)
{
    for (;;) {
        size_t n = l->pending.len;
        if (n == 0)
            break;
        size_t take = n > GRPC_LOGS_CHUNK_MAX ? GRPC_LOGS_CHUNK_MAX : n;
        if (!all || take < n) {
            /* Cut after the last newline within what fits. */
            const char *nl = memrchr(l->pending.data, '\n', take);
            if (nl)
                take = (size_t)(nl - l->pending.data) + 1;
            else if (!all && n <= GRPC_LOGS_CHUNK_MAX)
                break; /* a partial line: the timer sends it */
        }
        bool is_last = last && take == n;
        if (!send_chunk(l, l->pending_kind, l->pending.data, take, is_last))
            return false;
        buf_consume(&l->pending, take);
        if (is_last)
            return true;
    }
    if (last)
        return send_chunk(l, l->pending_kind, "", 0, true);
    return true;
}

static void finish(struct grpc_logs *l, enum grpc_logs_end end, const char *error)
{
    if (l->end != GRPC_LOGS_RUNNING)
        return;
    l->end = end;
    free(l->error);
    l->error = error ? strdup(error) : NULL;
    stop_output(l);
    if (end == GRPC_LOGS_CUT) {
        buf_reset(&l->pending);
        if (!l->chunks)
            call_done(l);
        /* else: the chunks still queued are called back as the stream ends; the last of them
         * is not marked last, so done comes from grpc_logs_stream_ended or here. */
        return;
    }
    if (flush(l, true, true)) {
        l->last_queued = true;
        return;
    }
    /* The stream is down: no last chunk can go. */
    buf_reset(&l->pending);
    if (l->end != GRPC_LOGS_CUT) {
        l->end = GRPC_LOGS_CUT;
        free(l->error);
        l->error = strdup("the control stream ended");
    }
    if (!l->chunks)
        call_done(l);
}

static void on_flush_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct grpc_logs *l = w->data;
    if (l->end == GRPC_LOGS_RUNNING && !flush(l, true, false))
        finish(l, GRPC_LOGS_CUT, "the control stream ended");
}

static void on_data(enum source_logs_kind kind, const char *data, size_t len, void *userdata)
{
    struct grpc_logs *l = userdata;
    if (l->end != GRPC_LOGS_RUNNING)
        return;
    uint64_t room = l->limit - l->taken;
    bool at_limit = len >= room;
    if (at_limit)
        len = (size_t)room;
    if (l->pending.len && kind != l->pending_kind && !flush(l, true, false)) {
        finish(l, GRPC_LOGS_CUT, "the control stream ended");
        return;
    }
    l->pending_kind = kind;
    if (buf_append(&l->pending, data, len) < 0) {
        finish(l, GRPC_LOGS_ERROR, "out of memory");
        return;
    }
    l->taken += len;
    if (at_limit) {
        finish(l, GRPC_LOGS_LIMIT, NULL);
        return;
    }
    if (l->pending.len >= GRPC_LOGS_CHUNK_MAX && !flush(l, false, false)) {
        finish(l, GRPC_LOGS_CUT, "the control stream ended");
        return;
    }
    if (l->pending.len && !ev_is_active(&l->flush)) {
        ev_timer_set(&l->flush, FLUSH_AFTER, 0.);
        ev_timer_start(l->host->ctx->loop, &l->flush);
    }
}

static void on_end(const char *error, void *userdata)
{
    struct grpc_logs *l = userdata;
    l->src = NULL; /* the daemon frees it after this returns */
    finish(l, error ? GRPC_LOGS_ERROR : GRPC_LOGS_EOF, error);
}

static const struct source_logs_cbs cbs = {.data = on_data, .end = on_end};

int grpc_logs_start(const struct grpc_logs_host *host, const char *command_id,
                    const Axion__Agent__V1__Logs *rq, int64_t received_at, struct grpc_logs **ret)
{
    struct grpc_logs *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->host = host;
    l->received_at = received_at;
    l->limit = rq->limit_bytes ? rq->limit_bytes : (1u << 20);
    /* The pending buffer never holds more than one chunk plus one frame of the driver. */
    buf_init(&l->pending, (size_t)8 << 20);
    ev_timer_init(&l->flush, on_flush_timer, FLUSH_AFTER, 0.);
    l->flush.data = l;
    l->command_id = strdup(command_id);
    l->stack = strdup(rq->stack);
    l->service = strdup(rq->service);
    if (!l->command_id || !l->stack || !l->service) {
        grpc_logs_free(l);
        return -ENOMEM;
    }
    struct source_logs_request r = {
        .stack = rq->stack,
        .service = rq->service,
        .since_ms = rq->since_at_ms,
        .tail = rq->tail ? (int64_t)rq->tail : -1,
        .follow = rq->follow,
        .timestamps = rq->timestamps,
    };
    l->src = host->ctx->logs_open(host->ctx->userdata, &r, &cbs, l);
    if (!l->src) {
        grpc_logs_free(l);
        return -ENOMEM;
    }
    *ret = l;
    return 0;
}

void grpc_logs_cancel(struct grpc_logs *l)
{
    finish(l, GRPC_LOGS_CANCELLED, NULL);
}

void grpc_logs_stop(struct grpc_logs *l, const char *why)
{
    finish(l, GRPC_LOGS_ERROR, why);
}

void grpc_logs_stream_ended(struct grpc_logs *l)
{
    if (l->end == GRPC_LOGS_RUNNING) {
        finish(l, GRPC_LOGS_CUT, "the control stream ended");
        return;
    }
    /* Ended, but its last chunk never went: the result is still owed. */
    if (!l->chunks)
        call_done(l);
}

void grpc_logs_free(struct grpc_logs *l)
{
    if (!l)
        return;
    stop_output(l);
    buf_release(&l->pending);
    free(l->command_id);
    free(l->stack);
    free(l->service);
    free(l->error);
    free(l);
}

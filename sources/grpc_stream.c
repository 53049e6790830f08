#include "sources/grpc_stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/time.h>

#include "lib/log.h"

struct item {
    struct item *next;
    grpc_byte_buffer *bb;
    size_t size;
    grpc_stream_sent_fn sent;
    void *userdata;
};

struct queue {
    struct item *head, *tail;
    size_t bytes;
};

struct op {
    struct grpc_pump_tag tag;
    struct grpc_stream *s;
};

struct grpc_stream {
    grpc_call *call;
    const struct grpc_stream_ops *ops;
    void *userdata;
    struct op t_start, t_status, t_recv, t_send, t_close;
    unsigned pending; /* batches in flight */

    grpc_metadata_array initial, trailing;
    grpc_byte_buffer *recv_bb;
    grpc_status_code status;
    grpc_slice details;
    const char *error_string;

    struct queue q[_GRPC_STREAM_PRIO_MAX];
    struct item *in_flight;
    bool ready;       /* headers arrived */
    bool status_done; /* RECV_STATUS_ON_CLIENT completed */
    bool broken;      /* a send failed: send nothing more */
    bool closing;     /* half-close once drained */
    bool close_sent;
    bool ended;
};

static void item_done(struct item *it, enum grpc_stream_sent how)
{
    if (it->bb)
        grpc_byte_buffer_destroy(it->bb);
    if (it->sent)
        it->sent(how, it->userdata);
    free(it);
}

static int start(struct grpc_stream *s, grpc_op *ops, size_t n, struct op *tag)
{
    grpc_call_error ce = grpc_call_start_batch(s->call, ops, n, &tag->tag, NULL);
    if (ce != GRPC_CALL_OK) {
        log_warnx("grpc: the stream refused a batch (grpc_call_error %d)", (int)ce);
        return -EIO;
    }
    s->pending++;
    return 0;
}

static void arm_recv(struct grpc_stream *s)
{
    grpc_op op = {.op = GRPC_OP_RECV_MESSAGE};
    op.data.recv_message.recv_message = &s->recv_bb;
    if (start(s, &op, 1, &s->t_recv) < 0)
        grpc_call_cancel(s->call, NULL);
}

static struct item *dequeue(struct grpc_stream *s)
{
    for (int p = 0; p < _GRPC_STREAM_PRIO_MAX; p++) {
        struct queue *q = &s->q[p];
        struct item *it = q->head;
        if (!it)
            continue;
        q->head = it->next;
        if (!q->head)
            q->tail = NULL;
        q->bytes -= it->size;
        it->next = NULL;
        return it;
    }
    return NULL;
}

/* Starts the next send (or the half-close) when nothing is in flight. */
static void pump_send(struct grpc_stream *s)
{
    if (s->in_flight || s->status_done || s->broken || s->close_sent)
        return;
    struct item *it = dequeue(s);
    if (it) {
        grpc_op op = {.op = GRPC_OP_SEND_MESSAGE};
        op.data.send_message.send_message = it->bb;
        s->in_flight = it;
        if (start(s, &op, 1, &s->t_send) < 0) {
            s->in_flight = NULL;
            s->broken = true;
            item_done(it, GRPC_STREAM_UNSENT);
            grpc_call_cancel(s->call, NULL);
        }
        return;
    }
    if (s->closing) {
        grpc_op op = {.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT};
        s->close_sent = true;
        if (start(s, &op, 1, &s->t_close) < 0)
            grpc_call_cancel(s->call, NULL);
    }
}

static void stream_free(struct grpc_stream *s)
{
    for (int p = 0; p < _GRPC_STREAM_PRIO_MAX; p++) {
        struct item *it;
        while ((it = s->q[p].head)) {
            s->q[p].head = it->next;
            item_done(it, GRPC_STREAM_UNSENT);
        }
    }
    if (s->recv_bb)
        grpc_byte_buffer_destroy(s->recv_bb);
    grpc_metadata_array_destroy(&s->initial);
    grpc_metadata_array_destroy(&s->trailing);
    grpc_slice_unref(s->details);
    if (s->call)
        grpc_call_unref(s->call);
    free(s);
}

/* After each completion: once the status is in and nothing is in flight, the call is over. */
static void maybe_end(struct grpc_stream *s)
{
    if (!s->status_done || s->pending || s->ended)
        return;
    s->ended = true;
    s->ready = false;
    struct grpc_wire_end end = {0};
    grpc_wire_end_take(&end, s->status, &s->details, &s->error_string, &s->trailing);
    s->details = grpc_empty_slice();
    /* Unsent messages go back to their owners before the owner hears of the end. */
    for (int p = 0; p < _GRPC_STREAM_PRIO_MAX; p++) {
        struct item *it;
        while ((it = s->q[p].head)) {
            s->q[p].head = it->next;
            s->q[p].bytes -= it->size;
            item_done(it, GRPC_STREAM_UNSENT);
        }
        s->q[p].tail = NULL;
    }
    s->ops->ended(&end, s->userdata);
    grpc_wire_end_release(&end);
    stream_free(s);
}

static void on_op(struct grpc_pump_tag *tag, bool ok)
{
    struct op *o = (struct op *)tag;
    struct grpc_stream *s = o->s;
    s->pending--;
    if (o == &s->t_start) {
        if (ok && !s->status_done) {
            s->ready = true;
            s->ops->ready(s->userdata);
        }
    } else if (o == &s->t_status) {
        s->status_done = true;
        s->ready = false;
    } else if (o == &s->t_recv) {
        if (ok && s->recv_bb) {
            size_t len = 0;
            void *data = grpc_wire_bytes(s->recv_bb, &len);
            grpc_byte_buffer_destroy(s->recv_bb);
            s->recv_bb = NULL;
            if (!s->status_done)
                arm_recv(s);
            if (data)
                s->ops->message(data, len, s->userdata);
            else
                log_warnx("grpc: a message from the Control Plane could not be read (out of "
                          "memory or an unknown compression); dropped");
            free(data);
        }
        /* ok without a message: the Control Plane finished sending; its status follows. */
    } else if (o == &s->t_send) {
        struct item *it = s->in_flight;
        s->in_flight = NULL;
        if (!ok)
            s->broken = true;
        if (it)
            item_done(it, ok ? GRPC_STREAM_SENT : GRPC_STREAM_LOST);
        pump_send(s);
    }
    maybe_end(s);
}

int grpc_stream_open(grpc_channel *ch, struct grpc_pump *pump, const char *method,
                     const struct grpc_stream_ops *ops, void *userdata, struct grpc_stream **ret)
{
    struct grpc_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->ops = ops;
    s->userdata = userdata;
    s->details = grpc_empty_slice();
    grpc_metadata_array_init(&s->initial);
    grpc_metadata_array_init(&s->trailing);
    struct op *tags[] = {&s->t_start, &s->t_status, &s->t_recv, &s->t_send, &s->t_close};
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
        *tags[i] = (struct op){.tag.fn = on_op, .s = s};
    s->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, grpc_pump_cq(pump),
                                       grpc_slice_from_static_string(method), NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (!s->call) {
        stream_free(s);
        return -ENOMEM;
    }
    grpc_op ops2[2];
    memset(ops2, 0, sizeof(ops2));
    ops2[0].op = GRPC_OP_SEND_INITIAL_METADATA; /* flags 0: fail fast */
    ops2[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops2[1].data.recv_initial_metadata.recv_initial_metadata = &s->initial;
    grpc_op st = {.op = GRPC_OP_RECV_STATUS_ON_CLIENT};
    st.data.recv_status_on_client.status = &s->status;
    st.data.recv_status_on_client.status_details = &s->details;
    st.data.recv_status_on_client.trailing_metadata = &s->trailing;
    st.data.recv_status_on_client.error_string = &s->error_string;
    if (start(s, ops2, 2, &s->t_start) < 0 || start(s, &st, 1, &s->t_status) < 0) {
        /* Nothing useful can come of this call: end it; the completions still arrive. */
        grpc_call_cancel(s->call, NULL);
        if (!s->pending) {
            stream_free(s);
            return -EIO;
        }
    } else {
        arm_recv(s);
    }
    *ret = s;
    return 0;
}

int grpc_stream_send(struct grpc_stream *s, enum grpc_stream_prio prio, grpc_byte_buffer *bb,
                     bool front, grpc_stream_sent_fn sent, void *userdata)
{
    if (s->status_done || s->closing || s->broken || s->ended) {
        grpc_byte_buffer_destroy(bb);
        return -EPIPE;
    }
    struct item *it = calloc(1, sizeof(*it));
    if (!it) {
        grpc_byte_buffer_destroy(bb);
        return -ENOMEM;
    }
    it->bb = bb;
    it->size = grpc_byte_buffer_length(bb);
    it->sent = sent;
    it->userdata = userdata;
    struct queue *q = &s->q[prio];
    if (front) {
        it->next = q->head;
        q->head = it;
        if (!q->tail)
            q->tail = it;
    } else {
        if (q->tail)
            q->tail->next = it;
        else
            q->head = it;
        q->tail = it;
    }
    q->bytes += it->size;
    pump_send(s);
    return 0;
}

size_t grpc_stream_queued(const struct grpc_stream *s, enum grpc_stream_prio prio)
{
    return s->q[prio].bytes;
}

bool grpc_stream_ready(const struct grpc_stream *s)
{
    return s->ready && !s->status_done;
}

void grpc_stream_close(struct grpc_stream *s)
{
    if (s->closing)
        return;
    s->closing = true;
    pump_send(s);
}

void grpc_stream_cancel(struct grpc_stream *s)
{
    if (!s->status_done)
        grpc_call_cancel(s->call, NULL);
}

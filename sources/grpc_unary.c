#include "sources/grpc_unary.h"

#include <stdlib.h>
#include <string.h>

#include <grpc/support/time.h>

#include "lib/log.h"

struct grpc_unary {
    struct grpc_pump_tag tag;
    grpc_call *call;
    grpc_byte_buffer *request;
    grpc_byte_buffer *response;
    grpc_metadata_array initial, trailing;
    grpc_status_code status;
    grpc_slice details;
    const char *error_string;
    grpc_unary_done done;
    void *userdata;
};

static void unary_free(struct grpc_unary *u)
{
    if (u->request)
        grpc_byte_buffer_destroy(u->request);
    if (u->response)
        grpc_byte_buffer_destroy(u->response);
    grpc_metadata_array_destroy(&u->initial);
    grpc_metadata_array_destroy(&u->trailing);
    if (u->call)
        grpc_call_unref(u->call);
    free(u);
}

static void on_done(struct grpc_pump_tag *tag, bool ok)
{
    struct grpc_unary *u = (struct grpc_unary *)tag;
    struct grpc_wire_end end = {0};
    grpc_wire_end_take(&end, u->status, &u->details, &u->error_string, &u->trailing);
    void *data = NULL;
    size_t len = 0;
    if (end.status == GRPC_STATUS_OK) {
        if (u->response)
            data = grpc_wire_bytes(u->response, &len);
        if (!data) {
            grpc_wire_end_release(&end);
            end = (struct grpc_wire_end){
                .status = GRPC_STATUS_DATA_LOSS,
                .details = strdup(u->response ? "the answer could not be read" : "no answer")};
        }
    }
    u->done(&end, data, len, u->userdata);
    free(data);
    grpc_wire_end_release(&end);
    unary_free(u);
}

struct grpc_unary *grpc_unary_start(grpc_channel *ch, struct grpc_pump *pump, const char *method,
                                    grpc_byte_buffer *request, int64_t timeout_ms,
                                    grpc_unary_done done, void *userdata)
{
    struct grpc_unary *u = calloc(1, sizeof(*u));
    if (!u) {
        grpc_byte_buffer_destroy(request);
        return NULL;
    }
    u->tag.fn = on_done;
    u->request = request;
    u->done = done;
    u->userdata = userdata;
    u->details = grpc_empty_slice();
    grpc_metadata_array_init(&u->initial);
    grpc_metadata_array_init(&u->trailing);
    grpc_slice m = grpc_slice_from_static_string(method);
    u->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, grpc_pump_cq(pump), m,
                                       NULL, grpc_wire_deadline(timeout_ms), NULL);
    if (!u->call) {
        unary_free(u);
        return NULL;
    }
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = u->request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &u->initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &u->response;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.status = &u->status;
    ops[5].data.recv_status_on_client.status_details = &u->details;
    ops[5].data.recv_status_on_client.trailing_metadata = &u->trailing;
    ops[5].data.recv_status_on_client.error_string = &u->error_string;
    grpc_call_error ce = grpc_call_start_batch(u->call, ops, 6, &u->tag, NULL);
    if (ce != GRPC_CALL_OK) {
        log_warnx("grpc: %s: the call could not start (grpc_call_error %d)", method, (int)ce);
        unary_free(u);
        return NULL;
    }
    return u;
}

void grpc_unary_cancel(struct grpc_unary *u)
{
    if (u && u->call)
        grpc_call_cancel(u->call, NULL);
}

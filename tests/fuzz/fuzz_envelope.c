/* Fuzzes the Command envelope as a Kafka record carries it (sources/envelope.c): the bytes are
 * decoded for each channel (Kafka, with an addressee; gRPC, any agent). Whatever the bytes, the
 * answer is a request: either refused (an ErrorCode and a text) or one that keeps every limit
 * of the protocol, checked here again independently of the decoder. The CommandResult that
 * answers it is filled, packed and must decode again with the same command id. Sanitizers
 * judge the rest (every string the request borrows is read to its end). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sources/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_envelope: %s:%d: %s\n", __FILE__, __LINE__, #cond);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static bool name_ok(const char *v, bool required)
{
    if (!v)
        return !required;
    size_t n = strlen(v);
    return (n > 0 || !required) && n <= ENVELOPE_NAME_MAX;
}

/* Reads n bytes, for ASan to see that they are there. */
static volatile uint8_t sink;
static void touch(const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sink ^= ((const uint8_t *)p)[i];
}

static size_t len_of(const char *s)
{
    return s ? strlen(s) : 0;
}

/* What an accepted request must keep (deploy.proto, commands.proto). */
static void check_request(const struct envelope *e)
{
    const struct intake_request *rq = &e->rq;
    CHECK(e->cmd);
    CHECK(rq->kind < _INTAKE_KIND_MAX);
    CHECK(rq->command_id && strlen(rq->command_id) >= 1 &&
          strlen(rq->command_id) <= ENVELOPE_ID_MAX);
    CHECK(strspn(rq->command_id,
                 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") ==
          strlen(rq->command_id));
    CHECK(e->error_code == 0);
    switch (rq->kind) {
    case INTAKE_DEPLOY: {
        CHECK(name_ok(rq->stack, true));
        CHECK(rq->generation >= 1);
        CHECK(rq->compose && rq->compose_len >= 1 && rq->compose_len <= ENVELOPE_COMPOSE_MAX);
        CHECK(strlen(rq->compose) == rq->compose_len);
        CHECK(len_of(rq->filename) <= ENVELOPE_FILENAME_MAX);
        CHECK(rq->n_files <= ENVELOPE_FILES_MAX && rq->n_vars <= ENVELOPE_VARS_MAX);
        uint64_t bytes = 0;
        for (size_t i = 0; i < rq->n_files; i++) {
            size_t n = strlen(rq->files[i].name);
            CHECK(n >= 1 && n <= ENVELOPE_FILE_NAME_MAX);
            touch(rq->files[i].data, rq->files[i].len);
            bytes += rq->files[i].len;
        }
        CHECK(bytes <= ENVELOPE_FILES_BYTES_MAX);
        bytes = 0;
        for (size_t i = 0; i < rq->n_vars; i++) {
            CHECK(strlen(rq->vars[i].name) >= 1 &&
                  strlen(rq->vars[i].name) <= ENVELOPE_VAR_NAME_MAX);
            size_t vl = strlen(rq->vars[i].value);
            CHECK(vl <= ENVELOPE_VAR_VALUE_MAX);
            bytes += vl;
        }
        CHECK(bytes <= ENVELOPE_VARS_BYTES_MAX);
        break;
    }
    case INTAKE_REMOVE:
        CHECK(name_ok(rq->stack, true) && rq->generation >= 0);
        break;
    case INTAKE_STOP:
    case INTAKE_START:
    case INTAKE_RESTART:
        CHECK(name_ok(rq->stack, true) && name_ok(rq->service, false));
        break;
    case INTAKE_SCALE:
        CHECK(name_ok(rq->stack, true) && name_ok(rq->service, true));
        CHECK(rq->replicas <= ENVELOPE_REPLICAS_MAX);
        break;
    case INTAKE_RECONCILE_NOW:
        CHECK(name_ok(rq->stack, false));
        break;
    case INTAKE_SWARM_INIT:
    case INTAKE_SWARM_JOIN:
    case INTAKE_SWARM_LEAVE: {
        /* The intake checks these (intake_swarm.c); here only that they can be read. */
        const struct intake_swarm *sw = &rq->swarm;
        (void)(len_of(sw->advertise_addr) + len_of(sw->listen_addr) + len_of(sw->data_path_addr) +
               len_of(sw->join_token));
        for (size_t i = 0; i < sw->n_remote_addrs; i++)
            (void)len_of(sw->remote_addrs[i]);
        for (size_t i = 0; i < sw->n_default_addr_pools; i++)
            (void)len_of(sw->default_addr_pools[i]);
        break;
    }
    default:
        CHECK(!"a kind the envelope never makes");
    }
}

static void one(const uint8_t *data, size_t size, enum envelope_channel channel,
                const char *agent_id)
{
    struct envelope e;
    if (envelope_decode(data, size, channel, agent_id, &e) < 0)
        return; /* out of memory */
    CHECK(e.command_id);
    CHECK(strlen(e.command_id) <= ENVELOPE_ID_MAX);
    CHECK(strlen(e.error) < sizeof(e.error));
    if (e.rq.refused) {
        CHECK(e.rq.refused == e.error && e.error[0] && e.error_code != 0);
    } else {
        check_request(&e);
    }

    /* The answer: a rejection for a refused one, an acceptance otherwise. */
    struct intake_result res = {
        .outcome = e.rq.refused ? INTAKE_REJECTED : INTAKE_ACCEPTED,
        .cause = INTAKE_CAUSE_REFUSED,
        .generation = e.rq.generation,
    };
    snprintf(res.error, sizeof(res.error), "%s", e.error);
    Axion__Agent__V1__CommandResult r;
    envelope_result_from_intake(&e, &res, 1700000000000, &r);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (envelope_pack(&r.base, &buf, &len) == 0) {
        Axion__Agent__V1__CommandResult *back =
            axion__agent__v1__command_result__unpack(NULL, len, buf);
        CHECK(back);
        CHECK(strcmp(back->command_id, e.command_id) == 0);
        CHECK(back->outcome == r.outcome && back->error_code == r.error_code);
        axion__agent__v1__command_result__free_unpacked(back, NULL);
        free(buf);
    }
    envelope_release(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size, ENVELOPE_KAFKA, "agent-1");
    one(data, size, ENVELOPE_GRPC, NULL);
    return 0;
}

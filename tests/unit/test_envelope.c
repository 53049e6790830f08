/* sources/envelope: a Command as a channel receives it. Every body becomes the right intake
 * request; every limit of the protocol (docs/PROTOCOL.md) is a refusal that names the field,
 * with its ErrorCode; bytes that are no Command, an unknown body, Logs over Kafka and another
 * agent's command are refused; a refused command goes through the intake as REJECTED with its
 * record and position (a bad record never blocks a partition); and the CommandResults for the
 * intake's outcomes and the tracker's final results. The intake runs on a real store file. */
#include "support/testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "sources/envelope.h"
#include "store/store.h"

#define MANIFEST "services:\n  web:\n    image: busybox\n"

static uint8_t *pack_cmd(const Axion__Agent__V1__Command *c, size_t *len)
{
    uint8_t *b = NULL;
    assert_int_equal(envelope_pack(&c->base, &b, len), 0);
    return b;
}

/* Decodes c for agent "a1" over Kafka. */
static void decode(const Axion__Agent__V1__Command *c, struct envelope *e)
{
    size_t len;
    uint8_t *b = pack_cmd(c, &len);
    assert_int_equal(envelope_decode(b, len, ENVELOPE_KAFKA, "a1", e), 0);
    free(b);
}

static void deploy_cmd(Axion__Agent__V1__Command *c, Axion__Agent__V1__Deploy *d)
{
    axion__agent__v1__command__init(c);
    axion__agent__v1__deploy__init(d);
    c->command_id = "cmd-1";
    c->body_case = AXION__AGENT__V1__COMMAND__BODY_DEPLOY;
    c->deploy = d;
    d->stack = "web";
    d->generation = 3;
    d->compose = MANIFEST;
}

static void test_deploy(void **state)
{
    Axion__Agent__V1__Command c;
    Axion__Agent__V1__Deploy d;
    deploy_cmd(&c, &d);
    Axion__Agent__V1__File f = AXION__AGENT__V1__FILE__INIT, *fp = &f;
    f.name = "app.conf";
    f.content = (ProtobufCBinaryData){3, (uint8_t *)"a=1"};
    Axion__Agent__V1__Variable v = AXION__AGENT__V1__VARIABLE__INIT, *vp = &v;
    v.name = "TAG";
    v.value = "1.2";
    d.n_files = 1;
    d.files = &fp;
    d.n_variables = 1;
    d.variables = &vp;
    d.filename = "web.yml";
    c.agent_id = "a1";
    struct envelope e;
    decode(&c, &e);
    assert_int_equal(e.error_code, 0);
    assert_null(e.rq.refused);
    assert_int_equal(e.kind, AXION__AGENT__V1__COMMAND__BODY_DEPLOY);
    assert_string_equal(e.command_id, "cmd-1");
    assert_string_equal(e.rq.command_id, "cmd-1");
    assert_int_equal(e.rq.kind, INTAKE_DEPLOY);
    assert_string_equal(e.rq.stack, "web");
    assert_int_equal(e.rq.generation, 3);
    assert_int_equal(e.rq.compose_len, strlen(MANIFEST));
    assert_string_equal(e.rq.filename, "web.yml");
    assert_int_equal(e.rq.n_files, 1);
    assert_string_equal(e.rq.files[0].name, "app.conf");
    assert_int_equal(e.rq.files[0].len, 3);
    assert_int_equal(e.rq.n_vars, 1);
    assert_string_equal(e.rq.vars[0].value, "1.2");
    envelope_release(&e);
}

static void test_other_bodies(void **state)
{
    Axion__Agent__V1__Command c = AXION__AGENT__V1__COMMAND__INIT;
    c.command_id = "c-2";
    struct envelope e;

    Axion__Agent__V1__RemoveStack rm = AXION__AGENT__V1__REMOVE_STACK__INIT;
    rm.stack = "web";
    rm.generation = 9;
    c.body_case = AXION__AGENT__V1__COMMAND__BODY_REMOVE_STACK;
    c.remove_stack = &rm;
    decode(&c, &e);
    assert_int_equal(e.error_code, 0);
    assert_int_equal(e.rq.kind, INTAKE_REMOVE);
    assert_int_equal(e.rq.generation, 9);
    envelope_release(&e);

    Axion__Agent__V1__Scale sc = AXION__AGENT__V1__SCALE__INIT;
    sc.stack = "web";
    sc.service = "api";
    sc.replicas = 4;
    c.body_case = AXION__AGENT__V1__COMMAND__BODY_SCALE;
    c.scale = &sc;
    decode(&c, &e);
    assert_int_equal(e.error_code, 0);
    assert_int_equal(e.rq.kind, INTAKE_SCALE);
    assert_string_equal(e.rq.service, "api");
    assert_int_equal(e.rq.replicas, 4);
    envelope_release(&e);
    sc.replicas = ENVELOPE_REPLICAS_MAX + 1;
    decode(&c, &e);
    assert_int_equal(e.error_code, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_LIMIT);
    assert_non_null(strstr(e.error, "scale.replicas: 10001"));
    envelope_release(&e);

    Axion__Agent__V1__Stop st = AXION__AGENT__V1__STOP__INIT;
    st.stack = "web";
    c.body_case = AXION__AGENT__V1__COMMAND__BODY_STOP;
    c.stop = &st;
    decode(&c, &e);
    assert_int_equal(e.rq.kind, INTAKE_STOP);
    assert_null(e.rq.service);
    envelope_release(&e);

    Axion__Agent__V1__ReconcileNow now = AXION__AGENT__V1__RECONCILE_NOW__INIT;
    c.body_case = AXION__AGENT__V1__COMMAND__BODY_RECONCILE_NOW;
    c.reconcile_now = &now;
    decode(&c, &e);
    assert_int_equal(e.error_code, 0);
    assert_int_equal(e.rq.kind, INTAKE_RECONCILE_NOW);
    assert_null(e.rq.stack);
    envelope_release(&e);

    /* Swarm membership: the intake's kinds, its fields as they came. */
    Axion__Agent__V1__SwarmLeave leave = AXION__AGENT__V1__SWARM_LEAVE__INIT;
    leave.force = 1;
    c.body_case = AXION__AGENT__V1__COMMAND__BODY_SWARM_LEAVE;
    c.swarm_leave = &leave;
    decode(&c, &e);
    assert_int_equal(e.error_code, 0);
    assert_int_equal(e.rq.kind, INTAKE_SWARM_LEAVE);
    assert_true(e.rq.swarm.force);
    envelope_release(&e);
    char *managers[] = {"10.0.0.1:2377"};
    Axion__Agent__V1__SwarmJoin join = AXION__AGENT__V1__SWARM_JOIN__INIT;
    join.n_remote_addrs = 1;
    join.remote_addrs = managers;
    join.join_token = "SWMTKN-1-x";
    join.role = AXION__AGENT__V1__SWARM_ROLE__SWARM_ROLE_MANAGER;
    c.body_case = AXION__AGENT__V1__COMMAND__BODY_SWARM_JOIN;
    c.swarm_join = &join;
    decode(&c, &e);
    assert_int_equal(e.error_code, 0);
    assert_int_equal(e.rq.kind, INTAKE_SWARM_JOIN);
    assert_int_equal(e.rq.swarm.role, STORE_SWARM_MANAGER);
    assert_string_equal(e.rq.swarm.remote_addrs[0], "10.0.0.1:2377");
    envelope_release(&e);
    join.role = AXION__AGENT__V1__SWARM_ROLE__SWARM_ROLE_UNSPECIFIED;
    decode(&c, &e);
    assert_int_equal(e.error_code, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_MALFORMED);
    assert_non_null(strstr(e.error, "swarm_join.role"));
    envelope_release(&e);

    /* Logs: gRPC only. */
    Axion__Agent__V1__Logs logs = AXION__AGENT__V1__LOGS__INIT;
    logs.stack = "web";
    logs.service = "api";
    c.body_case = AXION__AGENT__V1__COMMAND__BODY_LOGS;
    c.logs = &logs;
    decode(&c, &e);
    assert_int_equal(e.error_code, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_UNSUPPORTED);
    assert_non_null(strstr(e.error, "not carried by Kafka"));
    assert_string_equal(e.rq.refused, e.error);
    assert_string_equal(e.command_id, "c-2"); /* still recorded under its id */
    envelope_release(&e);
}

/* Each breach of a limit: the field, the limit, the code. */
static void test_limits(void **state)
{
    struct {
        const char *what;
        Axion__Agent__V1__ErrorCode code;
    } cases[] = {
        {"deploy.stack: missing", AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_MALFORMED},
        {"deploy.stack: 64 bytes, more than 63", AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_LIMIT},
        {"deploy.stack \"-web\": must start", AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_MALFORMED},
        {"deploy.generation: missing", AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_MALFORMED},
        {"deploy.generation: 9223372036854775808 is more",
         AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_LIMIT},
        {"deploy.compose: empty", AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_MALFORMED},
        {"deploy.compose: 1048577 bytes, more than the 1048576",
         AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_LIMIT},
        {"deploy.variables[0].name \"1X\"", AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_MALFORMED},
        {"deploy.files[1].name: \"a\" is given twice",
         AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_MALFORMED},
        {"command_id: a character other than", AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_MALFORMED},
        {"command_id: longer than 128 bytes", AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_MALFORMED},
        {"agent_id: the command is for agent \"a2\"",
         AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_WRONG_AGENT},
    };
    char long_name[65], long_id[130];
    memset(long_name, 'a', 64);
    long_name[64] = '\0';
    memset(long_id, 'x', 129);
    long_id[129] = '\0';
    char *big = malloc(ENVELOPE_COMPOSE_MAX + 2);
    assert_non_null(big);
    memset(big, '#', ENVELOPE_COMPOSE_MAX + 1);
    big[ENVELOPE_COMPOSE_MAX + 1] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        Axion__Agent__V1__Command c;
        Axion__Agent__V1__Deploy d;
        deploy_cmd(&c, &d);
        Axion__Agent__V1__Variable v = AXION__AGENT__V1__VARIABLE__INIT, *vp = &v;
        Axion__Agent__V1__File f1 = AXION__AGENT__V1__FILE__INIT, f2 = f1, *fp[2] = {&f1, &f2};
        switch (i) {
        case 0:
            d.stack = "";
            break;
        case 1:
            d.stack = long_name;
            break;
        case 2:
            d.stack = "-web";
            break;
        case 3:
            d.generation = 0;
            break;
        case 4:
            d.generation = (uint64_t)INT64_MAX + 1;
            break;
        case 5:
            d.compose = "";
            break;
        case 6:
            d.compose = big;
            break;
        case 7:
            v.name = "1X";
            d.n_variables = 1;
            d.variables = &vp;
            break;
        case 8:
            f1.name = f2.name = "a";
            d.n_files = 2;
            d.files = fp;
            break;
        case 9:
            c.command_id = "a/b";
            break;
        case 10:
            c.command_id = long_id;
            break;
        default:
            c.agent_id = "a2";
            break;
        }
        struct envelope e;
        decode(&c, &e);
        if (!strstr(e.error, cases[i].what))
            fail_msg("case %zu: expected \"%s\" in \"%s\"", i, cases[i].what, e.error);
        assert_int_equal(e.error_code, cases[i].code);
        assert_ptr_equal(e.rq.refused, e.error);
        if (i == 9 || i == 10) {
            assert_string_equal(e.command_id, "");
            assert_null(e.rq.command_id);
        }
        envelope_release(&e);
    }
    free(big);
}

static void test_undecodable(void **state)
{
    struct envelope e;
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    assert_int_equal(envelope_decode(junk, sizeof(junk), ENVELOPE_KAFKA, "a1", &e), 0);
    assert_null(e.cmd);
    assert_int_equal(e.error_code, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_MALFORMED);
    assert_non_null(strstr(e.error, "not a Command"));
    assert_int_equal(e.rq.kind, _INTAKE_KIND_MAX);
    envelope_release(&e);

    assert_int_equal(envelope_decode(junk, ENVELOPE_MAX + 1, ENVELOPE_KAFKA, "a1", &e), 0);
    assert_int_equal(e.error_code, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_LIMIT);
    assert_non_null(strstr(e.error, "16777217 bytes, more than the 16777216"));
    envelope_release(&e);

    /* An empty record is a Command with nothing in it. */
    assert_int_equal(envelope_decode("", 0, ENVELOPE_KAFKA, "a1", &e), 0);
    assert_int_equal(e.error_code, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_MALFORMED);
    envelope_release(&e);

    /* A body of a newer protocol: field 42, a length-delimited message. */
    static const uint8_t newer[] = {0x0a, 0x01, 'x', 0xd2, 0x02, 0x00};
    assert_int_equal(envelope_decode(newer, sizeof(newer), ENVELOPE_KAFKA, "a1", &e), 0);
    assert_int_equal(e.error_code, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_UNSUPPORTED);
    assert_int_equal(e.kind, 42);
    assert_non_null(strstr(e.error, "command kind 42"));
    assert_string_equal(e.command_id, "x");
    envelope_release(&e);
}

/* Appends a varint. */
static size_t put_varint(uint8_t *b, uint64_t v)
{
    size_t n = 0;
    do {
        b[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* Counts on the wire are refused before protobuf-c allocates an element each: a Deploy of
 * 100,000 empty files (200 KB that would decode into ~10 MB of structs; 16 MiB of them into
 * ~800 MB), and a flood of unknown fields. The result still names the command. */
static void test_wire_counts(void **state)
{
    size_t n_el = 100000, cap = 3 * n_el + 64;
    uint8_t *inner = malloc(cap), *rec = malloc(cap + 64);
    assert_non_null(inner);
    assert_non_null(rec);
    size_t il = 0;
    inner[il++] = 0x0a; /* Deploy.stack = "web" */
    inner[il++] = 3;
    memcpy(inner + il, "web", 3);
    il += 3;
    for (size_t i = 0; i < n_el; i++) {
        inner[il++] = 0x22; /* Deploy.files: an empty File */
        inner[il++] = 0x00;
    }
    size_t rl = 0;
    rec[rl++] = 0x0a; /* command_id = "big-1" */
    rec[rl++] = 5;
    memcpy(rec + rl, "big-1", 5);
    rl += 5;
    rec[rl++] = 0x52; /* field 10, deploy */
    rl += put_varint(rec + rl, il);
    memcpy(rec + rl, inner, il);
    rl += il;
    struct envelope e;
    assert_int_equal(envelope_decode(rec, rl, ENVELOPE_KAFKA, "a1", &e), 0);
    assert_null(e.cmd);
    assert_int_equal(e.error_code, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_LIMIT);
    assert_non_null(strstr(e.error, "deploy.files["));
    assert_non_null(strstr(e.error, "more than 8192 fields"));
    assert_string_equal(e.command_id, "big-1");
    assert_string_equal(e.rq.command_id, "big-1");
    envelope_release(&e);

    /* Unknown fields (varint 0 at field 150, a number the agent ignores) count too. */
    rl = 0;
    for (size_t i = 0; i < n_el; i++) {
        rl += put_varint(rec + rl, (150u << 3) | 0);
        rec[rl++] = 0;
    }
    assert_int_equal(envelope_decode(rec, rl, ENVELOPE_KAFKA, "a1", &e), 0);
    assert_null(e.cmd);
    assert_int_equal(e.error_code, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_LIMIT);
    assert_non_null(strstr(e.error, "field 150"));
    assert_string_equal(e.command_id, "");
    assert_null(e.rq.command_id);
    envelope_release(&e);

    /* A length that runs past the end, and a group (wire type 3): malformed, not a crash. */
    static const uint8_t past[] = {0x0a, 0x05, 'a', 'b'};
    assert_int_equal(envelope_decode(past, sizeof(past), ENVELOPE_KAFKA, "a1", &e), 0);
    assert_int_equal(e.error_code, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_MALFORMED);
    assert_non_null(strstr(e.error, "command_id: its length runs past the end"));
    envelope_release(&e);
    static const uint8_t group[] = {0x0b, 0x0c};
    assert_int_equal(envelope_decode(group, sizeof(group), ENVELOPE_KAFKA, "a1", &e), 0);
    assert_int_equal(e.error_code, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_MALFORMED);
    assert_non_null(strstr(e.error, "wire type 3"));
    envelope_release(&e);
    free(inner);
    free(rec);
}

/* Every string of a Command is UTF-8 text without NUL (the proto3 rule; a NUL would cut a
 * manifest short unseen): one that is not is refused naming the field, never echoing it; what
 * the agent echoes (names in errors, stack and service in the result) is bounded valid text. */
static void test_text(void **state)
{
    static const char *fields[] = {"deploy.compose",
                                   "deploy.variables[1].value",
                                   "deploy.files[0].name",
                                   "deploy.filename",
                                   "agent_id",
                                   "deploy.stack"};
    for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
        Axion__Agent__V1__Command c;
        Axion__Agent__V1__Deploy d;
        deploy_cmd(&c, &d);
        Axion__Agent__V1__Variable v1 = AXION__AGENT__V1__VARIABLE__INIT, v2 = v1,
                                   *vp[2] = {&v1, &v2};
        Axion__Agent__V1__File f = AXION__AGENT__V1__FILE__INIT, *fp = &f;
        v1.name = "A";
        v1.value = "fine";
        v2.name = "B";
        v2.value = "s3cr\xff\xfe";
        f.name = "n\xc3";
        d.variables = vp;
        d.files = &fp;
        switch (i) {
        case 0:
            d.compose = "services: {}\n\xc0\xaf";
            break;
        case 1:
            d.n_variables = 2;
            break;
        case 2:
            d.n_files = 1;
            break;
        case 3:
            d.filename = "x\x80.yml";
            break;
        case 4:
            c.agent_id = "a\xff";
            break;
        default:
            d.stack = "\xe2\x82";
            break;
        }
        struct envelope e;
        decode(&c, &e);
        if (!strstr(e.error, fields[i]) || !strstr(e.error, "not UTF-8 text"))
            fail_msg("case %zu: expected %s in \"%s\"", i, fields[i], e.error);
        assert_int_equal(e.error_code, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_MALFORMED);
        assert_null(strstr(e.error, "s3cr"));
        assert_string_equal(e.command_id, "cmd-1");
        envelope_release(&e);
    }

    /* A NUL inside the compose text: the bytes say more than the string would. */
    static const char yml[] = "services: {}\n";
    uint8_t rec[64];
    size_t rl = 0;
    rec[rl++] = 0x52;
    rec[rl++] = (uint8_t)(2 + 3 + 2 + 2 + sizeof(yml) + 1 + 2);
    rec[rl++] = 0x0a;
    rec[rl++] = 3;
    memcpy(rec + rl, "web", 3);
    rl += 3;
    rec[rl++] = 0x10; /* generation 1 */
    rec[rl++] = 1;
    rec[rl++] = 0x1a;
    rec[rl++] = (uint8_t)(sizeof(yml) + 2);
    memcpy(rec + rl, yml, sizeof(yml)); /* with its NUL */
    rl += sizeof(yml);
    rec[rl++] = 'x';
    rec[rl++] = 'y';
    rec[1] = (uint8_t)(rl - 2);
    struct envelope e;
    assert_int_equal(envelope_decode(rec, rl, ENVELOPE_KAFKA, "a1", &e), 0);
    assert_int_equal(e.error_code, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_MALFORMED);
    assert_non_null(strstr(e.error, "deploy.compose: not UTF-8 text (or holds a NUL byte)"));
    envelope_release(&e);

    /* A refused stack of a megabyte is not echoed in the result; a bad name in an error is
     * cut to the limit at a character, with control bytes as '?'. */
    Axion__Agent__V1__Command c;
    Axion__Agent__V1__Deploy d;
    deploy_cmd(&c, &d);
    char *huge = malloc((1u << 20) + 1);
    assert_non_null(huge);
    memset(huge, 'a', 1u << 20);
    huge[1u << 20] = '\0';
    d.stack = huge;
    decode(&c, &e);
    assert_int_equal(e.error_code, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_LIMIT);
    struct intake_result res = {.outcome = INTAKE_REJECTED, .cause = INTAKE_CAUSE_REFUSED};
    snprintf(res.error, sizeof(res.error), "%s", e.error);
    Axion__Agent__V1__CommandResult r;
    envelope_result_from_intake(&e, &res, 1, &r);
    assert_string_equal(r.stack, "");
    assert_true(protobuf_c_message_get_packed_size(&r.base) < 4096);
    envelope_release(&e);
    free(huge);

    deploy_cmd(&c, &d);
    d.stack = "-\x1b[31m\xc3\xa9";
    decode(&c, &e);
    assert_non_null(strstr(e.error, "\"-?[31m\xc3\xa9\": must start"));
    envelope_result_from_intake(&e, &res, 1, &r);
    assert_string_equal(r.stack, "");
    envelope_release(&e);

    Axion__Agent__V1__Scale sc = AXION__AGENT__V1__SCALE__INIT;
    axion__agent__v1__command__init(&c);
    c.command_id = "s-1";
    c.body_case = AXION__AGENT__V1__COMMAND__BODY_SCALE;
    c.scale = &sc;
    sc.stack = "web";
    sc.service = "no/such";
    decode(&c, &e);
    assert_int_equal(e.error_code, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_MALFORMED);
    envelope_result_from_intake(&e, &res, 1, &r);
    assert_string_equal(r.stack, "web");
    assert_string_equal(r.service, "");
    envelope_release(&e);
}

static void test_envelope_text(void **state)
{
    char buf[16];
    assert_string_equal(envelope_text("plain", 10, buf, sizeof(buf)), "plain");
    assert_string_equal(envelope_text(NULL, 10, buf, sizeof(buf)), "");
    /* cut at a character: "é" is two bytes and does not fit in 4 */
    assert_string_equal(envelope_text("abc\xc3\xa9zz", 4, buf, sizeof(buf)), "abc?...");
    assert_string_equal(envelope_text("ab\xc3\xa9zz", 4, buf, sizeof(buf)), "ab\xc3\xa9...");
    assert_string_equal(envelope_text("a\nb\x7f\xff\x1b\t", 10, buf, sizeof(buf)), "a\nb???\t");
    assert_string_equal(envelope_text("\xe2\x82\xac\xe2\x82", 10, buf, sizeof(buf)),
                        "\xe2\x82\xac??");
    /* never past the buffer */
    assert_string_equal(envelope_text("0123456789abcdefghij", 100, buf, 8), "0123456");
}

/* Refused and accepted envelopes through a real intake: records, positions, results. */
static void test_through_intake(void **state)
{
    char *dir = tu_mkdtemp(), path[512], err[256];
    snprintf(path, sizeof(path), "%s/store.db", dir);
    struct store *st;
    assert_int_equal(store_open(path, 0, &st, err, sizeof(err)), 0);
    struct policy_rules pol = {0};
    struct intake_opts o = {.agent_id = "a1", .policy = &pol};
    struct intake *in;
    assert_int_equal(intake_new(st, &o, &in), 0);

    Axion__Agent__V1__Command c;
    Axion__Agent__V1__Deploy d;
    deploy_cmd(&c, &d);
    struct intake_position pos = {"runner.commands.a1", 0, 1};
    struct envelope e;
    struct intake_result res;
    Axion__Agent__V1__CommandResult r;

    /* accepted */
    decode(&c, &e);
    e.rq.source = "kafka";
    e.rq.position = &pos;
    assert_int_equal(intake_submit(in, &e.rq, &res), 0);
    assert_int_equal(res.outcome, INTAKE_ACCEPTED);
    envelope_result_from_intake(&e, &res, 1000, &r);
    assert_int_equal(r.outcome, AXION__AGENT__V1__OUTCOME__OUTCOME_ACCEPTED);
    assert_int_equal(r.kind, AXION__AGENT__V1__COMMAND_KIND__COMMAND_KIND_DEPLOY);
    assert_int_equal(r.generation, 3);
    assert_string_equal(r.stack, "web");
    intake_result_release(&res);
    envelope_release(&e);

    /* the same id again: duplicate, original outcome accepted */
    pos.next_offset = 2;
    decode(&c, &e);
    e.rq.source = "kafka";
    e.rq.position = &pos;
    assert_int_equal(intake_submit(in, &e.rq, &res), 0);
    envelope_result_from_intake(&e, &res, 1000, &r);
    assert_int_equal(r.outcome, AXION__AGENT__V1__OUTCOME__OUTCOME_DUPLICATE);
    assert_int_equal(r.original_outcome, AXION__AGENT__V1__OUTCOME__OUTCOME_ACCEPTED);
    intake_result_release(&res);
    envelope_release(&e);

    /* an older generation under a new id: superseded, the stored generation named */
    c.command_id = "cmd-2";
    d.generation = 2;
    pos.next_offset = 3;
    decode(&c, &e);
    e.rq.source = "kafka";
    e.rq.position = &pos;
    assert_int_equal(intake_submit(in, &e.rq, &res), 0);
    envelope_result_from_intake(&e, &res, 1000, &r);
    assert_int_equal(r.outcome, AXION__AGENT__V1__OUTCOME__OUTCOME_SUPERSEDED);
    assert_int_equal(r.stored_generation, 3);
    intake_result_release(&res);
    envelope_release(&e);

    /* a policy refusal: REJECTED, POLICY */
    c.command_id = "cmd-3";
    d.generation = 4;
    d.compose = "services:\n  web:\n    image: busybox\n    privileged: true\n";
    pos.next_offset = 4;
    decode(&c, &e);
    e.rq.source = "kafka";
    e.rq.position = &pos;
    assert_int_equal(intake_submit(in, &e.rq, &res), 0);
    envelope_result_from_intake(&e, &res, 1000, &r);
    assert_int_equal(r.outcome, AXION__AGENT__V1__OUTCOME__OUTCOME_REJECTED);
    assert_int_equal(r.error_code, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_POLICY);
    intake_result_release(&res);
    envelope_release(&e);

    /* invalid YAML: REJECTED, MANIFEST, with the place */
    c.command_id = "cmd-4";
    d.compose = "services:\n  web: [\n";
    pos.next_offset = 5;
    decode(&c, &e);
    e.rq.source = "kafka";
    e.rq.position = &pos;
    assert_int_equal(intake_submit(in, &e.rq, &res), 0);
    envelope_result_from_intake(&e, &res, 1000, &r);
    assert_int_equal(r.error_code, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_MANIFEST);
    assert_non_null(strstr(r.error, "compose.yml:"));
    intake_result_release(&res);
    envelope_release(&e);

    /* bytes that are no Command: rejected under the channel's own id, position stored */
    static const uint8_t junk[] = {0xff, 0xff};
    assert_int_equal(envelope_decode(junk, sizeof(junk), ENVELOPE_KAFKA, "a1", &e), 0);
    e.rq.source = "kafka";
    e.rq.command_id = "kafka/0/5/runner.commands.a1";
    pos.next_offset = 6;
    e.rq.position = &pos;
    assert_int_equal(intake_submit(in, &e.rq, &res), 0);
    assert_int_equal(res.outcome, INTAKE_REJECTED);
    assert_int_equal(res.cause, INTAKE_CAUSE_REFUSED);
    envelope_result_from_intake(&e, &res, 1000, &r);
    assert_int_equal(r.error_code, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_MALFORMED);
    assert_string_equal(r.command_id, "");
    intake_result_release(&res);
    envelope_release(&e);
    struct store_command *rec = NULL;
    assert_int_equal(store_get_command(st, "kafka/0/5/runner.commands.a1", &rec), 0);
    assert_int_equal(rec->status, STORE_COMMAND_REJECTED);
    assert_string_equal(rec->kind, "unknown");
    assert_non_null(strstr(rec->error, "not a Command"));
    store_command_free(rec);
    int64_t next = 0;
    assert_int_equal(store_get_offset(st, "runner.commands.a1", 0, &next), 0);
    assert_int_equal(next, 6);

    /* a final result */
    struct tracker_final fin = {.command_id = "cmd-1",
                                .source = "kafka",
                                .kind = INTAKE_DEPLOY,
                                .stack = "web",
                                .generation = 3,
                                .result = TRACKER_FAILED,
                                .error = "web_web: no such image"};
    envelope_result_from_final(&fin, 2000, &r);
    assert_int_equal(r.outcome, AXION__AGENT__V1__OUTCOME__OUTCOME_FAILED);
    assert_int_equal(r.error_code, AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_ENGINE);
    assert_string_equal(r.error, "web_web: no such image");
    assert_int_equal(r.finished_at_ms, 2000);

    intake_free(in);
    store_close(st);
    tu_rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deploy),         cmocka_unit_test(test_other_bodies),
        cmocka_unit_test(test_limits),         cmocka_unit_test(test_undecodable),
        cmocka_unit_test(test_through_intake), cmocka_unit_test(test_wire_counts),
        cmocka_unit_test(test_text),           cmocka_unit_test(test_envelope_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

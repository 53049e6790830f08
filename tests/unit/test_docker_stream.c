/* The pure stream decoders of drivers/docker: events JSON split at every byte boundary, log
 * frames split across reads, limits and malformed input. */
#include "support/testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/docker/docker_stream.h"
#include "lib/buf.h"

/* ---- JSON splitter ------------------------------------------------------------------------ */

struct collected {
    struct buf all; /* every object, one per line */
    int n;
    int stop_after; /* return -ECANCELED after this many (0: never) */
};

static int collect_obj(const char *text, size_t len, void *ud)
{
    struct collected *c = ud;
    assert_int_equal(text[len], '\0'); /* NUL-terminated for the parser */
    assert_int_equal(buf_append(&c->all, text, len), 0);
    assert_int_equal(buf_putc(&c->all, '\n'), 0);
    c->n++;
    if (c->stop_after && c->n >= c->stop_after)
        return -ECANCELED;
    return 0;
}

static const char events_text[] =
    "{\"Type\":\"service\",\"Action\":\"create\",\"Actor\":{\"ID\":\"abc\",\"Attributes\":{"
    "\"name\":"
    "\"web\"}},\"time\":1}\n"
    "{\"Type\":\"container\",\"Action\":\"exec_start: sh -c \\\"echo }{\\\"\",\"Actor\":{\"ID\":"
    "\"x\\\\\",\"Attributes\":{\"a[\":\"]\"}},\"scope\":\"local\"}\n"
    "  \r\n{\"Type\":\"network\",\"list\":[1,[2,{\"k\":[]}],\"\\u007b\"]}\n"
    "{}";

static const char events_expected[] =
    "{\"Type\":\"service\",\"Action\":\"create\",\"Actor\":{\"ID\":\"abc\",\"Attributes\":{"
    "\"name\":"
    "\"web\"}},\"time\":1}\n"
    "{\"Type\":\"container\",\"Action\":\"exec_start: sh -c \\\"echo }{\\\"\",\"Actor\":{\"ID\":"
    "\"x\\\\\",\"Attributes\":{\"a[\":\"]\"}},\"scope\":\"local\"}\n"
    "{\"Type\":\"network\",\"list\":[1,[2,{\"k\":[]}],\"\\u007b\"]}\n"
    "{}\n";

static void test_json_whole(void **state)
{
    struct docker_stream_json s;
    struct collected c = {.all = BUF_INIT(1 << 20)};
    docker_stream_json_init(&s, 1024);
    assert_int_equal(docker_stream_json_feed(&s, events_text, strlen(events_text), collect_obj, &c),
                     0);
    assert_int_equal(docker_stream_json_finish(&s), 0);
    assert_int_equal(c.n, 4);
    assert_string_equal(c.all.data, events_expected);
    docker_stream_json_release(&s);
    buf_release(&c.all);
}

static void test_json_every_split(void **state)
{
    size_t len = strlen(events_text);
    for (size_t i = 0; i <= len; i++) {
        for (size_t j = i; j <= len; j += (j < i + 3 ? 1 : 7)) {
            struct docker_stream_json s;
            struct collected c = {.all = BUF_INIT(1 << 20)};
            docker_stream_json_init(&s, 1024);
            assert_int_equal(docker_stream_json_feed(&s, events_text, i, collect_obj, &c), 0);
            assert_int_equal(docker_stream_json_feed(&s, events_text + i, j - i, collect_obj, &c),
                             0);
            assert_int_equal(docker_stream_json_feed(&s, events_text + j, len - j, collect_obj, &c),
                             0);
            assert_int_equal(docker_stream_json_finish(&s), 0);
            assert_string_equal(c.all.data, events_expected);
            docker_stream_json_release(&s);
            buf_release(&c.all);
        }
    }
}

static void test_json_byte_by_byte(void **state)
{
    struct docker_stream_json s;
    struct collected c = {.all = BUF_INIT(1 << 20)};
    docker_stream_json_init(&s, 1024);
    for (size_t i = 0; i < strlen(events_text); i++)
        assert_int_equal(docker_stream_json_feed(&s, events_text + i, 1, collect_obj, &c), 0);
    assert_int_equal(docker_stream_json_finish(&s), 0);
    assert_string_equal(c.all.data, events_expected);
    docker_stream_json_release(&s);
    buf_release(&c.all);
}

static void test_json_oversize(void **state)
{
    /* exactly the limit passes, one more byte fails, whether split or whole */
    const char *ok = "{\"a\":\"0123456789\"}"; /* 18 bytes */
    const char *big = "{\"a\":\"01234567890\"}";
    struct docker_stream_json s;
    struct collected c = {.all = BUF_INIT(1 << 20)};
    docker_stream_json_init(&s, 18);
    assert_int_equal(docker_stream_json_feed(&s, ok, strlen(ok), collect_obj, &c), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(docker_stream_json_feed(&s, big, 5, collect_obj, &c), 0);
    assert_int_equal(docker_stream_json_feed(&s, big + 5, strlen(big) - 5, collect_obj, &c),
                     -EMSGSIZE);
    /* failed for good */
    assert_int_equal(docker_stream_json_feed(&s, ok, strlen(ok), collect_obj, &c), -EMSGSIZE);
    assert_int_equal(docker_stream_json_finish(&s), -EMSGSIZE);
    assert_int_equal(c.n, 1);
    docker_stream_json_release(&s);

    /* an object that never ends is rejected as soon as it passes the limit */
    docker_stream_json_init(&s, 1000);
    assert_int_equal(docker_stream_json_feed(&s, "{\"a\":\"", 6, collect_obj, &c), 0);
    int r = 0;
    for (int i = 0; i < 200 && r == 0; i++)
        r = docker_stream_json_feed(&s, "xxxxxxxxxx", 10, collect_obj, &c);
    assert_int_equal(r, -EMSGSIZE);
    docker_stream_json_release(&s);
    buf_release(&c.all);
}

static void test_json_malformed(void **state)
{
    struct docker_stream_json s;
    struct collected c = {.all = BUF_INIT(1 << 20)};
    const char *bad[] = {"[1,2]", "x{}", "{} 1", "\"s\"", "}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        docker_stream_json_init(&s, 1024);
        assert_int_equal(docker_stream_json_feed(&s, bad[i], strlen(bad[i]), collect_obj, &c),
                         -EBADMSG);
        docker_stream_json_release(&s);
    }
    /* cut off inside an object */
    docker_stream_json_init(&s, 1024);
    assert_int_equal(docker_stream_json_feed(&s, "{\"a\":{}", 7, collect_obj, &c), 0);
    assert_int_equal(docker_stream_json_finish(&s), -EBADMSG);
    docker_stream_json_release(&s);
    buf_release(&c.all);
}

static void test_json_callback_stops(void **state)
{
    struct docker_stream_json s;
    struct collected c = {.all = BUF_INIT(1 << 20), .stop_after = 2};
    docker_stream_json_init(&s, 1024);
    assert_int_equal(docker_stream_json_feed(&s, events_text, strlen(events_text), collect_obj, &c),
                     -ECANCELED);
    assert_int_equal(c.n, 2);
    docker_stream_json_release(&s);
    buf_release(&c.all);
}

/* ---- multiplexed frames ------------------------------------------------------------------- */

static size_t put_frame(uint8_t *out, uint8_t kind, const char *payload, size_t n)
{
    out[0] = kind;
    out[1] = out[2] = out[3] = 0;
    out[4] = (uint8_t)(n >> 24);
    out[5] = (uint8_t)(n >> 16);
    out[6] = (uint8_t)(n >> 8);
    out[7] = (uint8_t)n;
    memcpy(out + 8, payload, n);
    return 8 + n;
}

static int collect_frame(enum docker_stream_kind kind, const char *data, size_t len, void *ud)
{
    struct collected *c = ud;
    assert_int_equal(buf_printf(&c->all, "%s:", docker_stream_kind_to_string(kind)), 0);
    assert_int_equal(buf_append(&c->all, data, len), 0);
    assert_int_equal(buf_putc(&c->all, '|'), 0);
    c->n++;
    return 0;
}

static size_t sample_frames(uint8_t *out)
{
    size_t n = 0;
    n += put_frame(out + n, 1, "out1\n", 5);
    n += put_frame(out + n, 2, "err1\n", 5);
    n += put_frame(out + n, 1, "", 0); /* empty frames are skipped */
    n += put_frame(out + n, 1, "a longer line of standard output\n", 33);
    n += put_frame(out + n, 2, "x", 1);
    n += put_frame(out + n, 3, "daemon says no", 14);
    return n;
}

static const char frames_expected[] =
    "stdout:out1\n|stderr:err1\n|stdout:a longer line of standard "
    "output\n|stderr:x|systemerr:daemon says no|";

static void test_mux_every_split(void **state)
{
    uint8_t data[256];
    size_t len = sample_frames(data);
    for (size_t i = 0; i <= len; i++) {
        for (size_t j = i; j <= len; j++) {
            struct docker_stream_mux m;
            struct collected c = {.all = BUF_INIT(1 << 20)};
            docker_stream_mux_init(&m, 64);
            assert_int_equal(docker_stream_mux_feed(&m, data, i, collect_frame, &c), 0);
            assert_int_equal(docker_stream_mux_feed(&m, data + i, j - i, collect_frame, &c), 0);
            assert_int_equal(docker_stream_mux_feed(&m, data + j, len - j, collect_frame, &c), 0);
            assert_int_equal(docker_stream_mux_finish(&m), 0);
            assert_string_equal(c.all.data, frames_expected);
            docker_stream_mux_release(&m);
            buf_release(&c.all);
        }
    }
}

static void test_mux_byte_by_byte(void **state)
{
    uint8_t data[256];
    size_t len = sample_frames(data);
    struct docker_stream_mux m;
    struct collected c = {.all = BUF_INIT(1 << 20)};
    docker_stream_mux_init(&m, 64);
    for (size_t i = 0; i < len; i++)
        assert_int_equal(docker_stream_mux_feed(&m, data + i, 1, collect_frame, &c), 0);
    assert_int_equal(docker_stream_mux_finish(&m), 0);
    assert_string_equal(c.all.data, frames_expected);
    assert_int_equal(c.n, 5);
    docker_stream_mux_release(&m);
    buf_release(&c.all);
}

static void test_mux_oversize(void **state)
{
    uint8_t data[64];
    struct docker_stream_mux m;
    struct collected c = {.all = BUF_INIT(1 << 20)};
    docker_stream_mux_init(&m, 4);
    size_t n = put_frame(data, 1, "1234", 4);
    assert_int_equal(docker_stream_mux_feed(&m, data, n, collect_frame, &c), 0);
    n = put_frame(data, 1, "12345", 5);
    /* rejected on the header alone, before any payload is buffered */
    assert_int_equal(docker_stream_mux_feed(&m, data, 8, collect_frame, &c), -EMSGSIZE);
    assert_int_equal(docker_stream_mux_feed(&m, data + 8, n - 8, collect_frame, &c), -EMSGSIZE);
    assert_int_equal(docker_stream_mux_finish(&m), -EMSGSIZE);
    assert_string_equal(c.all.data, "stdout:1234|");
    docker_stream_mux_release(&m);

    /* a 4 GiB size in the header */
    docker_stream_mux_init(&m, 1 << 20);
    const uint8_t huge[8] = {2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(docker_stream_mux_feed(&m, huge, 8, collect_frame, &c), -EMSGSIZE);
    docker_stream_mux_release(&m);
    buf_release(&c.all);
}

static void test_mux_malformed(void **state)
{
    struct docker_stream_mux m;
    struct collected c = {.all = BUF_INIT(1 << 20)};
    const uint8_t bad_kind[8] = {5, 0, 0, 0, 0, 0, 0, 1};
    const uint8_t bad_pad[8] = {1, 0, 1, 0, 0, 0, 0, 1};
    docker_stream_mux_init(&m, 64);
    assert_int_equal(docker_stream_mux_feed(&m, bad_kind, 8, collect_frame, &c), -EBADMSG);
    docker_stream_mux_release(&m);
    docker_stream_mux_init(&m, 64);
    assert_int_equal(docker_stream_mux_feed(&m, bad_pad, 8, collect_frame, &c), -EBADMSG);
    docker_stream_mux_release(&m);
    /* plain text is not frames */
    docker_stream_mux_init(&m, 64);
    assert_int_equal(docker_stream_mux_feed(&m, "hello world\n", 12, collect_frame, &c), -EBADMSG);
    docker_stream_mux_release(&m);
    /* cut off in a header and in a payload */
    uint8_t data[32];
    size_t n = put_frame(data, 1, "abcdef", 6);
    for (size_t cut = 1; cut < n; cut++) {
        docker_stream_mux_init(&m, 64);
        assert_int_equal(docker_stream_mux_feed(&m, data, cut, collect_frame, &c), 0);
        assert_int_equal(docker_stream_mux_finish(&m), -EBADMSG);
        docker_stream_mux_release(&m);
    }
    assert_int_equal(c.n, 0);
    buf_release(&c.all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_whole),        cmocka_unit_test(test_json_every_split),
        cmocka_unit_test(test_json_byte_by_byte), cmocka_unit_test(test_json_oversize),
        cmocka_unit_test(test_json_malformed),    cmocka_unit_test(test_json_callback_stops),
        cmocka_unit_test(test_mux_every_split),   cmocka_unit_test(test_mux_byte_by_byte),
        cmocka_unit_test(test_mux_oversize),      cmocka_unit_test(test_mux_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Fuzzes the docker stream decoders. The first byte picks the decoder (even: events JSON
 * splitter, odd: log frame decoder) and a chunk size; the rest is the stream. The stream is
 * decoded twice, whole and in chunks, and both must give the same items and the same
 * verdict: the decoders may not depend on how the bytes are split. */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/docker/docker_stream.h"
#include "lib/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_obj(const char *text, size_t len, void *ud)
{
    struct buf *out = ud;
    json_t *j = json_loadb(text, len, 0, NULL);
    json_decref(j);
    if (buf_append(out, text, len) < 0 || buf_putc(out, '\n') < 0)
        return -ENOMEM;
    return 0;
}

static int on_frame(enum docker_stream_kind kind, const char *p, size_t len, void *ud)
{
    struct buf *out = ud;
    if (buf_putc(out, (char)('0' + kind)) < 0 || buf_append(out, p, len) < 0)
        return -ENOMEM;
    return 0;
}

static int run(bool json, const uint8_t *p, size_t n, size_t chunk, struct buf *out)
{
    int r = 0;
    if (json) {
        struct docker_stream_json s;
        docker_stream_json_init(&s, 4096);
        for (size_t off = 0; off < n && r == 0; off += chunk)
            r = docker_stream_json_feed(&s, p + off, n - off < chunk ? n - off : chunk, on_obj,
                                        out);
        if (r == 0)
            r = docker_stream_json_finish(&s);
        docker_stream_json_release(&s);
    } else {
        struct docker_stream_mux m;
        docker_stream_mux_init(&m, 4096);
        for (size_t off = 0; off < n && r == 0; off += chunk)
            r = docker_stream_mux_feed(&m, p + off, n - off < chunk ? n - off : chunk, on_frame,
                                       out);
        if (r == 0)
            r = docker_stream_mux_finish(&m);
        docker_stream_mux_release(&m);
    }
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1 << 20))
        return 0;
    bool json = (data[0] & 1) == 0;
    size_t chunk = (size_t)(data[0] >> 1) + 1;
    struct buf whole = BUF_INIT(64 << 20), split = BUF_INIT(64 << 20);
    int r1 = run(json, data + 1, size - 1, size, &whole);
    int r2 = run(json, data + 1, size - 1, chunk, &split);
    if (r1 != -ENOMEM && r2 != -ENOMEM) {
        /* items before an error may differ only in that the whole feed stops at once */
        if (r1 == 0 || r2 == 0) {
            if (r1 != r2)
                abort();
            if (whole.len != split.len || memcmp(whole.data, split.data, whole.len) != 0)
                abort();
        }
    }
    buf_release(&whole);
    buf_release(&split);
    return 0;
}

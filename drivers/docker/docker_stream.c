#include "drivers/docker/docker_stream.h"

#include <errno.h>
#include <string.h>

const char *docker_stream_kind_to_string(enum docker_stream_kind k)
{
    switch (k) {
    case DOCKER_STREAM_STDIN:
        return "stdin";
    case DOCKER_STREAM_STDOUT:
        return "stdout";
    case DOCKER_STREAM_STDERR:
        return "stderr";
    case DOCKER_STREAM_SYSTEMERR:
        return "systemerr";
    case DOCKER_STREAM_RAW:
        return "raw";
    }
    return "unknown";
}

/* ---- JSON object splitter ---------------------------------------------------------------- */

void docker_stream_json_init(struct docker_stream_json *s, size_t max)
{
    *s = (struct docker_stream_json){.max = max};
    buf_init(&s->obj, max);
}

void docker_stream_json_release(struct docker_stream_json *s)
{
    buf_release(&s->obj);
    s->depth = 0;
    s->in_string = s->escape = false;
}

static int json_fail(struct docker_stream_json *s, int r)
{
    s->error = r;
    buf_release(&s->obj);
    return r;
}

int docker_stream_json_feed(struct docker_stream_json *s, const void *data, size_t len,
                            docker_stream_json_cb cb, void *userdata)
{
    const char *p = data;
    size_t start = 0; /* where the unsaved part of the current object starts in p */
    int r;

    if (s->error)
        return s->error;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (s->depth == 0) {
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
                continue;
            if (c != '{')
                return json_fail(s, -EBADMSG);
            s->depth = 1;
            start = i;
            continue;
        }
        if (s->in_string) {
            if (s->escape)
                s->escape = false;
            else if (c == '\\')
                s->escape = true;
            else if (c == '"')
                s->in_string = false;
            continue;
        }
        switch (c) {
        case '"':
            s->in_string = true;
            break;
        case '{':
        case '[':
            s->depth++;
            break;
        case '}':
        case ']':
            if (--s->depth > 0)
                break;
            r = buf_append(&s->obj, p + start, i + 1 - start);
            if (r < 0)
                return json_fail(s, r);
            r = cb(s->obj.data, s->obj.len, userdata);
            buf_reset(&s->obj);
            if (r < 0)
                return json_fail(s, r);
            break;
        default:
            break;
        }
    }
    if (s->depth > 0) {
        r = buf_append(&s->obj, p + start, len - start);
        if (r < 0)
            return json_fail(s, r);
    }
    return 0;
}

int docker_stream_json_finish(struct docker_stream_json *s)
{
    if (s->error)
        return s->error;
    if (s->depth > 0)
        return json_fail(s, -EBADMSG);
    return 0;
}

/* ---- multiplexed frame decoder ------------------------------------------------------------ */

void docker_stream_mux_init(struct docker_stream_mux *m, size_t max)
{
    *m = (struct docker_stream_mux){.max = max};
    buf_init(&m->frame, max);
}

void docker_stream_mux_release(struct docker_stream_mux *m)
{
    buf_release(&m->frame);
    m->hdr_len = m->need = 0;
}

static int mux_fail(struct docker_stream_mux *m, int r)
{
    m->error = r;
    buf_release(&m->frame);
    return r;
}

int docker_stream_mux_feed(struct docker_stream_mux *m, const void *data, size_t len,
                           docker_stream_mux_cb cb, void *userdata)
{
    const uint8_t *p = data;
    int r;

    if (m->error)
        return m->error;
    while (len > 0) {
        if (m->hdr_len < sizeof(m->hdr)) {
            size_t n = sizeof(m->hdr) - m->hdr_len;
            if (n > len)
                n = len;
            memcpy(m->hdr + m->hdr_len, p, n);
            m->hdr_len += n;
            p += n;
            len -= n;
            if (m->hdr_len < sizeof(m->hdr))
                break;
            if (m->hdr[0] > DOCKER_STREAM_SYSTEMERR || m->hdr[1] || m->hdr[2] || m->hdr[3])
                return mux_fail(m, -EBADMSG);
            uint32_t size = (uint32_t)m->hdr[4] << 24 | (uint32_t)m->hdr[5] << 16 |
                            (uint32_t)m->hdr[6] << 8 | (uint32_t)m->hdr[7];
            if (size > m->max)
                return mux_fail(m, -EMSGSIZE);
            m->kind = m->hdr[0];
            m->need = size;
            if (size == 0) {
                m->hdr_len = 0;
                continue;
            }
        }
        size_t n = m->need < len ? m->need : len;
        if (m->frame.len == 0 && n == m->need) {
            /* The whole payload is here: no copy. */
            r = cb((enum docker_stream_kind)m->kind, (const char *)p, n, userdata);
        } else {
            r = buf_append(&m->frame, p, n);
            if (r < 0)
                return mux_fail(m, r);
            r = 0;
            if (n == m->need) {
                r = cb((enum docker_stream_kind)m->kind, m->frame.data, m->frame.len, userdata);
                buf_reset(&m->frame);
            }
        }
        p += n;
        len -= n;
        m->need -= n;
        if (m->need == 0)
            m->hdr_len = 0;
        if (r < 0)
            return mux_fail(m, r);
    }
    return 0;
}

int docker_stream_mux_finish(struct docker_stream_mux *m)
{
    if (m->error)
        return m->error;
    if (m->hdr_len > 0)
        return mux_fail(m, -EBADMSG);
    return 0;
}

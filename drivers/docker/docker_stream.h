/* Pure, incremental decoders for the Docker Engine's two streaming body formats. They do no
 * I/O and keep no global state, so they can be fed any split of the bytes (unit tests feed
 * every split; tests/fuzz/fuzz_docker_stream.c feeds anything).
 *
 * - docker_stream_json: GET /events sends one JSON object after another (each followed by a
 *   newline, in HTTP chunks that need not line up with the objects). The splitter finds the
 *   object boundaries by tracking strings, escapes and nesting, and hands each complete
 *   top-level object's text to a callback. Objects over a maximum are rejected.
 * - docker_stream_mux: the logs of a container without a TTY come multiplexed in frames of an
 *   8-byte header {stream, 0, 0, 0, size as 32-bit big-endian} and size bytes of payload. The
 *   decoder hands each complete frame to a callback. Frames over a maximum are rejected.
 *
 * Both return 0, -EMSGSIZE (over the maximum), -EBADMSG (not that format), -ENOMEM, or the
 * negative value a callback returned (which stops the feed). After an error the decoder is
 * failed: every later feed returns the same error. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* Stream numbers of the multiplexed format (and RAW for a TTY's unframed output). */
enum docker_stream_kind {
    DOCKER_STREAM_STDIN = 0,
    DOCKER_STREAM_STDOUT = 1,
    DOCKER_STREAM_STDERR = 2,
    DOCKER_STREAM_SYSTEMERR = 3, /* an error the daemon reports in the stream itself */
    DOCKER_STREAM_RAW = 4,       /* a TTY's output: one stream, no frames */
};

const char *docker_stream_kind_to_string(enum docker_stream_kind k);

/* ---- JSON object splitter ---------------------------------------------------------------- */

struct docker_stream_json {
    struct buf obj; /* text of the object being assembled */
    size_t max;     /* largest object accepted, in bytes */
    uint32_t depth; /* nesting of { and [ inside the object; 0 between objects */
    bool in_string;
    bool escape;
    int error; /* 0, or the error that failed the splitter */
};

typedef int (*docker_stream_json_cb)(const char *text, size_t len, void *userdata);

void docker_stream_json_init(struct docker_stream_json *s, size_t max);
void docker_stream_json_release(struct docker_stream_json *s);
/* Feeds bytes; calls cb once per complete top-level object, in order. Whitespace between
 * objects is skipped; anything else there is -EBADMSG. */
int docker_stream_json_feed(struct docker_stream_json *s, const void *data, size_t len,
                            docker_stream_json_cb cb, void *userdata);
/* The stream ended: -EBADMSG if an object was cut off, else 0 (or the earlier error). */
int docker_stream_json_finish(struct docker_stream_json *s);

/* ---- multiplexed frame decoder ------------------------------------------------------------ */

struct docker_stream_mux {
    uint8_t hdr[8];
    size_t hdr_len;   /* header bytes seen of the current frame */
    size_t need;      /* payload bytes the current frame still needs */
    uint8_t kind;     /* stream byte of the current frame */
    struct buf frame; /* payload of the current frame */
    size_t max;       /* largest frame accepted, in bytes */
    int error;
};

typedef int (*docker_stream_mux_cb)(enum docker_stream_kind kind, const char *data, size_t len,
                                    void *userdata);

void docker_stream_mux_init(struct docker_stream_mux *m, size_t max);
void docker_stream_mux_release(struct docker_stream_mux *m);
/* Feeds bytes; calls cb once per complete non-empty frame, in order. A stream byte above 3 or
 * non-zero padding is -EBADMSG; a size above max is -EMSGSIZE. */
int docker_stream_mux_feed(struct docker_stream_mux *m, const void *data, size_t len,
                           docker_stream_mux_cb cb, void *userdata);
/* The stream ended: -EBADMSG if a frame was cut off, else 0 (or the earlier error). */
int docker_stream_mux_finish(struct docker_stream_mux *m);

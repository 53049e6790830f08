/* The Docker Engine API client: asynchronous HTTP/1.1 over the daemon's unix socket, libcurl
 * multi driven by a libev loop, JSON bodies with jansson. See docs/internals/docker.md.
 *
 * A request is started with docker_call() (or a typed call from docker_api.h) and completes
 * once, on the loop, through its callback with a struct docker_result. The result (and its
 * body) belongs to the client and lives until the callback returns; keep the body with
 * docker_result_take_body(). A request created with a NULL callback must be collected with
 * docker_wait(), which runs the loop until it completes (the CLI's synchronous mode).
 *
 * Long-lived streams: docker_events_open() (reconnects by itself and says when the caller may
 * have missed events) and docker_logs_open() (one service's or container's logs).
 *
 * Only the loop thread may use a client. No callback is ever called from inside docker_call()
 * or any other function of this API, only from the loop. docker_free() must not be called
 * from a callback of the same client. */
#pragma once

#include <ev.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drivers/docker/docker_stream.h"

/* The newest API version the agent knows; the daemon's is used when it is older. */
#define DOCKER_API_VERSION_MAX "1.45"
/* The oldest the agent works with (Engine 20.10). */
#define DOCKER_API_VERSION_MIN "1.41"

struct docker;
struct docker_request;
struct docker_events;
struct docker_logs;

struct docker_opts {
    uint64_t timeout_ms;         /* whole request, streams excepted; 0: 30 s */
    uint64_t connect_timeout_ms; /* connecting to the socket; 0: 5 s */
    size_t max_body;             /* largest response body; 0: 64 MiB */
    size_t max_event;            /* largest event object; 0: 1 MiB */
    size_t max_frame;            /* largest log frame; 0: 1 MiB */
    uint64_t reconnect_min_ms;   /* events stream backoff: first delay; 0: 250 ms */
    uint64_t reconnect_max_ms;   /* ... and the most it grows to; 0: 10 s */
    const char *api_version_max; /* cap on the negotiated version; NULL: the above */
    unsigned max_connections;    /* open connections to the daemon; 0: 64 */
};

enum docker_error {
    DOCKER_OK = 0,
    DOCKER_ERR_TRANSPORT, /* no connection, or it broke (dockerd down, socket missing) */
    DOCKER_ERR_HTTP,      /* the daemon answered with status >= 400; message is Docker's */
    DOCKER_ERR_TIMEOUT,   /* no complete answer within the request's timeout */
    DOCKER_ERR_JSON,      /* the answer (or an event) is not the JSON it should be */
    DOCKER_ERR_TOO_LARGE, /* body, event or log frame over its limit */
    DOCKER_ERR_VERSION,   /* the daemon's API version is older than the agent needs */
    DOCKER_ERR_NOMEM,
};

const char *docker_error_to_string(enum docker_error e);

struct docker_result {
    enum docker_error error;
    long status;     /* HTTP status, 0 when none arrived */
    json_t *body;    /* the parsed JSON body (also of an error answer), or NULL */
    const char *raw; /* the body as received, NUL-terminated ("" for streams) */
    size_t raw_len;
    const char *message; /* on error the cause: Docker's "message", or the transport's; else "" */
    const char *what;    /* "POST /services/create", for messages */
};

typedef void (*docker_cb)(struct docker_result *res, void *userdata);

/* Makes a client bound to loop; does no I/O yet. NULL opts: all defaults. */
int docker_new(struct ev_loop *loop, const char *socket_path, const struct docker_opts *opts,
               struct docker **ret);
/* Cancels every request and stream without calling their callbacks, and frees the client.
 * Accepts NULL; returns NULL. */
struct docker *docker_free(struct docker *d);

/* The negotiated API version ("1.41"), or NULL before the first answer of GET /version. */
const char *docker_api_version(const struct docker *d);
/* Whether the negotiated version is at least major.minor (false before negotiation). */
bool docker_api_at_least(const struct docker *d, int major, int minor);
/* How many mutating requests (POST, PUT, DELETE) the client has issued. */
uint64_t docker_mutations(const struct docker *d);

struct docker_call_opts {
    uint64_t timeout_ms; /* 0: the client's */
    size_t max_body;     /* 0: the client's */
    /* Leave a 2xx answer unparsed: res->body is NULL and res->raw has the bytes (an error
     * answer is still parsed for its message). For a caller that compares an answer with the
     * previous one before it pays for parsing it. */
    bool raw_body;
};

/* Starts METHOD /v<version>PATH (path may carry a query string, already escaped) with the
 * JSON body (stolen, may be NULL). The first call negotiates the version with GET /version;
 * calls made meanwhile wait for it. Returns NULL only when out of memory (body freed). */
struct docker_request *docker_call(struct docker *d, const char *method, const char *path,
                                   json_t *body, docker_cb cb, void *userdata);
struct docker_request *docker_call_with(struct docker *d, const char *method, const char *path,
                                        json_t *body, const struct docker_call_opts *opts,
                                        docker_cb cb, void *userdata);
/* Cancels a request that has not completed: its callback is not called. Accepts NULL. */
void docker_request_cancel(struct docker_request *req);

/* Runs the loop until req (made with a NULL callback) completes and hands over its result
 * (free with docker_result_free). Returns -ENOMEM when req is NULL (the call failed to
 * allocate), -EDEADLK when the loop has nothing left to wait on, else 0. */
int docker_wait(struct docker *d, struct docker_request *req, struct docker_result **ret);
struct docker_result *docker_result_free(struct docker_result *res);
/* Takes the body out of the result: the caller owns it (may be NULL). */
json_t *docker_result_take_body(struct docker_result *res);
/* The "Warnings" array of a create/update answer (borrowed), or NULL when none. */
json_t *docker_result_warnings(const struct docker_result *res);

/* ---- events ------------------------------------------------------------------------------ */

enum docker_events_state {
    /* The stream is (again) open. Events from before this point may have been missed: the
     * caller resyncs everything now. Reported on the first connection too. */
    DOCKER_EVENTS_CONNECTED,
    /* The stream broke or could not open (why says how); it reconnects after a backoff. */
    DOCKER_EVENTS_DISCONNECTED,
};

/* event: one decoded event object, borrowed for the call (json_incref to keep). */
typedef void (*docker_event_cb)(json_t *event, void *userdata);
typedef void (*docker_events_state_cb)(enum docker_events_state state, const char *why,
                                       void *userdata);

/* Opens GET /events with filters (borrowed, copied; NULL: all) and keeps it open until
 * docker_events_close(), reconnecting with backoff. Returns NULL only when out of memory. */
struct docker_events *docker_events_open(struct docker *d, const json_t *filters,
                                         docker_event_cb on_event, docker_events_state_cb on_state,
                                         void *userdata);
/* Closes the stream; no callback after this. Accepts NULL; may be called from its callbacks. */
void docker_events_close(struct docker_events *ev);
/* Whether the stream is open right now. */
bool docker_events_connected(const struct docker_events *ev);

/* ---- logs -------------------------------------------------------------------------------- */

enum docker_logs_target { DOCKER_LOGS_SERVICE, DOCKER_LOGS_CONTAINER };

struct docker_logs_opts {
    bool follow;     /* keep streaming new output */
    bool timestamps; /* prefix each line with its RFC 3339 time */
    bool details;    /* prefix each line with its attributes (service logs: task and node) */
    bool no_stdout;
    bool no_stderr;
    int64_t tail;  /* last N lines; < 0: all */
    int64_t since; /* unix seconds; 0: from the start */
};

/* A frame of output (DOCKER_STREAM_STDOUT / _STDERR), or a chunk of a TTY's output
 * (DOCKER_STREAM_RAW), in order. */
typedef void (*docker_logs_data_cb)(enum docker_stream_kind kind, const char *data, size_t len,
                                    void *userdata);

/* Streams the logs of a service or container (inspected first to tell a TTY's plain output
 * from the multiplexed frames). on_end is called once, when the logs end (not following) or
 * fail. Returns NULL only when out of memory. */
struct docker_logs *docker_logs_open(struct docker *d, enum docker_logs_target target,
                                     const char *id, const struct docker_logs_opts *opts,
                                     docker_logs_data_cb on_data, docker_cb on_end, void *userdata);
/* Holds the output (hold true: on_data is not called until released; the transfer pauses
 * once 256 KiB wait, so a slow consumer bounds what is buffered) or releases it (what waited
 * comes from the loop soon after, never from inside this call). On a stream that ended while
 * held, on_end comes after the rest of the data once released. Accepts NULL. */
void docker_logs_hold(struct docker_logs *l, bool hold);
/* Stops the logs; no callback after this. Accepts NULL; may be called from its callbacks. */
void docker_logs_close(struct docker_logs *l);

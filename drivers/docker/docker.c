#include "drivers/docker/docker.h"

#include <assert.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"

#define DEFAULT_TIMEOUT_MS         30000
#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_MAX_BODY           ((size_t)64 << 20)
#define DEFAULT_MAX_EVENT          ((size_t)1 << 20)
#define DEFAULT_MAX_FRAME          ((size_t)1 << 20)
#define DEFAULT_RECONNECT_MIN_MS   250
#define DEFAULT_RECONNECT_MAX_MS   10000
#define DEFAULT_MAX_CONNECTIONS    64
/* A stream whose undelivered bytes pass this is paused until they are delivered. */
#define INBOX_PAUSE ((size_t)256 << 10)
/* An events connection that stayed up this long resets the backoff. */
#define STABLE_UP_S 5.0

/* ---- a tiny intrusive list --------------------------------------------------------------- */

struct list {
    struct list *prev, *next;
};

static void list_init(struct list *l)
{
    l->prev = l->next = l;
}

static bool list_empty(const struct list *l)
{
    return l->next == l;
}

static void list_add_tail(struct list *head, struct list *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

static void list_del(struct list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    list_init(n);
}

/* Moves every entry of from to the (empty) to. */
static void list_move_all(struct list *from, struct list *to)
{
    list_init(to);
    if (list_empty(from))
        return;
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    list_init(from);
}

#define list_entry(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* ---- types -------------------------------------------------------------------------------- */

struct result_impl {
    struct docker_result pub;
    char *message;
    char *what;
    char *raw;
};

enum req_state { REQ_WAITING, REQ_RUNNING, REQ_DONE };

/* How a streaming request hands its body on. Each returns 0 or a negative errno that stops the
 * request (-EMSGSIZE, -EBADMSG, -ENOMEM, -ECANCELED). */
struct stream_ops {
    int (*open)(struct docker_request *r, void *ud);
    int (*data)(struct docker_request *r, const char *p, size_t n, void *ud);
    int (*finish)(struct docker_request *r, void *ud);
};

struct docker_request {
    struct docker *d;
    unsigned n_ref;
    struct list link; /* in d->waiting, d->running, d->failed or d->finished */
    enum req_state state;
    bool internal; /* issued by the client itself: not a caller's request */
    char *method;
    char *path;
    char *req_body;
    uint64_t timeout_ms;
    size_t max_body;
    bool raw_body; /* leave a 2xx body unparsed */
    docker_cb cb;
    void *ud;

    CURL *easy;
    struct curl_slist *headers;
    char errbuf[CURL_ERROR_SIZE];
    long status;
    char *content_type;
    bool headers_done;
    bool too_large;
    bool nomem;
    struct buf body; /* the body (of a stream: only an error answer's) */

    /* streams */
    const struct stream_ops *ops;
    void *ops_ud;
    struct buf inbox; /* received, not yet delivered */
    bool opened;
    bool paused;
    bool held;         /* the consumer asked for no deliveries for now (docker_logs_hold) */
    bool done_pending; /* the transfer ended while held: finish it once released */
    CURLcode done_rc;
    bool dirty;
    struct docker_request *next_dirty;

    /* a failure found before curl ran (delivered from the kick timer) */
    enum docker_error pre_error;
    char *pre_message;

    struct result_impl *result; /* kept for docker_wait when cb is NULL */
};

struct docker_sock {
    ev_io io;
    struct docker *d;
    struct list link;
};

enum ver_state { VER_NONE, VER_PENDING, VER_OK };

struct docker {
    struct ev_loop *loop;
    CURLM *multi;
    ev_timer timer; /* curl's timeout */
    ev_timer kick;  /* deferred failures */
    char *socket_path;
    struct docker_opts o;
    int cap_major, cap_minor;

    enum ver_state ver_state;
    char version[16];
    int ver_major, ver_minor;

    struct list waiting;  /* requests waiting for the version */
    struct list running;  /* requests in curl */
    struct list failed;   /* requests that failed before curl ran; the kick completes them */
    struct list finished; /* completed requests without a callback, for docker_wait */
    struct list socks;
    struct list events;
    struct list logs;
    struct docker_request *dirty; /* streams with undelivered bytes (each holds a ref) */
    uint64_t mutations;
    uint32_t rand_state;
};

struct docker_events {
    struct docker *d;
    struct list link;
    char *filters_q; /* escaped JSON, or NULL */
    docker_event_cb on_event;
    docker_events_state_cb on_state;
    void *ud;
    struct docker_request *req;
    ev_timer retry;
    struct docker_stream_json split;
    uint64_t backoff_ms;
    ev_tstamp up_since;
    bool connected;
    bool down_reported;
    unsigned busy;
    bool closed;
};

struct docker_logs {
    struct docker *d;
    struct list link;
    enum docker_logs_target target;
    char *id;
    struct docker_logs_opts o;
    docker_logs_data_cb on_data;
    docker_cb on_end;
    void *ud;
    struct docker_request *req;
    bool tty;
    bool raw;
    bool held;
    struct docker_stream_mux mux;
    unsigned busy;
    bool closed;
};

static void process(struct docker *d);

const char *docker_error_to_string(enum docker_error e)
{
    switch (e) {
    case DOCKER_OK:
        return "ok";
    case DOCKER_ERR_TRANSPORT:
        return "transport";
    case DOCKER_ERR_HTTP:
        return "http";
    case DOCKER_ERR_TIMEOUT:
        return "timeout";
    case DOCKER_ERR_JSON:
        return "json";
    case DOCKER_ERR_TOO_LARGE:
        return "too-large";
    case DOCKER_ERR_VERSION:
        return "version";
    case DOCKER_ERR_NOMEM:
        return "nomem";
    }
    return "unknown";
}

static enum docker_error error_from_errno(int r)
{
    switch (r) {
    case -EMSGSIZE:
        return DOCKER_ERR_TOO_LARGE;
    case -EBADMSG:
        return DOCKER_ERR_JSON;
    case -ENOMEM:
        return DOCKER_ERR_NOMEM;
    default:
        return DOCKER_ERR_TRANSPORT;
    }
}

static bool is_2xx(long status)
{
    return status >= 200 && status < 300;
}

static bool method_mutates(const char *m)
{
    return streq(m, "POST") || streq(m, "PUT") || streq(m, "DELETE");
}

static int parse_version(const char *s, int *ret_major, int *ret_minor)
{
    int major, minor, n = 0;
    if (!s || sscanf(s, "%d.%d%n", &major, &minor, &n) != 2 || s[n] != '\0' || major < 0 ||
        minor < 0)
        return -EINVAL;
    *ret_major = major;
    *ret_minor = minor;
    return 0;
}

static uint32_t next_rand(struct docker *d)
{
    /* xorshift32: jitter only, no need for more */
    uint32_t x = d->rand_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return d->rand_state = x;
}

/* ---- results ------------------------------------------------------------------------------ */

static struct result_impl *result_new(struct docker_request *r, enum docker_error err,
                                      const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static struct result_impl *result_new(struct docker_request *r, enum docker_error err,
                                      const char *fmt, ...)
{
    struct result_impl *res = calloc(1, sizeof(*res));
    if (!res)
        return NULL;
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg = NULL;
    char *what = NULL;
    if (asprintf(&what, "%s %s", r->method, r->path) < 0)
        what = NULL;
    if (!msg || !what) {
        free(msg);
        free(what);
        free(res);
        return NULL;
    }
    res->message = msg;
    res->what = what;
    res->pub.error = err;
    res->pub.status = r->status;
    res->pub.message = msg;
    res->pub.what = what;
    res->pub.raw = "";
    return res;
}

struct docker_result *docker_result_free(struct docker_result *pub)
{
    if (!pub)
        return NULL;
    struct result_impl *res = (struct result_impl *)pub;
    json_decref(res->pub.body);
    free(res->message);
    free(res->what);
    free(res->raw);
    free(res);
    return NULL;
}

json_t *docker_result_take_body(struct docker_result *res)
{
    return TAKE_PTR(res->body);
}

json_t *docker_result_warnings(const struct docker_result *res)
{
    json_t *w = json_object_get(res->body, "Warnings");
    return json_is_array(w) && json_array_size(w) > 0 ? w : NULL;
}

/* Static results for when even a result cannot be allocated. */
static void call_cb_nomem(struct docker_request *r)
{
    struct docker_result res = {.error = DOCKER_ERR_NOMEM,
                                .status = r->status,
                                .raw = "",
                                .message = "out of memory",
                                .what = r->path};
    r->cb(&res, r->ud);
}

/* ---- requests ----------------------------------------------------------------------------- */

static struct docker_request *request_ref(struct docker_request *r)
{
    r->n_ref++;
    return r;
}

static void request_unref(struct docker_request *r)
{
    assert(r->n_ref > 0);
    if (--r->n_ref > 0)
        return;
    if (r->easy) {
        curl_multi_remove_handle(r->d->multi, r->easy);
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->headers);
    buf_release(&r->body);
    buf_release(&r->inbox);
    free(r->content_type);
    free(r->method);
    free(r->path);
    free(r->req_body);
    free(r->pre_message);
    docker_result_free(r->result ? &r->result->pub : NULL);
    free(r);
}

static void mark_dirty(struct docker_request *r)
{
    if (r->dirty)
        return;
    r->dirty = true;
    r->next_dirty = r->d->dirty;
    r->d->dirty = request_ref(r);
}

static void detach_easy(struct docker_request *r)
{
    if (!r->easy)
        return;
    curl_multi_remove_handle(r->d->multi, r->easy);
    curl_easy_cleanup(r->easy);
    r->easy = NULL;
}

/* Completes a request: its callback gets res (or, without a callback, docker_wait will). */
static void request_complete(struct docker_request *r, struct result_impl *res)
{
    struct docker *d = r->d;
    assert(r->state != REQ_DONE);
    r->state = REQ_DONE;
    list_del(&r->link);
    detach_easy(r);
    if (res && res->pub.error != DOCKER_OK)
        log_debug("docker: %s: %s: %s", res->what, docker_error_to_string(res->pub.error),
                  res->message);
    if (r->cb) {
        if (res)
            r->cb(&res->pub, r->ud);
        else
            call_cb_nomem(r);
        docker_result_free(res ? &res->pub : NULL);
        request_unref(r);
        return;
    }
    r->result = res;
    list_add_tail(&d->finished, &r->link);
}

static void request_fail_later(struct docker_request *r, enum docker_error err, const char *msg)
{
    struct docker *d = r->d;
    r->pre_error = err;
    free(r->pre_message);
    r->pre_message = strdup(msg);
    list_del(&r->link);
    list_add_tail(&d->failed, &r->link);
    ev_timer_stop(d->loop, &d->kick);
    ev_timer_set(&d->kick, 0., 0.);
    ev_timer_start(d->loop, &d->kick);
}

/* Completes a request with an error now (only from the loop, outside curl). */
static void request_fail(struct docker_request *r, enum docker_error err, const char *msg)
{
    request_complete(r, result_new(r, err, "%s", msg));
}

static size_t on_curl_write(char *p, size_t size, size_t n, void *ud)
{
    struct docker_request *r = ud;
    size_t len = size * n;
    int k;

    if (r->ops && is_2xx(r->status)) {
        if (r->inbox.len >= INBOX_PAUSE) {
            r->paused = true;
            mark_dirty(r);
            return CURL_WRITEFUNC_PAUSE;
        }
        k = buf_append(&r->inbox, p, len);
        if (k < 0) {
            r->too_large = k == -EMSGSIZE;
            r->nomem = k == -ENOMEM;
            return 0;
        }
        mark_dirty(r);
        return len;
    }
    k = buf_append(&r->body, p, len);
    if (k < 0) {
        r->too_large = k == -EMSGSIZE;
        r->nomem = k == -ENOMEM;
        return 0;
    }
    return len;
}

static size_t on_curl_header(char *p, size_t size, size_t n, void *ud)
{
    struct docker_request *r = ud;
    size_t len = size * n;

    if (len >= 5 && strncasecmp(p, "HTTP/", 5) == 0) {
        const char *sp = memchr(p, ' ', len);
        r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        r->headers_done = false;
        free(r->content_type);
        r->content_type = NULL;
    } else if (len >= 13 && strncasecmp(p, "Content-Type:", 13) == 0) {
        const char *v = p + 13, *end = p + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            end--;
        free(r->content_type);
        r->content_type = strndup(v, (size_t)(end - v));
    } else if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) {
        if (r->status >= 200) {
            r->headers_done = true;
            if (r->ops)
                mark_dirty(r);
        }
    }
    return len;
}

static curl_socket_t on_curl_opensocket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static int request_setup(struct docker_request *r)
{
    struct docker *d = r->d;
    _cleanup_free_ char *url = NULL;
    int n;

    if (streq(r->path, "/version") && r->internal)
        n = asprintf(&url, "http://localhost%s", r->path);
    else
        n = asprintf(&url, "http://localhost/v%s%s", d->version, r->path);
    if (n < 0)
        return -ENOMEM;

    CURL *e = curl_easy_init();
    if (!e)
        return -ENOMEM;
    r->easy = e;
    r->headers = curl_slist_append(NULL, "Expect:");
    if (!r->headers)
        return -ENOMEM;
    if (r->req_body) {
        struct curl_slist *h = curl_slist_append(r->headers, "Content-Type: application/json");
        if (!h)
            return -ENOMEM;
        r->headers = h;
    }
    CURLcode c = CURLE_OK;
    c |= curl_easy_setopt(e, CURLOPT_URL, url);
    c |= curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, d->socket_path);
    /* http:// only, never another protocol or a redirect to one (the static build links no
     * GSS-API, LDAP or RTMP: agent/static_link.c). */
    c |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
    c |= curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    c |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    c |= curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    c |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    c |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_curl_write);
    c |= curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    c |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_curl_header);
    c |= curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    c |= curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_curl_opensocket);
    c |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    c |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)d->o.connect_timeout_ms);
    c |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
    if (streq(r->method, "GET")) {
        c |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        if (!streq(r->method, "POST"))
            c |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
        if (r->req_body || !streq(r->method, "DELETE")) {
            const char *b = r->req_body ? r->req_body : "";
            c |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(b));
            c |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, b);
        }
    }
    if (c != CURLE_OK)
        return -EINVAL;
    if (curl_multi_add_handle(d->multi, e) != CURLM_OK)
        return -EIO;
    return 0;
}

static void request_start(struct docker_request *r)
{
    struct docker *d = r->d;
    list_del(&r->link);
    list_add_tail(&d->running, &r->link);
    r->state = REQ_RUNNING;
    int k = request_setup(r);
    if (k < 0) {
        detach_easy(r);
        request_fail_later(r, k == -ENOMEM ? DOCKER_ERR_NOMEM : DOCKER_ERR_TRANSPORT,
                           k == -ENOMEM ? "out of memory" : "cannot set up the transfer");
    }
}

/* ---- version negotiation ------------------------------------------------------------------ */

static struct docker_request *request_new(struct docker *d, const char *method, const char *path,
                                          json_t *body, const struct docker_call_opts *o,
                                          docker_cb cb, void *ud, bool internal);
static void request_submit(struct docker_request *r);

static void fail_waiting(struct docker *d, enum docker_error err, const char *msg)
{
    struct list l;
    list_move_all(&d->waiting, &l);
    while (!list_empty(&l)) {
        struct docker_request *r = list_entry(l.next, struct docker_request, link);
        request_fail(r, err, msg);
    }
}

static void on_version(struct docker_result *res, void *ud)
{
    struct docker *d = ud;
    int major, minor;

    d->ver_state = VER_NONE;
    if (res->error != DOCKER_OK) {
        _cleanup_free_ char *m = NULL;
        if (asprintf(&m, "%s: %s", res->what, res->message) < 0)
            m = NULL;
        fail_waiting(d, res->error, m ? m : res->message);
        return;
    }
    const char *v = json_string_value(json_object_get(res->body, "ApiVersion"));
    if (parse_version(v, &major, &minor) < 0) {
        fail_waiting(d, DOCKER_ERR_JSON, "GET /version: no valid ApiVersion in the answer");
        return;
    }
    if (major < 1 || (major == 1 && minor < 41)) {
        char m[160];
        snprintf(m, sizeof(m),
                 "the daemon speaks API %s, this agent needs " DOCKER_API_VERSION_MIN
                 " or newer (Docker Engine 20.10)",
                 v);
        fail_waiting(d, DOCKER_ERR_VERSION, m);
        return;
    }
    if (major > d->cap_major || (major == d->cap_major && minor > d->cap_minor)) {
        major = d->cap_major;
        minor = d->cap_minor;
    }
    d->ver_major = major;
    d->ver_minor = minor;
    snprintf(d->version, sizeof(d->version), "%d.%d", major, minor);
    d->ver_state = VER_OK;
    log_debug("docker: daemon API %s, using %s", v, d->version);

    struct list l;
    list_move_all(&d->waiting, &l);
    while (!list_empty(&l))
        request_start(list_entry(l.next, struct docker_request, link));
}

static void negotiate(struct docker *d)
{
    d->ver_state = VER_PENDING;
    struct docker_request *r = request_new(d, "GET", "/version", NULL, NULL, on_version, d, true);
    if (!r) {
        d->ver_state = VER_NONE;
        /* the waiting requests fail from the kick */
        struct list l;
        list_move_all(&d->waiting, &l);
        while (!list_empty(&l))
            request_fail_later(list_entry(l.next, struct docker_request, link), DOCKER_ERR_NOMEM,
                               "out of memory");
        return;
    }
    request_start(r);
}

/* ---- calls -------------------------------------------------------------------------------- */

static struct docker_request *request_new(struct docker *d, const char *method, const char *path,
                                          json_t *body, const struct docker_call_opts *o,
                                          docker_cb cb, void *ud, bool internal)
{
    struct docker_request *r = calloc(1, sizeof(*r));
    if (!r) {
        json_decref(body);
        return NULL;
    }
    r->d = d;
    r->n_ref = 1;
    list_init(&r->link);
    r->internal = internal;
    r->cb = cb;
    r->ud = ud;
    r->timeout_ms = o && o->timeout_ms ? o->timeout_ms : d->o.timeout_ms;
    r->max_body = o && o->max_body ? o->max_body : d->o.max_body;
    r->raw_body = o && o->raw_body;
    buf_init(&r->body, r->max_body);
    buf_init(&r->inbox, r->max_body);
    r->method = strdup(method);
    r->path = strdup(path);
    if (body) {
        r->req_body = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(body);
        if (!r->req_body) {
            request_unref(r);
            return NULL;
        }
    }
    if (!r->method || !r->path) {
        request_unref(r);
        return NULL;
    }
    return r;
}

static void request_submit(struct docker_request *r)
{
    struct docker *d = r->d;
    if (!r->internal && method_mutates(r->method))
        d->mutations++;
    switch (d->ver_state) {
    case VER_OK:
        request_start(r);
        break;
    case VER_PENDING:
        list_add_tail(&d->waiting, &r->link);
        break;
    case VER_NONE:
        list_add_tail(&d->waiting, &r->link);
        negotiate(d);
        break;
    }
}

struct docker_request *docker_call_with(struct docker *d, const char *method, const char *path,
                                        json_t *body, const struct docker_call_opts *opts,
                                        docker_cb cb, void *userdata)
{
    struct docker_request *r = request_new(d, method, path, body, opts, cb, userdata, false);
    if (!r)
        return NULL;
    request_submit(r);
    return r;
}

struct docker_request *docker_call(struct docker *d, const char *method, const char *path,
                                   json_t *body, docker_cb cb, void *userdata)
{
    return docker_call_with(d, method, path, body, NULL, cb, userdata);
}

/* A streaming GET: no overall timeout; the body goes to ops. */
static struct docker_request *stream_new(struct docker *d, const char *path,
                                         const struct stream_ops *ops, void *ops_ud, docker_cb cb,
                                         void *ud)
{
    struct docker_request *r = request_new(d, "GET", path, NULL, NULL, cb, ud, false);
    if (!r)
        return NULL;
    r->timeout_ms = 0;
    r->ops = ops;
    r->ops_ud = ops_ud;
    request_submit(r);
    return r;
}

void docker_request_cancel(struct docker_request *r)
{
    if (!r)
        return;
    if (r->state == REQ_DONE) {
        if (r->cb)
            return; /* completing right now: nothing to cancel */
        list_del(&r->link);
        request_unref(r);
        return;
    }
    list_del(&r->link);
    detach_easy(r);
    r->state = REQ_DONE;
    r->cb = NULL;
    request_unref(r);
}

int docker_wait(struct docker *d, struct docker_request *r, struct docker_result **ret)
{
    if (!r)
        return -ENOMEM;
    assert(!r->cb);
    request_ref(r);
    while (r->state != REQ_DONE) {
        if (!ev_run(d->loop, EVRUN_ONCE) && r->state != REQ_DONE) {
            request_unref(r);
            return -EDEADLK;
        }
    }
    struct result_impl *res = TAKE_PTR(r->result);
    list_del(&r->link);
    request_unref(r); /* ours */
    request_unref(r); /* the client's */
    if (!res) {
        res = calloc(1, sizeof(*res));
        if (!res)
            return -ENOMEM;
        res->pub = (struct docker_result){.error = DOCKER_ERR_NOMEM, .raw = ""};
        res->message = strdup("out of memory");
        res->what = strdup("");
        res->pub.message = res->message ? res->message : "";
        res->pub.what = res->what ? res->what : "";
    }
    *ret = &res->pub;
    return 0;
}

/* ---- completion --------------------------------------------------------------------------- */

static struct result_impl *result_from_transfer(struct docker_request *r, CURLcode rc)
{
    struct docker *d = r->d;
    struct result_impl *res;

    if (rc != CURLE_OK) {
        if (r->too_large)
            return result_new(r, DOCKER_ERR_TOO_LARGE, "answer over %zu bytes", r->max_body);
        if (r->nomem)
            return result_new(r, DOCKER_ERR_NOMEM, "out of memory");
        if (rc == CURLE_OPERATION_TIMEDOUT)
            return result_new(
                r, DOCKER_ERR_TIMEOUT, "no answer within %llu ms",
                (unsigned long long)(r->timeout_ms ? r->timeout_ms : d->o.connect_timeout_ms));
        if (rc == CURLE_COULDNT_CONNECT) {
            long os_errno = 0;
            curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os_errno);
            return result_new(r, DOCKER_ERR_TRANSPORT, "cannot connect to %s: %s", d->socket_path,
                              os_errno ? strerror((int)os_errno) : curl_easy_strerror(rc));
        }
        return result_new(r, DOCKER_ERR_TRANSPORT, "%s",
                          r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
    }

    bool json = r->content_type && strcasestr(r->content_type, "json");
    json_t *body = NULL;
    json_error_t jerr;
    if (json && r->body.len > 0 && !(r->raw_body && is_2xx(r->status))) {
        body = json_loadb(r->body.data, r->body.len, JSON_DECODE_ANY, &jerr);
        if (!body && is_2xx(r->status))
            return result_new(r, DOCKER_ERR_JSON, "bad JSON in the answer: %d:%d: %s", jerr.line,
                              jerr.column, jerr.text);
    }
    if (r->status >= 400) {
        const char *m = json_string_value(json_object_get(body, "message"));
        if (!m || !*m) {
            /* a plain-text error ("page not found"), trimmed */
            while (r->body.len &&
                   (r->body.data[r->body.len - 1] == '\n' || r->body.data[r->body.len - 1] == '\r'))
                r->body.data[--r->body.len] = '\0';
            m = r->body.len ? r->body.data : NULL;
        }
        if (m)
            res = result_new(r, DOCKER_ERR_HTTP, "%s", m);
        else
            res = result_new(r, DOCKER_ERR_HTTP, "HTTP status %ld", r->status);
    } else {
        res = result_new(r, DOCKER_OK, "%s", "");
    }
    if (!res) {
        json_decref(body);
        return NULL;
    }
    res->pub.body = body;
    res->raw = buf_detach(&r->body, &res->pub.raw_len);
    res->pub.raw = res->raw ? res->raw : "";
    return res;
}

/* Hands a stream's undelivered bytes on; false when the request ended meanwhile. */
static bool stream_deliver(struct docker_request *r)
{
    int k = 0;

    if (r->state != REQ_RUNNING || !is_2xx(r->status) || !r->headers_done)
        return r->state == REQ_RUNNING;
    if (!r->opened) {
        r->opened = true;
        if (r->ops->open)
            k = r->ops->open(r, r->ops_ud);
    }
    if (r->held)
        return r->state == REQ_RUNNING; /* curl pauses once INBOX_PAUSE bytes wait */
    if (k == 0 && r->state == REQ_RUNNING && r->inbox.len > 0) {
        struct buf chunk = r->inbox;
        buf_init(&r->inbox, r->max_body);
        k = r->ops->data(r, chunk.data, chunk.len, r->ops_ud);
        buf_release(&chunk);
    }
    if (r->state != REQ_RUNNING)
        return false;
    if (k < 0) {
        request_fail(r, error_from_errno(k),
                     k == -EMSGSIZE  ? "stream item over its size limit"
                     : k == -EBADMSG ? "malformed stream"
                                     : strerror(-k));
        return false;
    }
    if (r->paused && r->easy) {
        r->paused = false;
        curl_easy_pause(r->easy, CURLPAUSE_CONT);
    }
    return true;
}

static void transfer_done(struct docker_request *r, CURLcode rc);

static void deliver_dirty(struct docker *d)
{
    struct docker_request *r;
    while ((r = d->dirty)) {
        d->dirty = r->next_dirty;
        r->next_dirty = NULL;
        r->dirty = false;
        if (r->done_pending && !r->held && r->state == REQ_RUNNING) {
            r->done_pending = false;
            transfer_done(r, r->done_rc);
        } else {
            stream_deliver(r);
        }
        request_unref(r);
    }
}

static void transfer_done(struct docker_request *r, CURLcode rc)
{
    request_ref(r);
    if (r->ops && is_2xx(r->status) && r->held) {
        /* Finished while held: the rest is delivered, and the stream ended, once released. */
        r->done_pending = true;
        r->done_rc = rc;
        goto out;
    }
    if (r->ops && is_2xx(r->status)) {
        r->paused = false;
        if (!stream_deliver(r))
            goto out;
        if (rc == CURLE_OK && r->ops->finish) {
            int k = r->ops->finish(r, r->ops_ud);
            if (r->state != REQ_RUNNING)
                goto out;
            if (k < 0) {
                request_fail(r, error_from_errno(k), "the stream ended inside an item");
                goto out;
            }
        }
    }
    if (r->state == REQ_RUNNING)
        request_complete(r, result_from_transfer(r, rc));
out:
    request_unref(r);
}

static void process(struct docker *d)
{
    CURLMsg *m;
    int left;

    do {
        deliver_dirty(d);
        while ((m = curl_multi_info_read(d->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            CURL *e = m->easy_handle;
            CURLcode rc = m->data.result;
            struct docker_request *r = NULL;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
            if (r && r->state == REQ_RUNNING)
                transfer_done(r, rc);
        }
    } while (d->dirty);
}

/* ---- libev <-> curl ----------------------------------------------------------------------- */

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct docker_sock *s = (struct docker_sock *)w;
    struct docker *d = s->d;
    int fd = w->fd, running;
    int flags = (revents & EV_READ ? CURL_CSELECT_IN : 0) |
                (revents & EV_WRITE ? CURL_CSELECT_OUT : 0) |
                (revents & EV_ERROR ? CURL_CSELECT_ERR : 0);
    curl_multi_socket_action(d->multi, fd, flags, &running);
    process(d);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct docker *d = w->data;
    int running;
    curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    process(d);
}

static void on_kick(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct docker *d = w->data;
    struct list l;
    list_move_all(&d->failed, &l);
    while (!list_empty(&l)) {
        struct docker_request *r = list_entry(l.next, struct docker_request, link);
        request_fail(r, r->pre_error, r->pre_message ? r->pre_message : "out of memory");
    }
    /* Streams released from a hold deliver what waited. */
    if (d->dirty)
        process(d);
}

/* Holds or releases a stream's deliveries. Released, what waited is delivered from the kick
 * timer (never from inside the caller's call). */
static void request_hold(struct docker_request *r, bool hold)
{
    if (!r || !r->ops || r->held == hold || r->state != REQ_RUNNING)
        return;
    r->held = hold;
    if (hold)
        return;
    struct docker *d = r->d;
    mark_dirty(r);
    ev_timer_stop(d->loop, &d->kick);
    ev_timer_set(&d->kick, 0., 0.);
    ev_timer_start(d->loop, &d->kick);
}

static int on_curl_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct docker *d = userp;
    struct docker_sock *s = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (s) {
            ev_io_stop(d->loop, &s->io);
            list_del(&s->link);
            free(s);
            curl_multi_assign(d->multi, fd, NULL);
        }
        return 0;
    }
    int events = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->d = d;
        list_add_tail(&d->socks, &s->link);
        ev_io_init(&s->io, on_io, fd, events);
        curl_multi_assign(d->multi, fd, s);
    } else {
        ev_io_stop(d->loop, &s->io);
        ev_io_set(&s->io, fd, events);
    }
    ev_io_start(d->loop, &s->io);
    return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct docker *d = userp;
    ev_timer_stop(d->loop, &d->timer);
    if (timeout_ms >= 0) {
        ev_timer_set(&d->timer, (double)timeout_ms / 1000., 0.);
        ev_timer_start(d->loop, &d->timer);
    }
    return 0;
}

/* ---- the client --------------------------------------------------------------------------- */

/* curl_multi_init() makes a socketpair for curl_multi_wakeup() without SOCK_CLOEXEC (curl
 * 7.88): the fds that appear across it are marked close-on-exec. fds is a bitset of
 * FD_BITS bits. */
#define FD_BITS 65536

static void fds_snapshot(uint64_t *fds)
{
    DIR *dir = opendir("/proc/self/fd");
    if (!dir)
        return;
    struct dirent *e;
    int self = dirfd(dir);
    while ((e = readdir(dir))) {
        long fd = strtol(e->d_name, NULL, 10);
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && fd >= 0 && fd < FD_BITS && fd != self)
            fds[fd / 64] |= UINT64_C(1) << (fd % 64);
    }
    closedir(dir);
}

static CURLM *multi_init_cloexec(void)
{
    uint64_t *before = calloc(FD_BITS / 64, sizeof(uint64_t));
    uint64_t *after = calloc(FD_BITS / 64, sizeof(uint64_t));
    CURLM *m = NULL;
    if (before && after) {
        fds_snapshot(before);
        m = curl_multi_init();
        fds_snapshot(after);
        for (int fd = 0; m && fd < FD_BITS; fd++) {
            uint64_t bit = UINT64_C(1) << (fd % 64);
            if ((after[fd / 64] & bit) && !(before[fd / 64] & bit)) {
                int fl = fcntl(fd, F_GETFD);
                if (fl >= 0 && !(fl & FD_CLOEXEC))
                    (void)fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
            }
        }
    }
    free(before);
    free(after);
    return m;
}

int docker_new(struct ev_loop *loop, const char *socket_path, const struct docker_opts *opts,
               struct docker **ret)
{
    struct docker *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    if (opts)
        d->o = *opts;
    if (!d->o.timeout_ms)
        d->o.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (!d->o.connect_timeout_ms)
        d->o.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    if (!d->o.max_body)
        d->o.max_body = DEFAULT_MAX_BODY;
    if (!d->o.max_event)
        d->o.max_event = DEFAULT_MAX_EVENT;
    if (!d->o.max_frame)
        d->o.max_frame = DEFAULT_MAX_FRAME;
    if (!d->o.reconnect_min_ms)
        d->o.reconnect_min_ms = DEFAULT_RECONNECT_MIN_MS;
    if (!d->o.reconnect_max_ms)
        d->o.reconnect_max_ms = DEFAULT_RECONNECT_MAX_MS;
    if (d->o.reconnect_max_ms < d->o.reconnect_min_ms)
        d->o.reconnect_max_ms = d->o.reconnect_min_ms;
    if (!d->o.max_connections)
        d->o.max_connections = DEFAULT_MAX_CONNECTIONS;
    d->o.api_version_max = NULL;
    const char *cap =
        opts && opts->api_version_max ? opts->api_version_max : DOCKER_API_VERSION_MAX;
    if (parse_version(cap, &d->cap_major, &d->cap_minor) < 0 ||
        (d->cap_major == 1 && d->cap_minor < 41) || d->cap_major < 1) {
        free(d);
        return -EINVAL;
    }
    d->loop = loop;
    d->rand_state = (uint32_t)time(NULL) ^ (uint32_t)(uintptr_t)d;
    if (!d->rand_state)
        d->rand_state = 1;
    list_init(&d->waiting);
    list_init(&d->running);
    list_init(&d->failed);
    list_init(&d->finished);
    list_init(&d->socks);
    list_init(&d->events);
    list_init(&d->logs);
    ev_timer_init(&d->timer, on_timer, 0., 0.);
    d->timer.data = d;
    ev_timer_init(&d->kick, on_kick, 0., 0.);
    d->kick.data = d;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(d);
        return -EIO;
    }
    d->socket_path = strdup(socket_path);
    d->multi = multi_init_cloexec();
    if (!d->socket_path || !d->multi) {
        if (d->multi)
            curl_multi_cleanup(d->multi);
        free(d->socket_path);
        free(d);
        curl_global_cleanup();
        return -ENOMEM;
    }
    curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
    curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
    curl_multi_setopt(d->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)d->o.max_connections);
    *ret = d;
    return 0;
}

const char *docker_api_version(const struct docker *d)
{
    return d->ver_major ? d->version : NULL;
}

bool docker_api_at_least(const struct docker *d, int major, int minor)
{
    if (!d->ver_major)
        return false;
    return d->ver_major > major || (d->ver_major == major && d->ver_minor >= minor);
}

uint64_t docker_mutations(const struct docker *d)
{
    return d->mutations;
}

static void events_free(struct docker_events *ev);
static void logs_free(struct docker_logs *l);

static void cancel_list(struct list *l)
{
    while (!list_empty(l))
        docker_request_cancel(list_entry(l->next, struct docker_request, link));
}

struct docker *docker_free(struct docker *d)
{
    if (!d)
        return NULL;
    while (!list_empty(&d->events))
        docker_events_close(list_entry(d->events.next, struct docker_events, link));
    while (!list_empty(&d->logs))
        docker_logs_close(list_entry(d->logs.next, struct docker_logs, link));
    cancel_list(&d->waiting);
    cancel_list(&d->running);
    cancel_list(&d->failed);
    cancel_list(&d->finished);
    struct docker_request *r;
    while ((r = d->dirty)) {
        d->dirty = r->next_dirty;
        request_unref(r);
    }
    ev_timer_stop(d->loop, &d->timer);
    ev_timer_stop(d->loop, &d->kick);
    curl_multi_cleanup(d->multi);
    while (!list_empty(&d->socks)) {
        struct docker_sock *s = list_entry(d->socks.next, struct docker_sock, link);
        ev_io_stop(d->loop, &s->io);
        list_del(&s->link);
        free(s);
    }
    free(d->socket_path);
    free(d);
    curl_global_cleanup();
    return NULL;
}

/* ---- events ------------------------------------------------------------------------------- */

static void events_connect(struct docker_events *ev);

static void events_free(struct docker_events *ev)
{
    docker_stream_json_release(&ev->split);
    free(ev->filters_q);
    free(ev);
}

static void events_unbusy(struct docker_events *ev)
{
    if (--ev->busy == 0 && ev->closed)
        events_free(ev);
}

static int events_open(struct docker_request *r, void *ud)
{
    struct docker_events *ev = ud;
    ev->connected = true;
    ev->down_reported = false;
    ev->up_since = ev_now(ev->d->loop);
    docker_stream_json_release(&ev->split);
    docker_stream_json_init(&ev->split, ev->d->o.max_event);
    if (ev->on_state) {
        ev->busy++;
        ev->on_state(DOCKER_EVENTS_CONNECTED, "events stream open: resync", ev->ud);
        bool closed = ev->closed;
        events_unbusy(ev);
        if (closed)
            return -ECANCELED;
    }
    return 0;
}

static int events_object(const char *text, size_t len, void *ud)
{
    struct docker_events *ev = ud;
    json_error_t jerr;
    json_t *j = json_loadb(text, len, 0, &jerr);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return -EBADMSG;
    }
    if (ev->on_event)
        ev->on_event(j, ev->ud);
    json_decref(j);
    return ev->closed ? -ECANCELED : 0;
}

static int events_data(struct docker_request *r, const char *p, size_t n, void *ud)
{
    struct docker_events *ev = ud;
    ev->busy++;
    int k = docker_stream_json_feed(&ev->split, p, n, events_object, ev);
    events_unbusy(ev);
    return k;
}

static int events_finish(struct docker_request *r, void *ud)
{
    struct docker_events *ev = ud;
    return docker_stream_json_finish(&ev->split);
}

static const struct stream_ops events_ops = {
    .open = events_open,
    .data = events_data,
    .finish = events_finish,
};

static void events_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    events_connect(w->data);
}

static void events_ended(struct docker_result *res, void *ud)
{
    struct docker_events *ev = ud;
    struct docker *d = ev->d;
    ev->req = NULL;

    if (ev->connected && ev_now(d->loop) - ev->up_since >= STABLE_UP_S)
        ev->backoff_ms = d->o.reconnect_min_ms;
    ev->connected = false;
    char why[512];
    if (res->error == DOCKER_OK)
        snprintf(why, sizeof(why), "the daemon closed the events stream");
    else
        snprintf(why, sizeof(why), "%s: %s", docker_error_to_string(res->error), res->message);
    log_msg(ev->down_reported ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN, NULL,
            "docker: events stream down (%s), reconnecting", why);
    if (!ev->down_reported && ev->on_state) {
        ev->down_reported = true;
        ev->busy++;
        ev->on_state(DOCKER_EVENTS_DISCONNECTED, why, ev->ud);
        bool closed = ev->closed;
        events_unbusy(ev);
        if (closed)
            return;
    }
    ev->down_reported = true;
    uint64_t delay = ev->backoff_ms;
    /* ±20 % jitter */
    uint64_t spread = delay / 5;
    if (spread)
        delay = delay - spread + next_rand(d) % (2 * spread + 1);
    ev->backoff_ms =
        ev->backoff_ms * 2 > d->o.reconnect_max_ms ? d->o.reconnect_max_ms : ev->backoff_ms * 2;
    ev_timer_set(&ev->retry, (double)delay / 1000., 0.);
    ev_timer_start(d->loop, &ev->retry);
}

static void events_connect(struct docker_events *ev)
{
    struct docker *d = ev->d;
    _cleanup_free_ char *path = NULL;
    /* since= a second before now replays what happened between the daemon sending the headers
     * and subscribing us; duplicates are harmless. */
    long long since = (long long)time(NULL) - 1;
    int n = ev->filters_q ? asprintf(&path, "/events?since=%lld&filters=%s", since, ev->filters_q)
                          : asprintf(&path, "/events?since=%lld", since);
    if (n >= 0)
        ev->req = stream_new(d, path, &events_ops, ev, events_ended, ev);
    if (!ev->req) {
        /* out of memory: try again later */
        ev_timer_set(&ev->retry, (double)d->o.reconnect_max_ms / 1000., 0.);
        ev_timer_start(d->loop, &ev->retry);
    }
}

struct docker_events *docker_events_open(struct docker *d, const json_t *filters,
                                         docker_event_cb on_event, docker_events_state_cb on_state,
                                         void *userdata)
{
    struct docker_events *ev = calloc(1, sizeof(*ev));
    if (!ev)
        return NULL;
    ev->d = d;
    ev->on_event = on_event;
    ev->on_state = on_state;
    ev->ud = userdata;
    ev->backoff_ms = d->o.reconnect_min_ms;
    docker_stream_json_init(&ev->split, d->o.max_event);
    ev_timer_init(&ev->retry, events_retry, 0., 0.);
    ev->retry.data = ev;
    if (filters && json_object_size(filters) > 0) {
        _cleanup_free_ char *f = json_dumps(filters, JSON_COMPACT | JSON_SORT_KEYS);
        ev->filters_q = f ? curl_easy_escape(NULL, f, 0) : NULL;
        if (!ev->filters_q) {
            events_free(ev);
            return NULL;
        }
    }
    list_init(&ev->link);
    list_add_tail(&d->events, &ev->link);
    events_connect(ev);
    return ev;
}

void docker_events_close(struct docker_events *ev)
{
    if (!ev || ev->closed)
        return;
    ev->closed = true;
    ev_timer_stop(ev->d->loop, &ev->retry);
    list_del(&ev->link);
    docker_request_cancel(TAKE_PTR(ev->req));
    if (ev->busy == 0)
        events_free(ev);
}

bool docker_events_connected(const struct docker_events *ev)
{
    return ev->connected;
}

/* ---- logs --------------------------------------------------------------------------------- */

static void logs_free(struct docker_logs *l)
{
    docker_stream_mux_release(&l->mux);
    free(l->id);
    free(l);
}

static void logs_unbusy(struct docker_logs *l)
{
    if (--l->busy == 0 && l->closed)
        logs_free(l);
}

static int logs_open(struct docker_request *r, void *ud)
{
    struct docker_logs *l = ud;
    const char *ct = r->content_type ? r->content_type : "";
    if (strcasestr(ct, "multiplexed-stream"))
        l->raw = false;
    else if (strcasestr(ct, "raw-stream") && docker_api_at_least(l->d, 1, 42))
        l->raw = true;
    else
        l->raw = l->tty;
    return 0;
}

static int logs_frame(enum docker_stream_kind kind, const char *data, size_t len, void *ud)
{
    struct docker_logs *l = ud;
    if (l->on_data)
        l->on_data(kind, data, len, l->ud);
    return l->closed ? -ECANCELED : 0;
}

static int logs_data(struct docker_request *r, const char *p, size_t n, void *ud)
{
    struct docker_logs *l = ud;
    int k = 0;
    l->busy++;
    if (l->raw)
        k = logs_frame(DOCKER_STREAM_RAW, p, n, l);
    else
        k = docker_stream_mux_feed(&l->mux, p, n, logs_frame, l);
    logs_unbusy(l);
    return k;
}

static int logs_finish(struct docker_request *r, void *ud)
{
    struct docker_logs *l = ud;
    return l->raw ? 0 : docker_stream_mux_finish(&l->mux);
}

static const struct stream_ops logs_ops = {
    .open = logs_open,
    .data = logs_data,
    .finish = logs_finish,
};

static void logs_end(struct docker_logs *l, struct docker_result *res)
{
    l->req = NULL;
    list_del(&l->link);
    l->busy++;
    if (l->on_end)
        l->on_end(res, l->ud);
    l->closed = true;
    logs_unbusy(l);
}

static void logs_ended(struct docker_result *res, void *ud)
{
    logs_end(ud, res);
}

static void logs_inspected(struct docker_result *res, void *ud)
{
    struct docker_logs *l = ud;
    struct docker *d = l->d;
    l->req = NULL;
    if (res->error != DOCKER_OK) {
        logs_end(l, res);
        return;
    }
    json_t *tty =
        l->target == DOCKER_LOGS_SERVICE
            ? json_object_get(json_object_get(json_object_get(json_object_get(res->body, "Spec"),
                                                              "TaskTemplate"),
                                              "ContainerSpec"),
                              "TTY")
            : json_object_get(json_object_get(res->body, "Config"), "Tty");
    l->tty = json_is_true(tty);

    _cleanup_free_ char *path = NULL, *id = curl_easy_escape(NULL, l->id, 0);
    char tail[32] = "all";
    if (l->o.tail >= 0)
        snprintf(tail, sizeof(tail), "%lld", (long long)l->o.tail);
    if (id && asprintf(&path,
                       "/%s/%s/logs?stdout=%d&stderr=%d&follow=%d&timestamps=%d&details=%d"
                       "&tail=%s&since=%lld",
                       l->target == DOCKER_LOGS_SERVICE ? "services" : "containers", id,
                       !l->o.no_stdout, !l->o.no_stderr, l->o.follow, l->o.timestamps, l->o.details,
                       tail, (long long)l->o.since) < 0)
        path = NULL;
    if (path)
        l->req = stream_new(d, path, &logs_ops, l, logs_ended, l);
    if (l->req && l->held)
        request_hold(l->req, true);
    if (!l->req) {
        struct docker_result nomem = {
            .error = DOCKER_ERR_NOMEM, .raw = "", .message = "out of memory", .what = res->what};
        logs_end(l, &nomem);
    }
}

struct docker_logs *docker_logs_open(struct docker *d, enum docker_logs_target target,
                                     const char *id, const struct docker_logs_opts *opts,
                                     docker_logs_data_cb on_data, docker_cb on_end, void *userdata)
{
    struct docker_logs *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->d = d;
    l->target = target;
    l->id = strdup(id);
    if (opts)
        l->o = *opts;
    else
        l->o.tail = -1;
    l->on_data = on_data;
    l->on_end = on_end;
    l->ud = userdata;
    docker_stream_mux_init(&l->mux, d->o.max_frame);
    list_init(&l->link);
    _cleanup_free_ char *path = NULL, *eid = l->id ? curl_easy_escape(NULL, l->id, 0) : NULL;
    if (eid &&
        asprintf(&path, target == DOCKER_LOGS_SERVICE ? "/services/%s" : "/containers/%s/json",
                 eid) < 0)
        path = NULL;
    if (path)
        l->req = docker_call(d, "GET", path, NULL, logs_inspected, l);
    if (!l->req) {
        logs_free(l);
        return NULL;
    }
    list_add_tail(&d->logs, &l->link);
    return l;
}

void docker_logs_hold(struct docker_logs *l, bool hold)
{
    if (!l || l->closed)
        return;
    l->held = hold;
    request_hold(l->req, hold);
}

void docker_logs_close(struct docker_logs *l)
{
    if (!l || l->closed)
        return;
    l->closed = true;
    list_del(&l->link);
    docker_request_cancel(TAKE_PTR(l->req));
    if (l->busy == 0)
        logs_free(l);
}

/* drivers/docker's client against a scripted fake Engine on a unix socket (a thread per
 * connection): version negotiation and its cap, error kinds, limits, timeouts, the mutation
 * counter, and the events stream's reconnects and resync notices on stream faults the real
 * daemon cannot be made to produce. */
#include "support/testutil.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <fcntl.h>
#include <unistd.h>

#include "drivers/docker/docker.h"
#include "drivers/docker/docker_api.h"
#include "lib/buf.h"
#include "lib/util.h"

/* ---- the fake Engine ---------------------------------------------------------------------- */

struct fake;
/* Answers one request on fd (the connection is closed afterwards). */
typedef void (*fake_handler)(struct fake *f, int fd, const char *method, const char *path,
                             int conn_no);

struct fake {
    char *dir;
    char sock[256];
    int lfd;
    pthread_t thread;
    atomic_bool stop;
    atomic_int active;
    atomic_int conns;
    const char *api_version;
    fake_handler handler;
    pthread_mutex_t mu;
    char paths[64][512]; /* "METHOD path" of every request, in order */
    int n_paths;
};

struct conn {
    struct fake *f;
    int fd;
    int no;
};

static void put(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void puts_fd(int fd, const char *s)
{
    put(fd, s, strlen(s));
}

static void respond(int fd, int status, const char *ctype, const char *body)
{
    char h[512];
    snprintf(h, sizeof(h),
             "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: "
             "close\r\n\r\n",
             status, ctype, strlen(body));
    puts_fd(fd, h);
    puts_fd(fd, body);
}

static void chunk(int fd, const char *p, size_t n)
{
    char h[32];
    snprintf(h, sizeof(h), "%zx\r\n", n);
    puts_fd(fd, h);
    put(fd, p, n);
    puts_fd(fd, "\r\n");
}

static void stream_headers(int fd, const char *ctype)
{
    char h[256];
    snprintf(h, sizeof(h),
             "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n", ctype);
    puts_fd(fd, h);
}

/* Holds the connection open until the test stops the fake or the client goes away. */
static void hold_open(struct fake *f, int fd)
{
    while (!atomic_load(&f->stop)) {
        char c;
        ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
        if (r == 0)
            return;
        usleep(10 * 1000);
    }
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct fake *f = c->f;
    char req[8192];
    size_t n = 0;
    /* headers, then a Content-Length body */
    while (n < sizeof(req) - 1) {
        ssize_t r = recv(c->fd, req + n, sizeof(req) - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        req[n] = '\0';
        char *end = strstr(req, "\r\n\r\n");
        if (!end)
            continue;
        const char *cl = strcasestr(req, "Content-Length:");
        size_t want = (size_t)(end + 4 - req) + (cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0);
        if (n >= want)
            break;
    }
    req[n] = '\0';
    char method[16] = "", path[1024] = "";
    sscanf(req, "%15s %1023s", method, path);
    pthread_mutex_lock(&f->mu);
    if (f->n_paths < 64)
        snprintf(f->paths[f->n_paths++], sizeof(f->paths[0]), "%s %s", method, path);
    pthread_mutex_unlock(&f->mu);
    if (streq(path, "/version")) {
        char body[128];
        snprintf(body, sizeof(body), "{\"ApiVersion\":\"%s\",\"Version\":\"fake\"}",
                 f->api_version);
        respond(c->fd, 200, "application/json", body);
    } else if (f->handler) {
        f->handler(f, c->fd, method, path, c->no);
    } else {
        respond(c->fd, 404, "application/json", "{\"message\":\"no handler\"}");
    }
    close(c->fd);
    free(c);
    atomic_fetch_sub(&f->active, 1);
    return NULL;
}

static void *accept_main(void *arg)
{
    struct fake *f = arg;
    while (!atomic_load(&f->stop)) {
        struct pollfd p = {.fd = f->lfd, .events = POLLIN};
        if (poll(&p, 1, 10) <= 0)
            continue;
        int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        struct timeval tv = {.tv_sec = 5};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        struct conn *c = calloc(1, sizeof(*c));
        assert_non_null(c);
        c->f = f;
        c->fd = fd;
        c->no = atomic_fetch_add(&f->conns, 1);
        atomic_fetch_add(&f->active, 1);
        pthread_t t;
        pthread_create(&t, NULL, conn_main, c);
        pthread_detach(t);
    }
    return NULL;
}

static struct fake *fake_start(const char *api_version, fake_handler h)
{
    struct fake *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = tu_mkdtemp();
    snprintf(f->sock, sizeof(f->sock), "%s/docker.sock", f->dir);
    f->api_version = api_version;
    f->handler = h;
    pthread_mutex_init(&f->mu, NULL);
    f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", f->sock);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->lfd, 64), 0);
    pthread_create(&f->thread, NULL, accept_main, f);
    return f;
}

static void fake_stop(struct fake *f)
{
    atomic_store(&f->stop, true);
    pthread_join(f->thread, NULL);
    while (atomic_load(&f->active) > 0)
        usleep(1000);
    close(f->lfd);
    tu_rm_rf(f->dir);
    free(f->dir);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static bool fake_saw(struct fake *f, const char *prefix)
{
    pthread_mutex_lock(&f->mu);
    bool found = false;
    for (int i = 0; i < f->n_paths && !found; i++)
        found = strncmp(f->paths[i], prefix, strlen(prefix)) == 0;
    pthread_mutex_unlock(&f->mu);
    return found;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static struct ev_loop *loop;

static struct docker *client(struct fake *f, const struct docker_opts *o)
{
    struct docker *d;
    assert_int_equal(docker_new(loop, f->sock, o, &d), 0);
    return d;
}

static struct docker_result *sync_req(struct docker *d, struct docker_request *req)
{
    struct docker_result *res = NULL;
    assert_int_equal(docker_wait(d, req, &res), 0);
    return res;
}

static int setup(void **state)
{
    loop = ev_loop_new(EVFLAG_AUTO);
    return loop ? 0 : -1;
}

static int teardown(void **state)
{
    ev_loop_destroy(loop);
    return 0;
}

static void h_basic(struct fake *f, int fd, const char *method, const char *path, int no)
{
    if (strstr(path, "/badjson"))
        respond(fd, 200, "application/json", "{not json");
    else if (strstr(path, "/plainerr"))
        respond(fd, 500, "text/plain", "boom\n");
    else if (strstr(path, "/big")) {
        char body[1100];
        memset(body, 'x', sizeof(body));
        memcpy(body, "{\"a\":\"", 6);
        memcpy(body + sizeof(body) - 3, "\"}", 3);
        respond(fd, 200, "application/json", body);
    } else if (strstr(path, "/slow")) {
        uint64_t end = tu_now_ms() + 3000;
        while (!atomic_load(&f->stop) && tu_now_ms() < end)
            usleep(10 * 1000);
    } else if (strstr(path, "/_ping"))
        respond(fd, 200, "text/plain", "OK");
    else if (strstr(path, "/services/create"))
        respond(fd, 201, "application/json", "{\"ID\":\"abc\",\"Warnings\":[\"w1\"]}");
    else if (streq(method, "DELETE"))
        respond(fd, 200, "text/plain", "");
    else
        respond(fd, 200, "application/json", "{\"ok\":true}");
}

/* ---- version ------------------------------------------------------------------------------ */

static void version_case(const char *daemon, const char *cap, const char *want)
{
    struct fake *f = fake_start(daemon, h_basic);
    struct docker_opts o = {.api_version_max = cap};
    struct docker *d = client(f, &o);
    assert_null(docker_api_version(d));
    struct docker_result *res = sync_req(d, docker_info(d, NULL, NULL));
    assert_int_equal(res->error, DOCKER_OK);
    docker_result_free(res);
    assert_string_equal(docker_api_version(d), want);
    char seen[64];
    snprintf(seen, sizeof(seen), "GET /v%s/info", want);
    assert_true(fake_saw(f, seen));
    assert_true(fake_saw(f, "GET /version"));
    docker_free(d);
    fake_stop(f);
}

static void test_version_negotiation(void **state)
{
    version_case("1.99", NULL, DOCKER_API_VERSION_MAX); /* capped at what the agent knows */
    version_case("1.44", "1.43", "1.43");               /* the cap is configurable */
    version_case("1.42", NULL, "1.42");                 /* an older daemon's is used */
    version_case("1.41", NULL, "1.41");

    struct fake *f = fake_start("1.42", h_basic);
    struct docker *d = client(f, NULL);
    struct docker_result *res = sync_req(d, docker_info(d, NULL, NULL));
    docker_result_free(res);
    assert_true(docker_api_at_least(d, 1, 41));
    assert_true(docker_api_at_least(d, 1, 42));
    assert_false(docker_api_at_least(d, 1, 43));
    docker_free(d);
    fake_stop(f);

    struct docker *bad;
    struct docker_opts o = {.api_version_max = "1.40"};
    assert_int_equal(docker_new(loop, "/x", &o, &bad), -EINVAL);
}

static void test_version_too_old(void **state)
{
    struct fake *f = fake_start("1.40", h_basic);
    struct docker *d = client(f, NULL);
    struct docker_result *res = sync_req(d, docker_info(d, NULL, NULL));
    assert_int_equal(res->error, DOCKER_ERR_VERSION);
    assert_non_null(strstr(res->message, "1.40"));
    assert_non_null(strstr(res->message, "1.41"));
    docker_result_free(res);
    assert_null(docker_api_version(d));
    assert_false(fake_saw(f, "GET /v1.40/info"));
    docker_free(d);
    fake_stop(f);
}

/* ---- errors and limits -------------------------------------------------------------------- */

static void test_error_kinds(void **state)
{
    struct fake *f = fake_start("1.41", h_basic);
    struct docker_opts o = {.timeout_ms = 300, .max_body = 1000};
    struct docker *d = client(f, &o);

    struct docker_result *res = sync_req(d, docker_call(d, "GET", "/badjson", NULL, NULL, NULL));
    assert_int_equal(res->error, DOCKER_ERR_JSON);
    assert_string_equal(res->what, "GET /badjson");
    docker_result_free(res);

    res = sync_req(d, docker_call(d, "GET", "/plainerr", NULL, NULL, NULL));
    assert_int_equal(res->error, DOCKER_ERR_HTTP);
    assert_int_equal(res->status, 500);
    assert_string_equal(res->message, "boom");
    docker_result_free(res);

    res = sync_req(d, docker_call(d, "GET", "/big", NULL, NULL, NULL));
    assert_int_equal(res->error, DOCKER_ERR_TOO_LARGE);
    docker_result_free(res);
    struct docker_call_opts more = {.max_body = 4096};
    res = sync_req(d, docker_call_with(d, "GET", "/big", NULL, &more, NULL, NULL));
    assert_int_equal(res->error, DOCKER_OK);
    assert_int_equal(json_string_length(json_object_get(res->body, "a")), 1100 - 9);
    docker_result_free(res);

    uint64_t t0 = tu_now_ms();
    res = sync_req(d, docker_call(d, "GET", "/slow", NULL, NULL, NULL));
    assert_int_equal(res->error, DOCKER_ERR_TIMEOUT);
    assert_true(tu_now_ms() - t0 < 2000);
    docker_result_free(res);

    res = sync_req(d, docker_ping(d, NULL, NULL));
    assert_int_equal(res->error, DOCKER_OK);
    assert_null(res->body);
    assert_string_equal(res->raw, "OK");
    docker_result_free(res);

    res = sync_req(
        d, docker_object_create(d, SPEC_SERVICE, json_pack("{s:s}", "Name", "x"), NULL, NULL));
    assert_int_equal(res->error, DOCKER_OK);
    assert_int_equal(res->status, 201);
    json_t *w = docker_result_warnings(res);
    assert_int_equal(json_array_size(w), 1);
    assert_string_equal(json_string_value(json_array_get(w, 0)), "w1");
    json_t *body = docker_result_take_body(res);
    assert_null(res->body);
    docker_result_free(res);
    assert_string_equal(json_string_value(json_object_get(body, "ID")), "abc");
    json_decref(body);

    docker_free(d);
    fake_stop(f);

    /* nothing listens */
    assert_int_equal(docker_new(loop, "/nonexistent/docker.sock", NULL, &d), 0);
    res = sync_req(d, docker_info(d, NULL, NULL));
    assert_int_equal(res->error, DOCKER_ERR_TRANSPORT);
    assert_non_null(strstr(res->message, "cannot connect to /nonexistent/docker.sock"));
    docker_result_free(res);
    docker_free(d);
}

static void test_mutation_counter(void **state)
{
    struct fake *f = fake_start("1.41", h_basic);
    struct docker *d = client(f, NULL);
    struct docker_result *res;
    res = sync_req(d, docker_info(d, NULL, NULL));
    docker_result_free(res);
    assert_int_equal(docker_mutations(d), 0); /* GET, and the version GET, are not counted */
    res = sync_req(d, docker_object_create(d, SPEC_SERVICE, json_object(), NULL, NULL));
    docker_result_free(res);
    res = sync_req(d, docker_object_update(d, SPEC_SERVICE, "abc", 7, json_object(), NULL, NULL));
    docker_result_free(res);
    assert_true(fake_saw(f, "POST /v1.41/services/abc/update?version=7"));
    res = sync_req(d, docker_object_remove(d, SPEC_SERVICE, "a b/c", NULL, NULL));
    docker_result_free(res);
    assert_true(fake_saw(f, "DELETE /v1.41/services/a%20b%2Fc"));
    res = sync_req(d, docker_call(d, "POST", "/plainerr", NULL, NULL, NULL)); /* failed: counted */
    docker_result_free(res);
    res = sync_req(d, docker_object_list(d, SPEC_SERVICE, NULL, NULL, NULL, NULL));
    docker_result_free(res);
    assert_int_equal(docker_mutations(d), 4);

    json_t *filters = json_object();
    assert_int_equal(docker_filters_add(filters, "label", "io.axion.managed=true"), 0);
    assert_int_equal(docker_filters_add(filters, "label", "x=y"), 0);
    res = sync_req(d, docker_object_list(d, SPEC_SERVICE, filters, NULL, NULL, NULL));
    docker_result_free(res);
    json_decref(filters);
    assert_true(fake_saw(f, "GET /v1.41/services?status=true&filters=%7B%22label%22%3A%5B%22io."
                            "axion.managed%3Dtrue%22%2C%22x%3Dy%22%5D%7D"));
    docker_free(d);
    fake_stop(f);
}

/* The kind table: every kind's five calls reach the path the Engine API reference gives. */
static void test_object_paths(void **state)
{
    struct fake *f = fake_start("1.41", h_basic);
    struct docker *d = client(f, NULL);
    static const struct {
        enum spec_kind kind;
        const char *collection;
        bool update;
    } kinds[] = {
        {SPEC_NETWORK, "networks", false},
        {SPEC_CONFIG, "configs", true},
        {SPEC_SECRET, "secrets", true},
        {SPEC_SERVICE, "services", true},
    };
    char want[256];
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
        const char *c = kinds[i].collection;
        docker_result_free(
            sync_req(d, docker_object_create(d, kinds[i].kind, json_object(), NULL, NULL)));
        snprintf(want, sizeof(want), "POST /v1.41/%s/create", c);
        assert_true(fake_saw(f, want));
        docker_result_free(sync_req(d, docker_object_inspect(d, kinds[i].kind, "x/1", NULL, NULL)));
        snprintf(want, sizeof(want), "GET /v1.41/%s/x%%2F1", c);
        assert_true(fake_saw(f, want));
        docker_result_free(sync_req(d, docker_object_remove(d, kinds[i].kind, "x1", NULL, NULL)));
        snprintf(want, sizeof(want), "DELETE /v1.41/%s/x1", c);
        assert_true(fake_saw(f, want));
        json_t *filters = json_object();
        assert_int_equal(docker_filters_add(filters, "name", "a"), 0);
        docker_result_free(
            sync_req(d, docker_object_list(d, kinds[i].kind, filters, NULL, NULL, NULL)));
        json_decref(filters);
        snprintf(want, sizeof(want), "GET /v1.41/%s%s%sfilters=%%7B%%22name%%22", c,
                 kinds[i].kind == SPEC_SERVICE ? "?status=true" : "",
                 kinds[i].kind == SPEC_SERVICE ? "&" : "?");
        assert_true(fake_saw(f, want));
        struct docker_request *u =
            docker_object_update(d, kinds[i].kind, "x1", 9, json_object(), NULL, NULL);
        if (!kinds[i].update) {
            assert_null(u); /* networks cannot be updated */
            continue;
        }
        docker_result_free(sync_req(d, u));
        snprintf(want, sizeof(want), "POST /v1.41/%s/x1/update?version=9", c);
        assert_true(fake_saw(f, want));
    }
    assert_null(docker_object_create(d, _SPEC_KIND_MAX, json_object(), NULL, NULL));
    docker_free(d);
    fake_stop(f);
}

/* raw_body: a 2xx answer comes unparsed, an error answer still says why. */
static void test_raw_body(void **state)
{
    struct fake *f = fake_start("1.41", h_basic);
    struct docker *d = client(f, NULL);
    struct docker_call_opts raw = {.raw_body = true};
    struct docker_result *res =
        sync_req(d, docker_call_with(d, "GET", "/x", NULL, &raw, NULL, NULL));
    assert_int_equal(res->error, DOCKER_OK);
    assert_null(res->body);
    assert_string_equal(res->raw, "{\"ok\":true}");
    assert_int_equal(res->raw_len, 11);
    docker_result_free(res);
    res = sync_req(d, docker_call_with(d, "GET", "/badjson", NULL, &raw, NULL, NULL));
    assert_int_equal(res->error, DOCKER_OK); /* not parsed, so not judged */
    assert_string_equal(res->raw, "{not json");
    docker_result_free(res);
    res = sync_req(d, docker_call_with(d, "GET", "/plainerr", NULL, &raw, NULL, NULL));
    assert_int_equal(res->error, DOCKER_ERR_HTTP);
    assert_string_equal(res->message, "boom");
    docker_result_free(res);
    docker_free(d);
    fake_stop(f);
}

static void never_called(struct docker_result *res, void *ud)
{
    fail_msg("callback of a cancelled request");
}

static void test_cancel_and_free(void **state)
{
    struct fake *f = fake_start("1.41", h_basic);
    struct docker *d = client(f, NULL);
    /* cancelled while waiting for the version, and while running */
    docker_request_cancel(docker_info(d, never_called, NULL));
    struct docker_result *res = sync_req(d, docker_info(d, NULL, NULL));
    docker_result_free(res);
    struct docker_request *r = docker_call(d, "GET", "/slow", NULL, never_called, NULL);
    for (int i = 0; i < 20; i++)
        ev_run(loop, EVRUN_NOWAIT);
    docker_request_cancel(r);
    /* freed with requests in flight: no callback, nothing leaks */
    for (int i = 0; i < 10; i++)
        assert_non_null(docker_call(d, "GET", "/slow", NULL, never_called, NULL));
    for (int i = 0; i < 20; i++)
        ev_run(loop, EVRUN_NOWAIT);
    assert_non_null(docker_info(d, NULL, NULL)); /* never waited for */
    docker_free(d);
    ev_run(loop, EVRUN_NOWAIT);
    fake_stop(f);
}

/* ---- events: reconnects on every kind of stream fault ------------------------------------- */

static atomic_int events_conn;

static void h_events(struct fake *f, int fd, const char *method, const char *path, int no)
{
    if (!strstr(path, "/events?")) {
        respond(fd, 404, "application/json", "{\"message\":\"?\"}");
        return;
    }
    int n = atomic_fetch_add(&events_conn, 1);
    stream_headers(fd, "application/json");
    if (n == 0) {
        /* two events split across chunks, then a clean end */
        const char *a = "{\"n\":1,\"s\":\"}{\"}\n{\"n\"";
        chunk(fd, a, strlen(a));
        usleep(20 * 1000);
        chunk(fd, ":2}\n", 4);
        puts_fd(fd, "0\r\n\r\n");
    } else if (n == 1) {
        /* an event, then one over the limit */
        chunk(fd, "{\"n\":3}\n", 8);
        char big[400];
        memset(big, ' ', sizeof(big));
        memcpy(big, "{\"n\":99,\"pad\":\"", 15);
        memcpy(big + sizeof(big) - 2, "\"}", 2);
        chunk(fd, big, sizeof(big));
        hold_open(f, fd);
    } else if (n == 2) {
        /* not a stream of objects */
        chunk(fd, "[1,2]\n", 6);
        hold_open(f, fd);
    } else if (n == 3) {
        /* cut off abruptly */
        chunk(fd, "{\"n\":4}\n{\"n\":", 13);
    } else {
        chunk(fd, "{\"n\":5}\n", 8);
        hold_open(f, fd);
    }
}

struct ev_log {
    struct buf log;
    int events;
};

static void ev_on_event(json_t *e, void *ud)
{
    struct ev_log *l = ud;
    buf_printf(&l->log, "e%lld ", (long long)json_integer_value(json_object_get(e, "n")));
    l->events++;
}

static void ev_on_state(enum docker_events_state st, const char *why, void *ud)
{
    struct ev_log *l = ud;
    if (st == DOCKER_EVENTS_CONNECTED)
        buf_puts(&l->log, "UP ");
    else
        buf_printf(&l->log, "DOWN(%s) ",
                   strstr(why, "closed the events") ? "end"
                   : strstr(why, "too-large")       ? "big"
                   : strstr(why, "json")            ? "json"
                   : strstr(why, "transport")       ? "cut"
                                                    : why);
}

static void test_events_reconnect(void **state)
{
    atomic_store(&events_conn, 0);
    struct fake *f = fake_start("1.41", h_events);
    struct docker_opts o = {.max_event = 256, .reconnect_min_ms = 10, .reconnect_max_ms = 40};
    struct docker *d = client(f, &o);
    struct ev_log l = {.log = BUF_INIT(4096)};
    json_t *filters = json_object();
    docker_filters_add(filters, "type", "service");
    struct docker_events *ev = docker_events_open(d, filters, ev_on_event, ev_on_state, &l);
    json_decref(filters);
    assert_non_null(ev);
    uint64_t end = tu_now_ms() + 10000;
    while (l.events < 5 && tu_now_ms() < end)
        ev_run(loop, EVRUN_ONCE);
    assert_string_equal(l.log.data, "UP e1 e2 DOWN(end) UP e3 DOWN(big) UP DOWN(json) UP e4 "
                                    "DOWN(cut) UP e5 ");
    assert_true(docker_events_connected(ev));
    assert_true(fake_saw(f, "GET /v1.41/events?since="));
    pthread_mutex_lock(&f->mu);
    assert_non_null(strstr(f->paths[1], "&filters=%7B%22type%22%3A%5B%22service%22%5D%7D"));
    pthread_mutex_unlock(&f->mu);
    docker_events_close(ev);
    buf_release(&l.log);
    docker_free(d);
    fake_stop(f);
}

/* A burst far larger than what the client buffers before it pauses the transfer. */
enum { FLOOD = 20000 };

static void h_flood(struct fake *f, int fd, const char *method, const char *path, int no)
{
    stream_headers(fd, "application/json");
    struct buf b = BUF_INIT(1 << 24);
    for (int i = 1; i <= FLOOD; i++)
        buf_printf(&b, "{\"n\":%d,\"pad\":\"%0100d\"}\n", i, 0);
    for (size_t off = 0; off < b.len; off += 65536)
        chunk(fd, b.data + off, b.len - off < 65536 ? b.len - off : 65536);
    buf_release(&b);
    hold_open(f, fd);
}

struct flood_seen {
    int n;
    bool in_order;
};

static void flood_event(json_t *e, void *ud)
{
    struct flood_seen *s = ud;
    s->n++;
    if (json_integer_value(json_object_get(e, "n")) != s->n)
        s->in_order = false;
}

static void test_events_flood(void **state)
{
    struct fake *f = fake_start("1.41", h_flood);
    struct docker *d = client(f, NULL);
    struct flood_seen s = {.in_order = true};
    struct docker_events *ev = docker_events_open(d, NULL, flood_event, NULL, &s);
    uint64_t end = tu_now_ms() + 20000;
    while (s.n < FLOOD && tu_now_ms() < end)
        ev_run(loop, EVRUN_ONCE);
    assert_int_equal(s.n, FLOOD);
    assert_true(s.in_order);
    docker_events_close(ev);
    docker_free(d);
    fake_stop(f);
}

/* ---- logs: frames split across reads, TTY, limits ----------------------------------------- */

static void h_logs(struct fake *f, int fd, const char *method, const char *path, int no)
{
    if (strstr(path, "/logs?") == NULL) {
        if (strstr(path, "/services/tty"))
            respond(fd, 200, "application/json",
                    "{\"Spec\":{\"TaskTemplate\":{\"ContainerSpec\":{\"TTY\":true}}}}");
        else if (strstr(path, "/services/"))
            respond(fd, 200, "application/json",
                    "{\"Spec\":{\"TaskTemplate\":{\"ContainerSpec\":{}}}}");
        else
            respond(fd, 200, "application/json", "{\"Config\":{\"Tty\":false}}");
        return;
    }
    stream_headers(fd, "text/plain"); /* API 1.41 tells nothing in the Content-Type */
    if (strstr(path, "/services/tty/")) {
        const char *out = "hello\r\nworld\r\n";
        for (size_t i = 0; i < strlen(out); i += 3)
            chunk(fd, out + i, strlen(out) - i < 3 ? strlen(out) - i : 3);
    } else if (strstr(path, "/services/big/")) {
        const unsigned char h[8] = {1, 0, 0, 0, 0, 0x20, 0, 0}; /* 2 MiB */
        chunk(fd, (const char *)h, 8);
        hold_open(f, fd);
        return;
    } else {
        /* every byte in its own chunk, with pauses: frames split across many reads */
        const char frames[] = "\x01\0\0\0\0\0\0\x05"
                              "out1\n"
                              "\x02\0\0\0\0\0\0\x05"
                              "err1\n"
                              "\x01\0\0\0\0\0\0\x05"
                              "out2\n";
        for (size_t i = 0; i < sizeof(frames) - 1; i++) {
            chunk(fd, frames + i, 1);
            if (i % 7 == 0)
                usleep(2000);
        }
    }
    puts_fd(fd, "0\r\n\r\n");
}

struct logs_log {
    struct buf log;
    bool ended;
    enum docker_error error;
};

static void lg_data(enum docker_stream_kind k, const char *p, size_t n, void *ud)
{
    struct logs_log *l = ud;
    buf_printf(&l->log, "%s:", docker_stream_kind_to_string(k));
    buf_append(&l->log, p, n);
    buf_puts(&l->log, "|");
}

static void lg_end(struct docker_result *res, void *ud)
{
    struct logs_log *l = ud;
    l->ended = true;
    l->error = res->error;
}

static void run_logs(struct docker *d, enum docker_logs_target t, const char *id,
                     struct logs_log *l)
{
    struct docker_logs_opts o = {.tail = 10, .timestamps = true};
    *l = (struct logs_log){.log = BUF_INIT(1 << 20)};
    assert_non_null(docker_logs_open(d, t, id, &o, lg_data, lg_end, l));
    uint64_t end = tu_now_ms() + 10000;
    while (!l->ended && tu_now_ms() < end)
        ev_run(loop, EVRUN_ONCE);
    assert_true(l->ended);
}

static void test_logs(void **state)
{
    struct fake *f = fake_start("1.41", h_logs);
    struct docker *d = client(f, NULL);
    struct logs_log l;

    run_logs(d, DOCKER_LOGS_SERVICE, "svc", &l);
    assert_int_equal(l.error, DOCKER_OK);
    assert_string_equal(l.log.data, "stdout:out1\n|stderr:err1\n|stdout:out2\n|");
    buf_release(&l.log);
    assert_true(fake_saw(f, "GET /v1.41/services/svc/logs?stdout=1&stderr=1&follow=0&"
                            "timestamps=1&details=0&tail=10&since=0"));

    run_logs(d, DOCKER_LOGS_SERVICE, "tty", &l);
    assert_int_equal(l.error, DOCKER_OK);
    /* plain output, in whatever pieces it came in */
    struct buf joined = BUF_INIT(1 << 20);
    for (char *p = l.log.data; (p = strstr(p, "raw:"));) {
        char *e = strchr(p, '|');
        assert_non_null(e);
        buf_append(&joined, p + 4, (size_t)(e - p - 4));
        p = e;
    }
    assert_string_equal(joined.data, "hello\r\nworld\r\n");
    assert_null(strstr(l.log.data, "stdout:"));
    buf_release(&joined);
    buf_release(&l.log);

    run_logs(d, DOCKER_LOGS_CONTAINER, "c1", &l);
    assert_int_equal(l.error, DOCKER_OK);
    assert_true(fake_saw(f, "GET /v1.41/containers/c1/json"));
    buf_release(&l.log);

    run_logs(d, DOCKER_LOGS_SERVICE, "big", &l);
    assert_int_equal(l.error, DOCKER_ERR_TOO_LARGE);
    assert_int_equal(l.log.len, 0);
    buf_release(&l.log);

    docker_free(d);
    fake_stop(f);
}

/* docker_logs_hold: while held nothing is delivered, not even the end of a stream that
 * finished meanwhile; released, everything comes, in order, then the end. */
static void test_logs_hold(void **state)
{
    struct fake *f = fake_start("1.41", h_logs);
    struct docker *d = client(f, NULL);
    struct logs_log l = {.log = BUF_INIT(1 << 20)};
    struct docker_logs_opts o = {.tail = 10, .timestamps = true};
    struct docker_logs *dl =
        docker_logs_open(d, DOCKER_LOGS_SERVICE, "svc", &o, lg_data, lg_end, &l);
    assert_non_null(dl);
    docker_logs_hold(dl, true);
    /* The fake sends every frame and ends the stream within some 20 ms. */
    uint64_t until = tu_now_ms() + 500;
    while (tu_now_ms() < until) {
        ev_run(loop, EVRUN_NOWAIT);
        usleep(2000);
    }
    assert_true(fake_saw(f, "GET /v1.41/services/svc/logs?"));
    assert_int_equal(l.log.len, 0);
    assert_false(l.ended);
    docker_logs_hold(dl, false);
    assert_int_equal(l.log.len, 0); /* never from inside the call */
    uint64_t end = tu_now_ms() + 10000;
    while (!l.ended && tu_now_ms() < end)
        ev_run(loop, EVRUN_ONCE);
    assert_true(l.ended);
    assert_int_equal(l.error, DOCKER_OK);
    assert_string_equal(l.log.data, "stdout:out1\n|stderr:err1\n|stdout:out2\n|");
    buf_release(&l.log);
    docker_free(d);
    fake_stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_version_negotiation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_too_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mutation_counter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_object_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_flood, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_hold, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

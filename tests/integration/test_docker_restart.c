/* Fault test of drivers/docker: dockerd is restarted (tests/env/docker-restart.sh) while the
 * events stream is open and requests keep being made. The stream must come back by itself and
 * tell its user to resync, every request made meanwhile must complete (cleanly failed while
 * the daemon is away), and nothing may crash or leak. */
#include "support/testutil.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drivers/docker/docker.h"
#include "drivers/docker/docker_api.h"
#include "lib/util.h"

#define SOCK  "/var/run/docker.sock"
#define IMAGE "axion-test/busybox:1"

struct state {
    struct ev_loop *loop;
    struct docker *dk;
    int connected, disconnected;
    int reconnected; /* CONNECTED after a DISCONNECTED */
    char svc[128];
    bool saw_create_after;
    bool script_done;
    int script_status;
    pid_t script;
    int issued, completed, ok, transport, timeout, other;
    bool long_done;
    enum docker_error long_error;
    char long_message[256];
    uint64_t long_ms;
    ev_timer tick;
};

static void on_event(json_t *e, void *ud)
{
    struct state *s = ud;
    const char *action = json_string_value(json_object_get(e, "Action"));
    const char *nm = json_string_value(
        json_object_get(json_object_get(json_object_get(e, "Actor"), "Attributes"), "name"));
    if (action && nm && streq(action, "create") && streq(nm, s->svc))
        s->saw_create_after = true;
}

static void on_state(enum docker_events_state st, const char *why, void *ud)
{
    struct state *s = ud;
    fprintf(stderr, "events: %s (%s)\n",
            st == DOCKER_EVENTS_CONNECTED ? "connected" : "disconnected", why);
    if (st == DOCKER_EVENTS_CONNECTED) {
        s->connected++;
        if (s->disconnected > 0)
            s->reconnected++;
    } else {
        s->disconnected++;
    }
}

static void on_info(struct docker_result *res, void *ud)
{
    struct state *s = ud;
    s->completed++;
    switch (res->error) {
    case DOCKER_OK:
        s->ok++;
        break;
    case DOCKER_ERR_TRANSPORT:
        s->transport++;
        break;
    case DOCKER_ERR_TIMEOUT:
        s->timeout++;
        break;
    default:
        fprintf(stderr, "info: unexpected %s: %s\n", docker_error_to_string(res->error),
                res->message);
        s->other++;
        break;
    }
}

static uint64_t long_started;

static void on_long(struct docker_result *res, void *ud)
{
    struct state *s = ud;
    s->long_done = true;
    s->long_error = res->error;
    s->long_ms = tu_now_ms() - long_started;
    snprintf(s->long_message, sizeof(s->long_message), "%s", res->message);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct state *s = w->data;
    assert_non_null(docker_info(s->dk, on_info, s));
    s->issued++;
    if (!s->script_done) {
        int st;
        pid_t p = waitpid(s->script, &st, WNOHANG);
        if (p == s->script) {
            s->script_done = true;
            s->script_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
    }
}

static pid_t spawn_restart(void)
{
    const char *src = getenv("AXION_SOURCE_DIR");
    assert_non_null(src);
    char script[4096];
    snprintf(script, sizeof(script), "%s/tests/env/docker-restart.sh", src);
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0) {
        /* the script's output goes to our stderr; no other fd of ours goes with it */
        dup2(2, 1);
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        execl(script, script, (char *)NULL);
        _exit(127);
    }
    return p;
}

static void run_until(struct state *s, bool (*cond)(struct state *), uint64_t ms)
{
    uint64_t end = tu_now_ms() + ms;
    while (!cond(s) && tu_now_ms() < end)
        ev_run(s->loop, EVRUN_ONCE);
}

static bool is_connected(struct state *s)
{
    return s->connected > 0;
}

static bool restarted(struct state *s)
{
    return s->script_done && s->reconnected > 0;
}

static bool all_completed(struct state *s)
{
    return s->completed == s->issued && s->long_done;
}

static bool saw_create(struct state *s)
{
    return s->saw_create_after;
}

static void test_restart_while_streaming(void **unused)
{
    struct state s = {0};
    snprintf(s.svc, sizeof(s.svc), "axt-docker-%d-restart", (int)getpid());
    s.loop = ev_loop_new(EVFLAG_AUTO);
    struct docker_opts o = {.timeout_ms = 5000, .reconnect_min_ms = 100, .reconnect_max_ms = 1000};
    assert_int_equal(docker_new(s.loop, SOCK, &o, &s.dk), 0);

    json_t *f = json_object();
    assert_int_equal(docker_filters_add(f, "type", "service"), 0);
    struct docker_events *ev = docker_events_open(s.dk, f, on_event, on_state, &s);
    json_decref(f);
    assert_non_null(ev);
    run_until(&s, is_connected, 10000);
    assert_int_equal(s.connected, 1);

    /* a request in flight when the daemon goes: a plain GET /events never ends by itself */
    struct docker_call_opts lo = {.timeout_ms = 120000};
    long_started = tu_now_ms();
    assert_non_null(docker_call_with(s.dk, "GET", "/events", NULL, &lo, on_long, &s));

    s.script = spawn_restart();
    ev_timer_init(&s.tick, on_tick, 0.1, 0.1);
    s.tick.data = &s;
    ev_timer_start(s.loop, &s.tick);
    run_until(&s, restarted, 180000);
    ev_timer_stop(s.loop, &s.tick);
    fprintf(stderr,
            "after restart: script done %d status %d, connected %d (%d again), "
            "disconnected %d\n",
            s.script_done, s.script_status, s.connected, s.reconnected, s.disconnected);
    if (!s.script_done) {
        kill(s.script, SIGKILL);
        waitpid(s.script, NULL, 0);
        fail_msg("docker-restart.sh did not finish");
    }
    assert_int_equal(s.script_status, 0);
    assert_true(s.disconnected >= 1);
    assert_true(s.reconnected >= 1);
    assert_true(docker_events_connected(ev));

    /* every request made across the outage completed; those during it failed cleanly */
    run_until(&s, all_completed, 15000);
    fprintf(stderr,
            "requests: issued %d completed %d ok %d transport %d timeout %d other %d; in-flight "
            "one: %s after %llu ms (%s)\n",
            s.issued, s.completed, s.ok, s.transport, s.timeout, s.other,
            docker_error_to_string(s.long_error), (unsigned long long)s.long_ms, s.long_message);
    assert_int_equal(s.completed, s.issued);
    assert_true(s.transport >= 1);
    assert_int_equal(s.other, 0);
    assert_true(s.long_done);
    assert_true(s.long_ms < 60000);
    assert_int_not_equal(s.long_error, DOCKER_ERR_TIMEOUT);

    /* the client works again, and the reopened stream delivers events */
    struct docker_result *res = NULL;
    assert_int_equal(docker_wait(s.dk, docker_info(s.dk, NULL, NULL), &res), 0);
    assert_int_equal(res->error, DOCKER_OK);
    docker_result_free(res);
    assert_int_equal(tu_sh("docker service create -d --quiet --no-resolve-image --name %s "
                           "--replicas 0 " IMAGE " true >/dev/null",
                           s.svc),
                     0);
    run_until(&s, saw_create, 15000);
    assert_true(s.saw_create_after);
    assert_int_equal(tu_sh("docker service rm %s >/dev/null", s.svc), 0);

    docker_events_close(ev);
    s.dk = docker_free(s.dk);
    ev_loop_destroy(s.loop);
}

int main(void)
{
    if (tu_sh("\"$AXION_SOURCE_DIR\"/tests/env/docker-up.sh") != 0) {
        fprintf(stderr, "docker-up.sh failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_while_streaming),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

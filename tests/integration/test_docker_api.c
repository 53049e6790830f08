/* drivers/docker against the real Docker Engine (tests/env/docker-up.sh): every typed call,
 * errors with Docker's message, the events stream, logs (multiplexed and TTY), many requests
 * in flight, timeouts and limits. Objects are named axt-docker-<pid>-… and removed at the end. */
#include "support/testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/docker/docker.h"
#include "drivers/docker/docker_api.h"
#include "lib/buf.h"
#include "lib/util.h"

#define SOCK  "/var/run/docker.sock"
#define IMAGE "axion-test/busybox:1"

static struct ev_loop *loop;
static struct docker *dk;
static char prefix[64];

static int setup(void **state)
{
    loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(loop);
    assert_int_equal(docker_new(loop, SOCK, NULL, &dk), 0);
    return 0;
}

static int teardown(void **state)
{
    dk = docker_free(dk);
    ev_loop_destroy(loop);
    return 0;
}

/* Runs a request made with a NULL callback to its end. */
static struct docker_result *sync_req(struct docker_request *req)
{
    struct docker_result *res = NULL;
    assert_int_equal(docker_wait(dk, req, &res), 0);
    assert_non_null(res);
    return res;
}

static void expect_ok(struct docker_result *res)
{
    if (res->error != DOCKER_OK)
        fail_msg("%s: %s (status %ld): %s", res->what, docker_error_to_string(res->error),
                 res->status, res->message);
}

static void name(char *out, size_t n, const char *what)
{
    snprintf(out, n, "%s-%s", prefix, what);
}

static json_t *service_spec(const char *svc_name, int replicas, const char *script, bool tty)
{
    json_t *spec = json_pack("{s:s, s:{s:s, s:s}, s:{s:{s:s, s:[s,s,s], s:b}, s:{s:s}}, "
                             "s:{s:{s:i}}}",
                             "Name", svc_name, "Labels", "io.axion.test", prefix, "axt.kind", "svc",
                             "TaskTemplate", "ContainerSpec", "Image", IMAGE, "Command", "sh", "-c",
                             script, "TTY", tty, "RestartPolicy", "Condition", "none", "Mode",
                             "Replicated", "Replicas", replicas);
    assert_non_null(spec);
    return spec;
}

static json_t *label_filter(void)
{
    json_t *f = json_object();
    char l[128];
    snprintf(l, sizeof(l), "io.axion.test=%s", prefix);
    assert_int_equal(docker_filters_add(f, "label", l), 0);
    return f;
}

/* ---- version, info, swarm, nodes ---------------------------------------------------------- */

static void test_version_info(void **state)
{
    assert_null(docker_api_version(dk));
    struct docker_result *res = sync_req(docker_version(dk, NULL, NULL));
    expect_ok(res);
    assert_string_equal(docker_api_version(dk), "1.41"); /* Engine 20.10 */
    assert_true(docker_api_at_least(dk, 1, 41));
    assert_false(docker_api_at_least(dk, 1, 42));
    assert_non_null(json_string_value(json_object_get(res->body, "ApiVersion")));
    docker_result_free(res);

    res = sync_req(docker_info(dk, NULL, NULL));
    expect_ok(res);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(res->body, "Swarm"), "LocalNodeState")),
        "active");
    docker_result_free(res);

    res = sync_req(docker_ping(dk, NULL, NULL));
    expect_ok(res);
    assert_null(res->body); /* text/plain */
    assert_string_equal(res->raw, "OK");
    docker_result_free(res);
    assert_int_equal(docker_mutations(dk), 0);
}

static void test_swarm_nodes(void **state)
{
    struct docker_result *res = sync_req(docker_swarm_inspect(dk, NULL, NULL));
    expect_ok(res);
    assert_non_null(json_string_value(json_object_get(res->body, "ID")));
    assert_non_null(json_object_get(json_object_get(res->body, "JoinTokens"), "Worker"));
    docker_result_free(res);

    json_t *f = json_object();
    assert_int_equal(docker_filters_add(f, "role", "manager"), 0);
    res = sync_req(docker_nodes_list(dk, f, NULL, NULL));
    json_decref(f);
    expect_ok(res);
    assert_true(json_array_size(res->body) >= 1);
    char *id = strdup(json_string_value(json_object_get(json_array_get(res->body, 0), "ID")));
    docker_result_free(res);

    res = sync_req(docker_node_inspect(dk, id, NULL, NULL));
    expect_ok(res);
    assert_string_equal(json_string_value(json_object_get(res->body, "ID")), id);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(res->body, "Status"), "State")), "ready");
    docker_result_free(res);
    free(id);

    /* joining a swarm while in one is refused with Docker's message (503) */
    res = sync_req(
        docker_swarm_join(dk,
                          json_pack("{s:s, s:[s], s:s}", "ListenAddr", "127.0.0.1:2377",
                                    "RemoteAddrs", "127.0.0.1:2377", "JoinToken", "SWMTKN-1-x"),
                          NULL, NULL));
    assert_int_equal(res->error, DOCKER_ERR_HTTP);
    assert_int_equal(res->status, 503);
    assert_non_null(strstr(res->message, "already part of a swarm"));
    docker_result_free(res);
    res = sync_req(
        docker_swarm_init(dk, json_pack("{s:s}", "ListenAddr", "127.0.0.1:2377"), NULL, NULL));
    assert_int_equal(res->error, DOCKER_ERR_HTTP);
    assert_non_null(strstr(res->message, "already part of a swarm"));
    docker_result_free(res);
    /* leaving without force as the last manager is refused before anything happens */
    res = sync_req(docker_swarm_leave(dk, false, NULL, NULL));
    assert_int_equal(res->error, DOCKER_ERR_HTTP);
    assert_int_equal(res->status, 503);
    assert_non_null(strstr(res->message, "--force"));
    docker_result_free(res);
}

/* ---- services ----------------------------------------------------------------------------- */

static void test_service_lifecycle(void **state)
{
    char svc[128];
    name(svc, sizeof(svc), "svc");
    uint64_t m0 = docker_mutations(dk);

    struct docker_result *res = sync_req(docker_object_create(
        dk, SPEC_SERVICE, service_spec(svc, 0, "sleep 600", false), NULL, NULL));
    expect_ok(res);
    char *id = strdup(json_string_value(json_object_get(res->body, "ID")));
    docker_result_free(res);

    /* inspect, by name and by id */
    res = sync_req(docker_object_inspect(dk, SPEC_SERVICE, svc, NULL, NULL));
    expect_ok(res);
    assert_string_equal(json_string_value(json_object_get(res->body, "ID")), id);
    json_int_t version =
        json_integer_value(json_object_get(json_object_get(res->body, "Version"), "Index"));
    assert_true(version > 0);
    json_t *spec = json_deep_copy(json_object_get(res->body, "Spec"));
    docker_result_free(res);

    /* list by label, with status */
    json_t *f = label_filter();
    res = sync_req(docker_object_list(dk, SPEC_SERVICE, f, NULL, NULL, NULL));
    expect_ok(res);
    assert_int_equal(json_array_size(res->body), 1);
    assert_non_null(json_object_get(json_array_get(res->body, 0), "ServiceStatus"));
    docker_result_free(res);

    /* a first update bumps the version, so the one we read becomes stale */
    json_object_set_new(json_object_get(spec, "Labels"), "axt.step", json_string("1"));
    res = sync_req(docker_object_update(dk, SPEC_SERVICE, id, (uint64_t)version,
                                        json_deep_copy(spec), NULL, NULL));
    expect_ok(res);
    docker_result_free(res);

    json_object_set_new(json_object_get(spec, "Labels"), "axt.step", json_string("2"));
    res = sync_req(docker_object_update(dk, SPEC_SERVICE, id, (uint64_t)version,
                                        json_deep_copy(spec), NULL, NULL));
    assert_int_equal(res->error, DOCKER_ERR_HTTP);
    assert_true(docker_result_is_conflict(res));
    assert_non_null(strstr(res->message, "update out of sequence"));
    docker_result_free(res);

    /* read again, update with the right version */
    res = sync_req(docker_object_inspect(dk, SPEC_SERVICE, id, NULL, NULL));
    expect_ok(res);
    version = json_integer_value(json_object_get(json_object_get(res->body, "Version"), "Index"));
    docker_result_free(res);
    res = sync_req(
        docker_object_update(dk, SPEC_SERVICE, id, (uint64_t)version, TAKE_PTR(spec), NULL, NULL));
    expect_ok(res);
    assert_true(json_is_object(res->body));
    json_t *w = docker_result_warnings(res); /* none expected, but well-formed when present */
    assert_true(w == NULL || json_is_array(w));
    docker_result_free(res);

    res = sync_req(docker_object_inspect(dk, SPEC_SERVICE, id, NULL, NULL));
    expect_ok(res);
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(res->body, "Spec"), "Labels"), "axt.step")),
        "2");
    docker_result_free(res);

    /* tasks of it (none: zero replicas) */
    json_t *tf = json_object();
    assert_int_equal(docker_filters_add(tf, "service", id), 0);
    res = sync_req(docker_tasks_list(dk, tf, NULL, NULL, NULL));
    json_decref(tf);
    expect_ok(res);
    assert_true(json_is_array(res->body));
    docker_result_free(res);

    res = sync_req(docker_object_remove(dk, SPEC_SERVICE, id, NULL, NULL));
    expect_ok(res);
    docker_result_free(res);

    /* gone: 404 with Docker's message */
    res = sync_req(docker_object_inspect(dk, SPEC_SERVICE, id, NULL, NULL));
    assert_int_equal(res->error, DOCKER_ERR_HTTP);
    assert_int_equal(res->status, 404);
    assert_true(docker_result_is_not_found(res));
    char want[256];
    snprintf(want, sizeof(want), "service %s not found", id);
    assert_string_equal(res->message, want);
    docker_result_free(res);

    res = sync_req(docker_object_list(dk, SPEC_SERVICE, f, NULL, NULL, NULL));
    expect_ok(res);
    assert_int_equal(json_array_size(res->body), 0);
    docker_result_free(res);
    json_decref(f);

    /* create, update, update, update(conflict), remove: every mutating call counted */
    assert_int_equal(docker_mutations(dk) - m0, 5);
    free(id);
}

static void test_errors_404_409(void **state)
{
    char nm[128];
    name(nm, sizeof(nm), "nope");
    struct docker_result *res = sync_req(docker_object_inspect(dk, SPEC_SERVICE, nm, NULL, NULL));
    assert_int_equal(res->error, DOCKER_ERR_HTTP);
    assert_int_equal(res->status, 404);
    char want[256];
    snprintf(want, sizeof(want), "service %s not found", nm);
    assert_string_equal(res->message, want);
    assert_non_null(res->body); /* the JSON error answer is there too */
    assert_non_null(strstr(res->what, "GET /services/"));
    docker_result_free(res);

    /* 409: two services with one name */
    char svc[128];
    name(svc, sizeof(svc), "dup");
    res = sync_req(
        docker_object_create(dk, SPEC_SERVICE, service_spec(svc, 0, "true", false), NULL, NULL));
    expect_ok(res);
    docker_result_free(res);
    res = sync_req(
        docker_object_create(dk, SPEC_SERVICE, service_spec(svc, 0, "true", false), NULL, NULL));
    assert_int_equal(res->error, DOCKER_ERR_HTTP);
    assert_int_equal(res->status, 409);
    assert_true(docker_result_is_conflict(res));
    assert_non_null(strstr(res->message, "name conflicts with an existing object"));
    docker_result_free(res);
    res = sync_req(docker_object_remove(dk, SPEC_SERVICE, svc, NULL, NULL));
    expect_ok(res);
    docker_result_free(res);

    /* an unknown route: a plain-text 404 */
    res = sync_req(docker_call(dk, "GET", "/no-such-route", NULL, NULL, NULL));
    assert_int_equal(res->error, DOCKER_ERR_HTTP);
    assert_int_equal(res->status, 404);
    assert_true(strlen(res->message) > 0);
    docker_result_free(res);
}

/* ---- networks, configs, secrets ----------------------------------------------------------- */

static void test_networks(void **state)
{
    char net[128];
    name(net, sizeof(net), "net");
    struct docker_result *res = sync_req(docker_object_create(
        dk, SPEC_NETWORK,
        json_pack("{s:s, s:s, s:b, s:b, s:{s:s}}", "Name", net, "Driver", "overlay", "Attachable",
                  1, "CheckDuplicate", 1, "Labels", "io.axion.test", prefix),
        NULL, NULL));
    expect_ok(res);
    char *id = strdup(json_string_value(json_object_get(res->body, "Id")));
    docker_result_free(res);

    res = sync_req(docker_object_inspect(dk, SPEC_NETWORK, id, NULL, NULL));
    expect_ok(res);
    assert_string_equal(json_string_value(json_object_get(res->body, "Name")), net);
    assert_string_equal(json_string_value(json_object_get(res->body, "Scope")), "swarm");
    docker_result_free(res);

    json_t *f = label_filter();
    res = sync_req(docker_object_list(dk, SPEC_NETWORK, f, NULL, NULL, NULL));
    expect_ok(res);
    assert_int_equal(json_array_size(res->body), 1);
    docker_result_free(res);

    /* a second one with the same name is a conflict */
    res = sync_req(docker_object_create(
        dk, SPEC_NETWORK,
        json_pack("{s:s, s:s, s:b}", "Name", net, "Driver", "overlay", "CheckDuplicate", 1), NULL,
        NULL));
    assert_int_equal(res->error, DOCKER_ERR_HTTP);
    assert_int_equal(res->status, 409);
    assert_true(strlen(res->message) > 0);
    docker_result_free(res);

    res = sync_req(docker_object_remove(dk, SPEC_NETWORK, id, NULL, NULL));
    expect_ok(res);
    docker_result_free(res);
    res = sync_req(docker_object_list(dk, SPEC_NETWORK, f, NULL, NULL, NULL));
    expect_ok(res);
    assert_int_equal(json_array_size(res->body), 0);
    docker_result_free(res);
    res = sync_req(docker_object_remove(dk, SPEC_NETWORK, id, NULL, NULL));
    assert_true(docker_result_is_not_found(res));
    docker_result_free(res);
    json_decref(f);
    free(id);
}

static void object_round_trip(const char *what, enum spec_kind kind)
{
    char nm[128];
    name(nm, sizeof(nm), what);
    /* "hello axion\n" */
    json_t *spec = json_pack("{s:s, s:s, s:{s:s}}", "Name", nm, "Data", "aGVsbG8gYXhpb24K",
                             "Labels", "io.axion.test", prefix);
    struct docker_result *res =
        sync_req(docker_object_create(dk, kind, json_deep_copy(spec), NULL, NULL));
    expect_ok(res);
    char *id = strdup(json_string_value(json_object_get(res->body, "ID")));
    docker_result_free(res);

    res = sync_req(docker_object_inspect(dk, kind, id, NULL, NULL));
    expect_ok(res);
    json_t *s = json_object_get(res->body, "Spec");
    assert_string_equal(json_string_value(json_object_get(s, "Name")), nm);
    if (streq(what, "config")) /* a secret's data never comes back */
        assert_string_equal(json_string_value(json_object_get(s, "Data")), "aGVsbG8gYXhpb24K");
    docker_result_free(res);

    json_t *f = label_filter();
    res = sync_req(docker_object_list(dk, kind, f, NULL, NULL, NULL));
    expect_ok(res);
    assert_int_equal(json_array_size(res->body), 1);
    docker_result_free(res);

    /* same name again: 409 with Docker's message */
    res = sync_req(docker_object_create(dk, kind, TAKE_PTR(spec), NULL, NULL));
    assert_int_equal(res->error, DOCKER_ERR_HTTP);
    assert_int_equal(res->status, 409);
    assert_non_null(strstr(res->message, "already exists"));
    docker_result_free(res);

    res = sync_req(docker_object_remove(dk, kind, id, NULL, NULL));
    expect_ok(res);
    docker_result_free(res);
    res = sync_req(docker_object_list(dk, kind, f, NULL, NULL, NULL));
    expect_ok(res);
    assert_int_equal(json_array_size(res->body), 0);
    docker_result_free(res);
    res = sync_req(docker_object_inspect(dk, kind, id, NULL, NULL));
    assert_true(docker_result_is_not_found(res));
    assert_true(strlen(res->message) > 0);
    docker_result_free(res);
    json_decref(f);
    free(id);
}

static void test_configs(void **state)
{
    object_round_trip("config", SPEC_CONFIG);
}

static void test_secrets(void **state)
{
    object_round_trip("secret", SPEC_SECRET);
}

/* ---- tasks and containers ----------------------------------------------------------------- */

/* Waits until the service's one task is in state (e.g. "running", "complete"). */
static char *wait_task_state(const char *svc, const char *want)
{
    uint64_t end = tu_now_ms() + 60000;
    for (;;) {
        json_t *f = json_object();
        assert_int_equal(docker_filters_add(f, "service", svc), 0);
        struct docker_result *res = sync_req(docker_tasks_list(dk, f, NULL, NULL, NULL));
        json_decref(f);
        expect_ok(res);
        size_t i;
        json_t *t;
        json_array_foreach(res->body, i, t)
        {
            const char *st =
                json_string_value(json_object_get(json_object_get(t, "Status"), "State"));
            if (st && streq(st, want)) {
                char *id = strdup(json_string_value(json_object_get(t, "ID")));
                docker_result_free(res);
                return id;
            }
        }
        docker_result_free(res);
        if (tu_now_ms() > end)
            fail_msg("service %s: no task %s within 60 s", svc, want);
        usleep(100 * 1000);
    }
}

static void test_containers(void **state)
{
    char svc[128];
    name(svc, sizeof(svc), "ctr");
    struct docker_result *res = sync_req(docker_object_create(
        dk, SPEC_SERVICE, service_spec(svc, 1, "sleep 600", false), NULL, NULL));
    expect_ok(res);
    docker_result_free(res);
    char *task = wait_task_state(svc, "running");

    json_t *f = json_object();
    char l[200];
    snprintf(l, sizeof(l), "com.docker.swarm.service.name=%s", svc);
    assert_int_equal(docker_filters_add(f, "label", l), 0);
    res = sync_req(docker_containers_list(dk, f, false, NULL, NULL));
    json_decref(f);
    expect_ok(res);
    assert_int_equal(json_array_size(res->body), 1);
    struct docker_container_info c;
    assert_int_equal(docker_container_info_from_json(json_array_get(res->body, 0), &c), 0);
    docker_result_free(res);
    assert_string_equal(c.service_name, svc);
    assert_string_equal(c.task_id, task);
    assert_non_null(c.service_id);
    assert_true(c.running);
    assert_int_equal(c.pid, 0); /* lists carry no pid */
    assert_true(strncmp(c.name, svc, strlen(svc)) == 0);

    res = sync_req(docker_container_inspect(dk, c.id, NULL, NULL));
    expect_ok(res);
    struct docker_container_info ci;
    assert_int_equal(docker_container_info_from_json(res->body, &ci), 0);
    docker_result_free(res);
    assert_string_equal(ci.id, c.id);
    assert_string_equal(ci.task_id, task);
    assert_string_equal(ci.service_name, svc);
    assert_true(ci.pid > 0);
    assert_true(ci.running);
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/%d", ci.pid);
    assert_int_equal(access(proc, F_OK), 0);
    docker_container_info_release(&ci);
    docker_container_info_release(&c);

    res = sync_req(docker_container_inspect(dk, "axt-docker-no-such-container", NULL, NULL));
    assert_true(docker_result_is_not_found(res));
    assert_non_null(strstr(res->message, "No such container"));
    docker_result_free(res);

    res = sync_req(docker_object_remove(dk, SPEC_SERVICE, svc, NULL, NULL));
    expect_ok(res);
    docker_result_free(res);
    free(task);
}

/* ---- events ------------------------------------------------------------------------------- */

struct ev_seen {
    int connected, disconnected;
    const char *name;
    bool created, removed;
    int n;
};

static void on_event(json_t *e, void *ud)
{
    struct ev_seen *s = ud;
    s->n++;
    const char *type = json_string_value(json_object_get(e, "Type"));
    const char *action = json_string_value(json_object_get(e, "Action"));
    const char *nm = json_string_value(
        json_object_get(json_object_get(json_object_get(e, "Actor"), "Attributes"), "name"));
    if (!type || !action || !nm || !streq(type, "service") || !streq(nm, s->name))
        return;
    if (streq(action, "create"))
        s->created = true;
    if (streq(action, "remove"))
        s->removed = true;
}

static void on_state(enum docker_events_state st, const char *why, void *ud)
{
    struct ev_seen *s = ud;
    if (st == DOCKER_EVENTS_CONNECTED)
        s->connected++;
    else
        s->disconnected++;
}

/* Runs the loop until *flag is true or ms pass. */
static bool run_until(bool *flag, uint64_t ms)
{
    uint64_t end = tu_now_ms() + ms;
    while (!*flag && tu_now_ms() < end)
        ev_run(loop, EVRUN_NOWAIT), usleep(1000);
    return *flag;
}

static bool all_cloexec(void)
{
    DIR *dir = opendir("/proc/self/fdinfo");
    assert_non_null(dir);
    struct dirent *e;
    bool ok = true;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        char path[300], link[300] = "";
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, link, sizeof(link) - 1);
        if (n < 0 || strncmp(link, "socket:", 7) != 0)
            continue;
        snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        char line[128];
        while (fgets(line, sizeof(line), f))
            if (strncmp(line, "flags:", 6) == 0 && !(strtoul(line + 6, NULL, 8) & 02000000)) {
                fprintf(stderr, "fd %d (%s) is not O_CLOEXEC\n", fd, link);
                ok = false;
            }
        fclose(f);
    }
    closedir(dir);
    return ok;
}

static void test_events(void **state)
{
    char svc[128];
    name(svc, sizeof(svc), "ev");
    struct ev_seen s = {.name = svc};
    json_t *f = json_object();
    assert_int_equal(docker_filters_add(f, "type", "service"), 0);
    struct docker_events *ev = docker_events_open(dk, f, on_event, on_state, &s);
    json_decref(f);
    assert_non_null(ev);
    bool up = false;
    uint64_t end = tu_now_ms() + 10000;
    while (!(up = s.connected > 0) && tu_now_ms() < end)
        ev_run(loop, EVRUN_ONCE);
    assert_true(up);
    assert_true(docker_events_connected(ev));
    assert_true(all_cloexec());

    assert_int_equal(
        tu_sh("docker service create -d --quiet --no-resolve-image --name %s --replicas 0 "
              "--label io.axion.test=%s " IMAGE " sleep 1 >/dev/null",
              svc, prefix),
        0);
    assert_true(run_until(&s.created, 15000));
    assert_int_equal(tu_sh("docker service rm %s >/dev/null", svc), 0);
    assert_true(run_until(&s.removed, 15000));
    assert_int_equal(s.disconnected, 0);
    assert_int_equal(s.connected, 1);
    docker_events_close(ev);
}

/* Closing the stream from inside its own callback is allowed. */
static void on_event_close(json_t *e, void *ud)
{
    struct docker_events **ev = ud;
    docker_events_close(*ev);
    *ev = NULL;
}

static void test_events_close_in_callback(void **state)
{
    struct docker_events *ev = docker_events_open(dk, NULL, on_event_close, NULL, &ev);
    assert_non_null(ev);
    char svc[128];
    name(svc, sizeof(svc), "evc");
    /* since= may replay an event at once; else make one */
    uint64_t end = tu_now_ms() + 10000;
    while (ev && !docker_events_connected(ev) && tu_now_ms() < end)
        ev_run(loop, EVRUN_ONCE);
    assert_int_equal(
        tu_sh("docker service create -d --quiet --no-resolve-image --name %s --replicas 0 "
              "--label io.axion.test=%s " IMAGE " true >/dev/null",
              svc, prefix),
        0);
    end = tu_now_ms() + 15000;
    while (ev && tu_now_ms() < end)
        ev_run(loop, EVRUN_ONCE);
    assert_null(ev);
    assert_int_equal(tu_sh("docker service rm %s >/dev/null", svc), 0);
}

/* ---- logs --------------------------------------------------------------------------------- */

struct logs_seen {
    struct buf out, err, raw;
    int frames;
    bool ended;
    enum docker_error error;
    char message[256];
    const char *until; /* close once raw output has this */
    struct docker_logs *l;
};

static void on_logs_data(enum docker_stream_kind kind, const char *data, size_t len, void *ud)
{
    struct logs_seen *s = ud;
    s->frames++;
    struct buf *b = kind == DOCKER_STREAM_STDOUT   ? &s->out
                    : kind == DOCKER_STREAM_STDERR ? &s->err
                                                   : &s->raw;
    assert_int_equal(buf_append(b, data, len), 0);
    if (s->until && strstr(s->raw.data, s->until)) {
        docker_logs_close(s->l);
        s->l = NULL;
        s->ended = true;
    }
}

static void on_logs_end(struct docker_result *res, void *ud)
{
    struct logs_seen *s = ud;
    s->ended = true;
    s->error = res->error;
    snprintf(s->message, sizeof(s->message), "%s", res->message);
}

static void test_logs_multiplexed(void **state)
{
    char svc[128];
    name(svc, sizeof(svc), "logs");
    const char *script = "i=1; while [ $i -le 50 ]; do echo out$i; echo err$i >&2; "
                         "i=$((i+1)); done";
    struct docker_result *res = sync_req(
        docker_object_create(dk, SPEC_SERVICE, service_spec(svc, 1, script, false), NULL, NULL));
    expect_ok(res);
    docker_result_free(res);
    free(wait_task_state(svc, "complete"));

    struct logs_seen s = {
        .out = BUF_INIT(1 << 20), .err = BUF_INIT(1 << 20), .raw = BUF_INIT(1 << 20)};
    struct docker_logs_opts o = {.tail = -1};
    s.l = docker_logs_open(dk, DOCKER_LOGS_SERVICE, svc, &o, on_logs_data, on_logs_end, &s);
    assert_non_null(s.l);
    assert_true(run_until(&s.ended, 30000));
    assert_int_equal(s.error, DOCKER_OK);

    struct buf want_out = BUF_INIT(1 << 20), want_err = BUF_INIT(1 << 20);
    for (int i = 1; i <= 50; i++) {
        buf_printf(&want_out, "out%d\n", i);
        buf_printf(&want_err, "err%d\n", i);
    }
    assert_string_equal(s.out.data, want_out.data);
    assert_string_equal(s.err.data, want_err.data);
    assert_int_equal(s.raw.len, 0);
    assert_int_equal(s.frames, 100);
    buf_release(&want_out);
    buf_release(&want_err);
    buf_release(&s.out);
    buf_release(&s.err);
    buf_release(&s.raw);

    res = sync_req(docker_object_remove(dk, SPEC_SERVICE, svc, NULL, NULL));
    expect_ok(res);
    docker_result_free(res);

    /* logs of a service that does not exist: on_end with the 404 */
    struct logs_seen n = {.out = BUF_INIT(1024), .err = BUF_INIT(1024), .raw = BUF_INIT(1024)};
    n.l = docker_logs_open(dk, DOCKER_LOGS_SERVICE, svc, &o, on_logs_data, on_logs_end, &n);
    assert_true(run_until(&n.ended, 10000));
    assert_int_equal(n.error, DOCKER_ERR_HTTP);
    assert_non_null(strstr(n.message, "not found"));
}

static void test_logs_tty_follow(void **state)
{
    char svc[128];
    name(svc, sizeof(svc), "tty");
    const char *script = "echo tty-one; echo tty-two >&2; echo tty-three; sleep 600";
    struct docker_result *res = sync_req(
        docker_object_create(dk, SPEC_SERVICE, service_spec(svc, 1, script, true), NULL, NULL));
    expect_ok(res);
    docker_result_free(res);
    free(wait_task_state(svc, "running"));

    struct logs_seen s = {.out = BUF_INIT(1 << 20),
                          .err = BUF_INIT(1 << 20),
                          .raw = BUF_INIT(1 << 20),
                          .until = "tty-three"};
    struct docker_logs_opts o = {.tail = -1, .follow = true};
    s.l = docker_logs_open(dk, DOCKER_LOGS_SERVICE, svc, &o, on_logs_data, on_logs_end, &s);
    assert_non_null(s.l);
    assert_true(run_until(&s.ended, 30000));
    /* a TTY has one stream, plain output, lines ended by \r\n */
    assert_int_equal(s.out.len + s.err.len, 0);
    const char *a = strstr(s.raw.data, "tty-one\r\n"), *b = strstr(s.raw.data, "tty-two\r\n"),
               *c = strstr(s.raw.data, "tty-three");
    assert_true(a && b && c && a < b && b < c);
    buf_release(&s.out);
    buf_release(&s.err);
    buf_release(&s.raw);

    res = sync_req(docker_object_remove(dk, SPEC_SERVICE, svc, NULL, NULL));
    expect_ok(res);
    docker_result_free(res);
}

/* ---- concurrency, timeouts, limits -------------------------------------------------------- */

struct counter {
    int done, ok;
};

static void count_cb(struct docker_result *res, void *ud)
{
    struct counter *c = ud;
    c->done++;
    if (res->error == DOCKER_OK && res->body)
        c->ok++;
}

static void test_many_in_flight(void **state)
{
    struct counter c = {0};
    enum { N = 60 };
    for (int i = 0; i < N; i++) {
        struct docker_request *r =
            i % 3 == 0   ? docker_info(dk, count_cb, &c)
            : i % 3 == 1 ? docker_object_list(dk, SPEC_SERVICE, NULL, NULL, count_cb, &c)
                         : docker_nodes_list(dk, NULL, count_cb, &c);
        assert_non_null(r);
    }
    assert_int_equal(c.done, 0); /* never called from inside the call */
    uint64_t end = tu_now_ms() + 30000;
    while (c.done < N && tu_now_ms() < end)
        ev_run(loop, EVRUN_ONCE);
    assert_int_equal(c.done, N);
    assert_int_equal(c.ok, N);

    /* a cancelled request never calls back */
    struct counter c2 = {0};
    struct docker_request *r = docker_info(dk, count_cb, &c2);
    struct docker_request *r2 = docker_info(dk, count_cb, &c2);
    docker_request_cancel(r);
    end = tu_now_ms() + 10000;
    while (c2.done < 1 && tu_now_ms() < end)
        ev_run(loop, EVRUN_ONCE);
    (void)r2;
    assert_int_equal(c2.done, 1);
}

static void test_timeout_and_limits(void **state)
{
    /* /events without until never ends: as a plain request it times out */
    struct docker_call_opts o = {.timeout_ms = 300};
    uint64_t t0 = tu_now_ms();
    struct docker_result *res =
        sync_req(docker_call_with(dk, "GET", "/events", NULL, &o, NULL, NULL));
    assert_int_equal(res->error, DOCKER_ERR_TIMEOUT);
    assert_true(tu_now_ms() - t0 < 5000);
    docker_result_free(res);

    struct docker_call_opts small = {.max_body = 16};
    res = sync_req(docker_call_with(dk, "GET", "/info", NULL, &small, NULL, NULL));
    assert_int_equal(res->error, DOCKER_ERR_TOO_LARGE);
    assert_non_null(strstr(res->message, "16 bytes"));
    docker_result_free(res);

    /* a body that is not JSON where JSON is expected */
    res = sync_req(
        docker_call(dk, "POST", "/services/create", json_string("not a spec"), NULL, NULL));
    assert_int_equal(res->error, DOCKER_ERR_HTTP);
    assert_int_equal(res->status, 400);
    docker_result_free(res);
}

static void test_no_daemon(void **state)
{
    struct docker *d2;
    assert_int_equal(docker_new(loop, "/nonexistent/docker.sock", NULL, &d2), 0);
    struct docker_result *res = NULL;
    assert_int_equal(docker_wait(d2, docker_info(d2, NULL, NULL), &res), 0);
    assert_int_equal(res->error, DOCKER_ERR_TRANSPORT);
    assert_non_null(strstr(res->message, "/nonexistent/docker.sock"));
    assert_non_null(strstr(res->message, "No such file or directory"));
    docker_result_free(res);
    docker_free(d2);
}

static int cleanup_group(void **state)
{
    /* anything a failed test left behind (ours only: our prefix) */
    tu_sh("docker service ls -q --filter label=io.axion.test=%s | xargs -r docker service rm "
          ">/dev/null 2>&1; docker service ls -q --filter name=%s | xargs -r docker service rm "
          ">/dev/null 2>&1; docker network ls -q --filter label=io.axion.test=%s | xargs -r "
          "docker network rm >/dev/null 2>&1; docker config ls -q --filter "
          "label=io.axion.test=%s | xargs -r docker config rm >/dev/null 2>&1; docker secret ls "
          "-q --filter label=io.axion.test=%s | xargs -r docker secret rm >/dev/null 2>&1; true",
          prefix, prefix, prefix, prefix, prefix);
    return 0;
}

int main(void)
{
    snprintf(prefix, sizeof(prefix), "axt-docker-%d", (int)getpid());
    if (tu_sh("\"$AXION_SOURCE_DIR\"/tests/env/docker-up.sh") != 0) {
        fprintf(stderr, "docker-up.sh failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_version_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swarm_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_404_409, setup, teardown),
        cmocka_unit_test_setup_teardown(test_networks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_configs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_containers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_close_in_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_multiplexed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_tty_follow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_and_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_daemon, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, cleanup_group);
}

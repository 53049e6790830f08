#include "agent/collector.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/telemetry.h"
#include "drivers/docker/docker_api.h"
#include "lib/log.h"
#include "lib/util.h"

#define RELIST_S 60.0 /* a full list of containers, besides the events */

struct collector {
    struct ev_loop *loop;
    struct docker *docker;
    struct store *store;
    struct telemetry *telemetry;
    struct docker_events *events;
    ev_timer cycle;
    ev_timer relist;
    bool listing;
    /* a relist in progress: containers inspected so far */
    struct docker_container_info *found;
    size_t n_found;
    size_t pending;
};

static void sink_store(void *ud, const uint8_t *buf, size_t len, const struct telemetry_sample *s)
{
    struct collector *c = ud;
    if (store_put_telemetry(c->store, s->timestamp_ms, buf, len) < 0)
        log_warnx("failed to store the telemetry sample: %s", store_errmsg(c->store));
}

static void on_cycle(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct collector *c = w->data;
    const struct telemetry_sample *s = NULL;
    int r = telemetry_collect(c->telemetry, (int64_t)(ev_now(loop) * 1000.0), &s);
    if (r < 0)
        log_errno(r, "telemetry cycle failed");
    else
        log_debug("telemetry: %zu containers, %llu us CPU", s->n_containers,
                  (unsigned long long)(s->cpu_ns / 1000));
}

static void info_to_tc(const struct docker_container_info *i, struct telemetry_container_info *ret)
{
    *ret = (struct telemetry_container_info){
        .id = i->id,
        .name = i->name,
        .pid = i->pid,
        .service = i->service_name,
        .task = i->task_id,
        .stack = i->stack,
    };
}

static void relist_done(struct collector *c)
{
    struct telemetry_container_info *v = calloc(c->n_found + 1, sizeof(*v));
    if (v) {
        size_t n = 0;
        for (size_t i = 0; i < c->n_found; i++)
            if (c->found[i].running && c->found[i].pid > 0)
                info_to_tc(&c->found[i], &v[n++]);
        int r = telemetry_set_containers(c->telemetry, v, n);
        if (r < 0)
            log_errno(r, "telemetry: failed to update the container set");
        free(v);
    }
    for (size_t i = 0; i < c->n_found; i++)
        docker_container_info_release(&c->found[i]);
    free(c->found);
    c->found = NULL;
    c->n_found = 0;
    c->listing = false;
}

static void on_inspect_for_list(struct docker_result *res, void *ud)
{
    struct collector *c = ud;
    if (res->error == DOCKER_OK) {
        struct docker_container_info info;
        if (docker_container_info_from_json(res->body, &info) == 0)
            c->found[c->n_found++] = info;
    }
    if (--c->pending == 0)
        relist_done(c);
}

static void on_list(struct docker_result *res, void *ud)
{
    struct collector *c = ud;
    if (res->error != DOCKER_OK || !json_is_array(res->body)) {
        log_debug("telemetry: cannot list containers: %s", res->message);
        c->listing = false;
        return;
    }
    size_t n = json_array_size(res->body);
    c->found = calloc(n + 1, sizeof(*c->found));
    if (!c->found) {
        c->listing = false;
        return;
    }
    c->pending = 1; /* held while starting */
    size_t i;
    json_t *item;
    json_array_foreach(res->body, i, item)
    {
        const char *id = json_string_value(json_object_get(item, "Id"));
        if (id && docker_container_inspect(c->docker, id, on_inspect_for_list, c))
            c->pending++;
    }
    if (--c->pending == 0)
        relist_done(c);
}

static void relist(struct collector *c)
{
    if (c->listing)
        return;
    c->listing = true;
    if (!docker_containers_list(c->docker, NULL, false, on_list, c))
        c->listing = false;
}

static void on_relist(struct ev_loop *loop, ev_timer *w, int revents)
{
    relist(w->data);
}

static void on_inspect_started(struct docker_result *res, void *ud)
{
    struct collector *c = ud;
    struct docker_container_info info;
    if (res->error != DOCKER_OK || docker_container_info_from_json(res->body, &info) < 0)
        return;
    if (info.running && info.pid > 0) {
        struct telemetry_container_info tc;
        info_to_tc(&info, &tc);
        int r = telemetry_add_container(c->telemetry, &tc);
        if (r < 0 && r != -ENOENT)
            log_errno(r, "telemetry: cannot follow container %s", info.id);
    }
    docker_container_info_release(&info);
}

static void on_event(json_t *ev, void *ud)
{
    struct collector *c = ud;
    const char *action = json_string_value(json_object_get(ev, "Action"));
    const char *id = json_string_value(json_object_get(json_object_get(ev, "Actor"), "ID"));
    if (!action || !id)
        return;
    if (streq(action, "start") || streq(action, "update"))
        docker_container_inspect(c->docker, id, on_inspect_started, c);
    else if (streq(action, "die") || streq(action, "stop") || streq(action, "destroy"))
        telemetry_remove_container(c->telemetry, id);
}

static void on_events_state(enum docker_events_state state, const char *why, void *ud)
{
    if (state == DOCKER_EVENTS_CONNECTED)
        relist(ud); /* events may have been missed */
}

int collector_new(struct ev_loop *loop, const struct config *cfg, struct docker *docker,
                  struct store *store, struct collector **ret)
{
    struct collector *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    c->docker = docker;
    c->store = store;
    struct telemetry_options o = {
        .cgroup_root = cfg->telemetry.cgroup_root,
        .proc_root = cfg->telemetry.proc_root,
        .agent_id = cfg->agent.id,
    };
    int r = telemetry_new(&o, &c->telemetry);
    if (r < 0) {
        free(c);
        return r;
    }
    struct telemetry_sink sink = {sink_store, c};
    telemetry_add_sink(c->telemetry, &sink);
    double every = (double)cfg->telemetry.interval_ms / 1000.0;
    ev_timer_init(&c->cycle, on_cycle, every, every);
    ev_timer_init(&c->relist, on_relist, RELIST_S, RELIST_S);
    c->cycle.data = c->relist.data = c;
    *ret = c;
    return 0;
}

int collector_start(struct collector *c)
{
    json_t *filters = json_object();
    if (!filters || docker_filters_add(filters, "type", "container") < 0) {
        json_decref(filters);
        return -ENOMEM;
    }
    c->events = docker_events_open(c->docker, filters, on_event, on_events_state, c);
    json_decref(filters);
    if (!c->events)
        return -ENOMEM;
    ev_timer_start(c->loop, &c->cycle);
    ev_timer_start(c->loop, &c->relist);
    return 0;
}

int collector_add_sink(struct collector *c, const struct telemetry_sink *sink)
{
    return telemetry_add_sink(c->telemetry, sink);
}

struct collector *collector_free(struct collector *c)
{
    if (!c)
        return NULL;
    ev_timer_stop(c->loop, &c->cycle);
    ev_timer_stop(c->loop, &c->relist);
    docker_events_close(c->events);
    for (size_t i = 0; i < c->n_found; i++)
        docker_container_info_release(&c->found[i]);
    free(c->found);
    telemetry_free(c->telemetry);
    free(c);
    return NULL;
}

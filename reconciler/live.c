#include "reconciler/live.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/docker/docker_api.h"
#include "lib/util.h"

enum { L_SERVICES, L_NETWORKS, L_CONFIGS, L_SECRETS, L_TASKS, L_MAX };

struct observe {
    struct docker *d;
    live_cb cb;
    void *userdata;
    struct live_state *st;
    int pending;
    int err;
    char errmsg[512];
};

const char *live_label(const json_t *labels, const char *key)
{
    return json_string_value(json_object_get(labels, key));
}

struct live_state *live_state_free(struct live_state *st)
{
    if (!st)
        return NULL;
    free(st->node_id);
    free(st->objs);
    json_decref(st->services);
    json_decref(st->networks);
    json_decref(st->configs);
    json_decref(st->secrets);
    json_decref(st->tasks);
    free(st);
    return NULL;
}

static void fill_obj(struct live_obj *o, enum spec_kind kind, json_t *item)
{
    json_t *spec, *labels;
    if (kind == SPEC_NETWORK) {
        /* networks carry no Spec: the object is its own spec */
        spec = item;
        labels = json_object_get(item, "Labels");
        o->id = json_string_value(json_object_get(item, "Id"));
        o->name = json_string_value(json_object_get(item, "Name"));
    } else {
        spec = json_object_get(item, "Spec");
        labels = json_object_get(spec, "Labels");
        o->id = json_string_value(json_object_get(item, "ID"));
        o->name = json_string_value(json_object_get(spec, "Name"));
        o->version = (uint64_t)json_integer_value(
            json_object_get(json_object_get(item, "Version"), "Index"));
    }
    o->kind = kind;
    o->spec = spec;
    const char *m = live_label(labels, "io.axion.managed");
    o->managed = m && streq(m, "true");
    o->agent = live_label(labels, "io.axion.agent");
    o->stack = live_label(labels, "io.axion.stack");
    if (!o->stack)
        o->stack = live_label(labels, "com.docker.stack.namespace");
    o->hash = live_label(labels, "io.axion.spec-hash");
}

static int build_objs(struct live_state *st)
{
    json_t *lists[] = {[SPEC_NETWORK] = st->networks,
                       [SPEC_CONFIG] = st->configs,
                       [SPEC_SECRET] = st->secrets,
                       [SPEC_SERVICE] = st->services};
    size_t total = 0;
    for (int k = 0; k < _SPEC_KIND_MAX; k++)
        total += json_array_size(lists[k]);
    st->objs = calloc(total ? total : 1, sizeof(*st->objs));
    if (!st->objs)
        return -ENOMEM;
    for (int k = 0; k < _SPEC_KIND_MAX; k++) {
        size_t i;
        json_t *item;
        json_array_foreach(lists[k], i, item)
        {
            struct live_obj *o = &st->objs[st->n_objs];
            fill_obj(o, (enum spec_kind)k, item);
            if (o->name && o->id)
                st->n_objs++;
        }
    }
    return 0;
}

static void observe_done(struct observe *ob)
{
    struct live_state *st = ob->st;
    int r = ob->err;
    if (r == 0)
        r = build_objs(st);
    if (r < 0) {
        st = live_state_free(st);
        if (!*ob->errmsg)
            snprintf(ob->errmsg, sizeof(ob->errmsg), "%s", strerror(-r));
    }
    ob->cb(r, st, r < 0 ? ob->errmsg : NULL, ob->userdata);
    free(ob);
}

struct list_ctx {
    struct observe *ob;
    json_t **slot;
};

static void on_list(struct docker_result *res, void *userdata)
{
    struct list_ctx *lc = userdata;
    struct observe *ob = lc->ob;
    if (res->error != DOCKER_OK) {
        if (!ob->err) {
            ob->err = -EIO;
            snprintf(ob->errmsg, sizeof(ob->errmsg), "%s: %s", res->what, res->message);
        }
    } else if (!json_is_array(res->body)) {
        if (!ob->err) {
            ob->err = -EBADMSG;
            snprintf(ob->errmsg, sizeof(ob->errmsg), "%s: expected a JSON array", res->what);
        }
    } else {
        *lc->slot = docker_result_take_body(res);
    }
    free(lc);
    if (--ob->pending == 0)
        observe_done(ob);
}

static int start_list(struct observe *ob, int which)
{
    struct live_state *st = ob->st;
    json_t **slots[L_MAX] = {&st->services, &st->networks, &st->configs, &st->secrets, &st->tasks};
    struct list_ctx *lc = malloc(sizeof(*lc));
    if (!lc)
        return -ENOMEM;
    *lc = (struct list_ctx){ob, slots[which]};
    struct docker_request *req = NULL;
    switch (which) {
    case L_SERVICES:
        req = docker_services_list(ob->d, NULL, true, on_list, lc);
        break;
    case L_NETWORKS:
        req = docker_networks_list(ob->d, NULL, on_list, lc);
        break;
    case L_CONFIGS:
        req = docker_configs_list(ob->d, NULL, on_list, lc);
        break;
    case L_SECRETS:
        req = docker_secrets_list(ob->d, NULL, on_list, lc);
        break;
    case L_TASKS:
        req = docker_tasks_list(ob->d, NULL, on_list, lc);
        break;
    }
    if (!req) {
        free(lc);
        return -ENOMEM;
    }
    ob->pending++;
    return 0;
}

static void on_info(struct docker_result *res, void *userdata)
{
    struct observe *ob = userdata;
    if (res->error != DOCKER_OK) {
        ob->err = -EIO;
        snprintf(ob->errmsg, sizeof(ob->errmsg), "%s: %s", res->what, res->message);
        observe_done(ob);
        return;
    }
    json_t *swarm = json_object_get(res->body, "Swarm");
    const char *state = json_string_value(json_object_get(swarm, "LocalNodeState"));
    const char *node = json_string_value(json_object_get(swarm, "NodeID"));
    ob->st->swarm_active = state && streq(state, "active");
    ob->st->is_manager =
        ob->st->swarm_active && json_is_true(json_object_get(swarm, "ControlAvailable"));
    if (node && *node && !(ob->st->node_id = strdup(node)))
        ob->err = -ENOMEM;
    if (!ob->st->is_manager || ob->err) {
        /* Only a manager can list services: a worker has nothing more to read. */
        observe_done(ob);
        return;
    }
    ob->pending = 1; /* held while starting, so no completion runs early */
    for (int i = 0; i < L_MAX && !ob->err; i++)
        if (start_list(ob, i) < 0)
            ob->err = -ENOMEM;
    if (--ob->pending == 0)
        observe_done(ob);
}

int live_observe(struct docker *d, live_cb cb, void *userdata)
{
    struct observe *ob = calloc(1, sizeof(*ob));
    if (!ob)
        return -ENOMEM;
    ob->st = calloc(1, sizeof(*ob->st));
    if (!ob->st) {
        free(ob);
        return -ENOMEM;
    }
    ob->d = d;
    ob->cb = cb;
    ob->userdata = userdata;
    if (!docker_info(d, on_info, ob)) {
        live_state_free(ob->st);
        free(ob);
        return -ENOMEM;
    }
    return 0;
}

const struct live_obj *live_find(const struct live_state *st, enum spec_kind kind, const char *name)
{
    for (size_t i = 0; i < st->n_objs; i++)
        if (st->objs[i].kind == kind && streq(st->objs[i].name, name))
            return &st->objs[i];
    return NULL;
}

json_t *live_service_json(const struct live_state *st, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(st->services, i, s)
    {
        const char *n = json_string_value(json_object_get(json_object_get(s, "Spec"), "Name"));
        if (n && streq(n, name))
            return s;
    }
    return NULL;
}

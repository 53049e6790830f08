#include "reconciler/live.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/docker/docker_api.h"
#include "lib/array.h"
#include "lib/util.h"

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
    live_state_trim(st);
    free(st->node_id);
    free(st->swarm_state);
    free(st->swarm_error);
    free(st->node_addr);
    json_decref(st->remote_managers);
    for (int i = 0; i < _LIVE_MAX; i++)
        free(st->raw[i]);
    free(st);
    return NULL;
}

void live_state_trim(struct live_state *st)
{
    free(st->objs);
    st->objs = NULL;
    st->n_objs = 0;
    json_t **lists[] = {&st->services, &st->networks, &st->configs, &st->secrets, &st->tasks};
    for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
        json_decref(*lists[i]);
        *lists[i] = NULL;
    }
    st->parsed = false;
}

/* One top-level item of a JSON array's text. */
struct item {
    const char *p;
    size_t n;
};

/* Splits the text of a JSON array into its top-level items, following strings (and their
 * escapes) and nesting; no value is decoded. 0, -EBADMSG when the text is not a balanced
 * array, -ENOMEM. */
static int split_items(const char *s, size_t n, struct item **ret, size_t *ret_n, size_t *ret_cap)
{
    size_t i = 0, depth = 0, start = 0;
    bool in_str = false, esc = false;
    *ret_n = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
        i++;
    if (i == n || s[i] != '[')
        return -EBADMSG;
    for (i++; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (depth == 0 && (c == ' ' || c == '\n' || c == '\r' || c == '\t'))
            continue;
        if (depth == 0 && (c == ',' || c == ']')) {
            if (start) {
                size_t end = i;
                while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\n' ||
                                       s[end - 1] == '\r' || s[end - 1] == '\t'))
                    end--;
                struct item *it = ARRAY_PUSH(ret, ret_n, ret_cap);
                if (!it)
                    return -ENOMEM;
                *it = (struct item){s + start, end - start};
            }
            start = 0;
            if (c == ']')
                return 0;
            continue;
        }
        if (depth == 0 && !start)
            start = i;
        if (c == '"')
            in_str = true;
        else if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']') {
            if (depth == 0)
                return -EBADMSG;
            depth--;
        }
    }
    return -EBADMSG;
}

static int item_cmp(const void *x, const void *y)
{
    const struct item *a = x, *b = y;
    if (a->n != b->n)
        return a->n < b->n ? -1 : 1;
    return memcmp(a->p, b->p, a->n);
}

/* Whether two JSON arrays hold the same items, in any order: the Engine lists some objects
 * (networks) in an order of its own that changes from one answer to the next. */
static bool same_items(const char *a, size_t alen, const char *b, size_t blen)
{
    struct item *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0, cx = 0, cy = 0;
    bool same = split_items(a, alen, &x, &nx, &cx) == 0 &&
                split_items(b, blen, &y, &ny, &cy) == 0 && nx == ny;
    if (same && nx) {
        qsort(x, nx, sizeof(*x), item_cmp);
        qsort(y, ny, sizeof(*y), item_cmp);
        for (size_t i = 0; i < nx && same; i++)
            same = item_cmp(&x[i], &y[i]) == 0;
    }
    free(x);
    free(y);
    return same;
}

bool live_same(const struct live_state *a, const struct live_state *b)
{
    if (a->swarm_active != b->swarm_active || a->is_manager != b->is_manager ||
        !streq(a->node_id ? a->node_id : "", b->node_id ? b->node_id : "") ||
        !streq(a->swarm_state ? a->swarm_state : "", b->swarm_state ? b->swarm_state : ""))
        return false;
    for (int i = 0; i < _LIVE_MAX; i++) {
        if (!a->raw[i] != !b->raw[i])
            return false;
        if (!a->raw[i] ||
            (a->raw_len[i] == b->raw_len[i] && memcmp(a->raw[i], b->raw[i], a->raw_len[i]) == 0))
            continue;
        if (!same_items(a->raw[i], a->raw_len[i], b->raw[i], b->raw_len[i]))
            return false;
    }
    return true;
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

static const char *const list_names[_LIVE_MAX] = {
    [LIVE_SERVICES] = "GET /services", [LIVE_NETWORKS] = "GET /networks",
    [LIVE_CONFIGS] = "GET /configs",   [LIVE_SECRETS] = "GET /secrets",
    [LIVE_TASKS] = "GET /tasks",
};

int live_parse(struct live_state *st, char *err, size_t errlen)
{
    if (st->parsed)
        return 0;
    json_t **slots[_LIVE_MAX] = {&st->services, &st->networks, &st->configs, &st->secrets,
                                 &st->tasks};
    for (int i = 0; i < _LIVE_MAX; i++) {
        if (!st->raw[i])
            continue; /* not read (not a manager): stays NULL, as an empty list */
        json_error_t je;
        json_t *j = json_loadb(st->raw[i], st->raw_len[i], 0, &je);
        if (!json_is_array(j)) {
            json_decref(j);
            live_state_trim(st);
            snprintf(err, errlen, "%s: expected a JSON array%s%s", list_names[i], j ? "" : ": ",
                     j ? "" : je.text);
            return -EBADMSG;
        }
        *slots[i] = j;
    }
    int r = build_objs(st);
    if (r < 0) {
        live_state_trim(st);
        snprintf(err, errlen, "out of memory");
        return r;
    }
    st->parsed = true;
    return 0;
}

static void observe_done(struct observe *ob)
{
    struct live_state *st = ob->st;
    int r = ob->err;
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
    enum live_list which;
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
    } else {
        /* Kept as received: the pass compares before it parses. */
        char *raw = malloc(res->raw_len + 1);
        if (raw) {
            memcpy(raw, res->raw, res->raw_len);
            raw[res->raw_len] = '\0';
            ob->st->raw[lc->which] = raw;
            ob->st->raw_len[lc->which] = res->raw_len;
        } else if (!ob->err) {
            ob->err = -ENOMEM;
        }
    }
    free(lc);
    if (--ob->pending == 0)
        observe_done(ob);
}

static int start_list(struct observe *ob, enum live_list which)
{
    static const struct docker_call_opts raw = {.raw_body = true};
    static const enum spec_kind kinds[_LIVE_MAX] = {
        [LIVE_SERVICES] = SPEC_SERVICE,
        [LIVE_NETWORKS] = SPEC_NETWORK,
        [LIVE_CONFIGS] = SPEC_CONFIG,
        [LIVE_SECRETS] = SPEC_SECRET,
    };
    struct list_ctx *lc = malloc(sizeof(*lc));
    if (!lc)
        return -ENOMEM;
    *lc = (struct list_ctx){ob, which};
    struct docker_request *req =
        which == LIVE_TASKS ? docker_tasks_list(ob->d, NULL, &raw, on_list, lc)
                            : docker_object_list(ob->d, kinds[which], NULL, &raw, on_list, lc);
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
    const char *error = json_string_value(json_object_get(swarm, "Error"));
    const char *addr = json_string_value(json_object_get(swarm, "NodeAddr"));
    if (!(ob->st->swarm_state = strdup(state ? state : "")) ||
        !(ob->st->swarm_error = strdup(error ? error : "")) ||
        !(ob->st->node_addr = strdup(addr ? addr : "")))
        ob->err = -ENOMEM;
    json_t *rm = json_object_get(swarm, "RemoteManagers");
    if (json_is_array(rm))
        ob->st->remote_managers = json_incref(rm);
    ob->st->managers = json_integer_value(json_object_get(swarm, "Managers"));
    ob->st->nodes = json_integer_value(json_object_get(swarm, "Nodes"));
    if (!ob->st->is_manager || ob->err) {
        /* Only a manager can list services: a worker has nothing more to read. */
        observe_done(ob);
        return;
    }
    ob->pending = 1; /* held while starting, so no completion runs early */
    for (int i = 0; i < _LIVE_MAX && !ob->err; i++)
        if (start_list(ob, (enum live_list)i) < 0)
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

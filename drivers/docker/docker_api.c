#include "drivers/docker/docker_api.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/util.h"

int docker_filters_add(json_t *filters, const char *key, const char *value)
{
    if (!json_is_object(filters))
        return -EINVAL;
    json_t *a = json_object_get(filters, key);
    if (!a) {
        a = json_array();
        if (!a || json_object_set_new(filters, key, a) < 0)
            return -ENOMEM;
    }
    if (!json_is_array(a))
        return -EINVAL;
    return json_array_append_new(a, json_string(value)) < 0 ? -ENOMEM : 0;
}

/* Starts METHOD with a path made from fmt; "%s" arguments are used as given, so escape them
 * first (escape()). Frees body on failure. */
static struct docker_request *callf(struct docker *d, const char *method, json_t *body,
                                    docker_cb cb, void *ud, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static struct docker_request *callf(struct docker *d, const char *method, json_t *body,
                                    docker_cb cb, void *ud, const char *fmt, ...)
{
    _cleanup_free_ char *path = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&path, fmt, ap);
    va_end(ap);
    if (n < 0) {
        json_decref(body);
        return NULL;
    }
    return docker_call(d, method, path, body, cb, ud);
}

static void curl_freep(char **p)
{
    curl_free(*p);
}
#define _cleanup_curl_free_ _cleanup_(curl_freep)

static char *escape(const char *s)
{
    return s ? curl_easy_escape(NULL, s, 0) : NULL;
}

/* "?filters=<escaped JSON>" (or "" with no filters); NULL when out of memory. */
static char *filters_query(const json_t *filters, const char *sep)
{
    char *q = NULL;
    if (!filters || json_object_size(filters) == 0)
        return strdup("");
    _cleanup_free_ char *f = json_dumps(filters, JSON_COMPACT | JSON_SORT_KEYS);
    _cleanup_curl_free_ char *e = f ? curl_easy_escape(NULL, f, 0) : NULL;
    if (!e || asprintf(&q, "%sfilters=%s", sep, e) < 0)
        return NULL;
    return q;
}

static struct docker_request *list_with(struct docker *d, const char *path, const char *query,
                                        const json_t *filters, const struct docker_call_opts *opts,
                                        docker_cb cb, void *ud)
{
    _cleanup_free_ char *q = filters_query(filters, *query ? "&" : "?");
    _cleanup_free_ char *full = NULL;
    if (!q || asprintf(&full, "%s%s%s", path, query, q) < 0)
        return NULL;
    return docker_call_with(d, "GET", full, NULL, opts, cb, ud);
}

static struct docker_request *on_id(struct docker *d, const char *method, const char *what,
                                    const char *id, const char *suffix, docker_cb cb, void *ud)
{
    _cleanup_curl_free_ char *e = escape(id);
    if (!e)
        return NULL;
    return callf(d, method, NULL, cb, ud, "%s/%s%s", what, e, suffix);
}

struct docker_request *docker_ping(struct docker *d, docker_cb cb, void *ud)
{
    return docker_call(d, "GET", "/_ping", NULL, cb, ud);
}

struct docker_request *docker_version(struct docker *d, docker_cb cb, void *ud)
{
    return docker_call(d, "GET", "/version", NULL, cb, ud);
}

struct docker_request *docker_info(struct docker *d, docker_cb cb, void *ud)
{
    return docker_call(d, "GET", "/info", NULL, cb, ud);
}

struct docker_request *docker_swarm_inspect(struct docker *d, docker_cb cb, void *ud)
{
    return docker_call(d, "GET", "/swarm", NULL, cb, ud);
}

struct docker_request *docker_swarm_init(struct docker *d, json_t *request, docker_cb cb, void *ud)
{
    return docker_call(d, "POST", "/swarm/init", request, cb, ud);
}

struct docker_request *docker_swarm_join(struct docker *d, json_t *request, docker_cb cb, void *ud)
{
    return docker_call(d, "POST", "/swarm/join", request, cb, ud);
}

struct docker_request *docker_swarm_leave(struct docker *d, bool force, docker_cb cb, void *ud)
{
    return docker_call(d, "POST", force ? "/swarm/leave?force=true" : "/swarm/leave", NULL, cb, ud);
}

struct docker_request *docker_nodes_list(struct docker *d, const json_t *filters, docker_cb cb,
                                         void *ud)
{
    return list_with(d, "/nodes", "", filters, NULL, cb, ud);
}

struct docker_request *docker_node_inspect(struct docker *d, const char *id, docker_cb cb, void *ud)
{
    return on_id(d, "GET", "/nodes", id, "", cb, ud);
}

/* ---- the objects a stack is made of: one table ------------------------------------------- */

static const struct {
    const char *collection; /* "/networks": the list, and the prefix of the others */
    const char *list_query; /* what a list always asks for, or "" */
    bool can_update;
} objects[_SPEC_KIND_MAX] = {
    [SPEC_NETWORK] = {"/networks", "", false},
    [SPEC_CONFIG] = {"/configs", "", true},
    [SPEC_SECRET] = {"/secrets", "", true},
    [SPEC_SERVICE] = {"/services", "?status=true", true},
};

static bool kind_ok(enum spec_kind kind)
{
    return (unsigned)kind < _SPEC_KIND_MAX;
}

struct docker_request *docker_object_list(struct docker *d, enum spec_kind kind,
                                          const json_t *filters,
                                          const struct docker_call_opts *opts, docker_cb cb,
                                          void *ud)
{
    if (!kind_ok(kind))
        return NULL;
    return list_with(d, objects[kind].collection, objects[kind].list_query, filters, opts, cb, ud);
}

struct docker_request *docker_object_inspect(struct docker *d, enum spec_kind kind, const char *id,
                                             docker_cb cb, void *ud)
{
    if (!kind_ok(kind))
        return NULL;
    return on_id(d, "GET", objects[kind].collection, id, "", cb, ud);
}

struct docker_request *docker_object_create(struct docker *d, enum spec_kind kind, json_t *spec,
                                            docker_cb cb, void *ud)
{
    if (!kind_ok(kind)) {
        json_decref(spec);
        return NULL;
    }
    return callf(d, "POST", spec, cb, ud, "%s/create", objects[kind].collection);
}

struct docker_request *docker_object_update(struct docker *d, enum spec_kind kind, const char *id,
                                            uint64_t version, json_t *spec, docker_cb cb, void *ud)
{
    _cleanup_curl_free_ char *e = kind_ok(kind) && objects[kind].can_update ? escape(id) : NULL;
    if (!e) {
        json_decref(spec);
        return NULL;
    }
    return callf(d, "POST", spec, cb, ud, "%s/%s/update?version=%llu", objects[kind].collection, e,
                 (unsigned long long)version);
}

struct docker_request *docker_object_remove(struct docker *d, enum spec_kind kind, const char *id,
                                            docker_cb cb, void *ud)
{
    if (!kind_ok(kind))
        return NULL;
    return on_id(d, "DELETE", objects[kind].collection, id, "", cb, ud);
}

struct docker_request *docker_tasks_list(struct docker *d, const json_t *filters,
                                         const struct docker_call_opts *opts, docker_cb cb,
                                         void *ud)
{
    return list_with(d, "/tasks", "", filters, opts, cb, ud);
}

struct docker_request *docker_containers_list(struct docker *d, const json_t *filters, bool all,
                                              docker_cb cb, void *ud)
{
    _cleanup_free_ char *q = filters_query(filters, "&");
    if (!q)
        return NULL;
    return callf(d, "GET", NULL, cb, ud, "/containers/json?all=%s%s", all ? "true" : "false", q);
}

struct docker_request *docker_container_inspect(struct docker *d, const char *id, docker_cb cb,
                                                void *ud)
{
    return on_id(d, "GET", "/containers", id, "/json", cb, ud);
}

bool docker_result_is_conflict(const struct docker_result *res)
{
    if (res->error != DOCKER_ERR_HTTP)
        return false;
    return res->status == 409 || strstr(res->message, "update out of sequence") != NULL;
}

bool docker_result_is_not_found(const struct docker_result *res)
{
    return res->error == DOCKER_ERR_HTTP && res->status == 404;
}

static int dup_label(const json_t *labels, const char *key, char **ret)
{
    const char *v = json_string_value(json_object_get(labels, key));
    if (!v)
        return 0;
    *ret = strdup(v);
    return *ret ? 0 : -ENOMEM;
}

int docker_container_info_from_json(const json_t *j, struct docker_container_info *ret)
{
    struct docker_container_info c = {0};
    const char *id = json_string_value(json_object_get(j, "Id"));
    if (!id || !*id)
        return -EBADMSG;

    /* list entries: Names ["/x"], Labels, State "running"; inspect: Name "/x", Config.Labels,
     * State {Running, Pid} */
    const char *name = json_string_value(json_object_get(j, "Name"));
    if (!name)
        name = json_string_value(json_array_get(json_object_get(j, "Names"), 0));
    json_t *labels = json_object_get(j, "Labels");
    if (!json_is_object(labels))
        labels = json_object_get(json_object_get(j, "Config"), "Labels");
    json_t *state = json_object_get(j, "State");
    if (json_is_object(state)) {
        c.running = json_is_true(json_object_get(state, "Running"));
        json_int_t pid = json_integer_value(json_object_get(state, "Pid"));
        c.pid = pid > 0 && pid < (1 << 30) ? (int)pid : 0;
    } else {
        const char *s = json_string_value(state);
        c.running = s && streq(s, "running");
    }

    int r = -ENOMEM;
    c.id = strdup(id);
    c.name = strdup(name ? (name[0] == '/' ? name + 1 : name) : "");
    c.labels = json_is_object(labels) ? json_deep_copy(labels) : json_object();
    if (!c.id || !c.name || !c.labels)
        goto fail;
    if (dup_label(c.labels, "com.docker.swarm.service.id", &c.service_id) < 0 ||
        dup_label(c.labels, "com.docker.swarm.service.name", &c.service_name) < 0 ||
        dup_label(c.labels, "com.docker.swarm.task.id", &c.task_id) < 0 ||
        dup_label(c.labels, "com.docker.stack.namespace", &c.stack) < 0)
        goto fail;
    *ret = c;
    return 0;
fail:
    docker_container_info_release(&c);
    return r;
}

void docker_container_info_release(struct docker_container_info *c)
{
    free(c->id);
    free(c->name);
    free(c->service_id);
    free(c->service_name);
    free(c->task_id);
    free(c->stack);
    json_decref(c->labels);
    *c = (struct docker_container_info){0};
}

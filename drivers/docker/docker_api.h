/* Typed calls of the Docker Engine API, built on docker_call() (drivers/docker/docker.h).
 * Each starts one request and returns it (NULL only when out of memory); the callback gets
 * the answer's JSON in res->body exactly as the Engine API reference describes it. Bodies
 * passed in (specs) are stolen; filters are borrowed: a JSON object of arrays of strings,
 * {"label": ["a=b"]}, built with docker_filters_add(). Ids and names are escaped here. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "compose/spec.h"
#include "drivers/docker/docker.h"

/* Adds value under key to a filters object: {"key": [..., value]}. 0 or -ENOMEM/-EINVAL. */
int docker_filters_add(json_t *filters, const char *key, const char *value);

struct docker_request *docker_ping(struct docker *d, docker_cb cb, void *ud);
struct docker_request *docker_version(struct docker *d, docker_cb cb, void *ud);
struct docker_request *docker_info(struct docker *d, docker_cb cb, void *ud);

/* Swarm membership. init/join take the request bodies of POST /swarm/init and /swarm/join. */
struct docker_request *docker_swarm_inspect(struct docker *d, docker_cb cb, void *ud);
struct docker_request *docker_swarm_init(struct docker *d, json_t *request, docker_cb cb, void *ud);
struct docker_request *docker_swarm_join(struct docker *d, json_t *request, docker_cb cb, void *ud);
struct docker_request *docker_swarm_leave(struct docker *d, bool force, docker_cb cb, void *ud);

struct docker_request *docker_nodes_list(struct docker *d, const json_t *filters, docker_cb cb,
                                         void *ud);
struct docker_request *docker_node_inspect(struct docker *d, const char *id, docker_cb cb,
                                           void *ud);

/* ---- the objects a stack is made of -------------------------------------------------------
 *
 * One table (docker_api.c) from the kind (the compiler's enum spec_kind, the one name for the
 * kinds in the agent) to its Engine paths; ID stands for the escaped id or name:
 *
 *   kind      list               inspect            create                  update remove network
 * GET /networks      GET /networks/ID   POST /networks/create   - DELETE /networks/ID config    GET
 * /configs       GET /configs/ID    POST /configs/create    POST /configs/ID/update?version=V
 * DELETE /configs/ID secret    GET /secrets       GET /secrets/ID    POST /secrets/create    POST
 * /secrets/ID/update?version=V    DELETE /secrets/ID service   GET /services?status=true  GET
 * /services/ID  POST /services/create  POST /services/ID/update?version=V  DELETE /services/ID
 *
 * The services list always asks for ServiceStatus (running and desired task counts). A create
 * answers {"ID": ...} (services add "Warnings": see docker_result_warnings()); networks answer
 * "Id". version is the object's Version.Index as last seen: a stale one fails with HTTP 500
 * and "update out of sequence" (DOCKER_ERR_HTTP; see docker_result_is_conflict()). Networks
 * cannot be updated: docker_object_update() returns NULL for them (as for out of memory; the
 * spec is freed). opts (may be NULL) are the call's (docker_call_with()), e.g. raw_body for a
 * caller that compares answers before it parses them. */
struct docker_request *docker_object_list(struct docker *d, enum spec_kind kind,
                                          const json_t *filters,
                                          const struct docker_call_opts *opts, docker_cb cb,
                                          void *ud);
struct docker_request *docker_object_inspect(struct docker *d, enum spec_kind kind, const char *id,
                                             docker_cb cb, void *ud);
struct docker_request *docker_object_create(struct docker *d, enum spec_kind kind, json_t *spec,
                                            docker_cb cb, void *ud);
struct docker_request *docker_object_update(struct docker *d, enum spec_kind kind, const char *id,
                                            uint64_t version, json_t *spec, docker_cb cb, void *ud);
struct docker_request *docker_object_remove(struct docker *d, enum spec_kind kind, const char *id,
                                            docker_cb cb, void *ud);

struct docker_request *docker_tasks_list(struct docker *d, const json_t *filters,
                                         const struct docker_call_opts *opts, docker_cb cb,
                                         void *ud);

/* all: stopped containers too. */
struct docker_request *docker_containers_list(struct docker *d, const json_t *filters, bool all,
                                              docker_cb cb, void *ud);
struct docker_request *docker_container_inspect(struct docker *d, const char *id, docker_cb cb,
                                                void *ud);

/* Whether a failed answer is Docker's "update out of sequence" or another conflict (409):
 * the object changed since it was read; read it again and retry. */
bool docker_result_is_conflict(const struct docker_result *res);
/* Whether a failed answer says the object does not exist (404). */
bool docker_result_is_not_found(const struct docker_result *res);

/* What the telemetry needs of a container, from an entry of GET /containers/json or the
 * answer of GET /containers/{id}/json (pid is 0 in the former: only inspect has it). */
struct docker_container_info {
    char *id;
    char *name; /* without the leading slash */
    int pid;
    bool running;
    char *service_id;   /* com.docker.swarm.service.id, or NULL */
    char *service_name; /* com.docker.swarm.service.name */
    char *task_id;      /* com.docker.swarm.task.id */
    char *stack;        /* com.docker.stack.namespace */
    json_t *labels;     /* all labels (owned), never NULL on success */
};

/* 0, -EBADMSG (no Id), or -ENOMEM. */
int docker_container_info_from_json(const json_t *j, struct docker_container_info *ret);
void docker_container_info_release(struct docker_container_info *c);

/* live: what the Swarm holds right now, read through the Docker driver. One observation is a
 * GET /info, then (on a manager) the services (with their task counts), networks, configs,
 * secrets and tasks lists in parallel. Read-only: never a mutating call.
 *
 * The lists arrive unparsed: a pass first compares them with the previous pass's
 * (live_same(), byte for byte; the Engine answers an unchanged Swarm with the same bytes) and
 * parses them (live_parse()) only when it needs to look inside. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "drivers/docker/docker.h"
#include "reconciler/plan.h"

enum live_list { LIVE_SERVICES, LIVE_NETWORKS, LIVE_CONFIGS, LIVE_SECRETS, LIVE_TASKS, _LIVE_MAX };

struct live_state {
    bool swarm_active;
    bool is_manager;
    char *node_id;
    /* The node's membership as GET /info says (Swarm.*): */
    char *swarm_state;       /* LocalNodeState: inactive, pending, active, error, locked */
    char *swarm_error;       /* Error, "" when none */
    char *node_addr;         /* NodeAddr, "" when none */
    json_t *remote_managers; /* RemoteManagers: [{NodeID, Addr}] (owned), NULL when none */
    int64_t managers, nodes; /* Managers, Nodes (a manager's counts; else 0) */
    /* The lists' answers as received (owned; NULL when not read: not a manager). */
    char *raw[_LIVE_MAX];
    size_t raw_len[_LIVE_MAX];
    /* After live_parse(): */
    bool parsed;
    struct live_obj *objs; /* borrow from the JSON lists below */
    size_t n_objs;
    json_t *services; /* the parsed answers, owned */
    json_t *networks;
    json_t *configs;
    json_t *secrets;
    json_t *tasks;
};

/* r is 0 or a negative errno with err saying what failed. st is owned by the callee of cb
 * (free it with live_state_free) and is NULL on failure. */
typedef void (*live_cb)(int r, struct live_state *st, const char *err, void *userdata);

/* Starts one observation; cb is called once, from the loop. 0 or -ENOMEM. */
int live_observe(struct docker *d, live_cb cb, void *userdata);
struct live_state *live_state_free(struct live_state *st);

/* Parses the lists and builds objs (once; again is a no-op). 0, -EBADMSG with err saying which
 * answer is not a JSON array, or -ENOMEM. */
int live_parse(struct live_state *st, char *err, size_t errlen);
/* Frees what live_parse() built, keeping what live_same() compares. */
void live_state_trim(struct live_state *st);
/* Whether two observations saw the same Swarm: the same membership (state, role, node) and the
 * same lists. */
bool live_same(const struct live_state *a, const struct live_state *b);

/* Convenience lookups on a parsed observation. */
const struct live_obj *live_find(const struct live_state *st, enum spec_kind kind,
                                 const char *name);
/* The raw JSON of a service by name (borrowed), or NULL. */
json_t *live_service_json(const struct live_state *st, const char *name);
/* Label value of a JSON labels object, or NULL. */
const char *live_label(const json_t *labels, const char *key);

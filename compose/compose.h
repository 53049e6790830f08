/* The compose model: a Compose file (version 3.x, the format `docker stack deploy` reads) parsed
 * with libyaml, interpolated with the variables supplied with the manifest, validated, and kept
 * as typed C structures for spec_convert() (Engine API objects) and policy_check().
 *
 * Everything a project holds lives in one arena and is freed by compose_project_free().
 * Errors name file:line:col, the path in the document and what was expected:
 *   compose.yml:14:7: services.web.deploy.replicas: expected an integer, got "two"
 * See docs/COMPOSE.md for the keys, the interpolation rules and the limits. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compose/compose_error.h" /* struct compose_error, compose_error_set() */
#include "compose/compose_vars.h"  /* struct compose_var(s), compose_vars_get() */

struct compose_index;

/* Limits on what a manifest may cost us; every one has a clear error. */
#define COMPOSE_MAX_BYTES    (1024 * 1024)      /* manifest text */
#define COMPOSE_MAX_DEPTH    64                 /* nesting of maps and lists, aliases expanded */
#define COMPOSE_MAX_NODES    200000             /* YAML nodes, aliases and merge keys expanded */
#define COMPOSE_MAX_TEXT     (16 * 1024 * 1024) /* bytes of text, aliases and merge keys expanded */
#define COMPOSE_MAX_SERVICES 500
#define COMPOSE_MAX_OBJECTS  1000              /* networks, volumes, secrets, configs: each */
#define COMPOSE_MAX_EXPANDED (8 * 1024 * 1024) /* bytes produced by interpolation, in total */
#define COMPOSE_MAX_VAR_NAME 256
#define COMPOSE_MAX_PORTS    65536 /* published ports after expanding ranges, in all services */
#define COMPOSE_MAX_FILES    (64 * 1024 * 1024) /* bytes of attached files one conversion reads */
#define COMPOSE_MAX_REPLICAS 100000             /* deploy.replicas, and what `scale` may set */

/* ---- the model ------------------------------------------------------------------------- */

struct compose_pos {
    unsigned line, col;
};

struct compose_strv {
    char **v;
    size_t n;
};

/* An ordered map of strings; value NULL means "key without a value" (environment only). */
struct compose_kv {
    char *key;
    char *value;
};
struct compose_map {
    struct compose_kv *v;
    size_t n;
    bool set; /* the key was present in the file (even when empty) */
};

struct compose_duration {
    bool set;
    int64_t ns;
};

struct compose_u64 {
    bool set;
    uint64_t v;
};

enum compose_mode {
    COMPOSE_MODE_REPLICATED,
    COMPOSE_MODE_GLOBAL,
    COMPOSE_MODE_REPLICATED_JOB,
    COMPOSE_MODE_GLOBAL_JOB,
};

struct compose_port {
    char *mode;     /* "ingress", "host" or NULL (long syntax without mode) */
    char *protocol; /* "tcp", "udp", "sctp" or NULL */
    uint32_t target;
    uint32_t published; /* 0: none */
    struct compose_pos pos;
};

struct compose_mount {
    char *type; /* volume, bind, tmpfs, npipe */
    char *source;
    char *target;
    bool read_only;
    char *consistency;
    bool has_bind;
    char *bind_propagation;
    bool has_volume;
    bool volume_nocopy;
    bool has_tmpfs;
    int64_t tmpfs_size;
    struct compose_pos pos;
};

/* A service's reference to a secret or config. */
struct compose_file_ref {
    char *source;
    char *target; /* NULL: same as source */
    char *uid;
    char *gid;
    bool has_mode;
    uint32_t mode;
    struct compose_pos pos;
};

struct compose_service_network {
    char *name; /* key in the top-level networks (or "default") */
    bool has_aliases;
    struct compose_strv aliases;
    char *ipv4_address;
    char *ipv6_address;
    struct compose_pos pos;
};

struct compose_ulimit {
    char *name;
    int64_t soft;
    int64_t hard;
};

struct compose_update_config {
    bool set;
    struct compose_u64 parallelism;
    int64_t delay_ns;
    char *failure_action;
    int64_t monitor_ns;
    double max_failure_ratio;
    char *order;
};

struct compose_resource {
    bool set;
    char *cpus; /* as written, e.g. "0.5" */
    int64_t memory;
    int64_t pids;
    /* reservations only */
    struct compose_generic_resource {
        char *kind;
        int64_t value;
    } * generic;
    size_t n_generic;
};

struct compose_restart_policy {
    bool set;
    char *condition;
    struct compose_duration delay;
    struct compose_u64 max_attempts;
    struct compose_duration window;
};

struct compose_healthcheck {
    bool set;
    bool disable;
    struct compose_strv test;
    struct compose_duration timeout;
    struct compose_duration interval;
    struct compose_duration start_period;
    struct compose_u64 retries;
};

struct compose_logging {
    bool set;
    char *driver;
    struct compose_map options;
};

struct compose_deploy {
    enum compose_mode mode;
    struct compose_u64 replicas;
    struct compose_map labels;
    struct compose_update_config update_config;
    struct compose_update_config rollback_config;
    struct compose_resource limits;
    struct compose_resource reservations;
    struct compose_restart_policy restart_policy;
    struct compose_strv constraints;
    struct compose_strv preferences; /* spread descriptors */
    uint64_t max_replicas_per_node;
    char *endpoint_mode;
};

struct compose_service {
    char *name;
    struct compose_pos pos;

    char *image;
    struct compose_strv command;    /* compose `command` → ContainerSpec.Args */
    struct compose_strv entrypoint; /* compose `entrypoint` → ContainerSpec.Command */
    struct compose_map environment; /* NULL value: take it from the variables */
    struct compose_strv env_file;
    struct compose_pos env_file_pos;
    struct compose_map labels; /* container labels */
    char *hostname;
    struct compose_strv extra_hosts; /* "host:ip" */
    struct compose_strv dns;
    bool has_dns;
    struct compose_strv dns_search;
    bool has_dns_search;
    struct compose_healthcheck healthcheck;
    char *working_dir;
    char *user;
    struct compose_mount *mounts;
    size_t n_mounts;
    struct compose_duration stop_grace_period;
    char *stop_signal;
    bool tty;
    bool stdin_open;
    bool read_only;
    bool has_init;
    bool init;
    struct compose_map sysctls;
    struct compose_strv cap_add;
    struct compose_strv cap_drop;
    struct compose_ulimit *ulimits;
    size_t n_ulimits;
    struct compose_logging logging;
    struct compose_file_ref *secrets;
    size_t n_secrets;
    struct compose_file_ref *configs;
    size_t n_configs;
    struct compose_port *ports;
    size_t n_ports;
    struct compose_service_network *networks; /* none: the stack's default network */
    size_t n_networks;
    char *isolation;
    char *restart; /* fallback when deploy.restart_policy is not set */
    struct compose_deploy deploy;

    /* Ignored by Swarm (a warning), kept for policy_check(). */
    bool privileged;
    char *network_mode;
    char *pid;
    char *ipc;
    char *userns_mode;
    char *cgroupns_mode;
    char *cgroup_parent;
    struct compose_strv devices;
    struct compose_strv security_opt;
    /* Where the keys policy_check() looks at stand. */
    struct compose_pos privileged_pos, network_mode_pos, pid_pos, ipc_pos, devices_pos, cap_add_pos;
    struct compose_pos userns_mode_pos, cgroupns_mode_pos, cgroup_parent_pos, security_opt_pos;
    struct compose_pos cap_drop_pos, sysctls_pos, ulimits_pos, logging_pos, user_pos, deploy_pos;
};

struct compose_network {
    char *key;
    char *name; /* explicit `name:` (or external name); NULL: STACK_key */
    bool external;
    char *driver;
    struct compose_map driver_opts;
    bool has_ipam;
    char *ipam_driver;
    struct compose_strv ipam_subnets;
    bool internal;
    bool attachable;
    struct compose_map labels;
    struct compose_pos pos;
};

struct compose_volume {
    char *key;
    char *name;
    bool external;
    char *driver;
    struct compose_map driver_opts;
    struct compose_map labels;
    struct compose_pos pos;
};

/* A top-level secret or config. */
struct compose_fileobj {
    char *key;
    char *name; /* explicit `name:` (or external name); NULL: STACK_key */
    bool external;
    char *file; /* content comes with the manifest's attached files */
    struct compose_pos file_pos;
    struct compose_map labels;
    char *driver; /* secrets only */
    struct compose_map driver_opts;
    char *template_driver;
    struct compose_pos pos;
};

struct compose_project {
    struct compose_arena *arena;
    char *filename;
    char *version; /* NULL when the file has none */
    struct compose_service *services;
    size_t n_services;
    struct compose_network *networks;
    size_t n_networks;
    struct compose_volume *volumes;
    size_t n_volumes;
    struct compose_fileobj *secrets;
    size_t n_secrets;
    struct compose_fileobj *configs;
    size_t n_configs;
    /* Keys that Swarm ignores, one line each: "file:line:col: path: why" */
    struct compose_strv warnings;
    /* A copy of the variables, for environment entries without a value. */
    struct compose_var *vars;
    size_t n_vars;
    /* Private: the objects by key, for the lookups below. */
    struct compose_index *index;
    /* What the loader resolved on the caller's behalf, one line each: "file:line:col: path:
     * ./data resolved against /home/u/p: /home/u/p/data" (see compose_options). */
    struct compose_strv notes;
};

/* Parses, interpolates and validates a Compose file. filename is used in messages only (NULL:
 * "compose.yml"); vars may be NULL. On success *ret_project is a new project; on failure err
 * says where and why and a negative errno is returned (-EINVAL bad input, -E2BIG a limit,
 * -ENOMEM). */
int compose_parse(const char *text, size_t len, const char *filename,
                  const struct compose_vars *vars, struct compose_project **ret_project,
                  struct compose_error *err);

/* What a source with a directory on this node (the CLI) knows about where the manifest lives.
 * As `docker stack deploy` does for a bind mount's source (short or long syntax): "~" at its
 * start is replaced by the variable HOME when the variables have one, else by home_dir; then a
 * source that is not absolute is joined to base_dir and cleaned lexically ("./data" →
 * "/home/u/p/data"). Each resolution adds a line to the project's notes. A NULL member (remote
 * sources have no directory): such sources are refused, saying why. base_dir must be absolute. */
struct compose_options {
    const char *base_dir;
    const char *home_dir;
};

/* compose_parse() with options (NULL: none, as compose_parse). */
int compose_parse_opts(const char *text, size_t len, const char *filename,
                       const struct compose_vars *vars, const struct compose_options *opts,
                       struct compose_project **ret_project, struct compose_error *err);

struct compose_project *compose_project_free(struct compose_project *p);

/* Lookups by key; NULL when absent. */
const struct compose_service *compose_project_service(const struct compose_project *p,
                                                      const char *name);
const struct compose_network *compose_project_network(const struct compose_project *p,
                                                      const char *key);
const struct compose_volume *compose_project_volume(const struct compose_project *p,
                                                    const char *key);
const struct compose_fileobj *compose_project_secret(const struct compose_project *p,
                                                     const char *key);
const struct compose_fileobj *compose_project_config(const struct compose_project *p,
                                                     const char *key);
/* The value of a key in a map; NULL when absent (or present without a value). */
const char *compose_map_get(const struct compose_map *m, const char *key);

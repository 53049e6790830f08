/* The agent's configuration: defaults, then /etc/axion/agent.toml (or --config), then
 * AXION_AGENT__<SECTION>__<KEY> environment variables, then command-line flags.
 * Every value remembers where it came from, for `axion-agent config check`. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_DEFAULT_PATH "/etc/axion/agent.toml"

enum config_origin {
    CONFIG_ORIGIN_DEFAULT,
    CONFIG_ORIGIN_FILE,
    CONFIG_ORIGIN_ENV,
    CONFIG_ORIGIN_FLAG
};

/* Every key, in the order of `config check` (grouped by section). */
enum config_key {
    CONFIG_AGENT_TOKEN,
    CONFIG_AGENT_ID,
    CONFIG_AGENT_STATE_DIR,
    CONFIG_AGENT_LOG_LEVEL,
    CONFIG_CONTROL_PLANE_GRPC_URL,
    CONFIG_CONTROL_PLANE_CA_FILE,
    CONFIG_CONTROL_PLANE_CERT_FILE,
    CONFIG_CONTROL_PLANE_KEY_FILE,
    CONFIG_CONTROL_PLANE_HEARTBEAT_INTERVAL,
    CONFIG_CONTROL_PLANE_ENROLL_URL,
    CONFIG_CONTROL_PLANE_KEEPALIVE_TIME,
    CONFIG_CONTROL_PLANE_KEEPALIVE_TIMEOUT,
    CONFIG_KAFKA_BROKERS,
    CONFIG_KAFKA_TOPIC_PREFIX,
    CONFIG_KAFKA_SECURITY,
    CONFIG_KAFKA_CA_FILE,
    CONFIG_KAFKA_CERT_FILE,
    CONFIG_KAFKA_KEY_FILE,
    CONFIG_DOCKER_SOCKET,
    CONFIG_DOCKER_REQUEST_TIMEOUT,
    CONFIG_RECONCILE_RESYNC_INTERVAL,
    CONFIG_RECONCILE_CONCURRENCY,
    CONFIG_RECONCILE_PRUNE,
    CONFIG_RECONCILE_COMMAND_TIMEOUT,
    CONFIG_TELEMETRY_INTERVAL,
    CONFIG_TELEMETRY_CGROUP_ROOT,
    CONFIG_TELEMETRY_PROC_ROOT,
    CONFIG_LOCAL_ENABLED,
    CONFIG_LOCAL_SOCKET,
    CONFIG_POLICY_LEVEL,
    CONFIG_POLICY_ALLOW_PRIVILEGED,
    CONFIG_POLICY_ALLOW_HOST_NAMESPACES,
    CONFIG_POLICY_ALLOW_CAP_ADD,
    CONFIG_POLICY_ALLOW_DEVICES,
    CONFIG_POLICY_BIND_ALLOW,
    CONFIG_POLICY_CAP_ADD,
    CONFIG_POLICY_VOLUME_DRIVERS,
    CONFIG_POLICY_NETWORK_DRIVERS,
    CONFIG_POLICY_LOG_DRIVERS,
    CONFIG_POLICY_SECRET_DRIVERS,
    CONFIG_POLICY_SYSCTLS,
    CONFIG_POLICY_EXCEPTIONS,
    CONFIG_KEY_COUNT
};

/* Where one value came from. */
struct config_value_origin {
    enum config_origin origin;
    uint32_t line; /* CONFIG_ORIGIN_FILE: the line in path */
};

struct config_strv {
    char **v;
    size_t n;
};

struct config {
    struct {
        char *token;
        char *id;
        char *state_dir;
        char *log_level; /* error | warn | info | debug */
    } agent;
    struct {
        char *grpc_url;
        char *ca_file;
        char *cert_file;
        char *key_file;
        uint64_t heartbeat_interval_ms;
        char *enroll_url;              /* Enroll's endpoint; NULL: grpc_url */
        uint64_t keepalive_time_ms;    /* a ping after this long without one */
        uint64_t keepalive_timeout_ms; /* ... unanswered this long: the connection is dead */
    } control_plane;
    struct {
        struct config_strv brokers;
        char *topic_prefix;
        char *security; /* plaintext | ssl */
        char *ca_file;
        char *cert_file;
        char *key_file;
    } kafka;
    struct {
        char *socket;
        uint64_t request_timeout_ms;
    } docker;
    struct {
        uint64_t resync_interval_ms;
        int64_t concurrency;
        bool prune;
        uint64_t command_timeout_ms; /* a command's result: still converging after this */
    } reconcile;
    struct {
        uint64_t interval_ms;
        char *cgroup_root;
        char *proc_root;
    } telemetry;
    struct {
        bool enabled;
        char *socket;
    } local;
    struct {
        char *level; /* baseline | restricted (compose/policy.h) */
        bool allow_privileged;
        bool allow_host_namespaces;
        bool allow_cap_add;
        bool allow_devices;
        struct config_strv bind_allow;      /* host path prefixes bind mounts may use */
        struct config_strv cap_add;         /* capabilities beyond the level's set */
        struct config_strv volume_drivers;  /* drivers whose volumes may carry options */
        struct config_strv network_drivers; /* besides overlay */
        struct config_strv log_drivers;     /* besides json-file, local, journald, none */
        struct config_strv secret_drivers;
        struct config_strv sysctls;    /* besides the safe set; "net.core.*" is a prefix */
        struct config_strv exceptions; /* names of rules not enforced */
    } policy;
    /* Where the file came from ("" when none was read). */
    char *path;
    /* Where each value came from, indexed by enum config_key. */
    struct config_value_origin origin[CONFIG_KEY_COUNT];
};

struct config_source {
    const char *path;         /* NULL: CONFIG_DEFAULT_PATH, read only when it exists */
    bool path_required;       /* --config was given: a missing file is an error */
    char *const *env;         /* environ; AXION_AGENT__SECTION__KEY overrides the file */
    const char *const *flags; /* "section.key=value" from the command line, applied last */
    size_t n_flags;
    /* Tests and fuzzing: when data is set, it is the file's content (len bytes) and path
     * (or "agent.toml") is only the name used in messages; nothing is read from disk. */
    const char *data;
    size_t len;
};

/* Every limit on what the config may hold. */
#define CONFIG_MAX_FILE_SIZE (1024 * 1024)
#define CONFIG_MAX_LIST      256

/* Loads defaults, file, environment and flags into *ret (written only on success). On error
 * returns a negative errno and writes a message naming the place and the cause into err. */
int config_load(const struct config_source *src, struct config *ret, char *err, size_t errlen);

/* Prints every effective value with its origin; secrets masked. */
void config_print(const struct config *c, FILE *out);

/* Fills in the built-in defaults. */
int config_init(struct config *c);
void config_free(struct config *c);

/* "agent.token" for CONFIG_AGENT_TOKEN. */
const char *config_key_name(enum config_key k);
/* The key named "section.key", or -ENOENT. */
int config_key_lookup(const char *name);
/* "AXION_AGENT__AGENT__TOKEN" for CONFIG_AGENT_TOKEN, into out (64 bytes are enough). */
void config_key_env_name(enum config_key k, char *out, size_t outlen);
/* "default", "file", "env", "flag". */
const char *config_origin_to_string(enum config_origin o);

/* Durations: one or more <number><unit> with unit ms, s, m or h ("5s", "250ms", "1m30s").
 * Returns 0 or -EINVAL (-ERANGE when it overflows). */
int config_parse_duration(const char *s, uint64_t *ret_ms);
/* The shortest form that parses back to ms: 90000 → "1m30s", 0 → "0s". */
void config_format_duration(uint64_t ms, char *out, size_t outlen);

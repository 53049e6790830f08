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
        bool allow_privileged;
        bool allow_host_namespaces;
        bool allow_cap_add;
        bool allow_devices;
        struct config_strv bind_allow; /* host path prefixes bind mounts may use */
    } policy;
    /* Where the file came from ("" when none was read). */
    char *path;
};

struct config_source {
    const char *path;         /* NULL: CONFIG_DEFAULT_PATH, read only when it exists */
    bool path_required;       /* --config was given: a missing file is an error */
    char *const *env;         /* environ; AXION_AGENT__SECTION__KEY overrides the file */
    const char *const *flags; /* "section.key=value" from the command line, applied last */
    size_t n_flags;
};

/* Loads defaults, file, environment and flags into *ret (written only on success). On error
 * returns a negative errno and writes a message naming the place and the cause into err. */
int config_load(const struct config_source *src, struct config *ret, char *err, size_t errlen);

/* Prints every effective value with its origin; secrets masked. */
void config_print(const struct config *c, FILE *out);

/* Fills in the built-in defaults. */
int config_init(struct config *c);
void config_free(struct config *c);

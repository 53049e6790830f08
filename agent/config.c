#include "agent/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compose/policy.h"
#include "lib/buf.h"
#include "lib/toml.h"
#include "lib/util.h"

#define ENV_PREFIX "AXION_AGENT__"

/* ---- the keys --------------------------------------------------------------------------- */

enum kind { KIND_STRING, KIND_INTEGER, KIND_BOOLEAN, KIND_DURATION, KIND_LIST };

#define F_OPTIONAL 1u /* strings: "" leaves the value unset (NULL) */
#define F_SECRET   2u /* masked by config_print and never echoed in messages */

struct key_def {
    const char *section;
    const char *key;
    const char *name; /* section.key */
    enum kind kind;
    size_t off;
    unsigned flags;
    int64_t min, max; /* integers; durations in ms */
    /* Strings and list items: NULL when v is fine, else what was expected. */
    const char *(*check)(const char *v);
};

static bool only_chars(const char *v, const char *extra)
{
    for (const char *p = v; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr(extra, *p)))
            return false;
    return true;
}

/* Paths longer than this are refused, never cut (PATH_MAX - 1). */
#define PATH_LEN_MAX 4095

static const char *check_path(const char *v)
{
    if (v[0] != '/')
        return "an absolute path";
    return strlen(v) <= PATH_LEN_MAX ? NULL : "an absolute path of at most 4095 bytes";
}

static const char *check_log_level(const char *v)
{
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    for (size_t i = 0; i < ARRAY_SIZE(levels); i++)
        if (streq(v, levels[i]))
            return NULL;
    return "one of error, warn, info, debug";
}

static const char *check_security(const char *v)
{
    return streq(v, "plaintext") || streq(v, "ssl") ? NULL : "plaintext or ssl";
}

static const char *check_url(const char *v)
{
    const char *rest = strncmp(v, "https://", 8) == 0  ? v + 8
                       : strncmp(v, "http://", 7) == 0 ? v + 7
                                                       : NULL;
    if (!rest || !*rest || strchr(v, ' '))
        return "a URL that starts with https:// or http://";
    return NULL;
}

static const char *check_id(const char *v)
{
    return strlen(v) <= 64 && only_chars(v, "._-") ? NULL
                                                   : "1 to 64 characters of A-Z a-z 0-9 . _ -";
}

static const char *check_topic_prefix(const char *v)
{
    return strlen(v) <= 100 && only_chars(v, "._-") ? NULL
                                                    : "1 to 100 characters of A-Z a-z 0-9 . _ -";
}

static const char *check_broker(const char *v)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v || !colon[1] || strlen(colon + 1) > 5 || !only_chars(colon + 1, "") ||
        strpbrk(colon + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") ||
        atoi(colon + 1) < 1 || atoi(colon + 1) > 65535 || strpbrk(v, " \t,/"))
        return "HOST:PORT with a port from 1 to 65535";
    return NULL;
}

/* A host path prefix: absolute, and without "..", which the policy refuses in paths. */
static const char *check_bind_prefix(const char *v)
{
    if (v[0] != '/' || strlen(v) > PATH_LEN_MAX)
        return "an absolute path of at most 4095 bytes";
    for (const char *p = v; (p = strstr(p, "..")); p += 2)
        if ((p == v || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
            return "an absolute path without \"..\"";
    return NULL;
}

static const char *check_policy_level(const char *v)
{
    return policy_level_from_string(v) >= 0 ? NULL : "baseline or restricted";
}

static const char *check_policy_rule(const char *v)
{
    return policy_rule_from_string(v) >= 0
               ? NULL
               : "the name of a policy rule (privileged, host-namespaces, capabilities, devices, "
                 "bind-mounts, bind-propagation, engine-socket, volume-drivers, "
                 "network-drivers, log-drivers, secret-drivers, sysctls, ulimits, security-opt, "
                 "cgroup-parent, non-root, drop-all-capabilities, no-new-privileges, "
                 "memory-limit, pids-limit)";
}

static const char *check_capability(const char *v)
{
    return *v && strlen(v) <= 40 && only_chars(v, "_") ? NULL
                                                       : "a capability name (NET_ADMIN, ...)";
}

static const char *check_driver(const char *v)
{
    return *v && strlen(v) <= 255 && only_chars(v, "._-/:@") ? NULL : "a driver or plugin name";
}

static const char *check_sysctl(const char *v)
{
    size_t n = strlen(v);
    bool ok = n >= 1 && n <= 255;
    for (size_t i = 0; ok && i < n; i++) {
        char ch = v[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '.' || ch == '_' || ch == '-' || ch == '/' || (ch == '*' && i == n - 1 && n > 1);
    }
    return ok ? NULL : "a sysctl name, or a prefix ending in * (net.core.*)";
}

#define KEY(sec, k, kind_, field)                                                                  \
    .section = #sec, .key = #k, .name = #sec "." #k, .kind = kind_,                                \
    .off = offsetof(struct config, field)

#define SECOND 1000
#define MINUTE (60 * SECOND)
#define HOUR   (60 * MINUTE)

static const struct key_def keys[CONFIG_KEY_COUNT] = {
    [CONFIG_AGENT_TOKEN] = {KEY(agent, token, KIND_STRING, agent.token),
                            .flags = F_OPTIONAL | F_SECRET},
    [CONFIG_AGENT_ID] = {KEY(agent, id, KIND_STRING, agent.id), .flags = F_OPTIONAL,
                         .check = check_id},
    [CONFIG_AGENT_STATE_DIR] = {KEY(agent, state_dir, KIND_STRING, agent.state_dir),
                                .check = check_path},
    [CONFIG_AGENT_LOG_LEVEL] = {KEY(agent, log_level, KIND_STRING, agent.log_level),
                                .check = check_log_level},
    [CONFIG_CONTROL_PLANE_GRPC_URL] = {KEY(control_plane, grpc_url, KIND_STRING,
                                           control_plane.grpc_url),
                                       .flags = F_OPTIONAL, .check = check_url},
    [CONFIG_CONTROL_PLANE_CA_FILE] = {KEY(control_plane, ca_file, KIND_STRING,
                                          control_plane.ca_file),
                                      .flags = F_OPTIONAL, .check = check_path},
    [CONFIG_CONTROL_PLANE_CERT_FILE] = {KEY(control_plane, cert_file, KIND_STRING,
                                            control_plane.cert_file),
                                        .flags = F_OPTIONAL, .check = check_path},
    [CONFIG_CONTROL_PLANE_KEY_FILE] = {KEY(control_plane, key_file, KIND_STRING,
                                           control_plane.key_file),
                                       .flags = F_OPTIONAL, .check = check_path},
    [CONFIG_CONTROL_PLANE_HEARTBEAT_INTERVAL] = {KEY(control_plane, heartbeat_interval,
                                                     KIND_DURATION,
                                                     control_plane.heartbeat_interval_ms),
                                                 .min = SECOND, .max = 10 * MINUTE},
    [CONFIG_CONTROL_PLANE_ENROLL_URL] = {KEY(control_plane, enroll_url, KIND_STRING,
                                             control_plane.enroll_url),
                                         .flags = F_OPTIONAL, .check = check_url},
    [CONFIG_CONTROL_PLANE_KEEPALIVE_TIME] = {KEY(control_plane, keepalive_time, KIND_DURATION,
                                                 control_plane.keepalive_time_ms),
                                             .min = 10 * SECOND, .max = 30 * SECOND},
    [CONFIG_CONTROL_PLANE_KEEPALIVE_TIMEOUT] = {KEY(control_plane, keepalive_timeout, KIND_DURATION,
                                                    control_plane.keepalive_timeout_ms),
                                                .min = SECOND, .max = MINUTE},
    [CONFIG_KAFKA_BROKERS] = {KEY(kafka, brokers, KIND_LIST, kafka.brokers), .check = check_broker},
    [CONFIG_KAFKA_TOPIC_PREFIX] = {KEY(kafka, topic_prefix, KIND_STRING, kafka.topic_prefix),
                                   .check = check_topic_prefix},
    [CONFIG_KAFKA_SECURITY] = {KEY(kafka, security, KIND_STRING, kafka.security),
                               .check = check_security},
    [CONFIG_KAFKA_CA_FILE] = {KEY(kafka, ca_file, KIND_STRING, kafka.ca_file), .flags = F_OPTIONAL,
                              .check = check_path},
    [CONFIG_KAFKA_CERT_FILE] = {KEY(kafka, cert_file, KIND_STRING, kafka.cert_file),
                                .flags = F_OPTIONAL, .check = check_path},
    [CONFIG_KAFKA_KEY_FILE] = {KEY(kafka, key_file, KIND_STRING, kafka.key_file),
                               .flags = F_OPTIONAL, .check = check_path},
    [CONFIG_DOCKER_SOCKET] = {KEY(docker, socket, KIND_STRING, docker.socket), .check = check_path},
    [CONFIG_DOCKER_REQUEST_TIMEOUT] = {KEY(docker, request_timeout, KIND_DURATION,
                                           docker.request_timeout_ms),
                                       .min = 100, .max = HOUR},
    [CONFIG_RECONCILE_RESYNC_INTERVAL] = {KEY(reconcile, resync_interval, KIND_DURATION,
                                              reconcile.resync_interval_ms),
                                          .min = SECOND, .max = 24 * HOUR},
    [CONFIG_RECONCILE_CONCURRENCY] = {KEY(reconcile, concurrency, KIND_INTEGER,
                                          reconcile.concurrency),
                                      .min = 1, .max = 64},
    [CONFIG_RECONCILE_PRUNE] = {KEY(reconcile, prune, KIND_BOOLEAN, reconcile.prune)},
    [CONFIG_RECONCILE_COMMAND_TIMEOUT] = {KEY(reconcile, command_timeout, KIND_DURATION,
                                              reconcile.command_timeout_ms),
                                          .min = SECOND, .max = 24 * HOUR},
    [CONFIG_TELEMETRY_INTERVAL] = {KEY(telemetry, interval, KIND_DURATION, telemetry.interval_ms),
                                   .min = SECOND, .max = HOUR},
    [CONFIG_TELEMETRY_CGROUP_ROOT] = {KEY(telemetry, cgroup_root, KIND_STRING,
                                          telemetry.cgroup_root),
                                      .check = check_path},
    [CONFIG_TELEMETRY_PROC_ROOT] = {KEY(telemetry, proc_root, KIND_STRING, telemetry.proc_root),
                                    .check = check_path},
    [CONFIG_LOCAL_ENABLED] = {KEY(local, enabled, KIND_BOOLEAN, local.enabled)},
    [CONFIG_LOCAL_SOCKET] = {KEY(local, socket, KIND_STRING, local.socket), .check = check_path},
    [CONFIG_POLICY_LEVEL] = {KEY(policy, level, KIND_STRING, policy.level),
                             .check = check_policy_level},
    [CONFIG_POLICY_ALLOW_PRIVILEGED] = {KEY(policy, allow_privileged, KIND_BOOLEAN,
                                            policy.allow_privileged)},
    [CONFIG_POLICY_ALLOW_HOST_NAMESPACES] = {KEY(policy, allow_host_namespaces, KIND_BOOLEAN,
                                                 policy.allow_host_namespaces)},
    [CONFIG_POLICY_ALLOW_CAP_ADD] = {KEY(policy, allow_cap_add, KIND_BOOLEAN,
                                         policy.allow_cap_add)},
    [CONFIG_POLICY_ALLOW_DEVICES] = {KEY(policy, allow_devices, KIND_BOOLEAN,
                                         policy.allow_devices)},
    [CONFIG_POLICY_BIND_ALLOW] = {KEY(policy, bind_allow, KIND_LIST, policy.bind_allow),
                                  .check = check_bind_prefix},
    [CONFIG_POLICY_CAP_ADD] = {KEY(policy, cap_add, KIND_LIST, policy.cap_add),
                               .check = check_capability},
    [CONFIG_POLICY_VOLUME_DRIVERS] = {KEY(policy, volume_drivers, KIND_LIST, policy.volume_drivers),
                                      .check = check_driver},
    [CONFIG_POLICY_NETWORK_DRIVERS] = {KEY(policy, network_drivers, KIND_LIST,
                                           policy.network_drivers),
                                       .check = check_driver},
    [CONFIG_POLICY_LOG_DRIVERS] = {KEY(policy, log_drivers, KIND_LIST, policy.log_drivers),
                                   .check = check_driver},
    [CONFIG_POLICY_SECRET_DRIVERS] = {KEY(policy, secret_drivers, KIND_LIST, policy.secret_drivers),
                                      .check = check_driver},
    [CONFIG_POLICY_SYSCTLS] = {KEY(policy, sysctls, KIND_LIST, policy.sysctls),
                               .check = check_sysctl},
    [CONFIG_POLICY_EXCEPTIONS] = {KEY(policy, exceptions, KIND_LIST, policy.exceptions),
                                  .check = check_policy_rule},
};

static const char *const sections[] = {"agent",     "control_plane", "kafka", "docker",
                                       "reconcile", "telemetry",     "local", "policy"};

const char *config_key_name(enum config_key k)
{
    return (unsigned)k < CONFIG_KEY_COUNT ? keys[k].name : "?";
}

int config_key_lookup(const char *name)
{
    for (size_t k = 0; k < CONFIG_KEY_COUNT; k++)
        if (streq(keys[k].name, name))
            return (int)k;
    return -ENOENT;
}

static int key_find(const char *section, const char *key)
{
    for (size_t k = 0; k < CONFIG_KEY_COUNT; k++)
        if (streq(keys[k].section, section) && streq(keys[k].key, key))
            return (int)k;
    return -ENOENT;
}

void config_key_env_name(enum config_key k, char *out, size_t outlen)
{
    if (!outlen)
        return;
    if ((unsigned)k >= CONFIG_KEY_COUNT) {
        out[0] = '\0';
        return;
    }
    snprintf(out, outlen, ENV_PREFIX "%s__%s", keys[k].section, keys[k].key);
    for (char *p = out; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
}

const char *config_origin_to_string(enum config_origin o)
{
    switch (o) {
    case CONFIG_ORIGIN_DEFAULT:
        return "default";
    case CONFIG_ORIGIN_FILE:
        return "file";
    case CONFIG_ORIGIN_ENV:
        return "env";
    case CONFIG_ORIGIN_FLAG:
        return "flag";
    }
    return "?";
}

/* ---- "did you mean" ----------------------------------------------------------------------- */

#define DIST_MAX_LEN 64

/* Edit distance counting a swap of two neighbours as one edit (optimal string alignment). */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > DIST_MAX_LEN || lb > DIST_MAX_LEN)
        return SIZE_MAX;
    size_t d[DIST_MAX_LEN + 1][DIST_MAX_LEN + 1];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* How far a guess may be from what was written to still be a useful hint. */
static size_t hint_limit(const char *written)
{
    size_t n = strlen(written);
    return n <= 3 ? 1 : n <= 8 ? 2 : 3;
}

/* The key closest to section.key (section NULL: a key written at the top level), or -1. */
static int suggest_key(const char *section, const char *key)
{
    char full[2 * DIST_MAX_LEN + 2];
    int best = -1;
    size_t best_d = SIZE_MAX;
    if (section)
        snprintf(full, sizeof(full), "%s.%s", section, key);
    for (size_t k = 0; k < CONFIG_KEY_COUNT; k++) {
        size_t d = section ? distance(full, keys[k].name) : SIZE_MAX;
        /* The right key in the wrong section is one edit away. */
        size_t dk = distance(key, keys[k].key);
        if (dk != SIZE_MAX && !(section && streq(section, keys[k].section)))
            dk++;
        if (dk < d)
            d = dk;
        if (d < best_d) {
            best_d = d;
            best = (int)k;
        }
    }
    return best_d <= hint_limit(key) ? best : -1;
}

/* Whether an error in the value of [table] key could show a secret: a secret key, a key
 * named like one, or an unknown key that is a typo of one. */
static bool secret_key(const char *table, const char *key)
{
    static const char *const words[] = {"token", "secret", "passw", "private", "credential"};
    int k = table ? key_find(table, key) : -ENOENT;
    if (k >= 0)
        return keys[k].flags & F_SECRET;
    for (size_t i = 0; i < ARRAY_SIZE(words); i++)
        if (strcasestr(key, words[i]))
            return true;
    k = suggest_key(table, key);
    return k >= 0 && (keys[k].flags & F_SECRET);
}

static int suggest_section(const char *name)
{
    int best = -1;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < ARRAY_SIZE(sections); i++) {
        size_t d = distance(name, sections[i]);
        if (d < best_d) {
            best_d = d;
            best = (int)i;
        }
    }
    return best_d <= hint_limit(name) ? best : -1;
}

/* ---- errors ------------------------------------------------------------------------------- */

struct place {
    enum config_origin origin;
    const char *file;    /* FILE */
    struct toml_pos pos; /* FILE: where the value stands */
    const char *var;     /* ENV: the variable's name */
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* "<where>: <message>", where names the file position and key, the variable or the flag. */
static int fail_value(const struct place *pl, const struct key_def *d, char *err, size_t errlen,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int fail_value(const struct place *pl, const struct key_def *d, char *err, size_t errlen,
                      const char *fmt, ...)
{
    if (!errlen)
        return -EINVAL;
    int n;
    switch (pl->origin) {
    case CONFIG_ORIGIN_FILE:
        n = snprintf(err, errlen, "%s:%u:%u: %s: ", pl->file, pl->pos.line, pl->pos.col, d->name);
        break;
    case CONFIG_ORIGIN_ENV:
        n = snprintf(err, errlen, "%s: ", pl->var);
        break;
    default:
        n = snprintf(err, errlen, "--set %s: ", d->name);
        break;
    }
    if (n >= 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* ---- durations ---------------------------------------------------------------------------- */

int config_parse_duration(const char *s, uint64_t *ret_ms)
{
    uint64_t total = 0;
    const char *p = s;
    if (!*p)
        return -EINVAL;
    while (*p) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        uint64_t n = 0;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (n > (UINT64_MAX - 9) / 10)
                return -ERANGE;
            n = n * 10 + (uint64_t)(*p - '0');
        }
        uint64_t unit;
        if (p[0] == 'm' && p[1] == 's') {
            unit = 1;
            p += 2;
        } else if (*p == 's' || *p == 'm' || *p == 'h') {
            unit = *p == 's' ? SECOND : *p == 'm' ? MINUTE : HOUR;
            p++;
        } else {
            return -EINVAL;
        }
        if (n > (UINT64_MAX - total) / unit)
            return -ERANGE;
        total += n * unit;
    }
    *ret_ms = total;
    return 0;
}

void config_format_duration(uint64_t ms, char *out, size_t outlen)
{
    static const struct {
        uint64_t ms;
        const char *unit;
    } units[] = {{HOUR, "h"}, {MINUTE, "m"}, {SECOND, "s"}, {1, "ms"}};
    size_t o = 0;
    if (!outlen)
        return;
    out[0] = '\0';
    if (ms == 0) {
        snprintf(out, outlen, "0s");
        return;
    }
    for (size_t i = 0; i < ARRAY_SIZE(units) && ms; i++) {
        uint64_t n = ms / units[i].ms;
        if (!n)
            continue;
        ms %= units[i].ms;
        int w = snprintf(out + o, outlen - o, "%llu%s", (unsigned long long)n, units[i].unit);
        if (w < 0 || (size_t)w >= outlen - o)
            return;
        o += (size_t)w;
    }
}

/* ---- setting values ------------------------------------------------------------------------ */

static void *field(struct config *c, const struct key_def *d)
{
    return (char *)c + d->off;
}

static const void *cfield(const struct config *c, const struct key_def *d)
{
    return (const char *)c + d->off;
}

static void mark(struct config *c, enum config_key k, const struct place *pl)
{
    c->origin[k] = (struct config_value_origin){
        .origin = pl->origin,
        .line = pl->origin == CONFIG_ORIGIN_FILE ? pl->pos.line : 0,
    };
}

/* The value as it may appear in a message: quoted, or masked for a secret. */
static void shown(const struct key_def *d, const char *v, char out[TOML_QUOTE_MAX])
{
    if (d->flags & F_SECRET)
        snprintf(out, TOML_QUOTE_MAX, "a secret value (not shown)");
    else
        toml_quote(v, strlen(v), out, TOML_QUOTE_MAX);
}

static int set_string(struct config *c, enum config_key k, const char *v, const struct place *pl,
                      char *err, size_t errlen)
{
    const struct key_def *d = &keys[k];
    char got[TOML_QUOTE_MAX];
    char **dst = field(c, d);
    char *n = NULL;

    if (!*v) {
        if (!(d->flags & F_OPTIONAL))
            return fail_value(pl, d, err, errlen, "expected a non-empty string, got \"\"");
    } else {
        const char *why = d->check ? d->check(v) : NULL;
        if (why) {
            shown(d, v, got);
            return fail_value(pl, d, err, errlen, "expected %s, got %s", why, got);
        }
        n = strdup(v);
        if (!n)
            return -ENOMEM;
    }
    free(*dst);
    *dst = n;
    mark(c, k, pl);
    return 0;
}

static int set_integer(struct config *c, enum config_key k, int64_t v, const struct place *pl,
                       char *err, size_t errlen)
{
    const struct key_def *d = &keys[k];
    if (v < d->min || v > d->max)
        return fail_value(pl, d, err, errlen, "expected an integer from %lld to %lld, got %lld",
                          (long long)d->min, (long long)d->max, (long long)v);
    *(int64_t *)field(c, d) = v;
    mark(c, k, pl);
    return 0;
}

static int set_boolean(struct config *c, enum config_key k, bool v, const struct place *pl)
{
    *(bool *)field(c, &keys[k]) = v;
    mark(c, k, pl);
    return 0;
}

static int set_duration(struct config *c, enum config_key k, const char *v, const struct place *pl,
                        char *err, size_t errlen)
{
    const struct key_def *d = &keys[k];
    char got[TOML_QUOTE_MAX];
    uint64_t ms;
    toml_quote(v, strlen(v), got, sizeof(got));
    if (config_parse_duration(v, &ms) < 0)
        return fail_value(pl, d, err, errlen,
                          "expected a duration like \"5s\", \"250ms\", \"2m\", \"1h\" or "
                          "\"1m30s\", got %s",
                          got);
    if (ms < (uint64_t)d->min || ms > (uint64_t)d->max) {
        char lo[32], hi[32];
        config_format_duration((uint64_t)d->min, lo, sizeof(lo));
        config_format_duration((uint64_t)d->max, hi, sizeof(hi));
        return fail_value(pl, d, err, errlen, "expected a duration from %s to %s, got %s", lo, hi,
                          got);
    }
    *(uint64_t *)field(c, d) = ms;
    mark(c, k, pl);
    return 0;
}

static void strv_free(struct config_strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

/* Takes the items of *list (checked) as the value of k. */
static int set_list(struct config *c, enum config_key k, struct config_strv *list,
                    const struct place *pl, char *err, size_t errlen)
{
    const struct key_def *d = &keys[k];
    for (size_t i = 0; i < list->n; i++) {
        const char *why = d->check ? d->check(list->v[i]) : NULL;
        if (!*list->v[i])
            why = "a non-empty string";
        if (why) {
            char got[TOML_QUOTE_MAX];
            toml_quote(list->v[i], strlen(list->v[i]), got, sizeof(got));
            return fail_value(pl, d, err, errlen, "item %zu: expected %s, got %s", i + 1, why, got);
        }
    }
    struct config_strv *dst = field(c, d);
    strv_free(dst);
    *dst = *list;
    *list = (struct config_strv){0};
    mark(c, k, pl);
    return 0;
}

static int strv_push(struct config_strv *s, const char *v, size_t len)
{
    char **n = realloc(s->v, (s->n + 1) * sizeof(*n));
    if (!n)
        return -ENOMEM;
    s->v = n;
    s->v[s->n] = strndup(v, len);
    if (!s->v[s->n])
        return -ENOMEM;
    s->n++;
    return 0;
}

/* A value from the environment or a flag: text, converted as the key wants it. */
static int apply_text(struct config *c, enum config_key k, const char *v, const struct place *pl,
                      char *err, size_t errlen)
{
    const struct key_def *d = &keys[k];
    char got[TOML_QUOTE_MAX];
    int r;

    shown(d, v, got);
    if (!toml_utf8_valid(v, strlen(v)))
        return fail_value(pl, d, err, errlen, "expected UTF-8 text, got %s", got);
    switch (d->kind) {
    case KIND_STRING:
        return set_string(c, k, v, pl, err, errlen);
    case KIND_INTEGER: {
        int64_t n;
        r = toml_parse_integer(v, strlen(v), &n);
        if (r == -ERANGE)
            return fail_value(pl, d, err, errlen, "integer %s does not fit in 64 bits", got);
        if (r < 0)
            return fail_value(pl, d, err, errlen, "expected an integer, got %s", got);
        return set_integer(c, k, n, pl, err, errlen);
    }
    case KIND_BOOLEAN:
        if (streq(v, "true") || streq(v, "false"))
            return set_boolean(c, k, v[0] == 't', pl);
        return fail_value(pl, d, err, errlen, "expected true or false, got %s", got);
    case KIND_DURATION:
        return set_duration(c, k, v, pl, err, errlen);
    case KIND_LIST: {
        /* Comma-separated, blanks around items ignored; "" is the empty list. */
        struct config_strv list = {0};
        const char *p = v;
        r = 0;
        while (*p == ' ' || *p == '\t')
            p++;
        while (*p && r == 0) {
            const char *comma = strchr(p, ',');
            const char *e = comma ? comma : p + strlen(p);
            const char *s = p;
            while (s < e && (*s == ' ' || *s == '\t'))
                s++;
            const char *t = e;
            while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
                t--;
            if (t == s)
                r = fail_value(pl, d, err, errlen,
                               "expected a comma-separated list without empty items, got %s", got);
            else if (list.n == CONFIG_MAX_LIST)
                r = fail_value(pl, d, err, errlen, "expected at most %d items", CONFIG_MAX_LIST);
            else
                r = strv_push(&list, s, (size_t)(t - s));
            p = comma ? comma + 1 : e;
            if (comma && !*p && r == 0)
                r = fail_value(pl, d, err, errlen,
                               "expected a comma-separated list without empty items, got %s", got);
        }
        if (r == 0)
            r = set_list(c, k, &list, pl, err, errlen);
        strv_free(&list);
        return r;
    }
    }
    return -EINVAL;
}

static const char *article(enum toml_type t)
{
    return t == TOML_INTEGER || t == TOML_ARRAY ? "an" : "a";
}

/* "a string \"x\"", "an integer 5", "a boolean true", "an array", "a table". */
static void describe_value(const struct key_def *d, const struct toml_value *v,
                           char out[TOML_QUOTE_MAX + 32])
{
    char q[TOML_QUOTE_MAX];
    if (d->flags & F_SECRET) {
        snprintf(out, TOML_QUOTE_MAX + 32, "%s %s (not shown: the key holds a secret)",
                 article(v->type), toml_type_name(v->type));
        return;
    }
    switch (v->type) {
    case TOML_STRING:
        shown(d, v->str, q);
        snprintf(out, TOML_QUOTE_MAX + 32, "a string %s", q);
        break;
    case TOML_INTEGER:
        snprintf(out, TOML_QUOTE_MAX + 32, "an integer %lld", (long long)v->integer);
        break;
    case TOML_BOOLEAN:
        snprintf(out, TOML_QUOTE_MAX + 32, "a boolean %s", v->boolean ? "true" : "false");
        break;
    default:
        snprintf(out, TOML_QUOTE_MAX + 32, "%s %s", article(v->type), toml_type_name(v->type));
        break;
    }
}

/* A value from the file: its TOML type must fit the key. */
static int apply_toml(struct config *c, enum config_key k, const struct toml_value *v,
                      struct place *pl, char *err, size_t errlen)
{
    const struct key_def *d = &keys[k];
    static const enum toml_type want[] = {
        [KIND_STRING] = TOML_STRING,   [KIND_INTEGER] = TOML_INTEGER, [KIND_BOOLEAN] = TOML_BOOLEAN,
        [KIND_DURATION] = TOML_STRING, [KIND_LIST] = TOML_ARRAY,
    };
    static const char *const want_text[] = {
        [KIND_STRING] = "a string",
        [KIND_INTEGER] = "an integer",
        [KIND_BOOLEAN] = "a boolean (true or false)",
        [KIND_DURATION] = "a duration string like \"5s\"",
        [KIND_LIST] = "an array of strings",
    };
    char got[TOML_QUOTE_MAX + 32];

    pl->pos = v->pos;
    if (v->type != want[d->kind]) {
        describe_value(d, v, got);
        return fail_value(pl, d, err, errlen, "expected %s, got %s", want_text[d->kind], got);
    }
    switch (d->kind) {
    case KIND_STRING:
        return set_string(c, k, v->str, pl, err, errlen);
    case KIND_INTEGER:
        return set_integer(c, k, v->integer, pl, err, errlen);
    case KIND_BOOLEAN:
        return set_boolean(c, k, v->boolean, pl);
    case KIND_DURATION:
        return set_duration(c, k, v->str, pl, err, errlen);
    case KIND_LIST: {
        struct config_strv list = {0};
        int r = 0;
        if (v->array.n > CONFIG_MAX_LIST)
            return fail_value(pl, d, err, errlen, "expected at most %d items, got %zu",
                              CONFIG_MAX_LIST, v->array.n);
        for (size_t i = 0; i < v->array.n && r == 0; i++) {
            const struct toml_value *it = &v->array.items[i];
            if (it->type != TOML_STRING) {
                pl->pos = it->pos;
                describe_value(d, it, got);
                r = fail_value(pl, d, err, errlen, "item %zu: expected a string, got %s", i + 1,
                               got);
            } else {
                r = strv_push(&list, it->str, strlen(it->str));
            }
        }
        if (r == 0)
            r = set_list(c, k, &list, pl, err, errlen);
        strv_free(&list);
        return r;
    }
    }
    return -EINVAL;
}

/* ---- the layers ------------------------------------------------------------------------- */

static int hint(char *out, size_t outlen, const char *name)
{
    return snprintf(out, outlen, " (did you mean \"%s\"?)", name);
}

static int apply_file(struct config *c, const struct toml_table *doc, const char *file, char *err,
                      size_t errlen)
{
    struct place pl = {.origin = CONFIG_ORIGIN_FILE, .file = file};
    char q[TOML_QUOTE_MAX], h[128];

    for (size_t i = 0; i < doc->n; i++) {
        const struct toml_kv *kv = &doc->kvs[i];
        int s = -1;
        for (size_t j = 0; j < ARRAY_SIZE(sections); j++)
            if (streq(kv->key, sections[j]))
                s = (int)j;
        toml_quote(kv->key, strlen(kv->key), q, sizeof(q));
        h[0] = '\0';
        if (kv->value.type != TOML_TABLE) {
            if (s >= 0)
                return fail(err, errlen, "%s:%u:%u: %s must be a table ([%s]), not a key", file,
                            kv->pos.line, kv->pos.col, q, sections[s]);
            int k = suggest_key(NULL, kv->key);
            if (k >= 0)
                hint(h, sizeof(h), keys[k].name);
            return fail(err, errlen, "%s:%u:%u: unknown key %s%s", file, kv->pos.line, kv->pos.col,
                        q, h);
        }
        if (s < 0) {
            int g = suggest_section(kv->key);
            if (g >= 0)
                hint(h, sizeof(h), sections[g]);
            return fail(err, errlen, "%s:%u:%u: unknown section %s%s", file, kv->pos.line,
                        kv->pos.col, q, h);
        }
        const struct toml_table *t = &kv->value.table;
        for (size_t j = 0; j < t->n; j++) {
            const struct toml_kv *e = &t->kvs[j];
            int k = key_find(sections[s], e->key);
            if (k < 0) {
                _cleanup_free_ char *full = NULL;
                if (asprintf(&full, "%s.%s", sections[s], e->key) < 0)
                    return -ENOMEM;
                toml_quote(full, strlen(full), q, sizeof(q));
                k = suggest_key(sections[s], e->key);
                if (k >= 0)
                    hint(h, sizeof(h), keys[k].name);
                return fail(err, errlen, "%s:%u:%u: unknown key %s%s", file, e->pos.line,
                            e->pos.col, q, h);
            }
            int r = apply_toml(c, (enum config_key)k, &e->value, &pl, err, errlen);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

static int load_file(struct config *c, const struct config_source *src, char *err, size_t errlen)
{
    const char *path = src->path ? src->path : CONFIG_DEFAULT_PATH;
    _cleanup_free_ char *data = NULL;
    const char *bytes;
    size_t len;
    char rerr[512];
    int r;

    if (src->data) {
        path = src->path ? src->path : "agent.toml";
        bytes = src->data;
        len = src->len;
    } else {
        r = toml_read_file(path, CONFIG_MAX_FILE_SIZE, &data, &len, rerr, sizeof(rerr));
        if (r == -ENOENT && !src->path_required)
            return 0;
        if (r < 0) {
            if (r == -ENOMEM)
                return r;
            return fail(err, errlen, "cannot read config file %s", rerr);
        }
        bytes = data;
    }

    struct toml_limits lim = toml_default_limits;
    lim.max_input = CONFIG_MAX_FILE_SIZE;
    lim.secret_key = secret_key;
    struct toml_table doc;
    r = toml_parse(bytes, len, path, &lim, &doc, err, errlen);
    if (r < 0)
        return r;
    r = apply_file(c, &doc, path, err, errlen);
    toml_table_release(&doc);
    if (r < 0)
        return r;
    char *p = strdup(path);
    if (!p)
        return -ENOMEM;
    free(c->path);
    c->path = p;
    return 0;
}

/* The key an AXION_AGENT__SECTION__KEY suffix names, or -1. */
static int env_find(const char *suffix)
{
    char name[128];
    for (size_t k = 0; k < CONFIG_KEY_COUNT; k++) {
        config_key_env_name((enum config_key)k, name, sizeof(name));
        if (streq(name + strlen(ENV_PREFIX), suffix))
            return (int)k;
    }
    return -1;
}

/* The closest variable to an unknown suffix, or -1. */
static int env_suggest(const char *suffix)
{
    char low[DIST_MAX_LEN + 1];
    size_t n = strlen(suffix);
    if (n > DIST_MAX_LEN)
        return -1;
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)(suffix[i] >= 'A' && suffix[i] <= 'Z' ? suffix[i] - 'A' + 'a' : suffix[i]);
    char *sep = strstr(low, "__");
    if (sep) {
        *sep = '\0';
        return suggest_key(low, sep + 2);
    }
    /* One underscore where two belong: compare with every "section_key". */
    int best = -1;
    size_t best_d = SIZE_MAX;
    for (size_t k = 0; k < CONFIG_KEY_COUNT; k++) {
        char cand[2 * DIST_MAX_LEN];
        snprintf(cand, sizeof(cand), "%s_%s", keys[k].section, keys[k].key);
        size_t d = distance(low, cand);
        if (d < best_d) {
            best_d = d;
            best = (int)k;
        }
    }
    return best_d <= hint_limit(low) ? best : -1;
}

static int load_env(struct config *c, char *const *env, char *err, size_t errlen)
{
    const size_t plen = strlen(ENV_PREFIX);
    for (; env && *env; env++) {
        const char *e = *env;
        const char *eq = strchr(e, '=');
        if (strncmp(e, ENV_PREFIX, plen) != 0 || !eq)
            continue;
        char var[160];
        snprintf(var, sizeof(var), "%.*s", (int)(eq - e) < 128 ? (int)(eq - e) : 128, e);
        int k = env_find(var + plen);
        if (k < 0) {
            char h[128] = "";
            int g = env_suggest(var + plen);
            if (g >= 0) {
                char name[128];
                config_key_env_name((enum config_key)g, name, sizeof(name));
                snprintf(h, sizeof(h), " (did you mean %s?)", name);
            }
            return fail(err, errlen, "%s: unknown variable%s", var, h);
        }
        struct place pl = {.origin = CONFIG_ORIGIN_ENV, .var = var};
        int r = apply_text(c, (enum config_key)k, eq + 1, &pl, err, errlen);
        if (r < 0)
            return r;
    }
    return 0;
}

static int load_flags(struct config *c, const char *const *flags, size_t n, char *err,
                      size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const char *f = flags[i];
        const char *eq = strchr(f, '=');
        char q[TOML_QUOTE_MAX];
        if (!eq) {
            /* Only what looks like a key: the rest may be a value, and a value a secret. */
            size_t kn =
                strspn(f, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
            toml_quote(f, kn < 64 ? kn : 64, q, sizeof(q));
            return fail(err, errlen, "--set %s%s: expected SECTION.KEY=VALUE", q,
                        f[kn] ? " (and what follows it, not shown)" : "");
        }
        _cleanup_free_ char *name = strndup(f, (size_t)(eq - f));
        if (!name)
            return -ENOMEM;
        int k = config_key_lookup(name);
        if (k < 0) {
            char h[128] = "";
            char *dot = strchr(name, '.');
            toml_quote(name, strlen(name), q, sizeof(q));
            if (dot)
                *dot = '\0';
            int g = dot ? suggest_key(name, dot + 1) : suggest_key(NULL, name);
            if (g >= 0)
                hint(h, sizeof(h), keys[g].name);
            return fail(err, errlen, "--set: unknown key %s%s", q, h);
        }
        struct place pl = {.origin = CONFIG_ORIGIN_FLAG};
        int r = apply_text(c, (enum config_key)k, eq + 1, &pl, err, errlen);
        if (r < 0)
            return r;
    }
    return 0;
}

/* agent.id left empty: the machine's hostname. */
static int default_id(struct config *c, char *err, size_t errlen)
{
    char host[256];
    if (c->agent.id)
        return 0;
    if (gethostname(host, sizeof(host)) < 0)
        return fail(err, errlen, "agent.id is not set and the hostname cannot be read: %s",
                    strerror(errno));
    host[sizeof(host) - 1] = '\0';
    if (!*host || check_id(host)) {
        char q[TOML_QUOTE_MAX];
        toml_quote(host, strlen(host), q, sizeof(q));
        return fail(err, errlen,
                    "agent.id is not set and the hostname %s is not a valid id (%s): set agent.id",
                    q, check_id(host) ? check_id(host) : "empty");
    }
    c->agent.id = strdup(host);
    if (!c->agent.id)
        return -ENOMEM;
    c->origin[CONFIG_AGENT_ID] = (struct config_value_origin){CONFIG_ORIGIN_DEFAULT, 0};
    return 0;
}

int config_load(const struct config_source *src, struct config *ret, char *err, size_t errlen)
{
    struct config c;
    int r;

    if (errlen)
        err[0] = '\0';
    r = config_init(&c);
    if (r < 0)
        return r;
    r = load_file(&c, src, err, errlen);
    if (r >= 0)
        r = load_env(&c, src->env, err, errlen);
    if (r >= 0)
        r = load_flags(&c, src->flags, src->n_flags, err, errlen);
    if (r >= 0)
        r = default_id(&c, err, errlen);
    if (r < 0) {
        if (r == -ENOMEM && errlen)
            snprintf(err, errlen, "out of memory while loading the config");
        config_free(&c);
        return r;
    }
    *ret = c;
    return 0;
}

/* ---- init, free, print ------------------------------------------------------------------- */

static int set_str(char **dst, const char *v)
{
    char *n = strdup(v);
    if (!n)
        return -ENOMEM;
    free(*dst);
    *dst = n;
    return 0;
}

int config_init(struct config *c)
{
    memset(c, 0, sizeof(*c));
    int r = 0;
    r |= set_str(&c->agent.state_dir, "/var/lib/axion");
    r |= set_str(&c->agent.log_level, "info");
    r |= set_str(&c->docker.socket, "/var/run/docker.sock");
    r |= set_str(&c->local.socket, "/run/axion/agent.sock");
    r |= set_str(&c->kafka.topic_prefix, "runner");
    r |= set_str(&c->kafka.security, "ssl");
    r |= set_str(&c->telemetry.cgroup_root, "/sys/fs/cgroup");
    r |= set_str(&c->telemetry.proc_root, "/proc");
    r |= set_str(&c->path, "");
    r |= set_str(&c->policy.level, "baseline");
    c->control_plane.heartbeat_interval_ms = 5000;
    c->control_plane.keepalive_time_ms = 20000;
    c->control_plane.keepalive_timeout_ms = 10000;
    c->docker.request_timeout_ms = 30000;
    c->reconcile.resync_interval_ms = 60000;
    c->reconcile.command_timeout_ms = 5 * 60000;
    c->reconcile.concurrency = 4;
    c->reconcile.prune = true;
    c->telemetry.interval_ms = 10000;
    c->local.enabled = false;
    for (size_t k = 0; k < CONFIG_KEY_COUNT; k++)
        c->origin[k] = (struct config_value_origin){CONFIG_ORIGIN_DEFAULT, 0};
    if (r) {
        config_free(c);
        return -ENOMEM;
    }
    return 0;
}

void config_free(struct config *c)
{
    if (!c)
        return;
    free(c->agent.token);
    free(c->agent.id);
    free(c->agent.state_dir);
    free(c->agent.log_level);
    free(c->control_plane.grpc_url);
    free(c->control_plane.ca_file);
    free(c->control_plane.cert_file);
    free(c->control_plane.key_file);
    free(c->control_plane.enroll_url);
    strv_free(&c->kafka.brokers);
    free(c->kafka.topic_prefix);
    free(c->kafka.security);
    free(c->kafka.ca_file);
    free(c->kafka.cert_file);
    free(c->kafka.key_file);
    free(c->docker.socket);
    free(c->telemetry.cgroup_root);
    free(c->telemetry.proc_root);
    free(c->local.socket);
    free(c->policy.level);
    strv_free(&c->policy.bind_allow);
    strv_free(&c->policy.cap_add);
    strv_free(&c->policy.volume_drivers);
    strv_free(&c->policy.network_drivers);
    strv_free(&c->policy.log_drivers);
    strv_free(&c->policy.secret_drivers);
    strv_free(&c->policy.sysctls);
    strv_free(&c->policy.exceptions);
    free(c->path);
    memset(c, 0, sizeof(*c));
}

/* The value of k in TOML syntax (secrets masked). */
static int put_value(struct buf *b, const struct config *c, enum config_key k)
{
    const struct key_def *d = &keys[k];
    const void *f = cfield(c, d);
    char tmp[64];
    switch (d->kind) {
    case KIND_STRING: {
        const char *s = *(char *const *)f;
        if (s && (d->flags & F_SECRET))
            return buf_puts(b, "\"****\"");
        return toml_put_string(b, s ? s : "");
    }
    case KIND_INTEGER:
        return buf_printf(b, "%lld", (long long)*(const int64_t *)f);
    case KIND_BOOLEAN:
        return buf_puts(b, *(const bool *)f ? "true" : "false");
    case KIND_DURATION:
        config_format_duration(*(const uint64_t *)f, tmp, sizeof(tmp));
        return buf_printf(b, "\"%s\"", tmp);
    case KIND_LIST: {
        const struct config_strv *l = f;
        int r = buf_putc(b, '[');
        for (size_t i = 0; i < l->n && r == 0; i++) {
            if (i)
                r = buf_puts(b, ", ");
            if (r == 0)
                r = toml_put_string(b, l->v[i]);
        }
        return r < 0 ? r : buf_putc(b, ']');
    }
    }
    return -EINVAL;
}

static int put_origin(struct buf *b, const struct config *c, enum config_key k)
{
    const struct config_value_origin *o = &c->origin[k];
    char name[128];
    switch (o->origin) {
    case CONFIG_ORIGIN_DEFAULT:
        if (k == CONFIG_AGENT_ID && c->agent.id)
            return buf_puts(b, "default (hostname)");
        return buf_puts(b, "default");
    case CONFIG_ORIGIN_FILE:
        return buf_printf(b, "file %s:%u", c->path, o->line);
    case CONFIG_ORIGIN_ENV:
        config_key_env_name(k, name, sizeof(name));
        return buf_printf(b, "env %s", name);
    case CONFIG_ORIGIN_FLAG:
        return buf_printf(b, "flag --set %s", keys[k].name);
    }
    return -EINVAL;
}

void config_print(const struct config *c, FILE *out)
{
    const char *section = NULL;
    fprintf(out, "# effective config of axion-agent; file: %s\n",
            c->path && *c->path ? c->path : "(none, defaults)");
    for (size_t k = 0; k < CONFIG_KEY_COUNT; k++) {
        const struct key_def *d = &keys[k];
        if (!section || !streq(section, d->section)) {
            fprintf(out, "\n[%s]\n", d->section);
            section = d->section;
        }
        struct buf b = BUF_INIT(1024 * 1024);
        int r = buf_printf(&b, "%s = ", d->key);
        if (r == 0)
            r = put_value(&b, c, (enum config_key)k);
        if (r == 0)
            r = buf_puts(&b, " # ");
        if (r == 0)
            r = put_origin(&b, c, (enum config_key)k);
        if (r < 0)
            fprintf(out, "%s = ? # out of memory\n", d->key);
        else
            fprintf(out, "%s\n", b.data);
        buf_release(&b);
    }
}

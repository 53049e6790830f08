#include "compose/policy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

static int refuse(const struct compose_project *p, struct compose_error *err,
                  struct compose_pos pos, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int refuse(const struct compose_project *p, struct compose_error *err,
                  struct compose_pos pos, const char *path, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    compose_error_set(err, p->filename, pos.line, pos.col, path, "refused by policy: %s", msg);
    return -EPERM;
}

/* Lexical normalisation of an absolute path into out: no ".", "..", "//" or trailing "/".
 * false when path is not absolute or does not fit. */
static bool normalize(const char *path, char *out, size_t len)
{
    if (path[0] != '/' || len < 2)
        return false;
    size_t k = 0;
    out[k++] = '/';
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t cl = e ? (size_t)(e - p) : strlen(p);
        if (cl == 1 && p[0] == '.') {
            /* skip */
        } else if (cl == 2 && p[0] == '.' && p[1] == '.') {
            while (k > 1 && out[k - 1] != '/')
                k--;
            if (k > 1)
                k--; /* the slash before the component */
        } else {
            if (k > 1) {
                if (k + 1 >= len)
                    return false;
                out[k++] = '/';
            }
            if (k + cl >= len)
                return false;
            memcpy(out + k, p, cl);
            k += cl;
        }
        p += cl;
    }
    out[k] = '\0';
    return true;
}

bool policy_path_allowed(const char *path, char *const *prefixes, size_t n_prefixes)
{
    char np[4096], pp[4096];
    if (!normalize(path, np, sizeof(np)))
        return false;
    for (size_t i = 0; i < n_prefixes; i++) {
        if (!prefixes[i] || !normalize(prefixes[i], pp, sizeof(pp)))
            continue;
        size_t pl = strlen(pp);
        if (streq(pp, "/"))
            return true;
        if (strncmp(np, pp, pl) == 0 && (np[pl] == '\0' || np[pl] == '/'))
            return true;
    }
    return false;
}

static bool is_host(const char *s)
{
    return s && streq(s, "host");
}

/* A local volume bound to a host path: driver local (or none) with o=...bind... */
static const char *volume_bind_device(const struct compose_volume *v)
{
    if (v->external || (v->driver && *v->driver && !streq(v->driver, "local")))
        return NULL;
    const char *o = compose_map_get(&v->driver_opts, "o");
    if (!o)
        return NULL;
    bool bind = false;
    const char *s = o;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if ((l == 4 && strncmp(s, "bind", 4) == 0) || (l == 5 && strncmp(s, "rbind", 5) == 0))
            bind = true;
        s += l;
        if (*s == ',')
            s++;
    }
    if (!bind)
        return NULL;
    const char *dev = compose_map_get(&v->driver_opts, "device");
    return dev ? dev : "";
}

int policy_check(const struct compose_project *p, const struct policy_rules *rules,
                 struct compose_error *err)
{
    static const struct policy_rules none;
    if (!rules)
        rules = &none;
    char path[300];
    for (size_t i = 0; i < p->n_services; i++) {
        const struct compose_service *s = &p->services[i];
#define PATH(suffix) (snprintf(path, sizeof(path), "services.%s%s", s->name, suffix), path)
        if (s->privileged && !rules->allow_privileged)
            return refuse(p, err, s->privileged_pos, PATH(".privileged"),
                          "privileged containers are not allowed (policy.allow_privileged)");
        if (!rules->allow_host_namespaces) {
            if (is_host(s->network_mode))
                return refuse(p, err, s->network_mode_pos, PATH(".network_mode"),
                              "the host network namespace is not allowed "
                              "(policy.allow_host_namespaces)");
            if (is_host(s->pid))
                return refuse(p, err, s->pid_pos, PATH(".pid"),
                              "the host PID namespace is not allowed "
                              "(policy.allow_host_namespaces)");
            if (is_host(s->ipc))
                return refuse(p, err, s->ipc_pos, PATH(".ipc"),
                              "the host IPC namespace is not allowed "
                              "(policy.allow_host_namespaces)");
            for (size_t j = 0; j < s->n_networks; j++) {
                const struct compose_network *n = compose_project_network(p, s->networks[j].name);
                if (n && n->external && is_host(n->name))
                    return refuse(p, err, s->networks[j].pos, PATH(".networks"),
                                  "attaching to the host network (\"%s\") is not allowed "
                                  "(policy.allow_host_namespaces)",
                                  s->networks[j].name);
            }
        }
        if (s->cap_add.n && !rules->allow_cap_add)
            return refuse(p, err, s->cap_add_pos, PATH(".cap_add"),
                          "adding capabilities (%s) is not allowed (policy.allow_cap_add)",
                          s->cap_add.v[0]);
        if (s->devices.n && !rules->allow_devices)
            return refuse(p, err, s->devices_pos, PATH(".devices"),
                          "devices (%s) are not allowed (policy.allow_devices)", s->devices.v[0]);
        for (size_t j = 0; j < s->n_mounts; j++) {
            const struct compose_mount *m = &s->mounts[j];
            char suffix[64];
            snprintf(suffix, sizeof(suffix), ".volumes[%zu]", j);
            if (streq(m->type, "bind") || streq(m->type, "npipe")) {
                if (!policy_path_allowed(m->source, rules->bind_allow, rules->n_bind_allow))
                    return refuse(p, err, m->pos, PATH(suffix),
                                  "bind mount of %s is outside the allowed host paths "
                                  "(policy.bind_allow)",
                                  m->source);
            } else if (streq(m->type, "volume") && m->source) {
                const struct compose_volume *v = compose_project_volume(p, m->source);
                const char *dev = v ? volume_bind_device(v) : NULL;
                if (dev && !policy_path_allowed(dev, rules->bind_allow, rules->n_bind_allow))
                    return refuse(p, err, m->pos, PATH(suffix),
                                  "volume %s binds the host path \"%s\", outside the allowed "
                                  "host paths (policy.bind_allow)",
                                  m->source, dev);
            }
        }
#undef PATH
    }
    return 0;
}

#include "reconciler/spec_diff.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "lib/util.h"

/* What the Engine (20.10 and later) stores when a service spec leaves a field out. Paths have
 * [*] for any list index. */
static const struct {
    const char *path;
    const char *json;
} engine_defaults[] = {
    {"TaskTemplate.ContainerSpec.StopGracePeriod", "10000000000"},
    {"TaskTemplate.ContainerSpec.Isolation", "\"default\""},
    {"TaskTemplate.RestartPolicy",
     "{\"Condition\":\"any\",\"Delay\":5000000000,\"MaxAttempts\":0}"},
    {"TaskTemplate.RestartPolicy.Condition", "\"any\""},
    {"TaskTemplate.RestartPolicy.Delay", "5000000000"},
    {"TaskTemplate.Runtime", "\"container\""},
    {"UpdateConfig", "{\"Parallelism\":1,\"FailureAction\":\"pause\",\"Monitor\":5000000000,"
                     "\"MaxFailureRatio\":0,\"Order\":\"stop-first\"}"},
    {"UpdateConfig.Parallelism", "1"},
    {"UpdateConfig.FailureAction", "\"pause\""},
    {"UpdateConfig.Monitor", "5000000000"},
    {"UpdateConfig.Order", "\"stop-first\""},
    {"RollbackConfig", "{\"Parallelism\":1,\"FailureAction\":\"pause\",\"Monitor\":5000000000,"
                       "\"MaxFailureRatio\":0,\"Order\":\"stop-first\"}"},
    {"RollbackConfig.Parallelism", "1"},
    {"RollbackConfig.FailureAction", "\"pause\""},
    {"RollbackConfig.Monitor", "5000000000"},
    {"RollbackConfig.Order", "\"stop-first\""},
    {"Mode.Replicated.Replicas", "1"},
    {"Mode.ReplicatedJob.MaxConcurrent", "1"},
    {"Mode.ReplicatedJob.TotalCompletions", "1"},
    {"EndpointSpec.Mode", "\"vip\""},
    {"EndpointSpec.Ports[*].Protocol", "\"tcp\""},
    {"EndpointSpec.Ports[*].PublishMode", "\"ingress\""},
};

struct differ {
    const struct spec_diff_opts *opts;
    char **paths;
    size_t n, cap;
    int err;
};

static void report(struct differ *d, const char *path)
{
    if (d->err)
        return;
    char *copy = strdup(path[0] ? path : "(root)");
    char **slot = copy ? ARRAY_PUSH(&d->paths, &d->n, &d->cap) : NULL;
    if (!slot) {
        free(copy);
        d->err = -ENOMEM;
        return;
    }
    *slot = copy;
}

static bool is_zero(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE:
        return true;
    case JSON_INTEGER:
        return json_integer_value(v) == 0;
    case JSON_REAL:
        return json_real_value(v) == 0;
    case JSON_STRING:
        return json_string_length(v) == 0;
    case JSON_OBJECT:
        return json_object_size(v) == 0;
    case JSON_ARRAY:
        return json_array_size(v) == 0;
    default:
        return false;
    }
}

/* path with every [n] written as [*] */
static void generic_path(const char *path, char *out, size_t len)
{
    size_t k = 0;
    for (const char *p = path; *p && k + 4 < len; p++) {
        if (*p == '[') {
            memcpy(out + k, "[*]", 3);
            k += 3;
            while (*p && *p != ']')
                p++;
            if (!*p)
                break;
        } else {
            out[k++] = *p;
        }
    }
    out[k] = '\0';
}

static bool json_same(const json_t *a, const json_t *b);

static bool is_default(const char *path, const json_t *v)
{
    char gp[512];
    generic_path(path, gp, sizeof(gp));
    for (size_t i = 0; i < ARRAY_SIZE(engine_defaults); i++) {
        if (!streq(gp, engine_defaults[i].path))
            continue;
        json_t *def = json_loads(engine_defaults[i].json, JSON_DECODE_ANY, NULL);
        bool same = def && json_same(def, v);
        json_decref(def);
        return same;
    }
    return false;
}

static bool json_same(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    return json_equal((json_t *)a, (json_t *)b);
}

/* A Swarm object ID: 25 characters of [a-z0-9]. */
static bool looks_like_id(const char *s)
{
    size_t n = strlen(s);
    if (n != 25)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && streq(s + n - m, suffix);
}

static void diff(struct differ *d, const json_t *want, const json_t *have, char *path, size_t plen,
                 size_t cap);

static void diff_key(struct differ *d, const char *key, const json_t *want, const json_t *have,
                     char *path, size_t plen, size_t cap)
{
    int n = snprintf(path + plen, cap - plen, "%s%s", plen ? "." : "", key);
    size_t nl = n > 0 && (size_t)n < cap - plen ? plen + (size_t)n : plen;
    if (!want) {
        if (is_zero(have) || is_default(path, have)) {
            /* nothing the desired spec would change */
        } else if (json_is_object(have)) {
            json_t *empty = json_object();
            if (!empty)
                d->err = -ENOMEM;
            else
                diff(d, empty, have, path, nl, cap);
            json_decref(empty);
        } else {
            report(d, path);
        }
    } else if (!have) {
        if (!is_zero(want))
            report(d, path);
    } else {
        diff(d, want, have, path, nl, cap);
    }
    path[plen] = '\0';
}

static void diff(struct differ *d, const json_t *want, const json_t *have, char *path, size_t plen,
                 size_t cap)
{
    if (json_is_object(want) && json_is_object(have)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)want, k, v)
            diff_key(d, k, v, json_object_get(have, k), path, plen, cap);
        json_object_foreach((json_t *)have, k, v)
        {
            if (!json_object_get(want, k))
                diff_key(d, k, NULL, v, path, plen, cap);
        }
        return;
    }
    if (json_is_array(want) && json_is_array(have)) {
        if (json_array_size(want) != json_array_size(have)) {
            report(d, path);
            return;
        }
        for (size_t i = 0; i < json_array_size(want); i++) {
            int n = snprintf(path + plen, cap - plen, "[%zu]", i);
            size_t nl = n > 0 && (size_t)n < cap - plen ? plen + (size_t)n : plen;
            diff(d, json_array_get(want, i), json_array_get(have, i), path, nl, cap);
            path[plen] = '\0';
        }
        return;
    }
    if (json_same(want, have))
        return;
    if (is_zero(want) && is_default(path, have))
        return;
    if (json_is_string(want) && json_is_string(have)) {
        const char *w = json_string_value(want), *h = json_string_value(have);
        /* the Engine pins a digest to the image when it can resolve one */
        if (ends_with(path, "ContainerSpec.Image") && strncmp(h, w, strlen(w)) == 0 &&
            h[strlen(w)] == '@')
            return;
        if (ends_with(path, ".SecretID") || ends_with(path, ".ConfigID"))
            return;
        if (ends_with(path, ".Target") && strstr(path, "Networks[") && looks_like_id(h)) {
            if (!d->opts || !d->opts->network_name)
                return;
            const char *name = d->opts->network_name(d->opts->ud, h);
            if (name && streq(name, w))
                return;
        }
    }
    report(d, path);
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int spec_diff_fields(const json_t *desired, const json_t *live, const struct spec_diff_opts *opts,
                     char ***ret_paths, size_t *ret_n)
{
    struct differ d = {.opts = opts};
    char path[1024] = "";
    diff(&d, desired, live, path, 0, sizeof(path));
    if (d.err) {
        spec_diff_free(d.paths, d.n);
        return d.err;
    }
    if (d.n)
        qsort(d.paths, d.n, sizeof(*d.paths), cmp_strp);
    *ret_paths = d.paths;
    *ret_n = d.n;
    return 0;
}

void spec_diff_free(char **paths, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

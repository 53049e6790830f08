/* Compose file → compose model. The YAML tree (compose_yaml) is walked once with the path and
 * place of every node at hand; every string value is interpolated where it is read, so a value
 * reached through an alias is interpolated and typed for the place it is used, as docker does
 * after go-yaml has expanded the alias. Value types follow docker's compose schema (v3.9);
 * a string produced by interpolation is cast to the boolean or number a field wants. */
#include "compose/compose.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "lib/util.h"
#include "compose/compose_arena.h"
#include "compose/compose_interp.h"
#include "compose/compose_util.h"
#include "compose/compose_yaml.h"

#define DEFAULT_FILENAME "compose.yml"

int compose_error_set(struct compose_error *err, const char *file, unsigned line, unsigned col,
                      const char *path, const char *fmt, ...)
{
    if (!err)
        return -EINVAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
    snprintf(err->path, sizeof(err->path), "%s", path ? path : "");
    err->line = line;
    err->col = col;
    int n = 0;
    size_t sz = sizeof(err->text);
    if (err->file[0] && line)
        n = snprintf(err->text, sz, "%s:%u:%u: ", err->file, line, col);
    else if (err->file[0])
        n = snprintf(err->text, sz, "%s: ", err->file);
    if (n < 0 || (size_t)n >= sz)
        n = 0;
    if (err->path[0])
        snprintf(err->text + n, sz - (size_t)n, "%s: %s", err->path, err->msg);
    else
        snprintf(err->text + n, sz - (size_t)n, "%s", err->msg);
    return -EINVAL;
}

const char *compose_vars_get(const struct compose_vars *vars, const char *name)
{
    if (!vars)
        return NULL;
    for (size_t i = vars->n; i > 0; i--)
        if (vars->v[i - 1].name && streq(vars->v[i - 1].name, name))
            return vars->v[i - 1].value;
    return NULL;
}

const char *compose_map_get(const struct compose_map *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (streq(m->v[i].key, key))
            return m->v[i].value;
    return NULL;
}

/* ---- the loader ------------------------------------------------------------------------- */

struct loader {
    struct compose_project *p;
    struct compose_arena *a;
    const char *file;
    struct compose_vars vars;
    struct compose_error *err;
    size_t expanded;
    size_t ports; /* expanded ports so far, all services */
    char path[256];
    size_t path_len;
    size_t warn_cap;
};

/* A scalar after interpolation. */
struct sval {
    enum compose_ytype type;
    const char *s; /* text (interpolated for strings) */
    size_t len;
    bool b;
    int64_t i;
    double f;
    bool interpolated; /* interpolation changed the text: it may be cast */
};

static size_t path_push(struct loader *l, const char *key)
{
    size_t old = l->path_len;
    int n = snprintf(l->path + old, sizeof(l->path) - old, "%s%s", old ? "." : "", key);
    if (n > 0)
        l->path_len = old + (size_t)n < sizeof(l->path) ? old + (size_t)n : sizeof(l->path) - 1;
    return old;
}

static size_t path_index(struct loader *l, size_t i)
{
    size_t old = l->path_len;
    int n = snprintf(l->path + old, sizeof(l->path) - old, "[%zu]", i);
    if (n > 0)
        l->path_len = old + (size_t)n < sizeof(l->path) ? old + (size_t)n : sizeof(l->path) - 1;
    return old;
}

static void path_pop(struct loader *l, size_t old)
{
    l->path_len = old;
    l->path[old] = '\0';
}

static int fail(struct loader *l, const struct compose_ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct loader *l, const struct compose_ynode *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    compose_error_set(l->err, l->file, n ? n->line : 0, n ? n->col : 0, l->path, "%s", msg);
    return -EINVAL;
}

static int warn(struct loader *l, const struct compose_ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int warn(struct loader *l, const struct compose_ynode *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct compose_strv *w = &l->p->warnings;
    if (w->n == l->warn_cap) {
        size_t ncap = l->warn_cap * 2 + 8;
        char **nv = compose_arena_grow(l->a, w->v, w->n, ncap, sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        w->v = nv;
        l->warn_cap = ncap;
    }
    char *line = compose_arena_printf(l->a, "%s:%u:%u: %s: %s", l->file, n ? n->line : 0,
                                      n ? n->col : 0, l->path, msg);
    if (!line)
        return -ENOMEM;
    w->v[w->n++] = line;
    return 0;
}

/* How a node is shown after "got": the text of a scalar, or what kind of thing it is. */
static void describe(const struct compose_ynode *n, const struct sval *v, char *out, size_t len)
{
    if (n->kind != COMPOSE_YSCALAR) {
        snprintf(out, len, "%s", compose_yaml_describe(n));
        return;
    }
    const char *s = v ? v->s : n->str;
    size_t sl = v ? v->len : n->len;
    int max = sl > 80 ? 80 : (int)sl;
    const char *more = sl > 80 ? "..." : "";
    enum compose_ytype t = v ? v->type : n->type;
    if (t == COMPOSE_YSTR)
        snprintf(out, len, "\"%.*s%s\"", max, s, more);
    else if (t == COMPOSE_YNULL)
        snprintf(out, len, "null");
    else
        snprintf(out, len, "%.*s%s", max, s, more);
}

static int expected(struct loader *l, const struct compose_ynode *n, const struct sval *v,
                    const char *want)
{
    char got[128];
    describe(n, v, got, sizeof(got));
    enum compose_ytype t = v ? v->type : n->type;
    bool plain = n->kind == COMPOSE_YSCALAR && n->plain;
    const char *hint = "";
    if (plain && t == COMPOSE_YBOOL && !strstr(want, "boolean"))
        hint = " (YAML reads it as a boolean: quote it)";
    else if (plain && t == COMPOSE_YNULL && !strstr(want, "null"))
        hint = " (YAML reads it as null: quote it)";
    return fail(l, n, "expected %s, got %s%s", want, got, hint);
}

/* Reads a scalar, interpolating strings. */
static int scalar(struct loader *l, const struct compose_ynode *n, struct sval *ret,
                  const char *want)
{
    if (n->kind != COMPOSE_YSCALAR)
        return expected(l, n, NULL, want);
    *ret =
        (struct sval){.type = n->type, .s = n->str, .len = n->len, .b = n->b, .i = n->i, .f = n->f};
    if (n->type != COMPOSE_YSTR || !compose_interp_needed(n->str, n->len))
        return 0;
    char msg[512];
    char *out = NULL;
    size_t out_len = 0;
    size_t room = COMPOSE_MAX_EXPANDED - l->expanded;
    int r = compose_interp_expand(n->str, n->len, &l->vars, room, &out, &out_len, msg, sizeof(msg));
    if (r == -ENOMEM)
        return r;
    if (r == -E2BIG) {
        fail(l, n, "interpolation produces more than %d bytes in all", COMPOSE_MAX_EXPANDED);
        return -E2BIG;
    }
    if (r < 0)
        return fail(l, n, "%s", msg);
    l->expanded += out_len;
    if (memchr(out, '\0', out_len)) {
        free(out);
        return fail(l, n, "interpolation produced a NUL character");
    }
    ret->s = compose_arena_strndup(l->a, out, out_len);
    ret->len = out_len;
    ret->interpolated = out_len != n->len || memcmp(out, n->str, out_len) != 0;
    free(out);
    if (!ret->s)
        return -ENOMEM;
    return 0;
}

/* Walks a subtree only to interpolate it: docker refuses a bad ${...} anywhere, even in keys it
 * ignores. */
static int check_tree(struct loader *l, const struct compose_ynode *n)
{
    struct sval v = {0};
    if (n->kind == COMPOSE_YSCALAR)
        return scalar(l, n, &v, "a value");
    for (size_t i = 0; i < n->n; i++) {
        size_t old = n->kind == COMPOSE_YMAP ? path_push(l, n->keys[i]->str) : path_index(l, i);
        int r = check_tree(l, n->vals[i]);
        if (r < 0)
            return r;
        path_pop(l, old);
    }
    return 0;
}

static int rd_str(struct loader *l, const struct compose_ynode *n, char **ret)
{
    struct sval v = {0};
    int r = scalar(l, n, &v, "a string");
    if (r < 0)
        return r;
    if (v.type != COMPOSE_YSTR)
        return expected(l, n, &v, "a string");
    /* Not a copy: node strings live in the project's arena and are never changed (an aliased
     * node is read at many places); code that edits a string copies it first. */
    *ret = (char *)v.s;
    return 0;
}

/* A string, or null (→ NULL). */
static int rd_str_or_null(struct loader *l, const struct compose_ynode *n, char **ret)
{
    if (n->kind == COMPOSE_YSCALAR && n->type == COMPOSE_YNULL) {
        *ret = NULL;
        return 0;
    }
    return rd_str(l, n, ret);
}

static int rd_bool(struct loader *l, const struct compose_ynode *n, bool *ret)
{
    struct sval v = {0};
    int r = scalar(l, n, &v, "a boolean");
    if (r < 0)
        return r;
    if (v.type == COMPOSE_YBOOL) {
        *ret = v.b;
        return 0;
    }
    if (v.type == COMPOSE_YSTR && v.interpolated) {
        static const char *const t[] = {"y", "yes", "true", "on"};
        static const char *const f[] = {"n", "no", "false", "off"};
        for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
            if (strcasecmp(v.s, t[i]) == 0) {
                *ret = true;
                return 0;
            }
            if (strcasecmp(v.s, f[i]) == 0) {
                *ret = false;
                return 0;
            }
        }
    }
    return expected(l, n, &v, "a boolean");
}

static int rd_int(struct loader *l, const struct compose_ynode *n, int64_t *ret)
{
    struct sval v = {0};
    int r = scalar(l, n, &v, "an integer");
    if (r < 0)
        return r;
    if (v.type == COMPOSE_YINT) {
        *ret = v.i;
        return 0;
    }
    if (v.type == COMPOSE_YSTR && v.interpolated && compose_util_decimal(v.s, ret) == 0)
        return 0;
    return expected(l, n, &v, "an integer");
}

static int rd_uint(struct loader *l, const struct compose_ynode *n, uint64_t *ret)
{
    int64_t i;
    int r = rd_int(l, n, &i);
    if (r < 0)
        return r;
    if (i < 0)
        return fail(l, n, "expected a non-negative integer, got %lld", (long long)i);
    *ret = (uint64_t)i;
    return 0;
}

static int rd_u64(struct loader *l, const struct compose_ynode *n, struct compose_u64 *ret)
{
    int r = rd_uint(l, n, &ret->v);
    if (r == 0)
        ret->set = true;
    return r;
}

static int rd_number(struct loader *l, const struct compose_ynode *n, double *ret)
{
    struct sval v = {0};
    int r = scalar(l, n, &v, "a number");
    if (r < 0)
        return r;
    if (v.type == COMPOSE_YINT) {
        *ret = (double)v.i;
        return 0;
    }
    if (v.type == COMPOSE_YFLOAT) {
        *ret = v.f;
        return 0;
    }
    if (v.type == COMPOSE_YSTR && v.interpolated) {
        char *end;
        errno = 0;
        double d = strtod(v.s, &end);
        if (v.len && !*end && errno == 0 && isfinite(d)) {
            *ret = d;
            return 0;
        }
    }
    return expected(l, n, &v, "a number");
}

static int rd_duration(struct loader *l, const struct compose_ynode *n, int64_t *ret)
{
    struct sval v = {0};
    int r = scalar(l, n, &v, "a duration");
    if (r < 0)
        return r;
    if (v.type != COMPOSE_YSTR)
        return expected(l, n, &v, "a duration as a string (like \"10s\" or \"1m30s\")");
    if (compose_util_duration(v.s, ret) < 0)
        return expected(l, n, &v, "a duration (like 10s, 1m30s or 500ms)");
    return 0;
}

static int rd_dur(struct loader *l, const struct compose_ynode *n, struct compose_duration *ret)
{
    int r = rd_duration(l, n, &ret->ns);
    if (r == 0)
        ret->set = true;
    return r;
}

static int strv_add(struct loader *l, struct compose_strv *sv, size_t *cap, char *s)
{
    if (sv->n == *cap) {
        size_t ncap = *cap * 2 + 4;
        char **nv = compose_arena_grow(l->a, sv->v, sv->n, ncap, sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        sv->v = nv;
        *cap = ncap;
    }
    sv->v[sv->n++] = s;
    return 0;
}

/* A list of strings; unique: docker's schema wants the items distinct. */
static int rd_strlist(struct loader *l, const struct compose_ynode *n, bool unique,
                      struct compose_strv *ret)
{
    if (n->kind != COMPOSE_YSEQ)
        return expected(l, n, NULL, "a list of strings");
    struct compose_strv sv = {0};
    size_t cap = 0;
    _cleanup_(compose_util_map_release) struct compose_util_map seen = {0};
    for (size_t i = 0; i < n->n; i++) {
        size_t old = path_index(l, i);
        char *s = NULL;
        int r = rd_str(l, n->vals[i], &s);
        if (r < 0)
            return r;
        if (unique) {
            if (compose_util_map_get(&seen, s, strlen(s), NULL))
                return fail(l, n->vals[i], "duplicate entry \"%s\"", s);
            if (compose_util_map_put(&seen, s, strlen(s), 0) < 0)
                return -ENOMEM;
        }
        r = strv_add(l, &sv, &cap, s);
        if (r < 0)
            return r;
        path_pop(l, old);
    }
    *ret = sv;
    return 0;
}

/* A string or a list of strings. */
static int rd_str_or_list(struct loader *l, const struct compose_ynode *n, struct compose_strv *ret)
{
    if (n->kind == COMPOSE_YSEQ)
        return rd_strlist(l, n, true, ret);
    if (n->kind != COMPOSE_YSCALAR || n->type != COMPOSE_YSTR)
        return expected(l, n, NULL, "a string or a list of strings");
    char *s = NULL;
    int r = rd_str(l, n, &s);
    if (r < 0)
        return r;
    char **v = compose_arena_alloc(l->a, sizeof(*v));
    if (!v)
        return -ENOMEM;
    v[0] = s;
    *ret = (struct compose_strv){.v = v, .n = 1};
    return 0;
}

/* Sets key in m (the last value wins, at the first place); index finds keys in m. */
static int map_set(struct loader *l, struct compose_map *m, size_t *cap,
                   struct compose_util_map *index, char *key, char *value)
{
    uintptr_t at;
    size_t kl = strlen(key);
    if (compose_util_map_get(index, key, kl, &at)) {
        m->v[at].value = value;
        return 0;
    }
    if (compose_util_map_put(index, key, kl, m->n) < 0)
        return -ENOMEM;
    if (m->n == *cap) {
        size_t ncap = *cap * 2 + 4;
        struct compose_kv *nv = compose_arena_grow(l->a, m->v, m->n, ncap, sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        m->v = nv;
        *cap = ncap;
    }
    m->v[m->n++] = (struct compose_kv){.key = key, .value = value};
    return 0;
}

/* A scalar value of a mapping written as text the way docker's loader does (Go's fmt.Sprint):
 * strings as they are, numbers in Go's format. Booleans are refused (docker's schema). */
static int rd_map_value(struct loader *l, const struct compose_ynode *n, bool allow_null,
                        char **ret)
{
    struct sval v = {0};
    const char *want = allow_null ? "a string, a number or null" : "a string or a number";
    int r = scalar(l, n, &v, want);
    if (r < 0)
        return r;
    char buf[64];
    switch (v.type) {
    case COMPOSE_YSTR:
        *ret = (char *)v.s;
        return 0;
    case COMPOSE_YINT:
        snprintf(buf, sizeof(buf), "%lld", (long long)v.i);
        break;
    case COMPOSE_YFLOAT:
        compose_util_format_float(v.f, buf, sizeof(buf));
        break;
    case COMPOSE_YNULL:
        if (!allow_null)
            return expected(l, n, &v, want);
        *ret = NULL;
        return 0;
    case COMPOSE_YBOOL:
        return expected(l, n, &v, want);
    }
    *ret = compose_arena_strdup(l->a, buf);
    return *ret ? 0 : -ENOMEM;
}

enum map_nil {
    MAP_NIL_EMPTY, /* "key" and key: null mean "" (labels, sysctls) */
    MAP_NIL_KEEP,  /* they mean "no value" (environment) */
};

/* docker's list_or_dict: {key: value} or ["key=value", "key"]. */
static int rd_list_or_dict(struct loader *l, const struct compose_ynode *n, enum map_nil nil,
                           struct compose_map *ret)
{
    struct compose_map m = {.set = true};
    size_t cap = 0;
    _cleanup_(compose_util_map_release) struct compose_util_map index = {0};
    _cleanup_(compose_util_map_release) struct compose_util_map seen = {0};
    int r;
    if (n->kind == COMPOSE_YMAP) {
        for (size_t i = 0; i < n->n; i++) {
            size_t old = path_push(l, n->keys[i]->str);
            char *value = NULL;
            r = rd_map_value(l, n->vals[i], true, &value);
            if (r < 0)
                return r;
            if (!value && nil == MAP_NIL_EMPTY)
                value = "";
            r = map_set(l, &m, &cap, &index, (char *)n->keys[i]->str, value);
            if (r < 0)
                return r;
            path_pop(l, old);
        }
    } else if (n->kind == COMPOSE_YSEQ) {
        for (size_t i = 0; i < n->n; i++) {
            size_t old = path_index(l, i);
            char *s = NULL;
            r = rd_str(l, n->vals[i], &s);
            if (r < 0)
                return r;
            if (compose_util_map_get(&seen, n->vals[i]->str, n->vals[i]->len, NULL))
                return fail(l, n->vals[i], "duplicate entry \"%s\"", s);
            if (compose_util_map_put(&seen, n->vals[i]->str, n->vals[i]->len, 0) < 0)
                return -ENOMEM;
            char *eq = strchr(s, '=');
            char *value = NULL;
            if (eq) {
                value = eq + 1;
                s = compose_arena_strndup(l->a, s, (size_t)(eq - s));
                if (!s)
                    return -ENOMEM;
            } else if (nil == MAP_NIL_EMPTY) {
                value = "";
            }
            r = map_set(l, &m, &cap, &index, s, value);
            if (r < 0)
                return r;
            path_pop(l, old);
        }
    } else {
        return expected(l, n, NULL, "a mapping or a list of \"key=value\" strings");
    }
    *ret = m;
    return 0;
}

/* A mapping of strings or numbers (driver_opts), or with nulls too (logging options). */
static int rd_string_map(struct loader *l, const struct compose_ynode *n, bool allow_null,
                         struct compose_map *ret)
{
    if (n->kind != COMPOSE_YMAP)
        return expected(l, n, NULL, "a mapping");
    struct compose_map m = {.set = true};
    size_t cap = 0;
    _cleanup_(compose_util_map_release) struct compose_util_map index = {0};
    for (size_t i = 0; i < n->n; i++) {
        size_t old = path_push(l, n->keys[i]->str);
        char *value = NULL;
        int r = rd_map_value(l, n->vals[i], allow_null, &value);
        if (r < 0)
            return r;
        r = map_set(l, &m, &cap, &index, (char *)n->keys[i]->str, value ? value : "");
        if (r < 0)
            return r;
        path_pop(l, old);
    }
    *ret = m;
    return 0;
}

static int want_map(struct loader *l, const struct compose_ynode *n)
{
    return n->kind == COMPOSE_YMAP ? 0 : expected(l, n, NULL, "a mapping");
}

static bool is_extension(const char *key)
{
    return strncmp(key, "x-", 2) == 0;
}

static int unknown_key(struct loader *l, const struct compose_ynode *key)
{
    return fail(l, key, "unknown key (not in the compose file format docker stack deploy reads)");
}

/* A list of single-key maps, [{key: "a"}, {key: "b"}] (placement preferences' spread, ipam
 * config's subnet): their strings, "" where an item leaves the key out. */
static int rd_keyed_list(struct loader *l, const struct compose_ynode *n, const char *key,
                         struct compose_strv *ret)
{
    if (n->kind != COMPOSE_YSEQ) {
        char what[64];
        snprintf(what, sizeof(what), "a list of {%s: ...}", key);
        return expected(l, n, NULL, what);
    }
    size_t cap = 0;
    int r = 0;
    for (size_t j = 0; j < n->n && r == 0; j++) {
        const struct compose_ynode *item = n->vals[j];
        size_t o2 = path_index(l, j);
        char *value = "";
        r = want_map(l, item);
        for (size_t q = 0; q < item->n && r == 0; q++) {
            size_t o3 = path_push(l, item->keys[q]->str);
            if (streq(item->keys[q]->str, key))
                r = rd_str(l, item->vals[q], &value);
            else
                r = unknown_key(l, item->keys[q]);
            if (r == 0)
                path_pop(l, o3);
        }
        if (r == 0)
            r = strv_add(l, ret, &cap, value);
        if (r == 0)
            path_pop(l, o2);
    }
    return r;
}

/* Letters, digits, '.', '_', '-': the names docker's schema allows for services and objects. */
static bool valid_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-'))
            return false;
    return true;
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends a zeroed element to an arena array. */
static void *arr_push(struct loader *l, void **arr, size_t *n, size_t *cap, size_t size)
{
    if (*n == *cap) {
        size_t ncap = *cap * 2 + 4;
        void *nv = compose_arena_grow(l->a, *arr, *n, ncap, size);
        if (!nv)
            return NULL;
        *arr = nv;
        *cap = ncap;
    }
    void *e = (char *)*arr + *n * size;
    memset(e, 0, size);
    (*n)++;
    return e;
}

#define ARR_PUSH(l, arr, n, cap) arr_push((l), (void **)&(arr), &(n), &(cap), sizeof(*(arr)))

static struct compose_pos pos_of(const struct compose_ynode *n)
{
    return (struct compose_pos){n->line, n->col};
}

/* ---- ports ------------------------------------------------------------------------------ */

/* nat.ParsePortRange: "80" or "8000-8010". */
static int port_range(const char *s, uint64_t *start, uint64_t *end)
{
    int64_t a, b;
    const char *dash = strchr(s, '-');
    if (!dash) {
        if (compose_util_decimal(s, &a) < 0 || *s == '+' || *s == '-' || a < 0 || a > 65535)
            return -EINVAL;
        *start = *end = (uint64_t)a;
        return 0;
    }
    char head[16];
    size_t hl = (size_t)(dash - s);
    if (hl == 0 || hl >= sizeof(head) || strchr(dash + 1, '-'))
        return -EINVAL;
    memcpy(head, s, hl);
    head[hl] = '\0';
    if (compose_util_decimal(head, &a) < 0 || compose_util_decimal(dash + 1, &b) < 0 ||
        dash[1] == '+' || a < 0 || b < 0 || a > 65535 || b > 65535 || b < a)
        return -EINVAL;
    *start = (uint64_t)a;
    *end = (uint64_t)b;
    return 0;
}

struct port_list {
    struct compose_port *v;
    size_t n, cap;
};

static int port_add(struct loader *l, struct port_list *pl, const struct compose_ynode *n,
                    const char *mode, const char *proto, uint64_t target, uint64_t published)
{
    struct compose_port *p = ARR_PUSH(l, pl->v, pl->n, pl->cap);
    if (!p)
        return -ENOMEM;
    p->mode = (char *)mode;
    p->protocol = (char *)proto;
    p->target = (uint32_t)target;
    p->published = (uint32_t)published;
    p->pos = pos_of(n);
    return 0;
}

struct port_key {
    char text[24];
    size_t index;
};

static int cmp_port_key(const void *a, const void *b)
{
    return strcmp(((const struct port_key *)a)->text, ((const struct port_key *)b)->text);
}

/* The short syntax: [[ip:]published:]target[/protocol], with ranges, as docker's
 * nat.ParsePortSpec and opts.ConvertPortToPortConfig read it. */
static int port_short(struct loader *l, struct port_list *pl, const struct compose_ynode *n,
                      const char *spec)
{
    _cleanup_free_ char *s = strdup(spec);
    if (!s)
        return -ENOMEM;
    char *parts[64];
    size_t np = 0;
    for (char *p = s;;) {
        if (np == ARRAY_SIZE(parts))
            return fail(l, n, "invalid port \"%s\": too many colons", spec);
        parts[np++] = p;
        char *c = strchr(p, ':');
        if (!c)
            break;
        *c = '\0';
        p = c + 1;
    }
    const char *raw_ip = "", *host = "", *container = parts[np - 1];
    if (np == 2)
        host = parts[0];
    else if (np >= 3) {
        host = parts[np - 2];
        raw_ip = parts[0];
        for (size_t i = 1; i + 2 < np; i++)
            parts[i][-1] = ':'; /* join the IPv6 address back */
    }
    /* protocol */
    const char *proto = "tcp";
    char *slash = strchr(container, '/');
    if (slash) {
        *slash = '\0';
        if (slash[1]) {
            proto = slash + 1;
            char *more = strchr(slash + 1, '/');
            if (more)
                *more = '\0';
        }
    }
    char proto_lc[16];
    size_t pl_len = strlen(proto);
    if (pl_len >= sizeof(proto_lc))
        return fail(l, n, "invalid port \"%s\": invalid protocol \"%s\"", spec, proto);
    for (size_t i = 0; i <= pl_len; i++)
        proto_lc[i] = (char)((proto[i] >= 'A' && proto[i] <= 'Z') ? proto[i] + 32 : proto[i]);
    if (!streq(proto_lc, "tcp") && !streq(proto_lc, "udp") && !streq(proto_lc, "sctp"))
        return fail(l, n, "invalid port \"%s\": invalid protocol \"%s\" (tcp, udp or sctp)", spec,
                    proto);
    /* address: docker accepts one, warns, and listens on every address */
    char ip[64] = "";
    size_t il = strlen(raw_ip);
    if (il >= 2 && raw_ip[0] == '[' && raw_ip[il - 1] == ']')
        snprintf(ip, sizeof(ip), "%.*s", (int)(il - 2), raw_ip + 1);
    else
        snprintf(ip, sizeof(ip), "%s", raw_ip);
    if (ip[0]) {
        unsigned char addr[16];
        if (inet_pton(AF_INET, ip, addr) != 1 && inet_pton(AF_INET6, ip, addr) != 1)
            return fail(l, n, "invalid port \"%s\": invalid IP address \"%s\"", spec, ip);
        if (!streq(ip, "0.0.0.0")) {
            int r = warn(l, n, "the address %s is ignored: Swarm publishes on every address", ip);
            if (r < 0)
                return r;
        }
    }
    if (!*container)
        return fail(l, n, "invalid port \"%s\": no container port", spec);
    uint64_t cstart, cend, hstart = 0, hend = 0;
    if (port_range(container, &cstart, &cend) < 0)
        return fail(l, n, "invalid port \"%s\": invalid container port \"%s\"", spec, container);
    if (*host && port_range(host, &hstart, &hend) < 0)
        return fail(l, n, "invalid port \"%s\": invalid published port \"%s\"", spec, host);
    if (*host && cend - cstart != hend - hstart && cend != cstart)
        return fail(l, n,
                    "invalid port \"%s\": the published and container port ranges differ in size",
                    spec);
    char *mode = "ingress";
    char *protocol = compose_arena_strdup(l->a, proto_lc);
    if (!protocol)
        return -ENOMEM;
    /* docker orders the ports of one entry by "port/protocol" as text */
    size_t count = cend - cstart + 1;
    size_t total = cstart == cend && *host ? (size_t)(hend - hstart + 1) : count;
    if (l->ports + total > COMPOSE_MAX_PORTS)
        return fail(l, n, "more than %d ports in all, port ranges expanded", COMPOSE_MAX_PORTS);
    l->ports += total;
    struct port_key *keys = calloc(count, sizeof(*keys));
    if (!keys)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        snprintf(keys[i].text, sizeof(keys[i].text), "%llu/%s", (unsigned long long)(cstart + i),
                 proto_lc);
        keys[i].index = i;
    }
    qsort(keys, count, sizeof(*keys), cmp_port_key);
    int r = 0;
    for (size_t k = 0; k < count && r == 0; k++) {
        size_t i = keys[k].index;
        uint64_t target = cstart + i;
        if (!*host) {
            r = port_add(l, pl, n, mode, protocol, target, 0);
        } else if (cstart == cend) {
            for (uint64_t h = hstart; h <= hend && r == 0; h++)
                r = port_add(l, pl, n, mode, protocol, target, h);
        } else {
            r = port_add(l, pl, n, mode, protocol, target, hstart + i);
        }
    }
    free(keys);
    return r;
}

static int port_long(struct loader *l, struct port_list *pl, const struct compose_ynode *n)
{
    char *mode = NULL, *proto = NULL;
    uint64_t target = 0, published = 0;
    bool has_target = false;
    for (size_t i = 0; i < n->n; i++) {
        const char *k = n->keys[i]->str;
        const struct compose_ynode *v = n->vals[i];
        size_t old = path_push(l, k);
        int r;
        if (streq(k, "mode")) {
            r = rd_str(l, v, &mode);
            if (r == 0 && !streq(mode, "ingress") && !streq(mode, "host"))
                r = fail(l, v, "expected \"ingress\" or \"host\", got \"%s\"", mode);
        } else if (streq(k, "target")) {
            r = rd_uint(l, v, &target);
            has_target = true;
            if (r == 0 && (target == 0 || target > 65535))
                r = fail(l, v, "expected a port number (1-65535), got %llu",
                         (unsigned long long)target);
        } else if (streq(k, "published")) {
            r = rd_uint(l, v, &published);
            if (r == 0 && published > 65535)
                r = fail(l, v, "expected a port number (1-65535), got %llu",
                         (unsigned long long)published);
        } else if (streq(k, "protocol")) {
            r = rd_str(l, v, &proto);
            if (r == 0 && !streq(proto, "tcp") && !streq(proto, "udp") && !streq(proto, "sctp"))
                r = fail(l, v, "expected \"tcp\", \"udp\" or \"sctp\", got \"%s\"", proto);
        } else {
            r = unknown_key(l, n->keys[i]);
        }
        if (r < 0)
            return r;
        path_pop(l, old);
    }
    if (!has_target)
        return fail(l, n, "a port needs a target");
    if (++l->ports > COMPOSE_MAX_PORTS)
        return fail(l, n, "more than %d ports in all, port ranges expanded", COMPOSE_MAX_PORTS);
    return port_add(l, pl, n, mode, proto, target, published);
}

static int rd_ports(struct loader *l, const struct compose_ynode *n, struct compose_service *s)
{
    if (n->kind != COMPOSE_YSEQ)
        return expected(l, n, NULL, "a list of ports");
    struct port_list pl = {0};
    _cleanup_(compose_util_map_release) struct compose_util_map seen = {0};
    for (size_t i = 0; i < n->n; i++) {
        const struct compose_ynode *e = n->vals[i];
        size_t old = path_index(l, i);
        int r;
        if (e->kind == COMPOSE_YMAP) {
            r = port_long(l, &pl, e);
        } else {
            struct sval v = {0};
            r = scalar(l, e, &v, "a port");
            if (r < 0)
                return r;
            char num[32];
            const char *spec = v.s;
            if (v.type == COMPOSE_YINT) {
                snprintf(num, sizeof(num), "%lld", (long long)v.i);
                spec = num;
            } else if (v.type != COMPOSE_YSTR) {
                return expected(l, e, &v, "a port (like \"8080:80\") or a mapping");
            }
            if (compose_util_map_get(&seen, e->str, e->len, NULL))
                return fail(l, e, "duplicate entry \"%s\"", e->str);
            if (compose_util_map_put(&seen, e->str, e->len, 0) < 0)
                return -ENOMEM;
            r = port_short(l, &pl, e, spec);
        }
        if (r < 0)
            return r;
        path_pop(l, old);
    }
    s->ports = pl.v;
    s->n_ports = pl.n;
    return 0;
}

/* ---- volumes (mounts) ------------------------------------------------------------------- */

static const char *const propagations[] = {"rprivate", "private", "rshared", "shared",
                                           "rslave",   "slave",   NULL};

static bool is_letter(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_file_path(const char *s)
{
    if (s[0] == '.' || s[0] == '/' || s[0] == '~')
        return true;
    if (!s[1])
        return false;
    if (s[0] == '\\' && s[1] == '\\')
        return true;
    return is_letter(s[0]) && s[1] == ':';
}

/* docker's ParseVolume: [source:]target[:options]. */
static int mount_short(struct loader *l, const struct compose_ynode *n, const char *spec,
                       struct compose_mount *m)
{
    size_t len = strlen(spec);
    m->type = "volume";
    if (len == 0)
        return fail(l, n, "invalid empty volume spec");
    if (len <= 2) {
        m->target = compose_arena_strdup(l->a, spec);
        return m->target ? 0 : -ENOMEM;
    }
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = spec[i];
        if (c == ':' && i - start == 1 && is_letter(spec[start]))
            continue; /* a Windows drive letter */
        if (c != ':' && c != '\0')
            continue;
        size_t bl = i - start;
        const char *b = spec + start;
        start = i + 1;
        if (bl == 0)
            return fail(l, n, "invalid volume \"%s\": empty section between colons", spec);
        char *field = compose_arena_strndup(l->a, b, bl);
        if (!field)
            return -ENOMEM;
        if (!m->source && c == '\0') {
            m->target = field;
        } else if (!m->source) {
            m->source = field;
        } else if (!m->target) {
            m->target = field;
        } else if (c == ':') {
            return fail(l, n, "invalid volume \"%s\": too many colons", spec);
        } else {
            char *save = NULL;
            for (char *opt = strtok_r(field, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
                if (streq(opt, "ro"))
                    m->read_only = true;
                else if (streq(opt, "rw"))
                    m->read_only = false;
                else if (streq(opt, "nocopy"))
                    m->has_volume = m->volume_nocopy = true;
                else
                    for (const char *const *p = propagations; *p; p++)
                        if (streq(opt, *p)) {
                            m->has_bind = true;
                            m->bind_propagation = opt;
                        }
                /* other options are ignored, as docker does */
            }
        }
    }
    if (m->source && is_file_path(m->source))
        m->type = "bind";
    return 0;
}

static int mount_long(struct loader *l, const struct compose_ynode *n, struct compose_mount *m)
{
    bool has_type = false;
    for (size_t i = 0; i < n->n; i++) {
        const char *k = n->keys[i]->str;
        const struct compose_ynode *v = n->vals[i];
        size_t old = path_push(l, k);
        int r = 0;
        if (streq(k, "type")) {
            has_type = true;
            r = rd_str(l, v, &m->type);
            if (r == 0 && !streq(m->type, "volume") && !streq(m->type, "bind") &&
                !streq(m->type, "tmpfs") && !streq(m->type, "npipe"))
                r = fail(l, v, "expected volume, bind, tmpfs or npipe, got \"%s\"", m->type);
        } else if (streq(k, "source")) {
            r = rd_str(l, v, &m->source);
        } else if (streq(k, "target")) {
            r = rd_str(l, v, &m->target);
        } else if (streq(k, "read_only")) {
            r = rd_bool(l, v, &m->read_only);
        } else if (streq(k, "consistency")) {
            r = rd_str(l, v, &m->consistency);
        } else if (streq(k, "bind")) {
            m->has_bind = true;
            r = want_map(l, v);
            for (size_t j = 0; r == 0 && j < v->n; j++) {
                size_t o2 = path_push(l, v->keys[j]->str);
                if (streq(v->keys[j]->str, "propagation")) {
                    r = rd_str(l, v->vals[j], &m->bind_propagation);
                    bool ok = false;
                    for (const char *const *p = propagations; r == 0 && *p; p++)
                        ok = ok || streq(m->bind_propagation, *p);
                    if (r == 0 && !ok)
                        r = fail(l, v->vals[j],
                                 "expected rprivate, private, rshared, shared, rslave or slave, "
                                 "got \"%s\"",
                                 m->bind_propagation);
                } else {
                    r = unknown_key(l, v->keys[j]);
                }
                if (r == 0)
                    path_pop(l, o2);
            }
        } else if (streq(k, "volume")) {
            m->has_volume = true;
            r = want_map(l, v);
            for (size_t j = 0; r == 0 && j < v->n; j++) {
                size_t o2 = path_push(l, v->keys[j]->str);
                if (streq(v->keys[j]->str, "nocopy"))
                    r = rd_bool(l, v->vals[j], &m->volume_nocopy);
                else
                    r = unknown_key(l, v->keys[j]);
                if (r == 0)
                    path_pop(l, o2);
            }
        } else if (streq(k, "tmpfs")) {
            m->has_tmpfs = true;
            r = want_map(l, v);
            for (size_t j = 0; r == 0 && j < v->n; j++) {
                size_t o2 = path_push(l, v->keys[j]->str);
                if (streq(v->keys[j]->str, "size")) {
                    r = rd_int(l, v->vals[j], &m->tmpfs_size);
                    if (r == 0 && m->tmpfs_size < 0)
                        r = fail(l, v->vals[j], "expected a size in bytes (0 or more)");
                } else {
                    r = unknown_key(l, v->keys[j]);
                }
                if (r == 0)
                    path_pop(l, o2);
            }
        } else {
            r = unknown_key(l, n->keys[i]);
        }
        if (r < 0)
            return r;
        path_pop(l, old);
    }
    if (!has_type)
        return fail(l, n, "a volume in the long syntax needs a type");
    return 0;
}

/* The checks docker's convert makes on a mount, made here so a bad manifest is refused when it
 * arrives. */
static int mount_check(struct loader *l, const struct compose_ynode *n, struct compose_mount *m)
{
    const char *t = m->type;
    if (m->source && !*m->source)
        m->source = NULL;
    if (!m->target || !*m->target)
        return fail(l, n, "a volume needs a target path in the container");
    if (streq(t, "volume")) {
        if (m->has_tmpfs)
            return fail(l, n, "tmpfs options are incompatible with type volume");
        if (m->has_bind)
            return fail(l, n, "bind options are incompatible with type volume");
    } else if (streq(t, "bind")) {
        if (!m->source)
            return fail(l, n, "a bind mount needs a source path");
        if (m->has_volume)
            return fail(l, n, "volume options are incompatible with type bind");
        if (m->has_tmpfs)
            return fail(l, n, "tmpfs options are incompatible with type bind");
        if (m->source[0] == '~') {
            const char *home = compose_vars_get(&l->vars, "HOME");
            if (!home)
                return fail(l, n,
                            "bind source \"%s\" starts with ~ but no HOME variable was supplied",
                            m->source);
            char *abs = compose_arena_printf(l->a, "%s%s", home, m->source + 1);
            if (!abs)
                return -ENOMEM;
            m->source = abs;
        }
        if (m->source[0] != '/')
            return fail(l, n,
                        "bind source \"%s\" must be an absolute path (a manifest has no working "
                        "directory on the node)",
                        m->source);
    } else if (streq(t, "tmpfs")) {
        if (m->source)
            return fail(l, n, "a tmpfs mount takes no source");
        if (m->has_bind)
            return fail(l, n, "bind options are incompatible with type tmpfs");
        if (m->has_volume)
            return fail(l, n, "volume options are incompatible with type tmpfs");
    } else if (streq(t, "npipe")) {
        if (!m->source)
            return fail(l, n, "an npipe mount needs a source");
        if (m->has_volume)
            return fail(l, n, "volume options are incompatible with type npipe");
        if (m->has_tmpfs)
            return fail(l, n, "tmpfs options are incompatible with type npipe");
    }
    return 0;
}

static int rd_mounts(struct loader *l, const struct compose_ynode *n, struct compose_service *s)
{
    if (n->kind != COMPOSE_YSEQ)
        return expected(l, n, NULL, "a list of volumes");
    size_t cap = 0;
    for (size_t i = 0; i < n->n; i++) {
        const struct compose_ynode *e = n->vals[i];
        size_t old = path_index(l, i);
        struct compose_mount *m = ARR_PUSH(l, s->mounts, s->n_mounts, cap);
        if (!m)
            return -ENOMEM;
        m->pos = pos_of(e);
        int r;
        if (e->kind == COMPOSE_YMAP) {
            r = mount_long(l, e, m);
        } else {
            char *spec = NULL;
            r = rd_str(l, e, &spec);
            if (r == 0)
                r = mount_short(l, e, spec, m);
        }
        if (r == 0)
            r = mount_check(l, e, m);
        if (r < 0)
            return r;
        path_pop(l, old);
    }
    return 0;
}

/* ---- secrets and configs of a service --------------------------------------------------- */

static int rd_file_refs(struct loader *l, const struct compose_ynode *n,
                        struct compose_file_ref **ret, size_t *ret_n)
{
    if (n->kind != COMPOSE_YSEQ)
        return expected(l, n, NULL, "a list");
    struct compose_file_ref *v = NULL;
    size_t cnt = 0, cap = 0;
    for (size_t i = 0; i < n->n; i++) {
        const struct compose_ynode *e = n->vals[i];
        size_t old = path_index(l, i);
        struct compose_file_ref *f = ARR_PUSH(l, v, cnt, cap);
        if (!f)
            return -ENOMEM;
        f->pos = pos_of(e);
        int r = 0;
        if (e->kind == COMPOSE_YMAP) {
            for (size_t j = 0; j < e->n && r == 0; j++) {
                const char *k = e->keys[j]->str;
                const struct compose_ynode *val = e->vals[j];
                size_t o2 = path_push(l, k);
                if (streq(k, "source")) {
                    r = rd_str(l, val, &f->source);
                } else if (streq(k, "target")) {
                    r = rd_str(l, val, &f->target);
                } else if (streq(k, "uid")) {
                    r = rd_str(l, val, &f->uid);
                } else if (streq(k, "gid")) {
                    r = rd_str(l, val, &f->gid);
                } else if (streq(k, "mode")) {
                    uint64_t mode = 0;
                    r = rd_uint(l, val, &mode);
                    if (r == 0 && mode > 0xFFFFFFFFULL)
                        r = fail(l, val, "expected a file mode, got %llu",
                                 (unsigned long long)mode);
                    f->mode = (uint32_t)mode;
                    f->has_mode = true;
                } else {
                    r = unknown_key(l, e->keys[j]);
                }
                if (r == 0)
                    path_pop(l, o2);
            }
            if (r == 0 && (!f->source || !*f->source))
                r = fail(l, e, "a source is required");
        } else {
            r = rd_str(l, e, &f->source);
        }
        if (r < 0)
            return r;
        path_pop(l, old);
    }
    *ret = v;
    *ret_n = cnt;
    return 0;
}

/* ---- networks of a service -------------------------------------------------------------- */

static int rd_service_networks(struct loader *l, const struct compose_ynode *n,
                               struct compose_service *s)
{
    size_t cap = 0;
    if (n->kind == COMPOSE_YSEQ) {
        struct compose_strv names;
        int r = rd_strlist(l, n, true, &names);
        if (r < 0)
            return r;
        for (size_t i = 0; i < names.n; i++) {
            struct compose_service_network *sn = ARR_PUSH(l, s->networks, s->n_networks, cap);
            if (!sn)
                return -ENOMEM;
            sn->name = names.v[i];
            sn->pos = pos_of(n->vals[i]);
        }
        return 0;
    }
    if (n->kind != COMPOSE_YMAP)
        return expected(l, n, NULL, "a list of network names or a mapping");
    for (size_t i = 0; i < n->n; i++) {
        const struct compose_ynode *v = n->vals[i];
        size_t old = path_push(l, n->keys[i]->str);
        if (!valid_name(n->keys[i]->str))
            return fail(l, n->keys[i], "invalid network name (letters, digits, '.', '_', '-')");
        struct compose_service_network *sn = ARR_PUSH(l, s->networks, s->n_networks, cap);
        if (!sn)
            return -ENOMEM;
        sn->name = (char *)n->keys[i]->str;
        sn->pos = pos_of(n->keys[i]);
        int r = 0;
        if (v->kind == COMPOSE_YSCALAR && v->type == COMPOSE_YNULL) {
            /* no options */
        } else if (v->kind != COMPOSE_YMAP) {
            r = expected(l, v, NULL, "a mapping or null");
        } else {
            for (size_t j = 0; j < v->n && r == 0; j++) {
                const char *k = v->keys[j]->str;
                size_t o2 = path_push(l, k);
                if (streq(k, "aliases")) {
                    r = rd_strlist(l, v->vals[j], true, &sn->aliases);
                    sn->has_aliases = true;
                } else if (streq(k, "ipv4_address")) {
                    r = rd_str(l, v->vals[j], &sn->ipv4_address);
                    if (r == 0)
                        r = warn(l, v->keys[j], "ignored: Swarm assigns service addresses");
                } else if (streq(k, "ipv6_address")) {
                    r = rd_str(l, v->vals[j], &sn->ipv6_address);
                    if (r == 0)
                        r = warn(l, v->keys[j], "ignored: Swarm assigns service addresses");
                } else {
                    r = unknown_key(l, v->keys[j]);
                }
                if (r == 0)
                    path_pop(l, o2);
            }
        }
        if (r < 0)
            return r;
        path_pop(l, old);
    }
    return 0;
}

/* ---- healthcheck, logging, ulimits ------------------------------------------------------ */

static int rd_healthcheck(struct loader *l, const struct compose_ynode *n,
                          struct compose_healthcheck *h)
{
    int r = want_map(l, n);
    if (r < 0)
        return r;
    h->set = true;
    bool has_test = false;
    for (size_t i = 0; i < n->n && r == 0; i++) {
        const char *k = n->keys[i]->str;
        const struct compose_ynode *v = n->vals[i];
        size_t old = path_push(l, k);
        if (streq(k, "test")) {
            has_test = true;
            if (v->kind == COMPOSE_YSEQ) {
                r = rd_strlist(l, v, false, &h->test);
            } else {
                char *cmd = NULL;
                r = rd_str(l, v, &cmd);
                char **t = compose_arena_array(l->a, 2, sizeof(*t));
                if (r == 0 && !t)
                    r = -ENOMEM;
                if (r == 0) {
                    t[0] = "CMD-SHELL";
                    t[1] = cmd;
                    h->test = (struct compose_strv){.v = t, .n = 2};
                }
            }
        } else if (streq(k, "disable")) {
            r = rd_bool(l, v, &h->disable);
        } else if (streq(k, "interval")) {
            r = rd_dur(l, v, &h->interval);
        } else if (streq(k, "timeout")) {
            r = rd_dur(l, v, &h->timeout);
        } else if (streq(k, "start_period")) {
            r = rd_dur(l, v, &h->start_period);
        } else if (streq(k, "retries")) {
            r = rd_u64(l, v, &h->retries);
        } else {
            r = unknown_key(l, n->keys[i]);
        }
        if (r == 0)
            path_pop(l, old);
    }
    if (r == 0 && h->disable && has_test && h->test.n)
        r = fail(l, n, "test and disable can't be set at the same time");
    return r;
}

static int rd_logging(struct loader *l, const struct compose_ynode *n, struct compose_logging *lg)
{
    int r = want_map(l, n);
    if (r < 0)
        return r;
    lg->set = true;
    for (size_t i = 0; i < n->n && r == 0; i++) {
        const char *k = n->keys[i]->str;
        size_t old = path_push(l, k);
        if (streq(k, "driver"))
            r = rd_str(l, n->vals[i], &lg->driver);
        else if (streq(k, "options"))
            r = rd_string_map(l, n->vals[i], true, &lg->options);
        else
            r = unknown_key(l, n->keys[i]);
        if (r == 0)
            path_pop(l, old);
    }
    return r;
}

static int rd_ulimits(struct loader *l, const struct compose_ynode *n, struct compose_service *s)
{
    int r = want_map(l, n);
    size_t cap = 0;
    for (size_t i = 0; i < n->n && r == 0; i++) {
        const char *name = n->keys[i]->str;
        const struct compose_ynode *v = n->vals[i];
        size_t old = path_push(l, name);
        for (const char *p = name; *p; p++)
            if (*p < 'a' || *p > 'z')
                return fail(l, n->keys[i], "invalid ulimit name (lower-case letters)");
        struct compose_ulimit *u = ARR_PUSH(l, s->ulimits, s->n_ulimits, cap);
        if (!u)
            return -ENOMEM;
        u->name = (char *)name;
        if (v->kind == COMPOSE_YMAP) {
            bool has_soft = false, has_hard = false;
            for (size_t j = 0; j < v->n && r == 0; j++) {
                const char *k = v->keys[j]->str;
                size_t o2 = path_push(l, k);
                if (streq(k, "soft")) {
                    r = rd_int(l, v->vals[j], &u->soft);
                    has_soft = true;
                } else if (streq(k, "hard")) {
                    r = rd_int(l, v->vals[j], &u->hard);
                    has_hard = true;
                } else {
                    r = unknown_key(l, v->keys[j]);
                }
                if (r == 0)
                    path_pop(l, o2);
            }
            if (r == 0 && (!has_soft || !has_hard))
                r = fail(l, v, "a ulimit needs both soft and hard");
        } else {
            int64_t single;
            r = rd_int(l, v, &single);
            u->soft = u->hard = single;
        }
        if (r == 0)
            path_pop(l, old);
    }
    return r;
}

/* ---- deploy ----------------------------------------------------------------------------- */

static int rd_update_config(struct loader *l, const struct compose_ynode *n,
                            struct compose_update_config *u)
{
    int r = want_map(l, n);
    u->set = true;
    for (size_t i = 0; i < n->n && r == 0; i++) {
        const char *k = n->keys[i]->str;
        const struct compose_ynode *v = n->vals[i];
        size_t old = path_push(l, k);
        if (streq(k, "parallelism")) {
            r = rd_u64(l, v, &u->parallelism);
        } else if (streq(k, "delay")) {
            r = rd_duration(l, v, &u->delay_ns);
        } else if (streq(k, "failure_action")) {
            r = rd_str(l, v, &u->failure_action);
            if (r == 0 && !streq(u->failure_action, "pause") &&
                !streq(u->failure_action, "continue") && !streq(u->failure_action, "rollback"))
                r = fail(l, v, "expected pause, continue or rollback, got \"%s\"",
                         u->failure_action);
        } else if (streq(k, "monitor")) {
            r = rd_duration(l, v, &u->monitor_ns);
        } else if (streq(k, "max_failure_ratio")) {
            r = rd_number(l, v, &u->max_failure_ratio);
            if (r == 0 && (u->max_failure_ratio < 0 || u->max_failure_ratio > 1))
                r = fail(l, v, "expected a ratio between 0 and 1");
        } else if (streq(k, "order")) {
            r = rd_str(l, v, &u->order);
            if (r == 0 && !streq(u->order, "start-first") && !streq(u->order, "stop-first"))
                r = fail(l, v, "expected start-first or stop-first, got \"%s\"", u->order);
        } else {
            r = unknown_key(l, n->keys[i]);
        }
        if (r == 0)
            path_pop(l, old);
    }
    return r;
}

static int rd_resource(struct loader *l, const struct compose_ynode *n, bool limits,
                       struct compose_resource *res)
{
    int r = want_map(l, n);
    res->set = true;
    size_t cap = 0;
    for (size_t i = 0; i < n->n && r == 0; i++) {
        const char *k = n->keys[i]->str;
        const struct compose_ynode *v = n->vals[i];
        size_t old = path_push(l, k);
        if (streq(k, "cpus")) {
            int64_t nano;
            r = rd_str(l, v, &res->cpus);
            if (r == 0) {
                int q = compose_util_nano_cpus(res->cpus, &nano);
                if (q == -ERANGE)
                    r = fail(l, v, "\"%s\" is more precise than one nano CPU", res->cpus);
                else if (q < 0)
                    r = fail(l, v, "expected a number of CPUs (like \"0.5\"), got \"%s\"",
                             res->cpus);
            }
        } else if (streq(k, "memory")) {
            char *mem = NULL;
            r = rd_str(l, v, &mem);
            if (r == 0 && compose_util_ram_bytes(mem, &res->memory) < 0)
                r = fail(l, v, "expected a size (like \"512M\" or \"1.5G\"), got \"%s\"", mem);
        } else if (streq(k, "pids") && limits) {
            r = rd_int(l, v, &res->pids);
        } else if (streq(k, "generic_resources") && !limits) {
            if (v->kind != COMPOSE_YSEQ) {
                r = expected(l, v, NULL, "a list");
                break;
            }
            for (size_t j = 0; j < v->n && r == 0; j++) {
                const struct compose_ynode *g = v->vals[j];
                size_t o2 = path_index(l, j);
                struct compose_generic_resource *gr =
                    ARR_PUSH(l, res->generic, res->n_generic, cap);
                if (!gr)
                    return -ENOMEM;
                r = want_map(l, g);
                for (size_t m = 0; m < g->n && r == 0; m++) {
                    size_t o3 = path_push(l, g->keys[m]->str);
                    if (streq(g->keys[m]->str, "discrete_resource_spec")) {
                        const struct compose_ynode *d = g->vals[m];
                        r = want_map(l, d);
                        for (size_t q = 0; q < d->n && r == 0; q++) {
                            size_t o4 = path_push(l, d->keys[q]->str);
                            if (streq(d->keys[q]->str, "kind"))
                                r = rd_str(l, d->vals[q], &gr->kind);
                            else if (streq(d->keys[q]->str, "value"))
                                r = rd_int(l, d->vals[q], &gr->value);
                            else
                                r = unknown_key(l, d->keys[q]);
                            if (r == 0)
                                path_pop(l, o4);
                        }
                    } else {
                        r = unknown_key(l, g->keys[m]);
                    }
                    if (r == 0)
                        path_pop(l, o3);
                }
                if (r == 0)
                    path_pop(l, o2);
            }
        } else {
            r = unknown_key(l, n->keys[i]);
        }
        if (r == 0)
            path_pop(l, old);
    }
    return r;
}

static int rd_resources(struct loader *l, const struct compose_ynode *n, struct compose_deploy *d)
{
    int r = want_map(l, n);
    for (size_t i = 0; i < n->n && r == 0; i++) {
        const char *k = n->keys[i]->str;
        size_t old = path_push(l, k);
        if (streq(k, "limits"))
            r = rd_resource(l, n->vals[i], true, &d->limits);
        else if (streq(k, "reservations"))
            r = rd_resource(l, n->vals[i], false, &d->reservations);
        else
            r = unknown_key(l, n->keys[i]);
        if (r == 0)
            path_pop(l, old);
    }
    return r;
}

static int rd_restart_policy(struct loader *l, const struct compose_ynode *n,
                             struct compose_restart_policy *rp)
{
    int r = want_map(l, n);
    rp->set = true;
    for (size_t i = 0; i < n->n && r == 0; i++) {
        const char *k = n->keys[i]->str;
        const struct compose_ynode *v = n->vals[i];
        size_t old = path_push(l, k);
        if (streq(k, "condition")) {
            r = rd_str(l, v, &rp->condition);
            if (r == 0 && !streq(rp->condition, "none") && !streq(rp->condition, "on-failure") &&
                !streq(rp->condition, "any"))
                r = fail(l, v, "expected none, on-failure or any, got \"%s\"", rp->condition);
        } else if (streq(k, "delay")) {
            r = rd_dur(l, v, &rp->delay);
        } else if (streq(k, "max_attempts")) {
            r = rd_u64(l, v, &rp->max_attempts);
        } else if (streq(k, "window")) {
            r = rd_dur(l, v, &rp->window);
        } else {
            r = unknown_key(l, n->keys[i]);
        }
        if (r == 0)
            path_pop(l, old);
    }
    return r;
}

static int rd_placement(struct loader *l, const struct compose_ynode *n, struct compose_deploy *d)
{
    int r = want_map(l, n);
    for (size_t i = 0; i < n->n && r == 0; i++) {
        const char *k = n->keys[i]->str;
        const struct compose_ynode *v = n->vals[i];
        size_t old = path_push(l, k);
        if (streq(k, "constraints")) {
            r = rd_strlist(l, v, false, &d->constraints);
        } else if (streq(k, "preferences")) {
            r = rd_keyed_list(l, v, "spread", &d->preferences);
        } else if (streq(k, "max_replicas_per_node")) {
            r = rd_uint(l, v, &d->max_replicas_per_node);
        } else {
            r = unknown_key(l, n->keys[i]);
        }
        if (r == 0)
            path_pop(l, old);
    }
    return r;
}

static int rd_deploy(struct loader *l, const struct compose_ynode *n, struct compose_deploy *d)
{
    if (n->kind == COMPOSE_YSCALAR && n->type == COMPOSE_YNULL)
        return 0;
    int r = want_map(l, n);
    const struct compose_ynode *replicas_node = NULL;
    for (size_t i = 0; i < n->n && r == 0; i++) {
        const char *k = n->keys[i]->str;
        const struct compose_ynode *v = n->vals[i];
        size_t old = path_push(l, k);
        if (streq(k, "mode")) {
            char *mode = NULL;
            r = rd_str(l, v, &mode);
            if (r < 0)
                break;
            if (streq(mode, "replicated"))
                d->mode = COMPOSE_MODE_REPLICATED;
            else if (streq(mode, "global"))
                d->mode = COMPOSE_MODE_GLOBAL;
            else if (streq(mode, "replicated-job"))
                d->mode = COMPOSE_MODE_REPLICATED_JOB;
            else if (streq(mode, "global-job"))
                d->mode = COMPOSE_MODE_GLOBAL_JOB;
            else
                r = fail(l, v,
                         "expected replicated, global, replicated-job or global-job, got \"%s\"",
                         mode);
        } else if (streq(k, "replicas")) {
            replicas_node = v;
            r = rd_u64(l, v, &d->replicas);
        } else if (streq(k, "endpoint_mode")) {
            r = rd_str(l, v, &d->endpoint_mode);
            if (r < 0)
                break;
            d->endpoint_mode = compose_arena_strdup(l->a, d->endpoint_mode);
            if (!d->endpoint_mode)
                return -ENOMEM;
            for (char *p = d->endpoint_mode; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p + 32);
            if (!streq(d->endpoint_mode, "vip") && !streq(d->endpoint_mode, "dnsrr"))
                r = fail(l, v, "expected vip or dnsrr, got \"%s\"", d->endpoint_mode);
        } else if (streq(k, "labels")) {
            r = rd_list_or_dict(l, v, MAP_NIL_EMPTY, &d->labels);
        } else if (streq(k, "update_config")) {
            r = rd_update_config(l, v, &d->update_config);
        } else if (streq(k, "rollback_config")) {
            r = rd_update_config(l, v, &d->rollback_config);
        } else if (streq(k, "resources")) {
            r = rd_resources(l, v, d);
        } else if (streq(k, "restart_policy")) {
            r = rd_restart_policy(l, v, &d->restart_policy);
        } else if (streq(k, "placement")) {
            r = rd_placement(l, v, d);
        } else {
            r = unknown_key(l, n->keys[i]);
        }
        if (r == 0)
            path_pop(l, old);
    }
    if (r == 0 && replicas_node &&
        (d->mode == COMPOSE_MODE_GLOBAL || d->mode == COMPOSE_MODE_GLOBAL_JOB)) {
        size_t old = path_push(l, "replicas");
        r = fail(l, replicas_node,
                 "replicas can only be used with replicated or replicated-job mode");
        path_pop(l, old);
    }
    return r;
}

/* ---- a service -------------------------------------------------------------------------- */

/* Keys docker stack deploy ignores with a warning (docker's unsupported and deprecated
 * properties, and a few it ignores without a word). */
static const struct {
    const char *key;
    const char *why;
} ignored_keys[] = {
    {"build", "Swarm runs images: build and push them first"},
    {"cgroup_parent", "not supported by Swarm services"},
    {"cgroupns_mode", "not supported by Swarm services"},
    {"container_name", "Swarm names the containers of a service"},
    {"credential_spec", "Windows only"},
    {"depends_on", "Swarm starts services in no particular order"},
    {"devices", "not supported by Swarm services"},
    {"domainname", "not supported by Swarm services"},
    {"expose", "services on one network reach each other on any port"},
    {"external_links", "not supported by Swarm services"},
    {"ipc", "not supported by Swarm services"},
    {"links", "services on one network reach each other by name"},
    {"mac_address", "not supported by Swarm services"},
    {"network_mode", "not supported by Swarm services; use networks"},
    {"pid", "not supported by Swarm services"},
    {"privileged", "not supported by Swarm services"},
    {"security_opt", "not supported by Swarm services"},
    {"shm_size", "not supported by Swarm services"},
    {"tmpfs", "not supported by docker stack deploy; use a volume of type tmpfs"},
    {"userns_mode", "not supported by Swarm services"},
};

/* Keys docker stack deploy refuses. */
static const struct {
    const char *key;
    const char *why;
} forbidden_keys[] = {
    {"extends", "extends is not supported"},
    {"volume_driver", "define the volume in the top-level volumes with its driver"},
    {"volumes_from", "share a volume through the top-level volumes"},
    {"cpu_quota", "set resource limits with deploy.resources"},
    {"cpu_shares", "set resource limits with deploy.resources"},
    {"cpuset", "set resource limits with deploy.resources"},
    {"mem_limit", "set resource limits with deploy.resources"},
    {"memswap_limit", "set resource limits with deploy.resources"},
};

static int rd_command(struct loader *l, const struct compose_ynode *n, struct compose_strv *ret)
{
    if (n->kind == COMPOSE_YSEQ)
        return rd_strlist(l, n, false, ret);
    char *s = NULL;
    int r = rd_str(l, n, &s);
    if (r < 0)
        return r;
    const char *msg = NULL;
    r = compose_util_shlex(l->a, s, ret, &msg);
    if (r == -EINVAL)
        return fail(l, n, "cannot split \"%s\" into words: %s", s, msg);
    return r;
}

static int rd_restart(struct loader *l, const struct compose_ynode *n, char **ret)
{
    int r = rd_str(l, n, ret);
    if (r < 0)
        return r;
    const char *s = *ret;
    const char *colon = strchr(s, ':');
    size_t nl = colon ? (size_t)(colon - s) : strlen(s);
    if (colon) {
        int64_t count;
        if (strchr(colon + 1, ':'))
            return fail(l, n, "invalid restart policy format \"%s\"", s);
        if (compose_util_decimal(colon + 1, &count) < 0)
            return fail(l, n, "maximum retry count must be an integer, got \"%s\"", colon + 1);
    }
    static const char *const names[] = {"", "no", "always", "unless-stopped", "on-failure"};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        if (strlen(names[i]) == nl && strncmp(s, names[i], nl) == 0)
            return 0;
    return fail(l, n, "unknown restart policy \"%s\" (no, always, unless-stopped, on-failure[:N])",
                s);
}

static int rd_service(struct loader *l, const struct compose_ynode *key,
                      const struct compose_ynode *n, struct compose_service *s)
{
    s->name = (char *)key->str;
    s->pos = pos_of(key);
    if (!valid_name(s->name))
        return fail(l, key, "invalid service name (letters, digits, '.', '_', '-')");
    int r = want_map(l, n);
    if (r < 0)
        return r;
    const struct compose_ynode *restart_key = NULL;
    for (size_t i = 0; i < n->n && r == 0; i++) {
        const char *k = n->keys[i]->str;
        const struct compose_ynode *v = n->vals[i];
        size_t old = path_push(l, k);
        bool handled = true;
        if (streq(k, "image"))
            r = rd_str(l, v, &s->image);
        else if (streq(k, "command"))
            r = rd_command(l, v, &s->command);
        else if (streq(k, "entrypoint"))
            r = rd_command(l, v, &s->entrypoint);
        else if (streq(k, "environment"))
            r = rd_list_or_dict(l, v, MAP_NIL_KEEP, &s->environment);
        else if (streq(k, "env_file")) {
            r = rd_str_or_list(l, v, &s->env_file);
            s->env_file_pos = pos_of(v);
        } else if (streq(k, "labels"))
            r = rd_list_or_dict(l, v, MAP_NIL_EMPTY, &s->labels);
        else if (streq(k, "hostname"))
            r = rd_str(l, v, &s->hostname);
        else if (streq(k, "extra_hosts")) {
            if (v->kind == COMPOSE_YMAP) {
                /* {host: ip} → sorted "host:ip", as docker turns a mapping into a list */
                struct compose_map m;
                r = rd_list_or_dict(l, v, MAP_NIL_KEEP, &m);
                size_t cap = 0;
                for (size_t j = 0; r == 0 && j < m.n; j++) {
                    if (!m.v[j].value)
                        continue;
                    char *e = compose_arena_printf(l->a, "%s:%s", m.v[j].key, m.v[j].value);
                    r = e ? strv_add(l, &s->extra_hosts, &cap, e) : -ENOMEM;
                }
                if (r == 0 && s->extra_hosts.n)
                    qsort(s->extra_hosts.v, s->extra_hosts.n, sizeof(char *), cmp_strp);
            } else {
                r = rd_strlist(l, v, true, &s->extra_hosts);
            }
        } else if (streq(k, "dns")) {
            r = rd_str_or_list(l, v, &s->dns);
            s->has_dns = true;
        } else if (streq(k, "dns_search")) {
            r = rd_str_or_list(l, v, &s->dns_search);
            s->has_dns_search = true;
        } else if (streq(k, "healthcheck"))
            r = rd_healthcheck(l, v, &s->healthcheck);
        else if (streq(k, "working_dir"))
            r = rd_str(l, v, &s->working_dir);
        else if (streq(k, "user"))
            r = rd_str(l, v, &s->user);
        else if (streq(k, "volumes"))
            r = rd_mounts(l, v, s);
        else if (streq(k, "stop_grace_period"))
            r = rd_dur(l, v, &s->stop_grace_period);
        else if (streq(k, "stop_signal"))
            r = rd_str(l, v, &s->stop_signal);
        else if (streq(k, "tty"))
            r = rd_bool(l, v, &s->tty);
        else if (streq(k, "stdin_open"))
            r = rd_bool(l, v, &s->stdin_open);
        else if (streq(k, "read_only"))
            r = rd_bool(l, v, &s->read_only);
        else if (streq(k, "init")) {
            r = rd_bool(l, v, &s->init);
            s->has_init = true;
        } else if (streq(k, "sysctls"))
            r = rd_list_or_dict(l, v, MAP_NIL_EMPTY, &s->sysctls);
        else if (streq(k, "cap_add")) {
            r = rd_strlist(l, v, true, &s->cap_add);
            s->cap_add_pos = pos_of(n->keys[i]);
        } else if (streq(k, "cap_drop"))
            r = rd_strlist(l, v, true, &s->cap_drop);
        else if (streq(k, "ulimits"))
            r = rd_ulimits(l, v, s);
        else if (streq(k, "logging"))
            r = rd_logging(l, v, &s->logging);
        else if (streq(k, "secrets"))
            r = rd_file_refs(l, v, &s->secrets, &s->n_secrets);
        else if (streq(k, "configs"))
            r = rd_file_refs(l, v, &s->configs, &s->n_configs);
        else if (streq(k, "ports"))
            r = rd_ports(l, v, s);
        else if (streq(k, "networks"))
            r = rd_service_networks(l, v, s);
        else if (streq(k, "isolation"))
            r = rd_str(l, v, &s->isolation);
        else if (streq(k, "restart")) {
            r = rd_restart(l, v, &s->restart);
            restart_key = n->keys[i];
        } else if (streq(k, "deploy"))
            r = rd_deploy(l, v, &s->deploy);
        else
            handled = false;
        if (handled || r < 0) {
            if (r == 0)
                path_pop(l, old);
            continue;
        }
        if (is_extension(k)) {
            r = check_tree(l, v);
            if (r == 0)
                path_pop(l, old);
            continue;
        }
        for (size_t j = 0; j < ARRAY_SIZE(forbidden_keys); j++)
            if (streq(k, forbidden_keys[j].key))
                return fail(l, n->keys[i], "not supported by docker stack deploy: %s",
                            forbidden_keys[j].why);
        size_t j = 0;
        while (j < ARRAY_SIZE(ignored_keys) && !streq(k, ignored_keys[j].key))
            j++;
        if (j == ARRAY_SIZE(ignored_keys))
            return unknown_key(l, n->keys[i]);
        /* Ignored by Swarm, but read: the policy looks at some of them. */
        if (streq(k, "privileged")) {
            r = rd_bool(l, v, &s->privileged);
            s->privileged_pos = pos_of(n->keys[i]);
        } else if (streq(k, "network_mode")) {
            r = rd_str(l, v, &s->network_mode);
            s->network_mode_pos = pos_of(n->keys[i]);
        } else if (streq(k, "pid")) {
            r = rd_str_or_null(l, v, &s->pid);
            s->pid_pos = pos_of(n->keys[i]);
        } else if (streq(k, "ipc")) {
            r = rd_str(l, v, &s->ipc);
            s->ipc_pos = pos_of(n->keys[i]);
        } else if (streq(k, "devices")) {
            r = rd_strlist(l, v, true, &s->devices);
            s->devices_pos = pos_of(n->keys[i]);
        } else {
            r = check_tree(l, v);
        }
        if (r == 0)
            r = warn(l, n->keys[i], "ignored: %s", ignored_keys[j].why);
        if (r == 0)
            path_pop(l, old);
    }
    if (r < 0)
        return r;
    if (restart_key && s->deploy.restart_policy.set) {
        size_t old = path_push(l, "restart");
        r = warn(l, restart_key, "ignored: deploy.restart_policy is set");
        path_pop(l, old);
        if (r < 0)
            return r;
    }
    if (!s->image || !*s->image)
        return fail(l, key, "a service needs an image (Swarm runs images; build is not supported)");
    return 0;
}

/* ---- top-level networks, volumes, secrets, configs -------------------------------------- */

/* external: true | false | {name: ...} (the deprecated form). */
static int rd_external(struct loader *l, const struct compose_ynode *n, bool *ret_external,
                       char **ret_name)
{
    if (n->kind == COMPOSE_YMAP) {
        *ret_external = true;
        for (size_t i = 0; i < n->n; i++) {
            size_t old = path_push(l, n->keys[i]->str);
            int r = streq(n->keys[i]->str, "name") ? rd_str(l, n->vals[i], ret_name)
                                                   : unknown_key(l, n->keys[i]);
            if (r < 0)
                return r;
            path_pop(l, old);
        }
        return 0;
    }
    return rd_bool(l, n, ret_external);
}

static int rd_network(struct loader *l, const struct compose_ynode *key,
                      const struct compose_ynode *n, struct compose_network *net)
{
    net->key = (char *)key->str;
    net->pos = pos_of(key);
    if (!valid_name(net->key))
        return fail(l, key, "invalid network name (letters, digits, '.', '_', '-')");
    if (n->kind == COMPOSE_YSCALAR && n->type == COMPOSE_YNULL)
        return 0;
    int r = want_map(l, n);
    char *ext_name = NULL;
    const struct compose_ynode *ext_node = NULL;
    for (size_t i = 0; i < n->n && r == 0; i++) {
        const char *k = n->keys[i]->str;
        const struct compose_ynode *v = n->vals[i];
        size_t old = path_push(l, k);
        if (streq(k, "name")) {
            r = rd_str(l, v, &net->name);
        } else if (streq(k, "driver")) {
            r = rd_str(l, v, &net->driver);
        } else if (streq(k, "driver_opts")) {
            r = rd_string_map(l, v, false, &net->driver_opts);
        } else if (streq(k, "ipam")) {
            net->has_ipam = true;
            r = want_map(l, v);
            for (size_t j = 0; j < v->n && r == 0; j++) {
                const char *ik = v->keys[j]->str;
                const struct compose_ynode *iv = v->vals[j];
                size_t o2 = path_push(l, ik);
                if (streq(ik, "driver")) {
                    r = rd_str(l, iv, &net->ipam_driver);
                } else if (streq(ik, "config")) {
                    r = rd_keyed_list(l, iv, "subnet", &net->ipam_subnets);
                } else {
                    r = unknown_key(l, v->keys[j]);
                }
                if (r == 0)
                    path_pop(l, o2);
            }
        } else if (streq(k, "external")) {
            ext_node = v;
            r = rd_external(l, v, &net->external, &ext_name);
        } else if (streq(k, "internal")) {
            r = rd_bool(l, v, &net->internal);
        } else if (streq(k, "attachable")) {
            r = rd_bool(l, v, &net->attachable);
        } else if (streq(k, "labels")) {
            r = rd_list_or_dict(l, v, MAP_NIL_EMPTY, &net->labels);
        } else if (is_extension(k)) {
            r = check_tree(l, v);
        } else {
            r = unknown_key(l, n->keys[i]);
        }
        if (r == 0)
            path_pop(l, old);
    }
    if (r < 0)
        return r;
    if (net->external && ext_name) {
        if (net->name)
            return fail(l, ext_node,
                        "network.external.name and network.name conflict; only use network.name");
        net->name = ext_name;
    }
    if (net->external && !net->name)
        net->name = net->key;
    return 0;
}

static int rd_volume(struct loader *l, const struct compose_ynode *key,
                     const struct compose_ynode *n, struct compose_volume *vol)
{
    vol->key = (char *)key->str;
    vol->pos = pos_of(key);
    if (!valid_name(vol->key))
        return fail(l, key, "invalid volume name (letters, digits, '.', '_', '-')");
    if (n->kind == COMPOSE_YSCALAR && n->type == COMPOSE_YNULL)
        return 0;
    int r = want_map(l, n);
    char *ext_name = NULL;
    const struct compose_ynode *ext_node = NULL;
    const char *conflict = NULL;
    for (size_t i = 0; i < n->n && r == 0; i++) {
        const char *k = n->keys[i]->str;
        const struct compose_ynode *v = n->vals[i];
        size_t old = path_push(l, k);
        if (streq(k, "name")) {
            r = rd_str(l, v, &vol->name);
        } else if (streq(k, "driver")) {
            r = rd_str(l, v, &vol->driver);
            conflict = conflict ? conflict : "driver";
        } else if (streq(k, "driver_opts")) {
            r = rd_string_map(l, v, false, &vol->driver_opts);
            conflict = conflict ? conflict : "driver_opts";
        } else if (streq(k, "external")) {
            ext_node = v;
            r = rd_external(l, v, &vol->external, &ext_name);
        } else if (streq(k, "labels")) {
            r = rd_list_or_dict(l, v, MAP_NIL_EMPTY, &vol->labels);
            conflict = conflict ? conflict : "labels";
        } else if (is_extension(k)) {
            r = check_tree(l, v);
        } else {
            r = unknown_key(l, n->keys[i]);
        }
        if (r == 0)
            path_pop(l, old);
    }
    if (r < 0)
        return r;
    if (vol->external && conflict)
        return fail(l, ext_node, "conflicting parameters \"external\" and \"%s\" specified",
                    conflict);
    if (vol->external && ext_name) {
        if (vol->name)
            return fail(l, ext_node,
                        "volume.external.name and volume.name conflict; only use volume.name");
        vol->name = ext_name;
    }
    if (vol->external && !vol->name)
        vol->name = vol->key;
    return 0;
}

static int rd_fileobj(struct loader *l, const struct compose_ynode *key,
                      const struct compose_ynode *n, bool secret, struct compose_fileobj *o)
{
    const char *what = secret ? "secret" : "config";
    o->key = (char *)key->str;
    o->pos = pos_of(key);
    if (!valid_name(o->key))
        return fail(l, key, "invalid %s name (letters, digits, '.', '_', '-')", what);
    int r = want_map(l, n);
    char *ext_name = NULL;
    const struct compose_ynode *ext_node = NULL, *driver_node = NULL;
    for (size_t i = 0; i < n->n && r == 0; i++) {
        const char *k = n->keys[i]->str;
        const struct compose_ynode *v = n->vals[i];
        size_t old = path_push(l, k);
        if (streq(k, "name")) {
            r = rd_str(l, v, &o->name);
        } else if (streq(k, "file")) {
            r = rd_str(l, v, &o->file);
            o->file_pos = pos_of(v);
        } else if (streq(k, "external")) {
            ext_node = v;
            r = rd_external(l, v, &o->external, &ext_name);
        } else if (streq(k, "labels")) {
            r = rd_list_or_dict(l, v, MAP_NIL_EMPTY, &o->labels);
        } else if (streq(k, "template_driver")) {
            r = rd_str(l, v, &o->template_driver);
        } else if (secret && streq(k, "driver")) {
            driver_node = v;
            r = rd_str(l, v, &o->driver);
        } else if (secret && streq(k, "driver_opts")) {
            r = rd_string_map(l, v, false, &o->driver_opts);
        } else if (is_extension(k)) {
            r = check_tree(l, v);
        } else {
            r = unknown_key(l, n->keys[i]);
        }
        if (r == 0)
            path_pop(l, old);
    }
    if (r < 0)
        return r;
    if (o->external) {
        if (ext_name) {
            if (o->name)
                return fail(l, ext_node, "%s.external.name and %s.name conflict; only use %s.name",
                            what, what, what);
            o->name = ext_name;
        }
        if (!o->name)
            o->name = o->key;
    } else if (o->driver && *o->driver) {
        if (o->file)
            return fail(l, driver_node, "%s.driver and %s.file conflict; only use %s.driver", what,
                        what, what);
    } else if (!o->file || !*o->file) {
        return fail(l, key,
                    "a %s needs a file (its content comes with the manifest) or "
                    "external: true",
                    what);
    }
    return 0;
}

/* ---- the document ----------------------------------------------------------------------- */

static int rd_version(struct loader *l, const struct compose_ynode *n)
{
    char *v = NULL;
    int r = rd_str(l, n, &v);
    if (r < 0)
        return r;
    bool ok = streq(v, "3");
    if (!ok && v[0] == '3' && v[1] == '.' && v[2]) {
        ok = true;
        for (const char *p = v + 2; *p; p++)
            ok = ok && *p >= '0' && *p <= '9';
    }
    if (!ok)
        return fail(l, n, "unsupported compose file version \"%s\" (this agent reads 3.x)", v);
    l->p->version = v;
    return 0;
}

static int rd_section(struct loader *l, const struct compose_ynode *key,
                      const struct compose_ynode *n)
{
    const char *k = key->str;
    struct compose_project *p = l->p;
    if (n->kind == COMPOSE_YSCALAR && n->type == COMPOSE_YNULL)
        return 0;
    int r = want_map(l, n);
    if (r < 0)
        return r;
    size_t limit = streq(k, "services") ? COMPOSE_MAX_SERVICES : COMPOSE_MAX_OBJECTS;
    if (n->n > limit)
        return fail(l, n, "more than %zu entries", limit);
    size_t cap = 0;
    for (size_t i = 0; i < n->n && r == 0; i++) {
        const struct compose_ynode *ek = n->keys[i], *ev = n->vals[i];
        size_t old = path_push(l, ek->str);
        if (streq(k, "services")) {
            struct compose_service *s = ARR_PUSH(l, p->services, p->n_services, cap);
            r = s ? rd_service(l, ek, ev, s) : -ENOMEM;
        } else if (streq(k, "networks")) {
            struct compose_network *net = ARR_PUSH(l, p->networks, p->n_networks, cap);
            r = net ? rd_network(l, ek, ev, net) : -ENOMEM;
        } else if (streq(k, "volumes")) {
            struct compose_volume *vol = ARR_PUSH(l, p->volumes, p->n_volumes, cap);
            r = vol ? rd_volume(l, ek, ev, vol) : -ENOMEM;
        } else if (streq(k, "secrets")) {
            struct compose_fileobj *o = ARR_PUSH(l, p->secrets, p->n_secrets, cap);
            r = o ? rd_fileobj(l, ek, ev, true, o) : -ENOMEM;
        } else {
            struct compose_fileobj *o = ARR_PUSH(l, p->configs, p->n_configs, cap);
            r = o ? rd_fileobj(l, ek, ev, false, o) : -ENOMEM;
        }
        if (r == 0)
            path_pop(l, old);
    }
    return r;
}

static int fail_at(struct loader *l, struct compose_pos pos, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(struct loader *l, struct compose_pos pos, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return compose_error_set(l->err, l->file, pos.line, pos.col, path, "%s", msg);
}

struct compose_index {
    struct compose_util_map services, networks, volumes, secrets, configs;
};

static void index_free(struct compose_index *x)
{
    if (!x)
        return;
    compose_util_map_release(&x->services);
    compose_util_map_release(&x->networks);
    compose_util_map_release(&x->volumes);
    compose_util_map_release(&x->secrets);
    compose_util_map_release(&x->configs);
    free(x);
}

#define INDEX(map, arr, n, field)                                                                  \
    for (size_t i_ = 0; r == 0 && i_ < (n); i_++)                                                  \
        if (!compose_util_map_get(&(map), (arr)[i_].field, strlen((arr)[i_].field), NULL))         \
            r = compose_util_map_put(&(map), (arr)[i_].field, strlen((arr)[i_].field), i_);

static int index_build(struct compose_project *p)
{
    struct compose_index *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    int r = 0;
    INDEX(x->services, p->services, p->n_services, name);
    INDEX(x->networks, p->networks, p->n_networks, key);
    INDEX(x->volumes, p->volumes, p->n_volumes, key);
    INDEX(x->secrets, p->secrets, p->n_secrets, key);
    INDEX(x->configs, p->configs, p->n_configs, key);
    if (r < 0) {
        index_free(x);
        return r;
    }
    p->index = x;
    return 0;
}

/* Every name a service uses must be declared at the top level. */
static int check_references(struct loader *l)
{
    const struct compose_project *p = l->p;
    char path[256];
    for (size_t i = 0; i < p->n_services; i++) {
        const struct compose_service *s = &p->services[i];
        for (size_t j = 0; j < s->n_networks; j++) {
            const struct compose_service_network *sn = &s->networks[j];
            snprintf(path, sizeof(path), "services.%s.networks", s->name);
            if (!streq(sn->name, "default") && !compose_project_network(p, sn->name))
                return fail_at(l, sn->pos, path,
                               "undefined network \"%s\" (declare it under the top-level "
                               "networks)",
                               sn->name);
        }
        for (size_t j = 0; j < s->n_mounts; j++) {
            const struct compose_mount *m = &s->mounts[j];
            snprintf(path, sizeof(path), "services.%s.volumes[%zu]", s->name, j);
            if (streq(m->type, "volume") && m->source && !compose_project_volume(p, m->source))
                return fail_at(l, m->pos, path,
                               "undefined volume \"%s\" (declare it under the top-level volumes)",
                               m->source);
        }
        for (size_t j = 0; j < s->n_secrets; j++) {
            snprintf(path, sizeof(path), "services.%s.secrets[%zu]", s->name, j);
            if (!compose_project_secret(p, s->secrets[j].source))
                return fail_at(l, s->secrets[j].pos, path,
                               "undefined secret \"%s\" (declare it under the top-level secrets)",
                               s->secrets[j].source);
        }
        for (size_t j = 0; j < s->n_configs; j++) {
            snprintf(path, sizeof(path), "services.%s.configs[%zu]", s->name, j);
            if (!compose_project_config(p, s->configs[j].source))
                return fail_at(l, s->configs[j].pos, path,
                               "undefined config \"%s\" (declare it under the top-level configs)",
                               s->configs[j].source);
        }
    }
    return 0;
}

static int rd_document(struct loader *l, const struct compose_ynode *root)
{
    if (!root)
        return compose_error_set(l->err, l->file, 0, 0, NULL,
                                 "the file is empty: expected a mapping with services");
    if (root->kind != COMPOSE_YMAP)
        return fail(l, root, "expected a mapping at the top level, got %s",
                    compose_yaml_describe(root));
    /* version first: it decides how the rest reads */
    const struct compose_ynode *version = compose_yaml_get(root, "version");
    if (version) {
        size_t old = path_push(l, "version");
        int r = rd_version(l, version);
        if (r < 0)
            return r;
        path_pop(l, old);
    }
    static const char *const order[] = {"networks", "volumes", "secrets", "configs", "services"};
    for (size_t o = 0; o < ARRAY_SIZE(order); o++)
        for (size_t i = 0; i < root->n; i++) {
            if (!streq(root->keys[i]->str, order[o]))
                continue;
            size_t old = path_push(l, order[o]);
            int r = rd_section(l, root->keys[i], root->vals[i]);
            if (r < 0)
                return r;
            path_pop(l, old);
        }
    for (size_t i = 0; i < root->n; i++) {
        const char *k = root->keys[i]->str;
        bool known = streq(k, "version");
        for (size_t o = 0; o < ARRAY_SIZE(order); o++)
            known = known || streq(k, order[o]);
        if (known)
            continue;
        size_t old = path_push(l, k);
        int r = is_extension(k) ? check_tree(l, root->vals[i]) : unknown_key(l, root->keys[i]);
        if (r < 0)
            return r;
        path_pop(l, old);
    }
    int r = index_build(l->p);
    if (r < 0)
        return r;
    return check_references(l);
}

int compose_parse(const char *text, size_t len, const char *filename,
                  const struct compose_vars *vars, struct compose_project **ret_project,
                  struct compose_error *err)
{
    struct compose_error dummy;
    if (!err)
        err = &dummy;
    memset(err, 0, sizeof(*err));
    if (!filename || !*filename)
        filename = DEFAULT_FILENAME;
    struct compose_project *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->arena = compose_arena_new();
    if (!p->arena) {
        free(p);
        return -ENOMEM;
    }
    struct loader l = {.p = p, .a = p->arena, .err = err};
    int r = -ENOMEM;
    p->filename = compose_arena_strdup(p->arena, filename);
    if (!p->filename)
        goto fail;
    l.file = p->filename;
    /* A copy of the variables: the project keeps them for environment lookups. */
    if (vars && vars->n) {
        p->vars = compose_arena_array(p->arena, vars->n, sizeof(*p->vars));
        if (!p->vars)
            goto fail;
        for (size_t i = 0; i < vars->n; i++) {
            if (!vars->v[i].name || !vars->v[i].value)
                continue;
            struct compose_var *v = &p->vars[p->n_vars++];
            v->name = compose_arena_strdup(p->arena, vars->v[i].name);
            v->value = compose_arena_strdup(p->arena, vars->v[i].value);
            if (!v->name || !v->value)
                goto fail;
        }
    }
    l.vars = (struct compose_vars){.v = p->vars, .n = p->n_vars};
    struct compose_ynode *root = NULL;
    r = compose_yaml_parse(p->arena, text, len, filename, &root, err);
    if (r < 0)
        goto fail;
    r = rd_document(&l, root);
    if (r < 0)
        goto fail;
    *ret_project = p;
    return 0;
fail:
    if (r == -ENOMEM && !err->text[0])
        compose_error_set(err, filename, 0, 0, NULL, "out of memory");
    compose_project_free(p);
    return r;
}

struct compose_project *compose_project_free(struct compose_project *p)
{
    if (!p)
        return NULL;
    index_free(p->index);
    compose_arena_free(p->arena);
    free(p);
    return NULL;
}

/* By the index when there is one (a parsed project), else by a walk. */
#define FIND(map, arr, n, field, key)                                                              \
    do {                                                                                           \
        uintptr_t at_;                                                                             \
        if (p->index)                                                                              \
            return compose_util_map_get(&p->index->map, (key), strlen(key), &at_) ? &(arr)[at_]    \
                                                                                  : NULL;          \
        for (size_t i_ = 0; i_ < (n); i_++)                                                        \
            if (streq((arr)[i_].field, (key)))                                                     \
                return &(arr)[i_];                                                                 \
        return NULL;                                                                               \
    } while (0)

const struct compose_service *compose_project_service(const struct compose_project *p,
                                                      const char *name)
{
    FIND(services, p->services, p->n_services, name, name);
}

const struct compose_network *compose_project_network(const struct compose_project *p,
                                                      const char *key)
{
    FIND(networks, p->networks, p->n_networks, key, key);
}

const struct compose_volume *compose_project_volume(const struct compose_project *p,
                                                    const char *key)
{
    FIND(volumes, p->volumes, p->n_volumes, key, key);
}

const struct compose_fileobj *compose_project_secret(const struct compose_project *p,
                                                     const char *key)
{
    FIND(secrets, p->secrets, p->n_secrets, key, key);
}

const struct compose_fileobj *compose_project_config(const struct compose_project *p,
                                                     const char *key)
{
    FIND(configs, p->configs, p->n_configs, key, key);
}

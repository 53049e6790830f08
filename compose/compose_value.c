#include "compose/compose_value.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"
#include "compose/compose_interp.h"
#include "compose/compose_util.h"

/* ---- scalars ---------------------------------------------------------------------------- */

/* How a node is shown after "got": the text of a scalar, or what kind of thing it is. */
static void describe(const struct compose_ynode *n, const struct compose_value *v, char *out,
                     size_t len)
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

int compose_value_expected(struct compose_loader *l, const struct compose_ynode *n,
                           const struct compose_value *v, const char *want)
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
    return compose_load_fail(l, n, "expected %s, got %s%s", want, got, hint);
}

int compose_value_scalar(struct compose_loader *l, const struct compose_ynode *n,
                         struct compose_value *ret, const char *want)
{
    if (n->kind != COMPOSE_YSCALAR)
        return compose_value_expected(l, n, NULL, want);
    *ret = (struct compose_value){
        .type = n->type, .s = n->str, .len = n->len, .b = n->b, .i = n->i, .f = n->f};
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
        compose_load_fail(l, n, "interpolation produces more than %d bytes in all",
                          COMPOSE_MAX_EXPANDED);
        return -E2BIG;
    }
    if (r < 0)
        return compose_load_fail(l, n, "%s", msg);
    l->expanded += out_len;
    if (memchr(out, '\0', out_len)) {
        free(out);
        return compose_load_fail(l, n, "interpolation produced a NUL character");
    }
    ret->s = compose_arena_strndup(l->a, out, out_len);
    ret->len = out_len;
    ret->interpolated = out_len != n->len || memcmp(out, n->str, out_len) != 0;
    free(out);
    if (!ret->s)
        return -ENOMEM;
    return 0;
}

int compose_value_check_tree(struct compose_loader *l, const struct compose_ynode *n)
{
    struct compose_value v = {0};
    if (n->kind == COMPOSE_YSCALAR)
        return compose_value_scalar(l, n, &v, "a value");
    for (size_t i = 0; i < n->n; i++) {
        size_t old = n->kind == COMPOSE_YMAP ? compose_load_push(l, n->keys[i]->str)
                                             : compose_load_push_index(l, i);
        int r = compose_value_check_tree(l, n->vals[i]);
        if (r < 0)
            return r;
        compose_load_pop(l, old);
    }
    return 0;
}

bool compose_value_is_null(const struct compose_ynode *n)
{
    return n->kind == COMPOSE_YSCALAR && n->type == COMPOSE_YNULL;
}

bool compose_value_valid_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-'))
            return false;
    return true;
}

/* ---- typed scalars ---------------------------------------------------------------------- */

int compose_value_str(struct compose_loader *l, const struct compose_ynode *n, char **ret)
{
    struct compose_value v = {0};
    int r = compose_value_scalar(l, n, &v, "a string");
    if (r < 0)
        return r;
    if (v.type != COMPOSE_YSTR)
        return compose_value_expected(l, n, &v, "a string");
    *ret = (char *)v.s;
    return 0;
}

int compose_value_str_or_null(struct compose_loader *l, const struct compose_ynode *n, char **ret)
{
    if (compose_value_is_null(n)) {
        *ret = NULL;
        return 0;
    }
    return compose_value_str(l, n, ret);
}

int compose_value_bool(struct compose_loader *l, const struct compose_ynode *n, bool *ret)
{
    struct compose_value v = {0};
    int r = compose_value_scalar(l, n, &v, "a boolean");
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
    return compose_value_expected(l, n, &v, "a boolean");
}

int compose_value_int(struct compose_loader *l, const struct compose_ynode *n, int64_t *ret)
{
    struct compose_value v = {0};
    int r = compose_value_scalar(l, n, &v, "an integer");
    if (r < 0)
        return r;
    if (v.type == COMPOSE_YINT) {
        *ret = v.i;
        return 0;
    }
    if (v.type == COMPOSE_YSTR && v.interpolated && compose_util_decimal(v.s, ret) == 0)
        return 0;
    return compose_value_expected(l, n, &v, "an integer");
}

int compose_value_uint(struct compose_loader *l, const struct compose_ynode *n, uint64_t *ret)
{
    int64_t i;
    int r = compose_value_int(l, n, &i);
    if (r < 0)
        return r;
    if (i < 0)
        return compose_load_fail(l, n, "expected a non-negative integer, got %lld", (long long)i);
    *ret = (uint64_t)i;
    return 0;
}

int compose_value_number(struct compose_loader *l, const struct compose_ynode *n, double *ret)
{
    struct compose_value v = {0};
    int r = compose_value_scalar(l, n, &v, "a number");
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
    return compose_value_expected(l, n, &v, "a number");
}

int compose_value_duration(struct compose_loader *l, const struct compose_ynode *n, int64_t *ret_ns)
{
    struct compose_value v = {0};
    int r = compose_value_scalar(l, n, &v, "a duration");
    if (r < 0)
        return r;
    if (v.type != COMPOSE_YSTR)
        return compose_value_expected(l, n, &v,
                                      "a duration as a string (like \"10s\" or \"1m30s\")");
    if (compose_util_duration(v.s, ret_ns) < 0)
        return compose_value_expected(l, n, &v, "a duration (like 10s, 1m30s or 500ms)");
    /* Every duration the Engine takes (delays, windows, timeouts, periods) is 0 or more. */
    if (*ret_ns < 0)
        return compose_load_fail(l, n, "expected a duration of 0 or more, got \"%s\"", v.s);
    return 0;
}

int compose_value_size(struct compose_loader *l, const struct compose_ynode *n, int64_t *ret)
{
    char *s = NULL;
    int r = compose_value_str(l, n, &s);
    if (r == 0 && compose_util_ram_bytes(s, ret) < 0)
        r = compose_load_fail(l, n, "expected a size (like \"512M\" or \"1.5G\"), got \"%s\"", s);
    return r;
}

int compose_value_cpus(struct compose_loader *l, const struct compose_ynode *n, char **ret)
{
    char *s = NULL;
    int64_t nano;
    int r = compose_value_str(l, n, &s);
    if (r < 0)
        return r;
    int q = compose_util_nano_cpus(s, &nano);
    if (q == -ERANGE)
        return compose_load_fail(l, n, "\"%s\" is more precise than one nano CPU", s);
    if (q < 0)
        return compose_load_fail(l, n, "expected a number of CPUs (like \"0.5\"), got \"%s\"", s);
    *ret = s;
    return 0;
}

/* ---- lists ------------------------------------------------------------------------------ */

int compose_value_list(struct compose_loader *l, const struct compose_ynode *n, bool unique,
                       struct compose_strv *ret)
{
    if (n->kind != COMPOSE_YSEQ)
        return compose_value_expected(l, n, NULL, "a list of strings");
    struct compose_strv sv = {0};
    size_t cap = 0;
    _cleanup_(compose_util_map_release) struct compose_util_map seen = {0};
    for (size_t i = 0; i < n->n; i++) {
        size_t old = compose_load_push_index(l, i);
        char *s = NULL;
        int r = compose_value_str(l, n->vals[i], &s);
        if (r < 0)
            return r;
        if (unique) {
            if (compose_util_map_get(&seen, s, strlen(s), NULL))
                return compose_load_fail(l, n->vals[i], "duplicate entry \"%s\"", s);
            if (compose_util_map_put(&seen, s, strlen(s), 0) < 0)
                return -ENOMEM;
        }
        r = compose_load_strv_add(l, &sv, &cap, s);
        if (r < 0)
            return r;
        compose_load_pop(l, old);
    }
    *ret = sv;
    return 0;
}

int compose_value_str_or_list(struct compose_loader *l, const struct compose_ynode *n,
                              struct compose_strv *ret)
{
    if (n->kind == COMPOSE_YSEQ)
        return compose_value_list(l, n, true, ret);
    if (n->kind != COMPOSE_YSCALAR || n->type != COMPOSE_YSTR)
        return compose_value_expected(l, n, NULL, "a string or a list of strings");
    char *s = NULL;
    int r = compose_value_str(l, n, &s);
    if (r < 0)
        return r;
    char **v = compose_arena_alloc(l->a, sizeof(*v));
    if (!v)
        return -ENOMEM;
    v[0] = s;
    *ret = (struct compose_strv){.v = v, .n = 1};
    return 0;
}

int compose_value_words(struct compose_loader *l, const struct compose_ynode *n,
                        struct compose_strv *ret)
{
    if (n->kind == COMPOSE_YSEQ)
        return compose_value_list(l, n, false, ret);
    char *s = NULL;
    int r = compose_value_str(l, n, &s);
    if (r < 0)
        return r;
    const char *msg = NULL;
    r = compose_util_shlex(l->a, s, ret, &msg);
    if (r == -EINVAL)
        return compose_load_fail(l, n, "cannot split \"%s\" into words: %s", s, msg);
    return r;
}

/* ---- maps of strings -------------------------------------------------------------------- */

/* Sets key in m (the last value wins, at the first place); index finds keys in m. */
static int map_set(struct compose_loader *l, struct compose_map *m, size_t *cap,
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
    struct compose_kv *kv = COMPOSE_LOAD_APPEND(l, m->v, m->n, *cap);
    if (!kv)
        return -ENOMEM;
    *kv = (struct compose_kv){.key = key, .value = value};
    return 0;
}

/* A scalar value of a mapping written as text the way docker's loader does (Go's fmt.Sprint):
 * strings as they are, numbers in Go's format. Booleans are refused (docker's schema). */
static int map_value(struct compose_loader *l, const struct compose_ynode *n, bool allow_null,
                     char **ret)
{
    struct compose_value v = {0};
    const char *want = allow_null ? "a string, a number or null" : "a string or a number";
    int r = compose_value_scalar(l, n, &v, want);
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
            return compose_value_expected(l, n, &v, want);
        *ret = NULL;
        return 0;
    case COMPOSE_YBOOL:
        return compose_value_expected(l, n, &v, want);
    }
    *ret = compose_arena_strdup(l->a, buf);
    return *ret ? 0 : -ENOMEM;
}

/* The mapping form {key: value}: every value through map_value; null_as is what a null
 * becomes (NULL keeps it as "no value"). */
static int read_dict(struct compose_loader *l, const struct compose_ynode *n, bool allow_null,
                     char *null_as, struct compose_map *ret)
{
    struct compose_map m = {.set = true};
    size_t cap = 0;
    _cleanup_(compose_util_map_release) struct compose_util_map index = {0};
    for (size_t i = 0; i < n->n; i++) {
        size_t old = compose_load_push(l, n->keys[i]->str);
        char *value = NULL;
        int r = map_value(l, n->vals[i], allow_null, &value);
        if (r < 0)
            return r;
        r = map_set(l, &m, &cap, &index, (char *)n->keys[i]->str, value ? value : null_as);
        if (r < 0)
            return r;
        compose_load_pop(l, old);
    }
    *ret = m;
    return 0;
}

/* The list form ["key=value", "key"]; an entry may not repeat. */
static int read_kv_list(struct compose_loader *l, const struct compose_ynode *n,
                        enum compose_value_nil nil, struct compose_map *ret)
{
    struct compose_map m = {.set = true};
    size_t cap = 0;
    _cleanup_(compose_util_map_release) struct compose_util_map index = {0};
    _cleanup_(compose_util_map_release) struct compose_util_map seen = {0};
    for (size_t i = 0; i < n->n; i++) {
        size_t old = compose_load_push_index(l, i);
        char *s = NULL;
        int r = compose_value_str(l, n->vals[i], &s);
        if (r < 0)
            return r;
        if (compose_util_map_get(&seen, n->vals[i]->str, n->vals[i]->len, NULL))
            return compose_load_fail(l, n->vals[i], "duplicate entry \"%s\"", s);
        if (compose_util_map_put(&seen, n->vals[i]->str, n->vals[i]->len, 0) < 0)
            return -ENOMEM;
        char *eq = strchr(s, '=');
        char *value = NULL;
        if (eq) {
            value = eq + 1;
            s = compose_arena_strndup(l->a, s, (size_t)(eq - s));
            if (!s)
                return -ENOMEM;
        } else if (nil == COMPOSE_VALUE_NIL_EMPTY) {
            value = "";
        }
        r = map_set(l, &m, &cap, &index, s, value);
        if (r < 0)
            return r;
        compose_load_pop(l, old);
    }
    *ret = m;
    return 0;
}

int compose_value_list_or_dict(struct compose_loader *l, const struct compose_ynode *n,
                               enum compose_value_nil nil, struct compose_map *ret)
{
    if (n->kind == COMPOSE_YMAP)
        return read_dict(l, n, true, nil == COMPOSE_VALUE_NIL_EMPTY ? "" : NULL, ret);
    if (n->kind == COMPOSE_YSEQ)
        return read_kv_list(l, n, nil, ret);
    return compose_value_expected(l, n, NULL, "a mapping or a list of \"key=value\" strings");
}

int compose_value_string_map(struct compose_loader *l, const struct compose_ynode *n,
                             bool allow_null, struct compose_map *ret)
{
    if (n->kind != COMPOSE_YMAP)
        return compose_value_expected(l, n, NULL, "a mapping");
    return read_dict(l, n, allow_null, "", ret);
}

#include "compose/compose_keys.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/util.h"
#include "compose/compose_value.h"

bool compose_keys_is_extension(const char *key)
{
    return strncmp(key, "x-", 2) == 0;
}

int compose_keys_unknown(struct compose_loader *l, const struct compose_ynode *key)
{
    return compose_load_fail(
        l, key, "unknown key (not in the compose file format docker stack deploy reads)");
}

static void *at(void *obj, size_t off)
{
    return (char *)obj + off - 1;
}

static int check_one_of(struct compose_loader *l, const struct compose_ynode *v,
                        const struct compose_key *k, const char *s)
{
    if (!k->one_of || !s)
        return 0;
    for (const char *const *o = k->one_of; *o; o++)
        if (streq(s, *o))
            return 0;
    return compose_load_fail(l, v, "expected %s, got \"%s\"", k->expect, s);
}

/* Integers and numbers against [min, max]; got is what came, printed when KEY_GOT. */
static int check_limit(struct compose_loader *l, const struct compose_ynode *v,
                       const struct compose_key *k, double d, unsigned long long got)
{
    if (!k->limit || !(d < (double)k->min || d > (double)k->max)) /* NaN is not out */
        return 0;
    if (k->flags & KEY_GOT)
        return compose_load_fail(l, v, "expected %s, got %llu", k->limit, got);
    return compose_load_fail(l, v, "expected %s", k->limit);
}

static int read_uint(struct compose_loader *l, const struct compose_ynode *v,
                     const struct compose_key *k, uint64_t *ret)
{
    int r = compose_value_uint(l, v, ret);
    if (r == 0)
        r = check_limit(l, v, k, (double)*ret, (unsigned long long)*ret);
    if (r == 0 && k->kind == KEY_U32 && *ret > UINT32_MAX)
        r = compose_load_fail(l, v, "expected at most %u, got %llu", UINT32_MAX,
                              (unsigned long long)*ret);
    return r;
}

/* Reads one value by its row's kind into field. */
static int read_value(struct compose_loader *l, const struct compose_ynode *v,
                      const struct compose_key *k, void *field)
{
    int r = 0;
    switch (k->kind) {
    case KEY_STR:
        r = k->flags & KEY_NULL ? compose_value_str_or_null(l, v, field)
                                : compose_value_str(l, v, field);
        return r < 0 ? r : check_one_of(l, v, k, *(char **)field);
    case KEY_BOOL:
        return compose_value_bool(l, v, field);
    case KEY_INT:
        r = compose_value_int(l, v, field);
        return r < 0 ? r : check_limit(l, v, k, (double)*(int64_t *)field, 0);
    case KEY_UINT:
        return read_uint(l, v, k, field);
    case KEY_U32: {
        uint64_t u = 0;
        r = read_uint(l, v, k, &u);
        if (r == 0)
            *(uint32_t *)field = (uint32_t)u;
        return r;
    }
    case KEY_U64: {
        struct compose_u64 *u = field;
        r = read_uint(l, v, k, &u->v);
        u->set = r == 0;
        return r;
    }
    case KEY_NUMBER:
        r = compose_value_number(l, v, field);
        return r < 0 ? r : check_limit(l, v, k, *(double *)field, 0);
    case KEY_DURATION:
        return compose_value_duration(l, v, field);
    case KEY_DUR: {
        struct compose_duration *d = field;
        r = compose_value_duration(l, v, &d->ns);
        d->set = r == 0;
        return r;
    }
    case KEY_SIZE:
        return compose_value_size(l, v, field);
    case KEY_CPUS:
        return compose_value_cpus(l, v, field);
    case KEY_LIST:
        return compose_value_list(l, v, k->flags & KEY_UNIQUE, field);
    case KEY_STR_OR_LIST:
        return compose_value_str_or_list(l, v, field);
    case KEY_WORDS:
        return compose_value_words(l, v, field);
    case KEY_LABELS:
        return compose_value_list_or_dict(l, v, COMPOSE_VALUE_NIL_EMPTY, field);
    case KEY_ENV:
        return compose_value_list_or_dict(l, v, COMPOSE_VALUE_NIL_KEEP, field);
    case KEY_OPTS:
        return compose_value_string_map(l, v, k->flags & KEY_NULL, field);
    case KEY_MAP:
        return compose_keys_read(l, v, k->sub, field);
    case KEY_READ:
        return k->read(l, v, field, k);
    case KEY_ANY:
        return compose_value_check_tree(l, v);
    }
    return -EINVAL;
}

static int read_key(struct compose_loader *l, const struct compose_ynode *key,
                    const struct compose_ynode *v, const struct compose_key *k, void *obj)
{
    if (k->refused)
        return compose_load_fail(l, key, "not supported by docker stack deploy: %s", k->refused);
    if (k->present)
        *(bool *)at(obj, k->present) = true;
    if (k->pos)
        *(struct compose_pos *)at(obj, k->pos) =
            compose_load_pos(k->flags & KEY_VALUE_POS ? v : key);
    int r = read_value(l, v, k, k->off ? at(obj, k->off) : NULL);
    if (r == 0 && k->ignored)
        r = compose_load_warn(l, key, "ignored: %s", k->ignored);
    return r;
}

int compose_keys_read(struct compose_loader *l, const struct compose_ynode *n,
                      const struct compose_keys *t, void *obj)
{
    if (t->null_ok && compose_value_is_null(n))
        return 0;
    if (n->kind != COMPOSE_YMAP)
        return compose_value_expected(l, n, NULL, t->want ? t->want : "a mapping");
    for (size_t i = 0; i < n->n; i++) {
        const struct compose_ynode *key = n->keys[i];
        const struct compose_key *k = NULL;
        for (size_t j = 0; j < t->n && !k; j++)
            if (streq(key->str, t->keys[j].name))
                k = &t->keys[j];
        size_t old = compose_load_push(l, key->str);
        int r;
        if (k)
            r = read_key(l, key, n->vals[i], k, obj);
        else if (t->extensions && compose_keys_is_extension(key->str))
            r = compose_value_check_tree(l, n->vals[i]);
        else
            r = compose_keys_unknown(l, key);
        if (r < 0)
            return r;
        compose_load_pop(l, old);
    }
    for (size_t j = 0; j < t->n; j++)
        if (t->keys[j].required && !compose_yaml_get(n, t->keys[j].name))
            return compose_load_fail(l, n, "%s", t->keys[j].required);
    return t->finish ? t->finish(l, n, obj) : 0;
}

/* ---- lists of single-key maps ----------------------------------------------------------- */

struct keyed_item {
    char *value;
};

int compose_keys_keyed_list(struct compose_loader *l, const struct compose_ynode *n, void *field,
                            const struct compose_key *k)
{
    const char *key = k->arg;
    struct compose_strv *ret = field;
    if (n->kind != COMPOSE_YSEQ) {
        char what[64];
        snprintf(what, sizeof(what), "a list of {%s: ...}", key);
        return compose_value_expected(l, n, NULL, what);
    }
    const struct compose_key row[] = {
        {.name = key, .kind = KEY_STR, .off = KEY_AT(keyed_item, value)}};
    const struct compose_keys item_keys = COMPOSE_KEYS(row);
    size_t cap = 0;
    for (size_t j = 0; j < n->n; j++) {
        size_t old = compose_load_push_index(l, j);
        struct keyed_item item = {.value = ""};
        int r = compose_keys_read(l, n->vals[j], &item_keys, &item);
        if (r == 0)
            r = compose_load_strv_add(l, ret, &cap, item.value);
        if (r < 0)
            return r;
        compose_load_pop(l, old);
    }
    return 0;
}

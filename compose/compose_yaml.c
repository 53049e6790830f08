#include "compose/compose_yaml.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "lib/util.h"
#include "compose/compose_util.h"

#define TAG_PREFIX "tag:yaml.org,2002:"

/* ---- scalar resolution ------------------------------------------------------------------ */

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (streq(s, *list))
            return true;
    return false;
}

/* Parses digits of base into *ret; false on no digits, a bad digit or overflow. */
static bool parse_digits(const char *s, unsigned base, uint64_t *ret)
{
    uint64_t v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned d;
        if (*s >= '0' && *s <= '9')
            d = (unsigned)(*s - '0');
        else if (*s >= 'a' && *s <= 'f')
            d = (unsigned)(*s - 'a' + 10);
        else if (*s >= 'A' && *s <= 'F')
            d = (unsigned)(*s - 'A' + 10);
        else
            return false;
        if (d >= base)
            return false;
        if (v > (UINT64_MAX - d) / base)
            return false;
        v = v * base + d;
    }
    *ret = v;
    return true;
}

/* Go's strconv.ParseInt(s, 0, 64) after YAML's `_` removal. */
static bool resolve_int(const char *s, int64_t *ret)
{
    bool neg = false;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    unsigned base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        base = 16, s += 2;
    else if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O'))
        base = 8, s += 2;
    else if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B'))
        base = 2, s += 2;
    else if (s[0] == '0' && s[1])
        base = 8, s += 1;
    uint64_t v;
    if (!parse_digits(s, base, &v))
        return false;
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return false;
        *ret = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return false;
        *ret = (int64_t)v;
    }
    return true;
}

/* YAML 1.1's float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool resolve_float(const char *s, double *ret)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    } else {
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
        if (*p == '.') {
            p++;
            while (*p >= '0' && *p <= '9')
                p++;
        }
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p)
        return false;
    *ret = strtod(s, NULL);
    return true;
}

static const char *const yaml_nulls[] = {"", "~", "null", "Null", "NULL", NULL};
static const char *const yaml_trues[] = {"y",    "Y",    "yes", "Yes", "YES", "true",
                                         "True", "TRUE", "on",  "On",  "ON",  NULL};
static const char *const yaml_falses[] = {"n",     "N",     "no",  "No",  "NO",  "false",
                                          "False", "FALSE", "off", "Off", "OFF", NULL};

/* Whether s may be one of the words above or below: each is at most 6 bytes and starts with one
 * of these (the empty string is null). Most scalars are not, and skip the lists. */
static bool may_be_a_word(const char *s)
{
    return !s[0] || (strchr("~nNyYtTfFoO.+-", s[0]) && strnlen(s, 7) <= 6);
}

void compose_yaml_resolve(struct compose_ynode *n)
{
    const char *s = n->str;
    n->type = COMPOSE_YSTR;
    if (!may_be_a_word(s))
        goto number;
    if (in_list(s, yaml_nulls)) {
        n->type = COMPOSE_YNULL;
        return;
    }
    if (in_list(s, yaml_trues) || in_list(s, yaml_falses)) {
        n->type = COMPOSE_YBOOL;
        n->b = in_list(s, yaml_trues);
        return;
    }
    static const char *const infs[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
    static const char *const ninfs[] = {"-.inf", "-.Inf", "-.INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    if (in_list(s, infs) || in_list(s, ninfs) || in_list(s, nans)) {
        n->type = COMPOSE_YFLOAT;
        n->f = in_list(s, nans) ? NAN : in_list(s, infs) ? INFINITY : -INFINITY;
        return;
    }
number:;
    char c = s[0];
    if (!((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))
        return;
    /* YAML 1.1 allows `_` between digits; go-yaml drops every `_` before parsing. */
    char tmp[128];
    size_t k = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '_')
            continue;
        if (k + 1 >= sizeof(tmp))
            return; /* too long to be a number we would take */
        tmp[k++] = *p;
    }
    tmp[k] = '\0';
    int64_t iv;
    double fv;
    if (resolve_int(tmp, &iv)) {
        n->type = COMPOSE_YINT;
        n->i = iv;
    } else if (resolve_float(tmp, &fv)) {
        n->type = COMPOSE_YFLOAT;
        n->f = fv;
    }
}

const char *compose_yaml_describe(const struct compose_ynode *n)
{
    if (!n)
        return "nothing";
    switch (n->kind) {
    case COMPOSE_YMAP:
        return "a mapping";
    case COMPOSE_YSEQ:
        return "a list";
    case COMPOSE_YSCALAR:
        break;
    }
    switch (n->type) {
    case COMPOSE_YNULL:
        return "null";
    case COMPOSE_YBOOL:
        return "a boolean";
    case COMPOSE_YINT:
        return "an integer";
    case COMPOSE_YFLOAT:
        return "a number";
    case COMPOSE_YSTR:
        break;
    }
    return "a string";
}

/* The index of key in a map node; false when absent (or not a map). */
static bool find_key(const struct compose_ynode *map, const char *key, size_t *ret)
{
    if (!map || map->kind != COMPOSE_YMAP)
        return false;
    for (size_t i = 0; i < map->n; i++)
        if (streq(map->keys[i]->str, key)) {
            *ret = i;
            return true;
        }
    return false;
}

struct compose_ynode *compose_yaml_key(const struct compose_ynode *map, const char *key)
{
    size_t i;
    return find_key(map, key, &i) ? map->keys[i] : NULL;
}

struct compose_ynode *compose_yaml_get(const struct compose_ynode *map, const char *key)
{
    size_t i;
    return find_key(map, key, &i) ? map->vals[i] : NULL;
}

/* ---- the event loop --------------------------------------------------------------------- */

struct frame {
    struct compose_ynode *node;
    char *anchor;
    struct compose_ynode **items;
    size_t n, cap;
};

struct builder {
    struct compose_arena *arena;
    const char *file;
    struct compose_error *err;
    struct frame *stack;
    size_t depth;
    struct compose_util_map anchors;
    struct compose_ynode *root;
    bool have_root;
};

/* The path of the node frame `upto` is building (or, for upto == depth, of the node being
 * added to the innermost frame): keys of the maps, [n] of the lists. */
static void b_path(const struct builder *b, size_t upto, const char *extra, char *out, size_t len)
{
    size_t k = 0;
    out[0] = '\0';
    for (size_t i = 0; i < upto && k + 1 < len; i++) {
        const struct frame *f = &b->stack[i];
        int n;
        if (f->node->kind == COMPOSE_YMAP) {
            if (f->n % 2 == 0)
                break; /* a key is being read, not a value */
            const struct compose_ynode *key = f->items[f->n - 1];
            const char *ks = key->kind == COMPOSE_YSCALAR ? key->str : "?";
            n = snprintf(out + k, len - k, "%s%s", k ? "." : "", ks);
        } else {
            n = snprintf(out + k, len - k, "[%zu]", f->n);
        }
        if (n < 0 || (size_t)n >= len - k)
            break;
        k += (size_t)n;
    }
    if (extra && k + 1 < len)
        snprintf(out + k, len - k, "%s%s", k ? "." : "", extra);
}

static int b_error(struct builder *b, unsigned line, unsigned col, int r, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* An error at the node being added to the innermost frame. */
static int b_error(struct builder *b, unsigned line, unsigned col, int r, const char *fmt, ...)
{
    char msg[512], path[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    b_path(b, b->depth, NULL, path, sizeof(path));
    compose_error_set(b->err, b->file, line, col, path, "%s", msg);
    return r;
}

static int b_error_in(struct builder *b, size_t upto, const char *extra, unsigned line,
                      unsigned col, int r, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* An error at the node frame `upto` builds (extra: a key under it). */
static int b_error_in(struct builder *b, size_t upto, const char *extra, unsigned line,
                      unsigned col, int r, const char *fmt, ...)
{
    char msg[512], path[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    b_path(b, upto, extra, path, sizeof(path));
    compose_error_set(b->err, b->file, line, col, path, "%s", msg);
    return r;
}

static int b_weigh(struct builder *b, struct compose_ynode *parent,
                   const struct compose_ynode *child)
{
    parent->weight += child->weight;
    parent->bytes += child->bytes;
    if (child->height + 1 > parent->height)
        parent->height = child->height + 1;
    if (parent->bytes > COMPOSE_MAX_TEXT)
        return b_error_in(b, b->depth - 1, NULL, parent->line, parent->col, -E2BIG,
                          "the document expands to more than %d bytes of text (aliases and merge "
                          "keys included)",
                          COMPOSE_MAX_TEXT);
    if (parent->weight > COMPOSE_MAX_NODES)
        return b_error_in(b, b->depth - 1, NULL, parent->line, parent->col, -E2BIG,
                          "the document expands to more than %d nodes (aliases and merge keys "
                          "included)",
                          COMPOSE_MAX_NODES);
    if (parent->height > COMPOSE_MAX_DEPTH)
        return b_error_in(b, b->depth - 1, NULL, parent->line, parent->col, -E2BIG,
                          "the document nests deeper than %d levels (aliases included)",
                          COMPOSE_MAX_DEPTH);
    return 0;
}

static int b_add(struct builder *b, struct compose_ynode *node)
{
    if (b->depth == 0) {
        b->root = node;
        b->have_root = true;
        return 0;
    }
    struct frame *f = &b->stack[b->depth - 1];
    if (f->n == f->cap) {
        size_t ncap = f->cap ? f->cap * 2 : 8;
        struct compose_ynode **ni = realloc(f->items, ncap * sizeof(*ni));
        if (!ni)
            return -ENOMEM;
        f->items = ni;
        f->cap = ncap;
    }
    f->items[f->n++] = node;
    return b_weigh(b, f->node, node);
}

static int b_anchor(struct builder *b, const char *anchor, struct compose_ynode *node)
{
    if (!anchor)
        return 0;
    char *name = compose_arena_strdup(b->arena, anchor);
    if (!name)
        return -ENOMEM;
    return compose_util_map_put(&b->anchors, name, strlen(name), (uintptr_t)node);
}

static bool tag_is(const char *tag, const char *name)
{
    return tag && strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)) == 0 &&
           streq(tag + strlen(TAG_PREFIX), name);
}

static int b_scalar(struct builder *b, const yaml_event_t *ev)
{
    unsigned line = (unsigned)ev->start_mark.line + 1, col = (unsigned)ev->start_mark.column + 1;
    const char *value = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    if (memchr(value, '\0', len))
        return b_error(b, line, col, -EINVAL, "NUL characters are not allowed in a value");
    struct compose_ynode *n = compose_arena_alloc(b->arena, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->kind = COMPOSE_YSCALAR;
    n->line = line;
    n->col = col;
    n->weight = 1;
    n->str = compose_arena_strndup(b->arena, value, len);
    if (!n->str)
        return -ENOMEM;
    n->len = len;
    n->bytes = len;

    const char *tag = (const char *)ev->data.scalar.tag;
    bool implicit_tag = !tag || streq(tag, "!");
    if (implicit_tag) {
        if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag) {
            n->plain = true;
            compose_yaml_resolve(n);
        } else {
            n->type = COMPOSE_YSTR;
        }
    } else if (tag_is(tag, "str")) {
        n->type = COMPOSE_YSTR;
    } else if (tag_is(tag, "int") || tag_is(tag, "float") || tag_is(tag, "bool") ||
               tag_is(tag, "null")) {
        compose_yaml_resolve(n);
        bool ok =
            (tag_is(tag, "int") && n->type == COMPOSE_YINT) ||
            (tag_is(tag, "float") && (n->type == COMPOSE_YFLOAT || n->type == COMPOSE_YINT)) ||
            (tag_is(tag, "bool") && n->type == COMPOSE_YBOOL) ||
            (tag_is(tag, "null") && n->type == COMPOSE_YNULL);
        if (!ok)
            return b_error(b, line, col, -EINVAL, "cannot read \"%s\" as %s", n->str, tag);
        if (tag_is(tag, "float") && n->type == COMPOSE_YINT) {
            n->type = COMPOSE_YFLOAT;
            n->f = (double)n->i;
        }
    } else {
        return b_error(b, line, col, -EINVAL, "unsupported YAML tag %s", tag);
    }
    int r = b_anchor(b, (const char *)ev->data.scalar.anchor, n);
    if (r < 0)
        return r;
    return b_add(b, n);
}

static int b_start(struct builder *b, const yaml_event_t *ev, enum compose_ykind kind)
{
    unsigned line = (unsigned)ev->start_mark.line + 1, col = (unsigned)ev->start_mark.column + 1;
    const char *tag = (const char *)(kind == COMPOSE_YMAP ? ev->data.mapping_start.tag
                                                          : ev->data.sequence_start.tag);
    const char *anchor = (const char *)(kind == COMPOSE_YMAP ? ev->data.mapping_start.anchor
                                                             : ev->data.sequence_start.anchor);
    if (tag && !streq(tag, "!") && !tag_is(tag, kind == COMPOSE_YMAP ? "map" : "seq"))
        return b_error(b, line, col, -EINVAL, "unsupported YAML tag %s", tag);
    if (b->depth >= COMPOSE_MAX_DEPTH)
        return b_error(b, line, col, -E2BIG, "the document nests deeper than %d levels",
                       COMPOSE_MAX_DEPTH);
    struct compose_ynode *n = compose_arena_alloc(b->arena, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->kind = kind;
    n->line = line;
    n->col = col;
    n->weight = 1;
    n->height = 1;
    char *a = NULL;
    if (anchor) {
        a = strdup(anchor);
        if (!a)
            return -ENOMEM;
    }
    b->stack[b->depth++] = (struct frame){.node = n, .anchor = a};
    return 0;
}

static bool is_merge_key(const struct compose_ynode *k)
{
    return k->kind == COMPOSE_YSCALAR && k->plain && streq(k->str, "<<");
}

/* Appends the pairs of src whose key is not yet in seen. */
static int b_merge_from(struct builder *b, struct compose_ynode *map, struct compose_util_map *seen,
                        struct compose_ynode ***keys, struct compose_ynode ***vals, size_t *n,
                        size_t *cap, const struct compose_ynode *src)
{
    for (size_t i = 0; i < src->n; i++) {
        const struct compose_ynode *k = src->keys[i];
        if (compose_util_map_get(seen, k->str, k->len, NULL))
            continue;
        int r = compose_util_map_put(seen, k->str, k->len, 0);
        if (r < 0)
            return r;
        if (*n == *cap) {
            size_t ncap = *cap * 2 + 8;
            struct compose_ynode **nk = compose_arena_grow(b->arena, *keys, *n, ncap, sizeof(*nk));
            struct compose_ynode **nv = compose_arena_grow(b->arena, *vals, *n, ncap, sizeof(*nv));
            if (!nk || !nv)
                return -ENOMEM;
            *keys = nk;
            *vals = nv;
            *cap = ncap;
        }
        (*keys)[*n] = src->keys[i];
        (*vals)[*n] = src->vals[i];
        (*n)++;
        r = b_weigh(b, map, src->keys[i]);
        if (r < 0)
            return r;
        r = b_weigh(b, map, src->vals[i]);
        if (r < 0)
            return r;
    }
    return 0;
}

static int b_finish_map(struct builder *b, struct frame *f)
{
    struct compose_ynode *m = f->node;
    size_t npairs = f->n / 2;
    struct compose_util_map seen = {0};
    int r = 0;
    size_t cap = npairs, n = 0;
    struct compose_ynode **keys = compose_arena_array(b->arena, cap, sizeof(*keys));
    struct compose_ynode **vals = compose_arena_array(b->arena, cap, sizeof(*vals));
    if (!keys || !vals)
        return -ENOMEM;

    /* The weight is recomputed from the final pairs. */
    m->weight = 1;
    m->bytes = 0;
    m->height = 1;
    for (size_t i = 0; i < npairs; i++) {
        struct compose_ynode *k = f->items[2 * i], *v = f->items[2 * i + 1];
        if (is_merge_key(k))
            continue;
        if (k->kind != COMPOSE_YSCALAR || k->type != COMPOSE_YSTR) {
            r = b_error_in(b, b->depth - 1, NULL, k->line, k->col, -EINVAL,
                           "expected a string key, got %s%s%s%s", compose_yaml_describe(k),
                           k->kind == COMPOSE_YSCALAR ? " (" : "",
                           k->kind == COMPOSE_YSCALAR ? k->str : "",
                           k->kind == COMPOSE_YSCALAR ? ")" : "");
            goto out;
        }
        if (compose_util_map_get(&seen, k->str, k->len, NULL)) {
            r = b_error_in(b, b->depth - 1, k->str, k->line, k->col, -EINVAL, "duplicate key");
            goto out;
        }
        r = compose_util_map_put(&seen, k->str, k->len, 0);
        if (r < 0)
            goto out;
        keys[n] = k;
        vals[n] = v;
        n++;
        if ((r = b_weigh(b, m, k)) < 0 || (r = b_weigh(b, m, v)) < 0)
            goto out;
    }
    for (size_t i = 0; i < npairs; i++) {
        struct compose_ynode *k = f->items[2 * i], *v = f->items[2 * i + 1];
        if (!is_merge_key(k))
            continue;
        if (v->kind == COMPOSE_YMAP) {
            r = b_merge_from(b, m, &seen, &keys, &vals, &n, &cap, v);
        } else if (v->kind == COMPOSE_YSEQ) {
            for (size_t j = 0; j < v->n && r >= 0; j++) {
                if (v->vals[j]->kind != COMPOSE_YMAP) {
                    r = b_error_in(b, b->depth - 1, "<<", v->vals[j]->line, v->vals[j]->col,
                                   -EINVAL,
                                   "a merge key takes a mapping or a list of mappings, got %s",
                                   compose_yaml_describe(v->vals[j]));
                    break;
                }
                r = b_merge_from(b, m, &seen, &keys, &vals, &n, &cap, v->vals[j]);
            }
        } else {
            r = b_error_in(b, b->depth - 1, "<<", v->line, v->col, -EINVAL,
                           "a merge key takes a mapping or a list of mappings, got %s",
                           compose_yaml_describe(v));
        }
        if (r < 0)
            goto out;
    }
    m->keys = keys;
    m->vals = vals;
    m->n = n;
out:
    compose_util_map_release(&seen);
    return r;
}

static int b_end(struct builder *b)
{
    struct frame *f = &b->stack[b->depth - 1];
    struct compose_ynode *n = f->node;
    int r;
    if (n->kind == COMPOSE_YMAP) {
        r = b_finish_map(b, f);
    } else {
        n->vals = compose_arena_array(b->arena, f->n, sizeof(*n->vals));
        r = n->vals || !f->n ? 0 : -ENOMEM;
        if (r == 0 && f->n)
            memcpy(n->vals, f->items, f->n * sizeof(*n->vals));
        n->n = f->n;
    }
    if (r == 0)
        r = b_anchor(b, f->anchor, n);
    free(f->items);
    free(f->anchor);
    b->depth--;
    if (r < 0)
        return r;
    return b_add(b, n);
}

static int b_alias(struct builder *b, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    uintptr_t node;
    if (!compose_util_map_get(&b->anchors, name, strlen(name), &node))
        return b_error(b, (unsigned)ev->start_mark.line + 1, (unsigned)ev->start_mark.column + 1,
                       -EINVAL, "unknown anchor \"%s\" (an alias must follow its anchor)", name);
    return b_add(b, (struct compose_ynode *)node);
}

static int b_syntax_error(struct builder *b, const yaml_parser_t *p)
{
    const yaml_mark_t *m = &p->problem_mark;
    int r = p->error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL;
    if (p->context)
        return b_error(b, (unsigned)m->line + 1, (unsigned)m->column + 1, r,
                       "YAML syntax error: %s %s", p->problem ? p->problem : "error", p->context);
    return b_error(b, (unsigned)m->line + 1, (unsigned)m->column + 1, r, "YAML syntax error: %s",
                   p->problem ? p->problem : "error");
}

int compose_yaml_parse(struct compose_arena *a, const char *text, size_t len, const char *file,
                       struct compose_ynode **ret_root, struct compose_error *err)
{
    if (len > COMPOSE_MAX_BYTES) {
        compose_error_set(err, file, 0, 0, NULL, "the file is larger than %d bytes",
                          COMPOSE_MAX_BYTES);
        return -E2BIG;
    }
    struct builder b = {.arena = a, .file = file, .err = err};
    b.stack = calloc(COMPOSE_MAX_DEPTH, sizeof(*b.stack));
    if (!b.stack)
        return -ENOMEM;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        free(b.stack);
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int r = 0, docs = 0;
    for (bool done = false; !done && r == 0;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            r = b_syntax_error(&b, &p);
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (docs > 0)
                r = b_error(&b, (unsigned)ev.start_mark.line + 1,
                            (unsigned)ev.start_mark.column + 1, -EINVAL,
                            "a compose file holds one YAML document, this is a second one");
            break;
        case YAML_DOCUMENT_END_EVENT:
            docs++;
            break;
        case YAML_SCALAR_EVENT:
            r = b_scalar(&b, &ev);
            break;
        case YAML_ALIAS_EVENT:
            r = b_alias(&b, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            r = b_start(&b, &ev, COMPOSE_YSEQ);
            break;
        case YAML_MAPPING_START_EVENT:
            r = b_start(&b, &ev, COMPOSE_YMAP);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            r = b_end(&b);
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    while (b.depth > 0) {
        b.depth--;
        free(b.stack[b.depth].items);
        free(b.stack[b.depth].anchor);
    }
    free(b.stack);
    compose_util_map_release(&b.anchors);
    if (r == -ENOMEM && err && !err->text[0])
        compose_error_set(err, file, 0, 0, NULL, "out of memory");
    if (r < 0)
        return r;
    *ret_root = b.root;
    return 0;
}

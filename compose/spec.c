/* The JSON bodies follow the Go structures docker's client marshals (api/types/swarm, mount,
 * network) field for field: a field Go marshals without omitempty is written even when zero,
 * an omitempty field only when it is set. See docs/COMPOSE.md and docs/internals/compose.md. */
#include "compose/spec.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "compose/compose_util.h"

#define ENV_FILE_MAX_LINE (64 * 1024) /* bufio.Scanner's limit, which docker inherits */

const char *spec_kind_to_string(enum spec_kind kind)
{
    switch (kind) {
    case SPEC_NETWORK:
        return "network";
    case SPEC_CONFIG:
        return "config";
    case SPEC_SECRET:
        return "secret";
    case SPEC_SERVICE:
        return "service";
    case _SPEC_KIND_MAX:
        break;
    }
    return "?";
}

/* ---- the converter's state -------------------------------------------------------------- */

struct conv {
    const struct compose_project *p;
    const struct spec_input *in;
    struct compose_error *err;
    struct spec_stack *st;
    size_t cap_objects, cap_externals, cap_warnings;
    size_t file_bytes;                     /* attached file content read so far */
    struct compose_util_map used_networks; /* network keys services use */
    struct compose_util_map objects[4];    /* by kind: key → position in st->objects */
    struct compose_util_map externals[4];  /* by kind: names in st->externals */
};

/* The refs of one service being converted, deduplicated by kind and name. */
struct refs {
    size_t cap;
    struct compose_util_map seen[4];
};

static int conv_fail(struct conv *c, struct compose_pos pos, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int conv_fail(struct conv *c, struct compose_pos pos, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return compose_error_set(c->err, c->p->filename, pos.line, pos.col, path, "%s", msg);
}

static int grow(void **arr, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap * 2 + 8;
    void *nv = realloc(*arr, ncap * size);
    if (!nv)
        return -ENOMEM;
    *arr = nv;
    *cap = ncap;
    return 0;
}

static int add_warning(struct conv *c, const char *w)
{
    struct spec_stack *st = c->st;
    if (grow((void **)&st->warnings, st->n_warnings, &c->cap_warnings, sizeof(char *)) < 0)
        return -ENOMEM;
    st->warnings[st->n_warnings] = strdup(w);
    if (!st->warnings[st->n_warnings])
        return -ENOMEM;
    st->n_warnings++;
    return 0;
}

static char *scope(struct conv *c, const char *name)
{
    char *s = NULL;
    if (asprintf(&s, "%s_%s", c->in->stack, name) < 0)
        return NULL;
    return s;
}

/* ---- small JSON helpers (each returns -ENOMEM on failure) -------------------------------- */

static int set_new(json_t *o, const char *key, json_t *v)
{
    if (!v)
        return -ENOMEM;
    return json_object_set_new(o, key, v) == 0 ? 0 : -ENOMEM;
}

static int set_str(json_t *o, const char *key, const char *s)
{
    return set_new(o, key, json_string(s ? s : ""));
}

/* omitempty string */
static int set_str_opt(json_t *o, const char *key, const char *s)
{
    return s && *s ? set_str(o, key, s) : 0;
}

static int set_int(json_t *o, const char *key, long long v)
{
    return set_new(o, key, json_integer(v));
}

static int set_int_opt(json_t *o, const char *key, long long v)
{
    return v ? set_int(o, key, v) : 0;
}

static int set_bool_opt(json_t *o, const char *key, bool v)
{
    return v ? set_new(o, key, json_true()) : 0;
}

static json_t *strv_json(const struct compose_strv *sv)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < sv->n; i++)
        if (json_array_append_new(a, json_string(sv->v[i])) < 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* omitempty []string */
static int set_strv_opt(json_t *o, const char *key, const struct compose_strv *sv)
{
    return sv->n ? set_new(o, key, strv_json(sv)) : 0;
}

/* A map[string]string; NULL values are written as "". */
static json_t *map_json(const struct compose_map *m)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < m->n; i++)
        if (json_object_set_new(o, m->v[i].key, json_string(m->v[i].value ? m->v[i].value : "")) <
            0) {
            json_decref(o);
            return NULL;
        }
    return o;
}

/* omitempty map[string]string */
static int set_map_opt(json_t *o, const char *key, const struct compose_map *m)
{
    return m->n ? set_new(o, key, map_json(m)) : 0;
}

/* AddStackLabel: the labels plus com.docker.stack.namespace. */
static json_t *stack_labels(struct conv *c, const struct compose_map *m)
{
    json_t *o = map_json(m);
    if (o && json_object_set_new(o, SPEC_LABEL_NAMESPACE, json_string(c->in->stack)) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- files that came with the manifest -------------------------------------------------- */

static const char *strip_dot_slash(const char *s)
{
    while (s[0] == '.' && s[1] == '/') {
        s += 2;
        while (*s == '/')
            s++;
    }
    return s;
}

/* Counts len bytes of attached files against COMPOSE_MAX_FILES. */
static int use_file_bytes(struct conv *c, size_t len, struct compose_pos pos, const char *path)
{
    c->file_bytes += len;
    if (c->file_bytes > COMPOSE_MAX_FILES || len > COMPOSE_MAX_FILES)
        return conv_fail(c, pos, path,
                         "the attached files the stack uses add up to more than %d bytes",
                         COMPOSE_MAX_FILES);
    return 0;
}

const struct spec_file *spec_file_find(const struct spec_file *files, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (files[i].name && streq(files[i].name, name))
            return &files[i];
    const char *want = strip_dot_slash(name);
    for (size_t i = 0; i < n; i++)
        if (files[i].name && streq(strip_dot_slash(files[i].name), want))
            return &files[i];
    return NULL;
}

static const struct spec_file *find_file(struct conv *c, const char *name)
{
    return spec_file_find(c->in->files, c->in->n_files, name);
}

/* ---- networks --------------------------------------------------------------------------- */

static struct spec_object *new_object(struct conv *c, enum spec_kind kind, const char *key)
{
    struct spec_stack *st = c->st;
    if (grow((void **)&st->objects, st->n_objects, &c->cap_objects, sizeof(*st->objects)) < 0)
        return NULL;
    struct spec_object *o = &st->objects[st->n_objects];
    *o = (struct spec_object){.kind = kind};
    o->key = strdup(key);
    if (!o->key)
        return NULL;
    st->n_objects++;
    if (compose_util_map_put(&c->objects[kind], o->key, strlen(o->key), st->n_objects - 1) < 0)
        return NULL;
    return o;
}

static int add_external(struct conv *c, enum spec_kind kind, const char *name)
{
    struct spec_stack *st = c->st;
    if (compose_util_map_get(&c->externals[kind], name, strlen(name), NULL))
        return 0;
    if (grow((void **)&st->externals, st->n_externals, &c->cap_externals, sizeof(*st->externals)) <
        0)
        return -ENOMEM;
    st->externals[st->n_externals].kind = kind;
    st->externals[st->n_externals].external = true;
    char *copy = st->externals[st->n_externals].name = strdup(name);
    if (!copy)
        return -ENOMEM;
    st->n_externals++;
    return compose_util_map_put(&c->externals[kind], copy, strlen(copy), 0);
}

/* The Swarm name of the network with this key ("default" may be undeclared). */
static char *network_name(struct conv *c, const char *key, bool *ret_external)
{
    const struct compose_network *n = compose_project_network(c->p, key);
    *ret_external = n && n->external;
    if (n && n->name)
        return strdup(n->name);
    return scope(c, key);
}

/* The network keys services use ("default" for a service without networks). */
static int index_used_networks(struct conv *c)
{
    const struct compose_project *p = c->p;
    for (size_t i = 0; i < p->n_services; i++) {
        const struct compose_service *s = &p->services[i];
        if (!s->n_networks && compose_util_map_put(&c->used_networks, "default", 7, 0) < 0)
            return -ENOMEM;
        for (size_t j = 0; j < s->n_networks; j++)
            if (compose_util_map_put(&c->used_networks, s->networks[j].name,
                                     strlen(s->networks[j].name), 0) < 0)
                return -ENOMEM;
    }
    return 0;
}

static bool network_used(const struct conv *c, const char *key)
{
    return compose_util_map_get(&c->used_networks, key, strlen(key), NULL);
}

/* types.NetworkCreateRequest, as docker's client marshals it. */
static int convert_network(struct conv *c, const char *key)
{
    const struct compose_network *n = compose_project_network(c->p, key);
    bool external;
    _cleanup_free_ char *name = network_name(c, key, &external);
    if (!name)
        return -ENOMEM;
    if (external)
        return add_external(c, SPEC_NETWORK, name);
    struct spec_object *o = new_object(c, SPEC_NETWORK, key);
    if (!o)
        return -ENOMEM;
    o->name = strdup(name);
    o->docker_name = strdup(name);
    json_t *b = o->spec = json_object();
    if (!o->name || !o->docker_name || !b)
        return -ENOMEM;
    static const struct compose_map empty_map;
    const struct compose_map *labels = n ? &n->labels : &empty_map;
    int r = set_str(b, "Name", name);
    /* CheckDuplicate: docker stack deploy leaves it false; we ask the Engine to refuse a
     * second network of the same name. */
    if (!r)
        r = set_new(b, "CheckDuplicate", json_true());
    if (!r)
        r = set_str(b, "Driver", n && n->driver && *n->driver ? n->driver : "overlay");
    if (!r)
        r = set_str(b, "Scope", "");
    if (!r)
        r = set_new(b, "EnableIPv6", json_false());
    if (!r && n && (n->ipam_driver || n->ipam_subnets.n)) {
        json_t *ipam = json_object(), *cfg = n->ipam_subnets.n ? json_array() : json_null();
        r = set_new(b, "IPAM", ipam);
        if (!r)
            r = set_str(ipam, "Driver", n->ipam_driver);
        if (!r)
            r = set_new(ipam, "Options", json_null());
        if (!r)
            r = set_new(ipam, "Config", cfg);
        for (size_t i = 0; !r && i < n->ipam_subnets.n; i++) {
            json_t *pool = json_object();
            r = pool && json_array_append_new(cfg, pool) == 0 ? 0 : -ENOMEM;
            if (!r)
                r = set_str_opt(pool, "Subnet", n->ipam_subnets.v[i]);
        }
    } else if (!r) {
        r = set_new(b, "IPAM", json_null());
    }
    if (!r)
        r = set_new(b, "Internal", json_boolean(n && n->internal));
    if (!r)
        r = set_new(b, "Attachable", json_boolean(n && n->attachable));
    if (!r)
        r = set_new(b, "Ingress", json_false());
    if (!r)
        r = set_new(b, "ConfigOnly", json_false());
    if (!r)
        r = set_new(b, "ConfigFrom", json_null());
    if (!r)
        r = set_new(b, "Options",
                    n && n->driver_opts.set ? map_json(&n->driver_opts) : json_null());
    if (!r)
        r = set_new(b, "Labels", stack_labels(c, labels));
    return r;
}

/* ---- configs and secrets ---------------------------------------------------------------- */

static json_t *base64_json(const void *data, size_t len)
{
    if (len > (size_t)1 << 30)
        return NULL;
    size_t n = 4 * ((len + 2) / 3) + 1;
    char *out = malloc(n);
    if (!out)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    json_t *s = json_string(out);
    free(out);
    return s;
}

static int convert_fileobj(struct conv *c, const struct compose_fileobj *f, bool secret)
{
    enum spec_kind kind = secret ? SPEC_SECRET : SPEC_CONFIG;
    const char *what = secret ? "secrets" : "configs";
    if (f->external)
        return 0; /* added to the externals when a service uses it */
    struct spec_object *o = new_object(c, kind, f->key);
    if (!o)
        return -ENOMEM;
    o->docker_name = f->name ? strdup(f->name) : scope(c, f->key);
    json_t *b = o->spec = json_object();
    if (!o->docker_name || !b)
        return -ENOMEM;
    const struct spec_file *file = NULL;
    bool driver = secret && f->driver && *f->driver;
    char path[256];
    snprintf(path, sizeof(path), "%s.%s.file", what, f->key);
    if (!driver) {
        file = find_file(c, f->file);
        if (!file)
            return conv_fail(c, f->file_pos, path,
                             "the file \"%s\" was not supplied with the manifest", f->file);
        /* Swarm's limits: more than 0 and less than 500 KiB (secrets), 1000 KiB (configs) */
        size_t max = secret ? 500 * 1024 : 1000 * 1024;
        if (file->len == 0 || file->len >= max)
            return conv_fail(c, f->file_pos, path,
                             "the file \"%s\" has %zu bytes: a %s holds more than 0 and less "
                             "than %zu bytes",
                             f->file, file->len, secret ? "secret" : "config", max);
        int q = use_file_bytes(c, file->len, f->file_pos, path);
        if (q < 0)
            return q;
    }
    int r = set_new(b, "Labels", stack_labels(c, &f->labels));
    if (!r && file && file->len)
        r = set_new(b, "Data", base64_json(file->data, file->len));
    if (!r && driver) {
        json_t *d = json_object();
        r = set_new(b, "Driver", d);
        if (!r)
            r = set_str(d, "Name", f->driver);
        if (!r)
            r = set_map_opt(d, "Options", &f->driver_opts);
    }
    if (!r && f->template_driver && *f->template_driver) {
        json_t *t = json_object();
        r = set_new(b, "Templating", t);
        if (!r)
            r = set_str(t, "Name", f->template_driver);
    }
    if (r < 0)
        return r;
    /* Content address: sha256 of the file; with a driver or a template driver, of the
     * canonical JSON of everything that makes the content. */
    char hex[SPEC_HASH_HEX + 1];
    if (!driver && !json_object_get(b, "Templating")) {
        r = spec_hash_bytes(file->data, file->len, hex);
    } else {
        json_t *content =
            json_pack("{s:O?,s:O?,s:O?}", "Data", json_object_get(b, "Data"), "Driver",
                      json_object_get(b, "Driver"), "Templating", json_object_get(b, "Templating"));
        r = content ? spec_hash_json(content, hex) : -ENOMEM;
        json_decref(content);
    }
    if (r < 0)
        return r;
    if (asprintf(&o->name, "%s_%.8s", o->docker_name, hex) < 0) {
        o->name = NULL;
        return -ENOMEM;
    }
    return set_str(b, "Name", o->name);
}

/* The object of this kind made for a compose key, or NULL. */
static const struct spec_object *object_of(const struct conv *c, enum spec_kind kind,
                                           const char *key)
{
    uintptr_t at;
    if (!compose_util_map_get(&c->objects[kind], key, strlen(key), &at))
        return NULL;
    return &c->st->objects[at];
}

/* ---- environment ------------------------------------------------------------------------ */

struct env {
    char **keys;
    char **values; /* NULL: no value */
    size_t n, cap;
    struct compose_util_map index; /* key → position */
};

static void env_release(struct env *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->keys[i]);
        free(e->values[i]);
    }
    free(e->keys);
    free(e->values);
    compose_util_map_release(&e->index);
}

/* Sets key; value NULL means "no value". Takes neither. */
static int env_set(struct env *e, const char *key, const char *value)
{
    char *v = NULL;
    if (value && !(v = strdup(value)))
        return -ENOMEM;
    uintptr_t at;
    if (compose_util_map_get(&e->index, key, strlen(key), &at)) {
        free(e->values[at]);
        e->values[at] = v;
        return 0;
    }
    size_t cap = e->cap;
    if (grow((void **)&e->keys, e->n, &cap, sizeof(char *)) < 0 ||
        grow((void **)&e->values, e->n, &e->cap, sizeof(char *)) < 0) {
        free(v);
        return -ENOMEM;
    }
    e->keys[e->n] = strdup(key);
    if (!e->keys[e->n] || compose_util_map_put(&e->index, e->keys[e->n], strlen(key), e->n) < 0) {
        free(e->keys[e->n]);
        free(v);
        return -ENOMEM;
    }
    e->values[e->n++] = v;
    return 0;
}

/* docker's updateEnvironment: an entry without a value, or with an empty one, takes the
 * variable of that name when there is one. */
static int env_update(struct conv *c, struct env *e, const char *key, const char *value)
{
    struct compose_vars vars = {.v = c->p->vars, .n = c->p->n_vars};
    const char *var = compose_vars_get(&vars, key);
    if ((!value || !*value) && var)
        return env_set(e, key, var);
    return env_set(e, key, value);
}

static bool ascii_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r';
}

static bool valid_utf8(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char ch = s[i];
        size_t n = ch < 0x80         ? 1
                   : (ch >> 5) == 6  ? 2
                   : (ch >> 4) == 14 ? 3
                   : (ch >> 3) == 30 ? 4
                                     : 0;
        if (!n || i + n > len)
            return false;
        for (size_t k = 1; k < n; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
        if (n == 2 && ch < 0xC2)
            return false;
        if (n == 3) {
            unsigned cp = ((ch & 15u) << 12) | ((s[i + 1] & 63u) << 6) | (s[i + 2] & 63u);
            if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))
                return false;
        }
        if (n == 4) {
            unsigned cp = ((ch & 7u) << 18) | ((s[i + 1] & 63u) << 12) | ((s[i + 2] & 63u) << 6) |
                          (s[i + 3] & 63u);
            if (cp < 0x10000 || cp > 0x10FFFF)
                return false;
        }
        i += n;
    }
    return true;
}

/* docker's env file format: KEY=VALUE lines (the value taken as it is), # comments, blank
 * lines, and KEY alone to take the variable KEY when there is one. */
static int parse_env_file(struct conv *c, const struct compose_service *s, const char *name,
                          const struct spec_file *f, struct env *file_env)
{
    char path[256];
    snprintf(path, sizeof(path), "services.%s.env_file", s->name);
    const char *data = f->data;
    size_t len = f->len, lineno = 0;
    struct compose_vars vars = {.v = c->p->vars, .n = c->p->n_vars};
    for (size_t at = 0; at < len || (at == 0 && len == 0);) {
        if (len == 0)
            break;
        const char *nl = memchr(data + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - data) : len;
        size_t ll = end - at;
        const char *line = data + at;
        at = nl ? end + 1 : len;
        lineno++;
        if (ll && line[ll - 1] == '\r')
            ll--;
        if (ll > ENV_FILE_MAX_LINE)
            return conv_fail(c, s->env_file_pos, path, "env file %s: line %zu is too long", name,
                             lineno);
        if (!valid_utf8((const unsigned char *)line, ll))
            return conv_fail(c, s->env_file_pos, path,
                             "env file %s contains invalid UTF-8 at line %zu", name, lineno);
        if (lineno == 1 && ll >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            line += 3;
            ll -= 3;
        }
        while (ll && ascii_space(*line)) {
            line++;
            ll--;
        }
        if (!ll || *line == '#')
            continue;
        if (memchr(line, '\0', ll))
            return conv_fail(c, s->env_file_pos, path, "env file %s: NUL byte at line %zu", name,
                             lineno);
        _cleanup_free_ char *copy = strndup(line, ll);
        if (!copy)
            return -ENOMEM;
        char *eq = strchr(copy, '=');
        if (eq)
            *eq = '\0';
        char *var = copy;
        while (*var == ' ' || *var == '\t')
            var++;
        /* The line is not shown: an env file holds passwords, and a line without "=" may be
         * one. */
        if (strpbrk(var, " \t"))
            return conv_fail(c, s->env_file_pos, path,
                             "env file %s: line %zu: the variable name contains whitespace", name,
                             lineno);
        if (!*var)
            return conv_fail(c, s->env_file_pos, path, "env file %s: no variable name on line %zu",
                             name, lineno);
        int r;
        if (eq) {
            r = env_set(file_env, var, eq + 1);
        } else {
            const char *value = compose_vars_get(&vars, var);
            r = value ? env_set(file_env, var, value) : 0;
        }
        if (r < 0)
            return r;
    }
    return 0;
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ContainerSpec.Env: env files, then environment, sorted as text. */
static int convert_env(struct conv *c, const struct compose_service *s, json_t *cs)
{
    struct env file_env = {0}, env = {0};
    char **lines = NULL;
    size_t n_lines = 0;
    int r = 0;
    char path[256];
    snprintf(path, sizeof(path), "services.%s.env_file", s->name);
    for (size_t i = 0; r == 0 && i < s->env_file.n; i++) {
        const struct spec_file *f = find_file(c, s->env_file.v[i]);
        if (!f)
            r = conv_fail(c, s->env_file_pos, path,
                          "the env file \"%s\" was not supplied with the manifest",
                          s->env_file.v[i]);
        else
            r = use_file_bytes(c, f->len, s->env_file_pos, path);
        if (r == 0)
            r = parse_env_file(c, s, s->env_file.v[i], f, &file_env);
    }
    for (size_t i = 0; r == 0 && i < file_env.n; i++)
        r = env_update(c, &env, file_env.keys[i], file_env.values[i]);
    for (size_t i = 0; r == 0 && i < s->environment.n; i++)
        r = env_update(c, &env, s->environment.v[i].key, s->environment.v[i].value);
    if (r == 0 && env.n) {
        lines = calloc(env.n, sizeof(*lines));
        r = lines ? 0 : -ENOMEM;
        for (size_t i = 0; r == 0 && i < env.n; i++) {
            if (env.values[i] ? asprintf(&lines[i], "%s=%s", env.keys[i], env.values[i]) < 0
                              : !(lines[i] = strdup(env.keys[i]))) {
                lines[i] = NULL;
                r = -ENOMEM;
            }
            n_lines = i + 1;
        }
        if (r == 0) {
            qsort(lines, env.n, sizeof(*lines), cmp_strp);
            json_t *a = json_array();
            r = set_new(cs, "Env", a);
            for (size_t i = 0; r == 0 && i < env.n; i++)
                r = json_array_append_new(a, json_string(lines[i])) == 0 ? 0 : -ENOMEM;
        }
    }
    for (size_t i = 0; i < n_lines; i++)
        free(lines[i]);
    free(lines);
    env_release(&file_env);
    env_release(&env);
    return r;
}

/* ---- a service -------------------------------------------------------------------------- */

static int add_ref(struct spec_object *o, struct refs *rs, enum spec_kind kind, const char *name,
                   bool external)
{
    if (compose_util_map_get(&rs->seen[kind], name, strlen(name), NULL))
        return 0;
    if (grow((void **)&o->refs, o->n_refs, &rs->cap, sizeof(*o->refs)) < 0)
        return -ENOMEM;
    o->refs[o->n_refs] = (struct spec_ref){.kind = kind, .external = external};
    char *copy = o->refs[o->n_refs].name = strdup(name);
    if (!copy)
        return -ENOMEM;
    o->n_refs++;
    return compose_util_map_put(&rs->seen[kind], copy, strlen(copy), 0);
}

static void refs_release(struct refs *rs)
{
    for (size_t i = 0; i < ARRAY_SIZE(rs->seen); i++)
        compose_util_map_release(&rs->seen[i]);
}

/* container.NetworkMode(target).IsUserDefined() */
static bool user_defined_network(const char *name)
{
    return !streq(name, "default") && !streq(name, "bridge") && !streq(name, "host") &&
           !streq(name, "none") && strncmp(name, "container:", 10) != 0;
}

struct attach {
    char *target;
    const struct compose_service_network *sn; /* NULL: the default network, no options */
    bool external;
};

static int cmp_attach(const void *a, const void *b)
{
    return strcmp(((const struct attach *)a)->target, ((const struct attach *)b)->target);
}

static int convert_networks(struct conv *c, const struct compose_service *s, json_t *tt,
                            struct spec_object *o, struct refs *rs)
{
    size_t n = s->n_networks ? s->n_networks : 1;
    struct attach *at = calloc(n, sizeof(*at));
    if (!at)
        return -ENOMEM;
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        at[i].sn = s->n_networks ? &s->networks[i] : NULL;
        at[i].target = network_name(c, at[i].sn ? at[i].sn->name : "default", &at[i].external);
        if (!at[i].target) {
            r = -ENOMEM;
            n = i;
            break;
        }
    }
    if (r == 0)
        qsort(at, n, sizeof(*at), cmp_attach);
    json_t *nets = json_array();
    if (r == 0)
        r = set_new(tt, "Networks", nets);
    for (size_t i = 0; r == 0 && i < n; i++) {
        json_t *a = json_object();
        r = a && json_array_append_new(nets, a) == 0 ? 0 : -ENOMEM;
        if (!r)
            r = set_str(a, "Target", at[i].target);
        struct compose_strv aliases = {0};
        if (at[i].sn)
            aliases = at[i].sn->aliases;
        bool add_name = user_defined_network(at[i].target);
        if (!r && (aliases.n || add_name)) {
            json_t *al = strv_json(&aliases);
            r = set_new(a, "Aliases", al);
            if (!r && add_name)
                r = json_array_append_new(al, json_string(s->name)) == 0 ? 0 : -ENOMEM;
        }
        if (!r)
            r = add_ref(o, rs, SPEC_NETWORK, at[i].target, at[i].external);
        if (!r && at[i].external)
            r = add_external(c, SPEC_NETWORK, at[i].target);
    }
    for (size_t i = 0; i < n; i++)
        free(at[i].target);
    free(at);
    return r;
}

struct fileref {
    const struct compose_file_ref *ref;
    const char *name;        /* Swarm name */
    const char *docker_name; /* for the order */
    const char *target;
    bool external;
};

static int cmp_fileref(const void *a, const void *b)
{
    const struct fileref *x = a, *y = b;
    int r = strcmp(x->docker_name, y->docker_name);
    return r ? r : strcmp(x->target, y->target);
}

/* ContainerSpec.Secrets / Configs: sorted by name, as docker does. */
static int convert_file_refs(struct conv *c, const struct compose_service *s, json_t *cs,
                             bool secret, struct spec_object *o, struct refs *rs)
{
    const struct compose_file_ref *refs = secret ? s->secrets : s->configs;
    size_t n = secret ? s->n_secrets : s->n_configs;
    enum spec_kind kind = secret ? SPEC_SECRET : SPEC_CONFIG;
    if (!n)
        return 0;
    struct fileref *fr = calloc(n, sizeof(*fr));
    if (!fr)
        return -ENOMEM;
    _cleanup_(compose_util_map_release) struct compose_util_map targets = {0};
    int r = 0;
    for (size_t i = 0; r == 0 && i < n; i++) {
        const struct compose_fileobj *f = secret ? compose_project_secret(c->p, refs[i].source)
                                                 : compose_project_config(c->p, refs[i].source);
        char path[256];
        snprintf(path, sizeof(path), "services.%s.%s[%zu]", s->name, secret ? "secrets" : "configs",
                 i);
        if (!f) {
            r = conv_fail(c, refs[i].pos, path, "undefined %s \"%s\"", secret ? "secret" : "config",
                          refs[i].source);
            break;
        }
        const struct spec_object *obj = f->external ? NULL : object_of(c, kind, f->key);
        fr[i].ref = &refs[i];
        fr[i].name = f->external ? f->name : obj ? obj->name : NULL;
        fr[i].external = f->external;
        fr[i].target = refs[i].target && *refs[i].target ? refs[i].target : refs[i].source;
        fr[i].docker_name = obj ? obj->docker_name : fr[i].name;
        if (!fr[i].name)
            r = -ENOMEM;
        if (r == 0 && compose_util_map_get(&targets, fr[i].target, strlen(fr[i].target), NULL))
            r = conv_fail(c, refs[i].pos, path, "duplicate %s target for %s not allowed",
                          secret ? "secret" : "config", fr[i].target);
        if (r == 0 && compose_util_map_put(&targets, fr[i].target, strlen(fr[i].target), 0) < 0)
            r = -ENOMEM;
    }
    if (r == 0)
        qsort(fr, n, sizeof(*fr), cmp_fileref);
    json_t *a = json_array();
    if (r == 0)
        r = set_new(cs, secret ? "Secrets" : "Configs", a);
    else
        json_decref(a);
    for (size_t i = 0; r == 0 && i < n; i++) {
        json_t *e = json_object(), *file = json_object();
        r = e && json_array_append_new(a, e) == 0 ? 0 : -ENOMEM;
        if (!r)
            r = set_new(e, "File", file);
        else
            json_decref(file);
        if (!r)
            r = set_str(file, "Name", fr[i].target);
        if (!r)
            r = set_str(file, "UID", fr[i].ref->uid && *fr[i].ref->uid ? fr[i].ref->uid : "0");
        if (!r)
            r = set_str(file, "GID", fr[i].ref->gid && *fr[i].ref->gid ? fr[i].ref->gid : "0");
        if (!r)
            r = set_int(file, "Mode", fr[i].ref->has_mode ? fr[i].ref->mode : 0444);
        if (!r)
            r = set_str(e, secret ? "SecretID" : "ConfigID", "");
        if (!r)
            r = set_str(e, secret ? "SecretName" : "ConfigName", fr[i].name);
        if (!r)
            r = add_ref(o, rs, kind, fr[i].name, fr[i].external);
        if (!r && fr[i].external)
            r = add_external(c, kind, fr[i].name);
    }
    free(fr);
    return r;
}

static int convert_mounts(struct conv *c, const struct compose_service *s, json_t *cs)
{
    if (!s->n_mounts)
        return 0;
    json_t *a = json_array();
    int r = set_new(cs, "Mounts", a);
    for (size_t i = 0; r == 0 && i < s->n_mounts; i++) {
        const struct compose_mount *m = &s->mounts[i];
        json_t *mj = json_object();
        r = mj && json_array_append_new(a, mj) == 0 ? 0 : -ENOMEM;
        if (!r)
            r = set_str_opt(mj, "Type", m->type);
        bool named = streq(m->type, "volume") && m->source;
        const struct compose_volume *vol = named ? compose_project_volume(c->p, m->source) : NULL;
        _cleanup_free_ char *source = NULL;
        if (named) {
            source = vol && vol->name ? strdup(vol->name) : scope(c, m->source);
            if (!source)
                r = -ENOMEM;
        }
        if (!r)
            r = set_str_opt(mj, "Source", named ? source : m->source);
        if (!r)
            r = set_str_opt(mj, "Target", m->target);
        if (!r)
            r = set_bool_opt(mj, "ReadOnly", m->read_only);
        if (!r)
            r = set_str_opt(mj, "Consistency", m->consistency);
        if (!r && (streq(m->type, "bind") || streq(m->type, "npipe")) && m->has_bind) {
            json_t *bo = json_object();
            r = set_new(mj, "BindOptions", bo);
            if (!r)
                r = set_str_opt(bo, "Propagation", m->bind_propagation);
        }
        if (!r && named) {
            json_t *vo = json_object();
            r = set_new(mj, "VolumeOptions", vo);
            if (!r && m->has_volume)
                r = set_bool_opt(vo, "NoCopy", m->volume_nocopy);
            if (!r && vol && !vol->external) {
                r = set_new(vo, "Labels", stack_labels(c, &vol->labels));
                if (!r && ((vol->driver && *vol->driver) || vol->driver_opts.set)) {
                    json_t *d = json_object();
                    r = set_new(vo, "DriverConfig", d);
                    if (!r)
                        r = set_str_opt(d, "Name", vol->driver);
                    if (!r)
                        r = set_map_opt(d, "Options", &vol->driver_opts);
                }
            }
        }
        if (!r && streq(m->type, "tmpfs") && m->has_tmpfs) {
            json_t *to = json_object();
            r = set_new(mj, "TmpfsOptions", to);
            if (!r)
                r = set_int_opt(to, "SizeBytes", m->tmpfs_size);
        }
    }
    return r;
}

static int convert_healthcheck(const struct compose_healthcheck *h, json_t *cs)
{
    if (!h->set)
        return 0;
    json_t *hc = json_object();
    int r = set_new(cs, "Healthcheck", hc);
    if (r < 0)
        return r;
    if (h->disable) {
        json_t *t = json_array();
        r = set_new(hc, "Test", t);
        if (!r)
            r = json_array_append_new(t, json_string("NONE")) == 0 ? 0 : -ENOMEM;
        return r;
    }
    r = set_strv_opt(hc, "Test", &h->test);
    if (!r)
        r = set_int_opt(hc, "Interval", h->interval.ns);
    if (!r)
        r = set_int_opt(hc, "Timeout", h->timeout.ns);
    if (!r)
        r = set_int_opt(hc, "StartPeriod", h->start_period.ns);
    if (!r)
        r = set_int_opt(hc, "Retries", (long long)h->retries.v);
    return r;
}

/* opts.EffectiveCapAddCapDrop: normalised, deduplicated, sorted; ALL wins; add beats drop. */
static int normalize_caps(const struct compose_strv *in, struct compose_strv *out)
{
    _cleanup_(compose_util_map_release) struct compose_util_map seen = {0};
    out->n = 0;
    out->v = calloc(in->n ? in->n : 1, sizeof(char *));
    if (!out->v)
        return -ENOMEM;
    for (size_t i = 0; i < in->n; i++) {
        const char *s = in->v[i];
        while (ascii_space(*s))
            s++;
        size_t len = strlen(s);
        while (len && ascii_space(s[len - 1]))
            len--;
        char *up = malloc(len + 5);
        if (!up)
            return -ENOMEM;
        for (size_t k = 0; k < len; k++)
            up[k] = (char)((s[k] >= 'a' && s[k] <= 'z') ? s[k] - 32 : s[k]);
        up[len] = '\0';
        if (!streq(up, "ALL") && !streq(up, "RESET") && strncmp(up, "CAP_", 4) != 0) {
            memmove(up + 4, up, len + 1);
            memcpy(up, "CAP_", 4);
        }
        if (compose_util_map_get(&seen, up, strlen(up), NULL)) {
            free(up);
            continue;
        }
        out->v[out->n++] = up;
        if (compose_util_map_put(&seen, up, strlen(up), 0) < 0)
            return -ENOMEM;
    }
    return 0;
}

static void strv_free(struct compose_strv *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
    *sv = (struct compose_strv){0};
}

static bool strv_has(const struct compose_strv *sv, const char *s)
{
    for (size_t i = 0; i < sv->n; i++)
        if (streq(sv->v[i], s))
            return true;
    return false;
}

static int convert_caps(const struct compose_service *s, json_t *cs)
{
    struct compose_strv add = {0}, drop = {0};
    int r = normalize_caps(&s->cap_add, &add);
    if (!r)
        r = normalize_caps(&s->cap_drop, &drop);
    struct compose_strv eff_add = {.v = calloc(add.n + 1, sizeof(char *))};
    struct compose_strv eff_drop = {.v = calloc(drop.n + 1, sizeof(char *))};
    if (!eff_add.v || !eff_drop.v)
        r = -ENOMEM;
    if (!r) {
        bool add_all = strv_has(&add, "ALL"), drop_all = strv_has(&drop, "ALL");
        for (size_t i = 0; i < add.n; i++)
            if (!streq(add.v[i], "RESET") && (!add_all || streq(add.v[i], "ALL")))
                eff_add.v[eff_add.n++] = add.v[i];
        struct compose_util_map added = {0};
        for (size_t i = 0; r == 0 && i < eff_add.n; i++)
            r = compose_util_map_put(&added, eff_add.v[i], strlen(eff_add.v[i]), 0);
        for (size_t i = 0; r == 0 && i < drop.n; i++) {
            const char *d = drop.v[i];
            if (streq(d, "RESET") || (drop_all && !streq(d, "ALL")))
                continue;
            if (compose_util_map_get(&added, d, strlen(d), NULL))
                continue;
            eff_drop.v[eff_drop.n++] = drop.v[i];
        }
        compose_util_map_release(&added);
        qsort(eff_add.v, eff_add.n, sizeof(char *), cmp_strp);
        qsort(eff_drop.v, eff_drop.n, sizeof(char *), cmp_strp);
        if (!r)
            r = set_strv_opt(cs, "CapabilityAdd", &eff_add);
        if (!r)
            r = set_strv_opt(cs, "CapabilityDrop", &eff_drop);
    }
    free(eff_add.v);
    free(eff_drop.v);
    strv_free(&add);
    strv_free(&drop);
    return r;
}

static int cmp_ulimit(const void *a, const void *b)
{
    return strcmp(((const struct compose_ulimit *)a)->name,
                  ((const struct compose_ulimit *)b)->name);
}

static int convert_ulimits(const struct compose_service *s, json_t *cs)
{
    if (!s->n_ulimits)
        return 0;
    struct compose_ulimit *u = calloc(s->n_ulimits, sizeof(*u));
    if (!u)
        return -ENOMEM;
    memcpy(u, s->ulimits, s->n_ulimits * sizeof(*u));
    qsort(u, s->n_ulimits, sizeof(*u), cmp_ulimit);
    json_t *a = json_array();
    int r = set_new(cs, "Ulimits", a);
    for (size_t i = 0; r == 0 && i < s->n_ulimits; i++) {
        /* a name given twice: the last one wins, as in docker's map */
        if (i + 1 < s->n_ulimits && streq(u[i].name, u[i + 1].name))
            continue;
        json_t *e = json_pack("{s:s,s:I,s:I}", "Name", u[i].name, "Hard", (json_int_t)u[i].hard,
                              "Soft", (json_int_t)u[i].soft);
        r = e && json_array_append_new(a, e) == 0 ? 0 : -ENOMEM;
    }
    free(u);
    return r;
}

static int convert_resources(const struct compose_deploy *d, json_t *tt)
{
    json_t *res = json_object();
    int r = set_new(tt, "Resources", res);
    int64_t nano = 0;
    if (!r && d->limits.set) {
        json_t *lim = json_object();
        r = set_new(res, "Limits", lim);
        if (!r && d->limits.cpus && compose_util_nano_cpus(d->limits.cpus, &nano) < 0)
            nano = 0;
        if (!r)
            r = set_int_opt(lim, "NanoCPUs", d->limits.cpus ? nano : 0);
        if (!r)
            r = set_int_opt(lim, "MemoryBytes", d->limits.memory);
        if (!r)
            r = set_int_opt(lim, "Pids", d->limits.pids);
    }
    if (!r && d->reservations.set) {
        json_t *rsv = json_object();
        nano = 0;
        r = set_new(res, "Reservations", rsv);
        if (!r && d->reservations.cpus && compose_util_nano_cpus(d->reservations.cpus, &nano) < 0)
            nano = 0;
        if (!r)
            r = set_int_opt(rsv, "NanoCPUs", nano);
        if (!r)
            r = set_int_opt(rsv, "MemoryBytes", d->reservations.memory);
        if (!r && d->reservations.n_generic) {
            json_t *g = json_array();
            r = set_new(rsv, "GenericResources", g);
            for (size_t i = 0; !r && i < d->reservations.n_generic; i++) {
                const struct compose_generic_resource *gr = &d->reservations.generic[i];
                json_t *e = json_object();
                r = e && json_array_append_new(g, e) == 0 ? 0 : -ENOMEM;
                if (!r && (gr->kind || gr->value)) {
                    json_t *ds = json_object();
                    r = set_new(e, "DiscreteResourceSpec", ds);
                    if (!r)
                        r = set_str_opt(ds, "Kind", gr->kind);
                    if (!r)
                        r = set_int_opt(ds, "Value", gr->value);
                }
            }
        }
    }
    return r;
}

static int convert_restart(const struct compose_service *s, json_t *tt)
{
    const struct compose_restart_policy *rp = &s->deploy.restart_policy;
    json_t *o;
    int r;
    if (rp->set) {
        o = json_object();
        r = set_new(tt, "RestartPolicy", o);
        if (!r)
            r = set_str_opt(o, "Condition", rp->condition);
        if (!r && rp->delay.set)
            r = set_int(o, "Delay", rp->delay.ns);
        if (!r && rp->max_attempts.set)
            r = set_int(o, "MaxAttempts", (long long)rp->max_attempts.v);
        if (!r && rp->window.set)
            r = set_int(o, "Window", rp->window.ns);
        return r;
    }
    /* `restart:` as the fallback (validated by the parser) */
    const char *rs = s->restart ? s->restart : "";
    if (!*rs || streq(rs, "no") || strncmp(rs, "no:", 3) == 0)
        return 0;
    o = json_object();
    r = set_new(tt, "RestartPolicy", o);
    if (r < 0)
        return r;
    if (strncmp(rs, "on-failure", 10) == 0 && (rs[10] == '\0' || rs[10] == ':')) {
        int64_t count = 0;
        if (rs[10] == ':' && compose_util_decimal(rs + 11, &count) < 0)
            count = 0;
        r = set_str(o, "Condition", "on-failure");
        if (!r)
            r = set_int(o, "MaxAttempts", (long long)(uint64_t)count);
        return r;
    }
    return set_str(o, "Condition", "any");
}

static json_t *update_config_json(const struct compose_update_config *u)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int r = set_int(o, "Parallelism", u->parallelism.set ? (long long)u->parallelism.v : 1);
    if (!r)
        r = set_int_opt(o, "Delay", u->delay_ns);
    if (!r)
        r = set_str_opt(o, "FailureAction", u->failure_action);
    if (!r)
        r = set_int_opt(o, "Monitor", u->monitor_ns);
    if (!r)
        r = set_new(o, "MaxFailureRatio", json_real(u->max_failure_ratio));
    if (!r)
        r = set_str(o, "Order", u->order);
    if (r < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int convert_mode(const struct compose_deploy *d, json_t *spec)
{
    json_t *mode = json_object(), *m = json_object();
    int r = set_new(spec, "Mode", mode);
    if (r < 0) {
        json_decref(m);
        return r;
    }
    switch (d->mode) {
    case COMPOSE_MODE_GLOBAL:
        return set_new(mode, "Global", m);
    case COMPOSE_MODE_GLOBAL_JOB:
        return set_new(mode, "GlobalJob", m);
    case COMPOSE_MODE_REPLICATED_JOB:
        r = set_new(mode, "ReplicatedJob", m);
        if (!r && d->replicas.set)
            r = set_int(m, "MaxConcurrent", (long long)d->replicas.v);
        if (!r && d->replicas.set)
            r = set_int(m, "TotalCompletions", (long long)d->replicas.v);
        return r;
    case COMPOSE_MODE_REPLICATED:
        break;
    }
    r = set_new(mode, "Replicated", m);
    if (!r && d->replicas.set)
        r = set_int(m, "Replicas", (long long)d->replicas.v);
    return r;
}

static int cmp_port(const void *a, const void *b)
{
    const struct compose_port *x = *(const struct compose_port *const *)a;
    const struct compose_port *y = *(const struct compose_port *const *)b;
    if (x->published != y->published)
        return x->published < y->published ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int convert_endpoint(const struct compose_service *s, json_t *spec)
{
    json_t *ep = json_object();
    int r = set_new(spec, "EndpointSpec", ep);
    if (!r)
        r = set_str_opt(ep, "Mode", s->deploy.endpoint_mode);
    if (r < 0 || !s->n_ports)
        return r;
    /* sorted by published port, stable: the pointers order equal ports as written */
    size_t n = s->n_ports;
    const struct compose_port **ps = calloc(n, sizeof(*ps));
    if (!ps)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        ps[i] = &s->ports[i];
    qsort(ps, n, sizeof(*ps), cmp_port);
    json_t *a = json_array();
    r = set_new(ep, "Ports", a);
    for (size_t i = 0; r == 0 && i < n; i++) {
        json_t *pj = json_object();
        r = pj && json_array_append_new(a, pj) == 0 ? 0 : -ENOMEM;
        if (!r)
            r = set_str_opt(pj, "Protocol", ps[i]->protocol);
        if (!r)
            r = set_int_opt(pj, "TargetPort", ps[i]->target);
        if (!r)
            r = set_int_opt(pj, "PublishedPort", ps[i]->published);
        if (!r)
            r = set_str_opt(pj, "PublishMode", ps[i]->mode);
    }
    free(ps);
    return r;
}

static int convert_service_refs(struct conv *c, const struct compose_service *s, struct refs *rs);

static int convert_service(struct conv *c, const struct compose_service *s)
{
    struct refs rs = {0};
    int r = convert_service_refs(c, s, &rs);
    refs_release(&rs);
    return r;
}

static int convert_service_refs(struct conv *c, const struct compose_service *s, struct refs *rs)
{
    struct spec_object *o = new_object(c, SPEC_SERVICE, s->name);
    if (!o)
        return -ENOMEM;
    o->name = scope(c, s->name);
    o->docker_name = scope(c, s->name);
    json_t *spec = o->spec = json_object();
    if (!o->name || !o->docker_name || !spec)
        return -ENOMEM;
    _cleanup_free_ char *image = NULL;
    if (compose_util_image_with_tag(s->image, &image) == -ENOMEM)
        return -ENOMEM;

    int r = set_str(spec, "Name", o->name);
    json_t *labels = stack_labels(c, &s->deploy.labels);
    if (!r)
        r = set_new(spec, "Labels", labels);
    if (!r)
        r = set_str(labels, SPEC_LABEL_IMAGE, s->image);

    json_t *tt = json_object(), *cs = json_object();
    if (!r)
        r = set_new(spec, "TaskTemplate", tt);
    else
        json_decref(tt);
    if (!r)
        r = set_new(tt, "ContainerSpec", cs);
    else
        json_decref(cs);
    if (!r)
        r = set_str(cs, "Image", image ? image : s->image);
    if (!r)
        r = set_new(cs, "Labels", stack_labels(c, &s->labels));
    if (!r)
        r = set_strv_opt(cs, "Command", &s->entrypoint);
    if (!r)
        r = set_strv_opt(cs, "Args", &s->command);
    if (!r)
        r = set_str_opt(cs, "Hostname", s->hostname);
    if (!r)
        r = convert_env(c, s, cs);
    if (!r)
        r = set_str_opt(cs, "Dir", s->working_dir);
    if (!r)
        r = set_str_opt(cs, "User", s->user);
    if (!r)
        r = set_new(cs, "Privileges", json_pack("{s:n,s:n}", "CredentialSpec", "SELinuxContext"));
    if (!r && s->has_init)
        r = set_new(cs, "Init", json_boolean(s->init));
    if (!r)
        r = set_str_opt(cs, "StopSignal", s->stop_signal);
    if (!r)
        r = set_bool_opt(cs, "TTY", s->tty);
    if (!r)
        r = set_bool_opt(cs, "OpenStdin", s->stdin_open);
    if (!r)
        r = set_bool_opt(cs, "ReadOnly", s->read_only);
    if (!r)
        r = convert_mounts(c, s, cs);
    if (!r && s->stop_grace_period.set)
        r = set_int(cs, "StopGracePeriod", s->stop_grace_period.ns);
    if (!r)
        r = convert_healthcheck(&s->healthcheck, cs);
    if (!r && s->extra_hosts.n) {
        /* "host:ip" → "ip host"; entries without a colon are dropped, as docker does */
        json_t *hosts = json_array();
        r = set_new(cs, "Hosts", hosts);
        for (size_t i = 0; !r && i < s->extra_hosts.n; i++) {
            const char *e = s->extra_hosts.v[i], *colon = strchr(e, ':');
            if (!colon)
                continue;
            char *h = NULL;
            if (asprintf(&h, "%s %.*s", colon + 1, (int)(colon - e), e) < 0)
                return -ENOMEM;
            r = json_array_append_new(hosts, json_string(h)) == 0 ? 0 : -ENOMEM;
            free(h);
        }
        if (!r && json_array_size(hosts) == 0)
            json_object_del(cs, "Hosts");
    }
    if (!r && (s->has_dns || s->has_dns_search)) {
        json_t *dns = json_object();
        r = set_new(cs, "DNSConfig", dns);
        if (!r)
            r = set_strv_opt(dns, "Nameservers", &s->dns);
        if (!r)
            r = set_strv_opt(dns, "Search", &s->dns_search);
    }
    if (!r)
        r = convert_file_refs(c, s, cs, true, o, rs);
    if (!r)
        r = convert_file_refs(c, s, cs, false, o, rs);
    if (!r)
        r = set_str_opt(cs, "Isolation", s->isolation);
    if (!r)
        r = set_map_opt(cs, "Sysctls", &s->sysctls);
    if (!r)
        r = convert_caps(s, cs);
    if (!r)
        r = convert_ulimits(s, cs);

    if (!r)
        r = convert_resources(&s->deploy, tt);
    if (!r)
        r = convert_restart(s, tt);
    if (!r) {
        json_t *pl = json_object();
        r = set_new(tt, "Placement", pl);
        if (!r)
            r = set_strv_opt(pl, "Constraints", &s->deploy.constraints);
        if (!r && s->deploy.preferences.n) {
            json_t *prefs = json_array();
            r = set_new(pl, "Preferences", prefs);
            for (size_t i = 0; !r && i < s->deploy.preferences.n; i++) {
                json_t *e = json_pack("{s:{s:s}}", "Spread", "SpreadDescriptor",
                                      s->deploy.preferences.v[i]);
                r = e && json_array_append_new(prefs, e) == 0 ? 0 : -ENOMEM;
            }
        }
        if (!r)
            r = set_int_opt(pl, "MaxReplicas", (long long)s->deploy.max_replicas_per_node);
    }
    if (!r)
        r = convert_networks(c, s, tt, o, rs);
    if (!r && s->logging.set) {
        json_t *ld = json_object();
        r = set_new(tt, "LogDriver", ld);
        if (!r)
            r = set_str_opt(ld, "Name", s->logging.driver);
        if (!r)
            r = set_map_opt(ld, "Options", &s->logging.options);
    }
    if (!r)
        r = set_int(tt, "ForceUpdate", 0);
    if (!r)
        r = convert_mode(&s->deploy, spec);
    if (!r && s->deploy.update_config.set)
        r = set_new(spec, "UpdateConfig", update_config_json(&s->deploy.update_config));
    if (!r && s->deploy.rollback_config.set)
        r = set_new(spec, "RollbackConfig", update_config_json(&s->deploy.rollback_config));
    if (!r)
        r = convert_endpoint(s, spec);
    return r;
}

/* ---- labels and hashes ------------------------------------------------------------------ */

json_t *spec_labels(json_t *spec)
{
    return json_object_get(spec, "Labels");
}

int spec_stamp(struct spec_object *o)
{
    json_t *labels = spec_labels(o->spec);
    if (!labels)
        return -EINVAL;
    json_object_del(labels, SPEC_LABEL_HASH);
    int r = spec_hash_json(o->spec, o->hash);
    if (r < 0)
        return r;
    return set_str(labels, SPEC_LABEL_HASH, o->hash);
}

static int stamp(struct conv *c, struct spec_object *o)
{
    json_t *labels = spec_labels(o->spec);
    const char *reserved[] = {SPEC_LABEL_MANAGED, SPEC_LABEL_AGENT, SPEC_LABEL_STACK,
                              SPEC_LABEL_HASH};
    for (size_t i = 0; i < ARRAY_SIZE(reserved); i++) {
        if (!json_object_get(labels, reserved[i]))
            continue;
        char w[256];
        snprintf(w, sizeof(w), "%s: %s %s: the label %s is the agent's; the manifest's is replaced",
                 c->p->filename, spec_kind_to_string(o->kind), o->key, reserved[i]);
        if (add_warning(c, w) < 0)
            return -ENOMEM;
    }
    int r = set_str(labels, SPEC_LABEL_MANAGED, "true");
    if (!r)
        r = set_str(labels, SPEC_LABEL_STACK, c->in->stack);
    if (!r && c->in->agent_id)
        r = set_str(labels, SPEC_LABEL_AGENT, c->in->agent_id);
    else if (!r)
        json_object_del(labels, SPEC_LABEL_AGENT);
    if (!r && !c->in->no_hashes)
        r = spec_stamp(o);
    return r;
}

/* ---- the stack -------------------------------------------------------------------------- */

static int cmp_object(const void *a, const void *b)
{
    const struct spec_object *x = a, *y = b;
    if (x->kind != y->kind)
        return (int)x->kind - (int)y->kind;
    return strcmp(x->name, y->name);
}

static bool valid_stack_name(const char *s)
{
    if (!s || !*s || strlen(s) > 63)
        return false;
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

int spec_convert(const struct compose_project *p, const struct spec_input *in,
                 struct spec_stack **ret_stack, struct compose_error *err)
{
    struct compose_error dummy;
    if (!err)
        err = &dummy;
    memset(err, 0, sizeof(*err));
    if (!valid_stack_name(in->stack))
        return compose_error_set(err, NULL, 0, 0, NULL,
                                 "invalid stack name \"%s\" (letters, digits, '_', '-', '.'; at "
                                 "most 63, starting with a letter or digit)",
                                 in->stack ? in->stack : "");
    struct spec_stack *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    struct conv c = {.p = p, .in = in, .err = err, .st = st};
    int r = (st->stack = strdup(in->stack)) ? 0 : -ENOMEM;
    for (size_t i = 0; r == 0 && i < p->warnings.n; i++)
        r = add_warning(&c, p->warnings.v[i]);
    /* networks: the ones services use, the default one included */
    if (r == 0)
        r = index_used_networks(&c);
    if (r == 0 && network_used(&c, "default") && !compose_project_network(p, "default"))
        r = convert_network(&c, "default");
    for (size_t i = 0; r == 0 && i < p->n_networks; i++)
        if (network_used(&c, p->networks[i].key))
            r = convert_network(&c, p->networks[i].key);
    /* every declared config and secret, used or not, as docker does */
    for (size_t i = 0; r == 0 && i < p->n_configs; i++)
        r = convert_fileobj(&c, &p->configs[i], false);
    for (size_t i = 0; r == 0 && i < p->n_secrets; i++)
        r = convert_fileobj(&c, &p->secrets[i], true);
    for (size_t i = 0; r == 0 && i < p->n_services; i++)
        r = convert_service(&c, &p->services[i]);
    for (size_t i = 0; r == 0 && i < st->n_objects; i++)
        r = stamp(&c, &st->objects[i]);
    compose_util_map_release(&c.used_networks);
    for (size_t i = 0; i < ARRAY_SIZE(c.objects); i++) {
        compose_util_map_release(&c.objects[i]);
        compose_util_map_release(&c.externals[i]);
    }
    if (r < 0) {
        if (r == -ENOMEM && !err->text[0])
            compose_error_set(err, p->filename, 0, 0, NULL, "out of memory");
        spec_stack_free(st);
        return r;
    }
    if (st->n_objects)
        qsort(st->objects, st->n_objects, sizeof(*st->objects), cmp_object);
    *ret_stack = st;
    return 0;
}

struct spec_stack *spec_stack_free(struct spec_stack *s)
{
    if (!s)
        return NULL;
    for (size_t i = 0; i < s->n_objects; i++) {
        struct spec_object *o = &s->objects[i];
        free(o->key);
        free(o->name);
        free(o->docker_name);
        json_decref(o->spec);
        for (size_t j = 0; j < o->n_refs; j++)
            free(o->refs[j].name);
        free(o->refs);
    }
    free(s->objects);
    for (size_t i = 0; i < s->n_externals; i++)
        free(s->externals[i].name);
    free(s->externals);
    for (size_t i = 0; i < s->n_warnings; i++)
        free(s->warnings[i]);
    free(s->warnings);
    free(s->stack);
    free(s);
    return NULL;
}

const struct spec_object *spec_stack_find(const struct spec_stack *s, enum spec_kind kind,
                                          const char *name)
{
    for (size_t i = 0; i < s->n_objects; i++)
        if (s->objects[i].kind == kind && streq(s->objects[i].name, name))
            return &s->objects[i];
    return NULL;
}

int spec_resolve_ids(json_t *service_spec,
                     const char *(*lookup)(void *ud, enum spec_kind kind, const char *name),
                     void *ud, const char **ret_missing)
{
    json_t *cs = json_object_get(json_object_get(service_spec, "TaskTemplate"), "ContainerSpec");
    static const struct {
        const char *list, *id, *name;
        enum spec_kind kind;
    } kinds[] = {
        {"Secrets", "SecretID", "SecretName", SPEC_SECRET},
        {"Configs", "ConfigID", "ConfigName", SPEC_CONFIG},
    };
    for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
        json_t *arr = json_object_get(cs, kinds[k].list), *e;
        size_t i;
        json_array_foreach(arr, i, e)
        {
            const char *name = json_string_value(json_object_get(e, kinds[k].name));
            const char *id = name ? lookup(ud, kinds[k].kind, name) : NULL;
            if (!id) {
                if (ret_missing)
                    *ret_missing = name;
                return -ENOENT;
            }
            if (set_str(e, kinds[k].id, id) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

int spec_resolve_network_ids(json_t *service_spec,
                             const char *(*lookup)(void *ud, enum spec_kind kind, const char *name),
                             void *ud, const char **ret_missing)
{
    json_t *nets = json_object_get(json_object_get(service_spec, "TaskTemplate"), "Networks"), *e;
    size_t i;
    json_array_foreach(nets, i, e)
    {
        const char *name = json_string_value(json_object_get(e, "Target"));
        const char *id = name ? lookup(ud, SPEC_NETWORK, name) : NULL;
        if (!id) {
            if (ret_missing)
                *ret_missing = name;
            return -ENOENT;
        }
        if (set_str(e, "Target", id) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* Compose file → compose model: the document and its top-level objects (networks, volumes,
 * secrets, configs); services are read by compose_service.c. The YAML tree (compose_yaml) is
 * walked once with the path and place of every node at hand; every string value is interpolated
 * where it is read, so a value reached through an alias is interpolated and typed for the place
 * it is used, as docker does after go-yaml has expanded the alias. */
#include "compose/compose.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "compose/compose_arena.h"
#include "compose/compose_keys.h"
#include "compose/compose_load.h"
#include "compose/compose_service.h"
#include "compose/compose_util.h"
#include "compose/compose_value.h"
#include "compose/compose_yaml.h"

#define DEFAULT_FILENAME "compose.yml"

const char *compose_map_get(const struct compose_map *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (streq(m->v[i].key, key))
            return m->v[i].value;
    return NULL;
}

/* ---- top-level networks, volumes, secrets, configs -------------------------------------- */

/* external: true | false | {name: ...} (the deprecated form). */
struct external {
    bool external;
    char *name;
};

static const struct compose_key external_keys[] = {
    {KEY("name", KEY_STR, KEY_AT(external, name))},
};
static const struct compose_keys external_table = COMPOSE_KEYS(external_keys);

static int read_external(struct compose_loader *l, const struct compose_ynode *n, void *field,
                         const struct compose_key *k)
{
    struct external *e = field;
    if (n->kind != COMPOSE_YMAP)
        return compose_value_bool(l, n, &e->external);
    e->external = true;
    return compose_keys_read(l, n, &external_table, e);
}

/* An object as read, with what only the reading needs. */
struct network_in {
    struct compose_network net;
    struct external ext;
};

#define NET(field) KEY_AT(network_in, net.field)

static const struct compose_key ipam_keys[] = {
    {KEY("driver", KEY_STR, NET(ipam_driver))},
    {KEY("config", KEY_READ, NET(ipam_subnets)), .read = compose_keys_keyed_list, .arg = "subnet"},
};
static const struct compose_keys ipam_table = COMPOSE_KEYS(ipam_keys);

static const struct compose_key network_keys[] = {
    {KEY("name", KEY_STR, NET(name))},
    {KEY("driver", KEY_STR, NET(driver))},
    {KEY("driver_opts", KEY_OPTS, NET(driver_opts))},
    {KEY("ipam", KEY_MAP, KEY_SELF), .present = NET(has_ipam), .sub = &ipam_table},
    {KEY("external", KEY_READ, KEY_AT(network_in, ext)), .read = read_external},
    {KEY("internal", KEY_BOOL, NET(internal))},
    {KEY("attachable", KEY_BOOL, NET(attachable))},
    {KEY("labels", KEY_LABELS, NET(labels))},
};
static const struct compose_keys network_table =
    COMPOSE_KEYS(network_keys, .null_ok = true, .extensions = true);

struct volume_in {
    struct compose_volume vol;
    struct external ext;
};

#define VOL(field) KEY_AT(volume_in, vol.field)

static const struct compose_key volume_keys[] = {
    {KEY("name", KEY_STR, VOL(name))},
    {KEY("driver", KEY_STR, VOL(driver))},
    {KEY("driver_opts", KEY_OPTS, VOL(driver_opts))},
    {KEY("external", KEY_READ, KEY_AT(volume_in, ext)), .read = read_external},
    {KEY("labels", KEY_LABELS, VOL(labels))},
};
static const struct compose_keys volume_table =
    COMPOSE_KEYS(volume_keys, .null_ok = true, .extensions = true);

struct fileobj_in {
    struct compose_fileobj o;
    struct external ext;
};

#define FILEOBJ(field) KEY_AT(fileobj_in, o.field)
#define FILEOBJ_KEYS                                                                               \
    {KEY("name", KEY_STR, FILEOBJ(name))},                                                         \
        {KEY("file", KEY_STR, FILEOBJ(file)), .pos = FILEOBJ(file_pos), .flags = KEY_VALUE_POS},   \
        {KEY("external", KEY_READ, KEY_AT(fileobj_in, ext)), .read = read_external},               \
        {KEY("labels", KEY_LABELS, FILEOBJ(labels))},                                              \
    {                                                                                              \
        KEY("template_driver", KEY_STR, FILEOBJ(template_driver))                                  \
    }

static const struct compose_key config_keys[] = {FILEOBJ_KEYS};
static const struct compose_keys config_table = COMPOSE_KEYS(config_keys, .extensions = true);

static const struct compose_key secret_keys[] = {
    FILEOBJ_KEYS,
    {KEY("driver", KEY_STR, FILEOBJ(driver))},
    {KEY("driver_opts", KEY_OPTS, FILEOBJ(driver_opts))},
};
static const struct compose_keys secret_table = COMPOSE_KEYS(secret_keys, .extensions = true);

/* external.name is the deprecated spelling of name; an external object is named by its key
 * unless it says otherwise. */
static int external_name(struct compose_loader *l, const struct compose_ynode *n,
                         const struct external *ext, const char *what, char **name)
{
    if (!ext->external)
        return 0;
    if (ext->name) {
        if (*name)
            return compose_load_fail(l, compose_yaml_get(n, "external"),
                                     "%s.external.name and %s.name conflict; only use %s.name",
                                     what, what, what);
        *name = ext->name;
    }
    return 0;
}

static int read_network(struct compose_loader *l, const struct compose_ynode *key,
                        const struct compose_ynode *n, struct compose_network *net)
{
    struct network_in in = {.net = {.key = (char *)key->str, .pos = compose_load_pos(key)}};
    if (!compose_value_valid_name(in.net.key))
        return compose_load_fail(l, key, "invalid network name (letters, digits, '.', '_', '-')");
    int r = compose_keys_read(l, n, &network_table, &in);
    if (r == 0)
        r = external_name(l, n, &in.ext, "network", &in.net.name);
    if (r < 0)
        return r;
    in.net.external = in.ext.external;
    if (in.net.external && !in.net.name)
        in.net.name = in.net.key;
    *net = in.net;
    return 0;
}

static int read_volume(struct compose_loader *l, const struct compose_ynode *key,
                       const struct compose_ynode *n, struct compose_volume *vol)
{
    struct volume_in in = {.vol = {.key = (char *)key->str, .pos = compose_load_pos(key)}};
    if (!compose_value_valid_name(in.vol.key))
        return compose_load_fail(l, key, "invalid volume name (letters, digits, '.', '_', '-')");
    int r = compose_keys_read(l, n, &volume_table, &in);
    if (r < 0)
        return r;
    /* an external volume is not defined here: the first of these keys in the file conflicts */
    static const char *const own[] = {"driver", "driver_opts", "labels"};
    for (size_t i = 0; in.ext.external && n->kind == COMPOSE_YMAP && i < n->n; i++)
        for (size_t j = 0; j < ARRAY_SIZE(own); j++)
            if (streq(n->keys[i]->str, own[j]))
                return compose_load_fail(l, compose_yaml_get(n, "external"),
                                         "conflicting parameters \"external\" and \"%s\" specified",
                                         own[j]);
    r = external_name(l, n, &in.ext, "volume", &in.vol.name);
    if (r < 0)
        return r;
    in.vol.external = in.ext.external;
    if (in.vol.external && !in.vol.name)
        in.vol.name = in.vol.key;
    *vol = in.vol;
    return 0;
}

static int read_fileobj(struct compose_loader *l, const struct compose_ynode *key,
                        const struct compose_ynode *n, bool secret, struct compose_fileobj *o)
{
    const char *what = secret ? "secret" : "config";
    struct fileobj_in in = {.o = {.key = (char *)key->str, .pos = compose_load_pos(key)}};
    if (!compose_value_valid_name(in.o.key))
        return compose_load_fail(l, key, "invalid %s name (letters, digits, '.', '_', '-')", what);
    int r = compose_keys_read(l, n, secret ? &secret_table : &config_table, &in);
    if (r == 0)
        r = external_name(l, n, &in.ext, what, &in.o.name);
    if (r < 0)
        return r;
    in.o.external = in.ext.external;
    if (in.o.external) {
        if (!in.o.name)
            in.o.name = in.o.key;
    } else if (in.o.driver && *in.o.driver) {
        if (in.o.file)
            return compose_load_fail(l, compose_yaml_get(n, "driver"),
                                     "%s.driver and %s.file conflict; only use %s.driver", what,
                                     what, what);
    } else if (!in.o.file || !*in.o.file) {
        return compose_load_fail(l, key,
                                 "a %s needs a file (its content comes with the manifest) or "
                                 "external: true",
                                 what);
    }
    *o = in.o;
    return 0;
}

/* ---- the document ----------------------------------------------------------------------- */

static int read_version(struct compose_loader *l, const struct compose_ynode *n)
{
    char *v = NULL;
    int r = compose_value_str(l, n, &v);
    if (r < 0)
        return r;
    bool ok = streq(v, "3");
    if (!ok && v[0] == '3' && v[1] == '.' && v[2]) {
        ok = true;
        for (const char *p = v + 2; *p; p++)
            ok = ok && *p >= '0' && *p <= '9';
    }
    if (!ok)
        return compose_load_fail(
            l, n, "unsupported compose file version \"%s\" (this agent reads 3.x)", v);
    l->p->version = v;
    return 0;
}

/* One entry of a top-level section: appends it to the project and reads it. */
static int entry_service(struct compose_loader *l, const struct compose_ynode *key,
                         const struct compose_ynode *n, size_t *cap)
{
    struct compose_project *p = l->p;
    struct compose_service *s = COMPOSE_LOAD_APPEND(l, p->services, p->n_services, *cap);
    return s ? compose_service_read(l, key, n, s) : -ENOMEM;
}

static int entry_network(struct compose_loader *l, const struct compose_ynode *key,
                         const struct compose_ynode *n, size_t *cap)
{
    struct compose_project *p = l->p;
    struct compose_network *net = COMPOSE_LOAD_APPEND(l, p->networks, p->n_networks, *cap);
    return net ? read_network(l, key, n, net) : -ENOMEM;
}

static int entry_volume(struct compose_loader *l, const struct compose_ynode *key,
                        const struct compose_ynode *n, size_t *cap)
{
    struct compose_project *p = l->p;
    struct compose_volume *vol = COMPOSE_LOAD_APPEND(l, p->volumes, p->n_volumes, *cap);
    return vol ? read_volume(l, key, n, vol) : -ENOMEM;
}

static int entry_secret(struct compose_loader *l, const struct compose_ynode *key,
                        const struct compose_ynode *n, size_t *cap)
{
    struct compose_project *p = l->p;
    struct compose_fileobj *o = COMPOSE_LOAD_APPEND(l, p->secrets, p->n_secrets, *cap);
    return o ? read_fileobj(l, key, n, true, o) : -ENOMEM;
}

static int entry_config(struct compose_loader *l, const struct compose_ynode *key,
                        const struct compose_ynode *n, size_t *cap)
{
    struct compose_project *p = l->p;
    struct compose_fileobj *o = COMPOSE_LOAD_APPEND(l, p->configs, p->n_configs, *cap);
    return o ? read_fileobj(l, key, n, false, o) : -ENOMEM;
}

/* The sections in the order they are read: the objects before the services that use them. */
static const struct section {
    const char *key;
    size_t limit;
    int (*entry)(struct compose_loader *l, const struct compose_ynode *key,
                 const struct compose_ynode *n, size_t *cap);
} sections[] = {
    {"networks", COMPOSE_MAX_OBJECTS, entry_network},
    {"volumes", COMPOSE_MAX_OBJECTS, entry_volume},
    {"secrets", COMPOSE_MAX_OBJECTS, entry_secret},
    {"configs", COMPOSE_MAX_OBJECTS, entry_config},
    {"services", COMPOSE_MAX_SERVICES, entry_service},
};

static int read_section(struct compose_loader *l, const struct section *sec,
                        const struct compose_ynode *n)
{
    if (compose_value_is_null(n))
        return 0;
    if (n->kind != COMPOSE_YMAP)
        return compose_value_expected(l, n, NULL, "a mapping");
    if (n->n > sec->limit)
        return compose_load_fail(l, n, "more than %zu entries", sec->limit);
    size_t cap = 0;
    for (size_t i = 0; i < n->n; i++) {
        size_t old = compose_load_push(l, n->keys[i]->str);
        int r = sec->entry(l, n->keys[i], n->vals[i], &cap);
        if (r < 0)
            return r;
        compose_load_pop(l, old);
    }
    return 0;
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
static int check_references(struct compose_loader *l)
{
    const struct compose_project *p = l->p;
    char path[256];
    for (size_t i = 0; i < p->n_services; i++) {
        const struct compose_service *s = &p->services[i];
        for (size_t j = 0; j < s->n_networks; j++) {
            const struct compose_service_network *sn = &s->networks[j];
            snprintf(path, sizeof(path), "services.%s.networks", s->name);
            if (!streq(sn->name, "default") && !compose_project_network(p, sn->name))
                return compose_load_fail_at(l, sn->pos, path,
                                            "undefined network \"%s\" (declare it under the "
                                            "top-level networks)",
                                            sn->name);
        }
        for (size_t j = 0; j < s->n_mounts; j++) {
            const struct compose_mount *m = &s->mounts[j];
            snprintf(path, sizeof(path), "services.%s.volumes[%zu]", s->name, j);
            if (streq(m->type, "volume") && m->source && !compose_project_volume(p, m->source))
                return compose_load_fail_at(
                    l, m->pos, path,
                    "undefined volume \"%s\" (declare it under the top-level volumes)", m->source);
        }
        for (size_t j = 0; j < s->n_secrets; j++) {
            snprintf(path, sizeof(path), "services.%s.secrets[%zu]", s->name, j);
            if (!compose_project_secret(p, s->secrets[j].source))
                return compose_load_fail_at(
                    l, s->secrets[j].pos, path,
                    "undefined secret \"%s\" (declare it under the top-level secrets)",
                    s->secrets[j].source);
        }
        for (size_t j = 0; j < s->n_configs; j++) {
            snprintf(path, sizeof(path), "services.%s.configs[%zu]", s->name, j);
            if (!compose_project_config(p, s->configs[j].source))
                return compose_load_fail_at(
                    l, s->configs[j].pos, path,
                    "undefined config \"%s\" (declare it under the top-level configs)",
                    s->configs[j].source);
        }
    }
    return 0;
}

static int read_document(struct compose_loader *l, const struct compose_ynode *root)
{
    if (!root)
        return compose_error_set(l->err, l->file, 0, 0, NULL,
                                 "the file is empty: expected a mapping with services");
    if (root->kind != COMPOSE_YMAP)
        return compose_load_fail(l, root, "expected a mapping at the top level, got %s",
                                 compose_yaml_describe(root));
    /* version first: it decides how the rest reads */
    const struct compose_ynode *version = compose_yaml_get(root, "version");
    if (version) {
        size_t old = compose_load_push(l, "version");
        int r = read_version(l, version);
        if (r < 0)
            return r;
        compose_load_pop(l, old);
    }
    for (size_t o = 0; o < ARRAY_SIZE(sections); o++) {
        const struct compose_ynode *n = compose_yaml_get(root, sections[o].key);
        if (!n)
            continue;
        size_t old = compose_load_push(l, sections[o].key);
        int r = read_section(l, &sections[o], n);
        if (r < 0)
            return r;
        compose_load_pop(l, old);
    }
    for (size_t i = 0; i < root->n; i++) {
        const char *k = root->keys[i]->str;
        bool known = streq(k, "version");
        for (size_t o = 0; o < ARRAY_SIZE(sections); o++)
            known = known || streq(k, sections[o].key);
        if (known)
            continue;
        size_t old = compose_load_push(l, k);
        int r = compose_keys_is_extension(k) ? compose_value_check_tree(l, root->vals[i])
                                             : compose_keys_unknown(l, root->keys[i]);
        if (r < 0)
            return r;
        compose_load_pop(l, old);
    }
    int r = index_build(l->p);
    if (r < 0)
        return r;
    return check_references(l);
}

int compose_parse_opts(const char *text, size_t len, const char *filename,
                       const struct compose_vars *vars, const struct compose_options *opts,
                       struct compose_project **ret_project, struct compose_error *err)
{
    struct compose_error dummy;
    if (!err)
        err = &dummy;
    memset(err, 0, sizeof(*err));
    if (!filename || !*filename)
        filename = DEFAULT_FILENAME;
    if (opts && opts->base_dir && opts->base_dir[0] != '/')
        return compose_error_set(err, filename, 0, 0, NULL,
                                 "the manifest's directory \"%s\" is not an absolute path",
                                 opts->base_dir);
    struct compose_project *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->arena = compose_arena_new();
    if (!p->arena) {
        free(p);
        return -ENOMEM;
    }
    struct compose_loader l = {.p = p, .a = p->arena, .err = err};
    if (opts)
        l.opts = *opts;
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
    r = read_document(&l, root);
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

int compose_parse(const char *text, size_t len, const char *filename,
                  const struct compose_vars *vars, struct compose_project **ret_project,
                  struct compose_error *err)
{
    return compose_parse_opts(text, len, filename, vars, NULL, ret_project, err);
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

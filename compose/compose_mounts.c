#include "compose/compose_mounts.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "lib/util.h"
#include "compose/compose_util.h"
#include "compose/compose_value.h"

static const char *const propagations[] = {"rprivate", "private", "rshared", "shared",
                                           "rslave",   "slave",   NULL};

/* ---- the short syntax ------------------------------------------------------------------- */

static bool is_letter(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* docker's isFilePath: a source that names a path on the host, not a volume. */
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

static int mount_short(struct compose_loader *l, const struct compose_ynode *n, const char *spec,
                       struct compose_mount *m)
{
    size_t len = strlen(spec);
    m->type = "volume";
    if (len == 0)
        return compose_load_fail(l, n, "invalid empty volume spec");
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
            return compose_load_fail(l, n, "invalid volume \"%s\": empty section between colons",
                                     spec);
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
            return compose_load_fail(l, n, "invalid volume \"%s\": too many colons", spec);
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

/* ---- the long syntax -------------------------------------------------------------------- */

static const char *const mount_types[] = {"volume", "bind", "tmpfs", "npipe", NULL};

static const struct compose_key bind_keys[] = {
    {KEY("propagation", KEY_STR, KEY_AT(compose_mount, bind_propagation)), .one_of = propagations,
     .expect = "rprivate, private, rshared, shared, rslave or slave"},
};
static const struct compose_keys bind_table = COMPOSE_KEYS(bind_keys);

static const struct compose_key volume_keys[] = {
    {KEY("nocopy", KEY_BOOL, KEY_AT(compose_mount, volume_nocopy))},
};
static const struct compose_keys volume_table = COMPOSE_KEYS(volume_keys);

static const struct compose_key tmpfs_keys[] = {
    {KEY("size", KEY_INT, KEY_AT(compose_mount, tmpfs_size)),
     .limit = "a size in bytes (0 or more)", .min = 0, .max = INT64_MAX},
};
static const struct compose_keys tmpfs_table = COMPOSE_KEYS(tmpfs_keys);

static const struct compose_key mount_keys[] = {
    {KEY("type", KEY_STR, KEY_AT(compose_mount, type)), .one_of = mount_types,
     .expect = "volume, bind, tmpfs or npipe",
     .required = "a volume in the long syntax needs a type"},
    {KEY("source", KEY_STR, KEY_AT(compose_mount, source))},
    {KEY("target", KEY_STR, KEY_AT(compose_mount, target))},
    {KEY("read_only", KEY_BOOL, KEY_AT(compose_mount, read_only))},
    {KEY("consistency", KEY_STR, KEY_AT(compose_mount, consistency))},
    {KEY("bind", KEY_MAP, KEY_SELF), .present = KEY_AT(compose_mount, has_bind),
     .sub = &bind_table},
    {KEY("volume", KEY_MAP, KEY_SELF), .present = KEY_AT(compose_mount, has_volume),
     .sub = &volume_table},
    {KEY("tmpfs", KEY_MAP, KEY_SELF), .present = KEY_AT(compose_mount, has_tmpfs),
     .sub = &tmpfs_table},
};
static const struct compose_keys mount_table = COMPOSE_KEYS(mount_keys);

/* ---- checks ----------------------------------------------------------------------------- */

/* A bind source made absolute as docker's loader does (resolveVolumePaths, expandUser): a
 * leading "~" is HOME, then a relative path is joined to the manifest's directory. */
static int bind_source(struct compose_loader *l, const struct compose_ynode *n,
                       struct compose_mount *m)
{
    const char *src = m->source, *against = NULL;
    if (src[0] == '~') {
        const char *home = compose_vars_get(&l->vars, "HOME");
        if (!home)
            home = l->opts.home_dir;
        if (!home)
            return compose_load_fail(
                l, n, "bind source \"%s\" starts with ~ but no HOME variable was supplied", src);
        src = compose_arena_printf(l->a, "%s%s", home, src + 1);
        if (!src)
            return -ENOMEM;
        against = home;
    }
    if (src[0] != '/') {
        if (!l->opts.base_dir)
            return compose_load_fail(l, n,
                                     "bind source \"%s\" must be an absolute path (a manifest "
                                     "has no working directory on the node)",
                                     src);
        if (compose_util_windows_abs(src))
            return compose_load_fail(
                l, n, "bind source \"%s\" is a Windows path: the node needs an absolute path", src);
        src = compose_util_path_join(l->a, l->opts.base_dir, src);
        if (!src)
            return -ENOMEM;
        against = l->opts.base_dir;
    }
    if (against) {
        int r = compose_load_note(l, n, "%s resolved against %s: %s", m->source, against, src);
        if (r < 0)
            return r;
        m->source = (char *)src;
    }
    return 0;
}

/* The checks docker's convert makes on a mount, made here so a bad manifest is refused when it
 * arrives. */
static int mount_check(struct compose_loader *l, const struct compose_ynode *n,
                       struct compose_mount *m)
{
    const char *t = m->type;
    if (m->source && !*m->source)
        m->source = NULL;
    if (!m->target || !*m->target)
        return compose_load_fail(l, n, "a volume needs a target path in the container");
    if (streq(t, "volume")) {
        if (m->has_tmpfs)
            return compose_load_fail(l, n, "tmpfs options are incompatible with type volume");
        if (m->has_bind)
            return compose_load_fail(l, n, "bind options are incompatible with type volume");
    } else if (streq(t, "bind")) {
        if (!m->source)
            return compose_load_fail(l, n, "a bind mount needs a source path");
        if (m->has_volume)
            return compose_load_fail(l, n, "volume options are incompatible with type bind");
        if (m->has_tmpfs)
            return compose_load_fail(l, n, "tmpfs options are incompatible with type bind");
        return bind_source(l, n, m);
    } else if (streq(t, "tmpfs")) {
        if (m->source)
            return compose_load_fail(l, n, "a tmpfs mount takes no source");
        if (m->has_bind)
            return compose_load_fail(l, n, "bind options are incompatible with type tmpfs");
        if (m->has_volume)
            return compose_load_fail(l, n, "volume options are incompatible with type tmpfs");
    } else if (streq(t, "npipe")) {
        if (!m->source)
            return compose_load_fail(l, n, "an npipe mount needs a source");
        if (m->has_volume)
            return compose_load_fail(l, n, "volume options are incompatible with type npipe");
        if (m->has_tmpfs)
            return compose_load_fail(l, n, "tmpfs options are incompatible with type npipe");
    }
    return 0;
}

int compose_mounts_read(struct compose_loader *l, const struct compose_ynode *n, void *field,
                        const struct compose_key *k)
{
    struct compose_service *s = field;
    if (n->kind != COMPOSE_YSEQ)
        return compose_value_expected(l, n, NULL, "a list of volumes");
    size_t cap = 0;
    for (size_t i = 0; i < n->n; i++) {
        const struct compose_ynode *e = n->vals[i];
        size_t old = compose_load_push_index(l, i);
        struct compose_mount *m = COMPOSE_LOAD_APPEND(l, s->mounts, s->n_mounts, cap);
        if (!m)
            return -ENOMEM;
        m->pos = compose_load_pos(e);
        int r;
        if (e->kind == COMPOSE_YMAP) {
            r = compose_keys_read(l, e, &mount_table, m);
        } else {
            char *spec = NULL;
            r = compose_value_str(l, e, &spec);
            if (r == 0)
                r = mount_short(l, e, spec, m);
        }
        if (r == 0)
            r = mount_check(l, e, m);
        if (r < 0)
            return r;
        compose_load_pop(l, old);
    }
    return 0;
}

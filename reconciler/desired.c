#include "reconciler/desired.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "lib/buf.h"
#include "lib/util.h"
#include "compose/compose.h"
#include "compose/spec.h"

#define STOPPED_CONSTRAINT "node.labels.io.axion.stopped==true"

/* --- inputs from the store ---------------------------------------------------------------- */

struct inputs {
    json_t *vars_json;
    struct compose_var *vars;
    size_t n_vars;
    struct spec_file *files; /* borrowed from the stack's row */
    size_t n_files;
};

static void inputs_release(struct inputs *in)
{
    free(in->vars);
    free(in->files);
    json_decref(in->vars_json);
    *in = (struct inputs){0};
}

static int inputs_load(struct inputs *in, const struct store_stack *row, char *err, size_t errlen)
{
    *in = (struct inputs){0};
    json_error_t je;
    const char *text = row->variables_json;
    json_t *j = json_loads(text && *text ? text : "{}", JSON_REJECT_DUPLICATES, &je);
    if (!j || !json_is_object(j)) {
        snprintf(err, errlen, "variables: not a JSON object of strings%s%s", j ? "" : ": ",
                 j ? "" : je.text);
        json_decref(j);
        return -EINVAL;
    }
    in->vars_json = j;
    in->vars = calloc(json_object_size(j) + 1, sizeof(*in->vars));
    in->files = calloc(row->n_files + 1, sizeof(*in->files));
    if (!in->vars || !in->files)
        return -ENOMEM;
    const char *k;
    json_t *v;
    json_object_foreach(in->vars_json, k, v)
    {
        if (!json_is_string(v)) {
            snprintf(err, errlen, "variables: %s: expected a string", k);
            return -EINVAL;
        }
        in->vars[in->n_vars++] = (struct compose_var){k, json_string_value(v)};
    }
    for (size_t i = 0; i < row->n_files; i++)
        in->files[in->n_files++] =
            (struct spec_file){row->files[i].name, row->files[i].data, row->files[i].len};
    return 0;
}

/* --- overrides ----------------------------------------------------------------------------- */

static const struct store_override *find_override(const struct store_override *ov, size_t n,
                                                  const char *service)
{
    for (size_t i = 0; i < n; i++)
        if (streq(ov[i].service, service))
            return &ov[i];
    return NULL;
}

static int apply_overrides(struct spec_object *o, const struct store_override *ov, size_t n)
{
    const struct store_override *all = find_override(ov, n, "");
    const struct store_override *mine = find_override(ov, n, o->key);
    if (!all && !mine)
        return 0;
    json_t *mode = json_object_get(o->spec, "Mode");
    json_t *replicated = json_object_get(mode, "Replicated");
    bool stopped = (all && all->stopped) || (mine && mine->stopped);
    if (replicated && mine && mine->replicas != STORE_REPLICAS_UNSET)
        json_object_set_new(replicated, "Replicas", json_integer(mine->replicas));
    if (stopped) {
        if (replicated) {
            json_object_set_new(replicated, "Replicas", json_integer(0));
        } else {
            /* A global service cannot have 0 replicas: no node matches this constraint. */
            json_t *tt = json_object_get(o->spec, "TaskTemplate");
            json_t *pl = json_object_get(tt, "Placement");
            if (!pl) {
                pl = json_object();
                json_object_set_new(tt, "Placement", pl);
            }
            json_t *c = json_object_get(pl, "Constraints");
            if (!c) {
                c = json_array();
                json_object_set_new(pl, "Constraints", c);
            }
            json_array_append_new(c, json_string(STOPPED_CONSTRAINT));
        }
    }
    int64_t nonce = (all ? all->restart_nonce : 0) + (mine ? mine->restart_nonce : 0);
    if (nonce)
        json_object_set_new(json_object_get(o->spec, "TaskTemplate"), "ForceUpdate",
                            json_integer(nonce));
    return spec_stamp(o);
}

/* --- one stack ---------------------------------------------------------------------------- */

static void services_release(struct desired_stack *ds)
{
    for (size_t j = 0; j < ds->n_services; j++) {
        free(ds->services[j].name);
        free(ds->services[j].short_name);
    }
    free(ds->services);
    ds->services = NULL;
    ds->n_services = 0;
}

static void overlay_release(struct desired_stack *ds)
{
    size_t n = ds->compiled ? ds->compiled->spec->n_objects : 0;
    for (size_t i = 0; ds->overlay && i < n; i++)
        json_decref(ds->overlay[i]);
    free(ds->overlay);
    free(ds->overlay_hash);
    ds->overlay = NULL;
    ds->overlay_hash = NULL;
}

static void stack_release(struct desired_stack *ds)
{
    overlay_release(ds);
    services_release(ds);
    compile_result_free(ds->compiled);
    free(ds->name);
    free(ds->error);
    free(ds->overrides_rev);
    *ds = (struct desired_stack){0};
}

/* The services as the plan will see them (replicas after the overrides), for the status. */
static int describe_services(struct desired_stack *ds)
{
    const struct spec_stack *s = ds->compiled->spec;
    ds->services = calloc(s->n_objects + 1, sizeof(*ds->services));
    if (!ds->services)
        return -ENOMEM;
    for (size_t i = 0; i < s->n_objects; i++) {
        const struct spec_object *o = &s->objects[i];
        if (o->kind != SPEC_SERVICE)
            continue;
        struct desired_service *svc = &ds->services[ds->n_services];
        json_t *spec = ds->overlay[i] ? ds->overlay[i] : o->spec;
        json_t *mode = json_object_get(spec, "Mode");
        json_t *rep = json_object_get(mode, "Replicated");
        json_t *rjob = json_object_get(mode, "ReplicatedJob");
        svc->job = rjob || json_object_get(mode, "GlobalJob");
        if (rep) /* Swarm's default is one replica */
            svc->replicas = json_object_get(rep, "Replicas")
                                ? json_integer_value(json_object_get(rep, "Replicas"))
                                : 1;
        else if (rjob)
            svc->replicas = json_object_get(rjob, "TotalCompletions")
                                ? json_integer_value(json_object_get(rjob, "TotalCompletions"))
                                : 1;
        else
            svc->replicas = -1;
        svc->name = strdup(o->name);
        svc->short_name = strdup(o->key);
        if (!svc->name || !svc->short_name) {
            free(svc->name);
            free(svc->short_name);
            return -ENOMEM;
        }
        ds->n_services++;
    }
    return 0;
}

/* Lays the stack's overrides over copies of its services (the compiled specs stay as they
 * are) and describes the services. Reads the overrides only when the stack has any. */
static int overlay(struct desired_state *st, struct desired_stack *ds, struct store *store,
                   char *err, size_t errlen)
{
    overlay_release(ds);
    services_release(ds);
    const struct spec_stack *s = ds->compiled->spec;
    ds->overlay = calloc(s->n_objects + 1, sizeof(*ds->overlay));
    ds->overlay_hash = calloc(s->n_objects + 1, sizeof(*ds->overlay_hash));
    if (!ds->overlay || !ds->overlay_hash)
        return -ENOMEM;
    struct store_override *ov = NULL;
    size_t nov = 0;
    if (ds->overrides_rev) {
        int r = store_list_overrides(store, ds->name, &ov, &nov);
        if (r < 0 && r != -ENOENT) {
            snprintf(err, errlen, "overrides of %s: %s", ds->name, store_errmsg(store));
            return r;
        }
        st->overlays++;
    }
    int r = 0;
    for (size_t i = 0; i < s->n_objects && r == 0; i++) {
        const struct spec_object *so = &s->objects[i];
        if (so->kind != SPEC_SERVICE ||
            (!find_override(ov, nov, "") && !find_override(ov, nov, so->key)))
            continue;
        struct spec_object copy = *so;
        copy.spec = json_deep_copy(so->spec);
        if (!copy.spec) {
            r = -ENOMEM;
            break;
        }
        ds->overlay[i] = copy.spec;
        r = apply_overrides(&copy, ov, nov);
        memcpy(ds->overlay_hash[i], copy.hash, sizeof(copy.hash));
    }
    store_override_array_free(ov, nov);
    if (r == 0)
        r = describe_services(ds);
    return r;
}

static int frozen(struct desired_stack *ds, const char *why)
{
    /* The manifest was valid when accepted; now it is not (policy changed, ...). */
    free(ds->error);
    ds->error = NULL;
    return asprintf(&ds->error, "generation %lld: %s", (long long)ds->generation, why) < 0 ? -ENOMEM
                                                                                           : 0;
}

/* Reads the stack's row and compiles it. A stack that does not build is frozen (ds->error). */
static int build_stack(struct desired_state *st, struct desired_stack *ds, struct store *store,
                       const struct desired_opts *o, char *err, size_t errlen)
{
    overlay_release(ds);
    services_release(ds);
    ds->compiled = compile_result_free(ds->compiled);
    free(ds->error);
    ds->error = NULL;
    ds->dirty = true;
    if (ds->removed)
        return 0;

    struct store_stack *row = NULL;
    int r = store_get_stack(store, ds->name, &row);
    if (r == -EKEYREJECTED || r == -ENOKEY) {
        /* Its files do not open with this node's key: this stack waits, the others go on. */
        char why[1024];
        snprintf(why, sizeof(why), "%s", store_errmsg(store));
        return frozen(ds, why);
    }
    if (r < 0) {
        snprintf(err, errlen, "stack %s: %s", ds->name, store_errmsg(store));
        return r;
    }
    /* The row may be newer than the summary that sent us here: it wins. */
    ds->generation = row->generation;
    ds->removed = row->removed;
    if (row->removed) {
        store_stack_free(row);
        return 0;
    }
    char why[1024] = "";
    struct inputs in;
    r = inputs_load(&in, row, why, sizeof(why));
    if (r == 0) {
        struct compile_file_array files = {in.files, in.n_files};
        struct compile_input ci = {
            .stack = ds->name,
            .filename = "compose.yml",
            .text = row->compose,
            .len = row->compose_len,
            .vars = in.vars,
            .n_vars = in.n_vars,
            .files = {compile_files_from_array, &files},
            /* The CLI's directory and home, stored with the generation; NULL (remote sources)
             * refuses relative and ~ bind sources with a reason. */
            .base_dir = row->base_dir,
            .home_dir = row->home_dir,
            .agent_id = o->agent_id,
            .policy = o->policy,
            .spec_only = true, /* the loop reads the specs only, for as long as it holds them */
        };
        struct compose_error ce = {0};
        r = compile_stack(&ci, &ds->compiled, &ce);
        st->compiles++;
        if (r < 0 && r != -ENOMEM)
            snprintf(why, sizeof(why), "%s", ce.text);
    }
    inputs_release(&in);
    store_stack_free(row);
    if (r == -ENOMEM)
        return r;
    if (r < 0)
        return frozen(ds, why);
    return overlay(st, ds, store, err, errlen);
}

/* --- the desired state --------------------------------------------------------------------- */

static int str_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && streq(a, b));
}

/* The agent id and the policy as one text: stacks compiled with another are compiled again. */
static char *inputs_key(const struct desired_opts *o)
{
    _cleanup_free_ char *policy = o->policy ? policy_rules_key(o->policy) : strdup("none");
    char *key = NULL;
    if (!policy || asprintf(&key, "%s\npolicy %s", o->agent_id ? o->agent_id : "", policy) < 0)
        return NULL;
    return key;
}

static int push_name(const char ***v, size_t *n, size_t *cap, const char *name)
{
    const char **slot = ARRAY_PUSH(v, n, cap);
    if (!slot)
        return -ENOMEM;
    *slot = name;
    return 0;
}

/* What the plan reads, from the stacks (pointers only). */
static int rebuild_views(struct desired_state *st)
{
    st->n_objs = st->n_known = st->n_removed = st->n_frozen = 0;
    for (size_t i = 0; i < st->n_stacks; i++) {
        const struct desired_stack *ds = &st->stacks[i];
        int r = push_name(&st->known, &st->n_known, &st->cap_known, ds->name);
        if (r == 0 && ds->removed)
            r = push_name(&st->removed, &st->n_removed, &st->cap_removed, ds->name);
        if (r == 0 && ds->error)
            r = push_name(&st->frozen, &st->n_frozen, &st->cap_frozen, ds->name);
        if (r < 0)
            return r;
        if (!ds->compiled || ds->removed || ds->error)
            continue;
        const struct spec_stack *s = ds->compiled->spec;
        r = ARRAY_RESERVE(&st->objs, st->n_objs, &st->cap_objs, s->n_objects);
        if (r < 0)
            return r;
        for (size_t j = 0; j < s->n_objects; j++) {
            const struct spec_object *so = &s->objects[j];
            st->objs[st->n_objs++] = (struct desired_obj){
                .kind = so->kind,
                .stack = ds->name,
                .name = so->name,
                .spec = ds->overlay[j] ? ds->overlay[j] : so->spec,
                .hash = ds->overlay[j] ? ds->overlay_hash[j] : so->hash,
            };
        }
    }
    return 0;
}

/* Brings one stack up to its row of the summary. */
static int update_stack(struct desired_state *st, struct desired_stack *ds,
                        const struct store_stack_rev *rev, bool rebuild, struct store *store,
                        const struct desired_opts *o, char *err, size_t errlen)
{
    ds->dirty = false;
    bool rev_changed = !str_same(ds->overrides_rev, rev->overrides_rev);
    if (rev_changed) {
        free(ds->overrides_rev);
        ds->overrides_rev = rev->overrides_rev ? strdup(rev->overrides_rev) : NULL;
        if (rev->overrides_rev && !ds->overrides_rev)
            return -ENOMEM;
    }
    if (rebuild || ds->generation != rev->generation || ds->removed != rev->removed) {
        ds->generation = rev->generation;
        ds->removed = rev->removed;
        return build_stack(st, ds, store, o, err, errlen);
    }
    if (rev_changed && ds->compiled) {
        ds->dirty = true;
        return overlay(st, ds, store, err, errlen);
    }
    return 0;
}

/* After a failed update: nothing of the stack is used, and the next refresh builds it. */
static void stack_reset(struct desired_stack *ds)
{
    char *name = ds->name;
    ds->name = NULL;
    stack_release(ds);
    ds->name = name;
    ds->generation = -1; /* never a stored generation */
}

static bool same_names(const struct desired_state *st, const struct store_stack_rev *revs, size_t n)
{
    if (n != st->n_stacks)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!streq(st->stacks[i].name, revs[i].name))
            return false;
    return true;
}

/* The stacks of the summary, in its order (by name), reusing what is already built. */
static int restack(struct desired_state *st, const struct store_stack_rev *revs, size_t n)
{
    size_t cap = n;
    struct desired_stack *next = calloc(n ? n : 1, sizeof(*next));
    if (!next)
        return -ENOMEM;
    size_t i = 0;
    for (size_t k = 0; k < n; k++) {
        while (i < st->n_stacks && strcmp(st->stacks[i].name, revs[k].name) < 0)
            stack_release(&st->stacks[i++]);
        if (i < st->n_stacks && streq(st->stacks[i].name, revs[k].name)) {
            next[k] = st->stacks[i++];
            continue;
        }
        next[k].name = strdup(revs[k].name);
        next[k].generation = -1;
        if (!next[k].name) {
            for (size_t j = 0; j < k; j++)
                stack_release(&next[j]);
            free(next);
            return -ENOMEM; /* what was moved is gone: the next refresh builds it again */
        }
    }
    for (; i < st->n_stacks; i++)
        stack_release(&st->stacks[i]);
    free(st->stacks);
    st->stacks = next;
    st->n_stacks = n;
    st->cap_stacks = cap;
    return 0;
}

static int refresh(struct desired_state *st, struct store *store, const struct desired_opts *o,
                   const struct store_stack_rev *revs, size_t n, bool *changed, char *err,
                   size_t errlen)
{
    _cleanup_free_ char *key = inputs_key(o);
    if (!key)
        return -ENOMEM;
    bool rebuild = !str_same(key, st->inputs_key);
    if (!same_names(st, revs, n)) {
        *changed = true;
        int r = restack(st, revs, n);
        if (r < 0) {
            for (size_t i = 0; i < st->n_stacks; i++)
                stack_release(&st->stacks[i]);
            st->n_stacks = 0;
            return r;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct desired_stack *ds = &st->stacks[i];
        int r = update_stack(st, ds, &revs[i], rebuild, store, o, err, errlen);
        if (ds->dirty)
            *changed = true;
        if (r < 0) {
            stack_reset(ds);
            *changed = true;
            /* The stacks after this one were not looked at: the next refresh looks at all. */
            free(st->inputs_key);
            st->inputs_key = NULL;
            return r;
        }
    }
    if (rebuild) {
        free(st->inputs_key);
        st->inputs_key = TAKE_PTR(key);
    }
    return 0;
}

int desired_refresh(struct desired_state *st, struct store *store, const struct desired_opts *o,
                    char *err, size_t errlen)
{
    struct store_stack_rev *revs = NULL;
    size_t n = 0;
    int r = store_list_stack_revisions(store, &revs, &n);
    if (r < 0) {
        snprintf(err, errlen, "%s", store_errmsg(store));
        return r;
    }
    bool changed = false;
    r = refresh(st, store, o, revs, n, &changed, err, errlen);
    store_stack_rev_array_free(revs, n);
    if (changed || r < 0) {
        st->version++;
        int v = rebuild_views(st);
        if (r == 0)
            r = v;
        if (v < 0)
            st->n_objs = st->n_known = st->n_removed = st->n_frozen = 0;
    }
    if (r == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    return r;
}

const struct desired_stack *desired_find(const struct desired_state *st, const char *name)
{
    for (size_t i = 0; i < st->n_stacks; i++)
        if (streq(st->stacks[i].name, name))
            return &st->stacks[i];
    return NULL;
}

void desired_release(struct desired_state *st)
{
    for (size_t i = 0; i < st->n_stacks; i++)
        stack_release(&st->stacks[i]);
    free(st->stacks);
    free(st->objs);
    free(st->known);
    free(st->removed);
    free(st->frozen);
    free(st->inputs_key);
    *st = (struct desired_state){0};
}

#include "reconciler/desired.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "compose/compose.h"
#include "compose/spec.h"

#define STOPPED_CONSTRAINT "node.labels.io.axion.stopped==true"

/* --- inputs from the store's JSON ---------------------------------------------------------- */

struct inputs {
    json_t *vars_json;
    json_t *files_json;
    struct compose_var *vars;
    size_t n_vars;
    struct spec_file *files;
    size_t n_files;
};

static void inputs_release(struct inputs *in)
{
    free(in->vars);
    free(in->files);
    json_decref(in->vars_json);
    json_decref(in->files_json);
    *in = (struct inputs){0};
}

static int load_object(const char *text, const char *what, json_t **ret, char *err, size_t errlen)
{
    json_error_t je;
    json_t *j = json_loads(text && *text ? text : "{}", JSON_REJECT_DUPLICATES, &je);
    if (!j || !json_is_object(j)) {
        snprintf(err, errlen, "%s: not a JSON object of strings%s%s", what, j ? "" : ": ",
                 j ? "" : je.text);
        json_decref(j);
        return -EINVAL;
    }
    *ret = j;
    return 0;
}

static int inputs_load(struct inputs *in, const char *vars_json, const char *files_json, char *err,
                       size_t errlen)
{
    *in = (struct inputs){0};
    int r = load_object(vars_json, "variables", &in->vars_json, err, errlen);
    if (r == 0)
        r = load_object(files_json, "files", &in->files_json, err, errlen);
    if (r < 0)
        return r;
    size_t nv = json_object_size(in->vars_json), nf = json_object_size(in->files_json);
    in->vars = calloc(nv + 1, sizeof(*in->vars));
    in->files = calloc(nf + 1, sizeof(*in->files));
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
    json_object_foreach(in->files_json, k, v)
    {
        if (!json_is_string(v)) {
            snprintf(err, errlen, "files: %s: expected a string", k);
            return -EINVAL;
        }
        in->files[in->n_files++] =
            (struct spec_file){k, json_string_value(v), json_string_length(v)};
    }
    return 0;
}

/* Parses, checks the policy and converts one manifest. */
static int build(const char *stack, const char *filename, const char *compose, size_t len,
                 const struct inputs *in, const struct desired_opts *o,
                 struct compose_project **ret_project, struct spec_stack **ret_spec, char *err,
                 size_t errlen)
{
    struct compose_error ce = {0};
    struct compose_vars vars = {in->vars, in->n_vars};
    struct compose_project *p = NULL;
    int r = compose_parse(compose, len, filename, &vars, &p, &ce);
    if (r == 0 && o->policy)
        r = policy_check(p, o->policy, &ce);
    struct spec_input si = {
        .stack = stack, .agent_id = o->agent_id, .files = in->files, .n_files = in->n_files};
    struct spec_stack *s = NULL;
    if (r == 0)
        r = spec_convert(p, &si, &s, &ce);
    if (r < 0) {
        if (r == -ENOMEM)
            snprintf(err, errlen, "out of memory");
        else
            snprintf(err, errlen, "%s", ce.text);
        compose_project_free(p);
        return r;
    }
    *ret_project = p;
    *ret_spec = s;
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

/* --- the desired state --------------------------------------------------------------------- */

static int add_str(const char ***v, size_t *n, const char *s)
{
    const char **nv = realloc(*v, (*n + 1) * sizeof(**v));
    if (!nv)
        return -ENOMEM;
    *v = nv;
    nv[(*n)++] = s;
    return 0;
}

static int describe_services(struct desired_stack *ds, const struct spec_stack *s)
{
    ds->services = calloc(s->n_objects + 1, sizeof(*ds->services));
    if (!ds->services)
        return -ENOMEM;
    for (size_t i = 0; i < s->n_objects; i++) {
        const struct spec_object *o = &s->objects[i];
        if (o->kind != SPEC_SERVICE)
            continue;
        struct desired_service *svc = &ds->services[ds->n_services];
        json_t *mode = json_object_get(o->spec, "Mode");
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

static int load_stack(struct desired_state *st, struct store *store, const struct store_stack *row,
                      const struct desired_opts *o, char *err, size_t errlen)
{
    struct desired_stack *ds = &st->stacks[st->n_stacks++];
    *ds = (struct desired_stack){.generation = row->generation, .removed = row->removed};
    ds->name = strdup(row->name);
    if (!ds->name || add_str(&st->known, &st->n_known, ds->name) < 0)
        return -ENOMEM;
    if (row->removed)
        return add_str(&st->removed, &st->n_removed, ds->name);

    char why[1024] = "";
    struct inputs in;
    struct compose_project *p = NULL;
    struct spec_stack *s = NULL;
    int r = inputs_load(&in, row->variables_json, row->files_json, why, sizeof(why));
    if (r == 0)
        r = build(row->name, "compose.yml", row->compose, row->compose_len, &in, o, &p, &s, why,
                  sizeof(why));
    inputs_release(&in);
    compose_project_free(p);
    if (r == -ENOMEM)
        return r;
    if (r < 0) {
        /* The manifest was valid when accepted; now it is not (policy changed, ...). */
        if (asprintf(&ds->error, "generation %lld: %s", (long long)row->generation, why) < 0)
            return -ENOMEM;
        return add_str(&st->frozen, &st->n_frozen, ds->name);
    }

    struct store_override *ov = NULL;
    size_t nov = 0;
    r = store_list_overrides(store, row->name, &ov, &nov);
    if (r < 0 && r != -ENOENT) {
        snprintf(err, errlen, "overrides of %s: %s", row->name, store_errmsg(store));
        spec_stack_free(s);
        return r;
    }
    void **nspecs = realloc(st->specs, (st->n_specs + 1) * sizeof(*nspecs));
    struct desired_obj *nobjs = realloc(st->objs, (st->n_objs + s->n_objects + 1) * sizeof(*nobjs));
    if (nspecs)
        st->specs = nspecs;
    if (nobjs)
        st->objs = nobjs;
    if (!nspecs || !nobjs) {
        store_override_array_free(ov, nov);
        spec_stack_free(s);
        return -ENOMEM;
    }
    st->specs[st->n_specs++] = s;
    r = 0;
    for (size_t i = 0; i < s->n_objects && r == 0; i++) {
        struct spec_object *so = &s->objects[i];
        if (so->kind == SPEC_SERVICE)
            r = apply_overrides(so, ov, nov);
        st->objs[st->n_objs++] = (struct desired_obj){
            .kind = so->kind,
            .stack = ds->name,
            .name = so->name,
            .spec = so->spec,
            .hash = so->hash,
        };
    }
    store_override_array_free(ov, nov);
    if (r == 0)
        r = describe_services(ds, s);
    return r;
}

int desired_load(struct store *store, const struct desired_opts *o, struct desired_state *ret,
                 char *err, size_t errlen)
{
    struct desired_state st = {0};
    struct store_stack *rows = NULL;
    size_t n = 0;
    int r = store_list_stacks(store, STORE_LIST_REMOVED, &rows, &n);
    if (r < 0) {
        snprintf(err, errlen, "%s", store_errmsg(store));
        return r;
    }
    st.stacks = calloc(n + 1, sizeof(*st.stacks));
    if (!st.stacks) {
        store_stack_array_free(rows, n);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n && r == 0; i++)
        r = load_stack(&st, store, &rows[i], o, err, errlen);
    store_stack_array_free(rows, n);
    if (r < 0) {
        if (r == -ENOMEM)
            snprintf(err, errlen, "out of memory");
        desired_release(&st);
        return r;
    }
    *ret = st;
    return 0;
}

void desired_release(struct desired_state *ds)
{
    for (size_t i = 0; i < ds->n_stacks; i++) {
        struct desired_stack *s = &ds->stacks[i];
        free(s->name);
        free(s->error);
        for (size_t j = 0; j < s->n_services; j++) {
            free(s->services[j].name);
            free(s->services[j].short_name);
        }
        free(s->services);
    }
    free(ds->stacks);
    free(ds->objs);
    free(ds->known);
    free(ds->removed);
    free(ds->frozen);
    for (size_t i = 0; i < ds->n_specs; i++)
        spec_stack_free(ds->specs[i]);
    free(ds->specs);
    *ds = (struct desired_state){0};
}

int desired_validate(const char *stack, const char *filename, const char *compose, size_t len,
                     const char *vars_json, const char *files_json, const struct desired_opts *o,
                     FILE *warn_out, char *err, size_t errlen)
{
    struct inputs in;
    struct compose_project *p = NULL;
    struct spec_stack *s = NULL;
    int r = inputs_load(&in, vars_json, files_json, err, errlen);
    if (r == 0)
        r = build(stack, filename, compose, len, &in, o, &p, &s, err, errlen);
    if (r == 0 && warn_out)
        for (size_t i = 0; i < s->n_warnings; i++)
            fprintf(warn_out, "warning: %s\n", s->warnings[i]);
    spec_stack_free(s);
    compose_project_free(p);
    inputs_release(&in);
    return r;
}

/* --- what the CLI needs to know of a manifest ------------------------------------------------ */

static int parse_only(const char *compose, size_t len, const char *vars_json,
                      struct compose_project **ret)
{
    struct inputs in;
    char err[256];
    struct compose_error ce = {0};
    int r = inputs_load(&in, vars_json, NULL, err, sizeof(err));
    if (r == 0) {
        struct compose_vars vars = {in.vars, in.n_vars};
        r = compose_parse(compose, len, "compose.yml", &vars, ret, &ce);
    }
    inputs_release(&in);
    return r;
}

int desired_referenced_files(const char *compose, size_t len, const char *vars_json, char ***ret,
                             size_t *ret_n)
{
    struct compose_project *p = NULL;
    int r = parse_only(compose, len, vars_json, &p);
    if (r < 0)
        return r;
    const char **v = NULL;
    size_t n = 0;
    for (size_t i = 0; i < p->n_configs && r == 0; i++)
        if (p->configs[i].file && !p->configs[i].external)
            r = add_str(&v, &n, p->configs[i].file);
    for (size_t i = 0; i < p->n_secrets && r == 0; i++)
        if (p->secrets[i].file && !p->secrets[i].external)
            r = add_str(&v, &n, p->secrets[i].file);
    for (size_t i = 0; i < p->n_services && r == 0; i++)
        for (size_t j = 0; j < p->services[i].env_file.n && r == 0; j++)
            r = add_str(&v, &n, p->services[i].env_file.v[j]);
    char **out = calloc(n + 1, sizeof(*out));
    for (size_t i = 0; out && i < n; i++)
        if (!(out[i] = strdup(v[i]))) {
            for (size_t j = 0; j < i; j++)
                free(out[j]);
            free(out);
            out = NULL;
        }
    free(v);
    compose_project_free(p);
    if (r < 0 || !out) {
        free(out);
        return -ENOMEM;
    }
    *ret = out;
    *ret_n = n;
    return 0;
}

int desired_has_service(const char *compose, size_t len, const char *vars_json, const char *service)
{
    struct compose_project *p = NULL;
    int r = parse_only(compose, len, vars_json, &p);
    if (r < 0)
        return r;
    r = compose_project_service(p, service) != NULL;
    compose_project_free(p);
    return r;
}

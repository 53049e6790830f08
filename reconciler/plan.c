#include "reconciler/plan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/util.h"

#define HASH_LABEL_PATH "Labels.io.axion.spec-hash"

static const char *const kind_names[OBJ_KIND_MAX] = {
    [OBJ_NETWORK] = "network",
    [OBJ_CONFIG] = "config",
    [OBJ_SECRET] = "secret",
    [OBJ_SERVICE] = "service",
};

const char *obj_kind_name(enum obj_kind k)
{
    return k < OBJ_KIND_MAX ? kind_names[k] : "?";
}

const char *plan_action_name(enum plan_action a)
{
    switch (a) {
    case PLAN_NOOP:
        return "noop";
    case PLAN_CREATE:
        return "create";
    case PLAN_UPDATE:
        return "update";
    case PLAN_REMOVE:
        return "remove";
    case PLAN_CONFLICT:
        return "conflict";
    }
    return "?";
}

/* --- field diff ---------------------------------------------------------------------------- */

static bool json_is_empty(const json_t *v)
{
    if (!v || json_is_null(v) || json_is_false(v))
        return true;
    if (json_is_array(v))
        return json_array_size(v) == 0;
    if (json_is_object(v))
        return json_object_size(v) == 0;
    if (json_is_string(v))
        return json_string_length(v) == 0;
    if (json_is_integer(v))
        return json_integer_value(v) == 0;
    if (json_is_real(v))
        return json_real_value(v) == 0.0;
    return false;
}

/* desired ⊆ live: everything desired says holds in live. */
static bool json_subset(const json_t *d, const json_t *l)
{
    if (json_is_empty(d))
        return json_is_empty(l);
    if (!l)
        return false;
    if (json_is_object(d)) {
        if (!json_is_object(l))
            return false;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)d, k,
                            v) if (!json_subset(v, json_object_get(l, k))) return false;
        return true;
    }
    if (json_is_array(d)) {
        if (!json_is_array(l) || json_array_size(d) != json_array_size(l))
            return false;
        for (size_t i = 0; i < json_array_size(d); i++)
            if (!json_subset(json_array_get(d, i), json_array_get(l, i)))
                return false;
        return true;
    }
    if (json_is_number(d) && json_is_number(l))
        return json_number_value(d) == json_number_value(l);
    return json_equal(d, l);
}

struct paths {
    char **v;
    size_t n;
    int err;
};

static void paths_add(struct paths *p, const char *path)
{
    if (p->err)
        return;
    char *s = strdup(path);
    char **n = s ? realloc(p->v, (p->n + 1) * sizeof(*n)) : NULL;
    if (!n) {
        free(s);
        p->err = -ENOMEM;
        return;
    }
    p->v = n;
    p->v[p->n++] = s;
}

static void diff_walk(const json_t *d, const json_t *l, struct buf *path, struct paths *out)
{
    if (json_is_object(d) && !json_is_empty(d) && json_is_object(l)) {
        size_t mark = path->len;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)d, k, v)
        {
            if (path->len)
                buf_putc(path, '.');
            buf_puts(path, k);
            diff_walk(v, json_object_get(l, k), path, out);
            path->len = mark;
            path->data[mark] = '\0';
        }
        return;
    }
    if (!json_subset(d, l))
        paths_add(out, path->len ? path->data : "(root)");
}

int plan_diff_fields(const json_t *desired, const json_t *live, char ***ret_paths)
{
    struct paths out = {0};
    struct buf path = BUF_INIT(1 << 16);
    diff_walk(desired, live, &path, &out);
    buf_release(&path);
    if (out.err) {
        for (size_t i = 0; i < out.n; i++)
            free(out.v[i]);
        free(out.v);
        return out.err;
    }
    *ret_paths = out.v;
    return (int)out.n;
}

bool plan_field_rolls_tasks(const char *path)
{
    return strncmp(path, "TaskTemplate", 12) == 0 && (path[12] == '\0' || path[12] == '.');
}

/* --- plan ---------------------------------------------------------------------------------- */

static bool str_in(const char *s, const char *const *v, size_t n)
{
    if (!s)
        return false;
    for (size_t i = 0; i < n; i++)
        if (streq(s, v[i]))
            return true;
    return false;
}

static bool streq_null(const char *a, const char *b)
{
    return a && b && streq(a, b);
}

static struct plan_step *plan_add(struct plan *p, enum plan_action a, enum obj_kind kind,
                                  const char *name, const char *stack)
{
    struct plan_step *n = realloc(p->steps, (p->n + 1) * sizeof(*n));
    if (!n)
        return NULL;
    p->steps = n;
    struct plan_step *s = &p->steps[p->n];
    *s = (struct plan_step){.action = a, .kind = kind};
    s->name = strdup(name);
    s->stack = stack ? strdup(stack) : NULL;
    if (!s->name || (stack && !s->stack)) {
        free(s->name);
        free(s->stack);
        return NULL;
    }
    p->n++;
    if (a == PLAN_REMOVE)
        s->phase = kind == OBJ_SERVICE ? PHASE_REMOVE_SERVICES : PHASE_REMOVE_DEPS;
    else
        s->phase = kind == OBJ_SERVICE ? PHASE_SERVICES : PHASE_DEPS;
    return s;
}

static int set_str(char **dst, const char *v)
{
    if (!v)
        return 0;
    *dst = strdup(v);
    return *dst ? 0 : -ENOMEM;
}

static const struct live_obj *find_live(const struct plan_input *in, enum obj_kind k,
                                        const char *name)
{
    for (size_t i = 0; i < in->n_live; i++)
        if (in->live[i].kind == k && streq(in->live[i].name, name))
            return &in->live[i];
    return NULL;
}

static bool desired_has(const struct plan_input *in, enum obj_kind k, const char *name)
{
    for (size_t i = 0; i < in->n_desired; i++)
        if (in->desired[i].kind == k && streq(in->desired[i].name, name))
            return true;
    return false;
}

static int plan_desired(const struct plan_input *in, const struct desired_obj *d, struct plan *p)
{
    const struct live_obj *l = find_live(in, d->kind, d->name);
    struct plan_step *s;

    if (l && !(l->managed && streq_null(l->agent, in->agent_id))) {
        s = plan_add(p, PLAN_CONFLICT, d->kind, d->name, d->stack);
        if (!s)
            return -ENOMEM;
        return set_str(&s->reason, l->managed ? "owned by another agent"
                                              : "exists and is not managed by axion");
    }
    if (!l) {
        s = plan_add(p, PLAN_CREATE, d->kind, d->name, d->stack);
        if (!s)
            return -ENOMEM;
        s->spec = json_incref(d->spec);
        return set_str(&s->reason, "missing") ?: set_str(&s->hash, d->hash);
    }
    /* Networks, configs and secrets are immutable in Swarm: configs and secrets are
     * content-addressed, so a change is a new name; existing ones are in sync. */
    if (d->kind != OBJ_SERVICE) {
        p->n_noop++;
        return 0;
    }

    char **fields = NULL;
    int n = plan_diff_fields(d->spec, l->spec, &fields);
    if (n < 0)
        return n;
    /* The hash label differs whenever anything differs; it is not a field to report. */
    size_t kept = 0;
    for (int i = 0; i < n; i++) {
        if (streq(fields[i], HASH_LABEL_PATH))
            free(fields[i]);
        else
            fields[kept++] = fields[i];
    }
    bool hash_same = streq_null(d->hash, l->hash);
    if (hash_same && kept == 0) {
        free(fields);
        p->n_noop++;
        return 0;
    }
    s = plan_add(p, PLAN_UPDATE, d->kind, d->name, d->stack);
    if (!s) {
        for (size_t i = 0; i < kept; i++)
            free(fields[i]);
        free(fields);
        return -ENOMEM;
    }
    s->fields = fields;
    s->n_fields = kept;
    s->version = l->version;
    s->spec = json_incref(d->spec);
    /* A changed hash with no field told apart means desired dropped a field: that can only
     * be applied by replacing the spec, which may roll tasks. */
    s->rolls_tasks = kept == 0;
    for (size_t i = 0; i < kept; i++)
        if (plan_field_rolls_tasks(fields[i]))
            s->rolls_tasks = true;
    return set_str(&s->live_id, l->id) ?: set_str(&s->hash, d->hash)
                                       ?: set_str(&s->reason, hash_same ? "drift" : "spec changed");
}

static int plan_prune(const struct plan_input *in, const struct live_obj *l, struct plan *p)
{
    if (!l->managed || !streq_null(l->agent, in->agent_id))
        return 0; /* never touch what is not ours */
    if (in->only_stack && !streq_null(l->stack, in->only_stack))
        return 0;
    if (str_in(l->stack, in->frozen_stacks, in->n_frozen))
        return 0;
    if (desired_has(in, l->kind, l->name))
        return 0;
    if (!in->prune && !str_in(l->stack, in->removed_stacks, in->n_removed))
        return 0;
    struct plan_step *s = plan_add(p, PLAN_REMOVE, l->kind, l->name, l->stack);
    if (!s)
        return -ENOMEM;
    return set_str(&s->live_id, l->id) ?: set_str(&s->reason, "not desired");
}

static int step_cmp(const void *a, const void *b)
{
    const struct plan_step *x = a, *y = b;
    if (x->phase != y->phase)
        return (int)x->phase - (int)y->phase;
    if (x->kind != y->kind)
        return (int)x->kind - (int)y->kind;
    return strcmp(x->name, y->name);
}

int plan_compute(const struct plan_input *in, struct plan *ret)
{
    struct plan p = {0};
    int r = 0;
    for (size_t i = 0; i < in->n_desired && r == 0; i++) {
        const struct desired_obj *d = &in->desired[i];
        if (in->only_stack && !streq_null(d->stack, in->only_stack))
            continue;
        if (str_in(d->stack, in->frozen_stacks, in->n_frozen))
            continue;
        r = plan_desired(in, d, &p);
    }
    for (size_t i = 0; i < in->n_live && r == 0; i++)
        r = plan_prune(in, &in->live[i], &p);
    if (r < 0) {
        plan_release(&p);
        return r;
    }
    if (p.n)
        qsort(p.steps, p.n, sizeof(*p.steps), step_cmp);
    *ret = p;
    return 0;
}

size_t plan_changes(const struct plan *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++)
        if (p->steps[i].action == PLAN_CREATE || p->steps[i].action == PLAN_UPDATE ||
            p->steps[i].action == PLAN_REMOVE)
            n++;
    return n;
}

void plan_release(struct plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        struct plan_step *s = &p->steps[i];
        free(s->name);
        free(s->stack);
        free(s->live_id);
        free(s->hash);
        free(s->reason);
        json_decref(s->spec);
        for (size_t j = 0; j < s->n_fields; j++)
            free(s->fields[j]);
        free(s->fields);
    }
    free(p->steps);
    *p = (struct plan){0};
}

/* --- output -------------------------------------------------------------------------------- */

int plan_format_text(const struct plan *p, FILE *out)
{
    size_t create = 0, update = 0, remove = 0, conflict = 0;
    for (size_t i = 0; i < p->n; i++) {
        const struct plan_step *s = &p->steps[i];
        switch (s->action) {
        case PLAN_CREATE:
            create++;
            fprintf(out, "+ create %s %s\n", obj_kind_name(s->kind), s->name);
            break;
        case PLAN_UPDATE:
            update++;
            fprintf(out, "~ update %s %s (%s, %s)\n", obj_kind_name(s->kind), s->name, s->reason,
                    s->rolls_tasks ? "rolls tasks" : "in place");
            for (size_t j = 0; j < s->n_fields; j++)
                fprintf(out, "    ~ %s\n", s->fields[j]);
            break;
        case PLAN_REMOVE:
            remove++;
            fprintf(out, "- remove %s %s\n", obj_kind_name(s->kind), s->name);
            break;
        case PLAN_CONFLICT:
            conflict++;
            fprintf(out, "! conflict %s %s: %s\n", obj_kind_name(s->kind), s->name, s->reason);
            break;
        case PLAN_NOOP:
            break;
        }
    }
    if (create + update + remove == 0)
        fprintf(out, "No changes. %zu objects in sync.\n", p->n_noop);
    else
        fprintf(out, "Plan: %zu to create, %zu to update, %zu to remove, %zu in sync.\n", create,
                update, remove, p->n_noop);
    if (conflict)
        fprintf(out, "%zu conflicting objects left alone.\n", conflict);
    return ferror(out) ? -EIO : 0;
}

json_t *plan_to_json(const struct plan *p)
{
    json_t *steps = json_array();
    if (!steps)
        return NULL;
    for (size_t i = 0; i < p->n; i++) {
        const struct plan_step *s = &p->steps[i];
        json_t *fields = json_array();
        for (size_t j = 0; fields && j < s->n_fields; j++)
            json_array_append_new(fields, json_string(s->fields[j]));
        json_t *o = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:b, s:o*}", "action",
                              plan_action_name(s->action), "kind", obj_kind_name(s->kind), "name",
                              s->name, "stack", s->stack, "reason", s->reason, "rolls_tasks",
                              s->rolls_tasks, "fields", fields);
        if (!o || json_array_append_new(steps, o) < 0) {
            json_decref(steps);
            return NULL;
        }
    }
    return json_pack("{s:b, s:I, s:I, s:o}", "in_sync", plan_changes(p) == 0, "changes",
                     (json_int_t)plan_changes(p), "in_sync_objects", (json_int_t)p->n_noop, "steps",
                     steps);
}

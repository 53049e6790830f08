#include "reconciler/plan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "lib/buf.h"
#include "lib/util.h"
#include "reconciler/spec_diff.h"

#define HASH_LABEL_PATH "Labels.io.axion.spec-hash"

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

static struct plan_step *plan_add(struct plan *p, enum plan_action a, enum spec_kind kind,
                                  const char *name, const char *stack)
{
    struct plan_step *s = ARRAY_PUSH(&p->steps, &p->n, &p->cap);
    if (!s)
        return NULL;
    *s = (struct plan_step){.action = a, .kind = kind};
    s->name = strdup(name);
    s->stack = stack ? strdup(stack) : NULL;
    if (!s->name || (stack && !s->stack)) {
        free(s->name);
        free(s->stack);
        p->n--;
        return NULL;
    }
    if (a == PLAN_REMOVE)
        s->phase = kind == SPEC_SERVICE ? PHASE_REMOVE_SERVICES : PHASE_REMOVE_DEPS;
    else
        s->phase = kind == SPEC_SERVICE ? PHASE_SERVICES : PHASE_DEPS;
    return s;
}

static int set_str(char **dst, const char *v)
{
    if (!v)
        return 0;
    *dst = strdup(v);
    return *dst ? 0 : -ENOMEM;
}

static const struct live_obj *find_live(const struct plan_input *in, enum spec_kind k,
                                        const char *name)
{
    for (size_t i = 0; i < in->n_live; i++)
        if (in->live[i].kind == k && streq(in->live[i].name, name))
            return &in->live[i];
    return NULL;
}

static bool desired_has(const struct plan_input *in, enum spec_kind k, const char *name)
{
    for (size_t i = 0; i < in->n_desired; i++)
        if (in->desired[i].kind == k && streq(in->desired[i].name, name))
            return true;
    return false;
}

/* Live network ID → name, so that a service's network targets compare by name. */
static const char *network_name(void *ud, const char *id)
{
    const struct plan_input *in = ud;
    for (size_t i = 0; i < in->n_live; i++)
        if (in->live[i].kind == SPEC_NETWORK && streq(in->live[i].id, id))
            return in->live[i].name;
    return NULL;
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
    if (d->kind != SPEC_SERVICE) {
        p->n_noop++;
        return 0;
    }

    char **fields = NULL;
    size_t n = 0;
    struct spec_diff_opts dopts = {.network_name = network_name, .ud = (void *)in};
    int r = spec_diff_fields(d->spec, l->spec, &dopts, &fields, &n);
    if (r < 0)
        return r;
    /* The hash label differs whenever anything differs; it is not a field to report. */
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
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
    /* Only stacks the store knows: a lost or reset store must not prune what it forgot. */
    if (!str_in(l->stack, in->known_stacks, in->n_known))
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

int plan_format_text(const struct plan *p, struct buf *out)
{
    size_t create = 0, update = 0, remove = 0, conflict = 0;
    int r = 0;
    for (size_t i = 0; i < p->n && r == 0; i++) {
        const struct plan_step *s = &p->steps[i];
        const char *kind = spec_kind_to_string(s->kind);
        switch (s->action) {
        case PLAN_CREATE:
            create++;
            r = buf_printf(out, "+ create %s %s\n", kind, s->name);
            break;
        case PLAN_UPDATE:
            update++;
            r = buf_printf(out, "~ update %s %s (%s, %s)\n", kind, s->name, s->reason,
                           s->rolls_tasks ? "rolls tasks" : "in place");
            for (size_t j = 0; j < s->n_fields && r == 0; j++)
                r = buf_printf(out, "    ~ %s\n", s->fields[j]);
            break;
        case PLAN_REMOVE:
            remove++;
            r = buf_printf(out, "- remove %s %s\n", kind, s->name);
            break;
        case PLAN_CONFLICT:
            conflict++;
            r = buf_printf(out, "! conflict %s %s: %s\n", kind, s->name, s->reason);
            break;
        case PLAN_NOOP:
            break;
        }
    }
    if (r == 0 && create + update + remove == 0)
        r = buf_printf(out, "No changes. %zu objects in sync.\n", p->n_noop);
    else if (r == 0)
        r = buf_printf(out, "Plan: %zu to create, %zu to update, %zu to remove, %zu in sync.\n",
                       create, update, remove, p->n_noop);
    if (r == 0 && conflict)
        r = buf_printf(out, "%zu conflicting objects left alone.\n", conflict);
    return r < 0 ? r : 0;
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
                              plan_action_name(s->action), "kind", spec_kind_to_string(s->kind),
                              "name", s->name, "stack", s->stack, "reason", s->reason,
                              "rolls_tasks", s->rolls_tasks, "fields", fields);
        if (!o || json_array_append_new(steps, o) < 0) {
            json_decref(steps);
            return NULL;
        }
    }
    return json_pack("{s:b, s:I, s:I, s:o}", "in_sync", plan_changes(p) == 0, "changes",
                     (json_int_t)plan_changes(p), "in_sync_objects", (json_int_t)p->n_noop, "steps",
                     steps);
}

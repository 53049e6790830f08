#include "reconciler/apply.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/docker/docker_api.h"
#include "lib/array.h"
#include "lib/log.h"
#include "lib/util.h"
#include "compose/spec.h"

struct step_ctx {
    struct apply_run *run;
    size_t i;
    int attempts;
    uint64_t version;
    struct docker_request *req;
    char msg[512]; /* why step_send() failed, when it says */
};

struct created {
    enum spec_kind kind;
    char *name;
    char *id;
};

struct apply_run {
    struct docker *d;
    apply_lookup lookup;
    struct created *created;
    size_t n_created, cap_created;
    const struct plan *plan;
    const bool *skip;
    unsigned concurrency;
    apply_cb cb;
    void *userdata;
    struct apply_outcome *out;
    struct step_ctx *ctx;
    int phase;
    size_t next;     /* next step to start in this phase */
    unsigned active; /* steps in flight */
    size_t failed;
    bool finished;
};

static void pump(struct apply_run *run);

static void step_finish(struct step_ctx *c, int r, const char *error)
{
    struct apply_run *run = c->run;
    struct apply_outcome *o = &run->out[c->i];
    c->req = NULL;
    o->done = true;
    o->r = r;
    if (r < 0) {
        o->error = strdup(error ? error : strerror(-r));
        run->failed++;
    }
    run->active--;
    pump(run);
}

static void on_step(struct docker_result *res, void *userdata);

static void remember_created(struct apply_run *run, enum spec_kind kind, const char *name,
                             json_t *body)
{
    const char *id = json_string_value(json_object_get(body, "ID"));
    if (!id)
        id = json_string_value(json_object_get(body, "Id"));
    struct created *c = id ? ARRAY_PUSH(&run->created, &run->n_created, &run->cap_created) : NULL;
    if (!c)
        return; /* the next pass finds it by listing */
    c->kind = kind;
    c->name = strdup(name);
    c->id = strdup(id);
    if (!c->name || !c->id) {
        free(c->name);
        free(c->id);
        run->n_created--;
    }
}

static const char *resolve(void *ud, enum spec_kind kind, const char *name)
{
    struct apply_run *run = ud;
    for (size_t i = 0; i < run->n_created; i++)
        if (run->created[i].kind == kind && streq(run->created[i].name, name))
            return run->created[i].id;
    return run->lookup ? run->lookup(run->userdata, kind, name) : NULL;
}

static int step_send(struct step_ctx *c)
{
    const struct plan_step *s = &c->run->plan->steps[c->i];
    struct docker *d = c->run->d;
    c->attempts++;
    json_t *body = NULL;
    if (s->action == PLAN_CREATE || s->action == PLAN_UPDATE) {
        /* The body is the plan's spec, which stays as planned (the desired state keeps it
         * across passes): what is filled in for this send goes into a copy. */
        body = s->kind == SPEC_SERVICE ? json_deep_copy(s->spec) : json_incref(s->spec);
        if (!body)
            return -ENOMEM;
    }
    if (body && s->kind == SPEC_SERVICE) {
        /* Services name configs and secrets by ID: fill them in now that they exist. */
        const char *missing = NULL;
        int r = spec_resolve_ids(body, resolve, c->run, &missing);
        if (r == -ENOENT)
            snprintf(c->msg, sizeof(c->msg), "config or secret %s does not exist", missing);
        /* Networks by ID too: the Engine would read an unknown name as an ID prefix. */
        if (r == 0 && (r = spec_resolve_network_ids(body, resolve, c->run, &missing)) == -ENOENT)
            snprintf(c->msg, sizeof(c->msg), "network %s does not exist on this node", missing);
        if (r < 0) {
            json_decref(body);
            return r;
        }
    }
    switch (s->action) {
    case PLAN_CREATE:
        c->req = docker_object_create(d, s->kind, body, on_step, c);
        break;
    case PLAN_UPDATE:
        c->req = docker_object_update(d, s->kind, s->live_id, c->version, body, on_step, c);
        break;
    case PLAN_REMOVE:
        c->req = docker_object_remove(d, s->kind, s->live_id, on_step, c);
        break;
    case PLAN_NOOP:
    case PLAN_CONFLICT:
        return 1; /* nothing to send */
    }
    return c->req ? 0 : -ENOMEM;
}

static void on_inspect(struct docker_result *res, void *userdata)
{
    struct step_ctx *c = userdata;
    c->req = NULL;
    if (res->error != DOCKER_OK) {
        step_finish(c, -EIO, res->message);
        return;
    }
    c->version = (uint64_t)json_integer_value(
        json_object_get(json_object_get(res->body, "Version"), "Index"));
    int r = step_send(c);
    if (r < 0)
        step_finish(c, r, *c->msg ? c->msg : NULL);
}

static void on_step(struct docker_result *res, void *userdata)
{
    struct step_ctx *c = userdata;
    const struct plan_step *s = &c->run->plan->steps[c->i];
    c->req = NULL;
    if (res->error == DOCKER_OK) {
        if (s->action == PLAN_CREATE && s->kind != SPEC_SERVICE)
            remember_created(c->run, s->kind, s->name, res->body);
        json_t *warnings = docker_result_warnings(res);
        size_t i;
        json_t *w;
        json_array_foreach(warnings, i, w)
            log_warnx("%s %s: %s", spec_kind_to_string(s->kind), s->name, json_string_value(w));
        step_finish(c, 0, NULL);
        return;
    }
    /* Someone changed the service since we read it: read it again, then retry. */
    if (s->action == PLAN_UPDATE && docker_result_is_conflict(res) &&
        c->attempts <= APPLY_CONFLICT_RETRIES) {
        log_info("service %s changed since it was read; retrying with its new version", s->name);
        c->req = docker_object_inspect(c->run->d, s->kind, s->live_id, on_inspect, c);
        if (!c->req)
            step_finish(c, -ENOMEM, NULL);
        return;
    }
    /* Removing what is already gone is done. */
    if (s->action == PLAN_REMOVE && docker_result_is_not_found(res)) {
        step_finish(c, 0, NULL);
        return;
    }
    char msg[1024];
    snprintf(msg, sizeof(msg), "%s: %s", res->what, res->message);
    step_finish(c, res->error == DOCKER_ERR_HTTP && res->status == 409 ? -EEXIST : -EIO, msg);
}

static void pump(struct apply_run *run)
{
    const struct plan *p = run->plan;
    while (run->phase < PHASE_MAX) {
        while (run->next < p->n && run->active < run->concurrency) {
            size_t i = run->next;
            if ((int)p->steps[i].phase != run->phase)
                break;
            run->next++;
            if (run->skip && run->skip[i])
                continue;
            struct step_ctx *c = &run->ctx[i];
            *c = (struct step_ctx){.run = run, .i = i, .version = p->steps[i].version};
            run->active++;
            int r = step_send(c);
            if (r > 0) {
                run->active--;
                run->out[i].done = true;
            } else if (r < 0) {
                step_finish(c, r, *c->msg ? c->msg : NULL);
                return; /* step_finish pumped */
            }
        }
        if (run->active > 0)
            return; /* wait for this phase */
        if (run->next < p->n && (int)p->steps[run->next].phase == run->phase)
            continue;
        run->phase++;
    }
    if (!run->finished && run->active == 0) {
        run->finished = true;
        run->cb(run, run->userdata);
    }
}

int apply_start(struct docker *d, const struct plan *plan, const bool *skip, unsigned concurrency,
                apply_lookup lookup, apply_cb cb, void *userdata, struct apply_run **ret)
{
    struct apply_run *run = calloc(1, sizeof(*run));
    if (!run)
        return -ENOMEM;
    size_t n = plan->n ? plan->n : 1;
    run->out = calloc(n, sizeof(*run->out));
    run->ctx = calloc(n, sizeof(*run->ctx));
    if (!run->out || !run->ctx) {
        free(run->out);
        free(run->ctx);
        free(run);
        return -ENOMEM;
    }
    run->d = d;
    run->lookup = lookup;
    run->plan = plan;
    run->skip = skip;
    run->concurrency = concurrency ? concurrency : 1;
    run->cb = cb;
    run->userdata = userdata;
    /* Steps are sorted by phase; start at the first phase that has any. */
    run->phase = 0;
    *ret = run;
    pump(run);
    return 0;
}

const struct apply_outcome *apply_outcome(const struct apply_run *run, size_t i)
{
    return &run->out[i];
}

size_t apply_failed(const struct apply_run *run)
{
    return run->failed;
}

struct apply_run *apply_free(struct apply_run *run)
{
    if (!run)
        return NULL;
    for (size_t i = 0; i < run->plan->n; i++) {
        docker_request_cancel(run->ctx[i].req);
        free(run->out[i].error);
    }
    for (size_t i = 0; i < run->n_created; i++) {
        free(run->created[i].name);
        free(run->created[i].id);
    }
    free(run->created);
    free(run->out);
    free(run->ctx);
    free(run);
    return NULL;
}

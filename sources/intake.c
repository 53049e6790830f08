#include "sources/intake.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "lib/util.h"
#include "sources/intake_swarm.h"

struct intake {
    struct store *store;
    char *agent_id;
    struct policy_rules policy;
    bool check_policy;
};

static const char *const kinds[_INTAKE_KIND_MAX] = {
    [INTAKE_DEPLOY] = "deploy",
    [INTAKE_REMOVE] = "remove",
    [INTAKE_SCALE] = "scale",
    [INTAKE_STOP] = "stop",
    [INTAKE_START] = "start",
    [INTAKE_RESTART] = "restart",
    [INTAKE_RECONCILE_NOW] = "reconcile-now",
    [INTAKE_SWARM_INIT] = "swarm-init",
    [INTAKE_SWARM_JOIN] = "swarm-join",
    [INTAKE_SWARM_LEAVE] = "swarm-leave",
};

static const char *const outcomes[_INTAKE_OUTCOME_MAX] = {
    [INTAKE_ACCEPTED] = "accepted",
    [INTAKE_DUPLICATE] = "duplicate",
    [INTAKE_SUPERSEDED] = "superseded",
    [INTAKE_REJECTED] = "rejected",
};

const char *intake_kind_to_string(enum intake_kind kind)
{
    return (unsigned)kind < _INTAKE_KIND_MAX ? kinds[kind] : NULL;
}

const char *intake_outcome_to_string(enum intake_outcome outcome)
{
    return (unsigned)outcome < _INTAKE_OUTCOME_MAX ? outcomes[outcome] : NULL;
}

int intake_new(struct store *st, const struct intake_opts *o, struct intake **ret)
{
    if (!st || !o || !ret)
        return -EINVAL;
    struct intake *in = calloc(1, sizeof(*in));
    if (!in)
        return -ENOMEM;
    in->store = st;
    if (o->agent_id && !(in->agent_id = strdup(o->agent_id))) {
        free(in);
        return -ENOMEM;
    }
    if (o->policy) {
        in->policy = *o->policy;
        in->check_policy = true;
    }
    *ret = in;
    return 0;
}

struct intake *intake_free(struct intake *in)
{
    if (in) {
        free(in->agent_id);
        free(in);
    }
    return NULL;
}

void intake_result_release(struct intake_result *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->n_notes; i++)
        free(res->notes[i]);
    free(res->notes);
    res->notes = NULL;
    res->n_notes = 0;
}

/* ---- outcomes ------------------------------------------------------------------------------ */

static void set_error(struct intake_result *res, const char *fmt, va_list ap)
{
    vsnprintf(res->error, sizeof(res->error), fmt, ap);
}

/* Refuses the request: nothing of it is written but its position and its record. Returns 0. */
__attribute__((format(printf, 3, 4))) static int
reject_as(struct intake_result *res, enum intake_cause cause, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(res, fmt, ap);
    va_end(ap);
    res->outcome = INTAKE_REJECTED;
    res->cause = cause;
    res->generation = 0;
    return 0;
}
#define reject(res, ...) reject_as((res), INTAKE_CAUSE_INVALID, __VA_ARGS__)

__attribute__((format(printf, 2, 3))) static int supersede(struct intake_result *res,
                                                           const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(res, fmt, ap);
    va_end(ap);
    res->outcome = INTAKE_SUPERSEDED;
    res->generation = 0;
    return 0;
}

/* A store error: its message, and the errno to return. */
static int store_failed(struct intake *in, struct intake_result *res, int r)
{
    snprintf(res->error, sizeof(res->error), "%s",
             r == -ENOMEM ? "out of memory" : store_errmsg(in->store));
    return r;
}

static enum intake_outcome outcome_of_status(enum store_command_status s)
{
    switch (s) {
    case STORE_COMMAND_SUPERSEDED:
        return INTAKE_SUPERSEDED;
    case STORE_COMMAND_REJECTED:
        return INTAKE_REJECTED;
    default:
        return INTAKE_ACCEPTED;
    }
}

static enum store_command_status status_of_outcome(enum intake_outcome o)
{
    switch (o) {
    case INTAKE_SUPERSEDED:
        return STORE_COMMAND_SUPERSEDED;
    case INTAKE_REJECTED:
        return STORE_COMMAND_REJECTED;
    default:
        return STORE_COMMAND_ACCEPTED;
    }
}

static int add_note(struct intake_result *res, const char *kind, const char *text)
{
    char **v = realloc(res->notes, (res->n_notes + 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    res->notes = v;
    if (asprintf(&v[res->n_notes], "%s: %s", kind, text) < 0)
        return -ENOMEM;
    res->n_notes++;
    return 0;
}

/* ---- checks of the request itself ------------------------------------------------------------ */

static bool empty(const char *s)
{
    return !s || !*s;
}

static bool name_ok(const char *s)
{
    return !empty(s) && strnlen(s, STORE_NAME_MAX + 1) <= STORE_NAME_MAX;
}

/* What can be said without the store. 0 with res untouched, or 0 with res rejected. */
static int check_request(const struct intake_request *rq, struct intake_result *res)
{
    const char *kind = intake_kind_to_string(rq->kind);
    if (!kind)
        return reject(res, "unknown request kind %d", (int)rq->kind);
    if (intake_swarm_kind(rq->kind))
        return 0; /* intake_swarm_submit() checks its own */
    if (rq->kind != INTAKE_RECONCILE_NOW || !empty(rq->stack))
        if (!name_ok(rq->stack))
            return reject(res, "%s: %s", kind,
                          empty(rq->stack) ? "no stack name"
                                           : "the stack name is longer than 255 bytes");
    const char *stack = rq->stack ? rq->stack : "";
    if (!empty(rq->service) && strnlen(rq->service, STORE_NAME_MAX + 1) > STORE_NAME_MAX)
        return reject(res, "%s %s: the service name is longer than 255 bytes", kind, stack);
    if (rq->generation < 0)
        return reject(res, "%s %s: generation %" PRId64 " is negative", kind, stack,
                      rq->generation);
    switch (rq->kind) {
    case INTAKE_DEPLOY:
        if (!rq->compose)
            return reject(res, "deploy %s: no manifest", stack);
        if (rq->n_files > INTAKE_FILES_MAX)
            return reject_as(res, INTAKE_CAUSE_LIMIT, "deploy %s: %zu attached files, more than %u",
                             stack, rq->n_files, INTAKE_FILES_MAX);
        if (rq->n_vars > INTAKE_VARS_MAX || rq->n_env > INTAKE_VARS_MAX)
            return reject_as(res, INTAKE_CAUSE_LIMIT, "deploy %s: %zu variables, more than %u",
                             stack, rq->n_vars > rq->n_env ? rq->n_vars : rq->n_env,
                             INTAKE_VARS_MAX);
        break;
    case INTAKE_REMOVE:
        if (!empty(rq->service))
            return reject(res, "remove %s: a stack is removed whole, not service \"%s\"", stack,
                          rq->service);
        break;
    case INTAKE_SCALE:
        if (empty(rq->service))
            return reject(res, "scale %s: no service named", stack);
        if (rq->replicas < 0 || rq->replicas > INTAKE_REPLICAS_MAX)
            return reject(res, "scale %s/%s: replicas %" PRId64 " is not from 0 to %d", stack,
                          rq->service, rq->replicas, INTAKE_REPLICAS_MAX);
        break;
    default:
        break;
    }
    return 0;
}

static int check_position(const struct intake_position *p, char *why, size_t whylen)
{
    if (!name_ok(p->topic))
        snprintf(why, whylen, "position: %s", empty(p->topic) ? "no topic" : "topic too long");
    else if (p->partition < 0)
        snprintf(why, whylen, "position: partition %" PRId32 " is negative", p->partition);
    else if (p->next_offset < 0)
        snprintf(why, whylen, "position: offset %" PRId64 " is negative", p->next_offset);
    else
        return 0;
    return -EINVAL;
}

/* ---- the stored stack ------------------------------------------------------------------------ */

/* The stack when it exists and is not removed: 0 with *ret, or 0 with res rejected. */
static int live_stack(struct intake *in, const char *name, bool with_files,
                      struct store_stack **ret, struct intake_result *res)
{
    struct store_stack *s = NULL;
    int r = with_files ? store_get_stack(in->store, name, &s)
                       : store_get_stack_summary(in->store, name, &s);
    if (r == -ENOENT || (r == 0 && s->removed)) {
        store_stack_free(s);
        return reject_as(res, INTAKE_CAUSE_NOT_FOUND, "no stack named \"%s\"", name);
    }
    if (r < 0)
        return store_failed(in, res, r);
    *ret = s;
    return 0;
}

/* The stored generation, 0 when the stack is unknown. */
static int stored_generation(struct intake *in, const char *name, int64_t *ret,
                             struct intake_result *res)
{
    struct store_stack *s = NULL;
    int r = store_get_stack_summary(in->store, name, &s);
    if (r == -ENOENT) {
        *ret = 0;
        return 0;
    }
    if (r < 0)
        return store_failed(in, res, r);
    *ret = s->generation;
    store_stack_free(s);
    return 0;
}

/* Whether the request's generation is newer than the stored one (*cur, 0 when the stack is
 * unknown): 1 when it is, 0 with res superseded, or a negative errno (a store error). */
static int newer_than_stored(struct intake *in, const struct intake_request *rq, int64_t *cur,
                             struct intake_result *res)
{
    int r = stored_generation(in, rq->stack, cur, res);
    if (r < 0)
        return r;
    if (rq->generation > *cur)
        return 1;
    res->stored_generation = *cur;
    return supersede(res, "%s %s: generation %" PRId64 " is not newer than the stored %" PRId64,
                     intake_kind_to_string(rq->kind), rq->stack, rq->generation, *cur);
}

/* Whether the stored manifest has service: 1, 0, or a negative errno. A manifest that no
 * longer compiles says why in why. */
static int stored_has_service(const struct store_stack *s, const char *service, char *why,
                              size_t whylen)
{
    json_t *vars = json_loads(s->variables_json ? s->variables_json : "{}", 0, NULL);
    struct compose_var *v = calloc(json_object_size(vars) + 1, sizeof(*v));
    struct spec_file *f = calloc(s->n_files + 1, sizeof(*f));
    size_t nv = 0;
    int r = 0;
    if (!vars || !json_is_object(vars)) {
        snprintf(why, whylen, "its stored variables are not a JSON object");
        r = -EINVAL;
    } else if (!v || !f) {
        r = -ENOMEM;
    }
    const char *k;
    json_t *val;
    if (r == 0) {
        json_object_foreach(vars, k, val)
        {
            if (json_is_string(val))
                v[nv++] = (struct compose_var){k, json_string_value(val)};
        }
        for (size_t i = 0; i < s->n_files; i++)
            f[i] = (struct spec_file){s->files[i].name, s->files[i].data, s->files[i].len};
        struct compile_file_array arr = {f, s->n_files};
        struct compile_input ci = {
            .stack = s->name,
            .text = s->compose,
            .len = s->compose_len,
            .vars = v,
            .n_vars = nv,
            .files = {compile_files_from_array, &arr},
            .base_dir = s->base_dir,
            .home_dir = s->home_dir,
        };
        struct compile_result *cr = NULL;
        struct compose_error err = {0};
        r = compile_stack(&ci, &cr, &err);
        if (r == 0)
            r = compose_project_service(cr->project, service) != NULL;
        else if (r != -ENOMEM)
            snprintf(why, whylen, "%s", err.text);
        compile_result_free(cr);
    }
    free(v);
    free(f);
    json_decref(vars);
    return r;
}

/* ---- deploy ------------------------------------------------------------------------------------
 */

/* What a deploy's compile gets its files through: the attached ones first, by the converter's
 * rule (compile_file_matches: the name as written, a leading "./" does not matter), then the
 * caller's lookup. Every file handed out is kept, as bytes, for the store. */
struct deploy_files {
    const struct intake_request *rq;
    bool *used;              /* per rq->files */
    struct store_file *kept; /* borrowed names and bytes, for store_put_stack() */
    size_t n_kept, cap_kept;
    size_t bytes;
};

static int find_attached(const struct intake_request *rq, const char *name)
{
    for (size_t i = 0; i < rq->n_files; i++)
        if (rq->files[i].name && streq(rq->files[i].name, name))
            return (int)i;
    for (size_t i = 0; i < rq->n_files; i++)
        if (rq->files[i].name && compile_file_matches(name, rq->files[i].name))
            return (int)i;
    return -1;
}

static bool kept(const struct deploy_files *df, const char *name)
{
    for (size_t i = 0; i < df->n_kept; i++)
        if (streq(df->kept[i].name, name))
            return true;
    return false;
}

static int deploy_file_get(void *ud, const char *name, struct spec_file *ret, char *why,
                           size_t whylen)
{
    struct deploy_files *df = ud;
    const struct intake_request *rq = df->rq;
    struct spec_file f;
    const char *key = name;
    int i = find_attached(rq, name);
    if (i >= 0) {
        f = rq->files[i];
        key = f.name;
        df->used[i] = true;
    } else if (rq->lookup.get) {
        int r = rq->lookup.get(rq->lookup.ud, name, &f, why, whylen);
        if (r < 0)
            return r;
    } else {
        return -ENOENT;
    }
    if (f.len > INTAKE_FILE_MAX) {
        snprintf(why, whylen, "%zu bytes, more than the %u bytes one attached file may have", f.len,
                 INTAKE_FILE_MAX);
        return -EFBIG;
    }
    if (f.len && !f.data) {
        snprintf(why, whylen, "no content");
        return -EINVAL;
    }
    if (!kept(df, key)) {
        if (df->bytes + f.len > STORE_FILES_MAX) {
            snprintf(why, whylen, "the attached files take more than the %u bytes a stack may hold",
                     STORE_FILES_MAX);
            return -EFBIG;
        }
        struct store_file *k = ARRAY_PUSH(&df->kept, &df->n_kept, &df->cap_kept);
        if (!k)
            return -ENOMEM;
        *k = (struct store_file){(char *)key, (void *)(f.len ? f.data : ""), f.len};
        df->bytes += f.len;
    }
    ret->data = f.data;
    ret->len = f.len;
    return 0;
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Whether name occurs in text as a word of its own (not inside a longer name). */
static bool names(const char *text, size_t len, const char *name)
{
    size_t n = strlen(name);
    if (!n || !text)
        return false;
    for (const char *p = text, *end = text + len; p < end;) {
        const char *hit = memmem(p, (size_t)(end - p), name, n);
        if (!hit)
            return false;
        bool before = hit > text && is_name_char(hit[-1]);
        bool after = hit + n < end && is_name_char(hit[n]);
        if (!before && !after)
            return true;
        p = hit + 1;
    }
    return false;
}

/* Whether a variable of the caller's environment can matter to the compiled stack: the
 * manifest or a file it uses names it (interpolation, `environment:` and env files take
 * variables by name), or it is HOME and the manifest has a "~". */
static bool env_var_used(const struct intake_request *rq, const struct deploy_files *df,
                         const char *name)
{
    if (names(rq->compose, rq->compose_len, name))
        return true;
    if (streq(name, "HOME") && memchr(rq->compose, '~', rq->compose_len))
        return true;
    for (size_t i = 0; i < df->n_kept; i++)
        if (names(df->kept[i].data, df->kept[i].len, name))
            return true;
    return false;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF. */
static bool utf8_ok(const char *str)
{
    const unsigned char *p = (const unsigned char *)str;
    while (*p) {
        unsigned c = *p++, n, min;
        if (c < 0x80)
            continue;
        if ((c & 0xe0) == 0xc0)
            n = 1, min = 0x80, c &= 0x1f;
        else if ((c & 0xf0) == 0xe0)
            n = 2, min = 0x800, c &= 0x0f;
        else if ((c & 0xf8) == 0xf0)
            n = 3, min = 0x10000, c &= 0x07;
        else
            return false;
        for (; n; n--, p++) {
            if ((*p & 0xc0) != 0x80)
                return false;
            c = (c << 6) | (*p & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return false;
    }
    return true;
}

/* Why a variable cannot be taken, or NULL. */
static const char *var_problem(const struct compose_var *v)
{
    if (empty(v->name) || strchr(v->name, '='))
        return "not a variable name";
    if (!utf8_ok(v->name) || (v->value && !utf8_ok(v->value)))
        return "not valid UTF-8 text";
    return NULL;
}

static int put_var(json_t *obj, const struct compose_var *v)
{
    return json_object_set_new(obj, v->name, json_string(v->value ? v->value : "")) < 0 ? -ENOMEM
                                                                                        : 0;
}

/* The variables stored with the stack: every one given, and those of the environment the
 * manifest can use. 0, -ENOMEM, or -EILSEQ with why. */
static int stored_variables(const struct intake_request *rq, const struct deploy_files *df,
                            json_t **ret, char *why, size_t whylen)
{
    json_t *obj = json_object();
    int r = obj ? 0 : -ENOMEM;
    for (size_t i = 0; r == 0 && i < rq->n_env; i++) {
        const struct compose_var *v = &rq->env[i];
        if (!v->name || !env_var_used(rq, df, v->name))
            continue;
        const char *problem = var_problem(v);
        if (problem) {
            snprintf(why, whylen, "variable %s from the environment: %s", v->name, problem);
            r = -EILSEQ;
        } else {
            r = put_var(obj, v);
        }
    }
    for (size_t i = 0; r == 0 && i < rq->n_vars; i++)
        r = put_var(obj, &rq->vars[i]); /* checked before the compile */
    if (r < 0) {
        json_decref(obj);
        return r;
    }
    *ret = obj;
    return 0;
}

/* json_dumps, bounded: -EMSGSIZE past max. *ret NULL on -ENOMEM. */
static int dump_bounded(json_t *obj, size_t max, char **ret, size_t *ret_len)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    if (!s)
        return -ENOMEM;
    *ret_len = strlen(s);
    if (*ret_len > max) {
        free(s);
        return -EMSGSIZE;
    }
    *ret = s;
    return 0;
}

/* What deploy's compile came to: a rejection (res.outcome REJECTED, with its cause and error),
 * or what the store takes (the files kept, the variables) and the compiler's notes. It reads
 * nothing of the store, so it may be made ahead, on another thread (intake_compile()). */
struct intake_compiled {
    const struct intake_request *rq; /* the request it is of */
    struct intake_result res;        /* REJECTED, or ACCEPTED with the notes */
    struct store_file *kept;         /* its names, borrowed bytes, for store_put_stack() */
    size_t n_kept;
    char *vars_json;
};

static void free_kept(struct store_file *kept, size_t n)
{
    for (size_t i = 0; kept && i < n; i++)
        free(kept[i].name);
    free(kept);
}

static int compile_deploy(const struct intake *in, const struct intake_request *rq,
                          struct intake_compiled *c)
{
    struct intake_result *res = &c->res;
    *res = (struct intake_result){.outcome = INTAKE_ACCEPTED};
    c->rq = rq;
    const char *file = rq->filename ? rq->filename : "compose.yml";
    for (size_t i = 0; i < rq->n_files; i++) {
        if (empty(rq->files[i].name))
            return reject(res, "%s: attached file %zu has no name", file, i + 1);
        for (size_t j = 0; j < i; j++)
            if (streq(rq->files[i].name, rq->files[j].name))
                return reject(res, "%s: attached file \"%s\" is given twice", file,
                              rq->files[i].name);
    }

    /* The compiler sees the environment below the variables given (a later pair wins). */
    size_t nv = rq->n_env + rq->n_vars;
    _cleanup_free_ struct compose_var *vars = calloc(nv + 1, sizeof(*vars));
    _cleanup_free_ bool *used = calloc(rq->n_files + 1, sizeof(*used));
    json_t *variables = NULL;
    struct compile_result *cr = NULL;
    struct deploy_files df = {.rq = rq, .used = used};
    int r = 0;
    if (!vars || !used) {
        r = -ENOMEM;
        goto out;
    }
    /* The environment holds what it holds: an entry that is no variable text is left out of
     * the compile, and refused below only when the manifest names it. */
    size_t n = 0;
    for (size_t i = 0; i < rq->n_env; i++)
        if (!var_problem(&rq->env[i]))
            vars[n++] = rq->env[i];
    for (size_t i = 0; i < rq->n_vars; i++) {
        const char *problem = var_problem(&rq->vars[i]);
        if (problem) {
            r = reject(res, "%s: variable %s: %s", file, rq->vars[i].name ? rq->vars[i].name : "",
                       problem);
            goto out;
        }
        vars[n++] = rq->vars[i];
    }

    struct compile_input ci = {
        .stack = rq->stack,
        .filename = file,
        .text = rq->compose,
        .len = rq->compose_len,
        .vars = vars,
        .n_vars = n,
        .files = {deploy_file_get, &df},
        .base_dir = rq->base_dir,
        .home_dir = rq->home_dir,
        .agent_id = in->agent_id,
        .policy = in->check_policy ? &in->policy : NULL,
        .no_hashes = true, /* the loop compiles the stored input again, with its hashes */
    };
    struct compose_error err = {0};
    r = compile_stack(&ci, &cr, &err);
    if (r == -ENOMEM)
        goto out;
    if (r < 0) {
        r = reject_as(res,
                      r == -EPERM   ? INTAKE_CAUSE_POLICY
                      : r == -E2BIG ? INTAKE_CAUSE_LIMIT
                                    : INTAKE_CAUSE_MANIFEST,
                      "%s", err.text);
        goto out;
    }
    for (size_t i = 0; i < rq->n_files; i++)
        if (!used[i]) {
            r = reject(res,
                       "%s: attached file \"%s\" is not used by the manifest (configs' and "
                       "secrets' file:, env_file)",
                       file, rq->files[i].name);
            goto out;
        }

    char why[512] = "";
    size_t len = 0;
    r = stored_variables(rq, &df, &variables, why, sizeof(why));
    if (r == -ENOMEM)
        goto out;
    if (r < 0) {
        r = reject(res, "%s: %s", file, why);
        goto out;
    }
    r = dump_bounded(variables, STORE_VARIABLES_MAX, &c->vars_json, &len);
    if (r == -EMSGSIZE) {
        r = reject_as(res, INTAKE_CAUSE_LIMIT, "%s: the variables take %zu bytes, more than %u",
                      file, len, STORE_VARIABLES_MAX);
        goto out;
    }
    if (r < 0)
        goto out;
    for (size_t i = 0; r == 0 && i < cr->n_notes; i++)
        r = add_note(res, "note", cr->notes[i]);
    for (size_t i = 0; r == 0 && i < cr->spec->n_warnings; i++)
        r = add_note(res, "warning", cr->spec->warnings[i]);
    /* The names the files are kept by may be the project's, which goes with cr below. */
    if (r == 0 && df.n_kept && !(c->kept = calloc(df.n_kept, sizeof(*c->kept))))
        r = -ENOMEM;
    for (size_t i = 0; r == 0 && i < df.n_kept; i++) {
        c->kept[i] = df.kept[i];
        if (!(c->kept[i].name = strdup(df.kept[i].name)))
            r = -ENOMEM;
        c->n_kept++;
    }
out:
    compile_result_free(cr);
    json_decref(variables);
    free(df.kept);
    return r;
}

static void compiled_release(struct intake_compiled *c)
{
    intake_result_release(&c->res);
    free_kept(c->kept, c->n_kept);
    free(c->vars_json);
    *c = (struct intake_compiled){0};
}

int intake_compile(const struct intake *in, const struct intake_request *rq,
                   struct intake_compiled **ret)
{
    *ret = NULL;
    struct intake_result check = {.outcome = INTAKE_ACCEPTED};
    if (!in || !rq || rq->kind != INTAKE_DEPLOY || rq->refused)
        return 0;
    check_request(rq, &check);
    if (check.outcome != INTAKE_ACCEPTED)
        return 0; /* intake_submit() refuses it before any compile */
    struct intake_compiled *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    int r = compile_deploy(in, rq, c);
    if (r < 0) {
        intake_compiled_free(c);
        return r;
    }
    *ret = c;
    return 0;
}

struct intake_compiled *intake_compiled_free(struct intake_compiled *c)
{
    if (c) {
        compiled_release(c);
        free(c);
    }
    return NULL;
}

static int copy_notes(const struct intake_result *from, struct intake_result *to)
{
    for (size_t i = 0; i < from->n_notes; i++) {
        char **v = realloc(to->notes, (to->n_notes + 1) * sizeof(*v));
        if (!v)
            return -ENOMEM;
        to->notes = v;
        if (!(v[to->n_notes] = strdup(from->notes[i])))
            return -ENOMEM;
        to->n_notes++;
    }
    return 0;
}

static int deploy(struct intake *in, const struct intake_request *rq, struct intake_result *res)
{
    if (rq->generation > 0) {
        int64_t cur = 0;
        int r = newer_than_stored(in, rq, &cur, res);
        if (r <= 0)
            return r;
    }

    /* The compile made ahead for this very request, or one made now. */
    struct intake_compiled own = {0};
    const struct intake_compiled *c = rq->compiled;
    int r = 0;
    if (!c || c->rq != rq) {
        r = compile_deploy(in, rq, &own);
        c = &own;
    }
    if (r < 0)
        goto out;
    if (c->res.outcome == INTAKE_REJECTED) {
        r = reject_as(res, c->res.cause, "%s", c->res.error);
        goto out;
    }

    struct store_stack s = {
        .name = (char *)rq->stack,
        .generation = rq->generation,
        .compose = (char *)rq->compose,
        .compose_len = rq->compose_len,
        .files = c->kept,
        .n_files = c->n_kept,
        .variables_json = c->vars_json,
        .source = (char *)rq->source,
        .base_dir = (char *)rq->base_dir,
        .home_dir = (char *)rq->home_dir,
    };
    int64_t gen = 0;
    r = store_put_stack(in->store, &s, &gen);
    if (r == -ESTALE) {
        r = supersede(res, "deploy %s: %s", rq->stack, store_errmsg(in->store));
        goto out;
    }
    if (r == -EINVAL || r == -EMSGSIZE) {
        r = reject(res, "deploy %s: %s", rq->stack, store_errmsg(in->store));
        goto out;
    }
    if (r < 0) {
        r = store_failed(in, res, r);
        goto out;
    }
    res->outcome = INTAKE_ACCEPTED;
    res->generation = gen;
    r = copy_notes(&c->res, res);
out:
    compiled_release(&own);
    return r;
}

/* ---- remove and the overrides ------------------------------------------------------------------
 */

static int remove_stack(struct intake *in, const struct intake_request *rq,
                        struct intake_result *res)
{
    int64_t cur = 0;
    int r;
    if (rq->generation == 0) {
        /* "remove whatever is there": it must be there. */
        struct store_stack *s = NULL;
        r = live_stack(in, rq->stack, false, &s, res);
        if (r < 0 || !s)
            return r;
        cur = s->generation;
        store_stack_free(s);
    } else {
        /* A given generation may name a stack not deployed yet: it leaves a tombstone. */
        r = newer_than_stored(in, rq, &cur, res);
        if (r <= 0)
            return r;
    }
    r = store_mark_stack_removed(in->store, rq->stack, rq->generation, rq->source);
    if (r == -ESTALE)
        return supersede(res, "remove %s: %s", rq->stack, store_errmsg(in->store));
    if (r < 0)
        return store_failed(in, res, r);
    res->outcome = INTAKE_ACCEPTED;
    res->generation = rq->generation ? rq->generation : cur + 1;
    return 0;
}

static int override(struct intake *in, const struct intake_request *rq, struct intake_result *res)
{
    const char *service = rq->service ? rq->service : "";
    struct store_stack *s = NULL;
    int r = live_stack(in, rq->stack, *service != '\0', &s, res);
    if (r < 0 || !s)
        return r;
    if (*service) {
        char why[1024] = "";
        r = stored_has_service(s, service, why, sizeof(why));
        int64_t gen = s->generation;
        store_stack_free(s);
        if (r == -ENOMEM)
            return r;
        if (r < 0)
            return reject(
                res, "stack \"%s\": its manifest (generation %" PRId64 ") does not compile: %s",
                rq->stack, gen, why);
        if (r == 0)
            return reject_as(res, INTAKE_CAUSE_NOT_FOUND, "stack \"%s\" has no service \"%s\"",
                             rq->stack, service);
    } else {
        store_stack_free(s);
    }
    struct store *st = in->store;
    switch (rq->kind) {
    case INTAKE_SCALE:
        r = store_set_replicas(st, rq->stack, service, rq->replicas);
        if (r == 0)
            r = store_set_stopped(st, rq->stack, service, false);
        break;
    case INTAKE_STOP:
    case INTAKE_START:
        r = store_set_stopped(st, rq->stack, service, rq->kind == INTAKE_STOP);
        break;
    case INTAKE_RESTART:
        r = store_bump_restart(st, rq->stack, service, NULL);
        break;
    default:
        r = -EINVAL;
        break;
    }
    if (r < 0)
        return store_failed(in, res, r);
    res->outcome = INTAKE_ACCEPTED;
    return 0;
}

/* ---- one request
 * ---------------------------------------------------------------------------------- */

static void duplicate(const struct store_command *c, struct intake_result *res)
{
    res->outcome = INTAKE_DUPLICATE;
    res->first = outcome_of_status(c->status);
    res->first_status = c->status;
    res->generation = c->generation;
    snprintf(res->error, sizeof(res->error), "%s", c->error ? c->error : "");
}

static int handle(struct intake *in, const struct intake_request *rq, struct intake_result *res)
{
    struct store *st = in->store;
    bool record = false;
    int r = 0;
    if (rq->command_id && !name_ok(rq->command_id)) {
        /* An id the table cannot hold: refused, and not recorded. */
        reject(res, "command id: %s", empty(rq->command_id) ? "empty" : "longer than 255 bytes");
    } else if (rq->command_id) {
        struct store_command *c = NULL;
        r = store_get_command(st, rq->command_id, &c);
        if (r == 0) {
            duplicate(c, res);
            store_command_free(c);
        } else if (r == -ENOENT) {
            record = true;
            r = 0;
        } else {
            return store_failed(in, res, r);
        }
    }
    if (res->outcome == INTAKE_ACCEPTED && rq->refused)
        reject_as(res, INTAKE_CAUSE_REFUSED, "%s", rq->refused);
    if (res->outcome == INTAKE_ACCEPTED)
        check_request(rq, res);
    if (res->outcome == INTAKE_ACCEPTED) {
        switch (rq->kind) {
        case INTAKE_DEPLOY:
            r = deploy(in, rq, res);
            break;
        case INTAKE_REMOVE:
            r = remove_stack(in, rq, res);
            break;
        case INTAKE_SCALE:
        case INTAKE_STOP:
        case INTAKE_START:
        case INTAKE_RESTART:
            r = override(in, rq, res);
            break;
        case INTAKE_SWARM_INIT:
        case INTAKE_SWARM_JOIN:
        case INTAKE_SWARM_LEAVE:
            r = intake_swarm_submit(in->store, rq, res);
            break;
        default: /* reconcile-now: nothing to write, the caller wakes the loop */
            break;
        }
    }
    if (r < 0)
        return r;

    if (rq->position) {
        char why[128];
        if (check_position(rq->position, why, sizeof(why)) < 0) {
            /* A position the table cannot hold is the caller's bug: nothing is written, so
             * that no change stays without its position. */
            snprintf(res->error, sizeof(res->error), "%s", why);
            return -EINVAL;
        }
        r = store_put_offset(st, rq->position->topic, rq->position->partition,
                             rq->position->next_offset);
        if (r < 0)
            return store_failed(in, res, r);
    }
    if (record) {
        const char *kind = intake_kind_to_string(rq->kind);
        struct store_command c = {
            .command_id = (char *)rq->command_id,
            .source = (char *)rq->source,
            .kind = (char *)(kind ? kind : "unknown"),
            .stack = (char *)(name_ok(rq->stack) ? rq->stack : NULL),
            .status = status_of_outcome(res->outcome),
            .error = res->outcome == INTAKE_ACCEPTED ? NULL : res->error,
            .generation = res->outcome == INTAKE_ACCEPTED ? res->generation : 0,
        };
        r = store_record_command(st, &c);
        if (r < 0)
            return store_failed(in, res, r);
    }
    return 0;
}

int intake_submit(struct intake *in, const struct intake_request *rq, struct intake_result *res)
{
    *res = (struct intake_result){.outcome = INTAKE_ACCEPTED};
    if (!in || !rq) {
        snprintf(res->error, sizeof(res->error), "intake: no request");
        return -EINVAL;
    }
    if (!name_ok(rq->source)) {
        snprintf(res->error, sizeof(res->error), "intake: the request names no source");
        return -EINVAL;
    }
    struct store *st = in->store;
    bool own = !store_in_transaction(st);
    int r = own ? store_begin(st) : store_savepoint(st);
    if (r < 0)
        return store_failed(in, res, r);
    int h = handle(in, rq, res);
    if (own)
        r = h < 0 ? (store_rollback(st), h) : store_commit(st);
    else
        r = store_savepoint_end(st, h);
    if (r < 0) {
        if (h >= 0) /* the commit or the release failed */
            store_failed(in, res, r);
        intake_result_release(res);
    }
    return r;
}

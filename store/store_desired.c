/* Desired state: stacks (by generation), overrides (scale, stop, restart) and the desired
 * swarm membership. */
#include "store/store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "lib/util.h"

/* ---- stacks ---------------------------------------------------------------------------- */

static void stack_clear(struct store_stack *x)
{
    free(x->name);
    free(x->compose);
    free(x->files_json);
    free(x->variables_json);
    free(x->spec_hash);
    free(x->source);
    free(x->base_dir);
    free(x->home_dir);
    memset(x, 0, sizeof(*x));
}

struct store_stack *store_stack_free(struct store_stack *x)
{
    if (x) {
        stack_clear(x);
        free(x);
    }
    return NULL;
}

void store_stack_array_free(struct store_stack *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        stack_clear(&a[i]);
    free(a);
}

static int read_stack(sqlite3_stmt *st, struct store_stack *x)
{
    void *compose = NULL;
    int r;
    if ((r = store_col_text(st, 0, &x->name)) < 0 ||
        (r = store_col_blob(st, 2, &compose, &x->compose_len)) < 0)
        return r;
    x->compose = compose;
    x->generation = sqlite3_column_int64(st, 1);
    if ((r = store_col_text(st, 3, &x->files_json)) < 0 ||
        (r = store_col_text(st, 4, &x->variables_json)) < 0 ||
        (r = store_col_text(st, 5, &x->spec_hash)) < 0 ||
        (r = store_col_text(st, 7, &x->source)) < 0 ||
        (r = store_col_text(st, 9, &x->base_dir)) < 0 ||
        (r = store_col_text(st, 10, &x->home_dir)) < 0)
        return r;
    x->removed = sqlite3_column_int64(st, 6) != 0;
    x->updated_at = sqlite3_column_int64(st, 8);
    return 0;
}

/* The stored generation and removed flag of a stack; -ENOENT when there is none. */
static int stack_generation(struct store *s, const char *name, int64_t *ret_gen, bool *ret_removed)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_STACK_GEN);
    int r = store_bind_text(s, st, 1, name);
    if (r >= 0)
        r = store_step(s, st);
    if (r < 0)
        return r;
    if (r == 0)
        return store_err(s, -ENOENT, "no such stack");
    *ret_gen = sqlite3_column_int64(st, 0);
    if (ret_removed)
        *ret_removed = sqlite3_column_int64(st, 1) != 0;
    return 0;
}

/* The generation to write: the given one when newer than the stored, else -ESTALE. */
static int next_generation(struct store *s, const char *name, int64_t given, bool *ret_exists,
                           int64_t *ret_gen)
{
    int64_t cur = 0;
    int r = stack_generation(s, name, &cur, NULL);
    if (r < 0 && r != -ENOENT)
        return r;
    bool exists = r >= 0;
    if (given == 0) {
        if (cur == INT64_MAX)
            return store_err(s, -EOVERFLOW, "generation overflows");
        given = cur + 1;
    }
    if (given <= cur)
        return store_err(s, -ESTALE, "generation %" PRId64 " is not newer than the stored %" PRId64,
                         given, cur);
    *ret_exists = exists;
    *ret_gen = given;
    return 0;
}

static int upsert_stack(struct store *s, const struct store_stack *x, int64_t gen,
                        const char *files, const char *variables)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_STACK_UPSERT);
    int r;
    if ((r = store_bind_text(s, st, 1, x->name)) < 0 || (r = store_bind_int(s, st, 2, gen)) < 0 ||
        (r = store_bind_blob(s, st, 3, x->compose, x->compose_len)) < 0 ||
        (r = store_bind_text(s, st, 4, files)) < 0 ||
        (r = store_bind_text(s, st, 5, variables)) < 0 ||
        (r = store_bind_text(s, st, 6, x->spec_hash)) < 0 ||
        (r = store_bind_int(s, st, 7, x->removed)) < 0 ||
        (r = store_bind_text(s, st, 8, x->source)) < 0 ||
        (r = store_bind_int(s, st, 9, store_now_ms())) < 0 ||
        (r = store_bind_text(s, st, 10, x->base_dir)) < 0 ||
        (r = store_bind_text(s, st, 11, x->home_dir)) < 0)
        return r;
    return store_exec(s, st);
}

/* NULL, or an absolute path that fits. */
static int check_dir(struct store *s, const char *what, const char *v)
{
    int r = store_check_text(s, what, v, STORE_PATH_MAX);
    if (r >= 0 && v && v[0] != '/')
        r = store_err(s, -EINVAL, "%s \"%s\" is not an absolute path", what, v);
    return r;
}

static int put_stack(struct store *s, const struct store_stack *x, int64_t *ret_gen)
{
    bool exists;
    int64_t gen;
    int r = next_generation(s, x->name, x->generation, &exists, &gen);
    if (r < 0)
        return r;
    r = upsert_stack(s, x, gen, x->files_json ? x->files_json : "{}",
                     x->variables_json ? x->variables_json : "{}");
    if (r < 0)
        return r;
    *ret_gen = gen;
    return 0;
}

int store_put_stack(struct store *s, const struct store_stack *x, int64_t *ret_generation)
{
    const char *name = x && x->name ? x->name : "";
    int r = store_check_name(s, "name", x ? x->name : NULL, false);
    if (r >= 0 && x->generation < 0)
        r = store_err(s, -EINVAL, "generation %" PRId64 " is negative", x->generation);
    if (r >= 0 && !x->compose && x->compose_len > 0)
        r = store_err(s, -EINVAL, "compose is missing");
    if (r >= 0 && x->compose_len > STORE_COMPOSE_MAX)
        r = store_err(s, -EMSGSIZE, "compose is %zu bytes, more than %u", x->compose_len,
                      STORE_COMPOSE_MAX);
    if (r >= 0)
        r = store_check_json(s, "files", x->files_json, STORE_FILES_MAX, STORE_JSON_STRING_OBJECT);
    if (r >= 0)
        r = store_check_json(s, "variables", x->variables_json, STORE_VARIABLES_MAX,
                             STORE_JSON_STRING_OBJECT);
    if (r >= 0)
        r = store_check_text(s, "spec_hash", x->spec_hash, STORE_NAME_MAX);
    if (r >= 0)
        r = store_check_text(s, "source", x->source, STORE_NAME_MAX);
    if (r >= 0)
        r = check_dir(s, "base_dir", x->base_dir);
    if (r >= 0)
        r = check_dir(s, "home_dir", x->home_dir);
    if (r < 0)
        return store_errctx(s, r, "put stack %s", name);

    struct store_txn t;
    int64_t gen = 0;
    r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t, put_stack(s, x, &gen));
    if (r < 0)
        return store_errctx(s, r, "put stack %s", name);
    if (ret_generation)
        *ret_generation = gen;
    return 0;
}

int store_get_stack(struct store *s, const char *name, struct store_stack **ret)
{
    int r = store_check_name(s, "name", name, false);
    if (r < 0)
        return store_errctx(s, r, "get stack");
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_STACK_GET);
    r = store_bind_text(s, st, 1, name);
    if (r >= 0)
        r = store_step(s, st);
    if (r == 0)
        r = store_err(s, -ENOENT, "no such stack");
    if (r < 0)
        return store_errctx(s, r, "get stack %s", name);
    struct store_stack *x = calloc(1, sizeof(*x));
    if (!x)
        return store_errctx(s, -ENOMEM, "get stack %s", name);
    r = read_stack(st, x);
    if (r < 0) {
        store_stack_free(x);
        return store_errctx(s, r, "get stack %s", name);
    }
    *ret = x;
    return 0;
}

int store_list_stacks(struct store *s, unsigned flags, struct store_stack **ret, size_t *ret_n)
{
    _cleanup_stmt_ sqlite3_stmt *st =
        store_stmt(s, flags & STORE_LIST_SUMMARY ? STMT_STACK_LIST_SUMMARY : STMT_STACK_LIST);
    struct store_stack *items = NULL;
    size_t n = 0, cap = 0;
    int r = store_bind_int(s, st, 1, (flags & STORE_LIST_REMOVED) != 0);
    while (r >= 0 && (r = store_step(s, st)) > 0) {
        r = ARRAY_PUSH(&items, &n, &cap) ? 0 : -ENOMEM;
        if (r >= 0)
            r = read_stack(st, &items[n - 1]);
    }
    if (r < 0) {
        store_stack_array_free(items, n);
        return store_errctx(s, r, "list stacks");
    }
    *ret = items;
    *ret_n = n;
    return 0;
}

static int mark_removed(struct store *s, const char *name, int64_t generation, const char *source)
{
    bool exists;
    int64_t gen;
    int r = next_generation(s, name, generation, &exists, &gen);
    if (r < 0)
        return r;
    if (!exists) {
        /* A tombstone: nothing to deploy, but the name is known to be removed. */
        struct store_stack x = {.name = (char *)name, .removed = true, .source = (char *)source};
        return upsert_stack(s, &x, gen, "{}", "{}");
    }
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_STACK_MARK_REMOVED);
    if ((r = store_bind_text(s, st, 1, name)) < 0 || (r = store_bind_int(s, st, 2, gen)) < 0 ||
        (r = store_bind_text(s, st, 3, source)) < 0 ||
        (r = store_bind_int(s, st, 4, store_now_ms())) < 0)
        return r;
    return store_exec(s, st);
}

int store_mark_stack_removed(struct store *s, const char *name, int64_t generation,
                             const char *source)
{
    int r = store_check_name(s, "name", name, false);
    if (r >= 0 && generation < 0)
        r = store_err(s, -EINVAL, "generation %" PRId64 " is negative", generation);
    if (r >= 0)
        r = store_check_text(s, "source", source, STORE_NAME_MAX);
    if (r < 0)
        return store_errctx(s, r, "remove stack %s", name ? name : "");
    struct store_txn t;
    r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t, mark_removed(s, name, generation, source));
    return store_errctx(s, r, "remove stack %s", name);
}

static int delete_stack(struct store *s, const char *name, int64_t generation)
{
    int64_t cur;
    bool removed;
    int r = stack_generation(s, name, &cur, &removed);
    if (r < 0)
        return r;
    if (!removed)
        return store_err(s, -ESTALE, "it is no longer marked removed (generation %" PRId64 ")",
                         cur);
    if (cur != generation)
        return store_err(s, -ESTALE, "it is at generation %" PRId64 ", not %" PRId64, cur,
                         generation);
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_STACK_DELETE);
    r = store_bind_text(s, st, 1, name);
    if (r >= 0)
        r = store_exec(s, st);
    return r;
}

int store_delete_stack(struct store *s, const char *name, int64_t generation)
{
    int r = store_check_name(s, "name", name, false);
    if (r < 0)
        return store_errctx(s, r, "delete stack");
    struct store_txn t;
    r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t, delete_stack(s, name, generation));
    return store_errctx(s, r, "delete stack %s", name);
}

/* ---- overrides ----------------------------------------------------------------------------- */

static void override_clear(struct store_override *o)
{
    free(o->stack);
    free(o->service);
    memset(o, 0, sizeof(*o));
}

struct store_override *store_override_free(struct store_override *o)
{
    if (o) {
        override_clear(o);
        free(o);
    }
    return NULL;
}

void store_override_array_free(struct store_override *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        override_clear(&a[i]);
    free(a);
}

static int read_override(sqlite3_stmt *st, struct store_override *o)
{
    int r;
    if ((r = store_col_text(st, 0, &o->stack)) < 0 || (r = store_col_text(st, 1, &o->service)) < 0)
        return r;
    o->replicas = sqlite3_column_type(st, 2) == SQLITE_NULL ? STORE_REPLICAS_UNSET
                                                            : sqlite3_column_int64(st, 2);
    o->stopped = sqlite3_column_int64(st, 3) != 0;
    o->restart_nonce = sqlite3_column_int64(st, 4);
    o->updated_at = sqlite3_column_int64(st, 5);
    return 0;
}

/* Overrides are for stacks that exist and are not being removed. */
static int check_live_stack(struct store *s, const char *stack)
{
    int64_t gen;
    bool removed;
    int r = stack_generation(s, stack, &gen, &removed);
    if (r < 0)
        return r;
    if (removed)
        return store_err(s, -ENOENT, "the stack is marked removed");
    return 0;
}

static int check_target(struct store *s, const char *stack, const char *service)
{
    int r = store_check_name(s, "stack", stack, false);
    if (r >= 0)
        r = store_check_name(s, "service", service, true);
    return r;
}

static int set_override(struct store *s, enum store_stmt id, const char *stack, const char *service,
                        bool null_value, int64_t value)
{
    int r = check_live_stack(s, stack);
    if (r < 0)
        return r;
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, id);
    if ((r = store_bind_text(s, st, 1, stack)) < 0 ||
        (r = store_bind_text(s, st, 2, service)) < 0 ||
        (r = null_value ? store_bind_text(s, st, 3, NULL) : store_bind_int(s, st, 3, value)) < 0 ||
        (r = store_bind_int(s, st, 4, store_now_ms())) < 0)
        return r;
    return store_exec(s, st);
}

int store_set_replicas(struct store *s, const char *stack, const char *service, int64_t replicas)
{
    int r = check_target(s, stack, service);
    if (r >= 0 && !*service)
        r = store_err(s, -EINVAL, "replicas are set per service, not for the whole stack");
    if (r >= 0 && replicas < STORE_REPLICAS_UNSET)
        r = store_err(s, -EINVAL, "replicas %" PRId64 " is negative", replicas);
    if (r < 0)
        return store_errctx(s, r, "scale %s/%s", stack ? stack : "", service ? service : "");
    struct store_txn t;
    r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t,
                          set_override(s, STMT_OVR_SET_REPLICAS, stack, service,
                                       replicas == STORE_REPLICAS_UNSET, replicas));
    return store_errctx(s, r, "scale %s/%s", stack, service);
}

int store_set_stopped(struct store *s, const char *stack, const char *service, bool stopped)
{
    int r = check_target(s, stack, service);
    if (r < 0)
        return store_errctx(s, r, "stop %s/%s", stack ? stack : "", service ? service : "");
    struct store_txn t;
    r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t,
                          set_override(s, STMT_OVR_SET_STOPPED, stack, service, false, stopped));
    return store_errctx(s, r, "%s %s/%s", stopped ? "stop" : "start", stack, service);
}

static int bump_restart(struct store *s, const char *stack, const char *service, int64_t *ret_nonce)
{
    int r = check_live_stack(s, stack);
    if (r < 0)
        return r;
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_OVR_BUMP_RESTART);
    if ((r = store_bind_text(s, st, 1, stack)) < 0 ||
        (r = store_bind_text(s, st, 2, service)) < 0 ||
        (r = store_bind_int(s, st, 3, store_now_ms())) < 0)
        return r;
    r = store_step(s, st);
    if (r == 0)
        r = store_err(s, -EIO, "no nonce returned");
    if (r < 0)
        return r;
    *ret_nonce = sqlite3_column_int64(st, 0);
    return store_exec(s, st);
}

int store_bump_restart(struct store *s, const char *stack, const char *service, int64_t *ret_nonce)
{
    int r = check_target(s, stack, service);
    if (r < 0)
        return store_errctx(s, r, "restart %s/%s", stack ? stack : "", service ? service : "");
    struct store_txn t;
    int64_t nonce = 0;
    r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t, bump_restart(s, stack, service, &nonce));
    if (r < 0)
        return store_errctx(s, r, "restart %s/%s", stack, service);
    if (ret_nonce)
        *ret_nonce = nonce;
    return 0;
}

int store_get_overrides(struct store *s, const char *stack, const char *service,
                        struct store_override **ret)
{
    int r = check_target(s, stack, service);
    if (r < 0)
        return store_errctx(s, r, "get overrides");
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_OVR_GET);
    if ((r = store_bind_text(s, st, 1, stack)) >= 0 &&
        (r = store_bind_text(s, st, 2, service)) >= 0)
        r = store_step(s, st);
    if (r == 0)
        r = store_err(s, -ENOENT, "no overrides");
    if (r < 0)
        return store_errctx(s, r, "get overrides %s/%s", stack, service);
    struct store_override *o = calloc(1, sizeof(*o));
    if (!o)
        return store_errctx(s, -ENOMEM, "get overrides %s/%s", stack, service);
    r = read_override(st, o);
    if (r < 0) {
        store_override_free(o);
        return store_errctx(s, r, "get overrides %s/%s", stack, service);
    }
    *ret = o;
    return 0;
}

int store_list_overrides(struct store *s, const char *stack, struct store_override **ret,
                         size_t *ret_n)
{
    int r = store_check_name(s, "stack", stack, false);
    if (r < 0)
        return store_errctx(s, r, "list overrides");
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_OVR_LIST);
    struct store_override *items = NULL;
    size_t n = 0, cap = 0;
    r = store_bind_text(s, st, 1, stack);
    while (r >= 0 && (r = store_step(s, st)) > 0) {
        r = ARRAY_PUSH(&items, &n, &cap) ? 0 : -ENOMEM;
        if (r >= 0)
            r = read_override(st, &items[n - 1]);
    }
    if (r < 0) {
        store_override_array_free(items, n);
        return store_errctx(s, r, "list overrides %s", stack);
    }
    *ret = items;
    *ret_n = n;
    return 0;
}

static int clear_overrides(struct store *s, const char *stack)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_OVR_CLEAR);
    int r = store_bind_text(s, st, 1, stack);
    return r < 0 ? r : store_exec(s, st);
}

int store_clear_overrides(struct store *s, const char *stack)
{
    int r = store_check_name(s, "stack", stack, false);
    if (r < 0)
        return store_errctx(s, r, "clear overrides");
    struct store_txn t;
    r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t, clear_overrides(s, stack));
    return store_errctx(s, r, "clear overrides %s", stack);
}

void store_stack_rev_array_free(struct store_stack_rev *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++) {
        free(a[i].name);
        free(a[i].overrides_rev);
    }
    free(a);
}

int store_list_stack_revisions(struct store *s, struct store_stack_rev **ret, size_t *ret_n)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_STACK_REVISIONS);
    struct store_stack_rev *items = NULL;
    size_t n = 0, cap = 0;
    int r = 0;
    while ((r = store_step(s, st)) > 0) {
        struct store_stack_rev *x = ARRAY_PUSH(&items, &n, &cap);
        if (!x) {
            r = -ENOMEM;
            break;
        }
        x->generation = sqlite3_column_int64(st, 1);
        x->removed = sqlite3_column_int64(st, 2) != 0;
        if ((r = store_col_text(st, 0, &x->name)) < 0 ||
            (r = store_col_text(st, 3, &x->overrides_rev)) < 0)
            break;
    }
    if (r < 0) {
        store_stack_rev_array_free(items, n);
        return store_errctx(s, r, "list stack revisions");
    }
    *ret = items;
    *ret_n = n;
    return 0;
}

/* ---- swarm ---------------------------------------------------------------------------------- */

static const char *const swarm_roles[_STORE_SWARM_ROLE_MAX] = {
    [STORE_SWARM_NONE] = "none",
    [STORE_SWARM_MANAGER] = "manager",
    [STORE_SWARM_WORKER] = "worker",
};

const char *store_swarm_role_to_string(enum store_swarm_role role)
{
    return (unsigned)role < _STORE_SWARM_ROLE_MAX ? swarm_roles[role] : NULL;
}

int store_swarm_role_from_string(const char *v)
{
    for (size_t i = 0; v && i < _STORE_SWARM_ROLE_MAX; i++)
        if (streq(v, swarm_roles[i]))
            return (int)i;
    return -EINVAL;
}

struct store_swarm *store_swarm_free(struct store_swarm *sw)
{
    if (sw) {
        free(sw->join_addrs_json);
        free(sw->join_token);
        free(sw->advertise_addr);
        free(sw->listen_addr);
        free(sw->data_path_addr);
        free(sw->default_addr_pools_json);
        free(sw->source);
        free(sw);
    }
    return NULL;
}

int store_get_swarm(struct store *s, struct store_swarm **ret)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_SWARM_GET);
    int r = store_step(s, st);
    if (r == 0)
        r = store_err(s, -ENOENT, "no desired membership was ever set");
    if (r < 0)
        return store_errctx(s, r, "get swarm");
    struct store_swarm *sw = calloc(1, sizeof(*sw));
    if (!sw)
        return store_errctx(s, -ENOMEM, "get swarm");
    int role = store_swarm_role_from_string((const char *)sqlite3_column_text(st, 0));
    if (role < 0)
        r = store_err(s, -EBADMSG, "unknown role");
    if (r >= 0 && (r = store_col_text(st, 1, &sw->join_addrs_json)) >= 0 &&
        (r = store_col_text(st, 2, &sw->join_token)) >= 0 &&
        (r = store_col_text(st, 3, &sw->advertise_addr)) >= 0 &&
        (r = store_col_text(st, 5, &sw->listen_addr)) >= 0 &&
        (r = store_col_text(st, 6, &sw->data_path_addr)) >= 0 &&
        (r = store_col_text(st, 7, &sw->default_addr_pools_json)) >= 0)
        r = store_col_text(st, 11, &sw->source);
    if (r < 0) {
        store_swarm_free(sw);
        return store_errctx(s, r, "get swarm");
    }
    sw->desired_role = (enum store_swarm_role)role;
    sw->updated_at = sqlite3_column_int64(st, 4);
    sw->subnet_size = (uint32_t)sqlite3_column_int64(st, 8);
    sw->data_path_port = (uint32_t)sqlite3_column_int64(st, 9);
    sw->force = sqlite3_column_int64(st, 10) != 0;
    sw->revision = sqlite3_column_int64(st, 12);
    *ret = sw;
    return 0;
}

static int set_swarm(struct store *s, const struct store_swarm *sw)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_SWARM_SET);
    int r;
    if ((r = store_bind_text(s, st, 1, store_swarm_role_to_string(sw->desired_role))) < 0 ||
        (r = store_bind_text(s, st, 2, sw->join_addrs_json ? sw->join_addrs_json : "[]")) < 0 ||
        (r = store_bind_text(s, st, 3, sw->join_token)) < 0 ||
        (r = store_bind_text(s, st, 4, sw->advertise_addr)) < 0 ||
        (r = store_bind_int(s, st, 5, store_now_ms())) < 0 ||
        (r = store_bind_text(s, st, 6, sw->listen_addr)) < 0 ||
        (r = store_bind_text(s, st, 7, sw->data_path_addr)) < 0 ||
        (r = store_bind_text(
             s, st, 8, sw->default_addr_pools_json ? sw->default_addr_pools_json : "[]")) < 0 ||
        (r = store_bind_int(s, st, 9, sw->subnet_size)) < 0 ||
        (r = store_bind_int(s, st, 10, sw->data_path_port)) < 0 ||
        (r = store_bind_int(s, st, 11, sw->force)) < 0 ||
        (r = store_bind_text(s, st, 12, sw->source)) < 0)
        return r;
    return store_exec(s, st);
}

int store_set_swarm(struct store *s, const struct store_swarm *sw)
{
    int r = 0;
    if (!sw || !store_swarm_role_to_string(sw->desired_role))
        r = store_err(s, -EINVAL, "invalid desired role");
    else if (sw->subnet_size > 32)
        r = store_err(s, -EINVAL, "subnet size %u is not from 0 to 32", sw->subnet_size);
    else if (sw->data_path_port > 65535)
        r = store_err(s, -EINVAL, "data path port %u is not from 0 to 65535", sw->data_path_port);
    if (r >= 0)
        r = store_check_json(s, "join_addrs", sw->join_addrs_json, STORE_TEXT_MAX,
                             STORE_JSON_STRING_ARRAY);
    if (r >= 0)
        r = store_check_json(s, "default_addr_pools", sw->default_addr_pools_json, STORE_TEXT_MAX,
                             STORE_JSON_STRING_ARRAY);
    if (r >= 0)
        r = store_check_text(s, "join_token", sw->join_token, STORE_TEXT_MAX);
    const char *const addrs[][2] = {{"advertise_addr", sw ? sw->advertise_addr : NULL},
                                    {"listen_addr", sw ? sw->listen_addr : NULL},
                                    {"data_path_addr", sw ? sw->data_path_addr : NULL},
                                    {"source", sw ? sw->source : NULL}};
    for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(addrs); i++)
        r = store_check_text(s, addrs[i][0], addrs[i][1], STORE_NAME_MAX);
    if (r < 0)
        return store_errctx(s, r, "set swarm");
    struct store_txn t;
    r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t, set_swarm(s, sw));
    return store_errctx(s, r, "set swarm");
}

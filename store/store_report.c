/* What the agent has to say: apply records, the event ring, the outbox, the latest status of
 * each stack and the latest telemetry sample. The growing tables are bounded here. */
#include "store/store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "lib/util.h"

#define OUTBOX_PEEK_DEFAULT 1000u

/* Rows with ids <= newest - keep go; ids are never reused and only the oldest are deleted. */
static int prune_below(struct store *s, enum store_stmt id, int64_t newest, uint32_t keep)
{
    if (newest <= (int64_t)keep)
        return 0;
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, id);
    int r = store_bind_int(s, st, 1, newest - (int64_t)keep);
    return r < 0 ? r : store_exec(s, st);
}

/* Steps an INSERT ... RETURNING id to the end. */
static int insert_returning(struct store *s, sqlite3_stmt *st, int64_t *ret_id)
{
    int r = store_step(s, st);
    if (r == 0)
        r = store_err(s, -EIO, "no id returned");
    if (r < 0)
        return r;
    *ret_id = sqlite3_column_int64(st, 0);
    return store_exec(s, st);
}

/* ---- applies -------------------------------------------------------------------------------- */

struct store_apply *store_apply_free(struct store_apply *a)
{
    if (a) {
        free(a->stack);
        free(a->result);
        free(a->plan_json);
        free(a);
    }
    return NULL;
}

static int apply_begin(struct store *s, const char *stack, int64_t generation, int64_t *ret_id)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_APPLY_INSERT);
    int64_t id = 0;
    int r;
    if ((r = store_bind_text(s, st, 1, stack)) < 0 ||
        (r = store_bind_int(s, st, 2, generation)) < 0 ||
        (r = store_bind_int(s, st, 3, store_now_ms())) < 0 ||
        (r = insert_returning(s, st, &id)) < 0 ||
        (r = prune_below(s, STMT_APPLY_PRUNE, id, s->limits.applies_max)) < 0)
        return r;
    *ret_id = id;
    return 0;
}

int store_apply_begin(struct store *s, const char *stack, int64_t generation, int64_t *ret_id)
{
    int r = store_check_name(s, "stack", stack, false);
    if (r >= 0 && generation < 0)
        r = store_err(s, -EINVAL, "generation %" PRId64 " is negative", generation);
    if (r < 0)
        return store_errctx(s, r, "begin apply %s", stack ? stack : "");
    struct store_txn t;
    int64_t id = 0;
    r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t, apply_begin(s, stack, generation, &id));
    if (r < 0)
        return store_errctx(s, r, "begin apply %s", stack);
    *ret_id = id;
    return 0;
}

static int apply_finish(struct store *s, int64_t id, const char *result, const char *plan)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_APPLY_FINISH);
    int r;
    if ((r = store_bind_int(s, st, 1, id)) < 0 ||
        (r = store_bind_int(s, st, 2, store_now_ms())) < 0 ||
        (r = store_bind_text(s, st, 3, result)) < 0 || (r = store_bind_text(s, st, 4, plan)) < 0 ||
        (r = store_exec(s, st)) < 0)
        return r;
    if (sqlite3_changes(s->db) == 0)
        return store_err(s, -ENOENT, "no such apply");
    return 0;
}

int store_apply_finish(struct store *s, int64_t id, const char *result, const char *plan_json)
{
    int r = 0;
    if (!result || !*result)
        r = store_err(s, -EINVAL, "result is missing");
    if (r >= 0)
        r = store_check_text(s, "result", result, STORE_TEXT_MAX);
    if (r >= 0)
        r = store_check_json(s, "plan", plan_json, STORE_JSON_MAX, STORE_JSON_ANY);
    if (r < 0)
        return store_errctx(s, r, "finish apply %" PRId64, id);
    struct store_txn t;
    r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t, apply_finish(s, id, result, plan_json));
    return store_errctx(s, r, "finish apply %" PRId64, id);
}

int store_last_apply(struct store *s, const char *stack, struct store_apply **ret)
{
    int r = store_check_name(s, "stack", stack, false);
    if (r < 0)
        return store_errctx(s, r, "last apply");
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_APPLY_LAST);
    r = store_bind_text(s, st, 1, stack);
    if (r >= 0)
        r = store_step(s, st);
    if (r == 0)
        r = store_err(s, -ENOENT, "no apply recorded");
    if (r < 0)
        return store_errctx(s, r, "last apply %s", stack);
    struct store_apply *a = calloc(1, sizeof(*a));
    if (!a)
        return store_errctx(s, -ENOMEM, "last apply %s", stack);
    if ((r = store_col_text(st, 1, &a->stack)) < 0 || (r = store_col_text(st, 5, &a->result)) < 0 ||
        (r = store_col_text(st, 6, &a->plan_json)) < 0) {
        store_apply_free(a);
        return store_errctx(s, r, "last apply %s", stack);
    }
    a->id = sqlite3_column_int64(st, 0);
    a->generation = sqlite3_column_int64(st, 2);
    a->started_at = sqlite3_column_int64(st, 3);
    a->finished_at = sqlite3_column_int64(st, 4);
    *ret = a;
    return 0;
}

/* ---- events -----------------------------------------------------------------------------------
 */

static void event_clear(struct store_event *e)
{
    free(e->stack);
    free(e->object);
    free(e->message);
    memset(e, 0, sizeof(*e));
}

struct store_event *store_event_free(struct store_event *e)
{
    if (e) {
        event_clear(e);
        free(e);
    }
    return NULL;
}

void store_event_array_free(struct store_event *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        event_clear(&a[i]);
    free(a);
}

static int add_event(struct store *s, enum log_level level, const char *stack, const char *object,
                     const char *message, int64_t *ret_id)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_EVENT_INSERT);
    int64_t id = 0;
    int r;
    if ((r = store_bind_int(s, st, 1, store_now_ms())) < 0 ||
        (r = store_bind_text(s, st, 2, log_level_to_string(level))) < 0 ||
        (r = store_bind_text(s, st, 3, stack)) < 0 || (r = store_bind_text(s, st, 4, object)) < 0 ||
        (r = store_bind_text(s, st, 5, message)) < 0 || (r = insert_returning(s, st, &id)) < 0 ||
        (r = prune_below(s, STMT_EVENT_PRUNE, id, s->limits.events_max)) < 0)
        return r;
    *ret_id = id;
    return 0;
}

int store_add_event(struct store *s, enum log_level level, const char *stack, const char *object,
                    const char *message, int64_t *ret_id)
{
    int r = 0;
    if ((unsigned)level > LOG_LEVEL_DEBUG)
        r = store_err(s, -EINVAL, "invalid level %d", (int)level);
    if (r >= 0 && stack)
        r = store_check_name(s, "stack", stack, true);
    if (r >= 0)
        r = store_check_text(s, "object", object, STORE_NAME_MAX);
    if (r >= 0 && !message)
        r = store_err(s, -EINVAL, "message is missing");
    if (r >= 0)
        r = store_check_text(s, "message", message, STORE_EVENT_MESSAGE_MAX);
    if (r < 0)
        return store_errctx(s, r, "add event");
    struct store_txn t;
    int64_t id = 0;
    r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t, add_event(s, level, stack, object, message, &id));
    if (r < 0)
        return store_errctx(s, r, "add event");
    if (ret_id)
        *ret_id = id;
    return 0;
}

static int read_event(sqlite3_stmt *st, struct store_event *e)
{
    int r;
    if ((r = store_col_text(st, 3, &e->stack)) < 0 || (r = store_col_text(st, 4, &e->object)) < 0 ||
        (r = store_col_text(st, 5, &e->message)) < 0)
        return r;
    int level = log_level_from_string((const char *)sqlite3_column_text(st, 2));
    if (level < 0)
        return -EBADMSG;
    e->id = sqlite3_column_int64(st, 0);
    e->ts = sqlite3_column_int64(st, 1);
    e->level = (enum log_level)level;
    return 0;
}

int store_list_events(struct store *s, int64_t since_id, size_t limit, const char *stack,
                      struct store_event **ret, size_t *ret_n)
{
    int r = 0;
    if (since_id < 0 && since_id != STORE_EVENTS_TAIL)
        r = store_err(s, -EINVAL, "since %" PRId64 " is negative", since_id);
    if (r >= 0 && stack)
        r = store_check_name(s, "stack", stack, true);
    if (r < 0)
        return store_errctx(s, r, "list events");
    if (limit == 0 || limit > s->limits.events_max)
        limit = s->limits.events_max;

    bool tail = since_id == STORE_EVENTS_TAIL;
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, tail ? STMT_EVENT_TAIL : STMT_EVENT_LIST);
    if (tail) {
        if ((r = store_bind_text(s, st, 1, stack)) >= 0)
            r = store_bind_int(s, st, 2, (int64_t)limit);
    } else if ((r = store_bind_int(s, st, 1, since_id)) >= 0 &&
               (r = store_bind_text(s, st, 2, stack)) >= 0) {
        r = store_bind_int(s, st, 3, (int64_t)limit);
    }
    struct store_event *items = NULL;
    size_t n = 0, cap = 0;
    while (r >= 0 && (r = store_step(s, st)) > 0) {
        r = ARRAY_PUSH(&items, &n, &cap) ? 0 : -ENOMEM;
        if (r >= 0)
            r = read_event(st, &items[n - 1]);
    }
    if (r < 0) {
        store_event_array_free(items, n);
        return store_errctx(s, r, "list events");
    }
    *ret = items;
    *ret_n = n;
    return 0;
}

/* ---- outbox ------------------------------------------------------------------------------------
 */

static void outbox_msg_clear(struct store_outbox_msg *m)
{
    free(m->topic);
    free(m->key);
    free(m->payload);
    memset(m, 0, sizeof(*m));
}

struct store_outbox_msg *store_outbox_msg_free(struct store_outbox_msg *m)
{
    if (m) {
        outbox_msg_clear(m);
        free(m);
    }
    return NULL;
}

void store_outbox_msg_array_free(struct store_outbox_msg *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        outbox_msg_clear(&a[i]);
    free(a);
}

static int outbox_stats(struct store *s, struct store_outbox_stats *ret)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_OUTBOX_STATS);
    int r = store_step(s, st);
    if (r == 0)
        r = store_err(s, -EIO, "no counters");
    if (r < 0)
        return r;
    *ret = (struct store_outbox_stats){
        .rows = (uint64_t)sqlite3_column_int64(st, 0),
        .bytes = (uint64_t)sqlite3_column_int64(st, 1),
        .dropped = (uint64_t)sqlite3_column_int64(st, 2),
    };
    return 0;
}

/* Deletes the oldest message; its payload size in *ret_len. */
static int outbox_drop_oldest(struct store *s, int64_t keep_id, uint64_t *ret_len)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_OUTBOX_OLDEST);
    int r = store_step(s, st);
    if (r <= 0)
        return r < 0 ? r : store_err(s, -EIO, "outbox counters disagree with its rows");
    int64_t id = sqlite3_column_int64(st, 0);
    if (id == keep_id)
        return store_err(s, -EIO, "outbox counters disagree with its rows");
    *ret_len = (uint64_t)sqlite3_column_int64(st, 1);
    _cleanup_stmt_ sqlite3_stmt *del = store_stmt(s, STMT_OUTBOX_DELETE);
    r = store_bind_int(s, del, 1, id);
    return r < 0 ? r : store_exec(s, del);
}

static int outbox_add(struct store *s, const char *topic, const char *key, const void *payload,
                      size_t len, int64_t *ret_id)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_OUTBOX_INSERT);
    int64_t id = 0;
    int r;
    if ((r = store_bind_text(s, st, 1, topic)) < 0 || (r = store_bind_text(s, st, 2, key)) < 0 ||
        (r = store_bind_blob(s, st, 3, payload, len)) < 0 ||
        (r = store_bind_int(s, st, 4, store_now_ms())) < 0 ||
        (r = insert_returning(s, st, &id)) < 0)
        return r;

    struct store_outbox_stats stats;
    r = outbox_stats(s, &stats);
    if (r < 0)
        return r;
    int64_t dropped = 0;
    while (stats.rows > s->limits.outbox_rows_max || stats.bytes > s->limits.outbox_bytes_max) {
        uint64_t n = 0;
        r = outbox_drop_oldest(s, id, &n);
        if (r < 0)
            return r;
        stats.rows--;
        stats.bytes -= n;
        dropped++;
    }
    if (dropped > 0) {
        _cleanup_stmt_ sqlite3_stmt *c = store_stmt(s, STMT_COUNTER_ADD);
        if ((r = store_bind_text(s, c, 1, "outbox_dropped")) < 0 ||
            (r = store_bind_int(s, c, 2, dropped)) < 0 || (r = store_exec(s, c)) < 0)
            return r;
    }
    *ret_id = id;
    return 0;
}

int store_outbox_add(struct store *s, const char *topic, const char *key, const void *payload,
                     size_t payload_len, int64_t *ret_id)
{
    int r = store_check_name(s, "topic", topic, false);
    if (r >= 0 && key)
        r = store_check_name(s, "key", key, true);
    if (r >= 0 && !payload && payload_len > 0)
        r = store_err(s, -EINVAL, "payload is missing");
    if (r >= 0 && (payload_len > STORE_PAYLOAD_MAX || payload_len > s->limits.outbox_bytes_max))
        r = store_err(s, -EMSGSIZE, "payload is %zu bytes, more than %" PRIu64, payload_len,
                      payload_len > STORE_PAYLOAD_MAX ? (uint64_t)STORE_PAYLOAD_MAX
                                                      : s->limits.outbox_bytes_max);
    if (r < 0)
        return store_errctx(s, r, "outbox add");
    struct store_txn t;
    int64_t id = 0;
    r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t, outbox_add(s, topic, key, payload, payload_len, &id));
    if (r < 0)
        return store_errctx(s, r, "outbox add %s", topic);
    if (ret_id)
        *ret_id = id;
    return 0;
}

int store_outbox_peek(struct store *s, size_t limit, struct store_outbox_msg **ret, size_t *ret_n)
{
    return store_outbox_peek_after(s, 0, NULL, limit, ret, ret_n);
}

int store_outbox_peek_after(struct store *s, int64_t after_id, const char *topic, size_t limit,
                            struct store_outbox_msg **ret, size_t *ret_n)
{
    if (limit == 0)
        limit = OUTBOX_PEEK_DEFAULT;
    if (limit > s->limits.outbox_rows_max)
        limit = s->limits.outbox_rows_max;
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_OUTBOX_PEEK);
    struct store_outbox_msg *items = NULL;
    size_t n = 0, cap = 0;
    int r = store_bind_int(s, st, 1, (int64_t)limit);
    if (r >= 0)
        r = store_bind_int(s, st, 2, after_id);
    if (r >= 0)
        r = store_bind_text(s, st, 3, topic);
    while (r >= 0 && (r = store_step(s, st)) > 0) {
        r = ARRAY_PUSH(&items, &n, &cap) ? 0 : -ENOMEM;
        if (r < 0)
            break;
        struct store_outbox_msg *m = &items[n - 1];
        m->id = sqlite3_column_int64(st, 0);
        m->created_at = sqlite3_column_int64(st, 4);
        if ((r = store_col_text(st, 1, &m->topic)) >= 0 &&
            (r = store_col_text(st, 2, &m->key)) >= 0)
            r = store_col_blob(st, 3, &m->payload, &m->payload_len);
    }
    if (r < 0) {
        store_outbox_msg_array_free(items, n);
        return store_errctx(s, r, "outbox peek");
    }
    *ret = items;
    *ret_n = n;
    return 0;
}

static int outbox_ack(struct store *s, int64_t id)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_OUTBOX_DELETE);
    int r;
    if ((r = store_bind_int(s, st, 1, id)) < 0 || (r = store_exec(s, st)) < 0)
        return r;
    if (sqlite3_changes(s->db) == 0)
        return store_err(s, -ENOENT, "no such message (acked or dropped)");
    return 0;
}

int store_outbox_ack(struct store *s, int64_t id)
{
    struct store_txn t;
    int r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t, outbox_ack(s, id));
    return store_errctx(s, r, "outbox ack %" PRId64, id);
}

int store_outbox_stats(struct store *s, struct store_outbox_stats *ret)
{
    return store_errctx(s, outbox_stats(s, ret), "outbox stats");
}

/* ---- stack status ------------------------------------------------------------------------------
 */

static const char *const stack_states[_STORE_STATE_MAX] = {
    [STORE_STATE_PENDING] = "pending",     [STORE_STATE_PROGRESSING] = "progressing",
    [STORE_STATE_CONVERGED] = "converged", [STORE_STATE_DEGRADED] = "degraded",
    [STORE_STATE_FAILED] = "failed",       [STORE_STATE_REMOVED] = "removed",
};

const char *store_stack_state_to_string(enum store_stack_state state)
{
    return (unsigned)state < _STORE_STATE_MAX ? stack_states[state] : NULL;
}

int store_stack_state_from_string(const char *v)
{
    for (size_t i = 0; v && i < _STORE_STATE_MAX; i++)
        if (streq(v, stack_states[i]))
            return (int)i;
    return -EINVAL;
}

static void status_clear(struct store_stack_status *x)
{
    free(x->stack);
    free(x->reason);
    free(x->services_json);
    memset(x, 0, sizeof(*x));
}

struct store_stack_status *store_stack_status_free(struct store_stack_status *x)
{
    if (x) {
        status_clear(x);
        free(x);
    }
    return NULL;
}

void store_stack_status_array_free(struct store_stack_status *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        status_clear(&a[i]);
    free(a);
}

static int read_status(sqlite3_stmt *st, struct store_stack_status *x)
{
    int r;
    if ((r = store_col_text(st, 0, &x->stack)) < 0 || (r = store_col_text(st, 2, &x->reason)) < 0 ||
        (r = store_col_text(st, 3, &x->services_json)) < 0)
        return r;
    int state = store_stack_state_from_string((const char *)sqlite3_column_text(st, 1));
    if (state < 0)
        return -EBADMSG;
    x->state = (enum store_stack_state)state;
    x->updated_at = sqlite3_column_int64(st, 4);
    return 0;
}

static int set_status(struct store *s, const struct store_stack_status *x)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_STATUS_SET);
    int r;
    if ((r = store_bind_text(s, st, 1, x->stack)) < 0 ||
        (r = store_bind_text(s, st, 2, store_stack_state_to_string(x->state))) < 0 ||
        (r = store_bind_text(s, st, 3, x->reason)) < 0 ||
        (r = store_bind_text(s, st, 4, x->services_json)) < 0 ||
        (r = store_bind_int(s, st, 5, store_now_ms())) < 0)
        return r;
    return store_exec(s, st);
}

int store_set_stack_status(struct store *s, const struct store_stack_status *x)
{
    int r = store_check_name(s, "stack", x ? x->stack : NULL, false);
    if (r >= 0 && !store_stack_state_to_string(x->state))
        r = store_err(s, -EINVAL, "invalid state %d", (int)x->state);
    if (r >= 0)
        r = store_check_text(s, "reason", x->reason, STORE_TEXT_MAX);
    if (r >= 0)
        r = store_check_json(s, "services", x->services_json, STORE_JSON_MAX, STORE_JSON_ANY);
    if (r < 0)
        return store_errctx(s, r, "set status %s", x && x->stack ? x->stack : "");
    struct store_txn t;
    r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t, set_status(s, x));
    return store_errctx(s, r, "set status %s", x->stack);
}

int store_get_stack_status(struct store *s, const char *stack, struct store_stack_status **ret)
{
    int r = store_check_name(s, "stack", stack, false);
    if (r < 0)
        return store_errctx(s, r, "get status");
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_STATUS_GET);
    r = store_bind_text(s, st, 1, stack);
    if (r >= 0)
        r = store_step(s, st);
    if (r == 0)
        r = store_err(s, -ENOENT, "no status");
    if (r < 0)
        return store_errctx(s, r, "get status %s", stack);
    struct store_stack_status *x = calloc(1, sizeof(*x));
    if (!x)
        return store_errctx(s, -ENOMEM, "get status %s", stack);
    r = read_status(st, x);
    if (r < 0) {
        store_stack_status_free(x);
        return store_errctx(s, r, "get status %s", stack);
    }
    *ret = x;
    return 0;
}

int store_list_stack_status(struct store *s, struct store_stack_status **ret, size_t *ret_n)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_STATUS_LIST);
    struct store_stack_status *items = NULL;
    size_t n = 0, cap = 0;
    int r;
    while ((r = store_step(s, st)) > 0) {
        r = ARRAY_PUSH(&items, &n, &cap) ? 0 : -ENOMEM;
        if (r >= 0)
            r = read_status(st, &items[n - 1]);
        if (r < 0)
            break;
    }
    if (r < 0) {
        store_stack_status_array_free(items, n);
        return store_errctx(s, r, "list status");
    }
    *ret = items;
    *ret_n = n;
    return 0;
}

static int delete_status(struct store *s, const char *stack)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_STATUS_DELETE);
    int r;
    if ((r = store_bind_text(s, st, 1, stack)) < 0 || (r = store_exec(s, st)) < 0)
        return r;
    if (sqlite3_changes(s->db) == 0)
        return store_err(s, -ENOENT, "no status");
    return 0;
}

int store_delete_stack_status(struct store *s, const char *stack)
{
    int r = store_check_name(s, "stack", stack, false);
    if (r < 0)
        return store_errctx(s, r, "delete status");
    struct store_txn t;
    r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t, delete_status(s, stack));
    return store_errctx(s, r, "delete status %s", stack);
}

/* ---- telemetry
 * ----------------------------------------------------------------------------------- */

static int put_telemetry(struct store *s, int64_t ts, const void *payload, size_t len)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_TELEMETRY_PUT);
    int r;
    if ((r = store_bind_int(s, st, 1, ts)) < 0 || (r = store_bind_blob(s, st, 2, payload, len)) < 0)
        return r;
    return store_exec(s, st);
}

int store_put_telemetry(struct store *s, int64_t ts, const void *payload, size_t payload_len)
{
    int r = 0;
    if (!payload && payload_len > 0)
        r = store_err(s, -EINVAL, "payload is missing");
    if (r >= 0 && payload_len > STORE_TELEMETRY_MAX)
        r = store_err(s, -EMSGSIZE, "sample is %zu bytes, more than %u", payload_len,
                      STORE_TELEMETRY_MAX);
    if (r < 0)
        return store_errctx(s, r, "put telemetry");
    struct store_txn t;
    r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t, put_telemetry(s, ts, payload, payload_len));
    return store_errctx(s, r, "put telemetry");
}

int store_get_telemetry(struct store *s, int64_t *ret_ts, void **ret_payload, size_t *ret_len)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_TELEMETRY_GET);
    int r = store_step(s, st);
    if (r == 0)
        r = store_err(s, -ENOENT, "no sample stored");
    if (r < 0)
        return store_errctx(s, r, "get telemetry");
    void *p = NULL;
    size_t n = 0;
    r = store_col_blob(st, 1, &p, &n);
    if (r < 0)
        return store_errctx(s, r, "get telemetry");
    *ret_ts = sqlite3_column_int64(st, 0);
    *ret_payload = p;
    *ret_len = n;
    return 0;
}

/* ---- agent state --------------------------------------------------------------------------- */

static int put_state(struct store *s, const char *key, const char *json)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_STATE_PUT);
    int r;
    if ((r = store_bind_text(s, st, 1, key)) < 0 || (r = store_bind_text(s, st, 2, json)) < 0 ||
        (r = store_bind_int(s, st, 3, store_now_ms())) < 0)
        return r;
    return store_exec(s, st);
}

int store_put_state(struct store *s, const char *key, const char *json)
{
    int r = store_check_name(s, "key", key, false);
    if (r >= 0 && !json)
        r = store_err(s, -EINVAL, "value is missing");
    if (r >= 0)
        r = store_check_json(s, "value", json, STORE_STATE_VALUE_MAX, STORE_JSON_ANY);
    if (r < 0)
        return store_errctx(s, r, "put state %s", key ? key : "");
    struct store_txn t;
    r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t, put_state(s, key, json));
    return store_errctx(s, r, "put state %s", key);
}

static int delete_state(struct store *s, const char *key)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_STATE_DELETE);
    int r;
    if ((r = store_bind_text(s, st, 1, key)) < 0 || (r = store_exec(s, st)) < 0)
        return r;
    return sqlite3_changes(s->db) ? 0 : store_err(s, -ENOENT, "no such key");
}

int store_delete_state(struct store *s, const char *key)
{
    int r = store_check_name(s, "key", key, false);
    if (r < 0)
        return store_errctx(s, r, "delete state");
    struct store_txn t;
    r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t, delete_state(s, key));
    return store_errctx(s, r, "delete state %s", key);
}

void store_state_array_free(struct store_state *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].key);
        free(v[i].value);
    }
    free(v);
}

int store_list_state(struct store *s, const char *prefix, struct store_state **ret, size_t *ret_n)
{
    int r = store_check_text(s, "prefix", prefix ? prefix : "", STORE_NAME_MAX);
    if (r < 0)
        return store_errctx(s, r, "list state");
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_STATE_LIST);
    struct store_state *v = NULL;
    size_t n = 0, cap = 0;
    r = store_bind_text(s, st, 1, prefix ? prefix : "");
    while (r >= 0 && (r = store_step(s, st)) > 0) {
        struct store_state *x = ARRAY_PUSH(&v, &n, &cap);
        if (!x) {
            r = -ENOMEM;
            break;
        }
        if ((r = store_col_text(st, 0, &x->key)) < 0 || (r = store_col_text(st, 1, &x->value)) < 0)
            break;
        x->updated_at = sqlite3_column_int64(st, 2);
    }
    if (r < 0) {
        store_state_array_free(v, n);
        return store_errctx(s, r, "list state");
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

/* Intake bookkeeping: the command dedupe log and the Kafka offsets, both written in the same
 * transaction as the desired-state change they carried. */
#include "store/store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "lib/util.h"

/* ---- commands --------------------------------------------------------------------------- */

static const char *const command_statuses[_STORE_COMMAND_STATUS_MAX] = {
    [STORE_COMMAND_RECEIVED] = "received",
    [STORE_COMMAND_ACCEPTED] = "accepted",
    [STORE_COMMAND_APPLIED] = "applied",
    [STORE_COMMAND_FAILED] = "failed",
    [STORE_COMMAND_SUPERSEDED] = "superseded",
    [STORE_COMMAND_REJECTED] = "rejected",
    [STORE_COMMAND_STILL_CONVERGING] = "still_converging",
    [STORE_COMMAND_CANCELLED] = "cancelled",
};

const char *store_command_status_to_string(enum store_command_status status)
{
    return (unsigned)status < _STORE_COMMAND_STATUS_MAX ? command_statuses[status] : NULL;
}

int store_command_status_from_string(const char *v)
{
    for (size_t i = 0; v && i < _STORE_COMMAND_STATUS_MAX; i++)
        if (streq(v, command_statuses[i]))
            return (int)i;
    return -EINVAL;
}

static void command_clear(struct store_command *c)
{
    free(c->command_id);
    free(c->source);
    free(c->kind);
    free(c->stack);
    free(c->error);
    memset(c, 0, sizeof(*c));
}

struct store_command *store_command_free(struct store_command *c)
{
    if (c) {
        command_clear(c);
        free(c);
    }
    return NULL;
}

void store_command_array_free(struct store_command *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        command_clear(&a[i]);
    free(a);
}

static int read_command(sqlite3_stmt *st, struct store_command *c)
{
    int r;
    if ((r = store_col_text(st, 0, &c->command_id)) < 0 ||
        (r = store_col_text(st, 1, &c->source)) < 0 || (r = store_col_text(st, 2, &c->kind)) < 0 ||
        (r = store_col_text(st, 3, &c->stack)) < 0 || (r = store_col_text(st, 6, &c->error)) < 0)
        return r;
    int status = store_command_status_from_string((const char *)sqlite3_column_text(st, 5));
    if (status < 0)
        return -EBADMSG;
    c->status = (enum store_command_status)status;
    c->received_at = sqlite3_column_int64(st, 4);
    c->updated_at = sqlite3_column_int64(st, 7);
    c->generation = sqlite3_column_int64(st, 8);
    return 0;
}

static int record_command(struct store *s, const struct store_command *c)
{
    int64_t now = store_now_ms();
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_CMD_INSERT);
    int r;
    if ((r = store_bind_text(s, st, 1, c->command_id)) < 0 ||
        (r = store_bind_text(s, st, 2, c->source)) < 0 ||
        (r = store_bind_text(s, st, 3, c->kind)) < 0 ||
        (r = store_bind_text(s, st, 4, c->stack)) < 0 ||
        (r = store_bind_int(s, st, 5, c->received_at ? c->received_at : now)) < 0 ||
        (r = store_bind_text(s, st, 6, store_command_status_to_string(c->status))) < 0 ||
        (r = store_bind_text(s, st, 7, c->error)) < 0 || (r = store_bind_int(s, st, 8, now)) < 0 ||
        (c->generation && (r = store_bind_int(s, st, 9, c->generation)) < 0) ||
        (r = store_exec(s, st)) < 0)
        return r;
    if (sqlite3_changes(s->db) == 0)
        return store_err(s, -EEXIST, "already recorded");

    _cleanup_stmt_ sqlite3_stmt *prune = store_stmt(s, STMT_CMD_PRUNE);
    r = store_bind_int(s, prune, 1, s->limits.commands_max);
    return r < 0 ? r : store_exec(s, prune);
}

int store_record_command(struct store *s, const struct store_command *c)
{
    int r = store_check_name(s, "command id", c ? c->command_id : NULL, false);
    if (r >= 0)
        r = store_check_name(s, "source", c->source, false);
    if (r >= 0)
        r = store_check_name(s, "kind", c->kind, false);
    if (r >= 0 && c->stack)
        r = store_check_name(s, "stack", c->stack, true);
    if (r >= 0 && !store_command_status_to_string(c->status))
        r = store_err(s, -EINVAL, "invalid status %d", (int)c->status);
    if (r >= 0)
        r = store_check_text(s, "error", c->error, STORE_TEXT_MAX);
    if (r >= 0 && c->generation < 0)
        r = store_err(s, -EINVAL, "generation %" PRId64 " is negative", c->generation);
    if (r < 0)
        return store_errctx(s, r, "record command %s", c && c->command_id ? c->command_id : "");
    struct store_txn t;
    r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t, record_command(s, c));
    return store_errctx(s, r, "record command %s", c->command_id);
}

int store_get_command(struct store *s, const char *id, struct store_command **ret)
{
    int r = store_check_name(s, "command id", id, false);
    if (r < 0)
        return store_errctx(s, r, "get command");
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_CMD_GET);
    r = store_bind_text(s, st, 1, id);
    if (r >= 0)
        r = store_step(s, st);
    if (r == 0)
        r = store_err(s, -ENOENT, "no such command");
    if (r < 0)
        return store_errctx(s, r, "get command %s", id);
    struct store_command *c = calloc(1, sizeof(*c));
    if (!c)
        return store_errctx(s, -ENOMEM, "get command %s", id);
    r = read_command(st, c);
    if (r < 0) {
        store_command_free(c);
        return store_errctx(s, r, "get command %s", id);
    }
    *ret = c;
    return 0;
}

int store_command_status(struct store *s, const char *id, enum store_command_status *ret_status)
{
    struct store_command *c = NULL;
    int r = store_get_command(s, id, &c);
    if (r < 0)
        return r;
    *ret_status = c->status;
    store_command_free(c);
    return 0;
}

static int update_command(struct store *s, const char *id, enum store_command_status status,
                          const char *error)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_CMD_UPDATE);
    int r;
    if ((r = store_bind_text(s, st, 1, id)) < 0 ||
        (r = store_bind_text(s, st, 2, store_command_status_to_string(status))) < 0 ||
        (r = store_bind_text(s, st, 3, error)) < 0 ||
        (r = store_bind_int(s, st, 4, store_now_ms())) < 0 || (r = store_exec(s, st)) < 0)
        return r;
    if (sqlite3_changes(s->db) == 0)
        return store_err(s, -ENOENT, "no such command");
    return 0;
}

int store_update_command(struct store *s, const char *id, enum store_command_status status,
                         const char *error)
{
    int r = store_check_name(s, "command id", id, false);
    if (r >= 0 && !store_command_status_to_string(status))
        r = store_err(s, -EINVAL, "invalid status %d", (int)status);
    if (r >= 0)
        r = store_check_text(s, "error", error, STORE_TEXT_MAX);
    if (r < 0)
        return store_errctx(s, r, "update command %s", id ? id : "");
    struct store_txn t;
    r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t, update_command(s, id, status, error));
    return store_errctx(s, r, "update command %s", id);
}

int store_list_commands(struct store *s, size_t limit, struct store_command **ret, size_t *ret_n)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_CMD_LIST);
    struct store_command *items = NULL;
    size_t n = 0, cap = 0;
    int r = store_bind_int(s, st, 1, limit && limit < INT64_MAX ? (int64_t)limit : -1);
    while (r >= 0 && (r = store_step(s, st)) > 0) {
        r = ARRAY_PUSH(&items, &n, &cap) ? 0 : -ENOMEM;
        if (r >= 0)
            r = read_command(st, &items[n - 1]);
    }
    if (r < 0) {
        store_command_array_free(items, n);
        return store_errctx(s, r, "list commands");
    }
    *ret = items;
    *ret_n = n;
    return 0;
}

/* ---- offsets ------------------------------------------------------------------------------- */

int store_get_offset(struct store *s, const char *topic, int32_t partition,
                     int64_t *ret_next_offset)
{
    int r = store_check_name(s, "topic", topic, false);
    if (r < 0)
        return store_errctx(s, r, "get offset");
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_OFFSET_GET);
    if ((r = store_bind_text(s, st, 1, topic)) >= 0 &&
        (r = store_bind_int(s, st, 2, partition)) >= 0)
        r = store_step(s, st);
    if (r == 0)
        r = store_err(s, -ENOENT, "no offset stored");
    if (r < 0)
        return store_errctx(s, r, "get offset %s/%" PRId32, topic, partition);
    *ret_next_offset = sqlite3_column_int64(st, 0);
    return 0;
}

static int put_offset(struct store *s, const char *topic, int32_t partition, int64_t next)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_OFFSET_PUT);
    int r;
    if ((r = store_bind_text(s, st, 1, topic)) < 0 ||
        (r = store_bind_int(s, st, 2, partition)) < 0 || (r = store_bind_int(s, st, 3, next)) < 0 ||
        (r = store_bind_int(s, st, 4, store_now_ms())) < 0)
        return r;
    return store_exec(s, st);
}

int store_put_offset(struct store *s, const char *topic, int32_t partition, int64_t next_offset)
{
    int r = store_check_name(s, "topic", topic, false);
    if (r >= 0 && partition < 0)
        r = store_err(s, -EINVAL, "partition %" PRId32 " is negative", partition);
    if (r >= 0 && next_offset < 0)
        r = store_err(s, -EINVAL, "offset %" PRId64 " is negative", next_offset);
    if (r < 0)
        return store_errctx(s, r, "put offset %s/%" PRId32, topic ? topic : "", partition);
    struct store_txn t;
    r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t, put_offset(s, topic, partition, next_offset));
    return store_errctx(s, r, "put offset %s/%" PRId32, topic, partition);
}

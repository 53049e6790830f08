/* Shared by the store's own .c files only: the connection, the prepared statements, the
 * transaction and error helpers. Nothing outside store/ includes this. */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/seal.h"
#include "store/store.h"

/* PRAGMA application_id of an axion-agent store: "AXN1". */
#define STORE_APPLICATION_ID 0x41584e31

/* Every statement the store runs after open, prepared once (store_sql.c holds the text). */
enum store_stmt {
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_SAVEPOINT,
    STMT_RELEASE,
    STMT_ROLLBACK_TO,
    STMT_DATA_VERSION,
    STMT_QUICK_CHECK,

    STMT_STACK_GEN,
    STMT_STACK_UPSERT,
    STMT_STACK_MARK_REMOVED,
    STMT_STACK_GET,
    STMT_STACK_LIST,
    STMT_STACK_LIST_SUMMARY,
    STMT_STACK_GET_SUMMARY,
    STMT_STACK_DELETE,
    STMT_FILES_CLEAR,
    STMT_FILES_INSERT,
    STMT_FILES_LIST,
    STMT_FILES_PLAIN,
    STMT_FILES_RESEAL,

    STMT_OVR_SET_REPLICAS,
    STMT_OVR_SET_STOPPED,
    STMT_OVR_BUMP_RESTART,
    STMT_OVR_GET,
    STMT_OVR_LIST,
    STMT_OVR_CLEAR,
    STMT_STACK_REVISIONS,

    STMT_CMD_INSERT,
    STMT_CMD_PRUNE,
    STMT_CMD_GET,
    STMT_CMD_UPDATE,
    STMT_CMD_LIST,

    STMT_OFFSET_GET,
    STMT_OFFSET_PUT,

    STMT_SWARM_GET,
    STMT_SWARM_SET,

    STMT_APPLY_INSERT,
    STMT_APPLY_PRUNE,
    STMT_APPLY_FINISH,
    STMT_APPLY_LAST,

    STMT_EVENT_INSERT,
    STMT_EVENT_PRUNE,
    STMT_EVENT_LIST,
    STMT_EVENT_TAIL,

    STMT_OUTBOX_INSERT,
    STMT_OUTBOX_OLDEST,
    STMT_OUTBOX_DELETE,
    STMT_OUTBOX_PEEK,
    STMT_OUTBOX_STATS,
    STMT_COUNTER_ADD,

    STMT_STATUS_SET,
    STMT_STATUS_GET,
    STMT_STATUS_LIST,
    STMT_STATUS_DELETE,

    STMT_TELEMETRY_PUT,
    STMT_TELEMETRY_GET,

    STMT_STATE_PUT,
    STMT_STATE_LIST,
    STMT_STATE_DELETE,

    STMT_IDENTITY_GET,
    STMT_IDENTITY_PUT,
    STMT_IDENTITY_DELETE,

    _STMT_MAX,
};

struct store {
    sqlite3 *db;
    char *path;
    char *key_path; /* the sealing key beside the file (store_seal.c) */
    uint8_t key[SEAL_KEY_BYTES];
    bool has_key;
    sqlite3_stmt *stmt[_STMT_MAX];
    struct store_limits limits;
    bool in_tx; /* inside store_begin() */
    char errmsg[1024];
};

/* store_sql.c */
extern const char *const store_sql[_STMT_MAX];
extern const char *const store_migrations[];
extern const size_t store_n_migrations;

/* store.c: time, errors */
int64_t store_now_ms(void);
int store_errno_from_sqlite(int rc);
/* Sets the message and returns r. */
int store_err(struct store *s, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Takes the connection's message for the SQLite result rc; returns its negative errno. */
int store_sqlerr(struct store *s, int rc);
/* When r < 0, prefixes the message with a context ("put stack web: "); returns r. */
int store_errctx(struct store *s, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A statement ready for binding; reset it (store_stmt_resetp) when done. */
sqlite3_stmt *store_stmt(struct store *s, enum store_stmt id);
void store_stmt_resetp(sqlite3_stmt **st);
#define _cleanup_stmt_ __attribute__((cleanup(store_stmt_resetp)))
/* One step: 1 for a row, 0 when done, or a negative errno (message set). */
int store_step(struct store *s, sqlite3_stmt *st);
/* Steps a statement that returns no rows (or ignores them) to the end. */
int store_exec(struct store *s, sqlite3_stmt *st);

int store_bind_text(struct store *s, sqlite3_stmt *st, int i, const char *v);
int store_bind_blob(struct store *s, sqlite3_stmt *st, int i, const void *v, size_t n);
int store_bind_int(struct store *s, sqlite3_stmt *st, int i, int64_t v);

/* Copies a column: NULL for SQL NULL, -ENOMEM when out of memory. */
int store_col_text(sqlite3_stmt *st, int i, char **ret);
/* Copies a blob (NUL-terminated one past the end); NULL/0 for SQL NULL. */
int store_col_blob(sqlite3_stmt *st, int i, void **ret, size_t *ret_len);

/* store.c: a file made by root in a directory another user owns is given to that user (the
 * daemon runs as that user; SQLite does the same for its -wal and -shm). */
void store_give_to_dir_owner(int fd, const char *path);

/* store_seal.c: the key beside the store and the sealing of stack files. */
/* Loads <path without .db>.key; creates it (0600, random) unless flags has STORE_OPEN_EXISTING,
 * where a missing key leaves the store without one (sealed files then do not open). */
int store_key_load(struct store *s, unsigned flags, char *err, size_t errlen);
/* Seals a file of stack: *ret (malloc'ed) holds the sealed bytes. -ENOKEY without a key. */
int store_seal_file(struct store *s, const char *stack, const char *name, const void *data,
                    size_t len, void **ret, size_t *ret_len);
/* Opens a sealed file: *ret (malloc'ed, NUL one past the end). -ENOKEY without a key,
 * -EKEYREJECTED when this key does not open it; the message says which file and why. */
int store_unseal_file(struct store *s, const char *stack, const char *name, const void *blob,
                      size_t len, void **ret, size_t *ret_len);
/* A secret kept in a TEXT column (the swarm's join token): "axion-sealed:1:" and the base64
 * of its sealed bytes, bound to what (the column). store_unseal_text() takes a value without
 * the prefix (written before sealing) as it is. NULL stays NULL. */
int store_seal_text(struct store *s, const char *what, const char *plain, char **ret);
int store_unseal_text(struct store *s, const char *what, const char *stored, char **ret);
/* Seals the files an older schema left as they were; a store that cannot be written keeps
 * them (logged). */
void store_seal_plain_files(struct store *s);

/* Each writing function runs between these: BEGIN IMMEDIATE/COMMIT on its own, or a
 * savepoint inside store_begin(). store_txn_end() commits when r >= 0, rolls back otherwise,
 * and returns r (or the commit's error). */
struct store_txn {
    bool savepoint;
};
int store_txn_begin(struct store *s, struct store_txn *t);
int store_txn_end(struct store *s, struct store_txn *t, int r);

/* Argument checks that set the message: NULL/empty/too long names, texts and JSON. */
int store_check_name(struct store *s, const char *what, const char *v, bool allow_empty);
int store_check_text(struct store *s, const char *what, const char *v, size_t max);
enum store_json_kind {
    STORE_JSON_ANY,
    STORE_JSON_STRING_OBJECT, /* {"k": "v", ...} */
    STORE_JSON_STRING_ARRAY,  /* ["a", ...] */
};
int store_check_json(struct store *s, const char *what, const char *v, size_t max,
                     enum store_json_kind kind);

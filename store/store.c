/* The store's connection: open (file mode, checks, corruption handling, pragmas, migrations,
 * prepared statements), close, transactions, and the small helpers the table files share. */
#include "store/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

/* The WAL is truncated back to this after a checkpoint (bytes). */
#define JOURNAL_SIZE_LIMIT "33554432"

/* ---- time, errors ---------------------------------------------------------------------- */

int64_t store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int store_errno_from_sqlite(int rc)
{
    switch (rc) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
        return -EEXIST;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return -ENOENT;
    default:
        break;
    }
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_INTERRUPT:
        return -EINTR;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return -EBADMSG;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_CANTOPEN:
        return -ENOENT;
    case SQLITE_TOOBIG:
        return -EMSGSIZE;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
        return -EINVAL;
    case SQLITE_SCHEMA:
        return -EAGAIN;
    default:
        return -EIO;
    }
}

static void vformat(char *dst, size_t n, const char *fmt, va_list ap)
{
    if (!dst || n == 0)
        return;
    int k = vsnprintf(dst, n, fmt, ap);
    if (k < 0)
        dst[0] = '\0';
}

static void format(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void format(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vformat(dst, n, fmt, ap);
    va_end(ap);
}

int store_err(struct store *s, int r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vformat(s->errmsg, sizeof(s->errmsg), fmt, ap);
    va_end(ap);
    return r;
}

int store_sqlerr(struct store *s, int rc)
{
    int r = store_errno_from_sqlite(rc);
    if (r == 0)
        r = -EIO;
    format(s->errmsg, sizeof(s->errmsg), "%s", sqlite3_errmsg(s->db));
    return r;
}

int store_errctx(struct store *s, int r, const char *fmt, ...)
{
    if (r >= 0)
        return r;
    char ctx[512], old[sizeof(s->errmsg)];
    va_list ap;
    va_start(ap, fmt);
    vformat(ctx, sizeof(ctx), fmt, ap);
    va_end(ap);
    memcpy(old, s->errmsg, sizeof(old));
    if (old[0])
        format(s->errmsg, sizeof(s->errmsg), "%s: %s", ctx, old);
    else
        format(s->errmsg, sizeof(s->errmsg), "%s: %s", ctx, strerror(-r));
    return r;
}

const char *store_errmsg(const struct store *s)
{
    return s ? s->errmsg : "no store";
}

const char *store_path(const struct store *s)
{
    return s->path;
}

int store_schema_version(void)
{
    return (int)store_n_migrations;
}

/* ---- statements -------------------------------------------------------------------------- */

sqlite3_stmt *store_stmt(struct store *s, enum store_stmt id)
{
    s->errmsg[0] = '\0';
    return s->stmt[id];
}

void store_stmt_resetp(sqlite3_stmt **st)
{
    if (!*st)
        return;
    sqlite3_reset(*st);
    sqlite3_clear_bindings(*st);
}

int store_step(struct store *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return store_sqlerr(s, rc);
}

int store_exec(struct store *s, sqlite3_stmt *st)
{
    int r;
    while ((r = store_step(s, st)) > 0)
        ;
    return r;
}

static int bind_result(struct store *s, int rc)
{
    return rc == SQLITE_OK ? 0 : store_sqlerr(s, rc);
}

int store_bind_text(struct store *s, sqlite3_stmt *st, int i, const char *v)
{
    if (!v)
        return bind_result(s, sqlite3_bind_null(st, i));
    return bind_result(s, sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC));
}

int store_bind_blob(struct store *s, sqlite3_stmt *st, int i, const void *v, size_t n)
{
    /* A NULL pointer would bind SQL NULL: an empty blob needs a non-NULL one. */
    return bind_result(s, sqlite3_bind_blob64(st, i, n ? v : "", n, SQLITE_STATIC));
}

int store_bind_int(struct store *s, sqlite3_stmt *st, int i, int64_t v)
{
    return bind_result(s, sqlite3_bind_int64(st, i, v));
}

int store_col_text(sqlite3_stmt *st, int i, char **ret)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
        *ret = NULL;
        return 0;
    }
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t)
        return -ENOMEM;
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    char *c = malloc(n + 1);
    if (!c)
        return -ENOMEM;
    memcpy(c, t, n);
    c[n] = '\0';
    *ret = c;
    return 0;
}

int store_col_blob(sqlite3_stmt *st, int i, void **ret, size_t *ret_len)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
        *ret = NULL;
        *ret_len = 0;
        return 0;
    }
    const void *b = sqlite3_column_blob(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    if (!b && n > 0)
        return -ENOMEM;
    char *c = malloc(n + 1);
    if (!c)
        return -ENOMEM;
    if (n)
        memcpy(c, b, n);
    c[n] = '\0';
    *ret = c;
    *ret_len = n;
    return 0;
}

/* ---- argument checks -------------------------------------------------------------------- */

int store_check_name(struct store *s, const char *what, const char *v, bool allow_empty)
{
    if (!v)
        return store_err(s, -EINVAL, "%s is missing", what);
    if (!allow_empty && !*v)
        return store_err(s, -EINVAL, "%s is empty", what);
    size_t n = strnlen(v, STORE_NAME_MAX + 1);
    if (n > STORE_NAME_MAX)
        return store_err(s, -EMSGSIZE, "%s is longer than %u bytes", what, STORE_NAME_MAX);
    return 0;
}

int store_check_text(struct store *s, const char *what, const char *v, size_t max)
{
    if (v && strnlen(v, max + 1) > max)
        return store_err(s, -EMSGSIZE, "%s is longer than %zu bytes", what, max);
    return 0;
}

int store_check_json(struct store *s, const char *what, const char *v, size_t max,
                     enum store_json_kind kind)
{
    if (!v)
        return 0;
    size_t n = strnlen(v, max + 1);
    if (n > max)
        return store_err(s, -EMSGSIZE, "%s is longer than %zu bytes", what, max);
    json_error_t e;
    json_t *j = json_loadb(v, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
    if (!j)
        return store_err(s, -EINVAL, "%s: invalid JSON at %d:%d: %s", what, e.line, e.column,
                         e.text);
    int r = 0;
    if (kind == STORE_JSON_STRING_OBJECT) {
        const char *k;
        json_t *val;
        if (!json_is_object(j))
            r = store_err(s, -EINVAL, "%s: expected a JSON object", what);
        else
            json_object_foreach(j, k, val) if (!json_is_string(val))
            {
                r = store_err(s, -EINVAL, "%s: \"%s\": expected a string", what, k);
                break;
            }
    } else if (kind == STORE_JSON_STRING_ARRAY) {
        size_t i;
        json_t *val;
        if (!json_is_array(j))
            r = store_err(s, -EINVAL, "%s: expected a JSON array", what);
        else
            json_array_foreach(j, i, val) if (!json_is_string(val))
            {
                r = store_err(s, -EINVAL, "%s: [%zu]: expected a string", what, i);
                break;
            }
    }
    json_decref(j);
    return r;
}

/* ---- transactions ------------------------------------------------------------------------ */

static int run(struct store *s, enum store_stmt id)
{
    _cleanup_stmt_ sqlite3_stmt *st = s->stmt[id];
    return store_exec(s, st);
}

/* An error inside store_begin() may have made SQLite roll the whole transaction back. */
static bool tx_lost(struct store *s)
{
    return s->in_tx && sqlite3_get_autocommit(s->db);
}

int store_txn_begin(struct store *s, struct store_txn *t)
{
    if (tx_lost(s))
        return store_err(s, -ECANCELED,
                         "the transaction was rolled back by an earlier error; roll back");
    t->savepoint = s->in_tx;
    return run(s, t->savepoint ? STMT_SAVEPOINT : STMT_BEGIN);
}

int store_txn_end(struct store *s, struct store_txn *t, int r)
{
    if (r >= 0) {
        int k = run(s, t->savepoint ? STMT_RELEASE : STMT_COMMIT);
        if (k >= 0)
            return r;
        r = k;
    }
    /* Keep the first error's message: the rollback's own can only be worse news. */
    char msg[sizeof(s->errmsg)];
    memcpy(msg, s->errmsg, sizeof(msg));
    if (t->savepoint) {
        if (!sqlite3_get_autocommit(s->db)) {
            run(s, STMT_ROLLBACK_TO);
            run(s, STMT_RELEASE);
        }
    } else if (!sqlite3_get_autocommit(s->db)) {
        run(s, STMT_ROLLBACK);
    }
    memcpy(s->errmsg, msg, sizeof(msg));
    return r;
}

int store_begin(struct store *s)
{
    s->errmsg[0] = '\0';
    if (s->in_tx)
        return store_err(s, -EALREADY, "begin: a transaction is already open");
    int r = run(s, STMT_BEGIN);
    if (r < 0)
        return store_errctx(s, r, "begin");
    s->in_tx = true;
    return 0;
}

int store_commit(struct store *s)
{
    s->errmsg[0] = '\0';
    if (!s->in_tx)
        return store_err(s, -EINVAL, "commit: no transaction is open");
    s->in_tx = false;
    if (sqlite3_get_autocommit(s->db))
        return store_err(s, -ECANCELED,
                         "commit: the transaction was rolled back by an earlier error");
    int r = run(s, STMT_COMMIT);
    if (r < 0) {
        char msg[sizeof(s->errmsg)];
        memcpy(msg, s->errmsg, sizeof(msg));
        if (!sqlite3_get_autocommit(s->db))
            run(s, STMT_ROLLBACK);
        memcpy(s->errmsg, msg, sizeof(msg));
        return store_errctx(s, r, "commit");
    }
    return 0;
}

int store_rollback(struct store *s)
{
    if (!s->in_tx)
        return 0;
    s->in_tx = false;
    if (sqlite3_get_autocommit(s->db))
        return 0;
    int r = run(s, STMT_ROLLBACK);
    return store_errctx(s, r, "rollback");
}

bool store_in_transaction(const struct store *s)
{
    return s->in_tx;
}

int store_savepoint(struct store *s)
{
    s->errmsg[0] = '\0';
    if (!s->in_tx)
        return store_err(s, -EINVAL, "savepoint: no transaction is open");
    struct store_txn t;
    return store_errctx(s, store_txn_begin(s, &t), "savepoint");
}

int store_savepoint_end(struct store *s, int r)
{
    if (!s->in_tx)
        return r < 0 ? r : store_err(s, -EINVAL, "savepoint: no transaction is open");
    struct store_txn t = {.savepoint = true};
    return store_txn_end(s, &t, r);
}

/* ---- settings, versions, checks ------------------------------------------------------------ */

int store_set_busy_timeout(struct store *s, int ms)
{
    if (ms < 0)
        return store_err(s, -EINVAL, "busy timeout: %d is negative", ms);
    int rc = sqlite3_busy_timeout(s->db, ms);
    return rc == SQLITE_OK ? 0 : store_sqlerr(s, rc);
}

static void limits_default(struct store_limits *l)
{
    *l = (struct store_limits){
        .commands_max = STORE_COMMANDS_MAX_DEFAULT,
        .applies_max = STORE_APPLIES_MAX_DEFAULT,
        .events_max = STORE_EVENTS_MAX_DEFAULT,
        .outbox_rows_max = STORE_OUTBOX_ROWS_MAX_DEFAULT,
        .outbox_bytes_max = STORE_OUTBOX_BYTES_MAX_DEFAULT,
    };
}

void store_set_limits(struct store *s, const struct store_limits *l)
{
    struct store_limits d;
    limits_default(&d);
    s->limits = (struct store_limits){
        .commands_max = l->commands_max ? l->commands_max : d.commands_max,
        .applies_max = l->applies_max ? l->applies_max : d.applies_max,
        .events_max = l->events_max ? l->events_max : d.events_max,
        .outbox_rows_max = l->outbox_rows_max ? l->outbox_rows_max : d.outbox_rows_max,
        .outbox_bytes_max = l->outbox_bytes_max ? l->outbox_bytes_max : d.outbox_bytes_max,
    };
}

void store_get_limits(const struct store *s, struct store_limits *ret)
{
    *ret = s->limits;
}

int store_data_version(struct store *s, uint64_t *ret_version)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_DATA_VERSION);
    int r = store_step(s, st);
    if (r == 0)
        r = store_err(s, -EIO, "no answer");
    if (r < 0)
        return store_errctx(s, r, "data version");
    *ret_version = (uint64_t)sqlite3_column_int64(st, 0);
    return 0;
}

/* Runs PRAGMA quick_check(1) on st; 0 when "ok", -EBADMSG with the problem in msg. */
static int quick_check(sqlite3 *db, sqlite3_stmt *st, char *msg, size_t n)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        format(msg, n, "quick_check: %s", sqlite3_errmsg(db));
        int r = store_errno_from_sqlite(rc);
        return r < 0 ? r : -EIO;
    }
    const char *t = (const char *)sqlite3_column_text(st, 0);
    if (t && streq(t, "ok"))
        return 0;
    format(msg, n, "quick_check: %s", t ? t : "(no answer)");
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return -EBADMSG;
}

int store_check(struct store *s, char *err, size_t errlen)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_QUICK_CHECK);
    char msg[512] = "";
    int r = quick_check(s->db, st, msg, sizeof(msg));
    if (r < 0) {
        store_err(s, r, "%s", msg);
        format(err, errlen, "%s: %s", s->path, msg);
    }
    return r;
}

/* ---- open --------------------------------------------------------------------------------- */

void store_give_to_dir_owner(int fd, const char *path)
{
    if (geteuid() != 0)
        return;
    _cleanup_free_ char *dir = strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (!dir)
        return;
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    struct stat st;
    if (stat(dir, &st) < 0 || st.st_uid == 0)
        return;
    if (fchown(fd, st.st_uid, st.st_gid) < 0)
        log_warn("%s: cannot give it to the owner of %s (uid %u)", path, dir, (unsigned)st.st_uid);
}

/* Creates the file with mode 0600 (O_CLOEXEC, no symlink) unless it exists; SQLite would
 * create it with 0644 and its -wal/-shm copy the mode of the database file. */
static int ensure_file(const char *path, bool create, char *err, size_t errlen)
{
    struct stat st;
    if (!create) {
        if (lstat(path, &st) < 0) {
            int r = -errno;
            format(err, errlen, "%s: %s", path, strerror(-r));
            return r;
        }
    } else {
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd >= 0) {
            /* The umask may have taken bits we want; it never adds any. */
            int r = fchmod(fd, 0600) < 0 ? -errno : 0;
            if (r == 0)
                store_give_to_dir_owner(fd, path);
            close(fd);
            if (r < 0) {
                format(err, errlen, "%s: cannot set mode 0600: %s", path, strerror(-r));
                return r;
            }
            return 0;
        }
        if (errno != EEXIST) {
            int r = -errno;
            format(err, errlen, "%s: cannot create: %s", path, strerror(-r));
            return r;
        }
        if (lstat(path, &st) < 0) {
            int r = -errno;
            format(err, errlen, "%s: %s", path, strerror(-r));
            return r;
        }
    }
    if (!S_ISREG(st.st_mode)) {
        format(err, errlen, "%s: not a regular file", path);
        return -EINVAL;
    }
    return 0;
}

static int db_open(struct store *s, char *err, size_t errlen)
{
    /* The unix VFS opens every file (database, -wal, -shm) with O_CLOEXEC. NOMUTEX: one
     * thread owns the connection. No SQLITE_OPEN_CREATE: ensure_file() made the file. */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE |
                SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE;
    int rc = sqlite3_open_v2(s->path, &s->db, flags, NULL);
    if (rc != SQLITE_OK) {
        format(err, errlen, "%s: cannot open: %s", s->path,
               s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        int r = store_errno_from_sqlite(rc);
        sqlite3_close(s->db);
        s->db = NULL;
        return r < 0 ? r : -EIO;
    }
    /* Until the checks pass, closing must not checkpoint a WAL into (or delete it next to) a
     * file that we refuse: it stays exactly as it was found. */
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS_DEFAULT);
    return 0;
}

static void db_close(struct store *s)
{
    for (size_t i = 0; i < _STMT_MAX; i++) {
        sqlite3_finalize(s->stmt[i]);
        s->stmt[i] = NULL;
    }
    if (s->db && sqlite3_close(s->db) != SQLITE_OK)
        log_error("store %s: close: %s", s->path, sqlite3_errmsg(s->db));
    s->db = NULL;
}

/* Runs one pragma (or any one statement) and reads the first column of its first row as an
 * integer (ret may be NULL) or text (ret_text may be NULL). Returns the SQLite result code. */
static int pragma(sqlite3 *db, const char *sql, int64_t *ret, char *ret_text, size_t n)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (ret)
            *ret = sqlite3_column_int64(st, 0);
        if (ret_text) {
            const char *t = (const char *)sqlite3_column_text(st, 0);
            format(ret_text, n, "%s", t ? t : "");
        }
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static bool rc_is_corrupt(int rc)
{
    return (rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT;
}

enum probe_result { PROBE_OK, PROBE_CORRUPT };

/* Reads only: is this a store we can use? Sets *ret_corrupt_reason for a corrupt file. */
static int probe(struct store *s, enum probe_result *ret, char *reason, size_t reason_len,
                 char *err, size_t errlen)
{
    /* One statement, so one snapshot: another process may be migrating right now, and its
     * application id and tables must be seen together or not at all. */
    int64_t version = 0, appid = 0, tables = 0;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT (SELECT user_version FROM pragma_user_version),"
                                " (SELECT application_id FROM pragma_application_id),"
                                " (SELECT count(*) FROM sqlite_schema)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            version = sqlite3_column_int64(st, 0);
            appid = sqlite3_column_int64(st, 1);
            tables = sqlite3_column_int64(st, 2);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc_is_corrupt(rc)) {
        format(reason, reason_len, "%s", sqlite3_errmsg(s->db));
        *ret = PROBE_CORRUPT;
        return 0;
    }
    if (rc != SQLITE_OK) {
        format(err, errlen, "%s: cannot read: %s", s->path, sqlite3_errmsg(s->db));
        int r = store_errno_from_sqlite(rc);
        return r < 0 ? r : -EIO;
    }
    if ((uint32_t)appid != STORE_APPLICATION_ID && (appid != 0 || tables > 0)) {
        format(err, errlen, "%s: a SQLite database, but not an axion-agent store", s->path);
        return -EMEDIUMTYPE;
    }
    if (version > (int64_t)store_n_migrations) {
        format(err, errlen,
               "%s: schema version %" PRId64 " is newer than this agent knows (%zu); upgrade "
               "the agent",
               s->path, version, store_n_migrations);
        return -EPROTONOSUPPORT;
    }
    if (version < 0) {
        format(err, errlen, "%s: invalid schema version %" PRId64, s->path, version);
        return -EBADMSG;
    }
    rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        format(err, errlen, "%s: quick_check: %s", s->path, sqlite3_errmsg(s->db));
        return store_errno_from_sqlite(rc);
    }
    int r = quick_check(s->db, st, reason, reason_len);
    sqlite3_finalize(st);
    if (r == -EBADMSG) {
        *ret = PROBE_CORRUPT;
        return 0;
    }
    if (r < 0) {
        format(err, errlen, "%s: %s", s->path, reason);
        return r;
    }
    *ret = PROBE_OK;
    return 0;
}

static int rename_noreplace(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -errno;
    /* A file system without RENAME_NOREPLACE: link() never replaces either. */
    if (link(from, to) < 0)
        return -errno;
    if (unlink(from) < 0)
        return -errno;
    return 0;
}

static void fsync_parent(const char *path)
{
    _cleanup_free_ char *dir = strdup(path);
    if (!dir)
        return;
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    (void)fsync(fd);
    close(fd);
}

static const char *const companions[] = {"-wal", "-shm", "-journal"};

/* Renames path and its companions to path.corrupt-<UTC time>[.N][-wal|-shm|-journal]. */
static int move_aside(const char *path, char *ret_name, size_t n)
{
    char ts[32];
    struct tm tm;
    time_t t = time(NULL);
    if (!gmtime_r(&t, &tm) || strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm) == 0)
        return -EINVAL;
    char name[4096], from[4096], to[4096 + 16];
    for (int i = 0; i < 1000; i++) {
        int k = i == 0 ? snprintf(name, sizeof(name), "%s.corrupt-%s", path, ts)
                       : snprintf(name, sizeof(name), "%s.corrupt-%s.%d", path, ts, i);
        if (k < 0 || (size_t)k >= sizeof(name) - 16)
            return -ENAMETOOLONG;
        bool taken = false;
        struct stat st;
        for (size_t c = 0; c < ARRAY_SIZE(companions) && !taken; c++) {
            snprintf(to, sizeof(to), "%s%s", name, companions[c]);
            taken = lstat(to, &st) == 0;
        }
        if (taken)
            continue;
        int r = rename_noreplace(path, name);
        if (r == -EEXIST)
            continue;
        if (r < 0)
            return r;
        /* A -wal left next to a new database would be replayed into it: every companion
         * has to go along, or the reset stops here. */
        for (size_t c = 0; c < ARRAY_SIZE(companions); c++) {
            snprintf(from, sizeof(from), "%s%s", path, companions[c]);
            snprintf(to, sizeof(to), "%s%s", name, companions[c]);
            r = rename_noreplace(from, to);
            if (r < 0 && r != -ENOENT)
                return r;
        }
        fsync_parent(path);
        format(ret_name, n, "%s", name);
        return 0;
    }
    return -EEXIST;
}

static int exec_sql(sqlite3 *db, const char *sql, char *msg, size_t n)
{
    char *e = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &e);
    if (rc != SQLITE_OK)
        format(msg, n, "%s", e ? e : sqlite3_errstr(rc));
    sqlite3_free(e);
    return rc;
}

static int configure(struct store *s, char *err, size_t errlen)
{
    char mode[32] = "", msg[512] = "";
    /* Switching a new file to WAL takes an exclusive lock. When another process opens the
     * same new file at this moment, SQLite may answer BUSY at once instead of waiting (two
     * readers that both want to write): try again, up to the busy timeout. */
    int rc;
    for (int64_t deadline = store_now_ms() + STORE_BUSY_TIMEOUT_MS_DEFAULT;;) {
        rc = pragma(s->db, "PRAGMA journal_mode = WAL", NULL, mode, sizeof(mode));
        if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
            break;
        if (store_now_ms() >= deadline)
            break;
        sqlite3_sleep(10 + (int)(store_now_ms() % 20));
    }
    if (rc != SQLITE_OK) {
        format(err, errlen, "%s: cannot switch to WAL: %s", s->path, sqlite3_errmsg(s->db));
        return store_errno_from_sqlite(rc);
    }
    if (!streq(mode, "wal")) {
        format(err, errlen, "%s: cannot switch to WAL (journal mode is %s)", s->path, mode);
        return -EIO;
    }
    rc =
        exec_sql(s->db,
                 "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
                 " PRAGMA temp_store = MEMORY; PRAGMA journal_size_limit = " JOURNAL_SIZE_LIMIT ";",
                 msg, sizeof(msg));
    if (rc != SQLITE_OK) {
        format(err, errlen, "%s: settings: %s", s->path, msg);
        return store_errno_from_sqlite(rc);
    }
    return 0;
}

/* Applies the missing migrations, each in one transaction with its version bump. Another
 * process may migrate at the same time: the version is read again under the write lock. */
static int migrate(struct store *s, char *err, size_t errlen)
{
    for (;;) {
        char msg[512] = "";
        int rc = exec_sql(s->db, "BEGIN IMMEDIATE", msg, sizeof(msg));
        if (rc != SQLITE_OK) {
            format(err, errlen, "%s: migrate: %s", s->path, msg);
            return store_errno_from_sqlite(rc);
        }
        int64_t version = 0;
        rc = pragma(s->db, "PRAGMA user_version", &version, NULL, 0);
        if (rc != SQLITE_OK) {
            format(msg, sizeof(msg), "%s", sqlite3_errmsg(s->db));
            exec_sql(s->db, "ROLLBACK", NULL, 0);
            format(err, errlen, "%s: migrate: %s", s->path, msg);
            return store_errno_from_sqlite(rc);
        }
        if (version >= (int64_t)store_n_migrations) {
            exec_sql(s->db, "ROLLBACK", NULL, 0);
            if (version == (int64_t)store_n_migrations)
                return 0;
            format(err, errlen,
                   "%s: schema version %" PRId64 " is newer than this agent knows (%zu); "
                   "upgrade the agent",
                   s->path, version, store_n_migrations);
            return -EPROTONOSUPPORT;
        }
        char bump[64];
        format(bump, sizeof(bump), "PRAGMA user_version = %" PRId64, version + 1);
        rc = exec_sql(s->db, store_migrations[version], msg, sizeof(msg));
        if (rc == SQLITE_OK)
            rc = exec_sql(s->db, bump, msg, sizeof(msg));
        if (rc == SQLITE_OK)
            rc = exec_sql(s->db, "COMMIT", msg, sizeof(msg));
        if (rc != SQLITE_OK) {
            if (!sqlite3_get_autocommit(s->db))
                exec_sql(s->db, "ROLLBACK", NULL, 0);
            format(err, errlen, "%s: migration to schema version %" PRId64 " failed: %s", s->path,
                   version + 1, msg);
            int r = store_errno_from_sqlite(rc);
            return r < 0 ? r : -EIO;
        }
        log_info("store %s: migrated to schema version %" PRId64, s->path, version + 1);
    }
}

static int prepare_all(struct store *s, char *err, size_t errlen)
{
    for (size_t i = 0; i < _STMT_MAX; i++) {
        int rc = sqlite3_prepare_v3(s->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i],
                                    NULL);
        if (rc != SQLITE_OK) {
            format(err, errlen, "%s: prepare statement %zu: %s", s->path, i, sqlite3_errmsg(s->db));
            int r = store_errno_from_sqlite(rc);
            return r < 0 ? r : -EIO;
        }
    }
    return 0;
}

/* Opens, probes and (with the flag) moves a corrupt file aside once. */
static int open_checked(struct store *s, unsigned flags, char *err, size_t errlen)
{
    int r = ensure_file(s->path, !(flags & STORE_OPEN_EXISTING), err, errlen);
    if (r < 0)
        return r;
    r = db_open(s, err, errlen);
    if (r < 0)
        return r;
    enum probe_result res;
    char reason[512] = "";
    r = probe(s, &res, reason, sizeof(reason), err, errlen);
    if (r < 0 || res == PROBE_OK)
        return r;

    if (!(flags & STORE_OPEN_RESET_CORRUPT)) {
        format(err, errlen, "%s: corrupt store: %s", s->path, reason);
        return -EBADMSG;
    }
    db_close(s);
    char aside[4200];
    r = move_aside(s->path, aside, sizeof(aside));
    if (r < 0) {
        format(err, errlen, "%s: corrupt store (%s), and moving it aside failed: %s", s->path,
               reason, strerror(-r));
        return r;
    }
    log_warnx("store %s was corrupt (%s): moved aside to %s, starting with an empty store", s->path,
              reason, aside);
    r = ensure_file(s->path, true, err, errlen);
    if (r < 0)
        return r;
    r = db_open(s, err, errlen);
    if (r < 0)
        return r;
    r = probe(s, &res, reason, sizeof(reason), err, errlen);
    if (r >= 0 && res != PROBE_OK) {
        format(err, errlen, "%s: the new store is corrupt too: %s", s->path, reason);
        r = -EBADMSG;
    }
    return r;
}

int store_open(const char *path, unsigned flags, struct store **ret, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!path || !*path || !ret ||
        (flags & ~(unsigned)(STORE_OPEN_RESET_CORRUPT | STORE_OPEN_EXISTING))) {
        format(err, errlen, "store: invalid arguments");
        return -EINVAL;
    }
    struct store *s = calloc(1, sizeof(*s));
    if (!s || !(s->path = strdup(path))) {
        free(s);
        format(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    limits_default(&s->limits);

    int r = open_checked(s, flags, err, errlen);
    if (r >= 0)
        r = configure(s, err, errlen);
    if (r >= 0)
        r = migrate(s, err, errlen);
    if (r >= 0)
        r = prepare_all(s, err, errlen);
    if (r >= 0)
        r = store_key_load(s, flags, err, errlen);
    if (r < 0) {
        store_close(s);
        return r;
    }
    store_seal_plain_files(s);
    /* Checked: from now on the last close checkpoints the WAL and removes it. */
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, NULL);
    *ret = s;
    return 0;
}

struct store *store_close(struct store *s)
{
    if (!s)
        return NULL;
    if (s->db && !sqlite3_get_autocommit(s->db) && s->stmt[STMT_ROLLBACK])
        run(s, STMT_ROLLBACK);
    db_close(s);
    seal_wipe(s->key, sizeof(s->key));
    free(s->key_path);
    free(s->path);
    free(s);
    return NULL;
}

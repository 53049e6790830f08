/* The store's file: creation and mode, migrations, refusal of newer and foreign files,
 * corruption handling, transactions, two connections and processes at once, and a crash
 * (SIGKILL) in the middle of committing. The tables are tested in test_store_tables.c.
 * Raw SQLite is used here only to fabricate files the store must cope with. */
#include "support/testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/util.h"
#include "store/store.h"

struct fixture {
    char *dir;
    char *path; /* dir/store.db */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = tu_mkdtemp();
    assert_non_null(f->dir);
    assert_true(asprintf(&f->path, "%s/store.db", f->dir) > 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tu_rm_rf(f->dir);
    free(f->dir);
    free(f->path);
    free(f);
    return 0;
}

static struct store *open_ok(const char *path)
{
    struct store *s = NULL;
    char err[512] = "";
    int r = store_open(path, 0, &s, err, sizeof(err));
    if (r < 0)
        print_error("store_open: %s\n", err);
    assert_int_equal(r, 0);
    assert_non_null(s);
    return s;
}

/* ---- raw SQLite, for fabricating files ---- */

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    char *e = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &e);
    if (rc != SQLITE_OK)
        print_error("%s: %s\n", sql, e);
    sqlite3_free(e);
    assert_int_equal(rc, SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return v;
}

static bool raw_text_is(const char *path, const char *sql, const char *want)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    bool eq = streq((const char *)sqlite3_column_text(st, 0), want);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return eq;
}

static char *read_all(const char *path, size_t *ret_len)
{
    FILE *fp = fopen(path, "re");
    assert_non_null(fp);
    char *data = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&data, &len);
    assert_non_null(mem);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        assert_int_equal(fwrite(chunk, 1, n, mem), n);
    fclose(fp);
    fclose(mem);
    *ret_len = len;
    return data;
}

static void write_all(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "we");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && streq(s + n - k, suffix);
}

/* Counts the names in dir that start with prefix; the first one that is not a -wal, -shm or
 * -journal companion goes to *ret_base (malloc'ed) if wanted. */
static int count_prefix(const char *dir, const char *prefix, char **ret_base)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) {
            n++;
            bool companion = ends_with(de->d_name, "-wal") || ends_with(de->d_name, "-shm") ||
                             ends_with(de->d_name, "-journal");
            if (!companion && ret_base && !*ret_base)
                *ret_base = strdup(de->d_name);
        }
    closedir(d);
    return n;
}

static void put_stack(struct store *s, const char *name, int64_t gen)
{
    struct store_stack st = {
        .name = (char *)name, .generation = gen, .compose = "services: {}\n", .compose_len = 13};
    int r = store_put_stack(s, &st, NULL);
    if (r < 0)
        print_error("%s\n", store_errmsg(s));
    assert_int_equal(r, 0);
}

/* ---- open, create, migrate ---- */

static void test_open_creates_and_migrates(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    assert_string_equal(store_path(s), f->path);
    assert_true(store_schema_version() >= 1);
    put_stack(s, "web", 1);

    /* 0600 for the database and the -wal/-shm that SQLite makes next to it. */
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
        _cleanup_free_ char *p = NULL;
        assert_true(asprintf(&p, "%s%s", f->path, suffixes[i]) > 0);
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
    }
    assert_int_equal(store_check(s, NULL, 0), 0);
    store_close(s);

    /* Reopen: nothing to migrate, the data is there. */
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), store_schema_version());
    assert_true(raw_text_is(f->path, "PRAGMA journal_mode", "wal"));
    s = open_ok(f->path);
    struct store_stack *st = NULL;
    assert_int_equal(store_get_stack(s, "web", &st), 0);
    assert_int_equal(st->generation, 1);
    store_stack_free(st);
    store_close(s);
}

static void test_open_empty_file(void **state)
{
    struct fixture *f = *state;
    write_all(f->path, "", 0);
    chmod(f->path, 0644);
    struct store *s = open_ok(f->path);
    put_stack(s, "a", 1);
    store_close(s);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), store_schema_version());
}

static void test_open_existing_flag(void **state)
{
    struct fixture *f = *state;
    struct store *s = NULL;
    char err[512];
    assert_int_equal(store_open(f->path, STORE_OPEN_EXISTING, &s, err, sizeof(err)), -ENOENT);
    assert_null(s);
    assert_non_null(strstr(err, f->path));
    assert_int_not_equal(access(f->path, F_OK), 0);

    store_close(open_ok(f->path));
    assert_int_equal(store_open(f->path, STORE_OPEN_EXISTING, &s, err, sizeof(err)), 0);
    store_close(s);
}

static void test_open_bad_arguments(void **state)
{
    struct fixture *f = *state;
    struct store *s = NULL;
    char err[256];
    assert_int_equal(store_open(NULL, 0, &s, err, sizeof(err)), -EINVAL);
    assert_int_equal(store_open("", 0, &s, err, sizeof(err)), -EINVAL);
    assert_int_equal(store_open(f->path, 1u << 10, &s, err, sizeof(err)), -EINVAL);
    assert_int_equal(store_open(f->path, 0, NULL, err, sizeof(err)), -EINVAL);
    /* A directory is not a store; a missing directory is a clear error. */
    assert_int_equal(store_open(f->dir, 0, &s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not a regular file"));
    _cleanup_free_ char *missing = NULL;
    assert_true(asprintf(&missing, "%s/nope/store.db", f->dir) > 0);
    assert_int_equal(store_open(missing, 0, &s, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "cannot create"));
    assert_null(s);
}

/* Every descriptor SQLite holds on the store's files is close-on-exec. */
static void test_fds_cloexec(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    put_stack(s, "web", 1); /* the WAL and shm are open now */
    char real[PATH_MAX];
    assert_non_null(realpath(f->path, real));

    int found = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        char link[300], target[PATH_MAX + 1];
        snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n < 0)
            continue;
        target[n] = '\0';
        if (strncmp(target, real, strlen(real)) != 0)
            continue;
        int fd = atoi(de->d_name);
        int flags = fcntl(fd, F_GETFD);
        assert_true(flags >= 0);
        if (!(flags & FD_CLOEXEC))
            print_error("fd %d (%s) is not close-on-exec\n", fd, target);
        assert_true(flags & FD_CLOEXEC);
        found++;
    }
    closedir(d);
    assert_true(found >= 2);
    store_close(s);
}

/* ---- refusals ---- */

static void test_newer_schema_refused(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    put_stack(s, "web", 1);
    store_close(s);
    raw_exec(f->path, "PRAGMA user_version = 7");

    size_t before_len, after_len;
    _cleanup_free_ char *before = read_all(f->path, &before_len);
    char err[512], want[1024];
    s = NULL;
    assert_int_equal(store_open(f->path, STORE_OPEN_RESET_CORRUPT, &s, err, sizeof(err)),
                     -EPROTONOSUPPORT);
    assert_null(s);
    snprintf(want, sizeof(want),
             "%s: schema version 7 is newer than this agent knows (%d); upgrade the agent", f->path,
             store_schema_version());
    assert_string_equal(err, want);

    /* Not touched: same bytes, same version, nothing moved aside. */
    _cleanup_free_ char *after = read_all(f->path, &after_len);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 7);
    assert_int_equal(count_prefix(f->dir, "store.db.corrupt", NULL), 0);
}

static void test_foreign_database_refused(void **state)
{
    struct fixture *f = *state;
    raw_exec(f->path, "CREATE TABLE mine (x INTEGER); INSERT INTO mine VALUES (42);");
    struct store *s = NULL;
    char err[512];
    assert_int_equal(store_open(f->path, STORE_OPEN_RESET_CORRUPT, &s, err, sizeof(err)),
                     -EMEDIUMTYPE);
    assert_non_null(strstr(err, "not an axion-agent store"));
    assert_int_equal(raw_int(f->path, "SELECT x FROM mine"), 42);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_schema"), 1);
    assert_int_equal(count_prefix(f->dir, "store.db.corrupt", NULL), 0);
}

/* A migration that fails leaves the file at the version before it, with nothing of it. */
static void test_migration_is_atomic(void **state)
{
    struct fixture *f = *state;
    /* Our application id at version 0, but a table in the way of migration 1. */
    raw_exec(f->path, "PRAGMA application_id = 1096306225; CREATE TABLE events (x TEXT);");
    struct store *s = NULL;
    char err[512];
    assert_true(store_open(f->path, 0, &s, err, sizeof(err)) < 0);
    assert_null(s);
    assert_non_null(strstr(err, "migration to schema version 1 failed"));
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_schema WHERE name = 'stacks'"),
                     0);
}

/* A store of schema version 1 (before stacks had base_dir/home_dir and commands a generation)
 * migrates to the current version and keeps its rows; the new columns start NULL. */
static void test_migration_2_from_version_1(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    put_stack(s, "web", 4);
    struct store_command c = {.command_id = "c-1",
                              .source = "kafka",
                              .kind = "deploy",
                              .stack = "web",
                              .status = STORE_COMMAND_ACCEPTED};
    assert_int_equal(store_record_command(s, &c), 0);
    store_close(s);
    /* What migrations 2 and 3 added, taken away again: the file is a version-1 store. */
    raw_exec(f->path, "ALTER TABLE swarm DROP COLUMN listen_addr;"
                      " ALTER TABLE swarm DROP COLUMN data_path_addr;"
                      " ALTER TABLE swarm DROP COLUMN default_addr_pools;"
                      " ALTER TABLE swarm DROP COLUMN subnet_size;"
                      " ALTER TABLE swarm DROP COLUMN data_path_port;"
                      " ALTER TABLE swarm DROP COLUMN leave_force;"
                      " ALTER TABLE swarm DROP COLUMN source;"
                      " ALTER TABLE swarm DROP COLUMN revision;"
                      " ALTER TABLE stacks DROP COLUMN base_dir;"
                      " ALTER TABLE stacks DROP COLUMN home_dir;"
                      " ALTER TABLE commands DROP COLUMN generation; DROP TABLE agent_state;"
                      " PRAGMA user_version = 1;");

    s = open_ok(f->path);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), store_schema_version());
    assert_true(store_schema_version() >= 2);
    struct store_stack *st = NULL;
    assert_int_equal(store_get_stack(s, "web", &st), 0);
    assert_int_equal(st->generation, 4);
    assert_null(st->base_dir);
    assert_null(st->home_dir);
    st = store_stack_free(st);
    struct store_command *out = NULL;
    assert_int_equal(store_get_command(s, "c-1", &out), 0);
    assert_int_equal(out->status, STORE_COMMAND_ACCEPTED);
    assert_int_equal(out->generation, 0);
    store_command_free(out);

    struct store_stack in = {.name = "web",
                             .compose = "services: {}\n",
                             .compose_len = 13,
                             .base_dir = "/srv/app",
                             .home_dir = "/home/u"};
    assert_int_equal(store_put_stack(s, &in, NULL), 0);
    assert_int_equal(store_get_stack(s, "web", &st), 0);
    assert_int_equal(st->generation, 5);
    assert_string_equal(st->base_dir, "/srv/app");
    assert_string_equal(st->home_dir, "/home/u");
    store_stack_free(st);
    store_close(s);
}

/* ---- corruption ---- */

static const char garbage[] = "this is not a database, it only sits where one should be\n";

static void make_garbage(const struct fixture *f)
{
    char buf[8192];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = garbage[i % (sizeof(garbage) - 1)];
    write_all(f->path, buf, sizeof(buf));
    _cleanup_free_ char *wal = NULL;
    assert_true(asprintf(&wal, "%s-wal", f->path) > 0);
    write_all(wal, "stale wal", 9);
}

static void test_corrupt_refused_without_flag(void **state)
{
    struct fixture *f = *state;
    make_garbage(f);
    size_t before_len, after_len;
    _cleanup_free_ char *before = read_all(f->path, &before_len);

    struct store *s = NULL;
    char err[512];
    assert_int_equal(store_open(f->path, 0, &s, err, sizeof(err)), -EBADMSG);
    assert_null(s);
    assert_non_null(strstr(err, f->path));
    assert_non_null(strstr(err, "corrupt store"));
    assert_non_null(strstr(err, "not a database"));
    _cleanup_free_ char *after = read_all(f->path, &after_len);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    assert_int_equal(count_prefix(f->dir, "store.db.corrupt", NULL), 0);
}

static void test_corrupt_moved_aside_with_flag(void **state)
{
    struct fixture *f = *state;
    make_garbage(f);
    size_t before_len;
    _cleanup_free_ char *before = read_all(f->path, &before_len);

    struct store *s = NULL;
    char err[512] = "";
    assert_int_equal(store_open(f->path, STORE_OPEN_RESET_CORRUPT, &s, err, sizeof(err)), 0);
    put_stack(s, "fresh", 1);
    store_close(s);

    /* Still there, under the new name, byte for byte, with its -wal (and the -shm that
     * SQLite made when it saw the -wal) beside it; nothing left under the old names but the
     * new store. */
    _cleanup_free_ char *name = NULL;
    assert_int_equal(count_prefix(f->dir, "store.db.corrupt-", &name), 3);
    assert_non_null(name);
    _cleanup_free_ char *moved = NULL, *moved_wal = NULL;
    assert_true(asprintf(&moved, "%s/%s", f->dir, name) > 0);
    assert_true(asprintf(&moved_wal, "%s-wal", moved) > 0);
    size_t moved_len, wal_len;
    _cleanup_free_ char *m = read_all(moved, &moved_len);
    _cleanup_free_ char *w = read_all(moved_wal, &wal_len);
    assert_memory_equal(w, "stale wal", 9);
    assert_int_equal(moved_len, before_len);
    assert_memory_equal(m, before, before_len);
    assert_int_equal(wal_len, 9);

    /* A second corruption gets a name of its own. */
    make_garbage(f);
    assert_int_equal(store_open(f->path, STORE_OPEN_RESET_CORRUPT, &s, err, sizeof(err)), 0);
    store_close(s);
    assert_int_equal(count_prefix(f->dir, "store.db.corrupt-", NULL), 6);
}

/* A database whose header is fine but whose pages are not: quick_check says so. */
static void test_corrupt_page_detected(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    char msg[1024];
    memset(msg, 'x', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    assert_int_equal(store_begin(s), 0);
    for (int i = 0; i < 300; i++)
        assert_int_equal(store_add_event(s, LOG_LEVEL_INFO, "web", NULL, msg, NULL), 0);
    assert_int_equal(store_commit(s), 0);
    store_close(s); /* checkpoints: everything is in the main file now */

    int64_t pages = raw_int(f->path, "PRAGMA page_count");
    int64_t size = raw_int(f->path, "PRAGMA page_size");
    assert_true(pages > 50);
    size_t len;
    _cleanup_free_ char *data = read_all(f->path, &len);
    assert_int_equal(len, (size_t)(pages * size));
    for (int64_t p = pages / 2; p < pages / 2 + 4; p++)
        memset(data + (p - 1) * size, 0xa5, (size_t)size);
    write_all(f->path, data, len);

    char err[512];
    s = NULL;
    assert_int_equal(store_open(f->path, 0, &s, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "corrupt store"));
    assert_int_equal(count_prefix(f->dir, "store.db.corrupt", NULL), 0);

    assert_int_equal(store_open(f->path, STORE_OPEN_RESET_CORRUPT, &s, err, sizeof(err)), 0);
    assert_int_equal(store_check(s, err, sizeof(err)), 0);
    struct store_event *ev = NULL;
    size_t n = 0;
    assert_int_equal(store_list_events(s, 0, 0, NULL, &ev, &n), 0);
    assert_int_equal(n, 0);
    store_close(s);
    _cleanup_free_ char *name = NULL;
    assert_int_equal(count_prefix(f->dir, "store.db.corrupt-", &name), 3); /* with -wal, -shm */
    _cleanup_free_ char *moved = NULL;
    assert_true(asprintf(&moved, "%s/%s", f->dir, name) > 0);
    size_t moved_len;
    _cleanup_free_ char *m = read_all(moved, &moved_len);
    assert_int_equal(moved_len, len);
    assert_memory_equal(m, data, len);
}

/* ---- transactions ---- */

static void test_transaction_rules(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    assert_false(store_in_transaction(s));
    assert_int_equal(store_commit(s), -EINVAL);
    assert_int_equal(store_rollback(s), 0);
    assert_int_equal(store_begin(s), 0);
    assert_true(store_in_transaction(s));
    assert_int_equal(store_begin(s), -EALREADY);
    put_stack(s, "web", 1);
    assert_int_equal(store_rollback(s), 0);
    assert_false(store_in_transaction(s));

    /* Closing with an open transaction rolls it back. */
    assert_int_equal(store_begin(s), 0);
    put_stack(s, "web", 1);
    store_close(s);
    s = open_ok(f->path);
    struct store_stack *st = NULL;
    assert_int_equal(store_get_stack(s, "web", &st), -ENOENT);
    store_close(s);
}

/* Desired state, offset and command record: all or nothing. */
static void test_offset_and_desired_atomic(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_command cmd = {.command_id = "c-1",
                                .source = "kafka",
                                .kind = "deploy",
                                .stack = "web",
                                .status = STORE_COMMAND_ACCEPTED};

    assert_int_equal(store_begin(s), 0);
    put_stack(s, "web", 1);
    assert_int_equal(store_put_offset(s, "runner.commands.a", 0, 11), 0);
    assert_int_equal(store_record_command(s, &cmd), 0);
    assert_int_equal(store_rollback(s), 0);

    struct store_stack *st = NULL;
    struct store_command *c = NULL;
    int64_t off = -1;
    assert_int_equal(store_get_stack(s, "web", &st), -ENOENT);
    assert_int_equal(store_get_offset(s, "runner.commands.a", 0, &off), -ENOENT);
    assert_int_equal(store_get_command(s, "c-1", &c), -ENOENT);
    assert_int_equal(off, -1);

    /* A refused call inside keeps the rest: the savepoint undoes only itself. */
    assert_int_equal(store_begin(s), 0);
    put_stack(s, "web", 1);
    struct store_stack again = {.name = "web", .generation = 1, .compose = "", .compose_len = 0};
    assert_int_equal(store_put_stack(s, &again, NULL), -ESTALE);
    assert_int_equal(store_put_offset(s, "runner.commands.a", 0, 12), 0);
    assert_int_equal(store_record_command(s, &cmd), 0);
    assert_int_equal(store_record_command(s, &cmd), -EEXIST);
    assert_int_equal(store_commit(s), 0);

    assert_int_equal(store_get_stack(s, "web", &st), 0);
    assert_int_equal(st->generation, 1);
    store_stack_free(st);
    assert_int_equal(store_get_offset(s, "runner.commands.a", 0, &off), 0);
    assert_int_equal(off, 12);
    assert_int_equal(store_get_command(s, "c-1", &c), 0);
    store_command_free(c);
    store_close(s);
}

/* Savepoints inside store_begin(): a group of calls undone as one, the rest kept. */
static void test_savepoints(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    assert_int_equal(store_savepoint(s), -EINVAL);
    assert_int_equal(store_savepoint_end(s, 0), -EINVAL);
    assert_int_equal(store_savepoint_end(s, -EIO), -EIO);

    assert_int_equal(store_begin(s), 0);
    put_stack(s, "a", 1);
    /* undone: both calls of the group */
    assert_int_equal(store_savepoint(s), 0);
    put_stack(s, "b", 1);
    assert_int_equal(store_put_offset(s, "t", 0, 5), 0);
    assert_int_equal(store_savepoint_end(s, -EINVAL), -EINVAL);
    /* kept: nested groups released */
    assert_int_equal(store_savepoint(s), 0);
    put_stack(s, "c", 1);
    assert_int_equal(store_savepoint(s), 0);
    assert_int_equal(store_put_offset(s, "t", 0, 6), 0);
    assert_int_equal(store_savepoint_end(s, 0), 0);
    assert_int_equal(store_savepoint_end(s, 3), 3);
    assert_int_equal(store_commit(s), 0);

    struct store_stack *st = NULL;
    int64_t off = -1;
    assert_int_equal(store_get_stack(s, "a", &st), 0);
    st = store_stack_free(st);
    assert_int_equal(store_get_stack(s, "b", &st), -ENOENT);
    assert_int_equal(store_get_stack(s, "c", &st), 0);
    store_stack_free(st);
    assert_int_equal(store_get_offset(s, "t", 0, &off), 0);
    assert_int_equal(off, 6);
    store_close(s);
}

/* ---- two connections, two processes ---- */

static void test_two_connections(void **state)
{
    struct fixture *f = *state;
    struct store *a = open_ok(f->path);
    struct store *b = open_ok(f->path);
    uint64_t va0, va1, vb0, vb1;
    assert_int_equal(store_data_version(a, &va0), 0);
    assert_int_equal(store_data_version(b, &vb0), 0);

    put_stack(a, "web", 1);
    assert_int_equal(store_data_version(a, &va1), 0);
    assert_int_equal(store_data_version(b, &vb1), 0);
    assert_true(va1 == va0); /* its own commit does not count */
    assert_true(vb1 != vb0); /* the other connection's does */

    struct store_stack *st = NULL;
    assert_int_equal(store_get_stack(b, "web", &st), 0);
    assert_int_equal(st->generation, 1);
    st = store_stack_free(st);

    /* a holds the write lock: b waits its busy timeout, then -EBUSY; a's data is unseen. */
    assert_int_equal(store_set_busy_timeout(b, 100), 0);
    assert_int_equal(store_begin(a), 0);
    put_stack(a, "web", 2);
    uint64_t t0 = tu_now_ms();
    struct store_stack next = {.name = "web", .generation = 3, .compose = "x", .compose_len = 1};
    assert_int_equal(store_put_stack(b, &next, NULL), -EBUSY);
    assert_true(tu_now_ms() - t0 >= 90);
    assert_non_null(strstr(store_errmsg(b), "put stack web"));
    assert_int_equal(store_get_stack(b, "web", &st), 0);
    assert_int_equal(st->generation, 1);
    st = store_stack_free(st);
    assert_int_equal(store_commit(a), 0);

    /* Now b goes on, and sees a's generation 2 before its 3. */
    assert_int_equal(store_put_stack(b, &next, NULL), 0);
    next.generation = 2;
    assert_int_equal(store_put_stack(b, &next, NULL), -ESTALE);
    assert_int_equal(store_get_stack(a, "web", &st), 0);
    assert_int_equal(st->generation, 3);
    store_stack_free(st);
    store_close(a);
    store_close(b);
}

static void writer_child(const char *path, const char *who, int n)
{
    struct store *s = NULL;
    char err[512];
    if (store_open(path, 0, &s, err, sizeof(err)) < 0) {
        fprintf(stderr, "child %s: %s\n", who, err);
        _exit(2);
    }
    for (int i = 0; i < n; i++) {
        char msg[64];
        snprintf(msg, sizeof(msg), "%s %d", who, i);
        if (store_add_event(s, LOG_LEVEL_INFO, who, NULL, msg, NULL) < 0 ||
            store_put_offset(s, who, 0, i + 1) < 0) {
            fprintf(stderr, "child %s: %s\n", who, store_errmsg(s));
            _exit(3);
        }
    }
    store_close(s);
    _exit(0);
}

/* Two processes write at once; WAL and the busy timeout sort them out, nothing is lost. */
static void test_two_processes_write(void **state)
{
    struct fixture *f = *state;
    store_close(open_ok(f->path)); /* migrate first: both children open a current store */
    const int n = 150;
    pid_t pids[2];
    const char *who[2] = {"alpha", "beta"};
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0)
            writer_child(f->path, who[i], n);
    }
    for (int i = 0; i < 2; i++) {
        int status;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    struct store *s = open_ok(f->path);
    for (int i = 0; i < 2; i++) {
        struct store_event *ev = NULL;
        size_t k = 0;
        assert_int_equal(store_list_events(s, 0, 0, who[i], &ev, &k), 0);
        assert_int_equal(k, (size_t)n);
        store_event_array_free(ev, k);
        int64_t off;
        assert_int_equal(store_get_offset(s, who[i], 0, &off), 0);
        assert_int_equal(off, n);
    }
    store_close(s);
}

/* Several processes create and migrate the same new file at the same moment (the CLI and
 * the daemon on a fresh machine): one migrates, the others find it done. */
static void test_processes_open_fresh_store_at_once(void **state)
{
    struct fixture *f = *state;
    int go[2];
    assert_int_equal(pipe2(go, O_CLOEXEC), 0);
    pid_t pids[4];
    for (size_t i = 0; i < ARRAY_SIZE(pids); i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            char c;
            close(go[1]);
            if (read(go[0], &c, 1) != 0) /* EOF: the parent let everyone go */
                _exit(9);
            struct store *s = NULL;
            char err[512];
            if (store_open(f->path, 0, &s, err, sizeof(err)) < 0) {
                fprintf(stderr, "child %zu: %s\n", i, err);
                _exit(2);
            }
            int r = store_add_event(s, LOG_LEVEL_INFO, "race", NULL, "opened", NULL);
            if (r < 0)
                fprintf(stderr, "child %zu: %s\n", i, store_errmsg(s));
            store_close(s);
            _exit(r < 0 ? 3 : 0);
        }
    }
    close(go[0]);
    close(go[1]);
    for (size_t i = 0; i < ARRAY_SIZE(pids); i++) {
        int status;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), store_schema_version());
    struct store *s = open_ok(f->path);
    struct store_event *ev = NULL;
    size_t n = 0;
    assert_int_equal(store_list_events(s, 0, 0, "race", &ev, &n), 0);
    assert_int_equal(n, ARRAY_SIZE(pids));
    store_event_array_free(ev, n);
    store_close(s);
}

/* ---- crash ---- */

/* Commits forever: stack generation g, offset g and command "crash-g" in one transaction,
 * then tells the parent g. */
static void crash_child(const char *path, int wfd)
{
    struct store *s = NULL;
    char err[512];
    if (store_open(path, 0, &s, err, sizeof(err)) < 0) {
        fprintf(stderr, "crash child: %s\n", err);
        _exit(2);
    }
    char big[2048];
    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (int i = 0; i < 1000000; i++) {
        int64_t g = 0;
        char id[64];
        if (store_begin(s) < 0)
            _exit(3);
        struct store_stack st = {
            .name = "crash", .generation = 0, .compose = big, .compose_len = sizeof(big) - 1};
        if (store_put_stack(s, &st, &g) < 0)
            _exit(4);
        snprintf(id, sizeof(id), "crash-%" PRId64, g);
        struct store_command c = {.command_id = id,
                                  .source = "kafka",
                                  .kind = "deploy",
                                  .stack = "crash",
                                  .status = STORE_COMMAND_ACCEPTED};
        if (store_put_offset(s, "runner.commands.crash", 0, g) < 0 ||
            store_record_command(s, &c) < 0 ||
            store_add_event(s, LOG_LEVEL_INFO, "crash", NULL, id, NULL) < 0 ||
            store_outbox_add(s, "runner.status", "agent", big, sizeof(big), NULL) < 0)
            _exit(5);
        if (store_commit(s) < 0)
            _exit(6);
        if (write(wfd, &g, sizeof(g)) != (ssize_t)sizeof(g))
            _exit(7);
    }
    _exit(0);
}

/* Reads one reported generation; false at EOF. */
static bool read_report(int fd, int64_t *g, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, timeout_ms);
    assert_true(r > 0); /* the child reports within the deadline (or dies: EOF) */
    ssize_t n = read(fd, g, sizeof(*g));
    assert_true(n == 0 || n == (ssize_t)sizeof(*g));
    return n > 0;
}

static void test_crash_kill(void **state)
{
    struct fixture *f = *state;
    store_close(open_ok(f->path));
    const int64_t thresholds[] = {1, 40, 97, 150};
    int64_t last = 0;
    for (size_t round = 0; round < ARRAY_SIZE(thresholds); round++) {
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            crash_child(f->path, p[1]);
        }
        close(p[1]);
        int64_t g, seen = 0, target = last + thresholds[round];
        while (last < target) {
            assert_true(read_report(p[0], &g, 30000));
            assert_true(g > last);
            last = g;
            seen++;
        }
        assert_int_equal(kill(pid, SIGKILL), 0);
        while (read_report(p[0], &g, 30000)) /* what it reported before it died */
            last = g;
        close(p[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);

        /* It opens, it is whole, and everything reported committed is there. */
        struct store *s = open_ok(f->path);
        char err[512];
        assert_int_equal(store_check(s, err, sizeof(err)), 0);
        struct store_stack *st = NULL;
        assert_int_equal(store_get_stack(s, "crash", &st), 0);
        int64_t gen = st->generation;
        store_stack_free(st);
        assert_true(gen >= last);
        assert_true(gen <= last + 1); /* at most the one commit it had no time to report */
        int64_t off;
        assert_int_equal(store_get_offset(s, "runner.commands.crash", 0, &off), 0);
        assert_int_equal(off, gen); /* same transaction */
        for (int64_t i = 1; i <= gen; i++) {
            char id[64];
            enum store_command_status cs;
            snprintf(id, sizeof(id), "crash-%" PRId64, i);
            assert_int_equal(store_command_status(s, id, &cs), 0);
        }
        char next[64];
        enum store_command_status cs;
        snprintf(next, sizeof(next), "crash-%" PRId64, gen + 1);
        assert_int_equal(store_command_status(s, next, &cs), -ENOENT);
        struct store_event *ev = NULL;
        size_t n = 0;
        assert_int_equal(store_list_events(s, STORE_EVENTS_TAIL, 1, "crash", &ev, &n), 0);
        assert_int_equal(n, 1);
        char want[64];
        snprintf(want, sizeof(want), "crash-%" PRId64, gen);
        assert_string_equal(ev[0].message, want);
        store_event_array_free(ev, n);
        struct store_outbox_stats os;
        assert_int_equal(store_outbox_stats(s, &os), 0);
        assert_int_equal(os.rows, (uint64_t)gen);
        assert_int_equal(os.bytes, (uint64_t)gen * 2048);
        store_close(s);
        last = gen;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_and_migrates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_empty_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_existing_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fds_cloexec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_database_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_is_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_2_from_version_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_refused_without_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_moved_aside_with_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_page_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transaction_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offset_and_desired_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_savepoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_processes_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_processes_open_fresh_store_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_kill, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Every typed function of the store, table by table: round trips, refusals (-ESTALE, -EEXIST,
 * -ENOENT, -EINVAL, -EMSGSIZE) and the bounds of the tables that grow by themselves. */
#include "support/testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "store/store.h"

struct fixture {
    char *dir;
    struct store *s;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = tu_mkdtemp();
    assert_non_null(f->dir);
    _cleanup_free_ char *path = NULL;
    assert_true(asprintf(&path, "%s/store.db", f->dir) > 0);
    char err[512];
    int r = store_open(path, 0, &f->s, err, sizeof(err));
    if (r < 0)
        print_error("%s\n", err);
    assert_int_equal(r, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->s);
    tu_rm_rf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

#define S(state) (((struct fixture *)*(state))->s)

/* Asserts r == want, printing the store's message when not. */
#define assert_r(s, expr, want)                                                                    \
    do {                                                                                           \
        int _r = (expr);                                                                           \
        if (_r != (want))                                                                          \
            print_error("%s = %d (%s)\n", #expr, _r, store_errmsg(s));                             \
        assert_int_equal(_r, (want));                                                              \
    } while (0)

static void put(struct store *s, const char *name, int64_t gen, const char *compose)
{
    struct store_stack st = {.name = (char *)name,
                             .generation = gen,
                             .compose = (char *)compose,
                             .compose_len = strlen(compose)};
    assert_r(s, store_put_stack(s, &st, NULL), 0);
}

static void put_ok_stack(struct store *s, const char *name)
{
    put(s, name, 0, "services:\n  web:\n    image: busybox\n");
}

/* ---- stacks ---- */

static void test_stack_round_trip(void **state)
{
    struct store *s = S(state);
    const char compose[] = "services:\n  web:\n    image: x\n\0binary\xff";
    /* Files are bytes: a DER key has NULs and bytes that are no UTF-8. */
    const char der[] = "\x30\x82\x01\x0a\x00\xff\xfe\x00";
    struct store_file files[] = {{"nginx.conf", "server {}", 9},
                                 {"./key.der", (void *)der, sizeof(der) - 1},
                                 {"empty", "", 0}};
    struct store_stack in = {.name = "web",
                             .generation = 3,
                             .compose = (char *)compose,
                             .compose_len = sizeof(compose) - 1,
                             .files = files,
                             .n_files = 3,
                             .variables_json = "{\"TAG\": \"1.2\"}",
                             .spec_hash = "abc123",
                             .source = "kafka"};
    int64_t gen = 0;
    assert_r(s, store_put_stack(s, &in, &gen), 0);
    assert_int_equal(gen, 3);

    struct store_stack *out = NULL;
    assert_r(s, store_get_stack(s, "web", &out), 0);
    assert_string_equal(out->name, "web");
    assert_int_equal(out->generation, 3);
    assert_int_equal(out->compose_len, sizeof(compose) - 1);
    assert_memory_equal(out->compose, compose, sizeof(compose) - 1);
    assert_int_equal(out->compose[out->compose_len], '\0');
    assert_int_equal(out->n_files, 3); /* by name */
    assert_string_equal(out->files[0].name, "./key.der");
    assert_int_equal(out->files[0].len, sizeof(der) - 1);
    assert_memory_equal(out->files[0].data, der, sizeof(der) - 1);
    assert_string_equal(out->files[1].name, "empty");
    assert_int_equal(out->files[1].len, 0);
    assert_string_equal(out->files[2].name, "nginx.conf");
    assert_memory_equal(out->files[2].data, "server {}", 10);
    assert_string_equal(out->variables_json, in.variables_json);
    assert_string_equal(out->spec_hash, "abc123");
    assert_string_equal(out->source, "kafka");
    assert_false(out->removed);
    assert_true(out->updated_at > 1600000000000);
    store_stack_free(out);

    /* Defaults: no files, no variables, no hash, no source. */
    put(s, "db", 1, "services: {}\n");
    assert_r(s, store_get_stack(s, "db", &out), 0);
    assert_int_equal(out->n_files, 0);
    assert_string_equal(out->variables_json, "{}");
    assert_null(out->spec_hash);
    assert_null(out->source);
    /* The directories relative bind sources resolve against: NULL unless given. */
    assert_null(out->base_dir);
    assert_null(out->home_dir);
    store_stack_free(out);

    struct store_stack cli = {.name = "db",
                              .compose = "services: {}\n",
                              .compose_len = 13,
                              .source = "cli",
                              .base_dir = "/srv/db",
                              .home_dir = "/home/me"};
    assert_r(s, store_put_stack(s, &cli, &gen), 0);
    assert_int_equal(gen, 2);
    assert_r(s, store_get_stack(s, "db", &out), 0);
    assert_string_equal(out->base_dir, "/srv/db");
    assert_string_equal(out->home_dir, "/home/me");
    store_stack_free(out);
    struct store_stack *all = NULL;
    size_t n = 0;
    assert_r(s, store_list_stacks(s, STORE_LIST_SUMMARY, &all, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(all[0].name, "db");
    assert_string_equal(all[0].base_dir, "/srv/db");
    assert_null(all[0].compose);
    assert_null(all[1].base_dir);
    store_stack_array_free(all, n);
    /* A later write without them clears them (a remote source has no directory). */
    put(s, "db", 0, "services: {}\n");
    assert_r(s, store_get_stack(s, "db", &out), 0);
    assert_null(out->base_dir);
    assert_null(out->home_dir);
    store_stack_free(out);

    assert_r(s, store_get_stack(s, "nope", &out), -ENOENT);
    assert_null(store_stack_free(NULL));
    store_stack_array_free(NULL, 0);
}

static void test_stack_generation_monotonic(void **state)
{
    struct store *s = S(state);
    put(s, "web", 5, "a");
    struct store_stack st = {.name = "web", .generation = 5, .compose = "b", .compose_len = 1};
    assert_r(s, store_put_stack(s, &st, NULL), -ESTALE);
    assert_non_null(strstr(store_errmsg(s), "put stack web: generation 5 is not newer"));
    st.generation = 4;
    assert_r(s, store_put_stack(s, &st, NULL), -ESTALE);

    struct store_stack *out = NULL;
    assert_r(s, store_get_stack(s, "web", &out), 0);
    assert_int_equal(out->generation, 5);
    assert_memory_equal(out->compose, "a", 1); /* nothing written */
    store_stack_free(out);

    /* 0 = the next one. */
    int64_t gen = 0;
    st.generation = 0;
    assert_r(s, store_put_stack(s, &st, &gen), 0);
    assert_int_equal(gen, 6);
    st.generation = 100;
    assert_r(s, store_put_stack(s, &st, &gen), 0);
    assert_int_equal(gen, 100);
    st.generation = -1;
    assert_r(s, store_put_stack(s, &st, &gen), -EINVAL);
    st.generation = INT64_MAX;
    assert_r(s, store_put_stack(s, &st, &gen), 0);
    st.generation = 0;
    assert_r(s, store_put_stack(s, &st, &gen), -EOVERFLOW);
}

static void test_stack_limits_and_validation(void **state)
{
    struct store *s = S(state);
    struct store_stack st = {.name = "web", .compose = "x", .compose_len = 1};

    st.name = "";
    assert_r(s, store_put_stack(s, &st, NULL), -EINVAL);
    st.name = NULL;
    assert_r(s, store_put_stack(s, &st, NULL), -EINVAL);
    assert_r(s, store_put_stack(s, NULL, NULL), -EINVAL);
    char longname[STORE_NAME_MAX + 2];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    st.name = longname;
    assert_r(s, store_put_stack(s, &st, NULL), -EMSGSIZE);
    longname[STORE_NAME_MAX] = '\0'; /* exactly the maximum is fine */
    assert_r(s, store_put_stack(s, &st, NULL), 0);
    st.name = "web";

    char *big = malloc(STORE_COMPOSE_MAX + 1);
    assert_non_null(big);
    memset(big, 'a', STORE_COMPOSE_MAX + 1);
    st.compose = big;
    st.compose_len = STORE_COMPOSE_MAX + 1;
    assert_r(s, store_put_stack(s, &st, NULL), -EMSGSIZE);
    assert_non_null(strstr(store_errmsg(s), "compose is 4194305 bytes"));
    st.compose_len = STORE_COMPOSE_MAX;
    assert_r(s, store_put_stack(s, &st, NULL), 0);
    free(big);
    st.compose = "x";
    st.compose_len = 1;

    struct store_file twice[] = {{"a", "1", 1}, {"a", "2", 1}};
    st.files = twice;
    st.n_files = 2;
    assert_r(s, store_put_stack(s, &st, NULL), -EINVAL);
    assert_non_null(strstr(store_errmsg(s), "put stack web: file a is given twice"));
    struct store_file unnamed[] = {{"", "1", 1}};
    st.files = unnamed;
    st.n_files = 1;
    assert_r(s, store_put_stack(s, &st, NULL), -EINVAL);
    struct store_file nodata[] = {{"a", NULL, 3}};
    st.files = nodata;
    assert_r(s, store_put_stack(s, &st, NULL), -EINVAL);
    struct store_file toobig[] = {{"a", "x", STORE_FILES_MAX + 1u}};
    st.files = toobig;
    assert_r(s, store_put_stack(s, &st, NULL), -EMSGSIZE);
    st.files = NULL;
    st.n_files = 0;
    st.variables_json = "{\"A\": \"1\", \"A\": \"2\"}";
    assert_r(s, store_put_stack(s, &st, NULL), -EINVAL);
    st.variables_json = NULL;
    st.compose = NULL;
    st.compose_len = 3;
    assert_r(s, store_put_stack(s, &st, NULL), -EINVAL);
    st.compose = "x";
    st.compose_len = 1;

    /* base_dir and home_dir: absolute, bounded. */
    st.base_dir = "srv/app";
    assert_r(s, store_put_stack(s, &st, NULL), -EINVAL);
    assert_non_null(strstr(store_errmsg(s), "base_dir \"srv/app\" is not an absolute path"));
    st.base_dir = NULL;
    st.home_dir = "~";
    assert_r(s, store_put_stack(s, &st, NULL), -EINVAL);
    assert_non_null(strstr(store_errmsg(s), "home_dir"));
    char *long_dir = malloc(STORE_PATH_MAX + 2);
    assert_non_null(long_dir);
    memset(long_dir, 'd', STORE_PATH_MAX + 1);
    long_dir[0] = '/';
    long_dir[STORE_PATH_MAX + 1] = '\0';
    st.home_dir = long_dir;
    assert_r(s, store_put_stack(s, &st, NULL), -EMSGSIZE);
    long_dir[STORE_PATH_MAX] = '\0'; /* exactly the maximum is fine */
    assert_r(s, store_put_stack(s, &st, NULL), 0);
    free(long_dir);
}

static void test_stack_list_remove_delete(void **state)
{
    struct store *s = S(state);
    put(s, "b", 1, "bb");
    put(s, "a", 1, "aa");
    put(s, "c", 7, "cc");

    int64_t gen = 0;
    assert_r(s, store_mark_stack_removed(s, "c", 0, "cli"), 0);
    struct store_stack *out = NULL;
    assert_r(s, store_get_stack(s, "c", &out), 0);
    assert_true(out->removed);
    assert_int_equal(out->generation, 8);
    assert_string_equal(out->source, "cli");
    assert_memory_equal(out->compose, "cc", 2); /* kept: what it had */
    store_stack_free(out);
    assert_r(s, store_mark_stack_removed(s, "c", 8, "cli"), -ESTALE);

    struct store_stack *items = NULL;
    size_t n = 0;
    assert_r(s, store_list_stacks(s, 0, &items, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(items[0].name, "a");
    assert_string_equal(items[1].name, "b");
    assert_memory_equal(items[1].compose, "bb", 2);
    store_stack_array_free(items, n);

    assert_r(s, store_list_stacks(s, STORE_LIST_REMOVED | STORE_LIST_SUMMARY, &items, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(items[2].name, "c");
    assert_true(items[2].removed);
    assert_null(items[2].compose);
    assert_int_equal(items[2].compose_len, 0);
    assert_null(items[0].files);
    assert_int_equal(items[0].n_files, 0);
    store_stack_array_free(items, n);

    /* Overrides go with the stack. */
    assert_r(s, store_set_replicas(s, "b", "web", 2), 0);

    /* delete: only removed stacks, only at the generation that was pruned. */
    assert_r(s, store_delete_stack(s, "a", 1), -ESTALE);
    assert_r(s, store_delete_stack(s, "c", 7), -ESTALE);
    assert_r(s, store_delete_stack(s, "c", 8), 0);
    assert_r(s, store_get_stack(s, "c", &out), -ENOENT);
    assert_r(s, store_delete_stack(s, "c", 8), -ENOENT);

    /* Removed, then redeployed (e.g. by the CLI) before the prune finished: kept. */
    assert_r(s, store_mark_stack_removed(s, "b", 0, NULL), 0);
    put(s, "b", 0, "bb2");
    assert_r(s, store_delete_stack(s, "b", 2), -ESTALE);
    assert_r(s, store_get_stack(s, "b", &out), 0);
    assert_false(out->removed);
    assert_int_equal(out->generation, 3);
    store_stack_free(out);
    struct store_override *o = NULL;
    assert_r(s, store_get_overrides(s, "b", "web", &o), 0);
    store_override_free(o);

    /* Pruning b removes its overrides (ON DELETE CASCADE). */
    assert_r(s, store_mark_stack_removed(s, "b", 0, NULL), 0);
    assert_r(s, store_delete_stack(s, "b", 4), 0);
    struct store_override *ov = NULL;
    assert_r(s, store_list_overrides(s, "b", &ov, &n), 0);
    assert_int_equal(n, 0);
    assert_null(ov);

    /* Removing an unknown stack leaves a tombstone that refuses older deploys. */
    assert_r(s, store_mark_stack_removed(s, "ghost", 5, "kafka"), 0);
    assert_r(s, store_get_stack(s, "ghost", &out), 0);
    assert_true(out->removed);
    assert_int_equal(out->generation, 5);
    assert_int_equal(out->compose_len, 0);
    assert_non_null(out->compose);
    store_stack_free(out);
    struct store_stack old = {.name = "ghost", .generation = 4, .compose = "x", .compose_len = 1};
    assert_r(s, store_put_stack(s, &old, &gen), -ESTALE);
    old.generation = 6;
    assert_r(s, store_put_stack(s, &old, &gen), 0);

    assert_r(s, store_list_stacks(s, 0, &items, &n), 0);
    store_stack_array_free(items, n);
    assert_r(s, store_mark_stack_removed(s, "", 0, NULL), -EINVAL);
    assert_r(s, store_delete_stack(s, NULL, 0), -EINVAL);
}

/* ---- overrides ---- */

static void test_overrides(void **state)
{
    struct store *s = S(state);
    assert_r(s, store_set_replicas(s, "web", "api", 3), -ENOENT);
    assert_non_null(strstr(store_errmsg(s), "scale web/api: no such stack"));
    put_ok_stack(s, "web");

    assert_r(s, store_set_replicas(s, "web", "api", 3), 0);
    struct store_override *o = NULL;
    assert_r(s, store_get_overrides(s, "web", "api", &o), 0);
    assert_string_equal(o->stack, "web");
    assert_string_equal(o->service, "api");
    assert_int_equal(o->replicas, 3);
    assert_false(o->stopped);
    assert_int_equal(o->restart_nonce, 0);
    o = store_override_free(o);

    assert_r(s, store_set_stopped(s, "web", "api", true), 0);
    int64_t nonce = 0;
    assert_r(s, store_bump_restart(s, "web", "api", &nonce), 0);
    assert_int_equal(nonce, 1);
    assert_r(s, store_bump_restart(s, "web", "api", &nonce), 0);
    assert_int_equal(nonce, 2);
    assert_r(s, store_get_overrides(s, "web", "api", &o), 0);
    assert_int_equal(o->replicas, 3); /* each call changes only its field */
    assert_true(o->stopped);
    assert_int_equal(o->restart_nonce, 2);
    o = store_override_free(o);

    /* The whole stack: service "". */
    assert_r(s, store_bump_restart(s, "web", "", NULL), 0);
    assert_r(s, store_set_stopped(s, "web", "", true), 0);
    assert_r(s, store_set_replicas(s, "web", "", 1), -EINVAL);
    assert_r(s, store_get_overrides(s, "web", "", &o), 0);
    assert_int_equal(o->replicas, STORE_REPLICAS_UNSET);
    assert_true(o->stopped);
    assert_int_equal(o->restart_nonce, 1);
    o = store_override_free(o);

    assert_r(s, store_set_replicas(s, "web", "api", STORE_REPLICAS_UNSET), 0);
    assert_r(s, store_set_replicas(s, "web", "api", -2), -EINVAL);
    assert_r(s, store_set_replicas(s, "web", "worker", 0), 0);

    struct store_override *items = NULL;
    size_t n = 0;
    assert_r(s, store_list_overrides(s, "web", &items, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(items[0].service, "");
    assert_string_equal(items[1].service, "api");
    assert_int_equal(items[1].replicas, STORE_REPLICAS_UNSET);
    assert_string_equal(items[2].service, "worker");
    assert_int_equal(items[2].replicas, 0);
    store_override_array_free(items, n);

    assert_r(s, store_get_overrides(s, "web", "none", &o), -ENOENT);
    assert_r(s, store_clear_overrides(s, "web"), 0);
    assert_r(s, store_list_overrides(s, "web", &items, &n), 0);
    assert_int_equal(n, 0);

    /* A stack marked removed takes no more overrides. */
    assert_r(s, store_mark_stack_removed(s, "web", 0, NULL), 0);
    assert_r(s, store_set_stopped(s, "web", "api", false), -ENOENT);
    assert_r(s, store_bump_restart(s, "web", "api", NULL), -ENOENT);
    assert_r(s, store_set_stopped(s, NULL, "api", false), -EINVAL);
    assert_r(s, store_set_stopped(s, "web", NULL, false), -EINVAL);
}

/* The revisions: one row per stack, and a text that changes exactly when the overrides do. */
static char *rev_of(struct store *s, const char *stack, int64_t *ret_gen, bool *ret_removed)
{
    struct store_stack_rev *revs = NULL;
    size_t n = 0;
    assert_r(s, store_list_stack_revisions(s, &revs, &n), 0);
    char *out = NULL;
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            assert_true(strcmp(revs[i - 1].name, revs[i].name) < 0); /* by name */
        if (strcmp(revs[i].name, stack) != 0)
            continue;
        found = true;
        out = revs[i].overrides_rev ? strdup(revs[i].overrides_rev) : NULL;
        if (ret_gen)
            *ret_gen = revs[i].generation;
        if (ret_removed)
            *ret_removed = revs[i].removed;
    }
    store_stack_rev_array_free(revs, n);
    assert_true(found);
    return out;
}

static bool same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void test_stack_revisions(void **state)
{
    struct store *s = S(state);
    struct store_stack_rev *revs = NULL;
    size_t n = 7;
    assert_r(s, store_list_stack_revisions(s, &revs, &n), 0);
    assert_int_equal(n, 0);
    store_stack_rev_array_free(revs, n);

    put_ok_stack(s, "web");
    put_ok_stack(s, "db");
    int64_t gen = 0;
    bool removed = true;
    char *r0 = rev_of(s, "web", &gen, &removed);
    assert_null(r0); /* no overrides */
    assert_int_equal(gen, 1);
    assert_false(removed);

    assert_r(s, store_set_replicas(s, "web", "api", 3), 0);
    char *r1 = rev_of(s, "web", NULL, NULL);
    assert_non_null(r1);
    char *db = rev_of(s, "db", NULL, NULL);
    assert_null(db); /* another stack's overrides are not this one's */
    assert_r(s, store_set_replicas(s, "web", "api", 3), 0); /* the same value again */
    char *r1b = rev_of(s, "web", NULL, NULL);
    assert_true(same_text(r1, r1b));

    /* every kind of change shows */
    const char *texts[8] = {0};
    char *owned[8] = {0};
    size_t k = 0;
    owned[k] = r1b;
    texts[k++] = r1b;
    assert_r(s, store_set_replicas(s, "web", "api", 4), 0);
    texts[k] = owned[k] = rev_of(s, "web", NULL, NULL), k++;
    assert_r(s, store_set_stopped(s, "web", "api", true), 0);
    texts[k] = owned[k] = rev_of(s, "web", NULL, NULL), k++;
    assert_r(s, store_bump_restart(s, "web", "api", NULL), 0);
    texts[k] = owned[k] = rev_of(s, "web", NULL, NULL), k++;
    assert_r(s, store_bump_restart(s, "web", "", NULL), 0);
    texts[k] = owned[k] = rev_of(s, "web", NULL, NULL), k++;
    assert_r(s, store_set_replicas(s, "web", "api", STORE_REPLICAS_UNSET), 0);
    texts[k] = owned[k] = rev_of(s, "web", NULL, NULL), k++;
    /* a service whose name looks like the separators tells apart all the same */
    assert_r(s, store_set_replicas(s, "web", "x=1,0,0;1:y", 2), 0);
    texts[k] = owned[k] = rev_of(s, "web", NULL, NULL), k++;
    for (size_t i = 0; i < k; i++)
        for (size_t j = i + 1; j < k; j++)
            assert_false(same_text(texts[i], texts[j]));

    assert_r(s, store_clear_overrides(s, "web"), 0);
    char *cleared = rev_of(s, "web", NULL, NULL);
    assert_null(cleared);

    /* a deploy and a removal move the generation; removed is told */
    put_ok_stack(s, "web");
    char *r2 = rev_of(s, "web", &gen, &removed);
    assert_int_equal(gen, 2);
    assert_r(s, store_mark_stack_removed(s, "db", 0, NULL), 0);
    char *r3 = rev_of(s, "db", &gen, &removed);
    assert_int_equal(gen, 2);
    assert_true(removed);

    free(r1);
    free(r2);
    free(r3);
    for (size_t i = 0; i < k; i++)
        free(owned[i]);
}

/* ---- commands ---- */

static struct store_command cmd(const char *id)
{
    return (struct store_command){.command_id = (char *)id,
                                  .source = "kafka",
                                  .kind = "deploy",
                                  .stack = "web",
                                  .status = STORE_COMMAND_RECEIVED};
}

static void test_commands(void **state)
{
    struct store *s = S(state);
    struct store_command c = cmd("c-1");
    c.received_at = 1234;
    assert_r(s, store_record_command(s, &c), 0);
    assert_r(s, store_record_command(s, &c), -EEXIST);
    assert_non_null(strstr(store_errmsg(s), "record command c-1: already recorded"));

    struct store_command *out = NULL;
    assert_r(s, store_get_command(s, "c-1", &out), 0);
    assert_string_equal(out->command_id, "c-1");
    assert_string_equal(out->source, "kafka");
    assert_string_equal(out->kind, "deploy");
    assert_string_equal(out->stack, "web");
    assert_int_equal(out->received_at, 1234);
    assert_int_equal(out->status, STORE_COMMAND_RECEIVED);
    assert_null(out->error);
    assert_int_equal(out->generation, 0);
    out = store_command_free(out);

    /* The generation a command wrote comes back with it. */
    struct store_command cg = cmd("c-gen");
    cg.status = STORE_COMMAND_ACCEPTED;
    cg.generation = 7;
    assert_r(s, store_record_command(s, &cg), 0);
    assert_r(s, store_get_command(s, "c-gen", &out), 0);
    assert_int_equal(out->generation, 7);
    out = store_command_free(out);
    cg = cmd("c-neg");
    cg.generation = -1;
    assert_r(s, store_record_command(s, &cg), -EINVAL);

    assert_r(s, store_update_command(s, "c-1", STORE_COMMAND_REJECTED, "bad manifest"), 0);
    enum store_command_status st;
    assert_r(s, store_command_status(s, "c-1", &st), 0);
    assert_int_equal(st, STORE_COMMAND_REJECTED);
    assert_r(s, store_get_command(s, "c-1", &out), 0);
    assert_string_equal(out->error, "bad manifest");
    assert_true(out->received_at == 1234 && out->updated_at > 1234);
    out = store_command_free(out);
    assert_r(s, store_update_command(s, "c-2", STORE_COMMAND_APPLIED, NULL), -ENOENT);
    assert_r(s, store_update_command(s, "c-1", (enum store_command_status)99, NULL), -EINVAL);
    assert_r(s, store_command_status(s, "c-2", &st), -ENOENT);

    struct store_command c2 = cmd("c-2");
    c2.stack = NULL;
    c2.received_at = 0; /* now */
    assert_r(s, store_record_command(s, &c2), 0);
    struct store_command *items = NULL;
    size_t n = 0;
    assert_r(s, store_list_commands(s, 0, &items, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(items[0].command_id, "c-2"); /* newest first */
    assert_null(items[0].stack);
    assert_true(items[0].received_at > 1600000000000);
    store_command_array_free(items, n);
    assert_r(s, store_list_commands(s, 1, &items, &n), 0);
    assert_int_equal(n, 1);
    store_command_array_free(items, n);

    struct store_command bad = cmd("");
    assert_r(s, store_record_command(s, &bad), -EINVAL);
    bad = cmd("x");
    bad.kind = NULL;
    assert_r(s, store_record_command(s, &bad), -EINVAL);
    bad = cmd("x");
    bad.status = _STORE_COMMAND_STATUS_MAX;
    assert_r(s, store_record_command(s, &bad), -EINVAL);
    char *long_error = malloc(STORE_TEXT_MAX + 2);
    memset(long_error, 'e', STORE_TEXT_MAX + 1);
    long_error[STORE_TEXT_MAX + 1] = '\0';
    assert_r(s, store_update_command(s, "c-1", STORE_COMMAND_FAILED, long_error), -EMSGSIZE);
    free(long_error);

    for (int i = 0; i < _STORE_COMMAND_STATUS_MAX; i++)
        assert_int_equal(store_command_status_from_string(store_command_status_to_string(i)), i);
    assert_int_equal(store_command_status_from_string("nope"), -EINVAL);
    assert_null(store_command_status_to_string(_STORE_COMMAND_STATUS_MAX));
}

static void test_commands_bounded(void **state)
{
    struct store *s = S(state);
    struct store_limits l = {.commands_max = 5};
    store_set_limits(s, &l);
    char id[32];
    for (int i = 1; i <= 8; i++) {
        snprintf(id, sizeof(id), "c-%d", i);
        struct store_command c = cmd(id);
        assert_r(s, store_record_command(s, &c), 0);
    }
    enum store_command_status st;
    for (int i = 1; i <= 8; i++) {
        snprintf(id, sizeof(id), "c-%d", i);
        assert_r(s, store_command_status(s, id, &st), i <= 3 ? -ENOENT : 0);
    }

    /* The default bound: the newest 10000. */
    store_set_limits(s, &(struct store_limits){0});
    store_get_limits(s, &l);
    assert_int_equal(l.commands_max, STORE_COMMANDS_MAX_DEFAULT);
    assert_r(s, store_begin(s), 0);
    for (int i = 9; i <= 10010; i++) {
        snprintf(id, sizeof(id), "c-%d", i);
        struct store_command c = cmd(id);
        assert_r(s, store_record_command(s, &c), 0);
    }
    assert_r(s, store_commit(s), 0);
    struct store_command *items = NULL;
    size_t n = 0;
    assert_r(s, store_list_commands(s, 0, &items, &n), 0);
    assert_int_equal(n, 10000);
    assert_string_equal(items[0].command_id, "c-10010");
    assert_string_equal(items[n - 1].command_id, "c-11");
    store_command_array_free(items, n);
    assert_r(s, store_command_status(s, "c-10", &st), -ENOENT);
}

/* ---- offsets ---- */

static void test_offsets(void **state)
{
    struct store *s = S(state);
    int64_t off = -1;
    assert_r(s, store_get_offset(s, "runner.commands.a", 0, &off), -ENOENT);
    assert_int_equal(off, -1);
    assert_r(s, store_put_offset(s, "runner.commands.a", 0, 10), 0);
    assert_r(s, store_put_offset(s, "runner.commands.a", 1, 20), 0);
    assert_r(s, store_put_offset(s, "runner.commands.a", 0, 11), 0);
    assert_r(s, store_get_offset(s, "runner.commands.a", 0, &off), 0);
    assert_int_equal(off, 11);
    assert_r(s, store_get_offset(s, "runner.commands.a", 1, &off), 0);
    assert_int_equal(off, 20);
    assert_r(s, store_get_offset(s, "other", 0, &off), -ENOENT);
    assert_r(s, store_put_offset(s, "t", -1, 0), -EINVAL);
    assert_r(s, store_put_offset(s, "t", 0, -1), -EINVAL);
    assert_r(s, store_put_offset(s, "", 0, 1), -EINVAL);
}

/* ---- swarm ---- */

static void test_swarm(void **state)
{
    struct store *s = S(state);
    struct store_swarm *sw = NULL;
    assert_r(s, store_get_swarm(s, &sw), -ENOENT);

    struct store_swarm in = {.desired_role = STORE_SWARM_WORKER,
                             .join_addrs_json = "[\"10.0.0.1:2377\", \"10.0.0.2:2377\"]",
                             .join_token = "SWMTKN-1-secret",
                             .advertise_addr = "10.0.0.9"};
    assert_r(s, store_set_swarm(s, &in), 0);
    assert_r(s, store_get_swarm(s, &sw), 0);
    assert_int_equal(sw->desired_role, STORE_SWARM_WORKER);
    assert_string_equal(sw->join_addrs_json, in.join_addrs_json);
    assert_string_equal(sw->join_token, "SWMTKN-1-secret");
    assert_string_equal(sw->advertise_addr, "10.0.0.9");
    assert_true(sw->updated_at > 0);
    sw = store_swarm_free(sw);

    struct store_swarm leave = {.desired_role = STORE_SWARM_NONE};
    assert_r(s, store_set_swarm(s, &leave), 0);
    assert_r(s, store_get_swarm(s, &sw), 0);
    assert_int_equal(sw->desired_role, STORE_SWARM_NONE);
    assert_string_equal(sw->join_addrs_json, "[]");
    assert_null(sw->join_token);
    assert_null(sw->advertise_addr);
    sw = store_swarm_free(sw);

    in.join_addrs_json = "[1]";
    assert_r(s, store_set_swarm(s, &in), -EINVAL);
    in.join_addrs_json = "{}";
    assert_r(s, store_set_swarm(s, &in), -EINVAL);
    in.join_addrs_json = NULL;
    in.desired_role = _STORE_SWARM_ROLE_MAX;
    assert_r(s, store_set_swarm(s, &in), -EINVAL);
    assert_r(s, store_set_swarm(s, NULL), -EINVAL);

    for (int i = 0; i < _STORE_SWARM_ROLE_MAX; i++)
        assert_int_equal(store_swarm_role_from_string(store_swarm_role_to_string(i)), i);
    assert_int_equal(store_swarm_role_from_string("leader"), -EINVAL);
}

/* ---- applies ---- */

static void test_applies(void **state)
{
    struct store *s = S(state);
    struct store_apply *a = NULL;
    assert_r(s, store_last_apply(s, "web", &a), -ENOENT);

    int64_t id1 = 0, id2 = 0;
    assert_r(s, store_apply_begin(s, "web", 3, &id1), 0);
    assert_r(s, store_last_apply(s, "web", &a), 0);
    assert_int_equal(a->id, id1);
    assert_string_equal(a->stack, "web");
    assert_int_equal(a->generation, 3);
    assert_true(a->started_at > 0);
    assert_int_equal(a->finished_at, 0);
    assert_null(a->result);
    assert_null(a->plan_json);
    a = store_apply_free(a);

    assert_r(s, store_apply_finish(s, id1, "ok", "{\"steps\": []}"), 0);
    assert_r(s, store_apply_begin(s, "web", 4, &id2), 0);
    assert_true(id2 > id1);
    assert_r(s, store_apply_finish(s, id2, "failed: service web_api: 409 conflict", NULL), 0);
    assert_r(s, store_last_apply(s, "web", &a), 0);
    assert_int_equal(a->id, id2);
    assert_int_equal(a->generation, 4);
    assert_true(a->finished_at >= a->started_at);
    assert_string_equal(a->result, "failed: service web_api: 409 conflict");
    a = store_apply_free(a);
    assert_r(s, store_last_apply(s, "db", &a), -ENOENT);

    assert_r(s, store_apply_finish(s, id2 + 100, "ok", NULL), -ENOENT);
    assert_r(s, store_apply_finish(s, id2, "ok", "{not json"), -EINVAL);
    assert_r(s, store_apply_finish(s, id2, NULL, NULL), -EINVAL);
    assert_r(s, store_apply_begin(s, "", 1, &id1), -EINVAL);

    /* Bounded: the newest applies_max. */
    store_set_limits(s, &(struct store_limits){.applies_max = 3});
    int64_t ids[5];
    for (int i = 0; i < 5; i++)
        assert_r(s, store_apply_begin(s, i % 2 ? "db" : "web", 10 + i, &ids[i]), 0);
    assert_r(s, store_apply_finish(s, ids[1], "ok", NULL), -ENOENT);
    assert_r(s, store_apply_finish(s, ids[2], "ok", NULL), 0);
    assert_r(s, store_last_apply(s, "web", &a), 0);
    assert_int_equal(a->id, ids[4]);
    a = store_apply_free(a);
}

/* ---- events ---- */

static void test_events(void **state)
{
    struct store *s = S(state);
    int64_t id1, id2, id3;
    assert_r(s, store_add_event(s, LOG_LEVEL_INFO, "web", "service web_api", "created", &id1), 0);
    assert_r(s, store_add_event(s, LOG_LEVEL_WARN, "db", NULL, "drift: replicas 9, want 1", &id2),
             0);
    assert_r(s, store_add_event(s, LOG_LEVEL_ERROR, NULL, NULL, "docker unreachable", &id3), 0);
    assert_true(id1 < id2 && id2 < id3);

    struct store_event *ev = NULL;
    size_t n = 0;
    assert_r(s, store_list_events(s, 0, 0, NULL, &ev, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ev[0].id, id1);
    assert_int_equal(ev[0].level, LOG_LEVEL_INFO);
    assert_string_equal(ev[0].stack, "web");
    assert_string_equal(ev[0].object, "service web_api");
    assert_string_equal(ev[0].message, "created");
    assert_true(ev[0].ts > 1600000000000);
    assert_int_equal(ev[1].level, LOG_LEVEL_WARN);
    assert_null(ev[1].object);
    assert_null(ev[2].stack);
    store_event_array_free(ev, n);

    assert_r(s, store_list_events(s, id1, 0, NULL, &ev, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ev[0].id, id2);
    store_event_array_free(ev, n);
    assert_r(s, store_list_events(s, 0, 0, "db", &ev, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ev[0].id, id2);
    store_event_array_free(ev, n);
    assert_r(s, store_list_events(s, 0, 2, NULL, &ev, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ev[1].id, id2);
    store_event_array_free(ev, n);
    assert_r(s, store_list_events(s, id3, 0, NULL, &ev, &n), 0);
    assert_int_equal(n, 0);
    assert_null(ev);

    /* The tail: the newest, oldest first. */
    assert_r(s, store_list_events(s, STORE_EVENTS_TAIL, 2, NULL, &ev, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ev[0].id, id2);
    assert_int_equal(ev[1].id, id3);
    store_event_array_free(ev, n);
    assert_r(s, store_list_events(s, STORE_EVENTS_TAIL, 5, "web", &ev, &n), 0);
    assert_int_equal(n, 1);
    store_event_array_free(ev, n);

    assert_r(s, store_list_events(s, -5, 0, NULL, &ev, &n), -EINVAL);
    assert_r(s, store_add_event(s, LOG_LEVEL_INFO, NULL, NULL, NULL, NULL), -EINVAL);
    assert_r(s, store_add_event(s, (enum log_level)9, NULL, NULL, "x", NULL), -EINVAL);
    char msg[STORE_EVENT_MESSAGE_MAX + 2];
    memset(msg, 'm', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    assert_r(s, store_add_event(s, LOG_LEVEL_INFO, NULL, NULL, msg, NULL), -EMSGSIZE);
}

static void test_event_ring(void **state)
{
    struct store *s = S(state);
    /* The default ring holds 5000: add 5010 (in one transaction, for speed). */
    int64_t first = 0, last = 0;
    assert_r(s, store_begin(s), 0);
    for (int i = 0; i < 5010; i++) {
        char msg[32];
        snprintf(msg, sizeof(msg), "event %d", i);
        assert_r(s, store_add_event(s, LOG_LEVEL_DEBUG, "web", NULL, msg, &last), 0);
        if (i == 0)
            first = last;
    }
    assert_r(s, store_commit(s), 0);
    struct store_event *ev = NULL;
    size_t n = 0;
    assert_r(s, store_list_events(s, 0, 0, NULL, &ev, &n), 0);
    assert_int_equal(n, STORE_EVENTS_MAX_DEFAULT);
    assert_int_equal(ev[0].id, first + 10);
    assert_string_equal(ev[0].message, "event 10");
    assert_int_equal(ev[n - 1].id, last);
    store_event_array_free(ev, n);

    /* A smaller ring takes effect on the next insert; ids go on, never reused. */
    store_set_limits(s, &(struct store_limits){.events_max = 3});
    int64_t id = 0;
    assert_r(s, store_add_event(s, LOG_LEVEL_INFO, NULL, NULL, "after", &id), 0);
    assert_int_equal(id, last + 1);
    assert_r(s, store_list_events(s, 0, 0, NULL, &ev, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ev[2].id, id);
    assert_int_equal(ev[0].id, id - 2);
    store_event_array_free(ev, n);
}

/* ---- outbox ---- */

static void test_outbox(void **state)
{
    struct store *s = S(state);
    int64_t id1, id2, id3;
    assert_r(s, store_outbox_add(s, "runner.status", "agent-1", "\x01\x00\x02", 3, &id1), 0);
    assert_r(s, store_outbox_add(s, "runner.status", NULL, "hello", 5, &id2), 0);
    assert_r(s, store_outbox_add(s, "runner.telemetry", "agent-1", NULL, 0, &id3), 0);

    struct store_outbox_stats st;
    assert_r(s, store_outbox_stats(s, &st), 0);
    assert_int_equal(st.rows, 3);
    assert_int_equal(st.bytes, 8);
    assert_int_equal(st.dropped, 0);

    struct store_outbox_msg *m = NULL;
    size_t n = 0;
    assert_r(s, store_outbox_peek(s, 0, &m, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(m[0].id, id1);
    assert_string_equal(m[0].topic, "runner.status");
    assert_string_equal(m[0].key, "agent-1");
    assert_int_equal(m[0].payload_len, 3);
    assert_memory_equal(m[0].payload, "\x01\x00\x02", 3);
    assert_null(m[1].key);
    assert_int_equal(m[2].payload_len, 0);
    assert_non_null(m[2].payload);
    assert_true(m[0].created_at > 0);
    store_outbox_msg_array_free(m, n);

    assert_r(s, store_outbox_peek(s, 1, &m, &n), 0);
    assert_int_equal(n, 1);
    store_outbox_msg_array_free(m, n);

    /* Acks in any order. */
    assert_r(s, store_outbox_ack(s, id2), 0);
    assert_r(s, store_outbox_ack(s, id2), -ENOENT);
    assert_r(s, store_outbox_peek(s, 0, &m, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(m[1].id, id3);
    store_outbox_msg_array_free(m, n);
    assert_r(s, store_outbox_stats(s, &st), 0);
    assert_int_equal(st.rows, 2);
    assert_int_equal(st.bytes, 3);

    assert_r(s, store_outbox_add(s, "", NULL, "x", 1, NULL), -EINVAL);
    assert_r(s, store_outbox_add(s, "t", NULL, NULL, 1, NULL), -EINVAL);
    char *big = calloc(1, STORE_PAYLOAD_MAX + 1);
    assert_r(s, store_outbox_add(s, "t", NULL, big, STORE_PAYLOAD_MAX + 1, NULL), -EMSGSIZE);
    assert_r(s, store_outbox_add(s, "t", NULL, big, STORE_PAYLOAD_MAX, NULL), 0);
    free(big);
    assert_null(store_outbox_msg_free(NULL));
}

static void test_outbox_bounded(void **state)
{
    struct store *s = S(state);
    /* By rows: the oldest go, and are counted. */
    store_set_limits(s, &(struct store_limits){.outbox_rows_max = 5});
    int64_t ids[8];
    for (int i = 0; i < 8; i++) {
        char p[16];
        snprintf(p, sizeof(p), "msg %d", i);
        assert_r(s, store_outbox_add(s, "t", NULL, p, strlen(p), &ids[i]), 0);
    }
    struct store_outbox_stats st;
    assert_r(s, store_outbox_stats(s, &st), 0);
    assert_int_equal(st.rows, 5);
    assert_int_equal(st.dropped, 3);
    struct store_outbox_msg *m = NULL;
    size_t n = 0;
    assert_r(s, store_outbox_peek(s, 0, &m, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(m[0].id, ids[3]);
    assert_memory_equal(m[0].payload, "msg 3", 5);
    store_outbox_msg_array_free(m, n);
    assert_r(s, store_outbox_ack(s, ids[0]), -ENOENT);

    /* By bytes: 300-byte payloads under a 1000-byte bound keep three. */
    store_set_limits(s, &(struct store_limits){.outbox_bytes_max = 1000});
    char p[300];
    memset(p, 'p', sizeof(p));
    for (int i = 0; i < 6; i++)
        assert_r(s, store_outbox_add(s, "t", NULL, p, sizeof(p), NULL), 0);
    assert_r(s, store_outbox_stats(s, &st), 0);
    assert_int_equal(st.rows, 3);
    assert_int_equal(st.bytes, 900);
    assert_int_equal(st.dropped, 3 + 5 + 3);
    char big[1001];
    memset(big, 'b', sizeof(big));
    assert_r(s, store_outbox_add(s, "t", NULL, big, sizeof(big), NULL), -EMSGSIZE);

    /* The default: 100000 rows. */
    store_set_limits(s, &(struct store_limits){0});
    struct store_limits l;
    store_get_limits(s, &l);
    assert_int_equal(l.outbox_rows_max, STORE_OUTBOX_ROWS_MAX_DEFAULT);
    assert_int_equal(l.outbox_bytes_max, STORE_OUTBOX_BYTES_MAX_DEFAULT);
}

/* ---- stack status ---- */

static void test_stack_status(void **state)
{
    struct store *s = S(state);
    struct store_stack_status *x = NULL;
    assert_r(s, store_get_stack_status(s, "web", &x), -ENOENT);

    struct store_stack_status in = {.stack = "web",
                                    .state = STORE_STATE_DEGRADED,
                                    .reason = "web_api: 1/3 running",
                                    .services_json = "{\"web_api\": {\"running\": 1}}"};
    assert_r(s, store_set_stack_status(s, &in), 0);
    struct store_stack_status other = {.stack = "db", .state = STORE_STATE_CONVERGED};
    assert_r(s, store_set_stack_status(s, &other), 0);
    assert_r(s, store_get_stack_status(s, "web", &x), 0);
    assert_string_equal(x->stack, "web");
    assert_int_equal(x->state, STORE_STATE_DEGRADED);
    assert_string_equal(x->reason, "web_api: 1/3 running");
    assert_string_equal(x->services_json, in.services_json);
    assert_true(x->updated_at > 0);
    x = store_stack_status_free(x);

    in.state = STORE_STATE_CONVERGED;
    in.reason = NULL;
    assert_r(s, store_set_stack_status(s, &in), 0);
    struct store_stack_status *items = NULL;
    size_t n = 0;
    assert_r(s, store_list_stack_status(s, &items, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(items[0].stack, "db");
    assert_null(items[0].services_json);
    assert_string_equal(items[1].stack, "web");
    assert_int_equal(items[1].state, STORE_STATE_CONVERGED);
    assert_null(items[1].reason);
    store_stack_status_array_free(items, n);

    assert_r(s, store_delete_stack_status(s, "db"), 0);
    assert_r(s, store_delete_stack_status(s, "db"), -ENOENT);
    in.services_json = "{";
    assert_r(s, store_set_stack_status(s, &in), -EINVAL);
    in.services_json = NULL;
    in.state = _STORE_STATE_MAX;
    assert_r(s, store_set_stack_status(s, &in), -EINVAL);
    assert_r(s, store_set_stack_status(s, NULL), -EINVAL);

    for (int i = 0; i < _STORE_STATE_MAX; i++)
        assert_int_equal(store_stack_state_from_string(store_stack_state_to_string(i)), i);
    assert_int_equal(store_stack_state_from_string("happy"), -EINVAL);
}

/* ---- telemetry ---- */

static void test_telemetry(void **state)
{
    struct store *s = S(state);
    int64_t ts = 0;
    void *p = NULL;
    size_t n = 0;
    assert_r(s, store_get_telemetry(s, &ts, &p, &n), -ENOENT);
    assert_r(s,
             store_put_telemetry(s, 1000,
                                 "\x0a\x03"
                                 "abc",
                                 5),
             0);
    assert_r(s,
             store_put_telemetry(s, 2000,
                                 "\x0a\x02"
                                 "xy",
                                 4),
             0);
    assert_r(s, store_get_telemetry(s, &ts, &p, &n), 0);
    assert_int_equal(ts, 2000);
    assert_int_equal(n, 4);
    assert_memory_equal(p,
                        "\x0a\x02"
                        "xy",
                        4);
    free(p);

    void *big = calloc(1, STORE_TELEMETRY_MAX + 1);
    assert_r(s, store_put_telemetry(s, 3000, big, STORE_TELEMETRY_MAX + 1), -EMSGSIZE);
    free(big);
    assert_r(s, store_put_telemetry(s, 3000, NULL, 0), 0);
    assert_r(s, store_get_telemetry(s, &ts, &p, &n), 0);
    assert_int_equal(n, 0);
    assert_non_null(p);
    free(p);
}

/* ---- misc ---- */

static void test_data_version_and_check(void **state)
{
    struct store *s = S(state);
    uint64_t v1, v2;
    assert_r(s, store_data_version(s, &v1), 0);
    put_ok_stack(s, "web");
    assert_r(s, store_data_version(s, &v2), 0);
    assert_true(v1 == v2);
    char err[128];
    assert_r(s, store_check(s, err, sizeof(err)), 0);
    assert_r(s, store_set_busy_timeout(s, -1), -EINVAL);
    assert_r(s, store_set_busy_timeout(s, 250), 0);
    assert_null(store_close(NULL));
}

static void test_agent_state(void **state)
{
    struct store *s = S(state);
    struct store_state *v = NULL;
    size_t n = 9;
    assert_r(s, store_list_state(s, "", &v, &n), 0);
    assert_int_equal(n, 0);
    assert_null(v);
    assert_r(s, store_put_state(s, "channel.grpc", "{\"state\":\"connecting\"}"), 0);
    assert_r(s, store_put_state(s, "channel.kafka", "{\"state\":\"up\"}"), 0);
    assert_r(s, store_put_state(s, "swarm", "{\"state\":\"active\"}"), 0);
    assert_r(s, store_put_state(s, "channel.grpc", "{\"state\":\"connected\"}"), 0);
    assert_r(s, store_list_state(s, "channel.", &v, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].key, "channel.grpc");
    assert_string_equal(v[0].value, "{\"state\":\"connected\"}");
    assert_true(v[0].updated_at > 0);
    store_state_array_free(v, n);
    /* Not JSON, too large, no key: refused with a reason. */
    assert_r(s, store_put_state(s, "x", "{"), -EINVAL);
    assert_r(s, store_put_state(s, "", "{}"), -EINVAL);
    assert_r(s, store_put_state(s, "x", NULL), -EINVAL);
    char *big = malloc(STORE_STATE_VALUE_MAX + 16);
    assert_non_null(big);
    memset(big, ' ', STORE_STATE_VALUE_MAX + 8);
    memcpy(big, "\"", 1);
    memcpy(big + STORE_STATE_VALUE_MAX + 6, "\"", 2);
    big[STORE_STATE_VALUE_MAX + 8] = '\0';
    assert_r(s, store_put_state(s, "x", big), -EMSGSIZE);
    free(big);
    assert_r(s, store_delete_state(s, "swarm"), 0);
    assert_r(s, store_delete_state(s, "swarm"), -ENOENT);
    assert_r(s, store_list_state(s, "", &v, &n), 0);
    assert_int_equal(n, 2);
    store_state_array_free(v, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stack_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stack_generation_monotonic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stack_limits_and_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stack_list_remove_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overrides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stack_revisions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commands_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swarm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_applies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_ring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stack_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_telemetry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_version_and_check, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The desired-state cache against a real store: a stack is compiled again only when its
 * generation, its removed flag, the agent id or the policy changed; overrides are read and laid
 * over copies only when their revision changed; a refresh with no change builds nothing. */
#include "support/testutil.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "reconciler/desired.h"
#include "store/store.h"

#define WEB                                                                                        \
    "services:\n"                                                                                  \
    "  api:\n"                                                                                     \
    "    image: busybox\n"                                                                         \
    "    deploy: {replicas: 2}\n"                                                                  \
    "  worker:\n"                                                                                  \
    "    image: busybox\n"                                                                         \
    "    configs: [motd]\n"                                                                        \
    "configs:\n"                                                                                   \
    "  motd: {file: ./motd.txt}\n"
#define DB "services:\n  db:\n    image: busybox\n    privileged: true\n"

struct fixture {
    char *dir;
    struct store *s;
    struct desired_state ds;
    struct policy_rules policy;
    struct desired_opts opts;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = tu_mkdtemp();
    _cleanup_free_ char *path = NULL;
    assert_true(asprintf(&path, "%s/store.db", f->dir) > 0);
    char err[512];
    assert_int_equal(store_open(path, 0, &f->s, err, sizeof(err)), 0);
    f->policy = (struct policy_rules){.allow_privileged = true};
    f->opts = (struct desired_opts){.agent_id = "agent-1", .policy = &f->policy};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    desired_release(&f->ds);
    store_close(f->s);
    tu_rm_rf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* files: a JSON object of name → text, for short. */
static void put(struct store *s, const char *name, const char *compose, const char *files)
{
    json_t *j = files ? json_loads(files, 0, NULL) : json_object();
    assert_non_null(j);
    struct store_file fv[8];
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        assert_true(n < 8);
        fv[n++] =
            (struct store_file){(char *)k, (void *)json_string_value(v), json_string_length(v)};
    }
    struct store_stack st = {.name = (char *)name,
                             .compose = (char *)compose,
                             .compose_len = strlen(compose),
                             .files = fv,
                             .n_files = n};
    int r = store_put_stack(s, &st, NULL);
    if (r < 0)
        print_error("put %s: %s\n", name, store_errmsg(s));
    assert_int_equal(r, 0);
    json_decref(j);
}

static void refresh(struct fixture *f)
{
    char err[512] = "";
    int r = desired_refresh(&f->ds, f->s, &f->opts, err, sizeof(err));
    if (r < 0)
        print_error("refresh: %s\n", err);
    assert_int_equal(r, 0);
}

static const struct desired_obj *obj(const struct desired_state *ds, const char *name)
{
    for (size_t i = 0; i < ds->n_objs; i++)
        if (streq(ds->objs[i].name, name))
            return &ds->objs[i];
    return NULL;
}

static json_int_t replicas_of(const json_t *spec)
{
    return json_integer_value(
        json_object_get(json_object_get(json_object_get(spec, "Mode"), "Replicated"), "Replicas"));
}

/* The compiled (pristine) object of a stack. */
static const struct spec_object *compiled(const struct desired_state *ds, const char *stack,
                                          const char *name)
{
    const struct desired_stack *s = desired_find(ds, stack);
    assert_non_null(s);
    assert_non_null(s->compiled);
    const struct spec_object *o = spec_stack_find(s->compiled->spec, SPEC_SERVICE, name);
    assert_non_null(o);
    return o;
}

static void test_compiles_once_and_reads_nothing_when_unchanged(void **state)
{
    struct fixture *f = *state;
    refresh(f); /* an empty store */
    assert_int_equal(f->ds.n_stacks, 0);
    assert_int_equal(f->ds.compiles, 0);

    put(f->s, "web", WEB, "{\"motd.txt\": \"hello\"}");
    put(f->s, "db", DB, NULL);
    refresh(f);
    assert_int_equal(f->ds.compiles, 2);
    assert_int_equal(f->ds.overlays, 0); /* no overrides: none read */
    assert_int_equal(f->ds.n_stacks, 2);
    assert_string_equal(f->ds.stacks[0].name, "db"); /* by name */
    assert_int_equal(f->ds.n_known, 2);
    assert_int_equal(f->ds.n_frozen, 0);
    /* two stack networks, a config, three services */
    assert_int_equal(f->ds.n_objs, 6);
    const struct desired_obj *api = obj(&f->ds, "web_api");
    assert_non_null(api);
    assert_int_equal(replicas_of(api->spec), 2);
    assert_non_null(obj(&f->ds, "db_db"));
    uint64_t v = f->ds.version;

    for (int i = 0; i < 3; i++) {
        refresh(f);
        assert_int_equal(f->ds.compiles, 2);
        assert_int_equal(f->ds.overlays, 0);
        assert_int_equal(f->ds.version, v); /* nothing changed, nothing rebuilt */
    }
    assert_ptr_equal(obj(&f->ds, "web_api")->spec, api->spec);
}

static void test_overrides_over_a_copy(void **state)
{
    struct fixture *f = *state;
    put(f->s, "web", WEB, "{\"motd.txt\": \"hello\"}");
    put(f->s, "db", DB, NULL);
    refresh(f);
    char pristine_hash[SPEC_HASH_HEX + 1];
    snprintf(pristine_hash, sizeof(pristine_hash), "%s", compiled(&f->ds, "web", "web_api")->hash);
    uint64_t v = f->ds.version;

    assert_int_equal(store_set_replicas(f->s, "web", "api", 5), 0);
    refresh(f);
    assert_int_equal(f->ds.compiles, 2); /* not compiled again */
    assert_int_equal(f->ds.overlays, 1); /* web's overrides read, db's not */
    assert_true(f->ds.version != v);
    const struct desired_obj *api = obj(&f->ds, "web_api");
    assert_int_equal(replicas_of(api->spec), 5);
    assert_string_not_equal(api->hash, pristine_hash);
    const json_t *labels = json_object_get(api->spec, "Labels");
    assert_string_equal(json_string_value(json_object_get(labels, "io.axion.spec-hash")),
                        api->hash);
    /* the compiled spec stays as compiled */
    const struct spec_object *c = compiled(&f->ds, "web", "web_api");
    assert_int_equal(replicas_of(c->spec), 2);
    assert_string_equal(c->hash, pristine_hash);
    assert_true(api->spec != c->spec);
    /* the service's description follows the overrides */
    const struct desired_stack *web = desired_find(&f->ds, "web");
    assert_int_equal(web->n_services, 2);
    assert_string_equal(web->services[0].short_name, "api");
    assert_int_equal(web->services[0].replicas, 5);
    /* a service without an override is the compiled one */
    assert_ptr_equal(obj(&f->ds, "web_worker")->spec, compiled(&f->ds, "web", "web_worker")->spec);

    refresh(f); /* the same overrides: nothing read again */
    assert_int_equal(f->ds.overlays, 1);

    /* a stop of the whole stack, then a start: replicas come back to the scale */
    assert_int_equal(store_set_stopped(f->s, "web", "", true), 0);
    refresh(f);
    assert_int_equal(f->ds.overlays, 2);
    assert_int_equal(replicas_of(obj(&f->ds, "web_api")->spec), 0);
    assert_int_equal(replicas_of(obj(&f->ds, "web_worker")->spec), 0);
    assert_int_equal(store_set_stopped(f->s, "web", "", false), 0);
    refresh(f);
    assert_int_equal(replicas_of(obj(&f->ds, "web_api")->spec), 5);

    /* a restart is TaskTemplate.ForceUpdate */
    assert_int_equal(store_bump_restart(f->s, "web", "worker", NULL), 0);
    refresh(f);
    json_t *tt = json_object_get(obj(&f->ds, "web_worker")->spec, "TaskTemplate");
    assert_int_equal(json_integer_value(json_object_get(tt, "ForceUpdate")), 1);
    json_t *ctt = json_object_get(compiled(&f->ds, "web", "web_worker")->spec, "TaskTemplate");
    assert_int_equal(json_integer_value(json_object_get(ctt, "ForceUpdate")), 0);

    /* overrides cleared: back to the compiled specs and hashes */
    assert_int_equal(store_clear_overrides(f->s, "web"), 0);
    refresh(f);
    assert_ptr_equal(obj(&f->ds, "web_api")->spec, compiled(&f->ds, "web", "web_api")->spec);
    assert_string_equal(obj(&f->ds, "web_api")->hash, pristine_hash);
    assert_int_equal(f->ds.compiles, 2);
}

static void test_what_compiles_again(void **state)
{
    struct fixture *f = *state;
    put(f->s, "web", WEB, "{\"motd.txt\": \"hello\"}");
    put(f->s, "db", DB, NULL);
    refresh(f);
    assert_int_equal(f->ds.compiles, 2);

    /* a new generation of one stack: that stack only, even when its text is the same */
    put(f->s, "db", DB, NULL);
    refresh(f);
    assert_int_equal(f->ds.compiles, 3);
    assert_int_equal(desired_find(&f->ds, "db")->generation, 2);

    /* the policy: every stack; db is refused now and frozen, its objects gone from the plan */
    f->policy.allow_privileged = false;
    refresh(f);
    assert_int_equal(f->ds.compiles, 5);
    assert_int_equal(f->ds.n_frozen, 1);
    assert_string_equal(f->ds.frozen[0], "db");
    const struct desired_stack *db = desired_find(&f->ds, "db");
    assert_non_null(db->error);
    assert_non_null(strstr(db->error, "generation 2: "));
    assert_non_null(strstr(db->error, "privileged"));
    assert_null(obj(&f->ds, "db_db"));
    refresh(f); /* a frozen stack is not tried again until something changes */
    assert_int_equal(f->ds.compiles, 5);
    f->policy.allow_privileged = true;
    refresh(f);
    assert_int_equal(f->ds.compiles, 7);
    assert_int_equal(f->ds.n_frozen, 0);
    assert_non_null(obj(&f->ds, "db_db"));

    /* the agent id: every stack (it is a label of every object) */
    f->opts.agent_id = "agent-2";
    refresh(f);
    assert_int_equal(f->ds.compiles, 9);
    const json_t *labels = json_object_get(obj(&f->ds, "web_api")->spec, "Labels");
    assert_string_equal(json_string_value(json_object_get(labels, "io.axion.agent")), "agent-2");

    /* removed: not compiled, no objects, named as removed; then forgotten */
    assert_int_equal(store_mark_stack_removed(f->s, "web", 0, NULL), 0);
    refresh(f);
    assert_int_equal(f->ds.compiles, 9);
    assert_int_equal(f->ds.n_removed, 1);
    assert_string_equal(f->ds.removed[0], "web");
    assert_int_equal(f->ds.n_known, 2);
    assert_null(obj(&f->ds, "web_api"));
    assert_true(desired_find(&f->ds, "web")->removed);
    assert_int_equal(store_delete_stack(f->s, "web", desired_find(&f->ds, "web")->generation), 0);
    refresh(f);
    assert_int_equal(f->ds.n_stacks, 1);
    assert_int_equal(f->ds.n_known, 1);
    assert_int_equal(f->ds.n_removed, 0);
    assert_null(desired_find(&f->ds, "web"));

    /* a stack that comes before the others by name, and one after */
    put(f->s, "aaa", DB, NULL);
    put(f->s, "zzz", DB, NULL);
    refresh(f);
    assert_int_equal(f->ds.compiles, 11);
    assert_int_equal(f->ds.n_stacks, 3);
    assert_string_equal(f->ds.stacks[0].name, "aaa");
    assert_string_equal(f->ds.stacks[1].name, "db");
    assert_string_equal(f->ds.stacks[2].name, "zzz");
    assert_non_null(obj(&f->ds, "aaa_db"));
    assert_non_null(obj(&f->ds, "db_db"));
    assert_non_null(obj(&f->ds, "zzz_db"));
}

static void test_bad_inputs_freeze(void **state)
{
    struct fixture *f = *state;
    /* the file the manifest names is not attached */
    put(f->s, "web", WEB, NULL);
    refresh(f);
    const struct desired_stack *web = desired_find(&f->ds, "web");
    assert_non_null(web->error);
    assert_non_null(strstr(web->error, "motd.txt"));
    assert_int_equal(f->ds.n_frozen, 1);
    assert_int_equal(f->ds.n_objs, 0);
    /* overrides of a frozen stack are kept for when it builds again */
    assert_int_equal(store_set_replicas(f->s, "web", "api", 4), 0);
    refresh(f);
    assert_int_equal(f->ds.n_objs, 0);
    put(f->s, "web", WEB, "{\"./motd.txt\": \"hi\"}");
    refresh(f);
    assert_int_equal(f->ds.n_frozen, 0);
    assert_int_equal(replicas_of(obj(&f->ds, "web_api")->spec), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_compiles_once_and_reads_nothing_when_unchanged, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_overrides_over_a_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_what_compiles_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_inputs_freeze, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The compose corpus in tests/data/compose/:
 * - every bad/NAME.yml must fail with exactly the text of bad/NAME.err, going through
 *   compose_parse, spec_convert (stack "stack", the files of bad/files/ attached as
 *   "files/NAME") and policy_check with nothing allowed; NAME.vars holds KEY=VALUE variables;
 * - every good/NAME.yml must parse and convert, twice to the same bytes, each object carrying
 *   the io.axion labels and a spec hash that matches its body; good/ files are read as the CLI
 *   reads a local file (relative bind sources resolve against good/, ~ against GOOD_HOME).
 * AXT_CORPUS_UPDATE=1 rewrites the .err files from what the code says (then review the diff). */
#include "support/testutil.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/util.h"
#include "compose/compose.h"
#include "compose/policy.h"
#include "compose/spec.h"

static char *read_file(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "rbe");
    if (!f)
        return NULL;
    struct buf b = BUF_INIT(16 << 20);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(buf_append(&b, chunk, n), 0);
    fclose(f);
    return buf_detach(&b, ret_len);
}

static char *corpus_dir(const char *sub)
{
    const char *src = getenv("AXION_SOURCE_DIR");
    assert_non_null(src);
    char *d = NULL;
    assert_true(asprintf(&d, "%s/tests/data/compose/%s", src, sub) > 0);
    return d;
}

/* Sorted names of dir ending in suffix, without it. */
static size_t list(const char *dir, const char *suffix, char ***ret)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char **v = NULL;
    size_t n = 0;
    struct dirent *e;
    size_t sl = strlen(suffix);
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l <= sl || strcmp(e->d_name + l - sl, suffix) != 0)
            continue;
        v = realloc(v, (n + 1) * sizeof(*v));
        v[n++] = strndup(e->d_name, l - sl);
    }
    closedir(d);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
            char *t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    *ret = v;
    return n;
}

struct vars {
    struct compose_var v[32];
    char *text;
    size_t n;
};

/* KEY=VALUE lines; for KEY=REF|OURS the second value. */
static void vars_load(struct vars *vs, const char *path, const char *stack)
{
    vs->n = 0;
    vs->v[vs->n++] = (struct compose_var){"AXT_STACK", stack};
    vs->text = read_file(path, NULL);
    if (!vs->text)
        return;
    char *save = NULL;
    for (char *line = strtok_r(vs->text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (*line == '#' || !eq)
            continue;
        *eq = '\0';
        char *value = eq + 1, *bar = strchr(value, '|');
        if (bar)
            value = bar + 1;
        assert_true(vs->n < ARRAY_SIZE(vs->v));
        vs->v[vs->n++] = (struct compose_var){line, value};
    }
}

struct files {
    struct spec_file f[16];
    char *names[16];
    char *data[16];
    size_t n;
};

static void files_load(struct files *fs, const char *dir)
{
    fs->n = 0;
    char **names;
    size_t n = list(dir, "", &names);
    for (size_t i = 0; i < n; i++) {
        if (names[i][0] != '.' && fs->n < ARRAY_SIZE(fs->f)) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
            size_t len;
            char *data = read_file(path, &len);
            if (data) {
                assert_true(asprintf(&fs->names[fs->n], "files/%s", names[i]) > 0);
                fs->data[fs->n] = data;
                fs->f[fs->n] = (struct spec_file){fs->names[fs->n], data, len};
                fs->n++;
            }
        }
        free(names[i]);
    }
    free(names);
}

static void files_free(struct files *fs)
{
    for (size_t i = 0; i < fs->n; i++) {
        free(fs->names[i]);
        free(fs->data[i]);
    }
}

#define GOOD_HOME "/home/axt"

/* parse → convert → policy; 0, or the error in err. opts: NULL for a remote source. */
static int pipeline(const char *text, size_t len, const char *filename, const struct vars *vs,
                    const struct compose_options *opts, const struct files *fs,
                    struct spec_stack **ret, struct compose_error *err)
{
    struct compose_vars vars = {vs->v, vs->n};
    struct compose_project *p = NULL;
    int r = compose_parse_opts(text, len, filename, &vars, opts, &p, err);
    if (r < 0)
        return r;
    struct spec_input in = {
        .stack = "stack", .agent_id = "agent", .files = fs->f, .n_files = fs->n};
    struct spec_stack *st = NULL;
    r = spec_convert(p, &in, &st, err);
    if (r == 0) {
        struct policy_rules none = {0};
        r = policy_check(p, &none, err);
    }
    compose_project_free(p);
    if (r == 0 && ret)
        *ret = st;
    else
        spec_stack_free(st);
    return r;
}

static void test_bad(void **state)
{
    char *dir = corpus_dir("bad"), *fdir = corpus_dir("bad/files");
    struct files fs;
    files_load(&fs, fdir);
    char **names;
    size_t n = list(dir, ".yml", &names);
    assert_true(n > 0);
    int failures = 0;
    bool update = getenv("AXT_CORPUS_UPDATE") != NULL;
    for (size_t i = 0; i < n; i++) {
        char yml[4096], errf[4096], varsf[4096], fname[512];
        snprintf(yml, sizeof(yml), "%s/%s.yml", dir, names[i]);
        snprintf(errf, sizeof(errf), "%s/%s.err", dir, names[i]);
        snprintf(varsf, sizeof(varsf), "%s/%s.vars", dir, names[i]);
        snprintf(fname, sizeof(fname), "%s.yml", names[i]);
        size_t len;
        char *text = read_file(yml, &len);
        assert_non_null(text);
        struct vars vs;
        vars_load(&vs, varsf, "stack");
        struct compose_error err;
        int r = pipeline(text, len, fname, &vs, NULL, &fs, NULL, &err);
        char *want = read_file(errf, NULL);
        if (update) {
            FILE *f = fopen(errf, "we");
            assert_non_null(f);
            fprintf(f, "%s\n", r < 0 ? err.text : "(no error)");
            fclose(f);
        } else if (r >= 0) {
            fprintf(stderr, "bad/%s.yml: no error, expected: %s", names[i], want ? want : "?\n");
            failures++;
        } else {
            size_t wl = want ? strlen(want) : 0;
            while (wl && want[wl - 1] == '\n')
                want[--wl] = '\0';
            if (!want || !streq(want, err.text)) {
                fprintf(stderr, "bad/%s.yml:\n  expected: %s\n  got:      %s\n", names[i],
                        want ? want : "(no .err file)", err.text);
                failures++;
            }
        }
        free(want);
        free(vs.text);
        free(text);
        free(names[i]);
    }
    free(names);
    files_free(&fs);
    free(dir);
    free(fdir);
    assert_int_equal(failures, 0);
}

static char *dump_stack(const struct spec_stack *st)
{
    struct buf b = BUF_INIT(64 << 20);
    for (size_t i = 0; i < st->n_objects; i++) {
        char *t = json_dumps(st->objects[i].spec, JSON_COMPACT | JSON_SORT_KEYS);
        assert_non_null(t);
        buf_printf(&b, "%s %s %s\n", spec_kind_to_string(st->objects[i].kind), st->objects[i].name,
                   t);
        free(t);
    }
    return buf_detach(&b, NULL);
}

static void check_object(const struct spec_object *o)
{
    json_t *labels = spec_labels(o->spec);
    assert_non_null(labels);
    assert_string_equal(json_string_value(json_object_get(labels, SPEC_LABEL_MANAGED)), "true");
    assert_string_equal(json_string_value(json_object_get(labels, SPEC_LABEL_AGENT)), "agent");
    assert_string_equal(json_string_value(json_object_get(labels, SPEC_LABEL_STACK)), "stack");
    assert_string_equal(json_string_value(json_object_get(labels, SPEC_LABEL_NAMESPACE)), "stack");
    assert_string_equal(json_string_value(json_object_get(labels, SPEC_LABEL_HASH)), o->hash);
    /* the hash is the body's without the hash label */
    json_t *copy = json_deep_copy(o->spec);
    json_object_del(spec_labels(copy), SPEC_LABEL_HASH);
    char hex[SPEC_HASH_HEX + 1];
    assert_int_equal(spec_hash_json(copy, hex), 0);
    assert_string_equal(hex, o->hash);
    json_decref(copy);
    if (o->kind == SPEC_SERVICE)
        assert_non_null(json_object_get(labels, SPEC_LABEL_IMAGE));
}

static void test_good(void **state)
{
    char *dir = corpus_dir("good"), *fdir = corpus_dir("good/files");
    struct files fs;
    files_load(&fs, fdir);
    char **names;
    size_t n = list(dir, ".yml", &names);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        char yml[4096], varsf[4096];
        snprintf(yml, sizeof(yml), "%s/%s.yml", dir, names[i]);
        snprintf(varsf, sizeof(varsf), "%s/%s.vars", dir, names[i]);
        size_t len;
        char *text = read_file(yml, &len);
        struct vars vs;
        vars_load(&vs, varsf, "stack");
        struct compose_error err;
        struct spec_stack *a = NULL, *b = NULL;
        struct compose_options opts = {.base_dir = dir, .home_dir = GOOD_HOME};
        if (pipeline(text, len, yml, &vs, &opts, &fs, &a, &err) < 0 &&
            !strstr(err.text, "refused by policy"))
            fail_msg("%s", err.text);
        if (!a) {
            /* refused by the policy: convert without it */
            struct compose_vars vars = {vs.v, vs.n};
            struct compose_project *p;
            assert_int_equal(compose_parse_opts(text, len, yml, &vars, &opts, &p, &err), 0);
            struct spec_input in = {
                .stack = "stack", .agent_id = "agent", .files = fs.f, .n_files = fs.n};
            assert_int_equal(spec_convert(p, &in, &a, &err), 0);
            assert_int_equal(spec_convert(p, &in, &b, &err), 0);
            compose_project_free(p);
        } else {
            struct policy_rules all = {.exceptions = POLICY_EXCEPT_ALL};
            struct compose_vars vars = {vs.v, vs.n};
            struct compose_project *p;
            assert_int_equal(compose_parse_opts(text, len, yml, &vars, &opts, &p, &err), 0);
            assert_int_equal(policy_check(p, &all, &err), 0);
            struct spec_input in = {
                .stack = "stack", .agent_id = "agent", .files = fs.f, .n_files = fs.n};
            assert_int_equal(spec_convert(p, &in, &b, &err), 0);
            compose_project_free(p);
        }
        char *da = dump_stack(a), *db = dump_stack(b);
        assert_string_equal(da, db);
        for (size_t k = 0; k < a->n_objects; k++)
            check_object(&a->objects[k]);
        free(da);
        free(db);
        spec_stack_free(a);
        spec_stack_free(b);
        free(vs.text);
        free(text);
        free(names[i]);
    }
    free(names);
    files_free(&fs);
    free(dir);
    free(fdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_good),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

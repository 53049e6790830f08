/* The policy corpus in tests/data/policy/, replayed through compile_stack() (parse, policy,
 * files, convert), the door the intake and the reconciler use:
 * - every refused/NAME.yml must be refused with exactly the text of refused/NAME.err, and pass
 *   once the rule its message names is waived (policy.exceptions): each refusal names the rule
 *   that made it, and one rule only;
 * - every allowed/NAME.yml must compile.
 * A "# policy: key=value[,value] ..." line at the top sets the rules (level, exceptions,
 * bind_allow, cap_add, volume_drivers, network_drivers, log_drivers, secret_drivers, sysctls,
 * engine_socket, allow_privileged, allow_host_namespaces, allow_cap_add, allow_devices);
 * without one the defaults of the config hold (baseline, nothing allowed). The manifest's
 * directory is /srv/app and the home /home/u; every file a manifest names reads "x".
 * AXT_CORPUS_UPDATE=1 rewrites the .err files from what the code says (then review the diff). */
#include "support/testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/util.h"
#include "compose/compile.h"
#include "compose/policy.h"

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rbe");
    if (!f)
        return NULL;
    struct buf b = BUF_INIT(1 << 20);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(buf_append(&b, chunk, n), 0);
    fclose(f);
    return buf_detach(&b, NULL);
}

static char *corpus_dir(const char *sub)
{
    const char *src = getenv("AXION_SOURCE_DIR");
    assert_non_null(src);
    char *d = NULL;
    assert_true(asprintf(&d, "%s/tests/data/policy/%s", src, sub) > 0);
    return d;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of dir's *.yml, without the suffix. */
static size_t list(const char *dir, char ***ret)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char **v = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l <= 4 || strcmp(e->d_name + l - 4, ".yml") != 0)
            continue;
        v = realloc(v, (n + 1) * sizeof(*v));
        v[n++] = strndup(e->d_name, l - 4);
    }
    closedir(d);
    qsort(v, n, sizeof(*v), cmp_name);
    *ret = v;
    return n;
}

/* ---- rules from the "# policy:" line -------------------------------------------------------- */

struct rules {
    struct policy_rules r;
    char *text; /* the line's copy: the lists point into it */
    char *lists[8][16];
};

static void set_list(struct rules *rs, int slot, struct policy_list *l, char *value)
{
    l->v = rs->lists[slot];
    l->n = 0;
    char *save = NULL;
    for (char *s = strtok_r(value, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        assert_true(l->n < 16);
        rs->lists[slot][l->n++] = s;
    }
}

static void rules_load(struct rules *rs, const char *yml, const char *name)
{
    memset(rs, 0, sizeof(*rs));
    rs->r.engine_socket = "/var/run/docker.sock";
    const char *line = strstr(yml, "# policy:");
    if (!line)
        return;
    size_t len = strcspn(line, "\n");
    rs->text = strndup(line + 9, len - 9);
    char *save = NULL;
    for (char *kv = strtok_r(rs->text, " ", &save); kv; kv = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            fail_msg("%s: policy line: \"%s\" is not key=value", name, kv);
        *eq = '\0';
        char *k = kv, *v = eq + 1;
        struct policy_list bind = {0};
        if (streq(k, "level")) {
            int l = policy_level_from_string(v);
            assert_true(l >= 0);
            rs->r.level = (enum policy_level)l;
        } else if (streq(k, "exceptions")) {
            struct policy_list ex;
            set_list(rs, 0, &ex, v);
            for (size_t i = 0; i < ex.n; i++) {
                int rule = policy_rule_from_string(ex.v[i]);
                if (rule < 0)
                    fail_msg("%s: no policy rule named %s", name, ex.v[i]);
                rs->r.exceptions |= POLICY_EXCEPT(rule);
            }
        } else if (streq(k, "bind_allow")) {
            set_list(rs, 1, &bind, v);
            rs->r.bind_allow = bind.v;
            rs->r.n_bind_allow = bind.n;
        } else if (streq(k, "cap_add")) {
            set_list(rs, 2, &rs->r.cap_add, v);
        } else if (streq(k, "volume_drivers")) {
            set_list(rs, 3, &rs->r.volume_drivers, v);
        } else if (streq(k, "network_drivers")) {
            set_list(rs, 4, &rs->r.network_drivers, v);
        } else if (streq(k, "log_drivers")) {
            set_list(rs, 5, &rs->r.log_drivers, v);
        } else if (streq(k, "secret_drivers")) {
            set_list(rs, 6, &rs->r.secret_drivers, v);
        } else if (streq(k, "sysctls")) {
            set_list(rs, 7, &rs->r.sysctls, v);
        } else if (streq(k, "engine_socket")) {
            rs->r.engine_socket = v;
        } else if (streq(k, "allow_privileged")) {
            rs->r.allow_privileged = streq(v, "true");
        } else if (streq(k, "allow_host_namespaces")) {
            rs->r.allow_host_namespaces = streq(v, "true");
        } else if (streq(k, "allow_cap_add")) {
            rs->r.allow_cap_add = streq(v, "true");
        } else if (streq(k, "allow_devices")) {
            rs->r.allow_devices = streq(v, "true");
        } else {
            fail_msg("%s: policy line: unknown key %s", name, k);
        }
    }
}

/* ---- the compile ----------------------------------------------------------------------------- */

static int any_file(void *ud, const char *name, struct spec_file *ret, char *why, size_t whylen)
{
    *ret = (struct spec_file){name, "x", 1};
    return 0;
}

static int compile(const char *text, const char *filename, const struct policy_rules *rules,
                   struct compose_error *err)
{
    struct compile_input in = {
        .stack = "app",
        .filename = filename,
        .text = text,
        .len = strlen(text),
        .files = {any_file, NULL},
        .base_dir = "/srv/app",
        .home_dir = "/home/u",
        .agent_id = "agent",
        .policy = rules,
    };
    struct compile_result *res = NULL;
    int r = compile_stack(&in, &res, err);
    compile_result_free(res);
    return r;
}

static void test_refused(void **state)
{
    char *dir = corpus_dir("refused");
    char **names;
    size_t n = list(dir, &names);
    assert_true(n >= 50);
    int failures = 0;
    bool update = getenv("AXT_CORPUS_UPDATE") != NULL;
    for (size_t i = 0; i < n; i++) {
        char yml[4096], errf[4096], fname[512];
        snprintf(yml, sizeof(yml), "%s/%s.yml", dir, names[i]);
        snprintf(errf, sizeof(errf), "%s/%s.err", dir, names[i]);
        snprintf(fname, sizeof(fname), "%s.yml", names[i]);
        char *text = read_file(yml);
        assert_non_null(text);
        struct rules rs;
        rules_load(&rs, text, fname);
        struct compose_error err;
        int r = compile(text, fname, &rs.r, &err);
        char *want = read_file(errf);
        if (update) {
            FILE *f = fopen(errf, "we");
            assert_non_null(f);
            fprintf(f, "%s\n", r < 0 ? err.text : "(no error)");
            fclose(f);
        } else if (r != -EPERM) {
            fprintf(stderr, "refused/%s.yml: %s, expected: %s", names[i],
                    r == 0 ? "allowed" : err.text, want ? want : "?\n");
            failures++;
        } else {
            size_t wl = want ? strlen(want) : 0;
            while (wl && want[wl - 1] == '\n')
                want[--wl] = '\0';
            if (!want || !streq(want, err.text)) {
                fprintf(stderr, "refused/%s.yml:\n  expected: %s\n  got:      %s\n", names[i],
                        want ? want : "(no .err file)", err.text);
                failures++;
            }
        }
        /* The rule the message names, waived: nothing else refuses the file. */
        const char *rule = r == -EPERM ? strstr(err.text, "(rule ") : NULL;
        if (rule) {
            char name[64] = "";
            sscanf(rule + 6, "%63[a-z-]", name);
            int id = policy_rule_from_string(name);
            if (id < 0) {
                fprintf(stderr, "refused/%s.yml: no rule named \"%s\"\n", names[i], name);
                failures++;
            } else {
                rs.r.exceptions |= POLICY_EXCEPT(id);
                struct compose_error again;
                if (compile(text, fname, &rs.r, &again) != 0) {
                    fprintf(stderr, "refused/%s.yml: still refused with %s waived: %s\n", names[i],
                            name, again.text);
                    failures++;
                }
            }
        } else if (r == -EPERM) {
            fprintf(stderr, "refused/%s.yml: the message names no rule: %s\n", names[i], err.text);
            failures++;
        }
        free(want);
        free(rs.text);
        free(text);
        free(names[i]);
    }
    free(names);
    free(dir);
    assert_int_equal(failures, 0);
}

static void test_allowed(void **state)
{
    char *dir = corpus_dir("allowed");
    char **names;
    size_t n = list(dir, &names);
    assert_true(n >= 20);
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        char yml[4096], fname[512];
        snprintf(yml, sizeof(yml), "%s/%s.yml", dir, names[i]);
        snprintf(fname, sizeof(fname), "%s.yml", names[i]);
        char *text = read_file(yml);
        assert_non_null(text);
        struct rules rs;
        rules_load(&rs, text, fname);
        struct compose_error err;
        if (compile(text, fname, &rs.r, &err) != 0) {
            fprintf(stderr, "allowed/%s.yml: %s\n", names[i], err.text);
            failures++;
        }
        free(rs.text);
        free(text);
        free(names[i]);
    }
    free(names);
    free(dir);
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_allowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

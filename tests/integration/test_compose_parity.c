/* Parity with `docker stack deploy`: every file of tests/data/compose/good/ is deployed twice on
 * the real Swarm, once by the docker CLI (stack axtcrNN, the reference) and once from our
 * converter's bodies POSTed to the Engine API (stack axtcoNN), and the specs the Engine stores
 * are compared: services, networks, configs, secrets, after dropping io.axion.* labels,
 * replacing IDs by names, and mapping our names and per-side variable values (the stack name,
 * ports, subnets) to the reference's. Any difference fails the test, printed path by path.
 *
 * Per file, optional:
 *   NAME.vars      KEY=VALUE lines (both sides) or KEY=REF|OURS (a value per side); AXT_STACK
 *                  is always the side's stack name
 *   "# parity-client: /usr/local/bin/docker" in the file: the docker CLI that deploys the
 *                  reference (default: Debian's /usr/bin/docker; AXT_PARITY_CLIENT overrides)
 * Each file is read as the CLI reads a local file: relative bind sources resolve against good/ and
 * ~ against the HOME the reference deploys with (a temporary directory), as docker does.
 * Attached files (config/secret `file:`, `env_file`) are the files in good/files/, named
 * "files/NAME". External objects the files may use are created here: network axtc-ext-net, secret
 * axtc-ext-secret, config axtc-ext-config. Run under flock /tmp/axion-docker.lock. */
#include "support/testutil.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/util.h"
#include "compose/compose.h"
#include "compose/spec.h"

#define API        "http://localhost/v1.41"
#define SOCK       "/var/run/docker.sock"
#define OLD_DOCKER "/usr/bin/docker"
#define AGENT_ID   "axt-compose-agent"
#define EXT_NET    "axtc-ext-net"
#define EXT_SECRET "axtc-ext-secret"
#define EXT_CONFIG "axtc-ext-config"
#define BIND_DIR   "/tmp/axtc-bind"

static char *data_dir;
static char *home_dir;

/* ---- files ------------------------------------------------------------------------------ */

static char *read_file(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "rbe");
    if (!f)
        return NULL;
    struct buf b = BUF_INIT(16 << 20);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (buf_append(&b, chunk, n) < 0)
            break;
    fclose(f);
    return buf_detach(&b, ret_len);
}

/* ---- the Engine API over the unix socket ------------------------------------------------ */

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    return buf_append(ud, ptr, size * nmemb) == 0 ? size * nmemb : 0;
}

/* Returns the HTTP status (0 on a transport error) and the body in *ret_body (may be NULL). */
static long api(const char *method, const char *path, const char *body, char **ret_body)
{
    CURL *c = curl_easy_init();
    assert_non_null(c);
    struct buf out = BUF_INIT(64 << 20);
    char url[2048];
    snprintf(url, sizeof(url), "%s%s", API, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, SOCK);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    char *s = buf_detach(&out, NULL);
    if (ret_body)
        *ret_body = s;
    else
        free(s);
    return status;
}

static json_t *api_json(const char *path)
{
    char *body = NULL;
    long st = api("GET", path, NULL, &body);
    json_t *j = st == 200 ? json_loads(body, 0, NULL) : NULL;
    if (!j)
        fprintf(stderr, "GET %s: %ld %s\n", path, st, body ? body : "");
    free(body);
    return j;
}

static char *url_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *r = strdup(e);
    curl_free(e);
    return r;
}

/* ---- variables -------------------------------------------------------------------------- */

struct var {
    char *name;
    char *ref;
    char *ours;
};

struct vars {
    struct var v[64];
    size_t n;
};

static void vars_add(struct vars *vs, const char *name, const char *ref, const char *ours)
{
    assert_true(vs->n < ARRAY_SIZE(vs->v));
    vs->v[vs->n++] = (struct var){strdup(name), strdup(ref), strdup(ours)};
}

static void vars_load(struct vars *vs, const char *path)
{
    _cleanup_free_ char *text = read_file(path, NULL);
    if (!text)
        return;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!*line || *line == '#')
            continue;
        char *eq = strchr(line, '=');
        assert_non_null(eq);
        *eq = '\0';
        char *bar = strchr(eq + 1, '|');
        if (bar)
            *bar = '\0';
        vars_add(vs, line, eq + 1, bar ? bar + 1 : eq + 1);
    }
}

static void vars_free(struct vars *vs)
{
    for (size_t i = 0; i < vs->n; i++) {
        free(vs->v[i].name);
        free(vs->v[i].ref);
        free(vs->v[i].ours);
    }
    vs->n = 0;
}

/* 'text' for the shell */
static void shell_quote(struct buf *b, const char *s)
{
    buf_putc(b, '\'');
    for (; *s; s++)
        if (*s == '\'')
            buf_puts(b, "'\\''");
        else
            buf_putc(b, *s);
    buf_putc(b, '\'');
}

/* ---- one file --------------------------------------------------------------------------- */

struct attached {
    struct spec_file f[32];
    char *names[32];
    char *data[32];
    size_t n;
};

static void attached_load(struct attached *a)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/good/files", data_dir);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) && a->n < ARRAY_SIZE(a->f)) {
        if (e->d_name[0] == '.')
            continue;
        char path[8192];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        size_t len;
        char *data = read_file(path, &len);
        assert_non_null(data);
        asprintf(&a->names[a->n], "files/%s", e->d_name);
        a->data[a->n] = data;
        a->f[a->n] = (struct spec_file){a->names[a->n], data, len};
        a->n++;
    }
    closedir(d);
}

static void attached_free(struct attached *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->names[i]);
        free(a->data[i]);
    }
    a->n = 0;
}

struct pfile {
    char *name; /* without .yml */
    int index;
    char ref[16];
    char ours[16];
};

static bool stack_gone(void *arg)
{
    const struct pfile *pf = arg;
    const char *stacks[] = {pf->ref, pf->ours};
    for (size_t i = 0; i < 2; i++) {
        _cleanup_free_ char *out = tu_sh_out(
            "for k in service network config secret; do "
            "docker $k ls -q --filter label=com.docker.stack.namespace=%s; done 2>/dev/null",
            stacks[i]);
        if (!out || *out) {
            tu_sh("docker stack rm %s >/dev/null 2>&1", stacks[i]);
            return false;
        }
    }
    return true;
}

static bool volumes_gone(void *arg)
{
    const struct pfile *pf = arg;
    const char *stacks[] = {pf->ref, pf->ours};
    bool gone = true;
    for (size_t i = 0; i < 2; i++) {
        _cleanup_free_ char *out = tu_sh_out(
            "docker volume ls -q --filter label=com.docker.stack.namespace=%s", stacks[i]);
        if (out && *out) {
            gone = false;
            tu_sh("docker volume ls -q --filter label=com.docker.stack.namespace=%s | "
                  "xargs -r docker volume rm >/dev/null 2>&1",
                  stacks[i]);
        }
    }
    return gone;
}

static void cleanup(struct pfile *pf)
{
    tu_sh("docker stack rm %s %s >/dev/null 2>&1", pf->ref, pf->ours);
    if (!tu_wait_for(stack_gone, pf, 120000))
        fprintf(stderr, "parity: stacks %s/%s not fully removed\n", pf->ref, pf->ours);
    if (!tu_wait_for(volumes_gone, pf, 120000))
        fprintf(stderr, "parity: volumes of %s/%s not removed\n", pf->ref, pf->ours);
}

static int deploy_reference(const struct pfile *pf, const char *yml, const char *client,
                            const struct vars *vs)
{
    struct buf cmd = BUF_INIT(1 << 20);
    buf_printf(&cmd, "cd %s && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=", data_dir);
    shell_quote(&cmd, home_dir);
    for (size_t i = 0; i < vs->n; i++) {
        buf_printf(&cmd, " %s=", vs->v[i].name);
        shell_quote(&cmd, vs->v[i].ref);
    }
    buf_printf(&cmd, " %s stack deploy --resolve-image never -c ", client);
    shell_quote(&cmd, yml);
    buf_printf(&cmd, " %s 2>&1", pf->ref);
    _cleanup_free_ char *out = tu_sh_out("%s; echo \"rc=$?\"", cmd.data);
    buf_release(&cmd);
    int rc = out && strstr(out, "rc=0") ? 0 : 1;
    if (rc)
        fprintf(stderr, "parity: reference deploy of %s failed:\n%s\n", pf->name, out);
    return rc;
}

struct idmap {
    char *name[256];
    char *id[256];
    enum spec_kind kind[256];
    size_t n;
};

static const char *idmap_lookup(void *ud, enum spec_kind kind, const char *name)
{
    struct idmap *m = ud;
    for (size_t i = 0; i < m->n; i++)
        if (m->kind[i] == kind && streq(m->name[i], name))
            return m->id[i];
    /* an external object: ask the Engine */
    char path[512];
    _cleanup_free_ char *esc = url_escape(name);
    snprintf(path, sizeof(path), "/%s/%s", kind == SPEC_SECRET ? "secrets" : "configs", esc);
    json_t *j = api_json(path);
    if (!j || m->n >= ARRAY_SIZE(m->name)) {
        json_decref(j);
        return NULL;
    }
    m->name[m->n] = strdup(name);
    m->id[m->n] = strdup(json_string_value(json_object_get(j, "ID")));
    m->kind[m->n] = kind;
    json_decref(j);
    return m->id[m->n++];
}

static void idmap_free(struct idmap *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->name[i]);
        free(m->id[i]);
    }
    m->n = 0;
}

static int deploy_ours(const struct pfile *pf, const struct spec_stack *st)
{
    struct idmap ids = {0};
    int r = 0;
    for (size_t i = 0; i < st->n_objects && r == 0; i++) {
        const struct spec_object *o = &st->objects[i];
        json_t *body = json_deep_copy(o->spec);
        const char *missing = NULL;
        if (o->kind == SPEC_SERVICE && spec_resolve_ids(body, idmap_lookup, &ids, &missing) < 0) {
            fprintf(stderr, "parity: %s: no ID for %s\n", o->name, missing ? missing : "?");
            r = -1;
        }
        static const char *const paths[] = {[SPEC_NETWORK] = "/networks/create",
                                            [SPEC_CONFIG] = "/configs/create",
                                            [SPEC_SECRET] = "/secrets/create",
                                            [SPEC_SERVICE] = "/services/create"};
        char *text = json_dumps(body, JSON_COMPACT);
        char *resp = NULL;
        long status = r == 0 ? api("POST", paths[o->kind], text, &resp) : 0;
        if (r == 0 && status != 201 && status != 200) {
            fprintf(stderr, "parity: %s: POST %s: %ld %s\nbody: %s\n", pf->name, paths[o->kind],
                    status, resp ? resp : "", text);
            r = -1;
        }
        if (r == 0 && o->kind != SPEC_SERVICE) {
            json_t *j = json_loads(resp, 0, NULL);
            const char *id = json_string_value(json_object_get(j, "Id"));
            if (!id)
                id = json_string_value(json_object_get(j, "ID"));
            assert_non_null(id);
            assert_true(ids.n < ARRAY_SIZE(ids.name));
            ids.name[ids.n] = strdup(o->name);
            ids.id[ids.n] = strdup(id);
            ids.kind[ids.n] = o->kind;
            ids.n++;
            json_decref(j);
        }
        free(resp);
        free(text);
        json_decref(body);
    }
    idmap_free(&ids);
    return r;
}

/* ---- normalisation and comparison ------------------------------------------------------- */

struct norm {
    const struct vars *vs;
    bool ours;
    const struct spec_stack *st; /* ours: content-addressed names → docker's */
};

static char *replace_all(const char *s, const char *from, const char *to)
{
    struct buf b = BUF_INIT(1 << 24);
    size_t fl = strlen(from);
    const char *p = s;
    while (fl) {
        const char *hit = strstr(p, from);
        if (!hit)
            break;
        buf_append(&b, p, (size_t)(hit - p));
        buf_puts(&b, to);
        p = hit + fl;
    }
    buf_puts(&b, p);
    return buf_detach(&b, NULL);
}

static json_t *norm_string(const struct norm *nm, const char *s)
{
    char *cur = strdup(s);
    if (nm->ours) {
        for (size_t i = 0; i < nm->st->n_objects; i++) {
            const struct spec_object *o = &nm->st->objects[i];
            if (streq(cur, o->name) && !streq(o->name, o->docker_name)) {
                free(cur);
                cur = strdup(o->docker_name);
                break;
            }
        }
        for (size_t i = 0; i < nm->vs->n; i++) {
            if (streq(nm->vs->v[i].ref, nm->vs->v[i].ours))
                continue;
            char *next = replace_all(cur, nm->vs->v[i].ours, nm->vs->v[i].ref);
            free(cur);
            cur = next;
        }
    }
    json_t *j = json_string(cur);
    free(cur);
    return j;
}

static json_t *normalize(const struct norm *nm, const json_t *v, const char *key)
{
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e)
        {
            if (key && streq(key, "Labels") && strncmp(k, "io.axion.", 9) == 0)
                continue;
            if (streq(k, "SecretID") || streq(k, "ConfigID"))
                continue;
            json_t *nk = norm_string(nm, k);
            json_object_set_new(o, json_string_value(nk), normalize(nm, e, k));
            json_decref(nk);
        }
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) json_array_append_new(a, normalize(nm, e, key));
        return a;
    }
    if (json_is_string(v))
        return norm_string(nm, json_string_value(v));
    if (json_is_integer(v) && nm->ours) {
        for (size_t i = 0; i < nm->vs->n; i++) {
            char num[32];
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
            if (!streq(nm->vs->v[i].ref, nm->vs->v[i].ours) && streq(num, nm->vs->v[i].ours))
                return json_integer(atoll(nm->vs->v[i].ref));
        }
    }
    return json_deep_copy(v);
}

/* Network IDs in a service's TaskTemplate.Networks become names. */
static void network_ids_to_names(json_t *spec)
{
    json_t *nets = json_object_get(json_object_get(spec, "TaskTemplate"), "Networks"), *n;
    size_t i;
    json_array_foreach(nets, i, n)
    {
        const char *id = json_string_value(json_object_get(n, "Target"));
        if (!id)
            continue;
        char path[256];
        snprintf(path, sizeof(path), "/networks/%s", id);
        json_t *net = api_json(path);
        if (net)
            json_object_set(n, "Target", json_object_get(net, "Name"));
        json_decref(net);
    }
}

static void diff_json(const json_t *a, const json_t *b, char *path, size_t plen, size_t cap,
                      struct buf *out)
{
    if (json_is_object(a) && json_is_object(b)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v)
        {
            snprintf(path + plen, cap - plen, "%s%s", plen ? "." : "", k);
            json_t *w = json_object_get(b, k);
            if (!w) {
                char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
                buf_printf(out, "  %s: ref=%s ours=(absent)\n", path, t);
                free(t);
            } else {
                diff_json(v, w, path, strlen(path), cap, out);
            }
            path[plen] = '\0';
        }
        json_object_foreach((json_t *)b, k, v)
        {
            if (json_object_get(a, k))
                continue;
            snprintf(path + plen, cap - plen, "%s%s", plen ? "." : "", k);
            char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
            buf_printf(out, "  %s: ref=(absent) ours=%s\n", path, t);
            free(t);
            path[plen] = '\0';
        }
        return;
    }
    if (json_is_array(a) && json_is_array(b) && json_array_size(a) == json_array_size(b)) {
        for (size_t i = 0; i < json_array_size(a); i++) {
            snprintf(path + plen, cap - plen, "[%zu]", i);
            diff_json(json_array_get(a, i), json_array_get(b, i), path, strlen(path), cap, out);
            path[plen] = '\0';
        }
        return;
    }
    if (json_equal((json_t *)a, (json_t *)b))
        return;
    char *ta = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    char *tb = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    buf_printf(out, "  %s: ref=%s ours=%s\n", path[0] ? path : "(root)", ta, tb);
    free(ta);
    free(tb);
}

/* The stored spec of an object, ready to compare. */
static json_t *inspect(enum spec_kind kind, const char *name, const json_t *our_body)
{
    static const char *const coll[] = {[SPEC_NETWORK] = "networks",
                                       [SPEC_CONFIG] = "configs",
                                       [SPEC_SECRET] = "secrets",
                                       [SPEC_SERVICE] = "services"};
    char path[512];
    _cleanup_free_ char *esc = url_escape(name);
    snprintf(path, sizeof(path), "/%s/%s", coll[kind], esc);
    json_t *j = api_json(path);
    if (!j)
        return NULL;
    json_t *res;
    if (kind == SPEC_NETWORK) {
        res = json_deep_copy(j);
        json_object_del(res, "Id");
        json_object_del(res, "Created");
        json_object_del(res, "Containers");
        json_object_del(res, "Peers");
        json_object_del(json_object_get(res, "Options"),
                        "com.docker.network.driver.overlay.vxlanid_list");
        /* a subnet the Engine picked differs between the stacks */
        json_t *ipam = json_object_get(our_body, "IPAM");
        if (!json_is_object(ipam) || !json_is_array(json_object_get(ipam, "Config")))
            json_object_del(json_object_get(res, "IPAM"), "Config");
    } else {
        res = json_deep_copy(json_object_get(j, "Spec"));
        if (kind == SPEC_SERVICE)
            network_ids_to_names(res);
    }
    json_decref(j);
    return res;
}

/* Names of the objects of a stack, by kind, normalised. */
static json_t *stack_objects(const struct norm *nm, const char *stack)
{
    json_t *all = json_object();
    static const char *const coll[] = {"services", "networks", "configs", "secrets"};
    for (size_t k = 0; k < ARRAY_SIZE(coll); k++) {
        char path[512], filter[256];
        snprintf(filter, sizeof(filter), "{\"label\":[\"com.docker.stack.namespace=%s\"]}", stack);
        _cleanup_free_ char *esc = url_escape(filter);
        snprintf(path, sizeof(path), "/%s?filters=%s", coll[k], esc);
        json_t *list = api_json(path), *e;
        json_t *names = json_array();
        size_t i;
        json_array_foreach(list, i, e)
        {
            json_t *spec = json_object_get(e, "Spec");
            json_t *n = json_object_get(spec ? spec : e, "Name");
            json_array_append_new(names, normalize(nm, n, NULL));
        }
        /* sorted, so the order of the listing does not matter */
        size_t n = json_array_size(names);
        for (size_t a = 1; a < n; a++)
            for (size_t b = a; b > 0; b--) {
                json_t *x = json_array_get(names, b - 1), *y = json_array_get(names, b);
                if (strcmp(json_string_value(x), json_string_value(y)) <= 0)
                    break;
                json_incref(x);
                json_array_set(names, b - 1, y);
                json_array_set_new(names, b, x);
            }
        json_object_set_new(all, coll[k], names);
        json_decref(list);
    }
    return all;
}

static int compare(const struct pfile *pf, const struct vars *vs, const struct spec_stack *st,
                   struct buf *report)
{
    struct norm ref = {.vs = vs, .ours = false, .st = st};
    struct norm ours = {.vs = vs, .ours = true, .st = st};
    int diffs = 0;
    char path[2048];

    json_t *ro = stack_objects(&ref, pf->ref), *oo = stack_objects(&ours, pf->ours);
    struct buf d = BUF_INIT(1 << 20);
    path[0] = '\0';
    diff_json(ro, oo, path, 0, sizeof(path), &d);
    if (d.len) {
        buf_printf(report, "%s: the stacks hold different objects:\n%s", pf->name, d.data);
        diffs++;
    }
    buf_release(&d);
    json_decref(ro);
    json_decref(oo);

    for (size_t i = 0; i < st->n_objects; i++) {
        const struct spec_object *o = &st->objects[i];
        /* the reference's name: docker's name, in the reference's terms */
        json_t *jn = json_string(o->docker_name);
        json_t *refname = normalize(&ours, jn, NULL);
        json_decref(jn);
        json_t *r = inspect(o->kind, json_string_value(refname), o->spec);
        json_t *w = inspect(o->kind, o->name, o->spec);
        if (!r || !w) {
            buf_printf(report, "%s: %s %s: missing on the %s side\n", pf->name,
                       spec_kind_to_string(o->kind), json_string_value(refname),
                       r ? "our" : "reference");
            diffs++;
        } else {
            json_t *rn = normalize(&ref, r, NULL), *wn = normalize(&ours, w, NULL);
            struct buf db = BUF_INIT(1 << 20);
            path[0] = '\0';
            diff_json(rn, wn, path, 0, sizeof(path), &db);
            if (db.len) {
                buf_printf(report, "%s: %s %s differs:\n%s", pf->name, spec_kind_to_string(o->kind),
                           json_string_value(refname), db.data);
                diffs++;
            }
            if (getenv("AXT_PARITY_DUMP")) {
                char *t = json_dumps(wn, JSON_INDENT(2) | JSON_SORT_KEYS);
                fprintf(stderr, "--- %s %s\n%s\n", spec_kind_to_string(o->kind), o->name, t);
                free(t);
            }
            buf_release(&db);
            json_decref(rn);
            json_decref(wn);
        }
        json_decref(r);
        json_decref(w);
        json_decref(refname);
    }
    return diffs;
}

/* ---- the test --------------------------------------------------------------------------- */

static void test_parity(void **state)
{
    struct pfile *pf = *state;
    char yml[4096], varsf[4096];
    snprintf(yml, sizeof(yml), "%s/good/%s.yml", data_dir, pf->name);
    snprintf(varsf, sizeof(varsf), "%s/good/%s.vars", data_dir, pf->name);
    size_t len;
    char *text = read_file(yml, &len);
    assert_non_null(text);

    char client[256] = OLD_DOCKER;
    const char *cl = strstr(text, "# parity-client:");
    if (cl)
        sscanf(cl + strlen("# parity-client:"), " %255s", client);
    if (getenv("AXT_PARITY_CLIENT")) /* e.g. check every file against the newer CLI */
        snprintf(client, sizeof(client), "%s", getenv("AXT_PARITY_CLIENT"));

    struct vars vs = {0};
    vars_add(&vs, "AXT_STACK", pf->ref, pf->ours);
    vars_load(&vs, varsf);

    printf("parity: %s (reference: %s stack deploy, stacks %s/%s)\n", pf->name, client, pf->ref,
           pf->ours);
    fflush(stdout);

    /* ours: parse and convert first, so a converter error shows before anything is made */
    struct compose_var cv[64];
    for (size_t i = 0; i < vs.n; i++)
        cv[i] = (struct compose_var){vs.v[i].name, vs.v[i].ours};
    struct compose_vars vars = {cv, vs.n};
    struct compose_project *p = NULL;
    struct compose_error err;
    /* a local file, as the CLI reads it: relative bind sources resolve against its directory
     * and ~ against the HOME the reference deploys with */
    char good_dir[4096];
    snprintf(good_dir, sizeof(good_dir), "%s/good", data_dir);
    struct compose_options opts = {.base_dir = good_dir, .home_dir = home_dir};
    if (compose_parse_opts(text, len, yml, &vars, &opts, &p, &err) < 0) {
        free(text);
        fail_msg("%s", err.text);
    }
    struct attached att = {0};
    attached_load(&att);
    struct spec_input in = {
        .stack = pf->ours, .agent_id = AGENT_ID, .files = att.f, .n_files = att.n};
    struct spec_stack *st = NULL;
    if (spec_convert(p, &in, &st, &err) < 0)
        fail_msg("%s", err.text);
    for (size_t i = 0; i < st->n_warnings; i++)
        printf("  warning: %s\n", st->warnings[i]);

    int rc = deploy_reference(pf, yml, client, &vs);
    if (rc == 0)
        rc = deploy_ours(pf, st);
    struct buf report = BUF_INIT(8 << 20);
    int diffs = rc == 0 ? compare(pf, &vs, st, &report) : 0;
    if (diffs)
        fprintf(stderr, "%s", report.data);
    buf_release(&report);

    cleanup(pf);
    spec_stack_free(st);
    compose_project_free(p);
    attached_free(&att);
    vars_free(&vs);
    free(text);
    assert_int_equal(rc, 0);
    assert_int_equal(diffs, 0);
}

static int group_setup(void **state)
{
    const char *src = getenv("AXION_SOURCE_DIR");
    if (!src)
        return -1;
    if (tu_sh("%s/tests/env/docker-up.sh >/dev/null 2>&1", src) != 0) {
        fprintf(stderr, "parity: docker-up.sh failed\n");
        return -1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (asprintf(&data_dir, "%s/tests/data/compose", src) < 0)
        return -1;
    home_dir = tu_mkdtemp();
    mkdir(BIND_DIR, 0755);
    /* leftovers of an interrupted run */
    tu_sh("for s in $(docker stack ls --format '{{.Name}}' | grep -E '^axtc[ro][0-9]+$'); do "
          "docker stack rm $s; done >/dev/null 2>&1");
    tu_sh("docker network rm " EXT_NET " >/dev/null 2>&1; docker secret rm " EXT_SECRET
          " >/dev/null 2>&1; docker config rm " EXT_CONFIG " >/dev/null 2>&1");
    if (tu_sh("docker network create -d overlay --attachable " EXT_NET " >/dev/null") != 0 ||
        tu_sh("printf external-secret | docker secret create " EXT_SECRET " - >/dev/null") != 0 ||
        tu_sh("printf external-config | docker config create " EXT_CONFIG " - >/dev/null") != 0) {
        fprintf(stderr, "parity: cannot create the external objects\n");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    tu_sh("docker network rm " EXT_NET " >/dev/null 2>&1; docker secret rm " EXT_SECRET
          " >/dev/null 2>&1; docker config rm " EXT_CONFIG " >/dev/null 2>&1");
    tu_rm_rf(home_dir);
    rmdir(BIND_DIR);
    free(home_dir);
    free(data_dir);
    curl_global_cleanup();
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int main(int argc, char **argv)
{
    /* Tests run under flock: no process started from here (docker-up.sh may start dockerd)
     * may inherit the lock's descriptor and hold the lock after we are gone. */
    for (int fd = 3; fd < 1024; fd++)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    const char *src = getenv("AXION_SOURCE_DIR");
    if (!src) {
        fprintf(stderr, "AXION_SOURCE_DIR is not set\n");
        return 1;
    }
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/tests/data/compose/good", src);
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        return 1;
    }
    char *names[128];
    size_t n = 0;
    struct dirent *e;
    const char *only = argc > 1 ? argv[1] : getenv("AXT_PARITY_ONLY");
    while ((e = readdir(d)) && n < ARRAY_SIZE(names)) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".yml") != 0)
            continue;
        names[n] = strndup(e->d_name, l - 4);
        if (only && !strstr(names[n], only)) {
            free(names[n]);
            continue;
        }
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_name);
    struct CMUnitTest tests[128];
    struct pfile files[128];
    for (size_t i = 0; i < n; i++) {
        files[i] = (struct pfile){.name = names[i], .index = (int)i + 1};
        snprintf(files[i].ref, sizeof(files[i].ref), "axtcr%02zu", i + 1);
        snprintf(files[i].ours, sizeof(files[i].ours), "axtco%02zu", i + 1);
        tests[i] = (struct CMUnitTest){names[i], test_parity, NULL, NULL, &files[i]};
    }
    int r = _cmocka_run_group_tests("compose_parity", tests, n, group_setup, group_teardown);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    return r;
}

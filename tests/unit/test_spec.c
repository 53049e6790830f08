#include "support/testutil.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "compose/compose.h"
#include "compose/spec.h"
#include "compose/spec_hash.h"

struct conv {
    struct compose_project *p;
    struct spec_stack *st;
};

static struct conv convert_full(const char *yml, const struct compose_var *vars, size_t n_vars,
                                const struct spec_file *files, size_t n_files, const char *agent)
{
    struct conv c = {0};
    struct compose_vars cv = {vars, n_vars};
    struct compose_error err;
    if (compose_parse(yml, strlen(yml), "t.yml", &cv, &c.p, &err) < 0)
        fail_msg("parse: %s", err.text);
    struct spec_input in = {.stack = "st", .agent_id = agent, .files = files, .n_files = n_files};
    if (spec_convert(c.p, &in, &c.st, &err) < 0)
        fail_msg("convert: %s", err.text);
    return c;
}

static struct conv convert(const char *yml)
{
    return convert_full(yml, NULL, 0, NULL, 0, "agent-1");
}

static void conv_free(struct conv *c)
{
    spec_stack_free(c->st);
    compose_project_free(c->p);
}

static const struct spec_object *obj(const struct conv *c, enum spec_kind kind, const char *name)
{
    const struct spec_object *o = spec_stack_find(c->st, kind, name);
    if (!o)
        fail_msg("no %s %s", spec_kind_to_string(kind), name);
    return o;
}

/* The value at a dotted path ("TaskTemplate.ContainerSpec.Env[0]"). */
static json_t *at(json_t *j, const char *path)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", path);
    char *save = NULL;
    for (char *part = strtok_r(buf, ".", &save); part && j; part = strtok_r(NULL, ".", &save)) {
        char *br = strchr(part, '[');
        if (br)
            *br = '\0';
        if (*part)
            j = json_object_get(j, part);
        while (br && j) {
            j = json_array_get(j, (size_t)atoi(br + 1));
            br = strchr(br + 1, '[');
        }
    }
    return j;
}

static const char *str_at(json_t *j, const char *path)
{
    json_t *v = at(j, path);
    if (!json_is_string(v))
        fail_msg("%s is not a string", path);
    return json_string_value(v);
}

static long long int_at(json_t *j, const char *path)
{
    json_t *v = at(j, path);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", path);
    return json_integer_value(v);
}

/* A label (keys have dots) of the Labels object at path ("" for the top). */
static const char *label(json_t *j, const char *path, const char *key)
{
    json_t *labels = json_object_get(*path ? at(j, path) : j, "Labels");
    json_t *v = json_object_get(labels, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void test_names_and_labels(void **state)
{
    struct conv c = convert("services:\n"
                            "  web: {image: nginx, deploy: {labels: {d: '1'}}, labels: [c=2]}\n"
                            "  api: {image: 'registry.local:5000/api:1', networks: [back]}\n"
                            "networks:\n"
                            "  back: {name: custom-back, driver_opts: {mtu: 1400}}\n"
                            "  unused: {}\n");
    /* networks first, by name; then services */
    assert_int_equal(c.st->n_objects, 4);
    assert_int_equal(c.st->objects[0].kind, SPEC_NETWORK);
    assert_string_equal(c.st->objects[0].name, "custom-back");
    assert_string_equal(c.st->objects[1].name, "st_default");
    assert_string_equal(c.st->objects[2].name, "st_api");
    assert_string_equal(c.st->objects[3].name, "st_web");
    const struct spec_object *net = obj(&c, SPEC_NETWORK, "st_default");
    assert_string_equal(str_at(net->spec, "Name"), "st_default");
    assert_string_equal(str_at(net->spec, "Driver"), "overlay");
    assert_true(json_is_true(at(net->spec, "CheckDuplicate")));
    assert_true(json_is_null(at(net->spec, "IPAM")));
    assert_string_equal(label(net->spec, "", "com.docker.stack.namespace"), "st");
    assert_string_equal(str_at(obj(&c, SPEC_NETWORK, "custom-back")->spec, "Options.mtu"), "1400");

    const struct spec_object *web = obj(&c, SPEC_SERVICE, "st_web");
    json_t *s = web->spec;
    assert_string_equal(web->key, "web");
    assert_string_equal(str_at(s, "Name"), "st_web");
    assert_string_equal(label(s, "", "com.docker.stack.namespace"), "st");
    assert_string_equal(label(s, "", "com.docker.stack.image"), "nginx");
    assert_string_equal(label(s, "", "d"), "1");
    assert_string_equal(label(s, "", "io.axion.managed"), "true");
    assert_string_equal(label(s, "", "io.axion.agent"), "agent-1");
    assert_string_equal(label(s, "", "io.axion.stack"), "st");
    assert_string_equal(label(s, "", "io.axion.spec-hash"), web->hash);
    assert_string_equal(str_at(s, "TaskTemplate.ContainerSpec.Image"), "nginx:latest");
    assert_string_equal(label(s, "TaskTemplate.ContainerSpec", "c"), "2");
    assert_string_equal(label(s, "TaskTemplate.ContainerSpec", "com.docker.stack.namespace"), "st");
    assert_null(label(s, "TaskTemplate.ContainerSpec", "io.axion.managed"));
    assert_string_equal(str_at(s, "TaskTemplate.Networks[0].Target"), "st_default");
    assert_string_equal(str_at(s, "TaskTemplate.Networks[0].Aliases[0]"), "web");
    assert_non_null(at(s, "TaskTemplate.Placement"));
    assert_non_null(at(s, "TaskTemplate.Resources"));
    assert_true(json_is_null(at(s, "TaskTemplate.ContainerSpec.Privileges.CredentialSpec")));
    assert_int_equal(int_at(s, "TaskTemplate.ForceUpdate"), 0);
    assert_non_null(at(s, "Mode.Replicated"));
    assert_null(at(s, "Mode.Replicated.Replicas"));
    assert_non_null(at(s, "EndpointSpec"));
    assert_int_equal(web->n_refs, 1);
    assert_int_equal(web->refs[0].kind, SPEC_NETWORK);
    assert_string_equal(web->refs[0].name, "st_default");
    const struct spec_object *api = obj(&c, SPEC_SERVICE, "st_api");
    assert_string_equal(str_at(api->spec, "TaskTemplate.ContainerSpec.Image"),
                        "registry.local:5000/api:1");
    assert_string_equal(str_at(api->spec, "TaskTemplate.Networks[0].Target"), "custom-back");
    assert_int_equal(c.st->n_externals, 0);
    conv_free(&c);
}

static void test_hash(void **state)
{
    struct conv a = convert("services: {web: {image: nginx}}");
    struct conv b = convert("services: {web: {image: nginx}}");
    struct conv d = convert("services: {web: {image: nginx, hostname: h}}");
    const struct spec_object *wa = obj(&a, SPEC_SERVICE, "st_web");
    const struct spec_object *wb = obj(&b, SPEC_SERVICE, "st_web");
    const struct spec_object *wd = obj(&d, SPEC_SERVICE, "st_web");
    assert_string_equal(wa->hash, wb->hash);
    assert_string_not_equal(wa->hash, wd->hash);
    assert_int_equal(strlen(wa->hash), SPEC_HASH_HEX);
    /* the hash is the canonical JSON's without the hash label */
    json_t *copy = json_deep_copy(wa->spec);
    json_object_del(json_object_get(copy, "Labels"), SPEC_LABEL_HASH);
    char *canon = spec_hash_canonical(copy);
    char hex[SPEC_HASH_HEX + 1];
    assert_int_equal(spec_hash_bytes(canon, strlen(canon), hex), 0);
    assert_string_equal(hex, wa->hash);
    assert_int_equal(strncmp(canon, "{\"EndpointSpec\":", 16), 0); /* sorted, compact */
    free(canon);
    json_decref(copy);
    /* a change through spec_stamp */
    struct spec_object *o = (struct spec_object *)wa;
    json_object_set_new(json_object_get(json_object_get(o->spec, "Mode"), "Replicated"), "Replicas",
                        json_integer(5));
    char before[SPEC_HASH_HEX + 1];
    memcpy(before, o->hash, sizeof(before));
    assert_int_equal(spec_stamp(o), 0);
    assert_string_not_equal(before, o->hash);
    assert_string_equal(label(o->spec, "", "io.axion.spec-hash"), o->hash);
    /* known bytes */
    assert_int_equal(spec_hash_bytes("", 0, hex), 0);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    json_t *j = json_pack("{s:i,s:[s,i]}", "b", 1, "a", "x", 2);
    assert_int_equal(spec_hash_json(j, hex), 0);
    assert_int_equal(spec_hash_bytes("{\"a\":[\"x\",2],\"b\":1}", 19, before), 0);
    assert_string_equal(hex, before);
    json_decref(j);
    conv_free(&a);
    conv_free(&b);
    conv_free(&d);
}

static void test_content_addressed(void **state)
{
    const char *yml = "services:\n"
                      "  web:\n"
                      "    image: x\n"
                      "    secrets: [db, {source: api, target: api.key, uid: '5', mode: 0400}]\n"
                      "    configs: [conf, ext]\n"
                      "secrets:\n"
                      "  db: {file: ./files/db.txt}\n"
                      "  api: {file: files/api.txt, name: api-named, labels: {l: v}}\n"
                      "  unused: {file: files/db.txt}\n"
                      "configs:\n"
                      "  conf: {file: files/conf, template_driver: golang}\n"
                      "  ext: {external: true, name: shared-conf}\n";
    const struct spec_file files[] = {
        {"files/db.txt", "pw", 2}, {"./files/api.txt", "key", 3}, {"files/conf", "c", 1}};
    struct conv c = convert_full(yml, NULL, 0, files, 3, "a");
    char hex[SPEC_HASH_HEX + 1], want[128];
    spec_hash_bytes("pw", 2, hex);
    snprintf(want, sizeof(want), "st_db_%.8s", hex);
    const struct spec_object *db = obj(&c, SPEC_SECRET, want);
    assert_string_equal(db->docker_name, "st_db");
    assert_string_equal(str_at(db->spec, "Name"), want);
    assert_string_equal(str_at(db->spec, "Data"), "cHc=");
    assert_string_equal(label(db->spec, "", "com.docker.stack.namespace"), "st");
    spec_hash_bytes("key", 3, hex);
    snprintf(want, sizeof(want), "api-named_%.8s", hex);
    const struct spec_object *api = obj(&c, SPEC_SECRET, want);
    assert_string_equal(label(api->spec, "", "l"), "v");
    /* declared but unused: created all the same, as docker does */
    assert_int_equal(c.st->n_objects, 6); /* network, config, 3 secrets, service */
    const struct spec_object *conf = NULL;
    for (size_t i = 0; i < c.st->n_objects; i++)
        if (c.st->objects[i].kind == SPEC_CONFIG)
            conf = &c.st->objects[i];
    assert_non_null(conf);
    assert_string_equal(str_at(conf->spec, "Templating.Name"), "golang");
    assert_int_equal(strncmp(conf->name, "st_conf_", 8), 0);

    json_t *s = obj(&c, SPEC_SERVICE, "st_web")->spec;
    /* sorted by docker's name: api-named < st_db */
    assert_string_equal(str_at(s, "TaskTemplate.ContainerSpec.Secrets[0].SecretName"), want);
    assert_string_equal(str_at(s, "TaskTemplate.ContainerSpec.Secrets[0].File.Name"), "api.key");
    assert_string_equal(str_at(s, "TaskTemplate.ContainerSpec.Secrets[0].File.UID"), "5");
    assert_string_equal(str_at(s, "TaskTemplate.ContainerSpec.Secrets[0].File.GID"), "0");
    assert_int_equal(int_at(s, "TaskTemplate.ContainerSpec.Secrets[0].File.Mode"), 0400);
    assert_string_equal(str_at(s, "TaskTemplate.ContainerSpec.Secrets[0].SecretID"), "");
    assert_string_equal(str_at(s, "TaskTemplate.ContainerSpec.Secrets[1].File.Name"), "db");
    assert_int_equal(int_at(s, "TaskTemplate.ContainerSpec.Secrets[1].File.Mode"), 0444);
    assert_string_equal(str_at(s, "TaskTemplate.ContainerSpec.Configs[0].ConfigName"),
                        "shared-conf");
    assert_int_equal(c.st->n_externals, 1);
    assert_int_equal(c.st->externals[0].kind, SPEC_CONFIG);
    assert_string_equal(c.st->externals[0].name, "shared-conf");
    const struct spec_object *web = obj(&c, SPEC_SERVICE, "st_web");
    assert_int_equal(web->n_refs, 5); /* network, 2 secrets, 2 configs */
    bool ext_ref = false;
    for (size_t i = 0; i < web->n_refs; i++)
        ext_ref = ext_ref || (web->refs[i].external && streq(web->refs[i].name, "shared-conf"));
    assert_true(ext_ref);
    conv_free(&c);

    /* another content, another name */
    const struct spec_file files2[] = {
        {"files/db.txt", "pw2", 3}, {"files/api.txt", "key", 3}, {"files/conf", "c", 1}};
    c = convert_full(yml, NULL, 0, files2, 3, "a");
    spec_hash_bytes("pw2", 3, hex);
    snprintf(want, sizeof(want), "st_db_%.8s", hex);
    obj(&c, SPEC_SECRET, want);
    conv_free(&c);
}

static const char *lookup_ok(void *ud, enum spec_kind kind, const char *name)
{
    return kind == SPEC_SECRET && strncmp(name, "st_s_", 5) == 0 ? "id-123" : NULL;
}

static const char *lookup_none(void *ud, enum spec_kind kind, const char *name)
{
    return NULL;
}

static void test_resolve_ids(void **state)
{
    const struct spec_file files[] = {{"s", "x", 1}};
    struct conv c = convert_full("services: {web: {image: x, secrets: [s]}}\n"
                                 "secrets: {s: {file: s}}\n",
                                 NULL, 0, files, 1, NULL);
    json_t *spec = json_deep_copy(obj(&c, SPEC_SERVICE, "st_web")->spec);
    const char *missing = NULL;
    assert_int_equal(spec_resolve_ids(spec, lookup_ok, NULL, &missing), 0);
    assert_string_equal(str_at(spec, "TaskTemplate.ContainerSpec.Secrets[0].SecretID"), "id-123");
    assert_int_equal(spec_resolve_ids(spec, lookup_none, NULL, &missing), -ENOENT);
    assert_int_equal(strncmp(missing, "st_s_", 5), 0);
    json_decref(spec);
    conv_free(&c);
}

static void test_environment(void **state)
{
    const struct compose_var vars[] = {{"FROM_VAR", "v"}, {"EMPTY_REPLACED", "r"}, {"PASS", "p"}};
    const struct spec_file files[] = {
        {"a.env",
         "\xEF\xBB\xBF"
         "A=1\r\n# comment\n\n  B=x \nPASS\nMISSING\nC=from-file\nEMPTY_REPLACED=\n",
         0},
        {"b.env", "A=2", 3},
    };
    struct spec_file f2[2] = {files[0], files[1]};
    f2[0].len = strlen(files[0].data);
    struct conv c = convert_full("services:\n"
                                 "  web:\n"
                                 "    image: x\n"
                                 "    env_file: [a.env, ./b.env]\n"
                                 "    environment:\n"
                                 "      C: from-environment\n"
                                 "      FROM_VAR:\n"
                                 "      NOT_A_VAR: ~\n"
                                 "      Z_EMPTY: ''\n",
                                 vars, 3, f2, 2, "a");
    json_t *env = at(obj(&c, SPEC_SERVICE, "st_web")->spec, "TaskTemplate.ContainerSpec.Env");
    const char *want[] = {
        "A=2",    "B=x ",    "C=from-environment", "EMPTY_REPLACED=r", "FROM_VAR=v", "NOT_A_VAR",
        "PASS=p", "Z_EMPTY="};
    assert_int_equal(json_array_size(env), ARRAY_SIZE(want));
    for (size_t i = 0; i < ARRAY_SIZE(want); i++)
        assert_string_equal(json_string_value(json_array_get(env, i)), want[i]);
    conv_free(&c);
    /* sorted as text: '=' sorts before '_' */
    c = convert("services: {web: {image: x, environment: [A_B=1, A=2]}}");
    env = at(obj(&c, SPEC_SERVICE, "st_web")->spec, "TaskTemplate.ContainerSpec.Env");
    assert_string_equal(json_string_value(json_array_get(env, 0)), "A=2");
    conv_free(&c);
}

static void convert_fails(const char *yml, const struct spec_file *files, size_t n,
                          const char *want)
{
    struct compose_project *p = NULL;
    struct compose_error err;
    if (compose_parse(yml, strlen(yml), "t.yml", NULL, &p, &err) < 0)
        fail_msg("parse: %s", err.text);
    struct spec_input in = {.stack = "st", .files = files, .n_files = n};
    struct spec_stack *st = NULL;
    int r = spec_convert(p, &in, &st, &err);
    if (r != -EINVAL || !strstr(err.text, want))
        fail_msg("want \"%s\", got %d \"%s\"", want, r, err.text);
    assert_null(st);
    compose_project_free(p);
}

static void test_convert_errors(void **state)
{
    convert_fails("services: {web: {image: x, env_file: e}}", NULL, 0,
                  "t.yml:1:38: services.web.env_file: the env file \"e\" was not supplied");
    const struct spec_file bad_utf8[] = {{"e", "A=\xff\n", 4}};
    convert_fails("services: {web: {image: x, env_file: e}}", bad_utf8, 1,
                  "contains invalid UTF-8 at line 1");
    const struct spec_file no_name[] = {{"e", "=x\n", 3}};
    convert_fails("services: {web: {image: x, env_file: e}}", no_name, 1,
                  "no variable name on line 1");
    convert_fails("configs: {c: {file: nope}}\nservices: {}", NULL, 0,
                  "configs.c.file: the file \"nope\" was not supplied with the manifest");
    const struct spec_file empty[] = {{"e", "", 0}};
    convert_fails("secrets: {s: {file: e}}\nservices: {}", empty, 1,
                  "secrets.s.file: the file \"e\" has 0 bytes: a secret holds more than 0 and less "
                  "than 512000 bytes");
    static char big[1024 * 1024];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = i % 64 == 63 ? '\n' : 'a';
    const struct spec_file bigf[] = {{"b", big, 600 * 1024}, {"c", big, 1000 * 1024}};
    convert_fails("secrets: {s: {file: b}}\nservices: {}", bigf, 1, "has 614400 bytes");
    convert_fails("configs: {s: {file: c}}\nservices: {}", bigf, 2,
                  "a config holds more than 0 and less than 1024000 bytes");
    /* the attached files a conversion reads are bounded, however often they are used */
    char yml[8192] = "services:\n";
    for (int i = 0; i < 80; i++)
        snprintf(yml + strlen(yml), sizeof(yml) - strlen(yml), "  s%d: {image: x, env_file: c}\n",
                 i);
    convert_fails(yml, bigf, 2, "the attached files the stack uses add up to more than 67108864");
    const struct spec_file s[] = {{"s", "x", 1}};
    convert_fails("secrets: {s: {file: s}}\n"
                  "services: {web: {image: x, secrets: [s, {source: s, target: s}]}}",
                  s, 1, "duplicate secret target for s not allowed");
    /* stack names */
    struct compose_project *p = NULL;
    struct compose_error err;
    assert_int_equal(compose_parse("services: {}", 12, NULL, NULL, &p, &err), 0);
    const char *bad[] = {"", "-a", "a b", "a/b",
                         "0123456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct spec_input in = {.stack = bad[i]};
        struct spec_stack *st = NULL;
        assert_int_equal(spec_convert(p, &in, &st, &err), -EINVAL);
        assert_non_null(strstr(err.text, "invalid stack name"));
    }
    struct spec_input ok = {.stack = "a_b-c.d"};
    struct spec_stack *st = NULL;
    assert_int_equal(spec_convert(p, &ok, &st, NULL), 0);
    assert_int_equal(st->n_objects, 0);
    spec_stack_free(st);
    compose_project_free(p);
}

static void test_container_details(void **state)
{
    struct conv c = convert("volumes:\n"
                            "  data: {driver: local, driver_opts: {o: x}, labels: [k=v]}\n"
                            "  ext: {external: true, name: outside}\n"
                            "services:\n"
                            "  web:\n"
                            "    image: x\n"
                            "    cap_add: [net_admin, ' chown ', NET_ADMIN]\n"
                            "    cap_drop: [ALL, CHOWN]\n"
                            "    extra_hosts: [a:1.1.1.1, bad, 'v6:::1']\n"
                            "    dns_search: []\n"
                            "    ulimits: {nproc: 5, core: {soft: 1, hard: 2}}\n"
                            "    volumes:\n"
                            "      - data:/d:nocopy\n"
                            "      - ext:/e\n"
                            "      - /anon\n"
                            "      - {type: bind, source: /h, target: /b, bind: {propagation: "
                            "slave}}\n"
                            "      - {type: tmpfs, target: /t, tmpfs: {}}\n"
                            "    ports: ['3000:3000', '1000:1000', 80, {target: 81}]\n"
                            "    healthcheck: {interval: 1s}\n"
                            "    restart: on-failure:3\n"
                            "    deploy:\n"
                            "      mode: replicated-job\n"
                            "      replicas: 4\n"
                            "      resources: {limits: {cpus: '1.5', memory: 1k}, reservations: "
                            "{cpus: '.5'}}\n"
                            "      update_config: {}\n"
                            "      rollback_config: {parallelism: 3, order: stop-first}\n");
    json_t *s = obj(&c, SPEC_SERVICE, "st_web")->spec;
    json_t *cs = at(s, "TaskTemplate.ContainerSpec");
    assert_string_equal(str_at(cs, "CapabilityAdd[0]"), "CAP_CHOWN");
    assert_string_equal(str_at(cs, "CapabilityAdd[1]"), "CAP_NET_ADMIN");
    assert_int_equal(json_array_size(at(cs, "CapabilityAdd")), 2);
    assert_string_equal(str_at(cs, "CapabilityDrop[0]"), "ALL");
    assert_int_equal(json_array_size(at(cs, "CapabilityDrop")), 1);
    assert_string_equal(str_at(cs, "Hosts[0]"), "1.1.1.1 a");
    assert_string_equal(str_at(cs, "Hosts[1]"), "::1 v6");
    assert_int_equal(json_array_size(at(cs, "Hosts")), 2);
    assert_non_null(at(cs, "DNSConfig"));
    assert_null(at(cs, "DNSConfig.Search"));
    assert_string_equal(str_at(cs, "Ulimits[0].Name"), "core");
    assert_int_equal(int_at(cs, "Ulimits[0].Hard"), 2);
    assert_int_equal(int_at(cs, "Ulimits[1].Soft"), 5);
    assert_string_equal(str_at(cs, "Mounts[0].Source"), "st_data");
    assert_true(json_is_true(at(cs, "Mounts[0].VolumeOptions.NoCopy")));
    assert_string_equal(label(cs, "Mounts[0].VolumeOptions", "k"), "v");
    assert_string_equal(str_at(cs, "Mounts[0].VolumeOptions.DriverConfig.Name"), "local");
    assert_string_equal(str_at(cs, "Mounts[0].VolumeOptions.DriverConfig.Options.o"), "x");
    assert_string_equal(str_at(cs, "Mounts[1].Source"), "outside");
    assert_null(at(cs, "Mounts[1].VolumeOptions.Labels"));
    assert_null(at(cs, "Mounts[2].Source"));
    assert_null(at(cs, "Mounts[2].VolumeOptions"));
    assert_string_equal(str_at(cs, "Mounts[3].BindOptions.Propagation"), "slave");
    assert_non_null(at(cs, "Mounts[4].TmpfsOptions"));
    assert_int_equal(int_at(cs, "Healthcheck.Interval"), 1000000000);
    /* ports by published port, stable */
    assert_int_equal(int_at(s, "EndpointSpec.Ports[0].TargetPort"), 80);
    assert_int_equal(int_at(s, "EndpointSpec.Ports[1].TargetPort"), 81);
    assert_null(at(s, "EndpointSpec.Ports[1].PublishMode"));
    assert_int_equal(int_at(s, "EndpointSpec.Ports[2].PublishedPort"), 1000);
    assert_int_equal(int_at(s, "EndpointSpec.Ports[3].PublishedPort"), 3000);
    assert_string_equal(str_at(s, "TaskTemplate.RestartPolicy.Condition"), "on-failure");
    assert_int_equal(int_at(s, "TaskTemplate.RestartPolicy.MaxAttempts"), 3);
    assert_int_equal(int_at(s, "Mode.ReplicatedJob.MaxConcurrent"), 4);
    assert_int_equal(int_at(s, "Mode.ReplicatedJob.TotalCompletions"), 4);
    assert_int_equal(int_at(s, "TaskTemplate.Resources.Limits.NanoCPUs"), 1500000000);
    assert_int_equal(int_at(s, "TaskTemplate.Resources.Limits.MemoryBytes"), 1024);
    assert_int_equal(int_at(s, "TaskTemplate.Resources.Reservations.NanoCPUs"), 500000000);
    assert_int_equal(int_at(s, "UpdateConfig.Parallelism"), 1);
    assert_string_equal(str_at(s, "UpdateConfig.Order"), "");
    assert_int_equal(int_at(s, "RollbackConfig.Parallelism"), 3);
    assert_string_equal(str_at(s, "RollbackConfig.Order"), "stop-first");
    conv_free(&c);
}

static void test_networks(void **state)
{
    struct conv c = convert("networks:\n"
                            "  zeta: {}\n"
                            "  alpha: {ipam: {driver: d, config: [{subnet: 10.9.0.0/24}]}}\n"
                            "  outside: {external: true, name: host}\n"
                            "services:\n"
                            "  web:\n"
                            "    image: x\n"
                            "    networks:\n"
                            "      zeta: {aliases: [z1]}\n"
                            "      alpha:\n"
                            "      outside:\n");
    json_t *s = obj(&c, SPEC_SERVICE, "st_web")->spec;
    assert_string_equal(str_at(s, "TaskTemplate.Networks[0].Target"), "host");
    assert_null(at(s, "TaskTemplate.Networks[0].Aliases"));
    assert_string_equal(str_at(s, "TaskTemplate.Networks[1].Target"), "st_alpha");
    assert_string_equal(str_at(s, "TaskTemplate.Networks[1].Aliases[0]"), "web");
    assert_string_equal(str_at(s, "TaskTemplate.Networks[2].Target"), "st_zeta");
    assert_string_equal(str_at(s, "TaskTemplate.Networks[2].Aliases[0]"), "z1");
    assert_string_equal(str_at(s, "TaskTemplate.Networks[2].Aliases[1]"), "web");
    json_t *alpha = obj(&c, SPEC_NETWORK, "st_alpha")->spec;
    assert_string_equal(str_at(alpha, "IPAM.Driver"), "d");
    assert_string_equal(str_at(alpha, "IPAM.Config[0].Subnet"), "10.9.0.0/24");
    assert_null(spec_stack_find(c.st, SPEC_NETWORK, "st_default"));
    assert_null(spec_stack_find(c.st, SPEC_NETWORK, "host"));
    assert_int_equal(c.st->n_externals, 1);
    assert_string_equal(c.st->externals[0].name, "host");
    conv_free(&c);
}

static void test_warnings(void **state)
{
    struct conv c = convert("services:\n"
                            "  web:\n"
                            "    image: x\n"
                            "    container_name: c\n"
                            "    deploy: {labels: {io.axion.managed: 'false'}}\n");
    assert_int_equal(c.st->n_warnings, 2);
    assert_non_null(strstr(c.st->warnings[0], "services.web.container_name: ignored"));
    assert_non_null(strstr(c.st->warnings[1], "the label io.axion.managed is the agent's"));
    assert_string_equal(label(obj(&c, SPEC_SERVICE, "st_web")->spec, "", "io.axion.managed"),
                        "true");
    conv_free(&c);
    assert_string_equal(spec_kind_to_string(SPEC_CONFIG), "config");
    assert_null(spec_stack_free(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_labels),  cmocka_unit_test(test_hash),
        cmocka_unit_test(test_content_addressed), cmocka_unit_test(test_resolve_ids),
        cmocka_unit_test(test_environment),       cmocka_unit_test(test_convert_errors),
        cmocka_unit_test(test_container_details), cmocka_unit_test(test_networks),
        cmocka_unit_test(test_warnings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#include "support/testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "compose/compose.h"
#include "compose/compose_arena.h"
#include "compose/compose_yaml.h"

static struct compose_project *parse_vars(const char *text, const struct compose_vars *vars)
{
    struct compose_project *p = NULL;
    struct compose_error err;
    if (compose_parse(text, strlen(text), "t.yml", vars, &p, &err) < 0)
        fail_msg("unexpected error: %s", err.text);
    return p;
}

static struct compose_project *parse(const char *text)
{
    return parse_vars(text, NULL);
}

/* Parses text expecting failure r with a message containing want. */
static void parse_fails(const char *text, int r, const char *want)
{
    struct compose_project *p = NULL;
    struct compose_error err;
    int got = compose_parse(text, strlen(text), "t.yml", NULL, &p, &err);
    if (got != r || !strstr(err.text, want))
        fail_msg("want %d \"%s\", got %d \"%s\"", r, want, got, err.text);
    assert_null(p);
}

static void test_service_fields(void **state)
{
    struct compose_project *p = parse("version: '3.9'\n"
                                      "services:\n"
                                      "  web:\n"
                                      "    image: nginx:1\n"
                                      "    command: nginx -g 'daemon off;'\n"
                                      "    entrypoint: [/docker-entrypoint.sh]\n"
                                      "    environment: [A=1, B, C=]\n"
                                      "    labels: {x: 'y', num: 3, z: null}\n"
                                      "    hostname: h\n"
                                      "    stop_grace_period: 1m\n"
                                      "    tty: yes\n"
                                      "    init: false\n"
                                      "    cap_add: [NET_ADMIN]\n"
                                      "    ulimits: {nofile: {soft: 1, hard: 2}, nproc: 3}\n"
                                      "    logging: {driver: syslog, options: {tag: x, nn: ~}}\n"
                                      "    healthcheck: {test: curl -f x, retries: 2}\n"
                                      "    deploy:\n"
                                      "      replicas: 3\n"
                                      "      endpoint_mode: DNSRR\n"
                                      "      placement: {preferences: [{spread: a}]}\n");
    assert_string_equal(p->version, "3.9");
    assert_int_equal(p->n_services, 1);
    const struct compose_service *s = compose_project_service(p, "web");
    assert_non_null(s);
    assert_null(compose_project_service(p, "nope"));
    assert_string_equal(s->image, "nginx:1");
    assert_int_equal(s->command.n, 3);
    assert_string_equal(s->command.v[2], "daemon off;");
    assert_int_equal(s->entrypoint.n, 1);
    assert_int_equal(s->environment.n, 3);
    assert_string_equal(compose_map_get(&s->environment, "A"), "1");
    assert_null(compose_map_get(&s->environment, "B"));
    assert_string_equal(compose_map_get(&s->environment, "C"), "");
    assert_string_equal(compose_map_get(&s->labels, "num"), "3");
    assert_string_equal(compose_map_get(&s->labels, "z"), "");
    assert_true(s->stop_grace_period.set);
    assert_true(s->stop_grace_period.ns == 60000000000LL);
    assert_true(s->tty);
    assert_true(s->has_init);
    assert_false(s->init);
    assert_int_equal(s->n_ulimits, 2);
    assert_string_equal(s->ulimits[0].name, "nofile");
    assert_int_equal(s->ulimits[0].hard, 2);
    assert_int_equal(s->ulimits[1].soft, 3);
    assert_string_equal(compose_map_get(&s->logging.options, "nn"), "");
    assert_int_equal(s->healthcheck.test.n, 2);
    assert_string_equal(s->healthcheck.test.v[0], "CMD-SHELL");
    assert_string_equal(s->healthcheck.test.v[1], "curl -f x");
    assert_true(s->healthcheck.retries.set);
    assert_true(s->deploy.replicas.set);
    assert_int_equal(s->deploy.replicas.v, 3);
    assert_string_equal(s->deploy.endpoint_mode, "dnsrr");
    assert_string_equal(s->deploy.preferences.v[0], "a");
    assert_int_equal(p->warnings.n, 0);
    compose_project_free(p);
}

static void test_yaml11_scalars(void **state)
{
    struct compose_project *p = parse("services:\n"
                                      "  s:\n"
                                      "    image: x\n"
                                      "    read_only: on\n"
                                      "    stdin_open: Y\n"
                                      "    environment:\n"
                                      "      OCT: 0755\n"
                                      "      HEX: 0x1F\n"
                                      "      UNDERSCORE: 1_000\n"
                                      "      QUOTED: '010'\n"
                                      "      FLOAT: 1.50\n"
                                      "      EXP: 1e6\n"
                                      "      NEG: -0.5\n"
                                      "      NUL: ~\n"
                                      "      STR: !!str 12\n"
                                      "      TIME: 12:30\n"
                                      "    secrets: [{source: k, mode: 0440}]\n"
                                      "secrets: {k: {external: true}}\n");
    const struct compose_service *s = &p->services[0];
    assert_true(s->read_only);
    assert_true(s->stdin_open);
    assert_string_equal(compose_map_get(&s->environment, "OCT"), "493");
    assert_string_equal(compose_map_get(&s->environment, "HEX"), "31");
    assert_string_equal(compose_map_get(&s->environment, "UNDERSCORE"), "1000");
    assert_string_equal(compose_map_get(&s->environment, "QUOTED"), "010");
    assert_string_equal(compose_map_get(&s->environment, "FLOAT"), "1.5");
    assert_string_equal(compose_map_get(&s->environment, "EXP"), "1e+06");
    assert_string_equal(compose_map_get(&s->environment, "NEG"), "-0.5");
    assert_null(compose_map_get(&s->environment, "NUL"));
    assert_string_equal(compose_map_get(&s->environment, "STR"), "12");
    assert_string_equal(compose_map_get(&s->environment, "TIME"), "12:30");
    assert_int_equal(s->secrets[0].mode, 0440);
    compose_project_free(p);
}

static void test_interpolation_casts(void **state)
{
    const struct compose_var v[] = {
        {"N", "4"}, {"T", "TRUE"}, {"R", "0.5"}, {"IMG", "busybox"}, {"P", "8080"}};
    struct compose_vars vars = {v, 5};
    struct compose_project *p = parse_vars("x-d: &d\n"
                                           "  replicas: ${N}\n"
                                           "services:\n"
                                           "  s:\n"
                                           "    image: ${IMG}:${TAG:-1}\n"
                                           "    tty: $T\n"
                                           "    ports: [{target: 80, published: $P}]\n"
                                           "    deploy:\n"
                                           "      <<: *d\n"
                                           "      update_config: {max_failure_ratio: '${R}'}\n",
                                           &vars);
    const struct compose_service *s = &p->services[0];
    assert_string_equal(s->image, "busybox:1");
    assert_true(s->tty);
    assert_int_equal(s->deploy.replicas.v, 4);
    assert_true(s->deploy.update_config.max_failure_ratio == 0.5);
    assert_int_equal(s->ports[0].published, 8080);
    compose_project_free(p);
    /* a quoted literal is not cast: docker's schema refuses it */
    parse_fails("services: {s: {image: x, tty: 'true'}}", -EINVAL,
                "services.s.tty: expected a boolean, got \"true\"");
    /* an interpolated value that is not a number */
    const struct compose_var w[] = {{"N", "many"}};
    struct compose_vars wv = {w, 1};
    struct compose_error err;
    struct compose_project *q = NULL;
    const char *t = "services: {s: {image: x, deploy: {replicas: $N}}}";
    assert_int_equal(compose_parse(t, strlen(t), NULL, &wv, &q, &err), -EINVAL);
    assert_string_equal(err.text, "compose.yml:1:45: services.s.deploy.replicas: expected an "
                                  "integer, got \"many\"");
    assert_string_equal(err.file, "compose.yml");
    assert_int_equal(err.line, 1);
    assert_int_equal(err.col, 45);
    assert_string_equal(err.path, "services.s.deploy.replicas");
}

static void test_merge_keys(void **state)
{
    struct compose_project *p = parse("x-a: &a {image: a, hostname: ha, user: ua}\n"
                                      "x-b: &b {image: b, hostname: hb, working_dir: /b}\n"
                                      "services:\n"
                                      "  one:\n"
                                      "    hostname: mine\n"
                                      "    <<: [*a, *b]\n"
                                      "  two:\n"
                                      "    <<: *b\n"
                                      "    image: explicit\n");
    const struct compose_service *one = compose_project_service(p, "one");
    assert_string_equal(one->hostname, "mine"); /* written keys win, wherever the << is */
    assert_string_equal(one->image, "a");       /* an earlier merged map wins */
    assert_string_equal(one->user, "ua");
    assert_string_equal(one->working_dir, "/b");
    const struct compose_service *two = compose_project_service(p, "two");
    assert_string_equal(two->image, "explicit");
    assert_string_equal(two->hostname, "hb");
    compose_project_free(p);
    parse_fails("services:\n  s:\n    image: x\n    <<: [1]\n", -EINVAL,
                "services.s.<<: a merge key takes a mapping or a list of mappings");
    /* a quoted "<<" is an ordinary (and here unknown) key */
    parse_fails("services:\n  s:\n    image: x\n    '<<': {}\n", -EINVAL,
                "services.s.<<: unknown key");
}

static void test_warnings_and_forbidden(void **state)
{
    struct compose_project *p = parse("services:\n"
                                      "  s:\n"
                                      "    image: x\n"
                                      "    build: .\n"
                                      "    depends_on: [t]\n"
                                      "    privileged: true\n"
                                      "    network_mode: host\n"
                                      "    restart: always\n"
                                      "    deploy: {restart_policy: {condition: any}}\n"
                                      "    x-mine: {anything: [1, 2]}\n"
                                      "x-top: 1\n");
    assert_int_equal(p->warnings.n, 5);
    assert_string_equal(p->warnings.v[0],
                        "t.yml:4:5: services.s.build: ignored: Swarm runs images: build and push "
                        "them first");
    assert_non_null(strstr(p->warnings.v[4], "services.s.restart: ignored: deploy.restart_policy"));
    const struct compose_service *s = &p->services[0];
    assert_true(s->privileged);
    assert_string_equal(s->network_mode, "host");
    assert_int_equal(s->privileged_pos.line, 6);
    compose_project_free(p);
    parse_fails("services: {s: {image: x, cpu_shares: 2}}", -EINVAL,
                "services.s.cpu_shares: not supported by docker stack deploy");
    parse_fails("services: {s: {image: x, platform: linux}}", -EINVAL,
                "services.s.platform: unknown key");
}

static void test_ports(void **state)
{
    struct compose_project *p = parse("services:\n"
                                      "  s:\n"
                                      "    image: x\n"
                                      "    ports:\n"
                                      "      - 80\n"
                                      "      - 8000-8001:90-91/UDP\n"
                                      "      - 9000-9002:100\n"
                                      "      - '[::1]:443:443/sctp'\n"
                                      "      - {target: 53, protocol: udp}\n");
    const struct compose_service *s = &p->services[0];
    assert_int_equal(s->n_ports, 8);
    assert_int_equal(s->ports[0].target, 80);
    assert_int_equal(s->ports[0].published, 0);
    assert_string_equal(s->ports[0].protocol, "tcp");
    assert_string_equal(s->ports[0].mode, "ingress");
    assert_int_equal(s->ports[1].published, 8000);
    assert_int_equal(s->ports[2].target, 91);
    assert_string_equal(s->ports[2].protocol, "udp");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s->ports[3 + i].target, 100);
        assert_int_equal(s->ports[3 + i].published, 9000 + i);
    }
    assert_string_equal(s->ports[6].protocol, "sctp");
    assert_null(s->ports[7].mode);
    assert_string_equal(s->ports[7].protocol, "udp");
    assert_int_equal(p->warnings.n, 1); /* the address ::1 */
    compose_project_free(p);
    /* docker sorts the ports of one range entry as text */
    p = parse("services: {s: {image: x, ports: ['98-101']}}");
    assert_int_equal(p->services[0].ports[0].target, 100);
    assert_int_equal(p->services[0].ports[2].target, 98);
    compose_project_free(p);
    parse_fails("services: {s: {image: x, ports: ['70000']}}", -EINVAL, "invalid container port");
    parse_fails("services: {s: {image: x, ports: ['1-40000:1-40000', '1-40000:1-40000/udp']}}",
                -EINVAL, "services.s.ports[1]: more than 65536 ports in all");
    parse_fails("services: {s: {image: x, ports: ['1-60000:80', '1-6000:81']}}", -EINVAL,
                "more than 65536 ports");
    parse_fails("services: {s: {image: x, ports: [{target: 1, mode: bridge}]}}", -EINVAL,
                "expected \"ingress\" or \"host\"");
    parse_fails("services: {s: {image: x, ports: [1.5]}}", -EINVAL, "expected a port");
}

static void test_mounts(void **state)
{
    struct compose_project *p = parse("volumes: {vol: {}}\n"
                                      "services:\n"
                                      "  s:\n"
                                      "    image: x\n"
                                      "    volumes:\n"
                                      "      - /x\n"
                                      "      - ab\n"
                                      "      - vol:/v:ro,nocopy\n"
                                      "      - /h:/c:rw,rshared,z\n"
                                      "      - type: tmpfs\n"
                                      "        target: /t\n"
                                      "        tmpfs: {size: 100}\n");
    const struct compose_service *s = &p->services[0];
    assert_int_equal(s->n_mounts, 5);
    assert_string_equal(s->mounts[0].type, "volume");
    assert_null(s->mounts[0].source);
    assert_string_equal(s->mounts[0].target, "/x");
    assert_string_equal(s->mounts[1].target, "ab");
    assert_string_equal(s->mounts[2].source, "vol");
    assert_true(s->mounts[2].read_only);
    assert_true(s->mounts[2].volume_nocopy);
    assert_string_equal(s->mounts[3].type, "bind");
    assert_false(s->mounts[3].read_only);
    assert_string_equal(s->mounts[3].bind_propagation, "rshared");
    assert_int_equal(s->mounts[4].tmpfs_size, 100);
    compose_project_free(p);
    /* as in docker, a one-letter source is a Windows drive: this is an anonymous volume */
    p = parse("volumes: {v: {}}\nservices: {s: {image: x, volumes: ['v:/v']}}");
    assert_null(p->services[0].mounts[0].source);
    assert_string_equal(p->services[0].mounts[0].target, "v:/v");
    compose_project_free(p);
    const struct compose_var home[] = {{"HOME", "/home/u"}};
    struct compose_vars hv = {home, 1};
    p = parse_vars("services: {s: {image: x, volumes: ['~/data:/data']}}", &hv);
    assert_string_equal(p->services[0].mounts[0].source, "/home/u/data");
    compose_project_free(p);
    parse_fails("services: {s: {image: x, volumes: ['~/data:/data']}}", -EINVAL,
                "no HOME variable");
    parse_fails("services: {s: {image: x, volumes: ['/a::/b']}}", -EINVAL,
                "empty section between colons");
    parse_fails("services: {s: {image: x, volumes: ['C:\\\\data:/data']}}", -EINVAL,
                "must be an absolute path");
    parse_fails("services: {s: {image: x, volumes: [{type: bind, target: /b}]}}", -EINVAL,
                "a bind mount needs a source path");
    parse_fails("services: {s: {image: x, volumes: [{source: /a, target: /b}]}}", -EINVAL,
                "needs a type");
}

static void test_networks_and_objects(void **state)
{
    struct compose_project *p = parse("networks:\n"
                                      "  a: {external: true}\n"
                                      "  b: {external: {name: legacy}}\n"
                                      "  c:\n"
                                      "volumes: {v: {external: true}}\n"
                                      "configs: {k: {file: ./k.txt, name: named}}\n"
                                      "services:\n"
                                      "  s:\n"
                                      "    image: x\n"
                                      "    networks: {a: {aliases: [x]}, c: ~}\n");
    const struct compose_network *a = compose_project_network(p, "a");
    assert_true(a->external);
    assert_string_equal(a->name, "a");
    assert_string_equal(compose_project_network(p, "b")->name, "legacy");
    assert_null(compose_project_network(p, "c")->name);
    assert_string_equal(compose_project_volume(p, "v")->name, "v");
    assert_string_equal(compose_project_config(p, "k")->file, "./k.txt");
    assert_string_equal(compose_project_config(p, "k")->name, "named");
    assert_null(compose_project_secret(p, "k"));
    const struct compose_service *s = &p->services[0];
    assert_int_equal(s->n_networks, 2);
    assert_true(s->networks[0].has_aliases);
    assert_string_equal(s->networks[0].aliases.v[0], "x");
    assert_false(s->networks[1].has_aliases);
    compose_project_free(p);
    parse_fails("secrets: {s: {file: a, driver: b}}\nservices: {}", -EINVAL,
                "secret.driver and secret.file conflict");
    parse_fails("configs: {c: {driver: b}}\nservices: {}", -EINVAL,
                "configs.c.driver: unknown key");
}

static void test_limits(void **state)
{
    /* size */
    size_t big = COMPOSE_MAX_BYTES + 1;
    char *text = malloc(big + 1);
    memset(text, ' ', big);
    memcpy(text, "services: {}", 12);
    text[big] = '\0';
    struct compose_project *p = NULL;
    struct compose_error err;
    assert_int_equal(compose_parse(text, big, "big.yml", NULL, &p, &err), -E2BIG);
    assert_string_equal(err.text, "big.yml: the file is larger than 1048576 bytes");
    free(text);
    /* depth */
    char deep[512] = "x: ";
    for (int i = 0; i < 70; i++)
        strcat(deep, "[");
    for (int i = 0; i < 70; i++)
        strcat(deep, "]");
    assert_int_equal(compose_parse(deep, strlen(deep), "d.yml", NULL, &p, &err), -E2BIG);
    assert_non_null(strstr(err.text, "nests deeper than 64 levels"));
    /* depth through aliases */
    char chain[4096] = "";
    char prev[8] = "";
    for (int i = 0; i < 10; i++) {
        char line[512], anchor[8];
        snprintf(anchor, sizeof(anchor), "a%d", i);
        int k = snprintf(line, sizeof(line), "x%d: &%s ", i, anchor);
        for (int j = 0; j < 10; j++)
            k += snprintf(line + k, sizeof(line) - (size_t)k, "[");
        k += snprintf(line + k, sizeof(line) - (size_t)k, "%s%s", prev[0] ? "*" : "", prev);
        for (int j = 0; j < 10; j++)
            k += snprintf(line + k, sizeof(line) - (size_t)k, "]");
        snprintf(line + k, sizeof(line) - (size_t)k, "\n");
        strcat(chain, line);
        snprintf(prev, sizeof(prev), "%s", anchor);
    }
    assert_int_equal(compose_parse(chain, strlen(chain), "c.yml", NULL, &p, &err), -E2BIG);
    assert_non_null(strstr(err.text, "(aliases included)"));
    /* billion laughs through merge keys */
    char laughs[4096] = "x0: &l0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9, j: 0}\n";
    for (int i = 1; i < 8; i++) {
        char line[256];
        snprintf(line, sizeof(line),
                 "x%d: &l%d {k0: *l%d, k1: *l%d, k2: *l%d, k3: *l%d, k4: *l%d, k5: *l%d, k6: "
                 "*l%d, k7: *l%d}\n",
                 i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
        strcat(laughs, line);
    }
    assert_int_equal(compose_parse(laughs, strlen(laughs), "l.yml", NULL, &p, &err), -E2BIG);
    assert_non_null(strstr(err.text, "expands to more than 200000 nodes"));
    /* a big scalar, aliased many times: bytes, not nodes */
    size_t bl = 200 * 1024;
    char *bigtext = malloc(bl + 4096);
    int k = snprintf(bigtext, 64, "x: &big \"");
    memset(bigtext + k, 'a', bl);
    k += (int)bl;
    k += snprintf(bigtext + k, 64, "\"\nservices: {s: {image: x, command: [");
    for (int i = 0; i < 100; i++)
        k += snprintf(bigtext + k, 16, "%s*big", i ? "," : "");
    snprintf(bigtext + k, 16, "]}}\n");
    assert_int_equal(compose_parse(bigtext, strlen(bigtext), "b.yml", NULL, &p, &err), -E2BIG);
    assert_string_equal(err.text, "b.yml:2:35: services.s.command: the document expands to more "
                                  "than 16777216 bytes of text (aliases and merge keys included)");
    free(bigtext);
}

static void test_errors(void **state)
{
    parse_fails("", -EINVAL, "the file is empty");
    parse_fails("services: {s: {}}", -EINVAL, "services.s: a service needs an image");
    parse_fails("services: [a]", -EINVAL, "services: expected a mapping, got a list");
    parse_fails("services: {s: {image: [x]}}", -EINVAL,
                "services.s.image: expected a string, got a list");
    parse_fails("services: {s: {image: x, deploy: {mode: global-job, replicas: 1}}}", -EINVAL,
                "replicas can only be used with replicated or replicated-job mode");
    parse_fails("services: {s: {image: x, healthcheck: {retries: 1.5}}}", -EINVAL,
                "services.s.healthcheck.retries: expected an integer, got 1.5");
    parse_fails("services: {s: {image: x, restart: 'on-failure:x'}}", -EINVAL,
                "maximum retry count must be an integer");
    parse_fails("services: {s: {image: x, cap_add: [A, A]}}", -EINVAL,
                "services.s.cap_add[1]: duplicate entry \"A\"");
    parse_fails("services: {s: {image: x, ulimits: {NoFile: 1}}}", -EINVAL, "invalid ulimit name");
    parse_fails("services: {s: {image: x, secrets: [{target: t}]}}", -EINVAL,
                "a source is required");
    parse_fails("services: {s: {image: x, networks: [default], extra_hosts: {a: true}}}", -EINVAL,
                "services.s.extra_hosts.a: expected a string, a number or null, got true");
    parse_fails("services: {s: {image: x, labels: {a: no}}}", -EINVAL,
                "services.s.labels.a: expected a string, a number or null, got no (YAML reads "
                "it as a boolean: quote it)");
    parse_fails("version: '3.x'\nservices: {}", -EINVAL, "unsupported compose file version");
    parse_fails("services: {s: {image: x}}\nx: 1", -EINVAL, "x: unknown key");
    parse_fails("\"services\": {s: {image: x, command: \"'\"}}", -EINVAL,
                "cannot split \"'\" into words");
    /* err may be NULL */
    struct compose_project *p = NULL;
    assert_int_equal(compose_parse("[", 1, NULL, NULL, &p, NULL), -EINVAL);
    assert_null(p);
}

static void test_vars_copied(void **state)
{
    char name[] = "V", value[] = "1";
    const struct compose_var v[] = {{name, value}, {NULL, "skipped"}};
    struct compose_vars vars = {v, 2};
    struct compose_project *p = parse_vars("services: {s: {image: x}}", &vars);
    name[0] = 'X';
    value[0] = '2';
    assert_int_equal(p->n_vars, 1);
    assert_string_equal(p->vars[0].name, "V");
    assert_string_equal(p->vars[0].value, "1");
    struct compose_vars pv = {p->vars, p->n_vars};
    assert_string_equal(compose_vars_get(&pv, "V"), "1");
    assert_null(compose_vars_get(&pv, "X"));
    assert_null(compose_vars_get(NULL, "V"));
    compose_project_free(p);
    assert_null(compose_project_free(NULL));
}

static void test_yaml_tree(void **state)
{
    struct compose_arena *a = compose_arena_new();
    struct compose_ynode *root = NULL;
    struct compose_error err;
    const char *t = "a: &x [1, 2]\nb: *x\nc: !!float 3\nd: |\n  lit\n";
    assert_int_equal(compose_yaml_parse(a, t, strlen(t), "y.yml", &root, &err), 0);
    assert_int_equal(root->n, 4);
    assert_ptr_equal(compose_yaml_get(root, "a"), compose_yaml_get(root, "b"));
    assert_int_equal(root->weight, 1 + 4 + 2 * 3 + 1 + 1);
    assert_int_equal(compose_yaml_get(root, "c")->type, COMPOSE_YFLOAT);
    assert_string_equal(compose_yaml_get(root, "d")->str, "lit\n");
    assert_int_equal(compose_yaml_get(root, "d")->type, COMPOSE_YSTR);
    assert_null(compose_yaml_get(root, "e"));
    assert_int_equal(compose_yaml_get(root, "a")->line, 1);
    assert_int_equal(compose_yaml_get(root, "a")->col, 4); /* where the anchor is */
    assert_string_equal(compose_yaml_describe(compose_yaml_get(root, "a")), "a list");
    t = "a: !!int x\n";
    assert_int_equal(compose_yaml_parse(a, t, strlen(t), "y.yml", &root, &err), -EINVAL);
    assert_non_null(strstr(err.text, "cannot read \"x\" as tag:yaml.org,2002:int"));
    compose_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_fields),
        cmocka_unit_test(test_yaml11_scalars),
        cmocka_unit_test(test_interpolation_casts),
        cmocka_unit_test(test_merge_keys),
        cmocka_unit_test(test_warnings_and_forbidden),
        cmocka_unit_test(test_ports),
        cmocka_unit_test(test_mounts),
        cmocka_unit_test(test_networks_and_objects),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_vars_copied),
        cmocka_unit_test(test_yaml_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#include "support/testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/config.h"
#include "lib/toml.h"

static char err[1024];

/* Loads from an in-memory file named agent.toml, the given environment and flags. */
static int load(const char *file, char **env, const char **flags, size_t n_flags, struct config *c)
{
    static char *no_env[] = {NULL};
    struct config_source src = {
        .path = "agent.toml",
        .data = file ? file : "",
        .len = file ? strlen(file) : 0,
        .env = env ? env : no_env,
        .flags = flags,
        .n_flags = n_flags,
    };
    return config_load(&src, c, err, sizeof(err));
}

static void load_ok(const char *file, char **env, const char **flags, size_t n_flags,
                    struct config *c)
{
    if (load(file, env, flags, n_flags, c) < 0)
        fail_msg("config_load failed: %s", err);
}

/* Loads what must fail and returns the message; the output is left alone on failure. */
static const char *load_err(const char *file, char **env, const char **flags, size_t n_flags)
{
    struct config c;
    memset(&c, 0xAB, sizeof(c));
    int r = load(file, env, flags, n_flags, &c);
    if (r == 0) {
        config_free(&c);
        fail_msg("loaded, but expected an error");
    }
    assert_true(r == -EINVAL || r == -E2BIG);
    const unsigned char *p = (const unsigned char *)&c;
    for (size_t i = 0; i < sizeof(c); i++)
        assert_int_equal(p[i], 0xAB);
    return err;
}

static const char *file_err(const char *file)
{
    return load_err(file, NULL, NULL, 0);
}

static const char *env_err(const char *assignment)
{
    char *env[] = {(char *)assignment, NULL};
    return load_err(NULL, env, NULL, 0);
}

static const char *flag_err(const char *flag)
{
    const char *flags[] = {flag};
    return load_err(NULL, NULL, flags, 1);
}

static char *hostname(void)
{
    static char host[256];
    gethostname(host, sizeof(host));
    return host;
}

static void test_defaults(void **state)
{
    struct config c;
    load_ok(NULL, NULL, NULL, 0, &c);
    assert_null(c.agent.token);
    assert_string_equal(c.agent.id, hostname());
    assert_string_equal(c.agent.state_dir, "/var/lib/axion");
    assert_string_equal(c.agent.log_level, "info");
    assert_null(c.control_plane.grpc_url);
    assert_int_equal(c.control_plane.heartbeat_interval_ms, 5000);
    assert_int_equal(c.kafka.brokers.n, 0);
    assert_string_equal(c.kafka.topic_prefix, "runner");
    assert_string_equal(c.kafka.security, "ssl");
    assert_string_equal(c.docker.socket, "/var/run/docker.sock");
    assert_int_equal(c.docker.request_timeout_ms, 30000);
    assert_int_equal(c.reconcile.resync_interval_ms, 60000);
    assert_int_equal(c.reconcile.concurrency, 4);
    assert_true(c.reconcile.prune);
    assert_int_equal(c.telemetry.interval_ms, 10000);
    assert_string_equal(c.telemetry.cgroup_root, "/sys/fs/cgroup");
    assert_string_equal(c.telemetry.proc_root, "/proc");
    assert_false(c.local.enabled);
    assert_string_equal(c.local.socket, "/run/axion/agent.sock");
    assert_false(c.policy.allow_privileged);
    assert_int_equal(c.policy.bind_allow.n, 0);
    for (size_t k = 0; k < CONFIG_KEY_COUNT; k++)
        assert_int_equal(c.origin[k].origin, CONFIG_ORIGIN_DEFAULT);
    config_free(&c);
    config_free(NULL);
}

static void test_file_values(void **state)
{
    struct config c;
    load_ok("[agent]\n"
            "token = \"tok\"\n"
            "id = \"node-1\"\n"
            "state_dir = \"/srv/axion\"\n"
            "log_level = \"debug\"\n"
            "[control_plane]\n"
            "grpc_url = \"https://cp.example.com\"\n"
            "ca_file = \"/etc/axion/ca.pem\"\n"
            "heartbeat_interval = \"1m30s\"\n"
            "[kafka]\n"
            "brokers = [\"a:9092\", \"b:9092\"]\n"
            "security = \"plaintext\"\n"
            "[docker]\n"
            "request_timeout = \"250ms\"\n"
            "[reconcile]\n"
            "concurrency = 16\n"
            "prune = false\n"
            "[telemetry]\n"
            "interval = \"2m\"\n"
            "[local]\n"
            "enabled = true\n"
            "[policy]\n"
            "allow_privileged = true\n"
            "bind_allow = [\"/srv/data\", \"/var/log\"]\n",
            NULL, NULL, 0, &c);
    assert_string_equal(c.path, "agent.toml");
    assert_string_equal(c.agent.token, "tok");
    assert_string_equal(c.agent.id, "node-1");
    assert_string_equal(c.agent.state_dir, "/srv/axion");
    assert_string_equal(c.agent.log_level, "debug");
    assert_string_equal(c.control_plane.grpc_url, "https://cp.example.com");
    assert_string_equal(c.control_plane.ca_file, "/etc/axion/ca.pem");
    assert_int_equal(c.control_plane.heartbeat_interval_ms, 90000);
    assert_int_equal(c.kafka.brokers.n, 2);
    assert_string_equal(c.kafka.brokers.v[1], "b:9092");
    assert_string_equal(c.kafka.security, "plaintext");
    assert_int_equal(c.docker.request_timeout_ms, 250);
    assert_int_equal(c.reconcile.concurrency, 16);
    assert_false(c.reconcile.prune);
    assert_int_equal(c.telemetry.interval_ms, 120000);
    assert_true(c.local.enabled);
    assert_true(c.policy.allow_privileged);
    assert_int_equal(c.policy.bind_allow.n, 2);
    assert_string_equal(c.policy.bind_allow.v[0], "/srv/data");
    assert_int_equal(c.origin[CONFIG_AGENT_TOKEN].origin, CONFIG_ORIGIN_FILE);
    assert_int_equal(c.origin[CONFIG_AGENT_TOKEN].line, 2);
    assert_int_equal(c.origin[CONFIG_POLICY_BIND_ALLOW].line, 24);
    assert_int_equal(c.origin[CONFIG_DOCKER_SOCKET].origin, CONFIG_ORIGIN_DEFAULT);
    config_free(&c);

    /* An empty agent.id means the hostname; empty optional strings stay unset. */
    load_ok("[agent]\nid = \"\"\ntoken = \"\"\n", NULL, NULL, 0, &c);
    assert_string_equal(c.agent.id, hostname());
    assert_int_equal(c.origin[CONFIG_AGENT_ID].origin, CONFIG_ORIGIN_DEFAULT);
    assert_null(c.agent.token);
    config_free(&c);
}

static void test_layering(void **state)
{
    struct config c;
    char *env[] = {
        "PATH=/usr/bin",
        "AXION_AGENT_BIN=/x/axion-agent", /* not ours: one underscore */
        "AXION_AGENT__AGENT__TOKEN=from-env",
        "AXION_AGENT__KAFKA__BROKERS=a:9092,b:9092",
        "AXION_AGENT__RECONCILE__CONCURRENCY=8",
        NULL,
    };
    const char *flags[] = {"reconcile.concurrency=12", "local.enabled=true",
                           "reconcile.concurrency=0x10"};
    load_ok("[agent]\n"
            "token = \"from-file\"\n"
            "log_level = \"warn\"\n"
            "[reconcile]\n"
            "concurrency = 2\n"
            "[kafka]\n"
            "brokers = [\"file:9092\"]\n",
            env, flags, 3, &c);
    /* file only */
    assert_string_equal(c.agent.log_level, "warn");
    assert_int_equal(c.origin[CONFIG_AGENT_LOG_LEVEL].origin, CONFIG_ORIGIN_FILE);
    assert_int_equal(c.origin[CONFIG_AGENT_LOG_LEVEL].line, 3);
    /* env over file */
    assert_string_equal(c.agent.token, "from-env");
    assert_int_equal(c.origin[CONFIG_AGENT_TOKEN].origin, CONFIG_ORIGIN_ENV);
    assert_int_equal(c.kafka.brokers.n, 2);
    assert_string_equal(c.kafka.brokers.v[0], "a:9092");
    assert_string_equal(c.kafka.brokers.v[1], "b:9092");
    assert_int_equal(c.origin[CONFIG_KAFKA_BROKERS].origin, CONFIG_ORIGIN_ENV);
    /* flags over env and file, the last flag wins */
    assert_int_equal(c.reconcile.concurrency, 16);
    assert_int_equal(c.origin[CONFIG_RECONCILE_CONCURRENCY].origin, CONFIG_ORIGIN_FLAG);
    assert_true(c.local.enabled);
    assert_int_equal(c.origin[CONFIG_LOCAL_ENABLED].origin, CONFIG_ORIGIN_FLAG);
    /* nothing set */
    assert_int_equal(c.origin[CONFIG_TELEMETRY_INTERVAL].origin, CONFIG_ORIGIN_DEFAULT);
    config_free(&c);
}

static void test_env_values(void **state)
{
    struct config c;
    char *env[] = {
        "AXION_AGENT__KAFKA__BROKERS= a:9092 ,  b:9092 ",
        "AXION_AGENT__POLICY__BIND_ALLOW=",
        "AXION_AGENT__CONTROL_PLANE__HEARTBEAT_INTERVAL=2s",
        "AXION_AGENT__RECONCILE__PRUNE=false",
        "AXION_AGENT__CONTROL_PLANE__GRPC_URL=http://127.0.0.1:50051",
        "AXION_AGENT__AGENT__ID=",
        NULL,
    };
    load_ok("[policy]\nbind_allow = [\"/srv\"]\n", env, NULL, 0, &c);
    assert_int_equal(c.kafka.brokers.n, 2);
    assert_string_equal(c.kafka.brokers.v[0], "a:9092");
    assert_string_equal(c.kafka.brokers.v[1], "b:9092");
    assert_int_equal(c.policy.bind_allow.n, 0);
    assert_int_equal(c.origin[CONFIG_POLICY_BIND_ALLOW].origin, CONFIG_ORIGIN_ENV);
    assert_int_equal(c.control_plane.heartbeat_interval_ms, 2000);
    assert_false(c.reconcile.prune);
    assert_string_equal(c.control_plane.grpc_url, "http://127.0.0.1:50051");
    assert_string_equal(c.agent.id, hostname());
    config_free(&c);
}

static void test_env_errors(void **state)
{
    assert_string_equal(env_err("AXION_AGENT__RECONCILE__CONCURRENCY=lots"),
                        "AXION_AGENT__RECONCILE__CONCURRENCY: expected an integer, got \"lots\"");
    assert_string_equal(env_err("AXION_AGENT__RECONCILE__CONCURRENCY=100"),
                        "AXION_AGENT__RECONCILE__CONCURRENCY: expected an integer from 1 to 64, "
                        "got 100");
    assert_string_equal(env_err("AXION_AGENT__RECONCILE__CONCURRENCY=99999999999999999999"),
                        "AXION_AGENT__RECONCILE__CONCURRENCY: integer \"99999999999999999999\" "
                        "does not fit in 64 bits");
    assert_string_equal(env_err("AXION_AGENT__LOCAL__ENABLED=yes"),
                        "AXION_AGENT__LOCAL__ENABLED: expected true or false, got \"yes\"");
    assert_string_equal(env_err("AXION_AGENT__TELEMETRY__INTERVAL=10"),
                        "AXION_AGENT__TELEMETRY__INTERVAL: expected a duration like \"5s\", "
                        "\"250ms\", \"2m\", \"1h\" or \"1m30s\", got \"10\"");
    assert_string_equal(env_err("AXION_AGENT__KAFKA__BROKERS=a:9092,,b:9092"),
                        "AXION_AGENT__KAFKA__BROKERS: expected a comma-separated list without "
                        "empty items, got \"a:9092,,b:9092\"");
    assert_string_equal(env_err("AXION_AGENT__KAFKA__BROKERS=a:9092,"),
                        "AXION_AGENT__KAFKA__BROKERS: expected a comma-separated list without "
                        "empty items, got \"a:9092,\"");
    assert_string_equal(env_err("AXION_AGENT__KAFKA__BROKERS=a:9092,b"),
                        "AXION_AGENT__KAFKA__BROKERS: item 2: expected HOST:PORT with a port from "
                        "1 to 65535, got \"b\"");
    assert_string_equal(env_err("AXION_AGENT__AGENT__STATE_DIR="),
                        "AXION_AGENT__AGENT__STATE_DIR: expected a non-empty string, got \"\"");
    /* A secret is never echoed. */
    assert_string_equal(env_err("AXION_AGENT__AGENT__TOKEN=\xff"),
                        "AXION_AGENT__AGENT__TOKEN: expected UTF-8 text, got a secret value (not "
                        "shown)");
    /* Unknown variables, with a hint when one is close. */
    assert_string_equal(env_err("AXION_AGENT__AGENT__TOKN=x"),
                        "AXION_AGENT__AGENT__TOKN: unknown variable (did you mean "
                        "AXION_AGENT__AGENT__TOKEN?)");
    assert_string_equal(env_err("AXION_AGENT__AGENT_TOKEN=x"),
                        "AXION_AGENT__AGENT_TOKEN: unknown variable (did you mean "
                        "AXION_AGENT__AGENT__TOKEN?)");
    assert_string_equal(env_err("AXION_AGENT__agent__token=x"),
                        "AXION_AGENT__agent__token: unknown variable (did you mean "
                        "AXION_AGENT__AGENT__TOKEN?)");
    assert_string_equal(env_err("AXION_AGENT__AGENT__GRPC_URL=x"),
                        "AXION_AGENT__AGENT__GRPC_URL: unknown variable (did you mean "
                        "AXION_AGENT__CONTROL_PLANE__GRPC_URL?)");
    assert_string_equal(env_err("AXION_AGENT__WHATEVER=x"),
                        "AXION_AGENT__WHATEVER: unknown variable");
}

static void test_unknown_keys(void **state)
{
    assert_string_equal(file_err("[agent]\ntoken = \"x\"\n\ntokn = \"y\"\n"),
                        "agent.toml:4:1: unknown key \"agent.tokn\" (did you mean "
                        "\"agent.token\"?)");
    assert_string_equal(file_err("[agent]\ngrpc_url = \"https://x\"\n"),
                        "agent.toml:2:1: unknown key \"agent.grpc_url\" (did you mean "
                        "\"control_plane.grpc_url\"?)");
    assert_string_equal(file_err("[reconcile]\nconcurency = 3\n"),
                        "agent.toml:2:1: unknown key \"reconcile.concurency\" (did you mean "
                        "\"reconcile.concurrency\"?)");
    assert_string_equal(file_err("[agent]\nfavourite_colour = \"red\"\n"),
                        "agent.toml:2:1: unknown key \"agent.favourite_colour\"");
    assert_string_equal(file_err("token = \"x\"\n"),
                        "agent.toml:1:1: unknown key \"token\" (did you mean \"agent.token\"?)");
    assert_string_equal(file_err("[agnet]\n"),
                        "agent.toml:1:2: unknown section \"agnet\" (did you mean \"agent\"?)");
    assert_string_equal(file_err("[kafak]\n"),
                        "agent.toml:1:2: unknown section \"kafak\" (did you mean \"kafka\"?)");
    assert_string_equal(file_err("[database]\n"), "agent.toml:1:2: unknown section \"database\"");
    assert_string_equal(file_err("agent = 1\n"),
                        "agent.toml:1:1: \"agent\" must be a table ([agent]), not a key");
    assert_string_equal(flag_err("agent.tokn=x"),
                        "--set: unknown key \"agent.tokn\" (did you mean \"agent.token\"?)");
    assert_string_equal(flag_err("token=x"),
                        "--set: unknown key \"token\" (did you mean \"agent.token\"?)");
    assert_string_equal(flag_err("agent.token"),
                        "--set \"agent.token\": expected SECTION.KEY=VALUE");
}

static void test_wrong_types(void **state)
{
    assert_string_equal(file_err("[reconcile]\nconcurrency = \"4\"\n"),
                        "agent.toml:2:15: reconcile.concurrency: expected an integer, got a string "
                        "\"4\"");
    assert_string_equal(file_err("[reconcile]\nprune = 1\n"),
                        "agent.toml:2:9: reconcile.prune: expected a boolean (true or false), got "
                        "an integer 1");
    assert_string_equal(file_err("[agent]\nlog_level = true\n"),
                        "agent.toml:2:13: agent.log_level: expected a string, got a boolean true");
    assert_string_equal(file_err("[agent]\nlog_level = [\"x\"]\n"),
                        "agent.toml:2:13: agent.log_level: expected a string, got an array");
    assert_string_equal(file_err("[control_plane]\nheartbeat_interval = 5\n"),
                        "agent.toml:2:22: control_plane.heartbeat_interval: expected a duration "
                        "string like \"5s\", got an integer 5");
    assert_string_equal(file_err("[kafka]\nbrokers = \"a:9092\"\n"),
                        "agent.toml:2:11: kafka.brokers: expected an array of strings, got a "
                        "string \"a:9092\"");
    assert_string_equal(file_err("[kafka]\nbrokers = [\n  \"a:9092\",\n  9092,\n]\n"),
                        "agent.toml:4:3: kafka.brokers: item 2: expected a string, got an integer "
                        "9092");
    assert_string_equal(file_err("[policy]\nbind_allow = [[\"/x\"]]\n"),
                        "agent.toml:2:15: policy.bind_allow: item 1: expected a string, got an "
                        "array");
    /* A secret's value is not shown even in a type error. */
    assert_string_equal(file_err("[agent]\nid = 7\ntoken = 5\n"),
                        "agent.toml:2:6: agent.id: expected a string, got an integer 7");
}

static void test_validation(void **state)
{
    assert_string_equal(file_err("[agent]\nlog_level = \"verbose\"\n"),
                        "agent.toml:2:13: agent.log_level: expected one of error, warn, info, "
                        "debug, got \"verbose\"");
    assert_string_equal(file_err("[kafka]\nsecurity = \"tls\"\n"),
                        "agent.toml:2:12: kafka.security: expected plaintext or ssl, got \"tls\"");
    assert_string_equal(file_err("[control_plane]\ngrpc_url = \"grpc://cp:443\"\n"),
                        "agent.toml:2:12: control_plane.grpc_url: expected a URL that starts with "
                        "https:// or http://, got \"grpc://cp:443\"");
    assert_string_equal(file_err("[control_plane]\nheartbeat_interval = \"500ms\"\n"),
                        "agent.toml:2:22: control_plane.heartbeat_interval: expected a duration "
                        "from 1s to 10m, got \"500ms\"");
    assert_string_equal(file_err("[reconcile]\nconcurrency = 0\n"),
                        "agent.toml:2:15: reconcile.concurrency: expected an integer from 1 to "
                        "64, got 0");
    assert_string_equal(file_err("[reconcile]\nresync_interval = \"1.5s\"\n"),
                        "agent.toml:2:19: reconcile.resync_interval: expected a duration like "
                        "\"5s\", \"250ms\", \"2m\", \"1h\" or \"1m30s\", got \"1.5s\"");
    assert_string_equal(file_err("[agent]\nid = \"my host\"\n"),
                        "agent.toml:2:6: agent.id: expected 1 to 64 characters of A-Z a-z 0-9 . _ "
                        "-, got \"my host\"");
    assert_string_equal(file_err("[agent]\nstate_dir = \"var/lib\"\n"),
                        "agent.toml:2:13: agent.state_dir: expected an absolute path, got "
                        "\"var/lib\"");
    assert_string_equal(file_err("[docker]\nsocket = \"\"\n"),
                        "agent.toml:2:10: docker.socket: expected a non-empty string, got \"\"");
    assert_string_equal(file_err("[kafka]\nbrokers = [\"a:99999\"]\n"),
                        "agent.toml:2:11: kafka.brokers: item 1: expected HOST:PORT with a port "
                        "from 1 to 65535, got \"a:99999\"");
    assert_string_equal(file_err("[kafka]\ntopic_prefix = \"a/b\"\n"),
                        "agent.toml:2:16: kafka.topic_prefix: expected 1 to 100 characters of "
                        "A-Z a-z 0-9 . _ -, got \"a/b\"");
    assert_string_equal(file_err("[policy]\nbind_allow = [\"/srv\", \"\"]\n"),
                        "agent.toml:2:14: policy.bind_allow: item 2: expected a non-empty string, "
                        "got \"\"");
    assert_string_equal(flag_err("reconcile.concurrency=lots"),
                        "--set reconcile.concurrency: expected an integer, got \"lots\"");
    assert_string_equal(flag_err("docker.request_timeout=2h"),
                        "--set docker.request_timeout: expected a duration from 100ms to 1h, got "
                        "\"2h\"");
}

static void test_malformed(void **state)
{
    assert_string_equal(file_err("[agent]\nlog_level = yes\n"),
                        "agent.toml:2:13: expected a value (string, integer, boolean or array), "
                        "got \"yes\"");
    assert_string_equal(file_err("[agent]\ntoken = \"a\"\ntoken = \"b\"\n"),
                        "agent.toml:3:1: duplicate key \"token\" in table \"agent\" (first at "
                        "line 2)");
    assert_string_equal(file_err("[agent]\n[agent]\n"),
                        "agent.toml:2:2: table \"agent\" is defined twice (first at line 1)");
    assert_string_equal(file_err("[agent.x]\n"),
                        "agent.toml:1:7: dotted table names are not supported: the config has one "
                        "level of tables, like [agent]");
    /* The same limit as a file on disk. */
    size_t n = CONFIG_MAX_FILE_SIZE + 1;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, '\n', n);
    big[n] = '\0';
    assert_string_equal(file_err(big), "agent.toml: larger than 1048576 bytes");
    free(big);
}

static void test_durations(void **state)
{
    static const struct {
        const char *s;
        uint64_t ms;
    } ok[] = {{"5s", 5000},           {"250ms", 250},   {"2m", 120000},
              {"1h", 3600000},        {"1m30s", 90000}, {"0s", 0},
              {"1h2m3s4ms", 3723004}, {"90s", 90000},   {"1s500ms", 1500}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t ms = 1;
        assert_int_equal(config_parse_duration(ok[i].s, &ms), 0);
        assert_int_equal(ms, ok[i].ms);
    }
    static const char *const bad[] = {"",     "5",  "s",  "1.5s",   "-1s", "5 s",
                                      "5sec", "1d", "ms", "1m 30s", " 5s", "5S"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t ms = 7;
        assert_int_equal(config_parse_duration(bad[i], &ms), -EINVAL);
        assert_int_equal(ms, 7);
    }
    uint64_t ms;
    assert_int_equal(config_parse_duration("99999999999999999999h", &ms), -ERANGE);
    assert_int_equal(config_parse_duration("9999999999999999h", &ms), -ERANGE);

    char out[32];
    static const struct {
        uint64_t ms;
        const char *s;
    } fmt[] = {{0, "0s"},       {250, "250ms"},         {5000, "5s"},     {90000, "1m30s"},
               {3600000, "1h"}, {3723004, "1h2m3s4ms"}, {1500, "1s500ms"}};
    for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
        config_format_duration(fmt[i].ms, out, sizeof(out));
        assert_string_equal(out, fmt[i].s);
        assert_int_equal(config_parse_duration(out, &ms), 0);
        assert_int_equal(ms, fmt[i].ms);
    }
}

static char *print_to_string(const struct config *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    config_print(c, f);
    fclose(f);
    return text;
}

static void test_print(void **state)
{
    struct config c;
    char *env[] = {"AXION_AGENT__AGENT__TOKEN=very-secret-token", NULL};
    const char *flags[] = {"kafka.brokers=a:9092,b:9092"};
    load_ok("# comment\n[agent]\n"
            "log_level = \"debug\"\n"
            "state_dir = \"/srv/a \\\"b\\\"\"\n"
            "[control_plane]\nheartbeat_interval = \"90s\"\n"
            "key_file = \"/etc/axion/key.pem\"\n",
            env, flags, 1, &c);
    char *text = print_to_string(&c);
    assert_null(strstr(text, "very-secret-token"));
    assert_non_null(strstr(text, "# effective config of axion-agent; file: agent.toml\n"));
    assert_non_null(strstr(text, "\n[agent]\ntoken = \"****\" # env AXION_AGENT__AGENT__TOKEN\n"));
    char line[512];
    snprintf(line, sizeof(line), "\nid = \"%s\" # default (hostname)\n", hostname());
    assert_non_null(strstr(text, line));
    assert_non_null(strstr(text, "\nstate_dir = \"/srv/a \\\"b\\\"\" # file agent.toml:4\n"));
    assert_non_null(strstr(text, "\nlog_level = \"debug\" # file agent.toml:3\n"));
    assert_non_null(strstr(text, "\nheartbeat_interval = \"1m30s\" # file agent.toml:6\n"));
    assert_non_null(strstr(text, "\nkey_file = \"/etc/axion/key.pem\" # file agent.toml:7\n"));
    assert_non_null(
        strstr(text, "\nbrokers = [\"a:9092\", \"b:9092\"] # flag --set kafka.brokers\n"));
    assert_non_null(strstr(text, "\n[reconcile]\nresync_interval = \"1m\" # default\n"
                                 "concurrency = 4 # default\nprune = true # default\n"));
    assert_non_null(strstr(text, "\nbind_allow = [] # default\n"));
    assert_non_null(strstr(text, "\ngrpc_url = \"\" # default\n"));

    /* What config check prints is itself a valid config with the same values. */
    struct config again;
    load_ok(text, NULL, NULL, 0, &again);
    assert_string_equal(again.agent.token, "****");
    assert_string_equal(again.agent.state_dir, c.agent.state_dir);
    assert_int_equal(again.control_plane.heartbeat_interval_ms, 90000);
    assert_int_equal(again.kafka.brokers.n, 2);
    config_free(&again);
    free(text);
    config_free(&c);

    /* An unset token prints empty, not masked. */
    load_ok(NULL, NULL, NULL, 0, &c);
    text = print_to_string(&c);
    assert_non_null(strstr(text, "# effective config of axion-agent; file: agent.toml\n"));
    assert_non_null(strstr(text, "\ntoken = \"\" # default\n"));
    free(text);
    config_free(&c);
}

static void test_files_on_disk(void **state)
{
    char *dir = tu_mkdtemp();
    char path[512];
    struct config c;
    char *env[] = {NULL};
    snprintf(path, sizeof(path), "%s/missing.toml", dir);

    /* An explicit file must exist. */
    struct config_source src = {.path = path, .path_required = true, .env = env};
    assert_int_equal(config_load(&src, &c, err, sizeof(err)), -EINVAL);
    char want[700];
    snprintf(want, sizeof(want), "cannot read config file %s: No such file or directory", path);
    assert_string_equal(err, want);

    /* An optional one may be missing. */
    src.path_required = false;
    assert_int_equal(config_load(&src, &c, err, sizeof(err)), 0);
    assert_string_equal(c.path, "");
    config_free(&c);

    /* A directory is not a config file. */
    src.path = dir;
    assert_int_equal(config_load(&src, &c, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want), "cannot read config file %s: is a directory, not a regular file",
             dir);
    assert_string_equal(err, want);

    snprintf(path, sizeof(path), "%s/agent.toml", dir);
    assert_int_equal(tu_write_file(path, "[reconcile]\nconcurrency = 9\n"), 0);
    src.path = path;
    src.path_required = true;
    assert_int_equal(config_load(&src, &c, err, sizeof(err)), 0);
    assert_string_equal(c.path, path);
    assert_int_equal(c.reconcile.concurrency, 9);
    assert_int_equal(c.origin[CONFIG_RECONCILE_CONCURRENCY].line, 2);
    config_free(&c);

    assert_int_equal(tu_write_file(path, "[reconcile]\nconcurrency = nine\n"), 0);
    assert_int_equal(config_load(&src, &c, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want),
             "%s:2:15: expected a value (string, integer, boolean or array), got \"nine\"", path);
    assert_string_equal(err, want);
    tu_rm_rf(dir);
    free(dir);
}

/* No error may show a secret's value, whatever shape the mistake has (issue 13.3). Each case
 * carries the secret "S3CR" somewhere; no message may contain it. */
static void test_secrets_never_echoed(void **state)
{
    static const char *const files[] = {
        "[agent]\ntoken = 123456789S3CR\n",
        "[agent]\ntoken = S3CR\n",
        "[agent]\ntoken = 12345S3CRabcdef\n",
        "[agent]\ntoken = 9876543210\n", /* an integer: S3CR stands for its digits below */
        "[agent]\ntoken = \"abc\" S3CR\n",
        "[agent]\ntoken = \"abc\\qS3CR\"\n",
        "[agent]\ntoken = \"\"\"S3CR\n",
        "[agent]\ntoken = 'S3CR\n",
        "[agent]\ntoken = [\"S3CR\", 1]\n",
        "[agent]\ntoken = true\n",
        "[agent]\ntoken = 1.5e3S3CR\n",
        "[agent]\ntoken = 2024-01-01S3CR\n",
        "[agent]\ntokne = S3CR\n",            /* a typo of the key */
        "[agent]\napi_password = S3CR\n",     /* unknown, named like a secret */
        "[kafka]\nsasl_secret = \"a\"S3CR\n", /* unknown, named like a secret */
        "token = S3CR\n",                     /* in the wrong place */
        "[agent]\ntoken = \"\xffS3CR\"\n",    /* invalid UTF-8 in it */
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        const char *e = file_err(files[i]);
        if (strstr(e, "S3CR") || strstr(e, "9876543210") || strstr(e, "true"))
            fail_msg("case %zu shows the secret: %s", i, e);
        if (!strstr(e, "agent.toml:"))
            fail_msg("case %zu does not say where: %s", i, e);
    }
    /* The place is still named. */
    assert_string_equal(file_err("[agent]\ntoken = S3CR\n"),
                        "agent.toml:2:9: the value of agent.token is not valid TOML (not shown: "
                        "the key holds a secret); write it as a quoted string");
    assert_non_null(strstr(file_err("[agent]\ntoken = 9876543210\n"),
                           "expected a string, got an integer (not shown"));
    /* Flags and the environment. */
    const char *flags[] = {"agent.token:S3CR"};
    const char *e = load_err(NULL, NULL, flags, 1);
    assert_null(strstr(e, "S3CR"));
    assert_non_null(strstr(e, "expected SECTION.KEY=VALUE"));
}

static void test_key_names(void **state)
{
    char name[64];
    assert_string_equal(config_key_name(CONFIG_AGENT_TOKEN), "agent.token");
    assert_string_equal(config_key_name(CONFIG_POLICY_BIND_ALLOW), "policy.bind_allow");
    assert_int_equal(config_key_lookup("control_plane.heartbeat_interval"),
                     CONFIG_CONTROL_PLANE_HEARTBEAT_INTERVAL);
    assert_int_equal(config_key_lookup("agent.nope"), -ENOENT);
    config_key_env_name(CONFIG_CONTROL_PLANE_GRPC_URL, name, sizeof(name));
    assert_string_equal(name, "AXION_AGENT__CONTROL_PLANE__GRPC_URL");
    assert_string_equal(config_origin_to_string(CONFIG_ORIGIN_ENV), "env");
    /* Every key has a name that maps back to it. */
    for (int k = 0; k < CONFIG_KEY_COUNT; k++)
        assert_int_equal(config_key_lookup(config_key_name((enum config_key)k)), k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),    cmocka_unit_test(test_file_values),
        cmocka_unit_test(test_layering),    cmocka_unit_test(test_env_values),
        cmocka_unit_test(test_env_errors),  cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types), cmocka_unit_test(test_validation),
        cmocka_unit_test(test_malformed),   cmocka_unit_test(test_durations),
        cmocka_unit_test(test_print),       cmocka_unit_test(test_files_on_disk),
        cmocka_unit_test(test_key_names),   cmocka_unit_test(test_secrets_never_echoed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

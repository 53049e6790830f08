/* agent/setup: the file modes the agent insists on (issue 14): private keys kept to their
 * owner, a config that holds the token not readable by others, never writable by others. */
#include "support/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/setup.h"

static char *dir;

static int setup_dir(void **state)
{
    dir = tu_mkdtemp();
    return 0;
}

static int teardown_dir(void **state)
{
    tu_rm_rf(dir);
    free(dir);
    return 0;
}

static void write_mode(const char *path, const char *content, mode_t mode)
{
    assert_int_equal(tu_write_file(path, content), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_key_modes(void **state)
{
    char path[512], err[1024];
    snprintf(path, sizeof(path), "%s/agent.key", dir);
    static const struct {
        mode_t mode;
        int want;
        const char *says;
    } cases[] = {
        {0600, 0, NULL},
        {0400, 0, NULL},
        {0640, -EPERM, "mode 0640 lets its group read the private key"},
        {0644, -EPERM, "mode 0644 lets group and others read the private key"},
        {0604, -EPERM, "mode 0604 lets others read"},
        {0620, -EPERM, "mode 0620 lets its group write"},
        {0602, -EPERM, "mode 0602 lets others write"},
        {0610, -EPERM, "mode 0610"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_mode(path, "-----BEGIN PRIVATE KEY-----\n", cases[i].mode);
        *err = '\0';
        int r = setup_key_mode_ok(path, -1, "kafka.key_file", err, sizeof(err));
        assert_int_equal(r, cases[i].want);
        if (cases[i].says) {
            /* the message names the file, what it is, the mode and the fix */
            assert_non_null(strstr(err, path));
            assert_non_null(strstr(err, "(kafka.key_file)"));
            assert_non_null(strstr(err, cases[i].says));
            assert_non_null(strstr(err, "chmod 0600"));
        }
        /* the same through an open file */
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(setup_key_mode_ok(path, fd, "kafka.key_file", err, sizeof(err)),
                         cases[i].want);
        close(fd);
    }
    snprintf(path, sizeof(path), "%s/missing.key", dir);
    assert_int_equal(setup_key_mode_ok(path, -1, "x", err, sizeof(err)), -ENOENT);
    assert_int_equal(setup_key_mode_ok(dir, -1, "x", err, sizeof(err)), -EINVAL);
}

static void test_config_modes(void **state)
{
    char err[1024];
    assert_int_equal(setup_config_mode_ok("/etc/axion/agent.toml", 0100640, true, err, sizeof(err)),
                     0);
    assert_int_equal(setup_config_mode_ok("/etc/axion/agent.toml", 0100600, true, err, sizeof(err)),
                     0);
    /* readable by all is fine without a token ... */
    assert_int_equal(
        setup_config_mode_ok("/etc/axion/agent.toml", 0100644, false, err, sizeof(err)), 0);
    /* ... not with one */
    assert_int_equal(setup_config_mode_ok("/etc/axion/agent.toml", 0100644, true, err, sizeof(err)),
                     -EPERM);
    assert_non_null(strstr(err, "/etc/axion/agent.toml: mode 0644 lets anyone read agent.token"));
    assert_non_null(strstr(err, "chmod 0640"));
    /* writable by all: never */
    assert_int_equal(
        setup_config_mode_ok("/etc/axion/agent.toml", 0100666, false, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "mode 0666 lets anyone change the agent's config"));
}

static int load(const char *path, char **env, struct config *ret)
{
    const char *flags[] = {"agent.state_dir=/tmp/axion-test-unused"};
    struct config_source src = {
        .path = path, .path_required = true, .env = env, .flags = flags, .n_flags = 1};
    return setup_load_config(&src, "error", ret);
}

static void test_load_refuses_open_config(void **state)
{
    char path[512];
    struct config cfg;
    char *no_env[] = {NULL};
    snprintf(path, sizeof(path), "%s/agent.toml", dir);

    write_mode(path, "[agent]\ntoken = \"s3cret\"\n", 0644);
    assert_int_equal(load(path, no_env, &cfg), -EPERM);

    write_mode(path, "[agent]\ntoken = \"s3cret\"\n", 0640);
    assert_int_equal(load(path, no_env, &cfg), 0);
    assert_string_equal(cfg.agent.token, "s3cret");
    config_free(&cfg);

    /* no token in the file (it comes from the environment): readable is fine */
    char *env[] = {"AXION_AGENT__AGENT__TOKEN=s3cret", NULL};
    write_mode(path, "[agent]\nlog_level = \"info\"\n", 0644);
    assert_int_equal(load(path, env, &cfg), 0);
    config_free(&cfg);

    write_mode(path, "[agent]\nlog_level = \"info\"\n", 0646);
    assert_int_equal(load(path, no_env, &cfg), -EPERM);
}

static void test_check_secrets_state_dir(void **state)
{
    char path[512], cfgpath[512];
    struct config cfg;
    char *no_env[] = {NULL};
    snprintf(cfgpath, sizeof(cfgpath), "%s/agent.toml", dir);
    write_mode(cfgpath, "", 0644);
    assert_int_equal(load(cfgpath, no_env, &cfg), 0);
    free(cfg.agent.state_dir);
    assert_non_null(cfg.agent.state_dir = strdup(dir));

    /* what is not a key is not checked */
    snprintf(path, sizeof(path), "%s/store.db", dir);
    write_mode(path, "", 0644);
    snprintf(path, sizeof(path), "%s/ca.pem", dir);
    write_mode(path, "", 0644);
    assert_int_equal(setup_check_secrets(&cfg), 0);

    /* the gRPC identity's key (agent-key-<ms>.pem) and any *.key */
    snprintf(path, sizeof(path), "%s/agent-key-1.pem", dir);
    write_mode(path, "k", 0600);
    snprintf(path, sizeof(path), "%s/secrets.key", dir);
    write_mode(path, "k", 0600);
    assert_int_equal(setup_check_secrets(&cfg), 0);
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(setup_check_secrets(&cfg), -EPERM);
    assert_int_equal(chmod(path, 0600), 0);
    snprintf(path, sizeof(path), "%s/agent-key-1.pem", dir);
    assert_int_equal(chmod(path, 0604), 0);
    assert_int_equal(setup_check_secrets(&cfg), -EPERM);
    assert_int_equal(chmod(path, 0600), 0);

    /* the key files the config names, wherever they are; a missing one is the channel's to say */
    snprintf(path, sizeof(path), "%s/elsewhere", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/elsewhere/client.pem", dir);
    write_mode(path, "k", 0644);
    free(cfg.kafka.key_file);
    assert_non_null(cfg.kafka.key_file = strdup(path));
    assert_int_equal(setup_check_secrets(&cfg), -EPERM);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(setup_check_secrets(&cfg), 0);
    free(cfg.control_plane.key_file);
    assert_non_null(cfg.control_plane.key_file = strdup("/nonexistent/axion/agent.key"));
    assert_int_equal(setup_check_secrets(&cfg), 0);
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_key_modes, setup_dir, teardown_dir),
        cmocka_unit_test(test_config_modes),
        cmocka_unit_test_setup_teardown(test_load_refuses_open_config, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_check_secrets_state_dir, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

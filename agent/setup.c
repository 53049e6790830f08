#include "agent/setup.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/log.h"
#include "sources/intake.h"
#include "store/store.h"

int setup_load_config(const struct config_source *src, const char *log_level, struct config *ret)
{
    char err[1024] = "";
    int r = config_load(src, ret, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "axion-agent: %s\n", *err ? err : strerror(-r));
        return r;
    }
    int l = log_level_from_string(log_level ? log_level : ret->agent.log_level);
    if (l >= 0)
        log_set_level((enum log_level)l);
    return 0;
}

int setup_open_store(const struct config *cfg, unsigned flags, struct store **ret)
{
    char path[4096], err[1024] = "";
    if (snprintf(path, sizeof(path), "%s/store.db", cfg->agent.state_dir) >= (int)sizeof(path)) {
        fprintf(stderr, "axion-agent: agent.state_dir is too long\n");
        return -ENAMETOOLONG;
    }
    if (!(flags & STORE_OPEN_EXISTING) && mkdir(cfg->agent.state_dir, 0750) < 0 &&
        errno != EEXIST) {
        int r = -errno;
        fprintf(stderr, "axion-agent: cannot create state directory %s: %s\n", cfg->agent.state_dir,
                strerror(errno));
        return r;
    }
    int r = store_open(path, flags, ret, err, sizeof(err));
    if (r == -ENOENT && (flags & STORE_OPEN_EXISTING)) {
        fprintf(stderr, "axion-agent: no store at %s yet (nothing was applied)\n", path);
        return r;
    }
    if (r < 0)
        fprintf(stderr, "axion-agent: %s\n", *err ? err : strerror(-r));
    return r;
}

static struct policy_list policy_list(const struct config_strv *l)
{
    return (struct policy_list){l->v, l->n};
}

void setup_policy(const struct config *cfg, struct policy_rules *ret)
{
    int level = policy_level_from_string(cfg->policy.level);
    uint32_t exceptions = 0;
    for (size_t i = 0; i < cfg->policy.exceptions.n; i++) {
        int rule = policy_rule_from_string(cfg->policy.exceptions.v[i]);
        if (rule >= 0) /* the config refuses other names */
            exceptions |= POLICY_EXCEPT(rule);
    }
    *ret = (struct policy_rules){
        .level = level >= 0 ? (enum policy_level)level : POLICY_BASELINE,
        .exceptions = exceptions,
        .allow_privileged = cfg->policy.allow_privileged,
        .allow_host_namespaces = cfg->policy.allow_host_namespaces,
        .allow_cap_add = cfg->policy.allow_cap_add,
        .allow_devices = cfg->policy.allow_devices,
        .bind_allow = cfg->policy.bind_allow.v,
        .n_bind_allow = cfg->policy.bind_allow.n,
        .cap_add = policy_list(&cfg->policy.cap_add),
        .volume_drivers = policy_list(&cfg->policy.volume_drivers),
        .network_drivers = policy_list(&cfg->policy.network_drivers),
        .log_drivers = policy_list(&cfg->policy.log_drivers),
        .secret_drivers = policy_list(&cfg->policy.secret_drivers),
        .sysctls = policy_list(&cfg->policy.sysctls),
        .engine_socket = cfg->docker.socket,
    };
}

int setup_intake(const struct config *cfg, struct store *st, struct intake **ret)
{
    struct policy_rules policy;
    setup_policy(cfg, &policy);
    struct intake_opts o = {.agent_id = cfg->agent.id, .policy = &policy};
    int r = intake_new(st, &o, ret);
    if (r < 0)
        fprintf(stderr, "axion-agent: cannot set up the intake: %s\n", strerror(-r));
    return r;
}

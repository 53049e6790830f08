#include "agent/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int set_str(char **dst, const char *v)
{
    char *n = strdup(v);
    if (!n)
        return -ENOMEM;
    free(*dst);
    *dst = n;
    return 0;
}

int config_init(struct config *c)
{
    memset(c, 0, sizeof(*c));
    int r = 0;
    r |= set_str(&c->agent.state_dir, "/var/lib/axion");
    r |= set_str(&c->agent.log_level, "info");
    r |= set_str(&c->docker.socket, "/var/run/docker.sock");
    r |= set_str(&c->local.socket, "/run/axion/agent.sock");
    r |= set_str(&c->kafka.topic_prefix, "runner");
    r |= set_str(&c->kafka.security, "ssl");
    r |= set_str(&c->telemetry.cgroup_root, "/sys/fs/cgroup");
    r |= set_str(&c->telemetry.proc_root, "/proc");
    r |= set_str(&c->path, "");
    c->control_plane.heartbeat_interval_ms = 5000;
    c->docker.request_timeout_ms = 30000;
    c->reconcile.resync_interval_ms = 60000;
    c->reconcile.concurrency = 4;
    c->reconcile.prune = true;
    c->telemetry.interval_ms = 10000;
    c->local.enabled = false;
    if (r) {
        config_free(c);
        return -ENOMEM;
    }
    return 0;
}

static void strv_free(struct config_strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

void config_free(struct config *c)
{
    free(c->agent.token);
    free(c->agent.id);
    free(c->agent.state_dir);
    free(c->agent.log_level);
    free(c->control_plane.grpc_url);
    free(c->control_plane.ca_file);
    free(c->control_plane.cert_file);
    free(c->control_plane.key_file);
    strv_free(&c->kafka.brokers);
    free(c->kafka.topic_prefix);
    free(c->kafka.security);
    free(c->kafka.ca_file);
    free(c->kafka.cert_file);
    free(c->kafka.key_file);
    free(c->docker.socket);
    free(c->telemetry.cgroup_root);
    free(c->telemetry.proc_root);
    free(c->local.socket);
    strv_free(&c->policy.bind_allow);
    free(c->path);
    memset(c, 0, sizeof(*c));
}

int config_load(const struct config_source *src, struct config *ret, char *err, size_t errlen)
{
    /* Placeholder until the TOML reader lands: defaults only. */
    (void)src;
    if (errlen)
        err[0] = '\0';
    return config_init(ret);
}

void config_print(const struct config *c, FILE *out)
{
    fprintf(out, "agent.state_dir = \"%s\"\nlocal.enabled = %s\n", c->agent.state_dir,
            c->local.enabled ? "true" : "false");
}

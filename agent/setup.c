#include "agent/setup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "lib/log.h"
#include "sources/intake.h"
#include "lib/util.h"
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
    if (ret->path && *ret->path) {
        struct stat st;
        bool token = ret->agent.token && *ret->agent.token &&
                     ret->origin[CONFIG_AGENT_TOKEN].origin == CONFIG_ORIGIN_FILE;
        if (stat(ret->path, &st) == 0 &&
            setup_config_mode_ok(ret->path, st.st_mode, token, err, sizeof(err)) < 0) {
            fprintf(stderr, "axion-agent: %s\n", err);
            config_free(ret);
            return -EPERM;
        }
    }
    return 0;
}

int setup_config_mode_ok(const char *path, unsigned mode, bool holds_token, char *err,
                         size_t errlen)
{
    if (mode & S_IWOTH) {
        snprintf(err, errlen,
                 "%s: mode %04o lets anyone change the agent's config; refusing it "
                 "(chmod 0640 %s, owner root, group axion)",
                 path, mode & 07777, path);
        return -EPERM;
    }
    if (holds_token && (mode & S_IROTH)) {
        snprintf(err, errlen,
                 "%s: mode %04o lets anyone read agent.token, which it holds; refusing it "
                 "(chmod 0640 %s, owner root, group axion; or give the token in "
                 "AXION_AGENT__AGENT__TOKEN)",
                 path, mode & 07777, path);
        return -EPERM;
    }
    return 0;
}

int setup_key_mode_ok(const char *path, int fd, const char *what, char *err, size_t errlen)
{
    struct stat st;
    if ((fd >= 0 ? fstat(fd, &st) : stat(path, &st)) < 0) {
        int r = -errno;
        snprintf(err, errlen, "%s (%s): cannot check the file's mode: %s", path, what,
                 strerror(errno));
        return r;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s (%s): not a regular file", path, what);
        return -EINVAL;
    }
    if (st.st_mode & 0077) {
        snprintf(err, errlen,
                 "%s (%s): mode %04o lets %s %s the private key; refusing it "
                 "(chmod 0600 %s)",
                 path, what, (unsigned)st.st_mode & 07777,
                 (st.st_mode & 0070) && (st.st_mode & 0007) ? "group and others"
                 : (st.st_mode & 0070)                      ? "its group"
                                                            : "others",
                 (st.st_mode & 0044) ? "read" : "write", path);
        return -EPERM;
    }
    return 0;
}

static bool is_key_name(const char *name)
{
    size_t n = strlen(name);
    if (n > 4 && streq(name + n - 4, ".key"))
        return true;
    return n > 4 && streq(name + n - 4, ".pem") && strstr(name, "key");
}

int setup_check_secrets(const struct config *cfg)
{
    char err[1024];
    const struct {
        const char *path, *what;
    } configured[] = {
        {cfg->control_plane.key_file, "control_plane.key_file"},
        {cfg->kafka.key_file, "kafka.key_file"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(configured); i++) {
        if (!configured[i].path || !*configured[i].path)
            continue;
        int r = setup_key_mode_ok(configured[i].path, -1, configured[i].what, err, sizeof(err));
        if (r == -ENOENT)
            continue; /* the channel that reads it says so */
        if (r < 0) {
            fprintf(stderr, "axion-agent: %s\n", err);
            return r;
        }
    }
    int dfd = open(cfg->agent.state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return 0; /* none yet: setup_open_store makes it; unreadable: it says so */
    DIR *dir = fdopendir(dfd);
    if (!dir) {
        close(dfd);
        return 0;
    }
    int r = 0;
    struct dirent *de;
    while (r == 0 && (de = readdir(dir))) {
        if (!is_key_name(de->d_name))
            continue;
        char path[4096];
        if (snprintf(path, sizeof(path), "%s/%s", cfg->agent.state_dir, de->d_name) >=
            (int)sizeof(path))
            continue;
        _cleanup_close_ int fd = openat(dfd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue; /* not ours to read (or gone): the reader says so */
        r = setup_key_mode_ok(path, fd, "a private key in agent.state_dir", err, sizeof(err));
        if (r == -EINVAL)
            r = 0; /* not a regular file: not a key */
        if (r < 0)
            fprintf(stderr, "axion-agent: %s\n", err);
    }
    closedir(dir);
    return r;
}

/* Why a store that is there may not open for us, as a hint after the error. */
static void explain_unopenable(const char *path, const char *dir)
{
    struct stat st;
    struct statvfs vfs;
    if (statvfs(dir, &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
        fprintf(stderr, "axion-agent: %s is on a read-only filesystem\n", dir);
    if (lstat(path, &st) == 0 && st.st_uid != geteuid()) {
        struct passwd *pw = getpwuid(st.st_uid);
        if (pw)
            fprintf(stderr,
                    "axion-agent: the store belongs to %s (uid %u), mode %04o: run this command "
                    "as %s (sudo -u %s axion-agent ...)\n",
                    pw->pw_name, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), pw->pw_name,
                    pw->pw_name);
        else
            fprintf(stderr,
                    "axion-agent: the store belongs to uid %u, mode %04o: run this command as "
                    "that user\n",
                    (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
    }
    fprintf(stderr, "axion-agent: nothing was lost: the store and its data are still at %s\n",
            path);
}

int setup_open_store(const struct config *cfg, unsigned flags, struct store **ret)
{
    char path[4096], err[1024] = "";
    if (snprintf(path, sizeof(path), "%s/store.db", cfg->agent.state_dir) >= (int)sizeof(path)) {
        fprintf(stderr, "axion-agent: agent.state_dir is too long\n");
        return -ENAMETOOLONG;
    }
    if (!(flags & STORE_OPEN_EXISTING) && mkdir(cfg->agent.state_dir, 0700) < 0 &&
        errno != EEXIST) {
        int r = -errno;
        fprintf(stderr, "axion-agent: cannot create state directory %s: %s\n", cfg->agent.state_dir,
                strerror(errno));
        if (r == -EROFS || r == -EACCES || r == -EPERM)
            fprintf(stderr, "axion-agent: nothing was written\n");
        return r;
    }
    int r = store_open(path, flags, ret, err, sizeof(err));
    if (r >= 0)
        return 0;
    /* "Not there" only when it is not there: a store we may not open is another story. */
    struct stat st;
    bool absent = lstat(path, &st) < 0 && errno == ENOENT;
    if (absent && (flags & STORE_OPEN_EXISTING)) {
        fprintf(stderr, "axion-agent: no store at %s yet (nothing was applied)\n", path);
        return r;
    }
    fprintf(stderr, "axion-agent: cannot open the store: %s\n", *err ? err : strerror(-r));
    if (!absent && r != -EBADMSG && r != -EPROTONOSUPPORT && r != -EMEDIUMTYPE)
        explain_unopenable(path, cfg->agent.state_dir);
    return r == -ENOENT && !absent ? -EACCES : r;
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

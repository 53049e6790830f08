#include "agent/daemon.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/collector.h"
#include "agent/sdnotify.h"
#include "agent/setup.h"
#include "agent/telemetry.h"
#include "drivers/docker/docker.h"
#include "lib/log.h"
#include "lib/util.h"
#include "reconciler/reconciler.h"
#include "sources/grpc_source.h"
#include "sources/intake.h"
#include "sources/kafka.h"
#include "sources/local.h"
#include "sources/source.h"
#include "sources/tracker.h"
#include "store/store.h"

struct daemon {
    struct ev_loop *loop;
    struct config *cfg;
    const struct config_source *src; /* what SIGHUP reloads: file and flags as at start */
    const char *log_level;           /* --log-level, or NULL */
    struct store *store;
    struct intake *intake; /* the one door into desired state, for the in-process sources */
    struct docker *docker;
    struct reconciler *reconciler;
    struct collector *collector;
    struct local_listener *local;
    struct grpc_source *grpc; /* the Control Plane's channel, when configured */
    bool reexec;              /* after stopping, execute the agent again (a new agent id) */
    struct kafka *kafka;      /* NULL: local mode, no brokers, or it could not start */
    struct policy_rules policy;
    int lock_fd; /* <state_dir>/agent.lock, flock'ed while the daemon runs */
    ev_signal sigterm, sigint, sighup;
    ev_timer watchdog;
    bool stopping;

    /* What the in-process channels (gRPC, Kafka) are lent: sources/source.h. */
    struct source_ctx sources;
    struct pass_observer {
        source_pass_fn fn;
        void *userdata;
    } observers[8];
    size_t n_observers;
    struct tracker *tracker; /* accepted commands until their final result */
    ev_timer tracker_timer;  /* the earliest deadline of a tracked command */
    int64_t started_at;
    struct {
        int64_t at;
        int result;
        char error[512];
        bool swarm_known, swarm_active, is_manager;
        char node_id[128];
    } last_pass;
};

static void stop_now(void *userdata)
{
    struct daemon *d = userdata;
    ev_break(d->loop, EVBREAK_ALL);
}

static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct daemon *d = w->data;
    if (d->stopping) {
        log_warnx("received %s again, stopping now", strsignal(w->signum));
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    d->stopping = true;
    log_info("received %s, stopping after the step in flight", strsignal(w->signum));
    sdnotify_send("STOPPING=1");
    d->local = local_listener_free(d->local);
    grpc_source_stop(d->grpc);
    kafka_stop_consuming(d->kafka);
    reconciler_when_idle(d->reconciler, stop_now, d);
}

static void on_reload(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct daemon *d = w->data;
    extern char **environ;
    struct config next;
    char err[1024], state[64];
    struct config_source src = *d->src;
    src.env = environ;
    if (d->stopping) {
        log_warnx("received %s while stopping, not reloading", strsignal(w->signum));
        return;
    }
    /* systemd wants the CLOCK_MONOTONIC time of the reload's start with RELOADING=1. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)now.tv_sec * 1000000ull + (unsigned long long)now.tv_nsec / 1000);
    sdnotify_send(state);
    if (config_load(&src, &next, err, sizeof(err)) < 0) {
        log_error("reload failed, keeping the running config: %s", err);
    } else {
        /* --log-level is for the whole run; the flags and environment apply as at start. */
        int lvl = log_level_from_string(d->log_level ? d->log_level : next.agent.log_level);
        if (lvl >= 0)
            log_set_level((enum log_level)lvl);
        log_info("config reloaded (log level; other changes take effect at restart)");
        config_free(&next);
    }
    sdnotify_send("READY=1");
    reconciler_trigger(d->reconciler, "SIGHUP");
}

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
    sdnotify_send("WATCHDOG=1");
}

static void on_local(const char *msg, void *userdata)
{
    struct daemon *d = userdata;
    reconciler_trigger(d->reconciler, "desired state changed (local)");
}

/* --- the loop's reports: command results and what the channels say of the node ------------ */

static void tracker_rearm(struct daemon *d)
{
    int64_t next = tracker_expire(d->tracker, source_now_ms());
    ev_timer_stop(d->loop, &d->tracker_timer);
    if (!next)
        return;
    double in = (double)(next - source_now_ms()) / 1000.0;
    ev_timer_set(&d->tracker_timer, in > 0.01 ? in : 0.01, 0.);
    ev_timer_start(d->loop, &d->tracker_timer);
}

static void on_tracker_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    tracker_rearm(w->data);
}

static void on_pass(const struct reconciler_pass_report *rep, void *userdata)
{
    struct daemon *d = userdata;
    d->last_pass.at = rep->finished_at;
    d->last_pass.result = rep->result;
    snprintf(d->last_pass.error, sizeof(d->last_pass.error), "%s", rep->error ? rep->error : "");
    if (rep->swarm_known) {
        d->last_pass.swarm_known = true;
        d->last_pass.swarm_active = rep->swarm_active;
        d->last_pass.is_manager = rep->is_manager;
        snprintf(d->last_pass.node_id, sizeof(d->last_pass.node_id), "%s",
                 rep->node_id ? rep->node_id : "");
    }
    if (rep->n_stacks) {
        struct tracker_stack_state *st = calloc(rep->n_stacks, sizeof(*st));
        if (!st) {
            log_warnx("out of memory: command results wait for the next pass");
            return;
        }
        for (size_t i = 0; i < rep->n_stacks; i++)
            st[i] = (struct tracker_stack_state){rep->stacks[i].stack, rep->stacks[i].generation,
                                                 rep->stacks[i].state, rep->stacks[i].reason};
        tracker_on_pass(d->tracker, rep->started_at, st, rep->n_stacks);
        free(st);
    } else if (!rep->result) {
        /* Nothing changed: a reconcile-now is still answered. */
        tracker_on_pass(d->tracker, rep->started_at, NULL, 0);
    }
    tracker_on_membership(d->tracker, rep->started_at, rep->membership, rep->membership_error,
                          rep->membership_revision);
    tracker_rearm(d);
    for (size_t i = 0; i < d->n_observers; i++)
        d->observers[i].fn(rep, d->observers[i].userdata);
}

static int source_observe(void *userdata, source_pass_fn fn, void *fn_userdata)
{
    struct daemon *d = userdata;
    for (size_t i = 0; i < d->n_observers; i++)
        if (d->observers[i].userdata == fn_userdata) {
            if (fn) {
                d->observers[i].fn = fn;
            } else {
                d->observers[i] = d->observers[--d->n_observers];
            }
            return 0;
        }
    if (!fn)
        return 0;
    if (d->n_observers == sizeof(d->observers) / sizeof(d->observers[0]))
        return -ENOSPC;
    d->observers[d->n_observers++] = (struct pass_observer){fn, fn_userdata};
    return 0;
}

static void source_wake(void *userdata, const char *why)
{
    struct daemon *d = userdata;
    tracker_rearm(d);
    reconciler_trigger_now(d->reconciler, why);
}

static void source_node_state(void *userdata, struct source_node_state *ret)
{
    struct daemon *d = userdata;
    *ret = (struct source_node_state){
        .started_at = d->started_at,
        .last_pass_at = d->last_pass.at,
        .last_pass_result = d->last_pass.result,
        .last_pass_error = d->last_pass.error,
        .swarm_state = !d->last_pass.swarm_known   ? ""
                       : d->last_pass.swarm_active ? "active"
                                                   : "inactive",
        .swarm_role = !d->last_pass.swarm_active ? ""
                      : d->last_pass.is_manager  ? "manager"
                                                 : "worker",
        .node_id = d->last_pass.node_id,
    };
}

/* The names the agent gives its files in the state dir: the store and its companions, the
 * store's key, the lock. */
static bool state_file_name(const char *name)
{
    static const char *const exact[] = {DAEMON_LOCK_FILE, "store.db", "store.key"};
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
        if (strcmp(name, exact[i]) == 0)
            return true;
    return strncmp(name, "store.db-", 9) == 0 || strncmp(name, "store.db.", 9) == 0 ||
           strncmp(name, "store.key.", 10) == 0;
}

/* local.socket must not be one of the state dir's own files: binding there would take the
 * name of the store, its journal or its key. */
static int check_socket_path(const struct config *cfg)
{
    const char *sock = cfg->local.socket;
    const char *slash = strrchr(sock, '/');
    if (!slash)
        return 0;
    char dir[PATH_MAX], state[PATH_MAX], parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%.*s", (int)(slash == sock ? 1 : slash - sock), sock);
    if (!realpath(parent, dir) || !realpath(cfg->agent.state_dir, state))
        return 0; /* the bind says what is wrong with a directory that is not there */
    if (strcmp(dir, state) != 0 || !state_file_name(slash + 1))
        return 0;
    fprintf(stderr,
            "axion-agent: local.socket %s is one of the state dir's own files (%s): the daemon "
            "would take the place of its store; set local.socket elsewhere (default "
            "/run/axion/agent.sock)\n",
            sock, cfg->agent.state_dir);
    return -EINVAL;
}

/* One daemon per state dir: an exclusive lock on <state_dir>/agent.lock, held until exit, with
 * the holder's pid in it for the next one's message. */
static int lock_state_dir(const struct config *cfg, int *ret_fd)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/" DAEMON_LOCK_FILE, cfg->agent.state_dir) >=
        (int)sizeof(path)) {
        fprintf(stderr, "axion-agent: agent.state_dir is too long\n");
        return -ENAMETOOLONG;
    }
    if (mkdir(cfg->agent.state_dir, 0750) < 0 && errno != EEXIST) {
        int r = -errno;
        fprintf(stderr, "axion-agent: cannot create state directory %s: %s\n", cfg->agent.state_dir,
                strerror(-r));
        return r;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0) {
        int r = -errno;
        fprintf(stderr, "axion-agent: cannot open the lock %s: %s\n", path, strerror(-r));
        return r;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "axion-agent: the lock %s is not a regular file\n", path);
        close(fd);
        return -EINVAL;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int r = -errno;
        char pid[32] = "";
        ssize_t n = r == -EWOULDBLOCK ? pread(fd, pid, sizeof(pid) - 1, 0) : -1;
        if (n > 0)
            pid[strcspn(pid, "\n")] = '\0';
        if (r == -EWOULDBLOCK)
            fprintf(stderr,
                    "axion-agent: another axion-agent daemon%s%s%s runs with the state dir %s "
                    "(it holds %s); stop it first, or give this one another agent.state_dir\n",
                    *pid ? " (pid " : "", pid, *pid ? ")" : "", cfg->agent.state_dir, path);
        else
            fprintf(stderr, "axion-agent: cannot lock %s: %s\n", path, strerror(-r));
        close(fd);
        return r == -EWOULDBLOCK ? -EBUSY : r;
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        log_warn("%s: cannot write the pid", path);
    if (geteuid() == 0) {
        /* Made by root in a state dir the daemon's user owns: it is that user's. */
        struct stat dst;
        if (stat(cfg->agent.state_dir, &dst) == 0 && dst.st_uid != 0 &&
            fchown(fd, dst.st_uid, dst.st_gid) < 0)
            log_warn("%s: cannot give it to uid %u", path, (unsigned)dst.st_uid);
    }
    *ret_fd = fd;
    return 0;
}

/* --- Logs for the channels: not state, streamed from the Docker driver ---------------------- */

struct source_logs {
    struct docker_logs *dl;
    struct source_logs_cbs cbs;
    void *userdata;
    bool ending; /* in cbs.end: freed when it returns */
};

static void logs_on_data(enum docker_stream_kind kind, const char *data, size_t len, void *ud)
{
    struct source_logs *l = ud;
    l->cbs.data(kind == DOCKER_STREAM_STDERR ? SOURCE_LOGS_STDERR : SOURCE_LOGS_STDOUT, data, len,
                l->userdata);
}

static void logs_on_end(struct docker_result *res, void *ud)
{
    struct source_logs *l = ud;
    char why[1024] = "";
    if (res->error != DOCKER_OK)
        snprintf(why, sizeof(why), "%s: %s", res->what ? res->what : "logs",
                 res->message && *res->message ? res->message : docker_error_to_string(res->error));
    l->ending = true;
    l->cbs.end(res->error == DOCKER_OK ? NULL : why, l->userdata);
    free(l);
}

static struct source_logs *source_logs_open(void *userdata, const struct source_logs_request *rq,
                                            const struct source_logs_cbs *cbs, void *cb_userdata)
{
    struct daemon *d = userdata;
    struct source_logs *l = calloc(1, sizeof(*l));
    _cleanup_free_ char *name = NULL;
    if (!l || asprintf(&name, "%s_%s", rq->stack, rq->service) < 0) {
        free(l);
        return NULL;
    }
    l->cbs = *cbs;
    l->userdata = cb_userdata;
    struct docker_logs_opts o = {
        .follow = rq->follow,
        .timestamps = rq->timestamps,
        .tail = rq->tail,
        .since = rq->since_ms > 0 ? rq->since_ms / 1000 : 0,
    };
    l->dl =
        docker_logs_open(d->docker, DOCKER_LOGS_SERVICE, name, &o, logs_on_data, logs_on_end, l);
    if (!l->dl) {
        free(l);
        return NULL;
    }
    return l;
}

static void source_logs_hold(void *userdata, struct source_logs *l, bool hold)
{
    if (l && !l->ending)
        docker_logs_hold(l->dl, hold);
}

static void source_logs_close(void *userdata, struct source_logs *l)
{
    if (!l || l->ending)
        return;
    docker_logs_close(l->dl);
    free(l);
}

static void source_restart(void *userdata, const char *why)
{
    struct daemon *d = userdata;
    log_info("restarting the agent: %s", why);
    d->reexec = true;
    raise(SIGTERM);
}

/* Executes this program again with the same arguments (the environment stays). */
static int reexec_self(void)
{
    char buf[65536];
    FILE *f = fopen("/proc/self/cmdline", "re");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    if (!n || n == sizeof(buf) - 1)
        return log_errno(-EIO, "cannot restart: /proc/self/cmdline is unreadable");
    buf[n] = '\0';
    char *argv[256];
    size_t argc = 0;
    for (size_t at = 0; at < n && argc < ARRAY_SIZE(argv) - 1; at += strlen(buf + at) + 1)
        argv[argc++] = buf + at;
    argv[argc] = NULL;
    execv("/proc/self/exe", argv);
    return log_errno(-errno, "cannot restart: exec /proc/self/exe");
}

static int daemon_open(struct daemon *d, bool reset_corrupt)
{
    struct config *cfg = d->cfg;
    int r = setup_check_secrets(cfg);
    if (r < 0)
        return r;
    r = lock_state_dir(cfg, &d->lock_fd);
    if (r < 0)
        return r;
    r = check_socket_path(cfg);
    if (r < 0)
        return r;
    r = setup_open_store(cfg, reset_corrupt ? STORE_OPEN_RESET_CORRUPT : 0, &d->store);
    if (r == -EBADMSG && !reset_corrupt)
        fprintf(stderr, "axion-agent: 'run --reset-corrupt-store' moves it aside (it is kept, "
                        "renamed) and starts with an empty store\n");
    if (r < 0)
        return r;
    /* Enrolled before: the Control Plane's id is the agent's id, unless agent.id says one
     * (sources/grpc_source.h; a mismatch keeps the channel down). */
    char *enrolled = NULL;
    if (grpc_source_configured(cfg) &&
        cfg->origin[CONFIG_AGENT_ID].origin == CONFIG_ORIGIN_DEFAULT &&
        grpc_source_enrolled_id(d->store, &enrolled) == 0) {
        free(cfg->agent.id);
        cfg->agent.id = enrolled;
    }
    r = setup_intake(cfg, d->store, &d->intake);
    if (r < 0)
        return r;
    struct docker_opts dko = {.timeout_ms = cfg->docker.request_timeout_ms};
    r = docker_new(d->loop, cfg->docker.socket, &dko, &d->docker);
    if (r < 0)
        return log_errno(r, "failed to set up the Docker client");
    setup_policy(cfg, &d->policy);
    struct reconciler_opts ro = {
        .agent_id = cfg->agent.id,
        .concurrency = (unsigned)cfg->reconcile.concurrency,
        .prune = cfg->reconcile.prune,
        .resync_ms = cfg->reconcile.resync_interval_ms,
        .policy = &d->policy,
    };
    r = reconciler_new(d->loop, d->store, d->docker, &ro, &d->reconciler);
    if (r < 0)
        return log_errno(r, "failed to set up the reconciler");
    r = tracker_new(d->store, cfg->reconcile.command_timeout_ms, &d->tracker);
    if (r == 0)
        r = tracker_load(d->tracker);
    if (r < 0)
        return log_errno(r, "failed to load the commands that wait for a result: %s",
                         store_errmsg(d->store));
    reconciler_set_observer(d->reconciler, on_pass, d);
    ev_timer_init(&d->tracker_timer, on_tracker_timer, 0., 0.);
    d->tracker_timer.data = d;
    d->sources = (struct source_ctx){
        .loop = d->loop,
        .cfg = cfg,
        .store = d->store,
        .intake = d->intake,
        .tracker = d->tracker,
        .wake = source_wake,
        .node_state = source_node_state,
        .observe = source_observe,
        .logs_open = source_logs_open,
        .logs_hold = source_logs_hold,
        .logs_close = source_logs_close,
        .restart = source_restart,
        .userdata = d,
    };
    char lerr[512] = "";
    r = local_listen(d->loop, cfg->local.socket, on_local, d, &d->local, lerr, sizeof(lerr));
    if (r < 0) {
        log_error("failed to listen on the local socket: %s", *lerr ? lerr : strerror(-r));
        return r;
    }
    r = reconciler_start(d->reconciler);
    if (r < 0)
        return log_errno(r, "failed to start the reconciler");
    /* The Control Plane's channel is not essential either: the workloads run without it. */
    if (grpc_source_configured(cfg)) {
        r = grpc_source_new(&d->sources, &d->grpc);
        if (r == 0)
            r = grpc_source_start(d->grpc);
        if (r < 0) {
            log_errno(r, "the gRPC control channel is off: failed to start it");
            d->grpc = grpc_source_free(d->grpc);
        }
    } else {
        /* What an earlier run said of a channel this run does not have. */
        store_delete_state(d->store, "channel.grpc");
    }
    /* Telemetry is not essential: without it the agent still reconciles. */
    r = collector_new(d->loop, cfg, d->docker, d->store, &d->collector);
    if (r == 0)
        r = collector_start(d->collector);
    if (r < 0)
        log_errno(r, "telemetry disabled: failed to start the collector");
    /* Kafka is not essential either: without it the stored desired state is still kept. */
    if (kafka_wanted(cfg)) {
        r = kafka_new(&d->sources, &d->kafka);
        if (r == 0)
            r = kafka_start(d->kafka);
        if (r < 0) {
            log_errno(r, "the Kafka channels are off");
            d->kafka = kafka_free(d->kafka);
        } else if (d->collector) {
            struct telemetry_sink sink = {kafka_telemetry_emit, d->kafka};
            collector_add_sink(d->collector, &sink);
        }
    }
    return 0;
}

int daemon_run(struct config *cfg, const struct config_source *src, const char *log_level,
               bool reset_corrupt)
{
    struct daemon d = {.cfg = cfg, .src = src, .log_level = log_level, .lock_fd = -1};
    d.started_at = source_now_ms();
    d.loop = ev_default_loop(EVFLAG_AUTO | EVFLAG_NOENV);
    if (!d.loop)
        return log_errno(-ENOMEM, "failed to create the event loop");
    signal(SIGPIPE, SIG_IGN);

    ev_signal_init(&d.sigterm, on_stop, SIGTERM);
    ev_signal_init(&d.sigint, on_stop, SIGINT);
    ev_signal_init(&d.sighup, on_reload, SIGHUP);
    d.sigterm.data = d.sigint.data = d.sighup.data = &d;
    ev_signal_start(d.loop, &d.sigterm);
    ev_signal_start(d.loop, &d.sigint);
    ev_signal_start(d.loop, &d.sighup);

    int r = daemon_open(&d, reset_corrupt);
    if (r == 0) {
        uint64_t wd = sdnotify_watchdog_usec();
        if (wd) {
            ev_timer_init(&d.watchdog, on_watchdog, 0., (double)wd / 2e6);
            ev_timer_again(d.loop, &d.watchdog);
        }
        struct store_stack *stacks = NULL;
        size_t n = 0;
        store_list_stacks(d.store, STORE_LIST_SUMMARY, &stacks, &n);
        store_stack_array_free(stacks, n);
        log_msg(LOG_LEVEL_INFO, NULL, "agent running, %zu stacks (agent id %s, docker %s%s)", n,
                cfg->agent.id, cfg->docker.socket, cfg->local.enabled ? ", local mode" : "");
        sdnotify_send("READY=1\nSTATUS=running");
        ev_run(d.loop, 0);
        log_info("agent stopped");
    }

    ev_signal_stop(d.loop, &d.sigterm);
    ev_signal_stop(d.loop, &d.sigint);
    ev_signal_stop(d.loop, &d.sighup);
    ev_timer_stop(d.loop, &d.watchdog);
    ev_timer_stop(d.loop, &d.tracker_timer);
    local_listener_free(d.local);
    grpc_source_free(d.grpc);
    collector_free(d.collector);
    kafka_free(d.kafka); /* commits, flushes the producer: bounded by KAFKA_CLOSE_MS */
    reconciler_free(d.reconciler);
    tracker_free(d.tracker);
    docker_free(d.docker);
    intake_free(d.intake);
    store_close(d.store);
    if (d.lock_fd >= 0)
        close(d.lock_fd); /* the lock goes with it; the file stays for the next one */
    if (r == 0 && d.reexec)
        r = reexec_self();
    return r;
}

#include "agent/daemon.h"

#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "agent/sdnotify.h"
#include "lib/log.h"

struct daemon {
    struct ev_loop *loop;
    struct config *cfg;
    const char *config_path;
    ev_signal sigterm, sigint, sighup;
    ev_timer watchdog;
};

static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
    log_info("received %s, stopping", strsignal(w->signum));
    sdnotify_send("STOPPING=1");
    ev_break(loop, EVBREAK_ALL);
}

static void on_reload(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct daemon *d = w->data;
    extern char **environ;
    struct config next;
    char err[1024];
    struct config_source src = {
        .path = d->config_path && *d->config_path ? d->config_path : NULL,
        .path_required = d->config_path && *d->config_path,
        .env = environ,
    };
    sdnotify_send("RELOADING=1");
    if (config_load(&src, &next, err, sizeof(err)) < 0) {
        log_error("reload failed, keeping the running config: %s", err);
    } else {
        int lvl = log_level_from_string(next.agent.log_level);
        if (lvl >= 0)
            log_set_level((enum log_level)lvl);
        config_free(d->cfg);
        *d->cfg = next;
        log_info("config reloaded");
    }
    sdnotify_send("READY=1");
}

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
    sdnotify_send("WATCHDOG=1");
}

int daemon_run(struct config *cfg, const char *config_path)
{
    struct daemon d = {.cfg = cfg, .config_path = config_path};
    d.loop = ev_default_loop(EVFLAG_AUTO | EVFLAG_NOENV);
    if (!d.loop)
        return log_errno(-ENOMEM, "failed to create the event loop");

    ev_signal_init(&d.sigterm, on_stop, SIGTERM);
    ev_signal_init(&d.sigint, on_stop, SIGINT);
    ev_signal_init(&d.sighup, on_reload, SIGHUP);
    d.sighup.data = &d;
    ev_signal_start(d.loop, &d.sigterm);
    ev_signal_start(d.loop, &d.sigint);
    ev_signal_start(d.loop, &d.sighup);
    signal(SIGPIPE, SIG_IGN);

    uint64_t wd = sdnotify_watchdog_usec();
    if (wd) {
        ev_timer_init(&d.watchdog, on_watchdog, 0., (double)wd / 2e6);
        ev_timer_again(d.loop, &d.watchdog);
    }

    log_info("agent running, 0 stacks");
    sdnotify_send("READY=1\nSTATUS=running");
    ev_run(d.loop, 0);

    ev_signal_stop(d.loop, &d.sigterm);
    ev_signal_stop(d.loop, &d.sigint);
    ev_signal_stop(d.loop, &d.sighup);
    ev_timer_stop(d.loop, &d.watchdog);
    log_info("agent stopped");
    return 0;
}

#include "sources/grpc_pump.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/support/time.h>

#include "lib/log.h"

struct pump_event {
    struct pump_event *next;
    struct grpc_pump_tag *tag;
    bool ok;
};

struct grpc_pump {
    struct ev_loop *loop;
    ev_async async;
    grpc_completion_queue *cq;
    pthread_t thread;
    bool thread_started;

    pthread_mutex_t mu;
    pthread_cond_t cond;            /* signalled with each event (grpc_pump_wait) */
    struct pump_event *head, *tail; /* handed over, not yet run */
    bool shut_down;                 /* the thread has seen GRPC_QUEUE_SHUTDOWN */
};

void grpc_pump_signals_block(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, old);
}

void grpc_pump_signals_restore(const sigset_t *old)
{
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* The pump's thread: the only one that calls grpc_completion_queue_next(). */
static void *pump_main(void *arg)
{
    struct grpc_pump *p = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(p->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT)
            continue;
        struct pump_event *e = NULL;
        if (ev.type == GRPC_OP_COMPLETE) {
            /* Out of memory here would lose an event and leak its call: nothing sane is left
             * to do but to say so and keep the others going. */
            e = calloc(1, sizeof(*e));
            if (!e) {
                log_error("grpc: out of memory handing over a completion; the channel may hang");
                continue;
            }
            e->tag = ev.tag;
            e->ok = ev.success != 0;
        }
        pthread_mutex_lock(&p->mu);
        if (e) {
            if (p->tail)
                p->tail->next = e;
            else
                p->head = e;
            p->tail = e;
        } else {
            p->shut_down = true;
        }
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->mu);
        ev_async_send(p->loop, &p->async);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            return NULL;
    }
}

/* Runs every event handed over so far; returns how many. */
static size_t pump_run(struct grpc_pump *p)
{
    pthread_mutex_lock(&p->mu);
    struct pump_event *e = p->head;
    p->head = p->tail = NULL;
    pthread_mutex_unlock(&p->mu);
    size_t n = 0;
    while (e) {
        struct pump_event *next = e->next;
        struct grpc_pump_tag *tag = e->tag;
        bool ok = e->ok;
        free(e);
        if (tag && tag->fn)
            tag->fn(tag, ok);
        n++;
        e = next;
    }
    return n;
}

static void on_async(struct ev_loop *loop, ev_async *w, int revents)
{
    pump_run(w->data);
}

int grpc_pump_new(struct ev_loop *loop, struct grpc_pump **ret)
{
    struct grpc_pump *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->loop = loop;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    ev_async_init(&p->async, on_async);
    p->async.data = p;
    ev_async_start(loop, &p->async);
    /* The async watcher alone must not keep the loop running. */
    ev_unref(loop);
    p->cq = grpc_completion_queue_create_for_next(NULL);
    if (!p->cq) {
        grpc_pump_free(p);
        return -ENOMEM;
    }
    sigset_t old;
    grpc_pump_signals_block(&old);
    int r = pthread_create(&p->thread, NULL, pump_main, p);
    grpc_pump_signals_restore(&old);
    if (r != 0) {
        grpc_pump_free(p);
        return -r;
    }
    p->thread_started = true;
    *ret = p;
    return 0;
}

grpc_completion_queue *grpc_pump_cq(const struct grpc_pump *p)
{
    return p->cq;
}

size_t grpc_pump_wait(struct grpc_pump *p, int timeout_ms)
{
    if (timeout_ms > 0) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&p->mu);
        while (!p->head && !p->shut_down)
            if (pthread_cond_timedwait(&p->cond, &p->mu, &until) == ETIMEDOUT)
                break;
        pthread_mutex_unlock(&p->mu);
    }
    return pump_run(p);
}

struct grpc_pump *grpc_pump_free(struct grpc_pump *p)
{
    if (!p)
        return NULL;
    if (p->cq) {
        grpc_completion_queue_shutdown(p->cq);
        if (p->thread_started) {
            /* Run what completes meanwhile: a tag may release its call, which lets the queue
             * finish shutting down. */
            for (;;) {
                pthread_mutex_lock(&p->mu);
                bool done = p->shut_down;
                pthread_mutex_unlock(&p->mu);
                if (done)
                    break;
                grpc_pump_wait(p, 100);
            }
            pthread_join(p->thread, NULL);
        }
        pump_run(p);
        grpc_completion_queue_destroy(p->cq);
    }
    ev_ref(p->loop);
    ev_async_stop(p->loop, &p->async);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cond);
    free(p);
    return NULL;
}

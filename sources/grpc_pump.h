/* grpc_pump: the gRPC completion queue's thread, and the hand-over of its events to the libev
 * loop. The gRPC core C API delivers the completion of every batch on a completion queue; one
 * thread (the pump's) blocks in grpc_completion_queue_next() and only moves each event into a
 * locked list and wakes the loop with ev_async_send(). The loop drains the whole list per
 * wake-up and calls each event's tag on the loop thread. So everything else of the gRPC
 * channel — every grpc_call_start_batch(), every callback — runs on the loop thread, and no
 * other thread touches the store or the agent's state (DESIGN.md §3).
 *
 * A tag is a struct grpc_pump_tag embedded in the caller's own struct; its fn is called once
 * per event on the loop with ok = the event's success:
 *
 *   struct thing { struct grpc_pump_tag tag; ... };
 *   static void on_done(struct grpc_pump_tag *t, bool ok)
 *   { struct thing *x = container_of(t, struct thing, tag); ... }
 *   x->tag.fn = on_done;
 *   grpc_call_start_batch(call, ops, n, &x->tag, NULL);
 *
 * Who may call it: sources/grpc*.c, on the loop thread. */
#pragma once

#include <ev.h>
#include <grpc/grpc.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

struct grpc_pump_tag {
    void (*fn)(struct grpc_pump_tag *tag, bool ok);
};

struct grpc_pump;

/* Creates the completion queue and starts its thread (with every signal blocked: signals are
 * the loop's). grpc_init() must have been called. */
int grpc_pump_new(struct ev_loop *loop, struct grpc_pump **ret);

/* The queue every call and connectivity watch of the channel completes on. */
grpc_completion_queue *grpc_pump_cq(const struct grpc_pump *p);

/* Runs the tags of the events handed over so far, waiting up to timeout_ms (0: not at all) for
 * the first one. For a synchronous ending outside the loop (the daemon's teardown). Returns how
 * many tags ran. */
size_t grpc_pump_wait(struct grpc_pump *p, int timeout_ms);

/* Shuts the queue down: every operation still pending completes (its tag runs with ok false
 * unless it succeeded), then the thread ends. Cancel the calls and destroy the channel first:
 * this waits until everything on the queue has completed. Accepts NULL; returns NULL. */
struct grpc_pump *grpc_pump_free(struct grpc_pump *p);

/* Blocks every signal in the calling thread while gRPC starts threads of its own (grpc_init,
 * creating a channel): they inherit the mask, so signals keep going to the loop's thread.
 * old gets the mask to restore with grpc_pump_signals_restore(). */
void grpc_pump_signals_block(sigset_t *old);
void grpc_pump_signals_restore(const sigset_t *old);

/* Exponential backoff with jitter: how long to wait before the next attempt after a run of
 * failures. One policy struct says the shape; the same code serves the reconciler's per-object
 * retries (1 s, ×2, at most 60 s, ±20 %) and a channel's reconnects (gRPC's connection backoff:
 * 1 s, ×1.6, at most 120 s, ±20 %).
 *
 *   delay(failures) = min(initial × multiplier^(failures − 1), max) × (1 ± jitter)
 *
 * The spread is uniform over [1 − jitter, 1 + jitter), so many clients that failed together do
 * not come back together. Random numbers come from a state the caller holds (no global state,
 * reproducible in tests). */
#pragma once

#include <stdint.h>

struct backoff_policy {
    uint64_t initial_ms; /* the delay after the first failure, before jitter */
    double multiplier;   /* >= 1 */
    uint64_t max_ms;     /* the delay stops growing here (before jitter) */
    double jitter;       /* 0 <= jitter < 1: ±fraction of the delay */
};

#define BACKOFF_POLICY_RECONCILE                                                                   \
    ((struct backoff_policy){.initial_ms = 1000, .multiplier = 2.0, .max_ms = 60000, .jitter = 0.2})
#define BACKOFF_POLICY_GRPC                                                                        \
    ((struct backoff_policy){                                                                      \
        .initial_ms = 1000, .multiplier = 1.6, .max_ms = 120000, .jitter = 0.2})

/* The delay in ms after `failures` failures in a row (0 is taken as 1). rnd is a uniform random
 * number in [0, 1) (backoff_random()); 0.5 gives the delay without spread. */
uint64_t backoff_delay_ms(const struct backoff_policy *p, unsigned failures, double rnd);

/* A uniform random number in [0, 1) from *state (xorshift64*); a state of 0 is seeded first. */
double backoff_random(uint64_t *state);

/* One thing that is retried: its policy, its run of failures and its random state. */
struct backoff {
    struct backoff_policy policy;
    unsigned failures;
    uint64_t rng;
};

/* seed: any value (0 picks one from the clock). */
void backoff_init(struct backoff *b, const struct backoff_policy *p, uint64_t seed);
/* Counts a failure and returns the delay before the next attempt, in ms. */
uint64_t backoff_fail(struct backoff *b);
/* A success: the next failure starts again at the initial delay. */
void backoff_reset(struct backoff *b);

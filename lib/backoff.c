#include "lib/backoff.h"

#include <math.h>
#include <time.h>

uint64_t backoff_delay_ms(const struct backoff_policy *p, unsigned failures, double rnd)
{
    double mult = p->multiplier < 1.0 ? 1.0 : p->multiplier;
    double jitter = p->jitter < 0.0 ? 0.0 : p->jitter >= 1.0 ? 0.999 : p->jitter;
    double max = (double)p->max_ms;
    double d = (double)p->initial_ms;
    for (unsigned i = 1; i < failures && d < max; i++)
        d *= mult;
    if (d > max)
        d = max;
    if (rnd < 0.0 || rnd >= 1.0 || isnan(rnd))
        rnd = 0.5;
    d *= 1.0 - jitter + 2.0 * jitter * rnd;
    return (uint64_t)d;
}

static uint64_t seed_from_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t s = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    return s ? s : 0x9e3779b97f4a7c15u;
}

double backoff_random(uint64_t *state)
{
    if (!*state)
        *state = seed_from_clock();
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    /* the top 53 bits as a double in [0, 1) */
    return (double)((x * 0x2545f4914f6cdd1du) >> 11) * (1.0 / 9007199254740992.0);
}

void backoff_init(struct backoff *b, const struct backoff_policy *p, uint64_t seed)
{
    *b = (struct backoff){.policy = *p, .failures = 0, .rng = seed};
}

uint64_t backoff_fail(struct backoff *b)
{
    if (b->failures < UINT32_MAX)
        b->failures++;
    return backoff_delay_ms(&b->policy, b->failures, backoff_random(&b->rng));
}

void backoff_reset(struct backoff *b)
{
    b->failures = 0;
}

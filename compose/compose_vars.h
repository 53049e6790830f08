/* compose_vars: the variables supplied with a manifest, for ${VAR} interpolation and for
 * environment entries without a value. Nothing is read from the agent's own environment.
 * The bottom of compose/: it calls nothing else here. */
#pragma once

#include <stddef.h>

struct compose_var {
    const char *name;
    const char *value;
};
struct compose_vars {
    const struct compose_var *v;
    size_t n;
};

/* The value of name, or NULL when unset (the last pair wins when a name repeats). */
const char *compose_vars_get(const struct compose_vars *vars, const char *name);

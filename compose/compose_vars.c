#include "compose/compose_vars.h"

#include <string.h>

#include "lib/util.h"

const char *compose_vars_get(const struct compose_vars *vars, const char *name)
{
    if (!vars)
        return NULL;
    for (size_t i = vars->n; i > 0; i--)
        if (vars->v[i - 1].name && streq(vars->v[i - 1].name, name))
            return vars->v[i - 1].value;
    return NULL;
}

/* Variable interpolation in compose values, with the grammar of docker/cli's compose template:
 *   $$               a literal $
 *   $VAR  ${VAR}     the value of VAR ("" when unset)
 *   ${VAR:-default}  default when VAR is unset or empty     ${VAR-default}  only when unset
 *   ${VAR:?message}  error when VAR is unset or empty       ${VAR?message}  only when unset
 * Names are [A-Za-z_][A-Za-z0-9_]*. As in docker/cli, the unbraced form also takes an operator
 * ($VAR:-default runs to the end of the value or the first `}`). Any other `$` is an error.
 * Defaults and messages are not interpolated again. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "compose/compose.h"

/* Expands s (len bytes) into *ret (malloc'ed, NUL-terminated) of at most max bytes. Returns 0,
 * or -EINVAL with a message in msg (bad syntax, a required variable missing), -E2BIG when the
 * result is longer than max, -ENOMEM. */
int compose_interp_expand(const char *s, size_t len, const struct compose_vars *vars, size_t max,
                          char **ret, size_t *ret_len, char *msg, size_t msglen);

/* Whether s holds a `$` at all (nothing to expand otherwise). */
bool compose_interp_needed(const char *s, size_t len);

/* intake_swarm: the intake's part for swarm membership (swarm-init, swarm-join, swarm-leave).
 * Only sources/intake.c calls it, inside the transaction it opened, after the command id was
 * found new; the record and the position are intake.c's.
 *
 * What it writes: the swarm row (store_set_swarm), replaced whole: init → manager without join
 * addresses; join → worker or manager with the remote addresses and the token; leave → none.
 * A leave while the store holds stacks that are not removed is refused, naming them, unless
 * forced; a forced leave marks every such stack removed in the same transaction, so the loop
 * removes their objects before the node leaves. The join token is checked for its form and
 * stored; it is never written into a message. docs/internals/intake.md has the rules. */
#pragma once

#include <stdbool.h>

#include "sources/intake.h"
#include "store/store.h"

/* Whether kind is one of swarm-init, swarm-join, swarm-leave. */
bool intake_swarm_kind(enum intake_kind kind);

/* Checks and writes one membership request. 0 with res->outcome ACCEPTED (notes: the stacks a
 * forced leave marked removed) or REJECTED (res->error names the field and the cause); a
 * negative errno on a store error or -ENOMEM, with res->error saying what. */
int intake_swarm_submit(struct store *st, const struct intake_request *rq,
                        struct intake_result *res);

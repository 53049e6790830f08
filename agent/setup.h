/* setup: what the daemon and the CLI both set up on this node, in one place that neither of
 * them owns: the config (loaded, its log level applied), the state directory and the store in
 * it, the policy rules the config asks for, and the intake (sources/intake.h) built on them.
 * The CLI's commands and the daemon call these; these call neither.
 *
 * Errors are printed to stderr, naming the file or the key and the cause: these run before
 * the daemon's log or a command's output has anything to say. */
#pragma once

#include "agent/config.h"
#include "compose/policy.h"

struct store;
struct intake;

/* Loads the config from src, prints the error on failure; applies log_level (--log-level) or
 * else the config's agent.log_level. */
int setup_load_config(const struct config_source *src, const char *log_level, struct config *ret);

/* Opens the store at <agent.state_dir>/store.db, creating the directory unless flags has
 * STORE_OPEN_EXISTING. Prints the error: "no store at PATH yet (nothing was applied)" only when
 * there is none; a store that is there but does not open (its owner, its mode, a read-only
 * filesystem) is said to be so, with who owns it and that nothing was lost. Run by root, the
 * files it makes in a state dir another user owns are that user's (store.h). */
int setup_open_store(const struct config *cfg, unsigned flags, struct store **ret);

/* The [policy] section as compiler rules; its lists are borrowed from cfg. */
void setup_policy(const struct config *cfg, struct policy_rules *ret);

/* The intake on st with this node's agent id and policy (cfg and st must outlive it). */
int setup_intake(const struct config *cfg, struct store *st, struct intake **ret);

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
 * else the config's agent.log_level. Refuses (-EPERM) a config file that everyone may write,
 * or that everyone may read while it holds agent.token (setup_config_mode_ok). */
int setup_load_config(const struct config_source *src, const char *log_level, struct config *ret);

/* Whether a private key file is kept to its owner: a key that group or others may read or
 * write (any of mode 0077) is refused with -EPERM, and err says which file, what it is (what:
 * "control_plane.key_file", "the secrets key", ...), its mode and the fix. With fd >= 0 the
 * open file is checked (fstat), else path (stat: a link is followed). -ENOENT when path does
 * not exist; another negative errno when it cannot be checked. Every key file the agent reads
 * goes through this, wherever it comes from (config, state dir). */
int setup_key_mode_ok(const char *path, int fd, const char *what, char *err, size_t errlen);

/* Whether the config file path (mode given) may hold what it holds: never writable by others;
 * not readable by others when holds_token. -EPERM with err naming the file and the fix. */
int setup_config_mode_ok(const char *path, unsigned mode, bool holds_token, char *err,
                         size_t errlen);

/* What the daemon checks before it starts, printing the reason of a refusal: the key files the
 * config names (control_plane.key_file, kafka.key_file) and every private key in the state
 * directory (a file named *.key, or *.pem with "key" in its name) pass setup_key_mode_ok. */
int setup_check_secrets(const struct config *cfg);

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

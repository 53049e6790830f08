/* The command-line interface: one function per subcommand, sharing the global options. */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

#include "agent/config.h"

struct cli_ctx {
    const char *config_path; /* --config, or NULL */
    const char *log_level;   /* --log-level, or NULL */
    char **flags;            /* "section.key=value" overrides, in order */
    size_t n_flags;
};

struct cli_command {
    const char *name;
    int (*fn)(struct cli_ctx *ctx, int argc, char **argv);
    const char *summary;
};

/* Every command parses its arguments with cli_getopt(): its own options, and the global ones
 * anywhere (`axion-agent config check --config FILE`, in their long form, and -c, -l); anything
 * else is refused with a message naming the command. A command's long options end with
 * CLI_GLOBAL_OPTIONS and its short options with CLI_GLOBAL_SHORT:
 *
 *   static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
 *                                        {"help", no_argument, NULL, 'h'}, CLI_GLOBAL_OPTIONS};
 *   while ((c = cli_getopt(ctx, "status", argc, argv, "o:h" CLI_GLOBAL_SHORT, opts)) != -1)
 *       switch (c) { case CLI_BAD: return 1; ... }
 *   then argv[optind..argc): the positional arguments (cli_positional() checks their count). */
enum {
    CLI_BAD = '?', /* the option was refused: the message is printed */
    CLI_OPT_CONFIG = 0x1000,
    CLI_OPT_SET,
    CLI_OPT_LOCAL,
    CLI_OPT_STATE_DIR,
    CLI_OPT_LOG_LEVEL,
};
#define CLI_GLOBAL_SHORT "c:l:"
#define CLI_GLOBAL_OPTIONS                                                                         \
    {"config", required_argument, NULL, CLI_OPT_CONFIG},                                           \
        {"set", required_argument, NULL, CLI_OPT_SET},                                             \
        {"local", no_argument, NULL, CLI_OPT_LOCAL},                                               \
        {"state-dir", required_argument, NULL, CLI_OPT_STATE_DIR},                                 \
        {"log-level", required_argument, NULL, CLI_OPT_LOG_LEVEL},                                 \
    {                                                                                              \
        0                                                                                          \
    }

/* The next option of a command (getopt_long, arguments permuted): a global option is taken into
 * ctx and skipped; an unknown option or a missing argument prints "axion-agent CMD: ..." and
 * returns CLI_BAD; -1 at the end. */
int cli_getopt(struct cli_ctx *ctx, const char *cmd, int argc, char **argv, const char *shortopts,
               const struct option *longopts);
/* After cli_getopt(): 0 when argv has from min to max positional arguments, else prints what is
 * wrong ("unexpected argument 'x'") with usage, and returns -EINVAL. */
int cli_positional(const char *cmd, int argc, char **argv, int min, int max, const char *usage);
/* A global option (c as main's getopt gives it, or CLI_OPT_*): 1 when taken, 0 when c is not
 * one, -EINVAL after printing what is wrong with its value. */
int cli_global_option(struct cli_ctx *ctx, int c, const char *arg);

/* Adds a "section.key=value" override; with assignment NULL, "agent.state_dir=<state_dir>". */
int cli_add_flag(struct cli_ctx *ctx, const char *assignment, const char *state_dir);
void cli_ctx_release(struct cli_ctx *ctx);
/* Loads the config as the global options say; prints the error and returns <0 on failure. */
int cli_load_config(struct cli_ctx *ctx, struct config *ret);
/* True when argv holds -h or --help (commands call it before their own parsing). */
int cli_wants_help(int argc, char **argv);

struct store;
/* Loads the config and opens the store the way a read-mostly command needs them; prints the
 * error and frees what it made on failure. cli_close() releases both. */
int cli_open(struct cli_ctx *ctx, unsigned store_flags, struct config *ret_cfg,
             struct store **ret_st);
void cli_close(struct config *cfg, struct store *st);
/* Tells a running daemon that desired state changed (says so when none runs). */
void cli_wake_daemon(const struct config *cfg);

/* --output text|json: sets *ret_json, or prints the error naming cmd and returns -EINVAL. */
int cli_output_flag(const char *v, bool *ret_json, const char *cmd);

const struct cli_command *cli_find(const char *name);
const struct cli_command *cli_commands(size_t *ret_n);

int cli_run(struct cli_ctx *ctx, int argc, char **argv);
int cli_config(struct cli_ctx *ctx, int argc, char **argv);
int cli_version(struct cli_ctx *ctx, int argc, char **argv);
int cli_help(struct cli_ctx *ctx, int argc, char **argv);
int cli_apply(struct cli_ctx *ctx, int argc, char **argv);
int cli_rm(struct cli_ctx *ctx, int argc, char **argv);
int cli_scale(struct cli_ctx *ctx, int argc, char **argv);
int cli_stop(struct cli_ctx *ctx, int argc, char **argv);
int cli_start(struct cli_ctx *ctx, int argc, char **argv);
int cli_restart(struct cli_ctx *ctx, int argc, char **argv);
int cli_status(struct cli_ctx *ctx, int argc, char **argv);
int cli_events(struct cli_ctx *ctx, int argc, char **argv);
int cli_reconcile(struct cli_ctx *ctx, int argc, char **argv);
int cli_top(struct cli_ctx *ctx, int argc, char **argv);
int cli_encode(struct cli_ctx *ctx, int argc, char **argv);
int cli_decode(struct cli_ctx *ctx, int argc, char **argv);
int cli_swarm(struct cli_ctx *ctx, int argc, char **argv);

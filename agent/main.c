/* axion-agent: the node agent of the Axion platform.
 *
 * main() reads as the table of contents: global flags → log → config → the subcommand. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/cli.h"
#include "agent/config.h"
#include "lib/log.h"
#include "lib/util.h"

static const struct cli_command commands[] = {
    {"run", cli_run, "run the daemon (reconcile loop, channels, telemetry)"},
    {"apply", cli_apply, "write a Compose manifest as the next generation of a stack"},
    {"rm", cli_rm, "remove a stack"},
    {"scale", cli_scale, "set a service's replicas: STACK/SERVICE=N"},
    {"stop", cli_stop, "stop a stack or service (replicas 0, remembered)"},
    {"start", cli_start, "start what stop stopped"},
    {"restart", cli_restart, "restart a stack's or service's tasks"},
    {"status", cli_status, "per stack state, replicas, last apply, recent events"},
    {"events", cli_events, "the reconciler's event log"},
    {"reconcile", cli_reconcile, "one reconcile pass here; --dry-run prints the plan"},
    {"top", cli_top, "host and container metrics of the latest telemetry sample"},
    {"encode", cli_encode, "write a command envelope (for a Kafka topic) to stdout"},
    {"decode", cli_decode, "print a command, status or telemetry message from stdin as JSON"},
    {"swarm", cli_swarm, "the node's swarm membership: init, join, leave, status"},
    {"config", cli_config, "config check: validate and print the effective config"},
    {"version", cli_version, "print the version"},
    {"help", cli_help, "show this help, or a command's help"},
};

const struct cli_command *cli_commands(size_t *ret_n)
{
    *ret_n = ARRAY_SIZE(commands);
    return commands;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: axion-agent [GLOBAL OPTIONS] COMMAND [ARGS]\n\n"
               "Global options (before or after the command):\n"
               "  -c, --config PATH       config file (default " CONFIG_DEFAULT_PATH ")\n"
               "  -s, --set SECTION.KEY=VALUE\n"
               "                          override one config value (repeatable; after the\n"
               "                          command only as --set)\n"
               "      --local             shorthand for --set local.enabled=true\n"
               "      --state-dir DIR     shorthand for --set agent.state_dir=DIR\n"
               "  -l, --log-level LEVEL   error, warn, info or debug\n"
               "  -h, --help              show this help\n\n"
               "Commands:\n");
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'axion-agent COMMAND --help' for a command's options.\n");
}

int cli_help(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, CLI_GLOBAL_OPTIONS};
    int c;
    while ((c = cli_getopt(ctx, "help", argc, argv, "h" CLI_GLOBAL_SHORT, opts)) != -1) {
        if (c == 'h') {
            printf("Usage: axion-agent help [COMMAND]\n\n"
                   "Shows the global options and the commands, or COMMAND's help.\n");
            return 0;
        }
        return 1;
    }
    if (cli_positional("help", argc, argv, 0, 1, NULL) < 0)
        return 1;
    if (optind < argc) {
        const struct cli_command *cmd = cli_find(argv[optind]);
        if (!cmd) {
            fprintf(stderr, "axion-agent: unknown command '%s'\n", argv[optind]);
            return 1;
        }
        char *help[] = {argv[optind], "--help", NULL};
        optind = 0;
        return cmd->fn(ctx, 2, help);
    }
    usage(stdout);
    return 0;
}

const struct cli_command *cli_find(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        if (streq(commands[i].name, name))
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, CLI_OPT_CONFIG},
        {"set", required_argument, NULL, CLI_OPT_SET},
        {"local", no_argument, NULL, CLI_OPT_LOCAL},
        {"state-dir", required_argument, NULL, CLI_OPT_STATE_DIR},
        {"log-level", required_argument, NULL, CLI_OPT_LOG_LEVEL},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    struct cli_ctx ctx = {0};
    int c, r = 1;

    log_init(LOG_LEVEL_INFO);
    /* '+': stop at the first non-option, the subcommand; it parses the rest (global options may
     * come after it too: cli_getopt()). */
    opterr = 0;
    int idx = -1;
    while ((c = getopt_long(argc, argv, "+:c:s:l:h", opts, &idx)) != -1) {
        if (idx >= 0 && c != '?' && c != ':') {
            /* no abbreviations: "--conf" is not "--config" */
            const char *tok = optarg && optind >= 2 && optarg == argv[optind - 1]
                                  ? argv[optind - 2]
                                  : argv[optind - 1];
            size_t tl = strncmp(tok, "--", 2) == 0 ? strcspn(tok + 2, "=") : 0;
            if (tl && (tl != strlen(opts[idx].name) || strncmp(tok + 2, opts[idx].name, tl))) {
                fprintf(stderr, "axion-agent: unknown option '--%.*s' (did you mean '--%s'?)\n",
                        (int)tl, tok + 2, opts[idx].name);
                goto out;
            }
        }
        idx = -1;
        if (c == 'h') {
            usage(stdout);
            r = 0;
            goto out;
        }
        if (c == '?' || c == ':') {
            const char *arg = optind > 0 ? argv[optind - 1] : "?";
            if (c == ':')
                fprintf(stderr, "axion-agent: option '%s' needs a value\n", arg);
            else if (optopt)
                fprintf(stderr, "axion-agent: unknown option '-%c'\n", optopt);
            else
                fprintf(stderr, "axion-agent: unknown option '%s'\n", arg);
            usage(stderr);
            goto out;
        }
        if (cli_global_option(&ctx, c == 's' ? CLI_OPT_SET : c, optarg) <= 0)
            goto out;
    }
    if (optind >= argc) {
        usage(stderr);
        goto out;
    }
    const struct cli_command *cmd = cli_find(argv[optind]);
    if (!cmd) {
        fprintf(stderr, "axion-agent: unknown command '%s' (see 'axion-agent help')\n",
                argv[optind]);
        goto out;
    }
    argc -= optind;
    argv += optind;
    optind = 0; /* reset getopt for the subcommand */
    r = cmd->fn(&ctx, argc, argv);
out:
    cli_ctx_release(&ctx);
    return r;
}

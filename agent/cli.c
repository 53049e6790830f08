#include "agent/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/daemon.h"
#include "agent/setup.h"
#include "lib/log.h"
#include "lib/util.h"

extern char **environ;

int cli_add_flag(struct cli_ctx *ctx, const char *assignment, const char *state_dir)
{
    char *s = NULL;
    if (assignment)
        s = strdup(assignment);
    else if (asprintf(&s, "agent.state_dir=%s", state_dir) < 0)
        s = NULL;
    if (!s)
        return -ENOMEM;
    char **n = realloc(ctx->flags, (ctx->n_flags + 1) * sizeof(*n));
    if (!n) {
        free(s);
        return -ENOMEM;
    }
    ctx->flags = n;
    ctx->flags[ctx->n_flags++] = s;
    return 0;
}

int cli_global_option(struct cli_ctx *ctx, int c, const char *arg)
{
    int r;
    switch (c) {
    case 'c':
    case CLI_OPT_CONFIG:
        ctx->config_path = arg;
        return 1;
    case CLI_OPT_SET:
    case CLI_OPT_LOCAL:
    case CLI_OPT_STATE_DIR:
        r = cli_add_flag(ctx,
                         c == CLI_OPT_SET     ? arg
                         : c == CLI_OPT_LOCAL ? "local.enabled=true"
                                              : NULL,
                         c == CLI_OPT_STATE_DIR ? arg : NULL);
        if (r < 0) {
            fprintf(stderr, "axion-agent: out of memory\n");
            return r;
        }
        return 1;
    case 'l':
    case CLI_OPT_LOG_LEVEL:
        if (log_level_from_string(arg) < 0) {
            fprintf(stderr,
                    "axion-agent: --log-level: expected error, warn, info or debug, got \"%s\"\n",
                    arg);
            return -EINVAL;
        }
        ctx->log_level = arg;
        return 1;
    default:
        return 0;
    }
}

int cli_getopt(struct cli_ctx *ctx, const char *cmd, int argc, char **argv, const char *shortopts,
               const struct option *longopts)
{
    char spec[128];
    snprintf(spec, sizeof(spec), ":%s", shortopts); /* ':' first: a missing value says so */
    opterr = 0;
    for (;;) {
        optopt = 0;
        int idx = -1;
        int c = getopt_long(argc, argv, spec, longopts, &idx);
        if (c == -1)
            return -1;
        const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
        if (idx >= 0 && c != '?' && c != ':') {
            /* getopt takes "--res" for "--reset-corrupt-store"; a command does not guess. */
            const char *tok =
                optarg && optind >= 2 && optarg == argv[optind - 1] ? argv[optind - 2] : arg;
            const char *full = longopts[idx].name;
            size_t tl = strncmp(tok, "--", 2) == 0 ? strcspn(tok + 2, "=") : 0;
            if (tl && (tl != strlen(full) || strncmp(tok + 2, full, tl) != 0)) {
                fprintf(stderr, "axion-agent %s: unknown option '--%.*s' (did you mean '--%s'?)\n",
                        cmd, (int)tl, tok + 2, full);
                return CLI_BAD;
            }
        }
        if (c == '?') {
            /* the option's name only: "--name=value" may hold a secret (a token) */
            if (optopt)
                fprintf(stderr,
                        "axion-agent %s: unknown option '-%c' (see 'axion-agent %s --help')\n", cmd,
                        optopt, cmd);
            else
                fprintf(stderr,
                        "axion-agent %s: unknown option '%.*s' (see 'axion-agent %s --help')\n",
                        cmd, (int)strcspn(arg, "="), arg, cmd);
            return CLI_BAD;
        }
        if (c == ':') {
            if (strncmp(arg, "--", 2) != 0 && optopt && optopt < 0x100)
                fprintf(stderr, "axion-agent %s: option '-%c' needs a value\n", cmd, optopt);
            else
                fprintf(stderr, "axion-agent %s: option '%s' needs a value\n", cmd, arg);
            return CLI_BAD;
        }
        /* -c and -l are global; a command's long option may use those letters for its own */
        int g = idx >= 0 && c < CLI_OPT_CONFIG ? 0 : cli_global_option(ctx, c, optarg);
        if (g < 0)
            return CLI_BAD;
        if (g == 0)
            return c;
    }
}

int cli_positional(const char *cmd, int argc, char **argv, int min, int max, const char *usage)
{
    int n = argc - optind;
    if (n >= min && n <= max)
        return 0;
    if (n > max)
        fprintf(stderr, "axion-agent %s: unexpected argument '%s'\n", cmd, argv[optind + max]);
    else
        fprintf(stderr, "axion-agent %s: missing argument\n", cmd);
    if (usage)
        fputs(usage, stderr);
    return -EINVAL;
}

void cli_ctx_release(struct cli_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n_flags; i++)
        free(ctx->flags[i]);
    free(ctx->flags);
    ctx->flags = NULL;
    ctx->n_flags = 0;
}

static struct config_source config_source(const struct cli_ctx *ctx)
{
    return (struct config_source){
        .path = ctx->config_path,
        .path_required = ctx->config_path != NULL,
        .env = environ,
        .flags = (const char *const *)ctx->flags,
        .n_flags = ctx->n_flags,
    };
}

int cli_load_config(struct cli_ctx *ctx, struct config *ret)
{
    struct config_source src = config_source(ctx);
    return setup_load_config(&src, ctx->log_level, ret);
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (streq(argv[i], "--"))
            break;
        if (streq(argv[i], "-h") || streq(argv[i], "--help"))
            return 1;
    }
    return 0;
}

int cli_run(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"reset-corrupt-store", no_argument, NULL, 'R'},
                                         {"help", no_argument, NULL, 'h'},
                                         CLI_GLOBAL_OPTIONS};
    bool reset_corrupt = false;
    int c;
    while ((c = cli_getopt(ctx, "run", argc, argv, "h" CLI_GLOBAL_SHORT, opts)) != -1) {
        switch (c) {
        case 'R':
            reset_corrupt = true;
            break;
        case 'h':
            printf("Usage: axion-agent [GLOBAL OPTIONS] run [--reset-corrupt-store]\n\n"
                   "Runs the daemon in the foreground: loads desired state from the store,\n"
                   "reconciles it against the local Swarm and keeps it there. Logs go to stderr\n"
                   "in logfmt. SIGTERM/SIGINT stop gracefully, SIGHUP reloads the config. One\n"
                   "daemon per state dir: a second one exits, naming the first one's pid.\n\n"
                   "  --reset-corrupt-store  move a corrupt store aside (never deleted) and start\n"
                   "                         with an empty one; without it a corrupt store is an\n"
                   "                         error\n");
            return 0;
        default:
            return 1;
        }
    }
    if (cli_positional("run", argc, argv, 0, 0, NULL) < 0)
        return 1;
    struct config cfg;
    if (cli_load_config(ctx, &cfg) < 0)
        return 1;
    struct config_source src = config_source(ctx);
    int r = daemon_run(&cfg, &src, ctx->log_level, reset_corrupt);
    config_free(&cfg);
    return r < 0 ? 1 : 0;
}

int cli_config(struct cli_ctx *ctx, int argc, char **argv)
{
    static const char usage[] =
        "Usage: axion-agent [GLOBAL OPTIONS] config check [GLOBAL OPTIONS]\n\n"
        "Validates the config (file, AXION_AGENT__SECTION__KEY variables, --set flags)\n"
        "and prints every effective value with where it came from. Secrets are\n"
        "masked. Exit 0 when valid, 1 with the error otherwise.\n";
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, CLI_GLOBAL_OPTIONS};
    int c;
    while ((c = cli_getopt(ctx, "config", argc, argv, "h" CLI_GLOBAL_SHORT, opts)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        }
        return 1;
    }
    if (cli_positional("config", argc, argv, 1, 1, usage) < 0)
        return 1;
    if (strcmp(argv[optind], "check") != 0) {
        fprintf(stderr, "axion-agent config: unknown subcommand '%s' (expected 'check')\n",
                argv[optind]);
        return 1;
    }
    struct config cfg;
    if (cli_load_config(ctx, &cfg) < 0)
        return 1;
    config_print(&cfg, stdout);
    config_free(&cfg);
    return 0;
}

int cli_version(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, CLI_GLOBAL_OPTIONS};
    int c;
    while ((c = cli_getopt(ctx, "version", argc, argv, "h" CLI_GLOBAL_SHORT, opts)) != -1) {
        if (c == 'h') {
            printf("Usage: axion-agent version\n\nPrints the agent's version.\n");
            return 0;
        }
        return 1;
    }
    if (cli_positional("version", argc, argv, 0, 0, NULL) < 0)
        return 1;
    printf("axion-agent %s\n", AXION_VERSION);
    return 0;
}

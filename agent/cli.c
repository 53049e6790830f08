#include "agent/cli.h"

#include <errno.h>
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
    for (int i = 1; i < argc; i++)
        if (streq(argv[i], "-h") || streq(argv[i], "--help"))
            return 1;
    return 0;
}

int cli_run(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("Usage: axion-agent [GLOBAL OPTIONS] run [--reset-corrupt-store]\n\n"
               "Runs the daemon in the foreground: loads desired state from the store,\n"
               "reconciles it against the local Swarm and keeps it there. Logs go to stderr\n"
               "in logfmt. SIGTERM/SIGINT stop gracefully, SIGHUP reloads the config.\n\n"
               "  --reset-corrupt-store  move a corrupt store aside (never deleted) and start\n"
               "                         with an empty one; without it a corrupt store is an\n"
               "                         error\n");
        return 0;
    }
    bool reset_corrupt = false;
    for (int i = 1; i < argc; i++) {
        if (streq(argv[i], "--reset-corrupt-store")) {
            reset_corrupt = true;
            continue;
        }
        fprintf(stderr, "axion-agent run: unexpected argument '%s'\n", argv[i]);
        return 1;
    }
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
    if (cli_wants_help(argc, argv) || argc < 2) {
        printf("Usage: axion-agent [GLOBAL OPTIONS] config check\n\n"
               "Validates the config (file, AXION_AGENT__SECTION__KEY variables, --set flags)\n"
               "and prints every effective value with where it came from. Secrets are\n"
               "masked. Exit 0 when valid, 1 with the error otherwise.\n");
        return argc < 2 ? 1 : 0;
    }
    if (strcmp(argv[1], "check") != 0) {
        fprintf(stderr, "axion-agent config: unknown subcommand '%s' (expected 'check')\n",
                argv[1]);
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
    if (cli_wants_help(argc, argv)) {
        printf("Usage: axion-agent version\n\nPrints the agent's version.\n");
        return 0;
    }
    printf("axion-agent %s\n", AXION_VERSION);
    return 0;
}

/* `axion-agent top [--output json]`: the latest telemetry sample the daemon stored, printed like
 * `docker stats --no-stream` after a host summary. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/cli.h"
#include "agent/telemetry.h"
#include "lib/util.h"
#include "store/store.h"

int cli_top(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         CLI_GLOBAL_OPTIONS};
    bool json = false;
    int c;
    while ((c = cli_getopt(ctx, "top", argc, argv, "o:h" CLI_GLOBAL_SHORT, opts)) != -1) {
        switch (c) {
        case 'o':
            if (cli_output_flag(optarg, &json, "top") < 0)
                return 1;
            break;
        case 'h':
            printf("Usage: axion-agent top [--output text|json]\n\n"
                   "Shows the latest telemetry sample of the running daemon (taken every\n"
                   "telemetry.interval from cgroups and /proc): host CPU, memory, load, disks,\n"
                   "network, and per container CPU %%, memory, network and block I/O, pids,\n"
                   "like `docker stats --no-stream`.\n");
            return 0;
        default:
            return 1;
        }
    }
    if (cli_positional("top", argc, argv, 0, 0, NULL) < 0)
        return 1;
    struct config cfg;
    struct store *st;
    if (cli_open(ctx, STORE_OPEN_EXISTING, &cfg, &st) < 0)
        return 1;
    void *payload = NULL;
    size_t len = 0;
    int64_t ts = 0;
    int rc = 1;
    int r = store_get_telemetry(st, &ts, &payload, &len);
    if (r == -ENOENT) {
        fprintf(stderr, "axion-agent top: no sample yet (is the daemon running? it takes one "
                        "every telemetry.interval)\n");
        goto out;
    }
    if (r < 0) {
        fprintf(stderr, "axion-agent top: %s\n", store_errmsg(st));
        goto out;
    }
    r = telemetry_print(payload, len, stdout, json);
    if (r < 0) {
        fprintf(stderr, "axion-agent top: the stored sample is unreadable: %s\n", strerror(-r));
        goto out;
    }
    rc = 0;
out:
    free(payload);
    cli_close(&cfg, st);
    return rc;
}

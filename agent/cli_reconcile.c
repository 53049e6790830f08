/* `axion-agent reconcile [--dry-run] [--stack S] [--output text|json]`: one reconcile pass in
 * the CLI process, no daemon needed. Exit 0 = in sync, 2 = changes pending (dry run) or left
 * failing, 1 = error. */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "agent/cli.h"
#include "agent/setup.h"
#include "drivers/docker/docker.h"
#include "lib/buf.h"
#include "lib/util.h"
#include "reconciler/reconciler.h"
#include "store/store.h"

/* The membership step's plan as a line of text: "~ swarm: join ... (the node is in no swarm)"
 * for a change, "! swarm: blocked: ..." when it cannot go on; nothing when as wanted. */
static void print_membership_text(const struct reconciler_result *res)
{
    const struct membership_plan *ms = &res->membership;
    if (ms->action == MEMBERSHIP_WAIT)
        printf("~ swarm: %s (waiting: %s)\n", ms->what, ms->why);
    else if (membership_pending(ms))
        printf("~ swarm: %s (%s)\n", ms->what, ms->why);
    else if (ms->action == MEMBERSHIP_BLOCKED)
        printf("! swarm: blocked: %s\n", ms->why);
    if (*res->membership_error)
        printf("! swarm: %s\n", res->membership_error);
}

/* The pass's plan, as text or JSON, on stdout: the membership first, then the stacks'. */
static int print_plan(const struct reconciler_result *res, bool json)
{
    bool ms_pending = membership_pending(&res->membership);
    if (json) {
        json_t *j = plan_to_json(&res->plan);
        json_t *ms = membership_plan_to_json(&res->membership);
        int r = -1;
        if (j && ms) {
            if (ms_pending) {
                json_int_t n = json_integer_value(json_object_get(j, "changes"));
                json_object_set_new(j, "in_sync", json_false());
                json_object_set_new(j, "changes", json_integer(n + 1));
            }
            if (*res->membership_error)
                json_object_set_new(ms, "error", json_string(res->membership_error));
            json_object_set_new(j, "membership", ms);
            ms = NULL;
            if (res->pending)
                json_object_set_new(j, "pending", json_string(res->pending));
            r = json_dumpf(j, stdout, JSON_INDENT(2));
        }
        json_decref(ms);
        json_decref(j);
        if (r < 0)
            return -ENOMEM;
        putchar('\n');
        return 0;
    }
    print_membership_text(res);
    if (res->pending) {
        printf("Pending: %s; no services can be managed here.\n", res->pending);
        return 0;
    }
    struct buf text = BUF_INIT(64u << 20);
    int r = plan_format_text(&res->plan, &text);
    if (r == 0)
        fputs(text.data, stdout);
    buf_release(&text);
    return r;
}

int cli_reconcile(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"dry-run", no_argument, NULL, 'd'},
                                         {"stack", required_argument, NULL, 's'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    bool dry_run = false, json = false;
    const char *stack = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "ds:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dry_run = true;
            break;
        case 's':
            stack = optarg;
            break;
        case 'o':
            if (cli_output_flag(optarg, &json, "reconcile") < 0)
                return 1;
            break;
        case 'h':
            printf("Usage: axion-agent reconcile [--dry-run] [--stack S] [--output text|json]\n\n"
                   "Runs one reconcile pass here (no daemon needed): loads desired state from\n"
                   "the store, reads the Swarm, computes the plan and applies it. With --dry-run\n"
                   "it prints the plan (+ create, ~ update with the changed fields and whether\n"
                   "it rolls tasks or is in place, - remove) and changes nothing. The node's\n"
                   "swarm membership comes first (~ swarm: init, join, leave; ! swarm: what\n"
                   "blocks it); a join token is never shown.\n\n"
                   "Exit status: 0 in sync, 2 changes pending (or failed to apply), 1 error.\n");
            return 0;
        default:
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "axion-agent reconcile: unexpected argument '%s'\n", argv[optind]);
        return 1;
    }
    struct config cfg;
    if (cli_load_config(ctx, &cfg) < 0)
        return 1;
    int rc = 1;
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO | EVFLAG_NOENV);
    struct store *st = NULL;
    struct docker *d = NULL;
    struct reconciler *r = NULL;
    struct policy_rules policy;
    setup_policy(&cfg, &policy);
    if (setup_open_store(&cfg, dry_run ? STORE_OPEN_EXISTING : 0, &st) < 0)
        goto out;
    struct docker_opts dko = {.timeout_ms = cfg.docker.request_timeout_ms};
    if (docker_new(loop, cfg.docker.socket, &dko, &d) < 0) {
        fprintf(stderr, "axion-agent reconcile: out of memory\n");
        goto out;
    }
    struct reconciler_opts ro = {
        .agent_id = cfg.agent.id,
        .concurrency = (unsigned)cfg.reconcile.concurrency,
        .prune = cfg.reconcile.prune,
        .policy = &policy,
        .dry_run = dry_run,
        .only_stack = stack,
    };
    if (reconciler_new(loop, st, d, &ro, &r) < 0) {
        fprintf(stderr, "axion-agent reconcile: out of memory\n");
        goto out;
    }
    struct reconciler_result res;
    char err[1024];
    int e = reconciler_run_once(r, &res, err, sizeof(err));
    if (e < 0) {
        fprintf(stderr, "axion-agent: %s\n", err);
        goto out;
    }
    if (print_plan(&res, json) < 0) {
        fprintf(stderr, "axion-agent reconcile: out of memory\n");
        reconciler_result_release(&res);
        goto out;
    }
    /* Changes planned (dry run) or left failing (a real pass); none while pending, but the
     * membership's. */
    size_t changes = res.pending ? 0 : res.dry_run ? plan_changes(&res.plan) : res.failed;
    if (res.dry_run ? membership_pending(&res.membership) : *res.membership_error != '\0')
        changes++;
    reconciler_result_release(&res);
    rc = changes ? 2 : 0;
out:
    reconciler_free(r);
    docker_free(d);
    store_close(st);
    config_free(&cfg);
    return rc;
}

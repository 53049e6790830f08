/* The CLI commands that write desired state (apply, rm, scale, stop, start, restart) and the
 * ones that read it back (status, events). They use the same store functions as the daemon,
 * then wake the daemon if one runs; one that does not picks the change up when it starts. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "agent/cli.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"
#include "compose/compose.h"
#include "reconciler/desired.h"
#include "sources/local.h"
#include "store/store.h"

#define ATTACHED_FILE_MAX                                                                          \
    (1u << 20) /* one file given with --file or referenced by the manifest                         \
                */

int cli_open_store(const struct config *cfg, unsigned flags, struct store **ret)
{
    char path[4096], err[1024] = "";
    if (snprintf(path, sizeof(path), "%s/store.db", cfg->agent.state_dir) >= (int)sizeof(path)) {
        fprintf(stderr, "axion-agent: agent.state_dir is too long\n");
        return -ENAMETOOLONG;
    }
    if (!(flags & STORE_OPEN_EXISTING) && mkdir(cfg->agent.state_dir, 0750) < 0 &&
        errno != EEXIST) {
        int r = -errno;
        fprintf(stderr, "axion-agent: cannot create state directory %s: %s\n", cfg->agent.state_dir,
                strerror(errno));
        return r;
    }
    int r = store_open(path, flags, ret, err, sizeof(err));
    if (r == -ENOENT && (flags & STORE_OPEN_EXISTING)) {
        fprintf(stderr, "axion-agent: no store at %s yet (nothing was applied)\n", path);
        return r;
    }
    if (r < 0)
        fprintf(stderr, "axion-agent: %s\n", *err ? err : strerror(-r));
    return r;
}

int cli_open(struct cli_ctx *ctx, unsigned store_flags, struct config *ret_cfg,
             struct store **ret_st)
{
    int r = cli_load_config(ctx, ret_cfg);
    if (r < 0)
        return r;
    r = cli_open_store(ret_cfg, store_flags, ret_st);
    if (r < 0)
        config_free(ret_cfg);
    return r;
}

void cli_close(struct config *cfg, struct store *st)
{
    store_close(st);
    config_free(cfg);
}

void cli_wake_daemon(const struct config *cfg)
{
    int r = local_send(cfg->local.socket, "wake");
    if (r == 0)
        fprintf(stderr, "(no daemon is running: the change is applied when it starts)\n");
    else if (r < 0)
        fprintf(stderr, "axion-agent: could not wake the daemon at %s: %s\n", cfg->local.socket,
                strerror(-r));
}

static int read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
    FILE *f = fopen(path, "rbe");
    if (!f)
        return -errno;
    struct buf b = BUF_INIT(max);
    char chunk[8192];
    size_t n;
    int r = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if ((r = buf_append(&b, chunk, n)) < 0)
            break;
    if (r == 0 && ferror(f))
        r = -EIO;
    fclose(f);
    if (r < 0)
        return r;
    *ret = buf_detach(&b, ret_len);
    return *ret ? 0 : -ENOMEM;
}

/* "K=V" → object[K] = V. */
static int put_assignment(json_t *obj, const char *arg, const char *flag)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        fprintf(stderr, "axion-agent apply: %s: expected NAME=VALUE, got \"%s\"\n", flag, arg);
        return -EINVAL;
    }
    _cleanup_free_ char *k = strndup(arg, (size_t)(eq - arg));
    if (!k || json_object_set_new(obj, k, json_string(eq + 1)) < 0)
        return -ENOMEM;
    return 0;
}

/* Files the manifest references (configs/secrets `file:`, env_file) that were not given with
 * --file are read from beside the manifest, by the name it uses. */
static int attach_referenced(const char *manifest_path, const char *compose, size_t len,
                             json_t *vars, json_t *files)
{
    _cleanup_free_ char *dup = strdup(manifest_path);
    if (!dup)
        return -ENOMEM;
    const char *dir = dirname(dup);
    char **refs = NULL;
    size_t n = 0;
    _cleanup_free_ char *vars_json = json_dumps(vars, JSON_COMPACT);
    int r = vars_json ? desired_referenced_files(compose, len, vars_json, &refs, &n) : -ENOMEM;
    if (r < 0)
        return 0; /* a bad manifest: validation says why */
    for (size_t i = 0; i < n && r == 0; i++) {
        if (json_object_get(files, refs[i]))
            continue;
        char path[4096];
        if (refs[i][0] == '/')
            snprintf(path, sizeof(path), "%s", refs[i]);
        else
            snprintf(path, sizeof(path), "%s/%s", dir, refs[i]);
        char *content = NULL;
        size_t clen = 0;
        r = read_file(path, ATTACHED_FILE_MAX, &content, &clen);
        if (r < 0) {
            fprintf(stderr, "axion-agent apply: %s: file %s referenced by the manifest: %s%s\n",
                    manifest_path, path, r == -EMSGSIZE ? "larger than 1 MiB" : strerror(-r),
                    r == -ENOENT ? " (give it with --file NAME=PATH)" : "");
            break;
        }
        json_t *s = json_stringn(content, clen);
        free(content);
        if (!s) {
            fprintf(stderr, "axion-agent apply: %s: file %s is not UTF-8 text\n", manifest_path,
                    path);
            r = -EINVAL;
            break;
        }
        json_object_set_new(files, refs[i], s);
    }
    for (size_t i = 0; i < n; i++)
        free(refs[i]);
    free(refs);
    return r;
}

static void policy_from_config(const struct config *cfg, struct policy_rules *ret)
{
    *ret = (struct policy_rules){
        .allow_privileged = cfg->policy.allow_privileged,
        .allow_host_namespaces = cfg->policy.allow_host_namespaces,
        .allow_cap_add = cfg->policy.allow_cap_add,
        .allow_devices = cfg->policy.allow_devices,
        .bind_allow = cfg->policy.bind_allow.v,
        .n_bind_allow = cfg->policy.bind_allow.n,
    };
}

void cli_desired_opts(const struct config *cfg, struct policy_rules *policy,
                      struct desired_opts *ret)
{
    policy_from_config(cfg, policy);
    *ret = (struct desired_opts){.agent_id = cfg->agent.id, .policy = policy};
}

int cli_apply(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"file", required_argument, NULL, 'f'}, {"name", required_argument, NULL, 'n'},
        {"var", required_argument, NULL, 'v'},  {"attach", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},       {0},
    };
    const char *manifest = NULL, *stack = NULL;
    json_auto_t *vars = json_object(), *files = json_object();
    int c;
    if (!vars || !files)
        return 1;
    while ((c = getopt_long(argc, argv, "f:n:v:a:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            manifest = optarg;
            break;
        case 'n':
            stack = optarg;
            break;
        case 'v':
            if (put_assignment(vars, optarg, "--var") < 0)
                return 1;
            break;
        case 'a': {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) {
                fprintf(stderr, "axion-agent apply: --attach: expected NAME=PATH, got \"%s\"\n",
                        optarg);
                return 1;
            }
            _cleanup_free_ char *name = strndup(optarg, (size_t)(eq - optarg));
            char *content = NULL;
            size_t len = 0;
            int r = read_file(eq + 1, ATTACHED_FILE_MAX, &content, &len);
            if (r < 0) {
                fprintf(stderr, "axion-agent apply: --attach %s: %s\n", eq + 1,
                        r == -EMSGSIZE ? "larger than 1 MiB" : strerror(-r));
                return 1;
            }
            json_object_set_new(files, name, json_stringn(content, len));
            free(content);
            break;
        }
        case 'h':
            printf("Usage: axion-agent apply -f FILE -n STACK [--var K=V ...] [--attach "
                   "NAME=PATH ...]\n\n"
                   "Validates the Compose manifest (parse, policy, conversion) and writes it as\n"
                   "the next generation of STACK; then wakes the daemon. Files the manifest\n"
                   "references (configs/secrets file:, env_file) are read from beside it unless\n"
                   "given with --attach. A bad manifest is refused and the stored generation\n"
                   "stays as it was.\n\n"
                   "  -f, --file FILE        the Compose file\n"
                   "  -n, --name STACK       the stack name\n"
                   "  -v, --var K=V          a variable for ${K} interpolation (repeatable)\n"
                   "  -a, --attach NAME=PATH content for a file the manifest names\n");
            return 0;
        default:
            return 1;
        }
    }
    if (!manifest || !stack) {
        fprintf(stderr, "axion-agent apply: need -f FILE and -n STACK (see --help)\n");
        return 1;
    }
    struct config cfg;
    if (cli_load_config(ctx, &cfg) < 0)
        return 1;
    int rc = 1;
    char *compose = NULL, *vars_json = NULL, *files_json = NULL;
    size_t len = 0;
    struct store *st = NULL;
    int r = read_file(manifest, COMPOSE_MAX_BYTES, &compose, &len);
    if (r < 0) {
        fprintf(stderr, "axion-agent apply: %s: %s\n", manifest,
                r == -EMSGSIZE ? "larger than the 1 MiB manifest limit" : strerror(-r));
        goto out;
    }
    if (attach_referenced(manifest, compose, len, vars, files) < 0)
        goto out;
    vars_json = json_dumps(vars, JSON_COMPACT | JSON_SORT_KEYS);
    files_json = json_dumps(files, JSON_COMPACT | JSON_SORT_KEYS);
    if (!vars_json || !files_json)
        goto out;
    struct policy_rules policy;
    struct desired_opts dopts;
    cli_desired_opts(&cfg, &policy, &dopts);
    char err[1024] = "";
    r = desired_validate(stack, manifest, compose, len, vars_json, files_json, &dopts, stderr, err,
                         sizeof(err));
    if (r < 0) {
        fprintf(stderr, "axion-agent apply: %s\n", err);
        goto out;
    }
    if (cli_open_store(&cfg, 0, &st) < 0)
        goto out;
    struct store_stack s = {
        .name = (char *)stack,
        .compose = compose,
        .compose_len = len,
        .files_json = files_json,
        .variables_json = vars_json,
        .source = "cli",
    };
    int64_t gen = 0;
    r = store_put_stack(st, &s, &gen);
    if (r < 0) {
        fprintf(stderr, "axion-agent apply: %s\n", store_errmsg(st));
        goto out;
    }
    printf("stack %s: generation %lld written\n", stack, (long long)gen);
    cli_wake_daemon(&cfg);
    rc = 0;
out:
    store_close(st);
    free(compose);
    free(vars_json);
    free(files_json);
    config_free(&cfg);
    return rc;
}

/* STACK or STACK/SERVICE → its parts (service "" for the whole stack). */
static int split_target(const char *arg, char **ret_stack, char **ret_service)
{
    const char *slash = strchr(arg, '/');
    char *stack = slash ? strndup(arg, (size_t)(slash - arg)) : strdup(arg);
    char *service = strdup(slash ? slash + 1 : "");
    if (!stack || !service || !*stack || (slash && !*service)) {
        free(stack);
        free(service);
        return -EINVAL;
    }
    *ret_stack = stack;
    *ret_service = service;
    return 0;
}

/* The service must exist in the stack's current manifest. */
static int check_service(struct store *st, const char *stack, const char *service, const char *cmd)
{
    struct store_stack *s = NULL;
    int r = store_get_stack(st, stack, &s);
    if (r == -ENOENT || (r == 0 && s->removed)) {
        fprintf(stderr, "axion-agent %s: no stack named \"%s\"\n", cmd, stack);
        store_stack_free(s);
        return -ENOENT;
    }
    if (r < 0) {
        fprintf(stderr, "axion-agent %s: %s\n", cmd, store_errmsg(st));
        return r;
    }
    if (*service) {
        r = desired_has_service(s->compose, s->compose_len, s->variables_json, service);
        if (r == 0)
            fprintf(stderr, "axion-agent %s: stack \"%s\" has no service \"%s\"\n", cmd, stack,
                    service);
        r = r > 0 ? 0 : -ENOENT;
    }
    store_stack_free(s);
    return r;
}

enum override_cmd { OV_SCALE, OV_STOP, OV_START, OV_RESTART };

static int override_command(struct cli_ctx *ctx, int argc, char **argv, enum override_cmd what)
{
    static const char *const names[] = {"scale", "stop", "start", "restart"};
    static const char *const usage[] = {
        "Usage: axion-agent scale STACK/SERVICE=N\n\nSets the service's replicas to N (and "
        "starts it if it was stopped).\nThe override stays until the next scale; a new "
        "deploy keeps it.\n",
        "Usage: axion-agent stop STACK[/SERVICE]\n\nStops the service (or every service of "
        "the stack): replicas 0, the\nwanted replicas remembered for start.\n",
        "Usage: axion-agent start STACK[/SERVICE]\n\nUndoes stop: the remembered replicas "
        "come back.\n",
        "Usage: axion-agent restart STACK[/SERVICE]\n\nRestarts the tasks of the service (or "
        "of every service of the stack)\nwith a rolling update (TaskTemplate.ForceUpdate).\n",
    };
    const char *cmd = names[what];
    if (cli_wants_help(argc, argv)) {
        fputs(usage[what], stdout);
        return 0;
    }
    if (argc != 2) {
        fputs(usage[what], stderr);
        return 1;
    }
    _cleanup_free_ char *target = strdup(argv[1]);
    if (!target)
        return 1;
    long long replicas = -1;
    if (what == OV_SCALE) {
        char *eq = strrchr(target, '=');
        char *end = NULL;
        if (eq) {
            errno = 0;
            replicas = strtoll(eq + 1, &end, 10);
        }
        if (!eq || !*(eq + 1) || *end || errno || replicas < 0 || replicas > 100000) {
            fprintf(stderr,
                    "axion-agent scale: expected STACK/SERVICE=N with N from 0 to 100000, got "
                    "\"%s\"\n",
                    argv[1]);
            return 1;
        }
        *eq = '\0';
    }
    _cleanup_free_ char *stack = NULL, *service = NULL;
    if (split_target(target, &stack, &service) < 0 || (what == OV_SCALE && !*service)) {
        fprintf(stderr, "axion-agent %s: expected %s, got \"%s\"\n", cmd,
                what == OV_SCALE ? "STACK/SERVICE=N" : "STACK or STACK/SERVICE", argv[1]);
        return 1;
    }
    struct config cfg;
    struct store *st;
    if (cli_open(ctx, STORE_OPEN_EXISTING, &cfg, &st) < 0)
        return 1;
    int rc = 1, r;
    if (check_service(st, stack, service, cmd) < 0)
        goto out;
    r = store_begin(st);
    switch (what) {
    case OV_SCALE:
        if (r == 0)
            r = store_set_replicas(st, stack, service, replicas);
        if (r == 0)
            r = store_set_stopped(st, stack, service, false);
        break;
    case OV_STOP:
    case OV_START:
        if (r == 0)
            r = store_set_stopped(st, stack, service, what == OV_STOP);
        break;
    case OV_RESTART:
        if (r == 0)
            r = store_bump_restart(st, stack, service, NULL);
        break;
    }
    if (r == 0)
        r = store_commit(st);
    else
        store_rollback(st);
    if (r < 0) {
        fprintf(stderr, "axion-agent %s: %s\n", cmd, store_errmsg(st));
        goto out;
    }
    switch (what) {
    case OV_SCALE:
        printf("%s/%s: replicas %lld\n", stack, service, replicas);
        break;
    case OV_STOP:
        printf("%s%s%s: stopped\n", stack, *service ? "/" : "", service);
        break;
    case OV_START:
        printf("%s%s%s: started\n", stack, *service ? "/" : "", service);
        break;
    case OV_RESTART:
        printf("%s%s%s: restart requested\n", stack, *service ? "/" : "", service);
        break;
    }
    cli_wake_daemon(&cfg);
    rc = 0;
out:
    cli_close(&cfg, st);
    return rc;
}

int cli_scale(struct cli_ctx *ctx, int argc, char **argv)
{
    return override_command(ctx, argc, argv, OV_SCALE);
}

int cli_stop(struct cli_ctx *ctx, int argc, char **argv)
{
    return override_command(ctx, argc, argv, OV_STOP);
}

int cli_start(struct cli_ctx *ctx, int argc, char **argv)
{
    return override_command(ctx, argc, argv, OV_START);
}

int cli_restart(struct cli_ctx *ctx, int argc, char **argv)
{
    return override_command(ctx, argc, argv, OV_RESTART);
}

int cli_rm(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("Usage: axion-agent rm STACK\n\nMarks the stack removed: the reconciler removes "
               "its services, networks,\nconfigs and secrets, then forgets it.\n");
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "Usage: axion-agent rm STACK\n");
        return 1;
    }
    struct config cfg;
    struct store *st;
    if (cli_open(ctx, STORE_OPEN_EXISTING, &cfg, &st) < 0)
        return 1;
    int rc = 1;
    if (check_service(st, argv[1], "", "rm") < 0)
        goto out;
    if (store_mark_stack_removed(st, argv[1], 0, "cli") < 0) {
        fprintf(stderr, "axion-agent rm: %s\n", store_errmsg(st));
        goto out;
    }
    printf("stack %s: marked removed\n", argv[1]);
    cli_wake_daemon(&cfg);
    rc = 0;
out:
    cli_close(&cfg, st);
    return rc;
}

/* --- status and events --------------------------------------------------------------------- */

static void format_time(int64_t ms, char *out, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *status_json(struct store *st, const struct store_stack *s)
{
    struct store_stack_status *ss = NULL;
    struct store_apply *ap = NULL;
    json_t *o = json_pack("{s:s, s:I, s:b, s:s?}", "stack", s->name, "generation",
                          (json_int_t)s->generation, "removed", s->removed, "source", s->source);
    if (!o)
        return NULL;
    if (store_get_stack_status(st, s->name, &ss) == 0) {
        json_object_set_new(o, "state", json_string(store_stack_state_to_string(ss->state)));
        json_object_set_new(o, "reason", json_string(ss->reason ? ss->reason : ""));
        json_t *services = ss->services_json ? json_loads(ss->services_json, 0, NULL) : NULL;
        json_object_set_new(o, "services", services ? services : json_array());
        json_object_set_new(o, "updated_at", json_integer(ss->updated_at));
    } else {
        json_object_set_new(o, "state", json_string("pending"));
        json_object_set_new(o, "reason", json_string("not reconciled yet"));
        json_object_set_new(o, "services", json_array());
    }
    if (store_last_apply(st, s->name, &ap) == 0)
        json_object_set_new(o, "last_apply",
                            json_pack("{s:I, s:I, s:I, s:s?}", "generation",
                                      (json_int_t)ap->generation, "started_at",
                                      (json_int_t)ap->started_at, "finished_at",
                                      (json_int_t)ap->finished_at, "result", ap->result));
    struct store_event *ev = NULL;
    size_t n = 0;
    json_t *events = json_array();
    if (store_list_events(st, STORE_EVENTS_TAIL, 5, s->name, &ev, &n) == 0) {
        for (size_t i = 0; i < n; i++)
            json_array_append_new(events,
                                  json_pack("{s:I, s:s, s:s?, s:s}", "ts", (json_int_t)ev[i].ts,
                                            "level", log_level_to_string(ev[i].level), "object",
                                            ev[i].object, "message", ev[i].message));
        store_event_array_free(ev, n);
    }
    json_object_set_new(o, "events", events);
    store_stack_status_free(ss);
    store_apply_free(ap);
    return o;
}

static void print_status_text(json_t *o)
{
    printf("%s  generation %lld  %s", json_string_value(json_object_get(o, "stack")),
           (long long)json_integer_value(json_object_get(o, "generation")),
           json_string_value(json_object_get(o, "state")));
    const char *reason = json_string_value(json_object_get(o, "reason"));
    if (reason && *reason)
        printf(" (%s)", reason);
    putchar('\n');
    size_t i;
    json_t *svc;
    json_array_foreach(json_object_get(o, "services"), i, svc)
    {
        printf("  %-24s %lld/%lld %s", json_string_value(json_object_get(svc, "name")),
               (long long)json_integer_value(json_object_get(svc, "running")),
               (long long)json_integer_value(json_object_get(svc, "desired")),
               json_is_true(json_object_get(svc, "job")) ? "completed" : "running");
        json_int_t failed = json_integer_value(json_object_get(svc, "failed"));
        if (failed)
            printf("  (%lld failed tasks)", (long long)failed);
        putchar('\n');
    }
    json_t *ap = json_object_get(o, "last_apply");
    if (ap) {
        char when[32];
        format_time(json_integer_value(json_object_get(ap, "started_at")), when, sizeof(when));
        const char *res = json_string_value(json_object_get(ap, "result"));
        printf("  last apply: generation %lld at %s: %s\n",
               (long long)json_integer_value(json_object_get(ap, "generation")), when,
               res ? res : "running");
    }
    json_t *ev;
    json_array_foreach(json_object_get(o, "events"), i, ev)
    {
        char when[32];
        format_time(json_integer_value(json_object_get(ev, "ts")), when, sizeof(when));
        printf("  %s %-5s %s\n", when, json_string_value(json_object_get(ev, "level")),
               json_string_value(json_object_get(ev, "message")));
    }
}

int cli_output_flag(const char *v, bool *ret_json, const char *cmd)
{
    if (streq(v, "json"))
        *ret_json = true;
    else if (streq(v, "text"))
        *ret_json = false;
    else {
        fprintf(stderr, "axion-agent %s: --output: expected text or json, got \"%s\"\n", cmd, v);
        return -EINVAL;
    }
    return 0;
}

int cli_status(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'}, {"help", no_argument, NULL, 'h'}, {0}};
    bool json = false;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        if (c == 'h') {
            printf("Usage: axion-agent status [STACK] [--output text|json]\n\n"
                   "Per stack: generation, state (converged, progressing, degraded, failed,\n"
                   "pending, removed) with its reason, per service running vs desired replicas,\n"
                   "the last apply and recent events.\n");
            return 0;
        }
        if (c != 'o' || cli_output_flag(optarg, &json, "status") < 0)
            return 1;
    }
    const char *only = optind < argc ? argv[optind] : NULL;
    struct config cfg;
    struct store *st;
    if (cli_open(ctx, STORE_OPEN_EXISTING, &cfg, &st) < 0)
        return 1;
    struct store_stack *stacks = NULL;
    size_t n = 0;
    int rc = 1;
    if (store_list_stacks(st, STORE_LIST_SUMMARY | STORE_LIST_REMOVED, &stacks, &n) < 0) {
        fprintf(stderr, "axion-agent status: %s\n", store_errmsg(st));
        goto out;
    }
    json_t *all = json_array();
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        if (only && !streq(stacks[i].name, only))
            continue;
        found = true;
        json_t *o = status_json(st, &stacks[i]);
        if (!o)
            continue;
        if (json)
            json_array_append(all, o);
        else
            print_status_text(o);
        json_decref(o);
    }
    if (only && !found) {
        fprintf(stderr, "axion-agent status: no stack named \"%s\"\n", only);
        json_decref(all);
        goto out;
    }
    if (json) {
        json_dumpf(all, stdout, JSON_INDENT(2));
        putchar('\n');
    } else if (n == 0) {
        printf("no stacks\n");
    }
    json_decref(all);
    rc = 0;
out:
    store_stack_array_free(stacks, n);
    cli_close(&cfg, st);
    return rc;
}

int cli_events(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"stack", required_argument, NULL, 's'},
                                         {"limit", required_argument, NULL, 'n'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    bool json = false;
    const char *stack = NULL;
    long limit = 50;
    int c;
    while ((c = getopt_long(argc, argv, "s:n:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            stack = optarg;
            break;
        case 'n': {
            char *end;
            limit = strtol(optarg, &end, 10);
            if (*end || limit <= 0 || limit > 5000) {
                fprintf(stderr, "axion-agent events: --limit: expected 1..5000, got \"%s\"\n",
                        optarg);
                return 1;
            }
            break;
        }
        case 'o':
            if (cli_output_flag(optarg, &json, "events") < 0)
                return 1;
            break;
        case 'h':
            printf("Usage: axion-agent events [--stack S] [--limit N] [--output text|json]\n\n"
                   "Shows the newest events of the reconciler (drift, applies, failures),\n"
                   "oldest first.\n");
            return 0;
        default:
            return 1;
        }
    }
    struct config cfg;
    struct store *st;
    if (cli_open(ctx, STORE_OPEN_EXISTING, &cfg, &st) < 0)
        return 1;
    struct store_event *ev = NULL;
    size_t n = 0;
    int rc = 1;
    if (store_list_events(st, STORE_EVENTS_TAIL, (size_t)limit, stack, &ev, &n) < 0) {
        fprintf(stderr, "axion-agent events: %s\n", store_errmsg(st));
        goto out;
    }
    json_t *all = json_array();
    for (size_t i = 0; i < n; i++) {
        char when[32];
        format_time(ev[i].ts, when, sizeof(when));
        if (json)
            json_array_append_new(
                all, json_pack("{s:I, s:s, s:s, s:s?, s:s?, s:s}", "id", (json_int_t)ev[i].id,
                               "time", when, "level", log_level_to_string(ev[i].level), "stack",
                               ev[i].stack, "object", ev[i].object, "message", ev[i].message));
        else
            printf("%s %-5s %-12s %s\n", when, log_level_to_string(ev[i].level),
                   ev[i].stack ? ev[i].stack : "-", ev[i].message);
    }
    if (json) {
        json_dumpf(all, stdout, JSON_INDENT(2));
        putchar('\n');
    }
    json_decref(all);
    rc = 0;
out:
    store_event_array_free(ev, n);
    cli_close(&cfg, st);
    return rc;
}

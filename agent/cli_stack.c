/* The CLI commands that change desired state (apply, rm, scale, stop, start, restart) and the
 * ones that read it back (status, events). The writers are thin clients of the intake
 * (sources/intake.h), the one door every channel uses: they build a request, print the
 * outcome, and wake the daemon if one runs; one that does not picks the change up when it
 * starts. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/cli.h"
#include "agent/setup.h"
#include "lib/buf.h"
#include "lib/fileio.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sources/intake.h"
#include "sources/local.h"
#include "store/store.h"

extern char **environ;

int cli_open(struct cli_ctx *ctx, unsigned store_flags, struct config *ret_cfg,
             struct store **ret_st)
{
    int r = cli_load_config(ctx, ret_cfg);
    if (r < 0)
        return r;
    r = setup_open_store(ret_cfg, store_flags, ret_st);
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

/* Hands one request to the intake of the store cfg names and prints what came of it: 0 when
 * accepted (the daemon woken), -1 after printing the refusal or the error as "axion-agent
 * CMD: ...". ret_res (may be NULL) keeps the result for the caller to print more. */
static int submit(const struct config *cfg, struct store *st, const char *cmd,
                  const struct intake_request *rq, struct intake_result *ret_res)
{
    struct intake *in = NULL;
    struct intake_result res = {0};
    int r = setup_intake(cfg, st, &in);
    if (r < 0)
        return -1;
    r = intake_submit(in, rq, &res);
    intake_free(in);
    if (r < 0 || res.outcome != INTAKE_ACCEPTED) {
        fprintf(stderr, "axion-agent %s: %s\n", cmd, *res.error ? res.error : strerror(-r));
        if (ret_res)
            *ret_res = res;
        else
            intake_result_release(&res);
        return -1;
    }
    for (size_t i = 0; i < res.n_notes; i++)
        fprintf(stderr, "%s\n", res.notes[i]);
    if (ret_res)
        *ret_res = res;
    else
        intake_result_release(&res);
    return 0;
}

/* --- apply ------------------------------------------------------------------------------------ */

#define ATTACHED_FILE_MAX INTAKE_FILE_MAX /* one file given with --attach or read from beside */

/* Reads a manifest or an attached file: a regular file only (a FIFO, a directory, a device is
 * refused by name and never waited on), at most max bytes; why says "PATH: cause". */
static int read_file(const char *path, size_t max, char **ret, size_t *ret_len, char *why,
                     size_t whylen)
{
    return fileio_read(path, max, ret, ret_len, why, whylen);
}

/* What apply hands the intake: variables and attached files as arrays, and the files read from
 * beside the manifest on the compiler's demand; all of it freed after the request. */
struct apply {
    const char *manifest;
    char base_dir[PATH_MAX];
    const char *home_dir;
    struct compose_var *vars; /* names are ours, values point into argv */
    size_t n_vars;
    struct compose_var *env; /* names are ours, values point into environ */
    size_t n_env;
    struct spec_file *files; /* --attach: names and data are ours */
    size_t n_files;
    char **read; /* what the lookup read from beside the manifest */
    size_t n_read;
    char **missing; /* the names the lookup did not find there */
    size_t n_missing;
};

static void apply_release(struct apply *a)
{
    for (size_t i = 0; i < a->n_vars; i++)
        free((char *)a->vars[i].name);
    for (size_t i = 0; i < a->n_env; i++)
        free((char *)a->env[i].name);
    for (size_t i = 0; i < a->n_files; i++) {
        free((char *)a->files[i].name);
        free((void *)a->files[i].data);
    }
    for (size_t i = 0; i < a->n_read; i++)
        free(a->read[i]);
    for (size_t i = 0; i < a->n_missing; i++)
        free(a->missing[i]);
    free(a->vars);
    free(a->env);
    free(a->files);
    free(a->read);
    free(a->missing);
}

static int grow(void **v, size_t n, size_t size)
{
    void *nv = realloc(*v, (n + 1) * size);
    if (!nv)
        return -ENOMEM;
    *v = nv;
    return 0;
}

/* "K=V" → a variable (the name copied, the value borrowed from arg). */
static int add_var(struct compose_var **v, size_t *n, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return -EINVAL;
    char *name = strndup(arg, (size_t)(eq - arg));
    if (!name || grow((void **)v, *n, sizeof(**v)) < 0) {
        free(name);
        return -ENOMEM;
    }
    (*v)[(*n)++] = (struct compose_var){name, eq + 1};
    return 0;
}

static int add_attach(struct apply *a, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1]) {
        fprintf(stderr, "axion-agent apply: --attach: expected NAME=PATH, got \"%s\"\n", arg);
        return -EINVAL;
    }
    char *content = NULL, why[512];
    size_t len = 0;
    int r = read_file(eq + 1, ATTACHED_FILE_MAX, &content, &len, why, sizeof(why));
    if (r < 0) {
        fprintf(stderr, "axion-agent apply: --attach %.*s: %s\n", (int)(eq - arg), arg, why);
        return r;
    }
    char *name = strndup(arg, (size_t)(eq - arg));
    if (!name || grow((void **)&a->files, a->n_files, sizeof(*a->files)) < 0) {
        free(name);
        free(content);
        return -ENOMEM;
    }
    a->files[a->n_files++] = (struct spec_file){name, content, len};
    return 0;
}

/* Where a file the manifest names lies: beside the manifest, or where an absolute name says. */
static int beside_path(const struct apply *a, const char *name, char *ret, size_t len)
{
    while (name[0] == '.' && name[1] == '/')
        for (name += 2; *name == '/';)
            name++;
    int n = name[0] == '/' ? snprintf(ret, len, "%s", name)
                           : snprintf(ret, len, "%s%s%s", a->base_dir,
                                      streq(a->base_dir, "/") ? "" : "/", name);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The compiler asks for a file the manifest names and --attach did not give: it is read from
 * beside the manifest (an absolute name as it is). */
static int beside_manifest(void *ud, const char *name, struct spec_file *ret, char *why,
                           size_t whylen)
{
    struct apply *a = ud;
    char path[PATH_MAX];
    if (beside_path(a, name, path, sizeof(path)) < 0) {
        snprintf(why, whylen, "the path of %s is too long", name);
        return -ENAMETOOLONG;
    }
    char *content = NULL;
    size_t len = 0;
    int r = read_file(path, ATTACHED_FILE_MAX, &content, &len, why, whylen);
    if (r == -ENOENT) {
        /* The compiler names the place that needs it; apply adds how to give it. */
        char *m = strdup(name);
        if (!m || grow((void **)&a->missing, a->n_missing, sizeof(*a->missing)) < 0) {
            free(m);
            return -ENOMEM;
        }
        a->missing[a->n_missing++] = m;
        return -ENOENT;
    }
    if (r < 0)
        return r;
    if (grow((void **)&a->read, a->n_read, sizeof(*a->read)) < 0) {
        free(content);
        return -ENOMEM;
    }
    a->read[a->n_read++] = content;
    *ret = (struct spec_file){name, content, len};
    return 0;
}

/* The manifest's directory, absolute and cleaned the way `docker stack deploy` makes it
 * (filepath.Abs: the working directory joined, "." and ".." resolved by name, symlinks
 * left alone). */
static int manifest_dir(const char *manifest, char *ret, size_t len)
{
    char joined[PATH_MAX * 2];
    const char *slash = strrchr(manifest, '/');
    int dirlen = slash ? (int)(slash - manifest) : 0, n;
    if (manifest[0] == '/') {
        n = snprintf(joined, sizeof(joined), "%.*s/", dirlen, manifest);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd)))
            return -errno;
        n = snprintf(joined, sizeof(joined), "%s/%.*s", cwd, dirlen, manifest);
    }
    if (n < 0 || (size_t)n >= sizeof(joined))
        return -ENAMETOOLONG; /* refused, never cut */
    /* Clean: split on '/', drop "" and ".", ".." pops. */
    size_t out = 0;
    ret[0] = '\0';
    for (char *save = NULL, *part = strtok_r(joined, "/", &save); part;
         part = strtok_r(NULL, "/", &save)) {
        if (streq(part, "."))
            continue;
        if (streq(part, "..")) {
            char *up = strrchr(ret, '/');
            out = up ? (size_t)(up - ret) : 0;
            ret[out] = '\0';
            continue;
        }
        size_t pl = strlen(part);
        if (out + 1 + pl + 1 > len)
            return -ENAMETOOLONG;
        ret[out++] = '/';
        memcpy(ret + out, part, pl + 1);
        out += pl;
    }
    if (out == 0)
        snprintf(ret, len, "/");
    return 0;
}

/* The caller's home: $HOME when it is an absolute path, else the passwd entry. */
static const char *caller_home(void)
{
    const char *home = getenv("HOME");
    if (home && home[0] == '/')
        return home;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
}

static int add_environment(struct apply *a)
{
    for (char **e = environ; e && *e; e++) {
        int r = add_var(&a->env, &a->n_env, *e);
        if (r == -ENOMEM)
            return r;
    }
    return 0;
}

/* Reads the manifest and hands it to the intake with what the options collected. */
static int apply_run(struct cli_ctx *ctx, struct apply *a, const char *stack)
{
    int rc = 1;
    _cleanup_free_ char *compose = NULL;
    size_t len = 0;
    char why[512];
    int r = read_file(a->manifest, COMPOSE_MAX_BYTES, &compose, &len, why, sizeof(why));
    if (r < 0) {
        fprintf(stderr, "axion-agent apply: -f %s%s\n", why,
                r == -EFBIG ? " (the manifest limit is 1 MiB)" : "");
        return 1;
    }
    struct config cfg;
    struct store *st;
    if (cli_open(ctx, 0, &cfg, &st) < 0)
        return 1;
    struct intake_request rq = {
        .kind = INTAKE_DEPLOY,
        .source = "cli",
        .stack = stack,
        .filename = a->manifest,
        .compose = compose,
        .compose_len = len,
        .vars = a->vars,
        .n_vars = a->n_vars,
        .env = a->env,
        .n_env = a->n_env,
        .files = a->files,
        .n_files = a->n_files,
        .lookup = {beside_manifest, a},
        .base_dir = a->base_dir,
        .home_dir = a->home_dir,
    };
    struct intake_result res = {0};
    if (submit(&cfg, st, "apply", &rq, &res) == 0) {
        printf("stack %s: generation %lld written\n", stack, (long long)res.generation);
        cli_wake_daemon(&cfg);
        rc = 0;
    } else {
        for (size_t i = 0; i < a->n_missing; i++) {
            char path[PATH_MAX];
            if (beside_path(a, a->missing[i], path, sizeof(path)) == 0)
                fprintf(stderr,
                        "axion-agent apply: %s does not exist; give the file with --attach "
                        "%s=PATH\n",
                        path, a->missing[i]);
        }
    }
    intake_result_release(&res);
    cli_close(&cfg, st);
    return rc;
}

int cli_apply(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"file", required_argument, NULL, 'f'},
        {"name", required_argument, NULL, 'n'},
        {"var", required_argument, NULL, 'v'},
        {"attach", required_argument, NULL, 'a'},
        {"env", no_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        CLI_GLOBAL_OPTIONS,
    };
    const char *stack = NULL;
    bool use_env = false;
    struct apply a = {0};
    int c, rc = 1;
    while ((c = cli_getopt(ctx, "apply", argc, argv, "f:n:v:a:eh" CLI_GLOBAL_SHORT, opts)) != -1) {
        switch (c) {
        case 'f':
            a.manifest = optarg;
            break;
        case 'n':
            stack = optarg;
            break;
        case 'v': {
            int r = add_var(&a.vars, &a.n_vars, optarg);
            if (r == -EINVAL)
                fprintf(stderr, "axion-agent apply: --var: expected NAME=VALUE, got \"%s\"\n",
                        optarg);
            if (r < 0)
                goto out;
            break;
        }
        case 'a':
            if (add_attach(&a, optarg) < 0)
                goto out;
            break;
        case 'e':
            use_env = true;
            break;
        case 'h':
            printf("Usage: axion-agent apply -f FILE -n STACK [--var K=V ...] [--env] [--attach "
                   "NAME=PATH ...]\n\n"
                   "Validates the Compose manifest (parse, policy, conversion) and writes it as\n"
                   "the next generation of STACK; then wakes the daemon. Files the manifest\n"
                   "names (configs/secrets file:, env_file) are read from beside it unless\n"
                   "given with --attach. Relative bind sources (./data:/data) resolve against\n"
                   "the manifest's directory and ~/ against your home, as `docker stack deploy`\n"
                   "does. A bad manifest is refused and the stored generation stays as it was.\n\n"
                   "  -f, --file FILE        the Compose file\n"
                   "  -n, --name STACK       the stack name\n"
                   "  -v, --var K=V          a variable for ${K} interpolation (repeatable)\n"
                   "  -e, --env              also take variables from your environment, as\n"
                   "                         docker does (--var wins; only the ones the\n"
                   "                         manifest names are stored)\n"
                   "  -a, --attach NAME=PATH content for a file the manifest names (wins over\n"
                   "                         the file beside the manifest)\n");
            rc = 0;
            goto out;
        default:
            goto out;
        }
    }
    if (!a.manifest || !stack) {
        fprintf(stderr, "axion-agent apply: need -f FILE and -n STACK (see --help)\n");
        goto out;
    }
    if (cli_positional("apply", argc, argv, 0, 0, NULL) < 0)
        goto out;
    if (use_env && add_environment(&a) < 0)
        goto out;
    int r = strnlen(a.manifest, FILEIO_PATH_MAX + 1) > FILEIO_PATH_MAX
                ? -ENAMETOOLONG
                : manifest_dir(a.manifest, a.base_dir, sizeof(a.base_dir));
    if (r < 0) {
        fprintf(stderr, "axion-agent apply: -f %.200s%s: the manifest's directory: %s\n",
                a.manifest, strlen(a.manifest) > 200 ? "..." : "",
                r == -ENAMETOOLONG ? "the path is longer than 4095 bytes (refused, not cut)"
                                   : strerror(-r));
        goto out;
    }
    a.home_dir = caller_home();

    rc = apply_run(ctx, &a, stack);
out:
    apply_release(&a);
    return rc;
}

/* --- rm, scale, stop, start, restart ---------------------------------------------------------- */

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

static int override_command(struct cli_ctx *ctx, int argc, char **argv, enum intake_kind what)
{
    static const char *const usage[_INTAKE_KIND_MAX] = {
        [INTAKE_SCALE] =
            "Usage: axion-agent scale STACK/SERVICE=N\n\nSets the service's replicas to N (and "
            "starts it if it was stopped).\nThe override stays until the next scale; a new "
            "deploy keeps it.\n",
        [INTAKE_STOP] =
            "Usage: axion-agent stop STACK[/SERVICE]\n\nStops the service (or every service of "
            "the stack): replicas 0, the\nwanted replicas remembered for start.\n",
        [INTAKE_START] = "Usage: axion-agent start STACK[/SERVICE]\n\nUndoes stop: the "
                         "remembered replicas come back.\n",
        [INTAKE_RESTART] =
            "Usage: axion-agent restart STACK[/SERVICE]\n\nRestarts the tasks of the service "
            "(or of every service of the stack)\nwith a rolling update "
            "(TaskTemplate.ForceUpdate).\n",
    };
    const char *cmd = intake_kind_to_string(what);
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, CLI_GLOBAL_OPTIONS};
    int c;
    while ((c = cli_getopt(ctx, cmd, argc, argv, "h" CLI_GLOBAL_SHORT, opts)) != -1) {
        if (c == 'h') {
            fputs(usage[what], stdout);
            return 0;
        }
        return 1;
    }
    if (cli_positional(cmd, argc, argv, 1, 1, usage[what]) < 0)
        return 1;
    const char *arg = argv[optind];
    _cleanup_free_ char *target = strdup(arg);
    if (!target)
        return 1;
    long long replicas = -1;
    if (what == INTAKE_SCALE) {
        char *eq = strrchr(target, '=');
        char *end = NULL;
        if (eq) {
            errno = 0;
            replicas = strtoll(eq + 1, &end, 10);
        }
        if (!eq || !*(eq + 1) || *end || errno || replicas < 0 || replicas > INTAKE_REPLICAS_MAX) {
            fprintf(stderr,
                    "axion-agent scale: expected STACK/SERVICE=N with N from 0 to 100000, got "
                    "\"%s\"\n",
                    arg);
            return 1;
        }
        *eq = '\0';
    }
    _cleanup_free_ char *stack = NULL, *service = NULL;
    if (split_target(target, &stack, &service) < 0 || (what == INTAKE_SCALE && !*service)) {
        fprintf(stderr, "axion-agent %s: expected %s, got \"%s\"\n", cmd,
                what == INTAKE_SCALE ? "STACK/SERVICE=N" : "STACK or STACK/SERVICE", arg);
        return 1;
    }
    struct config cfg;
    struct store *st;
    if (cli_open(ctx, STORE_OPEN_EXISTING, &cfg, &st) < 0)
        return 1;
    struct intake_request rq = {
        .kind = what,
        .source = "cli",
        .stack = stack,
        .service = service,
        .replicas = replicas,
    };
    int rc = 1;
    if (submit(&cfg, st, cmd, &rq, NULL) == 0) {
        const char *sep = *service ? "/" : "";
        switch (what) {
        case INTAKE_SCALE:
            printf("%s/%s: replicas %lld\n", stack, service, replicas);
            break;
        case INTAKE_STOP:
            printf("%s%s%s: stopped\n", stack, sep, service);
            break;
        case INTAKE_START:
            printf("%s%s%s: started\n", stack, sep, service);
            break;
        default:
            printf("%s%s%s: restart requested\n", stack, sep, service);
            break;
        }
        cli_wake_daemon(&cfg);
        rc = 0;
    }
    cli_close(&cfg, st);
    return rc;
}

int cli_scale(struct cli_ctx *ctx, int argc, char **argv)
{
    return override_command(ctx, argc, argv, INTAKE_SCALE);
}

int cli_stop(struct cli_ctx *ctx, int argc, char **argv)
{
    return override_command(ctx, argc, argv, INTAKE_STOP);
}

int cli_start(struct cli_ctx *ctx, int argc, char **argv)
{
    return override_command(ctx, argc, argv, INTAKE_START);
}

int cli_restart(struct cli_ctx *ctx, int argc, char **argv)
{
    return override_command(ctx, argc, argv, INTAKE_RESTART);
}

int cli_rm(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, CLI_GLOBAL_OPTIONS};
    int c;
    while ((c = cli_getopt(ctx, "rm", argc, argv, "h" CLI_GLOBAL_SHORT, opts)) != -1) {
        if (c == 'h') {
            printf("Usage: axion-agent rm STACK\n\nMarks the stack removed: the reconciler "
                   "removes its services, networks,\nconfigs and secrets, then forgets it.\n");
            return 0;
        }
        return 1;
    }
    if (cli_positional("rm", argc, argv, 1, 1, "Usage: axion-agent rm STACK\n") < 0)
        return 1;
    const char *name = argv[optind];
    struct config cfg;
    struct store *st;
    if (cli_open(ctx, STORE_OPEN_EXISTING, &cfg, &st) < 0)
        return 1;
    struct intake_request rq = {.kind = INTAKE_REMOVE, .source = "cli", .stack = name};
    int rc = 1;
    if (submit(&cfg, st, "rm", &rq, NULL) == 0) {
        printf("stack %s: marked removed\n", name);
        cli_wake_daemon(&cfg);
        rc = 0;
    }
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

/* What the daemon's parts said of themselves (channels, swarm): "channel.X" under
 * channels.X, any other key under its own name. */
static json_t *node_json(struct store *st)
{
    struct store_state *v = NULL;
    size_t n = 0;
    json_t *o = json_object(), *channels = json_object();
    if (!o || !channels || store_list_state(st, "", &v, &n) < 0) {
        json_decref(o);
        json_decref(channels);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *val = json_loads(v[i].value, 0, NULL);
        if (!val)
            continue;
        if (json_is_object(val))
            json_object_set_new(val, "updated_at", json_integer(v[i].updated_at));
        if (strncmp(v[i].key, "channel.", 8) == 0)
            json_object_set_new(channels, v[i].key + 8, val);
        else
            json_object_set_new(o, v[i].key, val);
    }
    json_object_set_new(o, "channels", channels);
    store_state_array_free(v, n);
    return o;
}

/* One line per part: "grpc: connected", "kafka: error (the broker's certificate ...)". */
/* A channel's partitions (Kafka): position, lag and last error of each. */
static void print_partitions(json_t *parts)
{
    size_t i;
    json_t *p;
    json_array_foreach(parts, i, p)
    {
        json_int_t lag = json_integer_value(json_object_get(p, "lag"));
        const char *error = json_string_value(json_object_get(p, "last_error"));
        char lag_text[32] = "unknown";
        if (lag >= 0)
            snprintf(lag_text, sizeof(lag_text), "%lld", (long long)lag);
        printf("  partition %lld: next offset %lld, committed %lld, lag %s%s%s\n",
               (long long)json_integer_value(json_object_get(p, "partition")),
               (long long)json_integer_value(json_object_get(p, "next_offset")),
               (long long)json_integer_value(json_object_get(p, "committed_offset")), lag_text,
               error && *error ? ", last error: " : "", error && *error ? error : "");
    }
}

static void print_node_text(json_t *node)
{
    const char *k;
    json_t *v;
    json_t *channels = json_object_get(node, "channels");
    json_object_foreach(channels, k, v)
    {
        const char *state = json_string_value(json_object_get(v, "state"));
        const char *error = json_string_value(json_object_get(v, "error"));
        printf("channel %s: %s%s%s%s\n", k, state ? state : "?", error && *error ? " (" : "",
               error && *error ? error : "", error && *error ? ")" : "");
        print_partitions(json_object_get(v, "partitions"));
    }
    json_object_foreach(node, k, v)
    {
        if (streq(k, "channels") || !json_is_object(v))
            continue;
        const char *state = json_string_value(json_object_get(v, "state"));
        const char *error = json_string_value(json_object_get(v, "error"));
        printf("%s: %s%s%s%s\n", k, state ? state : "?", error && *error ? " (" : "",
               error && *error ? error : "", error && *error ? ")" : "");
    }
}

int cli_status(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         CLI_GLOBAL_OPTIONS};
    bool json = false;
    int c;
    while ((c = cli_getopt(ctx, "status", argc, argv, "o:h" CLI_GLOBAL_SHORT, opts)) != -1) {
        if (c == 'h') {
            printf("Usage: axion-agent status [STACK] [--output text|json]\n\n"
                   "Per stack: generation, state (converged, progressing, degraded, failed,\n"
                   "pending, removed) with its reason, per service running vs desired replicas,\n"
                   "the last apply and recent events. Then the channels (Control Plane, Kafka)\n"
                   "and the swarm membership as the daemon last reported them. JSON:\n"
                   "{\"stacks\": [...], \"channels\": {...}, ...}.\n");
            return 0;
        }
        if (c != 'o' || cli_output_flag(optarg, &json, "status") < 0)
            return 1;
    }
    if (cli_positional("status", argc, argv, 0, 1, NULL) < 0)
        return 1;
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
    json_t *node = only ? NULL : node_json(st);
    if (json) {
        json_t *out = node ? node : json_object();
        node = NULL;
        json_object_set_new(out, "stacks", all);
        all = NULL;
        json_dumpf(out, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        putchar('\n');
        json_decref(out);
    } else {
        if (n == 0)
            printf("no stacks\n");
        if (node)
            print_node_text(node);
    }
    json_decref(node);
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
                                         CLI_GLOBAL_OPTIONS};
    bool json = false;
    const char *stack = NULL;
    long limit = 50;
    int c;
    while ((c = cli_getopt(ctx, "events", argc, argv, "s:n:o:h" CLI_GLOBAL_SHORT, opts)) != -1) {
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
    if (cli_positional("events", argc, argv, 0, 0, NULL) < 0)
        return 1;
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

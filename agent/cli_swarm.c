/* `axion-agent swarm init|join|leave|status`: the node's Swarm membership in local mode.
 * init, join and leave are thin clients of the intake (sources/intake.h, the swarm kinds): they
 * write the wanted membership and wake the daemon, whose loop converges it before the stacks
 * (reconciler/swarm.h). status reads the wanted membership and what the daemon last reported
 * from the store, and the node itself from the Docker Engine.
 *
 * The join token is a secret: join reads it from a file or stdin, never from argv (where `ps`
 * and the shell's history would show it); nothing here prints it back. `status --show-tokens`
 * is the one explicit act that prints the manager's own join tokens. */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "agent/cli.h"
#include "agent/setup.h"
#include "drivers/docker/docker_api.h"
#include "lib/util.h"
#include "reconciler/membership.h"
#include "sources/intake.h"
#include "store/store.h"

#define TOKEN_FILE_MAX 4096 /* bytes read from --token-file: a token is far shorter */

static const char usage_text[] =
    "Usage: axion-agent swarm init [--advertise-addr A] [--listen-addr A[:PORT]]\n"
    "                              [--data-path-addr A] [--default-addr-pool CIDR ...]\n"
    "                              [--default-addr-pool-mask-length N] [--data-path-port N]\n"
    "       axion-agent swarm join --token-file FILE|- [--role worker|manager]\n"
    "                              [--advertise-addr A] [--listen-addr A[:PORT]]\n"
    "                              [--data-path-addr A] MANAGER[:PORT] ...\n"
    "       axion-agent swarm leave [--force]\n"
    "       axion-agent swarm status [--output text|json] [--show-tokens]\n\n"
    "The node's Swarm membership, as desired state: init, join and leave write what is\n"
    "wanted (through the same intake as every command) and wake the daemon, whose loop\n"
    "makes it so before it deploys stacks, retries with backoff when it fails, and does it\n"
    "again after a reboot. `axion-agent status` and `swarm status` say how it went.\n\n"
    "  init    a swarm of this node's own, this node its first manager\n"
    "  join    join the swarm at the given managers; the join token is read from FILE, or\n"
    "          from stdin with '-', never from the command line; --role says what the\n"
    "          token makes the node (worker by default)\n"
    "  leave   leave the swarm. Refused while this node manages stacks; --force removes\n"
    "          their services, networks, configs and secrets, then leaves (a manager\n"
    "          leaves only with --force: the last manager's leave erases the swarm)\n"
    "  status  wanted vs what is: role, node id, managers and their reachability, what\n"
    "          the daemon last reported; --show-tokens prints this manager's worker and\n"
    "          manager join tokens (secrets: the one place they are shown)\n";

/* An argument as it may appear in a message: join tokens masked (one typed where an address or
 * an option belongs must not be printed back). Valid until the next call. */
static const char *safe(const char *arg)
{
    static char buf[512];
    snprintf(buf, sizeof(buf), "%s", arg);
    membership_mask(buf);
    return buf;
}

/* getopt's complaint, in our words and masked (opterr is off: getopt would print the argument
 * as it is). */
static int bad_option(const char *cmd, char **argv, int c)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':')
        fprintf(stderr, "axion-agent swarm %s: option '%s' needs a value\n", cmd, safe(arg));
    else
        fprintf(stderr, "axion-agent swarm %s: unknown option '%s' (see --help)\n", cmd, safe(arg));
    return 1;
}

/* Hands one request to the intake and prints what came of it: 0 when accepted (notes on
 * stderr), -1 after printing the refusal as "axion-agent swarm CMD: ...". */
static int submit(const struct config *cfg, struct store *st, const struct intake_request *rq)
{
    struct intake *in = NULL;
    struct intake_result res = {0};
    if (setup_intake(cfg, st, &in) < 0)
        return -1;
    int r = intake_submit(in, rq, &res);
    intake_free(in);
    if (r < 0 || res.outcome != INTAKE_ACCEPTED) {
        fprintf(stderr, "axion-agent: %s\n", *res.error ? res.error : strerror(-r));
        intake_result_release(&res);
        return -1;
    }
    for (size_t i = 0; i < res.n_notes; i++)
        fprintf(stderr, "%s\n", res.notes[i]);
    intake_result_release(&res);
    return 0;
}

static json_t *agent_json(struct store *st);

/* A leave without --force on a node the daemon last saw as a manager stays blocked: say so. */
static void warn_manager(struct store *st)
{
    json_t *agent = agent_json(st);
    const char *role = json_string_value(json_object_get(agent, "role"));
    if (role && streq(role, "manager"))
        fprintf(stderr, "note: the daemon last saw this node as a swarm manager, which leaves "
                        "only with --force (the last manager's leave erases the swarm): until "
                        "then the leave is blocked\n");
    json_decref(agent);
}

/* Writes the request, says what is wanted now, wakes the daemon. */
static int write_wanted(struct cli_ctx *ctx, const struct intake_request *rq)
{
    struct config cfg;
    struct store *st;
    if (cli_open(ctx, 0, &cfg, &st) < 0)
        return 1;
    int rc = 1;
    if (submit(&cfg, st, rq) == 0) {
        struct store_swarm *sw = NULL;
        char wanted[1024] = "";
        if (store_get_swarm(st, &sw) == 0)
            membership_describe(sw, wanted, sizeof(wanted));
        store_swarm_free(sw);
        printf("swarm: wanted: %s\n", wanted);
        if (rq->kind == INTAKE_SWARM_LEAVE && !rq->swarm.force)
            warn_manager(st);
        cli_wake_daemon(&cfg);
        rc = 0;
    }
    cli_close(&cfg, st);
    return rc;
}

static int parse_u32(const char *opt, const char *v, uint32_t max, uint32_t *ret)
{
    char *end = NULL;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (!*v || *end || errno || n > max || *v == '-') {
        fprintf(stderr, "axion-agent swarm: %s: expected a number from 0 to %u, got \"%s\"\n", opt,
                max, v);
        return -EINVAL;
    }
    *ret = (uint32_t)n;
    return 0;
}

/* ---- init -------------------------------------------------------------------------------- */

static int swarm_init(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"advertise-addr", required_argument, NULL, 'a'},
        {"listen-addr", required_argument, NULL, 'l'},
        {"data-path-addr", required_argument, NULL, 'd'},
        {"default-addr-pool", required_argument, NULL, 'p'},
        {"default-addr-pool-mask-length", required_argument, NULL, 'm'},
        {"data-path-port", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    struct intake_request rq = {.kind = INTAKE_SWARM_INIT, .source = "cli"};
    const char *pools[INTAKE_SWARM_ADDRS_MAX + 1];
    size_t n_pools = 0;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            rq.swarm.advertise_addr = optarg;
            break;
        case 'l':
            rq.swarm.listen_addr = optarg;
            break;
        case 'd':
            rq.swarm.data_path_addr = optarg;
            break;
        case 'p':
            if (n_pools == ARRAY_SIZE(pools)) {
                fprintf(stderr, "axion-agent swarm init: more than %u --default-addr-pool\n",
                        INTAKE_SWARM_ADDRS_MAX);
                return 1;
            }
            pools[n_pools++] = optarg;
            break;
        case 'm':
            if (parse_u32("--default-addr-pool-mask-length", optarg, 32, &rq.swarm.subnet_size) < 0)
                return 1;
            break;
        case 'P':
            if (parse_u32("--data-path-port", optarg, 65535, &rq.swarm.data_path_port) < 0)
                return 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            return bad_option("init", argv, c);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "axion-agent swarm init: unexpected argument '%s'\n", safe(argv[optind]));
        return 1;
    }
    rq.swarm.default_addr_pools = pools;
    rq.swarm.n_default_addr_pools = n_pools;
    return write_wanted(ctx, &rq);
}

/* ---- join -------------------------------------------------------------------------------- */

/* Reads the token from path ("-": stdin; a terminal does not echo it), trimmed of surrounding
 * white space. 0, or -1 after printing why (never the content). */
static int read_token(const char *path, char *out, size_t len)
{
    bool std = streq(path, "-");
    int fd = std ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        fprintf(stderr, "axion-agent swarm join: --token-file %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct termios saved;
    bool tty = std && isatty(fd) && tcgetattr(fd, &saved) == 0;
    if (tty) {
        struct termios quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fd, TCSAFLUSH, &quiet);
        fprintf(stderr, "Join token (not shown): ");
    } else if (!std) {
        struct stat sb;
        if (fstat(fd, &sb) == 0 && (sb.st_mode & 0077))
            fprintf(stderr,
                    "axion-agent swarm join: note: %s can be read by others (mode %03o); a "
                    "join token is a secret\n",
                    path, (unsigned)(sb.st_mode & 0777));
    }
    size_t n = 0;
    ssize_t got = 0;
    while (n < len - 1 && (got = read(fd, out + n, len - 1 - n)) > 0) {
        n += (size_t)got;
        if (tty && memchr(out, '\n', n))
            break;
    }
    int e = got < 0 ? errno : 0;
    if (tty) {
        tcsetattr(fd, TCSAFLUSH, &saved);
        fputc('\n', stderr);
    }
    char extra;
    bool more = !tty && got > 0 && n == len - 1 && read(fd, &extra, 1) > 0;
    if (!std)
        close(fd);
    out[n] = '\0';
    if (e) {
        fprintf(stderr, "axion-agent swarm join: --token-file %s: %s\n", path, strerror(e));
        return -1;
    }
    if (more) {
        fprintf(stderr,
                "axion-agent swarm join: --token-file %s: more than %d bytes: not a join token\n",
                path, TOKEN_FILE_MAX);
        return -1;
    }
    char *start = out;
    while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
        start++;
    char *end = start + strlen(start);
    while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
        end--;
    *end = '\0';
    memmove(out, start, (size_t)(end - start) + 1);
    if (!*out) {
        fprintf(stderr, "axion-agent swarm join: --token-file %s: empty: no join token\n", path);
        return -1;
    }
    return 0;
}

static int swarm_join(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"token-file", required_argument, NULL, 't'},
        {"token", required_argument, NULL, 'T'},
        {"role", required_argument, NULL, 'r'},
        {"advertise-addr", required_argument, NULL, 'a'},
        {"listen-addr", required_argument, NULL, 'l'},
        {"data-path-addr", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    struct intake_request rq = {
        .kind = INTAKE_SWARM_JOIN, .source = "cli", .swarm.role = STORE_SWARM_WORKER};
    const char *token_file = NULL;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            token_file = optarg;
            break;
        case 'T':
            fprintf(stderr, "axion-agent swarm join: --token: a join token is never taken from "
                            "the command line (ps and the shell's history would show it); use "
                            "--token-file FILE, or --token-file - to read it from stdin\n");
            return 1;
        case 'r':
            if (streq(optarg, "worker"))
                rq.swarm.role = STORE_SWARM_WORKER;
            else if (streq(optarg, "manager"))
                rq.swarm.role = STORE_SWARM_MANAGER;
            else {
                fprintf(stderr,
                        "axion-agent swarm join: --role: expected worker or manager, got \"%s\"\n",
                        safe(optarg));
                return 1;
            }
            break;
        case 'a':
            rq.swarm.advertise_addr = optarg;
            break;
        case 'l':
            rq.swarm.listen_addr = optarg;
            break;
        case 'd':
            rq.swarm.data_path_addr = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            return bad_option("join", argv, c);
        }
    }
    if (!token_file) {
        fprintf(stderr, "axion-agent swarm join: no --token-file (FILE, or - for stdin): the "
                        "join token of the swarm to join\n");
        return 1;
    }
    if (optind >= argc) {
        fprintf(stderr, "axion-agent swarm join: no manager address (MANAGER[:PORT] ...)\n");
        return 1;
    }
    char token[TOKEN_FILE_MAX + 1];
    if (read_token(token_file, token, sizeof(token)) < 0)
        return 1;
    rq.swarm.join_token = token;
    rq.swarm.remote_addrs = (const char *const *)&argv[optind];
    rq.swarm.n_remote_addrs = (size_t)(argc - optind);
    int rc = write_wanted(ctx, &rq);
    explicit_bzero(token, sizeof(token));
    return rc;
}

/* ---- leave ------------------------------------------------------------------------------- */

static int swarm_leave(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"force", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {0}};
    struct intake_request rq = {.kind = INTAKE_SWARM_LEAVE, .source = "cli"};
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":fh", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            rq.swarm.force = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            return bad_option("leave", argv, c);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "axion-agent swarm leave: unexpected argument '%s'\n", safe(argv[optind]));
        return 1;
    }
    return write_wanted(ctx, &rq);
}

/* ---- status ------------------------------------------------------------------------------ */

/* One synchronous Engine call: the answer's body (owned), or NULL with err. */
static json_t *engine_get(struct docker *d, struct docker_request *req, char *err, size_t errlen)
{
    struct docker_result *res = NULL;
    int r = docker_wait(d, req, &res);
    json_t *body = NULL;
    if (r < 0)
        snprintf(err, errlen, "%s", strerror(-r));
    else if (res->error != DOCKER_OK)
        snprintf(err, errlen, "%s: %s", res->what, res->message);
    else
        body = docker_result_take_body(res);
    docker_result_free(res);
    return body;
}

static void format_time(int64_t ms, char *out, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* What the Engine says of the node: {state, role, node_id, node_addr, error, managers: [{addr,
 * node_id}], cluster_id, manager_count, node_count}; on a manager the nodes with their
 * reachability, and with show_tokens the join tokens. err set when the Engine cannot say. */
static json_t *engine_json(const struct config *cfg, bool show_tokens, char *err, size_t errlen)
{
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO | EVFLAG_NOENV);
    struct docker *d = NULL;
    struct docker_opts dko = {.timeout_ms = cfg->docker.request_timeout_ms};
    if (!loop || docker_new(loop, cfg->docker.socket, &dko, &d) < 0) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    json_t *node = NULL;
    char e[1024] = "";
    json_t *info = engine_get(d, docker_info(d, NULL, NULL), e, sizeof(e));
    if (!info) {
        snprintf(err, errlen, "cannot ask the Docker Engine at %s: %s", cfg->docker.socket, e);
        goto out;
    }
    json_t *sw = json_object_get(info, "Swarm");
    const char *state = json_string_value(json_object_get(sw, "LocalNodeState"));
    bool active = state && streq(state, "active");
    bool manager = active && json_is_true(json_object_get(sw, "ControlAvailable"));
    json_t *managers = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(sw, "RemoteManagers"), i, m) json_array_append_new(
        managers, json_pack("{s:s?, s:s?}", "addr", json_string_value(json_object_get(m, "Addr")),
                            "node_id", json_string_value(json_object_get(m, "NodeID"))));
    node = json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:o, s:s?, s:I, s:I}", "state",
                     state ? state : "", "role", active ? (manager ? "manager" : "worker") : "",
                     "node_id", json_string_value(json_object_get(sw, "NodeID")), "node_addr",
                     json_string_value(json_object_get(sw, "NodeAddr")), "error",
                     json_string_value(json_object_get(sw, "Error")), "managers", managers,
                     "cluster_id",
                     json_string_value(json_object_get(json_object_get(sw, "Cluster"), "ID")),
                     "manager_count", json_integer_value(json_object_get(sw, "Managers")),
                     "node_count", json_integer_value(json_object_get(sw, "Nodes")));
    if (!node) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (show_tokens && !manager) {
        snprintf(err, errlen,
                 "--show-tokens: this node is not a swarm manager (it is %s): only a manager "
                 "has the swarm's join tokens",
                 active  ? "a worker"
                 : state ? state
                         : "in no swarm");
        goto out;
    }
    if (manager) {
        json_t *nodes = engine_get(d, docker_nodes_list(d, NULL, NULL, NULL), e, sizeof(e));
        json_t *list = json_array();
        const char *self = json_string_value(json_object_get(sw, "NodeID"));
        json_array_foreach(nodes, i, m)
        {
            json_t *ms = json_object_get(m, "ManagerStatus");
            const char *id = json_string_value(json_object_get(m, "ID"));
            json_array_append_new(
                list,
                json_pack(
                    "{s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:b, s:b}", "id", id, "hostname",
                    json_string_value(
                        json_object_get(json_object_get(m, "Description"), "Hostname")),
                    "role", json_string_value(json_object_get(json_object_get(m, "Spec"), "Role")),
                    "status",
                    json_string_value(json_object_get(json_object_get(m, "Status"), "State")),
                    "availability",
                    json_string_value(json_object_get(json_object_get(m, "Spec"), "Availability")),
                    "addr",
                    json_string_value(json_object_get(json_object_get(m, "Status"), "Addr")),
                    "reachability", json_string_value(json_object_get(ms, "Reachability")),
                    "leader", json_is_true(json_object_get(ms, "Leader")), "self",
                    id && self && streq(id, self)));
        }
        json_decref(nodes);
        json_object_set_new(node, "nodes", list);
        if (*e)
            json_object_set_new(node, "nodes_error", json_string(e));
    }
    if (show_tokens) {
        json_t *swarm = engine_get(d, docker_swarm_inspect(d, NULL, NULL), e, sizeof(e));
        json_t *tokens = json_object_get(swarm, "JoinTokens");
        if (!tokens) {
            snprintf(err, errlen, "--show-tokens: %s", *e ? e : "the Engine gave no join tokens");
            json_decref(swarm);
            goto out;
        }
        json_object_set_new(node, "join_tokens",
                            json_pack("{s:O?, s:O?}", "worker", json_object_get(tokens, "Worker"),
                                      "manager", json_object_get(tokens, "Manager")));
        json_decref(swarm);
    }
out:
    json_decref(info);
    docker_free(d);
    return node;
}

/* The daemon's last report ("swarm" of the agent state), or NULL. */
static json_t *agent_json(struct store *st)
{
    struct store_state *v = NULL;
    size_t n = 0;
    json_t *out = NULL;
    if (!st || store_list_state(st, "swarm", &v, &n) < 0)
        return NULL;
    for (size_t i = 0; i < n && !out; i++)
        if (streq(v[i].key, "swarm")) {
            out = json_loads(v[i].value, 0, NULL);
            if (json_is_object(out))
                json_object_set_new(out, "updated_at", json_integer(v[i].updated_at));
        }
    store_state_array_free(v, n);
    return out;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static void print_status_text(json_t *all)
{
    json_t *wanted = json_object_get(all, "wanted");
    json_t *node = json_object_get(all, "node");
    json_t *agent = json_object_get(all, "agent");
    if (json_is_object(wanted)) {
        char when[32];
        format_time(json_integer_value(json_object_get(wanted, "updated_at")), when, sizeof(when));
        printf("wanted:   %s%s (asked by %s at %s)\n", str(wanted, "text"),
               json_is_true(json_object_get(wanted, "join_token_set")) ? ", join token set" : "",
               *str(wanted, "source") ? str(wanted, "source") : "?", when);
    } else {
        printf("wanted:   not managed (never asked: the node is left as it is)\n");
    }
    if (json_is_object(node)) {
        const char *state = str(node, "state");
        if (streq(state, "active"))
            printf("node:     active %s, node id %s, address %s\n", str(node, "role"),
                   str(node, "node_id"), str(node, "node_addr"));
        else
            printf("node:     %s%s%s\n", streq(state, "inactive") ? "in no swarm" : state,
                   *str(node, "error") ? ": " : "", str(node, "error"));
        if (*str(node, "error") && streq(state, "active"))
            printf("          error: %s\n", str(node, "error"));
        size_t i;
        json_t *m;
        json_t *managers = json_object_get(node, "managers");
        if (json_array_size(managers)) {
            printf("managers:");
            json_array_foreach(managers, i, m) printf("%s %s", i ? "," : "", str(m, "addr"));
            putchar('\n');
        }
        if (*str(node, "cluster_id"))
            printf("swarm:    cluster id %s, %lld nodes, %lld managers\n", str(node, "cluster_id"),
                   (long long)json_integer_value(json_object_get(node, "node_count")),
                   (long long)json_integer_value(json_object_get(node, "manager_count")));
        json_t *nodes = json_object_get(node, "nodes");
        if (json_array_size(nodes)) {
            printf("nodes:\n  %-20s %-26s %-8s %-8s %-12s %s\n", "HOSTNAME", "NODE ID", "ROLE",
                   "STATUS", "AVAILABILITY", "MANAGER");
            json_array_foreach(nodes, i, m)
            {
                char mgr[64] = "";
                if (*str(m, "reachability"))
                    snprintf(mgr, sizeof(mgr), "%s%s", str(m, "reachability"),
                             json_is_true(json_object_get(m, "leader")) ? ", leader" : "");
                printf("  %-20s %-26s %-8s %-8s %-12s %s%s\n", str(m, "hostname"), str(m, "id"),
                       str(m, "role"), str(m, "status"), str(m, "availability"), mgr,
                       json_is_true(json_object_get(m, "self")) ? " (this node)" : "");
            }
        }
        json_t *tokens = json_object_get(node, "join_tokens");
        if (tokens) {
            printf("join tokens (secrets: give them only to the nodes that are to join):\n");
            printf("  worker:  %s\n  manager: %s\n", str(tokens, "worker"), str(tokens, "manager"));
        }
    }
    if (json_is_object(agent)) {
        char when[32];
        format_time(json_integer_value(json_object_get(agent, "updated_at")), when, sizeof(when));
        const char *error = str(agent, "error");
        printf("agent:    %s%s%s (reported %s)\n", str(agent, "state"), *error ? ": " : "", error,
               when);
    } else {
        printf("agent:    no report yet (is the daemon running?)\n");
    }
}

static int swarm_status(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"show-tokens", no_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    bool json = false, show_tokens = false;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (cli_output_flag(optarg, &json, "swarm status") < 0)
                return 1;
            break;
        case 't':
            show_tokens = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            return bad_option("status", argv, c);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "axion-agent swarm status: unexpected argument '%s'\n", safe(argv[optind]));
        return 1;
    }
    struct config cfg;
    if (cli_load_config(ctx, &cfg) < 0)
        return 1;
    /* A node that was never told anything has no store yet: that is no error here. */
    struct store *st = NULL;
    char path[4096];
    snprintf(path, sizeof(path), "%s/store.db", cfg.agent.state_dir);
    if (access(path, F_OK) == 0 && setup_open_store(&cfg, STORE_OPEN_EXISTING, &st) < 0) {
        config_free(&cfg);
        return 1;
    }
    struct store_swarm *sw = NULL;
    if (st && store_get_swarm(st, &sw) < 0 && !sw)
        sw = NULL;
    char err[1024] = "";
    json_t *all = json_object();
    json_object_set_new(all, "wanted", membership_desired_json(sw));
    json_t *node = engine_json(&cfg, show_tokens, err, sizeof(err));
    json_object_set_new(all, "node", node ? node : json_null());
    json_t *agent = agent_json(st);
    json_object_set_new(all, "agent", agent ? agent : json_null());
    bool tokens_refused = show_tokens && *err;
    if (!tokens_refused) {
        if (json) {
            if (*err)
                json_object_set_new(all, "error", json_string(err));
            json_dumpf(all, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
            putchar('\n');
        } else {
            print_status_text(all);
        }
    }
    if (*err)
        fprintf(stderr, "axion-agent swarm status: %s\n", err);
    json_decref(all);
    store_swarm_free(sw);
    cli_close(&cfg, st);
    return *err ? 1 : 0;
}

int cli_swarm(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(struct cli_ctx *, int, char **);
    } subs[] = {{"init", swarm_init},
                {"join", swarm_join},
                {"leave", swarm_leave},
                {"status", swarm_status}};
    if (argc < 2 || streq(argv[1], "-h") || streq(argv[1], "--help")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
        if (streq(argv[1], subs[i].name))
            return subs[i].fn(ctx, argc - 1, argv + 1);
    fprintf(stderr, "axion-agent swarm: unknown subcommand '%s' (init, join, leave, status)\n",
            safe(argv[1]));
    return 1;
}

#include "sources/intake_swarm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/util.h"

#define STACKS_NAMED_MAX 10 /* stacks a refused leave names before "and N more" */

bool intake_swarm_kind(enum intake_kind kind)
{
    return kind == INTAKE_SWARM_INIT || kind == INTAKE_SWARM_JOIN || kind == INTAKE_SWARM_LEAVE;
}

__attribute__((format(printf, 2, 3))) static int reject(struct intake_result *res, const char *fmt,
                                                        ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof(res->error), fmt, ap);
    va_end(ap);
    res->outcome = INTAKE_REJECTED;
    return 0;
}

static int failed(struct store *st, struct intake_result *res, int r)
{
    snprintf(res->error, sizeof(res->error), "%s",
             r == -ENOMEM ? "out of memory" : store_errmsg(st));
    return r;
}

static int add_note(struct intake_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int add_note(struct intake_result *res, const char *fmt, ...)
{
    char **v = realloc(res->notes, (res->n_notes + 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    res->notes = v;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&v[res->n_notes], fmt, ap);
    va_end(ap);
    if (n < 0)
        return -ENOMEM;
    res->n_notes++;
    return 0;
}

static bool given(const char *s)
{
    return s && *s;
}

/* A value from outside as it may appear in a message: never a join token (someone may pass
 * one where an address belongs), never longer than the limit. */
static const char *shown(const char *s)
{
    if (strstr(s, "SWMTKN-"))
        return "(a join token)";
    return strnlen(s, INTAKE_SWARM_ADDR_MAX + 1) > INTAKE_SWARM_ADDR_MAX ? "(too long)" : s;
}

/* ---- the forms of what a request carries ----------------------------------------------------- */

static bool port_ok(const char *p)
{
    if (!*p || strlen(p) > 5)
        return false;
    unsigned v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (unsigned)(*p - '0');
    }
    return v >= 1 && v <= 65535;
}

/* Why an address ("10.0.0.1", "eth0", "[fd00::1]:2377", "manager-1:2377") cannot be taken, or
 * NULL. with_port: whether a ":port" may follow the host. */
static const char *addr_problem(const char *a, bool with_port)
{
    size_t n = strnlen(a, INTAKE_SWARM_ADDR_MAX + 1);
    if (n > INTAKE_SWARM_ADDR_MAX)
        return "longer than 255 bytes";
    for (const char *p = a; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr(".-_:[]%", *p)))
            return "holds a character no address has (expected an IP address, a host or "
                   "interface name, and for some a :port)";
    const char *port = NULL;
    size_t host_len;
    if (a[0] == '[') {
        const char *close = strchr(a, ']');
        if (!close)
            return "an IPv6 address in [ ] lacks its ]";
        host_len = (size_t)(close - a - 1);
        if (close[1] == ':')
            port = close + 2;
        else if (close[1])
            return "expected :port after ]";
        char v6[64];
        if (host_len >= sizeof(v6))
            return "not an IPv6 address in [ ]";
        memcpy(v6, a + 1, host_len);
        v6[host_len] = '\0';
        struct in6_addr x;
        if (inet_pton(AF_INET6, v6, &x) != 1)
            return "not an IPv6 address in [ ]";
    } else {
        const char *colon = strchr(a, ':');
        if (colon && strchr(colon + 1, ':')) {
            struct in6_addr x; /* a bare IPv6 address: no port */
            if (inet_pton(AF_INET6, a, &x) != 1)
                return "not an IPv6 address (write one with a port as [address]:port)";
            return NULL;
        }
        host_len = colon ? (size_t)(colon - a) : n;
        port = colon ? colon + 1 : NULL;
        if (strpbrk(a, "[]"))
            return "[ ] only enclose an IPv6 address";
    }
    if (!host_len)
        return "no host before the port";
    if (port && !with_port)
        return "takes no port";
    if (port && !port_ok(port))
        return "the port is not from 1 to 65535";
    return NULL;
}

/* Why an IPv4 CIDR ("10.20.0.0/16") cannot be taken, or NULL. */
static const char *cidr_problem(const char *c, unsigned *ret_prefix)
{
    if (strnlen(c, INTAKE_SWARM_ADDR_MAX + 1) > INTAKE_SWARM_ADDR_MAX)
        return "longer than 255 bytes";
    const char *slash = strchr(c, '/');
    char host[64];
    if (!slash || (size_t)(slash - c) >= sizeof(host))
        return "expected ADDRESS/PREFIX-LENGTH (10.20.0.0/16)";
    memcpy(host, c, (size_t)(slash - c));
    host[slash - c] = '\0';
    unsigned char bytes[16];
    const unsigned max = 32;
    if (inet_pton(AF_INET6, host, bytes) == 1)
        return "an IPv6 pool: the swarm's address pools are IPv4";
    if (inet_pton(AF_INET, host, bytes) != 1)
        return "not an IPv4 address before the /";
    const char *p = slash + 1;
    unsigned v = 0;
    if (!*p || strlen(p) > 3)
        return "the prefix length is not a number";
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return "the prefix length is not a number";
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v > max)
        return "the prefix length is more than 32";
    *ret_prefix = v;
    return NULL;
}

/* Why a join token cannot be taken, or NULL. Never says what the token is. */
static const char *token_problem(const char *t)
{
    if (!given(t))
        return "no join token (a manager's `docker swarm join-token`, or `axion-agent swarm "
               "status --show-tokens` on a manager)";
    if (strnlen(t, INTAKE_SWARM_TOKEN_MAX + 1) > INTAKE_SWARM_TOKEN_MAX)
        return "the join token is longer than 512 bytes";
    if (strncmp(t, "SWMTKN-", 7) != 0)
        return "the join token is not a swarm join token (those start with SWMTKN-)";
    for (const char *p = t; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-'))
            return "the join token holds a character no join token has";
    return NULL;
}

/* A JSON array of the strings (for the store). NULL when out of memory. */
static char *string_array(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string(v[i])) < 0) {
            json_decref(a);
            a = NULL;
        }
    char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return s;
}

/* The fields a kind does not take: a request that sets one is refused rather than half-read. */
static const char *stray_field(const struct intake_request *rq)
{
    const struct intake_swarm *sw = &rq->swarm;
    if (given(rq->stack) || given(rq->service))
        return "a stack or service";
    if (rq->kind != INTAKE_SWARM_JOIN) {
        if (sw->n_remote_addrs)
            return "remote addresses";
        if (given(sw->join_token))
            return "a join token";
        if (sw->role != STORE_SWARM_NONE)
            return "a role";
    }
    if (rq->kind != INTAKE_SWARM_INIT) {
        if (sw->n_default_addr_pools)
            return "default address pools";
        if (sw->subnet_size)
            return "a subnet size";
        if (sw->data_path_port)
            return "a data path port";
    }
    if (rq->kind == INTAKE_SWARM_LEAVE) {
        if (given(sw->advertise_addr) || given(sw->listen_addr) || given(sw->data_path_addr))
            return "an address";
    } else if (sw->force) {
        return "force";
    }
    return NULL;
}

/* The addresses init and join share. 0, or 0 with res rejected. */
static int check_addrs(const char *kind, const struct intake_swarm *sw, struct intake_result *res)
{
    const struct {
        const char *name, *v;
        bool port;
    } a[] = {{"advertise address", sw->advertise_addr, true},
             {"listen address", sw->listen_addr, true},
             {"data path address", sw->data_path_addr, false}};
    for (size_t i = 0; i < ARRAY_SIZE(a); i++) {
        if (!a[i].v || !*a[i].v)
            continue;
        const char *why = addr_problem(a[i].v, a[i].port);
        if (why)
            return reject(res, "%s: %s \"%s\": %s", kind, a[i].name, shown(a[i].v), why);
    }
    return 0;
}

/* ---- the three kinds ------------------------------------------------------------------------ */

static int init(struct store *st, const struct intake_request *rq, struct intake_result *res)
{
    const struct intake_swarm *sw = &rq->swarm;
    check_addrs("swarm init", sw, res);
    if (res->outcome != INTAKE_ACCEPTED)
        return 0;
    if (sw->n_default_addr_pools > INTAKE_SWARM_ADDRS_MAX)
        return reject(res, "swarm init: %zu default address pools, more than %u",
                      sw->n_default_addr_pools, INTAKE_SWARM_ADDRS_MAX);
    for (size_t i = 0; i < sw->n_default_addr_pools; i++) {
        const char *pool = sw->default_addr_pools[i] ? sw->default_addr_pools[i] : "";
        unsigned prefix = 0;
        const char *why = cidr_problem(pool, &prefix);
        if (why)
            return reject(res, "swarm init: default address pool \"%s\": %s", shown(pool), why);
        if (sw->subnet_size && sw->subnet_size < prefix)
            return reject(res,
                          "swarm init: subnet size %u is shorter than the prefix of default "
                          "address pool %s: its subnets must fit inside it",
                          sw->subnet_size, pool);
    }
    if (sw->subnet_size > 32)
        return reject(res, "swarm init: subnet size %u is not from 1 to 32", sw->subnet_size);
    if (sw->data_path_port && (sw->data_path_port < 1024 || sw->data_path_port > 49151))
        return reject(res, "swarm init: data path port %u is not from 1024 to 49151",
                      sw->data_path_port);
    _cleanup_free_ char *pools = string_array(sw->default_addr_pools, sw->n_default_addr_pools);
    if (!pools)
        return failed(st, res, -ENOMEM);
    struct store_swarm row = {
        .desired_role = STORE_SWARM_MANAGER,
        .advertise_addr = (char *)(given(sw->advertise_addr) ? sw->advertise_addr : NULL),
        .listen_addr = (char *)(given(sw->listen_addr) ? sw->listen_addr : NULL),
        .data_path_addr = (char *)(given(sw->data_path_addr) ? sw->data_path_addr : NULL),
        .default_addr_pools_json = pools,
        .subnet_size = sw->subnet_size,
        .data_path_port = sw->data_path_port,
        .source = (char *)rq->source,
    };
    int r = store_set_swarm(st, &row);
    return r < 0 ? failed(st, res, r) : 0;
}

static int join(struct store *st, const struct intake_request *rq, struct intake_result *res)
{
    const struct intake_swarm *sw = &rq->swarm;
    if (sw->role != STORE_SWARM_WORKER && sw->role != STORE_SWARM_MANAGER)
        return reject(res, "swarm join: the role must be worker or manager");
    if (!sw->n_remote_addrs)
        return reject(res, "swarm join: no manager address to join (host[:port])");
    if (sw->n_remote_addrs > INTAKE_SWARM_ADDRS_MAX)
        return reject(res, "swarm join: %zu manager addresses, more than %u", sw->n_remote_addrs,
                      INTAKE_SWARM_ADDRS_MAX);
    for (size_t i = 0; i < sw->n_remote_addrs; i++) {
        const char *a = sw->remote_addrs[i] ? sw->remote_addrs[i] : "";
        if (strstr(a, "SWMTKN-"))
            return reject(res,
                          "swarm join: manager address %zu is a join token: a token never goes "
                          "where an address belongs (the CLI reads it from --token-file)",
                          i + 1);
        const char *why = *a ? addr_problem(a, true) : "empty";
        if (why)
            return reject(res, "swarm join: manager address \"%s\": %s", shown(a), why);
    }
    const char *why = token_problem(sw->join_token);
    if (why)
        return reject(res, "swarm join: %s", why);
    check_addrs("swarm join", sw, res);
    if (res->outcome != INTAKE_ACCEPTED)
        return 0;
    _cleanup_free_ char *addrs = string_array(sw->remote_addrs, sw->n_remote_addrs);
    if (!addrs)
        return failed(st, res, -ENOMEM);
    struct store_swarm row = {
        .desired_role = sw->role,
        .join_addrs_json = addrs,
        .join_token = (char *)sw->join_token,
        .advertise_addr = (char *)(given(sw->advertise_addr) ? sw->advertise_addr : NULL),
        .listen_addr = (char *)(given(sw->listen_addr) ? sw->listen_addr : NULL),
        .data_path_addr = (char *)(given(sw->data_path_addr) ? sw->data_path_addr : NULL),
        .source = (char *)rq->source,
    };
    int r = store_set_swarm(st, &row);
    return r < 0 ? failed(st, res, r) : 0;
}

static int leave(struct store *st, const struct intake_request *rq, struct intake_result *res)
{
    struct store_stack *stacks = NULL;
    size_t n = 0;
    int r = store_list_stacks(st, STORE_LIST_SUMMARY, &stacks, &n);
    if (r < 0)
        return failed(st, res, r);
    if (n && !rq->swarm.force) {
        struct buf names = BUF_INIT(4096);
        for (size_t i = 0; i < n && i < STACKS_NAMED_MAX; i++)
            buf_printf(&names, "%s%s", i ? ", " : "", stacks[i].name);
        if (n > STACKS_NAMED_MAX)
            buf_printf(&names, " and %zu more", n - STACKS_NAMED_MAX);
        reject(res,
               "swarm leave: refused: this node manages %zu stack%s (%s); leaving the swarm "
               "would lose %s: %s services, networks, configs and secrets would stay behind "
               "unmanaged, or be erased with the swarm if this is its last manager. Remove %s "
               "first, or leave with force (--force): that removes %s objects, then leaves",
               n, n == 1 ? "" : "s", names.data ? names.data : "", n == 1 ? "it" : "them",
               n == 1 ? "its" : "their", n == 1 ? "it" : "them", n == 1 ? "its" : "their");
        buf_release(&names);
        store_stack_array_free(stacks, n);
        return 0;
    }
    for (size_t i = 0; r == 0 && i < n; i++) {
        r = store_mark_stack_removed(st, stacks[i].name, 0, rq->source);
        if (r < 0)
            r = failed(st, res, r);
        else if (add_note(res,
                          "note: stack %s marked removed: its objects are removed before the "
                          "node leaves the swarm",
                          stacks[i].name) < 0)
            r = failed(st, res, -ENOMEM);
    }
    store_stack_array_free(stacks, n);
    if (r < 0)
        return r;
    struct store_swarm row = {
        .desired_role = STORE_SWARM_NONE,
        .force = rq->swarm.force,
        .source = (char *)rq->source,
    };
    r = store_set_swarm(st, &row);
    return r < 0 ? failed(st, res, r) : 0;
}

/* The revision just written, as the request's generation (what the tracker waits for). */
static int revision(struct store *st, struct intake_result *res)
{
    struct store_swarm *sw = NULL;
    int r = store_get_swarm(st, &sw);
    if (r < 0)
        return failed(st, res, r);
    res->generation = sw->revision;
    store_swarm_free(sw);
    return 0;
}

int intake_swarm_submit(struct store *st, const struct intake_request *rq,
                        struct intake_result *res)
{
    const char *kind = rq->kind == INTAKE_SWARM_INIT   ? "swarm init"
                       : rq->kind == INTAKE_SWARM_JOIN ? "swarm join"
                                                       : "swarm leave";
    const char *stray = stray_field(rq);
    if (stray)
        return reject(res, "%s: does not take %s", kind, stray);
    int r;
    switch (rq->kind) {
    case INTAKE_SWARM_INIT:
        r = init(st, rq, res);
        break;
    case INTAKE_SWARM_JOIN:
        r = join(st, rq, res);
        break;
    case INTAKE_SWARM_LEAVE:
        r = leave(st, rq, res);
        break;
    default:
        return reject(res, "%s: not a swarm request", kind);
    }
    if (r < 0 || res->outcome != INTAKE_ACCEPTED)
        return r;
    return revision(st, res);
}

#include "compose/compose_ports.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "lib/util.h"
#include "compose/compose_util.h"
#include "compose/compose_value.h"

struct port_list {
    struct compose_port *v;
    size_t n, cap;
};

static int port_add(struct compose_loader *l, struct port_list *pl, const struct compose_ynode *n,
                    const struct compose_port *port)
{
    struct compose_port *p = COMPOSE_LOAD_APPEND(l, pl->v, pl->n, pl->cap);
    if (!p)
        return -ENOMEM;
    *p = *port;
    p->pos = compose_load_pos(n);
    return 0;
}

/* ---- the short syntax ------------------------------------------------------------------- */

/* nat.ParsePortRange: "80" or "8000-8010". */
static int port_range(const char *s, uint64_t *start, uint64_t *end)
{
    int64_t a, b;
    const char *dash = strchr(s, '-');
    if (!dash) {
        if (compose_util_decimal(s, &a) < 0 || *s == '+' || *s == '-' || a < 0 || a > 65535)
            return -EINVAL;
        *start = *end = (uint64_t)a;
        return 0;
    }
    char head[16];
    size_t hl = (size_t)(dash - s);
    if (hl == 0 || hl >= sizeof(head) || strchr(dash + 1, '-'))
        return -EINVAL;
    memcpy(head, s, hl);
    head[hl] = '\0';
    if (compose_util_decimal(head, &a) < 0 || compose_util_decimal(dash + 1, &b) < 0 ||
        dash[1] == '+' || a < 0 || b < 0 || a > 65535 || b > 65535 || b < a)
        return -EINVAL;
    *start = (uint64_t)a;
    *end = (uint64_t)b;
    return 0;
}

struct port_key {
    char text[24];
    size_t index;
};

static int cmp_port_key(const void *a, const void *b)
{
    return strcmp(((const struct port_key *)a)->text, ((const struct port_key *)b)->text);
}

static int port_short(struct compose_loader *l, struct port_list *pl, const struct compose_ynode *n,
                      const char *spec)
{
    _cleanup_free_ char *s = strdup(spec);
    if (!s)
        return -ENOMEM;
    char *parts[64];
    size_t np = 0;
    for (char *p = s;;) {
        if (np == ARRAY_SIZE(parts))
            return compose_load_fail(l, n, "invalid port \"%s\": too many colons", spec);
        parts[np++] = p;
        char *c = strchr(p, ':');
        if (!c)
            break;
        *c = '\0';
        p = c + 1;
    }
    const char *raw_ip = "", *host = "", *container = parts[np - 1];
    if (np == 2)
        host = parts[0];
    else if (np >= 3) {
        host = parts[np - 2];
        raw_ip = parts[0];
        for (size_t i = 1; i + 2 < np; i++)
            parts[i][-1] = ':'; /* join the IPv6 address back */
    }
    /* protocol */
    const char *proto = "tcp";
    char *slash = strchr(container, '/');
    if (slash) {
        *slash = '\0';
        if (slash[1]) {
            proto = slash + 1;
            char *more = strchr(slash + 1, '/');
            if (more)
                *more = '\0';
        }
    }
    char proto_lc[16];
    size_t pl_len = strlen(proto);
    if (pl_len >= sizeof(proto_lc))
        return compose_load_fail(l, n, "invalid port \"%s\": invalid protocol \"%s\"", spec, proto);
    for (size_t i = 0; i <= pl_len; i++)
        proto_lc[i] = (char)((proto[i] >= 'A' && proto[i] <= 'Z') ? proto[i] + 32 : proto[i]);
    if (!streq(proto_lc, "tcp") && !streq(proto_lc, "udp") && !streq(proto_lc, "sctp"))
        return compose_load_fail(
            l, n, "invalid port \"%s\": invalid protocol \"%s\" (tcp, udp or sctp)", spec, proto);
    /* address: docker accepts one, warns, and listens on every address */
    char ip[64] = "";
    size_t il = strlen(raw_ip);
    if (il >= 2 && raw_ip[0] == '[' && raw_ip[il - 1] == ']')
        snprintf(ip, sizeof(ip), "%.*s", (int)(il - 2), raw_ip + 1);
    else
        snprintf(ip, sizeof(ip), "%s", raw_ip);
    if (ip[0]) {
        unsigned char addr[16];
        if (inet_pton(AF_INET, ip, addr) != 1 && inet_pton(AF_INET6, ip, addr) != 1)
            return compose_load_fail(l, n, "invalid port \"%s\": invalid IP address \"%s\"", spec,
                                     ip);
        if (!streq(ip, "0.0.0.0")) {
            int r = compose_load_warn(
                l, n, "the address %s is ignored: Swarm publishes on every address", ip);
            if (r < 0)
                return r;
        }
    }
    if (!*container)
        return compose_load_fail(l, n, "invalid port \"%s\": no container port", spec);
    uint64_t cstart, cend, hstart = 0, hend = 0;
    if (port_range(container, &cstart, &cend) < 0)
        return compose_load_fail(l, n, "invalid port \"%s\": invalid container port \"%s\"", spec,
                                 container);
    if (*host && port_range(host, &hstart, &hend) < 0)
        return compose_load_fail(l, n, "invalid port \"%s\": invalid published port \"%s\"", spec,
                                 host);
    if (*host && cend - cstart != hend - hstart && cend != cstart)
        return compose_load_fail(
            l, n, "invalid port \"%s\": the published and container port ranges differ in size",
            spec);
    struct compose_port port = {.mode = "ingress",
                                .protocol = compose_arena_strdup(l->a, proto_lc)};
    if (!port.protocol)
        return -ENOMEM;
    /* docker orders the ports of one entry by "port/protocol" as text */
    size_t count = cend - cstart + 1;
    size_t total = cstart == cend && *host ? (size_t)(hend - hstart + 1) : count;
    if (l->ports + total > COMPOSE_MAX_PORTS)
        return compose_load_fail(l, n, "more than %d ports in all, port ranges expanded",
                                 COMPOSE_MAX_PORTS);
    l->ports += total;
    struct port_key *keys = calloc(count, sizeof(*keys));
    if (!keys)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        snprintf(keys[i].text, sizeof(keys[i].text), "%llu/%s", (unsigned long long)(cstart + i),
                 proto_lc);
        keys[i].index = i;
    }
    qsort(keys, count, sizeof(*keys), cmp_port_key);
    int r = 0;
    for (size_t k = 0; k < count && r == 0; k++) {
        port.target = (uint32_t)(cstart + keys[k].index);
        if (!*host) {
            r = port_add(l, pl, n, &port);
        } else if (cstart == cend) {
            for (uint64_t h = hstart; h <= hend && r == 0; h++) {
                port.published = (uint32_t)h;
                r = port_add(l, pl, n, &port);
            }
        } else {
            port.published = (uint32_t)(hstart + keys[k].index);
            r = port_add(l, pl, n, &port);
        }
    }
    free(keys);
    return r;
}

/* ---- the long syntax -------------------------------------------------------------------- */

static const char *const port_modes[] = {"ingress", "host", NULL};
static const char *const port_protocols[] = {"tcp", "udp", "sctp", NULL};

static const struct compose_key port_keys[] = {
    {KEY("mode", KEY_STR, KEY_AT(compose_port, mode)), .one_of = port_modes,
     .expect = "\"ingress\" or \"host\""},
    {KEY("target", KEY_U32, KEY_AT(compose_port, target)), .limit = "a port number (1-65535)",
     .min = 1, .max = 65535, .flags = KEY_GOT, .required = "a port needs a target"},
    {KEY("published", KEY_U32, KEY_AT(compose_port, published)), .limit = "a port number (1-65535)",
     .min = 0, .max = 65535, .flags = KEY_GOT},
    {KEY("protocol", KEY_STR, KEY_AT(compose_port, protocol)), .one_of = port_protocols,
     .expect = "\"tcp\", \"udp\" or \"sctp\""},
};
static const struct compose_keys port_table = COMPOSE_KEYS(port_keys);

static int port_long(struct compose_loader *l, struct port_list *pl, const struct compose_ynode *n)
{
    struct compose_port port = {0};
    int r = compose_keys_read(l, n, &port_table, &port);
    if (r < 0)
        return r;
    if (++l->ports > COMPOSE_MAX_PORTS)
        return compose_load_fail(l, n, "more than %d ports in all, port ranges expanded",
                                 COMPOSE_MAX_PORTS);
    return port_add(l, pl, n, &port);
}

int compose_ports_read(struct compose_loader *l, const struct compose_ynode *n, void *field,
                       const struct compose_key *k)
{
    struct compose_service *s = field;
    if (n->kind != COMPOSE_YSEQ)
        return compose_value_expected(l, n, NULL, "a list of ports");
    struct port_list pl = {0};
    _cleanup_(compose_util_map_release) struct compose_util_map seen = {0};
    for (size_t i = 0; i < n->n; i++) {
        const struct compose_ynode *e = n->vals[i];
        size_t old = compose_load_push_index(l, i);
        int r;
        if (e->kind == COMPOSE_YMAP) {
            r = port_long(l, &pl, e);
        } else {
            struct compose_value v = {0};
            r = compose_value_scalar(l, e, &v, "a port");
            if (r < 0)
                return r;
            char num[32];
            const char *spec = v.s;
            if (v.type == COMPOSE_YINT) {
                snprintf(num, sizeof(num), "%lld", (long long)v.i);
                spec = num;
            } else if (v.type != COMPOSE_YSTR) {
                return compose_value_expected(l, e, &v, "a port (like \"8080:80\") or a mapping");
            }
            if (compose_util_map_get(&seen, e->str, e->len, NULL))
                return compose_load_fail(l, e, "duplicate entry \"%s\"", e->str);
            if (compose_util_map_put(&seen, e->str, e->len, 0) < 0)
                return -ENOMEM;
            r = port_short(l, &pl, e, spec);
        }
        if (r < 0)
            return r;
        compose_load_pop(l, old);
    }
    s->ports = pl.v;
    s->n_ports = pl.n;
    return 0;
}

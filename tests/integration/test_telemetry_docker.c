/* The collector against the real Docker Engine: containers started with plain `docker run`, the
 * agent's figures read from the host's cgroups and /proc compared with `docker stats
 * --no-stream` for the same containers, network bytes that grow by a known amount of traffic on
 * a network the test creates, and a container removed under the collector's feet.
 *
 * Tolerances (docker stats prints 3-4 significant digits and samples its own ~1 s window):
 *   CPU %       |agent - docker| <= max(20 points, 20% of docker's figure); the agent's window
 *               (two cycles around the docker stats call) contains docker's
 *   memory      working set within 2% + 512 KiB of docker's MEM USAGE; the limit (the host's
 *               memory, no limit set) within 0.5%; and at least the 48 MiB the container holds
 *   network     within 2% + 4 kB of docker's NET I/O, and at least the 8 MiB sent
 *   pids        equal
 * Run under `flock /tmp/axion-docker.lock`; the test itself takes no lock. */
#include "support/testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/telemetry.h"

typedef Axion__Agent__V1__TelemetryBatch Batch;
typedef Axion__Agent__V1__TelemetryContainer Container;

#define IMAGE    "axion-test/busybox:1"
#define NET      "axt-tel-net"
#define MEM_MIB  48
#define SEND_MIB 8
/* Applets are called through busybox itself: the image need not have their links. */
#define BB "/bin/busybox "

enum { C_CPU, C_MEM, C_RX, C_TX, N_C };
static const char *const names[N_C] = {"axt-tel-cpu", "axt-tel-mem", "axt-tel-rx", "axt-tel-tx"};

struct ctr {
    char id[65];
    int pid;
};
static struct ctr ctrs[N_C];

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void cleanup(void)
{
    tu_sh("docker rm -f axt-tel-cpu axt-tel-mem axt-tel-rx axt-tel-tx >/dev/null 2>&1");
    tu_sh("docker network rm " NET " >/dev/null 2>&1");
}

static bool mem_ready(void *arg)
{
    return tu_sh("docker exec axt-tel-mem " BB "test -f /dev/shm/ready >/dev/null 2>&1") == 0;
}

/* "48.55MiB", "23.54GiB", "8.83MB", "250kB", "0B" → bytes */
static double parse_size(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    static const struct {
        const char *unit;
        double mul;
    } units[] = {
        {"B", 1},
        {"KiB", 1024.0},
        {"MiB", 1048576.0},
        {"GiB", 1073741824.0},
        {"TiB", 1099511627776.0},
        {"kB", 1e3},
        {"MB", 1e6},
        {"GB", 1e9},
        {"TB", 1e12},
    };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strncmp(end, units[i].unit, strlen(units[i].unit)) == 0 &&
            (end[strlen(units[i].unit)] == '\0' || end[strlen(units[i].unit)] == ' '))
            return v * units[i].mul;
    fail_msg("cannot read the size \"%s\"", s);
    return 0;
}

struct dstats {
    double cpu_pct, mem_usage, mem_limit, net_rx, net_tx, blk_r, blk_w;
    long pids;
};

/* docker stats --no-stream for our containers, by name. */
static void docker_stats(struct dstats out[N_C])
{
    char *text =
        tu_sh_out("docker stats --no-stream --format "
                  "'{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.NetIO}}|{{.BlockIO}}|{{.PIDs}}'"
                  " axt-tel-cpu axt-tel-mem axt-tel-rx axt-tel-tx");
    assert_non_null(text);
    fprintf(stderr, "docker stats:\n%s\n", text);
    int seen = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *f[6];
        int n = 0;
        for (char *s2 = NULL, *tok = strtok_r(line, "|", &s2); tok && n < 6;
             tok = strtok_r(NULL, "|", &s2))
            f[n++] = tok;
        assert_int_equal(n, 6);
        int k = -1;
        for (int i = 0; i < N_C; i++)
            if (strcmp(f[0], names[i]) == 0)
                k = i;
        assert_true(k >= 0);
        struct dstats *d = &out[k];
        d->cpu_pct = strtod(f[1], NULL);
        char *slash = strstr(f[2], " / ");
        assert_non_null(slash);
        *slash = '\0';
        d->mem_usage = parse_size(f[2]);
        d->mem_limit = parse_size(slash + 3);
        slash = strstr(f[3], " / ");
        assert_non_null(slash);
        *slash = '\0';
        d->net_rx = parse_size(f[3]);
        d->net_tx = parse_size(slash + 3);
        slash = strstr(f[4], " / ");
        assert_non_null(slash);
        *slash = '\0';
        d->blk_r = parse_size(f[4]);
        d->blk_w = parse_size(slash + 3);
        d->pids = strtol(f[5], NULL, 10);
        seen |= 1 << k;
    }
    assert_int_equal(seen, (1 << N_C) - 1);
    free(text);
}

static const Container *find(const Batch *b, int k)
{
    for (size_t i = 0; i < b->n_containers; i++)
        if (strcmp(b->containers[i]->id, ctrs[k].id) == 0)
            return b->containers[i];
    return NULL;
}

static void assert_close(const char *what, double agent, double docker, double rel, double abs)
{
    double tol = docker * rel + abs;
    fprintf(stderr, "%-34s agent %14.2f  docker %14.2f  (tolerance %.2f)\n", what, agent, docker,
            tol);
    if (agent < docker - tol || agent > docker + tol)
        fail_msg("%s: agent %.2f, docker stats %.2f, beyond the tolerance %.2f", what, agent,
                 docker, tol);
}

struct last {
    uint8_t *buf;
    size_t len;
};

static void keep_last(void *ud, const uint8_t *buf, size_t len, const struct telemetry_sample *s)
{
    struct last *l = ud;
    free(l->buf);
    l->buf = malloc(len ? len : 1);
    assert_non_null(l->buf);
    memcpy(l->buf, buf, len);
    l->len = len;
}

struct rx_wait {
    struct telemetry *t;
    uint64_t rx0, tx0;
};

static bool traffic_seen(void *arg)
{
    struct rx_wait *w = arg;
    const struct telemetry_sample *s;
    if (telemetry_collect(w->t, now_ms(), &s) < 0)
        return false;
    const Container *rx = find(s->batch, C_RX), *tx = find(s->batch, C_TX);
    return rx && tx && rx->net && tx->net && rx->net->rx_bytes - w->rx0 >= SEND_MIB << 20 &&
           tx->net->tx_bytes - w->tx0 >= SEND_MIB << 20;
}

static void test_against_docker_stats(void **state)
{
    const char *src = getenv("AXION_SOURCE_DIR");
    assert_non_null(src);
    assert_int_equal(tu_sh("'%s/tests/env/docker-up.sh'", src), 0);
    cleanup();

    assert_int_equal(tu_sh("docker network create " NET " >/dev/null"), 0);
    assert_int_equal(tu_sh("docker run -d --name axt-tel-cpu --label com.docker.stack.namespace="
                           "axt " IMAGE " " BB "sh -c 'while :; do :; done' >/dev/null"),
                     0);
    assert_int_equal(tu_sh("docker run -d --name axt-tel-mem " IMAGE " " BB "sh -c '" BB
                           "dd if=/dev/zero of=/dev/shm/blob bs=1M count=%d && " BB
                           "touch /dev/shm/ready && exec " BB "sleep 3600' >/dev/null",
                           MEM_MIB),
                     0);
    /* the receiver's stdin stays open (sleep), so nc reads the socket until the sender ends */
    assert_int_equal(tu_sh("docker run -d --name axt-tel-rx --network " NET " " IMAGE " " BB
                           "sh -c '" BB "sleep 100000 | " BB
                           "nc -l -p 5000 > /dev/null' >/dev/null"),
                     0);
    assert_int_equal(tu_sh("docker run -d --name axt-tel-tx --network " NET " " IMAGE " " BB
                           "sleep 3600 >/dev/null"),
                     0);
    assert_true(tu_wait_for(mem_ready, NULL, 30000));

    struct telemetry_container_info infos[N_C];
    for (int k = 0; k < N_C; k++) {
        char *o = tu_sh_out("docker inspect -f '{{.Id}} {{.State.Pid}}' %s", names[k]);
        assert_non_null(o);
        assert_int_equal(sscanf(o, "%64s %d", ctrs[k].id, &ctrs[k].pid), 2);
        assert_true(ctrs[k].pid > 0);
        free(o);
        infos[k] = (struct telemetry_container_info){
            .id = ctrs[k].id,
            .name = names[k],
            .pid = ctrs[k].pid,
            .stack = k == C_CPU ? "axt" : NULL,
        };
    }

    struct telemetry *t;
    assert_int_equal(telemetry_new(&(struct telemetry_options){.detail_every = 1}, &t), 0);
    struct last last = {0};
    assert_int_equal(telemetry_add_sink(t, &(struct telemetry_sink){keep_last, &last}), 0);
    assert_int_equal(telemetry_set_containers(t, infos, N_C), 0);

    /* CPU and memory: two agent cycles around one docker stats call */
    const struct telemetry_sample *s;
    assert_int_equal(telemetry_collect(t, now_ms(), &s), 0);
    assert_int_equal(s->n_containers, N_C);
    struct dstats d[N_C];
    docker_stats(d);
    assert_int_equal(telemetry_collect(t, now_ms(), &s), 0);
    const Batch *b = s->batch;
    fprintf(stderr, "agent cycle: %zu containers, %.1f us CPU, interval %llu ms\n", s->n_containers,
            s->cpu_ns / 1e3, (unsigned long long)b->interval_ms);

    const Container *cpu = find(b, C_CPU), *mem = find(b, C_MEM);
    assert_non_null(cpu);
    assert_non_null(mem);
    assert_string_equal(cpu->stack, "axt");
    assert_true(d[C_CPU].cpu_pct > 30); /* the burner runs */
    double tol = d[C_CPU].cpu_pct * 0.2 > 20 ? d[C_CPU].cpu_pct * 0.2 : 20;
    assert_close("cpu %, burner", cpu->cpu->percent, d[C_CPU].cpu_pct, 0, tol);
    assert_true(mem->cpu->percent < 5);

    uint64_t host_mem = b->host->memory->total_bytes;
    assert_close("memory, holder (working set)", (double)mem->memory->working_set_bytes,
                 d[C_MEM].mem_usage, 0.02, 512 * 1024);
    assert_true(mem->memory->working_set_bytes >= (uint64_t)MEM_MIB << 20);
    assert_true(mem->memory->working_set_bytes <= (uint64_t)(MEM_MIB + 8) << 20);
    assert_true(mem->memory->shmem_bytes >= (uint64_t)MEM_MIB << 20);
    assert_int_equal(mem->memory->limit_bytes, 0); /* no limit: docker shows the host's memory */
    assert_close("memory limit", (double)host_mem, d[C_MEM].mem_limit, 0.005, 0);
    assert_close("memory, burner", (double)cpu->memory->working_set_bytes, d[C_CPU].mem_usage, 0.02,
                 512 * 1024);
    for (int k = 0; k < N_C; k++) {
        const Container *c = find(b, k);
        assert_non_null(c);
        assert_non_null(c->pids);
        assert_int_equal((long)c->pids->current, d[k].pids);
        assert_close("block read", (double)c->io->read_bytes, d[k].blk_r, 0.02, 64 * 1024);
        assert_close("block write", (double)c->io->write_bytes, d[k].blk_w, 0.02, 64 * 1024);
    }

    /* Network: 8 MiB from tx to rx on the test's own network */
    struct rx_wait w = {t, find(b, C_RX)->net->rx_bytes, find(b, C_TX)->net->tx_bytes};
    char *ip = tu_sh_out("docker inspect -f '{{(index .NetworkSettings.Networks \"" NET
                         "\").IPAddress}}' axt-tel-rx");
    assert_non_null(ip);
    assert_true(strlen(ip) > 6);
    assert_int_equal(tu_sh("timeout 60 docker exec axt-tel-tx " BB "sh -c '" BB
                           "dd if=/dev/zero bs=1M count=%d 2>/dev/null | " BB "nc %s 5000'",
                           SEND_MIB, ip),
                     0);
    free(ip);
    assert_true(tu_wait_for(traffic_seen, &w, 10000));
    docker_stats(d);
    assert_int_equal(telemetry_collect(t, now_ms(), &s), 0);
    b = s->batch;
    const Container *rx = find(b, C_RX), *tx = find(b, C_TX);
    fprintf(stderr, "rx grew %llu bytes, tx grew %llu bytes for %d MiB sent\n",
            (unsigned long long)(rx->net->rx_bytes - w.rx0),
            (unsigned long long)(tx->net->tx_bytes - w.tx0), SEND_MIB);
    assert_true(rx->net->rx_bytes - w.rx0 <= (uint64_t)(SEND_MIB << 20) * 115 / 100);
    assert_close("net rx, receiver", (double)rx->net->rx_bytes, d[C_RX].net_rx, 0.02, 4000);
    assert_close("net tx, receiver", (double)rx->net->tx_bytes, d[C_RX].net_tx, 0.02, 4000);
    assert_close("net rx, sender", (double)tx->net->rx_bytes, d[C_TX].net_rx, 0.02, 4000);
    assert_close("net tx, sender", (double)tx->net->tx_bytes, d[C_TX].net_tx, 0.02, 4000);

    /* The printer shows every container */
    char *out = NULL;
    size_t outlen = 0;
    FILE *m = open_memstream(&out, &outlen);
    assert_int_equal(telemetry_print(last.buf, last.len, m, false), 0);
    fclose(m);
    fprintf(stderr, "%s", out);
    for (int k = 0; k < N_C; k++) {
        char shortid[13];
        snprintf(shortid, sizeof(shortid), "%.12s", ctrs[k].id);
        assert_non_null(strstr(out, shortid));
        assert_non_null(strstr(out, names[k]));
    }
    free(out);

    /* A container removed under the collector: left out, no error */
    assert_int_equal(tu_sh("docker rm -f axt-tel-cpu >/dev/null"), 0);
    assert_int_equal(telemetry_collect(t, now_ms(), &s), 0);
    assert_int_equal(s->n_containers, N_C - 1);
    assert_int_equal(s->n_skipped, 1);
    assert_null(find(s->batch, C_CPU));
    assert_int_equal(telemetry_remove_container(t, ctrs[C_CPU].id), 0);
    assert_int_equal(telemetry_collect(t, now_ms(), &s), 0);
    assert_int_equal(s->n_skipped, 0);

    telemetry_free(t);
    free(last.buf);
    cleanup();
}

static int teardown(void **state)
{
    cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_against_docker_stats, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

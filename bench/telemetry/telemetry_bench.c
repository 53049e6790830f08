/* telemetry-bench: what one telemetry cycle costs, side by side with `docker stats --no-stream`
 * for the same containers, in one run. Reads "<id> <pid> [name]" lines on stdin (run.sh makes
 * them). Not a test: it asserts nothing, it measures and prints.
 *
 *   telemetry-bench [--cycles N] [--gap-ms N] [--docker-runs N] [--no-docker] < containers
 *   telemetry-bench --print [--json] < containers     collect twice, 1 s apart, and print
 *
 * The agent's cost is the CPU time (user + system) of this process over N back-to-back cycles,
 * once with every file read every cycle (detail_every 1) and once with the default tiering. The
 * stats API's cost is the CPU time of the docker client plus dockerd, containerd and every
 * containerd-shim (they read the cgroups for dockerd) from /proc/<pid>/stat before and after,
 * minus what the same daemons burn in an idle window of the same length. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/telemetry.h"

#define MAX_CONTAINERS 4096

struct item {
    char id[129];
    char name[256];
    pid_t pid;
};

static struct item items[MAX_CONTAINERS];
static size_t n_items;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void read_items(void)
{
    char line[512];
    while (fgets(line, sizeof(line), stdin) && n_items < MAX_CONTAINERS) {
        struct item *it = &items[n_items];
        int pid;
        it->name[0] = '\0';
        if (sscanf(line, "%128s %d %255s", it->id, &pid, it->name) < 2)
            continue;
        it->pid = pid;
        n_items++;
    }
}

static int gap_ms = 100;

static struct telemetry *make_collector(unsigned detail_every, size_t n)
{
    /* detail_every 1: every file every cycle; else limits at their default (10 x detail) */
    struct telemetry_options o = {.detail_every = detail_every,
                                  .limits_every = detail_every == 1 ? 1 : 0};
    struct telemetry *t;
    int r = telemetry_new(&o, &t);
    if (r < 0) {
        fprintf(stderr, "telemetry_new: %s\n", strerror(-r));
        exit(1);
    }
    struct telemetry_container_info *v = calloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = (struct telemetry_container_info){
            .id = items[i].id, .name = items[i].name, .pid = items[i].pid};
    r = telemetry_set_containers(t, v, n);
    free(v);
    if (r != 0)
        fprintf(stderr, "telemetry_set_containers: %d (%s)\n", r, r < 0 ? strerror(-r) : "missing");
    return t;
}

struct agent_result {
    double first_cpu_us, first_wall_us;
    double cpu_us, wall_us; /* per cycle, steady state */
    size_t sampled;
    size_t bytes;
};

static void count_sink(void *ud, const uint8_t *buf, size_t len, const struct telemetry_sample *s)
{
    struct agent_result *r = ud;
    r->bytes = len;
    r->sampled = s->n_containers;
}

static struct agent_result bench_agent(unsigned detail_every, size_t n, int cycles)
{
    struct agent_result res = {0};
    struct telemetry *t = make_collector(detail_every, n);
    struct telemetry_sink sink = {count_sink, &res};
    telemetry_add_sink(t, &sink);
    double c0 = self_cpu_s(), w0 = mono_s();
    telemetry_collect(t, now_ms(), NULL);
    res.first_cpu_us = (self_cpu_s() - c0) * 1e6;
    res.first_wall_us = (mono_s() - w0) * 1e6;
    /* A second untimed cycle: every lazily opened file is open now. */
    telemetry_collect(t, now_ms(), NULL);
    /* Cycles a little apart, so that caches are not all warm from the previous one. */
    double cpu = 0, wall = 0;
    for (int i = 0; i < cycles; i++) {
        if (gap_ms)
            usleep((useconds_t)gap_ms * 1000);
        c0 = self_cpu_s();
        w0 = mono_s();
        telemetry_collect(t, now_ms(), NULL);
        cpu += self_cpu_s() - c0;
        wall += mono_s() - w0;
    }
    res.cpu_us = cpu * 1e6 / cycles;
    res.wall_us = wall * 1e6 / cycles;
    telemetry_free(t);
    return res;
}

/* ---- the daemons behind docker stats ------------------------------------------------------- */

enum { D_DOCKERD, D_CONTAINERD, D_SHIM, D_MAX };
static const char *const dnames[D_MAX] = {"dockerd", "containerd", "containerd-shim*"};

/* comm is at most 15 characters: "containerd-shim-runc-v2" reads "containerd-shim". */
static int daemon_kind(const char *comm)
{
    if (strcmp(comm, "dockerd") == 0)
        return D_DOCKERD;
    if (strcmp(comm, "containerd") == 0)
        return D_CONTAINERD;
    if (strncmp(comm, "containerd-shim", 15) == 0)
        return D_SHIM;
    return -1;
}

static void daemon_ticks(unsigned long long ticks[D_MAX], int counts[D_MAX])
{
    memset(ticks, 0, sizeof(unsigned long long) * D_MAX);
    memset(counts, 0, sizeof(int) * D_MAX);
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char path[300], buf[1024];
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        char *lp = strchr(buf, '('), *rp = strrchr(buf, ')');
        if (!lp || !rp)
            continue;
        *rp = '\0';
        const char *comm = lp + 1;
        int which = daemon_kind(comm);
        if (which < 0)
            continue;
        /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
         * stime */
        unsigned long long ut, st;
        if (sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
            continue;
        ticks[which] += ut + st;
        counts[which]++;
    }
    if (d)
        closedir(d);
}

struct docker_result {
    double wall_s;
    double client_cpu_s;
    double daemon_cpu_s[D_MAX];
    double idle_cpu_s[D_MAX]; /* same daemons, idle window of the same length */
    int daemon_procs[D_MAX];
};

static double ticks_s(unsigned long long t)
{
    return (double)t / (double)sysconf(_SC_CLK_TCK);
}

static int run_docker_stats(double *ret_wall, double *ret_cpu)
{
    char **argv = calloc(n_items + 6, sizeof(char *));
    size_t k = 0;
    argv[k++] = "docker";
    argv[k++] = "stats";
    argv[k++] = "--no-stream";
    argv[k++] = "--format";
    argv[k++] = "{{.ID}} {{.CPUPerc}} {{.MemUsage}} {{.NetIO}} {{.BlockIO}} {{.PIDs}}";
    for (size_t i = 0; i < n_items; i++)
        argv[k++] = items[i].id;
    argv[k] = NULL;
    double w0 = mono_s();
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execvp("docker", argv);
        _exit(127);
    }
    free(argv);
    int status;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) < 0)
        return -1;
    *ret_wall = mono_s() - w0;
    *ret_cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int bench_docker(struct docker_result *res)
{
    unsigned long long a[D_MAX], b[D_MAX];
    int cnt[D_MAX];
    daemon_ticks(a, cnt);
    if (run_docker_stats(&res->wall_s, &res->client_cpu_s) < 0) {
        fprintf(stderr, "docker stats failed\n");
        return -1;
    }
    daemon_ticks(b, res->daemon_procs);
    for (int i = 0; i < D_MAX; i++)
        res->daemon_cpu_s[i] = ticks_s(b[i] - a[i]);
    /* The same daemons doing nothing for as long: swarm heartbeats, other users. */
    daemon_ticks(a, cnt);
    usleep((useconds_t)(res->wall_s * 1e6));
    daemon_ticks(b, cnt);
    for (int i = 0; i < D_MAX; i++)
        res->idle_cpu_s[i] = ticks_s(b[i] - a[i]);
    return 0;
}

static double docker_total(const struct docker_result *r, bool net)
{
    double s = r->client_cpu_s;
    for (int i = 0; i < D_MAX; i++)
        s += r->daemon_cpu_s[i] - (net ? r->idle_cpu_s[i] : 0);
    return s;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void status_kb(const char *key, long *ret)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    size_t kl = strlen(key);
    *ret = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':')
            *ret = strtol(line + kl + 1, NULL, 10);
    if (f)
        fclose(f);
}

/* ---- --print ------------------------------------------------------------------------------- */

struct copy_sink {
    uint8_t *buf;
    size_t len;
};

static void copy_emit(void *ud, const uint8_t *buf, size_t len, const struct telemetry_sample *s)
{
    struct copy_sink *c = ud;
    free(c->buf);
    c->buf = malloc(len ? len : 1);
    if (c->buf)
        memcpy(c->buf, buf, len);
    c->len = len;
}

static int print_mode(bool json)
{
    struct telemetry *t = make_collector(1, n_items);
    struct copy_sink cs = {0};
    struct telemetry_sink sink = {copy_emit, &cs};
    telemetry_add_sink(t, &sink);
    telemetry_collect(t, now_ms(), NULL);
    sleep(1);
    telemetry_collect(t, now_ms(), NULL);
    int r = cs.buf ? telemetry_print(cs.buf, cs.len, stdout, json) : -ENOMEM;
    free(cs.buf);
    telemetry_free(t);
    if (r < 0)
        fprintf(stderr, "telemetry_print: %s\n", strerror(-r));
    return r < 0;
}

int main(int argc, char **argv)
{
    int cycles = 300, docker_runs = 3;
    bool docker = true, print = false, json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--cycles") == 0 && i + 1 < argc)
            cycles = atoi(argv[++i]);
        else if (strcmp(argv[i], "--docker-runs") == 0 && i + 1 < argc)
            docker_runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--gap-ms") == 0 && i + 1 < argc)
            gap_ms = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-docker") == 0)
            docker = false;
        else if (strcmp(argv[i], "--print") == 0)
            print = true;
        else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else {
            fprintf(stderr,
                    "usage: %s [--cycles N] [--gap-ms N] [--docker-runs N] [--no-docker] "
                    "[--print [--json]] < 'id pid name' lines\n",
                    argv[0]);
            return 2;
        }
    }
    if (cycles < 1)
        cycles = 1;
    if (docker_runs < 1)
        docker_runs = 1;
    read_items();
    if (print)
        return print_mode(json);

    struct mallinfo2 m0 = mallinfo2();
    /* Back-to-back cycles (warm caches), then cycles gap_ms apart: in the daemon a cycle runs
     * every telemetry.interval, so the second is the realistic one. */
    int cold = cycles / 3 > 0 ? cycles / 3 : 1;
    int gap = gap_ms;
    gap_ms = 0;
    struct agent_result host = bench_agent(0, 0, cycles);
    struct agent_result all = bench_agent(1, n_items, cycles);
    struct agent_result tiered = bench_agent(0, n_items, cycles);
    struct agent_result slow = bench_agent(12, n_items, cycles);
    gap_ms = gap;
    struct agent_result host_c = bench_agent(0, 0, cold);
    struct agent_result all_c = bench_agent(1, n_items, cold);
    struct agent_result tiered_c = bench_agent(0, n_items, cold);
    struct agent_result slow_c = bench_agent(12, n_items, cold);
    long rss, hwm;
    status_kb("VmRSS", &rss);
    status_kb("VmHWM", &hwm);
    /* Heap the collector holds with every container added (measured on a fresh one). */
    struct telemetry *t = make_collector(0, n_items);
    telemetry_collect(t, now_ms(), NULL);
    struct mallinfo2 m1 = mallinfo2();
    telemetry_free(t);

    size_t n = n_items ? n_items : 1;
    printf("containers: %zu (sampled %zu)\n", n_items, all.sampled);
    printf("batch size: %zu bytes\n\n", all.bytes);
    printf("%-46s %10s %10s %12s\n", "agent, one collection cycle", "CPU us", "wall us",
           "CPU us/ctr");
    printf("%-46s %10.1f %10.1f %12.2f\n", "first cycle (opens the files)", all.first_cpu_us,
           all.first_wall_us, all.first_cpu_us / (double)n);
    struct {
        const char *name;
        const struct agent_result *r;
        bool per;
    } rows[] = {
        {"every file every cycle, back-to-back", &all, true},
        {"every file every cycle, cycles apart", &all_c, true},
        {"default tiers, back-to-back", &tiered, true},
        {"default tiers, cycles apart", &tiered_c, true},
        {"detail every 12 cycles, back-to-back", &slow, true},
        {"detail every 12 cycles, cycles apart", &slow_c, true},
        {"host alone (no containers), back-to-back", &host, false},
        {"host alone (no containers), cycles apart", &host_c, false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (rows[i].per)
            printf("%-46s %10.1f %10.1f %12.2f\n", rows[i].name, rows[i].r->cpu_us,
                   rows[i].r->wall_us, rows[i].r->cpu_us / (double)n);
        else
            printf("%-46s %10.1f %10.1f %12s\n", rows[i].name, rows[i].r->cpu_us,
                   rows[i].r->wall_us, "-");
    }
    printf("(means of %d back-to-back cycles, and of %d cycles %d ms apart; default tiers:\n"
           " detail files every %d cycles, limits every %d, amortized)\n",
           cycles, cold, gap_ms, TELEMETRY_DEFAULT_DETAIL_EVERY,
           TELEMETRY_DEFAULT_DETAIL_EVERY * TELEMETRY_DEFAULT_LIMITS_FACTOR);
    printf("agent RSS: %ld KiB (peak %ld KiB); collector heap with %zu containers: %zu KiB\n\n",
           rss, hwm, n_items, (m1.uordblks > m0.uordblks ? m1.uordblks - m0.uordblks : 0) / 1024);
    if (!docker || !n_items)
        return 0;

    double totals[16], nets[16], walls[16];
    if (docker_runs > 16)
        docker_runs = 16;
    struct docker_result last = {0};
    printf("docker stats --no-stream, %zu containers:\n", n_items);
    printf("%4s %8s %10s %10s %12s %10s %10s %12s\n", "run", "wall s", "client s", "dockerd s",
           "containerd s", "shims s", "idle s", "total-idle s");
    for (int i = 0; i < docker_runs; i++) {
        struct docker_result r = {0};
        if (bench_docker(&r) < 0)
            return 1;
        walls[i] = r.wall_s;
        totals[i] = docker_total(&r, false);
        nets[i] = docker_total(&r, true);
        double idle = r.idle_cpu_s[0] + r.idle_cpu_s[1] + r.idle_cpu_s[2];
        printf("%4d %8.2f %10.3f %10.3f %12.3f %10.3f %10.3f %12.3f\n", i + 1, r.wall_s,
               r.client_cpu_s, r.daemon_cpu_s[D_DOCKERD], r.daemon_cpu_s[D_CONTAINERD],
               r.daemon_cpu_s[D_SHIM], idle, nets[i]);
        last = r;
    }
    printf("(daemons counted: %d dockerd, %d containerd, %d %s)\n\n", last.daemon_procs[D_DOCKERD],
           last.daemon_procs[D_CONTAINERD], last.daemon_procs[D_SHIM], dnames[D_SHIM]);
    qsort(totals, (size_t)docker_runs, sizeof(double), cmp_double);
    qsort(nets, (size_t)docker_runs, sizeof(double), cmp_double);
    qsort(walls, (size_t)docker_runs, sizeof(double), cmp_double);
    double med_total = totals[docker_runs / 2] * 1e6, med_net = nets[docker_runs / 2] * 1e6,
           med_wall = walls[docker_runs / 2] * 1e6;

    printf("ratios against the baseline `docker stats --no-stream` (median of %d runs):\n",
           docker_runs);
    printf("  %-38s %8s %14s %8s\n", "agent", "CPU", "CPU idle-corr.", "wall");
    const struct {
        const char *name;
        const struct agent_result *r;
    } cmp[] = {
        {"every file, back-to-back", &all},       {"every file, cycles apart", &all_c},
        {"default tiers, back-to-back", &tiered}, {"default tiers, cycles apart", &tiered_c},
        {"detail every 12, back-to-back", &slow}, {"detail every 12, cycles apart", &slow_c},
    };
    for (size_t i = 0; i < sizeof(cmp) / sizeof(cmp[0]); i++)
        printf("  %-38s %7.0fx %13.0fx %7.0fx\n", cmp[i].name, med_total / cmp[i].r->cpu_us,
               med_net / cmp[i].r->cpu_us, med_wall / cmp[i].r->wall_us);
    printf("  docker stats CPU per container: %.0f us\n", med_total / (double)n);
    return 0;
}

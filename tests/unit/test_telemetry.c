/* agent/telemetry: whole cycles on the fixture trees of tests/data/cgroup, with the exact values
 * the files hold, rates over a second cycle, the detail tiering, containers that vanish, the
 * printer, and a steady-state cycle that allocates nothing. */
#include "support/testutil.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/telemetry.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#endif

#define ID_A "2b5f0d7b3f0c4c1e8a9d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b"
#define ID_B "7e3c9a1f5b2d4e6a8c0b1d3f5e7a9c2b4d6f8e0a1c3b5d7f9e2a4c6b8d0f1e3a"
#define ID_C "5c1f9e2d7a3b4c6e8f0a2b4d6c8e0f1a3b5c7d9e1f2a4b6c8d0e2f3a5b7c9d1e"
#define ID_D "9d4e2a6c8b0f1e3d5a7c9b2e4f6a8c0d1e3f5a7b9c2d4e6f8a0b1c3d5e7f9a2b"

#define T0 1800000000000LL /* a Unix time in ms */

typedef Axion__Agent__V1__TelemetryBatch Batch;
typedef Axion__Agent__V1__TelemetryContainer Container;

/* ---- counting allocations ------------------------------------------------------------------ */

static volatile size_t n_allocs;
static volatile int counting;

#ifdef TEST_ASAN
#include <sanitizer/allocator_interface.h>
static void on_malloc(const volatile void *p, size_t n)
{
    if (counting)
        n_allocs++;
}
static void on_free(const volatile void *p)
{
}
static void count_allocs_init(void)
{
    static int done;
    if (!done++)
        __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}
#else
/* Without ASan: interpose the allocator and count on the way to glibc's. */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
void *malloc(size_t n)
{
    if (counting)
        n_allocs++;
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t m)
{
    if (counting)
        n_allocs++;
    return __libc_calloc(n, m);
}
void *realloc(void *p, size_t n)
{
    if (counting)
        n_allocs++;
    return __libc_realloc(p, n);
}
static void count_allocs_init(void)
{
}
#endif

/* ---- fixtures ------------------------------------------------------------------------------ */

struct fix {
    char *dir, *sys, *proc;
};

static struct fix fixture(const char *which)
{
    const char *src = getenv("AXION_SOURCE_DIR");
    assert_non_null(src);
    struct fix f = {.dir = tu_mkdtemp()};
    assert_non_null(f.dir);
    assert_int_equal(tu_sh("cp -a '%s/tests/data/cgroup/%s/.' '%s/'", src, which, f.dir), 0);
    assert_true(asprintf(&f.sys, "%s/sys", f.dir) > 0);
    assert_true(asprintf(&f.proc, "%s/proc", f.dir) > 0);
    return f;
}

static void fixture_free(struct fix *f)
{
    tu_rm_rf(f->dir);
    free(f->dir);
    free(f->sys);
    free(f->proc);
}

/* Rewrites a file in place (same inode: the collector's open descriptor sees the new text). */
static void put(const struct fix *f, const char *rel, const char *text)
{
    char *p;
    assert_true(asprintf(&p, "%s/%s", f->dir, rel) > 0);
    assert_int_equal(tu_write_file(p, text), 0);
    free(p);
}

/* sed expression applied to a file, in place. */
static void edit(const struct fix *f, const char *rel, const char *sed)
{
    assert_int_equal(tu_sh("cd '%s' && sed '%s' '%s' > '%s.new' && cat '%s.new' > '%s' && rm "
                           "'%s.new'",
                           f->dir, sed, rel, rel, rel, rel, rel),
                     0);
}

struct sink_state {
    uint8_t buf[1 << 16]; /* preallocated: the sink itself allocates nothing */
    size_t len;
    int calls;
    size_t n_containers;
};

static void sink_emit(void *ud, const uint8_t *buf, size_t len, const struct telemetry_sample *s)
{
    struct sink_state *st = ud;
    st->calls++;
    st->len = len <= sizeof(st->buf) ? len : 0;
    memcpy(st->buf, buf, st->len);
    st->n_containers = s->n_containers;
}

static struct telemetry *collector(const struct fix *f, unsigned detail_every,
                                   struct sink_state *sink)
{
    struct telemetry_options o = {
        .cgroup_root = f->sys,
        .proc_root = f->proc,
        .docker_root = f->dir,
        .agent_id = "agent-7",
        .hostname = "fixture-host",
        .detail_every = detail_every,
    };
    struct telemetry *t;
    assert_int_equal(telemetry_new(&o, &t), 0);
    if (sink) {
        struct telemetry_sink s = {sink_emit, sink};
        assert_int_equal(telemetry_add_sink(t, &s), 0);
    }
    return t;
}

static const Container *find(const Batch *b, const char *id)
{
    for (size_t i = 0; i < b->n_containers; i++)
        if (strcmp(b->containers[i]->id, id) == 0)
            return b->containers[i];
    return NULL;
}

static void assert_near(double v, double want)
{
    if (v < want - 1e-6 || v > want + 1e-6)
        fail_msg("%.9f != %.9f", v, want);
}

static const struct telemetry_container_info info_a = {
    .id = ID_A,
    .name = "/shop_web.1.abc",
    .pid = 101,
    .service = "shop_web",
    .task = "shop_web.1.abc",
    .stack = "shop",
};
static const struct telemetry_container_info info_b = {.id = ID_B, .name = "b", .pid = 102};
static const struct telemetry_container_info info_c = {.id = ID_C, .name = "c", .pid = 201};
static const struct telemetry_container_info info_d = {.id = ID_D, .name = "d", .pid = 202};

/* ---- cgroup v2 ----------------------------------------------------------------------------- */

static void test_v2_sample(void **state)
{
    struct fix f = fixture("v2");
    struct sink_state *sink = calloc(1, sizeof(*sink));
    struct telemetry *t = collector(&f, 1, sink);
    assert_int_equal(telemetry_add_container(t, &info_a), 0);
    assert_int_equal(telemetry_add_container(t, &info_b), 0);
    const struct telemetry_sample *s;
    assert_int_equal(telemetry_collect(t, T0, &s), 0);
    assert_int_equal(sink->calls, 1);
    assert_int_equal(s->n_containers, 2);
    assert_int_equal(s->n_skipped, 0);

    /* What went to the sink decodes to what the sample holds. */
    Batch *b = axion__agent__v1__telemetry_batch__unpack(NULL, sink->len, sink->buf);
    assert_non_null(b);
    assert_string_equal(b->agent_id, "agent-7");
    assert_string_equal(b->hostname, "fixture-host");
    assert_int_equal(b->timestamp_ms, T0);
    assert_int_equal(b->seq, 1);
    assert_int_equal(b->interval_ms, 0);
    assert_int_equal(b->cgroup_version, 2);
    assert_int_equal(b->containers_skipped, 0);

    const Axion__Agent__V1__TelemetryHost *h = b->host;
    assert_non_null(h);
    assert_int_equal(h->ncpu, 2);
    assert_int_equal(h->cpu->user_ms, 50900);
    assert_int_equal(h->cpu->nice_ms, 100);
    assert_int_equal(h->cpu->system_ms, 27290);
    assert_int_equal(h->cpu->idle_ms, 591130);
    assert_int_equal(h->cpu->iowait_ms, 5620);
    assert_int_equal(h->cpu->softirq_ms, 600);
    assert_int_equal(h->cpu->steal_ms, 610);
    assert_near(h->cpu->busy_pct, 0);
    assert_near(h->load1, 0.15);
    assert_near(h->load5, 0.17);
    assert_near(h->load15, 0.09);
    assert_near(h->uptime_s, 340.73);
    assert_int_equal(h->oom_kills, 3);
    assert_int_equal(h->memory->total_bytes, 24684556ull * 1024);
    assert_int_equal(h->memory->available_bytes, 24237560ull * 1024);
    assert_int_equal(h->memory->cached_bytes, 528972ull * 1024);
    assert_int_equal(h->memory->swap_total_bytes, 2097148ull * 1024);
    assert_int_equal(h->memory->swap_free_bytes, 2097000ull * 1024);
    assert_non_null(h->pressure);
    assert_int_equal(h->pressure->cpu->some_total_us, 7229699);
    assert_int_equal(h->pressure->cpu->full_total_us, 0);
    assert_int_equal(h->pressure->io->some_total_us, 4561258);
    assert_int_equal(h->pressure->io->full_total_us, 4322483);
    /* whole disks only */
    assert_int_equal(h->n_disks, 3);
    assert_string_equal(h->disks[0]->name, "vda");
    assert_int_equal(h->disks[0]->read_bytes, 2765074ull * 512);
    assert_int_equal(h->disks[0]->write_bytes, 1909144ull * 512);
    assert_int_equal(h->disks[0]->reads, 38092);
    assert_int_equal(h->disks[0]->writes, 20114);
    assert_int_equal(h->disks[0]->io_time_ms, 7988);
    assert_string_equal(h->disks[1]->name, "nvme0n1");
    assert_string_equal(h->disks[2]->name, "dm-0");
    /* no veth */
    assert_int_equal(h->n_interfaces, 4);
    assert_string_equal(h->interfaces[0]->name, "lo");
    assert_string_equal(h->interfaces[1]->name, "eth0");
    assert_int_equal(h->interfaces[1]->rx_bytes, 146113654);
    assert_int_equal(h->interfaces[1]->tx_packets, 1562);
    assert_string_equal(h->interfaces[3]->name, "docker_gwbridge");
    assert_int_equal(h->n_filesystems, 2);
    assert_string_equal(h->filesystems[0]->path, "/");
    assert_string_equal(h->filesystems[1]->path, f.dir);
    assert_true(h->filesystems[1]->total_bytes > 0);

    const Container *a = find(b, ID_A);
    assert_non_null(a);
    assert_string_equal(a->name, "shop_web.1.abc");
    assert_int_equal(a->pid, 101);
    assert_string_equal(a->service, "shop_web");
    assert_string_equal(a->task, "shop_web.1.abc");
    assert_string_equal(a->stack, "shop");
    assert_int_equal(a->detail_timestamp_ms, T0);
    assert_int_equal(a->cpu->usage_ns, 8130143000ull);
    assert_int_equal(a->cpu->user_ns, 5127354000ull);
    assert_int_equal(a->cpu->system_ns, 3002789000ull);
    assert_near(a->cpu->percent, 0);
    assert_near(a->cpu->limit_cpus, 1.5);
    assert_non_null(a->cpu->throttling);
    assert_int_equal(a->cpu->throttling->periods, 1204);
    assert_int_equal(a->cpu->throttling->throttled_periods, 37);
    assert_int_equal(a->cpu->throttling->throttled_ns, 2389004000ull);
    assert_int_equal(a->memory->current_bytes, 28672000);
    assert_int_equal(a->memory->limit_bytes, 0); /* memory.max "max" */
    assert_int_equal(a->memory->peak_bytes, 41943040);
    assert_int_equal(a->memory->working_set_bytes, 28672000 - 20840448);
    assert_int_equal(a->memory->anon_bytes, 1204224);
    assert_int_equal(a->memory->file_bytes, 26783744);
    assert_int_equal(a->memory->slab_bytes, 771024);
    assert_int_equal(a->memory->sock_bytes, 8192);
    assert_int_equal(a->memory->shmem_bytes, 524288);
    assert_int_equal(a->memory->inactive_file_bytes, 20840448);
    assert_int_equal(a->memory->oom_events, 2);
    assert_int_equal(a->memory->oom_kill_events, 1);
    assert_int_equal(a->io->read_bytes, 1459200 + 90430464);
    assert_int_equal(a->io->write_bytes, 314773504 + 299008000);
    assert_int_equal(a->io->read_ops, 192 + 8950);
    assert_int_equal(a->io->write_ops, 353 + 1252);
    assert_int_equal(a->pids->current, 7);
    assert_int_equal(a->pids->limit, 2048);
    assert_int_equal(a->pressure->cpu->some_total_us, 26537);
    assert_int_equal(a->pressure->cpu->full_total_us, 16597);
    assert_int_equal(a->pressure->memory->some_total_us, 1200);
    assert_int_equal(a->pressure->io->full_total_us, 91000);
    /* eth0 + eth1, not lo */
    assert_int_equal(a->net->rx_bytes, 5100000);
    assert_int_equal(a->net->rx_packets, 4100);
    assert_int_equal(a->net->rx_errors, 1);
    assert_int_equal(a->net->rx_drops, 2);
    assert_int_equal(a->net->tx_bytes, 2050000);
    assert_int_equal(a->net->tx_packets, 3060);
    assert_int_equal(a->net->tx_errors, 3);
    assert_int_equal(a->net->tx_drops, 4);

    const Container *c = find(b, ID_B);
    assert_non_null(c);
    assert_int_equal(c->cpu->usage_ns, 44247000ull);
    assert_null(c->cpu->throttling);    /* cpu controller off: no throttling keys */
    assert_near(c->cpu->limit_cpus, 0); /* and no cpu.max */
    assert_int_equal(c->memory->current_bytes, 1486848);
    assert_int_equal(c->memory->limit_bytes, 268435456);
    assert_int_equal(c->memory->peak_bytes, 0); /* no memory.peak */
    /* inactive_file above usage: the working set is the usage */
    assert_int_equal(c->memory->working_set_bytes, 1486848);
    assert_int_equal(c->io->read_bytes, 0); /* empty io.stat */
    assert_int_equal(c->pids->current, 1);
    assert_int_equal(c->pids->limit, 0); /* pids.max "max" */
    assert_int_equal(c->net->rx_bytes, 876);
    assert_int_equal(c->net->tx_bytes, 0);
    assert_string_equal(c->service, "");

    axion__agent__v1__telemetry_batch__free_unpacked(b, NULL);
    telemetry_free(t);
    free(sink);
    fixture_free(&f);
}

static void test_v2_rates(void **state)
{
    struct fix f = fixture("v2");
    struct telemetry *t = collector(&f, 1, NULL);
    assert_int_equal(telemetry_add_container(t, &info_a), 0);
    assert_int_equal(telemetry_collect(t, T0, NULL), 0);

    const char *cg = "sys/system.slice/docker-" ID_A ".scope";
    char rel[256];
    /* 10 s later: 1 s of CPU, 100 more periods of which 25 throttled */
    snprintf(rel, sizeof(rel), "%s/cpu.stat", cg);
    edit(&f, rel,
         "s/^usage_usec .*/usage_usec 9130143/;s/^nr_periods .*/nr_periods 1304/;"
         "s/^nr_throttled .*/nr_throttled 62/");
    snprintf(rel, sizeof(rel), "%s/io.stat", cg);
    edit(&f, rel, "s/rbytes=90430464/rbytes=100430464/");
    snprintf(rel, sizeof(rel), "%s/cpu.pressure", cg);
    put(&f, rel,
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=526537\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=116597\n");
    edit(&f, "proc/101/net/dev",
         "s/eth0: 5000000/eth0: 6000000/;s/  2000000    3000/  2500000    3000/");
    edit(&f, "proc/stat", "s/^cpu  .*/cpu  5190 10 2779 59913 592 0 60 81 0 0/");
    edit(&f, "proc/diskstats",
         "s/ vda 38092 6924 2765074 41737 20114 8470 1909144 8349 0 7988/"
         " vda 38092 6924 2785074 41737 20114 8470 1909144 8349 0 8488/");
    edit(&f, "proc/net/dev", "s/eth0: 146113654/eth0: 147113654/");
    put(&f, "proc/pressure/cpu",
        "some avg10=4.80 avg60=1.96 avg300=1.07 total=8229699\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");

    const struct telemetry_sample *s;
    assert_int_equal(telemetry_collect(t, T0 + 10000, &s), 0);
    const Batch *b = s->batch;
    assert_int_equal(b->seq, 2);
    assert_int_equal(b->interval_ms, 10000);
    const Container *a = find(b, ID_A);
    assert_non_null(a);
    assert_near(a->cpu->percent, 10.0);
    assert_int_equal(a->cpu->throttling->periods, 1304);
    assert_near(a->cpu->throttling->throttled_pct, 25.0);
    assert_near(a->net->rx_bytes_per_s, 100000.0);
    assert_near(a->net->tx_bytes_per_s, 50000.0);
    assert_near(a->io->read_bytes_per_s, 1000000.0);
    assert_near(a->io->write_bytes_per_s, 0);
    assert_near(a->pressure->cpu->some_pct, 5.0);
    assert_near(a->pressure->cpu->full_pct, 1.0);
    assert_near(a->pressure->memory->some_pct, 0);

    const Axion__Agent__V1__TelemetryHost *h = b->host;
    /* 1000 ticks: user 100, system 50, idle 800, iowait 30, steal 20 */
    assert_near(h->cpu->busy_pct, 17.0);
    assert_near(h->cpu->user_pct, 10.0);
    assert_near(h->cpu->system_pct, 5.0);
    assert_near(h->cpu->iowait_pct, 3.0);
    assert_near(h->cpu->steal_pct, 2.0);
    assert_near(h->disks[0]->read_bytes_per_s, 20000.0 * 512 / 10);
    assert_near(h->disks[0]->util_pct, 5.0);
    assert_near(h->interfaces[1]->rx_bytes_per_s, 100000.0);
    assert_near(h->pressure->cpu->some_pct, 10.0);

    /* Time that did not move forward gives no rates. */
    assert_int_equal(telemetry_collect(t, T0 + 10000, &s), 0);
    assert_near(find(s->batch, ID_A)->cpu->percent, 0);
    assert_int_equal(s->batch->interval_ms, 0);
    telemetry_free(t);
    fixture_free(&f);
}

static void test_tiering(void **state)
{
    struct fix f = fixture("v2");
    struct telemetry_options o = {.cgroup_root = f.sys,
                                  .proc_root = f.proc,
                                  .docker_root = "",
                                  .detail_every = 3,
                                  .limits_every = 6};
    struct telemetry *t;
    assert_int_equal(telemetry_new(&o, &t), 0);
    assert_int_equal(telemetry_add_container(t, &info_a), 0);
    const struct telemetry_sample *s;
    assert_int_equal(telemetry_collect(t, T0, &s), 0); /* a new container: everything */

    const char *cg = "sys/system.slice/docker-" ID_A ".scope";
    char cur[256], stat[256], pids[256], pmax[256];
    snprintf(cur, sizeof(cur), "%s/memory.current", cg);
    snprintf(stat, sizeof(stat), "%s/memory.stat", cg);
    snprintf(pids, sizeof(pids), "%s/pids.current", cg);
    snprintf(pmax, sizeof(pmax), "%s/pids.max", cg);
    put(&f, cur, "29000000\n");
    edit(&f, stat, "s/^inactive_file .*/inactive_file 10000000/");
    put(&f, pids, "9\n");
    put(&f, pmax, "4096\n");

    /* seq 2: the fast files only; inactive_file is still the one of seq 1 */
    assert_int_equal(telemetry_collect(t, T0 + 10000, &s), 0);
    const Container *a = find(s->batch, ID_A);
    assert_int_equal(a->memory->current_bytes, 29000000);
    assert_int_equal(a->memory->working_set_bytes, 29000000 - 20840448);
    assert_int_equal(a->pids->current, 7);
    assert_int_equal(a->pids->limit, 2048);
    assert_int_equal(a->detail_timestamp_ms, T0);
    /* the detail values are still in the batch */
    assert_int_equal(a->io->read_bytes, 1459200 + 90430464);
    assert_non_null(a->pressure);

    /* seq 3: a detail cycle, not a limits one */
    assert_int_equal(telemetry_collect(t, T0 + 20000, &s), 0);
    a = find(s->batch, ID_A);
    assert_int_equal(a->memory->working_set_bytes, 29000000 - 10000000);
    assert_int_equal(a->pids->current, 9);
    assert_int_equal(a->pids->limit, 2048);
    assert_int_equal(a->detail_timestamp_ms, T0 + 20000);

    /* seq 4: memory usage jumped by more than 8 MiB: memory.stat is read before its turn */
    put(&f, cur, "60000000\n");
    edit(&f, stat, "s/^inactive_file .*/inactive_file 5000000/");
    assert_int_equal(telemetry_collect(t, T0 + 30000, &s), 0);
    a = find(s->batch, ID_A);
    assert_int_equal(a->memory->working_set_bytes, 55000000);
    assert_int_equal(a->detail_timestamp_ms, T0 + 20000);
    /* ... and not again while it stays put */
    edit(&f, stat, "s/^inactive_file .*/inactive_file 4000000/");
    assert_int_equal(telemetry_collect(t, T0 + 40000, &s), 0); /* seq 5 */
    assert_int_equal(find(s->batch, ID_A)->memory->working_set_bytes, 55000000);

    /* seq 6: the limits */
    assert_int_equal(telemetry_collect(t, T0 + 50000, &s), 0);
    assert_int_equal(find(s->batch, ID_A)->pids->limit, 4096);

    /* A resync of the set does not force the limits to be read ... */
    put(&f, pmax, "8192\n");
    assert_int_equal(telemetry_set_containers(t, &info_a, 1), 0);
    assert_int_equal(telemetry_collect(t, T0 + 55000, &s), 0); /* seq 7 */
    assert_int_equal(find(s->batch, ID_A)->pids->limit, 4096);

    /* ... adding it again (a Docker "update" event) does: everything at the next cycle, and
     * rates go on. */
    assert_int_equal(telemetry_add_container(t, &info_a), 0);
    assert_int_equal(telemetry_collect(t, T0 + 65000, &s), 0); /* seq 8 */
    a = find(s->batch, ID_A);
    assert_int_equal(a->pids->limit, 8192);
    assert_int_equal(a->detail_timestamp_ms, T0 + 65000);
    assert_int_equal(s->batch->interval_ms, 10000);
    telemetry_free(t);
    fixture_free(&f);
}

/* ---- cgroup v1 ----------------------------------------------------------------------------- */

static void test_v1_sample(void **state)
{
    struct fix f = fixture("v1");
    struct telemetry *t = collector(&f, 1, NULL);
    assert_int_equal(telemetry_add_container(t, &info_c), 0);
    assert_int_equal(telemetry_add_container(t, &info_d), 0);
    const struct telemetry_sample *s;
    assert_int_equal(telemetry_collect(t, T0, &s), 0);
    const Batch *b = s->batch;
    assert_int_equal(b->cgroup_version, 1);
    assert_int_equal(b->n_containers, 2);
    assert_null(b->host->pressure); /* no /proc/pressure: normal */

    const Container *c = find(b, ID_C);
    assert_non_null(c);
    assert_int_equal(c->cpu->usage_ns, 13919457253ull);
    assert_int_equal(c->cpu->user_ns, 13810000000ull);
    assert_int_equal(c->cpu->system_ns, 100000000ull);
    assert_near(c->cpu->limit_cpus, 0);
    assert_non_null(c->cpu->throttling);
    assert_int_equal(c->cpu->throttling->periods, 0);
    assert_int_equal(c->memory->current_bytes, 2068480);
    assert_int_equal(c->memory->limit_bytes, 0);
    assert_int_equal(c->memory->peak_bytes, 4325376);
    assert_int_equal(c->memory->working_set_bytes, 2068480 - 1167360);
    assert_int_equal(c->memory->anon_bytes, 53248);
    assert_int_equal(c->memory->file_bytes, 1658880);
    assert_int_equal(c->memory->slab_bytes, 0);
    assert_int_equal(c->memory->oom_kill_events, 0);
    assert_int_equal(c->io->read_bytes, 0);
    assert_int_equal(c->pids->current, 1);
    assert_int_equal(c->pids->limit, 0);
    /* PSI from the unified tree of the hybrid layout */
    assert_int_equal(c->pressure->cpu->some_total_us, 26537);
    assert_int_equal(c->net->rx_bytes, 876);
    assert_int_equal(c->net->rx_packets, 10);

    const Container *d = find(b, ID_D);
    assert_non_null(d);
    assert_int_equal(d->cpu->usage_ns, 2500000000ull);
    assert_int_equal(d->cpu->user_ns, 2000000000ull);
    assert_int_equal(d->cpu->system_ns, 500000000ull);
    assert_near(d->cpu->limit_cpus, 0.5);
    assert_int_equal(d->cpu->throttling->periods, 400);
    assert_int_equal(d->cpu->throttling->throttled_periods, 100);
    assert_int_equal(d->cpu->throttling->throttled_ns, 1500000000ull);
    assert_int_equal(d->memory->current_bytes, 60000000);
    assert_int_equal(d->memory->limit_bytes, 67108864);
    assert_int_equal(d->memory->peak_bytes, 66000000);
    assert_int_equal(d->memory->working_set_bytes, 30000000);
    assert_int_equal(d->memory->anon_bytes, 19000000);
    assert_int_equal(d->memory->file_bytes, 40000000);
    assert_int_equal(d->memory->shmem_bytes, 1000000);
    assert_int_equal(d->memory->oom_kill_events, 4);
    assert_int_equal(d->io->read_bytes, 4096 + 1000);
    assert_int_equal(d->io->write_bytes, 5242880 + 2000);
    assert_int_equal(d->io->read_ops, 3);
    assert_int_equal(d->io->write_ops, 43);
    assert_int_equal(d->pids->current, 3);
    assert_int_equal(d->pids->limit, 100);
    assert_int_equal(d->pressure->cpu->some_total_us, 500);
    assert_int_equal(d->net->rx_bytes, 10485760);
    assert_int_equal(d->net->tx_bytes, 20971520);
    assert_int_equal(d->net->tx_packets, 16000);
    telemetry_free(t);
    fixture_free(&f);
}

static void test_v1_throttle_tier(void **state)
{
    struct fix f = fixture("v1");
    struct telemetry *t = collector(&f, 3, NULL);
    /* D has a CPU limit: its cpu.stat is read every cycle. C has none: no throttling to see,
     * its cpu.stat is read with the limits (every 30 cycles here). */
    assert_int_equal(telemetry_add_container(t, &info_d), 0);
    assert_int_equal(telemetry_add_container(t, &info_c), 0);
    const struct telemetry_sample *s;
    assert_int_equal(telemetry_collect(t, T0, &s), 0);

    const char *dstat = "sys/cpu,cpuacct/docker/" ID_D "/cpu.stat";
    const char *cstat = "sys/cpu,cpuacct/docker/" ID_C "/cpu.stat";
    put(&f, dstat, "nr_periods 500\nnr_throttled 150\nthrottled_time 2000000000\n");
    put(&f, cstat, "nr_periods 10\nnr_throttled 0\nthrottled_time 0\n");
    assert_int_equal(telemetry_collect(t, T0 + 10000, &s), 0); /* seq 2: C's detail cycle */
    assert_int_equal(find(s->batch, ID_D)->cpu->throttling->periods, 500);
    assert_near(find(s->batch, ID_D)->cpu->throttling->throttled_pct, 50.0);
    assert_int_equal(find(s->batch, ID_C)->cpu->throttling->periods, 0);

    put(&f, dstat, "nr_periods 600\nnr_throttled 150\nthrottled_time 2000000000\n");
    assert_int_equal(telemetry_collect(t, T0 + 20000, &s), 0); /* seq 3: D's detail cycle */
    assert_int_equal(find(s->batch, ID_D)->cpu->throttling->periods, 600);
    assert_near(find(s->batch, ID_D)->cpu->throttling->throttled_pct, 0);
    assert_int_equal(find(s->batch, ID_C)->cpu->throttling->periods, 0);

    /* C gets a limit (docker update): added again, everything is read */
    put(&f, "sys/cpu,cpuacct/docker/" ID_C "/cpu.cfs_quota_us", "20000\n");
    assert_int_equal(telemetry_add_container(t, &info_c), 0);
    assert_int_equal(telemetry_collect(t, T0 + 30000, &s), 0);
    assert_int_equal(find(s->batch, ID_C)->cpu->throttling->periods, 10);
    assert_near(find(s->batch, ID_C)->cpu->limit_cpus, 0.2);
    /* ... and from now on its cpu.stat every cycle */
    put(&f, cstat, "nr_periods 20\nnr_throttled 5\nthrottled_time 100\n");
    assert_int_equal(telemetry_collect(t, T0 + 40000, &s), 0);
    assert_int_equal(find(s->batch, ID_C)->cpu->throttling->periods, 20);
    assert_near(find(s->batch, ID_C)->cpu->throttling->throttled_pct, 50.0);
    telemetry_free(t);
    fixture_free(&f);
}

static void test_v1_vanish_mid_cycle(void **state)
{
    struct fix f = fixture("v1");
    struct telemetry *t = collector(&f, 1, NULL);
    assert_int_equal(telemetry_add_container(t, &info_c), 0);
    assert_int_equal(telemetry_add_container(t, &info_d), 0);
    /* D stops after it was added: its cpu files still read, then its memory cgroup is gone. */
    assert_int_equal(tu_sh("mv '%s/memory/docker/" ID_D "' '%s/saved'", f.sys, f.dir), 0);
    const struct telemetry_sample *s;
    assert_int_equal(telemetry_collect(t, T0, &s), 0);
    assert_int_equal(s->n_containers, 1);
    assert_int_equal(s->n_skipped, 1);
    assert_int_equal(s->batch->containers_skipped, 1);
    assert_non_null(find(s->batch, ID_C));
    assert_null(find(s->batch, ID_D));
    /* ... and stays out, without errors, until the caller acts */
    assert_int_equal(telemetry_collect(t, T0 + 10000, &s), 0);
    assert_int_equal(s->n_containers, 1);
    assert_int_equal(s->n_skipped, 1);

    /* Re-added (restarted): found again */
    assert_int_equal(tu_sh("mv '%s/saved' '%s/memory/docker/" ID_D "'", f.dir, f.sys), 0);
    assert_int_equal(telemetry_add_container(t, &info_d), 0);
    assert_int_equal(telemetry_collect(t, T0 + 20000, &s), 0);
    assert_int_equal(s->n_containers, 2);
    assert_int_equal(find(s->batch, ID_D)->memory->current_bytes, 60000000);
    /* a restart starts the rates over */
    assert_near(find(s->batch, ID_D)->cpu->percent, 0);

    assert_int_equal(telemetry_remove_container(t, ID_D), 0);
    assert_int_equal(telemetry_collect(t, T0 + 30000, &s), 0);
    assert_int_equal(s->n_containers, 1);
    assert_int_equal(s->n_skipped, 0);
    telemetry_free(t);
    fixture_free(&f);
}

/* ---- the container set --------------------------------------------------------------------- */

static void test_container_set(void **state)
{
    struct fix f = fixture("v2");
    struct telemetry_options o = {.cgroup_root = f.sys, .proc_root = f.proc, .max_containers = 2};
    struct telemetry *t;
    assert_int_equal(telemetry_new(&o, &t), 0);
    struct telemetry_container_info v[3] = {
        {.id = "ffffffffffff", .pid = 0},
        info_a,
        info_b,
    };
    /* the first has no cgroup: left out and counted */
    assert_int_equal(telemetry_set_containers(t, v, 3), 1);
    assert_int_equal(telemetry_container_count(t), 2);
    assert_int_equal(telemetry_set_containers(t, &v[2], 1), 0);
    assert_int_equal(telemetry_container_count(t), 1);
    const struct telemetry_sample *s;
    assert_int_equal(telemetry_collect(t, T0, &s), 0);
    assert_int_equal(s->n_containers, 1);
    assert_string_equal(s->batch->containers[0]->id, ID_B);

    /* an update of labels keeps the container */
    struct telemetry_container_info b2 = info_b;
    b2.service = "svc";
    assert_int_equal(telemetry_add_container(t, &b2), 0);
    assert_int_equal(telemetry_container_count(t), 1);
    assert_int_equal(telemetry_collect(t, T0 + 1000, &s), 0);
    assert_string_equal(s->batch->containers[0]->service, "svc");

    assert_int_equal(telemetry_add_container(t, &info_a), 0);
    struct telemetry_container_info x = {.id = "abc", .pid = 0};
    assert_int_equal(telemetry_add_container(t, &x), -ENOSPC);
    x.id = "../../etc";
    assert_int_equal(telemetry_remove_container(t, ID_A), 0);
    assert_int_equal(telemetry_add_container(t, &x), -EINVAL);
    assert_int_equal(telemetry_remove_container(t, "nope"), -ENOENT);
    assert_int_equal(telemetry_remove_container(t, ID_A), -ENOENT);
    assert_int_equal(telemetry_set_containers(t, NULL, 0), 0);
    assert_int_equal(telemetry_container_count(t), 0);
    telemetry_free(t);
    fixture_free(&f);
}

static void test_no_cgroups(void **state)
{
    struct fix f = fixture("v2");
    char *empty = tu_mkdtemp();
    struct telemetry_options o = {.cgroup_root = empty, .proc_root = f.proc};
    struct telemetry *t;
    assert_int_equal(telemetry_new(&o, &t), 0);
    assert_int_equal(telemetry_add_container(t, &info_a), -ENOENT);
    const struct telemetry_sample *s;
    assert_int_equal(telemetry_collect(t, T0, &s), 0);
    assert_int_equal(s->batch->cgroup_version, 0);
    assert_int_equal(s->batch->host->ncpu, 2);
    assert_int_equal(s->n_containers, 0);
    telemetry_free(t);
    tu_rm_rf(empty);
    free(empty);
    fixture_free(&f);
}

/* ---- no allocation in steady state --------------------------------------------------------- */

static void steady_state(const char *which, const struct telemetry_container_info *x,
                         const struct telemetry_container_info *y)
{
    struct fix f = fixture(which);
    struct sink_state *sink = calloc(1, sizeof(*sink));
    struct telemetry *t = collector(&f, 2, sink);
    assert_int_equal(telemetry_add_container(t, x), 0);
    assert_int_equal(telemetry_add_container(t, y), 0);
    int64_t now = T0;
    /* warm-up: files get opened, buffers reach their size */
    for (int i = 0; i < 3; i++)
        assert_int_equal(telemetry_collect(t, now += 10000, NULL), 0);
    count_allocs_init();
    n_allocs = 0;
    counting = 1;
    int r = 0;
    for (int i = 0; i < 10 && r == 0; i++)
        r = telemetry_collect(t, now += 10000, NULL);
    counting = 0;
    assert_int_equal(r, 0);
    assert_int_equal(n_allocs, 0);
    assert_int_equal(sink->calls, 13);
    assert_int_equal(sink->n_containers, 2);
    assert_true(sink->len > 0);
    telemetry_free(t);
    free(sink);
    fixture_free(&f);
}

static void test_no_alloc_v2(void **state)
{
    steady_state("v2", &info_a, &info_b);
}

static void test_no_alloc_v1(void **state)
{
    steady_state("v1", &info_c, &info_d);
}

/* ---- printing ------------------------------------------------------------------------------ */

static void two_cycles(struct fix *f, struct sink_state *sink)
{
    struct telemetry *t = collector(f, 1, sink);
    assert_int_equal(telemetry_add_container(t, &info_a), 0);
    assert_int_equal(telemetry_add_container(t, &info_b), 0);
    assert_int_equal(telemetry_collect(t, T0, NULL), 0);
    edit(f, "sys/system.slice/docker-" ID_A ".scope/cpu.stat",
         "s/^usage_usec .*/usage_usec 9130143/");
    edit(f, "proc/101/net/dev",
         "s/eth0: 5000000/eth0: 6000000/;s/  2000000    3000/  2500000    3000/");
    assert_int_equal(telemetry_collect(t, T0 + 10000, NULL), 0);
    telemetry_free(t);
}

static void assert_contains(const char *out, const char *needle)
{
    if (!strstr(out, needle))
        fail_msg("output:\n%s\ndoes not contain:\n%s", out, needle);
}

static char *print(const uint8_t *buf, size_t len, bool json, int *ret)
{
    char *out = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&out, &n);
    assert_non_null(m);
    *ret = telemetry_print(buf, len, m, json);
    fclose(m);
    return out;
}

static void test_print_text(void **state)
{
    struct fix f = fixture("v2");
    struct sink_state *sink = calloc(1, sizeof(*sink));
    two_cycles(&f, sink);
    int r;
    char *out = print(sink->buf, sink->len, false, &r);
    assert_int_equal(r, 0);
    assert_contains(out, "HOST fixture-host  cgroup v2  2 CPUs  up 5m40s  load 0.15 0.17 "
                         "0.09\n");
    assert_contains(out, "CONTAINER ID   NAME             CPU %    MEM USAGE / LIMIT     MEM %   "
                         "NET I/O          BLOCK I/O        PIDS\n");
    /* docker stats' units: binary for memory, decimal for traffic */
    assert_contains(out, "2b5f0d7b3f0c   shop_web.1.abc   10.00%   7.469MiB / 23.54GiB   0.03%   "
                         "6.1MB / 2.55MB   91.9MB / 614MB   7\n");
    assert_contains(out, "7e3c9a1f5b2d   b                0.00%    1.418MiB / 256MiB     0.55%   "
                         "876B / 0B        0B / 0B          1\n");
    assert_contains(out, "MEM   436.5MiB / 23.54GiB (1.81%)  cached 516.6MiB  swap 148KiB / 2GiB  "
                         "oom kills 3\n");
    assert_contains(out, "DISK  vda             read 0B/s       write 0B/s       util 0.0%\n");
    assert_contains(out, "NET   docker_gwbridge rx 0B/s       tx 0B/s\n");
    free(out);

    uint8_t junk[] = {0xff, 0xff, 0xff, 0x07};
    out = print(junk, sizeof(junk), false, &r);
    assert_int_equal(r, -EBADMSG);
    free(out);
    free(sink);
    fixture_free(&f);
}

static void test_print_json(void **state)
{
    struct fix f = fixture("v2");
    struct sink_state *sink = calloc(1, sizeof(*sink));
    two_cycles(&f, sink);
    int r;
    char *out = print(sink->buf, sink->len, true, &r);
    assert_int_equal(r, 0);
    json_error_t err;
    json_t *o = json_loads(out, 0, &err);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "hostname")), "fixture-host");
    assert_int_equal(json_integer_value(json_object_get(o, "seq")), 2);
    assert_int_equal(json_integer_value(json_object_get(o, "interval_ms")), 10000);
    json_t *cs = json_object_get(o, "containers");
    assert_int_equal(json_array_size(cs), 2);
    json_t *a = json_array_get(cs, 0);
    assert_string_equal(json_string_value(json_object_get(a, "id")), ID_A);
    assert_string_equal(json_string_value(json_object_get(a, "service")), "shop_web");
    assert_near(json_real_value(json_object_get(a, "cpu_percent")), 10.0);
    assert_int_equal(json_integer_value(json_object_get(a, "mem_usage_bytes")), 7831552);
    assert_int_equal(json_integer_value(json_object_get(a, "mem_limit_bytes")), 24684556ll * 1024);
    assert_int_equal(json_integer_value(json_object_get(a, "net_rx_bytes")), 6100000);
    assert_int_equal(json_integer_value(json_object_get(a, "block_write_bytes")), 613781504);
    assert_int_equal(json_integer_value(json_object_get(a, "pids")), 7);
    json_t *thr = json_object_get(json_object_get(a, "cpu"), "throttling");
    assert_int_equal(json_integer_value(json_object_get(thr, "throttled_periods")), 37);
    json_t *h = json_object_get(o, "host");
    assert_int_equal(json_integer_value(json_object_get(h, "ncpu")), 2);
    assert_int_equal(json_array_size(json_object_get(h, "disks")), 3);
    json_decref(o);
    free(out);
    free(sink);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v2_sample),        cmocka_unit_test(test_v2_rates),
        cmocka_unit_test(test_tiering),          cmocka_unit_test(test_v1_sample),
        cmocka_unit_test(test_v1_throttle_tier), cmocka_unit_test(test_v1_vanish_mid_cycle),
        cmocka_unit_test(test_container_set),    cmocka_unit_test(test_no_cgroups),
        cmocka_unit_test(test_no_alloc_v2),      cmocka_unit_test(test_no_alloc_v1),
        cmocka_unit_test(test_print_text),       cmocka_unit_test(test_print_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

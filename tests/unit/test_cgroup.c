/* drivers/cgroup: the parsers on text in the kernel's exact formats, and the handles on the
 * fixture trees of tests/data/cgroup (cgroup v2 with both docker layouts; cgroup v1 with a
 * joined cpu,cpuacct mount and the unified tree beside it). */
#include "support/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/cgroup/cgroup.h"
#include "drivers/cgroup/procfs.h"
#include "drivers/cgroup/readbuf.h"
#include "lib/util.h"

#define ID_A "2b5f0d7b3f0c4c1e8a9d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b"
#define ID_B "7e3c9a1f5b2d4e6a8c0b1d3f5e7a9c2b4d6f8e0a1c3b5d7f9e2a4c6b8d0f1e3a"
#define ID_C "5c1f9e2d7a3b4c6e8f0a2b4d6c8e0f1a3b5c7d9e1f2a4b6c8d0e2f3a5b7c9d1e"
#define ID_D "9d4e2a6c8b0f1e3d5a7c9b2e4f6a8c0d1e3f5a7b9c2d4e6f8a0b1c3d5e7f9a2b"

static int parse(enum cgroup_file f, const char *text, struct cgroup_stats *st)
{
    return cgroup_parse(f, text, strlen(text), st);
}

/* A copy of tests/data/cgroup/<which> that the test may change. */
static char *fixture(const char *which)
{
    const char *src = getenv("AXION_SOURCE_DIR");
    assert_non_null(src);
    char *d = tu_mkdtemp();
    assert_non_null(d);
    assert_int_equal(tu_sh("cp -a '%s/tests/data/cgroup/%s/.' '%s/'", src, which, d), 0);
    return d;
}

static char *path(const char *a, const char *b)
{
    char *s;
    assert_true(asprintf(&s, "%s/%s", a, b) > 0);
    return s;
}

/* ---- cgroup v2 files ----------------------------------------------------------------------- */

static void test_v2_cpu_stat_with_throttling(void **state)
{
    struct cgroup_stats st = {0};
    assert_int_equal(parse(CGROUP_V2_CPU_STAT,
                           "usage_usec 8130143\nuser_usec 5127354\nsystem_usec 3002789\n"
                           "core_sched.force_idle_usec 0\nnr_periods 1204\nnr_throttled 37\n"
                           "throttled_usec 2389004\nnr_bursts 0\nburst_usec 0\n",
                           &st),
                     0);
    assert_int_equal(st.cpu_usage_ns, 8130143000ull);
    assert_int_equal(st.cpu_user_ns, 5127354000ull);
    assert_int_equal(st.cpu_system_ns, 3002789000ull);
    assert_int_equal(st.nr_periods, 1204);
    assert_int_equal(st.nr_throttled, 37);
    assert_int_equal(st.throttled_ns, 2389004000ull);
    assert_int_equal(st.have, CGROUP_HAVE_CPU_USAGE | CGROUP_HAVE_CPU_SPLIT | CGROUP_HAVE_THROTTLE);
}

static void test_v2_cpu_stat_without_throttling(void **state)
{
    /* The cpu controller is not enabled for the cgroup: only the base counters. */
    struct cgroup_stats st = {0};
    assert_int_equal(parse(CGROUP_V2_CPU_STAT,
                           "usage_usec 44247\nuser_usec 8886\nsystem_usec 35361\nnice_usec 0\n",
                           &st),
                     0);
    assert_int_equal(st.cpu_usage_ns, 44247000ull);
    assert_int_equal(st.cpu_user_ns, 8886000ull);
    assert_int_equal(st.cpu_system_ns, 35361000ull);
    assert_int_equal(st.have, CGROUP_HAVE_CPU_USAGE | CGROUP_HAVE_CPU_SPLIT);
    assert_int_equal(st.nr_periods, 0);
}

static void test_v2_cpu_max(void **state)
{
    struct cgroup_stats st = {0};
    assert_int_equal(parse(CGROUP_V2_CPU_MAX, "max 100000\n", &st), 0);
    assert_int_equal(st.cpu_quota_us, -1);
    assert_int_equal(st.cpu_period_us, 100000);
    assert_int_equal(parse(CGROUP_V2_CPU_MAX, "150000 100000\n", &st), 0);
    assert_int_equal(st.cpu_quota_us, 150000);
    assert_int_equal(st.have, CGROUP_HAVE_CPU_QUOTA | CGROUP_HAVE_CPU_PERIOD);
    assert_int_equal(parse(CGROUP_V2_CPU_MAX, "150000\n", &st), -EINVAL);
}

static void test_memory_limits(void **state)
{
    struct cgroup_stats st = {0};
    assert_int_equal(parse(CGROUP_V2_MEMORY_MAX, "max\n", &st), 0);
    assert_true(st.mem_limit == CGROUP_UNLIMITED);
    assert_int_equal(parse(CGROUP_V2_MEMORY_MAX, "268435456\n", &st), 0);
    assert_int_equal(st.mem_limit, 268435456);
    /* v1 without a limit: PAGE_COUNTER_MAX pages */
    assert_int_equal(parse(CGROUP_V1_MEMORY_LIMIT, "9223372036854771712\n", &st), 0);
    assert_true(st.mem_limit == CGROUP_UNLIMITED);
    assert_int_equal(parse(CGROUP_V1_MEMORY_LIMIT, "67108864\n", &st), 0);
    assert_int_equal(st.mem_limit, 67108864);
    /* "max" is a v2 word only */
    assert_int_equal(parse(CGROUP_V1_MEMORY_LIMIT, "max\n", &st), -EINVAL);
    assert_int_equal(parse(CGROUP_V2_PIDS_MAX, "max\n", &st), 0);
    assert_true(st.pids_limit == CGROUP_UNLIMITED);
    assert_int_equal(parse(CGROUP_V1_PIDS_MAX, "100\n", &st), 0);
    assert_int_equal(st.pids_limit, 100);
    assert_int_equal(parse(CGROUP_V2_MEMORY_CURRENT, "28672000\n", &st), 0);
    assert_int_equal(st.mem_current, 28672000);
    assert_int_equal(parse(CGROUP_V2_MEMORY_PEAK, "41943040\n", &st), 0);
    assert_int_equal(st.mem_peak, 41943040);
    assert_int_equal(parse(CGROUP_V1_CPU_CFS_QUOTA, "-1\n", &st), 0);
    assert_int_equal(st.cpu_quota_us, -1);
    assert_int_equal(parse(CGROUP_V1_CPU_CFS_QUOTA, "50000\n", &st), 0);
    assert_int_equal(st.cpu_quota_us, 50000);
}

static void test_v2_memory_stat(void **state)
{
    char *src = fixture("v2");
    char *p = path(src, "sys/system.slice/docker-" ID_A ".scope/memory.stat");
    char *text = tu_sh_out("cat '%s'", p);
    struct cgroup_stats st = {.mem_current = 28672000, .have = CGROUP_HAVE_MEM_CURRENT};
    assert_int_equal(parse(CGROUP_V2_MEMORY_STAT, text, &st), 0);
    assert_int_equal(st.mem_anon, 1204224);
    assert_int_equal(st.mem_file, 26783744);
    assert_int_equal(st.mem_shmem, 524288);
    assert_int_equal(st.mem_inactive_file, 20840448);
    assert_int_equal(st.mem_active_file, 5943296);
    assert_int_equal(st.mem_slab, 771024);
    assert_int_equal(st.mem_sock, 8192);
    assert_true(st.have & CGROUP_HAVE_MEM_STAT);
    assert_true(st.have & CGROUP_HAVE_MEM_SLAB_SOCK);
    /* working set = usage - inactive_file */
    assert_int_equal(cgroup_working_set(&st), 28672000 - 20840448);
    free(text);
    free(p);
    tu_rm_rf(src);
    free(src);
}

static void test_v2_memory_stat_before_slab_key(void **state)
{
    /* Before Linux 5.9 there is no "slab" line: the two slab_* lines add up. */
    struct cgroup_stats st = {0};
    assert_int_equal(parse(CGROUP_V2_MEMORY_STAT,
                           "anon 100\nfile 200\nsock 7\nshmem 0\ninactive_anon 100\n"
                           "active_anon 0\ninactive_file 150\nactive_file 50\n"
                           "slab_reclaimable 30\nslab_unreclaimable 12\n",
                           &st),
                     0);
    assert_int_equal(st.mem_slab, 42);
    assert_int_equal(st.mem_sock, 7);
    /* Inactive file larger than the usage: the working set is the usage. */
    st.mem_current = 120;
    assert_int_equal(cgroup_working_set(&st), 120);
}

static void test_v2_memory_events(void **state)
{
    struct cgroup_stats st = {0};
    assert_int_equal(parse(CGROUP_V2_MEMORY_EVENTS,
                           "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n", &st),
                     0);
    assert_int_equal(st.mem_oom, 2);
    assert_int_equal(st.mem_oom_kill, 1);
    assert_int_equal(st.have, CGROUP_HAVE_MEM_OOM | CGROUP_HAVE_MEM_OOM_KILL);
}

static void test_v2_io_stat_devices(void **state)
{
    struct cgroup_stats st = {0};
    assert_int_equal(parse(CGROUP_V2_IO_STAT,
                           "8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 "
                           "dios=0\n8:0 rbytes=90430464 wbytes=299008000 rios=8950 wios=1252 "
                           "dbytes=50331648 dios=3021\n",
                           &st),
                     0);
    assert_int_equal(st.io_read_bytes, 1459200 + 90430464);
    assert_int_equal(st.io_write_bytes, 314773504 + 299008000);
    assert_int_equal(st.io_read_ops, 192 + 8950);
    assert_int_equal(st.io_write_ops, 353 + 1252);
    /* A cgroup that did no I/O has an empty io.stat. */
    struct cgroup_stats e = {.io_read_bytes = 99};
    assert_int_equal(parse(CGROUP_V2_IO_STAT, "", &e), 0);
    assert_int_equal(e.io_read_bytes, 0);
    assert_int_equal(e.have, CGROUP_HAVE_IO_BYTES | CGROUP_HAVE_IO_OPS);
    assert_int_equal(parse(CGROUP_V2_IO_STAT, "8:0 rbytes=x\n", &e), -EINVAL);
    assert_int_equal(parse(CGROUP_V2_IO_STAT, "sda rbytes=1\n", &e), -EINVAL);
}

static void test_psi(void **state)
{
    struct cgroup_stats st = {0};
    assert_int_equal(parse(CGROUP_CPU_PRESSURE,
                           "some avg10=0.12 avg60=0.02 avg300=0.00 total=26537\n"
                           "full avg10=0.00 avg60=0.00 avg300=0.00 total=16597\n",
                           &st),
                     0);
    assert_int_equal(st.psi_cpu.some_total, 26537);
    assert_int_equal(st.psi_cpu.full_total, 16597);
    assert_true(st.psi_cpu.has_full);
    assert_int_equal(st.have, CGROUP_HAVE_PSI_CPU);
    assert_int_equal(parse(CGROUP_IO_PRESSURE,
                           "some avg10=1.08 avg60=0.55 avg300=0.59 total=4561258\n"
                           "full avg10=1.02 avg60=0.52 avg300=0.56 total=4322483\n",
                           &st),
                     0);
    assert_int_equal(st.psi_io.some_total, 4561258);
    assert_int_equal(st.psi_io.full_total, 4322483);
    /* /proc/pressure/cpu before Linux 5.13 has no "full" line */
    struct procfs_psi p;
    const char *old = "some avg10=4.80 avg60=1.96 avg300=1.07 total=7229699\n";
    assert_int_equal(procfs_parse_psi(old, strlen(old), &p), 0);
    assert_int_equal(p.some_total, 7229699);
    assert_false(p.has_full);
    assert_int_equal(p.full_total, 0);
    const char *bad = "some avg10=4.80\n";
    assert_int_equal(procfs_parse_psi(bad, strlen(bad), &p), -EINVAL);
}

/* ---- cgroup v1 files ----------------------------------------------------------------------- */

static void test_v1_cpu(void **state)
{
    struct cgroup_stats st = {0};
    assert_int_equal(parse(CGROUP_V1_CPUACCT_USAGE, "13919457253\n", &st), 0);
    assert_int_equal(st.cpu_usage_ns, 13919457253ull);
    /* USER_HZ ticks (100 per second on Linux) */
    assert_int_equal(parse(CGROUP_V1_CPUACCT_STAT, "user 1381\nsystem 10\n", &st), 0);
    assert_int_equal(st.cpu_user_ns, 13810000000ull);
    assert_int_equal(st.cpu_system_ns, 100000000ull);
    assert_int_equal(parse(CGROUP_V1_CPU_STAT,
                           "nr_periods 400\nnr_throttled 100\nthrottled_time 1500000000\n"
                           "nr_bursts 0\nburst_time 0\n",
                           &st),
                     0);
    assert_int_equal(st.nr_periods, 400);
    assert_int_equal(st.nr_throttled, 100);
    assert_int_equal(st.throttled_ns, 1500000000ull);
    /* Kernels before 5.14 have no burst lines */
    assert_int_equal(
        parse(CGROUP_V1_CPU_STAT, "nr_periods 1\nnr_throttled 0\nthrottled_time 0\n", &st), 0);
    assert_int_equal(st.nr_periods, 1);
    assert_int_equal(st.have, CGROUP_HAVE_CPU_USAGE | CGROUP_HAVE_CPU_SPLIT | CGROUP_HAVE_THROTTLE);
}

static void test_v1_memory(void **state)
{
    char *src = fixture("v1");
    char *p = path(src, "sys/memory/docker/" ID_C "/memory.stat");
    char *text = tu_sh_out("cat '%s'", p);
    struct cgroup_stats st = {0};
    assert_int_equal(parse(CGROUP_V1_MEMORY_USAGE, "2068480\n", &st), 0);
    assert_int_equal(parse(CGROUP_V1_MEMORY_STAT, text, &st), 0);
    assert_int_equal(st.mem_anon, 53248);
    assert_int_equal(st.mem_file, 1658880);
    assert_int_equal(st.mem_inactive_file, 1167360);
    assert_int_equal(st.mem_active_file, 491520);
    assert_false(st.have & CGROUP_HAVE_MEM_SLAB_SOCK);
    assert_int_equal(cgroup_working_set(&st), 2068480 - 1167360);
    assert_int_equal(
        parse(CGROUP_V1_MEMORY_OOM_CONTROL, "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n", &st),
        0);
    assert_int_equal(st.mem_oom_kill, 4);
    /* before 4.13: no oom_kill line, nothing known */
    struct cgroup_stats o = {0};
    assert_int_equal(parse(CGROUP_V1_MEMORY_OOM_CONTROL, "oom_kill_disable 0\nunder_oom 0\n", &o),
                     0);
    assert_int_equal(o.have, 0);
    free(text);
    free(p);
    tu_rm_rf(src);
    free(src);
}

static void test_v1_blkio(void **state)
{
    struct cgroup_stats st = {0};
    assert_int_equal(parse(CGROUP_V1_BLKIO_BYTES,
                           "254:0 Read 4096\n254:0 Write 5242880\n254:0 Sync 0\n"
                           "254:0 Async 5246976\n254:0 Discard 0\n254:0 Total 5246976\n"
                           "8:0 Read 1000\n8:0 Write 2000\n8:0 Sync 3000\n8:0 Async 0\n"
                           "8:0 Discard 0\n8:0 Total 3000\nTotal 5249976\n",
                           &st),
                     0);
    assert_int_equal(st.io_read_bytes, 5096);
    assert_int_equal(st.io_write_bytes, 5244880);
    assert_int_equal(parse(CGROUP_V1_BLKIO_IOS, "Total 0\n", &st), 0);
    assert_int_equal(st.io_read_ops, 0);
    assert_int_equal(st.io_write_ops, 0);
    assert_int_equal(st.have, CGROUP_HAVE_IO_BYTES | CGROUP_HAVE_IO_OPS);
    assert_int_equal(parse(CGROUP_V1_BLKIO_IOS, "8:0 Read\n", &st), -EINVAL);
    assert_int_equal(parse(CGROUP_V1_BLKIO_IOS, "garbage\n", &st), -EINVAL);
}

static void test_malformed_leaves_stats(void **state)
{
    struct cgroup_stats st = {.cpu_usage_ns = 5, .mem_current = 6};
    struct cgroup_stats before = st;
    assert_int_equal(parse(CGROUP_V2_CPU_STAT, "user_usec 1\n", &st), -EINVAL);
    assert_int_equal(parse(CGROUP_V2_CPU_STAT, "usage_usec x\n", &st), -EINVAL);
    assert_int_equal(parse(CGROUP_V2_CPU_STAT, "usage_usec 99999999999999999999\n", &st), -ERANGE);
    assert_int_equal(parse(CGROUP_V2_CPU_STAT, "usage_usec 18446744073709552\n", &st), -ERANGE);
    assert_int_equal(parse(CGROUP_V2_MEMORY_CURRENT, "12 13\n", &st), -EINVAL);
    assert_int_equal(parse(CGROUP_V2_MEMORY_CURRENT, "", &st), -EINVAL);
    assert_int_equal(parse(CGROUP_V2_MEMORY_STAT, "anon 1\n", &st), -EINVAL);
    assert_int_equal(parse(CGROUP_V1_CPUACCT_STAT, "user 1\n", &st), -EINVAL);
    assert_int_equal(parse(CGROUP_V1_CPU_CFS_QUOTA, "-\n", &st), -EINVAL);
    assert_int_equal(memcmp(&st, &before, sizeof(st)), 0);
}

/* ---- /proc --------------------------------------------------------------------------------- */

static void test_procfs_host_files(void **state)
{
    char *src = fixture("v2");
    char *t;
    struct procfs_stat ps;
    t = tu_sh_out("cat '%s/proc/stat'", src);
    assert_int_equal(procfs_parse_stat(t, strlen(t), &ps), 0);
    assert_int_equal(ps.cpu.user, 5090);
    assert_int_equal(ps.cpu.nice, 10);
    assert_int_equal(ps.cpu.system, 2729);
    assert_int_equal(ps.cpu.idle, 59113);
    assert_int_equal(ps.cpu.iowait, 562);
    assert_int_equal(ps.cpu.irq, 0);
    assert_int_equal(ps.cpu.softirq, 60);
    assert_int_equal(ps.cpu.steal, 61);
    assert_int_equal(ps.ncpu, 2);
    free(t);

    struct procfs_meminfo m;
    t = tu_sh_out("cat '%s/proc/meminfo'", src);
    assert_int_equal(procfs_parse_meminfo(t, strlen(t), &m), 0);
    assert_int_equal(m.total, 24684556ull * 1024);
    assert_int_equal(m.free, 23935540ull * 1024);
    assert_int_equal(m.available, 24237560ull * 1024);
    assert_int_equal(m.buffers, 27132ull * 1024);
    assert_int_equal(m.cached, 528972ull * 1024);
    assert_int_equal(m.swap_total, 2097148ull * 1024);
    assert_int_equal(m.swap_free, 2097000ull * 1024);
    free(t);

    struct procfs_loadavg l;
    const char *la = "0.15 0.17 0.09 1/120 7276\n";
    assert_int_equal(procfs_parse_loadavg(la, strlen(la), &l), 0);
    assert_true(l.load1 > 0.1499 && l.load1 < 0.1501);
    assert_true(l.load15 > 0.0899 && l.load15 < 0.0901);
    double up;
    assert_int_equal(procfs_parse_uptime("340.73 591.14\n", 14, &up), 0);
    assert_true(up > 340.7299 && up < 340.7301);

    uint64_t kills = 0;
    uint32_t found;
    struct procfs_key k = {"oom_kill", &kills};
    t = tu_sh_out("cat '%s/proc/vmstat'", src);
    assert_int_equal(procfs_parse_keyed(t, strlen(t), &k, 1, &found), 0);
    assert_int_equal(found, 1);
    assert_int_equal(kills, 3);
    free(t);
    tu_rm_rf(src);
    free(src);
}

struct disks {
    char names[8][PROCFS_NAME_MAX];
    struct procfs_disk d[8];
    int n;
};

static int disk_cb(void *ud, const struct procfs_disk *d)
{
    struct disks *s = ud;
    if (procfs_disk_is_reported(d->name) && s->n < 8)
        s->d[s->n++] = *d;
    return 0;
}

static void test_procfs_diskstats(void **state)
{
    char *src = fixture("v2");
    char *t = tu_sh_out("cat '%s/proc/diskstats'", src);
    struct disks s = {0};
    assert_int_equal(procfs_parse_diskstats(t, strlen(t), disk_cb, &s), 0);
    /* loop0, vda1, nvme0n1p1 and zram0 are left out */
    assert_int_equal(s.n, 3);
    assert_string_equal(s.d[0].name, "vda");
    assert_int_equal(s.d[0].major, 254);
    assert_int_equal(s.d[0].reads, 38092);
    assert_int_equal(s.d[0].read_sectors, 2765074);
    assert_int_equal(s.d[0].writes, 20114);
    assert_int_equal(s.d[0].write_sectors, 1909144);
    assert_int_equal(s.d[0].io_ms, 7988);
    /* a 2.6-era line with 11 columns */
    assert_string_equal(s.d[1].name, "nvme0n1");
    assert_int_equal(s.d[1].io_ms, 300);
    assert_string_equal(s.d[2].name, "dm-0");
    free(t);
    tu_rm_rf(src);
    free(src);

    assert_true(procfs_disk_is_reported("sda"));
    assert_false(procfs_disk_is_reported("sda1"));
    assert_true(procfs_disk_is_reported("xvdb"));
    assert_false(procfs_disk_is_reported("xvdb3"));
    assert_true(procfs_disk_is_reported("mmcblk0"));
    assert_false(procfs_disk_is_reported("mmcblk0p2"));
    assert_true(procfs_disk_is_reported("md127"));
    assert_false(procfs_disk_is_reported("loop12"));
    assert_false(procfs_disk_is_reported("ram0"));
    const char *bad = "8 0\n";
    assert_int_equal(procfs_parse_diskstats(bad, strlen(bad), disk_cb, &s), -EINVAL);
}

struct nets {
    struct procfs_netdev d[8];
    int n;
};

static int net_cb(void *ud, const struct procfs_netdev *d)
{
    struct nets *s = ud;
    if (s->n < 8)
        s->d[s->n++] = *d;
    return 0;
}

static void test_procfs_netdev(void **state)
{
    char *src = fixture("v1");
    char *t = tu_sh_out("cat '%s/proc/202/net/dev'", src);
    struct nets s = {0};
    assert_int_equal(procfs_parse_netdev(t, strlen(t), net_cb, &s), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.d[0].name, "lo");
    /* "eth0:10485760": no blank after the colon once the number is wide */
    assert_string_equal(s.d[1].name, "eth0");
    assert_int_equal(s.d[1].rx_bytes, 10485760);
    assert_int_equal(s.d[1].rx_packets, 8000);
    assert_int_equal(s.d[1].tx_bytes, 20971520);
    assert_int_equal(s.d[1].tx_packets, 16000);
    free(t);
    t = tu_sh_out("cat '%s/proc/net/dev'", src);
    memset(&s, 0, sizeof(s));
    assert_int_equal(procfs_parse_netdev(t, strlen(t), net_cb, &s), 0);
    assert_int_equal(s.n, 5);
    assert_string_equal(s.d[3].name, "docker_gwbridge");
    assert_int_equal(s.d[3].tx_bytes, 580);
    assert_int_equal(s.d[3].tx_drop, 1);
    assert_int_equal(s.d[2].tx_drop, 2);
    free(t);
    tu_rm_rf(src);
    free(src);
    const char *bad = "  eth0: 1 2 3\n";
    assert_int_equal(procfs_parse_netdev(bad, strlen(bad), net_cb, &s), -EINVAL);
}

static bool skip_lo(const char *name)
{
    return strcmp(name, "lo") == 0;
}

static void test_procfs_netdev_skip(void **state)
{
    /* A skipped line's numbers are not parsed (not even checked); the others are. */
    const char *t =
        "Inter-|   Receive\n face |bytes\n"
        "    lo: not numbers at all\n"
        "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
        "  eth1: 18446744073709551615 0 0 0 0 0 0 0 12345678901234567890 0 0 0 0 0 0 0\n";
    struct nets s = {0};
    assert_int_equal(procfs_parse_netdev_skip(t, strlen(t), skip_lo, net_cb, &s), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.d[0].name, "eth0");
    assert_int_equal(s.d[0].rx_bytes, 1);
    assert_int_equal(s.d[0].rx_drop, 4);
    assert_int_equal(s.d[0].tx_bytes, 9);
    assert_int_equal(s.d[0].tx_drop, 12);
    /* 20 digits: the overflow check past the 19th digit */
    assert_true(s.d[1].rx_bytes == UINT64_MAX);
    assert_true(s.d[1].tx_bytes == 12345678901234567890ull);
    memset(&s, 0, sizeof(s));
    assert_int_equal(procfs_parse_netdev_skip(t, strlen(t), NULL, net_cb, &s), -EINVAL);
    const char *big = "  eth0: 18446744073709551616 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
    assert_int_equal(procfs_parse_netdev_skip(big, strlen(big), skip_lo, net_cb, &s), -ERANGE);
    (void)state;
}

/* ---- hierarchies and handles --------------------------------------------------------------- */

static void test_fs_v2(void **state)
{
    char *src = fixture("v2");
    char *root = path(src, "sys");
    struct cgroup_fs *fs;
    assert_int_equal(cgroup_fs_open(root, &fs), 0);
    assert_int_equal(cgroup_fs_version(fs), CGROUP_VERSION_2);
    const enum cgroup_file *files;
    size_t n = cgroup_fs_files(fs, &files);
    assert_int_equal(n, 13);
    assert_int_equal(files[0], CGROUP_V2_CPU_STAT);

    char *proc = path(src, "proc");
    struct cgroup_handle *a, *b, *by_id;
    /* systemd driver layout, found from /proc/101/cgroup */
    assert_int_equal(cgroup_handle_open(fs, proc, 101, ID_A, &a), 0);
    char *want = path(root, "system.slice/docker-" ID_A ".scope");
    assert_string_equal(cgroup_handle_dir(a, CGROUP_CTRL_UNIFIED), want);
    free(want);
    /* cgroupfs driver layout */
    assert_int_equal(cgroup_handle_open(fs, proc, 102, ID_B, &b), 0);
    want = path(root, "docker/" ID_B);
    assert_string_equal(cgroup_handle_dir(b, CGROUP_CTRL_UNIFIED), want);
    /* no pid: the layouts dockerd uses, by id */
    assert_int_equal(cgroup_handle_open(fs, proc, 0, ID_B, &by_id), 0);
    assert_string_equal(cgroup_handle_dir(by_id, CGROUP_CTRL_UNIFIED), want);
    free(want);
    cgroup_handle_free(by_id);

    struct readbuf rb;
    assert_int_equal(readbuf_init(&rb, 64, 1 << 20), 0);
    struct cgroup_stats st = {0};
    /* B has no cpu.max (cpu controller off) and no memory.peak (kernel before 5.19): normal */
    assert_int_equal(cgroup_handle_read(b, CGROUP_V2_CPU_MAX, &rb, &st), -ENOENT);
    assert_false(cgroup_handle_has(b, CGROUP_V2_CPU_MAX));
    assert_int_equal(cgroup_handle_read(b, CGROUP_V2_CPU_MAX, &rb, &st), -ENOENT);
    assert_int_equal(cgroup_handle_read(b, CGROUP_V2_MEMORY_PEAK, &rb, &st), -ENOENT);
    assert_int_equal(st.have, 0);
    /* memory.stat is larger than the 64-byte start: the buffer grows */
    assert_int_equal(cgroup_handle_read(a, CGROUP_V2_MEMORY_STAT, &rb, &st), 0);
    assert_int_equal(st.mem_inactive_file, 20840448);
    assert_true(rb.cap > 64);
    assert_int_equal(cgroup_handle_read(a, CGROUP_V2_MEMORY_CURRENT, &rb, &st), 0);
    assert_int_equal(cgroup_handle_open_files(a), 2);

    /* The same descriptor gives the new text after the file changes (pread at 0). */
    char *cur = path(root, "system.slice/docker-" ID_A ".scope/memory.current");
    assert_int_equal(tu_write_file(cur, "30000000\n"), 0);
    assert_int_equal(cgroup_handle_read(a, CGROUP_V2_MEMORY_CURRENT, &rb, &st), 0);
    assert_int_equal(st.mem_current, 30000000);
    assert_int_equal(cgroup_handle_open_files(a), 2);
    free(cur);

    readbuf_release(&rb);
    cgroup_handle_free(a);
    cgroup_handle_free(b);
    cgroup_fs_free(fs);
    free(proc);
    free(root);
    tu_rm_rf(src);
    free(src);
}

static void test_fs_v1_joined_and_hybrid(void **state)
{
    char *src = fixture("v1");
    char *root = path(src, "sys");
    char *proc = path(src, "proc");
    struct cgroup_fs *fs;
    assert_int_equal(cgroup_fs_open(root, &fs), 0);
    assert_int_equal(cgroup_fs_version(fs), CGROUP_VERSION_1);
    const enum cgroup_file *files;
    size_t n = cgroup_fs_files(fs, &files);
    /* 14 v1 files and the 3 PSI files of the unified tree beside them */
    assert_int_equal(n, 17);
    assert_int_equal(files[n - 1], CGROUP_IO_PRESSURE);

    struct cgroup_handle *h;
    assert_int_equal(cgroup_handle_open(fs, proc, 201, ID_C, &h), 0);
    /* "2:cpu,cpuacct:/docker/<id>" lives in the joined mount */
    char *want = path(root, "cpu,cpuacct/docker/" ID_C);
    assert_string_equal(cgroup_handle_dir(h, CGROUP_CTRL_CPU), want);
    assert_string_equal(cgroup_handle_dir(h, CGROUP_CTRL_CPUACCT), want);
    free(want);
    want = path(root, "unified/docker/" ID_C);
    assert_string_equal(cgroup_handle_dir(h, CGROUP_CTRL_UNIFIED), want);
    free(want);
    want = path(root, "memory/docker/" ID_C);
    assert_string_equal(cgroup_handle_dir(h, CGROUP_CTRL_MEMORY), want);
    free(want);
    cgroup_handle_free(h);

    /* A process in the root cgroup is no container: its memory.stat is never read. */
    char *cg = path(proc, "201/cgroup");
    assert_int_equal(tu_write_file(cg, "4:memory:/\n2:cpu,cpuacct:/\n0::/\n"), 0);
    assert_int_equal(cgroup_handle_open(fs, proc, 201, "0123abcd", &h), -ENOENT);
    /* ... but with the right id the docker layout is still found */
    assert_int_equal(cgroup_handle_open(fs, proc, 201, ID_C, &h), 0);
    cgroup_handle_free(h);
    free(cg);
    assert_int_equal(cgroup_handle_open(fs, proc, 201, "../../etc", &h), -EINVAL);
    assert_int_equal(cgroup_handle_open(fs, proc, 999, "ffff", &h), -ENOENT);

    cgroup_fs_free(fs);
    free(proc);
    free(root);
    tu_rm_rf(src);
    free(src);
}

static void test_vanish_between_reads(void **state)
{
    char *src = fixture("v1");
    char *root = path(src, "sys");
    char *proc = path(src, "proc");
    struct cgroup_fs *fs;
    assert_int_equal(cgroup_fs_open(root, &fs), 0);
    struct cgroup_handle *h;
    assert_int_equal(cgroup_handle_open(fs, proc, 202, ID_D, &h), 0);
    struct readbuf rb;
    assert_int_equal(readbuf_init(&rb, 4096, 1 << 20), 0);
    struct cgroup_stats st = {0};
    assert_int_equal(cgroup_handle_read(h, CGROUP_V1_CPUACCT_USAGE, &rb, &st), 0);
    assert_int_equal(st.cpu_usage_ns, 2500000000ull);

    /* The container stops: its cgroups are removed between two reads. */
    assert_int_equal(tu_sh("rm -rf '%s'/*/docker/" ID_D, root), 0);
    assert_int_equal(cgroup_handle_read(h, CGROUP_V1_MEMORY_USAGE, &rb, &st), -ENODEV);
    assert_int_equal(cgroup_handle_open_files(h), 0);
    assert_false(cgroup_handle_has(h, CGROUP_V1_CPUACCT_USAGE));
    assert_int_equal(cgroup_handle_read(h, CGROUP_V1_CPUACCT_USAGE, &rb, &st), -ENODEV);
    assert_false(st.have & CGROUP_HAVE_MEM_CURRENT);

    readbuf_release(&rb);
    cgroup_handle_free(h);
    cgroup_fs_free(fs);
    free(proc);
    free(root);
    tu_rm_rf(src);
    free(src);
}

static void test_no_hierarchy(void **state)
{
    char *d = tu_mkdtemp();
    struct cgroup_fs *fs = NULL;
    assert_int_equal(cgroup_fs_open(d, &fs), -ENOENT);
    assert_null(fs);
    tu_rm_rf(d);
    free(d);
}

static void test_readbuf_limit(void **state)
{
    char *d = tu_mkdtemp();
    char *f = path(d, "big");
    char big[300];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(tu_write_file(f, big), 0);
    struct readbuf rb;
    assert_int_equal(readbuf_init(&rb, 64, 256), 0);
    int fd = open(f, O_RDONLY | O_CLOEXEC);
    size_t n;
    assert_int_equal(readbuf_pread(&rb, fd, &n), -EMSGSIZE);
    close(fd);
    readbuf_release(&rb);
    free(f);
    tu_rm_rf(d);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v2_cpu_stat_with_throttling),
        cmocka_unit_test(test_v2_cpu_stat_without_throttling),
        cmocka_unit_test(test_v2_cpu_max),
        cmocka_unit_test(test_memory_limits),
        cmocka_unit_test(test_v2_memory_stat),
        cmocka_unit_test(test_v2_memory_stat_before_slab_key),
        cmocka_unit_test(test_v2_memory_events),
        cmocka_unit_test(test_v2_io_stat_devices),
        cmocka_unit_test(test_psi),
        cmocka_unit_test(test_v1_cpu),
        cmocka_unit_test(test_v1_memory),
        cmocka_unit_test(test_v1_blkio),
        cmocka_unit_test(test_malformed_leaves_stats),
        cmocka_unit_test(test_procfs_host_files),
        cmocka_unit_test(test_procfs_diskstats),
        cmocka_unit_test(test_procfs_netdev),
        cmocka_unit_test(test_procfs_netdev_skip),
        cmocka_unit_test(test_fs_v2),
        cmocka_unit_test(test_fs_v1_joined_and_hybrid),
        cmocka_unit_test(test_vanish_between_reads),
        cmocka_unit_test(test_no_hierarchy),
        cmocka_unit_test(test_readbuf_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

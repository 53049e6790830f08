/* pread-cost: what one pread of each cgroup v1 file kind the collector reads costs, read the way
 * a cycle reads them (one kind over every container, each file kept open, one pread of 4 KiB at
 * offset 0). Reads "<id> <pid>" lines on stdin (run.sh makes them; cgroupfs driver layout
 * <root>/<controller>/docker/<id>). Prints CPU µs per read back-to-back and with rounds 100 ms
 * apart (the daemon's cycles are seconds apart: caches are cold). docs/BENCHMARKS.md. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONTAINERS 256

static const char *const kinds[] = {
    "cpuacct/cpuacct.usage",
    "memory/memory.usage_in_bytes",
    "net/dev", /* /proc/<pid>/net/dev */
    "cpuacct/cpuacct.stat",
    "memory/memory.max_usage_in_bytes",
    "memory/memory.oom_control",
    "memory/memory.stat",
    "blkio/blkio.throttle.io_service_bytes_recursive",
    "blkio/blkio.throttle.io_serviced_recursive",
    "pids/pids.current",
    "unified/cpu.pressure",
    "unified/memory.pressure",
    "unified/io.pressure",
    "cpu/cpu.stat",
    "cpu/cpu.cfs_quota_us",
    "cpu/cpu.cfs_period_us",
    "memory/memory.limit_in_bytes",
    "pids/pids.max",
};

static double cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double cost(const int *fd, size_t n, int rounds, int gap_ms, ssize_t *ret_len)
{
    static char buf[4096];
    double total = 0;
    for (int r = 0; r < rounds; r++) {
        if (gap_ms)
            usleep((useconds_t)gap_ms * 1000);
        double c0 = cpu_us();
        for (size_t i = 0; i < n; i++) {
            ssize_t len = pread(fd[i], buf, sizeof(buf), 0);
            if (len >= 0)
                *ret_len = len;
        }
        total += cpu_us() - c0;
    }
    return total / rounds / (double)n;
}

int main(void)
{
    static char ids[MAX_CONTAINERS][129];
    static int pids[MAX_CONTAINERS];
    size_t n = 0;
    char line[512];
    while (n < MAX_CONTAINERS && fgets(line, sizeof(line), stdin))
        if (sscanf(line, "%128s %d", ids[n], &pids[n]) == 2)
            n++;
    if (n == 0) {
        fprintf(stderr, "pread-cost: no '<id> <pid>' lines on stdin\n");
        return 1;
    }
    printf("one pread per file, %zu containers, CPU us per read\n", n);
    printf("%-52s %6s %8s %8s\n", "file", "bytes", "warm", "cold");
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        static int fd[MAX_CONTAINERS];
        size_t open_n = 0;
        for (size_t i = 0; i < n; i++) {
            char path[512];
            if (strcmp(kinds[k], "net/dev") == 0)
                snprintf(path, sizeof(path), "/proc/%d/net/dev", pids[i]);
            else
                snprintf(path, sizeof(path), "/sys/fs/cgroup/%.*s/docker/%s%s",
                         (int)(strchr(kinds[k], '/') - kinds[k]), kinds[k], ids[i],
                         strchr(kinds[k], '/'));
            int f = open(path, O_RDONLY | O_CLOEXEC);
            if (f >= 0)
                fd[open_n++] = f;
        }
        if (open_n == 0) {
            printf("%-52s %6s\n", kinds[k], "-");
            continue;
        }
        ssize_t len = 0;
        double warm = cost(fd, open_n, 400, 0, &len);
        double cold = cost(fd, open_n, 40, 100, &len);
        printf("%-52s %6zd %8.2f %8.2f\n", kinds[k], len, warm, cold);
        for (size_t i = 0; i < open_n; i++)
            close(fd[i]);
    }
    return 0;
}

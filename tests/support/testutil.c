#include "support/testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/buf.h"

char *tu_mkdtemp(void)
{
    char tmpl[] = "/tmp/axion-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

void tu_rm_rf(const char *path)
{
    if (!path || !*path || strcmp(path, "/") == 0)
        return;
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "rm -rf %s failed\n", path);
}

int tu_write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "we");
    if (!f)
        return -errno;
    size_t n = strlen(content);
    int r = fwrite(content, 1, n, f) == n ? 0 : -EIO;
    if (fclose(f) != 0 && r == 0)
        r = -errno;
    return r;
}

uint64_t tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool tu_wait_for(bool (*cond)(void *), void *arg, uint64_t deadline_ms)
{
    uint64_t end = tu_now_ms() + deadline_ms;
    for (;;) {
        if (cond(arg))
            return true;
        if (tu_now_ms() >= end)
            return cond(arg);
        usleep(50 * 1000);
    }
}

static char *vformat(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        return NULL;
    return s;
}

int tu_sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = vformat(fmt, ap);
    va_end(ap);
    if (!cmd)
        return -1;
    int st = system(cmd);
    free(cmd);
    return st == -1 ? -1 : WEXITSTATUS(st);
}

char *tu_sh_out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = vformat(fmt, ap);
    va_end(ap);
    if (!cmd)
        return NULL;
    FILE *p = popen(cmd, "re");
    free(cmd);
    if (!p)
        return NULL;
    struct buf b = BUF_INIT(64 << 20);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
        if (buf_append(&b, chunk, n) < 0)
            break;
    pclose(p);
    while (b.len && b.data[b.len - 1] == '\n')
        b.data[--b.len] = '\0';
    return buf_detach(&b, NULL);
}

#include "lib/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum log_level log_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {
    [LOG_LEVEL_ERROR] = "error",
    [LOG_LEVEL_WARN] = "warn",
    [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_DEBUG] = "debug",
};

void log_init(enum log_level level)
{
    log_level = level;
    setvbuf(stderr, NULL, _IOLBF, 0);
}

void log_set_level(enum log_level level)
{
    log_level = level;
}

enum log_level log_get_level(void)
{
    return log_level;
}

int log_level_from_string(const char *s)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(s, level_names[i]) == 0)
            return (int)i;
    return -EINVAL;
}

const char *log_level_to_string(enum log_level level)
{
    return level <= LOG_LEVEL_DEBUG ? level_names[level] : "?";
}

/* logfmt quoting: a value is quoted, with " and \ escaped and control bytes as \n or \xNN. */
static void put_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

void log_vmsg(enum log_level level, const char *fields, const char *fmt, va_list ap)
{
    if (level > log_level)
        return;
    char msg[2048];
    vsnprintf(msg, sizeof(msg), fmt, ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

    flockfile(stderr);
    fprintf(stderr, "ts=%s.%03ldZ level=%s msg=", when, ts.tv_nsec / 1000000, level_names[level]);
    put_quoted(stderr, msg);
    if (fields && *fields)
        fprintf(stderr, " %s", fields);
    fputc('\n', stderr);
    funlockfile(stderr);
}

void log_msg(enum log_level level, const char *fields, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, fields, fmt, ap);
    va_end(ap);
}

int log_errno(int r, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_msg(LOG_LEVEL_ERROR, NULL, "%s: %s", msg, strerror(r < 0 ? -r : r));
    return r < 0 ? r : -r;
}

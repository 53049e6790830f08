/* Structured logs in logfmt on stderr: ts=… level=… msg="…" [key=value …].
 * log_warn() adds strerror(errno); log_errno() returns the negative errno it was given so a
 * caller can `return log_errno(r, "…")` where the error is handled, and only there. */
#pragma once

#include <stdarg.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void log_init(enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "error", "warn", "info", "debug" → level; -EINVAL for anything else. */
int log_level_from_string(const char *s);
const char *log_level_to_string(enum log_level level);

void log_msg(enum log_level level, const char *fields, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level level, const char *fields, const char *fmt, va_list ap);
int log_errno(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, NULL, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, NULL, __VA_ARGS__)
#define log_warnx(...) log_msg(LOG_LEVEL_WARN, NULL, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, NULL, __VA_ARGS__)
#define log_warn(...)  log_errno(-errno, __VA_ARGS__)

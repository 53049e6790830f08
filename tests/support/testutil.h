/* Shared test helpers. Include after the cmocka prerequisites. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* Makes a fresh temporary directory and returns its malloc'ed path. */
char *tu_mkdtemp(void);
/* Removes a directory tree (best effort). */
void tu_rm_rf(const char *path);
/* Writes a file; returns 0 or -errno. */
int tu_write_file(const char *path, const char *content);
/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t tu_now_ms(void);
/* Calls cond(arg) until it returns true or deadline_ms passes; returns its last answer. */
bool tu_wait_for(bool (*cond)(void *), void *arg, uint64_t deadline_ms);
/* Runs a shell command; returns its exit status (or -1). */
int tu_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Runs a shell command and returns its stdout (malloc'ed, trailing newline trimmed). */
char *tu_sh_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

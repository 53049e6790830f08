/* compose_error: the one error every part of the compiler reports, with its place.
 *   compose.yml:14:7: services.web.deploy.replicas: expected an integer, got "two"
 * The bottom of compose/: it calls nothing else here. */
#pragma once

struct compose_error {
    char file[128];
    unsigned line, col; /* 1-based; 0 when the error has no place in the text */
    char path[256];     /* services.web.deploy.replicas; "" at the top */
    char msg[512];      /* what was expected */
    char text[1024];    /* all of it: "file:line:col: path: msg" */
};

/* Writes an error (printf-style message). Any of file, path may be NULL. Returns -EINVAL so a
 * caller can `return compose_error_set(...)`. */
int compose_error_set(struct compose_error *err, const char *file, unsigned line, unsigned col,
                      const char *path, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

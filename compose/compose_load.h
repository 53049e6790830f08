/* compose_load: the loader's state while it walks one document: the project it fills, where in
 * the document it is (the path of every message), the errors, warnings and notes it writes, and
 * the one way an arena array grows. Every reader above takes a struct compose_loader.
 *
 * Floors of the loader (each calls only the floors below it):
 *   compose.c (document, top-level objects)
 *   compose_service.c → compose_deploy.c, compose_ports.c, compose_mounts.c
 *   compose_keys.c (maps read through key tables)
 *   compose_value.c (scalars, durations, sizes, lists and maps of strings)
 *   compose_load.c, compose_yaml.c, compose_interp.c, compose_util.c, compose_arena.c,
 *   compose_error.c, compose_vars.c */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "compose/compose.h"
#include "compose/compose_arena.h"
#include "compose/compose_yaml.h"

struct compose_loader {
    struct compose_project *p;
    struct compose_arena *a;
    const char *file;
    struct compose_vars vars;
    struct compose_options opts; /* members NULL when the source has no directory */
    struct compose_error *err;
    size_t expanded; /* bytes produced by interpolation so far */
    size_t ports;    /* expanded ports so far, all services */
    char path[256];
    size_t path_len;
    size_t warn_cap, note_cap;
};

/* The path: push a key or an index, and pop back to what push returned. */
size_t compose_load_push(struct compose_loader *l, const char *key);
size_t compose_load_push_index(struct compose_loader *l, size_t i);
void compose_load_pop(struct compose_loader *l, size_t old);

/* An error at node n (NULL: no place) and the current path. Returns -EINVAL. */
int compose_load_fail(struct compose_loader *l, const struct compose_ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* An error at pos with path (NULL: the current path). Returns -EINVAL. */
int compose_load_fail_at(struct compose_loader *l, struct compose_pos pos, const char *path,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A line in the project's warnings (keys Swarm ignores) or notes (what was resolved):
 * "file:line:col: path: message". 0 or -ENOMEM. */
int compose_load_warn(struct compose_loader *l, const struct compose_ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int compose_load_note(struct compose_loader *l, const struct compose_ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends a zeroed element to an arena array of *n elements (capacity *cap); NULL when out of
 * memory. */
void *compose_load_append(struct compose_loader *l, void **arr, size_t *n, size_t *cap,
                          size_t size);
#define COMPOSE_LOAD_APPEND(l, arr, n, cap)                                                        \
    compose_load_append((l), (void **)&(arr), &(n), &(cap), sizeof(*(arr)))
/* Appends s to a list of strings. 0 or -ENOMEM. */
int compose_load_strv_add(struct compose_loader *l, struct compose_strv *sv, size_t *cap, char *s);

struct compose_pos compose_load_pos(const struct compose_ynode *n);

/* compose_value: the values of a compose file, read from YAML nodes for the place they are at:
 * strings (interpolated where they are read), booleans, integers, numbers, durations, sizes,
 * CPUs, command lines, lists of strings and maps of strings. Types follow docker's compose
 * schema; a string produced by interpolation is cast to the boolean or number a field wants.
 * Every reader writes its result only on success and reports a wrong value at its node:
 *   compose.yml:14:7: services.web.tty: expected a boolean, got "maybe" */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "compose/compose_load.h"

/* A scalar after interpolation. */
struct compose_value {
    enum compose_ytype type;
    const char *s; /* text (interpolated for strings) */
    size_t len;
    bool b;
    int64_t i;
    double f;
    bool interpolated; /* interpolation changed the text: it may be cast */
};

/* Reads a scalar, interpolating strings; anything else is "expected <want>". */
int compose_value_scalar(struct compose_loader *l, const struct compose_ynode *n,
                         struct compose_value *ret, const char *want);
/* "expected <want>, got <what n (or v) is>", with a hint when YAML read a plain word as a
 * boolean or null. Returns -EINVAL. */
int compose_value_expected(struct compose_loader *l, const struct compose_ynode *n,
                           const struct compose_value *v, const char *want);
/* Interpolates a whole subtree and keeps nothing: docker refuses a bad ${...} anywhere, even in
 * keys it ignores. */
int compose_value_check_tree(struct compose_loader *l, const struct compose_ynode *n);

bool compose_value_is_null(const struct compose_ynode *n);
/* Letters, digits, '.', '_', '-': the names docker's schema allows for services and objects. */
bool compose_value_valid_name(const char *s);

/* Strings are not copied: node strings live in the project's arena and are never changed (an
 * aliased node is read at many places); code that edits a string copies it first. */
int compose_value_str(struct compose_loader *l, const struct compose_ynode *n, char **ret);
/* A string, or null (→ NULL). */
int compose_value_str_or_null(struct compose_loader *l, const struct compose_ynode *n, char **ret);
int compose_value_bool(struct compose_loader *l, const struct compose_ynode *n, bool *ret);
int compose_value_int(struct compose_loader *l, const struct compose_ynode *n, int64_t *ret);
/* An integer of 0 or more. */
int compose_value_uint(struct compose_loader *l, const struct compose_ynode *n, uint64_t *ret);
int compose_value_number(struct compose_loader *l, const struct compose_ynode *n, double *ret);
/* A Go duration as a string ("10s", "1m30s") → nanoseconds. */
int compose_value_duration(struct compose_loader *l, const struct compose_ynode *n,
                           int64_t *ret_ns);
/* A size as a string ("512M", "1.5G") → bytes. */
int compose_value_size(struct compose_loader *l, const struct compose_ynode *n, int64_t *ret);
/* A number of CPUs as a string ("0.5"), kept as written once it is known to be valid. */
int compose_value_cpus(struct compose_loader *l, const struct compose_ynode *n, char **ret);

/* A list of strings; unique: docker's schema wants the items distinct. */
int compose_value_list(struct compose_loader *l, const struct compose_ynode *n, bool unique,
                       struct compose_strv *ret);
/* A string or a list of strings. */
int compose_value_str_or_list(struct compose_loader *l, const struct compose_ynode *n,
                              struct compose_strv *ret);
/* A command: a list of words, or a string split into words as a shell would (google/shlex). */
int compose_value_words(struct compose_loader *l, const struct compose_ynode *n,
                        struct compose_strv *ret);

enum compose_value_nil {
    COMPOSE_VALUE_NIL_EMPTY, /* "key" and key: null mean "" (labels, sysctls) */
    COMPOSE_VALUE_NIL_KEEP,  /* they mean "no value" (environment) */
};
/* docker's list_or_dict: {key: value} or ["key=value", "key"]; numbers are written as Go
 * prints them. */
int compose_value_list_or_dict(struct compose_loader *l, const struct compose_ynode *n,
                               enum compose_value_nil nil, struct compose_map *ret);
/* A mapping of strings or numbers (driver_opts), or with nulls too (logging options). */
int compose_value_string_map(struct compose_loader *l, const struct compose_ynode *n,
                             bool allow_null, struct compose_map *ret);

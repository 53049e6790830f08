/* YAML text → a tree of nodes with their place in the text, built from libyaml's event API.
 *
 * - Aliases share the anchored node (the tree is a DAG, never a cycle: an alias may only name
 *   a node that is complete). Every node knows its weight (nodes it expands to) and height
 *   (nesting it expands to), so a billion-laughs file is refused while it is being read.
 * - Merge keys (`<<: *defaults`, `<<: [*a, *b]`) are applied when a mapping ends: keys written
 *   in the mapping win over merged ones, and an earlier merged map wins over a later one.
 * - Duplicate keys are an error; keys must be strings.
 * - Plain scalars are resolved the way YAML 1.1 (and docker's go-yaml v2) does: null (~, null,
 *   empty), bool (true/false, yes/no, on/off, y/n in their usual cases), int (decimal, 0x, 0o,
 *   0b, leading-0 octal, `_` separators), float; anything else is a string. Quoted and block
 *   scalars are strings. The text of every scalar is kept as written. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compose/compose.h"
#include "compose/compose_arena.h"

enum compose_ykind {
    COMPOSE_YSCALAR,
    COMPOSE_YMAP,
    COMPOSE_YSEQ,
};

enum compose_ytype {
    COMPOSE_YNULL,
    COMPOSE_YBOOL,
    COMPOSE_YINT,
    COMPOSE_YFLOAT,
    COMPOSE_YSTR,
};

struct compose_ynode {
    enum compose_ykind kind;
    unsigned line, col;
    /* scalars: the text as written (NUL-terminated, no NUL inside) and its resolved type */
    const char *str;
    size_t len;
    enum compose_ytype type;
    bool plain; /* a plain (unquoted, untagged) scalar */
    bool b;
    int64_t i;
    double f;
    /* maps: n pairs keys[i] → vals[i], merge keys applied; sequences: n items in vals[] */
    struct compose_ynode **keys;
    struct compose_ynode **vals;
    size_t n;
    uint64_t weight; /* nodes, aliases and merge keys expanded */
    uint64_t bytes;  /* bytes of scalar text, aliases and merge keys expanded */
    unsigned height;
};

/* Parses one YAML document into nodes allocated in arena a. file names the text in messages.
 * Returns 0 and the root node (NULL for an empty document), or a negative errno with err set
 * (-EINVAL syntax, -E2BIG a limit of compose.h, -ENOMEM). */
int compose_yaml_parse(struct compose_arena *a, const char *text, size_t len, const char *file,
                       struct compose_ynode **ret_root, struct compose_error *err);

/* The value of key in a map node, or NULL. */
struct compose_ynode *compose_yaml_get(const struct compose_ynode *map, const char *key);
/* The key node itself (its place), or NULL. */
struct compose_ynode *compose_yaml_key(const struct compose_ynode *map, const char *key);

/* Resolves a plain scalar's text as YAML 1.1 does; fills type and b/i/f of n. */
void compose_yaml_resolve(struct compose_ynode *n);

/* "a string", "an integer", "a mapping", ... for messages. */
const char *compose_yaml_describe(const struct compose_ynode *n);

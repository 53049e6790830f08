/* compose_keys: every mapping of a compose file with fixed keys (a service, its deploy, a
 * port, a mount, a network, ...) is read by one reader, compose_keys_read(), driven by a table
 * of rows, the way agent/config.c reads its keys: a new key is one row.
 *
 *   static const struct compose_key restart_policy_keys[] = {
 *       {KEY("condition", KEY_STR, KEY_AT(compose_restart_policy, condition)),
 *        .one_of = conditions, .expect = "none, on-failure or any"},
 *       {KEY("delay", KEY_DUR, KEY_AT(compose_restart_policy, delay))},
 *   };
 *
 * The reader walks the mapping in the file's order; for each key it finds the row, reads the
 * value by the row's kind into the object at the row's offset, checks what the row asks, and
 * moves on. A key without a row is "unknown key (not in the compose file format docker stack
 * deploy reads)", unless the table allows extension keys (x-...: interpolated, kept nowhere).
 * After the keys: every `required` row that is missing is an error at the mapping, then the
 * table's finish() runs for the checks that look at several keys. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compose/compose_load.h"

enum compose_key_kind {
    KEY_STR,         /* char *; KEY_NULL: null reads as NULL; .one_of: the allowed values */
    KEY_BOOL,        /* bool */
    KEY_INT,         /* int64_t; .limit: in [min, max] */
    KEY_UINT,        /* uint64_t, 0 or more; .limit: in [min, max] */
    KEY_U32,         /* uint32_t, 0 or more; .limit: in [min, max] (at most UINT32_MAX) */
    KEY_U64,         /* struct compose_u64 */
    KEY_NUMBER,      /* double; .limit: in [min, max] */
    KEY_DURATION,    /* int64_t nanoseconds */
    KEY_DUR,         /* struct compose_duration */
    KEY_SIZE,        /* int64_t bytes, written as a string ("512M") */
    KEY_CPUS,        /* char *, a number of CPUs as written */
    KEY_LIST,        /* struct compose_strv; KEY_UNIQUE: the items are distinct */
    KEY_STR_OR_LIST, /* struct compose_strv, items distinct */
    KEY_WORDS,       /* struct compose_strv: a list, or a string split as a shell would */
    KEY_LABELS,      /* struct compose_map, list or mapping; "key" alone means "" */
    KEY_ENV,         /* struct compose_map, list or mapping; "key" alone means no value */
    KEY_OPTS,        /* struct compose_map, a mapping of strings and numbers; KEY_NULL: nulls */
    KEY_MAP,         /* a mapping read with .sub into the object at .off */
    KEY_READ,        /* .read(l, value, object at .off, row) */
    KEY_ANY,         /* any value, interpolated and kept nowhere (with .ignored or .refused) */
};

/* flags */
#define KEY_NULL      1u /* KEY_STR: null is NULL; KEY_OPTS: values may be null */
#define KEY_UNIQUE    2u /* KEY_LIST: duplicate items are refused */
#define KEY_VALUE_POS 4u /* .pos gets the value's position, not the key's */
#define KEY_GOT       8u /* .limit: the message says what came ("expected ..., got 70000") */

/* Where a row writes: an offset into the object, + 1, so that 0 in a row means "none". */
#define KEY_AT(type, field) (offsetof(struct type, field) + 1)
#define KEY_SELF            1 /* the object itself (KEY_MAP, KEY_READ) */

/* The start of a row: {KEY("image", KEY_STR, KEY_AT(compose_service, image)), ...} */
#define KEY(name_, kind_, off_) .name = (name_), .kind = (kind_), .off = (off_)

struct compose_loader;
struct compose_keys;
struct compose_key;

typedef int compose_key_read_fn(struct compose_loader *l, const struct compose_ynode *v,
                                void *field, const struct compose_key *k);

struct compose_key {
    const char *name;
    enum compose_key_kind kind;
    size_t off;     /* KEY_AT() or KEY_SELF: where the value goes; 0 for KEY_ANY */
    size_t present; /* KEY_AT() of a bool set when the key is there; 0: none */
    size_t pos;     /* KEY_AT() of a struct compose_pos: the key's place (KEY_VALUE_POS: the
                       value's); 0: none */
    unsigned flags;
    const char *const *one_of; /* KEY_STR: the allowed values, NULL-terminated */
    const char *expect;        /* KEY_STR with one_of: "expected <expect>, got "x"" */
    const char *limit;         /* numbers: "expected <limit>" when out of [min, max] */
    int64_t min, max;
    const struct compose_keys *sub; /* KEY_MAP */
    compose_key_read_fn *read;      /* KEY_READ */
    const void *arg;                /* for .read */
    const char *required;           /* the error at the mapping when the key is missing */
    const char *ignored;            /* Swarm ignores the key: read it, then warn "ignored: <why>" */
    const char *refused; /* docker stack deploy refuses the key: "not supported ...: <why>" */
};

struct compose_keys {
    const struct compose_key *keys;
    size_t n;
    const char *want; /* what the value must be: NULL "a mapping" */
    bool null_ok;     /* null reads as an empty mapping */
    bool extensions;  /* x-... keys are allowed */
    /* Checks over several keys, after all of them were read; may be NULL. */
    int (*finish)(struct compose_loader *l, const struct compose_ynode *map, void *obj);
};

#define COMPOSE_KEYS(rows, ...)                                                                    \
    {                                                                                              \
        .keys = (rows), .n = sizeof(rows) / sizeof((rows)[0]), __VA_ARGS__                         \
    }

/* Reads the mapping n into obj through table t. 0, or a negative errno with the error set. */
int compose_keys_read(struct compose_loader *l, const struct compose_ynode *n,
                      const struct compose_keys *t, void *obj);

/* The error for a key no table knows. Returns -EINVAL. */
int compose_keys_unknown(struct compose_loader *l, const struct compose_ynode *key);
/* Whether key is an extension key (x-...). */
bool compose_keys_is_extension(const char *key);

/* A KEY_READ reader: a list of single-key maps [{K: "a"}, {K: "b"}] (placement preferences'
 * spread, ipam config's subnet) into a struct compose_strv of their strings, "" where an item
 * leaves the key out; .arg is K. */
compose_key_read_fn compose_keys_keyed_list;

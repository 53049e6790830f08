/* A strict reader for the subset of TOML 1.0 that the agent's config needs.
 *
 * Supported: one level of tables ([name]), bare and quoted keys, basic and literal strings
 * (single- and multi-line, every escape of TOML 1.0, UTF-8 checked), integers (sign, "_"
 * separators, 0x/0o/0b), booleans, arrays (nested, multi-line, trailing comma), comments,
 * LF and CRLF line ends. Refused with a clear message: dotted keys and table names, arrays of
 * tables, inline tables, floats, dates and times. Duplicate keys and tables are errors.
 *
 * Every error names the place and says what was expected:
 *   agent.toml:3:9: expected a value (string, integer, boolean or array), got "yes"
 * except in the value of a key that toml_limits.secret_key names: there the error says where
 * and that the value is not shown. Invalid UTF-8 is reported by place only (the byte may be
 * part of a secret).
 * Lines and columns start at 1; columns count characters, not bytes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

enum toml_type { TOML_STRING, TOML_INTEGER, TOML_BOOLEAN, TOML_ARRAY, TOML_TABLE };

struct toml_pos {
    uint32_t line;
    uint32_t col;
};

struct toml_value;
struct toml_kv;

struct toml_array {
    struct toml_value *items;
    size_t n;
};

/* Keys in the order of the document. */
struct toml_table {
    struct toml_kv *kvs;
    size_t n;
    size_t cap; /* room in kvs (lib/array.h) */
};

struct toml_value {
    enum toml_type type;
    struct toml_pos pos; /* where the value starts (for a table: its "[") */
    union {
        char *str; /* NUL-terminated UTF-8; a string never holds NUL */
        int64_t integer;
        bool boolean;
        struct toml_array array;
        struct toml_table table;
    };
};

struct toml_kv {
    char *key;
    struct toml_pos pos; /* of the key (for a table: of its name in the header) */
    struct toml_value value;
};

/* Every size that comes from the document is bounded. */
struct toml_limits {
    size_t max_input;  /* bytes of the whole document */
    size_t max_depth;  /* arrays inside arrays */
    size_t max_string; /* bytes of one string or key, after escapes */
    size_t max_array;  /* items of one array */
    size_t max_keys;   /* keys of one table (tables count as keys of the top level) */
    /* Not a limit but a guard: when it says a key holds a secret (table is NULL at the top
     * level), an error in that key's value says where, never what the value was. */
    bool (*secret_key)(const char *table, const char *key);
};

/* 1 MiB, depth 16, strings 64 KiB, 4096 items, 1024 keys. */
extern const struct toml_limits toml_default_limits;

/* Parses data[0..len) (need not be NUL-terminated) into *ret, the top-level table (written
 * only on success). name is the file name used in messages; limits NULL means the defaults.
 * Returns 0, -EINVAL for a syntax error, -E2BIG for a limit, -ENOMEM; on error err holds
 * "name:line:col: what was expected, got what". */
int toml_parse(const char *data, size_t len, const char *name, const struct toml_limits *limits,
               struct toml_table *ret, char *err, size_t errlen);

/* Frees everything below t and leaves it empty. Accepts NULL. */
void toml_table_release(struct toml_table *t);

/* The entry named key, or NULL. Borrowed: it lives as long as t. */
const struct toml_kv *toml_table_peek(const struct toml_table *t, const char *key);

/* "string", "integer", "boolean", "array", "table". */
const char *toml_type_name(enum toml_type type);

/* Reads a regular file of at most max bytes into a malloc'ed, NUL-terminated buffer.
 * Returns 0 or a negative errno (-EFBIG when it is larger than max) with err saying
 * "path: cause". */
int toml_read_file(const char *path, size_t max, char **ret_data, size_t *ret_len, char *err,
                   size_t errlen);

/* TOML integer syntax: [+-]digits with "_" between digits, or 0x / 0o / 0b without sign.
 * Returns 0, -EINVAL (not an integer) or -ERANGE (does not fit in 64 bits). */
int toml_parse_integer(const char *s, size_t len, int64_t *ret);

/* True when s[0..len) is valid UTF-8 (no overlong forms, surrogates or values past U+10FFFF). */
bool toml_utf8_valid(const char *s, size_t len);

/* Appends s as a TOML basic string: quoted, with \" \\ \b \t \n \f \r and \uXXXX escapes for
 * the other control characters. s must be valid UTF-8. Returns 0 or the buf error. */
int toml_put_string(struct buf *b, const char *s);

/* Writes a short double-quoted rendering of s[0..len) for error messages: control
 * characters and invalid UTF-8 escaped, cut after 40 characters with "...". Always
 * NUL-terminates out (outlen > 0); TOML_QUOTE_MAX bytes are always enough. */
#define TOML_QUOTE_MAX 256
void toml_quote(const char *s, size_t len, char *out, size_t outlen);

/* Canonical JSON and SHA-256, for the io.axion.spec-hash label and content-addressed names.
 *
 * Canonical JSON here is jansson's compact encoding with object keys sorted (byte order), no
 * whitespace, UTF-8 kept as is, reals with 17 significant digits. The same JSON value always
 * gives the same text, so the same spec always gives the same hash. */
#pragma once

#include <jansson.h>
#include <stddef.h>

#define SPEC_HASH_HEX 64

/* The canonical text of j (malloc'ed), or NULL when out of memory. */
char *spec_hash_canonical(const json_t *j);

/* SHA-256 of the canonical text of j as lower-case hex. 0, or -ENOMEM. */
int spec_hash_json(const json_t *j, char ret[SPEC_HASH_HEX + 1]);

/* SHA-256 of len bytes as lower-case hex. 0, or -ENOMEM / -EIO when OpenSSL fails. */
int spec_hash_bytes(const void *data, size_t len, char ret[SPEC_HASH_HEX + 1]);

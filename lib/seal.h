/* seal: authenticated encryption of small blobs at rest (AES-256-GCM, OpenSSL).
 *
 * A sealed blob is: 1 byte format (SEAL_FORMAT_AES256GCM), 12 bytes random nonce, the
 * ciphertext (as long as the plaintext), 16 bytes tag. The associated data (aad) is not stored:
 * the caller passes the same bytes to open it (the store binds a file to its stack and name, so
 * a row moved elsewhere does not open). A blob sealed with another key, or changed in any bit,
 * does not open: -EBADMSG, nothing written. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SEAL_KEY_BYTES        32
#define SEAL_NONCE_BYTES      12
#define SEAL_TAG_BYTES        16
#define SEAL_FORMAT_AES256GCM 1
#define SEAL_OVERHEAD         (1 + SEAL_NONCE_BYTES + SEAL_TAG_BYTES)
#define SEAL_MAX              (1u << 30) /* plaintext bytes one call may seal */

/* Seals len bytes of in into out (len + SEAL_OVERHEAD bytes). 0, -EMSGSIZE past SEAL_MAX, or
 * -EIO when OpenSSL fails (no random bytes, ...). */
int seal_encrypt(const uint8_t key[SEAL_KEY_BYTES], const void *aad, size_t aad_len, const void *in,
                 size_t len, uint8_t *out);

/* Opens a sealed blob of len bytes into out (len - SEAL_OVERHEAD bytes); *ret_len gets that
 * length. -EBADMSG when it is not a sealed blob of this format, or the key, the aad or a byte
 * differ; -EIO when OpenSSL fails. */
int seal_decrypt(const uint8_t key[SEAL_KEY_BYTES], const void *aad, size_t aad_len,
                 const uint8_t *in, size_t len, void *out, size_t *ret_len);

/* A new random key. 0 or -EIO. */
int seal_key_new(uint8_t key[SEAL_KEY_BYTES]);

/* Overwrites n bytes of p with zeros in a way the compiler keeps. */
void seal_wipe(void *p, size_t n);

#include "lib/seal.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

void seal_wipe(void *p, size_t n)
{
    if (p && n)
        OPENSSL_cleanse(p, n);
}

int seal_key_new(uint8_t key[SEAL_KEY_BYTES])
{
    return RAND_bytes(key, SEAL_KEY_BYTES) == 1 ? 0 : -EIO;
}

int seal_encrypt(const uint8_t key[SEAL_KEY_BYTES], const void *aad, size_t aad_len, const void *in,
                 size_t len, uint8_t *out)
{
    if (len > SEAL_MAX || aad_len > INT_MAX)
        return -EMSGSIZE;
    out[0] = SEAL_FORMAT_AES256GCM;
    uint8_t *nonce = out + 1, *ct = nonce + SEAL_NONCE_BYTES, *tag = ct + len;
    if (RAND_bytes(nonce, SEAL_NONCE_BYTES) != 1)
        return -EIO;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, r = -EIO;
    if (ctx && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE_BYTES, NULL) == 1 &&
        EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) == 1 &&
        (aad_len == 0 || EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1) &&
        (len == 0 || EVP_EncryptUpdate(ctx, ct, &n, in, (int)len) == 1) &&
        EVP_EncryptFinal_ex(ctx, ct + len, &n) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_BYTES, tag) == 1)
        r = 0;
    EVP_CIPHER_CTX_free(ctx);
    if (r < 0)
        seal_wipe(out, len + SEAL_OVERHEAD);
    return r;
}

int seal_decrypt(const uint8_t key[SEAL_KEY_BYTES], const void *aad, size_t aad_len,
                 const uint8_t *in, size_t len, void *out, size_t *ret_len)
{
    if (len < SEAL_OVERHEAD || in[0] != SEAL_FORMAT_AES256GCM)
        return -EBADMSG;
    size_t clen = len - SEAL_OVERHEAD;
    if (clen > SEAL_MAX || aad_len > INT_MAX)
        return -EMSGSIZE;
    const uint8_t *nonce = in + 1, *ct = nonce + SEAL_NONCE_BYTES, *tag = ct + clen;
    uint8_t tagcopy[SEAL_TAG_BYTES];
    memcpy(tagcopy, tag, sizeof(tagcopy));
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, r = -EIO;
    if (ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE_BYTES, NULL) == 1 &&
        EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) == 1 &&
        (aad_len == 0 || EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1) &&
        (clen == 0 || EVP_DecryptUpdate(ctx, out, &n, ct, (int)clen) == 1) &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_BYTES, tagcopy) == 1)
        r = EVP_DecryptFinal_ex(ctx, (uint8_t *)out + clen, &n) == 1 ? 0 : -EBADMSG;
    EVP_CIPHER_CTX_free(ctx);
    if (r < 0) {
        seal_wipe(out, clen);
        return r;
    }
    *ret_len = clen;
    return 0;
}

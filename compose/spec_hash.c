#include "compose/spec_hash.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>

char *spec_hash_canonical(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
}

int spec_hash_bytes(const void *data, size_t len, char ret[SPEC_HASH_HEX + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return -EIO;
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < mdlen; i++) {
        ret[2 * i] = hex[md[i] >> 4];
        ret[2 * i + 1] = hex[md[i] & 15];
    }
    ret[SPEC_HASH_HEX] = '\0';
    return 0;
}

int spec_hash_json(const json_t *j, char ret[SPEC_HASH_HEX + 1])
{
    char *text = spec_hash_canonical(j);
    if (!text)
        return -ENOMEM;
    size_t len = 0;
    while (text[len])
        len++;
    int r = spec_hash_bytes(text, len, ret);
    free(text);
    return r;
}

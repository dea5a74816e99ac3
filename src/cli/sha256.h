/* SHA-256 (FIPS 180-4), incremental: what names imported base images
 * (vm_image.h).  Plain portable C; no library in Petrel's dependencies
 * exports one.
 *
 * Threads: none; a struct sha256 is used by one thread at a time.
 *
 * What can fail: nothing. */
#ifndef PETREL_CLI_SHA256_H
#define PETREL_CLI_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32

struct sha256 {
    uint32_t h[8];
    uint64_t len;               /* bytes hashed so far */
    uint8_t buf[64];            /* a partial block */
    size_t nbuf;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
/* The digest of everything passed to sha256_update; s must be
 * initialised again before it is reused. */
void sha256_final(struct sha256 *s, uint8_t out[SHA256_DIGEST_LEN]);

#endif

/* iovec helpers shared by the block drivers. */
#ifndef PETREL_IOV_H
#define PETREL_IOV_H

#include <stdint.h>
#include <sys/uio.h>

/* Drop the first n bytes of the vector *iov[0..*niov): whole entries are
 * skipped, a partly consumed one is shortened in place (short transfers). */
static inline void iov_consume(struct iovec **iov, unsigned *niov, uint64_t n)
{
    while (*niov && n >= (*iov)->iov_len) {
        n -= (*iov)->iov_len;
        (*iov)++;
        (*niov)--;
    }
    if (*niov && n) {
        (*iov)->iov_base = (uint8_t *)(*iov)->iov_base + n;
        (*iov)->iov_len -= (size_t)n;
    }
}

#endif

/* Helpers shared by the qcow2 unit tests: image paths in the test's
 * temporary directory, deterministic data, creating and opening an image,
 * `check` must be clean, and a shadow copy of the disk that every read is
 * compared with.  The including file defines `static char dir[]` (a
 * mkdtemp template) before including this, after unit.h. */
#ifndef PETREL_TEST_QCOW2_UTIL_H
#define PETREL_TEST_QCOW2_UTIL_H

#include <stdlib.h>
#include <string.h>

#include "block/qcow2.h"

static inline const char *path(const char *name)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
    return buf[k];
}

static inline void fill(uint8_t *p, uint64_t n, uint64_t seed)
{
    for (uint64_t i = 0; i < n; i++)
        p[i] = (uint8_t)((seed * 131 + i * 7 + (i >> 9)) ^ (seed >> 3));
}

static inline struct qimg *mk(const char *name, uint64_t size, uint32_t cb, uint32_t order,
                       const char *backing)
{
    struct err e = { "" };
    struct qimg_create_opts o = { .fmt = "qcow2", .size = size, .cluster_bits = cb,
                                  .refcount_bits = 1u << order, .backing = backing };
    int r = qimg_create(path(name), &o, &e);
    CHECK(r == 0, "create %s: %s", name, e.msg);
    struct qimg *q = NULL;
    r = qimg_open(&q, path(name), NULL, false, &e);
    CHECK(r == 0, "open %s: %s", name, e.msg);
    return q;
}

static inline void check_clean(struct qimg *q, const char *what)
{
    struct qimg_check res;
    struct err e = { "" };
    int r = qimg_check(q, 0, &res, stdout, &e);
    CHECK(r == 0 && res.corruptions == 0 && res.leaks == 0,
          "%s: check r=%d corruptions=%llu leaks=%llu %s", what, r,
          (unsigned long long)res.corruptions, (unsigned long long)res.leaks, e.msg);
}

/* A shadow of the guest disk, compared after every step. */
static inline void verify(struct qimg *q, const uint8_t *shadow, uint64_t size, const char *what)
{
    uint8_t *got = malloc(size);
    int r = qimg_pread(q, got, size, 0);
    CHECK(r == 0, "%s: read: %s", what, q->err.msg);
    uint64_t bad = size;
    for (uint64_t i = 0; memcmp(got, shadow, size) && i < size; i++)
        if (got[i] != shadow[i]) {
            bad = i;
            break;
        }
    CHECK(bad == size, "%s: first difference at %llu", what, (unsigned long long)bad);
    free(got);
}

static inline void wr(struct qimg *q, uint8_t *shadow, uint64_t off, uint64_t len, uint64_t seed)
{
    uint8_t *b = malloc(len);
    fill(b, len, seed);
    int r = qimg_pwrite(q, b, len, off);
    CHECK(r == 0, "write %llu+%llu: %s", (unsigned long long)off, (unsigned long long)len,
          q->err.msg);
    memcpy(shadow + off, b, len);
    free(b);
}

#endif

/* libFuzzer target: qcow2 header, extension, table and refcount parsing,
 * reads, writes and check on a hostile image.  The input is the image file
 * itself (at most 4 MiB), held in a memfd and opened through
 * /proc/self/fd.  Whatever the image says, petrel must fail cleanly: no
 * crash, no out-of-bounds access, no leak, no endless loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block/qcow2.h"

#define MAX_INPUT (4u << 20)
#define READ_LIMIT (1u << 20)

static void exercise(const char *path, bool rw)
{
    struct err e = { "" };
    struct qimg *q = NULL;
    if (qimg_open(&q, path, "qcow2", !rw, &e) < 0)
        return;
    static uint8_t buf[65536];
    uint64_t lim = q->size < READ_LIMIT ? q->size : READ_LIMIT;
    for (uint64_t off = 0; off < lim; off += sizeof(buf)) {
        uint64_t n = lim - off < sizeof(buf) ? lim - off : sizeof(buf);
        if (qimg_pread(q, buf, n, off) < 0)
            break;
    }
    struct qimg_extent x;
    if (q->size)
        (void)qimg_map(q, 0, q->size, &x);
    if (rw && q->size >= 4096) {
        memset(buf, 0x5a, 4096);
        if (qimg_pwrite(q, buf, 4096, q->size / 2 & ~511ull) == 0 &&
            qimg_write_zeroes(q, 0, q->size < 65536 ? q->size : 65536, true) == 0)
            (void)qimg_discard(q, 0, q->size < (1u << 20) ? q->size : (1u << 20));
    }
    struct qimg_check res;
    (void)qimg_check(q, 0, &res, NULL, &e);
    qimg_close(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;
    int fd = memfd_create("fuzz-qcow2", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) == (ssize_t)size) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        exercise(path, false);
        exercise(path, true);
    }
    close(fd);
    return 0;
}

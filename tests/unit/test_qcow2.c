/* qcow2 core and driver: create, write/read patterns across cluster
 * boundaries, L2 allocation, refcount block and refcount table growth,
 * zero clusters, discard, backing chains, refcount widths, the dirty bit
 * (repaired on a read-write open, refcounts rebuilt when a block is missing),
 * check on every image written, and the block driver with and without an
 * event loop (worker thread). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"
#include "block/qcow2.h"
#include "core/evloop.h"
#include "unit.h"

static char dir[] = "/tmp/petrel-qcow2-XXXXXX";

#include "qcow2_test_util.h"

static void test_patterns(uint32_t cb, uint32_t order)
{
    const uint64_t size = 4 << 20;
    struct qimg *q = mk("p.qcow2", size, cb, order, NULL);
    if (!q)
        return;
    uint8_t *shadow = calloc(1, size);
    uint64_t cs = 1ull << cb;
    verify(q, shadow, size, "fresh");
    wr(q, shadow, 0, 512, 1);                         /* head of cluster 0 */
    wr(q, shadow, cs - 512, 1024, 2);                 /* across a boundary */
    wr(q, shadow, 3 * cs + 100, 5 * cs + 17, 3);      /* unaligned, several clusters */
    wr(q, shadow, 3 * cs + 50, 10, 4);                /* in place */
    wr(q, shadow, size - 4096, 4096, 5);              /* the end */
    wr(q, shadow, size / 2, 300000, 6);               /* a big one */
    verify(q, shadow, size, "patterns");
    check_clean(q, "patterns");
    /* zeroes: whole clusters become zero clusters, partial ones are written */
    int r = qimg_write_zeroes(q, cs / 2, 3 * cs, false);
    CHECK(r == 0, "zeroes: %s", q->err.msg);
    memset(shadow + cs / 2, 0, 3 * cs);
    r = qimg_write_zeroes(q, size / 2, 200000, true);
    CHECK(r == 0, "zeroes unmap: %s", q->err.msg);
    memset(shadow + size / 2, 0, 200000);
    verify(q, shadow, size, "zeroes");
    check_clean(q, "zeroes");
    /* discard whole clusters: read back as zero, clusters freed and reused */
    uint64_t end_before = q->file_size;
    r = qimg_discard(q, 2 * cs, 8 * cs);
    CHECK(r == 0, "discard: %s", q->err.msg);
    for (uint64_t c = 2; c < 10; c++)
        memset(shadow + c * cs, 0, cs);
    verify(q, shadow, size, "discard");
    check_clean(q, "discard");
    wr(q, shadow, size - 8 * cs, 4 * cs, 7);          /* reuses freed clusters */
    CHECK(q->file_size == end_before, "freed clusters reused: %llu -> %llu",
          (unsigned long long)end_before, (unsigned long long)q->file_size);
    verify(q, shadow, size, "reuse");
    check_clean(q, "reuse");
    /* reopen: everything was on disk */
    qimg_close(q);
    struct err e = { "" };
    r = qimg_open(&q, path("p.qcow2"), "qcow2", true, &e);
    CHECK(r == 0, "reopen: %s", e.msg);
    if (r == 0) {
        verify(q, shadow, size, "reopened");
        qimg_close(q);
    }
    free(shadow);
}

/* 512-byte clusters: each L2 table covers 32 KiB, each refcount block
 * 128 KiB of file (16-bit), the refcount table 8 MiB: 12 MiB of data grows
 * all three. */
static void test_growth(void)
{
    const uint64_t size = 16 << 20;
    struct qimg *q = mk("g.qcow2", size, 9, 4, NULL);
    if (!q)
        return;
    uint64_t rt_before = q->rt_off;
    uint8_t *shadow = calloc(1, size);
    for (uint64_t off = 0; off < 12 << 20; off += 256 << 10)
        wr(q, shadow, off, 256 << 10, off >> 10);
    CHECK(q->rt_off != rt_before, "refcount table moved (%llx)", (unsigned long long)q->rt_off);
    verify(q, shadow, size, "growth");
    check_clean(q, "growth");
    qimg_close(q);
    free(shadow);
}

static void test_backing(void)
{
    const uint64_t size = 2 << 20, bsize = 1 << 20;
    struct qimg *base = mk("base.qcow2", bsize, 16, 4, NULL);
    if (!base)
        return;
    uint8_t *shadow = calloc(1, size);
    wr(base, shadow, 0, bsize, 11);
    qimg_close(base);
    struct qimg *mid = mk("mid.qcow2", size, 16, 4, "base.qcow2");   /* relative */
    if (!mid)
        return;
    CHECK(mid->backing && !strcmp(mid->backing_fmt, "qcow2"), "backing format %s",
          mid->backing_fmt);
    wr(mid, shadow, 100000, 5000, 12);
    verify(mid, shadow, size, "mid");
    check_clean(mid, "mid");
    qimg_close(mid);
    struct qimg *top = mk("top.qcow2", size, 12, 4, "mid.qcow2");
    if (!top)
        return;
    verify(top, shadow, size, "chain");
    wr(top, shadow, 4000, 300, 13);                   /* COW from the chain */
    int r = qimg_write_zeroes(top, 8192, 8192, true); /* zero over backing data */
    CHECK(r == 0, "zeroes: %s", top->err.msg);
    memset(shadow + 8192, 0, 8192);
    r = qimg_discard(top, 16384, 4096);
    CHECK(r == 0, "discard: %s", top->err.msg);
    memset(shadow + 16384, 0, 4096);
    verify(top, shadow, size, "top");
    check_clean(top, "top");
    qimg_close(top);
    /* the base was not touched */
    struct err e = { "" };
    r = qimg_open(&base, path("base.qcow2"), NULL, true, &e);
    CHECK(r == 0, "base: %s", e.msg);
    if (r == 0) {
        uint8_t *b = malloc(bsize), *want = malloc(bsize);
        fill(want, bsize, 11);
        CHECK(qimg_pread(base, b, bsize, 0) == 0 && !memcmp(b, want, bsize), "base changed");
        free(b);
        free(want);
        qimg_close(base);
    }
    free(shadow);
}

static void test_errors(void)
{
    struct err e = { "" };
    struct qimg *q = mk("d.qcow2", 1 << 20, 16, 4, NULL);
    if (!q)
        return;
    /* dirty, as lazy refcounts leave an image after a crash: two data
     * clusters whose refcounts were never raised */
    uint8_t *shadow = calloc(1, 1 << 20);
    wr(q, shadow, 0, 2 << 16, 21);
    struct qimg_extent x;
    CHECK(qimg_map(q, 0, 2 << 16, &x) == 0 && x.state == QIMG_DATA, "map");
    CHECK(qcow2_rc_update(q, x.host, 2 << 16, -1) == 0, "lower refcounts: %s", q->err.msg);
    CHECK(qcow2_write_header_incompat(q, QCOW2_INCOMPAT_DIRTY) == 0, "set dirty");
    qimg_close(q);
    /* a read-only open just reads it */
    struct qimg *q2 = NULL;
    int r = qimg_open(&q2, path("d.qcow2"), NULL, true, &e);
    CHECK(r == 0, "read-only open of a dirty image: %s", e.msg);
    if (r == 0) {
        CHECK(q2->incompat & QCOW2_INCOMPAT_DIRTY, "read-only open cleared the dirty bit");
        verify(q2, shadow, 1 << 20, "dirty, read-only");
        qimg_close(q2);
    }
    /* a read-write open repairs it and clears the bit */
    r = qimg_open(&q2, path("d.qcow2"), NULL, false, &e);
    CHECK(r == 0, "read-write open of a dirty image: %s", e.msg);
    if (r == 0) {
        CHECK(!(q2->incompat & QCOW2_INCOMPAT_DIRTY), "dirty bit still set");
        verify(q2, shadow, 1 << 20, "dirty, repaired");
        check_clean(q2, "dirty, repaired");
        wr(q2, shadow, 3 << 16, 4096, 22);   /* must not reuse the two clusters */
        verify(q2, shadow, 1 << 20, "dirty, repaired, written");
        check_clean(q2, "dirty, repaired, written");
        qimg_close(q2);
    }
    /* a referenced cluster without a refcount block (512-byte clusters: a
     * block covers 128 KiB): the refcounts are rebuilt elsewhere */
    q = mk("rb.qcow2", 1 << 20, 9, 4, NULL);
    if (q) {
        memset(shadow, 0, 1 << 20);
        wr(q, shadow, 0, 1 << 20, 23);
        uint64_t zero = 0, ti = 3;
        CHECK(q->rt[ti] && qcow2_pwrite_full(q, &zero, 8, q->rt_off + ti * 8) == 0,
              "drop refcount block %llu", (unsigned long long)ti);
        CHECK(qcow2_write_header_incompat(q, QCOW2_INCOMPAT_DIRTY) == 0, "set dirty");
        qimg_close(q);
        r = qimg_open(&q2, path("rb.qcow2"), NULL, false, &e);
        CHECK(r == 0, "rebuild: %s", e.msg);
        if (r == 0) {
            CHECK(!(q2->incompat & QCOW2_INCOMPAT_DIRTY), "rebuild: dirty bit still set");
            verify(q2, shadow, 1 << 20, "rebuilt");
            check_clean(q2, "rebuilt");
            wr(q2, shadow, 4096, 300000, 24);
            verify(q2, shadow, 1 << 20, "rebuilt, written");
            check_clean(q2, "rebuilt, written");
            qimg_close(q2);
        }
    }
    free(shadow);
    /* unknown incompatible bit */
    q = mk("u.qcow2", 1 << 20, 16, 4, NULL);
    if (q) {
        qcow2_write_header_incompat(q, 1ull << 40);
        qimg_close(q);
        r = qimg_open(&q2, path("u.qcow2"), NULL, true, &e);
        CHECK(r < 0 && strstr(e.msg, "bit 40"), "unknown feature: %s", e.msg);
    }
    /* a missing backing file */
    struct qimg_create_opts o = { .fmt = "qcow2", .size = 1 << 20, .backing = "nope.raw" };
    r = qimg_create(path("m.qcow2"), &o, &e);
    CHECK(r < 0 && strstr(e.msg, "nope.raw"), "missing backing: %s", e.msg);
    /* a short file */
    FILE *f = fopen(path("short.qcow2"), "w");
    fwrite("QFI\xfb\0\0\0\3", 1, 8, f);
    fclose(f);
    r = qimg_open(&q2, path("short.qcow2"), NULL, true, &e);
    CHECK(r < 0 && strstr(e.msg, "short"), "short: %s", e.msg);
}

static int done_count, last_ret;
static void on_done(struct blk_req *r, int ret)
{
    (void)r;
    done_count++;
    last_ret = ret;
}

static void run_blk(struct evloop *loop)
{
    struct err e = { "" };
    struct qimg_create_opts o = { .fmt = "qcow2", .size = 8 << 20 };
    CHECK(qimg_create(path("blk.qcow2"), &o, &e) == 0, "create: %s", e.msg);
    struct disk_config dc = { .path = path("blk.qcow2"), .format = NULL };
    struct blk *b = blk_open(&dc, loop, &e);
    CHECK(b != NULL, "blk_open (probed): %s", e.msg);
    if (!b)
        return;
    EQ(b->size, 8 << 20);
    static uint8_t wbuf[3 * 65536], rbuf[3 * 65536];
    fill(wbuf, sizeof(wbuf), 99);
    struct iovec wv[2] = { { wbuf, 1000 }, { wbuf + 1000, sizeof(wbuf) - 1000 } };
    struct iovec rv = { rbuf, sizeof(rbuf) };
    struct blk_req reqs[4] = {
        { .op = BLK_WRITE, .offset = 65536 - 512, .iov = wv, .niov = 2, .done = on_done },
        { .op = BLK_FLUSH, .done = on_done },
        { .op = BLK_READ, .offset = 65536 - 512, .iov = &rv, .niov = 1, .done = on_done },
        { .op = BLK_WRITE_ZEROES, .offset = 0, .len = 65536, .unmap = true, .done = on_done },
    };
    done_count = 0;
    for (int i = 0; i < 4; i++)
        blk_submit(b, &reqs[i]);
    for (int spins = 0; loop && done_count < 4 && spins < 1000; spins++) {
        struct pollfd p = { .fd = evloop_fd(loop), .events = POLLIN };
        poll(&p, 1, 10);
        evloop_dispatch(loop);
    }
    EQ(done_count, 4);
    EQ(last_ret, 0);
    CHECK(!memcmp(wbuf, rbuf, sizeof(rbuf)), "blk read back");
    blk_close(b);
    struct qimg *q;
    if (qimg_open(&q, path("blk.qcow2"), NULL, true, &e) == 0) {
        check_clean(q, "blk");
        qimg_close(q);
    }
}

static void test_blk(void)
{
    run_blk(NULL);
    struct err e = { "" };
    struct evloop *loop = evloop_new(&e);
    CHECK(loop != NULL, "evloop: %s", e.msg);
    if (loop) {
        run_blk(loop);
        evloop_free(loop);
    }
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_patterns(16, 4);
    test_patterns(9, 4);
    test_patterns(12, 0);   /* 1-bit refcounts */
    test_patterns(13, 6);   /* 64-bit refcounts */
    test_growth();
    test_backing();
    test_errors();
    test_blk();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("cannot remove %s\n", dir);
    return unit_done("test_qcow2");
}

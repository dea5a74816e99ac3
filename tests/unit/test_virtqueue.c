/* Unit tests for split virtqueues (src/virtio/virtqueue.c): valid chains,
 * indirect tables, EVENT_IDX and NO_INTERRUPT suppression, index
 * wrap-around, and every kind of malformed ring we reject.  The device
 * level (virtio core + PCI transport + virtio-rng, driven like a guest
 * driver would) is in test_virtio.c. */
#include <errno.h>
#include <string.h>

#include "virtio/virtqueue.h"

#include "unit.h"

#define RAM 0x80000000ull
#define RAM_SIZE (1ull << 20)
#define DESC (RAM + 0x0000)
#define AVAIL (RAM + 0x1000)
#define USED (RAM + 0x2000)
#define TABLE (RAM + 0x3000)   /* indirect tables */
#define BUF (RAM + 0x10000)

static struct gmem mem;

static void *gp(uint64_t gpa, uint64_t len)
{
    void *p = gmem_ptr(&mem, gpa, len);
    if (!p)     /* a test bug: count only the failure */
        CHECK(p != NULL, "gpa 0x%llx not in RAM", (unsigned long long)gpa);
    return p;
}

static void put_desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
    struct virtq_desc d = { addr, len, flags, next };
    memcpy(gp(table + 16ull * i, 16), &d, 16);
}

static uint16_t rd16(uint64_t gpa) { uint16_t v; memcpy(&v, gp(gpa, 2), 2); return v; }
static uint32_t rd32(uint64_t gpa) { uint32_t v; memcpy(&v, gp(gpa, 4), 4); return v; }
static void wr16(uint64_t gpa, uint16_t v) { memcpy(gp(gpa, 2), &v, 2); }

/* the driver side of the avail ring */
static uint16_t avail_idx;

static void avail_add(unsigned size, uint16_t head)
{
    wr16(AVAIL + 4 + 2ull * (avail_idx % size), head);
    avail_idx++;
    wr16(AVAIL + 2, avail_idx);
}

static void queue_setup(struct virtq *q, uint16_t size, bool event_idx, bool indirect)
{
    memset(gp(RAM, RAM_SIZE), 0, RAM_SIZE);
    avail_idx = 0;
    virtq_init(q, &mem, 256);
    q->size = size;
    q->desc_gpa = DESC;
    q->avail_gpa = AVAIL;
    q->used_gpa = USED;
    EQ(virtq_enable(q, event_idx, indirect, NULL), 0);
}

static struct virtq_chain chain;

static void test_valid_chains(void)
{
    struct virtq q;
    queue_setup(&q, 8, false, true);
    struct err e;
    EQ(virtq_pop(&q, &chain, &e), 0);                   /* empty */
    /* header (readable), data (readable), status (writable), in order
     * 5 -> 2 -> 7 */
    put_desc(DESC, 5, BUF, 16, VIRTQ_DESC_F_NEXT, 2);
    put_desc(DESC, 2, BUF + 0x100, 512, VIRTQ_DESC_F_NEXT, 7);
    put_desc(DESC, 7, BUF + 0x1000, 1, VIRTQ_DESC_F_WRITE, 0);
    avail_add(8, 5);
    EQ(virtq_pop(&q, &chain, &e), 1);
    EQ(chain.head, 5);
    EQ(chain.nout, 2);
    EQ(chain.nin, 1);
    EQ(chain.out_bytes, 528);
    EQ(chain.in_bytes, 1);
    CHECK(chain.seg[0].p == gp(BUF, 16) && chain.seg[1].p == gp(BUF + 0x100, 1) &&
          chain.seg[2].p == gp(BUF + 0x1000, 1), "segment pointers");
    EQ(chain.seg[1].len, 512);
    EQ(virtq_pop(&q, &chain, &e), 0);                   /* taken */
    /* copy helpers */
    memcpy(gp(BUF, 4), "abcd", 4);
    memcpy(gp(BUF + 0x100, 4), "efgh", 4);
    char tmp[8] = { 0 };
    EQ(virtq_chain_from_guest(&chain, 14, tmp, 6), 6);
    CHECK(!memcmp(tmp, "\0\0efgh", 6), "from_guest across segments");
    EQ(virtq_chain_to_guest(&chain, 0, "XY", 2), 1);   /* only 1 writable byte */
    EQ(*(uint8_t *)gp(BUF + 0x1000, 1), 'X');
    EQ(virtq_chain_from_guest(&chain, 600, tmp, 8), 0);
    /* push: the used ring gets {head, len}, then the index moves */
    virtq_push(&q, chain.head, 1);
    EQ(rd32(USED + 4), 5);
    EQ(rd32(USED + 8), 1);
    EQ(rd16(USED + 2), 1);
    CHECK(virtq_should_notify(&q), "no notification without suppression");

    /* a chain of one writable buffer, then a full queue of 8 */
    for (unsigned i = 0; i < 8; i++) {
        put_desc(DESC, i, BUF + 0x100 * i, 64, VIRTQ_DESC_F_WRITE, 0);
        avail_add(8, (uint16_t)i);
    }
    for (unsigned i = 0; i < 8; i++) {
        EQ(virtq_pop(&q, &chain, &e), 1);
        EQ(chain.head, i);
        EQ(chain.nout, 0);
        EQ(chain.in_bytes, 64);
        virtq_push(&q, chain.head, 64);
    }
    EQ(virtq_pop(&q, &chain, &e), 0);
    EQ(rd16(USED + 2), 9);
    EQ(rd32(USED + 4 + 8 * (8 % 8)), 7);   /* the 9th used entry wrapped to slot 0 */

    /* a chain as long as the queue */
    queue_setup(&q, 8, false, false);
    for (unsigned i = 0; i < 8; i++)
        put_desc(DESC, i, BUF + i, 1, i < 7 ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
    avail_add(8, 0);
    EQ(virtq_pop(&q, &chain, &e), 1);
    EQ(chain.nout, 8);
}

static void test_indirect(void)
{
    struct virtq q;
    struct err e;
    queue_setup(&q, 4, false, true);
    /* indirect table: 2 readable + 1 writable, linked 0 -> 2 -> 1 */
    put_desc(TABLE, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 2);
    put_desc(TABLE, 2, BUF + 8, 8, VIRTQ_DESC_F_NEXT, 1);
    put_desc(TABLE, 1, BUF + 16, 100, VIRTQ_DESC_F_WRITE, 0);
    put_desc(DESC, 3, TABLE, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    avail_add(4, 3);
    EQ(virtq_pop(&q, &chain, &e), 1);
    EQ(chain.head, 3);
    EQ(chain.nout, 2);
    EQ(chain.nin, 1);
    EQ(chain.in_bytes, 100);
    CHECK(chain.seg[2].p == gp(BUF + 16, 1), "indirect segment pointer");
    virtq_push(&q, 3, 100);
    EQ(rd32(USED + 4), 3);

    /* direct descriptors, then an indirect table ends the chain */
    put_desc(DESC, 0, BUF, 4, VIRTQ_DESC_F_NEXT, 1);
    put_desc(DESC, 1, TABLE, 16, VIRTQ_DESC_F_INDIRECT, 0);
    put_desc(TABLE, 0, BUF + 64, 4, VIRTQ_DESC_F_WRITE, 0);
    avail_add(4, 0);
    EQ(virtq_pop(&q, &chain, &e), 1);
    EQ(chain.nout, 1);
    EQ(chain.nin, 1);

    /* the largest table we take: VIRTQ_MAX_INDIRECT entries */
    for (unsigned i = 0; i < VIRTQ_MAX_INDIRECT; i++)
        put_desc(TABLE, i, BUF + i, 1, VIRTQ_DESC_F_WRITE |
                 (i + 1 < VIRTQ_MAX_INDIRECT ? VIRTQ_DESC_F_NEXT : 0), (uint16_t)(i + 1));
    put_desc(DESC, 2, TABLE, 16 * VIRTQ_MAX_INDIRECT, VIRTQ_DESC_F_INDIRECT, 0);
    avail_add(4, 2);
    EQ(virtq_pop(&q, &chain, &e), 1);
    EQ(chain.nin, VIRTQ_MAX_INDIRECT);
    CHECK(!q.broken, "queue broken by a valid chain");
}

static void test_event_idx(void)
{
    struct virtq q;
    struct err e;
    queue_setup(&q, 8, true, false);
    uint64_t used_event = AVAIL + 4 + 2 * 8, avail_event = USED + 4 + 8 * 8;
    for (unsigned i = 0; i < 8; i++)
        put_desc(DESC, i, BUF + 0x100 * i, 64, VIRTQ_DESC_F_WRITE, 0);
    /* popping from an empty queue asks for a kick at the next entry */
    EQ(virtq_pop(&q, &chain, &e), 0);
    EQ(rd16(avail_event), 0);
    avail_add(8, 0);
    avail_add(8, 1);
    EQ(virtq_pop(&q, &chain, &e), 1);
    EQ(rd16(avail_event), 1);
    EQ(virtq_pop(&q, &chain, &e), 1);
    EQ(rd16(avail_event), 2);
    EQ(virtq_pop(&q, &chain, &e), 0);
    EQ(rd16(avail_event), 2);

    /* used_event = 0: interrupt when used idx passes 0 -> 1 */
    wr16(used_event, 0);
    virtq_push(&q, 0, 64);
    CHECK(virtq_should_notify(&q), "first completion not notified");
    virtq_push(&q, 1, 64);
    CHECK(!virtq_should_notify(&q), "used_event 0 passed long ago, yet notified");
    CHECK(!virtq_should_notify(&q), "nothing new pushed, yet notified");
    /* the driver moves used_event to 3: silent at 3, notified when 3 -> 4 */
    wr16(used_event, 3);
    avail_add(8, 2);
    avail_add(8, 3);
    EQ(virtq_pop(&q, &chain, &e), 1);
    virtq_push(&q, chain.head, 1);                  /* used idx 3 */
    CHECK(!virtq_should_notify(&q), "notified before used_event was passed");
    EQ(virtq_pop(&q, &chain, &e), 1);
    virtq_push(&q, chain.head, 1);                  /* used idx 4 */
    CHECK(virtq_should_notify(&q), "not notified when used_event was passed");
    /* a batch of two that crosses used_event notifies once */
    wr16(used_event, 4);
    avail_add(8, 4);
    avail_add(8, 5);
    EQ(virtq_pop(&q, &chain, &e), 1);
    virtq_push(&q, chain.head, 1);
    EQ(virtq_pop(&q, &chain, &e), 1);
    virtq_push(&q, chain.head, 1);                  /* used idx 6 */
    CHECK(virtq_should_notify(&q), "batch crossing used_event not notified");
    CHECK(virtq_need_event(0xffff, 0, 0xfffe), "need_event across the wrap");
    CHECK(!virtq_need_event(5, 3, 2), "need_event before the event");

    /* without EVENT_IDX: the NO_INTERRUPT flag */
    queue_setup(&q, 8, false, false);
    put_desc(DESC, 0, BUF, 64, VIRTQ_DESC_F_WRITE, 0);
    wr16(AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
    avail_add(8, 0);
    EQ(virtq_pop(&q, &chain, &e), 1);
    virtq_push(&q, 0, 1);
    CHECK(!virtq_should_notify(&q), "NO_INTERRUPT ignored");
    wr16(AVAIL, 0);
    CHECK(!virtq_should_notify(&q), "notified with nothing new pushed");
    put_desc(DESC, 1, BUF, 64, VIRTQ_DESC_F_WRITE, 0);
    avail_add(8, 1);
    EQ(virtq_pop(&q, &chain, &e), 1);
    virtq_push(&q, 1, 1);
    CHECK(virtq_should_notify(&q), "interrupt suppressed without NO_INTERRUPT");
}

static void test_index_wrap(void)
{
    struct virtq q;
    struct err e;
    queue_setup(&q, 4, true, false);
    for (unsigned i = 0; i < 4; i++)
        put_desc(DESC, i, BUF + 0x100 * i, 8, VIRTQ_DESC_F_WRITE, 0);
    unsigned notified = 0, bad = 0;
    for (unsigned n = 0; n < 70000; n++) {
        avail_add(4, (uint16_t)(n % 4));
        if (virtq_pop(&q, &chain, &e) != 1) {
            CHECK(0, "pop %u failed: %s", n, e.msg);
            break;
        }
        bad += chain.head != n % 4;
        virtq_push(&q, chain.head, 8);
        wr16(AVAIL + 4 + 2 * 4, (uint16_t)n);       /* used_event: want each one */
        notified += virtq_should_notify(&q);
    }
    EQ(notified, 70000);
    EQ(bad, 0);
    EQ(rd16(USED + 2), 70000 % 65536);
    CHECK(!q.broken, "broken by wrap-around");
}

/* A malformed chain: pop fails with `err`, the queue is broken (a valid
 * chain after it is not taken), and a reset + enable brings it back. */
static void expect_malformed(struct virtq *q, int err, const char *what)
{
    struct err e = { "" };
    int ret = virtq_pop(q, &chain, &e);
    CHECK(ret == err, "%s: pop returned %d, want %d (%s)", what, ret, err, e.msg);
    CHECK(q->broken, "%s: queue not broken", what);
    CHECK(e.msg[0] != 0, "%s: no message", what);
    EQ(virtq_pop(q, &chain, &e), 0);               /* nothing more from it */
}

static void test_malformed(void)
{
    struct virtq q;
#define CASE(size, flags_event, setup, err, what)             \
    do {                                                      \
        queue_setup(&q, size, flags_event, true);             \
        setup;                                                \
        expect_malformed(&q, err, what);                      \
    } while (0)

    CASE(8, false, (put_desc(DESC, 0, 0x1000, 64, 0, 0), avail_add(8, 0)), -EFAULT,
         "buffer below RAM");
    CASE(8, false, (put_desc(DESC, 0, RAM + RAM_SIZE - 8, 64, 0, 0), avail_add(8, 0)),
         -EFAULT, "buffer straddling the end of RAM");
    CASE(8, false, (put_desc(DESC, 0, ~0ull - 8, 64, 0, 0), avail_add(8, 0)), -EFAULT,
         "buffer address wrapping around");
    CASE(8, false, (put_desc(DESC, 0, BUF, 0xffffffffu, 0, 0), avail_add(8, 0)), -E2BIG,
         "huge length");
    CASE(8, false, (put_desc(DESC, 0, BUF, 0x10000000u, 0, 0), avail_add(8, 0)), -EFAULT,
         "256 MiB buffer in 1 MiB of RAM");
    CASE(8, false, (put_desc(DESC, 0, BUF, 0, VIRTQ_DESC_F_WRITE, 0), avail_add(8, 0)),
         -EINVAL, "zero length");
    CASE(8, false, (put_desc(DESC, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 1),
                    put_desc(DESC, 1, BUF, 8, VIRTQ_DESC_F_NEXT, 0), avail_add(8, 0)),
         -ELOOP, "two-descriptor loop");
    CASE(8, false, (put_desc(DESC, 3, BUF, 8, VIRTQ_DESC_F_NEXT, 3), avail_add(8, 3)), -ELOOP,
         "descriptor pointing at itself");
    CASE(8, false, (put_desc(DESC, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 8), avail_add(8, 0)), -EINVAL,
         "next index out of range");
    CASE(8, false, (avail_add(8, 8)), -EINVAL, "head index out of range");
    CASE(8, false, (avail_add(8, 0xffff)), -EINVAL, "head index 0xffff");
    CASE(8, false, (put_desc(DESC, 0, BUF, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1),
                    put_desc(DESC, 1, BUF, 8, 0, 0), avail_add(8, 0)),
         -EINVAL, "readable after writable");
    CASE(8, false, (put_desc(DESC, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0), avail_add(8, 0),
                    wr16(AVAIL + 2, 9)), -EINVAL, "avail idx jumping by 9 > size 8");
    CASE(8, false, (put_desc(DESC, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0), wr16(AVAIL + 2, 0x8000)),
         -EINVAL, "avail idx jumping by 0x8000");
    CASE(8, false, (put_desc(DESC, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0), wr16(AVAIL + 2, 0xffff)),
         -EINVAL, "avail idx moving backwards");

    /* indirect tables */
    CASE(8, false, (put_desc(DESC, 0, TABLE, 32, VIRTQ_DESC_F_INDIRECT, 0),
                    put_desc(TABLE, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 1),
                    put_desc(TABLE, 1, TABLE + 0x100, 16, VIRTQ_DESC_F_INDIRECT, 0),
                    put_desc(TABLE + 0x100, 0, BUF, 8, 0, 0), avail_add(8, 0)),
         -EINVAL, "nested indirect table");
    CASE(8, false, (put_desc(DESC, 0, TABLE, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1),
                    put_desc(TABLE, 0, BUF, 8, 0, 0), avail_add(8, 0)),
         -EINVAL, "indirect with NEXT");
    CASE(8, false, (put_desc(DESC, 0, TABLE, 0, VIRTQ_DESC_F_INDIRECT, 0), avail_add(8, 0)),
         -EINVAL, "empty indirect table");
    CASE(8, false, (put_desc(DESC, 0, TABLE, 24, VIRTQ_DESC_F_INDIRECT, 0), avail_add(8, 0)),
         -EINVAL, "indirect table not a multiple of 16");
    CASE(8, false, (put_desc(DESC, 0, TABLE, 16 * (VIRTQ_MAX_INDIRECT + 1),
                             VIRTQ_DESC_F_INDIRECT, 0), avail_add(8, 0)),
         -EINVAL, "indirect table too large");
    CASE(8, false, (put_desc(DESC, 0, RAM + RAM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, 0),
                    avail_add(8, 0)), -EFAULT, "indirect table outside RAM");
    CASE(8, false, (put_desc(DESC, 0, TABLE, 64, VIRTQ_DESC_F_INDIRECT, 0),
                    put_desc(TABLE, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 1),
                    put_desc(TABLE, 1, BUF, 8, VIRTQ_DESC_F_NEXT, 2),
                    put_desc(TABLE, 2, BUF, 8, VIRTQ_DESC_F_NEXT, 3),
                    put_desc(TABLE, 3, BUF, 8, VIRTQ_DESC_F_NEXT, 0), avail_add(8, 0)),
         -ELOOP, "loop inside an indirect table");
    CASE(8, false, (put_desc(DESC, 0, TABLE, 32, VIRTQ_DESC_F_INDIRECT, 0),
                    put_desc(TABLE, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 2), avail_add(8, 0)),
         -EINVAL, "indirect next out of the table");
    /* a direct buffer + a full indirect table: one buffer too many */
    CASE(8, false, (put_desc(DESC, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 1),
                    put_desc(DESC, 1, TABLE, 16 * VIRTQ_MAX_INDIRECT, VIRTQ_DESC_F_INDIRECT, 0),
                    ({ for (unsigned i = 0; i < VIRTQ_MAX_INDIRECT; i++)
                           put_desc(TABLE, i, BUF, 1, VIRTQ_DESC_F_WRITE |
                                    (i + 1 < VIRTQ_MAX_INDIRECT ? VIRTQ_DESC_F_NEXT : 0),
                                    (uint16_t)(i + 1)); }),
                    avail_add(8, 0)),
         -E2BIG, "more than VIRTQ_MAX_SEGS buffers");

    /* indirect descriptors when the feature was not negotiated */
    queue_setup(&q, 8, false, false);
    put_desc(DESC, 0, TABLE, 16, VIRTQ_DESC_F_INDIRECT, 0);
    put_desc(TABLE, 0, BUF, 8, 0, 0);
    avail_add(8, 0);
    expect_malformed(&q, -EINVAL, "indirect without the feature");

    /* after a reset the queue works again */
    virtq_reset(&q);
    CHECK(!q.broken && !q.enabled, "reset did not clear the queue");
    memset(gp(RAM, RAM_SIZE), 0, RAM_SIZE);
    avail_idx = 0;
    q.size = 8;
    q.desc_gpa = DESC;
    q.avail_gpa = AVAIL;
    q.used_gpa = USED;
    EQ(virtq_enable(&q, false, false, NULL), 0);
    put_desc(DESC, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
    avail_add(8, 0);
    struct err e;
    EQ(virtq_pop(&q, &chain, &e), 1);
#undef CASE
}

static void test_enable_checks(void)
{
    struct virtq q;
    struct err e;
    virtq_init(&q, &mem, 256);
    EQ(q.size, 256);
    q.desc_gpa = DESC;
    q.avail_gpa = AVAIL;
    q.used_gpa = USED;
    q.size = 0;
    EQ(virtq_enable(&q, false, false, &e), -EINVAL);
    q.size = 257;
    EQ(virtq_enable(&q, false, false, &e), -EINVAL);
    q.size = 8;
    q.desc_gpa = DESC + 8;                          /* misaligned table */
    EQ(virtq_enable(&q, false, false, &e), -EFAULT);
    CHECK(strstr(e.msg, "descriptor table") != NULL, "message: %s", e.msg);
    q.desc_gpa = DESC;
    q.avail_gpa = AVAIL + 1;
    EQ(virtq_enable(&q, false, false, &e), -EFAULT);
    q.avail_gpa = AVAIL;
    q.used_gpa = USED + 2;
    EQ(virtq_enable(&q, false, false, &e), -EFAULT);
    q.used_gpa = RAM + RAM_SIZE - 16;               /* runs off the end of RAM */
    EQ(virtq_enable(&q, false, false, &e), -EFAULT);
    CHECK(strstr(e.msg, "used ring") != NULL, "message: %s", e.msg);
    q.used_gpa = 0x1000;
    EQ(virtq_enable(&q, false, false, &e), -EFAULT);
    CHECK(!q.enabled, "enabled with bad rings");
    struct virtq_chain *c = &chain;
    EQ(virtq_pop(&q, c, &e), 0);                   /* disabled: nothing */
    virtq_push(&q, 0, 0);                           /* ignored */
    CHECK(!virtq_should_notify(&q), "disabled queue notifies");
    q.used_gpa = USED;
    EQ(virtq_enable(&q, false, false, &e), 0);
}

/* A chain whose total exceeds VIRTQ_MAX_CHAIN_BYTES, in a big (lazily
 * mapped) RAM. */
static void test_chain_bytes_limit(void)
{
    static struct gmem big;
    EQ(gmem_add_ram(&big, RAM, 3ull << 30, NULL), 0);
    struct virtq q;
    virtq_init(&q, &big, 8);
    q.desc_gpa = DESC;
    q.avail_gpa = AVAIL;
    q.used_gpa = USED;
    EQ(virtq_enable(&q, false, false, NULL), 0);
    struct virtq_desc d[2] = { { RAM + (1ull << 20), 3u << 28, VIRTQ_DESC_F_NEXT, 1 },
                               { RAM + (1ull << 30), 3u << 28, 0, 0 } };
    memcpy(gmem_ptr(&big, DESC, 32), d, 32);
    uint16_t avail[3] = { 0, 1, 0 };
    memcpy(gmem_ptr(&big, AVAIL, 6), avail, 6);
    struct err e;
    EQ(virtq_pop(&q, &chain, &e), -E2BIG);
    CHECK(q.broken, "not broken");
    gmem_free(&big);
}

int main(void)
{
    if (gmem_add_ram(&mem, RAM, RAM_SIZE, NULL) < 0)
        return 1;
    test_valid_chains();
    test_indirect();
    test_event_idx();
    test_index_wrap();
    test_malformed();
    test_enable_checks();
    test_chain_bytes_limit();
    gmem_free(&mem);
    return unit_done("test_virtqueue");
}

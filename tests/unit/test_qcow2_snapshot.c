/* qcow2 internal snapshots and image tools on the synchronous core: create,
 * apply and delete against shadow copies of the disk (copy-on-write of
 * shared data clusters and shared L2 tables, zero clusters and discard in
 * between), the COPIED flags, check after every step, refcount widths,
 * errors (read-only, duplicate names, unknown snapshots, refcount overflow,
 * damaged snapshot tables), resize (L1 growth, refused shrink), the backing
 * file name rewrite and emptying an overlay. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/qcow2.h"
#include "unit.h"

static char dir[] = "/tmp/petrel-qcow2snap-XXXXXX";

#include "qcow2_test_util.h"

/* COPIED must be set exactly where the refcount is 1 (what qemu-img check
 * verifies on the active tables). */
static void check_copied(struct qimg *q, const char *what)
{
    uint64_t cs = q->cluster_size, bad = 0;
    uint64_t *l2 = malloc(cs);
    for (uint32_t i = 0; i < q->l1_size; i++) {
        uint64_t t = q->l1[i] & QCOW2_OFFSET_MASK, rc = 0;
        if (!t)
            continue;
        qcow2_rc_get(q, t / cs, &rc);
        if ((rc == 1) != !!(q->l1[i] & QCOW2_COPIED))
            bad++;
        if (qcow2_pread_full(q, l2, cs, t) < 0) {
            bad++;
            continue;
        }
        for (uint64_t j = 0; j < q->l2_entries; j++) {
            uint64_t e = be64toh(l2[j]), off = e & QCOW2_OFFSET_MASK;
            if ((e & QCOW2_COMPRESSED) || !off)
                continue;
            qcow2_rc_get(q, off / cs, &rc);
            if ((rc == 1) != !!(e & QCOW2_COPIED))
                bad++;
        }
    }
    free(l2);
    CHECK(bad == 0, "%s: %llu entries with COPIED not matching refcount 1", what,
          (unsigned long long)bad);
}

static void step_ok(struct qimg *q, int r, struct err *e, const char *what)
{
    CHECK(r == 0, "%s: %s", what, e->msg);
    check_clean(q, what);
    check_copied(q, what);
}

static void test_cycle(uint32_t cb, uint32_t order)
{
    uint64_t cs = 1ull << cb;
    const uint64_t size = 256 * cs > (2 << 20) ? 256 * cs : 2 << 20;
    struct qimg *q = mk("s.qcow2", size, cb, order, NULL);
    if (!q)
        return;
    uint8_t *cur = calloc(1, size), *a = malloc(size), *b = malloc(size);
    struct err e = { "" };
    wr(q, cur, 0, 300000, 1);
    wr(q, cur, size - 70000, 70000, 2);
    int r = qimg_snapshot_create(q, "A", &e);
    step_ok(q, r, &e, "create A");
    memcpy(a, cur, size);
    /* copy-on-write: a partial cluster, a run across L2 tables, in place twice */
    wr(q, cur, 100, 10, 3);
    wr(q, cur, cs * 3 + 5, cs * 70, 4);
    wr(q, cur, cs * 3 + 5, cs * 70, 5);
    r = qimg_write_zeroes(q, cs * 100, cs * 4, false);
    CHECK(r == 0, "zeroes: %s", q->err.msg);
    memset(cur + cs * 100, 0, cs * 4);
    r = qimg_discard(q, size - cs * 8, cs * 8);
    CHECK(r == 0, "discard: %s", q->err.msg);
    memset(cur + size - cs * 8, 0, cs * 8);
    verify(q, cur, size, "after writes");
    check_clean(q, "after writes");
    check_copied(q, "after writes");
    r = qimg_snapshot_create(q, "B", &e);
    step_ok(q, r, &e, "create B");
    memcpy(b, cur, size);
    wr(q, cur, cs * 50, cs * 2, 6);
    r = qimg_snapshot_create(q, "A", &e);
    CHECK(r == -EEXIST, "duplicate name: %d", r);
    r = qimg_snapshot_apply(q, "A", &e);
    step_ok(q, r, &e, "apply A");
    verify(q, a, size, "applied A");
    memcpy(cur, a, size);
    wr(q, cur, 0, cs * 5, 7);
    r = qimg_snapshot_apply(q, "2", &e);   /* B by ID */
    step_ok(q, r, &e, "apply B");
    verify(q, b, size, "applied B");
    memcpy(cur, b, size);
    r = qimg_snapshot_delete(q, "A", &e);
    step_ok(q, r, &e, "delete A");
    verify(q, cur, size, "after delete A");
    wr(q, cur, cs * 7, cs * 3, 8);
    r = qimg_snapshot_delete(q, "B", &e);
    step_ok(q, r, &e, "delete B");
    verify(q, cur, size, "after delete B");
    CHECK(q->nb_snapshots == 0, "%u snapshots left", q->nb_snapshots);
    for (uint32_t i = 0; i < q->l1_size; i++)
        CHECK(!(q->l1[i] & QCOW2_OFFSET_MASK) || (q->l1[i] & QCOW2_COPIED),
              "L1 entry %u not COPIED after the last snapshot went", i);
    r = qimg_snapshot_apply(q, "A", &e);
    CHECK(r == -ENOENT, "apply of a deleted snapshot: %d", r);
    /* a third snapshot gets ID 1 again: the highest one left + 1 */
    r = qimg_snapshot_create(q, "C", &e);
    step_ok(q, r, &e, "create C");
    struct qimg_snapshot *s;
    r = qimg_snapshots_read(q, &s, &e);
    CHECK(r == 0 && q->nb_snapshots == 1, "read: %s", e.msg);
    if (r == 0) {
        CHECK(!strcmp(s[0].id, "1") && !strcmp(s[0].name, "C") && s[0].disk_size == size,
              "snapshot C: id %s name %s size %llu", s[0].id, s[0].name,
              (unsigned long long)s[0].disk_size);
        qimg_snapshots_free(s, q->nb_snapshots);
    }
    qimg_close(q);
    /* reopen: everything was on disk */
    r = qimg_open(&q, path("s.qcow2"), NULL, true, &e);
    CHECK(r == 0, "reopen: %s", e.msg);
    if (r == 0) {
        verify(q, cur, size, "reopened");
        r = qimg_snapshot_create(q, "D", &e);
        CHECK(r == -EROFS, "snapshot on a read-only image: %d", r);
        qimg_close(q);
    }
    free(cur);
    free(a);
    free(b);
}

static void test_overflow(void)
{
    /* 2-bit refcounts count three references: the third snapshot fails
     * cleanly (leaks at worst, the data and the other snapshots intact) */
    uint8_t *cur = calloc(1, 1 << 20);
    struct qimg *q = mk("o.qcow2", 1 << 20, 12, 1, NULL);
    if (!q)
        return;
    wr(q, cur, 0, 8192, 1);
    struct err e = { "" };
    int r = qimg_snapshot_create(q, "x", &e);
    CHECK(r == 0, "first: %s", e.msg);
    r = qimg_snapshot_create(q, "y", &e);
    CHECK(r == 0, "second: %s", e.msg);
    r = qimg_snapshot_create(q, "z", &e);
    CHECK(r == -ERANGE && strstr(e.msg, "overflow"), "2-bit refcounts: %d %s", r, e.msg);
    CHECK(q->nb_snapshots == 2, "no third snapshot was recorded");
    verify(q, cur, 1 << 20, "after a failed snapshot");
    struct qimg_check res;
    r = qimg_check(q, 0, &res, NULL, &e);
    CHECK(r == 0 && res.corruptions == 0, "no corruption: %llu",
          (unsigned long long)res.corruptions);
    qimg_close(q);
    free(cur);
}

static void test_damaged(void)
{
    struct qimg *q = mk("d.qcow2", 1 << 20, 16, 4, NULL);
    if (!q)
        return;
    struct err e = { "" };
    int r = qimg_snapshot_create(q, "x", &e);
    CHECK(r == 0, "create: %s", e.msg);
    uint64_t toff = q->snapshots_off;
    qimg_close(q);
    int fd = open(path("d.qcow2"), O_RDWR);
    static const struct { unsigned at, len; uint64_t v; int want; const char *what; } cases[] = {
        { 0, 8, 0x12345, -EINVAL, "unaligned L1 offset" },
        { 0, 8, 1ull << 50, -EINVAL, "L1 past the end" },
        { 8, 4, 0x10000000, -EINVAL, "huge L1" },
        { 8, 4, 0, -EINVAL, "L1 too small for the disk size" },
        { 36, 4, 100000, -EINVAL, "huge extra data" },
        { 12, 2, 0, -EINVAL, "empty ID" },
    };
    uint8_t orig[40];
    CHECK(pread(fd, orig, 40, (off_t)toff) == 40, "read the entry");
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t v[8];
        for (unsigned k = 0; k < cases[i].len; k++)
            v[k] = (uint8_t)(cases[i].v >> (8 * (cases[i].len - 1 - k)));
        CHECK(pwrite(fd, orig, 40, (off_t)toff) == 40, "restore");
        CHECK(pwrite(fd, v, cases[i].len, (off_t)(toff + cases[i].at)) == (ssize_t)cases[i].len,
              "damage");
        r = qimg_open(&q, path("d.qcow2"), NULL, false, &e);
        CHECK(r == 0, "%s: open: %s", cases[i].what, e.msg);
        if (r < 0)
            continue;
        e.msg[0] = 0;
        struct qimg_snapshot *s;
        r = qimg_snapshots_read(q, &s, &e);
        CHECK(r == cases[i].want && e.msg[0], "%s: %d '%s'", cases[i].what, r, e.msg);
        if (r == 0)
            qimg_snapshots_free(s, q->nb_snapshots);
        r = qimg_snapshot_apply(q, "x", &e);
        CHECK(r < 0, "%s: apply refused: %d", cases[i].what, r);
        r = qimg_snapshot_delete(q, "x", &e);
        CHECK(r < 0, "%s: delete refused: %d", cases[i].what, r);
        qimg_close(q);
    }
    close(fd);
}

static void test_resize(void)
{
    /* 512-byte clusters: one L1 entry covers 32 KiB, the L1 table grows */
    uint64_t size = 256 << 10, big = 4 << 20;
    struct qimg *q = mk("r.qcow2", size, 9, 4, NULL);
    if (!q)
        return;
    uint8_t *cur = calloc(1, big);
    struct err e = { "" };
    wr(q, cur, 1000, 100000, 1);
    uint32_t l1 = q->l1_size;
    int r = qimg_resize(q, big, false, &e);
    CHECK(r == 0 && q->size == big && q->l1_size > l1, "grow: %s (l1 %u -> %u)", e.msg, l1,
          q->l1_size);
    check_clean(q, "grown");
    wr(q, cur, big - 5000, 5000, 2);
    verify(q, cur, big, "grown");
    r = qimg_resize(q, size, false, &e);
    CHECK(r == -EINVAL, "shrink without --shrink: %d", r);
    r = qimg_resize(q, size, true, &e);
    CHECK(r == -ENOTSUP && strstr(e.msg, "allocated"), "shrink over data: %d %s", r, e.msg);
    r = qimg_discard(q, big - 8192, 8192);
    CHECK(r == 0, "discard: %s", q->err.msg);
    memset(cur + big - 8192, 0, 8192);
    r = qimg_resize(q, big - 8192, true, &e);
    CHECK(r == 0 && q->size == big - 8192, "shrink: %s", e.msg);
    check_clean(q, "shrunk");
    verify(q, cur, big - 8192, "shrunk");
    r = qimg_snapshot_create(q, "s", &e);
    CHECK(r == 0, "snapshot: %s", e.msg);
    r = qimg_resize(q, big, false, &e);
    CHECK(r == 0, "grow with a snapshot: %s", e.msg);
    r = qimg_snapshot_apply(q, "s", &e);
    CHECK(r == 0 && q->size == big - 8192, "apply restores the size: %s %llu", e.msg,
          (unsigned long long)q->size);
    r = qimg_resize(q, 65536, true, &e);
    CHECK(r == -ENOTSUP, "shrink with a snapshot: %d", r);
    check_clean(q, "resize + snapshots");
    qimg_close(q);
    free(cur);
}

static void test_backing_tools(void)
{
    const uint64_t size = 1 << 20;
    uint8_t *base = calloc(1, size), *cur;
    struct qimg *b = mk("b.qcow2", size, 16, 4, NULL);
    if (!b)
        return;
    wr(b, base, 0, size, 1);
    qimg_close(b);
    struct qimg *q = mk("ov.qcow2", 0, 16, 4, "b.qcow2");
    if (!q)
        return;
    cur = malloc(size);
    memcpy(cur, base, size);
    wr(q, cur, 70000, 200000, 2);
    struct err e = { "" };
    int r = qimg_make_empty(q, &e);
    CHECK(r == 0, "make_empty: %s", e.msg);
    verify(q, base, size, "emptied overlay reads the base");
    check_clean(q, "emptied");
    /* the name: rewritten, then removed, then restored */
    r = qimg_set_backing(q, "other.qcow2", "qcow2", &e);
    CHECK(r == 0 && !strcmp(q->backing_name, "other.qcow2"), "set: %s", e.msg);
    r = qimg_set_backing(q, NULL, NULL, &e);
    CHECK(r == 0 && !q->backing_name, "remove: %s", e.msg);
    r = qimg_set_backing(q, "b.qcow2", "qcow2", &e);
    CHECK(r == 0, "restore: %s", e.msg);
    qimg_close(q);
    r = qimg_open(&q, path("ov.qcow2"), NULL, false, &e);
    CHECK(r == 0 && q->backing && !strcmp(q->backing_fmt, "qcow2"), "reopen: %s", e.msg);
    if (r == 0) {
        verify(q, base, size, "backing restored");
        check_clean(q, "backing restored");
        qimg_close(q);
    }
    r = qimg_open_flags(&q, path("ov.qcow2"), NULL, QIMG_BACKING_RW, &e);
    CHECK(r == 0 && q->backing && !q->backing->ro, "backing read-write: %s", e.msg);
    struct qimg *other;
    r = qimg_open(&other, path("b.qcow2"), NULL, true, &e);
    CHECK(r == -EBUSY, "a base opened read-write is locked: %d", r);
    if (r == 0)
        qimg_close(other);
    qimg_close(q);
    free(base);
    free(cur);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_cycle(16, 4);
    test_cycle(9, 4);     /* L2 tables of 32 KiB: CoW of tables across a run */
    test_cycle(12, 2);    /* 4-bit refcounts */
    test_cycle(13, 6);    /* 64-bit refcounts */
    test_overflow();
    test_damaged();
    test_resize();
    test_backing_tools();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("cannot remove %s\n", dir);
    return unit_done("test_qcow2_snapshot");
}

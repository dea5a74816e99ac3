/* qcow2 allocation at refcount block boundaries, for every cluster size
 * (512 B .. 2 MiB) with every refcount width (1 .. 64 bits), each image
 * checked by Petrel's check and by `qemu-img check` (Debian qemu-utils).
 *
 * A refcount block covers cs * 8 / bits clusters: 64 clusters (32 KiB of
 * file) with 512-byte clusters and 64-bit refcounts, 16 M clusters (32 TiB)
 * with 2 MiB clusters and 1-bit refcounts.  So each image
 *  - writes more than two refcount blocks' worth of data, where that is at
 *    most 2 MiB, through the normal allocator;
 *  - otherwise starts allocating at the last cluster of the first
 *    block's range (the allocator's free-cluster hint set there, the file
 *    sparse below it: free clusters with refcount 0, a valid image) and
 *    writes across into the next range, which gets its first block;
 *  - where one data run can cover a whole block's range (64-bit refcounts
 *    with 512 B, 1 KiB, 2 KiB clusters: the case issue 15 found), writes
 *    exactly such a run at the start of a fresh range: its block must live
 *    outside the range it covers;
 *  - where an L1 table of (refcount block range + 2) clusters fits in
 *    4 MiB, grows the L1 table (resize) into a fresh range the same way.
 * The files are sparse and up to 32 TiB large: they live on tmpfs
 * (/dev/shm), where ext4's 16 TiB file size limit does not apply. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block/qcow2.h"
#include "unit.h"

static char dir[] = "/dev/shm/petrel-qcow2-rc-XXXXXX";

#include "qcow2_test_util.h"

static unsigned qemu_checks;

/* `qemu-img check` of the images, a few at a time (each spends most of its
 * time waiting for its own threads): started when an image is complete,
 * finished (exit status 0 expected, then the image deleted) in order. */
#define QEMU_CHECKS_IN_FLIGHT 4
static struct pending {
    pid_t pid;
    char img[256], log[264], what[64];
} pend[QEMU_CHECKS_IN_FLIGHT];
static unsigned npend;

static void qemu_check_finish(void)
{
    struct pending p = pend[0];
    memmove(pend, pend + 1, --npend * sizeof(pend[0]));
    int st = 0;
    while (waitpid(p.pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char out[4096] = "";
        FILE *f = fopen(p.log, "r");
        if (f) {
            out[fread(out, 1, sizeof(out) - 1, f)] = 0;
            fclose(f);
        }
        CHECK(0, "%s: qemu-img check exit status %d (qemu-utils installed?):\n%s", p.what,
              WIFEXITED(st) ? WEXITSTATUS(st) : -1, out);
    }
    qemu_checks++;
    unlink(p.img);
    unlink(p.log);
}

static void qemu_check_start(const char *img, const char *what)
{
    if (npend == QEMU_CHECKS_IN_FLIGHT)
        qemu_check_finish();
    struct pending *p = &pend[npend];
    snprintf(p->img, sizeof(p->img), "%s", img);
    snprintf(p->log, sizeof(p->log), "%s.log", img);
    snprintf(p->what, sizeof(p->what), "%s", what);
    fflush(stdout);
    p->pid = fork();
    if (p->pid == 0) {
        int fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("qemu-img", "qemu-img", "check", p->img, (char *)NULL);
        _exit(127);
    }
    CHECK(p->pid > 0, "%s: fork: %s", what, strerror(errno));
    if (p->pid > 0)
        npend++;
}

static uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/* The first cluster of a refcount block range past the end of the file,
 * with a whole free range before it (no block there either). */
static uint64_t fresh_range(const struct qimg *q)
{
    uint64_t clusters = (q->file_size + q->cluster_size - 1) / q->cluster_size;
    return (clusters / q->rb_entries + 2) * q->rb_entries;
}

static void one(uint32_t cb, uint32_t order)
{
    uint64_t cs = 1ull << cb, rbe = cs * 8 >> order, l2cov = cs / 8 * cs;
    uint64_t range = rbe * cs;               /* bytes of file one block covers */
    bool small = range <= (1u << 20);
    bool whole_run = rbe <= 256 && rbe <= cs / 8;   /* one data run covers a range */
    bool l1_run = (rbe + 2) * cs <= (4u << 20);
    char what[64];
    snprintf(what, sizeof(what), "cluster %llu, %u-bit refcounts", (unsigned long long)cs,
             1u << order);

    uint64_t size = cs + (small ? 2 * range + cs : 3 * cs), g2 = 0;
    if (whole_run) {
        g2 = round_up(size, l2cov);
        size = g2 + l2cov;
    }
    size = round_up(size, cs);
    char name[64];
    snprintf(name, sizeof(name), "c%u-r%u.qcow2", cb, order);
    struct qimg *q = mk(name, size, cb, order, NULL);
    if (!q)
        return;
    uint8_t *shadow = calloc(1, size);
    wr(q, shadow, 0, cs, 1);
    if (small) {
        /* the normal allocator through more than two blocks' ranges */
        uint64_t chunk = 256 * cs < (1u << 20) ? 256 * cs : (1u << 20);
        for (uint64_t off = cs, end = cs + 2 * range + cs; off < end; off += chunk)
            wr(q, shadow, off, off + chunk < end ? chunk : end - off, off / cs + 2);
        CHECK(q->file_size > 2 * range, "%s: file %llu bytes, two ranges are %llu", what,
              (unsigned long long)q->file_size, (unsigned long long)(2 * range));
    } else {
        /* from the last cluster of the first range into the next */
        CHECK(q->rt_entries > 1 && q->rt[0] && !q->rt[1], "%s: initial refcount table", what);
        q->free_hint = rbe - 1;
        wr(q, shadow, cs, 3 * cs, 3);
        CHECK(q->rt_entries > 1 && q->rt[1], "%s: no block for the second range", what);
        CHECK(q->file_size >= range + cs, "%s: file %llu bytes, want past %llu", what,
              (unsigned long long)q->file_size, (unsigned long long)range);
    }
    if (whole_run) {
        /* the L2 table first (a cluster written and discarded: the table
         * stays, empty), then one run of rbe clusters starting a fresh range */
        wr(q, shadow, g2, cs, 6);
        int r = qimg_discard(q, g2, cs);
        CHECK(r == 0, "%s: discard: %s", what, q->err.msg);
        memset(shadow + g2, 0, cs);
        uint64_t f = fresh_range(q);
        q->free_hint = f;
        wr(q, shadow, g2, rbe * cs, 4);
        uint64_t ti = f / rbe;
        CHECK(ti < q->rt_entries && q->rt[ti], "%s: range %llu has no block", what,
              (unsigned long long)ti);
        if (ti < q->rt_entries && q->rt[ti])
            CHECK(q->rt[ti] / cs / rbe != ti, "%s: the block of range %llu lies inside it "
                  "(%#llx): the run did not cover it", what, (unsigned long long)ti,
                  (unsigned long long)q->rt[ti]);
    }
    verify(q, shadow, size, what);
    check_clean(q, what);
    if (l1_run) {
        /* a larger L1 table (rbe + 2 clusters) allocated at a fresh range */
        uint64_t nsize = (rbe + 2) * cs / 8 * l2cov;
        q->free_hint = fresh_range(q);
        struct err e = { "" };
        int r = qimg_resize(q, nsize, false, &e);
        CHECK(r == 0, "%s: resize to %llu: %s", what, (unsigned long long)nsize, e.msg);
        if (r == 0) {
            uint8_t *b = malloc(cs), *got = malloc(cs);
            fill(b, cs, 5);
            CHECK(qimg_pwrite(q, b, cs, nsize - cs) == 0, "%s: write at the end: %s", what,
                  q->err.msg);
            CHECK(qimg_pread(q, got, cs, nsize - cs) == 0 && !memcmp(b, got, cs),
                  "%s: read at the end", what);
            free(b);
            free(got);
        }
        verify(q, shadow, size, what);
        check_clean(q, what);
    }
    qimg_close(q);
    /* reopened: the same content */
    struct err e = { "" };
    int r = qimg_open(&q, path(name), NULL, true, &e);
    CHECK(r == 0, "%s: reopen: %s", what, e.msg);
    if (r == 0) {
        verify(q, shadow, size, what);
        qimg_close(q);
    }
    qemu_check_start(path(name), what);
    free(shadow);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        printf("FAIL mkdtemp %s: %s (the test needs tmpfs at /dev/shm for sparse files "
               "beyond ext4's 16 TiB)\n", dir, strerror(errno));
        return 1;
    }
    for (uint32_t cb = QCOW2_MIN_CLUSTER_BITS; cb <= QCOW2_MAX_CLUSTER_BITS; cb++)
        for (uint32_t order = 0; order <= 6; order++)
            one(cb, order);
    while (npend)
        qemu_check_finish();
    EQ(qemu_checks, (QCOW2_MAX_CLUSTER_BITS - QCOW2_MIN_CLUSTER_BITS + 1) * 7);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("cannot remove %s\n", dir);
    return unit_done("test_qcow2_refcount");
}

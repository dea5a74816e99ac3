/* qcow2 consistency check and repair (petrel img check): recount every
 * reference (header, L1 tables of the image and its snapshots, L2 tables,
 * data and compressed clusters, the snapshot table, the refcount table and
 * blocks) into an in-memory array, then compare with the stored refcounts.
 * Stored < counted is corruption, stored > counted a leak, as in qemu-img
 * check.  Repair lowers leaked refcounts (-r leaks) and raises too-low ones
 * (-r all) through the normal refcount path, then clears the dirty bit. */
#include "block/qcow2.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct counter {
    struct qimg *q;
    uint32_t *ref;
    uint64_t n;                 /* clusters in the file */
    struct qimg_check *res;
    FILE *log;
};

static void ref(struct counter *c, uint64_t off, uint64_t len, const char *what)
{
    if (!len)
        return;
    uint64_t cs = c->q->cluster_size;
    uint64_t first = off / cs, last = (off + len - 1) / cs;
    for (uint64_t i = first; i <= last; i++) {
        if (i >= c->n) {
            if (c->log)
                fprintf(c->log, "ERROR %s at offset %#llx points past the end of the file\n",
                        what, (unsigned long long)(i * cs));
            c->res->corruptions++;
            return;
        }
        if (c->ref[i] < UINT32_MAX)
            c->ref[i]++;
    }
}

static int walk_l1(struct counter *c, uint64_t l1_off, uint32_t l1_size, bool active)
{
    struct qimg *q = c->q;
    uint64_t cs = q->cluster_size;
    if (l1_off % cs || l1_off > q->file_size || (uint64_t)l1_size * 8 > q->file_size - l1_off ||
        (uint64_t)l1_size * 8 > QCOW2_MAX_L1_BYTES) {
        if (c->log)
            fprintf(c->log, "ERROR invalid L1 table at %#llx (%u entries)\n",
                    (unsigned long long)l1_off, l1_size);
        c->res->corruptions++;
        return 0;
    }
    ref(c, l1_off, (uint64_t)l1_size * 8, "L1 table");
    uint64_t *l1 = calloc(l1_size ? l1_size : 1, 8), *l2 = malloc(cs);
    int r = 0;
    if (!l1 || !l2) {
        r = -ENOMEM;
        goto out;
    }
    if ((r = qcow2_pread_full(q, l1, (uint64_t)l1_size * 8, l1_off)) < 0)
        goto out;
    unsigned x = 62 - (q->cluster_bits - 8);
    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t e1 = be64toh(l1[i]), off = e1 & QCOW2_OFFSET_MASK;
        if (!off)
            continue;
        if (off % cs || off + cs > q->file_size) {
            if (c->log)
                fprintf(c->log, "ERROR L1 entry %u: L2 table offset %#llx invalid\n", i,
                        (unsigned long long)off);
            c->res->corruptions++;
            continue;
        }
        ref(c, off, cs, "L2 table");
        if ((r = qcow2_pread_full(q, l2, cs, off)) < 0)
            goto out;
        for (uint64_t j = 0; j < q->l2_entries; j++) {
            uint64_t e = be64toh(l2[j]);
            uint64_t gc = (uint64_t)i * q->l2_entries + j;
            if (e & QCOW2_COMPRESSED) {
                uint64_t coff = e & ((1ull << x) - 1) & ((1ull << 56) - 1);
                uint64_t nsec = ((e >> x) & ((1ull << (q->cluster_bits - 8)) - 1)) + 1;
                ref(c, coff & ~511ull, nsec * 512, "compressed cluster");
                if (active)
                    c->res->allocated++;
                continue;
            }
            uint64_t h = e & QCOW2_OFFSET_MASK;
            if (e & 0x3f000000000001feull) {
                if (c->log)
                    fprintf(c->log, "ERROR L2 entry for guest cluster %llu has reserved bits "
                            "set\n", (unsigned long long)gc);
                c->res->corruptions++;
                continue;
            }
            if (h) {
                ref(c, h, cs, "data cluster");
                if (active && !(e & QCOW2_ZERO))
                    c->res->allocated++;
            }
        }
    }
out:
    free(l1);
    free(l2);
    return r;
}

static int walk_snapshots(struct counter *c)
{
    struct qimg *q = c->q;
    uint64_t p = q->snapshots_off;
    for (uint32_t s = 0; s < q->nb_snapshots; s++) {
        uint8_t h[40];
        if (p > q->file_size || q->file_size - p < 40) {
            if (c->log)
                fprintf(c->log, "ERROR snapshot table runs past the end of the file\n");
            c->res->corruptions++;
            return 0;
        }
        int r = qcow2_pread_full(q, h, 40, p);
        if (r < 0)
            return r;
        uint64_t l1_off;
        uint32_t l1_size, extra;
        uint16_t idl, namel;
        memcpy(&l1_off, h, 8);
        memcpy(&l1_size, h + 8, 4);
        memcpy(&idl, h + 12, 2);
        memcpy(&namel, h + 14, 2);
        memcpy(&extra, h + 36, 4);
        l1_off = be64toh(l1_off);
        l1_size = be32toh(l1_size);
        extra = be32toh(extra);
        if (extra > 1024) {
            if (c->log)
                fprintf(c->log, "ERROR snapshot %u: extra data too large\n", s);
            c->res->corruptions++;
            return 0;
        }
        if ((r = walk_l1(c, l1_off, l1_size, false)) < 0)
            return r;
        p += (40 + extra + be16toh(idl) + be16toh(namel) + 7) & ~7ull;
    }
    ref(c, q->snapshots_off, p - q->snapshots_off, "snapshot table");
    return 0;
}

static void rb_put(const struct qimg *q, uint8_t *blk, uint64_t idx, uint64_t v)
{
    unsigned bits = 1u << q->refcount_order;
    if (bits < 8) {
        unsigned sh = idx * bits % 8;
        blk[idx * bits / 8] |= (uint8_t)(v << sh);
        return;
    }
    for (unsigned i = 0; i < bits / 8; i++)
        blk[idx * (bits / 8) + i] = (uint8_t)(v >> (8 * (bits / 8 - 1 - i)));
}

/* Write a new refcount table and blocks after the end of the file from the
 * counted references, then switch the header to them: for refcounts that
 * cannot be fixed in place (a referenced cluster whose refcount block is
 * missing).  The old table and blocks become free clusters.  Ordering: the
 * new structures are complete and synced before the header points at them. */
static int rebuild(struct counter *c)
{
    struct qimg *q = c->q;
    uint64_t cs = q->cluster_size, rbe = q->rb_entries, n0 = c->n;
    for (uint64_t k = 0; k < q->rt_clusters; k++)
        if (q->rt_off / cs + k < n0 && c->ref[q->rt_off / cs + k])
            c->ref[q->rt_off / cs + k]--;
    for (uint64_t i = 0; i < q->rt_entries; i++)
        if (q->rt[i] && q->rt[i] / cs < n0 && c->ref[q->rt[i] / cs])
            c->ref[q->rt[i] / cs]--;
    for (uint64_t i = 0; i < n0; i++)
        if (c->ref[i] > q->refcount_max)
            return err_set(&q->err, -ERANGE, "%s: cluster %llu has %u references, more than "
                           "%u-bit refcounts hold", q->path, (unsigned long long)i, c->ref[i],
                           1u << q->refcount_order);
    uint64_t rtc = 1, rbc = 0;
    for (;;) {
        uint64_t end = n0 + rtc + rbc;
        uint64_t nrbc = (end + rbe - 1) / rbe, nrtc = (nrbc * 8 + cs - 1) / cs;
        if (nrbc == rbc && nrtc == rtc)
            break;
        rbc = nrbc;
        rtc = nrtc;
    }
    if (rtc * cs > QCOW2_MAX_RT_BYTES)
        return err_set(&q->err, -ENOSPC, "%s: the refcount table would exceed %u bytes",
                       q->path, QCOW2_MAX_RT_BYTES);
    uint64_t end = n0 + rtc + rbc, entries = rtc * cs / 8;
    uint64_t *rt = calloc(entries, 8);
    uint8_t *blk = malloc(cs);
    int r = 0;
    if (!rt || !blk) {
        r = err_set(&q->err, -ENOMEM, "out of memory");
        goto out;
    }
    for (uint64_t b = 0; b < rbc; b++) {
        memset(blk, 0, cs);
        for (uint64_t idx = 0; idx < rbe; idx++) {
            uint64_t cl = b * rbe + idx;
            uint64_t v = cl < n0 ? c->ref[cl] : cl < end ? 1 : 0;
            if (v)
                rb_put(q, blk, idx, v);
        }
        rt[b] = (n0 + rtc + b) * cs;
        if ((r = qcow2_pwrite_full(q, blk, cs, rt[b])) < 0)
            goto out;
    }
    for (uint64_t i = 0; i < entries; i++)
        rt[i] = htobe64(rt[i]);
    if ((r = qcow2_pwrite_full(q, rt, entries * 8, n0 * cs)) < 0 || (r = qimg_flush(q)) < 0)
        goto out;
    uint8_t h[12];
    uint64_t be = htobe64(n0 * cs);
    uint32_t be32 = htobe32((uint32_t)rtc);
    memcpy(h, &be, 8);
    memcpy(h + 8, &be32, 4);
    if ((r = qcow2_pwrite_full(q, h, 12, 48)) < 0 || (r = qimg_flush(q)) < 0)
        goto out;
    for (uint64_t i = 0; i < entries; i++)
        rt[i] = be64toh(rt[i]);
    free(q->rt);
    q->rt = rt;
    rt = NULL;
    q->rt_off = n0 * cs;
    q->rt_clusters = (uint32_t)rtc;
    q->rt_entries = entries;
    for (unsigned k = 0; k < QCOW2_RB_CACHE; k++)
        q->rbc[k].off = 0;
    q->free_hint = 1;
out:
    free(rt);
    free(blk);
    return r;
}

int qimg_check(struct qimg *q, int repair, struct qimg_check *res, FILE *log, struct err *e)
{
    memset(res, 0, sizeof(*res));
    if (q->raw)
        return err_set(e, -ENOTSUP, "%s: raw images have no metadata to check", q->path);
    uint64_t cs = q->cluster_size;
    struct counter c = { .q = q, .res = res, .log = log };
    c.n = (q->file_size + cs - 1) / cs;
    res->total = (q->size + cs - 1) / cs;
    res->image_end = q->file_size;
    if (!(c.ref = calloc(c.n ? c.n : 1, sizeof(uint32_t))))
        return err_set(e, -ENOMEM, "out of memory (%llu clusters)", (unsigned long long)c.n);
    int r;
    ref(&c, 0, cs, "header");
    if ((r = walk_l1(&c, q->l1_off, q->l1_size, true)) < 0 || (r = walk_snapshots(&c)) < 0)
        goto io;
    ref(&c, q->rt_off, (uint64_t)q->rt_clusters * cs, "refcount table");
    for (uint64_t i = 0; i < q->rt_entries; i++)
        if (q->rt[i])
            ref(&c, q->rt[i], cs, "refcount block");
    /* what refcount repair cannot fix: references past the end of the file,
     * bad tables */
    uint64_t structural = res->corruptions;
    /* a referenced cluster without a refcount block: -r all rebuilds all of
     * them (a new block placed in its range could hit a cluster in use) */
    bool rebuild_all = false;
    for (uint64_t i = 0; repair >= 2 && i < c.n && !rebuild_all; i++) {
        uint64_t ti = i / q->rb_entries;
        rebuild_all = c.ref[i] && (ti >= q->rt_entries || !q->rt[ti]);
    }
    /* compare over the file (refcounts past its end are ignored, as by
     * qemu-img check; the allocator does not trust them either) */
    for (uint64_t i = 0; i < c.n; i++) {
        uint64_t ti = i / q->rb_entries;
        uint64_t stored, want = i < c.n ? c.ref[i] : 0;
        if ((r = qcow2_rc_get(q, i, &stored)) < 0)
            goto io;
        if (stored == want)
            continue;
        bool leak = stored > want;
        if (log)
            fprintf(log, "%s cluster %llu refcount=%llu reference=%llu\n",
                    leak ? (repair >= 1 ? "Repairing leaked" : "Leaked")
                         : (repair >= 2 ? "Repairing" : "ERROR"),
                    (unsigned long long)i, (unsigned long long)stored, (unsigned long long)want);
        if (leak)
            res->leaks++;
        else
            res->corruptions++;
        if (rebuild_all)
            continue;
        if ((leak && repair >= 1) || (!leak && repair >= 2)) {
            if (!leak && (ti >= q->rt_entries || !q->rt[ti])) {
                if (log)
                    fprintf(log, "cannot repair cluster %llu: its refcount block is missing\n",
                            (unsigned long long)i);
                continue;
            }
            r = qcow2_rc_update(q, i * cs, cs, leak ? -(int64_t)(stored - want)
                                                   : (int64_t)(want - stored));
            if (r < 0)
                goto io;
            if (leak)
                res->fixed_leaks++;
            else
                res->fixed_corruptions++;
        }
    }
    if (rebuild_all) {
        if (log)
            fprintf(log, "Rebuilding the refcount structure (a referenced cluster has no "
                    "refcount block)\n");
        if ((r = rebuild(&c)) < 0)
            goto io;
        res->fixed_corruptions = res->corruptions - structural;
        res->fixed_leaks = res->leaks;
    }
    if (repair && !q->ro && (q->incompat & QCOW2_INCOMPAT_DIRTY) &&
        res->corruptions == res->fixed_corruptions &&
        (r = qcow2_write_header_incompat(q, q->incompat & ~QCOW2_INCOMPAT_DIRTY)) < 0)
        goto io;
    if (repair && (r = qimg_flush(q)) < 0)
        goto io;
    free(c.ref);
    return 0;
io:
    free(c.ref);
    if (r == -ENOMEM)
        return err_set(e, r, "out of memory");
    return err_set(e, r, "%s", q->err.msg);
}

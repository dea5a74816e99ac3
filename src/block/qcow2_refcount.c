/* qcow2 refcounts: the refcount block cache, reading and updating refcounts
 * (every width from 1 to 64 bits), cluster allocation (the lowest free run,
 * or at the end of the file), refcount blocks created on demand (inside the
 * range they cover, or elsewhere when the run being allocated covers all of
 * it) and the refcount table grown when the file outgrows it.  Ordering: a
 * new refcount block is written before the table entry pointing at it; a
 * refcount is raised before anything points at its cluster.  See qcow2.h. */
#include "block/qcow2.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Load the refcount block at off into the cache. */
static int rb_load(struct qimg *q, uint64_t off, uint8_t **out)
{
    struct qcow2_cache_ent *victim, *hit = qcow2_cache_find(q, q->rbc, QCOW2_RB_CACHE, off,
                                                            &victim);
    if (hit) {
        *out = hit->buf;
        return 0;
    }
    int r = qcow2_pread_full(q, victim->buf, q->cluster_size, off);
    if (r < 0)
        return r;
    victim->off = off;
    victim->lru = ++q->lru_clock;
    *out = victim->buf;
    return 0;
}

static uint64_t rb_get(const struct qimg *q, const uint8_t *blk, uint64_t idx)
{
    unsigned bits = 1u << q->refcount_order;
    if (bits < 8)
        return (blk[idx * bits / 8] >> (idx * bits % 8)) & ((1u << bits) - 1);
    uint64_t v = 0;
    for (unsigned i = 0; i < bits / 8; i++)
        v = v << 8 | blk[idx * (bits / 8) + i];
    return v;
}

/* Set entry idx in the cached block and write the bytes it lives in. */
static int rb_set(struct qimg *q, uint8_t *blk, uint64_t blk_off, uint64_t idx, uint64_t v)
{
    unsigned bits = 1u << q->refcount_order;
    uint64_t byte, nbytes;
    if (bits < 8) {
        byte = idx * bits / 8;
        nbytes = 1;
        unsigned sh = idx * bits % 8, mask = ((1u << bits) - 1) << sh;
        blk[byte] = (uint8_t)((blk[byte] & ~mask) | ((unsigned)v << sh & mask));
    } else {
        nbytes = bits / 8;
        byte = idx * nbytes;
        for (unsigned i = 0; i < nbytes; i++)
            blk[byte + i] = (uint8_t)(v >> (8 * (nbytes - 1 - i)));
    }
    return qcow2_pwrite_full(q, blk + byte, nbytes, blk_off + byte);
}

int qcow2_rc_get(struct qimg *q, uint64_t cluster, uint64_t *rc)
{
    uint64_t ti = cluster / q->rb_entries;
    if (ti >= q->rt_entries || !q->rt[ti]) {
        *rc = 0;
        return 0;
    }
    uint8_t *blk;
    int r = rb_load(q, q->rt[ti], &blk);
    if (r < 0)
        return r;
    *rc = rb_get(q, blk, cluster % q->rb_entries);
    return 0;
}

static int grow_rt(struct qimg *q, uint64_t need, uint64_t avoid_end);
static int rb_ensure(struct qimg *q, uint64_t cluster, uint64_t avoid, uint64_t navoid);
static int rc_add(struct qimg *q, uint64_t cluster, int64_t delta, uint64_t avoid,
                  uint64_t navoid);

static void rb_count_one(const struct qimg *q, uint8_t *blk, uint64_t idx)
{
    unsigned bits = 1u << q->refcount_order;
    if (bits < 8)
        blk[idx * bits / 8] |= (uint8_t)(1u << (idx * bits % 8));
    else
        blk[idx * (bits / 8) + bits / 8 - 1] = 1;
}

/* One free cluster outside avoid..avoid+navoid, its refcount raised to 1:
 * the lowest one whose refcount can be recorded (its own refcount block is
 * created first if it has none, which may take the cluster itself: then
 * the next one is tried). */
static int64_t alloc_one_outside(struct qimg *q, uint64_t avoid, uint64_t navoid)
{
    uint64_t c = q->free_hint;
    for (;;) {
        if (c >= avoid && c < avoid + navoid) {
            c = avoid + navoid;
            continue;
        }
        uint64_t rc;
        int r = qcow2_rc_get(q, c, &rc);
        if (r < 0)
            return r;
        if (rc) {
            c++;
            continue;
        }
        uint64_t ti = c / q->rb_entries;
        if (ti >= q->rt_entries || !q->rt[ti]) {
            /* the block lands in c's region, outside the avoided run; it
             * (or a new refcount table) may take c: look again */
            if ((r = rb_ensure(q, c, avoid, navoid)) < 0)
                return r;
            continue;
        }
        if ((r = rc_add(q, c, 1, avoid, navoid)) < 0)
            return r;
        return (int64_t)c;
    }
}

/* Make sure the refcount block for cluster exists.  A new block is placed
 * inside the range it covers (all of whose clusters are free by definition)
 * and counts itself, unless that whole range lies in avoid..avoid+navoid
 * (the run being allocated: with 64-bit refcounts and 512-byte clusters a
 * block covers only 64 clusters).  Then the block goes to a free cluster
 * elsewhere, counted in its own region's block, as QEMU does. */
static int rb_ensure(struct qimg *q, uint64_t cluster, uint64_t avoid, uint64_t navoid)
{
    uint64_t ti = cluster / q->rb_entries;
    if (ti >= q->rt_entries) {
        int r = grow_rt(q, ti + 1, avoid + navoid);
        if (r < 0)
            return r;
    }
    if (q->rt[ti])
        return 0;
    uint64_t first = ti * q->rb_entries, c = first;
    while (c < first + q->rb_entries && c >= avoid && c < avoid + navoid)
        c++;
    bool inside = c < first + q->rb_entries;
    if (!inside) {
        int64_t a = alloc_one_outside(q, avoid, navoid);
        if (a < 0)
            return (int)a;
        c = (uint64_t)a;
        if (q->rt[ti]) /* cannot happen: the search stays out of the run */
            return err_set(&q->err, -EIO, "%s: refcount block allocation raced with itself",
                           q->path);
    }
    uint64_t off = c * q->cluster_size;
    uint8_t *blk = calloc(1, q->cluster_size);
    if (!blk)
        return err_set(&q->err, -ENOMEM, "out of memory");
    if (inside)
        rb_count_one(q, blk, c - first);
    int r = qcow2_pwrite_full(q, blk, q->cluster_size, off);
    free(blk);
    if (r < 0)
        return r;
    uint64_t be = htobe64(off);
    if ((r = qcow2_pwrite_full(q, &be, 8, q->rt_off + ti * 8)) < 0)
        return r;
    q->rt[ti] = off;
    return 0;
}

/* Change the refcount of one cluster by delta. */
static int rc_add(struct qimg *q, uint64_t cluster, int64_t delta, uint64_t avoid,
                  uint64_t navoid)
{
    int r;
    if (delta > 0 && (r = rb_ensure(q, cluster, avoid, navoid)) < 0)
        return r;
    uint64_t ti = cluster / q->rb_entries;
    if (ti >= q->rt_entries || !q->rt[ti])
        return err_set(&q->err, -EIO, "%s: freeing cluster %#llx which has no refcount block "
                       "(corrupt image)", q->path, (unsigned long long)(cluster * q->cluster_size));
    uint8_t *blk;
    if ((r = rb_load(q, q->rt[ti], &blk)) < 0)
        return r;
    uint64_t idx = cluster % q->rb_entries, v = rb_get(q, blk, idx);
    if (delta > 0 && v > q->refcount_max - (uint64_t)delta)
        return err_set(&q->err, -ERANGE, "%s: refcount of cluster %#llx would overflow",
                       q->path, (unsigned long long)(cluster * q->cluster_size));
    if (delta < 0 && v < (uint64_t)-delta)
        return err_set(&q->err, -EIO, "%s: refcount of cluster %#llx would drop below zero "
                       "(corrupt image)", q->path, (unsigned long long)(cluster * q->cluster_size));
    v += (uint64_t)delta;
    if (v == 0 && cluster < q->free_hint)
        q->free_hint = cluster;
    return rb_set(q, blk, q->rt[ti], idx, v);
}

int qcow2_rc_update(struct qimg *q, uint64_t off, uint64_t len, int64_t delta)
{
    if (!len)
        return 0;
    uint64_t first = off / q->cluster_size, last = (off + len - 1) / q->cluster_size;
    for (uint64_t c = first; c <= last; c++) {
        int r = rc_add(q, c, delta, c, 1);
        if (r < 0)
            return r;
    }
    return 0;
}

/* The refcount table is full: write a larger one after the end of the file
 * (and after the clusters being allocated, which end at avoid_end), with
 * refcount blocks for itself, then switch the header to it. */
static int grow_rt(struct qimg *q, uint64_t need, uint64_t avoid_end)
{
    uint64_t cs = q->cluster_size;
    uint64_t entries = q->rt_entries * 2 > need ? q->rt_entries * 2 : need;
    uint64_t ncl = (entries * 8 + cs - 1) / cs;
    if (ncl * cs > QCOW2_MAX_RT_BYTES)
        return err_set(&q->err, -ENOSPC, "%s: the refcount table cannot grow past %u bytes",
                       q->path, QCOW2_MAX_RT_BYTES);
    entries = ncl * cs / 8;
    uint64_t start = (q->file_size + cs - 1) / cs;
    if (start < q->rt_entries * q->rb_entries)
        start = q->rt_entries * q->rb_entries;   /* first cluster the old table cannot count */
    if (start < avoid_end)
        start = avoid_end;
    /* new table at start, then one refcount block per region the new
     * clusters fall into (regions not covered yet) */
    uint64_t nblocks = 0;
    for (;;) {
        uint64_t end = start + ncl + nblocks;
        uint64_t regions = (end - 1) / q->rb_entries - start / q->rb_entries + 1;
        if (regions <= nblocks)
            break;
        nblocks = regions;
    }
    if ((start + ncl + nblocks - 1) / q->rb_entries >= entries)
        return err_set(&q->err, -ENOSPC, "%s: refcount table growth does not converge", q->path);
    uint64_t *nt = calloc(entries, 8);
    uint8_t *blk = calloc(1, cs);
    int r = 0;
    if (!nt || !blk) {
        r = err_set(&q->err, -ENOMEM, "out of memory");
        goto out;
    }
    memcpy(nt, q->rt, q->rt_entries * 8);
    uint64_t region0 = start / q->rb_entries;
    for (uint64_t b = 0; b < nblocks; b++) {
        uint64_t boff = (start + ncl + b) * cs, region = region0 + b;
        memset(blk, 0, cs);
        for (uint64_t c = start; c < start + ncl + nblocks; c++) {
            if (c / q->rb_entries == region)
                rb_count_one(q, blk, c % q->rb_entries);
        }
        if ((r = qcow2_pwrite_full(q, blk, cs, boff)) < 0)
            goto out;
        nt[region] = boff;
    }
    for (uint64_t i = 0; i < entries; i++)
        nt[i] = htobe64(nt[i]);
    if ((r = qcow2_pwrite_full(q, nt, entries * 8, start * cs)) < 0)
        goto out;
    for (uint64_t i = 0; i < entries; i++)
        nt[i] = be64toh(nt[i]);
    uint8_t h[12];
    uint64_t be = htobe64(start * cs);
    uint32_t be32 = htobe32((uint32_t)ncl);
    memcpy(h, &be, 8);
    memcpy(h + 8, &be32, 4);
    if ((r = qcow2_pwrite_full(q, h, 12, 48)) < 0)
        goto out;
    uint64_t old_off = q->rt_off, old_len = (uint64_t)q->rt_clusters * cs;
    free(q->rt);
    q->rt = nt;
    nt = NULL;
    q->rt_entries = entries;
    q->rt_off = start * cs;
    q->rt_clusters = (uint32_t)ncl;
    r = qcow2_rc_update(q, old_off, old_len, -1);
out:
    free(nt);
    free(blk);
    return r;
}

int64_t qcow2_alloc(struct qimg *q, uint64_t n)
{
    uint64_t c = q->free_hint, run = 0, start = c;
    bool prefix_used = true;
    while (run < n) {
        uint64_t rc = 0;
        {
            /* past the end of the file too: a kill may have left refcounts there */
            uint64_t ti = c / q->rb_entries;
            if (ti >= q->rt_entries || !q->rt[ti]) {
                /* a region without a refcount block: all free */
                uint64_t k = q->rb_entries - c % q->rb_entries;
                if (k > n - run)
                    k = n - run;
                run += k;
                c += k;
                prefix_used = false;
                continue;
            }
            int r = qcow2_rc_get(q, c, &rc);
            if (r < 0)
                return r;
        }
        if (rc) {
            run = 0;
            start = ++c;
            if (prefix_used)
                q->free_hint = c;
            continue;
        }
        prefix_used = false;
        run++;
        c++;
    }
    for (uint64_t i = 0; i < n; i++) {
        int r = rc_add(q, start + i, 1, start, n);
        if (r < 0)
            return r;
        uint64_t rc;
        if ((r = qcow2_rc_get(q, start + i, &rc)) < 0)
            return r;
        if (rc != 1) /* a new refcount block took a cluster of the run: unreachable */
            return err_set(&q->err, -EIO, "%s: allocation raced with itself", q->path);
    }
    uint64_t end = (start + n) * q->cluster_size;
    if (end > q->file_size) {
        /* extend the file so later reads of the new cluster do not see EOF */
        if (ftruncate(q->fd, (off_t)end) < 0)
            return err_set(&q->err, -errno, "%s: cannot grow the file: %s", q->path,
                           strerror(errno));
        q->file_size = end;
    }
    if (q->free_hint == start)
        q->free_hint = start + n;
    return (int64_t)(start * q->cluster_size);
}

/* Drop the reference an L2 entry held (normal or compressed cluster). */
int qcow2_free_entry(struct qimg *q, uint64_t entry)
{
    if (entry & QCOW2_COMPRESSED) {
        unsigned x = 62 - (q->cluster_bits - 8);
        uint64_t off = entry & ((1ull << x) - 1);
        uint64_t nsec = ((entry & ~QCOW2_COPIED & ~QCOW2_COMPRESSED) >> x) + 1;
        return qcow2_rc_update(q, off & ~511ull, nsec * 512, -1);
    }
    uint64_t off = entry & QCOW2_OFFSET_MASK;
    if (!off)
        return 0;
    return qcow2_rc_update(q, off, q->cluster_size, -1);
}

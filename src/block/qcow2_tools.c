/* qcow2 image tools below `petrel img`: resize, rewriting the backing file
 * name (rebase), emptying an overlay (commit).  Each change of the header is
 * one pwrite of at most one page, so a kill leaves the old or the new header,
 * never a mix; tables are written before the header points at them and freed
 * after it no longer does.  See qcow2.h. */
#include "block/qcow2.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXT_END 0x00000000u
#define EXT_BACKING_FMT 0xe2792acau

static uint32_t be32_at(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static uint64_t be64_at(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }
static void put_be32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }
static void put_be64(uint8_t *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); }

static int io_err(struct qimg *q, int r, struct err *e)
{
    return err_set(e, r, "%s", q->err.msg[0] ? q->err.msg : strerror(-r));
}

/* --- resize --- */

int qimg_resize(struct qimg *q, uint64_t size, bool shrink, struct err *e)
{
    if (q->ro)
        return err_set(e, -EROFS, "%s: opened read-only", q->path);
    if (size % 512 || size > (1ull << 61))
        return err_set(e, -EINVAL, "size %llu: must be a multiple of 512 and at most 2^61",
                       (unsigned long long)size);
    if (size < q->size && !shrink)
        return err_set(e, -EINVAL, "%s: shrinking from %llu to %llu bytes loses data; pass "
                       "--shrink to confirm", q->path, (unsigned long long)q->size,
                       (unsigned long long)size);
    if (q->raw) {
        if (ftruncate(q->fd, (off_t)size) < 0)
            return err_set(e, -errno, "%s: %s", q->path, strerror(errno));
        q->size = q->file_size = size;
        return 0;
    }
    if (q->nb_snapshots && size < q->size)
        return err_set(e, -ENOTSUP, "%s: cannot shrink an image that has internal snapshots",
                       q->path);
    if (q->nb_snapshots && q->version < 3)
        return err_set(e, -ENOTSUP, "%s: cannot resize a v2 (compat=0.10) image that has "
                       "internal snapshots", q->path);
    uint64_t cs = q->cluster_size;
    int r;
    if (size < q->size) {
        /* no data of this image (the active L1) may live past the new end */
        uint64_t pos = (size + cs - 1) / cs * cs;
        while (pos < q->size) {
            struct qimg_extent x;
            if ((r = qimg_map(q, pos, q->size - pos, &x)) < 0)
                return io_err(q, r, e);
            /* zero clusters hold no data: they may stay (they read as zeroes
             * should the image grow again) */
            if (x.depth == 0 && (x.state == QIMG_DATA || x.state == QIMG_COMPRESSED))
                return err_set(e, -ENOTSUP, "%s: data is allocated at offset %llu, past the new "
                               "size %llu; discard it first (or convert to a smaller image)",
                               q->path, (unsigned long long)pos, (unsigned long long)size);
            pos += x.len;
        }
    }
    uint64_t per_l1 = cs * q->l2_entries, need = (size + per_l1 - 1) / per_l1;
    if (need * 8 > QCOW2_MAX_L1_BYTES)
        return err_set(e, -EINVAL, "%s: size %llu needs an L1 table larger than %u bytes",
                       q->path, (unsigned long long)size, QCOW2_MAX_L1_BYTES);
    uint8_t h[24];
    if (need <= q->l1_size) {
        put_be64(h, size);
        if ((r = qcow2_pwrite_full(q, h, 8, 24)) < 0 || (r = qimg_flush(q)) < 0)
            return io_err(q, r, e);
        q->size = size;
        return 0;
    }
    /* a larger L1 table: written in new clusters, then switched in */
    uint64_t *nl1 = calloc(need, 8), old_off = q->l1_off, old_size = q->l1_size;
    if (!nl1)
        return err_set(e, -ENOMEM, "out of memory");
    memcpy(nl1, q->l1, old_size * 8);
    int64_t a = qcow2_alloc(q, (need * 8 + cs - 1) / cs);
    if (a < 0) {
        free(nl1);
        return io_err(q, (int)a, e);
    }
    uint64_t *save = q->l1;
    uint64_t save_off = q->l1_off;
    uint32_t save_size = q->l1_size;
    q->l1 = nl1;
    q->l1_off = (uint64_t)a;
    q->l1_size = (uint32_t)need;
    put_be64(h, size);
    put_be32(h + 8, 0);
    put_be32(h + 12, (uint32_t)need);
    put_be64(h + 16, (uint64_t)a);
    if ((r = qcow2_l1_write_all(q)) < 0 || (r = qimg_flush(q)) < 0 ||
        (r = qcow2_pwrite_full(q, h, 24, 24)) < 0 || (r = qimg_flush(q)) < 0) {
        q->l1 = save;
        q->l1_off = save_off;
        q->l1_size = save_size;
        free(nl1);
        return io_err(q, r, e);
    }
    free(save);
    q->size = size;
    if (old_size && (r = qcow2_rc_update(q, old_off, old_size * 8, -1)) < 0)
        return io_err(q, r, e);
    return 0;
}

/* --- the backing file name --- */

int qimg_set_backing(struct qimg *q, const char *name, const char *fmt, struct err *e)
{
    if (q->raw)
        return err_set(e, -EINVAL, "%s: raw images cannot have a backing file", q->path);
    if (q->ro)
        return err_set(e, -EROFS, "%s: opened read-only", q->path);
    if (name && (!name[0] || strlen(name) > 1023))
        return err_set(e, -EINVAL, "backing file names must be 1 to 1023 bytes long");
    if (fmt && strlen(fmt) >= sizeof(q->backing_fmt))
        return err_set(e, -EINVAL, "backing format name too long");
    uint64_t cs = q->cluster_size, hc = cs < q->file_size ? cs : q->file_size;
    uint8_t *hdr = calloc(1, cs), *nh = calloc(1, cs);
    int r = 0;
    if (!hdr || !nh) {
        r = err_set(e, -ENOMEM, "out of memory");
        goto out;
    }
    if ((r = qcow2_pread_full(q, hdr, hc, 0)) < 0) {
        io_err(q, r, e);
        goto out;
    }
    uint64_t old_boff = be64_at(hdr + 8), old_blen = be32_at(hdr + 16);
    uint64_t old_end = old_boff ? old_boff + old_blen : q->header_length;
    /* extensions other than the backing format are kept, in order */
    uint64_t limit = old_boff && old_boff < hc ? old_boff : hc;
    uint64_t p = q->header_length, np = q->header_length;
    memcpy(nh, hdr, q->header_length);
    for (;;) {
        if (p + 8 > limit) {
            if (q->version == 3) {
                r = err_set(e, -EINVAL, "%s: header extensions run past the first cluster",
                            q->path);
                goto out;
            }
            break;                        /* v2 without extensions */
        }
        uint32_t type = be32_at(hdr + p), len = be32_at(hdr + p + 4);
        uint64_t step = 8 + (((uint64_t)len + 7) & ~7ull);
        if (type == EXT_END)
            break;
        if (len > limit - p - 8) {
            r = err_set(e, -EINVAL, "%s: header extension 0x%08x runs past the first cluster",
                        q->path, type);
            goto out;
        }
        if (type != EXT_BACKING_FMT) {
            memcpy(nh + np, hdr + p, step);
            np += step;
        }
        p += step;
        if (p > old_end)
            old_end = p;
    }
    if (old_end < p + 8)
        old_end = p + 8;
    size_t nl = name ? strlen(name) : 0, fl = name && fmt ? strlen(fmt) : 0;
    if (np + 8 + ((fl + 7) & ~7ull) + 8 + nl > cs) {
        r = err_set(e, -ENOSPC, "%s: the backing file name does not fit in the header cluster",
                    q->path);
        goto out;
    }
    if (fl) {
        put_be32(nh + np, EXT_BACKING_FMT);
        put_be32(nh + np + 4, (uint32_t)fl);
        memcpy(nh + np + 8, fmt, fl);
        np += 8 + ((fl + 7) & ~7ull);
    }
    np += 8;                              /* the end marker: zeroes */
    put_be64(nh + 8, nl ? np : 0);
    put_be32(nh + 16, (uint32_t)nl);
    if (nl)
        memcpy(nh + np, name, nl);
    uint64_t wlen = np + nl > old_end ? np + nl : old_end;
    if (wlen > 4096)
        r = err_set(e, -ENOSPC, "%s: the header would grow past 4096 bytes", q->path);
    else if ((r = qimg_flush(q)) < 0 || (r = qcow2_pwrite_full(q, nh, wlen, 0)) < 0 ||
             (r = qimg_flush(q)) < 0)
        io_err(q, r, e);
    if (r < 0)
        goto out;
    free(q->backing_name);
    q->backing_name = nl ? strdup(name) : NULL;
    snprintf(q->backing_fmt, sizeof(q->backing_fmt), "%s", fl ? fmt : "");
    if (nl && !q->backing_name)
        r = err_set(e, -ENOMEM, "out of memory");
out:
    free(hdr);
    free(nh);
    return r;
}

/* --- emptying --- */

int qimg_make_empty(struct qimg *q, struct err *e)
{
    if (q->raw || q->ro)
        return err_set(e, -EINVAL, "%s: only a writable qcow2 image can be emptied", q->path);
    if (q->nb_snapshots)
        return err_set(e, -ENOTSUP, "%s: the image has internal snapshots; keep its clusters "
                       "(commit -d)", q->path);
    uint64_t cs = q->cluster_size;
    uint64_t *l2 = malloc(cs), *zero = calloc(1, cs);
    int r = 0;
    if (!l2 || !zero) {
        r = err_set(e, -ENOMEM, "out of memory");
        goto out;
    }
    qcow2_l2_cache_drop(q);
    for (uint32_t i = 0; i < q->l1_size && r == 0; i++) {
        uint64_t toff = q->l1[i] & QCOW2_OFFSET_MASK;
        if (!toff)
            continue;
        if ((r = qcow2_pread_full(q, l2, cs, toff)) < 0 ||
            (r = qcow2_pwrite_full(q, zero, cs, toff)) < 0)
            break;
        /* nothing points at them any more: release */
        for (uint64_t j = 0; j < q->l2_entries && r == 0; j++)
            r = qcow2_free_entry(q, be64toh(l2[j]));
    }
    if (r == 0)
        r = qimg_flush(q);
    if (r < 0)
        io_err(q, r, e);
out:
    qcow2_l2_cache_drop(q);
    free(l2);
    free(zero);
    return r;
}

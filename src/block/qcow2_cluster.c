/* qcow2 guest I/O: the L2 cache, mapping guest offsets through L1/L2,
 * reads (data, zero, backing, compressed), writes with cluster allocation
 * and copy-on-write, write-zeroes, discard and map.  Ordering: see qcow2.h.
 * Raw images (q->raw) are served here too, so a backing chain and convert
 * use one interface. */
#include "block/qcow2.h"
#include "core/iov.h"

#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum kind { K_UNALLOC, K_ZERO, K_NORMAL, K_COMPRESSED };

/* --- iovec helpers --- */

/* q->iov_tmp = the bytes [skip, skip+len) of iov. */
static int iov_slice(struct qimg *q, const struct iovec *iov, unsigned niov, uint64_t skip,
                     uint64_t len, unsigned *nout)
{
    if (q->iov_tmp_n < niov + 2) {
        struct iovec *n = realloc(q->iov_tmp, (niov + 2) * sizeof(*n));
        if (!n)
            return err_set(&q->err, -ENOMEM, "out of memory");
        q->iov_tmp = n;
        q->iov_tmp_n = niov + 2;
    }
    unsigned k = 0;
    for (unsigned i = 0; i < niov && len; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        uint64_t n = iov[i].iov_len - skip;
        if (n > len)
            n = len;
        q->iov_tmp[k].iov_base = (uint8_t *)iov[i].iov_base + skip;
        q->iov_tmp[k].iov_len = n;
        k++;
        skip = 0;
        len -= n;
    }
    *nout = k;
    return 0;
}

static void iov_fill(const struct iovec *iov, unsigned niov, uint64_t skip, uint64_t len,
                     const uint8_t *src)
{
    for (unsigned i = 0; i < niov && len; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        uint64_t n = iov[i].iov_len - skip;
        if (n > len)
            n = len;
        if (src) {
            memcpy((uint8_t *)iov[i].iov_base + skip, src, n);
            src += n;
        } else {
            memset((uint8_t *)iov[i].iov_base + skip, 0, n);
        }
        skip = 0;
        len -= n;
    }
}

static int full_preadv(struct qimg *q, struct iovec *iov, unsigned niov, uint64_t off)
{
    while (niov) {
        ssize_t n = preadv(q->fd, iov, niov < IOV_MAX ? (int)niov : IOV_MAX, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return err_set(&q->err, -errno, "%s: read at %llu: %s", q->path,
                           (unsigned long long)off, strerror(errno));
        if (n == 0)
            return err_set(&q->err, -EIO, "%s: read at %llu: past the end of the file",
                           q->path, (unsigned long long)off);
        off += (uint64_t)n;
        iov_consume(&iov, &niov, (uint64_t)n);
    }
    return 0;
}

static int full_pwritev(struct qimg *q, struct iovec *iov, unsigned niov, uint64_t off)
{
    while (niov) {
        ssize_t n = pwritev(q->fd, iov, niov < IOV_MAX ? (int)niov : IOV_MAX, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return err_set(&q->err, n < 0 ? -errno : -EIO, "%s: write at %llu: %s", q->path,
                           (unsigned long long)off, n < 0 ? strerror(errno) : "short write");
        off += (uint64_t)n;
        if (off > q->file_size)
            q->file_size = off;
        iov_consume(&iov, &niov, (uint64_t)n);
    }
    return 0;
}

/* --- L2 tables --- */

/* The L2 table for l1 index i (NULL if unallocated). */
static int l2_get(struct qimg *q, uint64_t i, uint64_t **tbl)
{
    *tbl = NULL;
    uint64_t off = q->l1[i] & QCOW2_OFFSET_MASK;
    if (!off)
        return 0;
    struct qcow2_cache_ent *victim, *hit = qcow2_cache_find(q, q->l2c, QCOW2_L2_CACHE, off,
                                                            &victim);
    if (hit) {
        *tbl = (uint64_t *)hit->buf;
        return 0;
    }
    if (off + q->cluster_size > q->file_size || qcow2_meta_overlap(q, off, q->cluster_size))
        return err_set(&q->err, -EIO, "%s: L1 entry %llu points to an invalid L2 table offset "
                       "%#llx (corrupt image)", q->path, (unsigned long long)i,
                       (unsigned long long)off);
    int r = qcow2_pread_full(q, victim->buf, q->cluster_size, off);
    if (r < 0)
        return r;
    victim->off = off;
    victim->lru = ++q->lru_clock;
    *tbl = (uint64_t *)victim->buf;
    return 0;
}

static int classify(struct qimg *q, uint64_t e, enum kind *k, uint64_t *host)
{
    *host = 0;
    if (e & QCOW2_COMPRESSED) {
        *k = K_COMPRESSED;
        return 0;
    }
    if (e & 0x3f000000000001feull || (q->version == 2 && (e & QCOW2_ZERO)))
        return err_set(&q->err, -EIO, "%s: L2 entry %#llx has reserved bits set (corrupt "
                       "image)", q->path, (unsigned long long)e);
    uint64_t off = e & QCOW2_OFFSET_MASK;
    if (e & QCOW2_ZERO) {
        *k = K_ZERO;
        *host = off;
        return 0;
    }
    if (!off) {
        if (e & QCOW2_COPIED)
            return err_set(&q->err, -EIO, "%s: L2 entry %#llx maps to offset 0 (corrupt image)",
                           q->path, (unsigned long long)e);
        *k = K_UNALLOC;
        return 0;
    }
    if (off + q->cluster_size > q->file_size || qcow2_meta_overlap(q, off, q->cluster_size))
        return err_set(&q->err, -EIO, "%s: data cluster offset %#llx is past the end of the "
                       "file or inside metadata (corrupt image)", q->path,
                       (unsigned long long)off);
    *k = K_NORMAL;
    *host = off;
    return 0;
}

/* The L2 entry for guest cluster gc (0 if its L2 table is unallocated). */
static int entry_get(struct qimg *q, uint64_t gc, uint64_t *e)
{
    uint64_t *tbl;
    int r = l2_get(q, gc / q->l2_entries, &tbl);
    if (r < 0)
        return r;
    *e = tbl ? be64toh(tbl[gc % q->l2_entries]) : 0;
    return 0;
}

/* --- compressed clusters --- */

#include <zlib.h>
#include <zstd.h>

int qcow2_decompress(struct qimg *q, uint64_t entry)
{
    unsigned x = 62 - (q->cluster_bits - 8);
    uint64_t off = entry & ((1ull << x) - 1) & ((1ull << 56) - 1);
    uint64_t nsec = ((entry >> x) & ((1ull << (q->cluster_bits - 8)) - 1)) + 1;
    uint64_t len = nsec * 512 - (off & 511);
    if (off < q->cluster_size || off >= q->file_size)
        return err_set(&q->err, -EIO, "%s: compressed cluster at %#llx is outside the file "
                       "(corrupt image)", q->path, (unsigned long long)off);
    if (len > q->file_size - off)
        len = q->file_size - off;
    int r = qcow2_pread_full(q, q->zin, len, off);
    if (r < 0)
        return r;
    if (q->compression == 0) {
        z_stream *z = q->zlib;
        if (!z) {
            if (!(z = calloc(1, sizeof(*z))) || inflateInit2(z, -15) != Z_OK) {
                free(z);
                return err_set(&q->err, -ENOMEM, "zlib: cannot initialise");
            }
            q->zlib = z;
        } else {
            inflateReset(z);
        }
        z->next_in = q->zin;
        z->avail_in = (uInt)len;
        z->next_out = q->cbuf;
        z->avail_out = (uInt)q->cluster_size;
        int zr = inflate(z, Z_FINISH);
        if ((zr != Z_STREAM_END && zr != Z_BUF_ERROR) || z->avail_out)
            return err_set(&q->err, -EIO, "%s: compressed cluster at %#llx does not inflate to "
                           "a cluster (corrupt image)", q->path, (unsigned long long)off);
        return 0;
    }
    ZSTD_DCtx *d = q->zstd;
    if (!d && !(d = q->zstd = ZSTD_createDCtx()))
        return err_set(&q->err, -ENOMEM, "zstd: cannot initialise");
    ZSTD_DCtx_reset(d, ZSTD_reset_session_only);
    ZSTD_inBuffer in = { q->zin, len, 0 };
    ZSTD_outBuffer out = { q->cbuf, q->cluster_size, 0 };
    while (out.pos < out.size) {
        size_t zr = ZSTD_decompressStream(d, &out, &in);
        if (ZSTD_isError(zr) || (zr == 0 && out.pos < out.size) ||
            (in.pos == in.size && out.pos < out.size && zr != 0 && in.pos == len))
            break;
    }
    if (out.pos != out.size)
        return err_set(&q->err, -EIO, "%s: compressed (zstd) cluster at %#llx does not "
                       "decompress to a cluster (corrupt image)", q->path,
                       (unsigned long long)off);
    return 0;
}

void qcow2_caches_free(struct qimg *q)
{
    if (q->zlib) {
        inflateEnd(q->zlib);
        free(q->zlib);
        q->zlib = NULL;
    }
    if (q->zstd) {
        ZSTD_freeDCtx(q->zstd);
        q->zstd = NULL;
    }
}

/* --- reads --- */

static int raw_preadv(struct qimg *q, const struct iovec *iov, unsigned niov, uint64_t off,
                      uint64_t len)
{
    /* a raw backing file may be shorter than the overlay: zeroes past its end */
    uint64_t have = off < q->file_size ? q->file_size - off : 0;
    if (have > len)
        have = len;
    if (have < len)
        iov_fill(iov, niov, have, len - have, NULL);
    if (!have)
        return 0;
    unsigned n;
    int r = iov_slice(q, iov, niov, 0, have, &n);
    return r < 0 ? r : full_preadv(q, q->iov_tmp, n, off);
}

static uint64_t iov_len(const struct iovec *iov, unsigned niov)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < niov; i++)
        t += iov[i].iov_len;
    return t;
}

/* Read [off, off+len) from the backing image (the caller clamps the range to
 * its size).  iov is q->iov_tmp: copied, as the backing image slices its own. */
static int backing_read(struct qimg *q, struct iovec *iov, unsigned niov, uint64_t off)
{
    struct iovec *copy = malloc(niov * sizeof(*copy));
    if (!copy)
        return err_set(&q->err, -ENOMEM, "out of memory");
    memcpy(copy, iov, niov * sizeof(*copy));
    int r = qimg_preadv(q->backing, copy, niov, off);
    free(copy);
    if (r < 0)
        err_set(&q->err, r, "%s", q->backing->err.msg);
    return r;
}

int qimg_preadv(struct qimg *q, const struct iovec *iov, unsigned niov, uint64_t off)
{
    uint64_t len = iov_len(iov, niov);
    if (q->raw)
        return raw_preadv(q, iov, niov, off, len);
    uint64_t cs = q->cluster_size, done = 0;
    while (done < len) {
        uint64_t pos = off + done, gc = pos / cs, in = pos % cs;
        uint64_t n = cs - in < len - done ? cs - in : len - done;
        uint64_t e;
        enum kind k;
        uint64_t host;
        int r;
        if ((r = entry_get(q, gc, &e)) < 0 || (r = classify(q, e, &k, &host)) < 0)
            return r;
        /* extend the run over following clusters of the same kind */
        while (done + n < len && (k == K_NORMAL || k == K_UNALLOC || k == K_ZERO) &&
               (gc + 1) % q->l2_entries) {
            uint64_t e2, h2;
            enum kind k2;
            if ((r = entry_get(q, gc + 1, &e2)) < 0 || (r = classify(q, e2, &k2, &h2)) < 0)
                return r;
            if (k2 != k || (k == K_NORMAL && h2 != host + (gc + 1 - pos / cs) * cs))
                break;
            gc++;
            n += cs < len - done - n ? cs : len - done - n;
        }
        unsigned ns;
        switch (k) {
        case K_NORMAL:
            if ((r = iov_slice(q, iov, niov, done, n, &ns)) < 0 ||
                (r = full_preadv(q, q->iov_tmp, ns, host + in)) < 0)
                return r;
            break;
        case K_ZERO:
            iov_fill(iov, niov, done, n, NULL);
            break;
        case K_UNALLOC:
            if (!q->backing) {
                iov_fill(iov, niov, done, n, NULL);
                break;
            }
            {
                /* the part the backing file covers, zeroes after its end */
                uint64_t have = pos < q->backing->size ? q->backing->size - pos : 0;
                if (have > n)
                    have = n;
                if (have < n)
                    iov_fill(iov, niov, done + have, n - have, NULL);
                if (have && ((r = iov_slice(q, iov, niov, done, have, &ns)) < 0 ||
                             (r = backing_read(q, q->iov_tmp, ns, pos)) < 0))
                    return r;
            }
            break;
        case K_COMPRESSED:
            if ((r = qcow2_decompress(q, e)) < 0)
                return r;
            iov_fill(iov, niov, done, n, q->cbuf + in);
            break;
        }
        done += n;
    }
    return 0;
}

int qimg_pread(struct qimg *q, void *buf, uint64_t len, uint64_t off)
{
    struct iovec v = { buf, len };
    return qimg_preadv(q, &v, 1, off);
}

int qimg_pwrite(struct qimg *q, const void *buf, uint64_t len, uint64_t off)
{
    struct iovec v = { (void *)buf, len };
    return qimg_pwritev(q, &v, 1, off);
}

/* --- writes --- */

/* Write L2 entry gc (its table must be allocated and writable). */
static int entry_set(struct qimg *q, uint64_t gc, uint64_t v)
{
    uint64_t *tbl;
    int r = l2_get(q, gc / q->l2_entries, &tbl);
    if (r < 0)
        return r;
    uint64_t idx = gc % q->l2_entries, be = htobe64(v);
    tbl[idx] = be;
    return qcow2_pwrite_full(q, &be, 8, (q->l1[gc / q->l2_entries] & QCOW2_OFFSET_MASK) + idx * 8);
}

static int l1_set(struct qimg *q, uint64_t i, uint64_t v)
{
    uint64_t be = htobe64(v);
    int r = qcow2_pwrite_full(q, &be, 8, q->l1_off + i * 8);
    if (r == 0)
        q->l1[i] = v;
    return r;
}

/* Make the L2 table for l1 index i exist and belong to the active L1 only
 * (copy-on-write of a table shared with a snapshot). */
static int l2_writable(struct qimg *q, uint64_t i)
{
    uint64_t old = q->l1[i] & QCOW2_OFFSET_MASK;
    if (old && (q->l1[i] & QCOW2_COPIED))
        return 0;
    uint64_t rc = 0;
    int r;
    if (old) {
        if ((r = qcow2_rc_get(q, old / q->cluster_size, &rc)) < 0)
            return r;
        if (rc == 1)
            return l1_set(q, i, old | QCOW2_COPIED);
        if (rc == 0)
            return err_set(&q->err, -EIO, "%s: L2 table %#llx has refcount 0 (corrupt image)",
                           q->path, (unsigned long long)old);
    }
    uint64_t *src = NULL;
    if (old && (r = l2_get(q, i, &src)) < 0)
        return r;
    uint64_t *nt = calloc(1, q->cluster_size);
    if (!nt)
        return err_set(&q->err, -ENOMEM, "out of memory");
    if (src)
        for (uint64_t k = 0; k < q->l2_entries; k++)
            nt[k] = src[k] & ~htobe64(QCOW2_COPIED);     /* now shared: not COPIED */
    int64_t noff = qcow2_alloc(q, 1);
    if (noff < 0) {
        free(nt);
        return (int)noff;
    }
    /* the cluster may have held an L2 table that was freed (snapshot delete)
     * and is still cached under its offset */
    for (unsigned k = 0; k < QCOW2_L2_CACHE; k++)
        if (q->l2c[k].off == (uint64_t)noff)
            q->l2c[k].off = 0;
    r = qcow2_pwrite_full(q, nt, q->cluster_size, (uint64_t)noff);
    free(nt);
    if (r < 0 || (r = l1_set(q, i, (uint64_t)noff | QCOW2_COPIED)) < 0)
        return r;
    if (old && (r = qcow2_rc_update(q, old, q->cluster_size, -1)) < 0)
        return r;
    return 0;
}

/* Can entry e be written in place? */
static int in_place(struct qimg *q, uint64_t e, bool *ok)
{
    enum kind k;
    uint64_t host;
    int r = classify(q, e, &k, &host);
    *ok = false;
    if (r < 0 || k != K_NORMAL)
        return r;
    if (e & QCOW2_COPIED) {
        *ok = true;
        return 0;
    }
    uint64_t rc;
    if ((r = qcow2_rc_get(q, host / q->cluster_size, &rc)) < 0)
        return r;
    *ok = rc == 1;
    return 0;
}

int qimg_pwritev(struct qimg *q, const struct iovec *iov, unsigned niov, uint64_t off)
{
    uint64_t len = iov_len(iov, niov);
    unsigned ns;
    int r;
    if (q->raw) {
        if ((r = iov_slice(q, iov, niov, 0, len, &ns)) < 0)
            return r;
        return full_pwritev(q, q->iov_tmp, ns, off);
    }
    uint64_t cs = q->cluster_size, done = 0;
    while (done < len) {
        uint64_t pos = off + done, gc = pos / cs, in = pos % cs;
        uint64_t n = cs - in < len - done ? cs - in : len - done;
        uint64_t e;
        bool ok;
        if ((r = entry_get(q, gc, &e)) < 0 || (r = in_place(q, e, &ok)) < 0)
            return r;
        if (ok) {
            uint64_t host = e & QCOW2_OFFSET_MASK;
            /* extend over contiguous in-place clusters */
            while (done + n < len && (gc + 1) % q->l2_entries) {
                uint64_t e2;
                bool ok2;
                if ((r = entry_get(q, gc + 1, &e2)) < 0 || (r = in_place(q, e2, &ok2)) < 0)
                    return r;
                if (!ok2 || (e2 & QCOW2_OFFSET_MASK) != host + (gc + 1 - pos / cs) * cs)
                    break;
                gc++;
                n += cs < len - done - n ? cs : len - done - n;
            }
            if ((r = iov_slice(q, iov, niov, done, n, &ns)) < 0 ||
                (r = full_pwritev(q, q->iov_tmp, ns, host + in)) < 0)
                return r;
            done += n;
            continue;
        }
        /* allocate: a run of clusters that all need a new cluster */
        uint64_t l1i = gc / q->l2_entries;
        if ((r = l2_writable(q, l1i)) < 0)
            return r;
        if ((r = entry_get(q, gc, &e)) < 0)
            return r;
        uint64_t nclusters = 1;
        while (in + n == cs * nclusters && done + n < len && (gc + nclusters) % q->l2_entries &&
               nclusters < 256) {
            uint64_t e2;
            bool ok2;
            if ((r = entry_get(q, gc + nclusters, &e2)) < 0 || (r = in_place(q, e2, &ok2)) < 0)
                return r;
            if (ok2)
                break;
            nclusters++;
            n += cs < len - done - n ? cs : len - done - n;
        }
        uint64_t first = gc * cs, end = pos + n, last_end = (gc + nclusters) * cs;
        /* copy-on-write of the head and tail: the current content */
        uint64_t head = pos - first, tail = last_end - end;
        uint8_t *hbuf = q->cow, *tbuf = q->cow + cs;
        if (head && (r = qimg_pread(q, hbuf, head, first)) < 0)
            return r;
        if (tail && (r = qimg_pread(q, tbuf, tail, end)) < 0)
            return r;
        uint64_t olds[256];
        for (uint64_t i = 0; i < nclusters; i++)
            if ((r = entry_get(q, gc + i, &olds[i])) < 0)
                return r;
        int64_t host = qcow2_alloc(q, nclusters);
        if (host < 0)
            return (int)host;
        if (qcow2_meta_overlap(q, (uint64_t)host, nclusters * cs))
            return err_set(&q->err, -EIO, "%s: allocation at %#llx would overwrite metadata",
                           q->path, (unsigned long long)host);
        /* the data, with head and tail, in one pwritev */
        if ((r = iov_slice(q, iov, niov, done, n, &ns)) < 0)
            return r;
        struct iovec *v = q->iov_tmp;
        memmove(v + 1, v, ns * sizeof(*v));
        v[0] = (struct iovec){ hbuf, head };
        v[ns + 1] = (struct iovec){ tbuf, tail };
        if ((r = full_pwritev(q, v, ns + 2, (uint64_t)host)) < 0)
            return r;
        for (uint64_t i = 0; i < nclusters; i++)
            if ((r = entry_set(q, gc + i, ((uint64_t)host + i * cs) | QCOW2_COPIED)) < 0)
                return r;
        for (uint64_t i = 0; i < nclusters; i++) {
            enum kind k;
            uint64_t h;
            if (classify(q, olds[i], &k, &h) == 0 && k == K_ZERO && !h)
                continue;
            if ((olds[i] & QCOW2_COMPRESSED) || (olds[i] & QCOW2_OFFSET_MASK))
                if ((r = qcow2_free_entry(q, olds[i])) < 0)
                    return r;
        }
        done += n;
    }
    return 0;
}

/* --- zeroes and discard --- */

static uint8_t zeroes_buf[65536];

static int write_zero_bytes(struct qimg *q, uint64_t off, uint64_t len)
{
    while (len) {
        uint64_t n = len < sizeof(zeroes_buf) ? len : sizeof(zeroes_buf);
        int r = qimg_pwrite(q, zeroes_buf, n, off);
        if (r < 0)
            return r;
        off += n;
        len -= n;
    }
    return 0;
}

/* discard: 1 for DISCARD, 0 for WRITE_ZEROES */
static int zero_range(struct qimg *q, uint64_t off, uint64_t len, bool unmap, bool discard)
{
    if (q->raw)
        return discard ? 0 : write_zero_bytes(q, off, len);
    uint64_t cs = q->cluster_size, end = off + len;
    int r;
    while (off < end) {
        uint64_t gc = off / cs, in = off % cs;
        uint64_t n = cs - in < end - off ? cs - in : end - off;
        uint64_t e, host;
        enum kind k;
        if ((r = entry_get(q, gc, &e)) < 0 || (r = classify(q, e, &k, &host)) < 0)
            return r;
        bool reads_zero = k == K_ZERO || (k == K_UNALLOC && !q->backing);
        if (n < cs) {
            /* partial cluster: zero its bytes unless they already read as zero */
            if (!reads_zero && (!discard || k == K_NORMAL) &&
                (r = write_zero_bytes(q, off, n)) < 0)
                return r;
            off += n;
            continue;
        }
        uint64_t nv;
        bool keep = false;
        if (q->version >= 3) {
            if (!discard && !unmap && k == K_NORMAL && (e & QCOW2_COPIED)) {
                nv = host | QCOW2_ZERO | QCOW2_COPIED;   /* keep the allocation */
                keep = true;
            } else {
                nv = q->backing ? QCOW2_ZERO : 0;
            }
        } else {
            if (q->backing) {
                if (!discard && (r = write_zero_bytes(q, off, n)) < 0)
                    return r;
                off += n;
                continue;
            }
            nv = 0;
        }
        if (e != nv && !(reads_zero && k == K_UNALLOC && !nv)) {
            if ((r = l2_writable(q, gc / q->l2_entries)) < 0 ||
                (r = entry_get(q, gc, &e)) < 0 || (r = entry_set(q, gc, nv)) < 0)
                return r;
            if (!keep && ((e & QCOW2_COMPRESSED) || (e & QCOW2_OFFSET_MASK)) &&
                (r = qcow2_free_entry(q, e)) < 0)
                return r;
        }
        off += n;
    }
    return 0;
}

int qimg_write_zeroes(struct qimg *q, uint64_t off, uint64_t len, bool unmap)
{
    return zero_range(q, off, len, unmap, false);
}

int qimg_discard(struct qimg *q, uint64_t off, uint64_t len)
{
    return zero_range(q, off, len, true, true);
}

/* --- map --- */

int qimg_map(struct qimg *q, uint64_t off, uint64_t len, struct qimg_extent *x)
{
    memset(x, 0, sizeof(*x));
    if (q->raw) {
        x->state = QIMG_DATA;
        x->host = off;
        x->len = len;
        return 0;
    }
    uint64_t cs = q->cluster_size, gc = off / cs;
    uint64_t n = cs - off % cs < len ? cs - off % cs : len;
    uint64_t e, host;
    enum kind k;
    int r;
    if ((r = entry_get(q, gc, &e)) < 0 || (r = classify(q, e, &k, &host)) < 0)
        return r;
    while (n < len && (gc + 1) % q->l2_entries) {
        uint64_t e2, h2;
        enum kind k2;
        if ((r = entry_get(q, gc + 1, &e2)) < 0 || (r = classify(q, e2, &k2, &h2)) < 0)
            return r;
        if (k2 != k || k == K_COMPRESSED ||
            (k == K_NORMAL && h2 != host + (gc + 1 - off / cs) * cs))
            break;
        gc++;
        n += cs < len - n ? cs : len - n;
    }
    x->len = n;
    switch (k) {
    case K_NORMAL:
        x->state = QIMG_DATA;
        x->host = host + off % cs;
        break;
    case K_ZERO:
        x->state = QIMG_ZERO;
        break;
    case K_COMPRESSED:
        x->state = QIMG_COMPRESSED;
        break;
    case K_UNALLOC:
        x->state = QIMG_UNALLOC;
        if (q->backing && off < q->backing->size) {
            uint64_t bl = q->backing->size - off < n ? q->backing->size - off : n;
            if ((r = qimg_map(q->backing, off, bl, x)) < 0)
                return r;
            x->depth++;
        }
        break;
    }
    return 0;
}

/* qcow2 internal snapshots: reading and validating the snapshot table,
 * create, apply (goto) and delete, and the reference walks they share (raise
 * or drop the refcount of every cluster an L1 table reaches; recompute the
 * COPIED flags of the active tables).  Model and write ordering: qcow2.h. */
#include "block/qcow2.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint16_t be16_at(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return be16toh(v); }
static uint32_t be32_at(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static uint64_t be64_at(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }
static void put_be16(uint8_t *p, uint16_t v) { v = htobe16(v); memcpy(p, &v, 2); }
static void put_be32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }
static void put_be64(uint8_t *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); }

/* An I/O-path failure (message in q->err) reported through e. */
static int io_err(struct qimg *q, int r, struct err *e)
{
    if (r == -ENOMEM && !q->err.msg[0])
        return err_set(e, r, "out of memory");
    return err_set(e, r, "%s", q->err.msg[0] ? q->err.msg : strerror(-r));
}

void qcow2_l2_cache_drop(struct qimg *q)
{
    for (unsigned k = 0; k < QCOW2_L2_CACHE; k++)
        q->l2c[k].off = 0;
}

int qcow2_l1_write_all(struct qimg *q)
{
    uint64_t n = q->l1_size;
    if (!n)
        return 0;
    uint64_t *be = malloc(n * 8);
    if (!be)
        return err_set(&q->err, -ENOMEM, "out of memory");
    for (uint64_t i = 0; i < n; i++)
        be[i] = htobe64(q->l1[i]);
    int r = qcow2_pwrite_full(q, be, n * 8, q->l1_off);
    free(be);
    return r;
}

/* --- the snapshot table --- */

void qimg_snapshots_free(struct qimg_snapshot *s, uint32_t n)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < n; i++) {
        free(s[i].id);
        free(s[i].name);
        free(s[i].extra);
    }
    free(s);
}

int qimg_snapshot_find(const struct qimg_snapshot *s, uint32_t n, const char *key)
{
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(s[i].id, key))
            return (int)i;
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(s[i].name, key))
            return (int)i;
    return -1;
}

/* Is an L1 table at off with n entries plausible (aligned, inside the file,
 * not over the header, bounded)? */
static int check_l1_table(struct qimg *q, uint64_t off, uint64_t n, const char *what,
                          struct err *e)
{
    if (n * 8 > QCOW2_MAX_L1_BYTES)
        return err_set(e, -EINVAL, "%s: %s: L1 table too large (%llu entries)", q->path, what,
                       (unsigned long long)n);
    if (!n)
        return 0;
    if (off % q->cluster_size || off < q->cluster_size || off > q->file_size ||
        n * 8 > q->file_size - off)
        return err_set(e, -EINVAL, "%s: %s: L1 table at %#llx (%llu entries) is unaligned, over "
                       "the header or past the end of the file", q->path, what,
                       (unsigned long long)off, (unsigned long long)n);
    return 0;
}

int qimg_snapshots_read(struct qimg *q, struct qimg_snapshot **out, struct err *e)
{
    *out = NULL;
    if (q->raw)
        return err_set(e, -ENOTSUP, "%s: raw images have no snapshots", q->path);
    uint32_t n = q->nb_snapshots;
    if (!n) {
        q->snapshots_bytes = 0;
        return 0;
    }
    struct qimg_snapshot *s = calloc(n, sizeof(*s));
    if (!s)
        return err_set(e, -ENOMEM, "out of memory");
    uint64_t p = q->snapshots_off, used = 0;
    int r = 0;
    if (p % q->cluster_size || p < q->cluster_size) {
        r = err_set(e, -EINVAL, "%s: snapshot table offset %#llx is unaligned or over the "
                    "header", q->path, (unsigned long long)p);
        goto fail;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint8_t h[40];
        if (used + 40 > QCOW2_MAX_SNAPSHOT_TABLE || p + used > q->file_size ||
            q->file_size - (p + used) < 40) {
            r = err_set(e, -EINVAL, "%s: snapshot table entry %u lies past the end of the file "
                        "or the %u-byte table limit", q->path, i, QCOW2_MAX_SNAPSHOT_TABLE);
            goto fail;
        }
        if ((r = qcow2_pread_full(q, h, 40, p + used)) < 0) {
            io_err(q, r, e);
            goto fail;
        }
        struct qimg_snapshot *sn = &s[i];
        sn->l1_off = be64_at(h);
        sn->l1_size = be32_at(h + 8);
        uint32_t idl = be16_at(h + 12), namel = be16_at(h + 14);
        sn->date_sec = be32_at(h + 16);
        sn->date_nsec = be32_at(h + 20);
        sn->vm_clock_nsec = be64_at(h + 24);
        sn->vm_state_size = be32_at(h + 32);
        sn->extra_size = be32_at(h + 36);
        sn->disk_size = q->size;
        sn->icount = UINT64_MAX;
        if (sn->extra_size > QCOW2_MAX_SNAPSHOT_EXTRA) {
            r = err_set(e, -EINVAL, "%s: snapshot %u: extra data too large (%u bytes, at most "
                        "%u)", q->path, i, sn->extra_size, QCOW2_MAX_SNAPSHOT_EXTRA);
            goto fail;
        }
        if (idl == 0 || idl > QCOW2_MAX_SNAPSHOT_NAME || namel > QCOW2_MAX_SNAPSHOT_NAME) {
            r = err_set(e, -EINVAL, "%s: snapshot %u: ID length %u or name length %u out of "
                        "range (ID 1..%u, name 0..%u)", q->path, i, idl, namel,
                        QCOW2_MAX_SNAPSHOT_NAME, QCOW2_MAX_SNAPSHOT_NAME);
            goto fail;
        }
        uint64_t var = (uint64_t)sn->extra_size + idl + namel;
        uint64_t len = (40 + var + 7) & ~7ull;
        if (used + len > QCOW2_MAX_SNAPSHOT_TABLE || q->file_size - (p + used) < 40 + var) {
            r = err_set(e, -EINVAL, "%s: snapshot %u lies past the end of the file", q->path, i);
            goto fail;
        }
        uint8_t *v = malloc(var + 1);
        sn->extra = malloc(sn->extra_size ? sn->extra_size : 1);
        sn->id = calloc(1, idl + 1);
        sn->name = calloc(1, namel + 1);
        if (!v || !sn->extra || !sn->id || !sn->name) {
            free(v);
            r = err_set(e, -ENOMEM, "out of memory");
            goto fail;
        }
        if ((r = qcow2_pread_full(q, v, var, p + used + 40)) < 0) {
            free(v);
            io_err(q, r, e);
            goto fail;
        }
        memcpy(sn->extra, v, sn->extra_size);
        memcpy(sn->id, v + sn->extra_size, idl);
        memcpy(sn->name, v + sn->extra_size + idl, namel);
        free(v);
        if (strlen(sn->id) != idl || strlen(sn->name) != namel) {
            r = err_set(e, -EINVAL, "%s: snapshot %u: ID or name contains a NUL byte", q->path,
                        i);
            goto fail;
        }
        if (sn->extra_size >= 8)
            sn->vm_state_size = be64_at(sn->extra);
        if (sn->extra_size >= 16)
            sn->disk_size = be64_at(sn->extra + 8);
        if (sn->extra_size >= 24)
            sn->icount = be64_at(sn->extra + 16);
        if (sn->disk_size > (1ull << 61) || sn->disk_size % 512) {
            char pn[96];
            r = err_set(e, -EINVAL, "%s: snapshot '%s': invalid disk size %llu", q->path,
                        qimg_printable(pn, sizeof(pn), sn->name, namel),
                        (unsigned long long)sn->disk_size);
            goto fail;
        }
        uint64_t per_l1 = q->cluster_size * q->l2_entries;
        if ((uint64_t)sn->l1_size < (sn->disk_size + per_l1 - 1) / per_l1) {
            char pn[96];
            r = err_set(e, -EINVAL, "%s: snapshot '%s': L1 table (%u entries) too small for "
                        "its disk size %llu", q->path,
                        qimg_printable(pn, sizeof(pn), sn->name, namel), sn->l1_size,
                        (unsigned long long)sn->disk_size);
            goto fail;
        }
        char what[112], pn[96];
        snprintf(what, sizeof(what), "snapshot '%s'",
                 qimg_printable(pn, sizeof(pn), sn->name, namel));
        if ((r = check_l1_table(q, sn->l1_off, sn->l1_size, what, e)) < 0)
            goto fail;
        for (uint32_t k = 0; k < i; k++)
            if (!strcmp(s[k].id, sn->id)) {
                char pi[96];
                r = err_set(e, -EINVAL, "%s: two snapshots have the ID '%s'", q->path,
                            qimg_printable(pi, sizeof(pi), sn->id, idl));
                goto fail;
            }
        used += len;
    }
    q->snapshots_bytes = used;
    *out = s;
    return 0;
fail:
    qimg_snapshots_free(s, n);
    return r;
}

/* Write a snapshot table holding s[0..n) into new clusters, switch the header
 * to it, then free the old table. */
static int table_write(struct qimg *q, const struct qimg_snapshot *s, uint32_t n, struct err *e)
{
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < n; i++)
        bytes += (40 + (uint64_t)s[i].extra_size + strlen(s[i].id) + strlen(s[i].name) + 7) &
                 ~7ull;
    if (bytes > QCOW2_MAX_SNAPSHOT_TABLE)
        return err_set(e, -ENOSPC, "%s: the snapshot table would exceed %u bytes", q->path,
                       QCOW2_MAX_SNAPSHOT_TABLE);
    uint64_t cs = q->cluster_size, off = 0;
    int r;
    if (n) {
        uint8_t *buf = calloc(1, bytes);
        if (!buf)
            return err_set(e, -ENOMEM, "out of memory");
        uint64_t p = 0;
        for (uint32_t i = 0; i < n; i++) {
            size_t idl = strlen(s[i].id), namel = strlen(s[i].name);
            uint8_t *h = buf + p;
            put_be64(h, s[i].l1_off);
            put_be32(h + 8, s[i].l1_size);
            put_be16(h + 12, (uint16_t)idl);
            put_be16(h + 14, (uint16_t)namel);
            put_be32(h + 16, s[i].date_sec);
            put_be32(h + 20, s[i].date_nsec);
            put_be64(h + 24, s[i].vm_clock_nsec);
            put_be32(h + 32, s[i].vm_state_size > UINT32_MAX ? 0 : (uint32_t)s[i].vm_state_size);
            put_be32(h + 36, s[i].extra_size);
            memcpy(h + 40, s[i].extra, s[i].extra_size);
            memcpy(h + 40 + s[i].extra_size, s[i].id, idl);
            memcpy(h + 40 + s[i].extra_size + idl, s[i].name, namel);
            p += (40 + s[i].extra_size + idl + namel + 7) & ~7ull;
        }
        int64_t a = qcow2_alloc(q, (bytes + cs - 1) / cs);
        if (a < 0) {
            free(buf);
            return io_err(q, (int)a, e);
        }
        off = (uint64_t)a;
        r = qcow2_pwrite_full(q, buf, bytes, off);
        free(buf);
        if (r < 0 || (r = qimg_flush(q)) < 0)
            return io_err(q, r, e);
    }
    uint8_t h[12];
    put_be32(h, n);
    put_be64(h + 4, off);
    if ((r = qcow2_pwrite_full(q, h, 12, 60)) < 0 || (r = qimg_flush(q)) < 0)
        return io_err(q, r, e);
    uint64_t old_off = q->snapshots_off, old_bytes = q->nb_snapshots ? q->snapshots_bytes : 0;
    q->nb_snapshots = n;
    q->snapshots_off = off;
    q->snapshots_bytes = bytes;
    if (old_bytes && (r = qcow2_rc_update(q, old_off, old_bytes, -1)) < 0)
        return io_err(q, r, e);
    return 0;
}

/* --- reference walks --- */

/* Add delta (+1 or -1) to the refcount of every cluster the L1 table l1[0..n)
 * reaches: per L2 table, its data clusters first, then the table.  On +1,
 * COPIED is cleared in the L2 tables (now shared).  The L1 entries are not
 * written here. */
static int l1_refs(struct qimg *q, const uint64_t *l1, uint64_t n, int delta)
{
    uint64_t cs = q->cluster_size;
    uint64_t *l2 = malloc(cs);
    if (!l2)
        return err_set(&q->err, -ENOMEM, "out of memory");
    unsigned x = 62 - (q->cluster_bits - 8);
    int r = 0;
    for (uint64_t i = 0; i < n && r == 0; i++) {
        uint64_t toff = l1[i] & QCOW2_OFFSET_MASK;
        if (!toff)
            continue;
        if (toff % cs || toff + cs > q->file_size || qcow2_meta_overlap(q, toff, cs)) {
            r = err_set(&q->err, -EIO, "%s: L1 entry %llu: invalid L2 table offset %#llx "
                        "(corrupt image)", q->path, (unsigned long long)i,
                        (unsigned long long)toff);
            break;
        }
        if ((r = qcow2_pread_full(q, l2, cs, toff)) < 0)
            break;
        bool changed = false;
        for (uint64_t j = 0; j < q->l2_entries && r == 0; j++) {
            uint64_t e = be64toh(l2[j]);
            if (e & QCOW2_COMPRESSED) {
                uint64_t coff = e & ((1ull << x) - 1) & ((1ull << 56) - 1);
                uint64_t nsec = ((e >> x) & ((1ull << (q->cluster_bits - 8)) - 1)) + 1;
                if (coff < cs || coff >= q->file_size)
                    r = err_set(&q->err, -EIO, "%s: compressed cluster at %#llx is outside the "
                                "file (corrupt image)", q->path, (unsigned long long)coff);
                else
                    r = qcow2_rc_update(q, coff & ~511ull, nsec * 512, delta);
                continue;
            }
            uint64_t off = e & QCOW2_OFFSET_MASK;
            if (!off)
                continue;
            if (off + cs > q->file_size || qcow2_meta_overlap(q, off, cs)) {
                r = err_set(&q->err, -EIO, "%s: data cluster %#llx is past the end of the file "
                            "or inside metadata (corrupt image)", q->path,
                            (unsigned long long)off);
                break;
            }
            r = qcow2_rc_update(q, off, cs, delta);
            if (r == 0 && delta > 0 && (e & QCOW2_COPIED)) {
                l2[j] = htobe64(e & ~QCOW2_COPIED);
                changed = true;
            }
        }
        if (r == 0 && changed)
            r = qcow2_pwrite_full(q, l2, cs, toff);
        if (r == 0)
            r = qcow2_rc_update(q, toff, cs, delta);
    }
    free(l2);
    return r;
}

/* Set COPIED in the active L1 and its L2 tables exactly where the refcount
 * is 1 (after references were dropped), and write q->l1. */
static int copied_fixup(struct qimg *q)
{
    uint64_t cs = q->cluster_size;
    uint64_t *l2 = malloc(cs);
    if (!l2)
        return err_set(&q->err, -ENOMEM, "out of memory");
    int r = 0;
    bool l1_changed = false;
    for (uint64_t i = 0; i < q->l1_size && r == 0; i++) {
        uint64_t toff = q->l1[i] & QCOW2_OFFSET_MASK, rc;
        if (!toff)
            continue;
        if ((r = qcow2_rc_get(q, toff / cs, &rc)) < 0)
            break;
        uint64_t want = rc == 1 ? toff | QCOW2_COPIED : toff;
        if (want != q->l1[i]) {
            q->l1[i] = want;
            l1_changed = true;
        }
        if ((r = qcow2_pread_full(q, l2, cs, toff)) < 0)
            break;
        bool changed = false;
        for (uint64_t j = 0; j < q->l2_entries && r == 0; j++) {
            uint64_t e = be64toh(l2[j]), off = e & QCOW2_OFFSET_MASK;
            if ((e & QCOW2_COMPRESSED) || !off)
                continue;
            if ((r = qcow2_rc_get(q, off / cs, &rc)) < 0)
                break;
            uint64_t ne = rc == 1 ? e | QCOW2_COPIED : e & ~QCOW2_COPIED;
            if (ne != e) {
                l2[j] = htobe64(ne);
                changed = true;
            }
        }
        if (r == 0 && changed)
            r = qcow2_pwrite_full(q, l2, cs, toff);
    }
    free(l2);
    if (r == 0 && l1_changed)
        r = qcow2_l1_write_all(q);
    return r;
}

/* Read and validate an L1 table (host byte order). */
static int l1_read(struct qimg *q, uint64_t off, uint32_t n, uint64_t **out, struct err *e)
{
    *out = calloc(n ? n : 1, 8);
    if (!*out)
        return err_set(e, -ENOMEM, "out of memory");
    int r = qcow2_pread_full(q, *out, (uint64_t)n * 8, off);
    if (r < 0) {
        free(*out);
        *out = NULL;
        return io_err(q, r, e);
    }
    for (uint32_t i = 0; i < n; i++) {
        uint64_t v = be64toh((*out)[i]), t = v & QCOW2_OFFSET_MASK;
        (*out)[i] = v;
        if ((v & 0x7f000000000001ffull) ||
            (t && (t % q->cluster_size || t + q->cluster_size > q->file_size ||
                   qcow2_meta_overlap(q, t, q->cluster_size)))) {
            free(*out);
            *out = NULL;
            return err_set(e, -EINVAL, "%s: snapshot L1 entry %u (%#llx) is invalid (corrupt "
                           "image)", q->path, i, (unsigned long long)v);
        }
    }
    return 0;
}

static int check_writable(struct qimg *q, struct err *e)
{
    if (q->raw)
        return err_set(e, -ENOTSUP, "%s: raw images have no internal snapshots (use qcow2)",
                       q->path);
    if (q->ro)
        return err_set(e, -EROFS, "%s: opened read-only", q->path);
    return 0;
}

/* --- create, apply, delete --- */

int qimg_snapshot_create(struct qimg *q, const char *name, struct err *e)
{
    int r = check_writable(q, e);
    if (r < 0)
        return r;
    if (!name[0] || strlen(name) > 255)
        return err_set(e, -EINVAL, "snapshot names must be 1 to 255 bytes long");
    if (q->nb_snapshots >= QCOW2_MAX_SNAPSHOTS)
        return err_set(e, -ENOSPC, "%s: already %u snapshots", q->path, q->nb_snapshots);
    struct qimg_snapshot *s;
    uint32_t n = q->nb_snapshots;
    if ((r = qimg_snapshots_read(q, &s, e)) < 0)
        return r;
    uint64_t *copy = NULL;
    struct qimg_snapshot *ns = NULL;
    unsigned long long max_id = 0;
    for (uint32_t i = 0; i < n; i++) {
        char *end;
        unsigned long long v = strtoull(s[i].id, &end, 10);
        if (!*end && v > max_id)
            max_id = v;
        if (!strcmp(s[i].name, name) || !strcmp(s[i].id, name)) {
            r = err_set(e, -EEXIST, "%s: a snapshot named '%s' already exists (ID %s)", q->path,
                        name, s[i].id);
            goto out;
        }
    }
    if (!(ns = realloc(s, (n + 1) * sizeof(*s)))) {
        r = err_set(e, -ENOMEM, "out of memory");
        goto out;
    }
    s = ns;
    struct qimg_snapshot *sn = &s[n];
    memset(sn, 0, sizeof(*sn));
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    sn->date_sec = (uint32_t)now.tv_sec;
    sn->date_nsec = (uint32_t)now.tv_nsec;
    sn->disk_size = q->size;
    sn->icount = UINT64_MAX;
    sn->extra_size = 24;
    sn->extra = calloc(1, 24);
    sn->name = strdup(name);
    if (asprintf(&sn->id, "%llu", max_id + 1) < 0)
        sn->id = NULL;
    n++;                                  /* s[n-1] is freed with the rest */
    if (!sn->extra || !sn->name || !sn->id) {
        r = err_set(e, -ENOMEM, "out of memory");
        goto out;
    }
    put_be64(sn->extra, 0);               /* vm_state_size_large */
    put_be64(sn->extra + 8, q->size);     /* disk size */
    put_be64(sn->extra + 16, 0);          /* icount: 0, as qemu-img writes */
    qcow2_l2_cache_drop(q);
    /* 1. the active L1's clusters gain the snapshot's reference */
    if ((r = qimg_flush(q)) < 0 || (r = l1_refs(q, q->l1, q->l1_size, +1)) < 0) {
        io_err(q, r, e);
        goto out;
    }
    for (uint32_t i = 0; i < q->l1_size; i++)
        q->l1[i] &= ~QCOW2_COPIED;
    if ((r = qcow2_l1_write_all(q)) < 0) {
        io_err(q, r, e);
        goto out;
    }
    /* 2. the L1 copy */
    sn->l1_size = q->l1_size;
    if (q->l1_size) {
        uint64_t bytes = (uint64_t)q->l1_size * 8;
        int64_t a = qcow2_alloc(q, (bytes + q->cluster_size - 1) / q->cluster_size);
        if (a < 0) {
            r = io_err(q, (int)a, e);
            goto out;
        }
        sn->l1_off = (uint64_t)a;
        if (!(copy = malloc(bytes))) {
            r = err_set(e, -ENOMEM, "out of memory");
            goto out;
        }
        for (uint32_t i = 0; i < q->l1_size; i++)
            copy[i] = htobe64(q->l1[i]);
        if ((r = qcow2_pwrite_full(q, copy, bytes, sn->l1_off)) < 0) {
            io_err(q, r, e);
            goto out;
        }
    }
    /* 3. the table naming it */
    r = table_write(q, s, n, e);
out:
    qcow2_l2_cache_drop(q);
    free(copy);
    qimg_snapshots_free(s, n);
    return r;
}

/* The start of apply and delete: the image must be writable, its table
 * readable, and the snapshot named by key (ID or name) in it.  On success
 * the caller owns *s (n entries) and k is the snapshot's index. */
static int load_for_change(struct qimg *q, const char *key, struct qimg_snapshot **s,
                           uint32_t *n, int *k, struct err *e)
{
    int r = check_writable(q, e);
    if (r < 0)
        return r;
    *n = q->nb_snapshots;
    if ((r = qimg_snapshots_read(q, s, e)) < 0)
        return r;
    *k = qimg_snapshot_find(*s, *n, key);
    if (*k < 0) {
        qimg_snapshots_free(*s, *n);
        return err_set(e, -ENOENT, "%s: no snapshot with ID or name '%s'", q->path, key);
    }
    return 0;
}

int qimg_snapshot_apply(struct qimg *q, const char *key, struct err *e)
{
    struct qimg_snapshot *s;
    uint32_t n;
    int k, r = load_for_change(q, key, &s, &n, &k, e);
    if (r < 0)
        return r;
    uint64_t *snl1 = NULL, *old = NULL;
    struct qimg_snapshot *sn = &s[k];
    if ((r = l1_read(q, sn->l1_off, sn->l1_size, &snl1, e)) < 0)
        goto out;
    uint32_t old_size = q->l1_size;
    uint64_t old_off = q->l1_off, cs = q->cluster_size;
    uint32_t new_size = sn->l1_size > old_size ? sn->l1_size : old_size;
    if (!(old = malloc((old_size ? old_size : 1) * 8ull))) {
        r = err_set(e, -ENOMEM, "out of memory");
        goto out;
    }
    memcpy(old, q->l1, old_size * 8ull);
    qcow2_l2_cache_drop(q);
    /* 1. what the snapshot reaches gains the active L1's reference */
    if ((r = qimg_flush(q)) < 0 || (r = l1_refs(q, snl1, sn->l1_size, +1)) < 0) {
        io_err(q, r, e);
        goto out;
    }
    /* 2. the active L1 becomes a copy of the snapshot's */
    if (new_size > old_size) {
        uint64_t *nl1 = calloc(new_size, 8);
        if (!nl1) {
            r = err_set(e, -ENOMEM, "out of memory");
            goto out;
        }
        free(q->l1);
        q->l1 = nl1;
    }
    memset(q->l1, 0, new_size * 8ull);
    for (uint32_t i = 0; i < sn->l1_size; i++)
        q->l1[i] = snl1[i] & ~QCOW2_COPIED;
    if (new_size > old_size) {
        int64_t a = qcow2_alloc(q, (new_size * 8ull + cs - 1) / cs);
        if (a < 0) {
            r = io_err(q, (int)a, e);
            goto out;
        }
        q->l1_off = (uint64_t)a;
        q->l1_size = new_size;
        if ((r = qcow2_l1_write_all(q)) < 0 || (r = qimg_flush(q)) < 0) {
            io_err(q, r, e);
            goto out;
        }
    } else if ((r = qcow2_l1_write_all(q)) < 0) {
        io_err(q, r, e);
        goto out;
    }
    /* size (24), crypt (32), l1_size (36), l1_table_offset (40): one write */
    uint8_t h[24];
    put_be64(h, sn->disk_size);
    put_be32(h + 8, 0);
    put_be32(h + 12, q->l1_size);
    put_be64(h + 16, q->l1_off);
    if ((r = qcow2_pwrite_full(q, h, 24, 24)) < 0 || (r = qimg_flush(q)) < 0) {
        io_err(q, r, e);
        goto out;
    }
    q->size = sn->disk_size;
    /* 3. the old active L1 lets go of what it reached */
    if ((r = l1_refs(q, old, old_size, -1)) < 0 ||
        (q->l1_off != old_off && old_size &&
         (r = qcow2_rc_update(q, old_off, old_size * 8ull, -1)) < 0) ||
        (r = copied_fixup(q)) < 0 || (r = qimg_flush(q)) < 0) {
        io_err(q, r, e);
        goto out;
    }
out:
    qcow2_l2_cache_drop(q);
    free(snl1);
    free(old);
    qimg_snapshots_free(s, n);
    return r;
}

int qimg_snapshot_delete(struct qimg *q, const char *key, struct err *e)
{
    struct qimg_snapshot *s;
    uint32_t n;
    int k, r = load_for_change(q, key, &s, &n, &k, e);
    if (r < 0)
        return r;
    uint64_t *snl1 = NULL;
    struct qimg_snapshot gone = s[k];
    if ((r = l1_read(q, gone.l1_off, gone.l1_size, &snl1, e)) < 0)
        goto out;
    /* 1. the table without it */
    memmove(&s[k], &s[k + 1], (n - (uint32_t)k - 1) * sizeof(*s));
    s[n - 1] = gone;                      /* still freed below */
    if ((r = table_write(q, s, n - 1, e)) < 0)
        goto out;
    qcow2_l2_cache_drop(q);
    /* 2. its references and its L1 table; 3. COPIED where now unshared */
    if ((r = l1_refs(q, snl1, gone.l1_size, -1)) < 0 ||
        (gone.l1_size && (r = qcow2_rc_update(q, gone.l1_off, gone.l1_size * 8ull, -1)) < 0) ||
        (r = copied_fixup(q)) < 0 || (r = qimg_flush(q)) < 0)
        io_err(q, r, e);
out:
    qcow2_l2_cache_drop(q);
    free(snl1);
    qimg_snapshots_free(s, n);
    return r;
}

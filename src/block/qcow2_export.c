/* Exporting a qcow2 image at an internal snapshot into a new image on the
 * same backing file (qcow2_export.h has the design and why reading without
 * the lock is safe). */
#include "block/qcow2_export.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OPEN_TRIES 5            /* opens without the lock that met a table mid-update */
#define COPY_CHUNK (1u << 20)

static int io_err(struct qimg *q, int r, struct err *e)
{
    if (r == -ENOMEM && !q->err.msg[0])
        return err_set(e, r, "out of memory");
    return err_set(e, r, "%s", q->err.msg[0] ? q->err.msg : strerror(-r));
}

/* Switch a read-only q to snapshot key's L1 table and virtual size. */
static int use_snapshot(struct qimg *q, const char *key, struct err *e)
{
    struct qimg_snapshot *s;
    uint32_t n = q->nb_snapshots;
    int r = qimg_snapshots_read(q, &s, e);
    if (r < 0)
        return r;
    int k = qimg_snapshot_find(s, n, key);
    if (k < 0) {
        qimg_snapshots_free(s, n);
        return err_set(e, -ENOENT, "%s: no snapshot with ID or name '%s'", q->path, key);
    }
    uint64_t off = s[k].l1_off, cs = q->cluster_size;
    uint32_t size = s[k].l1_size;
    uint64_t disk_size = s[k].disk_size;
    qimg_snapshots_free(s, n);
    uint64_t *l1 = calloc(size ? size : 1, 8);
    if (!l1)
        return err_set(e, -ENOMEM, "out of memory");
    if (size && (r = qcow2_pread_full(q, l1, (uint64_t)size * 8, off)) < 0) {
        free(l1);
        return io_err(q, r, e);
    }
    for (uint32_t i = 0; i < size; i++) {
        uint64_t v = be64toh(l1[i]), t = v & QCOW2_OFFSET_MASK;
        l1[i] = v;
        if ((v & 0x7f000000000001ffull) ||
            (t && (t % cs || t < cs || t + cs > q->file_size || qcow2_meta_overlap(q, t, cs)))) {
            free(l1);
            return err_set(e, -EINVAL, "%s: snapshot '%s': L1 entry %u (%#llx) is invalid "
                           "(corrupt image)", q->path, key, i, (unsigned long long)v);
        }
    }
    free(q->l1);
    q->l1 = l1;
    q->l1_size = size;
    q->l1_off = off;
    q->size = disk_size;
    qcow2_l2_cache_drop(q);
    return 0;
}

static int open_once(struct qimg **out, const char *path, const char *key, bool lock,
                     struct err *e)
{
    *out = NULL;
    struct qimg *q = calloc(1, sizeof(*q));
    if (!q)
        return err_set(e, -ENOMEM, "out of memory");
    q->fd = -1;
    q->ro = true;
    int r = 0;
    if (!(q->path = strdup(path))) {
        r = err_set(e, -ENOMEM, "out of memory");
        goto fail;
    }
    q->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (q->fd < 0 || fstat(q->fd, &st) < 0) {
        r = err_set(e, -errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        r = err_set(e, -EINVAL, "%s: not a regular file", path);
        goto fail;
    }
    q->file_size = (uint64_t)st.st_size;
    struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET };
    if (lock && fcntl(q->fd, F_OFD_SETLK, &fl) < 0) {
        r = err_set(e, -EBUSY, "%s: in use by a VM or process that writes it (image locked)",
                    path);
        goto fail;
    }
    uint8_t m[4];
    uint32_t magic = 0;
    if (pread(q->fd, m, 4, 0) == 4) {
        memcpy(&magic, m, 4);
        magic = be32toh(magic);
    }
    if (magic != QCOW2_MAGIC) {
        r = err_set(e, -ENOTSUP, "%s: not a qcow2 image", path);
        goto fail;
    }
    if ((r = qcow2_open_meta(q, e)) < 0 || (key && (r = use_snapshot(q, key, e)) < 0))
        goto fail;
    *out = q;
    return 0;
fail:
    qimg_close(q);
    return r;
}

int qimg_open_snapshot(struct qimg **out, const char *path, const char *key, unsigned flags,
                       struct err *e)
{
    bool lock = !key || !(flags & QIMG_EXPORT_NO_LOCK);
    for (unsigned i = 1;; i++) {
        int r = open_once(out, path, key, lock, e);
        /* a writer may have been between two writes of a table we validate */
        if (r == 0 || lock || (r != -EINVAL && r != -EIO) || i == OPEN_TRIES)
            return r;
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL);
    }
}

/* The source's backing file as an absolute path (it is resolved relative to
 * the source's directory, as qcow2 does), or NULL when it has none. */
static int backing_abs(const struct qimg *q, char **out, struct err *e)
{
    *out = NULL;
    if (!q->backing_name)
        return 0;
    char *joined = NULL;
    if (q->backing_name[0] == '/') {
        joined = strdup(q->backing_name);
    } else {
        char *dup = strdup(q->path);
        if (dup && asprintf(&joined, "%s/%s", dirname(dup), q->backing_name) < 0)
            joined = NULL;
        free(dup);
    }
    if (!joined)
        return err_set(e, -ENOMEM, "out of memory");
    *out = realpath(joined, NULL);
    int r = *out ? 0 : err_set(e, -errno, "%s: its backing file %s: %s", q->path, joined,
                               strerror(errno));
    free(joined);
    return r;
}

int qimg_export(const char *src, const char *key, const char *dst, unsigned flags,
                struct qimg_export_stats *stats, struct err *e)
{
    struct qimg_export_stats st = { 0 };
    struct qimg *q = NULL, *out = NULL;
    char *backing = NULL;
    uint8_t *buf = NULL;
    int r = qimg_open_snapshot(&q, src, key, flags, e);
    if (r < 0)
        return r;
    if ((r = backing_abs(q, &backing, e)) < 0)
        goto done;
    if (!q->size) {
        r = err_set(e, -EINVAL, "%s: %s has a virtual size of 0", src, key ? key : "the image");
        goto done;
    }
    struct qimg_create_opts o = {
        .fmt = "qcow2", .size = q->size, .cluster_bits = q->cluster_bits, .version = 3,
        .backing = backing, .backing_fmt = backing && q->backing_fmt[0] ? q->backing_fmt : NULL,
    };
    if ((r = qimg_create(dst, &o, e)) < 0 || (r = qimg_open(&out, dst, "qcow2", false, e)) < 0)
        goto done;
    uint64_t cs = q->cluster_size, chunk = cs > COPY_CHUNK ? cs : COPY_CHUNK;
    if (!(buf = malloc(chunk))) {
        r = err_set(e, -ENOMEM, "out of memory");
        goto done;
    }
    st.size = q->size;
    for (uint64_t off = 0; off < q->size;) {
        struct qimg_extent x;
        if ((r = qimg_map(q, off, q->size - off, &x)) < 0) {
            io_err(q, r, e);
            goto done;
        }
        if (!x.len) {
            r = err_set(e, -EIO, "%s: no progress mapping offset %llu", src,
                        (unsigned long long)off);
            goto done;
        }
        switch (x.state) {
        case QIMG_DATA:
        case QIMG_COMPRESSED:
            for (uint64_t p = 0; p < x.len;) {
                uint64_t n = x.len - p < chunk ? x.len - p : chunk;
                if ((r = qimg_pread(q, buf, n, off + p)) < 0) {
                    io_err(q, r, e);
                    goto done;
                }
                if ((r = qimg_pwrite(out, buf, n, off + p)) < 0) {
                    io_err(out, r, e);
                    goto done;
                }
                p += n;
            }
            st.data_bytes += x.len;
            st.data_clusters += (off % cs + x.len + cs - 1) / cs;
            break;
        case QIMG_ZERO:
            if ((r = qimg_write_zeroes(out, off, x.len, true)) < 0) {
                io_err(out, r, e);
                goto done;
            }
            st.zero_bytes += x.len;
            break;
        case QIMG_UNALLOC:
            break;
        }
        off += x.len;
    }
    if ((r = qimg_flush(out)) < 0)
        io_err(out, r, e);
done:
    free(buf);
    free(backing);
    qimg_close(out);
    qimg_close(q);
    if (r == 0 && stats)
        *stats = st;
    return r;
}

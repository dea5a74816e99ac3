/* qcow2: opening (header, extensions, validation), the backing chain,
 * creating images, and the file I/O helpers shared by the other qcow2_*.c
 * files.  See qcow2.h for the design. */
#include "block/qcow2.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXT_END 0x00000000u
#define EXT_BACKING_FMT 0xe2792acau
#define EXT_FEATURES 0x6803f857u

static uint32_t be32_at(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static uint64_t be64_at(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }
static void put_be32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }
static void put_be64(uint8_t *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); }

/* The escaped form of c in out (up to 4 bytes); its length. */
static size_t escape_byte(unsigned char c, char *out)
{
    static const char hex[] = "0123456789abcdef";
    if (c == '\\') {
        out[0] = out[1] = '\\';
        return 2;
    }
    if (c >= 0x20 && c < 0x7f) {
        out[0] = (char)c;
        return 1;
    }
    out[0] = '\\';
    out[1] = 'x';
    out[2] = hex[c >> 4];
    out[3] = hex[c & 15];
    return 4;
}

const char *qimg_printable(char *out, size_t outlen, const char *s, size_t n)
{
    char tmp[4];
    size_t total = 0, i, o = 0;
    if (!outlen)
        return out;
    for (i = 0; i < n && s[i]; i++)
        total += escape_byte((unsigned char)s[i], tmp);
    size_t room = total + 1 <= outlen ? outlen - 1 : outlen > 4 ? outlen - 4 : 0;
    for (i = 0; i < n && s[i]; i++) {
        size_t k = escape_byte((unsigned char)s[i], tmp);
        if (o + k > room)
            break;
        memcpy(out + o, tmp, k);
        o += k;
    }
    if (total + 1 > outlen && outlen > 4) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = 0;
    return out;
}

char *qimg_printable_dup(const char *s)
{
    size_t n = strlen(s), len = 4 * n + 1;
    char *out = malloc(len);
    return out ? (char *)qimg_printable(out, len, s, n) : NULL;
}

int qcow2_pread_full(struct qimg *q, void *buf, uint64_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = pread(q->fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return err_set(&q->err, -errno, "%s: read at %llu: %s", q->path,
                           (unsigned long long)off, strerror(errno));
        if (n == 0)
            return err_set(&q->err, -EIO, "%s: read at %llu: past the end of the file", q->path,
                           (unsigned long long)off);
        p += n;
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return 0;
}

int qcow2_pwrite_full(struct qimg *q, const void *buf, uint64_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = pwrite(q->fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return err_set(&q->err, n < 0 ? -errno : -EIO, "%s: write at %llu: %s", q->path,
                           (unsigned long long)off, n < 0 ? strerror(errno) : "short write");
        p += n;
        off += (uint64_t)n;
        len -= (uint64_t)n;
        if (off > q->file_size)
            q->file_size = off;
    }
    return 0;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return alen && blen && a < b + blen && b < a + alen;
}

bool qcow2_meta_overlap(const struct qimg *q, uint64_t off, uint64_t len)
{
    return ranges_overlap(off, len, 0, q->cluster_size) ||
           ranges_overlap(off, len, q->l1_off, (uint64_t)q->l1_size * 8) ||
           ranges_overlap(off, len, q->rt_off, (uint64_t)q->rt_clusters * q->cluster_size);
}

int qcow2_write_header_incompat(struct qimg *q, uint64_t incompat)
{
    uint8_t b[8];
    put_be64(b, incompat);
    int r = qcow2_pwrite_full(q, b, 8, 72);
    if (r == 0)
        q->incompat = incompat;
    return r;
}

int qimg_probe(const char *path, struct err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, -errno, "%s: %s", path, strerror(errno));
    uint8_t m[4];
    ssize_t n = pread(fd, m, 4, 0);
    close(fd);
    return n == 4 && be32_at(m) == QCOW2_MAGIC;
}

/* Name of an incompatible feature from the image's feature table, if any. */
static void feature_name(const uint8_t *hdr, uint64_t cs, uint32_t hlen, int bit, char *out,
                         size_t outlen)
{
    snprintf(out, outlen, "bit %d", bit);
    uint64_t p = hlen;
    while (p + 8 <= cs) {
        uint32_t type = be32_at(hdr + p), len = be32_at(hdr + p + 4);
        if (type == EXT_END || len > cs - p - 8)
            return;
        if (type == EXT_FEATURES) {
            for (uint32_t i = 0; i + 48 <= len; i += 48) {
                const uint8_t *f = hdr + p + 8 + i;
                if (f[0] == 0 && f[1] == bit) {
                    char name[64];
                    qimg_printable(name, sizeof(name), (const char *)f + 2, 46);
                    snprintf(out, outlen, "bit %d '%s'", bit, name);
                    return;
                }
            }
        }
        p += 8 + (((uint64_t)len + 7) & ~7ull);
    }
}

static int parse_header(struct qimg *q, struct err *e)
{
    uint8_t h[104];
    memset(h, 0, sizeof(h));
    if (q->file_size < 72)
        return err_set(e, -EINVAL, "%s: too short for a qcow2 header (%llu bytes)", q->path,
                       (unsigned long long)q->file_size);
    int r = qcow2_pread_full(q, h, q->file_size < 104 ? 72 : 104, 0);
    if (r < 0)
        return err_set(e, r, "%s", q->err.msg);
    if (be32_at(h) != QCOW2_MAGIC)
        return err_set(e, -EINVAL, "%s: not a qcow2 image (bad magic)", q->path);
    q->version = be32_at(h + 4);
    if (q->version != 2 && q->version != 3)
        return err_set(e, -ENOTSUP, "%s: qcow2 version %u is not supported (2 or 3)", q->path,
                       q->version);
    uint64_t backing_off = be64_at(h + 8);
    uint32_t backing_len = be32_at(h + 16);
    q->cluster_bits = be32_at(h + 20);
    if (q->cluster_bits < QCOW2_MIN_CLUSTER_BITS || q->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
        return err_set(e, -EINVAL, "%s: cluster_bits %u out of range (%d..%d)", q->path,
                       q->cluster_bits, QCOW2_MIN_CLUSTER_BITS, QCOW2_MAX_CLUSTER_BITS);
    q->cluster_size = 1ull << q->cluster_bits;
    q->size = be64_at(h + 24);
    uint32_t crypt = be32_at(h + 32);
    q->l1_size = be32_at(h + 36);
    q->l1_off = be64_at(h + 40);
    q->rt_off = be64_at(h + 48);
    q->rt_clusters = be32_at(h + 56);
    q->nb_snapshots = be32_at(h + 60);
    q->snapshots_off = be64_at(h + 64);
    q->refcount_order = 4;
    q->header_length = 72;
    if (q->version == 3) {
        if (q->file_size < 104)
            return err_set(e, -EINVAL, "%s: truncated v3 header", q->path);
        q->incompat = be64_at(h + 72);
        q->compat = be64_at(h + 80);
        q->autoclear = be64_at(h + 88);
        q->refcount_order = be32_at(h + 96);
        q->header_length = be32_at(h + 100);
        if (q->header_length < 104 || q->header_length % 8 ||
            q->header_length > q->cluster_size)
            return err_set(e, -EINVAL, "%s: invalid header_length %u", q->path, q->header_length);
        if (q->refcount_order > 6)
            return err_set(e, -EINVAL, "%s: refcount_order %u out of range (0..6)", q->path,
                           q->refcount_order);
    }
    if (crypt)
        return err_set(e, -ENOTSUP, "%s: encrypted qcow2 images (crypt_method %u) are not "
                       "supported", q->path, crypt);
    /* the header cluster, for extensions and the backing file name */
    uint64_t hc = q->cluster_size < q->file_size ? q->cluster_size : q->file_size;
    uint8_t *hdr = calloc(1, q->cluster_size);
    if (!hdr)
        return err_set(e, -ENOMEM, "out of memory");
    r = qcow2_pread_full(q, hdr, hc, 0);
    if (r < 0) {
        free(hdr);
        return err_set(e, r, "%s", q->err.msg);
    }
    if (q->incompat & ~QCOW2_INCOMPAT_KNOWN) {
        char names[256] = "", one[80];
        for (int bit = 0; bit < 64; bit++) {
            if (!((q->incompat & ~QCOW2_INCOMPAT_KNOWN) >> bit & 1))
                continue;
            feature_name(hdr, hc, q->header_length, bit, one, sizeof(one));
            if (strlen(names) + strlen(one) + 3 < sizeof(names))
                snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
                         names[0] ? ", " : "", one);
        }
        free(hdr);
        return err_set(e, -ENOTSUP, "%s: unsupported qcow2 incompatible feature(s): %s", q->path,
                       names);
    }
    r = 0;
    if (q->incompat & QCOW2_INCOMPAT_DATA_FILE)
        r = err_set(e, -ENOTSUP, "%s: qcow2 external data files are not supported", q->path);
    else if (q->incompat & QCOW2_INCOMPAT_EXTL2)
        r = err_set(e, -ENOTSUP, "%s: qcow2 extended L2 entries (subclusters) are not supported",
                    q->path);
    else if (!q->ro && !q->repair && (q->incompat & QCOW2_INCOMPAT_CORRUPT))
        r = err_set(e, -EINVAL, "%s: the image is marked corrupt; repair it with "
                    "'petrel img check -r all' (or open it read-only)", q->path);
    if (r == 0 && (q->incompat & QCOW2_INCOMPAT_COMPRESSION)) {
        q->compression = q->header_length > 104 ? hdr[104] : 0;
        if (q->compression != 1)
            r = err_set(e, -ENOTSUP, "%s: unknown compression type %u", q->path, q->compression);
    } else if (r == 0 && q->header_length > 104 && hdr[104] != 0) {
        r = err_set(e, -EINVAL, "%s: compression type %u without the compression type feature "
                    "bit", q->path, hdr[104]);
    }
    /* Header extensions (v2 images have them too: QEMU writes the backing
     * format there), from the end of the header up to the backing file name
     * or, without one, to the end of the first cluster; an END marker, or
     * that limit reached exactly, ends them.  So the header, the extensions
     * and the backing file name never overlap (as QEMU checks). */
    uint64_t p = q->header_length, ext_limit = hc;
    if (r == 0 && backing_off) {
        if (backing_len == 0 || backing_len > 1023)
            r = err_set(e, -EINVAL, "%s: backing file name length %u out of range (1..1023)",
                        q->path, backing_len);
        else if (backing_off < q->header_length)
            r = err_set(e, -EINVAL, "%s: backing file name at %llu overlaps the header (%u "
                        "bytes)", q->path, (unsigned long long)backing_off, q->header_length);
        else if (backing_off > hc || backing_len > hc - backing_off)
            r = err_set(e, -EINVAL, "%s: backing file name at %llu (%u bytes) is outside the "
                        "header cluster", q->path, (unsigned long long)backing_off, backing_len);
        ext_limit = backing_off;
    }
    while (r == 0 && p < ext_limit) {
        if (ext_limit - p < 8) {
            r = err_set(e, -EINVAL, "%s: header extension at %llu runs into the %s", q->path,
                        (unsigned long long)p,
                        backing_off ? "backing file name" : "end of the first cluster");
            break;
        }
        uint32_t type = be32_at(hdr + p), len = be32_at(hdr + p + 4);
        if (type == EXT_END)
            break;
        if (len > ext_limit - p - 8) {
            r = err_set(e, -EINVAL, "%s: header extension 0x%08x at %llu (%u bytes) runs into "
                        "the %s", q->path, type, (unsigned long long)p, len,
                        backing_off ? "backing file name" : "end of the first cluster");
            break;
        }
        if (type == EXT_BACKING_FMT) {
            if (len >= sizeof(q->backing_fmt)) {
                r = err_set(e, -EINVAL, "%s: backing format name too long (%u bytes)", q->path,
                            len);
                break;
            }
            memcpy(q->backing_fmt, hdr + p + 8, len);
            q->backing_fmt[len] = 0;
        }
        p += 8 + (((uint64_t)len + 7) & ~7ull);
    }
    if (r == 0 && backing_off) {
        if (!(q->backing_name = strndup((char *)hdr + backing_off, backing_len)))
            r = err_set(e, -ENOMEM, "out of memory");
        else if (strlen(q->backing_name) != backing_len)
            r = err_set(e, -EINVAL, "%s: backing file name contains a NUL byte", q->path);
    }
    free(hdr);
    return r;
}

static int check_table(struct qimg *q, const char *what, uint64_t off, uint64_t bytes,
                       struct err *e)
{
    if (off % q->cluster_size)
        return err_set(e, -EINVAL, "%s: %s offset %#llx is not cluster aligned", q->path, what,
                       (unsigned long long)off);
    if (off < q->cluster_size)
        return err_set(e, -EINVAL, "%s: %s overlaps the header", q->path, what);
    if (off > q->file_size || bytes > q->file_size - off)
        return err_set(e, -EINVAL, "%s: %s at %#llx (%llu bytes) lies past the end of the file "
                       "(%llu bytes)", q->path, what, (unsigned long long)off,
                       (unsigned long long)bytes, (unsigned long long)q->file_size);
    return 0;
}

int qcow2_open_meta(struct qimg *q, struct err *e)
{
    int r = parse_header(q, e);
    if (r < 0)
        return r;
    uint64_t cs = q->cluster_size;
    q->l2_entries = cs / 8;
    q->rb_entries = cs * 8 >> q->refcount_order;
    q->refcount_max = q->refcount_order == 6 ? UINT64_MAX
                                             : (1ull << (1u << q->refcount_order)) - 1;
    if (q->size > (1ull << 61))
        return err_set(e, -EINVAL, "%s: virtual size %llu is too large", q->path,
                       (unsigned long long)q->size);
    uint64_t per_l1 = cs * q->l2_entries;
    uint64_t need_l1 = (q->size + per_l1 - 1) / per_l1;
    if ((uint64_t)q->l1_size * 8 > QCOW2_MAX_L1_BYTES)
        return err_set(e, -EINVAL, "%s: L1 table too large (%u entries)", q->path, q->l1_size);
    if (q->l1_size < need_l1)
        return err_set(e, -EINVAL, "%s: L1 table too small (%u entries) for the virtual size "
                       "%llu", q->path, q->l1_size, (unsigned long long)q->size);
    if (q->l1_size && (r = check_table(q, "L1 table", q->l1_off, (uint64_t)q->l1_size * 8, e)))
        return r;
    if (q->rt_clusters == 0 || (uint64_t)q->rt_clusters * cs > QCOW2_MAX_RT_BYTES)
        return err_set(e, -EINVAL, "%s: refcount table size %u clusters out of range", q->path,
                       q->rt_clusters);
    if ((r = check_table(q, "refcount table", q->rt_off, (uint64_t)q->rt_clusters * cs, e)))
        return r;
    if (ranges_overlap(q->l1_off, (uint64_t)q->l1_size * 8, q->rt_off,
                       (uint64_t)q->rt_clusters * cs))
        return err_set(e, -EINVAL, "%s: the L1 table overlaps the refcount table", q->path);
    if (q->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
        return err_set(e, -EINVAL, "%s: too many snapshots (%u)", q->path, q->nb_snapshots);
    if (q->nb_snapshots && (r = check_table(q, "snapshot table", q->snapshots_off, 40, e)))
        return r;
    q->rt_entries = (uint64_t)q->rt_clusters * cs / 8;
    q->l1 = calloc(q->l1_size ? q->l1_size : 1, 8);
    q->rt = calloc(q->rt_entries, 8);
    q->cbuf = malloc(cs);
    q->zin = malloc(2 * cs + 512);
    q->cow = malloc(2 * cs);
    if (!q->l1 || !q->rt || !q->cbuf || !q->zin || !q->cow)
        return err_set(e, -ENOMEM, "out of memory");
    if ((r = qcow2_pread_full(q, q->l1, (uint64_t)q->l1_size * 8, q->l1_off)) < 0 ||
        (r = qcow2_pread_full(q, q->rt, q->rt_entries * 8, q->rt_off)) < 0)
        return err_set(e, r, "%s", q->err.msg);
    for (uint32_t i = 0; i < q->l1_size; i++) {
        q->l1[i] = be64toh(q->l1[i]);
        uint64_t off = q->l1[i] & QCOW2_OFFSET_MASK;
        if (q->l1[i] & 0x7f000000000001ffull)
            return err_set(e, -EINVAL, "%s: L1 entry %u has reserved bits set (%#llx)", q->path,
                           i, (unsigned long long)q->l1[i]);
        if (off && (r = check_table(q, "L2 table", off, cs, e))) {
            struct err inner = *e;
            return err_set(e, r, "%s (L1 entry %u)", inner.msg, i);
        }
        if (off && qcow2_meta_overlap(q, off, cs))
            return err_set(e, -EINVAL, "%s: L1 entry %u: L2 table %#llx overlaps the header, "
                           "L1 or refcount table", q->path, i, (unsigned long long)off);
    }
    for (uint64_t i = 0; i < q->rt_entries; i++) {
        q->rt[i] = be64toh(q->rt[i]);
        if (q->rt[i] && (r = check_table(q, "refcount block", q->rt[i], cs, e))) {
            struct err inner = *e;
            return err_set(e, r, "%s (refcount table entry %llu)", inner.msg,
                           (unsigned long long)i);
        }
        if (q->rt[i] && qcow2_meta_overlap(q, q->rt[i], cs))
            return err_set(e, -EINVAL, "%s: refcount block %llu overlaps the header, L1 or "
                           "refcount table", q->path, (unsigned long long)i);
    }
    for (unsigned i = 0; i < QCOW2_L2_CACHE; i++)
        if (!(q->l2c[i].buf = malloc(cs)))
            return err_set(e, -ENOMEM, "out of memory");
    for (unsigned i = 0; i < QCOW2_RB_CACHE; i++)
        if (!(q->rbc[i].buf = malloc(cs)))
            return err_set(e, -ENOMEM, "out of memory");
    q->free_hint = 1;
    return 0;
}

/* Resolve a backing file name relative to the overlay's directory. */
static char *backing_path(const char *overlay, const char *name)
{
    if (name[0] == '/')
        return strdup(name);
    char *dup = strdup(overlay);
    if (!dup)
        return NULL;
    char *dir = dirname(dup), *out = NULL;
    if (asprintf(&out, "%s/%s", dir, name) < 0)
        out = NULL;
    free(dup);
    return out;
}

/* A read-write open of an image left dirty (lazy refcounts not written back
 * before a crash or kill) repairs it, as QEMU does: every refcount is
 * recounted and fixed (check -r all), then the dirty bit is cleared. */
static int repair_dirty(struct qimg *q, struct err *e)
{
    struct qimg_check res;
    struct err ce = { "" };
    int r = qimg_check(q, 2, &res, NULL, &ce);
    if (r == 0 && (q->incompat & QCOW2_INCOMPAT_DIRTY))
        snprintf(ce.msg, sizeof(ce.msg), "%llu errors remain",
                 (unsigned long long)(res.corruptions - res.fixed_corruptions));
    if (r < 0 || (q->incompat & QCOW2_INCOMPAT_DIRTY))
        return err_set(e, r < 0 ? r : -EINVAL, "%s: the image is dirty (not closed cleanly, "
                       "lazy refcounts) and repairing it failed: %s; see 'petrel img check'",
                       q->path, ce.msg);
    log_warn("%s: the image was not closed cleanly (dirty, lazy refcounts): refcounts "
             "repaired (%llu wrong, %llu leaked), dirty bit cleared", q->path,
             (unsigned long long)res.fixed_corruptions, (unsigned long long)res.fixed_leaks);
    return 0;
}

static int open_depth(struct qimg **out, const char *path, const char *fmt, bool ro, int depth,
                      bool repair, unsigned flags, struct err *e)
{
    *out = NULL;
    /* q->path is for messages: a backing file's name comes from the image
     * file, so its odd bytes are escaped there */
    struct qimg *q = calloc(1, sizeof(*q));
    if (!q || !(q->path = depth ? qimg_printable_dup(path) : strdup(path))) {
        free(q);
        return err_set(e, -ENOMEM, "out of memory");
    }
    q->fd = -1;
    int r = 0;
    if (depth > QCOW2_MAX_BACKING_DEPTH) {
        r = err_set(e, -ELOOP, "%s: backing chain deeper than %d images (a loop?)", q->path,
                    QCOW2_MAX_BACKING_DEPTH);
        goto fail;
    }
    q->ro = ro;
    q->repair = repair;
    q->fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (q->fd < 0) {
        r = err_set(e, -errno, "%s: %s", q->path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(q->fd, &st) < 0) {
        r = err_set(e, -errno, "%s: %s", q->path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        r = err_set(e, -EINVAL, "%s: not a regular file", q->path);
        goto fail;
    }
    q->file_size = (uint64_t)st.st_size;
    struct flock fl = { .l_type = ro ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET };
    if (fcntl(q->fd, F_OFD_SETLK, &fl) < 0) {
        r = err_set(e, -EBUSY, "%s: in use by another VM or process (image locked)", q->path);
        goto fail;
    }
    if (!fmt) {
        uint8_t m[4];
        fmt = pread(q->fd, m, 4, 0) == 4 && be32_at(m) == QCOW2_MAGIC ? "qcow2" : "raw";
    }
    if (!strcmp(fmt, "raw")) {
        q->raw = true;
        q->size = q->file_size;
        *out = q;
        return 0;
    }
    if (strcmp(fmt, "qcow2")) {
        char f[64];
        r = err_set(e, -EINVAL, "%s: unknown image format '%s' (raw, qcow2)", q->path,
                    qimg_printable(f, sizeof(f), fmt, SIZE_MAX));
        goto fail;
    }
    if ((r = qcow2_open_meta(q, e)) < 0)
        goto fail;
    if (q->backing_name && !(flags & QIMG_NO_BACKING)) {
        char *bp = backing_path(path, q->backing_name);
        if (!bp) {
            r = err_set(e, -ENOMEM, "out of memory");
            goto fail;
        }
        const char *bfmt = q->backing_fmt[0] ? q->backing_fmt : NULL;
        r = open_depth(&q->backing, bp, bfmt, !(flags & QIMG_BACKING_RW), depth + 1, false, 0,
                       e);
        if (r < 0) {
            struct err inner = *e;
            err_set(e, r, "%s: cannot open its backing file: %s", q->path, inner.msg);
        }
        free(bp);
        if (r < 0)
            goto fail;
    }
    if (!q->ro && !q->repair && (q->incompat & QCOW2_INCOMPAT_DIRTY) &&
        (r = repair_dirty(q, e)) < 0)
        goto fail;
    *out = q;
    return 0;
fail:
    qimg_close(q);
    return r;
}

int qimg_open(struct qimg **out, const char *path, const char *fmt, bool ro, struct err *e)
{
    return open_depth(out, path, fmt, ro, 0, false, 0, e);
}

int qimg_open_flags(struct qimg **out, const char *path, const char *fmt, unsigned flags,
                    struct err *e)
{
    return open_depth(out, path, fmt, flags & QIMG_RO, 0, false, flags, e);
}

int qimg_open_repair(struct qimg **out, const char *path, struct err *e)
{
    return open_depth(out, path, "qcow2", false, 0, true, 0, e);
}

int qimg_open_backing_rw(struct qimg **out, const char *path, struct err *e)
{
    int r = open_depth(out, path, NULL, false, 0, false, QIMG_BACKING_RW, e);
    if (r == 0 && !(*out)->backing) {
        r = err_set(e, -EINVAL, "%s: the image has no backing file", path);
        qimg_close(*out);
        *out = NULL;
    }
    return r;
}

void qimg_close(struct qimg *q)
{
    if (!q)
        return;
    qimg_close(q->backing);
    qcow2_caches_free(q);
    if (q->fd >= 0)
        close(q->fd);
    free(q->l1);
    free(q->rt);
    free(q->cbuf);
    free(q->zin);
    free(q->cow);
    free(q->iov_tmp);
    for (unsigned i = 0; i < QCOW2_L2_CACHE; i++)
        free(q->l2c[i].buf);
    for (unsigned i = 0; i < QCOW2_RB_CACHE; i++)
        free(q->rbc[i].buf);
    free(q->backing_name);
    free(q->path);
    free(q);
}

int qimg_flush(struct qimg *q)
{
    if (fdatasync(q->fd) < 0)
        return err_set(&q->err, -errno, "%s: fdatasync: %s", q->path, strerror(errno));
    return 0;
}

/* --- creating --- */

static int create_raw(const char *path, uint64_t size, struct err *e)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_set(e, -errno, "%s: %s", path, strerror(errno));
    int r = ftruncate(fd, (off_t)size) < 0 ? err_set(e, -errno, "%s: %s", path, strerror(errno))
                                           : 0;
    close(fd);
    return r;
}

int qimg_create(const char *path, const struct qimg_create_opts *o, struct err *e)
{
    uint64_t size = o->size;
    const char *bfmt = o->backing_fmt;
    if (o->backing) {
        char *bp = backing_path(path, o->backing);
        struct qimg *b = NULL;
        int r = bp ? qimg_open(&b, bp, bfmt, true, e) : err_set(e, -ENOMEM, "out of memory");
        free(bp);
        if (r < 0)
            return r;
        if (!size)
            size = b->size;
        if (!bfmt)
            bfmt = b->raw ? "raw" : "qcow2";
        qimg_close(b);
    }
    if (!strcmp(o->fmt, "raw")) {
        if (o->backing)
            return err_set(e, -EINVAL, "raw images cannot have a backing file");
        return create_raw(path, size, e);
    }
    if (strcmp(o->fmt, "qcow2"))
        return err_set(e, -EINVAL, "unknown image format '%s' (raw, qcow2)", o->fmt);
    uint32_t cb = o->cluster_bits ? o->cluster_bits : 16;
    uint32_t bits = o->refcount_bits ? o->refcount_bits : 16;
    uint32_t order = (uint32_t)__builtin_ctz(bits);
    uint32_t version = o->version ? o->version : 3;
    if (cb < QCOW2_MIN_CLUSTER_BITS || cb > QCOW2_MAX_CLUSTER_BITS)
        return err_set(e, -EINVAL, "cluster size must be a power of two from 512 to 2M");
    if (bits > 64 || (bits & (bits - 1)) || (version == 2 && bits != 16))
        return err_set(e, -EINVAL, "refcount bits must be 1..64 (16 for compat=0.10)");
    if (version != 2 && version != 3)
        return err_set(e, -EINVAL, "qcow2 version must be 2 or 3");
    if (size % 512)
        return err_set(e, -EINVAL, "the size must be a multiple of 512 bytes");
    if (o->backing && strlen(o->backing) > 1023)
        return err_set(e, -EINVAL, "backing file name longer than 1023 bytes");
    uint64_t cs = 1ull << cb, l2e = cs / 8, rbe = cs * 8 >> order;
    uint64_t l1_size = (size + cs * l2e - 1) / (cs * l2e);
    if (l1_size * 8 > QCOW2_MAX_L1_BYTES || size > (1ull << 61))
        return err_set(e, -EINVAL, "size %llu is too large for %llu-byte clusters",
                       (unsigned long long)size, (unsigned long long)cs);
    uint64_t l1c = (l1_size * 8 + cs - 1) / cs, rbc = 1, rtc = 1;
    for (;;) {
        uint64_t total = 1 + rtc + l1c + rbc;
        uint64_t nrbc = (total + rbe - 1) / rbe, nrtc = (nrbc * 8 + cs - 1) / cs;
        if (nrbc == rbc && nrtc == rtc)
            break;
        rbc = nrbc;
        rtc = nrtc;
    }
    if (rtc * cs > QCOW2_MAX_RT_BYTES)
        return err_set(e, -EINVAL, "image too large for its refcount table");
    uint64_t total = 1 + rtc + l1c + rbc;
    uint64_t rt_off = cs, l1_off = cs * (1 + rtc), rb_off = cs * (1 + rtc + l1c);
    uint8_t *buf = calloc(total, cs);
    if (!buf)
        return err_set(e, -ENOMEM, "out of memory");
    /* header */
    put_be32(buf, QCOW2_MAGIC);
    put_be32(buf + 4, version);
    put_be32(buf + 20, cb);
    put_be64(buf + 24, size);
    put_be32(buf + 36, (uint32_t)l1_size);
    put_be64(buf + 40, l1_off);
    put_be64(buf + 48, rt_off);
    put_be32(buf + 56, (uint32_t)rtc);
    uint64_t p = 72;
    if (version == 3) {
        put_be32(buf + 96, order);
        put_be32(buf + 100, 112);
        p = 112;
        /* feature name table */
        static const struct { uint8_t type, bit; const char *name; } feats[] = {
            { 0, 0, "dirty bit" }, { 0, 1, "corrupt bit" }, { 0, 2, "external data file" },
            { 0, 3, "compression type" }, { 0, 4, "extended L2 entries" },
            { 1, 0, "lazy refcounts" },
        };
        unsigned nf = sizeof(feats) / sizeof(feats[0]);
        put_be32(buf + p, EXT_FEATURES);
        put_be32(buf + p + 4, nf * 48);
        for (unsigned i = 0; i < nf; i++) {
            uint8_t *f = buf + p + 8 + i * 48;
            f[0] = feats[i].type;
            f[1] = feats[i].bit;
            memcpy(f + 2, feats[i].name, strlen(feats[i].name));
        }
        p += 8 + nf * 48;
        if (o->backing) {
            size_t fl = strlen(bfmt);
            put_be32(buf + p, EXT_BACKING_FMT);
            put_be32(buf + p + 4, (uint32_t)fl);
            memcpy(buf + p + 8, bfmt, fl);
            p += 8 + ((fl + 7) & ~7ull);
        }
        p += 8; /* end of extensions */
    }
    if (o->backing) {
        size_t bl = strlen(o->backing);
        if (p + bl > cs) {
            free(buf);
            return err_set(e, -EINVAL, "backing file name does not fit in the header cluster");
        }
        put_be64(buf + 8, p);
        put_be32(buf + 16, (uint32_t)bl);
        memcpy(buf + p, o->backing, bl);
    }
    for (uint64_t i = 0; i < rbc; i++)
        put_be64(buf + rt_off + i * 8, rb_off + i * cs);
    for (uint64_t c = 0; c < total; c++) {
        uint8_t *blk = buf + rb_off + (c / rbe) * cs;
        uint64_t idx = c % rbe, bits = 1ull << order;
        if (bits >= 8)
            blk[idx * bits / 8 + bits / 8 - 1] = 1;   /* big endian: lowest byte last */
        else
            blk[idx * bits / 8] |= (uint8_t)(1u << (idx * bits % 8));
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int r = 0;
    if (fd < 0) {
        r = err_set(e, -errno, "%s: %s", path, strerror(errno));
    } else {
        uint64_t done = 0, len = total * cs;
        while (done < len) {
            ssize_t n = pwrite(fd, buf + done, len - done, (off_t)done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                r = err_set(e, n < 0 ? -errno : -EIO, "%s: write: %s", path,
                            n < 0 ? strerror(errno) : "short write");
                break;
            }
            done += (uint64_t)n;
        }
        if (close(fd) < 0 && r == 0)
            r = err_set(e, -errno, "%s: %s", path, strerror(errno));
    }
    free(buf);
    return r;
}

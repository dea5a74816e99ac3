/* qcow2 images: the synchronous core shared by the block driver and
 * `petrel img`.  Format: QEMU's docs/interop/qcow2.txt (v3 read/write, v2
 * read/write of the v2 subset).
 *
 * Data structures (struct qimg, one per open image file)
 * - A struct qimg is either a qcow2 image or a plain raw file (raw: used as a
 *   backing file, as a convert endpoint, and for probing), so a backing chain
 *   is a list of qimg linked through ->backing, each opened read-only.
 * - Header fields are parsed once and validated against explicit limits and
 *   against the file size (offsets past the end, unaligned tables, tables
 *   overlapping the header or each other, absurd sizes give a precise error).
 * - The active L1 table and the refcount table live in memory, whole.
 * - L2 tables and refcount blocks go through small LRU caches
 *   (QCOW2_L2_CACHE / QCOW2_RB_CACHE tables).  The caches are write-through:
 *   every metadata change is pwritten before the call that made it returns,
 *   so a SIGKILL of the process never loses metadata the data depends on.
 * - Each table is validated when it is loaded: L2 offsets in an L1 entry must
 *   be cluster aligned, inside the file and not in the header; data clusters
 *   are checked before they are read or written (never the header, the L1
 *   table or the refcount table).
 *
 * Write ordering (crash safety against SIGKILL of the host process): between
 * any two syscalls the image is consistent, at worst leaking clusters.
 *   allocation:  refcount block contents -> refcount table entry ->
 *                refcount of the new cluster -> cluster data (with the
 *                copy-on-write of its head and tail) -> L2 entry;
 *   new L2 table: refcount -> table contents -> L1 entry;
 *   freeing:     the L2 entry that pointed at the cluster -> refcount.
 * FLUSH is fdatasync of the image file.
 *
 * Threads: none here.  A qimg is used by one thread at a time: the block
 * driver (qcow2_drv.c) gives each image a worker thread that owns it; the
 * tools call it directly.
 *
 * A read-write open of a dirty image (lazy refcounts left stale by a crash)
 * repairs it first, like QEMU: refcounts recounted, the dirty bit cleared,
 * one warning logged; a read-only open just reads it.
 *
 * What can fail: open (I/O errors, malformed or hostile headers, unknown
 * incompatible features, the corrupt bit on a read-write open, a dirty
 * image that cannot be repaired, encryption, external data files, extended
 * L2 entries, a broken backing chain) with a message in struct err; I/O calls return a negative errno
 * and leave a message in q->err (corrupt tables: -EIO; a full refcount:
 * -ERANGE; out of memory: -ENOMEM). */
#ifndef PETREL_QCOW2_H
#define PETREL_QCOW2_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#include "core/log.h"

#define QCOW2_MAGIC 0x514649fbu
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_L1_BYTES (32u << 20)     /* like QEMU */
#define QCOW2_MAX_RT_BYTES (8u << 20)
#define QCOW2_MAX_BACKING_DEPTH 16
#define QCOW2_MAX_SNAPSHOTS 65536
#define QCOW2_L2_CACHE 32
#define QCOW2_RB_CACHE 8

#define QCOW2_INCOMPAT_DIRTY (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN 0x1full
#define QCOW2_COMPAT_LAZY (1ull << 0)

/* entry bits */
#define QCOW2_COPIED (1ull << 63)
#define QCOW2_COMPRESSED (1ull << 62)
#define QCOW2_ZERO 1ull
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ull

struct qcow2_cache_ent {
    uint64_t off;                   /* file offset of the table; 0: empty */
    uint64_t lru;
    uint8_t *buf;                   /* cluster_size bytes, big endian */
};

struct qimg {
    char *path;                     /* for messages: as opened for the top image; a
                                     * backing file's (its name came from the image)
                                     * escaped by qimg_printable, so not for open() */
    int fd;
    bool ro;
    bool raw;                       /* a raw file: no qcow2 metadata */
    bool repair;                    /* opened by check -r: dirty/corrupt allowed */
    uint64_t size;                  /* virtual size, bytes */
    uint64_t file_size;             /* grows with allocations */
    struct qimg *backing;
    char *backing_name;             /* as stored in the header */
    char backing_fmt[32];
    struct err err;                 /* the last I/O-path error */

    /* qcow2 only */
    uint32_t version;
    uint32_t cluster_bits;
    uint64_t cluster_size;
    uint32_t header_length;
    uint64_t incompat, compat, autoclear;
    uint32_t refcount_order;        /* refcount bits = 1 << order */
    uint8_t compression;            /* 0 zlib, 1 zstd */
    uint64_t l1_off;
    uint32_t l1_size;
    uint64_t *l1;                   /* host byte order */
    uint64_t rt_off;
    uint32_t rt_clusters;
    uint64_t rt_entries;
    uint64_t *rt;                   /* host byte order */
    uint32_t nb_snapshots;
    uint64_t snapshots_off;
    uint64_t snapshots_bytes;       /* table size, known once it was read */
    uint64_t l2_entries;            /* per table */
    uint64_t rb_entries;            /* refcounts per block */
    uint64_t refcount_max;
    uint64_t free_hint;             /* no free cluster below this index */
    uint64_t lru_clock;
    struct qcow2_cache_ent l2c[QCOW2_L2_CACHE];
    struct qcow2_cache_ent rbc[QCOW2_RB_CACHE];
    uint8_t *cbuf;                  /* one cluster: decompression output */
    uint8_t *zin;                   /* compressed input */
    uint8_t *cow;                   /* two clusters: head/tail copy-on-write */
    struct iovec *iov_tmp;          /* scratch for iovec slices */
    unsigned iov_tmp_n;
    void *zlib;                     /* z_stream, lazily */
    void *zstd;                     /* ZSTD_DCtx, lazily */
};

/* Strings from image files (backing file names and formats, snapshot
 * names) for messages and listings: up to n bytes of s (or to its NUL),
 * with bytes outside printable ASCII as \xNN and the backslash doubled, cut
 * with "..." to fit outlen.  Returns out. */
const char *qimg_printable(char *out, size_t outlen, const char *s, size_t n);
/* The same, whole, in a new string (NULL: out of memory). */
char *qimg_printable_dup(const char *s);

/* Probe: 1 if path starts with the qcow2 magic, 0 if not, <0 on error. */
int qimg_probe(const char *path, struct err *e);
/* Open path as fmt ("qcow2", "raw", or NULL to probe).  The backing chain is
 * opened read-only.  A read-write open takes an exclusive lock. */
int qimg_open(struct qimg **out, const char *path, const char *fmt, bool ro, struct err *e);
/* qimg_open with flags: QIMG_RO; QIMG_NO_BACKING leaves the backing chain
 * closed (q->backing NULL: rebase -u of an image whose backing file moved);
 * QIMG_BACKING_RW opens the first backing file read-write (commit). */
#define QIMG_RO 1u
#define QIMG_NO_BACKING 2u
#define QIMG_BACKING_RW 4u
int qimg_open_flags(struct qimg **out, const char *path, const char *fmt, unsigned flags,
                    struct err *e);
/* The same, for `check -r`: a dirty or corrupt image opens read-write. */
int qimg_open_repair(struct qimg **out, const char *path, struct err *e);
void qimg_close(struct qimg *q);

/* Guest I/O; offset + length must lie inside q->size. */
int qimg_preadv(struct qimg *q, const struct iovec *iov, unsigned niov, uint64_t off);
int qimg_pwritev(struct qimg *q, const struct iovec *iov, unsigned niov, uint64_t off);
int qimg_pread(struct qimg *q, void *buf, uint64_t len, uint64_t off);
int qimg_pwrite(struct qimg *q, const void *buf, uint64_t len, uint64_t off);
/* Zero a range (unmap: clusters may be deallocated). */
int qimg_write_zeroes(struct qimg *q, uint64_t off, uint64_t len, bool unmap);
/* Deallocate whole clusters of a range (reads return zeroes afterwards). */
int qimg_discard(struct qimg *q, uint64_t off, uint64_t len);
int qimg_flush(struct qimg *q);

/* What a guest range maps to, for map/convert. */
enum qimg_state { QIMG_DATA, QIMG_ZERO, QIMG_UNALLOC, QIMG_COMPRESSED };
struct qimg_extent {
    enum qimg_state state;
    uint64_t len;                   /* bytes from the queried offset */
    uint64_t host;                  /* DATA: file offset; else 0 */
    int depth;                      /* 0: this image, 1: its backing, ... */
};
/* Describe the range starting at off (following the backing chain for
 * unallocated clusters). */
int qimg_map(struct qimg *q, uint64_t off, uint64_t len, struct qimg_extent *x);

/* Creating images. */
struct qimg_create_opts {
    const char *fmt;                /* "qcow2" or "raw" */
    uint64_t size;                  /* 0 with a backing file: its size */
    uint32_t cluster_bits;          /* 0: 16 */
    uint32_t refcount_bits;         /* 1, 2, 4, ..., 64; 0: 16 (v2: 16 only) */
    uint32_t version;               /* 0: 3 */
    const char *backing;            /* as written into the header */
    const char *backing_fmt;
};
int qimg_create(const char *path, const struct qimg_create_opts *o, struct err *e);

/* Consistency check (like qemu-img check).  repair: 0 none, 1 leaks, 2 all. */
struct qimg_check {
    uint64_t corruptions, leaks, fixed_corruptions, fixed_leaks;
    uint64_t allocated, total;      /* guest clusters */
    uint64_t image_end;
};
int qimg_check(struct qimg *q, int repair, struct qimg_check *res, FILE *log, struct err *e);

/* Internal snapshots (qcow2_snapshot.c).
 *
 * Reference counting follows QEMU's model: a cluster's refcount is the
 * number of L1 tables (the active one and each snapshot's) that reach it,
 * counted per path, so a data cluster behind an L2 table shared by the
 * active L1 and one snapshot has refcount 2, like the table itself.  A
 * cluster reachable from the active L1 with refcount 1 carries COPIED in
 * the entry pointing at it (L1 entry for an L2 table, L2 entry for a data
 * cluster); without COPIED the write path copies before writing
 * (qcow2_cluster.c: l2_writable and in_place).
 *
 * Ordering (SIGKILL at any point leaves at worst leaked clusters):
 *   create: flush; raise refcounts of everything the active L1 reaches and
 *           clear COPIED; write the L1 copy; write a new snapshot table;
 *           switch the header to it (one 12-byte write); free the old table.
 *   apply:  raise refcounts of what the snapshot reaches; write the active
 *           L1 (in place, or a new table switched in by the header); drop
 *           the old active L1's references; set COPIED where refcount is 1.
 *   delete: write the table without the entry and switch the header; drop
 *           the snapshot's references and its L1; set COPIED again.
 * Each step is followed by fdatasync where the next one depends on it, so a
 * power loss is covered as well as a kill. */
struct qimg_snapshot {
    char *id, *name;
    uint64_t l1_off;
    uint32_t l1_size;
    uint32_t date_sec, date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t vm_state_size;
    uint64_t disk_size;             /* the virtual size when it was taken */
    uint64_t icount;                /* UINT64_MAX: not recorded */
    uint32_t extra_size;
    uint8_t *extra;                 /* the raw extra data, kept on rewrite */
};
#define QCOW2_MAX_SNAPSHOT_TABLE (64u << 20)
#define QCOW2_MAX_SNAPSHOT_EXTRA 1024u
#define QCOW2_MAX_SNAPSHOT_NAME 1023u
/* Read and validate the snapshot table: *out gets q->nb_snapshots entries. */
int qimg_snapshots_read(struct qimg *q, struct qimg_snapshot **out, struct err *e);
void qimg_snapshots_free(struct qimg_snapshot *s, uint32_t n);
/* The index of the snapshot whose ID, else whose name, is key; -1 if none. */
int qimg_snapshot_find(const struct qimg_snapshot *s, uint32_t n, const char *key);
int qimg_snapshot_create(struct qimg *q, const char *name, struct err *e);
int qimg_snapshot_apply(struct qimg *q, const char *key, struct err *e);
int qimg_snapshot_delete(struct qimg *q, const char *key, struct err *e);

/* Image tools (qcow2_tools.c). */
/* Change the virtual size: growing always works (a larger L1 table is
 * written and switched in by the header); shrinking only with shrink set and
 * when nothing is allocated past the new end in the active L1 (qcow2) and
 * there are no snapshots. */
int qimg_resize(struct qimg *q, uint64_t size, bool shrink, struct err *e);
/* Rewrite the backing file name and format in the header (NULL name: no
 * backing file).  Only the header changes (rebase -u). */
int qimg_set_backing(struct qimg *q, const char *name, const char *fmt, struct err *e);
/* Drop every cluster of the active L1 (qcow2, no snapshots): the image reads
 * through to its backing file again (commit). */
int qimg_make_empty(struct qimg *q, struct err *e);
/* Open path read-write with its first backing file read-write too (commit). */
int qimg_open_backing_rw(struct qimg **out, const char *path, struct err *e);

/* --- internal: shared between the qcow2_*.c files --- */
int qcow2_open_meta(struct qimg *q, struct err *e);
int qcow2_rc_get(struct qimg *q, uint64_t cluster, uint64_t *rc);
int qcow2_rc_update(struct qimg *q, uint64_t off, uint64_t len, int64_t delta);
int64_t qcow2_alloc(struct qimg *q, uint64_t n);  /* file offset of n clusters, refcount 1 */
int qcow2_free_entry(struct qimg *q, uint64_t entry);
int qcow2_pread_full(struct qimg *q, void *buf, uint64_t len, uint64_t off);
int qcow2_pwrite_full(struct qimg *q, const void *buf, uint64_t len, uint64_t off);
int qcow2_write_header_incompat(struct qimg *q, uint64_t incompat);
bool qcow2_meta_overlap(const struct qimg *q, uint64_t off, uint64_t len);
int qcow2_decompress(struct qimg *q, uint64_t entry);  /* into q->cbuf */
void qcow2_caches_free(struct qimg *q);
void qcow2_l2_cache_drop(struct qimg *q);   /* forget every cached L2 table */
/* Write the L1 entries of the header's L1 table from q->l1 (all of them). */
int qcow2_l1_write_all(struct qimg *q);

/* The cache entry (of n) holding the table at file offset off, made most
 * recently used; NULL on a miss, with *victim the least recently used entry,
 * emptied (off = 0) for the caller to load into. */
static inline struct qcow2_cache_ent *qcow2_cache_find(struct qimg *q,
                                                       struct qcow2_cache_ent *ents,
                                                       unsigned n, uint64_t off,
                                                       struct qcow2_cache_ent **victim)
{
    *victim = &ents[0];
    for (unsigned k = 0; k < n; k++) {
        if (ents[k].off == off) {
            ents[k].lru = ++q->lru_clock;
            return &ents[k];
        }
        if (ents[k].lru < (*victim)->lru)
            *victim = &ents[k];
    }
    (*victim)->off = 0;
    return NULL;
}

#endif

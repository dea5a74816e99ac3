/* Exporting a qcow2 image as it was at one internal snapshot (or as it is
 * now) into a new, independent qcow2 image on the same backing file: what
 * `petrel vm clone` builds a clone's disks on.
 *
 * Design
 * - The result holds exactly what the source image itself holds at that
 *   point, cluster for cluster: data clusters (compressed ones are written
 *   uncompressed), zero clusters as zero clusters, unallocated clusters left
 *   unallocated.  Its backing file is the source's, named by absolute path,
 *   so base images are shared, never flattened into the export.  Same
 *   cluster size, qcow2 v3, virtual size = the snapshot's.
 * - The source is opened read-only; with QIMG_EXPORT_NO_LOCK it is opened
 *   WITHOUT its OFD lock, so an image a running VMM holds (exclusive lock)
 *   can be exported from one of its internal snapshots.  This is safe
 *   because of qcow2's reference counting (qcow2.h): every L2 table and
 *   data cluster an internal snapshot's L1 reaches has a refcount of at
 *   least 1 for the snapshot, so (a) while it is shared with the active L1
 *   (refcount > 1, COPIED clear) the writer copies it before changing it
 *   and only the active L1/L2 entries change, (b) once only the snapshot
 *   reaches it nobody writes it, and (c) it is never freed and reused.
 *   The snapshot's L1 table and the snapshot table are written once; they
 *   move only when a snapshot of the same image is created or deleted: the
 *   caller must keep that from happening during the export (`petrel vm`
 *   holds the VM's snap.lock).  The active L1 and refcount table, which a
 *   running writer does change, are only read (and validated) at open; an
 *   open that fails on a table caught mid-update is retried.
 * - Exporting the current state (key NULL) reads the active L1, which only
 *   a stopped image keeps still: that path always takes the shared (read)
 *   lock, so it fails with -EBUSY while a writer holds the image.
 *
 * Threads: none; plain synchronous calls.
 *
 * What can fail: opening the source (not qcow2, malformed, locked, no such
 * snapshot: -ENOENT), creating or writing the destination (I/O, space), a
 * corrupt table met while copying (-EIO); each with a one-line message in
 * struct err.  On failure the destination may exist half written: the
 * caller writes to a temporary name and renames it on success. */
#ifndef PETREL_QCOW2_EXPORT_H
#define PETREL_QCOW2_EXPORT_H

#include <stdint.h>

#include "block/qcow2.h"
#include "core/log.h"

#define QIMG_EXPORT_NO_LOCK 1u      /* with a snapshot key: do not take the OFD lock */

struct qimg_export_stats {
    uint64_t size;                  /* virtual size of the export */
    uint64_t data_bytes;            /* guest bytes copied as data */
    uint64_t zero_bytes;            /* guest bytes written as zero clusters */
    uint64_t data_clusters;
};

/* Open the qcow2 image path read-only as it was at internal snapshot key
 * (ID or name; NULL: as it is now), without its backing chain: reads of
 * unallocated clusters return zeroes, qimg_map reports them as unallocated.
 * flags: QIMG_EXPORT_NO_LOCK (only with a key).  Close with qimg_close. */
int qimg_open_snapshot(struct qimg **out, const char *path, const char *key, unsigned flags,
                       struct err *e);

/* Write the export of src at key (NULL: now) to the new file dst (created,
 * or truncated if it exists).  stats may be NULL. */
int qimg_export(const char *src, const char *key, const char *dst, unsigned flags,
                struct qimg_export_stats *stats, struct err *e);

#endif

/* The block layer: disk images behind one asynchronous request interface.
 *
 * Design
 * - A struct blk is an open disk image: a driver (raw today; qcow2 plugs in
 *   behind the same interface) plus its size and whether it is read-only.
 *   Devices (virtio-blk) submit struct blk_req and get a completion
 *   callback later; they never see file descriptors.
 * - Requests: READ and WRITE carry an iovec over guest memory (zero copy:
 *   the host kernel reads and writes guest RAM directly), at a byte offset.
 *   FLUSH makes every write completed before it durable (fdatasync): a
 *   guest flush reaches stable storage before it completes.  DISCARD
 *   deallocates a range (reads then return zeroes; punched holes in a raw
 *   file); WRITE_ZEROES zeroes a range, deallocating it when `unmap` is set.
 * - Threads and completion: requests are submitted in device context
 *   (core/evloop.h) and their `done` callback runs in device context too,
 *   from the loop's dispatch of the driver's completion descriptor.  The
 *   I/O itself runs in the host kernel (io_uring: the raw driver keeps one
 *   ring per image with an eventfd registered on the VM's event loop), never
 *   on a vCPU thread.  A request's iovec and the blk_req itself must stay
 *   valid until `done` runs.  When io_uring is unavailable (a seccomp policy
 *   forbidding it) the raw driver falls back to synchronous preadv/pwritev
 *   in device context and says so once.
 * - Results: `done(req, ret)` with ret = 0 on success or a negative errno.
 *   A short read of a raw file past its end cannot happen (requests are
 *   checked against the size); a short transfer from the kernel is
 *   resubmitted for the remainder.
 * - Images are locked against concurrent use by another process (an OFD
 *   lock: shared for read-only, exclusive for read-write), like QEMU's
 *   image locking, so two VMs cannot write one disk.
 * - Format probing: without format=, an image whose first bytes are the
 *   qcow2 magic opens as qcow2, anything else as raw.  A guest could then
 *   turn its raw disk into a qcow2 header naming any host file as backing
 *   file, to be read at the next start; so, like QEMU, on a probed raw
 *   image a write of the qcow2 magic to the first bytes fails (-EPERM).
 * - blk_close waits for every request in flight, then closes.
 *
 * What can fail: open (missing file, permissions, locked by another VM,
 * not a multiple of 512 bytes, unknown format) with a precise message
 * through struct err; requests with -EIO/-ENOSPC/... from the host, which
 * virtio-blk turns into VIRTIO_BLK_S_IOERR. */
#ifndef PETREL_BLOCK_H
#define PETREL_BLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/evloop.h"
#include "core/log.h"
#include "core/ratelimit.h"

#define BLK_SECTOR 512u

enum blk_op { BLK_READ, BLK_WRITE, BLK_FLUSH, BLK_DISCARD, BLK_WRITE_ZEROES };

struct blk_req {
    enum blk_op op;
    uint64_t offset;            /* bytes */
    uint64_t len;               /* bytes: DISCARD and WRITE_ZEROES */
    struct iovec *iov;          /* READ and WRITE */
    unsigned niov;
    bool unmap;                 /* WRITE_ZEROES may deallocate */
    void (*done)(struct blk_req *r, int ret);
    void *opaque;               /* the submitter's */
    /* driver state (the driver may also advance iov/niov on short I/O) */
    uint64_t xfer_done;         /* bytes transferred so far */
    uint64_t submit_ns;         /* for latency statistics */
    uint64_t bytes;             /* READ/WRITE: the request's length */
    struct blk_req *next;       /* driver's queue of requests not yet submitted */
};

/* --disk PATH[,format=raw|qcow2][,readonly=on][,serial=STR]
 *        [,bps=N[,bps_burst=N][,bps_refill=MS]][,iops=N[,iops_burst=N][,iops_refill=MS]]
 * (the rate keys: core/ratelimit.h, rl_parse_opt) */
struct disk_config {
    const char *path;
    const char *format;         /* "raw", "qcow2", or NULL: probe the header */
    bool readonly;
    char serial[21];            /* virtio-blk GET_ID, up to 20 bytes */
    struct rl_config limit;     /* virtio-blk's rate limiter (none: unlimited) */
};
/* Parse a --disk argument (spec is kept: path points into it). */
int disk_config_parse(struct disk_config *d, char *spec, struct err *e);

struct blk;

/* Internal snapshots of an open image (VM snapshots, core/snapshot.h). */
enum blk_snap_op {
    BLK_SNAP_CREATE,            /* take one named tag of the image as it is now */
    BLK_SNAP_CHECK,             /* 0 if the image has a snapshot tag of its own size */
    BLK_SNAP_APPLY,             /* revert the image to snapshot tag */
};

struct blk_driver {
    const char *format;
    int (*open)(struct blk *b, struct err *e);
    void (*submit)(struct blk *b, struct blk_req *r);
    void (*drain)(struct blk *b);   /* wait for every request in flight */
    void (*close)(struct blk *b);
    /* Optional (qcow2): internal snapshots; called with nothing in flight.
     * NULL: the format has none. */
    int (*snapshot)(struct blk *b, enum blk_snap_op op, const char *tag, struct err *e);
};

/* What the guest did with a disk (metrics); device context. */
struct blk_stats {
    uint64_t read_bytes, write_bytes;
    uint64_t read_ops, write_ops, flush_ops, discard_ops, errors;
    uint64_t read_ns, write_ns;         /* summed submit-to-completion times */
};

struct blk {
    const struct blk_driver *drv;
    struct blk_stats stats;
    char *path;
    int fd;
    bool readonly;
    bool probed_raw;            /* raw by probing, not by format=raw */
    struct log_limit log;       /* guest-caused messages */
    uint64_t size;              /* bytes, a multiple of BLK_SECTOR */
    struct evloop *loop;
    unsigned inflight;
    void *drv_state;
};

/* Open an image; loop receives the driver's completion descriptor. */
struct blk *blk_open(const struct disk_config *d, struct evloop *loop, struct err *e);
/* Submit r (device context).  Requests outside the image or writes to a
 * read-only image complete with -EINVAL/-EROFS through r->done. */
void blk_submit(struct blk *b, struct blk_req *r);
/* Complete r (drivers only): runs r->done. */
void blk_complete(struct blk *b, struct blk_req *r, int ret);
void blk_close(struct blk *b);
/* Wait until every request submitted so far has completed (their `done`
 * callbacks have run, in device context, before this returns). */
void blk_drain(struct blk *b);
/* Internal snapshots, for VM snapshots (device context, the VM paused):
 * blk_snapshot drains, then makes snapshot `tag` of the image (qcow2 only:
 * a raw image, or a read-only one, is an error naming the file);
 * blk_snapshot_check says whether the image has a snapshot `tag` taken at
 * the image's current size (-ENOENT with a message if not);
 * blk_snapshot_apply drains and reverts the image to it: later reads see
 * the snapshot's data (the driver's caches follow). */
int blk_snapshot(struct blk *b, const char *tag, struct err *e);
int blk_snapshot_check(struct blk *b, const char *tag, struct err *e);
int blk_snapshot_apply(struct blk *b, const char *tag, struct err *e);

extern const struct blk_driver blk_raw_driver;
extern const struct blk_driver blk_qcow2_driver;

#endif

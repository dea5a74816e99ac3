/* virtio-blk (virtio spec 5.2): a disk backed by a block-layer image.
 *
 * One request queue of BLK_QUEUE_SIZE entries.  A kick pops every available
 * chain, checks it and submits one block-layer request per chain
 * (block/block.h), so many requests are in flight at once; each completion
 * writes the status byte, returns the chain and asks whether the driver
 * wants an interrupt.  Completions run in device context (the event loop),
 * so nothing here needs a lock.
 *
 * Supported: IN (read), OUT (write), FLUSH (fdatasync of the image before
 * completing), GET_ID (the serial, up to 20 bytes), DISCARD and
 * WRITE_ZEROES (one range per request, unmap honoured).  Read-only disks
 * offer VIRTIO_BLK_F_RO and fail writes with IOERR; they offer neither
 * DISCARD nor WRITE_ZEROES.
 *
 * The guest decides every field of a request, so each is checked: the
 * header must be readable (16 bytes, possibly split across buffers), the
 * status byte writable, data lengths multiples of 512, ranges inside the
 * disk.  A bad request completes with VIRTIO_BLK_S_IOERR (or UNSUPP for an
 * unknown type or flags), never touches memory outside its own buffers,
 * and never stops the device.  A malformed ring is the core's business
 * (NEEDS_RESET).  A device reset while requests are in flight lets them
 * finish but drops their completions (generation counter).
 *
 * Rate limits (--disk ...,bps=,iops=; the API's rate_limiter): each
 * request costs its data bytes and one operation (core/ratelimit.h).  A
 * request the limiter refuses is put back in the ring (the avail index is
 * rewound, as virtio-net's receive does) and the queue is left alone until
 * the limiter's timer resumes it: nothing is dropped, nothing spins.  An
 * unlimited disk has no limiter (a NULL test per request). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"
#include "core/le.h"
#include "core/ratelimit.h"
#include "core/snapshot.h"
#include "core/vm.h"
#include "virtio/virtio_pci.h"

#define BLK_QUEUE_SIZE 256
#define PCI_CLASS_STORAGE_SCSI 0x010000

/* features */
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* request types and status */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_WZ_UNMAP 1u

/* config space layout */
#define CFG_CAPACITY 0
#define CFG_SEG_MAX 12
#define CFG_BLK_SIZE 20
#define CFG_NUM_QUEUES 34
#define CFG_MAX_DISCARD_SECTORS 36
#define CFG_MAX_DISCARD_SEG 40
#define CFG_DISCARD_ALIGN 44
#define CFG_MAX_WZ_SECTORS 48
#define CFG_MAX_WZ_SEG 52
#define CFG_WZ_MAY_UNMAP 56
#define CFG_SIZE 60

#define MAX_RANGE_SECTORS 0x400000u  /* 2 GiB per discard / write-zeroes */

struct virtio_blk {
    struct virtio_pci vp;
    struct blk *disk;
    char serial[VIRTIO_BLK_ID_BYTES];
    unsigned gen;               /* bumped by every reset */
    uint8_t cfg[CFG_SIZE];
    char *revert_tag;           /* a loaded snapshot's tag, until it is applied */
    struct virtq_chain chain;   /* scratch for popping */
    struct rl *rl;              /* rate limiter; NULL: unlimited */
    struct evloop *loop;
};

struct vblk_req {
    struct blk_req req;
    struct virtio_blk *dev;
    unsigned gen, q;
    uint16_t head;
    uint8_t *status;            /* the status byte, in guest RAM */
    uint32_t written;           /* device-writable bytes filled, status included */
    unsigned niov;
    struct iovec iov[];
};


/* The request's status byte, in guest RAM (marked written, for diff
 * snapshots). */
static void set_status(struct virtio_blk *d, uint8_t *status, uint8_t v)
{
    *status = v;
    gmem_mark_dirty_hva(d->vp.vdev.mem, status, 1);
}

static void complete_head(struct virtio_blk *d, unsigned q, uint16_t head, uint32_t written)
{
    virtq_push(&d->vp.vdev.vq[q], head, written);
    virtio_queue_notify_used(&d->vp.vdev, q);
}

static void req_done(struct blk_req *br, int ret)
{
    struct vblk_req *r = (struct vblk_req *)br;
    struct virtio_blk *d = r->dev;
    if (r->gen == d->gen) {
        if (ret < 0) {
            set_status(d, r->status, VIRTIO_BLK_S_IOERR);
            r->written = 1;     /* no data is vouched for */
            virtio_log(&d->vp.vdev, "I/O error at byte %llu: %s",
                       (unsigned long long)br->offset, strerror(-ret));
        } else {
            set_status(d, r->status, VIRTIO_BLK_S_OK);
        }
        complete_head(d, r->q, r->head, r->written);
    }
    free(r);
}

/* Build an iovec over the chain's bytes [from, from + len) on the readable
 * (out) or writable (in) side. */
static unsigned chain_iov(const struct virtq_chain *c, bool in, uint64_t from, uint64_t len,
                          struct iovec *iov)
{
    unsigned first = in ? c->nout : 0, end = in ? c->nout + c->nin : c->nout, n = 0;
    for (unsigned i = first; i < end && len; i++) {
        const struct virtq_seg *s = &c->seg[i];
        if (from >= s->len) {
            from -= s->len;
            continue;
        }
        uint64_t take = s->len - from < len ? s->len - from : len;
        iov[n++] = (struct iovec){ .iov_base = s->p + from, .iov_len = (size_t)take };
        len -= take;
        from = 0;
    }
    return n;
}

/* One popped chain: complete it now (bad or instant requests) or submit it. */
static void handle_chain(struct virtio_blk *d, unsigned q, const struct virtq_chain *c)
{
    struct virtio_dev *vd = &d->vp.vdev;
    uint8_t hdr[16];
    if (c->in_bytes < 1) {
        /* no status byte to report through: return the chain untouched */
        virtio_log(vd, "request without a writable status byte");
        complete_head(d, q, c->head, 0);
        return;
    }
    const struct virtq_seg *last = &c->seg[c->nout + c->nin - 1];
    uint8_t *status = last->p + last->len - 1;
    if (virtq_chain_from_guest(c, 0, hdr, sizeof(hdr)) < sizeof(hdr)) {
        virtio_log(vd, "request header shorter than 16 bytes");
        set_status(d, status, VIRTIO_BLK_S_IOERR);
        complete_head(d, q, c->head, 1);
        return;
    }
    uint32_t type = (uint32_t)get_le(hdr, 4);
    uint64_t sector = get_le(hdr + 8, 8);
    uint64_t out_data = c->out_bytes - sizeof(hdr), in_data = c->in_bytes - 1u;
    uint64_t capacity = d->disk->size / BLK_SECTOR;
    enum blk_op op;
    uint64_t len = 0;
    bool unmap = false;

    switch (type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT:
        op = type == VIRTIO_BLK_T_IN ? BLK_READ : BLK_WRITE;
        len = op == BLK_READ ? in_data : out_data;
        if (len % BLK_SECTOR || sector > capacity || len / BLK_SECTOR > capacity - sector) {
            virtio_log(vd, "%s of %llu bytes at sector %llu is outside the disk or unaligned",
                       op == BLK_READ ? "read" : "write", (unsigned long long)len,
                       (unsigned long long)sector);
            goto ioerr;
        }
        if (op == BLK_WRITE && d->disk->readonly)
            goto ioerr;
        break;
    case VIRTIO_BLK_T_FLUSH:
        op = BLK_FLUSH;
        break;
    case VIRTIO_BLK_T_GET_ID: {
        size_t n = in_data < VIRTIO_BLK_ID_BYTES ? (size_t)in_data : VIRTIO_BLK_ID_BYTES;
        virtq_chain_to_guest(c, 0, d->serial, n);
        set_status(d, status, VIRTIO_BLK_S_OK);
        complete_head(d, q, c->head, (uint32_t)n + 1);
        return;
    }
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES: {
        bool wz = type == VIRTIO_BLK_T_WRITE_ZEROES;
        if (!virtio_has_feature(vd, wz ? VIRTIO_BLK_F_WRITE_ZEROES : VIRTIO_BLK_F_DISCARD))
            goto unsupp;
        uint8_t seg[16];
        if (out_data != sizeof(seg)) {   /* exactly one range (max_*_seg = 1) */
            virtio_log(vd, "%s with %llu bytes of ranges (one 16-byte range allowed)",
                       wz ? "write-zeroes" : "discard", (unsigned long long)out_data);
            goto ioerr;
        }
        virtq_chain_from_guest(c, sizeof(hdr), seg, sizeof(seg));
        sector = get_le(seg, 8);
        uint64_t nsec = get_le(seg + 8, 4);
        uint32_t flags = (uint32_t)get_le(seg + 12, 4);
        if ((flags & ~VIRTIO_BLK_WZ_UNMAP) || (!wz && flags))
            goto unsupp;
        if (nsec > MAX_RANGE_SECTORS || sector > capacity || nsec > capacity - sector)
            goto ioerr;
        op = wz ? BLK_WRITE_ZEROES : BLK_DISCARD;
        unmap = flags & VIRTIO_BLK_WZ_UNMAP;
        len = nsec * BLK_SECTOR;
        break;
    }
    default:
        goto unsupp;
    }

    unsigned maxiov = op == BLK_READ ? c->nin : op == BLK_WRITE ? c->nout : 0;
    struct vblk_req *r = calloc(1, sizeof(*r) + maxiov * sizeof(struct iovec));
    if (!r) {
        virtio_log(vd, "out of memory for a request");
        goto ioerr;
    }
    r->dev = d;
    r->gen = d->gen;
    r->q = q;
    r->head = c->head;
    r->status = status;
    r->written = 1;
    if (op == BLK_READ) {
        r->niov = chain_iov(c, true, 0, len, r->iov);
        r->written += (uint32_t)len;
        /* the block layer writes these into guest RAM: marked now, for diff
         * snapshots (a snapshot is taken only once requests have drained;
         * the driver may shorten the iovec in place as it goes) */
        for (unsigned i = 0; i < r->niov; i++)
            virtq_chain_mark_dirty(c, r->iov[i].iov_base, r->iov[i].iov_len);
    } else if (op == BLK_WRITE) {
        r->niov = chain_iov(c, false, sizeof(hdr), len, r->iov);
    }
    r->req = (struct blk_req){
        .op = op, .offset = sector * BLK_SECTOR, .len = len, .iov = r->iov, .niov = r->niov,
        .unmap = unmap, .done = req_done, .opaque = r,
    };
    blk_submit(d->disk, &r->req);
    return;

unsupp:
    set_status(d, status, VIRTIO_BLK_S_UNSUPP);
    complete_head(d, q, c->head, 1);
    return;
ioerr:
    set_status(d, status, VIRTIO_BLK_S_IOERR);
    complete_head(d, q, c->head, 1);
}

/* What a request costs the limiter: its data bytes (the chain less the
 * 16-byte header and the status byte), one operation. */
static bool blk_limit_ok(struct virtio_blk *d, unsigned q, const struct virtq_chain *c)
{
    uint64_t all = (uint64_t)c->out_bytes + c->in_bytes;
    if (rl_consume(d->rl, all > 17 ? all - 17 : 0, 1))
        return true;
    d->vp.vdev.vq[q].last_avail--;      /* taken again when the limiter resumes */
    return false;
}

static void blk_queue_notify(struct virtio_dev *vd, unsigned q)
{
    struct virtio_blk *d = vd->opaque;
    while (virtio_live(vd) && virtio_queue_pop(vd, q, &d->chain) > 0) {
        if (d->rl && !blk_limit_ok(d, q, &d->chain))
            break;
        handle_chain(d, q, &d->chain);
    }
}

/* The limiter's timer: tokens are there again (device context). */
static void blk_resume(void *opaque)
{
    struct virtio_blk *d = opaque;
    if (d->vp.vdev.vq[0].enabled)
        blk_queue_notify(&d->vp.vdev, 0);
}

/* A new rate limit while running (device context, vm_set_limit). */
static int blk_set_limit(void *opaque, unsigned which, const struct rl_config *c, struct err *e)
{
    struct virtio_blk *d = opaque;
    (void)which;
    if (!rl_config_on(c)) {
        bool was = d->rl != NULL;
        rl_free(d->rl);
        d->rl = NULL;
        if (was)
            blk_resume(d);
        return 0;
    }
    if (d->rl) {
        rl_update(d->rl, c);
        return 0;
    }
    d->rl = rl_new(d->loop, c, blk_resume, d, e);
    return d->rl ? 0 : -ENOMEM;
}

static uint32_t blk_cfg_read(struct virtio_dev *vd, unsigned off, unsigned size)
{
    struct virtio_blk *d = vd->opaque;
    if (off >= CFG_SIZE || size > CFG_SIZE - off)
        return 0;
    return (uint32_t)get_le(d->cfg + off, size);
}

static void blk_cfg_write(struct virtio_dev *vd, unsigned off, unsigned size, uint32_t val)
{
    (void)off; (void)size; (void)val;
    virtio_log(vd, "write to read-only config space at %u (ignored)", off);
}

static void blk_reset(struct virtio_dev *vd)
{
    struct virtio_blk *d = vd->opaque;
    d->gen++;
}

/* --- snapshots ------------------------------------------------------------ */

/* Every request in flight completes (its chain is returned and the driver
 * interrupted as usual) before anything is saved. */
static void blk_quiesce(struct virtio_dev *vd)
{
    struct virtio_blk *d = vd->opaque;
    blk_drain(d->disk);
}

/* The device type's part: str image path (for messages), u64 size, bool
 * read-only (both checked on load), str the internal snapshot taken of the
 * image (NULL: none).  With a tag (w->tag) a writable disk gets a qcow2
 * internal snapshot of that name, so disk and memory state travel
 * together; a writable raw disk cannot, and fails the save. */
static void blk_save(struct virtio_dev *vd, struct snap_writer *w)
{
    struct virtio_blk *d = vd->opaque;
    const char *taken = NULL;
    if (w->tag && !d->disk->readonly) {
        struct err e;
        int ret = blk_snapshot(d->disk, w->tag, &e);
        if (ret < 0)
            snapw_fail(w, ret, "%s", e.msg);
        else
            taken = w->tag;
    }
    snapw_str(w, d->disk->path);
    snapw_u64(w, d->disk->size);
    snapw_bool(w, d->disk->readonly);
    snapw_str(w, taken);
}

/* Deferred to snap_file_commit: revert the image to the snapshot's tag. */
static int blk_revert(void *opaque, struct err *e)
{
    struct virtio_blk *d = opaque;
    int ret = blk_snapshot_apply(d->disk, d->revert_tag, e);
    free(d->revert_tag);
    d->revert_tag = NULL;
    return ret;
}

static int blk_load(struct virtio_dev *vd, struct snap_reader *r, struct snap_file *f,
                    struct err *e)
{
    struct virtio_blk *d = vd->opaque;
    char *path = NULL, *taken = NULL;
    snapr_str(r, SNAP_MAX_STR, &path);
    uint64_t size = snapr_u64(r);
    bool ro = snapr_bool(r);
    snapr_str(r, SNAP_MAX_STR, &taken);
    int ret = snapr_end(r, e);
    if (ret == 0 && size != d->disk->size)
        ret = err_set(e, -EINVAL, "disk %s has %llu bytes, the snapshot's disk (%s) had %llu",
                      d->disk->path, (unsigned long long)d->disk->size, path,
                      (unsigned long long)size);
    if (ret == 0 && ro != d->disk->readonly)
        ret = err_set(e, -EINVAL, "disk %s is %s, the snapshot's disk (%s) was %s",
                      d->disk->path, d->disk->readonly ? "read-only" : "writable", path,
                      ro ? "read-only" : "writable");
    /* the image must hold the snapshot's disk state (the internal snapshot
     * the save recorded; f->tag only if a state lacks the name); it is
     * reverted only once the whole snapshot has loaded */
    const char *tag = taken && *taken ? taken : f->tag;
    if (ret == 0 && taken && !f->disks_as_is && tag) {
        struct err ce;
        if ((ret = blk_snapshot_check(d->disk, tag, &ce)) < 0)
            ret = err_set(e, ret, "%s (taken with the VM snapshot '%s')", ce.msg, tag);
        else if (!(d->revert_tag = strdup(tag)))
            ret = err_set(e, -ENOMEM, "out of memory");
        else if ((ret = snap_file_defer(f, blk_revert, d, e)) < 0) {
            free(d->revert_tag);
            d->revert_tag = NULL;
        }
    }
    free(path);
    free(taken);
    if (ret == 0 && d->rl)
        rl_kick(d->rl);         /* requests it had refused may wait in the ring */
    return ret;
}

static const struct virtio_dev_ops blk_ops = {
    .queue_notify = blk_queue_notify,
    .cfg_read = blk_cfg_read,
    .cfg_write = blk_cfg_write,
    .reset = blk_reset,
    .quiesce = blk_quiesce,
    .save = blk_save,
    .load = blk_load,
};

static void blk_free(struct virtio_pci *vp)
{
    struct virtio_blk *d = vp->vdev.opaque;
    blk_close(d->disk);     /* waits for requests in flight */
    rl_free(d->rl);
    free(d->revert_tag);
    free(d);
}

static void blk_stats_get(void *opaque, struct vm_dev_stats *o)
{
    const struct blk_stats *s = &((struct virtio_blk *)opaque)->disk->stats;
    o->read_bytes = s->read_bytes;
    o->write_bytes = s->write_bytes;
    o->read_ops = s->read_ops;
    o->write_ops = s->write_ops;
    o->flush_ops = s->flush_ops;
    o->errors = s->errors;
    o->read_ns = s->read_ns;
    o->write_ns = s->write_ns;
}

int virtio_blk_create(const struct virtio_host *h, const struct disk_config *dc, struct err *e)
{
    struct virtio_blk *d = calloc(1, sizeof(*d));
    if (!d)
        return err_set(e, -ENOMEM, "virtio-blk: out of memory");
    d->disk = blk_open(dc, h->loop, e);
    if (!d->disk) {
        free(d);
        return -EINVAL;
    }
    memcpy(d->serial, dc->serial, strnlen(dc->serial, VIRTIO_BLK_ID_BYTES));
    d->loop = h->loop;
    if (rl_config_on(&dc->limit) && !(d->rl = rl_new(h->loop, &dc->limit, blk_resume, d, e))) {
        blk_close(d->disk);
        free(d);
        return -ENOMEM;
    }
    uint64_t features = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE |
                        1ull << VIRTIO_BLK_F_FLUSH;
    if (d->disk->readonly)
        features |= 1ull << VIRTIO_BLK_F_RO;
    else
        features |= 1ull << VIRTIO_BLK_F_DISCARD | 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
    put_le(d->cfg + CFG_CAPACITY, d->disk->size / BLK_SECTOR, 8);
    put_le(d->cfg + CFG_SEG_MAX, BLK_QUEUE_SIZE - 2, 4);
    put_le(d->cfg + CFG_BLK_SIZE, BLK_SECTOR, 4);
    put_le(d->cfg + CFG_NUM_QUEUES, 1, 2);
    put_le(d->cfg + CFG_MAX_DISCARD_SECTORS, MAX_RANGE_SECTORS, 4);
    put_le(d->cfg + CFG_MAX_DISCARD_SEG, 1, 4);
    put_le(d->cfg + CFG_DISCARD_ALIGN, 1, 4);
    put_le(d->cfg + CFG_MAX_WZ_SECTORS, MAX_RANGE_SECTORS, 4);
    put_le(d->cfg + CFG_MAX_WZ_SEG, 1, 4);
    d->cfg[CFG_WZ_MAY_UNMAP] = 1;
    virtio_dev_init(&d->vp.vdev, "virtio-blk", VIRTIO_ID_BLOCK, features, 1, BLK_QUEUE_SIZE,
                    CFG_SIZE, h->mem, &blk_ops, d);
    int ret = virtio_pci_init(&d->vp, PCI_CLASS_STORAGE_SCSI, blk_free, e);
    if (ret == 0)
        ret = pci_bus_plug(h->pb, &d->vp.pci, e);
    if (ret < 0) {
        blk_close(d->disk);
        rl_free(d->rl);
        free(d);
    } else if (h->vm) {
        vm_add_stat_source(h->vm, VM_DEV_BLOCK, blk_stats_get, d);
        vm_set_limit_fn(h->vm, d, blk_set_limit);
    }
    return ret;
}

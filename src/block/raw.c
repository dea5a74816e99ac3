/* The raw image driver: the image file is the disk, byte for byte.
 *
 * I/O goes through one io_uring per image (queue depth RAW_RING_DEPTH)
 * whose completion eventfd is on the VM's event loop: submission is a
 * non-blocking ring write plus io_uring_enter in device context, the
 * transfer itself runs in the host kernel, and completions are reaped by
 * raw_reap() in device context.  Requests that find the submission ring full
 * wait on a FIFO and go in as completions free slots.  Short transfers are
 * resubmitted for the remainder.  If the host refuses io_uring (ENOSYS or
 * EPERM under a seccomp policy) the driver says so once and does every
 * request synchronously in device context instead.
 *
 * DISCARD punches a hole (FALLOC_FL_PUNCH_HOLE); a file system that cannot
 * punch holes makes discard a no-op (it is advisory).  WRITE_ZEROES punches
 * when unmap is allowed and uses FALLOC_FL_ZERO_RANGE otherwise; when the
 * file system supports neither, zeroes are written. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <limits.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block.h"
#include "core/iov.h"

#define RAW_RING_DEPTH 128
#define ZERO_CHUNK (1u << 20)

struct raw {
    struct io_uring ring;
    bool uring;
    int efd;
    struct blk_req *wait_head, *wait_tail;  /* did not fit in the ring */
};

static const uint8_t *zero_chunk(void)
{
    static uint8_t *z;
    if (!z)
        z = calloc(1, ZERO_CHUNK);
    return z;
}

static bool punch_unsupported(int err)
{
    return err == EOPNOTSUPP || err == ENOTSUP || err == EINVAL || err == ENOSYS;
}

/* WRITE_ZEROES without fallocate support: write zero chunks synchronously. */
static int write_zeroes_slow(struct blk *b, uint64_t off, uint64_t len)
{
    const uint8_t *z = zero_chunk();
    if (!z)
        return -ENOMEM;
    while (len) {
        size_t n = len < ZERO_CHUNK ? (size_t)len : ZERO_CHUNK;
        ssize_t w = pwrite(b->fd, z, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        off += (uint64_t)w;
        len -= (uint64_t)w;
    }
    return 0;
}

static int falloc_mode(const struct blk_req *r)
{
    if (r->op == BLK_DISCARD || r->unmap)
        return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    return FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
}

/* What a fallocate result means for the request: done, or fall back. */
static int falloc_result(struct blk *b, struct blk_req *r, int res)
{
    if (res >= 0 || !punch_unsupported(-res))
        return res < 0 ? res : 0;
    if (r->op == BLK_DISCARD)
        return 0;                                   /* advisory */
    if (r->unmap) {                                 /* try zero-range next */
        if (fallocate(b->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)r->offset,
                      (off_t)r->len) == 0)
            return 0;
    }
    return write_zeroes_slow(b, r->offset, r->len);
}

static int sync_rw(struct blk *b, struct blk_req *r)
{
    while (r->niov) {
        ssize_t n = r->op == BLK_READ
            ? preadv(b->fd, r->iov, (int)(r->niov < IOV_MAX ? r->niov : IOV_MAX),
                     (off_t)(r->offset + r->xfer_done))
            : pwritev(b->fd, r->iov, (int)(r->niov < IOV_MAX ? r->niov : IOV_MAX),
                      (off_t)(r->offset + r->xfer_done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        r->xfer_done += (uint64_t)n;
        iov_consume(&r->iov, &r->niov, (uint64_t)n);
    }
    return 0;
}

static void submit_sync(struct blk *b, struct blk_req *r)
{
    int ret;
    switch (r->op) {
    case BLK_READ:
    case BLK_WRITE:
        ret = sync_rw(b, r);
        break;
    case BLK_FLUSH:
        ret = fdatasync(b->fd) < 0 ? -errno : 0;
        break;
    default:
        ret = fallocate(b->fd, falloc_mode(r), (off_t)r->offset, (off_t)r->len) < 0 ? -errno : 0;
        ret = falloc_result(b, r, ret);
        break;
    }
    blk_complete(b, r, ret);
}

/* Put r into the ring; false if the ring is full. */
static bool ring_put(struct raw *rs, struct blk *b, struct blk_req *r)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&rs->ring);
    if (!sqe)
        return false;
    switch (r->op) {
    case BLK_READ:
        io_uring_prep_readv(sqe, b->fd, r->iov, r->niov < IOV_MAX ? r->niov : IOV_MAX,
                            r->offset + r->xfer_done);
        break;
    case BLK_WRITE:
        io_uring_prep_writev(sqe, b->fd, r->iov, r->niov < IOV_MAX ? r->niov : IOV_MAX,
                             r->offset + r->xfer_done);
        break;
    case BLK_FLUSH:
        io_uring_prep_fsync(sqe, b->fd, IORING_FSYNC_DATASYNC);
        break;
    default:
        io_uring_prep_fallocate(sqe, b->fd, falloc_mode(r), (off_t)r->offset, (off_t)r->len);
        break;
    }
    io_uring_sqe_set_data(sqe, r);
    return true;
}

static void wait_push(struct raw *rs, struct blk_req *r)
{
    r->next = NULL;
    if (rs->wait_tail)
        rs->wait_tail->next = r;
    else
        rs->wait_head = r;
    rs->wait_tail = r;
}

static void ring_submit(struct blk *b, struct raw *rs)
{
    int ret;
    do
        ret = io_uring_submit(&rs->ring);
    while (ret == -EINTR);
    /* EBUSY/EAGAIN: the kernel is out of room for now; what stays in the
     * submission ring goes in with the next submit. */
    if (ret < 0 && ret != -EBUSY && ret != -EAGAIN)
        log_warn("%s: io_uring_submit: %s", b->path, strerror(-ret));
}

static void raw_submit(struct blk *b, struct blk_req *r)
{
    struct raw *rs = b->drv_state;
    if (!rs->uring) {
        submit_sync(b, r);
        return;
    }
    if (rs->wait_head || !ring_put(rs, b, r)) {
        wait_push(rs, r);
        return;
    }
    ring_submit(b, rs);
}

/* One completion: finish r, or resubmit its remainder. */
static void raw_finish(struct blk *b, struct raw *rs, struct blk_req *r, int res)
{
    switch (r->op) {
    case BLK_READ:
    case BLK_WRITE:
        if (res < 0) {
            if (res == -EAGAIN || res == -EINTR) {
                wait_push(rs, r);
                return;
            }
            blk_complete(b, r, res);
            return;
        }
        if (res == 0) {
            blk_complete(b, r, -EIO);   /* end of file inside the image: impossible */
            return;
        }
        r->xfer_done += (uint64_t)res;
        iov_consume(&r->iov, &r->niov, (uint64_t)res);
        if (r->niov) {
            wait_push(rs, r);
            return;
        }
        blk_complete(b, r, 0);
        return;
    case BLK_FLUSH:
        blk_complete(b, r, res < 0 ? res : 0);
        return;
    default:
        blk_complete(b, r, falloc_result(b, r, res));
        return;
    }
}

/* Reap every completion, then move waiting requests into the ring. */
static void raw_reap(struct blk *b)
{
    struct raw *rs = b->drv_state;
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&rs->ring, &cqe) == 0) {
        struct blk_req *r = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&rs->ring, cqe);
        raw_finish(b, rs, r, res);
    }
    bool put = false;
    while (rs->wait_head) {
        struct blk_req *r = rs->wait_head;
        if (!ring_put(rs, b, r))
            break;
        rs->wait_head = r->next;
        if (!rs->wait_head)
            rs->wait_tail = NULL;
        put = true;
    }
    if (put)
        ring_submit(b, rs);
}

static void raw_event(void *opaque)
{
    struct blk *b = opaque;
    struct raw *rs = b->drv_state;
    uint64_t v;
    ssize_t n = read(rs->efd, &v, sizeof(v));
    (void)n;
    raw_reap(b);
}

static int raw_open(struct blk *b, struct err *e)
{
    b->fd = open(b->path, (b->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (b->fd < 0) {
        int err = errno;
        if (err == EROFS || (err == EACCES && !b->readonly))
            return err_set(e, -err, "%s: %s (add readonly=on to use it read-only)", b->path,
                           strerror(err));
        return err_set(e, -err, "%s: %s", b->path, strerror(err));
    }
    struct stat st;
    if (fstat(b->fd, &st) < 0)
        return err_set(e, -errno, "%s: %s", b->path, strerror(errno));
    if (S_ISREG(st.st_mode)) {
        b->size = (uint64_t)st.st_size;
    } else if (S_ISBLK(st.st_mode)) {
        if (ioctl(b->fd, BLKGETSIZE64, &b->size) < 0)
            return err_set(e, -errno, "%s: BLKGETSIZE64: %s", b->path, strerror(errno));
    } else {
        return err_set(e, -EINVAL, "%s: not a regular file or block device", b->path);
    }
    if (b->size == 0)
        return err_set(e, -EINVAL, "%s: the image is empty (0 bytes)", b->path);
    if (b->size % BLK_SECTOR)
        return err_set(e, -EINVAL, "%s: size %llu is not a multiple of %u bytes", b->path,
                       (unsigned long long)b->size, BLK_SECTOR);
    /* one writer or any number of readers, like QEMU's image locking */
    struct flock fl = { .l_type = b->readonly ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET };
    if (fcntl(b->fd, F_OFD_SETLK, &fl) < 0) {
        int err = errno;
        if (err == EAGAIN || err == EACCES)
            return err_set(e, -EBUSY, "%s: in use by another VM or process (image locked)",
                           b->path);
        return err_set(e, -err, "%s: cannot lock: %s", b->path, strerror(err));
    }
    struct raw *rs = calloc(1, sizeof(*rs));
    if (!rs)
        return err_set(e, -ENOMEM, "out of memory");
    rs->efd = -1;
    b->drv_state = rs;
    int ret = io_uring_queue_init(RAW_RING_DEPTH, &rs->ring, 0);
    if (ret < 0) {
        static bool warned;
        if (!warned)
            log_warn("io_uring unavailable (%s): disk I/O runs synchronously", strerror(-ret));
        warned = true;
        return 0;
    }
    rs->uring = true;
    rs->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (rs->efd < 0 || io_uring_register_eventfd(&rs->ring, rs->efd) < 0 ||
        (b->loop && evloop_add(b->loop, rs->efd, raw_event, b, e) < 0)) {
        int err = errno;
        io_uring_queue_exit(&rs->ring);
        if (rs->efd >= 0)
            close(rs->efd);
        free(rs);
        b->drv_state = NULL;
        return err_set(e, -err, "%s: cannot set up io_uring completions: %s", b->path,
                       strerror(err));
    }
    return 0;
}

static void raw_drain(struct blk *b)
{
    struct raw *rs = b->drv_state;
    while (rs && rs->uring && b->inflight) {
        struct io_uring_cqe *cqe;
        if (io_uring_wait_cqe(&rs->ring, &cqe) < 0 && !rs->wait_head)
            break;
        raw_reap(b);
    }
}

static void raw_close(struct blk *b)
{
    struct raw *rs = b->drv_state;
    if (!rs)
        return;
    if (rs->uring) {
        if (b->loop)
            evloop_del(b->loop, rs->efd);
        io_uring_queue_exit(&rs->ring);
        close(rs->efd);
    }
    free(rs);
}

const struct blk_driver blk_raw_driver = {
    .format = "raw",
    .open = raw_open,
    .submit = raw_submit,
    .drain = raw_drain,
    .close = raw_close,
};

/* The qcow2 block driver: struct blk_driver over the synchronous core
 * (qcow2.h).
 *
 * Threads: with an event loop (a VM), each image has one worker thread that
 * owns the struct qimg (its metadata caches included) and runs requests one
 * at a time, in submission order, synchronously (preadv/pwritev + metadata
 * updates).  submit (device context) appends to a mutex-protected queue and
 * signals the worker; the worker moves finished requests to a done list and
 * writes an eventfd registered with the VM's evloop, whose handler (device
 * context) calls blk_complete for each.  Without a loop (tools, unit tests)
 * submit runs the request synchronously and completes it before returning.
 * Running requests in order keeps a FLUSH behind every write submitted
 * before it, so fdatasync covers them. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "block/block.h"
#include "block/qcow2.h"
#include "core/thread.h"

struct qdrv {
    struct qimg *img;
    pthread_t thread;
    bool have_thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* worker: work queued; drain: work done */
    struct blk_req *head, *tail;  /* queued */
    struct blk_req *done_head, *done_tail;
    unsigned busy;              /* queued + running */
    bool stop;
    int efd;
    struct log_limit lim;
};

static uint64_t req_len(const struct blk_req *r)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < r->niov; i++)
        t += r->iov[i].iov_len;
    return t;
}

static int execute(struct qdrv *d, struct blk_req *r)
{
    struct qimg *q = d->img;
    int ret;
    switch (r->op) {
    case BLK_READ:
        ret = qimg_preadv(q, r->iov, r->niov, r->offset);
        break;
    case BLK_WRITE:
        ret = qimg_pwritev(q, r->iov, r->niov, r->offset);
        break;
    case BLK_FLUSH:
        ret = qimg_flush(q);
        break;
    case BLK_DISCARD:
        ret = qimg_discard(q, r->offset, r->len);
        break;
    case BLK_WRITE_ZEROES:
        ret = qimg_write_zeroes(q, r->offset, r->len, r->unmap);
        break;
    default:
        ret = -EINVAL;
    }
    if (ret == 0 && (r->op == BLK_READ || r->op == BLK_WRITE))
        r->xfer_done = req_len(r);
    if (ret < 0)
        log_guest(&d->lim, "qcow2: %s", q->err.msg[0] ? q->err.msg : strerror(-ret));
    return ret;
}

static void *worker(void *opaque)
{
    struct qdrv *d = opaque;
    thread_ready(THREAD_BLK, 0);
    pthread_mutex_lock(&d->lock);
    for (;;) {
        while (!d->head && !d->stop)
            pthread_cond_wait(&d->cond, &d->lock);
        if (!d->head)
            break;
        struct blk_req *r = d->head;
        d->head = r->next;
        if (!d->head)
            d->tail = NULL;
        pthread_mutex_unlock(&d->lock);
        int ret = execute(d, r);
        pthread_mutex_lock(&d->lock);
        r->xfer_done = (uint64_t)(int64_t)ret;  /* the result, until completion */
        r->next = NULL;
        if (d->done_tail)
            d->done_tail->next = r;
        else
            d->done_head = r;
        d->done_tail = r;
        d->busy--;
        pthread_cond_broadcast(&d->cond);
        uint64_t one = 1;
        ssize_t n = write(d->efd, &one, sizeof(one));
        (void)n;
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

static void reap(struct blk *b)
{
    struct qdrv *d = b->drv_state;
    pthread_mutex_lock(&d->lock);
    struct blk_req *r = d->done_head;
    d->done_head = d->done_tail = NULL;
    pthread_mutex_unlock(&d->lock);
    while (r) {
        struct blk_req *next = r->next;
        int ret = (int)(int64_t)r->xfer_done;
        r->xfer_done = ret == 0 && (r->op == BLK_READ || r->op == BLK_WRITE) ? req_len(r) : 0;
        blk_complete(b, r, ret);
        r = next;
    }
}

static void on_event(void *opaque)
{
    struct blk *b = opaque;
    struct qdrv *d = b->drv_state;
    uint64_t v;
    ssize_t n = read(d->efd, &v, sizeof(v));
    (void)n;
    reap(b);
}

static void qd_free(struct blk *b)
{
    struct qdrv *d = b->drv_state;
    if (!d)
        return;
    if (d->have_thread) {
        pthread_mutex_lock(&d->lock);
        d->stop = true;
        pthread_cond_broadcast(&d->cond);
        pthread_mutex_unlock(&d->lock);
        pthread_join(d->thread, NULL);
    }
    if (d->efd >= 0) {
        if (b->loop)
            evloop_del(b->loop, d->efd);
        close(d->efd);
    }
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->cond);
    qimg_close(d->img);
    free(d);
    b->drv_state = NULL;
}

static int qd_open(struct blk *b, struct err *e)
{
    struct qdrv *d = calloc(1, sizeof(*d));
    if (!d)
        return err_set(e, -ENOMEM, "out of memory");
    d->efd = -1;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->cond, NULL);
    b->drv_state = d;
    int r = qimg_open(&d->img, b->path, "qcow2", b->readonly, e);
    if (r < 0) {
        if ((r == -EACCES || r == -EROFS) && !b->readonly) {
            struct err inner = *e;
            err_set(e, r, "%s (add readonly=on to use it read-only)", inner.msg);
        }
        goto fail;
    }
    b->size = d->img->size;
    if (b->size == 0 || b->size % BLK_SECTOR) {
        r = err_set(e, -EINVAL, "%s: virtual size %llu is not a positive multiple of %u bytes",
                    b->path, (unsigned long long)b->size, BLK_SECTOR);
        goto fail;
    }
    if (b->loop) {
        d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (d->efd < 0) {
            r = err_set(e, -errno, "%s: eventfd: %s", b->path, strerror(errno));
            goto fail;
        }
        if ((r = evloop_add(b->loop, d->efd, on_event, b, e)) < 0)
            goto fail;
        if ((r = -pthread_create(&d->thread, NULL, worker, d)) < 0) {
            err_set(e, r, "%s: cannot start the qcow2 worker thread", b->path);
            goto fail;
        }
        d->have_thread = true;
    }
    return 0;
fail:
    qd_free(b);
    return r;
}

static void qd_submit(struct blk *b, struct blk_req *r)
{
    struct qdrv *d = b->drv_state;
    if (!d->have_thread) {
        blk_complete(b, r, execute(d, r));
        return;
    }
    pthread_mutex_lock(&d->lock);
    r->next = NULL;
    if (d->tail)
        d->tail->next = r;
    else
        d->head = r;
    d->tail = r;
    d->busy++;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

static void qd_drain(struct blk *b)
{
    struct qdrv *d = b->drv_state;
    if (!d || !d->have_thread)
        return;
    pthread_mutex_lock(&d->lock);
    while (d->busy)
        pthread_cond_wait(&d->cond, &d->lock);
    pthread_mutex_unlock(&d->lock);
    reap(b);
}

static void qd_close(struct blk *b)
{
    qd_free(b);
}

/* Internal snapshots, called by block.c with nothing in flight: the worker
 * is idle, and holding the lock keeps it so while this thread uses the
 * qimg.  The qcow2 core keeps its own caches right (create and apply drop
 * the L2 cache; the refcount cache is write-through and used by both; the
 * active L1 is rewritten in memory), so later requests see the result. */
static int qd_snapshot(struct blk *b, enum blk_snap_op op, const char *tag, struct err *e)
{
    struct qdrv *d = b->drv_state;
    struct qimg *q = d->img;
    struct qimg_snapshot *s = NULL;
    uint32_t n = 0;
    int k = -1, r;
    pthread_mutex_lock(&d->lock);
    if (op == BLK_SNAP_CREATE) {
        r = qimg_snapshot_create(q, tag, e);
        goto out;
    }
    /* by name (a VM snapshot's tag), not by ID */
    n = q->nb_snapshots;
    if ((r = qimg_snapshots_read(q, &s, e)) < 0) {
        n = 0;
        goto out;
    }
    for (uint32_t i = 0; i < n && k < 0; i++)
        if (!strcmp(s[i].name, tag))
            k = (int)i;
    if (k < 0) {
        r = err_set(e, -ENOENT, "disk %s has no snapshot '%s'", b->path, tag);
        goto out;
    }
    if (s[k].disk_size != b->size) {
        r = err_set(e, -EINVAL, "disk %s: its snapshot '%s' is of a %llu-byte disk, the disk "
                    "now has %llu bytes", b->path, tag, (unsigned long long)s[k].disk_size,
                    (unsigned long long)b->size);
        goto out;
    }
    if (op == BLK_SNAP_APPLY)
        r = qimg_snapshot_apply(q, s[k].id, e);   /* IDs are unique; names need not be */
out:
    qimg_snapshots_free(s, n);
    pthread_mutex_unlock(&d->lock);
    return r;
}

const struct blk_driver blk_qcow2_driver = {
    .format = "qcow2",
    .open = qd_open,
    .submit = qd_submit,
    .drain = qd_drain,
    .close = qd_close,
    .snapshot = qd_snapshot,
};

/* The block layer's generic part: --disk parsing, opening an image with its
 * driver, request checks, completion accounting. */
#include "block/block.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/qcow2.h"
#include "core/opts.h"

static const struct blk_driver *const drivers[] = { &blk_raw_driver, &blk_qcow2_driver };

int disk_config_parse(struct disk_config *d, char *spec, struct err *e)
{
    memset(d, 0, sizeof(*d));
    d->format = NULL;           /* probed at open: qcow2 magic -> qcow2, else raw */
    const char *p = spec;
    char item[4096];
    int r = opts_next(&p, item, sizeof(item), e);
    if (r < 0)
        return r;
    if (r == 0 || !item[0])
        return err_set(e, -EINVAL, "--disk needs a file name (--disk PATH[,format=raw]"
                                   "[,readonly=on][,serial=ID])");
    /* the path, unescaped, is written back at the start of spec */
    size_t plen = strlen(item);
    char path[4096];
    memcpy(path, item, plen + 1);
    while ((r = opts_next(&p, item, sizeof(item), e)) > 0) {
        char *val;
        opts_split(item, &val);
        if (!strcmp(item, "format")) {
            if (!val || (strcmp(val, "raw") && strcmp(val, "qcow2")))
                return err_set(e, -EINVAL, "--disk %s: format '%s' is not supported (raw, "
                               "qcow2)", path, val ? val : "");
            d->format = !strcmp(val, "raw") ? "raw" : "qcow2";
        } else if (!strcmp(item, "readonly")) {
            int b = opts_bool(val);
            if (b < 0)
                return err_set(e, -EINVAL, "--disk %s: readonly=%s: use on or off", path,
                               val ? val : "");
            d->readonly = b;
        } else if (!strcmp(item, "serial")) {
            if (!val || strlen(val) > 20)
                return err_set(e, -EINVAL, "--disk %s: serial must be 1 to 20 characters", path);
            strcpy(d->serial, val);
        } else {
            struct err re;
            int rr = rl_parse_opt(&d->limit, "", "iops", item, val, &re);
            if (rr < 0)
                return err_set(e, rr, "--disk %s: %s", path, re.msg);
            if (rr == 0)
                return err_set(e, -EINVAL, "--disk %s: unknown option '%s' (format, readonly, "
                               "serial, bps, iops, bps_burst, iops_burst, bps_refill, "
                               "iops_refill)", path, item);
        }
    }
    if (r < 0)
        return r;
    memcpy(spec, path, plen + 1); /* unescaped path is never longer than spec */
    d->path = spec;
    return 0;
}

struct blk *blk_open(const struct disk_config *d, struct evloop *loop, struct err *e)
{
    const struct blk_driver *drv = NULL;
    const char *format = d->format;
    if (!format) {
        int q = qimg_probe(d->path, e);
        if (q < 0)
            return NULL;
        format = q ? "qcow2" : "raw";
    }
    for (unsigned i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
        if (!strcmp(drivers[i]->format, format))
            drv = drivers[i];
    if (!drv) {
        err_set(e, -EINVAL, "%s: unknown image format '%s'", d->path, format);
        return NULL;
    }
    struct blk *b = calloc(1, sizeof(*b));
    if (!b || !(b->path = strdup(d->path))) {
        free(b);
        err_set(e, -ENOMEM, "out of memory");
        return NULL;
    }
    b->drv = drv;
    b->probed_raw = !d->format && drv == &blk_raw_driver;
    b->fd = -1;
    b->readonly = d->readonly;
    b->loop = loop;
    if (drv->open(b, e) < 0) {
        if (b->fd >= 0)
            close(b->fd);
        free(b->path);
        free(b);
        return NULL;
    }
    return b;
}

static uint64_t iov_bytes(const struct iovec *iov, unsigned n)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

/* Whether a write at offset 0 starts with the qcow2 magic. */
static bool writes_qcow2_magic(const struct blk_req *r)
{
    uint8_t m[4];
    size_t n = 0;
    for (unsigned i = 0; i < r->niov && n < sizeof(m); i++) {
        const uint8_t *p = r->iov[i].iov_base;
        for (size_t j = 0; j < r->iov[i].iov_len && n < sizeof(m); j++)
            m[n++] = p[j];
    }
    return n == sizeof(m) && m[0] == 'Q' && m[1] == 'F' && m[2] == 'I' && m[3] == 0xfb;
}

void blk_submit(struct blk *b, struct blk_req *r)
{
    uint64_t len = r->op == BLK_READ || r->op == BLK_WRITE ? iov_bytes(r->iov, r->niov) : r->len;
    r->xfer_done = 0;
    r->next = NULL;
    r->submit_ns = time_now_ns();
    r->bytes = len;
    b->inflight++;
    if (b->loop)
        evloop_busy_inc(b->loop);
    if (r->op != BLK_READ && r->op != BLK_FLUSH && b->readonly) {
        blk_complete(b, r, -EROFS);
        return;
    }
    if (r->op != BLK_FLUSH && (r->offset > b->size || len > b->size - r->offset)) {
        blk_complete(b, r, -EINVAL);
        return;
    }
    if (b->probed_raw && r->offset == 0 && r->op == BLK_WRITE && writes_qcow2_magic(r)) {
        log_guest(&b->log, "%s: write of a qcow2 header into a raw image whose format was "
                  "probed: refused (give format=raw to allow it)", b->path);
        blk_complete(b, r, -EPERM);
        return;
    }
    if (r->op != BLK_FLUSH && len == 0) {
        blk_complete(b, r, 0);
        return;
    }
    b->drv->submit(b, r);
}

static void account(struct blk_stats *s, const struct blk_req *r, int ret)
{
    uint64_t ns = time_now_ns() - r->submit_ns;
    if (ret < 0) {
        s->errors++;
        return;
    }
    switch (r->op) {
    case BLK_READ: s->read_ops++; s->read_bytes += r->bytes; s->read_ns += ns; break;
    case BLK_WRITE: s->write_ops++; s->write_bytes += r->bytes; s->write_ns += ns; break;
    case BLK_FLUSH: s->flush_ops++; break;
    default: s->discard_ops++; break;
    }
}

void blk_complete(struct blk *b, struct blk_req *r, int ret)
{
    account(&b->stats, r, ret);
    b->inflight--;
    if (b->loop)
        evloop_busy_dec(b->loop);
    r->done(r, ret);
}

void blk_drain(struct blk *b)
{
    if (b && b->inflight)
        b->drv->drain(b);
}

static int blk_snap(struct blk *b, enum blk_snap_op op, const char *tag, struct err *e)
{
    if (!b->drv->snapshot)
        return err_set(e, -ENOTSUP, "disk %s is %s: snapshots need qcow2 disks", b->path,
                       b->drv->format);
    if (op != BLK_SNAP_CHECK && b->readonly)
        return err_set(e, -EROFS, "disk %s is read-only: it cannot take or revert to a "
                       "snapshot", b->path);
    blk_drain(b);
    if (b->inflight)
        return err_set(e, -EBUSY, "disk %s: requests still in flight", b->path);
    return b->drv->snapshot(b, op, tag, e);
}

int blk_snapshot(struct blk *b, const char *tag, struct err *e)
{
    return blk_snap(b, BLK_SNAP_CREATE, tag, e);
}

int blk_snapshot_check(struct blk *b, const char *tag, struct err *e)
{
    return blk_snap(b, BLK_SNAP_CHECK, tag, e);
}

int blk_snapshot_apply(struct blk *b, const char *tag, struct err *e)
{
    return blk_snap(b, BLK_SNAP_APPLY, tag, e);
}

void blk_close(struct blk *b)
{
    if (!b)
        return;
    if (b->inflight)
        b->drv->drain(b);
    b->drv->close(b);
    if (b->fd >= 0)
        close(b->fd);
    free(b->path);
    free(b);
}

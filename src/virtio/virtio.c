/* Virtio device core: features, status, reset, queues (see virtio.h). */
#include "virtio/virtio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/snapshot.h"

#define CORE_FEATURES ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX) | \
                       (1ull << VIRTIO_RING_F_INDIRECT_DESC))

void virtio_dev_init(struct virtio_dev *vd, const char *name, uint16_t device_id,
                     uint64_t features, unsigned nqueues, uint16_t max_qsize, uint32_t cfg_size,
                     const struct gmem *mem, const struct virtio_dev_ops *ops, void *opaque)
{
    memset(vd, 0, sizeof(*vd));
    vd->name = name;
    vd->device_id = device_id;
    vd->host_features = features | CORE_FEATURES;
    vd->nqueues = nqueues > VIRTIO_MAX_QUEUES ? VIRTIO_MAX_QUEUES : nqueues;
    vd->cfg_size = cfg_size;
    vd->mem = mem;
    vd->ops = ops;
    vd->opaque = opaque;
    if (max_qsize > VIRTQ_MAX_SIZE)
        max_qsize = VIRTQ_MAX_SIZE;
    for (unsigned i = 0; i < vd->nqueues; i++)
        virtq_init(&vd->vq[i], mem, max_qsize);
    virtio_reset(vd);
}

void virtio_reset(struct virtio_dev *vd)
{
    vd->status = 0;
    vd->driver_features = 0;
    vd->config_vector = VIRTIO_NO_VECTOR;
    for (unsigned i = 0; i < vd->nqueues; i++) {
        virtq_reset(&vd->vq[i]);
        vd->vector[i] = VIRTIO_NO_VECTOR;
    }
    if (vd->ops && vd->ops->reset)
        vd->ops->reset(vd);
}

static void vlog_dev(struct virtio_dev *vd, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    log_guest(&vd->log, "%s: %s", vd->name, msg);
}

void virtio_log(struct virtio_dev *vd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog_dev(vd, fmt, ap);
    va_end(ap);
}

void virtio_needs_reset(struct virtio_dev *vd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog_dev(vd, fmt, ap);
    va_end(ap);
    if (vd->status & VIRTIO_STATUS_NEEDS_RESET)
        return;
    vd->status |= VIRTIO_STATUS_NEEDS_RESET;
    if (vd->transport && vd->transport->notify_config)
        vd->transport->notify_config(vd);
}

bool virtio_live(const struct virtio_dev *vd)
{
    return (vd->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FAILED)) ==
           VIRTIO_STATUS_DRIVER_OK;
}

uint32_t virtio_get_host_features(const struct virtio_dev *vd, unsigned sel)
{
    return sel < 2 ? (uint32_t)(vd->host_features >> (32 * sel)) : 0;
}

void virtio_set_driver_features(struct virtio_dev *vd, unsigned sel, uint32_t val)
{
    if (vd->status & VIRTIO_STATUS_FEATURES_OK) {
        virtio_log(vd, "driver features written after FEATURES_OK (ignored)");
        return;
    }
    if (sel >= 2) {
        if (val)
            virtio_log(vd, "driver accepted features 0x%x in word %u (not offered)", val, sel);
        return;
    }
    uint64_t mask = 0xffffffffull << (32 * sel);
    vd->driver_features = (vd->driver_features & ~mask) | ((uint64_t)val << (32 * sel));
}

static bool features_ok(struct virtio_dev *vd)
{
    uint64_t extra = vd->driver_features & ~vd->host_features;
    if (extra) {
        virtio_log(vd, "driver accepted features 0x%llx that were not offered",
                   (unsigned long long)extra);
        return false;
    }
    if (!virtio_has_feature(vd, VIRTIO_F_VERSION_1)) {
        virtio_log(vd, "driver did not accept VIRTIO_F_VERSION_1 (legacy drivers unsupported)");
        return false;
    }
    return true;
}

void virtio_set_status(struct virtio_dev *vd, uint8_t val)
{
    if (val == 0) {
        virtio_reset(vd);
        return;
    }
    uint8_t old = vd->status;
    uint8_t drv = old & ~VIRTIO_STATUS_NEEDS_RESET;
    uint8_t want = val & ~VIRTIO_STATUS_NEEDS_RESET;
    if (drv & ~want) {
        virtio_log(vd, "driver cleared status bits 0x%x without a reset (ignored)", drv & ~want);
        want |= drv;
    }
    if ((want & VIRTIO_STATUS_FEATURES_OK) && !(drv & VIRTIO_STATUS_FEATURES_OK) &&
        !features_ok(vd))
        want &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
    if ((want & VIRTIO_STATUS_DRIVER_OK) && !(want & VIRTIO_STATUS_FEATURES_OK)) {
        virtio_log(vd, "DRIVER_OK without FEATURES_OK (ignored)");
        want &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
    }
    vd->status = want | (old & VIRTIO_STATUS_NEEDS_RESET);
    /* buffers may have been made available before DRIVER_OK */
    if (!(old & VIRTIO_STATUS_DRIVER_OK) && virtio_live(vd))
        for (unsigned q = 0; q < vd->nqueues; q++)
            if (vd->vq[q].enabled)
                virtio_queue_kick(vd, q);
}

void virtio_queue_enable(struct virtio_dev *vd, unsigned q)
{
    if (q >= vd->nqueues || vd->vq[q].enabled)
        return;
    if (!(vd->status & VIRTIO_STATUS_FEATURES_OK)) {
        virtio_log(vd, "queue %u enabled before FEATURES_OK (ignored)", q);
        return;
    }
    struct err e;
    if (virtq_enable(&vd->vq[q], virtio_has_feature(vd, VIRTIO_RING_F_EVENT_IDX),
                     virtio_has_feature(vd, VIRTIO_RING_F_INDIRECT_DESC), &e) < 0)
        virtio_needs_reset(vd, "queue %u: %s", q, e.msg);
}

void virtio_queue_kick(struct virtio_dev *vd, unsigned q)
{
    if (q >= vd->nqueues) {
        virtio_log(vd, "notify for queue %u (the device has %u)", q, vd->nqueues);
        return;
    }
    struct virtq *vq = &vd->vq[q];
    if (!virtio_live(vd) || !vq->enabled || vq->broken)
        return;
    if (vd->ops->queue_notify)
        vd->ops->queue_notify(vd, q);
}

int virtio_queue_pop(struct virtio_dev *vd, unsigned q, struct virtq_chain *c)
{
    struct err e;
    int ret = virtq_pop(&vd->vq[q], c, &e);
    if (ret < 0)
        virtio_needs_reset(vd, "queue %u: %s", q, e.msg);
    return ret;
}

void virtio_queue_push(struct virtio_dev *vd, unsigned q, const struct virtq_chain *c,
                       uint32_t written)
{
    if (written > c->in_bytes)
        written = c->in_bytes;
    virtq_push(&vd->vq[q], c->head, written);
}

void virtio_queue_notify_used(struct virtio_dev *vd, unsigned q)
{
    if (virtq_should_notify(&vd->vq[q]) && vd->transport && vd->transport->notify_queue)
        vd->transport->notify_queue(vd, q);
}

/* --- snapshots ------------------------------------------------------------ */

#define STATUS_KNOWN (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | \
                      VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK | \
                      VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)

void virtio_dev_save(struct virtio_dev *vd, struct snap_writer *w)
{
    snapw_u64(w, vd->host_features);
    snapw_u64(w, vd->driver_features);
    snapw_u8(w, vd->status);
    snapw_u8(w, vd->config_generation);
    snapw_u16(w, vd->config_vector);
    snapw_u32(w, vd->nqueues);
    for (unsigned i = 0; i < vd->nqueues; i++) {
        const struct virtq *q = &vd->vq[i];
        if (q->enabled && !q->broken && q->last_avail != q->used_idx)
            snapw_fail(w, -EBUSY, "%s: queue %u has %u request(s) in flight after quiesce",
                       vd->name, i, (uint16_t)(q->last_avail - q->used_idx));
        snapw_u16(w, q->size);
        snapw_bool(w, q->enabled);
        snapw_u64(w, q->desc_gpa);
        snapw_u64(w, q->avail_gpa);
        snapw_u64(w, q->used_gpa);
        snapw_bool(w, q->event_idx);
        snapw_bool(w, q->indirect);
        snapw_u16(w, q->last_avail);
        snapw_u16(w, q->used_idx);
        snapw_u16(w, q->signalled_used);
        snapw_bool(w, q->broken);
        snapw_u16(w, vd->vector[i]);
    }
}

static bool vector_ok(uint16_t v, unsigned nvec)
{
    return v == VIRTIO_NO_VECTOR || v < nvec;
}

void virtio_dev_load(const struct virtio_dev *vd, struct snap_reader *r, unsigned nvec,
                     struct virtio_dev_snap *s)
{
    memset(s, 0, sizeof(*s));
    uint64_t host = snapr_u64(r);
    s->driver_features = snapr_u64(r);
    s->status = snapr_u8(r);
    s->config_generation = snapr_u8(r);
    s->config_vector = snapr_u16(r);
    uint32_t nq = snapr_u32(r);
    if (r->fail)
        return;
    if (!snapr_check(r, host == vd->host_features,
                     "the device offered other features than this VM's") ||
        !snapr_check(r, nq == vd->nqueues, "another number of queues"))
        return;     /* another device: its queues do not compare */
    snapr_check(r, !(s->status & ~STATUS_KNOWN), "unknown device status bits");
    snapr_check(r, !(s->status & VIRTIO_STATUS_DRIVER_OK) ||
                (s->status & VIRTIO_STATUS_FEATURES_OK), "DRIVER_OK without FEATURES_OK");
    if (s->status & VIRTIO_STATUS_FEATURES_OK) {
        snapr_check(r, !(s->driver_features & ~vd->host_features),
                    "accepted features that were not offered");
        snapr_check(r, s->driver_features >> VIRTIO_F_VERSION_1 & 1,
                    "FEATURES_OK without VIRTIO_F_VERSION_1");
    }
    snapr_check(r, vector_ok(s->config_vector, nvec), "config vector beyond the MSI-X table");
    bool event_idx = s->driver_features >> VIRTIO_RING_F_EVENT_IDX & 1;
    bool indirect = s->driver_features >> VIRTIO_RING_F_INDIRECT_DESC & 1;
    for (unsigned i = 0; i < nq; i++) {
        struct virtq_state q;
        q.size = snapr_u16(r);
        q.enabled = snapr_bool(r);
        q.desc_gpa = snapr_u64(r);
        q.avail_gpa = snapr_u64(r);
        q.used_gpa = snapr_u64(r);
        q.event_idx = snapr_bool(r);
        q.indirect = snapr_bool(r);
        q.last_avail = snapr_u16(r);
        q.used_idx = snapr_u16(r);
        q.signalled_used = snapr_u16(r);
        q.broken = snapr_bool(r);
        s->vector[i] = snapr_u16(r);
        if (r->fail)
            return;
        char what[160];     /* snapr_check keeps what fits */
        snapr_check(r, vector_ok(s->vector[i], nvec), "queue vector beyond the MSI-X table");
        if (q.enabled) {
            snapr_check(r, s->status & VIRTIO_STATUS_FEATURES_OK,
                        "a queue enabled before FEATURES_OK");
            snapr_check(r, q.event_idx == event_idx && q.indirect == indirect,
                        "a queue's ring features are not the accepted ones");
            if (!q.broken && q.last_avail != q.used_idx) {
                snprintf(what, sizeof(what), "queue %u: %u chains in flight", i,
                         (uint16_t)(q.last_avail - q.used_idx));
                snapr_check(r, false, what);
            }
        }
        struct err e;
        s->vq[i] = vd->vq[i];
        if (virtq_restore(&s->vq[i], &q, &e) < 0) {
            snprintf(what, sizeof(what), "queue %u: %.80s", i, e.msg);
            snapr_check(r, false, what);
        }
    }
}

void virtio_dev_restore(struct virtio_dev *vd, const struct virtio_dev_snap *s)
{
    vd->driver_features = s->driver_features;
    vd->status = s->status;
    vd->config_generation = s->config_generation;
    vd->config_vector = s->config_vector;
    for (unsigned i = 0; i < vd->nqueues; i++) {
        vd->vq[i] = s->vq[i];
        vd->vector[i] = s->vector[i];
    }
}

/* Virtio device core: features, status, reset, queues (see virtio.h). */
#include "virtio/virtio.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

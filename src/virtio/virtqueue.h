/* Split virtqueues (virtio 1.x, 2.7): the device side.
 *
 * The driver programs size and ring addresses through the transport, then
 * enables the queue; virtq_enable checks that the three rings lie in RAM
 * with the spec's alignment and keeps host pointers to them (guest RAM is
 * never unmapped while a VM runs).  Every chain virtq_pop takes is validated
 * completely before the device sees it (see virtqueue.c); a malformed one
 * returns a negative errno with a message and leaves the queue untouched
 * but marked broken, and the device core marks the device NEEDS_RESET.
 *
 * Each descriptor is copied out of guest memory once and then checked, so
 * a guest changing descriptors concurrently (another vCPU thread) cannot
 * make the device use a value it did not check.  Indices are read with
 * acquire and published with release ordering; the notification decision
 * (virtq_should_notify) is preceded by a full fence, as the spec's event
 * index protocol needs.
 *
 * Diff snapshots: everything written into guest RAM here (used ring
 * entries and index, avail_event, virtq_chain_to_guest) is marked dirty
 * (gmem_mark_dirty_hva; nothing while dirty tracking is off).  A device
 * that writes a chain's buffers by other means (the block layer's reads,
 * getrandom) marks them itself: virtq_chain_mark_dirty. */
#ifndef PETREL_VIRTQUEUE_H
#define PETREL_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "core/memory.h"

#define VIRTQ_MAX_SIZE 1024            /* largest queue size a device offers */
#define VIRTQ_MAX_INDIRECT 1024        /* descriptors in one indirect table */
#define VIRTQ_MAX_SEGS 1024            /* buffers in one chain, all told */
#define VIRTQ_MAX_CHAIN_BYTES (1u << 30)

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

/* a descriptor as it is in guest memory (little endian) */
struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct virtq_seg {
    uint8_t *p;         /* host address, inside guest RAM */
    uint32_t len;
};

/* A validated chain: seg[0..nout) are device-readable, seg[nout..nout+nin)
 * device-writable. */
struct virtq_chain {
    const struct gmem *mem;     /* the guest RAM the segments point into */
    uint16_t head;
    unsigned nout, nin;
    uint32_t out_bytes, in_bytes;
    struct virtq_seg seg[VIRTQ_MAX_SEGS];
};

struct virtq {
    /* programmed by the driver through the transport */
    uint16_t size, max_size;
    bool enabled;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    /* negotiated features */
    bool event_idx, indirect;
    /* device state */
    const struct gmem *mem;
    const uint8_t *desc;        /* host pointers, valid while enabled */
    uint16_t *avail;            /* flags, idx, ring[size], used_event */
    uint8_t *used;              /* flags, idx, ring[size] {id, len}, avail_event */
    uint16_t last_avail;        /* next avail entry to take */
    uint16_t used_idx;          /* next used entry to fill */
    uint16_t signalled_used;    /* used_idx at the last notification decision */
    bool broken;                /* a malformed chain was seen: stop until reset */
};

void virtq_init(struct virtq *q, const struct gmem *mem, uint16_t max_size);
/* Back to the reset state (disabled, size = max_size, addresses 0). */
void virtq_reset(struct virtq *q);
/* Validate the programmed rings and start the queue. */
int virtq_enable(struct virtq *q, bool event_idx, bool indirect, struct err *e);

/* What a snapshot keeps of a queue: the driver's programming and the
 * device's indices (the host pointers are derived again on restore). */
struct virtq_state {
    uint16_t size;
    bool enabled;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    bool event_idx, indirect;
    uint16_t last_avail, used_idx, signalled_used;
    bool broken;
};
void virtq_get_state(const struct virtq *q, struct virtq_state *s);
/* Put q into state s, a snapshot's: size a power of two up to max_size; a
 * disabled queue has no indices or flags; an enabled one passes
 * virtq_enable's ring checks (aligned, in RAM) and keeps s's indices, with
 * no more chains taken than the ring holds.  -EINVAL/-EFAULT with a
 * message, q unchanged. */
int virtq_restore(struct virtq *q, const struct virtq_state *s, struct err *e);

/* Take the next available chain: 1 (c filled), 0 (none available), or a
 * negative errno for a malformed ring or chain (message in e; the queue is
 * then broken and takes nothing more until reset). */
int virtq_pop(struct virtq *q, struct virtq_chain *c, struct err *e);
/* Return a chain to the driver with `len` bytes written into it.  Does not
 * notify: call virtq_should_notify once a batch is pushed. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t len);
/* Whether the driver wants an interrupt for what was pushed since the last
 * call (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX). */
bool virtq_should_notify(struct virtq *q);

/* Copy into the chain's writable buffers from byte `off` on; returns the
 * number of bytes copied (less than len if the buffers end). */
size_t virtq_chain_to_guest(const struct virtq_chain *c, size_t off, const void *src, size_t len);
/* Mark len bytes at hva (inside c's writable buffers) written. */
static inline void virtq_chain_mark_dirty(const struct virtq_chain *c, const void *hva,
                                          size_t len)
{
    gmem_mark_dirty_hva(c->mem, hva, len);
}
/* Copy out of the chain's readable buffers from byte `off` on. */
size_t virtq_chain_from_guest(const struct virtq_chain *c, size_t off, void *dst, size_t len);

/* The spec's vring_need_event(). */
static inline bool virtq_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

#endif

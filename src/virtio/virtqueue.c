/* Split virtqueue, device side (see virtqueue.h).
 *
 * Rules a chain must follow, else it is malformed:
 * - the avail index moves forward by at most the queue size;
 * - head and next indices are below the table size;
 * - a chain visits at most as many descriptors as its table holds (so a
 *   loop is caught after at most `size` steps), at most VIRTQ_MAX_SEGS
 *   buffers in all;
 * - an indirect descriptor (only with VIRTIO_RING_F_INDIRECT_DESC) has no
 *   NEXT flag, is not inside an indirect table, and its table is a
 *   non-empty multiple of 16 bytes of at most VIRTQ_MAX_INDIRECT entries,
 *   inside RAM;
 * - every buffer is non-empty and inside RAM, the total is at most
 *   VIRTQ_MAX_CHAIN_BYTES, and no readable buffer follows a writable one. */
#include "virtio/virtqueue.h"

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define AVAIL_FLAGS 0
#define AVAIL_IDX 1
#define AVAIL_RING 2

void virtq_init(struct virtq *q, const struct gmem *mem, uint16_t max_size)
{
    memset(q, 0, sizeof(*q));
    q->mem = mem;
    q->max_size = max_size;
    virtq_reset(q);
}

void virtq_reset(struct virtq *q)
{
    const struct gmem *mem = q->mem;
    uint16_t max = q->max_size;
    memset(q, 0, sizeof(*q));
    q->mem = mem;
    q->max_size = max;
    q->size = max;
}

static void *ring_ptr(const struct virtq *q, uint64_t gpa, uint64_t len, unsigned align)
{
    if (gpa & (align - 1))
        return NULL;
    void *p = gmem_ptr(q->mem, gpa, len);
    if (p && ((uintptr_t)p & (align - 1)))
        return NULL;
    return p;
}

int virtq_enable(struct virtq *q, bool event_idx, bool indirect, struct err *e)
{
    if (q->size == 0 || q->size > q->max_size)
        return err_set(e, -EINVAL, "queue size %u (at most %u)", q->size, q->max_size);
    uint64_t n = q->size;
    q->desc = ring_ptr(q, q->desc_gpa, 16 * n, 16);
    q->avail = ring_ptr(q, q->avail_gpa, 6 + 2 * n, 2);
    q->used = ring_ptr(q, q->used_gpa, 6 + 8 * n, 4);
    if (!q->desc || !q->avail || !q->used) {
        const char *what = !q->desc ? "descriptor table" : !q->avail ? "available ring"
                                                                     : "used ring";
        uint64_t gpa = !q->desc ? q->desc_gpa : !q->avail ? q->avail_gpa : q->used_gpa;
        q->desc = NULL;
        q->avail = NULL;
        q->used = NULL;
        return err_set(e, -EFAULT, "%s at 0x%llx (size %u) is misaligned or not in RAM", what,
                       (unsigned long long)gpa, q->size);
    }
    q->event_idx = event_idx;
    q->indirect = indirect;
    q->last_avail = 0;
    q->used_idx = 0;
    q->signalled_used = 0;
    q->broken = false;
    q->enabled = true;
    return 0;
}

void virtq_get_state(const struct virtq *q, struct virtq_state *s)
{
    *s = (struct virtq_state){
        .size = q->size, .enabled = q->enabled, .desc_gpa = q->desc_gpa,
        .avail_gpa = q->avail_gpa, .used_gpa = q->used_gpa, .event_idx = q->event_idx,
        .indirect = q->indirect, .last_avail = q->last_avail, .used_idx = q->used_idx,
        .signalled_used = q->signalled_used, .broken = q->broken,
    };
}

int virtq_restore(struct virtq *q, const struct virtq_state *s, struct err *e)
{
    if (s->size == 0 || s->size > q->max_size || (s->size & (s->size - 1)))
        return err_set(e, -EINVAL, "queue size %u (a power of 2, at most %u)", s->size,
                       q->max_size);
    struct virtq n = *q;
    n.size = s->size;
    n.desc_gpa = s->desc_gpa;
    n.avail_gpa = s->avail_gpa;
    n.used_gpa = s->used_gpa;
    if (!s->enabled) {
        if (s->event_idx || s->indirect || s->broken || s->last_avail || s->used_idx ||
            s->signalled_used)
            return err_set(e, -EINVAL, "a disabled queue with indices or flags");
        n.enabled = false;
        n.desc = NULL;
        n.avail = NULL;
        n.used = NULL;
        n.event_idx = n.indirect = n.broken = false;
        n.last_avail = n.used_idx = n.signalled_used = 0;
        *q = n;
        return 0;
    }
    if ((uint16_t)(s->last_avail - s->used_idx) > s->size)
        return err_set(e, -EINVAL, "%u chains taken and not returned (queue size %u)",
                       (uint16_t)(s->last_avail - s->used_idx), s->size);
    int ret = virtq_enable(&n, s->event_idx, s->indirect, e);
    if (ret < 0)
        return ret;
    n.last_avail = s->last_avail;
    n.used_idx = s->used_idx;
    n.signalled_used = s->signalled_used;
    n.broken = s->broken;
    *q = n;
    return 0;
}

static uint16_t load16_acquire(const uint16_t *p)
{
    return le16toh(__atomic_load_n(p, __ATOMIC_ACQUIRE));
}

static uint16_t load16(const uint16_t *p)
{
    return le16toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

static uint16_t *used_idx_ptr(const struct virtq *q)
{
    return (uint16_t *)(void *)(q->used + 2);
}

static uint16_t *avail_event_ptr(const struct virtq *q)
{
    return (uint16_t *)(void *)(q->used + 4 + 8 * (size_t)q->size);
}

/* Mark the queue broken and describe why. */
static int malformed(struct virtq *q, struct err *e, int ret, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int malformed(struct virtq *q, struct err *e, int ret, const char *fmt, ...)
{
    q->broken = true;
    va_list ap;
    va_start(ap, fmt);
    err_vset(e, ret, fmt, ap);
    va_end(ap);
    return ret;
}

static int walk_chain(struct virtq *q, uint16_t head, struct virtq_chain *c, struct err *e)
{
    const uint8_t *table = q->desc;
    uint32_t tsize = q->size, steps = 0, idx = head;
    bool in_indirect = false;
    uint64_t total = 0;
    c->mem = q->mem;
    c->head = head;
    c->nout = c->nin = 0;
    c->out_bytes = c->in_bytes = 0;
    for (;;) {
        if (idx >= tsize)
            return malformed(q, e, -EINVAL, "descriptor index %u out of range (table of %u)",
                             idx, tsize);
        if (++steps > tsize)
            return malformed(q, e, -ELOOP, "descriptor chain from head %u loops or is longer "
                             "than its table (%u)", head, tsize);
        struct virtq_desc d;
        memcpy(&d, table + 16 * (size_t)idx, sizeof(d));   /* one fetch, then checks */
        uint64_t addr = le64toh(d.addr);
        uint32_t len = le32toh(d.len);
        uint16_t flags = le16toh(d.flags), next = le16toh(d.next);
        if (flags & VIRTQ_DESC_F_INDIRECT) {
            if (!q->indirect)
                return malformed(q, e, -EINVAL, "indirect descriptor %u without "
                                 "VIRTIO_RING_F_INDIRECT_DESC", idx);
            if (in_indirect)
                return malformed(q, e, -EINVAL, "nested indirect descriptor %u", idx);
            if (flags & VIRTQ_DESC_F_NEXT)
                return malformed(q, e, -EINVAL, "indirect descriptor %u with NEXT", idx);
            if (len == 0 || len % 16 || len / 16 > VIRTQ_MAX_INDIRECT)
                return malformed(q, e, -EINVAL, "indirect table of %u bytes at 0x%llx", len,
                                 (unsigned long long)addr);
            table = gmem_ptr(q->mem, addr, len);
            if (!table)
                return malformed(q, e, -EFAULT, "indirect table at 0x%llx+0x%x not in RAM",
                                 (unsigned long long)addr, len);
            tsize = len / 16;
            idx = 0;
            steps = 0;
            in_indirect = true;
            continue;
        }
        if (len == 0)
            return malformed(q, e, -EINVAL, "empty buffer in descriptor %u (at 0x%llx)", idx,
                             (unsigned long long)addr);
        total += len;
        if (total > VIRTQ_MAX_CHAIN_BYTES)
            return malformed(q, e, -E2BIG, "chain from head %u holds more than %u bytes",
                             head, VIRTQ_MAX_CHAIN_BYTES);
        uint8_t *p = gmem_ptr(q->mem, addr, len);
        if (!p)
            return malformed(q, e, -EFAULT, "buffer at 0x%llx+0x%x not in RAM",
                             (unsigned long long)addr, len);
        if (c->nout + c->nin >= VIRTQ_MAX_SEGS)
            return malformed(q, e, -E2BIG, "chain from head %u has more than %u buffers",
                             head, VIRTQ_MAX_SEGS);
        struct virtq_seg *s = &c->seg[c->nout + c->nin];
        s->p = p;
        s->len = len;
        if (flags & VIRTQ_DESC_F_WRITE) {
            c->nin++;
            c->in_bytes += len;
        } else {
            if (c->nin)
                return malformed(q, e, -EINVAL, "readable descriptor %u after a writable one "
                                 "(head %u)", idx, head);
            c->nout++;
            c->out_bytes += len;
        }
        if (!(flags & VIRTQ_DESC_F_NEXT))
            return 1;
        idx = next;
    }
}

int virtq_pop(struct virtq *q, struct virtq_chain *c, struct err *e)
{
    if (!q->enabled || q->broken)
        return 0;
    uint16_t *avail_idx = &q->avail[AVAIL_IDX];
    uint16_t idx = load16_acquire(avail_idx);
    if (idx == q->last_avail) {
        if (!q->event_idx)
            return 0;
        /* ask for a kick on the next buffer, then look again: the driver
         * may have added one before it saw avail_event */
        __atomic_store_n(avail_event_ptr(q), htole16(q->last_avail), __ATOMIC_RELAXED);
        gmem_mark_dirty_hva(q->mem, avail_event_ptr(q), 2);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        idx = load16_acquire(avail_idx);
        if (idx == q->last_avail)
            return 0;
    }
    if ((uint16_t)(idx - q->last_avail) > q->size)
        return malformed(q, e, -EINVAL, "available index jumped from %u to %u", q->last_avail,
                         idx);
    uint16_t head = load16(&q->avail[AVAIL_RING + q->last_avail % q->size]);
    int ret = walk_chain(q, head, c, e);
    if (ret < 0)
        return ret;
    q->last_avail++;
    if (q->event_idx) {
        __atomic_store_n(avail_event_ptr(q), htole16(q->last_avail), __ATOMIC_RELAXED);
        gmem_mark_dirty_hva(q->mem, avail_event_ptr(q), 2);
    }
    return 1;
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
    if (!q->enabled)
        return;
    uint8_t *elem = q->used + 4 + 8 * (size_t)(q->used_idx % q->size);
    uint32_t v[2] = { htole32(head), htole32(len) };
    memcpy(elem, v, sizeof(v));
    gmem_mark_dirty_hva(q->mem, elem, sizeof(v));
    q->used_idx++;
    __atomic_store_n(used_idx_ptr(q), htole16(q->used_idx), __ATOMIC_RELEASE);
    gmem_mark_dirty_hva(q->mem, used_idx_ptr(q), 2);
}

bool virtq_should_notify(struct virtq *q)
{
    if (!q->enabled)
        return false;
    uint16_t old = q->signalled_used, now = q->used_idx;
    if (old == now)
        return false;   /* nothing pushed since the last decision */
    q->signalled_used = now;
    /* the used index must be visible before we read the driver's wishes */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!q->event_idx)
        return !(load16(&q->avail[AVAIL_FLAGS]) & VIRTQ_AVAIL_F_NO_INTERRUPT);
    return virtq_need_event(load16(&q->avail[AVAIL_RING + q->size]), now, old);
}

/* Copy between buf and the chain's segments [first, first + count),
 * starting `off` bytes into them. */
static size_t chain_copy(const struct virtq_chain *c, unsigned first, unsigned count, size_t off,
                         uint8_t *buf, size_t len, bool to_guest)
{
    size_t done = 0;
    for (unsigned i = first; i < first + count && done < len; i++) {
        const struct virtq_seg *s = &c->seg[i];
        if (off >= s->len) {
            off -= s->len;
            continue;
        }
        size_t n = s->len - off;
        if (n > len - done)
            n = len - done;
        if (to_guest) {
            memcpy(s->p + off, buf + done, n);
            gmem_mark_dirty_hva(c->mem, s->p + off, n);
        } else
            memcpy(buf + done, s->p + off, n);
        done += n;
        off = 0;
    }
    return done;
}

size_t virtq_chain_to_guest(const struct virtq_chain *c, size_t off, const void *src, size_t len)
{
    return chain_copy(c, c->nout, c->nin, off, (uint8_t *)(uintptr_t)src, len, true);
}

size_t virtq_chain_from_guest(const struct virtq_chain *c, size_t off, void *dst, size_t len)
{
    return chain_copy(c, 0, c->nout, off, dst, len, false);
}

/* virtio-balloon (virtio spec 1.2, 5.5): the host asks the guest to give
 * memory back, and the guest tells which pages it gave.
 *
 * Design
 * - Queues, numbered as the driver sees them: 0 inflate, 1 deflate, then
 *   the statistics queue if VIRTIO_BALLOON_F_STATS_VQ was negotiated, then
 *   the free page reporting queue if VIRTIO_BALLOON_F_REPORTING was (a
 *   queue of a feature not negotiated does not exist and the next one
 *   takes its number, as Linux numbers them).
 * - Config space: num_pages (the target, 4 KiB pages, set by the host:
 *   amount_mib, PATCH /balloon) and actual (written by the driver: what it
 *   holds).  A new target bumps the config generation and raises a config
 *   interrupt.
 * - Inflate: each buffer is a list of le32 page frame numbers (4 KiB
 *   pages); every page inside RAM is dropped (gmem_discard_hva,
 *   MADV_DONTNEED: see core/memory.h for RAM mapped from a snapshot), runs
 *   of consecutive pages with one madvise.  Deflate: nothing to do (no
 *   VIRTIO_BALLOON_F_MUST_TELL_HOST): a page comes back zero-filled when the
 *   guest touches it.  Free page reporting: each buffer of a chain is a
 *   free range of guest memory, dropped the same way.
 * - Statistics: the driver puts one buffer of {le16 tag, le64 value}
 *   entries in the stats queue; the device keeps that buffer and gives it
 *   back every stats_polling_interval_s seconds (a timer on the event
 *   loop), which asks the driver for fresh figures.  Quiesce (snapshots)
 *   gives it back at once, so no chain is held across a snapshot.
 * - Deflate-on-OOM is only a feature bit: the guest deflates by itself
 *   under memory pressure and lowers actual.
 * - The guest is hostile: PFNs outside RAM, buffers whose length is not a
 *   multiple of an entry, writable buffers where readable ones belong, a
 *   second stats buffer: ignored with a rate-limited line; the VM goes on.
 *   A guest that never answers just leaves actual where it is.
 * - Snapshots save the target, actual, the options (checked on load) and
 *   the last statistics.
 *
 * Threads: everything runs in device context (queue kicks, the timer, the
 * vm_balloon_ops the API calls under the device lock). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/le.h"
#include "core/opts.h"
#include "core/snapshot.h"
#include "core/vm.h"
#include "virtio/virtio_pci.h"

#define VIRTIO_ID_BALLOON 5
#define BALLOON_F_MUST_TELL_HOST 0
#define BALLOON_F_STATS_VQ 1
#define BALLOON_F_DEFLATE_ON_OOM 2
#define BALLOON_F_REPORTING 5

#define BALLOON_QUEUE_SIZE 256
#define BALLOON_CFG_SIZE 8          /* num_pages, actual */
#define BALLOON_PAGE_SHIFT 12
#define BALLOON_STAT_SIZE 10        /* le16 tag, le64 value */
#define BALLOON_MAX_INTERVAL_S 86400
#define PCI_CLASS_OTHERS 0xff0000

enum { Q_INFLATE, Q_DEFLATE, Q_STATS, Q_REPORT, Q_NONE };

struct virtio_balloon {
    struct virtio_pci vp;
    struct vm *vm;
    struct evloop_timer *timer;
    uint64_t ram_bytes;
    uint32_t target, actual;
    bool deflate_on_oom, reporting;
    unsigned interval_s;            /* 0: no stats queue */
    bool stats_held;                /* the driver's stats buffer is ours */
    unsigned stats_q;               /* its queue */
    uint16_t stats_head;
    uint32_t stats_have;
    uint64_t stats[VM_BALLOON_NSTATS];
    uint64_t inflated, deflated, reported, discarded;
    struct virtq_chain chain;
};

/* What queue q is for, given the negotiated features. */
static unsigned queue_role(const struct virtio_dev *vd, unsigned q)
{
    if (q < 2)
        return q;
    unsigned n = 2;
    if (virtio_has_feature(vd, BALLOON_F_STATS_VQ) && q == n++)
        return Q_STATS;
    if (virtio_has_feature(vd, BALLOON_F_REPORTING) && q == n)
        return Q_REPORT;
    return Q_NONE;
}

/* Drop the run [start, start + len) if any. */
static void discard_run(struct virtio_balloon *b, uint8_t *start, uint64_t len)
{
    if (len)
        b->discarded += gmem_discard_hva(b->vp.vdev.mem, start, len);
}

static void inflate(struct virtio_balloon *b, const struct virtq_chain *c, bool in)
{
    struct virtio_dev *vd = &b->vp.vdev;
    if (c->nin)
        virtio_log(vd, "%s buffer with %u writable part(s) (ignored)", in ? "inflate" : "deflate",
                   c->nin);
    if (c->out_bytes % 4)
        virtio_log(vd, "%s buffer of %u bytes, not a multiple of 4 (the rest ignored)",
                   in ? "inflate" : "deflate", c->out_bytes);
    uint32_t n = c->out_bytes / 4, bad = 0;
    if (!in) {
        b->deflated += n;
        return;
    }
    uint8_t *run = NULL;
    uint64_t run_len = 0;
    uint32_t pfn[256];
    for (uint32_t at = 0; at < n; at += 256) {
        uint32_t k = n - at < 256 ? n - at : 256;
        virtq_chain_from_guest(c, 4ull * at, pfn, 4ull * k);
        for (uint32_t i = 0; i < k; i++) {
            uint64_t gpa = (uint64_t)get_le((const uint8_t *)&pfn[i], 4) << BALLOON_PAGE_SHIFT;
            uint8_t *p = gmem_ptr(vd->mem, gpa, 1u << BALLOON_PAGE_SHIFT);
            if (!p) {
                bad++;
                continue;
            }
            b->inflated++;
            if (p == run + run_len) {
                run_len += 1u << BALLOON_PAGE_SHIFT;
                continue;
            }
            discard_run(b, run, run_len);
            run = p;
            run_len = 1u << BALLOON_PAGE_SHIFT;
        }
    }
    discard_run(b, run, run_len);
    if (bad)
        virtio_log(vd, "inflate: %u page frame number(s) outside RAM (ignored)", bad);
}

static void report(struct virtio_balloon *b, const struct virtq_chain *c)
{
    for (unsigned i = 0; i < c->nout + c->nin; i++) {
        b->reported += c->seg[i].len;
        discard_run(b, c->seg[i].p, c->seg[i].len);
    }
}

static void stats_read(struct virtio_balloon *b, const struct virtq_chain *c)
{
    struct virtio_dev *vd = &b->vp.vdev;
    if (c->out_bytes % BALLOON_STAT_SIZE)
        virtio_log(vd, "statistics buffer of %u bytes, not a multiple of %u (the rest ignored)",
                   c->out_bytes, BALLOON_STAT_SIZE);
    for (uint32_t off = 0; off + BALLOON_STAT_SIZE <= c->out_bytes; off += BALLOON_STAT_SIZE) {
        uint8_t s[BALLOON_STAT_SIZE];
        virtq_chain_from_guest(c, off, s, sizeof(s));
        unsigned tag = (unsigned)get_le(s, 2);
        if (tag >= VM_BALLOON_NSTATS)
            continue;           /* a statistic newer than ours */
        b->stats[tag] = get_le(s + 2, 8);
        b->stats_have |= 1u << tag;
    }
}

/* Give the held stats buffer back: the driver answers with fresh ones. */
static void stats_return(struct virtio_balloon *b)
{
    struct virtio_dev *vd = &b->vp.vdev;
    if (!b->stats_held)
        return;
    b->stats_held = false;
    if (!virtio_live(vd) || vd->vq[b->stats_q].broken || !vd->vq[b->stats_q].enabled)
        return;
    virtq_push(&vd->vq[b->stats_q], b->stats_head, 0);
    virtio_queue_notify_used(vd, b->stats_q);
}

static void balloon_queue_notify(struct virtio_dev *vd, unsigned q)
{
    struct virtio_balloon *b = vd->opaque;
    unsigned role = queue_role(vd, q);
    bool pushed = false;
    while (virtio_queue_pop(vd, q, &b->chain) > 0) {
        switch (role) {
        case Q_INFLATE:
        case Q_DEFLATE:
            inflate(b, &b->chain, role == Q_INFLATE);
            break;
        case Q_REPORT:
            report(b, &b->chain);
            break;
        case Q_STATS:
            stats_read(b, &b->chain);
            if (b->stats_held) {
                virtio_log(vd, "a second statistics buffer (the first is given back)");
                virtq_push(&vd->vq[q], b->stats_head, 0);
                pushed = true;
            }
            b->stats_held = true;
            b->stats_q = q;
            b->stats_head = b->chain.head;
            continue;
        default:
            virtio_log(vd, "buffer on queue %u, which no negotiated feature has (ignored)", q);
            break;
        }
        virtio_queue_push(vd, q, &b->chain, 0);
        pushed = true;
    }
    if (pushed)
        virtio_queue_notify_used(vd, q);
}

static void stats_tick(void *opaque)
{
    stats_return(opaque);
}

static uint32_t balloon_cfg_read(struct virtio_dev *vd, unsigned off, unsigned size)
{
    struct virtio_balloon *b = vd->opaque;
    uint8_t cfg[BALLOON_CFG_SIZE];
    put_le(cfg, b->target, 4);
    put_le(cfg + 4, b->actual, 4);
    uint32_t val = 0;
    for (unsigned i = 0; i < size; i++)     /* the transport bounds off + size */
        val |= (uint32_t)cfg[off + i] << (8 * i);
    return val;
}

static void balloon_cfg_write(struct virtio_dev *vd, unsigned off, unsigned size, uint32_t val)
{
    struct virtio_balloon *b = vd->opaque;
    for (unsigned i = 0; i < size; i++) {
        unsigned at = off + i;
        if (at < 4) {
            virtio_log(vd, "write to read-only num_pages (ignored)");
            return;
        }
        unsigned sh = 8 * (at - 4);
        b->actual = (b->actual & ~(0xffu << sh)) | ((val >> (8 * i)) & 0xff) << sh;
    }
}

static void balloon_reset(struct virtio_dev *vd)
{
    struct virtio_balloon *b = vd->opaque;
    b->stats_held = false;      /* the core reset the queues */
    b->actual = 0;              /* a new driver owns all of RAM */
}

static void balloon_quiesce(struct virtio_dev *vd)
{
    stats_return(vd->opaque);
}

/* Snapshots: u32 target, u32 actual, bool deflate_on_oom, bool reporting,
 * bool statistics on, u32 interval, u32 stats_have, u64 stats[16]. */
static void balloon_save(struct virtio_dev *vd, struct snap_writer *w)
{
    struct virtio_balloon *b = vd->opaque;
    snapw_u32(w, b->target);
    snapw_u32(w, b->actual);
    snapw_bool(w, b->deflate_on_oom);
    snapw_bool(w, b->reporting);
    snapw_bool(w, b->interval_s != 0);
    snapw_u32(w, b->interval_s);
    snapw_u32(w, b->stats_have);
    for (unsigned i = 0; i < VM_BALLOON_NSTATS; i++)
        snapw_u64(w, b->stats[i]);
}

static int balloon_load(struct virtio_dev *vd, struct snap_reader *r, struct snap_file *f,
                        struct err *e)
{
    (void)f;
    struct virtio_balloon *b = vd->opaque;
    uint32_t target = snapr_u32(r), actual = snapr_u32(r);
    bool oom = snapr_bool(r), rep = snapr_bool(r), stats = snapr_bool(r);
    uint32_t interval = snapr_u32(r), have = snapr_u32(r);
    uint64_t st[VM_BALLOON_NSTATS];
    for (unsigned i = 0; i < VM_BALLOON_NSTATS; i++)
        st[i] = snapr_u64(r);
    uint64_t pages = b->ram_bytes >> BALLOON_PAGE_SHIFT;
    snapr_check(r, r->fail || (target <= pages && actual <= pages),
                "balloon target or size beyond the guest's RAM");
    snapr_check(r, r->fail || oom == b->deflate_on_oom, "deflate_on_oom differs from the "
                "snapshot's");
    snapr_check(r, r->fail || rep == b->reporting, "free_page_reporting differs from the "
                "snapshot's");
    snapr_check(r, r->fail || stats == (b->interval_s != 0), "statistics on/off differs from "
                "the snapshot's");
    snapr_check(r, r->fail || (stats == (interval != 0) && interval <= BALLOON_MAX_INTERVAL_S),
                "bad statistics interval");
    int ret = snapr_end(r, e);
    if (ret < 0)
        return ret;
    b->target = target;
    b->actual = actual;
    b->interval_s = interval;
    b->stats_have = have;
    memcpy(b->stats, st, sizeof(st));
    b->stats_held = false;
    if (b->timer)
        evloop_timer_set(b->timer, interval * 1000000000ull, interval * 1000000000ull);
    return 0;
}

static const struct virtio_dev_ops balloon_ops = {
    .queue_notify = balloon_queue_notify,
    .cfg_read = balloon_cfg_read,
    .cfg_write = balloon_cfg_write,
    .reset = balloon_reset,
    .quiesce = balloon_quiesce,
    .save = balloon_save,
    .load = balloon_load,
};

/* --- what the API sees (core/vm.h) ---------------------------------------- */

static void api_info(void *opaque, struct vm_balloon_info *out)
{
    struct virtio_balloon *b = opaque;
    out->ram_bytes = b->ram_bytes;
    out->target_pages = b->target;
    out->actual_pages = b->actual;
    out->deflate_on_oom = b->deflate_on_oom;
    out->free_page_reporting = b->reporting;
    out->stats_interval_s = b->interval_s;
    out->stats_have = b->stats_have;
    memcpy(out->stats, b->stats, sizeof(out->stats));
    out->inflated_pages = b->inflated;
    out->deflated_pages = b->deflated;
    out->reported_bytes = b->reported;
    out->discarded_bytes = b->discarded;
}

static int check_target(uint64_t mib, uint64_t ram_bytes, struct err *e)
{
    if (mib > ram_bytes >> 20)
        return err_set(e, -EINVAL, "amount_mib %llu is larger than the guest's RAM (%llu MiB)",
                       (unsigned long long)mib, (unsigned long long)(ram_bytes >> 20));
    return 0;
}

static int api_set_target(void *opaque, uint64_t mib, struct err *e)
{
    struct virtio_balloon *b = opaque;
    struct virtio_dev *vd = &b->vp.vdev;
    int ret = check_target(mib, b->ram_bytes, e);
    if (ret < 0)
        return ret;
    uint32_t pages = (uint32_t)(mib << (20 - BALLOON_PAGE_SHIFT));
    if (pages == b->target)
        return 0;
    b->target = pages;
    vd->config_generation++;
    if (virtio_live(vd) && vd->transport && vd->transport->notify_config)
        vd->transport->notify_config(vd);
    return 0;
}

static int api_set_interval(void *opaque, unsigned s, struct err *e)
{
    struct virtio_balloon *b = opaque;
    if (s > BALLOON_MAX_INTERVAL_S)
        return err_set(e, -EINVAL, "stats_polling_interval_s %u: at most %u", s,
                       BALLOON_MAX_INTERVAL_S);
    if ((s == 0) != (b->interval_s == 0))
        return err_set(e, -EINVAL, "statistics cannot be turned %s after boot (the device was "
                       "created %s them)", s ? "on" : "off", s ? "without" : "with");
    b->interval_s = s;
    if (b->timer)
        evloop_timer_set(b->timer, s * 1000000000ull, s * 1000000000ull);
    return 0;
}

static const struct vm_balloon_ops balloon_api = {
    .info = api_info,
    .set_target = api_set_target,
    .set_stats_interval = api_set_interval,
};

/* --- set-up ---------------------------------------------------------------- */

static void balloon_free(struct virtio_pci *vp)
{
    struct virtio_balloon *b = vp->vdev.opaque;
    if (b->vm && b->vm->balloon == b)
        vm_set_balloon(b->vm, NULL, NULL);
    evloop_timer_free(b->timer);
    free(b);
}

#define BALLOON_OPTS_HELP \
    "amount_mib=N, deflate_on_oom=on|off, stats_polling_interval_s=N, free_page_reporting=on|off"

static int parse_uint(const char *key, const char *val, uint64_t max, uint64_t *out,
                      struct err *e)
{
    char *end = NULL;
    errno = 0;
    unsigned long long n = val && *val >= '0' && *val <= '9' ? strtoull(val, &end, 10) : 0;
    if (!end || *end || errno || n > max)
        return err_set(e, -EINVAL, "virtio-balloon: %s=%s: expected a number from 0 to %llu",
                       key, val ? val : "", (unsigned long long)max);
    *out = n;
    return 0;
}

int virtio_balloon_create(const struct virtio_host *h, const char *opts, struct err *e)
{
    char item[256];
    uint64_t mib = 0, interval = 0;
    bool oom = false, rep = false;
    int ret;
    const char *p = opts;
    while ((ret = opts_next(&p, item, sizeof(item), e)) > 0) {
        char *val;
        opts_split(item, &val);
        if (!strcmp(item, "amount_mib")) {
            ret = parse_uint(item, val, 1u << 20, &mib, e);
        } else if (!strcmp(item, "stats_polling_interval_s")) {
            ret = parse_uint(item, val, BALLOON_MAX_INTERVAL_S, &interval, e);
        } else if (!strcmp(item, "deflate_on_oom") || !strcmp(item, "free_page_reporting")) {
            int v = val ? opts_bool(val) : 1;
            if (v < 0)
                return err_set(e, -EINVAL, "virtio-balloon: %s=%s: expected on or off", item,
                               val);
            *(!strcmp(item, "deflate_on_oom") ? &oom : &rep) = v;
        } else {
            return err_set(e, -EINVAL, "virtio-balloon: unknown option '%s' (options: "
                           BALLOON_OPTS_HELP ")", item);
        }
        if (ret < 0)
            return ret;
    }
    if (ret < 0)
        return ret;
    if (h->vm && h->vm->balloon_ops)
        return err_set(e, -EEXIST, "virtio-balloon: a VM has at most one balloon");
    uint64_t ram = 0;
    for (unsigned i = 0; i < h->mem->n; i++)
        ram += h->mem->r[i].size;
    if ((ret = check_target(mib, ram, e)) < 0)
        return err_set(e, ret, "virtio-balloon: %s", e->msg);

    struct virtio_balloon *b = calloc(1, sizeof(*b));
    if (!b)
        return err_set(e, -ENOMEM, "virtio-balloon: out of memory");
    b->vm = h->vm;
    b->ram_bytes = ram;
    b->target = (uint32_t)(mib << (20 - BALLOON_PAGE_SHIFT));
    b->deflate_on_oom = oom;
    b->reporting = rep;
    b->interval_s = (unsigned)interval;
    if (h->loop && !(b->timer = evloop_timer_new(h->loop, true, stats_tick, b, e))) {
        free(b);
        return -ENOMEM;
    }
    if (b->timer && interval)
        evloop_timer_set(b->timer, interval * 1000000000ull, interval * 1000000000ull);
    uint64_t features = (oom ? 1ull << BALLOON_F_DEFLATE_ON_OOM : 0) |
                        (interval ? 1ull << BALLOON_F_STATS_VQ : 0) |
                        (rep ? 1ull << BALLOON_F_REPORTING : 0);
    unsigned nq = 2 + (interval != 0) + rep;
    virtio_dev_init(&b->vp.vdev, "virtio-balloon", VIRTIO_ID_BALLOON, features, nq,
                    BALLOON_QUEUE_SIZE, BALLOON_CFG_SIZE, h->mem, &balloon_ops, b);
    if ((ret = virtio_pci_init(&b->vp, PCI_CLASS_OTHERS, balloon_free, e)) < 0) {
        evloop_timer_free(b->timer);
        free(b);
        return ret;
    }
    if ((ret = pci_bus_plug(h->pb, &b->vp.pci, e)) < 0) {
        evloop_timer_free(b->timer);
        free(b);
        return ret;
    }
    if (h->vm)
        vm_set_balloon(h->vm, &balloon_api, b);
    return 0;
}

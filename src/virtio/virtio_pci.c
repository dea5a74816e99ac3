/* Virtio modern PCI transport (see virtio_pci.h). */
#include "virtio/virtio_pci.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/snapshot.h"

#define VP(vd) ((struct virtio_pci *)((char *)(vd) - offsetof(struct virtio_pci, vdev)))
#define VP_OF_PCI(d) ((struct virtio_pci *)((char *)(d) - offsetof(struct virtio_pci, pci)))

/* --- interrupts -------------------------------------------------------- */

static void vp_raise(struct virtio_pci *vp, uint8_t bits)
{
    vp->isr |= bits;
    pci_set_intx(&vp->pci, true);
}

/* With MSI-X enabled, events go to their vectors (if any) and neither the
 * ISR nor INTx is touched. */
static bool vp_msix(struct virtio_pci *vp)
{
    return vp->has_msix && pci_msix_enabled(&vp->msix);
}

static void vp_notify_queue(struct virtio_dev *vd, unsigned q)
{
    struct virtio_pci *vp = VP(vd);
    if (vp_msix(vp)) {
        if (vd->vector[q] != VIRTIO_NO_VECTOR)
            pci_msix_notify(&vp->msix, vd->vector[q]);
        return;
    }
    vp_raise(vp, VIRTIO_PCI_ISR_QUEUE);
}

static void vp_notify_config(struct virtio_dev *vd)
{
    struct virtio_pci *vp = VP(vd);
    if (vp_msix(vp)) {
        if (vd->config_vector != VIRTIO_NO_VECTOR)
            pci_msix_notify(&vp->msix, vd->config_vector);
        return;
    }
    vp_raise(vp, VIRTIO_PCI_ISR_CONFIG);
}

/* What a write to config_msix_vector / queue_msix_vector maps the event
 * to: the vector, or NO_VECTOR if the table has no such entry. */
static uint16_t vp_vector(const struct virtio_pci *vp, uint64_t v)
{
    return vp->has_msix && v < vp->msix.nvec ? (uint16_t)v : VIRTIO_NO_VECTOR;
}

static const struct virtio_transport_ops vp_transport = {
    .notify_queue = vp_notify_queue,
    .notify_config = vp_notify_config,
};

/* --- common configuration ---------------------------------------------- */

static void put(uint8_t *img, unsigned off, uint64_t v, unsigned len)
{
    for (unsigned i = 0; i < len; i++)
        img[off + i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get(const uint8_t *img, unsigned off, unsigned len)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < len; i++)
        v |= (uint64_t)img[off + i] << (8 * i);
    return v;
}

static struct virtq *selected_queue(struct virtio_pci *vp)
{
    return vp->queue_sel < vp->vdev.nqueues ? &vp->vdev.vq[vp->queue_sel] : NULL;
}

static void common_image(struct virtio_pci *vp, uint8_t *img)
{
    struct virtio_dev *vd = &vp->vdev;
    struct virtq *q = selected_queue(vp);
    memset(img, 0, VIRTIO_PCI_COMMON_SIZE);
    put(img, VIRTIO_PCI_COMMON_DFSELECT, vp->dfselect, 4);
    put(img, VIRTIO_PCI_COMMON_DF, virtio_get_host_features(vd, vp->dfselect), 4);
    put(img, VIRTIO_PCI_COMMON_GFSELECT, vp->gfselect, 4);
    put(img, VIRTIO_PCI_COMMON_GF,
        vp->gfselect < 2 ? (uint32_t)(vd->driver_features >> (32 * vp->gfselect)) : 0, 4);
    put(img, VIRTIO_PCI_COMMON_MSIX, vd->config_vector, 2);
    put(img, VIRTIO_PCI_COMMON_NUMQ, vd->nqueues, 2);
    put(img, VIRTIO_PCI_COMMON_STATUS, vd->status, 1);
    put(img, VIRTIO_PCI_COMMON_CFGGENERATION, vd->config_generation, 1);
    put(img, VIRTIO_PCI_COMMON_Q_SELECT, vp->queue_sel, 2);
    put(img, VIRTIO_PCI_COMMON_Q_MSIX, q ? vd->vector[vp->queue_sel] : VIRTIO_NO_VECTOR, 2);
    if (q) {
        put(img, VIRTIO_PCI_COMMON_Q_SIZE, q->size, 2);
        put(img, VIRTIO_PCI_COMMON_Q_ENABLE, q->enabled, 2);
        put(img, VIRTIO_PCI_COMMON_Q_NOFF, vp->queue_sel, 2);
        put(img, VIRTIO_PCI_COMMON_Q_DESCLO, q->desc_gpa, 8);
        put(img, VIRTIO_PCI_COMMON_Q_AVAILLO, q->avail_gpa, 8);
        put(img, VIRTIO_PCI_COMMON_Q_USEDLO, q->used_gpa, 8);
    }
}

/* Queue registers may only change while the queue is disabled. */
static struct virtq *writable_queue(struct virtio_pci *vp, const char *reg)
{
    struct virtq *q = selected_queue(vp);
    if (!q) {
        virtio_log(&vp->vdev, "%s written for missing queue %u (ignored)", reg, vp->queue_sel);
        return NULL;
    }
    if (q->enabled) {
        virtio_log(&vp->vdev, "%s of enabled queue %u written (ignored)", reg, vp->queue_sel);
        return NULL;
    }
    return q;
}

static void set_addr_half(struct virtio_pci *vp, const char *reg, uint64_t *field, unsigned hi,
                          uint32_t v)
{
    if (!writable_queue(vp, reg))
        return;
    uint64_t mask = 0xffffffffull << (32 * hi);
    *field = (*field & ~mask) | ((uint64_t)v << (32 * hi));
}

static void common_field_write(struct virtio_pci *vp, unsigned field, uint64_t v)
{
    struct virtio_dev *vd = &vp->vdev;
    struct virtq *q;
    switch (field) {
    case VIRTIO_PCI_COMMON_DFSELECT: vp->dfselect = (uint32_t)v; break;
    case VIRTIO_PCI_COMMON_GFSELECT: vp->gfselect = (uint32_t)v; break;
    case VIRTIO_PCI_COMMON_GF: virtio_set_driver_features(vd, vp->gfselect, (uint32_t)v); break;
    case VIRTIO_PCI_COMMON_MSIX: vd->config_vector = vp_vector(vp, v); break;
    case VIRTIO_PCI_COMMON_Q_MSIX:
        if (selected_queue(vp))
            vd->vector[vp->queue_sel] = vp_vector(vp, v);
        else
            virtio_log(vd, "queue_msix_vector written for missing queue %u (ignored)",
                       vp->queue_sel);
        break;
    case VIRTIO_PCI_COMMON_STATUS:
        virtio_set_status(vd, (uint8_t)v);
        if (vd->status == 0 && vp->isr) {   /* reset: interrupt status too */
            vp->isr = 0;
            pci_set_intx(&vp->pci, false);
        }
        break;
    case VIRTIO_PCI_COMMON_Q_SELECT: vp->queue_sel = (uint16_t)v; break;
    case VIRTIO_PCI_COMMON_Q_SIZE:
        if ((q = writable_queue(vp, "queue_size"))) {
            if (v == 0 || v > q->max_size || (v & (v - 1)))
                virtio_log(vd, "queue %u: size %u refused (a power of 2, 1..%u)", vp->queue_sel,
                           (unsigned)v, q->max_size);
            else
                q->size = (uint16_t)v;
        }
        break;
    case VIRTIO_PCI_COMMON_Q_ENABLE:
        if (v == 1 && selected_queue(vp))
            virtio_queue_enable(vd, vp->queue_sel);
        else if (v != 1)
            virtio_log(vd, "queue_enable written with %u (ignored)", (unsigned)v);
        break;
    case VIRTIO_PCI_COMMON_Q_DESCLO:
    case VIRTIO_PCI_COMMON_Q_DESCHI:
        if ((q = selected_queue(vp)))
            set_addr_half(vp, "queue_desc", &q->desc_gpa, field == VIRTIO_PCI_COMMON_Q_DESCHI,
                          (uint32_t)v);
        break;
    case VIRTIO_PCI_COMMON_Q_AVAILLO:
    case VIRTIO_PCI_COMMON_Q_AVAILHI:
        if ((q = selected_queue(vp)))
            set_addr_half(vp, "queue_driver", &q->avail_gpa,
                          field == VIRTIO_PCI_COMMON_Q_AVAILHI, (uint32_t)v);
        break;
    case VIRTIO_PCI_COMMON_Q_USEDLO:
    case VIRTIO_PCI_COMMON_Q_USEDHI:
        if ((q = selected_queue(vp)))
            set_addr_half(vp, "queue_device", &q->used_gpa, field == VIRTIO_PCI_COMMON_Q_USEDHI,
                          (uint32_t)v);
        break;
    default: break;     /* read-only */
    }
}

/* writable fields: offset and width */
static const struct { uint8_t off, len; } common_fields[] = {
    { VIRTIO_PCI_COMMON_DFSELECT, 4 }, { VIRTIO_PCI_COMMON_GFSELECT, 4 },
    { VIRTIO_PCI_COMMON_GF, 4 }, { VIRTIO_PCI_COMMON_MSIX, 2 },
    { VIRTIO_PCI_COMMON_STATUS, 1 }, { VIRTIO_PCI_COMMON_Q_SELECT, 2 },
    { VIRTIO_PCI_COMMON_Q_SIZE, 2 }, { VIRTIO_PCI_COMMON_Q_MSIX, 2 },
    { VIRTIO_PCI_COMMON_Q_ENABLE, 2 }, { VIRTIO_PCI_COMMON_Q_DESCLO, 4 },
    { VIRTIO_PCI_COMMON_Q_DESCHI, 4 }, { VIRTIO_PCI_COMMON_Q_AVAILLO, 4 },
    { VIRTIO_PCI_COMMON_Q_AVAILHI, 4 }, { VIRTIO_PCI_COMMON_Q_USEDLO, 4 },
    { VIRTIO_PCI_COMMON_Q_USEDHI, 4 },
};

static void common_write(struct virtio_pci *vp, unsigned off, uint64_t val, unsigned size)
{
    if (off >= VIRTIO_PCI_COMMON_SIZE || size > VIRTIO_PCI_COMMON_SIZE - off)
        return;
    uint8_t img[VIRTIO_PCI_COMMON_SIZE];
    common_image(vp, img);
    put(img, off, val, size);
    /* apply every field the write touched, from the merged image */
    for (unsigned i = 0; i < sizeof(common_fields) / sizeof(common_fields[0]); i++) {
        unsigned f = common_fields[i].off, len = common_fields[i].len;
        if (off < f + len && f < off + size)
            common_field_write(vp, f, get(img, f, len));
    }
}

/* --- the BAR ------------------------------------------------------------ */

static uint64_t bar_read(void *opaque, uint64_t off, unsigned size)
{
    struct virtio_pci *vp = opaque;
    struct virtio_dev *vd = &vp->vdev;
    if (off < VIRTIO_PCI_COMMON_OFF + VIRTIO_PCI_REGION_SIZE) {
        if (off >= VIRTIO_PCI_COMMON_SIZE || size > VIRTIO_PCI_COMMON_SIZE - off)
            return 0;
        uint8_t img[VIRTIO_PCI_COMMON_SIZE];
        common_image(vp, img);
        return get(img, (unsigned)off, size);
    }
    if (off < VIRTIO_PCI_ISR_OFF + VIRTIO_PCI_REGION_SIZE) {
        if (off != VIRTIO_PCI_ISR_OFF)
            return 0;
        uint8_t v = vp->isr;
        vp->isr = 0;
        pci_set_intx(&vp->pci, false);
        return v;
    }
    if (off < VIRTIO_PCI_DEVICE_OFF + VIRTIO_PCI_REGION_SIZE) {
        uint64_t o = off - VIRTIO_PCI_DEVICE_OFF;
        if (!vd->ops->cfg_read || size > 4 || o >= vd->cfg_size || size > vd->cfg_size - o)
            return 0;
        return vd->ops->cfg_read(vd, (unsigned)o, size);
    }
    return 0;   /* notify region reads as 0 */
}

static void bar_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct virtio_pci *vp = opaque;
    struct virtio_dev *vd = &vp->vdev;
    if (off < VIRTIO_PCI_COMMON_OFF + VIRTIO_PCI_REGION_SIZE) {
        common_write(vp, (unsigned)off, val, size);
    } else if (off < VIRTIO_PCI_ISR_OFF + VIRTIO_PCI_REGION_SIZE) {
        /* ISR is read-only */
    } else if (off < VIRTIO_PCI_DEVICE_OFF + VIRTIO_PCI_REGION_SIZE) {
        uint64_t o = off - VIRTIO_PCI_DEVICE_OFF;
        if (vd->ops->cfg_write && size <= 4 && o < vd->cfg_size && size <= vd->cfg_size - o)
            vd->ops->cfg_write(vd, (unsigned)o, size, (uint32_t)val);
    } else if (off < VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_REGION_SIZE) {
        unsigned q = (unsigned)(off - VIRTIO_PCI_NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT;
        if (!pci_bus_master(&vp->pci)) {
            virtio_log(vd, "queue %u kicked with bus mastering disabled (ignored)", q);
            return;
        }
        virtio_queue_kick(vd, q);
    }
}

const struct mmio_ops virtio_pci_bar_ops = { .read = bar_read, .write = bar_write };

/* --- PCI configuration access capability --------------------------------- */

#define CFG_CAP_BAR 4
#define CFG_CAP_OFFSET 8
#define CFG_CAP_LENGTH 12
#define CFG_CAP_DATA 16
#define CFG_CAP_SIZE 20

/* The BAR window the capability selects: false if it selects nothing usable. */
static bool cfg_cap_window(struct virtio_pci *vp, uint32_t *off, unsigned *len)
{
    struct pci_device *d = &vp->pci;
    unsigned c = vp->cfg_cap;
    *off = pci_cfg_get32(d, c + CFG_CAP_OFFSET);
    *len = pci_cfg_get32(d, c + CFG_CAP_LENGTH);
    return d->cfg[c + CFG_CAP_BAR] == VIRTIO_PCI_BAR && (*len == 1 || *len == 2 || *len == 4) &&
           !(*off & (*len - 1)) && *off < VIRTIO_PCI_BAR_SIZE;
}

static uint32_t vp_cfg_read(struct pci_device *d, unsigned off, unsigned size, uint32_t val)
{
    struct virtio_pci *vp = VP_OF_PCI(d);
    unsigned data = vp->cfg_cap + CFG_CAP_DATA;
    uint32_t boff;
    unsigned len;
    if (!vp->cfg_cap || off >= data + 4 || off + size <= data || !cfg_cap_window(vp, &boff, &len))
        return val;
    pci_cfg_set32(d, data, (uint32_t)bar_read(vp, boff, len));
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint32_t)d->cfg[off + i] << (8 * i);
    return v;
}

static void vp_cfg_write(struct pci_device *d, unsigned off, unsigned size, uint32_t val)
{
    (void)val;
    struct virtio_pci *vp = VP_OF_PCI(d);
    unsigned data = vp->cfg_cap + CFG_CAP_DATA;
    if (vp->has_msix)
        pci_msix_cfg_write(&vp->msix, off, size);
    uint32_t boff;
    unsigned len;
    if (!vp->cfg_cap || off >= data + 4 || off + size <= data || !cfg_cap_window(vp, &boff, &len))
        return;
    uint32_t v = pci_cfg_get32(d, data);
    bar_write(vp, boff, len == 4 ? v : v & ((1u << (8 * len)) - 1), len);
}

/* --- board features: MSI-X, ioeventfds ----------------------------------- */

/* Plugged into a bus: offer MSI-X if the board can deliver it. */
static int vp_plug(struct pci_device *d, struct err *e)
{
    struct virtio_pci *vp = VP_OF_PCI(d);
    const struct pci_platform *p = d->bus->plat;
    if (!p || !p->msi_route_new || !p->msi_route_set || !p->msi_fire || vp->has_msix)
        return 0;
    int ret = pci_device_set_bar(d, VIRTIO_PCI_MSIX_BAR, VIRTIO_PCI_MSIX_BAR_SIZE,
                                 &pci_msix_bar_ops, &vp->msix, e);
    if (ret == 0)
        ret = pci_msix_init(&vp->msix, d, vp->vdev.nqueues + 1, VIRTIO_PCI_MSIX_BAR,
                            VIRTIO_PCI_MSIX_TABLE_OFF, VIRTIO_PCI_MSIX_PBA_OFF, e);
    if (ret < 0)
        return ret;
    vp->has_msix = true;
    return 0;
}

/* A queue's ioeventfd fired: the driver wrote its notify address. */
static void vp_kick_ready(void *opaque)
{
    struct virtio_pci_kick *k = opaque;
    struct virtio_pci *vp = k->vp;
    uint64_t n;
    if (read(k->fd, &n, sizeof(n)) != sizeof(n))
        return;     /* spurious wake-up */
    if (!pci_bus_master(&vp->pci)) {
        virtio_log(&vp->vdev, "queue %u kicked with bus mastering disabled (ignored)", k->q);
        return;
    }
    virtio_queue_kick(&vp->vdev, k->q);
}

/* Queue q's notify address with BAR 0 at base. */
static uint64_t kick_addr(uint64_t base, unsigned q)
{
    return base + VIRTIO_PCI_NOTIFY_OFF + (uint64_t)q * VIRTIO_PCI_NOTIFY_MULT;
}

/* Deassign the first n queues' ioeventfds at base. */
static void kicks_deassign(struct virtio_pci *vp, uint64_t base, unsigned n)
{
    const struct pci_platform *p = vp->pci.bus->plat;
    for (unsigned q = 0; q < n; q++)
        p->ioeventfd(p->opaque, kick_addr(base, q), 2, vp->kick[q].fd, false, NULL);
}

/* Create the eventfds and put them on the event loop, once. */
static int kicks_create(struct virtio_pci *vp, struct err *e)
{
    const struct pci_platform *p = vp->pci.bus->plat;
    unsigned q;
    for (q = 0; q < vp->vdev.nqueues; q++) {
        struct virtio_pci_kick *k = &vp->kick[q];
        k->vp = vp;
        k->q = q;
        k->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (k->fd < 0) {
            err_set(e, -errno, "eventfd: %s", strerror(errno));
            break;
        }
        if (evloop_add(p->loop, k->fd, vp_kick_ready, k, e) < 0) {
            close(k->fd);
            k->fd = -1;
            break;
        }
    }
    if (q == vp->vdev.nqueues) {
        vp->kick_on_loop = true;
        return 0;
    }
    while (q-- > 0) {
        evloop_del(p->loop, vp->kick[q].fd);
        close(vp->kick[q].fd);
        vp->kick[q].fd = -1;
    }
    return -1;
}

/* BAR 0 moved, appeared or went away: the notify ioeventfds follow it. */
static void vp_bar_mapped(struct pci_device *d, unsigned idx, bool mapped, uint64_t addr)
{
    struct virtio_pci *vp = VP_OF_PCI(d);
    const struct pci_platform *p = d->bus ? d->bus->plat : NULL;
    struct err e;
    if (idx != VIRTIO_PCI_BAR || !p || !p->ioeventfd || !p->loop || !vp->vdev.nqueues)
        return;
    if (vp->kick_assigned) {
        kicks_deassign(vp, vp->kick_base, vp->vdev.nqueues);
        vp->kick_assigned = false;
    }
    if (!mapped)
        return;
    if (!vp->kick_on_loop && kicks_create(vp, &e) < 0) {
        virtio_log(&vp->vdev, "no ioeventfds (%s): notifications take the MMIO path", e.msg);
        return;
    }
    for (unsigned q = 0; q < vp->vdev.nqueues; q++)
        if (p->ioeventfd(p->opaque, kick_addr(addr, q), 2, vp->kick[q].fd, true, &e) < 0) {
            kicks_deassign(vp, addr, q);
            virtio_log(&vp->vdev, "ioeventfd for queue %u at 0x%llx: %s (notifications take "
                       "the MMIO path)", q, (unsigned long long)kick_addr(addr, q), e.msg);
            return;
        }
    vp->kick_assigned = true;
    vp->kick_base = addr;
    log_debug("%s: queue notifications at 0x%llx through ioeventfds", vp->vdev.name,
              (unsigned long long)kick_addr(addr, 0));
}

static void vp_destroy(struct pci_device *d)
{
    struct virtio_pci *vp = VP_OF_PCI(d);
    const struct pci_platform *p = d->bus ? d->bus->plat : NULL;
    if (vp->kick_assigned && p && p->ioeventfd)
        kicks_deassign(vp, vp->kick_base, vp->vdev.nqueues);
    vp->kick_assigned = false;
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
        if (vp->kick[q].fd >= 0) {
            if (vp->kick_on_loop && p && p->loop)
                evloop_del(p->loop, vp->kick[q].fd);
            close(vp->kick[q].fd);
            vp->kick[q].fd = -1;
        }
    if (vp->free)
        vp->free(vp);
}

/* --- snapshots ------------------------------------------------------------ */

/* Settle: kicks the board took through an ioeventfd that the event loop has
 * not handled yet are handled now (an eventfd's count is host state that
 * no snapshot holds: a kick left there would be lost), then the device
 * type finishes its own work in flight. */
static void vp_quiesce(struct pci_device *d)
{
    struct virtio_pci *vp = VP_OF_PCI(d);
    if (vp->kick_on_loop)
        for (unsigned q = 0; q < vp->vdev.nqueues; q++)
            vp_kick_ready(&vp->kick[q]);
    if (vp->vdev.ops->quiesce)
        vp->vdev.ops->quiesce(&vp->vdev);
}

/* After the bus's part of the device's section: u32 device feature select,
 * u32 driver feature select, u16 queue select, u8 ISR, bool MSI-X, the
 * MSI-X state (pci_msix_save) if so, the core (virtio_dev_save), then the
 * device type's own state (virtio_dev_ops.save). */
static void vp_save(struct pci_device *d, struct snap_writer *w)
{
    struct virtio_pci *vp = VP_OF_PCI(d);
    snapw_u32(w, vp->dfselect);
    snapw_u32(w, vp->gfselect);
    snapw_u16(w, vp->queue_sel);
    snapw_u8(w, vp->isr);
    snapw_bool(w, vp->has_msix);
    if (vp->has_msix)
        pci_msix_save(&vp->msix, w);
    virtio_dev_save(&vp->vdev, w);
    if (vp->vdev.ops->save)
        vp->vdev.ops->save(&vp->vdev, w);
}

/* Everything is read and checked first; the device type's load (which
 * reads the rest, calls snapr_end and applies its own state) runs once the
 * transport's and the core's fields passed, and they are applied last. */
static int vp_load(struct pci_device *d, struct snap_reader *r, struct snap_file *f,
                   struct err *e)
{
    struct virtio_pci *vp = VP_OF_PCI(d);
    struct virtio_dev *vd = &vp->vdev;
    uint32_t dfselect = snapr_u32(r), gfselect = snapr_u32(r);
    uint16_t queue_sel = snapr_u16(r);
    uint8_t isr = snapr_u8(r);
    bool has_msix = snapr_bool(r);
    snapr_check(r, !(isr & ~(VIRTIO_PCI_ISR_QUEUE | VIRTIO_PCI_ISR_CONFIG)),
                "undefined ISR bits");
    if (!snapr_check(r, r->fail || has_msix == vp->has_msix,
                     has_msix ? "the device had MSI-X, which this board does not offer"
                              : "the device had no MSI-X, which this board offers"))
        return snapr_end(r, e);
    struct pci_msix_snap ms;
    if (has_msix)
        pci_msix_load(&vp->msix, r, &ms);
    struct virtio_dev_snap vs;
    virtio_dev_load(vd, r, vp->has_msix ? vp->msix.nvec : 0, &vs);
    if (r->fail || r->bad[0])
        return snapr_end(r, e);
    int ret;
    if (vd->ops->load && (ret = vd->ops->load(vd, r, f, e)) < 0)
        return ret;
    if ((ret = snapr_end(r, e)) < 0)
        return ret;
    vp->dfselect = dfselect;
    vp->gfselect = gfselect;
    vp->queue_sel = queue_sel;
    vp->isr = isr;
    if (vp->has_msix)
        pci_msix_restore(&vp->msix, &ms);
    virtio_dev_restore(vd, &vs);
    return 0;
}

static const struct pci_device_ops vp_pci_ops = {
    .cfg_read = vp_cfg_read,
    .cfg_write = vp_cfg_write,
    .plug = vp_plug,
    .bar_mapped = vp_bar_mapped,
    .destroy = vp_destroy,
    .quiesce = vp_quiesce,
    .save = vp_save,
    .load = vp_load,
};

/* --- set-up ------------------------------------------------------------ */

static int add_vendor_cap(struct virtio_pci *vp, uint8_t type, uint32_t off, uint32_t len,
                          unsigned caplen, uint32_t extra, struct err *e)
{
    uint8_t cap[CFG_CAP_SIZE] = { 0 };
    cap[2] = (uint8_t)caplen;
    cap[3] = type;
    cap[CFG_CAP_BAR] = VIRTIO_PCI_BAR;
    put(cap, CFG_CAP_OFFSET, off, 4);
    put(cap, CFG_CAP_LENGTH, len, 4);
    if (caplen > 16)
        put(cap, 16, extra, 4);
    return pci_add_cap(&vp->pci, PCI_CAP_ID_VNDR, cap, caplen, e);
}

int virtio_pci_init(struct virtio_pci *vp, uint32_t class_code,
                    void (*free_fn)(struct virtio_pci *vp), struct err *e)
{
    struct virtio_dev *vd = &vp->vdev;
    int ret;
    vp->free = free_fn;
    vp->dfselect = vp->gfselect = 0;
    vp->queue_sel = 0;
    vp->isr = 0;
    vp->has_msix = false;
    vp->kick_on_loop = vp->kick_assigned = false;
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
        vp->kick[q].fd = -1;
    vd->transport = &vp_transport;
    vd->transport_opaque = vp;
    pci_device_init(&vp->pci, vd->name, &vp_pci_ops, VIRTIO_PCI_VENDOR,
                    (uint16_t)(VIRTIO_PCI_DEVICE_BASE + vd->device_id), class_code, 1,
                    VIRTIO_PCI_VENDOR, vd->device_id);
    if ((ret = pci_device_set_bar(&vp->pci, VIRTIO_PCI_BAR, VIRTIO_PCI_BAR_SIZE,
                                  &virtio_pci_bar_ops, vp, e)) < 0)
        return ret;
    if ((ret = add_vendor_cap(vp, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF,
                              VIRTIO_PCI_REGION_SIZE, 16, 0, e)) < 0 ||
        (ret = add_vendor_cap(vp, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF,
                              VIRTIO_PCI_REGION_SIZE, 16, 0, e)) < 0 ||
        (ret = add_vendor_cap(vp, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF,
                              VIRTIO_PCI_REGION_SIZE, 20, VIRTIO_PCI_NOTIFY_MULT, e)) < 0)
        return ret;
    if (vd->cfg_size &&
        (ret = add_vendor_cap(vp, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFF,
                              vd->cfg_size, 16, 0, e)) < 0)
        return ret;
    if ((ret = add_vendor_cap(vp, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, CFG_CAP_SIZE, 0, e)) < 0)
        return ret;
    vp->cfg_cap = (unsigned)ret;
    pci_set_writable(&vp->pci, vp->cfg_cap + CFG_CAP_BAR, 1);
    pci_set_writable(&vp->pci, vp->cfg_cap + CFG_CAP_OFFSET, 12);
    return 0;
}

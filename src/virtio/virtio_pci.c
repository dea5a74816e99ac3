/* Virtio modern PCI transport (see virtio_pci.h). */
#include "virtio/virtio_pci.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define VP(vd) ((struct virtio_pci *)((char *)(vd) - offsetof(struct virtio_pci, vdev)))
#define VP_OF_PCI(d) ((struct virtio_pci *)((char *)(d) - offsetof(struct virtio_pci, pci)))

/* --- interrupts -------------------------------------------------------- */

static void vp_raise(struct virtio_pci *vp, uint8_t bits)
{
    vp->isr |= bits;
    pci_set_intx(&vp->pci, true);
}

static void vp_notify_queue(struct virtio_dev *vd, unsigned q)
{
    (void)q;
    vp_raise(VP(vd), VIRTIO_PCI_ISR_QUEUE);
}

static void vp_notify_config(struct virtio_dev *vd)
{
    vp_raise(VP(vd), VIRTIO_PCI_ISR_CONFIG);
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
    put(img, VIRTIO_PCI_COMMON_MSIX, VIRTIO_NO_VECTOR, 2);   /* no MSI-X yet */
    put(img, VIRTIO_PCI_COMMON_NUMQ, vd->nqueues, 2);
    put(img, VIRTIO_PCI_COMMON_STATUS, vd->status, 1);
    put(img, VIRTIO_PCI_COMMON_CFGGENERATION, vd->config_generation, 1);
    put(img, VIRTIO_PCI_COMMON_Q_SELECT, vp->queue_sel, 2);
    put(img, VIRTIO_PCI_COMMON_Q_MSIX, VIRTIO_NO_VECTOR, 2);
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
    case VIRTIO_PCI_COMMON_MSIX: break;     /* no MSI-X: stays NO_VECTOR */
    case VIRTIO_PCI_COMMON_Q_MSIX: break;
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
            if (v == 0 || v > q->max_size)
                virtio_log(vd, "queue %u: size %u refused (1..%u)", vp->queue_sel, (unsigned)v,
                           q->max_size);
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
    uint32_t boff;
    unsigned len;
    if (!vp->cfg_cap || off >= data + 4 || off + size <= data || !cfg_cap_window(vp, &boff, &len))
        return;
    uint32_t v = pci_cfg_get32(d, data);
    bar_write(vp, boff, len == 4 ? v : v & ((1u << (8 * len)) - 1), len);
}

static void vp_destroy(struct pci_device *d)
{
    struct virtio_pci *vp = VP_OF_PCI(d);
    if (vp->free)
        vp->free(vp);
}

static const struct pci_device_ops vp_pci_ops = {
    .cfg_read = vp_cfg_read,
    .cfg_write = vp_cfg_write,
    .destroy = vp_destroy,
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

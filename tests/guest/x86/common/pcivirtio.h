/* A minimal PCI and virtio 1.x (modern PCI transport) driver for the test
 * kit's virtio programs (virtio_rng, virtio_blk): configuration mechanism
 * #1 on ports 0xcf8/0xcfc, BAR sizing and assignment, the capability walk,
 * the device initialisation sequence, split virtqueues, MSI-X table
 * programming.  Bus 0, function 0 only; identity-mapped memory, so guest
 * virtual = physical.  Written from the PCI and virtio specifications, the
 * contract that Linux's drivers follow too; nothing Petrel-specific except
 * where a program asks for it. */
#ifndef X86_PCIVIRTIO_H
#define X86_PCIVIRTIO_H

#include "rt.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc

#define PCI_VENDOR_ID 0x00
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_CLASS_REV 0x08
#define PCI_BAR0 0x10
#define PCI_CAP_PTR 0x34
#define PCI_INT_LINE 0x3c
#define PCI_INT_PIN 0x3d
#define PCI_CMD_MEMORY 0x2
#define PCI_CMD_MASTER 0x4
#define PCI_CMD_INTX_DISABLE 0x400
#define PCI_STATUS_INTERRUPT 0x8
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_CAP_VNDR 0x09
#define PCI_CAP_MSIX 0x11

#define MSIX_ENABLE 0x8000
#define MSIX_MASKALL 0x4000

/* virtio common configuration */
#define VC_DFSELECT 0x00
#define VC_DF 0x04
#define VC_GFSELECT 0x08
#define VC_GF 0x0c
#define VC_MSIX 0x10
#define VC_NUMQ 0x12
#define VC_STATUS 0x14
#define VC_GEN 0x15
#define VC_QSELECT 0x16
#define VC_QSIZE 0x18
#define VC_QMSIX 0x1a
#define VC_QENABLE 0x1c
#define VC_QNOFF 0x1e
#define VC_QDESC 0x20
#define VC_QAVAIL 0x28
#define VC_QUSED 0x30

#define VS_ACK 1
#define VS_DRIVER 2
#define VS_DRIVER_OK 4
#define VS_FEATURES_OK 8
#define VIRTIO_NO_VECTOR 0xffff
#define VIRTIO_F_VERSION_1 32

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2

/* config space, bus 0, function 0 of `slot` */
uint32_t pci_cfg_read(unsigned slot, unsigned reg, unsigned size);
void pci_cfg_write(unsigned slot, unsigned reg, unsigned size, uint32_t v);
/* the first slot (from 0) with this vendor:device, or -1 */
int pci_find(uint16_t vendor, uint16_t device);

static inline uint16_t mmio_read16(uintptr_t a) { return *(volatile uint16_t *)a; }
static inline void mmio_write16(uintptr_t a, uint16_t v) { *(volatile uint16_t *)a = v; }

struct vdev {
    unsigned slot;
    uint64_t bar_size[6];       /* memory BARs (a 64-bit BAR at its low index) */
    uint64_t bar_addr[6];       /* where we put them */
    uint64_t common, isr, device, notify;   /* register blocks */
    uint32_t notify_mult;
    unsigned caps_seen;         /* bit n: a vendor cap with cfg_type n */
    unsigned ncaps;
    unsigned msix_cap;          /* config offset, 0: none */
    unsigned msix_n;
    uint64_t msix_table, msix_pba;
};

/* Size every memory BAR of d->slot (all ones, read back, restore) and put
 * them, naturally aligned, from `base` up; memory decoding and bus
 * mastering on.  Returns the first free address after them. */
uint64_t pci_setup_bars(struct vdev *d, unsigned slot, uint64_t base);
/* Walk the capability list: virtio vendor caps (common, notify, ISR,
 * device) and MSI-X.  Returns the number of capabilities (0: broken). */
unsigned virtio_walk_caps(struct vdev *d);

static inline uint8_t vc_r8(struct vdev *d, unsigned o) { return mmio_read8(d->common + o); }
static inline uint16_t vc_r16(struct vdev *d, unsigned o) { return mmio_read16(d->common + o); }
static inline uint32_t vc_r32(struct vdev *d, unsigned o) { return mmio_read32(d->common + o); }
static inline void vc_w8(struct vdev *d, unsigned o, uint8_t v) { mmio_write8(d->common + o, v); }
static inline void vc_w16(struct vdev *d, unsigned o, uint16_t v) { mmio_write16(d->common + o, v); }
static inline void vc_w32(struct vdev *d, unsigned o, uint32_t v) { mmio_write32(d->common + o, v); }

/* Reset, ACKNOWLEDGE, DRIVER, accept `features` (which must include
 * VERSION_1), FEATURES_OK; false if the device refused FEATURES_OK.
 * *offered gets the device's 64 feature bits. */
bool virtio_start(struct vdev *d, uint64_t features, uint64_t *offered);

struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};
struct vring_used_elem {
    uint32_t id, len;
};

#define VQ_MAX 16
struct vq {
    unsigned index;
    uint16_t size;
    volatile struct vring_desc *desc;
    volatile uint16_t *avail;   /* flags, idx, ring[size], used_event */
    volatile uint16_t *used;    /* flags, idx, then elements */
    uint16_t avail_idx, next_desc, last_used;
    uint64_t notify;            /* the queue's notify address */
};

/* Set up queue `index` with min(VQ_MAX, device max) entries in `mem`
 * (3 pages, 4 KiB aligned) and MSI-X vector `vector` (VIRTIO_NO_VECTOR for
 * none); enables it.  Returns the vector the device read back. */
uint16_t vq_setup(struct vdev *d, struct vq *vq, unsigned index, void *mem, uint16_t vector);

struct vbuf {
    uint64_t addr;
    uint32_t len;
    bool device_writes;
};
/* Put a chain of n buffers in the ring (not yet visible: vq_publish). */
uint16_t vq_add(struct vq *vq, const struct vbuf *b, unsigned n);
/* Publish the added chains (avail idx) and write the queue's notify address. */
void vq_kick(struct vq *vq);
static inline uint16_t vq_used_idx(struct vq *vq) { return vq->used[1]; }
static inline struct vring_used_elem vq_used_elem(struct vq *vq, uint16_t i) {
    volatile struct vring_used_elem *e =
        (volatile struct vring_used_elem *)(vq->used + 2) + (i % vq->size);
    return (struct vring_used_elem){ e->id, e->len };
}

/* MSI-X table entry v: message to the LAPIC of `apic_id` with `vector`
 * (fixed, edge), masked or not. */
void msix_set_entry(struct vdev *d, unsigned v, unsigned apic_id, unsigned vector, bool masked);
void msix_mask_entry(struct vdev *d, unsigned v, bool masked);
uint16_t msix_control(struct vdev *d);
void msix_set_control(struct vdev *d, uint16_t v);
static inline uint64_t msix_pending(struct vdev *d) { return mmio_read64(d->msix_pba); }

/* IOAPIC pin: level-triggered, active low (PCI INTx), vector, to apic_id. */
void ioapic_route_level(unsigned pin, unsigned vector, unsigned apic_id);

/* Wait with interrupts on (sti; hlt) until *counter moves past `from` or
 * `us` microseconds pass; then cli.  Returns whether it moved.  The LAPIC
 * timer (vector WAIT_WAKE_VECTOR) wakes the hlt about every millisecond
 * meanwhile.  Needs tsc_calibrate() and lapic_enable(). */
#define WAIT_WAKE_VECTOR 0x4f
bool wait_irq(volatile unsigned *counter, unsigned from, uint64_t us);

#endif

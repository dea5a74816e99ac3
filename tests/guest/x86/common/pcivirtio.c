/* Minimal PCI + virtio modern driver for the test kit (see pcivirtio.h). */
#include "pcivirtio.h"

static uint32_t conf1_address(unsigned slot, unsigned reg)
{
    return 0x80000000u | (slot & 31) << 11 | (reg & 0xfc);
}

uint32_t pci_cfg_read(unsigned slot, unsigned reg, unsigned size)
{
    outl(PCI_CONFIG_ADDRESS, conf1_address(slot, reg));
    switch (size) {
    case 1: return inb((uint16_t)(PCI_CONFIG_DATA + (reg & 3)));
    case 2: return inw((uint16_t)(PCI_CONFIG_DATA + (reg & 2)));
    default: return inl(PCI_CONFIG_DATA);
    }
}

void pci_cfg_write(unsigned slot, unsigned reg, unsigned size, uint32_t v)
{
    outl(PCI_CONFIG_ADDRESS, conf1_address(slot, reg));
    switch (size) {
    case 1: outb((uint16_t)(PCI_CONFIG_DATA + (reg & 3)), (uint8_t)v); break;
    case 2: outw((uint16_t)(PCI_CONFIG_DATA + (reg & 2)), (uint16_t)v); break;
    default: outl(PCI_CONFIG_DATA, v); break;
    }
}

int pci_find(uint16_t vendor, uint16_t device)
{
    uint32_t want = (uint32_t)device << 16 | vendor;
    for (unsigned s = 0; s < 32; s++)
        if (pci_cfg_read(s, PCI_VENDOR_ID, 4) == want)
            return (int)s;
    return -1;
}

uint64_t pci_setup_bars(struct vdev *d, unsigned slot, uint64_t base)
{
    memset(d, 0, sizeof(*d));
    d->slot = slot;
    uint16_t cmd = (uint16_t)pci_cfg_read(slot, PCI_COMMAND, 2);
    pci_cfg_write(slot, PCI_COMMAND, 2, cmd & ~PCI_CMD_MEMORY); /* no decoding while sizing */
    for (unsigned i = 0; i < 6; i++) {
        unsigned reg = PCI_BAR0 + 4 * i;
        uint32_t lo = pci_cfg_read(slot, reg, 4);
        if (lo & 1)
            continue; /* an I/O BAR */
        bool is64 = (lo & 6) == 4 && i < 5;
        pci_cfg_write(slot, reg, 4, 0xffffffffu);
        uint32_t mlo = pci_cfg_read(slot, reg, 4) & ~0xfu;
        pci_cfg_write(slot, reg, 4, lo);
        uint32_t mhi = 0xffffffffu;
        if (is64) {
            uint32_t hi = pci_cfg_read(slot, reg + 4, 4);
            pci_cfg_write(slot, reg + 4, 4, 0xffffffffu);
            mhi = pci_cfg_read(slot, reg + 4, 4);
            pci_cfg_write(slot, reg + 4, 4, hi);
        }
        uint64_t mask = (uint64_t)mhi << 32 | mlo;
        if (!mlo && (!is64 || !mhi)) {
            i += is64;
            continue; /* not implemented */
        }
        uint64_t size = ~mask + 1;
        uint64_t a = (base + size - 1) & ~(size - 1);
        pci_cfg_write(slot, reg, 4, (uint32_t)a | (lo & 0xf));
        if (is64)
            pci_cfg_write(slot, reg + 4, 4, (uint32_t)(a >> 32));
        d->bar_size[i] = size;
        d->bar_addr[i] = a;
        base = a + size;
        i += is64;
    }
    pci_cfg_write(slot, PCI_COMMAND, 2, cmd | PCI_CMD_MEMORY | PCI_CMD_MASTER);
    return base;
}

unsigned virtio_walk_caps(struct vdev *d)
{
    unsigned s = d->slot, n = 0;
    if (!(pci_cfg_read(s, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST))
        return 0;
    for (unsigned p = pci_cfg_read(s, PCI_CAP_PTR, 1) & ~3u; p && n < 48;
         p = pci_cfg_read(s, p + 1, 1) & ~3u) {
        n++;
        unsigned id = pci_cfg_read(s, p, 1);
        if (id == PCI_CAP_VNDR) {
            unsigned type = pci_cfg_read(s, p + 3, 1), bar = pci_cfg_read(s, p + 4, 1);
            uint32_t off = pci_cfg_read(s, p + 8, 4);
            if (bar > 5 || type > 8)
                continue;
            uint64_t a = d->bar_addr[bar] + off;
            switch (type) {
            case 1: d->common = a; break;
            case 2:
                d->notify = a;
                d->notify_mult = pci_cfg_read(s, p + 16, 4);
                break;
            case 3: d->isr = a; break;
            case 4: d->device = a; break;
            default: break;
            }
            d->caps_seen |= 1u << type;
        } else if (id == PCI_CAP_MSIX) {
            uint32_t t = pci_cfg_read(s, p + 4, 4), b = pci_cfg_read(s, p + 8, 4);
            d->msix_cap = p;
            d->msix_n = (pci_cfg_read(s, p + 2, 2) & 0x7ff) + 1;
            d->msix_table = d->bar_addr[t & 7] + (t & ~7u);
            d->msix_pba = d->bar_addr[b & 7] + (b & ~7u);
        }
    }
    d->ncaps = n;
    return n;
}

bool virtio_start(struct vdev *d, uint64_t features, uint64_t *offered)
{
    vc_w8(d, VC_STATUS, 0);
    for (int i = 0; i < 1000 && vc_r8(d, VC_STATUS); i++)
        pause();
    vc_w8(d, VC_STATUS, VS_ACK);
    vc_w8(d, VC_STATUS, VS_ACK | VS_DRIVER);
    vc_w32(d, VC_DFSELECT, 0);
    uint64_t lo = vc_r32(d, VC_DF);
    vc_w32(d, VC_DFSELECT, 1);
    *offered = (uint64_t)vc_r32(d, VC_DF) << 32 | lo;
    vc_w32(d, VC_GFSELECT, 0);
    vc_w32(d, VC_GF, (uint32_t)features);
    vc_w32(d, VC_GFSELECT, 1);
    vc_w32(d, VC_GF, (uint32_t)(features >> 32));
    vc_w8(d, VC_STATUS, VS_ACK | VS_DRIVER | VS_FEATURES_OK);
    return (vc_r8(d, VC_STATUS) & VS_FEATURES_OK) != 0;
}

uint16_t vq_setup(struct vdev *d, struct vq *vq, unsigned index, void *mem, uint16_t vector)
{
    uint64_t m = (uint64_t)mem;
    memset(mem, 0, 3 * 4096);
    vc_w16(d, VC_QSELECT, (uint16_t)index);
    uint16_t max = vc_r16(d, VC_QSIZE);
    vq->index = index;
    vq->size = max < VQ_MAX ? max : VQ_MAX;
    vq->desc = (volatile struct vring_desc *)m;
    vq->avail = (volatile uint16_t *)(m + 4096);
    vq->used = (volatile uint16_t *)(m + 8192);
    vq->avail_idx = vq->next_desc = vq->last_used = 0;
    vc_w16(d, VC_QSIZE, vq->size);
    vc_w32(d, VC_QDESC, (uint32_t)m);
    vc_w32(d, VC_QDESC + 4, (uint32_t)(m >> 32));
    vc_w32(d, VC_QAVAIL, (uint32_t)(m + 4096));
    vc_w32(d, VC_QAVAIL + 4, (uint32_t)((m + 4096) >> 32));
    vc_w32(d, VC_QUSED, (uint32_t)(m + 8192));
    vc_w32(d, VC_QUSED + 4, (uint32_t)((m + 8192) >> 32));
    vc_w16(d, VC_QMSIX, vector);
    uint16_t got = vc_r16(d, VC_QMSIX);
    vq->notify = d->notify + (uint64_t)vc_r16(d, VC_QNOFF) * d->notify_mult;
    vc_w16(d, VC_QENABLE, 1);
    return got;
}

uint16_t vq_add(struct vq *vq, const struct vbuf *b, unsigned n)
{
    uint16_t head = vq->next_desc;
    for (unsigned i = 0; i < n; i++) {
        uint16_t at = vq->next_desc;
        vq->next_desc = (uint16_t)((at + 1) % vq->size);
        vq->desc[at].addr = b[i].addr;
        vq->desc[at].len = b[i].len;
        vq->desc[at].flags = (uint16_t)((b[i].device_writes ? VRING_DESC_F_WRITE : 0) |
                                        (i + 1 < n ? VRING_DESC_F_NEXT : 0));
        vq->desc[at].next = vq->next_desc;
    }
    vq->avail[2 + vq->avail_idx % vq->size] = head;
    vq->avail_idx++;
    return head;
}

void vq_kick(struct vq *vq)
{
    __asm__ volatile("mfence" ::: "memory");
    vq->avail[1] = vq->avail_idx;
    __asm__ volatile("mfence" ::: "memory");
    mmio_write16(vq->notify, (uint16_t)vq->index);
}

void msix_set_entry(struct vdev *d, unsigned v, unsigned apic_id, unsigned vector, bool masked)
{
    uint64_t e = d->msix_table + 16 * v;
    mmio_write32(e + 12, 1); /* masked while changing */
    mmio_write32(e, 0xfee00000u | (apic_id & 0xff) << 12);
    mmio_write32(e + 4, 0);
    mmio_write32(e + 8, vector & 0xff); /* fixed, edge */
    mmio_write32(e + 12, masked ? 1 : 0);
}

void msix_mask_entry(struct vdev *d, unsigned v, bool masked)
{
    mmio_write32(d->msix_table + 16 * v + 12, masked ? 1 : 0);
}

uint16_t msix_control(struct vdev *d)
{
    return (uint16_t)pci_cfg_read(d->slot, d->msix_cap + 2, 2);
}

void msix_set_control(struct vdev *d, uint16_t v)
{
    pci_cfg_write(d->slot, d->msix_cap + 2, 2, v);
}

void ioapic_route_level(unsigned pin, unsigned vector, unsigned apic_id)
{
    ioapic_write(0x10 + 2 * pin, 1u << 16);
    ioapic_write(0x11 + 2 * pin, apic_id << 24);
    ioapic_write(0x10 + 2 * pin, (vector & 0xff) | 1u << 13 | 1u << 15);
}

static void wake_irq(struct trapframe *tf)
{
    (void)tf;
    lapic_eoi();
}

bool wait_irq(volatile unsigned *counter, unsigned from, uint64_t us)
{
    /* hlt until the interrupt, with the LAPIC timer (periodic, about 1 ms
     * on KVM's 1 GHz APIC clock) as the alarm clock for the time limit */
    set_handler(WAIT_WAKE_VECTOR, wake_irq);
    lapic_write(LAPIC_TIMER_DCR, 0x3);      /* divide by 16 */
    lapic_write(LAPIC_LVT_TIMER, (1u << 17) | WAIT_WAKE_VECTOR);
    lapic_write(LAPIC_TIMER_ICR, 62500);
    uint64_t end = rdtsc() + us_to_tsc(us);
    while (*counter == from && rdtsc() < end) {
        sti_hlt();
        cli();
    }
    lapic_write(LAPIC_LVT_TIMER, (1u << 16) | WAIT_WAKE_VECTOR);
    lapic_write(LAPIC_TIMER_ICR, 0);
    return *counter != from;
}

/* virtio_rng: PCI through configuration mechanism #1 and a virtio-rng
 * device over the modern virtio PCI transport, driven the way a kernel
 * does, with both interrupt mechanisms:
 * - mechanism #1: CONFIG_ADDRESS reads back, a cleared enable bit reads
 *   all ones, byte and word accesses at 0xcfc-0xcff see the right bytes of
 *   the dword (STRICT: also an unaligned word at 0xcfd, and the low two
 *   bits of CONFIG_ADDRESS read 0); a host bridge (class 06/00) at 00:00.0;
 *   an empty slot reads all ones;
 * - the device (1af4:1044) is found by scanning, its memory BARs sized
 *   (all ones, read back) and placed at addresses of our choosing, its
 *   capabilities walked: common, notify, ISR, PCI-config-access and MSI-X
 *   (STRICT: Petrel's layout, BAR 0 of 16 KiB and BAR 2 of 4 KiB, 64-bit;
 *   Interrupt Line = GSI 16 + slot % 4, and the MP table's PCI interrupt
 *   entry for the slot says the same, level-triggered, active low);
 * - virtio init: reset, ACKNOWLEDGE, DRIVER, VERSION_1, FEATURES_OK,
 *   queue 0 with MSI-X vector 0 (read back), config vector 1 (read back; a
 *   vector beyond the table reads back NO_VECTOR), DRIVER_OK;
 * - INTx: the Interrupt Line's IOAPIC pin, level-triggered: three requests
 *   in a row each complete with 64 random bytes and one interrupt whose
 *   handler sees ISR bit 0 (reading it deasserts the line; a stuck level
 *   interrupt would be a storm, a lost EOI a missing second interrupt);
 *   Interrupt Disable holds the interrupt back while the status register
 *   shows it, clearing it lets it through;
 * - MSI-X to the LAPIC: enabled (with function mask, then unmasked), three
 *   requests each bring one MSI on the queue's vector and no INTx
 *   (STRICT: nor an ISR bit); a masked vector and a masked function hold
 *   the message back with its PBA bit set, and unmasking delivers it and
 *   clears the bit; (STRICT) a message aimed at RAM instead of the LAPIC is
 *   dropped, RAM untouched;
 * - memory decoding off: a notify goes nowhere; the BAR moved elsewhere:
 *   notifies at the new address work (on Petrel/KVM they are ioeventfds,
 *   which must follow the BAR), at the old one do nothing.
 * Prints kick-to-interrupt latencies (not checked), and their min/median/
 * max over 21 MSI-X requests. */
#include "pcivirtio.h"

#define VEC_INTX 0x50
#define VEC_MSIX_Q 0x51
#define VEC_MSIX_CFG 0x52
#define BAR_BASE 0xe0000000ul
#define BAR_MOVED 0xe8000000ul
#define RNG_LEN 64
#define NEG_WAIT_US 20000       /* how long "nothing happens" is watched */
#define IRQ_WAIT_US 1000000
#define LAT_RUNS 21

static struct vdev dev;
static struct vq vq;
static uint8_t ring_mem[3 * 4096] __attribute__((aligned(4096)));
static uint8_t bufs[16][RNG_LEN] __attribute__((aligned(64)));
static unsigned nbuf;
static volatile uint32_t canary[4] __attribute__((aligned(16)));

static volatile unsigned intx_count, intx_real, intx_spurious, msix_count, cfg_count;
static volatile uint8_t isr_seen;
static volatile uint64_t irq_tsc;

static void intx_irq(struct trapframe *tf)
{
    (void)tf;
    uint8_t isr = mmio_read8(dev.isr); /* read to clear: deasserts INTx */
    isr_seen |= isr;
    intx_count++;
    if (isr & 1)
        intx_real++;
    else
        intx_spurious++;
    irq_tsc = rdtsc();
    lapic_eoi();
}

static void msix_irq(struct trapframe *tf)
{
    (void)tf;
    msix_count++;
    irq_tsc = rdtsc();
    lapic_eoi();
}

static void cfg_irq(struct trapframe *tf)
{
    (void)tf;
    cfg_count++;
    lapic_eoi();
}

/* Queue one 64-byte entropy request (not kicked); returns its buffer. */
static uint8_t *add_request(void)
{
    uint8_t *b = bufs[nbuf++ % 16];
    memset(b, 0, RNG_LEN);
    struct vbuf vb = { (uint64_t)b, RNG_LEN, true };
    vq_add(&vq, &vb, 1);
    return b;
}

/* The next used element is our request, complete with random bytes. */
static void check_completed(const uint8_t *b)
{
    CHECK_EQ(vq_used_idx(&vq), (uint16_t)(vq.last_used + 1));
    struct vring_used_elem e = vq_used_elem(&vq, vq.last_used);
    vq.last_used++;
    CHECK_EQ(e.len, RNG_LEN + BREAK_ADJ);
    unsigned zero = 0;
    for (unsigned i = 0; i < RNG_LEN; i++)
        zero += b[i] == 0;
    CHECK_MSG(zero < 16, "%u of %u entropy bytes are 0", zero, RNG_LEN);
}

/* Let a spurious INTx arrive: on PVM hosts (under QEMU too) a
 * level-triggered IOAPIC interrupt is delivered a second time after the
 * handler has deasserted the line, as if the EOI had reached the IOAPIC
 * while the line was still high.  Such a one reads ISR 0, like a shared
 * line's interrupt for another device: tolerated, at most one per real
 * interrupt, and counted. */
static void intx_settle(void)
{
    unsigned c0 = intx_count;
    wait_irq(&intx_count, c0, NEG_WAIT_US);
    CHECK_LE(intx_spurious, intx_real);
}

/* One request that must complete with an interrupt on *counter. */
static void request_irq(const char *what, volatile unsigned *counter)
{
    unsigned c0 = *counter;
    uint8_t *b = add_request();
    uint64_t t0 = rdtsc();
    vq_kick(&vq);
    CHECK_MSG(wait_irq(counter, c0, IRQ_WAIT_US), "%s: no interrupt within 1 s (used idx %u)",
              what, vq_used_idx(&vq));
    CHECK_EQ(*counter, c0 + 1);
    printf("  %s: request done, interrupt after %lu us\n", what, tsc_to_us(irq_tsc - t0));
    check_completed(b);
    intx_settle();
    CHECK_MSG(*counter == c0 + 1, "%s: %u interrupts for one request", what, *counter - c0);
}

/* Config space through mechanism #1, by hand. */
static void check_conf1(void)
{
    uint32_t saved = inl(PCI_CONFIG_ADDRESS);
    outl(PCI_CONFIG_ADDRESS, 0x80000000u);
    CHECK_EQ(inl(PCI_CONFIG_ADDRESS), 0x80000000u);
#ifdef STRICT_PLATFORM
    outl(PCI_CONFIG_ADDRESS, 0x80000003u);
    CHECK_EQ(inl(PCI_CONFIG_ADDRESS), 0x80000000u); /* bits 1:0 read 0 */
#endif
    outl(PCI_CONFIG_ADDRESS, 0x80000000u);
    uint32_t id = inl(PCI_CONFIG_DATA);
    CHECK_NE(id, 0xffffffffu);
    CHECK_EQ(inb(PCI_CONFIG_DATA), id & 0xff);
    CHECK_EQ(inb(PCI_CONFIG_DATA + 1), (id >> 8) & 0xff);
    CHECK_EQ(inb(PCI_CONFIG_DATA + 3), id >> 24);
    CHECK_EQ(inw(PCI_CONFIG_DATA), id & 0xffff);
    CHECK_EQ(inw(PCI_CONFIG_DATA + 2), id >> 16);
#ifdef STRICT_PLATFORM
    CHECK_EQ(inw(PCI_CONFIG_DATA + 1), (id >> 8) & 0xffff); /* byte enables 1-2 */
#endif
    outl(PCI_CONFIG_ADDRESS, 0x00000000u); /* enable bit clear */
    CHECK_EQ(inl(PCI_CONFIG_DATA), 0xffffffffu);
    CHECK_EQ(inb(PCI_CONFIG_DATA + 2), 0xff);
    outl(PCI_CONFIG_ADDRESS, saved);
    /* 00:00.0 is a host bridge */
    uint32_t cls = pci_cfg_read(0, PCI_CLASS_REV, 4) >> 8;
    printf("virtio_rng: 00:00.0 %04x:%04x class %06x\n", id & 0xffff, id >> 16, cls);
    CHECK_EQ(cls >> 8, 0x0600);
    CHECK_EQ(pci_cfg_read(31, PCI_VENDOR_ID, 4), 0xffffffffu);
}

#ifdef STRICT_PLATFORM
/* The MP table's interrupt entry for (PCI bus 0, slot, INTA). */
static void check_mp_routing(unsigned slot, unsigned line)
{
    struct mp_info mp;
    CHECK(mp_find(&mp) && mp.table_addr);
    const uint8_t *t = phys(mp.table_addr);
    uint16_t len = *(const uint16_t *)(t + 4), count = *(const uint16_t *)(t + 0x22);
    const uint8_t *e = t + 0x2c, *end = t + len;
    int pci_bus = -1, found = 0;
    for (unsigned i = 0; i < count && e < end; i++) {
        if (e[0] == 1 && !memcmp(e + 2, "PCI   ", 6))
            pci_bus = e[1];
        if (e[0] == 3 && pci_bus >= 0 && e[4] == pci_bus && e[5] == (slot << 2)) {
            found++;
            CHECK_EQ(e[7], line);                       /* IOAPIC pin */
            CHECK_EQ(*(const uint16_t *)(e + 2), 0xf);  /* level, active low */
            CHECK_EQ(e[6], mp.ioapic_id[0]);
        }
        e += e[0] == 0 ? 20 : 8;
    }
    CHECK_EQ(pci_bus, 0);
    CHECK_EQ(found, 1);
}
#endif

/* Recompute the register block addresses after moving the BARs. */
static void rebase(unsigned bar, uint64_t old, uint64_t new)
{
    uint64_t *blocks[] = { &dev.common, &dev.isr, &dev.device, &dev.notify, &dev.msix_table,
                           &dev.msix_pba };
    for (unsigned i = 0; i < 6; i++)
        if (*blocks[i] >= old && *blocks[i] < old + dev.bar_size[bar])
            *blocks[i] = *blocks[i] - old + new;
    vq.notify = vq.notify - old + new;
    dev.bar_addr[bar] = new;
}

void test_main(void)
{
    tsc_calibrate();
    lapic_enable();
    unsigned apic = lapic_id();
    check_conf1();

    /* ---- find and map the device ---- */
    int slot = pci_find(0x1af4, 0x1044);
    CHECK_MSG(slot > 0, "no virtio-rng (1af4:1044) on bus 0");
    unsigned pin = pci_cfg_read(slot, PCI_INT_PIN, 1), line = pci_cfg_read(slot, PCI_INT_LINE, 1);
    printf("virtio_rng: device in slot %d, INT%c, Interrupt Line %u\n", slot, 'A' + pin - 1,
           line);
    CHECK_EQ(pin, 1);
    CHECK_LT(line, 24);
#ifdef STRICT_PLATFORM
    CHECK_EQ(line, 16 + slot % 4);
    check_mp_routing(slot, line);
#endif
    uint64_t end = pci_setup_bars(&dev, slot, BAR_BASE);
    for (unsigned i = 0; i < 6; i++)
        if (dev.bar_size[i])
            printf("  BAR %u: %lu KiB at 0x%lx\n", i, dev.bar_size[i] >> 10, dev.bar_addr[i]);
    CHECK_GT(end, BAR_BASE);
#ifdef STRICT_PLATFORM
    CHECK_EQ(dev.bar_size[0], 0x4000);
    CHECK_EQ(dev.bar_size[2], 0x1000);
    CHECK_EQ(pci_cfg_read(slot, PCI_BAR0, 4), BAR_BASE | 4);   /* 64-bit memory */
    CHECK_EQ(pci_cfg_read(slot, PCI_BAR0 + 4, 4), 0);
#endif
    unsigned ncaps = virtio_walk_caps(&dev);
    printf("  %u capabilities, virtio cfg types 0x%x, MSI-X %u vectors\n", ncaps,
           dev.caps_seen, dev.msix_n);
    CHECK_MSG((dev.caps_seen & 0x2e) == 0x2e,
              "virtio capabilities: types 0x%x, want common, notify, ISR, PCI cfg", dev.caps_seen);
    CHECK_NE(dev.common, 0);
    CHECK_NE(dev.notify_mult, 0);
    CHECK_MSG(dev.msix_cap, "no MSI-X capability");
    CHECK_GE(dev.msix_n, 2);

    /* ---- virtio initialisation ---- */
    uint64_t offered;
    CHECK_MSG(virtio_start(&dev, 1ull << VIRTIO_F_VERSION_1, &offered),
              "FEATURES_OK refused (offered 0x%lx)", offered);
    CHECK(offered & (1ull << VIRTIO_F_VERSION_1));
    CHECK_EQ(vc_r16(&dev, VC_MSIX), VIRTIO_NO_VECTOR); /* after reset */
    CHECK_EQ(vc_r16(&dev, VC_NUMQ), 1);
    vc_w16(&dev, VC_MSIX, (uint16_t)dev.msix_n);        /* beyond the table */
    CHECK_EQ(vc_r16(&dev, VC_MSIX), VIRTIO_NO_VECTOR);
    vc_w16(&dev, VC_MSIX, 1);
    CHECK_EQ(vc_r16(&dev, VC_MSIX), 1);
    CHECK_EQ(vq_setup(&dev, &vq, 0, ring_mem, 0), 0);
    vc_w8(&dev, VC_STATUS, VS_ACK | VS_DRIVER | VS_FEATURES_OK | VS_DRIVER_OK);
    CHECK_EQ(vc_r8(&dev, VC_STATUS), VS_ACK | VS_DRIVER | VS_FEATURES_OK | VS_DRIVER_OK);

    set_handler(VEC_INTX, intx_irq);
    set_handler(VEC_MSIX_Q, msix_irq);
    set_handler(VEC_MSIX_CFG, cfg_irq);

    /* ---- INTx through the IOAPIC, level-triggered ---- */
    CHECK_EQ(msix_control(&dev) & MSIX_ENABLE, 0);
    ioapic_route_level(line, VEC_INTX, apic);
    for (int i = 0; i < 3; i++)
        request_irq("INTx", &intx_real);
    CHECK_EQ(isr_seen & 1, 1);
    CHECK_EQ(pci_cfg_read(slot, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);
    /* Interrupt Disable holds it back, the status bit shows it */
    uint16_t cmd = (uint16_t)pci_cfg_read(slot, PCI_COMMAND, 2);
    pci_cfg_write(slot, PCI_COMMAND, 2, cmd | PCI_CMD_INTX_DISABLE);
    unsigned c0 = intx_count;
    uint8_t *b = add_request();
    vq_kick(&vq);
    CHECK_MSG(!wait_irq(&intx_count, c0, NEG_WAIT_US), "INTx delivered with Interrupt Disable");
    CHECK_EQ(pci_cfg_read(slot, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, PCI_STATUS_INTERRUPT);
    check_completed(b);
    c0 = intx_real;
    pci_cfg_write(slot, PCI_COMMAND, 2, cmd);
    CHECK_MSG(wait_irq(&intx_real, c0, IRQ_WAIT_US), "INTx not delivered after clearing "
              "Interrupt Disable");
    intx_settle();
    CHECK_EQ(intx_real, c0 + 1);
    ioapic_write(0x10 + 2 * line, 1u << 16); /* mask the pin */
    printf("  INTx: %u interrupts, %u of them spurious (ISR 0)\n", intx_count, intx_spurious);

    /* ---- MSI-X to the LAPIC ---- */
    msix_set_entry(&dev, 0, apic, VEC_MSIX_Q, false);
    msix_set_entry(&dev, 1, apic, VEC_MSIX_CFG, false);
    msix_set_control(&dev, MSIX_ENABLE | MSIX_MASKALL);
    msix_set_control(&dev, MSIX_ENABLE);
    CHECK_EQ(msix_control(&dev) & (MSIX_ENABLE | MSIX_MASKALL), MSIX_ENABLE);
    (void)mmio_read8(dev.isr);
    isr_seen = 0;
    unsigned i0 = intx_count;
    for (int i = 0; i < 3; i++)
        request_irq("MSI-X", &msix_count);
    CHECK_EQ(intx_count, i0);
#ifdef STRICT_PLATFORM
    CHECK_EQ(mmio_read8(dev.isr), 0); /* MSI-X events do not touch the ISR */
#endif
    CHECK_EQ(pci_cfg_read(slot, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);

    /* a masked vector: held back, pending, delivered on unmask */
    msix_mask_entry(&dev, 0, true);
    unsigned m0 = msix_count;
    b = add_request();
    vq_kick(&vq);
    CHECK_MSG(!wait_irq(&msix_count, m0, NEG_WAIT_US), "MSI-X delivered while masked");
    check_completed(b);
    CHECK_EQ(msix_pending(&dev) & 1, 1);
    msix_mask_entry(&dev, 0, false);
    CHECK_MSG(wait_irq(&msix_count, m0, IRQ_WAIT_US), "pending MSI-X lost at unmask");
    CHECK_EQ(msix_pending(&dev) & 1, 0);
    /* the function mask */
    msix_set_control(&dev, MSIX_ENABLE | MSIX_MASKALL);
    m0 = msix_count;
    b = add_request();
    vq_kick(&vq);
    CHECK_MSG(!wait_irq(&msix_count, m0, NEG_WAIT_US), "MSI-X delivered with function mask");
    check_completed(b);
    CHECK_EQ(msix_pending(&dev) & 1, 1);
    msix_set_control(&dev, MSIX_ENABLE);
    CHECK_MSG(wait_irq(&msix_count, m0, IRQ_WAIT_US), "pending MSI-X lost at function unmask");
    CHECK_EQ(msix_pending(&dev) & 1, 0);
#ifdef STRICT_PLATFORM
    /* a message aimed at RAM is not an interrupt: dropped, RAM untouched */
    uint64_t e0 = dev.msix_table;
    mmio_write32(e0 + 12, 1);
    mmio_write32(e0, (uint32_t)(uint64_t)canary);
    mmio_write32(e0 + 8, 0x5a5a5a5a);
    mmio_write32(e0 + 12, 0);
    m0 = msix_count;
    b = add_request();
    vq_kick(&vq);
    CHECK_MSG(!wait_irq(&msix_count, m0, NEG_WAIT_US), "MSI-X to RAM became an interrupt");
    check_completed(b);
    CHECK_EQ(canary[0], 0);
    msix_set_entry(&dev, 0, apic, VEC_MSIX_Q, false);
#endif
    CHECK_EQ(cfg_count, 0);

    /* ---- memory decoding off, then the BAR moved ---- */
    unsigned nbar = 0;
    for (unsigned i = 0; i < 6; i++)
        if (dev.bar_size[i] && vq.notify >= dev.bar_addr[i] &&
            vq.notify < dev.bar_addr[i] + dev.bar_size[i])
            nbar = i;
    uint64_t old = dev.bar_addr[nbar], old_notify = vq.notify;
    cmd = (uint16_t)pci_cfg_read(slot, PCI_COMMAND, 2);
    pci_cfg_write(slot, PCI_COMMAND, 2, cmd & ~PCI_CMD_MEMORY);
    m0 = msix_count;
    b = add_request();
    vq_kick(&vq); /* decodes nowhere */
    CHECK_MSG(!wait_irq(&msix_count, m0, NEG_WAIT_US), "notify worked with decoding off");
    CHECK_EQ(vq_used_idx(&vq), vq.last_used);
    pci_cfg_write(slot, PCI_BAR0 + 4 * nbar, 4,
                  (uint32_t)BAR_MOVED | (pci_cfg_read(slot, PCI_BAR0 + 4 * nbar, 4) & 0xf));
    pci_cfg_write(slot, PCI_COMMAND, 2, cmd);
    rebase(nbar, old, BAR_MOVED);
    printf("  BAR %u moved from 0x%lx to 0x%lx\n", nbar, old, (uint64_t)BAR_MOVED);
    mmio_write16(old_notify, 0); /* the old address: nothing there now */
    CHECK_MSG(!wait_irq(&msix_count, m0, NEG_WAIT_US), "notify at the old BAR address worked");
    CHECK_EQ(vq_used_idx(&vq), vq.last_used);
    mmio_write16(vq.notify, 0);
    CHECK_MSG(wait_irq(&msix_count, m0, IRQ_WAIT_US), "no interrupt after a notify at the "
              "moved BAR");
    check_completed(b);
    request_irq("MSI-X after the move", &msix_count);

    /* kick-to-interrupt latency, MSI-X (printed, not checked) */
    uint64_t lat[LAT_RUNS];
    for (unsigned i = 0; i < LAT_RUNS; i++) {
        m0 = msix_count;
        b = add_request();
        uint64_t t0 = rdtsc();
        vq_kick(&vq);
        CHECK(wait_irq(&msix_count, m0, IRQ_WAIT_US));
        lat[i] = tsc_to_us(irq_tsc - t0);
        check_completed(b);
    }
    for (unsigned i = 1; i < LAT_RUNS; i++) /* insertion sort */
        for (unsigned j = i; j > 0 && lat[j - 1] > lat[j]; j--) {
            uint64_t t = lat[j];
            lat[j] = lat[j - 1];
            lat[j - 1] = t;
        }
    printf("virtio_rng: MSI-X kick to interrupt over %u requests: min %lu us, median %lu us, "
           "max %lu us\n", LAT_RUNS, lat[0], lat[LAT_RUNS / 2], lat[LAT_RUNS - 1]);

    /* ---- reset ---- */
    vc_w8(&dev, VC_STATUS, 0);
    CHECK_EQ(vc_r8(&dev, VC_STATUS), 0);
    CHECK_EQ(vc_r16(&dev, VC_MSIX), VIRTIO_NO_VECTOR);
    msix_set_control(&dev, 0);
    pass();
}

/* Unit tests for PCI (src/pci/pci.c, src/pci/msix.c): ECAM decoding,
 * configuration mechanism #1 (CONFIG_ADDRESS, the enable bit, every access
 * size and byte offset of the data port, unaligned words, AMD's extended
 * register bits, ports outside the window), the type 0 header, read-only and
 * writable bits, BAR sizing, BAR placement and moves (the BAR's MMIO region
 * follows what the guest writes, and the device hears where it went), the
 * memory window, capability lists, INTx swizzling and masking, slots, the
 * host bridge, plug hooks and teardown; MSI-X: the capability, the table's
 * writable bits and access sizes, vector and function masking, the PBA,
 * delivery through the board's routes (programmed lazily, reprogrammed when
 * the message changes, refused messages dropped) and INTx off while MSI-X
 * is on. */
#include <errno.h>
#include <string.h>

#include "pci/msix.h"
#include "pci/pci.h"

#include "unit.h"

#define ECAM_BASE 0x30000000ull
#define WIN_BASE 0x40000000ull
#define WIN_SIZE 0x40000000ull

struct tdev {
    struct pci_device pci;
    int id;
    unsigned reads, writes;
    uint64_t last_off;
    int *destroyed;
};

static uint64_t tdev_read(void *opaque, uint64_t off, unsigned size)
{
    struct tdev *t = opaque;
    (void)size;
    t->reads++;
    t->last_off = off;
    return 0xd0d00000u | (unsigned)t->id;
}

static void tdev_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct tdev *t = opaque;
    (void)val;
    (void)size;
    t->writes++;
    t->last_off = off;
}

static const struct mmio_ops tdev_bar_ops = { .read = tdev_read, .write = tdev_write };

static void tdev_destroy(struct pci_device *d)
{
    struct tdev *t = (struct tdev *)d;
    if (t->destroyed)
        (*t->destroyed)++;
}

static const struct pci_device_ops tdev_ops = { .destroy = tdev_destroy };

static bool lines[PCI_INTX_LINES];
static unsigned intx_calls;

static void set_intx(void *opaque, unsigned line, bool level)
{
    (void)opaque;
    lines[line] = level;
    intx_calls++;
}

static struct bus mmio;
static struct pci_bus pb;

static void setup(void)
{
    memset(&mmio, 0, sizeof(mmio));
    memset(lines, 0, sizeof(lines));
    intx_calls = 0;
    pci_bus_init(&pb, &mmio, WIN_BASE, WIN_SIZE, set_intx, NULL);
    CHECK(bus_add(&mmio, ECAM_BASE, 0x10000000, &pci_ecam_ops, &pb, "ecam", NULL) >= 0,
          "ecam region");
}

static void tdev_init(struct tdev *t, int id, uint64_t bar_size)
{
    memset(t, 0, sizeof(*t));
    t->id = id;
    pci_device_init(&t->pci, "tdev", &tdev_ops, 0x1234, (uint16_t)(0x5600 + id), 0x0c0320, 0x42,
                    0xabcd, 0x0007);
    if (bar_size)
        EQ(pci_device_set_bar(&t->pci, 0, bar_size, &tdev_bar_ops, t, NULL), 0);
}

static uint64_t ecam_addr(unsigned busno, unsigned slot, unsigned fn, unsigned reg)
{
    return ECAM_BASE + ((uint64_t)busno << 20) + ((uint64_t)slot << 15) + ((uint64_t)fn << 12) +
           reg;
}

static uint32_t cfg_rd(unsigned slot, unsigned reg, unsigned size)
{
    uint64_t v = 0;
    EQ(bus_read(&mmio, ecam_addr(0, slot, 0, reg), size, &v), 0);
    return (uint32_t)v;
}

static void cfg_wr(unsigned slot, unsigned reg, unsigned size, uint32_t v)
{
    EQ(bus_write(&mmio, ecam_addr(0, slot, 0, reg), size, v), 0);
}

static int mmio_rd(uint64_t addr, uint64_t *v)
{
    return bus_read(&mmio, addr, 4, v);
}

static void test_ecam_and_header(void)
{
    setup();
    struct tdev t;
    tdev_init(&t, 1, 0x4000);
    EQ(pci_bus_plug(&pb, &t.pci, NULL), 0);
    EQ(t.pci.slot, 1);
    /* ids through ECAM, at every access size */
    EQ(cfg_rd(1, PCI_VENDOR_ID, 4), 0x56011234);
    EQ(cfg_rd(1, PCI_VENDOR_ID, 2), 0x1234);
    EQ(cfg_rd(1, PCI_DEVICE_ID, 2), 0x5601);
    EQ(cfg_rd(1, PCI_DEVICE_ID + 1, 1), 0x56);
    EQ(cfg_rd(1, PCI_REVISION_ID, 4), 0x0c032042);   /* class + revision */
    EQ(cfg_rd(1, PCI_HEADER_TYPE, 1), 0);
    EQ(cfg_rd(1, PCI_SUBSYSTEM_VENDOR_ID, 4), 0x0007abcd);
    EQ(cfg_rd(1, PCI_INTERRUPT_PIN, 1), 1);
    EQ(cfg_rd(1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, 0);  /* no capabilities */
    EQ(cfg_rd(1, 0xffc, 4), 0);                              /* extended space */
    /* nothing elsewhere: empty slot, other function, other bus */
    EQ(cfg_rd(0, PCI_VENDOR_ID, 4), 0xffffffff);
    EQ(cfg_rd(2, PCI_VENDOR_ID, 2), 0xffff);
    EQ(cfg_rd(31, PCI_VENDOR_ID, 1), 0xff);
    uint64_t v;
    EQ(bus_read(&mmio, ecam_addr(0, 1, 3, 0), 4, &v), 0);
    EQ(v, 0xffffffff);
    EQ(bus_read(&mmio, ecam_addr(1, 1, 0, 0), 4, &v), 0);
    EQ(v, 0xffffffff);
    EQ(bus_read(&mmio, ecam_addr(255, 31, 7, 0xffc), 4, &v), 0);
    EQ(v, 0xffffffff);
    EQ(bus_read(&mmio, ecam_addr(0, 1, 0, 0), 8, &v), 0);       /* > dword: no */
    EQ(v, ~0ull);
    /* direct calls: misaligned access reads as nothing */
    EQ(pci_cfg_read(&pb, 0, 8, 1, 4), 0xffffffff);
    EQ(pci_cfg_read(&pb, 0, 8, 4096, 4), 0xffffffff);
    /* writes to absent devices go nowhere; read-only fields stay */
    cfg_wr(2, PCI_COMMAND, 2, 0xffff);
    cfg_wr(1, PCI_VENDOR_ID, 4, 0);
    cfg_wr(1, PCI_REVISION_ID, 4, 0);
    cfg_wr(1, PCI_HEADER_TYPE, 1, 0x80);
    cfg_wr(1, PCI_INTERRUPT_PIN, 1, 3);
    cfg_wr(1, PCI_STATUS, 2, 0xffff);
    EQ(cfg_rd(1, PCI_VENDOR_ID, 4), 0x56011234);
    EQ(cfg_rd(1, PCI_REVISION_ID, 4), 0x0c032042);
    EQ(cfg_rd(1, PCI_HEADER_TYPE, 1), 0);
    EQ(cfg_rd(1, PCI_INTERRUPT_PIN, 1), 1);
    EQ(cfg_rd(1, PCI_STATUS, 2), 0);
    /* writable: command bits, interrupt line */
    cfg_wr(1, PCI_COMMAND, 2, 0xffff);
    EQ(cfg_rd(1, PCI_COMMAND, 2), PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
                                  PCI_COMMAND_PARITY | PCI_COMMAND_SERR |
                                  PCI_COMMAND_INTX_DISABLE);
    CHECK(pci_bus_master(&t.pci), "bus master not enabled");
    cfg_wr(1, PCI_COMMAND, 2, 0);
    CHECK(!pci_bus_master(&t.pci), "bus master still enabled");
    cfg_wr(1, PCI_INTERRUPT_LINE, 1, 0x21);
    EQ(cfg_rd(1, PCI_INTERRUPT_LINE, 1), 0x21);
    /* no expansion ROM: sizing it reads 0 */
    cfg_wr(1, PCI_ROM_ADDRESS, 4, 0xfffff800);
    EQ(cfg_rd(1, PCI_ROM_ADDRESS, 4), 0);
    pci_bus_destroy(&pb);
}

static void test_bar_sizing_and_moves(void)
{
    setup();
    struct tdev t;
    tdev_init(&t, 1, 0x4000);
    EQ(pci_bus_plug(&pb, &t.pci, NULL), 0);
    /* placed by the VMM at the window base, 64-bit memory, not decoded
     * until memory space is enabled */
    EQ(cfg_rd(1, PCI_BAR0, 4), WIN_BASE | PCI_BAR_MEM_TYPE_64);
    EQ(cfg_rd(1, PCI_BAR0 + 4, 4), 0);
    EQ(pci_bar_addr(&t.pci, 0), WIN_BASE);
    uint64_t v;
    EQ(mmio_rd(WIN_BASE, &v), -EFAULT);
    /* unimplemented BARs read 0 and stay 0 */
    cfg_wr(1, PCI_BAR0 + 8, 4, 0xffffffff);
    EQ(cfg_rd(1, PCI_BAR0 + 8, 4), 0);
    cfg_wr(1, PCI_BAR0 + 20, 4, 0xffffffff);
    EQ(cfg_rd(1, PCI_BAR0 + 20, 4), 0);

    /* sizing: all ones in, size mask out; flags preserved */
    cfg_wr(1, PCI_BAR0, 4, 0xffffffff);
    cfg_wr(1, PCI_BAR0 + 4, 4, 0xffffffff);
    EQ(cfg_rd(1, PCI_BAR0, 4), 0xffffc000 | PCI_BAR_MEM_TYPE_64);
    EQ(cfg_rd(1, PCI_BAR0 + 4, 4), 0xffffffff);
    /* memory space on while the BAR holds the size mask: outside the
     * window, so not decoded */
    cfg_wr(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    EQ(mmio_rd(WIN_BASE, &v), -EFAULT);
    EQ(mmio.n, 1);   /* only the ECAM region */

    /* the guest assigns an address: the region follows */
    cfg_wr(1, PCI_BAR0, 4, 0x40100000 | 0xf);   /* low flag bits are read-only */
    cfg_wr(1, PCI_BAR0 + 4, 4, 0);
    EQ(cfg_rd(1, PCI_BAR0, 4), 0x40100000 | PCI_BAR_MEM_TYPE_64);
    EQ(mmio_rd(0x40100000, &v), 0);
    EQ(v, 0xd0d00001);
    EQ(mmio_rd(0x40103ffc, &v), 0);
    EQ(t.last_off, 0x3ffc);
    EQ(mmio_rd(0x40104000, &v), -EFAULT);
    /* misaligned address bits within the size are not writable */
    cfg_wr(1, PCI_BAR0, 4, 0x40201234);
    EQ(cfg_rd(1, PCI_BAR0, 4), 0x40200000 | PCI_BAR_MEM_TYPE_64);
    EQ(mmio_rd(0x40100000, &v), -EFAULT);
    EQ(mmio_rd(0x40200010, &v), 0);
    EQ(t.last_off, 0x10);
    /* disabling memory space unmaps, enabling maps again */
    cfg_wr(1, PCI_COMMAND, 2, 0);
    EQ(mmio_rd(0x40200010, &v), -EFAULT);
    cfg_wr(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    EQ(mmio_rd(0x40200010, &v), 0);
    /* outside the window (RAM, a board device, above 4G): not decoded */
    cfg_wr(1, PCI_BAR0, 4, 0x80000000);
    EQ(mmio_rd(0x80000000, &v), -EFAULT);
    cfg_wr(1, PCI_BAR0, 4, 0x0c000000);
    EQ(mmio_rd(0x0c000000, &v), -EFAULT);
    cfg_wr(1, PCI_BAR0, 4, 0x7fffe000);         /* size bits are not writable */
    EQ(cfg_rd(1, PCI_BAR0, 4), 0x7fffc000 | PCI_BAR_MEM_TYPE_64);
    cfg_wr(1, PCI_BAR0, 4, 0x7fffc000);         /* the last place that fits */
    EQ(mmio_rd(0x7fffc000, &v), 0);
    cfg_wr(1, PCI_BAR0 + 4, 4, 1);              /* 0x1_7fffc000 */
    EQ(pci_bar_addr(&t.pci, 0), 0x17fffc000ull);
    EQ(mmio_rd(0x7fffc000, &v), -EFAULT);
    EQ(mmio_rd(0x17fffc000ull, &v), -EFAULT);
    cfg_wr(1, PCI_BAR0 + 4, 4, 0);
    EQ(mmio_rd(0x7fffc000, &v), 0);
    /* a 16-bit write to the upper half of the low dword moves it too */
    cfg_wr(1, PCI_BAR0 + 2, 2, 0x4030);
    EQ(mmio_rd(0x4030c000, &v), 0);
    pci_bus_destroy(&pb);
    EQ(mmio.n, 1);   /* teardown removed the BAR region */
}

static void test_bar_conflicts(void)
{
    setup();
    struct tdev a, b;
    tdev_init(&a, 1, 0x1000);
    tdev_init(&b, 2, 0x1000);
    EQ(pci_bus_plug(&pb, &a.pci, NULL), 0);
    EQ(pci_bus_plug(&pb, &b.pci, NULL), 0);
    EQ(b.pci.slot, 2);
    EQ(pci_bar_addr(&b.pci, 0), WIN_BASE + 0x1000);   /* placed after a's */
    cfg_wr(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    cfg_wr(2, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    uint64_t v;
    EQ(mmio_rd(WIN_BASE, &v), 0);
    EQ(v, 0xd0d00001);
    EQ(mmio_rd(WIN_BASE + 0x1000, &v), 0);
    EQ(v, 0xd0d00002);
    /* swap them the way a guest reassigning BARs might: a onto b first */
    cfg_wr(1, PCI_BAR0, 4, (uint32_t)(WIN_BASE + 0x1000));
    EQ(mmio_rd(WIN_BASE + 0x1000, &v), 0);
    EQ(v, 0xd0d00002);                           /* b keeps it; a not decoded */
    EQ(mmio_rd(WIN_BASE, &v), -EFAULT);
    cfg_wr(2, PCI_BAR0, 4, (uint32_t)WIN_BASE);
    EQ(mmio_rd(WIN_BASE + 0x1000, &v), 0);
    EQ(v, 0xd0d00001);                           /* resolved: a decoded again */
    EQ(mmio_rd(WIN_BASE, &v), 0);
    EQ(v, 0xd0d00002);
    pci_bus_destroy(&pb);
}

static void test_capabilities(void)
{
    setup();
    struct tdev t;
    tdev_init(&t, 1, 0);
    uint8_t c1[16] = { 0, 0, 16, 0xaa }, c2[5] = { 0, 0, 0x11, 0x22, 0x33 }, c3[2] = { 0 };
    EQ(pci_add_cap(&t.pci, PCI_CAP_ID_VNDR, c1, sizeof(c1), NULL), 0x40);
    EQ(pci_add_cap(&t.pci, 0x05, c2, sizeof(c2), NULL), 0x50);
    EQ(pci_add_cap(&t.pci, PCI_CAP_ID_MSIX, c3, sizeof(c3), NULL), 0x58);   /* aligned */
    uint8_t big[200] = { 0 };
    struct err e;
    EQ(pci_add_cap(&t.pci, 0x10, big, sizeof(big), &e), -ENOSPC);
    EQ(pci_bus_plug(&pb, &t.pci, NULL), 0);
    EQ(cfg_rd(1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, PCI_STATUS_CAP_LIST);
    /* walk the list as a driver does */
    uint8_t ids[8], offs[8];
    unsigned n = 0;
    for (unsigned p = cfg_rd(1, PCI_CAPABILITY_LIST, 1); p && n < 8;
         p = cfg_rd(1, p + 1, 1)) {
        ids[n] = (uint8_t)cfg_rd(1, p, 1);
        offs[n++] = (uint8_t)p;
    }
    EQ(n, 3);
    EQ(ids[0], PCI_CAP_ID_VNDR);
    EQ(offs[0], 0x40);
    EQ(ids[1], 0x05);
    EQ(offs[1], 0x50);
    EQ(ids[2], PCI_CAP_ID_MSIX);
    EQ(offs[2], 0x58);
    EQ(cfg_rd(1, 0x42, 2), 0xaa10);     /* body kept */
    EQ(cfg_rd(1, 0x52, 1), 0x11);
    /* read-only unless the device says otherwise */
    cfg_wr(1, 0x40, 4, 0);
    EQ(cfg_rd(1, 0x40, 4), 0xaa105009);
    pci_set_writable(&t.pci, 0x44, 4);
    cfg_wr(1, 0x44, 4, 0x12345678);
    EQ(cfg_rd(1, 0x44, 4), 0x12345678);
    pci_bus_destroy(&pb);
}

static void test_intx(void)
{
    setup();
    static struct tdev t[6];
    for (int i = 0; i < 6; i++) {
        tdev_init(&t[i], i + 1, 0);
        EQ(pci_bus_plug(&pb, &t[i].pci, NULL), 0);
        EQ(t[i].pci.slot, i + 1);
    }
    /* INTA of slot s is line s % 4 (standard swizzle) */
    for (unsigned s = 0; s < 8; s++)
        for (unsigned pin = 1; pin <= 4; pin++)
            EQ(pci_intx_line(s, pin), (s + pin - 1) % 4);
    pci_set_intx(&t[0].pci, true);                  /* slot 1 -> line 1 */
    CHECK(lines[1] && !lines[0] && !lines[2] && !lines[3], "slot 1 INTA not on line 1");
    EQ(cfg_rd(1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, PCI_STATUS_INTERRUPT);
    pci_set_intx(&t[4].pci, true);                  /* slot 5 shares line 1 */
    pci_set_intx(&t[0].pci, false);
    CHECK(lines[1], "line 1 dropped while slot 5 still asserts it");
    EQ(cfg_rd(1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);
    pci_set_intx(&t[4].pci, false);
    CHECK(!lines[1], "line 1 still high");
    pci_set_intx(&t[2].pci, true);                  /* slot 3 -> line 3 */
    CHECK(lines[3], "slot 3 INTA not on line 3");
    /* Interrupt Disable masks the line, the status bit still shows it */
    unsigned calls = intx_calls;
    cfg_wr(3, PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
    CHECK(!lines[3], "INTx not masked by Interrupt Disable");
    EQ(cfg_rd(3, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, PCI_STATUS_INTERRUPT);
    cfg_wr(3, PCI_COMMAND, 2, 0);
    CHECK(lines[3], "INTx not back after clearing Interrupt Disable");
    EQ(intx_calls, calls + 2);
    pci_set_intx(&t[2].pci, true);                  /* no change: no call */
    EQ(intx_calls, calls + 2);
    pci_set_intx(&t[2].pci, false);
    pci_bus_destroy(&pb);
}

static void test_slots_and_destroy(void)
{
    setup();
    static struct tdev t[PCI_MAX_SLOTS];
    int destroyed = 0;
    for (int i = 0; i < PCI_MAX_SLOTS - 1; i++) {
        tdev_init(&t[i], i, 0x1000);
        t[i].destroyed = &destroyed;
        EQ(pci_bus_plug(&pb, &t[i].pci, NULL), 0);
    }
    struct err e;
    tdev_init(&t[PCI_MAX_SLOTS - 1], 99, 0x1000);
    EQ(pci_bus_plug(&pb, &t[PCI_MAX_SLOTS - 1].pci, &e), -ENOSPC);
    CHECK(strstr(e.msg, "slot") != NULL, "message: %s", e.msg);
    /* BARs placed one after the other, naturally aligned */
    for (int i = 0; i < PCI_MAX_SLOTS - 1; i++)
        EQ(pci_bar_addr(&t[i].pci, 0), WIN_BASE + 0x1000ull * i);
    for (int i = 1; i < PCI_MAX_SLOTS; i++)
        cfg_wr((unsigned)i, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    EQ(mmio.n, PCI_MAX_SLOTS);   /* ECAM + 31 BARs */
    pci_bus_destroy(&pb);
    EQ(destroyed, PCI_MAX_SLOTS - 1);
    EQ(mmio.n, 1);

    /* a BAR that does not fit the window, bad BAR declarations */
    pci_bus_init(&pb, &mmio, WIN_BASE, 0x10000, set_intx, NULL);
    struct tdev big;
    tdev_init(&big, 1, 0x20000);
    EQ(pci_bus_plug(&pb, &big.pci, &e), -ENOSPC);
    EQ(pci_device_set_bar(&big.pci, 1, 0x1000, &tdev_bar_ops, &big, NULL), -EINVAL);
    EQ(pci_device_set_bar(&big.pci, 5, 0x1000, &tdev_bar_ops, &big, NULL), -EINVAL);
    EQ(pci_device_set_bar(&big.pci, 0, 0x1800, &tdev_bar_ops, &big, NULL), -EINVAL);
    EQ(pci_device_set_bar(&big.pci, 0, 0x800, &tdev_bar_ops, &big, NULL), -EINVAL);
    pci_bus_destroy(&pb);
}

/* --- configuration mechanism #1 ----------------------------------------- */

static struct bus pio;

static uint32_t pin(uint16_t port, unsigned size)
{
    uint64_t v = 0xdeadbeef;
    int r = bus_read(&pio, port, size, &v);
    return r < 0 ? 0xdeadbeef : (uint32_t)v;
}

static void pout(uint16_t port, unsigned size, uint32_t v)
{
    EQ(bus_write(&pio, port, size, v), 0);
}

static uint32_t conf1_addr(unsigned busno, unsigned slot, unsigned fn, unsigned reg)
{
    return PCI_CONF1_ENABLE | busno << 16 | slot << 11 | fn << 8 | (reg & 0xfc) |
           (reg & 0xf00) << 16;
}

static void test_conf1(void)
{
    setup();
    memset(&pio, 0, sizeof(pio));
    EQ(bus_add(&pio, PCI_CONF1_PORT, PCI_CONF1_SIZE, &pci_conf1_ops, &pb, "conf1", NULL), 0);
    struct tdev t;
    tdev_init(&t, 1, 0x4000);
    EQ(pci_bus_plug(&pb, &t.pci, NULL), 0);

    /* CONFIG_ADDRESS: dword only; reserved bits 30:28 and 1:0 read 0 */
    EQ(pin(0xcf8, 4), 0);
    pout(0xcf8, 4, 0x80000000);
    EQ(pin(0xcf8, 4), 0x80000000);
    pout(0xcf8, 4, 0xfabcdeff);
    EQ(pin(0xcf8, 4), 0x8abcdefc);
    pout(0xcfb, 1, 0x01);                       /* Linux's probe: not the address */
    pout(0xcf8, 2, 0x1234);
    pout(0xcfa, 2, 0x5678);
    EQ(pin(0xcf8, 4), 0x8abcdefc);
    EQ(pin(0xcf8, 2), 0xffff);
    EQ(pin(0xcf9, 1), 0xff);
    EQ(pin(0xcfa, 2), 0xffff);

    /* the data port at every size and byte offset */
    pout(0xcf8, 4, conf1_addr(0, 1, 0, PCI_VENDOR_ID));
    EQ(pin(0xcfc, 4), 0x56011234);
    EQ(pin(0xcfc, 2), 0x1234);
    EQ(pin(0xcfe, 2), 0x5601);
    EQ(pin(0xcfc, 1), 0x34);
    EQ(pin(0xcfd, 1), 0x12);
    EQ(pin(0xcfe, 1), 0x01);
    EQ(pin(0xcff, 1), 0x56);
    EQ(pin(0xcfd, 2), 0x0112);                  /* unaligned: byte enables 1-2 */
    EQ(pin(0xcfd, 4), 0xdeadbeef);              /* runs past 0xcff: not decoded */
    EQ(pin(0xcff, 2), 0xdeadbeef);
    EQ(pci_conf1_ops.read(&pb, 4, 8), ~0ull);   /* no 8-byte port accesses */
    pci_conf1_ops.write(&pb, 4, 0, 8);
    /* the register comes from the address, the byte from the port */
    pout(0xcf8, 4, conf1_addr(0, 1, 0, PCI_REVISION_ID));
    EQ(pin(0xcfc, 4), 0x0c032042);
    EQ(pin(0xcff, 1), 0x0c);
    pout(0xcf8, 4, conf1_addr(0, 1, 0, PCI_INTERRUPT_LINE) | 3); /* low bits ignored */
    EQ(pin(0xcfd, 1), 1);                       /* interrupt pin */
    pout(0xcf8, 4, conf1_addr(0, 1, 0, PCI_SUBSYSTEM_VENDOR_ID));
    EQ(pin(0xcfe, 2), 0x0007);

    /* writes: byte to the command register enables decoding */
    uint64_t mv;
    EQ(bus_read(&mmio, WIN_BASE, 4, &mv), -EFAULT);
    pout(0xcf8, 4, conf1_addr(0, 1, 0, PCI_COMMAND));
    pout(0xcfc, 1, PCI_COMMAND_MEMORY);
    EQ(pci_cfg_get16(&t.pci, PCI_COMMAND), PCI_COMMAND_MEMORY);
    EQ(bus_read(&mmio, WIN_BASE, 4, &mv), 0);
    /* an unaligned word: latency timer (writable) and header type (not) */
    pout(0xcf8, 4, conf1_addr(0, 1, 0, 0x0c));
    pout(0xcfd, 2, 0x8040);
    EQ(t.pci.cfg[0x0d], 0x40);
    EQ(t.pci.cfg[0x0e], 0);
    pout(0xcfc, 4, 0xffffffff);                 /* cache line + latency only */
    EQ(pin(0xcfc, 4), 0x0000ffff);
    /* a word at 0xcfe reaches bytes 2-3 of a dword: the BAR's upper half */
    pout(0xcf8, 4, conf1_addr(0, 1, 0, PCI_BAR0));
    pout(0xcfe, 2, 0x4020);
    EQ(pci_bar_addr(&t.pci, 0), 0x40200000);
    EQ(bus_read(&mmio, 0x40200000, 4, &mv), 0);

    /* enable bit clear: all ones, writes ignored */
    pout(0xcf8, 4, conf1_addr(0, 1, 0, PCI_COMMAND) & ~PCI_CONF1_ENABLE);
    EQ(pin(0xcfc, 4), 0xffffffff);
    EQ(pin(0xcfe, 2), 0xffff);
    EQ(pin(0xcfd, 1), 0xff);
    pout(0xcfc, 2, 0);
    EQ(pci_cfg_get16(&t.pci, PCI_COMMAND), PCI_COMMAND_MEMORY);
    /* other buses, functions, empty slots: nothing there */
    pout(0xcf8, 4, conf1_addr(1, 1, 0, 0));
    EQ(pin(0xcfc, 4), 0xffffffff);
    pout(0xcf8, 4, conf1_addr(0, 1, 2, 0));
    EQ(pin(0xcfc, 4), 0xffffffff);
    pout(0xcf8, 4, conf1_addr(0, 9, 0, 0));
    EQ(pin(0xcfc, 2), 0xffff);
    pout(0xcfc, 4, 0);                          /* to nobody */
    /* AMD's extended register bits 27:24 reach offsets 0x100-0xfff */
    pci_set_writable(&t.pci, 0x104, 4);
    pout(0xcf8, 4, conf1_addr(0, 1, 0, 0x104));
    EQ(pin(0xcf8, 4), 0x81000804);
    pout(0xcfc, 4, 0xcafef00d);
    EQ(pci_cfg_read(&pb, 0, 8, 0x104, 4), 0xcafef00d);
    EQ(pin(0xcfe, 2), 0xcafe);
    pout(0xcf8, 4, conf1_addr(0, 1, 0, 0x004));
    EQ(pin(0xcfc, 4) & 0xffff, PCI_COMMAND_MEMORY);   /* not the extended one */
    pci_bus_destroy(&pb);
}

/* --- host bridge, plug hooks, BAR reports ---------------------------------- */

struct hookdev {
    struct tdev t;
    unsigned plugs, reports;
    bool mapped[PCI_NUM_BARS];
    uint64_t addr[PCI_NUM_BARS];
    int plug_ret;
};

static int hook_plug(struct pci_device *d, struct err *e)
{
    struct hookdev *h = (struct hookdev *)d;
    h->plugs++;
    CHECK(d->bus == &pb && d->slot != 0, "plug hook without bus and slot");
    if (h->plug_ret)
        return err_set(e, h->plug_ret, "refused");
    return pci_device_set_bar(d, 2, 0x1000, &tdev_bar_ops, h, e);
}

static void hook_bar_mapped(struct pci_device *d, unsigned idx, bool mapped, uint64_t addr)
{
    struct hookdev *h = (struct hookdev *)d;
    h->reports++;
    h->mapped[idx] = mapped;
    h->addr[idx] = addr;
}

static const struct pci_device_ops hook_ops = { .plug = hook_plug,
                                                .bar_mapped = hook_bar_mapped };

static void test_host_bridge_and_hooks(void)
{
    setup();
    struct pci_device hb;
    struct err e;
    pci_host_bridge_init(&hb);
    EQ(pci_bus_plug_slot(&pb, &hb, 0, NULL), 0);
    EQ(cfg_rd(0, PCI_VENDOR_ID, 4), PCI_HOST_BRIDGE_DEVICE << 16 | PCI_HOST_BRIDGE_VENDOR);
    EQ(cfg_rd(0, PCI_REVISION_ID, 4) >> 8, 0x060000);
    EQ(cfg_rd(0, PCI_INTERRUPT_PIN, 1), 0);
    EQ(cfg_rd(0, PCI_BAR0, 4), 0);
    struct tdev other;
    tdev_init(&other, 7, 0);
    EQ(pci_bus_plug_slot(&pb, &other.pci, 0, &e), -EBUSY);
    CHECK(strstr(e.msg, "host-bridge") != NULL, "message: %s", e.msg);
    EQ(pci_bus_plug_slot(&pb, &other.pci, 32, &e), -EINVAL);
    EQ(pci_bus_plug_slot(&pb, &other.pci, 5, NULL), 0);

    /* the plug hook runs with bus and slot set, before BAR placement */
    static struct hookdev h;
    memset(&h, 0, sizeof(h));
    pci_device_init(&h.t.pci, "hook", &hook_ops, 0x1234, 0x9999, 0, 0, 0, 0);
    EQ(pci_device_set_bar(&h.t.pci, 0, 0x4000, &tdev_bar_ops, &h, NULL), 0);
    EQ(pci_bus_plug(&pb, &h.t.pci, NULL), 0);
    EQ(h.plugs, 1);
    EQ(h.t.pci.slot, 1);
    EQ(pci_bar_addr(&h.t.pci, 0), WIN_BASE);
    EQ(pci_bar_addr(&h.t.pci, 2), WIN_BASE + 0x4000);
    EQ(h.reports, 0);
    /* decoding on: both BARs reported mapped, once */
    cfg_wr(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    EQ(h.reports, 2);
    CHECK(h.mapped[0] && h.mapped[2], "BARs not reported mapped");
    EQ(h.addr[0], WIN_BASE);
    EQ(h.addr[2], WIN_BASE + 0x4000);
    cfg_wr(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    EQ(h.reports, 2);                           /* nothing moved: no report */
    /* a move: unmapped at the old address, then mapped at the new one;
     * sizing (outside the window) unmaps */
    cfg_wr(1, PCI_BAR0, 4, 0x40100000);
    EQ(h.reports, 4);
    EQ(h.addr[0], 0x40100000);
    CHECK(h.mapped[0], "BAR 0 not mapped after the move");
    cfg_wr(1, PCI_BAR0, 4, 0xffffffff);
    cfg_wr(1, PCI_BAR0 + 4, 4, 0xffffffff);
    EQ(h.reports, 5);
    CHECK(!h.mapped[0], "BAR 0 at the size mask reported mapped");
    EQ(h.addr[0], 0x40100000);                  /* where it was */
    cfg_wr(1, PCI_BAR0 + 4, 4, 0);
    cfg_wr(1, PCI_BAR0, 4, 0x40200000);
    EQ(h.reports, 6);
    CHECK(h.mapped[0] && h.addr[0] == 0x40200000, "BAR 0 back at 0x40200000");
    /* decoding off: both unmapped */
    cfg_wr(1, PCI_COMMAND, 2, 0);
    EQ(h.reports, 8);
    CHECK(!h.mapped[0] && !h.mapped[2], "BARs still mapped");
    cfg_wr(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    EQ(h.reports, 10);
    /* a refused plug leaves the slot free */
    static struct hookdev r;
    memset(&r, 0, sizeof(r));
    pci_device_init(&r.t.pci, "refused", &hook_ops, 0x1234, 0x9998, 0, 0, 0, 0);
    r.plug_ret = -EIO;
    EQ(pci_bus_plug(&pb, &r.t.pci, &e), -EIO);
    CHECK(r.t.pci.bus == NULL && pb.dev[2] == NULL, "refused device left on the bus");
    /* teardown tells the device its BARs are gone */
    pci_bus_destroy(&pb);
    EQ(h.reports, 12);
    CHECK(!h.mapped[0] && !h.mapped[2], "BARs mapped after teardown");
}

/* --- MSI-X ------------------------------------------------------------------ */

struct fake_msi {
    unsigned routes, sets, fires;
    int last_route;
    uint64_t addr[8];
    uint32_t data[8];
    unsigned fired[8];
};
static struct fake_msi fm;

static int fm_route_new(void *opaque, struct err *e)
{
    (void)opaque;
    if (fm.routes == 8)
        return err_set(e, -ENOSPC, "no routes");
    return (int)fm.routes++;
}

static int fm_route_set(void *opaque, int route, uint64_t addr, uint32_t data)
{
    (void)opaque;
    fm.sets++;
    if (addr < 0xfee00000 || addr >= 0xfef00000)
        return -EINVAL;
    fm.addr[route] = addr;
    fm.data[route] = data;
    return 0;
}

static void fm_fire(void *opaque, int route)
{
    (void)opaque;
    fm.fires++;
    fm.fired[route]++;
    fm.last_route = route;
}

static const struct pci_platform fm_plat = { .msi_route_new = fm_route_new,
                                             .msi_route_set = fm_route_set,
                                             .msi_fire = fm_fire };

struct mdev {
    struct pci_device pci;
    struct pci_msix msix;
};

static void mdev_cfg_write(struct pci_device *d, unsigned off, unsigned size, uint32_t val)
{
    (void)val;
    pci_msix_cfg_write(&((struct mdev *)d)->msix, off, size);
}

static const struct pci_device_ops mdev_ops = { .cfg_write = mdev_cfg_write };

static uint64_t trd(unsigned v, unsigned field, unsigned size)
{
    uint64_t x = 0xdead;
    EQ(bus_read(&mmio, WIN_BASE + 16 * v + field, size, &x), 0);
    return x;
}

static void twr(unsigned v, unsigned field, unsigned size, uint64_t x)
{
    EQ(bus_write(&mmio, WIN_BASE + 16 * v + field, size, x), 0);
}

static uint64_t pba(void)
{
    uint64_t x = 0xdead;
    EQ(bus_read(&mmio, WIN_BASE + 0x800, 8, &x), 0);
    return x;
}

static void test_msix(void)
{
    setup();
    memset(&fm, 0, sizeof(fm));
    pci_bus_set_platform(&pb, &fm_plat);
    static struct mdev m;
    struct err e;
    pci_device_init(&m.pci, "msixdev", &mdev_ops, 0x1234, 0x7777, 0xff0000, 0, 0, 0);
    /* bad set-ups */
    EQ(pci_msix_init(&m.msix, &m.pci, 1, 0, 0, 0x800, &e), -EINVAL);   /* no BAR yet */
    EQ(pci_device_set_bar(&m.pci, 0, 0x1000, &pci_msix_bar_ops, &m.msix, NULL), 0);
    EQ(pci_msix_init(&m.msix, &m.pci, 0, 0, 0, 0x800, &e), -EINVAL);
    EQ(pci_msix_init(&m.msix, &m.pci, 65, 0, 0, 0x800, &e), -EINVAL);
    EQ(pci_msix_init(&m.msix, &m.pci, 3, 0, 0, 0x20, &e), -EINVAL);    /* PBA in the table */
    EQ(pci_msix_init(&m.msix, &m.pci, 3, 0, 0xff8, 0x800, &e), -EINVAL); /* past the BAR */
    EQ(pci_msix_init(&m.msix, &m.pci, 3, 0, 4, 0x800, &e), -EINVAL);   /* misaligned */
    EQ(pci_msix_init(&m.msix, &m.pci, 3, 0, 0, 0x800, &e), 0);
    EQ(pci_bus_plug(&pb, &m.pci, NULL), 0);
    unsigned c = m.msix.cap;
    EQ(cfg_rd(1, PCI_CAPABILITY_LIST, 1), c);
    EQ(cfg_rd(1, c, 1), PCI_CAP_ID_MSIX);
    EQ(cfg_rd(1, c + 1, 1), 0);
    EQ(cfg_rd(1, c + PCI_MSIX_FLAGS, 2), 2);            /* table size - 1 */
    EQ(cfg_rd(1, c + PCI_MSIX_TABLE, 4), 0x000);        /* offset 0, BIR 0 */
    EQ(cfg_rd(1, c + PCI_MSIX_PBA, 4), 0x800);
    cfg_wr(1, c + PCI_MSIX_FLAGS, 2, 0xffff);           /* only enable + mask */
    EQ(cfg_rd(1, c + PCI_MSIX_FLAGS, 2), 0xc002);
    cfg_wr(1, c + PCI_MSIX_FLAGS, 2, 0);
    cfg_wr(1, c + PCI_MSIX_TABLE, 4, 0xffffffff);
    EQ(cfg_rd(1, c + PCI_MSIX_TABLE, 4), 0);
    cfg_wr(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);

    /* the table: entries start masked; writable bits */
    for (unsigned v = 0; v < 3; v++)
        EQ(trd(v, PCI_MSIX_ENTRY_CTRL, 4), 1);
    twr(0, PCI_MSIX_ENTRY_ADDR_LO, 4, 0xfee01003);
    EQ(trd(0, PCI_MSIX_ENTRY_ADDR_LO, 4), 0xfee01000); /* bits 1:0 read 0 */
    twr(0, PCI_MSIX_ENTRY_CTRL, 4, 0xfffffffe);
    EQ(trd(0, PCI_MSIX_ENTRY_CTRL, 4), 0);              /* reserved bits read 0 */
    twr(0, PCI_MSIX_ENTRY_CTRL, 1, 1);
    EQ(trd(0, PCI_MSIX_ENTRY_CTRL, 4), 1);
    twr(1, PCI_MSIX_ENTRY_ADDR_LO, 8, 0x00000000fee00000ull);  /* qword: address */
    EQ(trd(1, PCI_MSIX_ENTRY_ADDR_LO, 8), 0xfee00000ull);
    twr(1, PCI_MSIX_ENTRY_DATA, 8, 0x0000000100004041ull);   /* qword: data + control */
    EQ(trd(1, PCI_MSIX_ENTRY_DATA, 4), 0x4041);
    EQ(trd(1, PCI_MSIX_ENTRY_CTRL, 4), 1);
    twr(1, PCI_MSIX_ENTRY_DATA + 1, 1, 0x42);           /* byte */
    EQ(trd(1, PCI_MSIX_ENTRY_DATA, 2), 0x4241);
    twr(1, PCI_MSIX_ENTRY_DATA + 1, 2, 0xffff);         /* misaligned: ignored */
    EQ(trd(1, PCI_MSIX_ENTRY_DATA, 4), 0x4241);
    EQ(trd(1, PCI_MSIX_ENTRY_DATA + 1, 2), 0);
    EQ(trd(3, 0, 4), 0);                                /* past the table */
    twr(0, PCI_MSIX_ENTRY_DATA, 4, 0x31);
    EQ(fm.routes + fm.sets + fm.fires, 0);              /* nothing while disabled */

    /* disabled: notify does nothing, sets nothing pending */
    pci_msix_notify(&m.msix, 0);
    EQ(fm.fires, 0);
    EQ(pba(), 0);
    /* enabled, vector 0 masked: pending; unmask sends it */
    pci_set_intx(&m.pci, true);
    CHECK(lines[1], "INTx not asserted");
    cfg_wr(1, c + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
    CHECK(pci_msix_enabled(&m.msix), "MSI-X not enabled");
    CHECK(!lines[1], "INTx still asserted with MSI-X enabled");
    EQ(fm.routes, 0);                                   /* all vectors masked */
    pci_msix_notify(&m.msix, 0);
    EQ(fm.fires, 0);
    EQ(pba(), 1);
    uint64_t b8 = 0;
    EQ(bus_read(&mmio, WIN_BASE + 0x800, 1, &b8), 0);
    EQ(b8, 1);
    EQ(bus_write(&mmio, WIN_BASE + 0x800, 8, 0), 0);    /* the PBA is read-only */
    EQ(pba(), 1);
    twr(0, PCI_MSIX_ENTRY_CTRL, 4, 0);
    EQ(fm.routes, 1);
    EQ(fm.sets, 1);
    EQ(fm.fires, 1);
    EQ(fm.addr[0], 0xfee01000);
    EQ(fm.data[0], 0x31);
    EQ(pba(), 0);
    /* live: each notify fires, the route is not reprogrammed */
    pci_msix_notify(&m.msix, 0);
    pci_msix_notify(&m.msix, 0);
    EQ(fm.fires, 3);
    EQ(fm.sets, 1);
    /* the message changed while live: reprogrammed at the next send */
    twr(0, PCI_MSIX_ENTRY_DATA, 4, 0x32);
    pci_msix_notify(&m.msix, 0);
    EQ(fm.sets, 2);
    EQ(fm.data[0], 0x32);
    EQ(fm.fires, 4);
    /* the function mask holds every vector */
    cfg_wr(1, c + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    pci_msix_notify(&m.msix, 0);
    pci_msix_notify(&m.msix, 0);                        /* one pending bit, one message */
    EQ(fm.fires, 4);
    EQ(pba(), 1);
    cfg_wr(1, c + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
    EQ(fm.fires, 5);
    EQ(pba(), 0);
    /* vector 1 masked: pending; vector 2 unmasked with a message to RAM:
     * the board refuses it, nothing is sent, and it is retried once the
     * message changes */
    pci_msix_notify(&m.msix, 1);
    EQ(pba(), 2);
    twr(2, PCI_MSIX_ENTRY_ADDR_LO, 4, 0x1000);
    twr(2, PCI_MSIX_ENTRY_DATA, 4, 0x55);
    unsigned sets = fm.sets;
    twr(2, PCI_MSIX_ENTRY_CTRL, 4, 0);
    EQ(fm.sets, sets + 1);
    pci_msix_notify(&m.msix, 2);
    pci_msix_notify(&m.msix, 2);
    EQ(fm.fires, 5);
    EQ(fm.sets, sets + 1);                              /* not asked again */
    twr(2, PCI_MSIX_ENTRY_ADDR_LO, 4, 0xfee00000);
    pci_msix_notify(&m.msix, 2);
    EQ(fm.fires, 6);
    EQ(fm.last_route, 1);                               /* routes in order of use */
    /* out of range vectors are ignored */
    pci_msix_notify(&m.msix, 3);
    pci_msix_notify(&m.msix, 64);
    EQ(fm.fires, 6);
    /* disable: notifies do nothing; vector 1 stays pending */
    cfg_wr(1, c + PCI_MSIX_FLAGS, 2, 0);
    pci_msix_notify(&m.msix, 0);
    EQ(fm.fires, 6);
    EQ(pba(), 2);
    /* a board without MSI: enabled and unmasked, but nothing to send with */
    pci_bus_set_platform(&pb, NULL);
    cfg_wr(1, c + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
    pci_msix_notify(&m.msix, 0);
    EQ(fm.fires, 6);
    pci_bus_destroy(&pb);
}

int main(void)
{
    test_ecam_and_header();
    test_conf1();
    test_host_bridge_and_hooks();
    test_msix();
    test_bar_sizing_and_moves();
    test_bar_conflicts();
    test_capabilities();
    test_intx();
    test_slots_and_destroy();
    return unit_done("test_pci");
}

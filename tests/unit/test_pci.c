/* Unit tests for PCI (src/pci/pci.c): ECAM decoding, the type 0 header,
 * read-only and writable bits, BAR sizing, BAR placement and moves (the
 * BAR's MMIO region follows what the guest writes), the memory window,
 * capability lists, INTx swizzling and masking, slots and teardown. */
#include <errno.h>
#include <string.h>

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

int main(void)
{
    test_ecam_and_header();
    test_bar_sizing_and_moves();
    test_bar_conflicts();
    test_capabilities();
    test_intx();
    test_slots_and_destroy();
    return unit_done("test_pci");
}

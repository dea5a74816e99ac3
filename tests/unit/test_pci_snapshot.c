/* Unit tests for PCI snapshots (pci_bus_quiesce/save/load in src/pci/pci.c,
 * pci_msix_save/load/restore in src/pci/msix.c): a bus with a host bridge
 * and test devices saved and loaded into a freshly built bus of the same
 * shape: config spaces byte for byte, CONFIG_ADDRESS, INTx levels and the
 * board's lines (masked devices included), BARs decoded where the guest had
 * moved them (and the device told through bar_mapped), the device's own
 * state through ops->save/load after the bus's part, quiesce reaching every
 * device.  Mismatches and damage, each a one-line error naming the slot or
 * field: a device missing on either side, another device in a slot, a
 * patched vendor id, another BAR size, a read-only config byte that
 * differs, a status interrupt bit that disagrees with the INTx level, a
 * line level the devices do not explain, reserved CONFIG_ADDRESS bits, a
 * truncated section, a device load failure (the config space is then left
 * alone).  MSI-X: table, PBA and enable bits restored, routes programmed
 * anew on the restoring board at first use, pending vectors delivered when
 * unmasked; reserved table bits, pending bits beyond the table and another
 * vector count refused. */
#include <errno.h>
#include <string.h>

#include "pci/msix.h"
#include "pci/pci.h"

#include "unit.h"

#include "snap_test_util.h"

#define ECAM_BASE 0x30000000ull
#define WIN_BASE 0x40000000ull
#define WIN_SIZE 0x40000000ull

/* --- a test device ------------------------------------------------------ */

struct tdev {
    struct pci_device pci;
    int id;
    uint32_t state;             /* device state saved by ops->save */
    unsigned reads, quiesced, mapped_calls, loads;
    bool mapped;
    uint64_t mapped_addr;
    int fail_load;              /* ops->load returns this */
    bool has_msix;
    struct pci_msix msix;
};

static uint64_t tdev_read(void *opaque, uint64_t off, unsigned size)
{
    struct tdev *t = opaque;
    (void)off;
    (void)size;
    t->reads++;
    return 0xd0d00000u | (unsigned)t->id;
}

static void tdev_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    (void)opaque; (void)off; (void)val; (void)size;
}

static const struct mmio_ops tdev_bar_ops = { .read = tdev_read, .write = tdev_write };

static void tdev_quiesce(struct pci_device *d) { ((struct tdev *)d)->quiesced++; }

static void tdev_bar_mapped(struct pci_device *d, unsigned idx, bool mapped, uint64_t addr)
{
    struct tdev *t = (struct tdev *)d;
    if (idx != 0)
        return;
    t->mapped_calls++;
    t->mapped = mapped;
    t->mapped_addr = addr;
}

static void tdev_cfg_write(struct pci_device *d, unsigned off, unsigned size, uint32_t val)
{
    struct tdev *t = (struct tdev *)d;
    (void)val;
    if (t->has_msix)
        pci_msix_cfg_write(&t->msix, off, size);
}

static void tdev_save(struct pci_device *d, struct snap_writer *w)
{
    struct tdev *t = (struct tdev *)d;
    snapw_u32(w, t->state);
    if (t->has_msix)
        pci_msix_save(&t->msix, w);
}

static int tdev_load(struct pci_device *d, struct snap_reader *r, struct snap_file *f,
                     struct err *e)
{
    struct tdev *t = (struct tdev *)d;
    (void)f;
    t->loads++;
    /* the bus applies the config space after this returns */
    CHECK(!(pci_cfg_get16(d, PCI_COMMAND) & PCI_COMMAND_MEMORY), "config applied early");
    uint32_t state = snapr_u32(r);
    struct pci_msix_snap ms;
    if (t->has_msix)
        pci_msix_load(&t->msix, r, &ms);
    snapr_check(r, state != 0xdeadbeef, "bad device state");
    int ret = snapr_end(r, e);
    if (ret < 0)
        return ret;
    if (t->fail_load)
        return err_set(e, t->fail_load, "tdev %d refuses", t->id);
    t->state = state;
    if (t->has_msix)
        pci_msix_restore(&t->msix, &ms);
    return 0;
}

static const struct pci_device_ops tdev_ops = {
    .cfg_write = tdev_cfg_write, .bar_mapped = tdev_bar_mapped, .quiesce = tdev_quiesce,
    .save = tdev_save, .load = tdev_load,
};

/* --- a board ------------------------------------------------------------ */

static bool lines[PCI_INTX_LINES];
static unsigned intx_calls;
static unsigned routes, fires, fired[16];
static uint64_t route_addr[16];
static uint32_t route_data[16];

static void set_intx(void *opaque, unsigned line, bool level)
{
    (void)opaque;
    lines[line] = level;
    intx_calls++;
}

static int b_route_new(void *o, struct err *e)
{
    (void)o;
    if (routes == 16)
        return err_set(e, -ENOSPC, "full");
    return (int)routes++;
}

static int b_route_set(void *o, int r, uint64_t addr, uint32_t data)
{
    (void)o;
    route_addr[r] = addr;
    route_data[r] = data;
    return 0;
}

static void b_fire(void *o, int r)
{
    (void)o;
    fires++;
    fired[r]++;
}

static const struct pci_platform plat = { .msi_route_new = b_route_new,
                                          .msi_route_set = b_route_set, .msi_fire = b_fire };

static struct bus mmio;
static struct pci_bus pb;
static struct pci_device bridge;

/* A fresh board: the bus, the host bridge in slot 0. */
static void setup(void)
{
    memset(&mmio, 0, sizeof(mmio));
    memset(lines, 0, sizeof(lines));
    intx_calls = routes = fires = 0;
    memset(fired, 0, sizeof(fired));
    pci_bus_init(&pb, &mmio, WIN_BASE, WIN_SIZE, set_intx, NULL);
    pci_bus_set_platform(&pb, &plat);
    CHECK(bus_add(&mmio, ECAM_BASE, 0x10000000, &pci_ecam_ops, &pb, "ecam", NULL) >= 0,
          "ecam");
    pci_host_bridge_init(&bridge);
    EQ(pci_bus_plug_slot(&pb, &bridge, 0, NULL), 0);
}

static void tdev_init(struct tdev *t, int id, uint64_t bar_size, unsigned slot)
{
    memset(t, 0, sizeof(*t));
    t->id = id;
    pci_device_init(&t->pci, "tdev", &tdev_ops, 0x1234, (uint16_t)(0x5600 + id), 0x0c0320, 0x42,
                    0xabcd, 0x0007);
    EQ(pci_device_set_bar(&t->pci, 0, bar_size, &tdev_bar_ops, t, NULL), 0);
    EQ(pci_bus_plug_slot(&pb, &t->pci, slot, NULL), 0);
}

static void tdev_init_msix(struct tdev *t, int id, unsigned slot)
{
    memset(t, 0, sizeof(*t));
    t->id = id;
    t->has_msix = true;
    pci_device_init(&t->pci, "tdev-msix", &tdev_ops, 0x1234, (uint16_t)(0x5600 + id), 0x0c0320,
                    0x42, 0xabcd, 0x0007);
    EQ(pci_device_set_bar(&t->pci, 0, 0x1000, &tdev_bar_ops, t, NULL), 0);
    EQ(pci_device_set_bar(&t->pci, 2, 0x1000, &pci_msix_bar_ops, &t->msix, NULL), 0);
    EQ(pci_msix_init(&t->msix, &t->pci, 8, 2, 0, 0x800, NULL), 0);
    EQ(pci_bus_plug_slot(&pb, &t->pci, slot, NULL), 0);
}

static uint64_t ecam(unsigned slot, unsigned reg)
{
    return ECAM_BASE + ((uint64_t)slot << 15) + reg;
}

static uint32_t cfg_rd(unsigned slot, unsigned reg, unsigned size)
{
    uint64_t v = 0;
    bus_read(&mmio, ecam(slot, reg), size, &v);
    return (uint32_t)v;
}

static void cfg_wr(unsigned slot, unsigned reg, unsigned size, uint32_t v)
{
    bus_write(&mmio, ecam(slot, reg), size, v);
}

/* offset of a slot section's config space, and of what follows it */
#define OFF_CFG(name) (4 + strlen(name) + 8 + 8 * PCI_NUM_BARS)
#define OFF_DEV(name) (OFF_CFG(name) + PCI_CFG_SIZE + 1)

/* --- the round trip -------------------------------------------------------- */

static struct tdev a1, a3, a5, b1, b3, b5;

/* Bus A: devices in slots 1, 3, 5 that a guest has set up. */
static void build_a(void)
{
    setup();
    tdev_init(&a1, 1, 0x4000, 1);
    tdev_init(&a3, 3, 0x1000, 3);
    tdev_init(&a5, 5, 0x1000, 5);
    /* slot 1: BAR moved, memory on, bus master, line register, cache line */
    cfg_wr(1, PCI_BAR0, 4, (uint32_t)(WIN_BASE + 0x200000) | PCI_BAR_MEM_TYPE_64);
    cfg_wr(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    cfg_wr(1, PCI_INTERRUPT_LINE, 1, 0x21);
    cfg_wr(1, 0x0c, 1, 0x10);
    a1.state = 0x11111111;
    /* slot 3 interrupts (line (3 + 0) % 4 = 3) */
    pci_set_intx(&a3.pci, true);
    a3.state = 0x33333333;
    /* slot 5 interrupts but has INTx masked (line 1 stays low) */
    cfg_wr(5, PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
    pci_set_intx(&a5.pci, true);
    pb.conf1_addr = 0x80001808;
    CHECK(lines[3] && !lines[1], "lines on bus A");
}

static void build_b(void)
{
    setup();
    tdev_init(&b1, 1, 0x4000, 1);
    tdev_init(&b3, 3, 0x1000, 3);
    tdev_init(&b5, 5, 0x1000, 5);
}

static void save_a(struct snap_file *f)
{
    struct snap_writer w;
    struct err e = { "" };
    snapw_init(&w);
    pci_bus_quiesce(&pb);
    EQ(a1.quiesced + a3.quiesced + a5.quiesced, 3);
    pci_bus_save(&pb, &w);
    EQ(snap_test_finish(&w, f, &e), 0);
    snapw_free(&w);
    pci_bus_destroy(&pb);
}

static void test_round_trip(void)
{
    build_a();
    uint8_t cfg1[PCI_CFG_SIZE], cfg3[PCI_CFG_SIZE], cfg5[PCI_CFG_SIZE];
    memcpy(cfg1, a1.pci.cfg, PCI_CFG_SIZE);
    memcpy(cfg3, a3.pci.cfg, PCI_CFG_SIZE);
    memcpy(cfg5, a5.pci.cfg, PCI_CFG_SIZE);
    struct snap_file f;
    save_a(&f);
    EQ(f.nsec, 5);                      /* pci, pci-00, pci-01, pci-03, pci-05 */

    build_b();
    EQ(b1.mapped_calls, 0);
    struct err e = { "" };
    int ret = pci_bus_load(&pb, &f, &e);
    CHECK(ret == 0, "load: %s", e.msg);
    EQ(snap_file_check_used(&f, &e), 0);
    CHECK(!memcmp(b1.pci.cfg, cfg1, PCI_CFG_SIZE), "slot 1 config");
    CHECK(!memcmp(b3.pci.cfg, cfg3, PCI_CFG_SIZE), "slot 3 config");
    CHECK(!memcmp(b5.pci.cfg, cfg5, PCI_CFG_SIZE), "slot 5 config");
    EQ(b1.state, 0x11111111);
    EQ(b3.state, 0x33333333);
    EQ(b1.loads + b3.loads + b5.loads, 3);
    CHECK(!b1.pci.intx_level && b3.pci.intx_level && b5.pci.intx_level, "INTx levels");
    CHECK(lines[3] && !lines[0] && !lines[1] && !lines[2], "board lines");
    CHECK(pb.line_level[3] && !pb.line_level[1], "bus line levels");
    EQ(intx_calls, 4);                  /* every line told, low ones too */
    EQ(pb.conf1_addr, 0x80001808);
    /* guest-visible: the config space as the guest left it */
    EQ(cfg_rd(1, PCI_COMMAND, 2), PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    EQ(cfg_rd(1, PCI_INTERRUPT_LINE, 1), 0x21);
    EQ(cfg_rd(3, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, PCI_STATUS_INTERRUPT);
    /* the BAR decodes where the guest moved it, and the device heard */
    uint64_t v = 0;
    EQ(bus_read(&mmio, WIN_BASE + 0x200000 + 8, 4, &v), 0);
    EQ(v, 0xd0d00001);
    CHECK(b1.mapped && b1.mapped_addr == WIN_BASE + 0x200000, "bar_mapped at 0x%llx",
          (unsigned long long)b1.mapped_addr);
    CHECK(!b3.mapped, "slot 3 memory decoding is off");
    /* and the bus goes on: deassert slot 3, the line drops */
    pci_set_intx(&b3.pci, false);
    CHECK(!lines[3], "line 3 after deassert");
    /* a guest BAR move after the load still works */
    cfg_wr(1, PCI_BAR0, 4, (uint32_t)(WIN_BASE + 0x300000) | PCI_BAR_MEM_TYPE_64);
    EQ(bus_read(&mmio, WIN_BASE + 0x300000, 4, &v), 0);
    EQ(b1.mapped_addr, WIN_BASE + 0x300000);
    pci_bus_destroy(&pb);
    snap_file_free(&f);
}

/* Load f into a bus built by `build`; expect -EINVAL naming `want`. */
static void expect_load_error(struct snap_file *f, void (*build)(void), const char *want,
                              const char *what)
{
    build();
    struct err e = { "" };
    int ret = pci_bus_load(&pb, f, &e);
    CHECK(ret == -EINVAL && snap_test_msg(&e, want), "%s: ret %d", what, ret);
    pci_bus_destroy(&pb);
}

static void build_b_missing3(void)
{
    setup();
    tdev_init(&b1, 1, 0x4000, 1);
    tdev_init(&b5, 5, 0x1000, 5);
}

static void build_b_extra(void)
{
    build_b();
    static struct tdev x;
    tdev_init(&x, 7, 0x1000, 7);
}

static void build_b_other(void)
{
    setup();
    tdev_init(&b1, 2, 0x4000, 1);           /* device id 0x5602 in slot 1 */
    tdev_init(&b3, 3, 0x1000, 3);
    tdev_init(&b5, 5, 0x1000, 5);
}

static void build_b_bar(void)
{
    setup();
    tdev_init(&b1, 1, 0x8000, 1);           /* a larger BAR */
    tdev_init(&b3, 3, 0x1000, 3);
    tdev_init(&b5, 5, 0x1000, 5);
}

static void build_b_failing(void)
{
    build_b();
    b3.fail_load = -EIO;
}

static void test_mismatches(void)
{
    build_a();
    struct snap_file f, g;
    save_a(&f);
    expect_load_error(&f, build_b_missing3, "PCI slot 3: the snapshot has tdev (1234:5603), "
                      "this VM has nothing", "missing device");
    expect_load_error(&f, build_b_extra, "PCI slot 7: the snapshot has nothing, this VM has "
                      "tdev (1234:5607)", "extra device");
    expect_load_error(&f, build_b_other, "PCI slot 1: the snapshot has tdev (1234:5601, class "
                      "0c0320), this VM has tdev (1234:5602", "other device");
    expect_load_error(&f, build_b_bar, "BAR 0 is of 0x4000 bytes", "BAR size");

    /* damage, one field at a time */
    size_t cfg = OFF_CFG("tdev");
    uint16_t vendor = 0x4321;
    EQ(snap_test_patch(&f, "pci-03", 4 + strlen("tdev"), &vendor, 2, &g), 0);
    expect_load_error(&g, build_b, "PCI slot 3: the snapshot has tdev (4321:5603", "vendor");
    snap_file_free(&g);
    uint8_t b = 0x50;
    EQ(snap_test_patch(&f, "pci-03", cfg + PCI_CAPABILITY_LIST, &b, 1, &g), 0);
    expect_load_error(&g, build_b, "read-only config byte 0x034", "read-only byte");
    snap_file_free(&g);
    b = 0;                              /* status says no interrupt, the level says yes */
    EQ(snap_test_patch(&f, "pci-03", cfg + PCI_STATUS, &b, 1, &g), 0);
    expect_load_error(&g, build_b, "interrupt bit", "status bit");
    snap_file_free(&g);
    b = 1;                              /* line 0 high, no device on it */
    EQ(snap_test_patch(&f, "pci", 8, &b, 1, &g), 0);
    expect_load_error(&g, build_b, "INTx line 0 is high", "line level");
    snap_file_free(&g);
    b = 2;
    EQ(snap_test_patch(&f, "pci", 9, &b, 1, &g), 0);
    expect_load_error(&g, build_b, "neither 0 nor 1", "line not a boolean");
    snap_file_free(&g);
    uint32_t addr = 0x80000001;
    EQ(snap_test_patch(&f, "pci", 0, &addr, 4, &g), 0);
    expect_load_error(&g, build_b, "reserved bits", "CONFIG_ADDRESS");
    snap_file_free(&g);
    uint32_t present = 0x0b;            /* slots 0, 1, 3: slot 5 forgotten */
    EQ(snap_test_patch(&f, "pci", 4, &present, 4, &g), 0);
    expect_load_error(&g, build_b, "PCI slot 5", "present bitmap");
    snap_file_free(&g);
    uint32_t bad_state = 0xdeadbeef;
    EQ(snap_test_patch(&f, "pci-01", OFF_DEV("tdev"), &bad_state, 4, &g), 0);
    expect_load_error(&g, build_b, "bad device state", "device's own check");
    snap_file_free(&g);
    /* truncated anywhere in a slot's section */
    for (size_t keep = 0; keep < OFF_DEV("tdev") + 4; keep += 397) {
        EQ(snap_test_edit(&f, "pci-05", keep, 0, NULL, 0, &g), 0);
        expect_load_error(&g, build_b, "'pci-05'", "truncated");
        snap_file_free(&g);
    }
    EQ(snap_test_edit(&f, "pci", 5, 0, NULL, 0, &g), 0);
    expect_load_error(&g, build_b, "'pci' is shorter", "truncated bus section");
    snap_file_free(&g);

    /* a device that fails its load: its config space is left alone */
    build_b_failing();
    struct err e = { "" };
    uint8_t before[PCI_CFG_SIZE];
    memcpy(before, b3.pci.cfg, PCI_CFG_SIZE);
    EQ(pci_bus_load(&pb, &f, &e), -EIO);
    CHECK(snap_test_msg(&e, "tdev 3 refuses"), "device error");
    CHECK(!memcmp(before, b3.pci.cfg, PCI_CFG_SIZE), "config untouched");
    CHECK(!b3.pci.intx_level, "INTx untouched");
    pci_bus_destroy(&pb);
    snap_file_free(&f);
}

/* --- MSI-X ----------------------------------------------------------------- */

static void msix_entry(struct tdev *t, unsigned v, uint32_t addr, uint32_t data, bool masked)
{
    pci_msix_write(&t->msix, 16 * v, addr, 4);
    pci_msix_write(&t->msix, 16 * v + 4, 0, 4);
    pci_msix_write(&t->msix, 16 * v + 8, data, 4);
    pci_msix_write(&t->msix, 16 * v + 12, masked, 4);
}

static struct tdev ma, mb;

static void build_msix_b(void)
{
    setup();
    tdev_init_msix(&mb, 1, 1);
}

static void test_msix(void)
{
    setup();
    tdev_init_msix(&ma, 1, 1);
    unsigned cap = ma.msix.cap;
    cfg_wr(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    cfg_wr(1, cap + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
    for (unsigned v = 0; v < 4; v++)
        msix_entry(&ma, v, 0xfee00000u + 0x1000 * v, 0x40 + v, v == 2);
    pci_msix_notify(&ma.msix, 0);       /* delivered */
    pci_msix_notify(&ma.msix, 2);       /* masked: pending */
    EQ(fires, 1);
    EQ(ma.msix.pending, 1u << 2);
    uint8_t table[8 * 16];
    memcpy(table, ma.msix.table, sizeof(table));

    struct snap_writer w;
    struct snap_file f, g;
    struct err e = { "" };
    snapw_init(&w);
    pci_bus_quiesce(&pb);
    pci_bus_save(&pb, &w);
    EQ(snap_test_finish(&w, &f, &e), 0);
    snapw_free(&w);
    pci_bus_destroy(&pb);

    build_msix_b();
    int ret = pci_bus_load(&pb, &f, &e);
    CHECK(ret == 0, "load: %s", e.msg);
    CHECK(!memcmp(mb.msix.table, table, sizeof(table)), "table");
    EQ(mb.msix.pending, 1u << 2);
    CHECK(pci_msix_enabled(&mb.msix), "enabled");
    EQ(pci_msix_read(&mb.msix, 0x800, 8), 1u << 2);       /* the PBA as the guest reads it */
    EQ(pci_msix_read(&mb.msix, 16 * 3 + 8, 4), 0x43);
    /* the new board's routes are set up at first use, with the messages */
    EQ(routes, 0);
    pci_msix_notify(&mb.msix, 1);
    EQ(routes, 1);
    EQ(fires, 1);
    EQ(route_addr[0], 0xfee01000u);
    EQ(route_data[0], 0x41);
    /* the pending vector goes out when the guest unmasks it */
    pci_msix_write(&mb.msix, 16 * 2 + 12, 0, 4);
    EQ(fires, 2);
    int r2 = mb.msix.vec[2].route;
    CHECK(r2 >= 0 && route_data[r2] == 0x42 && fired[r2] == 1, "vector 2 delivered");
    EQ(mb.msix.pending, 0);
    pci_bus_destroy(&pb);

    /* damage: reserved bits in an entry's control word and address, pending
     * bits beyond the table, another vector count */
    size_t m = OFF_DEV("tdev-msix") + 4;    /* after the device's u32 */
    uint8_t b = 0x02;
    EQ(snap_test_patch(&f, "pci-01", m + 12 + 16 * 3 + 12, &b, 1, &g), 0);
    expect_load_error(&g, build_msix_b, "reserved bits set in a table entry", "ctrl bits");
    snap_file_free(&g);
    b = 0x01;
    EQ(snap_test_patch(&f, "pci-01", m + 12, &b, 1, &g), 0);
    expect_load_error(&g, build_msix_b, "reserved bits set in a table entry", "addr bits");
    snap_file_free(&g);
    uint64_t pend = 1ull << 8;
    EQ(snap_test_patch(&f, "pci-01", m + 4, &pend, 8, &g), 0);
    expect_load_error(&g, build_msix_b, "pending bits for missing vectors", "pending");
    snap_file_free(&g);
    uint32_t nvec = 9;
    EQ(snap_test_patch(&f, "pci-01", m, &nvec, 4, &g), 0);
    expect_load_error(&g, build_msix_b, "another number of vectors", "nvec");
    snap_file_free(&g);
    snap_file_free(&f);
}

int main(void)
{
    test_round_trip();
    test_mismatches();
    test_msix();
    snap_test_cleanup();
    return unit_done("test_pci_snapshot");
}

/* PCI root bus, type 0 config space, BARs and INTx (design in pci.h). */
#include "pci/pci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/snapshot.h"

#define COMMAND_WMASK (PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | \
                       PCI_COMMAND_PARITY | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE)

void pci_bus_init(struct pci_bus *pb, struct bus *mmio, uint64_t mem_base, uint64_t mem_size,
                  void (*set_intx)(void *opaque, unsigned line, bool level), void *intx_opaque)
{
    memset(pb, 0, sizeof(*pb));
    pb->mmio = mmio;
    pb->mem_base = mem_base;
    pb->mem_size = mem_size;
    pb->mem_next = mem_base;
    pb->set_intx = set_intx;
    pb->intx_opaque = intx_opaque;
}

void pci_bus_destroy(struct pci_bus *pb)
{
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
        struct pci_device *d = pb->dev[s];
        if (!d)
            continue;
        for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
            struct pci_bar *b = &d->bar[i];
            if (b->reported) {
                b->reported = false;
                if (d->ops && d->ops->bar_mapped)
                    d->ops->bar_mapped(d, i, false, b->reported_addr);
            }
            if (b->region >= 0) {
                bus_remove(pb->mmio, b->region);
                b->region = -1;
            }
        }
        pb->dev[s] = NULL;
        if (d->ops && d->ops->destroy)
            d->ops->destroy(d);
    }
}

void pci_cfg_set16(struct pci_device *d, unsigned off, uint16_t v)
{
    d->cfg[off] = (uint8_t)v;
    d->cfg[off + 1] = (uint8_t)(v >> 8);
}

void pci_cfg_set32(struct pci_device *d, unsigned off, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        d->cfg[off + i] = (uint8_t)(v >> (8 * i));
}

void pci_set_writable(struct pci_device *d, unsigned off, unsigned len)
{
    if (off < PCI_CFG_SIZE && len <= PCI_CFG_SIZE - off)
        memset(&d->wmask[off], 0xff, len);
}

void pci_device_init(struct pci_device *d, const char *name, const struct pci_device_ops *ops,
                     uint16_t vendor, uint16_t device, uint32_t class_code, uint8_t revision,
                     uint16_t subsys_vendor, uint16_t subsys_id)
{
    memset(d->cfg, 0, sizeof(d->cfg));
    memset(d->wmask, 0, sizeof(d->wmask));
    memset(d->bar, 0, sizeof(d->bar));
    d->bus = NULL;
    d->name = name;
    d->ops = ops;
    d->slot = 0;
    d->cap_end = PCI_CAP_START;
    d->cap_last = 0;
    d->intx_level = false;
    for (unsigned i = 0; i < PCI_NUM_BARS; i++)
        d->bar[i].region = -1;
    pci_cfg_set16(d, PCI_VENDOR_ID, vendor);
    pci_cfg_set16(d, PCI_DEVICE_ID, device);
    pci_cfg_set16(d, PCI_COMMAND, 0);
    pci_cfg_set16(d, PCI_STATUS, 0);
    d->cfg[PCI_REVISION_ID] = revision;
    d->cfg[PCI_CLASS_PROG] = (uint8_t)class_code;
    d->cfg[PCI_CLASS_PROG + 1] = (uint8_t)(class_code >> 8);
    d->cfg[PCI_CLASS_PROG + 2] = (uint8_t)(class_code >> 16);
    d->cfg[PCI_HEADER_TYPE] = 0; /* type 0, single function */
    pci_cfg_set16(d, PCI_SUBSYSTEM_VENDOR_ID, subsys_vendor);
    pci_cfg_set16(d, PCI_SUBSYSTEM_ID, subsys_id);
    d->cfg[PCI_INTERRUPT_PIN] = 1; /* INTA */
    d->wmask[PCI_COMMAND] = (uint8_t)COMMAND_WMASK;
    d->wmask[PCI_COMMAND + 1] = (uint8_t)(COMMAND_WMASK >> 8);
    d->wmask[PCI_INTERRUPT_LINE] = 0xff;
    d->wmask[0x0c] = 0xff;  /* cache line size: scratch, Linux writes it */
    d->wmask[0x0d] = 0xff;  /* latency timer */
}

int pci_device_set_bar(struct pci_device *d, unsigned idx, uint64_t size,
                       const struct mmio_ops *ops, void *opaque, struct err *e)
{
    if (idx >= PCI_NUM_BARS - 1 || (idx & 1))
        return err_set(e, -EINVAL, "%s: BAR %u cannot hold a 64-bit BAR", d->name, idx);
    if (size < PCI_BAR_MIN_SIZE || (size & (size - 1)))
        return err_set(e, -EINVAL, "%s: BAR size 0x%llx is not a power of two >= 4K", d->name,
                       (unsigned long long)size);
    d->bar[idx] = (struct pci_bar){ .size = size, .ops = ops, .opaque = opaque, .region = -1 };
    unsigned reg = PCI_BAR0 + 4 * idx;
    uint64_t mask = ~(size - 1);
    pci_cfg_set32(d, reg, PCI_BAR_MEM_TYPE_64);
    pci_cfg_set32(d, reg + 4, 0);
    uint32_t lo = (uint32_t)mask & ~0xfu, hi = (uint32_t)(mask >> 32);
    for (unsigned i = 0; i < 4; i++) {
        d->wmask[reg + i] = (uint8_t)(lo >> (8 * i));
        d->wmask[reg + 4 + i] = (uint8_t)(hi >> (8 * i));
    }
    return 0;
}

int pci_add_cap(struct pci_device *d, uint8_t id, const void *body, unsigned len, struct err *e)
{
    unsigned off = (d->cap_end + 3) & ~3u;
    /* standard capabilities live in the first 256 bytes */
    if (len < 2 || len > 0x100 - PCI_CAP_START || off + len > 0x100)
        return err_set(e, -ENOSPC, "%s: no room for a %u-byte capability", d->name, len);
    memcpy(&d->cfg[off], body, len);
    d->cfg[off] = id;
    d->cfg[off + 1] = 0;
    if (d->cap_last)
        d->cfg[d->cap_last + 1] = (uint8_t)off;
    else
        d->cfg[PCI_CAPABILITY_LIST] = (uint8_t)off;
    d->cap_last = (uint8_t)off;
    d->cap_end = off + len;
    pci_cfg_set16(d, PCI_STATUS, pci_cfg_get16(d, PCI_STATUS) | PCI_STATUS_CAP_LIST);
    return (int)off;
}

uint64_t pci_bar_addr(const struct pci_device *d, unsigned idx)
{
    unsigned reg = PCI_BAR0 + 4 * idx;
    return ((uint64_t)pci_cfg_get32(d, reg + 4) << 32) | (pci_cfg_get32(d, reg) & ~0xfull);
}

/* Where BAR idx should be decoded, or false if it should not be. */
static bool bar_target(const struct pci_device *d, unsigned idx, uint64_t *addr)
{
    const struct pci_bar *b = &d->bar[idx];
    const struct pci_bus *pb = d->bus;
    if (!b->size || !(pci_cfg_get16(d, PCI_COMMAND) & PCI_COMMAND_MEMORY))
        return false;
    uint64_t a = pci_bar_addr(d, idx);
    if (a < pb->mem_base || b->size > pb->mem_size || a - pb->mem_base > pb->mem_size - b->size)
        return false;
    *addr = a;
    return true;
}

/* Tell devices about BARs whose decoding changed since they last heard:
 * every BAR that went away or moved is reported unmapped first, then every
 * new place is reported mapped, so two BARs that swapped addresses never
 * hold host-side resources (KVM ioeventfds) at the same address. */
static void report_bars(struct pci_bus *pb)
{
    for (int pass = 0; pass < 2; pass++)
        for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
            struct pci_device *d = pb->dev[s];
            for (unsigned i = 0; d && i < PCI_NUM_BARS; i++) {
                struct pci_bar *b = &d->bar[i];
                const struct bus_region *r =
                    b->region >= 0 ? bus_region_get(pb->mmio, b->region) : NULL;
                if (r ? b->reported && b->reported_addr == r->base : !b->reported)
                    continue;
                if (pass == 0 && b->reported) {
                    b->reported = false;
                    if (d->ops && d->ops->bar_mapped)
                        d->ops->bar_mapped(d, i, false, b->reported_addr);
                } else if (pass == 1 && r) {
                    b->reported = true;
                    b->reported_addr = r->base;
                    if (d->ops && d->ops->bar_mapped)
                        d->ops->bar_mapped(d, i, true, r->base);
                }
            }
        }
}

void pci_bus_remap(struct pci_bus *pb)
{
    struct err e;
    /* first move or drop what changed, so that the adds below see the
     * final layout */
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
        struct pci_device *d = pb->dev[s];
        for (unsigned i = 0; d && i < PCI_NUM_BARS; i++) {
            struct pci_bar *b = &d->bar[i];
            if (b->region < 0)
                continue;
            uint64_t addr;
            const struct bus_region *r = bus_region_get(pb->mmio, b->region);
            if (!bar_target(d, i, &addr)) {
                bus_remove(pb->mmio, b->region);
                b->region = -1;
            } else if (r && r->base != addr && bus_move(pb->mmio, b->region, addr, &e) < 0) {
                bus_remove(pb->mmio, b->region);   /* retried below */
                b->region = -1;
            }
        }
    }
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
        struct pci_device *d = pb->dev[s];
        for (unsigned i = 0; d && i < PCI_NUM_BARS; i++) {
            struct pci_bar *b = &d->bar[i];
            uint64_t addr;
            if (b->region >= 0 || !bar_target(d, i, &addr))
                continue;
            int id = bus_add(pb->mmio, addr, b->size, b->ops, b->opaque, d->name, &e);
            if (id < 0)
                log_guest(&pb->log, "pci 00:%02x.0 %s: BAR %u at 0x%llx not decoded: %s", s,
                          d->name, i, (unsigned long long)addr, e.msg);
            else
                b->region = id;
        }
    }
    report_bars(pb);
}

static void intx_update(struct pci_bus *pb)
{
    bool level[PCI_INTX_LINES] = { false };
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
        struct pci_device *d = pb->dev[s];
        if (d && d->intx_level && d->cfg[PCI_INTERRUPT_PIN] &&
            !(pci_cfg_get16(d, PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE))
            level[pci_intx_line(s, d->cfg[PCI_INTERRUPT_PIN])] = true;
    }
    for (unsigned l = 0; l < PCI_INTX_LINES; l++)
        if (level[l] != pb->line_level[l]) {
            pb->line_level[l] = level[l];
            if (pb->set_intx)
                pb->set_intx(pb->intx_opaque, l, level[l]);
        }
}

void pci_set_intx(struct pci_device *d, bool level)
{
    if (d->intx_level == level)
        return;
    d->intx_level = level;
    uint16_t st = pci_cfg_get16(d, PCI_STATUS);
    pci_cfg_set16(d, PCI_STATUS, level ? st | PCI_STATUS_INTERRUPT : st & ~PCI_STATUS_INTERRUPT);
    if (d->bus)
        intx_update(d->bus);
}

int pci_bus_plug_slot(struct pci_bus *pb, struct pci_device *d, unsigned s, struct err *e)
{
    if (s >= PCI_MAX_SLOTS)
        return err_set(e, -EINVAL, "%s: no PCI slot %u (0 to %d)", d->name, s, PCI_MAX_SLOTS - 1);
    if (pb->dev[s])
        return err_set(e, -EBUSY, "%s: PCI slot %u is taken by %s", d->name, s,
                       pb->dev[s]->name);
    d->bus = pb;
    d->slot = s;
    int ret = 0;
    if (d->ops && d->ops->plug && (ret = d->ops->plug(d, e)) < 0)
        goto fail;
    /* place the BARs, naturally aligned, in the memory window */
    uint64_t next = pb->mem_next;
    for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
        uint64_t size = d->bar[i].size;
        if (!size)
            continue;
        uint64_t a = (next + size - 1) & ~(size - 1);
        if (a < next || a - pb->mem_base > pb->mem_size ||
            pb->mem_size - (a - pb->mem_base) < size) {
            ret = err_set(e, -ENOSPC, "%s: PCI memory window full", d->name);
            goto fail;
        }
        pci_cfg_set32(d, PCI_BAR0 + 4 * i, (uint32_t)a | PCI_BAR_MEM_TYPE_64);
        pci_cfg_set32(d, PCI_BAR0 + 4 * i + 4, (uint32_t)(a >> 32));
        next = a + size;
    }
    pb->mem_next = next;
    pb->dev[s] = d;
    return 0;
fail:
    d->bus = NULL;
    d->slot = 0;
    return ret;
}

int pci_bus_plug(struct pci_bus *pb, struct pci_device *d, struct err *e)
{
    unsigned s = 1;
    while (s < PCI_MAX_SLOTS && pb->dev[s])
        s++;
    if (s == PCI_MAX_SLOTS)
        return err_set(e, -ENOSPC, "%s: no free PCI slot (at most %d devices)", d->name,
                       PCI_MAX_SLOTS - 1);
    return pci_bus_plug_slot(pb, d, s, e);
}

void pci_host_bridge_init(struct pci_device *d)
{
    pci_device_init(d, "host-bridge", NULL, PCI_HOST_BRIDGE_VENDOR, PCI_HOST_BRIDGE_DEVICE,
                    PCI_CLASS_BRIDGE_HOST, 0, PCI_HOST_BRIDGE_VENDOR, PCI_HOST_BRIDGE_DEVICE);
    d->cfg[PCI_INTERRUPT_PIN] = 0;     /* it never interrupts */
}

static struct pci_device *lookup(struct pci_bus *pb, unsigned busno, unsigned devfn)
{
    if (busno != 0 || (devfn & 7) || (devfn >> 3) >= PCI_MAX_SLOTS)
        return NULL;
    return pb->dev[devfn >> 3];
}

static bool access_ok(unsigned off, unsigned size)
{
    return (size == 1 || size == 2 || size == 4) && off < PCI_CFG_SIZE && !(off & (size - 1));
}

uint32_t pci_cfg_read(struct pci_bus *pb, unsigned busno, unsigned devfn, unsigned off,
                      unsigned size)
{
    uint32_t ones = size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
    struct pci_device *d = lookup(pb, busno, devfn);
    if (!d || !access_ok(off, size))
        return ones;
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint32_t)d->cfg[off + i] << (8 * i);
    if (d->ops && d->ops->cfg_read)
        v = d->ops->cfg_read(d, off, size, v) & ones;
    return v;
}

static bool overlaps(unsigned off, unsigned size, unsigned start, unsigned len)
{
    return off < start + len && start < off + size;
}

void pci_cfg_write(struct pci_bus *pb, unsigned busno, unsigned devfn, unsigned off,
                   unsigned size, uint32_t val)
{
    struct pci_device *d = lookup(pb, busno, devfn);
    if (!d || !access_ok(off, size))
        return;
    uint16_t old_cmd = pci_cfg_get16(d, PCI_COMMAND);
    for (unsigned i = 0; i < size; i++) {
        uint8_t m = d->wmask[off + i], b = (uint8_t)(val >> (8 * i));
        d->cfg[off + i] = (uint8_t)((d->cfg[off + i] & ~m) | (b & m));
    }
    uint16_t cmd = pci_cfg_get16(d, PCI_COMMAND);
    if (overlaps(off, size, PCI_BAR0, 4 * PCI_NUM_BARS) ||
        ((old_cmd ^ cmd) & PCI_COMMAND_MEMORY))
        pci_bus_remap(pb);
    if ((old_cmd ^ cmd) & PCI_COMMAND_INTX_DISABLE)
        intx_update(pb);
    if (d->ops && d->ops->cfg_write)
        d->ops->cfg_write(d, off, size, val);
}

static uint64_t ecam_read(void *opaque, uint64_t off, unsigned size)
{
    if (size > 4)
        return ~0ull;   /* ECAM accesses are at most a dword */
    return pci_cfg_read(opaque, (unsigned)(off >> 20) & 0xff, (unsigned)(off >> 12) & 0xff,
                        (unsigned)off & 0xfff, size);
}

static void ecam_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    if (size > 4)
        return;
    pci_cfg_write(opaque, (unsigned)(off >> 20) & 0xff, (unsigned)(off >> 12) & 0xff,
                  (unsigned)off & 0xfff, size, (uint32_t)val);
}

const struct mmio_ops pci_ecam_ops = { .read = ecam_read, .write = ecam_write };

/* --- configuration mechanism #1 ---------------------------------------- */

static uint32_t ones(unsigned size)
{
    return size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
}

/* The selected function and register (plus byte) of a data port access;
 * false while the enable bit is clear. */
static bool conf1_decode(const struct pci_bus *pb, unsigned byte, unsigned *busno,
                         unsigned *devfn, unsigned *reg)
{
    uint32_t a = pb->conf1_addr;
    if (!(a & PCI_CONF1_ENABLE))
        return false;
    *busno = (a >> 16) & 0xff;
    *devfn = (a >> 8) & 0xff;
    *reg = ((a >> 16) & 0xf00) | (a & 0xfc) | byte;
    return true;
}

static uint64_t conf1_read(void *opaque, uint64_t off, unsigned size)
{
    struct pci_bus *pb = opaque;
    unsigned busno, devfn, reg;
    if (size > 4 || off >= PCI_CONF1_SIZE || size > PCI_CONF1_SIZE - off)
        return ~0ull;
    if (off < 4)
        return off == 0 && size == 4 ? pb->conf1_addr : ones(size);
    if (!conf1_decode(pb, (unsigned)off - 4, &busno, &devfn, &reg))
        return ones(size);
    if (!(reg & (size - 1)))
        return pci_cfg_read(pb, busno, devfn, reg, size);
    /* unaligned inside the dword: byte by byte, like the byte enables */
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= pci_cfg_read(pb, busno, devfn, reg + i, 1) << (8 * i);
    return v;
}

static void conf1_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct pci_bus *pb = opaque;
    unsigned busno, devfn, reg;
    if (size > 4 || off >= PCI_CONF1_SIZE || size > PCI_CONF1_SIZE - off)
        return;
    if (off < 4) {
        /* bits 30:28 (reserved) and 1:0 (type 0 cycles) read as 0 */
        if (off == 0 && size == 4)
            pb->conf1_addr = (uint32_t)val & 0x8ffffffcu;
        return;
    }
    if (!conf1_decode(pb, (unsigned)off - 4, &busno, &devfn, &reg))
        return;
    if (!(reg & (size - 1))) {
        pci_cfg_write(pb, busno, devfn, reg, size, (uint32_t)val);
        return;
    }
    for (unsigned i = 0; i < size; i++)
        pci_cfg_write(pb, busno, devfn, reg + i, 1, (uint8_t)(val >> (8 * i)));
}

const struct mmio_ops pci_conf1_ops = { .read = conf1_read, .write = conf1_write };

/* --- snapshots ------------------------------------------------------------ */

#define PCI_SNAP_VERSION 1
#define PCI_SNAP_NAME_MAX 64

void pci_bus_quiesce(struct pci_bus *pb)
{
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
        struct pci_device *d = pb->dev[s];
        if (d && d->ops && d->ops->quiesce)
            d->ops->quiesce(d);
    }
}

static void slot_section(char *buf, size_t len, unsigned s)
{
    snprintf(buf, len, "pci-%02x", s);
}

static uint32_t class_of(const uint8_t *cfg)
{
    return (uint32_t)cfg[PCI_CLASS_PROG] | (uint32_t)cfg[PCI_CLASS_PROG + 1] << 8 |
           (uint32_t)cfg[PCI_CLASS_PROG + 2] << 16;
}

/* Section "pci": u32 CONFIG_ADDRESS, u32 bitmap of occupied slots, bool
 * level of each INTx line.  Section "pci-SS" per device: str name (for
 * messages), u16 vendor, u16 device, u32 class code, u64 size of each of
 * the six BARs (0: none), the 4 KiB config space, bool INTx level, then
 * what the device's ops->save appends. */
void pci_bus_save(struct pci_bus *pb, struct snap_writer *w)
{
    uint32_t present = 0;
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++)
        if (pb->dev[s])
            present |= 1u << s;
    snapw_section(w, "pci", PCI_SNAP_VERSION);
    snapw_u32(w, pb->conf1_addr);
    snapw_u32(w, present);
    for (unsigned l = 0; l < PCI_INTX_LINES; l++)
        snapw_bool(w, pb->line_level[l]);
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
        struct pci_device *d = pb->dev[s];
        if (!d)
            continue;
        char name[SNAP_NAME_LEN + 1];
        slot_section(name, sizeof(name), s);
        snapw_section(w, name, PCI_SNAP_VERSION);
        snapw_str(w, d->name);
        snapw_u16(w, pci_cfg_get16(d, PCI_VENDOR_ID));
        snapw_u16(w, pci_cfg_get16(d, PCI_DEVICE_ID));
        snapw_u32(w, class_of(d->cfg));
        for (unsigned i = 0; i < PCI_NUM_BARS; i++)
            snapw_u64(w, d->bar[i].size);
        snapw_bytes(w, d->cfg, PCI_CFG_SIZE);
        snapw_bool(w, d->intx_level);
        if (d->ops && d->ops->save)
            d->ops->save(d, w);
    }
}

/* A slot holds a device on one side only: name what each side has. */
static int slot_mismatch(struct pci_bus *pb, unsigned s, struct snap_file *f, struct err *e)
{
    struct pci_device *d = pb->dev[s];
    char here[128] = "nothing", there[128] = "nothing", sec[SNAP_NAME_LEN + 1];
    if (d)
        snprintf(here, sizeof(here), "%s (%04x:%04x)", d->name, pci_cfg_get16(d, PCI_VENDOR_ID),
                 pci_cfg_get16(d, PCI_DEVICE_ID));
    slot_section(sec, sizeof(sec), s);
    struct snap_reader r;
    struct err ignored;
    if (!d && snap_section(f, sec, PCI_SNAP_VERSION, PCI_SNAP_VERSION, &r, &ignored) == 0) {
        char *name = NULL;
        snapr_str(&r, PCI_SNAP_NAME_MAX, &name);
        uint16_t vendor = snapr_u16(&r), device = snapr_u16(&r);
        if (!r.fail && name)
            snprintf(there, sizeof(there), "%s (%04x:%04x)", name, vendor, device);
        else
            snprintf(there, sizeof(there), "a device");
        free(name);
    } else if (!d) {
        snprintf(there, sizeof(there), "a device");
    }
    return err_set(e, -EINVAL, "PCI slot %u: the snapshot has %s, this VM has %s", s, there,
                   here);
}

/* One device: its section's bus part is read and checked, the device reads
 * and applies its own part (ops->load), then the config space and the
 * INTx level are applied. */
static int load_slot(struct pci_device *d, struct snap_file *f, struct err *e)
{
    char sec[SNAP_NAME_LEN + 1];
    slot_section(sec, sizeof(sec), d->slot);
    struct snap_reader r;
    int ret = snap_section(f, sec, PCI_SNAP_VERSION, PCI_SNAP_VERSION, &r, e);
    if (ret < 0)
        return ret;
    char *name = NULL;
    snapr_str(&r, PCI_SNAP_NAME_MAX, &name);
    uint16_t vendor = snapr_u16(&r), device = snapr_u16(&r);
    uint32_t cls = snapr_u32(&r);
    uint64_t bar_size[PCI_NUM_BARS];
    for (unsigned i = 0; i < PCI_NUM_BARS; i++)
        bar_size[i] = snapr_u64(&r);
    uint8_t cfg[PCI_CFG_SIZE];
    snapr_bytes(&r, cfg, sizeof(cfg));
    bool intx = snapr_bool(&r);
    if (!r.fail && (vendor != pci_cfg_get16(d, PCI_VENDOR_ID) ||
                    device != pci_cfg_get16(d, PCI_DEVICE_ID) || cls != class_of(d->cfg))) {
        ret = err_set(e, -EINVAL, "PCI slot %u: the snapshot has %s (%04x:%04x, class %06x), "
                      "this VM has %s (%04x:%04x, class %06x)", d->slot, name ? name : "a device",
                      vendor, device, cls, d->name, pci_cfg_get16(d, PCI_VENDOR_ID),
                      pci_cfg_get16(d, PCI_DEVICE_ID), class_of(d->cfg));
        free(name);
        return ret;
    }
    free(name);
    for (unsigned i = 0; i < PCI_NUM_BARS && !r.fail; i++)
        if (bar_size[i] != d->bar[i].size) {
            char what[96];
            snprintf(what, sizeof(what), "BAR %u is of 0x%llx bytes, this VM's device has "
                     "0x%llx", i, (unsigned long long)bar_size[i],
                     (unsigned long long)d->bar[i].size);
            snapr_check(&r, false, what);
            break;
        }
    /* What the guest cannot write (ids, capabilities, BAR types and sizes,
     * the pin) must be what this VM's device has: the guest's driver read
     * it.  The status register's interrupt bit is the device's level. */
    for (unsigned i = 0; i < PCI_CFG_SIZE && !r.fail; i++) {
        uint8_t ro = (uint8_t)~d->wmask[i];
        if (i == PCI_STATUS)
            ro &= (uint8_t)~PCI_STATUS_INTERRUPT;
        if ((cfg[i] ^ d->cfg[i]) & ro) {
            char what[96];
            snprintf(what, sizeof(what), "read-only config byte 0x%03x is 0x%02x, this VM's "
                     "device has 0x%02x", i, cfg[i], d->cfg[i]);
            snapr_check(&r, false, what);
            break;
        }
    }
    snapr_check(&r, r.fail || !!(cfg[PCI_STATUS] & PCI_STATUS_INTERRUPT) == intx,
                "the status register's interrupt bit is not the INTx level");
    if (d->ops && d->ops->load && !r.fail && !r.bad[0] &&
        (ret = d->ops->load(d, &r, f, e)) < 0)
        return ret;
    if ((ret = snapr_end(&r, e)) < 0)
        return ret;
    memcpy(d->cfg, cfg, sizeof(cfg));
    d->intx_level = intx;
    return 0;
}

int pci_bus_load(struct pci_bus *pb, struct snap_file *f, struct err *e)
{
    struct snap_reader r;
    int ret = snap_section(f, "pci", PCI_SNAP_VERSION, PCI_SNAP_VERSION, &r, e);
    if (ret < 0)
        return ret;
    uint32_t conf1 = snapr_u32(&r), present = snapr_u32(&r);
    bool saved_line[PCI_INTX_LINES];
    for (unsigned l = 0; l < PCI_INTX_LINES; l++)
        saved_line[l] = snapr_bool(&r);
    snapr_check(&r, !(conf1 & ~0x8ffffffcu), "CONFIG_ADDRESS has reserved bits set");
    if ((ret = snapr_end(&r, e)) < 0)
        return ret;
    /* the same devices in the same slots */
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++)
        if (!!(present >> s & 1) != (pb->dev[s] != NULL))
            return slot_mismatch(pb, s, f, e);
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++)
        if (pb->dev[s] && (ret = load_slot(pb->dev[s], f, e)) < 0)
            return ret;
    pb->conf1_addr = conf1;
    /* the lines as the devices' levels make them, told to the board even
     * where they are low (the board may be fresh or loaded already) */
    bool level[PCI_INTX_LINES] = { false };
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
        struct pci_device *d = pb->dev[s];
        if (d && d->intx_level && d->cfg[PCI_INTERRUPT_PIN] &&
            !(pci_cfg_get16(d, PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE))
            level[pci_intx_line(s, d->cfg[PCI_INTERRUPT_PIN])] = true;
    }
    for (unsigned l = 0; l < PCI_INTX_LINES; l++)
        if (level[l] != saved_line[l])
            return err_set(e, -EINVAL, "state file: 'pci': INTx line %u is %s, but the devices "
                           "on it say %s", l, saved_line[l] ? "high" : "low",
                           level[l] ? "high" : "low");
    for (unsigned l = 0; l < PCI_INTX_LINES; l++) {
        pb->line_level[l] = level[l];
        if (pb->set_intx)
            pb->set_intx(pb->intx_opaque, l, level[l]);
    }
    /* decode the BARs where the restored registers put them; devices hear
     * it through bar_mapped (ioeventfds follow) */
    pci_bus_remap(pb);
    return 0;
}

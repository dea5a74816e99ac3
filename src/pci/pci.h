/* PCI: one root bus (bus 0) behind a host bridge, with devices that have a
 * 4 KiB (PCIe-sized) type 0 configuration space.
 *
 * Design
 * - Config space is bytes plus a write mask (QEMU's model): a config write
 *   changes only the bits the mask allows, reads return the bytes.  The
 *   header's read-only fields (ids, class, header type, capability pointer,
 *   interrupt pin) have mask 0.  Config access comes in through
 *   pci_cfg_read/pci_cfg_write by (bus, devfn, register), so any config
 *   mechanism can sit in front: the ECAM window (pci_ecam_ops, one MMIO
 *   region on the board's bus) on riscv64, configuration mechanism #1
 *   (pci_conf1_ops, I/O ports 0xcf8-0xcff) on x86.
 *   Absent devices, functions other than 0 and buses other than 0 read as
 *   all ones (no device) and ignore writes.
 * - Mechanism #1: a dword write to 0xcf8 latches CONFIG_ADDRESS (bit 31
 *   enable, bus in 23:16, devfn in 15:8, dword register in 7:2, and AMD's
 *   extension: register bits 11:8 in 27:24, as Linux's accessors write
 *   them); a dword read returns it.  Byte and word accesses to 0xcf8-0xcfb
 *   are not CONFIG_ADDRESS (0xcfb is the old mechanism switch): writes are
 *   ignored, reads float high.  0xcfc-0xcff is the data window onto the
 *   selected dword, at any size and byte offset, as the byte enables of a
 *   real config cycle allow (a word at 0xcfd reaches register bytes 1-2);
 *   with the enable bit clear it reads all ones and ignores writes.
 * - BARs are 64-bit memory BARs (two registers each), sizes a power of two
 *   of at least 4 KiB.  Their address bits are writable, the size bits are
 *   not, so writing all ones and reading back gives the size mask, as PCI
 *   specifies.  The VMM places every BAR at creation, like firmware, in the
 *   bus's memory window; the guest may move them (Linux on riscv64 reassigns
 *   all BARs itself) and whatever it writes is honoured.
 * - A BAR is decoded (a region on the MMIO bus) while the command register's
 *   memory-space enable is set and the BAR lies entirely inside the host
 *   bridge's memory window: a guest cannot shadow RAM or board devices
 *   with a BAR.  After every write to a BAR or the command register all BARs
 *   of the bus are brought in line with their registers (pci_bus_remap):
 *   changed regions are moved or removed first, then missing ones added, so
 *   a transient conflict between two BARs resolves itself once the guest has
 *   finished moving them; a conflict that remains leaves the later BAR
 *   undecoded and is logged (rate-limited).  Bus lookups stay a binary
 *   search over the regions (core/bus.h): moving costs only at config time.
 *   Once the regions are settled, a device whose BAR appeared, moved or
 *   disappeared hears about it (pci_device_ops.bar_mapped): that is how a
 *   device keeps host-side shortcuts (KVM ioeventfds) on the address the
 *   guest actually decodes.
 * - INTx: a device asserts its pin (INTA, the only one single-function
 *   devices use) with pci_set_intx; the bus swizzles pin and slot onto four
 *   lines, line = (slot + pin - 1) % 4, ORs the devices sharing a line and
 *   calls the board's set_intx(line, level).  The command register's
 *   Interrupt Disable bit masks a device's INTx; the status register's
 *   Interrupt Status bit shows the device's level either way.
 * - Capabilities are allocated upward from 0x40 and linked in order;
 *   pci_add_cap returns the offset.  Devices may hook config reads/writes
 *   (virtio's PCI config access capability, MSI-X's message control)
 *   through pci_device_ops.
 * - What a board offers beyond INTx (struct pci_platform, optional): MSI
 *   delivery (pci/msix.h: devices offer MSI-X only when the board can
 *   deliver messages, so none on riscv64, which has no MSI controller) and
 *   ioeventfds (guest writes to an address signal an eventfd without a
 *   trip through the MMIO handler; the device's handler then runs on the
 *   board's event loop).
 * - Bus mastering: a device must not touch guest memory while the command
 *   register's bus-master enable is clear (pci_bus_master()).
 * - Threads: the bus is used under whatever serialises device emulation
 *   (the rv64 run loop's thread; the kvm engine's device lock).
 *
 * The pci_bus does not own device memory: each device's ops->destroy frees
 * it, called by pci_bus_destroy. */
#ifndef PETREL_PCI_H
#define PETREL_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/log.h"

#define PCI_MAX_SLOTS 32
#define PCI_CFG_SIZE 4096
#define PCI_NUM_BARS 6
#define PCI_INTX_LINES 4
#define PCI_BAR_MIN_SIZE 0x1000ull

/* standard header registers */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION_ID 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_ROM_ADDRESS 0x30
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d
#define PCI_CAP_START 0x40

#define PCI_COMMAND_IO 0x0001
#define PCI_COMMAND_MEMORY 0x0002
#define PCI_COMMAND_MASTER 0x0004
#define PCI_COMMAND_PARITY 0x0040
#define PCI_COMMAND_SERR 0x0100
#define PCI_COMMAND_INTX_DISABLE 0x0400

#define PCI_STATUS_INTERRUPT 0x0008
#define PCI_STATUS_CAP_LIST 0x0010

#define PCI_BAR_MEM_TYPE_64 0x4
#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11

#define PCI_CLASS_BRIDGE_HOST 0x060000

/* configuration mechanism #1 (x86 I/O ports) */
#define PCI_CONF1_PORT 0xcf8
#define PCI_CONF1_SIZE 8                /* CONFIG_ADDRESS 0xcf8, CONFIG_DATA 0xcfc */
#define PCI_CONF1_ENABLE 0x80000000u

struct pci_device;
struct evloop;
struct snap_writer;
struct snap_reader;
struct snap_file;

struct pci_device_ops {
    /* Optional: the value a config read returns, given what the config
     * bytes hold (val).  off is aligned to size. */
    uint32_t (*cfg_read)(struct pci_device *d, unsigned off, unsigned size, uint32_t val);
    /* Optional: called after a config write has updated the bytes. */
    void (*cfg_write)(struct pci_device *d, unsigned off, unsigned size, uint32_t val);
    /* Optional: called by pci_bus_plug once d->bus and d->slot are set and
     * before the BARs are placed: what depends on the board (d->bus->plat)
     * is set up here, e.g. an MSI-X capability and its BAR. */
    int (*plug)(struct pci_device *d, struct err *e);
    /* Optional: BAR idx is now decoded at addr (mapped) or no longer
     * decoded at addr (!mapped).  Called after pci_bus_remap has settled
     * every region, only on change (a move is an unmap, then a map; all
     * unmaps of the bus come before all maps), and with mapped = false by
     * pci_bus_destroy. */
    void (*bar_mapped)(struct pci_device *d, unsigned idx, bool mapped, uint64_t addr);
    /* Frees the device (called by pci_bus_destroy). */
    void (*destroy)(struct pci_device *d);
    /* Optional, snapshots (core/snapshot.h, docs/snapshots.md).  quiesce:
     * finish what is in flight (a disk's requests) so the state is whole;
     * called for every device before any is saved.  save: append the
     * device's own state to the open section, after the config space the
     * bus wrote.  load: read it back, in the same order, into a freshly
     * created device of the same kind (before the CPUs start); validate
     * every field, call snapr_end, and only then apply (the section's bus
     * part has passed its checks; the bus applies the config space and
     * INTx level after load returns 0, so load must not depend on them);
     * return 0 or a negative errno with a message in e. */
    void (*quiesce)(struct pci_device *d);
    void (*save)(struct pci_device *d, struct snap_writer *w);
    int (*load)(struct pci_device *d, struct snap_reader *r, struct snap_file *f,
                struct err *e);
};

struct pci_bar {
    uint64_t size;              /* 0: BAR not implemented */
    const struct mmio_ops *ops;
    void *opaque;
    int region;                 /* MMIO bus region while decoded, else -1 */
    bool reported;              /* what bar_mapped was last told: mapped ... */
    uint64_t reported_addr;     /* ... at this address */
};

struct pci_bus;

/* What a board offers PCI devices beyond config space, BARs and INTx.  Any
 * member may be NULL.  Called in device context. */
struct pci_platform {
    void *opaque;
    /* MSI delivery.  A route is the board's channel for one MSI-X vector:
     * route_new reserves one (an id >= 0, or a negative errno with a
     * message), route_set points it at a message (a negative errno if the
     * board refuses the message, e.g. an address outside its MSI window;
     * it then sends nothing until the next route_set), fire sends it. */
    int (*msi_route_new)(void *opaque, struct err *e);
    int (*msi_route_set)(void *opaque, int route, uint64_t addr, uint32_t data);
    void (*msi_fire)(void *opaque, int route);
    /* ioeventfd: while assigned, a guest write of len bytes at addr signals
     * fd (an eventfd) instead of reaching the MMIO handler. */
    int (*ioeventfd)(void *opaque, uint64_t addr, unsigned len, int fd, bool assign,
                     struct err *e);
    /* The device event loop that eventfd handlers are added to. */
    struct evloop *loop;
};

struct pci_device {
    struct pci_bus *bus;
    const char *name;
    const struct pci_device_ops *ops;
    unsigned slot;              /* devfn = slot << 3: function 0 only */
    uint8_t cfg[PCI_CFG_SIZE];
    uint8_t wmask[PCI_CFG_SIZE];
    unsigned cap_end;           /* where the next capability goes */
    uint8_t cap_last;           /* offset of the last capability, 0: none */
    struct pci_bar bar[PCI_NUM_BARS];
    bool intx_level;
};

struct pci_bus {
    struct bus *mmio;           /* where BARs are decoded */
    uint64_t mem_base, mem_size;/* the host bridge's memory window */
    uint64_t mem_next;          /* VMM's BAR placement cursor */
    struct pci_device *dev[PCI_MAX_SLOTS];
    void (*set_intx)(void *opaque, unsigned line, bool level);
    void *intx_opaque;
    bool line_level[PCI_INTX_LINES];
    const struct pci_platform *plat;    /* NULL: INTx only, no ioeventfd */
    uint32_t conf1_addr;        /* mechanism #1 CONFIG_ADDRESS */
    struct log_limit log;
};

void pci_bus_init(struct pci_bus *pb, struct bus *mmio, uint64_t mem_base, uint64_t mem_size,
                  void (*set_intx)(void *opaque, unsigned line, bool level), void *intx_opaque);
/* Unmaps every BAR and destroys every device. */
void pci_bus_destroy(struct pci_bus *pb);
/* Snapshots: quiesce every device; save the bus (section "pci") and each
 * device (section "pci-SS", SS its slot in hex: ids, BAR sizes, config
 * space, INTx level, then ops->save; layout in pci.c); load them back into
 * a bus built with the same devices in the same slots (a device of another
 * kind, or one missing on either side, is an error naming the slot).  Per
 * device, the bus's part is checked (read-only config bytes must be what
 * this VM's device has), then ops->load reads, checks and applies the
 * device's own part, then the config space and INTx level are applied.
 * Then the board hears every INTx line's level (set_intx, also for low
 * lines) and the BARs are decoded as the restored registers say (devices
 * hear it through bar_mapped).  Guest RAM must be in place first (queue
 * rings are checked against it).  A failed load may have applied the
 * sections before the failing one: the caller discards the machine. */
void pci_bus_quiesce(struct pci_bus *pb);
void pci_bus_save(struct pci_bus *pb, struct snap_writer *w);
int pci_bus_load(struct pci_bus *pb, struct snap_file *f, struct err *e);
/* Give the bus's devices what the board offers (before plugging any). */
static inline void pci_bus_set_platform(struct pci_bus *pb, const struct pci_platform *plat)
{
    pb->plat = plat;
}

/* Fill in a device's header: ids, class (base << 16 | sub << 8 | prog-if),
 * revision, subsystem ids, interrupt pin INTA.  Zeroes the rest. */
void pci_device_init(struct pci_device *d, const char *name, const struct pci_device_ops *ops,
                     uint16_t vendor, uint16_t device, uint32_t class_code, uint8_t revision,
                     uint16_t subsys_vendor, uint16_t subsys_id);
/* Declare BAR idx (even, 0..4: a 64-bit BAR uses idx and idx+1). */
int pci_device_set_bar(struct pci_device *d, unsigned idx, uint64_t size,
                       const struct mmio_ops *ops, void *opaque, struct err *e);
/* Append a capability: `body` is the whole capability (len bytes, len >= 2);
 * bytes 0 and 1 (id, next) are filled in.  Returns its offset or -ENOSPC. */
int pci_add_cap(struct pci_device *d, uint8_t id, const void *body, unsigned len,
                struct err *e);
/* Make config bytes [off, off+len) guest-writable. */
void pci_set_writable(struct pci_device *d, unsigned off, unsigned len);

/* Put d into the first free slot from 1 (slot 0 is left for a host bridge
 * device), place its BARs in the memory window. */
int pci_bus_plug(struct pci_bus *pb, struct pci_device *d, struct err *e);
/* The same into a given slot (-EBUSY if taken). */
int pci_bus_plug_slot(struct pci_bus *pb, struct pci_device *d, unsigned slot, struct err *e);

/* A host bridge function (class 06/00/00, no BARs, no interrupt pin), for
 * slot 0: what x86 kernels look for before trusting mechanism #1. */
#define PCI_HOST_BRIDGE_VENDOR 0x1b36   /* the generic virtual host bridge ids */
#define PCI_HOST_BRIDGE_DEVICE 0x0008
void pci_host_bridge_init(struct pci_device *d);

/* Config space access by (bus number, devfn, register). */
uint32_t pci_cfg_read(struct pci_bus *pb, unsigned busno, unsigned devfn, unsigned off,
                      unsigned size);
void pci_cfg_write(struct pci_bus *pb, unsigned busno, unsigned devfn, unsigned off,
                   unsigned size, uint32_t val);

/* ECAM: offset = bus << 20 | devfn << 12 | register; opaque = struct pci_bus */
extern const struct mmio_ops pci_ecam_ops;
/* Mechanism #1: a region of PCI_CONF1_SIZE ports at PCI_CONF1_PORT on the
 * board's port bus; opaque = struct pci_bus */
extern const struct mmio_ops pci_conf1_ops;

/* INTx pin A of d. */
void pci_set_intx(struct pci_device *d, bool level);
/* The INTx line (0..3) of a slot's pin (1 = INTA .. 4 = INTD). */
static inline unsigned pci_intx_line(unsigned slot, unsigned pin)
{
    return (slot + pin - 1) % PCI_INTX_LINES;
}

static inline uint16_t pci_cfg_get16(const struct pci_device *d, unsigned off)
{
    return (uint16_t)(d->cfg[off] | d->cfg[off + 1] << 8);
}
static inline uint32_t pci_cfg_get32(const struct pci_device *d, unsigned off)
{
    return (uint32_t)d->cfg[off] | (uint32_t)d->cfg[off + 1] << 8 |
           (uint32_t)d->cfg[off + 2] << 16 | (uint32_t)d->cfg[off + 3] << 24;
}
void pci_cfg_set16(struct pci_device *d, unsigned off, uint16_t v);
void pci_cfg_set32(struct pci_device *d, unsigned off, uint32_t v);

static inline bool pci_bus_master(const struct pci_device *d)
{
    return (pci_cfg_get16(d, PCI_COMMAND) & PCI_COMMAND_MASTER) != 0;
}
/* The guest address BAR idx is programmed to (whether decoded or not). */
uint64_t pci_bar_addr(const struct pci_device *d, unsigned idx);
/* Bring the MMIO regions of every BAR in line with the config registers. */
void pci_bus_remap(struct pci_bus *pb);

#endif

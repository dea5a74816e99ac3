/* MSI-X for emulated PCI devices (PCI Local Bus 3.0 section 6.8.2; PCIe
 * 7.7.2): the capability, the vector table and the pending bit array.
 *
 * Design
 * - A device embeds a struct pci_msix, declares a memory BAR that holds the
 *   table and the PBA (pci_msix_bar_ops when the BAR holds nothing else, or
 *   pci_msix_read/pci_msix_write from its own BAR handler) and calls
 *   pci_msix_init, which appends the capability (id 0x11: message control
 *   with the table size, table offset/BIR, PBA offset/BIR).  The device's
 *   config write hook passes writes on to pci_msix_cfg_write, and the device
 *   signals vector v with pci_msix_notify.
 * - Message control: MSI-X Enable (bit 15) and Function Mask (bit 14) are
 *   the only writable bits.  Enabling MSI-X deasserts the function's INTx:
 *   while MSI-X is on, a device must not use INTx (the device checks
 *   pci_msix_enabled and uses INTx otherwise).
 * - Table entries (16 bytes: address low/high, data, vector control) start
 *   masked.  Writable: the address (bits 1:0 read 0, as dword alignment
 *   requires), the data and the vector control's mask bit; the reserved
 *   control bits read 0.  Any naturally aligned access of 1, 2, 4 or 8
 *   bytes inside an entry works; others read 0 and are ignored.
 * - A notify while the function or the vector is masked sets the vector's
 *   pending bit (PBA, read-only); when the vector becomes deliverable
 *   (vector unmasked, function unmasked or MSI-X enabled) a pending message
 *   is sent and its bit cleared.  A notify while MSI-X is disabled does
 *   nothing (INTx is the device's business then).
 * - Delivery goes through the board (struct pci_platform in pci.h): each
 *   vector gets a route from the board the first time it is unmasked or
 *   fired, and the route is pointed at the vector's message (route_set)
 *   when the vector becomes deliverable and, lazily, whenever the message
 *   changed since; firing is then one cheap call (on KVM, an eventfd
 *   write).  A message the board refuses (not an interrupt address) is
 *   dropped and logged (rate-limited), never written to memory.
 * - At most PCI_MSIX_MAX_VECTORS vectors (one 64-bit PBA word).
 * - Threads: device context only, like the rest of pci/. */
#ifndef PETREL_PCI_MSIX_H
#define PETREL_PCI_MSIX_H

#include <stdbool.h>
#include <stdint.h>

#include "pci/pci.h"

#define PCI_MSIX_MAX_VECTORS 64
#define PCI_MSIX_ENTRY_SIZE 16
#define PCI_MSIX_CAP_SIZE 12

/* capability fields (offsets from the capability) */
#define PCI_MSIX_FLAGS 2
#define PCI_MSIX_TABLE 4
#define PCI_MSIX_PBA 8
#define PCI_MSIX_FLAGS_QSIZE 0x07ff
#define PCI_MSIX_FLAGS_MASKALL 0x4000
#define PCI_MSIX_FLAGS_ENABLE 0x8000
#define PCI_MSIX_BIR_MASK 0x7

/* table entry fields */
#define PCI_MSIX_ENTRY_ADDR_LO 0
#define PCI_MSIX_ENTRY_ADDR_HI 4
#define PCI_MSIX_ENTRY_DATA 8
#define PCI_MSIX_ENTRY_CTRL 12
#define PCI_MSIX_ENTRY_CTRL_MASKBIT 0x1

struct pci_msix_vec {
    int route;                  /* the board's route, -1: none yet */
    bool synced;                /* the route carries addr/data below */
    bool refused;               /* ... and the board refused them */
    uint64_t addr;
    uint32_t data;
};

struct pci_msix {
    struct pci_device *dev;
    unsigned cap;               /* capability offset in config space */
    unsigned nvec;
    unsigned bar;
    uint32_t table_off, pba_off;    /* inside the BAR */
    uint64_t pending;           /* the PBA */
    uint8_t table[PCI_MSIX_MAX_VECTORS * PCI_MSIX_ENTRY_SIZE];
    struct pci_msix_vec vec[PCI_MSIX_MAX_VECTORS];
};

/* Add the capability for nvec vectors (1..PCI_MSIX_MAX_VECTORS), table and
 * PBA at table_off/pba_off (8-byte aligned, not overlapping) of BAR `bar`,
 * which d must have declared already, big enough to hold them. */
int pci_msix_init(struct pci_msix *m, struct pci_device *d, unsigned nvec, unsigned bar,
                  uint32_t table_off, uint32_t pba_off, struct err *e);

bool pci_msix_enabled(const struct pci_msix *m);
/* Vector v (< nvec) has an event: send it, or mark it pending if masked. */
void pci_msix_notify(struct pci_msix *m, unsigned v);
/* The device's config write hook forwards every write here. */
void pci_msix_cfg_write(struct pci_msix *m, unsigned off, unsigned size);

/* Table and PBA access at BAR offset off. */
uint64_t pci_msix_read(struct pci_msix *m, uint64_t off, unsigned size);
void pci_msix_write(struct pci_msix *m, uint64_t off, uint64_t val, unsigned size);
/* For a BAR that holds only the table and the PBA; opaque = struct pci_msix. */
extern const struct mmio_ops pci_msix_bar_ops;

/* Snapshots (core/snapshot.h), for the device that embeds the MSI-X state:
 * save appends u32 vector count, u64 PBA, the table (16 bytes a vector).
 * The enable and function-mask bits are config space (the bus saves it).
 * Loading is two steps, so the device can check its whole section before it
 * changes anything: pci_msix_load reads and checks into s (the same vector
 * count as m, reserved bits clear, pending bits only for vectors that
 * exist: failures are recorded in r), pci_msix_restore applies s.  The
 * board's routes are host state: each vector gets (or reprograms) one
 * lazily, as at run time, the next time it is unmasked or fires. */
struct snap_writer;
struct snap_reader;
struct pci_msix_snap {
    uint32_t nvec;
    uint64_t pending;
    uint8_t table[PCI_MSIX_MAX_VECTORS * PCI_MSIX_ENTRY_SIZE];
};
void pci_msix_save(const struct pci_msix *m, struct snap_writer *w);
void pci_msix_load(const struct pci_msix *m, struct snap_reader *r, struct pci_msix_snap *s);
void pci_msix_restore(struct pci_msix *m, const struct pci_msix_snap *s);

#endif

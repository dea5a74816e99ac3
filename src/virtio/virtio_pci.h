/* Virtio over PCI, the modern (1.x) transport (virtio spec 4.1).
 *
 * A virtio PCI device has vendor 0x1af4, device id 0x1040 + virtio device
 * id, revision 1 (non-transitional), and one 64-bit memory BAR (BAR 0)
 * holding all its register blocks, each in its own 4 KiB page so a later
 * ioeventfd or direct mapping can treat them separately:
 *
 *   0x0000  common configuration (struct virtio_pci_common_cfg)
 *   0x1000  ISR status (read to clear; bit 0 queue, bit 1 config change)
 *   0x2000  device-specific configuration (absent if the device has none)
 *   0x3000  notifications: queue q at 0x3000 + 4 * q
 *           (queue_notify_off = q, notify_off_multiplier = 4)
 *
 * Vendor-specific capabilities (cap id 9) point the driver at each block,
 * plus the PCI configuration access capability (VIRTIO_PCI_CAP_PCI_CFG)
 * the spec requires, which reaches the BAR through config space.
 *
 * Interrupts are INTx: a used buffer or a config change sets the ISR bit
 * and asserts INTA; reading the ISR clears it and deasserts.  No MSI-X
 * yet (Linux falls back to INTx): the msix_vector registers read
 * VIRTIO_NO_VECTOR.  MSI-X goes in as a capability + table in BAR 2,
 * turning notify_queue/notify_config into vector messages when enabled.
 *
 * Queue kicks are ignored (and logged) while bus mastering is disabled.
 */
#ifndef PETREL_VIRTIO_PCI_H
#define PETREL_VIRTIO_PCI_H

#include "core/evloop.h"
#include "pci/pci.h"
#include "virtio/virtio.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040
#define VIRTIO_PCI_BAR 0
#define VIRTIO_PCI_BAR_SIZE 0x4000
#define VIRTIO_PCI_COMMON_OFF 0x0000
#define VIRTIO_PCI_ISR_OFF 0x1000
#define VIRTIO_PCI_DEVICE_OFF 0x2000
#define VIRTIO_PCI_NOTIFY_OFF 0x3000
#define VIRTIO_PCI_REGION_SIZE 0x1000
#define VIRTIO_PCI_NOTIFY_MULT 4

/* cfg_type of the vendor capabilities */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG 5

/* common configuration registers */
#define VIRTIO_PCI_COMMON_DFSELECT 0x00
#define VIRTIO_PCI_COMMON_DF 0x04
#define VIRTIO_PCI_COMMON_GFSELECT 0x08
#define VIRTIO_PCI_COMMON_GF 0x0c
#define VIRTIO_PCI_COMMON_MSIX 0x10
#define VIRTIO_PCI_COMMON_NUMQ 0x12
#define VIRTIO_PCI_COMMON_STATUS 0x14
#define VIRTIO_PCI_COMMON_CFGGENERATION 0x15
#define VIRTIO_PCI_COMMON_Q_SELECT 0x16
#define VIRTIO_PCI_COMMON_Q_SIZE 0x18
#define VIRTIO_PCI_COMMON_Q_MSIX 0x1a
#define VIRTIO_PCI_COMMON_Q_ENABLE 0x1c
#define VIRTIO_PCI_COMMON_Q_NOFF 0x1e
#define VIRTIO_PCI_COMMON_Q_DESCLO 0x20
#define VIRTIO_PCI_COMMON_Q_DESCHI 0x24
#define VIRTIO_PCI_COMMON_Q_AVAILLO 0x28
#define VIRTIO_PCI_COMMON_Q_AVAILHI 0x2c
#define VIRTIO_PCI_COMMON_Q_USEDLO 0x30
#define VIRTIO_PCI_COMMON_Q_USEDHI 0x34
#define VIRTIO_PCI_COMMON_SIZE 0x40

#define VIRTIO_PCI_ISR_QUEUE 0x1
#define VIRTIO_PCI_ISR_CONFIG 0x2

struct virtio_pci {
    struct pci_device pci;
    struct virtio_dev vdev;
    uint32_t dfselect, gfselect;
    uint16_t queue_sel;
    uint8_t isr;
    unsigned cfg_cap;           /* offset of the PCI config access capability */
    void (*free)(struct virtio_pci *vp);   /* the device type's destructor */
};

/* Turn an initialised vp->vdev into a PCI device (not yet plugged). */
int virtio_pci_init(struct virtio_pci *vp, uint32_t class_code,
                    void (*free_fn)(struct virtio_pci *vp), struct err *e);

/* The BAR's register blocks (exposed for tests). */
extern const struct mmio_ops virtio_pci_bar_ops;

/* What a device needs from the machine it is plugged into. */
struct virtio_host {
    struct pci_bus *pb;
    const struct gmem *mem;
    struct evloop *loop;        /* device event loop (core/evloop.h) */
};

/* Device types: create one from its options (the part of --device after
 * the name, "" if none) and plug it into h->pb.  The bus then owns it. */
int virtio_rng_create(const struct virtio_host *h, const char *opts, struct err *e);
/* virtio-console: socket=PATH or file=PATH (see virtio_console.c). */
int virtio_console_create(const struct virtio_host *h, const char *opts, struct err *e);
/* A disk (--disk): virtio-blk over the block layer (block/block.h). */
struct disk_config;
int virtio_blk_create(const struct virtio_host *h, const struct disk_config *d, struct err *e);

/* `--device NAME[,OPTS]`: create a device.  -ENOENT for an unknown name
 * (with the list of known ones in e). */
int virtio_pci_create(const struct virtio_host *h, const char *spec, struct err *e);
/* Whether spec names a known device type (options are not checked). */
bool virtio_device_known(const char *spec);
/* Space-separated names virtio_pci_create knows, for help texts. */
#define VIRTIO_DEVICE_NAMES "virtio-rng virtio-console"

#endif

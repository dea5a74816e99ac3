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
 * Interrupts.  INTx: a used buffer or a config change sets the ISR bit
 * and asserts INTA; reading the ISR clears it and deasserts.  MSI-X (spec
 * 4.1.4.2, 4.1.5.x), only on boards that can deliver MSIs (the bus's
 * pci_platform; none on riscv64, whose devices look exactly as before):
 * an MSI-X capability (pci/msix.h) with nqueues + 1 vectors, its table at
 * 0x000 and PBA at 0x800 of a separate 4 KiB 64-bit memory BAR 2.  The
 * driver maps events to vectors with config_msix_vector and
 * queue_msix_vector; a vector beyond the table reads back as
 * VIRTIO_NO_VECTOR (how the driver learns it was refused), and so does
 * every vector on a device without MSI-X.  While MSI-X is enabled, a used
 * buffer sends the queue's vector and a config change the config vector
 * (nothing for NO_VECTOR), and neither touches the ISR or INTx.
 *
 * Notifications: queue kicks are ignored (and logged) while bus mastering
 * is disabled.  On boards with ioeventfds (KVM), each queue's notify
 * address gets an eventfd that the board signals on a 16-bit guest write,
 * without the MMIO exit reaching Petrel; the eventfd's handler kicks the
 * queue on the device event loop.  They follow BAR 0 wherever the guest
 * maps it (pci_device_ops.bar_mapped) and are gone while memory decoding
 * is off.  Other write sizes still take the MMIO path.
 *
 * Snapshots (pci_device_ops quiesce/save/load; layout in virtio_pci.c):
 * quiesce first handles kicks still sitting in the ioeventfds (an eventfd's
 * count is not saved), then the device type's quiesce; the state is the
 * transport's registers (feature selects, queue select, ISR), the MSI-X
 * table and PBA, the core (virtio.h), then the device type's.  A load
 * checks all of it before applying any; the board's MSI routes and the
 * ioeventfds are host state, set up again (routes at first use, ioeventfds
 * when pci_bus_load decodes BAR 0 where the restored registers say).
 * Queue sizes must be powers of two (virtio 1.0 section 2.4; the ring
 * index arithmetic relies on it): other sizes are refused when written.
 */
#ifndef PETREL_VIRTIO_PCI_H
#define PETREL_VIRTIO_PCI_H

#include "core/evloop.h"
#include "pci/msix.h"
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
#define VIRTIO_PCI_MSIX_BAR 2           /* only on boards with MSI */
#define VIRTIO_PCI_MSIX_BAR_SIZE 0x1000
#define VIRTIO_PCI_MSIX_TABLE_OFF 0x000
#define VIRTIO_PCI_MSIX_PBA_OFF 0x800

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
    bool has_msix;              /* the board delivers MSIs: capability + BAR 2 */
    struct pci_msix msix;
    /* ioeventfds on the notify addresses (boards with ioeventfd) */
    struct virtio_pci_kick {
        struct virtio_pci *vp;
        unsigned q;
        int fd;                 /* eventfd, -1 until BAR 0 is first mapped */
    } kick[VIRTIO_MAX_QUEUES];
    bool kick_on_loop;          /* the eventfds are on the board's event loop */
    bool kick_assigned;         /* ... and registered at kick_base */
    uint64_t kick_base;         /* BAR 0's address while assigned */
};

/* Turn an initialised vp->vdev into a PCI device (not yet plugged). */
int virtio_pci_init(struct virtio_pci *vp, uint32_t class_code,
                    void (*free_fn)(struct virtio_pci *vp), struct err *e);

/* The BAR's register blocks (exposed for tests). */
extern const struct mmio_ops virtio_pci_bar_ops;

/* What a device needs from the machine it is plugged into. */
struct virtio_input;
struct vm;
struct display;

struct virtio_host {
    struct pci_bus *pb;
    const struct gmem *mem;
    struct evloop *loop;        /* device event loop (core/evloop.h) */
    /* Optional (NULL: unused).  The first virtio-keyboard created while
     * *keyboard is NULL stores itself here, so the board can press keys on
     * it (virtio_input_power_button, virtio/virtio_input.h), and sets it
     * back to NULL when the bus frees it: keep it next to the bus. */
    struct virtio_input **keyboard;
    /* Optional: the VM's display frontend (core/display.h): the first
     * virtio-gpu shows its scanout there, the first keyboard and tablet
     * take its input. */
    struct display *display;
    /* Optional: the VM whose metrics the devices' counters join
     * (vm_add_stat_source). */
    struct vm *vm;
};

/* Device types: create one from its options (the part of --device after
 * the name, "" if none) and plug it into h->pb.  The bus then owns it. */
int virtio_rng_create(const struct virtio_host *h, const char *opts, struct err *e);
/* virtio-console: socket=PATH or file=PATH (see virtio_console.c). */
int virtio_console_create(const struct virtio_host *h, const char *opts, struct err *e);
/* virtio-keyboard: virtio-input keyboard, no options (see virtio_input.c). */
int virtio_keyboard_create(const struct virtio_host *h, const char *opts, struct err *e);
/* virtio-tablet: virtio-input absolute pointer, no options (virtio_input.c). */
int virtio_tablet_create(const struct virtio_host *h, const char *opts, struct err *e);
/* virtio-gpu: 2D display, xres=,yres= (see virtio_gpu.c). */
int virtio_gpu_create(const struct virtio_host *h, const char *opts, struct err *e);
/* virtio-vsock: cid=N,uds=PATH, Firecracker's hybrid model (virtio_vsock.c). */
int virtio_vsock_create(const struct virtio_host *h, const char *opts, struct err *e);
/* virtio-balloon: amount_mib=, deflate_on_oom=, stats_polling_interval_s=,
 * free_page_reporting= (virtio_balloon.c); at most one per VM. */
int virtio_balloon_create(const struct virtio_host *h, const char *opts, struct err *e);
/* virtio-net: net=user (libslirp NAT), mac=, hostfwd= (see virtio_net.c). */
int virtio_net_create(const struct virtio_host *h, const char *opts, struct err *e);
/* virtio-net on a given backend (net/net.h; the device then owns it, also
 * on failure); mac NULL: the default.  For tests and later backends. */
struct net_backend;
int virtio_net_create_backend(const struct virtio_host *h, struct net_backend *be,
                              const uint8_t *mac, struct err *e);
/* A disk (--disk): virtio-blk over the block layer (block/block.h). */
struct disk_config;
int virtio_blk_create(const struct virtio_host *h, const struct disk_config *d, struct err *e);

/* `--device NAME[,OPTS]`: create a device.  -ENOENT for an unknown name
 * (with the list of known ones in e). */
int virtio_pci_create(const struct virtio_host *h, const char *spec, struct err *e);
/* Whether spec names a known device type (options are not checked). */
bool virtio_device_known(const char *spec);
/* Space-separated names virtio_pci_create knows, for help texts. */
#define VIRTIO_DEVICE_NAMES "virtio-rng virtio-console virtio-net virtio-keyboard virtio-tablet virtio-gpu virtio-vsock virtio-balloon"

#endif

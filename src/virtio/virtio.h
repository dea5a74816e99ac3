/* Virtio 1.x devices: the device core shared by every device type and
 * transport.
 *
 * Design
 * - Three layers.  A device type (virtio_rng.c; later blk, console, net)
 *   implements struct virtio_dev_ops: what to do when a queue is kicked,
 *   its config space, reset.  The device core (virtio.c) owns what the spec
 *   defines for every device: feature negotiation, the status state
 *   machine, reset, the queues (virtqueue.h) and the rules that keep a
 *   hostile driver from hurting anything but its own device.  A transport
 *   (virtio_pci.c: the modern PCI transport; the same core would serve
 *   virtio-mmio) maps registers onto the core and delivers interrupts
 *   through struct virtio_transport_ops.
 * - Only modern (1.x) devices: VIRTIO_F_VERSION_1 is offered and must be
 *   accepted, or FEATURES_OK does not stick.  Every device offers
 *   VIRTIO_RING_F_EVENT_IDX and VIRTIO_RING_F_INDIRECT_DESC on top of its
 *   own features.
 * - Requests: a device takes a chain (virtio_queue_pop), does the work and
 *   returns it (virtio_queue_push), then asks once per batch whether the
 *   driver wants an interrupt (virtio_queue_notify_used).  These are
 *   separate steps so that a device can hand a chain to an I/O thread and
 *   complete it later: today every device completes synchronously inside
 *   the queue kick (the riscv64 board runs harts and devices on one
 *   thread); once completions come from another thread, push + notify must
 *   run under the device's lock (the kvm engine's device lock today).
 * - The guest is hostile.  Anything malformed a driver does through a
 *   queue (a chain outside RAM, a loop, a chain longer than its table,
 *   nested indirect tables, empty or huge buffers, an avail index that
 *   jumps more than the queue size, rings outside RAM at enable time) marks
 *   that queue broken and the device DEVICE_NEEDS_RESET (status bit 0x40),
 *   raises a config-change interrupt and logs one rate-limited line.  The
 *   broken queue takes nothing more until the driver resets the device;
 *   the device's other queues and every other device go on, and the VMM
 *   never stops for it.  Driver mistakes on registers (bad queue sizes,
 *   writes out of order) are ignored and logged the same way.
 * - Status machine (spec 3.1): writing 0 resets the device (queues,
 *   features, interrupt status); otherwise the driver may only add bits;
 *   FEATURES_OK is refused (stays clear) when the driver accepted features
 *   the device does not offer or not VERSION_1; queues run once DRIVER_OK
 *   is set and FAILED is not; NEEDS_RESET is the device's own bit.
 * - Interrupts: the transport turns "queue q has used buffers" and "config
 *   changed" into its mechanism: INTx + ISR register on PCI today; MSI-X
 *   vectors (config_msix_vector / queue_msix_vector, kept in the core's
 *   per-queue `vector` already) are where a later MSI-X transport plugs in.
 */
#ifndef PETREL_VIRTIO_H
#define PETREL_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "core/log.h"
#include "core/memory.h"
#include "virtio/virtqueue.h"

/* device status bits */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER 0x02
#define VIRTIO_STATUS_DRIVER_OK 0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

/* feature bits */
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4

#define VIRTIO_NO_VECTOR 0xffff
#define VIRTIO_MAX_QUEUES 8

struct virtio_dev;
struct snap_writer;
struct snap_reader;
struct snap_file;

/* what a device type implements */
struct virtio_dev_ops {
    /* A queue was kicked (device live, queue enabled and not broken). */
    void (*queue_notify)(struct virtio_dev *vd, unsigned q);
    /* Device config space; NULL if the device has none. */
    uint32_t (*cfg_read)(struct virtio_dev *vd, unsigned off, unsigned size);
    void (*cfg_write)(struct virtio_dev *vd, unsigned off, unsigned size, uint32_t val);
    /* Device-specific reset (the core has reset the queues). */
    void (*reset)(struct virtio_dev *vd);
    /* Optional, snapshots (core/snapshot.h): settle before anything is
     * saved (virtio-blk waits for its requests in flight, a device holding
     * popped chains gives them back); then save/load the device type's own
     * state after the core's (pci_device_ops has the rules). */
    void (*quiesce)(struct virtio_dev *vd);
    void (*save)(struct virtio_dev *vd, struct snap_writer *w);
    int (*load)(struct virtio_dev *vd, struct snap_reader *r, struct snap_file *f,
                struct err *e);
};

/* what a transport implements */
struct virtio_transport_ops {
    void (*notify_queue)(struct virtio_dev *vd, unsigned q);
    void (*notify_config)(struct virtio_dev *vd);
};

struct virtio_dev {
    const char *name;
    uint16_t device_id;
    uint64_t host_features;     /* offered */
    uint64_t driver_features;   /* accepted by the driver */
    uint8_t status;
    uint8_t config_generation;
    uint32_t cfg_size;          /* bytes of device config space */
    unsigned nqueues;
    struct virtq vq[VIRTIO_MAX_QUEUES];
    uint16_t vector[VIRTIO_MAX_QUEUES];  /* MSI-X vector per queue (unused with INTx) */
    uint16_t config_vector;
    const struct gmem *mem;
    const struct virtio_dev_ops *ops;
    const struct virtio_transport_ops *transport;
    void *opaque;               /* the device type's state */
    void *transport_opaque;
    struct log_limit log;
};

/* Set up the core: nqueues queues of at most max_qsize entries each. */
void virtio_dev_init(struct virtio_dev *vd, const char *name, uint16_t device_id,
                     uint64_t features, unsigned nqueues, uint16_t max_qsize, uint32_t cfg_size,
                     const struct gmem *mem, const struct virtio_dev_ops *ops, void *opaque);

void virtio_reset(struct virtio_dev *vd);
void virtio_set_status(struct virtio_dev *vd, uint8_t status);
/* Driver features, 32 bits at a time; ignored once FEATURES_OK is set. */
void virtio_set_driver_features(struct virtio_dev *vd, unsigned sel, uint32_t val);
uint32_t virtio_get_host_features(const struct virtio_dev *vd, unsigned sel);
/* The driver enabled queue q: validate its rings (NEEDS_RESET if bad). */
void virtio_queue_enable(struct virtio_dev *vd, unsigned q);
/* The driver kicked queue q. */
void virtio_queue_kick(struct virtio_dev *vd, unsigned q);

bool virtio_live(const struct virtio_dev *vd);
static inline bool virtio_has_feature(const struct virtio_dev *vd, unsigned bit)
{
    return (vd->driver_features >> bit) & 1;
}

/* Device side of request processing (see the design notes). */
int virtio_queue_pop(struct virtio_dev *vd, unsigned q, struct virtq_chain *c);
void virtio_queue_push(struct virtio_dev *vd, unsigned q, const struct virtq_chain *c,
                       uint32_t written);
void virtio_queue_notify_used(struct virtio_dev *vd, unsigned q);

/* Snapshots (core/snapshot.h).  virtio_dev_save appends the core's state:
 * u64 offered features (checked on load), u64 driver features, u8 status,
 * u8 config generation, u16 config vector, u32 queue count, then per queue
 * u16 size, bool enabled, u64 desc/avail/used addresses, bool event_idx,
 * bool indirect, u16 last_avail, u16 used_idx, u16 signalled_used, bool
 * broken, u16 MSI-X vector.  A queue that is enabled and not broken must
 * have every chain it took returned (the device's quiesce made sure);
 * otherwise the save fails, as those chains could not be taken again.
 * Loading is two steps so the transport can check a whole section before
 * it changes anything: virtio_dev_load reads and checks into s (the same
 * offered features and queue count; a status the state machine can reach;
 * with FEATURES_OK, accepted features offered and VERSION_1 among them;
 * queues as virtq_restore wants them, their rings in RAM; vectors below
 * nvec, the MSI-X table size, 0 without MSI-X, or NO_VECTOR), recording
 * failures in r; virtio_dev_restore applies s without kicking anything. */
struct virtio_dev_snap {
    uint64_t driver_features;
    uint8_t status, config_generation;
    uint16_t config_vector;
    uint16_t vector[VIRTIO_MAX_QUEUES];
    struct virtq vq[VIRTIO_MAX_QUEUES];
};
void virtio_dev_save(struct virtio_dev *vd, struct snap_writer *w);
void virtio_dev_load(const struct virtio_dev *vd, struct snap_reader *r, unsigned nvec,
                     struct virtio_dev_snap *s);
void virtio_dev_restore(struct virtio_dev *vd, const struct virtio_dev_snap *s);

/* Mark the device broken: NEEDS_RESET, config interrupt, one log line. */
void virtio_needs_reset(struct virtio_dev *vd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Log a driver mistake that the device ignores (rate-limited). */
void virtio_log(struct virtio_dev *vd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif

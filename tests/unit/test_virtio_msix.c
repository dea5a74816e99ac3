/* The virtio PCI transport on a board that delivers MSIs and has
 * ioeventfds (the x86 PC on KVM), with a fake board: the MSI-X capability
 * and BAR 2 appear only there; config_msix_vector / queue_msix_vector keep
 * what fits the table and read back NO_VECTOR otherwise; with MSI-X enabled
 * a used buffer sends the queue's vector (never INTx, never the ISR), a
 * config change the config vector, NO_VECTOR nothing; with it disabled INTx
 * works as before; a reset unmaps the vectors.  The notify ioeventfds follow
 * BAR 0 (assigned where the guest maps it, moved with it, gone with memory
 * decoding, never two at one address while two devices swap BARs), their
 * eventfds run the queue on the event loop (and are ignored without bus
 * mastering), and teardown unbinds and closes them. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "core/evloop.h"
#include "pci/msix.h"

#include "unit.h"
#include "virtio_driver.h"

#define RING (RAM + 0x100000)

/* --- the fake board ---------------------------------------------------- */

static unsigned routes, fires, fired[8];
static uint64_t route_addr[8];
static uint32_t route_data[8];

static int b_route_new(void *o, struct err *e)
{
    (void)o;
    if (routes == 8)
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

struct iofd {
    uint64_t addr;
    unsigned len;
    int fd;
};
static struct iofd iofds[8];
static unsigned niofd, ioevent_calls;

static int b_ioeventfd(void *o, uint64_t addr, unsigned len, int fd, bool assign, struct err *e)
{
    (void)o;
    ioevent_calls++;
    if (assign) {
        if (niofd == 8)
            return err_set(e, -ENOSPC, "full");
        for (unsigned i = 0; i < niofd; i++)     /* as KVM: one per address */
            if (iofds[i].addr == addr) {
                CHECK(0, "two ioeventfds at 0x%llx", (unsigned long long)addr);
                return err_set(e, -EEXIST, "taken");
            }
        iofds[niofd++] = (struct iofd){ addr, len, fd };
        return 0;
    }
    for (unsigned i = 0; i < niofd; i++)
        if (iofds[i].addr == addr && iofds[i].len == len && iofds[i].fd == fd) {
            iofds[i] = iofds[--niofd];
            return 0;
        }
    CHECK(0, "deassign of an unknown ioeventfd at 0x%llx", (unsigned long long)addr);
    return -ENOENT;
}

static struct pci_platform plat = { .msi_route_new = b_route_new, .msi_route_set = b_route_set,
                                    .msi_fire = b_fire, .ioeventfd = b_ioeventfd };

static void board_reset(void)
{
    routes = fires = niofd = ioevent_calls = 0;
    memset(fired, 0, sizeof(fired));
}

/* --- helpers ------------------------------------------------------------- */

/* A 64-byte entropy request on queue 0. */
static void rng_request(struct drv *d)
{
    put_desc(d->desc[0], d->avail_idx[0] % d->qsize[0], d->buf, 64, VIRTQ_DESC_F_WRITE, 0);
    drv_avail(d, 0, d->avail_idx[0] % d->qsize[0]);
}

static unsigned find_cap(unsigned slot, unsigned id)
{
    for (unsigned p = cfg_rd(slot, PCI_CAPABILITY_LIST, 1); p; p = cfg_rd(slot, p + 1, 1))
        if (cfg_rd(slot, p, 1) == id)
            return p;
    return 0;
}

static uint64_t bar2(unsigned slot)
{
    return (cfg_rd(slot, PCI_BAR0 + 8, 4) & ~0xfull) | (uint64_t)cfg_rd(slot, PCI_BAR0 + 12, 4) << 32;
}

static void msix_entry(unsigned slot, unsigned v, uint32_t addr, uint32_t data, bool masked)
{
    uint64_t e = bar2(slot) + 16 * v;
    bus_write(&mmio, e, 4, addr);
    bus_write(&mmio, e + 4, 4, 0);
    bus_write(&mmio, e + 8, 4, data);
    bus_write(&mmio, e + 12, 4, masked);
}

/* --- tests ----------------------------------------------------------------- */

static void test_no_msi_board(void)
{
    setup();
    struct virtio_host h = { .pb = &pb, .mem = &mem };
    EQ(virtio_rng_create(&h, "", NULL), 0);
    EQ(find_cap(1, PCI_CAP_ID_MSIX), 0);
    EQ(cfg_rd(1, PCI_BAR0 + 8, 4), 0);          /* no BAR 2 */
    struct drv d;
    drv_probe(&d, 1, RING);
    EQ(drv_init(&d, STD_FEATURES, 1, 16), 0x0f);
    bar_wr(&d, COMMON(&d, MSIX), 2, 0);
    EQ(bar_rd(&d, COMMON(&d, MSIX), 2), VIRTIO_NO_VECTOR);
    bar_wr(&d, COMMON(&d, Q_MSIX), 2, 0);
    EQ(bar_rd(&d, COMMON(&d, Q_MSIX), 2), VIRTIO_NO_VECTOR);
    pci_bus_destroy(&pb);
}

static void test_msix_vectors(void)
{
    setup();
    board_reset();
    pci_bus_set_platform(&pb, &plat);
    struct virtio_host h = { .pb = &pb, .mem = &mem };
    EQ(virtio_rng_create(&h, "", NULL), 0);
    unsigned c = find_cap(1, PCI_CAP_ID_MSIX);
    CHECK(c != 0, "no MSI-X capability");
    EQ(cfg_rd(1, c + PCI_MSIX_FLAGS, 2), 1);    /* 2 vectors: queue + config */
    EQ(cfg_rd(1, c + PCI_MSIX_TABLE, 4), VIRTIO_PCI_MSIX_TABLE_OFF | 2);
    EQ(cfg_rd(1, c + PCI_MSIX_PBA, 4), VIRTIO_PCI_MSIX_PBA_OFF | 2);
    /* BAR 2: 64-bit, 4 KiB, placed after BAR 0 */
    EQ(cfg_rd(1, PCI_BAR0 + 8, 4), (uint32_t)(WIN + VIRTIO_PCI_BAR_SIZE) | PCI_BAR_MEM_TYPE_64);
    cfg_wr(1, PCI_BAR0 + 8, 4, 0xffffffff);
    EQ(cfg_rd(1, PCI_BAR0 + 8, 4), 0xfffff000 | PCI_BAR_MEM_TYPE_64);
    cfg_wr(1, PCI_BAR0 + 8, 4, (uint32_t)(WIN + VIRTIO_PCI_BAR_SIZE));
    struct drv d;
    drv_probe(&d, 1, RING);
    EQ(drv_init(&d, STD_FEATURES, 1, 16), 0x0f);

    /* vectors: what fits the table sticks, the rest reads NO_VECTOR */
    EQ(bar_rd(&d, COMMON(&d, MSIX), 2), VIRTIO_NO_VECTOR);
    bar_wr(&d, COMMON(&d, MSIX), 2, 1);
    EQ(bar_rd(&d, COMMON(&d, MSIX), 2), 1);
    bar_wr(&d, COMMON(&d, MSIX), 2, 2);
    EQ(bar_rd(&d, COMMON(&d, MSIX), 2), VIRTIO_NO_VECTOR);
    bar_wr(&d, COMMON(&d, MSIX), 2, 1);
    bar_wr(&d, COMMON(&d, Q_SELECT), 2, 0);
    bar_wr(&d, COMMON(&d, Q_MSIX), 2, 0x1234);
    EQ(bar_rd(&d, COMMON(&d, Q_MSIX), 2), VIRTIO_NO_VECTOR);
    bar_wr(&d, COMMON(&d, Q_MSIX), 2, 0);
    EQ(bar_rd(&d, COMMON(&d, Q_MSIX), 2), 0);
    bar_wr(&d, COMMON(&d, Q_SELECT), 2, 5);     /* no such queue */
    bar_wr(&d, COMMON(&d, Q_MSIX), 2, 1);
    EQ(bar_rd(&d, COMMON(&d, Q_MSIX), 2), VIRTIO_NO_VECTOR);
    bar_wr(&d, COMMON(&d, Q_SELECT), 2, 0);
    EQ(bar_rd(&d, COMMON(&d, Q_MSIX), 2), 0);

    /* MSI-X disabled: INTx as ever */
    rng_request(&d);
    drv_kick(&d, 0);
    EQ(used_idx(&d, 0), 1);
    CHECK(line(&d), "no INTx with MSI-X disabled");
    EQ(fires, 0);
    EQ(bar_rd(&d, d.isr, 1), VIRTIO_PCI_ISR_QUEUE);
    CHECK(!line(&d), "INTx after reading the ISR");

    /* enabled: the queue's vector, no ISR, no INTx */
    cfg_wr(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    msix_entry(1, 0, 0xfee00000, 0x41, false);
    msix_entry(1, 1, 0xfee00000, 0x42, false);
    cfg_wr(1, c + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
    rng_request(&d);
    drv_kick(&d, 0);
    EQ(used_idx(&d, 0), 2);
    EQ(fires, 1);
    EQ(fired[0], 1);
    EQ(route_data[0], 0x41);
    CHECK(!line(&d), "INTx with MSI-X enabled");
    EQ(bar_rd(&d, d.isr, 1), 0);
    /* the queue unmapped: nothing at all */
    bar_wr(&d, COMMON(&d, Q_MSIX), 2, VIRTIO_NO_VECTOR);
    rng_request(&d);
    drv_kick(&d, 0);
    EQ(used_idx(&d, 0), 3);
    EQ(fires, 1);
    CHECK(!line(&d), "INTx with MSI-X enabled and no vector");
    EQ(bar_rd(&d, d.isr, 1), 0);
    /* the queue on the config's vector: shared vectors work */
    bar_wr(&d, COMMON(&d, Q_MSIX), 2, 1);
    rng_request(&d);
    drv_kick(&d, 0);
    EQ(fires, 2);
    EQ(route_data[1], 0x42);
    /* a config change (NEEDS_RESET from a bad ring): the config vector */
    unsigned f1 = fired[1];
    put_desc(d.desc[0], 0, RAM + RAM_SIZE, 64, VIRTQ_DESC_F_WRITE, 0);   /* outside RAM */
    drv_avail(&d, 0, 0);
    drv_kick(&d, 0);
    CHECK(status(&d) & VIRTIO_STATUS_NEEDS_RESET, "no NEEDS_RESET");
    EQ(fired[1], f1 + 1);
    EQ(bar_rd(&d, d.isr, 1), 0);
    CHECK(!line(&d), "INTx for a config change with MSI-X enabled");
    /* reset: every vector NO_VECTOR again */
    bar_wr(&d, COMMON(&d, STATUS), 1, 0);
    EQ(bar_rd(&d, COMMON(&d, MSIX), 2), VIRTIO_NO_VECTOR);
    EQ(bar_rd(&d, COMMON(&d, Q_MSIX), 2), VIRTIO_NO_VECTOR);
    /* MSI-X disabled again: INTx again */
    cfg_wr(1, c + PCI_MSIX_FLAGS, 2, 0);
    EQ(drv_init(&d, STD_FEATURES, 1, 16), 0x0f);
    rng_request(&d);
    drv_kick(&d, 0);
    CHECK(line(&d), "no INTx after disabling MSI-X");
    pci_bus_destroy(&pb);
}

static bool fd_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

static void signal_fd(int fd)
{
    uint64_t one = 1;
    EQ(write(fd, &one, sizeof(one)), sizeof(one));
}

static void test_ioeventfd(void)
{
    setup();
    board_reset();
    struct err e;
    struct evloop *loop = evloop_new(&e);
    CHECK(loop != NULL, "evloop_new: %s", e.msg);
    if (!loop)
        return;
    plat.loop = loop;
    pci_bus_set_platform(&pb, &plat);
    struct virtio_host h = { .pb = &pb, .mem = &mem, .loop = loop };
    EQ(virtio_rng_create(&h, "", NULL), 0);
    EQ(niofd, 0);                               /* nothing until BAR 0 is decoded */
    struct drv d;
    drv_probe(&d, 1, RING);                     /* enables decoding */
    EQ(niofd, 1);
    EQ(iofds[0].addr, WIN + VIRTIO_PCI_NOTIFY_OFF);
    EQ(iofds[0].len, 2);
    int fd = iofds[0].fd;
    CHECK(fd_open(fd), "eventfd %d not open", fd);
    EQ(drv_init(&d, STD_FEATURES, 1, 16), 0x0f);

    /* the guest's notify write, as KVM signals it: runs on the loop */
    rng_request(&d);
    signal_fd(fd);
    EQ(used_idx(&d, 0), 0);                     /* not before dispatch */
    evloop_dispatch(loop);
    EQ(used_idx(&d, 0), 1);
    CHECK(line(&d), "no interrupt after an ioeventfd kick");
    bar_rd(&d, d.isr, 1);
    evloop_dispatch(loop);                      /* nothing more to read */
    EQ(used_idx(&d, 0), 1);
    /* the MMIO path still works (other access sizes go there) */
    rng_request(&d);
    drv_kick(&d, 0);
    EQ(used_idx(&d, 0), 2);
    /* without bus mastering the kick is ignored */
    cfg_wr(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    rng_request(&d);
    signal_fd(fd);
    evloop_dispatch(loop);
    EQ(used_idx(&d, 0), 2);
    cfg_wr(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    signal_fd(fd);
    evloop_dispatch(loop);
    EQ(used_idx(&d, 0), 3);

    /* the BAR moves: the ioeventfd follows, same eventfd */
    cfg_wr(1, PCI_BAR0, 4, (uint32_t)(WIN + 0x100000) | PCI_BAR_MEM_TYPE_64);
    EQ(niofd, 1);
    EQ(iofds[0].addr, WIN + 0x100000 + VIRTIO_PCI_NOTIFY_OFF);
    EQ(iofds[0].fd, fd);
    /* decoding off: gone; on again: back */
    cfg_wr(1, PCI_COMMAND, 2, PCI_COMMAND_MASTER);
    EQ(niofd, 0);
    cfg_wr(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    EQ(niofd, 1);
    EQ(iofds[0].addr, WIN + 0x100000 + VIRTIO_PCI_NOTIFY_OFF);
    /* teardown: unbound, closed */
    unsigned calls = ioevent_calls;
    pci_bus_destroy(&pb);
    EQ(niofd, 0);
    EQ(ioevent_calls, calls + 1);
    CHECK(!fd_open(fd), "eventfd %d still open after teardown", fd);
    evloop_free(loop);
    plat.loop = NULL;
}

/* Two devices swap their BAR 0 addresses the way a guest reassigning BARs
 * would (one register write at a time): their ioeventfds never collide and
 * end up at the swapped places, each still kicking its own device. */
static void test_ioeventfd_swap(void)
{
    setup();
    board_reset();
    struct err e;
    struct evloop *loop = evloop_new(&e);
    if (!loop)
        return;
    plat.loop = loop;
    pci_bus_set_platform(&pb, &plat);
    struct virtio_host h = { .pb = &pb, .mem = &mem, .loop = loop };
    EQ(virtio_rng_create(&h, "", NULL), 0);
    EQ(virtio_rng_create(&h, "", NULL), 0);
    struct drv d1, d2;
    drv_probe(&d1, 1, RING);
    drv_probe(&d2, 2, RING + 0x40000);
    EQ(niofd, 2);
    uint64_t a1 = d1.bar, a2 = d2.bar;
    CHECK(a1 != a2, "both BARs at 0x%llx", (unsigned long long)a1);
    cfg_wr(1, PCI_BAR0, 4, (uint32_t)a2 | PCI_BAR_MEM_TYPE_64);   /* conflict: 1 off */
    EQ(niofd, 1);
    EQ(iofds[0].addr, a2 + VIRTIO_PCI_NOTIFY_OFF);
    cfg_wr(2, PCI_BAR0, 4, (uint32_t)a1 | PCI_BAR_MEM_TYPE_64);   /* resolved */
    EQ(niofd, 2);
    int fd1 = -1, fd2 = -1;
    for (unsigned i = 0; i < niofd; i++) {
        if (iofds[i].addr == a2 + VIRTIO_PCI_NOTIFY_OFF)
            fd1 = iofds[i].fd;
        if (iofds[i].addr == a1 + VIRTIO_PCI_NOTIFY_OFF)
            fd2 = iofds[i].fd;
    }
    CHECK(fd1 >= 0 && fd2 >= 0 && fd1 != fd2, "ioeventfds not swapped");
    d1.bar = a2;
    d2.bar = a1;
    EQ(drv_init(&d1, STD_FEATURES, 1, 16), 0x0f);
    EQ(drv_init(&d2, STD_FEATURES, 1, 16), 0x0f);
    rng_request(&d1);
    rng_request(&d2);
    if (fd1 >= 0)
        signal_fd(fd1);
    evloop_dispatch(loop);
    EQ(used_idx(&d1, 0), 1);
    EQ(used_idx(&d2, 0), 0);
    pci_bus_destroy(&pb);
    EQ(niofd, 0);
    evloop_free(loop);
    plat.loop = NULL;
}

/* A board whose ioeventfds fail: notifications keep the MMIO path. */
static int bad_ioeventfd(void *o, uint64_t addr, unsigned len, int fd, bool assign, struct err *e)
{
    (void)o; (void)addr; (void)len; (void)fd; (void)assign;
    return err_set(e, -ENOSPC, "no more ioeventfds");
}

static void test_ioeventfd_refused(void)
{
    setup();
    struct err e;
    struct evloop *loop = evloop_new(&e);
    if (!loop)
        return;
    struct pci_platform p = { .ioeventfd = bad_ioeventfd, .loop = loop };
    pci_bus_set_platform(&pb, &p);
    struct virtio_host h = { .pb = &pb, .mem = &mem, .loop = loop };
    EQ(virtio_rng_create(&h, "", NULL), 0);
    EQ(find_cap(1, PCI_CAP_ID_MSIX), 0);        /* no MSI on this board */
    struct drv d;
    drv_probe(&d, 1, RING);
    EQ(drv_init(&d, STD_FEATURES, 1, 16), 0x0f);
    rng_request(&d);
    drv_kick(&d, 0);
    EQ(used_idx(&d, 0), 1);
    pci_bus_destroy(&pb);
    evloop_free(loop);
}

int main(void)
{
    struct err e;
    if (gmem_add_ram(&mem, RAM, RAM_SIZE, &e) < 0) {
        printf("test_virtio_msix: %s\n", e.msg);
        return 1;
    }
    test_no_msi_board();
    test_msix_vectors();
    test_ioeventfd();
    test_ioeventfd_swap();
    test_ioeventfd_refused();
    gmem_free(&mem);
    return unit_done("test_virtio_msix");
}

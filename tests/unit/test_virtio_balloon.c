/* Unit tests for virtio-balloon (src/virtio/virtio_balloon.c), driven by the
 * minimal guest driver (virtio_driver.h) on 4 MiB of anonymous RAM:
 * - identity and features per option; bad options;
 * - the target (amount_mib, vm_balloon_set_target: config generation and
 *   a config interrupt; larger than RAM refused) and the driver's actual;
 * - inflate: the pages named read back as zero afterwards (MADV_DONTNEED),
 *   others keep their data; PFNs outside RAM, a length that is no multiple
 *   of 4 and a writable buffer are ignored, and the device does not need a
 *   reset; deflate returns buffers;
 * - statistics: the buffer is kept (not used) until quiesce gives it back;
 *   known tags are stored, unknown ones skipped;
 * - free page reporting: the buffer's pages are dropped; the queue is
 *   number 2 without statistics, 3 with them;
 * - snapshots: target, actual and statistics round-trip; other options
 *   are refused. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "core/evloop.h"
#include "core/snapshot.h"
#include "core/vm.h"

#include "unit.h"

#include "virtio_driver.h"
#include "snap_test_util.h"

#define QSIZE 16
#define RINGS RAM                       /* 4 x 0x4000 */
#define BUFS (RAM + 0x20000)            /* PFN lists, stats */
#define PAGES (RAM + 0x100000)          /* pages given to the balloon */
#define PAGE 4096u

static struct evloop *loop;
static struct vm fake_vm;
static struct drv drv;

static struct drv_q vq[4];
static unsigned nq;

static int create(const char *spec, struct err *e)
{
    struct virtio_host h = { .pb = &pb, .mem = &mem, .loop = loop, .vm = &fake_vm };
    return virtio_pci_create(&h, spec, e);
}

static uint64_t offered(void)
{
    bar_wr(&drv, COMMON(&drv, DFSELECT), 4, 0);
    return bar_rd(&drv, COMMON(&drv, DF), 4) & 0xff;     /* the balloon's own bits */
}

/* The driver's init with `features` (besides VERSION_1) and n queues. */
static uint8_t up(uint64_t features, unsigned n)
{
    nq = n;
    uint8_t st = drv_up_queues(&drv, RINGS, features, vq, n, QSIZE);
    EQ(bar_rd(&drv, COMMON(&drv, NUMQ), 2), n);
    return st;
}

/* One buffer (a single descriptor) on queue qi, kicked. */
static void give(unsigned qi, uint64_t addr, uint32_t len, uint16_t flags)
{
    struct drv_q *q = &vq[qi];
    uint16_t head = (uint16_t)(q->avail_idx % QSIZE);
    put_desc(q->desc, head, addr, len, flags, 0);
    wr16(q->avail + 4 + 2ull * head, head);
    q->avail_idx++;
    wr16(q->avail + 2, q->avail_idx);
    bar_wr(&drv, drv.notify + (uint64_t)q->noff * drv.mult, 2, qi);
}

static uint16_t used(unsigned qi) { return rd16(vq[qi].used + 2); }

static void fill(unsigned first, unsigned n, uint8_t v)
{
    memset(gp(PAGES + (uint64_t)first * PAGE, (uint64_t)n * PAGE), v, (size_t)n * PAGE);
}

/* Whether page i is all v. */
static bool page_is(unsigned i, uint8_t v)
{
    const uint8_t *p = gp(PAGES + (uint64_t)i * PAGE, PAGE);
    for (unsigned k = 0; k < PAGE; k++)
        if (p[k] != v)
            return false;
    return true;
}

static uint32_t pfn(unsigned i) { return (uint32_t)((PAGES >> 12) + i); }

static struct vm_balloon_info info(void)
{
    struct vm_balloon_info bi;
    struct err e;
    memset(&bi, 0xee, sizeof(bi));
    EQ(vm_balloon_info(&fake_vm, &bi, &e), 0);
    return bi;
}

static void teardown(void)
{
    pci_bus_destroy(&pb);
    CHECK(fake_vm.balloon_ops == NULL, "the balloon did not unregister");
}

static void test_identity_and_options(void)
{
    setup();
    struct err e = { "" };
    EQ(create("virtio-balloon", &e), 0);
    EQ(cfg_rd(1, PCI_DEVICE_ID, 2), VIRTIO_PCI_DEVICE_BASE + 5);
    drv_probe(&drv, 1, RINGS);
    EQ(offered(), 0);                   /* no option, no feature */
    EQ(drv.device_len >= 8, 1);
    /* a second balloon is refused */
    CHECK(create("virtio-balloon", &e) == -EEXIST, "second balloon: %s", e.msg);
    teardown();

    setup();
    EQ(create("virtio-balloon,amount_mib=2,deflate_on_oom=on,stats_polling_interval_s=5,"
              "free_page_reporting=on", &e), 0);
    drv_probe(&drv, 1, RINGS);
    EQ(offered(), (1u << 1) | (1u << 2) | (1u << 5));
    EQ(bar_rd(&drv, drv.device, 4), 512);          /* num_pages */
    teardown();

    static const char *const bad[] = {
        "virtio-balloon,amount_mib=5",                  /* 4 MiB of RAM */
        "virtio-balloon,amount_mib=x", "virtio-balloon,amount_mib=-1",
        "virtio-balloon,stats_polling_interval_s=86401", "virtio-balloon,deflate_on_oom=maybe",
        "virtio-balloon,free_page_hinting=on",
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setup();
        e.msg[0] = 0;
        CHECK(create(bad[i], &e) < 0 && strstr(e.msg, "virtio-balloon"), "%s: '%s'", bad[i],
              e.msg);
        CHECK(fake_vm.balloon_ops == NULL, "%s: registered", bad[i]);
        pci_bus_destroy(&pb);
    }
}

static void test_target_and_actual(void)
{
    setup();
    struct err e = { "" };
    EQ(create("virtio-balloon,amount_mib=1", &e), 0);
    EQ(up(0, 2), 0x0f);
    EQ(bar_rd(&drv, drv.device, 4), 256);
    uint8_t gen = (uint8_t)bar_rd(&drv, COMMON(&drv, CFGGENERATION), 1);
    bar_rd(&drv, drv.isr, 1);           /* clear */
    EQ(vm_balloon_set_target(&fake_vm, 3, &e), 0);
    EQ(bar_rd(&drv, drv.device, 4), 768);
    CHECK((uint8_t)bar_rd(&drv, COMMON(&drv, CFGGENERATION), 1) != gen, "generation");
    EQ(bar_rd(&drv, drv.isr, 1) & VIRTIO_PCI_ISR_CONFIG, VIRTIO_PCI_ISR_CONFIG);
    CHECK(vm_balloon_set_target(&fake_vm, 5, &e) == -EINVAL && strstr(e.msg, "4 MiB"),
          "target > RAM: %s", e.msg);
    EQ(bar_rd(&drv, drv.device, 4), 768);
    /* the driver writes actual; num_pages is read-only */
    bar_wr(&drv, drv.device + 4, 4, 700);
    bar_wr(&drv, drv.device, 4, 1);
    EQ(bar_rd(&drv, drv.device, 4), 768);
    EQ(bar_rd(&drv, drv.device + 4, 4), 700);
    struct vm_balloon_info bi = info();
    EQ(bi.target_pages, 768);
    EQ(bi.actual_pages, 700);
    EQ(bi.ram_bytes, RAM_SIZE);
    EQ(bi.stats_interval_s, 0);
    /* statistics cannot be turned on after the start */
    EQ(vm_balloon_set_stats_interval(&fake_vm, 1, &e), -EINVAL);
    /* a reset: the new driver owns all of RAM */
    bar_wr(&drv, COMMON(&drv, STATUS), 1, 0);
    EQ(info().actual_pages, 0);
    teardown();
    CHECK(vm_balloon_set_target(&fake_vm, 1, &e) == -ENODEV, "no balloon: %s", e.msg);
}

static void test_inflate_deflate(void)
{
    setup();
    struct err e = { "" };
    EQ(create("virtio-balloon", &e), 0);
    EQ(up(0, 2), 0x0f);
    fill(0, 16, 0xaa);
    uint32_t list[8] = { pfn(0), pfn(1), pfn(2), pfn(3), 0x7fffffffu, pfn(6), pfn(10), pfn(9) };
    memcpy(gp(BUFS, sizeof(list)), list, sizeof(list));
    give(0, BUFS, sizeof(list), 0);
    EQ(used(0), 1);
    for (unsigned i = 0; i < 12; i++) {
        bool gone = i <= 3 || i == 6 || i == 9 || i == 10;
        CHECK(page_is(i, gone ? 0 : 0xaa), "page %u %s", i, gone ? "kept" : "lost");
    }
    struct vm_balloon_info bi = info();
    EQ(bi.inflated_pages, 7);
    EQ(bi.discarded_bytes, 7ull * PAGE);
    /* 6 bytes: one PFN, the rest ignored; a writable buffer: nothing */
    fill(0, 16, 0xaa);
    give(0, BUFS + 4 * 5, 6, 0);
    EQ(used(0), 2);
    CHECK(page_is(6, 0) && page_is(7, 0xaa), "odd-sized buffer");
    give(0, BUFS, 16, VIRTQ_DESC_F_WRITE);
    EQ(used(0), 3);
    CHECK(page_is(0, 0xaa), "a writable inflate buffer was used");
    EQ(info().inflated_pages, 8);
    /* deflate: buffers come back, nothing dropped */
    give(1, BUFS, 8, 0);
    EQ(used(1), 1);
    EQ(info().deflated_pages, 2);
    CHECK(!(status(&drv) & VIRTIO_STATUS_NEEDS_RESET), "the device needs a reset");
    teardown();
}

static void put_stat(uint64_t at, uint16_t tag, uint64_t val)
{
    memcpy(gp(at, 2), &tag, 2);
    memcpy(gp(at + 2, 8), &val, 8);
}

static void test_stats_and_reporting(void)
{
    setup();
    struct err e = { "" };
    EQ(create("virtio-balloon,stats_polling_interval_s=60,free_page_reporting=on", &e), 0);
    EQ(up((1u << 1) | (1u << 5), 4), 0x0f);
    put_stat(BUFS, 4, 1234);            /* free */
    put_stat(BUFS + 10, 5, 5678);       /* total */
    put_stat(BUFS + 20, 99, 1);         /* unknown */
    give(2, BUFS, 30, 0);
    EQ(used(2), 0);                     /* kept until the next poll */
    struct vm_balloon_info bi = info();
    EQ(bi.stats_have, (1u << 4) | (1u << 5));
    EQ(bi.stats[4], 1234);
    EQ(bi.stats[5], 5678);
    EQ(bi.stats_interval_s, 60);
    /* reporting is queue 3: the pages of a writable buffer are dropped */
    fill(20, 4, 0xbb);
    give(3, PAGES + 20ull * PAGE, 2 * PAGE, VIRTQ_DESC_F_WRITE);
    EQ(used(3), 1);
    CHECK(page_is(20, 0) && page_is(21, 0) && page_is(22, 0xbb), "reported pages");
    EQ(info().reported_bytes, 2 * PAGE);
    /* the interval changes; it cannot be turned off */
    EQ(vm_balloon_set_stats_interval(&fake_vm, 2, &e), 0);
    EQ(vm_balloon_set_stats_interval(&fake_vm, 0, &e), -EINVAL);
    /* quiesce (a snapshot) gives the stats buffer back */
    pci_bus_quiesce(&pb);
    EQ(used(2), 1);
    teardown();

    /* without statistics, reporting is queue 2 */
    setup();
    EQ(create("virtio-balloon,free_page_reporting=on", &e), 0);
    EQ(up(1u << 5, 3), 0x0f);
    fill(30, 1, 0xcc);
    give(2, PAGES + 30ull * PAGE, PAGE, VIRTQ_DESC_F_WRITE);
    EQ(used(2), 1);
    CHECK(page_is(30, 0), "reported page on queue 2");
    teardown();
}

static void test_snapshot(void)
{
    setup();
    struct err e = { "" };
    const char *spec = "virtio-balloon,deflate_on_oom=on,stats_polling_interval_s=3";
    EQ(create(spec, &e), 0);
    EQ(up((1u << 1) | (1u << 2), 3), 0x0f);
    EQ(vm_balloon_set_target(&fake_vm, 2, &e), 0);
    bar_wr(&drv, drv.device + 4, 4, 300);
    put_stat(BUFS, 6, 4321);
    give(2, BUFS, 10, 0);
    struct snap_writer w;
    snapw_init(&w);
    w.e = &e;
    pci_bus_quiesce(&pb);
    pci_bus_save(&pb, &w);
    struct snap_file f;
    int ret = snap_test_finish(&w, &f, &e);
    CHECK(ret == 0, "save: %s", e.msg);
    snapw_free(&w);
    teardown();
    /* other options: refused */
    setup();
    EQ(create("virtio-balloon,stats_polling_interval_s=3", &e), 0);
    EQ(pci_bus_load(&pb, &f, &e), -EINVAL);
    CHECK(strstr(e.msg, "features") != NULL, "message: %s", e.msg);
    teardown();
    setup();
    EQ(create("virtio-balloon,deflate_on_oom=on", &e), 0);
    EQ(pci_bus_load(&pb, &f, &e), -EINVAL);
    teardown();
    /* the same: target, actual and statistics are back */
    setup();
    EQ(create(spec, &e), 0);
    ret = pci_bus_load(&pb, &f, &e);
    CHECK(ret == 0, "load: %s", e.msg);
    struct vm_balloon_info bi = info();
    EQ(bi.target_pages, 512);
    EQ(bi.actual_pages, 300);
    EQ(bi.stats_have, 1u << 6);
    EQ(bi.stats[6], 4321);
    EQ(bi.stats_interval_s, 3);
    snap_file_free(&f);
    teardown();
}

int main(void)
{
    if (gmem_add_ram(&mem, RAM, RAM_SIZE, NULL) < 0)
        return 1;
    loop = evloop_new(NULL);
    if (!loop)
        return 1;
    pthread_mutex_init(&fake_vm.dev_lock, NULL);
    fake_vm.board = &fake_vm;           /* "running" for vm_balloon_* */
    test_identity_and_options();
    test_target_and_actual();
    test_inflate_deflate();
    test_stats_and_reporting();
    test_snapshot();
    snap_test_cleanup();
    evloop_free(loop);
    gmem_free(&mem);
    return unit_done("test_virtio_balloon");
}

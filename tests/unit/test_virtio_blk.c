/* Unit tests for virtio-blk and the raw block driver, driven the way the
 * guest's driver does (tests/unit/virtio_driver.h) on a real image file
 * with real io_uring completions through the event loop: reads, writes with
 * split headers and buffers, flush, GET_ID, discard, write-zeroes, many
 * requests in flight, read-only disks, every kind of bad request (which
 * must fail that request only), reset with I/O in flight, and the image
 * checks of --disk (parsing, missing/odd-sized/empty/locked images). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block.h"
#include "core/evloop.h"

#include "unit.h"

#include "virtio_driver.h"

#define IMG_SIZE (1u << 20)
#define F_SEG_MAX 2
#define F_RO 5
#define F_BLK_SIZE 6
#define F_FLUSH 9
#define F_DISCARD 13
#define F_WZ 14
#define BLK_FEATURES (STD_FEATURES | 1ull << F_SEG_MAX | 1ull << F_BLK_SIZE | 1ull << F_FLUSH | \
                      1ull << F_DISCARD | 1ull << F_WZ)

enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11, T_WZ = 13 };
enum { S_OK = 0, S_IOERR = 1, S_UNSUPP = 2 };

static struct evloop *loop;
static char img[64];
static int img_fd = -1;

/* guest buffers */
#define HDR (RAM + 0x100000)
#define DATA (RAM + 0x110000)
#define STATUS (RAM + 0x1f0000)

static void make_image(uint32_t size)
{
    strcpy(img, "/tmp/petrel-blk-XXXXXX");
    img_fd = mkstemp(img);
    CHECK(img_fd >= 0, "mkstemp");
    uint8_t *p = malloc(size);
    for (uint32_t i = 0; i < size; i++)
        p[i] = (uint8_t)(i * 7 + i / 512);
    EQ(pwrite(img_fd, p, size, 0), size);
    free(p);
}

static void drop_image(void)
{
    close(img_fd);
    unlink(img);
}

static uint8_t img_byte(uint32_t off)
{
    uint8_t b = 0xee;
    EQ(pread(img_fd, &b, 1, off), 1);
    return b;
}

static const char *plug_extra = "";     /* more --disk options for plug_disk */

/* Plug a disk at slot 1 and bring its driver up. */
static void plug_disk(struct drv *d, bool readonly, uint64_t features)
{
    setup();
    struct disk_config dc;
    char spec[160];
    snprintf(spec, sizeof(spec), "%s,serial=petrel-serial-1%s%s", img,
             readonly ? ",readonly=on" : "", plug_extra);
    EQ(disk_config_parse(&dc, spec, NULL), 0);
    struct err e = { "" };
    int ret = virtio_blk_create(&(struct virtio_host){ .pb = &pb, .mem = &mem, .loop = loop },
                                &dc, &e);
    CHECK(ret == 0, "virtio_blk_create: %s", e.msg);
    drv_probe(d, 1, RAM);
    EQ(drv_init(d, features, 1, 128), 0x0f);
}

/* Wait (bounded) for the used index to reach `want`, running the loop. */
static bool wait_used(struct drv *d, uint16_t want)
{
    for (int i = 0; i < 5000; i++) {
        if (used_idx(d, 0) == want)
            return true;
        struct pollfd p = { .fd = evloop_fd(loop), .events = POLLIN };
        poll(&p, 1, 1);
        evloop_dispatch(loop);
    }
    return used_idx(d, 0) == want;
}

static void put_hdr(uint64_t at, uint32_t type, uint64_t sector)
{
    uint8_t h[16] = { 0 };
    memcpy(h, &type, 4);
    memcpy(h + 8, &sector, 8);
    memcpy(gp(at, 16), h, 16);
}

static uint16_t head_next;

/* A request: header, optional data (writable for reads), status.
 * Returns its used length once complete; *st gets the status byte. */
static uint32_t do_req(struct drv *d, uint32_t type, uint64_t sector, uint32_t len, uint8_t *st)
{
    uint16_t h = (uint16_t)((head_next += 3) % 120);
    put_hdr(HDR, type, sector);
    *(uint8_t *)gp(STATUS, 1) = 0xaa;
    bool wr = type == T_IN || type == T_GET_ID;
    put_desc(d->desc[0], h, HDR, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(h + 1));
    if (len) {
        put_desc(d->desc[0], h + 1u, DATA, len, VIRTQ_DESC_F_NEXT | (wr ? VIRTQ_DESC_F_WRITE : 0),
                 (uint16_t)(h + 2));
        put_desc(d->desc[0], h + 2u, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    } else {
        put_desc(d->desc[0], h + 1u, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    }
    uint16_t before = used_idx(d, 0);
    drv_avail(d, 0, h);
    drv_kick(d, 0);
    CHECK(wait_used(d, (uint16_t)(before + 1)), "request type %u completes", type);
    *st = *(uint8_t *)gp(STATUS, 1);
    uint32_t ulen = rd32(d->used[0] + 4 + 8ull * (before % d->qsize[0]) + 4);
    EQ(rd32(d->used[0] + 4 + 8ull * (before % d->qsize[0])), h);
    return ulen;
}

static uint32_t cfg32(struct drv *d, unsigned off) { return (uint32_t)bar_rd(d, d->device + off, 4); }

static void test_config_and_io(void)
{
    make_image(IMG_SIZE);
    struct drv d;
    plug_disk(&d, false, BLK_FEATURES);
    EQ(cfg32(&d, 0), IMG_SIZE / 512);
    EQ(cfg32(&d, 4), 0);
    EQ(cfg32(&d, 20), 512);
    EQ(cfg32(&d, 12), 254);
    bar_wr(&d, COMMON(&d, DFSELECT), 4, 0);
    uint32_t f = (uint32_t)bar_rd(&d, COMMON(&d, DF), 4);
    CHECK((f & (1u << F_FLUSH)) && (f & (1u << F_DISCARD)) && (f & (1u << F_WZ)) &&
          !(f & (1u << F_RO)), "features 0x%x", f);

    uint8_t st;
    /* read 4 KiB at sector 3 */
    memset(gp(DATA, 4096), 0, 4096);
    EQ(do_req(&d, T_IN, 3, 4096, &st), 4097);
    EQ(st, S_OK);
    uint8_t *g = gp(DATA, 4096);
    int bad = 0;
    for (uint32_t i = 0; i < 4096; i++)
        bad += g[i] != img_byte(3 * 512 + i);
    EQ(bad, 0);

    /* write 8 KiB at sector 10, header split over two descriptors and data
     * over three (one of them 512 bytes) */
    for (uint32_t i = 0; i < 8192; i++)
        g = gp(DATA, 8192), g[i] = (uint8_t)(0x5a ^ i);
    uint8_t h[16] = { 1, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0 };
    memcpy(gp(HDR, 16), h, 16);
    put_desc(d.desc[0], 50, HDR, 5, VIRTQ_DESC_F_NEXT, 51);
    put_desc(d.desc[0], 51, HDR + 5, 11, VIRTQ_DESC_F_NEXT, 52);
    put_desc(d.desc[0], 52, DATA, 512, VIRTQ_DESC_F_NEXT, 53);
    put_desc(d.desc[0], 53, DATA + 512, 4096, VIRTQ_DESC_F_NEXT, 54);
    put_desc(d.desc[0], 54, DATA + 4608, 3584, VIRTQ_DESC_F_NEXT, 55);
    put_desc(d.desc[0], 55, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    uint16_t before = used_idx(&d, 0);
    drv_avail(&d, 0, 50);
    drv_kick(&d, 0);
    CHECK(wait_used(&d, (uint16_t)(before + 1)), "split write completes");
    EQ(*(uint8_t *)gp(STATUS, 1), S_OK);
    bad = 0;
    for (uint32_t i = 0; i < 8192; i++)
        bad += img_byte(10 * 512 + i) != (uint8_t)(0x5a ^ i);
    EQ(bad, 0);
    EQ(img_byte(10 * 512 - 1), (uint8_t)((10 * 512 - 1) * 7 + 9)); /* neighbours intact */
    EQ(img_byte(10 * 512 + 8192), (uint8_t)((10 * 512 + 8192) * 7 + 26));

    /* flush, GET_ID */
    EQ(do_req(&d, T_FLUSH, 0, 0, &st), 1);
    EQ(st, S_OK);
    memset(gp(DATA, 20), 0xff, 20);
    EQ(do_req(&d, T_GET_ID, 0, 20, &st), 21);
    EQ(st, S_OK);
    CHECK(!memcmp(gp(DATA, 20), "petrel-serial-1\0\0\0\0\0", 20), "serial");

    /* discard sectors 100..107, write-zeroes 200..203 (no unmap) and
     * 300..301 (unmap): the file reads zeroes there, not next to them */
    struct { uint64_t sector; uint32_t n, flags; } r1 = { 100, 8, 0 }, r2 = { 200, 4, 0 },
                                                   r3 = { 300, 2, 1 };
    memcpy(gp(DATA, 16), &r1, 16);
    EQ(do_req(&d, T_DISCARD, 0, 16, &st), 1);
    EQ(st, S_OK);
    memcpy(gp(DATA, 16), &r2, 16);
    EQ(do_req(&d, T_WZ, 0, 16, &st), 1);
    EQ(st, S_OK);
    memcpy(gp(DATA, 16), &r3, 16);
    EQ(do_req(&d, T_WZ, 0, 16, &st), 1);
    EQ(st, S_OK);
    int nz = 0;
    for (uint32_t i = 0; i < 8 * 512; i++)
        nz += img_byte(100 * 512 + i) != 0;
    for (uint32_t i = 0; i < 4 * 512; i++)
        nz += img_byte(200 * 512 + i) != 0;
    for (uint32_t i = 0; i < 2 * 512; i++)
        nz += img_byte(300 * 512 + i) != 0;
    EQ(nz, 0);
    CHECK(img_byte(108 * 512) != 0 || img_byte(108 * 512 + 1) != 0, "discard stays in range");
    EQ(img_byte(204 * 512 + 1), (uint8_t)((204 * 512 + 1) * 7 + 204));
    pci_bus_destroy(&pb);
    drop_image();
}

static void test_bad_requests(void)
{
    make_image(IMG_SIZE);
    struct drv d;
    plug_disk(&d, false, BLK_FEATURES);
    uint8_t st;
    const uint32_t cap = IMG_SIZE / 512;
    EQ(do_req(&d, T_IN, cap - 1, 1024, &st), 1);      /* runs past the end */
    EQ(st, S_IOERR);
    EQ(do_req(&d, T_OUT, cap, 512, &st), 1);
    EQ(st, S_IOERR);
    EQ(do_req(&d, T_IN, ~0ull, 512, &st), 1);         /* sector overflow */
    EQ(st, S_IOERR);
    EQ(do_req(&d, T_IN, 0, 100, &st), 1);             /* not a sector multiple */
    EQ(st, S_IOERR);
    EQ(do_req(&d, T_OUT, 0, 0, &st), 1);              /* empty write: fine */
    EQ(st, S_OK);
    EQ(do_req(&d, 77, 0, 0, &st), 1);                 /* unknown type */
    EQ(st, S_UNSUPP);
    struct { uint64_t sector; uint32_t n, flags; } r[2] = { { 0, 8, 1 }, { 8, 8, 0 } };
    memcpy(gp(DATA, 32), r, 32);
    EQ(do_req(&d, T_DISCARD, 0, 16, &st), 1);         /* discard with unmap flag */
    EQ(st, S_UNSUPP);
    r[0].flags = 0;
    memcpy(gp(DATA, 32), r, 32);
    EQ(do_req(&d, T_DISCARD, 0, 32, &st), 1);         /* two ranges */
    EQ(st, S_IOERR);
    r[0] = (typeof(r[0])){ cap - 4, 8, 0 };
    memcpy(gp(DATA, 16), r, 16);
    EQ(do_req(&d, T_WZ, 0, 16, &st), 1);              /* range past the end */
    EQ(st, S_IOERR);
    r[0] = (typeof(r[0])){ 0, 8, 6 };
    memcpy(gp(DATA, 16), r, 16);
    EQ(do_req(&d, T_WZ, 0, 16, &st), 1);              /* reserved flags */
    EQ(st, S_UNSUPP);

    /* a header of 8 bytes only */
    put_desc(d.desc[0], 60, HDR, 8, VIRTQ_DESC_F_NEXT, 61);
    put_desc(d.desc[0], 61, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    uint16_t before = used_idx(&d, 0);
    drv_avail(&d, 0, 60);
    drv_kick(&d, 0);
    CHECK(wait_used(&d, (uint16_t)(before + 1)), "short header completes");
    EQ(*(uint8_t *)gp(STATUS, 1), S_IOERR);
    /* no writable byte at all: returned with length 0 */
    put_hdr(HDR, T_IN, 0);
    put_desc(d.desc[0], 62, HDR, 16, 0, 0);
    before = used_idx(&d, 0);
    drv_avail(&d, 0, 62);
    drv_kick(&d, 0);
    CHECK(wait_used(&d, (uint16_t)(before + 1)), "status-less request completes");
    EQ(rd32(d.used[0] + 4 + 8ull * (before % d.qsize[0]) + 4), 0);

    /* the device is still fine and the image untouched by all of it */
    EQ(status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
    EQ(do_req(&d, T_IN, 0, 512, &st), 513);
    EQ(st, S_OK);
    EQ(img_byte(0), 0);
    EQ(img_byte(513), (uint8_t)(513 * 7 + 1));
    pci_bus_destroy(&pb);
    drop_image();
}

/* 100 writes in flight at once (one kick), each to its own sector. */
static void test_many_in_flight(void)
{
    make_image(IMG_SIZE);
    struct drv d;
    plug_disk(&d, false, BLK_FEATURES);
    enum { N = 100 };
    for (unsigned i = 0; i < N; i++) {
        uint64_t hdr = HDR + 16ull * i, data = DATA + 512ull * i, stat = STATUS + i;
        put_hdr(hdr, T_OUT, 1000 + i);
        memset(gp(data, 512), (int)(i + 1), 512);
        *(uint8_t *)gp(stat, 1) = 0xaa;
        uint64_t tbl = RAM + 0x80000 + 48ull * i;   /* an indirect table per request */
        put_desc(tbl, 0, hdr, 16, VIRTQ_DESC_F_NEXT, 1);
        put_desc(tbl, 1, data, 512, VIRTQ_DESC_F_NEXT, 2);
        put_desc(tbl, 2, stat, 1, VIRTQ_DESC_F_WRITE, 0);
        put_desc(d.desc[0], i, tbl, 48, VIRTQ_DESC_F_INDIRECT, 0);
        drv_avail(&d, 0, (uint16_t)i);
    }
    drv_kick(&d, 0);
    CHECK(wait_used(&d, N), "%u writes complete (used idx %u)", N, used_idx(&d, 0));
    int bad = 0;
    for (unsigned i = 0; i < N; i++) {
        bad += *(uint8_t *)gp(STATUS + i, 1) != S_OK;
        bad += img_byte((1000 + i) * 512 + 17) != (uint8_t)(i + 1);
    }
    EQ(bad, 0);
    pci_bus_destroy(&pb);
    drop_image();
}

/* A rate-limited disk (iops=4 per 40 ms: 100 ops/s, a bucket of 4): of 12
 * requests kicked at once, 4 go at once, the rest wait in the ring and are
 * taken as the limiter's timer refills the bucket; none is dropped. */
static void test_rate_limited(void)
{
    make_image(IMG_SIZE);
    struct drv d;
    plug_extra = ",iops=4,iops_refill=40";
    plug_disk(&d, false, BLK_FEATURES);
    plug_extra = "";
    enum { N = 12 };
    for (unsigned i = 0; i < N; i++) {
        uint64_t hdr = HDR + 16ull * i, data = DATA + 512ull * i, stat = STATUS + i;
        put_hdr(hdr, T_OUT, 2000 + i);
        memset(gp(data, 512), (int)(i + 0x40), 512);
        *(uint8_t *)gp(stat, 1) = 0xaa;
        put_desc(d.desc[0], (uint16_t)(3 * i), hdr, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(3 * i + 1));
        put_desc(d.desc[0], (uint16_t)(3 * i + 1), data, 512, VIRTQ_DESC_F_NEXT,
                 (uint16_t)(3 * i + 2));
        put_desc(d.desc[0], (uint16_t)(3 * i + 2), stat, 1, VIRTQ_DESC_F_WRITE, 0);
        drv_avail(&d, 0, (uint16_t)(3 * i));
    }
    uint64_t t0 = time_now_ns();
    drv_kick(&d, 0);
    CHECK(wait_used(&d, 4), "the bucket's 4 complete (used idx %u)", used_idx(&d, 0));
    CHECK(used_idx(&d, 0) <= 6, "the others wait (used idx %u)", used_idx(&d, 0));
    CHECK(wait_used(&d, N), "all %u complete in the end (used idx %u)", N, used_idx(&d, 0));
    uint64_t ms = (time_now_ns() - t0) / 1000000;
    CHECK(ms >= 75 && ms < 2000, "8 requests over the bucket at 100/s took %llu ms",
          (unsigned long long)ms);
    int bad = 0;
    for (unsigned i = 0; i < N; i++) {
        bad += *(uint8_t *)gp(STATUS + i, 1) != S_OK;
        bad += img_byte((2000 + i) * 512 + 5) != (uint8_t)(i + 0x40);
    }
    EQ(bad, 0);
    pci_bus_destroy(&pb);
    drop_image();
}

static void test_readonly(void)
{
    make_image(IMG_SIZE);
    struct drv d;
    plug_disk(&d, true, STD_FEATURES | 1ull << F_RO | 1ull << F_FLUSH);
    bar_wr(&d, COMMON(&d, DFSELECT), 4, 0);
    uint32_t f = (uint32_t)bar_rd(&d, COMMON(&d, DF), 4);
    CHECK((f & (1u << F_RO)) && !(f & (1u << F_DISCARD)) && !(f & (1u << F_WZ)),
          "read-only features 0x%x", f);
    uint8_t st;
    memset(gp(DATA, 512), 0x77, 512);
    EQ(do_req(&d, T_OUT, 2, 512, &st), 1);
    EQ(st, S_IOERR);
    EQ(img_byte(2 * 512 + 5), (uint8_t)((2 * 512 + 5) * 7 + 2));
    EQ(do_req(&d, T_IN, 2, 512, &st), 513);
    EQ(st, S_OK);
    struct { uint64_t sector; uint32_t n, flags; } r = { 0, 8, 0 };
    memcpy(gp(DATA, 16), &r, 16);
    EQ(do_req(&d, T_DISCARD, 0, 16, &st), 1);         /* not negotiated */
    EQ(st, S_UNSUPP);
    /* a second reader may share it; a writer may not */
    struct disk_config dc;
    char spec[128];
    snprintf(spec, sizeof(spec), "%s,readonly=on", img);
    EQ(disk_config_parse(&dc, spec, NULL), 0);
    struct err e = { "" };
    struct blk *b = blk_open(&dc, NULL, &e);
    CHECK(b != NULL, "second reader: %s", e.msg);
    blk_close(b);
    pci_bus_destroy(&pb);
    drop_image();
}

/* Reset with writes in flight: their completions are dropped. */
static void test_reset_in_flight(void)
{
    make_image(IMG_SIZE);
    struct drv d;
    plug_disk(&d, false, BLK_FEATURES);
    for (unsigned i = 0; i < 8; i++) {
        put_hdr(HDR + 16ull * i, T_OUT, 8 * i);
        put_desc(d.desc[0], 3 * i, HDR + 16ull * i, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(3 * i + 1));
        put_desc(d.desc[0], 3 * i + 1, DATA, 4096, VIRTQ_DESC_F_NEXT, (uint16_t)(3 * i + 2));
        put_desc(d.desc[0], 3 * i + 2, STATUS + i, 1, VIRTQ_DESC_F_WRITE, 0);
        drv_avail(&d, 0, (uint16_t)(3 * i));
    }
    drv_kick(&d, 0);
    bar_wr(&d, COMMON(&d, STATUS), 1, 0);
    memset(gp(d.used[0], 64), 0, 64);
    for (int i = 0; i < 50; i++) {
        struct pollfd p = { .fd = evloop_fd(loop), .events = POLLIN };
        poll(&p, 1, 2);
        evloop_dispatch(loop);
    }
    EQ(used_idx(&d, 0), 0);
    /* and the device works again after re-initialisation */
    EQ(drv_init(&d, BLK_FEATURES, 1, 128), 0x0f);
    uint8_t st;
    EQ(do_req(&d, T_IN, 0, 512, &st), 513);
    EQ(st, S_OK);
    pci_bus_destroy(&pb);
    drop_image();
}

static void test_disk_options_and_images(void)
{
    struct disk_config dc;
    struct err e = { "" };
    char s1[] = "a,,b.img,format=raw,readonly=on,serial=XYZ";
    EQ(disk_config_parse(&dc, s1, &e), 0);
    CHECK(!strcmp(dc.path, "a,b.img") && dc.readonly && !strcmp(dc.serial, "XYZ"), "parsed %s",
          dc.path);
    char s2[] = "x.img,format=qcow9";
    EQ(disk_config_parse(&dc, s2, &e), -EINVAL);
    CHECK(strstr(e.msg, "qcow9") != NULL, "%s", e.msg);
    char s3[] = "x.img,readonly=maybe";
    EQ(disk_config_parse(&dc, s3, &e), -EINVAL);
    char s4[] = "x.img,colour=blue";
    EQ(disk_config_parse(&dc, s4, &e), -EINVAL);
    CHECK(strstr(e.msg, "colour") != NULL, "%s", e.msg);
    char s5[] = ",readonly=on";
    EQ(disk_config_parse(&dc, s5, &e), -EINVAL);
    char s6[] = "x.img,serial=123456789012345678901";
    EQ(disk_config_parse(&dc, s6, &e), -EINVAL);
    char s7[] = "x.img,bps=4M,iops=100,bps_burst=1G,iops_refill=50";
    EQ(disk_config_parse(&dc, s7, &e), 0);
    EQ(dc.limit.bw.size, 4 << 20);
    EQ(dc.limit.bw.refill_ms, 1000);
    EQ(dc.limit.bw.one_time_burst, 1 << 30);
    EQ(dc.limit.ops.size, 100);
    EQ(dc.limit.ops.refill_ms, 50);
    char s8[] = "x.img,bps=abc";
    EQ(disk_config_parse(&dc, s8, &e), -EINVAL);
    CHECK(strstr(e.msg, "--disk x.img: bps=abc: expected a number of bytes") != NULL, "%s", e.msg);
    char s9[] = "x.img,iops=-1";
    EQ(disk_config_parse(&dc, s9, &e), -EINVAL);

    char missing[] = "/nonexistent/petrel/disk.img";
    EQ(disk_config_parse(&dc, missing, NULL), 0);
    CHECK(blk_open(&dc, NULL, &e) == NULL && strstr(e.msg, "No such file"), "%s", e.msg);

    make_image(1000);                                   /* not a multiple of 512 */
    char spec[80];
    strcpy(spec, img);
    EQ(disk_config_parse(&dc, spec, NULL), 0);
    CHECK(blk_open(&dc, NULL, &e) == NULL && strstr(e.msg, "multiple of 512"), "%s", e.msg);
    EQ(ftruncate(img_fd, 0), 0);
    CHECK(blk_open(&dc, NULL, &e) == NULL && strstr(e.msg, "empty"), "%s", e.msg);
    EQ(ftruncate(img_fd, 4096), 0);
    struct blk *a = blk_open(&dc, NULL, &e);
    CHECK(a != NULL, "%s", e.msg);
    CHECK(blk_open(&dc, NULL, &e) == NULL && strstr(e.msg, "in use"), "locked: %s", e.msg);
    dc.readonly = true;
    CHECK(blk_open(&dc, NULL, &e) == NULL, "reader while written: %s", e.msg);
    blk_close(a);
    a = blk_open(&dc, NULL, &e);
    CHECK(a != NULL, "lock released: %s", e.msg);
    blk_close(a);
    drop_image();
}

static int probe_ret;
static void probe_done(struct blk_req *r, int ret) { (void)r; probe_ret = ret; }

/* A raw image opened by probing refuses a qcow2 header at offset 0 (a guest
 * could otherwise name a host file as backing file for the next start);
 * with format=raw the write is the guest's business. */
static void test_probed_raw_guard(void)
{
    make_image(IMG_SIZE);
    uint8_t hdr[512] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 3 };
    for (int explicit_raw = 0; explicit_raw < 2; explicit_raw++) {
        struct disk_config dc;
        char spec[96];
        snprintf(spec, sizeof(spec), "%s%s", img, explicit_raw ? ",format=raw" : "");
        EQ(disk_config_parse(&dc, spec, NULL), 0);
        struct err e = { "" };
        struct blk *b = blk_open(&dc, NULL, &e);
        CHECK(b != NULL, "%s", e.msg);
        struct iovec iov = { hdr, sizeof(hdr) };
        struct blk_req r = { .op = BLK_WRITE, .offset = 0, .iov = &iov, .niov = 1,
                             .done = probe_done };
        probe_ret = 1;
        blk_submit(b, &r);
        blk_close(b);       /* drains */
        EQ(probe_ret, explicit_raw ? 0 : -EPERM);
        EQ(img_byte(0), explicit_raw ? 'Q' : 0);
    }
    drop_image();
}

int main(void)
{
    if (gmem_add_ram(&mem, RAM, RAM_SIZE, NULL) < 0)
        return 1;
    loop = evloop_new(NULL);
    test_config_and_io();
    test_bad_requests();
    test_many_in_flight();
    test_rate_limited();
    test_readonly();
    test_reset_in_flight();
    test_disk_options_and_images();
    test_probed_raw_guard();
    evloop_free(loop);
    gmem_free(&mem);
    return unit_done("test_virtio_blk");
}

/* Unit tests for virtio-gpu (`--device virtio-gpu`): a fake driver sends
 * controlq commands and checks the responses and what reaches a fake
 * display; hostile commands get error responses, nothing breaks. */
#include <errno.h>
#include <string.h>

#include "core/display.h"
#include "pci/pci.h"
#include "virtio/virtio_gpu.h"
#include "virtio/virtio_pci.h"

#include "unit.h"

#include "virtio_driver.h"

#define CTRLQ 0
#define CURQ 1
#define QSIZE 64
#define BACKING (RAM + 0x200000)

/* --- a fake display ------------------------------------------------------------ */

static struct fake {
    struct display d;
    unsigned w, h, resizes, updates;
    unsigned ux, uy, uw, uh;
    uint32_t first_px;
    enum display_format f;
} fk;

static void fk_resize(struct display *d, unsigned w, unsigned h)
{
    (void)d;
    fk.w = w;
    fk.h = h;
    fk.resizes++;
}

static void fk_update(struct display *d, const uint8_t *px, size_t stride, enum display_format f,
                      unsigned x, unsigned y, unsigned w, unsigned h)
{
    (void)d;
    (void)stride;
    fk.updates++;
    fk.ux = x, fk.uy = y, fk.uw = w, fk.uh = h;
    memcpy(&fk.first_px, px, 4);
    fk.f = f;
}

static int create(const char *spec, struct err *e)
{
    memset(&fk, 0, sizeof(fk));
    fk.d.resize = fk_resize;
    fk.d.update = fk_update;
    return virtio_pci_create(&(struct virtio_host){ .pb = &pb, .mem = &mem, .display = &fk.d },
                             spec, e);
}

static struct drv d;

static void start(const char *spec)
{
    setup();
    struct err e = { "" };
    CHECK(create(spec, &e) == 0, "create %s: %s", spec, e.msg);
    drv_probe(&d, 1, RAM + 0x100000);
    EQ(cfg_rd(1, PCI_DEVICE_ID, 2), VIRTIO_PCI_DEVICE_BASE + VIRTIO_ID_GPU);
    EQ(drv_init(&d, STD_FEATURES, 2, QSIZE), 0x0f);
}

/* Send a command (req, len bytes) with a response buffer of rlen bytes on
 * queue q; returns the response type (0: nothing written). */
static uint8_t resp[512];
static uint32_t cmd_q(unsigned q, const void *req, uint32_t len, uint32_t rlen)
{
    uint64_t rq = d.buf, rs = d.buf + 0x8000;
    memcpy(gp(rq, len ? len : 1), req, len);
    memset(gp(rs, sizeof(resp)), 0, sizeof(resp));
    uint16_t before = used_idx(&d, q);
    if (rlen) {
        put_desc(d.desc[q], 0, rq, len, VIRTQ_DESC_F_NEXT, 1);
        put_desc(d.desc[q], 1, rs, rlen, VIRTQ_DESC_F_WRITE, 0);
    } else {
        put_desc(d.desc[q], 0, rq, len, 0, 0);
    }
    drv_avail(&d, q, 0);
    drv_kick(&d, q);
    EQ(used_idx(&d, q), (uint16_t)(before + 1));
    memcpy(resp, gp(rs, sizeof(resp)), sizeof(resp));
    return rd32(rs);
}

static uint32_t cmd(const void *req, uint32_t len) { return cmd_q(CTRLQ, req, len, 408); }

static void hdr(uint8_t *b, uint32_t type)
{
    memset(b, 0, GPU_HDR_LEN);
    memcpy(b, &type, 4);
}

static void put32(uint8_t *b, unsigned off, uint32_t v) { memcpy(b + off, &v, 4); }
static void put64(uint8_t *b, unsigned off, uint64_t v) { memcpy(b + off, &v, 8); }

static uint32_t create_2d(uint32_t id, uint32_t fmt, uint32_t w, uint32_t h)
{
    uint8_t b[40];
    hdr(b, VIRTIO_GPU_CMD_RESOURCE_CREATE_2D);
    put32(b, 24, id);
    put32(b, 28, fmt);
    put32(b, 32, w);
    put32(b, 36, h);
    return cmd(b, sizeof(b));
}

static uint32_t attach(uint32_t id, uint64_t gpa, uint32_t len, uint32_t nent_claimed)
{
    uint8_t b[48];
    hdr(b, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING);
    put32(b, 24, id);
    put32(b, 28, nent_claimed);
    put64(b, 32, gpa);
    put32(b, 40, len);
    put32(b, 44, 0);
    return cmd(b, sizeof(b));
}

static uint32_t rect_cmd(uint32_t type, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
                         uint32_t a, uint32_t b2, uint64_t off)
{
    uint8_t b[56] = { 0 };
    hdr(b, type);
    put32(b, 24, x);
    put32(b, 28, y);
    put32(b, 32, w);
    put32(b, 36, h);
    if (type == VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D) {
        put64(b, 40, off);
        put32(b, 48, a);
        return cmd(b, 56);
    }
    put32(b, 40, a);
    put32(b, 44, b2);
    return cmd(b, 48);
}

static uint32_t set_scanout(uint32_t sid, uint32_t id, uint32_t w, uint32_t h)
{
    return rect_cmd(VIRTIO_GPU_CMD_SET_SCANOUT, 0, 0, w, h, sid, id, 0);
}

static uint32_t transfer(uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
                         uint64_t off)
{
    return rect_cmd(VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D, x, y, w, h, id, 0, off);
}

static uint32_t flush(uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    return rect_cmd(VIRTIO_GPU_CMD_RESOURCE_FLUSH, x, y, w, h, id, 0, 0);
}

static uint32_t simple(uint32_t type, uint32_t id)
{
    uint8_t b[32] = { 0 };
    hdr(b, type);
    put32(b, 24, id);
    return cmd(b, sizeof(b));
}

/* --- tests --------------------------------------------------------------------- */

static void test_display_info(void)
{
    start("virtio-gpu");
    uint8_t b[24];
    hdr(b, VIRTIO_GPU_CMD_GET_DISPLAY_INFO);
    EQ(cmd(b, sizeof(b)), VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
    uint32_t v[6];
    memcpy(v, resp + 24, sizeof(v));
    EQ(v[0], 0);
    EQ(v[2], 1024);
    EQ(v[3], 768);
    EQ(v[4], 1);
    memcpy(v, resp + 48, sizeof(v));    /* scanout 1: not there */
    EQ(v[2], 0);
    EQ(v[4], 0);
    /* config: num_scanouts 1, num_capsets 0 */
    EQ(bar_rd(&d, d.device + 8, 4), 1);
    EQ(bar_rd(&d, d.device + 12, 4), 0);
    pci_bus_destroy(&pb);

    start("virtio-gpu,xres=800,yres=600");
    EQ(cmd(b, sizeof(b)), VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
    memcpy(v, resp + 24, sizeof(v));
    EQ(v[2], 800);
    EQ(v[3], 600);
    pci_bus_destroy(&pb);

    setup();
    struct err e = { "" };
    CHECK(create("virtio-gpu,xres=10", &e) == -EINVAL && strstr(e.msg, "xres"), "%s", e.msg);
    CHECK(create("virtio-gpu,depth=3", &e) == -EINVAL && strstr(e.msg, "unknown"), "%s", e.msg);
    pci_bus_destroy(&pb);
}

static void test_draw(void)
{
    start("virtio-gpu");
    EQ(create_2d(1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 64, 32), VIRTIO_GPU_RESP_OK_NODATA);
    /* backing: pixel (x, y) = 0x00yyxx11 */
    uint32_t *px = gp(BACKING, 64 * 32 * 4);
    for (unsigned y = 0; y < 32; y++)
        for (unsigned x = 0; x < 64; x++)
            px[y * 64 + x] = y << 16 | x << 8 | 0x11;
    EQ(attach(1, BACKING, 64 * 32 * 4, 1), VIRTIO_GPU_RESP_OK_NODATA);
    EQ(set_scanout(0, 1, 64, 32), VIRTIO_GPU_RESP_OK_NODATA);
    EQ(fk.w, 64);
    EQ(fk.h, 32);
    EQ(fk.resizes, 1);
    EQ(transfer(1, 0, 0, 64, 32, 0), VIRTIO_GPU_RESP_OK_NODATA);
    unsigned before = fk.updates;
    EQ(flush(1, 8, 4, 16, 2), VIRTIO_GPU_RESP_OK_NODATA);
    EQ(fk.updates, before + 1);
    EQ(fk.ux, 8);
    EQ(fk.uy, 4);
    EQ(fk.uw, 16);
    EQ(fk.uh, 2);
    EQ(fk.first_px, 4u << 16 | 8u << 8 | 0x11);
    EQ(fk.f, DISPLAY_BGRX);
    /* a partial transfer with the driver's offset convention */
    px[10 * 64 + 20] = 0xabcdef;
    EQ(transfer(1, 20, 10, 1, 1, (10 * 64 + 20) * 4), VIRTIO_GPU_RESP_OK_NODATA);
    EQ(flush(1, 20, 10, 1, 1), VIRTIO_GPU_RESP_OK_NODATA);
    EQ(fk.first_px, 0xabcdef);
    /* fence: echoed */
    uint8_t b[48] = { 0 };
    hdr(b, VIRTIO_GPU_CMD_RESOURCE_FLUSH);
    put32(b, 4, VIRTIO_GPU_FLAG_FENCE);
    put64(b, 8, 0x1234);
    put32(b, 40, 1);
    put32(b, 32, 1);
    put32(b, 36, 1);
    EQ(cmd(b, 48), VIRTIO_GPU_RESP_OK_NODATA);
    EQ(rd32(d.buf + 0x8000 + 4), VIRTIO_GPU_FLAG_FENCE);
    EQ(rd32(d.buf + 0x8000 + 8), 0x1234);
    /* cursor commands are taken (no response buffer, as Linux sends them) */
    uint8_t c[56] = { 0 };
    hdr(c, VIRTIO_GPU_CMD_MOVE_CURSOR);
    EQ(cmd_q(CURQ, c, sizeof(c), 0), 0);
    /* unref of the scanout's resource: the screen goes dark */
    EQ(simple(VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 1), VIRTIO_GPU_RESP_OK_NODATA);
    EQ(transfer(1, 0, 0, 1, 1, 0), VIRTIO_GPU_RESP_ERR_UNSPEC);   /* no backing */
    EQ(simple(VIRTIO_GPU_CMD_RESOURCE_UNREF, 1), VIRTIO_GPU_RESP_OK_NODATA);
    EQ(fk.w, 0);
    EQ(fk.h, 0);
    EQ(simple(VIRTIO_GPU_CMD_RESOURCE_UNREF, 1), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
    EQ(status(&d), 0x0f);
    pci_bus_destroy(&pb);
}

static void test_hostile(void)
{
    start("virtio-gpu");
    /* ids and formats */
    EQ(create_2d(0, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 8, 8),
       VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
    EQ(create_2d(2, 999, 8, 8), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    EQ(create_2d(2, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 0, 8), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    EQ(create_2d(2, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 8, 8), VIRTIO_GPU_RESP_OK_NODATA);
    EQ(create_2d(2, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 8, 8), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
    /* huge: refused before anything is allocated */
    EQ(create_2d(3, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 0xffffffff, 0xffffffff),
       VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
    EQ(create_2d(3, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 8192, 8192),
       VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
    /* the total: three 64 MiB resources and the small one fit in 256 MiB, a
     * fourth 64 MiB one does not */
    for (uint32_t id = 10; id < 13; id++)
        EQ(create_2d(id, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 4096, 4096), VIRTIO_GPU_RESP_OK_NODATA);
    EQ(create_2d(13, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 4096, 4096),
       VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
    /* backing outside RAM, empty, claimed entries beyond the request */
    EQ(attach(2, 0x1000, 256, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    EQ(attach(2, RAM + RAM_SIZE - 16, 256, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    EQ(attach(2, BACKING, 0, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    EQ(attach(2, BACKING, 256, 1000), VIRTIO_GPU_RESP_ERR_UNSPEC);
    EQ(attach(2, BACKING, 256, 0x7fffffff), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    EQ(attach(99, BACKING, 256, 1), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
    /* a backing smaller than the resource: transfers stay inside it */
    EQ(attach(2, BACKING, 100, 1), VIRTIO_GPU_RESP_OK_NODATA);
    EQ(attach(2, BACKING, 100, 1), VIRTIO_GPU_RESP_ERR_UNSPEC);       /* twice */
    EQ(transfer(2, 0, 0, 8, 8, 0), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    EQ(transfer(2, 0, 0, 8, 1, 0), VIRTIO_GPU_RESP_OK_NODATA);
    EQ(transfer(2, 0, 0, 8, 1, 80), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    EQ(transfer(2, 0, 0, 8, 1, 0xfffffffffffffff0ull), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    /* rectangles outside the resource, wrapping */
    EQ(transfer(2, 4, 0, 8, 1, 0), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    EQ(transfer(2, 0xfffffff8, 0, 16, 1, 0), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    EQ(flush(2, 0, 0xffffffff, 8, 2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    EQ(flush(77, 0, 0, 1, 1), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
    EQ(set_scanout(1, 2, 8, 8), VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID);
    EQ(set_scanout(0, 77, 8, 8), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
    EQ(set_scanout(0, 2, 9, 8), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    EQ(fk.resizes, 0);
    /* short requests, unknown and 3D commands */
    uint8_t b[64] = { 0 };
    EQ(cmd(b, 10), VIRTIO_GPU_RESP_ERR_UNSPEC);
    hdr(b, VIRTIO_GPU_CMD_RESOURCE_CREATE_2D);
    EQ(cmd(b, 30), VIRTIO_GPU_RESP_ERR_UNSPEC);
    hdr(b, 0x0200);
    EQ(cmd(b, 24), VIRTIO_GPU_RESP_ERR_UNSPEC);
    hdr(b, VIRTIO_GPU_CMD_GET_EDID);
    EQ(cmd(b, 32), VIRTIO_GPU_RESP_ERR_UNSPEC);
    /* display info into a short response buffer: cut, no overrun */
    hdr(b, VIRTIO_GPU_CMD_GET_DISPLAY_INFO);
    EQ(cmd_q(CTRLQ, b, 24, 30), VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
    EQ(resp[30], 0);
    /* a control command on the cursor queue */
    hdr(b, VIRTIO_GPU_CMD_RESOURCE_CREATE_2D);
    EQ(cmd_q(CURQ, b, 40, 24), VIRTIO_GPU_RESP_ERR_UNSPEC);
    /* still working, nothing broken; a reset frees everything */
    EQ(status(&d), 0x0f);
    EQ(create_2d(5, VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM, 8, 8), VIRTIO_GPU_RESP_OK_NODATA);
    EQ(drv_init(&d, STD_FEATURES, 2, QSIZE), 0x0f);
    EQ(create_2d(10, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 4096, 4096), VIRTIO_GPU_RESP_OK_NODATA);
    pci_bus_destroy(&pb);
}

int main(void)
{
    if (gmem_add_ram(&mem, RAM, RAM_SIZE, NULL) < 0)
        return 1;
    test_display_info();
    test_draw();
    test_hostile();
    gmem_free(&mem);
    return unit_done("test_virtio_gpu");
}

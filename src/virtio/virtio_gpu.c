/* virtio-gpu (virtio spec 1.2, 5.7), 2D only: `--device virtio-gpu[,xres=W,yres=H]`,
 * Linux's virtio_gpu DRM driver, whose fbdev emulation gives fbcon a
 * screen.  What the guest shows goes to the VM's display frontend
 * (core/display.h: the VNC server) if there is one.
 *
 * Device
 * - Queue 0, the controlq, carries commands and their responses; queue 1,
 *   the cursorq, cursor commands, which are accepted and ignored (the
 *   frontend draws its own pointer).  No feature bits (no virgl, EDID,
 *   blobs).  Config space: events_read, events_clear, num_scanouts (1),
 *   num_capsets (0).
 * - One scanout of xres x yres (default 1024x768), reported enabled by
 *   GET_DISPLAY_INFO.  Commands: RESOURCE_CREATE_2D (the 32-bit formats),
 *   RESOURCE_UNREF, SET_SCANOUT, RESOURCE_FLUSH, TRANSFER_TO_HOST_2D,
 *   RESOURCE_ATTACH_BACKING, RESOURCE_DETACH_BACKING.  Everything else
 *   (3D, capsets, EDID, blobs) gets ERR_UNSPEC.  Commands complete at once,
 *   so a fence is done when its response is written (FLAG_FENCE echoed).
 * - A resource is host memory (width x height x 4 bytes, zeroed, allocated
 *   lazily by the host kernel) plus the guest's backing: a scatter list of
 *   guest-physical ranges, each checked against RAM when attached.
 *   TRANSFER_TO_HOST_2D copies a rectangle from the backing into the
 *   resource; RESOURCE_FLUSH hands the part of the rectangle inside the
 *   scanout to the display.
 *
 * The guest is hostile: a resource is at most GPU_MAX_RES_BYTES, all of
 * them together at most GPU_MAX_TOTAL_BYTES, at most GPU_MAX_RESOURCES
 * of them, at most GPU_MAX_ENTRIES backing entries each; rectangles must
 * lie inside their resource, transfers inside the backing, backing in RAM.
 * Anything else gets an error response (ERR_INVALID_RESOURCE_ID,
 * ERR_INVALID_PARAMETER, ERR_OUT_OF_MEMORY, ...) and a rate-limited log
 * line; a request too short for its command gets ERR_UNSPEC.  Nothing
 * breaks the device, and the host allocates nothing beyond the bounds.
 *
 * Snapshots: the resources (id, format, size, backing list) and the
 * scanout are saved, not their pixels: a restore rebuilds each resource's
 * content from its backing in guest RAM (what the guest transferred from;
 * Linux keeps its framebuffer there), and shows the scanout again.
 *
 * Threads: none of its own; everything runs in device context. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/display.h"
#include "core/le.h"
#include "core/opts.h"
#include "core/snapshot.h"
#include "virtio/virtio_gpu.h"
#include "virtio/virtio_pci.h"

#define GPU_QUEUE_SIZE 256
#define GPU_NQUEUES 2
#define GPU_CONTROLQ 0
#define GPU_CURSORQ 1
#define PCI_CLASS_DISPLAY_OTHER 0x038000
#define GPU_CFG_LEN 16

struct gpu_entry {
    uint64_t gpa;
    uint32_t len;
    uint8_t *hva;
};

struct gpu_res {
    uint32_t id, format, width, height;
    enum display_format df;
    uint8_t *pix;               /* width * height * 4 bytes, rows width * 4 apart */
    struct gpu_entry *ent;      /* backing, NULL when detached */
    uint32_t nent;
    uint64_t backing_len;
};

struct virtio_gpu {
    struct virtio_pci vp;
    struct display *display;
    uint32_t xres, yres;
    uint32_t events_read;
    struct gpu_res *res[GPU_MAX_RESOURCES];
    unsigned nres;
    uint64_t total_bytes;
    /* the scanout: a rectangle of a resource (res_id 0: disabled) */
    uint32_t scanout_res;
    struct gpu_rect scanout;
    uint64_t flushes, cursor_cmds;      /* for the log and tests */
    struct virtq_chain chain;
};

/* --- resources ------------------------------------------------------------------ */

static struct gpu_res *res_find(struct virtio_gpu *g, uint32_t id)
{
    for (unsigned i = 0; i < g->nres; i++)
        if (g->res[i]->id == id)
            return g->res[i];
    return NULL;
}

static int format_of(uint32_t f, enum display_format *df)
{
    switch (f) {
    case VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM:
    case VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM: *df = DISPLAY_BGRX; return 0;
    case VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM:
    case VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM: *df = DISPLAY_XRGB; return 0;
    case VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM:
    case VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM: *df = DISPLAY_RGBX; return 0;
    case VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM:
    case VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM: *df = DISPLAY_XBGR; return 0;
    }
    return -1;
}

static uint64_t res_bytes(const struct gpu_res *r)
{
    return (uint64_t)r->width * r->height * 4;
}

static void res_detach(struct gpu_res *r)
{
    free(r->ent);
    r->ent = NULL;
    r->nent = 0;
    r->backing_len = 0;
}

static void res_free(struct virtio_gpu *g, struct gpu_res *r)
{
    for (unsigned i = 0; i < g->nres; i++)
        if (g->res[i] == r) {
            g->res[i] = g->res[--g->nres];
            break;
        }
    g->total_bytes -= res_bytes(r);
    res_detach(r);
    free(r->pix);
    free(r);
}

/* Copy len bytes at backing offset off into dst (the caller checked the
 * range against backing_len).  *hint: the entry to start looking from, for
 * rows read in increasing order. */
static void backing_read(const struct gpu_res *r, uint64_t off, uint8_t *dst, uint64_t len,
                         uint32_t *hint, uint64_t *hint_start)
{
    uint32_t i = *hint;
    uint64_t start = *hint_start;
    if (off < start) {
        i = 0;
        start = 0;
    }
    while (len && i < r->nent) {
        const struct gpu_entry *en = &r->ent[i];
        if (off >= start + en->len) {
            start += en->len;
            i++;
            continue;
        }
        uint64_t in = off - start, n = en->len - in < len ? en->len - in : len;
        memcpy(dst, en->hva + in, n);
        dst += n;
        off += n;
        len -= n;
    }
    *hint = i;
    *hint_start = start;
}

/* Copy rectangle rc of r's backing (rows starting at off, width * 4
 * apart) into the resource. */
static void res_transfer(struct gpu_res *r, const struct gpu_rect *rc, uint64_t off)
{
    uint64_t stride = (uint64_t)r->width * 4;
    uint32_t hint = 0;
    uint64_t hint_start = 0;
    for (uint32_t y = 0; y < rc->height; y++)
        backing_read(r, off + y * stride, r->pix + (rc->y + y) * stride + (uint64_t)rc->x * 4,
                     (uint64_t)rc->width * 4, &hint, &hint_start);
}

/* rc lies inside r (and is not empty). */
static bool rect_inside(const struct gpu_rect *rc, const struct gpu_res *r)
{
    return rc->width && rc->height && (uint64_t)rc->x + rc->width <= r->width &&
           (uint64_t)rc->y + rc->height <= r->height;
}

/* --- the display --------------------------------------------------------------- */

static void show(struct virtio_gpu *g, const struct gpu_rect *rc)
{
    struct gpu_res *r = g->scanout_res ? res_find(g, g->scanout_res) : NULL;
    if (!g->display || !g->display->update || !r)
        return;
    const struct gpu_rect *s = &g->scanout;
    uint64_t x0 = rc->x > s->x ? rc->x : s->x, y0 = rc->y > s->y ? rc->y : s->y;
    uint64_t x1 = (uint64_t)rc->x + rc->width, y1 = (uint64_t)rc->y + rc->height;
    if (x1 > (uint64_t)s->x + s->width)
        x1 = (uint64_t)s->x + s->width;
    if (y1 > (uint64_t)s->y + s->height)
        y1 = (uint64_t)s->y + s->height;
    if (x0 >= x1 || y0 >= y1)
        return;
    size_t stride = (size_t)r->width * 4;
    g->display->update(g->display, r->pix + y0 * stride + x0 * 4, stride, r->df,
                       (unsigned)(x0 - s->x), (unsigned)(y0 - s->y), (unsigned)(x1 - x0),
                       (unsigned)(y1 - y0));
}

static void scanout_set(struct virtio_gpu *g, uint32_t res_id, const struct gpu_rect *rc)
{
    bool resized = !res_id != !g->scanout_res ||
                   (res_id && (rc->width != g->scanout.width || rc->height != g->scanout.height));
    g->scanout_res = res_id;
    g->scanout = res_id ? *rc : (struct gpu_rect){ 0 };
    if (resized && g->display && g->display->resize)
        g->display->resize(g->display, g->scanout.width, g->scanout.height);
    if (res_id)
        show(g, &g->scanout);
}

/* --- commands ------------------------------------------------------------------- */

/* A request's bytes: the header and the command's fields. */
struct gpu_req {
    struct virtio_gpu *g;
    uint8_t b[GPU_MAX_REQ];
    uint32_t len;       /* bytes read (the chain's readable bytes, at most sizeof b) */
    uint32_t type;
};

static uint32_t req32(const struct gpu_req *q, unsigned off)
{
    return (uint32_t)get_le(q->b + off, 4);
}

static void rect_get(const struct gpu_req *q, unsigned off, struct gpu_rect *r)
{
    r->x = req32(q, off);
    r->y = req32(q, off + 4);
    r->width = req32(q, off + 8);
    r->height = req32(q, off + 12);
}

#define GPU_ERR(q, code, ...) (virtio_log(&(q)->g->vp.vdev, __VA_ARGS__), (uint32_t)(code))

static uint32_t cmd_create_2d(struct gpu_req *q)
{
    struct virtio_gpu *g = q->g;
    uint32_t id = req32(q, GPU_HDR_LEN), fmt = req32(q, GPU_HDR_LEN + 4);
    uint32_t w = req32(q, GPU_HDR_LEN + 8), h = req32(q, GPU_HDR_LEN + 12);
    enum display_format df;
    if (!id || res_find(g, id))
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID,
                       "RESOURCE_CREATE_2D: resource id %u is %s", id, id ? "taken" : "0");
    if (format_of(fmt, &df) < 0)
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER,
                       "RESOURCE_CREATE_2D: unknown format %u", fmt);
    uint64_t bytes = (uint64_t)w * h * 4;
    if (!w || !h)
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER,
                       "RESOURCE_CREATE_2D: empty %ux%u resource", w, h);
    if (bytes > GPU_MAX_RES_BYTES || g->total_bytes + bytes > GPU_MAX_TOTAL_BYTES ||
        g->nres >= GPU_MAX_RESOURCES)
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY,
                       "RESOURCE_CREATE_2D: %ux%u resource refused (limits: %u MiB each, %u "
                       "MiB and %u resources in all)", w, h, GPU_MAX_RES_BYTES >> 20,
                       GPU_MAX_TOTAL_BYTES >> 20, GPU_MAX_RESOURCES);
    struct gpu_res *r = calloc(1, sizeof(*r));
    uint8_t *pix = calloc(1, bytes);
    if (!r || !pix) {
        free(r);
        free(pix);
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY,
                       "RESOURCE_CREATE_2D: out of host memory");
    }
    *r = (struct gpu_res){ .id = id, .format = fmt, .width = w, .height = h, .df = df,
                           .pix = pix };
    g->res[g->nres++] = r;
    g->total_bytes += bytes;
    return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t cmd_unref(struct gpu_req *q)
{
    struct virtio_gpu *g = q->g;
    uint32_t id = req32(q, GPU_HDR_LEN);
    struct gpu_res *r = res_find(g, id);
    if (!r)
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID,
                       "RESOURCE_UNREF: no resource %u", id);
    if (g->scanout_res == id)
        scanout_set(g, 0, NULL);
    res_free(g, r);
    return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t cmd_set_scanout(struct gpu_req *q)
{
    struct virtio_gpu *g = q->g;
    struct gpu_rect rc;
    rect_get(q, GPU_HDR_LEN, &rc);
    uint32_t sid = req32(q, GPU_HDR_LEN + 16), id = req32(q, GPU_HDR_LEN + 20);
    if (sid != 0)
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID,
                       "SET_SCANOUT: no scanout %u (there is one: 0)", sid);
    if (!id) {
        scanout_set(g, 0, NULL);
        return VIRTIO_GPU_RESP_OK_NODATA;
    }
    struct gpu_res *r = res_find(g, id);
    if (!r)
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID,
                       "SET_SCANOUT: no resource %u", id);
    if (!rect_inside(&rc, r))
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER,
                       "SET_SCANOUT: %ux%u+%u+%u is not inside resource %u (%ux%u)",
                       rc.width, rc.height, rc.x, rc.y, id, r->width, r->height);
    scanout_set(g, id, &rc);
    return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t cmd_flush(struct gpu_req *q)
{
    struct virtio_gpu *g = q->g;
    struct gpu_rect rc;
    rect_get(q, GPU_HDR_LEN, &rc);
    uint32_t id = req32(q, GPU_HDR_LEN + 16);
    struct gpu_res *r = res_find(g, id);
    if (!r)
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID,
                       "RESOURCE_FLUSH: no resource %u", id);
    if (!rect_inside(&rc, r))
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER,
                       "RESOURCE_FLUSH: %ux%u+%u+%u is not inside resource %u (%ux%u)",
                       rc.width, rc.height, rc.x, rc.y, id, r->width, r->height);
    g->flushes++;
    if (g->scanout_res == id)
        show(g, &rc);
    return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t cmd_transfer(struct gpu_req *q)
{
    struct virtio_gpu *g = q->g;
    struct gpu_rect rc;
    rect_get(q, GPU_HDR_LEN, &rc);
    uint64_t off = get_le(q->b + GPU_HDR_LEN + 16, 8);
    uint32_t id = req32(q, GPU_HDR_LEN + 24);
    struct gpu_res *r = res_find(g, id);
    if (!r)
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID,
                       "TRANSFER_TO_HOST_2D: no resource %u", id);
    if (!r->ent)
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_UNSPEC,
                       "TRANSFER_TO_HOST_2D: resource %u has no backing", id);
    if (!rect_inside(&rc, r))
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER,
                       "TRANSFER_TO_HOST_2D: %ux%u+%u+%u is not inside resource %u (%ux%u)",
                       rc.width, rc.height, rc.x, rc.y, id, r->width, r->height);
    /* the last row's end; off below 2^63 keeps this from wrapping */
    uint64_t stride = (uint64_t)r->width * 4;
    uint64_t end = off + (uint64_t)(rc.height - 1) * stride + (uint64_t)rc.width * 4;
    if (off >> 63 || end > r->backing_len)
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER,
                       "TRANSFER_TO_HOST_2D: bytes %llu..%llu are outside resource %u's "
                       "backing (%llu bytes)", (unsigned long long)off,
                       (unsigned long long)end, id, (unsigned long long)r->backing_len);
    res_transfer(r, &rc, off);
    return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t cmd_attach(struct gpu_req *q)
{
    struct virtio_gpu *g = q->g;
    uint32_t id = req32(q, GPU_HDR_LEN), n = req32(q, GPU_HDR_LEN + 4);
    struct gpu_res *r = res_find(g, id);
    if (!r)
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID,
                       "RESOURCE_ATTACH_BACKING: no resource %u", id);
    if (r->ent)
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_UNSPEC,
                       "RESOURCE_ATTACH_BACKING: resource %u has a backing already", id);
    if (!n || n > GPU_MAX_ENTRIES)
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER,
                       "RESOURCE_ATTACH_BACKING: %u entries (1..%u)", n, GPU_MAX_ENTRIES);
    /* the entries follow the fixed part, anywhere in the readable buffers */
    uint64_t want = GPU_ATTACH_LEN + (uint64_t)n * GPU_ENTRY_LEN;
    if (want > g->chain.out_bytes)
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_UNSPEC,
                       "RESOURCE_ATTACH_BACKING: %u entries but only %u request bytes", n,
                       g->chain.out_bytes);
    struct gpu_entry *ent = calloc(n, sizeof(*ent));
    if (!ent)
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY,
                       "RESOURCE_ATTACH_BACKING: out of host memory");
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t b[GPU_ENTRY_LEN];
        virtq_chain_from_guest(&g->chain, GPU_ATTACH_LEN + (size_t)i * GPU_ENTRY_LEN, b,
                               sizeof(b));
        ent[i].gpa = get_le(b, 8);
        ent[i].len = (uint32_t)get_le(b + 8, 4);
        ent[i].hva = ent[i].len ? gmem_ptr(g->vp.vdev.mem, ent[i].gpa, ent[i].len) : NULL;
        if (!ent[i].hva) {
            uint32_t len = ent[i].len;
            uint64_t gpa = ent[i].gpa;
            free(ent);
            return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER,
                           "RESOURCE_ATTACH_BACKING: entry %u (0x%llx, %u bytes) is not in RAM",
                           i, (unsigned long long)gpa, len);
        }
        total += ent[i].len;
    }
    r->ent = ent;
    r->nent = n;
    r->backing_len = total;
    return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t cmd_detach(struct gpu_req *q)
{
    uint32_t id = req32(q, GPU_HDR_LEN);
    struct gpu_res *r = res_find(q->g, id);
    if (!r)
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID,
                       "RESOURCE_DETACH_BACKING: no resource %u", id);
    if (!r->ent)
        return GPU_ERR(q, VIRTIO_GPU_RESP_ERR_UNSPEC,
                       "RESOURCE_DETACH_BACKING: resource %u has no backing", id);
    res_detach(r);
    return VIRTIO_GPU_RESP_OK_NODATA;
}

/* GET_DISPLAY_INFO's answer, after the header: 16 x {rect, enabled, flags}. */
static uint32_t display_info(struct virtio_gpu *g, uint8_t *resp)
{
    memset(resp + GPU_HDR_LEN, 0, GPU_DISPLAY_INFO_LEN - GPU_HDR_LEN);
    uint8_t *p = resp + GPU_HDR_LEN;
    put_le(p + 8, g->xres, 4);
    put_le(p + 12, g->yres, 4);
    put_le(p + 16, 1, 4);        /* enabled */
    return GPU_DISPLAY_INFO_LEN;
}

/* Command sizes, header included. */
static uint32_t cmd_len(uint32_t type)
{
    switch (type) {
    case VIRTIO_GPU_CMD_GET_DISPLAY_INFO: return GPU_HDR_LEN;
    case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D: return GPU_HDR_LEN + 16;
    case VIRTIO_GPU_CMD_RESOURCE_UNREF: return GPU_HDR_LEN + 8;
    case VIRTIO_GPU_CMD_SET_SCANOUT: return GPU_HDR_LEN + 24;
    case VIRTIO_GPU_CMD_RESOURCE_FLUSH: return GPU_HDR_LEN + 24;
    case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D: return GPU_HDR_LEN + 32;
    case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING: return GPU_ATTACH_LEN;
    case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING: return GPU_HDR_LEN + 8;
    case VIRTIO_GPU_CMD_UPDATE_CURSOR: return GPU_HDR_LEN + 32;
    case VIRTIO_GPU_CMD_MOVE_CURSOR: return GPU_HDR_LEN + 32;
    }
    return GPU_HDR_LEN;
}

/* Run the command in g->chain; returns the response length written. */
static uint32_t run_command(struct virtio_gpu *g, unsigned q)
{
    struct gpu_req rq = { .g = g };
    struct virtq_chain *c = &g->chain;
    rq.len = (uint32_t)virtq_chain_from_guest(c, 0, rq.b, sizeof(rq.b));
    uint8_t resp[GPU_DISPLAY_INFO_LEN];
    uint32_t rlen = GPU_HDR_LEN, code;
    rq.type = rq.len >= GPU_HDR_LEN ? req32(&rq, 0) : 0;
    if (rq.len < GPU_HDR_LEN || rq.len < cmd_len(rq.type)) {
        code = GPU_ERR(&rq, VIRTIO_GPU_RESP_ERR_UNSPEC, "command 0x%x in %u bytes (needs %u)",
                       rq.type, rq.len, rq.len < GPU_HDR_LEN ? GPU_HDR_LEN : cmd_len(rq.type));
    } else if (q == GPU_CURSORQ) {
        if (rq.type == VIRTIO_GPU_CMD_UPDATE_CURSOR || rq.type == VIRTIO_GPU_CMD_MOVE_CURSOR) {
            g->cursor_cmds++;
            code = VIRTIO_GPU_RESP_OK_NODATA;
        } else {
            code = GPU_ERR(&rq, VIRTIO_GPU_RESP_ERR_UNSPEC,
                           "command 0x%x on the cursor queue", rq.type);
        }
    } else {
        switch (rq.type) {
        case VIRTIO_GPU_CMD_GET_DISPLAY_INFO:
            rlen = display_info(g, resp);
            code = VIRTIO_GPU_RESP_OK_DISPLAY_INFO;
            break;
        case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D: code = cmd_create_2d(&rq); break;
        case VIRTIO_GPU_CMD_RESOURCE_UNREF: code = cmd_unref(&rq); break;
        case VIRTIO_GPU_CMD_SET_SCANOUT: code = cmd_set_scanout(&rq); break;
        case VIRTIO_GPU_CMD_RESOURCE_FLUSH: code = cmd_flush(&rq); break;
        case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D: code = cmd_transfer(&rq); break;
        case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING: code = cmd_attach(&rq); break;
        case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING: code = cmd_detach(&rq); break;
        default:
            code = GPU_ERR(&rq, VIRTIO_GPU_RESP_ERR_UNSPEC,
                           "command 0x%x is not supported (2D only)", rq.type);
        }
    }
    if (code >= VIRTIO_GPU_RESP_ERR_UNSPEC)
        rlen = GPU_HDR_LEN;
    /* the header: type, flags (FENCE echoed), fence_id, ctx_id, ring_idx */
    memset(resp, 0, GPU_HDR_LEN);
    put_le(resp, code, 4);
    if (rq.len >= GPU_HDR_LEN) {
        put_le(resp + 4, req32(&rq, 4) & VIRTIO_GPU_FLAG_FENCE, 4);
        memcpy(resp + 8, rq.b + 8, 8);
        memcpy(resp + 16, rq.b + 16, 4);
    }
    if (!c->in_bytes)
        return 0;       /* Linux's cursor commands take no response */
    if (c->in_bytes < rlen)
        virtio_log(&g->vp.vdev, "command 0x%x: response of %u bytes in a %u-byte buffer "
                   "(cut)", rq.type, rlen, c->in_bytes);
    return (uint32_t)virtq_chain_to_guest(c, 0, resp, rlen);
}

static void gpu_queue_notify(struct virtio_dev *vd, unsigned q)
{
    struct virtio_gpu *g = vd->opaque;
    bool pushed = false;
    while (virtio_queue_pop(vd, q, &g->chain) > 0) {
        uint32_t n = run_command(g, q);
        virtio_queue_push(vd, q, &g->chain, n);
        pushed = true;
    }
    if (pushed)
        virtio_queue_notify_used(vd, q);
}

/* --- config space: events_read, events_clear, num_scanouts, num_capsets --------- */

static uint32_t gpu_cfg_read(struct virtio_dev *vd, unsigned off, unsigned size)
{
    struct virtio_gpu *g = vd->opaque;
    uint8_t cfg[GPU_CFG_LEN] = { 0 };
    put_le(cfg, g->events_read, 4);
    put_le(cfg + 8, 1, 4);
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++)     /* the transport bounds off + size */
        v |= (uint32_t)cfg[off + i] << (8 * i);
    return v;
}

static void gpu_cfg_write(struct virtio_dev *vd, unsigned off, unsigned size, uint32_t val)
{
    struct virtio_gpu *g = vd->opaque;
    if (off == 4 && size == 4)
        g->events_read &= ~val;         /* events_clear */
    else
        virtio_log(vd, "write of %u byte(s) at config offset %u: only events_clear is "
                   "writable (ignored)", size, off);
}

/* The driver reset the device: every resource goes, the screen goes dark. */
static void gpu_reset(struct virtio_dev *vd)
{
    struct virtio_gpu *g = vd->opaque;
    if (g->scanout_res)
        scanout_set(g, 0, NULL);
    while (g->nres)
        res_free(g, g->res[0]);
    g->events_read = 0;
}

/* --- snapshots ------------------------------------------------------------------
 *
 * No quiesce: commands complete inside the kick that took them.  Saved
 * after the core: u32 events_read, u32 resources and each as u32 id,
 * format, width, height, u32 backing entries (0: none) and each as u64
 * gpa, u32 length; then u32 scanout resource and the scanout's rect. */
static void gpu_save(struct virtio_dev *vd, struct snap_writer *w)
{
    struct virtio_gpu *g = vd->opaque;
    snapw_u32(w, g->events_read);
    snapw_u32(w, g->nres);
    for (unsigned i = 0; i < g->nres; i++) {
        const struct gpu_res *r = g->res[i];
        snapw_u32(w, r->id);
        snapw_u32(w, r->format);
        snapw_u32(w, r->width);
        snapw_u32(w, r->height);
        snapw_u32(w, r->nent);
        for (uint32_t k = 0; k < r->nent; k++) {
            snapw_u64(w, r->ent[k].gpa);
            snapw_u32(w, r->ent[k].len);
        }
    }
    snapw_u32(w, g->scanout_res);
    snapw_u32(w, g->scanout.x);
    snapw_u32(w, g->scanout.y);
    snapw_u32(w, g->scanout.width);
    snapw_u32(w, g->scanout.height);
}

static void free_list(struct gpu_res **list, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        free(list[i]->ent);
        free(list[i]->pix);
        free(list[i]);
    }
}

static int gpu_load(struct virtio_dev *vd, struct snap_reader *r, struct snap_file *f,
                    struct err *e)
{
    (void)f;
    struct virtio_gpu *g = vd->opaque;
    struct gpu_res *list[GPU_MAX_RESOURCES];
    unsigned n = 0;
    uint64_t total = 0;
    uint32_t events = snapr_u32(r), nres = snapr_u32(r);
    snapr_check(r, r->fail || nres <= GPU_MAX_RESOURCES, "too many resources");
    for (uint32_t i = 0; i < nres && !r->fail; i++) {
        struct gpu_res *x = calloc(1, sizeof(*x));
        if (!x) {
            snapr_check(r, false, "out of memory");
            break;
        }
        list[n++] = x;
        x->id = snapr_u32(r);
        x->format = snapr_u32(r);
        x->width = snapr_u32(r);
        x->height = snapr_u32(r);
        uint64_t bytes = res_bytes(x);
        total += bytes;
        if (!snapr_check(r, r->fail || (x->id && format_of(x->format, &x->df) == 0 &&
                                        bytes && bytes <= GPU_MAX_RES_BYTES &&
                                        total <= GPU_MAX_TOTAL_BYTES),
                         "a resource the device would not create"))
            break;
        for (unsigned k = 0; k + 1 < n; k++)
            snapr_check(r, list[k]->id != x->id, "two resources with one id");
        x->nent = snapr_u32(r);
        if (!snapr_check(r, r->fail || x->nent <= GPU_MAX_ENTRIES, "too many backing entries"))
            break;
        if (x->nent && !(x->ent = calloc(x->nent, sizeof(*x->ent)))) {
            snapr_check(r, false, "out of memory");
            break;
        }
        for (uint32_t k = 0; k < x->nent && !r->fail; k++) {
            x->ent[k].gpa = snapr_u64(r);
            x->ent[k].len = snapr_u32(r);
            x->ent[k].hva = x->ent[k].len ? gmem_ptr(vd->mem, x->ent[k].gpa, x->ent[k].len)
                                          : NULL;
            snapr_check(r, r->fail || x->ent[k].hva, "backing outside RAM");
            x->backing_len += x->ent[k].len;
        }
        if (!r->fail && !(x->pix = calloc(1, bytes)))
            snapr_check(r, false, "out of memory");
    }
    uint32_t sres = snapr_u32(r);
    struct gpu_rect s = { snapr_u32(r), snapr_u32(r), snapr_u32(r), snapr_u32(r) };
    const struct gpu_res *sr = NULL;
    for (unsigned i = 0; i < n && sres; i++)
        if (list[i]->id == sres)
            sr = list[i];
    snapr_check(r, r->fail || !sres || (sr && rect_inside(&s, sr)), "a bad scanout");
    int ret = snapr_end(r, e);
    if (ret < 0) {
        free_list(list, n);
        return ret;
    }
    gpu_reset(vd);
    for (unsigned i = 0; i < n; i++) {
        struct gpu_res *x = list[i];
        g->res[g->nres++] = x;
        if (x->ent) {   /* the content, from the backing */
            uint64_t whole = res_bytes(x) < x->backing_len ? x->height : x->backing_len /
                                                                         ((uint64_t)x->width * 4);
            struct gpu_rect rc = { 0, 0, x->width, (uint32_t)whole };
            if (rc.height)
                res_transfer(x, &rc, 0);
        }
    }
    g->total_bytes = total;
    g->events_read = events;
    if (sres)
        scanout_set(g, sres, &s);
    return 0;
}

static const struct virtio_dev_ops gpu_ops = {
    .queue_notify = gpu_queue_notify,
    .cfg_read = gpu_cfg_read,
    .cfg_write = gpu_cfg_write,
    .reset = gpu_reset,
    .save = gpu_save,
    .load = gpu_load,
};

/* --- set-up and teardown ----------------------------------------------------- */

static void gpu_free(struct virtio_pci *vp)
{
    struct virtio_gpu *g = vp->vdev.opaque;
    while (g->nres)
        res_free(g, g->res[0]);
    if (g->display && g->display->gpu == g)
        g->display->gpu = NULL;
    free(g);
}

static int parse_opts(const char *opts, uint32_t *xres, uint32_t *yres, struct err *e)
{
    const char *p = opts;
    char item[64];
    int ret;
    while ((ret = opts_next(&p, item, sizeof(item), e)) > 0) {
        char *val;
        opts_split(item, &val);
        uint32_t *dst = !strcmp(item, "xres") ? xres : !strcmp(item, "yres") ? yres : NULL;
        if (!dst)
            return err_set(e, -EINVAL, "virtio-gpu: unknown option '%s' (xres=, yres=)", item);
        char *end;
        unsigned long v = val ? strtoul(val, &end, 10) : 0;
        if (!val || !*val || *end || v < GPU_MIN_RES || v > GPU_MAX_RES)
            return err_set(e, -EINVAL, "virtio-gpu: %s must be a number of pixels from %u to "
                           "%u (got '%s')", item, GPU_MIN_RES, GPU_MAX_RES, val ? val : "");
        *dst = (uint32_t)v;
    }
    return ret;
}

int virtio_gpu_create(const struct virtio_host *h, const char *opts, struct err *e)
{
    uint32_t xres = GPU_DEFAULT_XRES, yres = GPU_DEFAULT_YRES;
    int ret = parse_opts(opts, &xres, &yres, e);
    if (ret < 0)
        return ret;
    struct virtio_gpu *g = calloc(1, sizeof(*g));
    if (!g)
        return err_set(e, -ENOMEM, "virtio-gpu: out of memory");
    g->xres = xres;
    g->yres = yres;
    virtio_dev_init(&g->vp.vdev, "virtio-gpu", VIRTIO_ID_GPU, 0, GPU_NQUEUES, GPU_QUEUE_SIZE,
                    GPU_CFG_LEN, h->mem, &gpu_ops, g);
    ret = virtio_pci_init(&g->vp, PCI_CLASS_DISPLAY_OTHER, gpu_free, e);
    if (ret == 0)
        ret = pci_bus_plug(h->pb, &g->vp.pci, e);
    if (ret < 0) {
        free(g);
        return ret;
    }
    if (h->display && !h->display->gpu) {   /* the first gpu feeds the display */
        g->display = h->display;
        h->display->gpu = g;
    }
    return 0;
}

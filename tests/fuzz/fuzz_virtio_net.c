/* libFuzzer target: virtio-net driven by a hostile guest.  The input picks
 * the driver's features and queue size, supplies guest RAM (descriptor
 * tables, rings, buffers, headers: anything) and then a sequence of
 * operations: transmit kicks, receive kicks, frames arriving from the
 * backend (any length, also impossible ones) and config space reads.
 * Whatever the guest does, the VMM must not crash, touch memory outside
 * guest RAM, leak, or loop forever; the backend only ever sees frames of
 * legal length.
 *
 * Input layout:
 *   header (4 bytes): features (bit 0 MRG_RXBUF, 1 CSUM, 2 GUEST_CSUM,
 *                     3 EVENT_IDX), queue size 1 << (byte 1 % 5),
 *                     ram_len (2)
 *   ram_len bytes     copied over guest RAM from RAM + 0 once the driver
 *                     has set the queues up (rings at RAM + 0 and + 0x4000)
 *   ops, 4 bytes each: op (% 4: tx kick, rx kick, backend frame, config
 *                     read), a byte, a 16-bit value */
#include <stdlib.h>
#include <string.h>

#include "net/net.h"

#include "unit.h"

#include "virtio_driver.h"

static uint8_t frame_buf[4096];

static void fz_send(struct net_backend *be, const uint8_t *frame, size_t len)
{
    (void)be;
    if (len < NET_ETH_HLEN || len > NET_MAX_FRAME)
        abort();
    volatile uint8_t sink = frame[0] ^ frame[len - 1];   /* the whole frame is readable */
    (void)sink;
}

static void fz_free(struct net_backend *be) { (void)be; }

static const struct net_backend_ops fz_ops = { .send = fz_send, .free = fz_free };
static struct net_backend fz_be = { .ops = &fz_ops, .name = "fuzz" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    if (!init) {
        if (gmem_add_ram(&mem, RAM, RAM_SIZE, NULL) < 0)
            abort();
        for (size_t i = 0; i < sizeof(frame_buf); i++)
            frame_buf[i] = (uint8_t)(i * 13);
        init = true;
    }
    if (size < 4)
        return 0;
    setup();
    struct virtio_host h = { .pb = &pb, .mem = &mem, .loop = NULL };
    struct err e;
    if (virtio_net_create_backend(&h, &fz_be, NULL, &e) < 0)
        abort();
    uint64_t features = STD_FEATURES;
    if (data[0] & 1)
        features |= 1ull << 15;
    if (data[0] & 2)
        features |= 1ull << 0;
    if (data[0] & 4)
        features |= 1ull << 1;
    if (data[0] & 8)
        features |= 1ull << VIRTIO_RING_F_EVENT_IDX;
    uint16_t qsize = (uint16_t)(1u << (data[1] % 5));
    struct drv d;
    drv_probe(&d, 1, RAM);
    drv_init(&d, features, 2, qsize);
    size_t ram_len = (size_t)(data[2] | data[3] << 8);
    data += 4;
    size -= 4;
    if (ram_len > size)
        ram_len = size;
    memcpy(gp(RAM, ram_len), data, ram_len);
    data += ram_len;
    size -= ram_len;
    for (; size >= 4; data += 4, size -= 4) {
        uint16_t v = (uint16_t)(data[2] | data[3] << 8);
        switch (data[0] % 4) {
        case 0: drv_kick(&d, 1); break;
        case 1: drv_kick(&d, 0); break;
        case 2: fz_be.receive(fz_be.opaque, frame_buf, v % sizeof(frame_buf)); break;
        case 3: {
            uint64_t val;
            bus_read(&mmio, d.bar + d.device + data[1] % 16, 1u << (v % 3), &val);
            break;
        }
        }
    }
    pci_bus_destroy(&pb);
    return 0;
}

/* Unit tests for virtio-input as a keyboard (`--device virtio-keyboard`),
 * driven through ECAM and the BAR by the minimal guest driver: identity and
 * feature negotiation, config queries (what Linux's virtio_input asks),
 * key events delivered in order to posted buffers, buffering while the
 * guest has no buffers posted, overflow (oldest whole reports dropped, no
 * key left stuck down in the guest), the statusq, and a hostile driver's
 * buffers marking the device NEEDS_RESET without taking anything else
 * down.  The board's pointer to the keyboard (virtio_host.keyboard) is set
 * by the first keyboard and cleared when the bus frees it. */
#include <errno.h>
#include <string.h>

#include "pci/pci.h"
#include "virtio/virtio_input.h"
#include "virtio/virtio_pci.h"

#include "unit.h"

#include "virtio_driver.h"

#define EVQ VIRTIO_INPUT_EVENTQ
#define STQ VIRTIO_INPUT_STATUSQ
#define QSIZE 64
#define KEY_A 30
#define KEY_B 48
#define KEY_C 46
#define KEY_D 32

static struct virtio_input *kbd;

static int create(const char *spec, struct err *e)
{
    return virtio_pci_create(&(struct virtio_host){ .pb = &pb, .mem = &mem, .keyboard = &kbd },
                             spec, e);
}

/* --- config space ------------------------------------------------------------- */

static unsigned cfg_query(struct drv *d, uint8_t sel, uint8_t sub)
{
    bar_wr(d, d->device + VIRTIO_INPUT_CFG_SELECT, 1, sel);
    bar_wr(d, d->device + VIRTIO_INPUT_CFG_SUBSEL, 1, sub);
    return (unsigned)bar_rd(d, d->device + VIRTIO_INPUT_CFG_SIZE, 1);
}

/* n bytes of the union, one byte at a time (as virtio_cread_bytes does). */
static void cfg_union(struct drv *d, void *out, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        ((uint8_t *)out)[i] = (uint8_t)bar_rd(d, d->device + VIRTIO_INPUT_CFG_U + i, 1);
}

static bool bitmap_has(const uint8_t *b, unsigned bit) { return b[bit / 8] >> (bit % 8) & 1; }

/* --- the eventq as the driver sees it ---------------------------------------- */

struct ev {
    uint16_t type, code;
    uint32_t value;
};

/* Event buffers: descriptor i is 8 writable bytes at buf + 8 * i. */
struct evq {
    struct drv *d;
    unsigned posted, seen;      /* buffers made available, used entries read */
};

static void evq_post(struct evq *q, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        unsigned id = q->posted++ % QSIZE;
        put_desc(q->d->desc[EVQ], id, q->d->buf + 8 * id, 8, VIRTQ_DESC_F_WRITE, 0);
        drv_avail(q->d, EVQ, (uint16_t)id);
    }
    drv_kick(q->d, EVQ);
}

/* Read the used entries not seen yet (at most max); returns how many. */
static unsigned evq_collect(struct evq *q, struct ev *out, unsigned max)
{
    unsigned n = 0;
    while ((uint16_t)q->seen != used_idx(q->d, EVQ) && n < max) {
        uint64_t ent = q->d->used[EVQ] + 4 + 8ull * (q->seen % QSIZE);
        uint32_t id = rd32(ent), len = rd32(ent + 4);
        EQ(len, 8);
        CHECK(id < QSIZE, "used id %u", id);
        const uint8_t *b = gp(q->d->buf + 8 * (id % QSIZE), 8);
        out[n].type = (uint16_t)(b[0] | b[1] << 8);
        out[n].code = (uint16_t)(b[2] | b[3] << 8);
        out[n].value = b[4] | b[5] << 8 | b[6] << 16 | (uint32_t)b[7] << 24;
        n++;
        q->seen++;
    }
    return n;
}

/* Post buffers and collect until the device has nothing more. */
static unsigned evq_drain(struct evq *q, struct ev *out, unsigned max)
{
    unsigned n = 0;
    for (;;) {
        evq_post(q, QSIZE - (q->posted - q->seen));
        unsigned got = evq_collect(q, out + n, max - n);
        n += got;
        if (!got || n == max)
            return n;
    }
}

#define EV_EQ(e, t, c, v)                                                   \
    do {                                                                    \
        EQ((e).type, t);                                                    \
        EQ((e).code, c);                                                    \
        EQ((e).value, v);                                                   \
    } while (0)

static void expect_key(const struct ev *e, unsigned code, unsigned value)
{
    EV_EQ(e[0], VIRTIO_INPUT_EV_KEY, code, value);
    EV_EQ(e[1], VIRTIO_INPUT_EV_SYN, VIRTIO_INPUT_SYN_REPORT, 0);
}

/* Initialise the driver (both queues of QSIZE) and its eventq view. */
static void init(struct drv *d, struct evq *q, unsigned slot)
{
    drv_probe(d, slot, RAM + 0x100000ull * (slot - 1));
    EQ(drv_init(d, STD_FEATURES, 2, QSIZE), 0x0f);
    *q = (struct evq){ .d = d };
}

/* A status event (driver -> device) in descriptor 0 of the statusq. */
static void status_send(struct drv *d, uint16_t type, uint16_t code, uint32_t value,
                        uint16_t flags, uint32_t len)
{
    static unsigned next;
    unsigned id = next++ % QSIZE;
    uint64_t b = d->buf + 0x1000 + 8 * id;
    uint8_t ev[8] = { (uint8_t)type, (uint8_t)(type >> 8), (uint8_t)code, (uint8_t)(code >> 8),
                      (uint8_t)value, (uint8_t)(value >> 8), (uint8_t)(value >> 16),
                      (uint8_t)(value >> 24) };
    memcpy(gp(b, 8), ev, 8);
    put_desc(d->desc[STQ], id, b, len, flags, 0);
    drv_avail(d, STQ, (uint16_t)id);
    drv_kick(d, STQ);
}

/* --- tests ----------------------------------------------------------------- */

static void test_identity_and_negotiation(void)
{
    setup();
    kbd = NULL;
    struct err e;
    EQ(create("virtio-keyboard,foo=1", &e), -EINVAL);
    CHECK(strstr(e.msg, "no options") != NULL, "message: %s", e.msg);
    CHECK(kbd == NULL, "a failed keyboard was kept");
    CHECK(virtio_device_known("virtio-keyboard"), "virtio-keyboard not known");
    EQ(create("virtio-keyboard", NULL), 0);
    struct virtio_input *first = kbd;
    CHECK(first != NULL, "the board did not get the keyboard");
    EQ(create("virtio-keyboard", NULL), 0);                  /* slot 2 */
    CHECK(kbd == first, "a second keyboard replaced the first");
    /* identity: modern-only virtio-input, input device class */
    EQ(cfg_rd(1, PCI_VENDOR_ID, 2), 0x1af4);
    EQ(cfg_rd(1, PCI_DEVICE_ID, 2), 0x1040 + 18);
    EQ(cfg_rd(1, PCI_REVISION_ID, 1), 1);
    EQ(cfg_rd(1, PCI_REVISION_ID, 4) >> 8, 0x098000);
    EQ(cfg_rd(1, PCI_SUBSYSTEM_ID, 2), VIRTIO_ID_INPUT);
    struct drv d;
    drv_probe(&d, 1, RAM);
    EQ(d.device, VIRTIO_PCI_DEVICE_OFF);
    EQ(d.device_len, 136);
    /* offered: nothing of its own */
    bar_wr(&d, COMMON(&d, DFSELECT), 4, 0);
    EQ(bar_rd(&d, COMMON(&d, DF), 4), (1u << 28) | (1u << 29));
    bar_wr(&d, COMMON(&d, DFSELECT), 4, 1);
    EQ(bar_rd(&d, COMMON(&d, DF), 4), 1);
    EQ(bar_rd(&d, COMMON(&d, NUMQ), 2), 2);
    bar_wr(&d, COMMON(&d, Q_SELECT), 2, 1);
    EQ(bar_rd(&d, COMMON(&d, Q_SIZE), 2), 64);
    /* a driver accepting a feature that was not offered, or no VERSION_1 */
    EQ(drv_init(&d, STD_FEATURES | 1, 2, QSIZE) & VIRTIO_STATUS_FEATURES_OK, 0);
    EQ(drv_init(&d, 1ull << VIRTIO_RING_F_INDIRECT_DESC, 2, QSIZE) &
       VIRTIO_STATUS_FEATURES_OK, 0);
    /* Linux's: VERSION_1 (+ ring features) */
    EQ(drv_init(&d, STD_FEATURES | (1ull << VIRTIO_RING_F_EVENT_IDX), 2, QSIZE), 0x0f);
    bar_wr(&d, COMMON(&d, GFSELECT), 4, 1);
    EQ(bar_rd(&d, COMMON(&d, GF), 4), 1);
    pci_bus_destroy(&pb);
    CHECK(kbd == NULL, "the board's pointer outlived the keyboard");
}

static void test_config(void)
{
    setup();
    kbd = NULL;
    EQ(create("virtio-keyboard", NULL), 0);
    struct drv d;
    drv_probe(&d, 1, RAM);
    uint8_t u[128];
    /* before any select: UNSET */
    EQ(bar_rd(&d, d.device + VIRTIO_INPUT_CFG_SIZE, 1), 0);
    /* name, without a NUL */
    const char *name = "Petrel Virtio Keyboard";
    EQ(cfg_query(&d, VIRTIO_INPUT_CFG_ID_NAME, 0), strlen(name));
    memset(u, 0xaa, sizeof(u));
    cfg_union(&d, u, 128);
    CHECK(!memcmp(u, name, strlen(name)), "name '%.22s'", (char *)u);
    EQ(u[strlen(name)], 0);
    EQ(cfg_query(&d, VIRTIO_INPUT_CFG_ID_NAME, 1), 0);       /* subsel must be 0 */
    /* serial */
    EQ(cfg_query(&d, VIRTIO_INPUT_CFG_ID_SERIAL, 0), strlen("petrel-kbd-1"));
    cfg_union(&d, u, 12);
    CHECK(!memcmp(u, "petrel-kbd-1", 12), "serial '%.12s'", (char *)u);
    /* ids, read as Linux does (16-bit fields) */
    EQ(cfg_query(&d, VIRTIO_INPUT_CFG_ID_DEVIDS, 0), 8);
    EQ(bar_rd(&d, d.device + 8, 2), VIRTIO_INPUT_BUS_VIRTUAL);
    EQ(bar_rd(&d, d.device + 10, 2), 0x1af4);
    EQ(bar_rd(&d, d.device + 12, 2), 0x1052);
    EQ(bar_rd(&d, d.device + 14, 2), 1);
    /* no input properties, no axes */
    EQ(cfg_query(&d, VIRTIO_INPUT_CFG_PROP_BITS, 0), 0);
    EQ(cfg_query(&d, VIRTIO_INPUT_CFG_ABS_INFO, 0), 0);
    /* EV_KEY: the keyboard's keys, KEY_POWER among them */
    unsigned n = cfg_query(&d, VIRTIO_INPUT_CFG_EV_BITS, VIRTIO_INPUT_EV_KEY);
    CHECK(n >= 15 && n <= 128, "EV_KEY bitmap of %u bytes", n);
    memset(u, 0, sizeof(u));
    cfg_union(&d, u, n);
    CHECK(bitmap_has(u, VIRTIO_INPUT_KEY_POWER), "no KEY_POWER");
    for (unsigned k = 1; k <= 83; k++)              /* KEY_ESC .. KEY_KPDOT */
        CHECK(bitmap_has(u, k), "no key %u", k);
    CHECK(bitmap_has(u, 87) && bitmap_has(u, 88), "no F11/F12");
    CHECK(bitmap_has(u, 103) && bitmap_has(u, 108) && bitmap_has(u, 125), "no UP/DOWN/LEFTMETA");
    CHECK(!bitmap_has(u, 0) && !bitmap_has(u, 84), "KEY_RESERVED or code 84 advertised");
    /* the same bitmap through 32-bit reads */
    uint32_t w = (uint32_t)bar_rd(&d, d.device + 8 + 12, 4);
    EQ(w, (uint32_t)(u[12] | u[13] << 8 | u[14] << 16 | (uint32_t)u[15] << 24));
    /* EV_REP (guest autorepeat), EV_LED (Num, Caps, Scroll) */
    EQ(cfg_query(&d, VIRTIO_INPUT_CFG_EV_BITS, VIRTIO_INPUT_EV_REP), 1);
    EQ(cfg_query(&d, VIRTIO_INPUT_CFG_EV_BITS, VIRTIO_INPUT_EV_LED), 1);
    EQ(bar_rd(&d, d.device + 8, 1), 0x07);
    /* what a keyboard does not have; the other types Linux asks about */
    static const uint8_t none[] = { 0 /* SYN */, 2 /* REL */, 3 /* ABS */, 4 /* MSC */,
                                    5 /* SW */, 0x12 /* SND */, 0x1f };
    for (unsigned i = 0; i < sizeof(none); i++)
        EQ(cfg_query(&d, VIRTIO_INPUT_CFG_EV_BITS, none[i]), 0);
    EQ(cfg_query(&d, 0x7f, 0), 0);                           /* unknown select */
    EQ(cfg_query(&d, VIRTIO_INPUT_CFG_UNSET, 0), 0);
    /* subsel first, then select (either order); both in one 16-bit write */
    bar_wr(&d, d.device + VIRTIO_INPUT_CFG_SUBSEL, 1, VIRTIO_INPUT_EV_KEY);
    bar_wr(&d, d.device + VIRTIO_INPUT_CFG_SELECT, 1, VIRTIO_INPUT_CFG_EV_BITS);
    EQ(bar_rd(&d, d.device + VIRTIO_INPUT_CFG_SIZE, 1), n);
    bar_wr(&d, d.device, 2, VIRTIO_INPUT_CFG_ID_DEVIDS);
    EQ(bar_rd(&d, d.device + VIRTIO_INPUT_CFG_SIZE, 1), 8);
    EQ(bar_rd(&d, d.device, 2), VIRTIO_INPUT_CFG_ID_DEVIDS);
    /* everything else is read-only */
    bar_wr(&d, d.device + VIRTIO_INPUT_CFG_SIZE, 1, 0x55);
    bar_wr(&d, d.device + 8, 4, 0xffffffff);
    bar_wr(&d, d.device + 132, 4, 0xffffffff);
    EQ(bar_rd(&d, d.device + VIRTIO_INPUT_CFG_SIZE, 1), 8);
    EQ(bar_rd(&d, d.device + 8, 2), VIRTIO_INPUT_BUS_VIRTUAL);
    EQ(bar_rd(&d, d.device + 132, 4), 0);
    EQ(bar_rd(&d, d.device + 136, 4), 0);                     /* past the config */
    /* a reset forgets the selection */
    bar_wr(&d, COMMON(&d, STATUS), 1, 0);
    EQ(bar_rd(&d, d.device, 4), 0);
    pci_bus_destroy(&pb);
}

static void test_events_in_order(void)
{
    setup();
    kbd = NULL;
    EQ(create("virtio-keyboard", NULL), 0);
    struct drv d;
    struct evq q;
    struct ev ev[16];
    init(&d, &q, 1);
    evq_post(&q, 8);
    EQ(used_idx(&d, EVQ), 0);                                /* nothing to say yet */
    CHECK(!line(&d), "interrupt without events");
    EQ(virtio_input_key(kbd, KEY_A, true), 0);
    EQ(used_idx(&d, EVQ), 2);
    CHECK(line(&d), "no interrupt for delivered events");
    EQ(bar_rd(&d, d.isr, 1), VIRTIO_PCI_ISR_QUEUE);
    EQ(virtio_input_key(kbd, KEY_A, false), 0);
    EQ(virtio_input_power_button(kbd, &(struct err){ 0 }), 0);
    EQ(evq_collect(&q, ev, 16), 8);
    expect_key(ev + 0, KEY_A, 1);
    expect_key(ev + 2, KEY_A, 0);
    expect_key(ev + 4, VIRTIO_INPUT_KEY_POWER, 1);
    expect_key(ev + 6, VIRTIO_INPUT_KEY_POWER, 0);
    /* keys the keyboard does not have, no keyboard */
    EQ(virtio_input_key(kbd, 0, true), -EINVAL);
    EQ(virtio_input_key(kbd, 84, true), -EINVAL);
    EQ(virtio_input_key(kbd, 0x2ff, true), -EINVAL);
    EQ(virtio_input_key(kbd, 100000, false), -EINVAL);
    EQ(virtio_input_key(NULL, KEY_A, true), -ENODEV);
    EQ(virtio_input_power_button(NULL, &(struct err){ 0 }), -ENOTSUP);
    evq_post(&q, 4);
    EQ(evq_collect(&q, ev, 16), 0);                          /* nothing was queued */
    /* a bigger buffer, or one in two parts, takes one event */
    put_desc(d.desc[EVQ], 40, d.buf + 0x800, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 41);
    put_desc(d.desc[EVQ], 41, d.buf + 0x804, 60, VIRTQ_DESC_F_WRITE, 0);
    EQ(virtio_input_key(kbd, KEY_B, true), 0);               /* into the 4 posted above */
    EQ(virtio_input_key(kbd, KEY_B, false), 0);
    EQ(evq_collect(&q, ev, 16), 4);
    expect_key(ev, KEY_B, 1);
    expect_key(ev + 2, KEY_B, 0);
    drv_avail(&d, EVQ, 40);
    drv_kick(&d, EVQ);
    EQ(virtio_input_key(kbd, KEY_C, true), 0);
    EQ(used_idx(&d, EVQ), 13);
    EQ(rd32(d.used[EVQ] + 4 + 8 * 12), 40);
    EQ(rd32(d.used[EVQ] + 8 + 8 * 12), 8);
    const uint8_t *b = gp(d.buf + 0x800, 8);
    EQ(b[0] | b[1] << 8, VIRTIO_INPUT_EV_KEY);
    EQ(b[2] | b[3] << 8, KEY_C);
    EQ(b[4], 1);
    /* statusq: LED changes are taken and returned with nothing written */
    status_send(&d, VIRTIO_INPUT_EV_LED, 1 /* LED_CAPSL */, 1, 0, 8);
    status_send(&d, VIRTIO_INPUT_EV_LED, 1, 0, 0, 8);
    status_send(&d, 0x7fff, 0xffff, 0xffffffff, 0, 8);       /* nonsense event: ignored */
    EQ(used_idx(&d, STQ), 3);
    EQ(rd32(d.used[STQ] + 8), 0);
    EQ(status(&d), 0x0f);
    pci_bus_destroy(&pb);
}

static void test_buffering(void)
{
    setup();
    kbd = NULL;
    EQ(create("virtio-keyboard", NULL), 0);
    struct drv d;
    struct evq q;
    struct ev ev[16];
    /* before any driver: kept for it (the power button while it boots) */
    EQ(virtio_input_power_button(kbd, &(struct err){ 0 }), 0);
    init(&d, &q, 1);                     /* resets the device first: the events stay */
    EQ(used_idx(&d, EVQ), 0);
    evq_post(&q, 2);
    EQ(evq_collect(&q, ev, 16), 2);
    expect_key(ev, VIRTIO_INPUT_KEY_POWER, 1);
    evq_post(&q, 2);
    EQ(evq_collect(&q, ev, 16), 2);
    expect_key(ev, VIRTIO_INPUT_KEY_POWER, 0);
    /* no buffers posted: nothing happens, nothing is lost */
    EQ(virtio_input_key(kbd, KEY_B, true), 0);
    EQ(virtio_input_key(kbd, KEY_B, false), 0);
    EQ(virtio_input_key(kbd, KEY_C, true), 0);
    EQ(virtio_input_key(kbd, KEY_C, false), 0);
    EQ(used_idx(&d, EVQ), 4);
    evq_post(&q, 3);                     /* part of the way: in order, a report split */
    EQ(evq_collect(&q, ev, 16), 3);
    expect_key(ev, KEY_B, 1);
    EV_EQ(ev[2], VIRTIO_INPUT_EV_KEY, KEY_B, 0);
    evq_post(&q, 10);                    /* the rest */
    EQ(evq_collect(&q, ev, 16), 5);
    EV_EQ(ev[0], VIRTIO_INPUT_EV_SYN, VIRTIO_INPUT_SYN_REPORT, 0);
    expect_key(ev + 1, KEY_C, 1);
    expect_key(ev + 3, KEY_C, 0);
    /* 5 buffers still posted: the next key goes straight in */
    EQ(virtio_input_key(kbd, KEY_D, true), 0);
    EQ(evq_collect(&q, ev, 16), 2);
    expect_key(ev, KEY_D, 1);
    /* bus mastering off: held back until it is on again and the queue kicked */
    cfg_wr(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    EQ(virtio_input_key(kbd, KEY_D, false), 0);
    EQ(evq_collect(&q, ev, 16), 0);
    cfg_wr(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    drv_kick(&d, EVQ);
    EQ(evq_collect(&q, ev, 16), 2);
    expect_key(ev, KEY_D, 0);
    /* the driver resets with events waiting: the next driver gets them */
    EQ(virtio_input_key(kbd, KEY_A, true), 0);
    EQ(virtio_input_key(kbd, KEY_A, false), 0);
    EQ(evq_collect(&q, ev, 16), 1);      /* one buffer was left */
    init(&d, &q, 1);
    evq_post(&q, 8);
    EQ(evq_collect(&q, ev, 16), 3);
    EV_EQ(ev[0], VIRTIO_INPUT_EV_SYN, VIRTIO_INPUT_SYN_REPORT, 0);
    expect_key(ev + 1, KEY_A, 0);
    pci_bus_destroy(&pb);
}

/* Keys for long sequences: Q W E R T Y U I O P. */
static unsigned seq_key(unsigned i) { return 16 + i % 10; }

/* Check a delivered stream: every report is one key event + SYN_REPORT
 * (allow_multi: corrective reports may carry several keys), and return
 * the key state it leaves the guest in (keys[] = 1: down). */
static void replay(const struct ev *ev, unsigned n, uint8_t *keys, bool allow_multi)
{
    unsigned in_report = 0;
    for (unsigned i = 0; i < n; i++) {
        if (ev[i].type == VIRTIO_INPUT_EV_SYN) {
            EQ(ev[i].code, VIRTIO_INPUT_SYN_REPORT);
            CHECK(in_report >= 1, "empty report at %u", i);
            in_report = 0;
            continue;
        }
        EQ(ev[i].type, VIRTIO_INPUT_EV_KEY);
        CHECK(ev[i].code < 256 && ev[i].value <= 1, "event %u: key %u value %u", i, ev[i].code,
              ev[i].value);
        if (ev[i].code < 256)
            keys[ev[i].code] = (uint8_t)ev[i].value;
        in_report++;
        CHECK(allow_multi || in_report == 1, "report with %u keys at %u", in_report, i);
    }
}

static void test_overflow(void)
{
    setup();
    kbd = NULL;
    EQ(create("virtio-keyboard", NULL), 0);
    struct drv d;
    struct evq q;
    static struct ev ev[2 * VIRTIO_INPUT_RING];
    uint8_t keys[256];
    init(&d, &q, 1);
    /* 80 keystrokes (320 events) into a ring of 256: the first 16 go */
    EQ(VIRTIO_INPUT_RING, 256);
    for (unsigned i = 0; i < 80; i++) {
        EQ(virtio_input_key(kbd, seq_key(i), true), 0);
        EQ(virtio_input_key(kbd, seq_key(i), false), 0);
    }
    EQ(used_idx(&d, EVQ), 0);
    unsigned n = evq_drain(&q, ev, 2 * VIRTIO_INPUT_RING);
    EQ(n, VIRTIO_INPUT_RING);
    for (unsigned i = 0; i < 64 && 4 * i + 3 < n; i++) {
        expect_key(ev + 4 * i, seq_key(16 + i), 1);
        expect_key(ev + 4 * i + 2, seq_key(16 + i), 0);
    }
    /* delivery works normally afterwards */
    EQ(virtio_input_key(kbd, KEY_A, true), 0);
    EQ(virtio_input_key(kbd, KEY_A, false), 0);
    EQ(evq_collect(&q, ev, 8), 4);
    expect_key(ev, KEY_A, 1);

    /* A stuck key: the guest takes a press, then no more buffers; its
     * release is among the dropped events.  The guest must end with every
     * key up, as the host has them. */
    init(&d, &q, 1);
    evq_post(&q, 2);
    EQ(virtio_input_key(kbd, KEY_A, true), 0);
    unsigned m = evq_collect(&q, ev, 2);
    EQ(m, 2);
    EQ(virtio_input_key(kbd, KEY_A, false), 0);
    for (unsigned i = 0; i < 70; i++) {
        EQ(virtio_input_key(kbd, seq_key(i), true), 0);
        EQ(virtio_input_key(kbd, seq_key(i), false), 0);
    }
    m += evq_drain(&q, ev + m, 2 * VIRTIO_INPUT_RING - m);
    CHECK(m <= 2 + VIRTIO_INPUT_RING, "%u events delivered", m);
    bool a_released = false;
    for (unsigned i = 2; i < m; i++)
        a_released |= ev[i].type == VIRTIO_INPUT_EV_KEY && ev[i].code == KEY_A && !ev[i].value;
    CHECK(a_released, "KEY_A left pressed in the guest");
    memset(keys, 0, sizeof(keys));
    replay(ev, m, keys, true);
    for (unsigned k = 0; k < 256; k++)
        CHECK(!keys[k], "key %u down in the guest, up on the host", k);
    /* ... and a key the host holds stays down */
    init(&d, &q, 1);
    evq_post(&q, 2);
    EQ(virtio_input_key(kbd, KEY_B, true), 0);
    EQ(evq_collect(&q, ev, 2), 2);
    for (unsigned i = 0; i < 70; i++) {
        EQ(virtio_input_key(kbd, seq_key(i), true), 0);
        EQ(virtio_input_key(kbd, seq_key(i), false), 0);
    }
    m = evq_drain(&q, ev, 2 * VIRTIO_INPUT_RING);
    memset(keys, 0, sizeof(keys));
    keys[KEY_B] = 1;
    replay(ev, m, keys, true);
    EQ(keys[KEY_B], 1);
    for (unsigned k = 0; k < 256; k++)
        CHECK(k == KEY_B || !keys[k], "key %u down in the guest, up on the host", k);
    EQ(virtio_input_key(kbd, KEY_B, false), 0);
    EQ(evq_drain(&q, ev, 8), 2);
    expect_key(ev, KEY_B, 0);

    /* A report split when buffers ran out: its rest is not dropped, the
     * report after it goes instead. */
    init(&d, &q, 1);
    evq_post(&q, 1);
    EQ(virtio_input_key(kbd, KEY_C, true), 0);
    EQ(evq_collect(&q, ev, 1), 1);
    EV_EQ(ev[0], VIRTIO_INPUT_EV_KEY, KEY_C, 1);             /* its SYN_REPORT waits */
    for (unsigned i = 0; i < 64; i++) {                       /* 1 + 256 events */
        EQ(virtio_input_key(kbd, seq_key(i), true), 0);
        EQ(virtio_input_key(kbd, seq_key(i), false), 0);
    }
    m = evq_drain(&q, ev + 1, 2 * VIRTIO_INPUT_RING - 1) + 1;
    EQ(m, VIRTIO_INPUT_RING);                /* 2 + 256 made, 2 dropped */
    EV_EQ(ev[1], VIRTIO_INPUT_EV_SYN, VIRTIO_INPUT_SYN_REPORT, 0);   /* the rest */
    expect_key(ev + 2, seq_key(0), 0);       /* key 0's press was the one dropped */
    expect_key(ev + 4, seq_key(1), 1);
    memset(keys, 0, sizeof(keys));
    replay(ev, m, keys, false);
    EQ(keys[KEY_C], 1);                      /* held on the host */
    pci_bus_destroy(&pb);
}

/* A hostile driver's event buffers: NEEDS_RESET with a config interrupt,
 * nothing written, the other queue goes on, a reset recovers (events kept). */
static void test_bad_buffers(void)
{
    setup();
    kbd = NULL;
    EQ(create("virtio-keyboard", NULL), 0);
    struct drv d;
    struct evq q;
    struct ev ev[16];
    static const struct { uint16_t flags; uint32_t len; bool chain_readable; } bad[] = {
        { 0, 8, false },                     /* read-only */
        { VIRTQ_DESC_F_WRITE, 4, false },    /* too short */
        { VIRTQ_DESC_F_WRITE, 8, true },     /* a readable part before the writable one */
    };
    for (unsigned t = 0; t < sizeof(bad) / sizeof(bad[0]); t++) {
        init(&d, &q, 1);
        memset(gp(d.buf, 16), 0x5a, 16);
        if (bad[t].chain_readable) {
            put_desc(d.desc[EVQ], 0, d.buf + 8, 8, VIRTQ_DESC_F_NEXT, 1);
            put_desc(d.desc[EVQ], 1, d.buf, bad[t].len, bad[t].flags, 0);
        } else {
            put_desc(d.desc[EVQ], 0, d.buf, bad[t].len, bad[t].flags, 0);
        }
        drv_avail(&d, EVQ, 0);
        drv_kick(&d, EVQ);
        EQ(status(&d), 0x0f);                /* no events yet: not looked at */
        EQ(virtio_input_key(kbd, KEY_A, true), 0);
        EQ(status(&d), 0x0f | VIRTIO_STATUS_NEEDS_RESET);
        EQ(used_idx(&d, EVQ), 0);
        EQ(*(uint8_t *)gp(d.buf, 1), 0x5a);  /* nothing written */
        CHECK(line(&d), "no config interrupt");
        EQ(bar_rd(&d, d.isr, 1), VIRTIO_PCI_ISR_CONFIG);
        /* more keys and valid buffers: nothing taken, nothing crashes */
        EQ(virtio_input_key(kbd, KEY_A, false), 0);
        EQ(virtio_input_power_button(kbd, &(struct err){ 0 }), 0);
        q.posted = 1;
        evq_post(&q, 4);
        EQ(used_idx(&d, EVQ), 0);
        /* the statusq goes on */
        status_send(&d, VIRTIO_INPUT_EV_LED, 0, 1, 0, 8);
        EQ(used_idx(&d, STQ), 1);
        /* reset: the new driver gets what was queued, from the first event */
        init(&d, &q, 1);
        EQ(evq_drain(&q, ev, 16), 8);
        expect_key(ev, KEY_A, 1);
        expect_key(ev + 2, KEY_A, 0);
        expect_key(ev + 4, VIRTIO_INPUT_KEY_POWER, 1);
        expect_key(ev + 6, VIRTIO_INPUT_KEY_POWER, 0);
        EQ(status(&d), 0x0f);
    }
    /* a loop in the eventq (the core's check): the same outcome */
    init(&d, &q, 1);
    put_desc(d.desc[EVQ], 0, d.buf, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    put_desc(d.desc[EVQ], 1, d.buf + 8, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
    drv_avail(&d, EVQ, 0);
    drv_kick(&d, EVQ);
    EQ(status(&d), 0x0f);                    /* not taken while there is nothing to say */
    EQ(virtio_input_key(kbd, KEY_A, true), 0);
    EQ(status(&d) & VIRTIO_STATUS_NEEDS_RESET, VIRTIO_STATUS_NEEDS_RESET);
    EQ(used_idx(&d, EVQ), 0);
    /* statusq buffers: writable, too short, readable + writable */
    static const struct { uint16_t flags; uint32_t len; } sbad[] = {
        { VIRTQ_DESC_F_WRITE, 8 }, { 0, 4 }, { VIRTQ_DESC_F_WRITE, 4 },
    };
    for (unsigned t = 0; t < sizeof(sbad) / sizeof(sbad[0]); t++) {
        init(&d, &q, 1);
        status_send(&d, VIRTIO_INPUT_EV_LED, 0, 1, sbad[t].flags, sbad[t].len);
        EQ(status(&d), 0x0f | VIRTIO_STATUS_NEEDS_RESET);
        EQ(used_idx(&d, STQ), 0);
        status_send(&d, VIRTIO_INPUT_EV_LED, 0, 1, 0, 8);     /* broken: not taken */
        EQ(used_idx(&d, STQ), 0);
        /* the eventq goes on (and delivers what was queued so far) */
        unsigned n = evq_drain(&q, ev, 16);
        EQ(n, t == 0 ? 2 : 0);               /* KEY_A from the loop test */
        EQ(virtio_input_key(kbd, KEY_B, true), 0);
        EQ(evq_collect(&q, ev, 16), 2);
        expect_key(ev, KEY_B, 1);
        EQ(virtio_input_key(kbd, KEY_B, false), 0);
        EQ(evq_collect(&q, ev, 16), 2);
    }
    init(&d, &q, 1);
    put_desc(d.desc[STQ], 0, d.buf + 0x1000, 8, VIRTQ_DESC_F_NEXT, 1);
    put_desc(d.desc[STQ], 1, d.buf + 0x1008, 8, VIRTQ_DESC_F_WRITE, 0);
    drv_avail(&d, STQ, 0);
    drv_kick(&d, STQ);
    EQ(status(&d), 0x0f | VIRTIO_STATUS_NEEDS_RESET);
    pci_bus_destroy(&pb);
}

int main(void)
{
    if (gmem_add_ram(&mem, RAM, RAM_SIZE, NULL) < 0)
        return 1;
    test_identity_and_negotiation();
    test_config();
    test_events_in_order();
    test_buffering();
    test_overflow();
    test_bad_buffers();
    gmem_free(&mem);
    return unit_done("test_virtio_input");
}

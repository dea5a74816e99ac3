/* virtio-input (virtio spec 5.8) as a keyboard: `--device virtio-keyboard`,
 * Linux's virtio_input driver (an evdev device named "Petrel Virtio
 * Keyboard").  Interface for the rest of the VMM: virtio_input.h.
 *
 * Device
 * - Queue 0, the eventq, carries struct virtio_input_event (8 bytes, little
 *   endian) from the device to the driver, one event per buffer, as Linux
 *   posts them.  Queue 1, the statusq, carries events from the driver: LED
 *   changes, which are recorded (leds) and otherwise ignored.  No feature
 *   bits of its own.
 * - Config space is struct virtio_input_config (136 bytes): the driver
 *   writes select and subsel (in either order), the device answers in size
 *   and the union.  Answers: ID_NAME "Petrel Virtio Keyboard"; ID_SERIAL
 *   "petrel-kbd-SLOT" (unique within a VM, stable across boots); ID_DEVIDS
 *   bustype BUS_VIRTUAL, vendor 0x1af4 and product 0x1052 (the PCI ids),
 *   version 1; PROP_BITS size 0 (a keyboard has no input properties);
 *   EV_BITS for EV_KEY (the keys of a 105-key PC keyboard with the Japanese
 *   and Korean extras, media keys, KEY_POWER, KEY_SLEEP, KEY_WAKEUP), EV_REP
 *   (size 1, empty: the guest generates autorepeat) and EV_LED (Num, Caps
 *   and Scroll Lock, so the guest reports them on the statusq, as QEMU's
 *   virtio-keyboard does); everything else, ABS_INFO included, size 0.
 *   Strings carry no NUL terminator (spec 5.8.4).  Writes anywhere but
 *   select and subsel are logged and ignored.
 *
 * Events from the host
 * - virtio_input_key() appends EV_KEY + EV_SYN/SYN_REPORT to a bounded ring
 *   (VIRTIO_INPUT_RING events) and moves what it can into posted eventq
 *   buffers at once.  What does not fit waits and is delivered on the next
 *   eventq kick (the driver posting buffers), including the kick the device
 *   core makes at DRIVER_OK.  A report may reach the guest in two parts
 *   when buffers run out in its middle; the guest's input core applies
 *   nothing before the SYN_REPORT, so this is fine.
 * - A full ring drops its oldest whole reports (through their SYN_REPORT),
 *   never part of one (the rest of a report whose beginning the guest
 *   already has is kept; the report after it goes instead).  Dropping can
 *   lose the release of a key the guest has seen pressed, which would
 *   leave it stuck and autorepeating; so the device tracks which keys are
 *   down for the host and in what the guest was given, and after a drop
 *   appends one report that brings every key that would end up wrong to
 *   the host's state.
 *   One rate-limited line when dropping starts, one with the count when
 *   delivery resumes.
 * - The ring survives a device reset: what was typed or the power button
 *   pressed while the guest (re)loads its driver reaches the new driver
 *   (which starts with every key up).
 *
 * The guest is hostile.  An eventq buffer that is not at least 8 bytes of
 * device-writable memory, or that has device-readable parts, and a statusq
 * buffer that is not at least 8 bytes of device-readable memory, or has
 * device-writable parts, break the spec's MUSTs (5.8.6.1): the queue is
 * marked broken and the device NEEDS_RESET (virtio_needs_reset: config
 * interrupt, one rate-limited line); the buffer is not returned and the
 * event it was meant for stays queued for the driver after its reset.
 * Malformed chains are caught by the device core before that.
 *
 * Threads: none of its own.  Queue kicks, config accesses and the host's
 * calls all run in device context (the device lock held by the caller),
 * so the device takes no locks. */
#include "virtio/virtio_input.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/display.h"
#include "core/snapshot.h"
#include "virtio/virtio_pci.h"

#define INPUT_QUEUE_SIZE 64             /* Linux posts min(size, 64) event buffers */
#define INPUT_NQUEUES 2
#define PCI_CLASS_INPUT_OTHER 0x098000
#define INPUT_VENDOR VIRTIO_PCI_VENDOR
#define INPUT_PRODUCT (VIRTIO_PCI_DEVICE_BASE + VIRTIO_ID_INPUT)
#define INPUT_VERSION 1

/* The tablet (virtio-tablet): absolute X/Y in 0..DISPLAY_ABS_MAX, left,
 * right and middle buttons, a wheel; no LEDs.  Its buttons are not in the
 * keyboard's key bitmaps, so a dropped release is not resynchronised:
 * the next pointer event after it sends the buttons' state again only if
 * it changed. */

/* LEDs (EV_LED codes) */
#define LED_NUML 0
#define LED_CAPSL 1
#define LED_SCROLLL 2

/* The keys the keyboard has, as ranges of evdev codes. */
static const struct { unsigned first, last; } key_ranges[] = {
    { 1, 83 },          /* KEY_ESC .. KEY_KPDOT: the main block, F1-F10, keypad */
    { 85, 100 },        /* ZENKAKUHANKAKU, 102ND, F11, F12, the Japanese keys, KPENTER,
                           RIGHTCTRL, KPSLASH, SYSRQ, RIGHTALT */
    { 102, 111 },       /* HOME, UP, PAGEUP, LEFT, RIGHT, END, DOWN, PAGEDOWN, INSERT, DELETE */
    { 113, 117 },       /* MUTE, VOLUMEDOWN, VOLUMEUP, POWER, KPEQUAL */
    { 119, 119 },       /* PAUSE */
    { 121, 127 },       /* KPCOMMA, HANGEUL, HANJA, YEN, LEFTMETA, RIGHTMETA, COMPOSE */
    { 142, 143 },       /* SLEEP, WAKEUP */
};
#define KEY_MAX_CODE 143
#define KEY_BITMAP_LEN (KEY_MAX_CODE / 8 + 1)

struct kbd_event {
    uint16_t type, code;
    uint32_t value;
};

struct virtio_input {
    struct virtio_pci vp;
    struct virtio_input **owner;        /* the board's pointer to us, cleared at free */
    uint8_t keys[KEY_BITMAP_LEN];       /* the EV_KEY bitmap */
    uint8_t cfg[VIRTIO_INPUT_CFG_LEN];  /* config space as the driver sees it */
    /* events waiting for eventq buffers, oldest at head */
    struct kbd_event ring[VIRTIO_INPUT_RING];
    unsigned head, len;
    bool mid_report;                    /* the guest has part of the head's report */
    uint8_t guest_down[KEY_BITMAP_LEN]; /* keys down in what the guest was given */
    uint8_t host_down[KEY_BITMAP_LEN];  /* keys the host holds down */
    bool dropping;                      /* dropped since the last delivery */
    uint64_t dropped;                   /* events, since the last delivery */
    struct log_limit drop_log;
    uint8_t leds;                       /* last LED state the driver sent */
    bool tablet;                        /* a tablet (virtio-tablet), not a keyboard */
    unsigned buttons;                   /* tablet: DISPLAY_BTN_* the host holds */
    struct display *display;            /* where we plugged our input in, or NULL */
    struct virtq_chain chain;
};

/* --- config space ------------------------------------------------------------ */

/* The tablet's answer to select/subsel in u; returns its size.  EV_KEY:
 * the three buttons, EV_REL: the wheel, EV_ABS: X and Y, each 0..
 * DISPLAY_ABS_MAX (ABS_INFO: min, max, fuzz, flat, res as le32). */
static size_t tablet_cfg(const struct virtio_input *d, uint8_t sel, uint8_t sub, uint8_t *u)
{
    int n;
    switch (sel) {
    case VIRTIO_INPUT_CFG_ID_NAME:
    case VIRTIO_INPUT_CFG_ID_SERIAL:
        if (sub)
            return 0;
        n = sel == VIRTIO_INPUT_CFG_ID_NAME
                ? snprintf((char *)u, VIRTIO_INPUT_CFG_U_LEN, "%s", VIRTIO_INPUT_TABLET_NAME)
                : snprintf((char *)u, VIRTIO_INPUT_CFG_U_LEN, "petrel-tablet-%u",
                           d->vp.pci.slot);
        u[n] = 0;                       /* no NUL terminator counted */
        return (size_t)n;
    case VIRTIO_INPUT_CFG_ID_DEVIDS: {
        if (sub)
            return 0;
        const uint16_t ids[4] = { VIRTIO_INPUT_BUS_VIRTUAL, INPUT_VENDOR, INPUT_PRODUCT,
                                  INPUT_VERSION };
        for (unsigned i = 0; i < 4; i++) {
            u[2 * i] = (uint8_t)ids[i];
            u[2 * i + 1] = (uint8_t)(ids[i] >> 8);
        }
        return 8;
    }
    case VIRTIO_INPUT_CFG_EV_BITS:
        switch (sub) {
        case VIRTIO_INPUT_EV_KEY:
            for (unsigned b = VIRTIO_INPUT_BTN_LEFT; b <= VIRTIO_INPUT_BTN_MIDDLE; b++)
                u[b / 8] |= (uint8_t)(1u << (b % 8));
            return VIRTIO_INPUT_BTN_MIDDLE / 8 + 1;
        case VIRTIO_INPUT_EV_REL:
            u[VIRTIO_INPUT_REL_WHEEL / 8] = 1u << (VIRTIO_INPUT_REL_WHEEL % 8);
            return VIRTIO_INPUT_REL_WHEEL / 8 + 1;
        case VIRTIO_INPUT_EV_ABS:
            u[0] = 1u << VIRTIO_INPUT_ABS_X | 1u << VIRTIO_INPUT_ABS_Y;
            return 1;
        }
        return 0;
    case VIRTIO_INPUT_CFG_ABS_INFO:
        if (sub != VIRTIO_INPUT_ABS_X && sub != VIRTIO_INPUT_ABS_Y)
            return 0;
        u[4] = (uint8_t)DISPLAY_ABS_MAX;            /* max; min, fuzz, flat, res 0 */
        u[5] = (uint8_t)(DISPLAY_ABS_MAX >> 8);
        return 20;
    }
    return 0;
}

/* Answer the driver's select/subsel in size and the union. */
static void cfg_answer(struct virtio_input *d)
{
    uint8_t sel = d->cfg[VIRTIO_INPUT_CFG_SELECT], sub = d->cfg[VIRTIO_INPUT_CFG_SUBSEL];
    uint8_t *u = d->cfg + VIRTIO_INPUT_CFG_U;
    char s[VIRTIO_INPUT_CFG_U_LEN + 1];
    size_t size = 0;
    memset(u, 0, VIRTIO_INPUT_CFG_U_LEN);
    if (d->tablet) {
        size = tablet_cfg(d, sel, sub, u);
        d->cfg[VIRTIO_INPUT_CFG_SIZE] = (uint8_t)size;
        return;
    }
    switch (sel) {
    case VIRTIO_INPUT_CFG_ID_NAME:
    case VIRTIO_INPUT_CFG_ID_SERIAL:
        if (sub)
            break;
        if (sel == VIRTIO_INPUT_CFG_ID_NAME)
            snprintf(s, sizeof(s), "%s", VIRTIO_INPUT_KEYBOARD_NAME);
        else
            snprintf(s, sizeof(s), "petrel-kbd-%u", d->vp.pci.slot);
        size = strlen(s);               /* no NUL terminator */
        memcpy(u, s, size);
        break;
    case VIRTIO_INPUT_CFG_ID_DEVIDS: {
        if (sub)
            break;
        const uint16_t ids[4] = { VIRTIO_INPUT_BUS_VIRTUAL, INPUT_VENDOR, INPUT_PRODUCT,
                                  INPUT_VERSION };
        for (unsigned i = 0; i < 4; i++) {
            u[2 * i] = (uint8_t)ids[i];
            u[2 * i + 1] = (uint8_t)(ids[i] >> 8);
        }
        size = 8;
        break;
    }
    case VIRTIO_INPUT_CFG_EV_BITS:
        switch (sub) {
        case VIRTIO_INPUT_EV_KEY:
            memcpy(u, d->keys, KEY_BITMAP_LEN);
            size = KEY_BITMAP_LEN;
            break;
        case VIRTIO_INPUT_EV_REP:
            size = 1;
            break;
        case VIRTIO_INPUT_EV_LED:
            u[0] = 1u << LED_NUML | 1u << LED_CAPSL | 1u << LED_SCROLLL;
            size = 1;
            break;
        }
        break;
    default:            /* UNSET, PROP_BITS (none), ABS_INFO (no axes), unknown */
        break;
    }
    d->cfg[VIRTIO_INPUT_CFG_SIZE] = (uint8_t)size;
}

static uint32_t input_cfg_read(struct virtio_dev *vd, unsigned off, unsigned size)
{
    struct virtio_input *d = vd->opaque;
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++)     /* the transport bounds off + size */
        v |= (uint32_t)d->cfg[off + i] << (8 * i);
    return v;
}

static void input_cfg_write(struct virtio_dev *vd, unsigned off, unsigned size, uint32_t val)
{
    struct virtio_input *d = vd->opaque;
    bool changed = false, ignored = false;
    for (unsigned i = 0; i < size; i++) {
        unsigned o = off + i;
        if (o == VIRTIO_INPUT_CFG_SELECT || o == VIRTIO_INPUT_CFG_SUBSEL) {
            d->cfg[o] = (uint8_t)(val >> (8 * i));
            changed = true;
        } else {
            ignored = true;
        }
    }
    if (ignored)
        virtio_log(vd, "write of %u byte(s) at config offset %u: only select and subsel are "
                   "writable (ignored)", size, off);
    if (changed)
        cfg_answer(d);
}

/* --- events --------------------------------------------------------------------- */

static bool bit_get(const uint8_t *b, unsigned k) { return b[k / 8] >> (k % 8) & 1; }

static void bit_set(uint8_t *b, unsigned k, bool v)
{
    b[k / 8] = (uint8_t)(v ? b[k / 8] | 1u << (k % 8) : b[k / 8] & ~(1u << (k % 8)));
}

static bool key_valid(const struct virtio_input *d, unsigned code)
{
    return code <= KEY_MAX_CODE && bit_get(d->keys, code);
}

static bool is_key(const struct kbd_event *ev)
{
    return ev->type == VIRTIO_INPUT_EV_KEY && ev->code <= KEY_MAX_CODE;
}

static bool is_report_end(const struct kbd_event *ev)
{
    return ev->type == VIRTIO_INPUT_EV_SYN && ev->code == VIRTIO_INPUT_SYN_REPORT;
}

/* The i-th queued event (0: the oldest). */
static struct kbd_event *ring_at(struct virtio_input *d, unsigned i)
{
    return &d->ring[(d->head + i) % VIRTIO_INPUT_RING];
}

static void ring_append(struct virtio_input *d, uint16_t type, uint16_t code, uint32_t value)
{
    *ring_at(d, d->len++) = (struct kbd_event){ type, code, value };
}

/* Whether the device may use queue q now (also outside a kick). */
static bool queue_ready(struct virtio_input *d, unsigned q)
{
    const struct virtio_dev *vd = &d->vp.vdev;
    const struct virtq *vq = &vd->vq[q];
    return virtio_live(vd) && vq->enabled && !vq->broken && pci_bus_master(&d->vp.pci);
}

/* A driver broke a MUST of the spec on queue q: stop the queue until reset. */
static void queue_fault(struct virtio_input *d, unsigned q, const char *what)
{
    struct virtio_dev *vd = &d->vp.vdev;
    vd->vq[q].broken = true;
    virtio_needs_reset(vd, "%s buffer with %u device-readable and %u device-writable bytes "
                       "(needs %u %s bytes and no %s ones)", what, d->chain.out_bytes,
                       d->chain.in_bytes, VIRTIO_INPUT_EVENT_SIZE,
                       q == VIRTIO_INPUT_EVENTQ ? "device-writable" : "device-readable",
                       q == VIRTIO_INPUT_EVENTQ ? "device-readable" : "device-writable");
}

/* Move queued events into the driver's eventq buffers, one per buffer. */
static void deliver(struct virtio_input *d)
{
    struct virtio_dev *vd = &d->vp.vdev;
    bool pushed = false;
    while (d->len && queue_ready(d, VIRTIO_INPUT_EVENTQ) &&
           virtio_queue_pop(vd, VIRTIO_INPUT_EVENTQ, &d->chain) > 0) {
        if (d->chain.nout || d->chain.in_bytes < VIRTIO_INPUT_EVENT_SIZE) {
            queue_fault(d, VIRTIO_INPUT_EVENTQ, "eventq");
            break;
        }
        const struct kbd_event *ev = ring_at(d, 0);
        uint8_t b[VIRTIO_INPUT_EVENT_SIZE] = {
            (uint8_t)ev->type, (uint8_t)(ev->type >> 8),
            (uint8_t)ev->code, (uint8_t)(ev->code >> 8),
            (uint8_t)ev->value, (uint8_t)(ev->value >> 8),
            (uint8_t)(ev->value >> 16), (uint8_t)(ev->value >> 24),
        };
        virtq_chain_to_guest(&d->chain, 0, b, sizeof(b));
        virtio_queue_push(vd, VIRTIO_INPUT_EVENTQ, &d->chain, VIRTIO_INPUT_EVENT_SIZE);
        if (is_key(ev))
            bit_set(d->guest_down, ev->code, ev->value != 0);
        d->mid_report = !is_report_end(ev);
        d->head = (d->head + 1) % VIRTIO_INPUT_RING;
        d->len--;
        pushed = true;
    }
    if (!pushed)
        return;
    virtio_queue_notify_used(vd, VIRTIO_INPUT_EVENTQ);
    if (d->dropping)
        log_guest(&d->drop_log, "%s: delivering input events again; %llu older event(s) "
                  "were dropped", vd->name, (unsigned long long)d->dropped);
    d->dropping = false;
    d->dropped = 0;
}

/* Events from queue position `from` up to and including the next
 * SYN_REPORT (or to the end of the queue). */
static unsigned report_len(struct virtio_input *d, unsigned from)
{
    unsigned i = from;
    while (i < d->len && !is_report_end(ring_at(d, i)))
        i++;
    return i < d->len ? i + 1 - from : d->len - from;
}

/* Drop the oldest whole report.  If the head is the rest of a report the
 * guest already has the beginning of (mid_report), that rest is kept and
 * the report after it dropped: moving the rest up over it keeps the ring
 * contiguous. */
static void drop_oldest_report(struct virtio_input *d)
{
    if (!d->len)
        return;
    if (!d->dropping)
        log_guest(&d->drop_log, "%s: the guest takes no input events and %u are waiting: "
                  "dropping the oldest", d->vp.vdev.name, d->len);
    d->dropping = true;
    unsigned keep = d->mid_report ? report_len(d, 0) : 0;
    if (keep == d->len)         /* nothing after the rest: drop the rest after all */
        keep = 0;
    unsigned n = report_len(d, keep);
    for (unsigned i = keep; i-- > 0;)
        *ring_at(d, i + n) = *ring_at(d, i);
    d->head = (d->head + n) % VIRTIO_INPUT_RING;
    d->len -= n;
    d->dropped += n;
    if (!keep)
        d->mid_report = false;
}

/* After drops: the guest, once it has every queued event, may hold a key
 * in another state than the host (a dropped release after a delivered
 * press: a stuck, autorepeating key).  Append one report that sets those
 * keys to the host's state, dropping more old reports until it fits (the
 * queue empty, it always does: one event per key and a SYN_REPORT). */
static void resync(struct virtio_input *d)
{
    for (;;) {
        uint8_t end[KEY_BITMAP_LEN];
        memcpy(end, d->guest_down, sizeof(end));
        for (unsigned i = 0; i < d->len; i++)
            if (is_key(ring_at(d, i)))
                bit_set(end, ring_at(d, i)->code, ring_at(d, i)->value != 0);
        unsigned wrong = 0;
        for (unsigned k = 0; k <= KEY_MAX_CODE; k++)
            wrong += bit_get(end, k) != bit_get(d->host_down, k);
        if (!wrong)
            return;
        if (VIRTIO_INPUT_RING - d->len > wrong) {
            for (unsigned k = 0; k <= KEY_MAX_CODE; k++)
                if (bit_get(end, k) != bit_get(d->host_down, k))
                    ring_append(d, VIRTIO_INPUT_EV_KEY, (uint16_t)k, bit_get(d->host_down, k));
            ring_append(d, VIRTIO_INPUT_EV_SYN, VIRTIO_INPUT_SYN_REPORT, 0);
            return;
        }
        drop_oldest_report(d);
    }
}

int virtio_input_key(struct virtio_input *d, unsigned code, bool pressed)
{
    if (!d)
        return -ENODEV;
    if (!key_valid(d, code))
        return -EINVAL;
    bit_set(d->host_down, code, pressed);
    bool dropped = false;
    while (VIRTIO_INPUT_RING - d->len < 2) {
        drop_oldest_report(d);
        dropped = true;
    }
    ring_append(d, VIRTIO_INPUT_EV_KEY, (uint16_t)code, pressed);
    ring_append(d, VIRTIO_INPUT_EV_SYN, VIRTIO_INPUT_SYN_REPORT, 0);
    if (dropped)
        resync(d);
    deliver(d);
    return 0;
}

/* Room for n more events, dropping the oldest reports if need be. */
static void make_room(struct virtio_input *d, unsigned n)
{
    bool dropped = false;
    while (VIRTIO_INPUT_RING - d->len < n) {
        drop_oldest_report(d);
        dropped = true;
    }
    if (dropped)
        resync(d);
    while (VIRTIO_INPUT_RING - d->len < n)     /* resync's report took the room */
        drop_oldest_report(d);
}

static const struct { unsigned mask, code; } tablet_buttons[] = {
    { DISPLAY_BTN_LEFT, VIRTIO_INPUT_BTN_LEFT },
    { DISPLAY_BTN_RIGHT, VIRTIO_INPUT_BTN_RIGHT },
    { DISPLAY_BTN_MIDDLE, VIRTIO_INPUT_BTN_MIDDLE },
};

int virtio_input_abs(struct virtio_input *d, unsigned x, unsigned y, unsigned buttons)
{
    if (!d)
        return -ENODEV;
    if (!d->tablet || x > DISPLAY_ABS_MAX || y > DISPLAY_ABS_MAX)
        return -EINVAL;
    make_room(d, 7);    /* X, Y, three buttons, the wheel, SYN_REPORT */
    ring_append(d, VIRTIO_INPUT_EV_ABS, VIRTIO_INPUT_ABS_X, x);
    ring_append(d, VIRTIO_INPUT_EV_ABS, VIRTIO_INPUT_ABS_Y, y);
    for (unsigned i = 0; i < sizeof(tablet_buttons) / sizeof(tablet_buttons[0]); i++)
        if ((buttons ^ d->buttons) & tablet_buttons[i].mask)
            ring_append(d, VIRTIO_INPUT_EV_KEY, (uint16_t)tablet_buttons[i].code,
                        !!(buttons & tablet_buttons[i].mask));
    /* wheel "buttons" are clicks: one step per press */
    if (buttons & ~d->buttons & DISPLAY_BTN_WHEEL_UP)
        ring_append(d, VIRTIO_INPUT_EV_REL, VIRTIO_INPUT_REL_WHEEL, 1);
    else if (buttons & ~d->buttons & DISPLAY_BTN_WHEEL_DOWN)
        ring_append(d, VIRTIO_INPUT_EV_REL, VIRTIO_INPUT_REL_WHEEL, (uint32_t)-1);
    ring_append(d, VIRTIO_INPUT_EV_SYN, VIRTIO_INPUT_SYN_REPORT, 0);
    d->buttons = buttons;
    deliver(d);
    return 0;
}

static int display_key(void *d, unsigned code, bool down)
{
    return virtio_input_key(d, code, down);
}

static int display_abs(void *d, unsigned x, unsigned y, unsigned buttons)
{
    return virtio_input_abs(d, x, y, buttons);
}

int virtio_input_power_button(struct virtio_input *d, struct err *e)
{
    if (!d)
        return err_set(e, -ENOTSUP, "no power button: the VM has no --device virtio-keyboard");
    int ret = virtio_input_key(d, VIRTIO_INPUT_KEY_POWER, true);
    if (ret == 0)
        ret = virtio_input_key(d, VIRTIO_INPUT_KEY_POWER, false);
    return ret < 0 ? err_set(e, ret, "power button: %s", strerror(-ret)) : 0;
}

/* The driver's status events (LEDs): recorded, returned at once. */
static void status_consume(struct virtio_input *d)
{
    struct virtio_dev *vd = &d->vp.vdev;
    bool pushed = false;
    while (virtio_queue_pop(vd, VIRTIO_INPUT_STATUSQ, &d->chain) > 0) {
        if (d->chain.nin || d->chain.out_bytes < VIRTIO_INPUT_EVENT_SIZE) {
            queue_fault(d, VIRTIO_INPUT_STATUSQ, "statusq");
            break;
        }
        uint8_t b[VIRTIO_INPUT_EVENT_SIZE];
        virtq_chain_from_guest(&d->chain, 0, b, sizeof(b));
        unsigned type = b[0] | b[1] << 8, code = b[2] | b[3] << 8;
        uint32_t value = b[4] | b[5] << 8 | b[6] << 16 | (uint32_t)b[7] << 24;
        if (type == VIRTIO_INPUT_EV_LED && code <= LED_SCROLLL)
            d->leds = (uint8_t)(value ? d->leds | 1u << code : d->leds & ~(1u << code));
        virtio_queue_push(vd, VIRTIO_INPUT_STATUSQ, &d->chain, 0);
        pushed = true;
    }
    if (pushed)
        virtio_queue_notify_used(vd, VIRTIO_INPUT_STATUSQ);
}

static void input_queue_notify(struct virtio_dev *vd, unsigned q)
{
    struct virtio_input *d = vd->opaque;
    if (q == VIRTIO_INPUT_EVENTQ)
        deliver(d);                     /* new event buffers */
    else
        status_consume(d);
}

/* The driver reset the device: config back to UNSET, LEDs off.  Queued
 * events stay for the next driver. */
static void input_reset(struct virtio_dev *vd)
{
    struct virtio_input *d = vd->opaque;
    d->cfg[VIRTIO_INPUT_CFG_SELECT] = d->cfg[VIRTIO_INPUT_CFG_SUBSEL] = 0;
    cfg_answer(d);
    d->leds = 0;
    memset(d->guest_down, 0, sizeof(d->guest_down));    /* a new driver: all keys up */
    d->mid_report = false;
}

/* --- snapshots ---------------------------------------------------------------
 *
 * No quiesce: event and status chains are returned inside the call that
 * took them (the one left unreturned by a broken queue stays with the
 * broken queue until the driver resets the device).  Saved after the core:
 * u8 select, u8 subsel (the answer is derived again), u8 LEDs, u32 waiting
 * events and each as u16 type, u16 code, u32 value, bool mid-report, the
 * guest's and the host's key bitmaps, bool dropping, u64 dropped. */
static void input_save(struct virtio_dev *vd, struct snap_writer *w)
{
    struct virtio_input *d = vd->opaque;
    snapw_u8(w, d->cfg[VIRTIO_INPUT_CFG_SELECT]);
    snapw_u8(w, d->cfg[VIRTIO_INPUT_CFG_SUBSEL]);
    snapw_u8(w, d->leds);
    snapw_u32(w, d->len);
    for (unsigned i = 0; i < d->len; i++) {
        const struct kbd_event *ev = ring_at(d, i);
        snapw_u16(w, ev->type);
        snapw_u16(w, ev->code);
        snapw_u32(w, ev->value);
    }
    snapw_bool(w, d->mid_report);
    snapw_bytes(w, d->guest_down, KEY_BITMAP_LEN);
    snapw_bytes(w, d->host_down, KEY_BITMAP_LEN);
    snapw_bool(w, d->dropping);
    snapw_u64(w, d->dropped);
}

/* An event the tablet makes. */
static bool tablet_event(const struct kbd_event *ev)
{
    switch (ev->type) {
    case VIRTIO_INPUT_EV_ABS:
        return ev->code <= VIRTIO_INPUT_ABS_Y && ev->value <= DISPLAY_ABS_MAX;
    case VIRTIO_INPUT_EV_KEY:
        return ev->code >= VIRTIO_INPUT_BTN_LEFT && ev->code <= VIRTIO_INPUT_BTN_MIDDLE &&
               ev->value <= 1;
    case VIRTIO_INPUT_EV_REL:
        return ev->code == VIRTIO_INPUT_REL_WHEEL && (ev->value == 1 || ev->value == UINT32_MAX);
    }
    return false;
}

/* Only keys the keyboard has. */
static bool keys_subset(const struct virtio_input *d, const uint8_t *b)
{
    for (unsigned i = 0; i < KEY_BITMAP_LEN; i++)
        if (b[i] & ~d->keys[i])
            return false;
    return true;
}

static int input_load(struct virtio_dev *vd, struct snap_reader *r, struct snap_file *f,
                      struct err *e)
{
    (void)f;
    struct virtio_input *d = vd->opaque;
    struct kbd_event ring[VIRTIO_INPUT_RING];
    uint8_t sel = snapr_u8(r), sub = snapr_u8(r), leds = snapr_u8(r);
    uint32_t len = snapr_u32(r);
    snapr_check(r, leds < 1u << (LED_SCROLLL + 1), "unknown LEDs");
    if (snapr_check(r, r->fail || len <= VIRTIO_INPUT_RING, "too many waiting events"))
        for (unsigned i = 0; i < len && !r->fail; i++) {
            struct kbd_event *ev = &ring[i];
            ev->type = snapr_u16(r);
            ev->code = snapr_u16(r);
            ev->value = snapr_u32(r);
            /* what the device queues: a key of its own pressed or released,
             * or the report's end */
            snapr_check(r, r->fail || (ev->type == VIRTIO_INPUT_EV_KEY &&
                                       key_valid(d, ev->code) && ev->value <= 1) ||
                        (is_report_end(ev) && ev->value == 0) ||
                        (d->tablet && tablet_event(ev)),
                        "a waiting event the device does not make");
        }
    bool mid_report = snapr_bool(r);
    uint8_t guest_down[KEY_BITMAP_LEN], host_down[KEY_BITMAP_LEN];
    snapr_bytes(r, guest_down, KEY_BITMAP_LEN);
    snapr_bytes(r, host_down, KEY_BITMAP_LEN);
    bool dropping = snapr_bool(r);
    uint64_t dropped = snapr_u64(r);
    snapr_check(r, r->fail || (keys_subset(d, guest_down) && keys_subset(d, host_down)),
                "keys down that the keyboard does not have");
    int ret = snapr_end(r, e);
    if (ret < 0)
        return ret;
    d->cfg[VIRTIO_INPUT_CFG_SELECT] = sel;
    d->cfg[VIRTIO_INPUT_CFG_SUBSEL] = sub;
    cfg_answer(d);
    d->leds = leds;
    d->head = 0;
    d->len = len;
    memcpy(d->ring, ring, len * sizeof(ring[0]));
    d->mid_report = mid_report;
    memcpy(d->guest_down, guest_down, KEY_BITMAP_LEN);
    memcpy(d->host_down, host_down, KEY_BITMAP_LEN);
    d->dropping = dropping;
    d->dropped = dropped;
    d->buttons = 0;     /* not saved: the next pointer event sends every button */
    return 0;
}

static const struct virtio_dev_ops input_ops = {
    .queue_notify = input_queue_notify,
    .cfg_read = input_cfg_read,
    .cfg_write = input_cfg_write,
    .reset = input_reset,
    .save = input_save,
    .load = input_load,
};

/* --- set-up and teardown ----------------------------------------------------- */

static void input_free(struct virtio_pci *vp)
{
    struct virtio_input *d = vp->vdev.opaque;
    if (d->owner && *d->owner == d)
        *d->owner = NULL;
    if (d->display && d->display->keyboard == d)
        d->display->keyboard = NULL;
    if (d->display && d->display->pointer == d)
        d->display->pointer = NULL;
    free(d);
}

static int input_create(const struct virtio_host *h, const char *name, bool tablet,
                        const char *opts, struct err *e)
{
    if (*opts)
        return err_set(e, -EINVAL, "%s takes no options (got '%s')", name, opts);
    struct virtio_input *d = calloc(1, sizeof(*d));
    if (!d)
        return err_set(e, -ENOMEM, "%s: out of memory", name);
    d->tablet = tablet;
    for (unsigned r = 0; !tablet && r < sizeof(key_ranges) / sizeof(key_ranges[0]); r++)
        for (unsigned k = key_ranges[r].first; k <= key_ranges[r].last; k++)
            d->keys[k / 8] |= (uint8_t)(1u << (k % 8));
    virtio_dev_init(&d->vp.vdev, name, VIRTIO_ID_INPUT, 0, INPUT_NQUEUES,
                    INPUT_QUEUE_SIZE, VIRTIO_INPUT_CFG_LEN, h->mem, &input_ops, d);
    int ret = virtio_pci_init(&d->vp, PCI_CLASS_INPUT_OTHER, input_free, e);
    if (ret == 0)
        ret = pci_bus_plug(h->pb, &d->vp.pci, e);
    if (ret < 0) {
        free(d);
        return ret;
    }
    /* the bus owns d now; the board may keep the first keyboard, the
     * display frontend takes input from the first keyboard and tablet */
    if (!tablet && h->keyboard && !*h->keyboard) {
        *h->keyboard = d;
        d->owner = h->keyboard;
    }
    struct display *dp = h->display;
    if (dp && !tablet && !dp->keyboard) {
        dp->keyboard = d;
        dp->key = display_key;
        d->display = dp;
    } else if (dp && tablet && !dp->pointer) {
        dp->pointer = d;
        dp->pointer_abs = display_abs;
        d->display = dp;
    }
    return 0;
}

int virtio_keyboard_create(const struct virtio_host *h, const char *opts, struct err *e)
{
    return input_create(h, "virtio-keyboard", false, opts, e);
}

int virtio_tablet_create(const struct virtio_host *h, const char *opts, struct err *e)
{
    return input_create(h, "virtio-tablet", true, opts, e);
}

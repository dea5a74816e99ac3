/* A guest's screen and its keyboard and pointer, between the devices that
 * make them (virtio-gpu, virtio-input keyboard and tablet) and a frontend
 * that shows them to a user (ui/vnc.c).
 *
 * The frontend owns struct display and fills in resize and update; the
 * board hands it to the devices (virtio_host.display), which call those
 * when the guest changes its picture, and plug their input functions into
 * it for the frontend to call.  Every call happens in device context (the
 * event-loop thread, device lock held), so nothing here takes locks.
 * A device that goes away clears what it plugged in. */
#ifndef PETREL_DISPLAY_H
#define PETREL_DISPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 32-bit pixel layouts, by their bytes in memory (X: unused or alpha). */
enum display_format {
    DISPLAY_BGRX,       /* DRM XRGB8888 on little endian: what Linux uses */
    DISPLAY_XRGB,
    DISPLAY_RGBX,
    DISPLAY_XBGR,
};

/* the tablet's absolute axes run from 0 to this */
#define DISPLAY_ABS_MAX 32767u

/* pointer buttons (bit mask) */
#define DISPLAY_BTN_LEFT 1u
#define DISPLAY_BTN_MIDDLE 2u
#define DISPLAY_BTN_RIGHT 4u
#define DISPLAY_BTN_WHEEL_UP 8u
#define DISPLAY_BTN_WHEEL_DOWN 16u

struct display {
    /* the frontend's: the picture is now width x height (0 x 0: the guest
     * shows nothing) ... */
    void (*resize)(struct display *d, unsigned width, unsigned height);
    /* ... and its rectangle (x, y, w, h) changed: pixels points at pixel
     * (x, y) in the device's copy, rows stride bytes apart. */
    void (*update)(struct display *d, const uint8_t *pixels, size_t stride,
                   enum display_format f, unsigned x, unsigned y, unsigned w, unsigned h);
    /* the devices': a display device is attached (so the frontend can say
     * when the guest has none), ... */
    void *gpu;
    /* ... press or release a Linux evdev KEY_* code, ... */
    void *keyboard;
    int (*key)(void *keyboard, unsigned code, bool down);
    /* ... move the pointer to (x, y) in 0..DISPLAY_ABS_MAX with buttons
     * (DISPLAY_BTN_*) held. */
    void *pointer;
    int (*pointer_abs)(void *pointer, unsigned x, unsigned y, unsigned buttons);
};

#endif

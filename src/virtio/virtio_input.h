/* virtio-input (virtio spec 5.8): a keyboard, `--device virtio-keyboard`.
 *
 * What the rest of the VMM uses: key events from the host
 * (virtio_input_key) and a power button (virtio_input_power_button).  A
 * board finds the keyboard it created through virtio_host.keyboard
 * (virtio_pci.h).  Both functions run in device context, with the device
 * lock held by the caller, like every other entry into the device.
 *
 * The protocol constants are Linux's evdev codes (include/uapi/linux/
 * input-event-codes.h), which the spec uses on the wire; they carry a
 * VIRTIO_INPUT_ prefix here so this header can sit next to <linux/input.h>. */
#ifndef PETREL_VIRTIO_INPUT_H
#define PETREL_VIRTIO_INPUT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/log.h"

#define VIRTIO_ID_INPUT 18

/* queues */
#define VIRTIO_INPUT_EVENTQ 0           /* device -> driver: input events */
#define VIRTIO_INPUT_STATUSQ 1          /* driver -> device: LED state */

/* config space: struct virtio_input_config */
#define VIRTIO_INPUT_CFG_SELECT 0
#define VIRTIO_INPUT_CFG_SUBSEL 1
#define VIRTIO_INPUT_CFG_SIZE 2
#define VIRTIO_INPUT_CFG_U 8            /* the union: string, bitmap, abs, ids */
#define VIRTIO_INPUT_CFG_U_LEN 128
#define VIRTIO_INPUT_CFG_LEN (VIRTIO_INPUT_CFG_U + VIRTIO_INPUT_CFG_U_LEN)

/* values of select */
#define VIRTIO_INPUT_CFG_UNSET 0x00
#define VIRTIO_INPUT_CFG_ID_NAME 0x01
#define VIRTIO_INPUT_CFG_ID_SERIAL 0x02
#define VIRTIO_INPUT_CFG_ID_DEVIDS 0x03
#define VIRTIO_INPUT_CFG_PROP_BITS 0x10
#define VIRTIO_INPUT_CFG_EV_BITS 0x11
#define VIRTIO_INPUT_CFG_ABS_INFO 0x12

/* struct virtio_input_event {le16 type, le16 code, le32 value} */
#define VIRTIO_INPUT_EVENT_SIZE 8

/* evdev event types and codes */
#define VIRTIO_INPUT_EV_SYN 0x00
#define VIRTIO_INPUT_EV_KEY 0x01
#define VIRTIO_INPUT_EV_REL 0x02
#define VIRTIO_INPUT_EV_ABS 0x03
#define VIRTIO_INPUT_EV_LED 0x11
#define VIRTIO_INPUT_EV_REP 0x14
#define VIRTIO_INPUT_SYN_REPORT 0
#define VIRTIO_INPUT_KEY_POWER 116
#define VIRTIO_INPUT_BTN_LEFT 0x110
#define VIRTIO_INPUT_BTN_RIGHT 0x111
#define VIRTIO_INPUT_BTN_MIDDLE 0x112
#define VIRTIO_INPUT_ABS_X 0x00
#define VIRTIO_INPUT_ABS_Y 0x01
#define VIRTIO_INPUT_REL_WHEEL 0x08
#define VIRTIO_INPUT_BUS_VIRTUAL 0x06

#define VIRTIO_INPUT_KEYBOARD_NAME "Petrel Virtio Keyboard"
#define VIRTIO_INPUT_TABLET_NAME "Petrel Virtio Tablet"

struct virtio_input;

/* Press (pressed = true) or release key `code` (an evdev KEY_* code the
 * keyboard advertises in its EV_KEY bitmap): queues EV_KEY with value 1/0
 * and EV_SYN/SYN_REPORT, delivered at once if the guest has buffers posted
 * and otherwise as soon as it posts some.  At most VIRTIO_INPUT_RING
 * events wait; beyond that the oldest whole reports are dropped (logged,
 * rate-limited).  Returns 0, -EINVAL for a code the keyboard does not
 * have, -ENODEV for d == NULL (no keyboard). */
int virtio_input_key(struct virtio_input *d, unsigned code, bool pressed);

/* Tablet (virtio-tablet): move to (x, y), each 0..DISPLAY_ABS_MAX
 * (core/display.h), with the DISPLAY_BTN_* buttons in `buttons` held: one
 * report with ABS_X, ABS_Y, the buttons that changed, a wheel step for a
 * newly pressed wheel button, SYN_REPORT; queued and delivered like
 * keys.  0, -EINVAL (not a tablet, out of range), -ENODEV (d NULL). */
int virtio_input_abs(struct virtio_input *d, unsigned x, unsigned y, unsigned buttons);

/* Press and release KEY_POWER (what a guest's logind/acpid turns into a
 * shutdown).  0, or -ENOTSUP with a message for d == NULL (no keyboard), so
 * a board can call it with whatever virtio_host.keyboard holds. */
int virtio_input_power_button(struct virtio_input *d, struct err *e);

/* events the device holds for a guest that has no buffers posted */
#define VIRTIO_INPUT_RING 256

#endif

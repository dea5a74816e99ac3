/* X11 keysyms (what VNC's KeyEvent carries) to Linux evdev key codes, for
 * a US keyboard layout. */
#ifndef PETREL_KEYMAP_H
#define PETREL_KEYMAP_H

#include <stdbool.h>
#include <stdint.h>

#define KEYMAP_KEY_LEFTSHIFT 42

/* The evdev code of keysym ks and whether the character needs Shift on a
 * US layout (*shift; 'A', '!', ...), or 0 for a keysym with no key. */
unsigned keymap_code(uint32_t ks, bool *shift);

#endif

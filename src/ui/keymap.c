/* X11 keysyms to Linux evdev codes (include/uapi/linux/input-event-codes.h),
 * US layout.  Printable ASCII is a table indexed by the character; the
 * function and modifier keys (keysyms 0xff00..0xffff and 0xfe03) a list. */
#include "ui/keymap.h"

#include <stddef.h>

#define S 0x100         /* needs Shift */

/* ' ' .. '~' */
static const uint16_t ascii[95] = {
    57, 2 | S, 40 | S, 4 | S, 5 | S, 6 | S, 8 | S, 40,          /* space ! " # $ % & ' */
    10 | S, 11 | S, 9 | S, 13 | S, 51, 12, 52, 53,              /* ( ) * + , - . / */
    11, 2, 3, 4, 5, 6, 7, 8, 9, 10,                             /* 0-9 */
    39 | S, 39, 51 | S, 13, 52 | S, 53 | S, 3 | S,              /* : ; < = > ? @ */
    30 | S, 48 | S, 46 | S, 32 | S, 18 | S, 33 | S, 34 | S,     /* A-G */
    35 | S, 23 | S, 36 | S, 37 | S, 38 | S, 50 | S, 49 | S,     /* H-N */
    24 | S, 25 | S, 16 | S, 19 | S, 31 | S, 20 | S, 22 | S,     /* O-U */
    47 | S, 17 | S, 45 | S, 21 | S, 44 | S,                     /* V-Z */
    26, 43, 27, 7 | S, 12 | S, 41,                              /* [ \ ] ^ _ ` */
    30, 48, 46, 32, 18, 33, 34, 35, 23, 36, 37, 38, 50, 49,     /* a-n */
    24, 25, 16, 19, 31, 20, 22, 47, 17, 45, 21, 44,             /* o-z */
    26 | S, 43 | S, 27 | S, 41 | S,                             /* { | } ~ */
};

static const struct { uint16_t ks, code; } special[] = {
    { 0xff08, 14 },     /* BackSpace */
    { 0xff09, 15 },     /* Tab */
    { 0xff0d, 28 },     /* Return */
    { 0xff13, 119 },    /* Pause */
    { 0xff14, 70 },     /* Scroll_Lock */
    { 0xff15, 99 },     /* Sys_Req */
    { 0xff1b, 1 },      /* Escape */
    { 0xff50, 102 },    /* Home */
    { 0xff51, 105 },    /* Left */
    { 0xff52, 103 },    /* Up */
    { 0xff53, 106 },    /* Right */
    { 0xff54, 108 },    /* Down */
    { 0xff55, 104 },    /* Page_Up */
    { 0xff56, 109 },    /* Page_Down */
    { 0xff57, 107 },    /* End */
    { 0xff61, 99 },     /* Print */
    { 0xff63, 110 },    /* Insert */
    { 0xff67, 127 },    /* Menu */
    { 0xff7f, 69 },     /* Num_Lock */
    { 0xff8d, 96 },     /* KP_Enter */
    { 0xff95, 71 }, { 0xff96, 75 }, { 0xff97, 72 }, { 0xff98, 77 },    /* KP_Home.. */
    { 0xff99, 80 }, { 0xff9a, 73 }, { 0xff9b, 81 }, { 0xff9c, 79 },
    { 0xff9d, 76 }, { 0xff9e, 82 }, { 0xff9f, 83 },
    { 0xffaa, 55 },     /* KP_Multiply */
    { 0xffab, 78 },     /* KP_Add */
    { 0xffad, 74 },     /* KP_Subtract */
    { 0xffae, 83 },     /* KP_Decimal */
    { 0xffaf, 98 },     /* KP_Divide */
    { 0xffb0, 82 }, { 0xffb1, 79 }, { 0xffb2, 80 }, { 0xffb3, 81 }, { 0xffb4, 75 },
    { 0xffb5, 76 }, { 0xffb6, 77 }, { 0xffb7, 71 }, { 0xffb8, 72 }, { 0xffb9, 73 },
    { 0xffbd, 117 },    /* KP_Equal */
    { 0xffbe, 59 }, { 0xffbf, 60 }, { 0xffc0, 61 }, { 0xffc1, 62 }, { 0xffc2, 63 },
    { 0xffc3, 64 }, { 0xffc4, 65 }, { 0xffc5, 66 }, { 0xffc6, 67 }, { 0xffc7, 68 },
    { 0xffc8, 87 }, { 0xffc9, 88 },     /* F11, F12 */
    { 0xffe1, 42 },     /* Shift_L */
    { 0xffe2, 54 },     /* Shift_R */
    { 0xffe3, 29 },     /* Control_L */
    { 0xffe4, 97 },     /* Control_R */
    { 0xffe5, 58 },     /* Caps_Lock */
    { 0xffe7, 125 },    /* Meta_L */
    { 0xffe8, 126 },    /* Meta_R */
    { 0xffe9, 56 },     /* Alt_L */
    { 0xffea, 100 },    /* Alt_R */
    { 0xffeb, 125 },    /* Super_L */
    { 0xffec, 126 },    /* Super_R */
    { 0xfe03, 100 },    /* ISO_Level3_Shift (AltGr) */
    { 0xffff, 111 },    /* Delete */
};

unsigned keymap_code(uint32_t ks, bool *shift)
{
    *shift = false;
    if (ks >= 0x20 && ks <= 0x7e) {
        uint16_t v = ascii[ks - 0x20];
        *shift = v & S;
        return v & 0xff;
    }
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
        if (special[i].ks == ks)
            return special[i].code;
    return 0;
}

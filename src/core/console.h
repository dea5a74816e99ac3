/* The guest's serial console on the host terminal (or pipes).
 *
 * Input is read from in_fd into a ring buffer that the UART drains at the
 * guest's pace, so piped input arriving before the guest is ready is kept,
 * not dropped.  When in_fd is a TTY it is put in raw mode and the escape
 * sequence Ctrl-A x quits (Ctrl-A Ctrl-A sends Ctrl-A, Ctrl-A h prints help);
 * on pipes bytes pass through untouched.  Output is buffered and flushed on
 * every poll.  The output stream is also watched for the Linux panic line so
 * the VMM can report a guest panic. */
#ifndef PETREL_CONSOLE_H
#define PETREL_CONSOLE_H

#include <stdbool.h>
#include <stdint.h>
#include <termios.h>

#include "core/log.h"

#define CONSOLE_INBUF 65536
#define CONSOLE_OUTBUF 4096

struct console {
    int in_fd, out_fd;
    bool tty, raw_set, in_eof, out_broken;
    struct termios saved;
    uint8_t in[CONSOLE_INBUF];
    unsigned in_head, in_len;
    uint8_t out[CONSOLE_OUTBUF];
    unsigned out_len;
    bool esc_pending;
    bool quit;          /* user typed the escape sequence */
    bool panic_seen;    /* guest printed "Kernel panic - not syncing" */
    unsigned panic_match;
    void (*on_input)(void *opaque);
    void *opaque;
};

int console_init(struct console *c, int in_fd, int out_fd, struct err *e);
/* Restore the terminal; safe to call more than once. */
void console_restore(struct console *c);
/* Wait up to timeout_ns (0 = don't wait) for input, or until extra_fd
 * (-1: none) is readable; read what input is there and flush pending
 * output.  Calls on_input when new bytes arrived. */
void console_poll(struct console *c, uint64_t timeout_ns, int extra_fd);
/* Wait up to timeout_ns for input (or extra_fd, -1: none, to be readable)
 * without consuming it or touching the
 * console's state.  Called without the device lock: it reads the ring's
 * fill level, which a vCPU thread may change meanwhile; a stale value only
 * makes one wait end early or late, never loses input. */
void console_wait(const struct console *c, uint64_t timeout_ns, int extra_fd);
static inline bool console_has_input(const struct console *c) { return c->in_len > 0; }
int console_getc(struct console *c);   /* -1 when empty */
void console_putc(struct console *c, uint8_t ch);
void console_flush(struct console *c);

#endif

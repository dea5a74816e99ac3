/* The guest's serial console: a byte stream between the UART and the host.
 *
 * Design
 * - Input is kept in a ring buffer that the UART drains at the guest's
 *   pace, so input arriving before the guest is ready is kept, not dropped;
 *   while the ring is nearly full the sources stop being read.
 * - Output is buffered by console_putc (device context, any thread holding
 *   the device lock) and flushed by the event loop: the first byte into an
 *   empty buffer writes the notify eventfd; the loop flushes 2 ms later, so
 *   output goes out in batches (and at once when the buffer fills).
 * - Two host sides.  Stdio: in_fd/out_fd (a terminal is put in raw mode; the
 *   escape Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A, Ctrl-A h prints help;
 *   pipes pass bytes through).  Server (console_server.c): a unix socket any
 *   number of clients attach to, a bounded log file and a backlog ring.
 * - The output stream is watched for the Linux panic line so the VMM can
 *   report a guest panic; quit and panic are reported through on_event.
 *
 * Threads: everything runs in device context (the event loop's device
 * handlers, or a CPU thread's MMIO exit), except console_init/restore.
 * What can fail: a reader that goes away (EPIPE) drops output, never stops
 * the guest. */
#ifndef PETREL_CONSOLE_H
#define PETREL_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#include "core/log.h"

#define CONSOLE_INBUF 65536
#define CONSOLE_OUTBUF 4096
#define CONSOLE_FLUSH_NS 2000000ull     /* output waits at most this long */

struct evloop;
struct evloop_timer;
struct console_server;

struct console {
    int in_fd, out_fd;          /* stdio side; -1: none */
    bool tty, raw_set, in_eof, out_broken;
    struct termios saved;
    uint8_t in[CONSOLE_INBUF];
    unsigned in_head, in_len;
    bool in_paused;             /* sources unwatched while the ring is full */
    uint8_t out[CONSOLE_OUTBUF];
    unsigned out_len;
    bool esc_pending;
    bool quit;          /* user typed the escape sequence */
    bool panic_seen;    /* guest printed "Kernel panic - not syncing" */
    unsigned panic_match;
    struct evloop *loop;
    int notify_fd;              /* eventfd: output pending */
    bool notified;              /* notify_fd written, flush not done yet */
    struct evloop_timer *flush_timer;
    struct console_server *srv;
    void (*on_input)(void *opaque);     /* new input (the UART) */
    void *opaque;
    void (*on_event)(void *opaque);     /* quit or panic_seen became true */
    void *event_opaque;
};

/* Stdio console on in_fd/out_fd (-1 for none). */
int console_init(struct console *c, int in_fd, int out_fd, struct err *e);
/* Register the console's descriptors with the loop (device handlers). */
int console_attach(struct console *c, struct evloop *l, struct err *e);
/* Unregister and flush; restore the terminal; safe to call more than once. */
void console_restore(struct console *c);
static inline bool console_has_input(const struct console *c) { return c->in_len > 0; }
int console_getc(struct console *c);   /* -1 when empty */
void console_putc(struct console *c, uint8_t ch);
void console_flush(struct console *c);
/* Queue host input bytes (the server's clients; no escape handling).
 * Returns how many fit. */
size_t console_input(struct console *c, const uint8_t *buf, size_t n);
/* Copy up to max bytes of pending input without consuming them (snapshots:
 * input the guest has not read); returns how many. */
size_t console_peek_input(const struct console *c, uint8_t *buf, size_t max);
/* Room left in the input ring. */
static inline unsigned console_input_room(const struct console *c)
{
    return CONSOLE_INBUF - c->in_len;
}

/* console_server.c: serve the console on a unix socket and a bounded log.
 * log_path may be NULL. */
int console_server_start(struct console *c, const char *sock_path, const char *log_path,
                         struct err *e);
void console_server_stop(struct console *c);

/* internal: console.c <-> console_server.c */
void console_server_output(struct console_server *s, const uint8_t *buf, size_t n);
void console_server_resume_input(struct console_server *s, bool on);

#endif

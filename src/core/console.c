#include "core/console.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/evloop.h"

#define ESC_CHAR 0x01 /* Ctrl-A */
#define IN_LOW_WATER 4096 /* stop reading sources with less room than this */
static const char panic_marker[] = "Kernel panic - not syncing";

/* The one piece of process-wide state: the terminal settings to restore from
 * a fatal signal handler, which has no other way to find them. */
static struct termios sig_saved;
static int sig_fd = -1;

static void fatal_signal(int sig)
{
    if (sig_fd >= 0)
        tcsetattr(sig_fd, TCSANOW, &sig_saved);
    signal(sig, SIG_DFL);
    raise(sig);
}

int console_init(struct console *c, int in_fd, int out_fd, struct err *e)
{
    memset(c, 0, sizeof(*c));
    c->in_fd = in_fd;
    c->out_fd = out_fd;
    c->notify_fd = -1;
    signal(SIGPIPE, SIG_IGN);
    if (in_fd >= 0 && isatty(in_fd) && tcgetattr(in_fd, &c->saved) == 0) {
        struct termios raw = c->saved;
        c->tty = true;
        cfmakeraw(&raw);
        raw.c_oflag |= OPOST | ONLCR; /* keep host-side messages readable */
        if (tcsetattr(in_fd, TCSANOW, &raw) < 0)
            return err_set(e, -errno, "cannot set terminal to raw mode: %s", strerror(errno));
        c->raw_set = true;
        sig_saved = c->saved;
        sig_fd = in_fd;
        int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
        for (unsigned i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
            signal(fatal[i], fatal_signal);
    }
    return 0;
}

static void in_push(struct console *c, uint8_t ch)
{
    if (c->in_len < CONSOLE_INBUF)
        c->in[(c->in_head + c->in_len++) % CONSOLE_INBUF] = ch;
}

static void out_host(struct console *c, const char *s)
{
    console_flush(c);
    if (c->out_fd >= 0) {
        ssize_t r = write(c->out_fd, s, strlen(s));
        (void)r;
    }
}

static void event(struct console *c)
{
    if (c->on_event)
        c->on_event(c->event_opaque);
}

/* Escape handling on a TTY: Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A. */
static void input_byte(struct console *c, uint8_t ch)
{
    if (!c->tty) {
        in_push(c, ch);
        return;
    }
    if (c->esc_pending) {
        c->esc_pending = false;
        switch (ch) {
        case 'x':
        case 'X':
            c->quit = true;
            out_host(c, "\r\npetrel: quit\r\n");
            event(c);
            return;
        case ESC_CHAR:
            in_push(c, ch);
            return;
        case 'h':
        case 'H':
        case '?':
            out_host(c, "\r\nC-a x    quit petrel\r\nC-a C-a  send C-a to the guest\r\n"
                        "C-a h    this help\r\n");
            return;
        default:
            in_push(c, ESC_CHAR);
            in_push(c, ch);
            return;
        }
    }
    if (ch == ESC_CHAR)
        c->esc_pending = true;
    else
        in_push(c, ch);
}

/* Stop (or restart) reading input sources while the ring is (not) full. */
static void update_input_flow(struct console *c)
{
    bool want = c->in_len <= CONSOLE_INBUF - IN_LOW_WATER;
    if (want == !c->in_paused)
        return;
    c->in_paused = !want;
    if (c->loop && c->in_fd >= 0 && !c->in_eof)
        evloop_watch(c->loop, c->in_fd, want);
    if (c->srv)
        console_server_resume_input(c->srv, want);
}

static void stdin_ready(void *opaque)
{
    struct console *c = opaque;
    uint8_t buf[4096];
    size_t room = CONSOLE_INBUF - c->in_len;
    ssize_t r = read(c->in_fd, buf, room < sizeof(buf) ? room : sizeof(buf));
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        /* the guest keeps running; it just gets no more input */
        c->in_eof = true;
        evloop_del(c->loop, c->in_fd);
        return;
    }
    unsigned before = c->in_len;
    for (ssize_t i = 0; i < r; i++)
        input_byte(c, buf[i]);
    update_input_flow(c);
    if (c->in_len != before && c->on_input)
        c->on_input(c->opaque);
}

size_t console_input(struct console *c, const uint8_t *buf, size_t n)
{
    size_t room = CONSOLE_INBUF - c->in_len;
    if (n > room)
        n = room;
    for (size_t i = 0; i < n; i++)
        in_push(c, buf[i]);
    update_input_flow(c);
    if (n && c->on_input)
        c->on_input(c->opaque);
    return n;
}

/* Output is flushed CONSOLE_FLUSH_NS after its first byte: a guest writing
 * byte by byte through the UART then costs one wake-up and one write per
 * period, not one per burst (measured: a boot's ~2000 wake-ups of the loop
 * and of the reader cost the hart thread 20% of its speed on 2 cores). */
static void flush_timer(void *opaque)
{
    struct console *c = opaque;
    c->notified = false;
    console_flush(c);
}

static void notify_ready(void *opaque)
{
    struct console *c = opaque;
    uint64_t v;
    if (read(c->notify_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        return;
    evloop_timer_set(c->flush_timer, CONSOLE_FLUSH_NS, 0);
}

int console_attach(struct console *c, struct evloop *l, struct err *e)
{
    c->loop = l;
    c->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->notify_fd < 0)
        return err_set(e, -errno, "eventfd: %s", strerror(errno));
    c->flush_timer = evloop_timer_new(l, true, flush_timer, c, e);
    if (!c->flush_timer)
        return -ENOMEM;
    int ret = evloop_add(l, c->notify_fd, notify_ready, c, e);
    if (ret < 0)
        return ret;
    if (c->in_fd >= 0 && (ret = evloop_add(l, c->in_fd, stdin_ready, c, e)) < 0) {
        /* e.g. stdin is a regular file: epoll refuses it; read it all now */
        if (ret != -EPERM)
            return ret;
        while (!c->in_eof && c->in_len < CONSOLE_INBUF) {
            uint8_t buf[4096];
            ssize_t r = read(c->in_fd, buf, sizeof(buf));
            if (r <= 0) {
                c->in_eof = true;
                break;
            }
            console_input(c, buf, (size_t)r);
        }
        c->in_eof = true;
    }
    return 0;
}

void console_restore(struct console *c)
{
    console_server_stop(c);
    console_flush(c);
    if (c->loop) {
        if (c->in_fd >= 0 && !c->in_eof)
            evloop_del(c->loop, c->in_fd);
        if (c->notify_fd >= 0)
            evloop_del(c->loop, c->notify_fd);
        evloop_timer_free(c->flush_timer);
        c->flush_timer = NULL;
        c->loop = NULL;
    }
    if (c->notify_fd >= 0) {
        close(c->notify_fd);
        c->notify_fd = -1;
    }
    if (c->raw_set) {
        tcsetattr(c->in_fd, TCSANOW, &c->saved);
        c->raw_set = false;
        sig_fd = -1;
    }
}

int console_getc(struct console *c)
{
    if (!c->in_len)
        return -1;
    uint8_t ch = c->in[c->in_head];
    c->in_head = (c->in_head + 1) % CONSOLE_INBUF;
    c->in_len--;
    if (c->in_paused)
        update_input_flow(c);
    return ch;
}

size_t console_peek_input(const struct console *c, uint8_t *buf, size_t max)
{
    size_t n = c->in_len < max ? c->in_len : max;
    for (size_t i = 0; i < n; i++)
        buf[i] = c->in[(c->in_head + i) % CONSOLE_INBUF];
    return n;
}

void console_putc(struct console *c, uint8_t ch)
{
    /* Streaming match of the panic line (no self-overlap in the marker, so a
     * mismatch restarts at 0 or 1). */
    if (ch == (uint8_t)panic_marker[c->panic_match]) {
        if (++c->panic_match == sizeof(panic_marker) - 1) {
            c->panic_seen = true;
            c->panic_match = 0;
            event(c);
        }
    } else {
        c->panic_match = (ch == (uint8_t)panic_marker[0]);
    }
    if (c->out_len == CONSOLE_OUTBUF)
        console_flush(c);
    c->out[c->out_len++] = ch;
    if (!c->notified && c->notify_fd >= 0) {
        uint64_t one = 1;
        c->notified = true;
        if (write(c->notify_fd, &one, sizeof(one)) < 0)
            c->notified = false;
    }
}

void console_flush(struct console *c)
{
    if (c->srv && c->out_len)
        console_server_output(c->srv, c->out, c->out_len);
    unsigned off = 0;
    while (c->out_fd >= 0 && off < c->out_len && !c->out_broken) {
        ssize_t r = write(c->out_fd, c->out + off, c->out_len - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN) {
            /* a non-blocking terminal or pipe that is full: drop, never wait */
            break;
        }
        if (r <= 0) {
            c->out_broken = true; /* reader went away: drop output, keep running */
            break;
        }
        off += (unsigned)r;
    }
    c->out_len = 0;
}

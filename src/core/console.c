#include "core/console.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ESC_CHAR 0x01 /* Ctrl-A */
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

static void term_signal(int sig)
{
    (void)sig;
    if (sig_fd >= 0)
        tcsetattr(sig_fd, TCSANOW, &sig_saved);
    static const char msg[] = "\r\npetrel: terminated by signal\r\n";
    ssize_t r = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)r;
    _exit(1);
}

int console_init(struct console *c, int in_fd, int out_fd, struct err *e)
{
    memset(c, 0, sizeof(*c));
    c->in_fd = in_fd;
    c->out_fd = out_fd;
    signal(SIGPIPE, SIG_IGN);
    if (isatty(in_fd) && tcgetattr(in_fd, &c->saved) == 0) {
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
    int term[] = { SIGTERM, SIGHUP, SIGINT, SIGQUIT };
    for (unsigned i = 0; i < sizeof(term) / sizeof(term[0]); i++)
        signal(term[i], term_signal);
    return 0;
}

void console_restore(struct console *c)
{
    console_flush(c);
    if (c->raw_set) {
        tcsetattr(c->in_fd, TCSANOW, &c->saved);
        c->raw_set = false;
        sig_fd = -1;
    }
}

static void in_push(struct console *c, uint8_t ch)
{
    if (c->in_len < CONSOLE_INBUF)
        c->in[(c->in_head + c->in_len++) % CONSOLE_INBUF] = ch;
}

static void out_host(struct console *c, const char *s)
{
    console_flush(c);
    ssize_t r = write(c->out_fd, s, strlen(s));
    (void)r;
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

/* Wait up to timeout_ns until input can be read or extra_fd (if >= 0) is
 * readable; true if console input can be read.  Input is only read when the
 * ring has room for it, so none is ever dropped. */
static bool wait_readable(const struct console *c, uint64_t timeout_ns, int extra_fd)
{
    struct timespec ts = { (time_t)(timeout_ns / 1000000000u), (long)(timeout_ns % 1000000000u) };
    struct pollfd p[2];
    unsigned n = 0;
    bool want_input = !c->in_eof && c->in_len <= CONSOLE_INBUF - 4096;
    if (want_input)
        p[n++] = (struct pollfd){ .fd = c->in_fd, .events = POLLIN };
    if (extra_fd >= 0)
        p[n++] = (struct pollfd){ .fd = extra_fd, .events = POLLIN };
    if (!n) {
        if (timeout_ns)
            nanosleep(&ts, NULL);
        return false;
    }
    if (ppoll(p, n, &ts, NULL) <= 0)
        return false;
    return want_input && (p[0].revents & (POLLIN | POLLHUP | POLLERR));
}

void console_wait(const struct console *c, uint64_t timeout_ns, int extra_fd)
{
    wait_readable(c, timeout_ns, extra_fd);
}

void console_poll(struct console *c, uint64_t timeout_ns, int extra_fd)
{
    console_flush(c);
    if (!wait_readable(c, timeout_ns, extra_fd))
        return;
    uint8_t buf[4096];
    ssize_t r = read(c->in_fd, buf, sizeof(buf));
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        c->in_eof = true; /* the guest keeps running; it just gets no more input */
        return;
    }
    unsigned before = c->in_len;
    for (ssize_t i = 0; i < r; i++)
        input_byte(c, buf[i]);
    if (c->in_len != before && c->on_input)
        c->on_input(c->opaque);
}

int console_getc(struct console *c)
{
    if (!c->in_len)
        return -1;
    uint8_t ch = c->in[c->in_head];
    c->in_head = (c->in_head + 1) % CONSOLE_INBUF;
    c->in_len--;
    return ch;
}

void console_putc(struct console *c, uint8_t ch)
{
    /* Streaming match of the panic line (no self-overlap in the marker, so a
     * mismatch restarts at 0 or 1). */
    if (ch == (uint8_t)panic_marker[c->panic_match]) {
        if (++c->panic_match == sizeof(panic_marker) - 1) {
            c->panic_seen = true;
            c->panic_match = 0;
        }
    } else {
        c->panic_match = (ch == (uint8_t)panic_marker[0]);
    }
    if (c->out_len == CONSOLE_OUTBUF)
        console_flush(c);
    c->out[c->out_len++] = ch;
}

void console_flush(struct console *c)
{
    unsigned off = 0;
    while (off < c->out_len && !c->out_broken) {
        ssize_t r = write(c->out_fd, c->out + off, c->out_len - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            c->out_broken = true; /* reader went away: drop output, keep running */
            break;
        }
        off += (unsigned)r;
    }
    c->out_len = 0;
}

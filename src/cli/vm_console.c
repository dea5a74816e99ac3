/* `petrel vm console`: this terminal on a running VM's serial console
 * socket (raw mode on a terminal, Ctrl-] detaches; a pass-through that
 * detaches once the console is quiet after the end of stdin otherwise).
 *
 * Threads: none; one poll loop.
 *
 * What can fail: see vm_priv.h. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "cli/vm_priv.h"

#define CONSOLE_QUIET_MS 1000
#define CONSOLE_EOF_MAX_MS 60000
#define CONSOLE_ESCAPE 0x1d             /* Ctrl-] */

static struct termios console_saved;
static volatile sig_atomic_t console_raw;

static void console_restore(void)
{
    if (console_raw) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &console_saved);
        console_raw = 0;
    }
}

static void console_on_signal(int sig)
{
    console_restore();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int vmx_cmd_console(struct vmx *x, int argc, char **argv)
{
    char dir[PATH_MAX + 80];
    struct vm_rt rt;
    int i = vmx_one_vm(x, "console", argc, argv, dir, sizeof(dir), &rt, 0);
    if (i < 0)
        return ONE_NAME_RC(i);
    const char *name = argv[i];
    if (!vmx_rt_active(&rt)) {
        vmx_rt_free(&rt);
        return vmx_fail("%s is not running", name);
    }
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    vmx_fmt(a.sun_path, sizeof(a.sun_path), "%s", rt.con);
    vmx_rt_free(&rt);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return vmx_fail("socket: %s", strerror(errno));
    if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int err = errno;
        close(s);
        return vmx_fail("%s: cannot connect to its console %s: %s", name, a.sun_path,
                        strerror(err));
    }
    signal(SIGPIPE, SIG_IGN);
    bool tty = isatty(STDIN_FILENO);
    fprintf(stderr, "Connected to %s (escape: Ctrl-])\n", name);
    if (tty && tcgetattr(STDIN_FILENO, &console_saved) == 0) {
        struct termios raw = console_saved;
        cfmakeraw(&raw);
        atexit(console_restore);
        signal(SIGTERM, console_on_signal);
        signal(SIGHUP, console_on_signal);
        signal(SIGINT, console_on_signal);
        signal(SIGQUIT, console_on_signal);
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0)
            console_raw = 1;
    }
    bool in_eof = false, closed = false;
    uint64_t eof_at = 0, last_out = 0;
    char buf[16384];
    int rc = 0;
    for (;;) {
        struct pollfd p[2] = { { s, POLLIN, 0 }, { STDIN_FILENO, POLLIN, 0 } };
        int timeout = -1;
        if (in_eof) {
            uint64_t t = vmx_now_ms();
            if (t - last_out >= CONSOLE_QUIET_MS || t - eof_at >= CONSOLE_EOF_MAX_MS)
                break;
            timeout = (int)(CONSOLE_QUIET_MS - (t - last_out));
        }
        int n = poll(p, in_eof ? 1 : 2, timeout);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = vmx_fail("poll: %s", strerror(errno));
            break;
        }
        if (p[0].revents) {
            ssize_t r = read(s, buf, sizeof(buf));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                closed = true;
                break;
            }
            last_out = vmx_now_ms();
            if (write_all(STDOUT_FILENO, buf, (size_t)r) < 0)
                break;
        }
        if (!in_eof && p[1].revents) {
            ssize_t r = read(STDIN_FILENO, buf, sizeof(buf));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                in_eof = true;
                eof_at = last_out = vmx_now_ms();
                continue;
            }
            size_t len = (size_t)r;
            char *esc = console_raw ? memchr(buf, CONSOLE_ESCAPE, len) : NULL;
            if (esc)
                len = (size_t)(esc - buf);
            if (len && write_all(s, buf, len) < 0) {
                closed = true;
                break;
            }
            if (esc)
                break;
        }
    }
    console_restore();
    close(s);
    if (closed)
        fprintf(stderr, "\r\npetrel vm: %s's console closed (the VM stopped)\n", name);
    else if (tty)
        fprintf(stderr, "\r\n");
    return rc;
}
